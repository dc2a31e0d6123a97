//! Incidents (cases): alerts an analyst groups because they are one attack, with an owner, a
//! status, a severity, tasks, notes, observables and a history of every change.

use serde::{Deserialize, Serialize};

use crate::error::named;
use crate::{Alert, PlaybookRun};

/// Longest title, characters.
pub const MAX_INCIDENT_TITLE: usize = 200;
/// Longest description or note, characters.
pub const MAX_INCIDENT_TEXT: usize = 20_000;
/// Longest task title, characters.
pub const MAX_INCIDENT_TASK: usize = 500;
/// Longest observable value, characters.
pub const MAX_OBSERVABLE_VALUE: usize = 2048;
/// Longest owner name, characters.
pub const MAX_INCIDENT_OWNER: usize = 128;
/// Alerts added in one request at most.
pub const MAX_INCIDENT_ALERTS_PER_CALL: usize = 1000;

/// How bad an incident is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum IncidentSeverity {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl IncidentSeverity {
    /// All severities, lowest first.
    pub const ALL: [IncidentSeverity; 4] = [
        IncidentSeverity::Low,
        IncidentSeverity::Medium,
        IncidentSeverity::High,
        IncidentSeverity::Critical,
    ];

    /// The stored (and serialized) name.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentSeverity::Low => "low",
            IncidentSeverity::Medium => "medium",
            IncidentSeverity::High => "high",
            IncidentSeverity::Critical => "critical",
        }
    }

    /// The severity an incident of alerts of this level starts with.
    pub fn of_level(level: crate::Level) -> IncidentSeverity {
        match level {
            crate::Level::Informational | crate::Level::Low => IncidentSeverity::Low,
            crate::Level::Medium => IncidentSeverity::Medium,
            crate::Level::High => IncidentSeverity::High,
            crate::Level::Critical => IncidentSeverity::Critical,
        }
    }
}

named!(IncidentSeverity, "incident severity");

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Opened, nobody works on it yet.
    Open,
    /// Being investigated.
    InProgress,
    /// The attacker is stopped; clean-up goes on.
    Contained,
    /// Done.
    Closed,
}

impl IncidentStatus {
    /// All statuses, in workflow order.
    pub const ALL: [IncidentStatus; 4] = [
        IncidentStatus::Open,
        IncidentStatus::InProgress,
        IncidentStatus::Contained,
        IncidentStatus::Closed,
    ];

    /// The stored (and serialized) name.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::InProgress => "in_progress",
            IncidentStatus::Contained => "contained",
            IncidentStatus::Closed => "closed",
        }
    }
}

named!(IncidentStatus, "incident status");

/// What an observable is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ObservableKind {
    /// IPv4 or IPv6 address.
    Ip,
    /// Domain name.
    Domain,
    /// URL.
    Url,
    /// File hash (MD5, SHA-1, SHA-256).
    Hash,
    /// File path or name.
    File,
    /// User account.
    User,
    /// Host name.
    Host,
    /// Process name or command line.
    Process,
    /// Anything else.
    Other,
}

impl ObservableKind {
    /// All kinds.
    pub const ALL: [ObservableKind; 9] = [
        ObservableKind::Ip,
        ObservableKind::Domain,
        ObservableKind::Url,
        ObservableKind::Hash,
        ObservableKind::File,
        ObservableKind::User,
        ObservableKind::Host,
        ObservableKind::Process,
        ObservableKind::Other,
    ];

