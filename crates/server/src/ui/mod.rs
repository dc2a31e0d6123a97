//! The web dashboard's pages and form actions under `/ui/` (the sign-in, sessions and CSRF
//! tokens are `crate::session`'s; the HTML is `dozor_ui`'s).
//!
//! Every page needs a session ([`WebUser`]: no session → redirect to `/login`); pages and
//! actions have the JSON API's rights (viewer < analyst < admin): viewers read, analysts
//! triage alerts (and add, switch and sync threat intelligence), admins also switch rules and
//! manage users. Every POST is checked for the session's CSRF token, every change is written
//! to the audit log, and a POST answers `303 See Other` back to a page, with a flash message
//! (a catalog key) in a short-lived cookie — except where a secret must be shown once (a new
//! token, a generated password): then the page is the answer itself (it is never cached:
//! `Cache-Control: no-store`).
//!
//! Queries stay bounded for big stores: lists are paged by the store's cursors, the overview
//! reads at most [`common::OVERVIEW_ALERT_SCAN`] alerts of the last 24 h, histograms have at most 120
//! buckets, and the event search's field sidebar is computed from the shown page only.

// Until `crate::app::router` merges `router()` the routes are unreachable from the binary.
// Refusals are responses (error pages, redirects), as in axum handlers generally.
#![allow(clippy::result_large_err)]

mod actions;
mod anomalies;
mod attack;
mod common;
mod incidents;
mod intel;
mod pages;
mod response;
mod searches;
#[cfg(test)]
mod tests;
mod vulns;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::state::AppState;

/// Largest form body read.
const MAX_FORM_BYTES: usize = 256 * 1024;

/// The dashboard's routes. Mount with `router.merge(crate::ui::router())` on the roles that
/// serve the API.
pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(pages::overview))
        .route("/ui/overview", get(pages::overview))
        .route("/ui/alerts", get(pages::alerts))
        .route("/ui/alerts/bulk", post(actions::bulk_status))
        .route("/ui/alerts/{id}", get(pages::alert))
        .route("/ui/alerts/{id}/status", post(actions::alert_status))
        .route("/ui/alerts/{id}/assignee", post(actions::alert_assignee))
        .route("/ui/alerts/{id}/comments", post(actions::alert_comment))
        .route("/ui/alerts/{id}/exception", post(actions::alert_exception))
        .route("/ui/exceptions", get(pages::exceptions))
        .route(
            "/ui/exceptions/{id}/delete",
            post(actions::exception_delete),
        )
        .route(
            "/ui/incidents",
            get(incidents::list).post(incidents::create),
        )
        .route("/ui/incidents/add-alerts", post(incidents::add_alerts))
        .route("/ui/incidents/{id}", get(incidents::one))
        .route("/ui/incidents/{id}/update", post(incidents::update))
        .route(
            "/ui/incidents/{id}/alerts/{alert_id}/remove",
            post(incidents::remove_alert),
        )
        .route("/ui/incidents/{id}/tasks", post(incidents::add_task))
        .route(
            "/ui/incidents/{id}/tasks/{task_id}",
            post(incidents::set_task),
        )
        .route("/ui/incidents/{id}/notes", post(incidents::add_note))
        .route(
            "/ui/incidents/{id}/observables",
            post(incidents::add_observable),
        )
        .route(
            "/ui/incidents/{id}/observables/{observable_id}/delete",
            post(incidents::remove_observable),
        )
        .route("/ui/events", get(pages::events))
        .route("/ui/searches", get(searches::list).post(searches::save))
        .route("/ui/searches/{id}/run", get(searches::run))
        .route("/ui/searches/{id}/rename", post(searches::rename))
        .route("/ui/searches/{id}/delete", post(searches::delete))
        .route("/ui/anomalies", get(anomalies::list))
        .route("/ui/anomalies/train", post(anomalies::train))
        .route("/ui/hosts", get(pages::hosts))
        .route("/ui/hosts/{name}", get(pages::host))
        .route("/ui/agents", get(pages::agents))
        .route("/ui/agents/{id}", get(pages::agent))
        .route("/ui/agents/{id}/commands", post(actions::agent_scan))
        .route("/ui/agents/{id}/isolate", post(response::isolate))
        .route("/ui/agents/{id}/release", post(response::release))
        .route("/ui/playbooks", get(response::playbooks))
        .route("/ui/playbooks/{name}", get(response::playbook))
        .route(
            "/ui/playbooks/{name}/enabled",
            post(response::playbook_enabled),
        )
        .route(
            "/ui/playbook-runs",
            get(response::runs).post(response::start_run),
        )
        .route("/ui/playbook-runs/{id}", get(response::run))
        .route("/ui/approvals", get(response::approvals_page))
        .route("/ui/approvals/{id}/decision", post(response::decide))
        .route("/ui/intel", get(intel::iocs))
        .route("/ui/intel/iocs", post(intel::add))
        .route("/ui/intel/iocs/{id}", get(intel::ioc))
        .route("/ui/intel/iocs/{id}/enabled", post(intel::ioc_enabled))
        .route("/ui/intel/sources", get(intel::sources))
        .route("/ui/intel/sources/{name}/sync", post(intel::sync))
        .route("/ui/intel/matches", get(intel::matches))
        .route("/ui/vulns", get(vulns::list))
        .route("/ui/vulns/hosts/{host}", get(vulns::host))
        .route("/ui/vulns/cves/{cve}", get(vulns::cve))
        .route("/ui/vulns/{id}", get(vulns::one))
        .route("/ui/vulns/{id}/status", post(vulns::set_status))
        .route("/ui/attack", get(attack::matrix))
        .route("/ui/rules", get(pages::rules))
        .route("/ui/rules/{id}", get(pages::rule))
        .route("/ui/rules/{id}/enabled", post(actions::rule_enabled))
        .route("/ui/users", get(pages::users).post(actions::user_create))
        .route("/ui/users/{id}/role", post(actions::user_role))
        .route("/ui/users/{id}/disabled", post(actions::user_disabled))
        .route("/ui/users/{id}/password", post(actions::user_password))
        .route("/ui/audit", get(pages::audit))
        .route("/ui/profile", get(pages::profile))
        .route("/ui/profile/language", post(actions::profile_language))
        .route("/ui/profile/password", post(actions::profile_password))
        .route("/ui/profile/tokens", post(actions::token_create))
        .route(
            "/ui/profile/tokens/{id}/revoke",
            post(actions::token_revoke),
        )
        .route(dozor_ui::CSS_PATH, get(css))
        .route(dozor_ui::JS_PATH, get(js))
        .route("/ui/{*rest}", get(pages::not_found))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // the URL carries the content's hash (`?v=`), so it may be kept for long
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response()
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", dozor_ui::APP_CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", dozor_ui::APP_JS)
}
