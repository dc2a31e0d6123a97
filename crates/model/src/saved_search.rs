//! Saved event searches (issue 16): a query with its time range, agent and columns, kept under
//! a name by its owner, optionally shared with every operator, and re-run from the events page,
//! the API or the CLI.

use serde::{Deserialize, Serialize};

/// Longest name, characters.
pub const MAX_SAVED_SEARCH_NAME: usize = 120;
/// Longest query, bytes (the events page's query box takes as much).
pub const MAX_SAVED_SEARCH_QUERY: usize = 8192;
/// Saved searches one owner may keep.
pub const MAX_SAVED_SEARCHES_PER_OWNER: u64 = 200;
/// Longest `from` / `to` as typed, characters.
pub const MAX_SAVED_SEARCH_TIME: usize = 64;
/// Longest agent filter, characters.
pub const MAX_SAVED_SEARCH_AGENT: usize = 256;
/// The time range presets a saved search may name (the events page's `range`).
pub const SAVED_SEARCH_RANGES: [&str; 7] = ["15m", "1h", "24h", "7d", "30d", "all", "custom"];

/// The event fields the column picker offers (and a saved search may keep as its columns),
/// in the order the picker lists them. The events table always shows the time, the agent, the
/// category / action and the summary; these are shown in between.
pub const EVENT_COLUMNS: [&str; 24] = [
    "host.name",
    "user.name",
    "event.code",
    "event.action",
    "event.outcome",
    "process.name",
    "process.pid",
    "process.command_line",
    "process.executable",
    "process.parent.name",
    "file.path",
    "file.hash.sha256",
    "source.ip",
    "source.port",
    "destination.ip",
    "destination.port",
    "network.transport",
    "dns.question.name",
    "url.full",
    "registry.path",
    "winlog.channel",
    "winlog.provider_name",
    "winlog.event_id",
    "threat.indicator.name",
];

/// What a saved search replays besides its query: the time range and agent of the events
/// page, and the columns shown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SavedSearchParams {
    /// A time range preset: `15m`, `1h`, `24h`, `7d`, `30d`, `all` or `custom` (then `from`
    /// and `to` hold the bounds as typed); `None`: the page's default (24 h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^(15m|1h|24h|7d|30d|all|custom)$")
    )]
    pub range: Option<String>,
    /// Start as typed (`now-2h`, RFC 3339, ms, `2026-11-21 14:00`), with `range` `custom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub from: Option<String>,
    /// End as typed, with `range` `custom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub to: Option<String>,
    /// Only events of this agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub agent: Option<String>,
    /// Extra columns of the events table, each one of [`EVENT_COLUMNS`], no repeats.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(max_items = 24))]
    pub columns: Vec<String>,
}

/// `params` as an object (null: the defaults); serde alone would also read a list as the
/// fields in order.
fn params_object<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SavedSearchParams, D::Error> {
    Ok(params_change(d)?.unwrap_or_default())
}

fn params_change<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<SavedSearchParams>, D::Error> {
    use serde::de::Error;
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v @ serde_json::Value::Object(_)) => serde_json::from_value(v)
            .map(Some)
            .map_err(D::Error::custom),
        Some(other) => Err(D::Error::custom(format!(
            "params must be an object, got {other}"
        ))),
    }
}

/// A saved search to create (`POST /api/v1/saved-searches`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewSavedSearch {
    /// Its name, unique per owner (1 to 120 characters, not blank, no control characters).
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"\S", min_length = 1, max_length = 120)
    )]
    pub name: String,
    /// The query-language text (may be empty: every event), at most 8192 bytes.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 8192))]
    pub query: String,
    /// Time range, agent and columns (null or left out: the page's defaults).
    #[serde(default, deserialize_with = "params_object")]
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub params: SavedSearchParams,
    /// Visible to every operator (only its owner or an admin may still change it).
    #[serde(default)]
    pub shared: bool,
}

/// A change to a saved search (`PUT /api/v1/saved-searches/{id}`): the members given are
/// replaced, the others kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SavedSearchChange {
    /// A new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"\S", min_length = 1, max_length = 120)
    )]
    pub name: Option<String>,
    /// A new query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 8192))]
    pub query: Option<String>,
    /// New time range, agent and columns (replaced whole).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "params_change"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub params: Option<SavedSearchParams>,
    /// Shared or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<bool>,
}

/// A stored saved search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SavedSearch {
    /// Id.
    pub id: i64,
    /// Name, unique per owner.
    pub name: String,
    /// The query-language text.
    pub query: String,
    /// Time range, agent and columns.
    pub params: SavedSearchParams,
    /// Who saved it (the account or token name).
    pub owner: String,
    /// Visible to every operator.
    pub shared: bool,
    /// When, ms.
    pub created_at: i64,
    /// Last change, ms.
    pub updated_at: i64,
    /// Last re-run, ms.
    pub last_run_at: Option<i64>,
}

