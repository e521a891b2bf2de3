//! Opening the store: every file is checked before anything is written, so
//! a refusal leaves the data dir byte for byte as it was.
//!
//! Files: `snapshot` (one frame: the whole state at generation S) and
//! `log-<g>` (records of generations from g on; the first frame is the
//! schema). The writers keep these invariants, and the checks rely on them:
//!
//! * A log file appears under its name only with its schema record on disk
//!   (`wal::Writer::open` writes a temporary name, syncs, renames).
//! * `log-<S+1>` is created (and synced) before a snapshot of generation S
//!   is written, both by compaction and by this open; old logs are deleted
//!   only after the snapshot. So a snapshot S without `log-<S+1>` means the
//!   log was lost, and log files without any snapshot mean it was lost —
//!   except the crash window of the very first start (below).
//! * A file stops receiving records before the next one is created, and
//!   everything written to it was `fdatasync`ed first. So every log file but
//!   the newest is complete: intact frames, then zeros to its end.
//! * Records are acknowledged only after the `fdatasync` of their batch
//!   returned; a crash can tear only the batch being written, which is the
//!   end of the newest file. The kernel may have persisted any subset of
//!   that batch's pages, so the tail after the first bad frame is garbage,
//!   zeros or even whole frames of the torn batch. We cannot tell such a
//!   frame from an acknowledged record behind a flipped byte, so the rule
//!   errs on the side of never losing data: damage in the newest file is a
//!   torn tail only if no intact frame follows it anywhere in the file;
//!   otherwise the start is refused (after a power loss that may refuse a
//!   torn batch; `recover` then keeps exactly the records before it).
//!   Damage anywhere in an older file, in the snapshot, or in a schema
//!   record always refuses.
//!
//! A directory with no snapshot and no log is a first start (a leftover
//! `snapshot.tmp` holds nothing acknowledged: it is only renamed into place).
//!
//! A torn tail is zeroed before a new file follows it, so the "older files
//! are complete" invariant keeps holding. Every open bumps the generation by
//! one and starts a fresh log file after every existing one, so no existing
//! file is ever truncated or reused.

use super::*;
use std::time::{SystemTime, UNIX_EPOCH};

/// What the files of a data dir hold, and the first thing wrong with them.
struct Loaded {
    st: State,
    problem: Option<StoreError>,
    torn: Option<Torn>,
    /// Every store file found (snapshot, logs, leftover temporaries).
    files: Vec<PathBuf>,
    /// The highest generation a log file name starts at.
    max_start: u64,
    /// What the state was built from, for the log.
    kept: String,
}

fn read(path: &Path) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path).map_err(StoreError::io(path))
}

fn damaged(file: &Path, offset: u64, detail: impl Into<String>) -> StoreError {
    StoreError::Damaged { file: file.to_path_buf(), offset, detail: detail.into() }
}

fn end_detail(why: &wal::End) -> String {
    match why {
        wal::End::Zero => "a record length of 0 ends the log here".into(),
        wal::End::Overrun(len) => format!("a record of {len} bytes would run past the end of the file"),
        wal::End::Checksum => "a record fails its checksum".into(),
    }
}

/// The store files of a directory.
struct Files {
    snap: Option<PathBuf>,
    /// By start generation.
    logs: Vec<(u64, PathBuf)>,
    /// Leftover temporaries.
    strays: Vec<PathBuf>,
}

impl Files {
    fn all(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self.snap.iter().cloned().collect();
        out.extend(self.logs.iter().map(|(_, p)| p.clone()));
        out.extend(self.strays.iter().cloned());
        out
    }
}

