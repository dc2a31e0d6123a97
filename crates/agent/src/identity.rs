//! The agent's identity on disk and enrollment.
//!
//! `identity/` in the state directory holds `key.pem` (the private key, 0600, never leaves
//! the host), `cert.pem` (the client certificate the server's CA signed), `ca.pem` (the
//! server's CA, pinned: the only CA the agent trusts) and `agent.json` (id, server URL,
//! certificate expiry). Files are written to a temporary name and renamed, so a crash leaves
//! either the old identity or the new one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use dozor_model::AgentFacts;
use dozor_model::api::{EnrollRequest, EnrollResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest;

pub const KEY_FILE: &str = "key.pem";
pub const CERT_FILE: &str = "cert.pem";
pub const CA_FILE: &str = "ca.pem";
pub const AGENT_FILE: &str = "agent.json";

/// `agent.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentRecord {
    pub agent_id: String,
    pub server: String,
    pub enrolled_at: i64,
    pub certificate_not_after: i64,
}

/// A loaded identity.
#[derive(Clone)]
pub struct Identity {
    pub record: AgentRecord,
    pub key_pem: String,
    pub cert_pem: String,
    pub ca_pem: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn pem_certificates(pem: &str, what: &str) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem.as_bytes()) {
        if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| anyhow!("{what}: {e}"))? {
            certs.push(c.to_owned());
        }
    }
    if certs.is_empty() {
        bail!("{what}: no PEM certificate");
    }
    Ok(certs)
}

fn pem_key(pem: &str) -> Result<ureq::tls::PrivateKey<'static>> {
    for item in ureq::tls::parse_pem(pem.as_bytes()) {
        if let ureq::tls::PemItem::PrivateKey(k) = item.map_err(|e| anyhow!("key.pem: {e}"))? {
            return Ok(k.to_owned());
        }
    }
    bail!("key.pem: no PEM private key")
}

/// SHA-256 (hex) of the first certificate of a PEM text (its DER).
pub fn certificate_sha256(pem: &str) -> Result<String> {
    let certs = pem_certificates(pem, "certificate")?;
    Ok(sha256_hex(certs[0].der()))
}

/// An HTTP client that trusts only `ca_pem` and, when given, presents a client certificate.
pub fn http_client(
    ca_pem: &str,
    client: Option<(&str, &str)>,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> Result<ureq::Agent> {
    let mut tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .root_certs(ureq::tls::RootCerts::new_with_certs(&pem_certificates(
            ca_pem, "ca.pem",
        )?));
    if let Some((cert_pem, key_pem)) = client {
        tls = tls.client_cert(Some(ureq::tls::ClientCert::new_with_certs(
            &pem_certificates(cert_pem, "cert.pem")?,
            pem_key(key_pem)?,
        )));
    }
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls.build())
        .user_agent(concat!("dozor-agent/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(connect_timeout))
        .timeout_global(Some(request_timeout))
        .build()
        .new_agent())
}

/// Writes `bytes` to `dir/name` through a temporary file and a rename; `private` files are
/// created 0600 on Unix.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8], private: bool) -> Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!(".{name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private; // Windows: the state directory's ACL (SYSTEM and Administrators) protects it.
    let mut f = options
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name))
        .with_context(|| format!("replacing {}", dir.join(name).display()))?;
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {}", dir.display()))?;
    }
    Ok(())
}

