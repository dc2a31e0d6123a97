//! The ATT&CK matrix: one column per tactic of ATT&CK v19 Enterprise, one cell per technique
//! (sub-techniques rolled into it), each cell coloured by the alerts of a period that carry
//! the technique and marked by how many enabled, active rules detect it.
//!
//! The server counts (one pass over the period's alerts, the rule catalog in memory) into
//! [`TechniqueCounts`]; this module lays the counts out and links a cell with alerts to the
//! alert list filtered by the technique's tag (`tag=attack.t1059` finds `attack.t1059.001`
//! too).

use std::collections::{BTreeSet, HashMap};

use askama::Template;
use dozor_model::AlertTime;

use super::layout::Layout;
use super::render;
use crate::attack_names::{ATTACK_VERSION, TACTICS, matrix_column, technique, techniques};
use crate::i18n::Tr;
use crate::url::Query;
use crate::view::{AlertsParams, PageCtx, Range, TimeRange};

/// The matrix's parameters: `range` (`24h`, `7d`, `30d`, `all`) and `by` (`detected`, the
/// default, or `event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttackParams {
    /// The period: one of [`AttackParams::RANGES`].
    pub range: Range,
    /// Which time of an alert the period applies to.
    pub by: AlertTime,
}

impl Default for AttackParams {
    fn default() -> Self {
        AttackParams {
            range: Self::DEFAULT_RANGE,
            by: Self::DEFAULT_BY,
        }
    }
}

impl AttackParams {
    /// The periods offered, in the order shown.
    pub const RANGES: [Range; 4] = [Range::Hours24, Range::Days7, Range::Days30, Range::All];
    /// The period when none is asked for.
    pub const DEFAULT_RANGE: Range = Range::Days7;
    /// The time basis when none is asked for: detection time, so fresh detections on
    /// uploaded old logs count.
    pub const DEFAULT_BY: AlertTime = AlertTime::Detected;

    /// Reads the query string's pairs (unknown values fall back to the defaults).
    pub fn parse(pairs: &[(String, String)]) -> AttackParams {
        let value = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim());
        AttackParams {
            range: value("range")
                .and_then(Range::from_code)
                .filter(|r| Self::RANGES.contains(r))
                .unwrap_or(Self::DEFAULT_RANGE),
            by: value("by")
                .and_then(|b| b.parse().ok())
                .unwrap_or(Self::DEFAULT_BY),
        }
    }

    /// The query string (defaults left out).
    pub fn query(&self) -> Query {
        let mut q = Query::new();
        if self.range != Self::DEFAULT_RANGE {
            q.push("range", self.range.code());
        }
        if self.by != Self::DEFAULT_BY {
            q.push("by", self.by.as_str());
        }
        q
    }

    /// The start of the period for `now`, ms (`None`: all time).
    pub fn from(&self, now: i64) -> Option<i64> {
        self.range.span_ms().map(|span| now - span)
    }

    /// The alert list of a tag in this period, every status.
    pub fn alerts_href(&self, tag: &str) -> String {
        AlertsParams {
            tag: tag.to_owned(),
            by: self.by,
            time: TimeRange {
                range: self.range,
                ..TimeRange::default()
            },
            ..AlertsParams::default()
        }
        .filter_query()
        .url("/ui/alerts")
    }
}

/// The technique id of an ATT&CK tag, upper case: `attack.t1059.001` → `T1059.001`,
/// `attack.T1003` → `T1003`; `None` for any other tag.
pub fn technique_id(tag: &str) -> Option<String> {
    let tag = tag.trim();
    let rest = tag
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("attack."))
        .map(|_| &tag[7..])?;
    let digits = rest.strip_prefix(['t', 'T'])?;
    let (main, sub) = match digits.split_once('.') {
        Some((m, s)) => (m, Some(s)),
        None => (digits, None),
    };
    let all_digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(main, 4) || sub.is_some_and(|s| !all_digits(s, 3)) {
        return None;
    }
    Some(match sub {
        Some(s) => format!("T{main}.{s}"),
        None => format!("T{main}"),
    })
}

/// How many alerts (or rules) carry each ATT&CK technique: what the matrix colours by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TechniqueCounts {
    /// Per technique (`T1059`), its sub-techniques rolled in: each item counts once however
    /// many of its tags name the technique.
    pub by_technique: HashMap<String, u64>,
    /// Per id as tagged (`T1059.001`, or `T1059` itself).
    pub by_id: HashMap<String, u64>,
    /// Items added.
    pub items: u64,
    /// Items with at least one technique tag.
    pub tagged: u64,
}

