//! Agents: enrollment (token + CSR → client certificate), identity from the client certificate,
//! heartbeats, status, and the offline watch that raises an alert when an agent goes silent.
//!
//! An agent is known by the certificate the built-in CA issued it at enrollment: its subject CN
//! is the agent id and the registry keeps the SHA-256 of the one certificate currently valid
//! for that id. A request with another certificate for the same id (an older one replaced by
//! re-enrollment, or one of a revoked agent) is refused. Lookups are cached for
//! [`IDENTITY_CACHE_TTL`]; a revocation through this process drops the entry at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dozor_store::{
    Agent, AgentCommand, AgentFacts, AgentHeartbeat, CommandFinish, CommandStatus, Detection,
    EnrollmentRefusal, EnrollmentTokenInfo, Level, NewAgent, NewEvent, Store, now_ms,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::Identity;
use crate::config::AgentsConfig;
use crate::digest::{hex, sha256};
use crate::pki::CertificateAuthority;
use crate::problem::Problem;

/// How long a certificate → agent lookup is trusted before the store is asked again (the
/// longest a revocation made by another server process takes to reach this one).
pub const IDENTITY_CACHE_TTL: Duration = Duration::from_secs(5);

/// `last_seen` is written at most this often per agent from ingest traffic.
const TOUCH_EVERY: Duration = Duration::from_secs(5);

/// The rule id of the alert raised when an agent goes offline.
pub const OFFLINE_RULE_ID: &str = "dozor-agent-offline";
const OFFLINE_RULE_TITLE: &str = "Dozor agent offline";
/// The rule id of the alert raised when an enrollment replaces (revokes) an agent.
pub const REPLACED_RULE_ID: &str = "dozor-agent-replaced";
const REPLACED_RULE_TITLE: &str = "Agent replaced by a new enrollment";

/// Longest optional fact or health message kept, bytes (the store's limit).
const MAX_FACT: usize = 255;
/// Longest host name kept, bytes.
const MAX_HOSTNAME: usize = 255;
/// Longest `os_type` / `agent_version` kept, bytes.
const MAX_SHORT_FACT: usize = 64;
/// Most IPs and health messages kept per agent.
const MAX_LIST: usize = 64;
/// Largest heartbeat document kept.
const MAX_HEARTBEAT_BYTES: usize = 64 * 1024;

pub use dozor_store::AgentStatus;

/// An agent's status changed or it was heard from (for `GET /api/v1/agents/stream`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentNotice {
    pub id: String,
    pub hostname: String,
    pub status: AgentStatus,
    /// ms since the epoch.
    pub last_seen: i64,
}

/// [`AgentFacts`] as the OpenAPI document describes them (the model crate has no schemas).
#[derive(utoipa::ToSchema)]
#[schema(as = AgentFacts)]
#[allow(dead_code)]
pub(crate) struct AgentFactsDoc {
    /// Host name as the agent reports it; not blank.
    #[schema(min_length = 1, pattern = r"\S")]
    hostname: String,
    /// `linux`, `windows`, ...; not blank.
    #[schema(min_length = 1, pattern = r"\S")]
    os_type: String,
    os_name: Option<String>,
    os_version: Option<String>,
    arch: Option<String>,
    /// The agent's own version; not blank.
    #[schema(min_length = 1, pattern = r"\S")]
    agent_version: String,
    /// The host's IP addresses, as text (others are dropped).
    ips: Vec<String>,
}

/// `POST /api/v1/agents/enroll`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// An enrollment token (`dze_…`, from `dozor tokens create`). Not needed to renew: an
    /// enrolled agent presenting its current certificate gets a new one for the same id.
    #[serde(default)]
    pub token: Option<String>,
    /// PKCS#10 certificate signing request, PEM, made with the agent's own new key.
    pub csr_pem: String,
    /// What the agent says about its host.
    #[schema(value_type = AgentFactsDoc)]
    pub facts: AgentFacts,
    /// Revoke other agents enrolled with the same hostname (a reinstalled host). Without it
    /// they stay and the answer lists them in `duplicates`. Allowed only when the token was
    /// created to replace this hostname (`dozor tokens create --may-replace HOST|any`) or the
    /// request presents the replaced agent's current client certificate (proof of its key);
    /// otherwise 409 `duplicate-hostname`. Each replacement raises a high alert
    /// (`dozor-agent-replaced`) and is audited.
    #[serde(default)]
    pub replace_duplicates: bool,
}

/// Another agent with the same hostname.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DuplicateAgent {
    pub id: String,
    pub last_seen: i64,
    /// True when this enrollment revoked it (`replace_duplicates`).
    pub revoked: bool,
}

