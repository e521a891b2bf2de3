class pool -- Pool-wide settings and operations; every pool has exactly one pool object.
options db getall events

enum pool_allowed_operations -- Pool-level operations that can be permitted or in progress.
  value ha_enable -- Turning high availability on.
  value ha_disable -- Turning high availability off.
  value cluster_create -- Setting up a cluster across the pool.
  value designate_new_master -- Handing the master role to another host.
  value configure_repositories -- Changing the update repository configuration.
  value sync_updates -- Downloading updates from the repositories.
  value get_updates -- Retrieving the list of available updates.
  value apply_updates -- Installing updates on pool hosts.
  value tls_verification_enable -- Switching on TLS certificate verification.
  value cert_refresh -- Regenerating and distributing certificates.
  value exchange_certificates_on_join -- Swapping internal certificates with a joining host.
  value exchange_ca_certificates_on_join -- Swapping CA certificates with a joining host.
  value copy_primary_host_certs -- Primary host pushing its own certificates to a different host.
  value eject -- Removing a host from the pool.

enum telemetry_frequency -- How often telemetry data is gathered.
  value daily -- Once a day.
  value weekly -- Once a week.
  value monthly -- Once a month.

enum update_sync_frequency -- How often updates are fetched from the remote repository.
  value daily -- Every day.
  value weekly -- Once a week, on update_sync_day.

field uuid string ro-run -- Unique identifier of the pool.
field name_label string rw -- Short name of the pool.
field name_description string rw -- Free-text description of the pool.
field master ref<host> ro-run -- Host currently acting as pool master (coordinator).
field default_SR ref<SR> rw -- SR used by default when creating VDIs.
field suspend_image_SR ref<SR> rw -- SR that receives VM suspend image VDIs.
field crash_dump_SR ref<SR> rw -- SR that receives crash dump VDIs.
field other_config map<string,string> rw keys=folder:vm-operator,XenCenter.CustomFields.*:vm-operator,EMPTY_FOLDERS:vm-operator -- Free-form string key/value pairs for the pool.
field ha_enabled bool ro-run = false -- True while high availability is active.
field ha_configuration map<string,string> ro-run = {} -- Parameters of the active HA setup.
field ha_statefiles set<string> ro-run = [] -- VDIs currently used as HA state files.
field ha_host_failures_to_tolerate int ro-run = 0 -- Number of host failures HA must survive before the pool counts as overcommitted.
field ha_plan_exists_for int ro-run = 0 -- How many further host failures a restart plan currently covers; at 0, one more failure would lose protected VMs.
field ha_allow_overcommit bool rw = false -- When false, operations that would overcommit the pool are refused.
field ha_overcommitted bool ro-run = false -- True when resources cannot cover the configured number of host failures.
field blobs map<string,ref<blob>> ro-run = {} -- Named binary blobs attached to the pool.
field tags set<string> rw = [] write=vm-operator -- User-defined labels for grouping and search.
field gui_config map<string,string> rw = {} write=vm-operator -- Settings kept on behalf of graphical clients.
field health_check_config map<string,string> rw = {} -- Options controlling the periodic automated health check.
field wlb_url string ro-run = "" -- Address of the configured workload balancing (WLB) server.
field wlb_username string ro-run = "" -- Account used to log in to the WLB server.
field wlb_enabled bool rw = false write=pool-operator+cert -- True when workload balancing is switched on.
field wlb_verify_cert bool rw = false deprecated -- Whether the WLB server's TLS certificate is checked; deprecated.
field redo_log_enabled bool ro-run = false -- True if a redo log is in use outside of HA.
field redo_log_vdi ref<VDI> ro-run = NULL -- VDI holding the redo log when HA is off.
field vswitch_controller string ro-run = "" deprecated -- Deprecated; where the vSwitch controller can be reached.
field restrictions map<string,string> ro-run = {} -- Feature restrictions currently in force for the pool, e.g. from licensing.
field metadata_VDIs set<ref<VDI>> ro-run inverse=VDI.metadata_of_pool -- VDIs known to contain metadata for this pool.
field ha_cluster_stack string ro-run = "" -- Cluster stack used by HA; meaningful only while HA is on.
field allowed_operations set<pool_allowed_operations> ro-run = [] -- Operations permitted in the current state; advisory and may be stale.
field current_operations map<string,pool_allowed_operations> ro-run = {} -- Operations in progress, keyed by the task carrying each out.
field guest_agent_config map<string,string> ro-run = {} -- Pool-wide settings handed to guest agents.
field cpu_info map<string,string> ro-run = {} -- Properties of the physical CPUs across the pool.
field policy_no_vendor_device bool rw = false -- Pool default for leaving out the vendor device on new VMs; used when VM.create omits has_vendor_device.
field live_patching_disabled bool rw = false -- True if live patching is turned off for the pool.
field igmp_snooping_enabled bool ro-run = false -- True if IGMP snooping is on for the pool's networks.
field uefi_certificates string ro-ctor = "" -- UEFI certificates used for Secure Boot.
field custom_uefi_certificates string ro-ctor = "" prototyped -- User-supplied UEFI Secure Boot certificates overriding the defaults.
field is_psr_pending bool rw = false -- True while a pool secret rotation is running or still has to be retried.
field tls_verification_enabled bool ro-run = false -- True once TLS certificate verification within the pool is on.
field repositories set<ref<Repository>> ro-run = [] -- Update repositories currently enabled.
field client_certificate_auth_enabled bool ro-run = false -- True if clients may log in with TLS client certificates.
field client_certificate_auth_name string ro-run = "" -- CN/SAN a client certificate must carry to be accepted.
field repository_proxy_url string ro-run = "" -- Proxy URL through which repository syncs are made.
field repository_proxy_username string ro-run = "" -- User name for the repository proxy.
field repository_proxy_password ref<secret> ro-run = NULL -- Secret holding the repository proxy password.
field migration_compression bool rw = false prototyped -- Default for compressing the VM migration stream.
field coordinator_bias bool rw = true -- If true, VM placement avoids the pool master where it can.
field local_auth_max_threads int ro-ctor = 8 prototyped -- Thread limit for local (PAM) password checks.
field ext_auth_max_threads int ro-ctor = 1 prototyped -- Thread limit for external directory (AD) authentication.
field telemetry_uuid ref<secret> ro-run = NULL prototyped -- Secret holding the UUID that identifies this pool's telemetry.
field telemetry_frequency telemetry_frequency ro-run = weekly prototyped -- Interval between telemetry collections.
field telemetry_next_collection datetime ro-run = 19700101T00:00:00Z prototyped -- Earliest UTC time at which the next telemetry collection may run.
field last_update_sync datetime ro-run = 19700101T00:00:00Z prototyped -- Time updates were last synchronised.
field update_sync_frequency update_sync_frequency ro-run = weekly prototyped -- Interval of periodic update syncs.
field update_sync_day int ro-run = 0 prototyped -- Weekday of weekly syncs, 0 (Sunday) to 6, in pool local time; ignored when daily.
field update_sync_enabled bool ro-run = false prototyped -- True if periodic update syncing is on.

