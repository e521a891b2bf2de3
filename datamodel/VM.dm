class VM --
options db getall ctor events write=vm-admin

enum vm_power_state --
  value Halted --
  value Paused --
  value Running --
  value Suspended --

enum on_softreboot_behavior --
  value soft_reboot --
  value destroy --
  value restart --
  value preserve --

enum on_normal_exit --
  value destroy --
  value restart --

enum vm_operations --
  value snapshot --
  value clone --
  value copy --
  value create_template --
  value revert --
  value checkpoint --
  value snapshot_with_quiesce --
  value provision --
  value start --
  value start_on --
  value pause --
  value unpause --
  value clean_shutdown --
  value clean_reboot --
  value hard_shutdown --
  value power_state_reset --
  value hard_reboot --
  value suspend --
  value csvm --
  value resume --
  value resume_on --
  value pool_migrate --
  value migrate_send --
  value get_boot_record --
  value send_sysrq --
  value send_trigger --
  value query_services --
  value shutdown --
  value call_plugin --
  value changing_memory_live --
  value awaiting_memory_live --
  value changing_dynamic_range --
  value changing_static_range --
  value changing_memory_limits --
  value changing_shadow_memory --
  value changing_shadow_memory_live --
  value changing_VCPUs --
  value changing_VCPUs_live --
  value changing_NVRAM --
  value assert_operation_valid --
  value data_source_op --
  value update_allowed_operations --
  value make_into_template --
  value import --
  value export --
  value metadata_export --
  value reverting --
  value destroy --
  value create_vtpm --

enum on_crash_behaviour --
  value destroy --
  value coredump_and_destroy --
  value restart --
  value coredump_and_restart --
  value preserve --
  value rename_restart --

enum domain_type --
  value hvm --
  value pv --
  value pv_in_pvh --
  value pvh --
  value unspecified --

field uuid string ro-run --
field allowed_operations set<vm_operations> ro-run = [] --
field current_operations map<string,vm_operations> ro-run = {} --
field name/label string rw = "" --
field name/description string rw = "" --
field power_state vm_power_state ro-ctor = Halted --
field user_version int rw --
field is_a_template bool rw --
field is_default_template bool ro-run = false --
field suspend_VDI ref<VDI> ro-ctor = NULL --
field resident_on ref<host> ro-run --
field scheduled_to_be_resident_on ref<host> ro-run = NULL --
field affinity ref<host> rw write=vm-power-admin --
field memory/overhead int ro-run = 0 --
field memory/target int ro-ctor = 0 deprecated --
field memory/static_max int ro-ctor --
field memory/dynamic_max int ro-ctor --
field memory/dynamic_min int ro-ctor --
field memory/static_min int ro-ctor --
field VCPUs/params map<string,string> rw --
field VCPUs/max int ro-ctor --
field VCPUs/at_startup int ro-ctor --
field actions/after_softreboot on_softreboot_behavior rw = soft_reboot prototyped --
field actions/after_shutdown on_normal_exit rw --
field actions/after_reboot on_normal_exit rw --
field actions/after_crash on_crash_behaviour ro-ctor --
field consoles set<ref<console>> ro-run inverse=console.VM --
field VIFs set<ref<VIF>> ro-run inverse=VIF.VM --
field VBDs set<ref<VBD>> ro-run inverse=VBD.VM --
field VUSBs set<ref<VUSB>> ro-run inverse=VUSB.VM --
field crash_dumps set<ref<crashdump>> ro-run inverse=crashdump.VM --
field VTPMs set<ref<VTPM>> ro-run inverse=VTPM.VM --
field PV/bootloader string rw --
field PV/kernel string rw --
field PV/ramdisk string rw --
field PV/args string rw --
field PV/bootloader_args string rw --
field PV/legacy_args string rw --
field HVM/boot_policy string ro-ctor deprecated --
field HVM/boot_params map<string,string> rw --
field HVM/shadow_multiplier float ro-ctor = 1. --
field platform map<string,string> rw --
field PCI_bus string rw deprecated --
field other_config map<string,string> rw --
field domid int ro-run --
field domarch string ro-run --
field last_boot_CPU_flags map<string,string> ro-ctor = {} --
field is_control_domain bool ro-run --
field metrics ref<VM_metrics> ro-run --
field guest_metrics ref<VM_guest_metrics> ro-run --
field last_booted_record string ro-ctor = "" --
field recommendations string rw --
field xenstore_data map<string,string> rw = {} --
field ha_always_run bool ro-ctor = false deprecated --
field ha_restart_priority string ro-ctor = "" --
field is_a_snapshot bool ro-run = false --
field snapshot_of ref<VM> ro-run = NULL --
field snapshots set<ref<VM>> ro-run inverse=VM.snapshot_of --
field snapshot_time datetime ro-run = 19700101T00:00:00Z --
field transportable_snapshot_id string ro-run = "" --
field blobs map<string,ref<blob>> ro-run = {} --
field tags set<string> rw = [] write=vm-operator --
field blocked_operations map<vm_operations,string> rw = {} --
field snapshot_info map<string,string> ro-run = {} --
field snapshot_metadata string ro-run = "" --
field parent ref<VM> ro-run = NULL --
field children set<ref<VM>> ro-run inverse=VM.parent --
field bios_strings map<string,string> ro-run = {} --
field protection_policy ref<VMPP> ro-ctor = NULL deprecated --
field is_snapshot_from_vmpp bool ro-ctor = false removed --
field snapshot_schedule ref<VMSS> ro-ctor = NULL --
field is_vmss_snapshot bool ro-ctor = false --
field appliance ref<VM_appliance> ro-ctor = NULL --
field start_delay int ro-ctor = 0 --
field shutdown_delay int ro-ctor = 0 --
field order int ro-ctor = 0 --
field VGPUs set<ref<VGPU>> ro-run inverse=VGPU.VM --
field attached_PCIs set<ref<PCI>> ro-run --
field suspend_SR ref<SR> rw = NULL --
field version int ro-ctor = 0 --
field generation_id string ro-ctor = "0:0" --
field hardware_platform_version int rw = 0 --
field has_vendor_device bool ro-ctor = false --
field requires_reboot bool ro-run = false --
field reference_label string ro-ctor = "" --
field domain_type domain_type ro-ctor = unspecified --
field NVRAM map<string,string> ro-ctor = {} --
field pending_guidances set<update_guidances> ro-run = [] --
field pending_guidances_recommended set<update_guidances> ro-run = [] prototyped --
field pending_guidances_full set<update_guidances> ro-run = [] prototyped --