/// The answer to an enrollment.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnrollResponse {
    pub agent_id: String,
    /// The client certificate, PEM, signed by the server's CA.
    pub certificate_pem: String,
    /// The CA certificate to pin, PEM.
    pub ca_pem: String,
    /// Certificate expiry, ms since the epoch.
    pub certificate_not_after: i64,
    /// True when an enrolled agent renewed its certificate (same id).
    pub renewed: bool,
    pub heartbeat_interval_secs: u64,
    /// Other unrevoked agents with the same hostname.
    pub duplicates: Vec<DuplicateAgent>,
}

/// `POST /api/v1/agents/heartbeat`: the agent's facts and health; everything else it sends
/// (resources, spool, collectors) is kept as the last heartbeat document.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct HeartbeatRequest {
    #[schema(value_type = AgentFactsDoc)]
    pub facts: AgentFacts,
    /// Problems the agent reports (a collector down, events dropped from a full spool, ...).
    #[serde(default)]
    pub health: Vec<String>,
    /// Resource usage, spool and collector state, as the agent reports them.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub rest: serde_json::Map<String, Value>,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeartbeatResponse {
    pub agent_id: String,
    pub status: AgentStatus,
    /// When to send the next heartbeat.
    pub heartbeat_interval_secs: u64,
    pub server_time: i64,
    /// The certificate the agent presented expires then (ms); it should renew when a third
    /// of its validity is left.
    pub certificate_not_after: i64,
    /// The version of the server's YARA rules (`GET /api/v1/agents/yara-rules`); an agent
    /// whose rules have another version fetches them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yara_rules_version: Option<String>,
    /// Commands for the agent to run (absent when there are none). A command without a
    /// result is handed out again after `agents.command_redeliver_after`, up to
    /// `agents.command_max_attempts` times: run each id once. Report the outcome with
    /// `POST /api/v1/agents/commands/{id}/result`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<CommandDelivery>,
}

/// A command in a heartbeat answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommandDelivery {
    /// Command id (UUID); the result is reported under it.
    pub id: String,
    /// What to do: `scan_path`.
    pub kind: String,
    /// Its arguments; `scan_path`: `{"path": "/abs/path" or "C:\\dir", "recursive": true}`.
    #[schema(value_type = Object)]
    pub args: Value,
}

impl From<AgentCommand> for CommandDelivery {
    fn from(c: AgentCommand) -> CommandDelivery {
        CommandDelivery {
            id: c.id.to_string(),
            kind: c.kind,
            args: c.args,
        }
    }
}

struct Cached {
    /// `None`: the certificate is not (or no longer) an agent's.
    agent: Option<String>,
    at: Instant,
}

/// The agent registry as the HTTP handlers use it.
pub struct AgentRegistry {
    store: Arc<dyn Store>,
    notices: tokio::sync::broadcast::Sender<AgentNotice>,
    alerts: AlertSink,
    ca: Arc<CertificateAuthority>,
    config: AgentsConfig,
    by_cert: Mutex<HashMap<[u8; 32], Cached>>,
    touched: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for AgentRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentRegistry")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The agent id in a certificate's subject CN and its expiry (ms).
fn certificate_subject(der: &[u8]) -> Option<(String, i64)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?;
    let not_after = cert.validity().not_after.timestamp() * 1000;
    Some((cn.to_owned(), not_after))
}

/// Why the registry refused a request or could not answer. The registry knows nothing of
/// HTTP: [`From<RegistryError> for Problem`] is the answer the API gives.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The credential (client certificate or enrollment token) is not accepted: why.
    #[error("{0}")]
    Unauthorized(String),
    /// The request is malformed; `slug` names the case (`invalid-body`, `invalid-csr`).
    #[error("{message}")]
    BadRequest { slug: &'static str, message: String },
    /// A reported result does not fit (too large, wrong status).
    #[error("{0}")]
    Unprocessable(String),
    /// No such thing (a command of this agent).
    #[error("{0}")]
    NotFound(String),
    /// The store behind the registry can't be read right now.
    #[error("the agent registry can't be read right now: {0}")]
    Unavailable(#[source] dozor_store::StoreError),
    /// The built-in CA could not issue the certificate.
    #[error("certificate issue failed: {0}")]
    IssueFailed(String),
    /// Refused in the current state; `slug` names the case (`duplicate-hostname`).
    #[error("{message}")]
    Refused { slug: &'static str, message: String },
}

/// Where the registry's own alerts (an agent replaced) go: the store, within the alert
/// aggregation window, and then the alert stream.
#[derive(Clone)]
pub struct AlertSink {
    pub notices: tokio::sync::broadcast::Sender<dozor_pipeline::AlertNotice>,
    pub window: Duration,
}

impl From<RegistryError> for Problem {
    fn from(e: RegistryError) -> Problem {
        use axum::http::StatusCode;
        match e {
            RegistryError::Unauthorized(why) => Problem::unauthorized(why, true),
            RegistryError::BadRequest { slug, message } => Problem::bad_request(slug, message),
            RegistryError::Unprocessable(why) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-body",
                "Invalid request body",
            )
            .detail(why),
            RegistryError::NotFound(why) => {
                Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found").detail(why)
            }
            RegistryError::Unavailable(e) => {
                tracing::warn!("agent registry: {e}");
                Problem::unavailable(
                    "registry-unavailable",
                    "the agent registry can't be read right now",
                    Duration::from_secs(5),
                )
            }
            RegistryError::Refused { slug, message } => {
                Problem::new(StatusCode::CONFLICT, slug, "Refused").detail(message)
            }
            RegistryError::IssueFailed(why) => Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "issue-failed",
                "Certificate issue failed",
            )
            .detail(why),
        }
    }
}

