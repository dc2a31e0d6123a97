//! Saved event searches: create, list (own and shared), change, re-run, delete; names unique
//! per owner; validation and the per-owner limit. Every scenario runs against SQLite (always)
//! and PostgreSQL (when `DOZOR_TEST_POSTGRES_URL` is set).

#[macro_use]
mod common;

use common::*;
use dozor_store::*;

suite!(
    saved_searches_crud_and_visibility,
    saved_searches_validation_and_limits,
);

mod scenarios {
    use super::*;

    fn search(name: &str, query: &str, shared: bool) -> NewSavedSearch {
        NewSavedSearch {
            name: name.into(),
            query: query.into(),
            params: SavedSearchParams {
                range: Some("7d".into()),
                agent: Some("agent-1".into()),
                columns: vec!["host.name".into(), "process.command_line".into()],
                ..SavedSearchParams::default()
            },
            shared,
        }
    }

    pub async fn saved_searches_crud_and_visibility(s: S, _raw: Raw) {
        let mine = s
            .create_saved_search(&search("  Failed logons ", "event.code:4625", false), "ann")
            .await
            .unwrap();
        assert_eq!(mine.name, "Failed logons", "trimmed");
        assert_eq!(mine.owner, "ann");
        assert!(!mine.shared);
        assert_eq!(mine.params.range.as_deref(), Some("7d"));
        assert_eq!(
            mine.params.columns,
            vec!["host.name".to_owned(), "process.command_line".to_owned()]
        );
        assert_eq!(mine.last_run_at, None);
        assert_eq!(mine.created_at, mine.updated_at);
        let shared = s
            .create_saved_search(
                &search("powershell", "process.name:powershell.exe", true),
                "bob",
            )
            .await
            .unwrap();
        let bobs_own = s
            .create_saved_search(&search("Bob's", "user.name:bob", false), "bob")
            .await
            .unwrap();
        // The same name under another owner is fine; twice under one is a conflict.
        s.create_saved_search(&search("Failed logons", "", false), "bob")
            .await
            .unwrap();
        match s
            .create_saved_search(&search("Failed logons", "x", true), "ann")
            .await
        {
            Err(StoreError::Conflict(what)) => assert!(what.contains("Failed logons"), "{what}"),
            other => panic!("expected a conflict, got {other:?}"),
        }

        // Ann sees hers and the shared one, by name in any letter case; everyone: all four.
        let names = |list: Vec<SavedSearch>| list.into_iter().map(|x| x.name).collect::<Vec<_>>();
        assert_eq!(
            names(s.list_saved_searches(Some("ann")).await.unwrap()),
            vec!["Failed logons", "powershell"]
        );
        assert_eq!(s.list_saved_searches(None).await.unwrap().len(), 4);
        assert!(
            !names(s.list_saved_searches(Some("ann")).await.unwrap()).contains(&"Bob's".to_owned())
        );
        assert_eq!(
            s.get_saved_search(bobs_own.id).await.unwrap().unwrap(),
            bobs_own
        );
        assert!(s.get_saved_search(i64::MAX).await.unwrap().is_none());

        // A change replaces what it names and keeps the rest.
        let renamed = s
            .update_saved_search(
                mine.id,
                &SavedSearchChange {
                    name: Some("Logon failures".into()),
                    shared: Some(true),
                    ..SavedSearchChange::default()
                },
            )
            .await
            .unwrap()
            .expect("exists");
        assert_eq!(renamed.name, "Logon failures");
        assert!(renamed.shared);
        assert_eq!(renamed.query, "event.code:4625");
        assert_eq!(renamed.params, mine.params);
        assert!(renamed.updated_at >= mine.updated_at);
        let new_params = SavedSearchParams {
            range: Some("custom".into()),
            from: Some("now-2h".into()),
            to: Some("now".into()),
            agent: None,
            columns: vec![],
        };
        let requeried = s
            .update_saved_search(
                mine.id,
                &SavedSearchChange {
                    query: Some("event.code:4625 AND user.name:admin".into()),
                    params: Some(new_params.clone()),
                    ..SavedSearchChange::default()
                },
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(requeried.params, new_params);
        assert_eq!(requeried.name, "Logon failures");
        // Renaming onto another search of the same owner is a conflict; onto another
        // owner's name is not.
        match s
            .update_saved_search(
                bobs_own.id,
                &SavedSearchChange {
                    name: Some("powershell".into()),
                    ..SavedSearchChange::default()
                },
            )
            .await
        {
            Err(StoreError::Conflict(_)) => {}
            other => panic!("expected a conflict, got {other:?}"),
        }
        s.update_saved_search(
            bobs_own.id,
            &SavedSearchChange {
                name: Some("Logon failures".into()),
                ..SavedSearchChange::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
        assert!(
            s.update_saved_search(i64::MAX, &SavedSearchChange::default())
                .await
                .unwrap()
                .is_none()
        );

        // Re-runs are recorded (never moving back).
        assert!(s.mark_saved_search_run(shared.id, 5_000).await.unwrap());
        assert!(s.mark_saved_search_run(shared.id, 4_000).await.unwrap());
        assert_eq!(
            s.get_saved_search(shared.id)
                .await
                .unwrap()
                .unwrap()
                .last_run_at,
            Some(5_000)
        );
        assert!(!s.mark_saved_search_run(i64::MAX, 1).await.unwrap());

        let gone = s.delete_saved_search(shared.id).await.unwrap().unwrap();
        assert_eq!(gone.name, "powershell");
        assert!(s.delete_saved_search(shared.id).await.unwrap().is_none());
        assert_eq!(
            names(s.list_saved_searches(Some("ann")).await.unwrap()),
            vec!["Logon failures"]
        );
    }

    pub async fn saved_searches_validation_and_limits(s: S, _raw: Raw) {
        let invalid = |r: Result<SavedSearch>| match r {
            Err(StoreError::InvalidArgument(why)) => why,
            other => panic!("expected invalid, got {other:?}"),
        };
        let why = invalid(s.create_saved_search(&search(" ", "", false), "ann").await);
        assert!(why.starts_with("name"), "{why}");
        let why = invalid(
            s.create_saved_search(&search(&"n".repeat(121), "", false), "ann")
                .await,
        );
        assert!(why.contains("120"), "{why}");
        let why = invalid(
            s.create_saved_search(&search("big", &"q".repeat(8193), false), "ann")
                .await,
        );
        assert!(why.contains("8192"), "{why}");
        let mut bad_cols = search("cols", "", false);
        bad_cols.params.columns = vec!["password".into()];
        let why = invalid(s.create_saved_search(&bad_cols, "ann").await);
        assert!(why.contains("columns"), "{why}");
        let why = invalid(s.create_saved_search(&search("x", "", false), " ").await);
        assert!(why.contains("owner"), "{why}");
        let saved = s
            .create_saved_search(&search("ok", "", false), "ann")
            .await
            .unwrap();
        let why = match s
            .update_saved_search(
                saved.id,
                &SavedSearchChange {
                    name: Some(String::new()),
                    ..SavedSearchChange::default()
                },
            )
            .await
        {
            Err(StoreError::InvalidArgument(why)) => why,
            other => panic!("expected invalid, got {other:?}"),
        };
        assert!(why.starts_with("name"), "{why}");
        // Unicode names count characters, not bytes; the query keeps its text as given.
        let ru = s
            .create_saved_search(&search(&"ж".repeat(120), "message:\"вход\"", true), "ann")
            .await
            .unwrap();
        assert_eq!(ru.name.chars().count(), 120);
        assert_eq!(ru.query, "message:\"вход\"");

        // At most MAX_SAVED_SEARCHES_PER_OWNER per owner; others are not limited by it.
        for i in 2..MAX_SAVED_SEARCHES_PER_OWNER {
            s.create_saved_search(&search(&format!("s{i}"), "", false), "ann")
                .await
                .unwrap();
        }
        let why = invalid(
            s.create_saved_search(&search("one too many", "", false), "ann")
                .await,
        );
        assert!(
            why.contains(&MAX_SAVED_SEARCHES_PER_OWNER.to_string()),
            "{why}"
        );
        s.create_saved_search(&search("one too many", "", false), "bob")
            .await
            .unwrap();
        assert_eq!(
            s.list_saved_searches(Some("ann")).await.unwrap().len() as u64,
            MAX_SAVED_SEARCHES_PER_OWNER
        );
    }
}
