//! TLS trust of the network sources: a custom CA, SPKI pinning, and the errors when neither
//! fits. The server is an in-test HTTPS server with a CA and certificate made by rcgen (MISP
//! itself can't run here; the MISP client talks to a minimal restSearch answer).

mod common;

use axum::Router;
use axum::routing::post;
use dozor_intel_sources::http::{PemSource, spki_sha256};
use dozor_intel_sources::misp::{AttributeQuery, MispClient};
use dozor_intel_sources::{HttpSettings, SourceError};
use serde_json::json;

async fn https_misp() -> (common::TestPki, String) {
    let pki = common::test_pki();
    let app = Router::new().route(
        "/attributes/restSearch",
        post(|| async {
            axum::Json(json!({"response": {"Attribute": [
                {"uuid": "5f000000-0000-4000-8000-000000000001", "type": "ip-dst",
                 "value": "203.0.113.7", "to_ids": true, "timestamp": "1700000000"}
            ]}}))
        }),
    );
    let addr = common::serve_tls(app, pki.server_config.clone()).await;
    (pki, format!("https://localhost:{}", addr.port()))
}

async fn sync(base: &str, settings: &HttpSettings) -> Result<usize, SourceError> {
    let client = MispClient::new(base, "key", settings)?;
    Ok(client
        .attributes(&AttributeQuery::default())
        .await?
        .iocs
        .len())
}

#[tokio::test]
async fn a_custom_ca_is_trusted() {
    let (pki, base) = https_misp().await;
    let settings = HttpSettings {
        ca_pem: Some(PemSource::Text(pki.ca_pem.clone())),
        ..HttpSettings::default()
    };
    assert_eq!(sync(&base, &settings).await.expect("sync over TLS"), 1);
}

#[tokio::test]
async fn an_unknown_ca_is_a_tls_error() {
    let (_pki, base) = https_misp().await;
    // The system roots do not know the test CA.
    let err = sync(&base, &HttpSettings::default())
        .await
        .expect_err("unknown issuer");
    assert!(matches!(err, SourceError::Tls { .. }), "{err:?}");

    // Nor does another CA.
    let other = common::test_pki();
    let settings = HttpSettings {
        ca_pem: Some(PemSource::Text(other.ca_pem)),
        ..HttpSettings::default()
    };
    let err = sync(&base, &settings).await.expect_err("wrong CA");
    match err {
        SourceError::Tls { reason, .. } => {
            assert!(reason.contains("invalid peer certificate"), "{reason}")
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_pinned_key_is_accepted_without_a_ca_and_a_wrong_pin_is_refused() {
    let (pki, base) = https_misp().await;
    let pin = spki_sha256(&pki.server_cert_der).expect("spki");
    let settings = HttpSettings {
        pins_sha256: vec![pin.clone()],
        ..HttpSettings::default()
    };
    assert_eq!(sync(&base, &settings).await.expect("pinned"), 1);

    // Pin and CA together: both checked.
    let settings = HttpSettings {
        pins_sha256: vec![pin],
        ca_pem: Some(PemSource::Text(pki.ca_pem.clone())),
        ..HttpSettings::default()
    };
    assert_eq!(sync(&base, &settings).await.expect("pinned + CA"), 1);

    let settings = HttpSettings {
        pins_sha256: vec!["00".repeat(32)],
        ca_pem: Some(PemSource::Text(pki.ca_pem)),
        ..HttpSettings::default()
    };
    match sync(&base, &settings).await.expect_err("wrong pin") {
        SourceError::Tls { reason, .. } => {
            assert!(reason.contains("matches no configured pin"), "{reason}");
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_trust_settings_are_reported() {
    let settings = HttpSettings {
        ca_pem: Some(PemSource::Text("not a certificate".into())),
        ..HttpSettings::default()
    };
    assert!(matches!(
        MispClient::new("https://localhost", "k", &settings),
        Err(SourceError::Config(_))
    ));
    let settings = HttpSettings {
        pins_sha256: vec!["abc".into()],
        ..HttpSettings::default()
    };
    assert!(matches!(
        MispClient::new("https://localhost", "k", &settings),
        Err(SourceError::Config(_))
    ));
}
