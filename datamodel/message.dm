class message --
options events

enum cls --
  value VM --
  value Host --
  value SR --
  value Pool --
  value VMPP --
  value VMSS --
  value PVS_proxy --
  value VDI --
  value Certificate --

field uuid string ro-run --
field name string ro-run --
field priority int ro-run --
field cls cls ro-run --
field obj_uuid string ro-run --
field timestamp datetime ro-run --
field body string ro-run --

message get_all_records_where -> map<ref<message>,record<message>> role=read-only+cert --
  param expr string --
  result --

message get_all_records -> map<ref<message>,record<message>> role=read-only+cert --
  result --

message get_by_uuid -> ref<message> role=read-only+cert --
  param uuid string --
  result --

message get_record -> record<message> role=read-only+cert --
  param self ref<message> --
  result --

message get_since -> map<ref<message>,record<message>> role=read-only+cert --
  param since datetime --
  result --

message get_all -> set<ref<message>> role=read-only+cert --
  result --

message get -> map<ref<message>,record<message>> role=read-only+cert --
  param cls cls --
  param obj_uuid string --
  param since datetime --
  result --

message destroy_many async role=pool-operator prototyped --
  param messages set<ref<message>> --

message destroy role=pool-operator --
  param self ref<message> --

message create -> ref<message> role=pool-operator --
  param name string --
  param priority int --
  param cls cls --
  param obj_uuid string --
  param body string --
  result --
