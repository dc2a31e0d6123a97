//! `GET /api/v1/events/export` and `GET /api/v1/alerts/export`: the selected events or alerts
//! as CSV or NDJSON, streamed.
//!
//! The store is read a page at a time with the listings' own keyset cursors and each page is
//! written out before the next is read, so an export never holds more than one page
//! ([`PAGE`] rows) whatever its size. An export stops after `limit` rows (default
//! [`DEFAULT_EXPORT_ROWS`], at most [`MAX_EXPORT_ROWS`]); when more matched, its last line
//! says so (CSV: a `# truncated …` row; NDJSON: `{"truncated": true, …}`) and so does the HTTP
//! trailer `X-Dozor-Truncated` (for clients that take trailers). The first page is read before
//! the answer starts, so a bad query is a 400 problem, not a broken file. Every export is
//! audited (who, which filters, which format).
//!
//! CSV cells are escaped by the `csv` crate (quotes, commas, line breaks) and a cell starting
//! with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, so a spreadsheet
//! opening the file never runs event data as a formula.

use std::pin::Pin;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use dozor_store::{Alert, AlertQuery, EventQuery, MAX_PAGE_LIMIT, Store, StoredEvent, now_ms};
use futures_util::Stream;
use http_body_util::StreamBody;
use hyper::body::Frame;
use serde_json::{Value, json};

use super::access::{Caller, Params, READ, bad_param, store_problem};
use crate::ops::audited;
use crate::problem::Problem;
use crate::problem_responses::{ApiNotConfigured, Forbidden, Unauthorized, problem_response};

pub(crate) const EVENTS_EXPORT: &str = "/api/v1/events/export";
pub(crate) const ALERTS_EXPORT: &str = "/api/v1/alerts/export";

/// Rows an export writes unless `limit` says otherwise.
pub const DEFAULT_EXPORT_ROWS: u64 = 100_000;
/// Most rows one export may write.
pub const MAX_EXPORT_ROWS: u64 = 1_000_000;
/// Rows read from the store per step.
const PAGE: u32 = MAX_PAGE_LIMIT;
/// Most columns an event export takes.
pub const MAX_EXPORT_COLUMNS: usize = 64;
/// The event fields a CSV export writes when `columns` is not given (after `@timestamp`,
/// `event.id` and `agent_id`).
pub const DEFAULT_EVENT_COLUMNS: [&str; 10] = [
    "host.name",
    "event.category",
    "event.action",
    "event.code",
    "event.outcome",
    "user.name",
    "process.name",
    "process.command_line",
    "source.ip",
    "destination.ip",
];
/// The columns of an alert CSV export.
const ALERT_COLUMNS: [&str; 14] = [
    "id",
    "level",
    "status",
    "rule_id",
    "rule_title",
    "host",
    "agent_id",
    "assignee",
    "count",
    "first_seen",
    "last_seen",
    "created_at",
    "updated_at",
    "tags",
];
/// The HTTP trailer (and header name) saying whether an export was cut at its limit.
pub const TRUNCATED_HEADER: &str = "x-dozor-truncated";
/// The header giving the export's row limit.
pub const LIMIT_HEADER: &str = "x-dozor-export-limit";

/// The parameters of the event export (beside [`super::events`]' filters).
const EVENT_EXPORT_PARAMETERS: &[&str] =
    &["q", "from", "to", "agent", "format", "columns", "limit"];
/// The parameters of the alert export: the alert list's filters, `format` and `limit`.
const ALERT_EXPORT_PARAMETERS: &[&str] = &[
    "status",
    "min_level",
    "rule",
    "agent",
    "host",
    "tag",
    "assignee",
    "time",
    "from",
    "to",
    "format",
    "limit",
    "rule_text",
];

problem_response! {
    BadExport = 400, "Bad parameter (format, columns, limit, a filter) or query (`column` says where)";
}

