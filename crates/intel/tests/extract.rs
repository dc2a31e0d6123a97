//! Observables from ECS documents and Sysmon-style flat events, and whole-event matching.

use dozor_event::{FlatEvent, NormalizedEvent};
use dozor_intel::{IocIndex, IocKind, Match, Observable, observables};

const MD5: &str = "44d88612fea8a8f36de82e1278abb02f";
const SHA1: &str = "3395856ce81f2b7382dee72602f798b642f14140";
const SHA256: &str = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";
const IMPHASH: &str = "f34d5f2d4577ed6d9ceec516c1f5a744";

fn all<E: dozor_event::EventFields + ?Sized>(e: &E) -> Vec<(&'static str, IocKind, String)> {
    let mut out = Vec::new();
    observables(e, &mut |o: Observable<'_>| {
        out.push((o.field, o.kind, o.value.to_owned()))
    });
    out
}

fn ecs_event() -> serde_json::Value {
    serde_json::json!({
        "@timestamp": "2026-04-17T05:24:53Z",
        "source": {"ip": "10.0.0.5", "port": 51515},
        "destination": {"ip": "192.0.2.7", "domain": "c2.evil.com"},
        "dns": {"question": {"name": "Beacon.Evil.com."}},
        "url": {"full": "https://198.51.100.9/gate.php", "original": "http://Dl.Bad.org/x.exe"},
        "file": {"name": "x.exe", "path": "C:\\Users\\a\\Downloads\\Payload.EXE",
                 "hash": {"md5": MD5, "sha256": SHA256}},
        "process": {"hash": {"sha1": SHA1}},
        "user_agent": {"original": "EvilBot/1.0"},
        "email": {"from": {"address": "Bad@Evil.com"}, "to": {"address": ["a@corp.example", "b@corp.example"]}},
        "tls": {"client": {"ja3": "e7d705a3286e19ea42f587b344ee6865"}},
        "registry": {"path": "HKLM\\Software\\Evil\\Run"},
        "host": {"ip": ["10.0.0.5", "fe80::1"]},
        "message": "192.0.2.7 evil.com is in a field nobody reads"
    })
}

#[test]
fn ecs_fields_yield_their_observables() {
    let got = all(&ecs_event());
    let has = |field, kind, value: &str| {
        assert!(
            got.contains(&(field, kind, value.to_owned())),
            "{field} {kind} {value} missing from {got:#?}"
        )
    };
    has("source.ip", IocKind::Ip, "10.0.0.5");
    has("destination.ip", IocKind::Ip, "192.0.2.7");
    has("destination.domain", IocKind::Domain, "c2.evil.com");
    has("dns.question.name", IocKind::Domain, "Beacon.Evil.com.");
    has("url.full", IocKind::Url, "https://198.51.100.9/gate.php");
    has("url.full", IocKind::Ip, "198.51.100.9");
    has("url.original", IocKind::Domain, "Dl.Bad.org");
    has("file.name", IocKind::Filename, "x.exe");
    has("file.path", IocKind::Filename, "Payload.EXE");
    has("file.hash.md5", IocKind::Md5, MD5);
    has("file.hash.sha256", IocKind::Sha256, SHA256);
    has("process.hash.sha1", IocKind::Sha1, SHA1);
    has("user_agent.original", IocKind::UserAgent, "EvilBot/1.0");
    has("email.from.address", IocKind::Email, "Bad@Evil.com");
    has("email.to.address", IocKind::Email, "b@corp.example");
    has(
        "tls.client.ja3",
        IocKind::Ja3,
        "e7d705a3286e19ea42f587b344ee6865",
    );
    has(
        "registry.path",
        IocKind::RegistryKey,
        "HKLM\\Software\\Evil\\Run",
    );
    has("host.ip", IocKind::Ip, "fe80::1");
    assert!(
        !got.iter()
            .any(|(f, ..)| *f == "message" || *f == "source.port")
    );
}

fn sysmon_event() -> FlatEvent {
    let mut e = FlatEvent::new();
    e.push("EventID", 3);
    e.push("Image", "C:\\Users\\Public\\Mimikatz.exe");
    e.push(
        "Hashes",
        format!(
            "SHA1={},MD5={},SHA256={},IMPHASH={}",
            SHA1.to_uppercase(),
            MD5,
            SHA256,
            IMPHASH
        ),
    );
    e.push("SourceIp", "10.0.0.5");
    e.push("DestinationIp", "::ffff:192.0.2.7");
    e.push("DestinationHostname", "c2.evil.com");
    e.push("QueryName", "-");
    e.push("TargetFilename", "C:\\Windows\\Temp\\dropper.dll");
    e.push(
        "TargetObject",
        "HKU\\S-1-5-21-1\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\Evil",
    );
    e
}

