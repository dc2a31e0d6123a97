//! The HTTP channels (webhook, Telegram, Mattermost) against real HTTP servers started by the
//! tests on 127.0.0.1 with ephemeral ports. Telegram itself cannot be reached from here (nor
//! should a test depend on it): a local server speaks its Bot API `/bot<token>/sendMessage`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use dozor_notify::webhook::{DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use dozor_notify::{
    HttpClient, HttpOptions, Mattermost, NotifyError, RetryPolicy, Secret, Telegram, Webhook,
    verify_signature,
};

// --- a scripted receiver -------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Recorded {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
    at: Instant,
}

#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: body.to_owned(),
    }
}

struct Shared {
    replies: Vec<Reply>,
    log: Mutex<Vec<Recorded>>,
}

/// An HTTP server answering the n-th request with `replies[n]` (the last one repeated),
/// recording every request.
struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    async fn start(replies: Vec<Reply>) -> Receiver {
        let shared = Arc::new(Shared {
            replies,
            log: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, shared, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Recorded> {
        self.shared.log.lock().expect("log").clone()
    }
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let n = {
        let mut log = shared.log.lock().expect("log");
        log.push(Recorded {
            path,
            headers,
            body,
            at: Instant::now(),
        });
        log.len() - 1
    };
    let r = shared.replies[n.min(shared.replies.len() - 1)].clone();
    let mut resp = (
        StatusCode::from_u16(r.status).expect("status"),
        r.body.clone(),
    )
        .into_response();
    for (k, v) in r.headers {
        resp.headers_mut().insert(
            HeaderName::from_static(k),
            HeaderValue::from_str(&v).expect("header"),
        );
    }
    resp
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_secs(5),
        deadline: Duration::from_secs(20),
    }
}

fn client(retry: RetryPolicy) -> HttpClient {
    HttpClient::with_retry(&HttpOptions::default(), retry).expect("client")
}

/// A loopback port where nothing listens.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

// --- webhook -------------------------------------------------------------------------------

#[tokio::test]
async fn webhook_is_signed_and_the_receiver_verifies_it() {
    let rx = Receiver::start(vec![reply(200, "ok")]).await;
    let secret = Secret::new("whsec-7c1e0f");
    let hook = Webhook::new(rx.url("/hooks/dozor"))
        .with_secret(secret.clone())
        .with_header("X-Api-Key", "k-123");
    let payload = serde_json::json!({"alert": {"rule": "ssh brute force", "host": "web-01"}});
    let d = hook
        .send(&client(fast_retries()), &payload)
        .await
        .expect("delivered");
    assert_eq!((d.status, d.attempts), (200, 1));
    let got = rx.requests();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.path, "/hooks/dozor");
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["x-api-key"], "k-123");
    assert!(!r.headers[&DELIVERY_HEADER.to_ascii_lowercase()].is_empty());
    let ts = &r.headers[&TIMESTAMP_HEADER.to_ascii_lowercase()];
    let sig = &r.headers[&SIGNATURE_HEADER.to_ascii_lowercase()];
    assert!(sig.starts_with("sha256="), "{sig}");
    assert!(verify_signature(&secret, ts, &r.body, sig));
    assert!(!verify_signature(&Secret::new("other"), ts, &r.body, sig));
    let received: serde_json::Value = serde_json::from_slice(&r.body).expect("json body");
    assert_eq!(received, payload);
    // The timestamp is now, in unix seconds.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let ts: u64 = ts.parse().expect("numeric timestamp");
    assert!(now.abs_diff(ts) < 60);
}

#[tokio::test]
async fn webhook_retries_500_then_succeeds_with_one_delivery_id() {
    let rx = Receiver::start(vec![
        reply(500, "boom"),
        reply(502, "bad gateway"),
        reply(204, ""),
    ])
    .await;
    let secret = Secret::new("s");
    let hook = Webhook::new(rx.url("/h")).with_secret(secret.clone());
    let d = hook
        .send(&client(fast_retries()), &serde_json::json!({"n": 1}))
        .await
        .expect("delivered on the third attempt");
    assert_eq!((d.status, d.attempts), (204, 3));
    let got = rx.requests();
    assert_eq!(got.len(), 3);
    let id = &got[0].headers["x-dozor-delivery"];
    for r in &got {
        assert_eq!(&r.headers["x-dozor-delivery"], id, "same id on every retry");
        assert!(verify_signature(
            &secret,
            &r.headers["x-dozor-timestamp"],
            &r.body,
            &r.headers["x-dozor-signature"]
        ));
    }
    // Backoff: 20 ms then 40 ms at least.
    assert!(got[1].at - got[0].at >= Duration::from_millis(20));
    assert!(got[2].at - got[1].at >= Duration::from_millis(40));
}

