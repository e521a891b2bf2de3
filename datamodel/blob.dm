class blob --
options db getall events

field uuid string ro-run --
field name/label string rw = "" --
field name/description string rw = "" --
field size int ro-run --
field public bool rw = false --
field last_updated datetime ro-ctor --
field mime_type string ro-ctor --

message destroy role=pool-operator --
  param self ref<blob> --

message create -> ref<blob> role=pool-operator --
  param mime_type string --
  param public bool = false --
  result --
