// Generates the schema and typed items from the datamodel.
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR")).join("../../datamodel");
    println!("cargo:rerun-if-changed={}", dir.display());
    let api = match codegen::load(&dir) {
        Ok(a) => a,
        Err(e) => panic!("datamodel: {e}"),
    };
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let schema = codegen::gen_schema::gen_schema(&api).unwrap_or_else(|e| panic!("datamodel: {e}"));
    std::fs::write(out.join("schema.rs"), schema).expect("write schema.rs");
    std::fs::write(out.join("types.rs"), codegen::gen_schema::gen_types(&api)).expect("write types.rs");
}
