class VM_metrics --
options db getall events write=vm-admin

field uuid string ro-run --
field memory/actual int ro-run --
field VCPUs/number int ro-run --
field VCPUs/utilisation map<int,float> ro-run = {} removed --
field VCPUs/CPU map<int,int> ro-run --
field VCPUs/params map<string,string> ro-run --
field VCPUs/flags map<int,set<string>> ro-run --
field state set<string> ro-run --
field start_time datetime ro-run --
field install_time datetime ro-run --
field last_updated datetime ro-run --
field other_config map<string,string> rw = {} --
field hvm bool ro-run = false --
field nested_virt bool ro-run = false --
field nomigrate bool ro-run = false --
field current_domain_type domain_type ro-run = unspecified --
