//! HTTP settings shared by the network sources: trust (system roots, a custom CA, pinning),
//! proxy, timeouts; and the mapping of transport failures onto [`SourceError`].
//!
//! TLS is rustls on the `ring` provider, handed to reqwest as a finished config.
//!
//! **Pinning** compares the SHA-256 of the server certificate's *SubjectPublicKeyInfo* (the
//! DER of its public key, as in HPKP and `openssl x509 -pubkey | openssl pkey -pubin
//! -outform der | sha256sum`), in hex. A pin survives a certificate renewal that keeps the
//! key. With pins and no CA, a pinned certificate is accepted whatever signed it and
//! whatever names it carries (the usual self-signed MISP); with pins *and* a CA, the chain
//! and the name are verified against the CA and the pin must match as well. The handshake
//! signature is always verified.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

use crate::{SourceError, excerpt};

/// How a network source connects.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// PEM file(s) of CA certificates to trust instead of the system roots.
    pub ca_pem: Option<PemSource>,
    /// SHA-256 pins (hex, 64 digits, `:` allowed) of the server certificate's SPKI.
    pub pins_sha256: Vec<String>,
    /// `http://`, `https://` or `socks5://` proxy for every request; none by default.
    pub proxy: Option<String>,
    pub connect_timeout: Duration,
    /// For a whole request, body included.
    pub timeout: Duration,
    /// Sent as `User-Agent`.
    pub user_agent: String,
    /// The largest response body read (a feed event, a page, a bundle); larger is
    /// [`SourceError::TooLarge`]. 512 MiB by default.
    pub max_body_bytes: u64,
}

/// A CA bundle: a file to read or PEM text.
#[derive(Debug, Clone)]
pub enum PemSource {
    File(PathBuf),
    Text(String),
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            ca_pem: None,
            pins_sha256: Vec::new(),
            proxy: None,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(120),
            user_agent: concat!("dozor-intel/", env!("CARGO_PKG_VERSION")).to_owned(),
            max_body_bytes: 512 << 20,
        }
    }
}

/// A client and the body limit it reads with.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    pub client: reqwest::Client,
    pub max_body: u64,
}

impl Http {
    pub async fn send(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::header::HeaderMap, Vec<u8>), SourceError> {
        send(url, request, self.max_body).await
    }
}

impl HttpSettings {
    pub(crate) fn http(&self) -> Result<Http, SourceError> {
        Ok(Http {
            client: self.client()?,
            max_body: self.max_body_bytes,
        })
    }

    /// A reqwest client with these settings.
    pub fn client(&self) -> Result<reqwest::Client, SourceError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = match &self.ca_pem {
            Some(pem) => Some(Arc::new(root_store(pem)?)),
            None => None,
        };
        let pins = self
            .pins_sha256
            .iter()
            .map(|p| parse_pin(p))
            .collect::<Result<Vec<_>, _>>()?;
        let chain: Option<Arc<dyn ServerCertVerifier>> = match roots {
            Some(roots) => Some(
                rustls::client::WebPkiServerVerifier::builder_with_provider(
                    roots,
                    provider.clone(),
                )
                .build()
                .map_err(|e| SourceError::Config(format!("CA bundle: {e}")))?,
            ),
            None if pins.is_empty() => Some(Arc::new(
                rustls_platform_verifier::Verifier::new(provider.clone())
                    .map_err(|e| SourceError::Config(format!("system roots: {e}")))?,
            )),
            None => None,
        };
        let verifier: Arc<dyn ServerCertVerifier> = if pins.is_empty() {
            chain.ok_or_else(|| SourceError::Config("no certificate verifier".into()))?
        } else {
            Arc::new(PinVerifier {
                pins,
                chain,
                provider: provider.clone(),
            })
        };
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| SourceError::Config(format!("TLS versions: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .user_agent(self.user_agent.clone())
            .no_proxy();
        if let Some(proxy) = &self.proxy {
            let proxy = reqwest::Proxy::all(proxy)
                .map_err(|e| SourceError::Config(format!("proxy {proxy:?}: {e}")))?;
            builder = builder.proxy(proxy);
        }
        builder
            .build()
            .map_err(|e| SourceError::Config(format!("HTTP client: {e}")))
    }
}

fn root_store(pem: &PemSource) -> Result<RootCertStore, SourceError> {
    let (origin, text) = match pem {
        PemSource::File(path) => (
            path.display().to_string(),
            std::fs::read(path).map_err(|e| SourceError::io(path, e))?,
        ),
        PemSource::Text(text) => ("CA PEM".to_owned(), text.as_bytes().to_vec()),
    };
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&text) {
        let cert = cert.map_err(|e| SourceError::Config(format!("{origin}: {e}")))?;
        store
            .add(cert)
            .map_err(|e| SourceError::Config(format!("{origin}: {e}")))?;
    }
    if store.is_empty() {
        return Err(SourceError::Config(format!(
            "{origin}: no CERTIFICATE block in the CA file"
        )));
    }
    Ok(store)
}

