//! The observables of an event: which fields hold values worth checking against indicators,
//! and what kind of value each holds.

use std::net::IpAddr;

use dozor_event::{EventFields, FieldValue};

use crate::IocKind;
use crate::normalize::url_parts;

/// One value to check: the field it came from, how to read it, the value (or its part).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observable<'e> {
    pub field: &'static str,
    /// `Domain` stands for any DNS name (checked against domain and hostname indicators).
    pub kind: IocKind,
    pub value: &'e str,
}

/// How a field's value becomes observables.
#[derive(Clone, Copy)]
enum Read {
    As(IocKind),
    /// A path: its base name is a file name.
    Basename,
    /// A URL, and its host as a domain or an address.
    Url,
    /// Sysmon's `SHA1=…,MD5=…,SHA256=…,IMPHASH=…`.
    SysmonHashes,
}

/// The fields read, by ECS dotted path or Windows/Sysmon name (with the static name reported).
fn field_rule(name: &str) -> Option<(&'static str, Read)> {
    use IocKind as K;
    use Read::*;
    let name = name.strip_prefix("winlog.event_data.").unwrap_or(name);
    Some(match name {
        "source.ip" => ("source.ip", As(K::Ip)),
        "destination.ip" => ("destination.ip", As(K::Ip)),
        "client.ip" => ("client.ip", As(K::Ip)),
        "server.ip" => ("server.ip", As(K::Ip)),
        "host.ip" => ("host.ip", As(K::Ip)),
        "dns.question.name" => ("dns.question.name", As(K::Domain)),
        "url.domain" => ("url.domain", As(K::Domain)),
        "destination.domain" => ("destination.domain", As(K::Domain)),
        "source.domain" => ("source.domain", As(K::Domain)),
        "url.full" => ("url.full", Url),
        "url.original" => ("url.original", Url),
        "file.hash.md5" => ("file.hash.md5", As(K::Md5)),
        "file.hash.sha1" => ("file.hash.sha1", As(K::Sha1)),
        "file.hash.sha256" => ("file.hash.sha256", As(K::Sha256)),
        "file.hash.sha512" => ("file.hash.sha512", As(K::Sha512)),
        "process.hash.md5" => ("process.hash.md5", As(K::Md5)),
        "process.hash.sha1" => ("process.hash.sha1", As(K::Sha1)),
        "process.hash.sha256" => ("process.hash.sha256", As(K::Sha256)),
        "process.hash.sha512" => ("process.hash.sha512", As(K::Sha512)),
        "file.pe.imphash" => ("file.pe.imphash", As(K::Imphash)),
        "process.pe.imphash" => ("process.pe.imphash", As(K::Imphash)),
        "file.name" => ("file.name", As(K::Filename)),
        "file.path" => ("file.path", Basename),
        "process.executable" => ("process.executable", Basename),
        "user_agent.original" => ("user_agent.original", As(K::UserAgent)),
        "email.from.address" => ("email.from.address", As(K::Email)),
        "email.to.address" => ("email.to.address", As(K::Email)),
        "email.cc.address" => ("email.cc.address", As(K::Email)),
        "email.reply_to.address" => ("email.reply_to.address", As(K::Email)),
        "tls.client.ja3" => ("tls.client.ja3", As(K::Ja3)),
        "registry.path" => ("registry.path", As(K::RegistryKey)),
        "registry.key" => ("registry.key", As(K::RegistryKey)),
        // Sysmon / Windows event data.
        "DestinationIp" => ("DestinationIp", As(K::Ip)),
        "SourceIp" => ("SourceIp", As(K::Ip)),
        "DestinationHostname" => ("DestinationHostname", As(K::Domain)),
        "QueryName" => ("QueryName", As(K::Domain)),
        "Hashes" => ("Hashes", SysmonHashes),
        "Hash" => ("Hash", SysmonHashes),
        "TargetFilename" => ("TargetFilename", Basename),
        "Image" => ("Image", Basename),
        "TargetObject" => ("TargetObject", As(K::RegistryKey)),
        _ => return None,
    })
}

/// The algorithms of Sysmon's `Hashes` field that indicators can name.
const SYSMON_HASHES: &[(&str, IocKind)] = &[
    ("MD5", IocKind::Md5),
    ("SHA1", IocKind::Sha1),
    ("SHA256", IocKind::Sha256),
    ("SHA512", IocKind::Sha512),
    ("IMPHASH", IocKind::Imphash),
];

/// The last component of a Windows or POSIX path.
fn basename(path: &str) -> &str {
    path.rsplit(['\\', '/']).next().unwrap_or(path)
}

/// Calls `found` for every observable in `event`. Borrows everything; allocates nothing.
pub fn observables<'e, E: EventFields + ?Sized>(
    event: &'e E,
    found: &mut dyn FnMut(Observable<'e>),
) {
    event.visit_fields(&mut |name, value| {
        let FieldValue::Str(value) = value else {
            return;
        };
        // The name first: most fields are not observables, and this is per field.
        let Some((field, read)) = field_rule(name) else {
            return;
        };
        let value = value.trim();
        if value.is_empty() || value == "-" {
            return;
        }
        let mut emit = |kind, value| found(Observable { field, kind, value });
        match read {
            Read::As(kind) => emit(kind, value),
            Read::Basename => {
                let base = basename(value);
                if !base.is_empty() {
                    emit(IocKind::Filename, base);
                }
            }
            Read::Url => {
                emit(IocKind::Url, value);
                if let Some(parts) = url_parts(value) {
                    let kind = if parts.host.parse::<IpAddr>().is_ok() {
                        IocKind::Ip
                    } else {
                        IocKind::Domain
                    };
                    emit(kind, parts.host);
                }
            }
            Read::SysmonHashes => {
                for pair in value.split(',') {
                    let Some((algo, hash)) = pair.split_once('=') else {
                        continue;
                    };
                    let algo = algo.trim();
                    let Some(kind) = SYSMON_HASHES
                        .iter()
                        .find(|(name, _)| algo.eq_ignore_ascii_case(name))
                        .map(|(_, kind)| *kind)
                    else {
                        continue;
                    };
                    emit(kind, hash.trim());
                }
            }
        }
    });
}
