//! Threat intelligence: the indicator search (with the form to add one by hand), one
//! indicator (its sources, matches, warninglist hits, the enable/disable switch), the sources
//! with their last sync, the recent matches, and the "Threat intelligence" panel of an alert
//! (from its events' `threat.enrichments`).

use std::collections::{HashMap, HashSet};

use askama::Template;
use dozor_model::{IntelSource, IntelSyncStatus, IocView, StoredEvent};
use serde_json::Value;

use super::layout::Layout;
use super::overview::duration;
use super::{When, clip, render, when};
use crate::i18n::Tr;
use crate::url::{Query, query_value, segment};
use crate::view::{
    IOC_KINDS, IntelMatchesView, IntelSourcesView, IntelView, IocDetailView, MatchView, PageCtx,
};

/// Longest value shown in a table cell (the indicator's page shows all of it).
const VALUE_CLIP: usize = 160;
/// Tags shown in a table row.
const ROW_TAGS: usize = 6;
/// Indicators the alert page's panel lists at most.
const THREAT_ROWS: usize = 50;

// ---------------------------------------------------------------- shared pieces

/// The catalog key of an indicator kind's name.
fn kind_key(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "ip" => "intel.kind.ip",
        "cidr" => "intel.kind.cidr",
        "domain" => "intel.kind.domain",
        "hostname" => "intel.kind.hostname",
        "url" => "intel.kind.url",
        "md5" => "intel.kind.md5",
        "sha1" => "intel.kind.sha1",
        "sha256" => "intel.kind.sha256",
        "sha512" => "intel.kind.sha512",
        "imphash" => "intel.kind.imphash",
        "filename" => "intel.kind.filename",
        "email" => "intel.kind.email",
        "registry_key" => "intel.kind.registry_key",
        "user_agent" => "intel.kind.user_agent",
        "ja3" => "intel.kind.ja3",
        _ => return None,
    })
}

/// An indicator kind as the pages name it: translated when known, else as it is.
fn kind_text(tr: &Tr, kind: &str) -> String {
    kind_key(kind).map_or_else(|| kind.to_owned(), |k| tr.t(k).to_owned())
}

fn ioc_href(id: i64) -> String {
    format!("/ui/intel/iocs/{id}")
}

/// The indicator search for a value.
fn search_href(value: &str) -> String {
    let mut q = Query::new();
    q.push("q", value);
    q.url("/ui/intel")
}

fn source_href(name: &str) -> String {
    let mut q = Query::new();
    q.push("source", name);
    q.url("/ui/intel")
}

/// The event search that finds one event: its id in the millisecond of its time.
fn event_href(event_id: &str, ts: i64) -> String {
    let mut q = Query::new();
    q.push("q", format!("event.id:{}", query_value(event_id)));
    q.push("range", "custom");
    q.push("from", ts.to_string());
    q.push("to", (ts + 1).to_string());
    q.url("/ui/events")
}

fn agent_link(names: &HashMap<String, String>, id: &str) -> (String, String) {
    (
        format!("/ui/agents/{}", segment(id)),
        names.get(id).cloned().unwrap_or_else(|| clip(id, 13)),
    )
}

/// An option of a `<select>`.
struct Opt {
    value: String,
    label: String,
    selected: bool,
}

fn kind_options(tr: &Tr, selected: &str) -> Vec<Opt> {
    IOC_KINDS
        .iter()
        .map(|k| Opt {
            value: (*k).to_owned(),
            label: kind_text(tr, k),
            selected: *k == selected,
        })
        .collect()
}

/// The tabs of the intelligence section.
struct Tab {
    href: &'static str,
    label: &'static str,
    active: bool,
}

fn tabs(tr: &Tr, current: &str) -> Vec<Tab> {
    [
        ("/ui/intel", "intel.tab.iocs", "iocs"),
        ("/ui/intel/sources", "intel.tab.sources", "sources"),
        ("/ui/intel/matches", "intel.tab.matches", "matches"),
    ]
    .into_iter()
    .map(|(href, key, name)| Tab {
        href,
        label: tr.t(key),
        active: name == current,
    })
    .collect()
}

