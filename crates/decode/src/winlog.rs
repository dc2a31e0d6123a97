//! Windows events (as `dozor_decode` flattens them) into the normalized event shape.
//!
//! The System part goes to `winlog.*` (`channel`, `provider_name`, `event_id`, `record_id`,
//! `computer`, ...) and `@timestamp`; the payload (EventData / UserData) is kept whole, under
//! its own names, in `winlog.event_data`, so Sigma rules still match `Image`, `CommandLine`...
//! Well-known payload fields are also mapped to ECS (`Image` → `process.executable`,
//! `TargetUserName` → `user.name` for logons, ...), and `event.category`/`event.type` follow
//! from the channel and event id.
//!
//! `event.id` is a UUIDv5 of computer, channel and record id ([`windows_event_id`]), so the
//! same record uploaded twice (or read from an EVTX and from XML) has the same id.

use std::net::IpAddr;

use crate::{FlatEvent, Value as FlatValue};
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// The UUIDv5 namespace of Windows event ids.
pub const WINDOWS_EVENT_NAMESPACE: Uuid =
    Uuid::from_u128(0x6f1c_8d2e_5b7a_4c3e_9a41_d0e2_b7c9_5a13);

/// The deterministic id of a Windows event record.
pub fn windows_event_id(computer: &str, channel: &str, record_id: u64) -> Uuid {
    Uuid::new_v5(
        &WINDOWS_EVENT_NAMESPACE,
        format!("{computer}\n{channel}\n{record_id}").as_bytes(),
    )
}

/// System fields of a flattened Windows event (see the `dozor-decode` README).
const SYSTEM: &[&str] = &[
    "Provider_Name",
    "Provider_Guid",
    "EventSourceName",
    "EventID",
    "EventID_Qualifiers",
    "Version",
    "Level",
    "Task",
    "Opcode",
    "EventRecordID",
    "Keywords",
    "TimeCreated",
    "Correlation_ActivityID",
    "Correlation_RelatedActivityID",
    "Channel",
    "Computer",
    "Security_UserID",
];

fn is_system_name(name: &str) -> bool {
    SYSTEM.contains(&name) || name.starts_with("Execution_")
}

const SYSMON: &str = "Microsoft-Windows-Sysmon/Operational";

/// A Windows event's fields split into System and payload.
struct Split<'a> {
    system: Vec<(&'a str, &'a FlatValue)>,
    payload: Vec<(&'a str, &'a FlatValue)>,
    message: Option<&'a FlatValue>,
}

fn split(flat: &FlatEvent) -> Split<'_> {
    // A payload field named like a System field shadows it: the System value is then under
    // `System_<name>` (see the decoder's README).
    let shadowed: Vec<&str> = flat
        .fields
        .iter()
        .filter_map(|(n, _)| n.strip_prefix("System_"))
        .collect();
    let mut out = Split {
        system: Vec::new(),
        payload: Vec::new(),
        message: None,
    };
    for (name, value) in &flat.fields {
        let name = name.as_str();
        if let Some(system) = name.strip_prefix("System_") {
            out.system.push((system, value));
        } else if name == "RenderingInfo_Message" {
            out.message = Some(value);
        } else if name.starts_with("RenderingInfo_") {
            continue;
        } else if is_system_name(name) && !shadowed.contains(&name) {
            out.system.push((name, value));
        } else {
            out.payload.push((name, value));
        }
    }
    out
}

fn find<'a>(fields: &[(&str, &'a FlatValue)], name: &str) -> Option<&'a FlatValue> {
    fields.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// Text of a value, `None` for empty and `-` (Windows' "no value").
fn text_of(value: Option<&FlatValue>) -> Option<String> {
    let text = match value? {
        FlatValue::Str(s) => s.clone(),
        FlatValue::Int(i) => i.to_string(),
        FlatValue::Bool(b) => b.to_string(),
        FlatValue::Float(f) => f.to_string(),
        FlatValue::Null | FlatValue::List(_) => return None,
    };
    let trimmed = text.trim();
    (!trimmed.is_empty() && trimmed != "-").then_some(text)
}

/// The null SID: Windows' "no account" in SID fields.
const NULL_SID: &str = "S-1-0-0";

/// Text of the payload field `name`: [`text_of`], and also `None` for the null SID in SID
/// fields (names ending in `Sid`).
fn field_text(name: &str, value: Option<&FlatValue>) -> Option<String> {
    text_of(value).filter(|t| !(name.ends_with("Sid") && t.trim() == NULL_SID))
}

/// The CN of a distinguished name (`CN=bob,OU=Users,DC=corp,DC=local` → `bob`, with `\,` and
/// `\2C` escapes undone); other text as is. `None` for an empty CN.
fn common_name(name: &str) -> Option<String> {
    let trimmed = name.trim();
    let Some(rest) = trimmed
        .get(..3)
        .filter(|p| p.eq_ignore_ascii_case("CN="))
        .and(trimmed.get(3..))
    else {
        return Some(name.to_owned());
    };
    let mut cn = Vec::new();
    let mut bytes = rest.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'\\' => {
                // `\,` or `\2C`.
                let Some(next) = bytes.next() else { break };
                let low = bytes
                    .clone()
                    .next()
                    .and_then(|l| char::from(l).to_digit(16));
                match (char::from(next).to_digit(16), low) {
                    (Some(high), Some(low)) => {
                        bytes.next();
                        cn.extend(u8::try_from(high * 16 + low).ok());
                    }
                    _ => cn.push(next),
                }
            }
            b',' | b'+' => break,
            _ => cn.push(b),
        }
    }
    let cn = String::from_utf8_lossy(&cn).trim().to_owned();
    (!cn.is_empty()).then_some(cn)
}

