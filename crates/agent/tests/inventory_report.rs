//! The real `dozor-agent` reports this machine's software inventory (read from the real
//! `/var/lib/dpkg/status`) at start to a stand-in server inside the test: HTTPS on 127.0.0.1
//! with a CA the test makes, requiring the agent's client certificate (mutual TLS, as the real
//! server does). The stand-in answers the first report 503, so the test also sees the retry
//! come soon (not an hour later) and nothing more after the acknowledgement.
//!
//! The stand-in, not the real `dozor server`, because the server side of the route is written
//! separately; the wire format both follow is in crates/agent/README.md.

#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::start_agent;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use serde_json::Value;

const DPKG_STATUS: &str = "/var/lib/dpkg/status";

/// One request the stand-in server received.
struct Received {
    path: String,
    body: Vec<u8>,
    /// The status it answered.
    answered: u16,
    at: Instant,
}

/// The CA, the server's certificate for 127.0.0.1 and the agent's client certificate (PEM).
struct Pki {
    ca_pem: String,
    server_cert_der: Vec<u8>,
    server_key_der: Vec<u8>,
    client_cert_pem: String,
    client_key_pem: String,
}

fn make_pki(agent_id: &str) -> Pki {
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "inventory test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("server key");
    let mut server_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server params");
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .expect("server cert");

    let client_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("client key");
    let mut client_params = CertificateParams::new(Vec::<String>::new()).expect("client params");
    client_params
        .distinguished_name
        .push(DnType::CommonName, agent_id);
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params
        .signed_by(&client_key, &issuer)
        .expect("client cert");

    Pki {
        ca_pem: ca_cert.pem(),
        server_cert_der: server_cert.der().to_vec(),
        server_key_der: server_key.serialize_der(),
        client_cert_pem: client_cert.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

/// What `dozor-agent enroll` would have left in `<state>/identity/`.
fn write_identity(state: &Path, pki: &Pki, agent_id: &str, server: &str) {
    use std::os::unix::fs::PermissionsExt;
    let dir = state.join("identity");
    std::fs::create_dir_all(&dir).expect("identity dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod dir");
    let key = dir.join("key.pem");
    std::fs::write(&key, &pki.client_key_pem).expect("key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod key");
    std::fs::write(dir.join("cert.pem"), &pki.client_cert_pem).expect("cert");
    std::fs::write(dir.join("ca.pem"), &pki.ca_pem).expect("ca");
    let now = chrono::Utc::now().timestamp_millis();
    std::fs::write(
        dir.join("agent.json"),
        serde_json::json!({
            "agent_id": agent_id,
            "server": server,
            "enrolled_at": now,
            "certificate_not_after": now + 365 * 86_400_000i64,
        })
        .to_string(),
    )
    .expect("agent.json");
}

/// A TLS server that accepts only clients with a certificate of the test's CA.
fn tls_config(pki: &Pki) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()) {
        roots.add(cert.expect("ca pem")).expect("ca root");
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("client verifier");
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![rustls_pki_types::CertificateDer::from(
                pki.server_cert_der.clone(),
            )],
            rustls_pki_types::PrivateKeyDer::Pkcs8(pki.server_key_der.clone().into()),
        )
        .expect("server cert");
    Arc::new(config)
}

/// Reads one HTTP/1.1 request (headers and a Content-Length body): (method, path, body).
fn read_request(stream: &mut impl Read) -> Option<(String, String, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut request_line = head.lines().next()?.split_whitespace();
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = data[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&buf[..n]);
    }
    Some((method, path, body))
}

/// Answers one connection: the inventory route fails its first call with 503 and acknowledges
/// the later ones; every other route is 404 (an agent treats that as an older server).
fn serve(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    inventory_calls: &AtomicUsize,
    received: &mpsc::Sender<Received>,
) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(connection) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    let Some((method, path, body)) = read_request(&mut tls) else {
        return;
    };
    let (status, answer) = if method == "POST" && path == "/api/v1/agents/inventory" {
        if inventory_calls.fetch_add(1, Ordering::SeqCst) == 0 {
            (
                503,
                r#"{"title":"Service Unavailable","detail":"test outage"}"#,
            )
        } else {
            (200, r#"{"stored":true,"findings":0}"#)
        }
    } else {
        (404, r#"{"title":"Not Found","detail":"not in this test"}"#)
    };
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Service Unavailable",
    };
    let _ = write!(
        tls,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
    let _ = tls.flush();
    tls.conn.send_close_notify();
    let _ = tls.flush();
    let _ = received.send(Received {
        path,
        body,
        answered: status,
        at: Instant::now(),
    });
}

/// Names of the packages dpkg's status file lists as installed.
fn installed_dpkg_names(status: &str) -> BTreeSet<String> {
    status
        .split("\n\n")
        .filter(|stanza| {
            stanza
                .lines()
                .any(|l| l.trim_end() == "Status: install ok installed")
        })
        .filter_map(|stanza| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix("Package:"))
                .map(|n| n.trim().to_owned())
        })
        .collect()
}

