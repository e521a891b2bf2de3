class SR -- A storage repository: a container that holds virtual disk images (VDIs).
options db getall events

enum storage_operations -- Kinds of operation that can be running on, or permitted for, an SR.
  value scan -- Rescanning the backend to discover VDIs that were added or removed.
  value destroy -- Deleting the SR together with its on-disk contents.
  value forget -- Dropping the SR record while leaving its storage untouched.
  value plug -- Attaching one of the SR's PBDs on a host.
  value unplug -- Detaching one of the SR's PBDs from a host.
  value update -- Re-reading the SR's fields from the storage backend.
  value vdi_create -- Creating a fresh VDI inside this SR.
  value vdi_introduce -- Registering an existing on-disk VDI in the database.
  value vdi_destroy -- Deleting a VDI held in this SR.
  value vdi_resize -- Changing the size of a VDI in this SR.
  value vdi_clone -- Cloning a VDI held in this SR.
  value vdi_snapshot -- Taking a snapshot of a VDI in this SR.
  value vdi_mirror -- Mirroring a VDI, e.g. during storage migration.
  value vdi_enable_cbt -- Switching a VDI to CBT (changed block tracking) mode.
  value vdi_disable_cbt -- Switching CBT (changed block tracking) off for a VDI.
  value vdi_data_destroy -- Erasing a snapshot VDI's data while keeping its CBT metadata.
  value vdi_list_changed_blocks -- Computing the bitmap of blocks that differ between two VDIs.
  value vdi_set_on_boot -- Changing the on_boot behaviour of a VDI.
  value pbd_create -- Adding a PBD that connects this SR to a host.
  value pbd_destroy -- Removing one of the PBDs that connect this SR to hosts.

field uuid string ro-run -- Stable unique identifier (UUID) of this SR.
field name/label string ro-ctor = "" -- Display name of the SR.
field name/description string ro-ctor = "" -- Free-form human-readable notes about the SR.
field allowed_operations set<storage_operations> ro-run = [] -- Operations the SR currently permits; advisory only and may be stale once read.
field current_operations map<string,storage_operations> ro-run = {} -- Maps each running task reference to the storage operation it performs on this SR.
field VDIs set<ref<VDI>> ro-run inverse=VDI.SR -- Every virtual disk image stored in this SR.
field PBDs set<ref<PBD>> ro-run inverse=PBD.SR -- The PBDs through which individual hosts reach this SR.
field virtual_allocation int ro-run -- Total of virtual_size over all VDIs in the SR, in bytes.
field physical_utilisation int ro-run -- Physical space in use, in bytes; may be below virtual_allocation for sparse formats.
field physical_size int ro-ctor -- Overall physical capacity of the SR, in bytes.
field type string ro-ctor -- Backend driver type of the SR, such as lvm, nfs, ext or iso.
field content_type string ro-ctor -- Kind of content stored, where relevant (for example "iso").
field shared bool ro-run -- True if the SR is, or can be, attached to several hosts at once.
field other_config map<string,string> rw keys=folder:vm-operator,XenCenter.CustomFields.*:vm-operator -- Free-form key/value pairs for additional configuration.
field tags set<string> rw = [] write=vm-operator -- User-defined tags for grouping and searching.
field sm_config map<string,string> rw = {} -- Backend-specific key/value data maintained by the storage manager.
field blobs map<string,ref<blob>> ro-run = {} -- Named binary blobs attached to this SR.
field local_cache_enabled bool ro-run = false -- True if this SR serves as its host's local cache for VDIs.
field introduced_by ref<DR_task> ro-run = NULL -- Disaster-recovery task that introduced this SR, or NULL.
field clustered bool ro-run = false -- Marks a clustered SR, i.e. one backed by aggregated local storage.
field is_tools_sr bool ro-run = false -- True for the special SR that holds the guest Tools ISO images.

message forget_data_source_archives role=pool-operator -- Discards the recorded statistics history of one of the SR's data sources.
  param sr ref<SR> -- SR that owns the data source.
  param data_source string -- Name of the data source whose history is dropped.

message query_data_source -> float role=read-only+cert -- Returns the most recent value of one of the SR's data sources.
  param sr ref<SR> -- SR that owns the data source.
  param data_source string -- Name of the data source to read.
  result -- Latest value of the data source, averaged over about the last 5 seconds.

message record_data_source role=pool-operator -- Starts recording history for the named SR data source.
  param sr ref<SR> -- SR that owns the data source.
  param data_source string -- Name of the data source to start recording.

message get_data_sources -> set<record<data_source>> role=read-only+cert -- Lists the data sources available for this SR.
  param sr ref<SR> -- SR to inspect.
  result -- Records describing each available data source.

message disable_database_replication async role=pool-operator -- Stops replicating the pool's database metadata to this SR.
  param sr ref<SR> -- SR that should stop receiving replicated metadata.

message enable_database_replication async role=pool-operator -- Starts replicating the pool's database metadata to this SR, for disaster recovery.
  param sr ref<SR> -- SR that will receive the replicated metadata.

