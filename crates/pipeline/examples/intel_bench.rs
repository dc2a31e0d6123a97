//! The threat-intelligence benchmark of issue 14 (see `bench/intel/README.md`):
//!
//! 1. **Matcher memory and build time** — 1,000,000 synthetic but realistic indicators (IPs,
//!    CIDRs, domains, host names, URLs, hashes, file names, e-mail addresses, registry keys,
//!    user agents, JA3), with the context the server gives each (`IocContext`: sources, tags
//!    shared per MISP event, confidence, times), indexed by `IntelSnapshot::build` as the
//!    server's snapshot refresher does. Live heap bytes come from a counting global allocator
//!    (`cap` over mimalloc, the server's allocator): bytes allocated for the snapshot that stay
//!    live, the `IocIndex` alone, and the transient peak of the build.
//! 2. **Pipeline throughput** — the same event stream (the real EVTX corpus decoded as the
//!    server decodes it, plus synthetic ECS network/DNS/HTTP/file/process/TLS/e-mail/registry
//!    events) through
//!    - `full`: the real `Worker` (bus → parse → intel → Sigma + correlations → SQLite store
//!      commit → intel matches recorded → ack), one worker as `dozor server` runs by default,
//!      over the in-process queue and a fresh SQLite store per run;
//!    - `stage`: the worker's CPU stage alone (parse → intel → Sigma), on one thread;
//!
//!    with (a) no indicators and (b) the snapshot, alternating runs, medians reported. A
//!    few percent of the events carry a value that is among the indicators, so the match path
//!    (enrichment, match records, alerts) runs too.
//!
//! ```sh
//! cargo run --release -p dozor-pipeline --example intel_bench -- [--smoke] [options]
//! ```
//!
//! Options: `--iocs N` (1,000,000), `--events N` per run (100,000), `--rounds N` (3),
//! `--match-percent P` (3), `--batch N` events per bus message (500), `--corpus DIR` (EVTX;
//! default `<shared>/datasets/evtx-to-mitre-attack`), `--rules DIR` (repeatable; default the
//! three SigmaHQ rule folders of `<shared>/sigma`), `--no-rules`, `--synthetic N` (10,000
//! synthetic base events), `--mode full|stage|both` (both), `--seed N`, `--json FILE`.
//! `<shared>` is `$DOZOR_SHARED_DIR` or `../shared` beside the repository. `--smoke`: 10,000
//! indicators, 4,000 events, one round, the 151 image-load and network-connection rules —
//! well under a minute even in a debug build; a check that it runs, not a measurement.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dozor_bus::{BusConfig, MemoryConfig};
use dozor_event::{EventFields, NormalizedEvent};
use dozor_intel::{IocIndex, IocKind, normalize, observables};
use dozor_pipeline::intel::{EventRef, IntelHandle, IntelSnapshot, IocContext};
use dozor_pipeline::{PipelineOptions, PipelineStats, Worker};
use dozor_sigma::{Detector, DetectorOptions, EngineOptions, LoadOptions, RuleSet};
use dozor_store::{NewIoc, StoreConfig, sqlite::SqliteConfig};
use serde_json::{Value as Json, json};
use uuid::Uuid;

/// Counts live and peak heap bytes; mimalloc underneath, as in `dozor`.
#[global_allocator]
static ALLOC: cap::Cap<mimalloc::MiMalloc> = cap::Cap::new(mimalloc::MiMalloc, usize::MAX);

const MB: f64 = 1024.0 * 1024.0;

// ------------------------------------------------------------------------------- options

#[derive(Debug, Clone)]
struct Options {
    iocs: usize,
    events: usize,
    rounds: usize,
    match_percent: f64,
    batch: usize,
    corpus: Option<PathBuf>,
    rules: Vec<PathBuf>,
    smoke: bool,
    synthetic: usize,
    full: bool,
    stage: bool,
    seed: u64,
    json: Option<PathBuf>,
}

fn shared_dir() -> PathBuf {
    std::env::var_os("DOZOR_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

fn options() -> Options {
    let shared = shared_dir();
    let corpus = shared.join("datasets/evtx-to-mitre-attack");
    let mut o = Options {
        iocs: 1_000_000,
        events: 100_000,
        rounds: 3,
        match_percent: 3.0,
        batch: 500,
        corpus: corpus.is_dir().then_some(corpus),
        rules: ["rules", "rules-emerging-threats", "rules-threat-hunting"]
            .iter()
            .map(|d| shared.join("sigma").join(d))
            .filter(|d| d.is_dir())
            .collect(),
        smoke: false,
        synthetic: 10_000,
        full: true,
        stage: true,
        seed: 14,
        json: None,
    };
    let mut args = std::env::args().skip(1);
    let mut explicit_rules = Vec::new();
    let mut no_rules = false;
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| die(&format!("{name} needs a value")))
        };
        let num = |s: String| -> usize {
            s.replace(['_', ','], "")
                .parse()
                .unwrap_or_else(|_| die(&format!("not a number: {s}")))
        };
        match a.as_str() {
            "--smoke" => {
                o.iocs = 10_000;
                o.events = 4_000;
                o.rounds = 1;
                o.synthetic = 2_000;
                o.smoke = true;
            }
            "--iocs" => o.iocs = num(value(&a)),
            "--events" => o.events = num(value(&a)),
            "--rounds" => o.rounds = num(value(&a)).max(1),
            "--match-percent" => {
                o.match_percent = value(&a)
                    .parse()
                    .unwrap_or_else(|_| die("--match-percent: not a number"))
            }
            "--batch" => o.batch = num(value(&a)).max(1),
            "--corpus" => o.corpus = Some(PathBuf::from(value(&a))),
            "--no-corpus" => o.corpus = None,
            "--rules" => explicit_rules.push(PathBuf::from(value(&a))),
            "--no-rules" => no_rules = true,
            "--synthetic" => o.synthetic = num(value(&a)),
            "--seed" => o.seed = num(value(&a)) as u64,
            "--json" => o.json = Some(PathBuf::from(value(&a))),
            "--mode" => match value(&a).as_str() {
                "full" => (o.full, o.stage) = (true, false),
                "stage" => (o.full, o.stage) = (false, true),
                "both" => (o.full, o.stage) = (true, true),
                // Only the intel-stage timing (for a profiler).
                "apply" => (o.full, o.stage) = (false, false),
                m => die(&format!("--mode {m}: expected full, stage, both or apply")),
            },
            "-h" | "--help" => {
                println!("see the header of crates/pipeline/examples/intel_bench.rs");
                std::process::exit(0);
            }
            other => die(&format!("unknown argument {other}")),
        }
    }
    if !explicit_rules.is_empty() {
        o.rules = explicit_rules;
    } else if o.smoke {
        // 151 rules instead of 3,754: rule compilation is slow in a debug build.
        o.rules = ["image_load", "network_connection"]
            .iter()
            .map(|d| shared.join("sigma/rules/windows").join(d))
            .filter(|d| d.is_dir())
            .collect();
    }
    if no_rules {
        o.rules.clear();
    }
    o
}