/// The query parameters of `GET /api/v1/events/export`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
// Describes the query only (`Params` reads it): the fields are never read.
#[allow(dead_code)]
struct EventExportParameters {
    /// Query language filter
    #[param(nullable = false)]
    q: Option<String>,
    /// Event time ≥ from (ms, RFC 3339, `now`, `now-<duration>`)
    #[param(
        nullable = false,
        pattern = r"^(|-?[0-9]{1,15}|now|now-[0-9]{1,9}(s|m|min|h|d)?|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))$"
    )]
    from: Option<String>,
    /// Event time < to
    #[param(
        nullable = false,
        pattern = r"^(|-?[0-9]{1,15}|now|now-[0-9]{1,9}(s|m|min|h|d)?|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))$"
    )]
    to: Option<String>,
    /// Only events sent by this agent
    #[param(nullable = false)]
    agent: Option<String>,
    /// `csv` (default) or `ndjson`
    #[param(nullable = false, pattern = "^(|csv|ndjson|jsonl)$")]
    format: Option<String>,
    /// Event fields to write, comma-separated dotted names (at most 64). CSV default:
    /// host.name, event.category, event.action, event.code, event.outcome, user.name,
    /// process.name, process.command_line, source.ip, destination.ip. NDJSON without it: whole
    /// events. Empty: as if absent.
    #[param(
        nullable = false,
        pattern = r"^(|[A-Za-z0-9._@-]{1,128}(,[A-Za-z0-9._@-]{1,128}){0,63})$"
    )]
    columns: Option<String>,
    /// Most rows, 1-1000000 (default 100000)
    #[param(nullable = false, minimum = 1, maximum = 1000000)]
    limit: Option<u32>,
}

/// The query parameters of `GET /api/v1/alerts/export` besides the alert list's filters.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct AlertExportParameters {
    /// new, acknowledged, resolved, false_positive; repeat or separate with commas
    #[param(nullable = false, inline, style = Form, explode)]
    status: Option<Vec<super::access::StatusName>>,
    /// informational, low, medium, high, critical
    #[param(nullable = false, inline)]
    min_level: Option<super::access::LevelName>,
    /// Rule id
    #[param(nullable = false)]
    rule: Option<String>,
    /// Agent id
    #[param(nullable = false)]
    agent: Option<String>,
    /// Host, any letter case
    #[param(nullable = false)]
    host: Option<String>,
    /// A tag or a tag above the alerts'
    #[param(nullable = false)]
    tag: Option<String>,
    /// Assignee
    #[param(nullable = false)]
    assignee: Option<String>,
    /// A rule id or words of its title, as the dashboard's rule filter takes them
    #[param(nullable = false)]
    rule_text: Option<String>,
    /// `event` (default) or `detected`
    #[param(nullable = false, inline)]
    time: Option<dozor_model::AlertTime>,
    /// time ≥ from
    #[param(
        nullable = false,
        pattern = r"^(|-?[0-9]{1,15}|now|now-[0-9]{1,9}(s|m|min|h|d)?|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))$"
    )]
    from: Option<String>,
    /// time < to
    #[param(
        nullable = false,
        pattern = r"^(|-?[0-9]{1,15}|now|now-[0-9]{1,9}(s|m|min|h|d)?|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))$"
    )]
    to: Option<String>,
    /// `csv` (default) or `ndjson`
    #[param(nullable = false, pattern = "^(|csv|ndjson|jsonl)$")]
    format: Option<String>,
    /// Most rows, 1-1000000 (default 100000)
    #[param(nullable = false, minimum = 1, maximum = 1000000)]
    limit: Option<u32>,
}

/// An export's file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Ndjson,
}

impl Format {
    fn of(params: &Params) -> Result<Format, Problem> {
        match params.get("format")? {
            None | Some("csv") => Ok(Format::Csv),
            Some("ndjson") | Some("jsonl") => Ok(Format::Ndjson),
            Some(other) => Err(bad_param("format", format!("{other:?}: csv or ndjson"))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Ndjson => "application/x-ndjson",
        }
    }
}

fn export_limit(params: &Params) -> Result<u64, Problem> {
    match params.get("limit")? {
        None => Ok(DEFAULT_EXPORT_ROWS),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if (1..=MAX_EXPORT_ROWS).contains(&n) => Ok(n),
            _ => Err(bad_param(
                "limit",
                format!("limit must be a whole number from 1 to {MAX_EXPORT_ROWS}"),
            )),
        },
    }
}

