//! The server's layers are used in one direction only: a module may use its
//! own layer and those below it, never one above. This test reads the
//! sources and fails on any `crate::<module>` path that points upwards, so a
//! new shortcut cannot slip in unnoticed. ARCHITECTURE.md describes the layers.

use std::collections::BTreeSet;
use std::path::Path;

/// Bottom to top. Every top-level module of `src/` must be listed.
const LAYERS: &[(&str, &[&str])] = &[
    // Rows and what every layer needs: row builders, wire coercion, the
    // message table, configuration, credentials, the event feed, role rows.
    ("db", &["rows", "config", "passwd", "event", "roles"]),
    // Pure rules over rows: allowed operations, checks, derived fields.
    ("rules", &["lifecycle"]),
    // The only layer that talks to a backend, the disk or a directory:
    // sessions and logins (local and LDAP), the audit log, certificates,
    // the NBD server.
    (
        "services",
        &[
            "xenops", "networkd", "storage", "rrd", "rfb", "task", "session", "extauth", "audit", "certs", "nbd",
            "pooling",
        ],
    ),
    // The generated traits' implementations, implicit messages, and the
    // engines that make objects the way the API does (import, seeding).
    ("api", &["api", "ops", "implicit", "importexport", "seed"]),
    // look up → coerce → session → authorize → route → run (or as a task).
    ("dispatch", &["dispatch"]),
    // Listeners, codecs, HTTP handlers and the xe CLI.
    ("transports", &["http", "rpc", "handlers", "cli"]),
];

/// Known upward uses still to be removed, each with why it is there.
const DEBTS: &[(&str, &str, &str)] = &[];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, mods)| mods.contains(&module))
}

/// The crate-level modules a source file refers to through `crate::`.
fn uses(src: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = src;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name: String = part.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                out.insert(name);
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            out.insert(name);
        }
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn layers_are_used_downwards_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|p| p.strip_prefix(&src).ok())
        .filter_map(|p| p.components().next())
        .map(|c| c.as_os_str().to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    let mut errors = Vec::new();
    for m in &modules {
        if m != "lib" && m != "main" && layer_of(m).is_none() {
            errors.push(format!("module `{m}` is in no layer: add it to LAYERS"));
        }
    }
    let mut debts_seen = BTreeSet::new();
    for f in &files {
        let rel = f.strip_prefix(&src).expect("under src");
        let top = rel.components().next().expect("a file").as_os_str().to_string_lossy();
        let top = top.trim_end_matches(".rs");
        // lib.rs is the crate root: shared types and the start-up wiring.
        let Some(from) = layer_of(top) else { continue };
        let text = std::fs::read_to_string(f).expect("read source");
        // Unit tests may reach anywhere.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for used in uses(code) {
            let Some(to) = layer_of(&used) else { continue };
            if to <= from {
                continue;
            }
            if DEBTS.iter().any(|(a, b, _)| *a == top && *b == used) {
                debts_seen.insert((top.to_string(), used.clone()));
                continue;
            }
            errors.push(format!(
                "{}: `{top}` ({}) uses `crate::{used}` ({}), a higher layer",
                rel.display(),
                LAYERS[from].0,
                LAYERS[to].0
            ));
        }
    }
    for (a, b, why) in DEBTS {
        if !debts_seen.contains(&(a.to_string(), b.to_string())) {
            errors.push(format!("debt `{a}` → `{b}` ({why}) is paid: remove it from DEBTS"));
        }
    }
    assert!(errors.is_empty(), "layering violations:\n{}", errors.join("\n"));
}
