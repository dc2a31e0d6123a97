//! E-mail through a real SMTP server: aiosmtpd (Debian's python3-aiosmtpd) started by each test
//! on 127.0.0.1 with an ephemeral port, with STARTTLS, implicit TLS and AUTH where the test
//! needs them, and a CA and server certificate made with rcgen. Without python3 and aiosmtpd
//! the tests say why and pass without running.

mod common;

use common::{SmtpServer, make_pki, python};
use dozor_notify::{Email, NotifyError, Smtp, SmtpSecurity, SmtpStage};

fn alert_email() -> Email {
    Email {
        from: "Dozor <dozor@example.org>".into(),
        to: vec!["soc@example.org".into(), "oncall@example.net".into()],
        subject: "Alert: brute force on web-01".into(),
        text: "23 failed logins for root from 203.0.113.7 in 60 s.".into(),
        html: None,
    }
}

macro_rules! need_python {
    () => {
        match python() {
            Some(p) => p,
            None => {
                eprintln!("SKIP: no python3 with aiosmtpd (apt-get install python3-aiosmtpd)");
                return;
            }
        }
    };
}

#[tokio::test]
async fn plain_insecure_delivers_subject_body_and_recipients() {
    let python = need_python!();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = SmtpServer::start(&python, dir.path(), "plain", None, None);
    let mut email = alert_email();
    email.html = Some("<p>23 failed logins for <b>root</b></p>".into());
    let delivery = server
        .smtp(SmtpSecurity::PlainInsecure)
        .send(&email)
        .await
        .expect("delivered");
    assert_eq!(delivery.recipients, 2);
    assert!(delivery.server_answer.starts_with("250"), "{delivery:?}");
    let got = server.received();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m["mail_from"], "dozor@example.org");
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["soc@example.org", "oncall@example.net"])
    );
    assert_eq!(m["tls"], false);
    let data = m["data"].as_str().expect("data");
    assert!(
        data.contains("Subject: Alert: brute force on web-01"),
        "{data}"
    );
    assert!(
        data.contains("23 failed logins for root from 203.0.113.7"),
        "{data}"
    );
    assert!(data.contains("multipart/alternative"), "{data}");
    assert!(data.contains("text/html"), "{data}");

    // A subject trying to add a header (a template fed by attacker-controlled alert fields)
    // stays one encoded subject: no extra header, no extra recipient.
    let mut email = alert_email();
    email.subject = "hi\r\nBcc: evil@example.org\r\nX-Evil: 1".into();
    server
        .smtp(SmtpSecurity::PlainInsecure)
        .send(&email)
        .await
        .expect("delivered");
    let got = server.received();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[1]["rcpt_tos"],
        serde_json::json!(["soc@example.org", "oncall@example.net"])
    );
    let data = got[1]["data"].as_str().expect("data");
    assert!(
        !data
            .lines()
            .any(|l| l.starts_with("Bcc:") || l.starts_with("X-Evil:")),
        "{data}"
    );
}

#[tokio::test]
async fn starttls_with_auth_and_a_custom_ca_delivers_encrypted() {
    let python = need_python!();
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(dir.path());
    let server = SmtpServer::start(
        &python,
        dir.path(),
        "starttls",
        Some(&pki),
        Some(("dozor", "pa55-word")),
    );
    let mut smtp = server
        .smtp(SmtpSecurity::StartTls)
        .with_credentials("dozor", "pa55-word");
    smtp.ca_pem_file = Some(pki.ca.clone());
    let delivery = smtp.send(&alert_email()).await.expect("delivered");
    assert_eq!(delivery.recipients, 2);
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["tls"], true, "the message came over STARTTLS");
    assert_eq!(got[0]["login"], "dozor");
    assert!(
        got[0]["data"]
            .as_str()
            .is_some_and(|d| d.contains("Subject: Alert: brute force on web-01"))
    );
}

#[tokio::test]
async fn implicit_tls_delivers() {
    let python = need_python!();
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(dir.path());
    let server = SmtpServer::start(
        &python,
        dir.path(),
        "tls",
        Some(&pki),
        Some(("dozor", "pa55-word")),
    );
    let mut smtp = server
        .smtp(SmtpSecurity::Tls)
        .with_credentials("dozor", "pa55-word");
    smtp.ca_pem_file = Some(pki.ca.clone());
    smtp.send(&alert_email()).await.expect("delivered");
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["login"], "dozor");
}