message restart_device_models async role=vm-power-admin+cert prototyped --
  param self ref<VM> --
  errors VM_BAD_POWER_STATE OTHER_OPERATION_IN_PROGRESS VM_IS_TEMPLATE OPERATION_NOT_ALLOWED VM_BAD_POWER_STATE

message set_HVM_boot_policy role=vm-admin deprecated --
  param self ref<VM> --
  param value string --

message set_domain_type role=vm-admin --
  param self ref<VM> --
  param value domain_type --

message set_actions_after_crash async role=vm-admin --
  param self ref<VM> --
  param value on_crash_behaviour --

message import -> set<ref<VM>> async role=pool-operator --
  param url string --
  param sr ref<SR> --
  param full_restore bool --
  param force bool --
  result --

message set_has_vendor_device async role=vm-admin --
  param self ref<VM> --
  param value bool --

message call_plugin -> string async role=vm-operator --
  param vm ref<VM> --
  param plugin string --
  param fn string --
  param args map<string,string> --
  result --

message query_services -> map<string,string> async role=pool-admin --
  param self ref<VM> --
  result --

message set_appliance async role=pool-operator --
  param self ref<VM> --
  param value ref<VM_appliance> --

message import_convert async role=vm-admin --
  param type string --
  param username string --
  param password string --
  param sr ref<SR> --
  param remote_config map<string,string> --

message recover async role=read-only+cert --
  param self ref<VM> --
  param session_to ref<session> --
  param force bool --

message get_SRs_required_for_recovery -> set<ref<SR>> async role=read-only+cert --
  param self ref<VM> --
  param session_to ref<session> --
  result --

message assert_can_be_recovered async role=read-only+cert --
  param self ref<VM> --
  param session_to ref<session> --
  errors VM_IS_PART_OF_AN_APPLIANCE VM_REQUIRES_SR

message set_suspend_VDI async role=pool-operator --
  param self ref<VM> --
  param value ref<VDI> --

