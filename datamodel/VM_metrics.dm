class VM_metrics -- Runtime metrics for a VM as observed by the host.
options db getall events write=vm-admin

field uuid string ro-run -- Unique identifier of this metrics object.
field memory/actual int ro-run -- Memory currently allocated to the guest, in bytes.
field VCPUs/number int ro-run -- Number of vCPUs the guest currently has.
field VCPUs/utilisation map<int,float> ro-run = {} removed -- Removed: per-vCPU utilisation fraction.
field VCPUs/CPU map<int,int> ro-run -- Which physical CPU each vCPU is running on.
field VCPUs/params map<string,string> ro-run -- vCPU scheduler settings in effect on the running domain.
field VCPUs/flags map<int,set<string>> ro-run -- Per-vCPU state flags such as blocked, online or running.
field state set<string> ro-run -- Domain state flags, e.g. blocked or dying.
field start_time datetime ro-run -- When the VM last booted.
field install_time datetime ro-run -- When the VM was installed.
field last_updated datetime ro-run -- When these metrics were last refreshed.
field other_config map<string,string> rw = {} -- Free-form key/value configuration.
field hvm bool ro-run = false -- True if the domain uses hardware virtualisation.
field nested_virt bool ro-run = false -- True if nested virtualisation is enabled for the VM.
field nomigrate bool ro-run = false -- True if the VM is pinned to its host and cannot be migrated.
field current_domain_type domain_type ro-run = unspecified -- Domain type in use now, or the last known one if halted.
