//! `dozor-agent`: the Dozor endpoint agent.

mod config;
mod identity;
mod inventory;
mod response;
mod runner;
mod scanner;
#[cfg(windows)]
mod windows;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use crate::config::{AgentConfig, REFERENCE, default_config_path};
use crate::identity::{CaTrust, EnrollOptions, Identity};
use crate::runner::StatusFile;

#[derive(Parser)]
#[command(
    name = "dozor-agent",
    version,
    about = "Dozor endpoint agent: collects process, network, file, authentication (and on Windows, Event Log) telemetry and sends it to a Dozor server over mutual TLS"
)]
struct Cli {
    /// Configuration file [default: /etc/dozor-agent/agent.toml, Windows:
    /// C:\ProgramData\Dozor\agent.toml; a missing default file means defaults].
    #[arg(long, short = 'c', global = true, env = "DOZOR_AGENT_CONFIG")]
    config: Option<PathBuf>,
    /// Where the identity, spool and collector state live, overriding the file's `state_dir`
    /// [default: /var/lib/dozor-agent, Windows: C:\ProgramData\Dozor\agent]. Set it (with
    /// --config) to run the agent without root, e.g. `--state-dir ~/.local/state/dozor-agent`.
    #[arg(long, global = true, env = "DOZOR_AGENT_STATE_DIR")]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enroll with a server: make a key pair, send a certificate request with an enrollment
    /// token, store the client certificate and pin the server's CA.
    ///
    /// Without --token, renews the certificate of an enrolled agent (same agent id).
    Enroll {
        /// The server, https://HOST:PORT.
        #[arg(long)]
        server: Option<String>,
        /// Enrollment token (`dze_…`, from `dozor tokens create`).
        #[arg(long, env = "DOZOR_ENROLL_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// SHA-256 of the server's CA certificate (`dozor server` and `dozor tokens create`
        /// print it; hex, `:` separators and a `SHA256:` prefix allowed): the CA the server
        /// presents must match it. Give this or --ca-file: without either the CA is trusted on
        /// first use, with a loud warning.
        #[arg(long, conflicts_with = "ca_file", value_name = "SHA256")]
        ca_sha256: Option<String>,
        /// The server's CA certificate (PEM), e.g. copied from its data directory.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Revoke other agents enrolled under this hostname (a reinstalled host). The server
        /// allows it when this host still has the old agent's identity (its certificate is
        /// presented as proof) or the token was created with `--may-replace`; every
        /// replacement raises an alert.
        #[arg(long)]
        replace: bool,
        /// Enroll again even though this host is already enrolled (a new agent id).
        #[arg(long)]
        force: bool,
    },
    /// Run the agent in the foreground (or, with --service, under the Windows service manager).
    Run {
        /// Started by the Windows service manager.
        #[arg(long, hide = true)]
        service: bool,
        /// Enroll first when this host is not enrolled yet (containers, unattended installs):
        /// the server, https://HOST:PORT. Needs --enroll-token-file and --enroll-ca-file.
        #[arg(
            long,
            env = "DOZOR_ENROLL_SERVER",
            value_name = "URL",
            requires_all = ["enroll_token_file", "enroll_ca_file"]
        )]
        enroll_server: Option<String>,
        /// File holding the enrollment token (`dze_…`); waited for when it does not exist yet.
        #[arg(long, env = "DOZOR_ENROLL_TOKEN_FILE", value_name = "FILE")]
        enroll_token_file: Option<PathBuf>,
        /// The server's CA certificate (PEM) to pin; waited for when it does not exist yet.
        #[arg(long, env = "DOZOR_ENROLL_CA_FILE", value_name = "FILE")]
        enroll_ca_file: Option<PathBuf>,
    },
    /// Show the agent's identity and the running agent's counters.
    Status {
        /// Print the status file as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a configuration file with every key at its default.
    PrintConfig,
    /// Register the Windows service (DozorAgent) that runs `dozor-agent run --service`.
    InstallService,
    /// Remove the Windows service.
    UninstallService,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config_path = cli.config.clone().unwrap_or_else(default_config_path);
    let mut config = match AgentConfig::load(&config_path, cli.config.is_some()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Some(dir) = cli.state_dir.clone() {
        config.state_dir = dir;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DOZOR_AGENT_LOG")
                .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log))
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: logs redirected to a file stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match dispatch(cli.command, config, &config_path) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(command: Command, config: AgentConfig, config_path: &std::path::Path) -> Result<u8> {
    match command {
        Command::Enroll {
            server,
            token,
            ca_sha256,
            ca_file,
            replace,
            force,
        } => {
            let dir = config.identity_dir();
            let existing = Identity::load(&dir).ok();
            let server = match (server, &existing) {
                (Some(s), _) => s,
                (None, Some(id)) => id.record.server.clone(),
                (None, None) => bail!("--server https://HOST:PORT is needed to enroll"),
            };
            if token.is_some()
                && let Some(id) = &existing
                && !force
            {
                bail!(
                    "this host is already enrolled as agent {} with {}; renew its certificate with `dozor-agent enroll` (no token), or enroll anew with --force (a new agent id; add --replace to revoke the old one)",
                    id.record.agent_id,
                    id.record.server
                );
            }
            let trust = match (ca_sha256, ca_file) {
                (Some(fp), _) => CaTrust::Fingerprint(fp),
                (None, Some(f)) => CaTrust::File(f),
                (None, None) => CaTrust::FirstUse,
            };
            let (identity, answer) = identity::enroll(
                &dir,
                &EnrollOptions {
                    server,
                    token,
                    trust,
                    replace_duplicates: replace,
                    timeout: Duration::from_secs(30),
                },
            )?;
            println!(
                "{} agent {} with {}; certificate valid until {}",
                if answer.renewed {
                    "renewed"
                } else {
                    "enrolled as"
                },
                identity.record.agent_id,
                identity.record.server,
                chrono::DateTime::from_timestamp_millis(identity.record.certificate_not_after)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default()
            );
            let duplicates = &answer.duplicates;
            if !duplicates.is_empty() {
                eprintln!(
                    "note: {} other agent(s) are enrolled with this hostname: {}{}",
                    duplicates.len(),
                    duplicates
                        .iter()
                        .map(|d| d.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    if replace {
                        " (revoked)"
                    } else {
                        " (use --replace to revoke them)"
                    }
                );
            }
            Ok(0)
        }
        Command::Run {
            service,
            enroll_server,
            enroll_token_file,
            enroll_ca_file,
        } => {
            if let (Some(server), Some(token_file), Some(ca_file)) =
                (enroll_server, enroll_token_file, enroll_ca_file)
                && Identity::load(&config.identity_dir()).is_err()
            {
                enroll_on_first_start(&config, &server, &token_file, &ca_file)?;
            }
            if service {
                #[cfg(windows)]
                return windows::run_service(config).map(|()| 0);
                #[cfg(not(windows))]
                bail!(
                    "--service is for the Windows service manager; on Linux use the systemd unit"
                );
            }
            let stop = Arc::new(AtomicBool::new(false));
            for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::flag::register(signal, stop.clone())
                    .context("installing the signal handler")?;
            }
            runner::run(config, stop)?;
            Ok(0)
        }
        Command::Status { json } => status(&config, json),
        Command::PrintConfig => {
            print!("{REFERENCE}");
            Ok(0)
        }
        Command::InstallService => {
            #[cfg(windows)]
            {
                let exe = std::env::current_exe().context("locating dozor-agent.exe")?;
                dozor_agent_windows::service::install(&exe, config_path)
                    .context("registering the service")?;
                println!(
                    "service {} registered",
                    dozor_agent_windows::service::SERVICE_NAME
                );
                Ok(0)
            }
            #[cfg(not(windows))]
            {
                let _ = config_path;
                bail!(
                    "install-service is for Windows; on Linux install deploy/systemd/dozor-agent.service"
                )
            }
        }
        Command::UninstallService => {
            #[cfg(windows)]
            {
                dozor_agent_windows::service::uninstall().context("removing the service")?;
                println!("service removed");
                Ok(0)
            }
            #[cfg(not(windows))]
            bail!("uninstall-service is for Windows")
        }
    }
}

/// How long `run --enroll-server` keeps trying: the server and the token may still be coming
/// up (a compose file starts everything at once).
const FIRST_ENROLLMENT_PATIENCE: Duration = Duration::from_secs(300);

/// Enrolls an agent that has no identity yet, waiting for the token and CA files and retrying
/// while the server is not reachable; a refusal by the server (bad token) ends it.
fn enroll_on_first_start(
    config: &AgentConfig,
    server: &str,
    token_file: &std::path::Path,
    ca_file: &std::path::Path,
) -> Result<()> {
    let deadline = std::time::Instant::now() + FIRST_ENROLLMENT_PATIENCE;
    let mut last_error = String::new();
    loop {
        let attempt = (|| -> Result<Option<String>> {
            let token = match std::fs::read_to_string(token_file) {
                Ok(t) if !t.trim().is_empty() => t.trim().to_owned(),
                Ok(_) => return Ok(Some(format!("{} is empty", token_file.display()))),
                Err(e) => return Ok(Some(format!("{}: {e}", token_file.display()))),
            };
            if !ca_file.exists() {
                return Ok(Some(format!("{}: not there yet", ca_file.display())));
            }
            let result = identity::enroll(
                &config.identity_dir(),
                &EnrollOptions {
                    server: server.to_owned(),
                    token: Some(token),
                    trust: CaTrust::File(ca_file.to_owned()),
                    replace_duplicates: false,
                    timeout: Duration::from_secs(30),
                },
            );
            match result {
                Ok((identity, _)) => {
                    tracing::info!(agent_id = %identity.record.agent_id, server, "enrolled");
                    Ok(None)
                }
                // Refusals are final; a server not up yet is waited for.
                Err(e) if is_refusal(&e) => Err(e),
                Err(e) => Ok(Some(format!("{e:#}"))),
            }
        })()?;
        let Some(reason) = attempt else {
            return Ok(());
        };
        if std::time::Instant::now() >= deadline {
            bail!("could not enroll with {server} within {FIRST_ENROLLMENT_PATIENCE:?}: {reason}");
        }
        if reason != last_error {
            tracing::warn!(server, "not enrolled yet, retrying: {reason}");
            last_error = reason;
        }
        std::thread::sleep(Duration::from_secs(3));
    }
}

/// Did the server answer and say no for good (as opposed to not answering, or not yet)?
fn is_refusal(e: &anyhow::Error) -> bool {
    e.downcast_ref::<identity::EnrollmentRefused>()
        .is_some_and(identity::EnrollmentRefused::is_final)
}

/// `dozor-agent status`, written whole at the end: a reader that goes away early (`| head`)
/// ends the output quietly instead of a panic.
fn status(config: &AgentConfig, json: bool) -> Result<u8> {
    let mut out = String::new();
    let code = status_into(config, json, &mut out)?;
    match std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("writing the status")
        }
        _ => Ok(code),
    }
}