/// The `columns` of an event export: dotted field names, at most [`MAX_EXPORT_COLUMNS`].
fn export_columns(params: &Params) -> Result<Option<Vec<String>>, Problem> {
    // As documented: empty, or names joined by single commas (no blanks, no empty names).
    for (_, raw) in params.pairs().iter().filter(|(k, _)| k == "columns") {
        if !raw.is_empty() && raw.split(',').any(|c| c.is_empty() || c.trim() != c) {
            return Err(bad_param(
                "columns",
                format!("{raw:?}: field names joined by single commas, without blanks"),
            ));
        }
    }
    let list = params.list("columns");
    if list.is_empty() {
        return Ok(None);
    }
    if list.len() > MAX_EXPORT_COLUMNS {
        return Err(bad_param(
            "columns",
            format!("at most {MAX_EXPORT_COLUMNS} columns"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for c in list {
        let ok = c.len() <= 128
            && c.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-' | '@'));
        if !ok {
            return Err(bad_param(
                "columns",
                format!("{c:?} is not a dotted field name (letters, digits, `.`, `_`, `-`, `@`)"),
            ));
        }
        if !out.iter().any(|o| o == c) {
            out.push(c.to_owned());
        }
    }
    Ok(Some(out))
}

/// A cell as a spreadsheet may show it: a leading `'` before `=`, `+`, `-`, `@`, tab or CR.
pub fn csv_safe(text: &str) -> std::borrow::Cow<'_, str> {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}").into(),
        _ => text.into(),
    }
}

/// A field of an event document by dotted path (nested objects, else a literal dotted key).
fn field<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    let mut v = doc;
    let mut nested = true;
    for part in path.split('.') {
        match v.get(part) {
            Some(next) => v = next,
            None => {
                nested = false;
                break;
            }
        }
    }
    if nested { Some(v) } else { doc.get(path) }
}

/// A value as one cell: text as it is, numbers and booleans written out, lists and objects as
/// JSON, nothing for null.
fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(other) => other.to_string(),
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

fn opt_time(ms: Option<i64>) -> String {
    ms.map(rfc3339).unwrap_or_default()
}

/// A CSV writer into `out` (CRLF line ends, quotes where needed).
fn csv_writer(out: &mut Vec<u8>) -> csv::Writer<&mut Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out)
}

/// Writes one record, every cell guarded ([`csv_safe`]). Writing to a `Vec` cannot fail.
fn csv_write(w: &mut csv::Writer<&mut Vec<u8>>, cells: &[String]) {
    let _ = w.write_record(cells.iter().map(|c| csv_safe(c).into_owned()));
}

/// One CSV record.
fn csv_record(out: &mut Vec<u8>, cells: &[String]) {
    let mut w = csv_writer(out);
    csv_write(&mut w, cells);
    let _ = w.flush();
}

fn ndjson_line(out: &mut Vec<u8>, v: &Value) {
    // Serializing a Value cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
    out.push(b'\n');
}

/// What an export writes: its rows, its header, its trailer.
enum Kind {
    Events {
        query: EventQuery,
        /// `None`: whole events (NDJSON) or the default columns (CSV).
        columns: Option<Vec<String>>,
    },
    Alerts {
        query: AlertQuery,
    },
}

/// One page read from the store.
enum Page {
    Events(Vec<StoredEvent>),
    Alerts(Vec<Alert>),
}

impl Page {
    fn len(&self) -> usize {
        match self {
            Page::Events(v) => v.len(),
            Page::Alerts(v) => v.len(),
        }
    }

    fn truncate(&mut self, n: usize) {
        match self {
            Page::Events(v) => v.truncate(n),
            Page::Alerts(v) => v.truncate(n),
        }
    }
}

struct Export {
    store: Arc<dyn Store>,
    kind: Kind,
    format: Format,
    limit: u64,
    written: u64,
    /// The first page, read before the answer started.
    first: Option<(Page, Option<String>)>,
    /// The next page's cursor; `None` after the last page.
    cursor: Option<String>,
    done: bool,
    truncated: bool,
}

impl Export {
    fn event_columns(&self) -> Vec<String> {
        match &self.kind {
            Kind::Events {
                columns: Some(c), ..
            } => c.clone(),
            _ => DEFAULT_EVENT_COLUMNS.map(str::to_owned).to_vec(),
        }
    }