/// Whether an indicator is matched now: `active`, `disabled` or `expired`.
fn state_of(v: &IocView) -> (&'static str, &'static str) {
    if !v.ioc.enabled {
        ("disabled", "intel.state.disabled")
    } else if v.active {
        ("active", "intel.state.active")
    } else {
        ("expired", "intel.state.expired")
    }
}

/// A decay score's class: how much is left of the indicator's confidence.
fn decay_class(score: f64) -> &'static str {
    if score >= 60.0 {
        "decay decay-high"
    } else if score >= 25.0 {
        "decay decay-mid"
    } else {
        "decay decay-low"
    }
}

/// An indicator as the search shows it.
struct IocRow {
    href: String,
    value: String,
    kind: String,
    tags: Vec<String>,
    more_tags: String,
    /// (href, name)
    sources: Vec<(String, String)>,
    confidence: String,
    decay: String,
    decay_class: &'static str,
    warninglists: Vec<String>,
    state: &'static str,
    state_text: &'static str,
    to_ids: bool,
    last_seen: Option<When>,
    sightings: String,
}

fn ioc_row(tr: &Tr, v: &IocView) -> IocRow {
    let i = &v.ioc;
    let (state, state_key) = state_of(v);
    IocRow {
        href: ioc_href(i.id),
        value: clip(&i.value, VALUE_CLIP),
        kind: kind_text(tr, &i.kind),
        tags: i.tags.iter().take(ROW_TAGS).map(|t| clip(t, 60)).collect(),
        more_tags: if i.tags.len() > ROW_TAGS {
            tr.tn("intel.more", (i.tags.len() - ROW_TAGS) as u64)
        } else {
            String::new()
        },
        sources: i
            .sources
            .iter()
            .map(|s| (source_href(&s.name), s.name.clone()))
            .collect(),
        confidence: i.confidence.map(|c| tr.num(c)).unwrap_or_default(),
        decay: tr.dec(v.decay_score, 1),
        decay_class: decay_class(v.decay_score),
        warninglists: i.warninglists.clone(),
        state,
        state_text: tr.t(state_key),
        to_ids: i.to_ids,
        last_seen: i.last_seen.or(i.first_seen).map(|t| when(tr, t)),
        sightings: tr.num(i.sightings),
    }
}

/// A match as the tables show it.
struct MatchRow {
    matched: When,
    event_when: When,
    ioc_href: String,
    ioc_value: String,
    kind: String,
    field: String,
    observed: String,
    /// (href, text)
    agent: Option<(String, String)>,
    retro: bool,
    alerted: bool,
    /// (href, text): the alert, or the alerts of the indicator's rule.
    alert: Option<(String, String)>,
    sighting: String,
    sighting_text: &'static str,
    event_href: String,
}

fn sighting_key(s: &str) -> Option<&'static str> {
    Some(match s {
        "pending" => "intel.sighting.pending",
        "sent" => "intel.sighting.sent",
        "failed" => "intel.sighting.failed",
        _ => return None,
    })
}

fn match_row(tr: &Tr, m: &MatchView, names: &HashMap<String, String>) -> MatchRow {
    let x = &m.matched;
    let alert = match (m.alert_id, &m.rule_id) {
        (Some(id), _) => Some((format!("/ui/alerts/{id}"), format!("#{id}"))),
        (None, Some(rule)) if x.alerted => {
            let mut q = Query::new();
            q.push("status_any", "1");
            q.push("rule", rule);
            q.push_opt("agent", x.agent_id.as_deref());
            Some((q.url("/ui/alerts"), tr.t("intel.rule_alerts").to_owned()))
        }
        _ => None,
    };
    MatchRow {
        matched: when(tr, x.matched_at),
        event_when: when(tr, x.event_ts),
        ioc_href: ioc_href(x.ioc_id),
        ioc_value: clip(&x.value, VALUE_CLIP),
        kind: kind_text(tr, &x.kind),
        field: x.field.clone(),
        observed: clip(&x.observed, VALUE_CLIP),
        agent: x.agent_id.as_deref().map(|id| agent_link(names, id)),
        retro: x.retro,
        alerted: x.alerted,
        alert,
        sighting: x.sighting.clone(),
        sighting_text: sighting_key(&x.sighting).map_or("", |k| tr.t(k)),
        event_href: event_href(&x.event_id, x.event_ts),
    }
}

