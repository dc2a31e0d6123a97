//! The executor: templating, when/loop/register, retries/until, ignore_errors,
//! block/rescue/always, dry runs, approvals, secrets, and what gets recorded.

mod common;

use common::{Harness, approved, input};
use dozor_playbook::{ApprovalDecision, ModuleError, REDACTED, RunStatus, StepStatus};
use serde_json::json;

#[tokio::test]
async fn arguments_are_templated_over_the_alert_and_vars() {
    let h = Harness::new(vec![]);
    let run = h
        .run(
            r#"
- name: p
  vars:
    link: "{{ dozor.url }}/ui/alerts/{{ alert.id }}"
  tasks:
    - test.echo:
        text: "{{ alert.rule_title }} ({{ alert.level }}): {{ link }}"
        id: "{{ alert.id }}"
        tags: "{{ alert.tags }}"
"#,
        )
        .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(
        h.echo.calls(),
        vec![json!({
            "text": "Whoami executed (high): https://dozor.example/ui/alerts/42",
            "id": 42,
            "tags": ["attack.t1033", "dozor.quarantine"],
        })]
    );
    assert_eq!(run.steps[0].input, Some(h.echo.calls()[0].clone()));
}

#[tokio::test]
async fn an_undefined_variable_fails_the_step_with_the_reason() {
    let h = Harness::new(vec![]);
    let run = h
        .run(
            r#"
- name: p
  tasks:
    - name: broken
      test.echo:
        text: "{{ alert.no_such_field }}"
    - name: never
      test.echo: {}
"#,
        )
        .await;
    assert_eq!(run.status, RunStatus::Failed);
    assert!(h.echo.calls().is_empty(), "the module must not run");
    assert_eq!(run.steps.len(), 1);
    let step = &run.steps[0];
    assert_eq!(step.status, StepStatus::Failed);
    let error = step.error.as_deref().unwrap();
    assert!(error.contains("template error"), "{error}");
    assert!(error.contains("undefined"), "{error}");
    assert!(error.contains("alert.no_such_field"), "{error}");
    assert!(run.error.as_deref().unwrap().contains("broken"));
}

#[tokio::test]
async fn when_skips_and_an_undefined_name_in_when_is_an_error() {
    let h = Harness::new(vec![]);
    let run = h
        .run(
            r#"
- name: p
  tasks:
    - name: skipped
      test.echo: {n: 1}
      when: alert.level == 'critical'
    - name: runs
      test.echo: {n: 2}
      when: [alert.level == 'high', "'attack.t1033' in alert.tags"]
    - name: defined test is fine
      test.echo: {n: 3}
      when: nothing is not defined
"#,
        )
        .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(h.echo.calls(), vec![json!({"n": 2}), json!({"n": 3})]);
    assert_eq!(run.steps[0].status, StepStatus::Skipped);
    assert_eq!(run.steps[0].attempts, 0);

    let h = Harness::new(vec![]);
    let run = h
        .run("- name: p\n  tasks:\n    - test.echo: {}\n      when: nothing\n")
        .await;
    assert_eq!(run.status, RunStatus::Failed);
    assert!(h.echo.calls().is_empty());
    assert!(
        run.steps[0].error.as_deref().unwrap().contains("when:"),
        "{run:?}"
    );
}

#[tokio::test]
async fn loop_runs_per_item_and_register_keeps_the_results() {
    let h = Harness::new(vec![]);
    h.echo.answer(Ok(json!({"len": 1})));
    h.echo.answer(Ok(json!({"len": 2})));
    let run = h
        .run(
            r#"
- name: p
  tasks:
    - test.echo:
        tag: "{{ item }}"
      loop: "{{ alert.tags }}"
      register: echoed
    - test.echo:
        lens: "{{ echoed.results | map(attribute='len') | list }}"
        items: "{{ echoed.results | map(attribute='item') | list }}"
        failed: "{{ echoed.failed }}"
"#,
        )
        .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let calls = h.echo.calls();
    assert_eq!(calls[0], json!({"tag": "attack.t1033"}));
    assert_eq!(calls[1], json!({"tag": "dozor.quarantine"}));
    assert_eq!(
        calls[2],
        json!({"lens": [1, 2], "items": ["attack.t1033", "dozor.quarantine"], "failed": false})
    );
    assert_eq!(run.steps[1].item, Some(json!("dozor.quarantine")));
}

#[tokio::test(start_paused = true)]
async fn until_is_checked_after_each_attempt_with_the_delay_between() {
    let h = Harness::new(vec![]);
    for n in 1..=5 {
        h.echo.answer(Ok(json!({"status": n})));
    }
    let run = h
        .run(
            r#"
- name: p
  tasks:
    - test.echo: {}
      register: result
      until: result.status == 3
      retries: 5
      delay: 10
"#,
        )
        .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(h.echo.calls().len(), 3);
    let step = &run.steps[0];
    assert_eq!(step.attempts, 3);
    assert_eq!(step.output, Some(json!({"status": 3})));
    // Two delays of 10 s on the paused runtime clock.
    assert_eq!(step.duration_ms, 20_000);
}

