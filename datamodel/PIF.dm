class PIF --
options db getall events

enum pif_igmp_status --
  value enabled --
  value disabled --
  value unknown --

enum ip_configuration_mode --
  value None --
  value DHCP --
  value Static --

enum ipv6_configuration_mode --
  value None --
  value DHCP --
  value Static --
  value Autoconf --

enum primary_address_type --
  value IPv4 --
  value IPv6 --

field uuid string ro-run --
field device string ro-ctor --
field network ref<network> ro-ctor --
field host ref<host> ro-ctor --
field MAC string ro-ctor --
field MTU int ro-ctor --
field VLAN int ro-ctor --
field metrics ref<PIF_metrics> ro-run --
field physical bool ro-run = false --
field currently_attached bool ro-run = true --
field ip_configuration_mode ip_configuration_mode ro-run = None --
field IP string ro-run = "" --
field netmask string ro-run = "" --
field gateway string ro-run = "" --
field DNS string ro-run = "" --
field bond_slave_of ref<Bond> ro-run = NULL --
field bond_master_of set<ref<Bond>> ro-run inverse=Bond.master --
field VLAN_master_of ref<VLAN> ro-run = NULL --
field VLAN_slave_of set<ref<VLAN>> ro-run inverse=VLAN.tagged_PIF --
field management bool ro-run = false --
field other_config map<string,string> rw = {} --
field disallow_unplug bool ro-run = false --
field tunnel_access_PIF_of set<ref<tunnel>> ro-run inverse=tunnel.access_PIF --
field tunnel_transport_PIF_of set<ref<tunnel>> ro-run inverse=tunnel.transport_PIF --
field ipv6_configuration_mode ipv6_configuration_mode ro-run = None --
field IPv6 set<string> ro-run = [] --
field ipv6_gateway string ro-run = "" --
field primary_address_type primary_address_type ro-run = IPv4 --
field managed bool ro-ctor = true --
field properties map<string,string> ro-run = {} --
field capabilities set<string> ro-run = [] --
field igmp_snooping_status pif_igmp_status ro-run = unknown --
field sriov_physical_PIF_of set<ref<network_sriov>> ro-run inverse=network_sriov.physical_PIF --
field sriov_logical_PIF_of set<ref<network_sriov>> ro-run inverse=network_sriov.logical_PIF --
field PCI ref<PCI> ro-run = NULL --

message set_property async role=pool-operator --
  param self ref<PIF> --
  param name string --
  param value string --

message db_forget async role=pool-operator --
  param self ref<PIF> --

message db_introduce -> ref<PIF> async role=pool-operator --
  param device string --
  param network ref<network> --
  param host ref<host> --
  param MAC string --
  param MTU int --
  param VLAN int --
  param physical bool --
  param ip_configuration_mode ip_configuration_mode --
  param IP string --
  param netmask string --
  param gateway string --
  param DNS string --
  param bond_slave_of ref<Bond> --
  param VLAN_master_of ref<VLAN> --
  param management bool --
  param other_config map<string,string> --
  param disallow_unplug bool = false --
  param ipv6_configuration_mode ipv6_configuration_mode = None --
  param IPv6 set<string> = [] --
  param ipv6_gateway string = "" --
  param primary_address_type primary_address_type = IPv4 --
  param managed bool = true --
  param properties map<string,string> = {} --
  result --

message plug async role=pool-operator --
  param self ref<PIF> --
  errors TRANSPORT_PIF_NOT_CONFIGURED

message set_disallow_unplug async role=pool-operator --
  param self ref<PIF> --
  param value bool --
  errors OTHER_OPERATION_IN_PROGRESS CLUSTERING_ENABLED

message unplug async role=pool-operator --
  param self ref<PIF> --
  errors HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN VIF_IN_USE PIF_DOES_NOT_ALLOW_UNPLUG PIF_HAS_FCOE_SR_IN_USE

message forget async role=pool-operator --
  param self ref<PIF> --
  errors PIF_TUNNEL_STILL_EXISTS CLUSTERING_ENABLED

message introduce -> ref<PIF> async role=pool-operator --
  param host ref<host> --
  param MAC string --
  param device string --
  param managed bool = true --
  result --

message scan async role=pool-operator --
  param host ref<host> --

message set_primary_address_type async role=pool-operator --
  param self ref<PIF> --
  param primary_address_type primary_address_type --

message reconfigure_ipv6 async role=pool-operator --
  param self ref<PIF> --
  param mode ipv6_configuration_mode --
  param IPv6 string --
  param gateway string --
  param DNS string --
  errors CLUSTERING_ENABLED

message reconfigure_ip async role=pool-operator --
  param self ref<PIF> --
  param mode ip_configuration_mode --
  param IP string --
  param netmask string --
  param gateway string --
  param DNS string --
  errors CLUSTERING_ENABLED

message destroy async role=pool-operator deprecated --
  param self ref<PIF> --
  errors PIF_IS_PHYSICAL

message create_VLAN -> ref<PIF> async role=pool-operator deprecated --
  param device string --
  param network ref<network> --
  param host ref<host> --
  param VLAN int --
  result --
  errors VLAN_TAG_INVALID
