class task -- Tracks a long-running, usually asynchronous, operation and its outcome.
options db getall events transient

enum task_allowed_operations -- Operations that can be applied to a task.
  value cancel -- Request that the task stop early.
  value destroy -- Remove the task record.

enum task_status_type -- Lifecycle state of a task.
  value pending -- Still running.
  value success -- Finished and succeeded.
  value failure -- Finished with an error; see error_info.
  value cancelling -- A cancel request is being processed.
  value cancelled -- Stopped because it was cancelled.

field uuid string ro-run -- Unique identifier of this task.
field name/label string ro-run = "" -- Short name; for API calls, the call name such as Async.VM.start.
field name/description string ro-run = "" -- Longer free-text description of the task.
field allowed_operations set<task_allowed_operations> ro-run = [] -- Operations currently permitted on the task; advisory only, may be stale when read.
field current_operations map<string,task_allowed_operations> ro-run = {} -- Operations in progress on this task, keyed by the task carrying them out.
field created datetime ro-run -- Creation time of the task.
field finished datetime ro-run -- Time the task completed; meaningless while status is pending.
field status task_status_type ro-run -- Where the task is in its lifecycle.
field resident_on ref<host> ro-run -- Host on which the task is executing.
field progress float ro-run -- Estimated completed fraction, 0.0 to 1.0; use status, not this, to detect completion.
field type string ro-run -- On success, class name of the reference held in result; undefined otherwise.
field result string ro-run -- On success, the encoded return value (an XML-RPC value, empty for void); undefined otherwise.
field error_info set<string> ro-run -- On failure, the error code followed by its parameters; undefined otherwise.
field other_config map<string,string> rw = {} keys=applies_to:vm-operator,XenCenterUUID:vm-operator,XenCenterMeddlingActionTitle:vm-operator -- Free-form string key/value pairs attached to the task.
field subtask_of ref<task> ro-run = NULL -- Parent task if this is a subtask, else NULL.
field subtasks set<ref<task>> ro-run inverse=task.subtask_of -- Child tasks spawned under this task.
field backtrace string ro-run = "()" -- Debugging call trace, as an S-expression string.

message set_error_info role=read-only+cert -- Overwrites the task's error_info; intended for tasks the caller created.
  param self ref<task> -- Task to update.
  param value set<string> -- Error code and parameters to store.

message set_result role=read-only+cert -- Overwrites the task's result string.
  param self ref<task> -- Task to update.
  param value string -- Encoded result to store.

message set_progress role=read-only+cert -- Updates the task's completed fraction.
  param self ref<task> -- Task to update.
  param value float -- New progress, from 0.0 to 1.0.

message set_status role=read-only+cert -- Updates the task's status.
  param self ref<task> -- Task to update.
  param value task_status_type -- New status.

message cancel async role=read-only+cert -- Asks for the task to be cancelled; this is cooperative, so it may still finish normally, and stopping can take arbitrarily long.
  param task ref<task> -- Task to cancel.
  errors OPERATION_NOT_ALLOWED

message destroy role=read-only+cert -- Deletes the task; a still-pending task is removed once it completes.
  param self ref<task> -- Task to delete.

message create -> ref<task> role=read-only+cert -- Creates a pending task owned by the caller's session; the caller is expected to destroy it when done.
  param label string -- Name label for the new task.
  param description string -- Free-text explanation stored as the task's name/description.
  result -- The new task's reference.
