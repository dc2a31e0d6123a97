//! The built-in private CA and the server certificate it issues.
//!
//! On first start a CA (ECDSA P-256, 10 years) is created under `<data_dir>/pki/`; on every
//! start the server certificate is reused when it was issued by that CA, covers every
//! configured name and has at least 30 more days to live, and reissued otherwise.
//!
//! | file | mode | content |
//! |---|---|---|
//! | `ca.key.pem` | 0600 | the CA private key, then the CA certificate |
//! | `ca.crt.pem` | 0644 | the CA certificate (served at `/api/v1/ca.pem`) |
//! | `server.key.pem` | 0600 | the server private key, then its certificate chain |
//! | `server.crt.pem` | 0644 | the server certificate chain |
//!
//! A key and its certificate live in one file so they can never disagree, and new files are
//! written to a temporary file and linked into place: two processes starting at once on the
//! same data directory end up with one CA. [`CertificateAuthority::issue_client_certificate`]
//! signs agents' CSRs (enrollment, mTLS).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

pub const CA_KEY_FILE: &str = "ca.key.pem";
pub const CA_CERT_FILE: &str = "ca.crt.pem";
pub const SERVER_KEY_FILE: &str = "server.key.pem";
pub const SERVER_CERT_FILE: &str = "server.crt.pem";

/// Names every server certificate carries.
pub const DEFAULT_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// A server certificate is reissued when it has fewer days left than this.
pub const RENEW_BEFORE_DAYS: i64 = 30;

const CA_DAYS: i64 = 3650;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("certificate signing request: {0}")]
    Csr(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_owned(),
        source,
    }
}

