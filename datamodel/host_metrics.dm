class host_metrics -- Live resource statistics collected for one physical host.
options db getall events

field uuid string ro-run -- Unique identifier of this metrics object.
field memory/total int ro-run -- Total physical memory installed in the host, in bytes.
field memory/free int ro-run = 0 removed -- Free host memory in bytes; removed from the API, use host.compute_free_memory.
field live bool ro-run -- True when the pool master currently considers this host alive.
field last_updated datetime ro-run -- When these metrics were most recently refreshed.
field other_config map<string,string> rw = {} -- Free-form key/value pairs for additional configuration.
