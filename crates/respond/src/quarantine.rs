//! `quarantine_file`, `restore_file`, `delete_file`: a vault directory (the agent's
//! `<state dir>/quarantine`, 0700) holding `<id>.bin` (the content, 0600) and `<id>.json`
//! (its [`QuarantineRecord`]: original path, sha256, size, owner, mode, time).
//!
//! A file is moved with `rename` when the vault is on the same filesystem, else copied,
//! fsynced and removed. Directories and symbolic links are refused (links are never followed),
//! and so are the agent's own files (the protected paths).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use dozor_model::response::QuarantineRecord;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::RespondError;

/// The vault of quarantined files.
#[derive(Debug, Clone)]
pub struct Vault {
    dir: PathBuf,
    protected: Vec<PathBuf>,
}

/// What `delete_file` removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeletedFile {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

fn refused(why: impl Into<String>) -> RespondError {
    RespondError::Refused(why.into())
}

impl Vault {
    /// Opens (creates, 0700 on Unix) the vault directory. The vault itself is protected.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, RespondError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(RespondError::io(format!(
            "creating the quarantine vault {}",
            dir.display()
        )))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(
                RespondError::io(format!("setting 0700 on {}", dir.display())),
            )?;
        }
        let protected = vec![canonical(&dir)];
        Ok(Self { dir, protected })
    }

    /// Adds paths (files or directories) that are never quarantined or deleted: the agent's
    /// state directory, its executable, its configuration.
    pub fn protect(mut self, paths: impl IntoIterator<Item = PathBuf>) -> Self {
        self.protected
            .extend(paths.into_iter().map(|p| canonical(&p)));
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn bin(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.bin"))
    }

    fn json(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Refuses a path that is not absolute, is (inside) a protected path, a directory, a
    /// symlink or not a regular file; returns its metadata (not following links).
    fn check_target(&self, path: &Path) -> Result<std::fs::Metadata, RespondError> {
        if !path.is_absolute() {
            return Err(refused(format!(
                "{} is not an absolute path",
                path.display()
            )));
        }
        let meta = std::fs::symlink_metadata(path)
            .map_err(RespondError::io(path.display().to_string()))?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            return Err(refused(format!(
                "{} is a symbolic link (not followed)",
                path.display()
            )));
        }
        if kind.is_dir() {
            return Err(refused(format!("{} is a directory", path.display())));
        }
        if !kind.is_file() {
            return Err(refused(format!("{} is not a regular file", path.display())));
        }
        let real = canonical(path);
        if let Some(p) = self.protected.iter().find(|p| real.starts_with(p)) {
            return Err(refused(format!(
                "{} is the agent's own ({})",
                path.display(),
                p.display()
            )));
        }
        Ok(meta)
    }

    /// Moves `path` into the vault; the record says where it was and what it was.
    pub fn quarantine(&self, path: &Path) -> Result<QuarantineRecord, RespondError> {
        let meta = self.check_target(path)?;
        let id = dozor_model::response::new_quarantine_id();
        let bin = self.bin(&id);
        move_file(path, &bin)?;
        set_private(&bin)?;
        let (sha256, size) = match hash_file(&bin) {
            Ok(h) => h,
            Err(e) => {
                let _ = move_file(&bin, path);
                return Err(e);
            }
        };
        let record = QuarantineRecord {
            quarantine_id: id.clone(),
            original_path: path.to_string_lossy().into_owned(),
            sha256,
            size,
            owner: owner_of(&meta),
            mode: mode_of(&meta),
            quarantined_at_unix_ms: now_unix_ms(),
        };
        if let Err(e) = write_private(&self.json(&id), &record) {
            // Without its record the content could not be restored: put it back.
            let _ = move_file(&bin, path);
            return Err(e);
        }
        tracing::info!(path = %path.display(), quarantine_id = %id, sha256 = %record.sha256, "file quarantined");
        Ok(record)
    }

    /// The record of a quarantined file.
    pub fn record(&self, id: &str) -> Result<QuarantineRecord, RespondError> {
        check_id(id)?;
        let path = self.json(id);
        let bytes = std::fs::read(&path).map_err(RespondError::io(format!(
            "quarantine record {}",
            path.display()
        )))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            refused(format!(
                "quarantine record {} is unreadable: {e}",
                path.display()
            ))
        })
    }

    /// Puts a quarantined file back with its mode (and owner, when running as root). Refuses to
    /// replace a file now at the original path unless `overwrite`; refuses content whose hash
    /// no longer matches the record.
    pub fn restore(&self, id: &str, overwrite: bool) -> Result<QuarantineRecord, RespondError> {
        let record = self.record(id)?;
        let bin = self.bin(id);
        let (sha256, _) = hash_file(&bin)?;
        if sha256 != record.sha256 {
            return Err(refused(format!(
                "the vault's copy of {id} does not match its record (sha256 {sha256}, recorded {})",
                record.sha256
            )));
        }
        let target = PathBuf::from(&record.original_path);
        match std::fs::symlink_metadata(&target) {
            Ok(m) if m.is_dir() => {
                return Err(refused(format!("{} is now a directory", target.display())));
            }
            Ok(_) if !overwrite => {
                return Err(refused(format!(
                    "{} exists again; restore with overwrite to replace it",
                    target.display()
                )));
            }
            Ok(_) => std::fs::remove_file(&target)
                .map_err(RespondError::io(format!("replacing {}", target.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(RespondError::io(target.display().to_string())(e)),
        }
        move_file(&bin, &target)?;
        restore_attributes(&target, &record)?;
        let json = self.json(id);
        std::fs::remove_file(&json)
            .map_err(RespondError::io(format!("removing {}", json.display())))?;
        tracing::info!(path = %target.display(), quarantine_id = %id, "file restored");
        Ok(record)
    }

    /// Hashes `path`, then removes it.
    pub fn delete(&self, path: &Path) -> Result<DeletedFile, RespondError> {
        self.check_target(path)?;
        let (sha256, size) = hash_file(path)?;
        std::fs::remove_file(path)
            .map_err(RespondError::io(format!("deleting {}", path.display())))?;
        tracing::info!(path = %path.display(), %sha256, "file deleted");
        Ok(DeletedFile {
            path: path.to_string_lossy().into_owned(),
            sha256,
            size,
        })
    }
}

fn check_id(id: &str) -> Result<(), RespondError> {
    if id.is_empty()
        || id.len() > 128
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(refused(format!("bad quarantine id {id:?}")));
    }
    Ok(())
}

/// The real path of `path` (its directory resolved, the last component kept as is, so a
/// symlink itself is named, not its target); `path` itself when it cannot be resolved.
fn canonical(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path)
        && !std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
    {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => std::fs::canonicalize(parent)
            .map(|p| p.join(name))
            .unwrap_or_else(|_| path.to_owned()),
        _ => path.to_owned(),
    }
}

