//! The GMP client against a test server that speaks GMP over a Unix socket.
//!
//! gvmd is not packaged on this machine (nor in CI), so the test server below stands in for it:
//! it listens on a tokio `UnixListener` in a temporary directory, parses each request as gvmd
//! would (a complete XML document per command, no framing), answers with gvmd's response
//! shapes and status codes, and serves the OpenVAS fixture reports from
//! `../shared/fixtures/openvas` for `get_reports`. Answers are written in small pieces so the
//! client's incremental reading (element depth counting) is exercised. It records every request
//! so the tests can check what the client sent (the widened report filter, escaped values).
//!
//! Nothing here depends on timing: the timeout test uses a server that never answers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dozor_gmp::{
    Endpoint, GmpClient, GmpConfig, GmpError, LevelCounts, ReportFilter, TargetSpec, TaskSpec,
    TlsTrust, client::spki_sha256, parse_report_file,
};
use quick_xml::Reader;
use quick_xml::events::Event;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};

const USER: &str = "admin";
/// Characters that must be escaped on the way into XML.
const PASSWORD: &str = "pa<ss>&\"word'";
const FULL_AND_FAST: &str = "daba56c8-73ec-11df-a475-002264764cea";
const OPENVAS_DEFAULT: &str = "08b69003-5fc2-4037-a479-93b440211c73";
const ALL_TCP: &str = "33d0cd82-57c6-11e1-8ed1-406186ea4fc5";
const TARGET_ID: &str = "target-0001";
const TASK_ID: &str = "task-0001";

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/openvas")
        .join(name)
}

/// Report id served by the test server → fixture file.
const REPORTS: [(&str, &str); 4] = [
    ("report-many", "many_vuln.xml"),
    ("report-none", "no_vuln.xml"),
    ("report-one", "one_vuln.xml"),
    ("report-v2", "report_detail_v2.xml"),
];

/// One parsed request: its root name, attributes (`element@attr`) and element texts.
#[derive(Debug, Clone, Default)]
struct Request {
    command: String,
    attrs: HashMap<String, String>,
    texts: HashMap<String, String>,
    raw: String,
}

/// How the test server behaves; shared with the test for inspection.
#[derive(Debug, Default)]
struct Behaviour {
    version: String,
    /// Commands answered `503 Service temporarily down`.
    busy: Vec<&'static str>,
    /// Commands never answered.
    silent: Vec<&'static str>,
    requests: Vec<Request>,
    task_polls: usize,
}

type Shared = Arc<Mutex<Behaviour>>;

struct TestServer {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    state: Shared,
}

impl TestServer {
    fn start(version: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("gvmd.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let state: Shared = Arc::new(Mutex::new(Behaviour {
            version: version.to_owned(),
            ..Behaviour::default()
        }));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_connection(stream, shared.clone()));
            }
        });
        Self {
            _dir: dir,
            socket,
            state,
        }
    }

    fn config(&self) -> GmpConfig {
        let mut config = GmpConfig::new(Endpoint::Unix(self.socket.clone()));
        config.connect_timeout = Duration::from_secs(30);
        config.response_timeout = Duration::from_secs(30);
        config
    }

    async fn client(&self) -> GmpClient {
        GmpClient::connect(&self.config()).await.unwrap()
    }

    fn requests(&self, command: &str) -> Vec<Request> {
        let state = self.state.lock().unwrap();
        state
            .requests
            .iter()
            .filter(|r| r.command == command)
            .cloned()
            .collect()
    }
}