impl TechniqueCounts {
    /// Counts one item (an alert, a rule) by its tags.
    pub fn add(&mut self, tags: &[String]) {
        self.items += 1;
        let ids: BTreeSet<String> = tags.iter().filter_map(|t| technique_id(t)).collect();
        if ids.is_empty() {
            return;
        }
        self.tagged += 1;
        let mut parents = BTreeSet::new();
        for id in ids {
            parents.insert(id.split('.').next().unwrap_or(&id).to_owned());
            *self.by_id.entry(id).or_default() += 1;
        }
        for p in parents {
            *self.by_technique.entry(p).or_default() += 1;
        }
    }

    fn of(&self, id: &str) -> u64 {
        self.by_technique.get(id).copied().unwrap_or(0)
    }

    fn of_id(&self, id: &str) -> u64 {
        self.by_id.get(id).copied().unwrap_or(0)
    }
}

/// The matrix page: the period's alert counts and the enabled rules' coverage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttackView {
    /// The parameters the page was asked with.
    pub params: AttackParams,
    /// The alerts of the period, by technique.
    pub alerts: TechniqueCounts,
    /// The enabled, active rules, by technique.
    pub rules: TechniqueCounts,
    /// The period has more alerts than were counted (the newest were).
    pub truncated: bool,
}

/// The alert-count buckets of the cell colours: `heat-1` … `heat-4` from these lower bounds.
const HEAT_FROM: [u64; 4] = [1, 2, 10, 50];

fn heat(n: u64) -> usize {
    HEAT_FROM.iter().filter(|from| n >= **from).count()
}

/// A sub-technique line of a cell.
struct SubRow {
    id: String,
    name: String,
    alerts: u64,
    alerts_text: String,
    rules_text: String,
    href: Option<String>,
}

struct Cell {
    id: &'static str,
    name: &'static str,
    class: String,
    alerts: u64,
    alerts_text: String,
    rules_text: String,
    href: Option<String>,
    subs_text: String,
    subs: Vec<SubRow>,
}

struct Column {
    name: &'static str,
    covered: String,
    cells: Vec<Cell>,
}

struct Chip {
    href: String,
    label: &'static str,
    active: bool,
}

struct Outside {
    id: String,
    name: String,
    note: &'static str,
    alerts: String,
    href: Option<String>,
    rules: String,
}

#[derive(Template)]
#[template(path = "attack.html")]
struct AttackPage {
    l: Layout,
    tr: Tr,
    version: String,
    periods: Vec<Chip>,
    bases: Vec<Chip>,
    summary_alerts: String,
    summary_tagged: String,
    summary_rules: String,
    summary_covered: String,
    truncated: Option<String>,
    heat_legend: Vec<(String, String)>,
    columns: Vec<Column>,
    outside_title: String,
    outside: Vec<Outside>,
}

fn tag_of(id: &str) -> String {
    format!("attack.{}", id.to_ascii_lowercase())
}

fn rules_text(tr: &Tr, n: u64) -> String {
    if n == 0 {
        tr.t("attack.no_rules").to_owned()
    } else {
        tr.tn("attack.rules", n)
    }
}

