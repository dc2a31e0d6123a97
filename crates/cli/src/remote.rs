//! `dozor events`, `dozor alerts` and the remote `dozor rules` commands: a client of a running
//! server's REST API (`/api/v1`, see `crates/server/README.md`).
//!
//! Where the server is, which token to send and which CA to trust come from the command line,
//! then `DOZOR_SERVER` / `DOZOR_TOKEN` / `DOZOR_CA`, then `~/.config/dozor/cli.toml`. An
//! `https` server's certificate is always verified: against the pinned `--ca`, or (not on
//! loopback) the system's CA bundle; only an explicit `--insecure` skips that, with a warning.
//! Output is a table (times in RFC 3339, UTC) or the API's JSON, pretty-printed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use dozor_model::api::{
    AgentList, AgentView, AlertDetail, AlertNotice, AssigneeRequest, CommandList, CommandRequest,
    CommandView, Comment, CommentRequest, RevokeRequest, SCAN_PATH, ScanPathArgs, StatusRequest,
};
use dozor_model::{
    AgentStatus, Alert, AlertChange, AlertPage, AlertStatus, CommandStatus, EventPage, Level,
    StoredEvent,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// Where the CLI looks for a server when nothing says otherwise.
pub const DEFAULT_SERVER: &str = "https://127.0.0.1:8443";

/// The exit codes of the remote commands, shown in their `--help`.
pub const EXIT_CODES: &str = "Exit codes: 0 = done; 2 = error: the server refused the request \
(shown as `error: <title>: <detail>`; 401 = the token is not valid, 403 = its role is too low), \
the server could not be reached or its certificate not verified, or bad arguments.";

/// Largest successful answer read (an event page of 1000 large documents fits).
const MAX_ANSWER: u64 = 512 * 1024 * 1024;
/// Largest error answer read.
const MAX_PROBLEM: u64 = 1024 * 1024;
/// A silent connection is given up after this long (the alert stream sends a keep-alive every
/// 15 s, so three of them missed).
const STREAM_IDLE: Duration = Duration::from_secs(45);
/// Longest wait for one read of an ordinary answer (a rule test over 10,000 events is slow).
const READ_TIMEOUT: Duration = Duration::from_secs(300);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

// ------------------------------------------------------------------ connection options

/// How to reach the server; every remote command takes these.
#[derive(Args, Clone, Debug)]
pub struct Remote {
    /// Server URL [default: https://127.0.0.1:8443, or `server` in ~/.config/dozor/cli.toml].
    #[arg(long, env = "DOZOR_SERVER", value_name = "URL")]
    server: Option<String>,
    /// API token (`dzt_…`; the first admin token is printed when the server first starts,
    /// `dozor tokens create` makes more).
    #[arg(
        long,
        env = "DOZOR_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// PEM file of the CA to trust (pinned) for an https server: its built-in CA, fetched with
    /// `curl -k URL/api/v1/ca.pem > ca.pem`, or the CA that issued its certificate.
    #[arg(long, env = "DOZOR_CA", value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Do not verify the server's certificate (a warning is printed; prefer --ca).
    #[arg(long)]
    insecure: bool,
    /// Output: table (aligned columns, times in RFC 3339 UTC) or json (the API's answer).
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum, Debug)]
pub enum Format {
    Table,
    Json,
}

/// `~/.config/dozor/cli.toml`: defaults for the connection options.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    server: Option<String>,
    token: Option<String>,
    /// Relative paths are read from the config file's directory.
    ca: Option<PathBuf>,
}

fn config_path() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".config"),
    };
    Some(base.join("dozor").join("cli.toml"))
}

fn load_file_config() -> Result<FileConfig> {
    let Some(path) = config_path() else {
        return Ok(FileConfig::default());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileConfig::default()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut config: FileConfig =
        toml::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
    if let Some(ca) = &config.ca
        && ca.is_relative()
        && let Some(dir) = path.parent()
    {
        config.ca = Some(dir.join(ca));
    }
    #[cfg(unix)]
    if config.token.is_some() {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(&path)
            && meta.permissions().mode() & 0o077 != 0
        {
            eprintln!(
                "warning: {} holds an API token and others may read it: chmod 600 it",
                path.display()
            );
        }
    }
    Ok(config)
}

/// A connection to one server.
struct Client {
    agent: ureq::Agent,
    base: String,
    token: String,
    format: Format,
    /// What the server's certificate is checked against, for error messages.
    trust: Trust,
}

enum Trust {
    PlainHttp,
    Pinned(PathBuf),
    System(PathBuf),
    Nothing,
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

/// The host of `scheme://host[:port][/path]`, without brackets.
fn url_host(rest: &str) -> &str {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    authority.split(':').next().unwrap_or("")
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The CA bundle of the system, for servers whose certificate a public or company CA issued.
fn system_bundle() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

fn read_certificates(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let pem =
        std::fs::read(path).with_context(|| format!("reading the CA file {}", path.display()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => bail!("reading the CA file {}: {e}", path.display()),
        }
    }
    if certs.is_empty() {
        bail!(
            "the CA file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        );
    }
    Ok(certs)
}

impl Client {
    fn connect(remote: &Remote, streaming: bool) -> Result<Client> {
        let (mut server, mut token, mut ca) = (
            nonempty(remote.server.clone()),
            nonempty(remote.token.clone()),
            remote.ca.clone(),
        );
        if server.is_none() || token.is_none() || ca.is_none() {
            let file = load_file_config()?;
            server = server.or(nonempty(file.server));
            token = token.or(nonempty(file.token));
            ca = ca.or(file.ca);
        }
        let base = server
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned())
            .trim()
            .trim_end_matches('/')
            .to_owned();
        let (https, rest) = if let Some(rest) = base.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = base.strip_prefix("http://") {
            (false, rest)
        } else {
            bail!("--server must be an http:// or https:// URL, got {base:?}");
        };
        let host = url_host(rest).to_owned();
        if host.is_empty() {
            bail!("--server {base:?} names no host");
        }
        let Some(token) = token else {
            bail!(
                "no API token: pass --token or set DOZOR_TOKEN (the server prints the first admin \
                 token when it first starts; `dozor tokens create` makes more)"
            );
        };

        let mut tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()));
        let trust = if !https {
            if !is_loopback(&host) {
                eprintln!(
                    "warning: {base} is plain HTTP: the token and everything else cross the \
                     network unencrypted"
                );
            }
            Trust::PlainHttp
        } else if let Some(ca) = ca {
            if remote.insecure {
                eprintln!(
                    "warning: --insecure ignored: the certificate is verified with {}",
                    ca.display()
                );
            }
            let certs = read_certificates(&ca)?;
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
            Trust::Pinned(ca)
        } else if remote.insecure {
            eprintln!(
                "warning: --insecure: the server's certificate is NOT verified; anyone on the way \
                 can read the token and change answers. Pin its CA with --ca instead"
            );
            tls = tls.disable_verification(true);
            Trust::Nothing
        } else if is_loopback(&host) {
            bail!(
                "no CA to verify {base} with: the server's certificate comes from its own CA. \
                 Fetch it with `curl -k {base}/api/v1/ca.pem > ca.pem` (check it, e.g. against \
                 pki/ca.crt.pem in the server's data directory) and pass --ca ca.pem or set \
                 DOZOR_CA"
            );
        } else if let Some(bundle) = system_bundle() {
            let certs = read_certificates(&bundle)?;
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
            Trust::System(bundle)
        } else {
            bail!(
                "no CA to verify {base} with and no system CA bundle: pass the CA that issued \
                 its certificate with --ca (for the built-in CA: `curl -k {base}/api/v1/ca.pem \
                 > ca.pem`, check it, then --ca ca.pem)"
            );
        };

        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls.build())
            .user_agent(concat!("dozor-cli/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(CONNECT_TIMEOUT));
        config = if streaming {
            config.timeout_per_read(Some(STREAM_IDLE))
        } else {
            config.timeout_per_read(Some(READ_TIMEOUT))
        };
        Ok(Client {
            agent: config.build().new_agent(),
            base,
            token,
            format: remote.format,
            trust,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn get_response(
        &self,
        path: &str,
        query: &[(&str, String)],
        accept: &str,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let mut request = self
            .agent
            .get(self.url(path))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Accept", accept);
        for (k, v) in query {
            request = request.query(k, v);
        }
        request.call().map_err(|e| self.transport_error(e))
    }

    fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value> {
        let response = self.get_response(path, query, "application/json")?;
        self.answer(response)
    }

    fn post(&self, path: &str, body: &impl Serialize) -> Result<Value> {
        let response = self
            .agent
            .post(self.url(path))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Accept", "application/json")
            .content_type("application/json")
            .send(serde_json::to_vec(body)?)
            .map_err(|e| self.transport_error(e))?;
        self.answer(response)
    }

    fn patch(&self, path: &str, body: &impl Serialize) -> Result<Value> {
        let response = self
            .agent
            .patch(self.url(path))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Accept", "application/json")
            .content_type("application/json")
            .send(serde_json::to_vec(body)?)
            .map_err(|e| self.transport_error(e))?;
        self.answer(response)
    }

    fn delete(&self, path: &str) -> Result<Value> {
        let response = self
            .agent
            .delete(self.url(path))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Accept", "application/json")
            .call()
            .map_err(|e| self.transport_error(e))?;
        self.answer(response)
    }

    /// A listing of `key` items; with `all`, every page after the first too, merged into one
    /// document (`next_cursor` null).
    fn list(
        &self,
        path: &str,
        mut query: Vec<(&'static str, String)>,
        key: &str,
        all: bool,
    ) -> Result<Value> {
        let mut page = self.get(path, &query)?;
        if !all {
            return Ok(page);
        }
        let mut items = take_array(&mut page, key);
        let mut last: Option<String> = None;
        while let Some(cursor) = page.get("next_cursor").and_then(Value::as_str) {
            if last.as_deref() == Some(cursor) {
                bail!("the server answered the same cursor twice");
            }
            let cursor = cursor.to_owned();
            query.retain(|(k, _)| *k != "cursor");
            query.push(("cursor", cursor.clone()));
            last = Some(cursor);
            page = self.get(path, &query)?;
            items.extend(take_array(&mut page, key));
        }
        let mut out = Map::new();
        out.insert(key.to_owned(), Value::Array(items));
        out.insert("next_cursor".to_owned(), Value::Null);
        Ok(Value::Object(out))
    }

    /// A successful answer's JSON, or the problem it reports as an error.
    fn answer(&self, mut response: ureq::http::Response<ureq::Body>) -> Result<Value> {
        let status = response.status();
        let limit = if status.is_success() {
            MAX_ANSWER
        } else {
            MAX_PROBLEM
        };
        let text = response
            .body_mut()
            .with_config()
            .limit(limit)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(|e| self.transport_error(e))?;
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text)
                .with_context(|| format!("the answer of {} is not JSON", self.base));
        }
        Err(anyhow!(problem_message(
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            &text
        )))
    }

    fn transport_error(&self, e: ureq::Error) -> anyhow::Error {
        let base = &self.base;
        match e {
            ureq::Error::Rustls(tls) => self.tls_error(&tls),
            ureq::Error::Io(io) => {
                if let Some(tls) = io
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                {
                    return self.tls_error(tls);
                }
                match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => anyhow!(
                        "cannot connect to {base}: connection refused (is the server running \
                         there? set --server or DOZOR_SERVER)"
                    ),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                        anyhow!("{base} did not answer in time")
                    }
                    _ if matches!(self.trust, Trust::PlainHttp) => anyhow!(
                        "talking to {base}: {io} (is it an https:// server? the server speaks \
                         HTTPS unless started with --insecure-plain-http)"
                    ),
                    _ => anyhow!("talking to {base}: {io}"),
                }
            }
            ureq::Error::HostNotFound => anyhow!("cannot connect to {base}: host not found"),
            ureq::Error::Timeout(t) => anyhow!("{base} did not answer in time ({t})"),
            ureq::Error::Protocol(p) if matches!(self.trust, Trust::PlainHttp) => anyhow!(
                "talking to {base}: {p} (is it an https:// server? the server speaks HTTPS \
                 unless started with --insecure-plain-http)"
            ),
            other => anyhow!("talking to {base}: {other}"),
        }
    }

    fn tls_error(&self, e: &rustls::Error) -> anyhow::Error {
        use rustls::CertificateError as C;
        let base = &self.base;
        let trusted = match &self.trust {
            Trust::Pinned(p) => format!("the CA in {}", p.display()),
            Trust::System(p) => format!("a CA of the system bundle {}", p.display()),
            Trust::PlainHttp | Trust::Nothing => "a trusted CA".to_owned(),
        };
        let fetch = format!(
            "for a server with its built-in CA, fetch that CA with `curl -k {base}/api/v1/ca.pem > \
             ca.pem`, check it, and pass --ca ca.pem"
        );
        match e {
            rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
                anyhow!("TLS: the certificate of {base} was not issued by {trusted}; {fetch}")
            }
            rustls::Error::InvalidCertificate(
                C::NotValidForName | C::NotValidForNameContext { .. },
            ) => {
                anyhow!(
                    "TLS: the certificate of {base} is not valid for that host name: connect by a \
                     name it has, or add the name to the server's tls.hostnames \
                     (DOZOR_TLS_HOSTNAMES)"
                )
            }
            rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
                anyhow!("TLS: the certificate of {base} has expired")
            }
            other => anyhow!("TLS with {base} failed: {other}"),
        }
    }
}