// ---------------------------------------------------------------- the search

#[derive(Template)]
#[template(path = "intel.html")]
struct IntelPage {
    l: Layout,
    tr: Tr,
    tabs: Vec<Tab>,
    available: bool,
    error: Option<&'static str>,
    q: String,
    tag: String,
    active: bool,
    kinds: Vec<Opt>,
    sources: Vec<Opt>,
    add_kinds: Vec<Opt>,
    rows: Vec<IocRow>,
    total: String,
    next_href: Option<String>,
    first_href: Option<String>,
}

/// The indicator search: filters, one page in id order, the form to add one (analysts+).
pub fn intel(ctx: &PageCtx, v: &IntelView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let l = Layout::new(ctx, &tr, "intel", tr.t("intel.iocs_title").to_owned());
    let p = &v.params;
    let mut names = v.sources.clone();
    if !p.source.is_empty() && !names.contains(&p.source) {
        names.push(p.source.clone());
    }
    let next_href = v.next_cursor.as_ref().map(|c| {
        let mut q = p.filter_query();
        q.push("cursor", c);
        q.url("/ui/intel")
    });
    let first_href = p.cursor.as_ref().map(|_| p.filter_query().url("/ui/intel"));
    render(&IntelPage {
        tabs: tabs(&tr, "iocs"),
        available: v.available,
        error: v.error.as_deref().and_then(|k| tr.lookup(k)),
        q: p.q.clone(),
        tag: p.tag.clone(),
        active: p.active,
        kinds: kind_options(&tr, &p.kind),
        sources: names
            .into_iter()
            .map(|n| Opt {
                selected: n == p.source,
                label: n.clone(),
                value: n,
            })
            .collect(),
        add_kinds: kind_options(&tr, "domain"),
        rows: v.iocs.iter().map(|i| ioc_row(&tr, i)).collect(),
        total: tr.tn("intel.count", v.total),
        next_href,
        first_href,
        l,
        tr,
    })
}

// ---------------------------------------------------------------- one indicator

struct SourceRefRow {
    name: String,
    href: String,
    object_ids: Vec<String>,
    added: When,
    seen: When,
}

#[derive(Template)]
#[template(path = "ioc_detail.html")]
struct IocDetailPage {
    l: Layout,
    tr: Tr,
    tabs: Vec<Tab>,
    r: IocRow,
    value: String,
    kind_code: String,
    misp_type: String,
    enabled: bool,
    enabled_action: String,
    first_seen: Option<When>,
    last_seen: Option<When>,
    expires: Option<When>,
    created: When,
    updated: When,
    last_sighting: Option<When>,
    all_tags: Vec<String>,
    sources: Vec<SourceRefRow>,
    matches: Vec<MatchRow>,
    show_ioc: bool,
    matches_href: String,
    search_href: String,
}

/// One indicator: every source with its object ids, the tags, warninglist hits, its matches
/// with links to their alerts and events, and the enable/disable switch (analysts+).
pub fn ioc_detail(ctx: &PageCtx, v: &IocDetailView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let i = &v.ioc.ioc;
    let l = Layout::new(
        ctx,
        &tr,
        "ioc",
        tr.tf(
            "intel.ioc_title",
            &[
                ("kind", &kind_text(&tr, &i.kind)),
                ("value", &clip(&i.value, 80)),
            ],
        ),
    );
    let mut q = Query::new();
    q.push("ioc", i.id.to_string());
    render(&IocDetailPage {
        tabs: tabs(&tr, "iocs"),
        r: ioc_row(&tr, &v.ioc),
        value: i.value.clone(),
        kind_code: i.kind.clone(),
        misp_type: i.misp_type.clone().unwrap_or_default(),
        enabled: i.enabled,
        enabled_action: format!("/ui/intel/iocs/{}/enabled", i.id),
        first_seen: i.first_seen.map(|t| when(&tr, t)),
        last_seen: i.last_seen.map(|t| when(&tr, t)),
        expires: i.expires.map(|t| when(&tr, t)),
        created: when(&tr, i.created_at),
        updated: when(&tr, i.updated_at),
        last_sighting: i.last_sighting.map(|t| when(&tr, t)),
        all_tags: i.tags.clone(),
        sources: i
            .sources
            .iter()
            .map(|s| SourceRefRow {
                name: s.name.clone(),
                href: source_href(&s.name),
                object_ids: s.object_ids.clone(),
                added: when(&tr, s.added_at),
                seen: when(&tr, s.seen_at),
            })
            .collect(),
        matches: v
            .matches
            .iter()
            .map(|m| match_row(&tr, m, &v.agent_names))
            .collect(),
        show_ioc: false,
        matches_href: q.url("/ui/intel/matches"),
        search_href: search_href(&i.value),
        l,
        tr,
    })
}

