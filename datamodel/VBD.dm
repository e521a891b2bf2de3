class VBD --
options db getall ctor events write=vm-admin

enum vbd_operations --
  value attach --
  value eject --
  value insert --
  value plug --
  value unplug --
  value unplug_force --
  value pause --
  value unpause --

enum vbd_type --
  value CD --
  value Disk --
  value Floppy --

enum vbd_mode --
  value RO --
  value RW --

field uuid string ro-run --
field allowed_operations set<vbd_operations> ro-run = [] --
field current_operations map<string,vbd_operations> ro-run = {} --
field VM ref<VM> ro-ctor --
field VDI ref<VDI> ro-ctor --
field device string ro-ctor = "" --
field userdevice string rw --
field bootable bool rw --
field mode vbd_mode ro-ctor --
field type vbd_type rw --
field unpluggable bool rw = true --
field storage_lock bool ro-run --
field empty bool ro-ctor --
field other_config map<string,string> rw --
field currently_attached bool ro-ctor = false --
field status_code int ro-run --
field status_detail string ro-run --
field runtime_properties map<string,string> ro-run --
field qos/algorithm_type string rw --
field qos/algorithm_params map<string,string> rw --
field qos/supported_algorithms set<string> ro-run --
field metrics ref<VBD_metrics> ro-run = NULL removed --

message set_mode async role=vm-admin --
  param self ref<VBD> --
  param value vbd_mode --

message assert_attachable async role=vm-admin --
  param self ref<VBD> --

message unplug_force async role=vm-admin --
  param self ref<VBD> --

message unplug async role=vm-admin --
  param self ref<VBD> --
  errors DEVICE_DETACH_REJECTED DEVICE_ALREADY_DETACHED

message plug async role=vm-admin --
  param self ref<VBD> --

message insert async role=vm-operator --
  param vbd ref<VBD> --
  param vdi ref<VDI> --
  errors VBD_NOT_REMOVABLE_MEDIA VBD_NOT_EMPTY

message eject async role=vm-operator --
  param vbd ref<VBD> --
  errors VBD_NOT_REMOVABLE_MEDIA VBD_IS_EMPTY
