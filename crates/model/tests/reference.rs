//! Compares our datamodel with the reference description of the real API
//! (`../shared/reference/xenapi.json`, or `$XAPI_REFERENCE_JSON`), class by class.
//! Skips cleanly when the reference is not present.

use model::schema::{self, Life, MsgKind, Qual, Type, CLASSES};
use serde_json::Value as J;
use std::path::PathBuf;

fn reference() -> Option<Vec<J>> {
    let path = std::env::var("XAPI_REFERENCE_JSON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/xenapi.json"));
    let text = std::fs::read_to_string(&path).ok()?;
    match serde_json::from_str(&text) {
        Ok(J::Array(a)) => Some(a),
        _ => panic!("{} is not a JSON array", path.display()),
    }
}

/// Our type in the reference's spelling.
fn ref_ty(t: &Type) -> String {
    match t {
        Type::String => "string".into(),
        Type::Int => "int".into(),
        Type::Float => "float".into(),
        Type::Bool => "bool".into(),
        Type::DateTime => "datetime".into(),
        Type::Enum(e) => format!("enum {}", e.name),
        Type::Ref(c) => format!("{c} ref"),
        Type::Record(c) if *c == "any" => "<class> record".into(),
        Type::Record(c) if *c == "event_batch" => "an event batch".into(),
        Type::Record(c) => format!("{c} record"),
        Type::Set(t) => format!("{} set", ref_ty(t)),
        Type::Option(t) => format!("{} option", ref_ty(t)),
        Type::Map(k, v) => format!("({} -> {}) map", ref_ty(k), ref_ty(v)),
    }
}

fn life(j: &J) -> Life {
    match j["lifecycle"]["state"].as_str() {
        Some("Removed_s") => Life::Removed,
        Some("Deprecated_s") => Life::Deprecated,
        Some("Prototyped_s") => Life::Prototyped,
        _ => Life::Published,
    }
}

/// Reference default spellings, normalised to our values' text form.
fn norm_default(s: &str) -> String {
    match s {
        "Null" => "OpaqueRef:NULL".into(),
        _ => s.replace(" -> ", ":").replace("\"", ""),
    }
}