// ---------------------------------------------------------------- sources

struct SyncRow {
    status: String,
    status_text: String,
    finished: When,
    took: String,
    counts: String,
    error: String,
    skipped: Vec<String>,
    skipped_more: String,
}

fn sync_status_key(s: &str) -> Option<&'static str> {
    Some(match s {
        "ok" => "intel.sync.ok",
        "partial" => "intel.sync.partial",
        "failed" => "intel.sync.failed",
        _ => return None,
    })
}

fn sync_row(tr: &Tr, s: &IntelSyncStatus) -> SyncRow {
    let count = |key: &'static str, n: u64| tr.tf(key, &[("n", &tr.num(n))]);
    let mut counts = vec![
        count("intel.sync.added", s.added),
        count("intel.sync.updated", s.updated),
        count("intel.sync.unchanged", s.unchanged),
        count("intel.sync.expired", s.expired),
        count("intel.sync.skipped", s.skipped),
    ];
    if s.warninglisted > 0 {
        counts.push(count("intel.sync.warninglisted", s.warninglisted));
    }
    if s.ignored > 0 {
        counts.push(count("intel.sync.ignored", s.ignored));
    }
    if s.retro_matches > 0 {
        counts.push(count("intel.sync.retro", s.retro_matches));
    }
    let took = (s.finished_at - s.started_at).max(0);
    let shown = s.skipped_examples.len() as u64;
    SyncRow {
        status: s.status.clone(),
        status_text: sync_status_key(&s.status)
            .map_or_else(|| s.status.clone(), |k| tr.t(k).to_owned()),
        finished: when(tr, s.finished_at),
        took: if took < 1000 {
            tr.tf("dur.ms", &[("n", &tr.num(took))])
        } else {
            tr.tf("dur.s", &[("n", &tr.dec(took as f64 / 1000.0, 1))])
        },
        counts: counts.join(" · "),
        error: s
            .error
            .as_deref()
            .map(|e| clip(e, 2000))
            .unwrap_or_default(),
        skipped: s.skipped_examples.iter().map(|e| clip(e, 300)).collect(),
        skipped_more: if s.skipped > shown {
            tr.tn("intel.more", s.skipped - shown)
        } else {
            String::new()
        },
    }
}

struct SourceRow {
    name: String,
    iocs_href: String,
    sync_action: String,
    kind: String,
    schedule: String,
    enabled: bool,
    last: Option<SyncRow>,
    settings: String,
    cursor: String,
    updated: String,
}

fn source_row(tr: &Tr, s: &IntelSource) -> SourceRow {
    SourceRow {
        name: s.name.clone(),
        iocs_href: source_href(&s.name),
        sync_action: format!("/ui/intel/sources/{}/sync", segment(&s.name)),
        kind: s
            .spec
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        schedule: if s.interval_secs == 0 {
            tr.t("intel.on_demand").to_owned()
        } else {
            tr.tf(
                "intel.every",
                &[(
                    "interval",
                    &duration(
                        tr,
                        i64::try_from(s.interval_secs).unwrap_or(i64::MAX / 1000) * 1000,
                    ),
                )],
            )
        },
        enabled: s.enabled,
        last: s.last_sync.as_ref().map(|x| sync_row(tr, x)),
        settings: serde_json::to_string_pretty(&s.spec).unwrap_or_default(),
        cursor: s.cursor.clone().unwrap_or_default(),
        updated: tr.tf(
            "agent.revoked_by",
            &[("time", &tr.dt(s.updated_at)), ("who", &s.updated_by)],
        ),
    }
}

