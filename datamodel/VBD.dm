class VBD -- A virtual block device: attaches a VDI to a VM as a disk, CD or floppy drive.
options db getall ctor events write=vm-admin

enum vbd_operations -- Kinds of operation that can be running on, or permitted for, a VBD.
  value attach -- Connecting the VBD to a VM.
  value eject -- Removing the media from the drive.
  value insert -- Loading new media into the drive.
  value plug -- Hot-plugging the VBD into a running VM.
  value unplug -- Hot-unplugging the VBD from a running VM.
  value unplug_force -- Unplugging the VBD forcibly.
  value pause -- Pausing the block device backend.
  value unpause -- Resuming a paused block device backend.

enum vbd_type -- How the device is presented to the guest.
  value CD -- Guest sees a CD drive.
  value Disk -- Guest sees a hard disk.
  value Floppy -- Guest sees a floppy drive.

enum vbd_mode -- Access mode granted to the guest.
  value RO -- Guest may only read.
  value RW -- Guest may read and write.

field uuid string ro-run -- Stable unique identifier (UUID) of this VBD.
field allowed_operations set<vbd_operations> ro-run = [] -- Operations the VBD currently permits; advisory only and may be stale once read.
field current_operations map<string,vbd_operations> ro-run = {} -- Maps each running task reference to the operation it performs on this VBD.
field VM ref<VM> ro-ctor -- VM the device belongs to.
field VDI ref<VDI> ro-ctor -- Disk image backing the device; NULL when the drive is empty.
field device string ro-ctor = "" -- Device name seen inside the guest, e.g. xvda or hda.
field userdevice string rw -- User-facing slot number of the device, e.g. 0, 1, 2.
field bootable bool rw -- True if the VM may boot from this device.
field mode vbd_mode ro-ctor -- Whether the disk is attached read-only or read-write.
field type vbd_type rw -- Whether the guest sees a disk, CD or floppy.
field unpluggable bool rw = true -- True if the device may be hot-unplugged.
field storage_lock bool ro-run -- True if a storage-level lock has been taken for this device.
field empty bool ro-ctor -- True if the drive has no media, e.g. an empty CD drive.
field other_config map<string,string> rw -- Free-form key/value pairs for additional configuration.
field currently_attached bool ro-ctor = false -- True if the device is attached now; cleared on host reboot.
field status_code int ro-run -- Result code of the most recent attach attempt; cleared on host reboot.
field status_detail string ro-run -- Details of the most recent attach attempt's outcome; cleared on host reboot.
field runtime_properties map<string,string> ro-run -- Runtime properties reported for the device.
field qos/algorithm_type string rw -- Name of the QoS algorithm to apply.
field qos/algorithm_params map<string,string> rw -- Parameters for the selected QoS algorithm.
field qos/supported_algorithms set<string> ro-run -- QoS algorithms this VBD can use.
field metrics ref<VBD_metrics> ro-run = NULL removed -- Removed: formerly the VBD_metrics object for this device.

message set_mode async role=vm-admin -- Changes the access mode; the VM must be halted.
  param self ref<VBD> -- VBD to update.
  param value vbd_mode -- New access mode.

message assert_attachable async role=vm-admin -- Fails with an error if the VBD could not be attached were its VM running; meant for debugging.
  param self ref<VBD> -- VBD to check.

message unplug_force async role=vm-admin -- Forcibly detaches the VBD from its running VM.
  param self ref<VBD> -- VBD to force-unplug.

message unplug async role=vm-admin -- Hot-unplugs the VBD from its running VM.
  param self ref<VBD> -- VBD to unplug.
  errors DEVICE_DETACH_REJECTED DEVICE_ALREADY_DETACHED

message plug async role=vm-admin -- Hot-plugs the VBD into its running VM.
  param self ref<VBD> -- VBD to plug in.

message insert async role=vm-operator -- Loads a VDI as media into an empty removable drive such as a CD drive.
  param vbd ref<VBD> -- Removable-media drive to load.
  param vdi ref<VDI> -- VDI to use as the new media.
  errors VBD_NOT_REMOVABLE_MEDIA VBD_NOT_EMPTY

message eject async role=vm-operator -- Removes the media from a removable drive, leaving it empty.
  param vbd ref<VBD> -- Removable-media drive to empty.
  errors VBD_NOT_REMOVABLE_MEDIA VBD_IS_EMPTY
