//! Implicit messages, served generically from the schema: getters, setters,
//! map and set edits, get_record, get_by_uuid/name_label, get_all(_records)
//! (_where), and the struct constructor / destructor. Classes that need
//! checks or side effects plug in [`Hooks`].

use crate::rows::coerce;
use crate::{handle_invalid, ApiError, Ctx, Result};
use model::schema::{ClassDef, MsgDef, MsgKind, Qual, Type};
use model::{Row, Value};
use store::Txn;

/// Per-class checks and side effects run inside the writing transaction.
#[derive(Default, Clone, Copy)]
pub struct Hooks {
    /// After the constructor struct is read, before the row is inserted.
    pub create: Option<CreateHook>,
    /// Before the row is deleted.
    pub destroy: Option<DestroyHook>,
    /// After a field write (set/add/remove) has been applied to `row`.
    pub set: Option<SetHook>,
}

pub type CreateHook = fn(&Ctx, &mut Txn, &str, &mut Row) -> Result<()>;
pub type DestroyHook = fn(&Ctx, &mut Txn, &str, &Row) -> Result<()>;
/// The usize is the index of the field written.
pub type SetHook = fn(&Ctx, &mut Txn, &str, usize, &mut Row) -> Result<()>;

fn self_ref(c: &ClassDef, args: &[Value]) -> Result<String> {
    match args.first() {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(handle_invalid(c, "")),
    }
}

