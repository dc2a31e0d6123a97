//! The software inventory report (issue 15): what is installed on this host, read with
//! `dozor-inventory`, sent to `POST /api/v1/agents/inventory` at start and whenever its
//! fingerprint differs from the one the server last acknowledged.
//!
//! The decisions (when to read, when to send, when to retry) live in [`ReportPlanner`], which
//! knows nothing of HTTP or threads so it can be tested with plain instants; the `inventory`
//! thread in `runner.rs` carries them out.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use dozor_inventory::{Inventory, ParseProblem};
use serde::{Deserialize, Serialize};

use crate::identity::problem_text;

/// The route the report is posted to.
pub const INVENTORY_PATH: &str = "/api/v1/agents/inventory";
/// The shortest `inventory.interval_secs`: reading the package database is cheap but not free,
/// and the server gains nothing from more frequent looks.
pub const MIN_INTERVAL_SECS: u64 = 60;
/// Retries after failed sends back off up to this, so a long outage costs one request every
/// ten minutes at most (and never more than one per collection interval).
const MAX_RETRY_DELAY: Duration = Duration::from_secs(600);
/// How many parse problems are spelled out in the log (the count is always given).
const PROBLEMS_LOGGED: usize = 3;
/// Most bytes of the server's answer read.
const ANSWER_LIMIT: u64 = 1 << 20;

/// `[inventory]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InventoryConfig {
    /// Read the installed packages and report them to the server.
    pub enabled: bool,
    /// How often the package database is read again (seconds, at least 60). A report is sent
    /// only when the list changed since the server last acknowledged one.
    pub interval_secs: u64,
}

impl Default for InventoryConfig {
    fn default() -> Self {
        InventoryConfig {
            enabled: true,
            interval_secs: 3600,
        }
    }
}

impl InventoryConfig {
    pub fn validate(&self) -> Result<()> {
        if self.enabled && self.interval_secs < MIN_INTERVAL_SECS {
            bail!("inventory.interval_secs must be at least {MIN_INTERVAL_SECS}");
        }
        Ok(())
    }

    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_secs)
    }
}

/// The body of `POST /api/v1/agents/inventory`.
#[derive(Debug, Serialize)]
pub struct InventoryReport<'a> {
    /// `Inventory::fingerprint()`: SHA-256 (hex) of the sorted package list.
    pub fingerprint: &'a str,
    pub inventory: &'a Inventory,
    /// How many package entries could not be parsed (and were left out).
    pub problems: usize,
}

/// The server's answer to a report (200).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct InventoryAnswer {
    /// Whether the server stored this inventory (false: it already had it).
    #[serde(default)]
    pub stored: bool,
    /// Vulnerability findings the server matched against it.
    #[serde(default)]
    pub findings: u64,
}

/// How one send ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// 2xx: the server has this inventory. The answer when it could be read.
    Acknowledged(Option<InventoryAnswer>),
    /// 404: an older server without the route.
    Unsupported,
    /// 401/403: the server refuses this agent's certificate.
    Refused(String),
    /// Network error, 408, 429 or 5xx: worth trying again soon.
    Failed(String),
    /// Another answer (400, 413, 422 …): the server will not take this body, so sending it
    /// again unchanged would not help.
    Rejected(String),
}

/// Reads the server's answer to a report.
pub fn classify_answer(status: u16, body: &str) -> SendOutcome {
    match status {
        200..=299 => SendOutcome::Acknowledged(serde_json::from_str(body).ok()),
        404 => SendOutcome::Unsupported,
        401 | 403 => SendOutcome::Refused(problem_text(status, body)),
        408 | 429 | 500..=599 => SendOutcome::Failed(problem_text(status, body)),
        _ => SendOutcome::Rejected(problem_text(status, body)),
    }
}

/// Posts a serialized [`InventoryReport`] to `server`.
pub fn post_report(client: &ureq::Agent, server: &str, body: &[u8]) -> SendOutcome {
    let url = format!("{server}{INVENTORY_PATH}");
    let mut response = match client
        .post(&url)
        .header("Content-Type", "application/json")
        .send(body)
    {
        Ok(r) => r,
        Err(e) => return SendOutcome::Failed(format!("sending to {url}: {e}")),
    };
    let status = response.status().as_u16();
    // A lost answer body after a 2xx still means the server took the report.
    let text = response
        .body_mut()
        .with_config()
        .limit(ANSWER_LIMIT)
        .read_to_string()
        .unwrap_or_default();
    classify_answer(status, &text)
}