fn invalid(path: &Path, message: impl Into<String>) -> PkiError {
    PkiError::Invalid {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// The ring crypto provider every TLS object of the server uses.
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The built-in certificate authority.
pub struct CertificateAuthority {
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .finish_non_exhaustive()
    }
}

/// A certificate chain and its private key.
#[derive(Debug)]
pub struct CertifiedKey {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for CertifiedKey {
    fn clone(&self) -> Self {
        CertifiedKey {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl CertificateAuthority {
    /// Loads the CA from `dir`, creating it (and `dir`, mode 0700) on first use.
    pub fn load_or_create(dir: &Path) -> Result<Self, PkiError> {
        ensure_private_dir(dir)?;
        let bundle = dir.join(CA_KEY_FILE);
        if !bundle.exists() {
            let (key_pem, cert_pem) = generate_ca()?;
            if write_new_private(&bundle, &format!("{key_pem}{cert_pem}"))? {
                tracing::info!(path = %bundle.display(), "created the Dozor certificate authority");
            }
        }
        let ca = Self::load(&bundle)?;
        write_public(&dir.join(CA_CERT_FILE), &ca.cert_pem)?;
        Ok(ca)
    }

    fn load(path: &Path) -> Result<Self, PkiError> {
        fix_private_mode(path)?;
        let text = fs::read(path).map_err(io_err(path))?;
        let key_der = PrivateKeyDer::from_pem_slice(&text)
            .map_err(|e| invalid(path, format!("no private key: {e}")))?;
        let cert_der = CertificateDer::from_pem_slice(&text)
            .map_err(|e| invalid(path, format!("no certificate: {e}")))?;
        // The key must be the certificate's.
        rustls::sign::CertifiedKey::from_der(
            vec![cert_der.clone()],
            key_der.clone_key(),
            &crypto_provider(),
        )
        .map_err(|e| invalid(path, format!("key and certificate do not match: {e}")))?;
        let key = KeyPair::try_from(&key_der)
            .map_err(|e| invalid(path, format!("unusable private key: {e}")))?;
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)
            .map_err(|e| invalid(path, format!("unusable CA certificate: {e}")))?;
        let cert_pem = pem_encode("CERTIFICATE", &cert_der);
        Ok(CertificateAuthority {
            cert_der,
            cert_pem,
            issuer,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// A root store holding only this CA.
    pub fn root_store(&self) -> Result<rustls::RootCertStore, PkiError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert_der.clone())?;
        Ok(roots)
    }

    /// Issues a server certificate for `names` (DNS names or IP addresses), valid `days`.
    pub fn issue_server_certificate(
        &self,
        names: &[String],
        days: u32,
    ) -> Result<CertifiedKey, PkiError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(names.to_vec())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Dozor");
        dn.push(
            DnType::CommonName,
            names.first().map(String::as_str).unwrap_or("dozor server"),
        );
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(i64::from(days));
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(CertifiedKey {
            chain: vec![cert.der().clone(), self.cert_der.clone()],
            key: PrivateKeyDer::from(key),
        })
    }

    /// Checks that an agent's certificate signing request (PEM) can be signed: it parses, its
    /// signature verifies with its own key, and the key's algorithm is one we sign for.
    pub fn check_csr(&self, csr_pem: &str) -> Result<(), PkiError> {
        CertificateSigningRequestParams::from_pem(csr_pem)
            .map(drop)
            .map_err(|e| PkiError::Csr(e.to_string()))
    }

    /// Signs an agent's certificate signing request (PEM). The certificate names the agent
    /// in its subject CN and a `urn:dozor:agent:<id>` URI SAN, is for client authentication
    /// only, whatever the CSR asks for, and is valid `days`. Returns the certificate, PEM.
    pub fn issue_client_certificate(
        &self,
        csr_pem: &str,
        agent_id: &str,
        days: u32,
    ) -> Result<String, PkiError> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| PkiError::Csr(e.to_string()))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Dozor agents");
        dn.push(DnType::CommonName, agent_id);
        params.distinguished_name = dn;
        params.subject_alt_names = vec![SanType::URI(
            format!("urn:dozor:agent:{agent_id}")
                .try_into()
                .map_err(|e: rcgen::Error| PkiError::Csr(e.to_string()))?,
        )];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(i64::from(days));
        csr.params = params;
        Ok(csr.signed_by(&self.issuer)?.pem())
    }

    /// Is `cert` (with `intermediates`) issued by this CA, valid for every name in `names` and
    /// still valid `days_ahead` days from now?
    pub fn verifies_server_certificate(
        &self,
        chain: &[CertificateDer<'static>],
        names: &[String],
        days_ahead: i64,
    ) -> Result<(), String> {
        let Some((end_entity, intermediates)) = chain.split_first() else {
            return Err("empty certificate chain".into());
        };
        let roots = self.root_store().map_err(|e| e.to_string())?;
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            crypto_provider(),
        )
        .build()
        .map_err(|e| e.to_string())?;
        let later = time::OffsetDateTime::now_utc() + time::Duration::days(days_ahead);
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(later.unix_timestamp()).unwrap_or(0),
        ));
        // The CA itself is the trust anchor; only real intermediates go along.
        let intermediates: Vec<_> = intermediates
            .iter()
            .filter(|c| **c != self.cert_der)
            .cloned()
            .collect();
        for name in names {
            let server_name = ServerName::try_from(name.clone())
                .map_err(|e| format!("{name:?} is not a server name: {e}"))?;
            verifier
                .verify_server_cert(end_entity, &intermediates, &server_name, &[], at)
                .map_err(|e| format!("{name}: {e}"))?;
        }
        Ok(())
    }
}

fn generate_ca() -> Result<(String, String), PkiError> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Dozor");
    // A random suffix tells the CAs of different installations apart in trust stores.
    let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    dn.push(DnType::CommonName, format!("Dozor CA {suffix}"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(CA_DAYS);
    let cert = params.self_signed(&key)?;
    Ok((key.serialize_pem(), cert.pem()))
}

/// The server's TLS identity, loaded or issued.
pub struct ServerPki {
    pub ca: CertificateAuthority,
    /// The certificate served; `None` when TLS is off.
    pub server: Option<CertifiedKey>,
}

/// Loads (or creates) the CA under `dir` and, when `tls` is on, the server certificate: the
/// operator's own (`own = Some((cert_file, key_file))`) or one issued by the CA for
/// [`DEFAULT_NAMES`] plus `hostnames`.
pub fn load_or_create(
    dir: &Path,
    tls: bool,
    hostnames: &[String],
    days: u32,
    own: Option<(&Path, &Path)>,
) -> Result<ServerPki, PkiError> {
    let ca = CertificateAuthority::load_or_create(dir)?;
    if !tls {
        return Ok(ServerPki { ca, server: None });
    }
    let server = match own {
        Some((cert_file, key_file)) => load_own(cert_file, key_file)?,
        None => load_or_issue_server(&ca, dir, hostnames, days)?,
    };
    Ok(ServerPki {
        ca,
        server: Some(server),
    })
}

/// Every name the built-in server certificate carries.
pub fn server_names(hostnames: &[String]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in hostnames
        .iter()
        .map(String::as_str)
        .chain(DEFAULT_NAMES.iter().copied())
    {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            names.push(name.to_owned());
        }
    }
    names
}

