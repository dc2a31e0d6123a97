//! MISP REST: `attributes/restSearch` and `events/restSearch` with paging, `sightings/add`.
//!
//! Every request carries `Authorization: <key>` and `Accept`/`Content-Type:
//! application/json`. Searches page with `limit` + `page` until a page comes back shorter
//! than `limit`. The cursor of a batch is the newest attribute (or event) `timestamp` seen, in
//! epoch seconds; [`AttributeQuery::since_cursor`] turns it into the `timestamp` filter of
//! the next sync (MISP's filter is inclusive, so the boundary second is fetched again —
//! duplicates by (kind, value) are the store's to merge).

use serde_json::{Map, Value, json};

use crate::http::{Http, HttpSettings};
use crate::misp_event::{EventContext, import_attribute, import_event};
use crate::time::epoch_seconds;
use crate::{SourceError, SyncBatch};

pub use crate::misp_event::{ATTRIBUTE_ID_PREFIX, EVENT_ID_PREFIX};

/// Where a search starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Since {
    /// Everything.
    #[default]
    All,
    /// Attributes (events) changed at or after this epoch second (`timestamp`).
    Timestamp(i64),
    /// Published within this span (`last`: `7d`, `12h`, `30m`).
    Last(String),
}

/// Filters of a restSearch. The defaults fetch everything, 1,000 per page.
#[derive(Debug, Clone)]
pub struct AttributeQuery {
    /// Tags an attribute (or its event) must carry (any of them); MISP's `tags`.
    pub tags: Vec<String>,
    /// Tags that exclude (sent as `!tag`).
    pub not_tags: Vec<String>,
    /// MISP attribute types (`ip-dst`, `domain`, …); empty = all.
    pub types: Vec<String>,
    /// `to_ids` filter; `None` = both.
    pub to_ids: Option<bool>,
    /// Only from published events (`Some(true)`), only unpublished, or both.
    pub published: Option<bool>,
    pub since: Since,
    /// Page size (`limit`); at least 1.
    pub page_size: u32,
    /// Stop after this many pages (a guard against a server that ignores `page`).
    pub max_pages: u32,
    /// Extra restSearch parameters, sent as they are (`org`, `category`, `enforceWarninglist`).
    pub extra: Map<String, Value>,
    /// Ask MISP for each attribute's decay score (`includeDecayScore`); the score becomes the
    /// confidence of indicators without a `misp:confidence-level` tag.
    pub include_decay_score: bool,
    /// Report attributes every decaying model calls decayed, instead of importing them.
    /// Done here, page by page, rather than with MISP's `excludeDecayed` (which filters after
    /// paging, so pages come back short and paging stops early).
    pub skip_decayed: bool,
}

impl Default for AttributeQuery {
    fn default() -> Self {
        AttributeQuery {
            tags: Vec::new(),
            not_tags: Vec::new(),
            types: Vec::new(),
            to_ids: None,
            published: None,
            since: Since::All,
            page_size: 1000,
            max_pages: 100_000,
            extra: Map::new(),
            include_decay_score: false,
            skip_decayed: false,
        }
    }
}

impl AttributeQuery {
    /// Continues from a previous batch's cursor (an epoch second); an unparsable cursor is a
    /// settings error.
    pub fn since_cursor(mut self, cursor: Option<&str>) -> Result<Self, SourceError> {
        if let Some(c) = cursor {
            let t = c.trim().parse::<i64>().map_err(|_| {
                SourceError::Config(format!("MISP cursor {c:?} is not an epoch second"))
            })?;
            self.since = Since::Timestamp(t);
        }
        Ok(self)
    }

    /// The restSearch body of page `page` (from 1).
    pub fn body(&self, page: u32) -> Value {
        let mut body = self.extra.clone();
        body.insert("returnFormat".into(), "json".into());
        body.insert("page".into(), page.into());
        body.insert("limit".into(), self.page_size.max(1).into());
        let mut tags: Vec<Value> = self.tags.iter().map(|t| t.as_str().into()).collect();
        tags.extend(self.not_tags.iter().map(|t| format!("!{t}").into()));
        if !tags.is_empty() {
            body.insert("tags".into(), tags.into());
        }
        if !self.types.is_empty() {
            body.insert("type".into(), self.types.clone().into());
        }
        if let Some(t) = self.to_ids {
            body.insert("to_ids".into(), u8::from(t).into());
        }
        if let Some(p) = self.published {
            body.insert("published".into(), u8::from(p).into());
        }
        match &self.since {
            Since::All => {}
            Since::Timestamp(t) => {
                body.insert("timestamp".into(), (*t).into());
            }
            Since::Last(span) => {
                body.insert("last".into(), span.as_str().into());
            }
        }
        body.insert("includeEventTags".into(), 1.into());
        body.insert("includeEventUuid".into(), 1.into());
        if self.include_decay_score || self.skip_decayed {
            body.insert("includeDecayScore".into(), 1.into());
        }
        Value::Object(body)
    }
}

