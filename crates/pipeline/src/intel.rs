//! The threat-intelligence stage (issue 14): every event's observables against the active
//! indicators, before Sigma (rules can use the `threat.*` fields it adds).
//!
//! A match
//! - enriches the event with ECS `threat.enrichments[]` (one per indicator: `indicator.*`,
//!   `matched.*`, `feed.name`) and, for the first, `threat.indicator.*` and `threat.feed.name`;
//! - is recorded (`intel_matches`, once per indicator, event and field) with whether it was
//!   alerted and whether a sighting goes back to its MISP source;
//! - raises a detection with the rule id `dozor-intel/<source>/<kind>` when the indicator is
//!   for detection (`to_ids`) and not suppressed by a warninglist.
//!
//! The indicators live in an [`IntelSnapshot`] (the `dozor-intel` index plus each indicator's
//! context) behind an [`IntelHandle`]: the server rebuilds a snapshot when indicators change
//! and swaps it in; a cycle uses the one it started with.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use dozor_intel::{IntelError, IocIndex, IocIndexBuilder, IocKind};
use dozor_store::{Detection, Level, NewIntelMatch};
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

/// What the stage knows of one indicator.
#[derive(Debug, Clone, PartialEq)]
pub struct IocContext {
    /// The store's row id.
    pub id: i64,
    pub kind: IocKind,
    pub value: String,
    /// Its sources' names (the first names the rule id and `threat.feed.name`).
    pub sources: Vec<String>,
    pub tags: Vec<String>,
    pub confidence: Option<u8>,
    pub to_ids: bool,
    pub warninglists: Vec<String>,
    /// A match goes back to a MISP source as a sighting.
    pub sighting: bool,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
}

/// The active indicators, indexed. Immutable: build a new one to change it.
///
/// Each indicator's context is held compactly: its string lists (sources, tags,
/// warninglists) are interned, since the indicators of one feed event share them, and its
/// [`IocContext`] is rebuilt only when it matches. A million indicators take a few hundred
/// bytes less each than the contexts handed in (bench/intel measures it).
#[derive(Debug, Default)]
pub struct IntelSnapshot {
    index: IocIndex,
    iocs: Vec<Entry>,
    /// The distinct string lists the entries refer to; `lists[0]` is the empty one.
    lists: Vec<Box<[Box<str>]>>,
    /// Warninglisted indicators match (and enrich) but raise no alert.
    pub suppress_warninglisted: bool,
}

/// An indicator's context in a snapshot (see [`IocContext`] for the fields).
#[derive(Debug)]
struct Entry {
    id: i64,
    value: Box<str>,
    /// Milliseconds; [`NO_TIME`] for none.
    first_seen: i64,
    last_seen: i64,
    /// Positions in [`IntelSnapshot::lists`].
    sources: u32,
    tags: u32,
    warninglists: u32,
    kind: IocKind,
    confidence: Option<u8>,
    to_ids: bool,
    sighting: bool,
}

const NO_TIME: i64 = i64::MIN;

/// Builds an [`IntelSnapshot`] one indicator at a time (a loader reading pages need not hold
/// every [`IocContext`] at once).
#[derive(Debug)]
pub struct IntelSnapshotBuilder {
    index: IocIndexBuilder,
    iocs: Vec<Entry>,
    lists: HashMap<Vec<String>, u32>,
    refused: Vec<(i64, IntelError)>,
}

impl Default for IntelSnapshotBuilder {
    fn default() -> Self {
        IntelSnapshotBuilder {
            index: IocIndex::builder(),
            iocs: Vec::new(),
            lists: HashMap::from([(Vec::new(), 0)]),
            refused: Vec::new(),
        }
    }
}

impl IntelSnapshotBuilder {
    fn intern(&mut self, list: Vec<String>) -> u32 {
        if let Some(at) = self.lists.get(&list) {
            return *at;
        }
        let at = self.lists.len() as u32;
        self.lists.insert(list, at);
        at
    }

