error ACTIVATION_WHILE_NOT_FREE -- Activation keys are accepted only while the host runs the free edition.
error ADDRESS_VIOLATES_LOCKING_CONSTRAINT address -- The IP address is not permitted by the VIF's locking settings.
error APPLY_GUIDANCE_FAILED ref -- Post-update guidance could not be carried out on the host.
error APPLY_LIVEPATCH_FAILED livepatch -- Applying the given livepatch did not succeed.
error APPLY_UPDATES_FAILED ref -- Installing updates on the host did not succeed.
error APPLY_UPDATES_IN_PROGRESS -- Refused because an update installation is currently running.
error AUTH_ALREADY_ENABLED current_auth_type current_service_name -- This host already has an external authentication service configured.
error AUTH_DISABLE_FAILED message -- Turning off external authentication on the host did not succeed.
error AUTH_DISABLE_FAILED_PERMISSION_DENIED message -- External auth could not be disabled: the directory denied permission.
error AUTH_DISABLE_FAILED_WRONG_CREDENTIALS message -- External auth could not be disabled: the supplied credentials were rejected.
error AUTH_ENABLE_FAILED message -- Turning on external authentication on the host did not succeed.
error AUTH_ENABLE_FAILED_DOMAIN_LOOKUP_FAILED message -- External auth could not be enabled: the domain could not be looked up.
error AUTH_ENABLE_FAILED_INVALID_ACCOUNT message -- External auth could not be enabled: the account given is not valid.
error AUTH_ENABLE_FAILED_INVALID_OU message -- External auth could not be enabled: the organisational unit is not valid.
error AUTH_ENABLE_FAILED_PERMISSION_DENIED message -- External auth could not be enabled: the directory denied permission.
error AUTH_ENABLE_FAILED_UNAVAILABLE message -- External auth could not be enabled: the directory service is unreachable.
error AUTH_ENABLE_FAILED_WRONG_CREDENTIALS message -- External auth could not be enabled: the supplied credentials were rejected.
error AUTH_IS_DISABLED -- Subject names cannot be resolved while external authentication is off.
error AUTH_SERVICE_ERROR message -- The external directory returned an error when queried.
error AUTH_UNKNOWN_TYPE type -- The requested external authentication type is not recognised.
error BACKUP_SCRIPT_FAILED log -- Host backup aborted: its backup script exited with failure.
error BALLOONING_DISABLED -- Memory ballooning is switched off, so the memory change cannot proceed.
error BALLOONING_TIMEOUT_BEFORE_MIGRATION vm -- The VM's memory did not shrink in time before migrating it.
error BOOTLOADER_FAILED vm msg -- An error came back from the VM's bootloader.
error BRIDGE_NAME_EXISTS bridge -- A bridge with this name is already present.
error BRIDGE_NOT_AVAILABLE bridge -- A bridge that the VM needs could not be found on the host.
error CANNOT_ADD_TUNNEL_TO_BOND_SLAVE PIF -- Tunnels cannot be created on a PIF that is a bond member.
error CANNOT_ADD_TUNNEL_TO_SRIOV_LOGICAL PIF -- Tunnels cannot be created on an SR-IOV logical PIF.
error CANNOT_ADD_TUNNEL_TO_VLAN_ON_SRIOV_LOGICAL PIF -- Tunnels cannot be created on a VLAN PIF sitting on SR-IOV.
error CANNOT_ADD_VLAN_TO_BOND_SLAVE PIF -- VLANs cannot be created on a PIF that is a bond member.
error CANNOT_CHANGE_PIF_PROPERTIES PIF -- This PIF's properties are fixed; only unbonded physical or bond PIFs may change.
error CANNOT_CONTACT_HOST host -- The call could not be forwarded because the target host is unreachable.
error CANNOT_CREATE_STATE_FILE -- No HA statefile could be created, possibly for lack of a suitable SR.
error CANNOT_DESTROY_DISASTER_RECOVERY_TASK reason -- Tearing down the DR task did not complete cleanly.
error CANNOT_DESTROY_SYSTEM_NETWORK network -- System networks are permanent and cannot be destroyed.
error CANNOT_ENABLE_REDO_LOG reason -- The redo log could not be switched on.
error CANNOT_EVACUATE_HOST errors -- Not all VMs can be moved off this host, so evacuation is impossible.
error CANNOT_FETCH_PATCH uuid -- The host could not download the requested update from the pool coordinator.
error CANNOT_FIND_OEM_BACKUP_PARTITION -- No backup partition is available to receive the update stream.
error CANNOT_FIND_PATCH -- The update is no longer present on the pool; upload it again.
error CANNOT_FIND_STATE_PARTITION -- The host's state partition is missing, so the operation cannot run.
error CANNOT_FIND_UPDATE -- The update is no longer present on the pool; upload it again.
error CANNOT_FORGET_SRIOV_LOGICAL PIF -- An SR-IOV logical PIF cannot be forgotten.
error CANNOT_PLUG_BOND_SLAVE PIF -- A PIF that belongs to a bond cannot be plugged on its own.
error CANNOT_PLUG_VIF VIF -- The virtual network interface could not be plugged in.
error CANNOT_RESET_CONTROL_DOMAIN vm -- Resetting the power state is not allowed for a control domain.
error CANNOT_RESTART_DEVICE_MODEL ref -- Device models cannot be restarted for paused VMs on this host.
error CA_CERTIFICATE_EXPIRED -- The CA certificate is past its expiry date.
error CA_CERTIFICATE_INVALID -- The CA certificate could not be parsed as a valid certificate.
error CA_CERTIFICATE_NOT_VALID_YET -- The CA certificate's validity period has not begun.
error CERTIFICATE_ALREADY_EXISTS name -- Another certificate is already installed under that name.
error CERTIFICATE_CORRUPT name -- The named certificate cannot be read or is damaged.
error CERTIFICATE_DOES_NOT_EXIST name -- No certificate with that name is installed.
error CERTIFICATE_LIBRARY_CORRUPT -- The certificate store cannot be read or is damaged.
error CERTIFICATE_NAME_INVALID name -- The name given for the certificate is not acceptable.
error CERT_REFRESH_IN_PROGRESS -- Refused because a certificate refresh is already running.
error CHANGE_PASSWORD_REJECTED msg -- The new password was refused, for example for being too weak.
error CLIENT_ERROR -- The client sent a request that could not be handled.
error CLUSTERED_SR_DEGRADED sr -- A clustered SR is degraded, so rebooting a host now would be unsafe.
error CLUSTERING_DISABLED cluster_host -- Clustering is off on this cluster host, so the call cannot proceed.
error CLUSTERING_ENABLED cluster_host -- Clustering is on for this cluster host, so the call cannot proceed.
error CLUSTER_ALREADY_EXISTS -- The pool already has a cluster.
error CLUSTER_CREATE_IN_PROGRESS -- Refused because a cluster is currently being created.
error CLUSTER_DOES_NOT_HAVE_ONE_NODE number_of_nodes -- The cluster was expected to contain exactly one node but has more.
error CLUSTER_FORCE_DESTROY_FAILED cluster -- Forcibly destroying a cluster host failed while tearing down the cluster.
error CLUSTER_HAS_NO_CERTIFICATE -- The cluster has no certificate configured for secure communication.
error CLUSTER_HOST_IS_LAST cluster_host -- Removing the sole remaining cluster host is refused; remove the cluster itself.
error CLUSTER_HOST_NOT_JOINED cluster_host -- The cluster host is not a member of the cluster yet.
error CLUSTER_STACK_IN_USE cluster_stack -- Plugged PBDs still depend on this cluster stack.
error CONFIGURE_REPOSITORIES_IN_PROGRESS -- Refused because repositories are being configured by another call.
error COULD_NOT_FIND_NETWORK_INTERFACE_WITH_SPECIFIED_DEVICE_NAME_AND_MAC_ADDRESS device mac -- No NIC matches both the given device name and MAC address.
error COULD_NOT_IMPORT_DATABASE reason -- Importing a database from the metadata VDI failed.
error COULD_NOT_UPDATE_IGMP_SNOOPING_EVERYWHERE -- Some hosts or networks did not take the new IGMP snooping setting.
error CPU_FEATURE_MASKING_NOT_SUPPORTED details -- This CPU cannot hide (mask) features from guests.
error CREATEREPO_FAILED -- Building the local package repository metadata failed.
error CRL_ALREADY_EXISTS name -- A certificate revocation list with that name is already installed.
error CRL_CORRUPT name -- The named certificate revocation list cannot be read or is damaged.
error CRL_DOES_NOT_EXIST name -- No certificate revocation list with that name is installed.
error CRL_NAME_INVALID name -- The name given for the revocation list is not acceptable.
error DB_UNIQUENESS_CONSTRAINT_VIOLATION table field value -- The change would put a duplicate value in a unique database field.
error DEFAULT_SR_NOT_FOUND sr -- The pool's default SR setting does not refer to an existing SR.
error DESIGNATE_NEW_MASTER_IN_PROGRESS -- Refused because a new pool coordinator is being designated.
error DEVICE_ALREADY_ATTACHED device -- The device is plugged into a VM already.
error DEVICE_ALREADY_DETACHED device -- The device is not plugged in at the moment.
error DEVICE_ALREADY_EXISTS device -- The VM already has a device using that name or slot.
error DEVICE_ATTACH_TIMEOUT type ref -- Attaching the device to the VM took too long and was abandoned.
error DEVICE_DETACH_REJECTED type ref msg -- The guest refused to release the device.
error DEVICE_DETACH_TIMEOUT type ref -- Detaching the device from the VM took too long and was abandoned.
error DEVICE_NOT_ATTACHED VBD -- The VBD must be plugged into the VM for this operation.
error DISK_VBD_MUST_BE_READWRITE_FOR_HVM vbd -- HVM guests need every disk-type VBD to be writable.
error DOMAIN_BUILDER_ERROR function code message -- The domain builder reported an internal failure.
error DOMAIN_EXISTS vm domid -- A Xen domain for this VM is still present.
error DUPLICATE_MAC_SEED seed -- Another VM in the pool already uses this MAC seed.
error DUPLICATE_PIF_DEVICE_NAME device -- A PIF already uses the given device name.
error DUPLICATE_VM vm -- Restoring this VM would produce a second copy of an existing VM.
error EVENTS_LOST -- The event queue overflowed and some events were dropped.
error EVENT_FROM_TOKEN_PARSE_FAILURE token -- The token passed to event.from is malformed; use empty or a previous token.
error EVENT_SUBSCRIPTION_PARSE_FAILURE subscription -- An event subscription string was not understood.
error EXTENSION_PROTOCOL_FAILURE -- An extension call broke the expected request/response protocol.
error FAILED_TO_START_EMULATOR vm name msg -- An emulator the VM depends on could not be launched.
error FEATURE_REQUIRES_HVM details -- A feature enabled on this VM only works when it boots in HVM mode.
error FEATURE_RESTRICTED -- This feature is not available under current restrictions or licensing.
error FIELD_TYPE_ERROR field -- The supplied value has the wrong type for the field.
error GET_HOST_UPDATES_FAILED ref -- Listing the updates available to a host failed.
error GET_UPDATES_FAILED -- Listing the updates available to the pool failed.
error GET_UPDATES_IN_PROGRESS -- Refused because available updates are currently being fetched.
error GPU_GROUP_CONTAINS_NO_PGPUS gpu_group -- The GPU group has no physical GPUs in it.
error GPU_GROUP_CONTAINS_PGPU pgpus -- The GPU group still holds physical GPUs, so it cannot be removed.
error GPU_GROUP_CONTAINS_VGPU vgpus -- The GPU group still holds virtual GPUs, so it cannot be removed.
error HANDLE_INVALID class handle -- The object reference is unknown, of the wrong class, or already deleted.
error HA_ABORT_NEW_MASTER reason -- The host cannot accept a new pool coordinator right now.
error HA_CANNOT_CHANGE_BOND_STATUS_OF_MGMT_IFACE -- Bonds on the management interface cannot change while HA is enabled.
error HA_CONSTRAINT_VIOLATION_NETWORK_NOT_SHARED network -- HA needs this network to be virtual or attached on every host.
error HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED SR -- HA needs this SR shared and plugged on every host.
error HA_DISABLE_IN_PROGRESS -- Refused because HA is currently being turned off.
error HA_ENABLE_IN_PROGRESS -- Refused because HA is currently being turned on.
error HA_FAILED_TO_FORM_LIVESET -- HA could not start because hosts could not agree on a liveset.
error HA_HEARTBEAT_DAEMON_STARTUP_FAILED -- The HA daemon failed to start, so the host cannot join the liveset.
error HA_HOST_CANNOT_ACCESS_STATEFILE -- The host cannot reach the HA heartbeat disk, so it cannot join the liveset.
error HA_HOST_CANNOT_SEE_PEERS host all subset -- The host's HA software cannot see some other hosts in the pool.
error HA_HOST_IS_ARMED host -- The host's HA must be disarmed before this can be done.
error HA_IS_ENABLED -- Not allowed while HA is enabled on the pool.
error HA_LOST_STATEFILE -- The host can no longer reach the HA statefile.
error HA_NOT_ENABLED -- Needs HA to be switched on for the pool.
error HA_NOT_INSTALLED host -- HA software is missing on the host.
error HA_NO_PLAN -- No VM placement plan exists because no other hosts are available.
error HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN -- Doing this would leave HA unable to restart protected VMs after a failure.
error HA_POOL_IS_ENABLED_BUT_HOST_IS_DISABLED -- The host has HA off but the pool it is joining has HA on.
error HA_SHOULD_BE_FENCED host -- The host should have fenced itself and may not rejoin the pool.
error HA_TOO_FEW_HOSTS -- HA needs at least two hosts in the pool.
error HOSTS_FAILED_TO_DISABLE_CACHING -- Some hosts could not switch off local caching.
error HOSTS_FAILED_TO_ENABLE_CACHING -- Some hosts could not switch on local caching.
error HOSTS_NOT_COMPATIBLE -- The host is not compatible with the pool it is trying to join.
error HOSTS_NOT_HOMOGENEOUS reason -- The host differs from the pool's hosts in a way that blocks joining.
error HOST_BROKEN -- An automatic failover was interrupted on this host and must be retried.
error HOST_CANNOT_ATTACH_NETWORK host network -- The host cannot bring up the network without disturbing active ones.
error HOST_CANNOT_DESTROY_SELF host -- The pool coordinator cannot remove itself from the pool.
error HOST_CANNOT_READ_METRICS -- Reading this host's metrics failed.
error HOST_CANNOT_SEE_SR -- The host has no access to the required SR.
error HOST_CD_DRIVE_EMPTY -- The host's CD drive has no readable disc in it.
error HOST_DISABLED host -- The host has been disabled.
error HOST_DISABLED_UNTIL_REBOOT host -- The host stays disabled until it is rebooted.
error HOST_EVACUATE_IN_PROGRESS host -- VMs are currently being moved off this host.
error HOST_EVACUATION_IS_REQUIRED host -- VMs must be moved off the host before updates can be applied.
error HOST_HAS_NO_MANAGEMENT_IP -- The management interface got no IP address, so the coordinator is unreachable.
error HOST_HAS_RESIDENT_VMS host -- The host still runs user VMs and so cannot be forgotten.
error HOST_IN_EMERGENCY_MODE -- Not possible while the host is in emergency mode.
error HOST_IN_USE host type ref -- Another object still references the host, preventing the operation.
error HOST_IS_LIVE host -- Not possible because the host is still running.
error HOST_IS_SLAVE master_address -- This host is a pool member; send API calls to the coordinator instead.
error HOST_ITS_OWN_SLAVE -- The host is set as its own supporter; use an emergency reset to recover.
error HOST_MASTER_CANNOT_TALK_BACK ip -- The coordinator cannot reach this host on its management address.
error HOST_NAME_INVALID reason -- The supplied host name is not acceptable.
error HOST_NOT_DISABLED -- The host must be disabled before retrying this operation.
error HOST_NOT_ENOUGH_FREE_MEMORY needed available -- The host lacks the free memory this operation needs.
error HOST_NOT_ENOUGH_PCPUS vcpus pcpus -- The host has fewer physical CPUs than the VM has vCPUs.
error HOST_NOT_LIVE -- Not possible because the host is not running.
error HOST_OFFLINE host -- A host involved in the operation is unreachable.
error HOST_PENDING_MANDATORY_GUIDANCE_NOT_EMPTY host -- The host still has mandatory update guidance pending (e.g. a reboot).
error HOST_POWER_ON_MODE_DISABLED -- The host has no remote power-on method configured.
error HOST_STILL_BOOTING -- The toolstack has not finished starting up; try again shortly.
error HOST_UNKNOWN_TO_MASTER host -- The coordinator does not recognise this host; check its database and pool secret.
error HOST_XAPI_VERSION_HIGHER_THAN_COORDINATOR host_xapi_version -- The host runs a newer xapi than the pool coordinator does.
error ILLEGAL_IN_FIPS_MODE -- This action is forbidden while the host runs in FIPS mode.
error ILLEGAL_VBD_DEVICE vbd device -- Unrecognised VBD device name; a non-negative number is expected.
error IMPORT_ERROR msg -- The import failed; the message explains why.
error IMPORT_ERROR_ATTACHED_DISKS_NOT_FOUND -- Disks the imported VM refers to could not be located.
error IMPORT_ERROR_CANNOT_HANDLE_CHUNKED -- VM imports sent with chunked transfer encoding are not supported.
error IMPORT_ERROR_FAILED_TO_FIND_OBJECT id -- An object the import depends on is missing.
error IMPORT_ERROR_PREMATURE_EOF -- The import stream ended before all data arrived.
error IMPORT_ERROR_SOME_CHECKSUMS_FAILED -- Checksum verification failed for some imported data, so the VM may be damaged.
error IMPORT_ERROR_UNEXPECTED_FILE filename_expected filename_found -- The XVA archive holds a file other than the one expected.
error IMPORT_INCOMPATIBLE_VERSION -- The export came from an incompatible product version.
error INCOMPATIBLE_CLUSTER_STACK_ACTIVE cluster_stack -- This clashes with the HA cluster stack currently in use.
error INCOMPATIBLE_PIF_PROPERTIES -- Bonding refused: the chosen PIFs have mismatched settings.
error INCOMPATIBLE_STATEFILE_SR SR_type -- This SR cannot host the statefile for the chosen HA cluster stack.
error INTERFACE_HAS_NO_IP interface -- Unusable interface: no IP address is assigned to it.
error INTERNAL_ERROR message -- An unexpected server-side failure occurred; the message may help debugging.
error INVALID_BASE_URL url -- The repository's base URL is malformed or not allowed.
error INVALID_CIDR_ADDRESS_SPECIFIED parameter -- A parameter holds a malformed CIDR address (address/prefix).
error INVALID_CLUSTER_STACK cluster_stack -- Unsupported cluster stack requested.
error INVALID_DEVICE device -- Bad device name.
error INVALID_EDITION edition -- The requested license edition is not recognised.
error INVALID_FEATURE_STRING details -- Malformed CPU feature string.
error INVALID_GPGKEY_PATH gpgkey_path -- The repository's GPG key file name is not valid.
error INVALID_IP_ADDRESS_SPECIFIED parameter -- A parameter holds a malformed IP address.
error INVALID_PATCH -- Uploaded patch is unusable or corrupt.
error INVALID_PATCH_WITH_LOG log -- Uploaded patch is unusable or corrupt; consult the log.
error INVALID_REPOMD_XML -- The repository's repomd.xml could not be understood.
error INVALID_REPOSITORY_DOMAIN_ALLOWLIST domains -- Some entries in the repository domain allowlist are bad.
error INVALID_REPOSITORY_PROXY_CREDENTIAL -- Bad user name or password for the repository proxy.
error INVALID_REPOSITORY_PROXY_URL url -- Malformed address for the repository proxy.
error INVALID_UPDATE info -- Uploaded update package is unusable or corrupt.
error INVALID_UPDATEINFO_XML -- The repository's updateinfo.xml could not be understood.
error INVALID_UPDATE_SYNC_DAY day -- The weekday chosen for weekly update sync is out of range.
error INVALID_VALUE field value -- The supplied value is not acceptable for the field.
error IS_TUNNEL_ACCESS_PIF PIF -- VLANs or tunnels must be built on the transport PIF, not a tunnel access PIF.
error JOINING_HOST_CANNOT_BE_MASTER_OF_OTHER_HOSTS -- A host that coordinates other hosts cannot join another pool.
error JOINING_HOST_CANNOT_CONTAIN_SHARED_SRS -- A host with shared SRs cannot join a pool.
error JOINING_HOST_CANNOT_HAVE_RUNNING_OR_SUSPENDED_VMS -- Pool join refused: the host still has VMs running or suspended.
error JOINING_HOST_CANNOT_HAVE_RUNNING_VMS -- Pool join refused: the host still has VMs running.
error JOINING_HOST_CANNOT_HAVE_VMS_WITH_CURRENT_OPERATIONS -- A host joining a pool must have no VM operations under way.
error JOINING_HOST_CONNECTION_FAILED -- The joining host could not connect to the pool coordinator.
error JOINING_HOST_SERVICE_FAILED -- A service on the joining host failed during the pool join.
error LICENCE_RESTRICTION feature -- The current license does not include the needed feature.
error LICENSE_CANNOT_DOWNGRADE_WHILE_IN_POOL -- Licenses cannot be downgraded while the host is in a pool.
error LICENSE_CHECKOUT_ERROR reason -- A license for the requested edition could not be obtained.
error LICENSE_DOES_NOT_SUPPORT_POOLING -- The host's license does not permit joining a pool.
error LICENSE_DOES_NOT_SUPPORT_XHA -- The host's license does not permit enabling HA.
error LICENSE_EXPIRED -- The license is no longer valid because it has expired.
error LICENSE_FILE_DEPRECATED -- This license file format is obsolete for the current server version.
error LICENSE_HOST_POOL_MISMATCH -- The host's license edition does not match the pool's.
error LICENSE_PROCESSING_ERROR -- The license could not be processed.
error LOCATION_NOT_UNIQUE SR location -- The SR already has a VDI at that location.
error MAC_DOES_NOT_EXIST MAC -- No interface on this host has that MAC address.
error MAC_INVALID MAC -- The MAC address is malformed.
error MAC_STILL_EXISTS MAC -- An interface on this host still uses that MAC address.
error MAP_DUPLICATE_KEY type param_name uuid key -- The map already contains the key being added.
error MEMORY_CONSTRAINT_VIOLATION constraint -- The VM's memory settings break a required constraint.
error MEMORY_CONSTRAINT_VIOLATION_MAXPIN reason -- All four memory limits must be equal for this VM.
error MEMORY_CONSTRAINT_VIOLATION_ORDER -- Memory limits must satisfy static min, dynamic min, dynamic max, static max in order.
error MESSAGE_DEPRECATED -- This API call is deprecated.
error MESSAGE_METHOD_UNKNOWN method -- No API method exists with the given name.
error MESSAGE_PARAMETER_COUNT_MISMATCH method expected received -- The call supplied the wrong number of arguments.
error MESSAGE_REMOVED -- This API call has been removed.
error MIRROR_FAILED vdi -- Mirroring the VDI could not be done.
error MISSING_CONNECTION_DETAILS -- The license server address or port was not supplied.
error MULTIPLE_UPDATE_REPOSITORIES_ENABLED -- Several update repositories are enabled simultaneously.
error NETWORK_ALREADY_CONNECTED network connected_PIF -- The network is already bound to another PIF, so the PIF cannot be made.
error NETWORK_CONTAINS_PIF pifs -- Deletion refused: PIFs are still attached to the network.
error NETWORK_CONTAINS_VIF vifs -- Deletion refused: VIFs are still attached to the network.
error NETWORK_HAS_INCOMPATIBLE_SRIOV_PIFS PIF network -- That PIF cannot be used with the chosen SR-IOV network.
error NETWORK_HAS_INCOMPATIBLE_VLAN_ON_SRIOV_PIFS PIF network -- The PIF's VLAN does not fit the chosen SR-IOV VLAN network.
error NETWORK_INCOMPATIBLE_PURPOSES new_purpose conflicting_purpose -- The new network purpose conflicts with a purpose already in use.
error NETWORK_INCOMPATIBLE_WITH_BOND network -- This network cannot be used for a bond.
error NETWORK_INCOMPATIBLE_WITH_SRIOV network -- This network cannot be used for SR-IOV.
error NETWORK_INCOMPATIBLE_WITH_TUNNEL network -- This network cannot be used for a tunnel.
error NETWORK_INCOMPATIBLE_WITH_VLAN_ON_BRIDGE network -- This network cannot carry a VLAN on a bridge.
error NETWORK_INCOMPATIBLE_WITH_VLAN_ON_SRIOV network -- This network cannot carry a VLAN on SR-IOV.
error NETWORK_SRIOV_ALREADY_ENABLED PIF -- SR-IOV is already turned on for the selected PIF.
error NETWORK_SRIOV_DISABLE_FAILED PIF msg -- Turning off SR-IOV on the PIF did not succeed.
error NETWORK_SRIOV_ENABLE_FAILED PIF msg -- Turning on SR-IOV on the PIF did not succeed.
error NETWORK_SRIOV_INSUFFICIENT_CAPACITY network -- No virtual functions are left to reserve on the SR-IOV network.
error NETWORK_UNMANAGED network -- The network is outside xapi's management.
error NOT_ALLOWED_ON_OEM_EDITION command -- OEM edition hosts do not permit this command.
error NOT_IMPLEMENTED function -- No implementation exists for the requested function.
error NOT_IN_EMERGENCY_MODE -- Needs the pool to be in emergency mode first.
error NOT_SUPPORTED_DURING_UPGRADE -- Not available while a rolling pool upgrade is under way.
error NOT_SYSTEM_DOMAIN vm -- The VM is not a registered system domain, which this requires.
error NO_CLUSTER_HOSTS_REACHABLE cluster -- While joining, no other cluster host could be reached.
error NO_COMPATIBLE_CLUSTER_HOST host -- The host or pool has no clustering enabled.
error NO_HOSTS_AVAILABLE -- No host is able to carry out the operation.
error NO_LOCAL_STORAGE -- The host has no local storage to use.
error NO_MORE_REDO_LOGS_ALLOWED -- The maximum number of active redo logs has been reached.
error NO_REPOSITORIES_CONFIGURED -- The pool has no update repositories set up.
error NO_REPOSITORY_ENABLED -- None of the update repositories is enabled.
error NVIDIA_SRIOV_MISCONFIGURED host device_name -- The NVIDIA GPU has not been set up for SR-IOV correctly.
error NVIDIA_TOOLS_ERROR host -- The NVIDIA tools reported an error; make sure they are up to date.
error OBJECT_NOLONGER_EXISTS -- The referenced object has been removed.
error ONLY_ALLOWED_ON_OEM_EDITION command -- This command is restricted to OEM edition hosts.
error OPENVSWITCH_NOT_ACTIVE -- Every pool host must use the Open vSwitch network backend for this.
error OPERATION_BLOCKED ref code -- The object's blocked_operations setting forbids this operation.
error OPERATION_NOT_ALLOWED reason -- The operation is not permitted; the reason explains why.
error OPERATION_PARTIALLY_FAILED operation -- Some VMs in the appliance failed during the operation.
error OTHER_OPERATION_IN_PROGRESS class object operation task -- The object is busy with another operation.
error OUT_OF_SPACE location -- Insufficient disk space for the update upload.
error PATCH_ALREADY_APPLIED patch -- The patch is installed already.
error PATCH_ALREADY_EXISTS uuid -- A patch with this UUID was uploaded before.
error PATCH_APPLY_FAILED output -- Installing the patch failed; check the output.
error PATCH_APPLY_FAILED_BACKUP_FILES_EXIST output -- The patch left backup files behind; delete them before retrying.
error PATCH_IS_APPLIED -- An installed patch cannot be destroyed.
error PATCH_PRECHECK_FAILED_ISO_MOUNTED patch -- The tools ISO is still inserted in some running VMs; eject it first.
error PATCH_PRECHECK_FAILED_OUT_OF_SPACE patch found_space required_required -- Patch precheck found too little free disk space on the host.
error PATCH_PRECHECK_FAILED_PREREQUISITE_MISSING patch prerequisite_patch_uuid_list -- Patch precheck found required earlier patches missing.
error PATCH_PRECHECK_FAILED_UNKNOWN_ERROR patch info -- Patch precheck failed for an unexpected reason; see the info.
error PATCH_PRECHECK_FAILED_VM_RUNNING patch -- Patch precheck found VMs still running; suspend or stop them first.
error PATCH_PRECHECK_FAILED_WRONG_SERVER_BUILD patch found_build required_build -- Patch precheck found the host build is not the one required.
error PATCH_PRECHECK_FAILED_WRONG_SERVER_VERSION patch found_version required_version -- Patch precheck found the host version is not the one required.
error PBD_EXISTS sr host pbd -- The SR is already connected to that host by a PBD.
error PERMISSION_DENIED message -- The caller is not permitted to do this.
error PGPU_INSUFFICIENT_CAPACITY_FOR_VGPU pgpu vgpu_type -- The physical GPU has no room left for this vGPU type.
error PGPU_IN_USE_BY_VM VMs -- Running VMs are currently using this physical GPU.
error PGPU_NOT_COMPATIBLE_WITH_GPU_GROUP type group_types -- The physical GPU's type does not match the target GPU group.
error PIF_ALLOWS_UNPLUG PIF -- Not possible because the PIF is marked as unpluggable.
error PIF_ALREADY_BONDED PIF -- The PIF is part of a bond already.
error PIF_BOND_MORE_THAN_ONE_IP -- Two or more bond members have IP settings; only one may.
error PIF_BOND_NEEDS_MORE_MEMBERS -- A bond requires two or more member interfaces.
error PIF_CANNOT_BOND_CROSS_HOST -- All bond members must be on the same host.
error PIF_CONFIGURATION_ERROR PIF msg -- Configuring the interface failed for an unknown reason.
error PIF_DEVICE_NOT_FOUND -- The network device could not be found.
error PIF_DOES_NOT_ALLOW_UNPLUG PIF -- Not possible because the PIF is not allowed to be unplugged.
error PIF_HAS_FCOE_SR_IN_USE PIF SR -- An FCoE SR is active on the PIF.
error PIF_HAS_NO_NETWORK_CONFIGURATION PIF -- No IPv4 addressing is set on the PIF (mode none).
error PIF_HAS_NO_V6_NETWORK_CONFIGURATION PIF -- No IPv6 addressing is set on the PIF (mode none).
error PIF_INCOMPATIBLE_PRIMARY_ADDRESS_TYPE PIF -- The PIFs use mismatched primary address types.
error PIF_IS_MANAGEMENT_INTERFACE PIF -- Not possible because the PIF is the management interface.
error PIF_IS_NOT_PHYSICAL PIF -- This operation only works on physical PIFs.
error PIF_IS_NOT_SRIOV_CAPABLE PIF -- The PIF does not support SR-IOV.
error PIF_IS_PHYSICAL PIF -- Physical PIFs reflect host hardware and cannot be destroyed.
error PIF_IS_SRIOV_LOGICAL PIF -- Bonds must be built on the physical PIF, not an SR-IOV logical one.
error PIF_IS_VLAN PIF -- VLANs cannot be stacked; use the underlying physical PIF or bond.
error PIF_NOT_ATTACHED_TO_HOST pif host -- The PIF given for the cluster host is not on that host.
error PIF_NOT_PRESENT host network -- No PIF on this host connects to the given network.
error PIF_SRIOV_STILL_EXISTS PIF -- The PIF still has a network SR-IOV associated with it.
error PIF_TUNNEL_STILL_EXISTS PIF -- A tunnel still exists on the interface.
error PIF_UNMANAGED PIF -- Not possible because xapi does not manage this PIF.
error PIF_VLAN_EXISTS PIF -- A VLAN PIF of this kind is already present.
error PIF_VLAN_STILL_EXISTS PIF -- A VLAN still exists on the interface.
error POOL_AUTH_ALREADY_ENABLED host -- Some host in the pool already has external authentication turned on.
error POOL_AUTH_DISABLE_FAILED host message -- External authentication could not be turned off on at least one host.
error POOL_AUTH_DISABLE_FAILED_INVALID_ACCOUNT host message -- Auth was disabled, but some AD machine accounts stayed active due to bad accounts.
error POOL_AUTH_DISABLE_FAILED_PERMISSION_DENIED host message -- Auth was disabled, but the AD machine account stayed active for lack of permission.
error POOL_AUTH_DISABLE_FAILED_WRONG_CREDENTIALS host message -- Auth was disabled, but some AD machine accounts stayed active due to bad credentials.
error POOL_AUTH_ENABLE_FAILED host message -- External authentication could not be turned on across the pool.
error POOL_AUTH_ENABLE_FAILED_DOMAIN_LOOKUP_FAILED host message -- Pool-wide external auth failed because the domain could not be looked up.
error POOL_AUTH_ENABLE_FAILED_DUPLICATE_HOSTNAME host message -- Pool-wide external auth failed because two hosts share a hostname.
error POOL_AUTH_ENABLE_FAILED_INVALID_ACCOUNT host message -- Pool-wide external auth failed because the account is not valid.
error POOL_AUTH_ENABLE_FAILED_INVALID_OU host message -- Pool-wide external auth failed because the organisational unit is not valid.
error POOL_AUTH_ENABLE_FAILED_PERMISSION_DENIED host message -- Pool-wide external auth failed because the directory denied permission.
error POOL_AUTH_ENABLE_FAILED_UNAVAILABLE host message -- Pool-wide external auth failed because the directory is unreachable.
error POOL_AUTH_ENABLE_FAILED_WRONG_CREDENTIALS host message -- Pool-wide external auth failed because the credentials were rejected.
error POOL_JOINING_EXTERNAL_AUTH_MISMATCH -- The joining host's external auth setup differs from the pool's.
error POOL_JOINING_HOST_CA_CERTIFICATES_CONFLICT -- The joining host has a same-named but different CA certificate; remove it first.
error POOL_JOINING_HOST_HAS_BONDS -- A host may not join a pool while it has bonds.
error POOL_JOINING_HOST_HAS_NETWORK_SRIOVS -- A host may not join a pool while it has network SR-IOVs.
error POOL_JOINING_HOST_HAS_NON_MANAGEMENT_VLANS -- A host may not join a pool while it has VLANs other than management.
error POOL_JOINING_HOST_HAS_TUNNELS -- A host may not join a pool while it has tunnels.
error POOL_JOINING_HOST_MANAGEMENT_VLAN_DOES_NOT_MATCH local remote -- The joining host's management VLAN differs from the pool's.
error POOL_JOINING_HOST_MUST_HAVE_PHYSICAL_MANAGEMENT_NIC -- The joining host's management interface must be a plain physical NIC.
error POOL_JOINING_HOST_MUST_HAVE_SAME_API_VERSION host_api_version master_api_version -- The joining host's API version differs from the coordinator's.
error POOL_JOINING_HOST_MUST_HAVE_SAME_DB_SCHEMA host_db_schema master_db_schema -- The joining host's database schema differs from the coordinator's.
error POOL_JOINING_HOST_MUST_HAVE_SAME_PRODUCT_VERSION -- The joining host's product version differs from the coordinator's.
error POOL_JOINING_HOST_MUST_ONLY_HAVE_PHYSICAL_PIFS -- The joining host may only have physical PIFs, with no bonds, VLANs or tunnels.
error POOL_JOINING_HOST_TLS_VERIFICATION_MISMATCH -- TLS verification is enabled on only one of the joining host and the pool.
error POOL_SECRET_ROTATION_PENDING -- Refused because a pool secret rotation has not finished.
error PROVISION_FAILED_OUT_OF_SPACE -- Provisioning ran out of storage space.
error PROVISION_ONLY_ALLOWED_ON_TEMPLATE -- Provisioning works on templates only, not ordinary VMs.
error PUSB_VDI_CONFLICT PUSB VDI -- The VDI backing this physical USB device already has VBDs.
error PVS_CACHE_STORAGE_ALREADY_PRESENT site host -- Cache storage for that host is already defined on the PVS site.
error PVS_CACHE_STORAGE_IS_IN_USE PVS_cache_storage -- The site is using this PVS cache storage, so it cannot be removed.
error PVS_PROXY_ALREADY_PRESENT proxies -- The VIF already has a PVS proxy attached.
error PVS_SERVER_ADDRESS_IN_USE address -- Another PVS server object already uses that address.
error PVS_SITE_CONTAINS_RUNNING_PROXIES proxies -- The PVS site still has proxies running.
error PVS_SITE_CONTAINS_SERVERS servers -- Forget refused: PVS servers still belong to the site.
error RBAC_PERMISSION_DENIED permission message -- The session's role does not grant the required permission.
error REDO_LOG_IS_ENABLED -- Not possible while a redo log is enabled on the pool.
error REPOSITORY_ALREADY_EXISTS ref -- An identical repository is already registered.
error REPOSITORY_CLEANUP_FAILED -- The coordinator's local repository could not be cleaned up.
error REPOSITORY_IS_IN_USE -- Something still depends on this repository.
error REPOSYNC_FAILED -- Mirroring packages from the remote YUM repository failed.
error REQUIRED_PIF_IS_UNPLUGGED PIF -- A PIF this needs is currently unplugged.
error RESTORE_INCOMPATIBLE_VERSION -- The backup came from an incompatible product version.
error RESTORE_SCRIPT_FAILED log -- The restore script failed; the backup file may be damaged.
error RESTORE_TARGET_MGMT_IF_NOT_IN_BACKUP -- The host's management interface does not appear in the backup.
error RESTORE_TARGET_MISSING_DEVICE device -- A network interface named in the backup is absent on this host.
error REVERT_ONLY_ALLOWED_ON_SNAPSHOT -- Only snapshots can be reverted to.
error ROLE_ALREADY_EXISTS -- A role with this name is already defined.
error ROLE_NOT_FOUND -- No such role exists.
error SERVER_CERTIFICATE_CHAIN_INVALID -- The certificate chain could not be parsed as PEM X509 data.
error SERVER_CERTIFICATE_EXPIRED now not_after -- The supplied server certificate is past its expiry date.
error SERVER_CERTIFICATE_INVALID -- The server certificate could not be parsed as PEM X509 data.
error SERVER_CERTIFICATE_KEY_ALGORITHM_NOT_SUPPORTED algorithm_oid -- The private key uses an algorithm that is not supported.
error SERVER_CERTIFICATE_KEY_INVALID -- The private key could not be parsed as PEM PKCS#8 data.
error SERVER_CERTIFICATE_KEY_MISMATCH -- Certificate and private key do not belong together.
error SERVER_CERTIFICATE_KEY_RSA_LENGTH_NOT_SUPPORTED length -- RSA keys must be 2048 to 4096 bits long.
error SERVER_CERTIFICATE_KEY_RSA_MULTI_NOT_SUPPORTED -- Multi-prime RSA keys are not accepted; use exactly two primes.
error SERVER_CERTIFICATE_NOT_VALID_YET now not_before -- The supplied server certificate's validity has not started.
error SERVER_CERTIFICATE_SIGNATURE_NOT_SUPPORTED -- The certificate must be signed with SHA-256.
error SESSION_AUTHENTICATION_FAILED uname message -- Login failed because the credentials were wrong; no session was created.
error SESSION_AUTHORIZATION_FAILED username msg -- The credentials are valid but the user is not authorised to log in.
error SESSION_INVALID handle -- The session reference is unknown or expired; log in again.
error SESSION_NOT_REGISTERED handle -- The session must call event.register before event.next.
error SLAVE_REQUIRES_MANAGEMENT_INTERFACE -- A pool member needs its management interface; disabling it would force emergency mode.
error SM_PLUGIN_COMMUNICATION_FAILURE sm -- The storage manager plugin gave no answer.
error SR_ATTACHED -- The SR is currently attached.
error SR_ATTACH_FAILED sr -- The SR could not be attached.
error SR_BACKEND_FAILURE status stdout stderr -- The storage backend reported a failure.
error SR_DEVICE_IN_USE -- The host is using a device underneath the SR.
error SR_DOES_NOT_SUPPORT_MIGRATION sr -- VDIs cannot be migrated to or from this SR.
error SR_FULL requested maximum -- The SR lacks room for the requested size.
error SR_HAS_MULTIPLE_PBDS PBD -- The SR cannot be made unshared while several hosts are connected to it.
error SR_HAS_NO_PBDS sr -- No PBDs connect the SR to any host.
error SR_HAS_PBD sr -- Destroy or forget refused: a PBD still connects the SR to a host.
error SR_INDESTRUCTIBLE sr -- The SR is flagged indestructible and cannot be destroyed.
error SR_IS_CACHE_SR host -- A host uses this SR for local caching.
error SR_NOT_ATTACHED sr -- Needs the SR to be plugged in, but it is not.
error SR_NOT_EMPTY -- The SR still contains VDIs.
error SR_NOT_SHARABLE sr host -- Another host already uses this unshared SR, so the PBD cannot be plugged.
error SR_NOT_SHARED -- The SR must be shared for this.
error SR_OPERATION_NOT_SUPPORTED sr -- The SR's backend cannot perform this operation.
error SR_REQUIRES_UPGRADE SR -- The SR must be upgraded before this can be done.
error SR_SOURCE_SPACE_INSUFFICIENT sr -- The source SR has too little temporary space for the operation.
error SR_UNKNOWN_DRIVER driver -- The SR's driver type is not recognised.
error SR_UUID_EXISTS uuid -- Another SR already uses this UUID.
error SR_VDI_LOCKING_FAILED -- Required VDIs are already locked by the storage layer.
error SSL_VERIFY_ERROR reason -- Verification of the remote side's TLS certificate failed.
error SUBJECT_ALREADY_EXISTS -- That subject has been added before.
error SUBJECT_CANNOT_BE_RESOLVED -- The external directory does not know this subject.
error SUSPEND_IMAGE_NOT_ACCESSIBLE vdi -- The checkpoint's suspend image cannot be reached from the VM's host.
error SUSPEND_VDI_REPLACEMENT_IS_NOT_IDENTICAL -- The replacement suspend VDI does not match the original.
error SYNC_UPDATES_IN_PROGRESS -- Refused because updates are being synchronised.
error SYSTEM_STATUS_MUST_USE_TAR_ON_OEM -- OEM hosts only provide system status as tar output.
error SYSTEM_STATUS_RETRIEVAL_FAILED reason -- Collecting system status from the host failed.
error TASK_CANCELLED task -- The task was cancelled before it finished.
error TELEMETRY_NEXT_COLLECTION_TOO_LATE timestamp -- The next telemetry collection time is too far ahead.
error TLS_CONNECTION_FAILED address port -- A TLS connection to the other host at that address and port failed.
error TLS_VERIFICATION_ENABLE_IN_PROGRESS -- Refused because TLS verification is being enabled.
error TOO_BUSY -- The server is overloaded and rejected the request.
error TOO_MANY_PENDING_TASKS -- The server has too many queued tasks to accept this request.
error TOO_MANY_STORAGE_MIGRATES number -- The limit on simultaneous storage migrations has been hit.
error TOO_MANY_VUSBS number -- The VM already has the maximum number of virtual USB devices.
error TRANSPORT_PIF_NOT_CONFIGURED PIF -- No IP settings exist on the PIF carrying the tunnel.
error UNIMPLEMENTED_IN_SM_BACKEND message -- The storage backend does not implement this function.
error UNKNOWN_BOOTLOADER vm bootloader -- The VM asks for a bootloader that is not recognised.
error UPDATEINFO_HASH_MISMATCH -- The updateinfo has changed; newer updates may now be available.
error UPDATE_ALREADY_APPLIED update -- The update is installed already.
error UPDATE_ALREADY_APPLIED_IN_POOL update -- Every host in the pool already has this update.
error UPDATE_ALREADY_EXISTS uuid -- This update has been uploaded before.
error UPDATE_APPLY_FAILED output -- Installing the update failed; check the output.
error UPDATE_IS_APPLIED -- An installed update cannot be destroyed.
error UPDATE_POOL_APPLY_FAILED hosts -- The update could not be installed on the listed hosts.
error UPDATE_PRECHECK_FAILED_CONFLICT_PRESENT update conflict_update -- Update precheck found conflicting updates installed.
error UPDATE_PRECHECK_FAILED_GPGKEY_NOT_IMPORTED update -- Update precheck found the GPG key for package checks missing on the host.
error UPDATE_PRECHECK_FAILED_OUT_OF_SPACE update available_space required_space -- Update precheck found too little free disk space on the host.
error UPDATE_PRECHECK_FAILED_PREREQUISITE_MISSING update prerequisite_update -- Update precheck found required earlier updates missing.
error UPDATE_PRECHECK_FAILED_UNKNOWN_ERROR update info -- Update precheck failed for an unexpected reason.
error UPDATE_PRECHECK_FAILED_WRONG_SERVER_VERSION update installed_version required_version -- Update precheck found the host version is not the one required.
error USB_ALREADY_ATTACHED PUSB VM -- A VM is already using this USB device.
error USB_GROUP_CONFLICT USB_group -- A USB group may hold only one virtual USB device.
error USB_GROUP_CONTAINS_NO_PUSBS usb_group -- The USB group has no physical USB devices in it.
error USB_GROUP_CONTAINS_PUSB pusbs -- The USB group still holds physical USB devices, so it cannot be removed.
error USB_GROUP_CONTAINS_VUSB vusbs -- The USB group still holds virtual USB devices, so it cannot be removed.
error USER_IS_NOT_LOCAL_SUPERUSER msg -- Only the local root account may do this.
error UUID_INVALID type uuid -- No object of that class has the given UUID.
error V6D_FAILURE -- The licensing daemon (v6d) reported a problem.
error VALUE_NOT_SUPPORTED field value reason -- The value is not supported for this field by this implementation.
error VBD_CDS_MUST_BE_READONLY -- CD drives can only be attached read-only.
error VBD_IS_EMPTY vbd -- The drive has no media inserted.
error VBD_MISSING -- The expected VBD could not be found.
error VBD_NOT_EMPTY vbd -- The drive already has media inserted.
error VBD_NOT_REMOVABLE_MEDIA vbd -- Only removable-media drives can have their media ejected.
error VBD_NOT_UNPLUGGABLE vbd -- The drive is not flagged as unpluggable, so hot-unplug is refused.
error VBD_TRAY_LOCKED vbd -- The guest has locked the drive tray, preventing ejection.
error VCPU_MAX_NOT_CORES_PER_SOCKET_MULTIPLE vcpu_max cores_per_socket -- The maximum vCPU count must divide evenly by cores per socket.
error VDI_CBT_ENABLED vdi -- Not allowed because changed block tracking is on for this VDI.
error VDI_CONTAINS_METADATA_OF_THIS_POOL vdi pool -- The VDI holds this pool's own metadata, so it cannot be used for recovery.
error VDI_CONTENT_ID_MISSING -- The VDI has no content ID recorded.
error VDI_COPY_FAILED -- Copying the VDI did not succeed.
error VDI_HAS_RRDS vdi -- The VDI holds RRD statistics, which blocks the operation.
error VDI_INCOMPATIBLE_TYPE vdi type -- The VDI's type is unsuitable, e.g. an HA statefile given to a guest.
error VDI_IN_USE vdi operation -- Another operation is currently using the VDI.
error VDI_IO_ERROR reason -- Reading or writing the VDI hit an I/O error (xapi says "Device I/O errors").
error VDI_IS_A_PHYSICAL_DEVICE vdi -- This cannot be done on a VDI backed by a physical device.
error VDI_IS_ENCRYPTED vdi -- Not allowed because the VDI is encrypted.
error VDI_IS_NOT_ISO vdi type -- Only CD-type VDIs, such as ISO images or CD drives, are accepted here.
error VDI_IS_SHARABLE -- Not allowed because the VDI is marked sharable.
error VDI_LOCATION_MISSING sr location -- No VDI exists at that location in the SR.
error VDI_MISSING sr vdi -- The VDI is absent from the underlying storage.
error VDI_NEEDS_VM_FOR_MIGRATE vdi -- Only VDIs attached to a running VM can be live-migrated.
error VDI_NOT_AVAILABLE vdi -- The VDI could not be attached to the VM correctly.
error VDI_NOT_IN_MAP vdi -- The VDI has no target SR in the migrate_send mapping.
error VDI_NOT_MANAGED vdi -- This VDI is not under the system's management.
error VDI_NOT_SPARSE vdi -- Block-level differences need a sparse-format VDI such as VHD.
error VDI_NO_CBT_METADATA vdi -- The VDI lacks changed block tracking metadata.
error VDI_ON_BOOT_MODE_INCOMPATIBLE_WITH_OPERATION -- Not allowed for VDIs set to reset on boot, or VMs using them.
error VDI_READONLY vdi -- The VDI is read-only but this needs write access.
error VDI_TOO_LARGE vdi maximum_size -- The VDI exceeds the maximum allowed size.
error VDI_TOO_SMALL vdi minimum_size -- The VDI is below the minimum size; enlarge it.
error VGPU_DESTINATION_INCOMPATIBLE reason vgpu host -- No physical GPU on the destination can host this vGPU.
error VGPU_GUEST_DRIVER_LIMIT reason vm host -- Migration refused: the guest's GPU driver cannot cope with it.
error VGPU_SUSPENSION_NOT_SUPPORTED reason vgpu host -- This vGPU setup cannot be suspended.
error VGPU_TYPE_NOT_COMPATIBLE type -- The new vGPU type clashes with vGPU types already on the VM.
error VGPU_TYPE_NOT_COMPATIBLE_WITH_RUNNING_TYPE pgpu type running_type -- The vGPU type cannot share the physical GPU with types already running there.
error VGPU_TYPE_NOT_ENABLED type enabled_types -- The physical GPU does not have this vGPU type enabled.
error VGPU_TYPE_NOT_SUPPORTED type supported_types -- The physical GPU cannot provide this vGPU type.
error VGPU_TYPE_NO_LONGER_SUPPORTED type -- Support for this vGPU type has been withdrawn.
error VIF_IN_USE network VIF -- VIFs on the network are still active.
error VIF_NOT_IN_MAP vif -- The VIF has no target network in the migrate_send mapping.
error VLAN_IN_USE device vlan -- That VLAN is already configured; review the network setup.
error VLAN_TAG_INVALID VLAN -- The VLAN tag is outside the permitted range of 0 to 4094.
error VMPP_ARCHIVE_MORE_FREQUENT_THAN_BACKUP -- The archive schedule cannot run more often than the backup schedule.
error VMPP_HAS_VM -- The protection policy still has VMs assigned.
error VMSS_HAS_VM -- VMs are still assigned to this snapshot schedule.
error VMS_FAILED_TO_COOPERATE -- Some VMs did not free memory when asked to.
error VM_ASSIGNED_TO_PROTECTION_POLICY vm vmpp -- A protection policy still covers this VM.
error VM_ASSIGNED_TO_SNAPSHOT_SCHEDULE vm vmss -- A snapshot schedule still covers this VM.
error VM_ATTACHED_TO_MORE_THAN_ONE_VDI_WITH_TIMEOFFSET_MARKED_AS_RESET_ON_BOOT vm -- The VM cannot start: several reset-on-boot VDIs carry a timeoffset.
error VM_BAD_POWER_STATE vm expected actual -- The VM's power state does not allow this operation.
error VM_BIOS_STRINGS_ALREADY_SET -- The VM's BIOS strings are fixed once set.
error VM_CALL_PLUGIN_RATE_LIMIT VM interval wait -- Plugin calls on this VM are too frequent; wait before retrying.
error VM_CANNOT_DELETE_DEFAULT_TEMPLATE vm -- Built-in default templates cannot be deleted.
error VM_CHECKPOINT_RESUME_FAILED vm -- Restoring the VM's saved memory image failed.
error VM_CHECKPOINT_SUSPEND_FAILED vm -- Saving the VM's memory image failed.
error VM_CRASHED vm -- The guest domain crashed during the operation.
error VM_DUPLICATE_VBD_DEVICE vm vbd device -- Two of the VM's VBDs use the same device, so it cannot start.
error VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT vm -- The guest did not respond to the shutdown request.
error VM_FAILED_SUSPEND_ACKNOWLEDGMENT vm -- The guest did not respond to the suspend request.
error VM_HALTED vm -- The guest powered off when it was not expected to.
error VM_HAS_CHECKPOINT vm -- VMs that have a checkpoint cannot be migrated.
error VM_HAS_NO_SUSPEND_VDI vm -- The VM has no suspend image to resume from.
error VM_HAS_PCI_ATTACHED vm -- Not possible while the VM has PCI passthrough devices.
error VM_HAS_SRIOV_VIF vm -- Not possible while the VM has SR-IOV network interfaces.
error VM_HAS_TOO_MANY_SNAPSHOTS vm -- Migration is limited to VMs with at most one snapshot.
error VM_HAS_VGPU vm -- Not possible while the VM has virtual GPUs.
error VM_HAS_VUSBS VM -- Not possible while the VM has virtual USB devices.
error VM_HOST_INCOMPATIBLE_VERSION host vm -- During an upgrade this VM operation cannot run on an older host.
error VM_HOST_INCOMPATIBLE_VERSION_MIGRATE host vm -- VMs cannot be migrated to a host running older software.
error VM_HOST_INCOMPATIBLE_VIRTUAL_HARDWARE_PLATFORM_VERSION host host_versions vm vm_version -- The host cannot supply the virtual hardware platform version the VM needs.
error VM_HVM_REQUIRED vm -- This needs the VM to be in HVM mode.
error VM_INCOMPATIBLE_WITH_THIS_HOST vm host reason -- The host's CPU features do not suit the VM.
error VM_IS_IMMOBILE VM -- Settings on this VM stop it from being migrated.
error VM_IS_PART_OF_AN_APPLIANCE vm appliance -- Not allowed because the VM belongs to an appliance.
error VM_IS_PROTECTED vm -- Not allowed because HA protects this VM.
error VM_IS_SNAPSHOT vm operation -- This operation is not valid on a snapshot.
error VM_IS_TEMPLATE vm operation -- Templates do not support this operation.
error VM_IS_USING_NESTED_VIRT VM -- Not allowed because the VM uses nested virtualisation.
error VM_LACKS_FEATURE vm -- The VM does not support a feature this needs.
error VM_LACKS_FEATURE_SHUTDOWN vm -- The VM cannot do a cooperative shutdown, which this needs.
error VM_LACKS_FEATURE_STATIC_IP_SETTING vm -- The VM cannot have static IPs set from outside, which this needs.
error VM_LACKS_FEATURE_SUSPEND vm -- The VM cannot do a cooperative suspend, which this needs.
error VM_LACKS_FEATURE_VCPU_HOTPLUG vm -- The VM cannot hot-add vCPUs, which this needs.
error VM_MEMORY_SIZE_TOO_LOW vm -- Start refused: the VM's memory allocation is too small.
error VM_MEMORY_TARGET_WAIT_TIMEOUT -- The VM did not reach its memory target in time.
error VM_MIGRATE_CONTACT_REMOTE_SERVICE_FAILED -- The migration service on the destination host could not be reached.
error VM_MIGRATE_FAILED vm source destination msg -- Migrating the VM failed partway through.
error VM_MISSING_PV_DRIVERS vm -- The VM needs PV drivers, but none were detected.
error VM_NOT_RESIDENT_HERE vm host -- The VM is not running on that host.
error VM_NO_CRASHDUMP_SR vm -- The VM has no SR set for crash dumps.
error VM_NO_EMPTY_CD_VBD vm -- Every CD drive on the VM is occupied, or it has none.
error VM_NO_SUSPEND_SR vm -- The VM has no SR set for suspend images.
error VM_NO_VCPUS vm -- Start refused: the VM has zero vCPUs.
error VM_OLD_PV_DRIVERS vm major minor -- The VM's PV drivers are too old; upgrade them.
error VM_PCI_BUS_FULL VM -- The VM has no PCI slots left.
error VM_PV_DRIVERS_IN_USE vm -- The guest is still using its PV drivers.
error VM_REBOOTED vm -- The VM restarted unexpectedly.
error VM_REQUIRES_GPU vm GPU_group -- The host has no physical GPU from the GPU group the VM's vGPU needs.
error VM_REQUIRES_IOMMU host -- The host lacks the IOMMU/VT-d support the VM needs.
error VM_REQUIRES_NETWORK vm network -- The host has no PIF on a network the VM's VIFs use.
error VM_REQUIRES_SR vm sr -- The host cannot reach an SR holding one of the VM's disks.
error VM_REQUIRES_VDI vm vdi -- Start refused: a needed VDI could not be attached.
error VM_REQUIRES_VGPU vm GPU_group vGPU_type -- No physical GPU on this host can allocate the vGPU the VM needs.
error VM_REQUIRES_VUSB vm USB_group -- No physical USB device on this host can back the VM's virtual USB.
error VM_REVERT_FAILED vm snapshot -- Reverting the VM to the snapshot failed.
error VM_SHUTDOWN_TIMEOUT vm timeout -- The VM did not shut down within the time limit.
error VM_SNAPSHOT_FAILED -- Taking a snapshot of the VM failed.
error VM_SNAPSHOT_WITH_QUIESCE_FAILED vm -- An unexpected problem broke the quiesced snapshot.
error VM_SNAPSHOT_WITH_QUIESCE_NOT_SUPPORTED vm error -- The VM has no VSS plugin, so quiesced snapshots are unavailable.
error VM_SNAPSHOT_WITH_QUIESCE_PLUGIN_DEOS_NOT_RESPOND vm -- The VM's VSS plugin did not answer.
error VM_SNAPSHOT_WITH_QUIESCE_TIMEOUT vm -- The VM's VSS plugin took too long.
error VM_SUSPEND_TIMEOUT vm timeout -- The VM did not suspend within the time limit.
error VM_TOO_MANY_VCPUS vm -- The VM has more vCPUs than can be started.
error VM_TO_IMPORT_IS_NOT_NEWER_VERSION vm existing_version version_to_import -- Without force, only a newer version of an existing VM can be imported.
error VM_UNSAFE_BOOT vm -- Starting the VM looks unsafe, e.g. due to CPU flags; use force to override.
error VTPM_MAX_AMOUNT_REACHED amount -- The VM already has the maximum number of vTPMs.
error WLB_AUTHENTICATION_FAILED -- The WLB server rejected the configured credentials.
error WLB_CONNECTION_REFUSED -- The WLB server refused the connection.
error WLB_CONNECTION_RESET -- The WLB server reset the connection.
error WLB_DISABLED -- WLB is turned off for this pool.
error WLB_INTERNAL_ERROR -- An internal fault occurred on the WLB server.
error WLB_MALFORMED_REQUEST -- The WLB server judged the request malformed.
error WLB_MALFORMED_RESPONSE method reason response -- The WLB server sent a response that could not be understood.
error WLB_NOT_INITIALIZED -- No WLB connection has been set up.
error WLB_TIMEOUT configured_timeout -- Talking to the WLB server took too long.
error WLB_UNKNOWN_HOST -- DNS lookup of the configured WLB server name failed.
error WLB_URL_INVALID url -- The WLB address is malformed; use address:port.
error WLB_XENSERVER_AUTHENTICATION_FAILED -- WLB says this server rejected its credentials.
error WLB_XENSERVER_CONNECTION_REFUSED -- WLB says this server refused its connection.
error WLB_XENSERVER_MALFORMED_RESPONSE -- WLB says this server sent it an unintelligible reply.
error WLB_XENSERVER_TIMEOUT -- WLB says talking to this server took too long.
error WLB_XENSERVER_UNKNOWN_HOST -- WLB cannot resolve its configured name for this server via DNS.
error XAPI_HOOK_FAILED hook_name reason stdout exit_code -- An external hook script run by xapi failed.
error XENAPI_MISSING_PLUGIN name -- No plugin with that name exists.
error XENAPI_PLUGIN_FAILURE status stdout stderr -- Calling the plugin failed.
error XEN_INCOMPATIBLE -- The installed Xen or its libraries do not work with this toolstack.
error XEN_VSS_REQ_ERROR_ADDING_VOLUME_TO_SNAPSET_FAILED vm error_code -- VSS could not add some volumes to the snapshot set.
error XEN_VSS_REQ_ERROR_CREATING_SNAPSHOT vm error_code -- VSS could not produce the snapshots.
error XEN_VSS_REQ_ERROR_CREATING_SNAPSHOT_XML_STRING vm error_code -- VSS failed to produce the transportable snapshot's XML.
error XEN_VSS_REQ_ERROR_INIT_FAILED vm error_code -- The VSS requester failed to initialise.
error XEN_VSS_REQ_ERROR_NO_VOLUMES_SUPPORTED vm error_code -- The VSS provider supports none of the volumes.
error XEN_VSS_REQ_ERROR_PREPARING_WRITERS vm error_code -- VSS writers could not be prepared for the snapshot.
error XEN_VSS_REQ_ERROR_PROV_NOT_LOADED vm error_code -- No VSS provider is loaded in the guest.
error XEN_VSS_REQ_ERROR_START_SNAPSHOT_SET_FAILED vm error_code -- VSS failed to begin a new snapshot set.
error XMLRPC_UNMARSHAL_FAILURE expected received -- The XML-RPC message held a different element than expected.