message assert_supports_database_replication async role=pool-operator -- Succeeds if the SR can hold replicated pool metadata; otherwise fails with an error giving the reason.
  param sr ref<SR> -- SR to check.

message assert_can_host_ha_statefile async role=pool-operator -- Succeeds if the SR is able to store an HA statefile; otherwise fails with an error giving the reason.
  param sr ref<SR> -- SR to check.

message set_physical_size role=pool-operator -- Overwrites the physical_size field of the SR.
  param self ref<SR> -- SR to update.
  param value int -- New physical size, in bytes.

message create_new_blob -> ref<blob> async role=pool-operator -- Creates an empty named blob attached to this SR; its contents are uploaded afterwards.
  param sr ref<SR> -- SR that will own the blob.
  param name string -- Name under which the blob is stored.
  param mime_type string -- MIME type of the content; an empty string means application/octet-stream.
  param public bool = false -- Whether the blob should be publicly readable.
  result -- Reference of the new blob, needed to upload its data.

message set_name_description async role=pool-operator -- Changes the SR's description text.
  param sr ref<SR> -- SR to update.
  param value string -- New description text.

message set_name_label async role=pool-operator -- Changes the SR's name label.
  param sr ref<SR> -- SR to rename.
  param value string -- New name label.

message set_shared async role=pool-operator -- Marks the SR as shared or not shared between hosts.
  param sr ref<SR> -- SR to update.
  param value bool -- True to mark the SR as shared.

message probe_ext -> set<record<probe_result>> async role=pool-operator -- Runs a backend-specific probe with device_config: a complete config lists SRs found on the device, a partial one yields hints for completing it.
  param host ref<host> -- Host on which the probe runs.
  param device_config map<string,string> -- Device configuration handed to the SR driver; may be incomplete.
  param type string -- SR type, choosing which backend driver performs the probe.
  param sm_config map<string,string> = {} -- Optional backend-specific options.
  result -- Structured records describing what the probe found.

message probe -> string async role=pool-operator -- Like probe_ext, but returns the backend's findings as a raw XML string.
  param host ref<host> -- Host on which the probe runs.
  param device_config map<string,string> -- Device configuration handed to the SR driver; may be incomplete.
  param type string -- SR type, choosing which backend driver performs the probe.
  param sm_config map<string,string> = {} -- Optional backend-specific options.
  result -- Backend-specific XML fragment describing the scan results.

message scan async role=vm-power-admin -- Rescans the SR so that its VDI list matches what is actually on storage.
  param sr ref<SR> -- SR to rescan.

message get_supported_types -> set<string> role=read-only+cert -- Lists every SR type that the installed storage drivers support.
  result -- Names of the supported SR types.

message update async role=pool-operator -- Refreshes the SR's fields, such as sizes, from the storage backend.
  param sr ref<SR> -- SR to refresh.

message forget async role=pool-operator -- Deletes the SR record from the database but leaves the data on storage intact.
  param sr ref<SR> -- SR to forget.
  errors SR_HAS_PBD

message destroy async role=pool-operator -- Deletes the SR on storage and removes its record; device_config comes from this host's PBD.
  param sr ref<SR> -- SR to destroy.
  errors SR_HAS_PBD

message make -> string async role=pool-operator deprecated -- Deprecated in favour of create: builds a new SR on storage and returns its UUID.
  param host ref<host> -- Host on which the SR is built.
  param device_config map<string,string> -- Device configuration handed to the SR driver.
  param physical_size int -- Requested physical size of the new SR, in bytes.
  param name_label string -- Name label for the new SR.
  param name_description string -- Description for the new SR.
  param type string -- SR type, choosing the backend driver.
  param content_type string -- Content type of the new SR, if needed (for example "iso").
  param sm_config map<string,string> = {} -- Optional backend-specific options.
  result -- UUID of the newly built SR.

message introduce -> ref<SR> async role=pool-operator -- Registers an SR that already exists on storage in the database, without creating it; PBDs are added separately.
  param uuid string -- UUID to give the introduced SR.
  param name_label string -- Name label for the SR.
  param name_description string -- Description for the SR.
  param type string -- SR type, choosing the backend driver.
  param content_type string -- Content type of the SR, if needed (for example "iso").
  param shared bool -- Whether the SR can be shared by several hosts.
  param sm_config map<string,string> = {} -- Optional backend-specific options.
  result -- Reference to the introduced SR.

message create -> ref<SR> async role=pool-operator -- Creates a new SR on storage and in the database, together with the PBD records needed to attach it.
  param host ref<host> -- Host on which the SR is created.
  param device_config map<string,string> -- Device configuration handed to the SR driver.
  param physical_size int -- Requested physical size of the new SR, in bytes.
  param name_label string -- Name label for the new SR.
  param name_description string -- Description for the new SR.
  param type string -- SR type, choosing the backend driver.
  param content_type string -- Content type of the new SR, if needed (for example "iso").
  param shared bool -- Whether the SR can be shared by several hosts.
  param sm_config map<string,string> = {} -- Optional backend-specific options.
  result -- Handle of the SR that was created.
  errors SR_UNKNOWN_DRIVER
