class host -- A physical server running the hypervisor, managed as a member of a pool.
options db getall events

enum host_allowed_operations -- Kinds of operation that may be allowed or in progress on a host.
  value provision -- Provisioning a new VM on this host.
  value evacuate -- Host is being evacuated of its VMs.
  value shutdown -- Host is shutting down.
  value reboot -- Host is rebooting.
  value power_on -- Host is being powered on.
  value vm_start -- A VM is being started on this host.
  value vm_resume -- A VM is being resumed on this host.
  value vm_migrate -- A VM is being migrated onto this host.
  value apply_updates -- Updates are being applied to this host.
  value enable -- Host is being enabled.

enum latest_synced_updates_applied_state -- Whether the host has installed the updates most recently synced from the remote CDN.
  value yes -- All of the latest synced updates are installed.
  value no -- Some of the latest synced updates are not yet installed.
  value unknown -- It cannot be determined whether the latest synced updates are installed.

enum update_guidances -- Follow-up actions advised or required after updates are applied.
  value reboot_host -- Reboot the host soon.
  value reboot_host_on_livepatch_failure -- Reboot the host soon because at least one live patch could not be applied.
  value reboot_host_on_kernel_livepatch_failure -- Reboot the host soon because a kernel live patch failed to apply.
  value reboot_host_on_xen_livepatch_failure -- Reboot the host soon because a Xen live patch failed to apply.
  value restart_toolstack -- Restart the host's toolstack soon.
  value restart_device_model -- Restart the device model of affected running VMs soon.
  value restart_vm -- Restart the affected VM soon.

enum host_display -- Whether the host console is shown on its physical display device.
  value enabled -- Console output currently goes to the physical display.
  value disable_on_reboot -- Console output to the physical display stops at next boot.
  value disabled -- Console output does not go to the physical display.
  value enable_on_reboot -- Console output to the physical display starts at next boot.

enum host_sched_gran -- Granularity at which the Xen scheduler assigns CPUs.
  value core -- Schedule whole cores, keeping sibling threads together.
  value cpu -- Schedule each logical CPU (thread) independently.
  value socket -- Schedule whole sockets as a unit.

enum host_numa_affinity_policy -- Strategy for placing VM memory and vCPUs on NUMA nodes.
  value any -- No NUMA restriction; VMs may spread over every node.
  value best_effort -- Soft-pin each VM to as few NUMA nodes as fit it; not guaranteed balanced, falls back to any.
  value default_policy -- Use whatever policy this software version treats as default.

