//! Saved searches: the user's own and the shared ones, each re-run on the events page with
//! its query, time range, agent and columns; renamed or deleted by its owner or an admin.

use askama::Template;

use super::layout::Layout;
use super::{When, render, when};
use crate::i18n::Tr;
use crate::is_admin;
use crate::view::{EventsParams, PageCtx, SavedSearchesView};

struct SearchRow {
    id: i64,
    name: String,
    query: String,
    /// The events page it opens.
    href: String,
    owner: String,
    shared: bool,
    columns: String,
    range: String,
    last_run: Option<When>,
    /// The signed-in user may rename and delete it.
    mine: bool,
}

#[derive(Template)]
#[template(path = "searches.html")]
struct SearchesPage {
    l: Layout,
    tr: Tr,
    rows: Vec<SearchRow>,
}

/// The saved searches page.
pub fn searches(ctx: &PageCtx, v: &SavedSearchesView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let l = Layout::new(ctx, &tr, "searches", tr.t("searches.title").to_owned());
    let admin = is_admin(ctx.role);
    let rows = v
        .searches
        .iter()
        .map(|s| {
            let p = EventsParams::of_saved(s);
            let range = match (p.time.from.as_str(), p.time.to.as_str()) {
                ("", "") => tr.t(p.time.range.key()).to_owned(),
                (from, to) => format!("{from} – {to}"),
            };
            SearchRow {
                id: s.id,
                name: s.name.clone(),
                query: s.query.clone(),
                href: format!("/ui/searches/{}/run", s.id),
                owner: s.owner.clone(),
                shared: s.shared,
                columns: p.cols.join(", "),
                range,
                last_run: s.last_run_at.map(|t| when(&tr, t)),
                mine: admin || s.owner == ctx.username,
            }
        })
        .collect();
    render(&SearchesPage { l, tr, rows })
}
