//! The RBAC audit log, as xapi keeps it in /var/log/audit.log: one line per
//! permission-checked call that changes state (allowed, with its outcome)
//! and per denial, naming the session's subject, the call and the objects
//! its arguments refer to. `GET /audit_log` serves it (`since=` filters by
//! the line's timestamp) and `pool.audit_log_append` adds a line as given.
//!
//! A line: `[<timestamp>|audit|<host>|rbac|<task>|audit] (<sexpr>)` where
//! the s-expression is `('trackid=…' '<subject sid or LOCAL_SUPERUSER>'
//! '<user name>' 'ALLOWED'|'DENIED' 'OK'|'ERROR:<code>' 'API'|'HTTP'
//! '<permission>' (('<param>' '<name>' '<uuid>' '<ref>') …))`.
//!
//! The file is `<data dir>/audit.log`, rotated once (to `audit.log.1`) at
//! [`ROTATE_AT`] bytes, so it stays bounded.

use crate::Server;
use model::schema::{ClassDef, MsgDef, MsgKind};
use model::{DateTime, Value};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

pub const ROTATE_AT: u64 = 16 * 1024 * 1024;

/// Lines kept when nothing may be written (`--ephemeral`).
const MEMORY_LINES: usize = 10_000;

pub struct Audit {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
    /// Some: in memory only (an ephemeral server writes nothing).
    memory: Option<Mutex<std::collections::VecDeque<String>>>,
}

impl Audit {
    pub fn new(data_dir: &std::path::Path, ephemeral: bool) -> Audit {
        Audit {
            path: data_dir.join("audit.log"),
            file: Mutex::new(None),
            memory: ephemeral.then(|| Mutex::new(std::collections::VecDeque::new())),
        }
    }

    /// Append one line (a newline is added). Failures are logged, never
    /// returned: the audit trail must not fail the call it records.
    pub fn append(&self, line: &str) {
        if let Some(mem) = &self.memory {
            if let Ok(mut q) = mem.lock() {
                if q.len() >= MEMORY_LINES {
                    q.pop_front();
                }
                q.push_back(line.to_string());
            }
            return;
        }
        let Ok(mut guard) = self.file.lock() else { return };
        if guard.is_none() {
            match std::fs::OpenOptions::new().create(true).append(true).open(&self.path) {
                Ok(f) => *guard = Some(f),
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), "audit log: cannot open: {e}");
                    return;
                }
            }
        }
        let Some(f) = guard.as_mut() else { return };
        let mut buf = String::with_capacity(line.len() + 1);
        buf.push_str(line);
        buf.push('\n');
        if let Err(e) = f.write_all(buf.as_bytes()) {
            tracing::warn!(path = %self.path.display(), "audit log: write failed: {e}");
            *guard = None;
            return;
        }
        let big = f.metadata().map(|m| m.len() >= ROTATE_AT).unwrap_or(false);
        if big {
            let old = self.path.with_extension("log.1");
            if let Err(e) = std::fs::rename(&self.path, &old) {
                tracing::warn!(path = %self.path.display(), "audit log: rotation failed: {e}");
            }
            *guard = None;
        }
    }

    /// Every line, oldest first, whose timestamp is at or after `since`
    /// (xapi's comparison: the first 21 characters after `[`, with `-` and
    /// `Z` removed from `since`).
    pub fn read_since(&self, since: &str) -> Vec<u8> {
        let since: String = since.chars().filter(|c| *c != '-' && *c != 'Z').collect();
        let since = since.replace(' ', "T");
        let keep = |line: &[u8]| {
            let ts = line.iter().position(|b| *b == b'[').map(|i| &line[i + 1..]).unwrap_or(line);
            let ts = &ts[..ts.len().min(21)];
            since.is_empty() || ts >= since.as_bytes()
        };
        let mut out = Vec::new();
        if let Some(mem) = &self.memory {
            if let Ok(q) = mem.lock() {
                for l in q.iter().filter(|l| keep(l.as_bytes())) {
                    out.extend_from_slice(l.as_bytes());
                    out.push(b'\n');
                }
            }
            return out;
        }
        let _guard = self.file.lock();
        for p in [self.path.with_extension("log.1"), self.path.clone()] {
            let text = match std::fs::read(&p) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    tracing::warn!(path = %p.display(), "audit log: read failed: {e}");
                    continue;
                }
            };
            for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty() && keep(l)) {
                out.extend_from_slice(line);
                out.push(b'\n');
            }
        }
        out
    }
}

