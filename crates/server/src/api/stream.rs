//! `GET /api/v1/alerts/stream`: Server-Sent Events of the alerts the pipeline opens or updates.
//!
//! - `event: alert`, `data:` an [`StreamNotice`] (JSON) for each alert change;
//! - `event: lagged`, `data: {"skipped": n}` when this subscriber fell behind and missed `n`
//!   notices (re-read `GET /api/v1/alerts` to catch up);
//! - a comment first (`: connected`) and then keep-alive comments every 15 s;
//! - the stream ends when the server shuts down.

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

use super::access::{Caller, Params, READ, bad_param};
use super::types::StreamNotice;
use crate::problem::Problem;
use crate::state::AppState;

/// Interval of the keep-alive comments.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);

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
    select: Select<T>,
    greeted: bool,
}

fn notice_event(notice: &AlertNotice) -> Option<Event> {
    let data = StreamNotice {
        change: notice.change.to_owned(),
        alert: notice.alert.clone().into(),
    };
    match Event::default().event("alert").json_data(&data) {
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

pub(crate) async fn alerts(
    caller: Caller<READ>,
    params: Params,
    State(state): State<Arc<AppState>>,
) -> Result<Response, Problem> {
    params.only(&["min_level", "rule", "agent"])?;
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
pub(crate) async fn agents(
    caller: Caller<READ>,
    params: Params,
    State(state): State<Arc<AppState>>,
) -> Result<Response, Problem> {
    params.only(&[])?;
    Ok(sse(Subscription {
        notices: caller.api.agent_notices.subscribe(),
        closing: state.closing.clone(),
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