    /// The stored (and serialized) name.
    pub fn as_str(self) -> &'static str {
        match self {
            ObservableKind::Ip => "ip",
            ObservableKind::Domain => "domain",
            ObservableKind::Url => "url",
            ObservableKind::Hash => "hash",
            ObservableKind::File => "file",
            ObservableKind::User => "user",
            ObservableKind::Host => "host",
            ObservableKind::Process => "process",
            ObservableKind::Other => "other",
        }
    }

    /// Why `value` is not an observable of this kind (`None`: it is).
    pub fn problem(self, value: &str) -> Option<String> {
        let v = value.trim();
        if v.is_empty() {
            return Some("observable value is blank".into());
        }
        if v.chars().count() > MAX_OBSERVABLE_VALUE {
            return Some(format!(
                "observable value is longer than {MAX_OBSERVABLE_VALUE} characters"
            ));
        }
        let ok = match self {
            ObservableKind::Ip => v.parse::<std::net::IpAddr>().is_ok(),
            ObservableKind::Hash => {
                matches!(v.len(), 32 | 40 | 64) && v.bytes().all(|b| b.is_ascii_hexdigit())
            }
            ObservableKind::Domain => {
                v.len() <= 253
                    && v.contains('.')
                    && v.split('.').all(|l| {
                        !l.is_empty()
                            && l.len() <= 63
                            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    })
            }
            ObservableKind::Url => v.contains("://") && !v.chars().any(char::is_whitespace),
            _ => true,
        };
        (!ok).then(|| format!("{v:?} is not a valid {} observable", self.as_str()))
    }
}

named!(ObservableKind, "observable kind");

/// An incident to open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewIncident {
    /// Title (not blank).
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"\S", min_length = 1, max_length = 200)
    )]
    pub title: String,
    /// What it is about.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 20000))]
    pub description: String,
    /// Severity; `None`: from the highest level of its alerts (low without alerts).
    #[serde(default)]
    pub severity: Option<IncidentSeverity>,
    /// Who owns it.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 128))]
    pub owner: Option<String>,
    /// Alerts to group into it at once (none already in another incident).
    #[serde(default, deserialize_with = "integral_ids")]
    #[cfg_attr(feature = "openapi", schema(max_items = 1000))]
    pub alert_ids: Vec<i64>,
}

/// Changes to an incident; fields left out stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentPatch {
    /// New title.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"\S", min_length = 1, max_length = 200)
    )]
    pub title: Option<String>,
    /// New description.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 20000))]
    pub description: Option<String>,
    /// New severity.
    #[serde(default)]
    pub severity: Option<IncidentSeverity>,
    /// New status.
    #[serde(default)]
    pub status: Option<IncidentStatus>,
    /// New owner; an empty string clears it.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 128))]
    pub owner: Option<String>,
}

impl IncidentPatch {
    /// Nothing to change?
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.description.is_none()
            && self.severity.is_none()
            && self.status.is_none()
            && self.owner.is_none()
    }
}

/// An incident's own fields, with how many alerts it groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Incident {
    /// Id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Severity.
    pub severity: IncidentSeverity,
    /// Status.
    pub status: IncidentStatus,
    /// Owner.
    pub owner: Option<String>,
    /// Who opened it.
    pub created_by: String,
    /// Opened, ms.
    pub created_at: i64,
    /// Last changed, ms.
    pub updated_at: i64,
    /// Closed, ms (`None` while not closed).
    pub closed_at: Option<i64>,
    /// Alerts grouped into it.
    pub alert_count: i64,
    /// Tasks, and how many are done.
    pub tasks_total: i64,
    /// Tasks done.
    pub tasks_done: i64,
}

/// A task of an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentTask {
    /// Id.
    pub id: i64,
    /// What to do.
    pub title: String,
    /// Done?
    pub done: bool,
    /// Who added it.
    pub created_by: String,
    /// Added, ms.
    pub created_at: i64,
    /// Who ticked it off.
    pub done_by: Option<String>,
    /// Ticked off, ms.
    pub done_at: Option<i64>,
}

/// A note on an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentNote {
    /// Id.
    pub id: i64,
    /// Who wrote it.
    pub author: String,
    /// Text.
    pub body: String,
    /// Written, ms.
    pub created_at: i64,
}

/// An observable (indicator) noted on an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Observable {
    /// Id.
    pub id: i64,
    /// Kind.
    pub kind: ObservableKind,
    /// Value.
    pub value: String,
    /// Why it matters.
    pub note: String,
    /// Who added it.
    pub added_by: String,
    /// Added, ms.
    pub added_at: i64,
}

/// An observable to add.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewObservable {
    /// Kind.
    pub kind: ObservableKind,
    /// Value (checked against the kind: an IP parses, a hash is 32/40/64 hex digits, ...).
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"\S", min_length = 1, max_length = 2048)
    )]
    pub value: String,
    /// Why it matters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 20000))]
    pub note: String,
}

