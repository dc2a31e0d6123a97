//! Parsers for clamd's replies (pure functions, no I/O).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The suffix clamd appends to the names of signatures that do not come from the official
/// ClamAV databases (local `.hdb`/`.hsb`/`.ndb` files, third-party feeds).
pub const UNOFFICIAL_SUFFIX: &str = ".UNOFFICIAL";

/// Whether a signature name comes from a non-official database (ends with `.UNOFFICIAL`).
pub fn is_unofficial_name(name: &str) -> bool {
    name.ends_with(UNOFFICIAL_SUFFIX)
}

/// The outcome of one successful `INSTREAM` scan.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ScanReply {
    /// `stream: OK`
    Clean,
    /// `stream: <signature> FOUND`; `signature` is the full name as clamd reported it,
    /// including a `.UNOFFICIAL` suffix (the `(hash:size)` part that clamd's
    /// `ExtendedDetectionInfo` adds is removed).
    Found {
        /// The signature name, e.g. `Win.Test.EICAR_HDB-1` or `Local.Rule.UNOFFICIAL`.
        signature: String,
    },
}

impl ScanReply {
    /// Whether clamd reported a detection.
    pub fn is_infected(&self) -> bool {
        matches!(self, ScanReply::Found { .. })
    }

    /// The detected signature name, if any.
    pub fn signature(&self) -> Option<&str> {
        match self {
            ScanReply::Clean => None,
            ScanReply::Found { signature } => Some(signature),
        }
    }

    /// Whether the detection comes from a non-official database (`.UNOFFICIAL`).
    pub fn is_unofficial(&self) -> bool {
        self.signature().is_some_and(is_unofficial_name)
    }
}

/// A clamd reply that is not a successful result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// A line ending in `ERROR` (the full reply text is kept).
    #[error("clamd replied {0:?}")]
    Server(String),
    /// `INSTREAM size limit exceeded. ERROR`: the stream is larger than clamd's
    /// `StreamMaxLength`.
    #[error("clamd replied {0:?} (the stream is larger than clamd's StreamMaxLength)")]
    SizeLimit(String),
    /// Anything this client does not understand.
    #[error("unexpected reply {0:?}")]
    Unexpected(String),
}

/// Strips the terminator (NUL for `z` commands, newline for `n` commands) and surrounding
/// whitespace.
fn clean(reply: &str) -> &str {
    reply.trim_matches(|c: char| c == '\0' || c.is_whitespace())
}

/// Classifies an `... ERROR` line, or returns `None` when the reply is not an error.
fn error_reply(reply: &str) -> Option<ReplyError> {
    if reply != "ERROR" && !reply.ends_with(" ERROR") {
        return None;
    }
    let lower = reply.to_ascii_lowercase();
    if lower.contains("size limit exceeded") {
        Some(ReplyError::SizeLimit(reply.to_owned()))
    } else {
        Some(ReplyError::Server(reply.to_owned()))
    }
}

/// Parses the reply to `zPING`: `PONG`.
pub fn parse_ping_reply(reply: &str) -> Result<(), ReplyError> {
    let reply = clean(reply);
    if reply == "PONG" {
        return Ok(());
    }
    Err(error_reply(reply).unwrap_or_else(|| ReplyError::Unexpected(reply.to_owned())))
}

/// Removes the `(hash:size)` suffix of `ExtendedDetectionInfo yes`, e.g.
/// `Eicar-Signature(44d88612fea8a8f36de82e1278abb02f:68)` → `Eicar-Signature`.
fn strip_extended_info(name: &str) -> &str {
    let Some(inner_and_open) = name.strip_suffix(')') else {
        return name;
    };
    let Some((base, inner)) = inner_and_open.rsplit_once('(') else {
        return name;
    };
    let Some((hash, size)) = inner.split_once(':') else {
        return name;
    };
    let is_hash = !hash.is_empty() && hash.bytes().all(|b| b.is_ascii_hexdigit());
    let is_size = !size.is_empty() && size.bytes().all(|b| b.is_ascii_digit());
    if is_hash && is_size && !base.is_empty() {
        base
    } else {
        name
    }
}

