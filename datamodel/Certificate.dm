class Certificate --
options db getall events

enum certificate_type --
  value ca --
  value host --
  value host_internal --

field uuid string ro-run --
field name string ro-run = "" --
field type certificate_type ro-run = host --
field host ref<host> ro-ctor = NULL --
field not_before datetime ro-ctor = 19700101T00:00:00Z --
field not_after datetime ro-ctor = 19700101T00:00:00Z --
field fingerprint string ro-ctor = "" --
