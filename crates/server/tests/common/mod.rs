//! A real server on 127.0.0.1 (ephemeral port, temporary data directory) and a small HTTP(S)
//! client that trusts only the server's own CA.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use dozor_server::{
    AccessRole, Config, Identity, MemorySink, Server, ServerArgs, ServerError, Services,
    StaticTokens,
};
use http_body_util::{BodyExt, Full};
use hyper::http::{HeaderMap, Method, Request};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const AGENT_TOKEN: &str = "agent-token-0123456789";
pub const AGENT_ID: &str = "agent-1";
pub const ADMIN_TOKEN: &str = "admin-token-0123456789";
pub const VIEWER_TOKEN: &str = "viewer-token-0123456789";

pub struct TestServer {
    pub addr: SocketAddr,
    pub tls: bool,
    pub ca_pem: String,
    pub sink: Arc<MemorySink>,
    pub data_dir: PathBuf,
    running: Running,
}

/// A bound server running on a task until [`Running::stop`]: the start-up and shutdown every
/// test environment shares, whatever services it wires.
pub struct Running {
    pub addr: SocketAddr,
    pub tls: bool,
    pub ca_pem: String,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), ServerError>>>,
}

impl Running {
    pub async fn start(config: Config, services: Services) -> Running {
        let server = Server::bind(config, services).await.expect("bind");
        let addr = server.local_addr();
        let tls = server.is_tls();
        let ca_pem = server.ca_certificate_pem().to_owned();
        let (tx, rx) = oneshot::channel();
        let handle = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        Running {
            addr,
            tls,
            ca_pem,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    pub fn client(&self) -> Client {
        Client {
            addr: self.addr,
            tls: self.tls.then(|| pinned_connector(&self.ca_pem)),
        }
    }

    /// Shuts the server down and waits for it; its run must end cleanly.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.expect("join").expect("server run");
        }
    }
}

pub fn tokens() -> StaticTokens {
    StaticTokens::new()
        .with(AGENT_TOKEN, Identity::agent(AGENT_ID))
        .with(ADMIN_TOKEN, Identity::operator("admin", AccessRole::Admin))
        .with(
            VIEWER_TOKEN,
            Identity::operator("viewer", AccessRole::Viewer),
        )
}

/// Test limits: small bodies and batches so the limits are easy to reach.
pub fn test_env(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = vec![
        ("DOZOR_MAX_BODY_BYTES".to_string(), "64KiB".to_string()),
        ("DOZOR_MAX_BATCH_EVENTS".to_string(), "100".to_string()),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

pub fn config(
    data_dir: &Path,
    env: Vec<(String, String)>,
) -> Result<Config, dozor_server::ConfigError> {
    let args = ServerArgs {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(data_dir.to_owned()),
        ..ServerArgs::default()
    };
    Config::load(&args, env)
}

impl TestServer {
    pub async fn start(data_dir: &Path, env: Vec<(String, String)>) -> TestServer {
        Self::start_with(
            config(data_dir, env).expect("config"),
            Arc::new(MemorySink::new(100_000)),
        )
        .await
    }

    pub async fn start_with(config: Config, sink: Arc<MemorySink>) -> TestServer {
        let data_dir = config.data_dir.clone();
        let services = Services::new(sink.clone(), Arc::new(tokens()));
        let running = Running::start(config, services).await;
        TestServer {
            addr: running.addr,
            tls: running.tls,
            ca_pem: running.ca_pem.clone(),
            sink,
            data_dir,
            running,
        }
    }

    pub fn client(&self) -> Client {
        self.running.client()
    }

    pub async fn stop(self) {
        self.running.stop().await;
    }
}

pub fn pinned_connector(ca_pem: &str) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("add CA");
    }
    connector_with_roots(roots)
}