/// A non-negative integer from a number, decimal text or `0x` hex text.
fn uint_of(value: Option<&FlatValue>) -> Option<u64> {
    match value? {
        FlatValue::Int(i) => u64::try_from(*i).ok(),
        FlatValue::Str(s) => {
            let s = s.trim();
            match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => s.parse().ok(),
            }
        }
        _ => None,
    }
}

fn flat_to_json(value: &FlatValue) -> Value {
    match value {
        FlatValue::Null => Value::Null,
        FlatValue::Bool(b) => Value::Bool(*b),
        FlatValue::Int(i) => json!(i),
        FlatValue::Float(f) => json!(f),
        FlatValue::Str(s) => Value::String(s.clone()),
        FlatValue::List(items) => Value::Array(items.iter().map(flat_to_json).collect()),
    }
}

/// Sets `doc[path...] = value`, creating objects on the way.
fn set(doc: &mut Map<String, Value>, path: &str, value: Value) {
    let mut parts = path.split('.').peekable();
    let mut map = doc;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            map.insert(part.to_owned(), value);
            return;
        }
        let entry = map
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else { return };
        map = next;
    }
}

fn set_text(doc: &mut Map<String, Value>, path: &str, value: Option<String>) {
    if let Some(v) = value {
        set(doc, path, Value::String(v));
    }
}

/// The file name of a Windows or Unix path.
fn base_name(path: &str) -> &str {
    path.rsplit(['\\', '/']).next().unwrap_or(path)
}

fn set_file_path(doc: &mut Map<String, Value>, prefix: &str, path: &str) {
    set(doc, &format!("{prefix}.path"), json!(path));
    let name = base_name(path);
    if !name.is_empty() {
        set(doc, &format!("{prefix}.name"), json!(name));
        if let Some((_, ext)) = name.rsplit_once('.')
            && !ext.is_empty()
            && ext.len() <= 16
        {
            set(
                doc,
                &format!("{prefix}.extension"),
                json!(ext.to_ascii_lowercase()),
            );
        }
        let dir = &path[..path.len() - name.len()];
        let dir = dir.trim_end_matches(['\\', '/']);
        if !dir.is_empty() {
            set(doc, &format!("{prefix}.directory"), json!(dir));
        }
    }
}

fn set_executable(doc: &mut Map<String, Value>, prefix: &str, path: &str) {
    set(doc, &format!("{prefix}.executable"), json!(path));
    let name = base_name(path);
    if !name.is_empty() {
        set(doc, &format!("{prefix}.name"), json!(name));
    }
}

/// `SHA1=..,MD5=..,SHA256=..,IMPHASH=..` (Sysmon) into `hash.*` and `pe.imphash`.
fn set_hashes(doc: &mut Map<String, Value>, prefix: &str, hashes: &str) {
    for part in hashes.split(',') {
        let Some((algo, hex)) = part.split_once('=') else {
            continue;
        };
        let hex = hex.trim().to_ascii_lowercase();
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let field = match (algo.trim().to_ascii_uppercase().as_str(), hex.len()) {
            ("MD5", 32) => "hash.md5",
            ("SHA1", 40) => "hash.sha1",
            ("SHA256", 64) => "hash.sha256",
            ("SHA512", 128) => "hash.sha512",
            ("IMPHASH", _) => "pe.imphash",
            _ => continue,
        };
        set(doc, &format!("{prefix}.{field}"), json!(hex));
    }
}

fn set_ip(doc: &mut Map<String, Value>, path: &str, text: Option<String>) {
    if let Some(text) = text {
        let trimmed = text.trim();
        if trimmed.parse::<IpAddr>().is_ok() {
            set(doc, path, json!(trimmed));
        }
    }
}

fn set_port(doc: &mut Map<String, Value>, path: &str, value: Option<u64>) {
    if let Some(port) = value.filter(|p| (1..=65535).contains(p)) {
        set(doc, path, json!(port));
    }
}

/// Security events whose Target* fields are the user who logged on.
const LOGON_EVENTS: &[u64] = &[
    4624, 4625, 4634, 4647, 4768, 4769, 4770, 4771, 4776, 4778, 4779, 4800, 4801,
];

/// Security events about a group's members: Target* is the group, Member* the account.
const GROUP_MEMBER_EVENTS: &[u64] = &[4728, 4729, 4732, 4733, 4756, 4757];

/// Security events about a user account, whose SID is `TargetSid`.
const ACCOUNT_EVENTS: &[u64] = &[4720, 4722, 4723, 4724, 4725, 4726, 4738, 4740, 4767, 4781];