    /// Indexes one indicator. One the index refuses (a value that no longer normalizes) is
    /// left out and reported by [`IntelSnapshotBuilder::finish`].
    pub fn push(&mut self, ioc: IocContext) {
        let Ok(position) = u32::try_from(self.iocs.len()) else {
            self.refused
                .push((ioc.id, IntelError::IdTooLarge(u32::MAX)));
            return;
        };
        if let Err(e) = self.index.add(position, ioc.kind, &ioc.value) {
            self.refused.push((ioc.id, e));
            return;
        }
        let entry = Entry {
            id: ioc.id,
            value: ioc.value.into_boxed_str(),
            first_seen: ioc.first_seen.unwrap_or(NO_TIME),
            last_seen: ioc.last_seen.unwrap_or(NO_TIME),
            sources: self.intern(ioc.sources),
            tags: self.intern(ioc.tags),
            warninglists: self.intern(ioc.warninglists),
            kind: ioc.kind,
            confidence: ioc.confidence,
            to_ids: ioc.to_ids,
            sighting: ioc.sighting,
        };
        self.iocs.push(entry);
    }

    /// The snapshot, and the indicators left out with the reason.
    pub fn finish(self, suppress_warninglisted: bool) -> (IntelSnapshot, Vec<(i64, IntelError)>) {
        let mut lists: Vec<Box<[Box<str>]>> = vec![Box::default(); self.lists.len()];
        for (list, at) in self.lists {
            lists[at as usize] = list.into_iter().map(String::into_boxed_str).collect();
        }
        let mut iocs = self.iocs;
        iocs.shrink_to_fit();
        (
            IntelSnapshot {
                index: self.index.build(),
                iocs,
                lists,
                suppress_warninglisted,
            },
            self.refused,
        )
    }
}

impl IntelSnapshot {
    /// Indexes `iocs`. An indicator the index refuses (a value that no longer normalizes) is
    /// left out and returned with the reason; the others are indexed.
    pub fn build(
        iocs: Vec<IocContext>,
        suppress_warninglisted: bool,
    ) -> (IntelSnapshot, Vec<(i64, IntelError)>) {
        let mut builder = IntelSnapshot::builder();
        builder.iocs.reserve_exact(iocs.len());
        for ioc in iocs {
            builder.push(ioc);
        }
        builder.finish(suppress_warninglisted)
    }

    /// A builder, for indicators that arrive one at a time.
    pub fn builder() -> IntelSnapshotBuilder {
        IntelSnapshotBuilder::default()
    }

    /// Indicators indexed.
    pub fn len(&self) -> usize {
        self.iocs.len()
    }

    /// No indicators.
    pub fn is_empty(&self) -> bool {
        self.iocs.is_empty()
    }

    /// The context of the indicator at `position`, as it was given.
    fn context(&self, position: u32) -> Option<IocContext> {
        let e = self.iocs.get(position as usize)?;
        let list = |at: u32| -> Vec<String> {
            self.lists
                .get(at as usize)
                .map(|l| l.iter().map(|s| s.to_string()).collect())
                .unwrap_or_default()
        };
        let time = |t: i64| (t != NO_TIME).then_some(t);
        Some(IocContext {
            id: e.id,
            kind: e.kind,
            value: e.value.to_string(),
            sources: list(e.sources),
            tags: list(e.tags),
            confidence: e.confidence,
            to_ids: e.to_ids,
            warninglists: list(e.warninglists),
            sighting: e.sighting,
            first_seen: time(e.first_seen),
            last_seen: time(e.last_seen),
        })
    }

