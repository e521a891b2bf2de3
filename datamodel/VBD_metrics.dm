class VBD_metrics -- Removed class that once held I/O statistics for a VBD.
options db getall events write=vm-admin removed transient

field uuid string ro-run -- Stable unique identifier (UUID) of this metrics object.
field io/read_kbs float ro-run = 0. removed -- Removed: read throughput, in KiB/s.
field io/write_kbs float ro-run = 0. removed -- Removed: write throughput, in KiB/s.
field last_updated datetime ro-run = 19700101T00:00:00Z removed -- Removed: time the values were last refreshed.
field other_config map<string,string> rw = {} removed -- Removed: free-form key/value configuration.
