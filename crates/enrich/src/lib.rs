//! GeoIP / ASN enrichment of normalized events from MaxMind-format (`.mmdb`) databases.
//!
//! The pipeline stage after normalization: [`Enricher::enrich`] reads the IP fields of an
//! ECS-style event (`source.ip`, `destination.ip`, `client.ip`, `server.ip`, `host.ip`, and the
//! Windows `winlog.event_data.{SourceIp, DestinationIp, IpAddress}` when the ECS field is
//! missing) and adds `<field>.geo.*` and `<field>.as.*` next to each address. See the crate
//! README for the field list and the configuration.
//!
//! Databases: GeoLite2 / GeoIP2 City or Country and GeoLite2 ASN, or DB-IP "lite" files (same
//! record layouts), read with the `maxminddb` crate. Results are cached per IP address.

#![warn(missing_docs)]

mod cache;
mod ip;
#[cfg(feature = "test-util")]
pub mod testutil;

use std::fmt;
use std::net::IpAddr;
use std::ops::AddAssign;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use maxminddb::{Reader, geoip2};
use serde_json::{Map, Value};

pub use ip::{is_public, parse_ip};

use cache::IpCache;

/// The ECS objects whose `ip` is enriched with `geo` and `as`.
pub const ECS_TARGETS: [&str; 4] = ["source", "destination", "client", "server"];

/// Windows event data fields read when the ECS object has no `ip`: (field, ECS object).
pub const WINLOG_FALLBACKS: [(&str, &str); 3] = [
    ("SourceIp", "source"),
    ("DestinationIp", "destination"),
    ("IpAddress", "source"),
];

/// How many entries of a `host.ip` array are examined at most.
const MAX_HOST_IPS: usize = 16;

/// Languages the GeoIP2 `names` maps offer.
pub const LANGUAGES: [&str; 8] = ["en", "ru", "de", "es", "fr", "ja", "pt-BR", "zh-CN"];

/// Enricher configuration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnrichConfig {
    /// A City or Country database (GeoLite2-City, GeoIP2-City, GeoLite2-Country,
    /// DBIP-City-Lite, ...). `None`: no `geo` fields.
    pub city_db: Option<PathBuf>,
    /// An ASN database (GeoLite2-ASN, DBIP-ASN-Lite). `None`: no `as` fields.
    pub asn_db: Option<PathBuf>,
    /// Addresses whose results are cached (0 disables the cache). Default 65,536.
    pub cache_size: usize,
    /// Language of the place names (one of [`LANGUAGES`]); English is used where a name is
    /// missing in that language. Default `"en"`.
    pub language: String,
    /// Whether non-public addresses get `<field>.geo.name: "private"`. Default false.
    pub tag_private: bool,
    /// Whether [`maxminddb::Reader::verify`] checks the whole file (every tree node and record)
    /// on open and reload, so that a damaged file is a startup error rather than failed lookups
    /// later. Default true; it costs about 60 ms for a 13 MB file. Without it the metadata and
    /// the tree's layout are still checked.
    pub verify: bool,
}

impl Default for EnrichConfig {
    fn default() -> Self {
        EnrichConfig {
            city_db: None,
            asn_db: None,
            cache_size: 65_536,
            language: "en".to_owned(),
            tag_private: false,
            verify: true,
        }
    }
}

/// Which of the two databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DbKind {
    /// The City/Country database (`city_db`).
    City,
    /// The ASN database (`asn_db`).
    Asn,
}

impl fmt::Display for DbKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DbKind::City => "city",
            DbKind::Asn => "ASN",
        })
    }
}

