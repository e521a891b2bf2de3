//! Chooses what gets embedded: `web/dist` once `npm run build` has made it,
//! else a one-page placeholder that says how to build the UI, so `cargo build`
//! works on a fresh clone without npm.
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dist = manifest.join("../../web/dist");
    // Re-run when the UI is rebuilt (new hashed asset names), or when it first
    // appears: a path that does not exist would make every build re-run this
    // and rebuild the server, so then watch web/ (which gains dist/).
    if dist.is_dir() {
        println!("cargo:rerun-if-changed={}", dist.display());
    } else {
        println!("cargo:rerun-if-changed={}", manifest.join("../../web").display());
    }
    let dir = if dist.join("index.html").is_file() {
        dist
    } else {
        let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("placeholder");
        if let Err(e) = std::fs::create_dir_all(&out).and_then(|_| std::fs::write(out.join("index.html"), PLACEHOLDER))
        {
            panic!("writing the placeholder page under {}: {e}", out.display());
        }
        out
    };
    println!("cargo:rustc-env=WEBUI_DIST={}", dir.display());
}

const PLACEHOLDER: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>xapi-rs</title></head>
<body><h1>xapi-rs</h1>
<p>XenAPI server: XML-RPC at POST /, JSON-RPC at POST /jsonrpc.</p>
<p>The management page was not built into this binary. Build it with
<code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>, then <code>cargo build</code> again.</p>
</body></html>
"#;
