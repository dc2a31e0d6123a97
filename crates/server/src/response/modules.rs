//! Dozor's playbook modules: alert actions (through the same operations as the API) and agent
//! commands (queued for the agent, awaited until its result). Notifications are registered by
//! [`super::notify`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dozor_model::AlertStatus;
use dozor_model::response as cmd;
use dozor_playbook::{Catalog, Module, ModuleCtx, ModuleError, Registry};
use dozor_store::{CommandStatus, NewAgentCommand, Store};
use serde_json::{Value, json};

use super::signals::SIGNALS;
use crate::config::ResponseConfig;

/// Registers every module of [`Catalog::dozor`] this server implements.
pub fn register(
    registry: &mut Registry,
    store: Arc<dyn Store>,
    config: &ResponseConfig,
    notifier: Arc<super::notify::Notifier>,
) {
    let catalog = Catalog::dozor();
    let spec = |name: &str| {
        catalog.get(name).cloned().unwrap_or_else(|| {
            dozor_playbook::ModuleSpec::new(name, dozor_playbook::ArgsSchema::AnyMapping)
        })
    };
    for action in [
        AlertAction::Status,
        AlertAction::Assign,
        AlertAction::Comment,
    ] {
        registry.register(
            spec(action.name()),
            Arc::new(AlertModule {
                store: store.clone(),
                action,
            }),
        );
    }
    for (name, kind) in AGENT_MODULES {
        registry.register(
            spec(name),
            Arc::new(AgentModule {
                store: store.clone(),
                kind,
                timeout: config.command_timeout,
            }),
        );
    }
    super::notify::register(registry, &catalog, notifier);
}

/// Module name → command kind.
const AGENT_MODULES: [(&str, &str); 10] = [
    ("agent.isolate_host", cmd::ISOLATE_HOST),
    ("agent.release_host", cmd::RELEASE_HOST),
    ("agent.kill_process", cmd::KILL_PROCESS),
    ("agent.quarantine_file", cmd::QUARANTINE_FILE),
    ("agent.restore_file", cmd::RESTORE_FILE),
    ("agent.delete_file", cmd::DELETE_FILE),
    ("agent.block_ip", cmd::BLOCK_IP),
    ("agent.unblock_ip", cmd::UNBLOCK_IP),
    ("agent.collect_file", cmd::COLLECT_FILE),
    ("agent.scan_path", dozor_model::api::SCAN_PATH),
];

/// Who a module acts as in the audit log and on alerts: `playbook:<name>`.
fn actor(ctx: &ModuleCtx<'_>) -> String {
    let name = ctx.playbook.strip_suffix(".yml").unwrap_or(ctx.playbook);
    format!("playbook:{name}")
}

#[derive(Clone, Copy)]
enum AlertAction {
    Status,
    Assign,
    Comment,
}

impl AlertAction {
    fn name(self) -> &'static str {
        match self {
            AlertAction::Status => "alert.status",
            AlertAction::Assign => "alert.assign",
            AlertAction::Comment => "alert.comment",
        }
    }
}

struct AlertModule {
    store: Arc<dyn Store>,
    action: AlertAction,
}

fn text_arg<'a>(args: &'a Value, key: &str) -> Option<&'a str> {
    args.get(key).and_then(Value::as_str)
}

#[async_trait]
impl Module for AlertModule {
    async fn run(&self, args: Value, ctx: &ModuleCtx<'_>) -> Result<Value, ModuleError> {
        let alert_id = match args.get("alert_id") {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => ctx.input.alert.as_ref().map(|a| a.id),
        }
        .ok_or_else(|| {
            ModuleError::new("no alert: give alert_id, or run the playbook on an alert")
        })?;
        let actor = actor(ctx);
        let store = self.store.as_ref();
        let fail = |e: crate::ops::OpError| ModuleError::new(e.to_string());
        match self.action {
            AlertAction::Status => {
                let status: AlertStatus = text_arg(&args, "status")
                    .unwrap_or_default()
                    .parse()
                    .map_err(|e: dozor_model::ParseError| ModuleError::new(e.to_string()))?;
                let alert = crate::ops::alerts::set_status(
                    store,
                    &actor,
                    alert_id,
                    status,
                    text_arg(&args, "comment"),
                )
                .await
                .map_err(fail)?;
                Ok(json!({"alert_id": alert.id, "status": alert.status}))
            }
            AlertAction::Assign => {
                let alert = crate::ops::alerts::assign(
                    store,
                    &actor,
                    alert_id,
                    text_arg(&args, "assignee"),
                )
                .await
                .map_err(fail)?;
                Ok(json!({"alert_id": alert.id, "assignee": alert.assignee}))
            }
            AlertAction::Comment => {
                let comment = crate::ops::alerts::comment(
                    store,
                    &actor,
                    alert_id,
                    text_arg(&args, "text").unwrap_or_default(),
                )
                .await
                .map_err(fail)?;
                Ok(json!({"alert_id": alert_id, "comment_id": comment.id}))
            }
        }
    }
}

