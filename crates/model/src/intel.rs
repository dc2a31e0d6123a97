//! Threat intelligence (issue 14): indicators (IOCs) as stored, their sources' settings and
//! sync status, and the matches the pipeline and retro-hunts record.
//!
//! The kinds are `dozor-intel`'s `IocKind` names (`ip`, `cidr`, `domain`, `hostname`, `url`,
//! `md5`, `sha1`, `sha256`, `sha512`, `imphash`, `filename`, `email`, `registry_key`,
//! `user_agent`, `ja3`); the model keeps them as text (it depends on no engine).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One source's part in an indicator: its name and the ids of its objects that carry it
/// (`misp-event:<uuid>`, `misp-attribute:<uuid>`, a STIX id, `line 17`, `manual`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IocSourceRef {
    /// The source's name.
    pub name: String,
    /// Its object ids.
    #[serde(default)]
    pub object_ids: Vec<String>,
    /// When this source first gave the indicator, ms.
    pub added_at: i64,
    /// When this source last gave it, ms.
    pub seen_at: i64,
}

/// An indicator as stored: one row per `(kind, value)`, every source that gave it kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredIoc {
    /// Row id.
    pub id: i64,
    /// The kind (`ip`, `domain`, `sha256`, …).
    pub kind: String,
    /// The canonical value the matcher compares.
    pub value: String,
    /// The MISP attribute type it came from (the first source's), if any.
    pub misp_type: Option<String>,
    /// For detection: a match raises an alert (MISP's `to_ids`); true when any source says so.
    pub to_ids: bool,
    /// Tags of every source (TLP, galaxies, labels), sorted, without repeats.
    pub tags: Vec<String>,
    /// 0–100: the highest any source gave.
    pub confidence: Option<u8>,
    /// Earliest first-seen of any source, ms.
    pub first_seen: Option<i64>,
    /// Latest last-seen of any source, ms.
    pub last_seen: Option<i64>,
    /// Not matched after this, ms (none: never expires; the latest of the sources', none
    /// when any source gives none).
    pub expires: Option<i64>,
    /// Disabled by an operator: kept, not matched.
    pub enabled: bool,
    /// Names of the warninglists the value is on (flagged: matched and shown, and by
    /// configuration not alerted on).
    pub warninglists: Vec<String>,
    /// Every source that gave it.
    pub sources: Vec<IocSourceRef>,
    /// Times matched by an event.
    pub sightings: u64,
    /// Last match, ms.
    pub last_sighting: Option<i64>,
    /// First stored, ms.
    pub created_at: i64,
    /// Last changed, ms.
    pub updated_at: i64,
}

impl StoredIoc {
    /// Whether the matcher uses it at `now`: enabled and not expired.
    pub fn is_active(&self, now: i64) -> bool {
        self.enabled && self.expires.is_none_or(|e| e > now)
    }

    /// The decay score at `now` (0–100), the one number the API, the dashboard and exports
    /// show: [`decay_score`] over the indicator's confidence (50 without one) and the time since
    /// it was last seen (else first seen, else stored).
    pub fn decay_score(&self, now: i64) -> f64 {
        let base = f64::from(self.confidence.unwrap_or(50));
        let since = self
            .last_seen
            .or(self.first_seen)
            .unwrap_or(self.created_at);
        decay_score(base, decay_lifetime_days(&self.kind), now - since)
    }
}

/// Days until an indicator of `kind` has fully decayed: addresses and names churn fast,
/// hashes identify a file for good.
pub fn decay_lifetime_days(kind: &str) -> f64 {
    match kind {
        "ip" | "cidr" => 30.0,
        "url" | "domain" | "hostname" | "email" | "user_agent" | "ja3" => 90.0,
        _ => 365.0,
    }
}