/// Parses the reply to `zINSTREAM` (and to `SCAN`-like commands):
///
/// - `stream: OK` → [`ScanReply::Clean`]
/// - `stream: Eicar-Signature FOUND` → [`ScanReply::Found`]
/// - `INSTREAM size limit exceeded. ERROR` → [`ReplyError::SizeLimit`]
/// - any other `... ERROR` → [`ReplyError::Server`]
pub fn parse_scan_reply(reply: &str) -> Result<ScanReply, ReplyError> {
    let reply = clean(reply);
    if let Some(err) = error_reply(reply) {
        return Err(err);
    }
    let unexpected = || ReplyError::Unexpected(reply.to_owned());
    if let Some(body) = reply.strip_suffix(" FOUND") {
        // `<path>: <signature>`; signature names contain no ": ", paths might.
        let (_, signature) = body.rsplit_once(": ").ok_or_else(unexpected)?;
        let signature = strip_extended_info(signature.trim());
        if signature.is_empty() {
            return Err(unexpected());
        }
        return Ok(ScanReply::Found {
            signature: signature.to_owned(),
        });
    }
    if reply.ends_with(": OK") {
        return Ok(ScanReply::Clean);
    }
    Err(unexpected())
}

/// The reply to `zVERSION`: `ClamAV 1.0.7/27000/Thu Nov 20 09:24:36 2025`.
///
/// clamd prints only `ClamAV 1.4.6` when no official `daily` database is loaded (as with a
/// private signature directory); `db_version` and `db_date` are then `None`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClamdVersion {
    /// The engine version, e.g. `1.0.7`.
    pub engine: String,
    /// The signature database (daily) version, e.g. `27000`.
    pub db_version: Option<u32>,
    /// The signature database date as clamd prints it, e.g. `Thu Nov 20 09:24:36 2025`.
    pub db_date: Option<String>,
}

impl ClamdVersion {
    /// Parses a `VERSION` reply.
    pub fn parse(reply: &str) -> Result<Self, ReplyError> {
        let reply = clean(reply);
        if let Some(err) = error_reply(reply) {
            return Err(err);
        }
        let unexpected = || ReplyError::Unexpected(reply.to_owned());
        let rest = reply.strip_prefix("ClamAV ").ok_or_else(unexpected)?;
        let mut parts = rest.splitn(3, '/');
        let engine = parts.next().unwrap_or_default().trim();
        if engine.is_empty() || engine.contains(char::is_whitespace) {
            return Err(unexpected());
        }
        let db_version = match parts.next() {
            None => None,
            Some(db) => Some(db.trim().parse::<u32>().map_err(|_| unexpected())?),
        };
        let db_date = parts
            .next()
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_owned);
        Ok(ClamdVersion {
            engine: engine.to_owned(),
            db_version,
            db_date,
        })
    }
}