fn our_default(f: &model::FieldDef) -> Option<String> {
    use schema::Default as D;
    f.default.map(|d| match d {
        D::Str(s) => s.to_string(),
        D::Int(i) => i.to_string(),
        D::Float(x) => format!("{x}").trim_end_matches('0').to_string(),
        D::Bool(b) => b.to_string(),
        D::DateTime(_) => model::DateTime::utc(0).to_string(),
        D::NullRef => "OpaqueRef:NULL".into(),
        D::Set(items) => format!("{{{}}}", items.join(", ")),
        D::IntSet(items) => format!("{{{}}}", items.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")),
        D::Map(kv) => format!("{{{}}}", kv.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(", ")),
    })
}

#[test]
fn datamodel_matches_reference() {
    let Some(reference) = reference() else {
        // CI always has shared/ beside the clone: a missing file there is a
        // broken set-up, not a reason to pass without checking.
        assert!(std::env::var_os("CI").is_none(), "reference xenapi.json not found (CI is set)");
        eprintln!("reference xenapi.json not present; skipping");
        return;
    };
    let mut problems = Vec::new();
    for ours in CLASSES {
        let Some(theirs) = reference.iter().find(|c| c["name"] == ours.name) else {
            problems.push(format!("class {} is not in the reference", ours.name));
            continue;
        };
        let cname = ours.name;
        // Fields: every reference field, same type, qualifier, default and state; nothing extra.
        let tf = theirs["fields"].as_array().cloned().unwrap_or_default();
        for f in &tf {
            let name = f["name"].as_str().unwrap_or("");
            let Some(of) = ours.field(name) else {
                problems.push(format!("{cname}.{name}: missing field"));
                continue;
            };
            if ref_ty(of.ty) != f["type"] {
                problems.push(format!("{cname}.{name}: type {} vs {}", ref_ty(of.ty), f["type"]));
            }
            let q = match of.qual {
                Qual::Rw => "RW",
                Qual::RoCtor => "RO/constructor",
                Qual::RoRun => "RO/runtime",
            };
            if q != f["qualifier"] {
                problems.push(format!("{cname}.{name}: qualifier {q} vs {}", f["qualifier"]));
            }
            let td = f.get("default").and_then(J::as_str).map(norm_default);
            if td != our_default(of) {
                let as_f = |s: &str| s.parse::<f64>().ok();
                let ok = matches!((&td, of.default), (Some(a), Some(schema::Default::Float(b))) if as_f(a) == Some(*b));
                if !ok {
                    problems.push(format!("{cname}.{name}: default {:?} vs {td:?}", our_default(of)));
                }
            }
            if life(f) != of.life {
                problems.push(format!("{cname}.{name}: lifecycle {:?} vs {:?}", of.life, life(f)));
            }
        }
        for of in ours.fields {
            if !tf.iter().any(|f| f["name"] == of.name) {
                problems.push(format!("{cname}.{}: field not in the reference", of.name));
            }
        }
        // Enums defined on this class.
        for e in theirs["enums"].as_array().cloned().unwrap_or_default() {
            let name = e["name"].as_str().unwrap_or("");
            match schema::ENUMS.iter().find(|x| x.name == name) {
                None => problems.push(format!("{cname}: enum {name} missing")),
                Some(oe) => {
                    let tv: Vec<&str> =
                        e["values"].as_array().into_iter().flatten().filter_map(|v| v["name"].as_str()).collect();
                    let ov: Vec<&str> = oe.values.iter().map(|v| v.0).collect();
                    if tv != ov {
                        problems.push(format!("enum {name}: values {ov:?} vs {tv:?}"));
                    }
                }
            }
        }
        // Messages: same names, params (order and types), result, roles, errors, state.
        let tm = theirs["messages"].as_array().cloned().unwrap_or_default();
        for m in &tm {
            let name = m["name"].as_str().unwrap_or("");
            let Some(om) = ours.message(name) else {
                problems.push(format!("{cname}.{name}: missing message"));
                continue;
            };
            let tparams: Vec<(String, String)> = m["params"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| !(p["name"] == "session_id" && p["type"] == "session ref"))
                .map(|p| (p["name"].as_str().unwrap_or("").to_string(), p["type"].as_str().unwrap_or("").to_string()))
                .collect();
            let oparams: Vec<(String, String)> = om.params.iter().map(|p| (p.name.to_string(), ref_ty(p.ty))).collect();
            if tparams != oparams {
                problems.push(format!("{cname}.{name}: params {oparams:?} vs {tparams:?}"));
            }
            let tres = m["result"][0].as_str().unwrap_or("");
            let ores = om.result.map(ref_ty).unwrap_or_else(|| "void".into());
            if tres != ores {
                problems.push(format!("{cname}.{name}: result {ores} vs {tres}"));
            }
            let troles: Vec<&str> = m["roles"].as_array().into_iter().flatten().filter_map(J::as_str).collect();
            if troles != om.roles.names() {
                problems.push(format!("{cname}.{name}: roles {:?} vs {troles:?}", om.roles.names()));
            }
            let mut terrs: Vec<&str> =
                m["errors"].as_array().into_iter().flatten().filter_map(|e| e["name"].as_str()).collect();
            let mut oerrs: Vec<&str> = om.errors.to_vec();
            terrs.sort();
            oerrs.sort();
            if terrs != oerrs {
                problems.push(format!("{cname}.{name}: errors {oerrs:?} vs {terrs:?}"));
            }
            if m["implicit"].as_bool() == Some(true)
                && om.kind == MsgKind::Explicit
                && !matches!(cname, "message" | "role")
            {
                problems.push(format!("{cname}.{name}: implicit in the reference, explicit here"));
            }
            if life(m) != om.life {
                problems.push(format!("{cname}.{name}: lifecycle {:?} vs {:?}", om.life, life(m)));
            }
        }
        for om in ours.messages {
            if !om.hidden && !tm.iter().any(|m| m["name"] == om.name) {
                problems.push(format!("{cname}.{}: message not in the reference", om.name));
            }
        }
    }
    assert!(problems.is_empty(), "{} differences:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn every_error_a_message_names_is_declared() {
    for c in CLASSES {
        for m in c.messages {
            for e in m.errors {
                assert!(schema::error_def(e).is_some(), "{}.{} names undeclared error {e}", c.name, m.name);
            }
        }
    }
}