fn unauthorized(detail: impl Into<String>) -> RegistryError {
    RegistryError::Unauthorized(detail.into())
}

fn store_unavailable(e: dozor_store::StoreError) -> RegistryError {
    RegistryError::Unavailable(e)
}

fn token_refused(refusal: EnrollmentRefusal) -> RegistryError {
    unauthorized(match refusal {
        EnrollmentRefusal::Unknown => "the enrollment token is not valid",
        EnrollmentRefusal::Expired => "the enrollment token has expired",
        EnrollmentRefusal::Revoked => "the enrollment token was revoked",
        EnrollmentRefusal::UsedUp => "the enrollment token has no uses left",
    })
}

fn invalid_csr(why: String) -> RegistryError {
    RegistryError::BadRequest {
        slug: "invalid-csr",
        message: format!("csr_pem can't be used: {why}"),
    }
}

/// Largest CSR accepted.
const MAX_CSR_BYTES: usize = 16 * 1024;

fn checked_size(csr_pem: &str) -> Result<&str, RegistryError> {
    if csr_pem.len() > MAX_CSR_BYTES {
        return Err(RegistryError::BadRequest {
            slug: "invalid-csr",
            message: "csr_pem is larger than 16 KiB".into(),
        });
    }
    Ok(csr_pem)
}

/// Who is enrolling.
#[derive(Debug, Default)]
pub struct Enroller<'a> {
    /// The connection's address (for the audit log and alerts).
    pub address: String,
    /// Renewing: the agent whose current certificate the request presented (no token).
    pub renewing: Option<&'a Identity>,
    /// Enrolling with a token while presenting an agent's current certificate: proof of that
    /// agent's key, which allows replacing it.
    pub proven: Option<&'a Identity>,
}

fn clip(text: &str) -> String {
    clip_bytes(text, MAX_FACT)
}