fn text_problem(what: &str, text: &str, max: usize) -> Option<String> {
    if text.chars().count() > max {
        return Some(format!("{what}: at most {max} characters"));
    }
    if text.chars().any(char::is_control) {
        return Some(format!("{what}: no control characters"));
    }
    None
}

/// What is wrong with a name, said for a person; `None` when it is fine.
pub fn saved_search_name_problem(name: &str) -> Option<String> {
    let name = name.trim();
    if name.is_empty() {
        return Some("name: give the search a name".into());
    }
    if name.chars().count() > MAX_SAVED_SEARCH_NAME {
        return Some(format!(
            "name: at most {MAX_SAVED_SEARCH_NAME} characters, got {}",
            name.chars().count()
        ));
    }
    text_problem("name", name, MAX_SAVED_SEARCH_NAME)
}

/// What is wrong with a query, said for a person; `None` when it is fine (its syntax is the
/// store's to judge when it runs).
pub fn saved_search_query_problem(query: &str) -> Option<String> {
    if query.len() > MAX_SAVED_SEARCH_QUERY {
        return Some(format!(
            "query: at most {MAX_SAVED_SEARCH_QUERY} bytes, got {}",
            query.len()
        ));
    }
    if query.contains('\0') {
        return Some("query: no NUL characters".into());
    }
    None
}

/// What is wrong with the parameters, said for a person; `None` when they are fine.
pub fn saved_search_params_problem(p: &SavedSearchParams) -> Option<String> {
    if let Some(range) = &p.range
        && !SAVED_SEARCH_RANGES.contains(&range.as_str())
    {
        return Some(format!(
            "params.range: {range:?} is not one of {}",
            SAVED_SEARCH_RANGES.join(", ")
        ));
    }
    for (what, text, max) in [
        ("params.from", &p.from, MAX_SAVED_SEARCH_TIME),
        ("params.to", &p.to, MAX_SAVED_SEARCH_TIME),
        ("params.agent", &p.agent, MAX_SAVED_SEARCH_AGENT),
    ] {
        if let Some(problem) = text.as_deref().and_then(|t| text_problem(what, t, max)) {
            return Some(problem);
        }
    }
    for (i, c) in p.columns.iter().enumerate() {
        if !EVENT_COLUMNS.contains(&c.as_str()) {
            return Some(format!(
                "params.columns: {c:?} is not a column the events table offers ({})",
                EVENT_COLUMNS.join(", ")
            ));
        }
        if p.columns[..i].contains(c) {
            return Some(format!("params.columns: {c:?} is listed twice"));
        }
    }
    None
}

/// What is wrong with a saved search to create; `None` when it is fine.
pub fn saved_search_problem(s: &NewSavedSearch) -> Option<String> {
    saved_search_name_problem(&s.name)
        .or_else(|| saved_search_query_problem(&s.query))
        .or_else(|| saved_search_params_problem(&s.params))
}

/// What is wrong with a change; `None` when it is fine.
pub fn saved_search_change_problem(c: &SavedSearchChange) -> Option<String> {
    c.name
        .as_deref()
        .and_then(saved_search_name_problem)
        .or_else(|| c.query.as_deref().and_then(saved_search_query_problem))
        .or_else(|| c.params.as_ref().and_then(saved_search_params_problem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_queries_and_columns_are_bounded() {
        let ok = NewSavedSearch {
            name: "Failed logons".into(),
            query: "event.code:4625".into(),
            params: SavedSearchParams {
                range: Some("7d".into()),
                columns: vec!["host.name".into(), "user.name".into()],
                ..SavedSearchParams::default()
            },
            shared: true,
        };
        assert_eq!(saved_search_problem(&ok), None);
        let bad = |f: &dyn Fn(&mut NewSavedSearch)| {
            let mut s = ok.clone();
            f(&mut s);
            saved_search_problem(&s).expect("refused")
        };
        assert!(bad(&|s| s.name = "  ".into()).starts_with("name"));
        assert!(bad(&|s| s.name = "x".repeat(121)).contains("120"));
        assert_eq!(
            saved_search_name_problem(&"я".repeat(120)),
            None,
            "characters, not bytes"
        );
        assert!(bad(&|s| s.name = "a\nb".into()).contains("control"));
        assert!(bad(&|s| s.query = "a".repeat(8193)).contains("8192"));
        assert!(bad(&|s| s.params.range = Some("2y".into())).contains("range"));
        assert!(bad(&|s| s.params.columns.push("doc.secret".into())).contains("offers"));
        assert!(bad(&|s| s.params.columns.push("host.name".into())).contains("twice"));
        assert!(bad(&|s| s.params.from = Some("x".repeat(65))).contains("from"));
    }

    #[test]
    fn unknown_members_are_refused() {
        let parsed = serde_json::from_str::<NewSavedSearch>(r#"{"name":"a","owner":"root"}"#);
        assert!(parsed.is_err());
        let parsed: NewSavedSearch = serde_json::from_str(r#"{"name":"a"}"#).unwrap();
        assert_eq!(parsed.query, "");
        assert!(!parsed.shared);
    }
}
