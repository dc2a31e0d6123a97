//! Rules: the list with enable/disable (admins) and hit counts, and one rule with its YAML.

use askama::Template;

use super::alerts::Opt;
use super::layout::Layout;
use super::{AlertRow, Badge, alert_row, level_badge, render};
use crate::attack::{TagView, tag_views};
use crate::i18n::Tr;
use crate::url::segment;
use crate::view::{PageCtx, RuleDetailView, RuleRow, RulesParams, RulesView};

pub(crate) fn outcome_key(outcome: &str) -> &'static str {
    match outcome {
        "active" => "outcome.active",
        "unrouted" => "outcome.unrouted",
        "unsupported" => "outcome.unsupported",
        "invalid" => "outcome.invalid",
        _ => "outcome.unknown",
    }
}

pub(crate) fn sigma_status_key(status: Option<&str>) -> &'static str {
    match status {
        Some("stable") => "sigma.stable",
        Some("test") => "sigma.test",
        Some("experimental") => "sigma.experimental",
        Some("deprecated") => "sigma.deprecated",
        Some("unsupported") => "sigma.unsupported",
        _ => "sigma.unknown",
    }
}

pub(crate) fn kind_key(kind: &str) -> &'static str {
    match kind {
        "correlation" => "kind.correlation",
        "filter" => "kind.filter",
        _ => "kind.detection",
    }
}

struct Row {
    id: String,
    href: String,
    action: String,
    title: String,
    level: Option<Badge>,
    status: &'static str,
    outcome: &'static str,
    outcome_class: &'static str,
    reason: String,
    enabled: bool,
    hits: String,
    last_hit: String,
}

fn row(tr: &Tr, r: &RuleRow) -> Row {
    Row {
        id: r.id.clone(),
        href: format!("/ui/rules/{}", segment(&r.id)),
        action: format!("/ui/rules/{}/enabled", segment(&r.id)),
        title: if r.title.is_empty() {
            r.id.clone()
        } else {
            r.title.clone()
        },
        level: r.level.map(|l| level_badge(tr, l)),
        status: tr.t(sigma_status_key(r.status.as_deref())),
        outcome: tr.t(outcome_key(&r.outcome)),
        outcome_class: if r.outcome == "active" {
            "oc-active"
        } else {
            "oc-inactive"
        },
        reason: r.reason.clone().unwrap_or_default(),
        enabled: r.enabled,
        hits: tr.num(r.hit_count),
        last_hit: r.last_hit.map(|t| tr.ago(t)).unwrap_or_default(),
    }
}

fn matches(r: &RuleRow, p: &RulesParams, q: &str) -> bool {
    let outcome_ok = match p.outcome.as_str() {
        "" => true,
        "disabled" => !r.enabled,
        o => r.outcome == o,
    };
    outcome_ok
        && (q.is_empty()
            || r.title.to_lowercase().contains(q)
            || r.id.to_lowercase().contains(q)
            || r.path.to_lowercase().contains(q)
            || r.tags.iter().any(|t| t.to_lowercase().contains(q)))
}

#[derive(Template)]
#[template(path = "rules.html")]
struct RulesPage<'a> {
    l: Layout,
    tr: Tr,
    p: &'a RulesParams,
    outcomes: Vec<Opt>,
    rows: Vec<Row>,
    shown: String,
    prev_href: Option<String>,
    next_href: Option<String>,
    page_text: String,
}

/// The rule list page (filtered and paged here: [`RulesParams::PAGE_SIZE`] per page).
pub fn rules(ctx: &PageCtx, v: &RulesView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let l = Layout::new(ctx, &tr, "rules", tr.t("rules.title").to_owned());
    let p = &v.params;
    let q = p.q.trim().to_lowercase();
    let matching: Vec<&RuleRow> = v.rules.iter().filter(|r| matches(r, p, &q)).collect();
    let pages = matching.len().div_ceil(RulesParams::PAGE_SIZE).max(1);
    let page = p.page.clamp(1, pages);
    let rows = matching
        .iter()
        .skip((page - 1) * RulesParams::PAGE_SIZE)
        .take(RulesParams::PAGE_SIZE)
        .map(|r| row(&tr, r))
        .collect();
    let outcomes = [
        ("active", "outcome.active"),
        ("unrouted", "outcome.unrouted"),
        ("unsupported", "outcome.unsupported"),
        ("invalid", "outcome.invalid"),
        ("disabled", "rules.disabled"),
    ]
    .iter()
    .map(|(value, key)| Opt {
        value,
        label: tr.t(key),
        selected: p.outcome == *value,
    })
    .collect();
    let page_href = |n: usize| p.query().with("page", n.to_string()).url("/ui/rules");
    render(&RulesPage {
        outcomes,
        rows,
        shown: tr.tn("rules.count", matching.len() as u64),
        prev_href: (page > 1).then(|| page_href(page - 1)),
        next_href: (page < pages).then(|| page_href(page + 1)),
        page_text: tr.tf(
            "pager.page_of",
            &[
                ("page", &tr.num(page as u64)),
                ("pages", &tr.num(pages as u64)),
            ],
        ),
        p,
        l,
        tr,
    })
}

#[derive(Template)]
#[template(path = "rule_detail.html")]
struct RuleDetailPage<'a> {
    l: Layout,
    tr: Tr,
    r: Row,
    rule: &'a RuleRow,
    kind: &'static str,
    logsource: String,
    tags: Vec<TagView>,
    yaml: Option<&'a str>,
    alerts: Vec<AlertRow>,
    alerts_href: String,
}

/// One rule's page.
pub fn rule_detail(ctx: &PageCtx, v: &RuleDetailView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let r = row(&tr, &v.rule);
    let l = Layout::new(ctx, &tr, "rule", r.title.clone());
    let logsource = [
        ("product", &v.rule.product),
        ("category", &v.rule.category),
        ("service", &v.rule.service),
    ]
    .iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}: {v}")))
    .collect::<Vec<_>>()
    .join(", ");
    let names = Default::default();
    render(&RuleDetailPage {
        kind: tr.t(kind_key(&v.rule.kind)),
        logsource,
        tags: tag_views(&tr, &v.rule.tags),
        yaml: v.yaml.as_deref(),
        alerts: v
            .recent_alerts
            .iter()
            .map(|a| alert_row(&tr, a, &names))
            .collect(),
        alerts_href: format!(
            "/ui/alerts?status_any=1&range=all&rule={}",
            segment(&v.rule.id)
        ),
        rule: &v.rule,
        r,
        l,
        tr,
    })
}
