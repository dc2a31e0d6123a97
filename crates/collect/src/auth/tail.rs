//! Tailing of auth log files with rotation / truncation handling and persisted offsets.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Local;
use serde::{Deserialize, Serialize};

use super::{Counters, Origin, build_event, journal, parse};
use crate::config::AuthSettings;
use crate::ecs::Stopped;
use crate::{CollectorContext, CollectorState, RunResult, state};

/// At most this much is read from one file per poll (the rest comes next poll).
const READ_CHUNK: usize = 1 << 20;
/// Offsets are written at most this often while lines flow (and always at stop).
const SAVE_EVERY: Duration = Duration::from_secs(1);
pub const STATE_FILE: &str = "auth-state.json";

/// Where reading stopped in one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
}

/// The persisted state of the collector.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuthState {
    #[serde(default)]
    pub files: BTreeMap<String, Saved>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal_cursor: Option<String>,
}

pub struct Persist {
    pub path: PathBuf,
    pub state: AuthState,
    dirty: bool,
    last: Instant,
}

impl Persist {
    pub fn new(path: PathBuf, state: AuthState) -> Self {
        Persist {
            path,
            state,
            dirty: false,
            last: Instant::now(),
        }
    }

    pub fn touch(&mut self) {
        self.dirty = true;
    }

    /// Writes when dirty and (`force` or the interval passed).
    pub fn save(&mut self, force: bool) {
        if self.dirty && (force || self.last.elapsed() >= SAVE_EVERY) {
            if let Err(e) = state::save(&self.path, &self.state) {
                tracing::warn!(path = %self.path.display(), "cannot save auth offsets: {e}");
            }
            self.dirty = false;
            self.last = Instant::now();
        }
    }
}

pub fn run(s: &AuthSettings, ctx: &CollectorContext) -> RunResult {
    let state_path = ctx.state_dir.join(STATE_FILE);
    let loaded: AuthState = state::load(&state_path)
        .unwrap_or_else(|e| {
            tracing::warn!("cannot read auth offsets: {e}");
            None
        })
        .unwrap_or_default();
    let mut persist = Persist::new(state_path, loaded);
    let existing: Vec<&PathBuf> = s.paths.iter().filter(|p| p.is_file()).collect();
    if existing.is_empty() && s.journald && journal::available(&s.journalctl) {
        return journal::run(s, ctx, &mut persist);
    }
    if existing.is_empty() {
        let paths: Vec<String> = s.paths.iter().map(|p| p.display().to_string()).collect();
        let journal_note = if s.journald {
            "journalctl not available"
        } else {
            "journald disabled"
        };
        ctx.health.set(
            "auth",
            CollectorState::Degraded,
            Some(format!(
                "no auth log found ({}) and {journal_note}; waiting for the files",
                paths.join(", ")
            )),
        );
    } else {
        let names: Vec<String> = existing.iter().map(|p| p.display().to_string()).collect();
        ctx.health.set(
            "auth",
            CollectorState::Running,
            Some(format!("tailing {}", names.join(", "))),
        );
    }
    let mut tailers: Vec<Tailer> = s
        .paths
        .iter()
        .map(|p| Tailer::new(p.clone(), p.is_file()))
        .collect();
    let mut counters = Counters::default();
    let mut was_running = !existing.is_empty();
    loop {
        for t in &mut tailers {
            if t.poll(s, ctx, &mut persist, &mut counters).is_err() {
                persist.save(true);
                return Ok(());
            }
        }
        if !was_running && tailers.iter().any(|t| t.file.is_some()) {
            was_running = true;
            ctx.health.set("auth", CollectorState::Running, None);
        }
        persist.save(false);
        if ctx.shutdown.wait_timeout(s.poll_interval) {
            break;
        }
    }
    tracing::debug!(?counters, "auth collector stopped");
    persist.save(true);
    Ok(())
}

