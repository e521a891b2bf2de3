class VM_appliance -- A named group of VMs started and stopped together as one unit.
options db getall ctor events

enum vm_appliance_operation -- Operations on an appliance.
  value start -- Booting every member VM.
  value clean_shutdown -- Cleanly shutting down all VMs.
  value hard_shutdown -- Forcibly powering off all VMs.
  value shutdown -- Clean shutdown with a hard fallback for each VM.

field uuid string ro-run -- Unique identifier of the appliance.
field name/label string rw = "" -- Human-readable appliance name.
field name/description string rw = "" -- Free-text notes about the appliance.
field allowed_operations set<vm_appliance_operation> ro-run = [] -- Operations currently permitted; advisory, may be stale when read.
field current_operations map<string,vm_appliance_operation> ro-run = {} -- Running tasks (by task ref) and the operation each performs.
field VMs set<ref<VM>> ro-run inverse=VM.appliance -- VMs that belong to the appliance.

message recover async role=read-only+cert -- Recreates the appliance and its VMs from DR metadata in the pool reached via session_to.
  param self ref<VM_appliance> -- The appliance to recover.
  param session_to ref<session> -- Session on the pool to recover into.
  param force bool -- If true, overwrite newer existing copies of the VMs.
  errors VM_REQUIRES_SR

message get_SRs_required_for_recovery -> set<ref<SR>> async role=read-only+cert -- Lists the SRs that must be present to recover the appliance.
  param self ref<VM_appliance> -- The appliance of interest.
  param session_to ref<session> -- Session on the pool where recovery would happen.
  result -- SRs needed for the recovery.

message assert_can_be_recovered async role=read-only+cert -- Fails unless every SR needed to recover the appliance is available.
  param self ref<VM_appliance> -- The appliance to check.
  param session_to ref<session> -- Session on the pool where recovery would happen.
  errors VM_REQUIRES_SR

message shutdown async role=pool-operator -- Shuts down each VM cleanly, falling back to a hard shutdown where that fails.
  param self ref<VM_appliance> -- The appliance to shut down.
  errors OPERATION_PARTIALLY_FAILED

message hard_shutdown async role=pool-operator -- Forcibly powers off every VM in the appliance.
  param self ref<VM_appliance> -- The appliance to power off.
  errors OPERATION_PARTIALLY_FAILED

message clean_shutdown async role=pool-operator -- Asks every VM in the appliance to shut down cleanly.
  param self ref<VM_appliance> -- The appliance to shut down.
  errors OPERATION_PARTIALLY_FAILED

message start async role=pool-operator -- Starts every VM in the appliance, honouring their order and delays.
  param self ref<VM_appliance> -- The appliance to start.
  param paused bool -- If true, create all VMs in the paused state.
  errors OPERATION_PARTIALLY_FAILED
