//! Out: a MISP feed (manifest.json + `<uuid>.json` + hashes.csv) of indicators and their
//! sightings, and a STIX 2.1 bundle of indicators.
//!
//! Ids are stable across exports: an event's uuid comes from its `info` (unless given), an
//! attribute's from the event and the indicator's (kind, value), a STIX indicator's from the
//! (kind, value) — all UUID v5 — so consumers that sync incrementally see updates, not new
//! objects.

use std::collections::HashMap;
use std::path::Path;

use dozor_intel::{Ioc, IocKind};
use md5::{Digest, Md5};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::http::hex;
use crate::time::{ms_to_rfc3339, now_ms};
use crate::{Skipped, SourceError};

/// Namespace of the UUID v5 ids Dozor gives exported objects.
const DOZOR_NAMESPACE: Uuid = Uuid::from_u128(0x6d1c_9a8e_52a4_4c57_9f0e_1f3a_d0a0_2b7e);

/// A sighting to put into an exported feed: an indicator seen at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSighting {
    pub kind: IocKind,
    /// The canonical value (as in [`Ioc::value`]).
    pub value: String,
    /// Epoch seconds.
    pub timestamp: i64,
    /// Who saw it ("dozor", an agent, a sensor).
    pub source: String,
}

/// What the exported feed's one event says about itself.
#[derive(Debug, Clone)]
pub struct FeedEventSettings {
    pub info: String,
    /// Stable by default (UUID v5 of `info`).
    pub uuid: Option<String>,
    pub org_name: String,
    pub org_uuid: String,
    /// Event tags (`tlp:amber`, …).
    pub tags: Vec<String>,
    /// `published` in the event.
    pub published: bool,
}

impl FeedEventSettings {
    pub fn new(info: &str) -> FeedEventSettings {
        FeedEventSettings {
            info: info.to_owned(),
            uuid: None,
            org_name: "Dozor".into(),
            org_uuid: Uuid::new_v5(&DOZOR_NAMESPACE, b"org").to_string(),
            tags: Vec::new(),
            published: true,
        }
    }

    fn event_uuid(&self) -> String {
        self.uuid.clone().unwrap_or_else(|| {
            Uuid::new_v5(&DOZOR_NAMESPACE, format!("event:{}", self.info).as_bytes()).to_string()
        })
    }
}

/// The files of a MISP feed, in memory.
#[derive(Debug, Clone)]
pub struct MispFeedFiles {
    /// `manifest.json`.
    pub manifest: Value,
    /// `(uuid, <uuid>.json)`.
    pub events: Vec<(String, Value)>,
    /// Lines of `hashes.csv`: `(md5 of the value, event uuid)`.
    pub hashes: Vec<(String, String)>,
}

/// The MISP attribute type Dozor writes for a kind.
pub fn misp_type(kind: IocKind) -> &'static str {
    match kind {
        IocKind::Ip | IocKind::Cidr => "ip-dst",
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
        IocKind::RegistryKey => "regkey",
        IocKind::UserAgent => "user-agent",
        IocKind::Ja3 => "ja3-fingerprint-md5",
    }
}

fn category(kind: IocKind) -> &'static str {
    match kind {
        IocKind::Md5
        | IocKind::Sha1
        | IocKind::Sha256
        | IocKind::Sha512
        | IocKind::Imphash
        | IocKind::Filename => "Payload delivery",
        IocKind::RegistryKey => "Persistence mechanism",
        _ => "Network activity",
    }
}