impl Identity {
    /// Loads the identity; a clear error when the agent is not enrolled.
    pub fn load(dir: &Path) -> Result<Identity> {
        let read = |name: &str| -> Result<String> {
            std::fs::read_to_string(dir.join(name)).with_context(|| {
                format!(
                    "reading {} (is the agent enrolled? run `dozor-agent enroll --server URL --token TOKEN`)",
                    dir.join(name).display()
                )
            })
        };
        let record: AgentRecord = serde_json::from_str(&read(AGENT_FILE)?)
            .with_context(|| format!("{}: not valid", dir.join(AGENT_FILE).display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let key = dir.join(KEY_FILE);
            if let Ok(meta) = std::fs::metadata(&key)
                && meta.permissions().mode() & 0o077 != 0
            {
                bail!(
                    "{} is readable by other users (mode {:o}); it must be 0600",
                    key.display(),
                    meta.permissions().mode() & 0o777
                );
            }
        }
        Ok(Identity {
            record,
            key_pem: read(KEY_FILE)?,
            cert_pem: read(CERT_FILE)?,
            ca_pem: read(CA_FILE)?,
        })
    }

    pub fn client(&self, connect: Duration, request: Duration) -> Result<ureq::Agent> {
        http_client(
            &self.ca_pem,
            Some((&self.cert_pem, &self.key_pem)),
            connect,
            request,
        )
    }

    fn save(&self, dir: &Path) -> Result<()> {
        create_private_dir(dir)?;
        write_atomic(dir, KEY_FILE, self.key_pem.as_bytes(), true)?;
        write_atomic(dir, CERT_FILE, self.cert_pem.as_bytes(), false)?;
        write_atomic(dir, CA_FILE, self.ca_pem.as_bytes(), false)?;
        write_atomic(
            dir,
            AGENT_FILE,
            serde_json::to_string_pretty(&self.record)?.as_bytes(),
            false,
        )?;
        Ok(())
    }
}

/// How the agent decides to trust the server at enrollment.
#[derive(Debug, Clone)]
pub enum CaTrust {
    /// A CA certificate file the operator copied from the server.
    File(PathBuf),
    /// The SHA-256 of the server's CA certificate (printed by `dozor server`): the CA is
    /// fetched and must match.
    Fingerprint(String),
    /// Trust whatever CA the server presents now (printed, for the operator to check).
    FirstUse,
}

/// What the server is told at enrollment and in heartbeats (empty texts are left out).
pub fn agent_facts(facts: &dozor_collect::HostFacts) -> AgentFacts {
    let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    AgentFacts {
        hostname: facts.hostname.clone(),
        os_type: facts.os_type.clone(),
        os_name: text(&facts.os_name),
        os_version: text(&facts.os_version),
        arch: text(&facts.arch),
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        ips: facts.ips.iter().map(ToString::to_string).collect(),
    }
}

/// POSTs a JSON body: the answer's status and text (at most `limit` bytes), or the transport
/// error.
pub fn post_json(
    client: &ureq::Agent,
    url: &str,
    body: &impl Serialize,
    limit: u64,
) -> Result<(u16, String), ureq::Error> {
    let mut response = client
        .post(url)
        .header("Content-Type", "application/json")
        .send(serde_json::to_vec(body).unwrap_or_default().as_slice())?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_string()?;
    Ok((status, text))
}

/// Reads a problem+json answer into one line.
pub fn problem_text(status: u16, body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(v) => {
            let title = v["title"].as_str().unwrap_or("");
            let detail = v["detail"].as_str().unwrap_or("");
            format!("HTTP {status} {title}: {detail}")
        }
        Err(_) => format!(
            "HTTP {status}: {}",
            body.chars().take(300).collect::<String>()
        ),
    }
}

fn fetch_ca(server: &str, trust: &CaTrust, timeout: Duration) -> Result<String> {
    match trust {
        CaTrust::File(path) => {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("reading the CA file {}", path.display()))?;
            pem_certificates(&pem, &path.display().to_string())?;
            Ok(pem)
        }
        CaTrust::Fingerprint(_) | CaTrust::FirstUse => {
            // The CA is fetched without verification and then checked by its fingerprint
            // (or shown to the operator on first use).
            let tls = ureq::tls::TlsConfig::builder()
                .provider(ureq::tls::TlsProvider::Rustls)
                .unversioned_rustls_crypto_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .disable_verification(true)
                .build();
            let agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .tls_config(tls)
                .timeout_global(Some(timeout))
                .build()
                .new_agent();
            let url = format!("{server}/api/v1/ca.pem");
            let mut response = agent
                .get(&url)
                .call()
                .with_context(|| format!("fetching {url}"))?;
            let status = response.status().as_u16();
            let body = response
                .body_mut()
                .with_config()
                .limit(64 * 1024)
                .read_to_string()
                .with_context(|| format!("reading {url}"))?;
            if status != 200 {
                bail!("fetching {url}: {}", problem_text(status, &body));
            }
            let fingerprint = certificate_sha256(&body)?;
            match trust {
                CaTrust::Fingerprint(expected) => {
                    let expected = pinned_fingerprint(expected);
                    if expected != fingerprint {
                        bail!(
                            "the server's CA has SHA-256 {fingerprint}, not the expected {expected}: \
                             refusing to enroll (wrong server, or someone in between)"
                        );
                    }
                }
                _ => eprintln!("{}", first_use_warning(&fingerprint)),
            }
            Ok(body)
        }
    }
}

