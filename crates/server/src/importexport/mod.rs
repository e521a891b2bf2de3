//! VM import and export (xapi's `importexport`): the object graph written
//! to `ova.xml` ([`export`]) and rebuilt from it ([`import`], and
//! [`legacy`] for the SDK guide's old format). The byte stream itself is
//! the `xva` crate's; the HTTP side is in `handlers::{export, import}`.

pub mod export;
pub mod import;
pub mod legacy;
pub mod receive;
pub mod transfer;
pub mod url;

use crate::{ApiError, Result};
use model::schema::{ClassDef, Type};
use model::{Row, Value};
use std::collections::HashMap;

/// `export_vsn` of the current format.
pub const EXPORT_VSN: i64 = 2;

/// Our xapi version as (major, minor), from the version we report.
pub fn xapi_version() -> (i64, i64) {
    let (a, b) = crate::rows::XAPI_VERSION.split_once('.').unwrap_or((crate::rows::XAPI_VERSION, "0"));
    (a.parse().unwrap_or(0), b.parse().unwrap_or(0))
}

/// The `version` struct of an ova.xml we write. xapi always writes
/// "localhost" as the host name.
pub fn version() -> Vec<(String, Value)> {
    let (major, minor) = xapi_version();
    // "YYYYMMDDT…" → "YYYY-MM-DD"
    let now = model::DateTime::now().to_string();
    let today = match (now.get(0..4), now.get(4..6), now.get(6..8)) {
        (Some(y), Some(m), Some(d)) => format!("{y}-{m}-{d}"),
        _ => String::new(),
    };
    let s = |v: &str| Value::String(v.to_string());
    vec![
        ("hostname".into(), s("localhost")),
        ("date".into(), s(&today)),
        ("product_version".into(), s(crate::rows::PRODUCT_VERSION)),
        ("product_brand".into(), s(crate::rows::PRODUCT_BRAND)),
        ("build_number".into(), s(env!("CARGO_PKG_VERSION"))),
        ("xapi_major".into(), s(&major.to_string())),
        ("xapi_minor".into(), s(&minor.to_string())),
        ("export_vsn".into(), s(&EXPORT_VSN.to_string())),
    ]
}

/// xapi refuses files written by a newer xapi (IMPORT_INCOMPATIBLE_VERSION).
pub fn assert_compatible(h: &xva::Header) -> Result<()> {
    let num = |k: &str| h.version_str(k).and_then(|v| v.trim().parse::<i64>().ok());
    let theirs = (num("xapi_major").unwrap_or(0), num("xapi_minor").unwrap_or(0));
    if theirs > xapi_version() {
        return Err(ApiError::ImportIncompatibleVersion);
    }
    Ok(())
}

/// Fields that are the inverse side of a relation (`VM.VBDs`…): the store
/// derives them, so imported rows start them empty.
fn is_inverse(c: &ClassDef, name: &str) -> bool {
    model::schema::RELATIONS.iter().any(|(dc, df, _, _)| *dc == c.name && *df == name)
}

fn remap_ref(v: &Value, table: &HashMap<String, String>) -> Value {
    let r = v.as_str().unwrap_or("");
    Value::String(table.get(r).cloned().unwrap_or_else(|| model::NULL_REF.to_string()))
}

/// Rewrite every reference in a value of type `ty` through `table`:
/// unknown refs become NULL; in sets and maps they are dropped.
pub fn remap(v: &Value, ty: &Type, table: &HashMap<String, String>) -> Value {
    match (ty, v.resolve()) {
        (Type::Ref(_), v) => remap_ref(v, table),
        (Type::Set(t), Value::Array(a)) if matches!(**t, Type::Ref(_)) => Value::Array(
            a.iter().filter_map(|x| x.as_str().and_then(|r| table.get(r)).map(|n| Value::String(n.clone()))).collect(),
        ),
        (Type::Map(k, t), Value::Struct(m)) if matches!(**k, Type::Ref(_)) || matches!(**t, Type::Ref(_)) => {
            Value::Struct(
                m.iter()
                    .filter_map(|(key, x)| {
                        let key = if matches!(**k, Type::Ref(_)) { table.get(key)?.clone() } else { key.clone() };
                        let x = if matches!(**t, Type::Ref(_)) {
                            Value::String(table.get(x.as_str()?)?.clone())
                        } else {
                            x.clone()
                        };
                        Some((key, x))
                    })
                    .collect(),
            )
        }
        (_, v) => v.clone(),
    }
}

/// A record as a plain struct with every ref rewritten through `table`.
pub fn rewritten(row: &Row, table: &HashMap<String, String>) -> Vec<(String, Value)> {
    row.class
        .fields
        .iter()
        .zip(row.fields.iter())
        .filter(|(_, v)| !matches!(v, Value::Nil))
        .map(|(f, v)| (f.name.to_string(), remap(v, f.ty, table)))
        .collect()
}

/// Set a member of a struct under construction, if the class has it.
pub fn set_member(m: &mut [(String, Value)], name: &str, v: impl Into<Value>) {
    if let Some(slot) = m.iter_mut().find(|(k, _)| k == name) {
        slot.1 = v.into();
    }
}

/// Build a row of class `c` from an exported record: every field the record
/// has (typed by our datamodel), defaults for the rest; refs are rewritten
/// through `table`, inverse sets start empty. An enum value we do not know
/// (a newer xapi's) falls back to the default; any other type mismatch is
/// an IMPORT_ERROR naming the object and field.
pub fn row_from_record(c: &'static ClassDef, id: &str, rec: &Value, table: &HashMap<String, String>) -> Result<Row> {
    let mut row = store::blank_row(c);
    for (i, f) in c.fields.iter().enumerate() {
        if is_inverse(c, f.name) {
            continue;
        }
        let Some(v) = rec.member(f.name) else { continue };
        let v = match crate::rows::coerce(v.clone(), f.ty, f.name) {
            Ok(v) => v,
            Err(ApiError::InvalidValue { .. }) => continue,
            Err(_) => {
                return Err(ApiError::ImportError {
                    msg: format!("{} {id}: field {} has the wrong type", c.name, f.name),
                })
            }
        };
        row.fields[i] = remap(&v, f.ty, table);
    }
    Ok(row)
}

/// Import failures as xapi reports them.
pub fn xva_error(e: xva::Error) -> ApiError {
    match e {
        xva::Error::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => ApiError::ImportErrorPrematureEof,
        xva::Error::Io(e) => ApiError::ImportError { msg: format!("I/O error: {e}") },
        xva::Error::Invalid(m) => ApiError::ImportError { msg: format!("Invalid XVA file: {m}") },
        xva::Error::Checksum { entry, expected, actual } => {
            ApiError::ImportError { msg: format!("Invalid_checksum: {entry}: expected {expected}, computed {actual}") }
        }
        xva::Error::Cancelled => ApiError::TaskCancelled { task: String::new() },
    }
}
