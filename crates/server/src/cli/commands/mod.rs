//! The explicit commands, by area, and what they share: VM selectors,
//! `--multiple` handling, constructor records and HTTP transfers.

mod host;
mod net;
mod storage;
mod transfer;
mod vm;

use super::generic::{self, STDPARAMS};
use super::{fail, CliError, CliResult, Cx};
use model::schema::{ClassDef, Qual};
use model::schema::{CLASS_HOST, CLASS_POOL, CLASS_SR, CLASS_VM};
use model::Value;

pub async fn run(cx: &mut Cx<'_, '_>, name: &str) -> CliResult {
    match name {
        n if n.starts_with("vm-") || n == "snapshot-revert" || n == "console" => vm::run(cx, n).await,
        n if ["vdi-", "sr-", "pbd-", "vbd-"].iter().any(|p| n.starts_with(p)) => storage::run(cx, n).await,
        n if ["network-", "vif-", "pif-", "vlan-", "bond-"].iter().any(|p| n.starts_with(p)) => net::run(cx, n).await,
        n => host::run(cx, n).await,
    }
}

pub fn class(name: &str) -> CliResult<&'static ClassDef> {
    model::schema::class(name).ok_or_else(|| CliError::Failure(format!("class {name} is not served")))
}

pub fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

/// A constructor record: the given members, every other constructor field
/// at its default.
pub fn ctor(c: &'static ClassDef, given: Vec<(&str, Value)>) -> Value {
    let mut out: Vec<(String, Value)> = Vec::new();
    for f in c.fields {
        if f.qual == Qual::RoRun {
            continue;
        }
        let v = given.iter().find(|(k, _)| *k == f.name).map(|(_, v)| v.clone()).unwrap_or_else(|| f.default_value());
        out.push((f.name.to_string(), v));
    }
    Value::Struct(out)
}

