//! The executor: runs a parsed playbook against one alert/agent context, calling modules
//! through a [`Registry`], asking an [`Approver`] before destructive steps, and handing every
//! step to a [`RunRecorder`].

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use dozor_model::{Agent, Alert};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::catalog::{Catalog, ModuleSpec};
use crate::parse::{Action, LoopSource, Play, Playbook, Task};
use crate::record::{
    ApprovalRecord, Redactor, RunRecord, RunRecorder, RunStatus, StepRecord, StepStatus,
};
use crate::template::Templater;

/// Default seconds between attempts (Ansible's).
pub const DEFAULT_DELAY_SECS: u64 = 5;
/// Default retries when `until` is given without `retries` (Ansible's).
pub const DEFAULT_UNTIL_RETRIES: u32 = 3;

/// A module's failure: the step fails with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ModuleError {
    /// What went wrong (recorded; keep secrets out of it).
    pub message: String,
    /// Data the module still returns (e.g. an HTTP status), registered with the failure.
    pub output: Option<Value>,
}

impl ModuleError {
    /// A failure with a message.
    pub fn new(message: impl Into<String>) -> Self {
        ModuleError {
            message: message.into(),
            output: None,
        }
    }
}

/// What a module sees of the run besides its arguments.
#[derive(Debug, Clone, Copy)]
pub struct ModuleCtx<'a> {
    /// The run.
    pub run_id: &'a str,
    /// The playbook file.
    pub playbook: &'a str,
    /// The play's name.
    pub play: &'a str,
    /// The task's name.
    pub task: &'a str,
    /// The run's input (alert, events, agent, secrets).
    pub input: &'a RunInput,
}

/// A module: an action the playbook can call. Arguments arrive templated (secrets in clear:
/// the module needs them; the engine redacts them in records).
#[async_trait]
pub trait Module: Send + Sync {
    /// Runs once; the engine handles `retries`, `until`, `loop` and approvals.
    async fn run(&self, args: Value, ctx: &ModuleCtx<'_>) -> Result<Value, ModuleError>;
}

/// The modules a run can call: their specs (the parser's [`Catalog`]) and implementations.
/// The built-ins (`debug`, `set_fact`, `fail`, `pause`, `approve`) are always there.
#[derive(Clone, Default)]
pub struct Registry {
    catalog: Catalog,
    modules: HashMap<String, Arc<dyn Module>>,
}

impl Registry {
    /// Only the built-ins.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a module with its spec.
    pub fn register(&mut self, spec: ModuleSpec, module: Arc<dyn Module>) {
        self.modules.insert(spec.name.clone(), module);
        self.catalog.add(spec);
    }

    /// The specs, for [`crate::parse`].
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }
}

/// An approval asked for one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// The run.
    pub run_id: String,
    /// The playbook file.
    pub playbook: String,
    /// The play's name.
    pub play: String,
    /// The task's name.
    pub task: String,
    /// The action: the module to run (`approve` for an explicit gate).
    pub module: String,
    /// Its templated arguments, secrets redacted (the target is in there).
    pub args: Value,
    /// Why (the `approve` step's `reason`, or the task's name).
    pub reason: String,
    /// Who started the run, when a person did (an approver may have to be someone else).
    pub requested_by: Option<String>,
}

/// An approver's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum ApprovalDecision {
    /// Go ahead.
    Approved {
        /// Who approved.
        by: String,
        /// Their comment.
        comment: Option<String>,
    },
    /// Do not.
    Rejected {
        /// Who rejected.
        by: String,
        /// Their comment.
        comment: Option<String>,
    },
    /// Nobody decided in time.
    Expired,
}

/// Decides approvals (the server: an approvals inbox with notifications and a timeout).
#[async_trait]
pub trait Approver: Send + Sync {
    /// Waits for a decision on this request.
    async fn decide(&self, request: ApprovalRequest) -> ApprovalDecision;
}

/// An approver that nobody answers: every request expires at once (secure default when no
/// approver is wired).
pub struct NoApprover;

#[async_trait]
impl Approver for NoApprover {
    async fn decide(&self, _request: ApprovalRequest) -> ApprovalDecision {
        ApprovalDecision::Expired
    }
}

