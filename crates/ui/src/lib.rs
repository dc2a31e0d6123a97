//! The Dozor web dashboard: server-rendered HTML pages in English and Russian.
//!
//! Pure rendering, no HTTP: each page function takes a [`PageCtx`] (language, user, role,
//! CSRF token, current path, flash message, now) and a view model built from `dozor-model`
//! types, and returns a complete HTML document. Templates are type-checked at compile time
//! (askama) and escape everything by default; charts are inline SVG made here; the stylesheet
//! and the small script ([`APP_CSS`], [`APP_JS`]) are our own and are served by the server.
//! Every user-visible string comes from one catalog with both languages
//! ([`translate`], [`catalog_keys`]).

#![warn(missing_docs)]

mod assets;
pub mod attack;
pub mod attack_names;
mod catalog;
pub mod format;
pub mod i18n;
mod pages;
pub mod svg;
pub mod url;
mod view;

#[cfg(test)]
mod tests;

pub use assets::{APP_CSS, APP_JS, CSS_PATH, JS_PATH, asset_version};
use dozor_model::Access;
pub use dozor_model::Role;
pub use i18n::{Lang, Tr, translate};
pub use pages::anomalies::ANOMALY_KINDS;
pub use pages::attack_matrix::{
    AttackParams, AttackView, TechniqueCounts, attack_matrix, technique_id,
};
pub use pages::hosts::{PIVOT_MS, host_alerts_href, host_events_href, host_href};
pub use pages::searches;
pub use pages::{
    LoginError, agent_detail, agents, alert_detail, alerts, anomalies, approvals, audit,
    error_page, events, exceptions, host_detail, hosts, incident_detail, incidents, intel,
    intel_matches, intel_sources, ioc_detail, login, overview, playbook_detail, playbook_run,
    playbook_runs, playbooks, profile, rule_detail, rules, users, vuln_cve, vuln_detail, vuln_host,
    vulns,
};
pub use view::*;

/// May this role triage (change alerts, comment, assign)? Analysts and admins.
pub fn can_triage(role: Role) -> bool {
    role.permits(Access::Triage)
}

/// Is this role an administrator?
pub fn is_admin(role: Role) -> bool {
    role.permits(Access::Admin)
}

/// The catalog key of a role's name.
pub(crate) fn role_key(role: Role) -> &'static str {
    match role {
        Role::Admin => "role.admin",
        Role::Analyst => "role.analyst",
        Role::Viewer => "role.viewer",
        Role::AgentIngest => "role.agent",
    }
}

/// Every key of the translation catalog (e.g. to check that a flash key exists).
pub fn catalog_keys() -> impl Iterator<Item = &'static str> {
    catalog::CATALOG.iter().map(|(k, _, _)| *k)
}