#[test]
fn agent_reports_this_machines_dpkg_inventory_at_start_and_retries_after_503() {
    let Ok(dpkg_status) = std::fs::read_to_string(DPKG_STATUS) else {
        eprintln!("SKIPPED: no {DPKG_STATUS} on this machine");
        return;
    };
    let expected_names = installed_dpkg_names(&dpkg_status);
    assert!(!expected_names.is_empty(), "dpkg lists installed packages");

    let dir = tempfile::tempdir().expect("tempdir");
    let agent_id = "0193a5f0-0000-7000-8000-00000000inv1";
    let pki = make_pki(agent_id);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let server_url = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let tls = tls_config(&pki);
    let (received_tx, received_rx) = mpsc::channel();
    let inventory_calls = Arc::new(AtomicUsize::new(0));
    {
        let inventory_calls = inventory_calls.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming().map_while(Result::ok) {
                let tls = tls.clone();
                let calls = inventory_calls.clone();
                let received = received_tx.clone();
                std::thread::spawn(move || serve(tcp, tls, &calls, &received));
            }
        });
    }

    let state = dir.path().join("state");
    write_identity(&state, &pki, agent_id, &server_url);
    let config = dir.path().join("agent.toml");
    // Collectors, scanning and the long poll off: only heartbeats and the inventory talk.
    std::fs::write(
        &config,
        format!(
            r#"state_dir = "{state}"

[transport]
heartbeat_interval_secs = 1
request_timeout_secs = 10

[collect.process]
enabled = false
[collect.network]
enabled = false
[collect.fim]
enabled = false
[collect.auth]
enabled = false

[scan]
enabled = false

[response]
long_poll = false

[inventory]
enabled = true
interval_secs = 3600
"#,
            state = state.display()
        ),
    )
    .expect("config");
    let log = dir.path().join("agent.log");
    let agent = start_agent(&config, &log);

    let mut reports = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while reports.len() < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(request) = received_rx.recv_timeout(left) else {
            panic!(
                "{} inventory report(s) within 60 s; agent log:\n{}",
                reports.len(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        if request.path == "/api/v1/agents/inventory" {
            reports.push(request);
        }
    }
    // Acknowledged and unchanged: nothing more before the next interval (an hour).
    std::thread::sleep(Duration::from_secs(4));
    let later: Vec<String> = received_rx
        .try_iter()
        .filter(|r| r.path == "/api/v1/agents/inventory")
        .map(|r| r.answered.to_string())
        .collect();
    agent.stop();
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        later.is_empty(),
        "no report after the acknowledgement: {later:?}\n{log_text}"
    );

    let (failed, acknowledged) = (&reports[0], &reports[1]);
    assert_eq!(failed.answered, 503);
    assert_eq!(acknowledged.answered, 200);
    let retry_after = acknowledged.at.duration_since(failed.at);
    assert!(
        retry_after < Duration::from_secs(10),
        "the failed report is retried soon (heartbeat interval 1 s, backoff), not at the next interval: {retry_after:?}"
    );
    assert_eq!(
        failed.body, acknowledged.body,
        "the same report is sent again"
    );

    let body: Value = serde_json::from_slice(&acknowledged.body).expect("JSON body");
    let fields: BTreeSet<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        BTreeSet::from(["fingerprint", "inventory", "problems"])
    );
    assert!(
        body["problems"].is_u64(),
        "problems is a count: {}",
        body["problems"]
    );
    let fingerprint = body["fingerprint"].as_str().expect("fingerprint");
    assert_eq!(fingerprint.len(), 64);
    assert!(fingerprint.bytes().all(|b| b.is_ascii_hexdigit()));
    let inventory: dozor_inventory::Inventory =
        serde_json::from_value(body["inventory"].clone()).expect("an Inventory");
    assert!(!inventory.packages.is_empty());
    assert_eq!(inventory.fingerprint(), fingerprint);
    let reported_names: BTreeSet<String> = inventory
        .packages
        .iter()
        .map(|p| {
            assert_eq!(p.ecosystem, dozor_inventory::PackageEcosystem::Dpkg);
            p.name.clone()
        })
        .collect();
    assert_eq!(
        reported_names, expected_names,
        "exactly the packages {DPKG_STATUS} lists as installed"
    );

    assert_eq!(
        log_text
            .matches("sending the software inventory failed")
            .count(),
        1,
        "one warning for the failure streak:\n{log_text}"
    );
    assert!(
        log_text.contains("software inventory reported"),
        "{log_text}"
    );
}