fn seconds(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

/// A MISP feed of one event holding `iocs` (one attribute each, with tags, `to_ids`,
/// first/last seen, the sources in the comment) and their `sightings`.
pub fn misp_feed(
    iocs: &[Ioc],
    sightings: &[ExportSighting],
    settings: &FeedEventSettings,
) -> MispFeedFiles {
    let event_uuid = settings.event_uuid();
    let now = seconds(now_ms());
    // Each indicator's sightings, looked up once (not a scan of all sightings per indicator).
    let mut seen_by: HashMap<(IocKind, &str), Vec<&ExportSighting>> = HashMap::new();
    for s in sightings {
        seen_by
            .entry((s.kind, s.value.as_str()))
            .or_default()
            .push(s);
    }
    let mut newest = 0i64;
    let mut attributes = Vec::with_capacity(iocs.len());
    let mut hashes = Vec::with_capacity(iocs.len());
    for ioc in iocs {
        let uuid = Uuid::new_v5(
            &DOZOR_NAMESPACE,
            format!("{event_uuid}:{}:{}", ioc.kind, ioc.value).as_bytes(),
        )
        .to_string();
        let mut ts = ioc.last_seen.or(ioc.first_seen).map_or(now, seconds);
        let seen: Vec<Value> = seen_by
            .get(&(ioc.kind, ioc.value.as_str()))
            .into_iter()
            .flatten()
            .map(|s| {
                ts = ts.max(s.timestamp);
                json!({
                    "uuid": Uuid::new_v5(&DOZOR_NAMESPACE,
                        format!("{uuid}:{}:{}", s.source, s.timestamp).as_bytes()).to_string(),
                    "date_sighting": s.timestamp.to_string(),
                    "type": "0",
                    "source": s.source,
                })
            })
            .collect();
        newest = newest.max(ts);
        let comment = ioc
            .sources
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let mut attr = json!({
            "uuid": uuid,
            "type": misp_type(ioc.kind),
            "category": category(ioc.kind),
            "value": ioc.value,
            "to_ids": ioc.to_ids,
            "timestamp": ts.to_string(),
            "comment": comment,
            "deleted": false,
            "disable_correlation": false,
            "object_relation": null,
            "Tag": ioc.tags.iter().map(|t| json!({"name": t})).collect::<Vec<_>>(),
        });
        if let Some(f) = ioc.first_seen {
            attr["first_seen"] = ms_to_rfc3339(f).into();
        }
        if let Some(l) = ioc.last_seen {
            attr["last_seen"] = ms_to_rfc3339(l).into();
        }
        if !seen.is_empty() {
            attr["Sighting"] = seen.into();
        }
        hashes.push((hex(&Md5::digest(ioc.value.as_bytes())), event_uuid.clone()));
        attributes.push(attr);
    }
    if newest == 0 {
        newest = now;
    }
    let date = ms_to_rfc3339(newest.saturating_mul(1000))
        .get(..10)
        .unwrap_or_default()
        .to_owned();
    let orgc = json!({"name": settings.org_name, "uuid": settings.org_uuid});
    let tags: Vec<Value> = settings.tags.iter().map(|t| json!({"name": t})).collect();
    let event = json!({"Event": {
        "uuid": event_uuid,
        "info": settings.info,
        "date": date,
        "timestamp": newest.to_string(),
        "publish_timestamp": newest.to_string(),
        "published": settings.published,
        "analysis": "2",
        "threat_level_id": "4",
        "Orgc": orgc,
        "Tag": tags,
        "Attribute": attributes,
    }});
    let manifest = json!({ event_uuid.clone(): {
        "Orgc": orgc,
        "Tag": tags,
        "info": settings.info,
        "date": date,
        "analysis": 2,
        "threat_level_id": 4,
        "timestamp": newest,
    }});
    MispFeedFiles {
        manifest,
        events: vec![(event_uuid, event)],
        hashes,
    }
}

/// Writes a feed into `dir` (created if missing): manifest.json, `<uuid>.json`, hashes.csv.
/// Each file is written next to its place and renamed, so a reader never sees half a file.
pub fn write_misp_feed(dir: &Path, files: &MispFeedFiles) -> Result<(), SourceError> {
    std::fs::create_dir_all(dir).map_err(|e| SourceError::io(dir, e))?;
    for (uuid, event) in &files.events {
        write_atomic(
            &dir.join(format!("{uuid}.json")),
            event.to_string().as_bytes(),
        )?;
    }
    let mut csv = String::new();
    for (hash, uuid) in &files.hashes {
        csv.push_str(hash);
        csv.push(',');
        csv.push_str(uuid);
        csv.push('\n');
    }
    write_atomic(&dir.join("hashes.csv"), csv.as_bytes())?;
    // The manifest last: a reader that sees it finds the events it lists.
    write_atomic(
        &dir.join("manifest.json"),
        files.manifest.to_string().as_bytes(),
    )
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SourceError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| SourceError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| SourceError::io(path, e))
}