struct AgentModule {
    store: Arc<dyn Store>,
    kind: &'static str,
    timeout: Duration,
}

/// A duration argument: seconds as a number, or text such as `90s`, `15m`, `4h`, `1d`; empty
/// or absent: none.
fn duration_secs(value: Option<&Value>, key: &str) -> Result<Option<u64>, ModuleError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| ModuleError::new(format!("{key}: a whole number of seconds"))),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => {
            let s = s.trim();
            let (number, unit) =
                s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
            let n: u64 = number.parse().map_err(|_| {
                ModuleError::new(format!("{key}: {s:?} is not a duration (90s, 15m, 4h, 1d)"))
            })?;
            let unit = match unit.trim() {
                "" | "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86_400,
                _ => {
                    return Err(ModuleError::new(format!(
                        "{key}: {s:?} is not a duration (90s, 15m, 4h, 1d)"
                    )));
                }
            };
            Ok(Some(n.saturating_mul(unit)))
        }
        Some(_) => Err(ModuleError::new(format!(
            "{key}: a duration (90s, 15m, 4h, 1d)"
        ))),
    }
}

/// A list argument: a list of strings or one string.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) if !s.trim().is_empty() => vec![s.trim().to_owned()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s.trim().to_owned()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|s| !s.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

fn integer(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok().or_else(|| {
            chrono::DateTime::parse_from_rfc3339(s.trim())
                .ok()
                .map(|t| t.timestamp_millis())
        }),
        _ => None,
    }
}

/// The playbook module's arguments as the command's arguments ([`cmd`]).
pub(crate) fn command_args(kind: &str, args: &Value) -> Result<Value, ModuleError> {
    let reason = text_arg(args, "reason").unwrap_or_default();
    let out = match kind {
        cmd::ISOLATE_HOST => json!({
            "reason": reason,
            "allow_hosts": strings(args.get("allow")),
            "release_after_secs": duration_secs(args.get("release_after"), "release_after")?,
        }),
        cmd::RELEASE_HOST => json!({"reason": reason}),
        cmd::KILL_PROCESS => json!({
            "pid": integer(args.get("pid")).unwrap_or(0),
            "start_time_ms": integer(args.get("start_time")).unwrap_or(0),
            "reason": reason,
        }),
        cmd::QUARANTINE_FILE | cmd::DELETE_FILE => {
            json!({"path": text_arg(args, "path").unwrap_or_default(), "reason": reason})
        }
        cmd::RESTORE_FILE => {
            json!({"quarantine_id": text_arg(args, "quarantine_id").unwrap_or_default()})
        }
        cmd::BLOCK_IP => json!({
            "addresses": strings(args.get("ip")),
            "timeout_secs": duration_secs(args.get("expires"), "expires")?,
            "reason": reason,
        }),
        cmd::UNBLOCK_IP => json!({"addresses": strings(args.get("ip")), "reason": reason}),
        cmd::COLLECT_FILE => json!({
            "path": text_arg(args, "path").unwrap_or_default(),
            "max_bytes": integer(args.get("max_bytes")),
        }),
        _ => json!({"path": text_arg(args, "path").unwrap_or_default(), "recursive": true}),
    };
    cmd::check_command_args(kind, &out)
        .map_err(|why| ModuleError::new(format!("{kind}: {why}")))?;
    Ok(out)
}

