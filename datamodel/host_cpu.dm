class host_cpu --
options db getall events deprecated

field uuid string ro-run --
field host ref<host> ro-run --
field number int ro-run --
field vendor string ro-run --
field speed int ro-run --
field modelname string ro-run --
field family int ro-run --
field model int ro-run --
field stepping string ro-run --
field flags string ro-run --
field features string ro-run --
field utilisation float ro-run --
field other_config map<string,string> rw = {} --
