//! Async client of gvmd's Greenbone Management Protocol (GMP): XML commands over gvmd's Unix
//! socket or TLS (port 9390).
//!
//! GMP has no framing: a response is one XML document, complete when its root element closes.
//! The client reads it event by event with quick-xml, counting element depth, and keeps the
//! bytes it read (bounded by [`GmpConfig::max_response_bytes`]) to parse them afterwards.
//! One command is in flight at a time, so a connection is `&mut self`.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use quick_xml::Reader;
use quick_xml::escape::escape;
use quick_xml::events::{BytesStart, Event};
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{RootCertStore, SignatureScheme};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tracing::{debug, warn};

use crate::report::{ParsedReport, ReportError, parse_report_bytes};
use crate::tree::{self, Node};

/// gvmd's built-in XML report format (the same id in every gvmd version).
pub const XML_REPORT_FORMAT_ID: &str = "a994b278-1f62-11e1-96ac-406186ea4fc5";

/// Depth bound for the small responses parsed into trees.
const MAX_RESPONSE_DEPTH: usize = 64;

/// Any byte stream gvmd can be reached over (Unix socket, TLS, an in-memory pipe in tests).
pub trait GmpIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> GmpIo for T {}

/// Where gvmd listens.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// gvmd's Unix socket (`/run/gvmd/gvmd.sock` on most installs).
    Unix(PathBuf),
    /// gvmd's TLS listener (`gvmd --listen=… --port=9390`).
    Tls {
        host: String,
        port: u16,
        /// Name checked against the server certificate; `host` when `None`.
        server_name: Option<String>,
        trust: TlsTrust,
    },
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
            Self::Tls { host, port, .. } => write!(f, "tls://{host}:{port}"),
        }
    }
}

/// How the client trusts gvmd's certificate. gvmd's certificates come from its own CA
/// (`gvm-manage-certs`), never from a public one, so one of the two is required.
#[derive(Debug, Clone, Default)]
pub struct TlsTrust {
    /// PEM of the CA(s) that signed gvmd's certificate.
    pub ca_pem: Option<Vec<u8>>,
    /// SHA-256 of the server certificate's SubjectPublicKeyInfo. With a CA, checked in addition
    /// to the chain; alone, it replaces the chain check (the pin is the trust).
    pub pins_spki_sha256: Vec<[u8; 32]>,
}

/// Connection settings.
#[derive(Debug, Clone)]
pub struct GmpConfig {
    pub endpoint: Endpoint,
    pub connect_timeout: Duration,
    /// Bound on each command: sending it and reading the whole response.
    pub response_timeout: Duration,
    /// Largest response accepted (a 10,000-result report is about 40 MB).
    pub max_response_bytes: usize,
}

impl GmpConfig {
    pub fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            connect_timeout: Duration::from_secs(10),
            // gvmd builds a large report for minutes before the first byte goes out.
            response_timeout: Duration::from_secs(600),
            max_response_bytes: 512 * 1024 * 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GmpError {
    #[error("cannot connect to gvmd at {endpoint}: {source}")]
    Connect { endpoint: String, source: io::Error },
    #[error("connecting to gvmd at {endpoint} timed out after {after:?}")]
    ConnectTimeout { endpoint: String, after: Duration },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("gvmd did not answer {command} within {after:?}")]
    Timeout { command: String, after: Duration },
    #[error("authentication failed: {status_text}")]
    AuthFailed { status_text: String },
    #[error("gvmd speaks GMP {0}; this client supports GMP 9 and 22.x")]
    UnsupportedVersion(String),
    #[error("gvmd is busy ({status_text}); retry {command} later")]
    Busy {
        command: String,
        status_text: String,
    },
    #[error("gvmd refused {command}: {status} {status_text}")]
    Request {
        command: String,
        status: u16,
        status_text: String,
    },
    #[error("gvmd failed {command}: {status} {status_text}")]
    Server {
        command: String,
        status: u16,
        status_text: String,
    },
    #[error("no {kind} named {name:?} in gvmd (it has: {available})")]
    NotFound {
        kind: &'static str,
        name: String,
        available: String,
    },
    #[error("{count} {kind}s named {name:?} in gvmd; rename one or pass an id")]
    Ambiguous {
        kind: &'static str,
        name: String,
        count: usize,
    },
    #[error("gvmd's answer to {command} exceeds {limit} bytes")]
    ResponseTooLarge { command: String, limit: usize },
    #[error("gvmd's answer to {command} is malformed: {reason}")]
    Protocol { command: String, reason: String },
    #[error("gvmd closed the connection during {command}")]
    Closed { command: String },
    #[error("the connection is unusable after an earlier failure mid-command; reconnect")]
    Broken,
    #[error("invalid value for {field}: {reason}")]
    InvalidInput { field: &'static str, reason: String },
    #[error("report: {0}")]
    Report(#[from] ReportError),
    #[error("I/O with gvmd during {command}: {source}")]
    Io { command: String, source: io::Error },
}

/// GMP version gvmd reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GmpVersion {
    pub raw: String,
    pub major: u32,
    pub minor: u32,
}

/// What to scan.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    pub name: String,
    /// Addresses, ranges or CIDRs gvmd accepts, one per entry.
    pub hosts: Vec<String>,
    pub exclude_hosts: Vec<String>,
    /// Port list by name, e.g. `All IANA assigned TCP`.
    pub port_list: String,
    pub comment: Option<String>,
}

