//! Sources as configuration: one serde shape for every kind, and one `sync(cursor)` for all
//! of them — what a scheduler, the server or `dozor intel sync` stores and runs.
//!
//! ```json
//! {"name": "circl", "kind": "misp_feed", "location": "https://www.circl.lu/doc/misp/feed-osint",
//!  "http": {"proxy": "http://proxy:3128"}}
//! ```

use std::path::PathBuf;
use std::time::Duration;

use dozor_intel::IocKind;
use serde::{Deserialize, Serialize};

use crate::feed::MispFeed;
use crate::http::{HttpSettings, PemSource};
use crate::list::{CsvSettings, ListSettings, ValueType, parse_csv, parse_freetext};
use crate::misp::{AttributeQuery, MispClient, Since};
use crate::taxii::{TaxiiAuth, TaxiiClient};
use crate::{SourceError, SyncBatch, push_tag, stix};

/// A secret in configuration (an API key, a password, a token): serialized as it is, shown
/// as `***` by `Debug` so a logged configuration leaks nothing.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// HTTP settings as configuration (see [`HttpSettings`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// PEM file of the CAs to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// SPKI SHA-256 pins, hex.
    pub pins_sha256: Vec<String>,
    pub proxy: Option<String>,
    pub connect_timeout_secs: Option<u64>,
    pub timeout_secs: Option<u64>,
}

impl HttpConfig {
    pub fn settings(&self) -> HttpSettings {
        let mut s = HttpSettings {
            ca_pem: self.ca_file.clone().map(PemSource::File),
            pins_sha256: self.pins_sha256.clone(),
            proxy: self.proxy.clone(),
            ..HttpSettings::default()
        };
        if let Some(t) = self.connect_timeout_secs {
            s.connect_timeout = Duration::from_secs(t);
        }
        if let Some(t) = self.timeout_secs {
            s.timeout = Duration::from_secs(t);
        }
        s
    }
}

/// One configured source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceSpec {
    /// The name in every indicator's source.
    pub name: String,
    #[serde(flatten)]
    pub config: SourceConfig,
    #[serde(default)]
    pub http: HttpConfig,
    /// Tags added to every indicator of this source (a TLP, the feed's name).
    #[serde(default)]
    pub add_tags: Vec<String>,
    /// Confidence given to indicators that carry none.
    #[serde(default)]
    pub confidence: Option<u8>,
    /// Indicators expire this many days after the sync unless the source says otherwise.
    #[serde(default)]
    pub expire_after_days: Option<u32>,
}

/// The kinds of source and their own settings. `location` is a path or an `http(s)://` URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    MispRest {
        url: String,
        key: Secret,
        /// `events/restSearch` instead of `attributes/restSearch`.
        #[serde(default)]
        events: bool,
        #[serde(default)]
        tags: Vec<String>,
        #[serde(default)]
        not_tags: Vec<String>,
        #[serde(default)]
        types: Vec<String>,
        #[serde(default)]
        to_ids: Option<bool>,
        #[serde(default)]
        published: Option<bool>,
        /// `last` for the first sync (`30d`); later syncs go on from the cursor.
        #[serde(default)]
        first_sync_last: Option<String>,
        #[serde(default)]
        page_size: Option<u32>,
        /// See [`AttributeQuery::include_decay_score`].
        #[serde(default)]
        include_decay_score: bool,
        /// See [`AttributeQuery::skip_decayed`].
        #[serde(default)]
        skip_decayed: bool,
    },
    MispFeed {
        location: String,
    },
    StixBundle {
        location: String,
    },
    Taxii {
        api_root: String,
        collection: String,
        #[serde(default)]
        user: Option<String>,
        #[serde(default)]
        password: Option<Secret>,
        #[serde(default)]
        token: Option<Secret>,
        #[serde(default)]
        page_size: Option<u32>,
    },
    Csv {
        location: String,
        /// 1-based, as people count columns.
        value_column: usize,
        /// A Dozor kind (`ip`, `domain`, …) for every row …
        #[serde(default)]
        ioc_kind: Option<String>,
        /// … or a MISP type …
        #[serde(default)]
        misp_type: Option<String>,
        /// … or the 1-based column holding the type; none of the three: guessed.
        #[serde(default)]
        type_column: Option<usize>,
        #[serde(default)]
        delimiter: Option<char>,
        #[serde(default)]
        header_rows: usize,
        #[serde(default)]
        comment_prefix: Option<String>,
    },
    Freetext {
        location: String,
        #[serde(default)]
        comment_prefix: Option<String>,
    },
}

fn is_url(location: &str) -> bool {
    location.starts_with("https://") || location.starts_with("http://")
}

async fn read_location(location: &str, http: &HttpSettings) -> Result<Vec<u8>, SourceError> {
    if is_url(location) {
        crate::list::fetch(location, http).await
    } else {
        crate::list::read(std::path::Path::new(location))
    }
}