#[tokio::test(start_paused = true)]
async fn retries_end_in_a_failure_when_until_is_never_met() {
    let h = Harness::new(vec![]);
    let run = h
        .run(
            r#"
- name: p
  tasks:
    - test.echo: {}
      register: result
      until: result.ok == false
"#,
        )
        .await;
    assert_eq!(run.status, RunStatus::Failed);
    // Ansible's defaults: 3 retries, 5 s apart.
    assert_eq!(h.echo.calls().len(), 4);
    assert_eq!(run.steps[0].attempts, 4);
    assert_eq!(run.steps[0].duration_ms, 15_000);
    assert!(
        run.steps[0]
            .error
            .as_deref()
            .unwrap()
            .contains("`until` not met after 4 attempt(s)")
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_module_is_retried() {
    let h = Harness::new(vec![]);
    h.echo.answer(Err(ModuleError::new("connection refused")));
    h.echo.answer(Ok(json!({"sent": true})));
    let run = h
        .run("- name: p\n  tasks:\n    - test.echo: {}\n      retries: 2\n      delay: 1\n")
        .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(run.steps[0].attempts, 2);
    assert_eq!(run.steps[0].output, Some(json!({"sent": true})));
}

#[tokio::test]
async fn ignore_errors_records_the_failure_and_goes_on() {
    let h = Harness::new(vec![]);
    h.echo.answer(Err(ModuleError::new("smtp down")));
    let run = h
        .run(
            r#"
- name: p
  tasks:
    - test.echo: {n: 1}
      ignore_errors: true
      register: first
    - test.echo:
        previous_failed: "{{ first.failed }}"
        why: "{{ first.msg }}"
"#,
        )
        .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(run.steps[0].status, StepStatus::Ignored);
    assert_eq!(run.steps[0].error.as_deref(), Some("smtp down"));
    assert_eq!(
        h.echo.calls()[1],
        json!({"previous_failed": true, "why": "smtp down"})
    );
}

#[tokio::test]
async fn rescue_runs_after_a_failure_and_always_runs_in_any_case() {
    let h = Harness::new(vec![]);
    let run = h
        .run(
            r#"
- name: p
  tasks:
    - block:
        - name: step one
          test.echo: {n: 1}
        - name: boom
          fail:
            msg: "exploded on {{ alert.id }}"
        - name: not reached
          test.echo: {n: 2}
      rescue:
        - test.echo:
            rescued: "{{ ansible_failed_task.name }}: {{ ansible_failed_result.msg }}"
      always:
        - test.echo: {n: 3}
    - name: after the block
      test.echo: {n: 4}
"#,
        )
        .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(
        h.echo.calls(),
        vec![
            json!({"n": 1}),
            json!({"rescued": "boom: exploded on 42"}),
            json!({"n": 3}),
            json!({"n": 4}),
        ]
    );
    let paths: Vec<&str> = run.steps.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "tasks[0].block[0]",
            "tasks[0].block[1]",
            "tasks[0].rescue[0]",
            "tasks[0].always[0]",
            "tasks[1]"
        ]
    );
    assert_eq!(run.steps[1].status, StepStatus::Failed);
}

#[tokio::test]
async fn without_rescue_always_runs_and_the_play_fails() {
    let h = Harness::new(vec![]);
    let run = h
        .run(
            r#"
- name: p
  tasks:
    - block:
        - fail: {msg: nope}
      always:
        - test.echo: {n: 1}
    - test.echo: {n: 2}
"#,
        )
        .await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(h.echo.calls(), vec![json!({"n": 1})]);
    assert!(run.error.as_deref().unwrap().contains("nope"));
}

#[tokio::test]
async fn a_failing_rescue_fails_the_play() {
    let h = Harness::new(vec![]);
    let run = h
        .run(
            r#"
- name: p
  tasks:
    - block:
        - fail: {msg: first}
      rescue:
        - fail: {msg: "second after {{ ansible_failed_result.msg }}"}
"#,
        )
        .await;
    assert_eq!(run.status, RunStatus::Failed);
    assert!(
        run.error.as_deref().unwrap().contains("second after first"),
        "{run:?}"
    );
}

