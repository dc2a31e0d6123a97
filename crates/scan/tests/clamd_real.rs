//! Against a real clamd (Debian `clamav-daemon`), started by the test on a private socket with
//! a signature database the test writes (no system service, no system database, no network).
//!
//! Skipped (with a printed reason) only when the `clamd` binary is absent. Set `DOZOR_TEST_CLAMD`
//! to use a clamd binary elsewhere.
#![cfg(unix)]

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dozor_scan::clamd::{ClamdAddress, ClamdClient, ClamdError};
use dozor_scan::hashes::{DigestSet, Digests, HashAlgo, HashList, HashLists};
use dozor_scan::testing::{TestClamd, eicar, find_clamd, hex};

/// clamd's StreamMaxLength in the test config.
const STREAM_MAX: usize = 1 << 20;

struct Samples {
    eicar: PathBuf,
    hsb: PathBuf,
    ndb: PathBuf,
    clean: PathBuf,
    big: PathBuf,
    hsb_sha256: String,
    ndb_marker: String,
}

fn write_samples_and_database(dir: &Path) -> Samples {
    let db = dir.join("db");
    let samples = dir.join("samples");
    fs::create_dir_all(&db).unwrap();
    fs::create_dir_all(&samples).unwrap();
    let nonce = format!(
        "{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );

    // EICAR: an MD5 hash signature (`md5:size:name`) computed here.
    let eicar_bytes = eicar();
    let eicar_md5 = Digests::of_bytes(&eicar_bytes, DigestSet::ALL).md5.unwrap();
    fs::write(
        db.join("dozor-test.hdb"),
        format!(
            "{}:{}:Dozor.Test.Eicar\n",
            hex(&eicar_md5),
            eicar_bytes.len()
        ),
    )
    .unwrap();
    let eicar_path = samples.join("eicar.com");
    fs::write(&eicar_path, &eicar_bytes).unwrap();

    // A unique file matched by a SHA-256 hash signature (`sha256:size:name`).
    let hsb_content = format!("dozor hsb sample {nonce}\n").repeat(50);
    let hsb_digests = Digests::of_bytes(hsb_content.as_bytes(), DigestSet::SHA256_ONLY);
    fs::write(
        db.join("dozor-test.hsb"),
        format!(
            "{}:{}:Dozor.Test.Hsb\n",
            hsb_digests.sha256_hex(),
            hsb_content.len()
        ),
    )
    .unwrap();
    let hsb_path = samples.join("hsb-sample.txt");
    fs::write(&hsb_path, &hsb_content).unwrap();

    // A body (hex) signature for a marker anywhere in any file type.
    let marker = "dozor-ndb-test-marker-7f3a9c";
    fs::write(
        db.join("dozor-test.ndb"),
        format!("Dozor.Test.Ndb:0:*:{}\n", hex(marker.as_bytes())),
    )
    .unwrap();
    let ndb_path = samples.join("ndb-sample.bin");
    let mut ndb_content = vec![0x41u8; 10_000];
    ndb_content.extend_from_slice(marker.as_bytes());
    ndb_content.extend(vec![0x42u8; 10_000]);
    fs::write(&ndb_path, &ndb_content).unwrap();

    let clean_path = samples.join("clean.txt");
    fs::write(&clean_path, format!("nothing to see here {nonce}\n")).unwrap();

    let big_path = samples.join("big.bin");
    fs::write(&big_path, vec![0x5au8; 2 * STREAM_MAX]).unwrap();

    Samples {
        eicar: eicar_path,
        hsb: hsb_path,
        ndb: ndb_path,
        clean: clean_path,
        big: big_path,
        hsb_sha256: hsb_digests.sha256_hex(),
        ndb_marker: marker.to_owned(),
    }
}

fn start_clamd(binary: &Path) -> (TestClamd, Samples, tempfile::TempDir) {
    let dir = tempfile::Builder::new()
        .prefix("dozor-clamd-samples-")
        .tempdir()
        .unwrap();
    let samples = write_samples_and_database(dir.path());
    let db: Vec<(String, String)> = fs::read_dir(dir.path().join("db"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    let db: Vec<(&str, String)> = db.iter().map(|(n, c)| (n.as_str(), c.clone())).collect();
    let clamd = TestClamd::start(binary, &db, "1M");
    (clamd, samples, dir)
}

#[test]
fn real_clamd() {
    let Some(binary) = find_clamd() else {
        eprintln!(
            "SKIPPED real_clamd: no clamd binary (install the Debian package clamav-daemon, \
             or set DOZOR_TEST_CLAMD)"
        );
        return;
    };
    let (mut clamd, s, _samples_dir) = start_clamd(&binary);
    let unix = ClamdClient::new(ClamdAddress::Unix(clamd.socket.clone()))
        .with_connect_timeout(Duration::from_secs(2))
        .with_read_timeout(Duration::from_secs(30))
        .with_write_timeout(Duration::from_secs(10));
    let tcp_address: ClamdAddress = format!("tcp:{}", clamd.tcp).parse().unwrap();
    let tcp = ClamdClient::new(tcp_address)
        .with_connect_timeout(Duration::from_secs(2))
        .with_read_timeout(Duration::from_secs(30))
        .with_write_timeout(Duration::from_secs(10));

    // PING over both transports.
    unix.ping().unwrap();
    tcp.ping().unwrap();

    // VERSION: the engine version matches `clamd --version`; no official daily database, so
    // no database version.
    let version = unix.version().unwrap();
    let cli = Command::new(&binary).arg("--version").output().unwrap();
    let cli = String::from_utf8_lossy(&cli.stdout);
    assert!(
        cli.trim()
            .starts_with(&format!("ClamAV {}", version.engine)),
        "{cli:?} vs {version:?}"
    );
    assert!(version.engine.starts_with(|c: char| c.is_ascii_digit()));
    assert_eq!(version.db_version, None, "{version:?}");
    assert_eq!(tcp.version().unwrap(), version);

    // EICAR (hash signature) from a buffer and from a file, over both transports.
    for client in [&unix, &tcp] {
        let v = client.scan_bytes(&eicar()).unwrap();
        assert!(v.infected, "{v:?}");
        assert_eq!(v.signature.as_deref(), Some("Dozor.Test.Eicar.UNOFFICIAL"));
        assert!(v.is_unofficial());
        assert_eq!(v.engine, "clamav");
        assert_eq!(v.engine_version, version.engine);
        let v = client.scan_file(&s.eicar, 10 << 20).unwrap();
        assert_eq!(v.signature.as_deref(), Some("Dozor.Test.Eicar.UNOFFICIAL"));
    }

    // `.hsb` SHA-256 signature.
    let v = unix.scan_file(&s.hsb, 10 << 20).unwrap();
    assert!(v.infected);
    assert_eq!(v.signature.as_deref(), Some("Dozor.Test.Hsb.UNOFFICIAL"));

    // `.ndb` body signature, found in the middle of a file sent in small chunks.
    let small_chunks = unix.clone().with_chunk_size(4096);
    let v = small_chunks.scan_file(&s.ndb, 10 << 20).unwrap();
    assert_eq!(v.signature.as_deref(), Some("Dozor.Test.Ndb.UNOFFICIAL"));
    let mut streamed = format!("prefix {} suffix", s.ndb_marker).into_bytes();
    streamed.extend(vec![0u8; 100_000]);
    let reply = tcp.instream(&streamed[..], 1 << 20).unwrap();
    assert_eq!(reply.signature(), Some("Dozor.Test.Ndb.UNOFFICIAL"));

    // A clean file.
    for client in [&unix, &tcp] {
        let v = client.scan_file(&s.clean, 10 << 20).unwrap();
        assert!(!v.infected, "{v:?}");
        assert_eq!(v.signature, None);
        assert!(!v.is_unofficial());
    }

    // Several threads share one client.
    thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| unix.scan_bytes(&eicar()).unwrap()))
            .collect();
        for h in handles {
            assert!(h.join().unwrap().infected);
        }
    });

    // clamd's StreamMaxLength (1M): a distinct SizeLimit error.
    let err = unix.scan_file(&s.big, 10 << 20).unwrap_err();
    assert!(
        matches!(&err, ClamdError::SizeLimit { message, .. }
            if message == "INSTREAM size limit exceeded. ERROR"),
        "{err:?}"
    );
    assert!(err.to_string().contains("StreamMaxLength"), "{err}");
    let err = tcp
        .instream(fs::File::open(&s.big).unwrap(), 10 << 20)
        .unwrap_err();
    assert!(matches!(err, ClamdError::SizeLimit { .. }), "tcp: {err:?}");
    // clamd is still fine afterwards.
    unix.ping().unwrap();

    // The client-side limit refuses before sending.
    let err = unix.scan_file(&s.big, 1024).unwrap_err();
    assert!(matches!(err, ClamdError::InputTooLarge { .. }), "{err:?}");
    let mut reader = fs::File::open(&s.big).unwrap().take(4096);
    let err = unix.instream(&mut reader, 1024).unwrap_err();
    assert!(matches!(err, ClamdError::InputTooLarge { .. }), "{err:?}");

    // Hash lists agree with clamd's `.hsb` match.
    let (bad, errors) =
        HashList::parse_str("test-bad", &format!("{}  Dozor.Test.Hsb\n", s.hsb_sha256));
    assert!(errors.is_empty());
    let hv = HashLists::new(bad, HashList::new())
        .classify_file(&s.hsb, 10 << 20)
        .unwrap();
    let m = hv.known_bad.unwrap();
    assert_eq!(
        (m.algo, m.name.as_deref()),
        (HashAlgo::Sha256, Some("Dozor.Test.Hsb"))
    );

    // clamd stopped: clear connection errors, quickly, no panic and no hang.
    clamd.stop();
    for client in [&unix, &tcp] {
        let started = Instant::now();
        let err = client.ping().unwrap_err();
        assert!(matches!(err, ClamdError::Connect { .. }), "{err:?}");
        assert!(err.is_unavailable());
        assert!(started.elapsed() < Duration::from_secs(3), "{err}");
        let text = err.to_string();
        assert!(text.contains(&client.address().to_string()), "{text}");
        assert!(text.contains("cannot connect"), "{text}");
        eprintln!("clamd down: {text}");
        let err = client.scan_file(&s.clean, 1024).unwrap_err();
        assert!(err.is_unavailable(), "{err:?}");
    }
}
