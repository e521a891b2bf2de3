class network --
options db getall ctor events write=vm-admin

enum network_operations --
  value attaching --

enum network_default_locking_mode --
  value unlocked --
  value disabled --

enum network_purpose --
  value nbd --
  value insecure_nbd --

field uuid string ro-run --
field name/label string rw = "" write=pool-operator --
field name/description string rw = "" write=pool-operator --
field allowed_operations set<network_operations> ro-run = [] --
field current_operations map<string,network_operations> ro-run = {} --
field VIFs set<ref<VIF>> ro-run inverse=VIF.network --
field PIFs set<ref<PIF>> ro-run inverse=PIF.network --
field MTU int rw = 1500 --
field other_config map<string,string> rw write=pool-operator --
field bridge string ro-ctor = "" --
field managed bool ro-ctor = true --
field blobs map<string,ref<blob>> ro-run = {} --
field tags set<string> rw = [] write=vm-operator --
field default_locking_mode network_default_locking_mode ro-run = unlocked --
field assigned_ips map<ref<VIF>,string> ro-run = {} --
field purpose set<network_purpose> ro-run = [] --

message remove_purpose async role=pool-admin --
  param self ref<network> --
  param value network_purpose --

message add_purpose async role=pool-admin --
  param self ref<network> --
  param value network_purpose --
  errors NETWORK_INCOMPATIBLE_PURPOSES

message set_default_locking_mode async role=pool-operator --
  param network ref<network> --
  param value network_default_locking_mode --

message create_new_blob -> ref<blob> async role=pool-operator --
  param network ref<network> --
  param name string --
  param mime_type string --
  param public bool = false --
  result --