/// Logs what was skipped while reading the package database: the count and the first few.
pub fn log_parse_problems(problems: &[ParseProblem]) {
    if problems.is_empty() {
        return;
    }
    let first: Vec<String> = problems
        .iter()
        .take(PROBLEMS_LOGGED)
        .map(|p| format!("line {}: {}", p.line, p.reason))
        .collect();
    tracing::warn!(
        count = problems.len(),
        first = first.join("; "),
        "package entries skipped while reading the inventory; the rest is reported"
    );
}

/// What the reporter does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Read the package database.
    Collect,
    /// Send the pending report.
    Send,
    /// Nothing is due for this long.
    Wait(Duration),
}

/// What a send's outcome means for the log (the planner has already rescheduled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterSend {
    /// Acknowledged, after this many failed attempts.
    Delivered { failures_before: u32 },
    /// Failed or refused; tried again after `retry_in`. `first` is the first failure of a
    /// streak — the one worth a warning.
    Retry { first: bool, retry_in: Duration },
    /// The server has no inventory route; not tried again before the next collection.
    /// `first`: the first time this run (logged once).
    Unsupported { first: bool },
    /// The server refused this body for good; not sent again before the next collection.
    Rejected,
}

/// When to read the inventory and when to send it.
///
/// The rules: read at start and every `interval`; send when the fingerprint differs from the
/// last acknowledged one (nothing acknowledged yet counts as different); a failed send is
/// tried again after a backoff that starts at `retry_base` (the heartbeat interval) and doubles
/// up to ten minutes, never later than the next collection; a 404 or a refused body waits for
/// the next collection.
#[derive(Debug)]
pub struct ReportPlanner {
    interval: Duration,
    retry_base: Duration,
    /// The fingerprint the server last acknowledged.
    acknowledged: Option<String>,
    /// The fingerprint collected and not yet acknowledged, when one must be sent.
    pending: Option<String>,
    next_collection: Instant,
    next_send: Instant,
    /// Failed attempts in a row (network, 5xx, 401/403).
    failures: u32,
    told_unsupported: bool,
}

impl ReportPlanner {
    /// A planner whose first step, at `now`, is a collection.
    pub fn new(interval: Duration, retry_base: Duration, now: Instant) -> Self {
        ReportPlanner {
            interval,
            retry_base: retry_base.max(Duration::from_secs(1)),
            acknowledged: None,
            pending: None,
            next_collection: now,
            next_send: now,
            failures: 0,
            told_unsupported: false,
        }
    }

    pub fn next_step(&self, now: Instant) -> Step {
        if now >= self.next_collection {
            return Step::Collect;
        }
        if self.pending.is_none() {
            return Step::Wait(self.next_collection - now);
        }
        if now >= self.next_send {
            return Step::Send;
        }
        Step::Wait(self.next_send.min(self.next_collection) - now)
    }

    /// A fresh inventory with this fingerprint was read at `now`: true when it must be sent.
    pub fn collected(&mut self, fingerprint: &str, now: Instant) -> bool {
        self.next_collection = now + self.interval;
        if self.acknowledged.as_deref() == Some(fingerprint) {
            self.pending = None;
            return false;
        }
        self.pending = Some(fingerprint.to_owned());
        // A backoff in progress goes on; otherwise send right away.
        self.next_send = self.next_send.max(now);
        true
    }

    /// Reading (or serializing) the inventory failed at `now`: nothing to send, and read
    /// again at the next collection.
    pub fn collection_failed(&mut self, now: Instant) {
        self.next_collection = now + self.interval;
        self.pending = None;
    }

    /// The pending report was sent at `now` and ended with `outcome`. `jitter` spreads a
    /// retry delay (agents restarted together should not retry together); tests pass the
    /// identity.
    pub fn sent(
        &mut self,
        outcome: &SendOutcome,
        now: Instant,
        jitter: impl FnOnce(Duration) -> Duration,
    ) -> AfterSend {
        match outcome {
            SendOutcome::Acknowledged(_) => {
                let failures_before = std::mem::take(&mut self.failures);
                self.acknowledged = self.pending.take();
                self.told_unsupported = false;
                self.next_send = now;
                AfterSend::Delivered { failures_before }
            }
            SendOutcome::Failed(_) | SendOutcome::Refused(_) => {
                self.failures = self.failures.saturating_add(1);
                let retry_in = jitter(self.retry_delay());
                self.next_send = now + retry_in;
                AfterSend::Retry {
                    first: self.failures == 1,
                    retry_in,
                }
            }
            SendOutcome::Unsupported => {
                self.pending = None;
                self.failures = 0;
                self.next_send = now;
                AfterSend::Unsupported {
                    first: !std::mem::replace(&mut self.told_unsupported, true),
                }
            }
            SendOutcome::Rejected(_) => {
                self.pending = None;
                self.failures = 0;
                self.next_send = now;
                AfterSend::Rejected
            }
        }
    }

