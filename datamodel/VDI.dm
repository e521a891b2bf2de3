class VDI -- A virtual disk image: a block of storage held in an SR that VMs use as a disk.
options db getall ctor events write=vm-admin

enum vdi_operations -- Kinds of operation that can be running on, or permitted for, a VDI.
  value clone -- Making a clone of the VDI.
  value copy -- Copying the VDI's contents.
  value resize -- Changing the VDI's size.
  value resize_online -- Resizing the VDI, possibly while it is attached.
  value snapshot -- Taking a snapshot of the VDI.
  value mirror -- Mirroring the VDI to another location.
  value destroy -- Deleting the VDI.
  value forget -- Dropping the VDI record only.
  value update -- Refreshing the VDI's fields from the backend.
  value force_unlock -- Forcibly releasing a lock held on the VDI.
  value generate_config -- Producing static configuration for the VDI.
  value enable_cbt -- Turning on changed block tracking.
  value disable_cbt -- Turning off changed block tracking.
  value data_destroy -- Erasing the VDI's data while keeping its CBT metadata.
  value list_changed_blocks -- Computing the changed-block bitmap against another VDI.
  value set_on_boot -- Changing the on_boot setting.
  value blocked -- All operations on the VDI are temporarily prevented.

enum vdi_type -- Role of a VDI, which governs for instance how upgrades treat it.
  value system -- Disk that an upgrade is allowed to replace.
  value user -- Disk that upgrades always keep intact.
  value ephemeral -- Disk that an upgrade is allowed to reformat.
  value suspend -- Holds the memory image of a suspended VM.
  value crashdump -- Holds crash dump data from a VM.
  value ha_statefile -- Used by HA for heartbeating through storage.
  value metadata -- Holds pool database metadata used by HA / disaster recovery.
  value redo_log -- Holds a general-purpose metadata redo log.
  value rrd -- Holds SR-level performance statistics (RRDs).
  value pvs_cache -- Holds PVS cache data.
  value cbt_metadata -- Only the changed-block metadata of a deleted snapshot remains; the disk data is gone.

enum on_boot -- What happens to a VDI's contents when its VM starts.
  value reset -- Contents revert to the state they had when this mode was last set.
  value persist -- Normal behaviour: writes are kept across boots.

field uuid string ro-run -- Stable unique identifier (UUID) of this VDI.
field name/label string ro-ctor = "" -- Short human-readable name of the disk.
field name/description string ro-ctor = "" -- Free-form human-readable notes about the disk.
field allowed_operations set<vdi_operations> ro-run = [] -- Operations the VDI currently permits; advisory only and may be stale once read.
field current_operations map<string,vdi_operations> ro-run = {} -- Maps each running task reference to the operation it performs on this VDI.
field SR ref<SR> ro-ctor -- SR in which the disk is stored.
field VBDs set<ref<VBD>> ro-run inverse=VBD.VDI -- VBDs that refer to this disk.
field crash_dumps set<ref<crashdump>> ro-run inverse=crashdump.VDI -- Host crash dump records that refer to this disk.
field virtual_size int ro-ctor -- Size of the disk as seen by the guest, in bytes; backends may round the requested size.
field physical_utilisation int ro-run -- Bytes of physical storage the disk image currently occupies in its SR.
field type vdi_type ro-ctor -- Role of the disk (user, system, suspend, ...).
field sharable bool ro-ctor -- True if several VMs may attach the disk at the same time.
field read_only bool ro-ctor -- True if the disk can only ever be attached read-only.
field other_config map<string,string> rw keys=folder:vm-operator,XenCenter.CustomFields.*:vm-operator -- Free-form key/value pairs for additional configuration.
field storage_lock bool ro-run -- True if the storage backend holds a lock on this disk.
field location string ro-run = "" -- Backend-specific location of the disk within its SR.
field managed bool ro-run -- True for ordinary managed disks; false for backend-internal ones, e.g. hidden parent images.
field missing bool ro-run -- True if the last SR scan did not find this disk on storage.
field parent ref<VDI> ro-run deprecated -- Deprecated; always NULL.
field xenstore_data map<string,string> rw = {} -- Key/value data written into the disk backend's xenstore area after attach; usually filled in by the SM.
field sm_config map<string,string> rw = {} -- Backend-specific key/value data maintained by the storage manager.
field is_a_snapshot bool ro-run = false -- True if this VDI is a snapshot of another VDI.
field snapshot_of ref<VDI> ro-run = NULL -- VDI that this snapshot was taken from, or NULL.
field snapshots set<ref<VDI>> ro-run inverse=VDI.snapshot_of -- All snapshots taken of this VDI.
field snapshot_time datetime ro-run = 19700101T00:00:00Z -- Time at which this snapshot was taken.
field tags set<string> rw = [] write=vm-operator -- User-defined tags for grouping and searching.
field allow_caching bool ro-run = false -- True if the disk should be cached in the host's local cache SR.
field on_boot on_boot ro-run = persist -- Whether the contents persist or are reset when the VM boots.
field metadata_of_pool ref<pool> ro-run = NULL -- Pool whose database metadata this VDI holds, or NULL.
field metadata_latest bool ro-run = false -- True if this VDI has the newest accessible copy of that pool metadata.
field is_tools_iso bool ro-run = false -- True if this VDI is the guest Tools ISO.
field cbt_enabled bool ro-run = false -- True if changed block tracking is active for this disk.

