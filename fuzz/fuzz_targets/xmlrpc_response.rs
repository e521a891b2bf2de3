#![no_main]
// The client-side response decoder and the standalone value parser (task
// results, ova.xml) must never panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wire::xmlrpc::parse_response(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = wire::xmlrpc::parse_value(s);
    }
});
