//! The command table: explicit commands (with their required and optional
//! parameters and help) plus the generated per-class ones.

use super::generic::{self, GenClass, Op};
use super::records;
use super::{CliResult, Cx};
use std::collections::BTreeMap;
use std::sync::OnceLock;

pub enum Impl {
    Explicit,
    Generic(Op, &'static GenClass),
}

pub struct Spec {
    pub name: String,
    pub reqd: Vec<String>,
    pub optn: Vec<String>,
    pub help: String,
    /// Listed by plain `xe help`.
    pub standard: bool,
    pub vm_selectors: bool,
    /// Takes `sr=` and SR field filters (xapi's Sr_selectors).
    pub sr_selectors: bool,
    pub imp: Impl,
}

const STD: u8 = 1;
const VMSEL: u8 = 2;
const SRSEL: u8 = 4;

type Row = (&'static str, &'static [&'static str], &'static [&'static str], u8, &'static str);

/// Explicit commands: (name, required, optional, flags, help).
static EXPLICIT: &[Row] = &[
    ("vm-install", &["new-name-label"], &["template", "template-uuid", "template-name", "sr-uuid", "sr-name-label", "copy-bios-strings-from"], STD, "Install a new VM from a template. The template parameter can match either the template name or the uuid."),
    ("vm-start", &[], &["force", "on", "paused"], STD | VMSEL, "Start the selected VM(s)."),
    ("vm-shutdown", &[], &["force"], STD | VMSEL, "Shutdown the selected VM(s). Use --force for a hard shutdown."),
    ("vm-reboot", &[], &["force"], STD | VMSEL, "Reboot the selected VM(s). Use --force for a hard reboot."),
    ("vm-suspend", &[], &[], STD | VMSEL, "Suspend the selected VM(s)."),
    ("vm-resume", &[], &["force", "on"], STD | VMSEL, "Resume the selected VM(s)."),
    ("vm-pause", &[], &[], VMSEL, "Pause the selected running VM(s)."),
    ("console", &[], &[], VMSEL, "Attach to a particular console."),
    ("vm-unpause", &[], &[], VMSEL, "Unpause the selected paused VM(s)."),
    ("vm-clone", &["new-name-label"], &["new-name-description"], STD | VMSEL, "Clone an existing VM, using storage-level fast disk clone operation where available."),
    ("vm-copy", &["new-name-label"], &["new-name-description", "sr-uuid"], STD | VMSEL, "Copy an existing VM, but without using storage-level fast disk clone operation (even if this is available). The disk images of the copied VM are guaranteed to be 'full images' - that is, not part of a copy-on-write chain."),
    ("vm-snapshot", &["new-name-label"], &["new-name-description", "ignore-vdi-uuids"], STD | VMSEL, "Snapshot an existing VM, using storage-level fast disk snapshot operation where available."),
    ("vm-checkpoint", &["new-name-label"], &["new-name-description"], VMSEL, "Checkpoint an existing VM, using storage-level fast disk snapshot operation where available."),
    ("snapshot-revert", &[], &["uuid", "snapshot-uuid"], STD, "Revert an existing VM to a previous checkpointed or snapshotted state."),
    ("vm-uninstall", &[], &["force"], STD | VMSEL, "Uninstall a VM. This operation will destroy those VDIs that are marked RW and connected to this VM only. To simply destroy the VM record, use vm-destroy."),
    ("vm-destroy", &["uuid"], &[], 0, "Destroy a VM. This removes the record of the VM from the database but does not destroy its disks."),
    ("vm-migrate", &[], &["host", "host-uuid", "live", "force"], STD | VMSEL, "Migrate the selected VM(s) to another host."),
    ("vm-reset-powerstate", &[], &["force"], VMSEL, "Force the VM powerstate to halted in the management toolstack database only. This command is used to recover a VM that is marked as 'running', but is known to be on a dead slave host that will not recover. This is a potentially dangerous operation: you must ensure that the VM you are forcing to 'halted' is definitely not running anywhere."),
    ("vm-export", &["filename"], &["preserve-power-state", "compress", "include-snapshots", "metadata"], STD | VMSEL, "Export a VM to <filename>."),
    ("vm-import", &[], &["filename", "preserve", "sr-uuid", "force", "url", "vdi:", "metadata", "dry-run"], STD, "Import a VM from <filename> (an XVA file, or a legacy XVA directory holding ova.xml), or from <url> (fetched by the server). preserve=true restores as many settings as possible, including VIF MAC addresses; force=true ignores disk checksum failures; metadata=true imports an export made with metadata=true, where vdi:<uuid>=<uuid> maps the export's disks onto existing ones and dry-run=true only lists what would be created. The VDIs go to the pool's default SR unless sr-uuid is given."),
    ("vm-disk-add", &["disk-size", "device"], &["sr-uuid"], STD | VMSEL, "Add a new disk to the selected VM(s). The device field should be the user-device number (an integer) or 'autodetect'."),
    ("vm-disk-list", &[], &["vbd-params", "vdi-params"], STD | VMSEL, "List the disks on the selected VM(s)."),
    ("vm-cd-add", &["cd-name", "device"], &[], STD | VMSEL, "Add a CD to the VM(s). The device field should be selected from the parameter 'allowed-VBD-devices' of the VM."),
    ("vm-cd-insert", &["cd-name"], &[], STD | VMSEL, "Insert a CD into the VM's CD drive."),
    ("vm-cd-eject", &[], &[], STD | VMSEL, "Eject a CD from the virtual CD drive."),
    ("vm-vif-list", &[], &[], STD | VMSEL, "List the VIFs present on selected VM."),
    ("vm-data-source-list", &[], &[], VMSEL, "List the data sources that can be recorded for a VM."),
    ("vm-data-source-query", &["data-source"], &[], VMSEL, "Query the last value read from a VM data source."),
    ("vm-data-source-record", &["data-source"], &[], VMSEL, "Record the specified data source for a VM."),
    ("vm-data-source-forget", &["data-source"], &[], VMSEL, "Stop recording the specified data source for a VM, and forget all of the recorded data."),
    ("vm-memory-set", &["memory"], &[], VMSEL, "Configure the memory allocation of a VM."),
    ("vm-memory-limits-set", &["static-min", "static-max", "dynamic-min", "dynamic-max"], &[], VMSEL, "Set all four memory limits of the selected VM(s) at once (sizes may take units, e.g. 512MiB)."),
    ("vm-memory-static-range-set", &["min", "max"], &[], VMSEL, "Set the static memory range of the selected VM(s) (sizes may take units)."),
    ("vm-memory-dynamic-range-set", &["min", "max"], &[], VMSEL, "Set the dynamic memory range of the selected VM(s) (sizes may take units)."),
    ("vm-memory-target-set", &["target"], &[], VMSEL, "Set the memory target of the selected VM(s): a dynamic range of one size."),
    ("vdi-create", &["sr-uuid", "name-label", "virtual-size"], &["type", "sharable", "read-only", "other-config:", "sm-config:", "tags:"], STD, "Create a VDI. Type is 'system' 'user' 'suspend' or 'crashdump'."),
    ("vdi-destroy", &["uuid"], &[], STD, "Destroy a VDI."),
    ("vdi-resize", &["uuid", "disk-size"], &["online"], STD, "Resize a VDI."),
    ("vdi-import", &["uuid", "filename"], &["format", "progress"], STD, "Import a raw VDI."),
    ("vdi-export", &["uuid", "filename"], &["format", "base", "progress"], STD, "Export a VDI."),
    ("sr-create", &["name-label", "type"], &["host-uuid", "device-config:", "shared", "physical-size", "content-type", "sm-config:"], STD, "Create an SR, also a PBD. The device-config parameters can be specified by e.g. device-config:foo=baa."),
    ("sr-scan", &["uuid"], &[], STD, "Force an SR scan, syncing database with VDIs present in underlying storage substrate."),
    ("sr-introduce", &["name-label", "type", "uuid"], &["shared", "content-type"], 0, "Introduces an SR (but does not create any PBDs)."),
    ("sr-forget", &["uuid"], &[], 0, "Forget about an SR."),
    ("sr-data-source-list", &[], &[], SRSEL, "List the data sources that can be recorded for a SR."),
    ("sr-data-source-record", &["data-source"], &[], SRSEL, "Record the specified data source for a SR."),
    ("sr-data-source-query", &["data-source"], &[], SRSEL, "Query the last value read from a SR data source."),
    ("sr-data-source-forget", &["data-source"], &[], SRSEL, "Stop recording the specified data source for a SR, and forget all of the recorded data."),
    ("pbd-create", &["host-uuid", "sr-uuid"], &["device-config:"], 0, "Create a PBD. The read-only device-config parameter can only be set on creation in the following manner. To add a mapping of 'path' -> '/tmp', the command line should contain the argument device-config:path=/tmp"),
    ("pbd-plug", &["uuid"], &[], 0, "Attempt to plug in the PBD to the host. If this succeeds then the referenced SR (and the VDIs contained within) should be visible to the host."),
    ("pbd-unplug", &["uuid"], &[], 0, "Attempt to unplug the PBD from the host. If this succeeds then the referenced SR (and the VDIs contained within) should not be visible to the host."),
    ("vbd-create", &["vm-uuid", "device"], &["vdi-uuid", "bootable", "type", "mode", "unpluggable"], 0, "Create a VBD. Appropriate values for the device field are listed in the parameter 'allowed-VBD-devices' on the VM. If no VDI is specified, an empty VBD will be created. The type parameter can be 'Disk' or 'CD', and the mode is 'RO' or 'RW'."),
    ("vbd-plug", &["uuid"], &[], 0, "Attempt to attach the VBD while the VM is in the running state."),
    ("vbd-unplug", &["uuid"], &["timeout", "force"], 0, "Attempt to detach the VBD while the VM is in the running state."),
    ("vbd-destroy", &["uuid"], &[], 0, "Destroy a VBD."),
    ("network-create", &["name-label"], &["name-description", "MTU", "bridge", "managed"], STD, "Create a new network."),
    ("vif-create", &["device", "network-uuid", "vm-uuid"], &["mac"], STD, "Create a VIF. Appropriate values for the device are listed in the parameter 'allowed-VIF-devices' on the VM. If specified, the MAC parameter is of the form aa:bb:cc:dd:ee:ff. If left unspecified, an appropriate random MAC will be created."),
    ("vif-plug", &["uuid"], &[], 0, "Attempt to attach the VIF while the VM is in the running state."),
    ("vif-unplug", &["uuid"], &["force"], 0, "Attempt to detach the VIF while the VM is in the running state."),
    ("vif-destroy", &["uuid"], &[], STD, "Destroy a VIF."),
    ("pif-scan", &["host-uuid"], &[], 0, "Scan for new physical interfaces on a host."),
    ("pif-plug", &["uuid"], &[], 0, "Attempt to bring up a network interface."),
    ("pif-unplug", &["uuid"], &[], 0, "Attempt to bring down a network interface."),
    ("pif-reconfigure-ip", &["uuid", "mode"], &["IP", "netmask", "gateway", "DNS"], 0, "Reconfigure the IP address settings on a PIF."),
    ("pif-reconfigure-ipv6", &["uuid", "mode"], &["IPv6", "gateway", "DNS"], 0, "Set a PIF's IPv6 addressing (mode none, dhcp, autoconf or static)."),
    ("host-management-reconfigure", &["pif-uuid"], &[], 0, "Move the host's management interface to this PIF."),
    ("pool-management-reconfigure", &["network-uuid"], &[], 0, "Move every host's management interface to its PIF on this network."),
    ("vlan-create", &["pif-uuid", "vlan", "network-uuid"], &[], 0, "Create a new VLAN on a host."),
    ("bond-create", &["network-uuid", "pif-uuids"], &["mac", "mode", "properties:"], 0, "Create a bonded interface from a list of existing PIF objects."),
    ("host-enable", &[], &["uuid", "host"], 0, "Attempt to enable the XE host."),
    ("host-data-source-list", &[], &["uuid", "host", "host-uuid"], 0, "List the data sources that can be recorded for a host."),
    ("host-data-source-query", &["data-source"], &["uuid", "host", "host-uuid"], 0, "Query the last value read from a host data source."),
    ("host-data-source-record", &["data-source"], &["uuid", "host", "host-uuid"], 0, "Record the specified data source for a host."),
    ("host-data-source-forget", &["data-source"], &["uuid", "host", "host-uuid"], 0, "Stop recording the specified data source for a host, and forget all of the recorded data."),
    ("host-disable", &[], &["uuid", "host"], 0, "Attempt to disable the XE host."),
    ("host-evacuate", &[], &["uuid", "host", "network-uuid"], 0, "Migrate all VMs off a host."),
    ("task-cancel", &["uuid"], &[], 0, "Set a task to cancelling and return."),
    ("event-wait", &["class"], &[], 0, "Wait for the event that satisfies the conditions given on the command line."),
    ("pool-dump-database", &["file-name"], &[], 0, "Download a dump of the pool database."),
    ("pool-restore-database", &["file-name"], &["dry-run", "force"], 0, "Restore a dump of the pool database to the server."),
    ("message-create", &["name", "body", "priority"], &["vm-uuid", "host-uuid", "sr-uuid", "pool-uuid"], 0, "Create a message associated with a particular API object. Note only one of the optional parameters can be specified."),
];

fn build() -> BTreeMap<String, Spec> {
    let mut t = BTreeMap::new();
    let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for (name, reqd, optn, flags, help) in EXPLICIT {
        t.insert(
            name.to_string(),
            Spec {
                name: name.to_string(),
                reqd: own(reqd),
                optn: own(optn),
                help: help.to_string(),
                standard: flags & STD != 0,
                vm_selectors: flags & VMSEL != 0,
                sr_selectors: flags & SRSEL != 0,
                imp: Impl::Explicit,
            },
        );
    }
    for g in generic::GEN {
        let Some(c) = generic::class_of(g) else { continue };
        let fields = records::fields(c);
        let names: Vec<String> = fields.iter().map(|f| f.name.clone()).collect();
        let contains: Vec<String> =
            fields.iter().filter(|f| f.kind == records::Kind::Set).map(|f| format!("{}:contains", f.name)).collect();
        let mut settable: Vec<String> =
            fields.iter().filter(|f| f.writable && f.kind == records::Kind::Normal).map(|f| f.name.clone()).collect();
        settable.extend(
            fields.iter().filter(|f| f.writable && f.kind == records::Kind::Map).map(|f| format!("{}:", f.name)),
        );
        let addable = fields.iter().any(|f| f.writable && f.kind != records::Kind::Normal);
        let clearable: Vec<String> =
            fields.iter().filter(|f| f.writable || f.kind != records::Kind::Normal).map(|f| f.name.clone()).collect();
        let plural = format!("{}s", g.cli);
        let mut add = |suffix: &str, reqd: &[&str], optn: Vec<String>, help: String, op: Op, standard: bool| {
            let name = format!("{}-{suffix}", g.cli);
            t.insert(
                name.clone(),
                Spec {
                    name,
                    reqd: own(reqd),
                    optn,
                    help,
                    standard,
                    vm_selectors: false,
                    sr_selectors: false,
                    imp: Impl::Generic(op, g),
                },
            );
        };
        let mut list_opt = vec!["params".to_string(), "database:".to_string()];
        list_opt.extend(names);
        list_opt.extend(contains);
        add("list", &[], list_opt, format!("Lists all the {plural}, filtering on the optional arguments. To filter on map parameters, use the syntax 'map-param:key=value'"), Op::List, matches!(g.cli, "vm" | "network" | "sr"));
        add(
            "param-list",
            &["uuid"],
            own(&["database:"]),
            "Lists all the parameters of the object specified by the uuid.".into(),
            Op::ParamList,
            false,
        );
        add("param-get", &["uuid", "param-name"], own(&["param-key", "database:"]), "Gets the parameter specified of the object. If the parameter is a map of key=value pairs, use 'param-key=<key>' to get the value associated with a particular key.".into(), Op::ParamGet, false);
        if !settable.is_empty() {
            add("param-set", &["uuid"], settable, "Sets the parameter specified. If param-value is not given, the parameter is set to a null value. To set a (key,value) pair in a map parameter, use the syntax 'map-param:key=value'.".into(), Op::ParamSet, false);
        }
        if addable {
            add("param-add", &["uuid", "param-name"], own(&["param-key"]), "Adds to a set or map parameter. If the parameter is a set, use param-key=<key to add>. If the parameter is a map, pass the values to add as 'key=value' pairs.".into(), Op::ParamAdd, false);
            add(
                "param-remove",
                &["uuid", "param-name", "param-key"],
                vec![],
                "Removes a member or a key,value pair from a set/map respectively.".into(),
                Op::ParamRemove,
                false,
            );
        }
        if !clearable.is_empty() {
            add(
                "param-clear",
                &["uuid", "param-name"],
                vec![],
                format!("Clears the specified parameter (param-name can be {}).", clearable.join(",")),
                Op::ParamClear,
                false,
            );
        }
    }
    t
}

pub fn all() -> &'static BTreeMap<String, Spec> {
    static T: OnceLock<BTreeMap<String, Spec>> = OnceLock::new();
    T.get_or_init(build)
}

pub fn find(name: &str) -> Option<&'static Spec> {
    all().get(name)
}

pub async fn run(cx: &mut Cx<'_, '_>, spec: &'static Spec) -> CliResult {
    match &spec.imp {
        Impl::Generic(op, g) => generic::run(cx, *op, g).await,
        Impl::Explicit => super::commands::run(cx, &spec.name).await,
    }
}
