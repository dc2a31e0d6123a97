//! The isolation life cycle, the same on every platform: apply → self-check (roll back by
//! itself when the server is unreachable) → persist; release; resume after a restart or a
//! reboot; timed auto-release.
//!
//! The state file (`isolation.json` in the agent's state directory, mode 0600, written to a
//! temporary name, synced and renamed) is written *before* the firewall changes with phase
//! `applying` and becomes `isolated` once the server answered. A crash in between leaves
//! `applying`, which [`Isolator::resume`] rolls back: the agent never keeps an isolation whose
//! self-check it did not see succeed.

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::policy::IsolationPolicy;
use crate::{FirewallBackend, RespondError};

/// The state file's name inside the state directory.
pub const STATE_FILE: &str = "isolation.json";

/// Longest single wait of [`Isolator::release_when_due`] before it re-reads the state (a newer
/// isolation may have changed the deadline or been released).
const RELEASE_RECHECK: Duration = Duration::from_secs(60);

/// Answers "can the agent still reach its server?" after the isolation was applied.
pub trait ReachabilityProbe: Send + Sync {
    fn reachable(&self) -> impl Future<Output = bool> + Send;
}

/// The default probe: a TCP connection to any of the server's addresses succeeds. The targets
/// are tried at the same time, so an unreachable IPv6 address does not delay a working IPv4 one.
#[derive(Debug, Clone)]
pub struct TcpProbe {
    targets: Vec<SocketAddr>,
}

impl TcpProbe {
    pub fn new(targets: Vec<SocketAddr>) -> Self {
        Self { targets }
    }

    /// Every server address of `policy` at `port` (the agent's server port).
    pub fn for_policy(policy: &IsolationPolicy, port: u16) -> Self {
        Self::new(
            policy
                .server()
                .iter()
                .map(|ip| SocketAddr::new(*ip, port))
                .collect(),
        )
    }
}

impl ReachabilityProbe for TcpProbe {
    async fn reachable(&self) -> bool {
        let mut attempts = tokio::task::JoinSet::new();
        for target in self.targets.clone() {
            attempts.spawn(async move { tokio::net::TcpStream::connect(target).await.is_ok() });
        }
        while let Some(done) = attempts.join_next().await {
            if matches!(done, Ok(true)) {
                return true;
            }
        }
        false
    }
}

/// How long the self-check tries before rolling back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelfCheck {
    /// The whole check: the server must answer within this time (default 10 s).
    pub timeout: Duration,
    /// One probe at most (default 3 s).
    pub attempt_timeout: Duration,
    /// Pause between failed probes (default 250 ms).
    pub retry_interval: Duration,
}

impl Default for SelfCheck {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(3),
            retry_interval: Duration::from_millis(250),
        }
    }
}

/// An isolation request as the agent receives it in a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsolateCommand {
    /// The command's id, kept in the state and the heartbeat report.
    pub command_id: String,
    pub policy: IsolationPolicy,
    /// Release by itself after this time (`None`: until released).
    pub release_after: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IsolationPhase {
    /// The firewall is being changed and the self-check has not succeeded yet.
    Applying,
    /// Applied and verified.
    Isolated,
}

/// The persisted isolation, and the report a heartbeat carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsolationState {
    pub phase: IsolationPhase,
    /// The isolating command's id.
    pub command_id: String,
    /// When the isolation was applied (milliseconds since the Unix epoch).
    pub since_unix_ms: u64,
    /// When it releases itself, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_release_at_unix_ms: Option<u64>,
    /// The server addresses and allowances in force.
    pub policy: IsolationPolicy,
}

impl IsolationState {
    pub fn is_expired(&self, now_unix_ms: u64) -> bool {
        self.auto_release_at_unix_ms
            .is_some_and(|at| at <= now_unix_ms)
    }
}

/// What [`Isolator::resume`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeOutcome {
    /// No isolation recorded; the firewall was not touched.
    NotIsolated,
    /// The recorded isolation was applied again and verified.
    Reapplied(IsolationState),
    /// The recorded isolation's auto-release time had passed: released.
    Expired(IsolationState),
    /// The previous run stopped before its self-check succeeded: rolled back.
    Interrupted(IsolationState),
}