#[tokio::test]
async fn starttls_mode_refuses_a_server_without_starttls() {
    let python = need_python!();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = SmtpServer::start(&python, dir.path(), "plain", None, None);
    let err = server
        .smtp(SmtpSecurity::StartTls)
        .send(&alert_email())
        .await
        .expect_err("no STARTTLS on offer must fail");
    eprintln!("{err}");
    match &err {
        NotifyError::Smtp { stage, host, .. } => {
            assert_eq!(*stage, SmtpStage::Tls, "{err}");
            assert_eq!(host, &format!("127.0.0.1:{}", server.port));
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains("STARTTLS"), "{err}");
    assert!(server.received().is_empty(), "nothing may be sent in clear");
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused() {
    let python = need_python!();
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(dir.path());
    let server = SmtpServer::start(&python, dir.path(), "starttls", Some(&pki), None);
    // No ca_pem_file: the test CA is not trusted.
    let err = server
        .smtp(SmtpSecurity::StartTls)
        .send(&alert_email())
        .await
        .expect_err("an untrusted certificate must fail");
    eprintln!("{err}");
    assert!(
        matches!(
            err,
            NotifyError::Smtp {
                stage: SmtpStage::Tls,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_wrong_password_is_an_auth_error_that_does_not_show_the_password() {
    let python = need_python!();
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(dir.path());
    let server = SmtpServer::start(
        &python,
        dir.path(),
        "starttls",
        Some(&pki),
        Some(("dozor", "pa55-word")),
    );
    let mut smtp = server
        .smtp(SmtpSecurity::StartTls)
        .with_credentials("dozor", "wrong-Pa55word-xyz");
    smtp.ca_pem_file = Some(pki.ca.clone());
    let err = smtp.send(&alert_email()).await.expect_err("bad password");
    eprintln!("{err}");
    assert!(
        matches!(
            err,
            NotifyError::Smtp {
                stage: SmtpStage::Auth,
                ..
            }
        ),
        "{err:?}"
    );
    let shown = format!("{err} {err:?} {smtp:?}");
    assert!(shown.contains("authentication failed"), "{shown}");
    assert!(!shown.contains("wrong-Pa55word-xyz"), "{shown}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn bad_input_is_a_config_error_before_any_connection() {
    // Port 9 on loopback: nothing listens, and nothing should be tried anyway.
    let mut smtp = Smtp::new("127.0.0.1");
    smtp.port = Some(9);
    let mut email = alert_email();
    email.to = vec![];
    assert!(matches!(
        smtp.send(&email).await,
        Err(NotifyError::Config { .. })
    ));
    let mut email = alert_email();
    email.to = vec!["not an address".into()];
    let err = smtp.send(&email).await.expect_err("bad address");
    assert!(err.to_string().contains("not an address"), "{err}");
    let mut email = alert_email();
    email.from = "\r\nBcc: evil@example.org".into();
    assert!(matches!(
        smtp.send(&email).await,
        Err(NotifyError::Config { .. })
    ));

    let mut plain = Smtp::new("127.0.0.1").with_credentials("u", "secret-pw");
    plain.security = SmtpSecurity::PlainInsecure;
    plain.port = Some(9);
    let err = plain
        .send(&alert_email())
        .await
        .expect_err("creds in clear");
    assert!(matches!(err, NotifyError::Config { .. }), "{err:?}");
    assert!(!err.to_string().contains("secret-pw"));

    let mut missing_ca = Smtp::new("127.0.0.1");
    missing_ca.port = Some(9);
    missing_ca.ca_pem_file = Some("/nonexistent/ca.pem".into());
    let err = missing_ca
        .send(&alert_email())
        .await
        .expect_err("no CA file");
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut smtp = Smtp::new("127.0.0.1");
    smtp.port = Some(port);
    smtp.security = SmtpSecurity::PlainInsecure;
    let err = smtp
        .send(&alert_email())
        .await
        .expect_err("nothing listens");
    eprintln!("{err}");
    assert!(
        matches!(
            err,
            NotifyError::Smtp {
                stage: SmtpStage::Connect,
                ..
            }
        ),
        "{err:?}"
    );
}
