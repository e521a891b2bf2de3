class VM_appliance --
options db getall ctor events

enum vm_appliance_operation --
  value start --
  value clean_shutdown --
  value hard_shutdown --
  value shutdown --

field uuid string ro-run --
field name/label string rw = "" --
field name/description string rw = "" --
field allowed_operations set<vm_appliance_operation> ro-run = [] --
field current_operations map<string,vm_appliance_operation> ro-run = {} --
field VMs set<ref<VM>> ro-run inverse=VM.appliance --

message recover async role=read-only+cert --
  param self ref<VM_appliance> --
  param session_to ref<session> --
  param force bool --
  errors VM_REQUIRES_SR

message get_SRs_required_for_recovery -> set<ref<SR>> async role=read-only+cert --
  param self ref<VM_appliance> --
  param session_to ref<session> --
  result --

message assert_can_be_recovered async role=read-only+cert --
  param self ref<VM_appliance> --
  param session_to ref<session> --
  errors VM_REQUIRES_SR

message shutdown async role=pool-operator --
  param self ref<VM_appliance> --
  errors OPERATION_PARTIALLY_FAILED

message hard_shutdown async role=pool-operator --
  param self ref<VM_appliance> --
  errors OPERATION_PARTIALLY_FAILED

message clean_shutdown async role=pool-operator --
  param self ref<VM_appliance> --
  errors OPERATION_PARTIALLY_FAILED

message start async role=pool-operator --
  param self ref<VM_appliance> --
  param paused bool --
  errors OPERATION_PARTIALLY_FAILED
