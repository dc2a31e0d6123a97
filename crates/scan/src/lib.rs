//! Dozor file scanning (issue 6).
//!
//! - [`clamd`]: a synchronous client for the ClamAV daemon (`zPING`, `zVERSION`, `zINSTREAM`)
//!   over a unix socket or TCP, with connect/read/write timeouts and a size limit. Files are
//!   streamed in chunks, never loaded whole.
//! - [`hashes`]: local known-bad and known-good lists of SHA-256 / SHA-1 / MD5 hashes and the
//!   classification of files or buffers against them (each digest computed once, streaming,
//!   with a size limit).
//! - [`yara`] (feature `yara`): YARA rules through yara-x.
//! - [`engine`]: one file through every configured engine; [`report`]: findings, their
//!   severity, the events they become and the alerts those raise.
//!
//! Everything is blocking `std` I/O so the agent (plain threads, no async runtime) can use it.

pub mod clamd;
pub mod engine;
pub mod hashes;
pub mod report;
#[cfg(feature = "test-support")]
pub mod testing;
#[cfg(feature = "yara")]
pub mod yara;

pub use clamd::{ClamdAddress, ClamdClient, ClamdError, ClamdVersion, ScanReply, Verdict};
pub use engine::{FileScanner, ScanOptions};
pub use hashes::{
    DigestSet, Digests, HashAlgo, HashError, HashList, HashLists, HashMatch, HashVerdict, LineError,
};
pub use report::{
    EngineFailure, EventContext, FileReport, Finding, ScanAlert, Severity, ThreatVerdict,
    alert_of_event, finding_events,
};

/// Lowercase hex of `bytes`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Opens a regular file for reading and returns it with its size. Anything else (FIFO, device,
/// directory, socket) is refused so that a scan cannot block on it; on unix the file is opened
/// non-blocking first (no effect on regular files) so the check has no race with a FIFO
/// swapped in.
pub(crate) fn open_regular_file(path: &std::path::Path) -> std::io::Result<(std::fs::File, u64)> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let nonblock = i32::try_from(rustix::fs::OFlags::NONBLOCK.bits()).unwrap_or(0);
        options.custom_flags(nonblock);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok((file, meta.len()))
}

/// The text used in error messages for an optional input path.
pub(crate) fn input_name(path: &Option<std::path::PathBuf>) -> String {
    match path {
        Some(p) => p.display().to_string(),
        None => "the input stream".to_owned(),
    }
}
