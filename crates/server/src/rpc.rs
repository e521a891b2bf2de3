//! The two RPC protocols on top of the dispatcher.

use crate::{dispatch, Server};
use wire::{jsonrpc, xmlrpc, Outcome, WireError};

/// Answer an XML-RPC request body.
pub async fn xml(server: &Server, body: &[u8], local: bool) -> Result<Vec<u8>, WireError> {
    let (method, params) = xmlrpc::parse_call(body)?;
    let mut out = Vec::with_capacity(512);
    if method == "system.listMethods" {
        xmlrpc::write_bare_response(&mut out, &model::Value::Array(dispatch::list_methods()));
    } else {
        let o = dispatch::call(server, &method, params, local).await;
        xmlrpc::write_response(&mut out, &o);
    }
    Ok(out)
}

/// Answer a JSON-RPC request body, in the request's dialect.
pub async fn json(server: &Server, body: &[u8], local: bool) -> Result<Vec<u8>, WireError> {
    let req = jsonrpc::parse_request(body)?;
    let o = if req.method == "system.listMethods" {
        Outcome::Success(model::Value::Array(dispatch::list_methods()))
    } else {
        dispatch::call(server, &req.method, req.params, local).await
    };
    let mut out = Vec::with_capacity(512);
    jsonrpc::write_response(&mut out, req.version, &req.id, &o);
    Ok(out)
}
