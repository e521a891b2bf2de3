class PIF -- A network interface on a host: a physical NIC, or a VLAN, bond or tunnel interface, each as its own PIF.
options db getall events

enum pif_igmp_status -- IGMP snooping state of the bridge behind a PIF.
  value enabled -- The backing bridge has IGMP snooping switched on.
  value disabled -- The backing bridge has IGMP snooping switched off.
  value unknown -- State not known; for a VLAN PIF, check the underlying tagged PIF instead.

enum ip_configuration_mode -- How an interface obtains its IPv4 address.
  value None -- No address is configured.
  value DHCP -- Address obtained via DHCP.
  value Static -- Address set manually.

enum ipv6_configuration_mode -- How an interface obtains its IPv6 address.
  value None -- No IPv6 address is configured.
  value DHCP -- Address obtained via DHCPv6.
  value Static -- Address set manually.
  value Autoconf -- Address derived automatically from router-advertised prefixes.

enum primary_address_type -- Which IP family supplies an interface's primary address.
  value IPv4 -- The IPv4 address is primary.
  value IPv6 -- The IPv6 address is primary.

field uuid string ro-run -- Stable unique identifier (UUID) of this PIF.
field device string ro-ctor -- Interface name in the host OS, e.g. eth0.
field network ref<network> ro-ctor -- Network this PIF is attached to.
field host ref<host> ro-ctor -- Host that owns the interface.
field MAC string ro-ctor -- Hardware (MAC) address of the NIC.
field MTU int ro-ctor -- Maximum transmission unit, in bytes.
field VLAN int ro-ctor -- VLAN tag of the interface, or -1 if it is untagged.
field metrics ref<PIF_metrics> ro-run -- Metrics object with link state and NIC details for this PIF.
field physical bool ro-run = false -- True for a real NIC; false for VLAN, bond or tunnel interfaces.
field currently_attached bool ro-run = true -- True if the interface is currently up.
field ip_configuration_mode ip_configuration_mode ro-run = None -- How the IPv4 address is obtained.
field IP string ro-run = "" -- Current IPv4 address.
field netmask string ro-run = "" -- IPv4 subnet mask.
field gateway string ro-run = "" -- IPv4 default gateway.
field DNS string ro-run = "" -- DNS server addresses, separated by commas.
field bond_slave_of ref<Bond> ro-run = NULL -- Bond this interface belongs to as a member, or NULL.
field bond_master_of set<ref<Bond>> ro-run inverse=Bond.master -- Bonds for which this PIF is the aggregated interface.
field VLAN_master_of ref<VLAN> ro-run = NULL -- VLAN for which this PIF is the untagged interface, or NULL.
field VLAN_slave_of set<ref<VLAN>> ro-run inverse=VLAN.tagged_PIF -- VLANs whose tagged traffic goes over this PIF.
field management bool ro-run = false -- True if the management toolstack listens for connections on this interface.
field other_config map<string,string> rw = {} -- Free-form key/value pairs for additional configuration.
field disallow_unplug bool ro-run = false -- If true, the toolstack must never unplug this PIF, e.g. because storage traffic uses it.
field tunnel_access_PIF_of set<ref<tunnel>> ro-run inverse=tunnel.access_PIF -- Tunnels for which this PIF is the access interface.
field tunnel_transport_PIF_of set<ref<tunnel>> ro-run inverse=tunnel.transport_PIF -- Tunnels that use this PIF for transport.
field ipv6_configuration_mode ipv6_configuration_mode ro-run = None -- How IPv6 addresses are obtained.
field IPv6 set<string> ro-run = [] -- IPv6 addresses of the interface.
field ipv6_gateway string ro-run = "" -- IPv6 default gateway.
field primary_address_type primary_address_type ro-run = IPv4 -- Whether IPv4 or IPv6 supplies the primary address.
field managed bool ro-ctor = true -- False if xapi leaves the interface alone: no plug/unplug/reconfigure, bonding or VLANs through xapi.
field properties map<string,string> ro-run = {} -- Extra interface settings as key/value pairs, e.g. gro.
field capabilities set<string> ro-run = [] -- Optional features the NIC supports, e.g. fcoe.
field igmp_snooping_status pif_igmp_status ro-run = unknown -- IGMP snooping state of the backing bridge.
field sriov_physical_PIF_of set<ref<network_sriov>> ro-run inverse=network_sriov.physical_PIF -- SR-IOV networks for which this is the physical PIF.
field sriov_logical_PIF_of set<ref<network_sriov>> ro-run inverse=network_sriov.logical_PIF -- SR-IOV networks for which this is the logical PIF.
field PCI ref<PCI> ro-run = NULL -- PCI device underlying this interface, or NULL.

message set_property async role=pool-operator -- Sets a single entry in the PIF's properties map.
  param self ref<PIF> -- PIF to update.
  param name string -- Property name.
  param value string -- Property value.

