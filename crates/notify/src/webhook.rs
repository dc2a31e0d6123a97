//! Signed JSON webhooks.
//!
//! # Signature scheme
//!
//! With a secret configured, every request carries
//!
//! ```text
//! X-Dozor-Timestamp: <unix seconds when this attempt was sent>
//! X-Dozor-Signature: sha256=<lowercase hex of HMAC-SHA256(secret, "<timestamp>.<body>")>
//! X-Dozor-Delivery: <UUID, the same for every retry of one notification>
//! ```
//!
//! where `<body>` is the exact bytes of the request body. A receiver recomputes the HMAC over
//! the timestamp header, a dot and the raw body, compares in constant time
//! ([`verify_signature`] does both), rejects timestamps too far from its clock (five minutes
//! is usual) against replays, and may drop a repeated `X-Dozor-Delivery` (a retry after a
//! timeout can deliver twice). Timestamp and signature are recomputed for each retry.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue};

use crate::error::{Channel, NotifyError};
use crate::http::{Delivery, HttpClient, fetch, judge, parse_url, retry_transport, with_retries};
use crate::secret::Secret;

/// Header with the signature, `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Dozor-Signature";
/// Header with the unix time (seconds) the signature covers.
pub const TIMESTAMP_HEADER: &str = "X-Dozor-Timestamp";
/// Header with the delivery id, constant across retries.
pub const DELIVERY_HEADER: &str = "X-Dozor-Delivery";

/// Headers the webhook sets itself (lowercase); `X-Dozor-*` too.
const RESERVED_HEADERS: [&str; 5] = [
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
];

/// A JSON webhook target.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// `http://` or `https://` URL the JSON is POSTed to.
    /// A secret like the others, as receivers often take a token in the URL; only its host
    /// appears in errors and logs.
    pub url: Secret,
    /// HMAC key; without it no signature headers are sent.
    pub secret: Option<Secret>,
    /// Extra request headers (an API key header of the receiver, say). Their values are
    /// treated as secrets in error messages. `Content-Type`, `Content-Length`, `Host`,
    /// `Transfer-Encoding`, `Connection` and `X-Dozor-*` are refused: the webhook sets them.
    pub headers: Vec<(String, Secret)>,
}

impl Webhook {
    /// A webhook to `url`, unsigned, without extra headers.
    pub fn new(url: impl Into<Secret>) -> Self {
        Self {
            url: url.into(),
            secret: None,
            headers: Vec::new(),
        }
    }

