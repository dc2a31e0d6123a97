//! The enricher against fixture databases built by the crate's MaxMind DB writer.

mod common;

use std::sync::Arc;

use common::{Fixture, asn_writer, replace_atomically};
use dozor_enrich::testutil::{MmdbValue, MmdbWriter, asn_record, net};
use dozor_enrich::{DbKind, EnrichConfig, EnrichError, EnrichStats, Enricher};
use serde_json::json;

fn config(f: &Fixture) -> EnrichConfig {
    EnrichConfig {
        city_db: Some(f.city.clone()),
        asn_db: Some(f.asn.clone()),
        cache_size: 1024,
        ..Default::default()
    }
}

fn enricher(f: &Fixture) -> Enricher {
    Enricher::open(config(f)).unwrap()
}

#[test]
fn public_ipv4_gets_geo_and_as() {
    let f = Fixture::new();
    let e = enricher(&f);
    let mut ev = json!({"source": {"ip": "81.2.69.142", "port": 51000}});
    let s = e.enrich(&mut ev);
    assert_eq!(
        ev,
        json!({"source": {
            "ip": "81.2.69.142",
            "port": 51000,
            "geo": {
                "continent_code": "EU",
                "continent_name": "Europe",
                "country_iso_code": "GB",
                "country_name": "United Kingdom",
                "region_iso_code": "GB-ENG",
                "region_name": "England",
                "city_name": "London",
                "postal_code": "EC1A",
                "timezone": "Europe/London",
                "location": {"lat": 51.5142, "lon": -0.0931}
            },
            "as": {"number": 20712, "organization": {"name": "Andrews & Arnold Ltd"}}
        }})
    );
    assert_eq!(
        s,
        EnrichStats {
            addresses: 1,
            lookups: 1,
            geo_added: 1,
            as_added: 1,
            ..Default::default()
        }
    );
}

#[test]
fn public_ipv6_and_russian_names() {
    let f = Fixture::new();
    let e = Enricher::open(EnrichConfig {
        language: "ru".into(),
        ..config(&f)
    })
    .unwrap();
    let mut ev = json!({"destination": {"ip": "2a02:6b8::2:242"}});
    e.enrich(&mut ev);
    let d = &ev["destination"];
    assert_eq!(d["geo"]["country_iso_code"], "RU");
    assert_eq!(d["geo"]["country_name"], "Россия");
    assert_eq!(d["geo"]["city_name"], "Москва");
    assert_eq!(d["geo"]["region_iso_code"], "RU-MOW");
    assert_eq!(
        d["geo"]["location"],
        json!({"lat": 55.7522, "lon": 37.6156})
    );
    assert_eq!(
        d["as"],
        json!({"number": 13238, "organization": {"name": "YANDEX LLC"}})
    );

    // A name missing in the chosen language falls back to English.
    let mut ev = json!({"source": {"ip": "175.16.199.7"}});
    e.enrich(&mut ev);
    assert_eq!(ev["source"]["geo"]["country_name"], "China");
}

#[test]
fn ipv4_mapped_and_bracketed_forms_are_looked_up() {
    let f = Fixture::new();
    let e = enricher(&f);
    let mut ev = json!({
        "source": {"ip": "::ffff:81.2.69.142"},
        "destination": {"ip": "[2a02:6b8::1]"},
    });
    let s = e.enrich(&mut ev);
    assert_eq!(ev["source"]["geo"]["city_name"], "London");
    assert_eq!(ev["destination"]["geo"]["city_name"], "Moscow");
    assert_eq!(s.geo_added, 2);
}

#[test]
fn country_level_records_give_country_fields_only() {
    let f = Fixture::new();
    let e = enricher(&f);
    let mut ev = json!({"client": {"ip": "175.16.199.1"}});
    let s = e.enrich(&mut ev);
    assert_eq!(
        ev["client"]["geo"],
        json!({"continent_code": "AS", "continent_name": "Asia", "country_iso_code": "CN", "country_name": "China"})
    );
    assert!(ev["client"].get("as").is_none());
    assert_eq!((s.geo_added, s.as_added, s.not_found), (1, 0, 0));
}

#[test]
fn as_without_geo() {
    let f = Fixture::new();
    let e = enricher(&f);
    let mut ev = json!({"server": {"ip": "8.8.8.8"}});
    e.enrich(&mut ev);
    assert!(ev["server"].get("geo").is_none());
    assert_eq!(ev["server"]["as"]["number"], 15169);
}

