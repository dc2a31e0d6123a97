//! E-mail over SMTP (lettre on rustls with ring).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::error::{Channel, NotifyError, SmtpStage};
use crate::http::{ensure_crypto_provider, error_chain, read_ca_file};
use crate::secret::{Secret, cut, scrub};

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which is required: a server that does not offer
    /// it is refused. Default port 587.
    #[default]
    StartTls,
    /// TLS from the first byte ("SMTPS", implicit TLS). Default port 465.
    Tls,
    /// No encryption at all, for a relay on the same host or a trusted segment only. Credentials
    /// are refused in this mode. Default port 25.
    PlainInsecure,
}

impl SmtpSecurity {
    fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::PlainInsecure => 25,
        }
    }
}

/// An SMTP server to send through.
#[derive(Debug, Clone)]
pub struct Smtp {
    /// Host name or IP address of the server; also the name its certificate must carry unless
    /// [`Smtp::tls_server_name`] says otherwise.
    pub host: String,
    /// Port; the mode's default when unset (587, 465 or 25).
    pub port: Option<u16>,
    /// Encryption mode.
    pub security: SmtpSecurity,
    /// AUTH user name; AUTH is attempted only when set.
    pub username: Option<String>,
    /// AUTH password.
    pub password: Option<Secret>,
    /// A PEM file of extra CA certificates to trust besides the system's (an on-prem CA).
    pub ca_pem_file: Option<PathBuf>,
    /// The name checked against the server's certificate, when it differs from `host`.
    pub tls_server_name: Option<String>,
    /// Time limit of each SMTP command (connect included). Default 30 s.
    pub timeout: Duration,
    /// Time limit of the whole delivery. Default 60 s.
    pub deadline: Duration,
}

impl Smtp {
    /// A server reached with STARTTLS on port 587, without AUTH.
    pub fn new(host: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port: None,
            security: SmtpSecurity::default(),
            username: None,
            password: None,
            ca_pem_file: None,
            tls_server_name: None,
            timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(60),
        }
    }

    /// Logs in with `username` and `password`.
    pub fn with_credentials(
        mut self,
        username: impl Into<String>,
        password: impl Into<Secret>,
    ) -> Self {
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }

    fn port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.security.default_port())
    }

    /// Sends `email`. Nothing is retried: a refused message stays refused, and a playbook has its
    /// own retries for the rest.
    pub async fn send(&self, email: &Email) -> Result<EmailDelivery, NotifyError> {
        let config = |message: String| NotifyError::Config {
            channel: Channel::Email,
            message,
        };
        if self.host.trim().is_empty() {
            return Err(config("the SMTP host is empty".into()));
        }
        let host = format!("{}:{}", self.host, self.port());
        let message = email.build()?;
        let recipients = email.to.len();

        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.as_str())
                .port(self.port())
                .timeout(Some(self.timeout));
        if self.security != SmtpSecurity::PlainInsecure {
            ensure_crypto_provider();
            let name = self
                .tls_server_name
                .clone()
                .unwrap_or_else(|| self.host.clone());
            let mut params = TlsParameters::builder(name);
            if let Some(path) = &self.ca_pem_file {
                let pem = read_ca_file(Channel::Email, path)?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| config(format!("CA file {} is not PEM: {e}", path.display())))?;
                params = params.add_root_certificate(cert);
            }
            let params = params.build().map_err(|e| NotifyError::Smtp {
                host: host.clone(),
                stage: SmtpStage::Tls,
                message: error_chain(&e),
            })?;
            builder = builder.tls(match self.security {
                SmtpSecurity::Tls => Tls::Wrapper(params),
                _ => Tls::Required(params),
            });
        }
        let mut secrets: Vec<&Secret> = Vec::new();
        match (&self.username, &self.password) {
            (Some(_), _) | (_, Some(_)) if self.security == SmtpSecurity::PlainInsecure => {
                return Err(config(
                    "credentials are refused in plain_insecure mode: they would cross the network in clear; use starttls or tls".into(),
                ));
            }
            (Some(user), Some(password)) => {
                secrets.push(password);
                builder = builder
                    .credentials(Credentials::new(user.clone(), password.expose().to_owned()));
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(config("username and password go together".into()));
            }
            (None, None) => {}
        }
        let transport = builder.build();
        let started = Instant::now();
        tracing::debug!(host, recipients, security = ?self.security, "sending e-mail");
        let result = tokio::time::timeout(self.deadline, transport.send(message)).await;
        let elapsed = started.elapsed();
        match result {
            Ok(Ok(response)) => {
                let answer = format!(
                    "{} {}",
                    response.code(),
                    response.first_line().unwrap_or_default()
                );
                tracing::info!(host, recipients, ?elapsed, "e-mail delivered");
                Ok(EmailDelivery {
                    recipients,
                    elapsed,
                    server_answer: scrub(&cut(&answer, 200), &secrets),
                })
            }
            Ok(Err(e)) => {
                let err = NotifyError::Smtp {
                    host,
                    stage: stage_of(&e),
                    message: scrub(&cut(&error_chain(&e), 300), &secrets),
                };
                tracing::warn!(error = %err, "e-mail failed");
                Err(err)
            }
            Err(_) => {
                let err = NotifyError::Smtp {
                    host,
                    stage: SmtpStage::Timeout,
                    message: format!("no delivery within {:?}", self.deadline),
                };
                tracing::warn!(error = %err, "e-mail failed");
                Err(err)
            }
        }
    }
}