#[async_trait]
impl Module for AgentModule {
    async fn run(&self, args: Value, ctx: &ModuleCtx<'_>) -> Result<Value, ModuleError> {
        let agent_id = text_arg(&args, "agent_id")
            .map(str::to_owned)
            .filter(|a| !a.trim().is_empty())
            .or_else(|| ctx.input.agent.as_ref().map(|a| a.id.clone()))
            .or_else(|| ctx.input.alert.as_ref().and_then(|a| a.agent_id.clone()))
            .ok_or_else(|| {
                ModuleError::new(
                    "no agent: give agent_id, or run the playbook on an agent or an alert from one",
                )
            })?;
        let timeout = duration_secs(args.get("timeout"), "timeout")?
            .map(Duration::from_secs)
            .unwrap_or(self.timeout);
        let command_args = command_args(self.kind, &args)?;
        let actor = actor(ctx);
        let command = self
            .store
            .create_command(&NewAgentCommand {
                agent_id: agent_id.clone(),
                kind: self.kind.to_owned(),
                args: command_args.clone(),
                requested_by: format!("{actor} run {}", ctx.run_id),
            })
            .await
            .map_err(|e| {
                ModuleError::new(format!(
                    "cannot queue {} for agent {agent_id}: {e}",
                    self.kind
                ))
            })?;
        SIGNALS.command_queued(&agent_id);
        crate::audit::append_audit(
            self.store.as_ref(),
            &actor,
            "agent.command",
            format!("agent:{agent_id}"),
            json!({"command_id": command.id, "kind": self.kind, "args": command_args, "run_id": ctx.run_id}),
        )
        .await;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let woken = SIGNALS.results.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            match self.store.get_command(command.id).await {
                Ok(Some(c)) if c.status.is_final() => {
                    let output = json!({
                        "command_id": c.id,
                        "agent_id": agent_id,
                        "status": c.status,
                        "result": c.result,
                    });
                    return match c.status {
                        CommandStatus::Done => Ok(output),
                        CommandStatus::Failed => Err(ModuleError {
                            message: format!(
                                "agent {agent_id} could not {}: {}",
                                self.kind,
                                c.error.unwrap_or_default()
                            ),
                            output: Some(output),
                        }),
                        _ => Err(ModuleError {
                            message: format!(
                                "agent {agent_id} did not answer the {} command (expired after its deliveries)",
                                self.kind
                            ),
                            output: Some(output),
                        }),
                    };
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(command_id = %command.id, "reading a command: {e}"),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ModuleError {
                    message: format!(
                        "agent {agent_id} gave no result for {} within {}s (command {})",
                        self.kind,
                        timeout.as_secs(),
                        command.id
                    ),
                    output: Some(
                        json!({"command_id": command.id, "agent_id": agent_id, "status": "timeout"}),
                    ),
                });
            }
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playbook_arguments_become_command_arguments() {
        let iso = command_args(
            cmd::ISOLATE_HOST,
            &json!({"allow": "10.0.0.5", "release_after": "4h", "reason": "r"}),
        )
        .unwrap();
        assert_eq!(iso["release_after_secs"], 14_400);
        assert_eq!(iso["allow_hosts"], json!(["10.0.0.5"]));
        let none = command_args(cmd::ISOLATE_HOST, &json!({"release_after": ""})).unwrap();
        assert_eq!(none["release_after_secs"], Value::Null);
        assert!(command_args(cmd::ISOLATE_HOST, &json!({"release_after": "soon"})).is_err());

        let kill = command_args(
            cmd::KILL_PROCESS,
            &json!({"pid": "4242", "start_time": "2026-12-05T08:00:00Z"}),
        )
        .unwrap();
        assert_eq!(kill["pid"], 4242);
        assert_eq!(kill["start_time_ms"], 1_796_457_600_000_i64);
        let err = command_args(cmd::KILL_PROCESS, &json!({"pid": 4242})).unwrap_err();
        assert!(err.message.contains("start_time_ms"), "{}", err.message);

        let block = command_args(
            cmd::BLOCK_IP,
            &json!({"ip": ["203.0.113.7", "2001:db8::/32"], "expires": 600}),
        )
        .unwrap();
        assert_eq!(block["timeout_secs"], 600);
        assert!(command_args(cmd::BLOCK_IP, &json!({"ip": "not-an-ip"})).is_err());
        assert!(command_args(cmd::QUARANTINE_FILE, &json!({"path": "relative"})).is_err());
    }
}
