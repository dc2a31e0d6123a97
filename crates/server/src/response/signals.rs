//! Wake-ups inside this process: a command queued for an agent (its long poll answers at
//! once), an approval decided, a command result in. Only hints — the store is the truth, and
//! every waiter also re-reads it each second, so a change made by another process (a scaled-out
//! deployment) is seen within a second.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use tokio::sync::Notify;

/// The process's signals.
pub static SIGNALS: LazyLock<Signals> = LazyLock::new(Signals::default);

/// See the module documentation.
#[derive(Default)]
pub struct Signals {
    agents: Mutex<HashMap<String, Arc<Notify>>>,
    /// An approval was decided.
    pub decisions: Notify,
    /// A command result was recorded.
    pub results: Notify,
}

impl Signals {
    /// The signal of one agent's commands (made on first use).
    pub fn agent(&self, agent_id: &str) -> Arc<Notify> {
        let mut agents = self.agents.lock().unwrap_or_else(|p| p.into_inner());
        agents
            .entry(agent_id.to_owned())
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone()
    }

    /// Wakes the agent's long poll.
    pub fn command_queued(&self, agent_id: &str) {
        self.agent(agent_id).notify_waiters();
    }

    /// Wakes the runs waiting for an approval.
    pub fn decided(&self) {
        self.decisions.notify_waiters();
    }

    /// Wakes the steps waiting for a command's result.
    pub fn result_recorded(&self) {
        self.results.notify_waiters();
    }
}