    fn header(&self, out: &mut Vec<u8>) {
        if self.format != Format::Csv {
            return;
        }
        let cells: Vec<String> = match &self.kind {
            Kind::Events { .. } => ["@timestamp", "event.id", "agent_id"]
                .into_iter()
                .map(str::to_owned)
                .chain(self.event_columns())
                .collect(),
            Kind::Alerts { .. } => ALERT_COLUMNS.map(str::to_owned).to_vec(),
        };
        // Column names as they are: ours, or field names of letters, digits, `.`, `_`, `-`,
        // `@` (no formula can be spelt with those; `@timestamp` stays itself).
        let mut w = csv_writer(out);
        let _ = w.write_record(&cells);
        let _ = w.flush();
    }

    async fn read(
        &mut self,
        cursor: Option<String>,
    ) -> dozor_store::Result<(Page, Option<String>)> {
        match &mut self.kind {
            Kind::Events { query, .. } => {
                query.cursor = cursor;
                query.limit = PAGE;
                let page = self.store.search_events(query).await?;
                Ok((Page::Events(page.events), page.next_cursor))
            }
            Kind::Alerts { query } => {
                query.cursor = cursor;
                query.limit = PAGE;
                let page = self.store.list_alerts(query).await?;
                Ok((Page::Alerts(page.alerts), page.next_cursor))
            }
        }
    }

    fn write(&self, page: &Page, out: &mut Vec<u8>) {
        match (page, self.format) {
            (Page::Events(events), Format::Csv) => {
                let columns = self.event_columns();
                let mut w = csv_writer(out);
                for e in events {
                    let mut cells = vec![
                        rfc3339(e.ts),
                        e.id.to_string(),
                        e.agent_id.clone().unwrap_or_default(),
                    ];
                    cells.extend(columns.iter().map(|c| cell(field(&e.doc, c))));
                    csv_write(&mut w, &cells);
                }
                let _ = w.flush();
            }
            (Page::Events(events), Format::Ndjson) => {
                let columns = match &self.kind {
                    Kind::Events { columns, .. } => columns.as_deref(),
                    Kind::Alerts { .. } => None,
                };
                for e in events {
                    let line = match columns {
                        None => serde_json::to_value(e).unwrap_or_default(),
                        Some(columns) => {
                            let mut o = serde_json::Map::new();
                            o.insert("@timestamp".into(), rfc3339(e.ts).into());
                            o.insert("event.id".into(), e.id.to_string().into());
                            o.insert("agent_id".into(), json!(e.agent_id));
                            for c in columns {
                                o.insert(
                                    c.clone(),
                                    field(&e.doc, c).cloned().unwrap_or(Value::Null),
                                );
                            }
                            Value::Object(o)
                        }
                    };
                    ndjson_line(out, &line);
                }
            }
            (Page::Alerts(alerts), Format::Csv) => {
                let mut w = csv_writer(out);
                for a in alerts {
                    let cells = [
                        a.id.to_string(),
                        a.level.as_str().to_owned(),
                        a.status.as_str().to_owned(),
                        a.rule_id.clone(),
                        a.rule_title.clone(),
                        a.host.clone().unwrap_or_default(),
                        a.agent_id.clone().unwrap_or_default(),
                        a.assignee.clone().unwrap_or_default(),
                        a.count.to_string(),
                        rfc3339(a.first_seen),
                        rfc3339(a.last_seen),
                        rfc3339(a.created_at),
                        opt_time(Some(a.updated_at)),
                        a.tags.join(" "),
                    ];
                    csv_write(&mut w, &cells);
                }
                let _ = w.flush();
            }
            (Page::Alerts(alerts), Format::Ndjson) => {
                for a in alerts {
                    ndjson_line(out, &serde_json::to_value(a).unwrap_or_default());
                }
            }
        }
    }

    fn trailer(&self, out: &mut Vec<u8>) {
        if !self.truncated {
            return;
        }
        match self.format {
            Format::Csv => csv_record(
                out,
                &[format!(
                    "# truncated: the first {} rows of more; narrow the search or ask for a \
                     higher limit (at most {MAX_EXPORT_ROWS})",
                    self.written
                )],
            ),
            Format::Ndjson => ndjson_line(
                out,
                &json!({"truncated": true, "rows": self.written, "limit": self.limit}),
            ),
        }
    }

