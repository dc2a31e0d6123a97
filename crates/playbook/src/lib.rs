//! Dozor's playbook engine (SOAR): Ansible-shaped YAML playbooks, Jinja templating with
//! minijinja, and an async executor with `when`, `loop`, `register`, retries and `until`,
//! `ignore_errors`, `block`/`rescue`/`always`, approvals before destructive steps, dry runs,
//! and a recorder that sees every step (secrets redacted).
//!
//! The crate does no network or database I/O: modules ([`Module`]), approvals
//! ([`Approver`]) and storage ([`RunRecorder`]) are traits the server implements. See the
//! README for the YAML shape and the module contract.

mod catalog;
mod engine;
mod parse;
mod record;
mod template;
mod trigger;

pub use catalog::{ArgsSchema, BUILTIN_MODULES, Catalog, ModuleSpec};
pub use engine::{
    ApprovalDecision, ApprovalRequest, Approver, DEFAULT_DELAY_SECS, DEFAULT_UNTIL_RETRIES, Engine,
    Module, ModuleCtx, ModuleError, NoApprover, Registry, RunInput,
};
pub use parse::{Action, Expr, LoopSource, ParseError, Play, Playbook, Task, parse};
pub use record::{
    ApprovalRecord, NoRecorder, REDACTED, Redactor, RunRecord, RunRecorder, RunStatus, StepRecord,
    StepStatus,
};
pub use template::Templater;
pub use trigger::{AlertTrigger, Cron, Schedule, Trigger, glob_match};

/// The base playbooks Dozor ships (name, YAML text): written into an empty playbook
/// directory at the server's first start, where operators edit them.
pub const BASE_PLAYBOOKS: [(&str, &str); 2] = [
    (
        "notify-operator",
        include_str!("../playbooks/notify-operator.yml"),
    ),
    (
        "quarantine-host",
        include_str!("../playbooks/quarantine-host.yml"),
    ),
];
