//! `dozor server`, `dozor tokens`, `dozor users` and `dozor convert`: argument parsing around
//! the server library (`dozor_server::run` is the composition root).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use dozor_server::compose::store_config;
use dozor_server::ops;
use dozor_server::{Config, ServerArgs};
use dozor_store::NewToken;

#[derive(Args)]
pub struct ServerCmd {
    #[command(flatten)]
    pub args: ServerArgs,
    /// Print the configuration reference (every key with its default, environment variable
    /// and documentation, as a TOML file) and exit.
    #[arg(long)]
    pub print_config: bool,
}

pub fn run(cmd: ServerCmd) -> Result<u8> {
    if cmd.print_config {
        print!("{}", dozor_server::config::reference_toml());
        return Ok(0);
    }
    let config = Config::load(&cmd.args, std::env::vars()).context("configuration")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(dozor_server::run(config, dozor_server::shutdown_signal()))?;
    Ok(0)
}

/// Where the server's data is (tokens are managed directly in its store).
#[derive(Args, Clone)]
pub struct StoreArgs {
    /// The server's configuration file.
    #[arg(long, short = 'c', env = "DOZOR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The server's data directory.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl StoreArgs {
    fn server_args(&self) -> ServerArgs {
        ServerArgs {
            config: self.config.clone(),
            data_dir: self.data_dir.clone(),
            ..ServerArgs::default()
        }
    }
}

#[derive(Subcommand)]
pub enum TokensCmd {
    /// Create a token and print its secret once: an agent enrollment token (the default,
    /// `dze_…`, for `dozor-agent enroll`) or, with --role admin|analyst|viewer, an API token
    /// (`dzt_…`).
    Create {
        /// A name that says who or what uses it [default: enrollment, or the role].
        #[arg(long)]
        name: Option<String>,
        /// enroll (agent enrollment), admin, analyst or viewer.
        #[arg(long, default_value = "enroll")]
        role: String,
        /// Lifetime, e.g. 30m, 24h, 7d, or `never`. Enrollment tokens expire after 24h unless
        /// asked otherwise; API tokens never expire unless given one.
        #[arg(long, value_name = "LIFETIME|never")]
        expires: Option<String>,
        /// Enrollment tokens: how many agents may enroll with it, or `unlimited` [default: 1].
        #[arg(long, value_name = "N|unlimited")]
        uses: Option<String>,
        /// Enrollment tokens: an agent enrolling with it and `--replace` may revoke the agent
        /// already enrolled under this hostname (a reinstalled host), or under any hostname
        /// with `any`. Without it such an enrollment is refused (`duplicate-hostname`); each
        /// replacement raises a high alert.
        #[arg(long, value_name = "HOSTNAME|any")]
        may_replace: Option<String>,
        /// Enrollment tokens: write the secret to DIR/enroll-token (mode 0600; not printed) and the
        /// server's CA certificate to DIR/ca.crt.pem (the CA is created when the server has not
        /// started yet): what `dozor-agent run --enroll-server` reads on a container's first
        /// start.
        #[arg(long, value_name = "DIR")]
        agent_files: Option<PathBuf>,
        /// With --agent-files: do nothing when DIR/enroll-token already exists (a compose
        /// setup step that runs on every `up`).
        #[arg(long, requires = "agent_files")]
        if_missing: bool,
        #[command(flatten)]
        args: StoreArgs,
    },
    /// List tokens (never their secrets): ID, NAME, ROLE, EXPIRES and, for enrollment tokens,
    /// USES (used/allowed).
    List {
        #[command(flatten)]
        args: StoreArgs,
    },
    /// Revoke a token by id (an enrollment token with --enrollment).
    Revoke {
        id: i64,
        /// The id is an enrollment token's (role `enroll` in the list).
        #[arg(long)]
        enrollment: bool,
        #[command(flatten)]
        args: StoreArgs,
    },
}

fn parse_lifetime(s: &str) -> Result<i64> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = n
        .parse()
        .with_context(|| format!("'{s}': expected a number and a unit (s, m, h, d)"))?;
    let ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => bail!("'{s}': unit must be s, m, h or d"),
    };
    if n <= 0 {
        bail!("'{s}': the lifetime must be positive");
    }
    Ok(n * ms)
}

/// An enrollment token's lifetime when `--expires` is not given.
const ENROLLMENT_TOKEN_LIFETIME: &str = "24h";
/// An enrollment token's uses when `--uses` is not given.
const ENROLLMENT_TOKEN_USES: u32 = 1;

/// `--expires`: `Some(ms)` of lifetime, `None` for `never`.
fn parse_expires(s: &str) -> Result<Option<i64>> {
    if s.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    parse_lifetime(s).map(Some)
}

