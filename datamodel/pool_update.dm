class pool_update --
options db getall events

enum update_after_apply_guidance --
  value restartHVM --
  value restartPV --
  value restartHost --
  value restartXAPI --

enum livepatch_status --
  value ok_livepatch_complete --
  value ok_livepatch_incomplete --
  value ok --

field uuid string ro-run --
field name/label string ro-ctor = "" --
field name/description string ro-ctor = "" --
field version string ro-ctor = "" --
field installation_size int ro-ctor = 0 --
field key string ro-ctor = "" --
field after_apply_guidance set<update_after_apply_guidance> ro-ctor = [] --
field vdi ref<VDI> ro-ctor --
field hosts set<ref<host>> ro-run --
field other_config map<string,string> rw = {} --
field enforce_homogeneity bool ro-ctor = false --

message destroy async role=pool-operator --
  param self ref<pool_update> --

message pool_clean async role=pool-operator --
  param self ref<pool_update> --

message pool_apply async role=pool-operator --
  param self ref<pool_update> --

message apply async role=pool-operator --
  param self ref<pool_update> --
  param host ref<host> --

message precheck -> livepatch_status async role=pool-operator --
  param self ref<pool_update> --
  param host ref<host> --
  result --

message introduce -> ref<pool_update> async role=pool-operator --
  param vdi ref<VDI> --
  result --