    /// Matches `doc`, enriches it, and returns what to record and the detections to raise.
    pub fn apply(&self, doc: &mut Json, event: EventRef<'_>) -> IntelOutcome {
        let mut outcome = IntelOutcome::default();
        if self.iocs.is_empty() {
            return outcome;
        }
        let host = dozor_store::event_host(doc).map(str::to_owned);
        let view = dozor_event::NormalizedEvent(doc);
        let found: Vec<(String, String, u32)> = self
            .index
            .match_event(&view)
            .into_iter()
            .flat_map(|m| {
                let field = m.field.to_owned();
                let observed = m.value.to_owned();
                m.ids
                    .into_iter()
                    .map(move |id| (field.clone(), observed.clone(), id))
            })
            .collect();
        if found.is_empty() {
            return outcome;
        }
        let mut enrichments = Vec::new();
        let mut raised_rules: Vec<String> = Vec::new();
        for (field, observed, position) in found {
            let Some(ioc) = self.context(position) else {
                continue;
            };
            let ioc = &ioc;
            let warninglisted = !ioc.warninglists.is_empty();
            let alerted = ioc.to_ids && !(warninglisted && self.suppress_warninglisted);
            enrichments.push(enrichment(ioc, &field, &observed));
            outcome.matches.push(NewIntelMatch {
                ioc_id: ioc.id,
                event_id: event.id.to_string(),
                field: field.clone(),
                observed: observed.clone(),
                agent_id: event.agent_id.map(str::to_owned),
                event_ts: event.ts,
                retro: event.retro,
                alerted,
                sighting: if ioc.sighting { "pending" } else { "none" }.to_owned(),
            });
            if alerted {
                let detection = detection(ioc, event, host.clone());
                // One detection per rule and event: several indicators of one source and
                // kind in one event are one alert hit.
                if !raised_rules.contains(&detection.rule_id) {
                    raised_rules.push(detection.rule_id.clone());
                    outcome.detections.push(detection);
                }
            }
        }
        enrich(doc, enrichments);
        outcome
    }
}

/// The event a match belongs to.
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    pub id: Uuid,
    pub ts: i64,
    pub agent_id: Option<&'a str>,
    /// Found by a retro-hunt over stored events.
    pub retro: bool,
}

/// What matching one event produced.
#[derive(Debug, Default)]
pub struct IntelOutcome {
    pub matches: Vec<NewIntelMatch>,
    pub detections: Vec<Detection>,
}

/// The snapshot the pipeline uses, swapped as a whole.
#[derive(Debug, Clone, Default)]
pub struct IntelHandle(Arc<RwLock<Arc<IntelSnapshot>>>);

impl IntelHandle {
    /// The current snapshot.
    pub fn current(&self) -> Arc<IntelSnapshot> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts a new snapshot in place (cycles under way finish with the old one).
    pub fn replace(&self, snapshot: IntelSnapshot) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snapshot);
    }
}

/// The rule id of an indicator's detections: per source and kind, so alerts fold per feed.
pub fn rule_id(ioc: &IocContext) -> String {
    format!(
        "dozor-intel/{}/{}",
        ioc.sources.first().map(String::as_str).unwrap_or("unknown"),
        ioc.kind.as_str()
    )
}

/// The alert level of an indicator: from its confidence (medium without one), raised to
/// high by a `tlp:red` or a MISP `threat-level` of high; at most medium when warninglisted.
pub fn level(ioc: &IocContext) -> Level {
    let mut level = match ioc.confidence {
        Some(c) if c >= 90 => Level::High,
        Some(c) if c >= 50 => Level::Medium,
        Some(_) => Level::Low,
        None => Level::Medium,
    };
    if ioc.tags.iter().any(|t| {
        let t = t.to_ascii_lowercase();
        t == "tlp:red" || t.contains("threat-level=\"high\"") || t.contains("threat-level:high")
    }) {
        level = Level::High;
    }
    if !ioc.warninglists.is_empty() && level > Level::Medium {
        level = Level::Medium;
    }
    level
}

fn detection(ioc: &IocContext, event: EventRef<'_>, host: Option<String>) -> Detection {
    let source = ioc.sources.first().map(String::as_str).unwrap_or("unknown");
    let mut tags = vec![
        "dozor.intel".to_owned(),
        format!("ioc.{}", ioc.kind.as_str()),
    ];
    tags.extend(
        ioc.tags
            .iter()
            .filter(|t| t.to_ascii_lowercase().starts_with("tlp:"))
            .cloned(),
    );
    Detection {
        rule_id: rule_id(ioc),
        rule_title: format!("Threat intelligence match: {} from {source}", ioc.kind),
        level: level(ioc),
        tags,
        agent_id: event.agent_id.map(str::to_owned),
        host,
        event_id: event.id,
        ts: event.ts,
    }
}

