class VTPM -- A virtual Trusted Platform Module attached to a VM.
options db getall events prototyped

enum vtpm_operations -- Operations on a vTPM.
  value destroy -- Deleting the vTPM.

enum persistence_backend -- Where vTPM state is stored.
  value xapi -- State is kept in the toolstack database.

field uuid string ro-run -- Unique identifier of the vTPM.
field allowed_operations set<vtpm_operations> ro-run = [] -- Operations currently permitted; advisory, may be stale when read.
field current_operations map<string,vtpm_operations> ro-run = {} -- Running tasks (by task ref) and the operation each performs.
field VM ref<VM> ro-ctor -- VM the vTPM is attached to.
field backend ref<VM> ro-run = NULL -- Domain hosting the backend; currently unused.
field persistence_backend persistence_backend ro-run = xapi prototyped -- Where the vTPM contents are persisted.
field is_unique bool ro-ctor = false prototyped -- True if the contents are never duplicated, as the TPM specification requires.
field is_protected bool ro-run = false prototyped -- True if the contents are secured as the TPM specification requires.

message destroy async role=vm-admin prototyped -- Deletes the vTPM together with its stored state.
  param self ref<VTPM> -- The vTPM to delete.

message create -> ref<VTPM> async role=vm-admin prototyped -- Creates a vTPM and attaches it to a VM.
  param vM ref<VM> -- VM to attach the new vTPM to.
  param is_unique bool -- Whether the vTPM contents must never be duplicated.
  result -- The new vTPM.