    /// The delay before the next attempt after `self.failures` failures (without jitter):
    /// `retry_base`, doubling, at most ten minutes and at most one collection interval.
    fn retry_delay(&self) -> Duration {
        let doublings = self.failures.saturating_sub(1).min(16);
        self.retry_base
            .saturating_mul(1u32 << doublings)
            .min(MAX_RETRY_DELAY)
            .min(self.interval)
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);
    const BEAT: Duration = Duration::from_secs(30);

    fn no_jitter(d: Duration) -> Duration {
        d
    }

    fn planner(now: Instant) -> ReportPlanner {
        ReportPlanner::new(HOUR, BEAT, now)
    }

    #[test]
    fn first_collection_is_sent_because_nothing_was_acknowledged() {
        let t0 = Instant::now();
        let mut p = planner(t0);
        assert_eq!(p.next_step(t0), Step::Collect);
        assert!(p.collected("aa", t0));
        assert_eq!(p.next_step(t0), Step::Send);
    }

    #[test]
    fn an_acknowledged_fingerprint_is_not_sent_again_until_it_changes() {
        let t0 = Instant::now();
        let mut p = planner(t0);
        p.collected("aa", t0);
        let after = p.sent(&SendOutcome::Acknowledged(None), t0, no_jitter);
        assert_eq!(after, AfterSend::Delivered { failures_before: 0 });
        assert_eq!(p.next_step(t0), Step::Wait(HOUR));

        let t1 = t0 + HOUR;
        assert_eq!(p.next_step(t1), Step::Collect);
        assert!(!p.collected("aa", t1), "unchanged: not sent");
        assert_eq!(p.next_step(t1), Step::Wait(HOUR));

        let t2 = t1 + HOUR;
        assert!(p.collected("bb", t2), "changed: sent");
        assert_eq!(p.next_step(t2), Step::Send);
        p.sent(&SendOutcome::Acknowledged(None), t2, no_jitter);
        // Back to the first list (a package removed again): differs from the last acknowledged.
        let t3 = t2 + HOUR;
        assert!(p.collected("aa", t3));
    }

    #[test]
    fn a_failed_send_is_retried_with_backoff_well_before_the_next_collection() {
        let t0 = Instant::now();
        let mut p = planner(t0);
        p.collected("aa", t0);
        let mut now = t0;
        let mut delays = Vec::new();
        for attempt in 1..=8u32 {
            assert_eq!(p.next_step(now), Step::Send, "attempt {attempt}");
            let outcome = if attempt % 2 == 0 {
                SendOutcome::Refused("HTTP 403".into())
            } else {
                SendOutcome::Failed("HTTP 503".into())
            };
            match p.sent(&outcome, now, no_jitter) {
                AfterSend::Retry { first, retry_in } => {
                    assert_eq!(first, attempt == 1, "warned once per streak");
                    assert_eq!(p.next_step(now), Step::Wait(retry_in));
                    delays.push(retry_in.as_secs());
                    now += retry_in;
                }
                other => panic!("attempt {attempt}: {other:?}"),
            }
        }
        assert_eq!(delays, [30, 60, 120, 240, 480, 600, 600, 600]);
        assert_eq!(p.failures(), 8);
        let after = p.sent(&SendOutcome::Acknowledged(None), now, no_jitter);
        assert_eq!(after, AfterSend::Delivered { failures_before: 8 });
        assert_eq!(p.failures(), 0);
        // The next failure starts a new streak (warned again, short delay again).
        let later = now + HOUR;
        assert!(p.collected("bb", later));
        assert_eq!(
            p.sent(&SendOutcome::Failed("down".into()), later, no_jitter),
            AfterSend::Retry {
                first: true,
                retry_in: BEAT
            }
        );
    }

    #[test]
    fn retries_never_wait_past_the_collection_interval() {
        let t0 = Instant::now();
        let interval = Duration::from_secs(90);
        let mut p = ReportPlanner::new(interval, BEAT, t0);
        p.collected("aa", t0);
        let mut now = t0;
        for _ in 0..5 {
            let AfterSend::Retry { retry_in, .. } =
                p.sent(&SendOutcome::Failed("x".into()), now, no_jitter)
            else {
                panic!("retry expected");
            };
            assert!(retry_in <= interval);
            now += retry_in;
        }
    }

    #[test]
    fn a_collection_during_a_failure_streak_keeps_the_backoff() {
        let t0 = Instant::now();
        let mut p = ReportPlanner::new(Duration::from_secs(60), BEAT, t0);
        p.collected("aa", t0);
        for _ in 0..2 {
            p.sent(&SendOutcome::Failed("x".into()), t0, no_jitter);
        }
        // Retry due at t0 + 60 s, the same moment as the next collection.
        let t1 = t0 + Duration::from_secs(60);
        assert_eq!(p.next_step(t1), Step::Collect);
        assert!(
            p.collected("bb", t1),
            "the newer list replaces the pending one"
        );
        assert_eq!(p.next_step(t1), Step::Send);
    }