#[derive(Template)]
#[template(path = "intel_sources.html")]
struct IntelSourcesPage {
    l: Layout,
    tr: Tr,
    tabs: Vec<Tab>,
    available: bool,
    rows: Vec<SourceRow>,
    shown: String,
}

/// The sources: kind, schedule, the last sync (counts, errors, skipped objects), the
/// settings without their secrets, and "Sync now" (analysts+).
pub fn intel_sources(ctx: &PageCtx, v: &IntelSourcesView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let l = Layout::new(
        ctx,
        &tr,
        "intel-sources",
        tr.t("intel.sources_title").to_owned(),
    );
    render(&IntelSourcesPage {
        tabs: tabs(&tr, "sources"),
        available: v.available,
        rows: v.sources.iter().map(|s| source_row(&tr, s)).collect(),
        shown: tr.tn("intel.sources_count", v.sources.len() as u64),
        l,
        tr,
    })
}

// ---------------------------------------------------------------- matches

#[derive(Template)]
#[template(path = "intel_matches.html")]
struct IntelMatchesPage {
    l: Layout,
    tr: Tr,
    tabs: Vec<Tab>,
    available: bool,
    error: Option<&'static str>,
    ioc: Option<(String, String)>,
    matches: Vec<MatchRow>,
    show_ioc: bool,
    shown: String,
    next_href: Option<String>,
    first_href: Option<String>,
}

/// The recent matches, newest first, each with its indicator, event and alert.
pub fn intel_matches(ctx: &PageCtx, v: &IntelMatchesView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let l = Layout::new(
        ctx,
        &tr,
        "intel-matches",
        tr.t("intel.matches_title").to_owned(),
    );
    let p = &v.params;
    let next_href = v.next_cursor.as_ref().map(|c| {
        let mut q = p.filter_query();
        q.push("cursor", c);
        q.url("/ui/intel/matches")
    });
    let first_href = p
        .cursor
        .as_ref()
        .map(|_| p.filter_query().url("/ui/intel/matches"));
    render(&IntelMatchesPage {
        tabs: tabs(&tr, "matches"),
        available: v.available,
        error: v.error.as_deref().and_then(|k| tr.lookup(k)),
        ioc: p.ioc.map(|id| (ioc_href(id), format!("#{id}"))),
        matches: v
            .matches
            .iter()
            .map(|m| match_row(&tr, m, &v.agent_names))
            .collect(),
        show_ioc: true,
        shown: tr.tn("intel.matches_count", v.matches.len() as u64),
        next_href,
        first_href,
        l,
        tr,
    })
}

// ---------------------------------------------------------------- the alert's panel

/// An indicator an event of an alert matched, from the event's `threat.enrichments`.
pub(crate) struct ThreatRow {
    pub value: String,
    pub kind: String,
    pub field: String,
    pub observed: String,
    pub feed: String,
    pub sources: Vec<String>,
    pub confidence: String,
    pub tlp: String,
    pub tlp_class: String,
    pub tags: Vec<String>,
    pub warninglists: Vec<String>,
    /// The indicator's page when its id is known, else a search for its value.
    pub href: String,
    pub known: bool,
}

fn text_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut v = v;
    for p in path {
        v = v.get(p)?;
    }
    v.as_str().filter(|s| !s.is_empty())
}

