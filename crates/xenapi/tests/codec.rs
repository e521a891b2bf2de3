//! Decoding what real servers send, and round trips of every type through
//! both encodings. The fixtures are written from the shapes xapi is known to
//! produce (ints as strings, NaN/Infinity, datetime spellings, missing
//! optional fields, values newer than this client).

use model::Value;
use std::path::PathBuf;
use wire::{jsonrpc, xmlrpc, Outcome};
use xenapi::*;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).expect("fixture")
}

fn json_ok(name: &str) -> Value {
    match jsonrpc::parse_response(&fixture(name)).expect("parses") {
        Outcome::Success(v) => v,
        Outcome::Failure(e) => panic!("{e:?}"),
    }
}

#[test]
fn tolerant_vm_record() {
    let v = json_ok("vm_record_special.json");
    let vm = VmRecord::from_value(&v).expect("decodes");
    assert_eq!(vm.power_state, VmPowerState::Running, "enums match case-insensitively");
    assert_eq!(vm.memory_static_max, 4 << 30, "ints as strings");
    assert_eq!(vm.vcpus_max, 2);
    assert_eq!(vm.domid, -1);
    assert!(vm.hvm_shadow_multiplier.is_infinite());
    assert_eq!(vm.snapshot_time.to_string(), "20240420T12:00:00Z");
    assert_eq!(vm.other_config.get("a").map(String::as_str), Some("b"));
    assert_eq!(vm.blocked_operations.get(&VmOperations::Destroy).map(String::as_str), Some("protected"));
    assert_eq!(vm.allowed_operations.last(), Some(&VmOperations::Unknown("a_future_operation".into())));
    assert_eq!(vm.domain_type, DomainType::Unknown("pvh_future".into()));
    // Fields the server did not send take their zero values.
    assert_eq!(vm.name_description, "");
    assert!(vm.vbds.is_empty());
    assert!(vm.resident_on.is_null());
}

#[test]
fn nan_infinity_and_datetime_spellings() {
    let m = VmMetricsRecord::from_value(&json_ok("vm_metrics_nan.json")).expect("decodes");
    assert!(m.vcpus_utilisation.get(&0).is_some_and(|f| f.is_nan()));
    assert_eq!(m.vcpus_utilisation.get(&1).copied(), Some(f64::NEG_INFINITY));
    assert_eq!(m.memory_actual, 1 << 30);
    assert_eq!(m.start_time.secs, m.install_time.secs);
    assert_eq!(m.last_updated.secs, m.start_time.secs - 7200);
}

#[test]
fn xml_host_record_with_untyped_ints() {
    let Outcome::Success(v) = xmlrpc::parse_response(&fixture("host_record.xml")).expect("parses") else { panic!() };
    let h = HostRecord::from_value(&v).expect("decodes");
    assert_eq!((h.api_version_major, h.api_version_minor), (2, 21));
    assert!(h.enabled);
    assert_eq!(h.software_version.get("product_version").map(String::as_str), Some("8.4.0"));
    assert_eq!(h.capabilities, vec!["xen-3.0-x86_64".to_string()]);
}

#[test]
fn errors_both_dialects_and_unknown_codes() {
    let Outcome::Failure(e) = jsonrpc::parse_response(&fixture("xapi_error_v2.json")).expect("parses") else {
        panic!()
    };
    match ApiError::from_wire(&e) {
        ApiError::VmBadPowerState { vm, expected, actual } => {
            assert_eq!((vm.as_str(), expected.as_str(), actual.as_str()), ("OpaqueRef:1a2b", "halted", "running"))
        }
        other => panic!("{other:?}"),
    }
    let Outcome::Failure(e) = jsonrpc::parse_response(&fixture("xapi_error_v1.json")).expect("parses") else {
        panic!()
    };
    assert_eq!(ApiError::from_wire(&e), ApiError::SessionInvalid { handle: "OpaqueRef:dead".into() });
    let Outcome::Failure(e) = jsonrpc::parse_response(&fixture("unknown_error.json")).expect("parses") else {
        panic!()
    };
    let err = ApiError::from_wire(&e);
    assert_eq!(err.code(), "SOME_FUTURE_ERROR");
    assert_eq!(err.params(), vec!["a", "b"]);
}

#[test]
fn task_result_fragment() {
    let v = xmlrpc::parse_value(std::str::from_utf8(&fixture("task_result_set.xml")).expect("utf8")).expect("parses");
    let refs: Vec<Ref<Vm>> = XenType::from_value(&v).expect("decodes");
    assert_eq!(refs, vec![Ref::new("OpaqueRef:aaaa"), Ref::new("OpaqueRef:bbbb")]);
}

fn through_xml(v: &Value) -> Value {
    let mut out = Vec::new();
    xmlrpc::write_response(&mut out, &Outcome::Success(v.clone()));
    match xmlrpc::parse_response(&out).expect("parses") {
        Outcome::Success(v) => v,
        Outcome::Failure(e) => panic!("{e:?}"),
    }
}

