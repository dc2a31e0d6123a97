//! Agent routes: enrollment and heartbeats (agents), the registry (operators).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use dozor_store::now_ms;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::access::{ADMIN, Caller, JsonBody, PathId, READ, not_found, store_problem};
use crate::agents::{
    AgentRegistry, AgentStatus, EnrollRequest, EnrollResponse, HeartbeatRequest, HeartbeatResponse,
};
use crate::config::AgentsConfig;
use crate::problem::Problem;
use crate::problem_responses::{
    AgentsNotConfigured, ApiNotConfigured, Forbidden, JsonTooLarge, NoAgentCertificate, NotJson,
    NotJsonMediaType, Unauthorized, problem_response,
};
use crate::state::AppState;
use crate::state::ConnectionInfo;

/// An agent as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentView {
    pub id: String,
    pub hostname: String,
    /// `linux`, `windows`, ...
    pub os_type: String,
    pub os_name: Option<String>,
    pub os_version: Option<String>,
    pub arch: Option<String>,
    pub agent_version: String,
    pub ips: Vec<String>,
    pub status: AgentStatus,
    /// Last heartbeat or event, ms since the epoch.
    pub last_seen: i64,
    pub enrolled_at: i64,
    pub reenrolled_at: Option<i64>,
    pub certificate_not_after: i64,
    /// Problems the agent reported in its last heartbeat.
    pub health: Vec<String>,
    pub offline_since: Option<i64>,
    pub revoked_at: Option<i64>,
    pub revoked_by: Option<String>,
    /// The last heartbeat as sent: resources (CPU, memory, disks, top processes), spool,
    /// collectors. Only in the single-agent view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub last_heartbeat: Option<Value>,
}

impl AgentView {
    fn new(agent: dozor_store::Agent, status: AgentStatus, with_heartbeat: bool) -> AgentView {
        AgentView {
            status,
            hostname: agent.facts.hostname,
            os_type: agent.facts.os_type,
            os_name: agent.facts.os_name,
            os_version: agent.facts.os_version,
            arch: agent.facts.arch,
            agent_version: agent.facts.agent_version,
            ips: agent.facts.ips,
            id: agent.id,
            last_seen: agent.last_seen,
            enrolled_at: agent.enrolled_at,
            reenrolled_at: agent.reenrolled_at,
            certificate_not_after: agent.cert_not_after,
            health: agent.health,
            offline_since: agent.offline_since,
            revoked_at: agent.revoked_at,
            revoked_by: agent.revoked_by,
            last_heartbeat: if with_heartbeat {
                agent.last_heartbeat
            } else {
                None
            },
        }
    }
}

/// `GET /api/v1/agents`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentList {
    pub agents: Vec<AgentView>,
    pub online: usize,
    pub degraded: usize,
    pub offline: usize,
    pub revoked: usize,
}

/// `POST /api/v1/agents/{id}/revoke`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// Why (kept in the audit log).
    #[serde(default)]
    pub reason: Option<String>,
}

problem_response! {
    /// The `{id}` names no agent.
    pub(crate) NoSuchAgent = 404, "No such agent";
    InvalidRevokeBody = 422, "The body is neither empty nor `{\"reason\": \"…\"}`";
    BadEnrollment = 400, "Not JSON, or the CSR can't be used";
    EnrollmentRefused = 401, "The token is unknown, expired, revoked or used up; or the certificate is not an agent's current one";
    InvalidAgentBody = 422, "A member is missing or mistyped";
}

pub(crate) fn registry(state: &AppState) -> Result<&Arc<AgentRegistry>, Problem> {
    state.agents.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "agents-not-configured",
            "Service unavailable",
        )
        .detail("agent enrollment needs TLS and a store: this server has neither or not both")
    })
}

