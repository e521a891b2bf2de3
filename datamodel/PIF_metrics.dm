class PIF_metrics --
options db getall events

field uuid string ro-run --
field io/read_kbs float ro-run = 0. removed --
field io/write_kbs float ro-run = 0. removed --
field carrier bool ro-run --
field vendor_id string ro-run --
field vendor_name string ro-run --
field device_id string ro-run --
field device_name string ro-run --
field speed int ro-run --
field duplex bool ro-run --
field pci_bus_path string ro-run --
field last_updated datetime ro-run --
field other_config map<string,string> rw = {} --
