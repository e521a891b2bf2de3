class subject --
options db getall ctor events write=pool-admin

field uuid string ro-run --
field subject_identifier string ro-ctor = "" --
field other_config map<string,string> ro-ctor = {} --
field roles set<ref<role>> ro-run = [OpaqueRef:0165f154-ba3e-034e-6b27-5d271af109ba] --

message get_permissions_name_label -> set<string> role=read-only+cert --
  param self ref<subject> --
  result --

message remove_from_roles role=pool-admin --
  param self ref<subject> --
  param role ref<role> --

message add_to_roles role=pool-admin --
  param self ref<subject> --
  param role ref<role> --
