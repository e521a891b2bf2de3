class VDI --
options db getall ctor events write=vm-admin

enum vdi_operations --
  value clone --
  value copy --
  value resize --
  value resize_online --
  value snapshot --
  value mirror --
  value destroy --
  value forget --
  value update --
  value force_unlock --
  value generate_config --
  value enable_cbt --
  value disable_cbt --
  value data_destroy --
  value list_changed_blocks --
  value set_on_boot --
  value blocked --

enum vdi_type --
  value system --
  value user --
  value ephemeral --
  value suspend --
  value crashdump --
  value ha_statefile --
  value metadata --
  value redo_log --
  value rrd --
  value pvs_cache --
  value cbt_metadata --

enum on_boot --
  value reset --
  value persist --

field uuid string ro-run --
field name/label string ro-ctor = "" --
field name/description string ro-ctor = "" --
field allowed_operations set<vdi_operations> ro-run = [] --
field current_operations map<string,vdi_operations> ro-run = {} --
field SR ref<SR> ro-ctor --
field VBDs set<ref<VBD>> ro-run inverse=VBD.VDI --
field crash_dumps set<ref<crashdump>> ro-run inverse=crashdump.VDI --
field virtual_size int ro-ctor --
field physical_utilisation int ro-run --
field type vdi_type ro-ctor --
field sharable bool ro-ctor --
field read_only bool ro-ctor --
field other_config map<string,string> rw --
field storage_lock bool ro-run --
field location string ro-run = "" --
field managed bool ro-run --
field missing bool ro-run --
field parent ref<VDI> ro-run deprecated --
field xenstore_data map<string,string> rw = {} --
field sm_config map<string,string> rw = {} --
field is_a_snapshot bool ro-run = false --
field snapshot_of ref<VDI> ro-run = NULL --
field snapshots set<ref<VDI>> ro-run inverse=VDI.snapshot_of --
field snapshot_time datetime ro-run = 19700101T00:00:00Z --
field tags set<string> rw = [] write=vm-operator --
field allow_caching bool ro-run = false --
field on_boot on_boot ro-run = persist --
field metadata_of_pool ref<pool> ro-run = NULL --
field metadata_latest bool ro-run = false --
field is_tools_iso bool ro-run = false --
field cbt_enabled bool ro-run = false --

message get_nbd_info -> set<record<vdi_nbd_server_info>> role=vm-admin --
  param self ref<VDI> --
  result --
  errors VDI_INCOMPATIBLE_TYPE

message list_changed_blocks -> string async role=vm-operator --
  param vdi_from ref<VDI> --
  param vdi_to ref<VDI> --
  result --
  errors SR_OPERATION_NOT_SUPPORTED VDI_MISSING SR_NOT_ATTACHED SR_HAS_NO_PBDS VDI_IN_USE

message data_destroy async role=vm-admin --
  param self ref<VDI> --
  errors SR_OPERATION_NOT_SUPPORTED VDI_MISSING SR_NOT_ATTACHED SR_HAS_NO_PBDS OPERATION_NOT_ALLOWED VDI_INCOMPATIBLE_TYPE VDI_NO_CBT_METADATA VDI_IN_USE VDI_IS_A_PHYSICAL_DEVICE

message disable_cbt async role=vm-admin --
  param self ref<VDI> --
  errors SR_OPERATION_NOT_SUPPORTED VDI_MISSING SR_NOT_ATTACHED SR_HAS_NO_PBDS OPERATION_NOT_ALLOWED VDI_INCOMPATIBLE_TYPE VDI_ON_BOOT_MODE_INCOMPATIBLE_WITH_OPERATION

message enable_cbt async role=vm-admin --
  param self ref<VDI> --
  errors SR_OPERATION_NOT_SUPPORTED VDI_MISSING SR_NOT_ATTACHED SR_HAS_NO_PBDS OPERATION_NOT_ALLOWED VDI_INCOMPATIBLE_TYPE VDI_ON_BOOT_MODE_INCOMPATIBLE_WITH_OPERATION

message pool_migrate -> ref<VDI> async role=vm-power-admin --
  param vdi ref<VDI> --
  param sr ref<SR> --
  param options map<string,string> --
  result --

message read_database_pool_uuid -> string async role=read-only+cert --
  param self ref<VDI> --
  result --

message open_database -> ref<session> async role=pool-operator --
  param self ref<VDI> --
  result --

message set_allow_caching async role=vm-admin --
  param self ref<VDI> --
  param value bool --

message set_on_boot async role=vm-admin --
  param self ref<VDI> --
  param value on_boot --

message set_name_description async role=vm-admin --
  param self ref<VDI> --
  param value string --

message set_name_label async role=vm-admin --
  param self ref<VDI> --
  param value string --

message set_read_only role=vm-admin --
  param self ref<VDI> --
  param value bool --

message set_sharable role=vm-admin --
  param self ref<VDI> --
  param value bool --

message forget async role=vm-admin --
  param vdi ref<VDI> --

message copy -> ref<VDI> async role=vm-admin --
  param vdi ref<VDI> --
  param sr ref<SR> = NULL --
  param base_vdi ref<VDI> = NULL --
  param into_vdi ref<VDI> = NULL --
  result --
  errors VDI_READONLY VDI_TOO_SMALL VDI_NOT_SPARSE

message update async role=vm-admin --
  param vdi ref<VDI> --
  errors SR_OPERATION_NOT_SUPPORTED

message introduce -> ref<VDI> async role=vm-admin --
  param uuid string --
  param name_label string --
  param name_description string --
  param SR ref<SR> --
  param type vdi_type --
  param sharable bool --
  param read_only bool --
  param other_config map<string,string> --
  param location string --
  param xenstore_data map<string,string> = {} --
  param sm_config map<string,string> = {} --
  param managed bool = true --
  param virtual_size int = 0 --
  param physical_utilisation int = 0 --
  param metadata_of_pool ref<pool> = NULL --
  param is_a_snapshot bool = false --
  param snapshot_time datetime = 19700101T00:00:00Z --
  param snapshot_of ref<VDI> = NULL --
  result --
  errors SR_OPERATION_NOT_SUPPORTED

message resize_online async role=vm-admin removed --
  param vdi ref<VDI> --
  param size int --

message resize async role=vm-admin --
  param vdi ref<VDI> --
  param size int --

message clone -> ref<VDI> async role=vm-admin --
  param vdi ref<VDI> --
  param driver_params map<string,string> = {} --
  result --

message snapshot -> ref<VDI> async role=vm-admin --
  param vdi ref<VDI> --
  param driver_params map<string,string> = {} --
  result --
