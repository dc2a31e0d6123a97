//! Alert exceptions (issue 16): written once for both drivers, called by the
//! [`Store`](crate::Store) methods of the same names in `store.rs` and by `store_batch`.

use std::collections::HashMap;

use super::row::Row;
use super::{Driver, On, SqlStore, Tx, json, sql};
use crate::common::corrupt;
use crate::error::{Result, StoreError};
use crate::types::*;

pub(crate) const EXCEPTION_COLS: &str = "id, rule_id, conditions, reason, created_by, \
    created_at, expires_at, suppressed, last_suppressed_at";

fn exception<R: Row>(r: &R) -> Result<AlertException> {
    let conditions = r.json("conditions")?.unwrap_or_default();
    Ok(AlertException {
        id: r.get("id")?,
        rule_id: r.get("rule_id")?,
        conditions: serde_json::from_value(conditions)
            .map_err(|e| corrupt("alert exception conditions", e))?,
        reason: r.get("reason")?,
        created_by: r.get("created_by")?,
        created_at: r.get("created_at")?,
        expires_at: r.get("expires_at")?,
        suppressed: r.get("suppressed")?,
        last_suppressed_at: r.get("last_suppressed_at")?,
    })
}

impl<D: Driver> SqlStore<D> {
    pub(super) async fn exception_insert(
        &self,
        e: &NewException,
        created_by: &str,
    ) -> Result<AlertException> {
        let now = now_ms();
        if let Some(problem) = exception_problem(e) {
            return Err(StoreError::InvalidArgument(problem));
        }
        let conditions: Vec<ExceptionCondition> = e
            .conditions
            .iter()
            .map(|c| ExceptionCondition {
                field: c.field.trim().to_owned(),
                value: c.value.trim().to_owned(),
            })
            .collect();
        let st = sql!(
            "INSERT INTO alert_exceptions (rule_id, conditions, reason, created_by, created_at, \
             expires_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING {EXCEPTION_COLS}",
            e.rule_id.trim(),
            json(serde_json::to_value(&conditions).unwrap_or_default()),
            e.reason.trim(),
            created_by,
            now,
            e.expires_at
        );
        self.one(On::Write, st, exception).await
    }

    pub(super) async fn exception_rows(&self) -> Result<Vec<AlertException>> {
        let st = sql!("SELECT {EXCEPTION_COLS} FROM alert_exceptions ORDER BY id DESC");
        self.list(On::Read, st, exception).await
    }

    pub(super) async fn exception_delete(&self, id: i64) -> Result<Option<AlertException>> {
        let st = sql!(
            "DELETE FROM alert_exceptions WHERE id = ? RETURNING {EXCEPTION_COLS}",
            id
        );
        self.find(On::Write, st, exception).await
    }

    /// The exceptions in force now for these rules, per rule.
    pub(super) async fn exceptions_for(
        &self,
        tx: &mut Tx<D>,
        rules: &[&str],
        now: i64,
    ) -> Result<HashMap<String, Vec<AlertException>>> {
        let mut out: HashMap<String, Vec<AlertException>> = HashMap::new();
        if rules.is_empty() {
            return Ok(out);
        }
        // One cheap look first: most deployments have few exceptions or none.
        let any = sql!(
            "SELECT count(*) AS n FROM alert_exceptions WHERE expires_at IS NULL OR expires_at > ?",
            now
        );
        if self.count(On::Tx(&mut *tx), any).await? == 0 {
            return Ok(out);
        }
        let st = sql!(
            "SELECT {EXCEPTION_COLS} FROM alert_exceptions \
             WHERE expires_at IS NULL OR expires_at > ? ORDER BY id",
            now
        );
        for e in self.list(On::Tx(&mut *tx), st, exception).await? {
            if rules.contains(&e.rule_id.as_str()) {
                out.entry(e.rule_id.clone()).or_default().push(e);
            }
        }
        Ok(out)
    }

    /// Counts suppressed matches on their exceptions.
    pub(super) async fn exceptions_count(
        &self,
        tx: &mut Tx<D>,
        counts: &HashMap<i64, i64>,
        now: i64,
    ) -> Result<()> {
        for (id, n) in counts {
            let st = sql!(
                "UPDATE alert_exceptions SET suppressed = suppressed + ?, \
                 last_suppressed_at = ? WHERE id = ?",
                *n,
                now,
                *id
            );
            self.exec(On::Tx(&mut *tx), st).await?;
        }
        Ok(())
    }
}