message set_ext_auth_max_threads role=pool-operator prototyped -- Sets the thread limit for external (AD) authentication.
  param self ref<pool> -- The pool.
  param value int -- New maximum thread count.

message set_local_auth_max_threads role=pool-operator prototyped -- Sets the thread limit for local PAM authentication.
  param self ref<pool> -- The pool.
  param value int -- New maximum thread count.

message set_update_sync_enabled async role=pool-operator prototyped -- Turns periodic update syncing on or off.
  param self ref<pool> -- The pool.
  param value bool -- True to turn periodic syncing on, false to turn it off.

message configure_update_sync async role=pool-operator prototyped -- Sets the schedule for periodic update syncs from the remote repository.
  param self ref<pool> -- The pool.
  param update_sync_frequency update_sync_frequency -- Sync daily or weekly.
  param update_sync_day int -- Weekday 0 (Sunday) to 6 for weekly syncs; ignored for daily.

message reset_telemetry_uuid async role=pool-admin prototyped -- Generates a fresh UUID for identifying telemetry data.
  param self ref<pool> -- The pool.

message set_telemetry_next_collection async role=pool-admin prototyped -- Schedules the earliest moment the next telemetry run may start.
  param self ref<pool> -- The pool.
  param value datetime -- Earliest UTC time for the next collection.

message set_https_only async role=pool-operator prototyped -- Opens or closes HTTP port 80 in the firewall of every pool host.
  param self ref<pool> -- The pool.
  param value bool -- True blocks port 80; false opens it.

