//! Schema types. The tables themselves are generated from `datamodel/` by
//! `build.rs` (see the `codegen` crate) and included at the bottom.

use crate::datetime::DateTime;
use crate::value::Value;

#[derive(Debug, PartialEq)]
pub enum Type {
    String,
    Int,
    Float,
    Bool,
    DateTime,
    Enum(&'static EnumDef),
    /// Reference to an object of the named class (which we may not serve).
    Ref(&'static str),
    Set(&'static Type),
    Map(&'static Type, &'static Type),
    Record(&'static str),
    Option(&'static Type),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qual {
    Rw,
    RoCtor,
    RoRun,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Life {
    Published,
    Prototyped,
    Deprecated,
    Removed,
}

/// A default value in static form.
#[derive(Debug, PartialEq)]
pub enum Default {
    Str(&'static str),
    Int(i64),
    Float(f64),
    Bool(bool),
    DateTime(i64),
    NullRef,
    Set(&'static [&'static str]),
    IntSet(&'static [i64]),
    Map(&'static [(&'static str, &'static str)]),
}

impl Default {
    pub fn to_value(&self) -> Value {
        match self {
            Default::Str(s) => Value::String(s.to_string()),
            Default::Int(i) => Value::Int(*i),
            Default::Float(f) => Value::Float(*f),
            Default::Bool(b) => Value::Bool(*b),
            Default::DateTime(s) => Value::DateTime(DateTime::utc(*s)),
            Default::NullRef => Value::String(crate::NULL_REF.to_string()),
            Default::Set(items) => Value::Array(items.iter().map(|s| Value::String(s.to_string())).collect()),
            Default::IntSet(items) => Value::Array(items.iter().map(|i| Value::Int(*i)).collect()),
            Default::Map(kv) => {
                Value::Struct(kv.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect())
            }
        }
    }
}

#[derive(Debug, PartialEq)]
pub struct EnumDef {
    pub name: &'static str,
    pub doc: &'static str,
    pub values: &'static [(&'static str, &'static str)],
}

impl EnumDef {
    /// Canonical spelling of a value, matched case-insensitively as xapi does.
    pub fn canonical(&self, s: &str) -> Option<&'static str> {
        self.values.iter().map(|(v, _)| *v).find(|v| v.eq_ignore_ascii_case(s))
    }
}

#[derive(Debug, PartialEq)]
pub struct FieldDef {
    /// Wire name, e.g. `name_label`.
    pub name: &'static str,
    /// Database column, e.g. `name__label` (used by `*_where` expressions).
    pub column: &'static str,
    pub ty: &'static Type,
    pub qual: Qual,
    pub default: Option<&'static Default>,
    pub life: Life,
    pub doc: &'static str,
    /// Least privileged role that may call this field's setters.
    pub write_role: Roles,
    /// Map keys with their own writer role (xapi's `map_keys_roles`); a
    /// trailing `*` matches every key with that prefix.
    pub key_roles: &'static [(&'static str, Role)],
}

impl FieldDef {
    /// The protected key pattern `key` falls under, with its role.
    pub fn key_role(&self, key: &str) -> Option<(&'static str, Role)> {
        self.key_roles.iter().copied().find(|(k, _)| match k.strip_suffix('*') {
            Some(prefix) => key.starts_with(prefix),
            None => *k == key,
        })
    }

    /// The value a new object gets when the constructor does not say.
    pub fn default_value(&self) -> Value {
        match self.default {
            Some(d) => d.to_value(),
            None => zero_value(self.ty),
        }
    }
}

/// The natural empty value of a type, used for runtime fields with no default.
pub fn zero_value(ty: &Type) -> Value {
    match ty {
        Type::String => Value::String(String::new()),
        Type::Int => Value::Int(0),
        Type::Float => Value::Float(0.0),
        Type::Bool => Value::Bool(false),
        Type::DateTime => Value::DateTime(DateTime::EPOCH),
        Type::Enum(e) => Value::String(e.values.first().map(|v| v.0).unwrap_or("").to_string()),
        Type::Ref(_) => Value::String(crate::NULL_REF.to_string()),
        Type::Set(_) => Value::Array(Vec::new()),
        Type::Map(_, _) => Value::Struct(Vec::new()),
        Type::Record(_) => Value::Struct(Vec::new()),
        Type::Option(_) => Value::Nil,
    }
}

/// Roles in decreasing order of privilege. A message allows its `min` role and
/// every role above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    PoolAdmin = 0,
    PoolOperator = 1,
    VmPowerAdmin = 2,
    VmAdmin = 3,
    VmOperator = 4,
    ReadOnly = 5,
    /// Nobody but the local superuser.
    Nobody = 6,
}

impl Role {
    pub const ALL: [Role; 6] =
        [Role::PoolAdmin, Role::PoolOperator, Role::VmPowerAdmin, Role::VmAdmin, Role::VmOperator, Role::ReadOnly];
    pub fn name(self) -> &'static str {
        match self {
            Role::PoolAdmin => "pool-admin",
            Role::PoolOperator => "pool-operator",
            Role::VmPowerAdmin => "vm-power-admin",
            Role::VmAdmin => "vm-admin",
            Role::VmOperator => "vm-operator",
            Role::ReadOnly => "read-only",
            Role::Nobody => "",
        }
    }
    pub fn from_name(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name().eq_ignore_ascii_case(s))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    pub min: Role,
    /// Also allowed for client-certificate sessions.
    pub cert: bool,
}

impl Roles {
    /// Role names in the reference order (client-cert sits before read-only).
    pub fn names(&self) -> Vec<&'static str> {
        if self.min == Role::Nobody {
            return if self.cert { vec!["client-cert"] } else { vec![] };
        }
        let mut out: Vec<&'static str> = Role::ALL.iter().filter(|r| **r <= self.min).map(|r| r.name()).collect();
        if self.cert {
            let at = if out.last() == Some(&"read-only") { out.len() - 1 } else { out.len() };
            out.insert(at, "client-cert");
        }
        out
    }
    pub fn allows(&self, r: Role) -> bool {
        r <= self.min
    }
}

#[derive(Debug, PartialEq)]
pub struct ParamDef {
    pub name: &'static str,
    pub ty: &'static Type,
    pub default: Option<&'static Default>,
    pub doc: &'static str,
}

/// What a message does, so generic code can serve implicit ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgKind {
    Explicit,
    GetRecord,
    GetByUuid,
    GetByNameLabel,
    GetAll,
    GetAllRecords,
    GetAllWhere,
    GetAllRecordsWhere,
    Create,
    Destroy,
    Get(usize),
    Set(usize),
    AddTo(usize),
    RemoveFrom(usize),
    Add(usize),
    Remove(usize),
}

#[derive(Debug, PartialEq)]
pub struct MsgDef {
    pub name: &'static str,
    pub kind: MsgKind,
    /// Parameters after the session.
    pub params: &'static [ParamDef],
    /// `None` for void.
    pub result: Option<&'static Type>,
    pub result_doc: &'static str,
    pub errors: &'static [&'static str],
    pub roles: Roles,
    pub is_async: bool,
    pub session: bool,
    /// Left out of the published documentation (the `*_where` messages).
    pub hidden: bool,
    pub life: Life,
    pub doc: &'static str,
}