/// A scan task; config and scanner by name, resolved through gvmd.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    pub name: String,
    pub target_id: String,
    /// Scan config name, e.g. `Full and fast`.
    pub scan_config: String,
    /// Scanner name, e.g. `OpenVAS Default`.
    pub scanner: String,
    pub comment: Option<String>,
}

/// A task as `get_tasks` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub id: String,
    pub name: Option<String>,
    /// `New`, `Requested`, `Queued`, `Running`, `Stop Requested`, `Stopped`, `Done`,
    /// `Interrupted`…
    pub status: String,
    /// Percent while running; gvmd answers -1 when the task is not running.
    pub progress: Option<i32>,
    pub current_report_id: Option<String>,
    pub last_report_id: Option<String>,
}

impl TaskStatus {
    pub fn is_done(&self) -> bool {
        self.status == "Done"
    }

    /// Done, stopped or interrupted: the task will not progress without a new start.
    pub fn is_finished(&self) -> bool {
        matches!(self.status.as_str(), "Done" | "Stopped" | "Interrupted")
    }
}

/// The filter of `get_reports`.
#[derive(Debug, Clone)]
pub struct ReportFilter {
    /// gvmd's default is `min_qod=70`, which hides every result whose detection is less
    /// certain (remote banners, package checks on backports …): a report fetched with the
    /// default silently lacks findings. 30 keeps all but the most speculative ones.
    pub min_qod: u8,
    /// Levels: c(ritical) h(igh) m(edium) l(ow) g (log). gvmd's default `hml` drops log
    /// results, which carry the host details (OS, open ports).
    pub levels: String,
    /// Effective severity after overrides; the original stays in `original_severity`.
    pub apply_overrides: bool,
}

impl Default for ReportFilter {
    fn default() -> Self {
        Self {
            min_qod: 30,
            levels: "chmlg".to_owned(),
            apply_overrides: true,
        }
    }
}

impl ReportFilter {
    /// The filter term; `rows=-1 first=1` because gvmd pages results (`rows=10` by default
    /// in some versions) and a page would look like a whole report.
    pub fn term(&self) -> String {
        format!(
            "apply_overrides={} levels={} min_qod={} rows=-1 first=1",
            u8::from(self.apply_overrides),
            self.levels,
            self.min_qod
        )
    }
}

/// A complete response before interpretation.
struct RawResponse {
    status: u16,
    status_text: String,
    bytes: Vec<u8>,
}

/// A connection to gvmd.
pub struct GmpClient {
    conn: BufReader<Capture<Box<dyn GmpIo>>>,
    response_timeout: Duration,
    max_response_bytes: usize,
    broken: bool,
}

