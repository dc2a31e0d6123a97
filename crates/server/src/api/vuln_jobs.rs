//! Scan job routes (issue 15): the gvmd scans Dozor runs — settings (admin), start and stop
//! (analyst), and each job's state for the dashboard. The runner is
//! [`crate::vulns::jobs::run_jobs`].

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{MethodRouter, delete, get, post, put};
use dozor_model::VulnScanJob;
use dozor_store::now_ms;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::access::{ADMIN, Caller, JsonBody, PathId, READ, TRIAGE, bad_param, not_found};
use crate::ops::{audited, store_problem};
use crate::problem::Problem;
use crate::problem_responses::{
    BadParameter, Forbidden, InvalidBody, JsonTooLarge, NotJson, NotJsonMediaType, Unauthorized,
    problem_response,
};
use crate::state::AppState;
use crate::vulns::VulnService;
use crate::vulns::jobs::{
    self, JobError, JobSpec, JobState, REDACTED, SpecError, next_run, parse_spec, redact_spec,
};

pub(crate) const JOBS: &str = "/api/v1/vulns/jobs";
pub(crate) const JOB: &str = "/api/v1/vulns/jobs/{name}";
pub(crate) const JOB_START: &str = "/api/v1/vulns/jobs/{name}/start";
pub(crate) const JOB_STOP: &str = "/api/v1/vulns/jobs/{name}/stop";

/// Longest job name, bytes.
const MAX_JOB_NAME: usize = 128;

problem_response! {
    JobsNotConfigured = 503, "The API (a store) is not configured on this server";
    NoSuchJob = 404, "No such scan job";
    InvalidJob = 422, "Settings that can't be used: `field` names the member (`targets.cidrs[2]`, `gmp.ca_pem_file`), `reason` says why";
    JobBusy = 409, "The job is disabled, or a scan of it is under way already (`status`)";
    JobNotRunning = 409, "The job has no scan under way";
    GvmdFailed = 502, "gvmd could not be reached or refused to stop the task (`reason`)";
}

/// The handler of a scan job route, if `path` is one.
pub(crate) fn route(method: &str, path: &str) -> Option<MethodRouter<Arc<AppState>>> {
    let limit = axum::extract::DefaultBodyLimit::max(super::access::MAX_JSON_BODY);
    Some(match (method, path) {
        ("GET", JOBS) => get(list),
        ("GET", JOB) => get(one),
        ("PUT", JOB) => put(put_job).layer(limit),
        ("DELETE", JOB) => delete(delete_job),
        ("POST", JOB_START) => post(start),
        ("POST", JOB_STOP) => post(stop),
        _ => return None,
    })
}

/// A scan job's settings as sent.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VulnJobRequest {
    /// The settings (checked member by member; errors name the member).
    #[schema(value_type = JobSpec)]
    pub spec: Value,
    /// Run on its schedule, and may be started by hand (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A scan job as the API shows it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VulnJobView {
    /// Its name.
    pub name: String,
    /// Its settings, the password as `***`.
    #[schema(value_type = JobSpec)]
    pub spec: Value,
    /// Runs on its schedule.
    pub enabled: bool,
    /// The current or last run.
    pub state: JobState,
    /// When it runs next on its schedule, ms (none: by hand only, or disabled).
    pub next_run: Option<i64>,
    /// When its settings changed, ms.
    pub updated_at: i64,
    /// Who changed them.
    pub updated_by: String,
}

/// Every scan job, by name.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VulnJobList {
    pub jobs: Vec<VulnJobView>,
}

fn view(job: VulnScanJob) -> VulnJobView {
    let state = JobState::of(&job);
    VulnJobView {
        next_run: next_run(&job, &state),
        spec: redact_spec(&job.spec),
        name: job.name,
        enabled: job.enabled,
        state,
        updated_at: job.updated_at,
        updated_by: job.updated_by,
    }
}

fn service(state: &AppState) -> Result<&Arc<VulnService>, Problem> {
    state.vulns.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api-not-configured",
            "Service unavailable",
        )
        .detail("scan jobs need a store: this server has none attached")
    })
}