fn str_arg(args: &[Value], i: usize) -> String {
    match args.get(i) {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

pub async fn call(ctx: &Ctx, c: &'static ClassDef, m: &'static MsgDef, args: Vec<Value>) -> Result<Value> {
    let s = &ctx.server;
    match m.kind {
        MsgKind::Explicit => Err(crate::internal("explicit message routed to the implicit handler")),
        MsgKind::GetRecord => {
            let r = self_ref(c, &args)?;
            Ok(Value::Row(s.row(c, &r)?))
        }
        MsgKind::Get(i) => {
            let r = self_ref(c, &args)?;
            Ok(s.row(c, &r)?.fields[i].clone())
        }
        MsgKind::GetByUuid => {
            let u = str_arg(&args, 0);
            let st = s.db.read();
            match st.table(c).by_uuid(&u) {
                Some(r) => Ok(Value::String(r.to_string())),
                None => Err(ApiError::UuidInvalid { r#type: c.name.to_string(), uuid: u }),
            }
        }
        MsgKind::GetByNameLabel => {
            let label = str_arg(&args, 0);
            let i = crate::field(c, "name_label");
            let st = s.db.read();
            let mut out: Vec<Value> = st
                .table(c)
                .iter()
                .filter(|(_, row)| row.fields[i].as_str() == Some(label.as_str()))
                .map(|(r, _)| Value::String(r.clone()))
                .collect();
            out.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            Ok(Value::Array(out))
        }
        MsgKind::GetAll => {
            let st = s.db.read();
            Ok(Value::Array(st.table(c).iter().map(|(r, _)| Value::String(r.clone())).collect()))
        }
        MsgKind::GetAllRecords => {
            let st = s.db.read();
            Ok(Value::Struct(st.table(c).iter().map(|(r, row)| (r.clone(), Value::Row(row.clone()))).collect()))
        }
        MsgKind::GetAllWhere | MsgKind::GetAllRecordsWhere if c.id == model::schema::ClassId::Role => {
            // Roles ignore the grammar: two magic strings select roles or
            // permissions, anything else selects everything (as xapi).
            let expr = str_arg(&args, 0);
            let sub = crate::field(c, "subroles");
            let st = s.db.read();
            let hits = st.table(c).iter().filter(|(_, row)| {
                let has = matches!(row.get(sub), Value::Array(a) if !a.is_empty());
                match expr.as_str() {
                    "subroles<>[]" => has,
                    "subroles=[]" => !has,
                    _ => true,
                }
            });
            Ok(if m.kind == MsgKind::GetAllWhere {
                Value::Array(hits.map(|(r, _)| Value::String(r.clone())).collect())
            } else {
                Value::Struct(hits.map(|(r, row)| (r.clone(), Value::Row(row.clone()))).collect())
            })
        }
        MsgKind::GetAllWhere | MsgKind::GetAllRecordsWhere => {
            let expr = str_arg(&args, 0);
            let e = store::filter::parse(&expr)
                .map_err(|msg| ApiError::InvalidValue { field: expr.clone(), value: msg })?;
            let st = s.db.read();
            let hits = st.table(c).iter().filter(|(r, row)| store::filter::eval(&e, r, row));
            Ok(if m.kind == MsgKind::GetAllWhere {
                Value::Array(hits.map(|(r, _)| Value::String(r.clone())).collect())
            } else {
                Value::Struct(hits.map(|(r, row)| (r.clone(), Value::Row(row.clone()))).collect())
            })
        }
        MsgKind::Set(i) | MsgKind::AddTo(i) | MsgKind::RemoveFrom(i) | MsgKind::Add(i) | MsgKind::Remove(i) => {
            let r = self_ref(c, &args)?;
            let hooks = crate::ops::hooks(c);
            ctx.write(|tx| {
                let mut row = tx.get(c, &r).cloned().ok_or_else(|| handle_invalid(c, &r))?;
                edit_field(c, &r, &mut row, m.kind, i, &args)?;
                if let Some(h) = hooks.set {
                    h(ctx, tx, &r, i, &mut row)?;
                }
                tx.insert(&r, row);
                Ok(())
            })?;
            Ok(Value::String(String::new()))
        }
        MsgKind::Create => {
            let rec = args.into_iter().next().unwrap_or(Value::Struct(vec![]));
            if let Some(r) = crate::ops::create_with_io(ctx, c, &rec).await {
                return r.map(Value::String);
            }
            let r = create(ctx, c, rec)?;
            Ok(Value::String(r))
        }
        MsgKind::Destroy => {
            let r = self_ref(c, &args)?;
            if let Some(res) = crate::ops::destroy_with_io(ctx, c, &r).await {
                return res.map(|_| Value::String(String::new()));
            }
            destroy(ctx, c, &r)?;
            Ok(Value::String(String::new()))
        }
    }
}

/// Apply one implicit field edit to a row.
fn edit_field(c: &ClassDef, r: &str, row: &mut Row, kind: MsgKind, i: usize, args: &[Value]) -> Result<()> {
    let f = &c.fields[i];
    let arg = |n: usize| args.get(n).cloned().unwrap_or(Value::Nil);
    match kind {
        MsgKind::Set(_) => row.fields[i] = arg(1),
        MsgKind::AddTo(_) => {
            let key = wire::xmlrpc::value_as_text(&arg(1));
            if key.is_empty() {
                return Err(crate::internal("Empty_key_in_map"));
            }
            let Value::Struct(m) = &mut row.fields[i] else {
                return Err(crate::internal("not a map"));
            };
            if m.iter().any(|(k, _)| *k == key) {
                return Err(ApiError::MapDuplicateKey {
                    r#type: c.name.to_string(),
                    param_name: f.column.to_string(),
                    uuid: r.to_string(),
                    key,
                });
            }
            m.push((key, arg(2)));
        }
        MsgKind::RemoveFrom(_) => {
            let key = wire::xmlrpc::value_as_text(&arg(1));
            if let Value::Struct(m) = &mut row.fields[i] {
                m.retain(|(k, _)| *k != key);
            }
        }
        MsgKind::Add(_) => {
            let v = arg(1);
            if let Value::Array(a) = &mut row.fields[i] {
                if !a.contains(&v) {
                    a.push(v);
                }
            }
        }
        MsgKind::Remove(_) => {
            let v = arg(1);
            if let Value::Array(a) = &mut row.fields[i] {
                a.retain(|x| *x != v);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Build a new row from a constructor struct: RW and RO-constructor fields
/// are taken from it (required unless they have a default), extra and
/// read-only keys are ignored, runtime fields get their defaults.
pub fn row_from_ctor(c: &'static ClassDef, rec: &Value) -> Result<Row> {
    let mut row = store::blank_row(c);
    for (i, f) in c.fields.iter().enumerate() {
        if f.qual == Qual::RoRun {
            continue;
        }
        match rec.member(f.name) {
            Some(v) => row.fields[i] = coerce(v.clone(), f.ty, f.name)?,
            None if f.default.is_some() => {}
            None => {
                return Err(ApiError::InternalError {
                    message: format!("Server_helpers.Dispatcher_FieldNotFound(\"{}\")", f.name),
                })
            }
        }
    }
    Ok(row)
}

/// Implicit constructor: returns the new ref.
pub fn create(ctx: &Ctx, c: &'static ClassDef, rec: Value) -> Result<String> {
    let mut row = row_from_ctor(c, &rec)?;
    if let Some(u) = c.field_index("uuid") {
        row.fields[u] = Value::String(model::new_uuid());
    }
    let r = model::new_ref();
    let hooks = crate::ops::hooks(c);
    ctx.write(|tx| {
        if let Some(h) = hooks.create {
            h(ctx, tx, &r, &mut row)?;
        }
        tx.insert(&r, row);
        Ok(())
    })?;
    Ok(r)
}

pub fn destroy(ctx: &Ctx, c: &'static ClassDef, r: &str) -> Result<()> {
    let hooks = crate::ops::hooks(c);
    ctx.write(|tx| {
        let row = tx.get(c, r).cloned().ok_or_else(|| handle_invalid(c, r))?;
        if let Some(h) = hooks.destroy {
            h(ctx, tx, r, &row)?;
        }
        tx.delete(c, r);
        Ok(())
    })
}

/// True if a value is the right shape for a type (used by seeding checks).
pub fn fits(v: &Value, ty: &Type) -> bool {
    matches!(
        (ty, v),
        (Type::String | Type::Enum(_) | Type::Ref(_), Value::String(_))
            | (Type::Int, Value::Int(_))
            | (Type::Float, Value::Float(_))
            | (Type::Bool, Value::Bool(_))
            | (Type::DateTime, Value::DateTime(_))
            | (Type::Set(_), Value::Array(_))
            | (Type::Map(_, _) | Type::Record(_), Value::Struct(_))
            | (Type::Option(_), _)
    )
}
