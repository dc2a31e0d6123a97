//! Playbooks, runs, steps and approvals (issue 13). Every scenario runs against SQLite
//! (always) and PostgreSQL (when `DOZOR_TEST_POSTGRES_URL` is set).

#[macro_use]
mod common;

use common::*;
use dozor_store::*;
use serde_json::json;

suite!(
    playbooks_are_kept_by_name,
    runs_record_steps_once_and_end_once,
    approvals_are_decided_once,
);

mod scenarios {
    use super::*;

    fn book(name: &str, source: &str) -> StoredPlaybook {
        StoredPlaybook {
            name: name.into(),
            source: source.into(),
            origin: "api".into(),
            enabled: true,
            updated_at: now_ms(),
            updated_by: "alice".into(),
        }
    }

    pub async fn playbooks_are_kept_by_name(s: S, _raw: Raw) {
        s.put_playbook(&book("notify", "- name: a\n  tasks: []\n"))
            .await
            .unwrap();
        let replaced = s
            .put_playbook(&book("notify", "- name: b\n  tasks: []\n"))
            .await
            .unwrap();
        assert!(replaced.source.contains("name: b"));
        s.put_playbook(&book("contain", "x")).await.unwrap();
        let names: Vec<_> = s
            .list_playbooks()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["contain", "notify"]);

        for bad in ["", ".hidden", "a/b", &"x".repeat(200)] {
            assert!(
                matches!(
                    s.put_playbook(&book(bad, "x")).await,
                    Err(StoreError::InvalidArgument(_))
                ),
                "{bad:?} accepted"
            );
        }
        let too_long = "#".repeat(MAX_PLAYBOOK_BYTES + 1);
        assert!(s.put_playbook(&book("big", &too_long)).await.is_err());