/// The length of the first complete XML document in `bytes` and its fields; `None` while
/// incomplete.
fn parse_request(bytes: &[u8]) -> Option<(usize, Request)> {
    let mut reader = Reader::from_reader(bytes);
    let mut request = Request::default();
    let mut open: Vec<String> = Vec::new();
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).ok()?;
                record_attrs(&mut request, &name, &e)?;
                if open.is_empty() {
                    request.command = name.clone();
                }
                open.push(name);
            }
            Event::Empty(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).ok()?;
                record_attrs(&mut request, &name, &e)?;
                if open.is_empty() {
                    request.command = name;
                    let end = reader.buffer_position() as usize;
                    request.raw = String::from_utf8_lossy(&bytes[..end]).into_owned();
                    return Some((end, request));
                }
            }
            Event::End(_) => {
                open.pop();
                if open.is_empty() {
                    let end = reader.buffer_position() as usize;
                    request.raw = String::from_utf8_lossy(&bytes[..end]).into_owned();
                    return Some((end, request));
                }
            }
            Event::Text(t) => {
                let text = t.xml_content().ok()?;
                let key = open.last()?.clone();
                request.texts.entry(key).or_default().push_str(&text);
            }
            Event::GeneralRef(r) => {
                let name = r.decode().ok()?;
                let resolved = quick_xml::escape::resolve_xml_entity(&name)?;
                let key = open.last()?.clone();
                request.texts.entry(key).or_default().push_str(resolved);
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

fn record_attrs(
    request: &mut Request,
    element: &str,
    e: &quick_xml::events::BytesStart<'_>,
) -> Option<()> {
    for attr in e.attributes() {
        let attr = attr.ok()?;
        let key = String::from_utf8(attr.key.as_ref().to_vec()).ok()?;
        let value = attr.unescape_value().ok()?.into_owned();
        request.attrs.insert(format!("{element}@{key}"), value);
    }
    Some(())
}

/// gvmd's answer to one request; `None` = never answer.
fn answer(request: &Request, state: &Shared, authenticated: &mut bool) -> Option<String> {
    let mut s = state.lock().unwrap();
    s.requests.push(request.clone());
    let cmd = request.command.as_str();
    let response = format!("{cmd}_response");
    if s.silent.contains(&cmd) {
        return None;
    }
    if s.busy.contains(&cmd) {
        return Some(format!(
            r#"<{response} status="503" status_text="Service temporarily down"/>"#
        ));
    }
    let ok =
        |body: &str| format!(r#"<{response} status="200" status_text="OK">{body}</{response}>"#);
    let attr = |k: &str| request.attrs.get(k).map(String::as_str).unwrap_or("");
    let text = |k: &str| request.texts.get(k).map(String::as_str).unwrap_or("");
    match cmd {
        "get_version" => return Some(ok(&format!("<version>{}</version>", s.version))),
        "authenticate" => {
            if text("username") == USER && text("password") == PASSWORD {
                *authenticated = true;
                return Some(ok("<role>Admin</role><timezone>UTC</timezone>"));
            }
            return Some(format!(
                r#"<{response} status="400" status_text="Authentication failed"/>"#
            ));
        }
        _ if !*authenticated => {
            return Some(
                r#"<gmp_response status="401" status_text="Authenticate first"/>"#.to_owned(),
            );
        }
        _ => {}
    }
    Some(match cmd {
        "get_configs" => ok(&format!(
            "<config id=\"d21f6c81-2b88-4ac1-b7b4-a2a9f2ad4663\"><name>Base</name></config>\
             <config id=\"{FULL_AND_FAST}\"><name>Full and fast</name><comment/></config>"
        )),
        "get_scanners" => ok(&format!(
            "<scanner id=\"6acd0832-df90-11e4-b9d5-28d24461215b\"><name>CVE</name></scanner>\
             <scanner id=\"{OPENVAS_DEFAULT}\"><name>OpenVAS Default</name></scanner>"
        )),
        "get_port_lists" => ok(&format!(
            "<port_list id=\"{ALL_TCP}\"><name>All IANA assigned TCP</name></port_list>\
             <port_list id=\"4a4717fe-57d2-11e1-9a26-406186ea4fc5\">\
             <name>All IANA assigned TCP and UDP</name></port_list>"
        )),
        "create_target" if attr("port_list@id") == ALL_TCP && !text("hosts").is_empty() => {
            format!(
                r#"<{response} status="201" status_text="OK, resource created" id="{TARGET_ID}"/>"#
            )
        }
        "create_task"
            if attr("config@id") == FULL_AND_FAST
                && attr("scanner@id") == OPENVAS_DEFAULT
                && attr("target@id") == TARGET_ID =>
        {
            format!(
                r#"<{response} status="201" status_text="OK, resource created" id="{TASK_ID}"/>"#
            )
        }
        "start_task" if attr("start_task@task_id") == TASK_ID => format!(
            r#"<{response} status="202" status_text="OK, request submitted"><report_id>report-many</report_id></{response}>"#
        ),
        "stop_task" if attr("stop_task@task_id") == TASK_ID => {
            format!(r#"<{response} status="202" status_text="OK, request submitted"/>"#)
        }
        "get_tasks" if attr("get_tasks@task_id") == TASK_ID => {
            s.task_polls += 1;
            // Running 25 %, then 75 % (GMP 9 style: host progress inside <progress>), then Done.
            let (status, progress) = match s.task_polls {
                1 => ("Running", "25".to_owned()),
                2 => (
                    "Running",
                    "75<host_progress><host>10.0.101.2</host>75</host_progress>".to_owned(),
                ),
                _ => ("Done", "-1".to_owned()),
            };
            ok(&format!(
                "<task id=\"{TASK_ID}\"><name>dozor scan</name><status>{status}</status>\
                 <progress>{progress}</progress><current_report><report id=\"report-many\"/>\
                 </current_report><last_report><report id=\"report-many\"/></last_report></task>"
            ))
        }
        "get_reports" => match REPORTS
            .iter()
            .find(|(id, _)| *id == attr("get_reports@report_id"))
        {
            Some((_, file)) => {
                let xml = std::fs::read_to_string(fixture_path(file)).unwrap();
                let body = match xml.find("?>") {
                    Some(end) if xml.starts_with("<?xml") => &xml[end + 2..],
                    _ => &xml[..],
                };
                ok(&format!(
                    "{body}<filters id=\"\"><term>{}</term></filters>",
                    attr("get_reports@filter")
                ))
            }
            None => format!(r#"<{response} status="404" status_text="Failed to find report"/>"#),
        },
        _ => format!(r#"<{response} status="400" status_text="Bogus command"/>"#),
    })
}

async fn serve_connection<S>(mut stream: S, state: Shared)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut pending = Vec::new();
    let mut authenticated = false;
    loop {
        let request = loop {
            if let Some((end, request)) = parse_request(&pending) {
                pending.drain(..end);
                break request;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&chunk[..n]),
            }
        };
        let Some(response) = answer(&request, &state, &mut authenticated) else {
            // Silent: hold the connection open without answering.
            std::future::pending::<()>().await;
            return;
        };
        // Small pieces: the client must assemble a response across reads.
        for piece in response.as_bytes().chunks(777) {
            if stream.write_all(piece).await.is_err() {
                return;
            }
            let _ = stream.flush().await;
            tokio::task::yield_now().await;
        }
    }
}

async fn logged_in(server: &TestServer) -> GmpClient {
    let mut client = server.client().await;
    client.authenticate(USER, PASSWORD).await.unwrap();
    client
}

#[tokio::test]
async fn authentication_failure_and_unauthenticated_commands() {
    let server = TestServer::start("22.5");
    let mut client = server.client().await;
    let err = client.authenticate(USER, "wrong").await.unwrap_err();
    assert!(
        matches!(&err, GmpError::AuthFailed { status_text } if status_text == "Authentication failed"),
        "{err}"
    );
    // The connection stays usable; a command before a successful login is refused (401).
    let err = client.get_tasks(None).await.unwrap_err();
    assert!(matches!(err, GmpError::AuthFailed { .. }), "{err}");
    // The password travelled escaped and arrived intact.
    client.authenticate(USER, PASSWORD).await.unwrap();
    let raw = &server.requests("authenticate")[1].raw;
    assert!(raw.contains("pa&lt;ss&gt;&amp;&quot;word&apos;"), "{raw}");
}

#[tokio::test]
async fn version_check_accepts_gmp_9_and_22_only() {
    for (version, supported) in [
        ("9.0", true),
        ("22.4", true),
        ("22.6", true),
        ("21.4", false),
        ("8.0", false),
        ("23.0", false),
    ] {
        let server = TestServer::start(version);
        let mut client = server.client().await;
        match client.get_version().await {
            Ok(v) => {
                assert!(supported, "{version} accepted");
                assert_eq!(v.raw, version);
            }
            Err(GmpError::UnsupportedVersion(v)) => {
                assert!(!supported, "{version} refused");
                assert_eq!(v, version);
            }
            Err(other) => panic!("{version}: {other}"),
        }
    }
}

#[tokio::test]
async fn task_lifecycle_and_report_fetch_with_the_widened_filter() {
    let server = TestServer::start("22.5");
    let mut client = server.client().await;
    assert_eq!(client.get_version().await.unwrap().major, 22);
    client.authenticate(USER, PASSWORD).await.unwrap();

    let target = client
        .create_target(&TargetSpec {
            name: "lab <dmz>".to_owned(),
            hosts: vec!["10.0.101.2".to_owned(), " 192.168.1.0/24 ".to_owned()],
            exclude_hosts: vec![],
            port_list: "All IANA assigned TCP".to_owned(),
            comment: None,
        })
        .await
        .unwrap();
    assert_eq!(target, TARGET_ID);
    let sent = &server.requests("create_target")[0];
    assert_eq!(sent.texts["hosts"], "10.0.101.2,192.168.1.0/24");
    assert_eq!(sent.texts["name"], "lab <dmz>");

    // Config and scanner are looked up by name; the test server only accepts their ids.
    let task = client
        .create_task(&TaskSpec {
            name: "dozor scan".to_owned(),
            target_id: target,
            scan_config: "Full and fast".to_owned(),
            scanner: "OpenVAS Default".to_owned(),
            comment: Some("from Dozor".to_owned()),
        })
        .await
        .unwrap();
    assert_eq!(task, TASK_ID);
    assert_eq!(server.requests("get_configs").len(), 1);
    assert_eq!(server.requests("get_scanners").len(), 1);

    let report_id = client.start_task(&task).await.unwrap();
    assert_eq!(report_id.as_deref(), Some("report-many"));

    // Poll until Done (the test server advances one step per poll).
    let mut progress = Vec::new();
    let finished = loop {
        let status = client.get_task(&task).await.unwrap();
        if status.is_finished() {
            break status;
        }
        assert_eq!(status.status, "Running");
        progress.push(status.progress);
        assert!(progress.len() < 10, "the task never finished");
    };
    assert_eq!(progress, [Some(25), Some(75)]);
    assert!(finished.is_done());
    let report_id = finished.last_report_id.unwrap();

    let report = client
        .get_report(&report_id, &ReportFilter::default())
        .await
        .unwrap();
    let expected = parse_report_file(&fixture_path("many_vuln.xml")).unwrap();
    assert_eq!(report.results, expected.results);
    assert_eq!(
        report.level_counts(),
        LevelCounts {
            critical: 8,
            high: 11,
            medium: 25,
            ..LevelCounts::default()
        }
    );

    let fetch = &server.requests("get_reports")[0];
    let filter = &fetch.attrs["get_reports@filter"];
    assert!(filter.contains("min_qod=30"), "{filter}");
    assert!(filter.contains("rows=-1"), "{filter}");
    assert!(filter.contains("apply_overrides=1"), "{filter}");
    assert!(filter.contains("levels=chmlg"), "{filter}");
    assert_eq!(fetch.attrs["get_reports@details"], "1");
    assert_eq!(
        fetch.attrs["get_reports@format_id"],
        "a994b278-1f62-11e1-96ac-406186ea4fc5"
    );

    client.stop_task(&task).await.unwrap();
}

#[tokio::test]
async fn every_fixture_report_through_get_reports() {
    let server = TestServer::start("9.0");
    let mut client = logged_in(&server).await;
    for (id, file) in REPORTS {
        let report = client
            .get_report(id, &ReportFilter::default())
            .await
            .unwrap();
        let expected = parse_report_file(&fixture_path(file)).unwrap();
        assert_eq!(report.results, expected.results, "{file}");
        assert_eq!(report.level_counts(), expected.level_counts(), "{file}");
    }
    let err = client
        .get_report("missing", &ReportFilter::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, GmpError::Request { status: 404, status_text, .. } if status_text == "Failed to find report"),
        "{err}"
    );
}

#[tokio::test]
async fn names_gvmd_does_not_know_are_reported_with_the_alternatives() {
    let server = TestServer::start("22.5");
    let mut client = logged_in(&server).await;
    let err = client
        .create_task(&TaskSpec {
            name: "t".to_owned(),
            target_id: TARGET_ID.to_owned(),
            scan_config: "Full and slow".to_owned(),
            scanner: "OpenVAS Default".to_owned(),
            comment: None,
        })
        .await
        .unwrap_err();
    let GmpError::NotFound {
        kind, available, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(*kind, "scan config");
    assert_eq!(available, "Base, Full and fast");
    assert!(server.requests("create_task").is_empty());
}

#[tokio::test]
async fn busy_gvmd_is_a_busy_error_and_the_connection_survives() {
    let server = TestServer::start("22.5");
    server.state.lock().unwrap().busy.push("get_reports");
    let mut client = logged_in(&server).await;
    let err = client
        .get_report("report-one", &ReportFilter::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, GmpError::Busy { status_text, .. } if status_text == "Service temporarily down"),
        "{err}"
    );
    assert_eq!(client.get_tasks(Some(TASK_ID)).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_silent_gvmd_times_out_and_the_connection_is_then_refused() {
    let server = TestServer::start("22.5");
    server.state.lock().unwrap().silent.push("get_tasks");
    let mut client = logged_in(&server).await;
    // The server never answers get_tasks, so any bound expires; keep it short (set after the
    // login so a slow machine cannot time that out).
    client.set_response_timeout(Duration::from_millis(50));
    let err = client.get_tasks(None).await.unwrap_err();
    assert!(
        matches!(&err, GmpError::Timeout { command, .. } if command == "get_tasks"),
        "{err}"
    );
    // Half a response may still arrive: the connection is not reused.
    assert!(matches!(
        client.get_version().await.unwrap_err(),
        GmpError::Broken
    ));
}

#[tokio::test]
async fn responses_over_the_size_limit_are_refused() {
    let server = TestServer::start("22.5");
    let mut config = server.config();
    config.max_response_bytes = 64 * 1024;
    let mut client = GmpClient::connect(&config).await.unwrap();
    client.authenticate(USER, PASSWORD).await.unwrap();
    // one_vuln.xml fits, many_vuln.xml (135 kB) does not.
    client
        .get_report("report-one", &ReportFilter::default())
        .await
        .unwrap();
    let err = client
        .get_report("report-many", &ReportFilter::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, GmpError::ResponseTooLarge { limit: 65536, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn connecting_to_a_missing_socket_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path: &Path = &dir.path().join("absent.sock");
    let err = GmpClient::connect(&GmpConfig::new(Endpoint::Unix(path.to_owned())))
        .await
        .unwrap_err();
    assert!(matches!(err, GmpError::Connect { .. }), "{err}");
    assert!(err.to_string().contains("absent.sock"), "{err}");
}

/// A CA and a gvmd certificate for `localhost` signed by it, like `gvm-manage-certs` makes.
struct TestPki {
    ca_pem: String,
    server_cert_der: Vec<u8>,
    server_config: Arc<rustls::ServerConfig>,
}

fn test_pki() -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::default();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "gvm test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, &ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], key_der)
    .unwrap();
    TestPki {
        ca_pem: ca_cert.pem(),
        server_cert_der: cert.der().to_vec(),
        server_config: Arc::new(config),
    }
}

/// The test server behind TLS on 127.0.0.1 (gvmd's port 9390 role); returns the port.
async fn start_tls_server(pki: &TestPki) -> u16 {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config.clone());
    let state: Shared = Arc::new(Mutex::new(Behaviour {
        version: "22.5".to_owned(),
        ..Behaviour::default()
    }));
    tokio::spawn(async move {
        while let Ok((stream, _)) = tcp.accept().await {
            let acceptor = acceptor.clone();
            let state = state.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    serve_connection(tls, state).await;
                }
            });
        }
    });
    port
}

fn tls_config(port: u16, trust: TlsTrust) -> GmpConfig {
    GmpConfig::new(Endpoint::Tls {
        host: "127.0.0.1".to_owned(),
        port,
        server_name: Some("localhost".to_owned()),
        trust,
    })
}

#[tokio::test]
async fn tls_with_gvmds_ca_or_a_pin() {
    let pki = test_pki();
    let port = start_tls_server(&pki).await;
    let pin = spki_sha256(&pki.server_cert_der).unwrap();

    for trust in [
        TlsTrust {
            ca_pem: Some(pki.ca_pem.clone().into_bytes()),
            pins_spki_sha256: vec![],
        },
        TlsTrust {
            ca_pem: None,
            pins_spki_sha256: vec![pin],
        },
        TlsTrust {
            ca_pem: Some(pki.ca_pem.clone().into_bytes()),
            pins_spki_sha256: vec![pin],
        },
    ] {
        let mut client = GmpClient::connect(&tls_config(port, trust)).await.unwrap();
        client.authenticate(USER, PASSWORD).await.unwrap();
        let report = client
            .get_report("report-v2", &ReportFilter::default())
            .await
            .unwrap();
        assert_eq!(report.results.len(), 1);
    }

    // A wrong pin, another CA, no trust anchor at all: refused before any command.
    let other = test_pki();
    for trust in [
        TlsTrust {
            ca_pem: None,
            pins_spki_sha256: vec![[7; 32]],
        },
        TlsTrust {
            ca_pem: Some(other.ca_pem.into_bytes()),
            pins_spki_sha256: vec![],
        },
    ] {
        let err = GmpClient::connect(&tls_config(port, trust))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, GmpError::Tls(m) if m.contains("certificate")),
            "{err}"
        );
    }
    let err = GmpClient::connect(&tls_config(port, TlsTrust::default()))
        .await
        .unwrap_err();
    assert!(matches!(err, GmpError::Tls(_)), "{err}");
}