/// Opens a file for reading without following a symlink at its last component.
fn open_nofollow(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // The bit value of O_NOFOLLOW, through rustix (the workspace forbids `unsafe`/libc).
        options.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    options.open(path)
}

/// sha256 (lowercase hex) and size of a file.
pub fn hash_file(path: &Path) -> Result<(String, u64), RespondError> {
    let mut file = open_nofollow(path).map_err(RespondError::io(path.display().to_string()))?;
    hash_reader(&mut file).map_err(RespondError::io(format!("reading {}", path.display())))
}

fn hash_reader(reader: &mut impl Read) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex(&hasher.finalize()), size))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Renames `from` to `to`; across filesystems copies (fsynced) and removes `from`.
fn move_file(from: &Path, to: &Path) -> Result<(), RespondError> {
    match std::fs::rename(from, to) {
        Ok(()) => {
            sync_dir(to);
            return Ok(());
        }
        Err(e) if is_cross_device(&e) => {}
        Err(e) => {
            return Err(RespondError::io(format!(
                "moving {} to {}",
                from.display(),
                to.display()
            ))(e));
        }
    }
    let what = format!("copying {} to {}", from.display(), to.display());
    let tmp = to.with_extension("part");
    let copied = (|| {
        let mut src = open_nofollow(from)?;
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut dst = options.open(&tmp)?;
        std::io::copy(&mut src, &mut dst)?;
        dst.flush()?;
        dst.sync_all()?;
        std::fs::rename(&tmp, to)
    })();
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&tmp);
        return Err(RespondError::io(what)(e));
    }
    sync_dir(to);
    std::fs::remove_file(from).map_err(|e| {
        let _ = std::fs::remove_file(to);
        RespondError::io(format!("removing {} after copying it", from.display()))(e)
    })
}

fn is_cross_device(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::CrossesDevices || e.raw_os_error() == Some(18)
}

fn sync_dir(path: &Path) {
    #[cfg(unix)]
    if let Some(parent) = path.parent()
        && let Ok(d) = File::open(parent)
    {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn set_private(path: &Path) -> Result<(), RespondError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
            RespondError::io(format!("setting 0600 on {}", path.display())),
        )?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Writes JSON to `path` (0600), through a synced temporary file.
fn write_private(path: &Path, value: &impl Serialize) -> Result<(), RespondError> {
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| refused(format!("encoding {}: {e}", path.display())))?;
    let tmp = path.with_extension("json.tmp");
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(&bytes)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(RespondError::io(format!("writing {}", path.display())))?;
    sync_dir(path);
    Ok(())
}

#[cfg(unix)]
fn owner_of(meta: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    Some(format!("{}:{}", meta.uid(), meta.gid()))
}

#[cfg(not(unix))]
fn owner_of(_meta: &std::fs::Metadata) -> Option<String> {
    None
}

#[cfg(unix)]
fn mode_of(meta: &std::fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    Some(meta.mode() & 0o7777)
}

#[cfg(not(unix))]
fn mode_of(_meta: &std::fs::Metadata) -> Option<u32> {
    None
}

/// `uid:gid` as the record writes it.
pub fn parse_owner(owner: &str) -> Option<(u32, u32)> {
    let (u, g) = owner.split_once(':')?;
    Some((u.parse().ok()?, g.parse().ok()?))
}

fn restore_attributes(path: &Path, record: &QuarantineRecord) -> Result<(), RespondError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if rustix::process::geteuid().is_root()
            && let Some((uid, gid)) = record.owner.as_deref().and_then(parse_owner)
        {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(RespondError::io(
                format!("restoring the owner of {}", path.display()),
            ))?;
        }
        if let Some(mode) = record.mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))
                .map_err(RespondError::io(format!(
                    "restoring the mode of {}",
                    path.display()
                )))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, record);
    Ok(())
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_parse_and_ids_are_checked() {
        assert_eq!(parse_owner("1000:100"), Some((1000, 100)));
        assert_eq!(parse_owner("S-1-5-18"), None);
        assert!(check_id("abc_1-2").is_ok());
        assert!(check_id("../etc").is_err());
        assert!(check_id("").is_err());
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
    }
}
