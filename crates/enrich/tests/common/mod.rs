//! Fixture databases for the enricher tests, built with the crate's test-support writer.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use dozor_enrich::testutil::{CityRecord, MmdbWriter, asn_record, net};

pub const LONDON: CityRecord<'static> = CityRecord {
    continent_code: Some("EU"),
    continent_names: &[("en", "Europe"), ("ru", "Европа")],
    country_iso_code: Some("GB"),
    country_names: &[("en", "United Kingdom"), ("ru", "Великобритания")],
    registered_country_iso_code: Some("GB"),
    subdivision_iso_code: Some("ENG"),
    subdivision_names: &[("en", "England"), ("ru", "Англия")],
    city_names: &[("en", "London"), ("ru", "Лондон")],
    postal_code: Some("EC1A"),
    location: Some((51.5142, -0.0931)),
    time_zone: Some("Europe/London"),
    in_eu: false,
};

pub const MOSCOW: CityRecord<'static> = CityRecord {
    continent_code: Some("EU"),
    continent_names: &[("en", "Europe"), ("ru", "Европа")],
    country_iso_code: Some("RU"),
    country_names: &[("en", "Russia"), ("ru", "Россия")],
    registered_country_iso_code: Some("RU"),
    subdivision_iso_code: Some("MOW"),
    subdivision_names: &[("en", "Moscow"), ("ru", "Москва")],
    city_names: &[("en", "Moscow"), ("ru", "Москва")],
    postal_code: None,
    location: Some((55.7522, 37.6156)),
    time_zone: Some("Europe/Moscow"),
    in_eu: false,
};

/// Only country-level data (as in a Country database, or a City database's coarse ranges).
pub const CHINA: CityRecord<'static> = CityRecord {
    continent_code: Some("AS"),
    continent_names: &[("en", "Asia")],
    country_iso_code: Some("CN"),
    country_names: &[("en", "China")],
    registered_country_iso_code: Some("CN"),
    subdivision_iso_code: None,
    subdivision_names: &[],
    city_names: &[],
    postal_code: None,
    location: None,
    time_zone: None,
    in_eu: false,
};

pub fn city_writer() -> MmdbWriter {
    let mut w = MmdbWriter::new("GeoLite2-City")
        .languages(&["en", "ru"])
        .pointers(true);
    w.insert(net("81.2.69.0/24"), LONDON.to_value());
    w.insert(net("2a02:6b8::/32"), MOSCOW.to_value());
    w.insert(net("175.16.199.0/24"), CHINA.to_value());
    w
}

pub fn asn_writer() -> MmdbWriter {
    let mut w = MmdbWriter::new("GeoLite2-ASN").record_size(24);
    w.insert(
        net("81.2.69.0/24"),
        asn_record(20712, "Andrews & Arnold Ltd"),
    );
    w.insert(net("2a02:6b8::/29"), asn_record(13238, "YANDEX LLC"));
    w.insert(net("8.8.8.0/24"), asn_record(15169, "GOOGLE"));
    w
}

/// A temporary directory with `city.mmdb` and `asn.mmdb`.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub city: PathBuf,
    pub asn: PathBuf,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let city = dir.path().join("GeoLite2-City.mmdb");
        let asn = dir.path().join("GeoLite2-ASN.mmdb");
        city_writer().write_to(&city).unwrap();
        asn_writer().write_to(&asn).unwrap();
        Fixture { dir, city, asn }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, as database updaters do.
pub fn replace_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
