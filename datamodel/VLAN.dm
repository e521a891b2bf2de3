class VLAN --
options db getall events

field uuid string ro-run --
field tagged_PIF ref<PIF> ro-ctor = NULL --
field untagged_PIF ref<PIF> ro-run = NULL --
field tag int ro-ctor = -1 --
field other_config map<string,string> rw = {} --

message destroy async role=pool-operator --
  param self ref<VLAN> --

message create -> ref<VLAN> async role=pool-operator --
  param tagged_PIF ref<PIF> --
  param tag int --
  param network ref<network> --
  result --