/// The STIX 2.1 marking definition id of a TLP tag.
fn tlp_marking(tag: &str) -> Option<&'static str> {
    match tag.to_ascii_lowercase().as_str() {
        "tlp:white" | "tlp:clear" => {
            Some("marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9")
        }
        "tlp:green" => Some("marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"),
        "tlp:amber" | "tlp:amber+strict" => {
            Some("marking-definition--f88d31f6-486f-44da-b317-01333bde0b82")
        }
        "tlp:red" => Some("marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"),
        _ => None,
    }
}

fn stix_string(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\'")
}

/// The STIX pattern of an indicator; `None` for kinds STIX has no object path for.
pub fn stix_pattern(ioc: &Ioc) -> Option<String> {
    let v = stix_string(&ioc.value);
    let path = match ioc.kind {
        IocKind::Ip | IocKind::Cidr if ioc.value.contains(':') => "ipv6-addr:value",
        IocKind::Ip | IocKind::Cidr => "ipv4-addr:value",
        IocKind::Domain | IocKind::Hostname => "domain-name:value",
        IocKind::Url => "url:value",
        IocKind::Md5 => "file:hashes.MD5",
        IocKind::Sha1 => "file:hashes.'SHA-1'",
        IocKind::Sha256 => "file:hashes.'SHA-256'",
        IocKind::Sha512 => "file:hashes.'SHA-512'",
        IocKind::Filename => "file:name",
        IocKind::Email => "email-addr:value",
        IocKind::RegistryKey => "windows-registry-key:key",
        IocKind::UserAgent => {
            "network-traffic:extensions.'http-request-ext'.request_header.'User-Agent'"
        }
        IocKind::Imphash | IocKind::Ja3 => return None,
    };
    Some(format!("[{path} = '{v}']"))
}

/// A STIX 2.1 bundle with one indicator per IOC (`identity_name` as the producer). IOCs
/// STIX patterns cannot express (imphash, JA3) are returned as skipped.
pub fn stix_bundle(iocs: &[Ioc], identity_name: &str) -> (Value, Vec<Skipped>) {
    let now = ms_to_rfc3339(now_ms());
    let identity_id = format!(
        "identity--{}",
        Uuid::new_v5(
            &DOZOR_NAMESPACE,
            format!("identity:{identity_name}").as_bytes()
        )
    );
    let mut objects = vec![json!({
        "type": "identity",
        "spec_version": "2.1",
        "id": identity_id,
        "created": now,
        "modified": now,
        "name": identity_name,
        "identity_class": "system",
    })];
    let mut skipped = Vec::new();
    for ioc in iocs {
        let Some(pattern) = stix_pattern(ioc) else {
            skipped.push(Skipped {
                object: format!("{}:{}", ioc.kind, ioc.value),
                reason: format!("STIX patterns have no object path for {}", ioc.kind),
            });
            continue;
        };
        let id = format!(
            "indicator--{}",
            Uuid::new_v5(
                &DOZOR_NAMESPACE,
                format!("indicator:{}:{}", ioc.kind, ioc.value).as_bytes()
            )
        );
        let created = ioc.first_seen.map_or_else(|| now.clone(), ms_to_rfc3339);
        let modified = ioc
            .last_seen
            .map_or_else(|| now.clone(), ms_to_rfc3339)
            .max(created.clone());
        let mut obj = json!({
            "type": "indicator",
            "spec_version": "2.1",
            "id": id,
            "created_by_ref": identity_id,
            "created": created,
            "modified": modified,
            "name": format!("{} {}", ioc.kind, ioc.value),
            "pattern_type": "stix",
            "pattern": pattern,
            "valid_from": created,
        });
        if let Some(e) = ioc.expires {
            obj["valid_until"] = ms_to_rfc3339(e).into();
        }
        if let Some(c) = ioc.confidence {
            obj["confidence"] = c.into();
        }
        let labels: Vec<&String> = ioc
            .tags
            .iter()
            .filter(|t| tlp_marking(t).is_none())
            .collect();
        if !labels.is_empty() {
            obj["labels"] = json!(labels);
        }
        let mut markings: Vec<&str> = ioc.tags.iter().filter_map(|t| tlp_marking(t)).collect();
        markings.dedup();
        if !markings.is_empty() {
            obj["object_marking_refs"] = json!(markings);
        }
        objects.push(obj);
    }
    let bundle = json!({
        "type": "bundle",
        "id": format!("bundle--{}", Uuid::new_v4()),
        "objects": objects,
    });
    (bundle, skipped)
}