impl fmt::Debug for GmpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GmpClient")
            .field("response_timeout", &self.response_timeout)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl GmpClient {
    /// Connects (no command sent yet: call [`Self::get_version`] and [`Self::authenticate`]).
    pub async fn connect(config: &GmpConfig) -> Result<Self, GmpError> {
        let endpoint = config.endpoint.to_string();
        let connecting = async {
            match &config.endpoint {
                Endpoint::Unix(path) => tokio::net::UnixStream::connect(path)
                    .await
                    .map(|s| Box::new(s) as Box<dyn GmpIo>)
                    .map_err(|source| GmpError::Connect {
                        endpoint: endpoint.clone(),
                        source,
                    }),
                Endpoint::Tls {
                    host,
                    port,
                    server_name,
                    trust,
                } => {
                    let tls = tls_config(trust)?;
                    let name = server_name.as_deref().unwrap_or(host);
                    let name = ServerName::try_from(name.to_owned())
                        .map_err(|e| GmpError::Tls(format!("server name {name:?}: {e}")))?;
                    let tcp = tokio::net::TcpStream::connect((host.as_str(), *port))
                        .await
                        .map_err(|source| GmpError::Connect {
                            endpoint: endpoint.clone(),
                            source,
                        })?;
                    // A refused certificate surfaces here as an I/O error wrapping rustls'.
                    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
                        .connect(name, tcp)
                        .await
                        .map_err(|e| GmpError::Tls(format!("handshake with {endpoint}: {e}")))?;
                    Ok(Box::new(stream) as Box<dyn GmpIo>)
                }
            }
        };
        let stream = tokio::time::timeout(config.connect_timeout, connecting)
            .await
            .map_err(|_| GmpError::ConnectTimeout {
                endpoint: endpoint.clone(),
                after: config.connect_timeout,
            })??;
        debug!(%endpoint, "connected to gvmd");
        Ok(Self::from_stream(stream, config))
    }

    /// A client over an already open stream (tests, or a socket opened elsewhere).
    pub fn from_stream(stream: Box<dyn GmpIo>, config: &GmpConfig) -> Self {
        Self {
            conn: BufReader::with_capacity(64 * 1024, Capture::new(stream)),
            response_timeout: config.response_timeout,
            max_response_bytes: config.max_response_bytes,
            broken: false,
        }
    }

    /// Changes the bound on each following command (e.g. longer for one big `get_reports`).
    pub fn set_response_timeout(&mut self, timeout: Duration) {
        self.response_timeout = timeout;
    }

    /// `authenticate`; a refusal is [`GmpError::AuthFailed`].
    pub async fn authenticate(&mut self, username: &str, password: &str) -> Result<(), GmpError> {
        let xml = format!(
            "<authenticate><credentials><username>{}</username><password>{}</password>\
             </credentials></authenticate>",
            xml_value("username", username)?,
            xml_value("password", password)?,
        );
        let response = self.exchange("authenticate", &xml).await?;
        match response.status {
            200..=299 => Ok(()),
            // gvmd answers a wrong password with 400 "Authentication failed".
            400 | 401 | 403 => Err(GmpError::AuthFailed {
                status_text: response.status_text,
            }),
            _ => Err(status_error("authenticate", &response)),
        }
    }

    /// `get_version`; GMP 9 and 22.x are supported, anything else is
    /// [`GmpError::UnsupportedVersion`].
    pub async fn get_version(&mut self) -> Result<GmpVersion, GmpError> {
        let root = self.command("get_version", "<get_version/>").await?;
        let raw = root
            .child_text("version")
            .ok_or_else(|| protocol("get_version", "no <version>"))?
            .to_owned();
        let mut parts = raw.split('.');
        let major = parts.next().and_then(|p| p.trim().parse::<u32>().ok());
        let minor = parts
            .next()
            .and_then(|p| p.trim().parse::<u32>().ok())
            .unwrap_or(0);
        match major {
            Some(major @ (9 | 22)) => Ok(GmpVersion { raw, major, minor }),
            _ => Err(GmpError::UnsupportedVersion(raw)),
        }
    }

    /// Id of the scan config named `name` (`get_configs`).
    pub async fn config_id(&mut self, name: &str) -> Result<String, GmpError> {
        self.id_by_name("get_configs", "config", "scan config", name)
            .await
    }

    /// Id of the scanner named `name` (`get_scanners`).
    pub async fn scanner_id(&mut self, name: &str) -> Result<String, GmpError> {
        self.id_by_name("get_scanners", "scanner", "scanner", name)
            .await
    }

    /// Id of the port list named `name` (`get_port_lists`).
    pub async fn port_list_id(&mut self, name: &str) -> Result<String, GmpError> {
        self.id_by_name("get_port_lists", "port_list", "port list", name)
            .await
    }

    /// `create_target`, the port list resolved by name; returns the target id.
    pub async fn create_target(&mut self, spec: &TargetSpec) -> Result<String, GmpError> {
        if spec.hosts.iter().all(|h| h.trim().is_empty()) {
            return Err(GmpError::InvalidInput {
                field: "hosts",
                reason: "no host to scan".to_owned(),
            });
        }
        let port_list = self.port_list_id(&spec.port_list).await?;
        let mut xml = format!(
            "<create_target><name>{}</name><hosts>{}</hosts>",
            xml_value("name", &spec.name)?,
            xml_value("hosts", &join_hosts(&spec.hosts))?,
        );
        if !spec.exclude_hosts.is_empty() {
            xml += &format!(
                "<exclude_hosts>{}</exclude_hosts>",
                xml_value("exclude_hosts", &join_hosts(&spec.exclude_hosts))?
            );
        }
        if let Some(comment) = &spec.comment {
            xml += &format!("<comment>{}</comment>", xml_value("comment", comment)?);
        }
        xml += &format!(
            "<port_list id=\"{}\"/></create_target>",
            xml_value("port_list", &port_list)?
        );
        let root = self.command("create_target", &xml).await?;
        created_id("create_target", &root)
    }

    /// `create_task` with the scan config and scanner resolved by name (ids differ between
    /// gvmd installs and feed versions); returns the task id.
    pub async fn create_task(&mut self, spec: &TaskSpec) -> Result<String, GmpError> {
        let config = self.config_id(&spec.scan_config).await?;
        let scanner = self.scanner_id(&spec.scanner).await?;
        let mut xml = format!(
            "<create_task><name>{}</name>",
            xml_value("name", &spec.name)?
        );
        if let Some(comment) = &spec.comment {
            xml += &format!("<comment>{}</comment>", xml_value("comment", comment)?);
        }
        xml += &format!(
            "<config id=\"{}\"/><target id=\"{}\"/><scanner id=\"{}\"/></create_task>",
            xml_value("config", &config)?,
            xml_value("target_id", &spec.target_id)?,
            xml_value("scanner", &scanner)?,
        );
        let root = self.command("create_task", &xml).await?;
        created_id("create_task", &root)
    }

    /// `start_task`; returns the id of the report the run writes, when gvmd says.
    pub async fn start_task(&mut self, task_id: &str) -> Result<Option<String>, GmpError> {
        let xml = format!(
            "<start_task task_id=\"{}\"/>",
            xml_value("task_id", task_id)?
        );
        let root = self.command("start_task", &xml).await?;
        Ok(root.child_text("report_id").map(str::to_owned))
    }

    pub async fn stop_task(&mut self, task_id: &str) -> Result<(), GmpError> {
        let xml = format!(
            "<stop_task task_id=\"{}\"/>",
            xml_value("task_id", task_id)?
        );
        self.command("stop_task", &xml).await.map(drop)
    }

    /// `get_tasks`: one task by id, or all of them.
    pub async fn get_tasks(&mut self, task_id: Option<&str>) -> Result<Vec<TaskStatus>, GmpError> {
        let xml = match task_id {
            Some(id) => format!("<get_tasks task_id=\"{}\"/>", xml_value("task_id", id)?),
            None => "<get_tasks filter=\"rows=-1\"/>".to_owned(),
        };
        let root = self.command("get_tasks", &xml).await?;
        root.children_named("task")
            .map(|task| {
                let id = task
                    .attr("id")
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| protocol("get_tasks", "a <task> without id"))?
                    .to_owned();
                let report_of = |name: &str| {
                    task.child(name)
                        .and_then(|n| n.child("report"))
                        .and_then(|r| r.attr("id"))
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                };
                Ok(TaskStatus {
                    id,
                    name: task.child_text("name").map(str::to_owned),
                    status: task.child_text("status").unwrap_or("").to_owned(),
                    // GMP 9 writes `<progress>42<host_progress>…</host_progress></progress>`:
                    // the own text is the task's percentage.
                    progress: task
                        .child_text("progress")
                        .and_then(|p| p.parse::<f64>().ok())
                        .map(|p| p.round() as i32),
                    current_report_id: report_of("current_report"),
                    last_report_id: report_of("last_report"),
                })
            })
            .collect()
    }

    /// One task's status.
    pub async fn get_task(&mut self, task_id: &str) -> Result<TaskStatus, GmpError> {
        self.get_tasks(Some(task_id))
            .await?
            .into_iter()
            .find(|t| t.id == task_id)
            .ok_or_else(|| protocol("get_tasks", format!("task {task_id} not in the answer")))
    }

    /// `get_reports` of one report, with details, in gvmd's XML format, through `filter`;
    /// parsed by [`crate::report`].
    pub async fn get_report(
        &mut self,
        report_id: &str,
        filter: &ReportFilter,
    ) -> Result<ParsedReport, GmpError> {
        let xml = format!(
            "<get_reports report_id=\"{}\" format_id=\"{XML_REPORT_FORMAT_ID}\" details=\"1\" \
             ignore_pagination=\"1\" filter=\"{}\"/>",
            xml_value("report_id", report_id)?,
            xml_value("filter", &filter.term())?,
        );
        let response = self.exchange("get_reports", &xml).await?;
        check_status("get_reports", &response)?;
        Ok(parse_report_bytes(&response.bytes)?)
    }

    async fn id_by_name(
        &mut self,
        command: &'static str,
        element: &'static str,
        kind: &'static str,
        name: &str,
    ) -> Result<String, GmpError> {
        // Exact name; `rows=-1` because gvmd pages lists too.
        let root = self
            .command(command, &format!("<{command} filter=\"rows=-1\"/>"))
            .await?;
        let mut matching = root
            .children_named(element)
            .filter(|n| n.child_text("name") == Some(name))
            .filter_map(|n| n.attr("id"));
        let Some(id) = matching.next() else {
            let mut available: Vec<&str> = root
                .children_named(element)
                .filter_map(|n| n.child_text("name"))
                .collect();
            available.sort_unstable();
            return Err(GmpError::NotFound {
                kind,
                name: name.to_owned(),
                available: if available.is_empty() {
                    "none".to_owned()
                } else {
                    available.join(", ")
                },
            });
        };
        let others = matching.count();
        if others > 0 {
            return Err(GmpError::Ambiguous {
                kind,
                name: name.to_owned(),
                count: others + 1,
            });
        }
        Ok(id.to_owned())
    }

    /// Sends a command, checks the status and parses the (small) answer.
    async fn command(&mut self, command: &str, xml: &str) -> Result<Node, GmpError> {
        let response = self.exchange(command, xml).await?;
        check_status(command, &response)?;
        tree::parse_document(&response.bytes, MAX_RESPONSE_DEPTH)
            .map_err(|reason| protocol(command, reason))
    }

    /// Sends one command and reads its whole response, within the response timeout.
    async fn exchange(&mut self, command: &str, xml: &str) -> Result<RawResponse, GmpError> {
        if self.broken {
            return Err(GmpError::Broken);
        }
        // Until the answer is complete, a failure leaves unread bytes on the connection.
        self.broken = true;
        let after = self.response_timeout;
        let response = tokio::time::timeout(after, self.send_and_read(command, xml))
            .await
            .map_err(|_| GmpError::Timeout {
                command: command.to_owned(),
                after,
            })??;
        self.broken = false;
        debug!(
            command,
            status = response.status,
            bytes = response.bytes.len(),
            "gvmd answered"
        );
        Ok(response)
    }

    async fn send_and_read(&mut self, command: &str, xml: &str) -> Result<RawResponse, GmpError> {
        let io_error = |source| GmpError::Io {
            command: command.to_owned(),
            source,
        };
        let stream = &mut self.conn.get_mut().inner;
        stream.write_all(xml.as_bytes()).await.map_err(io_error)?;
        stream.flush().await.map_err(io_error)?;

        self.conn.get_mut().start(self.max_response_bytes);
        let mut reader = Reader::from_reader(&mut self.conn);
        let mut buf = Vec::new();
        let mut depth = 0usize;
        let mut root: Option<(u16, String)> = None;
        loop {
            let event = match reader.read_event_into_async(&mut buf).await {
                Ok(event) => event,
                Err(quick_xml::Error::Io(err)) => {
                    drop(reader);
                    if self.conn.get_ref().overflowed {
                        return Err(GmpError::ResponseTooLarge {
                            command: command.to_owned(),
                            limit: self.max_response_bytes,
                        });
                    }
                    return Err(io_error(io::Error::new(err.kind(), err.to_string())));
                }
                Err(err) => return Err(protocol(command, err.to_string())),
            };
            match event {
                Event::Start(e) => {
                    if depth == 0 {
                        root = Some(root_status(command, &e)?);
                    }
                    depth += 1;
                }
                Event::Empty(e) if depth == 0 => {
                    root = Some(root_status(command, &e)?);
                    break;
                }
                Event::End(_) => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        break;
                    }
                }
                Event::Eof => {
                    return Err(GmpError::Closed {
                        command: command.to_owned(),
                    });
                }
                _ => {}
            }
            buf.clear();
        }
        drop(reader);
        // gvmd sends nothing unasked; bytes past the root would belong to no command.
        let leftover = self.conn.buffer().len();
        if leftover > 0 {
            warn!(
                command,
                bytes = leftover,
                "gvmd sent bytes after its answer; dropped"
            );
            self.conn.consume(leftover);
        }
        let mut bytes = self.conn.get_mut().finish();
        bytes.truncate(bytes.len().saturating_sub(leftover));
        let (status, status_text) = root.ok_or_else(|| protocol(command, "no root element"))?;
        Ok(RawResponse {
            status,
            status_text,
            bytes,
        })
    }
}

