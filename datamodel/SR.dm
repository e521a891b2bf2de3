class SR --
options db getall events

enum storage_operations --
  value scan --
  value destroy --
  value forget --
  value plug --
  value unplug --
  value update --
  value vdi_create --
  value vdi_introduce --
  value vdi_destroy --
  value vdi_resize --
  value vdi_clone --
  value vdi_snapshot --
  value vdi_mirror --
  value vdi_enable_cbt --
  value vdi_disable_cbt --
  value vdi_data_destroy --
  value vdi_list_changed_blocks --
  value vdi_set_on_boot --
  value pbd_create --
  value pbd_destroy --

field uuid string ro-run --
field name/label string ro-ctor = "" --
field name/description string ro-ctor = "" --
field allowed_operations set<storage_operations> ro-run = [] --
field current_operations map<string,storage_operations> ro-run = {} --
field VDIs set<ref<VDI>> ro-run inverse=VDI.SR --
field PBDs set<ref<PBD>> ro-run inverse=PBD.SR --
field virtual_allocation int ro-run --
field physical_utilisation int ro-run --
field physical_size int ro-ctor --
field type string ro-ctor --
field content_type string ro-ctor --
field shared bool ro-run --
field other_config map<string,string> rw --
field tags set<string> rw = [] write=vm-operator --
field sm_config map<string,string> rw = {} --
field blobs map<string,ref<blob>> ro-run = {} --
field local_cache_enabled bool ro-run = false --
field introduced_by ref<DR_task> ro-run = NULL --
field clustered bool ro-run = false --
field is_tools_sr bool ro-run = false --

message forget_data_source_archives role=pool-operator --
  param sr ref<SR> --
  param data_source string --

message query_data_source -> float role=read-only+cert --
  param sr ref<SR> --
  param data_source string --
  result --

message record_data_source role=pool-operator --
  param sr ref<SR> --
  param data_source string --

message get_data_sources -> set<record<data_source>> role=read-only+cert --
  param sr ref<SR> --
  result --

message disable_database_replication async role=pool-operator --
  param sr ref<SR> --

message enable_database_replication async role=pool-operator --
  param sr ref<SR> --

message assert_supports_database_replication async role=pool-operator --
  param sr ref<SR> --

message assert_can_host_ha_statefile async role=pool-operator --
  param sr ref<SR> --

message set_physical_size role=pool-operator --
  param self ref<SR> --
  param value int --

message create_new_blob -> ref<blob> async role=pool-operator --
  param sr ref<SR> --
  param name string --
  param mime_type string --
  param public bool = false --
  result --

message set_name_description async role=pool-operator --
  param sr ref<SR> --
  param value string --

message set_name_label async role=pool-operator --
  param sr ref<SR> --
  param value string --

message set_shared async role=pool-operator --
  param sr ref<SR> --
  param value bool --

message probe_ext -> set<record<probe_result>> async role=pool-operator --
  param host ref<host> --
  param device_config map<string,string> --
  param type string --
  param sm_config map<string,string> = {} --
  result --

message probe -> string async role=pool-operator --
  param host ref<host> --
  param device_config map<string,string> --
  param type string --
  param sm_config map<string,string> = {} --
  result --

message scan async role=vm-power-admin --
  param sr ref<SR> --

message get_supported_types -> set<string> role=read-only+cert --
  result --

message update async role=pool-operator --
  param sr ref<SR> --

message forget async role=pool-operator --
  param sr ref<SR> --
  errors SR_HAS_PBD

message destroy async role=pool-operator --
  param sr ref<SR> --
  errors SR_HAS_PBD

message make -> string async role=pool-operator deprecated --
  param host ref<host> --
  param device_config map<string,string> --
  param physical_size int --
  param name_label string --
  param name_description string --
  param type string --
  param content_type string --
  param sm_config map<string,string> = {} --
  result --

message introduce -> ref<SR> async role=pool-operator --
  param uuid string --
  param name_label string --
  param name_description string --
  param type string --
  param content_type string --
  param shared bool --
  param sm_config map<string,string> = {} --
  result --

message create -> ref<SR> async role=pool-operator --
  param host ref<host> --
  param device_config map<string,string> --
  param physical_size int --
  param name_label string --
  param name_description string --
  param type string --
  param content_type string --
  param shared bool --
  param sm_config map<string,string> = {} --
  result --
  errors SR_UNKNOWN_DRIVER
