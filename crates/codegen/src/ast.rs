//! The parsed datamodel.

#[derive(Clone, Debug, PartialEq)]
pub enum Ty {
    String,
    Int,
    Float,
    Bool,
    DateTime,
    Enum(String),
    Ref(String),
    Set(Box<Ty>),
    Map(Box<Ty>, Box<Ty>),
    Record(String),
    Option(Box<Ty>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qual {
    /// Read-write: getter, setter, and add/remove for maps and sets.
    Rw,
    /// Set at construction only.
    RoCtor,
    /// Maintained by the server.
    RoRun,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Life {
    #[default]
    Published,
    Prototyped,
    Deprecated,
    Removed,
}

/// A literal default, kept in its source spelling and interpreted against the type.
#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    Str(String),
    Num(String),
    Bool(bool),
    Null,
    Set(Vec<Lit>),
    Map(Vec<(Lit, Lit)>),
    /// Enum value or ref literal.
    Word(String),
}

#[derive(Clone, Debug)]
pub struct Field {
    /// Namespace path: `["name", "label"]` for `name_label`.
    pub path: Vec<String>,
    pub ty: Ty,
    pub qual: Qual,
    pub default: Option<Lit>,
    pub life: Life,
    pub doc: String,
    /// Who may call the setters, when it differs from the class default.
    pub write: Option<Roles>,
    /// Who may call the getter, when it differs from the class default.
    pub read: Option<Roles>,
    /// Map keys with their own writer role (xapi's `map_keys_roles`): the
    /// key (a trailing `*` matches a prefix) and the least role that may
    /// add or remove it.
    pub key_roles: Vec<(String, String)>,
    /// For a set of refs mirroring a ref field in another class: (class, field).
    /// Such a field is derived by the store and never written directly.
    pub inverse: Option<(String, String)>,
    /// A one-to-many set end: only a getter, even if RW.
    pub one_to_many: bool,
}

impl Field {
    pub fn wire(&self) -> String {
        self.path.join("_")
    }
    pub fn column(&self) -> String {
        self.path.join("__")
    }
}

#[derive(Clone, Debug)]
pub struct Param {
    pub name: String,
    pub ty: Ty,
    pub default: Option<Lit>,
    pub doc: String,
}

/// Roles allowed to call a message: a prefix of the role hierarchy
/// (`min` and every role above it), optionally plus `client-cert`.
#[derive(Clone, Debug, PartialEq)]
pub struct Roles {
    pub min: Option<String>,
    pub cert: bool,
}

pub const ROLE_ORDER: [&str; 6] =
    ["pool-admin", "pool-operator", "vm-power-admin", "vm-admin", "vm-operator", "read-only"];

impl Roles {
    /// The role list as the reference orders it.
    pub fn expand(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if let Some(min) = &self.min {
            for r in ROLE_ORDER {
                out.push(r.to_string());
                if r == min {
                    break;
                }
            }
        }
        if self.cert {
            if out.last().map(|s| s == "read-only").unwrap_or(false) {
                out.insert(out.len() - 1, "client-cert".into());
            } else {
                out.push("client-cert".into());
            }
        }
        out
    }
}

#[derive(Clone, Debug)]
pub struct Message {
    pub name: String,
    pub params: Vec<Param>,
    /// `None` is void.
    pub result: Option<Ty>,
    pub result_doc: String,
    pub errors: Vec<String>,
    pub roles: Roles,
    pub is_async: bool,
    pub session: bool,
    pub hidden: bool,
    pub life: Life,
    pub doc: String,
}

#[derive(Clone, Debug)]
pub struct EnumDef {
    pub name: String,
    pub doc: String,
    pub values: Vec<(String, String)>,
}

#[derive(Clone, Debug, Default)]
pub struct ClassOpts {
    /// Objects live in the store (get_record, get_by_uuid, field getters...).
    pub db: bool,
    /// get_all, get_all_records and the hidden *_where forms exist.
    pub get_all: bool,
    /// Implicit create (one struct) and destroy.
    pub ctor: bool,
    /// Changes emit events.
    pub events: bool,
    /// Not written to disk (sessions, tasks: xapi's PersistNothing).
    pub transient: bool,
    /// Not a database table at all (roles): computed on start, never
    /// persisted, no events, not in valid_ref_counts.
    pub is_static: bool,
    /// Roles for the implicit readers and writers (defaults: read-only plus
    /// client-cert; pool-operator).
    pub read: Option<Roles>,
    pub write: Option<Roles>,
}

#[derive(Clone, Debug)]
pub struct Class {
    pub name: String,
    pub doc: String,
    pub opts: ClassOpts,
    pub life: Life,
    pub fields: Vec<Field>,
    pub messages: Vec<Message>,
    pub enums: Vec<EnumDef>,
}

#[derive(Clone, Debug)]
pub struct ErrorDef {
    pub code: String,
    pub params: Vec<String>,
    pub doc: String,
}

#[derive(Clone, Debug, Default)]
pub struct Api {
    pub classes: Vec<Class>,
    pub errors: Vec<ErrorDef>,
    pub api_version: (u32, u32),
}

impl Class {
    pub fn read_roles(&self) -> Roles {
        self.opts.read.clone().unwrap_or(Roles { min: Some("read-only".into()), cert: true })
    }
    pub fn write_roles(&self) -> Roles {
        self.opts.write.clone().unwrap_or(Roles { min: Some("pool-operator".into()), cert: false })
    }
}

impl Api {
    pub fn class(&self, name: &str) -> Option<&Class> {
        self.classes.iter().find(|c| c.name == name)
    }
    pub fn enums(&self) -> impl Iterator<Item = &EnumDef> {
        self.classes.iter().flat_map(|c| c.enums.iter())
    }
    pub fn find_enum(&self, name: &str) -> Option<&EnumDef> {
        self.enums().find(|e| e.name == name)
    }
}
