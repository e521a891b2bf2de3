class auth --
options 


message get_group_membership -> set<string> role=read-only+cert --
  param subject_identifier string --
  result --

message get_subject_information_from_identifier -> map<string,string> role=read-only+cert --
  param subject_identifier string --
  result --

message get_subject_identifier -> string role=read-only+cert --
  param subject_name string --
  result --