/// Errors from opening or reloading the databases. Enriching an event never fails.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    /// The file could not be read.
    #[error("cannot read {kind} database {}: {source}", path.display())]
    Io {
        /// Which database.
        kind: DbKind,
        /// The configured path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid MaxMind DB file.
    #[error("{kind} database {} is not a valid MaxMind DB file: {source}", path.display())]
    Invalid {
        /// Which database.
        kind: DbKind,
        /// The configured path.
        path: PathBuf,
        /// What the reader found wrong.
        #[source]
        source: maxminddb::MaxMindDbError,
    },
    /// The file is a MaxMind DB of the wrong kind (e.g. an ASN database given as `city_db`).
    #[error(
        "{kind} database {} has type {database_type:?}; expected {expected}",
        path.display()
    )]
    WrongType {
        /// Which database.
        kind: DbKind,
        /// The configured path.
        path: PathBuf,
        /// The file's `database_type` metadata.
        database_type: String,
        /// What was expected.
        expected: &'static str,
    },
    /// The configured language is not one the databases carry.
    #[error("unsupported language {0:?} (supported: en, ru, de, es, fr, ja, pt-BR, zh-CN)")]
    Language(String),
}

/// Counters for one [`Enricher::enrich`] call; add them up with `+=`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EnrichStats {
    /// IP fields holding a valid address.
    pub addresses: u64,
    /// IP fields whose value is not an address (skipped). Empty text and `-` are not counted.
    pub invalid: u64,
    /// Private, loopback, link-local or reserved addresses (not looked up).
    pub non_public: u64,
    /// Public addresses answered from the cache.
    pub cache_hits: u64,
    /// Public addresses looked up in the databases (cache misses).
    pub lookups: u64,
    /// `geo` objects written.
    pub geo_added: u64,
    /// `as` objects written.
    pub as_added: u64,
    /// Public addresses for which no database had a record.
    pub not_found: u64,
    /// Database lookups that failed (corrupt record); the address is treated as not found.
    pub lookup_errors: u64,
}

impl AddAssign for EnrichStats {
    fn add_assign(&mut self, o: Self) {
        self.addresses += o.addresses;
        self.invalid += o.invalid;
        self.non_public += o.non_public;
        self.cache_hits += o.cache_hits;
        self.lookups += o.lookups;
        self.geo_added += o.geo_added;
        self.as_added += o.as_added;
        self.not_found += o.not_found;
        self.lookup_errors += o.lookup_errors;
    }
}

/// What an open database is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseInfo {
    /// Which database.
    pub kind: DbKind,
    /// The configured path.
    pub path: PathBuf,
    /// `database_type` from the metadata, e.g. `"GeoLite2-City"`.
    pub database_type: String,
    /// `build_epoch` from the metadata (seconds since the Unix epoch).
    pub build_epoch: u64,
    /// 4 or 6.
    pub ip_version: u16,
    /// Search tree nodes.
    pub node_count: u32,
}

/// The modification time, length and (on Unix) inode of a database file, to notice
/// replacements.
type FileStamp = (Option<SystemTime>, u64, u64);

fn stamp(path: &Path) -> std::io::Result<FileStamp> {
    let m = std::fs::metadata(path)?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Ok((m.modified().ok(), m.len(), inode))
}

struct Database {
    info: DatabaseInfo,
    stamp: FileStamp,
    reader: Reader<Vec<u8>>,
}

impl Database {
    fn open(kind: DbKind, path: &Path, verify: bool) -> Result<Database, EnrichError> {
        let io = |source| EnrichError::Io {
            kind,
            path: path.to_owned(),
            source,
        };
        let invalid = |source| EnrichError::Invalid {
            kind,
            path: path.to_owned(),
            source,
        };
        // Stamp first: a file replaced while it is read is reloaded again on the next check.
        let stamp = stamp(path).map_err(io)?;
        let bytes = std::fs::read(path).map_err(io)?;
        let reader = Reader::from_source(bytes).map_err(invalid)?;
        if verify {
            reader.verify().map_err(invalid)?;
        }
        let m = reader.metadata();
        let ty = m.database_type.to_ascii_lowercase();
        let (wrong, expected) = match kind {
            DbKind::City => (ty.contains("asn"), "a City or Country database"),
            DbKind::Asn => (
                ty.contains("city") || ty.contains("country"),
                "an ASN database",
            ),
        };
        if wrong {
            return Err(EnrichError::WrongType {
                kind,
                path: path.to_owned(),
                database_type: m.database_type.clone(),
                expected,
            });
        }
        let info = DatabaseInfo {
            kind,
            path: path.to_owned(),
            database_type: m.database_type.clone(),
            build_epoch: m.build_epoch,
            ip_version: m.ip_version,
            node_count: m.node_count,
        };
        Ok(Database {
            info,
            stamp,
            reader,
        })
    }