/// Does this message change state (so an allowed call is audited)? Reads
/// are not, as in xapi, whose audit log records writers and denials.
pub fn changes_state(c: &ClassDef, m: &MsgDef) -> bool {
    match m.kind {
        MsgKind::GetRecord
        | MsgKind::GetByUuid
        | MsgKind::GetByNameLabel
        | MsgKind::GetAll
        | MsgKind::GetAllRecords
        | MsgKind::GetAllWhere
        | MsgKind::GetAllRecordsWhere
        | MsgKind::Get(_) => false,
        _ => {
            !(m.name.starts_with("get_")
                || m.name.starts_with("assert_")
                || matches!(c.name, "event")
                || (c.id == model::schema::ClassId::Session && matches!(m.name, "logout" | "local_logout")))
        }
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn timestamp() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let d = DateTime::utc(now.as_secs() as i64);
    // DateTime prints `YYYYMMDDTHH:MM:SSZ`; xapi's log adds milliseconds.
    let base = d.to_string();
    let base = base.trim_end_matches('Z');
    format!("{base}.{:03}Z", now.subsec_millis())
}

/// Who a session is: (trackid, subject identifier or LOCAL_SUPERUSER, name).
fn who(s: &Server, session: &str) -> (String, String, String) {
    let c = &model::schema::CLASS_SESSION;
    let st = s.db.read();
    let Some(row) = st.get(c, session) else {
        return (trackid(session), String::new(), String::new());
    };
    let name = row.read(model::types::fields::session::AUTH_USER_NAME);
    let sid = if row.get(model::types::fields::session::IS_LOCAL_SUPERUSER.index).as_bool() == Some(true) {
        "LOCAL_SUPERUSER".to_string()
    } else {
        row.read(model::types::fields::session::AUTH_USER_SID)
    };
    (trackid(session), sid, name)
}

/// A session's trackid: a hash, never the session ref itself.
fn trackid(session: &str) -> String {
    use md5::{Digest, Md5};
    let h: [u8; 16] = Md5::digest(session.as_bytes()).into();
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// The objects the arguments name: `(param name uuid ref)` per ref.
fn objects(s: &Server, m: Option<&MsgDef>, args: &[Value]) -> String {
    let st = s.db.read();
    let mut parts = Vec::new();
    for (i, a) in args.iter().enumerate() {
        let Value::String(r) = a else { continue };
        if !r.starts_with("OpaqueRef:") {
            continue;
        }
        let pname = m.and_then(|m| m.params.get(i)).map(|p| p.name).unwrap_or("ref");
        let (name, uuid) = match st.class_of(r).and_then(|c| st.get(c, r).map(|row| (c, row))) {
            Some((c, row)) => (
                c.field_index("name_label").map(|f| row.get(f).as_str().unwrap_or("").to_string()).unwrap_or_default(),
                c.field_index("uuid").map(|f| row.get(f).as_str().unwrap_or("").to_string()).unwrap_or_default(),
            ),
            None => (String::new(), String::new()),
        };
        parts.push(format!("({} {} {} {})", quote(pname), quote(&name), quote(&uuid), quote(r)));
    }
    format!("({})", parts.join(" "))
}

#[allow(clippy::too_many_arguments)]
fn line(
    s: &Server,
    session: &str,
    task: &str,
    verdict: &str,
    outcome: &str,
    kind: &str,
    perm: &str,
    objs: &str,
) -> String {
    let (track, sid, name) = who(s, session);
    format!(
        "[{}|audit|{}|rbac|{}|audit] ({} {} {} {} {} {} {} {})",
        timestamp(),
        s.cfg.hostname,
        task,
        quote(&format!("trackid={track}")),
        quote(&sid),
        quote(&name),
        quote(verdict),
        quote(outcome),
        quote(kind),
        quote(perm),
        objs
    )
}

/// A denied call or handler.
pub fn denied(s: &Server, session: &str, action: &str, perm: &str, args: &[Value]) {
    let m = crate::rows::lookup(action).map(|(_, m)| m);
    let objs = objects(s, m, args);
    let kind = if perm.starts_with("http/") { "HTTP" } else { "API" };
    s.audit.append(&line(s, session, "", "DENIED", "", kind, perm, &objs));
}

/// An allowed call that changes state, with its outcome.
pub fn allowed(
    s: &Server,
    session: &str,
    task: &str,
    c: &ClassDef,
    m: &MsgDef,
    args: &[Value],
    outcome: Result<(), &crate::ApiError>,
) {
    let perm = crate::roles::message_permission(c, m);
    let objs = objects(s, Some(m), args);
    let outcome = match outcome {
        Ok(()) => "OK".to_string(),
        Err(e) => format!("ERROR:{}", e.code()),
    };
    s.audit.append(&line(s, session, task, "ALLOWED", &outcome, "API", &perm, &objs));
}

/// An allowed HTTP handler request.
pub fn allowed_http(s: &Server, session: &str, action: &str) {
    s.audit.append(&line(s, session, "", "ALLOWED", "OK", "HTTP", &format!("http/{action}"), "()"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_filters_by_the_line_timestamp() {
        let a = Audit::new(std::path::Path::new("/nonexistent"), true);
        a.append("[20240101T10:00:00.000Z|audit|h|rbac||audit] ('one')");
        a.append("[20240102T10:00:00.000Z|audit|h|rbac||audit] ('two')");
        let all = String::from_utf8(a.read_since("")).unwrap_or_default();
        assert_eq!(all.lines().count(), 2);
        for since in ["2024-01-02", "20240102T09:00", "2024-01-02T10:00:00.000Z"] {
            let some = String::from_utf8(a.read_since(since)).unwrap_or_default();
            assert_eq!(some.lines().collect::<Vec<_>>(), vec!["[20240102T10:00:00.000Z|audit|h|rbac||audit] ('two')"]);
        }
    }

    #[test]
    fn file_lines_rotate_into_one_old_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Audit::new(dir.path(), false);
        a.append("[20240101T10:00:00.000Z|audit|h|rbac||audit] ('x')");
        assert!(dir.path().join("audit.log").exists());
        assert_eq!(String::from_utf8(a.read_since("")).unwrap_or_default().lines().count(), 1);
    }

    #[test]
    fn what_is_audited() {
        let vm = &model::schema::CLASS_VM;
        let m = |n: &str| vm.messages.iter().find(|m| m.name == n).expect("message");
        assert!(changes_state(vm, m("start")));
        assert!(changes_state(vm, m("set_name_label")));
        assert!(!changes_state(vm, m("get_record")));
        assert!(!changes_state(vm, m("get_all")));
    }
}
