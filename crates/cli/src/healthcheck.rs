//! `dozor healthcheck`: is the server on this machine (or in this container) answering?
//!
//! Made for container health checks, where the image has no shell and no curl: it reads the
//! same configuration as `dozor server` (file, `DOZOR_*` environment, options), connects to
//! the listener on loopback and asks `/readyz` (or `/healthz` with `--live`).
//!
//! The server's certificate is checked by pinning: the certificate presented must be exactly
//! the one in the server's certificate file (`tls.cert_file`, or the built-in CA's
//! `<data_dir>/pki/server.crt.pem`). That proves it is this server answering without needing
//! loopback among the certificate's names, and works for operator-supplied certificates too.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use dozor_server::{Config, ServerArgs};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Exit code: the server answered ready (or alive, with `--live`).
pub const HEALTHY: u8 = 0;
/// Exit code: no answer, or not ready.
pub const UNHEALTHY: u8 = 1;

/// The largest answer read: `/readyz` is a small JSON document.
const MAX_ANSWER: u64 = 64 * 1024;

#[derive(Args)]
pub struct HealthcheckArgs {
    /// The server's configuration file (as given to `dozor server`).
    #[arg(long, short = 'c', env = "DOZOR_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The server's data directory (as given to `dozor server`).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The server's listen address (as given to `dozor server`); a wildcard address is
    /// reached on loopback.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Ask `/healthz` (the process answers) instead of `/readyz` (it can do its work: store,
    /// queue, rules).
    #[arg(long)]
    live: bool,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    timeout: u64,
}

/// Runs the check, prints one line, and answers the exit code: 1 for anything but ready,
/// a configuration that does not load included (Docker reserves exit code 2).
pub fn run(args: HealthcheckArgs) -> Result<u8> {
    match check(&args) {
        Ok(code) => Ok(code),
        Err(e) => {
            println!("unhealthy: {e:#}");
            Ok(UNHEALTHY)
        }
    }
}

fn check(args: &HealthcheckArgs) -> Result<u8> {
    let server_args = ServerArgs {
        config: args.config.clone(),
        data_dir: args.data_dir.clone(),
        listen: args.listen.clone(),
        ..ServerArgs::default()
    };
    let config = Config::load(&server_args, std::env::vars()).context("configuration")?;
    let path = if args.live { "/healthz" } else { "/readyz" };
    let address = loopback_for(config.listen);
    let timeout = Duration::from_secs(args.timeout.max(1));
    let pinned = if config.tls.enabled {
        let file = config
            .tls
            .cert_file
            .clone()
            .unwrap_or_else(|| config.pki_dir().join(dozor_server::pki::SERVER_CERT_FILE));
        Some(leaf_certificate(&file)?)
    } else {
        None
    };
    match ask(address, path, pinned, timeout) {
        Ok((200, _)) => {
            println!("healthy: {path} on {address} answered 200");
            Ok(HEALTHY)
        }
        Ok((status, body)) => {
            println!("unhealthy: {path} on {address} answered {status}: {body}");
            Ok(UNHEALTHY)
        }
        Err(e) => {
            println!("unhealthy: {path} on {address}: {e:#}");
            Ok(UNHEALTHY)
        }
    }
}

/// Where to reach a listener: its own address, or loopback when it listens on every address.
fn loopback_for(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// The first certificate of a PEM chain file (a key in the same file is skipped).
fn leaf_certificate(path: &Path) -> Result<CertificateDer<'static>> {
    let mut certificates = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading the server certificate {}", path.display()))?;
    match certificates.next() {
        Some(first) => {
            first.with_context(|| format!("reading the server certificate {}", path.display()))
        }
        None => bail!("{}: no certificate in the file", path.display()),
    }
}

/// One `GET` over a fresh connection: the status code and the first line of the body.
fn ask(
    address: SocketAddr,
    path: &str,
    pinned: Option<CertificateDer<'static>>,
    timeout: Duration,
) -> Result<(u16, String)> {
    let mut tcp = TcpStream::connect_timeout(&address, timeout).context("connecting")?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nUser-Agent: dozor-healthcheck\r\n\r\n"
    );
    let mut answer = Vec::new();
    match pinned {
        Some(certificate) => {
            let provider = dozor_server::pki::crypto_provider();
            let verifier = Arc::new(PinnedCertificate {
                certificate,
                algorithms: provider.signature_verification_algorithms,
            });
            let tls = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
            // The name is not checked (the certificate is pinned), only sent as SNI.
            let name = ServerName::try_from("localhost")?.to_owned();
            let connection = rustls::ClientConnection::new(Arc::new(tls), name)?;
            let mut stream = rustls::StreamOwned::new(connection, tcp);
            stream.write_all(request.as_bytes()).context("sending")?;
            read_answer(&mut stream, &mut answer)?;
        }
        None => {
            tcp.write_all(request.as_bytes()).context("sending")?;
            read_answer(&mut tcp, &mut answer)?;
        }
    }
    parse_answer(&answer)
}

fn read_answer(stream: &mut impl Read, answer: &mut Vec<u8>) -> Result<()> {
    match stream.take(MAX_ANSWER).read_to_end(answer) {
        Ok(_) => Ok(()),
        // The server closes without close_notify after `Connection: close`: what arrived counts.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => Ok(()),
        Err(e) => Err(e).context("reading the answer"),
    }
}

/// The status code of an HTTP/1.1 answer, and the first line of its body (for the message).
fn parse_answer(answer: &[u8]) -> Result<(u16, String)> {
    let text = String::from_utf8_lossy(answer);
    let status_line = text.lines().next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .with_context(|| format!("not an HTTP answer: {:?}", truncate(status_line, 80)))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.lines().find(|l| !l.trim().is_empty()).unwrap_or(""))
        .unwrap_or("");
    Ok((status, truncate(body, 300)))
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Accepts exactly one certificate (signatures are still verified, so the peer must hold its
/// key).
#[derive(Debug)]
struct PinnedCertificate {
    certificate: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.certificate.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the server presented a certificate other than the one in its certificate file"
                    .into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listeners_are_reached_on_loopback() {
        assert_eq!(
            loopback_for("0.0.0.0:8443".parse().unwrap()),
            "127.0.0.1:8443".parse().unwrap()
        );
        assert_eq!(
            loopback_for("[::]:9000".parse().unwrap()),
            "[::1]:9000".parse().unwrap()
        );
        assert_eq!(
            loopback_for("10.1.2.3:8443".parse().unwrap()),
            "10.1.2.3:8443".parse().unwrap()
        );
    }

    #[test]
    fn answers_are_read_for_status_and_reason() {
        let (status, body) = parse_answer(
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\r\n{\"status\":\"degraded\"}",
        )
        .unwrap();
        assert_eq!(status, 503);
        assert_eq!(body, "{\"status\":\"degraded\"}");
        assert!(parse_answer(b"SSH-2.0-OpenSSH").is_err());
    }
}