/// `(score, decayed)` of an attribute's `decay_score` list (one entry per decaying model): the
/// highest score, and decayed when every model says so.
fn decay_of(attr: &Value) -> Option<(f64, bool)> {
    let models = attr.get("decay_score")?.as_array()?;
    let mut best: Option<f64> = None;
    let mut all_decayed = true;
    for m in models {
        let score = match m.get("score") {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        }?;
        best = Some(best.map_or(score, |b: f64| b.max(score)));
        all_decayed &= m.get("decayed").and_then(Value::as_bool).unwrap_or(false);
    }
    best.map(|b| (b, all_decayed))
}

/// A sighting to report to MISP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    /// The attribute the sighting is for (preferred) …
    pub attribute_uuid: Option<String>,
    /// … or a value, which MISP matches against all attributes.
    pub value: Option<String>,
    /// Epoch seconds.
    pub timestamp: i64,
    /// `source` of the sighting; "dozor" unless set.
    pub source: String,
    pub kind: SightingKind,
}

/// MISP's sighting types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SightingKind {
    Sighting = 0,
    FalsePositive = 1,
    Expiration = 2,
}

impl Sighting {
    /// A sighting of `value` now, from "dozor".
    pub fn of_value(value: &str, timestamp: i64) -> Sighting {
        Sighting {
            attribute_uuid: None,
            value: Some(value.to_owned()),
            timestamp,
            source: "dozor".into(),
            kind: SightingKind::Sighting,
        }
    }

    /// A sighting of one attribute now, from "dozor".
    pub fn of_attribute(uuid: &str, timestamp: i64) -> Sighting {
        Sighting {
            attribute_uuid: Some(uuid.to_owned()),
            value: None,
            timestamp,
            source: "dozor".into(),
            kind: SightingKind::Sighting,
        }
    }
}

/// The MISP attribute uuid of an indicator imported from MISP (its first MISP source).
pub fn attribute_uuid(ioc: &dozor_intel::Ioc) -> Option<&str> {
    ioc.sources
        .iter()
        .flat_map(|s| &s.object_ids)
        .find_map(|id| id.strip_prefix(ATTRIBUTE_ID_PREFIX))
}

/// A MISP instance.
#[derive(Clone)]
pub struct MispClient {
    base: String,
    key: String,
    http: Http,
    source_name: String,
}

impl std::fmt::Debug for MispClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MispClient")
            .field("base", &self.base)
            .field("key", &"***")
            .field("source_name", &self.source_name)
            .finish()
    }
}