/// `POST /api/v1/agents/enroll`: a token (or, to renew, the agent's current certificate) and a
/// CSR in, a client certificate out.
#[utoipa::path(post, path = ENROLL, tag = "agents", operation_id = "agent_enroll",
    summary = "Enroll an agent: CSR in, client certificate out",
    description = "Enrolls an agent: an enrollment token (`dozor tokens create --expires 24h --uses 10`) and a \
PKCS#10 CSR in; a new agent id and a client certificate signed by the server's CA out. Without a token, an \
enrolled agent presenting its current certificate renews it (same id). Other agents with the same hostname are \
listed in `duplicates` (and revoked with `replace_duplicates`). Audited.",
    request_body(content = EnrollRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Enrolled", body = EnrollResponse),
        BadEnrollment,
        EnrollmentRefused,
        JsonTooLarge,
        NotJsonMediaType,
        InvalidAgentBody,
        AgentsNotConfigured,
    ))]
pub(crate) async fn enroll(
    State(state): State<Arc<AppState>>,
    connection: Option<Extension<ConnectionInfo>>,
    JsonBody(request): JsonBody<EnrollRequest>,
) -> Result<Json<EnrollResponse>, Problem> {
    let registry = registry(&state)?;
    let certs = connection
        .map(|Extension(c)| c.client_certificates)
        .unwrap_or_default();
    // With a token: a fresh enrollment (a new agent id). Without: a renewal, which needs the
    // agent's current, unrevoked certificate.
    let renewing = if request.token.is_some() {
        None
    } else {
        match registry.identify(&certs).await {
            Ok(Some(identity)) => Some(identity),
            Ok(None) => {
                return Err(Problem::unauthorized(
                    "enrollment needs a token (dozor tokens create --expires 24h --uses 10); renewal needs the agent's current certificate",
                    false,
                )
                .instance(ENROLL));
            }
            Err(e) => return Err(Problem::from(e).instance(ENROLL)),
        }
    };
    registry
        .enroll(request, renewing.as_ref())
        .await
        .map(Json)
        .map_err(|e| Problem::from(e).instance(ENROLL))
}

/// `POST /api/v1/agents/heartbeat`: only with an agent's client certificate.
#[utoipa::path(post, path = HEARTBEAT, tag = "agents", operation_id = "agent_heartbeat",
    summary = "An agent's heartbeat",
    description = "An agent's heartbeat: facts, health problems, resource usage, spool and collector state. \
The answer tells the agent when to send the next one.",
    request_body(content = HeartbeatRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Recorded", body = HeartbeatResponse),
        NotJson,
        NoAgentCertificate,
        JsonTooLarge,
        NotJsonMediaType,
        InvalidAgentBody,
        AgentsNotConfigured,
    ),
    security(("agent_certificate" = [])))]
pub(crate) async fn heartbeat(
    State(state): State<Arc<AppState>>,
    connection: Option<Extension<ConnectionInfo>>,
    JsonBody(request): JsonBody<HeartbeatRequest>,
) -> Result<Json<HeartbeatResponse>, Problem> {
    let registry = registry(&state)?;
    let certs = connection
        .map(|Extension(c)| c.client_certificates)
        .unwrap_or_default();
    let Some(identity) = registry
        .identify(&certs)
        .await
        .map_err(|e| Problem::from(e).instance(HEARTBEAT))?
    else {
        return Err(Problem::unauthorized(
            "heartbeats need the agent's client certificate (dozor-agent enroll)",
            false,
        )
        .instance(HEARTBEAT));
    };
    let mut answer = registry
        .heartbeat(&identity, request, &certs[0])
        .await
        .map_err(|e| Problem::from(e).instance(HEARTBEAT))?;
    answer.yara_rules_version = state.scan.as_ref().map(|s| s.version());
    Ok(Json(answer))
}

/// The thresholds statuses are judged by (the defaults where no registry runs).
fn thresholds(state: &AppState) -> AgentsConfig {
    state
        .agents
        .as_ref()
        .map(|r| r.config().clone())
        .unwrap_or_default()
}

pub(crate) fn status_of(state: &AppState, agent: &dozor_store::Agent, now: i64) -> AgentStatus {
    AgentStatus::of(agent, now, &thresholds(state))
}