message set_custom_uefi_certificates async role=pool-admin prototyped -- Applies custom UEFI Secure Boot certificates to the pool and its hosts; empty reverts to uefi_certificates. Needs allow-custom-uefi-certs enabled.
  param self ref<pool> -- The pool.
  param value string -- Certificates to install.

message set_uefi_certificates async role=pool-admin deprecated -- Deprecated: sets the UEFI certificates of the pool and its hosts; use set_custom_uefi_certificates.
  param self ref<pool> -- The pool.
  param value string -- Certificates to install.

message disable_repository_proxy async role=pool-operator+cert -- Stops using a proxy for repository syncs.
  param self ref<pool> -- The pool.

message configure_repository_proxy async role=pool-operator+cert -- Sets the proxy used to reach the RPM update repositories.
  param self ref<pool> -- The pool.
  param url string -- Proxy server URL.
  param username string -- Login name for the proxy.
  param password string -- Password for the proxy.

message disable_client_certificate_auth async role=pool-operator+cert -- Turns off logins via TLS client certificates.
  param self ref<pool> -- The pool.

message enable_client_certificate_auth async role=pool-operator+cert -- Turns on logins via TLS client certificates.
  param self ref<pool> -- The pool.
  param name string -- CN/SAN that accepted client certificates must carry.

message check_update_readiness -> set<set<string>> async role=pool-operator+cert -- Checks whether the pool can be updated now and reports what blocks it.
  param self ref<pool> -- The pool.
  param requires_reboot bool -- If true, evaluate readiness as though hosts must be rebooted.
  result -- Error codes with parameters; an empty set means ready.

message sync_updates -> string async role=pool-operator+cert -- Brings the local mirror up to date with the enabled repositories.
  param self ref<pool> -- The pool.
  param force bool -- If true, discard the local mirror before syncing.
  param token string = "" -- Authentication token for the repository.
  param token_id string = "" -- Identifier of that token.
  result -- SHA256 checksum of updateinfo.xml.gz after syncing.

message remove_repository async role=pool-operator+cert -- Disables one repository so it is no longer synced.
  param self ref<pool> -- The pool.
  param value ref<Repository> -- Repository to remove.

message add_repository async role=pool-operator+cert -- Enables one more repository for update syncing.
  param self ref<pool> -- The pool.
  param value ref<Repository> -- Repository to enable.

message set_repositories async role=pool-operator+cert -- Replaces the whole enabled set of repositories.
  param self ref<pool> -- The pool.
  param value set<ref<Repository>> -- Repositories to enable.

message rotate_secret async role=pool-admin -- Replaces the shared pool secret that members use to authenticate to each other.
  errors INTERNAL_ERROR HOST_IS_SLAVE CANNOT_CONTACT_HOST HA_IS_ENABLED NOT_SUPPORTED_DURING_UPGRADE

message remove_from_guest_agent_config async role=pool-admin -- Drops one entry from the pool's guest_agent_config map.
  param self ref<pool> -- The pool.
  param key string -- Key to delete.

message add_to_guest_agent_config async role=pool-admin -- Inserts one entry into the pool's guest_agent_config map.
  param self ref<pool> -- The pool.
  param key string -- Key to add.
  param value string -- Value for the key.

message has_extension -> bool async role=pool-admin -- Reports whether the named API extension is available on the pool.
  param self ref<pool> -- The pool.
  param name string -- Name of the extension call.
  result -- True if the extension is present.

message set_igmp_snooping_enabled async role=pool-operator -- Turns IGMP snooping on or off for the pool.
  param self ref<pool> -- The pool.
  param value bool -- True to enable, false to disable.

message disable_ssl_legacy async role=pool-operator deprecated -- Deprecated: sets ssl_legacy to false on every host, the master last.
  param self ref<pool> -- Ignored.

message enable_ssl_legacy async role=pool-operator removed -- Removed: used to set ssl_legacy to true on every host.
  param self ref<pool> -- Ignored.

message apply_edition async role=pool-operator -- Applies a license edition to every host in the pool.
  param self ref<pool> -- The pool.
  param edition string -- Edition to apply.

message get_license_state -> map<string,string> async role=read-only+cert -- Returns the pool's licensing status.
  param self ref<pool> -- The pool.
  result -- License state as key/value pairs.

message disable_local_storage_caching async role=pool-operator -- Turns off local storage caching across the pool.
  param self ref<pool> -- The pool.

message enable_local_storage_caching async role=pool-operator -- Tries to turn on local storage caching across the pool.
  param self ref<pool> -- The pool.

