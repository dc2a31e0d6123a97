//! Dozor storage: one async [`Store`] trait, two backends.
//!
//! * [`sqlite::SqliteStore`] — embedded default: one database file in a data directory, WAL,
//!   one writer connection plus a reader pool.
//! * [`postgres::PgStore`] — PostgreSQL for scale: `jsonb` documents, several workers may share it.
//!
//! Both are one [`Store`] implementation, written once over a small driver of what each
//! database does its own way (see the crate README). Both apply their embedded migrations on
//! open. The server holds an `Arc<dyn Store>` made by
//! [`open`]. All times are milliseconds since the Unix epoch (UTC).
//!
//! The pipeline worker commits a whole bus batch with [`Store::store_batch`]: events are inserted
//! idempotently by id and a detection is folded into the alerts only if its event was new, all in
//! one transaction — so a redelivered batch changes nothing and the bus message is acked after
//! the commit.

#![warn(missing_docs)]

mod common;
mod cursor;
mod derive;
pub mod error;
pub mod postgres;
pub mod query;
pub mod samples;
mod sql_store;
pub mod sqlite;
mod token;
pub mod types;
mod words;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

pub use error::{Result, StoreError};
pub use samples::{MAX_SAMPLE_PATH, NewSample, Sample, SampleCursor, SampleQuery, is_sha256_hex};
pub use sql_store::{MAX_PLAYBOOK_BYTES, MAX_PLAYBOOK_NAME, check_playbook_name};
pub use token::{ENROLLMENT_TOKEN_PREFIX, TOKEN_PREFIX};
pub use types::*;

/// Longest indicator kind or value, bytes ([`Store::upsert_iocs`]).
pub const MAX_IOC_VALUE: usize = 4096;
/// Largest page of indicators [`Store::list_iocs`] returns.
pub const MAX_IOC_PAGE: u32 = 10_000;