/// `--uses`: `Some(n)` (at least 1), `None` for `unlimited`.
fn parse_uses(s: &str) -> Result<Option<u32>> {
    if s.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    match s.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(Some(n)),
        _ => bail!("--uses '{s}': expected a whole number of at least 1, or `unlimited`"),
    }
}

fn expiry_text(at: Option<i64>) -> String {
    at.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| "never".to_owned())
}

/// The server address an agent enrolls with, as this server's configuration says: the
/// public URL when one is set, else the listening address — with a placeholder host when it
/// listens on every interface or only on loopback, which agents can't use.
fn enroll_address(config: &Config) -> String {
    let public = config.response.public_url.trim().trim_end_matches('/');
    if !public.is_empty() {
        return public.to_owned();
    }
    let ip = config.listen.ip();
    let port = config.listen.port();
    if ip.is_unspecified() || ip.is_loopback() {
        format!("https://THIS-SERVER:{port}")
    } else {
        format!("https://{}", config.listen)
    }
}

pub fn tokens(cmd: TokensCmd) -> Result<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let args = match &cmd {
            TokensCmd::Create { args, .. }
            | TokensCmd::List { args }
            | TokensCmd::Revoke { args, .. } => args,
        };
        let config =
            Config::load(&args.server_args(), std::env::vars()).context("configuration")?;
        let store = dozor_store::open(&store_config(&config))
            .await
            .context("opening the store")?;
        match cmd {
            TokensCmd::Create {
                name,
                role,
                expires,
                uses,
                may_replace,
                agent_files,
                if_missing,
                ..
            } => {
                let now = chrono::Utc::now().timestamp_millis();
                if let Some(dir) = &agent_files {
                    if role != "enroll" {
                        bail!("--agent-files applies to enrollment tokens (--role enroll) only");
                    }
                    if if_missing && dir.join(AGENT_TOKEN_FILE).exists() {
                        eprintln!(
                            "{} exists: no new token created",
                            dir.join(AGENT_TOKEN_FILE).display()
                        );
                        return Ok(0);
                    }
                }
                if role == "enroll" {
                    // Safe unless asked otherwise: one enrollment within a day.
                    let lifetime =
                        parse_expires(expires.as_deref().unwrap_or(ENROLLMENT_TOKEN_LIFETIME))?;
                    let max_uses = match uses.as_deref() {
                        Some(u) => parse_uses(u)?,
                        None => Some(ENROLLMENT_TOKEN_USES),
                    };
                    let may_replace = may_replace.map(|h| {
                        if h.eq_ignore_ascii_case("any") {
                            dozor_store::REPLACE_ANY_HOSTNAME.to_owned()
                        } else {
                            h
                        }
                    });
                    let created = store
                        .create_enrollment_token(&dozor_store::NewEnrollmentToken {
                            name: name.unwrap_or_else(|| "enrollment".to_owned()),
                            expires_at: lifetime.map(|ms| now + ms),
                            max_uses,
                            created_by: format!("cli:{}", whoami()),
                            may_replace: may_replace.clone(),
                        })
                        .await?;
                    // Written to a file for agents, the secret stays out of the (container) log.
                    match &agent_files {
                        Some(dir) => write_agent_files(&config, dir, &created.secret)?,
                        None => println!("{}", created.secret),
                    }
                    let fingerprint = ca_fingerprint(&config)
                        .unwrap_or_else(|| "<printed by dozor server at its first start>".into());
                    eprintln!(
                        "enrollment token {} created (expires: {}, uses: {}{}); the secret above is not shown again.\n\
                         On each host, pinning the server's CA (SHA-256 {fingerprint}):\n  \
                         dozor-agent enroll --server {} --token <secret> --ca-sha256 {fingerprint}",
                        created.info.id,
                        expiry_text(created.info.expires_at),
                        max_uses.map_or("unlimited".to_owned(), |u| u.to_string()),
                        match may_replace.as_deref() {
                            None => String::new(),
                            Some(dozor_store::REPLACE_ANY_HOSTNAME) => {
                                ", may replace an agent of any hostname".to_owned()
                            }
                            Some(host) => format!(", may replace the agent enrolled as {host}"),
                        },
                        enroll_address(&config),
                    );
                } else {
                    if uses.is_some() || may_replace.is_some() {
                        bail!(
                            "--uses and --may-replace apply to enrollment tokens (--role enroll) only"
                        );
                    }
                    let expires_at = expires
                        .as_deref()
                        .map(parse_expires)
                        .transpose()?
                        .flatten()
                        .map(|ms| now + ms);
                    let role: dozor_store::Role =
                        role.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
                    if role == dozor_store::Role::AgentIngest {
                        bail!(
                            "agent-ingest tokens are no longer accepted: agents enroll with an enrollment token (dozor tokens create) and send events with their client certificate"
                        );
                    }
                    let created = store
                        .create_token(&NewToken {
                            name: name.unwrap_or_else(|| role.as_str().to_owned()),
                            role,
                            expires_at,
                            owner: None,
                        })
                        .await?;
                    println!("{}", created.secret);
                    eprintln!(
                        "token {} ({}) created; the secret above is not shown again",
                        created.info.id,
                        created.info.role.as_str()
                    );
                }
            }
            TokensCmd::List { .. } => {
                for t in store.list_tokens().await? {
                    println!(
                        "{}\t{}\t{}\t{}{}",
                        t.id,
                        t.name,
                        t.role.as_str(),
                        expiry_text(t.expires_at),
                        if t.revoked_at.is_some() { "\trevoked" } else { "" }
                    );
                }
                for t in store.list_enrollment_tokens().await? {
                    println!(
                        "{}\t{}\tenroll\t{}\t{}/{}{}",
                        t.id,
                        t.name,
                        expiry_text(t.expires_at),
                        t.uses,
                        t.max_uses.map_or("unlimited".to_owned(), |m| m.to_string()),
                        if t.revoked_at.is_some() { "\trevoked" } else { "" }
                    );
                }
            }
            TokensCmd::Revoke { id, enrollment, .. } => {
                let revoked = if enrollment {
                    store.revoke_enrollment_token(id).await?
                } else {
                    store.revoke_token(id).await?
                };
                if !revoked {
                    bail!(
                        "no {}token with id {id}",
                        if enrollment { "enrollment " } else { "" }
                    );
                }
                eprintln!("token {id} revoked");
            }
        }
        store.close().await;
        Ok(0)
    })
}

