class network -- A virtual network, normally backed by a host bridge, joining VIFs and PIFs.
options db getall ctor events write=vm-admin

enum network_operations -- Kinds of operation that can be running on a network.
  value attaching -- The network is being attached to a VIF or PIF.

enum network_default_locking_mode -- Locking behaviour applied to VIFs whose locking_mode is network_default.
  value unlocked -- Such VIFs behave as unlocked, so all traffic passes.
  value disabled -- Such VIFs behave as disabled, so all traffic is dropped.

enum network_purpose -- Special services the server may provide on a network.
  value nbd -- Serve Network Block Device exports protected by TLS.
  value insecure_nbd -- Serve NBD exports without TLS, so no integrity or confidentiality; discouraged.

field uuid string ro-run -- Stable unique identifier (UUID) of this network.
field name/label string rw = "" write=pool-operator -- Short human-readable name of the network.
field name/description string rw = "" write=pool-operator -- Free-form human-readable notes about the network.
field allowed_operations set<network_operations> ro-run = [] -- Operations the network currently permits; advisory only and may be stale once read.
field current_operations map<string,network_operations> ro-run = {} -- Maps each running task reference to the operation it performs on this network.
field VIFs set<ref<VIF>> ro-run inverse=VIF.network -- VIFs connected to this network.
field PIFs set<ref<PIF>> ro-run inverse=PIF.network -- PIFs connected to this network.
field MTU int rw = 1500 -- Maximum transmission unit, in bytes (default 1500).
field other_config map<string,string> rw write=pool-operator keys=folder:vm-operator,XenCenter.CustomFields.*:vm-operator,XenCenterCreateInProgress:vm-operator -- Free-form key/value pairs for additional configuration.
field bridge string ro-ctor = "" -- Name of the host bridge that backs this network.
field managed bool ro-ctor = true -- True if xapi manages the bridge; false if it is managed externally.
field blobs map<string,ref<blob>> ro-run = {} -- Named binary blobs attached to this network.
field tags set<string> rw = [] write=vm-operator -- User-defined tags for grouping and searching.
field default_locking_mode network_default_locking_mode ro-run = unlocked -- Locking mode used for VIFs on this network set to network_default.
field assigned_ips map<ref<VIF>,string> ro-run = {} -- IP addresses handed to VIFs by xapi-managed DHCP on this network.
field purpose set<network_purpose> ro-run = [] -- Services the server runs on this network, such as NBD.

message remove_purpose async role=pool-admin -- Removes a purpose from the network; nothing happens if it is absent.
  param self ref<network> -- Network to update.
  param value network_purpose -- Purpose to remove.

message add_purpose async role=pool-admin -- Adds a purpose to the network if missing; conflicting purposes are rejected.
  param self ref<network> -- Network to update.
  param value network_purpose -- Purpose to add.
  errors NETWORK_INCOMPATIBLE_PURPOSES

message set_default_locking_mode async role=pool-operator -- Sets the locking mode inherited by VIFs whose locking_mode is network_default.
  param network ref<network> -- Network to update.
  param value network_default_locking_mode -- New default locking mode.

message create_new_blob -> ref<blob> async role=pool-operator -- Creates an empty named blob attached to this network; its contents are uploaded afterwards.
  param network ref<network> -- Network that will own the blob.
  param name string -- Name under which the blob is stored.
  param mime_type string -- MIME type of the content; an empty string means application/octet-stream.
  param public bool = false -- Whether the blob should be publicly readable.
  result -- Reference of the new blob, needed to upload its data.
