//! CSV and freetext lists, from bytes and over HTTP (an in-test server).

mod common;

use axum::Router;
use axum::routing::get;
use dozor_intel::IocKind;
use dozor_intel_sources::HttpSettings;
use dozor_intel_sources::list::{
    CsvSettings, ListSettings, ValueType, fetch, parse_csv, parse_freetext,
};

const URLHAUS_LIKE: &str = "\
# a list in the shape abuse.ch publishes
# id,dateadded,url,url_status
\"id\",\"dateadded\",\"url\",\"url_status\"
\"1\",\"2024-01-01 10:00:00\",\"http://Evil.example/a.exe\",\"online\"
\"2\",\"2024-01-01 10:00:00\",\"not a url at all\",\"online\"

\"3\",\"2024-01-01 10:00:00\"
\"4\",\"2024-01-02 10:00:00\",\"https://203.0.113.8:8443/x\",\"offline\"
";

#[test]
fn csv_with_a_fixed_kind_header_and_comments() {
    let mut settings = CsvSettings::new("urlhaus", 2, ValueType::Kind(IocKind::Url));
    settings.header_rows = 1;
    settings.list.tags = vec!["tlp:white".into()];
    settings.list.confidence = Some(70);
    let batch = parse_csv("urlhaus.csv", URLHAUS_LIKE.as_bytes(), &settings);
    let values: Vec<&str> = batch.iocs.iter().map(|i| i.value.as_str()).collect();
    assert_eq!(
        values,
        vec!["http://evil.example/a.exe", "https://203.0.113.8:8443/x"]
    );
    assert_eq!(batch.iocs[0].sources[0].object_ids, vec!["line 4"]);
    assert_eq!(batch.iocs[0].tags, vec!["tlp:white"]);
    assert_eq!(batch.iocs[0].confidence, Some(70));
    let skipped: Vec<(&str, &str)> = batch
        .skipped
        .iter()
        .map(|s| (s.object.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:#?}");
    assert_eq!(skipped[0].0, "line 5");
    assert!(skipped[0].1.contains("invalid url"), "{}", skipped[0].1);
    assert_eq!(skipped[1], ("line 7", "no column 3"));
}

#[test]
fn csv_with_a_type_column_and_another_delimiter() {
    let text = "type;value\nip-dst;198.51.100.1\ndomain|ip;evil.example|198.51.100.2\nsha256;beef\nmd5;0749BAE92CA336A02C83D126E04EC628\nfilename;Invoice.PDF.exe\ntext;hello\ncidr;10.1.0.0/16\n";
    let mut settings = CsvSettings::new("mixed", 1, ValueType::Column(0));
    settings.delimiter = b';';
    settings.header_rows = 1;
    let batch = parse_csv("mixed.csv", text.as_bytes(), &settings);
    let got: Vec<(IocKind, &str)> = batch
        .iocs
        .iter()
        .map(|i| (i.kind, i.value.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (IocKind::Ip, "198.51.100.1"),
            (IocKind::Domain, "evil.example"),
            (IocKind::Ip, "198.51.100.2"),
            (IocKind::Md5, "0749bae92ca336a02c83d126e04ec628"),
            (IocKind::Filename, "invoice.pdf.exe"),
            (IocKind::Cidr, "10.1.0.0/16"),
        ]
    );
    let objects: Vec<&str> = batch.skipped.iter().map(|s| s.object.as_str()).collect();
    assert_eq!(objects, vec!["line 4", "line 7"]);
    assert!(
        batch.skipped[1]
            .reason
            .contains("unsupported MISP attribute type `text`")
    );
}

#[test]
fn freetext_takes_whatever_parses() {
    let text = "\
# report excerpt
The dropper (invoice.exe, md5 0749bae92ca336a02c83d126e04ec628) calls hxxps://cdn[.]evil[.]example/p.php
and then 198.51.100.23:443 or 2001:db8::7; mail from phish[@]evil.example.
Nothing to see on this line.
";
    let batch = parse_freetext(text, &ListSettings::new("report"));
    let got: Vec<(IocKind, &str)> = batch
        .iocs
        .iter()
        .map(|i| (i.kind, i.value.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (IocKind::Filename, "invoice.exe"),
            (IocKind::Md5, "0749bae92ca336a02c83d126e04ec628"),
            (IocKind::Url, "https://cdn.evil.example/p.php"),
            (IocKind::Ip, "2001:db8::7"),
            (IocKind::Email, "phish@evil.example"),
        ]
    );
    // `198.51.100.23:443` is an address with a port, not an address: not taken.
    assert_eq!(batch.skipped.len(), 1);
    assert_eq!(batch.skipped[0].object, "line 4");
}

#[tokio::test]
async fn a_list_over_http() {
    let app = Router::new()
        .route(
            "/list.txt",
            get(|| async { "198.51.100.77\n# c\nevil.example\n" }),
        )
        .route(
            "/private.txt",
            get(|| async { (axum::http::StatusCode::UNAUTHORIZED, "login first") }),
        );
    let addr = common::serve(app).await;
    let bytes = fetch(&format!("http://{addr}/list.txt"), &HttpSettings::default())
        .await
        .expect("fetch");
    let batch = parse_freetext(&String::from_utf8_lossy(&bytes), &ListSettings::new("l"));
    assert_eq!(batch.iocs.len(), 2);
    let err = fetch(
        &format!("http://{addr}/private.txt"),
        &HttpSettings::default(),
    )
    .await
    .expect_err("401");
    assert!(err.to_string().contains("login first"), "{err}");
    let small = HttpSettings {
        max_body_bytes: 10,
        ..HttpSettings::default()
    };
    let err = fetch(&format!("http://{addr}/list.txt"), &small)
        .await
        .expect_err("too large");
    assert!(
        matches!(
            err,
            dozor_intel_sources::SourceError::TooLarge { limit: 10, .. }
        ),
        "{err:?}"
    );
    let err = fetch(&format!("http://{addr}/nothing"), &HttpSettings::default())
        .await
        .expect_err("404");
    assert!(err.to_string().contains("HTTP 404"), "{err}");
}
