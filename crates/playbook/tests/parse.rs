//! Parsing: good playbooks, and bad ones refused with file, line, column and reason.

use dozor_model::{AlertChange, AlertStatus, Level};
use dozor_playbook::{Action, Catalog, LoopSource, ParseError, Schedule, parse};

fn refuse(yaml: &str) -> ParseError {
    match parse("bad.yml", yaml, &Catalog::dozor()) {
        Ok(p) => panic!("parsed: {p:?}"),
        Err(e) => e,
    }
}

fn at(err: &ParseError) -> (usize, usize) {
    (err.line, err.column)
}

#[test]
fn a_playbook_with_every_keyword_parses() {
    let yaml = r#"
- name: Everything
  hosts: localhost
  gather_facts: false
  vars:
    channel: ops
  approval: false
  trigger:
    alert:
      on: [created, updated]
      rule_id: "proc-*"
      tags: [attack.t1033]
      level: high
      agent: agent-7
      host: [web-1, "db-*"]
      status: new
    manual: true
    schedule: "every 15m"
  tasks:
    - name: Say
      debug:
        msg: "hello {{ channel }}"
      when: alert.level == 'high'
      register: said
      vars:
        extra: 1
    - name: Loop
      alert.comment:
        text: "{{ item }}"
      loop: [a, b]
      retries: 2
      delay: 1
      until: result.ok
      register: result
      ignore_errors: true
    - name: Group
      block:
        - fail:
            msg: boom
      rescue:
        - debug:
            var: ansible_failed_result
      always:
        - set_fact:
            done: true
"#;
    let playbook = parse("good.yml", yaml, &Catalog::dozor()).unwrap();
    assert_eq!(playbook.file, "good.yml");
    let play = &playbook.plays[0];
    assert_eq!(play.name, "Everything");
    assert_eq!(play.approval, Some(false));
    let trigger = play.trigger.as_ref().unwrap();
    assert!(trigger.manual);
    assert_eq!(
        trigger.schedule,
        Some(Schedule::Every(std::time::Duration::from_secs(900)))
    );
    let alert = trigger.alert.as_ref().unwrap();
    assert_eq!(alert.on, vec![AlertChange::Created, AlertChange::Updated]);
    assert_eq!(alert.rule_id, vec!["proc-*"]);
    assert_eq!(alert.level, Some(Level::High));
    assert_eq!(alert.host, vec!["web-1", "db-*"]);
    assert_eq!(alert.status, vec![AlertStatus::New]);
    assert_eq!(play.tasks.len(), 3);
    let say = &play.tasks[0];
    assert_eq!(say.when[0].0, "alert.level == 'high'");
    assert_eq!(say.register.as_deref(), Some("said"));
    assert!(matches!(&say.action, Action::Module { name, .. } if name == "debug"));
    let looped = &play.tasks[1];
    assert!(matches!(&looped.loop_items, Some(LoopSource::List(items)) if items.len() == 2));
    assert_eq!((looped.retries, looped.delay), (Some(2), Some(1)));
    assert!(looped.ignore_errors);
    let Action::Block {
        block,
        rescue,
        always,
    } = &play.tasks[2].action
    else {
        panic!("not a block");
    };
    assert_eq!((block.len(), rescue.len(), always.len()), (1, 1, 1));
}

#[test]
fn an_unknown_module_is_refused_at_its_key() {
    let err = refuse("- name: p\n  tasks:\n    - name: t\n      notify.pager:\n        to: x\n");
    assert_eq!(err.file, "bad.yml");
    assert_eq!(at(&err), (4, 7), "{err}");
    assert!(
        err.reason
            .contains("unknown module or task keyword `notify.pager`"),
        "{err}"
    );
    assert!(err.to_string().starts_with("bad.yml:4:7: "), "{err}");
}

#[test]
fn an_unknown_play_key_is_refused_at_its_key() {
    let err = refuse("- name: p\n  taks: []\n");
    assert_eq!(at(&err), (2, 3), "{err}");
    assert!(err.reason.contains("unknown field `taks`"), "{err}");
}