message get_nbd_info -> set<record<vdi_nbd_server_info>> role=vm-admin -- Lists the NBD servers exporting this VDI, with export names; empty if no network with an NBD purpose reaches its SR.
  param self ref<VDI> -- VDI to access over NBD.
  result -- Connection details per NBD server, including an auth token; handle as sensitive.
  errors VDI_INCOMPATIBLE_TYPE

message list_changed_blocks -> string async role=vm-operator -- Compares two VDIs in 64 KiB blocks and reports which differ; vdi_to must not be attached to a VM.
  param vdi_from ref<VDI> -- Base VDI of the comparison.
  param vdi_to ref<VDI> -- VDI compared against the base.
  result -- Base64-encoded bitmap marking the blocks that differ.
  errors SR_OPERATION_NOT_SUPPORTED VDI_MISSING SR_NOT_ATTACHED SR_HAS_NO_PBDS VDI_IN_USE

message data_destroy async role=vm-admin -- Deletes a snapshot's data but keeps its CBT metadata, changing its type to cbt_metadata; repeat calls do nothing.
  param self ref<VDI> -- Snapshot VDI whose data is deleted.
  errors SR_OPERATION_NOT_SUPPORTED VDI_MISSING SR_NOT_ATTACHED SR_HAS_NO_PBDS OPERATION_NOT_ALLOWED VDI_INCOMPATIBLE_TYPE VDI_NO_CBT_METADATA VDI_IN_USE VDI_IS_A_PHYSICAL_DEVICE

message disable_cbt async role=vm-admin -- Stops changed block tracking on the VDI; does nothing if it is already off.
  param self ref<VDI> -- VDI to stop tracking.
  errors SR_OPERATION_NOT_SUPPORTED VDI_MISSING SR_NOT_ATTACHED SR_HAS_NO_PBDS OPERATION_NOT_ALLOWED VDI_INCOMPATIBLE_TYPE VDI_ON_BOOT_MODE_INCOMPATIBLE_WITH_OPERATION

message enable_cbt async role=vm-admin -- Starts changed block tracking on the VDI; does nothing if it is already on.
  param self ref<VDI> -- VDI to start tracking.
  errors SR_OPERATION_NOT_SUPPORTED VDI_MISSING SR_NOT_ATTACHED SR_HAS_NO_PBDS OPERATION_NOT_ALLOWED VDI_INCOMPATIBLE_TYPE VDI_ON_BOOT_MODE_INCOMPATIBLE_WITH_OPERATION

message pool_migrate -> ref<VDI> async role=vm-power-admin -- Moves a VDI, possibly in use by a running VM, to another SR that the VM can see.
  param vdi ref<VDI> -- VDI to move.
  param sr ref<SR> -- Destination SR.
  param options map<string,string> -- Extra migration options.
  result -- New reference of the VDI after the move.

message read_database_pool_uuid -> string async role=read-only+cert -- Looks up, in the cache, the pool UUID of the database held on this VDI.
  param self ref<VDI> -- Metadata VDI to look up.
  result -- Cached UUID of the pool whose database the VDI holds.

message open_database -> ref<session> async role=pool-operator -- Loads the pool database stored on the VDI and returns a session for querying it.
  param self ref<VDI> -- VDI holding the database.
  result -- Session that can be used to query the loaded database.

message set_allow_caching async role=vm-admin -- Sets allow_caching; only permitted while the VDI is not attached to a running VM.
  param self ref<VDI> -- VDI to update.
  param value bool -- True to enable local caching.

