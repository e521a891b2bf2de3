#![no_main]
// Any bytes: the XML-RPC request decoder must return Ok or Err, never panic;
// whatever it accepts must survive an encode/decode round trip.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((method, params)) = wire::xmlrpc::parse_call(data) {
        let mut out = Vec::new();
        wire::xmlrpc::write_call(&mut out, &method, &params);
        let (m2, _) = wire::xmlrpc::parse_call(&out).expect("re-encoded call must parse");
        assert_eq!(method.trim(), m2);
    }
});
