//! Property tests for both codecs: any value we encode decodes back to the
//! same value (modulo the untyped-string conventions), and arbitrary or
//! mutated input never panics.

use model::{DateTime, Value};
use proptest::prelude::*;
use wire::{jsonrpc, xmlrpc, Outcome};

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        // Finite doubles round-trip through %.16g only approximately; use values
        // exactly representable in 16 digits.
        (-1_000_000i64..1_000_000).prop_map(|i| Value::Float(i as f64 / 8.0)),
        "[a-zA-Z0-9 <>&\"'é\u{1F600}\t\n]{0,12}".prop_map(Value::String),
        (0i64..4_000_000_000).prop_map(|s| Value::DateTime(DateTime::utc(s))),
        Just(Value::Nil),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,8}", inner), 0..6).prop_map(Value::Struct),
        ]
    })
}

/// XML-RPC has no untyped ints on the way out (xapi writes them as bare
/// strings), so compare after mapping ints to their text.
fn xml_view(v: &Value) -> Value {
    match v {
        Value::Int(i) => Value::String(i.to_string()),
        Value::Array(a) => Value::Array(a.iter().map(xml_view).collect()),
        Value::Struct(m) => Value::Struct(m.iter().map(|(k, v)| (k.clone(), xml_view(v))).collect()),
        Value::String(s) => {
            Value::String(s.chars().filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r')).collect())
        }
        other => other.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn xmlrpc_value_roundtrip(v in value()) {
        let s = xmlrpc::value_to_string(&v);
        let back = xmlrpc::parse_value(&s).unwrap();
        prop_assert_eq!(xml_view(&back), xml_view(&v));
    }

    #[test]
    fn xmlrpc_call_roundtrip(m in "[A-Za-z_.]{1,20}", params in prop::collection::vec(value(), 0..4)) {
        let mut out = Vec::new();
        xmlrpc::write_call(&mut out, &m, &params);
        let (m2, p2) = xmlrpc::parse_call(&out).unwrap();
        prop_assert_eq!(m2, m);
        prop_assert_eq!(p2.iter().map(xml_view).collect::<Vec<_>>(), params.iter().map(xml_view).collect::<Vec<_>>());
    }

    #[test]
    fn xmlrpc_response_roundtrip(v in value()) {
        let mut out = Vec::new();
        xmlrpc::write_response(&mut out, &Outcome::Success(v.clone()));
        let Outcome::Success(back) = xmlrpc::parse_response(&out).unwrap() else { panic!("failure") };
        prop_assert_eq!(xml_view(&back), xml_view(&v));
    }

    #[test]
    fn json_value_roundtrip(v in value()) {
        let mut out = Vec::new();
        jsonrpc::write_response(&mut out, jsonrpc::Version::V2, &serde_json::Value::from(1), &Outcome::Success(v.clone()));
        let Outcome::Success(back) = jsonrpc::parse_response(&out).unwrap() else { panic!("failure") };
        // JSON has no datetime type: those come back as strings.
        fn json_view(v: &Value) -> Value {
            match v {
                Value::DateTime(d) => Value::String(d.to_string()),
                Value::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => Value::Int(*f as i64),
                Value::Array(a) => Value::Array(a.iter().map(json_view).collect()),
                Value::Struct(m) => {
                    // Objects keep the last of duplicate keys.
                    let mut out: Vec<(String, Value)> = Vec::new();
                    for (k, x) in m {
                        out.retain(|(k2, _)| k2 != k);
                        out.push((k.clone(), json_view(x)));
                    }
                    out.sort_by(|a, b| a.0.cmp(&b.0));
                    Value::Struct(out)
                }
                other => other.clone(),
            }
        }
        prop_assert_eq!(json_view(&back), json_view(&v));
    }

    #[test]
    fn xmlrpc_never_panics_on_bytes(b in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = xmlrpc::parse_call(&b);
        let _ = xmlrpc::parse_response(&b);
    }

    #[test]
    fn xmlrpc_never_panics_on_mutations(v in value(), cut in 0usize..2000, junk in "[<>/a-z&;#0-9 ]{0,8}") {
        let mut out = Vec::new();
        xmlrpc::write_call(&mut out, "VM.get_record", &[v]);
        let cut = cut.min(out.len());
        let mut m = out[..cut].to_vec();
        m.extend_from_slice(junk.as_bytes());
        m.extend_from_slice(&out[cut..]);
        let _ = xmlrpc::parse_call(&m);
    }

    #[test]
    fn json_never_panics(b in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = jsonrpc::parse_request(&b);
        let _ = jsonrpc::parse_response(&b);
    }

    #[test]
    fn json_never_panics_on_mutations(v in value(), cut in 0usize..2000, junk in "[\\[\\]{}\",:0-9a-zN]{0,6}") {
        let mut out = Vec::new();
        jsonrpc::write_request(&mut out, 1, "VM.get_record", &[v]);
        let cut = cut.min(out.len());
        let mut m = out[..cut].to_vec();
        m.extend_from_slice(junk.as_bytes());
        m.extend_from_slice(&out[cut..]);
        let _ = jsonrpc::parse_request(&m);
    }
}
