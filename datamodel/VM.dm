class VM -- A virtual machine (guest), with its configuration, attached devices and runtime state.
options db getall ctor events write=vm-admin

enum vm_power_state -- Power state of a VM.
  value Halted -- Powered off; the VM consumes no host memory or CPU.
  value Paused -- Resources are allocated but the vCPUs are not being scheduled.
  value Running -- The VM is executing on a host.
  value Suspended -- Memory image saved to disk and execution stopped; its disks remain in use.

enum on_softreboot_behavior -- What happens when the guest requests a soft reboot.
  value soft_reboot -- Carry out the soft reboot.
  value destroy -- Tear the domain down, leaving the VM halted.
  value restart -- Do a full restart of the VM instead.
  value preserve -- Keep the domain around in a paused state.

enum on_normal_exit -- Action taken when the guest itself shuts down or reboots.
  value destroy -- Tear the domain down, leaving the VM halted.
  value restart -- Boot the VM again.

enum vm_operations -- Operations that can be allowed on, or running against, a VM.
  value snapshot -- Taking a disk snapshot (VM.snapshot).
  value clone -- Cloning the VM (VM.clone).
  value copy -- Making a full copy (VM.copy).
  value create_template -- Creating a template from the VM.
  value revert -- Reverting to a snapshot (VM.revert).
  value checkpoint -- Snapshot including memory state (VM.checkpoint).
  value snapshot_with_quiesce -- Quiesced snapshot (VM.snapshot_with_quiesce, now removed).
  value provision -- Provisioning disks (VM.provision).
  value start -- Booting the VM (VM.start).
  value start_on -- Booting the VM on a chosen host (VM.start_on).
  value pause -- Pausing the VM (VM.pause).
  value unpause -- Unpausing the VM (VM.unpause).
  value clean_shutdown -- Guest-cooperative shutdown (VM.clean_shutdown).
  value clean_reboot -- Guest-cooperative reboot (VM.clean_reboot).
  value hard_shutdown -- Forced power-off (VM.hard_shutdown).
  value power_state_reset -- Forcing the recorded state to Halted (VM.power_state_reset).
  value hard_reboot -- Forced reboot (VM.hard_reboot).
  value suspend -- Suspending to disk (VM.suspend).
  value csvm -- The legacy internal 'csvm' operation.
  value resume -- Resuming from suspend (VM.resume).
  value resume_on -- Resuming on a chosen host (VM.resume_on).
  value pool_migrate -- Migrating within the pool (VM.pool_migrate).
  value migrate_send -- Migrating with storage, possibly cross-pool (VM.migrate_send).
  value get_boot_record -- Reading the boot-time record (VM.get_boot_record).
  value send_sysrq -- Sending a SysRq key (VM.send_sysrq).
  value send_trigger -- Sending a trigger (VM.send_trigger).
  value query_services -- Querying advertised services (VM.query_services).
  value shutdown -- Clean-then-hard shutdown (VM.shutdown).
  value call_plugin -- Invoking a VM plugin (VM.call_plugin).
  value changing_memory_live -- Memory settings of a running VM are being changed.
  value awaiting_memory_live -- Waiting for a running VM to reach new memory settings.
  value changing_dynamic_range -- The dynamic memory range is being changed.
  value changing_static_range -- The static memory range is being changed.
  value changing_memory_limits -- All memory limits are being changed together.
  value changing_shadow_memory -- Shadow memory of a halted VM is being changed.
  value changing_shadow_memory_live -- Shadow memory of a running VM is being changed.
  value changing_VCPUs -- vCPU settings of a halted VM are being changed.
  value changing_VCPUs_live -- vCPU settings of a running VM are being changed.
  value changing_NVRAM -- NVRAM of a halted VM is being changed.
  value assert_operation_valid -- Checking whether an operation is permitted.
  value data_source_op -- Adding, removing, querying or listing data sources.
  value update_allowed_operations -- Recomputing the allowed operations list.
  value make_into_template -- Converting the VM into a template.
  value import -- Import of a VM streamed in over HTTP.
  value export -- Export of the whole VM streamed out over HTTP.
  value metadata_export -- Metadata-only export of the VM, without disk contents.
  value reverting -- Going back to an earlier snapshotted state.
  value destroy -- Uninstalling (deleting) the VM.
  value create_vtpm -- Creating a vTPM and attaching it to the VM.

enum on_crash_behaviour -- Action taken when the guest crashes.
  value destroy -- Tear the domain down, leaving the VM halted.
  value coredump_and_destroy -- Save a crash dump, then tear the domain down.
  value restart -- Boot the VM again.
  value coredump_and_restart -- Save a crash dump, then boot the VM again.
  value preserve -- Keep the crashed domain around, paused, for inspection.
  value rename_restart -- Keep the crashed domain under a new name and start a fresh copy.