fn load_or_issue_server(
    ca: &CertificateAuthority,
    dir: &Path,
    hostnames: &[String],
    days: u32,
) -> Result<CertifiedKey, PkiError> {
    let names = server_names(hostnames);
    let bundle = dir.join(SERVER_KEY_FILE);
    if bundle.exists() {
        match read_bundle(&bundle) {
            Ok(existing) => {
                match ca.verifies_server_certificate(&existing.chain, &names, RENEW_BEFORE_DAYS) {
                    Ok(()) => {
                        write_public(&dir.join(SERVER_CERT_FILE), &chain_pem(&existing.chain))?;
                        return Ok(existing);
                    }
                    Err(why) => tracing::info!(
                        path = %bundle.display(),
                        "reissuing the server certificate: {why}"
                    ),
                }
            }
            Err(e) => tracing::warn!("reissuing the server certificate: {e}"),
        }
    }
    let issued = ca.issue_server_certificate(&names, days)?;
    let key_pem = pem_encode("PRIVATE KEY", issued.key.secret_der());
    let chain = chain_pem(&issued.chain);
    replace_private(&bundle, &format!("{key_pem}{chain}"))?;
    write_public(&dir.join(SERVER_CERT_FILE), &chain)?;
    tracing::info!(path = %bundle.display(), names = ?names, "issued a server certificate");
    Ok(issued)
}

fn read_bundle(path: &Path) -> Result<CertifiedKey, PkiError> {
    fix_private_mode(path)?;
    let text = fs::read(path).map_err(io_err(path))?;
    let key = PrivateKeyDer::from_pem_slice(&text)
        .map_err(|e| invalid(path, format!("no private key: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(path, format!("bad certificate: {e}")))?;
    if chain.is_empty() {
        return Err(invalid(path, "no certificate"));
    }
    Ok(CertifiedKey { chain, key })
}

fn load_own(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, PkiError> {
    let text = fs::read(cert_file).map_err(io_err(cert_file))?;
    let chain = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(cert_file, format!("bad certificate: {e}")))?;
    if chain.is_empty() {
        return Err(invalid(cert_file, "no certificate in the file"));
    }
    let key_text = fs::read(key_file).map_err(io_err(key_file))?;
    let key = PrivateKeyDer::from_pem_slice(&key_text)
        .map_err(|e| invalid(key_file, format!("no private key: {e}")))?;
    Ok(CertifiedKey { chain, key })
}

/// PEM text of DER bytes.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(chunk.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(chunk.get(2).copied().unwrap_or(0));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn chain_pem(chain: &[CertificateDer<'static>]) -> String {
    chain.iter().map(|c| pem_encode("CERTIFICATE", c)).collect()
}

fn ensure_private_dir(dir: &Path) -> Result<(), PkiError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    set_mode(dir, 0o700)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<(), PkiError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err(path))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<(), PkiError> {
    Ok(())
}

/// Private key files must be readable by the owner only; anything looser is tightened.
#[cfg(unix)]
fn fix_private_mode(path: &Path) -> Result<(), PkiError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)
        .map_err(io_err(path))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            "private key file had mode {:o}; setting it to 600",
            mode & 0o777
        );
        set_mode(path, 0o600)?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn fix_private_mode(_path: &Path) -> Result<(), PkiError> {
    Ok(())
}

/// A new file beside `path`, created with `mode`, holding `contents`, synced.
fn write_temp(path: &Path, contents: &str, mode: u32) -> Result<PathBuf, PkiError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        uuid::Uuid::new_v4().simple()
    ));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp).map_err(io_err(&tmp))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_err(&tmp))?;
    Ok(tmp)
}

