//! The test-support MaxMind DB writer, checked against the `maxminddb` reader.

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dozor_enrich::testutil::{CityRecord, MmdbValue, MmdbWriter, Rng, asn_record, net};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use maxminddb::{Reader, geoip2};

use common::MOSCOW;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn reader(w: &MmdbWriter) -> Reader<Vec<u8>> {
    let bytes = w.to_bytes().expect("write");
    let r = Reader::from_source(bytes).expect("open");
    r.verify().expect("verify");
    r
}

/// The record stored for `addr` (there must be one).
fn record<'de, T: serde::Deserialize<'de>>(r: &'de Reader<Vec<u8>>, addr: &str) -> T {
    r.lookup(ip(addr))
        .unwrap()
        .decode()
        .unwrap()
        .expect("a record")
}

fn lookup_u32(r: &Reader<Vec<u8>>, addr: IpAddr) -> Option<u32> {
    r.lookup(addr).unwrap().decode::<u32>().unwrap()
}

/// Every variant the writer offers.
fn variants() -> Vec<(u16, u16, bool)> {
    let mut v = Vec::new();
    for record_size in [24, 28, 32] {
        for ip_version in [4, 6] {
            for pointers in [false, true] {
                v.push((record_size, ip_version, pointers));
            }
        }
    }
    v
}

#[test]
fn metadata_round_trips() {
    let w = MmdbWriter::new("GeoLite2-City")
        .record_size(24)
        .languages(&["en", "ru"])
        .description(&[("en", "test db"), ("ru", "тестовая база")])
        .build_epoch(1_234_567_890);
    let r = reader(&w);
    let m = r.metadata();
    assert_eq!(m.database_type, "GeoLite2-City");
    assert_eq!(m.record_size, 24);
    assert_eq!(m.ip_version, 6);
    assert_eq!(m.binary_format_major_version, 2);
    assert_eq!(m.binary_format_minor_version, 0);
    assert_eq!(m.build_epoch, 1_234_567_890);
    assert_eq!(m.languages, ["en", "ru"]);
    assert_eq!(
        m.description,
        BTreeMap::from([
            ("en".to_owned(), "test db".to_owned()),
            ("ru".to_owned(), "тестовая база".to_owned())
        ])
    );
    // Empty tree: one root node whose records are both "no data".
    assert_eq!(m.node_count, 1);
    assert!(!r.lookup(ip("1.2.3.4")).unwrap().has_data());
}

#[derive(Debug, serde::Deserialize, PartialEq)]
struct AllTypes<'a> {
    s: &'a str,
    empty: &'a str,
    long: String,
    longer: String,
    longest: String,
    d: f64,
    f: f32,
    b: &'a [u8],
    u16_: u16,
    u32_: u32,
    u32_zero: u32,
    u64_: u64,
    u128_: u128,
    i32_pos: i32,
    i32_neg: i32,
    t: bool,
    f_: bool,
    arr: Vec<u16>,
    big_map: BTreeMap<String, u32>,
    nested: BTreeMap<String, BTreeMap<String, &'a str>>,
}

