class PBD --
options db getall ctor events

field uuid string ro-run --
field host ref<host> ro-ctor --
field SR ref<SR> ro-ctor --
field device_config map<string,string> ro-ctor --
field currently_attached bool ro-run --
field other_config map<string,string> rw = {} --

message set_device_config async role=pool-operator --
  param self ref<PBD> --
  param value map<string,string> --

message unplug async role=pool-operator --
  param self ref<PBD> --

message plug async role=pool-operator --
  param self ref<PBD> --
  errors SR_UNKNOWN_DRIVER
