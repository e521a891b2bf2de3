class Bond --
options db getall events

enum bond_mode --
  value balance-slb --
  value active-backup --
  value lacp --

field uuid string ro-run --
field master ref<PIF> ro-ctor = NULL --
field slaves set<ref<PIF>> ro-run inverse=PIF.bond_slave_of --
field other_config map<string,string> rw = {} --
field primary_slave ref<PIF> ro-run = NULL --
field mode bond_mode ro-run = balance-slb --
field properties map<string,string> ro-run = {} --
field links_up int ro-run = 0 --
field auto_update_mac bool ro-run = true --

message set_property async role=pool-operator --
  param self ref<Bond> --
  param name string --
  param value string --

message set_mode async role=pool-operator --
  param self ref<Bond> --
  param value bond_mode --

message destroy async role=pool-operator --
  param self ref<Bond> --

message create -> ref<Bond> async role=pool-operator --
  param network ref<network> --
  param members set<ref<PIF>> --
  param MAC string --
  param mode bond_mode = balance-slb --
  param properties map<string,string> = {} --
  result --
