#![no_main]
// The get_all_records_where expression parser must never panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = store::filter::parse(s);
    }
});