enum domain_type -- Kind of Xen domain used to run the VM.
  value hvm -- Fully virtualised (hardware-assisted) guest.
  value pv -- Paravirtualised guest.
  value pv_in_pvh -- PV guest running inside a PVH container.
  value pvh -- PVH guest (hardware-assisted, paravirtualised devices).
  value unspecified -- Domain type unknown or not set.

field uuid string ro-run -- Unique, immutable identifier of the VM.
field allowed_operations set<vm_operations> ro-run = [] -- Operations currently permitted; advisory, may be stale when read.
field current_operations map<string,vm_operations> ro-run = {} -- Running tasks (by task ref) and the operation each performs on this VM.
field name/label string rw = "" -- Human-readable VM name.
field name/description string rw = "" -- Free-text notes about the VM.
field power_state vm_power_state ro-ctor = Halted -- Current power state.
field user_version int rw -- Version number set by VM or template authors for their own use.
field is_a_template bool rw -- True for templates, which cannot be started and serve only for cloning.
field is_default_template bool ro-run = false -- True for built-in default templates; never started or migrated.
field suspend_VDI ref<VDI> ro-ctor = NULL -- VDI holding the suspend image; meaningful only when Suspended.
field resident_on ref<host> ro-run -- Host the VM is currently running on.
field scheduled_to_be_resident_on ref<host> ro-run = NULL -- Host reserved for an upcoming start, resume or migration; counts as a memory reservation.
field affinity ref<host> rw write=vm-power-admin -- Preferred host for start (a hint only), or NULL.
field memory/overhead int ro-run = 0 -- Extra host memory consumed by virtualisation, in bytes.
field memory/target int ro-ctor = 0 deprecated -- Deprecated: current balloon memory target, in bytes.
field memory/static_max int ro-ctor -- Absolute upper memory bound in bytes; changes take effect on next boot.
field memory/dynamic_max int ro-ctor -- Upper bound of the ballooning range, in bytes.
field memory/dynamic_min int ro-ctor -- Lower bound of the ballooning range, in bytes.
field memory/static_min int ro-ctor -- Absolute lower memory bound in bytes; the least the guest can boot with.
field VCPUs/params map<string,string> rw -- vCPU scheduler settings, e.g. weight, cap or mask.
field VCPUs/max int ro-ctor -- Maximum number of vCPUs the VM may have.
field VCPUs/at_startup int ro-ctor -- Number of vCPUs brought online at boot.
field actions/after_softreboot on_softreboot_behavior rw = soft_reboot prototyped -- Behaviour when the guest soft-reboots.
field actions/after_shutdown on_normal_exit rw -- Behaviour when the guest shuts itself down.
field actions/after_reboot on_normal_exit rw -- Behaviour when the guest reboots itself.
field actions/after_crash on_crash_behaviour ro-ctor -- Behaviour when the guest crashes.
field consoles set<ref<console>> ro-run inverse=console.VM -- Console endpoints for this VM.
field VIFs set<ref<VIF>> ro-run inverse=VIF.VM -- Virtual network interfaces of the VM.
field VBDs set<ref<VBD>> ro-run inverse=VBD.VM -- Virtual block devices (disks and CD drives) of the VM.
field VUSBs set<ref<VUSB>> ro-run inverse=VUSB.VM -- Virtual USB devices of the VM.
field crash_dumps set<ref<crashdump>> ro-run inverse=crashdump.VM -- Crash dumps recorded for this VM.
field VTPMs set<ref<VTPM>> ro-run inverse=VTPM.VM -- Virtual TPM devices of the VM.
field PV/bootloader string rw -- Bootloader name or path for PV guests (e.g. pygrub).
field PV/kernel string rw -- Kernel image path for PV guests.
field PV/ramdisk string rw -- Initrd path for PV guests.
field PV/args string rw -- Kernel command line for PV guests.
field PV/bootloader_args string rw -- Extra arguments handed to the PV bootloader.
field PV/legacy_args string rw -- Legacy compatibility arguments for very old guests.
field HVM/boot_policy string ro-ctor deprecated -- Deprecated HVM boot policy (e.g. 'BIOS order'); domain_type supersedes it.
field HVM/boot_params map<string,string> rw -- HVM boot settings such as boot device 'order' and 'firmware'.
field HVM/shadow_multiplier float ro-ctor = 1. -- Factor scaling the shadow memory given to the guest.
field platform map<string,string> rw keys=hvm_serial:pool-admin -- Platform flags for the domain and device model (e.g. acpi, apic, viridian).
field PCI_bus string rw deprecated -- Deprecated, unused PCI pass-through bus path.
field other_config map<string,string> rw keys=hvm_serial:pool-admin,pci:pool-admin,folder:vm-operator,XenCenter.CustomFields.*:vm-operator -- Free-form key/value configuration.
field domid int ro-run -- Xen domain ID when running; -1 when no domain exists.
field domarch string ro-run -- Architecture of the running domain; empty if unknown.
field last_boot_CPU_flags map<string,string> ro-ctor = {} -- CPU vendor and feature flags of the host the VM last booted on.
field is_control_domain bool ro-run -- True for dom0 or a driver domain.
field metrics ref<VM_metrics> ro-run -- Host-side metrics object for this VM.
field guest_metrics ref<VM_guest_metrics> ro-run -- Metrics reported by the in-guest agent, if any.
field last_booted_record string ro-ctor = "" -- Serialised VM record captured at the last boot.
field recommendations string rw -- XML with recommended values and limits for this VM's settings.
field xenstore_data map<string,string> rw = {} -- Entries written under the domain's xenstore vm-data path after creation.
field ha_always_run bool ro-ctor = false deprecated -- Deprecated: ask HA to keep the VM running; use ha_restart_priority.
field ha_restart_priority string ro-ctor = "" -- HA restart policy: 'restart', 'best-effort', or empty for none.
field is_a_snapshot bool ro-run = false -- True if this record is a snapshot; snapshots cannot be started.
field snapshot_of ref<VM> ro-run = NULL -- The VM this snapshot was taken from.
field snapshots set<ref<VM>> ro-run inverse=VM.snapshot_of -- All snapshots taken of this VM.
field snapshot_time datetime ro-run = 19700101T00:00:00Z -- When this snapshot was taken.
field transportable_snapshot_id string ro-run = "" -- Portable identifier of this snapshot VM.
field blobs map<string,ref<blob>> ro-run = {} -- Named binary data blobs attached to the VM.
field tags set<string> rw = [] write=vm-operator -- User-defined labels for grouping and searching.
field blocked_operations map<vm_operations,string> rw = {} -- Operations deliberately disabled, each with the error code reported when tried.
field snapshot_info map<string,string> ro-run = {} -- Human-readable details about this snapshot.
field snapshot_metadata string ro-run = "" -- Encoded metadata of the source VM at snapshot time.
field parent ref<VM> ro-run = NULL -- Parent of this VM in the snapshot tree, or NULL.
field children set<ref<VM>> ro-run inverse=VM.parent -- VMs whose parent is this VM.
field bios_strings map<string,string> ro-run = {} -- BIOS/SMBIOS strings presented to the guest.
field protection_policy ref<VMPP> ro-ctor = NULL deprecated -- Deprecated link to a VM protection policy (VMPP).
field is_snapshot_from_vmpp bool ro-ctor = false removed -- Removed: whether a protection policy made this snapshot.
field snapshot_schedule ref<VMSS> ro-ctor = NULL -- Snapshot schedule (VMSS) covering this VM, or NULL.
field is_vmss_snapshot bool ro-ctor = false -- True if a snapshot schedule created this snapshot.
field appliance ref<VM_appliance> ro-ctor = NULL -- Appliance the VM belongs to, or NULL.
field start_delay int ro-ctor = 0 -- Seconds to wait after starting this VM before the next start group.
field shutdown_delay int ro-ctor = 0 -- Seconds to wait after shutting this VM down before the next group.
field order int ro-ctor = 0 -- Position of the VM in start/shutdown sequences.
field VGPUs set<ref<VGPU>> ro-run inverse=VGPU.VM -- Virtual GPUs assigned to the VM.
field attached_PCIs set<ref<PCI>> ro-run -- Physical PCI devices currently passed through to the VM.
field suspend_SR ref<SR> rw = NULL -- SR to store suspend images on; NULL means use the default.
field version int ro-ctor = 0 -- How many times the VM has been recovered via disaster recovery.
field generation_id string ro-ctor = "0:0" -- Generation ID exposed to the guest, letting it detect copies and reverts.
field hardware_platform_version int rw = 0 -- Virtual hardware platform version the VM requires from a host.
field has_vendor_device bool ro-ctor = false -- Whether an HVM guest gets the emulated C000 PCI device used by Windows Update for PV drivers.
field requires_reboot bool ro-run = false -- True if configuration changes (e.g. memory) need a reboot to apply.
field reference_label string ro-ctor = "" -- Stable text reference to the originating template, unaffected by renames.
field domain_type domain_type ro-ctor = unspecified -- Domain type used when the VM is next started.
field NVRAM map<string,string> ro-ctor = {} -- Initial guest NVRAM contents (e.g. UEFI variables); fixed while running.
field pending_guidances set<update_guidances> ro-run = [] -- Mandatory post-update actions; skipping them may cause failures.
field pending_guidances_recommended set<update_guidances> ro-run = [] prototyped -- Recommended post-update actions needed for updates to take effect.
field pending_guidances_full set<update_guidances> ro-run = [] prototyped -- Optional post-update actions that make every update fully effective.