/// What a run is about, and how to run it.
#[derive(Debug, Clone, Default)]
pub struct RunInput {
    /// Run id (the caller makes it, e.g. a UUIDv7).
    pub run_id: String,
    /// What started it: `alert`, `manual`, `schedule` (in templates as `trigger`).
    pub trigger: String,
    /// Who started it, for a manual run.
    pub requested_by: Option<String>,
    /// The alert (`alert` in templates).
    pub alert: Option<Alert>,
    /// Its events (`events`).
    pub events: Vec<Value>,
    /// The agent (`agent`).
    pub agent: Option<Agent>,
    /// Variables that override the plays' (`vars.*` and bare names).
    pub extra_vars: Map<String, Value>,
    /// Secrets (`secrets.*`); never recorded.
    pub secrets: Map<String, Value>,
    /// The dashboard's external URL, for links (`dozor.url`).
    pub base_url: String,
    /// Template and check only; call no module.
    pub dry_run: bool,
    /// Which plays to run, by index (none: all).
    pub plays: Option<Vec<usize>>,
}

/// The playbook executor.
pub struct Engine {
    registry: Registry,
    approver: Arc<dyn Approver>,
    recorder: Arc<dyn RunRecorder>,
    templater: Templater,
}

/// Why a task list stopped.
#[derive(Debug, Clone)]
struct Failure {
    task: String,
    message: String,
    result: Value,
}

/// The variables of one running play.
struct PlayState<'a> {
    input: &'a RunInput,
    playbook: &'a str,
    play: &'a Play,
    /// The fixed part of the context: alert, events, agent, trigger, run, dozor, secrets.
    base: Map<String, Value>,
    /// Play vars, extra vars, facts and registered results (all as bare names too).
    vars: Map<String, Value>,
    /// Task and block vars, innermost last.
    scopes: Vec<Map<String, Value>>,
    redactor: Redactor,
    steps: Vec<StepRecord>,
    seq: usize,
}

impl PlayState<'_> {
    fn context(&self, item: Option<&Value>) -> Value {
        let mut vars = self.vars.clone();
        for scope in &self.scopes {
            vars.extend(scope.clone());
        }
        let mut ctx = self.base.clone();
        for (k, v) in &vars {
            ctx.insert(k.clone(), v.clone());
        }
        ctx.insert("vars".to_owned(), Value::Object(vars));
        if let Some(item) = item {
            ctx.insert("item".to_owned(), item.clone());
        }
        Value::Object(ctx)
    }
}

/// A step's outcome before it is recorded.
struct Outcome {
    status: StepStatus,
    input: Option<Value>,
    output: Option<Value>,
    error: Option<String>,
    attempts: u32,
    approval: Option<ApprovalRecord>,
}

