//! Measures lookups per second on synthetic GeoLite2-style databases.
//!
//! `cargo run --release -p dozor-enrich --features test-util --example throughput [NETWORKS]`
//!
//! Builds a City database (NETWORKS IPv4 networks plus a quarter as many IPv6 ones, 5,000
//! distinct city records, strings shared by pointers, 28-bit records) and an ASN database of
//! the same networks, then times: the raw reader (lookup + decode of the full City record);
//! `Enricher::enrich` with the cache off (every address a database lookup); `enrich` with the
//! cache on over a pool of repeating addresses; and the latter from 2 threads.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Instant;

use dozor_enrich::testutil::{CityRecord, MmdbWriter, Rng, asn_record};
use dozor_enrich::{EnrichConfig, EnrichStats, Enricher};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde_json::json;

/// A public IPv4 address in 1.0.0.0–99.255.255.255 (avoids the private ranges).
fn public_v4(rng: &mut Rng) -> Ipv4Addr {
    let x = rng.next_u64() as u32;
    Ipv4Addr::from((1 + (x >> 24) % 99) << 24 | (x & 0x00FF_FFFF))
}

fn public_v6(rng: &mut Rng) -> Ipv6Addr {
    Ipv6Addr::from((0x2a00u128 << 112) | (u128::from(rng.next_u64()) << 48))
}

fn main() {
    let networks: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let city_path = dir.path().join("GeoLite2-City.mmdb");
    let asn_path = dir.path().join("GeoLite2-ASN.mmdb");

    let t = Instant::now();
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let names: Vec<String> = (0..5000).map(|i| format!("City number {i}")).collect();
    let mut city = MmdbWriter::new("GeoLite2-City").pointers(true);
    let mut asn = MmdbWriter::new("GeoLite2-ASN").pointers(true);
    for i in 0..networks + networks / 4 {
        let net = if i < networks {
            IpNet::V4(Ipv4Net::new(public_v4(&mut rng), 24).expect("prefix"))
        } else {
            IpNet::V6(Ipv6Net::new(public_v6(&mut rng), 48).expect("prefix"))
        };
        let n = i % names.len();
        let name = [("en", names[n].as_str()), ("ru", names[n].as_str())];
        let rec = CityRecord {
            continent_code: Some("EU"),
            continent_names: &[("en", "Europe"), ("ru", "Европа")],
            country_iso_code: Some("DE"),
            country_names: &[("en", "Germany"), ("ru", "Германия")],
            registered_country_iso_code: Some("DE"),
            subdivision_iso_code: Some("BE"),
            subdivision_names: &[("en", "Land Berlin"), ("ru", "Берлин")],
            city_names: &name,
            postal_code: Some("10115"),
            location: Some((52.52 + n as f64 / 1e4, 13.40)),
            time_zone: Some("Europe/Berlin"),
            in_eu: true,
        };
        city.insert(net, rec.to_value());
        asn.insert(
            net,
            asn_record(64_512 + (n as u32 % 1000), "Example Transit GmbH"),
        );
    }
    city.write_to(&city_path).expect("write city");
    asn.write_to(&asn_path).expect("write asn");
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    println!(
        "built {} networks in {:.1?}: city {} KiB, asn {} KiB",
        city.len(),
        t.elapsed(),
        size(&city_path) / 1024,
        size(&asn_path) / 1024
    );

    let config = |cache_size, verify| EnrichConfig {
        city_db: Some(city_path.clone()),
        asn_db: Some(asn_path.clone()),
        cache_size,
        verify,
        ..Default::default()
    };
    for verify in [false, true] {
        let t = Instant::now();
        Enricher::open(config(0, verify)).expect("open");
        println!("open (verify {verify}): {:.1?}", t.elapsed());
    }

    // Probe addresses: half inside the databases' networks, half mostly outside.
    let mut probe_rng = Rng(0xDEAD_BEEF_CAFE_F00D);
    let mut probes: Vec<String> = Vec::new();
    let mut insert_rng = Rng(0x1234_5678_9ABC_DEF1);
    for i in 0..200_000 {
        let ip: IpAddr = if i % 2 == 0 {
            IpAddr::V4(public_v4(&mut insert_rng))
        } else if i % 10 == 1 {
            IpAddr::V6(public_v6(&mut probe_rng))
        } else {
            IpAddr::V4(public_v4(&mut probe_rng))
        };
        probes.push(ip.to_string());
    }

    // 1. Raw reader: lookup + full City decode.
    let reader = maxminddb::Reader::open_readfile(&city_path).expect("reader");
    let addrs: Vec<IpAddr> = probes.iter().map(|p| p.parse().expect("ip")).collect();
    let t = Instant::now();
    let mut found = 0usize;
    for ip in &addrs {
        if let Ok(r) = reader.lookup(*ip)
            && let Ok(Some(_)) = r.decode::<maxminddb::geoip2::City>()
        {
            found += 1;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "maxminddb City lookup+decode: {:.0} lookups/s ({found} found of {})",
        addrs.len() as f64 / secs,
        addrs.len()
    );

    let run = |e: &Enricher, ips: &[String], rounds: usize| -> (EnrichStats, f64) {
        let mut total = EnrichStats::default();
        let t = Instant::now();
        for _ in 0..rounds {
            for pair in ips.chunks(2) {
                let mut ev = json!({
                    "source": {"ip": pair[0]},
                    "destination": {"ip": pair.get(1).unwrap_or(&pair[0])},
                });
                total += e.enrich(&mut ev);
            }
        }
        (total, t.elapsed().as_secs_f64())
    };

    // 2. Enricher, no cache: every address is a City + ASN lookup.
    let e = Enricher::open(config(0, false)).expect("open");
    let (s, secs) = run(&e, &probes, 1);
    println!(
        "enrich, cache off: {:.0} addresses/s ({} lookups, {} geo, {} as, {} not found)",
        s.addresses as f64 / secs,
        s.lookups,
        s.geo_added,
        s.as_added,
        s.not_found
    );

    // Building the event JSON is part of the loop above; measure it alone.
    let t = Instant::now();
    let mut n = 0usize;
    for pair in probes.chunks(2) {
        let ev = json!({"source": {"ip": pair[0]}, "destination": {"ip": pair[1]}});
        n += ev.as_object().map_or(0, |o| o.len());
    }
    println!(
        "  (building the test events alone: {:.0} addresses/s, {n})",
        probes.len() as f64 / t.elapsed().as_secs_f64()
    );

    // 3. Enricher with cache, 10,000 distinct addresses repeating.
    let pool: Vec<String> = probes[..10_000].to_vec();
    let e = Arc::new(Enricher::open(config(65_536, false)).expect("open"));
    run(&e, &pool, 1); // warm
    let (s, secs) = run(&e, &pool, 20);
    println!(
        "enrich, cache on (10k distinct addresses): {:.0} addresses/s ({} hits, {} lookups)",
        s.addresses as f64 / secs,
        s.cache_hits,
        s.lookups
    );

    // 4. The same from 2 threads.
    let t = Instant::now();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let e = Arc::clone(&e);
            let pool = pool.clone();
            std::thread::spawn(move || run(&e, &pool, 20).0)
        })
        .collect();
    let mut total = EnrichStats::default();
    for h in handles {
        total += h.join().expect("thread");
    }
    println!(
        "enrich, cache on, 2 threads: {:.0} addresses/s",
        total.addresses as f64 / t.elapsed().as_secs_f64()
    );
}