    /// The next chunk: the next page written out (the header with the first, the trailer
    /// with the last); `None` when done.
    async fn next_chunk(&mut self) -> Option<Result<Frame<Bytes>, std::io::Error>> {
        if self.done {
            return None;
        }
        let mut out = Vec::new();
        let (mut page, next) = match self.first.take() {
            Some(first) => {
                self.header(&mut out);
                first
            }
            None => match self.read(self.cursor.clone()).await {
                Ok(p) => p,
                Err(e) => {
                    // The answer has started: all that is left is to break it off, so the
                    // client sees an incomplete transfer rather than a short file.
                    tracing::warn!("export broken off after {} rows: {e}", self.written);
                    self.done = true;
                    return Some(Err(std::io::Error::other(e.to_string())));
                }
            },
        };
        let room = self.limit - self.written;
        if page.len() as u64 > room {
            page.truncate(room as usize);
            self.truncated = true;
        } else if page.len() as u64 == room && next.is_some() {
            self.truncated = true;
        }
        self.write(&page, &mut out);
        self.written += page.len() as u64;
        self.cursor = next;
        if self.truncated || self.cursor.is_none() || page.len() == 0 {
            self.trailer(&mut out);
            self.done = true;
        }
        Some(Ok(Frame::data(Bytes::from(out))))
    }

    fn into_body(self) -> Body {
        type Chunk = Result<Frame<Bytes>, std::io::Error>;
        let frames = futures_util::stream::unfold((self, false), |(mut ex, ended)| async move {
            if ended {
                return None;
            }
            match ex.next_chunk().await {
                Some(chunk) => Some((chunk, (ex, false))),
                None => {
                    let mut trailers = HeaderMap::new();
                    trailers.insert(
                        HeaderName::from_static(TRUNCATED_HEADER),
                        HeaderValue::from_static(if ex.truncated { "true" } else { "false" }),
                    );
                    Some((Ok(Frame::trailers(trailers)), (ex, true)))
                }
            }
        });
        let frames: Pin<Box<dyn Stream<Item = Chunk> + Send>> = Box::pin(frames);
        Body::new(StreamBody::new(frames))
    }
}