fn die(msg: &str) -> ! {
    eprintln!("intel_bench: {msg}");
    std::process::exit(2)
}

// ----------------------------------------------------------------------------- random data

/// Syllables of the names in events, and (disjoint) of the generated indicators: the
/// indicators match events only where the benchmark plants a value, not by chance.
const SYL_EVENTS: &[&str] = &[
    "ka", "lo", "mi", "ne", "tro", "ban", "sec", "up", "dat", "ser", "vi", "ce", "no", "ra", "zo",
    "pex", "cor", "fin",
];
const SYL_IOCS: &[&str] = &[
    "mal", "log", "net", "web", "cdn", "api", "sync", "mail", "cloud", "soft", "tech", "gate",
    "link", "host", "box", "qu", "xy", "zed",
];

/// SplitMix64: small, seeded, good enough for test data; `syl` spells its words.
struct Rng {
    state: u64,
    syl: &'static [&'static str],
}

impl Rng {
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    /// Skewed towards the start: a few values are common, most are rare (like real traffic).
    fn skewed(&mut self, n: usize) -> usize {
        ((self.unit().powi(3)) * n as f64) as usize % n.max(1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn hex(&mut self, digits: usize) -> String {
        let mut s = String::with_capacity(digits);
        while s.len() < digits {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(digits);
        s
    }
    fn word(&mut self, min: usize, max: usize) -> String {
        let mut s = String::new();
        let want = min + self.below(max - min + 1);
        while s.len() < want {
            let syl = self.syl;
            s.push_str(syl[self.below(syl.len())]);
        }
        if self.chance(0.3) {
            s.push_str(&self.below(1000).to_string());
        }
        s
    }
    fn public_v4(&mut self) -> String {
        loop {
            let a = self.next() as u32;
            let first = a >> 24;
            let private =
                matches!(first, 0 | 10 | 100 | 127 | 169 | 192 | 172 | 198 | 203) || first >= 224;
            if !private {
                return std::net::Ipv4Addr::from(a).to_string();
            }
        }
    }
    fn public_v6(&mut self) -> String {
        let prefix = *self.pick(&[0x2a01u16, 0x2a02, 0x2a03, 0x2605, 0x2400, 0x2001]);
        format!(
            "{prefix:x}:{:x}:{:x}:{:x}::{:x}",
            self.below(0xffff),
            self.below(0xffff),
            self.below(0xffff),
            self.below(0xffff) + 1
        )
    }
}

const TLDS: &[&str] = &[
    "com", "net", "org", "ru", "xyz", "top", "info", "online", "site", "club", "io", "cn", "biz",
    "su", "pw", "cc", "de", "uk", "br", "in", "shop", "live", "icu", "buzz", "co",
];
const EXTS: &[&str] = &[
    "exe", "dll", "js", "vbs", "ps1", "doc", "docm", "xls", "xlsm", "zip", "rar", "lnk", "hta",
    "bat", "scr", "iso", "elf", "sh", "apk", "jar",
];

fn domain(r: &mut Rng) -> String {
    format!("{}.{}", r.word(4, 12), r.pick(TLDS))
}

fn url_for(r: &mut Rng, host: &str) -> String {
    let scheme = if r.chance(0.6) { "http" } else { "https" };
    let port = if r.chance(0.15) {
        format!(":{}", r.pick(&[8080, 8443, 8000, 81, 3000]))
    } else {
        String::new()
    };
    let mut path = String::new();
    for _ in 0..1 + r.below(3) {
        path.push('/');
        path.push_str(&r.word(2, 10));
    }
    if r.chance(0.5) {
        path.push('.');
        path.push_str(r.pick::<&str>(EXTS));
    }
    if r.chance(0.3) {
        path.push_str(&format!("?id={}&v={}", r.hex(8), r.below(100)));
    }
    format!("{scheme}://{host}{port}{path}")
}

fn filename(r: &mut Rng) -> String {
    let stem = match r.below(4) {
        0 => format!("invoice_{}_{}", 2020 + r.below(6), r.below(100_000)),
        1 => format!("{}_{}", r.word(3, 8), r.word(3, 8)),
        2 => format!("setup-{}", r.hex(6)),
        _ => r.word(4, 14),
    };
    format!("{stem}.{}", r.pick(EXTS))
}

fn user_agent(r: &mut Rng) -> String {
    format!(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) {}/{}.{}.{}",
        r.word(4, 8),
        r.below(120),
        r.below(10),
        r.below(5000)
    )
}

fn registry_key(r: &mut Rng) -> String {
    let hive = *r.pick(&[
        "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run",
        "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run",
        "HKLM\\SYSTEM\\CurrentControlSet\\Services",
        "HKCU\\Software\\Classes\\CLSID",
    ]);
    format!("{hive}\\{}", r.word(5, 12))
}

/// A raw indicator value of `kind` as feeds write them (normalized later, as the store does).
fn raw_indicator(r: &mut Rng, kind: IocKind) -> String {
    match kind {
        IocKind::Ip => {
            if r.chance(0.03) {
                r.public_v6()
            } else {
                r.public_v4()
            }
        }
        IocKind::Cidr => {
            if r.chance(0.02) {
                format!("{}/{}", r.public_v6(), r.pick(&[32, 48, 56, 64]))
            } else {
                // Mostly small networks; every length from /11 to /30 present (one map
                // probe each per address looked up), the short ones rare, as in DROP-style
                // lists: together they cover well under 1 % of the IPv4 space.
                let roll = r.below(10_000);
                let len = match roll {
                    0..10 => 11 + roll % 5,      // /11–/15: 0.1 %
                    10..110 => 16 + roll % 4,    // /16–/19: 1 %
                    110..1_910 => 20 + roll % 4, // /20–/23: 18 %
                    1_910..5_910 => 24,          // 40 %
                    _ => 25 + roll % 6,          // /25–/30
                };
                format!("{}/{len}", r.public_v4())
            }
        }
        IocKind::Domain => domain(r),
        IocKind::Hostname => format!("{}.{}", r.word(2, 8), domain(r)),
        IocKind::Url => {
            let host = if r.chance(0.25) {
                r.public_v4()
            } else if r.chance(0.5) {
                domain(r)
            } else {
                format!("{}.{}", r.word(2, 6), domain(r))
            };
            url_for(r, &host)
        }
        IocKind::Md5 | IocKind::Imphash | IocKind::Ja3 => r.hex(32),
        IocKind::Sha1 => r.hex(40),
        IocKind::Sha256 => r.hex(64),
        IocKind::Sha512 => r.hex(128),
        IocKind::Filename => filename(r),
        IocKind::Email => format!("{}.{}@{}", r.word(3, 8), r.word(3, 8), domain(r)),
        IocKind::RegistryKey => registry_key(r),
        IocKind::UserAgent => user_agent(r),
    }
}

/// The kind mix of the generated indicators (per mille), roughly that of public feeds
/// (abuse.ch, CIRCL OSINT, DROP lists): network indicators first, then file hashes.
const MIX: &[(IocKind, u32)] = &[
    (IocKind::Ip, 300),
    (IocKind::Cidr, 20),
    (IocKind::Domain, 200),
    (IocKind::Hostname, 50),
    (IocKind::Url, 150),
    (IocKind::Sha256, 120),
    (IocKind::Md5, 70),
    (IocKind::Sha1, 40),
    (IocKind::Sha512, 5),
    (IocKind::Filename, 20),
    (IocKind::Email, 15),
    (IocKind::Imphash, 5),
    (IocKind::Ja3, 2),
    (IocKind::RegistryKey, 2),
    (IocKind::UserAgent, 1),
];

const SOURCES: &[&str] = &[
    "circl-osint",
    "abuse-ch-urlhaus",
    "abuse-ch-threatfox",
    "malwarebazaar",
    "botvrij",
    "internal-misp",
];

const TAG_VOCABULARY: &[&str] = &[
    "osint:source-type=\"blog-post\"",
    "osint:source-type=\"block-or-filter-list\"",
    "type:OSINT",
    "circl:incident-classification=\"malware\"",
    "circl:incident-classification=\"phishing\"",
    "misp-galaxy:threat-actor=\"Sofacy\"",
    "misp-galaxy:threat-actor=\"Lazarus Group\"",
    "misp-galaxy:malpedia=\"Emotet\"",
    "misp-galaxy:malpedia=\"QakBot\"",
    "misp-galaxy:ransomware=\"LockBit\"",
    "malware_classification:malware-category=\"Ransomware\"",
    "ms-caro-malware:malware-type=\"Trojan\"",
    "kill-chain:Command and Control",
    "misp:confidence-level=\"usually-confident\"",
    "misp:confidence-level=\"fairly-confident\"",
    "threat-level=\"high\"",
    "mozi",
    "cobaltstrike",
    "c2",
    "payload_delivery",
];

/// A MISP event of the generated feeds: its source and the tags its attributes inherit.
struct FeedEvent {
    source: &'static str,
    tags: Vec<String>,
}

fn feed_events(r: &mut Rng, n: usize) -> Vec<FeedEvent> {
    (0..n)
        .map(|_| {
            let mut tags =
                vec![(*r.pick(&["tlp:white", "tlp:clear", "tlp:green", "tlp:amber"])).to_owned()];
            for _ in 0..r.below(5) {
                let t = (*r.pick(TAG_VOCABULARY)).to_owned();
                if !tags.contains(&t) {
                    tags.push(t);
                }
            }
            tags.sort();
            FeedEvent {
                source: r.pick::<&str>(SOURCES),
                tags,
            }
        })
        .collect()
}

/// The context the server's snapshot loader builds for a stored indicator (each string its
/// own allocation, as `crates/server/src/intel/snapshot.rs::context` clones them).
fn context(
    r: &mut Rng,
    id: i64,
    kind: IocKind,
    value: String,
    event: &FeedEvent,
    now: i64,
) -> IocContext {
    let mut sources = vec![event.source.to_owned()];
    if r.chance(0.05) {
        let other = (*r.pick(SOURCES)).to_owned();
        if other != sources[0] {
            sources.push(other);
        }
    }
    let mut tags = event.tags.clone();
    if r.chance(0.1) {
        tags.push((*r.pick(TAG_VOCABULARY)).to_owned());
    }
    let first_seen = now - (r.below(400 * 86_400) as i64) * 1000;
    IocContext {
        id,
        kind,
        value,
        sighting: sources.iter().any(|s| s == "internal-misp"),
        sources,
        tags,
        confidence: r.chance(0.6).then(|| r.below(101) as u8),
        to_ids: r.chance(0.85),
        warninglists: if r.chance(0.003) {
            vec!["List of known IPv4 public DNS resolvers".to_owned()]
        } else {
            Vec::new()
        },
        first_seen: Some(first_seen),
        last_seen: r
            .chance(0.7)
            .then(|| first_seen + (r.below(30 * 86_400) as i64) * 1000),
    }
}

// ---------------------------------------------------------------------------------- events

/// Pools of values the synthetic events draw from (skewed: some common, most rare).
struct Pools {
    ips: Vec<String>,
    domains: Vec<String>,
    files: Vec<(String, String, String, String, String)>, // name, sha256, md5, sha1, imphash
    emails: Vec<String>,
    agents: Vec<String>,
    ja3: Vec<String>,
    keys: Vec<String>,
}

fn pools(r: &mut Rng, scale: usize) -> Pools {
    let n = |x: usize| (x * scale / 10_000).max(20);
    Pools {
        ips: (0..n(4000))
            .map(|i| {
                if i % 40 == 0 {
                    r.public_v6()
                } else {
                    r.public_v4()
                }
            })
            .collect(),
        domains: (0..n(3000))
            .map(|_| {
                if r.chance(0.6) {
                    format!(
                        "{}.{}",
                        r.pick(&["www", "api", "cdn", "mail", "m"]),
                        domain(r)
                    )
                } else {
                    domain(r)
                }
            })
            .collect(),
        files: (0..n(6000))
            .map(|_| (filename(r), r.hex(64), r.hex(32), r.hex(40), r.hex(32)))
            .collect(),
        emails: (0..n(1000))
            .map(|_| format!("{}@{}", r.word(3, 8), domain(r)))
            .collect(),
        agents: (0..50).map(|_| user_agent(r)).collect(),
        ja3: (0..200).map(|_| r.hex(32)).collect(),
        keys: (0..300).map(|_| registry_key(r)).collect(),
    }
}

/// One synthetic ECS event as a Linux/Windows agent, a DNS/proxy sensor or a mail gateway
/// sends it.
fn synthetic_event(r: &mut Rng, p: &Pools) -> Json {
    let host = r.below(50);
    let windows = host.is_multiple_of(2);
    let ts = format!(
        "2026-04-17T{:02}:{:02}:{:02}.{:03}Z",
        r.below(24),
        r.below(60),
        r.below(60),
        r.below(1000)
    );
    let local_ip = format!("10.1.{}.{}", host / 250, host % 250 + 2);
    let exe = if windows {
        *r.pick(&[
            "C:\\Windows\\System32\\svchost.exe",
            "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
            "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
            "C:\\Windows\\explorer.exe",
        ])
    } else {
        *r.pick(&[
            "/usr/bin/curl",
            "/usr/sbin/sshd",
            "/usr/bin/python3",
            "/usr/bin/wget",
        ])
    };
    let name = exe.rsplit(['\\', '/']).next().unwrap_or(exe);
    let mut doc = json!({
        "@timestamp": ts,
        "event": {"id": Uuid::nil().to_string(), "kind": "event", "module": "dozor-agent"},
        "host": {"name": format!("host-{host:02}"), "os": {"type": if windows {"windows"} else {"linux"}}},
        "process": {"pid": 1000 + r.below(30000), "executable": exe, "name": name},
    });
    let ip = |r: &mut Rng| p.ips[r.skewed(p.ips.len())].clone();
    let dom = |r: &mut Rng| p.domains[r.skewed(p.domains.len())].clone();
    let o = doc.as_object_mut().expect("object");
    let set = |o: &mut serde_json::Map<String, Json>, k: &str, v: Json| {
        o.insert(k.to_owned(), v);
    };
    match r.below(100) {
        0..35 => {
            o["event"]["category"] = json!(["network"]);
            o["event"]["type"] = json!(["connection"]);
            set(
                o,
                "source",
                json!({"ip": local_ip, "port": 40000 + r.below(20000)}),
            );
            set(
                o,
                "destination",
                json!({"ip": ip(r), "port": *r.pick(&[443, 80, 22, 8080, 53, 3389])}),
            );
            set(
                o,
                "network",
                json!({"transport": "tcp", "direction": "outbound"}),
            );
        }
        35..60 => {
            o["event"]["category"] = json!(["network"]);
            o["event"]["type"] = json!(["protocol"]);
            o["event"]["action"] = json!("dns_query");
            set(
                o,
                "dns",
                json!({"question": {"name": dom(r), "type": "A"}, "response_code": "NOERROR"}),
            );
            set(
                o,
                "source",
                json!({"ip": local_ip, "port": 50000 + r.below(10000)}),
            );
            set(o, "destination", json!({"ip": "10.0.0.2", "port": 53}));
        }
        60..70 => {
            let host = if r.chance(0.1) { ip(r) } else { dom(r) };
            let url = url_for(r, &host);
            o["event"]["category"] = json!(["network", "web"]);
            set(o, "url", json!({"full": url, "domain": host}));
            set(
                o,
                "http",
                json!({"request": {"method": "GET"}, "response": {"status_code": 200}}),
            );
            set(
                o,
                "user_agent",
                json!({"original": p.agents[r.skewed(p.agents.len())]}),
            );
            set(o, "destination", json!({"ip": ip(r), "port": 443}));
        }
        70..80 => {
            let (fname, sha256, md5, _, _) = &p.files[r.skewed(p.files.len())];
            let path = if windows {
                format!("C:\\Users\\user{host}\\Downloads\\{fname}")
            } else {
                format!("/tmp/{}/{fname}", r.word(3, 6))
            };
            o["event"]["category"] = json!(["file"]);
            o["event"]["type"] = json!(["creation"]);
            set(
                o,
                "file",
                json!({"path": path, "name": fname, "size": r.below(5_000_000),
                                  "hash": {"sha256": sha256, "md5": md5}}),
            );
        }
        80..92 => {
            let (fname, sha256, md5, sha1, imphash) = &p.files[r.skewed(p.files.len())];
            let path = if windows {
                format!("C:\\Users\\user{host}\\AppData\\Local\\Temp\\{fname}")
            } else {
                format!("/var/tmp/{fname}")
            };
            o["event"]["category"] = json!(["process"]);
            o["event"]["type"] = json!(["start"]);
            set(
                o,
                "process",
                json!({"pid": 2000 + r.below(30000), "executable": path, "name": fname,
                "command_line": format!("\"{path}\" --silent {}", r.word(3, 8)),
                "hash": {"sha256": sha256, "md5": md5, "sha1": sha1},
                "pe": {"imphash": imphash},
                "parent": {"executable": exe}}),
            );
        }
        92..97 => {
            o["event"]["category"] = json!(["network"]);
            set(
                o,
                "tls",
                json!({"client": {"ja3": p.ja3[r.skewed(p.ja3.len())]}, "version": "1.2"}),
            );
            set(
                o,
                "destination",
                json!({"ip": ip(r), "port": 443, "domain": dom(r)}),
            );
        }
        97..99 => {
            o["event"]["category"] = json!(["email"]);
            set(
                o,
                "email",
                json!({"from": {"address": p.emails[r.skewed(p.emails.len())]},
                                   "to": {"address": format!("user{host}@corp.example")},
                                   "subject": format!("Invoice {}", r.below(100000))}),
            );
        }
        _ => {
            o["event"]["category"] = json!(["registry"]);
            set(
                o,
                "registry",
                json!({"path": p.keys[r.skewed(p.keys.len())]}),
            );
        }
    }
    doc
}

/// The real corpus decoded and normalized exactly as `dozor convert` / the agents do.
fn corpus_events(dir: &Path) -> Vec<Json> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "evtx") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let Ok(events) = dozor_decode::read_path(&f, &dozor_decode::ReadOptions::default()) else {
            continue;
        };
        for flat in events.flatten() {
            if let Ok(doc) = dozor_decode::winlog::to_event(&flat) {
                out.push(doc);
            }
        }
    }
    out
}

