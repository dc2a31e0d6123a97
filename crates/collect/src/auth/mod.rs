//! Authentication log collector: tails `/var/log/auth.log` / `/var/log/secure` (rotation and
//! truncation handled, offsets persisted per file identity) or follows the systemd journal
//! through `journalctl`, and turns sshd / sudo / su / PAM / logind lines into events.

#[cfg(unix)]
mod journal;
pub mod parse;
#[cfg(unix)]
mod tail;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use self::parse::{AuthEvent, Outcome, SessionEdge};
use crate::config::AuthSettings;
use crate::ecs;

/// Whether this OS has the collector.
pub const SUPPORTED: bool = cfg!(unix);

/// Where a line came from, for `log.*` and the event id.
pub struct Origin<'a> {
    /// File path, or None for the journal.
    pub file: Option<&'a str>,
    /// The host name the line carries (syslog header / journal `_HOSTNAME`).
    pub hostname: Option<&'a str>,
    /// The natural unique key of the line (file identity + offset + text, or the cursor).
    pub key: String,
}

/// Counters of what was read.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub lines: u64,
    pub events: u64,
    pub unknown: u64,
    pub excluded: u64,
}

/// Builds the event of a classified line, or None when excluded by the settings.
pub fn build_event(
    s: &AuthSettings,
    timestamp: Option<DateTime<Utc>>,
    program: &str,
    pid: Option<u32>,
    ev: &AuthEvent,
    original: &str,
    origin: &Origin<'_>,
) -> Option<Map<String, Value>> {
    let service_excluded = s.exclude_services.iter().any(|x| {
        x.eq_ignore_ascii_case(program)
            || ev
                .service
                .as_deref()
                .is_some_and(|sv| x.eq_ignore_ascii_case(sv))
    });
    let user_excluded = ev
        .user
        .as_deref()
        .is_some_and(|u| s.exclude_users.iter().any(|x| x == u));
    if service_excluded || user_excluded {
        return None;
    }
    let (categories, types): (&[&str], &[&str]) = match ev.session {
        Some(SessionEdge::Start) => (&["authentication", "session"], &["start"]),
        Some(SessionEdge::End) => (&["authentication", "session"], &["end"]),
        None => (&["authentication"], &["info"]),
    };
    let ts = ecs::rfc3339(timestamp.unwrap_or_else(Utc::now));
    let mut doc = ecs::base_event(ts, "auth", categories, types, ev.action);
    ecs::put(&mut doc, "event.id", ecs::event_id_for(&origin.key));
    ecs::put(&mut doc, "event.created", ecs::now_rfc3339());
    if let Some(outcome) = ev.outcome {
        let o = match outcome {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        };
        ecs::put(&mut doc, "event.outcome", o);
    }
    if let Some(reason) = &ev.reason {
        ecs::put(&mut doc, "event.reason", reason.clone());
    }
    doc.insert("message".into(), original.into());
    doc.insert(
        "process".into(),
        json!({ "name": program, "pid": pid, "working_directory": ev.pwd }),
    );
    let mut user = Map::new();
    if let Some(u) = ev.user.as_ref().filter(|u| !u.is_empty()) {
        user.insert("name".into(), u.clone().into());
    }
    if let Some(e) = &ev.effective_user {
        user.insert("effective".into(), json!({ "name": e }));
    }
    if !user.is_empty() {
        doc.insert("user".into(), Value::Object(user));
    }
    if ev.source_ip.is_some() || ev.source_port.is_some() {
        doc.insert(
            "source".into(),
            json!({ "ip": ev.source_ip.map(|i| i.to_string()), "port": ev.source_port }),
        );
    }
    let mut users: Vec<String> = [&ev.user, &ev.effective_user]
        .into_iter()
        .flatten()
        .filter(|u| !u.is_empty())
        .cloned()
        .collect();
    users.dedup();
    let related = json!({
        "user": (!users.is_empty()).then_some(users),
        "ip": ev.source_ip.map(|i| vec![i.to_string()]),
    });
    doc.insert("related".into(), related);
    if let Some(path) = origin.file {
        ecs::put(&mut doc, "log.file.path", path);
    }
    if let Some(host) = origin.hostname {
        ecs::put(&mut doc, "log.syslog.hostname", host);
    }
    ecs::put(&mut doc, "log.syslog.appname", program);
    let mut dozor = json!({
        "ssh": { "method": ev.method, "key": ev.key },
        "sudo": { "command": ev.command },
        "tty": ev.tty,
        "pam_service": ev.service,
        "session_id": ev.session_id,
    });
    ecs::prune(&mut dozor);
    doc.insert("dozor".into(), dozor);
    Some(doc)
}

#[cfg(unix)]
pub fn run(s: &AuthSettings, ctx: &crate::CollectorContext) -> crate::RunResult {
    tail::run(s, ctx)
}

#[cfg(not(unix))]
pub fn run(_s: &AuthSettings, _ctx: &crate::CollectorContext) -> crate::RunResult {
    Ok(())
}