/// Reads the first page (so a bad query is a problem, not a broken file) and answers with the
/// rest streamed.
async fn respond(mut export: Export, what: &str) -> Result<Response, Problem> {
    let first = export.read(None).await.map_err(store_problem)?;
    export.first = Some(first);
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let filename = format!("dozor-{what}-{stamp}.{}", export.format.name());
    let limit = export.limit.to_string();
    let content_type = export.format.content_type();
    let mut response = export.into_body().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&limit) {
        headers.insert(HeaderName::from_static(LIMIT_HEADER), v);
    }
    headers.insert(header::TRAILER, HeaderValue::from_static(TRUNCATED_HEADER));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[utoipa::path(get, path = EVENTS_EXPORT, tag = "events", operation_id = "events_export",
    summary = "Export events as CSV or NDJSON",
    description = "The events the search selects (`q`, `from`, `to`, `agent` as in `GET /api/v1/events`), \
newest first, streamed page by page. CSV: a header line, then `@timestamp` (RFC 3339), `event.id`, `agent_id` \
and the `columns`; lists and objects as JSON; cells starting with `=`, `+`, `-`, `@`, tab or CR get a leading `'`. \
NDJSON: one event per line (the shape of `GET /api/v1/events/{id}`), or with `columns` objects of those fields. \
At most `limit` rows (default 100,000, at most 1,000,000): when more matched, the last line says so \
(CSV `# truncated: …`, NDJSON `{\"truncated\": true, \"rows\", \"limit\"}`) and the HTTP trailer \
`X-Dozor-Truncated` is `true`. `X-Dozor-Export-Limit` gives the limit. Audited (`events.export`).",
    params(EventExportParameters),
    responses(
        (status = 200, description = "The events", content(
            (String = "text/csv"),
            (String = "application/x-ndjson"),
        )),
        BadExport,
        Unauthorized,
        Forbidden<READ>,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn events(caller: Caller<READ>, params: Params) -> Result<Response, Problem> {
    params.only(EVENT_EXPORT_PARAMETERS)?;
    let format = Format::of(&params)?;
    let limit = export_limit(&params)?;
    let columns = export_columns(&params)?;
    let now = now_ms();
    let query = EventQuery {
        from: params.time("from", now)?,
        to: params.time("to", now)?,
        agent_id: params.string("agent")?,
        query: params.string("q")?,
        cursor: None,
        limit: PAGE,
    };
    let store = caller.api.store.clone();
    let export = Export {
        store: store.clone(),
        kind: Kind::Events {
            query: query.clone(),
            columns: columns.clone(),
        },
        format,
        limit,
        written: 0,
        first: None,
        cursor: None,
        done: false,
        truncated: false,
    };
    // Refuse a query that does not parse before it is audited as exported.
    if let Some(q) = query.query.as_deref() {
        dozor_store::query::parse(q).map_err(|e| store_problem(e.into()))?;
    }
    audited(
        store.as_ref(),
        &caller.identity.subject,
        "events.export",
        "events".into(),
        json!({
            "q": query.query,
            "from": query.from,
            "to": query.to,
            "agent": query.agent_id,
            "format": format.name(),
            "columns": columns,
            "limit": limit,
        }),
    )
    .await?;
    respond(export, "events").await
}

#[utoipa::path(get, path = ALERTS_EXPORT, tag = "alerts", operation_id = "alerts_export",
    summary = "Export alerts as CSV or NDJSON",
    description = "The alerts the filters of `GET /api/v1/alerts` select, in its order, streamed page by page. \
CSV columns: id, level, status, rule_id, rule_title, host, agent_id, assignee, count, first_seen, last_seen, \
created_at, updated_at (RFC 3339), tags (space-separated); cells starting with `=`, `+`, `-`, `@`, tab or CR get \
a leading `'`. NDJSON: one alert per line (the shape of the alert list's). At most `limit` rows (default \
100,000, at most 1,000,000), a truncation said as for the event export. Audited (`alerts.export`).",
    params(AlertExportParameters),
    responses(
        (status = 200, description = "The alerts", content(
            (String = "text/csv"),
            (String = "application/x-ndjson"),
        )),
        BadExport,
        Unauthorized,
        Forbidden<READ>,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn alerts(caller: Caller<READ>, params: Params) -> Result<Response, Problem> {
    params.only(ALERT_EXPORT_PARAMETERS)?;
    let format = Format::of(&params)?;
    let limit = export_limit(&params)?;
    let mut query = super::alerts::alert_query(&params.without(&["format", "limit", "rule_text"]))?;
    query.rule_text = params.string("rule_text")?;
    let store = caller.api.store.clone();
    let filters: serde_json::Map<String, Value> = params
        .pairs()
        .iter()
        .filter(|(k, _)| k != "format" && k != "limit")
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    audited(
        store.as_ref(),
        &caller.identity.subject,
        "alerts.export",
        "alerts".into(),
        json!({"filters": filters, "format": format.name(), "limit": limit}),
    )
    .await?;
    let export = Export {
        store,
        kind: Kind::Alerts { query },
        format,
        limit,
        written: 0,
        first: None,
        cursor: None,
        done: false,
        truncated: false,
    };
    respond(export, "alerts").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_defused_and_csv_is_escaped() {
        assert_eq!(csv_safe("=1+2"), "'=1+2");
        assert_eq!(csv_safe("+cmd"), "'+cmd");
        assert_eq!(csv_safe("-x"), "'-x");
        assert_eq!(csv_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_safe("\tx"), "'\tx");
        assert_eq!(csv_safe("plain"), "plain");
        assert_eq!(csv_safe(""), "");
        let mut out = Vec::new();
        csv_record(
            &mut out,
            &[
                "a,b".into(),
                "say \"hi\"".into(),
                "two\nlines".into(),
                "=HYPERLINK(\"x\")".into(),
            ],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"'=HYPERLINK(\"\"x\"\")\"\r\n"
        );
    }

    #[test]
    fn fields_by_path_and_cells() {
        let doc = json!({"host": {"name": "WS-01"}, "event": {"category": ["process", "start"]},
                         "process": {"pid": 42}, "flat.key": "v", "ok": true});
        assert_eq!(cell(field(&doc, "host.name")), "WS-01");
        assert_eq!(cell(field(&doc, "process.pid")), "42");
        assert_eq!(
            cell(field(&doc, "event.category")),
            "[\"process\",\"start\"]"
        );
        assert_eq!(cell(field(&doc, "flat.key")), "v");
        assert_eq!(cell(field(&doc, "ok")), "true");
        assert_eq!(cell(field(&doc, "user.name")), "");
    }
}
