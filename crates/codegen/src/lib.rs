//! Our datamodel, read from `datamodel/*.dm`, and the code generated from it.
//!
//! One description drives the server's schema, the typed Rust items, the SDK
//! and the CLI's command tables. Build scripts call [`load`] then a generator.

pub mod ast;
pub mod gen_schema;
pub mod gen_sdk;
pub mod gen_server;
pub mod names;
pub mod parse;

pub use ast::*;
use std::path::Path;

/// The implicit messages' kinds, mirrored by `model::schema::MsgKind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
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

#[derive(Clone, Debug)]
pub struct DMsg {
    pub kind: Kind,
    pub msg: Message,
}

/// Read every `*.dm` class file plus `errors.dm` and `version` from `dir`.
pub fn load(dir: &Path) -> Result<Api, String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "dm"))
        .collect();
    files.sort();
    let mut api = Api::default();
    for f in files {
        let src = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let name = f.display().to_string();
        if f.file_name().is_some_and(|n| n == "errors.dm") {
            api.errors = parse::parse_errors(&name, &src).map_err(|e| e.to_string())?;
        } else {
            api.classes.push(parse::parse_class(&name, &src).map_err(|e| e.to_string())?);
        }
    }
    let ver = std::fs::read_to_string(dir.join("version")).map_err(|e| format!("version: {e}"))?;
    let (a, b) = ver.trim().split_once('.').ok_or("version must be MAJOR.MINOR")?;
    api.api_version = (a.parse().map_err(|_| "bad major")?, b.parse().map_err(|_| "bad minor")?);
    validate(&api)?;
    Ok(api)
}

