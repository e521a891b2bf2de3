class host_metrics --
options db getall events

field uuid string ro-run --
field memory/total int ro-run --
field memory/free int ro-run = 0 removed --
field live bool ro-run --
field last_updated datetime ro-run --
field other_config map<string,string> rw = {} --
