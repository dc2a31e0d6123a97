//! Credential checks (tokens, sessions) have connections of their own: a viewer's slow
//! searches holding every reader don't stall sign-ins; a search whose caller went away stops
//! on the database instead of running to its timeout. Every scenario
//! runs against SQLite (always) and PostgreSQL (when `DOZOR_TEST_POSTGRES_URL` is set).

#[macro_use]
mod common;

use std::time::Duration;

use common::*;
use dozor_store::*;

suite!(
    tuning = crate::common::Tuning {
        search_timeout: Some(std::time::Duration::from_secs(5)),
        readers: Some(1),
    };
    credential_checks_do_not_queue_behind_searches,
    abandoned_searches_are_cancelled,
);

mod scenarios {
    use super::*;

    pub async fn credential_checks_do_not_queue_behind_searches(s: S, raw: Raw) {
        let token = s
            .create_token(&NewToken {
                name: "t".into(),
                role: Role::Viewer,
                expires_at: None,
                owner: None,
            })
            .await
            .unwrap();
        let lock = lock_events(&raw).await;
        // With one reader connection, these searches hold it (on PostgreSQL, waiting for the
        // lock until their timeout) ...
        let searches: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { s.search_events(&slow_query()).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        // ... and the token is still checked at once, on the credential pool.
        let started = std::time::Instant::now();
        let info = s.verify_token(&token.secret).await.unwrap();
        assert!(info.is_some());
        assert!(
            started.elapsed() < Duration::from_millis(250),
            "the token check waited {:?}",
            started.elapsed()
        );
        drop(lock);
        for search in searches {
            let _ = search.await.unwrap();
        }
    }

    /// A search dropped half-way (as when the HTTP client disconnects and its handler is
    /// dropped) is cancelled on PostgreSQL at once, not left waiting for its 5 s timeout.
    /// SQLite's searches stop through their progress handler (`sqlite.rs` tests it).
    pub async fn abandoned_searches_are_cancelled(s: S, raw: Raw) {
        let Some(lock) = lock_events(&raw).await else {
            return;
        };
        // Searches of this store's events waiting behind the lock.
        let waiting = "SELECT count(*) FROM pg_locks AS l JOIN pg_stat_activity AS a USING (pid) \
            WHERE NOT l.granted AND l.relation = 'events'::regclass \
            AND a.application_name LIKE 'dozor search %'";
        let search = {
            let s = s.clone();
            tokio::spawn(async move { s.search_events(&slow_query()).await })
        };
        let until = |want: i64, within: Duration| {
            let raw = raw.clone();
            async move {
                let started = std::time::Instant::now();
                loop {
                    let n = raw.scalar(waiting).await;
                    if n == want {
                        return started.elapsed();
                    }
                    assert!(
                        started.elapsed() < within,
                        "{n} searches waiting after {within:?}, expected {want}"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        until(1, Duration::from_secs(3)).await;
        search.abort();
        let gone_after = until(0, Duration::from_secs(2)).await;
        assert!(gone_after < Duration::from_secs(2), "{gone_after:?}");
        drop(lock);
        // The pool is still usable afterwards.
        s.search_events(&EventQuery::default()).await.unwrap();
    }
}
