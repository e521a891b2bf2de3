class PIF_metrics -- Link state and hardware details reported for a PIF.
options db getall events

field uuid string ro-run -- Stable unique identifier (UUID) of this metrics object.
field io/read_kbs float ro-run = 0. removed -- Removed: receive throughput, in KiB/s.
field io/write_kbs float ro-run = 0. removed -- Removed: transmit throughput, in KiB/s.
field carrier bool ro-run -- True if the link currently has carrier.
field vendor_id string ro-run -- PCI vendor ID of the NIC.
field vendor_name string ro-run -- Vendor name of the NIC.
field device_id string ro-run -- PCI device ID of the NIC.
field device_name string ro-run -- Model name of the NIC.
field speed int ro-run -- Link speed in Mbit/s, where known.
field duplex bool ro-run -- True if the link runs full duplex, where known.
field pci_bus_path string ro-run -- PCI bus path of the NIC, where known.
field last_updated datetime ro-run -- Time the values were last refreshed.
field other_config map<string,string> rw = {} -- Free-form key/value pairs for additional configuration.
