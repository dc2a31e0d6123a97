//! Searches have a deadline (the store's search timeout). Every scenario
//! runs against SQLite (always) and PostgreSQL (when `DOZOR_TEST_POSTGRES_URL` is set).

#[macro_use]
mod common;

use std::time::Duration;

use common::*;
use dozor_store::*;
use serde_json::json;

suite!(
    tuning = crate::common::Tuning {
        search_timeout: Some(std::time::Duration::ZERO),
        readers: None,
    };
    searches_past_their_timeout_are_cancelled,
);

mod scenarios {
    use super::*;

    /// Enough events that scanning them takes SQLite well past its first progress check.
    async fn many_events(s: &S) {
        let events: Vec<_> = (0..3000)
            .map(|i| {
                ev(
                    T0 + i,
                    Some("h1"),
                    json!({"event": {"kind": "event"}, "process": {"command_line": format!("cmd /c echo {i}")}}),
                )
            })
            .collect();
        s.insert_events(&events).await.unwrap();
    }

    pub async fn searches_past_their_timeout_are_cancelled(s: S, raw: Raw) {
        many_events(&s).await;
        // PostgreSQL: the search waits for the lock until statement_timeout; SQLite: the
        // deadline has passed at the progress handler's first look.
        let lock = lock_events(&raw).await;
        let started = std::time::Instant::now();
        match s.search_events(&slow_query()).await {
            Err(StoreError::SearchTimeout(after)) => assert_eq!(after, Duration::ZERO),
            other => panic!("not cut off: {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(lock);
    }
}
