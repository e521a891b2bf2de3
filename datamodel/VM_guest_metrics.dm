class VM_guest_metrics --
options db getall events write=vm-admin

enum tristate_type --
  value yes --
  value no --
  value unspecified --

field uuid string ro-run --
field os_version map<string,string> ro-run --
field PV_drivers_version map<string,string> ro-run --
field PV_drivers_up_to_date bool ro-run deprecated --
field memory map<string,string> ro-run = {} removed --
field disks map<string,string> ro-run = {} removed --
field networks map<string,string> ro-run --
field other map<string,string> ro-run --
field last_updated datetime ro-run --
field other_config map<string,string> rw = {} --
field live bool ro-run = false --
field can_use_hotplug_vbd tristate_type ro-run = unspecified --
field can_use_hotplug_vif tristate_type ro-run = unspecified --
field PV_drivers_detected bool ro-run = false --