field uuid string ro-run -- Unique identifier of this host.
field name/label string rw = "" -- Short human-readable name of the host.
field name/description string rw = "" -- Free-text description of the host.
field memory/overhead int ro-run = 0 -- Memory used by virtualization overhead on this host, in bytes.
field allowed_operations set<host_allowed_operations> ro-run = [] -- Operations currently permitted; advisory only and may be stale once read.
field current_operations map<string,host_allowed_operations> ro-run = {} -- Tasks now running against this host, mapped to the kind of operation each performs.
field API_version/major int ro-run -- Major number of the API version the host implements.
field API_version/minor int ro-run -- Minor number of the API version the host implements.
field API_version/vendor string ro-run -- Vendor of the API implementation.
field API_version/vendor_implementation map<string,string> ro-run -- Vendor-specific details about the API implementation.
field enabled bool ro-run -- True if new VMs may start here; false when disabled, e.g. for maintenance.
field software_version map<string,string> ro-ctor -- Versions of installed software components, keyed by component name.
field other_config map<string,string> rw keys=folder:vm-operator,XenCenter.CustomFields.*:vm-operator -- Free-form key/value pairs for additional configuration.
field capabilities set<string> ro-ctor -- Xen capability strings, e.g. supported guest types such as hvm-3.0-x86_64.
field cpu_configuration map<string,string> ro-run -- CPU topology keys such as nr_nodes, sockets_per_node, cores_per_socket, threads_per_core.
field sched_policy string ro-run -- Xen scheduler in use on this host, e.g. credit.
field supported_bootloaders set<string> ro-run -- Guest bootloaders installed on the host, e.g. pygrub.
field resident_VMs set<ref<VM>> ro-run inverse=VM.resident_on -- VMs currently running on this host.
field logging map<string,string> rw -- Logging settings such as the syslog destination; applied by syslog_reconfigure.
field PIFs set<ref<PIF>> ro-run inverse=PIF.host -- Physical network interfaces of this host.
field suspend_image_sr ref<SR> rw -- SR in which VDIs holding suspended VM images are created.
field crash_dump_sr ref<SR> rw -- SR in which VDIs holding guest crash dumps are created.
field crashdumps set<ref<host_crashdump>> ro-run inverse=host_crashdump.host -- Crash dumps recorded for this host.
field patches set<ref<host_patch>> ro-run inverse=host_patch.host deprecated -- Legacy host patches applied here; deprecated in favour of updates.
field updates set<ref<pool_update>> ro-run -- Pool updates applied to this host.
field PBDs set<ref<PBD>> ro-run inverse=PBD.host -- Physical block devices linking this host to its SRs.
field host_CPUs set<ref<host_cpu>> ro-run inverse=host_cpu.host -- Physical CPU objects of this host.
field cpu_info map<string,string> ro-run = {} -- Summary of the host's physical CPUs, such as vendor, model, count and feature masks.
field hostname string rw -- Network hostname of the host.
field address string rw -- Address other pool members use to contact this host.
field metrics ref<host_metrics> ro-run -- Metrics object carrying live statistics for this host.
field license_params map<string,string> ro-run -- Key/value description of the host's current license state.
field ha_statefiles set<string> ro-run = [] -- HA state files this host can access.
field ha_network_peers set<string> ro-run = [] -- Hosts reachable from this host over the network, as seen by HA.
field blobs map<string,ref<blob>> ro-run = {} -- Named binary blobs attached to this host.
field tags set<string> rw = [] write=vm-operator -- User-defined tags for grouping and categorisation.
field external_auth_type string ro-run = "" -- Kind of external authentication configured, e.g. AD; empty if none.
field external_auth_service_name string ro-run = "" -- Name of the configured external auth service, e.g. an AD domain; empty if none.
field external_auth_configuration map<string,string> ro-run = {} -- Settings specific to the configured external authentication service.
field edition string ro-run = "" -- Product edition the host is currently running under.
field license_server map<string,string> rw = {"address": "localhost", "port": "27000"} -- Address and port of the license server to contact.
field bios_strings map<string,string> ro-run = {} -- BIOS/SMBIOS strings read from the host hardware.
field power_on_mode string ro-run = "" -- Method for powering on the host remotely, e.g. wake-on-lan or DRAC; empty if none.
field power_on_config map<string,string> ro-run = {} -- Extra settings for the power-on method, such as address and credentials.
field local_cache_sr ref<SR> ro-ctor = NULL -- SR used as a local VDI cache, or NULL if none.
field chipset_info map<string,string> ro-run = {} -- Chipset capabilities of the host, e.g. IOMMU availability.
field PCIs set<ref<PCI>> ro-run inverse=PCI.host -- PCI devices present in the host.
field PGPUs set<ref<PGPU>> ro-run inverse=PGPU.host -- Physical GPUs present in the host.
field PUSBs set<ref<PUSB>> ro-run inverse=PUSB.host -- Physical USB devices attached to the host.
field ssl_legacy bool ro-ctor = true deprecated -- Deprecated: allow SSLv3 and old ciphers; changing it restarts the TLS listener, dropping connections.
field guest_VCPUs_params map<string,string> rw = {} -- VCPU parameters applied to every guest resident on this host.
field display host_display rw = enabled -- Whether the console is, or will be after reboot, sent to a physical display.
field virtual_hardware_platform_versions set<int> ro-run = [0] -- Virtual hardware platform versions this host can offer to guests.
field control_domain ref<VM> ro-run = NULL -- The host's control domain (dom0) VM.
field updates_requiring_reboot set<ref<pool_update>> ro-run -- Applied updates that still need a host reboot to take effect.
field features set<ref<Feature>> ro-run inverse=Feature.host -- Feature objects describing functionality available on this host.
field iscsi_iqn string ro-ctor = "" -- iSCSI initiator IQN used by this host.
field multipathing bool ro-ctor = false -- True if storage multipathing is enabled on this host.
field uefi_certificates string ro-ctor = "" deprecated -- Deprecated: UEFI Secure Boot certificates installed on the host.
field certificates set<ref<Certificate>> ro-run inverse=Certificate.host -- TLS certificates installed on this host.
field editions set<string> ro-run = [] -- All product editions that can be selected on this host.
field pending_guidances set<update_guidances> ro-run = [] -- Mandatory post-update actions still outstanding; skipping them may cause e.g. VM failures.
field tls_verification_enabled bool ro-run = false -- True if this host verifies the TLS certificates of its peers.
field last_software_update datetime ro-run = 19700101T00:00:00Z prototyped -- When a software update was most recently applied to this host.
field https_only bool ro-run = false prototyped -- True if plain HTTP port 80 is closed, leaving only HTTPS.
field latest_synced_updates_applied latest_synced_updates_applied_state ro-run = unknown prototyped -- Whether the host has the latest CDN-synced updates: yes, no or unknown (default).
field numa_affinity_policy host_numa_affinity_policy ro-run = default_policy prototyped -- Policy for NUMA-aware placement of VM memory and vCPUs on this host.
field pending_guidances_recommended set<update_guidances> ro-run = [] prototyped -- Recommended post-update actions still outstanding; advisable but not causing failures if skipped.
field pending_guidances_full set<update_guidances> ro-run = [] prototyped -- Optional post-update actions that make specific updates (e.g. drivers) fully effective.
field last_update_hash string ro-run = "" prototyped -- SHA-256 checksum of the updateinfo of the latest update applied.