fn strings_at(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The value of an ECS `threat.indicator`: wherever its type keeps it.
fn indicator_value(i: &Value) -> Option<String> {
    const PATHS: [&[&str]; 10] = [
        &["ip"],
        &["url", "full"],
        &["url", "domain"],
        &["file", "pe", "imphash"],
        &["file", "name"],
        &["email", "address"],
        &["registry", "path"],
        &["user_agent", "original"],
        &["tls", "client", "ja3"],
        &["name"],
    ];
    if let Some(hash) = i
        .get("file")
        .and_then(|f| f.get("hash"))
        .and_then(Value::as_object)
        .and_then(|h| h.values().find_map(Value::as_str))
    {
        return Some(hash.to_owned());
    }
    PATHS.iter().find_map(|p| text_at(i, p)).map(str::to_owned)
}

/// The kind of an enrichment's indicator: ours when it is Dozor's, else the ECS type.
fn enrichment_kind(tr: &Tr, i: &Value) -> String {
    let ours = if let Some(h) = i
        .get("file")
        .and_then(|f| f.get("hash"))
        .and_then(Value::as_object)
    {
        h.keys().next().map(String::as_str)
    } else if i.get("ip").is_some() {
        Some(if text_at(i, &["ip"]).is_some_and(|v| v.contains('/')) {
            "cidr"
        } else {
            "ip"
        })
    } else if text_at(i, &["url", "full"]).is_some() {
        Some("url")
    } else if text_at(i, &["url", "domain"]).is_some() {
        Some("domain")
    } else if text_at(i, &["file", "pe", "imphash"]).is_some() {
        Some("imphash")
    } else if text_at(i, &["file", "name"]).is_some() {
        Some("filename")
    } else if text_at(i, &["email", "address"]).is_some() {
        Some("email")
    } else if text_at(i, &["registry", "path"]).is_some() {
        Some("registry_key")
    } else if text_at(i, &["user_agent", "original"]).is_some() {
        Some("user_agent")
    } else if text_at(i, &["tls", "client", "ja3"]).is_some() {
        Some("ja3")
    } else {
        None
    };
    match ours.and_then(kind_key) {
        Some(k) => tr.t(k).to_owned(),
        None => text_at(i, &["type"]).unwrap_or("").to_owned(),
    }
}

fn confidence_text(tr: &Tr, c: &str) -> String {
    match c.to_ascii_lowercase().as_str() {
        "high" => tr.t("intel.conf.high").to_owned(),
        "medium" => tr.t("intel.conf.medium").to_owned(),
        "low" => tr.t("intel.conf.low").to_owned(),
        "none" => tr.t("intel.conf.none").to_owned(),
        _ => c.to_owned(),
    }
}

fn threat_row(tr: &Tr, e: &Value, fallback_feed: Option<&str>) -> Option<ThreatRow> {
    let i = e.get("indicator")?;
    let matched = e.get("matched");
    let observed = matched
        .and_then(|m| text_at(m, &["atomic"]))
        .unwrap_or("")
        .to_owned();
    let value = indicator_value(i).unwrap_or_else(|| observed.clone());
    if value.is_empty() {
        return None;
    }
    let id = e
        .get("dozor")
        .and_then(|d| d.get("ioc_id"))
        .and_then(Value::as_i64)
        .or_else(|| {
            matched
                .and_then(|m| text_at(m, &["id"]))
                .and_then(|s| s.parse().ok())
        })
        .filter(|id| *id > 0);
    let dozor = e.get("dozor").cloned().unwrap_or(Value::Null);
    let tlp = text_at(i, &["marking", "tlp"])
        .unwrap_or("")
        .to_ascii_uppercase();
    let tlp_class = match tlp.as_str() {
        "RED" | "AMBER" | "AMBER+STRICT" | "GREEN" | "CLEAR" | "WHITE" => {
            format!("tlp tlp-{}", tlp.to_ascii_lowercase().replace('+', "-"))
        }
        _ => "tlp".to_owned(),
    };
    Some(ThreatRow {
        kind: enrichment_kind(tr, i),
        field: matched
            .and_then(|m| text_at(m, &["field"]))
            .unwrap_or("")
            .to_owned(),
        observed: clip(&observed, VALUE_CLIP),
        feed: text_at(e, &["feed", "name"])
            .or_else(|| text_at(i, &["provider"]))
            .or(fallback_feed)
            .unwrap_or("")
            .to_owned(),
        sources: strings_at(&dozor, "sources"),
        confidence: text_at(i, &["confidence"])
            .map(|c| confidence_text(tr, c))
            .unwrap_or_default(),
        tlp,
        tlp_class,
        tags: strings_at(&dozor, "tags")
            .into_iter()
            .take(ROW_TAGS)
            .collect(),
        warninglists: strings_at(&dozor, "warninglists"),
        href: match id {
            Some(id) => ioc_href(id),
            None => search_href(&value),
        },
        known: id.is_some(),
        value: clip(&value, VALUE_CLIP),
    })
}

/// The indicators the events matched (`threat.enrichments[]`, or a lone
/// `threat.indicator`), once per indicator and field.
pub(crate) fn threat_rows(tr: &Tr, events: &[StoredEvent]) -> Vec<ThreatRow> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for ev in events {
        let Some(threat) = ev.doc.get("threat") else {
            continue;
        };
        let feed = text_at(threat, &["feed", "name"]);
        let lone;
        let list: &[Value] = match threat.get("enrichments").and_then(Value::as_array) {
            Some(list) if !list.is_empty() => list,
            _ => match threat.get("indicator") {
                Some(i) => {
                    lone = [serde_json::json!({"indicator": i})];
                    &lone
                }
                None => continue,
            },
        };
        for e in list {
            let Some(row) = threat_row(tr, e, feed) else {
                continue;
            };
            if seen.insert((row.href.clone(), row.field.clone())) {
                out.push(row);
                if out.len() == THREAT_ROWS {
                    return out;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;
    use serde_json::json;

    fn event(doc: Value) -> StoredEvent {
        StoredEvent {
            id: uuid::Uuid::nil(),
            ts: 0,
            received_at: 0,
            agent_id: None,
            doc,
        }
    }

    #[test]
    fn enrichments_become_rows() {
        let tr = Tr::new(Lang::En, 0);
        let doc = json!({"threat": {
        "feed": {"name": "feed-a"},
        "enrichments": [
            {"indicator": {"type": "domain-name", "url": {"domain": "evil.example"},
                "confidence": "High", "marking": {"tlp": "AMBER"}, "provider": "feed-a"},
             "matched": {"atomic": "evil.example", "field": "dns.question.name", "id": "7",
                "type": "indicator_match_rule"},
             "feed": {"name": "feed-a"},
             "dozor": {"ioc_id": 7, "sources": ["feed-a", "manual"], "tags": ["tlp:amber"],
                "to_ids": true, "warninglists": []}},
            {"indicator": {"type": "file", "file": {"hash": {"sha256": "ab".repeat(32)}}},
             "matched": {"atomic": "AB", "field": "file.hash.sha256"}},
        ]}});
        let rows = threat_rows(&tr, &[event(doc.clone()), event(doc)]);
        assert_eq!(rows.len(), 2, "one row per indicator and field");
        assert_eq!(rows[0].href, "/ui/intel/iocs/7");
        assert_eq!(rows[0].kind, "Domain");
        assert_eq!(rows[0].confidence, "High");
        assert_eq!(rows[0].tlp_class, "tlp tlp-amber");
        assert_eq!(rows[0].sources, ["feed-a", "manual"]);
        // no id: a search by value; the feed from threat.feed
        assert!(!rows[1].known);
        assert_eq!(rows[1].href, format!("/ui/intel?q={}", "ab".repeat(32)));
        assert_eq!(rows[1].feed, "feed-a");
        assert_eq!(rows[1].kind, "SHA-256");
        // a lone threat.indicator
        let lone = json!({"threat": {"indicator": {"type": "ipv4-addr", "ip": "192.0.2.1"}}});
        let rows = threat_rows(&tr, &[event(lone)]);
        assert_eq!(rows[0].value, "192.0.2.1");
        assert!(threat_rows(&tr, &[event(json!({"threat": 5}))]).is_empty());
    }

    #[test]
    fn event_links_find_one_event() {
        assert_eq!(
            event_href("0190a-x", 1000),
            "/ui/events?q=event.id%3A0190a-x&range=custom&from=1000&to=1001"
        );
    }
}
