//! File integrity monitoring: create / modify / delete / rename / attribute changes of watched
//! paths with SHA-256, through `notify` (inotify on Linux, ReadDirectoryChangesW on Windows).
//!
//! Changes are debounced per path (quiet for `debounce_ms`) and then judged against the
//! baseline by looking at the file itself, so a burst of writes is one `modified` event.
//!
//! A file seen being created that is gone again when its path is judged (deleted, or renamed
//! and then deleted, or moved out of the watched trees: a dropper's footprint) is reported as
//! short-lived: `created` under its first name, `renamed` for every rename seen, and `deleted`
//! with the observed lifetime. On Linux a new regular file is opened as soon as its creation
//! is seen, so its metadata and SHA-256 can still be read through that descriptor after the
//! name is gone.

mod baseline;

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RenameMode};
use notify::{RecursiveMode, Watcher};
use serde_json::{Map, Value, json};

use self::baseline::{Baseline, Entry};
use crate::config::FimSettings;
use crate::ecs::{self, Stopped};
use crate::{CollectorContext, CollectorState, RunResult, state};

/// Capacity of the channel between notify's thread and ours. When full, notify's thread
/// waits; the kernel queue then overflows and the resulting rescan catches up.
const QUEUE: usize = 16 * 1024;
/// The baseline is written at most this often while it changes.
const SAVE_EVERY: Duration = Duration::from_secs(5);

/// New files are held open (to hash them after they are gone) only while fewer paths than
/// this are pending, which bounds the open descriptors.
#[cfg(target_os = "linux")]
const MAX_HELD: usize = 256;
/// Renames of a short-lived file remembered (the rest are not reported).
const MAX_HOPS: usize = 16;

const CREATED: u8 = 1;
const WRITTEN: u8 = 2;
const META: u8 = 4;
const REMOVED: u8 = 8;

/// When the watcher reported something: for the debounce and for the events' timestamps.
#[derive(Debug, Clone, Copy)]
struct Stamp {
    at: Instant,
    wall: SystemTime,
}

impl Stamp {
    fn now() -> Stamp {
        Stamp {
            at: Instant::now(),
            wall: SystemTime::now(),
        }
    }
}

#[derive(Debug)]
struct Pending {
    flags: u8,
    first: Instant,
    last: Instant,
    /// Seen being created since the path was last judged.
    born: Option<Birth>,
    /// Seen removed or moved away (the last time).
    gone: Option<Stamp>,
    /// Moved out of the watched trees; to this path when the watcher saw both ends.
    moved_out: bool,
    moved_to: Option<PathBuf>,
}

/// The history of a file seen being created, in case it is gone before it is judged.
#[derive(Debug)]
struct Birth {
    at: Stamp,
    /// The path it was created at.
    original: PathBuf,
    /// Renames since (from, to, when).
    hops: Vec<(PathBuf, PathBuf, Stamp)>,
    dir: bool,
    /// The file, opened when its creation was seen (Linux), to read it after it is gone.
    held: Option<std::fs::File>,
}

#[derive(Debug)]
struct MovedFrom {
    path: PathBuf,
    tracker: Option<usize>,
    at: Stamp,
}

/// A watched root: a directory (recursive or not) or a single file (whose parent is watched).
#[derive(Debug, Clone)]
struct Root {
    path: PathBuf,
    file: bool,
}

struct Fim<'a> {
    s: &'a FimSettings,
    ctx: &'a CollectorContext,
    roots: Vec<Root>,
    baseline: Baseline,
    dirty: bool,
    last_save: Instant,
    pending: HashMap<PathBuf, Pending>,
    moved_from: Vec<MovedFrom>,
    #[cfg(unix)]
    users: crate::users::UserNames,
    max_wait: Duration,
    /// Events judged but not sent yet.
    queue: Vec<Map<String, Value>>,
    /// The watcher lost events (queue overflow): compare everything with the baseline.
    rescan_requested: bool,
    /// When the event being handled was reported.
    now: Stamp,
}

