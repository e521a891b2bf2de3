class tunnel --
options db getall events

enum tunnel_protocol --
  value gre --
  value vxlan --

field uuid string ro-run --
field access_PIF ref<PIF> ro-ctor = NULL --
field transport_PIF ref<PIF> ro-ctor = NULL --
field status map<string,string> rw = {"active": "false"} --
field other_config map<string,string> rw = {} --
field protocol tunnel_protocol rw = gre --

message destroy async role=pool-operator --
  param self ref<tunnel> --

message create -> ref<tunnel> async role=pool-operator --
  param transport_PIF ref<PIF> --
  param network ref<network> --
  param protocol tunnel_protocol = gre --
  result --
  errors OPENVSWITCH_NOT_ACTIVE TRANSPORT_PIF_NOT_CONFIGURED IS_TUNNEL_ACCESS_PIF