message restart_device_models async role=vm-power-admin+cert prototyped -- Restarts the device model processes of a running VM, e.g. to pick up updates.
  param self ref<VM> -- The VM whose device models are restarted.
  errors VM_BAD_POWER_STATE OTHER_OPERATION_IN_PROGRESS VM_IS_TEMPLATE OPERATION_NOT_ALLOWED VM_BAD_POWER_STATE

message set_HVM_boot_policy role=vm-admin deprecated -- Deprecated: sets HVM/boot_policy; applies at the next start.
  param self ref<VM> -- The VM to modify.
  param value string -- New boot policy string.

message set_domain_type role=vm-admin -- Sets domain_type; the change applies at the next start.
  param self ref<VM> -- The VM to modify.
  param value domain_type -- Domain type to use.

message set_actions_after_crash async role=vm-admin -- Changes what happens when the guest crashes.
  param self ref<VM> -- The VM to modify.
  param value on_crash_behaviour -- New crash behaviour.

message import -> set<ref<VM>> async role=pool-operator -- Imports VMs from an XVA file fetched from a URL.
  param url string -- Location of the XVA file.
  param sr ref<SR> -- SR that receives the imported disks.
  param full_restore bool -- Restore an exact copy keeping original identities instead of a fresh import.
  param force bool -- Proceed even if non-fatal import checks fail.
  result -- The newly imported VMs.

