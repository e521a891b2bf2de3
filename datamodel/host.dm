class host --
options db getall events

enum host_allowed_operations --
  value provision --
  value evacuate --
  value shutdown --
  value reboot --
  value power_on --
  value vm_start --
  value vm_resume --
  value vm_migrate --
  value apply_updates --
  value enable --

enum latest_synced_updates_applied_state --
  value yes --
  value no --
  value unknown --

enum update_guidances --
  value reboot_host --
  value reboot_host_on_livepatch_failure --
  value reboot_host_on_kernel_livepatch_failure --
  value reboot_host_on_xen_livepatch_failure --
  value restart_toolstack --
  value restart_device_model --
  value restart_vm --

enum host_display --
  value enabled --
  value disable_on_reboot --
  value disabled --
  value enable_on_reboot --

enum host_sched_gran --
  value core --
  value cpu --
  value socket --

enum host_numa_affinity_policy --
  value any --
  value best_effort --
  value default_policy --

field uuid string ro-run --
field name/label string rw = "" --
field name/description string rw = "" --
field memory/overhead int ro-run = 0 --
field allowed_operations set<host_allowed_operations> ro-run = [] --
field current_operations map<string,host_allowed_operations> ro-run = {} --
field API_version/major int ro-run --
field API_version/minor int ro-run --
field API_version/vendor string ro-run --
field API_version/vendor_implementation map<string,string> ro-run --
field enabled bool ro-run --
field software_version map<string,string> ro-ctor --
field other_config map<string,string> rw --
field capabilities set<string> ro-ctor --
field cpu_configuration map<string,string> ro-run --
field sched_policy string ro-run --
field supported_bootloaders set<string> ro-run --
field resident_VMs set<ref<VM>> ro-run inverse=VM.resident_on --
field logging map<string,string> rw --
field PIFs set<ref<PIF>> ro-run inverse=PIF.host --
field suspend_image_sr ref<SR> rw --
field crash_dump_sr ref<SR> rw --
field crashdumps set<ref<host_crashdump>> ro-run inverse=host_crashdump.host --
field patches set<ref<host_patch>> ro-run inverse=host_patch.host deprecated --
field updates set<ref<pool_update>> ro-run --
field PBDs set<ref<PBD>> ro-run inverse=PBD.host --
field host_CPUs set<ref<host_cpu>> ro-run inverse=host_cpu.host --
field cpu_info map<string,string> ro-run = {} --
field hostname string rw --
field address string rw --
field metrics ref<host_metrics> ro-run --
field license_params map<string,string> ro-run --
field ha_statefiles set<string> ro-run = [] --
field ha_network_peers set<string> ro-run = [] --
field blobs map<string,ref<blob>> ro-run = {} --
field tags set<string> rw = [] write=vm-operator --
field external_auth_type string ro-run = "" --
field external_auth_service_name string ro-run = "" --
field external_auth_configuration map<string,string> ro-run = {} --
field edition string ro-run = "" --
field license_server map<string,string> rw = {"address": "localhost", "port": "27000"} --
field bios_strings map<string,string> ro-run = {} --
field power_on_mode string ro-run = "" --
field power_on_config map<string,string> ro-run = {} --
field local_cache_sr ref<SR> ro-ctor = NULL --
field chipset_info map<string,string> ro-run = {} --
field PCIs set<ref<PCI>> ro-run inverse=PCI.host --
field PGPUs set<ref<PGPU>> ro-run inverse=PGPU.host --
field PUSBs set<ref<PUSB>> ro-run inverse=PUSB.host --
field ssl_legacy bool ro-ctor = true deprecated --
field guest_VCPUs_params map<string,string> rw = {} --
field display host_display rw = enabled --
field virtual_hardware_platform_versions set<int> ro-run = [0] --
field control_domain ref<VM> ro-run = NULL --
field updates_requiring_reboot set<ref<pool_update>> ro-run --
field features set<ref<Feature>> ro-run inverse=Feature.host --
field iscsi_iqn string ro-ctor = "" --
field multipathing bool ro-ctor = false --
field uefi_certificates string ro-ctor = "" deprecated --
field certificates set<ref<Certificate>> ro-run inverse=Certificate.host --
field editions set<string> ro-run = [] --
field pending_guidances set<update_guidances> ro-run = [] --
field tls_verification_enabled bool ro-run = false --
field last_software_update datetime ro-run = 19700101T00:00:00Z prototyped --
field https_only bool ro-run = false prototyped --
field latest_synced_updates_applied latest_synced_updates_applied_state ro-run = unknown prototyped --
field numa_affinity_policy host_numa_affinity_policy ro-run = default_policy prototyped --
field pending_guidances_recommended set<update_guidances> ro-run = [] prototyped --
field pending_guidances_full set<update_guidances> ro-run = [] prototyped --
field last_update_hash string ro-run = "" prototyped --

