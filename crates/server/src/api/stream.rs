//! `GET /api/v1/alerts/stream`: Server-Sent Events of the alerts the pipeline opens or updates.
//!
//! - `event: alert`, `data:` an [`AlertNotice`] (JSON) for each alert change;
//! - `event: lagged`, `data: {"skipped": n}` when this subscriber fell behind and missed `n`
//!   notices (re-read `GET /api/v1/alerts` to catch up);
//! - a comment first (`: connected`) and then keep-alive comments every 15 s;
//! - the stream ends when the server shuts down, and within [`CREDENTIAL_RECHECK`] of its
//!   credential ending: every stream checks the token or session it was opened with again
//!   (a token revoked, a user disabled, a session ended by logout or a password change).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use dozor_pipeline::AlertNotice;

use crate::agents::AgentNotice;
use dozor_store::Level;
use tokio::sync::{broadcast, watch};

use super::access::{Caller, LevelName, Params, READ, bad_param, still_valid};
use crate::problem::Problem;
use crate::problem_responses::{
    ApiNotConfigured, BadParameter, Forbidden, Unauthorized, problem_response,
};

problem_response! {
    TakesNoParameters = 400, "A query parameter: the agent stream takes none";
}
use crate::state::AppState;

/// Interval of the keep-alive comments.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How often a stream checks that its credential is still valid.
pub(crate) const CREDENTIAL_RECHECK: Duration = Duration::from_secs(2);

/// The credential a stream was opened with, checked again every [`CREDENTIAL_RECHECK`].
struct Credential {
    state: Arc<AppState>,
    headers: axum::http::HeaderMap,
    identity: crate::auth::Identity,
    every: tokio::time::Interval,
}

impl Credential {
    fn of<const NEED: u8>(caller: Caller<NEED>, state: Arc<AppState>) -> Credential {
        let start = tokio::time::Instant::now() + CREDENTIAL_RECHECK;
        let mut every = tokio::time::interval_at(start, CREDENTIAL_RECHECK);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Credential {
            state,
            headers: caller.credential,
            identity: caller.identity,
            every,
        }
    }

    async fn still_valid(&self) -> bool {
        still_valid(&self.state, &self.headers, &self.identity, READ).await
    }
}

/// Which notices a subscriber wants.
struct Filter {
    min_level: Option<Level>,
    rule: Option<String>,
    agent: Option<String>,
}

impl Filter {
    fn wants(&self, alert: &dozor_store::Alert) -> bool {
        self.min_level.is_none_or(|l| alert.level >= l)
            && self.rule.as_ref().is_none_or(|r| *r == alert.rule_id)
            && self
                .agent
                .as_ref()
                .is_none_or(|a| alert.agent_id.as_ref() == Some(a))
    }
}

/// The event for a notice, `None` for one a subscriber does not want.
type Select<T> = Box<dyn Fn(&T) -> Option<Event> + Send>;

/// One subscriber's stream: the notices it wants, as SSE events, until the server closes.
struct Subscription<T> {
    notices: broadcast::Receiver<T>,
    closing: watch::Receiver<bool>,
    credential: Credential,
    select: Select<T>,
    greeted: bool,
}

fn notice_event(notice: &AlertNotice) -> Option<Event> {
    match Event::default().event("alert").json_data(notice) {
        Ok(event) => Some(event),
        Err(e) => {
            tracing::error!("alert notice not serializable: {e}");
            None
        }
    }
}

