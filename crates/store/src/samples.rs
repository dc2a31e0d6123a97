//! File samples uploaded by agents: their metadata and last scan verdict (the bytes stay in
//! the server's samples directory). Types, validation and the listing query shared by both
//! backends.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, StoreError};
use crate::query::sql::{Param, SqlBuilder};
use crate::types::clamp_limit;

/// Longest `path` kept for a sample (bytes).
pub const MAX_SAMPLE_PATH: usize = 4096;

/// An upload to record with [`crate::Store::record_sample`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSample {
    /// SHA-256 of the content, 64 hex digits (stored lower-case).
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// The uploading agent.
    pub agent_id: Option<String>,
    /// The file's path on the agent's host.
    pub path: String,
    /// When it arrived, ms.
    pub at: i64,
}

/// A stored sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// SHA-256, lower-case hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// First upload, ms.
    pub first_seen: i64,
    /// Latest upload, ms.
    pub last_seen: i64,
    /// How many times it was uploaded.
    pub uploads: u64,
    /// The agent that uploaded it first.
    pub first_agent_id: Option<String>,
    /// The agent that uploaded it last.
    pub last_agent_id: Option<String>,
    /// Its path on the host of the latest upload.
    pub last_path: String,
    /// The last scan's result (engines, findings, errors), as the server recorded it.
    pub last_verdict: Option<Value>,
    /// When the last verdict was recorded, ms.
    pub verdict_at: Option<i64>,
}

/// Where a sample listing continues: after the sample with this `last_seen` and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleCursor {
    /// `last_seen` of the last sample of the previous page.
    pub last_seen: i64,
    /// Its SHA-256.
    pub sha256: String,
}

/// A sample listing: newest `last_seen` first (then SHA-256, descending).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleQuery {
    /// Page size (0: the default, at most [`crate::MAX_PAGE_LIMIT`]).
    pub limit: u32,
    /// Continue after this sample.
    pub after: Option<SampleCursor>,
}

/// Is `text` a SHA-256 in hex (either case)?
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The SHA-256 as stored (lower-case), or `InvalidArgument`.
pub(crate) fn sample_key(sha256: &str) -> Result<String> {
    if !is_sha256_hex(sha256) {
        return Err(StoreError::InvalidArgument(
            "a sample's sha256 must be 64 hex digits".into(),
        ));
    }
    Ok(sha256.to_ascii_lowercase())
}

/// Checks an upload; returns the stored key and size.
pub(crate) fn validate_new_sample(s: &NewSample) -> Result<(String, i64)> {
    let key = sample_key(&s.sha256)?;
    let size = i64::try_from(s.size)
        .map_err(|_| StoreError::InvalidArgument("sample size out of range".into()))?;
    if s.path.len() > MAX_SAMPLE_PATH {
        return Err(StoreError::InvalidArgument(format!(
            "sample path is longer than {MAX_SAMPLE_PATH} bytes"
        )));
    }
    if s.path.contains('\0') {
        return Err(StoreError::InvalidArgument(
            "sample path contains a NUL character".into(),
        ));
    }
    if let Some(agent) = &s.agent_id
        && (agent.is_empty() || agent.len() > 128)
    {
        return Err(StoreError::InvalidArgument(
            "agent id must be 1 to 128 bytes".into(),
        ));
    }
    Ok((key, size))
}

/// The columns every sample query selects.
pub(crate) const SAMPLE_COLS: &str = "sha256, size, first_seen, last_seen, uploads, \
    first_agent_id, last_agent_id, last_path, last_verdict, verdict_at";

/// `SELECT … FROM samples` for a listing (keyset pagination, newest first).
pub(crate) fn list_query(b: &mut SqlBuilder, q: &SampleQuery) {
    b.push("SELECT ")
        .push(SAMPLE_COLS)
        .push(" FROM samples WHERE 1 = 1");
    if let Some(after) = &q.after {
        b.push(" AND (last_seen < ")
            .push_bind(Param::Int(after.last_seen))
            .push(" OR (last_seen = ")
            .push_bind(Param::Int(after.last_seen))
            .push(" AND sha256 < ")
            .push_bind(Param::Text(after.sha256.to_ascii_lowercase()))
            .push("))");
    }
    b.push(" ORDER BY last_seen DESC, sha256 DESC LIMIT ")
        .push_bind(Param::Int(i64::from(clamp_limit(q.limit))));
}

/// A stored count as `u64`.
pub(crate) fn count(what: &str, v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|e| crate::common::corrupt(what, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let ok = NewSample {
            sha256: "AB".repeat(32),
            size: 3,
            agent_id: Some("a".into()),
            path: "/tmp/x".into(),
            at: 1,
        };
        assert_eq!(validate_new_sample(&ok).unwrap(), ("ab".repeat(32), 3));
        let mut bad = ok.clone();
        bad.sha256 = "xyz".into();
        assert!(validate_new_sample(&bad).is_err());
        let mut bad = ok.clone();
        bad.path = "a\0b".into();
        assert!(validate_new_sample(&bad).is_err());
        let mut bad = ok;
        bad.size = u64::MAX;
        assert!(validate_new_sample(&bad).is_err());
    }
}