message emergency_clear_mandatory_guidance role=none prototyped -- Emergency call that discards the pending mandatory guidances on this host.

message apply_recommended_guidances async role=pool-operator removed -- Removed: carry out recommended guidances on the host and its HVM VMs after updating.
  param self ref<host> -- Target host for the recommended guidance actions.

message set_https_only async role=pool-operator prototyped -- Close or open firewall port 80 on the host according to the value.
  param self ref<host> -- Host whose firewall is changed.
  param value bool -- True blocks HTTP on port 80; false opens it.

message apply_updates -> set<set<string>> async role=pool-operator+cert -- Install updates from the enabled repositories on this host.
  param self ref<host> -- Host to update.
  param hash string -- Hash of the updateinfo to apply, as returned by an earlier pool.sync_updates.
  result -- Outcome entries, such as live-patch failures and recommended guidances.

message emergency_reenable_tls_verification role=none -- Emergency call that turns TLS verification back on for this host only.

message emergency_disable_tls_verification role=none -- Emergency call that turns TLS verification off for this host only.

message set_numa_affinity_policy async role=pool-admin prototyped -- Change the NUMA placement policy used for VMs on this host.
  param self ref<host> -- Host to configure.
  param value host_numa_affinity_policy -- New NUMA affinity policy.

message get_sched_gran -> host_sched_gran async role=none -- Read the Xen scheduler granularity (sched-gran) configured on the host.
  param self ref<host> -- Host to query.
  result -- Configured scheduler granularity.

message set_sched_gran async role=none -- Configure the Xen scheduler granularity (sched-gran boot option) for the host.
  param self ref<host> -- Host to configure.
  param value host_sched_gran -- Granularity to use.

message set_uefi_certificates async role=none deprecated -- Deprecated: store the UEFI Secure Boot certificates for a host.
  param host ref<host> -- Host to configure.
  param value string -- Certificates to store.

message set_multipathing async role=pool-operator -- Turn storage multipathing on or off for the host.
  param host ref<host> -- Host to configure.
  param value bool -- True to enable multipathing.

message set_iscsi_iqn async role=pool-operator -- Change the host's iSCSI initiator IQN.
  param host ref<host> -- Host to configure.
  param value string -- New IQN.