struct Tailer {
    path: PathBuf,
    key: String,
    file: Option<File>,
    dev: u64,
    ino: u64,
    offset: u64,
    /// The file existed when the collector started (a first run starts at its end).
    existed_at_start: bool,
}

fn identity(meta: &fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

impl Tailer {
    fn new(path: PathBuf, existed_at_start: bool) -> Self {
        Tailer {
            key: path.to_string_lossy().into_owned(),
            path,
            file: None,
            dev: 0,
            ino: 0,
            offset: 0,
            existed_at_start,
        }
    }

    fn poll(
        &mut self,
        s: &AuthSettings,
        ctx: &CollectorContext,
        persist: &mut Persist,
        counters: &mut Counters,
    ) -> Result<(), Stopped> {
        if self.file.is_none() && !self.open(s, ctx, persist, counters)? {
            return Ok(());
        }
        self.drain(s, ctx, persist, counters)?;
        match fs::metadata(&self.path) {
            Ok(meta) if identity(&meta) != (self.dev, self.ino) => {
                // Rotated: what was written to the old file before the switch is read above
                // (once more now, for writes after our read), then the new file from 0.
                self.drain(s, ctx, persist, counters)?;
                tracing::debug!(path = %self.path.display(), "rotation detected");
                self.file = None;
                self.existed_at_start = false;
                if self.open(s, ctx, persist, counters)? {
                    self.drain(s, ctx, persist, counters)?;
                }
            }
            Ok(meta) if meta.len() < self.offset => {
                tracing::debug!(path = %self.path.display(), "truncation detected");
                self.offset = 0;
                self.save_offset(persist);
                self.drain(s, ctx, persist, counters)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Opens the file and decides where to start; false when it does not exist.
    fn open(
        &mut self,
        s: &AuthSettings,
        ctx: &CollectorContext,
        persist: &mut Persist,
        counters: &mut Counters,
    ) -> Result<bool, Stopped> {
        let Ok(file) = File::open(&self.path) else {
            return Ok(false);
        };
        let Ok(meta) = file.metadata() else {
            return Ok(false);
        };
        let (dev, ino) = identity(&meta);
        let saved = persist.state.files.get(&self.key).copied();
        let offset = match saved {
            Some(saved) if (saved.dev, saved.ino) == (dev, ino) => {
                if saved.offset > meta.len() {
                    0 // truncated while we were away
                } else {
                    saved.offset
                }
            }
            Some(saved) => {
                // Rotated while we were away: finish the old file if it is still around.
                if let Some(old) = find_rotated(&self.path, saved.dev, saved.ino) {
                    self.read_rotated(&old, saved, s, ctx, counters)?;
                }
                0
            }
            None if self.existed_at_start && !s.start_at_beginning => meta.len(),
            None => 0,
        };
        self.file = Some(file);
        self.dev = dev;
        self.ino = ino;
        self.offset = offset;
        self.save_offset(persist);
        Ok(true)
    }

    fn save_offset(&self, persist: &mut Persist) {
        let saved = Saved {
            dev: self.dev,
            ino: self.ino,
            offset: self.offset,
        };
        if persist.state.files.get(&self.key) != Some(&saved) {
            persist.state.files.insert(self.key.clone(), saved);
            persist.touch();
        }
    }

    /// Reads the rest of a rotated file from the saved offset.
    fn read_rotated(
        &self,
        old: &Path,
        saved: Saved,
        s: &AuthSettings,
        ctx: &CollectorContext,
        counters: &mut Counters,
    ) -> Result<(), Stopped> {
        let Ok(mut file) = File::open(old) else {
            return Ok(());
        };
        let mut offset = saved.offset;
        let path = old.to_string_lossy().into_owned();
        loop {
            let Some(buf) = read_from(&mut file, offset) else {
                return Ok(());
            };
            let consumed = process_buffer(
                &buf,
                offset,
                saved.dev,
                saved.ino,
                &path,
                s,
                ctx,
                counters,
                |_| {},
            )?;
            if consumed == 0 {
                return Ok(());
            }
            offset += consumed;
        }
    }

    /// Reads and processes every complete line after `offset`.
    fn drain(
        &mut self,
        s: &AuthSettings,
        ctx: &CollectorContext,
        persist: &mut Persist,
        counters: &mut Counters,
    ) -> Result<(), Stopped> {
        loop {
            let Some(file) = self.file.as_mut() else {
                return Ok(());
            };
            let Some(buf) = read_from(file, self.offset) else {
                return Ok(());
            };
            let (dev, ino, start) = (self.dev, self.ino, self.offset);
            let mut committed = start;
            let result =
                process_buffer(&buf, start, dev, ino, &self.key, s, ctx, counters, |end| {
                    committed = end
                });
            self.offset = committed;
            self.save_offset(persist);
            let consumed = result?;
            if consumed == 0 || buf.len() < READ_CHUNK {
                return Ok(());
            }
        }
    }
}

/// Up to [`READ_CHUNK`] bytes from `offset`; None on error or nothing new.
fn read_from(file: &mut File, offset: u64) -> Option<Vec<u8>> {
    file.seek(SeekFrom::Start(offset)).ok()?;
    let mut buf = Vec::new();
    file.take(READ_CHUNK as u64).read_to_end(&mut buf).ok()?;
    (!buf.is_empty()).then_some(buf)
}

/// Handles the complete lines of `buf` (which starts at file offset `start`); calls
/// `committed(end offset)` after each line is handed over; returns the bytes consumed. A
/// buffer full of one line without a newline is skipped (an overlong line).
#[allow(clippy::too_many_arguments)]
fn process_buffer(
    buf: &[u8],
    start: u64,
    dev: u64,
    ino: u64,
    path: &str,
    s: &AuthSettings,
    ctx: &CollectorContext,
    counters: &mut Counters,
    mut committed: impl FnMut(u64),
) -> Result<u64, Stopped> {
    let mut pos = 0usize;
    while let Some(nl) = buf[pos..].iter().position(|b| *b == b'\n') {
        let line_start = start + pos as u64;
        let raw = &buf[pos..pos + nl];
        pos += nl + 1;
        let text = String::from_utf8_lossy(raw);
        let text = text.trim_end_matches('\r');
        counters.lines += 1;
        if let Some(doc) = line_event(text, dev, ino, line_start, path, s, counters) {
            ctx.emit(doc)?;
            counters.events += 1;
        }
        committed(start + pos as u64);
    }
    if pos == 0 && buf.len() >= READ_CHUNK {
        tracing::warn!(path, offset = start, "overlong line skipped");
        committed(start + buf.len() as u64);
        return Ok(buf.len() as u64);
    }
    Ok(pos as u64)
}

fn line_event(
    text: &str,
    dev: u64,
    ino: u64,
    offset: u64,
    path: &str,
    s: &AuthSettings,
    counters: &mut Counters,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    let Some(line) = parse::parse_syslog(text, &Local::now()) else {
        counters.unknown += 1;
        return None;
    };
    let Some(ev) = parse::classify(line.program, line.message) else {
        counters.unknown += 1;
        return None;
    };
    let origin = Origin {
        file: Some(path),
        hostname: line.hostname,
        key: format!("auth-file:{dev}:{ino}:{offset}:{text}"),
    };
    let doc = build_event(
        s,
        line.timestamp,
        line.program,
        line.pid,
        &ev,
        text,
        &origin,
    );
    if doc.is_none() {
        counters.excluded += 1;
    }
    doc
}

/// A sibling of `path` (`auth.log.1`, `auth.log-20261121`, ...) with the given identity.
fn find_rotated(path: &Path, dev: u64, ino: u64) -> Option<PathBuf> {
    let dir = path.parent()?;
    let base = path.file_name()?.to_string_lossy().into_owned();
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == base || !name.starts_with(&base) {
            continue;
        }
        if let Ok(meta) = entry.metadata()
            && identity(&meta) == (dev, ino)
        {
            return Some(entry.path());
        }
    }
    None
}