    /// Whether the address can be in this database at all.
    fn covers(&self, ip: IpAddr) -> bool {
        self.info.ip_version == 6 || ip.is_ipv4()
    }
}

/// What the databases say about one public address.
#[derive(Debug, Default)]
struct IpInfo {
    geo: Option<Map<String, Value>>,
    asn: Option<Map<String, Value>>,
}

/// The databases of one load and the cache of their answers (a reload starts a new cache, so
/// answers from old files are never mixed in).
struct Loaded {
    city: Option<Database>,
    asn: Option<Database>,
    cache: IpCache<IpInfo>,
}

impl Loaded {
    fn open(config: &EnrichConfig) -> Result<Loaded, EnrichError> {
        let city = config
            .city_db
            .as_deref()
            .map(|p| Database::open(DbKind::City, p, config.verify))
            .transpose()?;
        let asn = config
            .asn_db
            .as_deref()
            .map(|p| Database::open(DbKind::Asn, p, config.verify))
            .transpose()?;
        Ok(Loaded {
            city,
            asn,
            cache: IpCache::new(config.cache_size),
        })
    }

    fn databases(&self) -> impl Iterator<Item = &Database> {
        self.city.iter().chain(self.asn.iter())
    }

    /// One log line per database, e.g. "GeoIP database opened".
    fn log_databases(&self, what_happened: &str) {
        for db in self.databases() {
            tracing::info!(
                kind = %db.info.kind,
                path = %db.info.path.display(),
                database_type = %db.info.database_type,
                build_epoch = db.info.build_epoch,
                "GeoIP database {what_happened}"
            );
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    En,
    Ru,
    De,
    Es,
    Fr,
    Ja,
    PtBr,
    ZhCn,
}

impl Lang {
    /// A language code, case-insensitively (`"ru"`, `"pt-BR"`, `"zh-cn"`).
    fn parse(s: &str) -> Option<Lang> {
        Some(match s.to_ascii_lowercase().as_str() {
            "en" => Lang::En,
            "ru" => Lang::Ru,
            "de" => Lang::De,
            "es" => Lang::Es,
            "fr" => Lang::Fr,
            "ja" => Lang::Ja,
            "pt-br" => Lang::PtBr,
            "zh-cn" => Lang::ZhCn,
            _ => return None,
        })
    }

    fn pick<'a>(self, n: &geoip2::Names<'a>) -> Option<&'a str> {
        let chosen = match self {
            Lang::En => n.english,
            Lang::Ru => n.russian,
            Lang::De => n.german,
            Lang::Es => n.spanish,
            Lang::Fr => n.french,
            Lang::Ja => n.japanese,
            Lang::PtBr => n.brazilian_portuguese,
            Lang::ZhCn => n.simplified_chinese,
        };
        chosen.or(n.english)
    }
}

/// What one IP field turned out to be.
enum Examined {
    NonPublic,
    Public(Arc<IpInfo>),
}

/// Adds GeoIP/ASN fields to events. `Send + Sync`: share one (e.g. in an `Arc`) between
/// worker threads or tasks.
pub struct Enricher {
    config: EnrichConfig,
    lang: Lang,
    /// `{"name": "private"}`.
    private_tag: Map<String, Value>,
    loaded: RwLock<Arc<Loaded>>,
}

impl fmt::Debug for Enricher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enricher")
            .field("config", &self.config)
            .field("databases", &self.databases())
            .finish()
    }
}

