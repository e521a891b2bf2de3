class event -- Change notifications for database objects, read with event.from (or the legacy register/next calls).
options 

enum event_operation -- Kind of change an event reports.
  value add -- Object was created.
  value del -- Object was removed.
  value mod -- Object fields were changed.

field snapshot record<any> ro-run -- Full record of the object after the change; omitted for deletions.
field id int ro-ctor -- Monotonically increasing sequence number of the event.
field timestamp datetime ro-ctor deprecated -- When the change happened; deprecated and not meaningful for event.from.
field class string ro-ctor -- Lowercase name of the changed object's class, e.g. vm.
field operation event_operation ro-ctor -- Whether the object was added, modified or deleted.
field ref string ro-ctor -- Reference of the changed object.
field obj_uuid string ro-ctor deprecated -- UUID of the changed object; deprecated.

message inject -> string role=read-only+cert -- Touches an object to produce an artificial event and returns its token; once event.from yields a greater token, that change has been observed.
  param class string -- Class name of the object.
  param ref string -- Reference of the object to touch.
  result -- Token marking the position of the injected event.

message get_current_id -> int role=read-only+cert -- Returns the id that the next generated event will receive (the legacy event.next counter).
  result -- Next event id.

message from -> record<event_batch> role=read-only+cert -- Waits until watched objects change after the token or the timeout expires, then returns the coalesced changes plus a new token.
  param classes set<string> -- Classes to watch: names (case-insensitive), "*" for all, or "class/ref" for one object.
  param token string -- Token from a previous call; the empty string reports every existing object as an add.
  param timeout float -- Longest time to block, in seconds; 0 returns at once.
  result -- Batch holding the events, the new token, and per-class object counts (valid_ref_counts).
  errors SESSION_NOT_REGISTERED EVENTS_LOST

message next -> set<record<event>> role=read-only+cert deprecated -- Legacy: blocks until events exist for classes registered by this session, then returns them; use event.from instead.
  result -- Non-empty set of pending events.
  errors SESSION_NOT_REGISTERED EVENTS_LOST

message unregister async role=read-only+cert deprecated -- Legacy: stops this session receiving event.next events for the given classes.
  param classes set<string> -- Classes to stop watching.

message register async role=read-only+cert deprecated -- Legacy: subscribes this session to event.next events for the given classes.
  param classes set<string> -- Classes to watch; "*" means every class.