#[utoipa::path(get, path = super::AGENTS, tag = "agents", operation_id = "agents",
    summary = "The agent registry",
    description = "Every enrolled agent with its status: online, degraded (silent longer than agents.degraded_after \
or reporting a problem), offline (silent longer than agents.offline_after) or revoked.",
    responses(
        (status = 200, description = "The agents and counts per status", body = AgentList),
        Unauthorized,
        Forbidden<READ>,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn list(
    caller: Caller<READ>,
    State(state): State<Arc<AppState>>,
) -> Result<Json<AgentList>, Problem> {
    let now = now_ms();
    let config = thresholds(&state);
    let agents = caller
        .api
        .store
        .list_agents()
        .await
        .map_err(store_problem)?;
    let mut out = AgentList {
        agents: Vec::with_capacity(agents.len()),
        online: 0,
        degraded: 0,
        offline: 0,
        revoked: 0,
    };
    for agent in agents {
        let status = AgentStatus::of(&agent, now, &config);
        match status {
            AgentStatus::Online => out.online += 1,
            AgentStatus::Degraded => out.degraded += 1,
            AgentStatus::Offline => out.offline += 1,
            AgentStatus::Revoked => out.revoked += 1,
        }
        out.agents.push(AgentView::new(agent, status, false));
    }
    Ok(Json(out))
}

#[utoipa::path(get, path = super::AGENT, tag = "agents", operation_id = "agent",
    summary = "One agent with its last heartbeat",
    params(("id" = String, Path, description = "Agent id")),
    responses(
        (status = 200, description = "The agent with its last heartbeat (resources, spool, collectors)", body = AgentView),
        Unauthorized,
        Forbidden<READ>,
        NoSuchAgent,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn one(
    caller: Caller<READ>,
    State(state): State<Arc<AppState>>,
    id: PathId,
) -> Result<Json<AgentView>, Problem> {
    let agent = caller
        .api
        .store
        .get_agent(&id.0)
        .await
        .map_err(store_problem)?
        .ok_or_else(|| not_found(&format!("agent {}", id.0)))?;
    let status = status_of(&state, &agent, now_ms());
    Ok(Json(AgentView::new(agent, status, true)))
}

/// Revokes an agent: its certificate is refused from now on (audited).
#[utoipa::path(post, path = super::AGENT_REVOKE, tag = "agents", operation_id = "agent_revoke",
    summary = "Revoke an agent",
    description = "Revokes an agent (admin, audited): its certificate is refused from then on, for events and \
heartbeats alike. Revoking a revoked agent changes nothing.",
    params(("id" = String, Path, description = "Agent id")),
    request_body(content = Option<RevokeRequest>, content_type = "application/json"),
    responses(
        (status = 200, description = "The agent after the change", body = AgentView),
        Unauthorized,
        Forbidden<ADMIN>,
        NoSuchAgent,
        InvalidRevokeBody,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn revoke(
    caller: Caller<ADMIN>,
    State(state): State<Arc<AppState>>,
    id: PathId,
    body: axum::body::Bytes,
) -> Result<Json<AgentView>, Problem> {
    // The body is optional: none (or `null`), or `{"reason": "..."}`.
    let reason = if body.iter().all(u8::is_ascii_whitespace) || body.trim_ascii() == b"null" {
        None
    } else {
        serde_json::from_slice::<RevokeRequest>(&body)
            .map_err(|e| {
                Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-body",
                    "Invalid request body",
                )
                .detail(e.to_string())
            })?
            .reason
    };
    let agent = crate::ops::agents::revoke(
        caller.api.store.as_ref(),
        state.agents.as_deref(),
        &caller.identity.subject,
        &id.0,
        reason.as_deref(),
    )
    .await?;
    let status = status_of(&state, &agent, now_ms());
    Ok(Json(AgentView::new(agent, status, false)))
}

pub(crate) const ENROLL: &str = "/api/v1/agents/enroll";
pub(crate) const HEARTBEAT: &str = "/api/v1/agents/heartbeat";