#[derive(Subcommand)]
pub enum UsersCmd {
    /// Create an operator account; prints a generated password once (or reads one from
    /// standard input with --password-stdin).
    Create {
        /// User name (letters, digits, `.`, `_`, `-`, `@`).
        name: String,
        /// admin, analyst or viewer.
        #[arg(long, default_value = "analyst")]
        role: String,
        /// Read the password (at least 12 characters) from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Interface language: en or ru (default: the browser's).
        #[arg(long)]
        language: Option<String>,
        #[command(flatten)]
        args: StoreArgs,
    },
    /// List operator accounts.
    List {
        #[command(flatten)]
        args: StoreArgs,
    },
    /// Change a user's role.
    SetRole {
        name: String,
        role: String,
        #[command(flatten)]
        args: StoreArgs,
    },
    /// Disable an account (its sessions end and its API tokens stop working).
    Disable {
        name: String,
        #[command(flatten)]
        args: StoreArgs,
    },
    /// Enable a disabled account.
    Enable {
        name: String,
        #[command(flatten)]
        args: StoreArgs,
    },
    /// Set a new generated password (printed once; or --password-stdin); ends the user's
    /// sessions.
    ResetPassword {
        name: String,
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        args: StoreArgs,
    },
}

/// A password read from standard input (the trailing newline removed).
fn read_password() -> Result<String> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
        .context("reading the password from standard input")?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

