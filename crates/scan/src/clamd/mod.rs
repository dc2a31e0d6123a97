//! A synchronous clamd client.
//!
//! One connection per command, `z`-prefixed NUL-terminated commands (`zPING`, `zVERSION`,
//! `zINSTREAM`), blocking `std` sockets with connect, read and write timeouts. `INSTREAM` sends
//! the data in chunks (`u32` big-endian length + bytes, then a zero length) read from any
//! [`Read`], so a file is never loaded whole.
//!
//! ```no_run
//! use dozor_scan::clamd::{ClamdAddress, ClamdClient};
//! let client = ClamdClient::new("unix:/run/clamav/clamd.ctl".parse::<ClamdAddress>()?);
//! client.ping()?;
//! let verdict = client.scan_file("/tmp/upload.bin".as_ref(), 25 << 20)?;
//! if verdict.infected {
//!     println!("{} found", verdict.signature.unwrap_or_default());
//! }
//! # Ok::<(), dozor_scan::ClamdError>(())
//! ```

mod address;
mod conn;
mod reply;

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use address::ClamdAddress;
pub use reply::{
    ClamdVersion, ReplyError, ScanReply, UNOFFICIAL_SUFFIX, is_unofficial_name, parse_ping_reply,
    parse_scan_reply,
};

use conn::Conn;

/// The engine name in [`Verdict::engine`].
pub const ENGINE: &str = "clamav";
/// Default time to establish a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time to wait for a reply (a scan of a large file can take a while).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(120);
/// Default time a single write may block.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default `INSTREAM` chunk size.
pub const DEFAULT_CHUNK_SIZE: usize = 64 * 1024;
/// Largest accepted `INSTREAM` chunk size (the length prefix is a `u32`; clamd also bounds
/// each chunk by `StreamMaxLength`).
pub const MAX_CHUNK_SIZE: usize = 8 << 20;
/// Replies longer than this are a protocol error (real replies are a line).
pub const MAX_REPLY_BYTES: usize = 64 * 1024;

/// What went wrong, with the clamd address and the command wherever a daemon was involved.
#[derive(Debug, thiserror::Error)]
pub enum ClamdError {
    /// The address string is not `unix:/path` or `tcp:host:port`.
    #[error(
        "invalid clamd address {input:?}: {reason} (expected unix:/path/to/clamd.ctl or tcp:host:port)"
    )]
    InvalidAddress {
        /// The text that was parsed.
        input: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The connection could not be established (clamd not running, socket missing, refused).
    #[error("clamd at {address}: {command}: cannot connect: {source}")]
    Connect {
        /// Where.
        address: ClamdAddress,
        /// The command that needed the connection (`PING`, `VERSION`, `INSTREAM`).
        command: &'static str,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// A connect, read or write did not complete in time.
    #[error("clamd at {address}: {command}: timed out after {timeout:?} while {during}")]
    Timeout {
        /// Where.
        address: ClamdAddress,
        /// The command.
        command: &'static str,
        /// `connecting`, `sending the command`, `sending data`, `reading the reply`.
        during: &'static str,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// A socket error after the connection was established.
    #[error("clamd at {address}: {command}: I/O error while {during}: {source}")]
    Io {
        /// Where.
        address: ClamdAddress,
        /// The command.
        command: &'static str,
        /// What the client was doing.
        during: &'static str,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// The reply could not be understood (or there was none).
    #[error("clamd at {address}: {command}: {detail}")]
    Protocol {
        /// Where.
        address: ClamdAddress,
        /// The command.
        command: &'static str,
        /// E.g. `unexpected reply "UNKNOWN COMMAND"`.
        detail: String,
    },
    /// clamd answered with an `... ERROR` line.
    #[error("clamd at {address}: {command}: server error: {message:?}")]
    Server {
        /// Where.
        address: ClamdAddress,
        /// The command.
        command: &'static str,
        /// The full reply line, e.g. `stream: Can't allocate memory ERROR`.
        message: String,
    },
    /// clamd refused the stream because it is larger than its `StreamMaxLength`
    /// (`INSTREAM size limit exceeded. ERROR`).
    #[error(
        "clamd at {address}: INSTREAM: the data is larger than clamd's StreamMaxLength: {message:?}"
    )]
    SizeLimit {
        /// Where.
        address: ClamdAddress,
        /// The full reply line.
        message: String,
    },
    /// The input is larger than the client-side limit passed to the scan call; nothing beyond
    /// the limit was sent.
    #[error("{} is larger than the scan limit of {max_bytes} bytes", crate::input_name(.path))]
    InputTooLarge {
        /// The file, when scanning a file.
        path: Option<PathBuf>,
        /// The limit.
        max_bytes: u64,
    },
    /// The input could not be opened or read (not clamd's fault).
    #[error("cannot read {}: {source}", crate::input_name(.path))]
    Input {
        /// The file, when scanning a file.
        path: Option<PathBuf>,
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl ClamdError {
    /// Whether clamd could not be reached or did not answer in time: the agent reports a
    /// degraded status and retries later.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            ClamdError::Connect { .. } | ClamdError::Timeout { .. } | ClamdError::Io { .. }
        )
    }
}

/// The result of a clamd scan, with the engine and database versions for traceability.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Verdict {
    /// Always [`ENGINE`] (`clamav`).
    pub engine: String,
    /// The signature name when infected (full name, including `.UNOFFICIAL`).
    pub signature: Option<String>,
    /// Whether clamd reported a detection.
    pub infected: bool,
    /// The clamd engine version, e.g. `1.0.7`.
    pub engine_version: String,
    /// The signature database version; `None` without an official daily database.
    pub db_version: Option<u32>,
}

