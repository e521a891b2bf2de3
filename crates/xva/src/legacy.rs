//! The legacy XVA format of the XenServer 7.3 SDK guide (§3.5.1):
//!
//! ```text
//! ova.xml            <appliance version="0.1"><vm name=…><label/><shortdesc/>
//!                    <config mem_set vcpus/><hacks is_hvm kernel_boot_cmdline/>
//!                    <vbd device function mode vdi/>…</vm><vdi name size source type/>…</appliance>
//! sda/chunk000000000.gz   gzip of exactly 10⁹ bytes of disk (the last may be shorter)
//! ```
//!
//! The metadata parser is lenient where the guide's own example is sloppy
//! (an unclosed `<hacks>`, an attribute value split across lines, trailing
//! spaces) and strict where it matters: sizes must be numbers, sources must
//! be relative `file://` paths without `..`, chunk names must be well formed,
//! and no disk may grow past its declared size.

use crate::read::{Summary, Target};
use crate::{invalid, Error, Result};
use std::collections::HashMap;
use std::io::Read;

/// Bytes of disk per legacy chunk: 10⁹ (GB, not GiB).
pub const LEGACY_CHUNK: u64 = 1_000_000_000;
/// The largest disk a legacy file may declare (16 TiB).
pub const MAX_DISK: u64 = 16 << 40;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct LegacyVbd {
    pub device: String,
    pub function: String,
    pub mode: String,
    pub vdi: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct LegacyVdi {
    pub name: String,
    pub size: u64,
    /// Directory (relative to ova.xml) holding the chunks.
    pub dir: String,
    pub kind: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct LegacyVm {
    pub name: String,
    pub label: String,
    pub shortdesc: String,
    pub mem_set: u64,
    pub vcpus: u64,
    pub is_hvm: bool,
    pub kernel_boot_cmdline: String,
    pub vbds: Vec<LegacyVbd>,
    pub vdis: Vec<LegacyVdi>,
}

pub fn is_legacy(xml: &str) -> bool {
    xml.contains("<appliance")
}

/// One tag: its name, attributes, and whether it closes itself.
struct Tag {
    name: String,
    attrs: Vec<(String, String)>,
    end: usize,
}

fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("<!--") {
        out.push_str(&rest[..i]);
        match rest[i..].find("-->") {
            Some(j) => rest = &rest[i + j + 3..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

/// Every start tag, in order. Attribute values may span lines.
fn tags(s: &str) -> Result<Vec<Tag>> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(off) = s[i..].find('<') {
        let start = i + off;
        let rest = &s[start + 1..];
        if rest.starts_with('/') || rest.starts_with('?') || rest.starts_with('!') {
            i = start + 1;
            continue;
        }
        // Find the closing '>' outside quotes.
        let mut j = start + 1;
        let mut quote: Option<u8> = None;
        while j < b.len() {
            match (quote, b[j]) {
                (None, b'"') | (None, b'\'') => quote = Some(b[j]),
                (Some(q), c) if c == q => quote = None,
                (None, b'>') => break,
                _ => {}
            }
            j += 1;
        }
        if j >= b.len() {
            return invalid("ova.xml: unterminated tag");
        }
        let inner = s[start + 1..j].trim_end_matches('/');
        let name_end = inner.find(|c: char| c.is_whitespace()).unwrap_or(inner.len());
        let name = inner[..name_end].to_string();
        let mut attrs = Vec::new();
        let mut a = &inner[name_end..];
        loop {
            a = a.trim_start();
            let Some(eq) = a.find('=') else { break };
            let key = a[..eq].trim().to_string();
            let v = a[eq + 1..].trim_start();
            let Some(q) = v.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                return invalid(format!("ova.xml: attribute {key} is not quoted"));
            };
            let Some(close) = v[1..].find(q) else { return invalid(format!("ova.xml: attribute {key} is not closed")) };
            attrs.push((key, unescape(&v[1..1 + close])));
            a = &v[1 + close + 1..];
        }
        out.push(Tag { name, attrs, end: j + 1 });
        i = j + 1;
    }
    Ok(out)
}

impl Tag {
    fn attr(&self, k: &str) -> Option<&str> {
        self.attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.trim())
    }
}

fn text_after(s: &str, t: &Tag, name: &str) -> String {
    let rest = &s[t.end..];
    let close = format!("</{name}>");
    let end = rest.find(&close).unwrap_or_else(|| rest.find('<').unwrap_or(rest.len()));
    unescape(rest[..end].trim())
}

fn number(v: Option<&str>, what: &str) -> Result<u64> {
    let v = v.ok_or_else(|| Error::Invalid(format!("ova.xml: {what} is missing")))?;
    v.trim().parse().map_err(|_| Error::Invalid(format!("ova.xml: {what} is not a number: {v:?}")))
}

/// A `file://` source naming a directory below ova.xml's.
fn source_dir(src: &str) -> Result<String> {
    let Some(p) = src.trim().strip_prefix("file://") else {
        return invalid(format!("ova.xml: only file:// sources are allowed, not {src:?}"));
    };
    let p = p.trim();
    if p.is_empty()
        || p.starts_with('/')
        || p.split('/').any(|c| c == ".." || c == ".")
        || p.contains('\\')
        || p.contains('\0')
    {
        return invalid(format!("ova.xml: source {src:?} must be a relative path inside the appliance"));
    }
    Ok(p.trim_end_matches('/').to_string())
}

pub fn parse(xml: &str) -> Result<LegacyVm> {
    let s = strip_comments(xml);
    let all = tags(&s)?;
    let app =
        all.iter().find(|t| t.name == "appliance").ok_or_else(|| Error::Invalid("ova.xml: no <appliance>".into()))?;
    if let Some(v) = app.attr("version") {
        if v != "0.1" {
            return invalid(format!("unsupported appliance version {v}"));
        }
    }
    let vms: Vec<&Tag> = all.iter().filter(|t| t.name == "vm").collect();
    if vms.len() != 1 {
        return invalid(format!("ova.xml must describe exactly one <vm>, not {}", vms.len()));
    }
    let mut vm = LegacyVm { name: vms[0].attr("name").unwrap_or("").to_string(), vcpus: 1, ..Default::default() };
    for t in &all {
        match t.name.as_str() {
            "label" => vm.label = text_after(&s, t, "label"),
            "shortdesc" => vm.shortdesc = text_after(&s, t, "shortdesc"),
            "config" => {
                vm.mem_set = number(t.attr("mem_set"), "config mem_set")?;
                vm.vcpus = number(t.attr("vcpus"), "config vcpus")?.max(1);
                if vm.vcpus > 1024 {
                    return invalid("ova.xml: too many vcpus");
                }
            }
            "hacks" => {
                vm.is_hvm = t.attr("is_hvm") == Some("true");
                vm.kernel_boot_cmdline = t.attr("kernel_boot_cmdline").unwrap_or("").to_string();
            }
            "vbd" => vm.vbds.push(LegacyVbd {
                device: t.attr("device").unwrap_or("").to_string(),
                function: t.attr("function").unwrap_or("").to_string(),
                mode: t.attr("mode").unwrap_or("w").to_string(),
                vdi: t.attr("vdi").ok_or_else(|| Error::Invalid("ova.xml: a <vbd> has no vdi".into()))?.to_string(),
            }),
            "vdi" => {
                let size = number(t.attr("size"), "vdi size")?;
                if size > MAX_DISK {
                    return invalid(format!("ova.xml: vdi size {size} is too large"));
                }
                // The guide's own example splits "dir-gzipped-chunks" across lines.
                let kind: String = t.attr("type").unwrap_or("").chars().filter(|c| !c.is_whitespace()).collect();
                if kind.replace('-', "") != "dirgzippedchunks" {
                    return invalid(format!("ova.xml: unsupported disk type {kind:?}"));
                }
                vm.vdis.push(LegacyVdi {
                    name: t
                        .attr("name")
                        .ok_or_else(|| Error::Invalid("ova.xml: a <vdi> has no name".into()))?
                        .to_string(),
                    size,
                    dir: source_dir(t.attr("source").unwrap_or(""))?,
                    kind,
                });
            }
            _ => {}
        }
    }
    for b in &vm.vbds {
        if !vm.vdis.iter().any(|v| v.name == b.vdi) {
            return invalid(format!("ova.xml: vbd {} refers to unknown vdi {}", b.device, b.vdi));
        }
    }
    Ok(vm)
}

/// Chunk number of `chunk000000003.gz` / `chunk-000000003.gz`.
fn chunk_number(file: &str) -> Option<u64> {
    let n = file.strip_prefix("chunk")?.strip_suffix(".gz")?;
    let n = n.strip_prefix('-').unwrap_or(n);
    (n.len() == 9 && n.bytes().all(|b| b.is_ascii_digit())).then(|| n.parse().ok()).flatten()
}

/// Gunzip one chunk into a disk at `off`, refusing to pass `limit`.
fn inflate_chunk(r: impl Read, t: &mut Target, off: u64, limit: u64) -> Result<u64> {
    let mut gz = flate2::read::MultiGzDecoder::new(r);
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = off;
    loop {
        let n = gz.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if pos + n as u64 > limit || pos + n as u64 > off + LEGACY_CHUNK {
            return invalid("a chunk decompresses past its disk's declared size");
        }
        if !crate::is_zero(&buf[..n]) {
            t.sink.write_at(pos, &buf[..n])?;
        }
        pos += n as u64;
    }
    Ok(pos - off)
}

/// Read the chunk entries that follow a legacy ova.xml in a tar stream.
pub fn read_disks<R: Read>(
    vm: &LegacyVm,
    entries: tar::Entries<'_, R>,
    mut targets: HashMap<String, Target>,
    progress: &mut dyn FnMut(u64) -> bool,
    consumed: fn() -> u64,
) -> Result<Summary> {
    let mut sum = Summary::default();
    // Per disk: the next expected chunk number and the bytes written so far.
    let mut next: HashMap<String, (u64, u64)> = HashMap::new();
    for e in entries {
        let e = e?;
        let path = e.path()?.to_string_lossy().trim_start_matches("./").to_string();
        if e.header().entry_type().is_dir() {
            continue;
        }
        let Some((dir, file)) = path.rsplit_once('/') else { return invalid(format!("unexpected entry {path:?}")) };
        let Some(vdi) = vm.vdis.iter().find(|v| v.dir == dir) else {
            return invalid(format!("{path:?} belongs to no disk"));
        };
        let n = chunk_number(file).ok_or_else(|| Error::Invalid(format!("unexpected chunk name {path:?}")))?;
        let st = next.entry(vdi.name.clone()).or_insert((0, 0));
        if n != st.0 {
            return invalid(format!("{path}: expected chunk {} (chunks must come in order)", st.0));
        }
        let off = n * LEGACY_CHUNK;
        let written = match targets.get_mut(&vdi.name) {
            Some(t) => inflate_chunk(e, t, off, vdi.size.min(t.size))?,
            None => {
                let mut sink = Target { sink: Box::new(Discard), size: vdi.size };
                inflate_chunk(e, &mut sink, off, vdi.size)?
            }
        };
        // Every chunk but the last holds exactly 10⁹ bytes.
        if !st.1.is_multiple_of(LEGACY_CHUNK) {
            return invalid(format!("{path}: a chunk before it was short"));
        }
        st.0 += 1;
        st.1 += written;
        sum.chunks += 1;
        sum.bytes_out += written;
        if !progress(consumed()) {
            return Err(Error::Cancelled);
        }
    }
    for v in &vm.vdis {
        // A disk with chunks must be complete; one without any is blank.
        if let Some((_, written)) = next.get(&v.name) {
            if *written != v.size {
                return invalid(format!("disk {} holds {written} bytes, not its declared {}", v.name, v.size));
            }
        }
        if let Some(t) = targets.get_mut(&v.name) {
            t.sink.finish()?;
        }
    }
    sum.bytes_in = consumed();
    Ok(sum)
}

struct Discard;
impl crate::DiskSink for Discard {
    fn write_at(&mut self, _: u64, _: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The guide's example, with its quirks (trailing spaces, a comment in
    /// <hacks>, "dir-\n gzippedchunks").
    const GUIDE: &str = "<?xml version=\"1.0\" ?>  \n<appliance version=\"0.1\">  \n  <vm name=\"vm\">  \n    <label>very simple Debian VM</label>  \n    <shortdesc>the description field can contain any valid UTF-8</shortdesc>  \n    <config mem_set=\"536870912\" vcpus=\"1\"/>  \n    <hacks is_hvm=\"false\" kernel_boot_cmdline=\"root=/dev/sdal ro \">  \n    <!--This section is temporary and will be ignored in future. Attribute  \n    is_hvm (\"true\" or \"false\") indicates whether the VM will be booted in HVM mode.-->  \n    </hacks>  \n    <vbd device=\"sda\" function=\"root\" mode=\"w\" vdi=\"vdi_sda\"/>  \n    <vbd device=\"sdb\" function=\"swap\" mode=\"w\" vdi=\"vdi_sdb\"/>  \n  </vm>  \n  <vdi name=\"vdi_sda\" size=\"5368709120\" source=\"file://sda\" type=\"dir-  \n  gzippedchunks\"/>  \n  <vdi name=\"vdi_sdb\" size=\"536870912\" source=\"file://sdb\" type=\"dir-  \n  gzippedchunks\"/>  \n</appliance>\n";

    #[test]
    fn the_guides_example() {
        let vm = parse(GUIDE).unwrap();
        assert_eq!(vm.label, "very simple Debian VM");
        assert_eq!(vm.mem_set, 536870912);
        assert_eq!(vm.vcpus, 1);
        assert!(!vm.is_hvm);
        assert_eq!(vm.kernel_boot_cmdline, "root=/dev/sdal ro");
        assert_eq!(vm.vbds.len(), 2);
        assert_eq!(
            vm.vdis[0],
            LegacyVdi { name: "vdi_sda".into(), size: 5368709120, dir: "sda".into(), kind: "dir-gzippedchunks".into() }
        );
    }

    #[test]
    fn unclosed_hacks_and_strictness() {
        let x = GUIDE.replace("</hacks>", "");
        assert!(parse(&x).is_ok());
        assert!(parse(&GUIDE.replace("file://sda", "file://../etc")).is_err());
        assert!(parse(&GUIDE.replace("file://sda", "file:///etc")).is_err());
        assert!(parse(&GUIDE.replace("file://sda", "http://x/sda")).is_err());
        assert!(parse(&GUIDE.replace("5368709120", "lots")).is_err());
        assert!(parse(&GUIDE.replace("vdi=\"vdi_sdb\"", "vdi=\"nope\"")).is_err());
        assert_eq!(chunk_number("chunk000000003.gz"), Some(3));
        assert_eq!(chunk_number("chunk-000000003.gz"), Some(3));
        assert_eq!(chunk_number("chunk3.gz"), None);
    }
}