/// A fingerprint as given on the command line (`SHA256:AB:CD…`, `ab cd…`) in the form
/// [`certificate_sha256`] gives: lower-case hex, nothing else.
fn pinned_fingerprint(given: &str) -> String {
    let given = given.trim();
    let hex = given
        .strip_prefix("SHA256:")
        .or_else(|| given.strip_prefix("sha256:"))
        .unwrap_or(given);
    hex.chars()
        .filter(|c| !matches!(c, ':' | ' '))
        .collect::<String>()
        .to_ascii_lowercase()
}

/// What the operator is told when no pin was given: loudly, the CA trusted and how to pin it.
fn first_use_warning(fingerprint: &str) -> String {
    let rule = "*".repeat(78);
    format!(
        "{rule}\n\
         WARNING: no --ca-sha256 or --ca-file given: trusting the CA this server presents on first use.\n\
         Anyone between this host and the server could have presented their own. The CA trusted now has\n  \
         SHA-256 {fingerprint}\n\
         Compare it with the one `dozor server` and `dozor tokens create` print; if they differ, delete\n\
         this agent's identity directory and enroll again. Pin it next time:\n  \
         dozor-agent enroll --server URL --token dze_... --ca-sha256 {fingerprint}\n\
         {rule}"
    )
}

/// Makes a key pair and a CSR: (key PEM, CSR PEM).
fn key_and_csr(hostname: &str) -> Result<(String, String)> {
    let key = rcgen::KeyPair::generate().context("generating the agent key")?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hostname);
    let csr = params
        .serialize_request(&key)
        .context("making the certificate request")?;
    Ok((key.serialize_pem(), csr.pem()?))
}

/// The server answered the enrollment with an error status.
#[derive(Debug)]
pub struct EnrollmentRefused {
    pub status: u16,
    pub message: String,
}

impl std::fmt::Display for EnrollmentRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "enrollment refused: {}", self.message)
    }
}

impl std::error::Error for EnrollmentRefused {}

impl EnrollmentRefused {
    /// A refusal that trying again will not change (a bad or used-up token, a duplicate
    /// hostname), as opposed to a server or proxy that is not ready (5xx, 408, 429).
    pub fn is_final(&self) -> bool {
        (400..500).contains(&self.status) && self.status != 408 && self.status != 429
    }
}

/// Options of `dozor-agent enroll`.
#[derive(Debug, Clone)]
pub struct EnrollOptions {
    pub server: String,
    pub token: Option<String>,
    pub trust: CaTrust,
    pub replace_duplicates: bool,
    pub timeout: Duration,
}