message set_ssl_legacy async role=pool-operator -- Allow or forbid legacy SSLv3; the TLS listener restarts at once, breaking open connections but keeping sessions.
  param self ref<host> -- Host to configure.
  param value bool -- True to permit SSLv3 and old cipher suites.

message disable_display -> host_display async role=pool-operator -- Stop sending console output to the physical display from the next boot.
  param host ref<host> -- Host to configure.
  result -- Display state of the host after the change.

message enable_display -> host_display async role=pool-operator -- Start sending console output to the physical display from the next boot.
  param host ref<host> -- Host to configure.
  result -- Display state of the host after the change.

message declare_dead async role=pool-operator -- Mark a host as dead; dangerous, use only when certain it is really down.
  param host ref<host> -- Host to mark as dead.

message migrate_receive -> map<string,string> async role=vm-power-admin -- Prepare this host to accept an incoming VM migration and return a token for VM.migrate_send.
  param host ref<host> -- Destination host.
  param network ref<network> -- Network on which migration traffic will arrive.
  param options map<string,string> -- Extra key/value options for the migration.
  result -- Token to hand to VM.migrate_send.

message disable_local_storage_caching role=pool-operator -- Stop using a local SR as a cache on this host.
  param host ref<host> -- Host to configure.

message enable_local_storage_caching role=pool-operator -- Start using the given local SR as a cache on this host.
  param host ref<host> -- Host to configure.
  param sr ref<SR> -- Local SR to serve as the cache.

message reset_cpu_features role=pool-operator removed -- Removed: clear the CPU feature mask so all features are on after reboot.
  param host ref<host> -- Host to act on.

message set_cpu_features role=pool-operator removed -- Removed: set the CPU feature mask to apply after the next reboot.
  param host ref<host> -- Host to act on.
  param features string -- Feature mask as 32 hexadecimal digits.

message set_power_on_mode async role=pool-operator -- Choose how the host is powered on remotely, together with the method's settings.
  param self ref<host> -- Host to configure.
  param power_on_mode string -- Remote power-on mechanism, e.g. wake-on-lan or DRAC, or empty for none.
  param power_on_config map<string,string> -- Settings for the method, e.g. address, user and password.

message refresh_pack_info async role=pool-operator deprecated -- Deprecated: rescan the supplemental packs installed on the host.
  param host ref<host> -- Host to rescan.

message apply_edition role=pool-operator -- Move the host to another edition, or reactivate the current one after license expiry; may need a license checkout.
  param host ref<host> -- Host to change.
  param edition string -- Edition to switch to.
  param force bool = false -- Update license parameters even when applying the edition fails.

message reset_server_certificate async role=pool-admin -- Replace the host's TLS server certificate with a freshly generated self-signed one; use with great care.
  param host ref<host> -- Host whose certificate is replaced.

message emergency_reset_server_certificate role=none -- Emergency call that regenerates the local host's TLS server certificate as self-signed.

message install_server_certificate async role=pool-admin -- Install a new TLS server certificate and key on the host.
  param host ref<host> -- Host to install on.
  param certificate string -- Server certificate, PEM-encoded.
  param private_key string -- Matching unencrypted private key, PKCS#8 format.
  param certificate_chain string = "" -- Optional intermediate certificate chain, PEM-encoded.

message refresh_server_certificate async role=pool-admin -- Regenerate the host's internal self-signed certificate used within the pool.
  param host ref<host> -- Host to refresh.

message get_server_certificate -> string async role=read-only+cert -- Fetch the host's public TLS server certificate.
  param host ref<host> -- Host to query.
  result -- The certificate, PEM-encoded.

message retrieve_wlb_evacuate_recommendations -> map<ref<VM>,set<string>> async role=read-only+cert -- Ask the WLB server where each VM should go when evacuating the host, or why it cannot move.
  param self ref<host> -- Host to query.
  result -- Per VM, either a recommended target or the reason it blocks evacuation.

message disable_external_auth role=pool-admin -- Turn off external authentication on this host.
  param host ref<host> -- Host to configure.
  param config map<string,string> = {} -- Optional key/value settings for disabling.

