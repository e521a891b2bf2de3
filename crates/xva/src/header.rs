//! `ova.xml` of the current format: an XML-RPC struct
//! `{version: {…}, objects: [{class, id, snapshot}, …]}`.

use crate::{invalid, Result};
use model::Value;

/// One exported object: its class, its id within the file (`Ref:<n>`), and
/// its full record with every ref rewritten to such an id (or
/// `OpaqueRef:NULL` when the target is not in the file).
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    pub class: String,
    pub id: String,
    pub snapshot: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// hostname, date, product_version, product_brand, build_number,
    /// xapi_major, xapi_minor, export_vsn.
    pub version: Vec<(String, Value)>,
    pub objects: Vec<Object>,
}

impl Header {
    pub fn to_value(&self) -> Value {
        Value::Struct(vec![
            ("version".into(), Value::Struct(self.version.clone())),
            (
                "objects".into(),
                Value::Array(
                    self.objects
                        .iter()
                        .map(|o| {
                            Value::Struct(vec![
                                ("class".into(), Value::String(o.class.clone())),
                                ("id".into(), Value::String(o.id.clone())),
                                ("snapshot".into(), o.snapshot.clone()),
                            ])
                        })
                        .collect(),
                ),
            ),
        ])
    }

    /// The bytes of `ova.xml`: an XML-RPC value, no prolog.
    pub fn to_xml(&self) -> String {
        wire::xmlrpc::value_to_string(&self.to_value())
    }

    pub fn parse(xml: &str) -> Result<Header> {
        let v = match wire::xmlrpc::parse_value(xml.trim_start_matches('\u{feff}').trim()) {
            Ok(v) => v,
            Err(e) => return invalid(format!("ova.xml: {}", e.0)),
        };
        let version = match v.member("version") {
            Some(Value::Struct(m)) => m.clone(),
            _ => return invalid("ova.xml has no version struct"),
        };
        let Some(Value::Array(objs)) = v.member("objects") else { return invalid("ova.xml has no objects array") };
        let mut objects = Vec::with_capacity(objs.len());
        for o in objs {
            let (Some(class), Some(id), Some(snapshot)) = (o.map_str("class"), o.map_str("id"), o.member("snapshot"))
            else {
                return invalid("an ova.xml object lacks class, id or snapshot");
            };
            if !matches!(snapshot, Value::Struct(_)) {
                return invalid(format!("object {id}: snapshot is not a struct"));
            }
            objects.push(Object { class: class.to_string(), id: id.to_string(), snapshot: snapshot.clone() });
        }
        Ok(Header { version, objects })
    }

    pub fn version_str(&self, k: &str) -> Option<String> {
        self.version.iter().find(|(a, _)| a == k).map(|(_, v)| wire::xmlrpc::value_as_text(v))
    }

    pub fn object(&self, id: &str) -> Option<&Object> {
        self.objects.iter().find(|o| o.id == id)
    }
}
