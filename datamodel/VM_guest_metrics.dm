class VM_guest_metrics -- Metrics reported from inside the guest by its agent.
options db getall events write=vm-admin

enum tristate_type -- A yes/no answer that may also be unknown.
  value yes -- Known to hold.
  value no -- Known not to hold.
  value unspecified -- Not known or not reported.

field uuid string ro-run -- Unique identifier of this metrics object.
field os_version map<string,string> ro-run -- Guest operating system name and version details.
field PV_drivers_version map<string,string> ro-run -- Version components of the installed PV drivers.
field PV_drivers_up_to_date bool ro-run deprecated -- Deprecated: same meaning as PV_drivers_detected.
field memory map<string,string> ro-run = {} removed -- Removed and always empty; use the memory RRD data sources.
field disks map<string,string> ro-run = {} removed -- Removed and always empty.
field networks map<string,string> ro-run -- Guest network details such as IP addresses per interface.
field other map<string,string> ro-run -- Other agent-reported data not covered elsewhere.
field last_updated datetime ro-run -- When the guest agent last updated this data.
field other_config map<string,string> rw = {} -- Free-form key/value configuration.
field live bool ro-run = false -- True while the guest agent is sending heartbeats.
field can_use_hotplug_vbd tristate_type ro-run = unspecified -- Whether the guest supports VBD hotplug; if not, plug/unplug is refused while running.
field can_use_hotplug_vif tristate_type ro-run = unspecified -- Whether the guest supports VIF hotplug; if not, plug/unplug is refused while running.
field PV_drivers_detected bool ro-run = false -- True once any guest device has connected to its backend.
