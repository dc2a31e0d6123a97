//! Parsers of authentication log lines: the syslog header (classic and RFC 3339 timestamps)
//! and the messages of sshd, sudo, su, PAM and systemd-logind. Unknown messages give `None`.

use std::net::IpAddr;

use chrono::{DateTime, Datelike, Duration, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// The parts of a syslog line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogLine<'a> {
    pub timestamp: Option<DateTime<Utc>>,
    pub hostname: Option<&'a str>,
    pub program: &'a str,
    pub pid: Option<u32>,
    pub message: &'a str,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parses `Nov 21 10:21:20 host prog[123]: message` (year inferred from `now`: the latest
/// year that does not put the line more than a day in the future) or
/// `2026-11-21T10:21:20.123456+00:00 host prog[123]: message`.
pub fn parse_syslog<'a, Tz: TimeZone>(line: &'a str, now: &DateTime<Tz>) -> Option<SyslogLine<'a>> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (timestamp, rest) = if line.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        let (ts, rest) = line.split_once(' ')?;
        let t = DateTime::parse_from_rfc3339(ts).ok()?.with_timezone(&Utc);
        (Some(t), rest)
    } else {
        // "Nov 21 10:21:20" / "Nov  1 10:21:20": 15 characters.
        let ts = line.get(..15)?;
        let rest = line.get(16..)?;
        (classic_timestamp(ts, now), rest)
    };
    let (hostname, rest) = rest.split_once(' ')?;
    let (tag, message) = rest
        .split_once(": ")
        .or_else(|| rest.strip_suffix(':').map(|t| (t, "")))?;
    if tag.is_empty() || tag.contains(' ') {
        return None;
    }
    let (program, pid) = match tag.split_once('[') {
        Some((prog, pid)) => (prog, pid.strip_suffix(']').and_then(|p| p.parse().ok())),
        None => (tag, None),
    };
    Some(SyslogLine {
        timestamp,
        hostname: Some(hostname),
        program,
        pid,
        message,
    })
}

fn classic_timestamp<Tz: TimeZone>(ts: &str, now: &DateTime<Tz>) -> Option<DateTime<Utc>> {
    let month = MONTHS.iter().position(|m| ts.get(..3) == Some(*m))? as u32 + 1;
    let day: u32 = ts.get(4..6)?.trim().parse().ok()?;
    let time = chrono::NaiveTime::parse_from_str(ts.get(7..15)?, "%H:%M:%S").ok()?;
    let local_now = now.with_timezone(&Local);
    for year in [local_now.year(), local_now.year() - 1] {
        let Some(date) = NaiveDate::from_ymd_opt(year, month, day) else {
            continue; // Feb 29 of a non-leap year
        };
        let naive = NaiveDateTime::new(date, time);
        let Some(t) = Local.from_local_datetime(&naive).earliest() else {
            continue;
        };
        if t <= local_now + Duration::days(1) {
            return Some(t.with_timezone(&Utc));
        }
    }
    None
}

/// Whether the attempt worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

/// A session boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEdge {
    Start,
    End,
}

/// What an authentication line says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthEvent {
    /// `ssh-login`, `ssh-invalid-user`, `ssh-connection-closed`, `ssh-max-auth-attempts`,
    /// `sudo`, `su`, `authentication-failure`, `session-opened`, `session-closed`.
    pub action: &'static str,
    pub outcome: Option<Outcome>,
    pub session: Option<SessionEdge>,
    /// The user who authenticated (or tried to).
    pub user: Option<String>,
    /// The user whose privileges were obtained (sudo/su target).
    pub effective_user: Option<String>,
    pub source_ip: Option<IpAddr>,
    pub source_port: Option<u16>,
    /// ssh method: password, publickey, keyboard-interactive/pam...
    pub method: Option<String>,
    /// The key type and fingerprint of a publickey login.
    pub key: Option<String>,
    pub reason: Option<String>,
    pub tty: Option<String>,
    pub pwd: Option<String>,
    pub command: Option<String>,
    /// The PAM service (`sshd`, `sudo`, `su-l`, ...).
    pub service: Option<String>,
    /// logind session id.
    pub session_id: Option<String>,
}