message set_has_vendor_device async role=vm-admin -- Toggles the emulated vendor PCI device for HVM boots; changing it after Windows is installed can break booting.
  param self ref<VM> -- The VM to modify.
  param value bool -- True to include the vendor device.

message call_plugin -> string async role=vm-operator -- Runs a function of a VM-level API plugin and returns its output.
  param vm ref<VM> -- The VM the plugin operates on.
  param plugin string -- Plugin name.
  param fn string -- Function to invoke inside the plugin.
  param args map<string,string> -- Key/value arguments for the function.
  result -- String output of the plugin function.

message query_services -> map<string,string> async role=pool-admin -- Asks a system domain which services it offers and registers them; system domains only.
  param self ref<VM> -- System domain to query.
  result -- Map from service type to service name.

message set_appliance async role=pool-operator -- Puts the VM into an appliance, or removes it when given NULL.
  param self ref<VM> -- The VM to modify.
  param value ref<VM_appliance> -- Target appliance, or NULL.

message import_convert async role=vm-admin -- Imports a VM by way of an external conversion service.
  param type string -- Kind of conversion to perform.
  param username string -- Administrator user name on the remote host.
  param password string -- Password for that user.
  param sr ref<SR> -- SR for the converted disks.
  param remote_config map<string,string> -- Extra options describing the remote source.

message recover async role=read-only+cert -- Recreates this VM from disaster-recovery metadata in the pool reached via session_to.
  param self ref<VM> -- The VM to recover.
  param session_to ref<session> -- Session on the pool to recover into.
  param force bool -- If true, overwrite newer existing copies of the VM.

message get_SRs_required_for_recovery -> set<ref<SR>> async role=read-only+cert -- Lists the SRs that must be present to recover this VM.
  param self ref<VM> -- The VM of interest.
  param session_to ref<session> -- Session on the pool where recovery would happen.
  result -- SRs needed for the recovery.

message assert_can_be_recovered async role=read-only+cert -- Fails unless every SR this VM needs for recovery is available.
  param self ref<VM> -- The VM to check.
  param session_to ref<session> -- Session on the pool where recovery would happen.
  errors VM_IS_PART_OF_AN_APPLIANCE VM_REQUIRES_SR

message set_suspend_VDI async role=pool-operator -- Replaces the suspend VDI reference; the new VDI must hold identical content.
  param self ref<VM> -- The VM to modify.
  param value ref<VDI> -- Replacement suspend VDI.

message set_order async role=pool-operator -- Sets the VM's position in start/shutdown sequences.
  param self ref<VM> -- The VM to modify.
  param value int -- New order value.

message set_shutdown_delay async role=pool-operator -- Updates shutdown_delay (seconds to pause in the shutdown sequence).
  param self ref<VM> -- The VM to modify.
  param value int -- Delay in seconds.

message set_start_delay async role=pool-operator -- Updates start_delay (seconds to pause in the start sequence).
  param self ref<VM> -- The VM to modify.
  param value int -- Delay in seconds.

message set_snapshot_schedule role=pool-operator -- Assigns the VM to a snapshot schedule, or detaches it with NULL.
  param self ref<VM> -- The VM to modify.
  param value ref<VMSS> -- Schedule to use, or NULL.

message set_protection_policy role=pool-operator removed -- Removed: assigned a VMPP protection policy.
  param self ref<VM> -- The VM to modify.
  param value ref<VMPP> -- Policy to assign.

message copy_bios_strings async role=vm-admin -- Copies a host's BIOS strings into this VM's bios_strings.
  param vm ref<VM> -- The VM to update.
  param host ref<host> -- Host whose BIOS strings are copied.

message set_bios_strings async role=vm-admin -- Overrides selected BIOS strings (e.g. bios-vendor, system-serial-number); only whitelisted keys, and fails if already set.
  param self ref<VM> -- The VM to update.
  param value map<string,string> -- BIOS string keys and their new values.
  errors VM_BIOS_STRINGS_ALREADY_SET INVALID_VALUE

