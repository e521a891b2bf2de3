class event --
options 

enum event_operation --
  value add --
  value del --
  value mod --

field snapshot record<any> ro-run --
field id int ro-ctor --
field timestamp datetime ro-ctor deprecated --
field class string ro-ctor --
field operation event_operation ro-ctor --
field ref string ro-ctor --
field obj_uuid string ro-ctor deprecated --

message inject -> string role=read-only+cert --
  param class string --
  param ref string --
  result --

message get_current_id -> int role=read-only+cert --
  result --

message from -> record<event_batch> role=read-only+cert --
  param classes set<string> --
  param token string --
  param timeout float --
  result --
  errors SESSION_NOT_REGISTERED EVENTS_LOST

message next -> set<record<event>> role=read-only+cert deprecated --
  result --
  errors SESSION_NOT_REGISTERED EVENTS_LOST

message unregister async role=read-only+cert deprecated --
  param classes set<string> --

message register async role=read-only+cert deprecated --
  param classes set<string> --
