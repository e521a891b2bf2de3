class host_crashdump -- A crash dump captured after a host (hypervisor) crash.
options db getall events

field uuid string ro-run -- Unique identifier of this crash dump.
field host ref<host> ro-ctor -- The host on which the crash dump was taken.
field timestamp datetime ro-run -- When the crash occurred and the dump was recorded.
field size int ro-run -- Size of the dump on disk, in bytes.
field other_config map<string,string> rw = {} -- Free-form key/value pairs for additional configuration.

message upload async role=pool-operator -- Send this crash dump to the given URL, typically for vendor support analysis.
  param self ref<host_crashdump> -- The crash dump to upload.
  param url string -- Destination URL that receives the dump.
  param options map<string,string> -- Extra key/value options controlling the upload.

message destroy async role=pool-operator -- Delete this crash dump record and remove its files from the host's disk.
  param self ref<host_crashdump> -- The crash dump to delete.
