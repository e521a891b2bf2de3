//! The per-class commands xapi generates from its record tables:
//! `<class>-list` (field, `map:key=value` and `set:contains=` filters,
//! `params=`), `-param-list`, `-param-get`, `-param-set`, `-param-add`,
//! `-param-remove`, `-param-clear`.

use super::records::{self, CliField, Kind};
use super::{fail, CliError, CliResult, Cx};
use crate::ApiError;
use model::schema::{ClassDef, Type};
use model::{Row, Value};
use std::sync::Arc;
use store::State;

/// A CLI class: its name, API class, implicit filters and default columns
/// (xapi's `gen_cmds`).
pub struct GenClass {
    pub cli: &'static str,
    pub class: &'static str,
    pub filters: &'static [(&'static str, &'static str)],
    pub defaults: &'static [&'static str],
}

pub static GEN: &[GenClass] = &[
    GenClass {
        cli: "pool",
        class: "pool",
        filters: &[],
        defaults: &["uuid", "name-label", "name-description", "master", "default-SR"],
    },
    GenClass {
        cli: "pif",
        class: "PIF",
        filters: &[],
        defaults: &["uuid", "device", "VLAN", "MAC", "network-uuid", "currently-attached", "host-uuid"],
    },
    GenClass { cli: "bond", class: "Bond", filters: &[], defaults: &["uuid", "master", "slaves"] },
    GenClass { cli: "vlan", class: "VLAN", filters: &[], defaults: &["uuid", "tagged-PIF", "untagged-PIF", "tag"] },
    GenClass {
        cli: "tunnel",
        class: "tunnel",
        filters: &[],
        defaults: &["uuid", "transport-PIF", "access-PIF", "status"],
    },
    GenClass { cli: "vif", class: "VIF", filters: &[], defaults: &["uuid", "device", "vm-uuid", "network-uuid"] },
    GenClass {
        cli: "network",
        class: "network",
        filters: &[],
        defaults: &["uuid", "name-label", "name-description", "bridge"],
    },
    GenClass {
        cli: "console",
        class: "console",
        filters: &[],
        defaults: &["uuid", "vm-uuid", "vm-name-label", "protocol", "location"],
    },
    GenClass {
        cli: "vm",
        class: "VM",
        filters: &[("is-a-template", "false")],
        defaults: &["name-label", "uuid", "power-state"],
    },
    GenClass {
        cli: "template",
        class: "VM",
        filters: &[("is-a-template", "true"), ("is-a-snapshot", "false")],
        defaults: &["name-label", "name-description", "uuid"],
    },
    GenClass {
        cli: "snapshot",
        class: "VM",
        filters: &[("is-a-snapshot", "true")],
        // xapi's list spells two of these with underscores, so they never match.
        defaults: &["name-label", "name-description", "uuid", "snapshot_of", "snapshot_time", "is-vmss-snapshot"],
    },
    GenClass { cli: "host", class: "host", filters: &[], defaults: &["uuid", "name-label", "name-description"] },
    GenClass {
        cli: "host-cpu",
        class: "host_cpu",
        filters: &[],
        defaults: &["uuid", "number", "vendor", "speed", "utilisation"],
    },
    GenClass {
        cli: "host-crashdump",
        class: "host_crashdump",
        filters: &[],
        defaults: &["uuid", "host", "timestamp", "size"],
    },
    GenClass {
        cli: "update",
        class: "pool_update",
        filters: &[],
        defaults: &[
            "uuid",
            "name-label",
            "name-description",
            "version",
            "installation-size",
            "hosts",
            "after-apply-guidance",
        ],
    },
    GenClass {
        cli: "vdi",
        class: "VDI",
        filters: &[],
        defaults: &["uuid", "name-label", "name-description", "virtual-size", "read-only", "sharable", "sr-uuid"],
    },
    GenClass {
        cli: "vbd",
        class: "VBD",
        filters: &[],
        defaults: &["uuid", "vm-uuid", "vm-name-label", "vdi-uuid", "device", "empty"],
    },
    GenClass {
        cli: "sr",
        class: "SR",
        filters: &[],
        defaults: &["uuid", "name-label", "name-description", "host", "type", "content-type"],
    },
    GenClass {
        cli: "sm",
        class: "SM",
        filters: &[],
        defaults: &["uuid", "type", "name-label", "name-description", "vendor", "copyright", "configuration"],
    },
    GenClass {
        cli: "pbd",
        class: "PBD",
        filters: &[],
        defaults: &["uuid", "host-uuid", "sr-uuid", "device-config", "currently-attached"],
    },
    GenClass {
        cli: "task",
        class: "task",
        filters: &[],
        defaults: &["uuid", "name-label", "name-description", "status", "progress"],
    },
    GenClass {
        cli: "subject",
        class: "subject",
        filters: &[],
        defaults: &["uuid", "subject-identifier", "other-config", "roles"],
    },
    GenClass { cli: "role", class: "role", filters: &[], defaults: &["uuid", "name", "description", "subroles"] },
    GenClass { cli: "message", class: "message", filters: &[], defaults: &[] },
    GenClass { cli: "secret", class: "secret", filters: &[], defaults: &[] },
    GenClass { cli: "appliance", class: "VM_appliance", filters: &[], defaults: &[] },
    GenClass {
        cli: "feature",
        class: "Feature",
        filters: &[],
        defaults: &["uuid", "name-label", "name-description", "enabled", "experimental", "version", "host-uuid"],
    },
    GenClass {
        cli: "certificate",
        class: "Certificate",
        filters: &[],
        defaults: &["uuid", "type", "name", "host", "not-before", "not-after", "fingerprint"],
    },
    GenClass { cli: "vtpm", class: "VTPM", filters: &[], defaults: &["uuid", "vm-uuid", "profile"] },
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    List,
    ParamList,
    ParamGet,
    ParamSet,
    ParamAdd,
    ParamRemove,
    ParamClear,
}

