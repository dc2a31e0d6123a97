//! Following the systemd journal through `journalctl -f -o json` (facilities auth and
//! authpriv), with the cursor persisted so a restart continues where it stopped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::DateTime;
use serde_json::Value;

use super::tail::Persist;
use super::{Origin, build_event, parse};
use crate::config::AuthSettings;
use crate::{CollectorContext, CollectorState, RunResult};

/// Wait before restarting a `journalctl` that exited.
const RESTART_DELAY: Duration = Duration::from_secs(5);
/// Lines longer than this are skipped (the reader never holds more).
const MAX_LINE: usize = 256 * 1024;

/// Whether `journalctl --version` runs.
pub fn available(journalctl: &Path) -> bool {
    Command::new(journalctl)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The arguments: follow, JSON, auth (4) and authpriv (10) facilities, after the cursor (or
/// only new entries on a first run, unless `start_at_beginning`).
pub fn arguments(cursor: Option<&str>, start_at_beginning: bool) -> Vec<String> {
    let mut args: Vec<String> = ["-f", "-o", "json", "--no-pager"]
        .into_iter()
        .map(String::from)
        .collect();
    match cursor {
        Some(c) => {
            args.push(format!("--after-cursor={c}"));
            args.push("--no-tail".into());
        }
        None if start_at_beginning => args.push("--no-tail".into()),
        None => args.extend(["-n".to_owned(), "0".to_owned()]),
    }
    args.push("SYSLOG_FACILITY=4".into());
    args.push("SYSLOG_FACILITY=10".into());
    args
}

/// A journal entry's fields as text (`MESSAGE` may be an array of bytes).
fn field<'a>(entry: &'a Value, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    match entry.get(name)? {
        Value::String(s) => Some(std::borrow::Cow::Borrowed(s.as_str())),
        Value::Array(bytes) => {
            let raw: Vec<u8> = bytes
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            Some(std::borrow::Cow::Owned(
                String::from_utf8_lossy(&raw).into_owned(),
            ))
        }
        _ => None,
    }
}

/// One JSON line of `journalctl -o json` → (cursor, event).
pub fn entry_event(
    s: &AuthSettings,
    line: &str,
) -> Option<(String, Option<serde_json::Map<String, Value>>)> {
    let entry: Value = serde_json::from_str(line).ok()?;
    let cursor = field(&entry, "__CURSOR")?.into_owned();
    let program = field(&entry, "SYSLOG_IDENTIFIER")
        .or_else(|| field(&entry, "_COMM"))
        .map(|p| p.into_owned())
        .unwrap_or_default();
    let message = field(&entry, "MESSAGE").unwrap_or_default();
    let pid = field(&entry, "SYSLOG_PID")
        .or_else(|| field(&entry, "_PID"))
        .and_then(|p| p.parse().ok());
    let timestamp = field(&entry, "__REALTIME_TIMESTAMP")
        .and_then(|t| t.parse::<i64>().ok())
        .and_then(DateTime::from_timestamp_micros);
    let Some(ev) = parse::classify(&program, &message) else {
        return Some((cursor, None));
    };
    let original = match pid {
        Some(pid) => format!("{program}[{pid}]: {message}"),
        None => format!("{program}: {message}"),
    };
    let hostname = field(&entry, "_HOSTNAME");
    let origin = Origin {
        file: None,
        hostname: hostname.as_deref(),
        key: format!("journal:{cursor}"),
    };
    let doc = build_event(s, timestamp, &program, pid, &ev, &original, &origin);
    Some((cursor, doc))
}

fn spawn(
    s: &AuthSettings,
    cursor: Option<&str>,
) -> std::io::Result<(Child, crossbeam_channel::Receiver<String>)> {
    let mut child = Command::new(&s.journalctl)
        .args(arguments(cursor, s.start_at_beginning))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("no stdout"))?;
    let (tx, rx) = crossbeam_channel::bounded::<String>(1024);
    std::thread::Builder::new()
        .name("dozor-auth-journal".into())
        .spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match (&mut reader)
                    .take(MAX_LINE as u64)
                    .read_until(b'\n', &mut buf)
                {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if buf.last() != Some(&b'\n') && buf.len() >= MAX_LINE {
                            // Overlong: skip to the end of the line.
                            let mut sink = Vec::new();
                            let _ = reader.read_until(b'\n', &mut sink);
                            continue;
                        }
                        let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        })?;
    Ok((child, rx))
}

