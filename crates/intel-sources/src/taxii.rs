//! TAXII 2.1: discovery, API roots, collections, and a collection's objects with
//! `added_after`, paged by `more`/`next`. Every request sends `Accept:
//! application/taxii+json;version=2.1` and basic or bearer auth. The cursor is the last
//! `X-TAXII-Date-Added-Last` header (falling back to the `added_after` asked for), to pass as
//! `added_after` next time. The objects go through the STIX import ([`crate::stix`]).

use reqwest::Url;
use serde_json::Value;

use crate::http::{Http, HttpSettings};
use crate::stix::import_objects;
use crate::{SourceError, SyncBatch};

/// The TAXII 2.1 media type.
pub const TAXII_MEDIA_TYPE: &str = "application/taxii+json;version=2.1";

/// How to authenticate to a TAXII server.
#[derive(Clone, Default)]
pub enum TaxiiAuth {
    #[default]
    None,
    Basic {
        user: String,
        password: String,
    },
    Bearer(String),
}

impl std::fmt::Debug for TaxiiAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaxiiAuth::None => f.write_str("None"),
            TaxiiAuth::Basic { user, .. } => write!(f, "Basic({user}, ***)"),
            TaxiiAuth::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

/// A server's discovery answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    pub title: String,
    /// The default API root (absolute URL), if the server names one.
    pub default: Option<String>,
    /// API root URLs, made absolute.
    pub api_roots: Vec<String>,
}

/// One collection of an API root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    pub id: String,
    pub title: String,
    pub can_read: bool,
    pub can_write: bool,
}

/// A TAXII 2.1 client.
#[derive(Debug, Clone)]
pub struct TaxiiClient {
    http: Http,
    auth: TaxiiAuth,
    source_name: String,
    /// Page size asked for (`limit`); the server may send fewer.
    pub page_size: Option<u32>,
    /// Stop after this many pages.
    pub max_pages: u32,
}

fn parse_url(url: &str) -> Result<Url, SourceError> {
    Url::parse(url).map_err(|e| SourceError::Config(format!("URL {url:?}: {e}")))
}

/// `url` with a trailing slash (TAXII URLs end in one).
fn dir_url(url: &str) -> Result<Url, SourceError> {
    let mut u = parse_url(url)?;
    if !u.path().ends_with('/') {
        let path = format!("{}/", u.path());
        u.set_path(&path);
    }
    Ok(u)
}

impl TaxiiClient {
    pub fn new(
        settings: &HttpSettings,
        auth: TaxiiAuth,
        source_name: &str,
    ) -> Result<TaxiiClient, SourceError> {
        Ok(TaxiiClient {
            http: settings.http()?,
            auth,
            source_name: source_name.to_owned(),
            page_size: None,
            max_pages: 10_000,
        })
    }

