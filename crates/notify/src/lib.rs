//! Outbound notifications for Dozor's SOAR playbooks: the library behind the playbook modules
//! `notify.webhook`, `notify.email`, `notify.telegram` and `notify.mattermost`.
//!
//! - [`Webhook`]: POST JSON, signed with HMAC-SHA256 (scheme in [`webhook`]), retried.
//! - [`Smtp`] + [`Email`]: e-mail with STARTTLS (default, required), implicit TLS, or an
//!   explicitly insecure plain mode; optional AUTH; an extra CA file for on-prem relays.
//! - [`Telegram`]: Bot API `sendMessage`, base URL configurable for proxies, 429 handled.
//! - [`Mattermost`]: Mattermost/Slack-compatible incoming webhooks.
//!
//! HTTP goes through one [`HttpClient`] (rustls with ring, system roots plus an optional CA
//! file, optional proxy, never unverified TLS). Secrets are [`Secret`]s: their `Debug` prints
//! `[redacted]`, and every error text from a library or a server is scrubbed of them; URLs never
//! appear in errors, only `host[:port]`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), dozor_notify::NotifyError> {
//! use dozor_notify::{HttpClient, HttpOptions, Webhook};
//! let http = HttpClient::new(&HttpOptions::default())?;
//! let hook = Webhook::new("https://soar.example.org/hooks/dozor").with_secret("s3cret");
//! let delivery = hook.send(&http, &serde_json::json!({"alert": "brute force"})).await?;
//! println!("HTTP {} after {} attempt(s)", delivery.status, delivery.attempts);
//! # Ok(()) }
//! ```

mod email;
mod error;
mod http;
mod mattermost;
mod secret;
mod telegram;
pub mod webhook;

pub use email::{Email, EmailDelivery, Smtp, SmtpSecurity};
pub use error::{Channel, NotifyError, SmtpStage};
pub use http::{Delivery, HttpClient, HttpOptions, RetryPolicy};
pub use mattermost::Mattermost;
pub use secret::Secret;
pub use telegram::{DEFAULT_TELEGRAM_API, Telegram};
pub use webhook::{Webhook, verify_signature};