fn take_array(page: &mut Value, key: &str) -> Vec<Value> {
    match page.get_mut(key).map(Value::take) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    }
}

/// `<title>: <detail>` of a problem document (RFC 9457), with a hint for 401 and 403; the
/// status line and the start of the body for anything else.
fn problem_message(status: u16, reason: &str, body: &str) -> String {
    let problem: Option<Value> = serde_json::from_str::<Value>(body)
        .ok()
        .filter(|v| v.get("title").is_some_and(Value::is_string));
    let mut message = match problem {
        Some(p) => {
            let title = clean(p["title"].as_str().unwrap_or_default());
            let mut m = match p.get("detail").and_then(Value::as_str) {
                Some(detail) => format!("{title}: {}", clean(detail)),
                None => title,
            };
            let slug = p
                .get("type")
                .and_then(Value::as_str)
                .and_then(|t| t.strip_prefix("urn:dozor:problem:"))
                .unwrap_or_default();
            if slug == "invalid-transition"
                && let Some(allowed) = p.get("allowed").and_then(Value::as_array)
            {
                let to: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
                m.push_str(&format!(
                    " (from {} it may go to: {})",
                    clean(p["from"].as_str().unwrap_or("there")),
                    if to.is_empty() {
                        "nothing".to_owned()
                    } else {
                        clean(&to.join(", "))
                    }
                ));
            }
            if let Some(after) = p.get("retry_after").and_then(Value::as_u64) {
                m.push_str(&format!(" (retry after {after} s)"));
            }
            m
        }
        None => {
            let start: String = clean(body.trim()).chars().take(200).collect();
            if start.is_empty() {
                format!("HTTP {status} {reason}")
            } else {
                format!("HTTP {status} {reason}: {start}")
            }
        }
    };
    match status {
        401 => message.push_str(
            "\nhint: the server did not accept the API token: pass a valid one with --token or \
             DOZOR_TOKEN (`dozor tokens create` makes one; revoked and expired tokens are refused)",
        ),
        403 => message.push_str(
            "\nhint: the token's role does not allow this: a viewer token reads; an analyst token \
             also triages alerts, tests rules and asks agents to scan; an admin token also enables, disables and \
             reloads rules",
        ),
        _ => {}
    }
    message
}

// ------------------------------------------------------------------ output helpers

/// Text from the server made safe for a terminal: control characters (escape sequences,
/// carriage returns) and bidirectional overrides are shown escaped.
fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Like [`clean`] but keeps line breaks and tabs (for YAML and other blocks of text).
fn clean_block(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\n' | '\t' => c.to_string(),
            c if is_unsafe_char(c) || c == '\r' => format!("\\u{{{:x}}}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn truncate(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        return s;
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// Milliseconds since the epoch (in a JSON value) as RFC 3339 UTC (`-` when absent).
fn time(v: Option<&Value>) -> String {
    time_ms(v.and_then(Value::as_i64))
}

/// Milliseconds since the epoch as RFC 3339 UTC (`-` when absent).
fn time_ms(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| "-".to_owned())
}

/// A scalar (or a list of scalars) as text; `-` when absent or null.
fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) if s.is_empty() => "-".to_owned(),
        Some(Value::String(s)) => clean(s),
        Some(Value::Array(items)) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            let parts: Vec<String> = items.iter().map(|i| text(Some(i))).collect();
            if parts.is_empty() {
                "-".to_owned()
            } else {
                parts.join(", ")
            }
        }
        Some(other @ (Value::Array(_) | Value::Object(_))) => clean(&other.to_string()),
        Some(other) => other.to_string(),
    }
}

/// A field of a typed answer as a table cell, shown as [`text`] shows its JSON: `-` when
/// absent or empty, lists joined with commas, text made safe for the terminal.
trait Cell {
    fn cell(&self) -> String;
}

impl Cell for str {
    fn cell(&self) -> String {
        if self.is_empty() {
            "-".to_owned()
        } else {
            clean(self)
        }
    }
}

impl Cell for String {
    fn cell(&self) -> String {
        self.as_str().cell()
    }
}

impl<T: Cell> Cell for Option<T> {
    fn cell(&self) -> String {
        self.as_ref().map_or_else(|| "-".to_owned(), Cell::cell)
    }
}

impl<T: Cell> Cell for Vec<T> {
    fn cell(&self) -> String {
        if self.is_empty() {
            "-".to_owned()
        } else {
            self.iter().map(Cell::cell).collect::<Vec<_>>().join(", ")
        }
    }
}

