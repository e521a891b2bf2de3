//! The bottom layer's row helpers, used by every layer above: building rows,
//! reading set members, coercing wire values to schema types, the message
//! table, and the product's version strings.

use crate::{internal, ApiError, Result};
use model::schema::{ClassDef, MsgDef, Type, CLASSES};
use model::typed::{parse_float, Field, XenType};
use model::{DateTime, Row, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

pub const PRODUCT_BRAND: &str = "xapi-rs";
pub const PRODUCT_VERSION: &str = "8.3.0";
pub const PLATFORM_VERSION: &str = "3.4.0";
pub const XAPI_VERSION: &str = "24.12";

pub fn map(kv: &[(&str, &str)]) -> Value {
    Value::Struct(kv.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect())
}

/// A blank row of the uuid field's class with a fresh uuid, for the caller
/// to fill with `Row::write` and hand to `Txn::insert` (a misspelt field
/// does not compile).
pub fn new_row<C>(uuid: Field<C, String>) -> Row {
    let mut row = store::blank_row(uuid.class);
    row.write(uuid, model::new_uuid());
    row
}

/// The names of set members.
pub fn members(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default()
}

/// Wire name → (class, message), for `Class.msg` and the `Class_msg` spelling.
pub fn table() -> &'static HashMap<String, (&'static ClassDef, &'static MsgDef)> {
    static T: OnceLock<HashMap<String, (&'static ClassDef, &'static MsgDef)>> = OnceLock::new();
    T.get_or_init(|| {
        let mut m = HashMap::new();
        for c in CLASSES {
            for msg in c.messages {
                m.insert(format!("{}.{}", c.name, msg.name), (*c, msg));
            }
        }
        for c in CLASSES {
            for msg in c.messages {
                m.entry(format!("{}_{}", c.name, msg.name)).or_insert((*c, msg));
            }
        }
        m
    })
}

pub fn lookup(name: &str) -> Option<(&'static ClassDef, &'static MsgDef)> {
    table().get(name).copied()
}

/// Every synchronous wire name, for `system.listMethods`.
pub fn list_methods() -> Vec<Value> {
    let mut out = Vec::new();
    for c in CLASSES {
        for m in c.messages {
            out.push(Value::String(format!("{}.{}", c.name, m.name)));
        }
    }
    out
}

fn field_type_error(name: &str) -> ApiError {
    ApiError::FieldTypeError { field: name.to_string() }
}

/// Coerce a wire value to a schema type the way xapi's unmarshallers do:
/// int64 from ints or decimal strings, floats from ints or strings, enums
/// case-insensitively, datetimes from any accepted spelling.
pub fn coerce(v: Value, ty: &'static Type, name: &str) -> Result<Value> {
    Ok(match (ty, v) {
        (Type::String, Value::String(s)) => Value::String(s),
        (Type::String, Value::Int(i)) => Value::String(i.to_string()),
        (Type::String, Value::DateTime(d)) => Value::String(d.to_string()),
        (Type::Int, Value::Int(i)) => Value::Int(i),
        (Type::Int, Value::I32(i)) => Value::Int(i as i64),
        (Type::Int, Value::String(s)) => Value::Int(s.trim().parse().map_err(|_| field_type_error(name))?),
        (Type::Int, Value::Float(f)) if f.fract() == 0.0 && f.abs() < 9.2e18 => Value::Int(f as i64),
        (Type::Float, Value::Float(f)) => Value::Float(f),
        (Type::Float, Value::Int(i)) => Value::Float(i as f64),
        (Type::Float, Value::I32(i)) => Value::Float(i as f64),
        (Type::Float, Value::String(s)) => Value::Float(parse_float(&s).ok_or_else(|| field_type_error(name))?),
        // xapi accepts only real booleans here.
        (Type::Bool, Value::Bool(b)) => Value::Bool(b),
        (Type::DateTime, Value::DateTime(d)) => Value::DateTime(d),
        (Type::DateTime, Value::String(s)) => {
            Value::DateTime(DateTime::parse(&s).ok_or_else(|| field_type_error(name))?)
        }
        (Type::Enum(e), Value::String(s)) => match e.canonical(&s) {
            Some(c) => Value::String(c.to_string()),
            None => return Err(ApiError::InvalidValue { field: name.to_string(), value: s }),
        },
        (Type::Ref(_), Value::String(s)) => Value::String(s),
        (Type::Set(t), Value::Array(a)) => {
            Value::Array(a.into_iter().map(|x| coerce(x, t, name)).collect::<Result<_>>()?)
        }
        (Type::Map(k, t), Value::Struct(m)) => Value::Struct(
            m.into_iter()
                .map(|(key, x)| {
                    let key = match coerce(Value::String(key), k, name)? {
                        Value::String(s) => s,
                        Value::Int(i) => i.to_string(),
                        other => wire::xmlrpc::value_as_text(&other),
                    };
                    Ok((key, coerce(x, t, name)?))
                })
                .collect::<Result<_>>()?,
        ),
        (Type::Record(_), v @ Value::Struct(_)) => v,
        (Type::Option(_), Value::Nil) => Value::Nil,
        (Type::Option(t), v) => coerce(v, t, name)?,
        _ => return Err(field_type_error(name)),
    })
}

/// Fetch a typed argument (already coerced).
pub fn arg<T: XenType>(args: &[Value], i: usize, name: &str) -> Result<T> {
    let v = args.get(i).ok_or_else(|| internal(format!("missing argument {name}")))?;
    T::from_value(v).map_err(|_| field_type_error(name))
}

/// An integer as OCaml's `int_of_string` reads it (sign, 0x/0o/0b/0u
/// prefixes, underscores): xapi's test for a valid VIF device.
pub fn ocaml_int(text: &str) -> Option<i64> {
    let (neg, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = rest.get(..2).map(str::to_ascii_lowercase);
    let (radix, body) = match lower.as_deref() {
        Some("0x") => (16, &rest[2..]),
        Some("0o") => (8, &rest[2..]),
        Some("0b") => (2, &rest[2..]),
        Some("0u") => (10, &rest[2..]),
        _ => (10, rest),
    };
    if !body.chars().next().is_some_and(|c| c.is_digit(radix)) {
        return None;
    }
    let digits: String = body.chars().filter(|c| *c != '_').collect();
    let v = i64::from_str_radix(&digits, radix).ok()?;
    Some(if neg { -v } else { v })
}