/// Observables of an event as `(kind, value)` (the matcher's view of it).
fn event_observables(doc: &Json) -> Vec<(IocKind, String)> {
    let view = NormalizedEvent(doc);
    let mut out = Vec::new();
    observables(&view, &mut |o| out.push((o.kind, o.value.to_owned())));
    out
}

/// Picks values of ~`percent` % of the base events to be among the indicators: one rare
/// observable (seen in at most two base events) per picked event.
fn planted(r: &mut Rng, base: &[Json], percent: f64) -> Vec<(IocKind, String)> {
    let per_event: Vec<Vec<(IocKind, String)>> = base.iter().map(event_observables).collect();
    let mut counts: HashMap<(IocKind, &str), usize> = HashMap::new();
    for obs in &per_event {
        let unique: HashSet<(IocKind, &str)> = obs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for key in unique {
            *counts.entry(key).or_default() += 1;
        }
    }
    let target = (base.len() as f64 * percent / 100.0).round() as usize;
    let mut order: Vec<usize> = (0..base.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, r.below(i + 1));
    }
    let mut chosen = HashSet::new();
    let mut out = Vec::new();
    let mut covered = 0usize;
    for i in order {
        if covered >= target {
            break;
        }
        let rare: Vec<&(IocKind, String)> = per_event[i]
            .iter()
            .filter(|(k, v)| counts.get(&(*k, v.as_str())).is_some_and(|c| *c <= 2))
            .filter(|(k, v)| !chosen.contains(&(*k, v.clone())))
            .collect();
        if rare.is_empty() {
            continue;
        }
        let (kind, value) = rare[r.below(rare.len())].clone();
        covered += counts[&(kind, value.as_str())];
        chosen.insert((kind, value.clone()));
        // An observed DNS name becomes a domain (suffix match) or a host name indicator, an
        // observed address sometimes its /28.
        let kind = match kind {
            IocKind::Domain if r.chance(0.3) => IocKind::Hostname,
            IocKind::Ip if r.chance(0.2) && !value.contains(':') => {
                out.push((IocKind::Cidr, format!("{value}/28")));
                continue;
            }
            k => k,
        };
        out.push((kind, value));
    }
    out
}

