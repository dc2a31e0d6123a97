//! What went wrong, on which channel, against which host. No variant carries a secret: every
//! text that comes from a library or a remote server is scrubbed before it is stored here.

use std::fmt;
use std::time::Duration;

/// The notification channel an error or a delivery belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// A signed JSON webhook ([`crate::Webhook`]).
    Webhook,
    /// E-mail over SMTP ([`crate::Smtp`]).
    Email,
    /// Telegram Bot API ([`crate::Telegram`]).
    Telegram,
    /// Mattermost or Slack incoming webhook ([`crate::Mattermost`]).
    Mattermost,
    /// The shared HTTP client itself ([`crate::HttpClient`]), before any channel used it.
    Http,
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Channel::Webhook => "webhook",
            Channel::Email => "email",
            Channel::Telegram => "telegram",
            Channel::Mattermost => "mattermost",
            Channel::Http => "http client",
        })
    }
}

/// The step of an SMTP delivery that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpStage {
    /// TCP connection, greeting or a timeout before the server answered.
    Connect,
    /// TLS: the server offers no STARTTLS while it is required, or its certificate is not
    /// trusted, or the handshake failed.
    Tls,
    /// AUTH was refused (bad user or password, or no mechanism in common).
    Auth,
    /// The server refused the sender, a recipient or the message.
    Rejected,
    /// The whole delivery took longer than the configured deadline.
    Timeout,
}

impl fmt::Display for SmtpStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SmtpStage::Connect => "connection failed",
            SmtpStage::Tls => "TLS failed",
            SmtpStage::Auth => "authentication failed",
            SmtpStage::Rejected => "message refused",
            SmtpStage::Timeout => "timed out",
        })
    }
}

/// Every failure of this crate.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The configuration or the message cannot be used (bad URL, address, CA file, token…).
    #[error("{channel}: invalid configuration: {message}")]
    Config {
        /// Which channel.
        channel: Channel,
        /// What is wrong (never the secret itself).
        message: String,
    },
    /// No HTTP answer: connection refused, DNS, TLS, timeout, proxy.
    #[error("{channel}: cannot reach {host}: {message}")]
    Transport {
        /// Which channel.
        channel: Channel,
        /// `host[:port]` of the target (never the full URL: it may carry a token).
        host: String,
        /// The cause, scrubbed of secrets and URLs.
        message: String,
    },
    /// The server answered with a status that is not a success.
    #[error("{channel}: {host} answered HTTP {status}: {body}")]
    Status {
        /// Which channel.
        channel: Channel,
        /// `host[:port]` of the target.
        host: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body, scrubbed.
        body: String,
    },
    /// The Telegram Bot API answered `{"ok": false, ...}`.
    #[error("{channel}: {host} refused the message (error {code}): {description}")]
    Api {
        /// Which channel.
        channel: Channel,
        /// `host[:port]` of the target.
        host: String,
        /// The API's `error_code` (the HTTP status when it gave none).
        code: i64,
        /// The API's `description`, scrubbed and cut.
        description: String,
    },
    /// More than one attempt was made and none succeeded: retries ran out (attempts or the
    /// total deadline), or a later attempt failed in a way not worth retrying. `last` is the
    /// last attempt's failure.
    #[error("{last} (gave up after {attempts} attempts in {:.1} s)", .elapsed.as_secs_f64())]
    GaveUp {
        /// Which channel.
        channel: Channel,
        /// `host[:port]` of the target.
        host: String,
        /// How many requests were sent.
        attempts: u32,
        /// Time from the first attempt to giving up.
        elapsed: Duration,
        /// The last failure.
        #[source]
        last: Box<NotifyError>,
    },
    /// SMTP delivery failed.
    #[error("email: SMTP {host}: {stage}: {message}")]
    Smtp {
        /// `host:port` of the SMTP server.
        host: String,
        /// Which step failed.
        stage: SmtpStage,
        /// The server's answer or the library's message, scrubbed.
        message: String,
    },
}

impl NotifyError {
    /// The channel that failed.
    pub fn channel(&self) -> Channel {
        match self {
            NotifyError::Config { channel, .. }
            | NotifyError::Transport { channel, .. }
            | NotifyError::Status { channel, .. }
            | NotifyError::Api { channel, .. }
            | NotifyError::GaveUp { channel, .. } => *channel,
            NotifyError::Smtp { .. } => Channel::Email,
        }
    }

    /// The HTTP status of the (last) answer, if there was one.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            NotifyError::Status { status, .. } => Some(*status),
            NotifyError::GaveUp { last, .. } => last.http_status(),
            _ => None,
        }
    }

    /// How many HTTP requests were sent before this error (1 unless retries ran out).
    pub fn attempts(&self) -> u32 {
        match self {
            NotifyError::GaveUp { attempts, .. } => *attempts,
            NotifyError::Config { .. } => 0,
            _ => 1,
        }
    }
}
