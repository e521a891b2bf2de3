class Bond -- A bond that aggregates several PIFs into one logical interface (link aggregation).
options db getall events

enum bond_mode -- Algorithm for spreading traffic across the bond members.
  value balance-slb -- Source-level balancing, spreading traffic by source MAC.
  value active-backup -- Only one member carries traffic; the others stand by.
  value lacp -- Link Aggregation Control Protocol (IEEE 802.3ad).

field uuid string ro-run -- Stable unique identifier (UUID) of this bond.
field master ref<PIF> ro-ctor = NULL -- PIF representing the bonded interface.
field slaves set<ref<PIF>> ro-run inverse=PIF.bond_slave_of -- Member PIFs of the bond.
field other_config map<string,string> rw = {} -- Free-form key/value pairs for additional configuration.
field primary_slave ref<PIF> ro-run = NULL -- Member whose MAC and IP settings the bond took over; it gets the bond's config back if the bond is destroyed.
field mode bond_mode ro-run = balance-slb -- Traffic distribution mode of the bond.
field properties map<string,string> ro-run = {} -- Mode-specific settings of the bond.
field links_up int ro-run = 0 -- Count of member links that are currently up.
field auto_update_mac bool ro-run = true -- True if the bond's MAC came from the primary member; false if the client chose it.

message set_property async role=pool-operator -- Sets one mode-specific property of the bond.
  param self ref<Bond> -- Bond to update.
  param name string -- Property name.
  param value string -- Property value.

message set_mode async role=pool-operator -- Switches the bond to another mode.
  param self ref<Bond> -- Bond to update.
  param value bond_mode -- New bonding mode.

message destroy async role=pool-operator -- Dissolves the bond; its configuration moves back to the primary member.
  param self ref<Bond> -- Bond to dissolve.

message create -> ref<Bond> async role=pool-operator -- Bonds the given PIFs together and attaches the resulting bond PIF to a network.
  param network ref<network> -- Network for the new bond PIF.
  param members set<ref<PIF>> -- PIFs to aggregate.
  param MAC string -- MAC for the bond; an empty string inherits the primary member's MAC.
  param mode bond_mode = balance-slb -- Bonding mode to use.
  param properties map<string,string> = {} -- Mode-specific settings for the bond.
  result -- Reference to the new Bond.
