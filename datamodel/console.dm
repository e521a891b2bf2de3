class console --
options db getall ctor events write=vm-admin

enum console_protocol --
  value vt100 --
  value rfb --
  value rdp --

field uuid string ro-run --
field protocol console_protocol ro-run --
field location string ro-run --
field VM ref<VM> ro-run --
field other_config map<string,string> rw --