impl MispClient {
    /// `base` is the instance's URL (`https://misp.example.org`), `key` an automation key.
    pub fn new(base: &str, key: &str, settings: &HttpSettings) -> Result<MispClient, SourceError> {
        let base = base.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(SourceError::Config(format!(
                "MISP URL {base:?} must start with https:// or http://"
            )));
        }
        Ok(MispClient {
            base,
            key: key.trim().to_owned(),
            http: settings.http()?,
            source_name: "misp".into(),
        })
    }

    /// The name put in every indicator's [`dozor_intel::IocSource`] ("misp" by default).
    pub fn with_source_name(mut self, name: &str) -> Self {
        self.source_name = name.to_owned();
        self
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value, SourceError> {
        let url = format!("{}/{path}", self.base);
        let request = self
            .http
            .client
            .post(&url)
            .header(reqwest::header::AUTHORIZATION, &self.key)
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        let (_, bytes) = self.http.send(&url, request).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| SourceError::malformed(&url, "", format!("not JSON: {e}")))
    }

    /// All attributes matching `query`, page by page. Bad attributes are skipped and
    /// reported; the cursor is the newest attribute timestamp (or the query's own start).
    pub async fn attributes(&self, query: &AttributeQuery) -> Result<SyncBatch, SourceError> {
        let mut batch = SyncBatch::default();
        let mut newest = match query.since {
            Since::Timestamp(t) => Some(t),
            _ => None,
        };
        let no_event = EventContext::default();
        let limit = query.page_size.max(1) as usize;
        for page in 1..=query.max_pages.max(1) {
            let doc = self
                .post("attributes/restSearch", &query.body(page))
                .await?;
            // Some MISP versions answer an empty search with `{"response": []}`.
            let empty = doc
                .get("response")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty);
            let none = Vec::new();
            let attrs = doc
                .pointer("/response/Attribute")
                .or_else(|| doc.get("Attribute"))
                .and_then(Value::as_array)
                .or(if empty { Some(&none) } else { None })
                .ok_or_else(|| {
                    SourceError::malformed(
                        format!("{}/attributes/restSearch page {page}", self.base),
                        "/response/Attribute",
                        "no attribute list",
                    )
                })?;
            for (i, attr) in attrs.iter().enumerate() {
                let at = format!("page {page}: /response/Attribute/{i}");
                let decay = decay_of(attr);
                let t = match decay {
                    Some((score, true)) if query.skip_decayed => {
                        let object = attr
                            .get("uuid")
                            .and_then(Value::as_str)
                            .map_or_else(|| at.clone(), str::to_owned);
                        batch.skip(
                            object,
                            format!("decayed (score {score:.1}, below every model's threshold)"),
                        );
                        attr.get("timestamp").and_then(epoch_seconds)
                    }
                    _ => {
                        let before = batch.iocs.len();
                        let t =
                            import_attribute(&self.source_name, attr, &no_event, &at, &mut batch);
                        if let Some((score, _)) = decay {
                            for ioc in batch.iocs.iter_mut().skip(before) {
                                if ioc.confidence.is_none() {
                                    ioc.confidence = Some(score.clamp(0.0, 100.0).round() as u8);
                                }
                            }
                        }
                        t
                    }
                };
                if let Some(t) = t {
                    newest = Some(newest.map_or(t, |n| n.max(t)));
                }
            }
            tracing::debug!(page, count = attrs.len(), "MISP attributes page");
            if attrs.len() < limit {
                break;
            }
        }
        batch.cursor = newest.map(|t| t.to_string());
        Ok(batch)
    }

    /// All events matching `query` (the same filters, applied to events), with their
    /// attributes and objects' attributes. The cursor is the newest event timestamp.
    pub async fn events(&self, query: &AttributeQuery) -> Result<SyncBatch, SourceError> {
        let mut batch = SyncBatch::default();
        let mut newest = match query.since {
            Since::Timestamp(t) => Some(t),
            _ => None,
        };
        let limit = query.page_size.max(1) as usize;
        for page in 1..=query.max_pages.max(1) {
            let doc = self.post("events/restSearch", &query.body(page)).await?;
            let events = doc
                .get("response")
                .unwrap_or(&doc)
                .as_array()
                .ok_or_else(|| {
                    SourceError::malformed(
                        format!("{}/events/restSearch page {page}", self.base),
                        "/response",
                        "no event list",
                    )
                })?;
            for (i, event) in events.iter().enumerate() {
                let at = format!("page {page}: /response/{i}");
                if let Some(t) = import_event(&self.source_name, event, &at, &mut batch) {
                    newest = Some(newest.map_or(t, |n| n.max(t)));
                }
            }
            if events.len() < limit {
                break;
            }
        }
        batch.cursor = newest.map(|t| t.to_string());
        Ok(batch)
    }

    /// Reports a sighting (`POST sightings/add`, or `sightings/add/<uuid>` for an attribute).
    pub async fn add_sighting(&self, sighting: &Sighting) -> Result<(), SourceError> {
        let mut body = json!({
            "source": sighting.source,
            "timestamp": sighting.timestamp,
            "type": (sighting.kind as u8).to_string(),
        });
        let path = match (&sighting.attribute_uuid, &sighting.value) {
            (Some(uuid), _) => {
                if !uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                    return Err(SourceError::Config(format!(
                        "{uuid:?} is not an attribute uuid"
                    )));
                }
                body["uuid"] = uuid.as_str().into();
                format!("sightings/add/{uuid}")
            }
            (None, Some(value)) => {
                body["values"] = json!([value]);
                "sightings/add".to_owned()
            }
            (None, None) => {
                return Err(SourceError::Config(
                    "a sighting needs an attribute uuid or a value".into(),
                ));
            }
        };
        self.post(&path, &body).await.map(|_| ())
    }
}