#[test]
fn sysmon_fields_yield_their_observables() {
    let got = all(&sysmon_event());
    let expect = [
        ("Image", IocKind::Filename, "Mimikatz.exe"),
        ("Hashes", IocKind::Sha1, &SHA1.to_uppercase()),
        ("Hashes", IocKind::Md5, MD5),
        ("Hashes", IocKind::Sha256, SHA256),
        ("Hashes", IocKind::Imphash, IMPHASH),
        ("SourceIp", IocKind::Ip, "10.0.0.5"),
        ("DestinationIp", IocKind::Ip, "::ffff:192.0.2.7"),
        ("DestinationHostname", IocKind::Domain, "c2.evil.com"),
        ("TargetFilename", IocKind::Filename, "dropper.dll"),
        (
            "TargetObject",
            IocKind::RegistryKey,
            "HKU\\S-1-5-21-1\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\Evil",
        ),
    ];
    let want: Vec<_> = expect
        .iter()
        .map(|(f, k, v)| (*f, *k, v.to_string()))
        .collect();
    assert_eq!(got, want, "`-` (Sysmon's empty QueryName) is skipped");
}

fn intel() -> IocIndex {
    let mut b = IocIndex::builder();
    let iocs: &[(IocKind, &str)] = &[
        (IocKind::Domain, "evil.com"),       // 0
        (IocKind::Cidr, "192.0.2.0/24"),     // 1
        (IocKind::Sha256, SHA256),           // 2
        (IocKind::Filename, "mimikatz.exe"), // 3
        (IocKind::Imphash, IMPHASH),         // 4
        (
            IocKind::RegistryKey,
            "HKEY_USERS\\S-1-5-21-1\\Software\\Microsoft\\Windows\\CurrentVersion\\Run",
        ), // 5
        (IocKind::Url, "dl.bad.org/x.exe"),  // 6
        (IocKind::Email, "bad@evil.com"),    // 7
        (IocKind::Ip, "10.0.0.99"),          // 8: not in the events
    ];
    for (id, (kind, value)) in iocs.iter().enumerate() {
        b.add(id as u32, *kind, value).unwrap();
    }
    b.build()
}

fn summary(matches: &[Match<'_>]) -> Vec<(&'static str, IocKind, String, Vec<u32>)> {
    matches
        .iter()
        .map(|m| (m.field, m.kind, m.value.to_owned(), m.ids.clone()))
        .collect()
}

#[test]
fn an_ecs_event_matches_its_iocs() {
    let doc = ecs_event();
    let got = summary(&intel().match_event(&doc));
    let want = vec![
        (
            "destination.ip",
            IocKind::Cidr,
            "192.0.2.7".to_owned(),
            vec![1],
        ),
        (
            "destination.domain",
            IocKind::Domain,
            "c2.evil.com".into(),
            vec![0],
        ),
        (
            "dns.question.name",
            IocKind::Domain,
            "Beacon.Evil.com.".into(),
            vec![0],
        ),
        (
            "url.original",
            IocKind::Url,
            "http://Dl.Bad.org/x.exe".into(),
            vec![6],
        ),
        ("file.hash.sha256", IocKind::Sha256, SHA256.into(), vec![2]),
        (
            "email.from.address",
            IocKind::Email,
            "Bad@Evil.com".into(),
            vec![7],
        ),
    ];
    let mut got_sorted = got.clone();
    got_sorted.sort();
    let mut want_sorted = want;
    want_sorted.sort();
    assert_eq!(got_sorted, want_sorted);
}

#[test]
fn a_sysmon_event_matches_its_iocs() {
    let event = sysmon_event();
    let got = summary(&intel().match_event(&event));
    assert_eq!(
        got,
        vec![
            ("Image", IocKind::Filename, "Mimikatz.exe".into(), vec![3]),
            ("Hashes", IocKind::Sha256, SHA256.into(), vec![2]),
            ("Hashes", IocKind::Imphash, IMPHASH.into(), vec![4]),
            (
                "DestinationIp",
                IocKind::Cidr,
                "::ffff:192.0.2.7".into(),
                vec![1]
            ),
            (
                "DestinationHostname",
                IocKind::Domain,
                "c2.evil.com".into(),
                vec![0]
            ),
            (
                "TargetObject",
                IocKind::RegistryKey,
                "HKU\\S-1-5-21-1\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\Evil".into(),
                vec![5]
            ),
        ]
    );
}

#[test]
fn a_normalized_windows_event_reports_a_value_once() {
    // NormalizedEvent shows winlog.event_data.DestinationIp also as DestinationIp.
    let doc = serde_json::json!({
        "destination": {"ip": "192.0.2.7"},
        "winlog": {"event_data": {"DestinationIp": "192.0.2.7"}}
    });
    let view = NormalizedEvent(&doc);
    let got = intel().match_event(&view);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].field, "destination.ip");
}

#[test]
fn no_iocs_no_matches() {
    assert!(
        IocIndex::builder()
            .build()
            .match_event(&ecs_event())
            .is_empty()
    );
    let quiet = serde_json::json!({"destination": {"ip": "203.0.113.1"}});
    assert!(intel().match_event(&quiet).is_empty());
}
