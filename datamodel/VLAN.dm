class VLAN -- An 802.1Q VLAN linking a tagged PIF to an untagged PIF that carries its traffic.
options db getall events

field uuid string ro-run -- Stable unique identifier (UUID) of this VLAN.
field tagged_PIF ref<PIF> ro-ctor = NULL -- Underlying PIF that carries the tagged frames.
field untagged_PIF ref<PIF> ro-run = NULL -- PIF that presents the VLAN's traffic untagged.
field tag int ro-ctor = -1 -- VLAN ID (802.1Q tag) in use.
field other_config map<string,string> rw = {} -- Free-form key/value pairs for additional configuration.

message destroy async role=pool-operator -- Removes the VLAN together with its untagged PIF.
  param self ref<VLAN> -- VLAN to remove.

message create -> ref<VLAN> async role=pool-operator -- Creates a VLAN on a PIF, adding an untagged PIF on the given network.
  param tagged_PIF ref<PIF> -- PIF that carries the tagged frames.
  param tag int -- VLAN ID to use.
  param network ref<network> -- Network that the new untagged PIF joins.
  result -- Reference to the new VLAN.
