//! `dozor`: the command-line entry point.

mod anomaly;
mod healthcheck;
mod hunt;
mod output;
mod remote;
mod rules;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

// Decoding and rule compilation allocate many small strings; mimalloc is markedly faster at
// that than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "dozor",
    version,
    about = "Dozor: self-hosted security monitoring",
    propagate_version = true
)]
struct Cli {
    /// Log level for diagnostics on stderr (error, warn, info, debug, trace).
    #[arg(long, global = true, env = "DOZOR_LOG", default_value = "warn")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Hunt through EVTX, Windows event XML and JSON logs with Sigma rules.
    ///
    /// Exit codes: 0 = finished, nothing detected; 1 = finished with detections;
    /// 2 = error (bad arguments, no usable rules, unreadable inputs with --strict).
    Hunt(hunt::HuntArgs),
    /// Run the server: HTTPS ingest, pipeline workers, storage and the REST API.
    ///
    /// Embedded default: SQLite in the data directory, an in-process queue, a CA and server
    /// certificate created on first start, and an admin API token printed once.
    Server(server::ServerCmd),
    /// Ask the server on this machine (or in this container) whether it is ready, the way a
    /// container health check does: same configuration as `dozor server`, loopback, the
    /// server's own certificate pinned.
    ///
    /// Exit codes: 0 = ready (or alive, with --live); 1 = anything else (no answer, not ready,
    /// a configuration that does not load, no certificate yet), as Docker's HEALTHCHECK
    /// expects.
    Healthcheck(healthcheck::HealthcheckArgs),
    /// Manage API and agent enrollment tokens in the server's store (run where the server's
    /// data is).
    Tokens {
        #[command(subcommand)]
        command: server::TokensCmd,
    },
    /// Manage operator accounts of the web dashboard in the server's store (run where the
    /// server's data is).
    Users {
        #[command(subcommand)]
        command: server::UsersCmd,
    },
    /// Convert EVTX / event XML / JSON logs into normalized (ECS-aligned) events, one JSON
    /// object per line on stdout — the shape `POST /api/v1/ingest` takes.
    Convert {
        /// Files or directories (recursively).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Work with Sigma rules: lint local files, or list, show, switch, reload and test the
    /// rules of a running server.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Search a running server's events (`--server`, `--token`, `--ca`; see `events search -h`).
    ///
    /// Exit codes: 0 = done; 2 = error (the server refused the request, could not be reached
    /// or verified, or bad arguments).
    Events {
        #[command(subcommand)]
        command: remote::EventsCmd,
    },
    /// Triage a running server's alerts: list, show, ack, resolve, assign, comment, watch.
    ///
    /// Exit codes: 0 = done; 2 = error (the server refused the request, could not be reached
    /// or verified, or bad arguments).
    Alerts {
        #[command(subcommand)]
        command: remote::AlertsCmd,
    },
    /// A running server's agents: list with status, show one, revoke, scan a path on one,
    /// list its commands.
    ///
    /// Exit codes: 0 = done; 2 = error (the server refused the request, could not be reached
    /// or verified, or bad arguments); `agents scan --wait`: 1 = done with detections.
    Agents {
        #[command(subcommand)]
        command: remote::AgentsCmd,
    },
    /// Response playbooks of a running server: list, show, enable/disable, run (or dry-run) on
    /// an alert or agent, follow runs, and the approvals inbox (approve, reject).
    ///
    /// Exit codes: 0 = done; 1 = `run --wait`: the run failed; 2 = error (the server refused
    /// the request, could not be reached or verified, or bad arguments).
    Playbooks {
        #[command(subcommand)]
        command: remote::PlaybooksCmd,
    },
    /// Threat intelligence of a running server: sources and syncs, search and add indicators,
    /// import a MISP / STIX / CSV / freetext file, export STIX or a MISP feed.
    ///
    /// Exit codes: 0 = done; 1 = `sync`: the sync failed; 2 = error (the server refused the
    /// request, could not be reached or verified, or bad arguments).
    Intel {
        #[command(subcommand)]
        command: remote::IntelCmd,
    },
    /// Vulnerabilities of a running server: list and show results (OpenVAS scans and agents'
    /// inventories), import an OpenVAS/GMP report, export JSON or CSV, accept a risk, mark a
    /// false positive, reopen.
    ///
    /// Exit codes: 0 = done; 2 = error (the server refused the request, could not be reached
    /// or verified, or bad arguments).
    Vulns {
        #[command(subcommand)]
        command: remote::VulnsCmd,
    },
    /// Incidents (cases) of a running server: list, show with the merged timeline, open from
    /// alerts, change status/owner/severity, add alerts, tasks, notes and observables, and
    /// the suggested groupings.
    ///
    /// Exit codes: 0 = done; 2 = error (the server refused the request, could not be reached
    /// or verified, or bad arguments).
    Incidents {
        #[command(subcommand)]
        command: remote::IncidentsCmd,
    },
    /// Saved event searches of a running server: list them, save one, re-run one, delete one.
    ///
    /// Exit codes: 0 = done; 2 = error (the server refused the request, could not be reached
    /// or verified, or bad arguments).
    Searches {
        #[command(subcommand)]
        command: remote::SearchesCmd,
    },
    /// Behavioural anomaly models on their own: train them from normalized events, score
    /// events with them, or serve them over HTTP on 127.0.0.1.
    Anomaly {
        #[command(subcommand)]
        command: anomaly::AnomalyCmd,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Load rules and report, per rule, whether it is active, unrouted, unsupported or invalid.
    ///
    /// Exit codes: 0 = every rule loads; 1 = some rules are invalid or unsupported; 2 = error.
    Lint(rules::LintArgs),
    #[command(flatten)]
    Remote(remote::RulesCmd),
}

/// Where rules come from and how they are routed; shared by `hunt` and `rules lint`.
#[derive(Args, Clone)]
pub struct RuleSource {
    /// Sigma rule files or directories (searched recursively for .yml/.yaml).
    #[arg(long = "rules", short = 'r', num_args = 1..)]
    pub rules: Vec<PathBuf>,
    /// Extra logsource mapping files, added to the built-in mapping.
    #[arg(long = "mapping")]
    pub mappings: Vec<PathBuf>,
    /// Replace the built-in mapping instead of extending it.
    #[arg(long)]
    pub no_default_mapping: bool,
    /// YAML file of placeholder values for the `expand` modifier (name: [values]).
    #[arg(long)]
    pub placeholders: Option<PathBuf>,
    /// Evaluate rules whose logsource has no mapping on every event.
    #[arg(long)]
    pub evaluate_unrouted: bool,
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum, Debug)]
pub enum OutputFormat {
    Table,
    Jsonl,
    Csv,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: logs redirected to a file stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Hunt(args) => hunt::run(args),
        Command::Server(cmd) => server::run(cmd),
        Command::Healthcheck(args) => healthcheck::run(args),
        Command::Convert { paths } => server::convert(&paths),
        Command::Tokens { command } => server::tokens(command),
        Command::Users { command } => server::users(command),
        Command::Rules {
            command: RulesCommand::Lint(args),
        } => rules::lint(args),
        Command::Rules {
            command: RulesCommand::Remote(cmd),
        } => remote::rules(cmd),
        Command::Events { command } => remote::events(command),
        Command::Alerts { command } => remote::alerts(command),
        Command::Agents { command } => remote::agents(command),
        Command::Playbooks { command } => remote::playbooks(command),
        Command::Intel { command } => remote::intel(command),
        Command::Vulns { command } => remote::vulns(command),
        Command::Incidents { command } => remote::incidents(command),
        Command::Searches { command } => remote::searches(command),
        Command::Anomaly { command } => anomaly::run(command),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