/// Isolates and releases the host through a [`FirewallBackend`], keeping the state file.
/// Operations are serialized: one at a time per `Isolator`.
#[derive(Debug)]
pub struct Isolator<B> {
    backend: B,
    state_file: PathBuf,
    check: SelfCheck,
    lock: tokio::sync::Mutex<()>,
}

impl<B: FirewallBackend> Isolator<B> {
    /// `state_dir` is the agent's state directory (it must exist).
    pub fn new(backend: B, state_dir: impl AsRef<Path>) -> Self {
        Self {
            backend,
            state_file: state_dir.as_ref().join(STATE_FILE),
            check: SelfCheck::default(),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn with_self_check(mut self, check: SelfCheck) -> Self {
        self.check = check;
        self
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    pub fn state_file(&self) -> &Path {
        &self.state_file
    }

    /// The recorded isolation (`None`: not isolated) — what the heartbeat reports.
    pub fn state(&self) -> Result<Option<IsolationState>, RespondError> {
        read_state(&self.state_file)
    }

    /// Applies the isolation, then checks the server is reachable through `probe`; when it is
    /// not within the self-check timeout, removes the isolation again and returns
    /// [`RespondError::RolledBack`]. Re-isolating an isolated host replaces its policy.
    pub async fn isolate<P: ReachabilityProbe>(
        &self,
        command: IsolateCommand,
        probe: &P,
    ) -> Result<IsolationState, RespondError> {
        self.isolate_with_check(command, probe, self.check).await
    }

    /// [`Isolator::isolate`] with this self-check instead of the isolator's (a command's own
    /// `check_timeout_secs`).
    pub async fn isolate_with_check<P: ReachabilityProbe>(
        &self,
        command: IsolateCommand,
        probe: &P,
        check: SelfCheck,
    ) -> Result<IsolationState, RespondError> {
        let _one_at_a_time = self.lock.lock().await;
        command.policy.validate()?;
        let now = now_unix_ms();
        let mut state = IsolationState {
            phase: IsolationPhase::Applying,
            command_id: command.command_id,
            since_unix_ms: now,
            auto_release_at_unix_ms: command
                .release_after
                .map(|d| now.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))),
            policy: command.policy,
        };
        let previous = read_state(&self.state_file).ok().flatten();
        write_state(&self.state_file, &state)?;
        if let Err(e) = self.backend.apply(&state.policy).await {
            // The transaction failed as a whole: the firewall is as it was, so is the record.
            match &previous {
                Some(p) => write_state(&self.state_file, p)?,
                None => remove_state(&self.state_file)?,
            }
            return Err(e);
        }
        let started = Instant::now();
        let verified = server_answers(probe, check).await;
        if verified {
            state.phase = IsolationPhase::Isolated;
            match write_state(&self.state_file, &state) {
                Ok(()) => {
                    tracing::info!(command_id = %state.command_id, "host isolated; server reachable");
                    return Ok(state);
                }
                Err(e) => {
                    // Not recorded means not kept: it would not survive a restart correctly.
                    tracing::error!(error = %e, "cannot record the isolation; rolling back");
                }
            }
        }
        Err(self.roll_back(started.elapsed()).await)
    }

    /// Removes an isolation whose self-check failed, and its record; the error to return.
    async fn roll_back(&self, waited: Duration) -> RespondError {
        tracing::warn!(?waited, "server unreachable after isolating; rolling back");
        match self.backend.remove().await {
            Ok(()) => match remove_state(&self.state_file) {
                Ok(()) => RespondError::RolledBack { waited },
                Err(e) => e,
            },
            Err(e) => RespondError::RollbackFailed {
                waited,
                rollback: e.to_string(),
            },
        }
    }

    /// Removes the isolation (whether or not one is recorded) and its record; returns the
    /// record it had.
    pub async fn release(&self) -> Result<Option<IsolationState>, RespondError> {
        let _one_at_a_time = self.lock.lock().await;
        self.release_locked().await
    }

    async fn release_locked(&self) -> Result<Option<IsolationState>, RespondError> {
        // A corrupt record must not block a release.
        let previous = read_state(&self.state_file).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "unreadable isolation state; releasing anyway");
            None
        });
        self.backend.remove().await?;
        remove_state(&self.state_file)?;
        if let Some(p) = &previous {
            tracing::info!(command_id = %p.command_id, "host released");
        }
        Ok(previous)
    }

    /// At agent start: re-applies a recorded isolation (a reboot cleared the firewall; a
    /// restart leaves it, and re-applying is idempotent), with the same self-check and
    /// rollback; releases one whose auto-release time passed; rolls back one whose self-check
    /// never finished.
    pub async fn resume<P: ReachabilityProbe>(
        &self,
        probe: &P,
    ) -> Result<ResumeOutcome, RespondError> {
        let _one_at_a_time = self.lock.lock().await;
        let Some(state) = read_state(&self.state_file)? else {
            return Ok(ResumeOutcome::NotIsolated);
        };
        if state.phase == IsolationPhase::Applying {
            self.release_locked().await?;
            return Ok(ResumeOutcome::Interrupted(state));
        }
        if state.is_expired(now_unix_ms()) {
            self.release_locked().await?;
            return Ok(ResumeOutcome::Expired(state));
        }
        self.backend.apply(&state.policy).await?;
        let started = Instant::now();
        if server_answers(probe, self.check).await {
            return Ok(ResumeOutcome::Reapplied(state));
        }
        Err(self.roll_back(started.elapsed()).await)
    }

    /// Waits until the recorded isolation's auto-release time and releases it. Returns
    /// `Ok(None)` at once when nothing is due (not isolated, or no auto-release), and when the
    /// isolation was released or replaced by another way meanwhile. The agent spawns it after
    /// each isolation and at start.
    pub async fn release_when_due(&self) -> Result<Option<IsolationState>, RespondError> {
        loop {
            let Some(state) = read_state(&self.state_file)? else {
                return Ok(None);
            };
            let Some(at) = state.auto_release_at_unix_ms else {
                return Ok(None);
            };
            let now = now_unix_ms();
            if at > now {
                tokio::time::sleep(Duration::from_millis(at - now).min(RELEASE_RECHECK)).await;
                continue;
            }
            let _one_at_a_time = self.lock.lock().await;
            match read_state(&self.state_file)? {
                Some(current)
                    if current.command_id == state.command_id
                        && current.is_expired(now_unix_ms()) =>
                {
                    return self.release_locked().await;
                }
                // Released or replaced while we waited: look again.
                _ => continue,
            }
        }
    }
}