impl fmt::Display for ClamdVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClamAV {}", self.engine)?;
        if let Some(db) = self.db_version {
            write!(f, "/{db}")?;
            if let Some(date) = &self.db_date {
                write!(f, "/{date}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping() {
        assert_eq!(parse_ping_reply("PONG\0"), Ok(()));
        assert_eq!(parse_ping_reply("PONG\n"), Ok(()));
        assert_eq!(
            parse_ping_reply("UNKNOWN COMMAND\0"),
            Err(ReplyError::Unexpected("UNKNOWN COMMAND".into()))
        );
        assert_eq!(
            parse_ping_reply("Command invalid inside IDSESSION. ERROR"),
            Err(ReplyError::Server(
                "Command invalid inside IDSESSION. ERROR".into()
            ))
        );
        assert!(parse_ping_reply("").is_err());
    }

    #[test]
    fn scan_ok() {
        assert_eq!(parse_scan_reply("stream: OK\0"), Ok(ScanReply::Clean));
        assert_eq!(parse_scan_reply("stream: OK\n"), Ok(ScanReply::Clean));
        assert_eq!(parse_scan_reply("/tmp/a: b: OK"), Ok(ScanReply::Clean));
        assert!(!ScanReply::Clean.is_infected());
        assert_eq!(ScanReply::Clean.signature(), None);
        assert!(!ScanReply::Clean.is_unofficial());
    }

    #[test]
    fn scan_found() {
        let r = parse_scan_reply("stream: Eicar-Signature FOUND\0").unwrap();
        assert_eq!(
            r,
            ScanReply::Found {
                signature: "Eicar-Signature".into()
            }
        );
        assert!(r.is_infected());
        assert!(!r.is_unofficial());

        let r = parse_scan_reply("stream: Dozor.Test.Eicar.UNOFFICIAL FOUND").unwrap();
        assert_eq!(r.signature(), Some("Dozor.Test.Eicar.UNOFFICIAL"));
        assert!(r.is_unofficial());

        // A path containing ": " keeps the signature intact.
        let r = parse_scan_reply("/srv/a: b.exe: Win.Trojan.Agent-1 FOUND").unwrap();
        assert_eq!(r.signature(), Some("Win.Trojan.Agent-1"));
    }

    #[test]
    fn scan_found_extended_info_is_stripped() {
        let r = parse_scan_reply(
            "stream: Eicar-Signature.UNOFFICIAL(44d88612fea8a8f36de82e1278abb02f:68) FOUND",
        )
        .unwrap();
        assert_eq!(r.signature(), Some("Eicar-Signature.UNOFFICIAL"));
        assert!(r.is_unofficial());
        // Parentheses that are not hash:size stay.
        let r = parse_scan_reply("stream: Odd.Name(x) FOUND").unwrap();
        assert_eq!(r.signature(), Some("Odd.Name(x)"));
    }

    #[test]
    fn scan_errors() {
        assert_eq!(
            parse_scan_reply("INSTREAM size limit exceeded. ERROR\0"),
            Err(ReplyError::SizeLimit(
                "INSTREAM size limit exceeded. ERROR".into()
            ))
        );
        assert_eq!(
            parse_scan_reply("stream: Can't allocate memory ERROR"),
            Err(ReplyError::Server(
                "stream: Can't allocate memory ERROR".into()
            ))
        );
        assert_eq!(
            parse_scan_reply("ERROR"),
            Err(ReplyError::Server("ERROR".into()))
        );
        for bad in [
            "",
            "\0",
            "stream: FOUND",
            " FOUND",
            "stream OK",
            "PONG",
            "FOUND",
        ] {
            assert!(
                matches!(parse_scan_reply(bad), Err(ReplyError::Unexpected(_))),
                "{bad:?} -> {:?}",
                parse_scan_reply(bad)
            );
        }
    }

    #[test]
    fn version_full() {
        let v = ClamdVersion::parse("ClamAV 1.0.7/27000/Thu Nov 20 09:24:36 2025\0").unwrap();
        assert_eq!(v.engine, "1.0.7");
        assert_eq!(v.db_version, Some(27000));
        assert_eq!(v.db_date.as_deref(), Some("Thu Nov 20 09:24:36 2025"));
        assert_eq!(v.to_string(), "ClamAV 1.0.7/27000/Thu Nov 20 09:24:36 2025");
    }

    #[test]
    fn version_without_database() {
        let v = ClamdVersion::parse("ClamAV 1.4.6\n").unwrap();
        assert_eq!(v.engine, "1.4.6");
        assert_eq!(v.db_version, None);
        assert_eq!(v.db_date, None);
        assert_eq!(v.to_string(), "ClamAV 1.4.6");
    }

    #[test]
    fn version_errors() {
        for bad in [
            "",
            "PONG",
            "ClamAV ",
            "ClamAV 1.0.7/abc/Thu",
            "ClamAV 1.0 7/1",
            "clamav 1.0.7",
        ] {
            assert!(
                matches!(ClamdVersion::parse(bad), Err(ReplyError::Unexpected(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            ClamdVersion::parse("Something went wrong ERROR"),
            Err(ReplyError::Server(_))
        ));
    }
}
