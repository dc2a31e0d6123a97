//! The HTTP side shared by the webhook, Telegram and Mattermost channels: one reqwest client
//! (rustls with ring, system roots plus an optional CA file, optional proxy) and the retry loop.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Once;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::error::{Channel, NotifyError};
use crate::secret::{Secret, cut, scrub};

/// How much of a response body is read (the rest is dropped) and how much of it an error shows.
const BODY_READ_LIMIT: usize = 64 * 1024;
const BODY_SHOWN: usize = 200;

/// Options of the HTTP client.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Time limit of one request, connection included. Default 10 s.
    pub timeout: Duration,
    /// Time limit of the TCP connect (and TLS handshake). Default 5 s.
    pub connect_timeout: Duration,
    /// A PEM file of extra CA certificates to trust besides the system's (an on-prem CA).
    pub ca_pem_file: Option<PathBuf>,
    /// Proxy URL for every request (`http://proxy:3128`, `http://user:password@proxy:3128`;
    /// SOCKS is not built in). A secret, as it may carry a password. When unset no proxy is
    /// used, whatever `HTTPS_PROXY` says: the configuration is the whole truth.
    pub proxy: Option<Secret>,
    /// `User-Agent` header. Default `dozor-notify/<version>`.
    pub user_agent: String,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            ca_pem_file: None,
            proxy: None,
            user_agent: format!("dozor-notify/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// When and how often a failed HTTP delivery is tried again.
///
/// Connection errors, timeouts, 5xx and 429 are retried; other 4xx are not (the request itself
/// is wrong, sending it again changes nothing).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Requests at most, the first included. Default 4; 1 means no retry.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled for each further one. Default 500 ms.
    pub initial_backoff: Duration,
    /// Upper bound of one wait, also of a server's `Retry-After`. Default 30 s.
    pub max_backoff: Duration,
    /// Upper bound of the whole delivery, waits included: no attempt starts, and no wait is
    /// begun, that would end past it. Default 60 s.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            deadline: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A single attempt.
    pub fn no_retry() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    fn backoff(&self, failed_attempts: u32) -> Duration {
        let shift = failed_attempts.saturating_sub(1).min(16);
        self.initial_backoff
            .saturating_mul(1u32 << shift)
            .min(self.max_backoff)
    }
}

/// A successful HTTP delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The final HTTP status (2xx).
    pub status: u16,
    /// Requests sent, the successful one included.
    pub attempts: u32,
    /// Time from the first request to the answer of the last.
    pub elapsed: Duration,
}

/// The HTTP client every HTTP channel sends through. Build it once and share it: it keeps
/// connections alive. Cheap to clone.
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: reqwest::Client,
    retry: RetryPolicy,
    /// The proxy URL and its password, scrubbed from every error.
    proxy_secrets: Vec<Secret>,
}

/// Makes ring the process's rustls provider if none is set: reqwest and lettre are built
/// without one of their own. A provider the host application installed first is kept.
pub(crate) fn ensure_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Err only when another thread installed one in between: that one is used.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    });
}

pub(crate) fn read_ca_file(
    channel: Channel,
    path: &std::path::Path,
) -> Result<Vec<u8>, NotifyError> {
    std::fs::read(path).map_err(|e| NotifyError::Config {
        channel,
        message: format!("cannot read CA file {}: {e}", path.display()),
    })
}

impl HttpClient {
    /// Builds the client with the default retry policy.
    pub fn new(options: &HttpOptions) -> Result<Self, NotifyError> {
        Self::with_retry(options, RetryPolicy::default())
    }

    /// Builds the client with the given retry policy.
    pub fn with_retry(options: &HttpOptions, retry: RetryPolicy) -> Result<Self, NotifyError> {
        let channel = Channel::Http;
        ensure_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout)
            .user_agent(options.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none())
            .https_only(false);
        if let Some(path) = &options.ca_pem_file {
            let pem = read_ca_file(channel, path)?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| NotifyError::Config {
                    channel,
                    message: format!("CA file {} is not PEM: {}", path.display(), e.without_url()),
                })?;
            if certs.is_empty() {
                return Err(NotifyError::Config {
                    channel,
                    message: format!("CA file {} holds no certificate", path.display()),
                });
            }
            builder = builder.tls_certs_merge(certs);
        }
        let mut proxy_secrets = Vec::new();
        builder = match &options.proxy {
            Some(url) => {
                proxy_secrets.push(url.clone());
                if let Some(password) = reqwest::Url::parse(url.expose())
                    .ok()
                    .and_then(|u| u.password().map(str::to_owned))
                {
                    proxy_secrets.push(Secret::new(password));
                }
                let proxy = reqwest::Proxy::all(url.expose()).map_err(|_| NotifyError::Config {
                    channel,
                    message: "the proxy is not a valid URL".into(),
                })?;
                builder.proxy(proxy)
            }
            None => builder.no_proxy(),
        };
        let inner = builder.build().map_err(|e| NotifyError::Config {
            channel,
            message: format!(
                "cannot build the HTTP client: {}",
                error_chain(&e.without_url())
            ),
        })?;
        if retry.max_attempts == 0 {
            return Err(NotifyError::Config {
                channel,
                message: "max_attempts must be at least 1".into(),
            });
        }
        Ok(Self {
            inner,
            retry,
            proxy_secrets,
        })
    }

    /// The retry policy in use.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    pub(crate) fn reqwest(&self) -> &reqwest::Client {
        &self.inner
    }

    /// `own` secrets of a channel plus the client's (the proxy URL): what errors are scrubbed of.
    pub(crate) fn secrets<'a>(&'a self, own: &[&'a Secret]) -> Vec<&'a Secret> {
        own.iter()
            .copied()
            .chain(self.proxy_secrets.iter())
            .collect()
    }
}

