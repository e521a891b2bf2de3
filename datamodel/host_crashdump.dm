class host_crashdump --
options db getall events

field uuid string ro-run --
field host ref<host> ro-ctor --
field timestamp datetime ro-run --
field size int ro-run --
field other_config map<string,string> rw = {} --

message upload async role=pool-operator --
  param self ref<host_crashdump> --
  param url string --
  param options map<string,string> --

message destroy async role=pool-operator --
  param self ref<host_crashdump> --