/// Numbers and the model's names (which are never empty and need no cleaning).
macro_rules! shown_as_is {
    ($($t:ty),*) => {$(
        impl Cell for $t {
            fn cell(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
shown_as_is!(
    i64,
    u32,
    usize,
    uuid::Uuid,
    Level,
    AlertStatus,
    AlertChange,
    AgentStatus,
    CommandStatus
);

/// A successful answer read as the model's type `T` (`what` names it for the error). The
/// JSON output prints the answer as it came instead, so no field the server sends is lost.
fn read<T: DeserializeOwned>(answer: &Value, what: &str) -> Result<T> {
    T::deserialize(answer).with_context(|| format!("the server's answer is not {what}"))
}

/// A percentage with one decimal (`12.7 %`), `-` when absent.
fn percent(v: Option<&Value>) -> String {
    match v.and_then(Value::as_f64) {
        Some(p) => format!("{p:.1} %"),
        None => "-".to_owned(),
    }
}

/// A size in bytes, KiB, MiB or GiB with one decimal.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `1.2 GiB of 7.7 GiB (15.6 %)`, or what of it is known.
fn used_of_total(used: Option<&Value>, total: Option<&Value>) -> String {
    match (used.and_then(Value::as_u64), total.and_then(Value::as_u64)) {
        (Some(used), Some(total)) if total > 0 => format!(
            "{} of {} ({:.1} %)",
            human_bytes(used),
            human_bytes(total),
            used as f64 * 100.0 / total as f64
        ),
        (Some(used), _) => human_bytes(used),
        _ => "-".to_owned(),
    }
}

/// `12 records (3.4 KiB)`.
fn count_and_bytes(count: Option<&Value>, bytes: Option<&Value>) -> String {
    match (count.and_then(Value::as_u64), bytes.and_then(Value::as_u64)) {
        (Some(count), Some(bytes)) => format!("{count} records ({})", human_bytes(bytes)),
        (Some(count), None) => format!("{count} records"),
        _ => "-".to_owned(),
    }
}

/// The value at a dotted path of a document.
fn at<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(doc, |v, key| v.get(key))
        .filter(|v| !v.is_null())
}

/// Aligned columns, two spaces apart; the last column is not padded.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `key  value` lines, keys aligned.
fn key_values(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        out.push_str(&format!("{k:<width$}  {v}\n"));
    }
    out
}

/// Writes to stdout; a closed pipe (`| head`) ends the output quietly.
fn emit(s: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing output"),
        _ => Ok(()),
    }
}

fn emit_json(v: &Value) -> Result<()> {
    let mut s = serde_json::to_string_pretty(v)?;
    s.push('\n');
    emit(&s)
}

// ------------------------------------------------------------------ events

#[derive(Subcommand)]
pub enum EventsCmd {
    /// Search stored events, newest first, with the query language
    /// (`process.name:whoami.exe AND NOT user.name:SYSTEM`; see crates/store/README.md).
    #[command(after_help = EXIT_CODES)]
    Search(SearchArgs),
    /// Show one event: its fields in table format, the stored event in JSON.
    #[command(after_help = EXIT_CODES)]
    Get {
        /// The event's id (`event.id`, a UUID).
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Export the matching events as CSV (default) or NDJSON, streamed from the server a page
    /// at a time, newest first, at most --limit rows (a last line says when more matched).
    #[command(after_help = EXIT_CODES)]
    Export(searches::ExportArgs),
}

#[derive(Args)]
pub struct SearchArgs {
    /// The query (words are joined with spaces; quote it for the shell). Empty: every event.
    #[arg(value_name = "QUERY")]
    query: Vec<String>,
    /// Events at or after this time: RFC 3339, milliseconds, `now` or `now-15m`, `now-7d`.
    #[arg(long, value_name = "T")]
    from: Option<String>,
    /// Events before this time (the same forms as --from).
    #[arg(long, value_name = "T")]
    to: Option<String>,
    /// Only events sent by this agent.
    #[arg(long, value_name = "A")]
    agent: Option<String>,
    /// Events per page, 1-1000 [default: 100; 1000 with --all].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    limit: Option<u32>,
    /// Follow the cursors and return every matching event (one document in JSON).
    #[arg(long)]
    all: bool,
    /// Start at this `next_cursor` of an earlier page.
    #[arg(long, conflicts_with = "all")]
    cursor: Option<String>,
    #[command(flatten)]
    remote: Remote,
}

fn push(query: &mut Vec<(&'static str, String)>, key: &'static str, value: Option<String>) {
    if let Some(v) = value {
        query.push((key, v));
    }
}

pub fn events(cmd: EventsCmd) -> Result<u8> {
    match cmd {
        EventsCmd::Search(args) => search(args),
        EventsCmd::Export(args) => searches::export(args),
        EventsCmd::Get { id, remote } => {
            let client = Client::connect(&remote, false)?;
            let event = client.get(&format!("/api/v1/events/{}", segment(&id)), &[])?;
            match client.format {
                Format::Json => emit_json(&event)?,
                Format::Table => emit(&event_detail(&read(&event, "an event")?))?,
            }
            Ok(0)
        }
    }
}

fn search(args: SearchArgs) -> Result<u8> {
    let client = Client::connect(&args.remote, false)?;
    let mut query = Vec::new();
    let q = args.query.join(" ");
    if !q.trim().is_empty() {
        query.push(("q", q));
    }
    push(&mut query, "from", args.from);
    push(&mut query, "to", args.to);
    push(&mut query, "agent", args.agent);
    let limit = args.limit.or(args.all.then_some(1000));
    push(&mut query, "limit", limit.map(|l| l.to_string()));
    push(&mut query, "cursor", args.cursor);
    let page = client.list("/api/v1/events", query, "events", args.all)?;
    match client.format {
        Format::Json => emit_json(&page)?,
        Format::Table => {
            let page: EventPage = read(&page, "a page of events")?;
            if page.events.is_empty() {
                eprintln!("no events match");
            } else {
                emit(&events_table(&page.events))?;
            }
            if let Some(cursor) = &page.next_cursor {
                eprintln!(
                    "{} events shown; there are more: --all reads every page, --cursor {cursor} \
                     the next one",
                    page.events.len()
                );
            }
        }
    }
    Ok(0)
}

/// One line about an event: what happened, from the fields most events have.
fn event_summary(doc: &Value) -> String {
    const FIELDS: [&str; 9] = [
        "message",
        "process.command_line",
        "process.executable",
        "file.path",
        "dns.question.name",
        "registry.path",
        "url.full",
        "event.action",
        "winlog.provider_name",
    ];
    let s = FIELDS
        .iter()
        .find_map(|f| at(doc, f).map(|v| text(Some(v))))
        .unwrap_or_else(|| "-".to_owned());
    truncate(s, 120)
}

fn events_table(events: &[StoredEvent]) -> String {
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            let doc = &e.doc;
            vec![
                time_ms(Some(e.ts)),
                e.id.cell(),
                text(at(doc, "host.name").or_else(|| at(doc, "winlog.computer"))),
                text(at(doc, "event.code").or_else(|| at(doc, "winlog.event_id"))),
                event_summary(doc),
            ]
        })
        .collect();
    table(&["TIME", "ID", "HOST", "CODE", "SUMMARY"], &rows)
}

/// Every leaf of a document as `dotted.path  value`.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, child) in map {
                let path = if prefix.is_empty() {
                    clean(k)
                } else {
                    format!("{prefix}.{}", clean(k))
                };
                flatten(&path, child, out);
            }
        }
        other => out.push((prefix.to_owned(), text(Some(other)))),
    }
}

fn event_detail(event: &StoredEvent) -> String {
    let mut fields = Vec::new();
    flatten("", &event.doc, &mut fields);
    let mut out = key_values(&[
        ("id", event.id.cell()),
        ("time", time_ms(Some(event.ts))),
        ("received", time_ms(Some(event.received_at))),
        ("agent", event.agent_id.cell()),
    ]);
    out.push('\n');
    let rows: Vec<Vec<String>> = fields.into_iter().map(|(k, v)| vec![k, v]).collect();
    out.push_str(&table(&["FIELD", "VALUE"], &rows));
    out
}

/// A path segment, percent-encoded.
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ------------------------------------------------------------------ alerts

