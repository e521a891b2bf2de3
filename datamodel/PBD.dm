class PBD -- A physical block device: the connection through which one host reaches an SR.
options db getall ctor events

field uuid string ro-run -- Stable unique identifier (UUID) of this PBD.
field host ref<host> ro-ctor -- Host that uses this PBD to access the SR.
field SR ref<SR> ro-ctor -- Storage repository that this PBD connects to.
field device_config map<string,string> ro-ctor -- Key/value settings handed to the host's SR driver, e.g. server address and path.
field currently_attached bool ro-run -- True if the SR is attached on this host right now.
field other_config map<string,string> rw = {} -- Free-form key/value pairs for additional configuration.

message set_device_config async role=pool-operator -- Replaces the PBD's device_config map.
  param self ref<PBD> -- PBD to update.
  param value map<string,string> -- New device_config map.

message unplug async role=pool-operator -- Detaches the SR from this PBD's host; it is no longer scanned there.
  param self ref<PBD> -- PBD to deactivate.

message plug async role=pool-operator -- Attaches the SR on this PBD's host using its device_config, then scans it.
  param self ref<PBD> -- PBD to activate.
  errors SR_UNKNOWN_DRIVER