#[test]
fn private_and_reserved_addresses_are_not_looked_up() {
    let f = Fixture::new();
    let private = [
        "10.1.2.3",
        "172.20.0.1",
        "192.168.0.10",
        "127.0.0.1",
        "169.254.10.1",
        "100.64.1.1",
        "0.0.0.0",
        "224.0.0.251",
        "255.255.255.255",
        "::1",
        "fe80::1%eth0",
        "fd00::1",
        "ff02::fb",
        "2001:db8::1",
        "::ffff:10.0.0.1",
    ];
    for tag in [false, true] {
        let e = Enricher::open(EnrichConfig {
            tag_private: tag,
            ..config(&f)
        })
        .unwrap();
        for ip in private {
            let mut ev = json!({"source": {"ip": ip}});
            let s = e.enrich(&mut ev);
            assert_eq!((s.addresses, s.non_public, s.lookups), (1, 1, 0), "{ip}");
            if tag {
                assert_eq!(ev["source"]["geo"], json!({"name": "private"}), "{ip}");
            } else {
                assert_eq!(ev, json!({"source": {"ip": ip}}), "{ip}");
            }
            assert!(ev["source"].get("as").is_none());
        }
        assert_eq!(e.cached_addresses(), 0);
    }
}

#[test]
fn public_address_missing_from_the_databases() {
    let f = Fixture::new();
    let e = enricher(&f);
    let mut ev = json!({"source": {"ip": "9.9.9.9"}, "destination": {"ip": "2606:4700::1111"}});
    let before = ev.clone();
    let s = e.enrich(&mut ev);
    assert_eq!(ev, before);
    assert_eq!((s.addresses, s.lookups, s.not_found), (2, 2, 2));
    // Misses are cached too.
    let s = e.enrich(&mut ev);
    assert_eq!((s.cache_hits, s.lookups, s.not_found), (2, 0, 2));
}

#[test]
fn malformed_values_are_skipped() {
    let f = Fixture::new();
    let e = enricher(&f);
    let mut ev = json!({
        "source": {"ip": "not-an-ip"},
        "destination": {"ip": 3_232_235_777u32},
        "client": {"ip": "81.2.69.142:443"},
        "server": {"ip": "-"},
        "host": {"ip": ["", null, "999.1.1.1", {"x": 1}]},
        "winlog": {"event_data": {"IpAddress": "-", "SourceIp": "1.2.3"}},
    });
    let before = ev.clone();
    let s = e.enrich(&mut ev);
    assert_eq!(ev, before);
    assert_eq!(s.invalid, 5, "{s:?}");
    assert_eq!(s.addresses, 0);

    // Objects of the wrong shape are left alone.
    for mut odd in [
        json!("81.2.69.142"),
        json!([{"source": {"ip": "81.2.69.142"}}]),
        json!({"source": "81.2.69.142"}),
        json!({"source": {"ip": "81.2.69.142", "geo": "London"}}),
        json!(null),
    ] {
        e.enrich(&mut odd);
    }
}

#[test]
fn several_ip_fields_in_one_event() {
    let f = Fixture::new();
    let e = enricher(&f);
    let mut ev = json!({
        "source": {"ip": "81.2.69.160"},
        "destination": {"ip": "2a02:6b8:0:1::feed"},
        "client": {"ip": "192.168.1.5"},
        "server": {"ip": "8.8.8.8"},
        "host": {"ip": ["10.0.0.5", "fe80::1", "175.16.199.9", "81.2.69.1"], "name": "ws1"},
        "related": {"ip": ["81.2.69.160"]},
    });
    let s = e.enrich(&mut ev);
    assert_eq!(ev["source"]["geo"]["country_iso_code"], "GB");
    assert_eq!(ev["source"]["as"]["number"], 20712);
    assert_eq!(ev["destination"]["geo"]["country_iso_code"], "RU");
    assert_eq!(ev["destination"]["as"]["number"], 13238);
    assert!(ev["client"].get("geo").is_none());
    assert_eq!(ev["server"]["as"]["number"], 15169);
    // host: first public address with a City record; no host.as in ECS.
    assert_eq!(ev["host"]["geo"]["country_iso_code"], "CN");
    assert!(ev["host"].get("as").is_none());
    assert_eq!(ev["host"]["name"], "ws1");
    assert_eq!(ev["related"], json!({"ip": ["81.2.69.160"]}));
    assert_eq!(
        s,
        EnrichStats {
            addresses: 7,
            non_public: 3,
            lookups: 4,
            geo_added: 3,
            as_added: 3,
            ..Default::default()
        }
    );
}

