//! Samples on PostgreSQL (see [`crate::samples`]).

use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Row};

use super::{PgStore, dynamic, no_nul, strip_nul};
use crate::error::Result;
use crate::query::sql::{Dialect, SqlBuilder};
use crate::samples::*;

fn sample_from_row(row: &PgRow) -> Result<Sample> {
    let verdict: Option<Json<Value>> = row.try_get("last_verdict")?;
    Ok(Sample {
        sha256: row.try_get("sha256")?,
        size: count("sample size", row.try_get("size")?)?,
        first_seen: row.try_get("first_seen")?,
        last_seen: row.try_get("last_seen")?,
        uploads: count("sample uploads", row.try_get("uploads")?)?,
        first_agent_id: row.try_get("first_agent_id")?,
        last_agent_id: row.try_get("last_agent_id")?,
        last_path: row.try_get("last_path")?,
        last_verdict: verdict.map(|Json(v)| v),
        verdict_at: row.try_get("verdict_at")?,
    })
}

impl PgStore {
    pub(super) async fn record_sample_impl(&self, s: &NewSample) -> Result<(Sample, bool)> {
        let (key, size) = validate_new_sample(s)?;
        let sql = format!(
            "INSERT INTO samples (sha256, size, first_seen, last_seen, uploads, first_agent_id, \
             last_agent_id, last_path) VALUES ($1, $2, $3, $3, 1, $4, $4, $5) \
             ON CONFLICT (sha256) DO UPDATE SET last_seen = GREATEST(samples.last_seen, excluded.last_seen), \
             uploads = samples.uploads + 1, last_agent_id = excluded.last_agent_id, \
             last_path = excluded.last_path \
             RETURNING {SAMPLE_COLS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(key)
            .bind(size)
            .bind(s.at)
            .bind(s.agent_id.as_deref().map(no_nul))
            .bind(s.path.clone())
            .fetch_one(&self.pool)
            .await?;
        let sample = sample_from_row(&row)?;
        let first = sample.uploads == 1;
        Ok((sample, first))
    }

    pub(super) async fn set_sample_verdict_impl(
        &self,
        sha256: &str,
        verdict: &Value,
        at: i64,
    ) -> Result<bool> {
        let key = sample_key(sha256)?;
        let mut verdict = verdict.clone();
        strip_nul(&mut verdict);
        let n =
            sqlx::query("UPDATE samples SET last_verdict = $1, verdict_at = $2 WHERE sha256 = $3")
                .bind(Json(verdict))
                .bind(at)
                .bind(key)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(n > 0)
    }

    pub(super) async fn get_sample_impl(&self, sha256: &str) -> Result<Option<Sample>> {
        if !is_sha256_hex(sha256) {
            return Ok(None);
        }
        let sql = format!("SELECT {SAMPLE_COLS} FROM samples WHERE sha256 = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(sha256.to_ascii_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(sample_from_row).transpose()
    }

    pub(super) async fn list_samples_impl(&self, q: &SampleQuery) -> Result<Vec<Sample>> {
        let mut b = SqlBuilder::new(Dialect::Postgres);
        list_query(&mut b, q);
        dynamic(b)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(sample_from_row)
            .collect()
    }
}