message retrieve_wlb_recommendations -> map<ref<host>,set<string>> async role=read-only+cert -- Gets Workload Balancing ratings for starting the VM on each host.
  param vm ref<VM> -- The VM to place.
  result -- Per host, its WLB rating or the reason the VM cannot start there.

message assert_agile async role=read-only+cert -- Fails if the VM relies on host-local resources and so cannot run on any pool host.
  param self ref<VM> -- The VM to check.

message create_new_blob -> ref<blob> async role=vm-power-admin -- Creates an empty named blob attached to the VM; its data is uploaded separately.
  param vm ref<VM> -- The VM to attach the blob to.
  param name string -- Name of the blob.
  param mime_type string -- Content type; empty means application/octet-stream.
  param public bool = false -- Whether the blob is publicly readable.
  result -- The new blob, used to upload its data.

message assert_can_boot_here async role=read-only+cert -- Fails with the reason if the VM could not start on the given host.
  param self ref<VM> -- The VM to check.
  param host ref<host> -- Candidate host.
  errors HOST_NOT_ENOUGH_FREE_MEMORY HOST_NOT_ENOUGH_PCPUS NETWORK_SRIOV_INSUFFICIENT_CAPACITY HOST_NOT_LIVE HOST_DISABLED HOST_CANNOT_ATTACH_NETWORK VM_HVM_REQUIRED VM_REQUIRES_GPU VM_REQUIRES_IOMMU VM_REQUIRES_NETWORK VM_REQUIRES_SR VM_REQUIRES_VGPU VM_HOST_INCOMPATIBLE_VERSION VM_HOST_INCOMPATIBLE_VIRTUAL_HARDWARE_PLATFORM_VERSION INVALID_VALUE MEMORY_CONSTRAINT_VIOLATION OPERATION_NOT_ALLOWED VALUE_NOT_SUPPORTED VM_INCOMPATIBLE_WITH_THIS_HOST

message get_possible_hosts -> set<ref<host>> async role=read-only+cert -- Lists hosts that could run this VM.
  param vm ref<VM> -- The VM to place.
  result -- Hosts able to run the VM.

message get_allowed_VIF_devices -> set<string> role=read-only+cert -- Lists the VIF device numbers still usable on this VM.
  param vm ref<VM> -- The VM to query.
  result -- Usable VIF device values.

message get_allowed_VBD_devices -> set<string> role=read-only+cert -- Lists the VBD device names still usable on this VM.
  param vm ref<VM> -- The VM to query.
  result -- Usable VBD device values.

message update_allowed_operations async role=pool-admin -- Recalculates allowed_operations for the VM.
  param self ref<VM> -- The VM to refresh.

message assert_operation_valid async role=read-only+cert -- Raises an error if the given operation is not currently permitted on the VM.
  param self ref<VM> -- The VM to check.
  param op vm_operations -- Operation being considered.

message forget_data_source_archives role=vm-admin -- Discards the stored history of one data source.
  param self ref<VM> -- The VM owning the data source.
  param data_source string -- Name of the data source.

message query_data_source -> float role=read-only+cert -- Returns the most recent value of a data source.
  param self ref<VM> -- The VM owning the data source.
  param data_source string -- Name of the data source.
  result -- Current reading, a mean over roughly the past 5 s.

message record_data_source role=vm-admin -- Turns on recording for a data source.
  param self ref<VM> -- The VM owning the data source.
  param data_source string -- Name of the data source.

message get_data_sources -> set<record<data_source>> role=read-only+cert -- Lists the performance data sources available for the VM.
  param self ref<VM> -- The VM to query.
  result -- Records describing each data source.

message get_boot_record -> record<VM> role=read-only+cert deprecated -- Deprecated: returns the VM record as booted, updated for live changes like CPU hotplug.
  param self ref<VM> -- The VM to query.
  result -- VM record reflecting the running configuration.

message assert_can_migrate async role=vm-power-admin -- Checks that migrate_send with the same arguments would be accepted; raises an error otherwise.
  param vm ref<VM> -- The VM to migrate.
  param dest map<string,string> -- Destination details returned by host.migrate_receive.
  param live bool -- True for a live migration.
  param vdi_map map<ref<VDI>,ref<SR>> -- Destination SR for each VDI.
  param vif_map map<ref<VIF>,ref<network>> -- Destination network for each VIF.
  param options map<string,string> -- Extra migration options.
  param vgpu_map map<ref<VGPU>,ref<GPU_group>> = {} -- Destination GPU group for each vGPU.
  errors LICENCE_RESTRICTION

