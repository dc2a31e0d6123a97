//! The `notify.*` playbook modules over `dozor-notify`: signed webhooks, e-mail, Telegram and
//! Mattermost/Slack hooks. Channel settings and secrets come from the `[notify]` configuration
//! (or the environment); a step's arguments say where and what. A module makes one delivery
//! (`dozor-notify` retries transient HTTP failures within it; the step's `retries` add more).

use std::sync::Arc;

use async_trait::async_trait;
use dozor_notify::{
    Email, HttpClient, HttpOptions, Mattermost, Secret, Smtp, SmtpSecurity, Telegram, Webhook,
};
use dozor_playbook::{Catalog, Module, ModuleCtx, ModuleError, Registry};
use serde_json::{Value, json};

use crate::config::NotifyConfig;

/// The notification channels, set up once from `[notify]`.
pub fn notifier(config: &NotifyConfig) -> Arc<Notifier> {
    let http = HttpClient::new(&HttpOptions {
        ca_pem_file: config.ca_file.clone(),
        proxy: (!config.proxy.is_empty()).then(|| Secret::new(config.proxy.clone())),
        ..HttpOptions::default()
    })
    .map_err(|e| {
        tracing::error!(
            "notification HTTP client: {e}; webhook, Telegram and Mattermost steps will fail"
        )
    })
    .ok();
    Arc::new(Notifier {
        http,
        config: config.clone(),
    })
}

/// Registers the `notify.*` modules over `notifier`.
pub fn register(registry: &mut Registry, catalog: &Catalog, notifier: Arc<Notifier>) {
    for (name, channel) in [
        ("notify.webhook", Channel::Webhook),
        ("notify.email", Channel::Email),
        ("notify.telegram", Channel::Telegram),
        ("notify.mattermost", Channel::Mattermost),
    ] {
        if let Some(spec) = catalog.get(name) {
            registry.register(
                spec.clone(),
                Arc::new(NotifyModule {
                    notifier: notifier.clone(),
                    channel,
                }),
            );
        }
    }
}

pub struct Notifier {
    http: Option<HttpClient>,
    config: NotifyConfig,
}

#[derive(Clone, Copy)]
enum Channel {
    Webhook,
    Email,
    Telegram,
    Mattermost,
}

struct NotifyModule {
    notifier: Arc<Notifier>,
    channel: Channel,
}

fn text<'a>(args: &'a Value, key: &str) -> Option<&'a str> {
    args.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn required<'a>(args: &'a Value, key: &str) -> Result<&'a str, ModuleError> {
    text(args, key).ok_or_else(|| ModuleError::new(format!("{key} is empty")))
}