pub fn connector_with_roots(roots: rustls::RootCertStore) -> tokio_rustls::TlsConnector {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[derive(Clone)]
pub struct Client {
    pub addr: SocketAddr,
    pub tls: Option<tokio_rustls::TlsConnector>,
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Client {
    /// Sends one request on a new connection, to the name `localhost`.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Response, String> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        self.send_on(tcp, method, path, headers, body).await
    }

    /// Like [`Client::send`], from the local address `source` (any 127.x.y.z reaches a server
    /// on 127.0.0.1, which sees it as the client's address).
    pub async fn send_from(
        &self,
        source: std::net::IpAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Response, String> {
        let socket = tokio::net::TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
        socket
            .bind(SocketAddr::new(source, 0))
            .map_err(|e| format!("bind {source}: {e}"))?;
        let tcp = socket
            .connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        self.send_on(tcp, method, path, headers, body).await
    }

    async fn send_on(
        &self,
        tcp: TcpStream,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Response, String> {
        match &self.tls {
            Some(connector) => {
                let name = ServerName::try_from("localhost").expect("name");
                let stream = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("tls: {e}"))?;
                exchange(stream, self.addr, method, path, headers, body).await
            }
            None => exchange(tcp, self.addr, method, path, headers, body).await,
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send("GET", path, &[], Vec::new()).await.expect("GET")
    }

    /// `GET /metrics` with the admin token.
    pub async fn metrics(&self) -> Response {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        self.send("GET", "/metrics", &[("authorization", &auth)], Vec::new())
            .await
            .expect("GET /metrics")
    }

    /// POST with the agent token.
    pub async fn post(&self, path: &str, content_type: &str, body: Vec<u8>) -> Response {
        self.send(
            "POST",
            path,
            &[
                ("content-type", content_type),
                ("authorization", &format!("Bearer {AGENT_TOKEN}")),
            ],
            body,
        )
        .await
        .expect("POST")
    }
}

async fn exchange<S>(
    stream: S,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<Response, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut request = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).expect("method"))
        .uri(path)
        .header("host", format!("localhost:{}", addr.port()));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// `../shared` beside the repository (or `$DOZOR_SHARED_DIR`), when present.
pub fn shared_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("DOZOR_SHARED_DIR") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.is_dir(),
            "DOZOR_SHARED_DIR={} does not exist",
            dir.display()
        );
        return Some(dir);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    dir.is_dir().then_some(dir)
}

/// Enrolls an agent as the real one does: a one-use enrollment token from `store`, a fresh
/// P-256 key, a CSR to `POST /api/v1/agents/enroll` through `server`. Returns the agent id and
/// a client presenting the issued certificate (trusting only `ca_pem`).
pub async fn enroll_agent(
    store: &dyn dozor_store::Store,
    server: &Client,
    ca_pem: &str,
    facts: serde_json::Value,
) -> (String, Client) {
    let hostname = facts["hostname"].as_str().unwrap_or("host").to_owned();
    let secret = store
        .create_enrollment_token(&dozor_store::NewEnrollmentToken {
            name: format!("for {hostname}"),
            expires_at: None,
            max_uses: Some(1),
            created_by: "tests".into(),
            may_replace: None,
        })
        .await
        .expect("enrollment token")
        .secret;
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hostname);
    let csr = params
        .serialize_request(&key)
        .and_then(|r| r.pem())
        .expect("csr");
    let r = server
        .send(
            "POST",
            "/api/v1/agents/enroll",
            &[("content-type", "application/json")],
            serde_json::json!({"token": secret, "csr_pem": csr, "facts": facts})
                .to_string()
                .into_bytes(),
        )
        .await
        .expect("enroll request");
    assert_eq!(r.status, 200, "enroll: {}", r.text());
    let answer = r.json();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(
        answer["certificate_pem"].as_str().expect("cert").as_bytes(),
    )
    .map(|c| c.expect("certificate"))
    .collect();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes())
        .expect("key pem");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("ca")).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .expect("client auth");
    let agent = Client {
        addr: server.addr,
        tls: Some(tokio_rustls::TlsConnector::from(Arc::new(config))),
    };
    (
        answer["agent_id"].as_str().expect("agent_id").to_owned(),
        agent,
    )
}

/// A new API token in `store` with `role`; returns its secret.
pub async fn api_token(
    store: &dyn dozor_store::Store,
    name: &str,
    role: dozor_store::Role,
) -> String {
    store
        .create_token(&dozor_store::NewToken {
            name: name.into(),
            role,
            expires_at: None,
            owner: None,
        })
        .await
        .expect("create token")
        .secret
}

/// No Sigma rules (for tests whose alerts come from elsewhere).
pub struct NoRules;

impl dozor_server::RuleCatalog for NoRules {
    fn list(&self) -> Vec<dozor_server::RuleInfo> {
        Vec::new()
    }
    fn yaml(&self, _: &str) -> Option<String> {
        None
    }
    fn reload(&self) -> dozor_server::BoxFuture<'_, Result<dozor_server::ReloadReport, String>> {
        Box::pin(async { Ok(dozor_server::ReloadReport::default()) })
    }
    fn test(&self, _: &str, _: Vec<serde_json::Value>) -> Result<Vec<usize>, String> {
        Err("no rules here".into())
    }
}