/// MISP's polynomial decay (its default model's shape): `base × (1 − (t / τ)^(1/δ))` with
/// δ = 0.3, τ = `lifetime_days`, t = `age_ms` (a negative age counts as 0), clamped to
/// 0–100 and rounded to one decimal.
pub fn decay_score(base: f64, lifetime_days: f64, age_ms: i64) -> f64 {
    const DECAY_SPEED: f64 = 0.3;
    let tau = lifetime_days * 86_400_000.0;
    let t = (age_ms.max(0) as f64).min(tau);
    let score = base * (1.0 - (t / tau).powf(1.0 / DECAY_SPEED));
    (score.clamp(0.0, 100.0) * 10.0).round() / 10.0
}

/// An indicator a source hands the store (already normalized by `dozor-intel`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewIoc {
    /// The kind.
    pub kind: String,
    /// The canonical value.
    pub value: String,
    /// The MISP type, if any.
    pub misp_type: Option<String>,
    /// For detection.
    pub to_ids: bool,
    /// Tags.
    pub tags: Vec<String>,
    /// 0–100.
    pub confidence: Option<u8>,
    /// ms.
    pub first_seen: Option<i64>,
    /// ms.
    pub last_seen: Option<i64>,
    /// ms; none: never expires.
    pub expires: Option<i64>,
    /// The source's object ids.
    pub object_ids: Vec<String>,
    /// Warninglists the value is on.
    pub warninglists: Vec<String>,
}

/// What an upsert of one source's indicators did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IocUpsertReport {
    /// New `(kind, value)` rows.
    pub added: u64,
    /// Rows whose context changed (a new source, tags, times, …).
    pub updated: u64,
    /// Rows given again with nothing new.
    pub unchanged: u64,
    /// Ids of the added rows (a retro-hunt looks for them in stored events).
    #[serde(skip)]
    pub added_ids: Vec<i64>,
}

/// A search of stored indicators; newest change first unless `after_id` pages by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IocQuery {
    /// Only this kind.
    pub kind: Option<String>,
    /// Value contains this (case-insensitive).
    pub contains: Option<String>,
    /// Exactly this value (canonical).
    pub value: Option<String>,
    /// Given by this source.
    pub source: Option<String>,
    /// Carrying this tag.
    pub tag: Option<String>,
    /// Only enabled (`true`) or disabled (`false`) ones.
    pub enabled: Option<bool>,
    /// Only active ones (enabled and not expired) at this time, ms.
    pub active_at: Option<i64>,
    /// Changed at or after this, ms (the retrieval endpoint's `since`).
    pub updated_since: Option<i64>,
    /// Only indicators matched at least once (`true`: `sightings > 0`) or never (`false`).
    #[serde(default)]
    pub sighted: Option<bool>,
    /// Keyset paging: ids above this, in id order.
    pub after_id: Option<i64>,
    /// Page size (0: the default; the store caps it at its `MAX_IOC_PAGE`, 10,000).
    pub limit: u32,
}

/// An intelligence source as configured and its last sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IntelSource {
    /// Its name (unique; shown as `threat.feed.name`).
    pub name: String,
    /// The source's settings (`dozor-intel-sources`' `SourceSpec`: kind, location, filters,
    /// credentials). Secrets are `***` when the API shows them.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub spec: Value,
    /// Synced by the schedule only when enabled.
    pub enabled: bool,
    /// Seconds between syncs (0: only when asked).
    pub interval_secs: u64,
    /// Where the next incremental sync starts (the source's cursor).
    pub cursor: Option<String>,
    /// The last sync's outcome, if any.
    pub last_sync: Option<IntelSyncStatus>,
    /// Last changed, ms.
    pub updated_at: i64,
    /// Who changed it.
    pub updated_by: String,
}

