class task --
options db getall events

enum task_allowed_operations --
  value cancel --
  value destroy --

enum task_status_type --
  value pending --
  value success --
  value failure --
  value cancelling --
  value cancelled --

field uuid string ro-run --
field name/label string ro-run = "" --
field name/description string ro-run = "" --
field allowed_operations set<task_allowed_operations> ro-run = [] --
field current_operations map<string,task_allowed_operations> ro-run = {} --
field created datetime ro-run --
field finished datetime ro-run --
field status task_status_type ro-run --
field resident_on ref<host> ro-run --
field progress float ro-run --
field type string ro-run --
field result string ro-run --
field error_info set<string> ro-run --
field other_config map<string,string> rw = {} --
field subtask_of ref<task> ro-run = NULL --
field subtasks set<ref<task>> ro-run inverse=task.subtask_of --
field backtrace string ro-run = "()" --

message set_error_info role=read-only+cert --
  param self ref<task> --
  param value set<string> --

message set_result role=read-only+cert --
  param self ref<task> --
  param value string --

message set_progress role=read-only+cert --
  param self ref<task> --
  param value float --

message set_status role=read-only+cert --
  param self ref<task> --
  param value task_status_type --

message cancel async role=read-only+cert --
  param task ref<task> --
  errors OPERATION_NOT_ALLOWED

message destroy role=read-only+cert --
  param self ref<task> --

message create -> ref<task> role=read-only+cert --
  param label string --
  param description string --
  result --