    #[test]
    fn missing_route_stops_until_the_next_collection_and_is_told_once() {
        let t0 = Instant::now();
        let mut p = planner(t0);
        p.collected("aa", t0);
        assert_eq!(
            p.sent(&SendOutcome::Unsupported, t0, no_jitter),
            AfterSend::Unsupported { first: true }
        );
        assert_eq!(p.next_step(t0), Step::Wait(HOUR), "no retry before then");
        let t1 = t0 + HOUR;
        assert!(p.collected("aa", t1), "still not acknowledged: sent again");
        assert_eq!(
            p.sent(&SendOutcome::Unsupported, t1, no_jitter),
            AfterSend::Unsupported { first: false }
        );
        // An upgraded server takes it; a later downgrade is told again.
        let t2 = t1 + HOUR;
        p.collected("aa", t2);
        p.sent(&SendOutcome::Acknowledged(None), t2, no_jitter);
        let t3 = t2 + HOUR;
        p.collected("bb", t3);
        assert_eq!(
            p.sent(&SendOutcome::Unsupported, t3, no_jitter),
            AfterSend::Unsupported { first: true }
        );
    }

    #[test]
    fn a_rejected_body_is_not_resent_before_the_next_collection() {
        let t0 = Instant::now();
        let mut p = planner(t0);
        p.collected("aa", t0);
        assert_eq!(
            p.sent(&SendOutcome::Rejected("HTTP 413".into()), t0, no_jitter),
            AfterSend::Rejected
        );
        assert_eq!(p.next_step(t0), Step::Wait(HOUR));
        assert!(
            p.collected("aa", t0 + HOUR),
            "never acknowledged: tried again"
        );
    }

    #[test]
    fn a_failed_read_waits_for_the_next_interval() {
        let t0 = Instant::now();
        let mut p = planner(t0);
        p.collection_failed(t0);
        assert_eq!(p.next_step(t0), Step::Wait(HOUR));
        // Also when a report was waiting: it is dropped, not retried in a loop.
        let t1 = t0 + HOUR;
        p.collected("aa", t1);
        p.collection_failed(t1);
        assert_eq!(p.next_step(t1), Step::Wait(HOUR));
    }

    #[test]
    fn answers_are_classified() {
        assert_eq!(
            classify_answer(200, r#"{"stored": true, "findings": 7}"#),
            SendOutcome::Acknowledged(Some(InventoryAnswer {
                stored: true,
                findings: 7
            }))
        );
        assert_eq!(
            classify_answer(202, "not json"),
            SendOutcome::Acknowledged(None),
            "any 2xx acknowledges"
        );
        assert_eq!(classify_answer(404, ""), SendOutcome::Unsupported);
        assert!(matches!(classify_answer(401, ""), SendOutcome::Refused(_)));
        assert!(matches!(classify_answer(403, ""), SendOutcome::Refused(_)));
        for status in [408, 429, 500, 502, 503] {
            assert!(
                matches!(classify_answer(status, ""), SendOutcome::Failed(_)),
                "{status}"
            );
        }
        for status in [400, 413, 422] {
            assert!(
                matches!(classify_answer(status, ""), SendOutcome::Rejected(_)),
                "{status}"
            );
        }
    }

    #[test]
    fn report_body_has_the_agreed_shape() {
        let inventory = Inventory::new(
            None,
            vec![dozor_inventory::Package::new(
                "bash",
                "5.2.15-2+b8",
                dozor_inventory::PackageEcosystem::Dpkg,
            )],
        );
        let fingerprint = inventory.fingerprint();
        let body = serde_json::to_value(InventoryReport {
            fingerprint: &fingerprint,
            inventory: &inventory,
            problems: 2,
        })
        .unwrap();
        assert_eq!(body["fingerprint"], fingerprint.as_str());
        assert_eq!(body["problems"], 2);
        assert_eq!(
            body["inventory"],
            serde_json::to_value(&inventory).unwrap(),
            "the inventory as dozor-inventory serializes it"
        );
        assert_eq!(body.as_object().unwrap().len(), 3);
    }

    #[test]
    fn interval_below_a_minute_is_refused_when_enabled() {
        let mut c = InventoryConfig::default();
        c.validate().unwrap();
        c.interval_secs = 59;
        let e = c.validate().unwrap_err();
        assert!(e.to_string().contains("inventory.interval_secs"), "{e}");
        c.enabled = false;
        c.validate().unwrap();
    }
}
