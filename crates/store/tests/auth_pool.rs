//! Credential checks (tokens, sessions) have connections of their own: a viewer's slow
//! searches holding every reader don't stall sign-ins. Every scenario
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
}