/// `host[:port]` of a URL, for errors and logs; the URL itself may carry a token.
pub(crate) fn parse_url(
    channel: Channel,
    url: &str,
) -> Result<(reqwest::Url, String), NotifyError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| NotifyError::Config {
        channel,
        message: format!("the URL is not valid ({e}); it is not shown as it may carry a secret"),
    })?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err(NotifyError::Config {
            channel,
            message: format!("URL scheme {:?} is not http or https", parsed.scheme()),
        });
    }
    let host = match (parsed.host_str(), parsed.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        (None, _) => {
            return Err(NotifyError::Config {
                channel,
                message: "the URL has no host".into(),
            });
        }
    };
    Ok((parsed, host))
}

/// An error and its causes on one line (reqwest's top-level message says little alone).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    // Libraries nest their own errors ("Connection error: Connection error: …"): say it once.
    let mut parts: Vec<&str> = Vec::new();
    for part in out.split(": ") {
        if parts.last() != Some(&part) {
            parts.push(part);
        }
    }
    parts.join(": ")
}

/// A reqwest error as a [`NotifyError::Transport`], without the URL and without secrets.
pub(crate) fn transport_error(
    channel: Channel,
    host: &str,
    e: reqwest::Error,
    secrets: &[&Secret],
) -> NotifyError {
    let what = if e.is_timeout() {
        "timed out: "
    } else if e.is_connect() {
        "connection failed: "
    } else {
        ""
    };
    let e = e.without_url();
    NotifyError::Transport {
        channel,
        host: host.to_owned(),
        message: scrub(&format!("{what}{}", error_chain(&e)), secrets),
    }
}

/// What one attempt came to.
pub(crate) enum Attempt {
    /// Delivered with this HTTP status.
    Done(u16),
    /// Failed in a way worth another try, after at least `after` if the server said so.
    Retry(NotifyError, Option<Duration>),
    /// Failed for good.
    Fail(NotifyError),
}

/// A response read into memory (at most [`BODY_READ_LIMIT`] bytes).
pub(crate) struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// The start of the body as text for an error message, scrubbed.
    pub fn shown_body(&self, secrets: &[&Secret]) -> String {
        scrub(
            &cut(&String::from_utf8_lossy(&self.body), BODY_SHOWN),
            secrets,
        )
    }

    /// `Retry-After` in seconds or as an HTTP date, if present and readable.
    pub fn retry_after(&self) -> Option<Duration> {
        let value = self.headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
        if let Ok(secs) = value.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        let when = httpdate::parse_http_date(value).ok()?;
        Some(
            when.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
        )
    }
}