message set_order async role=pool-operator --
  param self ref<VM> --
  param value int --

message set_shutdown_delay async role=pool-operator --
  param self ref<VM> --
  param value int --

message set_start_delay async role=pool-operator --
  param self ref<VM> --
  param value int --

message set_snapshot_schedule role=pool-operator --
  param self ref<VM> --
  param value ref<VMSS> --

message set_protection_policy role=pool-operator removed --
  param self ref<VM> --
  param value ref<VMPP> --

message copy_bios_strings async role=vm-admin --
  param vm ref<VM> --
  param host ref<host> --

message set_bios_strings async role=vm-admin --
  param self ref<VM> --
  param value map<string,string> --
  errors VM_BIOS_STRINGS_ALREADY_SET INVALID_VALUE

message retrieve_wlb_recommendations -> map<ref<host>,set<string>> async role=read-only+cert --
  param vm ref<VM> --
  result --

message assert_agile async role=read-only+cert --
  param self ref<VM> --

message create_new_blob -> ref<blob> async role=vm-power-admin --
  param vm ref<VM> --
  param name string --
  param mime_type string --
  param public bool = false --
  result --

message assert_can_boot_here async role=read-only+cert --
  param self ref<VM> --
  param host ref<host> --
  errors HOST_NOT_ENOUGH_FREE_MEMORY HOST_NOT_ENOUGH_PCPUS NETWORK_SRIOV_INSUFFICIENT_CAPACITY HOST_NOT_LIVE HOST_DISABLED HOST_CANNOT_ATTACH_NETWORK VM_HVM_REQUIRED VM_REQUIRES_GPU VM_REQUIRES_IOMMU VM_REQUIRES_NETWORK VM_REQUIRES_SR VM_REQUIRES_VGPU VM_HOST_INCOMPATIBLE_VERSION VM_HOST_INCOMPATIBLE_VIRTUAL_HARDWARE_PLATFORM_VERSION INVALID_VALUE MEMORY_CONSTRAINT_VIOLATION OPERATION_NOT_ALLOWED VALUE_NOT_SUPPORTED VM_INCOMPATIBLE_WITH_THIS_HOST

message get_possible_hosts -> set<ref<host>> async role=read-only+cert --
  param vm ref<VM> --
  result --

message get_allowed_VIF_devices -> set<string> role=read-only+cert --
  param vm ref<VM> --
  result --

message get_allowed_VBD_devices -> set<string> role=read-only+cert --
  param vm ref<VM> --
  result --

message update_allowed_operations async role=pool-admin --
  param self ref<VM> --

message assert_operation_valid async role=read-only+cert --
  param self ref<VM> --
  param op vm_operations --

message forget_data_source_archives role=vm-admin --
  param self ref<VM> --
  param data_source string --

message query_data_source -> float role=read-only+cert --
  param self ref<VM> --
  param data_source string --
  result --

message record_data_source role=vm-admin --
  param self ref<VM> --
  param data_source string --

message get_data_sources -> set<record<data_source>> role=read-only+cert --
  param self ref<VM> --
  result --

message get_boot_record -> record<VM> role=read-only+cert deprecated --
  param self ref<VM> --
  result --

message assert_can_migrate async role=vm-power-admin --
  param vm ref<VM> --
  param dest map<string,string> --
  param live bool --
  param vdi_map map<ref<VDI>,ref<SR>> --
  param vif_map map<ref<VIF>,ref<network>> --
  param options map<string,string> --
  param vgpu_map map<ref<VGPU>,ref<GPU_group>> = {} --
  errors LICENCE_RESTRICTION

message migrate_send -> ref<VM> async role=vm-power-admin --
  param vm ref<VM> --
  param dest map<string,string> --
  param live bool --
  param vdi_map map<ref<VDI>,ref<SR>> --
  param vif_map map<ref<VIF>,ref<network>> --
  param options map<string,string> --
  param vgpu_map map<ref<VGPU>,ref<GPU_group>> = {} --
  result --
  errors VM_BAD_POWER_STATE LICENCE_RESTRICTION

message maximise_memory -> int async role=read-only+cert --
  param self ref<VM> --
  param total int --
  param approximate bool --
  result --

