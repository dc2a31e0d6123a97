//! Secrets never reach the logs: every channel runs (successes and failures) under a global
//! subscriber at TRACE for every target, `log` records of the libraries (reqwest, rustls)
//! included, and the captured text is searched for each secret.
//!
//! One test in its own binary, since the subscriber is process-wide.

mod common;

use std::io::Write;

use base64::Engine;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dozor_notify::{
    Email, HttpClient, HttpOptions, Mattermost, RetryPolicy, Secret, SmtpSecurity, Telegram,
    Webhook,
};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const TOKEN: &str = "987654321:AAEsecretTOKENvalue_x";
const HMAC: &str = "hmac-secret-value-77";
const HEADER: &str = "header-secret-value-55";
const HOOK_KEY: &str = "hookkeysecret0123";
const SMTP_PASSWORD: &str = "smtp-Secret-Pw-31";
const PROXY_PASSWORD: &str = "proxy-secret-pw-13";

#[tokio::test]
async fn no_secret_reaches_the_logs() {
    let capture = Capture::default();
    let sink = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .try_init()
        .expect("global subscriber");

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let retry = RetryPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(10),
        ..RetryPolicy::default()
    };
    let http = HttpClient::with_retry(&HttpOptions::default(), retry.clone()).expect("client");

    // A receiver for the successes: a tiny axum app answering Telegram-style JSON to all.
    let app = axum::Router::new().fallback(|| async { r#"{"ok":true,"result":{}}"# });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    for base in [
        format!("http://{addr}"),
        format!("http://127.0.0.1:{closed}"),
    ] {
        let _ = Webhook::new(format!("{base}/h"))
            .with_secret(HMAC)
            .with_header("Authorization", format!("Bearer {HEADER}"))
            .send(&http, &serde_json::json!({"a": 1}))
            .await;
        let mut tg = Telegram::new(TOKEN, "1");
        tg.base_url = base.clone();
        let _ = tg.send(&http, "hello").await;
        let _ = Mattermost::new(format!("{base}/hooks/{HOOK_KEY}"))
            .send(&http, "hello")
            .await;
    }
    let via_proxy = HttpClient::with_retry(
        &HttpOptions {
            proxy: Some(Secret::new(format!(
                "http://u:{PROXY_PASSWORD}@127.0.0.1:{closed}"
            ))),
            ..HttpOptions::default()
        },
        retry,
    )
    .expect("client");
    let mut tg = Telegram::new(TOKEN, "1");
    tg.base_url = format!("http://{addr}");
    let _ = tg.send(&via_proxy, "hello").await;

    // SMTP AUTH over STARTTLS, right and wrong password.
    let dir = tempfile::tempdir().expect("tempdir");
    let _server;
    match common::python() {
        Some(python) => {
            let pki = common::make_pki(dir.path());
            let server = common::SmtpServer::start(
                &python,
                dir.path(),
                "starttls",
                Some(&pki),
                Some(("dozor", SMTP_PASSWORD)),
            );
            for password in [SMTP_PASSWORD, "wrong-smtp-Secret-Pw-31"] {
                let mut smtp = server
                    .smtp(SmtpSecurity::StartTls)
                    .with_credentials("dozor", password);
                smtp.ca_pem_file = Some(pki.ca.clone());
                let _ = smtp
                    .send(&Email {
                        from: "dozor@example.org".into(),
                        to: vec!["soc@example.org".into()],
                        subject: "s".into(),
                        text: "t".into(),
                        html: None,
                    })
                    .await;
            }
            assert_eq!(server.received().len(), 1, "the right password delivered");
            _server = server;
        }
        None => eprintln!("SKIP (SMTP part): no python3 with aiosmtpd"),
    }

    let logs = String::from_utf8_lossy(&capture.0.lock().expect("capture")).into_owned();
    assert!(
        logs.contains("notification delivered"),
        "nothing captured?\n{logs}"
    );
    for secret in [
        TOKEN,
        "AAEsecretTOKEN",
        HMAC,
        HEADER,
        HOOK_KEY,
        SMTP_PASSWORD,
        PROXY_PASSWORD,
    ] {
        assert!(!logs.contains(secret), "{secret} in the logs:\n{logs}");
    }
    // SMTP AUTH PLAIN is base64 of "\0user\0password": look for that too.
    for password in [SMTP_PASSWORD, "wrong-smtp-Secret-Pw-31"] {
        let plain = base64::engine::general_purpose::STANDARD
            .encode(format!("\0dozor\0{password}").as_bytes());
        assert!(!logs.contains(&plain), "AUTH PLAIN in the logs");
    }
}