/// Sends a request and reads the answer (status, headers, body up to the limit).
pub(crate) async fn fetch(
    channel: Channel,
    host: &str,
    request: reqwest::RequestBuilder,
    secrets: &[&Secret],
) -> Result<Answer, NotifyError> {
    let mut response = request
        .send()
        .await
        .map_err(|e| transport_error(channel, host, e, secrets))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = BODY_READ_LIMIT.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= BODY_READ_LIMIT {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => return Err(transport_error(channel, host, e, secrets)),
        }
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// The usual verdict on an HTTP answer: 2xx done, 429 and 5xx retried, the rest failed.
pub(crate) fn judge(channel: Channel, host: &str, answer: &Answer, secrets: &[&Secret]) -> Attempt {
    let status = answer.status;
    if (200..300).contains(&status) {
        return Attempt::Done(status);
    }
    let err = NotifyError::Status {
        channel,
        host: host.to_owned(),
        status,
        body: answer.shown_body(secrets),
    };
    if status == 429 || (500..600).contains(&status) {
        Attempt::Retry(err, answer.retry_after())
    } else {
        Attempt::Fail(err)
    }
}

/// Runs `attempt` until it succeeds, fails for good, or the policy's attempts or deadline run
/// out. `attempt` gets the 1-based attempt number.
pub(crate) async fn with_retries<F, Fut>(
    policy: &RetryPolicy,
    channel: Channel,
    host: &str,
    mut attempt: F,
) -> Result<Delivery, NotifyError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Attempt>,
{
    let started = Instant::now();
    let max_attempts = policy.max_attempts.max(1);
    let mut n = 0u32;
    loop {
        n += 1;
        let remaining = policy.deadline.saturating_sub(started.elapsed());
        let outcome = match tokio::time::timeout(remaining, attempt(n)).await {
            Ok(outcome) => outcome,
            Err(_) => Attempt::Fail(NotifyError::Transport {
                channel,
                host: host.to_owned(),
                message: format!("the total deadline of {:?} passed", policy.deadline),
            }),
        };
        let (err, wait) = match outcome {
            Attempt::Done(status) => {
                let elapsed = started.elapsed();
                tracing::info!(%channel, host, status, attempts = n, ?elapsed, "notification delivered");
                return Ok(Delivery {
                    status,
                    attempts: n,
                    elapsed,
                });
            }
            Attempt::Fail(err) => {
                tracing::warn!(%channel, host, attempt = n, error = %err, "notification failed");
                return Err(wrap(channel, host, n, started, err));
            }
            Attempt::Retry(err, server_wait) => {
                let wait = server_wait
                    .map(|w| w.min(policy.max_backoff))
                    .unwrap_or_else(|| policy.backoff(n));
                (err, wait)
            }
        };
        if n >= max_attempts {
            tracing::warn!(%channel, host, attempts = n, error = %err, "notification failed, no attempt left");
            return Err(wrap(channel, host, n, started, err));
        }
        if started.elapsed().saturating_add(wait) >= policy.deadline {
            tracing::warn!(%channel, host, attempts = n, ?wait, error = %err, "notification failed, the next attempt would pass the deadline");
            return Err(wrap(channel, host, n, started, err));
        }
        tracing::debug!(%channel, host, attempt = n, ?wait, error = %err, "notification attempt failed, retrying");
        tokio::time::sleep(wait).await;
    }
}

fn wrap(
    channel: Channel,
    host: &str,
    attempts: u32,
    started: Instant,
    err: NotifyError,
) -> NotifyError {
    if attempts <= 1 {
        return err;
    }
    NotifyError::GaveUp {
        channel,
        host: host.to_owned(),
        attempts,
        elapsed: started.elapsed(),
        last: Box::new(err),
    }
}

/// Converts a transport-level result of [`fetch`] into an attempt verdict: transport errors
/// are worth a retry.
pub(crate) fn retry_transport(result: Result<Answer, NotifyError>) -> Result<Answer, Attempt> {
    result.map_err(|e| match e {
        e @ NotifyError::Transport { .. } => Attempt::Retry(e, None),
        other => Attempt::Fail(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chains_say_a_repeated_prefix_once() {
        let e =
            std::io::Error::other("Connection error: Connection error: invalid peer certificate");
        assert_eq!(
            error_chain(&e),
            "Connection error: invalid peer certificate"
        );
    }

    #[tokio::test]
    async fn huge_policy_values_do_not_overflow() {
        let policy = RetryPolicy {
            max_attempts: u32::MAX,
            initial_backoff: Duration::MAX,
            max_backoff: Duration::MAX,
            deadline: Duration::from_millis(50),
        };
        let mut calls = 0;
        let err = with_retries(&policy, Channel::Webhook, "h", |_| {
            calls += 1;
            async {
                Attempt::Retry(
                    NotifyError::Transport {
                        channel: Channel::Webhook,
                        host: "h".into(),
                        message: "down".into(),
                    },
                    Some(Duration::MAX),
                )
            }
        })
        .await
        .expect_err("gives up");
        assert_eq!(calls, 1);
        assert!(matches!(err, NotifyError::Transport { .. }), "{err:?}");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            deadline: Duration::from_secs(10),
        };
        assert_eq!(p.backoff(1), Duration::from_millis(100));
        assert_eq!(p.backoff(2), Duration::from_millis(200));
        assert_eq!(p.backoff(3), Duration::from_millis(400));
        assert_eq!(p.backoff(4), Duration::from_millis(500));
        assert_eq!(p.backoff(u32::MAX), Duration::from_millis(500));
    }

    #[test]
    fn urls_report_only_host_and_port() {
        let (_, host) = parse_url(
            Channel::Webhook,
            "https://hooks.example.org:8443/x?token=abc",
        )
        .expect("valid");
        assert_eq!(host, "hooks.example.org:8443");
        let err = parse_url(Channel::Webhook, "not a url with secret-abc").expect_err("invalid");
        assert!(!err.to_string().contains("secret-abc"));
        assert!(parse_url(Channel::Webhook, "ftp://x/").is_err());
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "7".parse().expect("header"));
        let a = Answer {
            status: 429,
            headers,
            body: Vec::new(),
        };
        assert_eq!(a.retry_after(), Some(Duration::from_secs(7)));
        let mut headers = HeaderMap::new();
        let later = SystemTime::now() + Duration::from_secs(120);
        headers.insert(
            RETRY_AFTER,
            httpdate::fmt_http_date(later).parse().expect("header"),
        );
        let a = Answer {
            status: 503,
            headers,
            body: Vec::new(),
        };
        let wait = a.retry_after().expect("date parsed");
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120));
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "soon".parse().expect("header"));
        let a = Answer {
            status: 503,
            headers,
            body: Vec::new(),
        };
        assert_eq!(a.retry_after(), None);
    }
}
