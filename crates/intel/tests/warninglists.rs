//! MISP warninglists: loading, errors, and hits against the real lists in ../shared.

use std::path::PathBuf;

mod common;

use dozor_intel::{IntelError, WarninglistType, Warninglists};

fn lists_dir() -> PathBuf {
    common::shared_dir().join("intel/misp-warninglists/lists")
}

/// Every `lists/*/list.json`, as (file, text).
fn real_lists() -> Option<Vec<(String, Vec<u8>)>> {
    let dir = lists_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!(
            "skipped: {} is absent (set DOZOR_SHARED_DIR)",
            dir.display()
        );
        return None;
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .flatten()
        .map(|e| e.path().join("list.json"))
        .filter_map(|p| Some((p.display().to_string(), std::fs::read(&p).ok()?)))
        .collect();
    out.sort();
    Some(out)
}

fn load(lists: &[(String, Vec<u8>)]) -> (Warninglists, Vec<IntelError>) {
    Warninglists::load(lists.iter().map(|(o, t)| (o.as_str(), t.as_slice())))
}

#[test]
fn the_real_lists_load_and_hit_what_they_should() {
    let Some(files) = real_lists() else { return };
    let (wl, errors) = load(&files);
    assert_eq!(wl.len(), files.len());
    assert!(wl.len() >= 136, "{}", wl.len());
    for e in &errors {
        eprintln!("reported: {e}");
    }
    assert!(errors.len() < 5, "{errors:#?}");

    let hits = wl.hits("ip-dst", "8.8.8.8");
    assert!(
        hits.contains(&"List of known IPv4 public DNS resolvers"),
        "{hits:?}"
    );
    assert!(
        wl.hits("ip", "8.8.8.8")
            .contains(&"List of known IPv4 public DNS resolvers")
    );
    assert!(
        wl.hits("ip-dst|port", "8.8.8.8|53")
            .contains(&"List of known IPv4 public DNS resolvers")
    );
    assert!(
        wl.hits("domain|ip", "evil.example|8.8.8.8")
            .contains(&"List of known IPv4 public DNS resolvers")
    );

    let akamai = wl
        .lists()
        .iter()
        .find(|l| l.name.contains("Akamai"))
        .unwrap();
    assert_eq!(akamai.list_type, WarninglistType::Cidr);
    // 23.32.0.0/11 is one of Akamai's ranges.
    assert!(
        wl.hits("ip-src", "23.33.1.2")
            .contains(&akamai.name.as_str()),
        "{:?}",
        wl.hits("ip-src", "23.33.1.2")
    );

    let rfc1918 = wl.hits("ip-src", "10.1.2.3");
    assert!(
        rfc1918.iter().any(|n| n.contains("RFC 1918")),
        "{rfc1918:?}"
    );
    assert!(
        wl.hits("cidr", "10.1.0.0/16")
            .iter()
            .any(|n| n.contains("RFC 1918"))
    );
    assert!(
        !wl.hits("cidr", "8.0.0.0/7")
            .iter()
            .any(|n| n.contains("RFC 1918"))
    );

    // Top-domain lists: exact (string), by suffix (hostname), and a URL's host.
    let google = wl.hits("domain", "google.com");
    assert!(
        google.contains(&"Top 10K most-used sites from Tranco"),
        "{google:?}"
    );
    assert!(
        google.contains(&"Top 1,000 domains from Cloudflare Radar"),
        "{google:?}"
    );
    let www = wl.hits("hostname", "WWW.Google.com.");
    assert!(
        www.contains(&"Top 10K most-used sites from Tranco"),
        "{www:?}"
    );
    assert!(www.contains(&"List of known google domains"), "{www:?}");
    let url = wl.hits("url", "https://www.google.com/search?q=x");
    assert!(url.contains(&"List of known google domains"), "{url:?}");
    assert!(
        !url.contains(&"OSINT.DigitalSide.IT Warning List"),
        "that list applies to hostname and domain only"
    );

    let empty_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    assert!(
        wl.hits("sha256", empty_sha256)
            .iter()
            .any(|n| n.to_lowercase().contains("empty"))
    );
    assert!(
        !wl.hits("filename|sha256", &format!("x|{empty_sha256}"))
            .is_empty()
    );

    // substring and regex lists
    assert!(
        wl.hits("email-src", "someone@0-mail.com")
            .iter()
            .any(|n| n.to_lowercase().contains("disposable"))
    );
    assert!(
        wl.hits("email-dst", "ABUSE@corp.example")
            .iter()
            .any(|n| n.to_lowercase().contains("contact"))
    );
    assert!(
        wl.hits("email-dst", "ceo@corp.example")
            .iter()
            .all(|n| !n.to_lowercase().contains("contact"))
    );

    // A list never hits values of types it does not apply to.
    assert!(wl.hits("md5", "8.8.8.8").is_empty());
    assert!(
        wl.hits("ip-src", "192.0.2.200").is_empty()
            || !wl
                .hits("ip-src", "192.0.2.200")
                .iter()
                .any(|n| n.contains("DNS"))
    );
    assert!(
        wl.hits("domain", "surely-not-listed-4f1c9e.example.invalid")
            .is_empty()
    );
}

