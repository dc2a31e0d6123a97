//! Event search: the query language, its errors, injection attempts, cursor paging. Every scenario
//! runs against SQLite (always) and PostgreSQL (when `DOZOR_TEST_POSTGRES_URL` is set).

#[macro_use]
mod common;

use std::collections::HashSet;

use common::*;
use dozor_store::*;
use serde_json::json;
use uuid::Uuid;

suite!(
    query_language,
    query_errors_carry_position,
    injection_attempts_are_harmless,
    pagination_cursor_is_stable,
    analyst_columns_are_backfilled_on_upgrade,
    keyword_index_follows_time_windows_and_deletes,
    keyword_index_is_built_for_events_stored_before_it,
);

const HOUR: i64 = 3_600_000;

/// The statements of a migration that fill its columns in rows stored before it (its
/// `UPDATE`s), comments dropped.
fn backfill_statements(migration: &str) -> Vec<String> {
    let text: String = migration
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    text.split(';')
        .map(str::trim)
        .filter(|st| st.starts_with("UPDATE"))
        .map(str::to_owned)
        .collect()
}

mod scenarios {
    use super::*;

    /// A small corpus for the query language.
    fn corpus() -> Vec<NewEvent> {
        vec![
            // 0: powershell with an encoded command, by a user
            ev(
                T0,
                Some("h1"),
                json!({
                    "@timestamp": "2023-11-14T22:13:20Z",
                    "event": {"kind": "event", "category": ["process"], "type": ["start"], "action": "process-created", "code": "4688"},
                    "process": {"name": "PowerShell.EXE", "pid": 4242, "executable": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                                "command_line": "powershell.exe -EncodedCommand SQBFAFgA", "parent": {"name": "cmd.exe"}},
                    "user": {"name": "alice"},
                    "winlog": {"channel": "Security", "event_id": 4688, "event_data": {"LogonType": "10", "SubjectUserName": "alice"}},
                    "tags": ["attack.t1059.001", "windows"]
                }),
            ),
            // 1: powershell run by SYSTEM
            ev(
                T0 + 1,
                Some("h2"),
                json!({
                    "event": {"kind": "event", "category": "process", "action": "process-created", "code": 4688},
                    "process": {"name": "powershell.exe", "pid": 77},
                    "user": {"name": "SYSTEM"},
                    "winlog": {"event_id": 4688, "event_data": {"LogonType": "5"}}
                }),
            ),
            // 2: network connection, no user, Cyrillic host
            ev(
                T0 + 2,
                Some("h1"),
                json!({
                    "event": {"kind": "event", "category": ["network", "process"], "action": "connection-attempted", "code": "3"},
                    "destination": {"ip": "10.1.2.3", "port": 445},
                    "host": {"name": "Бухгалтерия-ПК"},
                    "process": {"name": "svchost.exe", "pid": 900, "entity_id": "{0A1B-2C}",
                                "parent": {"entity_id": "{0A1B-01}"}},
                    "network": {"transport": "tcp", "tls": false},
                    "message": "100%_done"
                }),
            ),
            // 3: logon by a Cyrillic user
            ev(
                T0 + 3,
                None,
                json!({
                    "event": {"kind": "event", "category": ["authentication"], "action": "logged-in", "outcome": "success"},
                    "user": {"name": "Администратор"},
                    "source": {"ip": "192.0.2.7"},
                    "message": "100xydone",
                    "winlog": {"event_id": 4624, "event_data": {"LogonType": " 3 "}}
                }),
            ),
            // 4: file event with quotes and backslashes
            ev(
                T0 + 4,
                Some("h3"),
                json!({
                    "event": {"kind": "alert", "category": ["file"], "action": "file-created"},
                    "file": {"path": "C:\\Users\\bob\\AppData\\Local\\Temp\\x \"quoted\".ps1"},
                    "process": {"name": "explorer.exe"},
                    "network": {"tls": true}
                }),
            ),
        ]
    }

