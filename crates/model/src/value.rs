//! `Value`: every value that can cross the XenAPI wire or live in the store.
//!
//! Both codecs decode into it and encode from it; the store keeps rows as
//! vectors of it. Typing happens against the schema (`crate::schema`), not here.

use crate::datetime::DateTime;
use crate::schema::ClassDef;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    DateTime(DateTime),
    /// Sets and lists.
    Array(Vec<Value>),
    /// Maps, structs and records decoded from the wire. Order is kept.
    Struct(Vec<(String, Value)>),
    /// A stored object's record, shared with the store so that large
    /// `get_all_records` replies serialise without copying rows.
    Row(Arc<Row>),
    /// Internal: a session-derived int32 (`valid_ref_counts` in event.from) that
    /// XML-RPC emits as `<i4>`.
    I32(i32),
    /// A value shared by many replies (one event.from batch fanned out to
    /// many waiters): each protocol encodes it once.
    Cached(Arc<Cached>),
}

/// A value with its encodings computed on first use.
#[derive(Debug)]
pub struct Cached {
    pub value: Value,
    pub encodings: Encodings,
}

impl PartialEq for Cached {
    fn eq(&self, o: &Self) -> bool {
        self.value == o.value
    }
}

impl Cached {
    pub fn new(value: Value) -> Arc<Cached> {
        Arc::new(Cached { value, encodings: Encodings::default() })
    }
}

/// One stored object: its class and one value per schema field, in datamodel order.
///
/// A row, once shared (`Arc<Row>` in the store or a reply), is never changed:
/// the store swaps in a new one. That is what makes [`Encodings`] safe; code
/// that changes a row clones it first (which starts with no encodings).
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub class: &'static ClassDef,
    pub fields: Vec<Value>,
    pub encodings: Encodings,
}

/// Wire encodings of an immutable value (a row, a shared event batch), made on
/// first use, so what does not change is encoded once however many replies
/// carry it.
#[derive(Default)]
pub struct Encodings {
    pub xml: std::sync::OnceLock<Box<[u8]>>,
    pub json: std::sync::OnceLock<Box<[u8]>>,
}

impl Clone for Encodings {
    /// A clone is about to be changed: it starts without encodings.
    fn clone(&self) -> Self {
        Encodings::default()
    }
}

impl PartialEq for Encodings {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Encodings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Encodings")
    }
}

impl Row {
    pub fn new(class: &'static ClassDef, fields: Vec<Value>) -> Row {
        Row { class, fields, encodings: Encodings::default() }
    }
    pub fn get(&self, idx: usize) -> &Value {
        &self.fields[idx]
    }
    /// Field value by wire name (slow path: linear in the field count).
    pub fn get_by_name(&self, name: &str) -> Option<&Value> {
        self.class.field_index(name).map(|i| &self.fields[i])
    }
    /// Iterate `(wire name, value)` pairs in the order a record is emitted,
    /// skipping `None` options as xapi does.
    pub fn members(&self) -> impl Iterator<Item = (&'static str, &Value)> + '_ {
        self.class
            .fields
            .iter()
            .zip(self.fields.iter())
            .filter(|(_, v)| !matches!(v, Value::Nil))
            .map(|(f, v)| (f.name, v))
    }
    /// Convert into a plain struct value (used where a record must be edited).
    pub fn to_struct(&self) -> Value {
        Value::Struct(self.members().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }
    pub fn empty_map() -> Value {
        Value::Struct(Vec::new())
    }
    pub fn empty_set() -> Value {
        Value::Array(Vec::new())
    }
    /// The value itself, looking through [`Value::Cached`].
    pub fn resolve(&self) -> &Value {
        match self {
            Value::Cached(c) => c.value.resolve(),
            v => v,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self.resolve() {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_int(&self) -> Option<i64> {
        match self.resolve() {
            Value::Int(i) => Some(*i),
            Value::I32(i) => Some(*i as i64),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }
    pub fn as_float(&self) -> Option<f64> {
        match self.resolve() {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self.resolve() {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&[Value]> {
        match self.resolve() {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
    pub fn as_struct(&self) -> Option<&[(String, Value)]> {
        match self.resolve() {
            Value::Struct(s) => Some(s),
            _ => None,
        }
    }
    /// Look a member up in a struct/map value (or a row, by field name).
    pub fn member(&self, key: &str) -> Option<&Value> {
        match self.resolve() {
            Value::Struct(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            Value::Row(r) => r.get_by_name(key),
            _ => None,
        }
    }
    /// Map entry lookup returning the string value, the common case for
    /// `other_config`-style maps.
    pub fn map_str(&self, key: &str) -> Option<&str> {
        self.member(key).and_then(Value::as_str)
    }
    /// A short name of the value's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::I32(_) => "int",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::DateTime(_) => "datetime",
            Value::Array(_) => "array",
            Value::Struct(_) => "struct",
            Value::Row(_) => "record",
            Value::Cached(c) => c.value.kind(),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}
impl From<DateTime> for Value {
    fn from(d: DateTime) -> Self {
        Value::DateTime(d)
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}
