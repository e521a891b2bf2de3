//! Generates the SDK's typed API: one struct per class with a method per
//! message (implicit and explicit), and an `_async` twin for messages with an
//! Async form. Wire names stay exact; Rust names are snake_case.

use crate::ast::*;
use crate::gen_schema::rust_ty;
use crate::names::{camel, lit, snake};
use crate::{all_messages, Kind};
use std::fmt::Write;

/// How a parameter is taken: primitives by value, everything else borrowed.
fn arg_ty(api: &Api, t: &Ty) -> String {
    match t {
        Ty::Int | Ty::Float | Ty::Bool | Ty::DateTime => rust_ty(api, t),
        Ty::String => "&str".into(),
        Ty::Set(inner) => format!("&[{}]", rust_ty(api, inner)),
        _ => format!("&{}", rust_ty(api, t)),
    }
}

fn to_value(t: &Ty, name: &str) -> String {
    match t {
        Ty::String => format!("Value::from({name})"),
        Ty::Set(_) => format!("Value::Array({name}.iter().map(XenType::to_value).collect())"),
        _ => format!("{name}.to_value()"),
    }
}

fn docs(w: &mut String, indent: &str, text: &str) {
    for l in text.lines() {
        writeln!(w, "{indent}/// {l}").ok();
    }
}

pub fn gen_sdk(api: &Api) -> String {
    let mut o = String::new();
    let w = &mut o;
    writeln!(w, "// Generated from datamodel/ by the codegen crate. Do not edit.").ok();
    // The SDK's own Session and Task types are imported under other names so
    // the class markers `Session` and `Task` (as in `Ref<Task>`) stay usable.
    writeln!(w, "impl SdkSession {{").ok();
    for c in &api.classes {
        if all_messages(c).is_empty() {
            continue;
        }
        writeln!(w, "    /// The `{}` class: {}", c.name, c.doc.lines().next().unwrap_or("")).ok();
        writeln!(
            w,
            "    pub fn {}(&self) -> {}Api<'_> {{ {}Api {{ s: self }} }}",
            snake(&c.name),
            camel(&c.name),
            camel(&c.name)
        )
        .ok();
    }
    writeln!(w, "}}").ok();
    // Test support: every record type, by class name.
    writeln!(w, "/// Decode a value as the typed record of `class` and encode it again (tests).\n#[doc(hidden)]\npub fn __record_roundtrip(class: &str, v: &Value) -> Option<std::result::Result<Value, model::TypeError>> {{ Some(match class {{").ok();
    for c in &api.classes {
        writeln!(w, "    {} => {}Record::from_value(v).map(|r| r.to_value()),", lit(&c.name), camel(&c.name)).ok();
    }
    writeln!(w, "    _ => return None }}) }}").ok();
    writeln!(w, "/// A default record of every class (tests).\n#[doc(hidden)]\npub fn __record_defaults() -> Vec<(&'static str, Value)> {{ vec![").ok();
    for c in &api.classes {
        writeln!(w, "    ({}, {}Record::default().to_value()),", lit(&c.name), camel(&c.name)).ok();
    }
    writeln!(w, "] }}").ok();
    for c in &api.classes {
        let msgs = all_messages(c);
        if msgs.is_empty() {
            continue;
        }
        let api_ty = format!("{}Api", camel(&c.name));
        docs(w, "", &format!("Messages of the `{}` class. {}", c.name, c.doc));
        writeln!(w, "#[derive(Clone, Copy)]\npub struct {api_ty}<'a> {{ s: &'a SdkSession }}").ok();
        writeln!(w, "impl<'a> {api_ty}<'a> {{").ok();
        for d in &msgs {
            let m = &d.msg;
            // The implicit constructor takes the record; name its argument after the class.
            let mut params: Vec<String> = Vec::new();
            let mut values: Vec<String> = Vec::new();
            for p in &m.params {
                let n = snake(&p.name);
                params.push(format!("{n}: {}", arg_ty(api, &p.ty)));
                values.push(to_value(&p.ty, &n));
            }
            let ret = m.result.as_ref().map(|t| rust_ty(api, t)).unwrap_or_else(|| "()".into());
            let wire = format!("{}.{}", c.name, m.name);
            let mut doc = m.doc.clone();
            if m.life == Life::Deprecated {
                doc.push_str(" (Deprecated.)");
            }
            if m.life == Life::Removed {
                doc.push_str(" (Removed: the server answers MESSAGE_REMOVED.)");
            }
            for p in &m.params {
                if !p.doc.is_empty() {
                    doc.push_str(&format!("\n* `{}`: {}", snake(&p.name), p.doc));
                }
            }
            if !m.result_doc.is_empty() {
                doc.push_str(&format!("\n\nReturns: {}", m.result_doc));
            }
            doc.push_str(&format!("\n\nWire name: `{wire}`."));
            docs(w, "    ", &doc);
            let fname = snake(&m.name);
            let sess = if m.session { "true" } else { "false" };
            writeln!(
                w,
                "    pub async fn {fname}(self{}{}) -> Result<{ret}> {{ let args = vec![{}]; self.s.invoke::<{ret}>({}, {sess}, args).await }}",
                if params.is_empty() { "" } else { ", " },
                params.join(", "),
                values.join(", "),
                lit(&wire)
            )
            .ok();
            if m.is_async {
                docs(w, "    ", &format!("Start `{wire}` as a task and return at once: `Async.{wire}`. Wait for it with [`crate::Task::wait`]."));
                writeln!(
                    w,
                    "    pub async fn {fname}_async(self{}{}) -> Result<TaskHandle<{ret}>> {{ let args = vec![{}]; self.s.invoke_async::<{ret}>({}, args).await }}",
                    if params.is_empty() { "" } else { ", " },
                    params.join(", "),
                    values.join(", "),
                    lit(&format!("Async.{wire}"))
                )
                .ok();
            }
            let _ = Kind::Explicit;
        }
        writeln!(w, "}}").ok();
    }
    o
}