#[tokio::test]
async fn a_broken_template_fails_its_step_with_the_reason_and_runs_rescue() {
    let h = Harness::new(vec![]);
    let run = h
        .run(
            r#"
- name: p
  tasks:
    - block:
        - name: notify
          test.echo:
            text: "{{ alert.rule_title | no_such_filter }}"
      rescue:
        - test.echo:
            reason: "{{ ansible_failed_result.msg }}"
"#,
        )
        .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let calls = h.echo.calls();
    assert_eq!(calls.len(), 1, "only the rescue called the module");
    let reason = calls[0]["reason"].as_str().unwrap();
    assert!(reason.contains("template error"), "{reason}");
    assert!(reason.contains("no_such_filter"), "{reason}");
    assert_eq!(run.steps[0].error.as_deref(), Some(reason));
}

#[tokio::test]
async fn set_fact_debug_and_task_vars() {
    let h = Harness::new(vec![]);
    let run = h
        .run(
            r#"
- name: p
  vars:
    base: 10
  tasks:
    - set_fact:
        total: "{{ base + 5 }}"
    - debug:
        var: total
      register: shown
    - test.echo:
        total: "{{ total }}"
        shown: "{{ shown.total }}"
        local: "{{ local }}"
        via_vars: "{{ vars.base }}"
      vars:
        local: "{{ total * 2 }}"
"#,
        )
        .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(
        h.echo.calls(),
        vec![json!({"total": 15, "shown": 15, "local": 30, "via_vars": 10})]
    );
}

#[tokio::test]
async fn a_dry_run_calls_no_module_and_records_what_would_happen() {
    let h = Harness::new(vec![approved("alice")]);
    let playbook = h.parse(
        r#"
- name: p
  tasks:
    - set_fact:
        target: "{{ alert.agent_id }}"
    - name: isolate
      agent.isolate_host:
        agent_id: "{{ target }}"
    - name: tell
      test.echo:
        text: "isolated {{ target }}"
      when: alert.level == 'high'
"#,
    );
    let mut input = input();
    input.dry_run = true;
    let run = h.engine.run(&playbook, &input).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert!(run.dry_run);
    assert!(h.echo.calls().is_empty());
    assert!(h.isolate.calls().is_empty());
    assert!(h.approver.requests().is_empty(), "a dry run asks nobody");
    let isolate = &run.steps[1];
    assert_eq!(isolate.status, StepStatus::DryRun);
    assert_eq!(isolate.input, Some(json!({"agent_id": "agent-7"})));
    assert_eq!(isolate.output.as_ref().unwrap()["needs_approval"], true);
    assert_eq!(isolate.attempts, 0);
    assert_eq!(
        run.steps[2].input,
        Some(json!({"text": "isolated agent-7"}))
    );
    assert_eq!(h.recorder.steps.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_destructive_step_waits_for_an_approval() {
    let h = Harness::new(vec![approved("alice")]);
    let mut input = input();
    input.requested_by = Some("bob".to_owned());
    let playbook = h.parse(
        "- name: p\n  tasks:\n    - name: isolate\n      agent.isolate_host:\n        agent_id: \"{{ alert.agent_id }}\"\n        reason: suspicious\n",
    );
    let run = h.engine.run(&playbook, &input).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(h.isolate.calls().len(), 1);
    let requests = h.approver.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].module, "agent.isolate_host");
    assert_eq!(requests[0].args["agent_id"], "agent-7");
    assert_eq!(requests[0].reason, "suspicious");
    assert_eq!(requests[0].requested_by.as_deref(), Some("bob"));
    let approval = run.steps[0].approval.as_ref().unwrap();
    assert_eq!(approval.decision, "approved");
    assert_eq!(approval.by.as_deref(), Some("alice"));
}

#[tokio::test]
async fn a_rejected_or_expired_approval_fails_the_step_and_rescue_runs() {
    for (decision, expect) in [
        (
            ApprovalDecision::Rejected {
                by: "carol".to_owned(),
                comment: Some("production database".to_owned()),
            },
            "approval rejected by carol: production database",
        ),
        (ApprovalDecision::Expired, "approval expired"),
    ] {
        let h = Harness::new(vec![decision]);
        let run = h
            .run(
                r#"
- name: p
  tasks:
    - block:
        - agent.isolate_host: {agent_id: agent-7}
      rescue:
        - test.echo:
            why: "{{ ansible_failed_result.msg }}"
"#,
            )
            .await;
        assert!(h.isolate.calls().is_empty(), "nothing isolated: {expect}");
        assert_eq!(run.status, RunStatus::Succeeded);
        assert_eq!(run.steps[0].status, StepStatus::Failed);
        assert_eq!(run.steps[0].attempts, 0);
        let why = h.echo.calls()[0]["why"].as_str().unwrap().to_owned();
        assert!(why.starts_with(expect), "{why}");
    }
}

