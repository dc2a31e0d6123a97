//! Mattermost (and Slack-compatible) incoming webhooks.

use reqwest::header::CONTENT_TYPE;

use crate::error::{Channel, NotifyError};
use crate::http::{Delivery, HttpClient, fetch, judge, parse_url, retry_transport, with_retries};
use crate::secret::Secret;

/// An incoming webhook. Its URL carries the hook's key, so it is kept as a [`Secret`] and only
/// its host appears in errors and logs.
#[derive(Debug, Clone)]
pub struct Mattermost {
    /// The incoming webhook URL (`https://chat.example.org/hooks/<key>`).
    pub url: Secret,
    /// Overrides the poster's name, where the server allows it.
    pub username: Option<String>,
    /// Overrides the channel, where the server allows it.
    pub channel: Option<String>,
    /// Overrides the poster's icon, where the server allows it.
    pub icon_url: Option<String>,
}

impl Mattermost {
    /// A hook posting with its own defaults for name and channel.
    pub fn new(url: impl Into<Secret>) -> Self {
        Self {
            url: url.into(),
            username: None,
            channel: None,
            icon_url: None,
        }
    }

    /// POSTs `{"text": text, "username"?, "channel"?, "icon_url"?}`, retrying per the client's
    /// policy.
    pub async fn send(&self, http: &HttpClient, text: &str) -> Result<Delivery, NotifyError> {
        let channel = Channel::Mattermost;
        let (url, host) = parse_url(channel, self.url.expose())?;
        if text.trim().is_empty() {
            return Err(NotifyError::Config {
                channel,
                message: "the message text is empty".into(),
            });
        }
        let mut body = serde_json::json!({ "text": text });
        if let Some(u) = &self.username {
            body["username"] = serde_json::Value::from(u.as_str());
        }
        if let Some(c) = &self.channel {
            body["channel"] = serde_json::Value::from(c.as_str());
        }
        if let Some(i) = &self.icon_url {
            body["icon_url"] = serde_json::Value::from(i.as_str());
        }
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let secrets = http.secrets(&[&self.url]);
        tracing::debug!(host, "sending Mattermost message");
        with_retries(http.retry_policy(), channel, &host, |_| {
            let request = http
                .reqwest()
                .post(url.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
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