fn through_json(v: &Value) -> Value {
    let mut out = Vec::new();
    jsonrpc::write_response(&mut out, jsonrpc::Version::V2, &serde_json::Value::from(1), &Outcome::Success(v.clone()));
    match jsonrpc::parse_response(&out).expect("parses") {
        Outcome::Success(v) => v,
        Outcome::Failure(e) => panic!("{e:?}"),
    }
}

/// Every record type: default → wire (both encodings) → typed → equal.
#[test]
fn every_record_roundtrips_in_both_encodings() {
    for (class, v) in xenapi::__record_defaults() {
        for (name, back) in [("XML-RPC", through_xml(&v)), ("JSON-RPC", through_json(&v))] {
            let again = xenapi::__record_roundtrip(class, &back)
                .expect("known class")
                .unwrap_or_else(|e| panic!("{class} via {name}: {e}"));
            let first = xenapi::__record_roundtrip(class, &v).expect("known class").expect("decodes");
            assert_eq!(again, first, "{class} via {name}");
        }
    }
}

/// Every enum value survives both encodings.
#[test]
fn every_enum_value_roundtrips() {
    for e in model::schema::ENUMS {
        for (val, _) in e.values {
            for back in [through_xml(&Value::from(*val)), through_json(&Value::from(*val))] {
                assert_eq!(back.as_str(), Some(*val), "{}", e.name);
                assert_eq!(e.canonical(&val.to_uppercase()), Some(*val));
            }
        }
    }
}

/// Records the server holds, decoded through the typed records and back.
#[tokio::test]
async fn seeded_records_roundtrip() {
    let db = store::Db::memory();
    let _ = db;
    let cfg = server::Config { ephemeral: true, root_password: Some("x".into()), ..Default::default() };
    let r = server::start(cfg).await.expect("start");
    let mut n = 0;
    {
        let st = r.server.db.read();
        for c in model::schema::CLASSES {
            for (_, row) in st.table(c).iter().take(20) {
                let v = Value::Row(row.clone());
                let typed = xenapi::__record_roundtrip(c.name, &v).expect("known").expect("decodes");
                for back in [through_xml(&typed), through_json(&typed)] {
                    let again = xenapi::__record_roundtrip(c.name, &back).expect("known").expect("decodes");
                    assert_eq!(again, typed, "{}", c.name);
                }
                n += 1;
            }
        }
    }
    assert!(n > 50);
    let _ = r.shutdown().await;
}

/// xen-api's SDK component tests (xapi-24/vm_special_value) require every SDK
/// to read these `snapshot_time` spellings, seconds since the epoch included.
#[test]
fn vm_records_with_every_datetime_spelling() {
    let spellings = [
        ("1627478400.", "20210728T13:20:00Z"),
        ("20240420T12:00:00", "20240420T12:00:00"),
        ("20240420T12:00:00Z", "20240420T12:00:00Z"),
        ("2024-04-20T12:00:00Z", "20240420T12:00:00Z"),
    ];
    // JSON-RPC: get_all_records with all four, as the component test sends them.
    let mut all = String::new();
    // The multipliers as the same component test spells them.
    let shadow = ["Infinity", r#""+Infinity""#, r#""-Infinity""#, r#""-Infinity""#];
    for (i, (s, _)) in spellings.iter().enumerate() {
        if i > 0 {
            all.push(',');
        }
        all.push_str(&format!(
            r#""OpaqueRef:vm{i}":{{"HVM_shadow_multiplier":{},"snapshot_time":"{s}","name_label":"vm{i}"}}"#,
            shadow[i]
        ));
    }
    let body = format!(r#"{{"jsonrpc":"2.0","result":{{{all}}},"id":1}}"#);
    let Outcome::Success(v) = jsonrpc::parse_response(body.as_bytes()).expect("parses") else { panic!() };
    let recs = std::collections::BTreeMap::<Ref<Vm>, VmRecord>::from_value(&v).expect("all records decode");
    for (i, (s, want)) in spellings.iter().enumerate() {
        let r = &recs[&Ref::new(format!("OpaqueRef:vm{i}"))];
        assert_eq!(r.snapshot_time.to_string(), *want, "JSON-RPC {s}");
        assert!(r.hvm_shadow_multiplier.is_infinite());
    }
    // XML-RPC: as a string member and as a dateTime.iso8601 member.
    for (s, want) in spellings {
        for member in
            [format!("<value>{s}</value>"), format!("<value><dateTime.iso8601>{s}</dateTime.iso8601></value>")]
        {
            let body = format!(
                "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct>\
                 <member><name>Status</name><value>Success</value></member>\
                 <member><name>Value</name><value><struct>\
                 <member><name>name_label</name><value>x</value></member>\
                 <member><name>snapshot_time</name>{member}</member>\
                 </struct></value></member></struct></value></param></params></methodResponse>"
            );
            let Outcome::Success(v) = xmlrpc::parse_response(body.as_bytes()).expect("parses") else { panic!() };
            let r = VmRecord::from_value(&v).unwrap_or_else(|e| panic!("XML-RPC {member}: {e:?}"));
            assert_eq!(r.snapshot_time.to_string(), want, "XML-RPC {member}");
        }
    }
}
