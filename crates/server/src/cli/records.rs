//! The CLI's view of a class: xapi's record field names (hyphenated API
//! names, with its renames), each field's kind and writability, and how a
//! stored value is shown (refs as uuids, maps as `k: v; k2: v2`, sets as
//! `a; b`).

use model::schema::{ClassDef, Type, CLASSES};
use model::{Row, Value};
use std::collections::HashMap;
use std::sync::OnceLock;
use store::State;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Normal,
    Map,
    Set,
}

/// Where a CLI field's value comes from.
#[derive(Clone, Copy, Debug)]
pub enum Src {
    Field(usize),
    /// The uuid of the object a ref field points at (`vm-uuid` for VIF.VM).
    RefUuid(usize),
    /// Its name label (`vm-name-label`).
    RefName(usize),
    /// SR `host`: the name of the host of its only PBD, or `<shared>`.
    SrHost(usize),
}

#[derive(Clone, Debug)]
pub struct CliField {
    pub name: String,
    pub kind: Kind,
    pub src: Src,
    /// `set_<f>` exists (normal fields), `add_to_<f>` (maps), `add_<f>` (sets).
    pub writable: bool,
    pub deprecated: bool,
}

impl CliField {
    /// The API field behind this CLI field.
    pub fn api_index(&self) -> usize {
        match self.src {
            Src::Field(i) | Src::RefUuid(i) | Src::RefName(i) | Src::SrHost(i) => i,
        }
    }
}

/// xapi's CLI names that are not simply the hyphenated API name.
fn rename(class: &str, field: &str) -> Option<&'static str> {
    Some(match (class, field) {
        ("VM", "domid") => "dom-id",
        ("VM", "suspend_VDI") => "suspend-VDI-uuid",
        ("VM", "suspend_SR") => "suspend-SR-uuid",
        ("VM", "consoles") => "console-uuids",
        ("VM", "last_booted_record") => "last-boot-record",
        ("VM", "VTPMs") => "vtpms",
        ("PIF", "VLAN_master_of") => "vlan-master-of",
        ("PIF", "VLAN_slave_of") => "vlan-slave-of",
        ("PIF", "ip_configuration_mode") => "IP-configuration-mode",
        ("PIF", "ipv6_configuration_mode") => "IPv6-configuration-mode",
        ("PIF", "ipv6_gateway") => "IPv6-gateway",
        ("network", "VIFs") => "VIF-uuids",
        ("network", "PIFs") => "PIF-uuids",
        ("VDI", "VBDs") => "vbd-uuids",
        ("VDI", "crash_dumps") => "crashdump-uuids",
        ("host", "resident_VMs") => "resident-vms",
        ("host", "control_domain") => "control-domain-uuid",
        ("host", "suspend_image_sr") => "suspend-image-sr-uuid",
        ("host", "crash_dump_sr") => "crash-dump-sr-uuid",
        ("message", "cls") => "class",
        ("role", "name_label") => "name",
        ("role", "name_description") => "description",
        ("task", "subtask_of") => "subtask_of",
        ("task", "error_info") => "error_info",
        ("task", "allowed_operations") => "allowed_operations",
        ("task", "current_operations") => "current_operations",
        _ => return None,
    })
}

/// Ref fields xapi shows as `<x>-uuid` plus `<x>-name-label`: the owning
/// object of a device-like record (VIF.VM, VBD.VDI, PBD.SR, …).
fn owner_ref(class: &str, field: &str, target: &str) -> bool {
    field.eq_ignore_ascii_case(target)
        && matches!(
            class,
            "VIF" | "VBD" | "PBD" | "PIF" | "VDI" | "console" | "VTPM" | "host_cpu" | "host_crashdump" | "Feature"
        )
}

fn build(c: &'static ClassDef) -> Vec<CliField> {
    let mut out = Vec::new();
    for (i, f) in c.fields.iter().enumerate() {
        let setter = |p: &str| c.message(&format!("{p}{}", f.name)).is_some();
        let deprecated = f.life == model::schema::Life::Deprecated;
        let (kind, writable) = match f.ty {
            Type::Map(..) => (Kind::Map, setter("add_to_")),
            Type::Set(_) => (Kind::Set, setter("add_")),
            _ => (Kind::Normal, setter("set_")),
        };
        if let Type::Ref(target) = f.ty {
            if owner_ref(c.name, f.name, target) {
                let lc = target.to_ascii_lowercase().replace('_', "-");
                out.push(CliField {
                    name: format!("{lc}-uuid"),
                    kind,
                    src: Src::RefUuid(i),
                    writable: false,
                    deprecated,
                });
                let has_name = model::schema::class(target).is_some_and(|t| t.field_index("name_label").is_some());
                if has_name {
                    out.push(CliField {
                        name: format!("{lc}-name-label"),
                        kind,
                        src: Src::RefName(i),
                        writable: false,
                        deprecated,
                    });
                }
                continue;
            }
        }
        let name = rename(c.name, f.name).map(str::to_string).unwrap_or_else(|| f.name.replace('_', "-"));
        out.push(CliField { name, kind, src: Src::Field(i), writable, deprecated });
    }
    if c.name == "SR" {
        if let Some(i) = c.field_index("PBDs") {
            let f = CliField {
                name: "host".into(),
                kind: Kind::Normal,
                src: Src::SrHost(i),
                writable: false,
                deprecated: false,
            };
            let at = out.iter().position(|f| f.name == "allowed-operations").unwrap_or(out.len());
            out.insert(at, f);
        }
    }
    // xapi's records lead with uuid, name-label, name-description.
    for (at, lead) in ["uuid", "name-label", "name-description"].iter().enumerate() {
        if let Some(p) = out.iter().position(|f| f.name == *lead) {
            let u = out.remove(p);
            out.insert(at.min(out.len()), u);
        }
    }
    out
}

