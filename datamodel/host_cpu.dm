class host_cpu -- One physical CPU of a host (deprecated; see host.cpu_info instead).
options db getall events deprecated

field uuid string ro-run -- Unique identifier of this CPU object.
field host ref<host> ro-run -- The host this CPU is installed in.
field number int ro-run -- Index of this physical CPU within its host.
field vendor string ro-run -- CPU vendor string, e.g. GenuineIntel or AuthenticAMD.
field speed int ro-run -- Clock speed of the CPU, in MHz.
field modelname string ro-run -- Human-readable CPU model name as reported by the processor.
field family int ro-run -- Numeric CPU family identifier.
field model int ro-run -- Numeric CPU model identifier within the family.
field stepping string ro-run -- CPU stepping (revision) identifier.
field flags string ro-run -- Space-separated feature flags, a decoded form of the features bitmap.
field features string ro-run -- Raw CPU feature bitmap, as a hexadecimal string.
field utilisation float ro-run -- Current load on this CPU, as a fraction between 0 and 1.
field other_config map<string,string> rw = {} -- Free-form key/value pairs for additional configuration.
