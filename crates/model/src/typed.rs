//! Typed views of values: refs, the `XenType` conversion trait and field handles.
//!
//! Decoding is tolerant in the way real servers require: ints may arrive as
//! strings, floats as `inf`/`NaN` strings, datetimes in any accepted spelling,
//! and records may lack fields (they get the type's zero value).

use crate::datetime::DateTime;
use crate::schema::ClassDef;
use crate::value::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

/// Marker for a class: generated as a unit struct per class (`Vm`, `Vdi`, …).
pub trait Class: 'static {
    const NAME: &'static str;
}

/// An operation of one class, as its `current_operations` records it:
/// generated for each class's operations enum (`VmOperations`, …), so an
/// operation names its class and cannot be misspelt.
pub trait Operation {
    /// The class whose objects the operation runs on.
    const CLASS: &'static ClassDef;
    /// The wire name, as current_operations and the rules see it.
    fn name(&self) -> &str;
}

/// A typed object reference (`OpaqueRef:<uuid>`), `Ref::null()` for `OpaqueRef:NULL`.
pub struct Ref<C> {
    s: String,
    _c: PhantomData<fn() -> C>,
}

impl<C> Ref<C> {
    pub fn new(s: impl Into<String>) -> Self {
        Ref { s: s.into(), _c: PhantomData }
    }
    pub fn null() -> Self {
        Ref::new(crate::NULL_REF)
    }
    pub fn is_null(&self) -> bool {
        self.s == crate::NULL_REF
    }
    pub fn as_str(&self) -> &str {
        &self.s
    }
    pub fn into_string(self) -> String {
        self.s
    }
    /// Reinterpret as a reference to another class (e.g. for error parameters).
    pub fn cast<D>(self) -> Ref<D> {
        Ref::new(self.s)
    }
}
impl<C> Clone for Ref<C> {
    fn clone(&self) -> Self {
        Ref::new(self.s.clone())
    }
}
impl<C> PartialEq for Ref<C> {
    fn eq(&self, o: &Self) -> bool {
        self.s == o.s
    }
}
impl<C> Eq for Ref<C> {}
impl<C> PartialOrd for Ref<C> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<C> Ord for Ref<C> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.s.cmp(&o.s)
    }
}
impl<C> Hash for Ref<C> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.s.hash(h)
    }
}
impl<C> fmt::Debug for Ref<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.s)
    }
}
impl<C> fmt::Display for Ref<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.s)
    }
}
impl<C> std::default::Default for Ref<C> {
    fn default() -> Self {
        Ref::null()
    }
}
impl<C> From<&str> for Ref<C> {
    fn from(s: &str) -> Self {
        Ref::new(s)
    }
}
impl<C> From<String> for Ref<C> {
    fn from(s: String) -> Self {
        Ref::new(s)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TypeError {
    pub expected: &'static str,
    pub got: String,
}

impl fmt::Display for TypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {}, got {}", self.expected, self.got)
    }
}
impl std::error::Error for TypeError {}

fn terr(expected: &'static str, v: &Value) -> TypeError {
    let mut got = format!("{v:?}");
    got.truncate(80);
    TypeError { expected, got }
}

/// Conversion between Rust types and wire values.
pub trait XenType: Sized {
    fn from_value(v: &Value) -> Result<Self, TypeError>;
    fn to_value(&self) -> Value;
    /// The value used when a record lacks this field.
    fn zero() -> Self;
}

impl XenType for String {
    fn from_value(v: &Value) -> Result<Self, TypeError> {
        let v = v.resolve();
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Int(i) => Ok(i.to_string()),
            Value::DateTime(d) => Ok(d.to_string()),
            Value::Nil => Ok(String::new()),
            _ => Err(terr("string", v)),
        }
    }
    fn to_value(&self) -> Value {
        Value::String(self.clone())
    }
    fn zero() -> Self {
        String::new()
    }
}