#[tokio::test]
async fn webhook_does_not_retry_a_400() {
    let rx = Receiver::start(vec![
        reply(400, "field 'alert' is required"),
        reply(200, ""),
    ])
    .await;
    let err = Webhook::new(rx.url("/h"))
        .send(&client(fast_retries()), &serde_json::json!({}))
        .await
        .expect_err("400 is final");
    eprintln!("{err}");
    assert_eq!(rx.requests().len(), 1);
    assert_eq!(err.http_status(), Some(400));
    assert_eq!(err.attempts(), 1);
    let text = err.to_string();
    assert!(text.contains("webhook"), "{text}");
    assert!(text.contains(&rx.addr.to_string()), "{text}");
    assert!(text.contains("HTTP 400"), "{text}");
    assert!(text.contains("field 'alert' is required"), "{text}");
}

#[tokio::test]
async fn webhook_waits_for_retry_after() {
    let mut busy = reply(429, "slow down");
    busy.headers.push(("retry-after", "1".into()));
    let rx = Receiver::start(vec![busy, reply(200, "ok")]).await;
    let d = Webhook::new(rx.url("/h"))
        .send(&client(fast_retries()), &serde_json::json!({}))
        .await
        .expect("delivered after the wait");
    assert_eq!(d.attempts, 2);
    let got = rx.requests();
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(950), "waited only {gap:?}");
}