/// The storage the server talks to. Implemented by [`sqlite::SqliteStore`] and
/// [`postgres::PgStore`]; the behaviour is the same on both (one test suite runs against both).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is.
    fn backend(&self) -> Backend;

    // ------------------------------------------------------------ events

    /// Inserts events idempotently by id (`ON CONFLICT DO NOTHING`), in one transaction.
    async fn insert_events(&self, events: &[NewEvent]) -> Result<InsertReport>;

    /// One event by id.
    async fn get_event(&self, id: Uuid) -> Result<Option<StoredEvent>>;

    /// Searches events, newest first, with keyset pagination.
    async fn search_events(&self, query: &EventQuery) -> Result<EventPage>;

    /// Events per time bucket over `[from, to)` (every bucket present, empty ones with 0).
    async fn event_histogram(&self, query: &HistogramQuery) -> Result<Vec<HistogramBucket>>;

    /// Events with `from <= ts < to` (both optional).
    async fn count_events(&self, from: Option<i64>, to: Option<i64>) -> Result<u64>;

    /// The earliest and latest event time of the events matching the filters (before `to`),
    /// `None` when none match: the span an "all time" histogram must cover.
    async fn event_span(
        &self,
        agent_id: Option<&str>,
        query: Option<&str>,
        to: Option<i64>,
    ) -> Result<Option<(i64, i64)>>;

    /// A page of events oldest first (by `scan.order`, then id) after `scan.after`: how the
    /// anomaly job follows what arrives and learns a look-back window without skipping or
    /// repeating an event.
    async fn scan_events(&self, scan: &EventScan) -> Result<Vec<StoredEvent>>;

    /// Events the server stored at or after `since` (whatever their own time: uploaded old
    /// logs count when they arrive).
    async fn count_received(&self, since: i64) -> Result<u64>;

    // ------------------------------------------------------------ saved searches

    /// Saves an event search under `owner` (validated: [`saved_search_problem`]). A name the
    /// owner already uses is [`StoreError::Conflict`]; more than
    /// [`MAX_SAVED_SEARCHES_PER_OWNER`] searches of one owner is
    /// [`StoreError::InvalidArgument`].
    async fn create_saved_search(
        &self,
        search: &NewSavedSearch,
        owner: &str,
    ) -> Result<SavedSearch>;

    /// One saved search (whoever owns it).
    async fn get_saved_search(&self, id: i64) -> Result<Option<SavedSearch>>;

    /// The saved searches `visible_to` may see — its own and the shared ones — or, with
    /// `None`, every one; by name (then id).
    async fn list_saved_searches(&self, visible_to: Option<&str>) -> Result<Vec<SavedSearch>>;

    /// Changes the members the change gives (validated: [`saved_search_change_problem`]);
    /// `None`: no such search. A name its owner already uses for another search is
    /// [`StoreError::Conflict`]. Who may change it is the caller's to check.
    async fn update_saved_search(
        &self,
        id: i64,
        change: &SavedSearchChange,
    ) -> Result<Option<SavedSearch>>;

    /// Deletes a saved search; returns it as it was (`None`: no such search).
    async fn delete_saved_search(&self, id: i64) -> Result<Option<SavedSearch>>;

    /// Records that a saved search was re-run at `at` (ms); `false`: no such search.
    async fn mark_saved_search_run(&self, id: i64, at: i64) -> Result<bool>;

    // ------------------------------------------------------------ pipeline

    /// Commits one pipeline batch atomically: inserts the events idempotently, then records
    /// each detection whose event was newly inserted by this call (in event-time order) into
    /// the alerts (see [`Store::record_detection`]) and bumps its rule's state. Detections
    /// whose event was a duplicate, is not in `events`, or that repeat a (rule, event) pair
    /// are skipped — so storing the same batch again changes nothing.
    async fn store_batch(
        &self,
        events: &[NewEvent],
        detections: &[Detection],
        window: Duration,
    ) -> Result<BatchReport>;

    // ------------------------------------------------------------ alerts

    /// Folds a detection into the open alert (status new or acknowledged) of the same rule and
    /// agent whose `[first_seen - window, last_seen + window]` contains the detection's time
    /// (the latest such alert), or opens a new alert. Bumps the rule's hit count. Not
    /// idempotent by itself: the pipeline uses [`Store::store_batch`].
    async fn record_detection(
        &self,
        detection: &Detection,
        window: Duration,
    ) -> Result<DetectionOutcome>;

    /// One alert.
    async fn get_alert(&self, id: i64) -> Result<Option<Alert>>;

    /// Alerts, newest first by the query's time (event or detection), with keyset pagination.
    async fn list_alerts(&self, query: &AlertQuery) -> Result<AlertPage>;

    /// How many alerts match the filters of [`Store::list_alerts`] (statuses, level, rule,
    /// agent, assignee, time range) — the total a listing is a page of. The query's `cursor`
    /// and `limit` are ignored.
    async fn count_alerts(&self, query: &AlertQuery) -> Result<u64>;

    /// Adds an alert exception (validated: [`exception_problem`]); from then on
    /// [`Store::store_batch`] counts the rule's matches on events that hold every condition on
    /// the exception instead of alerting them.
    async fn add_exception(
        &self,
        exception: &NewException,
        created_by: &str,
    ) -> Result<AlertException>;

    /// Every alert exception (expired ones too), newest first.
    async fn list_exceptions(&self) -> Result<Vec<AlertException>>;

    /// Removes an exception; returns it as it was (`None`: no such exception).
    async fn delete_exception(&self, id: i64) -> Result<Option<AlertException>>;

    // ------------------------------------------------------------ incidents

    /// Opens an incident (validated: [`new_incident_problem`]), grouping `alert_ids` into it
    /// at once; its severity, when not given, is the highest level of those alerts. An alert
    /// already in another incident, or missing, fails the call and nothing is stored.
    async fn create_incident(&self, incident: &NewIncident, actor: &str) -> Result<Incident>;

    /// Incidents, most recently changed first.
    async fn list_incidents(&self, query: &IncidentQuery) -> Result<Vec<Incident>>;

    /// An incident with its alerts, tasks, notes, observables, history and the playbook runs
    /// of its alerts.
    async fn get_incident(&self, id: i64) -> Result<Option<IncidentDetail>>;

    /// Applies a patch (validated: [`incident_patch_problem`]); each real change is written
    /// to the history. `NotFound` when there is no such incident.
    async fn update_incident(
        &self,
        id: i64,
        patch: &IncidentPatch,
        actor: &str,
    ) -> Result<Incident>;

    /// Groups alerts into an incident; the ids added now (ones already in it are skipped).
    /// An alert in another incident (`Conflict`) or missing (`NotFound`) fails the call.
    async fn add_incident_alerts(
        &self,
        id: i64,
        alert_ids: &[i64],
        actor: &str,
    ) -> Result<Vec<i64>>;

    /// Takes an alert out of an incident; whether it was in it.
    async fn remove_incident_alert(&self, id: i64, alert_id: i64, actor: &str) -> Result<bool>;

    /// Adds a task.
    async fn add_incident_task(&self, id: i64, title: &str, actor: &str) -> Result<IncidentTask>;

    /// Ticks a task off (or reopens it).
    async fn set_incident_task(
        &self,
        id: i64,
        task_id: i64,
        done: bool,
        actor: &str,
    ) -> Result<IncidentTask>;

    /// Adds a note.
    async fn add_incident_note(&self, id: i64, body: &str, actor: &str) -> Result<IncidentNote>;

    /// Adds an observable (checked against its kind; the same kind and value twice is a
    /// `Conflict`).
    async fn add_incident_observable(
        &self,
        id: i64,
        observable: &NewObservable,
        actor: &str,
    ) -> Result<Observable>;

    /// Removes an observable; it as it was (`None`: no such observable on the incident).
    async fn remove_incident_observable(
        &self,
        id: i64,
        observable_id: i64,
        actor: &str,
    ) -> Result<Option<Observable>>;

    /// The incident an alert is grouped into.
    async fn incident_of_alert(&self, alert_id: i64) -> Result<Option<i64>>;

    /// Open alerts changed since `since` (ms), in no incident, grouped per host where a host
    /// has two or more: incidents worth opening.
    async fn suggest_incidents(&self, since: i64) -> Result<Vec<IncidentSuggestion>>;

    /// Hosts named by stored events (`host.name`), most recently active first.
    async fn list_hosts(&self, query: &HostQuery) -> Result<Vec<Host>>;

    /// One host by name (any letter case).
    async fn get_host(&self, name: &str) -> Result<Option<Host>>;

    /// Moves an alert through the workflow (see [`AlertStatus::can_change_to`]) and records
    /// the step in its history.
    async fn set_alert_status(
        &self,
        id: i64,
        to: AlertStatus,
        actor: &str,
        note: Option<&str>,
    ) -> Result<Alert>;

    /// Sets or clears the assignee.
    async fn assign_alert(&self, id: i64, assignee: Option<&str>) -> Result<Alert>;

    /// Adds a comment to an alert.
    async fn add_comment(&self, alert_id: i64, author: &str, body: &str) -> Result<Comment>;

    /// An alert's comments, oldest first.
    async fn comments(&self, alert_id: i64) -> Result<Vec<Comment>>;

    /// An alert's status changes, oldest first.
    async fn status_history(&self, alert_id: i64) -> Result<Vec<StatusChange>>;

    // ------------------------------------------------------------ rules

    /// Enables or disables a rule (creating its state row if needed).
    async fn set_rule_enabled(&self, rule_id: &str, enabled: bool) -> Result<RuleState>;

    /// A rule's state, `None` if it never fired and was never toggled.
    async fn rule_state(&self, rule_id: &str) -> Result<Option<RuleState>>;

    /// Every rule state, by rule id.
    async fn list_rule_states(&self) -> Result<Vec<RuleState>>;

    // ------------------------------------------------------------ tokens

    /// Creates an API token; the plaintext secret is returned only here. With an `owner`, the
    /// user must exist ([`StoreError::NotFound`] otherwise).
    async fn create_token(&self, token: &NewToken) -> Result<CreatedToken>;

    /// The token a presented secret belongs to, if it exists, is not revoked, not expired and
    /// its owner (if any) is not disabled. The returned role is what the bearer may do: the
    /// token's role capped by its owner's current role ([`Role::capped_by`]; so an admin's
    /// token demoted with its owner to analyst acts as analyst). Records the use (at most once
    /// a minute per token).
    async fn verify_token(&self, secret: &str) -> Result<Option<TokenInfo>>;

    /// Revokes a token; `false` if no such (unrevoked) token.
    async fn revoke_token(&self, id: i64) -> Result<bool>;

    /// Every token (never the secrets), by id, with the roles they were created with.
    async fn list_tokens(&self) -> Result<Vec<TokenInfo>>;

    /// The tokens a user owns (revoked and expired ones included), by id.
    async fn list_user_tokens(&self, user_id: i64) -> Result<Vec<TokenInfo>>;

    /// Revokes a token of this user; `false` if the user owns no such unrevoked token (another
    /// user's token is never touched).
    async fn revoke_user_token(&self, user_id: i64, token_id: i64) -> Result<bool>;

    // ------------------------------------------------------------ users

    /// How many operator accounts exist (disabled ones included) — zero means the server must
    /// bootstrap an administrator.
    async fn count_users(&self) -> Result<u64>;

    /// Creates an operator account. A name taken case-insensitively is
    /// [`StoreError::Conflict`]; an invalid name, password hash, role (agent-ingest) or
    /// language is `InvalidArgument`.
    async fn create_user(&self, user: &NewUser) -> Result<User>;

    /// One user by id.
    async fn get_user(&self, id: i64) -> Result<Option<User>>;

    /// For login only: the user with this name (trimmed, case-insensitive; disabled users
    /// included, check [`User::disabled_at`]) and its password hash (PHC string). A name that
    /// cannot exist gives `None` without a lookup.
    async fn find_user(&self, username: &str) -> Result<Option<(User, String)>>;

    /// Every user, by name case-insensitively.
    async fn list_users(&self) -> Result<Vec<User>>;

    /// Changes a user's role (admin, analyst or viewer; agent-ingest is `InvalidArgument`).
    /// Demoting the last enabled administrator is `InvalidArgument` — checked in the same
    /// transaction, so two concurrent demotions never leave no admin. `None` if no such user.
    async fn set_user_role(&self, id: i64, role: Role) -> Result<Option<User>>;

    /// Replaces a user's password hash (PHC string) and ends all its sessions, atomically.
    /// `None` if no such user.
    async fn set_user_password(&self, id: i64, password_hash: &str) -> Result<Option<User>>;

    /// Sets a user's interface language: `None`, `"en"` or `"ru"`. `None` if no such user.
    async fn set_user_language(&self, id: i64, language: Option<&str>) -> Result<Option<User>>;

    /// Disables (ending all its sessions; its tokens stop verifying) or re-enables a user.
    /// Disabling the last enabled administrator is `InvalidArgument` (checked atomically, like
    /// [`Store::set_user_role`]). Disabling a disabled user keeps its `disabled_at`. `None` if
    /// no such user.
    async fn set_user_disabled(&self, id: i64, disabled: bool) -> Result<Option<User>>;

    /// Records a successful login (`last_login_at = at`); unknown ids are ignored.
    async fn record_login(&self, id: i64, at: i64) -> Result<()>;

    // ------------------------------------------------------------ web sessions

    /// Creates a web session (`created_at` = `last_seen_at` = now) for an enabled user
    /// ([`StoreError::NotFound`] if the user does not exist, `InvalidArgument` if it is
    /// disabled or the input is invalid; a secret hash already in use is `Conflict`).
    async fn create_session(&self, session: &NewSession) -> Result<Session>;

    /// The session of a presented cookie secret hash with its user, if the session exists, is
    /// not expired (`expires_at > now`) and the user is not disabled. Updates `last_seen_at`
    /// (at most once a minute, like tokens' `last_used_at`).
    async fn find_session(&self, secret_hash: &[u8]) -> Result<Option<(Session, User)>>;

    /// Ends a session (logout); `false` if there was none.
    async fn delete_session(&self, secret_hash: &[u8]) -> Result<bool>;

    /// Ends every session of a user; how many there were.
    async fn delete_user_sessions(&self, user_id: i64) -> Result<u64>;

    /// Deletes the sessions with `expires_at <= now`; how many.
    async fn purge_expired_sessions(&self, now: i64) -> Result<u64>;

    // ------------------------------------------------------------ enrollment tokens

    /// Creates an agent enrollment token (`dze_…`); the plaintext secret is returned only
    /// here. The name is validated like API token names; `max_uses: Some(0)` is
    /// `InvalidArgument`.
    async fn create_enrollment_token(
        &self,
        token: &NewEnrollmentToken,
    ) -> Result<CreatedEnrollmentToken>;

    /// Atomically uses the token once (`uses += 1`, `last_used_at = now`) if it exists, is not
    /// revoked, not expired and has uses left; otherwise says why not. Concurrent redeems
    /// never exceed `max_uses` (one conditional `UPDATE … RETURNING`, then a `SELECT` for the
    /// reason only if nothing was updated). A secret that is not shaped like an enrollment
    /// token (an API token included) is `Unknown` without a database lookup.
    async fn redeem_enrollment_token(
        &self,
        secret: &str,
    ) -> Result<std::result::Result<EnrollmentTokenInfo, EnrollmentRefusal>>;

    /// The token as [`Store::redeem_enrollment_token`] would find it, without using it (to
    /// decide about an enrollment before spending a use on it).
    async fn check_enrollment_token(
        &self,
        secret: &str,
    ) -> Result<std::result::Result<EnrollmentTokenInfo, EnrollmentRefusal>>;

    /// Every enrollment token (never the secrets), by id.
    async fn list_enrollment_tokens(&self) -> Result<Vec<EnrollmentTokenInfo>>;

    /// Revokes an enrollment token; `false` if no such (unrevoked) token.
    async fn revoke_enrollment_token(&self, id: i64) -> Result<bool>;

    // ------------------------------------------------------------ agents

    /// Registers a newly enrolled agent (`enrolled_at` = `last_seen` = now). An existing id
    /// (revoked or not) is [`StoreError::Conflict`]; invalid facts, id or fingerprint are
    /// `InvalidArgument`.
    async fn insert_agent(&self, agent: &NewAgent) -> Result<Agent>;

    /// Re-enrollment of an existing, unrevoked agent: replaces `cert_sha256`,
    /// `cert_not_after` and the facts and sets `reenrolled_at` = now (the id, `enrolled_at`,
    /// `enrolled_by`, `last_seen` and `offline_since` stay). `None` if there is no such
    /// unrevoked agent.
    async fn reenroll_agent(
        &self,
        id: &str,
        facts: &AgentFacts,
        cert_sha256: &str,
        cert_not_after: i64,
    ) -> Result<Option<Agent>>;

    /// One agent (revoked ones included).
    async fn get_agent(&self, id: &str) -> Result<Option<Agent>>;

    /// Every agent (revoked ones included), ordered by hostname case-insensitively, then
    /// hostname, then id.
    async fn list_agents(&self) -> Result<Vec<Agent>>;

    /// Unrevoked agents with this hostname (case-insensitive, Unicode lower case), oldest
    /// enrollment first — for duplicate-hostname handling.
    async fn agents_with_hostname(&self, hostname: &str) -> Result<Vec<Agent>>;

    /// Records a heartbeat of an unrevoked agent: facts, health, document,
    /// `last_seen = max(last_seen, hb.at)`, `offline_since = NULL`. Returns the agent as it
    /// was **before** the update (so the caller sees whether it was offline), or `None` if
    /// the agent is unknown or revoked.
    async fn record_heartbeat(&self, id: &str, hb: &AgentHeartbeat) -> Result<Option<Agent>>;

    /// Events arrived from the agent: `last_seen = max(last_seen, at)` and
    /// `offline_since = NULL`. Cheap (writes nothing if neither changes); unknown or revoked
    /// agents are ignored. Meant to be called at most every few seconds per agent.
    async fn touch_agent(&self, id: &str, at: i64) -> Result<()>;

    /// Revokes an agent (`revoked_at` = now, `revoked_by` = actor); `false` if it is unknown
    /// or already revoked.
    async fn revoke_agent(&self, id: &str, actor: &str) -> Result<bool>;

    /// Atomically marks every unrevoked agent with `last_seen < silent_before` and no
    /// `offline_since` as offline (`offline_since` = now) and returns exactly those agents
    /// (after the update, in [`Store::list_agents`] order). When several server processes run
    /// this at once, each agent going offline is returned to exactly one of them.
    async fn mark_agents_offline(&self, silent_before: i64) -> Result<Vec<Agent>>;

    // ------------------------------------------------------------ agent commands

    /// Creates a `pending` command (new UUID v7 id, `created_at` = now) for an unrevoked
    /// agent — checked in the same statement, so a concurrent revocation never leaves a
    /// command behind; an unknown or revoked agent is [`StoreError::NotFound`]. Invalid
    /// input is `InvalidArgument` (see [`NewAgentCommand`]).
    async fn create_command(&self, command: &NewAgentCommand) -> Result<AgentCommand>;

    /// An agent's commands, newest first (`limit` 0 = the default page size, at most
    /// [`MAX_PAGE_LIMIT`]).
    async fn list_agent_commands(&self, agent_id: &str, limit: u32) -> Result<Vec<AgentCommand>>;

    /// One command.
    async fn get_command(&self, id: Uuid) -> Result<Option<AgentCommand>>;

    /// How many of an agent's commands wait for a result (`pending` or `delivered`).
    async fn count_open_commands(&self, agent_id: &str) -> Result<u64>;

    /// Atomically takes what an agent's heartbeat answer carries: its `pending` commands and
    /// its `delivered` ones without a result whose last delivery is at least
    /// `redeliver_after` before `now` and that were delivered fewer than `max_attempts` times
    /// (at least 1). Those are marked `delivered` (`delivered_at` = now, `attempts` + 1) and
    /// returned, oldest first. Due ones delivered `max_attempts` times already become
    /// `expired` (`finished_at` = now) instead. Two concurrent calls never hand out the same
    /// command.
    async fn take_for_delivery(
        &self,
        agent_id: &str,
        now: i64,
        redeliver_after: Duration,
        max_attempts: u32,
    ) -> Result<Vec<AgentCommand>>;

    /// Records the result an agent reports for its command: `status` (done or failed, else
    /// `InvalidArgument`), `result` (JSON of at most [`MAX_COMMAND_RESULT_BYTES`]), `error`
    /// (at most [`MAX_COMMAND_ERROR_BYTES`]), `finished_at` = now. Only the owning agent
    /// finishes a command (another's is [`CommandFinish::Unknown`]), and only once: a
    /// command that is done or failed already is left as it is
    /// ([`CommandFinish::AlreadyFinished`]). An expired command takes a late result.
    async fn finish_command(
        &self,
        id: Uuid,
        agent_id: &str,
        status: CommandStatus,
        result: Option<&serde_json::Value>,
        error: Option<&str>,
    ) -> Result<CommandFinish>;

    // ------------------------------------------------------------ audit

    /// Appends to the audit log (which cannot be changed or deleted through SQL either).
    async fn append_audit(&self, entry: &NewAuditEntry) -> Result<AuditEntry>;

    /// Reads the audit log, newest first.
    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>>;

    // ------------------------------------------------------------ samples

    /// Records an upload of a file sample: a new row (`uploads` = 1, `first_seen` =
    /// `last_seen` = `at`, first and last agent the uploader) or, for a known SHA-256,
    /// `uploads` + 1, `last_seen` = max(`last_seen`, `at`), last agent and path replaced.
    /// Returns the sample after the change and whether it was new. An invalid SHA-256, a
    /// path longer than [`MAX_SAMPLE_PATH`] or with NUL is `InvalidArgument`.
    async fn record_sample(&self, sample: &NewSample) -> Result<(Sample, bool)>;

    /// Stores the last scan verdict of a sample (`verdict_at` = `at`); `false` if there is no
    /// such sample.
    async fn set_sample_verdict(
        &self,
        sha256: &str,
        verdict: &serde_json::Value,
        at: i64,
    ) -> Result<bool>;

    /// One sample by SHA-256 (any case; `None` for a malformed one).
    async fn get_sample(&self, sha256: &str) -> Result<Option<Sample>>;

    /// Samples, newest `last_seen` first, with keyset pagination ([`SampleQuery::after`]).
    async fn list_samples(&self, query: &SampleQuery) -> Result<Vec<Sample>>;

    // ------------------------------------------------------------ playbooks (issue 13)

    /// Creates or replaces a playbook (by name). A bad name or a text over
    /// [`MAX_PLAYBOOK_BYTES`] is `InvalidArgument`.
    async fn put_playbook(&self, playbook: &StoredPlaybook) -> Result<StoredPlaybook>;

    /// One playbook by name.
    async fn get_playbook(&self, name: &str) -> Result<Option<StoredPlaybook>>;

    /// Every playbook, by name.
    async fn list_playbooks(&self) -> Result<Vec<StoredPlaybook>>;

    /// Enables or disables a playbook's triggers; `None` if there is no such playbook.
    async fn set_playbook_enabled(
        &self,
        name: &str,
        enabled: bool,
        by: &str,
    ) -> Result<Option<StoredPlaybook>>;

    /// Deletes a playbook (its runs stay); false if there was none.
    async fn delete_playbook(&self, name: &str) -> Result<bool>;

    /// Records a run that starts (`running`).
    async fn create_playbook_run(&self, run: &NewPlaybookRun) -> Result<PlaybookRun>;

    /// Records a step of a run (once per `seq`; a repeat changes nothing).
    async fn add_playbook_step(
        &self,
        run_id: &str,
        seq: u32,
        status: &str,
        record: &serde_json::Value,
    ) -> Result<()>;

    /// Ends a running run; `None` when it is not running (or unknown).
    async fn finish_playbook_run(
        &self,
        run_id: &str,
        status: PlaybookRunStatus,
        error: Option<&str>,
    ) -> Result<Option<PlaybookRun>>;

    /// Marks every running run failed with `why` (at start: their server stopped); how many.
    async fn interrupt_playbook_runs(&self, why: &str) -> Result<u64>;

    /// One run.
    async fn get_playbook_run(&self, id: &str) -> Result<Option<PlaybookRun>>;

    /// Runs, newest first.
    async fn list_playbook_runs(&self, query: &PlaybookRunQuery) -> Result<Vec<PlaybookRun>>;

    /// A run's steps in order.
    async fn playbook_steps(&self, run_id: &str) -> Result<Vec<PlaybookStep>>;

    /// Records an approval request (`pending`).
    async fn create_approval(&self, approval: &NewApproval) -> Result<Approval>;

    /// One approval (read on the writer: a waiter sees a decision at once).
    async fn get_approval(&self, id: &str) -> Result<Option<Approval>>;

    /// Approvals, newest first, optionally in one status.
    async fn list_approvals(
        &self,
        status: Option<ApprovalStatus>,
        limit: u32,
    ) -> Result<Vec<Approval>>;

    /// The approvals a run asked for, oldest first.
    async fn run_approvals(&self, run_id: &str) -> Result<Vec<Approval>>;

    /// Decides a pending approval once: the first decision wins; a request past its expiry
    /// becomes `expired` instead (reported as [`ApprovalDecisionOutcome::AlreadyDecided`]).
    async fn decide_approval(
        &self,
        id: &str,
        status: ApprovalStatus,
        by: &str,
        comment: Option<&str>,
    ) -> Result<ApprovalDecisionOutcome>;

    /// Expires the pending approvals whose time is up; the ones it expired.
    async fn expire_approvals(&self, now: i64) -> Result<Vec<Approval>>;

    /// Claims the pending approvals whose approvers were not told yet (each is returned to
    /// exactly one caller, once).
    async fn claim_approvals_to_notify(&self, now: i64) -> Result<Vec<Approval>>;

    /// Notes the command an approved direct command became.
    async fn set_approval_command(&self, id: &str, command_id: Uuid) -> Result<()>;

    // ------------------------------------------------------------ threat intel (issue 14)

    /// Merges one source's indicators into the store by `(kind, value)`, in one transaction
    /// (chunked statements, so 100,000 indicators take seconds): a new pair is added with
    /// this source; an existing one keeps every other source and gets this one's object ids
    /// (its `seen_at` = `now`), tags (union, sorted), `to_ids` (or), confidence (max),
    /// first seen (min), last seen (max), expiry (none wins, else the latest) and the given
    /// warninglists (replaced). Counted as updated only when something changed. A disabled
    /// indicator stays disabled. A kind or value that is empty or longer than
    /// [`MAX_IOC_VALUE`] bytes, or a source name that is empty or longer than 128 bytes, is
    /// `InvalidArgument` naming it, and nothing is written.
    async fn upsert_iocs(&self, source: &str, iocs: &[NewIoc], now: i64)
    -> Result<IocUpsertReport>;

    /// One indicator by id.
    async fn get_ioc(&self, id: i64) -> Result<Option<StoredIoc>>;

    /// One indicator by kind and canonical value.
    async fn find_ioc(&self, kind: &str, value: &str) -> Result<Option<StoredIoc>>;

    /// Indicators matching the query: by `after_id` ascending when given (keyset paging, the
    /// index loader and the retrieval endpoint), else newest `updated_at` first. The limit is
    /// capped at [`MAX_IOC_PAGE`].
    async fn list_iocs(&self, query: &IocQuery) -> Result<Vec<StoredIoc>>;

    /// How many indicators match the query (its `limit` and `after_id` ignored).
    async fn count_iocs(&self, query: &IocQuery) -> Result<u64>;

    /// Enables or disables one indicator (`updated_at` = `now`); `None` when unknown.
    async fn set_ioc_enabled(&self, id: i64, enabled: bool, now: i64) -> Result<Option<StoredIoc>>;

    /// Deletes one indicator (its matches stay); false when unknown.
    async fn delete_ioc(&self, id: i64) -> Result<bool>;

    /// Replaces the warninglist hits of the given indicators (after the lists changed).
    async fn set_ioc_warninglists(&self, hits: &[(i64, Vec<String>)]) -> Result<()>;

    /// How many enabled indicators given by `source` expired in `(after, until]`.
    async fn count_expired_iocs(&self, source: &str, after: i64, until: i64) -> Result<u64>;

    /// Creates or replaces a source's settings (`spec`, `enabled`, `interval_secs`,
    /// `updated_at`, `updated_by`); its cursor and last sync are kept when it exists.
    async fn put_intel_source(&self, source: &IntelSource) -> Result<IntelSource>;

    /// One source by name.
    async fn get_intel_source(&self, name: &str) -> Result<Option<IntelSource>>;

    /// Every source, by name.
    async fn list_intel_sources(&self) -> Result<Vec<IntelSource>>;

    /// Deletes a source (its indicators stay); false when unknown.
    async fn delete_intel_source(&self, name: &str) -> Result<bool>;

    /// Records a sync's outcome; the cursor moves only when `cursor` is `Some`. False when
    /// the source is unknown.
    async fn record_intel_sync(
        &self,
        name: &str,
        status: &IntelSyncStatus,
        cursor: Option<&str>,
    ) -> Result<bool>;

    /// Records matches, once per `(ioc_id, event_id, field)` (a repeat changes nothing), and
    /// counts each new one as a sighting of its indicator (`sightings + 1`, `last_sighting` =
    /// `now`). Returns, for each input, whether it was new.
    async fn record_intel_matches(&self, matches: &[NewIntelMatch], now: i64) -> Result<Vec<bool>>;

    /// Matches, newest first.
    async fn list_intel_matches(&self, query: &IntelMatchQuery) -> Result<Vec<IntelMatch>>;

    /// Matches whose sighting is `pending`, oldest first.
    async fn pending_sightings(&self, limit: u32) -> Result<Vec<IntelMatch>>;

    /// Sets the sighting status (`sent`, `failed`, `none`) of matches.
    async fn set_sighting_status(&self, ids: &[i64], status: &str) -> Result<()>;

    /// Makes the `failed` sightings of matches made at or after `since` (ms) `pending` again,
    /// so they are retried; how many.
    async fn requeue_failed_sightings(&self, since: i64) -> Result<u64>;

    // ------------------------------------------------------------ vulnerabilities (issue 15)

    /// Records a scan and its results in one transaction: each result is inserted or updated
    /// by `(host, port, nvt_oid)` (repeats within the scan merged, the worst kept); a `fixed`
    /// one found again is open again (reopened), an acceptance past its expiry is open; every
    /// `open` or `accepted` result of the same source on a covered host (`hosts` and the
    /// results' hosts) that this scan did not find, and that no later scan found, becomes
    /// `fixed`. A report id already recorded for the source returns that scan and changes
    /// nothing. A result that is not valid is `InvalidArgument` naming its index, host and OID,
    /// and nothing is written.
    async fn record_vuln_scan(
        &self,
        scan: &NewVulnScan,
        results: &[NewVulnResult],
        now: i64,
    ) -> Result<VulnScanReport>;

    /// One result.
    async fn get_vuln(&self, id: i64) -> Result<Option<StoredVuln>>;

    /// The results with these ids (unknown ones left out), by id.
    async fn get_vulns(&self, ids: &[i64]) -> Result<Vec<StoredVuln>>;

    /// Results matching the query, most severe first (then newest id).
    async fn list_vulns(&self, query: &VulnQuery) -> Result<Vec<StoredVuln>>;

    /// How many results match (its `after` and `limit` ignored).
    async fn count_vulns(&self, query: &VulnQuery) -> Result<u64>;

    /// Counts by level and status, and the `top` worst hosts and CVEs, of what the query
    /// selects (its `after` and `limit` ignored).
    async fn vuln_summary(&self, query: &VulnQuery, top: u32) -> Result<VulnSummary>;

    /// Scans, newest first.
    async fn list_vuln_scans(&self, source: Option<&str>, limit: u32) -> Result<Vec<VulnScan>>;

    /// An operator's decision (`accepted`/`false_positive` need a reason; `open` undoes them;
    /// `fixed` is refused: scans decide it). `None` when unknown.
    async fn set_vuln_status(
        &self,
        id: i64,
        request: &VulnStatusRequest,
        by: &str,
        now: i64,
    ) -> Result<Option<StoredVuln>>;

    /// Acceptances that ended by `now` become open again; their ids.
    async fn expire_vuln_acceptances(&self, now: i64) -> Result<Vec<i64>>;

    /// Stores (replaces) an agent's software inventory.
    async fn put_agent_inventory(&self, inventory: &AgentInventory) -> Result<()>;

    /// An agent's inventory.
    async fn get_agent_inventory(&self, agent_id: &str) -> Result<Option<AgentInventory>>;

    /// Every stored inventory's agent, fingerprint and report time, by agent id.
    async fn list_agent_inventories(&self) -> Result<Vec<(String, String, i64)>>;

    /// Creates or replaces a scan job's settings (its state is kept when it exists).
    async fn put_vuln_scan_job(&self, job: &VulnScanJob) -> Result<VulnScanJob>;

    /// One scan job.
    async fn get_vuln_scan_job(&self, name: &str) -> Result<Option<VulnScanJob>>;

    /// Every scan job, by name.
    async fn list_vuln_scan_jobs(&self) -> Result<Vec<VulnScanJob>>;

    /// Deletes a scan job; false when unknown.
    async fn delete_vuln_scan_job(&self, name: &str) -> Result<bool>;

    /// Replaces a scan job's state; false when unknown.
    async fn set_vuln_scan_job_state(&self, name: &str, state: &serde_json::Value) -> Result<bool>;

    // ------------------------------------------------------------ retention, stats

    /// Deletes events stored (`received_at`) before `cutoff` — so imported old logs live a full
    /// retention period — and closed alerts with `last_seen < cutoff` (with
    /// their comments and history), in short chunks so writers are never blocked for long.
    async fn purge_before(&self, cutoff: i64) -> Result<PurgeReport>;

    /// Counts for the API and metrics.
    async fn stats(&self) -> Result<StoreStats>;

    /// Closes the connections (waits for running operations).
    async fn close(&self);
}