pub fn run(s: &FimSettings, ctx: &CollectorContext) -> RunResult {
    let (tx, rx) = crossbeam_channel::bounded::<(Stamp, notify::Result<notify::Event>)>(QUEUE);
    let mut watcher = notify::recommended_watcher(move |res| {
        let _ = tx.send((Stamp::now(), res));
    })
    .map_err(|e| format!("cannot start the file watcher: {e}"))?;

    let mut roots = Vec::new();
    let mut problems = Vec::new();
    let mut missing = 0usize;
    for path in &s.paths {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing += 1;
                tracing::debug!(path = %path.display(), "FIM path does not exist, skipped");
                continue;
            }
            Err(e) => {
                problems.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        let (target, mode, file) = if meta.is_dir() {
            let mode = if s.recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            (path.clone(), mode, false)
        } else {
            // Watch the directory so an atomic replace (rename over) keeps being seen.
            let parent = path.parent().unwrap_or(Path::new("/")).to_path_buf();
            (parent, RecursiveMode::NonRecursive, true)
        };
        match watcher.watch(&target, mode) {
            Ok(()) => roots.push(Root {
                path: path.clone(),
                file,
            }),
            Err(e) => problems.push(format!("{}: {e}", path.display())),
        }
    }

    let baseline_path = ctx.state_dir.join(Baseline::FILE);
    let loaded: Option<Baseline> = state::load(&baseline_path).unwrap_or_else(|e| {
        tracing::warn!("cannot read the FIM baseline: {e}");
        None
    });
    let had_baseline = loaded.is_some();
    let mut fim = Fim {
        s,
        ctx,
        roots,
        baseline: loaded.unwrap_or_default(),
        dirty: false,
        last_save: Instant::now(),
        pending: HashMap::new(),
        moved_from: Vec::new(),
        #[cfg(unix)]
        users: crate::users::UserNames::default(),
        max_wait: (s.debounce * 10).max(Duration::from_secs(2)),
        queue: Vec::new(),
        rescan_requested: false,
        now: Stamp::now(),
    };
    let report = s.initial_scan && had_baseline;
    if fim.scan(report).is_err() {
        return Ok(());
    }
    fim.save(&baseline_path);
    if fim.roots.is_empty() && problems.is_empty() {
        ctx.health.set(
            "fim",
            CollectorState::Degraded,
            Some(format!("none of the {missing} configured paths exists")),
        );
    } else if problems.is_empty() {
        ctx.health.set(
            "fim",
            CollectorState::Running,
            Some(format!("watching {} paths", fim.roots.len())),
        );
    } else {
        ctx.health.set(
            "fim",
            CollectorState::Degraded,
            Some(format!("cannot watch {}", problems.join("; "))),
        );
    }

    let tick = (s.debounce / 3).clamp(Duration::from_millis(20), Duration::from_millis(200));
    let result = loop {
        if ctx.shutdown.is_triggered() {
            break Ok(());
        }
        match rx.recv_timeout(tick) {
            Ok((stamp, Ok(event))) => {
                fim.on_event(stamp, event);
                // Drain what is queued before judging, so pairs (rename) meet.
                while let Ok(next) = rx.try_recv() {
                    match next {
                        (stamp, Ok(event)) => fim.on_event(stamp, event),
                        (_, Err(e)) => fim.on_error(&e),
                    }
                }
            }
            Ok((_, Err(e))) => fim.on_error(&e),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                break Err("the file watcher stopped".to_owned());
            }
        }
        if fim.flush(false).is_err() {
            break Ok(());
        }
        if fim.rescan_requested {
            fim.rescan_requested = false;
            if fim.scan(true).is_err() {
                break Ok(());
            }
        }
        if fim.dirty && fim.last_save.elapsed() >= SAVE_EVERY {
            fim.save(&baseline_path);
        }
    };
    drop(watcher);
    fim.save(&baseline_path);
    result
}

