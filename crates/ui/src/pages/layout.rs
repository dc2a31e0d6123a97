//! The frame every page shares: navigation, user menu, language switch, flash message.

use crate::assets;
use crate::i18n::{Lang, Tr};
use crate::view::PageCtx;
use crate::{can_triage, is_admin, role_key};

/// One navigation link.
#[derive(Debug, Clone)]
pub(crate) struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub active: bool,
}

/// What `base.html` reads.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub lang: &'static str,
    pub title: String,
    pub page: &'static str,
    pub signed_in: bool,
    pub username: String,
    pub initial: String,
    pub role_name: &'static str,
    pub nav: Vec<NavItem>,
    pub csrf: String,
    pub return_to: String,
    pub langs: Vec<(&'static str, &'static str, bool)>,
    pub flash: Option<(&'static str, &'static str)>,
    pub css: String,
    pub js: String,
    pub js_text: Vec<(&'static str, String)>,
    /// May change alerts (analyst, admin).
    pub triage: bool,
    /// Administrator.
    pub admin: bool,
}

fn path_of(path_and_query: &str) -> &str {
    path_and_query.split(['?', '#']).next().unwrap_or("/")
}

fn section_active(path: &str, href: &str) -> bool {
    if href == "/ui/" {
        path == "/ui/" || path == "/ui"
    } else {
        path == href || path.starts_with(&format!("{href}/"))
    }
}

fn lang_buttons(current: Lang) -> Vec<(&'static str, &'static str, bool)> {
    Lang::ALL
        .iter()
        .map(|l| {
            (
                l.code(),
                match l {
                    Lang::En => "EN",
                    Lang::Ru => "RU",
                },
                *l == current,
            )
        })
        .collect()
}

/// Texts the JavaScript needs (it formats nothing itself): `data-t-*` on `<body>`.
fn js_text(tr: &Tr) -> Vec<(&'static str, String)> {
    vec![
        ("new-alerts", tr.t("live.new_alerts").to_owned()),
        ("confirm-bulk", tr.t("alerts.bulk_confirm").to_owned()),
        ("just-now", tr.t("time.just_now").to_owned()),
        ("online", tr.t("agent.status.online").to_owned()),
        ("degraded", tr.t("agent.status.degraded").to_owned()),
        ("offline", tr.t("agent.status.offline").to_owned()),
        ("revoked", tr.t("agent.status.revoked").to_owned()),
        ("live-lost", tr.t("live.disconnected").to_owned()),
    ]
}

impl Layout {
    /// The frame of a signed-in page.
    pub(crate) fn new(ctx: &PageCtx, tr: &Tr, page: &'static str, title: String) -> Layout {
        let path = path_of(&ctx.path_and_query);
        let mut nav_items: Vec<(&'static str, &'static str)> = vec![
            ("/ui/", "nav.overview"),
            ("/ui/alerts", "nav.alerts"),
            ("/ui/incidents", "nav.incidents"),
            ("/ui/events", "nav.events"),
            ("/ui/searches", "nav.searches"),
            ("/ui/hosts", "nav.hosts"),
            ("/ui/agents", "nav.agents"),
            ("/ui/rules", "nav.rules"),
            ("/ui/exceptions", "nav.exceptions"),
            ("/ui/attack", "nav.attack"),
            ("/ui/intel", "nav.intel"),
            ("/ui/vulns", "nav.vulns"),
            ("/ui/anomalies", "nav.anomalies"),
            ("/ui/playbooks", "nav.playbooks"),
            ("/ui/approvals", "nav.approvals"),
        ];
        if is_admin(ctx.role) {
            nav_items.push(("/ui/users", "nav.users"));
            nav_items.push(("/ui/audit", "nav.audit"));
        }
        let nav = nav_items
            .into_iter()
            .map(|(href, key)| NavItem {
                href,
                label: tr.t(key),
                active: section_active(path, href),
            })
            .collect();
        let flash = ctx.flash.as_deref().and_then(|key| {
            tr.lookup(key).map(|text| {
                let kind = if key.starts_with("error.") {
                    "error"
                } else {
                    "ok"
                };
                (kind, text)
            })
        });
        let return_to = if crate::url::is_local_path(&ctx.path_and_query) {
            ctx.path_and_query.clone()
        } else {
            "/ui/".to_owned()
        };
        Layout {
            lang: ctx.lang.code(),
            title,
            page,
            signed_in: true,
            username: ctx.username.clone(),
            initial: ctx
                .username
                .chars()
                .next()
                .map(|c| c.to_uppercase().collect())
                .unwrap_or_default(),
            role_name: tr.t(role_key(ctx.role)),
            nav,
            csrf: ctx.csrf_token.clone(),
            return_to,
            langs: lang_buttons(ctx.lang),
            flash,
            css: assets::css_href(),
            js: assets::js_href(),
            js_text: js_text(tr),
            triage: can_triage(ctx.role),
            admin: is_admin(ctx.role),
        }
    }

    /// The frame of a page shown without a session (login, errors): no navigation; the
    /// language links go to `lang_base` + code.
    pub(crate) fn bare(
        lang: Lang,
        tr: &Tr,
        page: &'static str,
        title: String,
        lang_base: &str,
    ) -> Layout {
        Layout {
            lang: lang.code(),
            title,
            page,
            signed_in: false,
            username: String::new(),
            initial: String::new(),
            role_name: "",
            nav: Vec::new(),
            csrf: String::new(),
            return_to: lang_base.to_owned(),
            langs: lang_buttons(lang),
            flash: None,
            css: assets::css_href(),
            js: assets::js_href(),
            js_text: js_text(tr),
            triage: false,
            admin: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_sections() {
        assert!(section_active("/ui/", "/ui/"));
        assert!(section_active("/ui", "/ui/"));
        assert!(!section_active("/ui/alerts", "/ui/"));
        assert!(section_active("/ui/alerts/5", "/ui/alerts"));
        assert!(!section_active("/ui/alertsx", "/ui/alerts"));
        assert!(section_active("/ui/intel/sources", "/ui/intel"));
        assert_eq!(path_of("/ui/events?q=a#x"), "/ui/events");
    }
}