message test_archive_target -> string role=pool-operator -- Checks whether an archive location is usable.
  param self ref<pool> -- The pool.
  param config map<string,string> -- Settings describing the location to test.
  result -- Outcome of the test, as an XML-RPC string.

message set_vswitch_controller async role=pool-operator deprecated -- Deprecated: configures where the vSwitch controller lives (IP address).
  param address string -- Controller IP address.

message disable_redo_log async role=pool-operator -- Stops using the redo log, unless HA is on.

message enable_redo_log async role=pool-operator -- Starts a redo log on the given SR, unless HA is on.
  param sr ref<SR> -- SR that will hold the redo log.

message enable_tls_verification role=pool-admin -- Turns on checking of TLS server certificates within the pool.

message certificate_sync async role=pool-operator -- Copies the master's CA certificates and CRLs to all other hosts.

message crl_list -> set<string> async role=pool-operator -- Lists the installed certificate revocation lists.
  result -- Names of the installed CRLs.

message crl_uninstall async role=pool-operator -- Removes a CRL from every host.
  param name string -- Name of the CRL to remove.

message crl_install async role=pool-operator -- Installs a CRL on every host.
  param name string -- Name to store the CRL under.
  param cert string -- Contents of the CRL.

message uninstall_ca_certificate async role=pool-operator+cert -- Removes a trusted CA certificate from every host.
  param name string -- Name of the certificate.

message install_ca_certificate async role=pool-operator+cert -- Installs a trusted CA certificate on every host.
  param name string -- Name to store the certificate under.
  param cert string -- PEM-encoded certificate.

message certificate_list -> set<string> async role=pool-operator deprecated -- Deprecated: lists the installed CA certificates.
  result -- Names of the installed certificates.

message certificate_uninstall async role=pool-operator deprecated -- Deprecated: removes a CA certificate from every host.
  param name string -- Name of the certificate.

message certificate_install async role=pool-operator deprecated -- Deprecated: installs a CA certificate on every host.
  param name string -- Name to store the certificate under.
  param cert string -- PEM-encoded certificate.

message send_test_post -> string async role=pool-admin -- Debugging aid: POSTs the body over HTTPS to host:port and returns the reply.
  param host string -- Target host name or address.
  param port int -- Target TCP port.
  param body string -- Request body to send.
  result -- Response received.

message retrieve_wlb_recommendations -> map<ref<VM>,set<string>> async role=read-only+cert -- Fetches VM migration recommendations from the WLB server.
  result -- Recommendations for each VM.

message retrieve_wlb_configuration -> map<string,string> async role=read-only+cert -- Fetches the pool's optimisation settings from the WLB server.
  result -- Current WLB optimisation settings.

message send_wlb_configuration async role=pool-operator -- Sends optimisation settings for this pool to the WLB server.
  param config map<string,string> -- Settings to apply.

message deconfigure_wlb async role=pool-operator -- Permanently removes workload balancing from the pool.

message initialize_wlb async role=pool-operator -- Connects the pool to a WLB server and starts monitoring.
  param wlb_url string -- Address and port of the WLB server.
  param wlb_username string -- Login for the WLB server.
  param wlb_password string -- Password for the WLB server.
  param xenserver_username string -- Login the WLB server uses to call back into the pool.
  param xenserver_password string -- Password for that callback login.

message detect_nonhomogeneous_external_auth role=pool-operator -- Checks whether any member's external auth setup differs from the master's, raising alerts if so.
  param pool ref<pool> -- Pool to check.

message disable_external_auth role=pool-admin -- Turns off external authentication on every host.
  param pool ref<pool> -- Pool to change.
  param config map<string,string> = {} -- Optional extra settings as key/value pairs.

message enable_external_auth role=pool-admin -- Turns on external authentication on every host.
  param pool ref<pool> -- Pool to change.
  param config map<string,string> -- Settings for the directory service.
  param service_name string -- Name of the directory service, e.g. an AD domain.
  param auth_type string -- Authentication kind, e.g. AD.

message create_new_blob -> ref<blob> async role=pool-operator -- Creates an empty named blob attached to the pool; upload its data separately.
  param pool ref<pool> -- The pool.
  param name string -- Key under which the blob appears in blobs.
  param mime_type string -- Content type; empty means application/octet-stream.
  param public bool = false -- Whether the blob can be read without logging in.
  result -- Reference to the new blob.

