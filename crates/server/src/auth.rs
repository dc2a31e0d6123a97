//! Who is calling: [`TokenVerifier`] turns a bearer token into an [`Identity`]; the store's
//! API tokens and agent enrollment implement it later, [`StaticTokens`] is the in-memory one.

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use serde::Serialize;

use crate::boxed::BoxFuture;
use crate::problem::Problem;
use dozor_store::Access;

/// What a credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An enrolled agent: sends events about itself.
    Agent,
    /// An operator with every right, including imports of other collectors' logs.
    Admin,
    /// An operator who triages alerts and hunts.
    Analyst,
    /// An operator who only reads.
    Viewer,
}

// The rights the API and the dashboard check are the model's `Access`; extractors take them
// as const generic numbers (`Caller<READ>`, `FormAction<ADMIN>`), which must be integers.
/// Reading: events, alerts, rules, stats, the stream (viewers and up).
pub(crate) const READ: u8 = Access::Read as u8;
/// Triage: alert workflow, comments, rule tests (analysts and admins).
pub(crate) const TRIAGE: u8 = Access::Triage as u8;
/// Administration: rule enable/disable and reload, users (admins).
pub(crate) const ADMIN: u8 = Access::Admin as u8;

fn access(need: u8) -> Access {
    match need {
        READ => Access::Read,
        TRIAGE => Access::Triage,
        _ => Access::Admin,
    }
}

impl Role {
    /// The credential role of an operator role; `None` for `agent-ingest` (agents use their
    /// certificates).
    pub fn of_operator(role: dozor_store::Role) -> Option<Role> {
        match role {
            dozor_store::Role::Admin => Some(Role::Admin),
            dozor_store::Role::Analyst => Some(Role::Analyst),
            dozor_store::Role::Viewer => Some(Role::Viewer),
            dozor_store::Role::AgentIngest => None,
        }
    }

    /// The operator role of a credential; `None` for an agent (which only sends events).
    pub fn operator(self) -> Option<dozor_store::Role> {
        match self {
            Role::Agent => None,
            Role::Admin => Some(dozor_store::Role::Admin),
            Role::Analyst => Some(dozor_store::Role::Analyst),
            Role::Viewer => Some(dozor_store::Role::Viewer),
        }
    }
}

/// Does this credential have the right `need` (the model's rules: `Role::permits`)?
pub(crate) fn permits(role: Role, need: u8) -> bool {
    role.operator().is_some_and(|r| r.permits(access(need)))
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// The agent id for agents, the account or token name for operators.
    pub subject: String,
    pub role: Role,
}

impl Identity {
    pub fn agent(id: impl Into<String>) -> Identity {
        Identity {
            subject: id.into(),
            role: Role::Agent,
        }
    }

    pub fn operator(name: impl Into<String>, role: Role) -> Identity {
        Identity {
            subject: name.into(),
            role,
        }
    }

    /// The agent this credential speaks for: events it sends must be about this agent.
    pub fn agent_id(&self) -> Option<&str> {
        (self.role == Role::Agent).then_some(self.subject.as_str())
    }
}

/// The verifier could not answer (e.g. the store is down); not the same as a bad token.
#[derive(Debug, Clone, thiserror::Error)]
#[error("credential check unavailable: {0}")]
pub struct VerifierError(pub String);

/// Checks bearer tokens.
pub trait TokenVerifier: Send + Sync + 'static {
    /// `Ok(None)` for an unknown, expired or revoked token.
    fn verify<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<Identity>, VerifierError>>;
}

/// Tokens held in memory, compared by their SHA-256 digest (the tokens themselves are not
/// kept).
#[derive(Debug, Default, Clone)]
pub struct StaticTokens {
    by_digest: HashMap<[u8; 32], Identity>,
}

impl StaticTokens {
    pub fn new() -> StaticTokens {
        StaticTokens::default()
    }

    /// Adds a token.
    pub fn with(mut self, token: &str, identity: Identity) -> StaticTokens {
        self.insert(token, identity);
        self
    }

    pub fn insert(&mut self, token: &str, identity: Identity) {
        self.by_digest.insert(digest(token), identity);
    }
}

fn digest(token: &str) -> [u8; 32] {
    crate::digest::sha256(token.as_bytes())
}

impl TokenVerifier for StaticTokens {
    fn verify<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<Identity>, VerifierError>> {
        let found = self.by_digest.get(&digest(token)).cloned();
        Box::pin(async move { Ok(found) })
    }
}

/// Bearer tokens checked against the store (what `dozor server` uses). Agents authenticate
/// with their enrollment certificate only, so `agent-ingest` tokens never verify.
pub struct StoreTokens(pub std::sync::Arc<dyn dozor_store::Store>);

impl TokenVerifier for StoreTokens {
    fn verify<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<Identity>, VerifierError>> {
        Box::pin(async move {
            let info = self
                .0
                .verify_token(token)
                .await
                .map_err(|e| VerifierError(e.to_string()))?;
            Ok(info.and_then(|t| {
                let role = Role::of_operator(t.role)?;
                Some(Identity {
                    role,
                    subject: t.name,
                })
            }))
        })
    }
}

/// The bearer token of a request: `Err` with a 401 problem when it is missing or malformed.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, Problem> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Problem::unauthorized(
            "send an API or agent token as `Authorization: Bearer <token>`",
            false,
        ));
    };
    let value = value
        .to_str()
        .map_err(|_| Problem::unauthorized("the Authorization header is not text", true))?;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Problem::unauthorized(
            "the Authorization scheme must be Bearer",
            true,
        ));
    }
    let token = token.trim();
    if token.is_empty() || token.len() > 4096 {
        return Err(Problem::unauthorized(
            "the bearer token is empty or too long",
            true,
        ));
    }
    Ok(token)
}

/// Authenticates a request by its bearer token.
pub async fn authenticate(
    verifier: &dyn TokenVerifier,
    headers: &HeaderMap,
) -> Result<Identity, Problem> {
    let token = bearer_token(headers)?;
    match verifier.verify(token).await {
        Ok(Some(identity)) => Ok(identity),
        Ok(None) => Err(Problem::unauthorized("the token is not valid", true)),
        Err(e) => {
            tracing::warn!("token check failed: {e}");
            Err(Problem::unavailable(
                "auth-unavailable",
                "credentials can't be checked right now",
                std::time::Duration::from_secs(5),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[tokio::test]
    async fn bearer_tokens() {
        let tokens = StaticTokens::new().with("s3cret", Identity::agent("a1"));
        let mut h = HeaderMap::new();
        assert_eq!(authenticate(&tokens, &h).await.unwrap_err().status, 401);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic eHg6eXk="),
        );
        assert_eq!(authenticate(&tokens, &h).await.unwrap_err().status, 401);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer nope"),
        );
        assert_eq!(authenticate(&tokens, &h).await.unwrap_err().status, 401);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  s3cret "),
        );
        let id = authenticate(&tokens, &h).await.unwrap();
        assert_eq!(id.agent_id(), Some("a1"));
        assert_eq!(Identity::operator("root", Role::Admin).agent_id(), None);
    }
}
