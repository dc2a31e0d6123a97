//! Windows glue: the Event Log subscription thread and the service entry point. The FFI is in
//! `dozor-agent-windows`; the XML it renders is parsed by the shared decoder.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use serde_json::Value;

use crate::config::AgentConfig;

/// Subscribes to the configured channels on a thread of its own (None when switched off).
pub fn start_eventlog(
    config: &AgentConfig,
    sender: Sender<Value>,
    shutdown: dozor_collect::Shutdown,
    health: dozor_collect::Health,
) -> Option<JoinHandle<()>> {
    if !config.windows.eventlog {
        health.set("eventlog", dozor_collect::CollectorState::Disabled, None);
        return None;
    }
    let mut queries = dozor_agent_windows::eventlog::default_queries();
    for (channel, xpath) in &config.windows.extra_queries {
        queries.push(dozor_agent_windows::eventlog::ChannelQuery {
            channel: channel.clone(),
            xpath: xpath.clone(),
        });
    }
    let bookmarks = config.state_dir.join("eventlog");
    let _ = std::fs::create_dir_all(&bookmarks);
    std::thread::Builder::new()
        .name("eventlog".into())
        .spawn(move || {
            let stop = || shutdown.is_triggered();
            let mut on_event = |_channel: &str, xml: &str| -> Result<(), String> {
                match dozor_agent_windows::xml_to_event(xml) {
                    Ok(event) => sender
                        .send(event)
                        .map_err(|_| "the agent is stopping".to_owned()),
                    Err(e) => {
                        // A record the decoder can't read is logged and skipped, never retried
                        // forever.
                        tracing::warn!("event log record skipped: {e}");
                        Ok(())
                    }
                }
            };
            let mut on_status = |channel: &str, status: Result<(), String>| match status {
                Ok(()) => health.set(
                    &format!("eventlog:{channel}"),
                    dozor_collect::CollectorState::Running,
                    None,
                ),
                Err(e) => health.set(
                    &format!("eventlog:{channel}"),
                    dozor_collect::CollectorState::Degraded,
                    Some(e),
                ),
            };
            if let Err(e) = dozor_agent_windows::eventlog::run(
                &queries,
                &bookmarks,
                &stop,
                &mut on_event,
                &mut on_status,
            ) {
                health.set(
                    "eventlog",
                    dozor_collect::CollectorState::Failed,
                    Some(e.to_string()),
                );
            }
        })
        .ok()
}

static SERVICE_CONFIG: std::sync::OnceLock<AgentConfig> = std::sync::OnceLock::new();

fn service_body(stop: Arc<AtomicBool>) -> Result<(), String> {
    let Some(config) = SERVICE_CONFIG.get().cloned() else {
        return Err("no configuration".into());
    };
    crate::runner::run(config, stop).map_err(|e| format!("{e:#}"))
}

/// Runs the agent under the service control manager until it is told to stop.
pub fn run_service(config: AgentConfig) -> anyhow::Result<()> {
    let _ = SERVICE_CONFIG.set(config);
    dozor_agent_windows::service::run_as_service(service_body)
        .map_err(|e| anyhow::anyhow!("service: {e}"))
}