/// One change in an incident's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentChange {
    /// Id.
    pub id: i64,
    /// Who.
    pub actor: String,
    /// What (`created`, `status`, `owner`, `severity`, `title`, `description`, `alerts_added`,
    /// `alert_removed`, `task_added`, `task_done`, `task_reopened`, `observable_added`,
    /// `observable_removed`).
    pub action: String,
    /// Details (`open → in_progress`, the alert ids, the task title).
    pub detail: String,
    /// When, ms.
    pub created_at: i64,
}

/// An incident with everything in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentDetail {
    /// The incident.
    pub incident: Incident,
    /// Its alerts, earliest first.
    pub alerts: Vec<Alert>,
    /// Its tasks, in the order added.
    pub tasks: Vec<IncidentTask>,
    /// Its notes, oldest first.
    pub notes: Vec<IncidentNote>,
    /// Its observables.
    pub observables: Vec<Observable>,
    /// Its history, oldest first.
    pub history: Vec<IncidentChange>,
    /// Playbook runs started for its alerts, newest first.
    pub playbook_runs: Vec<PlaybookRun>,
}

/// Which incidents to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentQuery {
    /// Only these statuses (empty: all).
    pub statuses: Vec<IncidentStatus>,
    /// Only this owner.
    pub owner: Option<String>,
    /// At most this many (0: the default page).
    pub limit: u32,
}

/// Open alerts of one host, in no incident yet, close in time: a suggested incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentSuggestion {
    /// The host.
    pub host: String,
    /// The alerts (at most 100), earliest first.
    pub alert_ids: Vec<i64>,
    /// How many there are.
    pub alert_count: i64,
    /// Highest level among them.
    pub level: crate::Level,
    /// Earliest event, ms.
    pub first_seen: i64,
    /// Latest event, ms.
    pub last_seen: i64,
}

/// The merged timeline of an incident: its alerts' detections and its own history, in time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineEntry {
    /// When, ms.
    pub at: i64,
    /// `alert` (an alert's first event), `alert_last` (its latest, when later), `note`, `task`,
    /// `change`, `playbook`.
    pub kind: String,
    /// Who (changes, notes, tasks) or the host (alerts).
    pub who: Option<String>,
    /// What.
    pub text: String,
    /// The alert it is about, if any.
    pub alert_id: Option<i64>,
}

impl IncidentDetail {
    /// Alerts (first and latest event), notes, finished tasks, changes and playbook runs,
    /// oldest first.
    pub fn timeline(&self) -> Vec<TimelineEntry> {
        let mut out = Vec::new();
        for a in &self.alerts {
            out.push(TimelineEntry {
                at: a.first_seen,
                kind: "alert".into(),
                who: a.host.clone(),
                text: format!("{} ({})", a.rule_title, a.level.as_str()),
                alert_id: Some(a.id),
            });
            if a.last_seen > a.first_seen && a.count > 1 {
                out.push(TimelineEntry {
                    at: a.last_seen,
                    kind: "alert_last".into(),
                    who: a.host.clone(),
                    text: format!("{} ×{}", a.rule_title, a.count),
                    alert_id: Some(a.id),
                });
            }
        }
        for n in &self.notes {
            out.push(TimelineEntry {
                at: n.created_at,
                kind: "note".into(),
                who: Some(n.author.clone()),
                text: n.body.clone(),
                alert_id: None,
            });
        }
        for c in &self.history {
            out.push(TimelineEntry {
                at: c.created_at,
                kind: "change".into(),
                who: Some(c.actor.clone()),
                text: if c.detail.is_empty() {
                    c.action.clone()
                } else {
                    format!("{}: {}", c.action, c.detail)
                },
                alert_id: None,
            });
        }
        for r in &self.playbook_runs {
            out.push(TimelineEntry {
                at: r.started_at,
                kind: "playbook".into(),
                who: Some(r.requested_by.clone()),
                text: format!("{} ({})", r.playbook, r.status.as_str()),
                alert_id: r.alert_id,
            });
        }
        out.sort_by_key(|e| e.at);
        out
    }
}