message enable_external_auth role=pool-admin -- Turn on external authentication, e.g. Active Directory, on this host.
  param host ref<host> -- Host to configure.
  param config map<string,string> -- Key/value settings for the authentication service.
  param service_name string -- Name of the authentication service, e.g. an AD domain.
  param auth_type string -- Authentication type, e.g. AD.

message get_server_localtime -> datetime role=read-only+cert -- Read the host clock's current time in the host's local time zone.
  param host ref<host> -- Host to query.
  result -- Current local time on the host.

message get_servertime -> datetime role=read-only+cert -- Read the host clock's current time in UTC.
  param host ref<host> -- Host to query.
  result -- Current time on the host.

message call_extension -> string role=pool-admin -- Invoke an API extension installed on this host.
  param host ref<host> -- Host to call.
  param call string -- Serialized RPC call to pass to the extension.
  result -- Output returned by the extension.

message has_extension -> bool async role=pool-admin -- Check whether a named API extension is available on the host.
  param host ref<host> -- Host to check.
  param name string -- Name of the extension call.
  result -- True if the extension exists.

message call_plugin -> string async role=pool-admin -- Run a function of a dom0 plugin on this host and return its output.
  param host ref<host> -- Host to run on.
  param plugin string -- Plugin name.
  param fn string -- Function name within the plugin.
  param args map<string,string> -- Arguments passed to the function.
  result -- String output of the plugin function.

message create_new_blob -> ref<blob> async role=pool-operator -- Create an empty named blob attached to this host, to be filled via its reference.
  param host ref<host> -- Host owning the blob.
  param name string -- Blob name.
  param mime_type string -- MIME type of the data; empty means application/octet-stream.
  param public bool = false -- True to make the blob publicly readable.
  result -- Reference to the new blob.

message backup_rrds role=pool-admin -- Back up this host's RRD statistics to the pool master.
  param host ref<host> -- Host whose RRDs are backed up.
  param delay float -- Seconds to wait before performing the backup.

message sync_data role=pool-admin -- Copy non-database data held on the master, such as messages and RRDs, to the host.
  param host ref<host> -- Host receiving the data.

message compute_memory_overhead -> int async role=read-only+cert -- Calculate the host's virtualization memory overhead.
  param host ref<host> -- Host to compute for.
  result -- Memory overhead in bytes.

message compute_free_memory -> int async role=read-only+cert -- Calculate how much memory is currently free on the host.
  param host ref<host> -- Host to query.
  result -- Free memory in bytes.

message set_hostname_live role=pool-operator -- Rename the host immediately, both in the API and in the underlying OS.
  param host ref<host> -- Host to rename.
  param hostname string -- New host name.
  errors HOST_NAME_INVALID

message shutdown_agent role=pool-operator -- Stop the toolstack agent after a 10 s pause; running operations are aborted and data may be lost.

message restart_agent async role=pool-operator -- Restart the toolstack agent after a 10 s pause; running operations are aborted and data may be lost.
  param host ref<host> -- Host whose agent is restarted.

message get_system_status_capabilities -> string role=read-only+cert -- Describe which system status report items the host can collect.
  param host ref<host> -- Host to query.
  result -- Status-report capabilities, as an XML fragment.

message get_management_interface -> ref<PIF> async role=pool-operator -- Return the PIF serving as the host's management interface.
  param host ref<host> -- Host to query.
  result -- Management PIF.

message management_disable role=pool-operator -- Disable the management network interface on the local host.

message local_management_reconfigure role=pool-operator -- Reconfigure management by device name; for when management_reconfigure is impossible due to broken networking.
  param interface string -- Device name of the new management interface.

message management_reconfigure async role=pool-operator -- Move the management interface to the given PIF.
  param pif ref<PIF> -- PIF to use for management traffic.

message syslog_reconfigure async role=pool-operator -- Make the host reread its logging settings and reconfigure syslog.
  param host ref<host> -- Host to reconfigure.

message evacuate async role=pool-operator+cert -- Move every VM it can away from this host via live migration.
  param host ref<host> -- Host to evacuate.
  param network ref<network> = NULL -- Network to prefer for migration traffic; NULL means no preference.
  param evacuate_batch_size int = 0 -- Maximum VMs migrated per batch; 0 uses the configured default.