fn stage_of(e: &lettre::transport::smtp::Error) -> SmtpStage {
    let text = error_chain(e).to_ascii_lowercase();
    let code = e.status().map(u16::from);
    if matches!(code, Some(454 | 530 | 534 | 535 | 538)) || text.contains("authentication") {
        SmtpStage::Auth
    } else if e.is_tls() || text.contains("starttls") || text.contains("certificate") {
        SmtpStage::Tls
    } else if e.is_timeout() {
        SmtpStage::Timeout
    } else if e.is_permanent() || e.is_transient() {
        SmtpStage::Rejected
    } else {
        SmtpStage::Connect
    }
}

/// One e-mail.
#[derive(Debug, Clone, Default)]
pub struct Email {
    /// Sender, `addr@example.org` or `Name <addr@example.org>`.
    pub from: String,
    /// Recipients, at least one, same forms as `from`.
    pub to: Vec<String>,
    /// Subject line.
    pub subject: String,
    /// Plain text body.
    pub text: String,
    /// Optional HTML alternative of the same content.
    pub html: Option<String>,
}

impl Email {
    fn build(&self) -> Result<Message, NotifyError> {
        let config = |message: String| NotifyError::Config {
            channel: Channel::Email,
            message,
        };
        let from: Mailbox = self
            .from
            .parse()
            .map_err(|e| config(format!("from {:?} is not an address: {e}", self.from)))?;
        if self.to.is_empty() {
            return Err(config("no recipient".into()));
        }
        let mut builder = Message::builder().from(from).subject(self.subject.clone());
        for to in &self.to {
            let mailbox: Mailbox = to
                .parse()
                .map_err(|e| config(format!("recipient {to:?} is not an address: {e}")))?;
            builder = builder.to(mailbox);
        }
        let built = match &self.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                self.text.clone(),
                html.clone(),
            )),
            None => builder.singlepart(SinglePart::plain(self.text.clone())),
        };
        built.map_err(|e| config(format!("the message cannot be built: {e}")))
    }
}

/// A delivered e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailDelivery {
    /// Number of recipients the server accepted (all, or the send fails).
    pub recipients: usize,
    /// Time from connecting to the server's final answer.
    pub elapsed: Duration,
    /// The server's answer to the message (`250 …`).
    pub server_answer: String,
}