/// Ids written as any JSON integers, `12` or `12.0` alike (JSON Schema counts both as
/// integers; serde's `i64` takes only the first).
pub fn integral_ids<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
    use serde::de::Error;
    Vec::<serde_json::Number>::deserialize(d)?
        .into_iter()
        .map(|n| match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(i),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
            _ => Err(D::Error::custom(format!("{n} is not a whole number id"))),
        })
        .collect()
}

/// Why a new incident can't be opened as given (`None`: it can).
pub fn new_incident_problem(n: &NewIncident) -> Option<String> {
    if n.title.trim().is_empty() {
        return Some("incident title is blank".into());
    }
    if n.title.chars().count() > MAX_INCIDENT_TITLE {
        return Some(format!(
            "incident title is longer than {MAX_INCIDENT_TITLE} characters"
        ));
    }
    if n.description.chars().count() > MAX_INCIDENT_TEXT {
        return Some(format!(
            "incident description is longer than {MAX_INCIDENT_TEXT} characters"
        ));
    }
    if n.owner
        .as_ref()
        .is_some_and(|o| o.chars().count() > MAX_INCIDENT_OWNER)
    {
        return Some(format!(
            "incident owner is longer than {MAX_INCIDENT_OWNER} characters"
        ));
    }
    if n.alert_ids.len() > MAX_INCIDENT_ALERTS_PER_CALL {
        return Some(format!(
            "more than {MAX_INCIDENT_ALERTS_PER_CALL} alerts in one request"
        ));
    }
    None
}

/// Why a patch can't be applied (`None`: it can).
pub fn incident_patch_problem(p: &IncidentPatch) -> Option<String> {
    if let Some(t) = &p.title {
        if t.trim().is_empty() {
            return Some("incident title is blank".into());
        }
        if t.chars().count() > MAX_INCIDENT_TITLE {
            return Some(format!(
                "incident title is longer than {MAX_INCIDENT_TITLE} characters"
            ));
        }
    }
    if p.description
        .as_ref()
        .is_some_and(|d| d.chars().count() > MAX_INCIDENT_TEXT)
    {
        return Some(format!(
            "incident description is longer than {MAX_INCIDENT_TEXT} characters"
        ));
    }
    if p.owner
        .as_ref()
        .is_some_and(|o| o.chars().count() > MAX_INCIDENT_OWNER)
    {
        return Some(format!(
            "incident owner is longer than {MAX_INCIDENT_OWNER} characters"
        ));
    }
    None
}

/// Why a note or task text can't be stored (`None`: it can).
pub fn incident_text_problem(what: &str, text: &str, max: usize) -> Option<String> {
    if text.trim().is_empty() {
        return Some(format!("{what} is blank"));
    }
    (text.chars().count() > max).then(|| format!("{what} is longer than {max} characters"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observables_are_checked_against_their_kind() {
        assert!(ObservableKind::Ip.problem("10.0.0.5").is_none());
        assert!(ObservableKind::Ip.problem("fe80::1").is_none());
        assert!(ObservableKind::Ip.problem("10.0.0.256").is_some());
        assert!(
            ObservableKind::Hash
                .problem("44d88612fea8a8f36de82e1278abb02f")
                .is_none()
        );
        assert!(ObservableKind::Hash.problem("xyz").is_some());
        assert!(ObservableKind::Domain.problem("evil.example.com").is_none());
        assert!(ObservableKind::Domain.problem("not a domain").is_some());
        assert!(ObservableKind::Url.problem("http://x.example/a").is_none());
        assert!(ObservableKind::User.problem("  ").is_some());
        assert_eq!(
            "in_progress".parse::<IncidentStatus>().ok(),
            Some(IncidentStatus::InProgress)
        );
        assert!("urgent".parse::<IncidentSeverity>().is_err());
    }

    #[test]
    fn patches_and_new_incidents_say_what_is_wrong() {
        let n = NewIncident {
            title: " ".into(),
            description: String::new(),
            severity: None,
            owner: None,
            alert_ids: vec![],
        };
        assert_eq!(
            new_incident_problem(&n).as_deref(),
            Some("incident title is blank")
        );
        assert!(
            incident_patch_problem(&IncidentPatch::default()).is_none(),
            "a no-op"
        );
        let p = IncidentPatch {
            status: Some(IncidentStatus::Closed),
            ..Default::default()
        };
        assert!(incident_patch_problem(&p).is_none());
    }
}