/// A list of addresses: a list, or one text with commas.
fn addresses(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

fn failed(e: dozor_notify::NotifyError) -> ModuleError {
    ModuleError {
        output: Some(json!({"status": e.http_status(), "attempts": e.attempts()})),
        message: e.to_string(),
    }
}

impl Notifier {
    fn http(&self) -> Result<&HttpClient, ModuleError> {
        self.http.as_ref().ok_or_else(|| {
            ModuleError::new(
                "the notification HTTP client could not be set up (see the server log)",
            )
        })
    }

    async fn webhook(&self, args: &Value) -> Result<Value, ModuleError> {
        let mut hook = Webhook::new(required(args, "url")?);
        // A step's own secret (from `secrets.*`) wins over the configured one.
        match text(args, "secret") {
            Some(s) => hook = hook.with_secret(s),
            None if !self.config.webhook_secret.is_empty() => {
                hook = hook.with_secret(self.config.webhook_secret.as_str())
            }
            None => {}
        }
        if let Some(headers) = args.get("headers").and_then(Value::as_object) {
            for (name, value) in headers {
                let value = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                hook = hook.with_header(name.clone(), value);
            }
        }
        let body = args.get("body").cloned().unwrap_or_else(|| json!({}));
        let d = hook.send(self.http()?, &body).await.map_err(failed)?;
        Ok(
            json!({"status": d.status, "attempts": d.attempts, "elapsed_ms": d.elapsed.as_millis() as u64}),
        )
    }

    async fn email(&self, args: &Value) -> Result<Value, ModuleError> {
        let c = &self.config;
        if c.smtp_server.is_empty() {
            return Err(ModuleError::new(
                "no SMTP relay is configured (notify.smtp_server / DOZOR_NOTIFY_SMTP_SERVER)",
            ));
        }
        let (host, port) = c
            .smtp_server
            .rsplit_once(':')
            .map(|(h, p)| (h.trim_matches(['[', ']']).to_owned(), p.parse::<u16>().ok()))
            .unwrap_or((c.smtp_server.clone(), None));
        let mut smtp = Smtp::new(host);
        smtp.port = port;
        smtp.security = match c.smtp_security.as_str() {
            "tls" => SmtpSecurity::Tls,
            "plain-insecure" => SmtpSecurity::PlainInsecure,
            _ => SmtpSecurity::StartTls,
        };
        if !c.smtp_username.is_empty() {
            smtp.username = Some(c.smtp_username.clone());
            smtp.password = Some(Secret::new(c.smtp_password.clone()));
        }
        smtp.ca_pem_file = c.ca_file.clone();
        let mut to = addresses(args.get("to"));
        to.extend(addresses(args.get("cc")));
        if to.is_empty() {
            return Err(ModuleError::new("to is empty"));
        }
        let from = text(args, "from")
            .map(str::to_owned)
            .or_else(|| (!c.smtp_from.is_empty()).then(|| c.smtp_from.clone()))
            .ok_or_else(|| {
                ModuleError::new("no sender: set notify.smtp_from or the step's from")
            })?;
        let d = smtp
            .send(&Email {
                from,
                to,
                subject: required(args, "subject")?.to_owned(),
                text: args
                    .get("body")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                html: None,
            })
            .await
            .map_err(failed)?;
        Ok(
            json!({"recipients": d.recipients, "server_answer": d.server_answer, "elapsed_ms": d.elapsed.as_millis() as u64}),
        )
    }

    async fn telegram(&self, args: &Value) -> Result<Value, ModuleError> {
        let c = &self.config;
        if c.telegram_token.is_empty() {
            return Err(ModuleError::new(
                "no bot token is configured (notify.telegram_token / DOZOR_NOTIFY_TELEGRAM_TOKEN)",
            ));
        }
        let chat_id = match args.get("chat_id") {
            Some(Value::Number(n)) => n.to_string(),
            _ => required(args, "chat_id")?.to_owned(),
        };
        let bot = Telegram {
            base_url: c.telegram_api_url.clone(),
            token: Secret::new(c.telegram_token.clone()),
            chat_id,
            parse_mode: text(args, "parse_mode").map(str::to_owned),
            disable_web_page_preview: false,
        };
        let d = bot
            .send(self.http()?, required(args, "text")?)
            .await
            .map_err(failed)?;
        Ok(
            json!({"status": d.status, "attempts": d.attempts, "elapsed_ms": d.elapsed.as_millis() as u64}),
        )
    }

    async fn mattermost(&self, args: &Value) -> Result<Value, ModuleError> {
        let hook = Mattermost {
            url: Secret::new(required(args, "url")?),
            username: text(args, "username").map(str::to_owned),
            channel: text(args, "channel").map(str::to_owned),
            icon_url: None,
        };
        let d = hook
            .send(self.http()?, required(args, "text")?)
            .await
            .map_err(failed)?;
        Ok(
            json!({"status": d.status, "attempts": d.attempts, "elapsed_ms": d.elapsed.as_millis() as u64}),
        )
    }
}

#[async_trait]
impl Module for NotifyModule {
    async fn run(&self, args: Value, _ctx: &ModuleCtx<'_>) -> Result<Value, ModuleError> {
        let n = &self.notifier;
        match self.channel {
            Channel::Webhook => n.webhook(&args).await,
            Channel::Email => n.email(&args).await,
            Channel::Telegram => n.telegram(&args).await,
            Channel::Mattermost => n.mattermost(&args).await,
        }
    }
}

impl Notifier {
    /// Tells the approvers (`response.approvers_*`) about a new approval request, with a link to
    /// the inbox. Each channel is tried; the failures are returned (for the log and the audit).
    pub async fn tell_approvers(
        &self,
        approvers: &crate::config::ResponseConfig,
        approval: &dozor_model::Approval,
        inbox: &str,
    ) -> Vec<String> {
        let target = approval
            .target
            .get("agent_id")
            .and_then(Value::as_str)
            .map(|a| format!(" on agent {a}"))
            .unwrap_or_default();
        let headline = format!("[Dozor] approval needed: {}{target}", approval.action);
        let details = format!(
            "{}\nAsked by {}; expires at {} (UTC ms {}).\nDecide: {inbox}",
            approval.reason,
            approval.requested_by,
            chrono::DateTime::from_timestamp_millis(approval.expires_at)
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default(),
            approval.expires_at
        );
        let mut failures = Vec::new();
        if !approvers.approvers_webhook.is_empty() {
            let args = json!({
                "url": approvers.approvers_webhook,
                "body": {
                    "event": "approval_requested",
                    "approval_id": approval.id,
                    "action": approval.action,
                    "target": approval.target,
                    "reason": approval.reason,
                    "requested_by": approval.requested_by,
                    "expires_at": approval.expires_at,
                    "link": inbox,
                },
            });
            if let Err(e) = self.webhook(&args).await {
                failures.push(format!("webhook: {}", e.message));
            }
        }
        if !approvers.approvers_email.is_empty() {
            let args =
                json!({"to": approvers.approvers_email, "subject": headline, "body": details});
            if let Err(e) = self.email(&args).await {
                failures.push(format!("e-mail: {}", e.message));
            }
        }
        if !approvers.approvers_telegram_chat.is_empty() {
            let args = json!({"chat_id": approvers.approvers_telegram_chat, "text": format!("{headline}\n{details}")});
            if let Err(e) = self.telegram(&args).await {
                failures.push(format!("Telegram: {}", e.message));
            }
        }
        failures
    }
}