impl AuthEvent {
    fn new(action: &'static str, outcome: Outcome) -> Self {
        AuthEvent {
            action,
            outcome: Some(outcome),
            ..AuthEvent::default()
        }
    }

    /// The source of the attempt from `<address> port <n>` at `words[at..]`.
    fn source_at(&mut self, words: &[&str], at: usize) {
        self.source_ip = words.get(at).and_then(|s| ip(s));
        self.source_port = port(words, at + 1);
    }
}

/// Classifies one message of `program`; `None` for lines that are not authentication events.
pub fn classify(program: &str, message: &str) -> Option<AuthEvent> {
    let message = message.trim();
    if let Some(ev) = pam(message) {
        return Some(ev);
    }
    match program {
        "sshd" | "sshd-session" => sshd(message),
        "sudo" => sudo(message),
        "su" => su(message),
        "systemd-logind" => logind(message),
        _ => None,
    }
}

/// The words after `prefix`, if the text starts with it.
fn words_after<'a>(text: &'a str, prefix: &str) -> Option<Vec<&'a str>> {
    Some(
        text.strip_prefix(prefix)?
            .split_ascii_whitespace()
            .collect(),
    )
}

fn ip(text: &str) -> Option<IpAddr> {
    text.parse().ok()
}

fn port(words: &[&str], at: usize) -> Option<u16> {
    (words.get(at) == Some(&"port"))
        .then(|| words.get(at + 1)?.trim_end_matches(':').parse().ok())
        .flatten()
}

fn sshd(m: &str) -> Option<AuthEvent> {
    // Accepted publickey for alice from 10.0.0.5 port 52311 ssh2: ED25519 SHA256:...
    if let Some(w) = words_after(m, "Accepted ")
        && w.get(1) == Some(&"for")
        && w.get(3) == Some(&"from")
    {
        let mut ev = AuthEvent::new("ssh-login", Outcome::Success);
        ev.session = Some(SessionEdge::Start);
        ev.method = Some(w[0].to_owned());
        ev.user = Some(w[2].to_owned());
        ev.source_at(&w, 4);
        if let Some((_, key)) = m.split_once(": ") {
            ev.key = Some(key.trim().to_owned());
        }
        return Some(ev);
    }
    // Failed password for [invalid user ]bob from 1.2.3.4 port 4444 ssh2
    if let Some(w) = words_after(m, "Failed ")
        && w.get(1) == Some(&"for")
    {
        let mut ev = AuthEvent::new("ssh-login", Outcome::Failure);
        ev.method = Some(w[0].to_owned());
        let mut i = 2;
        if w.get(2) == Some(&"invalid") && w.get(3) == Some(&"user") {
            ev.reason = Some("invalid user".into());
            i = 4;
        }
        // An empty user name leaves "for invalid user from".
        if w.get(i) == Some(&"from") {
            ev.user = Some(String::new());
        } else {
            ev.user = w.get(i).map(|u| (*u).to_owned());
            i += 1;
        }
        if w.get(i) == Some(&"from") {
            ev.source_at(&w, i + 1);
        }
        return Some(ev);
    }
    // Invalid user admin from 1.2.3.4 port 4444
    if let Some(w) = words_after(m, "Invalid user ") {
        let mut ev = AuthEvent::new("ssh-invalid-user", Outcome::Failure);
        ev.reason = Some("invalid user".into());
        let (user, from_at) = if w.first() == Some(&"from") {
            (String::new(), 0)
        } else {
            (w.first().map(|u| (*u).to_owned()).unwrap_or_default(), 1)
        };
        ev.user = Some(user);
        if w.get(from_at) == Some(&"from") {
            ev.source_at(&w, from_at + 1);
        }
        return Some(ev);
    }
    // Connection closed by authenticating user alice 1.2.3.4 port 4444 [preauth]
    // Connection closed by invalid user admin 1.2.3.4 port 4444 [preauth]
    // Disconnected from authenticating user root 1.2.3.4 port 4444 [preauth]
    for (prefix, invalid) in [
        ("Connection closed by authenticating user ", false),
        ("Connection closed by invalid user ", true),
        ("Disconnected from authenticating user ", false),
        ("Disconnected from invalid user ", true),
    ] {
        if let Some(w) = words_after(m, prefix) {
            let mut ev = AuthEvent::new("ssh-connection-closed", Outcome::Failure);
            // The user name may be empty: "invalid user  1.2.3.4 port 22".
            let (user, ip_at) = match w.first().and_then(|s| ip(s)) {
                Some(_) if w.get(1) == Some(&"port") => (String::new(), 0),
                _ => (w.first().map(|u| (*u).to_owned()).unwrap_or_default(), 1),
            };
            ev.user = Some(user);
            ev.source_at(&w, ip_at);
            ev.reason = Some(if invalid {
                "invalid user".into()
            } else {
                "connection closed during authentication".into()
            });
            return Some(ev);
        }
    }
    // error: maximum authentication attempts exceeded for [invalid user ]root from 1.2.3.4 port 4444 ssh2 [preauth]
    let m2 = m.strip_prefix("error: ").unwrap_or(m);
    if let Some(w) = words_after(m2, "maximum authentication attempts exceeded for ") {
        let mut ev = AuthEvent::new("ssh-max-auth-attempts", Outcome::Failure);
        ev.reason = Some("maximum authentication attempts exceeded".into());
        let mut i = 0;
        if w.first() == Some(&"invalid") && w.get(1) == Some(&"user") {
            i = 2;
        }
        ev.user = w.get(i).map(|u| (*u).to_owned());
        if w.get(i + 1) == Some(&"from") {
            ev.source_at(&w, i + 2);
        }
        return Some(ev);
    }
    // Disconnecting authenticating user root 1.2.3.4 port 4444: Too many authentication failures [preauth]
    for prefix in [
        "Disconnecting authenticating user ",
        "Disconnecting invalid user ",
    ] {
        if let Some(w) = words_after(m, prefix) {
            let mut ev = AuthEvent::new("ssh-max-auth-attempts", Outcome::Failure);
            ev.user = w.first().map(|u| (*u).to_owned());
            ev.source_at(&w, 1);
            ev.reason = m
                .split_once(": ")
                .map(|(_, r)| r.trim_end_matches(" [preauth]").to_owned());
            return Some(ev);
        }
    }
    None
}