fn parse_pin(pin: &str) -> Result<[u8; 32], SourceError> {
    let hex: String = pin.chars().filter(|c| *c != ':').collect();
    let bad = || {
        SourceError::Config(format!(
            "pin {pin:?}: a pin is the SHA-256 of the certificate's SPKI, 64 hex digits"
        ))
    };
    if hex.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
            .map_err(|_| bad())?;
    }
    Ok(out)
}

/// SHA-256 of a DER certificate's SubjectPublicKeyInfo, lowercase hex: the pin format.
pub fn spki_sha256(cert_der: &[u8]) -> Result<String, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).map_err(|e| e.to_string())?;
    Ok(hex(&Sha256::digest(cert.tbs_certificate.subject_pki.raw)))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

struct PinVerifier {
    pins: Vec<[u8; 32]>,
    chain: Option<Arc<dyn ServerCertVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl fmt::Debug for PinVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinVerifier")
            .field("pins", &self.pins.len())
            .finish()
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(chain) = &self.chain {
            chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        }
        let (_, cert) = x509_parser::parse_x509_certificate(end_entity).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        let got: [u8; 32] = Sha256::digest(cert.tbs_certificate.subject_pki.raw).into();
        if self.pins.contains(&got) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(PinMismatch(hex(
                    &got,
                ))))),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[derive(Debug)]
struct PinMismatch(String);

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server's public key (SPKI SHA-256 {}) matches no configured pin",
            self.0
        )
    }
}

impl std::error::Error for PinMismatch {}

/// Maps a reqwest failure onto [`SourceError`], digging out TLS causes.
pub(crate) fn transport_error(url: &str, e: reqwest::Error) -> SourceError {
    if e.is_timeout() {
        return SourceError::Timeout {
            url: url.to_owned(),
        };
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
    let mut chain = Vec::new();
    while let Some(s) = source {
        if let Some(tls) = find_rustls(s) {
            return SourceError::Tls {
                url: url.to_owned(),
                reason: tls_reason(tls),
            };
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return SourceError::Timeout {
                url: url.to_owned(),
            };
        }
        chain.push(s.to_string());
        source = s.source();
    }
    let reason = if chain.is_empty() {
        e.to_string()
    } else {
        format!("{e}: {}", chain.join(": "))
    };
    SourceError::Transport {
        url: url.to_owned(),
        reason,
    }
}

/// A rustls error in `e`, looking through (nested) `io::Error` wrappers.
fn find_rustls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let mut io = e.downcast_ref::<std::io::Error>()?;
    loop {
        let inner = io.get_ref()?;
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        io = inner.downcast_ref::<std::io::Error>()?;
    }
}

/// A rustls error in words (its own Display prints a pin mismatch as Debug).
fn tls_reason(e: &rustls::Error) -> String {
    if let rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) = e
        && let Some(pin) = other.0.downcast_ref::<PinMismatch>()
    {
        return pin.to_string();
    }
    e.to_string()
}

/// Sends a request and reads the whole body; 401/403 become [`SourceError::Auth`] with the
/// server's message, other non-2xx statuses [`SourceError::Http`] with a body excerpt.
async fn send(
    url: &str,
    request: reqwest::RequestBuilder,
    max_body: u64,
) -> Result<(reqwest::header::HeaderMap, Vec<u8>), SourceError> {
    let mut response = request.send().await.map_err(|e| transport_error(url, e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let too_large = || SourceError::TooLarge {
        url: url.to_owned(),
        limit: max_body,
    };
    if response.content_length().is_some_and(|l| l > max_body) {
        return Err(too_large());
    }
    let mut body: Vec<u8> = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(url, e))?
    {
        if (body.len() + chunk.len()) as u64 > max_body {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    if status.is_success() {
        return Ok((headers, body.to_vec()));
    }
    let text = String::from_utf8_lossy(&body);
    if status.as_u16() == 401 || status.as_u16() == 403 {
        return Err(SourceError::Auth {
            url: url.to_owned(),
            status: status.as_u16(),
            message: server_message(&text),
        });
    }
    Err(SourceError::Http {
        url: url.to_owned(),
        status: status.as_u16(),
        body: excerpt(&text, 300),
    })
}

/// The `message` (or `name`, `description`, `title`) of a JSON error body, else an excerpt.
fn server_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        for key in ["message", "name", "description", "title", "errors"] {
            match v.get(key) {
                Some(serde_json::Value::String(s)) => return excerpt(s, 300),
                Some(other) if !other.is_null() => return excerpt(&other.to_string(), 300),
                _ => {}
            }
        }
    }
    excerpt(body, 300)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_64_hex_digits() {
        assert!(parse_pin(&"ab".repeat(32)).is_ok());
        assert!(parse_pin(&"AB:".repeat(32)).is_ok());
        assert!(parse_pin("abc").is_err());
        assert!(parse_pin(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            server_message(
                r#"{"name":"Authentication failed.","message":"Invalid key","url":"/x"}"#
            ),
            "Invalid key"
        );
        assert_eq!(server_message("plain text"), "plain text");
    }
}