#[derive(Subcommand)]
pub enum AlertsCmd {
    /// List alerts, newest `last_seen` first.
    #[command(after_help = EXIT_CODES)]
    List(AlertListArgs),
    /// Show an alert with its comments, status history and matched events.
    #[command(after_help = EXIT_CODES)]
    Show {
        /// The alert's id.
        id: i64,
        #[command(flatten)]
        remote: Remote,
    },
    /// Acknowledge an alert (someone is on it): new → acknowledged.
    #[command(visible_alias = "acknowledge", after_help = EXIT_CODES)]
    Ack(StatusArgs),
    /// Resolve an alert (handled).
    #[command(after_help = EXIT_CODES)]
    Resolve(StatusArgs),
    /// Close an alert as a false positive.
    #[command(visible_alias = "false-positive", after_help = EXIT_CODES)]
    Fp(StatusArgs),
    /// Reopen an alert (→ new), closed or acknowledged.
    #[command(after_help = EXIT_CODES)]
    Reopen(StatusArgs),
    /// Assign an alert to someone.
    #[command(after_help = EXIT_CODES)]
    Assign {
        /// The alert's id.
        id: i64,
        /// Who works on it.
        user: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Remove an alert's assignee.
    #[command(after_help = EXIT_CODES)]
    Unassign {
        /// The alert's id.
        id: i64,
        #[command(flatten)]
        remote: Remote,
    },
    /// Comment on an alert.
    #[command(after_help = EXIT_CODES)]
    Comment {
        /// The alert's id.
        id: i64,
        /// The comment (words are joined with spaces).
        #[arg(required = true, value_name = "TEXT")]
        text: Vec<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Follow the live alert stream and print each alert as it is opened or updated, until
    /// interrupted (json: one object per line, `{change, alert}`).
    ///
    /// Ends with exit code 2 when the server closes the stream (it shuts down) or goes
    /// silent for 45 s.
    #[command(after_help = EXIT_CODES)]
    Watch {
        /// Only alerts of this level and above.
        #[arg(long, value_name = "L", value_parser = Level::ALL.map(Level::as_str))]
        min_level: Option<String>,
        /// Only alerts of this rule (its id).
        #[arg(long, value_name = "R")]
        rule: Option<String>,
        /// Only alerts of this agent.
        #[arg(long, value_name = "A")]
        agent: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Args)]
pub struct AlertListArgs {
    /// Only these statuses: new, acknowledged (ack), resolved, false_positive (fp); comma-separated.
    #[arg(long, value_name = "S,...", value_delimiter = ',')]
    status: Vec<String>,
    /// Only alerts of this level and above.
    #[arg(long, value_name = "L", value_parser = Level::ALL.map(Level::as_str))]
    min_level: Option<String>,
    /// Only alerts of this rule (its id).
    #[arg(long, value_name = "R")]
    rule: Option<String>,
    /// Only alerts of this agent.
    #[arg(long, value_name = "A")]
    agent: Option<String>,
    /// Only alerts assigned to this user.
    #[arg(long, value_name = "USER")]
    assignee: Option<String>,
    /// Alerts last seen at or after this time (RFC 3339, ms, `now-1h`).
    #[arg(long, value_name = "T")]
    from: Option<String>,
    /// Alerts last seen before this time.
    #[arg(long, value_name = "T")]
    to: Option<String>,
    /// Alerts per page, 1-1000 [default: 100; 1000 with --all].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    limit: Option<u32>,
    /// Follow the cursors and return every matching alert.
    #[arg(long)]
    all: bool,
    /// Start at this `next_cursor` of an earlier page.
    #[arg(long, conflicts_with = "all")]
    cursor: Option<String>,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Args)]
pub struct StatusArgs {
    /// The alert's id.
    id: i64,
    /// Why; kept in the alert's status history.
    #[arg(long, short, value_name = "TEXT")]
    comment: Option<String>,
    #[command(flatten)]
    remote: Remote,
}

fn status_name(s: &str) -> String {
    match s.trim() {
        "ack" => "acknowledged".to_owned(),
        "fp" | "false-positive" => "false_positive".to_owned(),
        other => other.to_owned(),
    }
}

pub fn alerts(cmd: AlertsCmd) -> Result<u8> {
    match cmd {
        AlertsCmd::List(args) => list_alerts(args),
        AlertsCmd::Show { id, remote } => {
            let client = Client::connect(&remote, false)?;
            let detail = client.get(&format!("/api/v1/alerts/{id}"), &[])?;
            match client.format {
                Format::Json => emit_json(&detail)?,
                Format::Table => emit(&alert_detail(&read(&detail, "an alert")?))?,
            }
            Ok(0)
        }
        AlertsCmd::Ack(a) => set_status(a, AlertStatus::Acknowledged),
        AlertsCmd::Resolve(a) => set_status(a, AlertStatus::Resolved),
        AlertsCmd::Fp(a) => set_status(a, AlertStatus::FalsePositive),
        AlertsCmd::Reopen(a) => set_status(a, AlertStatus::New),
        AlertsCmd::Assign { id, user, remote } => assign(id, Some(user), &remote),
        AlertsCmd::Unassign { id, remote } => assign(id, None, &remote),
        AlertsCmd::Comment { id, text, remote } => {
            let client = Client::connect(&remote, false)?;
            let comment = client.post(
                &format!("/api/v1/alerts/{id}/comments"),
                &CommentRequest {
                    text: text.join(" "),
                },
            )?;
            match client.format {
                Format::Json => emit_json(&comment)?,
                Format::Table => {
                    let comment: Comment = read(&comment, "a comment")?;
                    emit(&comments_table(std::slice::from_ref(&comment)))?
                }
            }
            Ok(0)
        }
        AlertsCmd::Watch {
            min_level,
            rule,
            agent,
            remote,
        } => watch(min_level, rule, agent, &remote),
    }
}

fn list_alerts(args: AlertListArgs) -> Result<u8> {
    let client = Client::connect(&args.remote, false)?;
    let mut query = Vec::new();
    let statuses: Vec<String> = args
        .status
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| status_name(s))
        .collect();
    if !statuses.is_empty() {
        query.push(("status", statuses.join(",")));
    }
    push(&mut query, "min_level", args.min_level);
    push(&mut query, "rule", args.rule);
    push(&mut query, "agent", args.agent);
    push(&mut query, "assignee", args.assignee);
    push(&mut query, "from", args.from);
    push(&mut query, "to", args.to);
    let limit = args.limit.or(args.all.then_some(1000));
    push(&mut query, "limit", limit.map(|l| l.to_string()));
    push(&mut query, "cursor", args.cursor);
    let page = client.list("/api/v1/alerts", query, "alerts", args.all)?;
    match client.format {
        Format::Json => emit_json(&page)?,
        Format::Table => {
            let page: AlertPage = read(&page, "a page of alerts")?;
            if page.alerts.is_empty() {
                eprintln!("no alerts match");
            } else {
                emit(&alerts_table(&page.alerts))?;
            }
            if let Some(cursor) = &page.next_cursor {
                eprintln!(
                    "{} alerts shown; there are more: --all reads every page, --cursor {cursor} \
                     the next one",
                    page.alerts.len()
                );
            }
        }
    }
    Ok(0)
}