message emergency_clear_mandatory_guidance role=none prototyped --

message apply_recommended_guidances async role=pool-operator removed --
  param self ref<host> --

message set_https_only async role=pool-operator prototyped --
  param self ref<host> --
  param value bool --

message apply_updates -> set<set<string>> async role=pool-operator+cert --
  param self ref<host> --
  param hash string --
  result --

message emergency_reenable_tls_verification role=none --

message emergency_disable_tls_verification role=none --

message set_numa_affinity_policy async role=pool-admin prototyped --
  param self ref<host> --
  param value host_numa_affinity_policy --

message get_sched_gran -> host_sched_gran async role=none --
  param self ref<host> --
  result --

message set_sched_gran async role=none --
  param self ref<host> --
  param value host_sched_gran --

message set_uefi_certificates async role=none deprecated --
  param host ref<host> --
  param value string --

message set_multipathing async role=pool-operator --
  param host ref<host> --
  param value bool --

message set_iscsi_iqn async role=pool-operator --
  param host ref<host> --
  param value string --

message set_ssl_legacy async role=pool-operator --
  param self ref<host> --
  param value bool --

message disable_display -> host_display async role=pool-operator --
  param host ref<host> --
  result --

message enable_display -> host_display async role=pool-operator --
  param host ref<host> --
  result --

message declare_dead async role=pool-operator --
  param host ref<host> --

message migrate_receive -> map<string,string> async role=vm-power-admin --
  param host ref<host> --
  param network ref<network> --
  param options map<string,string> --
  result --

message disable_local_storage_caching role=pool-operator --
  param host ref<host> --

message enable_local_storage_caching role=pool-operator --
  param host ref<host> --
  param sr ref<SR> --

message reset_cpu_features role=pool-operator removed --
  param host ref<host> --

message set_cpu_features role=pool-operator removed --
  param host ref<host> --
  param features string --

message set_power_on_mode async role=pool-operator --
  param self ref<host> --
  param power_on_mode string --
  param power_on_config map<string,string> --

message refresh_pack_info async role=pool-operator deprecated --
  param host ref<host> --

message apply_edition role=pool-operator --
  param host ref<host> --
  param edition string --
  param force bool = false --

message reset_server_certificate async role=pool-admin --
  param host ref<host> --

message emergency_reset_server_certificate role=none --

message install_server_certificate async role=pool-admin --
  param host ref<host> --
  param certificate string --
  param private_key string --
  param certificate_chain string = "" --

message refresh_server_certificate async role=pool-admin --
  param host ref<host> --

message get_server_certificate -> string async role=read-only+cert --
  param host ref<host> --
  result --

message retrieve_wlb_evacuate_recommendations -> map<ref<VM>,set<string>> async role=read-only+cert --
  param self ref<host> --
  result --

message disable_external_auth role=pool-admin --
  param host ref<host> --
  param config map<string,string> = {} --

message enable_external_auth role=pool-admin --
  param host ref<host> --
  param config map<string,string> --
  param service_name string --
  param auth_type string --