/// `text` trimmed and cut at a character boundary to at most `max` bytes (the store's limits
/// are in bytes).
fn clip_bytes(text: &str, max: usize) -> String {
    let text = text.trim();
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// A fact every agent must report: trimmed, bounded, not blank (422 otherwise, before the
/// store would refuse it).
fn required_fact(name: &str, value: &str, max: usize) -> Result<String, RegistryError> {
    let value = clip_bytes(value, max);
    if value.is_empty() {
        return Err(RegistryError::Unprocessable(format!(
            "facts.{name} must not be empty"
        )));
    }
    Ok(value)
}

/// Facts as the registry keeps them: trimmed, bounded, IPs that parse.
fn clean_facts(facts: &AgentFacts) -> Result<AgentFacts, RegistryError> {
    Ok(AgentFacts {
        hostname: required_fact("hostname", &facts.hostname, MAX_HOSTNAME)?,
        os_type: required_fact("os_type", &facts.os_type, MAX_SHORT_FACT)?.to_ascii_lowercase(),
        os_name: facts.os_name.as_deref().map(clip),
        os_version: facts.os_version.as_deref().map(clip),
        arch: facts.arch.as_deref().map(clip),
        agent_version: required_fact("agent_version", &facts.agent_version, MAX_SHORT_FACT)?,
        ips: facts
            .ips
            .iter()
            .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
            .take(MAX_LIST)
            .cloned()
            .collect(),
    })
}

impl AgentRegistry {
    pub fn new(
        store: Arc<dyn Store>,
        notices: tokio::sync::broadcast::Sender<AgentNotice>,
        alerts: AlertSink,
        ca: Arc<CertificateAuthority>,
        config: AgentsConfig,
    ) -> AgentRegistry {
        AgentRegistry {
            store,
            notices,
            alerts,
            ca,
            config,
            by_cert: Mutex::new(HashMap::new()),
            touched: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &AgentsConfig {
        &self.config
    }

    /// The agent a verified client certificate belongs to. `Ok(None)` without a certificate;
    /// a 401 problem for a certificate that is not (or no longer) an agent's.
    ///
    /// The TLS layer has already checked that the chain leads to the built-in CA and is
    /// within its validity; here the certificate must also be the agent's current one and
    /// the agent not revoked.
    pub async fn identify(
        &self,
        chain: &[CertificateDer<'static>],
    ) -> Result<Option<Identity>, RegistryError> {
        let Some(leaf) = chain.first() else {
            return Ok(None);
        };
        let digest = sha256(leaf.as_ref());
        if let Some(cached) = self
            .by_cert
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&digest)
            .filter(|c| c.at.elapsed() < IDENTITY_CACHE_TTL)
        {
            return match &cached.agent {
                Some(id) => Ok(Some(Identity::agent(id.clone()))),
                None => Err(unauthorized(
                    "this client certificate is revoked or was replaced by a newer enrollment",
                )),
            };
        }
        let Some((agent_id, _)) = certificate_subject(leaf.as_ref()) else {
            return Err(unauthorized(
                "the client certificate has no agent id in its subject",
            ));
        };
        let agent = self
            .store
            .get_agent(&agent_id)
            .await
            .map_err(store_unavailable)?;
        let valid = agent
            .as_ref()
            .is_some_and(|a| a.revoked_at.is_none() && a.cert_sha256 == hex(&digest));
        self.by_cert
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                digest,
                Cached {
                    agent: valid.then(|| agent_id.clone()),
                    at: Instant::now(),
                },
            );
        match (valid, agent) {
            (true, _) => Ok(Some(Identity::agent(agent_id))),
            (false, Some(a)) if a.revoked_at.is_some() => Err(unauthorized(format!(
                "agent {agent_id} is revoked; enroll again with a new token"
            ))),
            (false, Some(_)) => Err(unauthorized(format!(
                "this certificate of agent {agent_id} was replaced by a newer enrollment"
            ))),
            (false, None) => Err(unauthorized(format!("agent {agent_id} is not enrolled"))),
        }
    }

    /// Records that events arrived from `agent_id` (at most every few seconds per agent).
    pub async fn touch(&self, agent_id: &str) {
        {
            let mut touched = self.touched.lock().unwrap_or_else(|p| p.into_inner());
            if touched
                .get(agent_id)
                .is_some_and(|t| t.elapsed() < TOUCH_EVERY)
            {
                return;
            }
            if touched.len() > 100_000 {
                touched.clear();
            }
            touched.insert(agent_id.to_owned(), Instant::now());
        }
        if let Err(e) = self.store.touch_agent(agent_id, now_ms()).await {
            tracing::warn!(agent_id, "recording last_seen failed: {e}");
        }
    }

    /// Forgets cached lookups of an agent (after a revocation).
    pub fn forget(&self, agent_id: &str) {
        self.by_cert
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, c| c.agent.as_deref() != Some(agent_id));
    }

    /// Enrolls (with a token) or renews (with the current certificate, `caller.renewing`).
    pub async fn enroll(
        &self,
        request: EnrollRequest,
        caller: &Enroller<'_>,
    ) -> Result<EnrollResponse, RegistryError> {
        let facts = clean_facts(&request.facts)?;
        let days = self.config.certificate_days;
        if let Some(identity) = caller.renewing {
            let agent_id = identity.subject.clone();
            let (certificate_pem, sha, not_after) =
                self.issue(&request.csr_pem, &agent_id, days)?;
            let renewed = self
                .store
                .reenroll_agent(&agent_id, &facts, &sha, not_after)
                .await
                .map_err(store_unavailable)?;
            if renewed.is_none() {
                return Err(unauthorized(format!("agent {agent_id} is revoked")));
            }
            self.forget(&agent_id);
            self.audit(
                &format!("agent:{agent_id}"),
                "agent.renew",
                &agent_id,
                json!({ "hostname": facts.hostname, "certificate_sha256": sha }),
            )
            .await;
            return Ok(EnrollResponse {
                agent_id,
                certificate_pem,
                ca_pem: self.ca.cert_pem().to_owned(),
                certificate_not_after: not_after,
                renewed: true,
                heartbeat_interval_secs: self.config.heartbeat_interval.as_secs(),
                duplicates: Vec::new(),
            });
        }

        let Some(secret) = request.token.as_deref().map(str::trim) else {
            return Err(unauthorized(
                "enrollment needs a token (dozor tokens create; one use within 24 h by default)",
            ));
        };
        // A CSR that can't be signed must not spend a use of the token.
        self.ca
            .check_csr(checked_size(&request.csr_pem)?)
            .map_err(|e| invalid_csr(e.to_string()))?;
        let token = self
            .store
            .check_enrollment_token(secret)
            .await
            .map_err(store_unavailable)?
            .map_err(token_refused)?;
        let others = self
            .store
            .agents_with_hostname(&facts.hostname)
            .await
            .map_err(store_unavailable)?;
        if request.replace_duplicates {
            // A token holder may not evict another host: only a token an administrator made
            // for this hostname, or the replaced agent's own key, may.
            let proven = caller.proven.map(|p| p.subject.as_str());
            if let Some(other) = others.iter().find(|other| {
                !token.allows_replacing(&facts.hostname) && proven != Some(other.id.as_str())
            }) {
                return Err(RegistryError::Refused {
                    slug: "duplicate-hostname",
                    message: format!(
                        "{host} is enrolled already as agent {id}, and this enrollment token may not replace it. \
                         An administrator can revoke agent {id} (dozor agents revoke {id}, or the dashboard) and enroll \
                         again without --replace, or create a token that may replace it \
                         (dozor tokens create --may-replace {host}); the old agent's own host can re-enroll with \
                         --force --replace while it still has its identity.",
                        host = facts.hostname,
                        id = other.id,
                    ),
                });
            }
        }
        let token = self
            .store
            .redeem_enrollment_token(secret)
            .await
            .map_err(store_unavailable)?
            .map_err(token_refused)?;
        let agent_id = Uuid::now_v7().to_string();
        let (certificate_pem, sha, not_after) = self.issue(&request.csr_pem, &agent_id, days)?;
        let agent = self
            .store
            .insert_agent(&NewAgent {
                id: agent_id.clone(),
                facts: facts.clone(),
                cert_sha256: sha.clone(),
                cert_not_after: not_after,
                enrolled_by: format!("token:{}", token.id),
            })
            .await
            .map_err(store_unavailable)?;
        let mut duplicates = Vec::new();
        for other in others {
            let mut revoked = false;
            if request.replace_duplicates {
                revoked = self
                    .store
                    .revoke_agent(&other.id, &format!("agent:{agent_id}"))
                    .await
                    .map_err(store_unavailable)?;
                self.forget(&other.id);
                if revoked {
                    self.replaced(&other, &agent_id, &token, caller).await;
                }
            }
            duplicates.push(DuplicateAgent {
                id: other.id,
                last_seen: other.last_seen,
                revoked,
            });
        }
        self.audit(
            &format!("token:{}:{}", token.id, token.name),
            "agent.enroll",
            &agent.id,
            json!({
                "hostname": facts.hostname,
                "os_type": facts.os_type,
                "certificate_sha256": sha,
                "address": caller.address,
                "duplicates": duplicates.iter().map(|d| &d.id).collect::<Vec<_>>(),
            }),
        )
        .await;
        if !duplicates.is_empty() {
            tracing::warn!(
                agent_id,
                hostname = facts.hostname,
                "enrolled a host name that is already enrolled ({} other agents)",
                duplicates.len()
            );
        }
        Ok(EnrollResponse {
            agent_id,
            certificate_pem,
            ca_pem: self.ca.cert_pem().to_owned(),
            certificate_not_after: not_after,
            renewed: false,
            heartbeat_interval_secs: self.config.heartbeat_interval.as_secs(),
            duplicates,
        })
    }

    /// Signs the CSR: (certificate PEM, SHA-256 of its DER in hex, not-after ms).
    fn issue(
        &self,
        csr_pem: &str,
        agent_id: &str,
        days: u32,
    ) -> Result<(String, String, i64), RegistryError> {
        let pem = self
            .ca
            .issue_client_certificate(checked_size(csr_pem)?, agent_id, days)
            .map_err(|e| invalid_csr(e.to_string()))?;
        let der = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| RegistryError::IssueFailed(e.to_string()))?;
        let not_after = certificate_subject(der.as_ref())
            .map(|(_, t)| t)
            .unwrap_or_else(|| now_ms() + i64::from(days) * 86_400_000);
        Ok((pem, hex(&sha256(der.as_ref())), not_after))
    }

    /// Records a heartbeat from an authenticated agent.
    pub async fn heartbeat(
        &self,
        identity: &Identity,
        request: HeartbeatRequest,
        presented: &CertificateDer<'static>,
    ) -> Result<HeartbeatResponse, RegistryError> {
        let facts = clean_facts(&request.facts)?;
        let health: Vec<String> = request
            .health
            .iter()
            .map(|h| clip(h))
            .filter(|h| !h.is_empty())
            .take(MAX_LIST)
            .collect();
        let mut doc = Value::Object(request.rest);
        if serde_json::to_vec(&doc).map_or(0, |v| v.len()) > MAX_HEARTBEAT_BYTES {
            doc = json!({ "truncated": true });
        }
        let now = now_ms();
        let hb = AgentHeartbeat {
            facts,
            health,
            doc,
            at: now,
        };
        let before = self
            .store
            .record_heartbeat(&identity.subject, &hb)
            .await
            .map_err(store_unavailable)?
            .ok_or_else(|| unauthorized(format!("agent {} is revoked", identity.subject)))?;
        if before.offline_since.is_some() {
            tracing::info!(agent_id = identity.subject, "agent is back online");
            self.audit(
                &format!("agent:{}", identity.subject),
                "agent.online",
                &identity.subject,
                json!({ "offline_since": before.offline_since, "hostname": hb.facts.hostname }),
            )
            .await;
        }
        let after = Agent {
            last_seen: now,
            offline_since: None,
            health: hb.health.clone(),
            ..before
        };
        let status = self.config.status_of(&after, now);
        let commands = self.take_commands(&identity.subject, now).await;
        // No subscriber is not an error.
        let _ = self.notices.send(AgentNotice {
            id: identity.subject.clone(),
            hostname: after.facts.hostname.clone(),
            status,
            last_seen: now,
        });
        Ok(HeartbeatResponse {
            agent_id: identity.subject.clone(),
            status,
            heartbeat_interval_secs: self.config.heartbeat_interval.as_secs(),
            server_time: now,
            certificate_not_after: certificate_subject(presented.as_ref())
                .map(|(_, t)| t)
                .unwrap_or(after.cert_not_after),
            commands,
            yara_rules_version: None,
        })
    }

    /// The commands a heartbeat answer carries. The heartbeat is recorded already, so a store
    /// failure here is logged, not a refusal: the commands stay where they are and come with
    /// a later heartbeat.
    async fn take_commands(&self, agent_id: &str, now: i64) -> Vec<CommandDelivery> {
        match self
            .store
            .take_for_delivery(
                agent_id,
                now,
                self.config.command_redeliver_after,
                self.config.command_max_attempts,
            )
            .await
        {
            Ok(commands) => commands
                .into_iter()
                .inspect(|c| {
                    tracing::info!(
                        agent_id,
                        command_id = %c.id,
                        kind = c.kind,
                        attempt = c.attempts,
                        "command handed to the agent"
                    );
                })
                .map(CommandDelivery::from)
                .collect(),
            Err(e) => {
                tracing::warn!(agent_id, "handing out commands failed: {e}");
                Vec::new()
            }
        }
    }

    /// The commands ready for an agent's long poll (marked delivered, as a heartbeat answer
    /// would); the poll also counts as a sign of life.
    pub async fn deliver_commands(&self, agent_id: &str) -> Vec<dozor_model::api::CommandDelivery> {
        let now = dozor_store::now_ms();
        if let Err(e) = self.store.touch_agent(agent_id, now).await {
            tracing::debug!(agent_id, "touching the agent: {e}");
        }
        self.take_commands(agent_id, now)
            .await
            .into_iter()
            .filter_map(|c| {
                Some(dozor_model::api::CommandDelivery {
                    id: Uuid::parse_str(&c.id).ok()?,
                    kind: c.kind,
                    args: c.args,
                })
            })
            .collect()
    }

    /// Records the result an authenticated agent reports for one of its commands (audited
    /// as `agent.command.result` when recorded). `Ok(false)`: it had its result already and
    /// nothing changed. Another agent's or an unknown command is a 404.
    pub async fn finish_command(
        &self,
        identity: &Identity,
        id: Uuid,
        status: CommandStatus,
        result: Option<&Value>,
        error: Option<&str>,
    ) -> Result<bool, RegistryError> {
        let agent_id = identity.subject.as_str();
        let outcome = self
            .store
            .finish_command(id, agent_id, status, result, error)
            .await
            .map_err(|e| match e {
                dozor_store::StoreError::InvalidArgument(why) => RegistryError::Unprocessable(why),
                other => store_unavailable(other),
            })?;
        match outcome {
            CommandFinish::Recorded(command) => {
                tracing::info!(agent_id, command_id = %id, status = %status, "command result recorded");
                let summary = dozor_store::api::result_summary(command.result.as_ref());
                self.audit(
                    &format!("agent:{agent_id}"),
                    "agent.command.result",
                    agent_id,
                    json!({
                        "command_id": id,
                        "kind": command.kind,
                        "status": status,
                        "summary": summary,
                        "error": command.error.as_deref().map(clip),
                    }),
                )
                .await;
                Ok(true)
            }
            CommandFinish::AlreadyFinished(command) => {
                tracing::info!(
                    agent_id,
                    command_id = %id,
                    status = %command.status,
                    "a command's result arrived again; the first one is kept"
                );
                Ok(false)
            }
            CommandFinish::Unknown => Err(RegistryError::NotFound(format!(
                "agent {agent_id} has no command {id}"
            ))),
        }
    }

    /// An enrollment revoked `old`: audited, and a high alert, since a stolen token used this
    /// way takes over a host's identity.
    async fn replaced(
        &self,
        old: &Agent,
        new_id: &str,
        token: &EnrollmentTokenInfo,
        caller: &Enroller<'_>,
    ) {
        let proof = if caller.proven.is_some_and(|p| p.subject == old.id) {
            "the replaced agent's certificate"
        } else {
            "a token allowed to replace this hostname"
        };
        tracing::warn!(
            old_agent_id = old.id,
            new_agent_id = new_id,
            hostname = old.facts.hostname,
            token_id = token.id,
            address = caller.address,
            "an enrollment replaced an agent ({proof})"
        );
        self.audit(
            &format!("token:{}:{}", token.id, token.name),
            "agent.revoke",
            &old.id,
            json!({
                "reason": "replaced by a new enrollment of the same hostname",
                "hostname": old.facts.hostname,
                "replaced_by": new_id,
                "token_id": token.id,
                "address": caller.address,
                "allowed_by": proof,
            }),
        )
        .await;
        let now = now_ms();
        let message = format!(
            "agent {} on {} was replaced by a new enrollment (agent {new_id}, enrollment token {} \"{}\", from {}; allowed by {proof})",
            old.id, old.facts.hostname, token.id, token.name, caller.address
        );
        let mut event = agent_event(old, Uuid::now_v7(), now, now, "agent-replaced", message);
        event.doc["labels"] = json!({
            "old_agent_id": old.id,
            "new_agent_id": new_id,
            "enrollment_token_id": token.id.to_string(),
            "enrollment_token_name": token.name,
        });
        if caller.address.parse::<std::net::IpAddr>().is_ok() {
            event.doc["source"] = json!({ "ip": caller.address });
        }
        match raise_alert(
            self.store.as_ref(),
            &event,
            REPLACED_RULE_ID,
            REPLACED_RULE_TITLE,
            self.alerts.window,
        )
        .await
        {
            Ok(outcomes) => publish_alerts(&self.alerts.notices, outcomes),
            Err(e) => tracing::error!(
                old_agent_id = old.id,
                "raising the agent-replaced alert failed: {e}"
            ),
        }
    }

    /// Agents' changes are recorded; a failed write is logged, never a refusal.
    async fn audit(&self, actor: &str, action: &str, target: &str, details: Value) {
        let target = format!("agent:{target}");
        crate::audit::append_audit(self.store.as_ref(), actor, action, target, details).await;
    }
}