/// The `status` and `status_text` attributes of a response's root element.
fn root_status(command: &str, e: &BytesStart<'_>) -> Result<(u16, String), GmpError> {
    let attrs = tree::attributes(e).map_err(|reason| protocol(command, reason))?;
    let get = |k: &str| attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    let status = get("status").ok_or_else(|| protocol(command, "the answer has no status"))?;
    let status = status
        .parse::<u16>()
        .map_err(|_| protocol(command, format!("status {status:?} is not a number")))?;
    Ok((status, get("status_text").unwrap_or_default()))
}

fn check_status(command: &str, response: &RawResponse) -> Result<(), GmpError> {
    if (200..300).contains(&response.status) {
        Ok(())
    } else {
        Err(status_error(command, response))
    }
}

fn status_error(command: &str, response: &RawResponse) -> GmpError {
    let status_text = response.status_text.clone();
    match response.status {
        401 | 403 => GmpError::AuthFailed { status_text },
        // "Service temporarily down": gvmd is rebuilding its feed cache or at its limit of
        // concurrent scans.
        503 => GmpError::Busy {
            command: command.to_owned(),
            status_text,
        },
        status @ 400..=499 => GmpError::Request {
            command: command.to_owned(),
            status,
            status_text,
        },
        status => GmpError::Server {
            command: command.to_owned(),
            status,
            status_text,
        },
    }
}