fn check_name(name: &str) -> Result<(), Problem> {
    let ok = !name.is_empty()
        && name.len() <= MAX_JOB_NAME
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(bad_param(
            "name",
            format!("{name:?}: 1 to {MAX_JOB_NAME} of A-Z a-z 0-9 _ . -, not starting with ."),
        ))
    }
}

fn invalid_job(e: SpecError) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-job",
        "Invalid scan job settings",
    )
    .detail(e.to_string())
    .with("field", e.field)
    .with("reason", e.reason)
}

fn job_problem(e: JobError) -> Problem {
    match e {
        JobError::NoSuchJob(name) => not_found(&format!("scan job {name}")),
        e @ JobError::Disabled(_) => {
            Problem::new(StatusCode::CONFLICT, "job-disabled", "Job disabled").detail(e.to_string())
        }
        JobError::Running(name, status) => {
            Problem::new(StatusCode::CONFLICT, "job-running", "Scan under way")
                .detail(format!("scan job {name} is {status} already"))
                .with("status", status)
        }
        e @ JobError::NotRunning(_) => {
            Problem::new(StatusCode::CONFLICT, "job-not-running", "No scan under way")
                .detail(e.to_string())
        }
        JobError::Gmp(reason) => {
            Problem::new(StatusCode::BAD_GATEWAY, "gvmd-failed", "gvmd failed")
                .detail(format!("gvmd: {reason}"))
                .with("reason", reason)
        }
        JobError::Store(e) => store_problem(e),
    }
}