/// The event stored with an agent-offline alert.
fn offline_event(agent: &Agent, now: i64) -> NewEvent {
    let since = agent.offline_since.unwrap_or(now);
    // One id per offline period: a retried store of the same period changes nothing.
    let id = Uuid::new_v5(
        &Uuid::from_u128(0x2d0c_7a51_93e4_4f0b_8c6d_1e5a_b3f2_9a07),
        format!("{}\n{}", agent.id, agent.last_seen).as_bytes(),
    );
    let last = chrono::DateTime::from_timestamp_millis(agent.last_seen)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let message = format!(
        "agent {} on {} has been silent since {last}",
        agent.id, agent.facts.hostname
    );
    agent_event(agent, id, since, now, "agent-offline", message)
}

/// An event about `agent` (the registry's own alerts), at `ts`.
fn agent_event(
    agent: &Agent,
    id: Uuid,
    ts: i64,
    now: i64,
    action: &str,
    message: String,
) -> NewEvent {
    let at = chrono::DateTime::from_timestamp_millis(ts)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let doc = json!({
        "@timestamp": at,
        "message": message,
        "event": {
            "id": id.to_string(),
            "kind": "alert",
            "category": ["host"],
            "type": ["info"],
            "action": action,
            "module": "dozor",
            "dataset": "agent",
        },
        "agent": { "id": agent.id, "name": agent.facts.hostname, "version": agent.facts.agent_version },
        "host": { "name": agent.facts.hostname, "hostname": agent.facts.hostname, "ip": agent.facts.ips },
    });
    NewEvent {
        id,
        ts,
        received_at: now,
        agent_id: Some(agent.id.clone()),
        doc,
    }
}

