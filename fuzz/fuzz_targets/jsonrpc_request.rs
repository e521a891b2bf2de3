#![no_main]
// JSON-RPC request and response decoders must never panic; accepted requests
// must produce a reply that parses back.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = wire::jsonrpc::parse_request(data) {
        let mut out = Vec::new();
        let o = wire::Outcome::Success(model::Value::Array(req.params));
        wire::jsonrpc::write_response(&mut out, req.version, &req.id, &o);
        wire::jsonrpc::parse_response(&out).expect("our reply must parse");
    }
    let _ = wire::jsonrpc::parse_response(data);
});
