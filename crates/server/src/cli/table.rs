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
    ("vm-install", &["new-name-label"], &["template", "template-uuid", "template-name", "sr-uuid", "sr-name-label", "copy-bios-strings-from"], STD, "Make a new VM from a template, named by template= (name or uuid), template-uuid= or template-name=; its disks go to sr-uuid= or the pool's default SR."),
    ("vm-start", &[], &["force", "on", "paused"], STD | VMSEL, "Boot the VMs the selectors pick."),
    ("vm-shutdown", &[], &["force"], STD | VMSEL, "Shut the picked VMs down through their guests; --force pulls the plug instead."),
    ("vm-reboot", &[], &["force"], STD | VMSEL, "Restart the picked VMs through their guests; --force resets them."),
    ("vm-suspend", &[], &[], STD | VMSEL, "Save the picked VMs' memory to disk and stop them."),
    ("vm-resume", &[], &["force", "on"], STD | VMSEL, "Bring suspended VMs back from their saved memory."),
    ("vm-pause", &[], &[], VMSEL, "Stop the picked running VMs' vCPUs where they are."),
    ("console", &[], &[], VMSEL, "Connect this terminal to a VM's text console (leave with Ctrl-])."),
    ("vm-unpause", &[], &[], VMSEL, "Let paused VMs run again."),
    ("vm-clone", &["new-name-label"], &["new-name-description"], STD | VMSEL, "Make a new VM from an existing one, with fast storage-level clones of its disks where the SR offers them."),
    ("vm-copy", &["new-name-label"], &["new-name-description", "sr-uuid"], STD | VMSEL, "Make a new VM from an existing one with full copies of its disks (to sr-uuid= if given), never sharing data with the original."),
    ("vm-snapshot", &["new-name-label"], &["new-name-description", "ignore-vdi-uuids"], STD | VMSEL, "Record a VM's disks and settings as a snapshot, with fast storage-level snapshots where the SR offers them."),
    ("vm-checkpoint", &["new-name-label"], &["new-name-description"], VMSEL, "Like vm-snapshot, and keep the running VM's memory too."),
    ("snapshot-revert", &[], &["uuid", "snapshot-uuid"], STD, "Put a VM back to the state a snapshot or checkpoint recorded."),
    ("vm-uninstall", &[], &["force"], STD | VMSEL, "Remove VMs with the disks only they use read-write; vm-destroy keeps the disks."),
    ("vm-destroy", &["uuid"], &[], 0, "Remove a VM's record and leave its disks."),
    ("vm-migrate", &[], &["host", "host-uuid", "live", "force"], STD | VMSEL, "Move the picked VMs to another host (live=true keeps them running)."),
    ("vm-reset-powerstate", &[], &["force"], VMSEL, "Mark VMs halted in the database without touching any domain: for a VM recorded as running on a host known to be dead for good. Use with care; needs --force."),
    ("vm-export", &["filename"], &["preserve-power-state", "compress", "include-snapshots", "metadata"], STD | VMSEL, "Write a VM (or its metadata only) to <filename> as an XVA."),
    ("vm-import", &[], &["filename", "preserve", "sr-uuid", "force", "url", "vdi:", "metadata", "dry-run"], STD, "Make a VM from <filename> (an XVA, or a legacy XVA directory with its ova.xml) or from <url>, which the server fetches. preserve=true keeps the MACs and identity; vdi:<uuid>=<uuid> maps metadata-only imports onto existing disks; dry-run=true reports without importing."),
    ("vm-disk-add", &["disk-size", "device"], &["sr-uuid"], STD | VMSEL, "Give the picked VMs a new empty disk of disk-size= on device= (a number, or autodetect)."),
    ("vm-disk-list", &[], &["vbd-params", "vdi-params"], STD | VMSEL, "Show the disks of the picked VMs with their VBD and VDI fields."),
    ("vm-cd-add", &["cd-name", "device"], &[], STD | VMSEL, "Give VMs a CD drive on device= (one of the VM's allowed-VBD-devices) holding cd-name=."),
    ("vm-cd-insert", &["cd-name"], &[], STD | VMSEL, "Put the ISO cd-name= into a VM's empty CD drive."),
    ("vm-cd-eject", &[], &[], STD | VMSEL, "Take the disc out of a VM's CD drive."),
    ("vm-vif-list", &[], &[], STD | VMSEL, "Show the network interfaces of the picked VMs."),
    ("vm-data-source-list", &[], &[], VMSEL, "Show which statistics a VM offers and which are being recorded."),
    ("vm-data-source-query", &["data-source"], &[], VMSEL, "Print the latest value of one of a VM's statistics."),
    ("vm-data-source-record", &["data-source"], &[], VMSEL, "Start keeping one of a VM's statistics in its RRD."),
    ("vm-data-source-forget", &["data-source"], &[], VMSEL, "Stop keeping one of a VM's statistics and drop what was kept."),
    ("vm-memory-set", &["memory"], &[], VMSEL, "Set the picked VMs' memory to memory= (units allowed), as VM.set_memory does."),
    ("vm-memory-limits-set", &["static-min", "static-max", "dynamic-min", "dynamic-max"], &[], VMSEL, "Set all four memory limits of the picked VMs at once (sizes may carry units, e.g. 512MiB)."),
    ("vm-memory-static-range-set", &["min", "max"], &[], VMSEL, "Set the picked VMs' static memory minimum and maximum (sizes may carry units)."),
    ("vm-memory-dynamic-range-set", &["min", "max"], &[], VMSEL, "Set the picked VMs' dynamic memory minimum and maximum (sizes may carry units)."),
    ("vm-memory-target-set", &["target"], &[], VMSEL, "Give the picked VMs one memory size: a dynamic range whose ends are equal."),
    ("vdi-create", &["sr-uuid", "name-label", "virtual-size"], &["type", "sharable", "read-only", "other-config:", "sm-config:", "tags:"], STD, "Make an empty virtual disk in an SR; type= is system, user, suspend or crashdump."),
    ("vdi-destroy", &["uuid"], &[], STD, "Delete a virtual disk and its data."),
    ("vdi-resize", &["uuid", "disk-size"], &["online"], STD, "Change a virtual disk's size."),
    ("vdi-import", &["uuid", "filename"], &["format", "progress"], STD, "Fill a virtual disk from <filename> (raw unless format= says otherwise)."),
    ("vdi-export", &["uuid", "filename"], &["format", "base", "progress"], STD, "Write a virtual disk's contents to <filename>."),
    ("sr-create", &["name-label", "type"], &["host-uuid", "device-config:", "shared", "physical-size", "content-type", "sm-config:"], STD, "Make a storage repository and the PBD that attaches it; pass its settings as device-config:<key>=<value>."),
    ("sr-scan", &["uuid"], &[], STD, "Look at an SR's storage again and bring the database's VDIs in line with what is there."),
    ("sr-introduce", &["name-label", "type", "uuid"], &["shared", "content-type"], 0, "Record an existing SR in the database without attaching it (no PBD is made)."),
    ("sr-forget", &["uuid"], &[], 0, "Drop an SR from the database and leave its storage alone."),
    ("sr-data-source-list", &[], &[], SRSEL, "Show which statistics an SR offers and which are being recorded."),
    ("sr-data-source-record", &["data-source"], &[], SRSEL, "Start keeping one of an SR's statistics in its RRD."),
    ("sr-data-source-query", &["data-source"], &[], SRSEL, "Print the latest value of one of an SR's statistics."),
    ("sr-data-source-forget", &["data-source"], &[], SRSEL, "Stop keeping one of an SR's statistics and drop what was kept."),
    ("pbd-create", &["host-uuid", "sr-uuid"], &["device-config:"], 0, "Make a PBD linking an SR to a host. Its device-config is fixed at creation: give each entry as device-config:<key>=<value>."),
    ("pbd-plug", &["uuid"], &[], 0, "Attach an SR to its host through this PBD, so its disks can be used there."),
    ("pbd-unplug", &["uuid"], &[], 0, "Detach an SR from its host through this PBD."),
    ("vbd-create", &["vm-uuid", "device"], &["vdi-uuid", "bootable", "type", "mode", "unpluggable"], 0, "Connect a disk or CD drive to a VM on device= (see the VM's allowed-VBD-devices); without vdi-uuid= the drive is empty."),
    ("vbd-plug", &["uuid"], &[], 0, "Hot-plug a disk into its running VM."),
    ("vbd-unplug", &["uuid"], &["timeout", "force"], 0, "Hot-unplug a disk from its running VM (--force if the guest does not let go)."),
    ("vbd-destroy", &["uuid"], &[], 0, "Remove a disk connection from its VM (the disk stays)."),
    ("network-create", &["name-label"], &["name-description", "MTU", "bridge", "managed"], STD, "Make a network; it gets a bridge of its own unless bridge= names one."),
    ("vif-create", &["device", "network-uuid", "vm-uuid"], &["mac"], STD, "Give a VM a network interface on device= (see the VM's allowed-VIF-devices); mac= aa:bb:cc:dd:ee:ff or random; without it the server derives one."),
    ("vif-plug", &["uuid"], &[], 0, "Hot-plug a network interface into its running VM."),
    ("vif-unplug", &["uuid"], &["force"], 0, "Hot-unplug a network interface from its running VM."),
    ("vif-destroy", &["uuid"], &[], STD, "Remove a network interface from its VM."),
    ("pif-scan", &["host-uuid"], &[], 0, "Find a host's NICs that have no PIF yet and make PIFs for them."),
    ("pif-plug", &["uuid"], &[], 0, "Bring a host interface up."),
    ("pif-unplug", &["uuid"], &[], 0, "Take a host interface down."),
    ("pif-reconfigure-ip", &["uuid", "mode"], &["IP", "netmask", "gateway", "DNS"], 0, "Set a PIF's IPv4 addressing: mode none, dhcp, or static with IP=, netmask= and optional gateway= and DNS=."),
    ("pif-reconfigure-ipv6", &["uuid", "mode"], &["IPv6", "gateway", "DNS"], 0, "Set a PIF's IPv6 addressing (mode none, dhcp, autoconf or static)."),
    ("host-management-reconfigure", &["pif-uuid"], &[], 0, "Move the host's management interface to this PIF."),
    ("pool-management-reconfigure", &["network-uuid"], &[], 0, "Move every host's management interface to its PIF on this network."),
    ("vlan-create", &["pif-uuid", "vlan", "network-uuid"], &[], 0, "Make a tagged interface on pif-uuid= with tag vlan= for network-uuid=."),
    ("bond-create", &["network-uuid", "pif-uuids"], &["mac", "mode", "properties:"], 0, "Bond the PIFs pif-uuids= (comma-separated) into one interface on network-uuid=; mode= and properties:<key>= tune it."),
    ("host-enable", &[], &["uuid", "host"], 0, "Let a host take new VMs again."),
    ("host-data-source-list", &[], &["uuid", "host", "host-uuid"], 0, "Show which statistics a host offers and which are being recorded."),
    ("host-data-source-query", &["data-source"], &["uuid", "host", "host-uuid"], 0, "Print the latest value of one of a host's statistics."),
    ("host-data-source-record", &["data-source"], &["uuid", "host", "host-uuid"], 0, "Start keeping one of a host's statistics in its RRD."),
    ("host-data-source-forget", &["data-source"], &["uuid", "host", "host-uuid"], 0, "Stop keeping one of a host's statistics and drop what was kept."),
    ("host-disable", &[], &["uuid", "host"], 0, "Stop a host from taking new VMs (the ones running stay)."),
    ("host-evacuate", &[], &["uuid", "host", "network-uuid"], 0, "Move every VM off a host."),
    ("task-cancel", &["uuid"], &[], 0, "Ask a task to stop and return at once."),
    ("event-wait", &["class"], &[], 0, "Block until an object of class= matches the field conditions given, then return."),
    ("pool-dump-database", &["file-name"], &[], 0, "Download a dump of the pool database."),
    ("pool-join", &["master-address", "master-username", "master-password"], &["force"], 0, "Make this host a member of the pool whose master is at master-address=."),
    ("pool-eject", &["host-uuid"], &["force"], 0, "Remove a member from the pool: it restarts as a pool of its own, and the data on its local SRs is lost."),
    ("pool-designate-new-master", &["host-uuid"], &[], 0, "Make another host of the pool its master."),
    ("pool-emergency-transition-to-master", &[], &[], 0, "Make this member the master of its pool when the master is gone."),
    ("pool-emergency-reset-master", &["master-address"], &[], 0, "Make this host follow the pool master at master-address= (after an emergency transition)."),
    ("pool-recover-slaves", &[], &[], 0, "Tell every host of the pool that does not follow this master yet to follow it; prints the ones told."),
    ("pool-restore-database", &["file-name"], &["dry-run", "force"], 0, "Restore a dump of the pool database to the server."),
    ("message-create", &["name", "body", "priority"], &["vm-uuid", "host-uuid", "sr-uuid", "pool-uuid"], 0, "Attach a message to one object, named by exactly one of vm-uuid=, host-uuid=, sr-uuid= or pool-uuid=."),
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
        add("list", &[], list_opt, format!("Show the {plural}; field=value arguments keep only the matching ones (map-field:key=value for a key of a map)."), Op::List, matches!(g.cli, "vm" | "network" | "sr"));
        add(
            "param-list",
            &["uuid"],
            own(&["database:"]),
            "Show every field of the object with this uuid.".into(),
            Op::ParamList,
            false,
        );
        add(
            "param-get",
            &["uuid", "param-name"],
            own(&["param-key", "database:"]),
            "Print one field of the object; param-key=<key> prints one key of a map field.".into(),
            Op::ParamGet,
            false,
        );
        if !settable.is_empty() {
            add("param-set", &["uuid"], settable, "Change writable fields: field=value, or map-field:key=value for one key of a map (an empty value empties the field).".into(), Op::ParamSet, false);
        }
        if addable {
            add(
                "param-add",
                &["uuid", "param-name"],
                own(&["param-key"]),
                "Add to a set field (param-key=<member>) or a map field (key=value arguments).".into(),
                Op::ParamAdd,
                false,
            );
            add(
                "param-remove",
                &["uuid", "param-name", "param-key"],
                vec![],
                "Take a member out of a set field, or a key out of a map field.".into(),
                Op::ParamRemove,
                false,
            );
        }
        if !clearable.is_empty() {
            add(
                "param-clear",
                &["uuid", "param-name"],
                vec![],
                format!("Empty one field (param-name is one of {}).", clearable.join(",")),
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
