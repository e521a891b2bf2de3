class secret --
options db getall ctor read=pool-operator

field uuid string ro-run --
field value string rw --
field other_config map<string,string> rw = {} read=read-only+cert --