/// Parameters that are never filters (xapi's `stdparams`).
pub const STDPARAMS: &[&str] =
    &["server", "password", "port", "username", "minimal", "force", "multiple", "all", "message-priority", "trace"];

pub fn class_of(g: &GenClass) -> Option<&'static ClassDef> {
    model::schema::class(g.class)
}

/// xapi's `CLI_failed_to_find_param`.
pub fn missing(name: &str) -> CliError {
    CliError::Api(ApiError::Other { code: "Missing parameter".into(), params: vec![name.to_string()] })
}

/// Every row of a class in creation order (objects made together, like
/// the seeded templates, by name), so listings are stable.
pub fn rows(st: &State, c: &'static ClassDef) -> Vec<(String, Arc<Row>)> {
    let name = |row: &Row| row.get_by_name("name_label").and_then(Value::as_str).unwrap_or("").to_string();
    let mut v: Vec<(u64, String, String, Arc<Row>)> =
        st.table(c).rows.iter().map(|(r, e)| (e.created, name(&e.row), r.clone(), e.row.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)).then_with(|| a.2.cmp(&b.2)));
    v.into_iter().map(|(_, _, r, row)| (r, row)).collect()
}

/// Keep the rows matching one `key=value` filter (xapi's
/// `filter_records_on_fields`).
pub fn filter(
    st: &State,
    c: &'static ClassDef,
    rows: Vec<(String, Arc<Row>)>,
    k: &str,
    v: &str,
) -> CliResult<Vec<(String, Arc<Row>)>> {
    if rows.is_empty() {
        return Ok(rows);
    }
    if let Some(f) = records::lookup(c, k) {
        return Ok(rows.into_iter().filter(|(_, row)| records::get(st, row, f) == v).collect());
    }
    if let Some((name, key)) = k.split_once(':') {
        if let Some(f) = records::lookup(c, name) {
            match f.kind {
                Kind::Map => {
                    return Ok(rows
                        .into_iter()
                        .filter(|(_, row)| records::map_entries(st, row, f).iter().any(|(a, b)| a == key && b == v))
                        .collect())
                }
                Kind::Set if key == "contains" => {
                    return Ok(rows
                        .into_iter()
                        .filter(|(_, row)| records::set_members(st, row, f).iter().any(|m| m == v))
                        .collect())
                }
                _ => {}
            }
        }
    }
    Err(missing(k))
}