impl Enricher {
    /// Opens the configured databases. A missing, unreadable, corrupt or wrong-kind file is an
    /// error naming its path. With neither database configured the enricher only classifies
    /// addresses (and tags them when `tag_private` is on).
    pub fn open(config: EnrichConfig) -> Result<Enricher, EnrichError> {
        let lang = Lang::parse(&config.language)
            .ok_or_else(|| EnrichError::Language(config.language.clone()))?;
        let loaded = Loaded::open(&config)?;
        loaded.log_databases("opened");
        let mut private_tag = Map::new();
        private_tag.insert("name".to_owned(), Value::from("private"));
        Ok(Enricher {
            config,
            lang,
            private_tag,
            loaded: RwLock::new(Arc::new(loaded)),
        })
    }

    /// The configuration the enricher was opened with.
    pub fn config(&self) -> &EnrichConfig {
        &self.config
    }

    /// The databases in use.
    pub fn databases(&self) -> Vec<DatabaseInfo> {
        self.current().databases().map(|d| d.info.clone()).collect()
    }

    /// Addresses currently cached.
    pub fn cached_addresses(&self) -> usize {
        self.current().cache.len()
    }

    fn current(&self) -> Arc<Loaded> {
        Arc::clone(&self.loaded.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Opens the configured files again and switches to them (with an empty cache). On error
    /// the databases in use are kept.
    pub fn reload(&self) -> Result<(), EnrichError> {
        let fresh = Arc::new(Loaded::open(&self.config)?);
        fresh.log_databases("reloaded");
        *self.loaded.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }

    /// Reloads when a database file's modification time, length or (on Unix) inode changed
    /// since it was opened. Returns whether it reloaded. Call it periodically (the enricher starts no thread
    /// of its own); replace files atomically (write a temporary file, then rename it over).
    /// On error (e.g. a half-written file) the databases in use are kept and the next call
    /// tries again.
    pub fn reload_if_changed(&self) -> Result<bool, EnrichError> {
        let current = self.current();
        let mut changed = false;
        for db in current.databases() {
            let now = stamp(&db.info.path).map_err(|source| EnrichError::Io {
                kind: db.info.kind,
                path: db.info.path.clone(),
                source,
            })?;
            changed |= now != db.stamp;
        }
        if changed {
            self.reload()?;
        }
        Ok(changed)
    }

    /// Adds `geo` / `as` fields next to the IP fields of `event` (see the crate docs). Never
    /// fails: values that are not addresses, non-public addresses and addresses without a
    /// record are skipped and counted.
    pub fn enrich(&self, event: &mut Value) -> EnrichStats {
        let mut stats = EnrichStats::default();
        let Some(root) = event.as_object_mut() else {
            return stats;
        };
        let loaded = self.current();

        for target in ECS_TARGETS {
            let Some(Value::Object(obj)) = root.get_mut(target) else {
                continue;
            };
            let Some(value) = obj.get("ip") else {
                continue;
            };
            if let Some(found) = self.examine(&loaded, value, &mut stats) {
                self.apply(obj, &found, true, &mut stats);
            }
        }

        self.enrich_host(&loaded, root, &mut stats);
        self.enrich_winlog(&loaded, root, &mut stats);
        stats
    }

    /// `host.ip` (a string or an array): `host.geo` from the first public address with a City
    /// record. ECS has no `host.as`; hosts are never tagged "private".
    fn enrich_host(&self, loaded: &Loaded, root: &mut Map<String, Value>, stats: &mut EnrichStats) {
        let Some(Value::Object(host)) = root.get_mut("host") else {
            return;
        };
        let found = match host.get("ip") {
            Some(Value::Array(items)) => items
                .iter()
                .take(MAX_HOST_IPS)
                .filter_map(|v| self.examine(loaded, v, stats))
                .find_map(|e| match e {
                    Examined::Public(info) if info.geo.is_some() => Some(info),
                    _ => None,
                }),
            Some(v) => match self.examine(loaded, v, stats) {
                Some(Examined::Public(info)) => Some(info),
                _ => None,
            },
            None => None,
        };
        if let Some(info) = found {
            self.apply(host, &Examined::Public(info), false, stats);
        }
    }

    /// `winlog.event_data.{SourceIp, DestinationIp, IpAddress}` for events whose ECS object has
    /// no `ip`: the fields go to `source` / `destination` (created if needed; `ip` itself is
    /// not copied, that is the normalizer's job).
    fn enrich_winlog(
        &self,
        loaded: &Loaded,
        root: &mut Map<String, Value>,
        stats: &mut EnrichStats,
    ) {
        let mut done: [Option<&str>; WINLOG_FALLBACKS.len()] = [None; WINLOG_FALLBACKS.len()];
        for (i, (field, target)) in WINLOG_FALLBACKS.into_iter().enumerate() {
            if done.contains(&Some(target)) {
                continue;
            }
            match root.get(target) {
                None => {}
                Some(Value::Object(obj)) if !obj.contains_key("ip") => {}
                // Has an ECS ip (already handled) or is not an object.
                Some(_) => continue,
            }
            let Some(value) = root
                .get("winlog")
                .and_then(|w| w.get("event_data"))
                .and_then(|d| d.get(field))
            else {
                continue;
            };
            let Some(found) = self.examine(loaded, value, stats) else {
                continue;
            };
            done[i] = Some(target);
            if matches!(found, Examined::NonPublic) && !self.config.tag_private {
                continue;
            }
            if let Examined::Public(info) = &found
                && info.geo.is_none()
                && info.asn.is_none()
            {
                stats.not_found += 1;
                continue;
            }
            let obj = root
                .entry(target)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(obj) = obj {
                self.apply(obj, &found, true, stats);
            }
        }
    }

    /// Parses and classifies one IP field; looks public addresses up. `None`: nothing to add.
    fn examine(&self, loaded: &Loaded, value: &Value, stats: &mut EnrichStats) -> Option<Examined> {
        let text = match value {
            Value::String(s) => s.as_str(),
            Value::Null => return None,
            _ => {
                stats.invalid += 1;
                return None;
            }
        };
        if ip::is_placeholder(text) {
            return None;
        }
        let Some(ip) = parse_ip(text) else {
            stats.invalid += 1;
            return None;
        };
        stats.addresses += 1;
        if !is_public(ip) {
            stats.non_public += 1;
            return Some(Examined::NonPublic);
        }
        if loaded.city.is_none() && loaded.asn.is_none() {
            return None;
        }
        Some(Examined::Public(self.resolve(loaded, ip, stats)))
    }

    fn resolve(&self, loaded: &Loaded, ip: IpAddr, stats: &mut EnrichStats) -> Arc<IpInfo> {
        if let Some(hit) = loaded.cache.get(&ip) {
            stats.cache_hits += 1;
            return hit;
        }
        stats.lookups += 1;
        let mut info = IpInfo::default();
        if let Some(db) = loaded.city.as_ref().filter(|db| db.covers(ip)) {
            match db
                .reader
                .lookup(ip)
                .and_then(|r| r.decode::<geoip2::City>())
            {
                Ok(Some(city)) => info.geo = geo_fields(&city, self.lang),
                Ok(None) => {}
                Err(e) => {
                    stats.lookup_errors += 1;
                    tracing::debug!(%ip, path = %db.info.path.display(), error = %e, "city lookup failed");
                }
            }
        }
        if let Some(db) = loaded.asn.as_ref().filter(|db| db.covers(ip)) {
            match db.reader.lookup(ip).and_then(|r| r.decode::<geoip2::Asn>()) {
                Ok(Some(asn)) => info.asn = as_fields(&asn),
                Ok(None) => {}
                Err(e) => {
                    stats.lookup_errors += 1;
                    tracing::debug!(%ip, path = %db.info.path.display(), error = %e, "ASN lookup failed");
                }
            }
        }
        let info = Arc::new(info);
        loaded.cache.insert(ip, Arc::clone(&info));
        info
    }

    /// Writes what was found into the ECS object (`source`, ...).
    fn apply(
        &self,
        obj: &mut Map<String, Value>,
        found: &Examined,
        with_as: bool,
        stats: &mut EnrichStats,
    ) {
        match found {
            Examined::NonPublic => {
                if self.config.tag_private {
                    merge(obj, "geo", &self.private_tag);
                }
            }
            Examined::Public(info) => {
                let mut any = false;
                if let Some(geo) = &info.geo {
                    merge(obj, "geo", geo);
                    stats.geo_added += 1;
                    any = true;
                }
                if with_as && let Some(asn) = &info.asn {
                    merge(obj, "as", asn);
                    stats.as_added += 1;
                    any = true;
                }
                if !any {
                    stats.not_found += 1;
                }
            }
        }
    }
}

/// Sets `obj[key][k] = v` for each pair of `fields`, keeping other keys of an existing
/// `obj[key]` object (a non-object `obj[key]` is replaced).
fn merge(obj: &mut Map<String, Value>, key: &str, fields: &Map<String, Value>) {
    match obj.get_mut(key) {
        Some(Value::Object(target)) => {
            for (k, v) in fields {
                target.insert(k.clone(), v.clone());
            }
        }
        _ => {
            obj.insert(key.to_owned(), Value::Object(fields.clone()));
        }
    }
}

/// ECS `geo.*` fields from a City/Country record; `None` when the record has none of them.
fn geo_fields(city: &geoip2::City<'_>, lang: Lang) -> Option<Map<String, Value>> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            m.insert(k.to_owned(), Value::from(v));
        }
    };
    put("continent_code", city.continent.code);
    put("continent_name", lang.pick(&city.continent.names));
    put("country_iso_code", city.country.iso_code);
    put("country_name", lang.pick(&city.country.names));
    if let Some(sub) = city.subdivisions.first() {
        // Elastic's convention: "US-NY".
        let code = match (city.country.iso_code, sub.iso_code) {
            (Some(c), Some(s)) => Some(format!("{c}-{s}")),
            (None, Some(s)) => Some(s.to_owned()),
            _ => None,
        };
        put("region_iso_code", code.as_deref());
        put("region_name", lang.pick(&sub.names));
    }
    put("city_name", lang.pick(&city.city.names));
    put("postal_code", city.postal.code);
    put("timezone", city.location.time_zone);
    if let (Some(lat), Some(lon)) = (city.location.latitude, city.location.longitude)
        && lat.is_finite()
        && lon.is_finite()
    {
        let mut loc = Map::new();
        loc.insert("lat".to_owned(), Value::from(lat));
        loc.insert("lon".to_owned(), Value::from(lon));
        m.insert("location".to_owned(), Value::Object(loc));
    }
    (!m.is_empty()).then_some(m)
}