impl Fim<'_> {
    fn save(&mut self, path: &Path) {
        self.baseline.version = 1;
        if let Err(e) = state::save(path, &self.baseline) {
            tracing::warn!("cannot save the FIM baseline: {e}");
        }
        self.dirty = false;
        self.last_save = Instant::now();
    }

    /// Whether `path` is watched (under a root) and not excluded.
    fn in_scope(&self, path: &Path) -> bool {
        if self.s.exclude.is_match(path) {
            return false;
        }
        self.roots.iter().any(|r| {
            if r.file {
                path == r.path
            } else if self.s.recursive {
                path.starts_with(&r.path)
            } else {
                path == r.path || path.parent() == Some(r.path.as_path())
            }
        })
    }

    fn mark(&mut self, path: &Path, flag: u8) {
        if !self.in_scope(path) {
            return;
        }
        let now = self.now;
        let p = self
            .pending
            .entry(path.to_path_buf())
            .or_insert_with(|| Pending {
                flags: 0,
                first: now.at,
                last: now.at,
                born: None,
                gone: None,
                moved_out: false,
                moved_to: None,
            });
        p.flags |= flag;
        p.last = p.last.max(now.at);
        if flag & CREATED != 0 {
            p.gone = None;
            p.moved_out = false;
            p.moved_to = None;
            if p.born.is_none() {
                p.born = Some(Birth {
                    at: now,
                    original: path.to_path_buf(),
                    hops: Vec::new(),
                    dir: false,
                    held: None,
                });
            }
        }
        if flag & REMOVED != 0 {
            p.gone = Some(now);
        }
    }

    /// Opens a file just seen created, so it can be read even after it is gone (bounded by
    /// [`MAX_HELD`]; regular files only; never follows a symlink or blocks on a FIFO).
    #[cfg(target_os = "linux")]
    fn hold(&mut self, path: &Path) {
        if self.pending.len() > MAX_HELD {
            return;
        }
        let Some(birth) = self.pending.get_mut(path).and_then(|p| p.born.as_mut()) else {
            return;
        };
        if birth.held.is_none() {
            birth.held = open_quietly(path);
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn hold(&mut self, _path: &Path) {}

    fn on_error(&mut self, e: &notify::Error) {
        tracing::warn!("file watcher: {e}");
        if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
            self.ctx.health.set(
                "fim",
                CollectorState::Degraded,
                Some("inotify watch limit reached (fs.inotify.max_user_watches)".into()),
            );
        }
    }

    fn on_event(&mut self, stamp: Stamp, event: notify::Event) {
        self.now = stamp;
        if event.need_rescan() {
            self.rescan_requested = true;
            return;
        }
        let tracker = event.tracker();
        let mut paths = event.paths.into_iter();
        let Some(path) = paths.next() else { return };
        match event.kind {
            EventKind::Create(kind) => {
                self.mark(&path, CREATED);
                if kind == CreateKind::Folder || path.is_dir() {
                    if let Some(birth) = self.pending.get_mut(&path).and_then(|p| p.born.as_mut()) {
                        birth.dir = true;
                    }
                    // Files created before the new directory's watch was added.
                    self.mark_tree(&path);
                } else {
                    self.hold(&path);
                }
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
                // Not judged before its pair (or its absence) is known.
                if let Some(p) = self.pending.get_mut(&path) {
                    p.last = p.last.max(stamp.at);
                }
                self.moved_from.push(MovedFrom {
                    path,
                    tracker,
                    at: stamp,
                });
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
                let pos = match tracker {
                    Some(t) => self.moved_from.iter().position(|m| m.tracker == Some(t)),
                    None => self.moved_from.iter().rposition(|m| m.tracker.is_none()),
                };
                match pos {
                    Some(i) => {
                        let from = self.moved_from.remove(i);
                        self.renamed(from.path, path);
                    }
                    None => {
                        self.mark(&path, CREATED);
                        if path.is_dir() {
                            self.mark_tree(&path);
                        }
                    }
                }
            }
            // inotify also sends From+To; they are paired above.
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {}
            EventKind::Modify(ModifyKind::Metadata(_)) => self.mark(&path, META),
            EventKind::Modify(_) => self.mark(&path, WRITTEN),
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => self.mark(&path, WRITTEN),
            EventKind::Access(_) => {}
            EventKind::Remove(_) => self.mark(&path, REMOVED),
            EventKind::Any | EventKind::Other => self.mark(&path, WRITTEN),
        }
    }

    fn mark_tree(&mut self, dir: &Path) {
        for entry in walkdir::WalkDir::new(dir)
            .min_depth(1)
            .follow_links(false)
            .into_iter()
            .flatten()
        {
            self.mark(entry.path(), CREATED);
        }
    }

    /// A rename from → to, both reported by the watcher.
    fn renamed(&mut self, from: PathBuf, to: PathBuf) {
        let from_key = Baseline::key(&from);
        let from_known = self.in_scope(&from) && self.baseline.files.contains_key(&from_key);
        if !self.in_scope(&to) {
            // Moved out of sight: a deletion of `from`.
            self.mark(&from, REMOVED);
            if let Some(p) = self.pending.get_mut(&from) {
                p.moved_out = true;
                p.moved_to = Some(to);
            }
            return;
        }
        if !from_known {
            // A new (temporary) file moved into place, e.g. an editor's save or `sed -i`:
            // judged as a create or a modification of `to`. Its history goes with it.
            let carried = self.pending.remove(&from).and_then(|p| p.born);
            self.mark(&to, CREATED | WRITTEN);
            let now = self.now;
            if let Some(mut birth) = carried
                && let Some(p) = self.pending.get_mut(&to)
            {
                if birth.hops.len() < MAX_HOPS {
                    birth.hops.push((from.clone(), to.clone(), now));
                }
                p.born = Some(birth);
            }
            if to.is_dir() {
                // A new directory renamed: what was pending inside it moved with it.
                let inside: Vec<PathBuf> = self
                    .pending
                    .keys()
                    .filter(|p| p.starts_with(&from) && **p != from)
                    .cloned()
                    .collect();
                for p in inside {
                    self.pending.remove(&p);
                }
                self.mark_tree(&to);
            }
            return;
        }
        self.pending.remove(&from);
        let to_key = Baseline::key(&to);
        let replaced = self
            .baseline
            .files
            .get(&to_key)
            .and_then(|e| e.sha256.clone());
        self.baseline.rename_tree(&from_key, &to_key);
        self.dirty = true;
        let meta = std::fs::symlink_metadata(&to).ok();
        let mut entry = self
            .baseline
            .files
            .get(&to_key)
            .cloned()
            .unwrap_or_default();
        if let Some(meta) = &meta {
            let fresh = Entry::from_meta(meta);
            let sha = if fresh.same_stat(&entry) || fresh.dir {
                entry.sha256.clone()
            } else {
                self.hash(&to, meta)
            };
            entry = Entry {
                sha256: sha,
                ..fresh
            };
            self.baseline.files.insert(to_key.clone(), entry.clone());
        }
        let mut doc = self.file_event(&to, Some(&entry), meta.as_ref(), &["change"], "renamed");
        ecs::put(&mut doc, "dozor.file.previous_path", from_key);
        if let Some(old) = replaced {
            ecs::put(&mut doc, "dozor.file.previous_hash.sha256", old);
        }
        self.queue.push(doc);
    }

    fn hash(&self, path: &Path, meta: &std::fs::Metadata) -> Option<String> {
        if !self.s.hash || !meta.is_file() {
            return None;
        }
        match crate::hashing::sha256_file(path, self.s.hash_max_bytes) {
            Ok(h) => h,
            Err(e) => {
                tracing::debug!(path = %path.display(), "cannot hash: {e}");
                None
            }
        }
    }

    /// Judges the paths that have been quiet long enough (all of them with `all`).
    fn flush(&mut self, all: bool) -> Result<(), Stopped> {
        let now = Instant::now();
        let debounce = self.s.debounce;
        // Unpaired "moved from" older than the window: moved out of the watched tree.
        let (old, keep): (Vec<MovedFrom>, Vec<MovedFrom>) = std::mem::take(&mut self.moved_from)
            .into_iter()
            .partition(|m| all || now.duration_since(m.at.at) >= debounce);
        self.moved_from = keep;
        for m in old {
            self.now = m.at;
            self.mark(&m.path, REMOVED);
            if let Some(p) = self.pending.get_mut(&m.path) {
                p.moved_out = true;
            }
        }
        let ready: Vec<PathBuf> = self
            .pending
            .iter()
            .filter(|(_, p)| {
                all || now.duration_since(p.last) >= debounce
                    || now.duration_since(p.first) >= self.max_wait
            })
            .map(|(path, _)| path.clone())
            .collect();
        let mut ready = ready;
        ready.sort();
        for path in ready {
            if let Some(p) = self.pending.remove(&path) {
                self.judge(&path, p);
            }
        }
        for doc in std::mem::take(&mut self.queue) {
            self.ctx.emit(doc)?;
        }
        Ok(())
    }

    /// Compares a path with its baseline entry and queues the event it deserves (or the
    /// events of a short-lived file).
    fn judge(&mut self, path: &Path, pending: Pending) {
        let Pending {
            born,
            gone,
            moved_out,
            moved_to,
            ..
        } = pending;
        let key = Baseline::key(path);
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::debug!(path = %path.display(), "cannot stat: {e}");
                return;
            }
        };
        let old = self.baseline.files.get(&key).cloned();
        let was_known = old.is_some();
        if !was_known && meta.is_none() {
            // Neither known nor there: a short-lived file when it was seen being created.
            if let Some(birth) = born {
                let docs = self.short_lived(path, birth, gone, moved_out, moved_to);
                self.queue.extend(docs);
            }
            return;
        }
        let exists = meta.is_some();
        if let Some(mut doc) = self.compare(path, old, meta.as_ref()) {
            if !exists && moved_out {
                ecs::put(&mut doc, "dozor.file.moved_out", true);
                if let Some(to) = moved_to {
                    ecs::put(&mut doc, "dozor.file.moved_to", to.to_string_lossy());
                }
            }
            if exists
                && !was_known
                && let Some(birth) = &born
                && birth.original != path
            {
                ecs::put(
                    &mut doc,
                    "dozor.file.original_path",
                    birth.original.to_string_lossy(),
                );
            }
            self.queue.push(doc);
        }
    }

    /// The events of a file created and gone before it was judged: `created` (first name),
    /// `renamed` for each rename seen, `deleted` (last name) with the lifetime. Metadata and
    /// hash come from the descriptor held since the creation, when there is one.
    fn short_lived(
        &mut self,
        path: &Path,
        birth: Birth,
        gone: Option<Stamp>,
        moved_out: bool,
        moved_to: Option<PathBuf>,
    ) -> Vec<Map<String, Value>> {
        let gone = gone.unwrap_or_else(Stamp::now);
        let meta = birth.held.as_ref().and_then(|f| f.metadata().ok());
        let mut entry = meta.as_ref().map(Entry::from_meta).unwrap_or_default();
        if meta.is_none() {
            entry.dir = birth.dir;
        }
        entry.sha256 = match (&birth.held, &meta) {
            (Some(file), Some(m))
                if self.s.hash && m.is_file() && m.len() <= self.s.hash_max_bytes =>
            {
                use std::io::Read;
                crate::hashing::sha256_reader(file.take(self.s.hash_max_bytes)).ok()
            }
            _ => None,
        };
        let lifetime = gone.at.saturating_duration_since(birth.at.at);
        let mut docs = Vec::with_capacity(birth.hops.len() + 2);

        let mut created = self.file_event(
            &birth.original,
            Some(&entry),
            meta.as_ref(),
            &["creation"],
            "created",
        );
        set_timestamp(&mut created, birth.at.wall);
        ecs::put(&mut created, "dozor.file.short_lived", true);
        docs.push(created);
        for (from, to, at) in &birth.hops {
            let mut doc = self.file_event(to, Some(&entry), meta.as_ref(), &["change"], "renamed");
            set_timestamp(&mut doc, at.wall);
            ecs::put(&mut doc, "dozor.file.previous_path", from.to_string_lossy());
            ecs::put(&mut doc, "dozor.file.short_lived", true);
            docs.push(doc);
        }
        let mut deleted =
            self.file_event(path, Some(&entry), meta.as_ref(), &["deletion"], "deleted");
        set_timestamp(&mut deleted, gone.wall);
        if let Some(start) = ecs::system_time_rfc3339(birth.at.wall) {
            ecs::put(&mut deleted, "event.start", start);
        }
        if let Some(end) = ecs::system_time_rfc3339(gone.wall) {
            ecs::put(&mut deleted, "event.end", end);
        }
        ecs::put(
            &mut deleted,
            "event.duration",
            u64::try_from(lifetime.as_nanos()).unwrap_or(u64::MAX),
        );
        ecs::put(
            &mut deleted,
            "dozor.file.lifetime_ms",
            (lifetime.as_secs_f64() * 1_000_000.0).round() / 1000.0,
        );
        ecs::put(&mut deleted, "dozor.file.short_lived", true);
        if birth.original != path {
            ecs::put(
                &mut deleted,
                "dozor.file.original_path",
                birth.original.to_string_lossy(),
            );
        }
        if moved_out {
            ecs::put(&mut deleted, "dozor.file.moved_out", true);
            if let Some(to) = moved_to {
                ecs::put(&mut deleted, "dozor.file.moved_to", to.to_string_lossy());
            }
        }
        docs.push(deleted);
        docs
    }

    /// The event (if any) for `path` given its old entry and current metadata; updates the
    /// baseline.
    fn compare(
        &mut self,
        path: &Path,
        old: Option<Entry>,
        meta: Option<&std::fs::Metadata>,
    ) -> Option<Map<String, Value>> {
        let key = Baseline::key(path);
        match (old, meta) {
            (None, None) => None,
            (Some(old), None) => {
                self.baseline.files.remove(&key);
                if old.dir {
                    self.baseline.remove_children(&key);
                }
                self.dirty = true;
                Some(self.file_event(path, Some(&old), None, &["deletion"], "deleted"))
            }
            (None, Some(meta)) => {
                let mut entry = Entry::from_meta(meta);
                entry.sha256 = self.hash(path, meta);
                self.baseline.files.insert(key, entry.clone());
                self.dirty = true;
                Some(self.file_event(path, Some(&entry), Some(meta), &["creation"], "created"))
            }
            (Some(old), Some(meta)) => {
                let mut entry = Entry::from_meta(meta);
                if entry.same_stat(&old) && !entry.attrs_differ(&old) {
                    return None;
                }
                let content_may_differ = entry.size != old.size
                    || entry.mtime_ns != old.mtime_ns
                    || entry.ino != old.ino
                    || entry.dir != old.dir;
                entry.sha256 = if content_may_differ || old.sha256.is_none() {
                    self.hash(path, meta)
                } else {
                    old.sha256.clone()
                };
                let content_changed = if entry.dir || old.dir {
                    entry.dir != old.dir
                } else if entry.sha256.is_some() && old.sha256.is_some() {
                    entry.sha256 != old.sha256
                } else {
                    content_may_differ
                };
                let attrs_changed = entry.attrs_differ(&old);
                self.baseline.files.insert(key, entry.clone());
                self.dirty = true;
                if content_changed {
                    let mut doc =
                        self.file_event(path, Some(&entry), Some(meta), &["change"], "modified");
                    if let Some(prev) = &old.sha256 {
                        ecs::put(&mut doc, "dozor.file.previous_hash.sha256", prev.clone());
                    }
                    Some(doc)
                } else if attrs_changed {
                    #[cfg_attr(not(unix), allow(unused_mut))]
                    let mut doc = self.file_event(
                        path,
                        Some(&entry),
                        Some(meta),
                        &["change"],
                        "attributes_modified",
                    );
                    #[cfg(unix)]
                    ecs::put(
                        &mut doc,
                        "dozor.file.previous_mode",
                        format!("{:04o}", old.mode & 0o7777),
                    );
                    Some(doc)
                } else {
                    None
                }
            }
        }
    }

    /// Walks the watched roots, brings the baseline up to date and, with `report`, returns the
    /// changes as events (files changed while nobody watched).
    fn scan(&mut self, report: bool) -> Result<(), Stopped> {
        let mut seen: HashSet<String> = HashSet::new();
        let roots = self.roots.clone();
        for root in &roots {
            let depth = if root.file {
                0
            } else if self.s.recursive {
                usize::MAX
            } else {
                1
            };
            let walker = walkdir::WalkDir::new(&root.path)
                .follow_links(false)
                .max_depth(depth)
                .into_iter()
                .filter_entry(|e| !self.s.exclude.is_match(e.path()));
            for entry in walker.flatten() {
                let path = entry.path();
                let Ok(meta) = entry.metadata() else { continue };
                let key = Baseline::key(path);
                let old = self.baseline.files.get(&key).cloned();
                if let Some(old) = &old {
                    let fresh = Entry::from_meta(&meta);
                    if fresh.same_stat(old) && !fresh.attrs_differ(old) {
                        seen.insert(key);
                        continue;
                    }
                }
                let doc = self.compare(path, old, Some(&meta));
                seen.insert(key);
                if let (true, Some(doc)) = (report, doc) {
                    self.ctx.emit(doc)?;
                }
                if self.ctx.shutdown.is_triggered() {
                    return Err(Stopped);
                }
            }
        }
        // What the baseline has and the disk no longer (or that is out of scope now).
        let vanished: Vec<(String, Entry)> = self
            .baseline
            .files
            .iter()
            .filter(|(k, _)| !seen.contains(*k))
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect();
        for (key, entry) in vanished {
            self.baseline.files.remove(&key);
            self.dirty = true;
            let path = PathBuf::from(&key);
            if report && self.in_scope(&path) {
                let doc = self.file_event(&path, Some(&entry), None, &["deletion"], "deleted");
                self.ctx.emit(doc)?;
            }
        }
        Ok(())
    }

    /// A `file` event document.
    fn file_event(
        &mut self,
        path: &Path,
        entry: Option<&Entry>,
        meta: Option<&std::fs::Metadata>,
        types: &[&str],
        action: &str,
    ) -> Map<String, Value> {
        let mut doc = ecs::base_event(ecs::now_rfc3339(), "file", &["file"], types, action);
        let sha = entry.and_then(|e| e.sha256.clone());
        let kind = match (meta, entry) {
            (Some(m), _) if m.file_type().is_symlink() => Some("symlink"),
            (Some(m), _) if m.is_dir() => Some("dir"),
            (Some(_), _) => Some("file"),
            (None, Some(e)) if e.dir => Some("dir"),
            (None, Some(_)) => Some("file"),
            (None, None) => None,
        };
        let mut file = json!({
            "path": path.to_string_lossy(),
            "name": path.file_name().map(|n| n.to_string_lossy().into_owned()),
            "directory": path.parent().map(|d| d.to_string_lossy().into_owned()),
            "extension": path.extension().map(|x| x.to_string_lossy().into_owned()),
            "type": kind,
            "hash": { "sha256": sha },
        });
        if let Some(m) = meta {
            file["size"] = json!(m.len());
            file["mtime"] = json!(m.modified().ok().and_then(ecs::system_time_rfc3339));
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                file["mode"] = json!(format!("{:04o}", m.mode() & 0o7777));
                file["uid"] = json!(m.uid().to_string());
                file["gid"] = json!(m.gid().to_string());
                file["inode"] = json!(m.ino().to_string());
                file["owner"] = json!(self.users.name(m.uid()));
                file["ctime"] = json!(
                    chrono::DateTime::from_timestamp(
                        m.ctime(),
                        m.ctime_nsec().clamp(0, 999_999_999) as u32
                    )
                    .map(ecs::rfc3339)
                );
            }
        }
        doc.insert("file".into(), file);
        if let Some(sha) = sha {
            doc.insert("related".into(), json!({ "hash": [sha] }));
        }
        doc
    }
}

/// Sets `@timestamp` to when the watcher reported the change.
fn set_timestamp(doc: &mut Map<String, Value>, at: SystemTime) {
    if let Some(t) = ecs::system_time_rfc3339(at) {
        doc.insert("@timestamp".into(), t.into());
    }
}

/// Opens a regular file for reading without following a symlink, blocking on a FIFO or
/// opening a device, and checks it is the file that was looked at.
#[cfg(target_os = "linux")]
fn open_quietly(path: &Path) -> Option<std::fs::File> {
    use rustix::fs::{Mode, OFlags};
    use std::os::unix::fs::MetadataExt;
    let before = std::fs::symlink_metadata(path).ok()?;
    if !before.is_file() {
        return None;
    }
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let file = std::fs::File::from(fd);
    let after = file.metadata().ok()?;
    (after.is_file() && after.ino() == before.ino() && after.dev() == before.dev()).then_some(file)
}