fn alerts_table(alerts: &[Alert]) -> String {
    let rows: Vec<Vec<String>> = alerts
        .iter()
        .map(|a| {
            vec![
                a.id.cell(),
                a.status.cell(),
                a.level.cell(),
                a.count.cell(),
                time_ms(Some(a.last_seen)),
                a.agent_id.cell(),
                a.assignee.cell(),
                a.rule_title.cell(),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "STATUS",
            "LEVEL",
            "COUNT",
            "LAST SEEN",
            "AGENT",
            "ASSIGNEE",
            "RULE",
        ],
        &rows,
    )
}

fn comments_table(comments: &[Comment]) -> String {
    let rows: Vec<Vec<String>> = comments
        .iter()
        .map(|c| {
            vec![
                c.id.cell(),
                time_ms(Some(c.created_at)),
                c.author.cell(),
                c.text.cell(),
            ]
        })
        .collect();
    table(&["ID", "TIME", "AUTHOR", "TEXT"], &rows)
}

fn alert_detail(detail: &AlertDetail) -> String {
    let a = &detail.alert;
    let rule = format!("{} ({})", a.rule_title.cell(), a.rule_id.cell());
    let mut out = key_values(&[
        ("alert", a.id.cell()),
        ("rule", rule),
        ("level", a.level.cell()),
        ("status", a.status.cell()),
        ("assignee", a.assignee.cell()),
        ("agent", a.agent_id.cell()),
        ("tags", a.tags.cell()),
        ("count", a.count.cell()),
        ("first seen", time_ms(Some(a.first_seen))),
        ("last seen", time_ms(Some(a.last_seen))),
        ("created", time_ms(Some(a.created_at))),
        ("updated", time_ms(Some(a.updated_at))),
    ]);
    out.push_str(&format!("\ncomments: {}\n", detail.comments.len()));
    if !detail.comments.is_empty() {
        out.push_str(&comments_table(&detail.comments));
    }
    out.push_str(&format!("\nhistory: {}\n", detail.history.len()));
    if !detail.history.is_empty() {
        let rows: Vec<Vec<String>> = detail
            .history
            .iter()
            .map(|h| {
                vec![
                    time_ms(Some(h.changed_at)),
                    h.actor.cell(),
                    h.from.cell(),
                    h.to.cell(),
                    h.comment.cell(),
                ]
            })
            .collect();
        out.push_str(&table(&["TIME", "ACTOR", "FROM", "TO", "COMMENT"], &rows));
    }
    out.push_str(&format!("\nevents: {}", detail.events.len()));
    let missing = detail.missing_events.len();
    if missing > 0 {
        out.push_str(&format!(" ({missing} no longer stored)"));
    }
    out.push('\n');
    if !detail.events.is_empty() {
        out.push_str(&events_table(&detail.events));
    }
    out
}

fn set_status(args: StatusArgs, status: AlertStatus) -> Result<u8> {
    let client = Client::connect(&args.remote, false)?;
    let body = StatusRequest {
        status,
        comment: args.comment,
    };
    let alert = client.post(&format!("/api/v1/alerts/{}/status", args.id), &body)?;
    show_alert(&client, &alert)
}

fn assign(id: i64, assignee: Option<String>, remote: &Remote) -> Result<u8> {
    let client = Client::connect(remote, false)?;
    let alert = client.post(
        &format!("/api/v1/alerts/{id}/assignee"),
        &AssigneeRequest { assignee },
    )?;
    show_alert(&client, &alert)
}

fn show_alert(client: &Client, alert: &Value) -> Result<u8> {
    match client.format {
        Format::Json => emit_json(alert)?,
        Format::Table => {
            let alert: Alert = read(alert, "an alert")?;
            emit(&alerts_table(std::slice::from_ref(&alert)))?
        }
    }
    Ok(0)
}

fn watch(
    min_level: Option<String>,
    rule: Option<String>,
    agent: Option<String>,
    remote: &Remote,
) -> Result<u8> {
    let client = Client::connect(remote, true)?;
    let mut query = Vec::new();
    push(&mut query, "min_level", min_level);
    push(&mut query, "rule", rule);
    push(&mut query, "agent", agent);
    let response = client.get_response("/api/v1/alerts/stream", &query, "text/event-stream")?;
    if !response.status().is_success() {
        client.answer(response)?;
        bail!("the server refused the alert stream");
    }
    eprintln!("watching alerts on {} (Ctrl-C to stop)", client.base);
    if client.format == Format::Table {
        emit(&watch_line([
            "LAST SEEN",
            "CHANGE",
            "ID",
            "LEVEL",
            "STATUS",
            "COUNT",
            "AGENT",
            "RULE",
        ]))?;
    }
    let reader = BufReader::new(response.into_body().into_reader());
    let mut sse = SseParser::default();
    for line in reader.lines() {
        let line = line.map_err(|e| match e.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => anyhow!(
                "the alert stream of {} went silent for {} s",
                client.base,
                STREAM_IDLE.as_secs()
            ),
            _ => anyhow!("reading the alert stream of {}: {e}", client.base),
        })?;
        let Some((event, data)) = sse.line(&line) else {
            continue;
        };
        match event.as_str() {
            "alert" => {
                let notice: Value = serde_json::from_str(&data)
                    .with_context(|| format!("an alert notice that is not JSON: {data:?}"))?;
                let out = match client.format {
                    Format::Json => format!("{notice}\n"),
                    Format::Table => {
                        let notice: AlertNotice = read(&notice, "an alert notice")?;
                        let a = &notice.alert;
                        watch_line([
                            &time_ms(Some(a.last_seen)),
                            &notice.change.cell(),
                            &a.id.cell(),
                            &a.level.cell(),
                            &a.status.cell(),
                            &a.count.cell(),
                            &a.agent_id.cell(),
                            &a.rule_title.cell(),
                        ])
                    }
                };
                if let Err(e) = std::io::stdout().lock().write_all(out.as_bytes()) {
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        return Ok(0);
                    }
                    return Err(e).context("writing output");
                }
            }
            "lagged" => {
                let skipped = serde_json::from_str::<Value>(&data)
                    .ok()
                    .and_then(|v| v.get("skipped").and_then(Value::as_u64))
                    .unwrap_or(0);
                eprintln!(
                    "warning: fell behind and missed {skipped} alert notices; `dozor alerts list` \
                     shows the current state"
                );
            }
            _ => {}
        }
    }
    bail!("the server closed the alert stream")
}

fn watch_line(cells: [&str; 8]) -> String {
    let [time, change, id, level, status, count, agent, rule] = cells;
    let line = format!(
        "{time:<24}  {change:<7}  {id:>6}  {level:<13}  {status:<14}  {count:>5}  {agent:<16}  {rule}"
    );
    format!("{}\n", line.trim_end())
}

/// Server-Sent Events, line by line: a complete event (name, data) at each blank line.
#[derive(Default)]
struct SseParser {
    event: String,
    data: String,
    has_data: bool,
}

impl SseParser {
    fn line(&mut self, line: &str) -> Option<(String, String)> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            let event = std::mem::take(&mut self.event);
            let data = std::mem::take(&mut self.data);
            if !std::mem::take(&mut self.has_data) {
                return None;
            }
            let event = if event.is_empty() {
                "message".to_owned()
            } else {
                event
            };
            return Some((event, data));
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.event = value.to_owned(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
        None
    }
}

// ------------------------------------------------------------------ rules

