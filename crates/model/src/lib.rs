//! The XenAPI value universe, the schema generated from `datamodel/`, and the
//! typed items (enums, refs, records, field handles) generated alongside it.

pub mod datetime;
pub mod schema;
pub mod typed;
pub mod value;

pub use datetime::DateTime;
pub use schema::{ClassDef, FieldDef, MsgDef, MsgKind, Type};
pub use typed::{Field, Operation, Ref, TypeError, XenType};
pub use value::{Row, Value};

/// The null reference.
pub const NULL_REF: &str = "OpaqueRef:NULL";

/// Enums, class markers, records and field handles generated from the datamodel.
pub mod types {
    #![allow(clippy::all, non_camel_case_types, non_upper_case_globals, unused_imports, unused_mut, unused_variables)]
    use crate::schema::*;
    use crate::typed::*;
    use crate::value::Value;
    use crate::DateTime;
    use std::collections::BTreeMap;
    include!(concat!(env!("OUT_DIR"), "/types.rs"));
}

/// Make a fresh ordinary reference.
pub fn new_ref() -> String {
    format!("OpaqueRef:{}", uuid::Uuid::new_v4())
}

pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}