message set_on_boot async role=vm-admin -- Sets on_boot; only permitted while the VDI is not attached to a running VM.
  param self ref<VDI> -- VDI to update.
  param value on_boot -- New on_boot behaviour.

message set_name_description async role=vm-admin -- Changes the VDI's description; its SR must be attached.
  param self ref<VDI> -- VDI to update.
  param value string -- New description text.

message set_name_label async role=vm-admin -- Changes the VDI's name label; its SR must be attached.
  param self ref<VDI> -- VDI to rename.
  param value string -- New name label.

message set_read_only role=vm-admin -- Sets the VDI's read_only flag.
  param self ref<VDI> -- VDI to update.
  param value bool -- True to make the disk read-only.

message set_sharable role=vm-admin -- Sets the VDI's sharable flag.
  param self ref<VDI> -- VDI to update.
  param value bool -- True to let several VMs use the disk at once.

message forget async role=vm-admin -- Deletes the VDI record from the database; data on storage is left alone.
  param vdi ref<VDI> -- VDI to forget.

message copy -> ref<VDI> async role=vm-admin -- Copies a whole VDI, or only blocks changed since base_vdi, into a new VDI in sr or into an existing into_vdi.
  param vdi ref<VDI> -- Source VDI.
  param sr ref<SR> = NULL -- SR for a freshly created copy; needed only when into_vdi is not given.
  param base_vdi ref<VDI> = NULL -- If set, only blocks differing from this VDI are copied.
  param into_vdi ref<VDI> = NULL -- Existing VDI to write into; if NULL a new one is created in sr.
  result -- VDI that received the copied blocks.
  errors VDI_READONLY VDI_TOO_SMALL VDI_NOT_SPARSE

message update async role=vm-admin -- Asks the storage backend to refresh the VDI's fields, such as its size.
  param vdi ref<VDI> -- VDI to refresh.
  errors SR_OPERATION_NOT_SUPPORTED

message introduce -> ref<VDI> async role=vm-admin -- Creates a database record for a disk that already exists on storage.
  param uuid string -- UUID of the existing disk.
  param name_label string -- Name label for the record.
  param name_description string -- Description for the record.
  param SR ref<SR> -- SR containing the disk.
  param type vdi_type -- Role of the disk.
  param sharable bool -- Whether several VMs may use the disk at once.
  param read_only bool -- Whether the disk is read-only.
  param other_config map<string,string> -- Additional key/value configuration.
  param location string -- Backend-specific location of the disk within the SR.
  param xenstore_data map<string,string> = {} -- Data to write into xenstore when the disk is attached.
  param sm_config map<string,string> = {} -- Backend-specific storage manager data.
  param managed bool = true -- Value for the managed flag.
  param virtual_size int = 0 -- Guest-visible size, in bytes.
  param physical_utilisation int = 0 -- Physical space used, in bytes.
  param metadata_of_pool ref<pool> = NULL -- Pool whose metadata the disk holds, if any.
  param is_a_snapshot bool = false -- Whether the disk is a snapshot.
  param snapshot_time datetime = 19700101T00:00:00Z -- Time at which the snapshot was taken.
  param snapshot_of ref<VDI> = NULL -- VDI this snapshot was taken from, if any.
  result -- Reference to the new VDI record.
  errors SR_OPERATION_NOT_SUPPORTED

message resize_online async role=vm-admin removed -- Removed: resized a VDI that might be attached to running guests.
  param vdi ref<VDI> -- VDI to resize.
  param size int -- New size, in bytes.

message resize async role=vm-admin -- Changes the VDI's virtual size.
  param vdi ref<VDI> -- VDI to resize.
  param size int -- New virtual size, in bytes.

message clone -> ref<VDI> async role=vm-admin -- Makes an exact copy of the VDI in the same SR; driver_params are passed to the backend's clone.
  param vdi ref<VDI> -- VDI to clone.
  param driver_params map<string,string> = {} -- Backend-specific options for the clone.
  result -- Reference to the new clone.

message snapshot -> ref<VDI> async role=vm-admin -- Takes a read-only snapshot of the VDI in the same SR; driver_params are passed to the backend.
  param vdi ref<VDI> -- VDI to snapshot.
  param driver_params map<string,string> = {} -- Backend-specific options for the snapshot.
  result -- Reference to the new snapshot VDI.