    /// Signs every request with `secret` (see the module documentation).
    pub fn with_secret(mut self, secret: impl Into<Secret>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// Adds a request header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Secret>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// POSTs `payload` as JSON, retrying per the client's [`crate::RetryPolicy`].
    pub async fn send(
        &self,
        http: &HttpClient,
        payload: &serde_json::Value,
    ) -> Result<Delivery, NotifyError> {
        let channel = Channel::Webhook;
        let (url, host) = parse_url(channel, self.url.expose())?;
        if self.secret.as_ref().is_some_and(Secret::is_empty) {
            return Err(NotifyError::Config {
                channel,
                message: "the signing secret is empty".into(),
            });
        }
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &self.headers {
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| NotifyError::Config {
                    channel,
                    message: format!("{name:?} is not a valid header name"),
                })?;
            if RESERVED_HEADERS.contains(&name.as_str()) || name.as_str().starts_with("x-dozor-") {
                return Err(NotifyError::Config {
                    channel,
                    message: format!("header {name} is set by the webhook itself"),
                });
            }
            let mut value =
                HeaderValue::from_str(value.expose()).map_err(|_| NotifyError::Config {
                    channel,
                    message: format!("the value of header {name} is not a valid header value"),
                })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let body = serde_json::to_vec(payload).map_err(|e| NotifyError::Config {
            channel,
            message: format!("the payload cannot be serialized: {e}"),
        })?;
        let delivery_id = uuid::Uuid::new_v4().to_string();
        let mut own: Vec<&Secret> = self.headers.iter().map(|(_, v)| v).collect();
        own.push(&self.url);
        if let Some(s) = &self.secret {
            own.push(s);
        }
        let secrets = http.secrets(&own);
        tracing::debug!(
            host,
            delivery = delivery_id,
            bytes = body.len(),
            "sending webhook"
        );
        with_retries(http.retry_policy(), channel, &host, |_| {
            let mut request = http
                .reqwest()
                .post(url.clone())
                .headers(headers.clone())
                .header(CONTENT_TYPE, "application/json")
                .header(DELIVERY_HEADER, delivery_id.as_str());
            if let Some(secret) = &self.secret {
                let timestamp = unix_now();
                request = request
                    .header(TIMESTAMP_HEADER, timestamp.to_string())
                    .header(SIGNATURE_HEADER, sign(secret, timestamp, &body));
            }
            let request = request.body(body.clone());
            let host = host.as_str();
            let secrets = secrets.as_slice();
            async move {
                match retry_transport(fetch(channel, host, request, secrets).await) {
                    Ok(answer) => judge(channel, host, &answer, secrets),
                    Err(attempt) => attempt,
                }
            }
        })
        .await
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The `X-Dozor-Signature` value for `body` sent at `timestamp`: `sha256=<hex>`.
pub fn sign(secret: &Secret, timestamp: u64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.expose().as_bytes());
    let tag = ring::hmac::sign(&key, &signed_message(&timestamp.to_string(), body));
    format!("sha256={}", hex::encode(tag.as_ref()))
}

/// Checks a received `X-Dozor-Signature` header against the `X-Dozor-Timestamp` header (as
/// received, a string) and the raw body, in constant time. `false` for any malformed input.
///
/// It does not judge the timestamp's age: reject old ones yourself (see the module docs).
pub fn verify_signature(secret: &Secret, timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_tag) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(tag) = hex::decode(hex_tag) else {
        return false;
    };
    if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.expose().as_bytes());
    ring::hmac::verify(&key, &signed_message(timestamp, body), &tag).is_ok()
}

/// `<timestamp>.<body>`: the bytes the HMAC covers.
fn signed_message(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(timestamp.len() + 1 + body.len());
    msg.extend_from_slice(timestamp.as_bytes());
    msg.push(b'.');
    msg.extend_from_slice(body);
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_matches_a_known_hmac_and_verifies() {
        // HMAC-SHA256("key", "1.{}") computed independently with Python's hmac module.
        let secret = Secret::new("key");
        let sig = sign(&secret, 1, b"{}");
        assert_eq!(
            sig,
            "sha256=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
        );
        assert!(verify_signature(&secret, "1", b"{}", &sig));
    }

    #[test]
    fn verify_rejects_tampering_and_garbage() {
        let secret = Secret::new("s3cret");
        let sig = sign(&secret, 1_700_000_000, b"{\"a\":1}");
        assert!(verify_signature(&secret, "1700000000", b"{\"a\":1}", &sig));
        assert!(!verify_signature(&secret, "1700000001", b"{\"a\":1}", &sig));
        assert!(!verify_signature(&secret, "1700000000", b"{\"a\":2}", &sig));
        assert!(!verify_signature(
            &Secret::new("other"),
            "1700000000",
            b"{\"a\":1}",
            &sig
        ));
        assert!(!verify_signature(
            &secret,
            "1700000000",
            b"{\"a\":1}",
            "sha256=zz"
        ));
        assert!(!verify_signature(
            &secret,
            "1700000000",
            b"{\"a\":1}",
            "md5=00"
        ));
        assert!(!verify_signature(&secret, "", b"{\"a\":1}", &sig));
        assert!(!verify_signature(&secret, "17e8", b"{\"a\":1}", &sig));
        assert!(!verify_signature(&secret, "1700000000", b"{\"a\":1}", ""));
    }
}
