//! The writers: a MISP feed that the feed reader (and so MISP) reads back, with sightings and
//! hashes.csv; a STIX 2.1 bundle that the STIX reader reads back.

use dozor_intel::{Ioc, IocKind, IocSource};
use dozor_intel_sources::SyncBatch;
use dozor_intel_sources::export::{
    ExportSighting, FeedEventSettings, misp_feed, stix_bundle, write_misp_feed,
};
use dozor_intel_sources::feed::MispFeed;
use dozor_intel_sources::stix::parse_bundle;

fn iocs() -> Vec<Ioc> {
    let mut out = Vec::new();
    for (kind, value) in [
        (IocKind::Ip, "198.51.100.7"),
        (IocKind::Cidr, "10.20.0.0/16"),
        (IocKind::Ip, "2001:db8::7"),
        (IocKind::Domain, "evil.example"),
        (IocKind::Url, "http://evil.example/it's"),
        (
            IocKind::Sha256,
            "b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68",
        ),
        (IocKind::Md5, "0749bae92ca336a02c83d126e04ec628"),
        (IocKind::Filename, "invoice.pdf.exe"),
        (IocKind::Email, "phish@evil.example"),
        (IocKind::RegistryKey, "HKLM\\Software\\Evil"),
        (IocKind::UserAgent, "EvilBot/1.0"),
        (IocKind::Ja3, "e7d705a3286e19ea42f587b344ee6865"),
    ] {
        let mut ioc = Ioc::new(kind, value).expect("valid");
        ioc.tags = vec!["tlp:amber".into(), "c2".into()];
        ioc.confidence = Some(80);
        ioc.first_seen = Some(1_700_000_000_000);
        ioc.last_seen = Some(1_700_000_500_000);
        ioc.expires = Some(1_800_000_000_000);
        ioc.sources = vec![IocSource {
            name: "manual".into(),
            object_ids: vec![],
        }];
        out.push(ioc);
    }
    out
}

#[tokio::test]
async fn a_written_feed_reads_back() {
    let iocs = iocs();
    let sightings = vec![ExportSighting {
        kind: IocKind::Domain,
        value: "evil.example".into(),
        timestamp: 1_700_001_000,
        source: "dozor".into(),
    }];
    let mut settings = FeedEventSettings::new("Dozor IOCs");
    settings.tags = vec!["tlp:amber".into()];
    let files = misp_feed(&iocs, &sightings, &settings);
    let dir = tempfile::tempdir().expect("tempdir");
    write_misp_feed(dir.path(), &files).expect("write");

    let (uuid, event) = &files.events[0];
    // The sighting is on the domain's attribute and makes it the newest.
    let attrs = event["Event"]["Attribute"].as_array().expect("attributes");
    let domain = attrs
        .iter()
        .find(|a| a["type"] == "domain")
        .expect("domain");
    assert_eq!(domain["Sighting"][0]["date_sighting"], "1700001000");
    assert_eq!(domain["Sighting"][0]["source"], "dozor");
    assert_eq!(files.manifest[uuid]["timestamp"], 1_700_001_000);
    // Stable ids: the same export again gives the same uuids.
    let again = misp_feed(&iocs, &sightings, &settings);
    assert_eq!(
        again.events[0].1["Event"]["Attribute"],
        event["Event"]["Attribute"]
    );

    let feed = MispFeed::dir(dir.path(), "roundtrip");
    let batch = feed.sync(None).await.expect("read back");
    assert!(batch.skipped.is_empty(), "{:#?}", batch.skipped);
    assert_eq!(batch.iocs.len(), iocs.len());
    for (written, read) in iocs.iter().zip(&batch.iocs) {
        assert_eq!((written.kind, &written.value), (read.kind, &read.value));
        assert_eq!(read.tags, vec!["tlp:amber", "c2"]);
        assert!(read.to_ids);
        assert_eq!(read.first_seen, written.first_seen);
        assert_eq!(read.last_seen, written.last_seen);
    }
    assert_eq!(batch.cursor.as_deref(), Some("1700001000"));

    let mut skipped = SyncBatch::default();
    let hashes = feed
        .hashes(&mut skipped)
        .await
        .expect("hashes")
        .expect("file");
    assert_eq!(hashes.len(), iocs.len());
    // md5("evil.example"), as MISP computes hashes.csv (python3: hashlib.md5).
    assert!(hashes.contains(&("96119eb3210daa472225fbad69fa9770".to_owned(), uuid.clone())));
    assert!(skipped.skipped.is_empty());
}

#[test]
fn a_written_bundle_reads_back() {
    let iocs = iocs();
    let (bundle, skipped) = stix_bundle(&iocs, "Dozor");
    // JA3 has no STIX object path.
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].object.starts_with("ja3:"));
    let batch = parse_bundle("export", bundle.to_string().as_bytes(), "roundtrip").expect("read");
    assert!(batch.skipped.is_empty(), "{:#?}", batch.skipped);
    let got: Vec<(IocKind, &str)> = batch
        .iocs
        .iter()
        .map(|i| (i.kind, i.value.as_str()))
        .collect();
    let want: Vec<(IocKind, &str)> = iocs
        .iter()
        .filter(|i| i.kind != IocKind::Ja3)
        .map(|i| (i.kind, i.value.as_str()))
        .collect();
    assert_eq!(got, want);
    let url = batch
        .iocs
        .iter()
        .find(|i| i.kind == IocKind::Url)
        .expect("url");
    assert_eq!(url.value, "http://evil.example/it's");
    assert_eq!(url.confidence, Some(80));
    assert_eq!(url.first_seen, Some(1_700_000_000_000));
    assert_eq!(url.expires, Some(1_800_000_000_000));
    assert_eq!(url.tags, vec!["c2", "tlp:amber"]);
}