// ------------------------------------------------------------------------------ measuring

fn cpu_seconds() -> f64 {
    // utime + stime of the whole process, in clock ticks (USER_HZ = 100 on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn proc_status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Samples the live heap every millisecond while `f` runs; returns its result and the peak.
fn with_peak<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicUsize::new(ALLOC.allocated()));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(ALLOC.allocated(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let out = f();
    peak.fetch_max(ALLOC.allocated(), Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    (out, peak.load(Ordering::Relaxed))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

#[derive(Debug, Clone, Default)]
struct Run {
    events: usize,
    wall: f64,
    cpu: f64,
    detections: u64,
    intel_matches: u64,
    matched_events: u64,
}

impl Run {
    fn eps(&self) -> f64 {
        self.events as f64 / self.wall
    }
    fn eps_cpu(&self) -> f64 {
        self.events as f64 / self.cpu.max(1e-9)
    }
}

fn detector(o: &Options) -> Detector {
    let set = RuleSet::load_paths(&o.rules, &LoadOptions::default());
    // The options of the server's detector (crates/server/src/compose/catalog.rs).
    let options = EngineOptions {
        prefilter_dfa: true,
        ..EngineOptions::default()
    };
    Detector::build(set, &options, &DetectorOptions::default()).0
}

/// The real worker: one run over a fresh in-process queue and SQLite store.
async fn full_run(
    o: &Options,
    messages: &[Bytes],
    events: usize,
    handle: IntelHandle,
    store_iocs: &[NewIoc],
) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dozor_store::open(&StoreConfig::Sqlite(SqliteConfig::new(dir.path())))
        .await
        .expect("store");
    if !store_iocs.is_empty() {
        // The indicators that match are in the store too, so their matches are recorded
        // (the store keeps a match only for an indicator it has).
        let report = store
            .upsert_iocs("bench-feed", store_iocs, dozor_store::now_ms())
            .await
            .expect("upsert");
        assert_eq!(
            report.added_ids,
            (1..=store_iocs.len() as i64).collect::<Vec<_>>(),
            "a fresh store numbers indicators from 1"
        );
    }
    let bus = dozor_bus::connect(&BusConfig::Memory(MemoryConfig {
        max_messages: messages.len() + 16,
        max_bytes: 0,
        max_events: 0,
        visibility_timeout: Duration::from_secs(600),
    }))
    .await
    .expect("bus");
    for m in messages {
        bus.publish(m.clone()).await.expect("publish");
    }
    let (notices, _) = tokio::sync::broadcast::channel(1024);
    let stats = Arc::new(PipelineStats::default());
    let worker = Worker::new(
        bus,
        store,
        None,
        detector(o),
        PipelineOptions::default(),
        notices,
        stats.clone(),
    )
    .with_intel(handle);
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let mut done = 0;
    while done < events {
        done += worker.process_once().await.expect("cycle");
    }
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    Run {
        events: done,
        wall,
        cpu,
        detections: stats.detections.load(Ordering::Relaxed),
        intel_matches: stats.intel_matches.load(Ordering::Relaxed),
        matched_events: 0,
    }
}

/// `IntelSnapshot::apply` alone: thread CPU nanoseconds per event, median of `passes`
/// passes (CPU time: other processes on the machine do not count). Each
/// message is parsed untimed right before its events are matched, so they are as warm in
/// the cache as in the worker.
fn apply_ns_per_event(messages: &[Bytes], snapshot: &IntelSnapshot, passes: usize) -> f64 {
    let event = EventRef {
        id: Uuid::nil(),
        ts: 0,
        agent_id: Some("bench-agent"),
        retro: false,
    };
    let mut times = Vec::new();
    for _ in 0..passes {
        let (mut spent, mut events, mut found) = (Duration::ZERO, 0usize, 0usize);
        for m in messages {
            let Ok(Json::Array(mut docs)) = serde_json::from_slice::<Json>(m) else {
                continue;
            };
            let t = cpu_time::ThreadTime::now();
            for doc in &mut docs {
                found += snapshot.apply(doc, event).matches.len();
            }
            spent += t.elapsed();
            events += docs.len();
        }
        std::hint::black_box(found);
        times.push(spent.as_secs_f64() * 1e9 / events.max(1) as f64);
    }
    median(times)
}

/// The worker's CPU stage alone (what `prepare` in crates/pipeline/src/lib.rs does per
/// event: parse, intel, Sigma and correlations, detections), on this thread; CPU time is
/// this thread's.
fn stage_run(detector: &mut Detector, messages: &[Bytes], snapshot: &IntelSnapshot) -> Run {
    let (t0, c0) = (Instant::now(), cpu_time::ThreadTime::now());
    let mut run = Run::default();
    let mut scratch = detector.engine().new_scratch();
    let mut matched = Vec::new();
    let mut hits = Vec::new();
    let mut detections: Vec<dozor_store::Detection> = Vec::new();
    let mut keep: Vec<Json> = Vec::new();
    for payload in messages {
        let Ok(Json::Array(docs)) = serde_json::from_slice::<Json>(payload) else {
            continue;
        };
        for mut doc in docs {
            let Some(id) = doc
                .pointer("/event/id")
                .and_then(Json::as_str)
                .and_then(|s| Uuid::parse_str(s).ok())
            else {
                continue;
            };
            let ts = NormalizedEvent(&doc).timestamp_millis().unwrap_or(0);
            let agent_id = doc
                .pointer("/agent/id")
                .and_then(Json::as_str)
                .map(str::to_owned);
            let found = snapshot.apply(
                &mut doc,
                EventRef {
                    id,
                    ts,
                    agent_id: agent_id.as_deref(),
                    retro: false,
                },
            );
            run.intel_matches += found.matches.len() as u64;
            run.matched_events += u64::from(!found.matches.is_empty());
            detections.extend(found.detections);
            let view = NormalizedEvent(&doc);
            matched.clear();
            detector.engine().matches(&view, &mut scratch, &mut matched);
            for &rule in &matched {
                let meta = &detector.engine().rules()[rule as usize];
                let own = detector.reports_standalone(rule).then(|| meta.id.clone());
                if detector.feeds_correlation(rule) {
                    hits.clear();
                    detector.correlate(rule, &view, 0, &mut hits);
                    run.detections += hits.len() as u64;
                }
                run.detections += u64::from(own.is_some());
            }
            run.events += 1;
            keep.push(doc);
        }
        // A cycle's events are kept until its commit; dropped per message here.
        keep.clear();
    }
    run.detections += detections.len() as u64;
    run.wall = t0.elapsed().as_secs_f64();
    run.cpu = c0.elapsed().as_secs_f64();
    run
}

fn main() {
    let o = options();
    let mut r = Rng {
        state: o.seed,
        syl: SYL_EVENTS,
    };
    let now = dozor_store::now_ms();
    println!("# intel_bench");
    println!(
        "options: iocs={} events/run={} rounds={} match-percent={} batch={} rule dirs={} corpus={}",
        o.iocs,
        o.events,
        o.rounds,
        o.match_percent,
        o.batch,
        o.rules.len(),
        o.corpus
            .as_ref()
            .map_or("none".into(), |c| c.display().to_string())
    );

    // ---- the event stream
    let t = Instant::now();
    let mut base = o.corpus.as_deref().map(corpus_events).unwrap_or_default();
    let real = base.len();
    let p = pools(&mut r, o.synthetic.max(1));
    for _ in 0..o.synthetic {
        base.push(synthetic_event(&mut r, &p));
    }
    let with_obs = base
        .iter()
        .filter(|d| !event_observables(d).is_empty())
        .count();
    println!(
        "events: {} base events ({} from the EVTX corpus, {} synthetic ECS), {} with observables; built in {:.1} s",
        base.len(),
        real,
        o.synthetic,
        with_obs,
        t.elapsed().as_secs_f64()
    );
    assert!(!base.is_empty(), "no events: give --corpus or --synthetic");
    // Real and synthetic events mixed, so any prefix of the stream is like the whole.
    for i in (1..base.len()).rev() {
        base.swap(i, r.below(i + 1));
    }
    let plant = planted(&mut r, &base, o.match_percent);

    // The stream: the base events in turn, each with its own id, as ingest stamps them.
    let ingested = "2026-04-17T12:00:00.000Z";
    let mut messages = Vec::new();
    let mut batch = Vec::with_capacity(o.batch);
    for i in 0..o.events {
        let mut doc = base[i % base.len()].clone();
        let id = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | i as u128);
        doc["event"]["id"] = json!(id.to_string());
        doc["event"]["ingested"] = json!(ingested);
        doc["agent"] = json!({"id": format!("bench-agent-{:02}", i % 50)});
        batch.push(doc);
        if batch.len() == o.batch || i + 1 == o.events {
            messages.push(Bytes::from(serde_json::to_vec(&batch).expect("json")));
            batch.clear();
        }
    }
    let stream_bytes: usize = messages.iter().map(Bytes::len).sum();
    drop(batch);

    // ---- the indicators, as the server's snapshot loader hands them over
    let base_live = ALLOC.allocated();
    let rss0 = proc_status_kb("VmRSS:");
    let t = Instant::now();
    let events_of_feed = feed_events(&mut r, (o.iocs / 500).max(4));
    let mut contexts: Vec<IocContext> = Vec::with_capacity(o.iocs);
    {
        let mut seen: HashSet<(IocKind, String)> = HashSet::with_capacity(o.iocs);
        let mut add = |r: &mut Rng, kind: IocKind, raw: &str, contexts: &mut Vec<IocContext>| {
            let Ok(n) = normalize(kind, raw) else {
                return false;
            };
            if !seen.insert((n.kind, n.value.clone())) {
                return false;
            }
            let event = &events_of_feed[r.skewed(events_of_feed.len())];
            let id = contexts.len() as i64 + 1;
            contexts.push(context(r, id, n.kind, n.value, event, now));
            true
        };
        for (kind, value) in &plant {
            add(&mut r, *kind, value, &mut contexts);
        }
        let total: u32 = MIX.iter().map(|(_, w)| w).sum();
        r.syl = SYL_IOCS;
        while contexts.len() < o.iocs {
            let mut pick = r.below(total as usize) as u32;
            let kind = MIX
                .iter()
                .find(|(_, w)| {
                    if pick < *w {
                        true
                    } else {
                        pick -= w;
                        false
                    }
                })
                .map_or(IocKind::Ip, |(k, _)| *k);
            let raw = raw_indicator(&mut r, kind);
            add(&mut r, kind, &raw, &mut contexts);
        }
    }
    // Live now: the contexts (and the few feed events they were drawn from).
    let contexts_bytes = ALLOC.allocated().saturating_sub(base_live);
    let gen_secs = t.elapsed().as_secs_f64();
    let planted_n = plant.len().min(contexts.len());
    let store_iocs: Vec<NewIoc> = contexts[..planted_n]
        .iter()
        .map(|c| NewIoc {
            kind: c.kind.as_str().to_owned(),
            value: c.value.clone(),
            misp_type: None,
            to_ids: c.to_ids,
            tags: c.tags.clone(),
            confidence: c.confidence,
            first_seen: c.first_seen,
            last_seen: c.last_seen,
            expires: None,
            object_ids: Vec::new(),
            warninglists: c.warninglists.clone(),
        })
        .collect();
    let values: Vec<(IocKind, String)> =
        contexts.iter().map(|c| (c.kind, c.value.clone())).collect();
    let mut by_kind: Vec<(IocKind, usize)> = IocKind::ALL
        .iter()
        .map(|k| (*k, contexts.iter().filter(|c| c.kind == *k).count()))
        .filter(|(_, n)| *n > 0)
        .collect();
    by_kind.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    println!(
        "indicators: {} generated in {:.1} s ({} planted from event values); by kind: {}",
        contexts.len(),
        gen_secs,
        planted_n,
        by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // ---- build: the snapshot (index + contexts), as a worker process holds it
    let before_build = ALLOC.allocated();
    let t = Instant::now();
    let ((snapshot, refused), build_peak) =
        with_peak(|| IntelSnapshot::build(std::mem::take(&mut contexts), true));
    let build_secs = t.elapsed().as_secs_f64();
    drop(contexts);
    let after_build = ALLOC.allocated();
    // The snapshot owns the contexts now: its size is the contexts plus what the build added.
    let snapshot_bytes =
        (after_build as i64 - before_build as i64 + contexts_bytes as i64).max(0) as usize;
    let build_peak_extra = build_peak.saturating_sub(before_build);
    let rss1 = proc_status_kb("VmRSS:");
    assert!(
        refused.is_empty(),
        "refused: {:?}",
        &refused[..refused.len().min(3)]
    );

    // ---- the index alone (the matcher without the contexts)
    let before_index = ALLOC.allocated();
    let t = Instant::now();
    let index = {
        let mut b = IocIndex::builder();
        for (i, (kind, value)) in values.iter().enumerate() {
            b.add(i as u32, *kind, value).expect("indexable");
        }
        b.build()
    };
    let index_secs = t.elapsed().as_secs_f64();
    let index_bytes = ALLOC.allocated().saturating_sub(before_index);
    let index_keys = index.len();
    drop(index);
    drop(values);

    println!();
    println!(
        "## matcher memory and build ({} indicators)",
        snapshot.len()
    );
    println!("| what | live heap MB | notes |");
    println!("|---|---:|---|");
    println!(
        "| IntelSnapshot (index + contexts): what a worker process holds | **{:.1}** | build {:.2} s; transient peak during build +{:.1} MB; RSS +{:.1} MB |",
        snapshot_bytes as f64 / MB,
        build_secs,
        build_peak_extra as f64 / MB,
        rss1.saturating_sub(rss0) as f64 / 1024.0
    );
    println!(
        "| the IocContext list handed to the build (the server's loader makes it; consumed by the build) | {:.1} | every value, source, tag its own allocation |",
        contexts_bytes as f64 / MB
    );
    println!(
        "| IocIndex alone (hash maps, prefix tables) | {:.1} | {} keys, built in {:.2} s |",
        index_bytes as f64 / MB,
        index_keys,
        index_secs
    );

    // How many base events the snapshot matches (the match rate of the stream).
    let matched_base = base
        .iter()
        .filter(|d| {
            let mut d = (*d).clone();
            !snapshot
                .apply(
                    &mut d,
                    EventRef {
                        id: Uuid::nil(),
                        ts: 0,
                        agent_id: None,
                        retro: false,
                    },
                )
                .matches
                .is_empty()
        })
        .count();
    let match_rate = 100.0 * matched_base as f64 / base.len() as f64;
    println!(
        "\nstream: {} events per run in {} messages of {} ({:.1} MB of JSON); {:.2} % of the events match an indicator",
        o.events,
        messages.len(),
        o.batch,
        stream_bytes as f64 / MB,
        match_rate
    );
    drop(base);

    let handle = IntelHandle::default();
    handle.replace(snapshot);
    let empty = IntelSnapshot::default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let mut results = serde_json::Map::new();
    let mut modes: Vec<(&str, Vec<Run>, Vec<Run>)> = Vec::new();
    if o.full {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for round in 0..o.rounds {
            // Alternate which goes first, so drift on a shared machine hits both alike.
            for with in if round % 2 == 0 {
                [false, true]
            } else {
                [true, false]
            } {
                let run = if with {
                    rt.block_on(full_run(
                        &o,
                        &messages,
                        o.events,
                        handle.clone(),
                        &store_iocs,
                    ))
                } else {
                    rt.block_on(full_run(
                        &o,
                        &messages,
                        o.events,
                        IntelHandle::default(),
                        &[],
                    ))
                };
                eprintln!(
                    "full   round {round} {:>8}: {:>8.0} events/s ({:.2} s wall, {:.2} CPU-s), {} detections, {} intel matches",
                    if with { "with iocs" } else { "no iocs" },
                    run.eps(),
                    run.wall,
                    run.cpu,
                    run.detections,
                    run.intel_matches
                );
                if with { b.push(run) } else { a.push(run) }
            }
        }
        modes.push(("full", a, b));
    }
    if o.stage {
        let mut det = detector(&o);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let snap = handle.current();
        // Warm-up pass (caches, lazy DFA states), not counted.
        stage_run(&mut det, &messages[..messages.len().min(4)], &snap);
        for round in 0..o.rounds {
            for with in if round % 2 == 0 {
                [false, true]
            } else {
                [true, false]
            } {
                let run = stage_run(&mut det, &messages, if with { &snap } else { &empty });
                eprintln!(
                    "stage  round {round} {:>8}: {:>8.0} events/s ({:.2} s wall, {:.2} CPU-s), {} detections, {} intel matches in {} events",
                    if with { "with iocs" } else { "no iocs" },
                    run.eps(),
                    run.wall,
                    run.cpu,
                    run.detections,
                    run.intel_matches,
                    run.matched_events
                );
                if with { b.push(run) } else { a.push(run) }
            }
        }
        modes.push(("stage", a, b));
    }

    let apply_ns = apply_ns_per_event(&messages, &handle.current(), if o.smoke { 1 } else { 5 });
    println!(
        "\nintel stage alone (IntelSnapshot::apply over parsed events, median of passes): {:.2} µs per event",
        apply_ns / 1000.0
    );
    results.insert("apply_us_per_event".into(), json!(apply_ns / 1000.0));

    println!(
        "\n## throughput, no indicators vs {} indicators (median of {} runs each)",
        handle.current().len(),
        o.rounds
    );
    println!(
        "| what is timed | no IOCs events/s | with IOCs events/s | ratio | events/CPU-s no / with | ratio (CPU) | detections | intel matches |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (mode, a, b) in &modes {
        let (ea, eb) = (
            median(a.iter().map(Run::eps).collect()),
            median(b.iter().map(Run::eps).collect()),
        );
        let (ca, cb) = (
            median(a.iter().map(Run::eps_cpu).collect()),
            median(b.iter().map(Run::eps_cpu).collect()),
        );
        let what = if *mode == "full" {
            "full Worker: queue → parse → intel → Sigma → SQLite commit → matches → ack"
        } else {
            "worker CPU stage: parse → intel → Sigma (one thread)"
        };
        let det = b.first().map_or(0, |r| r.detections);
        let det_a = a.first().map_or(0, |r| r.detections);
        let im = b.first().map_or(0, |r| r.intel_matches);
        println!(
            "| {what} | {ea:.0} | {eb:.0} | **{:.3}** | {ca:.0} / {cb:.0} | {:.3} | {det_a} / {det} | {im} |",
            eb / ea,
            cb / ca
        );
        results.insert(
            (*mode).to_owned(),
            json!({
                "no_iocs_events_per_s": ea, "with_iocs_events_per_s": eb, "ratio": eb / ea,
                "no_iocs_events_per_cpu_s": ca, "with_iocs_events_per_cpu_s": cb, "ratio_cpu": cb / ca,
                "runs_no_iocs": a.iter().map(Run::eps).collect::<Vec<_>>(),
                "runs_with_iocs": b.iter().map(Run::eps).collect::<Vec<_>>(),
                "detections_no_iocs": det_a, "detections_with_iocs": det, "intel_matches": im,
            }),
        );
    }
    let full_ratio = results
        .get("full")
        .or_else(|| results.get("stage"))
        .and_then(|m| m["ratio"].as_f64())
        .unwrap_or(0.0);
    let snapshot_mb = snapshot_bytes as f64 / MB;
    println!();
    if o.iocs < 1_000_000 {
        println!("(fewer than 1,000,000 indicators: the bars below are for the full run only)");
    }
    println!(
        "bar: throughput with the IOCs within 10 % of none: {} ({:.1} %); matcher memory < 300 MB: {} ({:.1} MB)",
        if full_ratio >= 0.9 { "PASS" } else { "FAIL" },
        (1.0 - full_ratio) * 100.0,
        if snapshot_mb < 300.0 { "PASS" } else { "FAIL" },
        snapshot_mb
    );
    let summary = json!({
        "iocs": handle.current().len(),
        "planted": planted_n,
        "events_per_run": o.events,
        "rounds": o.rounds,
        "match_percent_of_events": match_rate,
        "snapshot_mb": snapshot_mb,
        "contexts_mb": contexts_bytes as f64 / MB,
        "index_mb": index_bytes as f64 / MB,
        "build_seconds": build_secs,
        "index_build_seconds": index_secs,
        "build_peak_extra_mb": build_peak_extra as f64 / MB,
        "rss_delta_mb": rss1.saturating_sub(rss0) as f64 / 1024.0,
        "throughput": results,
    });
    println!("{summary}");
    if let Some(path) = &o.json {
        std::fs::write(path, format!("{summary}\n")).expect("write --json");
    }
}