message migrate_send -> ref<VM> async role=vm-power-admin -- Migrates a running VM together with its storage to another host, possibly in another pool.
  param vm ref<VM> -- The VM to migrate.
  param dest map<string,string> -- Destination details returned by host.migrate_receive.
  param live bool -- True for a live migration.
  param vdi_map map<ref<VDI>,ref<SR>> -- Destination SR for each VDI.
  param vif_map map<ref<VIF>,ref<network>> -- Destination network for each VIF.
  param options map<string,string> -- Extra migration options.
  param vgpu_map map<ref<VGPU>,ref<GPU_group>> = {} -- Destination GPU group for each vGPU.
  result -- The VM as it exists at the destination.
  errors VM_BAD_POWER_STATE LICENCE_RESTRICTION

message maximise_memory -> int async role=read-only+cert -- Computes the largest memory size that, with overheads, fits in a given amount of physical RAM.
  param self ref<VM> -- The VM to size.
  param total int -- Physical memory budget, in bytes.
  param approximate bool -- True for a conservative estimate; false to use the VM's exact current settings.
  result -- Largest feasible memory/static_max, in bytes.

message send_trigger async role=pool-admin -- Sends a named trigger to a running VM.
  param vm ref<VM> -- Target VM.
  param trigger string -- Trigger name.
  errors VM_BAD_POWER_STATE

message send_sysrq async role=pool-admin -- Sends a magic SysRq key to a running VM.
  param vm ref<VM> -- Target VM.
  param key string -- The SysRq key, as a one-character string.
  errors VM_BAD_POWER_STATE

message set_VCPUs_at_startup role=vm-admin -- Sets the number of vCPUs brought online at boot; cannot exceed VCPUs/max.
  param self ref<VM> -- The VM to modify.
  param value int -- vCPU count at boot.

message set_VCPUs_max role=vm-admin -- Sets the maximum vCPU count of a halted VM.
  param self ref<VM> -- The VM to modify.
  param value int -- New vCPU maximum.

message set_shadow_multiplier_live async role=vm-power-admin -- Adjusts HVM/shadow_multiplier while the VM is running.
  param self ref<VM> -- The VM to modify.
  param multiplier float -- New multiplier.

message set_HVM_shadow_multiplier role=vm-power-admin -- Adjusts HVM/shadow_multiplier while the VM is halted.
  param self ref<VM> -- The VM to modify.
  param value float -- New multiplier.

message get_cooperative -> bool async role=read-only+cert deprecated -- Deprecated: tells whether the guest is reaching its balloon memory target.
  param self ref<VM> -- The VM to query.
  result -- True if the guest is cooperating with ballooning.

message wait_memory_target_live async role=read-only+cert deprecated -- Deprecated: blocks until a running VM reaches its memory target.
  param self ref<VM> -- The VM to wait on.

message set_memory_target_live async role=vm-power-admin deprecated -- Deprecated: sets the balloon target of a running VM.
  param self ref<VM> -- The VM to modify.
  param target int -- Target memory in bytes.

message set_memory async role=vm-power-admin -- Sets static_max, dynamic_min and dynamic_max to one value; static_min is unchanged.
  param self ref<VM> -- The VM to modify.
  param value int -- Memory size in bytes.

message set_memory_limits async role=vm-power-admin -- Sets all four memory bounds at once; they must satisfy static_min <= dynamic_min <= dynamic_max <= static_max.
  param self ref<VM> -- The VM to modify.
  param static_min int -- New memory/static_min, in bytes.
  param static_max int -- New memory/static_max, in bytes.
  param dynamic_min int -- New memory/dynamic_min, in bytes.
  param dynamic_max int -- New memory/dynamic_max, in bytes.

message set_memory_static_range async role=vm-power-admin -- Sets the boot-time (static) memory bounds of the VM.
  param self ref<VM> -- The VM to modify.
  param min int -- New static minimum, in bytes.
  param max int -- New static maximum, in bytes.

message set_memory_static_min role=vm-power-admin -- Sets memory/static_min.
  param self ref<VM> -- The VM to modify.
  param value int -- New value, in bytes.

message set_memory_static_max role=vm-power-admin -- Sets memory/static_max; refused if it would break the HA failover plan.
  param self ref<VM> -- The VM to modify.
  param value int -- New value, in bytes.
  errors HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN

message set_memory_dynamic_range async role=vm-power-admin -- Sets the range within which ballooning may vary the VM's memory.
  param self ref<VM> -- The VM to modify.
  param min int -- New dynamic minimum, in bytes.
  param max int -- New dynamic maximum, in bytes.

message set_memory_dynamic_min role=vm-power-admin -- Sets memory/dynamic_min.
  param self ref<VM> -- The VM to modify.
  param value int -- New value, in bytes.

message set_memory_dynamic_max role=vm-power-admin -- Sets memory/dynamic_max.
  param self ref<VM> -- The VM to modify.
  param value int -- New value, in bytes.

message compute_memory_overhead -> int async role=read-only+cert -- Calculates the host memory the VM needs beyond its guest memory.
  param vm ref<VM> -- The VM to evaluate.
  result -- Virtualisation overhead, in bytes.