/// `alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id -u`
/// `alice : 3 incorrect password attempts ; TTY=pts/0 ; ... ; COMMAND=/usr/bin/id`
fn sudo(m: &str) -> Option<AuthEvent> {
    let (user, rest) = m.split_once(" : ")?;
    let user = user.trim();
    if user.is_empty() || user.contains(' ') {
        return None;
    }
    let mut ev = AuthEvent::new("sudo", Outcome::Success);
    ev.user = Some(user.to_owned());
    let mut rest = rest;
    let mut saw_key = false;
    loop {
        let (item, next) = match rest.split_once(" ; ") {
            Some((item, next)) if !item.starts_with("COMMAND=") => (item, Some(next)),
            _ => (rest, None),
        };
        let item = item.trim();
        match item.split_once('=') {
            Some(("TTY", v)) => ev.tty = Some(v.to_owned()),
            Some(("PWD", v)) => ev.pwd = Some(v.to_owned()),
            Some(("USER", v)) => ev.effective_user = Some(v.to_owned()),
            Some(("COMMAND", v)) => ev.command = Some(v.to_owned()),
            Some((k, _)) if k.chars().all(|c| c.is_ascii_uppercase() || c == '_') => {}
            _ => {
                if !item.is_empty() {
                    ev.outcome = Some(Outcome::Failure);
                    ev.reason = Some(item.to_owned());
                }
            }
        }
        saw_key |= item.contains('=');
        match next {
            Some(n) => rest = n,
            None => break,
        }
    }
    saw_key.then_some(ev)
}