impl XenType for i64 {
    fn from_value(v: &Value) -> Result<Self, TypeError> {
        let v = v.resolve();
        match v {
            Value::Int(i) => Ok(*i),
            Value::I32(i) => Ok(*i as i64),
            Value::String(s) => s.trim().parse().map_err(|_| terr("int", v)),
            Value::Float(f) if f.fract() == 0.0 => Ok(*f as i64),
            _ => Err(terr("int", v)),
        }
    }
    fn to_value(&self) -> Value {
        Value::Int(*self)
    }
    fn zero() -> Self {
        0
    }
}

/// Parse a float the way xapi and its SDKs print them (`inf`, `Infinity`, `NaN`…).
pub fn parse_float(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "inf" | "infinity" | "+inf" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        "nan" | "-nan" | "+nan" => Some(f64::NAN),
        _ => t.parse().ok(),
    }
}

impl XenType for f64 {
    fn from_value(v: &Value) -> Result<Self, TypeError> {
        let v = v.resolve();
        match v {
            Value::Float(f) => Ok(*f),
            Value::Int(i) => Ok(*i as f64),
            Value::I32(i) => Ok(*i as f64),
            Value::String(s) => parse_float(s).ok_or_else(|| terr("float", v)),
            _ => Err(terr("float", v)),
        }
    }
    fn to_value(&self) -> Value {
        Value::Float(*self)
    }
    fn zero() -> Self {
        0.0
    }
}

impl XenType for bool {
    fn from_value(v: &Value) -> Result<Self, TypeError> {
        let v = v.resolve();
        match v {
            Value::Bool(b) => Ok(*b),
            Value::String(s) if s == "true" || s == "1" => Ok(true),
            Value::String(s) if s == "false" || s == "0" => Ok(false),
            Value::Int(i) => Ok(*i != 0),
            _ => Err(terr("bool", v)),
        }
    }
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
    fn zero() -> Self {
        false
    }
}

impl XenType for DateTime {
    fn from_value(v: &Value) -> Result<Self, TypeError> {
        let v = v.resolve();
        match v {
            Value::DateTime(d) => Ok(*d),
            Value::String(s) => DateTime::parse(s).ok_or_else(|| terr("datetime", v)),
            Value::Int(i) => Ok(DateTime::utc(*i)),
            Value::Float(f) => Ok(DateTime::utc(*f as i64)),
            _ => Err(terr("datetime", v)),
        }
    }
    fn to_value(&self) -> Value {
        Value::DateTime(*self)
    }
    fn zero() -> Self {
        DateTime::EPOCH
    }
}

impl<C> XenType for Ref<C> {
    fn from_value(v: &Value) -> Result<Self, TypeError> {
        let v = v.resolve();
        match v {
            Value::String(s) => Ok(Ref::new(s.clone())),
            _ => Err(terr("ref", v)),
        }
    }
    fn to_value(&self) -> Value {
        Value::String(self.s.clone())
    }
    fn zero() -> Self {
        Ref::null()
    }
}

impl XenType for Value {
    fn from_value(v: &Value) -> Result<Self, TypeError> {
        let v = v.resolve();
        Ok(v.clone())
    }
    fn to_value(&self) -> Value {
        self.clone()
    }
    fn zero() -> Self {
        Value::Nil
    }
}

/// Void results: xapi sends an empty string.
impl XenType for () {
    fn from_value(_: &Value) -> Result<Self, TypeError> {
        Ok(())
    }
    fn to_value(&self) -> Value {
        Value::String(String::new())
    }
    fn zero() -> Self {}
}

impl<T: XenType> XenType for Vec<T> {
    fn from_value(v: &Value) -> Result<Self, TypeError> {
        let v = v.resolve();
        match v {
            Value::Array(a) => a.iter().map(T::from_value).collect(),
            Value::Nil => Ok(Vec::new()),
            _ => Err(terr("array", v)),
        }
    }
    fn to_value(&self) -> Value {
        Value::Array(self.iter().map(XenType::to_value).collect())
    }
    fn zero() -> Self {
        Vec::new()
    }
}

