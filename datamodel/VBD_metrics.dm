class VBD_metrics --
options db getall events write=vm-admin removed

field uuid string ro-run --
field io/read_kbs float ro-run = 0. removed --
field io/write_kbs float ro-run = 0. removed --
field last_updated datetime ro-run = 19700101T00:00:00Z removed --
field other_config map<string,string> rw = {} removed --