/// Stores `event` with a high detection of rule `rule_id`: the alerts made or updated.
async fn raise_alert(
    store: &dyn Store,
    event: &NewEvent,
    rule_id: &str,
    rule_title: &str,
    alert_window: Duration,
) -> Result<Vec<dozor_store::DetectionOutcome>, dozor_store::StoreError> {
    let detection = Detection {
        rule_id: rule_id.to_owned(),
        rule_title: rule_title.to_owned(),
        level: Level::High,
        tags: Vec::new(),
        agent_id: event.agent_id.clone(),
        host: dozor_store::event_host(&event.doc).map(str::to_owned),
        event_id: event.id,
        ts: event.ts,
    };
    let report = store
        .store_batch(std::slice::from_ref(event), &[detection], alert_window)
        .await?;
    Ok(report.alerts)
}

/// Tells the alert stream's subscribers (there may be none).
fn publish_alerts(
    notices: &tokio::sync::broadcast::Sender<dozor_pipeline::AlertNotice>,
    outcomes: Vec<dozor_store::DetectionOutcome>,
) {
    for outcome in outcomes {
        let _ = notices.send(dozor_pipeline::AlertNotice {
            change: outcome.change,
            alert: outcome.alert,
        });
    }
}

/// Marks agents silent longer than `agents.offline_after` offline and raises one alert per
/// agent per offline period (rule [`OFFLINE_RULE_ID`]). Several server processes may run it:
/// the store hands each newly offline agent to exactly one of them. Returns those agents and
/// the alerts made.
pub async fn check_offline(
    store: &dyn Store,
    config: &AgentsConfig,
    alert_window: Duration,
) -> Result<(Vec<Agent>, Vec<dozor_store::DetectionOutcome>), dozor_store::StoreError> {
    let now = now_ms();
    let silent_before = now - config.offline_after.as_millis() as i64;
    let gone = store.mark_agents_offline(silent_before).await?;
    let mut outcomes = Vec::new();
    for agent in &gone {
        let event = offline_event(agent, now);
        tracing::warn!(
            agent_id = agent.id,
            hostname = agent.facts.hostname,
            "agent went offline"
        );
        outcomes.extend(
            raise_alert(
                store,
                &event,
                OFFLINE_RULE_ID,
                OFFLINE_RULE_TITLE,
                alert_window,
            )
            .await?,
        );
    }
    Ok((gone, outcomes))
}

