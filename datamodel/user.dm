class user --
options db ctor write=pool-admin deprecated

field uuid string ro-run --
field short_name string ro-ctor --
field fullname string rw --
field other_config map<string,string> rw = {} --