/// Where the store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// Embedded SQLite.
    Sqlite(sqlite::SqliteConfig),
    /// PostgreSQL.
    Postgres(postgres::PgConfig),
}

impl StoreConfig {
    /// `postgres://…` / `postgresql://…` → PostgreSQL; `sqlite:DIR` or a plain path → SQLite
    /// in that data directory.
    pub fn from_location(location: &str) -> Self {
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            StoreConfig::Postgres(postgres::PgConfig::new(location))
        } else {
            let dir = location
                .strip_prefix("sqlite://")
                .or_else(|| location.strip_prefix("sqlite:"))
                .unwrap_or(location);
            StoreConfig::Sqlite(sqlite::SqliteConfig::new(PathBuf::from(dir)))
        }
    }
}

impl StoreConfig {
    /// The same store with event searches and histograms cut off after `timeout`.
    pub fn with_search_timeout(mut self, timeout: std::time::Duration) -> Self {
        match &mut self {
            StoreConfig::Sqlite(c) => c.search_timeout = timeout,
            StoreConfig::Postgres(c) => c.search_timeout = timeout,
        }
        self
    }
}

/// Opens (creating and migrating as needed) the configured store.
pub async fn open(config: &StoreConfig) -> Result<Arc<dyn Store>> {
    Ok(match config {
        StoreConfig::Sqlite(c) => Arc::new(sqlite::SqliteStore::open(c).await?),
        StoreConfig::Postgres(c) => Arc::new(postgres::PgStore::open(c).await?),
    })
}