#[test]
fn windows_event_data_fields_are_used_when_ecs_has_no_ip() {
    let f = Fixture::new();
    let e = enricher(&f);
    // Sysmon network connection: SourceIp / DestinationIp.
    let mut ev = json!({"winlog": {"event_data": {
        "SourceIp": "10.0.0.7", "DestinationIp": "81.2.69.142", "DestinationPort": "443"
    }}});
    e.enrich(&mut ev);
    assert!(ev.get("source").is_none(), "private source: nothing to add");
    assert_eq!(ev["destination"]["geo"]["city_name"], "London");
    assert!(
        ev["destination"].get("ip").is_none(),
        "the ip is not copied"
    );

    // Security 4624: IpAddress.
    let mut ev = json!({"winlog": {"event_data": {"IpAddress": "::ffff:2a02:6b8::1"}}});
    let s = e.enrich(&mut ev);
    assert_eq!(s.invalid, 1);
    let mut ev = json!({"winlog": {"event_data": {"IpAddress": "2a02:6b8::1"}}});
    e.enrich(&mut ev);
    assert_eq!(ev["source"]["geo"]["country_iso_code"], "RU");

    // An ECS ip wins over the Windows field.
    let mut ev = json!({
        "source": {"ip": "81.2.69.142"},
        "winlog": {"event_data": {"SourceIp": "2a02:6b8::1", "IpAddress": "8.8.8.8"}}
    });
    let s = e.enrich(&mut ev);
    assert_eq!(ev["source"]["geo"]["country_iso_code"], "GB");
    assert_eq!(ev["source"]["as"]["number"], 20712);
    assert_eq!(s.addresses, 1);
}

#[test]
fn existing_geo_fields_are_kept_and_ours_overwrite() {
    let f = Fixture::new();
    let e = enricher(&f);
    let mut ev = json!({"source": {"ip": "81.2.69.142", "geo": {"name": "branch-office", "country_iso_code": "XX"}}});
    e.enrich(&mut ev);
    assert_eq!(ev["source"]["geo"]["name"], "branch-office");
    assert_eq!(ev["source"]["geo"]["country_iso_code"], "GB");
}

#[test]
fn cache_answers_repeated_addresses() {
    let f = Fixture::new();
    let e = enricher(&f);
    let mut total = EnrichStats::default();
    for _ in 0..10 {
        let mut ev = json!({"source": {"ip": "81.2.69.142"}, "destination": {"ip": "8.8.8.8"}});
        total += e.enrich(&mut ev);
        assert_eq!(ev["source"]["geo"]["city_name"], "London");
        assert_eq!(ev["destination"]["as"]["number"], 15169);
    }
    assert_eq!((total.lookups, total.cache_hits), (2, 18));
    assert_eq!(e.cached_addresses(), 2);

    let no_cache = Enricher::open(EnrichConfig {
        cache_size: 0,
        ..config(&f)
    })
    .unwrap();
    let mut total = EnrichStats::default();
    for _ in 0..10 {
        let mut ev = json!({"source": {"ip": "81.2.69.142"}});
        total += no_cache.enrich(&mut ev);
        assert_eq!(ev["source"]["geo"]["city_name"], "London");
    }
    assert_eq!((total.lookups, total.cache_hits), (10, 0));
    assert_eq!(no_cache.cached_addresses(), 0);

    // The cache stays bounded.
    let small = Enricher::open(EnrichConfig {
        cache_size: 64,
        ..config(&f)
    })
    .unwrap();
    for i in 0..5000u32 {
        let mut ev =
            json!({"source": {"ip": std::net::Ipv4Addr::from(0x0808_0000 + i).to_string()}});
        small.enrich(&mut ev);
    }
    assert!(
        small.cached_addresses() <= 64,
        "{}",
        small.cached_addresses()
    );
}