fn status_into(config: &AgentConfig, json: bool, out: &mut String) -> Result<u8> {
    macro_rules! say {
        ($($arg:tt)*) => {{
            use std::fmt::Write as _;
            let _ = writeln!(out, $($arg)*);
        }};
    }
    let identity = Identity::load(&config.identity_dir());
    let file = std::fs::read_to_string(config.status_file())
        .ok()
        .and_then(|t| serde_json::from_str::<StatusFile>(&t).ok());
    if json {
        say!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "enrolled": identity.is_ok(),
                "identity": identity.as_ref().ok().map(|i| &i.record),
                "status": file,
            }))?
        );
        return Ok(if identity.is_ok() { 0 } else { 1 });
    }
    let identity = match identity {
        Ok(i) => i,
        Err(e) => {
            say!("not enrolled: {e:#}");
            return Ok(1);
        }
    };
    let time = |ms: Option<i64>| {
        ms.and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_else(|| "-".to_owned())
    };
    say!("agent id        {}", identity.record.agent_id);
    say!("server          {}", identity.record.server);
    say!(
        "certificate     valid until {}",
        time(Some(identity.record.certificate_not_after))
    );
    let Some(s) = file else {
        say!("running         no status yet (the agent has not run)");
        return Ok(0);
    };
    let age = chrono::Utc::now().timestamp_millis() - s.updated_at;
    let running = !s.stopped && age < 10_000;
    say!(
        "running         {}",
        if running {
            format!("yes (pid {}, since {})", s.pid, time(Some(s.started_at)))
        } else {
            format!("no (last status {})", time(Some(s.updated_at)))
        }
    );
    say!(
        "events          collected {}, spooled {}, sent {}, rejected {}",
        s.events_collected,
        s.events_spooled,
        s.events_sent,
        s.events_rejected
    );
    say!(
        "spool           {} chunks waiting ({} bytes); dropped when full: {} chunks ({} bytes)",
        s.spool_records,
        s.spool_bytes,
        s.spool_dropped_records,
        s.spool_dropped_bytes
    );
    say!("last sent       {}", time(s.last_success_at));
    say!("last heartbeat  {}", time(s.last_heartbeat_at));
    if s.certificate_refused {
        say!("WARNING         the server refuses this agent's certificate (revoked?)");
    }
    if let Some(e) = &s.last_error {
        say!("last error      {e}");
    }
    if let Some(collectors) = s.collectors.as_object() {
        for (name, state) in collectors {
            say!(
                "collector       {name}: {}{}",
                state["state"].as_str().unwrap_or("?"),
                state["message"]
                    .as_str()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            );
        }
    }
    if let Some(scan) = s.scan.as_object() {
        let n = |k: &str| scan.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
        say!(
            "scanning        {} files ({} bytes), {} cache hits, {} skipped, {} dropped, {} detections, {} engine errors",
            n("scanned"),
            n("bytes"),
            n("cache_hits"),
            n("skipped"),
            n("dropped"),
            n("detections"),
            n("engine_errors")
        );
        say!(
            "scan time       busy {} ms, throttled {} ms, thread CPU {} ms; engines {}",
            n("busy_ms"),
            n("throttled_ms"),
            n("cpu_ms"),
            scan.get("rules")
                .and_then(|r| r.get("engines"))
                .map(serde_json::Value::to_string)
                .unwrap_or_default()
        );
    }
    Ok(0)
}
