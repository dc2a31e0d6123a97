//! Test doubles: modules that record their calls, a scripted approver, a memory recorder.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use dozor_model::{Alert, AlertStatus, Level};
use dozor_playbook::{
    ApprovalDecision, ApprovalRequest, Approver, ArgsSchema, Catalog, Engine, Module, ModuleCtx,
    ModuleError, ModuleSpec, Playbook, Registry, RunInput, RunRecord, RunRecorder, StepRecord,
    parse,
};
use serde_json::Value;

/// A module that records its arguments and answers from a script (then `{"ok": true}`).
#[derive(Default)]
pub struct Scripted {
    pub calls: Mutex<Vec<Value>>,
    pub answers: Mutex<VecDeque<Result<Value, ModuleError>>>,
}

impl Scripted {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn answer(&self, answer: Result<Value, ModuleError>) {
        self.answers.lock().unwrap().push_back(answer);
    }

    pub fn calls(&self) -> Vec<Value> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl Module for Scripted {
    async fn run(&self, args: Value, _ctx: &ModuleCtx<'_>) -> Result<Value, ModuleError> {
        self.calls.lock().unwrap().push(args);
        self.answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| Ok(serde_json::json!({ "ok": true })))
    }
}

/// An approver that answers from a script (then expires) and keeps the requests.
#[derive(Default)]
pub struct ScriptedApprover {
    pub requests: Mutex<Vec<ApprovalRequest>>,
    pub decisions: Mutex<VecDeque<ApprovalDecision>>,
}

impl ScriptedApprover {
    pub fn with(decisions: Vec<ApprovalDecision>) -> Arc<Self> {
        Arc::new(ScriptedApprover {
            requests: Mutex::new(Vec::new()),
            decisions: Mutex::new(decisions.into()),
        })
    }

    pub fn requests(&self) -> Vec<ApprovalRequest> {
        self.requests.lock().unwrap().clone()
    }
}

#[async_trait]
impl Approver for ScriptedApprover {
    async fn decide(&self, request: ApprovalRequest) -> ApprovalDecision {
        self.requests.lock().unwrap().push(request);
        self.decisions
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(ApprovalDecision::Expired)
    }
}

pub fn approved(by: &str) -> ApprovalDecision {
    ApprovalDecision::Approved {
        by: by.to_owned(),
        comment: Some("go".to_owned()),
    }
}

/// Keeps what the engine records.
#[derive(Default)]
pub struct MemoryRecorder {
    pub steps: Mutex<Vec<StepRecord>>,
    pub runs: Mutex<Vec<RunRecord>>,
}

#[async_trait]
impl RunRecorder for MemoryRecorder {
    async fn step(&self, step: &StepRecord) {
        self.steps.lock().unwrap().push(step.clone());
    }
    async fn run_finished(&self, run: &RunRecord) {
        self.runs.lock().unwrap().push(run.clone());
    }
}

/// An engine with a harmless `test.echo` and a destructive `agent.isolate_host`, both
/// scripted, plus the Dozor catalog's other names for parsing.
pub struct Harness {
    pub echo: Arc<Scripted>,
    pub isolate: Arc<Scripted>,
    pub approver: Arc<ScriptedApprover>,
    pub recorder: Arc<MemoryRecorder>,
    pub engine: Engine,
}

impl Harness {
    pub fn new(decisions: Vec<ApprovalDecision>) -> Self {
        let echo = Scripted::new();
        let isolate = Scripted::new();
        let approver = ScriptedApprover::with(decisions);
        let recorder = Arc::new(MemoryRecorder::default());
        let mut registry = Registry::new();
        registry.register(
            ModuleSpec::new("test.echo", ArgsSchema::AnyMapping),
            echo.clone(),
        );
        registry.register(
            ModuleSpec::new(
                "agent.isolate_host",
                ArgsSchema::fields(&[], &["agent_id", "reason"]),
            )
            .destructive(),
            isolate.clone(),
        );
        let engine = Engine::new(registry, approver.clone(), recorder.clone());
        Harness {
            echo,
            isolate,
            approver,
            recorder,
            engine,
        }
    }

    pub fn parse(&self, yaml: &str) -> Playbook {
        parse("test.yml", yaml, self.engine.catalog()).unwrap_or_else(|e| panic!("{e}"))
    }

    pub async fn run(&self, yaml: &str) -> RunRecord {
        let playbook = self.parse(yaml);
        self.engine.run(&playbook, &input()).await
    }
}

pub fn alert(level: Level) -> Alert {
    Alert {
        id: 42,
        rule_id: "proc-creation-whoami".to_owned(),
        rule_title: "Whoami executed".to_owned(),
        level,
        tags: vec!["attack.t1033".to_owned(), "dozor.quarantine".to_owned()],
        agent_id: Some("agent-7".to_owned()),
        host: Some("ws-7".to_owned()),
        first_seen: 1,
        last_seen: 2,
        count: 3,
        event_ids: Vec::new(),
        status: AlertStatus::New,
        assignee: None,
        created_at: 1,
        updated_at: 2,
    }
}

pub fn input() -> RunInput {
    RunInput {
        run_id: "run-1".to_owned(),
        trigger: "alert".to_owned(),
        alert: Some(alert(Level::High)),
        base_url: "https://dozor.example".to_owned(),
        ..RunInput::default()
    }
}

/// The Dozor catalog, for the shipped playbooks.
pub fn dozor_catalog() -> Catalog {
    Catalog::dozor()
}