impl Outcome {
    fn failed(input: Option<Value>, error: String) -> Self {
        Outcome {
            status: StepStatus::Failed,
            input,
            output: None,
            error: Some(error),
            attempts: 0,
            approval: None,
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

type TasksFuture<'f> = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send + 'f>>;

impl Engine {
    /// An engine over these modules, approver and recorder.
    pub fn new(
        registry: Registry,
        approver: Arc<dyn Approver>,
        recorder: Arc<dyn RunRecorder>,
    ) -> Self {
        Engine {
            registry,
            approver,
            recorder,
            templater: Templater::default(),
        }
    }

    /// The modules' specs, to parse playbooks for this engine.
    pub fn catalog(&self) -> &Catalog {
        self.registry.catalog()
    }

    /// Runs the playbook's plays (those in `input.plays`, or all) in order; a play that
    /// fails stops the run.
    pub async fn run(&self, playbook: &Playbook, input: &RunInput) -> RunRecord {
        let started_at_ms = now_ms();
        self.recorder
            .run_started(&input.run_id, &playbook.file, input.dry_run)
            .await;
        let redactor = Redactor::new(&input.secrets);
        let mut steps = Vec::new();
        let mut error = None;
        for (index, play) in playbook.plays.iter().enumerate() {
            if input.plays.as_ref().is_some_and(|p| !p.contains(&index)) {
                continue;
            }
            let mut state = PlayState {
                input,
                playbook: &playbook.file,
                play,
                base: base_context(input, &playbook.file, &play.name),
                vars: Map::new(),
                scopes: Vec::new(),
                redactor: redactor.clone(),
                steps: Vec::new(),
                seq: steps.len(),
            };
            let result = self.run_play(&mut state).await;
            steps.append(&mut state.steps);
            if let Err(failure) = result {
                error = Some(redactor.text(&format!(
                    "play `{}`, task `{}`: {}",
                    play.name, failure.task, failure.message
                )));
                break;
            }
        }
        let record = RunRecord {
            run_id: input.run_id.clone(),
            playbook: playbook.file.clone(),
            dry_run: input.dry_run,
            status: if error.is_some() {
                RunStatus::Failed
            } else {
                RunStatus::Succeeded
            },
            error,
            steps,
            started_at_ms,
            finished_at_ms: now_ms(),
        };
        self.recorder.run_finished(&record).await;
        record
    }

    async fn run_play(&self, state: &mut PlayState<'_>) -> Result<(), Failure> {
        let rendered = self
            .render_vars(&state.play.vars, state)
            .map_err(|why| Failure {
                task: "vars".to_owned(),
                message: format!("play {why}"),
                result: Value::Null,
            })?;
        state.vars.extend(rendered);
        for (name, value) in &state.input.extra_vars {
            state.vars.insert(name.clone(), value.clone());
        }
        self.run_tasks(&state.play.tasks, state, "tasks".to_owned())
            .await
    }

    fn run_tasks<'f>(
        &'f self,
        tasks: &'f [Task],
        state: &'f mut PlayState<'_>,
        path: String,
    ) -> TasksFuture<'f> {
        Box::pin(async move {
            for (index, task) in tasks.iter().enumerate() {
                let path = format!("{path}[{index}]");
                match &task.action {
                    Action::Block {
                        block,
                        rescue,
                        always,
                    } => {
                        self.run_block(task, block, rescue, always, state, path)
                            .await?
                    }
                    Action::Module { name, args } => {
                        self.run_module_task(task, name, args, state, path).await?;
                    }
                }
            }
            Ok(())
        })
    }

    /// Renders a task's vars into a new scope (the caller pops it).
    fn push_task_vars(&self, task: &Task, state: &mut PlayState<'_>) -> Result<(), String> {
        state.scopes.push(Map::new());
        let rendered = self.render_vars(&task.vars, state)?;
        if let Some(top) = state.scopes.last_mut() {
            top.extend(rendered);
        }
        Ok(())
    }

    /// Renders a set of variables that may refer to each other, in any order (YAML mappings
    /// come sorted here): each pass renders what it can, until all are done or a pass makes
    /// no progress (then the first error is the answer, e.g. an undefined name or a cycle).
    fn render_vars(
        &self,
        vars: &Map<String, Value>,
        state: &mut PlayState<'_>,
    ) -> Result<Map<String, Value>, String> {
        let mut done = Map::new();
        let mut pending: Vec<(&String, &Value)> = vars.iter().collect();
        while !pending.is_empty() {
            state.scopes.push(done.clone());
            let ctx = state.context(None);
            state.scopes.pop();
            let mut first_error = None;
            let before = pending.len();
            pending.retain(|(name, value)| match self.templater.render(value, &ctx) {
                Ok(rendered) => {
                    done.insert((*name).clone(), rendered);
                    false
                }
                Err(why) => {
                    first_error.get_or_insert_with(|| format!("variable `{name}`: {why}"));
                    true
                }
            });
            if pending.len() == before {
                return Err(first_error.unwrap_or_default());
            }
        }
        Ok(done)
    }

    async fn run_block(
        &self,
        task: &Task,
        block: &[Task],
        rescue: &[Task],
        always: &[Task],
        state: &mut PlayState<'_>,
        path: String,
    ) -> Result<(), Failure> {
        let name = task.display_name();
        let started = Started::now();
        if let Err(why) = self.push_task_vars(task, state) {
            state.scopes.pop();
            let outcome = Outcome::failed(None, why);
            return self
                .finish(task, state, &path, None, None, started, outcome)
                .await;
        }
        let when = self.templater.holds(&task.when, &state.context(None));
        let result = match when {
            Err(why) => {
                let outcome = Outcome::failed(None, format!("when: {why}"));
                self.finish(task, state, &path, None, None, started, outcome)
                    .await
            }
            Ok(false) => {
                let outcome = skipped();
                self.finish(task, state, &path, None, None, started, outcome)
                    .await
            }
            Ok(true) => {
                let mut result = self.run_tasks(block, state, format!("{path}.block")).await;
                if let Err(failure) = &result
                    && !rescue.is_empty()
                {
                    // Ansible's names for what failed, visible to the rescue tasks.
                    if let Some(scope) = state.scopes.last_mut() {
                        scope.insert(
                            "ansible_failed_task".to_owned(),
                            json!({ "name": failure.task }),
                        );
                        scope.insert("ansible_failed_result".to_owned(), failure.result.clone());
                    }
                    result = self
                        .run_tasks(rescue, state, format!("{path}.rescue"))
                        .await;
                }
                let always_result = self
                    .run_tasks(always, state, format!("{path}.always"))
                    .await;
                result.and(always_result)
            }
        };
        state.scopes.pop();
        match result {
            Err(failure) if task.ignore_errors => {
                tracing::debug!(block = %name, error = %failure.message, "block failure ignored");
                Ok(())
            }
            other => other,
        }
    }

    async fn run_module_task(
        &self,
        task: &Task,
        module: &str,
        args: &Map<String, Value>,
        state: &mut PlayState<'_>,
        path: String,
    ) -> Result<(), Failure> {
        let started = Started::now();
        if let Err(why) = self.push_task_vars(task, state) {
            state.scopes.pop();
            let outcome = Outcome::failed(None, why);
            return self
                .finish(task, state, &path, Some(module), None, started, outcome)
                .await;
        }
        let result = self
            .run_module_items(task, module, args, state, &path, started)
            .await;
        state.scopes.pop();
        result
    }

    async fn run_module_items(
        &self,
        task: &Task,
        module: &str,
        args: &Map<String, Value>,
        state: &mut PlayState<'_>,
        path: &str,
        started: Started,
    ) -> Result<(), Failure> {
        let items = match &task.loop_items {
            None => None,
            Some(source) => match self.loop_items(source, &state.context(None)) {
                Ok(items) => Some(items),
                Err(why) => {
                    let outcome = Outcome::failed(None, format!("loop: {why}"));
                    return self
                        .finish(task, state, path, Some(module), None, started, outcome)
                        .await;
                }
            },
        };
        let Some(items) = items else {
            let (result, registered) = self
                .run_step(task, module, args, state, path, None, started)
                .await;
            if let Some(name) = &task.register {
                state.vars.insert(name.clone(), registered);
            }
            return result;
        };
        let mut results = Vec::new();
        let mut outcome = Ok(());
        for item in items {
            let (result, registered) = self
                .run_step(task, module, args, state, path, Some(item), Started::now())
                .await;
            results.push(registered);
            if result.is_err() {
                outcome = result;
                break;
            }
        }
        if let Some(name) = &task.register {
            let failed = results.iter().any(|r| r["failed"] == json!(true));
            let skipped =
                !results.is_empty() && results.iter().all(|r| r["skipped"] == json!(true));
            state.vars.insert(
                name.clone(),
                json!({ "results": results, "failed": failed, "skipped": skipped }),
            );
        }
        outcome
    }

    fn loop_items(&self, source: &LoopSource, ctx: &Value) -> Result<Vec<Value>, String> {
        match source {
            LoopSource::List(items) => items
                .iter()
                .map(|i| self.templater.render(i, ctx))
                .collect(),
            LoopSource::Template(text) => {
                match self.templater.render(&Value::String(text.clone()), ctx)? {
                    Value::Array(items) => Ok(items),
                    other => Err(format!("`{text}` is not a list but {other}")),
                }
            }
        }
    }

    /// One module call (with its approval, retries and `until`), recorded. Returns the flow
    /// result and the value to register.
    #[allow(clippy::too_many_arguments)]
    async fn run_step(
        &self,
        task: &Task,
        module: &str,
        args: &Map<String, Value>,
        state: &mut PlayState<'_>,
        path: &str,
        item: Option<Value>,
        started: Started,
    ) -> (Result<(), Failure>, Value) {
        let ctx = state.context(item.as_ref());
        let outcome = match self.templater.holds(&task.when, &ctx) {
            Err(why) => Outcome::failed(None, format!("when: {why}")),
            Ok(false) => skipped(),
            Ok(true) => match self.templater.render(&Value::Object(args.clone()), &ctx) {
                Err(why) => Outcome::failed(None, format!("template error in arguments: {why}")),
                Ok(rendered) => {
                    self.call(task, module, rendered, state, item.as_ref())
                        .await
                }
            },
        };
        let registered = registered_result(&outcome, item.as_ref());
        let result = self
            .finish(task, state, path, Some(module), item, started, outcome)
            .await;
        (result, registered)
    }

    /// Approval, then the attempts.
    async fn call(
        &self,
        task: &Task,
        module: &str,
        args: Value,
        state: &mut PlayState<'_>,
        item: Option<&Value>,
    ) -> Outcome {
        let recorded_input = Some(state.redactor.value(&args));
        let Some(spec) = self.registry.catalog().get(module) else {
            return Outcome::failed(recorded_input, format!("unknown module `{module}`"));
        };
        let gate = module == "approve";
        let needs_approval = gate
            || match task.approval {
                Some(explicit) => explicit,
                None => spec.destructive && state.play.approval.unwrap_or(true),
            };
        if state.input.dry_run {
            return self.dry_run(module, args, state, needs_approval, recorded_input);
        }
        let mut approval = None;
        if needs_approval {
            let reason = args
                .get("reason")
                .and_then(Value::as_str)
                .map_or_else(|| task.display_name(), str::to_owned);
            let request = ApprovalRequest {
                run_id: state.input.run_id.clone(),
                playbook: state.playbook.to_owned(),
                play: state.play.name.clone(),
                task: task.display_name(),
                module: module.to_owned(),
                args: state.redactor.value(&args),
                reason,
                requested_by: state.input.requested_by.clone(),
            };
            let decision = self.approver.decide(request).await;
            let (record, refusal) = match decision {
                ApprovalDecision::Approved { by, comment } => (
                    ApprovalRecord {
                        decision: "approved".to_owned(),
                        by: Some(by),
                        comment,
                    },
                    None,
                ),
                ApprovalDecision::Rejected { by, comment } => (
                    ApprovalRecord {
                        decision: "rejected".to_owned(),
                        by: Some(by.clone()),
                        comment: comment.clone(),
                    },
                    Some(match comment {
                        Some(c) => format!("approval rejected by {by}: {c}"),
                        None => format!("approval rejected by {by}"),
                    }),
                ),
                ApprovalDecision::Expired => (
                    ApprovalRecord {
                        decision: "expired".to_owned(),
                        by: None,
                        comment: None,
                    },
                    Some("approval expired: nobody decided in time".to_owned()),
                ),
            };
            if let Some(why) = refusal {
                let mut outcome = Outcome::failed(recorded_input, why);
                outcome.approval = Some(record);
                return outcome;
            }
            if gate {
                return Outcome {
                    status: StepStatus::Ok,
                    input: recorded_input,
                    output: Some(json!({ "approved_by": record.by, "comment": record.comment })),
                    error: None,
                    attempts: 1,
                    approval: Some(record),
                };
            }
            approval = Some(record);
        }
        let mut outcome = self.attempts(task, module, args, state, item).await;
        outcome.input = recorded_input;
        outcome.approval = approval;
        outcome
    }

    /// What a dry run records: built-ins that only touch variables run (their effect is
    /// what the following steps would see); every other module is described, not called.
    fn dry_run(
        &self,
        module: &str,
        args: Value,
        state: &mut PlayState<'_>,
        needs_approval: bool,
        input: Option<Value>,
    ) -> Outcome {
        let builtin = match module {
            "debug" | "set_fact" | "fail" => Some(self.builtin(module, &args, state)),
            _ => None,
        };
        let (status, output, error) = match builtin {
            Some(Ok(output)) => (StepStatus::DryRun, output, None),
            Some(Err(err)) => (StepStatus::Failed, json!({}), Some(err.message)),
            None => (
                StepStatus::DryRun,
                json!({ "would_run": module, "args": state.redactor.value(&args) }),
                None,
            ),
        };
        let mut output = output;
        if let Value::Object(map) = &mut output {
            map.insert("dry_run".to_owned(), Value::Bool(true));
            map.insert("needs_approval".to_owned(), Value::Bool(needs_approval));
        }
        Outcome {
            status,
            input,
            output: Some(state.redactor.value(&output)),
            error,
            attempts: 0,
            approval: None,
        }
    }

    async fn attempts(
        &self,
        task: &Task,
        module: &str,
        args: Value,
        state: &mut PlayState<'_>,
        item: Option<&Value>,
    ) -> Outcome {
        let retries = task.retries.unwrap_or(if task.until.is_empty() {
            0
        } else {
            DEFAULT_UNTIL_RETRIES
        });
        let delay = Duration::from_secs(task.delay.unwrap_or(DEFAULT_DELAY_SECS));
        let max_attempts = retries.saturating_add(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let answer = self.invoke(task, module, &args, state).await;
            let verdict = match &answer {
                Err(err) => Err(err.message.clone()),
                Ok(output) if !task.until.is_empty() => {
                    // `until` sees this attempt's result under the register name.
                    let mut ctx = state.context(item);
                    if let (Some(name), Value::Object(map)) = (&task.register, &mut ctx) {
                        let as_outcome = Outcome {
                            status: StepStatus::Ok,
                            input: None,
                            output: Some(output.clone()),
                            error: None,
                            attempts: attempt,
                            approval: None,
                        };
                        map.insert(name.clone(), registered_result(&as_outcome, item));
                    }
                    match self.templater.holds(&task.until, &ctx) {
                        Ok(true) => Ok(()),
                        Ok(false) => Err(format!("`until` not met after {attempt} attempt(s)")),
                        // A broken condition will not mend itself: no retry.
                        Err(why) => {
                            return Outcome {
                                status: StepStatus::Failed,
                                input: None,
                                output: answer.ok().map(|o| state.redactor.value(&o)),
                                error: Some(state.redactor.text(&format!("until: {why}"))),
                                attempts: attempt,
                                approval: None,
                            };
                        }
                    }
                }
                Ok(_) => Ok(()),
            };
            match verdict {
                Ok(()) => {
                    return Outcome {
                        status: StepStatus::Ok,
                        input: None,
                        output: answer.ok().map(|o| state.redactor.value(&o)),
                        error: None,
                        attempts: attempt,
                        approval: None,
                    };
                }
                Err(why) if attempt >= max_attempts => {
                    let output = match answer {
                        Ok(o) => Some(o),
                        Err(e) => e.output,
                    };
                    return Outcome {
                        status: StepStatus::Failed,
                        input: None,
                        output: output.map(|o| state.redactor.value(&o)),
                        error: Some(state.redactor.text(&why)),
                        attempts: attempt,
                        approval: None,
                    };
                }
                Err(why) => {
                    tracing::debug!(task = %task.display_name(), attempt, error = %state.redactor.text(&why), "retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn invoke(
        &self,
        task: &Task,
        module: &str,
        args: &Value,
        state: &mut PlayState<'_>,
    ) -> Result<Value, ModuleError> {
        if module == "pause" {
            let seconds = args.get("seconds").and_then(Value::as_f64).unwrap_or(0.0)
                + 60.0 * args.get("minutes").and_then(Value::as_f64).unwrap_or(0.0);
            let pause = Duration::try_from_secs_f64(seconds)
                .map_err(|_| ModuleError::new(format!("pause: invalid duration {seconds} s")))?;
            tokio::time::sleep(pause).await;
            return Ok(json!({ "paused_seconds": seconds }));
        }
        if matches!(module, "debug" | "set_fact" | "fail") {
            return self.builtin(module, args, state);
        }
        let Some(implementation) = self.registry.modules.get(module) else {
            return Err(ModuleError::new(format!(
                "module `{module}` is known but not available in this engine"
            )));
        };
        let task_name = task.display_name();
        let ctx = ModuleCtx {
            run_id: &state.input.run_id,
            playbook: state.playbook,
            play: &state.play.name,
            task: &task_name,
            input: state.input,
        };
        implementation.run(args.clone(), &ctx).await
    }

    /// `debug`, `set_fact` and `fail`: they only read and write variables.
    fn builtin(
        &self,
        module: &str,
        args: &Value,
        state: &mut PlayState<'_>,
    ) -> Result<Value, ModuleError> {
        match module {
            "debug" => {
                let output = if let Some(var) = args.get("var").and_then(Value::as_str) {
                    let ctx = state.context(None);
                    let value = self
                        .templater
                        .render(&Value::String(format!("{{{{ {var} }}}}")), &ctx)
                        .map_err(ModuleError::new)?;
                    json!({ var: value })
                } else {
                    json!({ "msg": args.get("msg").cloned().unwrap_or(json!("Hello world!")) })
                };
                tracing::info!(run = %state.input.run_id, output = %state.redactor.value(&output), "debug");
                Ok(output)
            }
            "set_fact" => {
                let facts = args.as_object().cloned().unwrap_or_default();
                for (name, value) in &facts {
                    state.vars.insert(name.clone(), value.clone());
                }
                Ok(json!({ "ansible_facts": facts }))
            }
            "fail" => Err(ModuleError::new(
                args.get("msg")
                    .map(|m| match m {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .unwrap_or_else(|| "Failed as requested from task".to_owned()),
            )),
            other => Err(ModuleError::new(format!("`{other}` is not a built-in"))),
        }
    }

    /// Records the step and turns a failure into the flow's error (unless ignored).
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        task: &Task,
        state: &mut PlayState<'_>,
        path: &str,
        module: Option<&str>,
        item: Option<Value>,
        started: Started,
        mut outcome: Outcome,
    ) -> Result<(), Failure> {
        if outcome.status == StepStatus::Failed && task.ignore_errors {
            outcome.status = StepStatus::Ignored;
        }
        let error = outcome.error.as_deref().map(|e| state.redactor.text(e));
        let record = StepRecord {
            run_id: state.input.run_id.clone(),
            seq: state.seq,
            play: state.play.name.clone(),
            path: path.to_owned(),
            task: task.display_name(),
            module: module.map(str::to_owned),
            item: item.as_ref().map(|i| state.redactor.value(i)),
            status: outcome.status,
            input: outcome.input.clone(),
            output: outcome.output.clone(),
            error: error.clone(),
            attempts: outcome.attempts,
            approval: outcome.approval.clone(),
            started_at_ms: started.wall_ms,
            finished_at_ms: now_ms(),
            duration_ms: u64::try_from(started.clock.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        state.seq += 1;
        self.recorder.step(&record).await;
        state.steps.push(record);
        if outcome.status == StepStatus::Failed {
            return Err(Failure {
                task: task.display_name(),
                message: error.unwrap_or_default(),
                result: registered_result(&outcome, item.as_ref()),
            });
        }
        Ok(())
    }
}

/// When a step started, on both clocks.
#[derive(Clone, Copy)]
struct Started {
    wall_ms: i64,
    clock: tokio::time::Instant,
}

impl Started {
    fn now() -> Self {
        Started {
            wall_ms: now_ms(),
            clock: tokio::time::Instant::now(),
        }
    }
}

fn skipped() -> Outcome {
    Outcome {
        status: StepStatus::Skipped,
        input: None,
        output: None,
        error: Some("`when` was false".to_owned()),
        attempts: 0,
        approval: None,
    }
}

/// The value `register` stores: the module's output keys (an object's, or `output` for any
/// other value) with `failed`, `skipped`, `msg`, `attempts` and `item`.
fn registered_result(outcome: &Outcome, item: Option<&Value>) -> Value {
    let mut map = match &outcome.output {
        Some(Value::Object(map)) => map.clone(),
        Some(other) => Map::from_iter([("output".to_owned(), other.clone())]),
        None => Map::new(),
    };
    map.insert(
        "failed".to_owned(),
        json!(matches!(
            outcome.status,
            StepStatus::Failed | StepStatus::Ignored
        )),
    );
    map.insert(
        "skipped".to_owned(),
        json!(outcome.status == StepStatus::Skipped),
    );
    map.insert("attempts".to_owned(), json!(outcome.attempts));
    if let Some(error) = &outcome.error
        && outcome.status != StepStatus::Skipped
    {
        map.insert("msg".to_owned(), json!(error));
    }
    if let Some(item) = item {
        map.insert("item".to_owned(), item.clone());
    }
    Value::Object(map)
}

fn base_context(input: &RunInput, playbook: &str, play: &str) -> Map<String, Value> {
    fn to_value<T: Serialize>(value: &T) -> Value {
        serde_json::to_value(value).unwrap_or(Value::Null)
    }
    let mut base = Map::new();
    base.insert(
        "alert".to_owned(),
        input.alert.as_ref().map_or(Value::Null, to_value),
    );
    base.insert("events".to_owned(), Value::Array(input.events.clone()));
    base.insert(
        "agent".to_owned(),
        input.agent.as_ref().map_or(Value::Null, to_value),
    );
    base.insert("trigger".to_owned(), json!(input.trigger));
    base.insert(
        "run".to_owned(),
        json!({
            "id": input.run_id,
            "dry_run": input.dry_run,
            "playbook": playbook,
            "play": play,
            "requested_by": input.requested_by,
        }),
    );
    base.insert("dozor".to_owned(), json!({ "url": input.base_url }));
    base.insert("secrets".to_owned(), Value::Object(input.secrets.clone()));
    base
}