/// Creates `path` (mode 0600) unless it exists. Returns whether this call created it.
fn write_new_private(path: &Path, contents: &str) -> Result<bool, PkiError> {
    let tmp = write_temp(path, contents, 0o600)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(PkiError::Io {
            path: path.to_owned(),
            source: e,
        }),
    }
}

/// Replaces `path` atomically with a 0600 file (a reader sees the old file or the new one,
/// never half of one).
pub fn replace_private(path: &Path, contents: &str) -> Result<(), PkiError> {
    let tmp = write_temp(path, contents, 0o600)?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

/// Writes a public (0644) file atomically unless it already holds `contents`.
pub fn write_public(path: &Path, contents: &str) -> Result<(), PkiError> {
    if fs::read_to_string(path).is_ok_and(|old| old == contents) {
        return Ok(());
    }
    let tmp = write_temp(path, contents, 0o644)?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_encoding_round_trips() {
        for len in 0..70 {
            let der: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let pem = pem_encode("CERTIFICATE", &der);
            let back = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
            assert_eq!(back.as_ref(), der.as_slice(), "len {len}");
        }
    }

    #[test]
    fn ca_is_created_once_and_issues_server_and_client_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        let names = vec!["dozor.example".to_string()];
        let first = load_or_create(&pki, true, &names, 90, None).unwrap();
        let second = load_or_create(&pki, true, &names, 90, None).unwrap();
        assert_eq!(first.ca.cert_pem(), second.ca.cert_pem());
        let (a, b) = (first.server.unwrap(), second.server.unwrap());
        assert_eq!(a.chain, b.chain, "the server certificate is reused");
        first
            .ca
            .verifies_server_certificate(&a.chain, &server_names(&names), 0)
            .unwrap();

        // A new name makes it reissue, with the same CA.
        let more = vec!["dozor.example".to_string(), "10.0.0.5".to_string()];
        let third = load_or_create(&pki, true, &more, 90, None).unwrap();
        assert_eq!(third.ca.cert_pem(), first.ca.cert_pem());
        assert_ne!(third.server.unwrap().chain[0], a.chain[0]);

        // A certificate that expires within 30 days is reissued at the next start.
        let other = tempfile::tempdir().unwrap();
        let short = load_or_create(other.path(), true, &[], 20, None).unwrap();
        let again = load_or_create(other.path(), true, &[], 20, None).unwrap();
        assert_ne!(
            short.server.unwrap().chain[0],
            again.server.unwrap().chain[0]
        );

        // Client certificates from CSRs.
        let agent_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let csr = CertificateParams::new(vec!["anything".to_string()])
            .unwrap()
            .serialize_request(&agent_key)
            .unwrap()
            .pem()
            .unwrap();
        let cert = first
            .ca
            .issue_client_certificate(&csr, "agent-7", 30)
            .unwrap();
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        let roots = Arc::new(first.ca.root_store().unwrap());
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots, crypto_provider())
                .build()
                .unwrap();
        verifier
            .verify_client_cert(&der, &[], UnixTime::now())
            .unwrap();
        assert!(first.ca.issue_client_certificate("junk", "a", 1).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn key_files_are_private_and_loose_modes_are_fixed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        load_or_create(&pki, true, &[], 90, None).unwrap();
        let mode = |f: &str| fs::metadata(pki.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(CA_KEY_FILE), 0o600);
        assert_eq!(mode(SERVER_KEY_FILE), 0o600);
        assert_eq!(mode(CA_CERT_FILE), 0o644);
        assert_eq!(
            fs::metadata(&pki).unwrap().permissions().mode() & 0o777,
            0o700
        );
        fs::set_permissions(pki.join(CA_KEY_FILE), fs::Permissions::from_mode(0o644)).unwrap();
        load_or_create(&pki, true, &[], 90, None).unwrap();
        assert_eq!(mode(CA_KEY_FILE), 0o600);
    }

    #[test]
    fn a_broken_ca_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(CA_KEY_FILE), "garbage").unwrap();
        let e = CertificateAuthority::load_or_create(dir.path()).unwrap_err();
        assert!(e.to_string().contains(CA_KEY_FILE), "{e}");
    }
}
