//! The two RPC protocols on top of the dispatcher.

use crate::{dispatch, Server};
use wire::stream::{Dialect, Streamed};
use wire::{jsonrpc, xmlrpc, Outcome, WireError};

/// Replies whose top-level collection has at least this many entries are
/// sent while they are encoded (chunked) rather than encoded whole first.
const STREAM_ENTRIES: usize = 256;

/// An encoded reply, or one to encode as it is sent.
pub enum Reply {
    Whole(Vec<u8>),
    Streamed(Streamed),
}

fn reply(o: Outcome, dialect: Dialect) -> Reply {
    if wire::stream::entries(&o) >= STREAM_ENTRIES {
        return Reply::Streamed(Streamed::new(o, dialect));
    }
    // A record fetched on its own is likely fetched again (clients poll
    // get_record): keep its encoding with the row until the row changes.
    if let Outcome::Success(model::Value::Row(r)) = &o {
        match &dialect {
            Dialect::Xml => xmlrpc::keep_row_encoding(r),
            Dialect::Json(..) => jsonrpc::keep_row_encoding(r),
        }
    }
    // Records are a few KiB: allocate once rather than grow from small.
    let cap =
        if matches!(o, Outcome::Success(model::Value::Row(_) | model::Value::Struct(_))) { 16 << 10 } else { 512 };
    let mut out = Vec::with_capacity(cap);
    match &dialect {
        Dialect::Xml => xmlrpc::write_response(&mut out, &o),
        Dialect::Json(version, id) => jsonrpc::write_response(&mut out, *version, id, &o),
    }
    Reply::Whole(out)
}

/// Answer an XML-RPC request body.
pub async fn xml(server: &Server, body: &[u8], local: bool) -> Result<Reply, WireError> {
    let (method, params) = xmlrpc::parse_call(body)?;
    if method == "system.listMethods" {
        let mut out = Vec::with_capacity(512);
        xmlrpc::write_bare_response(&mut out, &model::Value::Array(crate::rows::list_methods()));
        return Ok(Reply::Whole(out));
    }
    let o = dispatch::call(server, &method, params, local).await;
    Ok(reply(o, Dialect::Xml))
}

/// Answer a JSON-RPC request body, in the request's dialect.
pub async fn json(server: &Server, body: &[u8], local: bool) -> Result<Reply, WireError> {
    let req = jsonrpc::parse_request(body)?;
    let o = if req.method == "system.listMethods" {
        Outcome::Success(model::Value::Array(crate::rows::list_methods()))
    } else {
        dispatch::call(server, &req.method, req.params, local).await
    };
    Ok(reply(o, Dialect::Json(req.version, req.id)))
}