message set_ha_always_run role=pool-operator deprecated -- Deprecated: sets the ha_always_run flag.
  param self ref<VM> -- The VM to modify.
  param value bool -- New flag value.

message set_ha_restart_priority role=pool-operator -- Sets the HA restart priority.
  param self ref<VM> -- The VM to modify.
  param value string -- 'restart', 'best-effort', or empty for no restart.

message remove_from_NVRAM role=vm-admin -- Deletes one key from the VM's NVRAM map.
  param self ref<VM> -- The VM to modify.
  param key string -- Key to delete.

message add_to_NVRAM role=vm-admin -- Adds or updates one key in the VM's NVRAM map.
  param self ref<VM> -- The VM to modify.
  param key string -- Key to set.
  param value string -- Value for the key.

message set_NVRAM role=vm-admin -- Replaces the whole NVRAM map.
  param self ref<VM> -- The VM to modify.
  param value map<string,string> -- New NVRAM contents.

message add_to_VCPUs_params_live async role=vm-admin -- Adds a VCPUs/params entry and applies it immediately to the running domain.
  param self ref<VM> -- The running VM.
  param key string -- Parameter name.
  param value string -- Parameter value.

message set_VCPUs_number_live async role=vm-admin -- Hot-plugs or unplugs vCPUs on a running VM, up to VCPUs/max.
  param self ref<VM> -- The running VM.
  param nvcpu int -- Desired number of online vCPUs.
  errors OPERATION_NOT_ALLOWED LICENCE_RESTRICTION

message pool_migrate async role=vm-power-admin+cert -- Moves the VM to another host in the same pool.
  param vm ref<VM> -- The VM to move.
  param host ref<host> -- Destination host.
  param options map<string,string> -- Boolean options as 'true'/'false': force, live, copy, compress.
  errors VM_BAD_POWER_STATE OTHER_OPERATION_IN_PROGRESS VM_IS_TEMPLATE OPERATION_NOT_ALLOWED VM_BAD_POWER_STATE

message resume_on async role=vm-power-admin+cert -- Resumes a Suspended VM on the specified host.
  param vm ref<VM> -- The suspended VM.
  param host ref<host> -- Host to resume on.
  param start_paused bool -- Leave the VM paused after resuming.
  param force bool -- Skip pre-resume safety checks such as CPU compatibility.
  errors VM_BAD_POWER_STATE OPERATION_NOT_ALLOWED VM_IS_TEMPLATE

message resume async role=vm-operator -- Resumes a Suspended VM on a host picked by the pool.
  param vm ref<VM> -- The suspended VM.
  param start_paused bool -- Leave the VM paused after resuming.
  param force bool -- Skip pre-resume safety checks such as CPU compatibility.
  errors VM_BAD_POWER_STATE OPERATION_NOT_ALLOWED VM_IS_TEMPLATE

message suspend async role=vm-operator+cert -- Saves a Running VM's memory to disk and stops it.
  param vm ref<VM> -- The VM to suspend.
  errors VM_BAD_POWER_STATE OTHER_OPERATION_IN_PROGRESS OPERATION_NOT_ALLOWED VM_IS_TEMPLATE

message hard_reboot async role=vm-operator -- Forcibly stops the VM and boots it again, without guest cooperation.
  param vm ref<VM> -- The VM to reboot.
  errors VM_BAD_POWER_STATE OTHER_OPERATION_IN_PROGRESS OPERATION_NOT_ALLOWED VM_IS_TEMPLATE

message power_state_reset async role=pool-operator -- Marks the VM Halted in the database only, e.g. after its host died; use with care.
  param vm ref<VM> -- The VM to reset.

message hard_shutdown async role=vm-operator -- Forcibly powers off the VM without involving the guest.
  param vm ref<VM> -- The VM to power off.
  errors VM_BAD_POWER_STATE OTHER_OPERATION_IN_PROGRESS OPERATION_NOT_ALLOWED VM_IS_TEMPLATE

message clean_reboot async role=vm-operator -- Asks the guest OS of a Running VM to reboot itself; needs guest support.
  param vm ref<VM> -- The VM to reboot.
  errors VM_BAD_POWER_STATE OTHER_OPERATION_IN_PROGRESS OPERATION_NOT_ALLOWED VM_IS_TEMPLATE

message shutdown async role=vm-operator+cert -- Tries a clean shutdown and falls back to a hard shutdown if that fails.
  param vm ref<VM> -- The VM to shut down.
  errors VM_BAD_POWER_STATE OTHER_OPERATION_IN_PROGRESS OPERATION_NOT_ALLOWED VM_IS_TEMPLATE

message clean_shutdown async role=vm-operator -- Asks the guest OS of a Running VM to shut down; needs guest support.
  param vm ref<VM> -- The VM to shut down.
  errors VM_BAD_POWER_STATE OTHER_OPERATION_IN_PROGRESS OPERATION_NOT_ALLOWED VM_IS_TEMPLATE

