//! xapi's CLI output layout (`cli_printer.ml`): records with the first key
//! left-aligned and the rest right-aligned to the longest key plus four;
//! `--minimal` keeps the first value of each record, comma-joined, with
//! commas and backslashes escaped.

pub type Record = Vec<(String, String)>;

/// One record as printed (ends with a newline; the client adds another,
/// which makes the blank line between records).
pub fn record(r: &[(String, String)]) -> String {
    let width = 4 + r.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (i, (k, v)) in r.iter().enumerate() {
        let pad = " ".repeat(width.saturating_sub(k.len()));
        if i == 0 {
            out.push_str(k);
            out.push_str(&pad);
        } else {
            out.push_str(&pad);
            out.push_str(k);
        }
        out.push_str(": ");
        out.push_str(v);
        out.push('\n');
    }
    out
}

pub fn escape_minimal(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ',' => o.push_str("\\,"),
            '\\' => o.push_str("\\\\"),
            c => o.push(c),
        }
    }
    o
}

/// `--minimal` form of a table: the first value of each record.
pub fn minimal_table(rs: &[Record]) -> Option<String> {
    let first = rs.first()?;
    first.first()?;
    Some(rs.iter().filter_map(|r| r.first()).map(|(_, v)| escape_minimal(v)).collect::<Vec<_>>().join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn layout() {
        let r = vec![
            ("uuid ( RO)".to_string(), "u".to_string()),
            ("name-label ( RW)".to_string(), "debian".to_string()),
            ("power-state ( RO)".to_string(), "halted".to_string()),
        ];
        assert_eq!(
            record(&r),
            "uuid ( RO)           : u\n     name-label ( RW): debian\n    power-state ( RO): halted\n"
        );
        assert_eq!(escape_minimal("a,b\\c"), "a\\,b\\\\c");
    }
}