impl MsgDef {
    /// Parameters that must be given (those before the first defaulted one).
    pub fn required_params(&self) -> usize {
        self.params.iter().position(|p| p.default.is_some()).unwrap_or(self.params.len())
    }
}

#[derive(Debug, PartialEq)]
pub struct ClassDef {
    pub name: &'static str,
    /// The class as a generated enum: `match c.id` instead of on `c.name`.
    pub id: ClassId,
    pub doc: &'static str,
    pub index: usize,
    pub fields: &'static [FieldDef],
    /// Every message, implicit and explicit, in a stable order.
    pub messages: &'static [MsgDef],
    pub db: bool,
    pub get_all: bool,
    pub ctor: bool,
    pub events: bool,
    /// Rows are not persisted.
    pub transient: bool,
    /// Not a database table (roles): no events, not counted.
    pub is_static: bool,
    pub life: Life,
}

impl ClassDef {
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }
    pub fn field(&self, name: &str) -> Option<&'static FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }
    pub fn field_by_column(&self, column: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.column == column)
    }
    pub fn message(&self, name: &str) -> Option<&'static MsgDef> {
        self.messages.iter().find(|m| m.name == name)
    }
    /// Lower-case name, as used for event classes and `valid_ref_counts`.
    pub fn lower(&self) -> String {
        self.name.to_ascii_lowercase()
    }
}

#[derive(Debug, PartialEq)]
pub struct ErrorDef {
    pub code: &'static str,
    pub params: &'static [&'static str],
    pub doc: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/schema.rs"));

/// Find a class by exact name.
pub fn class(name: &str) -> Option<&'static ClassDef> {
    CLASSES.iter().copied().find(|c| c.name == name)
}

/// Find a class by case-insensitive name (event subscriptions, ova.xml).
pub fn class_ci(name: &str) -> Option<&'static ClassDef> {
    CLASSES.iter().copied().find(|c| c.name.eq_ignore_ascii_case(name))
}

pub fn error_def(code: &str) -> Option<&'static ErrorDef> {
    ERRORS.iter().find(|e| e.code == code)
}