#[test]
fn shared_between_threads() {
    let f = Fixture::new();
    let e = Arc::new(enricher(&f));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let e = Arc::clone(&e);
            std::thread::spawn(move || {
                let mut total = EnrichStats::default();
                for i in 0..2000u32 {
                    let ip = if (i + t) % 2 == 0 {
                        "81.2.69.142"
                    } else {
                        "2a02:6b8::1"
                    };
                    let mut ev = json!({"source": {"ip": ip}});
                    total += e.enrich(&mut ev);
                    let want = if (i + t) % 2 == 0 { "GB" } else { "RU" };
                    assert_eq!(ev["source"]["geo"]["country_iso_code"], want);
                }
                total
            })
        })
        .collect();
    let mut total = EnrichStats::default();
    for h in handles {
        total += h.join().unwrap();
    }
    assert_eq!(total.addresses, 8000);
    assert_eq!(total.geo_added, 8000);
    assert!(total.lookups <= 8, "{total:?}");
}

#[test]
fn missing_and_corrupt_files_are_startup_errors_naming_the_path() {
    let f = Fixture::new();

    let missing = f.path("nope/GeoLite2-City.mmdb");
    let err = Enricher::open(EnrichConfig {
        city_db: Some(missing.clone()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            EnrichError::Io {
                kind: DbKind::City,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&missing.display().to_string()), "{msg}");
    assert!(msg.starts_with("cannot read city database"), "{msg}");

    let garbage = f.path("garbage.mmdb");
    std::fs::write(&garbage, b"this is not a MaxMind database at all").unwrap();
    let err = Enricher::open(EnrichConfig {
        asn_db: Some(garbage.clone()),
        ..Default::default()
    })
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            EnrichError::Invalid {
                kind: DbKind::Asn,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(msg.contains(&garbage.display().to_string()), "{msg}");
    assert!(msg.contains("is not a valid MaxMind DB file"), "{msg}");

    // A download cut short loses the metadata at the end of the file.
    let truncated = f.path("truncated.mmdb");
    let bytes = std::fs::read(&f.city).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = Enricher::open(EnrichConfig {
        city_db: Some(truncated.clone()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(err, EnrichError::Invalid { .. }), "{err:?}");
    assert!(err.to_string().contains("truncated.mmdb"));

    // The two files swapped.
    let err = Enricher::open(EnrichConfig {
        city_db: Some(f.asn.clone()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(err, EnrichError::WrongType { .. }), "{err:?}");
    assert!(err.to_string().contains("\"GeoLite2-ASN\""), "{err}");
    let err = Enricher::open(EnrichConfig {
        asn_db: Some(f.city.clone()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            EnrichError::WrongType {
                kind: DbKind::Asn,
                ..
            }
        ),
        "{err:?}"
    );
}

/// A file whose metadata and tree are fine but whose data section is damaged.
fn corrupt_data_section(f: &Fixture) -> std::path::PathBuf {
    let mut bytes = asn_writer().to_bytes().unwrap();
    let node_count = maxminddb::Reader::from_source(bytes.clone())
        .unwrap()
        .metadata()
        .node_count as usize;
    let data = node_count * 6 + 16; // 24-bit records: 6 bytes per node.
    // An extended type byte that names no type.
    bytes[data] = 0x00;
    bytes[data + 1] = 0xF0;
    let path = f.path("damaged-asn.mmdb");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn damaged_data_section_is_caught_by_verify_or_counted_per_lookup() {
    let f = Fixture::new();
    let path = corrupt_data_section(&f);
    let err = Enricher::open(EnrichConfig {
        asn_db: Some(path.clone()),
        verify: true,
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(err, EnrichError::Invalid { .. }), "{err:?}");
    assert!(err.to_string().contains("damaged-asn.mmdb"), "{err}");

    // Without verify it opens; the broken record is an error counted in the stats, not a panic.
    let e = Enricher::open(EnrichConfig {
        asn_db: Some(path),
        verify: false,
        ..Default::default()
    })
    .unwrap();
    let mut found_error = false;
    for ip in ["81.2.69.1", "2a02:6b8::1", "8.8.8.8"] {
        let mut ev = json!({"source": {"ip": ip}});
        let s = e.enrich(&mut ev);
        found_error |= s.lookup_errors == 1;
    }
    assert!(found_error);
}

#[test]
fn verify_accepts_good_files() {
    let f = Fixture::new();
    let e = Enricher::open(EnrichConfig {
        verify: true,
        ..config(&f)
    })
    .unwrap();
    let infos = e.databases();
    assert_eq!(infos.len(), 2);
    assert_eq!(infos[0].kind, DbKind::City);
    assert_eq!(infos[0].database_type, "GeoLite2-City");
    assert_eq!(infos[1].database_type, "GeoLite2-ASN");
    assert_eq!(infos[1].path, f.asn);
}

#[test]
fn reloads_when_a_file_is_replaced() {
    let f = Fixture::new();
    let e = enricher(&f);
    assert!(!e.reload_if_changed().unwrap());
    let mut ev = json!({"source": {"ip": "8.8.8.8"}});
    e.enrich(&mut ev);
    assert_eq!(ev["source"]["as"]["organization"]["name"], "GOOGLE");

    let mut w = asn_writer();
    w.insert(net("8.8.8.0/24"), asn_record(15169, "Google LLC (renamed)"));
    replace_atomically(&f.asn, &w.to_bytes().unwrap());
    assert!(e.reload_if_changed().unwrap());
    assert!(!e.reload_if_changed().unwrap());
    let mut ev = json!({"source": {"ip": "8.8.8.8"}});
    let s = e.enrich(&mut ev);
    assert_eq!(s.lookups, 1, "the cache starts empty after a reload");
    assert_eq!(
        ev["source"]["as"]["organization"]["name"],
        "Google LLC (renamed)"
    );

    // A bad replacement keeps the databases in use.
    replace_atomically(&f.asn, b"half a download");
    assert!(e.reload_if_changed().is_err());
    let mut ev = json!({"source": {"ip": "8.8.8.8"}});
    e.enrich(&mut ev);
    assert_eq!(
        ev["source"]["as"]["organization"]["name"],
        "Google LLC (renamed)"
    );
    // ... and a forced reload reports the same error.
    assert!(matches!(e.reload(), Err(EnrichError::Invalid { .. })));
}

#[test]
fn ipv4_only_database_ignores_ipv6_addresses() {
    let f = Fixture::new();
    let path = f.path("v4-city.mmdb");
    let mut w = MmdbWriter::new("GeoLite2-Country").ip_version(4);
    w.insert(net("81.2.69.0/24"), common::LONDON.to_value());
    w.write_to(&path).unwrap();
    let e = Enricher::open(EnrichConfig {
        city_db: Some(path),
        ..Default::default()
    })
    .unwrap();
    let mut ev = json!({"source": {"ip": "81.2.69.142"}, "destination": {"ip": "2a02:6b8::1"}});
    let s = e.enrich(&mut ev);
    assert_eq!(ev["source"]["geo"]["country_iso_code"], "GB");
    assert!(ev["destination"].get("geo").is_none());
    assert_eq!((s.not_found, s.lookup_errors), (1, 0));
}

#[test]
fn records_of_unexpected_shape_do_not_fail_the_event() {
    let f = Fixture::new();
    let path = f.path("odd-city.mmdb");
    let mut w = MmdbWriter::new("GeoLite2-City");
    // A record that is not a map, and one whose fields have the wrong types.
    w.insert(net("81.2.69.0/24"), MmdbValue::string("London"));
    w.insert(
        net("8.8.8.0/24"),
        MmdbValue::map([("country", MmdbValue::map([("iso_code", MmdbValue::U32(7))]))]),
    );
    w.write_to(&path).unwrap();
    let e = Enricher::open(EnrichConfig {
        city_db: Some(path),
        ..Default::default()
    })
    .unwrap();
    let mut ev = json!({"source": {"ip": "81.2.69.142"}, "destination": {"ip": "8.8.8.8"}});
    let before = ev.clone();
    let s = e.enrich(&mut ev);
    assert_eq!(ev, before);
    assert_eq!(s.lookup_errors, 2);
    assert_eq!(s.not_found, 2);
}

#[test]
fn no_databases_configured() {
    let e = Enricher::open(EnrichConfig::default()).unwrap();
    assert!(e.databases().is_empty());
    let mut ev = json!({"source": {"ip": "81.2.69.142"}});
    let s = e.enrich(&mut ev);
    assert_eq!(ev, json!({"source": {"ip": "81.2.69.142"}}));
    assert_eq!((s.addresses, s.lookups), (1, 0));
}

#[test]
fn config_deserializes_with_defaults() {
    let c: EnrichConfig =
        serde_json::from_value(json!({"city_db": "/var/lib/dozor/GeoLite2-City.mmdb"})).unwrap();
    assert_eq!(c.cache_size, 65_536);
    assert_eq!(c.language, "en");
    assert!(c.asn_db.is_none());
    assert!(serde_json::from_value::<EnrichConfig>(json!({"cty_db": "x"})).is_err());
}