use std::io::Read;

pub fn run(s: &AuthSettings, ctx: &CollectorContext, persist: &mut Persist) -> RunResult {
    let mut unknown = 0u64;
    'restart: loop {
        let cursor = persist.state.journal_cursor.clone();
        let (mut child, rx) = match spawn(s, cursor.as_deref()) {
            Ok(x) => x,
            Err(e) => {
                ctx.health.set(
                    "auth",
                    CollectorState::Degraded,
                    Some(format!("cannot run {}: {e}", s.journalctl.display())),
                );
                if ctx.shutdown.wait_timeout(RESTART_DELAY) {
                    break 'restart;
                }
                continue 'restart;
            }
        };
        ctx.health.set(
            "auth",
            CollectorState::Running,
            Some("following the journal (journalctl)".into()),
        );
        let stopped = loop {
            if ctx.shutdown.is_triggered() {
                break true;
            }
            match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(line) => {
                    if let Some((cursor, doc)) = entry_event(s, &line) {
                        if let Some(doc) = doc {
                            if ctx.emit(doc).is_err() {
                                break true;
                            }
                        } else {
                            unknown += 1;
                        }
                        persist.state.journal_cursor = Some(cursor);
                        persist.touch();
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break false,
            }
            persist.save(false);
        };
        let _ = child.kill();
        let status = child.wait();
        persist.save(true);
        if stopped {
            break 'restart;
        }
        let status = status
            .map(|s| s.to_string())
            .unwrap_or_else(|e| e.to_string());
        ctx.health.set(
            "auth",
            CollectorState::Degraded,
            Some(format!("journalctl exited ({status}), restarting")),
        );
        if ctx.shutdown.wait_timeout(RESTART_DELAY) {
            break 'restart;
        }
    }
    tracing::debug!(unknown, "journal follower stopped");
    persist.save(true);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CollectConfig;

    #[test]
    fn arguments_with_and_without_cursor() {
        let a = arguments(Some("s=abc;i=1"), false);
        assert!(a.contains(&"--after-cursor=s=abc;i=1".to_owned()));
        assert!(a.contains(&"--no-tail".to_owned()));
        let a = arguments(None, false);
        assert!(a.windows(2).any(|w| w[0] == "-n" && w[1] == "0"));
        assert!(a.contains(&"SYSLOG_FACILITY=10".to_owned()));
    }

    #[test]
    fn journal_entries() {
        let s = CollectConfig::default().resolve().expect("settings").auth;
        let line = r#"{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1763720480123456","SYSLOG_IDENTIFIER":"sshd","_PID":"991","MESSAGE":"Failed password for root from 192.0.2.4 port 50000 ssh2","_HOSTNAME":"web1"}"#;
        let (cursor, doc) = entry_event(&s, line).expect("entry");
        assert_eq!(cursor, "s=1;i=2");
        let doc = doc.expect("event");
        assert_eq!(doc["@timestamp"], "2025-11-21T10:21:20.123Z");
        assert_eq!(doc["event"]["outcome"], "failure");
        assert_eq!(doc["process"]["pid"], 991);
        assert_eq!(
            doc["message"],
            "sshd[991]: Failed password for root from 192.0.2.4 port 50000 ssh2"
        );
        assert_eq!(
            doc["event"]["id"],
            crate::ecs::event_id_for("journal:s=1;i=2")
        );
        // MESSAGE as bytes, and an unrelated entry.
        let line = r#"{"__CURSOR":"c2","SYSLOG_IDENTIFIER":"su","MESSAGE":[40,116,111,32,114,111,111,116,41,32,97,32,111,110,32,112,116,115,47,48]}"#;
        let (_, doc) = entry_event(&s, line).expect("entry");
        assert_eq!(doc.expect("event")["user"]["effective"]["name"], "root");
        let (_, doc) = entry_event(
            &s,
            r#"{"__CURSOR":"c3","SYSLOG_IDENTIFIER":"kernel","MESSAGE":"x"}"#,
        )
        .expect("entry");
        assert!(doc.is_none());
        assert!(entry_event(&s, "not json").is_none());
    }
}
