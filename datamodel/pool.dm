class pool --
options db getall events

enum pool_allowed_operations --
  value ha_enable --
  value ha_disable --
  value cluster_create --
  value designate_new_master --
  value configure_repositories --
  value sync_updates --
  value get_updates --
  value apply_updates --
  value tls_verification_enable --
  value cert_refresh --
  value exchange_certificates_on_join --
  value exchange_ca_certificates_on_join --
  value copy_primary_host_certs --
  value eject --

enum telemetry_frequency --
  value daily --
  value weekly --
  value monthly --

enum update_sync_frequency --
  value daily --
  value weekly --

field uuid string ro-run --
field name_label string rw --
field name_description string rw --
field master ref<host> ro-run --
field default_SR ref<SR> rw --
field suspend_image_SR ref<SR> rw --
field crash_dump_SR ref<SR> rw --
field other_config map<string,string> rw --
field ha_enabled bool ro-run = false --
field ha_configuration map<string,string> ro-run = {} --
field ha_statefiles set<string> ro-run = [] --
field ha_host_failures_to_tolerate int ro-run = 0 --
field ha_plan_exists_for int ro-run = 0 --
field ha_allow_overcommit bool rw = false --
field ha_overcommitted bool ro-run = false --
field blobs map<string,ref<blob>> ro-run = {} --
field tags set<string> rw = [] write=vm-operator --
field gui_config map<string,string> rw = {} write=vm-operator --
field health_check_config map<string,string> rw = {} --
field wlb_url string ro-run = "" --
field wlb_username string ro-run = "" --
field wlb_enabled bool rw = false write=pool-operator+cert --
field wlb_verify_cert bool rw = false deprecated --
field redo_log_enabled bool ro-run = false --
field redo_log_vdi ref<VDI> ro-run = NULL --
field vswitch_controller string ro-run = "" deprecated --
field restrictions map<string,string> ro-run = {} --
field metadata_VDIs set<ref<VDI>> ro-run inverse=VDI.metadata_of_pool --
field ha_cluster_stack string ro-run = "" --
field allowed_operations set<pool_allowed_operations> ro-run = [] --
field current_operations map<string,pool_allowed_operations> ro-run = {} --
field guest_agent_config map<string,string> ro-run = {} --
field cpu_info map<string,string> ro-run = {} --
field policy_no_vendor_device bool rw = false --
field live_patching_disabled bool rw = false --
field igmp_snooping_enabled bool ro-run = false --
field uefi_certificates string ro-ctor = "" --
field custom_uefi_certificates string ro-ctor = "" prototyped --
field is_psr_pending bool rw = false --
field tls_verification_enabled bool ro-run = false --
field repositories set<ref<Repository>> ro-run = [] --
field client_certificate_auth_enabled bool ro-run = false --
field client_certificate_auth_name string ro-run = "" --
field repository_proxy_url string ro-run = "" --
field repository_proxy_username string ro-run = "" --
field repository_proxy_password ref<secret> ro-run = NULL --
field migration_compression bool rw = false prototyped --
field coordinator_bias bool rw = true --
field local_auth_max_threads int ro-ctor = 8 prototyped --
field ext_auth_max_threads int ro-ctor = 1 prototyped --
field telemetry_uuid ref<secret> ro-run = NULL prototyped --
field telemetry_frequency telemetry_frequency ro-run = weekly prototyped --
field telemetry_next_collection datetime ro-run = 19700101T00:00:00Z prototyped --
field last_update_sync datetime ro-run = 19700101T00:00:00Z prototyped --
field update_sync_frequency update_sync_frequency ro-run = weekly prototyped --
field update_sync_day int ro-run = 0 prototyped --
field update_sync_enabled bool ro-run = false prototyped --

message set_ext_auth_max_threads role=pool-operator prototyped --
  param self ref<pool> --
  param value int --

message set_local_auth_max_threads role=pool-operator prototyped --
  param self ref<pool> --
  param value int --

message set_update_sync_enabled async role=pool-operator prototyped --
  param self ref<pool> --
  param value bool --

message configure_update_sync async role=pool-operator prototyped --
  param self ref<pool> --
  param update_sync_frequency update_sync_frequency --
  param update_sync_day int --

message reset_telemetry_uuid async role=pool-admin prototyped --
  param self ref<pool> --

message set_telemetry_next_collection async role=pool-admin prototyped --
  param self ref<pool> --
  param value datetime --

message set_https_only async role=pool-operator prototyped --
  param self ref<pool> --
  param value bool --

message set_custom_uefi_certificates async role=pool-admin prototyped --
  param self ref<pool> --
  param value string --

message set_uefi_certificates async role=pool-admin deprecated --
  param self ref<pool> --
  param value string --

message disable_repository_proxy async role=pool-operator+cert --
  param self ref<pool> --

message configure_repository_proxy async role=pool-operator+cert --
  param self ref<pool> --
  param url string --
  param username string --
  param password string --

message disable_client_certificate_auth async role=pool-operator+cert --
  param self ref<pool> --

message enable_client_certificate_auth async role=pool-operator+cert --
  param self ref<pool> --
  param name string --

message check_update_readiness -> set<set<string>> async role=pool-operator+cert --
  param self ref<pool> --
  param requires_reboot bool --
  result --

message sync_updates -> string async role=pool-operator+cert --
  param self ref<pool> --
  param force bool --
  param token string = "" --
  param token_id string = "" --
  result --

message remove_repository async role=pool-operator+cert --
  param self ref<pool> --
  param value ref<Repository> --

message add_repository async role=pool-operator+cert --
  param self ref<pool> --
  param value ref<Repository> --