fn created_id(command: &str, root: &Node) -> Result<String, GmpError> {
    root.attr("id")
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| protocol(command, "the answer names no id"))
}

fn protocol(command: &str, reason: impl Into<String>) -> GmpError {
    GmpError::Protocol {
        command: command.to_owned(),
        reason: reason.into(),
    }
}

fn join_hosts(hosts: &[String]) -> String {
    hosts
        .iter()
        .map(|h| h.trim())
        .filter(|h| !h.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

/// A value escaped for element text or a double-quoted attribute. Control characters XML 1.0
/// cannot carry at all are refused rather than dropped.
fn xml_value(field: &'static str, value: &str) -> Result<String, GmpError> {
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(GmpError::InvalidInput {
            field,
            reason: format!(
                "control character U+{:04X} cannot travel in XML",
                u32::from(c)
            ),
        });
    }
    Ok(escape(value).into_owned())
}

/// Keeps the bytes read from the stream for the response being read, up to a limit.
struct Capture<S> {
    inner: S,
    captured: Vec<u8>,
    limit: usize,
    overflowed: bool,
}

impl<S> Capture<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            captured: Vec::new(),
            limit: usize::MAX,
            overflowed: false,
        }
    }

    fn start(&mut self, limit: usize) {
        self.captured = Vec::new();
        self.limit = limit;
        self.overflowed = false;
    }

    fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.captured)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Capture<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let fresh = buf.filled().get(before..).unwrap_or_default();
        if this.captured.len().saturating_add(fresh.len()) > this.limit {
            this.overflowed = true;
            return Poll::Ready(Err(io::Error::other("response over the size limit")));
        }
        this.captured.extend_from_slice(fresh);
        Poll::Ready(Ok(()))
    }
}