/// The fields to print for `params=` (record order kept).
pub fn select<'f>(fields: &'f [CliField], params: Option<&str>, defaults: &[&str]) -> Vec<&'f CliField> {
    let chosen: Option<Vec<&str>> = match params {
        Some("all") => None,
        Some(ps) => Some(ps.split(',').collect()),
        None if defaults.is_empty() => None,
        None => Some(defaults.to_vec()),
    };
    match chosen {
        None => fields.iter().collect(),
        Some(names) => fields.iter().filter(|f| names.contains(&f.name.as_str())).collect(),
    }
}

pub fn record(st: &State, row: &Row, fs: &[&CliField]) -> super::printer::Record {
    fs.iter().map(|f| records::labelled(st, row, f)).collect()
}

/// Find the object for `uuid=` as `get_by_uuid` would (UUID_INVALID otherwise).
pub async fn by_uuid(cx: &Cx<'_, '_>, c: &'static ClassDef, uuid: &str) -> CliResult<(String, Arc<Row>)> {
    {
        let st = cx.s.db.read();
        if let Some(r) = st.table(c).by_uuid(uuid) {
            if let Some(row) = st.get(c, r) {
                return Ok((r.to_string(), row.clone()));
            }
        }
    }
    let r = cx.call_str(&format!("{}.get_by_uuid", c.name), vec![Value::String(uuid.to_string())]).await?;
    let row = cx.s.row(c, &r)?;
    Ok((r, row))
}

/// A CLI argument as a value of an API type.
pub async fn parse_value(cx: &Cx<'_, '_>, name: &str, ty: &'static Type, s: &str) -> CliResult<Value> {
    Ok(match ty {
        Type::Int => {
            Value::Int(s.trim().parse().map_err(|_| CliError::Failure(format!("Parameter {name} must be an integer")))?)
        }
        Type::Float => Value::Float(
            model::typed::parse_float(s.trim())
                .ok_or_else(|| CliError::Failure(format!("Parameter {name} must be a floating-point number")))?,
        ),
        Type::Bool => match s.to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return fail(format!("Parameter {name} must be a boolean (true or false)")),
        },
        Type::Ref(target) => Value::String(ref_of(cx, target, s).await?),
        Type::Set(t) => {
            let mut out = Vec::new();
            for part in s.split(',').filter(|p| !p.is_empty()) {
                out.push(Box::pin(parse_value(cx, name, t, part)).await?);
            }
            Value::Array(out)
        }
        Type::Option(t) => Box::pin(parse_value(cx, name, t, s)).await?,
        _ => Value::String(s.to_string()),
    })
}

/// A ref from a uuid (or a ref, or empty for NULL).
pub async fn ref_of(cx: &Cx<'_, '_>, target: &str, s: &str) -> CliResult<String> {
    if s.is_empty() {
        return Ok(model::NULL_REF.to_string());
    }
    if s.starts_with("OpaqueRef:") {
        return Ok(s.to_string());
    }
    match model::schema::class(target) {
        Some(c) => Ok(by_uuid(cx, c, s).await?.0),
        None => Ok(s.to_string()),
    }
}