fn validate(api: &Api) -> Result<(), String> {
    let mut errs = Vec::new();
    let mut seen_enums = std::collections::HashSet::new();
    for e in api.enums() {
        if !seen_enums.insert(e.name.clone()) {
            errs.push(format!("enum {} defined twice", e.name));
        }
    }
    let check_ty = |ty: &Ty, at: &str, errs: &mut Vec<String>| {
        walk_ty(ty, &mut |t| {
            if let Ty::Enum(e) = t {
                if api.find_enum(e).is_none() {
                    errs.push(format!("{at}: unknown enum {e}"));
                }
            }
        })
    };
    for c in &api.classes {
        let mut names = std::collections::HashSet::new();
        for f in &c.fields {
            if !names.insert(f.wire()) {
                errs.push(format!("{}.{} defined twice", c.name, f.wire()));
            }
            check_ty(&f.ty, &format!("{}.{}", c.name, f.wire()), &mut errs);
        }
        let mut mnames = std::collections::HashSet::new();
        for m in all_messages(c) {
            if !mnames.insert(m.msg.name.clone()) {
                errs.push(format!("{}.{} defined twice", c.name, m.msg.name));
            }
            for p in &m.msg.params {
                check_ty(&p.ty, &format!("{}.{}({})", c.name, m.msg.name, p.name), &mut errs);
            }
            if let Some(r) = &m.msg.result {
                check_ty(r, &format!("{}.{} result", c.name, m.msg.name), &mut errs);
            }
            for e in &m.msg.errors {
                if !api.errors.iter().any(|d| &d.code == e) {
                    errs.push(format!("{}.{}: unknown error {e}", c.name, m.msg.name));
                }
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("\n"))
    }
}

pub fn walk_ty(ty: &Ty, f: &mut dyn FnMut(&Ty)) {
    f(ty);
    match ty {
        Ty::Set(t) | Ty::Option(t) => walk_ty(t, f),
        Ty::Map(k, v) => {
            walk_ty(k, f);
            walk_ty(v, f)
        }
        _ => {}
    }
}

/// Field write roles come from a field's `write=` flag (kept in the doc-free
/// part of the AST as `Field::write`) or the class default.
fn param(name: &str, ty: Ty, doc: &str) -> Param {
    Param { name: name.into(), ty, default: None, doc: doc.into() }
}

#[allow(clippy::too_many_arguments)]
fn implicit(
    name: String,
    kind: Kind,
    params: Vec<Param>,
    result: Option<Ty>,
    roles: Roles,
    is_async: bool,
    life: Life,
    doc: String,
) -> DMsg {
    DMsg {
        kind,
        msg: Message {
            name,
            params,
            result,
            result_doc: String::new(),
            errors: vec![],
            roles,
            is_async,
            session: true,
            hidden: matches!(kind, Kind::GetAllWhere | Kind::GetAllRecordsWhere),
            life,
            doc,
        },
    }
}

/// Every message of a class: the implicit ones xapi derives from the fields,
/// then the explicit ones. An explicit message replaces an implicit one of the
/// same name (e.g. `message.get_all_records`).
pub fn all_messages(c: &Class) -> Vec<DMsg> {
    let mut out: Vec<DMsg> = Vec::new();
    let me = || Ty::Ref(c.name.clone());
    let read = c.read_roles();
    let write = c.write_roles();
    let self_p = || param("self", me(), "The object");
    let has = |n: &str| c.fields.iter().any(|f| f.wire() == n);
    // Only a `name/label` namespace gives get_by_name_label (pool's plain
    // `name_label` does not).
    let has_label = c.fields.iter().any(|f| f.path == ["name", "label"]);
    let cl = c.life;
    if c.opts.db {
        out.push(implicit(
            "get_record".into(),
            Kind::GetRecord,
            vec![self_p()],
            Some(Ty::Record(c.name.clone())),
            read.clone(),
            false,
            cl,
            format!("The whole record of a {} object.", c.name),
        ));
        if has("uuid") {
            out.push(implicit(
                "get_by_uuid".into(),
                Kind::GetByUuid,
                vec![param("uuid", Ty::String, "UUID to look up")],
                Some(me()),
                read.clone(),
                false,
                cl,
                format!("The {} with this UUID.", c.name),
            ));
        }
        if has_label {
            out.push(implicit(
                "get_by_name_label".into(),
                Kind::GetByNameLabel,
                vec![param("label", Ty::String, "Label to match exactly")],
                Some(Ty::Set(Box::new(me()))),
                read.clone(),
                false,
                cl,
                format!("Every {} whose name_label equals the label.", c.name),
            ));
        }
    }
    if c.opts.ctor {
        out.push(implicit(
            "create".into(),
            Kind::Create,
            vec![param("args", Ty::Record(c.name.clone()), "Field values for the new object")],
            Some(me()),
            write.clone(),
            true,
            cl,
            format!("Make a new {} from a record of constructor fields.", c.name),
        ));
        out.push(implicit(
            "destroy".into(),
            Kind::Destroy,
            vec![self_p()],
            None,
            write.clone(),
            true,
            cl,
            format!("Delete this {}.", c.name),
        ));
    }
    if c.opts.db {
        for (i, f) in c.fields.iter().enumerate() {
            let w = f.wire();
            out.push(implicit(
                format!("get_{w}"),
                Kind::Get(i),
                vec![self_p()],
                Some(f.ty.clone()),
                f.read.clone().unwrap_or_else(|| read.clone()),
                false,
                f.life,
                format!("Read the {w} field."),
            ));
        }
        for (i, f) in c.fields.iter().enumerate() {
            if f.qual != Qual::Rw {
                continue;
            }
            let w = f.wire();
            let wr = f.write.clone().unwrap_or_else(|| write.clone());
            out.push(implicit(
                format!("set_{w}"),
                Kind::Set(i),
                vec![self_p(), param("value", f.ty.clone(), "New value")],
                None,
                wr.clone(),
                false,
                f.life,
                format!("Write the {w} field."),
            ));
            match &f.ty {
                Ty::Map(k, v) => {
                    out.push(implicit(
                        format!("add_to_{w}"),
                        Kind::AddTo(i),
                        vec![
                            self_p(),
                            param("key", (**k).clone(), "Key to add"),
                            param("value", (**v).clone(), "Value to add"),
                        ],
                        None,
                        wr.clone(),
                        false,
                        f.life,
                        format!("Add a key to the {w} map; fails if the key is present."),
                    ));
                    out.push(implicit(
                        format!("remove_from_{w}"),
                        Kind::RemoveFrom(i),
                        vec![self_p(), param("key", (**k).clone(), "Key to remove")],
                        None,
                        wr.clone(),
                        false,
                        f.life,
                        format!("Remove a key from the {w} map, if present."),
                    ));
                }
                Ty::Set(t) if !f.one_to_many && f.inverse.is_none() => {
                    out.push(implicit(
                        format!("add_{w}"),
                        Kind::Add(i),
                        vec![self_p(), param("value", (**t).clone(), "Member to add")],
                        None,
                        wr.clone(),
                        false,
                        f.life,
                        format!("Add a member to the {w} set."),
                    ));
                    out.push(implicit(
                        format!("remove_{w}"),
                        Kind::Remove(i),
                        vec![self_p(), param("value", (**t).clone(), "Member to remove")],
                        None,
                        wr.clone(),
                        false,
                        f.life,
                        format!("Remove a member from the {w} set."),
                    ));
                }
                _ => {}
            }
        }
    }
    if c.opts.get_all {
        let set = Ty::Set(Box::new(me()));
        let recs = Ty::Map(Box::new(me()), Box::new(Ty::Record(c.name.clone())));
        out.push(implicit(
            "get_all".into(),
            Kind::GetAll,
            vec![],
            Some(set.clone()),
            read.clone(),
            false,
            cl,
            format!("Every {} object.", c.name),
        ));
        out.push(implicit(
            "get_all_records".into(),
            Kind::GetAllRecords,
            vec![],
            Some(recs.clone()),
            read.clone(),
            false,
            cl,
            format!("Every {} object with its record.", c.name),
        ));
        out.push(implicit(
            "get_all_where".into(),
            Kind::GetAllWhere,
            vec![param("expr", Ty::String, "Filter expression")],
            Some(set),
            read.clone(),
            false,
            cl,
            "Objects matching a filter expression.".into(),
        ));
        out.push(implicit(
            "get_all_records_where".into(),
            Kind::GetAllRecordsWhere,
            vec![param("expr", Ty::String, "Filter expression")],
            Some(recs),
            read.clone(),
            false,
            cl,
            "Objects and records matching a filter expression.".into(),
        ));
    }
    for m in &c.messages {
        out.retain(|d| d.msg.name != m.name);
        out.push(DMsg { kind: Kind::Explicit, msg: m.clone() });
    }
    out
}

pub(crate) fn ast_null() -> String {
    "OpaqueRef:NULL".to_string()
}
