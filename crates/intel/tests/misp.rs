//! MISP attribute types: the mapping, composite values, unsupported types.

mod common;

use common::shared_dir;
use dozor_intel::{IntelError, Ioc, IocKind, misp_parts, split_misp_value, supported_misp_types};

#[test]
fn composite_types_split_into_their_parts() {
    let parts = |t: &str, v: &str| -> Vec<(IocKind, String)> {
        split_misp_value(t, v)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.to_owned()))
            .collect()
    };
    assert_eq!(
        parts("domain|ip", "evil.com|192.0.2.1"),
        vec![
            (IocKind::Domain, "evil.com".into()),
            (IocKind::Ip, "192.0.2.1".into())
        ]
    );
    assert_eq!(
        parts("filename|sha256", &format!("a.exe|{}", "a".repeat(64))),
        vec![
            (IocKind::Filename, "a.exe".into()),
            (IocKind::Sha256, "a".repeat(64))
        ]
    );
    assert_eq!(
        parts("ip-dst|port", "2001:db8::1|443"),
        vec![(IocKind::Ip, "2001:db8::1".into())]
    );
    assert_eq!(
        parts("regkey|value", "HKLM\\Run\\x|c:\\evil.exe"),
        vec![(IocKind::RegistryKey, "HKLM\\Run\\x".into())]
    );
    assert!(matches!(
        split_misp_value("domain|ip", "evil.com"),
        Err(IntelError::InvalidValue { reason, .. }) if reason.contains("two parts")
    ));
}

#[test]
fn misp_attributes_become_normalized_iocs_with_their_origin() {
    let iocs = Ioc::from_misp("domain|ip", "Evil.COM|192.0.2.1", true).unwrap();
    assert_eq!(iocs.len(), 2);
    assert_eq!(
        (iocs[0].kind, iocs[0].value.as_str()),
        (IocKind::Domain, "evil.com")
    );
    assert_eq!(
        (iocs[1].kind, iocs[1].value.as_str()),
        (IocKind::Ip, "192.0.2.1")
    );
    assert!(iocs.iter().all(|i| i.original == "Evil.COM|192.0.2.1"
        && i.misp_type.as_deref() == Some("domain|ip")
        && i.to_ids));
    let cidr = Ioc::from_misp("ip-src", "198.51.100.7/24", false).unwrap();
    assert_eq!(
        (cidr[0].kind, cidr[0].value.as_str()),
        (IocKind::Cidr, "198.51.100.0/24")
    );
    assert!(!cidr[0].to_ids);
    // A bad part fails the whole attribute, naming the bad value.
    let err = Ioc::from_misp("filename|md5", "a.exe|nothex", true).unwrap_err();
    assert!(err.to_string().contains("`nothex`"), "{err}");
}

#[test]
fn unsupported_types_are_errors_naming_the_type() {
    let err = Ioc::from_misp("btc", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT", true).unwrap_err();
    assert_eq!(
        err,
        IntelError::UnsupportedMispType {
            misp_type: "btc".into()
        }
    );
    assert_eq!(err.to_string(), "unsupported MISP attribute type `btc`");
}

/// Every type Dozor maps is one MISP defines (no typos), and every MISP type is either mapped
/// or reported as unsupported.
#[test]
fn the_mapping_agrees_with_misps_describe_types() {
    let path = shared_dir().join("fixtures/misp/describeTypes.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!(
            "skipped: {} is absent (set DOZOR_SHARED_DIR)",
            path.display()
        );
        return;
    };
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let types: Vec<&str> = doc["result"]["types"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert!(types.len() > 150);
    for t in supported_misp_types() {
        assert!(types.contains(&t), "{t} is not a MISP type");
    }
    let mut unsupported = 0;
    for t in &types {
        match misp_parts(t) {
            Ok(parts) => assert!(parts.iter().any(Option::is_some), "{t}"),
            Err(IntelError::UnsupportedMispType { misp_type }) => {
                assert_eq!(misp_type, *t);
                unsupported += 1;
            }
            Err(e) => panic!("{t}: {e}"),
        }
    }
    assert_eq!(types.len() - unsupported, supported_misp_types().count());
}