message db_forget async role=pool-operator -- Deletes only the PIF's database record, without touching the host.
  param self ref<PIF> -- PIF whose record is deleted.

message db_introduce -> ref<PIF> async role=pool-operator -- Creates a PIF record in the database only, with every field supplied by the caller.
  param device string -- Interface name, e.g. eth0.
  param network ref<network> -- Network the PIF is attached to.
  param host ref<host> -- Host owning the interface.
  param MAC string -- Ethernet MAC address.
  param MTU int -- Maximum transmission unit, in bytes.
  param VLAN int -- VLAN tag, or -1 if untagged.
  param physical bool -- Whether this is a real NIC.
  param ip_configuration_mode ip_configuration_mode -- How the IPv4 address is obtained.
  param IP string -- IPv4 address.
  param netmask string -- IPv4 subnet mask.
  param gateway string -- IPv4 default gateway.
  param DNS string -- Comma-separated DNS server addresses.
  param bond_slave_of ref<Bond> -- Bond the interface is a member of, or NULL.
  param VLAN_master_of ref<VLAN> -- VLAN for which this is the untagged PIF, or NULL.
  param management bool -- Whether this is the management interface.
  param other_config map<string,string> -- Additional key/value configuration.
  param disallow_unplug bool = false -- Whether unplugging the PIF is forbidden.
  param ipv6_configuration_mode ipv6_configuration_mode = None -- How IPv6 addresses are obtained.
  param IPv6 set<string> = [] -- IPv6 addresses.
  param ipv6_gateway string = "" -- IPv6 default gateway.
  param primary_address_type primary_address_type = IPv4 -- Which IP family supplies the primary address.
  param managed bool = true -- Whether xapi manages the interface.
  param properties map<string,string> = {} -- Extra interface settings.
  result -- Reference to the new PIF record.

message plug async role=pool-operator -- Brings the interface up.
  param self ref<PIF> -- PIF to bring up.
  errors TRANSPORT_PIF_NOT_CONFIGURED

message set_disallow_unplug async role=pool-operator -- Sets whether the PIF may be unplugged.
  param self ref<PIF> -- PIF to update.
  param value bool -- True to forbid unplugging.
  errors OTHER_OPERATION_IN_PROGRESS CLUSTERING_ENABLED

message unplug async role=pool-operator -- Takes the interface down.
  param self ref<PIF> -- PIF to take down.
  errors HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN VIF_IN_USE PIF_DOES_NOT_ALLOW_UNPLUG PIF_HAS_FCOE_SR_IN_USE

message forget async role=pool-operator -- Deletes the PIF object that represents a network interface.
  param self ref<PIF> -- PIF to delete.
  errors PIF_TUNNEL_STILL_EXISTS CLUSTERING_ENABLED

message introduce -> ref<PIF> async role=pool-operator -- Creates a PIF object for an interface that exists on a host.
  param host ref<host> -- Host where the NIC is present.
  param MAC string -- MAC address of the interface.
  param device string -- Interface name to record.
  param managed bool = true -- Whether xapi should manage the interface (default true).
  result -- Reference to the new PIF.

message scan async role=pool-operator -- Detects the physical interfaces on a host and creates PIFs for them.
  param host ref<host> -- Host to scan.

message set_primary_address_type async role=pool-operator -- Chooses whether IPv4 or IPv6 supplies the PIF's primary address.
  param self ref<PIF> -- PIF to update.
  param primary_address_type primary_address_type -- Preferred address family.

message reconfigure_ipv6 async role=pool-operator -- Changes the interface's IPv6 address settings.
  param self ref<PIF> -- PIF to reconfigure.
  param mode ipv6_configuration_mode -- None, DHCP, Static or Autoconf.
  param IPv6 string -- New IPv6 address as address/prefix-length.
  param gateway string -- New IPv6 gateway.
  param DNS string -- New DNS server settings.
  errors CLUSTERING_ENABLED

message reconfigure_ip async role=pool-operator -- Changes the interface's IPv4 address settings.
  param self ref<PIF> -- PIF to reconfigure.
  param mode ip_configuration_mode -- None, DHCP or Static.
  param IP string -- New IPv4 address.
  param netmask string -- New subnet mask.
  param gateway string -- New default gateway.
  param DNS string -- New DNS server settings.
  errors CLUSTERING_ENABLED

message destroy async role=pool-operator deprecated -- Deprecated: deletes a VLAN PIF; use VLAN.destroy or Bond.destroy instead.
  param self ref<PIF> -- VLAN PIF to delete.
  errors PIF_IS_PHYSICAL

message create_VLAN -> ref<PIF> async role=pool-operator deprecated -- Deprecated: creates a VLAN PIF on top of an existing interface; use VLAN.create instead.
  param device string -- Name of the underlying interface.
  param network ref<network> -- Network the new PIF joins.
  param host ref<host> -- Host on which the PIF is created.
  param VLAN int -- Tag number for the new VLAN.
  result -- Reference to the new VLAN PIF.
  errors VLAN_TAG_INVALID