fn list(dir: &Path) -> Result<Files, StoreError> {
    let mut snap = None;
    let mut logs = Vec::new();
    let mut strays = Vec::new();
    for e in std::fs::read_dir(dir).map_err(StoreError::io(dir))? {
        let e = e.map_err(StoreError::io(dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "snapshot" {
            snap = Some(e.path());
        } else if let Some(g) = name.strip_prefix("log-").and_then(|g| g.parse::<u64>().ok()) {
            logs.push((g, e.path()));
        } else if name == "snapshot.tmp" || (name.starts_with("log-") && name.ends_with(".tmp")) {
            strays.push(e.path());
        }
    }
    logs.sort();
    Ok(Files { snap, logs, strays })
}

/// A torn final write: the file, its first bad byte, the end of its non-zero bytes.
type Torn = (PathBuf, u64, u64);

/// Check one log file and replay its intact records into `st`. Returns
/// the damage that stops it, and (for the newest file) a torn tail.
fn replay_file(
    st: &mut State,
    path: &Path,
    start: u64,
    newest: bool,
) -> Result<(Option<StoreError>, Option<Torn>), StoreError> {
    let data = read(path)?;
    if data.is_empty() {
        return Ok((Some(damaged(path, 0, "the file is empty; expected at least its schema record")), None));
    }
    let parsed = wal::parse(&data);
    let Some((_, schema)) = parsed.frames.first() else {
        return Ok((Some(damaged(path, 0, format!("no intact schema record: {}", end_detail(&parsed.why)))), None));
    };
    let layout = match read_layout(&mut Reader::new(schema)) {
        Ok(l) => l,
        Err(e) => return Ok((Some(damaged(path, 12, format!("the schema record does not decode: {}", e.0))), None)),
    };
    // The name says the generation when the file began; records of
    // commits that logged nothing (transient classes) left no trace.
    st.gen = st.gen.max(start.saturating_sub(1));
    for (off, rec) in &parsed.frames[1..] {
        if let Err(e) = replay(st, &layout, rec) {
            return Ok((Some(damaged(path, *off, format!("an intact record does not decode: {}", e.0))), None));
        }
    }
    let end = parsed.end;
    if !newest {
        // A finished file: intact frames, then zeros.
        if parsed.why != wal::End::Zero {
            return Ok((Some(damaged(path, end, format!("{} in a finished log file", end_detail(&parsed.why)))), None));
        }
        if let Some((first, _)) = wal::nonzero_span(&data, end) {
            return Ok((
                Some(damaged(
                    path,
                    first,
                    format!("expected zeros after the last record (which ends at byte {end}) of a finished log file"),
                )),
                None,
            ));
        }
        return Ok((None, None));
    }
    let Some((_, last)) = wal::nonzero_span(&data, end) else {
        return Ok((None, None));
    };
    match wal::intact_after(&data, end + 1, last) {
        wal::Search::Nothing => Ok((None, Some((path.to_path_buf(), end, last + 1)))),
        wal::Search::Found(at) => Ok((
            Some(damaged(
                path,
                end,
                format!(
                    "{}, but an intact record follows at byte {at}, so this is not a torn final write",
                    end_detail(&parsed.why)
                ),
            )),
            None,
        )),
        wal::Search::GaveUp => Ok((
            Some(damaged(
                path,
                end,
                format!("{}; too much data follows to prove it is a torn final write", end_detail(&parsed.why)),
            )),
            None,
        )),
    }
}

/// Read everything (writing nothing) and find the first problem.
fn load(dir: &Path) -> Result<Loaded, StoreError> {
    let found = list(dir)?;
    let files = found.all();
    let Files { snap, logs, .. } = found;
    let max_start = logs.last().map(|(g, _)| *g).unwrap_or(0);
    let mut out = Loaded { st: State::new(), problem: None, torn: None, files, max_start, kept: String::new() };
    let Some(snap) = snap else {
        if logs.is_empty() {
            out.kept = "nothing (first start)".into();
            return Ok(out);
        }
        // The first start creates `log-2` and then the first snapshot; a
        // crash between the two leaves that file with nothing in it.
        if let [(2, p)] = logs.as_slice() {
            let data = read(p)?;
            let parsed = wal::parse(&data);
            let rest = wal::nonzero_span(&data, parsed.end).map(|(_, last)| last).unwrap_or(0);
            if parsed.frames.len() <= 1 && wal::intact_after(&data, parsed.end + 1, rest) == wal::Search::Nothing {
                out.kept = "nothing (an interrupted first start)".into();
                return Ok(out);
            }
        }
        out.problem =
            Some(StoreError::NoSnapshot { dir: dir.to_path_buf(), logs: logs.into_iter().map(|l| l.1).collect() });
        out.kept = "nothing (no snapshot)".into();
        return Ok(out);
    };
    out.kept = "nothing (the snapshot is damaged)".into();
    let data = read(&snap)?;
    let parsed = wal::parse(&data);
    let payload = match parsed.frames.first() {
        Some((_, p)) if parsed.end == data.len() as u64 => *p,
        Some(_) => {
            out.problem = Some(damaged(&snap, parsed.end, "unexpected bytes after the snapshot record"));
            return Ok(out);
        }
        None => {
            out.problem = Some(damaged(&snap, 0, format!("no intact snapshot record: {}", end_detail(&parsed.why))));
            return Ok(out);
        }
    };
    if let Err(e) = load_snapshot(&mut out.st, payload) {
        out.st = State::new();
        out.problem = Some(damaged(&snap, 12, format!("the snapshot record does not decode: {}", e.0)));
        return Ok(out);
    }
    let sgen = out.st.gen;
    out.kept = format!("the snapshot (generation {sgen})");
    // Logs wholly older than the snapshot (left by a crash before their
    // deletion) are skipped: a later file starting by sgen+1 proves none of
    // their records is newer than the snapshot.
    let mut first = 0;
    while first < logs.len() && logs[first].0 <= sgen && logs[first + 1..].iter().any(|(g, _)| *g <= sgen + 1) {
        first += 1;
    }
    let needed = &logs[first..];
    match needed.first() {
        Some((g, _)) if *g == sgen + 1 => {}
        other => {
            out.problem = Some(StoreError::MissingLog {
                expected: wal::log_path(dir, sgen + 1),
                snapshot_gen: sgen,
                found: other.map(|(_, p)| p.clone()),
            });
            return Ok(out);
        }
    }
    for (i, (start, path)) in needed.iter().enumerate() {
        let (problem, torn) = replay_file(&mut out.st, path, *start, i + 1 == needed.len())?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        match &problem {
            Some(StoreError::Damaged { offset, .. }) => {
                out.kept.push_str(&format!(", {name} up to byte {offset}"));
            }
            _ => out.kept.push_str(&format!(", {name}")),
        }
        out.torn = torn;
        if problem.is_some() {
            out.problem = problem;
            break;
        }
    }
    out.kept.push_str(&format!(" (generation {})", out.st.gen));
    Ok(out)
}

/// Hard-link (or copy) every file into a new `<what>-<time>` folder; the
/// originals stay until the new snapshot covers them.
fn set_aside(dir: &Path, what: &str, files: &[PathBuf]) -> Result<PathBuf, StoreError> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut aside = dir.join(format!("{what}-{now}"));
    let mut n = 1;
    while aside.exists() {
        aside = dir.join(format!("{what}-{now}-{n}"));
        n += 1;
    }
    std::fs::create_dir(&aside).map_err(StoreError::io(&aside))?;
    for f in files {
        let Some(name) = f.file_name() else { continue };
        let to = aside.join(name);
        if std::fs::hard_link(f, &to).is_err() {
            std::fs::copy(f, &to).map_err(StoreError::io(f))?;
        }
    }
    wal::sync_dir(&aside).map_err(StoreError::io(&aside))?;
    wal::sync_dir(dir).map_err(StoreError::io(dir))?;
    Ok(aside)
}

/// Check, load, and start writing: the state, the running log, and whether
/// a staged restore was applied.
pub(crate) fn open(dir: &Path, recover: bool) -> Result<(State, wal::Wal, bool), StoreError> {
    let staged = dir.join(RESTORE_FILE);
    if staged.exists() {
        let (st, w) = restore(dir, &staged)?;
        return Ok((st, w, true));
    }
    let Loaded { mut st, problem, mut torn, files, max_start, kept } = load(dir)?;
    let mut aside = None;
    if let Some(p) = problem {
        if !recover {
            return Err(p);
        }
        tracing::error!("store recovery: {p}");
        aside = Some(set_aside(dir, "damaged", &files)?);
        // The whole file is kept aside; the new snapshot covers what we read.
        torn = None;
    }
    if let Some((path, from, to)) = &torn {
        tracing::warn!("{}: dropping a torn final write (bytes {from}..{to}, never acknowledged)", path.display());
        wal::zero_range(path, *from, *to).map_err(StoreError::io(path))?;
    }
    rebuild_relations(&mut st);
    // One generation per start keeps the new log's name after every
    // existing file's, whatever commits left no log record.
    let gen = st.gen.max(max_start.saturating_sub(1)) + 1;
    st.gen = gen;
    let w = begin(dir, &mut st, gen, &files)?;
    if let Some(a) = aside {
        tracing::error!(
            "store recovered: kept {kept}; every earlier store file was set aside, unchanged, in {}",
            a.display()
        );
    } else {
        tracing::info!("store opened: {kept}");
    }
    Ok((st, w, false))
}

/// Start the log for generations after `gen`, write the snapshot of `st`
/// at `gen`, and remove the older `files` it covers — in that order, so a
/// crash anywhere leaves a store the next open accepts.
fn begin(dir: &Path, st: &mut State, gen: u64, files: &[PathBuf]) -> Result<wal::Wal, StoreError> {
    st.gen = gen;
    let w = wal::Wal::start(dir, gen + 1, schema_bytes()).map_err(StoreError::io(&wal::log_path(dir, gen + 1)))?;
    let snap = dir.join("snapshot");
    wal::write_atomic(&snap, &wal::frame(&snapshot_bytes(st))).map_err(StoreError::io(&snap))?;
    for f in files {
        if *f != snap {
            if let Err(e) = std::fs::remove_file(f) {
                tracing::warn!("{}: cannot remove a file the snapshot covers: {e}", f.display());
            }
        }
    }
    Ok(w)
}

/// Replace the store with a staged database dump (`Db::stage_restore`):
/// the current files are set aside in `replaced-<time>/`, whatever state
/// they are in, and the staged file goes last, so a crash repeats the
/// restore.
fn restore(dir: &Path, staged: &Path) -> Result<(State, wal::Wal), StoreError> {
    let bytes = read(staged)?;
    let mut st = read_dump(&bytes).map_err(|e| damaged(staged, e.offset(), e.to_string()))?;
    let found = list(dir)?;
    let files = found.all();
    let logs = found.logs;
    let aside = if files.is_empty() { None } else { Some(set_aside(dir, "replaced", &files)?) };
    let max_start = logs.last().map(|(g, _)| *g).unwrap_or(0);
    let gen = st.gen.max(max_start) + 1;
    let w = begin(dir, &mut st, gen, &files)?;
    std::fs::remove_file(staged).map_err(StoreError::io(staged))?;
    wal::sync_dir(dir).map_err(StoreError::io(dir))?;
    tracing::warn!(
        "store restored from a database dump ({} objects); the previous store files are kept in {}",
        CLASSES.iter().map(|c| st.table(c).len()).sum::<usize>(),
        aside.map(|a| a.display().to_string()).unwrap_or_else(|| "(there were none)".into())
    );
    Ok((st, w))
}
