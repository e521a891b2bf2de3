//! Rust spellings of datamodel names. Wire names stay exact; only the Rust
//! identifiers change.

/// `VM_guest_metrics` → `VmGuestMetrics`, `balance-slb` → `BalanceSlb`.
pub fn camel(s: &str) -> String {
    let mut out = String::new();
    for part in s.split(['_', '-', ' ', '.', '/']).filter(|p| !p.is_empty()) {
        let mut cs = part.chars();
        if let Some(first) = cs.next() {
            out.extend(first.to_uppercase());
            let rest: String = cs.collect();
            // Acronyms (VM, SR, VCPUs) read better as Vm, Sr, Vcpus.
            if part.chars().take(2).all(|c| c.is_ascii_uppercase()) {
                out.push_str(&rest.to_lowercase());
            } else {
                out.push_str(&rest);
            }
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        out.insert(0, 'V');
    }
    out
}

const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for", "if", "impl", "in",
    "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "Self", "static", "struct", "super",
    "trait", "true", "type", "unsafe", "use", "where", "while", "async", "await", "dyn", "abstract", "become", "box",
    "do", "final", "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// `VCPUs_max` → `vcpus_max`, `type` → `r#type`.
pub fn snake(s: &str) -> String {
    let mut out = s.replace(['-', '.', '/'], "_").to_lowercase();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    if KEYWORDS.contains(&out.as_str()) {
        if out == "self" || out == "Self" || out == "crate" || out == "super" {
            out.push('_');
        } else {
            out.insert_str(0, "r#");
        }
    }
    out
}

/// `VCPUs_max` → `VCPUS_MAX`.
pub fn shout(s: &str) -> String {
    s.replace(['-', '.', '/'], "_").to_uppercase()
}

/// A Rust string literal.
pub fn lit(s: &str) -> String {
    format!("{s:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn spellings() {
        assert_eq!(camel("VM_guest_metrics"), "VmGuestMetrics");
        assert_eq!(camel("host_cpu"), "HostCpu");
        assert_eq!(camel("balance-slb"), "BalanceSlb");
        assert_eq!(camel("PVS_proxy"), "PvsProxy");
        assert_eq!(camel("changing_VCPUs_live"), "ChangingVcpusLive");
        assert_eq!(snake("VCPUs_max"), "vcpus_max");
        assert_eq!(snake("type"), "r#type");
    }
}