message set_ha_host_failures_to_tolerate async role=pool-operator -- Sets how many host failures the HA restart planner must cover.
  param self ref<pool> -- The pool.
  param value int -- Count of simultaneous host failures HA should cover.

message ha_compute_vm_failover_plan -> map<ref<VM>,map<string,string>> role=pool-operator -- Works out where VMs would restart if the given hosts failed.
  param failed_hosts set<ref<host>> -- Hosts assumed to have failed.
  param failed_vms set<ref<VM>> -- VMs that need placing.
  result -- For each VM, placement details including the target host.

message ha_compute_hypothetical_max_host_failures_to_tolerate -> int role=read-only+cert -- Calculates how many host failures could be survived for a proposed set of protected VMs.
  param configuration map<ref<VM>,string> -- Protected VMs mapped to their restart priority.
  result -- Largest tolerable number of host failures.

message ha_compute_max_host_failures_to_tolerate -> int role=pool-operator -- Calculates how many host failures the current HA configuration could survive.
  result -- Largest tolerable number of host failures.

message ha_failover_plan_exists -> bool role=pool-operator -- Reports whether protected VMs could be restarted after up to n host failures.
  param n int -- How many host failures to assume.
  result -- True if such a plan exists.

message ha_prevent_restarts_for role=pool-operator -- Pauses HA VM restarts for the given time; 0 lets them resume immediately.
  param seconds int -- Pause length in seconds.

message designate_new_master async role=pool-operator -- Hands the master role over to the given host in an orderly way.
  param host ref<host> -- Host to become master.

message sync_database async role=pool-operator -- Forces an immediate database sync to the pool members.

message disable_ha async role=pool-operator+cert -- Switches HA off for the whole pool.

message enable_ha async role=pool-operator+cert -- Switches HA on, using the given heartbeat SRs.
  param heartbeat_srs set<ref<SR>> -- SRs used for storage heartbeats.
  param configuration map<string,string> -- HA settings to apply.

message create_VLAN_from_PIF -> set<ref<PIF>> async role=pool-operator -- Creates a pool-wide VLAN on the device of the given PIF, on every host.
  param pif ref<PIF> -- PIF identifying the physical device for the VLAN.
  param network ref<network> -- Network the VLAN interfaces join.
  param VLAN int -- VLAN tag.
  result -- PIFs that were created.
  errors VLAN_TAG_INVALID

message management_reconfigure async role=pool-operator -- Moves every host's management interface to the given network.
  param network ref<network> -- Network to use for management.
  errors HA_IS_ENABLED PIF_NOT_PRESENT CANNOT_PLUG_BOND_SLAVE PIF_INCOMPATIBLE_PRIMARY_ADDRESS_TYPE PIF_HAS_NO_NETWORK_CONFIGURATION PIF_HAS_NO_V6_NETWORK_CONFIGURATION

message create_VLAN -> set<ref<PIF>> async role=pool-operator -- Older form: creates a VLAN PIF on the named device of each host; prefer create_VLAN_from_PIF.
  param device string -- Physical device name, e.g. eth0.
  param network ref<network> -- Network the VLAN interfaces join.
  param VLAN int -- VLAN tag.
  result -- PIFs that were created.
  errors VLAN_TAG_INVALID

message recover_slaves -> set<ref<host>> async role=pool-operator -- Makes the master contact members in emergency mode and point them back at itself.
  result -- Hosts successfully recovered.

message emergency_reset_master role=pool-operator -- Tells a member host, directly, that the pool master has changed.
  param master_address string -- Address of the new master.

message emergency_transition_to_master role=pool-operator -- Makes the member host receiving the call become master.

message eject async role=pool-operator -- Removes a host from the pool.
  param host ref<host> -- Host to remove.

message join_force async role=pool-operator -- Makes this host join another pool, bypassing the usual compatibility checks.
  param master_address string -- Host name or IP of the target pool's master.
  param master_username string -- Login on that master.
  param master_password string -- Password on that master.

message join async role=pool-operator -- Makes this host join the pool run by the given master.
  param master_address string -- Host name or IP of the target pool's master.
  param master_username string -- Login on that master.
  param master_password string -- Password on that master.
  errors JOINING_HOST_CANNOT_CONTAIN_SHARED_SRS

message audit_log_append hidden role=pool-admin -- Appends a line to the audit log as given (pool-internal: members send their audit records to the master this way).
  param line string -- The line to append.