fn list(name: &str, kind: &str, attrs: &str, entries: &str) -> Vec<u8> {
    format!(
        r#"{{"name":"{name}","description":"d","version":1,"type":"{kind}","matching_attributes":{attrs},"list":{entries}}}"#
    )
    .into_bytes()
}

#[test]
fn a_bad_list_is_reported_by_its_origin_and_the_others_load() {
    let good = list("good", "hostname", r#"["domain"]"#, r#"[".Example.ORG."]"#);
    let bad_json = b"{not json".to_vec();
    let bad_type = list("t", "glob", "[]", "[]");
    let partly = list(
        "partly",
        "cidr",
        r#"["ip-src"]"#,
        r#"["192.0.2.0/24","300.1.1.1"]"#,
    );
    let bad_regex = list("re", "regex", "[]", r#"["/(unclosed/i", "/ok$/i"]"#);
    let (wl, errors) = Warninglists::load([
        ("good/list.json", good.as_slice()),
        ("broken/list.json", bad_json.as_slice()),
        ("type/list.json", bad_type.as_slice()),
        ("partly/list.json", partly.as_slice()),
        ("re/list.json", bad_regex.as_slice()),
    ]);
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 4, "{text:#?}");
    assert!(
        text[0].starts_with("warninglist broken/list.json: "),
        "{}",
        text[0]
    );
    assert!(
        text[1].starts_with("warninglist type/list.json: ") && text[1].contains("glob"),
        "{}",
        text[1]
    );
    assert!(
        text[2].contains("partly/list.json") && text[2].contains("`300.1.1.1`"),
        "{}",
        text[2]
    );
    assert!(
        text[3].contains("re/list.json") && text[3].contains("`/(unclosed/i`"),
        "{}",
        text[3]
    );
    assert_eq!(wl.len(), 3, "good, partly and re load");
    assert_eq!(wl.hits("domain", "a.b.example.org"), vec!["good"]);
    assert_eq!(wl.hits("domain", "example.org"), vec!["good"]);
    assert!(wl.hits("domain", "badexample.org").is_empty());
    assert_eq!(wl.hits("ip-src", "192.0.2.9"), vec!["partly"]);
    assert_eq!(
        wl.hits("text", "it is OK"),
        vec!["re"],
        "no matching_attributes: all types"
    );
}

#[test]
fn string_lists_match_exactly_and_dotted_entries_cover_subdomains() {
    let s = list(
        "s",
        "string",
        r#"["domain","url"]"#,
        r#"["Exact.example", ".cover.example"]"#,
    );
    let sub = list("sub", "substring", r#"["url"]"#, r#"["/wp-admin/"]"#);
    let (wl, errors) = Warninglists::load([("s", s.as_slice()), ("sub", sub.as_slice())]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(wl.hits("domain", "exact.example"), vec!["s"]);
    assert!(wl.hits("domain", "a.exact.example").is_empty());
    assert_eq!(wl.hits("domain", "a.b.cover.example"), vec!["s"]);
    assert_eq!(wl.hits("url", "http://x.cover.example/p"), vec!["s"]);
    assert_eq!(wl.hits("url", "http://site.test/WP-Admin/x"), vec!["sub"]);
    assert!(
        wl.hits("domain", "wp-admin.test").is_empty(),
        "sub applies to urls only"
    );
}