/// What one sync of a source did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IntelSyncStatus {
    /// Started, ms.
    pub started_at: i64,
    /// Finished, ms.
    pub finished_at: i64,
    /// `ok`, `partial` (some objects skipped) or `failed` (nothing imported; `error` says why).
    /// Ignored objects (not indicators) leave a sync `ok`.
    pub status: String,
    /// New indicators.
    pub added: u64,
    /// Indicators with new context.
    pub updated: u64,
    /// Indicators given again unchanged.
    pub unchanged: u64,
    /// Indicators of this source that expired since its previous sync.
    pub expired: u64,
    /// Objects skipped (bad values, unsupported types or patterns).
    pub skipped: u64,
    /// The first skipped objects with the reason (`object: reason`), at most 100.
    pub skipped_examples: Vec<String>,
    /// Objects read and deliberately not imported because they are not indicators Dozor
    /// matches on (MISP `link`, `comment`, `text` attributes, deleted attributes).
    #[serde(default)]
    pub ignored: u64,
    /// `ignored` by reason (`MISP type `link` is not matched on`: 3).
    #[serde(default)]
    pub ignored_reasons: std::collections::BTreeMap<String, u64>,
    /// Indicators on a warninglist.
    pub warninglisted: u64,
    /// Matches the retro-hunt found in stored events.
    pub retro_matches: u64,
    /// Why the sync failed.
    pub error: Option<String>,
}

/// `POST /api/v1/intel/import`: what an uploaded document gave, as a sync reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IntelImportReport {
    /// The source the indicators were stored under.
    pub source: String,
    /// The document's format (`misp`, `stix`, `csv`, `freetext`), as given or sniffed.
    pub format: String,
    /// Bytes read.
    pub bytes: u64,
    /// Counts, the skipped objects with the reason (`skipped_examples`: `object: reason`,
    /// the first 100) and `status` (`ok`, or `partial` when something was skipped).
    #[serde(flatten)]
    pub result: IntelSyncStatus,
}

/// A recorded match of an indicator by an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IntelMatch {
    /// Row id.
    pub id: i64,
    /// The indicator.
    pub ioc_id: i64,
    /// Its kind.
    pub kind: String,
    /// Its value.
    pub value: String,
    /// The event.
    pub event_id: String,
    /// The event's field that matched (ECS path or Windows name).
    pub field: String,
    /// The observed value.
    pub observed: String,
    /// The agent of the event.
    pub agent_id: Option<String>,
    /// The event's time, ms.
    pub event_ts: i64,
    /// When it was matched, ms.
    pub matched_at: i64,
    /// Found by a retro-hunt over stored events (not as the event arrived).
    pub retro: bool,
    /// Alerted on (false: `to_ids` off, or warninglisted and suppressed).
    pub alerted: bool,
    /// The sighting sent back to the source: `none` (not a MISP indicator or sightings
    /// off), `pending`, `sent`, `failed`.
    pub sighting: String,
}

/// A match to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIntelMatch {
    /// The indicator.
    pub ioc_id: i64,
    /// The event.
    pub event_id: String,
    /// The field.
    pub field: String,
    /// The observed value.
    pub observed: String,
    /// The agent.
    pub agent_id: Option<String>,
    /// The event's time, ms.
    pub event_ts: i64,
    /// Retro-hunt.
    pub retro: bool,
    /// Alerted on.
    pub alerted: bool,
    /// `none` or `pending`.
    pub sighting: String,
}

/// A listing of matches, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntelMatchQuery {
    /// Of this indicator.
    pub ioc_id: Option<i64>,
    /// Of these events.
    pub event_ids: Vec<String>,
    /// Keyset paging: ids below this.
    pub before_id: Option<i64>,
    /// Page size (0: default).
    pub limit: u32,
}

/// An indicator as the API shows it: the stored record, its decay score and whether the
/// matcher uses it, both computed at the answer's time (the dashboard shows the same).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IocView {
    /// The record.
    #[serde(flatten)]
    pub ioc: StoredIoc,
    /// 0–100, see [`StoredIoc::decay_score`].
    pub decay_score: f64,
    /// Enabled and not expired.
    pub active: bool,
}

impl IocView {
    /// The view of `ioc` at `now`.
    pub fn of(ioc: StoredIoc, now: i64) -> IocView {
        IocView {
            decay_score: ioc.decay_score(now),
            active: ioc.is_active(now),
            ioc,
        }
    }
}