/// Runs [`check_offline`] until `stop` turns true, publishing the alerts to `notices`.
pub async fn watch_offline(
    store: Arc<dyn Store>,
    config: AgentsConfig,
    alert_window: Duration,
    notices: tokio::sync::broadcast::Sender<dozor_pipeline::AlertNotice>,
    agent_notices: tokio::sync::broadcast::Sender<AgentNotice>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let every =
        (config.offline_after / 4).clamp(Duration::from_millis(500), Duration::from_secs(15));
    loop {
        match check_offline(store.as_ref(), &config, alert_window).await {
            Ok((gone, outcomes)) => {
                for agent in gone {
                    let _ = agent_notices.send(AgentNotice {
                        id: agent.id,
                        hostname: agent.facts.hostname,
                        status: AgentStatus::Offline,
                        last_seen: agent.last_seen,
                    });
                }
                publish_alerts(&notices, outcomes);
            }
            Err(e) => tracing::warn!("offline check failed: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(last_seen: i64) -> Agent {
        Agent {
            id: "a".into(),
            facts: AgentFacts {
                hostname: "h".into(),
                os_type: "linux".into(),
                os_name: None,
                os_version: None,
                arch: None,
                agent_version: "0".into(),
                ips: vec![],
            },
            enrolled_at: 0,
            enrolled_by: "token:1".into(),
            cert_sha256: String::new(),
            cert_not_after: 0,
            reenrolled_at: None,
            last_seen,
            last_heartbeat: None,
            health: vec![],
            offline_since: None,
            revoked_at: None,
            revoked_by: None,
        }
    }

    #[test]
    fn status_follows_thresholds() {
        let c = AgentsConfig::default(); // degraded 90 s, offline 300 s
        let now = 1_000_000_000;
        assert_eq!(c.status_of(&agent(now), now), AgentStatus::Online);
        assert_eq!(
            c.status_of(&agent(now - 91_000), now),
            AgentStatus::Degraded
        );
        assert_eq!(
            c.status_of(&agent(now - 301_000), now),
            AgentStatus::Offline
        );
        let mut sick = agent(now);
        sick.health = vec!["spool full".into()];
        assert_eq!(c.status_of(&sick, now), AgentStatus::Degraded);
        let mut gone = agent(now);
        gone.offline_since = Some(now);
        assert_eq!(c.status_of(&gone, now), AgentStatus::Offline);
        gone.revoked_at = Some(now);
        assert_eq!(c.status_of(&gone, now), AgentStatus::Revoked);
    }

    #[test]
    fn offline_event_is_valid_and_stable() {
        let a = agent(5_000);
        let e1 = offline_event(&a, 10_000);
        let e2 = offline_event(&a, 20_000);
        assert_eq!(e1.id, e2.id, "one id per offline period");
        let v = crate::schema::EventValidator::new().unwrap();
        assert_eq!(v.validate(&e1.doc), vec![]);
    }
}