/// The CLI fields of a class, in record order.
pub fn fields(c: &'static ClassDef) -> &'static [CliField] {
    static T: OnceLock<HashMap<&'static str, Vec<CliField>>> = OnceLock::new();
    let t = T.get_or_init(|| CLASSES.iter().map(|c| (c.name, build(c))).collect());
    t.get(c.name).map(Vec::as_slice).unwrap_or(&[])
}

pub fn lookup(c: &'static ClassDef, name: &str) -> Option<&'static CliField> {
    fields(c).iter().find(|f| f.name == name)
}

/// The uuid of the object `r` (of class `target`), as xapi shows refs.
pub fn ref_uuid(st: &State, target: &str, r: &str) -> String {
    model::schema::class(target)
        .and_then(|c| st.get(c, r))
        .and_then(|row| row.get_by_name("uuid").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| "<not in database>".to_string())
}

fn ref_name(st: &State, target: &str, r: &str) -> String {
    model::schema::class(target)
        .and_then(|c| st.get(c, r))
        .and_then(|row| row.get_by_name("name_label").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| "<not in database>".to_string())
}

/// One value as text.
pub fn show(st: &State, ty: &Type, v: &Value, lower: bool) -> String {
    match (ty, v.resolve()) {
        (Type::Ref(t), Value::String(r)) => ref_uuid(st, t, r),
        (Type::Set(t), Value::Array(a)) => a.iter().map(|x| show(st, t, x, lower)).collect::<Vec<_>>().join("; "),
        (Type::Map(kt, vt), Value::Struct(m)) => m
            .iter()
            .map(|(k, x)| format!("{}: {}", show(st, kt, &Value::String(k.clone()), lower), show(st, vt, x, lower)))
            .collect::<Vec<_>>()
            .join("; "),
        (Type::Option(t), v) if *v != Value::Nil => show(st, t, v, lower),
        (Type::Enum(_), Value::String(s)) if lower => s.to_ascii_lowercase(),
        (_, Value::String(s)) => s.clone(),
        (_, Value::Int(i)) => i.to_string(),
        (_, Value::I32(i)) => i.to_string(),
        (_, Value::Float(f)) => format_float(*f),
        (_, Value::Bool(b)) => b.to_string(),
        (_, Value::DateTime(d)) => d.to_string(),
        (_, Value::Nil) => String::new(),
        (_, other) => wire::xmlrpc::value_as_text(other),
    }
}

/// Floats as OCaml's `string_of_float` writes them (`1.`, `0.5`).
fn format_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}.", f as i64)
    } else {
        format!("{f}")
    }
}

/// A field's value in a stored row.
pub fn get(st: &State, row: &Row, f: &CliField) -> String {
    let c = row.class;
    let def = &c.fields[f.api_index()];
    let v = row.get(f.api_index());
    match f.src {
        Src::Field(_) => show(st, def.ty, v, def.name == "power_state"),
        Src::SrHost(_) => {
            let pbds = v.as_array().unwrap_or(&[]);
            if pbds.len() > 1 {
                return "<shared>".to_string();
            }
            let host = pbds
                .first()
                .and_then(Value::as_str)
                .and_then(|p| model::schema::class("PBD").and_then(|c| st.get(c, p)))
                .and_then(|row| row.get_by_name("host").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_default();
            ref_name(st, "host", &host)
        }
        Src::RefUuid(_) | Src::RefName(_) => {
            let (Type::Ref(t), Some(r)) = (def.ty, v.as_str()) else { return String::new() };
            if matches!(f.src, Src::RefUuid(_)) {
                ref_uuid(st, t, r)
            } else {
                ref_name(st, t, r)
            }
        }
    }
}

/// Map members of a map field (for `map:key=value` filters and param-get).
pub fn map_entries(st: &State, row: &Row, f: &CliField) -> Vec<(String, String)> {
    let def = &row.class.fields[f.api_index()];
    match (def.ty, row.get(f.api_index()).resolve()) {
        (Type::Map(kt, vt), Value::Struct(m)) => {
            m.iter().map(|(k, x)| (show(st, kt, &Value::String(k.clone()), false), show(st, vt, x, false))).collect()
        }
        _ => Vec::new(),
    }
}

/// Members of a set field as text.
pub fn set_members(st: &State, row: &Row, f: &CliField) -> Vec<String> {
    let def = &row.class.fields[f.api_index()];
    match (def.ty, row.get(f.api_index()).resolve()) {
        (Type::Set(t), Value::Array(a)) => a.iter().map(|x| show(st, t, x, false)).collect(),
        _ => Vec::new(),
    }
}

/// The `(name (suffix), value)` pair printed for a field.
pub fn labelled(st: &State, row: &Row, f: &CliField) -> (String, String) {
    let suffix = match (f.kind, f.writable) {
        (Kind::Set, false) => " (SRO)",
        (Kind::Set, true) => " (SRW)",
        (Kind::Map, false) => " (MRO)",
        (Kind::Map, true) => " (MRW)",
        (Kind::Normal, false) => " ( RO)",
        (Kind::Normal, true) => " ( RW)",
    };
    let dep = if f.deprecated { " [DEPRECATED]" } else { "" };
    (format!("{}{suffix}{dep}", f.name), get(st, row, f))
}