message send_trigger async role=pool-admin --
  param vm ref<VM> --
  param trigger string --
  errors VM_BAD_POWER_STATE

message send_sysrq async role=pool-admin --
  param vm ref<VM> --
  param key string --
  errors VM_BAD_POWER_STATE

message set_VCPUs_at_startup role=vm-admin --
  param self ref<VM> --
  param value int --

message set_VCPUs_max role=vm-admin --
  param self ref<VM> --
  param value int --

message set_shadow_multiplier_live async role=vm-power-admin --
  param self ref<VM> --
  param multiplier float --

message set_HVM_shadow_multiplier role=vm-power-admin --
  param self ref<VM> --
  param value float --

message get_cooperative -> bool async role=read-only+cert deprecated --
  param self ref<VM> --
  result --

message wait_memory_target_live async role=read-only+cert deprecated --
  param self ref<VM> --

message set_memory_target_live async role=vm-power-admin deprecated --
  param self ref<VM> --
  param target int --

message set_memory async role=vm-power-admin --
  param self ref<VM> --
  param value int --

message set_memory_limits async role=vm-power-admin --
  param self ref<VM> --
  param static_min int --
  param static_max int --
  param dynamic_min int --
  param dynamic_max int --

message set_memory_static_range async role=vm-power-admin --
  param self ref<VM> --
  param min int --
  param max int --

message set_memory_static_min role=vm-power-admin --
  param self ref<VM> --
  param value int --

message set_memory_static_max role=vm-power-admin --
  param self ref<VM> --
  param value int --
  errors HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN

message set_memory_dynamic_range async role=vm-power-admin --
  param self ref<VM> --
  param min int --
  param max int --

message set_memory_dynamic_min role=vm-power-admin --
  param self ref<VM> --
  param value int --

message set_memory_dynamic_max role=vm-power-admin --
  param self ref<VM> --
  param value int --

message compute_memory_overhead -> int async role=read-only+cert --
  param vm ref<VM> --
  result --

message set_ha_always_run role=pool-operator deprecated --
  param self ref<VM> --
  param value bool --

message set_ha_restart_priority role=pool-operator --
  param self ref<VM> --
  param value string --

message remove_from_NVRAM role=vm-admin --
  param self ref<VM> --
  param key string --

message add_to_NVRAM role=vm-admin --
  param self ref<VM> --
  param key string --
  param value string --

message set_NVRAM role=vm-admin --
  param self ref<VM> --
  param value map<string,string> --

message add_to_VCPUs_params_live async role=vm-admin --
  param self ref<VM> --
  param key string --
  param value string --

message set_VCPUs_number_live async role=vm-admin --
  param self ref<VM> --
  param nvcpu int --
  errors OPERATION_NOT_ALLOWED LICENCE_RESTRICTION

message pool_migrate async role=vm-power-admin+cert --
  param vm ref<VM> --
  param host ref<host> --
  param options map<string,string> --
  errors VM_BAD_POWER_STATE OTHER_OPERATION_IN_PROGRESS VM_IS_TEMPLATE OPERATION_NOT_ALLOWED VM_BAD_POWER_STATE

message resume_on async role=vm-power-admin+cert --
  param vm ref<VM> --
  param host ref<host> --
  param start_paused bool --
  param force bool --
  errors VM_BAD_POWER_STATE OPERATION_NOT_ALLOWED VM_IS_TEMPLATE

message resume async role=vm-operator --
  param vm ref<VM> --
  param start_paused bool --
  param force bool --
  errors VM_BAD_POWER_STATE OPERATION_NOT_ALLOWED VM_IS_TEMPLATE

message suspend async role=vm-operator+cert --
  param vm ref<VM> --
  errors VM_BAD_POWER_STATE OTHER_OPERATION_IN_PROGRESS OPERATION_NOT_ALLOWED VM_IS_TEMPLATE

message hard_reboot async role=vm-operator --
  param vm ref<VM> --
  errors VM_BAD_POWER_STATE OTHER_OPERATION_IN_PROGRESS OPERATION_NOT_ALLOWED VM_IS_TEMPLATE

message power_state_reset async role=pool-operator --
  param vm ref<VM> --

