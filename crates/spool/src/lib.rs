//! Dozor agent disk spool: a bounded, crash-safe, append-only queue of opaque records
//! (the agent stores serialized event batches) kept on disk while the server is unreachable.
//!
//! See `README.md` for the file format and the guarantees.

mod crc;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::crc::Crc32;

/// Magic number at the start of every record header ("DZSP" little endian).
const MAGIC: u32 = u32::from_le_bytes(*b"DZSP");
/// Record header: magic u32 | payload length u32 | record id u64 | crc32 u32 (all little endian).
pub const HEADER_LEN: u64 = 20;
const STATE_FILE: &str = "state.json";
const STATE_TMP: &str = "state.json.tmp";
const SEG_PREFIX: &str = "seg-";
const SEG_SUFFIX: &str = ".log";
/// The largest record id: one below `u64::MAX`, so the id after any record still fits. Ids,
/// positions and segment names beyond it can only come from a damaged or forged directory.
const LAST_ID: u64 = u64::MAX - 1;

/// Identifier of a record: a sequence number, strictly increasing, starting at 1, never reused
/// (it survives restarts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordId(pub u64);

/// When appended data is forced to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `fsync` after every append (the default: records are batches, so this is cheap enough).
    EveryAppend,
    /// `fsync` at most once per interval (on the append that crosses it, and on [`Spool::flush`]).
    Interval(Duration),
    /// Never `fsync` explicitly (the OS decides); [`Spool::flush`] still syncs.
    Never,
}

/// Spool configuration.
#[derive(Debug, Clone)]
pub struct SpoolConfig {
    /// Upper bound on the total size of the segment files; the oldest segments are dropped
    /// (and counted) to stay below it.
    pub max_bytes: u64,
    /// A new segment is started when the active one would grow beyond this size.
    pub segment_bytes: u64,
    /// Durability policy of appends.
    pub fsync: FsyncPolicy,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            max_bytes: 256 * 1024 * 1024,
            segment_bytes: 8 * 1024 * 1024,
            fsync: FsyncPolicy::EveryAppend,
        }
    }
}

/// Counters of the spool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpoolStats {
    /// Records present and not yet acknowledged.
    pub records: u64,
    /// Bytes (header + payload) of the records present and not yet acknowledged.
    pub bytes: u64,
    /// Total size of the segment files on disk (what `max_bytes` bounds).
    pub disk_bytes: u64,
    /// Unacknowledged records dropped because `max_bytes` was reached (since open).
    pub dropped_records: u64,
    /// Bytes of those dropped records (since open).
    pub dropped_bytes: u64,
    /// Corrupt regions skipped while reading (since open).
    pub corrupt_skipped: u64,
    /// Bytes cut from the tail of the last segment on open (a torn write).
    pub truncated_tail_bytes: u64,
}

/// Errors of the spool.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("spool state file is invalid: {0}")]
    State(#[from] serde_json::Error),
    #[error("record of {len} bytes exceeds the spool limit of {max} bytes")]
    RecordTooLarge { len: u64, max: u64 },
    #[error("invalid spool configuration: {0}")]
    Config(&'static str),
    #[error("spool state file is invalid: acknowledged id {0} is beyond the largest record id")]
    AckedOutOfRange(u64),
    #[error("spool record ids are exhausted (the last one is {LAST_ID})")]
    IdsExhausted,
}

pub type Result<T, E = SpoolError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy)]
struct Entry {
    id: u64,
    offset: u64,
    len: u32,
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    size: u64,
    entries: VecDeque<Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct State {
    acked: u64,
}

/// The spool. Single writer: one process, one `Spool` per directory.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    cfg: SpoolConfig,
    segments: VecDeque<Segment>,
    /// Append handle of the last segment in `segments`, if it is open for writing.
    active: Option<File>,
    next_id: u64,
    acked: u64,
    stats: SpoolStats,
    last_sync: Instant,
    dirty: bool,
}

fn seg_name(base: u64) -> String {
    format!("{SEG_PREFIX}{base:020}{SEG_SUFFIX}")
}

fn parse_seg_name(name: &str) -> Option<u64> {
    name.strip_prefix(SEG_PREFIX)?
        .strip_suffix(SEG_SUFFIX)?
        .parse()
        .ok()
        .filter(|&base| base <= LAST_ID)
}