/// Probes until the server answers or the self-check timeout passes.
async fn server_answers<P: ReachabilityProbe>(probe: &P, check: SelfCheck) -> bool {
    let deadline = Instant::now() + check.timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return false;
        }
        let attempt = remaining.min(check.attempt_timeout);
        if tokio::time::timeout(attempt, probe.reachable())
            .await
            .unwrap_or(false)
        {
            return true;
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return false;
        }
        tokio::time::sleep(check.retry_interval.min(remaining)).await;
    }
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn state_error(path: &Path, reason: impl ToString) -> RespondError {
    RespondError::State {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

fn read_state(path: &Path) -> Result<Option<IsolationState>, RespondError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(state_error(path, e)),
    };
    let state: IsolationState = serde_json::from_slice(&bytes).map_err(|e| state_error(path, e))?;
    state.policy.validate().map_err(|e| state_error(path, e))?;
    Ok(Some(state))
}

/// Writes the state to a temporary file (0600 on Unix), syncs it and renames it over the old
/// one, so a crash leaves the old or the new state, never a torn one.
fn write_state(path: &Path, state: &IsolationState) -> Result<(), RespondError> {
    let bytes = serde_json::to_vec_pretty(state).map_err(|e| state_error(path, e))?;
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&tmp).and_then(|mut file| {
        file.write_all(&bytes)?;
        file.sync_all()
    });
    written
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| state_error(path, e))?;
    sync_parent(path);
    Ok(())
}

fn remove_state(path: &Path) -> Result<(), RespondError> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            sync_parent(path);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(state_error(path, e)),
    }
}

