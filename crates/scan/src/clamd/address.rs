//! Where clamd listens: `unix:/path/to/clamd.ctl` or `tcp:host:port`.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ClamdError;

/// The address of a clamd daemon.
///
/// Parsed from (and displayed as) `unix:/run/clamav/clamd.ctl` or `tcp:127.0.0.1:3310`
/// (`tcp:[::1]:3310`, or a host name, which is resolved once while parsing; the first address
/// wins). Serialized as that same string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClamdAddress {
    /// A unix domain socket (clamd's `LocalSocket`).
    Unix(PathBuf),
    /// A TCP endpoint (clamd's `TCPSocket` / `TCPAddr`).
    Tcp(SocketAddr),
}

impl fmt::Display for ClamdAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClamdAddress::Unix(path) => write!(f, "unix:{}", path.display()),
            ClamdAddress::Tcp(addr) => write!(f, "tcp:{addr}"),
        }
    }
}

fn invalid(input: &str, reason: impl Into<String>) -> ClamdError {
    ClamdError::InvalidAddress {
        input: input.to_owned(),
        reason: reason.into(),
    }
}

impl FromStr for ClamdAddress {
    type Err = ClamdError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let trimmed = input.trim();
        if let Some(path) = trimmed.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(invalid(input, "the socket path is empty"));
            }
            return Ok(ClamdAddress::Unix(PathBuf::from(path)));
        }
        if let Some(hostport) = trimmed.strip_prefix("tcp:") {
            if let Ok(addr) = hostport.parse::<SocketAddr>() {
                return Ok(ClamdAddress::Tcp(addr));
            }
            let Some((host, port)) = hostport.rsplit_once(':') else {
                return Err(invalid(input, "missing :port"));
            };
            if host.is_empty() {
                return Err(invalid(input, "the host is empty"));
            }
            let port: u16 = port
                .parse()
                .map_err(|_| invalid(input, format!("invalid port {port:?}")))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let mut addrs = (host, port)
                .to_socket_addrs()
                .map_err(|e| invalid(input, format!("cannot resolve {host:?}: {e}")))?;
            return addrs
                .next()
                .map(ClamdAddress::Tcp)
                .ok_or_else(|| invalid(input, format!("{host:?} resolves to no address")));
        }
        Err(invalid(input, "unknown scheme"))
    }
}

impl Serialize for ClamdAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ClamdAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_unix_and_tcp() {
        assert_eq!(
            "unix:/run/clamav/clamd.ctl"
                .parse::<ClamdAddress>()
                .unwrap(),
            ClamdAddress::Unix(PathBuf::from("/run/clamav/clamd.ctl"))
        );
        assert_eq!(
            " tcp:127.0.0.1:3310 ".parse::<ClamdAddress>().unwrap(),
            ClamdAddress::Tcp("127.0.0.1:3310".parse().unwrap())
        );
        assert_eq!(
            "tcp:[::1]:3310".parse::<ClamdAddress>().unwrap(),
            ClamdAddress::Tcp("[::1]:3310".parse().unwrap())
        );
        let ClamdAddress::Tcp(addr) = "tcp:localhost:3310".parse::<ClamdAddress>().unwrap() else {
            panic!("expected tcp");
        };
        assert!(addr.ip().is_loopback());
        assert_eq!(addr.port(), 3310);
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "unix:/tmp/clamd.sock",
            "tcp:127.0.0.1:3310",
            "tcp:[::1]:3310",
        ] {
            let addr: ClamdAddress = text.parse().unwrap();
            assert_eq!(addr.to_string(), text);
        }
    }

    #[test]
    fn rejects_bad_addresses() {
        for (text, reason) in [
            ("unix:", "empty"),
            ("tcp:127.0.0.1", "port"),
            ("tcp:127.0.0.1:99999", "invalid port"),
            ("tcp::3310", "host is empty"),
            ("/run/clamav/clamd.ctl", "unknown scheme"),
            ("http://x:1", "unknown scheme"),
        ] {
            let err = text.parse::<ClamdAddress>().unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(err, ClamdError::InvalidAddress { .. }),
                "{text}: {msg}"
            );
            assert!(msg.contains(reason), "{text}: {msg}");
            assert!(msg.contains("unix:/path"), "{text}: {msg}");
        }
    }
}
