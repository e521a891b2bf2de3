//! The management web page: the files of `web/dist` (or a placeholder, see
//! build.rs) embedded in the binary, and the headers they are served with.
//! Independent of the HTTP stack: `get` answers with status, headers and body.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

#[derive(rust_embed::RustEmbed)]
#[folder = "$WEBUI_DIST"]
struct Dist;

/// One answer to a `GET` for a UI file.
pub struct Asset {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Cow<'static, [u8]>,
}

/// What of the request decides the answer.
#[derive(Default)]
pub struct Request<'a> {
    pub path: &'a str,
    pub accept_encoding: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    /// The `Host` header, for the console's WebSocket source in the CSP.
    pub host: Option<&'a str>,
}

/// Whether the embedded UI is the real one (false: the placeholder page).
pub fn built() -> bool {
    Dist::iter().any(|f| f.starts_with("assets/"))
}

/// The file at `req.path`, or None (the caller's 404).
pub fn get(req: &Request) -> Option<Asset> {
    let name = match req.path.trim_start_matches('/') {
        "" => "index.html",
        p => p,
    };
    let file = Dist::get(name)?;
    let hash = hex(&file.metadata.sha256_hash()[..16]);
    let ty = content_type(name);
    let (body, gzip) = match (compressible(ty) && accepts_gzip(req.accept_encoding), file.data) {
        (true, Cow::Borrowed(raw)) => match gzipped(name, raw) {
            Some(gz) => (Cow::Borrowed(gz), true),
            None => (Cow::Borrowed(raw), false),
        },
        (_, data) => (data, false),
    };
    // Each encoding is its own representation, so its own tag; either one
    // revalidates, since both stand for the same file.
    let etag = if gzip { format!("\"{hash}-gz\"") } else { format!("\"{hash}\"") };
    let mut headers = vec![
        ("content-type", ty.to_string()),
        ("cache-control", cache_control(name).to_string()),
        ("etag", etag),
        ("vary", "accept-encoding".to_string()),
        ("x-content-type-options", "nosniff".to_string()),
    ];
    if ty.starts_with("text/html") {
        headers.push(("content-security-policy", csp(req.host)));
        // Export links carry the session in their query: never send it on.
        headers.push(("referrer-policy", "no-referrer".to_string()));
        headers.push(("x-frame-options", "DENY".to_string()));
    }
    let fresh = |t: &str| {
        let t = t.trim().trim_start_matches("W/").trim_matches('"');
        t == "*" || t.strip_suffix("-gz").unwrap_or(t) == hash
    };
    if req.if_none_match.is_some_and(|v| v.split(',').any(fresh)) {
        return Some(Asset { status: 304, headers, body: Cow::Borrowed(&[]) });
    }
    if gzip {
        headers.push(("content-encoding", "gzip".to_string()));
    }
    Some(Asset { status: 200, headers, body })
}

/// Vite names every bundled file after its content hash, so those never
/// change under their name; `index.html` (which names them) and anything
/// else must be revalidated.
fn cache_control(name: &str) -> &'static str {
    if name.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

/// Only this origin's scripts, styles and connections; the console's
/// WebSocket is named with the host the page was loaded from (older browsers
/// do not let `'self'` cover `ws:`), never any host.
pub fn csp(host: Option<&str>) -> String {
    let ws = host
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)))
        .map(|h| format!(" ws://{h} wss://{h}"))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
         connect-src 'self'{ws}; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, e)| e) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("wasm") => "application/wasm",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn compressible(ty: &str) -> bool {
    ty.starts_with("text/") || ty == "application/json" || ty == "image/svg+xml"
}

fn accepts_gzip(v: Option<&str>) -> bool {
    v.into_iter().flat_map(|v| v.split(',')).any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("");
        let q0 = parts.any(|p| p.strip_prefix("q=").is_some_and(|q| q.parse::<f32>().map_or(true, |q| q <= 0.0)));
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q0
    })
}

/// The gzip form of an embedded file, made on first request and kept for the
/// life of the process (one per file at most, so the leak is bounded). None
/// when compressing does not make it smaller.
fn gzipped(name: &str, raw: &'static [u8]) -> Option<&'static [u8]> {
    /// File name → its gzip form (None: not worth it).
    type Cache = Mutex<HashMap<String, Option<&'static [u8]>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hit) = cache.lock().ok()?.get(name) {
        return *hit;
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(raw.len() / 3), flate2::Compression::best());
    let gz = match enc.write_all(raw).and_then(|_| enc.finish()) {
        Ok(gz) if gz.len() < raw.len() => Some(&*Box::leak(gz.into_boxed_slice())),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(name, "compressing a UI file: {e}");
            None
        }
    };
    cache.lock().ok()?.insert(name.to_string(), gz);
    gz
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn index_is_served_with_csp_and_no_cache() {
        let a = get(&Request { path: "/", host: Some("127.0.0.1:8080"), ..Default::default() }).expect("index");
        assert_eq!(a.status, 200);
        let h: HashMap<_, _> = a.headers.iter().cloned().collect();
        assert_eq!(h["cache-control"], "no-cache");
        assert!(h["content-type"].starts_with("text/html"));
        let csp = &h["content-security-policy"];
        assert!(csp.contains("default-src 'self'") && csp.contains("ws://127.0.0.1:8080"), "{csp}");
        assert!(String::from_utf8_lossy(&a.body).contains("<html"));
    }

    #[test]
    fn a_bad_host_is_left_out_of_the_csp() {
        assert!(!csp(Some("evil.example; script-src *")).contains("evil"));
        assert!(!csp(None).contains("ws:"));
    }

    #[test]
    fn gzip_when_asked_and_etag_revalidates() {
        let plain = get(&Request { path: "/index.html", ..Default::default() }).expect("index");
        let gz = get(&Request { path: "/index.html", accept_encoding: Some("br, gzip;q=0.8"), ..Default::default() })
            .expect("index");
        if gz.headers.iter().any(|(k, v)| *k == "content-encoding" && v == "gzip") {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&gz.body[..]).read_to_end(&mut out).expect("gunzip");
            assert_eq!(out, &plain.body[..]);
        }
        let refused =
            get(&Request { path: "/", accept_encoding: Some("gzip;q=0"), ..Default::default() }).expect("index");
        assert!(!refused.headers.iter().any(|(k, _)| *k == "content-encoding"));
        let etag = plain.headers.iter().find(|(k, _)| *k == "etag").map(|(_, v)| v.clone()).expect("etag");
        let again = get(&Request { path: "/", if_none_match: Some(&etag), ..Default::default() }).expect("index");
        assert_eq!(again.status, 304);
        assert!(again.body.is_empty());
        let gz_tag = gz.headers.iter().find(|(k, _)| *k == "etag").map(|(_, v)| v.clone()).expect("etag");
        let again = get(&Request { path: "/", if_none_match: Some(&format!("\"x\", {gz_tag}")), ..Default::default() })
            .expect("index");
        assert_eq!(again.status, 304);
        let other = get(&Request { path: "/", if_none_match: Some("\"0123\""), ..Default::default() }).expect("index");
        assert_eq!(other.status, 200);
    }

    #[test]
    fn unknown_files_are_none() {
        assert!(get(&Request { path: "/nope.js", ..Default::default() }).is_none());
        assert!(get(&Request { path: "/../Cargo.toml", ..Default::default() }).is_none());
    }

    #[test]
    fn hashed_assets_are_immutable() {
        assert_eq!(cache_control("assets/index-abc123.js"), "public, max-age=31536000, immutable");
        assert_eq!(cache_control("favicon.svg"), "no-cache");
    }
}