fn record_crc(id: u64, len: u32, payload: &[u8]) -> u32 {
    let mut c = Crc32::new();
    c.update(&len.to_le_bytes());
    c.update(&id.to_le_bytes());
    c.update(payload);
    c.finish()
}

fn encode(id: u64, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut buf = Vec::with_capacity(HEADER_LEN as usize + payload.len());
    buf.extend_from_slice(&MAGIC.to_le_bytes());
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&id.to_le_bytes());
    buf.extend_from_slice(&record_crc(id, len, payload).to_le_bytes());
    buf.extend_from_slice(payload);
    buf
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Parses a header; returns `(id, len)` when the header is structurally valid.
fn parse_header(h: &[u8]) -> Option<(u64, u32, u32)> {
    if h.len() < HEADER_LEN as usize || le_u32(&h[0..4]) != MAGIC {
        return None;
    }
    Some((le_u64(&h[8..16]), le_u32(&h[4..8]), le_u32(&h[16..20])))
}

/// Tries to parse a complete, valid record at `pos` whose id is at least `min_id`.
fn parse_at(buf: &[u8], pos: usize, min_id: u64) -> Option<(u64, u32)> {
    let (id, len, crc) = parse_header(buf.get(pos..)?)?;
    let start = pos + HEADER_LEN as usize;
    let end = start.checked_add(len as usize)?;
    if end > buf.len() || id < min_id || id > LAST_ID {
        return None;
    }
    (record_crc(id, len, &buf[start..end]) == crc).then_some((id, len))
}

struct Scan {
    entries: Vec<Entry>,
    good_end: u64,
    corrupt: u64,
    tail_garbage: bool,
}

/// Reads a whole segment, resynchronising on the magic number after a corrupt region.
fn scan(buf: &[u8], base: u64) -> Scan {
    let magic = MAGIC.to_le_bytes();
    let mut s = Scan {
        entries: Vec::new(),
        good_end: 0,
        corrupt: 0,
        tail_garbage: false,
    };
    let mut pos = 0usize;
    let mut min_id = base;
    let mut in_corrupt = false;
    while pos < buf.len() {
        if let Some((id, len)) = parse_at(buf, pos, min_id) {
            if in_corrupt {
                s.corrupt += 1;
                in_corrupt = false;
            }
            s.entries.push(Entry {
                id,
                offset: pos as u64,
                len,
            });
            pos += HEADER_LEN as usize + len as usize;
            s.good_end = pos as u64;
            min_id = id + 1;
        } else {
            in_corrupt = true;
            pos = buf[pos + 1..]
                .windows(4)
                .position(|w| w == magic)
                .map_or(buf.len(), |p| pos + 1 + p);
        }
    }
    s.tail_garbage = in_corrupt;
    s
}