#[test]
fn every_data_type_round_trips() {
    // Sizes around the 29 / 285 / 65,821 boundaries of the control byte.
    let long = "x".repeat(80);
    let longer = "y".repeat(13_392);
    let longest = "z".repeat(70_000);
    let big_map: Vec<(String, MmdbValue)> = (0..300)
        .map(|i| (format!("key{i:03}"), MmdbValue::U32(i)))
        .collect();
    let value = MmdbValue::map([
        ("s", MmdbValue::string("Москва")),
        ("empty", MmdbValue::string("")),
        ("long", MmdbValue::string(&long)),
        ("longer", MmdbValue::string(&longer)),
        ("longest", MmdbValue::string(&longest)),
        ("d", MmdbValue::Double(-33.8591)),
        ("f", MmdbValue::Float(1.5)),
        ("b", MmdbValue::Bytes(vec![0, 1, 2, 255])),
        ("u16_", MmdbValue::U16(65_535)),
        ("u32_", MmdbValue::U32(0x0102_0304)),
        ("u32_zero", MmdbValue::U32(0)),
        ("u64_", MmdbValue::U64(u64::MAX - 1)),
        ("u128_", MmdbValue::U128(u128::MAX / 3)),
        ("i32_pos", MmdbValue::I32(1_000)),
        ("i32_neg", MmdbValue::I32(-123_456)),
        ("t", MmdbValue::Bool(true)),
        ("f_", MmdbValue::Bool(false)),
        (
            "arr",
            MmdbValue::Array((0..40).map(MmdbValue::U16).collect()),
        ),
        ("big_map", MmdbValue::Map(big_map)),
        (
            "nested",
            MmdbValue::map([(
                "names",
                MmdbValue::names(&[("en", "Moscow"), ("ru", "Москва")]),
            )]),
        ),
    ]);
    for (record_size, ip_version, pointers) in variants() {
        let mut w = MmdbWriter::new("Test")
            .record_size(record_size)
            .ip_version(ip_version)
            .pointers(pointers);
        w.insert(net("81.2.69.0/24"), value.clone());
        let r = reader(&w);
        let got: AllTypes = record(&r, "81.2.69.142");
        assert_eq!(got.s, "Москва");
        assert_eq!(got.empty, "");
        assert_eq!(got.long, long);
        assert_eq!(got.longer, longer);
        assert_eq!(got.longest, longest);
        assert_eq!(got.d, -33.8591);
        assert_eq!(got.f, 1.5);
        assert_eq!(got.b, [0, 1, 2, 255]);
        assert_eq!(got.u16_, 65_535);
        assert_eq!(got.u32_, 0x0102_0304);
        assert_eq!(got.u32_zero, 0);
        assert_eq!(got.u64_, u64::MAX - 1);
        assert_eq!(got.u128_, u128::MAX / 3);
        assert_eq!(got.i32_pos, 1_000);
        assert_eq!(got.i32_neg, -123_456);
        assert!(got.t);
        assert!(!got.f_);
        assert_eq!(got.arr, (0..40).collect::<Vec<u16>>());
        assert_eq!(got.big_map.len(), 300);
        assert_eq!(got.big_map["key299"], 299);
        assert_eq!(got.nested["names"]["ru"], "Москва");
    }
}

#[test]
fn pointers_shrink_repeated_strings() {
    let build = |pointers| {
        let mut w = MmdbWriter::new("GeoLite2-City").pointers(pointers);
        for i in 0..200u32 {
            let rec = CityRecord {
                continent_code: Some("EU"),
                continent_names: &[("en", "Europe"), ("ru", "Европа")],
                country_iso_code: Some("DE"),
                country_names: &[("en", "Germany"), ("ru", "Германия")],
                location: Some((f64::from(i), 10.0)),
                ..Default::default()
            };
            w.insert(
                IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x5000_0000 + (i << 8)), 24).unwrap()),
                rec.to_value(),
            );
        }
        w
    };
    let plain = build(false).to_bytes().unwrap();
    let shared = build(true).to_bytes().unwrap();
    assert!(
        shared.len() * 2 < plain.len(),
        "{} vs {}",
        shared.len(),
        plain.len()
    );
    let r = Reader::from_source(shared).unwrap();
    r.verify().unwrap();
    let city: geoip2::City = record(&r, "80.0.199.1");
    assert_eq!(city.country.names.russian, Some("Германия"));
    assert_eq!(city.location.latitude, Some(199.0));
}