/// ECS `threat.indicator.type` of a kind.
fn ecs_type(kind: IocKind) -> &'static str {
    match kind {
        IocKind::Ip | IocKind::Cidr => "ipv4-addr",
        IocKind::Domain | IocKind::Hostname => "domain-name",
        IocKind::Url => "url",
        IocKind::Md5
        | IocKind::Sha1
        | IocKind::Sha256
        | IocKind::Sha512
        | IocKind::Imphash
        | IocKind::Filename => "file",
        IocKind::Email => "email-addr",
        IocKind::RegistryKey => "windows-registry-key",
        IocKind::UserAgent | IocKind::Ja3 => "x509-certificate-or-other",
    }
}

/// The ECS `threat.indicator` object of an indicator.
fn indicator(ioc: &IocContext) -> Json {
    let mut i = Map::new();
    let kind = ioc.kind;
    let ty = match kind {
        IocKind::Ip | IocKind::Cidr if ioc.value.contains(':') => "ipv6-addr",
        IocKind::UserAgent | IocKind::Ja3 => "other",
        other => ecs_type(other),
    };
    i.insert("type".into(), json!(ty));
    let v = json!(ioc.value);
    match kind {
        IocKind::Ip | IocKind::Cidr => {
            i.insert("ip".into(), v);
        }
        IocKind::Domain | IocKind::Hostname => {
            i.insert("url".into(), json!({"domain": ioc.value}));
        }
        IocKind::Url => {
            i.insert("url".into(), json!({"full": ioc.value}));
        }
        IocKind::Md5 | IocKind::Sha1 | IocKind::Sha256 | IocKind::Sha512 => {
            i.insert("file".into(), json!({"hash": {kind.as_str(): ioc.value}}));
        }
        IocKind::Imphash => {
            i.insert("file".into(), json!({"pe": {"imphash": ioc.value}}));
        }
        IocKind::Filename => {
            i.insert("file".into(), json!({"name": ioc.value}));
        }
        IocKind::Email => {
            i.insert("email".into(), json!({"address": ioc.value}));
        }
        IocKind::RegistryKey => {
            i.insert("registry".into(), json!({"path": ioc.value}));
        }
        IocKind::UserAgent => {
            i.insert("user_agent".into(), json!({"original": ioc.value}));
        }
        IocKind::Ja3 => {
            i.insert("tls".into(), json!({"client": {"ja3": ioc.value}}));
        }
    }
    i.insert("description".into(), json!(format!("{kind} {}", ioc.value)));
    if let Some(c) = ioc.confidence {
        let named = match c {
            0..=29 => "Low",
            30..=69 => "Medium",
            _ => "High",
        };
        i.insert("confidence".into(), json!(named));
    }
    if let Some(tlp) = ioc.tags.iter().find_map(|t| {
        t.to_ascii_lowercase()
            .strip_prefix("tlp:")
            .map(str::to_owned)
    }) {
        i.insert("marking".into(), json!({"tlp": tlp.to_ascii_uppercase()}));
    }
    if let Some(t) = ioc.first_seen.and_then(rfc3339) {
        i.insert("first_seen".into(), json!(t));
    }
    if let Some(t) = ioc.last_seen.and_then(rfc3339) {
        i.insert("last_seen".into(), json!(t));
    }
    if let Some(source) = ioc.sources.first() {
        i.insert("provider".into(), json!(source));
    }
    Json::Object(i)
}