message get_server_localtime -> datetime role=read-only+cert --
  param host ref<host> --
  result --

message get_servertime -> datetime role=read-only+cert --
  param host ref<host> --
  result --

message call_extension -> string role=pool-admin --
  param host ref<host> --
  param call string --
  result --

message has_extension -> bool async role=pool-admin --
  param host ref<host> --
  param name string --
  result --

message call_plugin -> string async role=pool-admin --
  param host ref<host> --
  param plugin string --
  param fn string --
  param args map<string,string> --
  result --

message create_new_blob -> ref<blob> async role=pool-operator --
  param host ref<host> --
  param name string --
  param mime_type string --
  param public bool = false --
  result --

message backup_rrds role=pool-admin --
  param host ref<host> --
  param delay float --

message sync_data role=pool-admin --
  param host ref<host> --

message compute_memory_overhead -> int async role=read-only+cert --
  param host ref<host> --
  result --

message compute_free_memory -> int async role=read-only+cert --
  param host ref<host> --
  result --

message set_hostname_live role=pool-operator --
  param host ref<host> --
  param hostname string --
  errors HOST_NAME_INVALID

message shutdown_agent role=pool-operator --

message restart_agent async role=pool-operator --
  param host ref<host> --

message get_system_status_capabilities -> string role=read-only+cert --
  param host ref<host> --
  result --

message get_management_interface -> ref<PIF> async role=pool-operator --
  param host ref<host> --
  result --

message management_disable role=pool-operator --

message local_management_reconfigure role=pool-operator --
  param interface string --

message management_reconfigure async role=pool-operator --
  param pif ref<PIF> --

message syslog_reconfigure async role=pool-operator --
  param host ref<host> --

message evacuate async role=pool-operator+cert --
  param host ref<host> --
  param network ref<network> = NULL --
  param evacuate_batch_size int = 0 --

message get_uncooperative_resident_VMs -> set<ref<VM>> async role=read-only+cert deprecated --
  param self ref<host> --
  result --

message get_vms_which_prevent_evacuation -> map<ref<VM>,set<string>> async role=read-only+cert --
  param self ref<host> --
  result --

message assert_can_evacuate async role=pool-operator --
  param host ref<host> --

message forget_data_source_archives role=pool-operator --
  param host ref<host> --
  param data_source string --

message query_data_source -> float role=read-only+cert --
  param host ref<host> --
  param data_source string --
  result --

message record_data_source role=pool-operator --
  param host ref<host> --
  param data_source string --

message get_data_sources -> set<record<data_source>> role=read-only+cert --
  param host ref<host> --
  result --

message emergency_ha_disable role=pool-operator --
  param soft bool = false --

message power_on async role=pool-operator --
  param host ref<host> --

message destroy async role=pool-operator --
  param self ref<host> --

message license_remove async role=pool-operator --
  param host ref<host> --

message license_add async role=pool-operator --
  param host ref<host> --
  param contents string --
  errors LICENSE_PROCESSING_ERROR

message license_apply async role=pool-operator removed --
  param host ref<host> --
  param contents string --
  errors LICENSE_PROCESSING_ERROR

message list_methods -> set<string> role=read-only+cert --
  result --

message bugreport_upload async role=pool-operator --
  param host ref<host> --
  param url string --
  param options map<string,string> --

message send_debug_keys async role=pool-admin --
  param host ref<host> --
  param keys string --

message get_log -> string async role=read-only+cert --
  param host ref<host> --
  result --

message dmesg_clear -> string async role=pool-operator --
  param host ref<host> --
  result --

message dmesg -> string async role=pool-operator --
  param host ref<host> --
  result --

message reboot async role=pool-operator --
  param host ref<host> --

message shutdown async role=pool-operator --
  param host ref<host> --

message enable async role=pool-operator+cert --
  param host ref<host> --

message disable async role=pool-operator+cert --
  param host ref<host> --
