//! Host routes: every host Dozor has events of (agents' and uploaded logs' `host.name`).

use axum::Json;
use dozor_store::{Host, HostQuery};

use super::access::{Caller, Params, PathId, READ, not_found, store_problem};
use crate::problem::Problem;
use crate::problem_responses::{
    ApiNotConfigured, BadParameter, Forbidden, Unauthorized, problem_response,
};

pub(crate) const HOSTS: &str = "/api/v1/hosts";
pub(crate) const HOST: &str = "/api/v1/hosts/{name}";

problem_response! {
    /// The `{name}` names no host Dozor has events of.
    NoSuchHost = 404, "No such host";
}

/// The query of `GET /api/v1/hosts`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct HostListParameters {
    /// Only hosts whose name contains this (any letter case)
    #[param(nullable = false)]
    search: Option<String>,
    /// How many at most, 1-1000 (default 1000)
    #[param(nullable = false, minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Hosts listed at most by one call.
const MAX_HOSTS: u32 = 1000;

#[utoipa::path(get, path = HOSTS, tag = "hosts", operation_id = "hosts",
    summary = "List hosts",
    description = "Every host named by stored events (`host.name`), most recently active first, with \
its event count, first and last event time, the agent that last sent its events and its open alerts.",
    params(HostListParameters),
    responses(
        (status = 200, description = "The hosts", body = Vec<Host>),
        BadParameter,
        Unauthorized,
        Forbidden<READ>,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn list(caller: Caller<READ>, params: Params) -> Result<Json<Vec<Host>>, Problem> {
    params.only(&["search", "limit"])?;
    let query = HostQuery {
        search: params.string("search")?,
        limit: params.limit(MAX_HOSTS, MAX_HOSTS)?,
    };
    let hosts = caller
        .api
        .store
        .list_hosts(&query)
        .await
        .map_err(store_problem)?;
    Ok(Json(hosts))
}

#[utoipa::path(get, path = HOST, tag = "hosts", operation_id = "host",
    summary = "One host",
    params(("name" = String, Path, description = "Host name (any letter case)")),
    responses(
        (status = 200, description = "The host", body = Host),
        Unauthorized,
        Forbidden<READ>,
        NoSuchHost,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn one(caller: Caller<READ>, name: PathId) -> Result<Json<Host>, Problem> {
    caller
        .api
        .store
        .get_host(&name.0)
        .await
        .map_err(store_problem)?
        .map(Json)
        .ok_or_else(|| not_found(&format!("host {}", name.0)))
}
