class role --
options db getall events

field uuid string ro-run --
field name/label string ro-ctor = "" --
field name/description string ro-ctor = "" --
field subroles set<ref<role>> ro-ctor = [] --
field is_internal bool ro-run = false --

message get_by_permission_name_label -> set<ref<role>> role=read-only+cert --
  param label string --
  result --

message get_by_permission -> set<ref<role>> role=read-only+cert --
  param permission ref<role> --
  result --

message get_permissions_name_label -> set<string> role=read-only+cert --
  param self ref<role> --
  result --

message get_permissions -> set<ref<role>> role=read-only+cert --
  param self ref<role> --
  result --
