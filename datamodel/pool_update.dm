class pool_update -- A software update package for host software that can be applied across the pool.
options db getall events

enum update_after_apply_guidance -- Follow-up actions recommended once an update has been applied.
  value restartHVM -- HVM guests must be restarted for the update to take effect.
  value restartPV -- PV guests must be restarted for the update to take effect.
  value restartHost -- The host must be rebooted for the update to take effect.
  value restartXAPI -- The XAPI toolstack must be restarted for the update to take effect.

enum livepatch_status -- Outcome of a precheck regarding live-patch availability.
  value ok_livepatch_complete -- A usable live patch exists for every component the update touches.
  value ok_livepatch_incomplete -- Some live patches apply, but they do not cover the whole update.
  value ok -- Precheck passed, but no live patch is available for this update.

field uuid string ro-run -- Unique identifier of this update.
field name/label string ro-ctor = "" -- Short human-readable name of the update.
field name/description string ro-ctor = "" -- Longer human-readable description of the update.
field version string ro-ctor = "" -- Version string of the update.
field installation_size int ro-ctor = 0 -- Disk space the update needs when installed, in bytes.
field key string ro-ctor = "" -- GPG key used to sign the update.
field after_apply_guidance set<update_after_apply_guidance> ro-ctor = [] -- Actions the client should take after applying this update.
field vdi ref<VDI> ro-ctor -- VDI holding the uploaded update contents.
field hosts set<ref<host>> ro-run -- Hosts on which this update has already been applied.
field other_config map<string,string> rw = {} -- Free-form key/value pairs for additional configuration.
field enforce_homogeneity bool ro-ctor = false -- If true, every host in the pool is required to apply this update.

message destroy async role=pool-operator -- Delete the update's database record; only allowed while it is not applied anywhere.
  param self ref<pool_update> -- The update to delete.

message pool_clean async role=pool-operator -- Remove the update's files from all pool hosts without rolling back the update itself.
  param self ref<pool_update> -- The update whose files should be cleaned up.

message pool_apply async role=pool-operator -- Install the update on every host in the pool.
  param self ref<pool_update> -- The update to install pool-wide.

message apply async role=pool-operator -- Install the update on a single host.
  param self ref<pool_update> -- The update to install.
  param host ref<host> -- The host that should receive the update.

message precheck -> livepatch_status async role=pool-operator -- Run the update's precheck stage on one host, reporting live-patch availability.
  param self ref<pool_update> -- The update to precheck.
  param host ref<host> -- The host on which to run the precheck.
  result -- Live-patch status determined by the precheck.

message introduce -> ref<pool_update> async role=pool-operator -- Register an update from a VDI that contains an uploaded update package.
  param vdi ref<VDI> -- VDI containing the update package.
  result -- Reference to the newly registered update.