#[test]
fn geolite2_layouts_decode_with_the_geoip2_types() {
    for (record_size, _, pointers) in variants() {
        let mut city = MmdbWriter::new("GeoLite2-City")
            .record_size(record_size)
            .pointers(pointers);
        city.insert(
            net("2a02:6b8::/32"),
            // The enricher's fixture has no postal code; this test reads one back.
            CityRecord {
                postal_code: Some("101000"),
                ..MOSCOW
            }
            .to_value(),
        );
        let r = reader(&city);
        let rec: geoip2::City = record(&r, "2a02:6b8::feed");
        assert_eq!(rec.city.names.russian, Some("Москва"));
        assert_eq!(rec.country.iso_code, Some("RU"));
        assert_eq!(rec.registered_country.iso_code, Some("RU"));
        assert_eq!(rec.continent.code, Some("EU"));
        assert_eq!(rec.subdivisions[0].iso_code, Some("MOW"));
        assert_eq!(rec.postal.code, Some("101000"));
        assert_eq!(rec.location.latitude, Some(55.7522));
        assert_eq!(rec.location.longitude, Some(37.6156));
        assert_eq!(rec.location.time_zone, Some("Europe/Moscow"));
        assert_eq!(rec.location.accuracy_radius, Some(200));

        let mut asn = MmdbWriter::new("GeoLite2-ASN")
            .record_size(record_size)
            .pointers(pointers);
        asn.insert(net("2a02:6b8::/29"), asn_record(13238, "YANDEX LLC"));
        let r = reader(&asn);
        let rec: geoip2::Asn = record(&r, "2a02:6b8::1");
        assert_eq!(rec.autonomous_system_number, Some(13238));
        assert_eq!(rec.autonomous_system_organization, Some("YANDEX LLC"));
        assert_eq!(
            r.lookup(ip("2a02:6b8::1")).unwrap().network().unwrap(),
            "2a02:6b8::/29".parse().unwrap()
        );
    }
}

#[test]
fn more_specific_networks_win_whatever_the_insert_order() {
    for reverse in [false, true] {
        let mut inserts = vec![
            (net("10.0.0.0/8"), 8),
            (net("10.1.0.0/16"), 16),
            (net("10.1.2.0/24"), 24),
            (net("10.1.2.3/32"), 32),
        ];
        if reverse {
            inserts.reverse();
        }
        let mut w = MmdbWriter::new("Test");
        for (n, v) in inserts {
            w.insert(n, MmdbValue::U32(v));
        }
        let r = reader(&w);
        assert_eq!(lookup_u32(&r, ip("10.200.0.1")), Some(8));
        assert_eq!(lookup_u32(&r, ip("10.1.200.1")), Some(16));
        assert_eq!(lookup_u32(&r, ip("10.1.2.200")), Some(24));
        assert_eq!(lookup_u32(&r, ip("10.1.2.3")), Some(32));
        assert_eq!(lookup_u32(&r, ip("11.0.0.0")), None);
        // The /24 around the /32 is stored as the subnets left over, as MaxMind's trees are.
        assert_eq!(
            r.lookup(ip("10.1.2.200")).unwrap().network().unwrap(),
            "10.1.2.128/25".parse().unwrap()
        );
    }
}

#[test]
fn ipv4_lives_at_96_zero_bits_with_mapped_and_6to4_aliases() {
    let mut w = MmdbWriter::new("Test");
    w.insert(net("81.2.69.0/24"), MmdbValue::U32(1));
    w.insert(net("2001:4860::/32"), MmdbValue::U32(2));
    let r = reader(&w);
    assert_eq!(lookup_u32(&r, ip("81.2.69.1")), Some(1));
    // The IPv4 subtree is ::/96 ...
    assert_eq!(lookup_u32(&r, ip("::81.2.69.1")), Some(1));
    // ... aliased from ::ffff:0:0/96 and 2002::/16.
    let mapped = IpAddr::V6(Ipv4Addr::new(81, 2, 69, 1).to_ipv6_mapped());
    assert_eq!(lookup_u32(&r, mapped), Some(1));
    assert_eq!(lookup_u32(&r, ip("2002:5102:4501::1")), Some(1));
    assert_eq!(lookup_u32(&r, ip("2002:5102:4601::1")), None);
    assert_eq!(lookup_u32(&r, ip("2001:4860:4860::8888")), Some(2));

    let no_alias = {
        let mut w = MmdbWriter::new("Test").alias_ipv4(false);
        w.insert(net("81.2.69.0/24"), MmdbValue::U32(1));
        reader(&w)
    };
    assert_eq!(lookup_u32(&no_alias, ip("81.2.69.1")), Some(1));
    assert_eq!(lookup_u32(&no_alias, mapped), None);
}

