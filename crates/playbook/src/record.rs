//! What a run leaves behind: one record per step and one per run, handed to a
//! [`RunRecorder`] as they happen (the server stores and audits them), with secrets redacted.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Ran and succeeded.
    Ok,
    /// Failed; the block's `rescue` (if any) runs, else the play stops.
    Failed,
    /// Failed with `ignore_errors: true`: recorded, and the play goes on.
    Ignored,
    /// Its `when` was false.
    Skipped,
    /// Dry run: templated and checked, the module was not called.
    DryRun,
}

/// An approval's outcome as recorded on the step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// `approved`, `rejected` or `expired`.
    pub decision: String,
    /// Who decided (none when it expired).
    pub by: Option<String>,
    /// Their comment.
    pub comment: Option<String>,
}

/// One step: a module call (once per loop item), or a skipped task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The run it belongs to.
    pub run_id: String,
    /// Its order in the run (0-based).
    pub seq: usize,
    /// The play's name.
    pub play: String,
    /// Where the task is: `tasks[1].block[0]`, `tasks[1].rescue[0]`, ...
    pub path: String,
    /// The task's name.
    pub task: String,
    /// The module (none for a skipped block).
    pub module: Option<String>,
    /// The loop item, when looping.
    pub item: Option<Value>,
    /// How it ended.
    pub status: StepStatus,
    /// The arguments after templating, secrets redacted.
    pub input: Option<Value>,
    /// The module's answer (or what a dry run would do), secrets redacted.
    pub output: Option<Value>,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// Module calls made (0 when skipped, dry or refused before the call).
    pub attempts: u32,
    /// The approval asked for it, if any.
    pub approval: Option<ApprovalRecord>,
    /// Start, ms since the epoch (wall clock).
    pub started_at_ms: i64,
    /// End, ms since the epoch (wall clock).
    pub finished_at_ms: i64,
    /// How long it took, ms (the runtime's clock, including retry delays).
    pub duration_ms: u64,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every play finished (failures only where ignored or rescued).
    Succeeded,
    /// A play stopped on a failed step.
    Failed,
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Run id (given by the caller).
    pub run_id: String,
    /// The playbook file.
    pub playbook: String,
    /// Dry run: no module was called.
    pub dry_run: bool,
    /// How it ended.
    pub status: RunStatus,
    /// The failure that stopped it.
    pub error: Option<String>,
    /// Its steps, in order.
    pub steps: Vec<StepRecord>,
    /// Start, ms since the epoch.
    pub started_at_ms: i64,
    /// End, ms since the epoch.
    pub finished_at_ms: i64,
}

/// Where runs and steps go as they happen. The server persists and audits them.
#[async_trait]
pub trait RunRecorder: Send + Sync {
    /// A run starts.
    async fn run_started(&self, _run_id: &str, _playbook: &str, _dry_run: bool) {}
    /// A step ended.
    async fn step(&self, step: &StepRecord);
    /// The run ended (its record holds every step again).
    async fn run_finished(&self, run: &RunRecord);
}

/// A recorder that keeps nothing (the returned [`RunRecord`] has everything).
pub struct NoRecorder;

#[async_trait]
impl RunRecorder for NoRecorder {
    async fn step(&self, _step: &StepRecord) {}
    async fn run_finished(&self, _run: &RunRecord) {}
}

/// What a redacted secret reads as.
pub const REDACTED: &str = "[redacted]";

/// Argument and field names whose values are never recorded.
const SECRET_KEYS: [&str; 9] = [
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "private_key",
    "credentials",
];

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_KEYS.iter().any(|s| key.contains(s))
}

/// Hides secrets in what gets recorded: the values of secret-looking keys, and every
/// occurrence of a known secret value (the run's `secrets`) inside any string.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    values: Vec<String>,
}

impl Redactor {
    /// A redactor for these secrets (strings of 4 bytes or more; shorter ones would blank
    /// out ordinary text and are refused by the caller's config in the first place).
    pub fn new(secrets: &Map<String, Value>) -> Self {
        let mut values: Vec<String> = Vec::new();
        collect_strings(&Value::Object(secrets.clone()), &mut values);
        values.retain(|v| v.len() >= 4);
        // Longest first, so a secret that contains another is hidden whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Redactor { values }
    }

    /// A redacted copy of a value.
    pub fn value(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.value(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let v = if is_secret_key(k) && !v.is_null() {
                            Value::String(REDACTED.to_owned())
                        } else {
                            self.value(v)
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// A redacted copy of a text.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.values {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}
