class message -- An alert or notice for administrators, usually tied to a particular object.
options events

enum cls -- Kinds of object a message can refer to.
  value VM -- A virtual machine.
  value Host -- A physical host.
  value SR -- A storage repository.
  value Pool -- The pool itself.
  value VMPP -- A VM protection policy.
  value VMSS -- A VM snapshot schedule.
  value PVS_proxy -- A PVS proxy.
  value VDI -- A virtual disk image.
  value Certificate -- A TLS certificate.

field uuid string ro-run -- Unique identifier of this message.
field name string ro-run -- Message type name, such as an alert code.
field priority int ro-run -- Numeric priority (severity level) of the message.
field cls cls ro-run -- Class of the object the message concerns.
field obj_uuid string ro-run -- UUID of the object the message concerns.
field timestamp datetime ro-run -- Creation time of the message.
field body string ro-run -- Text content of the message.

message get_all_records_where -> map<ref<message>,record<message>> role=read-only+cert -- Returns message records; the filter expression is currently not applied.
  param expr string -- Filter expression (ignored).
  result -- Map from message references to their records.

message get_all_records -> map<ref<message>,record<message>> role=read-only+cert -- Returns every message together with its record.
  result -- Map from message references to their records.

message get_by_uuid -> ref<message> role=read-only+cert -- Looks up a message by its UUID.
  param uuid string -- UUID of the wanted message.
  result -- Reference of the matching message.

message get_record -> record<message> role=read-only+cert -- Returns all fields of one message.
  param self ref<message> -- Message to read.
  result -- Record of the message.

message get_since -> map<ref<message>,record<message>> role=read-only+cert -- Returns all messages newer than the given time.
  param since datetime -- Only messages created after this time are included.
  result -- Map from matching message references to their records.

message get_all -> set<ref<message>> role=read-only+cert -- Lists references to all messages.
  result -- References of every message.

message get -> map<ref<message>,record<message>> role=read-only+cert -- Returns messages about one object that were created after the given time.
  param cls cls -- Class of the object.
  param obj_uuid string -- UUID of the object.
  param since datetime -- Only messages created after this time are included.
  result -- Map from matching message references to their records.

message destroy_many async role=pool-operator prototyped -- Deletes several messages in a single call.
  param messages set<ref<message>> -- Messages to delete.

message destroy role=pool-operator -- Deletes one message.
  param self ref<message> -- Message to delete.

message create -> ref<message> role=pool-operator -- Creates a new message attached to an object.
  param name string -- Message type name.
  param priority int -- Numeric priority of the message.
  param cls cls -- Class of the related object.
  param obj_uuid string -- UUID of the related object.
  param body string -- Text content of the message.
  result -- The new message's reference.
