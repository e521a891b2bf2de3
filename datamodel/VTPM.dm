class VTPM --
options db getall events prototyped

enum vtpm_operations --
  value destroy --

enum persistence_backend --
  value xapi --

field uuid string ro-run --
field allowed_operations set<vtpm_operations> ro-run = [] --
field current_operations map<string,vtpm_operations> ro-run = {} --
field VM ref<VM> ro-ctor --
field backend ref<VM> ro-run = NULL --
field persistence_backend persistence_backend ro-run = xapi prototyped --
field is_unique bool ro-ctor = false prototyped --
field is_protected bool ro-run = false prototyped --

message destroy async role=vm-admin prototyped --
  param self ref<VTPM> --

message create -> ref<VTPM> async role=vm-admin prototyped --
  param vM ref<VM> --
  param is_unique bool --
  result --