/// `GET /api/v1/intel/iocs`: a page in id order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IocPage {
    /// The indicators.
    pub iocs: Vec<IocView>,
    /// `cursor` of the next page; none on the last.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/intel/iocs/{id}`: an indicator and its latest matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IocDetail {
    /// The indicator.
    pub ioc: IocView,
    /// Its latest matches, newest first (at most 100).
    pub matches: Vec<IntelMatch>,
}

/// `POST /api/v1/intel/iocs`: indicators added by hand (source `manual`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ManualIocRequest {
    /// `ip`, `cidr`, `domain`, `hostname`, `url`, `md5`, `sha1`, `sha256`, `sha512`,
    /// `imphash`, `filename`, `email`, `registry_key`, `user_agent`, `ja3`.
    pub kind: String,
    /// The value (normalized: case, `[.]` is not refanged here).
    pub value: String,
    /// Tags (a TLP, a campaign).
    #[serde(default)]
    pub tags: Vec<String>,
    /// 0–100.
    #[serde(default)]
    pub confidence: Option<u8>,
    /// Alert on a match (default true).
    #[serde(default)]
    pub to_ids: Option<bool>,
    /// Not matched after this many days (none: never expires).
    #[serde(default)]
    pub expires_in_days: Option<u32>,
    /// Why it was added (kept with the manual source).
    #[serde(default)]
    pub comment: Option<String>,
}

/// `POST /api/v1/intel/iocs/{id}/enabled`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IocEnabledRequest {
    /// Matched (true) or kept aside (false).
    pub enabled: bool,
}

/// `PUT /api/v1/intel/sources/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IntelSourceRequest {
    /// The settings: `kind` (`misp_rest`, `misp_feed`, `stix_bundle`, `taxii`, `csv`,
    /// `freetext`) and that kind's keys (see the server's README).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub spec: Value,
    /// Synced by its schedule (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Seconds between syncs, 0 (only when asked) or 60 to 604800 (default 3600).
    #[serde(default)]
    pub interval_secs: Option<u64>,
}

/// `GET /api/v1/intel/sources`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IntelSourceList {
    /// By name; secrets shown as `***`.
    pub sources: Vec<IntelSource>,
}

/// `GET /api/v1/intel/matches`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IntelMatchList {
    /// Newest first.
    pub matches: Vec<IntelMatch>,
    /// `before` of the next page; none on the last.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decay_starts_at_the_base_and_ends_at_zero() {
        let day = 86_400_000;
        assert_eq!(decay_score(80.0, 30.0, 0), 80.0);
        assert_eq!(decay_score(80.0, 30.0, -5), 80.0);
        assert_eq!(decay_score(80.0, 30.0, 30 * day), 0.0);
        assert_eq!(decay_score(80.0, 30.0, 300 * day), 0.0);
        let mid = decay_score(80.0, 30.0, 15 * day);
        assert!(mid > 60.0 && mid < 80.0, "{mid}");
        assert!(decay_score(80.0, 30.0, 25 * day) < mid);
    }

    #[test]
    fn activity_needs_enabled_and_unexpired() {
        let mut ioc = StoredIoc {
            id: 1,
            kind: "ip".into(),
            value: "192.0.2.1".into(),
            misp_type: None,
            to_ids: true,
            tags: vec![],
            confidence: Some(90),
            first_seen: None,
            last_seen: Some(1_000),
            expires: Some(2_000),
            enabled: true,
            warninglists: vec![],
            sources: vec![],
            sightings: 0,
            last_sighting: None,
            created_at: 500,
            updated_at: 500,
        };
        assert!(ioc.is_active(1_999));
        assert!(!ioc.is_active(2_000));
        ioc.expires = None;
        assert!(ioc.is_active(i64::MAX));
        ioc.enabled = false;
        assert!(!ioc.is_active(0));
        assert_eq!(ioc.decay_score(1_000), 90.0);
    }
}