impl Verdict {
    /// Combines a scan reply with the daemon's version (see [`ClamdClient::instream`] for
    /// callers that cache the version).
    pub fn new(reply: ScanReply, version: &ClamdVersion) -> Self {
        let infected = reply.is_infected();
        let signature = match reply {
            ScanReply::Clean => None,
            ScanReply::Found { signature } => Some(signature),
        };
        Verdict {
            engine: ENGINE.to_owned(),
            signature,
            infected,
            engine_version: version.engine.clone(),
            db_version: version.db_version,
        }
    }

    /// Whether the signature comes from a non-official database (`.UNOFFICIAL`).
    pub fn is_unofficial(&self) -> bool {
        self.signature.as_deref().is_some_and(is_unofficial_name)
    }
}

/// A clamd client. Cheap to clone; every command opens its own connection, so one client can be
/// shared by several threads.
#[derive(Debug, Clone)]
pub struct ClamdClient {
    address: ClamdAddress,
    connect_timeout: Duration,
    read_timeout: Duration,
    write_timeout: Duration,
    chunk_size: usize,
}

/// A timeout of zero means "no timeout" to the socket API; never allow it.
fn at_least_1ms(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl ClamdClient {
    /// A client with the default timeouts and chunk size.
    pub fn new(address: ClamdAddress) -> Self {
        ClamdClient {
            address,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }

    /// Sets the connect timeout (at least 1 ms).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = at_least_1ms(timeout);
        self
    }

    /// Sets the read timeout: how long to wait for any reply byte (at least 1 ms).
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = at_least_1ms(timeout);
        self
    }

    /// Sets the write timeout: how long one write may block (at least 1 ms).
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = at_least_1ms(timeout);
        self
    }

    /// Sets the `INSTREAM` chunk size (clamped to `1..=MAX_CHUNK_SIZE`).
    pub fn with_chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes.clamp(1, MAX_CHUNK_SIZE);
        self
    }

    /// Where this client connects.
    pub fn address(&self) -> &ClamdAddress {
        &self.address
    }

    /// `zPING` → `PONG`.
    pub fn ping(&self) -> Result<(), ClamdError> {
        const CMD: &str = "PING";
        let reply = self.simple_command(CMD, b"zPING\0")?;
        parse_ping_reply(&reply).map_err(|e| self.reply_error(CMD, e))
    }

    /// `zVERSION` → engine version, database version and date.
    pub fn version(&self) -> Result<ClamdVersion, ClamdError> {
        const CMD: &str = "VERSION";
        let reply = self.simple_command(CMD, b"zVERSION\0")?;
        ClamdVersion::parse(&reply).map_err(|e| self.reply_error(CMD, e))
    }

    /// Streams `reader` to clamd with `zINSTREAM` and parses the reply.
    ///
    /// At most `max_bytes` are sent: when the reader has more, the scan stops with
    /// [`ClamdError::InputTooLarge`]. When clamd's own `StreamMaxLength` is smaller, clamd
    /// aborts the stream and this returns [`ClamdError::SizeLimit`].
    pub fn instream<R: Read>(&self, reader: R, max_bytes: u64) -> Result<ScanReply, ClamdError> {
        self.instream_inner(reader, max_bytes, None)
    }

    /// [`instream`](Self::instream) plus a `VERSION` query, as a [`Verdict`].
    pub fn scan_reader<R: Read>(&self, reader: R, max_bytes: u64) -> Result<Verdict, ClamdError> {
        let version = self.version()?;
        let reply = self.instream_inner(reader, max_bytes, None)?;
        Ok(Verdict::new(reply, &version))
    }

    /// Scans an in-memory buffer.
    pub fn scan_bytes(&self, data: &[u8]) -> Result<Verdict, ClamdError> {
        self.scan_reader(data, u64::try_from(data.len()).unwrap_or(u64::MAX))
    }

    /// Scans a regular file by streaming it (never loaded whole). Files larger than
    /// `max_bytes` are refused with [`ClamdError::InputTooLarge`] before anything is sent;
    /// anything that is not a regular file (FIFO, device, directory) is refused with
    /// [`ClamdError::Input`] so a scan cannot block on it.
    pub fn scan_file(&self, path: &Path, max_bytes: u64) -> Result<Verdict, ClamdError> {
        let input_err = |source: io::Error| ClamdError::Input {
            path: Some(path.to_owned()),
            source,
        };
        let (file, size) = crate::open_regular_file(path).map_err(input_err)?;
        if size > max_bytes {
            return Err(ClamdError::InputTooLarge {
                path: Some(path.to_owned()),
                max_bytes,
            });
        }
        let version = self.version()?;
        let reply = self.instream_inner(file, max_bytes, Some(path))?;
        let verdict = Verdict::new(reply, &version);
        tracing::debug!(
            address = %self.address,
            path = %path.display(),
            infected = verdict.infected,
            signature = verdict.signature.as_deref().unwrap_or(""),
            "clamd scanned file"
        );
        Ok(verdict)
    }

    fn reply_error(&self, command: &'static str, err: ReplyError) -> ClamdError {
        let address = self.address.clone();
        match err {
            ReplyError::Server(message) => ClamdError::Server {
                address,
                command,
                message,
            },
            ReplyError::SizeLimit(message) => ClamdError::SizeLimit { address, message },
            ReplyError::Unexpected(reply) => ClamdError::Protocol {
                address,
                command,
                detail: format!("unexpected reply {reply:?}"),
            },
        }
    }

    fn io_error(
        &self,
        command: &'static str,
        during: &'static str,
        timeout: Duration,
        source: io::Error,
    ) -> ClamdError {
        if is_timeout(&source) {
            ClamdError::Timeout {
                address: self.address.clone(),
                command,
                during,
                timeout,
            }
        } else {
            ClamdError::Io {
                address: self.address.clone(),
                command,
                during,
                source,
            }
        }
    }

    fn connect(&self, command: &'static str) -> Result<Conn, ClamdError> {
        let conn = Conn::connect(&self.address, self.connect_timeout).map_err(|source| {
            if is_timeout(&source) {
                ClamdError::Timeout {
                    address: self.address.clone(),
                    command,
                    during: "connecting",
                    timeout: self.connect_timeout,
                }
            } else {
                ClamdError::Connect {
                    address: self.address.clone(),
                    command,
                    source,
                }
            }
        })?;
        conn.set_timeouts(self.read_timeout, self.write_timeout)
            .map_err(|source| ClamdError::Connect {
                address: self.address.clone(),
                command,
                source,
            })?;
        Ok(conn)
    }

    fn send_command(
        &self,
        conn: &mut Conn,
        command: &'static str,
        bytes: &[u8],
    ) -> Result<(), ClamdError> {
        conn.write_all(bytes)
            .and_then(|()| conn.flush())
            .map_err(|e| self.io_error(command, "sending the command", self.write_timeout, e))
    }

    fn simple_command(&self, command: &'static str, bytes: &[u8]) -> Result<String, ClamdError> {
        let mut conn = self.connect(command)?;
        self.send_command(&mut conn, command, bytes)?;
        self.read_reply(&mut conn, command)
    }

    /// Reads one NUL-terminated reply (or everything up to EOF).
    fn read_reply(&self, conn: &mut Conn, command: &'static str) -> Result<String, ClamdError> {
        let mut reply: Vec<u8> = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match conn.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let chunk = buf.get(..n).unwrap_or(&buf);
                    if let Some(pos) = chunk.iter().position(|&b| b == 0) {
                        reply.extend_from_slice(chunk.get(..pos).unwrap_or_default());
                        break;
                    }
                    reply.extend_from_slice(chunk);
                    if reply.len() > MAX_REPLY_BYTES {
                        return Err(ClamdError::Protocol {
                            address: self.address.clone(),
                            command,
                            detail: format!("reply longer than {MAX_REPLY_BYTES} bytes"),
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The daemon may reset the connection right after a complete reply.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset && !reply.is_empty() => {
                    break;
                }
                Err(e) => {
                    return Err(self.io_error(command, "reading the reply", self.read_timeout, e));
                }
            }
        }
        if reply.is_empty() {
            return Err(ClamdError::Protocol {
                address: self.address.clone(),
                command,
                detail: "connection closed without a reply".to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&reply).into_owned())
    }

    fn instream_inner<R: Read>(
        &self,
        mut reader: R,
        max_bytes: u64,
        path: Option<&Path>,
    ) -> Result<ScanReply, ClamdError> {
        const CMD: &str = "INSTREAM";
        let mut conn = self.connect(CMD)?;
        self.send_command(&mut conn, CMD, b"zINSTREAM\0")?;

        // 4 bytes of length prefix followed by the chunk, sent with one write.
        let mut frame = vec![0u8; 4 + self.chunk_size];
        let mut total: u64 = 0;
        loop {
            let (head, body) = frame.split_at_mut(4);
            let n = fill(&mut reader, body).map_err(|source| ClamdError::Input {
                path: path.map(Path::to_owned),
                source,
            })?;
            if n == 0 {
                break;
            }
            total = total.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
            if total > max_bytes {
                // Dropping the connection aborts the stream; clamd logs a client error.
                return Err(ClamdError::InputTooLarge {
                    path: path.map(Path::to_owned),
                    max_bytes,
                });
            }
            head.copy_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
            let data = frame.get(..4 + n).unwrap_or(&frame);
            if let Err(e) = conn.write_all(data) {
                return Err(self.after_write_error(&mut conn, CMD, e));
            }
        }
        if let Err(e) = conn.write_all(&[0, 0, 0, 0]).and_then(|()| conn.flush()) {
            return Err(self.after_write_error(&mut conn, CMD, e));
        }
        let reply = self.read_reply(&mut conn, CMD)?;
        let parsed = parse_scan_reply(&reply).map_err(|e| self.reply_error(CMD, e))?;
        tracing::trace!(address = %self.address, bytes = total, reply = %reply, "clamd INSTREAM");
        Ok(parsed)
    }

    /// clamd closes the connection as soon as a stream exceeds `StreamMaxLength` (or on other
    /// errors), which makes the next write fail; its reply is usually still readable and says
    /// why.
    fn after_write_error(
        &self,
        conn: &mut Conn,
        command: &'static str,
        write_err: io::Error,
    ) -> ClamdError {
        let write_failure = self.io_error(command, "sending data", self.write_timeout, write_err);
        if matches!(write_failure, ClamdError::Timeout { .. }) {
            return write_failure;
        }
        match self.read_reply(conn, command) {
            Ok(reply) => match parse_scan_reply(&reply) {
                Err(e) => self.reply_error(command, e),
                Ok(_) => write_failure,
            },
            Err(_) => write_failure,
        }
    }
}

/// Reads until `buf` is full or EOF; returns the number of bytes read.
fn fill<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let Some(rest) = buf.get_mut(filled..) else {
            break;
        };
        match reader.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n.min(rest.len()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests;