/// `map:key=value` arguments as a map value.
pub fn map_arg(cx: &Cx<'_, '_>, name: &str) -> Value {
    Value::Struct(cx.params.map(name).into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

/// The uuid of an object.
pub fn uuid_of(cx: &Cx<'_, '_>, c: &'static ClassDef, r: &str) -> String {
    cx.s.db
        .read()
        .get(c, r)
        .and_then(|row| row.get_by_name("uuid").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default()
}

pub fn field_str(cx: &Cx<'_, '_>, c: &'static ClassDef, r: &str, f: &str) -> String {
    cx.s.db
        .read()
        .get(c, r)
        .and_then(|row| row.get_by_name(f).and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default()
}

/// Sizes as xapi's `Record_util.bytes_of_string` reads them: an integer,
/// optionally a space, then a unit in any case: b/bytes, k/kb/kib, m/mb/mib,
/// g/gb/gib, t/tb/tib, all powers of 1024 (`kb` too, as xapi); negative
/// sizes are refused.
pub fn bytes_of_string(name: &str, s: &str) -> CliResult<i64> {
    let bad = || {
        CliError::Failure(format!(
            "Failed to parse field '{name}': expecting an integer (possibly with suffix KiB, MiB, GiB, TiB), got '{s}'"
        ))
    };
    let t = s.trim();
    let digits_from = usize::from(t.starts_with(['-', '+']));
    let split = t[digits_from..].find(|c: char| !c.is_ascii_digit()).map_or(t.len(), |i| i + digits_from);
    let (num, unit) = t.split_at(split);
    let n: i64 = num.parse().map_err(|_| bad())?;
    if n < 0 {
        return Err(bad());
    }
    let shift = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" | "bytes" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad()),
    };
    n.checked_mul(1 << shift).ok_or_else(bad)
}

/// A random locally administered unicast MAC, what the real xe makes of
/// `mac=random` (Record_util.random_mac_local).
pub fn random_mac_local() -> String {
    let u = model::new_uuid().replace('-', "");
    let mut b = [0u8; 6];
    for (i, x) in b.iter_mut().enumerate() {
        *x = u8::from_str_radix(u.get(2 * i..2 * i + 2).unwrap_or("00"), 16).unwrap_or(0);
    }
    // Bit 1 set: locally administered; bit 0 clear: unicast.
    b[0] = (b[0] | 0x02) & !0x01;
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":")
}

/// The VMs the selector arguments pick (xapi's `select_vms`): filters on
/// any VM field, `vm=` matching uuid or name, never templates or dom0
/// unless asked.
pub fn select_vms(cx: &Cx<'_, '_>, include_templates: bool, ignore: &[&str]) -> CliResult<Vec<(String, String)>> {
    let c = &CLASS_VM;
    let st = cx.s.db.read();
    let mut rows = generic::rows(&st, c);
    let mut filters: Vec<(String, String)> = vec![("is-control-domain".into(), "false".into())];
    if !include_templates {
        filters.push(("is-a-template".into(), "false".into()));
    }
    for (k, v) in &cx.params.0 {
        let stem = k.split(':').next().unwrap_or(k);
        if k == "vm" {
            rows.retain(|(_, row)| {
                row.get_by_name("uuid").and_then(Value::as_str) == Some(v.as_str())
                    || row.get_by_name("name_label").and_then(Value::as_str) == Some(v.as_str())
            });
        } else if !STDPARAMS.contains(&stem) && !ignore.contains(&stem) {
            filters.push((k.clone(), v.clone()));
        }
    }
    for (k, v) in &filters {
        rows = generic::filter(&st, c, rows, k, v).map_err(|e| match e {
            CliError::Api(_) => CliError::Failure(format!(
                "Parameter '{k}' is not a field of the VM class. Failed to select VM for operation."
            )),
            e => e,
        })?;
    }
    Ok(rows
        .into_iter()
        .map(|(r, row)| (r, row.get_by_name("uuid").and_then(Value::as_str).unwrap_or_default().to_string()))
        .collect())
}

/// Check the selection's size as `do_vm_op` does.
pub fn one_or_many(vms: &[(String, String)], cx: &Cx<'_, '_>, multiple_ok: bool) -> CliResult {
    match vms.len() {
        0 => fail("No matching VMs found"),
        1 => Ok(()),
        _ if multiple_ok && cx.params.flag("multiple") => Ok(()),
        _ if !multiple_ok => fail("Multiple matches VMs found. Operation can only be performed on one VM at a time"),
        _ => fail("Multiple matches VMs found. --multiple required to complete the operation"),
    }
}

/// The text a failure gets in a `--multiple` summary.
pub fn describe(cx: &Cx<'_, '_>, e: &CliError) -> String {
    match e {
        CliError::Api(a) => match super::friendly(&cx.s, a.code(), &a.params()) {
            Some((doc, lines)) => format!("{doc}\n{}", lines.join("\n")),
            None => format!("Server error: {} [{}]", a.code(), a.params().join("; ")),
        },
        CliError::Failure(m) | CliError::Cli(m) => m.clone(),
        other => format!("{other:?}"),
    }
}

/// Run `method(vm, extra…)` on every selected VM.
pub async fn vm_op(cx: &mut Cx<'_, '_>, method: &str, extra: Vec<Value>, ignore: &[&str]) -> CliResult {
    let vms = select_vms(cx, false, ignore)?;
    one_or_many(&vms, cx, true)?;
    let mut fails = Vec::new();
    for (r, uuid) in &vms {
        let mut args = vec![s(r.clone())];
        args.extend(extra.iter().cloned());
        if let Err(e) = cx.call(method, args).await {
            if vms.len() == 1 {
                return Err(e);
            }
            fails.push((uuid.clone(), describe(cx, &e)));
        }
    }
    if fails.is_empty() {
        Ok(())
    } else {
        Err(CliError::Multiple(fails))
    }
}

/// A host picked by the first of `keys` given (uuid, name or hostname), or
/// the only one.
pub fn select_host(cx: &Cx<'_, '_>, keys: &[&str]) -> CliResult<String> {
    let c = &CLASS_HOST;
    let st = cx.s.db.read();
    let want = keys.iter().find_map(|k| cx.params.get(k));
    let hosts: Vec<String> = generic::rows(&st, c)
        .into_iter()
        .filter(|(_, row)| match want {
            None => true,
            Some(w) => {
                ["uuid", "name_label", "hostname"].iter().any(|f| row.get_by_name(f).and_then(Value::as_str) == Some(w))
            }
        })
        .map(|(r, _)| r)
        .collect();
    match hosts.as_slice() {
        [h] => Ok(h.clone()),
        [] => fail("No matching hosts found"),
        _ => fail("Multiple matching hosts found"),
    }
}

/// The pool's default SR, if it is set and exists.
pub fn default_sr(cx: &Cx<'_, '_>) -> Option<String> {
    let pool = &CLASS_POOL;
    let sr = &CLASS_SR;
    let st = cx.s.db.read();
    let r = st.get(pool, &cx.s.pool)?.get_by_name("default_SR")?.as_str()?.to_string();
    st.get(sr, &r).map(|_| r)
}

/// `sr-uuid=` (or the pool default).
pub async fn sr_arg(cx: &Cx<'_, '_>) -> CliResult<String> {
    match cx.params.get("sr-uuid") {
        Some(u) => Ok(generic::by_uuid(cx, &CLASS_SR, u).await?.0),
        None => default_sr(cx).ok_or_else(|| CliError::Cli("No SR specified and Pool default SR is null".into())),
    }
}

/// `<vm|host|sr>-data-source-list/query/record/forget` for one object: the
/// API's data-source messages, printed as xapi's CLI does.
pub async fn data_source(cx: &mut Cx<'_, '_>, class_name: &str, r: String, verb: &str) -> CliResult {
    let call = |m: &str| format!("{class_name}.{m}");
    match verb {
        "list" => {
            let v = cx.call(&call("get_data_sources"), vec![s(r)]).await?;
            let fmt = |x: Option<&Value>| match x {
                Some(Value::Float(f)) => format!("{f:.3}"),
                Some(Value::Int(i)) => format!("{:.3}", *i as f64),
                Some(Value::String(t)) => t.clone(),
                Some(Value::Bool(b)) => b.to_string(),
                _ => String::new(),
            };
            let recs = v
                .as_array()
                .unwrap_or(&[])
                .iter()
                .map(|d| {
                    ["name_label", "name_description", "enabled", "standard", "min", "max", "units"]
                        .iter()
                        .map(|k| (format!("{k} ( RO)"), fmt(d.member(k))))
                        .collect()
                })
                .collect();
            cx.table(recs).await
        }
        _ => {
            let ds = cx.params.reqd("data-source")?.to_string();
            let v = cx
                .call(
                    &call(&format!("{verb}_data_source{}", if verb == "forget" { "_archives" } else { "" })),
                    vec![s(r), s(ds)],
                )
                .await?;
            match v {
                Value::Float(f) => cx.lines(vec![format!("{f:.3}")]).await,
                _ => Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_xapi_reads_them() {
        let ok = |s: &str| bytes_of_string("virtual-size", s).ok();
        assert_eq!(ok("1GiB"), Some(1 << 30));
        assert_eq!(ok("512MiB"), Some(512 << 20));
        assert_eq!(ok("512 mib"), Some(512 << 20));
        assert_eq!(ok("10G"), Some(10 << 30));
        assert_eq!(ok("4kb"), Some(4096), "xapi's kb is 1024");
        assert_eq!(ok("7"), Some(7));
        assert_eq!(ok("7b"), Some(7));
        assert_eq!(ok("7 bytes"), Some(7));
        assert_eq!(ok("2TiB"), Some(2 << 40));
        assert_eq!(ok("-1"), None);
        assert_eq!(ok("1PiB"), None);
        assert_eq!(ok("GiB"), None);
        assert_eq!(ok("99999999999TiB"), None);
        match bytes_of_string("virtual-size", "lots") {
            Err(CliError::Failure(m)) => assert_eq!(
                m,
                "Failed to parse field 'virtual-size': expecting an integer (possibly with suffix KiB, MiB, GiB, TiB), got 'lots'"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn random_macs_are_local_unicast() {
        let a = random_mac_local();
        assert_eq!(a.len(), 17);
        let first = u8::from_str_radix(&a[..2], 16).unwrap();
        assert_eq!(first & 0x03, 0x02, "{a}");
        assert_ne!(a, random_mac_local());
    }
}