message set_repositories async role=pool-operator+cert --
  param self ref<pool> --
  param value set<ref<Repository>> --

message rotate_secret async role=pool-admin --
  errors INTERNAL_ERROR HOST_IS_SLAVE CANNOT_CONTACT_HOST HA_IS_ENABLED NOT_SUPPORTED_DURING_UPGRADE

message remove_from_guest_agent_config async role=pool-admin --
  param self ref<pool> --
  param key string --

message add_to_guest_agent_config async role=pool-admin --
  param self ref<pool> --
  param key string --
  param value string --

message has_extension -> bool async role=pool-admin --
  param self ref<pool> --
  param name string --
  result --

message set_igmp_snooping_enabled async role=pool-operator --
  param self ref<pool> --
  param value bool --

message disable_ssl_legacy async role=pool-operator deprecated --
  param self ref<pool> --

message enable_ssl_legacy async role=pool-operator removed --
  param self ref<pool> --

message apply_edition async role=pool-operator --
  param self ref<pool> --
  param edition string --

message get_license_state -> map<string,string> async role=read-only+cert --
  param self ref<pool> --
  result --

message disable_local_storage_caching async role=pool-operator --
  param self ref<pool> --

message enable_local_storage_caching async role=pool-operator --
  param self ref<pool> --

message test_archive_target -> string role=pool-operator --
  param self ref<pool> --
  param config map<string,string> --
  result --

message set_vswitch_controller async role=pool-operator deprecated --
  param address string --

message disable_redo_log async role=pool-operator --

message enable_redo_log async role=pool-operator --
  param sr ref<SR> --

message enable_tls_verification role=pool-admin --

message certificate_sync async role=pool-operator --

message crl_list -> set<string> async role=pool-operator --
  result --

message crl_uninstall async role=pool-operator --
  param name string --

message crl_install async role=pool-operator --
  param name string --
  param cert string --

message uninstall_ca_certificate async role=pool-operator+cert --
  param name string --

message install_ca_certificate async role=pool-operator+cert --
  param name string --
  param cert string --

message certificate_list -> set<string> async role=pool-operator deprecated --
  result --

message certificate_uninstall async role=pool-operator deprecated --
  param name string --

message certificate_install async role=pool-operator deprecated --
  param name string --
  param cert string --

message send_test_post -> string async role=pool-admin --
  param host string --
  param port int --
  param body string --
  result --

message retrieve_wlb_recommendations -> map<ref<VM>,set<string>> async role=read-only+cert --
  result --

message retrieve_wlb_configuration -> map<string,string> async role=read-only+cert --
  result --

message send_wlb_configuration async role=pool-operator --
  param config map<string,string> --

message deconfigure_wlb async role=pool-operator --

message initialize_wlb async role=pool-operator --
  param wlb_url string --
  param wlb_username string --
  param wlb_password string --
  param xenserver_username string --
  param xenserver_password string --

message detect_nonhomogeneous_external_auth role=pool-operator --
  param pool ref<pool> --

message disable_external_auth role=pool-admin --
  param pool ref<pool> --
  param config map<string,string> = {} --

message enable_external_auth role=pool-admin --
  param pool ref<pool> --
  param config map<string,string> --
  param service_name string --
  param auth_type string --

message create_new_blob -> ref<blob> async role=pool-operator --
  param pool ref<pool> --
  param name string --
  param mime_type string --
  param public bool = false --
  result --

message set_ha_host_failures_to_tolerate async role=pool-operator --
  param self ref<pool> --
  param value int --

message ha_compute_vm_failover_plan -> map<ref<VM>,map<string,string>> role=pool-operator --
  param failed_hosts set<ref<host>> --
  param failed_vms set<ref<VM>> --
  result --

message ha_compute_hypothetical_max_host_failures_to_tolerate -> int role=read-only+cert --
  param configuration map<ref<VM>,string> --
  result --

message ha_compute_max_host_failures_to_tolerate -> int role=pool-operator --
  result --

message ha_failover_plan_exists -> bool role=pool-operator --
  param n int --
  result --

message ha_prevent_restarts_for role=pool-operator --
  param seconds int --

message designate_new_master async role=pool-operator --
  param host ref<host> --

message sync_database async role=pool-operator --

message disable_ha async role=pool-operator+cert --

message enable_ha async role=pool-operator+cert --
  param heartbeat_srs set<ref<SR>> --
  param configuration map<string,string> --

message create_VLAN_from_PIF -> set<ref<PIF>> async role=pool-operator --
  param pif ref<PIF> --
  param network ref<network> --
  param VLAN int --
  result --
  errors VLAN_TAG_INVALID

message management_reconfigure async role=pool-operator --
  param network ref<network> --
  errors HA_IS_ENABLED PIF_NOT_PRESENT CANNOT_PLUG_BOND_SLAVE PIF_INCOMPATIBLE_PRIMARY_ADDRESS_TYPE PIF_HAS_NO_NETWORK_CONFIGURATION PIF_HAS_NO_V6_NETWORK_CONFIGURATION

message create_VLAN -> set<ref<PIF>> async role=pool-operator --
  param device string --
  param network ref<network> --
  param VLAN int --
  result --
  errors VLAN_TAG_INVALID

message recover_slaves -> set<ref<host>> async role=pool-operator --
  result --

message emergency_reset_master role=pool-operator --
  param master_address string --

message emergency_transition_to_master role=pool-operator --

message eject async role=pool-operator --
  param host ref<host> --

message join_force async role=pool-operator --
  param master_address string --
  param master_username string --
  param master_password string --

message join async role=pool-operator --
  param master_address string --
  param master_username string --
  param master_password string --
  errors JOINING_HOST_CANNOT_CONTAIN_SHARED_SRS