/// The `dozor rules` subcommands that talk to a server (`lint` works on local files).
#[derive(Subcommand)]
pub enum RulesCmd {
    /// List the server's rules with their outcome, enabled flag and hits.
    #[command(after_help = EXIT_CODES)]
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Show a rule of the server: its source YAML (state as comments on top) in table format.
    #[command(after_help = EXIT_CODES)]
    Show {
        /// The rule's id (its `id`, or its title when it has none).
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Switch a rule on (admin).
    #[command(after_help = EXIT_CODES)]
    Enable {
        /// The rule's id.
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Switch a rule off (admin); the pipeline stops running it within its refresh interval.
    #[command(after_help = EXIT_CODES)]
    Disable {
        /// The rule's id.
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Make the server read its rule directories again (admin).
    #[command(after_help = EXIT_CODES)]
    Reload {
        #[command(flatten)]
        remote: Remote,
    },
    /// Run a rule file over the server's newest stored events, storing nothing (analyst).
    #[command(after_help = EXIT_CODES)]
    Test {
        /// One Sigma rule (YAML); `-` reads it from standard input.
        file: PathBuf,
        /// Only events matching this query.
        #[arg(long, short, value_name = "Q")]
        query: Option<String>,
        /// How many of the newest (matching) events, 1-10000 [default: 1000].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: Option<u32>,
        #[command(flatten)]
        remote: Remote,
    },
}

pub fn rules(cmd: RulesCmd) -> Result<u8> {
    match cmd {
        RulesCmd::List { remote } => {
            let client = Client::connect(&remote, false)?;
            let list = client.get("/api/v1/rules", &[])?;
            match client.format {
                Format::Json => emit_json(&list)?,
                Format::Table => {
                    let rules = list["rules"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                    if rules.is_empty() {
                        eprintln!("the server has no rules");
                    } else {
                        emit(&rules_table(rules))?;
                        let active = rules.iter().filter(|r| r["outcome"] == "active").count();
                        let off = rules.iter().filter(|r| r["enabled"] == false).count();
                        eprintln!(
                            "{} rules: {active} active, {} not active, {off} disabled",
                            rules.len(),
                            rules.len() - active
                        );
                    }
                }
            }
            Ok(0)
        }
        RulesCmd::Show { id, remote } => {
            let client = Client::connect(&remote, false)?;
            let rule = client.get(&format!("/api/v1/rules/{}", segment(&id)), &[])?;
            match client.format {
                Format::Json => emit_json(&rule)?,
                Format::Table => emit(&rule_source(&rule))?,
            }
            Ok(0)
        }
        RulesCmd::Enable { id, remote } => set_enabled(&id, true, &remote),
        RulesCmd::Disable { id, remote } => set_enabled(&id, false, &remote),
        RulesCmd::Reload { remote } => {
            let client = Client::connect(&remote, false)?;
            let report = client.post("/api/v1/rules/reload", &json!({}))?;
            match client.format {
                Format::Json => emit_json(&report)?,
                Format::Table => {
                    let mut out = key_values(&[
                        ("documents", text(report.get("documents"))),
                        ("active", text(report.get("active"))),
                        ("unrouted", text(report.get("unrouted"))),
                        ("unsupported", text(report.get("unsupported"))),
                        ("invalid", text(report.get("invalid"))),
                    ]);
                    let problems = report["problems"]
                        .as_array()
                        .map(Vec::as_slice)
                        .unwrap_or(&[]);
                    if !problems.is_empty() {
                        out.push_str("\nproblems:\n");
                        for p in problems {
                            out.push_str(&format!("  {}\n", text(Some(p))));
                        }
                    }
                    emit(&out)?;
                }
            }
            Ok(0)
        }
        RulesCmd::Test {
            file,
            query,
            limit,
            remote,
        } => {
            let rule = if file.as_os_str() == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("reading the rule from standard input")?;
                s
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let client = Client::connect(&remote, false)?;
            let mut body = json!({"rule": rule});
            if let Some(q) = query {
                body["query"] = Value::String(q);
            }
            if let Some(l) = limit {
                body["limit"] = json!(l);
            }
            let result = client.post("/api/v1/rules/test", &body)?;
            match client.format {
                Format::Json => emit_json(&result)?,
                Format::Table => {
                    let mut out = format!(
                        "matched {} of {} events tested\n",
                        text(result.get("matched")),
                        text(result.get("tested"))
                    );
                    for id in result["event_ids"]
                        .as_array()
                        .map(Vec::as_slice)
                        .unwrap_or(&[])
                    {
                        out.push_str(&text(Some(id)));
                        out.push('\n');
                    }
                    emit(&out)?;
                }
            }
            Ok(0)
        }
    }
}

fn set_enabled(id: &str, enabled: bool, remote: &Remote) -> Result<u8> {
    let client = Client::connect(remote, false)?;
    let rule = client.post(
        &format!("/api/v1/rules/{}/enabled", segment(id)),
        &json!({"enabled": enabled}),
    )?;
    match client.format {
        Format::Json => emit_json(&rule)?,
        Format::Table => emit(&rules_table(std::slice::from_ref(&rule)))?,
    }
    Ok(0)
}

fn yes_no(v: Option<&Value>) -> String {
    match v.and_then(Value::as_bool) {
        Some(true) => "yes".to_owned(),
        Some(false) => "no".to_owned(),
        None => "-".to_owned(),
    }
}

fn rules_table(rules: &[Value]) -> String {
    let rows: Vec<Vec<String>> = rules
        .iter()
        .map(|r| {
            vec![
                text(r.get("id")),
                text(r.get("level")),
                text(r.get("kind")),
                text(r.get("outcome")),
                yes_no(r.get("enabled")),
                text(r.get("hit_count")),
                time(r.get("last_hit")),
                text(r.get("title")),
            ]
        })
        .collect();
    table(
        &[
            "ID", "LEVEL", "KIND", "OUTCOME", "ENABLED", "HITS", "LAST HIT", "TITLE",
        ],
        &rows,
    )
}

/// The rule's YAML with its state as comments on top (still valid YAML).
fn rule_source(rule: &Value) -> String {
    let mut out = format!(
        "# rule {}: {}\n# outcome: {}, enabled: {}, hits: {}, last hit: {}\n# file: {}\n",
        text(rule.get("id")),
        text(rule.get("title")),
        text(rule.get("outcome")),
        yes_no(rule.get("enabled")),
        text(rule.get("hit_count")),
        time(rule.get("last_hit")),
        text(rule.get("path")),
    );
    if let Some(reason) = rule.get("reason").and_then(Value::as_str) {
        out.push_str(&format!("# reason: {}\n", clean(reason)));
    }
    match rule.get("yaml").and_then(Value::as_str) {
        Some(yaml) => {
            out.push_str(&clean_block(yaml));
            if !yaml.ends_with('\n') {
                out.push('\n');
            }
        }
        None => out.push_str("# (the server has no source text for this rule)\n"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dozor agents show` printed `memory used -`, `spool queued -` and
    /// `cpu % 12.658227848101266`: it read paths the agent's heartbeat doesn't have. The
    /// heartbeat here has the agent's shape (crates/agent/src/runner.rs `heartbeat`).
    #[test]
    fn an_agents_detail_reads_the_heartbeat_the_agent_sends() {
        let agent: AgentView = serde_json::from_value(serde_json::json!({
            "id": "a1", "hostname": "web-1", "os_type": "linux", "agent_version": "0.1.0",
            "ips": ["10.0.0.5"], "status": "online", "last_seen": 1_700_000_000_000i64,
            "enrolled_at": 1_700_000_000_000i64, "certificate_not_after": 1_800_000_000_000i64,
            "health": [],
            "last_heartbeat": {
                "resources": {"cpu_percent": 12.658227848101266,
                    "memory_used_bytes": 1_288_490_189u64, "memory_total_bytes": 8_589_934_592u64},
                "spool": {"queued_records": 12, "queued_bytes": 3_482, "disk_bytes": 8_388_608,
                    "dropped_records": 0, "dropped_bytes": 0, "corrupt_skipped": 0},
                "transport": {"events_collected": 120, "events_sent": 108, "events_rejected": 0,
                    "batches_sent": 9, "send_failures": 1, "last_error": null}
            }
        }))
        .unwrap();
        let out = agent_detail(&agent);
        let line = |key: &str| {
            out.lines()
                .find(|l| l.starts_with(key))
                .unwrap_or_else(|| panic!("no {key} in {out}"))
                .trim_start_matches(key)
                .trim()
                .to_owned()
        };
        assert_eq!(line("cpu"), "12.7 %");
        assert_eq!(line("memory"), "1.2 GiB of 8.0 GiB (15.0 %)");
        assert_eq!(line("spool queued"), "12 records (3.4 KiB)");
        assert_eq!(line("spool dropped"), "0 records (0 B)");
        assert_eq!(line("events sent"), "108");
        assert_eq!(line("last send error"), "-");
    }

    #[test]
    fn hosts_and_loopback() {
        assert_eq!(url_host("127.0.0.1:8443"), "127.0.0.1");
        assert_eq!(url_host("[::1]:8443/x"), "::1");
        assert_eq!(url_host("user@dozor.example:1/"), "dozor.example");
        assert!(is_loopback("localhost") && is_loopback("127.0.0.2") && is_loopback("::1"));
        assert!(!is_loopback("10.0.0.1") && !is_loopback("dozor.example"));
    }

    #[test]
    fn problems_read_as_title_and_detail() {
        let body = r#"{"type":"urn:dozor:problem:invalid-transition","title":"Invalid status change","status":409,"detail":"alert 1 can't go from resolved to acknowledged","from":"resolved","to":"acknowledged","allowed":["new"]}"#;
        assert_eq!(
            problem_message(409, "Conflict", body),
            "Invalid status change: alert 1 can't go from resolved to acknowledged (from resolved it may go to: new)"
        );
        let m = problem_message(
            403,
            "Forbidden",
            r#"{"type":"urn:dozor:problem:forbidden","title":"Forbidden","status":403,"detail":"this needs an analyst or admin credential"}"#,
        );
        assert!(m.starts_with("Forbidden: this needs an analyst"), "{m}");
        assert!(m.contains("hint: the token's role"), "{m}");
        assert_eq!(
            problem_message(502, "Bad Gateway", "<html>\x1b[31m</html>"),
            "HTTP 502 Bad Gateway: <html>\\u{1b}[31m</html>"
        );
    }

    #[test]
    fn tables_align_and_times_are_utc() {
        let t = table(
            &["A", "BB"],
            &[
                vec!["xyz".into(), "1".into()],
                vec!["x".into(), "22".into()],
            ],
        );
        assert_eq!(t, "A    BB\nxyz  1\nx    22\n");
        assert_eq!(
            time(Some(&json!(1_776_403_493_000_i64))),
            "2026-04-17T05:24:53Z"
        );
        assert_eq!(
            time(Some(&json!(1_776_403_493_250_i64))),
            "2026-04-17T05:24:53.250Z"
        );
        assert_eq!(time(Some(&Value::Null)), "-");
        assert_eq!(clean("a\u{202e}b\x1b"), "a\\u{202e}b\\u{1b}");
        assert_eq!(segment("a b/ü"), "a%20b%2F%C3%BC");
    }

    #[test]
    fn sse_events_end_at_blank_lines() {
        let mut p = SseParser::default();
        assert_eq!(p.line(": connected"), None);
        assert_eq!(p.line(""), None);
        assert_eq!(p.line("event: alert"), None);
        assert_eq!(p.line("data: {\"a\":1}"), None);
        assert_eq!(
            p.line(""),
            Some(("alert".to_owned(), "{\"a\":1}".to_owned()))
        );
        assert_eq!(p.line("data:x"), None);
        assert_eq!(p.line("data: y\r"), None);
        assert_eq!(p.line(""), Some(("message".to_owned(), "x\ny".to_owned())));
    }
}

// ---------------------------------------------------------------- agents

mod respond;
pub use respond::{PlaybooksCmd, playbooks};

mod intel;
pub use intel::{IntelCmd, intel};

mod incidents;
mod searches;
mod vulns;
pub use incidents::{IncidentsCmd, incidents};
pub use searches::{SearchesCmd, searches};
pub use vulns::{VulnsCmd, vulns};

#[derive(Subcommand)]
pub enum AgentsCmd {
    /// List enrolled agents with their status (online / degraded / offline / revoked).
    #[command(after_help = EXIT_CODES)]
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Show an agent: facts, status, health and its last heartbeat (resources, spool).
    #[command(after_help = EXIT_CODES)]
    Show {
        /// The agent id.
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Revoke an agent (admin): the server refuses its certificate from now on.
    #[command(after_help = EXIT_CODES)]
    Revoke {
        /// The agent id.
        id: String,
        /// Why (kept in the audit log).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Ask an agent to scan a path on its host (analyst or admin; audited).
    ///
    /// The agent gets the command with its next heartbeat (every 30 s by default). With
    /// --wait the command is followed until the agent reports (progress on stderr) and the
    /// result is shown: files scanned and the detections (path, engine, name, severity).
    #[command(after_help = SCAN_EXIT_CODES)]
    Scan {
        /// The agent id.
        id: String,
        /// Absolute path on the agent's host: /… (Unix) or C:\… (Windows).
        path: String,
        /// Scan only the directory itself, not its subdirectories.
        #[arg(long)]
        no_recursive: bool,
        /// Wait for the result, at most SECS seconds [default: 600]. Put it last: a value
        /// right after it is taken as SECS.
        #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "600")]
        wait: Option<u64>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Isolate the host from everything but the Dozor server (and --allow hosts); asks for an
    /// approval first unless the server is configured otherwise. The agent rolls back by itself
    /// when it can't reach the server afterwards.
    #[command(after_help = respond::ACTION_EXIT_CODES)]
    Isolate {
        /// The agent id.
        id: String,
        /// Keep this host reachable too: an address, a CIDR or a name; repeatable.
        #[arg(long, value_name = "HOST")]
        allow: Vec<String>,
        /// Cut DNS too (default: the host's resolvers stay reachable).
        #[arg(long)]
        no_dns: bool,
        /// Release by itself after SECS seconds.
        #[arg(long, value_name = "SECS")]
        release_after: Option<u64>,
        #[arg(long)]
        reason: Option<String>,
        /// Follow the approval and the command, at most SECS seconds [default: 600].
        #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "600")]
        wait: Option<u64>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Release an isolated host.
    #[command(after_help = respond::ACTION_EXIT_CODES)]
    Release {
        id: String,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "600")]
        wait: Option<u64>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Kill a process, named by pid and start time (a reused pid is never killed).
    #[command(after_help = respond::ACTION_EXIT_CODES)]
    Kill {
        id: String,
        #[arg(long)]
        pid: u32,
        /// The process's start time, ms since the epoch, as its events report it.
        #[arg(long, value_name = "MS")]
        start_time: i64,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "600")]
        wait: Option<u64>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Move a file into the agent's quarantine vault (restore it with `agents restore`).
    #[command(after_help = respond::ACTION_EXIT_CODES)]
    Quarantine {
        id: String,
        /// Absolute path on the agent's host.
        path: String,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "600")]
        wait: Option<u64>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Put a quarantined file back where it was.
    #[command(after_help = respond::ACTION_EXIT_CODES)]
    Restore {
        id: String,
        /// The id `agents quarantine` reported.
        quarantine_id: String,
        /// Replace a file that exists at the original path now.
        #[arg(long)]
        overwrite: bool,
        #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "600")]
        wait: Option<u64>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Upload a file from the agent's host to the server as a sample.
    #[command(after_help = respond::ACTION_EXIT_CODES)]
    Collect {
        id: String,
        /// Absolute path on the agent's host.
        path: String,
        /// Refuse a larger file.
        #[arg(long)]
        max_bytes: Option<u64>,
        #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "600")]
        wait: Option<u64>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Drop traffic to and from addresses or CIDRs on the agent's host.
    #[command(after_help = respond::ACTION_EXIT_CODES)]
    Block {
        id: String,
        #[arg(required = true)]
        addresses: Vec<String>,
        /// Unblock by itself after SECS seconds.
        #[arg(long, value_name = "SECS")]
        timeout: Option<u64>,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "600")]
        wait: Option<u64>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Stop dropping traffic to and from addresses.
    #[command(after_help = respond::ACTION_EXIT_CODES)]
    Unblock {
        id: String,
        #[arg(required = true)]
        addresses: Vec<String>,
        #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "600")]
        wait: Option<u64>,
        #[command(flatten)]
        remote: Remote,
    },
    /// List an agent's commands (scans), newest first, with their status and result counts.
    #[command(after_help = EXIT_CODES)]
    Commands {
        /// The agent id.
        id: String,
        /// How many, 1-200.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        remote: Remote,
    },
}

/// The exit codes of `dozor agents scan`.
const SCAN_EXIT_CODES: &str = "Exit codes: 0 = queued (without --wait), or done and nothing \
detected; 1 = done with detections; 2 = error: the scan failed or expired on the agent, --wait \
ran out, the server refused the request (401 = the token is not valid, 403 = its role is too \
low), the server could not be reached or its certificate not verified, or bad arguments.";

/// How often `agents scan --wait` asks the server.
const SCAN_POLL: Duration = Duration::from_secs(2);

/// A command's result counts in a few words (`-` when there is none yet).
fn command_summary(command: &CommandView) -> String {
    if let Some(error) = &command.error {
        return truncate(clean(error), 80);
    }
    let Some(summary) = command.summary.as_ref().filter(|s| s.is_object()) else {
        return "-".to_owned();
    };
    let mut parts = Vec::new();
    for (key, one, many) in [
        ("files_scanned", "file", "files"),
        ("detections", "detection", "detections"),
        ("errors", "error", "errors"),
    ] {
        if let Some(n) = summary.get(key).and_then(Value::as_u64) {
            parts.push(format!("{n} {}", if n == 1 { one } else { many }));
        }
    }
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(", ")
    }
}

fn commands_table(commands: &[CommandView]) -> String {
    let rows: Vec<Vec<String>> = commands
        .iter()
        .map(|c| {
            vec![
                c.id.cell(),
                c.status.cell(),
                c.kind.cell(),
                truncate(text(at(&c.args, "path")), 60),
                c.requested_by.cell(),
                time_ms(Some(c.created_at)),
                time_ms(c.finished_at),
                command_summary(c),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "STATUS",
            "KIND",
            "PATH",
            "REQUESTED BY",
            "CREATED",
            "FINISHED",
            "RESULT",
        ],
        &rows,
    )
}

/// A finished scan: its counts, detections and errors (the result is the agent's report, a
/// document read by its member names).
fn scan_report(command: &CommandView) -> String {
    let result = command.result.clone().unwrap_or(Value::Null);
    let mut out = key_values(&[
        ("command", command.id.cell()),
        ("agent", command.agent_id.cell()),
        ("path", text(at(&command.args, "path"))),
        ("status", command.status.cell()),
        ("files scanned", text(result.get("files_scanned"))),
        ("files skipped", text(result.get("files_skipped"))),
        ("bytes", text(result.get("bytes"))),
        ("duration ms", text(result.get("duration_ms"))),
    ]);
    let detections = result
        .get("detections")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if detections.is_empty() {
        out.push_str("\nno detections\n");
    } else {
        let rows: Vec<Vec<String>> = detections
            .iter()
            .map(|d| {
                vec![
                    text(d.get("severity")),
                    text(d.get("engine")),
                    text(d.get("name")),
                    text(d.get("verdict")),
                    text(d.get("path")),
                ]
            })
            .collect();
        out.push_str(&format!("\n{} detections:\n", detections.len()));
        out.push_str(&table(
            &["SEVERITY", "ENGINE", "NAME", "VERDICT", "PATH"],
            &rows,
        ));
    }
    if let Some(errors) = result
        .get("errors")
        .and_then(Value::as_array)
        .filter(|e| !e.is_empty())
    {
        out.push_str(&format!("\n{} errors:\n", errors.len()));
        for e in errors.iter().take(50) {
            out.push_str(&format!("  {}\n", text(Some(e))));
        }
        if errors.len() > 50 {
            out.push_str(&format!("  … and {} more\n", errors.len() - 50));
        }
    }
    out
}

/// `agents scan`: queue the command; with `wait`, follow it to its end.
fn scan(id: &str, path: &str, recursive: bool, wait: Option<u64>, remote: &Remote) -> Result<u8> {
    let client = Client::connect(remote, false)?;
    let created = client.post(
        &format!("/api/v1/agents/{}/commands", segment(id)),
        &CommandRequest {
            kind: SCAN_PATH.to_owned(),
            args: ScanPathArgs {
                path: path.to_owned(),
                recursive,
            },
        },
    )?;
    let command_id = read::<CommandView>(&created, "a command")?.id.to_string();
    let Some(wait) = wait else {
        match client.format {
            Format::Json => emit_json(&created)?,
            Format::Table => {
                emit(&format!("{}\n", clean(&command_id)))?;
                eprintln!(
                    "queued: agent {} gets the scan with its next heartbeat; follow it with \
                     `dozor agents commands {}`",
                    clean(id),
                    clean(id)
                );
            }
        }
        return Ok(0);
    };
    eprintln!(
        "queued command {}: waiting for agent {} to pick it up (at most {wait} s)",
        clean(&command_id),
        clean(id)
    );
    let started = std::time::Instant::now();
    let deadline = started + Duration::from_secs(wait);
    let mut last = None;
    let mut said_at = started;
    let (answer, command) = loop {
        let answer = client.get(&format!("/api/v1/commands/{}", segment(&command_id)), &[])?;
        let command: CommandView = read(&answer, "a command")?;
        let (status, attempts) = (command.status, command.attempts);
        if status.is_final() {
            break (answer, command);
        }
        let now = std::time::Instant::now();
        if last != Some((status, attempts)) {
            match status {
                CommandStatus::Delivered if attempts > 1 => eprintln!(
                    "delivered again (attempt {attempts}): no result came after the last delivery"
                ),
                CommandStatus::Delivered => eprintln!("delivered to the agent: scanning"),
                _ => {}
            }
            last = Some((status, attempts));
            said_at = now;
        } else if now.duration_since(said_at) >= Duration::from_secs(30) {
            eprintln!(
                "still {status} after {} s",
                now.duration_since(started).as_secs()
            );
            said_at = now;
        }
        if now >= deadline {
            bail!(
                "command {} is still {status} after {wait} s (it keeps going: see `dozor agents commands {}`)",
                clean(&command_id),
                clean(id)
            );
        }
        std::thread::sleep(SCAN_POLL.min(deadline.saturating_duration_since(now)));
    };
    let detections = command
        .result
        .as_ref()
        .and_then(|r| at(r, "detections"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    match client.format {
        Format::Json => emit_json(&answer)?,
        Format::Table if command.status == CommandStatus::Done => emit(&scan_report(&command))?,
        Format::Table => {}
    }
    match command.status {
        CommandStatus::Done => Ok(if detections > 0 { 1 } else { 0 }),
        CommandStatus::Failed => {
            bail!("the agent could not run the scan: {}", command.error.cell())
        }
        _ => bail!(
            "the agent did not report a result after {} deliveries: the command expired",
            command.attempts
        ),
    }
}

fn agents_table(agents: &[AgentView]) -> String {
    let rows: Vec<Vec<String>> = agents
        .iter()
        .map(|a| {
            vec![
                a.id.cell(),
                a.hostname.cell(),
                match &a.isolation {
                    Some(i) => format!("{} ({})", a.status.cell(), clean(&i.phase)),
                    None => a.status.cell(),
                },
                format!("{} {}", a.os_type.cell(), a.os_version.cell()),
                a.agent_version.cell(),
                time_ms(Some(a.last_seen)),
                a.ips.cell(),
                a.health.cell(),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "HOSTNAME",
            "STATUS",
            "OS",
            "VERSION",
            "LAST SEEN",
            "IPS",
            "HEALTH",
        ],
        &rows,
    )
}

/// An agent with its last heartbeat (the agent's own report, a document read by its member
/// names).
fn agent_detail(agent: &AgentView) -> String {
    let hb = agent.last_heartbeat.clone().unwrap_or(Value::Null);
    let mut out = key_values(&[
        ("id", agent.id.cell()),
        ("hostname", agent.hostname.cell()),
        ("status", agent.status.cell()),
        (
            "os",
            format!(
                "{} {} {}",
                agent.os_type.cell(),
                agent.os_name.cell(),
                agent.os_version.cell()
            ),
        ),
        ("arch", agent.arch.cell()),
        ("version", agent.agent_version.cell()),
        ("ips", agent.ips.cell()),
        ("enrolled", time_ms(Some(agent.enrolled_at))),
        ("re-enrolled", time_ms(agent.reenrolled_at)),
        (
            "certificate until",
            time_ms(Some(agent.certificate_not_after)),
        ),
        ("last seen", time_ms(Some(agent.last_seen))),
        ("offline since", time_ms(agent.offline_since)),
        ("revoked", time_ms(agent.revoked_at)),
        ("revoked by", agent.revoked_by.cell()),
        ("health", agent.health.cell()),
        (
            "isolation",
            match &agent.isolation {
                Some(i) => format!(
                    "{} since {}{}",
                    clean(&i.phase),
                    time_ms(i64::try_from(i.since_unix_ms).ok()),
                    i.auto_release_at_unix_ms
                        .and_then(|t| i64::try_from(t).ok())
                        .map(|t| format!(", releases itself at {}", time_ms(Some(t))))
                        .unwrap_or_default()
                ),
                None => "none".to_owned(),
            },
        ),
        ("cpu", percent(at(&hb, "resources.cpu_percent"))),
        (
            "memory",
            used_of_total(
                at(&hb, "resources.memory_used_bytes"),
                at(&hb, "resources.memory_total_bytes"),
            ),
        ),
        (
            "spool queued",
            count_and_bytes(
                at(&hb, "spool.queued_records"),
                at(&hb, "spool.queued_bytes"),
            ),
        ),
        (
            "spool dropped",
            count_and_bytes(
                at(&hb, "spool.dropped_records"),
                at(&hb, "spool.dropped_bytes"),
            ),
        ),
        (
            "events collected",
            text(at(&hb, "transport.events_collected")),
        ),
        ("events sent", text(at(&hb, "transport.events_sent"))),
        (
            "events rejected",
            text(at(&hb, "transport.events_rejected")),
        ),
        ("last send error", text(at(&hb, "transport.last_error"))),
    ]);
    if let Some(collectors) = hb.get("collectors").and_then(Value::as_object) {
        out.push_str("\ncollectors:\n");
        for (name, state) in collectors {
            out.push_str(&format!(
                "  {name}: {} {}\n",
                text(state.get("state")),
                text(state.get("message"))
            ));
        }
    }
    out
}

pub fn agents(cmd: AgentsCmd) -> Result<u8> {
    match cmd {
        AgentsCmd::List { remote } => {
            let client = Client::connect(&remote, false)?;
            let list = client.get("/api/v1/agents", &[])?;
            match client.format {
                Format::Json => emit_json(&list)?,
                Format::Table => {
                    let list: AgentList = read(&list, "a list of agents")?;
                    if list.agents.is_empty() {
                        eprintln!("no agents are enrolled");
                    } else {
                        emit(&agents_table(&list.agents))?;
                        eprintln!(
                            "{} {}: {} online, {} degraded, {} offline, {} revoked",
                            list.agents.len(),
                            if list.agents.len() == 1 {
                                "agent"
                            } else {
                                "agents"
                            },
                            list.online,
                            list.degraded,
                            list.offline,
                            list.revoked
                        );
                    }
                }
            }
            Ok(0)
        }
        AgentsCmd::Show { id, remote } => {
            let client = Client::connect(&remote, false)?;
            let agent = client.get(&format!("/api/v1/agents/{}", segment(&id)), &[])?;
            match client.format {
                Format::Json => emit_json(&agent)?,
                Format::Table => emit(&agent_detail(&read(&agent, "an agent")?))?,
            }
            Ok(0)
        }
        AgentsCmd::Scan {
            id,
            path,
            no_recursive,
            wait,
            remote,
        } => scan(&id, &path, !no_recursive, wait, &remote),
        AgentsCmd::Isolate {
            id,
            allow,
            no_dns,
            release_after,
            reason,
            wait,
            remote,
        } => respond::action(
            &id,
            "isolate_host",
            json!({"allow_hosts": allow, "allow_dns": !no_dns, "release_after_secs": release_after}),
            reason,
            wait,
            &remote,
        ),
        AgentsCmd::Release {
            id,
            reason,
            wait,
            remote,
        } => respond::action(
            &id,
            "release_host",
            json!({"reason": reason.clone().unwrap_or_default()}),
            reason,
            wait,
            &remote,
        ),
        AgentsCmd::Kill {
            id,
            pid,
            start_time,
            reason,
            wait,
            remote,
        } => respond::action(
            &id,
            "kill_process",
            json!({"pid": pid, "start_time_ms": start_time}),
            reason,
            wait,
            &remote,
        ),
        AgentsCmd::Quarantine {
            id,
            path,
            reason,
            wait,
            remote,
        } => respond::action(
            &id,
            "quarantine_file",
            json!({"path": path}),
            reason,
            wait,
            &remote,
        ),
        AgentsCmd::Restore {
            id,
            quarantine_id,
            overwrite,
            wait,
            remote,
        } => respond::action(
            &id,
            "restore_file",
            json!({"quarantine_id": quarantine_id, "overwrite": overwrite}),
            None,
            wait,
            &remote,
        ),
        AgentsCmd::Collect {
            id,
            path,
            max_bytes,
            wait,
            remote,
        } => respond::action(
            &id,
            "collect_file",
            json!({"path": path, "max_bytes": max_bytes}),
            None,
            wait,
            &remote,
        ),
        AgentsCmd::Block {
            id,
            addresses,
            timeout,
            reason,
            wait,
            remote,
        } => respond::action(
            &id,
            "block_ip",
            json!({"addresses": addresses, "timeout_secs": timeout}),
            reason,
            wait,
            &remote,
        ),
        AgentsCmd::Unblock {
            id,
            addresses,
            wait,
            remote,
        } => respond::action(
            &id,
            "unblock_ip",
            json!({"addresses": addresses}),
            None,
            wait,
            &remote,
        ),
        AgentsCmd::Commands { id, limit, remote } => {
            let client = Client::connect(&remote, false)?;
            let list = client.get(
                &format!("/api/v1/agents/{}/commands", segment(&id)),
                &[("limit", limit.to_string())],
            )?;
            match client.format {
                Format::Json => emit_json(&list)?,
                Format::Table => {
                    let list: CommandList = read(&list, "a list of commands")?;
                    if list.commands.is_empty() {
                        eprintln!("agent {} has no commands", clean(&id));
                    } else {
                        emit(&commands_table(&list.commands))?;
                    }
                }
            }
            Ok(0)
        }
        AgentsCmd::Revoke { id, reason, remote } => {
            let client = Client::connect(&remote, false)?;
            let agent = client.post(
                &format!("/api/v1/agents/{}/revoke", segment(&id)),
                &RevokeRequest { reason },
            )?;
            match client.format {
                Format::Json => emit_json(&agent)?,
                Format::Table => {
                    let agent: AgentView = read(&agent, "an agent")?;
                    eprintln!(
                        "agent {} ({}) is revoked: the server refuses its certificate",
                        agent.id.cell(),
                        agent.hostname.cell()
                    )
                }
            }
            Ok(0)
        }
    }
}