#[test]
fn ipv6_networks_are_refused_by_an_ipv4_database() {
    let mut w = MmdbWriter::new("Test").ip_version(4);
    w.insert(net("2001:db8::/32"), MmdbValue::U32(1));
    assert!(w.to_bytes().is_err());
    assert!(MmdbWriter::new("Test").record_size(20).to_bytes().is_err());
}

/// Many random, overlapping networks: every lookup must agree with a naive longest-prefix
/// match, for every record size and IP version.
#[test]
fn random_trees_agree_with_longest_prefix_match() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for (record_size, ip_version, pointers) in variants() {
        let mut networks: Vec<IpNet> = Vec::new();
        for _ in 0..1500 {
            let v4 = Ipv4Net::new(
                Ipv4Addr::from(rng.next_u64() as u32 | 0x0100_0000),
                8 + rng.below(25) as u8,
            )
            .unwrap()
            .trunc();
            networks.push(IpNet::V4(v4));
            if ip_version == 6 {
                // Keep clear of the aliased ranges (::/96's parents, ::ffff:0:0/96, 2002::/16).
                let hi = (0x2400 + rng.below(0x0800)) as u128;
                let addr = (hi << 112) | (u128::from(rng.next_u64()) << 48);
                let v6 = Ipv6Net::new(Ipv6Addr::from(addr), 16 + rng.below(49) as u8)
                    .unwrap()
                    .trunc();
                networks.push(IpNet::V6(v6));
            }
        }
        let mut w = MmdbWriter::new("Test")
            .record_size(record_size)
            .ip_version(ip_version)
            .pointers(pointers);
        for (i, n) in networks.iter().enumerate() {
            w.insert(*n, MmdbValue::U32(i as u32));
        }
        let r = reader(&w);

        let expected = |addr: IpAddr| -> Option<u32> {
            let mut best: Option<(u8, usize)> = None;
            for (i, n) in networks.iter().enumerate() {
                if n.contains(&addr) && best.is_none_or(|(len, _)| n.prefix_len() >= len) {
                    best = Some((n.prefix_len(), i));
                }
            }
            best.map(|(_, i)| i as u32)
        };
        for k in 0..3000 {
            // Half the probes inside a known network, half anywhere.
            let base = networks[rng.below(networks.len() as u64) as usize];
            let addr = match base {
                IpNet::V4(n) if k % 2 == 0 => {
                    let host = rng.next_u64() as u32 & !u32::from(n.netmask());
                    IpAddr::V4(Ipv4Addr::from(u32::from(n.network()) | host))
                }
                IpNet::V6(n) if k % 2 == 0 => {
                    let host = u128::from(rng.next_u64()) & !u128::from(n.netmask());
                    IpAddr::V6(Ipv6Addr::from(u128::from(n.network()) | host))
                }
                IpNet::V4(_) => IpAddr::V4(Ipv4Addr::from(rng.next_u64() as u32)),
                IpNet::V6(_) => {
                    let hi = (0x2400 + rng.below(0x0800)) as u128;
                    IpAddr::V6(Ipv6Addr::from((hi << 112) | u128::from(rng.next_u64())))
                }
            };
            assert_eq!(
                lookup_u32(&r, addr),
                expected(addr),
                "{addr} (record_size {record_size}, ip_version {ip_version}, pointers {pointers})"
            );
        }
    }
}
