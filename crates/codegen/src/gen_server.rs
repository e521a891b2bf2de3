//! Generates the server's per-class API traits (one method per explicit
//! message, typed arguments, "not implemented" by default) and the glue that
//! unpacks wire arguments and calls them.

use crate::ast::*;
use crate::gen_schema::rust_ty;
use crate::names::{camel, lit, snake};
use std::fmt::Write;

pub fn trait_name(class: &str) -> String {
    format!("{}Api", camel(class))
}

pub fn method_name(msg: &str) -> String {
    snake(msg)
}

fn ret_ty(api: &Api, m: &Message) -> String {
    m.result.as_ref().map(|t| rust_ty(api, t)).unwrap_or_else(|| "()".into())
}

pub fn gen_server(api: &Api) -> String {
    let mut o = String::new();
    let w = &mut o;
    writeln!(w, "// Generated from datamodel/ by the codegen crate. Do not edit.").ok();
    for c in &api.classes {
        if c.messages.is_empty() {
            continue;
        }
        writeln!(w, "/// Explicit messages of `{}`. Unimplemented ones answer NOT_IMPLEMENTED.", c.name).ok();
        writeln!(w, "pub trait {}: Sync {{", trait_name(&c.name)).ok();
        for m in &c.messages {
            for line in m.doc.lines() {
                writeln!(w, "    /// {line}").ok();
            }
            let params: Vec<String> =
                m.params.iter().map(|p| format!("{}: {}", snake(&p.name), rust_ty(api, &p.ty))).collect();
            let sep = if params.is_empty() { "" } else { ", " };
            writeln!(
                w,
                "    #[allow(unused_variables)]\n    fn {}(&self, ctx: &Ctx{sep}{}) -> impl std::future::Future<Output = Result<{}, ApiError>> + Send {{ async move {{ Err(ApiError::NotImplemented {{ function: {}.to_string() }}) }} }}",
                method_name(&m.name),
                params.join(", "),
                ret_ty(api, m),
                lit(&format!("{}.{}", c.name, m.name))
            )
            .ok();
        }
        writeln!(w, "}}").ok();
    }
    writeln!(w, "/// Call an explicit message with arguments already checked against the schema.").ok();
    writeln!(w, "pub async fn dispatch_explicit(s: &Server, ctx: &Ctx, class: &str, msg: &str, args: &[Value]) -> Result<Value, ApiError> {{").ok();
    writeln!(w, "    match (class, msg) {{").ok();
    for c in &api.classes {
        for m in &c.messages {
            let mut call_args = Vec::new();
            let mut lets = String::new();
            for (i, p) in m.params.iter().enumerate() {
                writeln!(lets, "let a{i}: {} = arg(args, {i}, {})?;", rust_ty(api, &p.ty), lit(&p.name)).ok();
                call_args.push(format!("a{i}"));
            }
            let sep = if call_args.is_empty() { "" } else { ", " };
            let conv = if m.result.is_some() { "r.to_value()" } else { "{ let () = r; Value::String(String::new()) }" };
            writeln!(
                w,
                "        ({}, {}) => {{ {lets} let r = Box::pin(<Server as {}>::{}(s, ctx{sep}{})).await?; Ok({conv}) }}",
                lit(&c.name),
                lit(&m.name),
                trait_name(&c.name),
                method_name(&m.name),
                call_args.join(", ")
            )
            .ok();
        }
    }
    writeln!(w, "        _ => Err(ApiError::MessageMethodUnknown {{ method: format!(\"{{class}}.{{msg}}\") }}),").ok();
    writeln!(w, "    }}\n}}").ok();
    o
}