message unpause async role=vm-operator -- Lets a Paused VM's vCPUs run again.
  param vm ref<VM> -- The VM to unpause.
  errors VM_BAD_POWER_STATE OPERATION_NOT_ALLOWED VM_IS_TEMPLATE

message pause async role=vm-operator -- Stops scheduling a Running VM's vCPUs while keeping its resources.
  param vm ref<VM> -- The VM to pause.
  errors VM_BAD_POWER_STATE OTHER_OPERATION_IN_PROGRESS OPERATION_NOT_ALLOWED VM_IS_TEMPLATE

message start_on async role=vm-power-admin+cert -- Boots a Halted VM on the specified host.
  param vm ref<VM> -- The VM to boot.
  param host ref<host> -- Host to boot on.
  param start_paused bool -- Create the domain paused instead of running.
  param force bool -- Skip pre-boot safety checks such as CPU compatibility.
  errors VM_BAD_POWER_STATE VM_IS_TEMPLATE OTHER_OPERATION_IN_PROGRESS OPERATION_NOT_ALLOWED BOOTLOADER_FAILED UNKNOWN_BOOTLOADER

message start async role=vm-operator -- Boots a Halted VM on a host picked by the pool.
  param vm ref<VM> -- The VM to boot.
  param start_paused bool -- Create the domain paused instead of running.
  param force bool -- Skip pre-boot safety checks such as CPU compatibility.
  errors VM_BAD_POWER_STATE VM_HVM_REQUIRED VM_IS_TEMPLATE OTHER_OPERATION_IN_PROGRESS OPERATION_NOT_ALLOWED BOOTLOADER_FAILED UNKNOWN_BOOTLOADER NO_HOSTS_AVAILABLE LICENCE_RESTRICTION

message provision async role=vm-admin -- Creates the disks described in the VM's other_config and runs any post-install script.
  param vm ref<VM> -- The VM to provision.
  errors VM_BAD_POWER_STATE SR_FULL OPERATION_NOT_ALLOWED LICENCE_RESTRICTION

message checkpoint -> ref<VM> async role=vm-power-admin -- Snapshots the VM including its memory, using storage-level snapshots where available.
  param vm ref<VM> -- The VM to checkpoint.
  param new_name string -- Name for the checkpoint.
  result -- The new checkpoint VM.
  errors VM_BAD_POWER_STATE SR_FULL OPERATION_NOT_ALLOWED VM_CHECKPOINT_SUSPEND_FAILED VM_CHECKPOINT_RESUME_FAILED

message revert async role=vm-power-admin -- Returns a VM to the state captured in the given snapshot.
  param snapshot ref<VM> -- Snapshot to go back to.
  errors VM_BAD_POWER_STATE OPERATION_NOT_ALLOWED SR_FULL VM_REVERT_FAILED

message copy -> ref<VM> async role=vm-admin -- Makes an independent full copy of a Halted VM; its disks are not part of a CoW chain.
  param vm ref<VM> -- The VM to copy.
  param new_name string -- Name for the copy.
  param sr ref<SR> -- SR for all copied disks; an invalid ref keeps each disk's current SR.
  result -- The new VM.
  errors VM_BAD_POWER_STATE SR_FULL OPERATION_NOT_ALLOWED LICENCE_RESTRICTION

message clone -> ref<VM> async role=vm-admin -- Makes a new VM from a Halted VM using fast storage cloning such as copy-on-write.
  param vm ref<VM> -- The VM to clone.
  param new_name string -- Name for the clone.
  result -- The new VM.
  errors VM_BAD_POWER_STATE SR_FULL OPERATION_NOT_ALLOWED LICENCE_RESTRICTION

message snapshot_with_quiesce -> ref<VM> async role=vm-power-admin removed -- Removed: took a snapshot after quiescing the guest via its agent.
  param vm ref<VM> -- The VM to snapshot.
  param new_name string -- Name for the snapshot.
  result -- The new snapshot VM.
  errors VM_BAD_POWER_STATE SR_FULL OPERATION_NOT_ALLOWED VM_SNAPSHOT_WITH_QUIESCE_FAILED VM_SNAPSHOT_WITH_QUIESCE_TIMEOUT VM_SNAPSHOT_WITH_QUIESCE_PLUGIN_DEOS_NOT_RESPOND VM_SNAPSHOT_WITH_QUIESCE_NOT_SUPPORTED

message snapshot -> ref<VM> async role=vm-power-admin -- Takes a disk snapshot of the VM as a new VM record, using storage-level snapshots where available.
  param vm ref<VM> -- The VM to snapshot.
  param new_name string -- Name for the snapshot.
  param ignore_vdis set<ref<VDI>> = [] -- VDIs to leave out of the snapshot.
  result -- The new snapshot VM.
  errors VM_BAD_POWER_STATE SR_FULL OPERATION_NOT_ALLOWED