/// util-linux `(to root) alice on pts/0`, `FAILED SU (to root) alice on pts/0`;
/// shadow `Successful su for root by alice`, `FAILED su for root by alice`,
/// `+ pts/0 alice:root`, `- pts/0 alice:root`.
fn su(m: &str) -> Option<AuthEvent> {
    let (failed, body) = match m.strip_prefix("FAILED SU ") {
        Some(b) => (true, b),
        None => (false, m),
    };
    if let Some(rest) = body.strip_prefix("(to ") {
        let (target, rest) = rest.split_once(") ")?;
        let w: Vec<&str> = rest.split_ascii_whitespace().collect();
        let mut ev = AuthEvent::new(
            "su",
            if failed {
                Outcome::Failure
            } else {
                Outcome::Success
            },
        );
        ev.effective_user = Some(target.to_owned());
        ev.user = w.first().map(|u| (*u).to_owned());
        if w.get(1) == Some(&"on") {
            ev.tty = w.get(2).map(|t| (*t).to_owned());
        }
        return Some(ev);
    }
    for (prefix, outcome) in [
        ("Successful su for ", Outcome::Success),
        ("FAILED su for ", Outcome::Failure),
    ] {
        if let Some(w) = words_after(m, prefix)
            && w.get(1) == Some(&"by")
        {
            let mut ev = AuthEvent::new("su", outcome);
            ev.effective_user = Some(w[0].to_owned());
            ev.user = w.get(2).map(|u| (*u).to_owned());
            return Some(ev);
        }
    }
    let (outcome, rest) = match m.split_at_checked(2)? {
        ("+ ", rest) => (Outcome::Success, rest),
        ("- ", rest) => (Outcome::Failure, rest),
        _ => return None,
    };
    let (tty, users) = rest.split_once(' ')?;
    let (user, target) = users.trim().split_once(':')?;
    let mut ev = AuthEvent::new("su", outcome);
    ev.tty = Some(tty.to_owned());
    ev.user = Some(user.to_owned());
    ev.effective_user = Some(target.to_owned());
    Some(ev)
}

/// Services whose "session opened for user X by Y" means Y became X.
fn switches_user(service: &str) -> bool {
    matches!(
        service,
        "su" | "su-l" | "sudo" | "sudo-i" | "runuser" | "runuser-l" | "doas" | "pkexec"
    )
}