fn tls_config(trust: &TlsTrust) -> Result<rustls::ClientConfig, GmpError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| GmpError::Tls(e.to_string()))?;
    let roots = match &trust.ca_pem {
        Some(pem) => {
            let mut store = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| GmpError::Tls(format!("CA PEM: {e}")))?;
                store
                    .add(cert)
                    .map_err(|e| GmpError::Tls(format!("CA PEM: {e}")))?;
            }
            if store.is_empty() {
                return Err(GmpError::Tls("CA PEM: no CERTIFICATE block".to_owned()));
            }
            Some(store)
        }
        None => None,
    };
    match (roots, trust.pins_spki_sha256.is_empty()) {
        (None, true) => Err(GmpError::Tls(
            "gvmd's certificate needs a trust anchor: its CA (PEM) or a SPKI SHA-256 pin"
                .to_owned(),
        )),
        (Some(roots), true) => Ok(builder.with_root_certificates(roots).with_no_client_auth()),
        (roots, false) => {
            let chain = match roots {
                Some(roots) => Some(
                    rustls::client::WebPkiServerVerifier::builder_with_provider(
                        Arc::new(roots),
                        provider.clone(),
                    )
                    .build()
                    .map_err(|e| GmpError::Tls(e.to_string()))?
                        as Arc<dyn ServerCertVerifier>,
                ),
                None => None,
            };
            let verifier = PinVerifier {
                pins: trust.pins_spki_sha256.clone(),
                chain,
                provider,
            };
            Ok(builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth())
        }
    }
}