        let off = s
            .set_playbook_enabled("notify", false, "bob")
            .await
            .unwrap()
            .unwrap();
        assert!(!off.enabled);
        assert_eq!(off.updated_by, "bob");
        assert!(
            s.set_playbook_enabled("nope", false, "bob")
                .await
                .unwrap()
                .is_none()
        );
        assert!(s.delete_playbook("contain").await.unwrap());
        assert!(!s.delete_playbook("contain").await.unwrap());
        assert!(s.get_playbook("contain").await.unwrap().is_none());
    }

    fn new_run(id: &str, alert_id: Option<i64>) -> NewPlaybookRun {
        NewPlaybookRun {
            id: id.into(),
            playbook: "notify".into(),
            trigger: "alert".into(),
            alert_id,
            agent_id: Some("a-1".into()),
            requested_by: "trigger".into(),
            dry_run: false,
            vars: json!({"webhook_url": "http://127.0.0.1:1/"}),
        }
    }

    pub async fn runs_record_steps_once_and_end_once(s: S, _raw: Raw) {
        let run = s
            .create_playbook_run(&new_run("r-1", Some(7)))
            .await
            .unwrap();
        assert_eq!(run.status, PlaybookRunStatus::Running);
        assert_eq!(run.vars["webhook_url"], "http://127.0.0.1:1/");
        s.create_playbook_run(&new_run("r-2", None)).await.unwrap();
        assert!(
            s.create_playbook_run(&NewPlaybookRun {
                trigger: "whim".into(),
                ..new_run("r-3", None)
            })
            .await
            .is_err()
        );

        for seq in [0, 1, 1] {
            s.add_playbook_step("r-1", seq, "ok", &json!({"task": format!("t{seq}")}))
                .await
                .unwrap();
        }
        let steps = s.playbook_steps("r-1").await.unwrap();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[1].record["task"], "t1");
        assert_eq!(s.get_playbook_run("r-1").await.unwrap().unwrap().steps, 2);

        let done = s
            .finish_playbook_run("r-1", PlaybookRunStatus::Failed, Some("step t1 failed"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done.status, PlaybookRunStatus::Failed);
        assert!(done.finished_at.is_some());
        // ended once
        assert!(
            s.finish_playbook_run("r-1", PlaybookRunStatus::Succeeded, None)
                .await
                .unwrap()
                .is_none()
        );

        let on_alert = s
            .list_playbook_runs(&PlaybookRunQuery {
                alert_id: Some(7),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(on_alert.len(), 1);
        assert_eq!(on_alert[0].id, "r-1");

        // a restart interrupts what was running
        assert_eq!(
            s.interrupt_playbook_runs("server restarted").await.unwrap(),
            1
        );
        let r2 = s.get_playbook_run("r-2").await.unwrap().unwrap();
        assert_eq!(r2.status, PlaybookRunStatus::Failed);
        assert_eq!(r2.error.as_deref(), Some("server restarted"));
    }

    fn ask(expires_in_ms: i64) -> NewApproval {
        NewApproval {
            run_id: Some("r-1".into()),
            playbook: Some("quarantine-host".into()),
            action: "agent.isolate_host".into(),
            target: json!({"agent_id": "a-1"}),
            reason: "ransomware on a-1".into(),
            requested_by: "alice".into(),
            other_approver: true,
            expires_at: now_ms() + expires_in_ms,
        }
    }

    pub async fn approvals_are_decided_once(s: S, _raw: Raw) {
        let a = s.create_approval(&ask(60_000)).await.unwrap();
        assert_eq!(a.status, ApprovalStatus::Pending);
        assert!(a.other_approver);

        // concurrent decisions: exactly one wins
        let (x, y) = tokio::join!(
            s.decide_approval(&a.id, ApprovalStatus::Approved, "bob", Some("go")),
            s.decide_approval(&a.id, ApprovalStatus::Rejected, "carol", None)
        );
        let outcomes = [x.unwrap(), y.unwrap()];
        let decided = outcomes
            .iter()
            .filter(|o| matches!(o, ApprovalDecisionOutcome::Decided(_)))
            .count();
        assert_eq!(decided, 1, "{outcomes:?}");
        let stored = s.get_approval(&a.id).await.unwrap().unwrap();
        assert!(matches!(
            stored.status,
            ApprovalStatus::Approved | ApprovalStatus::Rejected
        ));
        assert!(stored.decided_by.is_some());

        // a request past its time can't be approved: it expires instead
        let late = s.create_approval(&ask(-1)).await.unwrap();
        match s
            .decide_approval(&late.id, ApprovalStatus::Approved, "bob", None)
            .await
            .unwrap()
        {
            ApprovalDecisionOutcome::AlreadyDecided(a) => {
                assert_eq!(a.status, ApprovalStatus::Expired);
                assert_eq!(a.decided_by, None);
            }
            other => panic!("{other:?}"),
        }
        let sweep = s.create_approval(&ask(-1)).await.unwrap();
        let expired = s.expire_approvals(now_ms()).await.unwrap();
        assert_eq!(
            expired.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
            std::slice::from_ref(&sweep.id)
        );
        assert!(matches!(
            s.decide_approval("nope", ApprovalStatus::Approved, "bob", None)
                .await
                .unwrap(),
            ApprovalDecisionOutcome::Unknown
        ));
        let pending = s
            .list_approvals(Some(ApprovalStatus::Pending), 50)
            .await
            .unwrap();
        assert!(pending.is_empty(), "{pending:?}");
        assert_eq!(s.list_approvals(None, 50).await.unwrap().len(), 3);
        assert_eq!(s.run_approvals("r-1").await.unwrap().len(), 3);
        assert!(s.run_approvals("r-2").await.unwrap().is_empty());

        // approvers are told about each pending request once
        let fresh = s.create_approval(&ask(60_000)).await.unwrap();
        let (x, y) = tokio::join!(
            s.claim_approvals_to_notify(now_ms()),
            s.claim_approvals_to_notify(now_ms())
        );
        let mut claimed: Vec<String> = x
            .unwrap()
            .into_iter()
            .chain(y.unwrap())
            .map(|a| a.id)
            .collect();
        claimed.sort();
        assert_eq!(claimed, std::slice::from_ref(&fresh.id));
        assert!(
            s.claim_approvals_to_notify(now_ms())
                .await
                .unwrap()
                .is_empty()
        );
        let command = uuid::Uuid::now_v7();
        s.set_approval_command(&a.id, command).await.unwrap();
        assert_eq!(
            s.get_approval(&a.id).await.unwrap().unwrap().command_id,
            Some(command.to_string())
        );
    }
}