fn sync_dir(dir: &Path) {
    // Directory fsync makes renames/creates durable on Unix; it is not possible on Windows.
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, recovering from torn writes and corruption.
    pub fn open(dir: impl AsRef<Path>, cfg: SpoolConfig) -> Result<Self> {
        if cfg.max_bytes == 0 || cfg.segment_bytes == 0 {
            return Err(SpoolError::Config(
                "max_bytes and segment_bytes must be > 0",
            ));
        }
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        let acked = match fs::read(dir.join(STATE_FILE)) {
            Ok(b) => serde_json::from_slice::<State>(&b)?.acked,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e.into()),
        };
        if acked > LAST_ID {
            return Err(SpoolError::AckedOutOfRange(acked));
        }
        let _ = fs::remove_file(dir.join(STATE_TMP));

        let mut bases = Vec::new();
        for de in fs::read_dir(&dir)? {
            let de = de?;
            if let Some(base) = de.file_name().to_str().and_then(parse_seg_name) {
                bases.push(base);
            }
        }
        bases.sort_unstable();

        let mut spool = Self {
            dir,
            cfg,
            segments: VecDeque::new(),
            active: None,
            next_id: acked + 1,
            acked,
            stats: SpoolStats::default(),
            last_sync: Instant::now(),
            dirty: false,
        };

        let count = bases.len();
        for (i, base) in bases.into_iter().enumerate() {
            let is_last = i + 1 == count;
            let path = spool.dir.join(seg_name(base));
            let buf = fs::read(&path)?;
            let sc = scan(&buf, base);
            spool.stats.corrupt_skipped += sc.corrupt;
            let mut size = buf.len() as u64;
            if sc.tail_garbage {
                if is_last {
                    let cut = size - sc.good_end;
                    tracing::warn!(path = %path.display(), cut, "spool: truncating torn tail");
                    let f = OpenOptions::new().write(true).open(&path)?;
                    f.set_len(sc.good_end)?;
                    f.sync_all()?;
                    spool.stats.truncated_tail_bytes += cut;
                    size = sc.good_end;
                } else {
                    tracing::warn!(path = %path.display(), "spool: corrupt data at segment end skipped");
                    spool.stats.corrupt_skipped += 1;
                }
            }
            if sc.corrupt > 0 {
                tracing::warn!(path = %path.display(), regions = sc.corrupt, "spool: corrupt records skipped");
            }
            if let Some(last) = sc.entries.last() {
                spool.next_id = spool.next_id.max(last.id + 1);
            }
            spool.next_id = spool.next_id.max(base);
            let entries: VecDeque<Entry> =
                sc.entries.into_iter().filter(|e| e.id > acked).collect();
            if entries.is_empty() && !is_last {
                fs::remove_file(&path)?;
                continue;
            }
            for e in &entries {
                spool.stats.records += 1;
                spool.stats.bytes += HEADER_LEN + u64::from(e.len);
            }
            spool.stats.disk_bytes += size;
            spool.segments.push_back(Segment {
                path,
                size,
                entries,
            });
        }
        if let Some(seg) = spool.segments.back() {
            spool.active = Some(OpenOptions::new().write(true).open(&seg.path)?);
        }
        Ok(spool)
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends a record; the oldest segments are dropped first if `max_bytes` would be exceeded.
    pub fn append(&mut self, payload: &[u8]) -> Result<RecordId> {
        let rec_len = HEADER_LEN + payload.len() as u64;
        if rec_len > self.cfg.max_bytes || payload.len() > u32::MAX as usize {
            return Err(SpoolError::RecordTooLarge {
                len: payload.len() as u64,
                max: self.cfg.max_bytes.saturating_sub(HEADER_LEN),
            });
        }
        if self.next_id > LAST_ID {
            return Err(SpoolError::IdsExhausted);
        }
        while self.stats.disk_bytes + rec_len > self.cfg.max_bytes && !self.segments.is_empty() {
            self.drop_oldest()?;
        }
        let need_new = match (self.active.as_ref(), self.segments.back()) {
            (Some(_), Some(seg)) => seg.size > 0 && seg.size + rec_len > self.cfg.segment_bytes,
            _ => true,
        };
        if need_new {
            self.rotate()?;
        }
        let id = self.next_id;
        let buf = encode(id, payload);
        let (Some(file), Some(seg)) = (self.active.as_mut(), self.segments.back_mut()) else {
            return Err(SpoolError::Io(io::Error::other("no active segment")));
        };
        if let Err(e) = file
            .seek(SeekFrom::Start(seg.size))
            .and_then(|_| file.write_all(&buf))
        {
            // Do not leave a partial record behind: cut the segment back to its known size.
            let _ = file.set_len(seg.size);
            return Err(e.into());
        }
        seg.entries.push_back(Entry {
            id,
            offset: seg.size,
            len: payload.len() as u32,
        });
        seg.size += rec_len;
        self.next_id += 1;
        self.stats.records += 1;
        self.stats.bytes += rec_len;
        self.stats.disk_bytes += rec_len;
        self.dirty = true;
        match self.cfg.fsync {
            FsyncPolicy::EveryAppend => self.flush()?,
            FsyncPolicy::Interval(d) if self.last_sync.elapsed() >= d => self.flush()?,
            _ => {}
        }
        Ok(RecordId(id))
    }

    /// Forces appended data to stable storage.
    pub fn flush(&mut self) -> Result<()> {
        if self.dirty {
            if let Some(f) = self.active.as_ref() {
                f.sync_data()?;
            }
            self.dirty = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    fn rotate(&mut self) -> Result<()> {
        if let Some(f) = self.active.take()
            && self.dirty
        {
            f.sync_data()?;
            self.dirty = false;
        }
        let path = self.dir.join(seg_name(self.next_id));
        // Plain write mode (not append): on Windows an append-only handle can neither be
        // flushed nor truncated. Every write seeks to the known end of the segment first.
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)?;
        sync_dir(&self.dir);
        self.active = Some(file);
        self.segments.push_back(Segment {
            path,
            size: 0,
            entries: VecDeque::new(),
        });
        Ok(())
    }

    fn drop_oldest(&mut self) -> Result<()> {
        let Some(seg) = self.segments.pop_front() else {
            return Ok(());
        };
        if self.segments.is_empty() {
            self.active = None;
            self.dirty = false;
        }
        let n = seg.entries.len() as u64;
        let b: u64 = seg
            .entries
            .iter()
            .map(|e| HEADER_LEN + u64::from(e.len))
            .sum();
        if n > 0 {
            tracing::warn!(
                records = n,
                bytes = b,
                "spool full: dropping oldest segment"
            );
        }
        // Dropped records count as consumed: persist the position past them so ids are never
        // reused and the drop is not counted twice after a restart.
        if let Some(last) = seg.entries.back()
            && last.id > self.acked
        {
            self.write_state(last.id)?;
            self.acked = last.id;
        }
        self.stats.dropped_records += n;
        self.stats.dropped_bytes += b;
        self.stats.records -= n;
        self.stats.bytes -= b;
        self.stats.disk_bytes -= seg.size;
        fs::remove_file(&seg.path)?;
        Ok(())
    }

    /// Returns up to `max_records` of the oldest unacknowledged records, without removing them.
    /// A record found corrupt on read is skipped (and counted).
    pub fn peek(&mut self, max_records: usize) -> Result<Vec<(RecordId, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut bad: Vec<(usize, u64)> = Vec::new();
        for (si, seg) in self.segments.iter().enumerate() {
            if out.len() >= max_records {
                break;
            }
            if seg.entries.is_empty() {
                continue;
            }
            let mut f = File::open(&seg.path)?;
            for e in &seg.entries {
                if out.len() >= max_records {
                    break;
                }
                f.seek(SeekFrom::Start(e.offset))?;
                let mut buf = vec![0u8; HEADER_LEN as usize + e.len as usize];
                let ok = f.read_exact(&mut buf).is_ok()
                    && parse_at(&buf, 0, e.id) == Some((e.id, e.len));
                if ok {
                    buf.drain(..HEADER_LEN as usize);
                    out.push((RecordId(e.id), buf));
                } else {
                    bad.push((si, e.id));
                }
            }
        }
        for (si, id) in bad {
            tracing::warn!(id, "spool: corrupt record skipped on read");
            let seg = &mut self.segments[si];
            if let Some(pos) = seg.entries.iter().position(|e| e.id == id)
                && let Some(e) = seg.entries.remove(pos)
            {
                self.stats.records -= 1;
                self.stats.bytes -= HEADER_LEN + u64::from(e.len);
                self.stats.corrupt_skipped += 1;
            }
        }
        Ok(out)
    }

    /// Acknowledges every record with id `<= up_to`: they are removed, fully acknowledged
    /// segments are deleted, and the position is persisted (atomically) before that.
    pub fn ack(&mut self, up_to: RecordId) -> Result<()> {
        let up_to = up_to.0.min(self.next_id - 1);
        if up_to <= self.acked {
            return Ok(());
        }
        self.write_state(up_to)?;
        self.acked = up_to;
        for seg in &mut self.segments {
            while let Some(e) = seg.entries.front() {
                if e.id > up_to {
                    break;
                }
                self.stats.records -= 1;
                self.stats.bytes -= HEADER_LEN + u64::from(e.len);
                seg.entries.pop_front();
            }
        }
        while self.segments.front().is_some_and(|s| s.entries.is_empty()) {
            let seg = self.segments.pop_front().expect("checked");
            if self.segments.is_empty() {
                self.active = None;
                self.dirty = false;
            }
            self.stats.disk_bytes -= seg.size;
            fs::remove_file(&seg.path)?;
        }
        Ok(())
    }

    fn write_state(&self, acked: u64) -> Result<()> {
        let tmp = self.dir.join(STATE_TMP);
        let mut f = File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(&State { acked })?)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, self.dir.join(STATE_FILE))?;
        sync_dir(&self.dir);
        Ok(())
    }

    /// Number of unacknowledged records.
    pub fn len(&self) -> u64 {
        self.stats.records
    }

    /// `true` when there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.stats.records == 0
    }

    /// Bytes (header + payload) of the unacknowledged records.
    pub fn bytes(&self) -> u64 {
        self.stats.bytes
    }

    /// The last acknowledged id (0 when none).
    pub fn acked(&self) -> RecordId {
        RecordId(self.acked)
    }

    /// Counters.
    pub fn stats(&self) -> SpoolStats {
        self.stats
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