/// SHA-256 of a DER certificate's SubjectPublicKeyInfo: the pin format of [`TlsTrust`].
pub fn spki_sha256(cert_der: &[u8]) -> Option<[u8; 32]> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    Some(Sha256::digest(cert.tbs_certificate.subject_pki.raw).into())
}

#[derive(Debug)]
struct PinMismatch([u8; 32]);

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the server's public key (SPKI SHA-256 ")?;
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        f.write_str(") matches no configured pin")
    }
}

impl std::error::Error for PinMismatch {}

struct PinVerifier {
    pins: Vec<[u8; 32]>,
    chain: Option<Arc<dyn ServerCertVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl fmt::Debug for PinVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinVerifier")
            .field("pins", &self.pins.len())
            .field("chain", &self.chain.is_some())
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
        let got = spki_sha256(end_entity).ok_or(rustls::Error::InvalidCertificate(
            rustls::CertificateError::BadEncoding,
        ))?;
        if self.pins.contains(&got) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(PinMismatch(got)))),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_controls_refused() {
        assert_eq!(
            xml_value("name", "a<b>&\"c'").unwrap(),
            "a&lt;b&gt;&amp;&quot;c&apos;"
        );
        assert!(matches!(
            xml_value("name", "a\u{1}b"),
            Err(GmpError::InvalidInput { field: "name", .. })
        ));
    }

    #[test]
    fn default_filter_is_widened() {
        assert_eq!(
            ReportFilter::default().term(),
            "apply_overrides=1 levels=chmlg min_qod=30 rows=-1 first=1"
        );
    }
}