#[tokio::test]
async fn approval_false_on_the_step_or_the_play_skips_the_gate() {
    let h = Harness::new(vec![]);
    let run = h
        .run(
            "- name: p\n  tasks:\n    - agent.isolate_host: {agent_id: a}\n      approval: false\n",
        )
        .await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(h.isolate.calls().len(), 1);
    assert!(h.approver.requests().is_empty());

    let h = Harness::new(vec![]);
    let run = h
        .run("- name: p\n  approval: false\n  tasks:\n    - agent.isolate_host: {agent_id: a}\n")
        .await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(h.isolate.calls().len(), 1);
    assert!(h.approver.requests().is_empty());

    // A harmless step asks when told to.
    let h = Harness::new(vec![]);
    let run = h
        .run("- name: p\n  tasks:\n    - test.echo: {}\n      approval: true\n")
        .await;
    assert_eq!(run.status, RunStatus::Failed);
    assert!(h.echo.calls().is_empty());
}

#[tokio::test]
async fn the_approve_module_is_an_explicit_gate() {
    let h = Harness::new(vec![approved("dave")]);
    let run = h
        .run(
            r#"
- name: p
  tasks:
    - approve:
        reason: "contain {{ alert.agent_id }}"
      register: gate
    - test.echo:
        by: "{{ gate.approved_by }}"
"#,
        )
        .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(h.approver.requests()[0].reason, "contain agent-7");
    assert_eq!(h.echo.calls(), vec![json!({"by": "dave"})]);
}

#[tokio::test]
async fn secrets_reach_the_module_but_never_the_records() {
    let h = Harness::new(vec![]);
    let playbook = h.parse(
        r#"
- name: p
  tasks:
    - test.echo:
        url: "https://api.example/bot{{ secrets.bot_token }}/sendMessage"
        password: "{{ secrets.smtp_password }}"
"#,
    );
    let mut input = input();
    input
        .secrets
        .insert("bot_token".into(), json!("123:SECRETTOKEN"));
    input
        .secrets
        .insert("smtp_password".into(), json!("hunter22"));
    let run = h.engine.run(&playbook, &input).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(
        h.echo.calls()[0]["url"],
        "https://api.example/bot123:SECRETTOKEN/sendMessage"
    );
    let recorded = serde_json::to_string(&*h.recorder.steps.lock().unwrap()).unwrap();
    assert!(!recorded.contains("SECRETTOKEN"), "{recorded}");
    assert!(!recorded.contains("hunter22"), "{recorded}");
    assert_eq!(
        run.steps[0].input.as_ref().unwrap()["url"],
        format!("https://api.example/bot{REDACTED}/sendMessage")
    );
}

#[tokio::test(start_paused = true)]
async fn pause_sleeps_on_the_runtime_clock() {
    let h = Harness::new(vec![]);
    let run = h
        .run("- name: p\n  tasks:\n    - pause: {seconds: 30}\n")
        .await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.steps[0].duration_ms, 30_000);
}

#[tokio::test]
async fn every_step_and_the_run_reach_the_recorder() {
    let h = Harness::new(vec![]);
    let run = h
        .run("- name: p\n  tasks:\n    - test.echo: {}\n    - debug: {msg: hi}\n")
        .await;
    let steps = h.recorder.steps.lock().unwrap().clone();
    assert_eq!(steps, run.steps);
    assert_eq!(steps[0].seq, 0);
    assert_eq!(steps[1].seq, 1);
    assert_eq!(steps[1].output, Some(json!({"msg": "hi"})));
    assert!(steps.iter().all(|s| s.finished_at_ms >= s.started_at_ms));
    assert_eq!(h.recorder.runs.lock().unwrap().clone(), vec![run]);
}

#[tokio::test]
async fn play_vars_may_refer_to_each_other_in_any_order_and_a_cycle_is_an_error() {
    let h = Harness::new(vec![]);
    let run = h
        .run(
            r#"
- name: p
  vars:
    zeta: "{{ alpha }}-z"
    alpha: "{{ alert.id }}"
    beta: "{{ zeta }}-b"
  tasks:
    - test.echo: {v: "{{ beta }}"}
"#,
        )
        .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(h.echo.calls(), vec![json!({"v": "42-z-b"})]);

    let h = Harness::new(vec![]);
    let run = h
        .run("- name: p\n  vars:\n    a: \"{{ b }}\"\n    b: \"{{ a }}\"\n  tasks:\n    - test.echo: {}\n")
        .await;
    assert_eq!(run.status, RunStatus::Failed);
    assert!(h.echo.calls().is_empty());
    assert!(
        run.error.as_deref().unwrap().contains("undefined"),
        "{run:?}"
    );
}

#[tokio::test]
async fn defined_tests_guard_strict_undefined() {
    let h = Harness::new(vec![]);
    let run = h
        .run(
            r#"
- name: p
  tasks:
    - test.echo:
        guarded: "{{ missing is defined and not missing.failed }}"
        defaulted: "{{ missing | default('none') }}"
"#,
        )
        .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(
        h.echo.calls(),
        vec![json!({"guarded": false, "defaulted": "none"})]
    );
}