/// `event.category` and `event.type` of a Windows event.
pub fn classify(
    channel: &str,
    event_id: u64,
) -> (&'static [&'static str], &'static [&'static str]) {
    if channel == SYSMON {
        return match event_id {
            1 => (&["process"], &["start"]),
            2 => (&["file"], &["change"]),
            3 => (&["network"], &["connection", "start"]),
            5 => (&["process"], &["end"]),
            6 => (&["driver"], &["start"]),
            7 => (&["library"], &["start"]),
            8 | 10 | 25 => (&["process"], &["access"]),
            9 | 18 => (&["file"], &["access"]),
            11 | 15 | 17 | 29 => (&["file"], &["creation"]),
            12..=14 => (&["registry"], &["change"]),
            4 | 16 | 19..=21 => (&["configuration"], &["change"]),
            22 => (&["network"], &["protocol"]),
            23 | 26 => (&["file"], &["deletion"]),
            27 | 28 => (&["file"], &["denied"]),
            _ => (&["host"], &["info"]),
        };
    }
    match event_id {
        4624 | 4648 | 4768 | 4769 | 4771 | 4776 | 4778 => (&["authentication"], &["start"]),
        4625 => (&["authentication"], &["start"]),
        4634 | 4647 | 4779 => (&["authentication", "session"], &["end"]),
        4672 => (&["iam"], &["admin"]),
        4688 => (&["process"], &["start"]),
        4689 => (&["process"], &["end"]),
        4720 => (&["iam"], &["user", "creation"]),
        4726 => (&["iam"], &["user", "deletion"]),
        4722..=4725 | 4738 | 4740 | 4767 | 4781 => (&["iam"], &["user", "change"]),
        4727 | 4731 | 4754 => (&["iam"], &["group", "creation"]),
        4730 | 4734 | 4758 => (&["iam"], &["group", "deletion"]),
        4728 | 4729 | 4732 | 4733 | 4735 | 4737 | 4756 | 4757 => (&["iam"], &["group", "change"]),
        4697 | 7045 | 4698 => (&["configuration"], &["creation"]),
        4699 => (&["configuration"], &["deletion"]),
        4700..=4702 | 4719 | 4902 | 4904..=4907 | 4739 => (&["configuration"], &["change"]),
        1102 => (&["configuration"], &["deletion"]),
        4656 | 4660 | 4663 => (&["file"], &["access"]),
        4657 => (&["registry"], &["change"]),
        5156 => (&["network"], &["connection", "allowed"]),
        5157 => (&["network"], &["connection", "denied"]),
        4608 => (&["host"], &["start"]),
        1100 | 4609 => (&["host"], &["end"]),
        4616 => (&["host"], &["change"]),
        _ => (&["host"], &["info"]),
    }
}

/// Converts a flattened Windows event into a normalized event. `Err` says why it can't be
/// (no time, no event id).
pub fn to_event(flat: &FlatEvent) -> Result<Value, String> {
    let parts = split(flat);
    let sys = |name: &str| find(&parts.system, name);
    let pay = |name: &str| find(&parts.payload, name);
    let ptext = |name: &str| field_text(name, pay(name));

    let mut doc = Map::new();

    let timestamp = text_of(sys("TimeCreated"))
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t.trim()).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .or_else(|| {
            flat.timestamp_millis
                .and_then(chrono::DateTime::from_timestamp_millis)
        })
        .ok_or("the event has no TimeCreated")?;
    set(
        &mut doc,
        "@timestamp",
        json!(timestamp.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
    );

    let event_id = uint_of(sys("EventID"))
        .filter(|id| *id <= 65535)
        .ok_or("the event has no EventID")?;
    let channel = text_of(sys("Channel")).unwrap_or_default();
    let computer = text_of(sys("Computer")).unwrap_or_default();
    let record_id = uint_of(sys("EventRecordID"));
    let id = match record_id {
        Some(record) if !channel.is_empty() || !computer.is_empty() => {
            windows_event_id(&computer, &channel, record)
        }
        // No record id (hand-written XML): the id is a digest of the whole event.
        _ => Uuid::new_v5(
            &WINDOWS_EVENT_NAMESPACE,
            flat.to_json().to_string().as_bytes(),
        ),
    };

    // event.*
    let (category, kind_type) = classify(&channel, event_id);
    set(&mut doc, "event.id", json!(id.to_string()));
    set(&mut doc, "event.kind", json!("event"));
    set(&mut doc, "event.category", json!(category));
    set(&mut doc, "event.type", json!(kind_type));
    set(&mut doc, "event.code", json!(event_id.to_string()));
    set_text(&mut doc, "event.provider", text_of(sys("Provider_Name")));
    set(&mut doc, "event.module", json!("windows"));
    if let Some(keywords) = text_of(sys("Keywords"))
        && let Some(bits) = keywords
            .trim()
            .strip_prefix("0x")
            .and_then(|h| u64::from_str_radix(h, 16).ok())
    {
        // Audit Success / Audit Failure keywords.
        if bits & 0x0010_0000_0000_0000 != 0 {
            set(&mut doc, "event.outcome", json!("failure"));
        } else if bits & 0x0020_0000_0000_0000 != 0 {
            set(&mut doc, "event.outcome", json!("success"));
        }
    }
    if let Some(action) = ptext("EventType") {
        set(&mut doc, "event.action", json!(action));
    }
    if let Some(message) = text_of(parts.message) {
        set(&mut doc, "message", json!(message));
    }
    set_text(
        &mut doc,
        "host.name",
        Some(computer.clone()).filter(|c| !c.is_empty()),
    );

    // winlog.*
    set_text(
        &mut doc,
        "winlog.channel",
        Some(channel.clone()).filter(|c| !c.is_empty()),
    );
    set_text(
        &mut doc,
        "winlog.provider_name",
        text_of(sys("Provider_Name")),
    );
    set_text(
        &mut doc,
        "winlog.provider_guid",
        text_of(sys("Provider_Guid")),
    );
    set(&mut doc, "winlog.event_id", json!(event_id));
    if let Some(record) = record_id {
        set(&mut doc, "winlog.record_id", json!(record));
    }
    set_text(
        &mut doc,
        "winlog.computer",
        Some(computer).filter(|c| !c.is_empty()),
    );
    for (name, field) in [
        ("Version", "winlog.version"),
        ("Level", "winlog.level"),
        ("Task", "winlog.task"),
        ("Opcode", "winlog.opcode"),
        ("Execution_ProcessID", "winlog.process.pid"),
        ("Execution_ThreadID", "winlog.process.thread.id"),
    ] {
        if let Some(n) = uint_of(sys(name)) {
            set(&mut doc, field, json!(n));
        }
    }
    set_text(&mut doc, "winlog.keywords", text_of(sys("Keywords")));
    set_text(
        &mut doc,
        "winlog.activity_id",
        text_of(sys("Correlation_ActivityID")),
    );
    set_text(
        &mut doc,
        "winlog.related_activity_id",
        text_of(sys("Correlation_RelatedActivityID")),
    );
    set_text(
        &mut doc,
        "winlog.user.identifier",
        text_of(sys("Security_UserID")),
    );
    let mut event_data = Map::new();
    for (name, value) in &parts.payload {
        let json = flat_to_json(value);
        match event_data.get_mut(*name) {
            Some(Value::Array(items)) => items.push(json),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, json]);
            }
            None => {
                event_data.insert((*name).to_owned(), json);
            }
        }
    }
    if !event_data.is_empty() {
        set(&mut doc, "winlog.event_data", Value::Object(event_data));
    }

    map_ecs(&mut doc, &ptext, &|n| uint_of(pay(n)), &channel, event_id);
    Ok(Value::Object(doc))
}