impl<T: Clone + Send + 'static> Subscription<T> {
    async fn next(&mut self) -> Option<Event> {
        if !self.greeted {
            self.greeted = true;
            return Some(Event::default().comment("connected"));
        }
        loop {
            if *self.closing.borrow() {
                return None;
            }
            tokio::select! {
                changed = self.closing.changed() => {
                    // Shutting down, or the server is gone.
                    if changed.is_err() || *self.closing.borrow() {
                        return None;
                    }
                }
                _ = self.credential.every.tick() => {
                    if !self.credential.still_valid().await {
                        tracing::info!(
                            subject = self.credential.identity.subject,
                            "a stream's credential is no longer valid: ending it"
                        );
                        return None;
                    }
                }
                received = self.notices.recv() => match received {
                    Ok(notice) => {
                        if let Some(event) = (self.select)(&notice) {
                            return Some(event);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(skipped)) => {
                        return Some(
                            Event::default()
                                .event("lagged")
                                .data(format!("{{\"skipped\":{skipped}}}")),
                        );
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    }
}

/// The query parameters of `GET /api/v1/alerts/stream`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
// Describes the query only (`Params` reads it): the fields are never read.
#[allow(dead_code)]
struct AlertStreamParameters {
    /// Only alerts of this level and above
    #[param(nullable = false, inline)]
    min_level: Option<LevelName>,
    /// Only this rule
    #[param(nullable = false)]
    rule: Option<String>,
    /// Only this agent
    #[param(nullable = false)]
    agent: Option<String>,
}

/// The names in [`AlertStreamParameters`]: any other is refused.
const ALERT_STREAM_PARAMETERS: &[&str] = &["min_level", "rule", "agent"];

#[utoipa::path(get, path = super::ALERTS_STREAM, tag = "alerts", operation_id = "alert_stream",
    summary = "Live alerts (Server-Sent Events)",
    description = "Server-Sent Events: `event: alert` with an AlertNotice (JSON) as data each time the pipeline \
opens or updates an alert; `event: lagged` with `{\"skipped\": n}` when this client fell behind (re-read the \
alert list); a `: connected` comment first and keep-alive comments every 15 s. The stream ends when the server \
shuts down, and within seconds of its credential ending (the token revoked or expired, the user disabled, the \
session ended by logout or a password change): the credential is checked again every 2 s.",
    params(AlertStreamParameters),
    responses(
        (status = 200, description = "The event stream; each `alert` event's data is an AlertNotice", body = String, content_type = "text/event-stream"),
        BadParameter,
        Unauthorized,
        Forbidden<READ>,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn alerts(
    caller: Caller<READ>,
    params: Params,
    State(state): State<Arc<AppState>>,
) -> Result<Response, Problem> {
    params.only(ALERT_STREAM_PARAMETERS)?;
    let min_level = params
        .get("min_level")?
        .map(|l| {
            l.parse::<Level>().map_err(|_| {
                bad_param(
                    "min_level",
                    format!(
                        "min_level: unknown {l:?} (informational, low, medium, high, critical)"
                    ),
                )
            })
        })
        .transpose()?;
    let filter = Filter {
        min_level,
        rule: params.string("rule")?,
        agent: params.string("agent")?,
    };
    Ok(sse(Subscription {
        // Subscribed before the answer goes out: nothing sent after the client has the
        // response headers is missed.
        notices: caller.api.notices.subscribe(),
        closing: state.closing.clone(),
        credential: Credential::of(caller, state.clone()),
        select: Box::new(move |notice: &AlertNotice| {
            filter
                .wants(&notice.alert)
                .then(|| notice_event(notice))
                .flatten()
        }),
        greeted: false,
    }))
}

/// `GET /api/v1/agents/stream`: `event: agent`, data `{id, hostname, status, last_seen}` at
/// every heartbeat and when an agent goes offline; `lagged` as for alerts.
#[utoipa::path(get, path = super::AGENTS_STREAM, tag = "agents", operation_id = "agent_stream",
    summary = "Live agent status (Server-Sent Events)",
    description = "Server-Sent Events: `event: agent` with an AgentNotice (JSON) at every heartbeat and when an \
agent goes offline; `event: lagged` with `{\"skipped\": n}` when this subscriber fell behind; keep-alive comments \
every 15 s. Browsers signed in to the dashboard use their session cookie. Like the alert stream, it ends within \
seconds of its credential ending.",
    responses(
        (status = 200, description = "The stream", content_type = "text/event-stream", body = AgentNotice),
        TakesNoParameters,
        Unauthorized,
        Forbidden<READ>,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn agents(
    caller: Caller<READ>,
    params: Params,
    State(state): State<Arc<AppState>>,
) -> Result<Response, Problem> {
    params.only(&[])?;
    Ok(sse(Subscription {
        notices: caller.api.agent_notices.subscribe(),
        closing: state.closing.clone(),
        credential: Credential::of(caller, state.clone()),
        select: Box::new(|notice: &AgentNotice| {
            Event::default().event("agent").json_data(notice).ok()
        }),
        greeted: false,
    }))
}

fn sse<T: Clone + Send + 'static>(subscription: Subscription<T>) -> Response {
    let events = futures_util::stream::unfold(subscription, |mut s| async move {
        let event = s.next().await?;
        Some((Ok::<_, Infallible>(event), s))
    });
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response();
    // Proxies (nginx) must not buffer the stream.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_parameters_are_the_accepted_ones() {
        let names = crate::openapi::query_parameter_names::<AlertStreamParameters>();
        assert_eq!(names, ALERT_STREAM_PARAMETERS);
    }
}