/// The ATT&CK matrix page.
pub fn attack_matrix(ctx: &PageCtx, v: &AttackView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let l = Layout::new(ctx, &tr, "attack", tr.t("attack.title").to_owned());
    let p = v.params;
    let alerts_href = |tag: &str, n: u64| (n > 0).then(|| p.alerts_href(tag));

    // the sub-techniques of each technique (the table keeps them right after it)
    let mut sub_count: HashMap<&str, u64> = HashMap::new();
    for t in techniques().iter().filter(|t| t.is_sub() && !t.legacy) {
        *sub_count.entry(t.parent_id()).or_default() += 1;
    }
    // the tagged sub-techniques of each technique, with or without a table entry
    let mut tagged_subs: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for id in v.alerts.by_id.keys().chain(v.rules.by_id.keys()) {
        if let Some((parent, _)) = id.split_once('.') {
            tagged_subs.entry(parent).or_default().insert(id.as_str());
        }
    }

    let mut in_matrix = 0u64;
    let mut covered_total = 0u64;
    let mut seen = BTreeSet::new();
    let columns: Vec<Column> = TACTICS
        .iter()
        .map(|tactic| {
            let mut covered = 0u64;
            let cells: Vec<Cell> = matrix_column(tactic)
                .map(|t| {
                    let alerts = v.alerts.of(t.id);
                    let rules = v.rules.of(t.id);
                    if rules > 0 {
                        covered += 1;
                    }
                    if seen.insert(t.id) {
                        in_matrix += 1;
                        covered_total += u64::from(rules > 0);
                    }
                    let subs = tagged_subs
                        .get(t.id)
                        .into_iter()
                        .flatten()
                        .map(|id| {
                            let (a, r) = (v.alerts.of_id(id), v.rules.of_id(id));
                            let known = technique(id);
                            SubRow {
                                id: known.map_or(*id, |k| k.id).to_owned(),
                                name: known.unwrap_or(t).name(ctx.lang).to_owned(),
                                alerts: a,
                                alerts_text: tr.tn("attack.alerts", a),
                                rules_text: rules_text(&tr, r),
                                href: alerts_href(&tag_of(id), a),
                            }
                        })
                        .collect();
                    let n_subs = sub_count.get(t.id).copied().unwrap_or(0);
                    Cell {
                        id: t.id,
                        name: t.name(ctx.lang),
                        class: format!(
                            "heat-{} {}",
                            heat(alerts),
                            if rules > 0 { "covered" } else { "uncovered" }
                        ),
                        alerts,
                        alerts_text: tr.tn("attack.alerts", alerts),
                        rules_text: rules_text(&tr, rules),
                        href: alerts_href(&tag_of(t.id), alerts),
                        subs_text: if n_subs > 0 {
                            tr.tn("attack.subs", n_subs)
                        } else {
                            String::new()
                        },
                        subs,
                    }
                })
                .collect();
            Column {
                name: tr.t(tactic),
                covered: tr.tf(
                    "attack.column_covered",
                    &[
                        ("covered", &tr.num(covered)),
                        ("total", &tr.num(cells.len() as u64)),
                    ],
                ),
                cells,
            }
        })
        .collect();

    // techniques the tags name that the matrix does not show: retired or unknown ids
    let mut outside_ids: Vec<&String> = v
        .alerts
        .by_technique
        .keys()
        .chain(v.rules.by_technique.keys())
        .filter(|id| !seen.contains(id.as_str()))
        .collect();
    outside_ids.sort();
    outside_ids.dedup();
    let outside = outside_ids
        .into_iter()
        .map(|id| {
            let known = technique(id);
            let (a, r) = (v.alerts.of(id), v.rules.of(id));
            Outside {
                id: id.clone(),
                name: known.map(|t| t.name(ctx.lang)).unwrap_or("").to_owned(),
                note: tr.t(if known.is_some() {
                    "attack.retired"
                } else {
                    "attack.unknown"
                }),
                alerts: tr.num(a),
                href: alerts_href(&tag_of(id), a),
                rules: tr.num(r),
            }
        })
        .collect();

    let periods = AttackParams::RANGES
        .iter()
        .map(|r| Chip {
            href: AttackParams { range: *r, ..p }.query().url("/ui/attack"),
            label: tr.t(r.key()),
            active: *r == p.range,
        })
        .collect();
    let bases = [
        (AlertTime::Detected, "attack.by_detected"),
        (AlertTime::Event, "attack.by_event"),
    ]
    .into_iter()
    .map(|(by, key)| Chip {
        href: AttackParams { by, ..p }.query().url("/ui/attack"),
        label: tr.t(key),
        active: by == p.by,
    })
    .collect();
    let mut heat_legend = vec![("heat-0".to_owned(), tr.t("attack.no_alerts").to_owned())];
    for (i, from) in HEAT_FROM.iter().enumerate() {
        let text = match HEAT_FROM.get(i + 1) {
            Some(next) if next - 1 == *from => tr.num(*from),
            Some(next) => format!("{}–{}", tr.num(*from), tr.num(next - 1)),
            None => format!("{}+", tr.num(*from)),
        };
        heat_legend.push((format!("heat-{}", i + 1), text));
    }

    render(&AttackPage {
        version: tr.tf("attack.version", &[("v", ATTACK_VERSION)]),
        periods,
        bases,
        summary_alerts: tr.tn("attack.summary_alerts", v.alerts.items),
        summary_tagged: tr.tf("attack.summary_tagged", &[("n", &tr.num(v.alerts.tagged))]),
        summary_rules: tr.tn("attack.summary_rules", v.rules.items),
        summary_covered: tr.tf(
            "attack.summary_covered",
            &[
                ("covered", &tr.num(covered_total)),
                ("total", &tr.num(in_matrix)),
            ],
        ),
        truncated: v
            .truncated
            .then(|| tr.tn("attack.truncated", v.alerts.items)),
        heat_legend,
        columns,
        outside_title: tr.tf("attack.outside", &[("v", ATTACK_VERSION)]),
        outside,
        l,
        tr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Role;
    use crate::i18n::Lang;

    fn ctx(lang: Lang) -> PageCtx {
        PageCtx {
            lang,
            username: "<b>bold</b>".to_owned(),
            role: Role::Viewer,
            csrf_token: "c5rf".to_owned(),
            path_and_query: "/ui/attack?range=30d".to_owned(),
            flash: None,
            now: 1_795_000_000_000,
        }
    }

    fn tags(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| (*s).to_owned()).collect()
    }

    fn view() -> AttackView {
        let mut v = AttackView {
            params: AttackParams {
                range: Range::Days30,
                by: AlertTime::Detected,
            },
            ..AttackView::default()
        };
        // T1059: 12 alerts (a sub-technique and the technique on one alert count once)
        for i in 0..12 {
            let mut t = tags(&["attack.execution", "attack.t1059.001"]);
            if i % 2 == 0 {
                t.push("attack.T1059".to_owned());
            }
            v.alerts.add(&t);
        }
        v.alerts
            .add(&tags(&["attack.t1003.001", "<script>alert(1)</script>"]));
        v.alerts.add(&tags(&["attack.t1562.001"])); // retired by v19
        v.alerts
            .add(&tags(&["attack.t9999", "attack.t1059<img src=x>"]));
        v.alerts.add(&tags(&["cve.2021-44228"]));
        // rules: two on T1059, one on T1003 (its sub-technique), none elsewhere
        v.rules.add(&tags(&["attack.t1059.001"]));
        v.rules.add(&tags(&["attack.t1059"]));
        v.rules
            .add(&tags(&["attack.t1003.001", "attack.credential-access"]));
        v.rules.add(&tags(&["sigma"]));
        v
    }

    /// The `<li …>` of a technique's cell in the first column that shows it.
    fn cell<'a>(html: &'a str, id: &str) -> &'a str {
        let marker = format!("data-technique=\"{id}\"");
        let at = html.find(&marker).unwrap_or_else(|| panic!("no cell {id}"));
        let start = html[..at].rfind("<li").unwrap();
        let end = at + html[at..].find("</li>\n").unwrap();
        &html[start..end]
    }

    #[test]
    fn tags_give_technique_ids() {
        assert_eq!(technique_id("attack.t1059.001").unwrap(), "T1059.001");
        assert_eq!(technique_id("ATTACK.T1003").unwrap(), "T1003");
        assert_eq!(technique_id(" attack.t1003 ").unwrap(), "T1003");
        for not in [
            "attack.execution",
            "attack.t105",
            "attack.t1059.01",
            "attack.t1059.0011",
            "attack.t1059<x>",
            "t1059",
            "attack.g0016",
            "attack.",
            "атака.t1059",
        ] {
            assert_eq!(technique_id(not), None, "{not}");
        }
        let v = view();
        assert_eq!(v.alerts.items, 16);
        assert_eq!(v.alerts.tagged, 15);
        assert_eq!(v.alerts.by_technique["T1059"], 12);
        assert_eq!(v.alerts.by_id["T1059.001"], 12);
        assert_eq!(v.alerts.by_id["T1059"], 6);
        assert_eq!(v.rules.by_technique["T1059"], 2);
        assert_eq!(v.rules.by_technique["T1003"], 1);
    }

    #[test]
    fn params_round_trip() {
        let pairs = |q: &[(&str, &str)]| -> Vec<(String, String)> {
            q.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let p = AttackParams::parse(&[]);
        assert_eq!(p, AttackParams::default());
        assert_eq!((p.range, p.by), (Range::Days7, AlertTime::Detected));
        assert_eq!(p.query().url("/ui/attack"), "/ui/attack");
        assert_eq!(p.from(100 * 86_400_000), Some(93 * 86_400_000));
        let p = AttackParams::parse(&pairs(&[("range", "all"), ("by", "event")]));
        assert_eq!((p.range, p.by), (Range::All, AlertTime::Event));
        assert_eq!(p.from(5), None);
        assert_eq!(p.query().url("/ui/attack"), "/ui/attack?range=all&by=event");
        // periods the page does not offer fall back to the default
        let p = AttackParams::parse(&pairs(&[("range", "15m"), ("by", "x")]));
        assert_eq!(p, AttackParams::default());
        let p = AttackParams {
            range: Range::Hours24,
            by: AlertTime::Event,
        };
        assert_eq!(
            p.alerts_href("attack.t1059"),
            "/ui/alerts?status_any=1&tag=attack.t1059&range=24h"
        );
        // and the alert list reads it back
        let back = AlertsParams::parse(&pairs(&[
            ("status_any", "1"),
            ("tag", "attack.t1059"),
            ("range", "24h"),
        ]));
        assert_eq!(back.tag, "attack.t1059");
        assert!(back.statuses.is_empty());
        assert_eq!(back.time.range, Range::Hours24);
    }

    #[test]
    fn matrix_is_coloured_by_alerts_and_marked_by_coverage() {
        let v = view();
        for lang in Lang::ALL {
            let html = attack_matrix(&ctx(lang), &v);
            assert!(html.starts_with("<!DOCTYPE html>"));
            assert!(html.trim_end().ends_with("</html>"));
            assert!(!html.contains("template error"));
            for tag in [
                "ul", "li", "section", "details", "table", "nav", "a", "span",
            ] {
                let open = html.matches(&format!("<{tag} ")).count()
                    + html.matches(&format!("<{tag}>")).count();
                let close = html.matches(&format!("</{tag}>")).count();
                assert_eq!(open, close, "{lang:?}: <{tag}> not balanced");
            }
            // one column per tactic, in the matrix order
            assert_eq!(html.matches("<section class=\"tactic\"").count(), 15);
            let mut at = 0;
            for tactic in TACTICS {
                let name = format!("<h2>{}</h2>", Tr::new(lang, 0).t(tactic));
                let i = html[at..].find(&name).expect(tactic);
                at += i;
            }
            // T1059: 12 alerts (heat-3), 2 rules, linked to its alerts
            let t1059 = cell(&html, "T1059");
            assert!(t1059.contains("class=\"tech heat-3 covered\""), "{t1059}");
            assert!(t1059.contains(
                "href=\"/ui/alerts?status_any=1&#38;tag=attack.t1059&#38;by=detected&#38;range=30d\""
            ));
            // the sub-technique with alerts is listed and linked on its own
            assert!(t1059.contains("tag=attack.t1059.001&#38;"));
            assert!(t1059.contains("<span class=\"tech-id\">T1059.001</span>"));
            // T1003: one alert (through a sub-technique), one rule
            let t1003 = cell(&html, "T1003");
            assert!(t1003.contains("class=\"tech heat-1 covered\""), "{t1003}");
            // a technique no alert and no rule names: not coloured, not linked, uncovered
            let t1595 = cell(&html, "T1595");
            assert!(t1595.contains("class=\"tech heat-0 uncovered\""), "{t1595}");
            assert!(!t1595.contains("href="));
            assert!(html.matches(" uncovered\"").count() > 100);
            // the legend explains the colours and the marks
            assert!(html.contains("class=\"legend attack-legend\""));
            for class in ["heat-0", "heat-1", "heat-2", "heat-3", "heat-4"] {
                assert!(html.contains(&format!("<span class=\"swatch {class}\"></span>")));
            }
            assert!(html.contains("<span class=\"swatch covered\"></span>"));
            assert!(html.contains("<span class=\"swatch uncovered\"></span>"));
            // retired and unknown ids are listed below, not lost
            assert!(html.contains("<td><code>T1562</code></td>"));
            assert!(html.contains("<td><code>T9999</code></td>"));
            assert!(html.contains("tag=attack.t1562&#38;"));
            // tags are data: nothing of them gets through as markup
            assert!(!html.contains("<script>alert"));
            assert!(!html.contains("<img src=x"));
            assert!(!html.contains("<b>bold"));
            assert!(!html.contains(" style="));
            assert_eq!(html.matches("<script").count(), 1);
            // the navigation has the entry, active
            assert!(html.contains(
                "<a href=\"/ui/attack\" class=\"active\" aria-current=\"page\">ATT&#38;CK</a>"
            ));
            // the period and basis switches keep each other
            assert!(html.contains("href=\"/ui/attack?range=all\""));
            assert!(html.contains("href=\"/ui/attack?range=30d&#38;by=event\""));
        }
        let en = attack_matrix(&ctx(Lang::En), &v);
        let ru = attack_matrix(&ctx(Lang::Ru), &v);
        let (en1059, ru1059) = (cell(&en, "T1059"), cell(&ru, "T1059"));
        assert!(en1059.contains("Command and Scripting Interpreter"));
        assert!(en1059.contains("12 alerts"));
        assert!(en1059.contains("2 rules"));
        let subs = techniques()
            .iter()
            .filter(|t| t.is_sub() && !t.legacy && t.parent_id() == "T1059")
            .count() as u64;
        assert!(subs >= 10);
        assert!(en1059.contains(&format!("<summary>{subs} sub-techniques</summary>")));
        assert!(ru1059.contains("Интерпретаторы команд и сценариев"));
        assert!(ru1059.contains("12 алертов"));
        assert!(ru1059.contains("2 правила"));
        assert!(ru1059.contains(&Tr::new(Lang::Ru, 0).tn("attack.subs", subs)));
        assert!(cell(&en, "T1595").contains("no rules"));
        assert!(cell(&ru, "T1595").contains("нет правил"));
        assert!(en.contains("<h2>Execution</h2>"));
        assert!(ru.contains("<h2>Выполнение</h2>"));
        assert!(ru.contains("<h1>Матрица ATT&#38;CK</h1>"));
        // no English of this page's own texts on the Russian page (its text and titles)
        let mut text = String::new();
        for piece in ru.split('<').skip(1) {
            let (tag, after) = piece.split_once('>').unwrap_or((piece, ""));
            if let Some((_, title)) = tag.split_once(" title=\"") {
                text.push_str(title.split('"').next().unwrap_or(""));
            }
            text.push('\n');
            text.push_str(after);
        }
        for (key, en_text, ru_text) in crate::catalog::CATALOG {
            if !key.starts_with("attack.") || en_text == ru_text {
                continue;
            }
            for form in en_text.split('|') {
                for part in form.split(['{', '}']).step_by(2) {
                    let part = part.trim();
                    if part.chars().count() > 3 && !ru_text.contains(part) {
                        assert!(!text.contains(part), "{key}: {part:?} on the Russian page");
                    }
                }
            }
        }
    }

    /// With `DOZOR_UI_SAMPLES` set, the page in both languages next to the other samples
    /// (`ui/attack-en.html`, `ui/attack-ru.html`).
    #[test]
    fn write_attack_samples() {
        let Ok(dir) = std::env::var("DOZOR_UI_SAMPLES") else {
            return;
        };
        let root = std::path::Path::new(&dir).join("ui");
        std::fs::create_dir_all(root.join("static")).unwrap();
        std::fs::write(root.join("static/app.css"), crate::APP_CSS).unwrap();
        std::fs::write(root.join("static/app.js"), crate::APP_JS).unwrap();
        for lang in Lang::ALL {
            let html = attack_matrix(&ctx(lang), &view());
            std::fs::write(root.join(format!("attack-{}.html", lang.code())), html).unwrap();
        }
    }

    #[test]
    fn an_empty_period_renders() {
        let v = AttackView::default();
        for lang in Lang::ALL {
            let html = attack_matrix(&ctx(lang), &v);
            assert!(!html.contains("template error"));
            assert!(!html.contains("heat-1 "));
            assert!(!html.contains(" covered\" data-technique"));
            assert!(!html.contains("href=\"/ui/alerts?"));
            assert!(!html.contains("<table"));
        }
        let truncated = AttackView {
            truncated: true,
            alerts: TechniqueCounts {
                items: 5_000,
                ..TechniqueCounts::default()
            },
            ..AttackView::default()
        };
        let html = attack_matrix(&ctx(Lang::Ru), &truncated);
        assert!(
            html.contains("последние 5\u{a0}000 алертов"),
            "truncation note"
        );
    }
}