impl SourceSpec {
    /// Runs one sync from `cursor` (the previous batch's; `None` = from the start).
    pub async fn sync(&self, cursor: Option<&str>) -> Result<SyncBatch, SourceError> {
        let http = self.http.settings();
        let mut batch = match &self.config {
            SourceConfig::MispRest {
                url,
                key,
                events,
                tags,
                not_tags,
                types,
                to_ids,
                published,
                first_sync_last,
                page_size,
                include_decay_score,
                skip_decayed,
            } => {
                let client = MispClient::new(url, &key.0, &http)?.with_source_name(&self.name);
                let mut query = AttributeQuery {
                    tags: tags.clone(),
                    not_tags: not_tags.clone(),
                    types: types.clone(),
                    to_ids: *to_ids,
                    published: *published,
                    include_decay_score: *include_decay_score,
                    skip_decayed: *skip_decayed,
                    ..AttributeQuery::default()
                };
                if let Some(p) = page_size {
                    query.page_size = *p;
                }
                if let Some(last) = first_sync_last {
                    query.since = Since::Last(last.clone());
                }
                let query = query.since_cursor(cursor)?;
                if *events {
                    client.events(&query).await?
                } else {
                    client.attributes(&query).await?
                }
            }
            SourceConfig::MispFeed { location } => {
                let feed = if is_url(location) {
                    MispFeed::url(location, &http, &self.name)?
                } else {
                    MispFeed::dir(
                        crate::feed::feed_dir(std::path::Path::new(location)),
                        &self.name,
                    )
                };
                feed.sync(cursor).await?
            }
            SourceConfig::StixBundle { location } => {
                let bytes = read_location(location, &http).await?;
                stix::parse_bundle(location, &bytes, &self.name)?
            }
            SourceConfig::Taxii {
                api_root,
                collection,
                user,
                password,
                token,
                page_size,
            } => {
                let auth = match (user, password, token) {
                    (_, _, Some(t)) => TaxiiAuth::Bearer(t.0.clone()),
                    (Some(u), p, None) => TaxiiAuth::Basic {
                        user: u.clone(),
                        password: p.as_ref().map(|p| p.0.clone()).unwrap_or_default(),
                    },
                    _ => TaxiiAuth::None,
                };
                let mut client = TaxiiClient::new(&http, auth, &self.name)?;
                client.page_size = *page_size;
                client.objects(api_root, collection, cursor).await?
            }
            SourceConfig::Csv {
                location,
                value_column,
                ioc_kind,
                misp_type,
                type_column,
                delimiter,
                header_rows,
                comment_prefix,
            } => {
                let column = |c: usize, what: &str| {
                    c.checked_sub(1)
                        .ok_or_else(|| SourceError::Config(format!("{what} counts from 1, got 0")))
                };
                let value_type = match (ioc_kind, misp_type, type_column) {
                    (Some(k), None, None) => {
                        ValueType::Kind(IocKind::from_name(k).ok_or_else(|| {
                            SourceError::Config(format!("{k:?} is not an IOC kind"))
                        })?)
                    }
                    (None, Some(t), None) => ValueType::MispType(t.clone()),
                    (None, None, Some(c)) => ValueType::Column(column(*c, "type_column")?),
                    (None, None, None) => ValueType::Guess,
                    _ => {
                        return Err(SourceError::Config(
                            "give at most one of ioc_kind, misp_type and type_column".into(),
                        ));
                    }
                };
                let mut settings = CsvSettings::new(
                    &self.name,
                    column(*value_column, "value_column")?,
                    value_type,
                );
                if let Some(d) = delimiter {
                    settings.delimiter = u8::try_from(*d).map_err(|_| {
                        SourceError::Config(format!("delimiter {d:?} is not one byte"))
                    })?;
                }
                settings.header_rows = *header_rows;
                if let Some(p) = comment_prefix {
                    settings.list.comment_prefix = Some(p.clone());
                }
                let bytes = read_location(location, &http).await?;
                parse_csv(location, &bytes, &settings)
            }
            SourceConfig::Freetext {
                location,
                comment_prefix,
            } => {
                let mut settings = ListSettings::new(&self.name);
                if let Some(p) = comment_prefix {
                    settings.comment_prefix = Some(p.clone());
                }
                let bytes = read_location(location, &http).await?;
                parse_freetext(&String::from_utf8_lossy(&bytes), &settings)
            }
        };
        let expires = self
            .expire_after_days
            .map(|d| crate::time::now_ms() + i64::from(d) * 86_400_000);
        for ioc in &mut batch.iocs {
            for t in &self.add_tags {
                push_tag(&mut ioc.tags, t);
            }
            if ioc.confidence.is_none() {
                ioc.confidence = self.confidence;
            }
            if ioc.expires.is_none() {
                ioc.expires = expires;
            }
        }
        Ok(batch)
    }
}