/// ECS `as.*` fields from an ASN record.
fn as_fields(asn: &geoip2::Asn<'_>) -> Option<Map<String, Value>> {
    let mut m = Map::new();
    if let Some(n) = asn.autonomous_system_number {
        m.insert("number".to_owned(), Value::from(n));
    }
    if let Some(org) = asn.autonomous_system_organization.filter(|o| !o.is_empty()) {
        let mut o = Map::new();
        o.insert("name".to_owned(), Value::from(org));
        m.insert("organization".to_owned(), Value::Object(o));
    }
    (!m.is_empty()).then_some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enricher_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Enricher>();
    }

    #[test]
    fn unknown_language_is_rejected() {
        let err = Enricher::open(EnrichConfig {
            language: "xx".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(matches!(err, EnrichError::Language(_)), "{err}");
    }

    #[test]
    fn without_databases_only_tags() {
        let e = Enricher::open(EnrichConfig {
            tag_private: true,
            ..Default::default()
        })
        .unwrap();
        let mut ev =
            serde_json::json!({"source": {"ip": "10.1.2.3"}, "destination": {"ip": "8.8.8.8"}});
        let s = e.enrich(&mut ev);
        assert_eq!(ev["source"]["geo"]["name"], "private");
        assert!(ev["destination"].get("geo").is_none());
        assert_eq!((s.addresses, s.non_public, s.lookups), (2, 1, 0));
    }
}
