class tunnel -- An overlay tunnel (GRE or VxLAN) carrying a network over a transport PIF.
options db getall events

enum tunnel_protocol -- Encapsulation protocol of a tunnel.
  value gre -- Generic Routing Encapsulation.
  value vxlan -- Virtual Extensible LAN encapsulation.

field uuid string ro-run -- Stable unique identifier (UUID) of this tunnel.
field access_PIF ref<PIF> ro-ctor = NULL -- PIF through which the tunnel is reached on the host.
field transport_PIF ref<PIF> ro-ctor = NULL -- PIF over which the encapsulated traffic travels.
field status map<string,string> rw = {"active": "false"} -- Status key/value pairs, e.g. whether the tunnel is active.
field other_config map<string,string> rw = {} -- Free-form key/value pairs for additional configuration.
field protocol tunnel_protocol rw = gre -- Encapsulation protocol in use: gre or vxlan.

message destroy async role=pool-operator -- Removes the tunnel.
  param self ref<tunnel> -- Tunnel to remove.

message create -> ref<tunnel> async role=pool-operator -- Creates a tunnel over a transport PIF, with a new access PIF on the given network; needs Open vSwitch.
  param transport_PIF ref<PIF> -- PIF that carries the encapsulated traffic.
  param network ref<network> -- Network that the tunnel's access PIF joins.
  param protocol tunnel_protocol = gre -- Encapsulation protocol (default gre).
  result -- Reference to the new tunnel.
  errors OPENVSWITCH_NOT_ACTIVE TRANSPORT_PIF_NOT_CONFIGURED IS_TUNNEL_ACCESS_PIF