/// ECS fields from well-known payload names (Sysmon and Security).
fn map_ecs(
    doc: &mut Map<String, Value>,
    text: &dyn Fn(&str) -> Option<String>,
    uint: &dyn Fn(&str) -> Option<u64>,
    channel: &str,
    event_id: u64,
) {
    // The process.
    if let Some(exe) = text("Image")
        .or_else(|| text("NewProcessName"))
        .or_else(|| text("ProcessName"))
        .or_else(|| text("SourceImage"))
    {
        set_executable(doc, "process", &exe);
    }
    set_text(doc, "process.command_line", text("CommandLine"));
    set_text(
        doc,
        "process.entity_id",
        text("ProcessGuid").or_else(|| text("SourceProcessGUID")),
    );
    set_text(doc, "process.working_directory", text("CurrentDirectory"));
    set_text(doc, "process.integrity_level", text("IntegrityLevel"));
    let security = channel == "Security";
    // Security writes pid 0 for "no process" (ProcessId 0x0 of a network logon).
    let pid = |name: &str| uint(name).filter(|pid| *pid != 0 || !security);
    // Security 4688: NewProcessId is the new process, ProcessId its creator.
    if uint("NewProcessId").is_some() {
        if let Some(pid) = pid("NewProcessId") {
            set(doc, "process.pid", json!(pid));
        }
        if let Some(parent) = pid("ProcessId") {
            set(doc, "process.parent.pid", json!(parent));
        }
    } else if let Some(pid) = pid("ProcessId").or_else(|| pid("SourceProcessId")) {
        set(doc, "process.pid", json!(pid));
    }
    if let Some(exe) = text("ParentImage").or_else(|| text("ParentProcessName")) {
        set_executable(doc, "process.parent", &exe);
    }
    set_text(
        doc,
        "process.parent.command_line",
        text("ParentCommandLine"),
    );
    set_text(doc, "process.parent.entity_id", text("ParentProcessGuid"));
    if let Some(pid) = pid("ParentProcessId") {
        set(doc, "process.parent.pid", json!(pid));
    }

    // The file, and whose hashes and PE data Sysmon reports.
    let file_path = text("TargetFilename")
        .or_else(|| text("ImageLoaded"))
        .or_else(|| {
            (text("ObjectType").as_deref() == Some("File"))
                .then(|| text("ObjectName"))
                .flatten()
        });
    let about_file = file_path.is_some();
    if let Some(path) = &file_path {
        set_file_path(doc, "file", path);
    }
    let owner = if about_file { "file" } else { "process" };
    if let Some(hashes) = text("Hashes").or_else(|| text("Hash")) {
        set_hashes(doc, owner, &hashes);
    }
    for (name, field) in [
        ("OriginalFileName", "original_file_name"),
        ("Company", "company"),
        ("Description", "description"),
        ("Product", "product"),
        ("FileVersion", "file_version"),
    ] {
        set_text(doc, &format!("{owner}.pe.{field}"), text(name));
    }

    // The user.
    if let Some(user) = text("User") {
        // Sysmon: DOMAIN\name
        match user.split_once('\\') {
            Some((domain, name)) => {
                set(doc, "user.domain", json!(domain));
                set(doc, "user.name", json!(name));
            }
            None => set(doc, "user.name", json!(user)),
        }
    }
    let logon = security && LOGON_EVENTS.contains(&event_id);
    let (primary, secondary) = if logon {
        ("Target", None)
    } else {
        ("Subject", Some("Target"))
    };
    if text("User").is_none() {
        set_text(doc, "user.name", text(&format!("{primary}UserName")));
        set_text(doc, "user.domain", text(&format!("{primary}DomainName")));
        set_text(doc, "user.id", text(&format!("{primary}UserSid")));
    }
    if security && GROUP_MEMBER_EVENTS.contains(&event_id) {
        // The group, and the account added or removed (MemberName is a DN or `-`).
        set_text(doc, "group.name", text("TargetUserName"));
        set_text(doc, "group.domain", text("TargetDomainName"));
        set_text(doc, "group.id", text("TargetSid"));
        set_text(
            doc,
            "user.target.name",
            text("MemberName").and_then(|n| common_name(&n)),
        );
        set_text(doc, "user.target.id", text("MemberSid"));
    } else if let Some(target) = secondary {
        set_text(doc, "user.target.name", text(&format!("{target}UserName")));
        set_text(
            doc,
            "user.target.domain",
            text(&format!("{target}DomainName")),
        );
        let account = security && ACCOUNT_EVENTS.contains(&event_id);
        set_text(
            doc,
            "user.target.id",
            text(&format!("{target}UserSid"))
                .or_else(|| account.then(|| text(&format!("{target}Sid"))).flatten()),
        );
    }

    // The network.
    set_ip(
        doc,
        "source.ip",
        text("SourceIp").or_else(|| text("IpAddress")),
    );
    set_port(
        doc,
        "source.port",
        uint("SourcePort").or_else(|| uint("IpPort")),
    );
    set_text(doc, "source.domain", text("SourceHostname"));
    set_ip(doc, "destination.ip", text("DestinationIp"));
    set_port(doc, "destination.port", uint("DestinationPort"));
    set_text(doc, "destination.domain", text("DestinationHostname"));
    if let Some(protocol) = text("Protocol")
        && channel == SYSMON
    {
        set(
            doc,
            "network.transport",
            json!(protocol.to_ascii_lowercase()),
        );
    }
    if channel == SYSMON && event_id == 3 {
        match text("Initiated").as_deref() {
            Some("true") => set(doc, "network.direction", json!("egress")),
            Some("false") => set(doc, "network.direction", json!("ingress")),
            _ => {}
        }
    }

    // DNS (Sysmon 22).
    if let Some(query) = text("QueryName") {
        set(doc, "dns.question.name", json!(query));
        set(doc, "network.protocol", json!("dns"));
        if let Some(results) = text("QueryResults") {
            let ips: Vec<&str> = results
                .split(';')
                .map(str::trim)
                .filter(|t| t.parse::<IpAddr>().is_ok())
                .collect();
            if !ips.is_empty() {
                set(doc, "dns.resolved_ip", json!(ips));
            }
        }
    }

    // The registry (Sysmon 12-14).
    if let Some(path) = text("TargetObject") {
        set(doc, "registry.path", json!(path));
        let trimmed = path.trim_start_matches('\\');
        let upper = trimmed.to_ascii_uppercase();
        let (hive, rest) = if upper.starts_with("REGISTRY\\MACHINE\\") {
            ("HKLM", &trimmed["REGISTRY\\MACHINE\\".len()..])
        } else if upper.starts_with("REGISTRY\\USER\\") {
            ("HKU", &trimmed["REGISTRY\\USER\\".len()..])
        } else {
            trimmed.split_once('\\').unwrap_or((trimmed, ""))
        };
        if !hive.is_empty() {
            set(doc, "registry.hive", json!(hive));
        }
        if !rest.is_empty() {
            match rest.rsplit_once('\\') {
                Some((key, value)) => {
                    set(doc, "registry.key", json!(key));
                    set(doc, "registry.value", json!(value));
                }
                None => set(doc, "registry.key", json!(rest)),
            }
        }
        if let Some(details) = text("Details") {
            set(doc, "registry.data.strings", json!([details]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dozor_event::schema::EventValidator;

    fn flat(fields: &[(&str, FlatValue)]) -> FlatEvent {
        let mut e = FlatEvent::new();
        for (n, v) in fields {
            e.push(*n, v.clone());
        }
        e
    }

    fn s(v: &str) -> FlatValue {
        FlatValue::Str(v.into())
    }

    /// A Sysmon event with the given `EventID` and fields, converted and checked against the
    /// event schema.
    fn sysmon(event_id: i64, fields: &[(&str, FlatValue)]) -> Value {
        let mut all = vec![
            ("EventID", FlatValue::Int(event_id)),
            ("TimeCreated", s("2019-01-01T00:00:00Z")),
            ("Channel", s(SYSMON)),
        ];
        all.extend(fields.iter().cloned());
        let v = to_event(&flat(&all)).unwrap();
        assert_eq!(EventValidator::new().unwrap().validate(&v), vec![], "{v:#}");
        v
    }

    #[test]
    fn sysmon_process_creation() {
        let e = flat(&[
            ("Provider_Name", s("Microsoft-Windows-Sysmon")),
            ("EventID", FlatValue::Int(1)),
            ("TimeCreated", s("2017-12-26T13:10:29.1368792Z")),
            ("EventRecordID", FlatValue::Int(1742)),
            ("Execution_ProcessID", FlatValue::Int(2284)),
            ("Channel", s(SYSMON)),
            ("Computer", s("DESKTOP-2KGM189")),
            ("Security_UserID", s("S-1-5-18")),
            ("ProcessGuid", s("{94f748d5-4a45-5a42-0000-0010d265f20f}")),
            ("ProcessId", FlatValue::Int(9112)),
            ("Image", s("C:\\Windows\\SysWOW64\\PING.EXE")),
            ("CommandLine", s("ping  -n 6 127.0.0.1 ")),
            ("CurrentDirectory", s("C:\\")),
            ("User", s("CORP\\alice")),
            (
                "Hashes",
                s(&format!(
                    "SHA1={},MD5={},SHA256={},IMPHASH=ABC",
                    "A".repeat(40),
                    "b".repeat(32),
                    "C".repeat(64)
                )),
            ),
            ("ParentImage", s("C:\\Windows\\System32\\cmd.exe")),
            ("ParentProcessId", FlatValue::Int(4)),
            ("ParentCommandLine", s("cmd")),
        ]);
        let v = to_event(&e).unwrap();
        assert_eq!(EventValidator::new().unwrap().validate(&v), vec![]);
        assert_eq!(v["@timestamp"], "2017-12-26T13:10:29.136879200Z");
        assert_eq!(
            v["event"]["id"],
            windows_event_id("DESKTOP-2KGM189", SYSMON, 1742).to_string()
        );
        assert_eq!(v["event"]["category"], json!(["process"]));
        assert_eq!(v["event"]["type"], json!(["start"]));
        assert_eq!(
            v["process"]["executable"],
            "C:\\Windows\\SysWOW64\\PING.EXE"
        );
        assert_eq!(v["process"]["name"], "PING.EXE");
        assert_eq!(v["process"]["pid"], 9112);
        assert_eq!(v["process"]["command_line"], "ping  -n 6 127.0.0.1 ");
        assert_eq!(v["process"]["hash"]["sha256"], "c".repeat(64));
        assert_eq!(v["process"]["pe"]["imphash"], "abc");
        assert_eq!(
            v["process"]["parent"]["executable"],
            "C:\\Windows\\System32\\cmd.exe"
        );
        assert_eq!(v["process"]["parent"]["pid"], 4);
        assert_eq!(v["user"]["name"], "alice");
        assert_eq!(v["user"]["domain"], "CORP");
        assert_eq!(
            v["winlog"]["event_data"]["Image"],
            "C:\\Windows\\SysWOW64\\PING.EXE"
        );
        assert_eq!(v["winlog"]["event_id"], 1);
        assert_eq!(v["winlog"]["record_id"], 1742);
        assert_eq!(v["winlog"]["user"]["identifier"], "S-1-5-18");
        assert_eq!(v["host"]["name"], "DESKTOP-2KGM189");
    }

    #[test]
    fn security_logon_and_network() {
        let e = flat(&[
            ("EventID", FlatValue::Int(4624)),
            ("Keywords", s("0x8020000000000000")),
            ("TimeCreated", s("2016-07-08T18:12:51.6816408Z")),
            ("EventRecordID", FlatValue::Int(2)),
            ("Channel", s("Security")),
            ("Computer", s("37L4247F27-25")),
            ("SubjectUserName", s("-")),
            ("TargetUserSid", s("S-1-5-18")),
            ("TargetUserName", s("SYSTEM")),
            ("TargetDomainName", s("NT AUTHORITY")),
            ("ProcessId", s("0x4")),
            ("ProcessName", s("")),
            ("IpAddress", s("10.1.2.3")),
            ("IpPort", s("49152")),
        ]);
        let v = to_event(&e).unwrap();
        assert_eq!(EventValidator::new().unwrap().validate(&v), vec![]);
        assert_eq!(v["user"]["name"], "SYSTEM");
        assert_eq!(v["user"]["id"], "S-1-5-18");
        assert_eq!(v["process"]["pid"], 4);
        assert!(v["process"].get("executable").is_none());
        assert_eq!(v["source"]["ip"], "10.1.2.3");
        assert_eq!(v["source"]["port"], 49152);
        assert_eq!(v["event"]["outcome"], "success");
        assert_eq!(v["event"]["category"], json!(["authentication"]));
    }

    #[test]
    fn shadowed_system_fields_and_missing_ids() {
        // Event 104: UserData/Channel is the cleared log; the System channel is System_Channel.
        let e = flat(&[
            ("EventID", FlatValue::Int(104)),
            ("TimeCreated", s("2019-01-01T00:00:00Z")),
            ("Computer", s("pc")),
            ("System_Channel", s("System")),
            ("Channel", s("Security")),
            ("EventRecordID", FlatValue::Int(5)),
        ]);
        let v = to_event(&e).unwrap();
        assert_eq!(v["winlog"]["channel"], "System");
        assert_eq!(v["winlog"]["event_data"]["Channel"], "Security");
        assert_eq!(
            v["event"]["id"],
            windows_event_id("pc", "System", 5).to_string()
        );

        let no_time = flat(&[("EventID", FlatValue::Int(1))]);
        assert!(to_event(&no_time).unwrap_err().contains("TimeCreated"));
        let no_record = flat(&[
            ("EventID", FlatValue::Int(1)),
            ("TimeCreated", s("2019-01-01T00:00:00Z")),
        ]);
        let a = to_event(&no_record).unwrap();
        assert_eq!(
            a["event"]["id"],
            to_event(&no_record).unwrap()["event"]["id"]
        );
    }

    #[test]
    fn registry_dns_and_files() {
        let v = sysmon(
            13,
            &[
                ("EventType", s("SetValue")),
                ("TargetObject", s("HKLM\\SOFTWARE\\Microsoft\\Run\\evil")),
                ("Details", s("C:\\evil.exe")),
            ],
        );
        assert_eq!(v["registry"]["hive"], "HKLM");
        assert_eq!(v["registry"]["key"], "SOFTWARE\\Microsoft\\Run");
        assert_eq!(v["registry"]["value"], "evil");
        assert_eq!(v["event"]["action"], "SetValue");
        let v = sysmon(
            12,
            &[(
                "TargetObject",
                s("\\REGISTRY\\MACHINE\\SYSTEM\\Services\\X\\Start"),
            )],
        );
        assert_eq!(v["registry"]["hive"], "HKLM");
        assert_eq!(v["registry"]["key"], "SYSTEM\\Services\\X");
        assert_eq!(v["registry"]["value"], "Start");

        let v = sysmon(
            22,
            &[
                ("QueryName", s("example.com")),
                (
                    "QueryResults",
                    s("type:  5 x.example;::ffff:93.184.216.34;1.2.3.4;"),
                ),
            ],
        );
        assert_eq!(
            v["dns"]["resolved_ip"],
            json!(["::ffff:93.184.216.34", "1.2.3.4"])
        );

        let v = sysmon(
            11,
            &[
                ("Image", s("C:\\a.exe")),
                ("TargetFilename", s("C:\\Users\\x\\evil.PS1")),
            ],
        );
        assert_eq!(v["file"]["name"], "evil.PS1");
        assert_eq!(v["file"]["extension"], "ps1");
        assert_eq!(v["file"]["directory"], "C:\\Users\\x");
    }

    fn security(event_id: i64, fields: &[(&str, &str)]) -> Value {
        let mut all = vec![
            ("EventID", FlatValue::Int(event_id)),
            ("TimeCreated", s("2024-03-01T10:00:00Z")),
            ("EventRecordID", FlatValue::Int(7)),
            ("Channel", s("Security")),
            ("Computer", s("dc1.corp.local")),
        ];
        all.extend(fields.iter().map(|(n, v)| (*n, s(v))));
        let v = to_event(&flat(&all)).unwrap();
        assert_eq!(EventValidator::new().unwrap().validate(&v), vec![], "{v:#}");
        v
    }

    #[test]
    fn null_sid_is_no_account() {
        assert_eq!(field_text("TargetUserSid", Some(&s("S-1-0-0"))), None);
        assert_eq!(field_text("MemberSid", Some(&s(" S-1-0-0 "))), None);
        assert_eq!(field_text("TargetSid", Some(&s("-"))), None);
        assert_eq!(
            field_text("SubjectUserSid", Some(&s("S-1-5-18"))).as_deref(),
            Some("S-1-5-18")
        );
        // Only SID fields: other text that happens to read S-1-0-0 stays.
        assert_eq!(
            field_text("TargetUserName", Some(&s("S-1-0-0"))).as_deref(),
            Some("S-1-0-0")
        );

        // 4625: an unknown account has the null SID.
        let v = security(
            4625,
            &[
                ("SubjectUserSid", "S-1-0-0"),
                ("SubjectUserName", "-"),
                ("TargetUserSid", "S-1-0-0"),
                ("TargetUserName", "administrator"),
                ("TargetDomainName", "WS-017"),
                ("ProcessId", "0x0"),
                ("ProcessName", "-"),
            ],
        );
        assert_eq!(v["user"]["name"], "administrator");
        assert_eq!(v["user"]["domain"], "WS-017");
        assert!(v["user"].get("id").is_none(), "{v:#}");
        // Sigma rules still see the value as Windows wrote it.
        assert_eq!(v["winlog"]["event_data"]["TargetUserSid"], "S-1-0-0");

        // 4688 without a target account: no user.target at all.
        let v = security(
            4688,
            &[
                ("SubjectUserSid", "S-1-5-21-1-2-3-1001"),
                ("SubjectUserName", "alice"),
                ("SubjectDomainName", "CORP"),
                ("NewProcessId", "0x1d18"),
                ("NewProcessName", "C:\\Windows\\System32\\whoami.exe"),
                ("ProcessId", "0x1588"),
                ("TargetUserSid", "S-1-0-0"),
                ("TargetUserName", "-"),
                ("TargetDomainName", "-"),
                ("TargetLogonId", "0x0"),
            ],
        );
        assert_eq!(v["user"]["id"], "S-1-5-21-1-2-3-1001");
        assert_eq!(v["user"]["name"], "alice");
        assert!(v["user"].get("target").is_none(), "{v:#}");
    }

    #[test]
    fn group_membership_changes() {
        // 4732: a local group; MemberName is `-`.
        let v = security(
            4732,
            &[
                ("MemberName", "-"),
                ("MemberSid", "S-1-5-21-1-2-3-1104"),
                ("TargetUserName", "Administrators"),
                ("TargetDomainName", "Builtin"),
                ("TargetSid", "S-1-5-32-544"),
                ("SubjectUserSid", "S-1-5-21-1-2-3-500"),
                ("SubjectUserName", "Administrator"),
                ("SubjectDomainName", "CORP"),
                ("PrivilegeList", "-"),
            ],
        );
        assert_eq!(
            v["group"],
            json!({"name": "Administrators", "domain": "Builtin", "id": "S-1-5-32-544"})
        );
        assert_eq!(v["user"]["target"], json!({"id": "S-1-5-21-1-2-3-1104"}));
        assert_eq!(v["user"]["name"], "Administrator");
        assert_eq!(v["user"]["domain"], "CORP");
        assert_eq!(v["user"]["id"], "S-1-5-21-1-2-3-500");
        assert_eq!(v["event"]["type"], json!(["group", "change"]));

        // 4728 / 4729 / 4756 / 4757 / 4733: a domain group; MemberName is a DN.
        for id in [4728, 4729, 4733, 4756, 4757] {
            let v = security(
                id,
                &[
                    ("MemberName", "CN=Smith\\, Bob,OU=Staff,DC=corp,DC=local"),
                    ("MemberSid", "S-1-5-21-1-2-3-1105"),
                    ("TargetUserName", "Domain Admins"),
                    ("TargetDomainName", "CORP"),
                    ("TargetSid", "S-1-5-21-1-2-3-512"),
                    ("SubjectUserSid", "S-1-5-21-1-2-3-500"),
                    ("SubjectUserName", "Administrator"),
                    ("SubjectDomainName", "CORP"),
                ],
            );
            assert_eq!(v["group"]["name"], "Domain Admins", "{id}");
            assert_eq!(v["group"]["domain"], "CORP", "{id}");
            assert_eq!(v["group"]["id"], "S-1-5-21-1-2-3-512", "{id}");
            assert_eq!(
                v["user"]["target"],
                json!({"name": "Smith, Bob", "id": "S-1-5-21-1-2-3-1105"}),
                "{id}"
            );
            assert_eq!(v["user"]["name"], "Administrator", "{id}");
        }

        // A member without a SID: no user.target.id.
        let v = security(
            4733,
            &[
                ("MemberName", "CN=bob,OU=Staff,DC=corp,DC=local"),
                ("MemberSid", "S-1-0-0"),
                ("TargetUserName", "Remote Desktop Users"),
                ("TargetSid", "S-1-5-32-555"),
            ],
        );
        assert_eq!(v["user"]["target"], json!({"name": "bob"}));
        assert!(v["group"].get("domain").is_none(), "{v:#}");
    }

    #[test]
    fn common_names_of_members() {
        let cn = |n: &str| common_name(n);
        assert_eq!(cn("CN=bob,OU=Users,DC=corp").as_deref(), Some("bob"));
        assert_eq!(cn("cn=bob").as_deref(), Some("bob"));
        assert_eq!(cn("CN=a\\,b\\2Cc,DC=x").as_deref(), Some("a,b,c"));
        assert_eq!(
            cn("CN=J\\C3\\A9r\\C3\\B4me,DC=x").as_deref(),
            Some("Jérôme")
        );
        assert_eq!(cn("CN=x+UID=1,DC=y").as_deref(), Some("x"));
        assert_eq!(cn("CN=,DC=y"), None);
        assert_eq!(cn("CORP\\bob").as_deref(), Some("CORP\\bob"));
    }

    #[test]
    fn account_events_target_sid() {
        for id in [4720, 4722, 4723, 4724, 4725, 4726, 4738, 4740, 4767, 4781] {
            let v = security(
                id,
                &[
                    ("TargetUserName", "svc-backup2"),
                    ("TargetDomainName", "CORP"),
                    ("TargetSid", "S-1-5-21-1-2-3-1104"),
                    ("SubjectUserSid", "S-1-5-21-1-2-3-500"),
                    ("SubjectUserName", "Administrator"),
                    ("SubjectDomainName", "CORP"),
                ],
            );
            assert_eq!(
                v["user"]["target"],
                json!({"name": "svc-backup2", "domain": "CORP", "id": "S-1-5-21-1-2-3-1104"}),
                "{id}"
            );
            assert_eq!(v["user"]["id"], "S-1-5-21-1-2-3-500", "{id}");
            assert!(v.get("group").is_none(), "{id}");
        }
        // TargetUserSid, when there is one, comes first.
        let v = security(
            4724,
            &[
                ("TargetUserSid", "S-1-5-21-1-2-3-1001"),
                ("TargetSid", "S-1-5-21-1-2-3-1104"),
            ],
        );
        assert_eq!(v["user"]["target"]["id"], "S-1-5-21-1-2-3-1001");
        // Elsewhere TargetSid is not a user's (4731: a group was created).
        let v = security(
            4731,
            &[
                ("TargetUserName", "Backup Ops"),
                ("TargetSid", "S-1-5-21-1-2-3-1200"),
            ],
        );
        assert!(v["user"]["target"].get("id").is_none(), "{v:#}");
    }

    #[test]
    fn security_pid_zero_is_no_process() {
        for id in [4624, 4625] {
            let v = security(
                id,
                &[
                    ("TargetUserSid", "S-1-5-21-1-2-3-1001"),
                    ("TargetUserName", "alice"),
                    ("ProcessId", "0x0"),
                    ("ProcessName", "-"),
                ],
            );
            assert!(v.get("process").is_none(), "{v:#}");
            assert_eq!(v["winlog"]["event_data"]["ProcessId"], "0x0");
        }
        let v = security(4624, &[("ProcessId", "0")]);
        assert!(v.get("process").is_none(), "{v:#}");
        // The System process (4) is a process.
        let v = security(4624, &[("ProcessId", "0x4")]);
        assert_eq!(v["process"]["pid"], 4);
        // 4688 with a creator pid 0: the new process only.
        let v = security(4688, &[("NewProcessId", "0x1d18"), ("ProcessId", "0x0")]);
        assert_eq!(v["process"], json!({"pid": 0x1d18}));
        let v = security(4688, &[("NewProcessId", "0x0"), ("ProcessId", "0x1588")]);
        assert_eq!(v["process"], json!({"parent": {"pid": 0x1588}}));

        // Sysmon pids are what they say, 0 included.
        let v = sysmon(3, &[("ProcessId", FlatValue::Int(0))]);
        assert_eq!(v["process"]["pid"], 0);
    }
}