pub fn users(cmd: UsersCmd) -> Result<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let args = match &cmd {
            UsersCmd::Create { args, .. }
            | UsersCmd::List { args }
            | UsersCmd::SetRole { args, .. }
            | UsersCmd::Disable { args, .. }
            | UsersCmd::Enable { args, .. }
            | UsersCmd::ResetPassword { args, .. } => args,
        };
        let config =
            Config::load(&args.server_args(), std::env::vars()).context("configuration")?;
        let store = dozor_store::open(&store_config(&config))
            .await
            .context("opening the store")?;
        let actor = format!("cli:{}", whoami());
        let store_ref = store.as_ref();
        let find = |name: String| async move {
            match store_ref.find_user(&name).await? {
                Some((user, _)) => Ok::<_, anyhow::Error>(user),
                None => Err(anyhow::anyhow!("no user named {name:?}")),
            }
        };
        match cmd {
            UsersCmd::Create {
                name,
                role,
                password_stdin,
                language,
                ..
            } => {
                let role = ops::users::operator_role(&role)?;
                let password = password_stdin.then(read_password).transpose()?;
                let (user, generated) =
                    ops::users::create(store_ref, &actor, &name, role, password, language).await?;
                if let Some(password) = &generated {
                    println!("{password}");
                }
                eprintln!(
                    "user {} ({}) created{}",
                    user.username,
                    role.as_str(),
                    if generated.is_some() {
                        "; the password above is not shown again"
                    } else {
                        ""
                    }
                );
            }
            UsersCmd::List { .. } => {
                for u in store.list_users().await? {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        u.id,
                        u.username,
                        u.role.as_str(),
                        u.language.as_deref().unwrap_or("auto"),
                        if u.disabled_at.is_some() {
                            "disabled"
                        } else {
                            "enabled"
                        }
                    );
                }
            }
            UsersCmd::SetRole { name, role, .. } => {
                let role = ops::users::operator_role(&role)?;
                let user = find(name).await?;
                ops::users::set_role(store_ref, &actor, None, user.id, role).await?;
                eprintln!("{} is now {}", user.username, role.as_str());
            }
            UsersCmd::Disable { name, .. } => {
                let user = find(name).await?;
                ops::users::set_disabled(store_ref, &actor, None, user.id, true).await?;
                eprintln!(
                    "{} is disabled: sessions ended, API tokens refused",
                    user.username
                );
            }
            UsersCmd::Enable { name, .. } => {
                let user = find(name).await?;
                ops::users::set_disabled(store_ref, &actor, None, user.id, false).await?;
                eprintln!("{} is enabled", user.username);
            }
            UsersCmd::ResetPassword {
                name,
                password_stdin,
                ..
            } => {
                let user = find(name).await?;
                let password = password_stdin.then(read_password).transpose()?;
                let (_, generated) =
                    ops::users::reset_password(store_ref, &actor, user.id, password).await?;
                if let Some(password) = generated {
                    println!("{password}");
                }
                eprintln!(
                    "the password of {} was changed; their sessions ended",
                    user.username
                );
            }
        }
        store.close().await;
        Ok(0)
    })
}

fn whoami() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Where `tokens create --agent-files DIR` puts the secret.
const AGENT_TOKEN_FILE: &str = "enroll-token";

/// Writes DIR/ca.crt.pem and DIR/enroll-token (0600), each atomically, so an agent waiting for
/// them never reads half a file.
fn write_agent_files(config: &Config, dir: &std::path::Path, secret: &str) -> Result<()> {
    use dozor_server::pki;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca =
        pki::CertificateAuthority::load_or_create(&config.pki_dir()).context("the server's CA")?;
    // The CA first: an agent starts enrolling once the token is there.
    let ca_file = dir.join(pki::CA_CERT_FILE);
    pki::write_public(&ca_file, ca.cert_pem())?;
    eprintln!("wrote {}", ca_file.display());
    let token_file = dir.join(AGENT_TOKEN_FILE);
    pki::replace_private(&token_file, &format!("{secret}\n"))?;
    eprintln!("wrote {}", token_file.display());
    Ok(())
}

/// SHA-256 of the built-in CA certificate (DER), for agents to pin at enrollment.
fn ca_fingerprint(config: &Config) -> Option<String> {
    let pem = std::fs::read_to_string(config.pki_dir().join("ca.crt.pem")).ok()?;
    dozor_server::digest::pem_certificate_sha256(&pem)
}

/// `dozor convert`: decoded records as normalized events on stdout (NDJSON).
pub fn convert(paths: &[PathBuf]) -> Result<u8> {
    use std::io::Write;
    let files = crate::rules::input_files(paths)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut written, mut errors) = (0u64, 0u64);
    for file in files {
        let events = match dozor_decode::read_path(&file, &dozor_decode::ReadOptions::default()) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("warning: {e}");
                errors += 1;
                continue;
            }
        };
        for item in events {
            match item
                .map_err(|e| e.to_string())
                .and_then(|flat| dozor_server::winlog::to_event(&flat))
            {
                Ok(event) => {
                    serde_json::to_writer(&mut out, &event)?;
                    out.write_all(b"\n")?;
                    written += 1;
                }
                Err(e) => {
                    eprintln!("warning: {}: {e}", file.display());
                    errors += 1;
                }
            }
        }
    }
    out.flush()?;
    eprintln!("{written} events written, {errors} errors");
    Ok(if errors > 0 { 1 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dozor tokens create` printed `:8443` whatever the server listened on.
    #[test]
    fn the_enrollment_hint_uses_the_configured_address() {
        let mut config = Config::defaults();
        config.listen = "0.0.0.0:9443".parse().unwrap();
        assert_eq!(enroll_address(&config), "https://THIS-SERVER:9443");
        config.listen = "10.1.2.3:7443".parse().unwrap();
        assert_eq!(enroll_address(&config), "https://10.1.2.3:7443");
        config.response.public_url = "https://dozor.example.org/".into();
        assert_eq!(enroll_address(&config), "https://dozor.example.org");
    }
}