/// Makes a rename or removal durable (Unix: fsync the directory). Best effort.
fn sync_parent(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Allowances;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Records what the isolator asked the firewall to do.
    #[derive(Default)]
    struct Recording {
        calls: Mutex<Vec<&'static str>>,
        fail_apply: AtomicBool,
    }

    impl Recording {
        fn calls(&self) -> Vec<&'static str> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl FirewallBackend for Recording {
        async fn apply(&self, _policy: &IsolationPolicy) -> Result<(), RespondError> {
            self.calls.lock().unwrap().push("apply");
            if self.fail_apply.load(Ordering::SeqCst) {
                return Err(RespondError::Command {
                    program: "nft".into(),
                    status: "exit status: 1".into(),
                    stderr: "Error: boom".into(),
                });
            }
            Ok(())
        }
        async fn remove(&self) -> Result<(), RespondError> {
            self.calls.lock().unwrap().push("remove");
            Ok(())
        }
    }

    struct Fixed(bool);
    impl ReachabilityProbe for Fixed {
        async fn reachable(&self) -> bool {
            self.0
        }
    }

    fn quick() -> SelfCheck {
        SelfCheck {
            timeout: Duration::from_millis(300),
            attempt_timeout: Duration::from_millis(100),
            retry_interval: Duration::from_millis(20),
        }
    }

    fn command(id: &str, release_after: Option<Duration>) -> IsolateCommand {
        IsolateCommand {
            command_id: id.into(),
            policy: IsolationPolicy::new(
                vec!["192.0.2.10".parse().unwrap()],
                vec![8443],
                Allowances {
                    dhcp: true,
                    ..Allowances::default()
                },
            )
            .unwrap(),
            release_after,
        }
    }

    #[tokio::test]
    async fn a_verified_isolation_is_recorded_private_and_reportable() {
        let dir = tempfile::tempdir().unwrap();
        let iso = Isolator::new(Recording::default(), dir.path()).with_self_check(quick());
        let state = iso
            .isolate(
                command("cmd-1", Some(Duration::from_secs(3600))),
                &Fixed(true),
            )
            .await
            .unwrap();
        assert_eq!(state.phase, IsolationPhase::Isolated);
        assert_eq!(iso.state().unwrap(), Some(state.clone()));
        assert_eq!(iso.backend().calls(), ["apply"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(iso.state_file())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let report = serde_json::to_value(&state).unwrap();
        assert_eq!(report["phase"], "isolated");
        assert_eq!(report["command_id"], "cmd-1");
        assert_eq!(report["policy"]["server"][0], "192.0.2.10");
        assert_eq!(report["policy"]["allow"]["dhcp"], true);
        assert_eq!(
            report["auto_release_at_unix_ms"].as_u64().unwrap(),
            state.since_unix_ms + 3_600_000
        );

        let released = iso.release().await.unwrap();
        assert_eq!(released.map(|s| s.command_id), Some("cmd-1".into()));
        assert_eq!(iso.state().unwrap(), None);
        assert_eq!(iso.backend().calls(), ["apply", "remove"]);
    }

    #[tokio::test]
    async fn an_unreachable_server_rolls_the_isolation_back() {
        let dir = tempfile::tempdir().unwrap();
        let iso = Isolator::new(Recording::default(), dir.path()).with_self_check(quick());
        let err = iso
            .isolate(command("cmd-2", None), &Fixed(false))
            .await
            .unwrap_err();
        assert!(matches!(err, RespondError::RolledBack { .. }), "{err}");
        assert_eq!(iso.backend().calls(), ["apply", "remove"]);
        assert_eq!(iso.state().unwrap(), None);
    }

    #[tokio::test]
    async fn a_failed_apply_keeps_the_previous_record() {
        let dir = tempfile::tempdir().unwrap();
        let iso = Isolator::new(Recording::default(), dir.path()).with_self_check(quick());
        let first = iso
            .isolate(command("cmd-1", None), &Fixed(true))
            .await
            .unwrap();
        iso.backend().fail_apply.store(true, Ordering::SeqCst);
        let err = iso
            .isolate(command("cmd-2", None), &Fixed(true))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
        assert_eq!(iso.state().unwrap(), Some(first));
    }

    #[tokio::test]
    async fn resume_reapplies_expires_and_rolls_back_interrupted_isolations() {
        let dir = tempfile::tempdir().unwrap();
        let iso = Isolator::new(Recording::default(), dir.path()).with_self_check(quick());
        assert_eq!(
            iso.resume(&Fixed(true)).await.unwrap(),
            ResumeOutcome::NotIsolated
        );
        assert!(
            iso.backend().calls().is_empty(),
            "nothing recorded, nothing touched"
        );

        let state = iso
            .isolate(command("cmd-1", None), &Fixed(true))
            .await
            .unwrap();
        // A new agent process over the same state directory.
        let restarted = Isolator::new(Recording::default(), dir.path()).with_self_check(quick());
        assert_eq!(
            restarted.resume(&Fixed(true)).await.unwrap(),
            ResumeOutcome::Reapplied(state.clone())
        );
        assert_eq!(restarted.backend().calls(), ["apply"]);

        // Crashed between applying and verifying.
        let mut applying = state.clone();
        applying.phase = IsolationPhase::Applying;
        write_state(iso.state_file(), &applying).unwrap();
        let restarted = Isolator::new(Recording::default(), dir.path()).with_self_check(quick());
        assert_eq!(
            restarted.resume(&Fixed(true)).await.unwrap(),
            ResumeOutcome::Interrupted(applying)
        );
        assert_eq!(restarted.backend().calls(), ["remove"]);
        assert_eq!(restarted.state().unwrap(), None);

        // Auto-release time passed while the agent was down.
        let mut expired = state.clone();
        expired.auto_release_at_unix_ms = Some(expired.since_unix_ms);
        write_state(iso.state_file(), &expired).unwrap();
        let restarted = Isolator::new(Recording::default(), dir.path()).with_self_check(quick());
        assert_eq!(
            restarted.resume(&Fixed(true)).await.unwrap(),
            ResumeOutcome::Expired(expired)
        );
        assert_eq!(restarted.state().unwrap(), None);

        // Server gone after the reboot: rolled back, not kept.
        write_state(iso.state_file(), &state).unwrap();
        let restarted = Isolator::new(Recording::default(), dir.path()).with_self_check(quick());
        let err = restarted.resume(&Fixed(false)).await.unwrap_err();
        assert!(matches!(err, RespondError::RolledBack { .. }), "{err}");
        assert_eq!(restarted.backend().calls(), ["apply", "remove"]);
        assert_eq!(restarted.state().unwrap(), None);
    }

    #[tokio::test]
    async fn a_timed_isolation_releases_itself_and_an_untimed_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let iso = Isolator::new(Recording::default(), dir.path()).with_self_check(quick());
        iso.isolate(command("forever", None), &Fixed(true))
            .await
            .unwrap();
        assert_eq!(iso.release_when_due().await.unwrap(), None);
        assert!(iso.state().unwrap().is_some());

        iso.isolate(
            command("timed", Some(Duration::from_millis(50))),
            &Fixed(true),
        )
        .await
        .unwrap();
        let released = iso.release_when_due().await.unwrap();
        assert_eq!(released.map(|s| s.command_id), Some("timed".into()));
        assert_eq!(iso.state().unwrap(), None);
        assert_eq!(iso.backend().calls().last(), Some(&"remove"));
    }

    #[tokio::test]
    async fn a_corrupt_state_file_is_an_error_naming_it_but_does_not_block_release() {
        let dir = tempfile::tempdir().unwrap();
        let iso = Isolator::new(Recording::default(), dir.path());
        std::fs::write(iso.state_file(), b"{not json").unwrap();
        let err = iso.state().unwrap_err().to_string();
        assert!(err.contains(STATE_FILE), "{err}");
        assert_eq!(iso.release().await.unwrap(), None);
        assert!(!iso.state_file().exists());
    }

    #[tokio::test]
    async fn the_tcp_probe_connects_to_any_target() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        // A port nothing listens on: bind, note it, close.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        assert!(TcpProbe::new(vec![closed, open]).reachable().await);
        assert!(!TcpProbe::new(vec![closed]).reachable().await);
        assert!(!TcpProbe::new(vec![]).reachable().await);
    }
}