fn rfc3339(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

fn enrichment(ioc: &IocContext, field: &str, observed: &str) -> Json {
    json!({
        "indicator": indicator(ioc),
        "matched": {
            "atomic": observed,
            "field": field,
            "id": ioc.id.to_string(),
            "type": "indicator_match_rule",
        },
        "feed": {"name": ioc.sources.first().cloned().unwrap_or_default()},
        "dozor": {
            "ioc_id": ioc.id,
            "sources": ioc.sources,
            "tags": ioc.tags,
            "to_ids": ioc.to_ids,
            "warninglists": ioc.warninglists,
        },
    })
}

/// Writes the enrichments into `doc.threat`, keeping what the event had there already and
/// not repeating an indicator and field it carries (a redelivered or retro-hunted event).
fn enrich(doc: &mut Json, enrichments: Vec<Json>) {
    let Some(obj) = doc.as_object_mut() else {
        return;
    };
    let threat = obj
        .entry("threat")
        .or_insert_with(|| Json::Object(Map::new()));
    if !threat.is_object() {
        *threat = Json::Object(Map::new());
    }
    let Some(threat) = threat.as_object_mut() else {
        return;
    };
    if let Some(first) = enrichments.first() {
        threat
            .entry("indicator")
            .or_insert_with(|| first["indicator"].clone());
        threat
            .entry("feed")
            .or_insert_with(|| first["feed"].clone());
    }
    let list = threat
        .entry("enrichments")
        .or_insert_with(|| Json::Array(Vec::new()));
    if !list.is_array() {
        *list = Json::Array(Vec::new());
    }
    if let Some(list) = list.as_array_mut() {
        for e in enrichments {
            let same = |x: &Json| x["matched"] == e["matched"];
            if !list.iter().any(same) {
                list.push(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(id: i64, kind: IocKind, value: &str) -> IocContext {
        IocContext {
            id,
            kind,
            value: value.into(),
            sources: vec!["feed-a".into()],
            tags: vec!["tlp:green".into()],
            confidence: Some(80),
            to_ids: true,
            warninglists: vec![],
            sighting: true,
            first_seen: Some(0),
            last_seen: None,
        }
    }

    fn event(id: Uuid) -> EventRef<'static> {
        EventRef {
            id,
            ts: 1_000,
            agent_id: Some("agent-1"),
            retro: false,
        }
    }

    #[test]
    fn a_matching_event_is_enriched_recorded_and_detected() {
        let mut resolver = ctx(3, IocKind::Ip, "8.8.8.8");
        resolver.warninglists = vec!["List of known IPv4 public DNS resolvers".into()];
        let mut quiet = ctx(4, IocKind::Domain, "quiet.example");
        quiet.to_ids = false;
        let (snapshot, refused) = IntelSnapshot::build(
            vec![
                ctx(1, IocKind::Domain, "evil.example"),
                ctx(2, IocKind::Ip, "203.0.113.7"),
                resolver,
                quiet,
            ],
            true,
        );
        assert!(refused.is_empty());
        assert_eq!(snapshot.len(), 4);
        let id = Uuid::new_v4();
        let mut doc = json!({
            "dns": {"question": {"name": "www.evil.example"}},
            "destination": {"ip": "203.0.113.7"},
            "source": {"ip": "8.8.8.8"},
            "url": {"domain": "quiet.example"},
        });
        let out = snapshot.apply(&mut doc, event(id));
        assert_eq!(out.matches.len(), 4, "{:?}", out.matches);
        let mut alerted: Vec<i64> = out
            .matches
            .iter()
            .filter(|m| m.alerted)
            .map(|m| m.ioc_id)
            .collect();
        alerted.sort();
        assert_eq!(
            alerted,
            vec![1, 2],
            "warninglisted and not-for-detection stay quiet"
        );
        // Two kinds of one source: two rules, one detection each.
        let mut rules: Vec<&str> = out.detections.iter().map(|d| d.rule_id.as_str()).collect();
        rules.sort();
        assert_eq!(
            rules,
            ["dozor-intel/feed-a/domain", "dozor-intel/feed-a/ip"]
        );
        assert!(out.matches.iter().all(|m| m.sighting == "pending"));
        let enrichments = doc["threat"]["enrichments"].as_array().unwrap();
        assert_eq!(enrichments.len(), 4);
        assert_eq!(doc["threat"]["feed"]["name"], "feed-a");
        let domain = enrichments
            .iter()
            .find(|e| e["matched"]["atomic"] == "www.evil.example")
            .unwrap();
        assert_eq!(domain["indicator"]["url"]["domain"], "evil.example");
        assert_eq!(domain["indicator"]["marking"]["tlp"], "GREEN");
        assert_eq!(domain["matched"]["field"], "dns.question.name");

        // The same event again (a redelivery): no repeated enrichment.
        let again = snapshot.apply(&mut doc, event(id));
        assert_eq!(again.matches.len(), 4);
        assert_eq!(doc["threat"]["enrichments"].as_array().unwrap().len(), 4);
    }

    #[test]
    fn no_match_leaves_the_event_alone_and_levels_follow_confidence() {
        let (snapshot, _) = IntelSnapshot::build(vec![ctx(1, IocKind::Ip, "192.0.2.1")], false);
        let mut doc = json!({"source": {"ip": "192.0.2.2"}});
        let before = doc.clone();
        let out = snapshot.apply(&mut doc, event(Uuid::new_v4()));
        assert!(out.matches.is_empty() && out.detections.is_empty());
        assert_eq!(doc, before);

        let mut c = ctx(1, IocKind::Ip, "192.0.2.1");
        c.confidence = Some(95);
        assert_eq!(level(&c), Level::High);
        c.confidence = Some(10);
        assert_eq!(level(&c), Level::Low);
        c.tags.push("tlp:red".into());
        assert_eq!(level(&c), Level::High);
        c.warninglists.push("x".into());
        assert_eq!(level(&c), Level::Medium);
    }

    #[test]
    fn shared_lists_are_held_once_and_a_match_gives_the_context_back() {
        let mut a = ctx(7, IocKind::Domain, "evil.example");
        a.sources = vec!["feed-b".into(), "feed-a".into()];
        a.warninglists = vec!["List A".into()];
        a.first_seen = None;
        a.last_seen = Some(5_000);
        a.confidence = None;
        let b = ctx(8, IocKind::Ip, "192.0.2.9");
        let c = ctx(9, IocKind::Ip, "192.0.2.10");
        let mut builder = IntelSnapshot::builder();
        for ioc in [a.clone(), b.clone(), c] {
            builder.push(ioc);
        }
        let (snapshot, refused) = builder.finish(false);
        assert!(refused.is_empty());
        // The empty list, ["feed-a"], ["tlp:green"], ["feed-b", "feed-a"], ["List A"].
        assert_eq!(snapshot.lists.len(), 5);
        assert_eq!(snapshot.context(0), Some(a));
        assert_eq!(snapshot.context(1), Some(b));
        assert_eq!(snapshot.context(3), None);

        let mut doc = json!({"dns": {"question": {"name": "evil.example"}}});
        let out = snapshot.apply(&mut doc, event(Uuid::new_v4()));
        assert_eq!(out.matches.len(), 1);
        assert_eq!(out.detections[0].rule_id, "dozor-intel/feed-b/domain");
        let e = &doc["threat"]["enrichments"][0];
        assert_eq!(e["dozor"]["sources"], json!(["feed-b", "feed-a"]));
        assert_eq!(e["dozor"]["warninglists"], json!(["List A"]));
        assert_eq!(e["indicator"]["last_seen"], "1970-01-01T00:00:05.000Z");
        assert!(e["indicator"].get("first_seen").is_none());
        assert!(e["indicator"].get("confidence").is_none());
    }

    #[test]
    fn a_value_the_index_refuses_is_reported_and_the_rest_indexed() {
        let (snapshot, refused) = IntelSnapshot::build(
            vec![
                ctx(1, IocKind::Sha256, "not-a-hash"),
                ctx(2, IocKind::Ip, "192.0.2.1"),
            ],
            false,
        );
        assert_eq!(snapshot.len(), 1);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].0, 1);
    }
}
