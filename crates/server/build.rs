// Generates the per-class API traits and their dispatch glue from the datamodel.
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR")).join("../../datamodel");
    println!("cargo:rerun-if-changed={}", dir.display());
    let api = codegen::load(&dir).unwrap_or_else(|e| panic!("datamodel: {e}"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("api.rs"), codegen::gen_server::gen_server(&api)).expect("write api.rs");
}