message get_uncooperative_resident_VMs -> set<ref<VM>> async role=read-only+cert deprecated -- Deprecated: list VMs not cooperating with the host's memory control.
  param self ref<host> -- Host to query.
  result -- VMs that are not cooperating.

message get_vms_which_prevent_evacuation -> map<ref<VM>,set<string>> async role=read-only+cert -- List VMs that stop the host being evacuated, with error codes for each.
  param self ref<host> -- Host to query.
  result -- Blocking VMs mapped to their reasons.

message assert_can_evacuate async role=pool-operator -- Fail with an error unless the host can currently be evacuated.
  param host ref<host> -- Host to check.

message forget_data_source_archives role=pool-operator -- Discard recorded statistics for one data source.
  param host ref<host> -- Host owning the data source.
  param data_source string -- Data source whose history is dropped.

message query_data_source -> float role=read-only+cert -- Read the most recent value of a data source.
  param host ref<host> -- Host owning the data source.
  param data_source string -- Name of the data source.
  result -- Most recent reading, a 5-second average.

message record_data_source role=pool-operator -- Begin recording the given data source.
  param host ref<host> -- Host owning the data source.
  param data_source string -- Data source to record.

message get_data_sources -> set<record<data_source>> role=read-only+cert -- List the data sources available on the host.
  param host ref<host> -- Host to query.
  result -- Data source records.

message emergency_ha_disable role=pool-operator -- Emergency call that disables HA on the local host; use with great care.
  param soft bool = false -- If true, disable HA only temporarily, until reboot or further changes.

message power_on async role=pool-operator -- Try to power the host on, if it supports a power-on method.
  param host ref<host> -- Host to power on.

message destroy async role=pool-operator -- Delete the host's record from the database.
  param self ref<host> -- Host record to delete.

message license_remove async role=pool-operator -- Delete any license from the host and revert it to the unlicensed edition.
  param host ref<host> -- Host to unlicense.

message license_add async role=pool-operator -- Install a new license file on the host.
  param host ref<host> -- Host to license.
  param contents string -- License file contents, base64-encoded.
  errors LICENSE_PROCESSING_ERROR

message license_apply async role=pool-operator removed -- Removed: install a new license file on the host; use license_add.
  param host ref<host> -- Host to license.
  param contents string -- License file contents, base64-encoded.
  errors LICENSE_PROCESSING_ERROR

message list_methods -> set<string> role=read-only+cert -- List every API method the server supports.
  result -- Names of all supported methods.

message bugreport_upload async role=pool-operator -- Run xen-bugtool on the host and upload the resulting report to a URL.
  param host ref<host> -- Host to collect the report from.
  param url string -- Upload destination URL.
  param options map<string,string> -- Extra key/value options for the upload.

message send_debug_keys async role=pool-admin -- Send a string of debug keys to the Xen hypervisor.
  param host ref<host> -- Target host.
  param keys string -- Debug key characters to inject.

message get_log -> string async role=read-only+cert -- Fetch the host's main log file as text.
  param host ref<host> -- Host to query.
  result -- Log file contents.

message dmesg_clear -> string async role=pool-operator -- Return the Xen dmesg buffer, then empty it.
  param host ref<host> -- Host to query.
  result -- Xen dmesg text.

message dmesg -> string async role=pool-operator -- Return the Xen hypervisor dmesg buffer.
  param host ref<host> -- Host to query.
  result -- Xen dmesg text.

message reboot async role=pool-operator -- Reboot the host; it must be disabled and have no running VMs.
  param host ref<host> -- Host to reboot.

message shutdown async role=pool-operator -- Shut the host down; it must be disabled and have no running VMs.
  param host ref<host> -- Host to shut down.

message enable async role=pool-operator+cert -- Allow new VMs to be started on the host.
  param host ref<host> -- Host to enable.

message disable async role=pool-operator+cert -- Prevent new VMs starting on the host; VMs already running keep running.
  param host ref<host> -- Host to disable.