/// `GET /api/v1/vulns/jobs`.
#[utoipa::path(get, path = JOBS, tag = "vulns", operation_id = "vulns_job_list",
    summary = "gvmd scan jobs with their state",
    description = "Every scan job by name: its settings (the password as `***`), whether it is enabled, when \
it runs next, and its state: `status` (`idle`, `starting`, `running`, `fetching`, `done`, `failed`, \
`stopped`), `progress` (percent), gvmd's `task_id`, `target_id` and `report_id`, `last_started`, \
`last_finished`, `last_scan_id` with `last_counts` (see `GET /api/v1/vulns/scans`), and `error` with \
`error_at` when the last run failed or gvmd can't be reached now.",
    responses(
        (status = 200, description = "By name", body = VulnJobList),
        Unauthorized,
        Forbidden<READ>,
        JobsNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn list(
    _caller: Caller<READ>,
    State(state): State<Arc<AppState>>,
) -> Result<Json<VulnJobList>, Problem> {
    let jobs = service(&state)?
        .store()
        .list_vuln_scan_jobs()
        .await
        .map_err(store_problem)?;
    Ok(Json(VulnJobList {
        jobs: jobs.into_iter().map(view).collect(),
    }))
}

/// `GET /api/v1/vulns/jobs/{name}`.
#[utoipa::path(get, path = JOB, tag = "vulns", operation_id = "vulns_job_one",
    summary = "One scan job with its state",
    params(("name" = String, Path, description = "Job name", max_length = 128, pattern = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")),
    responses(
        (status = 200, description = "The job (password as `***`)", body = VulnJobView),
        BadParameter,
        Unauthorized,
        Forbidden<READ>,
        NoSuchJob,
        JobsNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn one(
    _caller: Caller<READ>,
    State(state): State<Arc<AppState>>,
    name: PathId,
) -> Result<Json<VulnJobView>, Problem> {
    check_name(&name.0)?;
    let job = service(&state)?
        .store()
        .get_vuln_scan_job(&name.0)
        .await
        .map_err(store_problem)?
        .ok_or_else(|| not_found(&format!("scan job {}", name.0)))?;
    Ok(Json(view(job)))
}

/// `PUT /api/v1/vulns/jobs/{name}`.
#[utoipa::path(put, path = JOB, tag = "vulns", operation_id = "vulns_job_put",
    summary = "Create or change a scan job",
    description = "Stores a job's settings (admin, audited as `vuln.job.put` without the password); its state \
is kept. `spec`: `targets` {`cidrs`, `hosts`, `agents` (agent ids), `agent_hostnames` (globs with `*` and `?` \
over enrolled agents' host names; agents have no tags)} with at least one entry — agents are resolved to their \
current non-loopback addresses when a run starts; `exclude`; `port_list` (default `All IANA assigned TCP`), \
`scan_config` (`Full and fast`), `scanner` (`OpenVAS Default`), all by name as gvmd shows them; \
`interval_secs` (0: by hand only, else at least 3600, from one start to the next); `gmp`: \
{`socket`: `/run/gvmd/gvmd.sock`} or {`host`, `port` (9390), `server_name`, `ca_pem_file`, `pin_sha256`} — \
a TLS endpoint needs a CA file or a pin; `username`, `password` (never shown; `***` keeps the stored one). \
Every problem is a 422 `invalid-job` naming the member in `field`. An enabled job with a schedule runs \
within 30 s when it has never run.",
    params(("name" = String, Path, description = "1 to 128 of A-Z a-z 0-9 _ . -, not starting with .",
        max_length = 128, pattern = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")),
    request_body = VulnJobRequest,
    responses(
        (status = 200, description = "Stored (password as `***`)", body = VulnJobView),
        BadParameter,
        Unauthorized,
        Forbidden<ADMIN>,
        JsonTooLarge,
        NotJsonMediaType,
        NotJson,
        InvalidBody,
        InvalidJob,
        JobsNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn put_job(
    caller: Caller<ADMIN>,
    State(state): State<Arc<AppState>>,
    name: PathId,
    JsonBody(body): JsonBody<VulnJobRequest>,
) -> Result<Json<VulnJobView>, Problem> {
    let name = name.0;
    check_name(&name)?;
    let service = service(&state)?;
    let store = service.store();
    let previous = store
        .get_vuln_scan_job(&name)
        .await
        .map_err(store_problem)?;
    let mut spec = body.spec;
    // `***` (as the API shows the password) keeps the stored one.
    if let Some(obj) = spec.as_object_mut()
        && obj.get("password").and_then(Value::as_str) == Some(REDACTED)
    {
        let stored = previous
            .as_ref()
            .and_then(|p| p.spec.get("password"))
            .filter(|p| p.is_string())
            .cloned()
            .ok_or_else(|| {
                invalid_job(SpecError {
                    field: "password".into(),
                    reason:
                        "`***` keeps a stored password, and this job has none: give the password"
                            .into(),
                })
            })?;
        obj.insert("password".into(), stored);
    }
    let parsed: JobSpec = parse_spec(&spec).map_err(invalid_job)?;
    if let Some(file) = &parsed.gmp.ca_pem_file
        && !std::path::Path::new(file).is_file()
    {
        return Err(invalid_job(SpecError {
            field: "gmp.ca_pem_file".into(),
            reason: format!("{file}: no such file on the server"),
        }));
    }
    let spec = serde_json::to_value(&parsed)
        .map_err(|e| Problem::internal(format!("the settings could not be stored: {e}")))?;
    let stored = store
        .put_vuln_scan_job(&VulnScanJob {
            name: name.clone(),
            spec,
            enabled: body.enabled.unwrap_or(true),
            // The store keeps an existing job's state.
            state: json!({}),
            updated_at: now_ms(),
            updated_by: caller.identity.subject.clone(),
        })
        .await
        .map_err(store_problem)?;
    audited(
        store.as_ref(),
        &caller.identity.subject,
        "vuln.job.put",
        format!("vuln-job:{name}"),
        json!({"spec": redact_spec(&stored.spec), "enabled": stored.enabled,
            "created": previous.is_none()}),
    )
    .await?;
    jobs::CHANGED.notify_one();
    Ok(Json(view(stored)))
}

/// `DELETE /api/v1/vulns/jobs/{name}`.
#[utoipa::path(delete, path = JOB, tag = "vulns", operation_id = "vulns_job_delete",
    summary = "Delete a scan job",
    description = "Deletes the job (admin, audited as `vuln.job.delete`). The results of its scans stay; a \
task gvmd is running for it goes on in gvmd (stop it first), and the task and target stay in gvmd.",
    params(("name" = String, Path, description = "Job name", max_length = 128, pattern = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")),
    responses(
        (status = 204, description = "Deleted"),
        BadParameter,
        Unauthorized,
        Forbidden<ADMIN>,
        NoSuchJob,
        JobsNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn delete_job(
    caller: Caller<ADMIN>,
    State(state): State<Arc<AppState>>,
    name: PathId,
) -> Result<StatusCode, Problem> {
    check_name(&name.0)?;
    let store = service(&state)?.store();
    let previous = store
        .get_vuln_scan_job(&name.0)
        .await
        .map_err(store_problem)?
        .ok_or_else(|| not_found(&format!("scan job {}", name.0)))?;
    if !store
        .delete_vuln_scan_job(&name.0)
        .await
        .map_err(store_problem)?
    {
        return Err(not_found(&format!("scan job {}", name.0)));
    }
    let state = JobState::of(&previous);
    audited(
        store.as_ref(),
        &caller.identity.subject,
        "vuln.job.delete",
        format!("vuln-job:{}", name.0),
        json!({"status": state.status, "task_id": state.task_id}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/vulns/jobs/{name}/start`.
#[utoipa::path(post, path = JOB_START, tag = "vulns", operation_id = "vulns_job_start",
    summary = "Start a scan job now",
    description = "Starts a run of an enabled job at once (analyst, audited as `vuln.job.start`): the answer \
comes when the run is `starting`; follow `state` with `GET /api/v1/vulns/jobs/{name}`. A job whose run is \
under way, or a disabled one, is a 409.",
    params(("name" = String, Path, description = "Job name", max_length = 128, pattern = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")),
    responses(
        (status = 202, description = "Starting", body = VulnJobView),
        BadParameter,
        Unauthorized,
        Forbidden<TRIAGE>,
        NoSuchJob,
        JobBusy,
        JobsNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn start(
    caller: Caller<TRIAGE>,
    State(state): State<Arc<AppState>>,
    name: PathId,
) -> Result<(StatusCode, Json<VulnJobView>), Problem> {
    check_name(&name.0)?;
    let store = service(&state)?.store();
    jobs::request_start(store.as_ref(), &name.0, &caller.identity.subject)
        .await
        .map_err(job_problem)?;
    audited(
        store.as_ref(),
        &caller.identity.subject,
        "vuln.job.start",
        format!("vuln-job:{}", name.0),
        json!({}),
    )
    .await?;
    let job = store
        .get_vuln_scan_job(&name.0)
        .await
        .map_err(store_problem)?
        .ok_or_else(|| not_found(&format!("scan job {}", name.0)))?;
    Ok((StatusCode::ACCEPTED, Json(view(job))))
}

/// `POST /api/v1/vulns/jobs/{name}/stop`.
#[utoipa::path(post, path = JOB_STOP, tag = "vulns", operation_id = "vulns_job_stop",
    summary = "Stop a scan job's run",
    description = "Stops the run under way (analyst, audited as `vuln.job.stop`): gvmd is asked to stop the \
task (a 502 `gvmd-failed` when it can't be reached or refuses) and the job becomes `stopped`; no report is \
recorded. A job with no run under way is a 409.",
    params(("name" = String, Path, description = "Job name", max_length = 128, pattern = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")),
    responses(
        (status = 200, description = "Stopped", body = VulnJobView),
        BadParameter,
        Unauthorized,
        Forbidden<TRIAGE>,
        NoSuchJob,
        JobNotRunning,
        GvmdFailed,
        JobsNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn stop(
    caller: Caller<TRIAGE>,
    State(state): State<Arc<AppState>>,
    name: PathId,
) -> Result<Json<VulnJobView>, Problem> {
    check_name(&name.0)?;
    let store = service(&state)?.store();
    let stopped = jobs::stop(store.as_ref(), &name.0)
        .await
        .map_err(job_problem)?;
    audited(
        store.as_ref(),
        &caller.identity.subject,
        "vuln.job.stop",
        format!("vuln-job:{}", name.0),
        json!({"task_id": stopped.task_id}),
    )
    .await?;
    let job = store
        .get_vuln_scan_job(&name.0)
        .await
        .map_err(store_problem)?
        .ok_or_else(|| not_found(&format!("scan job {}", name.0)))?;
    Ok(Json(view(job)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names() {
        for ok in ["weekly", "dmz-1", "a_b.c"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "a b", "ä", &"x".repeat(129)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