impl<T: XenType> XenType for Option<T> {
    fn from_value(v: &Value) -> Result<Self, TypeError> {
        let v = v.resolve();
        match v {
            Value::Nil => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
    fn to_value(&self) -> Value {
        match self {
            Some(t) => t.to_value(),
            None => Value::Nil,
        }
    }
    fn zero() -> Self {
        None
    }
}

/// Map keys travel as strings; this converts them.
pub trait MapKey: Sized + Ord {
    fn from_key(s: &str) -> Result<Self, TypeError>;
    fn to_key(&self) -> String;
}
impl MapKey for String {
    fn from_key(s: &str) -> Result<Self, TypeError> {
        Ok(s.to_string())
    }
    fn to_key(&self) -> String {
        self.clone()
    }
}
impl MapKey for i64 {
    fn from_key(s: &str) -> Result<Self, TypeError> {
        s.parse().map_err(|_| TypeError { expected: "int key", got: s.to_string() })
    }
    fn to_key(&self) -> String {
        self.to_string()
    }
}
impl<C> MapKey for Ref<C> {
    fn from_key(s: &str) -> Result<Self, TypeError> {
        Ok(Ref::new(s))
    }
    fn to_key(&self) -> String {
        self.s.clone()
    }
}

impl<K: MapKey, V: XenType> XenType for BTreeMap<K, V> {
    fn from_value(v: &Value) -> Result<Self, TypeError> {
        let v = v.resolve();
        match v {
            Value::Struct(m) => m.iter().map(|(k, v)| Ok((K::from_key(k)?, V::from_value(v)?))).collect(),
            Value::Row(r) => r.members().map(|(k, v)| Ok((K::from_key(k)?, V::from_value(v)?))).collect(),
            Value::Nil => Ok(BTreeMap::new()),
            _ => Err(terr("map", v)),
        }
    }
    fn to_value(&self) -> Value {
        Value::Struct(self.iter().map(|(k, v)| (k.to_key(), v.to_value())).collect())
    }
    fn zero() -> Self {
        BTreeMap::new()
    }
}

/// A typed handle on one field of one class: `fields::vm::POWER_STATE`.
pub struct Field<C, T> {
    pub class: &'static ClassDef,
    pub index: usize,
    _p: PhantomData<fn() -> (C, T)>,
}

impl<C, T> Field<C, T> {
    pub const fn new(class: &'static ClassDef, index: usize) -> Self {
        Field { class, index, _p: PhantomData }
    }
    pub fn name(&self) -> &'static str {
        self.class.fields[self.index].name
    }
}
impl<C, T> Clone for Field<C, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C, T> Copy for Field<C, T> {}

/// Read a record member for generated record decoders: missing means zero.
pub fn member<T: XenType>(v: &Value, name: &str) -> Result<T, TypeError> {
    match v.member(name) {
        Some(m) => T::from_value(m),
        None => Ok(T::zero()),
    }
}

impl crate::Row {
    /// A field as its Rust type (`row.read(vm::POWER_STATE) -> VmPowerState`).
    /// Rows are written through the schema, so a value of another shape is a
    /// bug; it reads as the type's zero rather than failing the caller.
    pub fn read<C, T: XenType>(&self, f: Field<C, T>) -> T {
        debug_assert!(std::ptr::eq(f.class, self.class), "{} is not a field of {}", f.name(), self.class.name);
        T::from_value(&self.fields[f.index]).unwrap_or_else(|_| T::zero())
    }

    /// Set a field from its Rust type.
    pub fn write<C, T: XenType>(&mut self, f: Field<C, T>, v: T) {
        debug_assert!(std::ptr::eq(f.class, self.class), "{} is not a field of {}", f.name(), self.class.name);
        self.fields[f.index] = v.to_value();
    }
}