/// Enrolls (with a token) or renews (without one, using the current certificate) and saves
/// the new identity. Returns it and the server's answer.
pub fn enroll(dir: &Path, options: &EnrollOptions) -> Result<(Identity, EnrollResponse)> {
    let server = options.server.trim().trim_end_matches('/').to_owned();
    if !server.starts_with("https://") {
        bail!("--server must be an https:// URL (agents talk to the server over mutual TLS only)");
    }
    let facts = dozor_collect::host_facts();
    let (key_pem, csr_pem) = key_and_csr(&facts.hostname)?;
    let (ca_pem, client) = match &options.token {
        Some(_) => {
            let ca_pem = fetch_ca(&server, &options.trust, options.timeout)?;
            // Replacing this host's old agent: its certificate, presented with the token,
            // proves the old key, which the server accepts instead of an administrator's
            // permission on the token.
            let proof = options
                .replace_duplicates
                .then(|| Identity::load(dir).ok())
                .flatten()
                .filter(|old| {
                    certificate_sha256(&old.ca_pem).ok() == certificate_sha256(&ca_pem).ok()
                });
            let client = http_client(
                &ca_pem,
                proof
                    .as_ref()
                    .map(|old| (old.cert_pem.as_str(), old.key_pem.as_str())),
                options.timeout,
                options.timeout,
            )?;
            (ca_pem, client)
        }
        None => {
            let current = Identity::load(dir).context("renewing needs the current identity")?;
            let client = current.client(options.timeout, options.timeout)?;
            (current.ca_pem.clone(), client)
        }
    };
    let body = EnrollRequest {
        token: options.token.clone(),
        csr_pem,
        facts: agent_facts(&facts),
        replace_duplicates: options.replace_duplicates,
    };
    let url = format!("{server}/api/v1/agents/enroll");
    let (status, text) =
        post_json(&client, &url, &body, 1 << 20).with_context(|| format!("enrolling at {url}"))?;
    if status != 200 {
        return Err(EnrollmentRefused {
            status,
            message: problem_text(status, &text),
        }
        .into());
    }
    let answer: EnrollResponse =
        serde_json::from_str(&text).context("the enrollment answer is not understood")?;
    // The server's CA in the answer must be the one pinned.
    if certificate_sha256(&answer.ca_pem)? != certificate_sha256(&ca_pem)? {
        bail!("the server answered with another CA than the one it presented");
    }
    let identity = Identity {
        record: AgentRecord {
            agent_id: answer.agent_id.clone(),
            server,
            enrolled_at: chrono::Utc::now().timestamp_millis(),
            certificate_not_after: answer.certificate_not_after,
        },
        key_pem,
        cert_pem: answer.certificate_pem.clone(),
        ca_pem,
    };
    identity.save(dir)?;
    Ok((identity, answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_read_in_the_usual_spellings() {
        let hex = "ab".repeat(32);
        for given in [
            hex.clone(),
            hex.to_uppercase(),
            format!("SHA256:{}", hex.to_uppercase()),
            format!(" sha256:{hex} "),
            hex.as_bytes()
                .chunks(2)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join(":"),
        ] {
            assert_eq!(pinned_fingerprint(&given), hex, "{given}");
        }
        let warning = first_use_warning(&hex);
        assert!(warning.contains("WARNING") && warning.contains(&format!("--ca-sha256 {hex}")));
    }

    #[test]
    fn csr_is_pem_and_key_is_private() {
        let (key, csr) = key_and_csr("host-1").unwrap();
        assert!(key.contains("PRIVATE KEY"));
        assert!(csr.contains("CERTIFICATE REQUEST"));
    }

    #[cfg(unix)]
    #[test]
    fn saved_key_is_0600_and_loads_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let id_dir = dir.path().join("identity");
        let (key_pem, _) = key_and_csr("h").unwrap();
        let ca = rcgen::CertificateParams::new(vec!["ca".to_owned()])
            .unwrap()
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap();
        let identity = Identity {
            record: AgentRecord {
                agent_id: "a1".into(),
                server: "https://127.0.0.1:1".into(),
                enrolled_at: 1,
                certificate_not_after: 2,
            },
            key_pem,
            cert_pem: ca.pem(),
            ca_pem: ca.pem(),
        };
        identity.save(&id_dir).unwrap();
        let mode = std::fs::metadata(id_dir.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let back = Identity::load(&id_dir).unwrap();
        assert_eq!(back.record.agent_id, "a1");
        std::fs::set_permissions(
            id_dir.join(KEY_FILE),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let e = Identity::load(&id_dir).unwrap_err();
        assert!(e.to_string().contains("0600"), "{e}");
    }
}