fn cls_field(c: &'static ClassDef, name: &str) -> CliResult<&'static CliField> {
    records::lookup(c, name).ok_or_else(|| missing(name))
}

pub async fn run(cx: &mut Cx<'_, '_>, op: Op, g: &'static GenClass) -> CliResult {
    let Some(c) = class_of(g) else { return fail(format!("class {} is not served", g.class)) };
    match op {
        Op::List => list(cx, g, c).await,
        Op::ParamList => {
            let (_, row) = by_uuid(cx, c, cx.params.reqd("uuid")?).await?;
            let rec = {
                let st = cx.s.db.read();
                let all: Vec<&CliField> = records::fields(c).iter().collect();
                record(&st, &row, &all)
            };
            cx.table(vec![rec]).await
        }
        Op::ParamGet => {
            let (_, row) = by_uuid(cx, c, cx.params.reqd("uuid")?).await?;
            let f = cls_field(c, cx.params.reqd("param-name")?)?;
            let out = {
                let st = cx.s.db.read();
                match (cx.params.get("param-key"), f.kind) {
                    (Some(key), Kind::Map) => {
                        match records::map_entries(&st, &row, f).into_iter().find(|(k, _)| k == key) {
                            Some((_, v)) => v,
                            None => return fail(format!("Key {key} not found in map")),
                        }
                    }
                    _ => records::get(&st, &row, f),
                }
            };
            cx.lines(vec![out]).await
        }
        Op::ParamSet => param_set(cx, c).await,
        Op::ParamAdd => param_add(cx, c).await,
        Op::ParamRemove => param_remove(cx, c).await,
        Op::ParamClear => param_clear(cx, c).await,
    }
}

async fn list(cx: &mut Cx<'_, '_>, g: &'static GenClass, c: &'static ClassDef) -> CliResult {
    let recs = {
        let st = cx.s.db.read();
        let all = rows(&st, c);
        let mut filters: Vec<(String, String)> =
            g.filters.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        filters.extend(
            cx.params
                .0
                .iter()
                .filter(|(k, _)| k != "params" && !STDPARAMS.contains(&k.as_str()) && !k.starts_with("database:"))
                .cloned(),
        );
        let mut selected = all.clone();
        for (k, v) in &filters {
            selected = filter(&st, c, selected, k, v)?;
        }
        if cx.params.flag("all") {
            selected = all;
        }
        let fs = select(records::fields(c), cx.params.get("params"), g.defaults);
        selected.iter().map(|(_, row)| record(&st, row, &fs)).collect::<Vec<_>>()
    };
    cx.table(recs).await
}

fn method(c: &ClassDef, prefix: &str, f: &CliField) -> String {
    format!("{}.{prefix}{}", c.name, c.fields[f.api_index()].name)
}

async fn param_set(cx: &mut Cx<'_, '_>, c: &'static ClassDef) -> CliResult {
    let (r, row) = by_uuid(cx, c, cx.params.reqd("uuid")?).await?;
    let sets: Vec<(String, String)> =
        cx.params.0.iter().filter(|(k, _)| k != "uuid" && !STDPARAMS.contains(&k.as_str())).cloned().collect();
    for (k, v) in sets {
        if records::lookup(c, &k).is_none() {
            if let Some((name, key)) = k.split_once(':') {
                let f = cls_field(c, name)?;
                if f.kind == Kind::Map {
                    if !f.writable {
                        return fail(format!("Map field '{name}' is read-only."));
                    }
                    let present = {
                        let st = cx.s.db.read();
                        records::map_entries(&st, &row, f).iter().any(|(a, _)| a == key)
                    };
                    let (rv, kv, vv) = (Value::String(r.clone()), Value::String(key.into()), Value::String(v));
                    if present {
                        cx.call(&method(c, "remove_from_", f), vec![rv.clone(), kv.clone()]).await?;
                    }
                    cx.call(&method(c, "add_to_", f), vec![rv, kv, vv]).await?;
                    continue;
                }
            }
        }
        let f = cls_field(c, &k)?;
        match f.kind {
            Kind::Set => return fail("Cannot param-set on set fields"),
            Kind::Map if f.writable => {
                return fail(format!("Field '{k}' is a map or set. use the 'name:key=value' syntax."))
            }
            _ if !f.writable => return fail(format!("Field '{k}' is read-only.")),
            _ => {}
        }
        let ty = c.fields[f.api_index()].ty;
        let val = if c.name == "VM" && MEMORY_FIELDS.contains(&k.as_str()) {
            // As xapi's records: memory sizes take units (512MiB).
            Value::Int(super::commands::bytes_of_string(&k, &v)?)
        } else {
            parse_value(cx, &k, ty, &v).await?
        };
        cx.call(&method(c, "set_", f), vec![Value::String(r.clone()), val]).await?;
    }
    Ok(())
}

/// VM fields whose param-set reads a size with units (xapi's records.ml).
const MEMORY_FIELDS: [&str; 4] = ["memory-static-max", "memory-dynamic-max", "memory-dynamic-min", "memory-static-min"];

fn member_type(c: &ClassDef, f: &CliField) -> &'static Type {
    match c.fields[f.api_index()].ty {
        Type::Set(t) => t,
        other => other,
    }
}

