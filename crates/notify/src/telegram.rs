//! Telegram Bot API `sendMessage`.

use std::time::Duration;

use serde::Deserialize;

use reqwest::header::CONTENT_TYPE;

use crate::error::{Channel, NotifyError};
use crate::http::{Attempt, Delivery, HttpClient, fetch, parse_url, retry_transport, with_retries};
use crate::secret::{Secret, cut, scrub};

/// The public Bot API. Sites without Internet access point [`Telegram::base_url`] at a proxy.
pub const DEFAULT_TELEGRAM_API: &str = "https://api.telegram.org";

/// A Telegram bot and the chat it writes to.
#[derive(Debug, Clone)]
pub struct Telegram {
    /// API root, default [`DEFAULT_TELEGRAM_API`]; the request goes to
    /// `<base_url>/bot<token>/sendMessage`.
    pub base_url: String,
    /// The bot token from BotFather (`123456:ABC…`). It is part of the URL path, so it is
    /// scrubbed from every error.
    pub token: Secret,
    /// Numeric chat id (`-100…` for channels and supergroups) or `@channelusername`.
    pub chat_id: String,
    /// `MarkdownV2`, `HTML` or `Markdown`; plain text when unset.
    pub parse_mode: Option<String>,
    /// Don't show link previews.
    pub disable_web_page_preview: bool,
}

#[derive(Deserialize)]
struct ApiAnswer {
    ok: bool,
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<ApiParameters>,
}

#[derive(Deserialize)]
struct ApiParameters {
    #[serde(default)]
    retry_after: Option<u64>,
}

/// Telegram's limit on a message's text, in characters (UTF-16 units in fact; characters are
/// checked here, the API has the last word).
const MAX_TEXT: usize = 4096;

impl Telegram {
    /// A bot writing plain text to `chat_id` through the public API.
    pub fn new(token: impl Into<Secret>, chat_id: impl Into<String>) -> Self {
        Self {
            base_url: DEFAULT_TELEGRAM_API.to_owned(),
            token: token.into(),
            chat_id: chat_id.into(),
            parse_mode: None,
            disable_web_page_preview: false,
        }
    }

    /// Sends `text` (at most 4096 characters), retrying per the client's policy; a 429 waits
    /// the API's `retry_after` (capped by the policy's `max_backoff`).
    pub async fn send(&self, http: &HttpClient, text: &str) -> Result<Delivery, NotifyError> {
        let channel = Channel::Telegram;
        let token = &self.token;
        if token.is_empty()
            || !token
                .expose()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b':' || b == b'_' || b == b'-')
        {
            return Err(NotifyError::Config {
                channel,
                message: "the bot token is empty or has characters other than letters, digits, ':', '_' and '-'".into(),
            });
        }
        if self.chat_id.trim().is_empty() {
            return Err(NotifyError::Config {
                channel,
                message: "chat_id is empty".into(),
            });
        }
        if text.trim().is_empty() {
            return Err(NotifyError::Config {
                channel,
                message: "the message text is empty".into(),
            });
        }
        if text.chars().count() > MAX_TEXT {
            return Err(NotifyError::Config {
                channel,
                message: format!("the message text is longer than {MAX_TEXT} characters"),
            });
        }
        let base = self.base_url.trim_end_matches('/');
        let (_, host) = parse_url(channel, base)?;
        let (url, _) = parse_url(
            channel,
            &format!("{base}/bot{}/sendMessage", token.expose()),
        )?;
        let chat_id = match self.chat_id.trim().parse::<i64>() {
            Ok(n) => serde_json::Value::from(n),
            Err(_) => serde_json::Value::from(self.chat_id.trim()),
        };
        let mut body = serde_json::json!({
            "chat_id": chat_id,
            "text": text,
        });
        if let Some(mode) = &self.parse_mode {
            body["parse_mode"] = serde_json::Value::from(mode.as_str());
        }
        if self.disable_web_page_preview {
            // The Bot API's older flag and its replacement, so old proxies and servers agree.
            body["disable_web_page_preview"] = serde_json::Value::Bool(true);
            body["link_preview_options"] = serde_json::json!({ "is_disabled": true });
        }
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let secrets = http.secrets(&[token]);
        tracing::debug!(host, "sending Telegram message");
        with_retries(http.retry_policy(), channel, &host, |_| {
            let request = http
                .reqwest()
                .post(url.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
            let host = host.as_str();
            let secrets = secrets.as_slice();
            async move {
                let answer = match retry_transport(fetch(channel, host, request, secrets).await) {
                    Ok(a) => a,
                    Err(attempt) => return attempt,
                };
                let status = answer.status;
                let Ok(api) = serde_json::from_slice::<ApiAnswer>(&answer.body) else {
                    // Not the Bot API speaking (a proxy's error page, say).
                    let err = NotifyError::Status {
                        channel,
                        host: host.to_owned(),
                        status,
                        body: answer.shown_body(secrets),
                    };
                    return if status == 429 || (500..600).contains(&status) {
                        Attempt::Retry(err, answer.retry_after())
                    } else if (200..300).contains(&status) {
                        Attempt::Fail(NotifyError::Api {
                            channel,
                            host: host.to_owned(),
                            code: i64::from(status),
                            description: format!(
                                "the answer is not Bot API JSON: {}",
                                answer.shown_body(secrets)
                            ),
                        })
                    } else {
                        Attempt::Fail(err)
                    };
                };
                if api.ok && (200..300).contains(&status) {
                    return Attempt::Done(status);
                }
                let code = api.error_code.unwrap_or(i64::from(status));
                let err = NotifyError::Api {
                    channel,
                    host: host.to_owned(),
                    code,
                    description: scrub(
                        &cut(api.description.as_deref().unwrap_or("no description"), 200),
                        secrets,
                    ),
                };
                let retry_after = api
                    .parameters
                    .and_then(|p| p.retry_after)
                    .map(Duration::from_secs)
                    .or_else(|| answer.retry_after());
                if code == 429 || status == 429 || (500..600).contains(&status) {
                    Attempt::Retry(err, retry_after)
                } else {
                    Attempt::Fail(err)
                }
            }
        })
        .await
    }
}