    pub async fn query_language(s: S, _raw: Raw) {
        let c = corpus();
        s.insert_events(&c).await.unwrap();
        let id = |i: usize| c[i].id;
        let set = |xs: &[usize]| xs.iter().map(|i| id(*i)).collect::<HashSet<_>>();
        let cases: Vec<(&str, Vec<usize>)> = vec![
            ("", vec![0, 1, 2, 3, 4]),
            ("process.name:powershell.exe", vec![0, 1]),
            ("process.name:POWERSHELL.exe", vec![0, 1]),
            (
                "process.name:powershell.exe AND NOT user.name:SYSTEM",
                vec![0],
            ),
            ("NOT user.name:SYSTEM", vec![0, 2, 3, 4]),
            ("process.name:power*", vec![0, 1]),
            ("process.name:*.EXE", vec![0, 1, 2, 4]),
            ("process.name:*host*", vec![2]),
            ("process.name:s*t.exe", vec![2]),
            ("process.name:svchost OR user.name:alice", vec![0]),
            (
                "(process.name:svchost.exe OR user.name:alice) AND event.code:4688",
                vec![0],
            ),
            (
                "process.name:svchost.exe OR (user.name:alice AND event.code:3)",
                vec![2],
            ),
            ("encodedcommand", vec![0]),
            ("sqbfafga", vec![0]),
            ("powershell NOT alice", vec![1]),
            (r#""C:\Windows\System32""#, vec![0]),
            (r"file.path:C:\Users\*\AppData\*", vec![4]),
            (r#"file.path:"*\"quoted\"*""#, vec![4]),
            (r#""x \"quoted\"""#, vec![4]),
            ("user.name:администратор", vec![3]),
            ("user.name:*МИН*", vec![3]),
            ("АДМИНИСТРАТОР", vec![3]),
            ("host.name:бухгалтерия*", vec![2]),
            (r#"host.name:"БУХГАЛТЕРИЯ-пк""#, vec![2]),
            ("host.name:*-ПК", vec![2]),
            ("host.name:*", vec![2]),
            ("NOT host.name:бухгалтерия-пк", vec![0, 1, 3, 4]),
            (r#"process.entity_id:"{0a1b-2c}""#, vec![2]),
            (r#"process.parent.entity_id:"{0A1B-01}""#, vec![2]),
            (r#"process.parent.entity_id:"{0A1B*""#, vec![2]),
            (
                r#"NOT process.entity_id:"{0A1B-2C}" AND process:*"#,
                vec![0, 1, 4],
            ),
            ("event.category:network", vec![2]),
            ("event.category:PROCESS", vec![0, 1, 2]),
            ("event.category:auth*", vec![3]),
            ("event.type:start", vec![0]),
            ("tags:attack.t1059*", vec![0]),
            ("event.code:4688", vec![0, 1]),
            ("event.action:process-*", vec![0, 1]),
            ("event.kind:alert", vec![4]),
            ("event.outcome:*", vec![3]),
            ("process.parent.name:*", vec![0]),
            ("winlog.event_id:>4000", vec![0, 1, 3]),
            ("winlog.event_id:>=4688", vec![0, 1]),
            ("winlog.event_id:<4688", vec![3]),
            ("process.pid:<=900", vec![1, 2]),
            ("winlog.event_data.LogonType:>=10", vec![0]),
            ("winlog.event_data.LogonType:<5", vec![3]),
            ("destination.port:445", vec![2]),
            ("destination.ip:10.1.*", vec![2]),
            ("destination.ip:10.1.2.3", vec![2]),
            ("source.ip:192.0.2.7", vec![3]),
            ("source.ip:*.2.7", vec![3]),
            ("NOT source.ip:192.0.2.7", vec![0, 1, 2, 4]),
            ("source.ip:* AND user.name:*", vec![3]),
            (
                "process.name:SVCHOST.EXE AND destination.ip:10.1.2.3",
                vec![2],
            ),
            ("network.tls:true", vec![4]),
            ("network.tls:false", vec![2]),
            ("process:*", vec![0, 1, 2, 4]),
            ("process:svchost.exe", vec![]),
            ("no.such.field:x", vec![]),
            ("NOT no.such.field:x", vec![0, 1, 2, 3, 4]),
            ("message:100%_done", vec![2]),
            ("message:100*done", vec![2, 3]),
            ("100%_", vec![2]),
            // Free text matches where a word of a value starts with it (the keyword index);
            // a leading `*` makes it a substring search anywhere.
            ("power", vec![0, 1]),
            ("POWERSHELL.exe", vec![0, 1]),
            ("exe", vec![0, 1, 2, 4]),
            ("shell", vec![]),
            ("*shell", vec![0, 1]),
            ("*SHELL.e*", vec![0, 1]),
            ("админ", vec![3]),
            ("4688", vec![0, 1]),
            ("winlog", vec![]),
            (r#""-EncodedCommand SQBF""#, vec![0]),
            (r#""EncodedCommand -SQBF""#, vec![]),
            ("power*exe", vec![0, 1]),
        ];
        for (q, want) in cases {
            assert_eq!(ids(&s, q).await, set(&want), "query {q:?}");
        }
        // combined with the agent filter and a time range
        let page = s
            .search_events(&EventQuery {
                agent_id: Some("h1".into()),
                from: Some(T0 + 1),
                to: Some(T0 + 10),
                query: Some("process.name:*".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            page.events.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![id(2)]
        );
    }

    /// Events stored before schema v15 get their `user_name`, `process_name`, `source_ip` and
    /// `destination_ip` from the migration's own statements: the columns are emptied, the
    /// migration's `UPDATE`s run again, and the searches that read the columns find what they
    /// found when the server filled them (ASCII values: SQLite's lower() folds only ASCII).
    pub async fn analyst_columns_are_backfilled_on_upgrade(s: S, raw: Raw) {
        let c = vec![
            ev(
                T0,
                None,
                json!({"user": {"name": "Alice"}, "process": {"name": "CMD.exe"},
                                "source": {"ip": "10.0.0.1"}, "destination": {"ip": "FE80::1"}}),
            ),
            ev(
                T0 + 1,
                None,
                json!({"user": {"name": 42}, "source": {"ip": true}}),
            ),
            ev(
                T0 + 2,
                None,
                json!({"user": {"name": ["a", "b"]}, "process": {"name": ""},
                                    "destination": {"ip": "x".repeat(300)}}),
            ),
            ev(
                T0 + 3,
                None,
                json!({"process": {"pid": 1}, "message": "no analyst fields"}),
            ),
        ];
        s.insert_events(&c).await.unwrap();
        let cases: Vec<(&str, Vec<usize>)> = vec![
            ("user.name:alice", vec![0]),
            ("user.name:42", vec![1]),
            ("user.name:*", vec![0, 1]),
            ("process.name:cmd.exe", vec![0]),
            ("process.name:*", vec![0]),
            ("source.ip:10.0.0.1", vec![0]),
            ("source.ip:true", vec![1]),
            ("source.ip:*", vec![0, 1]),
            ("destination.ip:fe80::1", vec![0]),
            ("destination.ip:*", vec![0]),
            ("NOT user.name:alice", vec![1, 2, 3]),
        ];
        let want = |xs: &[usize]| xs.iter().map(|i| c[*i].id).collect::<HashSet<_>>();
        for (q, found) in &cases {
            assert_eq!(ids(&s, q).await, want(found), "before: {q}");
        }
        raw.exec("UPDATE events SET user_name = NULL, process_name = NULL, source_ip = NULL, destination_ip = NULL")
            .await
            .unwrap();
        assert_eq!(ids(&s, "user.name:*").await, HashSet::new());
        let migration = match s.backend() {
            Backend::Sqlite => include_str!("../migrations/sqlite/0015_analyst_fields.sql"),
            Backend::Postgres => include_str!("../migrations/postgres/0015_analyst_fields.sql"),
        };
        let statements = backfill_statements(migration);
        assert_eq!(statements.len(), 5, "{statements:?}");
        for st in statements {
            raw.exec(&st).await.unwrap_or_else(|e| panic!("{st}: {e}"));
        }
        for (q, found) in &cases {
            assert_eq!(ids(&s, q).await, want(found), "after the backfill: {q}");
        }
    }

    /// Keyword lookups bounded to a time range find exactly the range's events, late arrivals
    /// included; duplicates add nothing to the index and purged events leave it.
    pub async fn keyword_index_follows_time_windows_and_deletes(s: S, raw: Raw) {
        let base = T0 - T0.rem_euclid(HOUR);
        let e = |ts: i64, text: &str| ev(ts, None, json!({ "message": text }));
        let early = vec![
            e(base + 10, "alpha one"),
            e(base + HOUR + 10, "alpha two"),
            e(base + 5 * HOUR, "alpha three"),
            e(base + HOUR + 20, "beta"),
        ];
        s.insert_events(&early).await.unwrap();
        // Arrives after the others, for the first hour: that hour's range of the index grows.
        let late = vec![e(base + 20, "alpha late")];
        s.insert_events(&late).await.unwrap();
        let [a, b, c, d] = [0, 1, 2, 3].map(|i| early[i].id);
        let l = late[0].id;
        let search = |from: Option<i64>, to: Option<i64>, q: &str| {
            let s = s.clone();
            let q = q.to_owned();
            async move {
                let page = s
                    .search_events(&EventQuery {
                        from,
                        to,
                        query: Some(q.clone()),
                        limit: 100,
                        ..Default::default()
                    })
                    .await
                    .unwrap_or_else(|err| panic!("{q}: {err}"));
                page.events.iter().map(|e| e.id).collect::<HashSet<_>>()
            }
        };
        let set = |xs: &[Uuid]| xs.iter().copied().collect::<HashSet<_>>();
        let h = |n: i64| Some(base + n * HOUR);
        assert_eq!(search(h(0), h(1), "alpha").await, set(&[a, l]));
        assert_eq!(search(h(1), h(2), "alpha").await, set(&[b]));
        assert_eq!(search(h(1), h(2), "NOT alpha").await, set(&[d]));
        assert_eq!(search(h(2), h(5), "alpha").await, set(&[]));
        assert_eq!(search(h(0), None, "alpha").await, set(&[a, b, c, l]));
        assert_eq!(search(None, h(2), "alpha").await, set(&[a, b, l]));
        assert_eq!(
            search(Some(base + HOUR + 15), Some(base + 5 * HOUR + 1), "alpha").await,
            set(&[c])
        );
        assert_eq!(search(h(0), h(6), "\"alpha tw\"").await, set(&[b]));
        assert_eq!(search(h(0), h(6), "\"two alpha\"").await, set(&[]));
        let histogram = s
            .event_histogram(&HistogramQuery {
                from: base,
                to: base + 6 * HOUR,
                bucket_ms: HOUR,
                query: Some("alpha".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let counts: Vec<u64> = histogram.iter().map(|b| b.count).collect();
        assert_eq!(counts, [2, 1, 0, 0, 0, 1]);
        assert_eq!(
            s.event_span(None, Some("alpha"), None).await.unwrap(),
            Some((base + 10, base + 5 * HOUR))
        );
        let fts_rows = |word: &str| {
            let raw = raw.clone();
            let sql =
                format!("SELECT count(*) FROM event_words WHERE event_words MATCH '\"{word}\"'");
            async move { raw.scalar(&sql).await }
        };
        let report = s.insert_events(&early[..1]).await.unwrap();
        assert_eq!(report.duplicates, 1);
        if s.backend() == Backend::Sqlite {
            assert_eq!(fts_rows("one").await, 1, "a duplicate is not indexed twice");
        }
        let purged = s.purge_before(base + HOUR).await.unwrap();
        assert_eq!(purged.events, 2);
        assert_eq!(search(None, None, "alpha").await, set(&[b, c]));
        if s.backend() == Backend::Sqlite {
            assert_eq!(fts_rows("one").await, 0, "purged events leave the index");
            assert_eq!(fts_rows("alpha").await, 2);
        }
        s.purge_before(base + 6 * HOUR).await.unwrap();
        assert_eq!(search(None, None, "alpha").await, set(&[]));
        if s.backend() == Backend::Sqlite {
            assert_eq!(fts_rows("alpha").await, 0);
            let hours = raw.scalar("SELECT count(*) FROM event_hours").await;
            assert_eq!(hours, 0, "hours without events are forgotten");
        }
    }

    /// Events stored before the keyword index get their words when the store opens (in
    /// batches; more than one here), and are found by them afterwards.
    pub async fn keyword_index_is_built_for_events_stored_before_it(s: S, raw: Raw) {
        let events: Vec<NewEvent> = (0..2100)
            .map(|i| {
                ev(
                    T0 + i,
                    None,
                    json!({"message": format!("Word{} common", i % 7)}),
                )
            })
            .collect();
        s.insert_events(&events).await.unwrap();
        assert_eq!(ids(&s, "word3").await.len(), 300);
        // As a store of schema v15 holds them: no words, a note that they are missing.
        match s.backend() {
            Backend::Sqlite => {
                raw.exec("INSERT INTO event_words (event_words) VALUES ('delete-all')")
                    .await
                    .unwrap();
                raw.exec("INSERT INTO event_words_pending SELECT min(seq), max(seq) FROM events")
                    .await
                    .unwrap();
            }
            Backend::Postgres => {
                raw.exec("UPDATE events SET words = NULL").await.unwrap();
                raw.exec("INSERT INTO event_words_pending VALUES (true)")
                    .await
                    .unwrap();
            }
        }
        assert_eq!(ids(&s, "word3").await.len(), 0);
        let reopened = raw.open_again().await;
        assert_eq!(ids(&reopened, "word3").await.len(), 300);
        assert_eq!(ids(&reopened, "common").await.len(), 1000.min(events.len()));
        assert_eq!(
            raw.scalar("SELECT count(*) FROM event_words_pending").await,
            0
        );
        reopened.close().await;
    }

    pub async fn query_errors_carry_position(s: S, _raw: Raw) {
        for (q, col) in [
            ("process.name:x AND", 19),
            ("(a:1 OR b:2", 1),
            ("a:>x", 4),
            ("x \"open", 3),
            ("bad'name:1", 4),
        ] {
            match s
                .search_events(&EventQuery {
                    query: Some(q.into()),
                    ..Default::default()
                })
                .await
            {
                Err(StoreError::Query(e)) => {
                    assert_eq!(e.column, col, "{q}: {e}");
                    assert!(e.to_string().contains(&format!("column {col}")), "{e}");
                }
                other => panic!("{q}: {other:?}"),
            }
        }
        let err = s
            .event_histogram(&HistogramQuery {
                from: 0,
                to: 10,
                bucket_ms: 1,
                query: Some(")".into()),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Query(_)));
    }

    pub async fn injection_attempts_are_harmless(s: S, _raw: Raw) {
        let c = corpus();
        s.insert_events(&c).await.unwrap();
        let attempts = [
            "a:'; DROP TABLE events;--",
            "\"'); DROP TABLE events; --\"",
            "process.name:\"x' OR '1'='1\"",
            "process.name:*' OR 1=1 --",
            "user.name:\"\\\"; DELETE FROM events; --\"",
            "x:>1) OR (1=1",
            "') OR 1=1; --",
            "process.name:%",
            "message:\\",
            "a:$1",
            "a:?",
            "$$; DROP TABLE events; $$",
            "'||(SELECT count(*) FROM events)||'",
        ];
        for q in attempts {
            let r = s
                .search_events(&EventQuery {
                    query: Some(q.into()),
                    ..Default::default()
                })
                .await;
            match r {
                Ok(page) => assert!(page.events.is_empty(), "{q}: {:?}", page.events),
                Err(StoreError::Query(_)) => {}
                Err(e) => panic!("{q}: {e}"),
            }
        }
        // field names cannot carry SQL
        assert!(matches!(
            s.search_events(&EventQuery {
                query: Some("a');DROP TABLE events;--:x".into()),
                ..Default::default()
            })
            .await,
            Err(StoreError::Query(_))
        ));
        // other string inputs are bound too
        let page = s
            .search_events(&EventQuery {
                agent_id: Some("h1' OR '1'='1".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(page.events.is_empty());
        // `%` and `_` are literals, not LIKE wildcards
        assert_eq!(ids(&s, "%").await, HashSet::from([c[2].id]));
        assert_eq!(ids(&s, "message:100_done").await, HashSet::new());
        audit_probe(&s).await;
        assert_eq!(s.count_events(None, None).await.unwrap(), 5);
        assert_eq!(ids(&s, "process.name:powershell.exe").await.len(), 2);
    }

    async fn audit_probe(s: &S) {
        let e = s
            .append_audit(&NewAuditEntry {
                actor: "x'); DROP TABLE audit_log; --".into(),
                action: "probe".into(),
                target: Some("'".into()),
                details: json!({"q": "'; DROP TABLE events; --"}),
            })
            .await
            .unwrap();
        assert_eq!(e.actor, "x'); DROP TABLE audit_log; --");
        let rs = s
            .list_audit(&AuditQuery {
                actor: Some("x'); DROP TABLE audit_log; --".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(rs.len(), 1);
    }

    pub async fn pagination_cursor_is_stable(s: S, _raw: Raw) {
        // 250 events, many sharing a timestamp (ties are broken by id)
        let events: Vec<NewEvent> = (0..250)
            .map(|i| {
                ev(
                    T0 + (i / 7) * 1000,
                    Some(if i % 2 == 0 { "a" } else { "b" }),
                    json!({"i": i}),
                )
            })
            .collect();
        for chunk in events.chunks(60) {
            s.insert_events(chunk).await.unwrap();
        }
        let mut expected: Vec<(i64, Uuid)> = events.iter().map(|e| (e.ts, e.id)).collect();
        expected.sort();
        expected.reverse();

        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let p = s
                .search_events(&EventQuery {
                    limit: 40,
                    cursor: cursor.clone(),
                    ..Default::default()
                })
                .await
                .unwrap();
            pages += 1;
            seen.extend(p.events.iter().map(|e| (e.ts, e.id)));
            if pages == 2 {
                // events arriving meanwhile that sort before the cursor must not duplicate or
                // shift what the next pages return
                s.insert_events(&[
                    ev(T0 + 10_000_000, Some("a"), json!({"late": 1})),
                    ev(T0 + 36 * 1000, Some("a"), json!({"late": 2})),
                ])
                .await
                .unwrap();
            }
            match p.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(pages, 7);
        assert_eq!(seen, expected);

        // filtered paging, and the same cursor twice gives the same page
        let first = s
            .search_events(&EventQuery {
                agent_id: Some("b".into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        let q2 = EventQuery {
            agent_id: Some("b".into()),
            limit: 10,
            cursor: first.next_cursor.clone(),
            ..Default::default()
        };
        let a = s.search_events(&q2).await.unwrap();
        let b = s.search_events(&q2).await.unwrap();
        assert_eq!(a, b);
        assert!(a.events.iter().all(|e| e.agent_id.as_deref() == Some("b")));
        assert!(first.events.last().unwrap().ts >= a.events[0].ts);

        for bad in ["", "not-a-cursor", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
            assert!(matches!(
                s.search_events(&EventQuery {
                    cursor: Some(bad.into()),
                    ..Default::default()
                })
                .await,
                Err(StoreError::InvalidCursor)
            ));
        }
        // limits are clamped
        let p = s
            .search_events(&EventQuery {
                limit: 0,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(p.events.len(), DEFAULT_PAGE_LIMIT as usize);
        let p = s
            .search_events(&EventQuery {
                limit: 1_000_000,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(p.events.len(), 252);
    }
}