async fn param_add(cx: &mut Cx<'_, '_>, c: &'static ClassDef) -> CliResult {
    let (r, _) = by_uuid(cx, c, cx.params.reqd("uuid")?).await?;
    let f = cls_field(c, cx.params.reqd("param-name")?)?;
    match (f.kind, f.writable) {
        (Kind::Set, true) => {
            let Some(key) = cx.params.get("param-key").map(str::to_string) else {
                return fail(
                    "When adding a key to a set, use the syntax: *-param-add param-name=<name> param-key=<key>",
                );
            };
            let v = parse_value(cx, "param-key", member_type(c, f), &key).await?;
            cx.call(&method(c, "add_", f), vec![Value::String(r), v]).await?;
        }
        (Kind::Map, true) => {
            let kvs: Vec<(String, String)> = cx
                .params
                .0
                .iter()
                .filter(|(k, _)| {
                    !["uuid", "param-name", "param-key"].contains(&k.as_str()) && !STDPARAMS.contains(&k.as_str())
                })
                .cloned()
                .collect();
            for (k, v) in kvs {
                cx.call(&method(c, "add_to_", f), vec![Value::String(r.clone()), Value::String(k), Value::String(v)])
                    .await?;
            }
        }
        (Kind::Set | Kind::Map, false) => return fail("Parameter is read-only"),
        _ => return fail("Can only add to parameters of type Set or Map"),
    }
    Ok(())
}

async fn param_remove(cx: &mut Cx<'_, '_>, c: &'static ClassDef) -> CliResult {
    let (r, row) = by_uuid(cx, c, cx.params.reqd("uuid")?).await?;
    let f = cls_field(c, cx.params.reqd("param-name")?)?;
    let key = cx.params.reqd("param-key")?.to_string();
    match (f.kind, f.writable) {
        (Kind::Set, true) => {
            let raw = {
                let st = cx.s.db.read();
                let shown = records::set_members(&st, &row, f);
                let raws = row.get(f.api_index()).as_array().map(<[Value]>::to_vec).unwrap_or_default();
                shown.iter().position(|m| *m == key).and_then(|i| raws.get(i).cloned())
            };
            let Some(v) = raw else { return fail(format!("Key {key} is not in the set")) };
            cx.call(&method(c, "remove_", f), vec![Value::String(r), v]).await?;
        }
        (Kind::Map, true) => {
            let present = {
                let st = cx.s.db.read();
                records::map_entries(&st, &row, f).iter().any(|(a, _)| *a == key)
            };
            if !present {
                return fail(format!("Key {key} is not in map"));
            }
            cx.call(&method(c, "remove_from_", f), vec![Value::String(r), Value::String(key)]).await?;
        }
        (Kind::Set | Kind::Map, false) => return fail("Cannot remove parameters from read-only map"),
        _ => return fail("Can only remove from parameters of type Set or Map"),
    }
    Ok(())
}

async fn param_clear(cx: &mut Cx<'_, '_>, c: &'static ClassDef) -> CliResult {
    let (r, row) = by_uuid(cx, c, cx.params.reqd("uuid")?).await?;
    let f = cls_field(c, cx.params.reqd("param-name")?)?;
    let rv = Value::String(r);
    match (f.kind, f.writable) {
        (Kind::Set, true) => {
            for v in row.get(f.api_index()).as_array().map(<[Value]>::to_vec).unwrap_or_default() {
                cx.call(&method(c, "remove_", f), vec![rv.clone(), v]).await?;
            }
        }
        (Kind::Map, true) => {
            let keys: Vec<String> = row
                .get(f.api_index())
                .as_struct()
                .map(|m| m.iter().map(|(k, _)| k.clone()).collect())
                .unwrap_or_default();
            for k in keys {
                cx.call(&method(c, "remove_from_", f), vec![rv.clone(), Value::String(k)]).await?;
            }
        }
        (Kind::Normal, true) => {
            let ty = c.fields[f.api_index()].ty;
            let v = match parse_value(cx, &f.name, ty, "").await {
                Ok(v) => v,
                Err(_) => return fail("Cannot clear this parameter"),
            };
            if cx.call(&method(c, "set_", f), vec![rv, v]).await.is_err() {
                return fail("Cannot clear this parameter");
            }
        }
        _ => return fail("Can only clear RW parameters"),
    }
    Ok(())
}
