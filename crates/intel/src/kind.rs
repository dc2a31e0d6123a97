//! IOC kinds and the mapping from MISP attribute types.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::IntelError;

/// What an indicator is. Dozor's own vocabulary; MISP types map onto it (see [`misp_parts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IocKind {
    /// One IPv4 or IPv6 address.
    Ip,
    /// A network (prefix shorter than the address).
    Cidr,
    /// A domain: matches itself and every name under it.
    Domain,
    /// A host name: matches exactly.
    Hostname,
    Url,
    Md5,
    Sha1,
    Sha256,
    Sha512,
    /// PE import hash (an MD5 of the import table).
    Imphash,
    Filename,
    Email,
    RegistryKey,
    UserAgent,
    /// JA3 TLS client fingerprint (an MD5).
    Ja3,
}

impl IocKind {
    pub const ALL: [IocKind; 15] = [
        IocKind::Ip,
        IocKind::Cidr,
        IocKind::Domain,
        IocKind::Hostname,
        IocKind::Url,
        IocKind::Md5,
        IocKind::Sha1,
        IocKind::Sha256,
        IocKind::Sha512,
        IocKind::Imphash,
        IocKind::Filename,
        IocKind::Email,
        IocKind::RegistryKey,
        IocKind::UserAgent,
        IocKind::Ja3,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IocKind::Ip => "ip",
            IocKind::Cidr => "cidr",
            IocKind::Domain => "domain",
            IocKind::Hostname => "hostname",
            IocKind::Url => "url",
            IocKind::Md5 => "md5",
            IocKind::Sha1 => "sha1",
            IocKind::Sha256 => "sha256",
            IocKind::Sha512 => "sha512",
            IocKind::Imphash => "imphash",
            IocKind::Filename => "filename",
            IocKind::Email => "email",
            IocKind::RegistryKey => "registry_key",
            IocKind::UserAgent => "user_agent",
            IocKind::Ja3 => "ja3",
        }
    }

    /// The kind named `name` (as [`IocKind::as_str`] spells it).
    pub fn from_name(name: &str) -> Option<IocKind> {
        IocKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Bit of this kind in a [`KindSet`].
    pub(crate) fn bit(self) -> u32 {
        1 << (self as u32)
    }

    /// Length in hex digits of a hash kind.
    pub fn hex_len(self) -> Option<usize> {
        match self {
            IocKind::Md5 | IocKind::Imphash | IocKind::Ja3 => Some(32),
            IocKind::Sha1 => Some(40),
            IocKind::Sha256 => Some(64),
            IocKind::Sha512 => Some(128),
            _ => None,
        }
    }
}

impl fmt::Display for IocKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A small set of kinds (one bit each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindSet(u32);

impl KindSet {
    pub fn insert(&mut self, kind: IocKind) {
        self.0 |= kind.bit();
    }
    pub fn contains(self, kind: IocKind) -> bool {
        self.0 & kind.bit() != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

use IocKind as K;

/// MISP attribute type → the kinds of its parts, in the order MISP writes them (`a|b`).
/// A part Dozor does not keep (a port, a registry value's data) is `None`.
const MISP_TYPES: &[(&str, &[Option<IocKind>])] = &[
    ("ip-src", &[Some(K::Ip)]),
    ("ip-dst", &[Some(K::Ip)]),
    ("ip-src|port", &[Some(K::Ip), None]),
    ("ip-dst|port", &[Some(K::Ip), None]),
    ("domain", &[Some(K::Domain)]),
    ("domain|ip", &[Some(K::Domain), Some(K::Ip)]),
    ("hostname", &[Some(K::Hostname)]),
    ("hostname|port", &[Some(K::Hostname), None]),
    ("url", &[Some(K::Url)]),
    ("md5", &[Some(K::Md5)]),
    ("sha1", &[Some(K::Sha1)]),
    ("sha256", &[Some(K::Sha256)]),
    ("sha512", &[Some(K::Sha512)]),
    ("imphash", &[Some(K::Imphash)]),
    ("filename", &[Some(K::Filename)]),
    ("filename|md5", &[Some(K::Filename), Some(K::Md5)]),
    ("filename|sha1", &[Some(K::Filename), Some(K::Sha1)]),
    ("filename|sha256", &[Some(K::Filename), Some(K::Sha256)]),
    ("filename|sha512", &[Some(K::Filename), Some(K::Sha512)]),
    ("filename|imphash", &[Some(K::Filename), Some(K::Imphash)]),
    // A malware sample's value is `filename|md5` (its data travels separately).
    ("malware-sample", &[Some(K::Filename), Some(K::Md5)]),
    ("email", &[Some(K::Email)]),
    ("email-src", &[Some(K::Email)]),
    ("email-dst", &[Some(K::Email)]),
    ("email-reply-to", &[Some(K::Email)]),
    ("whois-registrant-email", &[Some(K::Email)]),
    ("dns-soa-email", &[Some(K::Email)]),
    ("regkey", &[Some(K::RegistryKey)]),
    ("regkey|value", &[Some(K::RegistryKey), None]),
    ("user-agent", &[Some(K::UserAgent)]),
    ("ja3-fingerprint-md5", &[Some(K::Ja3)]),
];

/// The kinds of a MISP attribute type's parts (`None` for a part that is not kept), or
/// [`IntelError::UnsupportedMispType`] naming the type.
pub fn misp_parts(misp_type: &str) -> Result<&'static [Option<IocKind>], IntelError> {
    MISP_TYPES
        .iter()
        .find(|(name, _)| *name == misp_type)
        .map(|(_, parts)| *parts)
        .ok_or_else(|| IntelError::UnsupportedMispType {
            misp_type: misp_type.to_owned(),
        })
}

/// Every MISP type Dozor imports.
pub fn supported_misp_types() -> impl Iterator<Item = &'static str> {
    MISP_TYPES.iter().map(|(name, _)| *name)
}

/// Splits a MISP value into its parts with their kinds. Composite types (`domain|ip`) split
/// at the first `|`, as MISP does; parts Dozor does not keep (ports) are dropped here.
pub fn split_misp_value<'v>(
    misp_type: &str,
    value: &'v str,
) -> Result<Vec<(IocKind, &'v str)>, IntelError> {
    let parts = misp_parts(misp_type)?;
    let pieces: Vec<&str> = if parts.len() == 1 {
        vec![value]
    } else {
        match value.split_once('|') {
            Some((a, b)) => vec![a, b],
            None => {
                return Err(IntelError::InvalidValue {
                    kind: misp_type.to_owned(),
                    value: value.to_owned(),
                    reason: "a composite MISP value needs two parts separated by `|`".into(),
                });
            }
        }
    };
    Ok(parts
        .iter()
        .zip(pieces)
        .filter_map(|(kind, piece)| kind.map(|k| (k, piece)))
        .collect())
}