#[test]
fn a_yaml_syntax_error_is_refused_with_its_line() {
    let err = refuse("- name: p\n  tasks:\n    - debug:\n        msg: \"unclosed\n");
    assert!(err.line >= 4, "{err}");
    assert!(!err.reason.is_empty());
}

#[test]
fn a_missing_tasks_list_is_refused_at_the_play() {
    let err = refuse("- name: p\n  hosts: all\n");
    assert_eq!(at(&err), (1, 3), "{err}");
    assert!(err.reason.contains("missing field `tasks`"), "{err}");
}

#[test]
fn a_task_with_two_modules_or_none_is_refused() {
    let err = refuse("- name: p\n  tasks:\n    - debug: {msg: a}\n      fail: {msg: b}\n");
    assert!(err.reason.contains("one module"), "{err}");
    assert_eq!(err.line, 3, "{err}");
    let err = refuse("- name: p\n  tasks:\n    - name: nothing\n");
    assert!(err.reason.contains("needs a module key"), "{err}");
    assert_eq!(err.line, 3, "{err}");
}

#[test]
fn bad_module_arguments_are_refused_at_the_arguments() {
    let err = refuse(
        "- name: p\n  tasks:\n    - notify.webhook:\n        url: https://x\n        colour: red\n",
    );
    assert_eq!(at(&err), (4, 9), "{err}");
    assert!(err.reason.contains("unknown argument `colour`"), "{err}");
    let err = refuse("- name: p\n  tasks:\n    - notify.webhook:\n        body: {}\n");
    assert!(
        err.reason.contains("missing required argument `url`"),
        "{err}"
    );
}

#[test]
fn template_syntax_errors_are_refused_where_they_are() {
    let err = refuse("- name: p\n  tasks:\n    - debug: {msg: a}\n      when: alert.level ==\n");
    assert_eq!(at(&err), (4, 13), "{err}");
    assert!(err.reason.contains("invalid expression"), "{err}");
    let err = refuse("- name: p\n  tasks:\n    - debug: {msg: a}\n      when: \"{{ x }}\"\n");
    assert!(err.reason.contains("bare expression"), "{err}");
    let err = refuse("- name: p\n  tasks:\n    - debug:\n        msg: \"{{ unclosed\"\n");
    assert_eq!(err.line, 4, "{err}");
    assert!(err.reason.contains("invalid template"), "{err}");
}

#[test]
fn bad_trigger_values_are_refused_at_the_value() {
    let err = refuse("- name: p\n  trigger:\n    alert:\n      level: severe\n  tasks: []\n");
    assert_eq!(at(&err), (4, 14), "{err}");
    assert!(err.reason.contains("severe"), "{err}");
    let err = refuse("- name: p\n  trigger:\n    schedule: every fortnight\n  tasks: []\n");
    assert_eq!(at(&err), (3, 15), "{err}");
    assert!(err.reason.contains("invalid schedule"), "{err}");
    let err = refuse("- name: p\n  trigger:\n    schedule: \"61 * * * *\"\n  tasks: []\n");
    assert!(err.reason.contains("bad minute field"), "{err}");
}

#[test]
fn block_only_keywords_and_bad_names_are_refused() {
    let err = refuse("- name: p\n  tasks:\n    - debug: {}\n      rescue: []\n");
    assert!(err.reason.contains("belong to a `block`"), "{err}");
    let err = refuse("- name: p\n  tasks:\n    - block: []\n      loop: [1]\n");
    assert!(
        err.reason.contains("`loop` applies to a module task"),
        "{err}"
    );
    let err = refuse("- name: p\n  tasks:\n    - debug: {}\n      register: 9lives\n");
    assert!(err.reason.contains("not a valid variable name"), "{err}");
}

#[test]
fn an_empty_playbook_is_refused() {
    let err = refuse("[]\n");
    assert_eq!(at(&err), (1, 1));
    assert!(err.reason.contains("at least one play"));
}

#[test]
fn the_readme_example_parses() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("```yaml\n").unwrap() + "```yaml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let playbook = parse("README.md", &readme[start..end], &Catalog::dozor())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(playbook.plays[0].tasks.len(), 1);
}
