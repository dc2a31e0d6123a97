//! Agent routes: enrollment and heartbeats (agents), the registry (operators).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use dozor_store::now_ms;

use super::access::{ADMIN, Caller, JsonBody, PathId, READ, not_found, store_problem};
use crate::agents::{
    AgentRegistry, AgentStatus, EnrollRequest, EnrollResponse, Enroller, HeartbeatRequest,
    HeartbeatResponse,
};
use crate::config::AgentsConfig;
use crate::problem::Problem;
use crate::problem_responses::{
    AgentsNotConfigured, ApiNotConfigured, Forbidden, JsonTooLarge, NoAgentCertificate, NotJson,
    NotJsonMediaType, Unauthorized, problem_response,
};
use crate::state::AppState;
use crate::state::ConnectionInfo;

pub use dozor_store::api::{AgentList, AgentView, RevokeRequest};

problem_response! {
    /// The `{id}` names no agent.
    pub(crate) NoSuchAgent = 404, "No such agent";
    InvalidRevokeBody = 422, "The body is neither empty nor `{\"reason\": \"…\"}`";
    BadEnrollment = 400, "Not JSON, or the CSR can't be used";
    EnrollmentRefused = 401, "The token is unknown, expired, revoked or used up; or the certificate is not an agent's current one";
    DuplicateHostname = 409, "`duplicate-hostname`: `replace_duplicates` asked to revoke an agent of this hostname, but the token may not replace it and the request does not present that agent's certificate";
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
    description = "Enrolls an agent: an enrollment token (`dozor tokens create`: one use within 24 h unless asked for more) and a \
PKCS#10 CSR in; a new agent id and a client certificate signed by the server's CA out. Without a token, an \
enrolled agent presenting its current certificate renews it (same id). Other agents with the same hostname are \
listed in `duplicates`. `replace_duplicates` revokes them only when the token was created to replace this hostname \
(`dozor tokens create --may-replace HOST|any`) or the request presents the replaced agent's current client \
certificate; otherwise 409 `duplicate-hostname` and the token is not used. Each replacement raises a high alert \
(`dozor-agent-replaced`). A CSR that can't be signed is refused before the token is used. Audited.",
    request_body(content = EnrollRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Enrolled", body = EnrollResponse),
        BadEnrollment,
        EnrollmentRefused,
        DuplicateHostname,
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
    let (address, certs) = connection
        .map(|Extension(c)| (c.peer.ip().to_string(), c.client_certificates))
        .unwrap_or_default();
    // With a token: a fresh enrollment (a new agent id); a current agent certificate
    // presented with it proves that agent's key (it may be replaced). Without: a renewal,
    // which needs the agent's current, unrevoked certificate.
    let mut proven = None;
    let renewing = if request.token.is_some() {
        proven = registry.identify(&certs).await.ok().flatten();
        None
    } else {
        match registry.identify(&certs).await {
            Ok(Some(identity)) => Some(identity),
            Ok(None) => {
                return Err(Problem::unauthorized(
                    "enrollment needs a token (dozor tokens create); renewal needs the agent's current certificate",
                    false,
                )
                .instance(ENROLL));
            }
            Err(e) => return Err(Problem::from(e).instance(ENROLL)),
        }
    };
    let caller = Enroller {
        address,
        renewing: renewing.as_ref(),
        proven: proven.as_ref(),
    };
    registry
        .enroll(request, &caller)
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
    thresholds(state).status_of(agent, now)
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
        let status = config.status_of(&agent, now);
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
    } else if body.trim_ascii_start().first() != Some(&b'{') {
        // serde would read a struct from an array too (`[]` → no reason): only an object.
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
            "Invalid request body",
        )
        .detail("the body must be a JSON object ({\"reason\": \"...\"}), null or empty"));
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