/// `alice(uid=1000)` → alice; `(uid=0)` → None.
fn user_before_paren(s: &str) -> Option<String> {
    let name = s.split('(').next().unwrap_or(s).trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// `pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)`,
/// `pam_unix(su:session): session closed for user root`,
/// `pam_unix(sudo:auth): authentication failure; logname=alice uid=1000 euid=0 tty=/dev/pts/0 ruser=alice rhost=  user=alice`
fn pam(m: &str) -> Option<AuthEvent> {
    if !m.starts_with("pam_") {
        return None;
    }
    let open = m.find('(')?;
    let close = m[open..].find("): ")? + open;
    let (service, kind) = m[open + 1..close].split_once(':')?;
    let body = &m[close + 3..];
    let service = service.to_owned();
    match kind {
        "session" => {
            let (edge, rest) = if let Some(r) = body.strip_prefix("session opened for user ") {
                (SessionEdge::Start, r)
            } else if let Some(r) = body.strip_prefix("session closed for user ") {
                (SessionEdge::End, r)
            } else {
                return None;
            };
            let (for_user, by) = match rest.split_once(" by ") {
                Some((u, by)) => (u, Some(by)),
                None => (rest, None),
            };
            let for_user = user_before_paren(for_user);
            let by_user = by.and_then(user_before_paren);
            let action = match edge {
                SessionEdge::Start => "session-opened",
                SessionEdge::End => "session-closed",
            };
            let mut ev = AuthEvent::new(action, Outcome::Success);
            ev.session = Some(edge);
            if switches_user(&service) && by_user.is_some() {
                ev.user = by_user;
                ev.effective_user = for_user;
            } else {
                ev.user = for_user;
            }
            ev.service = Some(service);
            Some(ev)
        }
        "auth" => {
            let fields = body.strip_prefix("authentication failure; ")?;
            let mut ev = AuthEvent::new("authentication-failure", Outcome::Failure);
            let mut logname = None;
            let mut ruser = None;
            let mut target = None;
            for pair in fields.split_ascii_whitespace() {
                match pair.split_once('=') {
                    Some(("logname", v)) if !v.is_empty() => logname = Some(v.to_owned()),
                    Some(("ruser", v)) if !v.is_empty() => ruser = Some(v.to_owned()),
                    Some(("user", v)) if !v.is_empty() => target = Some(v.to_owned()),
                    Some(("tty", v)) if !v.is_empty() => ev.tty = Some(v.to_owned()),
                    Some(("rhost", v)) if !v.is_empty() => ev.source_ip = ip(v),
                    _ => {}
                }
            }
            if switches_user(&service) {
                ev.user = ruser.or(logname);
                ev.effective_user = target;
            } else {
                ev.user = target.or(ruser);
            }
            ev.reason = Some("authentication failure".into());
            ev.service = Some(service);
            Some(ev)
        }
        _ => None,
    }
}

/// `New session 3 of user alice.`, `Session 3 logged out. Waiting for processes to exit.`
fn logind(m: &str) -> Option<AuthEvent> {
    if let Some(w) = words_after(m, "New session ")
        && w.get(1) == Some(&"of")
        && w.get(2) == Some(&"user")
    {
        let mut ev = AuthEvent::new("session-opened", Outcome::Success);
        ev.session = Some(SessionEdge::Start);
        ev.session_id = Some(w[0].to_owned());
        ev.user = w.get(3).map(|u| u.trim_end_matches('.').to_owned());
        ev.service = Some("systemd-logind".into());
        return Some(ev);
    }
    if let Some(w) = words_after(m, "Session ")
        && w.get(1) == Some(&"logged")
        && w.get(2).is_some_and(|s| s.starts_with("out"))
    {
        let mut ev = AuthEvent::new("session-closed", Outcome::Success);
        ev.session = Some(SessionEdge::End);
        ev.session_id = Some(w[0].to_owned());
        ev.service = Some("systemd-logind".into());
        return Some(ev);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Local> {
        Local
            .with_ymd_and_hms(2026, 11, 21, 12, 0, 0)
            .earliest()
            .expect("valid")
    }

    fn line(l: &str) -> (SyslogLine<'_>, Option<AuthEvent>) {
        let s = parse_syslog(l, &now()).unwrap_or_else(|| panic!("header of {l:?}"));
        let ev = classify(s.program, s.message);
        (s, ev)
    }

    fn ev(l: &str) -> AuthEvent {
        line(l).1.unwrap_or_else(|| panic!("no event for {l:?}"))
    }

    #[test]
    fn classic_header_and_year_inference() {
        let (s, _) = line("Nov 21 10:21:20 web1 sshd[1234]: Server listening on 0.0.0.0 port 22.");
        assert_eq!(s.hostname, Some("web1"));
        assert_eq!(s.program, "sshd");
        assert_eq!(s.pid, Some(1234));
        assert_eq!(s.message, "Server listening on 0.0.0.0 port 22.");
        let expected = Local
            .with_ymd_and_hms(2026, 11, 21, 10, 21, 20)
            .earliest()
            .map(|t| t.with_timezone(&Utc));
        assert_eq!(s.timestamp, expected);
        // December lines read in late November belong to last year.
        let (s, _) = line("Dec 31 23:59:59 web1 CRON[1]: x");
        assert_eq!(
            s.timestamp.map(|t| t.with_timezone(&Local).year()),
            Some(2025)
        );
        // Space-padded day.
        let (s, _) = line("Nov  1 00:00:01 web1 su: (to root) alice on pts/0");
        assert_eq!(s.timestamp.map(|t| t.with_timezone(&Local).day()), Some(1));
        assert_eq!(s.pid, None);
    }

    #[test]
    fn rfc3339_header() {
        let (s, e) = line(
            "2026-11-21T10:21:20.123456+00:00 web1 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id",
        );
        assert_eq!(
            s.timestamp.map(|t| t.to_rfc3339()),
            Some("2026-11-21T10:21:20.123456+00:00".to_owned())
        );
        assert_eq!(s.program, "sudo");
        assert_eq!(e.map(|e| e.action), Some("sudo"));
        let (s, _) = line("2026-11-21T13:21:20+03:00 web1 sshd[9]: x");
        assert_eq!(
            s.timestamp.map(|t| t.to_rfc3339()),
            Some("2026-11-21T10:21:20+00:00".to_owned())
        );
    }

    #[test]
    fn broken_headers() {
        for l in [
            "",
            "garbage",
            "Nov 21 10:21:20",
            "Nov 21 10:21:20 host",
            "2026-13-45T99:00:00Z host sshd[1]: x",
            "Foo 21 10:21:20 host sshd[1]: x",
        ] {
            let parsed = parse_syslog(l, &now());
            assert!(
                parsed.is_none() || parsed.is_some_and(|p| p.timestamp.is_none()),
                "{l:?}"
            );
        }
    }

    #[test]
    fn sshd_accepted() {
        let e = ev(
            "Nov 21 10:21:20 web1 sshd[1234]: Accepted password for alice from 10.0.0.5 port 52311 ssh2",
        );
        assert_eq!(e.action, "ssh-login");
        assert_eq!(e.outcome, Some(Outcome::Success));
        assert_eq!(e.method.as_deref(), Some("password"));
        assert_eq!(e.user.as_deref(), Some("alice"));
        assert_eq!(e.source_ip, "10.0.0.5".parse().ok());
        assert_eq!(e.source_port, Some(52311));
        let e = ev(
            "Nov 21 10:21:20 web1 sshd[1234]: Accepted publickey for bob from 2001:db8::7 port 40022 ssh2: ED25519 SHA256:Zm9vYmFyYmF6cXV4",
        );
        assert_eq!(e.method.as_deref(), Some("publickey"));
        assert_eq!(e.source_ip, "2001:db8::7".parse().ok());
        assert_eq!(e.key.as_deref(), Some("ED25519 SHA256:Zm9vYmFyYmF6cXV4"));
    }

    #[test]
    fn sshd_failures() {
        let e = ev(
            "Nov 21 10:21:20 web1 sshd[1234]: Failed password for alice from 10.0.0.5 port 52311 ssh2",
        );
        assert_eq!((e.action, e.outcome), ("ssh-login", Some(Outcome::Failure)));
        assert_eq!(e.user.as_deref(), Some("alice"));
        assert_eq!(e.reason, None);
        let e = ev(
            "Nov 21 10:21:20 web1 sshd[1234]: Failed password for invalid user admin from 203.0.113.9 port 4444 ssh2",
        );
        assert_eq!(e.user.as_deref(), Some("admin"));
        assert_eq!(e.reason.as_deref(), Some("invalid user"));
        assert_eq!(e.source_ip, "203.0.113.9".parse().ok());
        assert_eq!(e.source_port, Some(4444));
        let e = ev(
            "Nov 21 10:21:20 web1 sshd[1234]: Failed none for invalid user  from 203.0.113.9 port 4444 ssh2",
        );
        assert_eq!(e.user.as_deref(), Some(""));
        assert_eq!(e.source_ip, "203.0.113.9".parse().ok());
        let e =
            ev("Nov 21 10:21:20 web1 sshd[1234]: Invalid user oracle from 203.0.113.9 port 51000");
        assert_eq!(
            (e.action, e.user.as_deref()),
            ("ssh-invalid-user", Some("oracle"))
        );
        assert_eq!(e.source_port, Some(51000));
        let e = ev(
            "Nov 21 10:21:20 web1 sshd[1234]: Connection closed by authenticating user root 203.0.113.9 port 38412 [preauth]",
        );
        assert_eq!(
            (e.action, e.user.as_deref()),
            ("ssh-connection-closed", Some("root"))
        );
        assert_eq!(e.source_ip, "203.0.113.9".parse().ok());
        assert_eq!(e.source_port, Some(38412));
        let e = ev(
            "Nov 21 10:21:20 web1 sshd[1234]: Connection closed by invalid user test 203.0.113.9 port 38413 [preauth]",
        );
        assert_eq!(e.reason.as_deref(), Some("invalid user"));
        let e = ev(
            "Nov 21 10:21:20 web1 sshd[1234]: error: maximum authentication attempts exceeded for root from 203.0.113.9 port 38414 ssh2 [preauth]",
        );
        assert_eq!(
            (e.action, e.user.as_deref()),
            ("ssh-max-auth-attempts", Some("root"))
        );
        assert_eq!(e.source_port, Some(38414));
        let e = ev(
            "Nov 21 10:21:20 web1 sshd[1234]: error: maximum authentication attempts exceeded for invalid user pi from 203.0.113.9 port 38415 ssh2 [preauth]",
        );
        assert_eq!(e.user.as_deref(), Some("pi"));
        let e = ev(
            "Nov 21 10:21:20 web1 sshd[1234]: Disconnecting authenticating user root 203.0.113.9 port 38416: Too many authentication failures [preauth]",
        );
        assert_eq!(
            e.reason.as_deref(),
            Some("Too many authentication failures")
        );
        assert_eq!(e.source_port, Some(38416));
        let e = ev(
            "Nov 21 10:21:20 web1 sshd[1234]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root",
        );
        assert_eq!(e.action, "authentication-failure");
        assert_eq!(e.user.as_deref(), Some("root"));
        assert_eq!(e.source_ip, "203.0.113.9".parse().ok());
        assert_eq!(e.service.as_deref(), Some("sshd"));
    }

    #[test]
    fn sshd_sessions_and_noise() {
        let e = ev(
            "Nov 21 10:21:20 web1 sshd[1234]: pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)",
        );
        assert_eq!(
            (e.action, e.session),
            ("session-opened", Some(SessionEdge::Start))
        );
        assert_eq!(e.user.as_deref(), Some("alice"));
        assert_eq!(e.effective_user, None);
        let e = ev(
            "Nov 21 10:21:20 web1 sshd[1234]: pam_unix(sshd:session): session closed for user alice",
        );
        assert_eq!(
            (e.action, e.session),
            ("session-closed", Some(SessionEdge::End))
        );
        for l in [
            "Nov 21 10:21:20 web1 sshd[1234]: Received disconnect from 10.0.0.5 port 52311:11: disconnected by user",
            "Nov 21 10:21:20 web1 sshd[1234]: Server listening on :: port 22.",
            "Nov 21 10:21:20 web1 sshd[1234]: pam_unix(sshd:auth): check pass; user unknown",
            "Nov 21 10:21:20 web1 kernel: [ 1.0] eth0: link up",
        ] {
            assert_eq!(line(l).1, None, "{l}");
        }
    }

    #[test]
    fn sudo_lines() {
        let e = ev(
            "Nov 21 10:21:20 web1 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id -u",
        );
        assert_eq!((e.action, e.outcome), ("sudo", Some(Outcome::Success)));
        assert_eq!(e.user.as_deref(), Some("alice"));
        assert_eq!(e.effective_user.as_deref(), Some("root"));
        assert_eq!(e.tty.as_deref(), Some("pts/0"));
        assert_eq!(e.pwd.as_deref(), Some("/home/alice"));
        assert_eq!(e.command.as_deref(), Some("/usr/bin/id -u"));
        let e = ev(
            "Nov 21 10:21:20 web1 sudo:    alice : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/cat /etc/shadow",
        );
        assert_eq!(e.outcome, Some(Outcome::Failure));
        assert_eq!(e.reason.as_deref(), Some("3 incorrect password attempts"));
        assert_eq!(e.command.as_deref(), Some("/usr/bin/cat /etc/shadow"));
        let e = ev(
            "Nov 21 10:21:20 web1 sudo:      bob : user NOT in sudoers ; TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/bin/sh",
        );
        assert_eq!(e.reason.as_deref(), Some("user NOT in sudoers"));
        // A command with " ; " inside stays whole; ENV and TSID are skipped.
        let e = ev(
            "Nov 21 10:21:20 web1 sudo:    alice : TTY=unknown ; PWD=/ ; USER=postgres ; ENV=A=1 ; COMMAND=/bin/sh -c echo a ; echo b",
        );
        assert_eq!(e.command.as_deref(), Some("/bin/sh -c echo a ; echo b"));
        assert_eq!(e.effective_user.as_deref(), Some("postgres"));
        assert_eq!(e.outcome, Some(Outcome::Success));
        let e = ev(
            "Nov 21 10:21:20 web1 sudo: pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)",
        );
        assert_eq!(e.user.as_deref(), Some("alice"));
        assert_eq!(e.effective_user.as_deref(), Some("root"));
        let e = ev(
            "Nov 21 10:21:20 web1 sudo: pam_unix(sudo:auth): authentication failure; logname=alice uid=1000 euid=0 tty=/dev/pts/0 ruser=alice rhost=  user=alice",
        );
        assert_eq!(e.outcome, Some(Outcome::Failure));
        assert_eq!(e.user.as_deref(), Some("alice"));
        assert_eq!(e.tty.as_deref(), Some("/dev/pts/0"));
        assert_eq!(e.source_ip, None);
        assert_eq!(
            line("Nov 21 10:21:20 web1 sudo: unable to resolve host web1").1,
            None
        );
    }

    #[test]
    fn su_lines() {
        let e = ev("Nov 21 10:21:20 web1 su[777]: (to root) alice on pts/0");
        assert_eq!((e.action, e.outcome), ("su", Some(Outcome::Success)));
        assert_eq!(e.user.as_deref(), Some("alice"));
        assert_eq!(e.effective_user.as_deref(), Some("root"));
        assert_eq!(e.tty.as_deref(), Some("pts/0"));
        let e = ev("Nov 21 10:21:20 web1 su[777]: FAILED SU (to root) alice on pts/0");
        assert_eq!(e.outcome, Some(Outcome::Failure));
        let e = ev(
            "Nov 21 10:21:20 web1 su[777]: pam_unix(su:session): session opened for user root(uid=0) by alice(uid=1000)",
        );
        assert_eq!(
            (e.action, e.session),
            ("session-opened", Some(SessionEdge::Start))
        );
        assert_eq!(e.user.as_deref(), Some("alice"));
        assert_eq!(e.effective_user.as_deref(), Some("root"));
        let e = ev(
            "Nov 21 10:21:20 web1 su[777]: pam_unix(su-l:auth): authentication failure; logname=alice uid=1000 euid=0 tty=pts/0 ruser=alice rhost=  user=root",
        );
        assert_eq!(e.user.as_deref(), Some("alice"));
        assert_eq!(e.effective_user.as_deref(), Some("root"));
        let e = ev("Nov 21 10:21:20 web1 su[777]: Successful su for root by alice");
        assert_eq!(
            (e.user.as_deref(), e.effective_user.as_deref()),
            (Some("alice"), Some("root"))
        );
        let e = ev("Nov 21 10:21:20 web1 su[777]: FAILED su for root by mallory");
        assert_eq!(e.outcome, Some(Outcome::Failure));
        let e = ev("Nov 21 10:21:20 web1 su[777]: - pts/3 mallory:root");
        assert_eq!(e.outcome, Some(Outcome::Failure));
        assert_eq!(e.user.as_deref(), Some("mallory"));
    }

    #[test]
    fn logind_lines() {
        let e = ev("Nov 21 10:21:20 web1 systemd-logind[500]: New session 3 of user alice.");
        assert_eq!(
            (e.action, e.session_id.as_deref()),
            ("session-opened", Some("3"))
        );
        assert_eq!(e.user.as_deref(), Some("alice"));
        let e = ev(
            "Nov 21 10:21:20 web1 systemd-logind[500]: Session 3 logged out. Waiting for processes to exit.",
        );
        assert_eq!(
            (e.action, e.session),
            ("session-closed", Some(SessionEdge::End))
        );
        assert_eq!(
            line("Nov 21 10:21:20 web1 systemd-logind[500]: Removed session 3.").1,
            None
        );
    }
}
