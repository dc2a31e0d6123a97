//! Agent commands: creation, delivery and redelivery, results, concurrent takes. Every scenario
//! runs against SQLite (always) and PostgreSQL (when `DOZOR_TEST_POSTGRES_URL` is set).

#[macro_use]
mod common;

use std::time::Duration;

use common::*;
use dozor_store::*;
use serde_json::json;
use uuid::Uuid;

suite!(
    agent_commands_delivery,
    agent_commands_finish,
    agent_commands_concurrent_take,
);

mod scenarios {
    use super::*;

    fn scan(agent_id: &str, path: &str) -> NewAgentCommand {
        NewAgentCommand {
            agent_id: agent_id.into(),
            kind: "scan_path".into(),
            args: json!({"path": path, "recursive": true}),
            requested_by: "bob-analyst".into(),
        }
    }

    const REDELIVER: Duration = Duration::from_secs(10 * 60);

    fn command_ids(commands: &[AgentCommand]) -> Vec<Uuid> {
        commands.iter().map(|c| c.id).collect()
    }

    pub async fn agent_commands_delivery(s: S, _raw: Raw) {
        s.insert_agent(&new_agent("a-1", "web-01")).await.unwrap();
        s.insert_agent(&new_agent("a-2", "web-02")).await.unwrap();

        // only for an enrolled, unrevoked agent, with valid input
        assert!(matches!(
            s.create_command(&scan("nope", "/tmp")).await,
            Err(StoreError::NotFound(_))
        ));
        for bad in [
            NewAgentCommand {
                kind: " ".into(),
                ..scan("a-1", "/tmp")
            },
            NewAgentCommand {
                args: json!(["/tmp"]),
                ..scan("a-1", "/tmp")
            },
            NewAgentCommand {
                requested_by: String::new(),
                ..scan("a-1", "/tmp")
            },
            scan("a-1", &"x".repeat(MAX_COMMAND_ARGS_BYTES)),
        ] {
            assert!(
                matches!(
                    s.create_command(&bad).await,
                    Err(StoreError::InvalidArgument(_))
                ),
                "{bad:?}"
            );
        }

        let before = now_ms();
        let c1 = s.create_command(&scan("a-1", "/srv/www")).await.unwrap();
        let c2 = s.create_command(&scan("a-1", "C:\\Users")).await.unwrap();
        let other = s.create_command(&scan("a-2", "/home")).await.unwrap();
        assert_eq!(c1.status, CommandStatus::Pending);
        assert_eq!(
            (c1.agent_id.as_str(), c1.kind.as_str()),
            ("a-1", "scan_path")
        );
        assert_eq!(c1.args, json!({"path": "/srv/www", "recursive": true}));
        assert_eq!(c1.requested_by, "bob-analyst");
        assert!(c1.created_at >= before);
        assert_eq!(c1.id.get_version_num(), 7);
        assert!(c1.delivered_at.is_none() && c1.finished_at.is_none());
        assert!(c1.result.is_none() && c1.error.is_none() && c1.attempts == 0);
        assert_eq!(c2.args["path"], "C:\\Users");
        assert_eq!(s.get_command(c1.id).await.unwrap().unwrap(), c1);
        assert!(s.get_command(Uuid::now_v7()).await.unwrap().is_none());
        // newest first, per agent, bounded
        assert_eq!(
            command_ids(&s.list_agent_commands("a-1", 0).await.unwrap()),
            [c2.id, c1.id]
        );
        assert_eq!(
            command_ids(&s.list_agent_commands("a-1", 1).await.unwrap()),
            [c2.id]
        );
        assert!(s.list_agent_commands("nope", 10).await.unwrap().is_empty());

        assert_eq!(s.count_open_commands("a-1").await.unwrap(), 2);
        assert_eq!(s.count_open_commands("nope").await.unwrap(), 0);
        // the first take hands out both pending commands, oldest first
        let t0 = now_ms();
        let taken = s.take_for_delivery("a-1", t0, REDELIVER, 3).await.unwrap();
        assert_eq!(command_ids(&taken), [c1.id, c2.id]);
        for c in &taken {
            assert_eq!(c.status, CommandStatus::Delivered);
            assert_eq!((c.attempts, c.delivered_at), (1, Some(t0)));
        }
        assert_eq!(s.get_command(c1.id).await.unwrap().unwrap(), taken[0]);
        // nothing again before the redelivery delay; another agent's stay its own
        assert!(
            s.take_for_delivery("a-1", t0 + 1000, REDELIVER, 3)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            command_ids(&s.take_for_delivery("a-2", t0, REDELIVER, 3).await.unwrap()),
            [other.id]
        );
        // a new command comes with the next heartbeat alone
        let c3 = s.create_command(&scan("a-1", "/opt")).await.unwrap();
        assert_eq!(
            command_ids(
                &s.take_for_delivery("a-1", t0 + 2000, REDELIVER, 3)
                    .await
                    .unwrap()
            ),
            [c3.id]
        );
        // after the delay, the unfinished ones again (attempt 2)
        let t1 = t0 + 10 * MIN;
        let again = s.take_for_delivery("a-1", t1, REDELIVER, 3).await.unwrap();
        assert_eq!(command_ids(&again), [c1.id, c2.id]);
        assert!(
            again
                .iter()
                .all(|c| c.attempts == 2 && c.delivered_at == Some(t1))
        );
        // a finished one is not redelivered
        assert!(matches!(
            s.finish_command(
                c1.id,
                "a-1",
                CommandStatus::Done,
                Some(&json!({"files_scanned": 1})),
                None
            )
            .await
            .unwrap(),
            CommandFinish::Recorded(_)
        ));
        let t2 = t1 + 10 * MIN;
        let third = s.take_for_delivery("a-1", t2, REDELIVER, 3).await.unwrap();
        assert_eq!(command_ids(&third), [c2.id, c3.id]);
        assert_eq!(third[0].attempts, 3);
        assert_eq!(third[1].attempts, 2);
        // delivered the most times without a result: expired, not handed out
        // c1 is done; c2 and c3 still wait
        assert_eq!(s.count_open_commands("a-1").await.unwrap(), 2);
        let t3 = t2 + 10 * MIN;
        let last = s.take_for_delivery("a-1", t3, REDELIVER, 3).await.unwrap();
        assert_eq!(command_ids(&last), [c3.id]);
        let gone = s.get_command(c2.id).await.unwrap().unwrap();
        assert_eq!(gone.status, CommandStatus::Expired);
        assert_eq!((gone.attempts, gone.finished_at), (3, Some(t3)));
        assert!(gone.result.is_none());
        assert!(
            s.take_for_delivery("a-1", t3 + 60 * MIN, REDELIVER, 3)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            s.get_command(c3.id).await.unwrap().unwrap().status,
            CommandStatus::Expired
        );
        // the finished one kept its result
        let done = s.get_command(c1.id).await.unwrap().unwrap();
        assert_eq!(done.status, CommandStatus::Done);
        assert_eq!(done.attempts, 2);

        // max_attempts 0 counts as 1; redeliver_after 0 redelivers at once
        let c4 = s.create_command(&scan("a-1", "/var")).await.unwrap();
        let t4 = now_ms();
        let once = s
            .take_for_delivery("a-1", t4, Duration::ZERO, 0)
            .await
            .unwrap();
        assert_eq!(command_ids(&once), [c4.id]);
        assert!(
            s.take_for_delivery("a-1", t4, Duration::ZERO, 0)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            s.get_command(c4.id).await.unwrap().unwrap().status,
            CommandStatus::Expired
        );

        // a revoked agent gets no new commands; its old ones stay readable
        assert!(s.revoke_agent("a-1", "alice").await.unwrap());
        assert!(matches!(
            s.create_command(&scan("a-1", "/tmp")).await,
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(s.list_agent_commands("a-1", 100).await.unwrap().len(), 4);
    }

    pub async fn agent_commands_finish(s: S, _raw: Raw) {
        s.insert_agent(&new_agent("a-1", "web-01")).await.unwrap();
        s.insert_agent(&new_agent("a-2", "web-02")).await.unwrap();
        let c = s.create_command(&scan("a-1", "/srv")).await.unwrap();
        s.take_for_delivery("a-1", now_ms(), REDELIVER, 3)
            .await
            .unwrap();
        let result = json!({
            "files_scanned": 120, "files_skipped": 2, "bytes": 4096, "duration_ms": 15,
            "detections": [{"path": "/srv/x.php", "engine": "yara", "name": "webshell",
                            "severity": "high", "verdict": "malicious"}],
            "errors": ["/srv/locked: permission denied"],
            "note": "nul \u{0} inside",
        });

        // not another agent's, not an unknown id, not a status that is no result
        assert_eq!(
            s.finish_command(c.id, "a-2", CommandStatus::Done, Some(&result), None)
                .await
                .unwrap(),
            CommandFinish::Unknown
        );
        assert_eq!(
            s.finish_command(Uuid::now_v7(), "a-1", CommandStatus::Done, None, None)
                .await
                .unwrap(),
            CommandFinish::Unknown
        );
        for status in [
            CommandStatus::Pending,
            CommandStatus::Delivered,
            CommandStatus::Expired,
        ] {
            assert!(matches!(
                s.finish_command(c.id, "a-1", status, None, None).await,
                Err(StoreError::InvalidArgument(_))
            ));
        }
        let huge = json!({"blob": "x".repeat(MAX_COMMAND_RESULT_BYTES)});
        assert!(matches!(
            s.finish_command(c.id, "a-1", CommandStatus::Done, Some(&huge), None)
                .await,
            Err(StoreError::InvalidArgument(_))
        ));
        assert_eq!(
            s.get_command(c.id).await.unwrap().unwrap().status,
            CommandStatus::Delivered
        );

        // the owner, once
        let before = now_ms();
        let CommandFinish::Recorded(done) = s
            .finish_command(c.id, "a-1", CommandStatus::Done, Some(&result), None)
            .await
            .unwrap()
        else {
            panic!("not recorded");
        };
        assert_eq!(done.status, CommandStatus::Done);
        assert!(done.finished_at.is_some_and(|t| t >= before));
        let stored = done.result.clone().unwrap();
        assert_eq!(stored["files_scanned"], 120);
        assert_eq!(stored["detections"][0]["name"], "webshell");
        assert!(stored["note"].as_str().unwrap().starts_with("nul "));
        assert_eq!(s.get_command(c.id).await.unwrap().unwrap(), done);
        // a second result changes nothing and says so, with the first one
        let second = s
            .finish_command(c.id, "a-1", CommandStatus::Failed, None, Some("second try"))
            .await
            .unwrap();
        assert_eq!(second, CommandFinish::AlreadyFinished(done.clone()));
        assert_eq!(s.get_command(c.id).await.unwrap().unwrap(), done);

        // failed with an error and no result
        let f = s.create_command(&scan("a-1", "/nope")).await.unwrap();
        s.take_for_delivery("a-1", now_ms(), REDELIVER, 3)
            .await
            .unwrap();
        let CommandFinish::Recorded(failed) = s
            .finish_command(
                f.id,
                "a-1",
                CommandStatus::Failed,
                Some(&serde_json::Value::Null),
                Some("/nope: no such file or directory"),
            )
            .await
            .unwrap()
        else {
            panic!("not recorded");
        };
        assert_eq!(failed.status, CommandStatus::Failed);
        assert_eq!(
            failed.error.as_deref(),
            Some("/nope: no such file or directory")
        );
        assert!(failed.result.is_none());

        // an expired command still takes a late result, once
        let e = s.create_command(&scan("a-1", "/late")).await.unwrap();
        let t = now_ms();
        s.take_for_delivery("a-1", t, REDELIVER, 1).await.unwrap();
        s.take_for_delivery("a-1", t + 10 * MIN, REDELIVER, 1)
            .await
            .unwrap();
        assert_eq!(
            s.get_command(e.id).await.unwrap().unwrap().status,
            CommandStatus::Expired
        );
        let late = s
            .finish_command(
                e.id,
                "a-1",
                CommandStatus::Done,
                Some(&json!({"files_scanned": 3})),
                None,
            )
            .await
            .unwrap();
        assert!(matches!(late, CommandFinish::Recorded(ref c) if c.status == CommandStatus::Done));
        assert!(matches!(
            s.finish_command(e.id, "a-1", CommandStatus::Done, None, None)
                .await
                .unwrap(),
            CommandFinish::AlreadyFinished(_)
        ));
    }

    pub async fn agent_commands_concurrent_take(s: S, _raw: Raw) {
        s.insert_agent(&new_agent("a-1", "web-01")).await.unwrap();
        let mut created = Vec::new();
        for i in 0..20 {
            created.push(
                s.create_command(&scan("a-1", &format!("/d/{i}")))
                    .await
                    .unwrap()
                    .id,
            );
        }
        created.sort();
        let now = now_ms();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.take_for_delivery("a-1", now, REDELIVER, 3).await.unwrap()
            }));
        }
        let mut seen = Vec::new();
        for task in tasks {
            seen.extend(command_ids(&task.await.unwrap()));
        }
        seen.sort();
        assert_eq!(seen, created, "every command handed out exactly once");
        let listed = s.list_agent_commands("a-1", 100).await.unwrap();
        assert!(listed.iter().all(|c| c.attempts == 1));
    }
}