#[tokio::test]
async fn retry_after_is_capped_by_max_backoff() {
    let mut busy = reply(503, "maintenance");
    busy.headers.push(("retry-after", "3600".into()));
    let rx = Receiver::start(vec![busy, reply(200, "ok")]).await;
    let policy = RetryPolicy {
        max_backoff: Duration::from_millis(200),
        ..fast_retries()
    };
    let started = Instant::now();
    let d = Webhook::new(rx.url("/h"))
        .send(&client(policy), &serde_json::json!({}))
        .await
        .expect("delivered");
    assert_eq!(d.attempts, 2);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn retries_stop_at_max_attempts() {
    let rx = Receiver::start(vec![reply(503, "down")]).await;
    let err = Webhook::new(rx.url("/h"))
        .send(&client(fast_retries()), &serde_json::json!({}))
        .await
        .expect_err("always 503");
    eprintln!("{err}");
    assert_eq!(rx.requests().len(), 4);
    assert_eq!(err.attempts(), 4);
    assert_eq!(err.http_status(), Some(503));
    assert!(matches!(err, NotifyError::GaveUp { .. }));
}

#[tokio::test]
async fn the_total_deadline_bounds_retries() {
    let rx = Receiver::start(vec![reply(500, "down")]).await;
    let policy = RetryPolicy {
        max_attempts: 100,
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_millis(200),
        deadline: Duration::from_millis(700),
    };
    let started = Instant::now();
    let err = Webhook::new(rx.url("/h"))
        .send(&client(policy), &serde_json::json!({}))
        .await
        .expect_err("deadline");
    let elapsed = started.elapsed();
    // 100 attempts 200 ms apart would take 20 s: the deadline stops it after a few (how many
    // depends on the machine's load; the bound is loose for a busy CI box).
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    let n = rx.requests().len() as u32;
    assert!((1..=4).contains(&n), "{n} attempts");
    assert_eq!(err.attempts(), n);
}

#[tokio::test]
async fn connection_errors_are_retried_and_reported_with_the_host() {
    let port = closed_port();
    let err = Webhook::new(format!("http://127.0.0.1:{port}/h?token=q-secret-1"))
        .send(&client(fast_retries()), &serde_json::json!({}))
        .await
        .expect_err("nothing listens");
    eprintln!("{err}");
    assert_eq!(err.attempts(), 4);
    let text = format!("{err} {err:?}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(
        !text.contains("q-secret-1"),
        "the URL must not leak: {text}"
    );
    match err {
        NotifyError::GaveUp { last, .. } => {
            assert!(matches!(*last, NotifyError::Transport { .. }), "{last:?}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn webhook_secrets_stay_out_of_debug_output() {
    let hook = Webhook::new("http://127.0.0.1:1/h")
        .with_secret("hmac-top-secret")
        .with_header("Authorization", "Bearer tok-top-secret");
    let shown = format!("{hook:?}");
    assert!(!shown.contains("top-secret"), "{shown}");
}

#[tokio::test]
async fn bad_webhook_input_is_a_config_error() {
    let http = client(fast_retries());
    for url in [
        "",
        "not a url",
        "ftp://example.org/x",
        "http://",
        "mailto:a@b",
    ] {
        let err = Webhook::new(url)
            .send(&http, &serde_json::json!({}))
            .await
            .expect_err("bad url");
        assert!(matches!(err, NotifyError::Config { .. }), "{url}: {err:?}");
    }
    let err = Webhook::new("http://127.0.0.1:9/h")
        .with_header("bad header\n", "v")
        .send(&http, &serde_json::json!({}))
        .await
        .expect_err("bad header");
    assert!(matches!(err, NotifyError::Config { .. }), "{err:?}");
    let err = Webhook::new("http://127.0.0.1:9/h")
        .with_header("X-Ok", "line\r\nX-Injected: 1")
        .send(&http, &serde_json::json!({}))
        .await
        .expect_err("header injection");
    assert!(matches!(err, NotifyError::Config { .. }), "{err:?}");
    for reserved in ["Content-Type", "X-Dozor-Signature", "host"] {
        let err = Webhook::new("http://127.0.0.1:9/h")
            .with_header(reserved, "x")
            .send(&http, &serde_json::json!({}))
            .await
            .expect_err("reserved header");
        assert!(matches!(err, NotifyError::Config { .. }), "{err:?}");
    }
    let err = Webhook::new("http://127.0.0.1:9/h")
        .with_secret("")
        .send(&http, &serde_json::json!({}))
        .await
        .expect_err("empty secret");
    assert!(matches!(err, NotifyError::Config { .. }), "{err:?}");
}

// --- Telegram ------------------------------------------------------------------------------

const TOKEN: &str = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0";

fn telegram(rx: &Receiver) -> Telegram {
    let mut tg = Telegram::new(TOKEN, "-1001234567890");
    tg.base_url = rx.url("");
    tg
}

#[tokio::test]
async fn telegram_send_message_speaks_the_bot_api() {
    let rx = Receiver::start(vec![reply(
        200,
        r#"{"ok":true,"result":{"message_id":42,"chat":{"id":-1001234567890},"text":"x"}}"#,
    )])
    .await;
    let mut tg = telegram(&rx);
    tg.parse_mode = Some("HTML".into());
    tg.disable_web_page_preview = true;
    let d = tg
        .send(
            &client(fast_retries()),
            "<b>Alert</b>: brute force on web-01",
        )
        .await
        .expect("sent");
    assert_eq!((d.status, d.attempts), (200, 1));
    let got = rx.requests();
    assert_eq!(got[0].path, format!("/bot{TOKEN}/sendMessage"));
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).expect("json");
    assert_eq!(body["chat_id"], -1001234567890i64);
    assert_eq!(body["text"], "<b>Alert</b>: brute force on web-01");
    assert_eq!(body["parse_mode"], "HTML");
    assert_eq!(body["disable_web_page_preview"], true);
    assert!(!format!("{tg:?}").contains("AAHfiqks"), "token in Debug");
}

#[tokio::test]
async fn telegram_429_waits_retry_after_then_sends() {
    let rx = Receiver::start(vec![
        reply(
            429,
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1","parameters":{"retry_after":1}}"#,
        ),
        reply(200, r#"{"ok":true,"result":{"message_id":43}}"#),
    ])
    .await;
    let mut tg = telegram(&rx);
    tg.chat_id = "@dozor_alerts".into();
    let d = tg
        .send(&client(fast_retries()), "hello")
        .await
        .expect("sent after the wait");
    assert_eq!(d.attempts, 2);
    let got = rx.requests();
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(950), "waited only {gap:?}");
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).expect("json");
    assert_eq!(body["chat_id"], "@dozor_alerts");
}

#[tokio::test]
async fn telegram_ok_false_reports_the_description() {
    let rx = Receiver::start(vec![reply(
        400,
        r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#,
    )])
    .await;
    let err = telegram(&rx)
        .send(&client(fast_retries()), "hello")
        .await
        .expect_err("chat not found");
    eprintln!("{err}");
    assert_eq!(rx.requests().len(), 1, "a 400 is not retried");
    match &err {
        NotifyError::Api {
            code, description, ..
        } => {
            assert_eq!(*code, 400);
            assert_eq!(description, "Bad Request: chat not found");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("telegram"));
    assert!(err.to_string().contains("chat not found"));
}

#[tokio::test]
async fn telegram_ok_false_with_http_200_is_an_error() {
    let rx = Receiver::start(vec![reply(
        200,
        r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#,
    )])
    .await;
    let err = telegram(&rx)
        .send(&client(fast_retries()), "hello")
        .await
        .expect_err("ok:false");
    assert!(matches!(err, NotifyError::Api { code: 403, .. }), "{err:?}");
}

#[tokio::test]
async fn the_telegram_token_never_appears_in_errors() {
    // A connection error: reqwest's error text names the URL, whose path holds the token.
    let mut tg = Telegram::new(TOKEN, "1");
    tg.base_url = format!("http://127.0.0.1:{}", closed_port());
    let err = tg
        .send(&client(fast_retries()), "hello")
        .await
        .expect_err("nothing listens");
    let text = format!("{err} | {err:?} | {:?}", std::error::Error::source(&err));
    eprintln!("{text}");
    // What reqwest itself says about the same request: the URL, token included. That is
    // what the crate must scrub.
    let raw = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("raw client")
        .post(format!("{}/bot{TOKEN}/sendMessage", tg.base_url))
        .send()
        .await
        .expect_err("nothing listens");
    assert!(
        raw.to_string().contains(TOKEN),
        "reqwest shows the URL: {raw}"
    );
    assert!(!text.contains(TOKEN), "{text}");
    assert!(!text.contains("AAHfiqks"), "{text}");
    assert!(text.contains("127.0.0.1"), "{text}");

    // A proxy whose error page echoes the request line.
    let rx = Receiver::start(vec![reply(
        502,
        &format!("upstream failed for POST /bot{TOKEN}/sendMessage"),
    )])
    .await;
    let err = telegram(&rx)
        .send(&client(RetryPolicy::no_retry()), "hello")
        .await
        .expect_err("502");
    let text = format!("{err} | {err:?}");
    eprintln!("{text}");
    assert!(!text.contains("AAHfiqks"), "{text}");
    assert!(text.contains("[redacted]"), "{text}");
}

#[tokio::test]
async fn telegram_rejects_bad_input_without_sending() {
    let rx = Receiver::start(vec![reply(200, r#"{"ok":true}"#)]).await;
    let http = client(fast_retries());
    let mut tg = telegram(&rx);
    tg.token = Secret::new("123/../../evil?x=1");
    let err = tg.send(&http, "hi").await.expect_err("bad token");
    assert!(!err.to_string().contains("evil"), "{err}");
    let tg = telegram(&rx);
    assert!(tg.send(&http, "").await.is_err());
    assert!(tg.send(&http, &"x".repeat(5000)).await.is_err());
    let mut tg = telegram(&rx);
    tg.chat_id = " ".into();
    assert!(tg.send(&http, "hi").await.is_err());
    assert!(rx.requests().is_empty());
}

// --- Mattermost ----------------------------------------------------------------------------

#[tokio::test]
async fn mattermost_posts_text_username_and_channel() {
    let rx = Receiver::start(vec![reply(200, "ok")]).await;
    let mut mm = Mattermost::new(rx.url("/hooks/xk7p3secretkey"));
    mm.username = Some("dozor".into());
    mm.channel = Some("town-square".into());
    let d = mm
        .send(&client(fast_retries()), "Alert: brute force on web-01")
        .await
        .expect("posted");
    assert_eq!((d.status, d.attempts), (200, 1));
    let got = rx.requests();
    assert_eq!(got[0].path, "/hooks/xk7p3secretkey");
    assert_eq!(got[0].headers["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).expect("json");
    assert_eq!(
        body,
        serde_json::json!({"text": "Alert: brute force on web-01", "username": "dozor", "channel": "town-square"})
    );
}

#[tokio::test]
async fn mattermost_errors_name_the_host_not_the_hook_key() {
    let rx = Receiver::start(vec![reply(404, "Unable to find the webhook")]).await;
    let mm = Mattermost::new(rx.url("/hooks/xk7p3secretkey"));
    let err = mm
        .send(&client(fast_retries()), "hi")
        .await
        .expect_err("404");
    let text = format!("{err} {err:?} {mm:?}");
    eprintln!("{err}");
    assert_eq!(rx.requests().len(), 1);
    assert!(text.contains("mattermost"), "{text}");
    assert!(text.contains("HTTP 404"), "{text}");
    assert!(text.contains("Unable to find the webhook"), "{text}");
    assert!(!text.contains("xk7p3secretkey"), "{text}");
}

// --- HTTPS with an on-prem CA --------------------------------------------------------------

mod common;

/// A minimal HTTPS server (rustls with ring): answers every request `200 ok` and counts them.
async fn https_server(pki: &common::Pki) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(pki.cert_der.clone())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key_der.clone())),
    )
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                // Read the head, then Content-Length bytes of body.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let Ok(n) = tls.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (addr, count)
}

#[tokio::test]
async fn https_trusts_the_configured_ca_and_nothing_unknown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = common::make_pki(dir.path());
    let (addr, count) = https_server(&pki).await;
    let url = format!("https://127.0.0.1:{}/hooks/dozor", addr.port());

    let with_ca = HttpClient::with_retry(
        &HttpOptions {
            ca_pem_file: Some(pki.ca.clone()),
            ..HttpOptions::default()
        },
        RetryPolicy::no_retry(),
    )
    .expect("client with the CA");
    let d = Webhook::new(&url)
        .with_secret("s")
        .send(&with_ca, &serde_json::json!({"tls": true}))
        .await
        .expect("delivered over TLS");
    assert_eq!(d.status, 200);
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);

    let without = client(RetryPolicy::no_retry());
    let err = Webhook::new(&url)
        .send(&without, &serde_json::json!({}))
        .await
        .expect_err("an unknown CA must be refused");
    eprintln!("{err}");
    assert!(matches!(err, NotifyError::Transport { .. }), "{err:?}");
    assert!(err.to_string().contains("certificate"), "{err}");
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);

    let err = HttpClient::new(&HttpOptions {
        ca_pem_file: Some(dir.path().join("missing.pem")),
        ..HttpOptions::default()
    })
    .expect_err("missing CA file");
    assert!(matches!(err, NotifyError::Config { .. }), "{err:?}");
    std::fs::write(dir.path().join("junk.pem"), "not a certificate").expect("write");
    let err = HttpClient::new(&HttpOptions {
        ca_pem_file: Some(dir.path().join("junk.pem")),
        ..HttpOptions::default()
    })
    .expect_err("junk CA file");
    assert!(matches!(err, NotifyError::Config { .. }), "{err:?}");
}

#[tokio::test]
async fn requests_go_through_the_configured_proxy_and_its_password_stays_hidden() {
    // The "proxy" is a recording HTTP server: a plain-HTTP request through a proxy is sent to
    // the proxy with the absolute URL as its target.
    let proxy = Receiver::start(vec![reply(200, "ok")]).await;
    let http = HttpClient::with_retry(
        &HttpOptions {
            proxy: Some(Secret::new(format!(
                "http://dozor:proxy-pw-91@{}",
                proxy.addr
            ))),
            ..HttpOptions::default()
        },
        RetryPolicy::no_retry(),
    )
    .expect("client");
    // The target's port is closed: only the proxy can answer.
    let target = format!("http://127.0.0.1:{}/hooks/x", closed_port());
    let d = Webhook::new(&target)
        .send(&http, &serde_json::json!({}))
        .await
        .expect("delivered through the proxy");
    assert_eq!(d.status, 200);
    let got = proxy.requests();
    assert_eq!(got.len(), 1);
    assert!(got[0].headers.contains_key("proxy-authorization"));
    assert!(!format!("{http:?}").contains("proxy-pw-91"));

    // A proxy that is down: the error names the target host, never the proxy password.
    let http = HttpClient::with_retry(
        &HttpOptions {
            proxy: Some(Secret::new(format!(
                "http://dozor:proxy-pw-91@127.0.0.1:{}",
                closed_port()
            ))),
            ..HttpOptions::default()
        },
        RetryPolicy::no_retry(),
    )
    .expect("client");
    let err = Webhook::new(&target)
        .send(&http, &serde_json::json!({}))
        .await
        .expect_err("proxy down");
    let text = format!("{err} {err:?}");
    eprintln!("{text}");
    assert!(!text.contains("proxy-pw-91"), "{text}");
}