    async fn get(&self, url: &Url) -> Result<(reqwest::header::HeaderMap, Value), SourceError> {
        let mut request = self
            .http
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, TAXII_MEDIA_TYPE);
        request = match &self.auth {
            TaxiiAuth::None => request,
            TaxiiAuth::Basic { user, password } => request.basic_auth(user, Some(password)),
            TaxiiAuth::Bearer(token) => request.bearer_auth(token),
        };
        let (headers, body) = self.http.send(url.as_str(), request).await?;
        let value = serde_json::from_slice(&body).map_err(|e| {
            SourceError::malformed(url.as_str(), format!("line {}", e.line()), e.to_string())
        })?;
        Ok((headers, value))
    }

    /// `GET <server>/taxii2/` (pass the discovery URL itself).
    pub async fn discovery(&self, url: &str) -> Result<Discovery, SourceError> {
        let url = dir_url(url)?;
        let (_, doc) = self.get(&url).await?;
        let resolve = |s: &str| {
            dir_url(
                url.join(s)
                    .map_err(|e| SourceError::malformed(url.as_str(), "/api_roots", e.to_string()))?
                    .as_str(),
            )
            .map(String::from)
        };
        let api_roots = doc
            .get("api_roots")
            .and_then(Value::as_array)
            .map(|roots| {
                roots
                    .iter()
                    .filter_map(Value::as_str)
                    .map(resolve)
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        Ok(Discovery {
            title: doc
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            default: doc
                .get("default")
                .and_then(Value::as_str)
                .map(resolve)
                .transpose()?,
            api_roots,
        })
    }

    /// The collections of an API root.
    pub async fn collections(&self, api_root: &str) -> Result<Vec<Collection>, SourceError> {
        let url = dir_url(api_root)?
            .join("collections/")
            .map_err(|e| SourceError::Config(e.to_string()))?;
        let (_, doc) = self.get(&url).await?;
        let Some(list) = doc.get("collections") else {
            return Ok(Vec::new());
        };
        let list = list
            .as_array()
            .ok_or_else(|| SourceError::malformed(url.as_str(), "/collections", "not a list"))?;
        let mut out = Vec::new();
        for (i, c) in list.iter().enumerate() {
            let id = c.get("id").and_then(Value::as_str).ok_or_else(|| {
                SourceError::malformed(url.as_str(), format!("/collections/{i}/id"), "no id")
            })?;
            out.push(Collection {
                id: id.to_owned(),
                title: c
                    .get("title")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                can_read: c.get("can_read").and_then(Value::as_bool).unwrap_or(false),
                can_write: c.get("can_write").and_then(Value::as_bool).unwrap_or(false),
            });
        }
        Ok(out)
    }

    /// The objects of a collection added after `added_after` (the previous cursor; `None` =
    /// all), every page, as indicators.
    pub async fn objects(
        &self,
        api_root: &str,
        collection_id: &str,
        added_after: Option<&str>,
    ) -> Result<SyncBatch, SourceError> {
        if collection_id.is_empty() || collection_id.contains(['/', '?', '#']) {
            return Err(SourceError::Config(format!(
                "{collection_id:?} is not a collection id"
            )));
        }
        let base = dir_url(api_root)?
            .join(&format!("collections/{collection_id}/objects/"))
            .map_err(|e| SourceError::Config(e.to_string()))?;
        // `added_after` stays what was asked while paging by `next`; without `next` the
        // pages move it on to each page's X-TAXII-Date-Added-Last.
        let mut after = added_after.map(str::to_owned);
        let mut next: Option<String> = None;
        let mut last_added: Option<String> = None;
        let mut objects: Vec<Value> = Vec::new();
        for page in 0..self.max_pages.max(1) {
            let mut url = base.clone();
            {
                let mut q = url.query_pairs_mut();
                if let Some(a) = &after {
                    q.append_pair("added_after", a);
                }
                if let Some(limit) = self.page_size {
                    q.append_pair("limit", &limit.to_string());
                }
                if let Some(n) = &next {
                    q.append_pair("next", n);
                }
            }
            let (headers, doc) = self.get(&url).await?;
            let got = match doc.get("objects") {
                None => 0,
                Some(Value::Array(list)) => {
                    objects.extend(list.iter().cloned());
                    list.len()
                }
                Some(_) => {
                    return Err(SourceError::malformed(
                        url.as_str(),
                        "/objects",
                        "`objects` is not a list",
                    ));
                }
            };
            if let Some(l) = headers
                .get("x-taxii-date-added-last")
                .and_then(|v| v.to_str().ok())
            {
                last_added = Some(l.to_owned());
            }
            tracing::debug!(page, got, ?last_added, "TAXII objects page");
            let more = doc.get("more").and_then(Value::as_bool).unwrap_or(false);
            if !more || got == 0 {
                break;
            }
            match (doc.get("next").and_then(Value::as_str), &last_added) {
                (Some(n), _) => next = Some(n.to_owned()),
                (None, Some(l)) => {
                    after = Some(l.clone());
                    next = None;
                }
                (None, None) => {
                    return Err(SourceError::malformed(
                        url.as_str(),
                        "/more",
                        "`more` is true but there is neither `next` nor X-TAXII-Date-Added-Last",
                    ));
                }
            }
        }
        let cursor = last_added.or_else(|| added_after.map(str::to_owned));
        let mut batch = SyncBatch::default();
        import_objects(&objects, &self.source_name, &mut batch);
        batch.cursor = cursor;
        Ok(batch)
    }
}