message hard_shutdown async role=vm-operator --
  param vm ref<VM> --
  errors VM_BAD_POWER_STATE OTHER_OPERATION_IN_PROGRESS OPERATION_NOT_ALLOWED VM_IS_TEMPLATE

message clean_reboot async role=vm-operator --
  param vm ref<VM> --
  errors VM_BAD_POWER_STATE OTHER_OPERATION_IN_PROGRESS OPERATION_NOT_ALLOWED VM_IS_TEMPLATE

message shutdown async role=vm-operator+cert --
  param vm ref<VM> --
  errors VM_BAD_POWER_STATE OTHER_OPERATION_IN_PROGRESS OPERATION_NOT_ALLOWED VM_IS_TEMPLATE

message clean_shutdown async role=vm-operator --
  param vm ref<VM> --
  errors VM_BAD_POWER_STATE OTHER_OPERATION_IN_PROGRESS OPERATION_NOT_ALLOWED VM_IS_TEMPLATE

message unpause async role=vm-operator --
  param vm ref<VM> --
  errors VM_BAD_POWER_STATE OPERATION_NOT_ALLOWED VM_IS_TEMPLATE

message pause async role=vm-operator --
  param vm ref<VM> --
  errors VM_BAD_POWER_STATE OTHER_OPERATION_IN_PROGRESS OPERATION_NOT_ALLOWED VM_IS_TEMPLATE

message start_on async role=vm-power-admin+cert --
  param vm ref<VM> --
  param host ref<host> --
  param start_paused bool --
  param force bool --
  errors VM_BAD_POWER_STATE VM_IS_TEMPLATE OTHER_OPERATION_IN_PROGRESS OPERATION_NOT_ALLOWED BOOTLOADER_FAILED UNKNOWN_BOOTLOADER

message start async role=vm-operator --
  param vm ref<VM> --
  param start_paused bool --
  param force bool --
  errors VM_BAD_POWER_STATE VM_HVM_REQUIRED VM_IS_TEMPLATE OTHER_OPERATION_IN_PROGRESS OPERATION_NOT_ALLOWED BOOTLOADER_FAILED UNKNOWN_BOOTLOADER NO_HOSTS_AVAILABLE LICENCE_RESTRICTION

message provision async role=vm-admin --
  param vm ref<VM> --
  errors VM_BAD_POWER_STATE SR_FULL OPERATION_NOT_ALLOWED LICENCE_RESTRICTION

message checkpoint -> ref<VM> async role=vm-power-admin --
  param vm ref<VM> --
  param new_name string --
  result --
  errors VM_BAD_POWER_STATE SR_FULL OPERATION_NOT_ALLOWED VM_CHECKPOINT_SUSPEND_FAILED VM_CHECKPOINT_RESUME_FAILED

message revert async role=vm-power-admin --
  param snapshot ref<VM> --
  errors VM_BAD_POWER_STATE OPERATION_NOT_ALLOWED SR_FULL VM_REVERT_FAILED

message copy -> ref<VM> async role=vm-admin --
  param vm ref<VM> --
  param new_name string --
  param sr ref<SR> --
  result --
  errors VM_BAD_POWER_STATE SR_FULL OPERATION_NOT_ALLOWED LICENCE_RESTRICTION

message clone -> ref<VM> async role=vm-admin --
  param vm ref<VM> --
  param new_name string --
  result --
  errors VM_BAD_POWER_STATE SR_FULL OPERATION_NOT_ALLOWED LICENCE_RESTRICTION

message snapshot_with_quiesce -> ref<VM> async role=vm-power-admin removed --
  param vm ref<VM> --
  param new_name string --
  result --
  errors VM_BAD_POWER_STATE SR_FULL OPERATION_NOT_ALLOWED VM_SNAPSHOT_WITH_QUIESCE_FAILED VM_SNAPSHOT_WITH_QUIESCE_TIMEOUT VM_SNAPSHOT_WITH_QUIESCE_PLUGIN_DEOS_NOT_RESPOND VM_SNAPSHOT_WITH_QUIESCE_NOT_SUPPORTED

message snapshot -> ref<VM> async role=vm-power-admin --
  param vm ref<VM> --
  param new_name string --
  param ignore_vdis set<ref<VDI>> = [] --
  result --
  errors VM_BAD_POWER_STATE SR_FULL OPERATION_NOT_ALLOWED
