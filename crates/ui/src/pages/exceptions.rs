//! Alert exceptions: what is suppressed, why, by whom, until when, and how much it has
//! swallowed; and the alert page's "stop alerting repeats like this" form.

use askama::Template;
use dozor_model::StoredEvent;

use super::layout::Layout;
use super::{When, doc_str, render, when};
use crate::i18n::Tr;
use crate::url::segment;
use crate::view::{ExceptionsView, PageCtx};

/// Fields offered as exception conditions on the alert page, when the event has them.
const CANDIDATE_FIELDS: [&str; 9] = [
    "host.name",
    "user.name",
    "process.executable",
    "process.parent.executable",
    "process.command_line",
    "file.path",
    "source.ip",
    "destination.ip",
    "dns.question.name",
];

/// `(field, value)` pairs of the first event, for the alert page's exception form.
pub(crate) fn exception_candidates(events: &[StoredEvent]) -> Vec<(String, String)> {
    let Some(e) = events.first() else {
        return Vec::new();
    };
    CANDIDATE_FIELDS
        .iter()
        .filter_map(|f| {
            let v = doc_str(&e.doc, f)?;
            (!v.is_empty() && v.len() <= dozor_model::MAX_EXCEPTION_CONDITIONS * 400)
                .then(|| ((*f).to_owned(), v))
        })
        .collect()
}

struct ExceptionRow {
    id: i64,
    rule: String,
    rule_href: String,
    conditions: Vec<(String, String)>,
    reason: String,
    created_by: String,
    created: When,
    expires: Option<When>,
    expired: bool,
    suppressed: String,
    last: Option<When>,
}

#[derive(Template)]
#[template(path = "exceptions.html")]
struct ExceptionsPage {
    l: Layout,
    tr: Tr,
    rows: Vec<ExceptionRow>,
}

/// The exceptions page.
pub fn exceptions(ctx: &PageCtx, v: &ExceptionsView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let l = Layout::new(ctx, &tr, "exceptions", tr.t("exceptions.title").to_owned());
    let rows = v
        .exceptions
        .iter()
        .map(|e| ExceptionRow {
            id: e.id,
            rule: v
                .rule_titles
                .get(&e.rule_id)
                .cloned()
                .unwrap_or_else(|| e.rule_id.clone()),
            rule_href: format!("/ui/rules/{}", segment(&e.rule_id)),
            conditions: e
                .conditions
                .iter()
                .map(|c| (c.field.clone(), c.value.clone()))
                .collect(),
            reason: e.reason.clone(),
            created_by: e.created_by.clone(),
            created: when(&tr, e.created_at),
            expires: e.expires_at.map(|t| when(&tr, t)),
            expired: !e.active_at(ctx.now),
            suppressed: tr.num(e.suppressed),
            last: e.last_suppressed_at.map(|t| when(&tr, t)),
        })
        .collect();
    render(&ExceptionsPage { l, tr, rows })
}
