//! Behaviour from the Sigma v2.1 specification: every modifier, wildcards and escaping, null
//! and empty values, keywords, the condition grammar, filters and logsource routing.

use std::path::Path;

use dozor_sigma::{Engine, EngineOptions, LoadOptions, LogsourceMapping, Outcome, RuleSet};
use serde_json::json;

/// Every rule evaluated on every event, whatever its logsource.
fn unrouted() -> EngineOptions {
    EngineOptions {
        mapping: LogsourceMapping::default(),
        evaluate_unrouted: true,
        prefilter_dfa: false,
    }
}

/// Builds an engine from YAML text, evaluating every rule on every event (no routing).
fn engine_with(yaml: &str, options: &LoadOptions) -> (Engine, Vec<(String, Outcome)>) {
    let mut set = RuleSet::default();
    set.add_text(Path::new("test.yml"), yaml, options);
    assert!(set.invalid.is_empty(), "invalid: {:?}", set.invalid);
    let (engine, report) = Engine::build(set.rules, &set.filters, &unrouted());
    (
        engine,
        report.into_iter().map(|(m, o, _)| (m.title, o)).collect(),
    )
}

fn rule(detection: &str) -> String {
    format!(
        "title: t\nid: 00000000-0000-0000-0000-000000000001\nlogsource:\n    product: test\ndetection:\n{detection}\n"
    )
}

/// Does the single rule with this detection block match the event?
fn fires_with(detection: &str, event: serde_json::Value, options: &LoadOptions) -> bool {
    let (engine, report) = engine_with(&rule(detection), options);
    assert_eq!(
        report[0].1,
        Outcome::Active,
        "{detection}: {:?}",
        report[0].1
    );
    let mut scratch = engine.new_scratch();
    let mut out = Vec::new();
    engine.matches(&event, &mut scratch, &mut out);
    !out.is_empty()
}

fn fires(detection: &str, event: serde_json::Value) -> bool {
    fires_with(detection, event, &LoadOptions::default())
}

fn unsupported(detection: &str) -> String {
    let mut set = RuleSet::default();
    set.add_text(
        Path::new("test.yml"),
        &rule(detection),
        &LoadOptions::default(),
    );
    if let Some(r) = set.invalid.first() {
        return format!("{:?}", r.outcome);
    }
    let (_, report) = Engine::build(set.rules, &set.filters, &unrouted());
    format!("{:?}", report[0].1)
}

#[test]
fn plain_values_are_case_insensitive_exact() {
    let d = "    sel:\n        Image: 'C:\\Windows\\System32\\whoami.exe'\n    condition: sel";
    assert!(fires(
        d,
        json!({"Image": "c:\\windows\\system32\\WHOAMI.EXE"})
    ));
    assert!(!fires(
        d,
        json!({"Image": "c:\\windows\\system32\\whoami.exe.bak"})
    ));
    assert!(!fires(
        d,
        json!({"Other": "c:\\windows\\system32\\whoami.exe"})
    ));
}

#[test]
fn contains_startswith_endswith_all() {
    assert!(fires(
        "    sel:\n        CommandLine|contains: 'mimi'\n    condition: sel",
        json!({"CommandLine": "x MIMIkatz y"})
    ));
    assert!(fires(
        "    sel:\n        Image|startswith: 'C:\\Temp\\'\n    condition: sel",
        json!({"Image": "c:\\temp\\a.exe"})
    ));
    assert!(!fires(
        "    sel:\n        Image|startswith: 'C:\\Temp\\'\n    condition: sel",
        json!({"Image": "d:\\c:\\temp\\a.exe"})
    ));
    assert!(fires(
        "    sel:\n        Image|endswith: '\\cmd.exe'\n    condition: sel",
        json!({"Image": "C:\\x\\CMD.exe"})
    ));
    let all = "    sel:\n        CommandLine|contains|all:\n            - ' -a '\n            - ' -b '\n    condition: sel";
    assert!(fires(all, json!({"CommandLine": "x -b  -a y"})));
    assert!(!fires(all, json!({"CommandLine": "x -a y"})));
    // Without `all`, list values are OR-ed.
    let any = "    sel:\n        CommandLine|contains:\n            - ' -a '\n            - ' -b '\n    condition: sel";
    assert!(fires(any, json!({"CommandLine": "x -a y"})));
    // Many values take the multi-pattern path; still exact.
    let many = "    sel:\n        CommandLine|contains:\n            - aaa\n            - bbb\n            - ccc\n            - ddd\n            - eee\n    condition: sel";
    assert!(fires(many, json!({"CommandLine": "xxEEEx"})));
    assert!(!fires(many, json!({"CommandLine": "xxEEx"})));
}

#[test]
fn wildcards_and_escapes() {
    let q = "    sel:\n        Image: 'prog?.exe'\n    condition: sel";
    assert!(fires(q, json!({"Image": "progA.exe"})));
    assert!(!fires(q, json!({"Image": "prog.exe"})));
    let star = "    sel:\n        Image: 'antivirus_V*.exe'\n    condition: sel";
    assert!(fires(star, json!({"Image": "antivirus_V21.2.1.exe"})));
    // `\*` is a plain star.
    let escaped = "    sel:\n        Value: 'a\\*b'\n    condition: sel";
    assert!(fires(escaped, json!({"Value": "a*b"})));
    assert!(!fires(escaped, json!({"Value": "axxb"})));
    // `\\*`: a backslash followed by a wildcard.
    let bs_star = "    sel:\n        Value: 'a\\\\*'\n    condition: sel";
    assert!(fires(bs_star, json!({"Value": "a\\anything"})));
    assert!(!fires(bs_star, json!({"Value": "ab"})));
    // `\\\*`: a backslash and a plain star.
    let bs_plain = "    sel:\n        Value: 'a\\\\\\*'\n    condition: sel";
    assert!(fires(bs_plain, json!({"Value": "a\\*"})));
    assert!(!fires(bs_plain, json!({"Value": "a\\x"})));
    // `\\\\` is a double backslash.
    let double = "    sel:\n        Value: 'a\\\\\\\\b'\n    condition: sel";
    assert!(fires(double, json!({"Value": "a\\\\b"})));
    // Wildcards inside contains values.
    let inner = "    sel:\n        CommandLine|contains: 'net* user'\n    condition: sel";
    assert!(fires(inner, json!({"CommandLine": "c:\\net1.exe user x"})));
}

#[test]
fn null_empty_and_exists() {
    let null = "    sel:\n        EventID: 4738\n    filter:\n        PasswordLastSet: null\n    condition: sel and not filter";
    assert!(fires(
        null,
        json!({"EventID": 4738, "PasswordLastSet": "x"})
    ));
    assert!(
        !fires(null, json!({"EventID": 4738})),
        "absent counts as null"
    );
    assert!(!fires(
        null,
        json!({"EventID": 4738, "PasswordLastSet": null})
    ));
    let empty = "    sel:\n        FieldB: ''\n    condition: sel";
    assert!(fires(empty, json!({"FieldB": ""})));
    assert!(!fires(empty, json!({"FieldB": "x"})));
    assert!(!fires(empty, json!({})), "'' is not null");
    let exists = "    sel:\n        PasswordLastSet|exists: true\n    condition: sel";
    assert!(
        fires(exists, json!({"PasswordLastSet": ""})),
        "exists ignores the value"
    );
    assert!(fires(exists, json!({"PasswordLastSet": null})));
    assert!(!fires(exists, json!({})));
    let missing = "    sel:\n        PasswordLastSet|exists: false\n    condition: sel";
    assert!(fires(missing, json!({"X": 1})));
    assert!(
        unsupported(
            "    sel:\n        F:\n            - ''\n            - null\n    condition: sel"
        )
        .contains("null cannot be part of a list")
    );
}

#[test]
fn numbers_and_strings() {
    let num = "    sel:\n        EventID: 4688\n    condition: sel";
    assert!(fires(num, json!({"EventID": 4688})));
    assert!(fires(num, json!({"EventID": "4688"})));
    assert!(!fires(num, json!({"EventID": 46880})));
    let text = "    sel:\n        EventID: '4688'\n    condition: sel";
    assert!(fires(text, json!({"EventID": 4688})));
    let ops = "    sel:\n        Size|gt: 10\n        Size|lte: 20\n    condition: sel";
    assert!(fires(ops, json!({"Size": 20})));
    assert!(fires(ops, json!({"Size": "15"})));
    assert!(!fires(ops, json!({"Size": 10})));
    assert!(!fires(ops, json!({"Size": "abc"})));
    assert!(fires(
        "    sel:\n        S|lt: 5\n    condition: sel",
        json!({"S": 4.5})
    ));
    assert!(fires(
        "    sel:\n        S|gte: 5\n    condition: sel",
        json!({"S": 5})
    ));
    assert!(fires(
        "    sel:\n        B: true\n    condition: sel",
        json!({"B": true})
    ));
    assert!(fires(
        "    sel:\n        B: true\n    condition: sel",
        json!({"B": "True"})
    ));
}

#[test]
fn neq() {
    let d = "    sel:\n        User|neq:\n            - SYSTEM\n            - LOCAL SERVICE\n    condition: sel";
    assert!(fires(d, json!({"User": "alice"})));
    assert!(!fires(d, json!({"User": "system"})));
    assert!(!fires(d, json!({"User": "Local Service"})));
    assert!(!fires(d, json!({})), "neq needs the field to be present");
    assert!(fires(
        "    sel:\n        N|neq: 3\n    condition: sel",
        json!({"N": 4})
    ));
}

#[test]
fn cased() {
    let d = "    sel:\n        Name|cased: 'AbC'\n    condition: sel";
    assert!(fires(d, json!({"Name": "AbC"})));
    assert!(!fires(d, json!({"Name": "abc"})));
    assert!(fires(
        "    sel:\n        Name|contains|cased: 'B'\n    condition: sel",
        json!({"Name": "aBc"})
    ));
    assert!(!fires(
        "    sel:\n        Name|contains|cased: 'B'\n    condition: sel",
        json!({"Name": "abc"})
    ));
}

#[test]
fn regular_expressions_and_flags() {
    let d = "    sel:\n        CommandLine|re: 'foo[0-9]+bar'\n    condition: sel";
    assert!(fires(d, json!({"CommandLine": "x foo12bar"})));
    assert!(
        !fires(d, json!({"CommandLine": "x FOO12BAR"})),
        "re is case-sensitive by default"
    );
    assert!(fires(
        "    sel:\n        C|re|i: 'foo[0-9]+bar'\n    condition: sel",
        json!({"C": "FOO1BAR"})
    ));
    assert!(fires(
        "    sel:\n        C|re|m: '^second$'\n    condition: sel",
        json!({"C": "first\nsecond\nthird"})
    ));
    assert!(!fires(
        "    sel:\n        C|re: '^second$'\n    condition: sel",
        json!({"C": "first\nsecond\nthird"})
    ));
    assert!(fires(
        "    sel:\n        C|re|s: 'a.b'\n    condition: sel",
        json!({"C": "a\nb"})
    ));
    assert!(!fires(
        "    sel:\n        C|re: 'a.b'\n    condition: sel",
        json!({"C": "a\nb"})
    ));
    // Look-around needs the backtracking engine; still supported.
    assert!(fires(
        "    sel:\n        C|re: 'foo(?!bar)'\n    condition: sel",
        json!({"C": "foobaz"})
    ));
    assert!(
        unsupported("    sel:\n        C|re: 'a(b'\n    condition: sel")
            .contains("invalid regular expression")
    );
}

#[test]
fn encodings() {
    // base64 of "cmd" is "Y21k".
    assert!(fires(
        "    sel:\n        P|base64: 'cmd'\n    condition: sel",
        json!({"P": "Y21k"})
    ));
    assert!(fires(
        "    sel:\n        P|base64|contains: 'cmd'\n    condition: sel",
        json!({"P": "xxY21kxx"})
    ));
    // base64offset: the value at any of the three offsets inside a longer base64 text.
    let off = "    sel:\n        P|base64offset|contains: '/bin/bash'\n    condition: sel";
    for prefix in ["", "a", "ab"] {
        let enc = base64_encode(format!("{prefix}/bin/bash -i").as_bytes());
        assert!(fires(off, json!({"P": enc})), "offset {}", prefix.len());
    }
    // wide + base64offset: PowerShell -EncodedCommand style.
    let wide = "    sel:\n        P|wide|base64offset|contains: 'Invoke-'\n    condition: sel";
    let utf16: Vec<u8> = "x; Invoke-Thing"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    assert!(fires(wide, json!({"P": base64_encode(&utf16)})));
    let be: Vec<u8> = "Invoke".encode_utf16().flat_map(u16::to_be_bytes).collect();
    assert!(fires(
        "    sel:\n        P|utf16be|base64: 'Invoke'\n    condition: sel",
        json!({"P": base64_encode(&be)})
    ));
    let mut bom = vec![0xFF, 0xFE];
    bom.extend("Invoke".encode_utf16().flat_map(u16::to_le_bytes));
    assert!(fires(
        "    sel:\n        P|utf16|base64: 'Invoke'\n    condition: sel",
        json!({"P": base64_encode(&bom)})
    ));
}

fn base64_encode(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn windash() {
    let d = "    sel:\n        CommandLine|windash|contains: ' -exec bypass'\n    condition: sel";
    for dash in ["-", "/", "\u{2013}", "\u{2014}", "\u{2015}"] {
        assert!(
            fires(
                d,
                json!({"CommandLine": format!("powershell {dash}exec bypass")})
            ),
            "{dash}"
        );
    }
    assert!(!fires(d, json!({"CommandLine": "powershell +exec bypass"})));
}

#[test]
fn cidr() {
    let d = "    sel:\n        DestinationIp|cidr:\n            - '10.0.0.0/8'\n            - 'fc00::/7'\n    condition: sel";
    assert!(fires(d, json!({"DestinationIp": "10.20.30.40"})));
    assert!(fires(d, json!({"DestinationIp": "fd00::1"})));
    assert!(!fires(d, json!({"DestinationIp": "11.0.0.1"})));
    assert!(!fires(d, json!({"DestinationIp": "not an ip"})));
}

#[test]
fn fieldref() {
    let d = "    sel:\n        SourceUser|fieldref: TargetUser\n    condition: sel";
    assert!(fires(d, json!({"SourceUser": "Bob", "TargetUser": "bob"})));
    assert!(!fires(
        d,
        json!({"SourceUser": "bob", "TargetUser": "alice"})
    ));
    assert!(!fires(d, json!({"SourceUser": "bob"})));
    let neq = "    sel:\n        SourceUser|fieldref|neq: TargetUser\n    condition: sel";
    assert!(fires(
        neq,
        json!({"SourceUser": "bob", "TargetUser": "alice"})
    ));
    assert!(!fires(
        neq,
        json!({"SourceUser": "bob", "TargetUser": "bob"})
    ));
}

#[test]
fn expand_placeholders() {
    let d = "    sel:\n        User|expand: '%Administrators%'\n    condition: sel";
    let mut options = LoadOptions::default();
    options
        .placeholders
        .insert("Administrators".into(), vec!["adm_*".into(), "root".into()]);
    assert!(fires_with(d, json!({"User": "ADM_bob"}), &options));
    assert!(fires_with(d, json!({"User": "root"}), &options));
    assert!(!fires_with(d, json!({"User": "bob"}), &options));
    // Without values the placeholder matches nothing (and lint says so).
    assert!(!fires(d, json!({"User": "%Administrators%"})));
    let not = "    sel:\n        A: x\n    filter:\n        User|expand: '%Unknown%'\n    condition: sel and not filter";
    assert!(fires(not, json!({"A": "x", "User": "anyone"})));
}

#[test]
fn time_modifiers() {
    let d = "    sel:\n        UtcTime|hour|gte: 22\n    condition: sel";
    assert!(fires(d, json!({"UtcTime": "2026-04-17 23:10:00.000"})));
    assert!(!fires(d, json!({"UtcTime": "2026-04-17 21:59:59.000"})));
    assert!(fires(
        "    sel:\n        T|year: 2026\n        T|month: 4\n        T|day: 17\n        T|minute: 24\n    condition: sel",
        json!({"T": "2026-04-17T05:24:53Z"})
    ));
    assert!(fires(
        "    sel:\n        T|week: 16\n    condition: sel",
        json!({"T": "2026-04-17"})
    ));
}

#[test]
fn keywords() {
    let d =
        "    keywords:\n        - 'event::clear'\n        - 'event::drop'\n    condition: keywords";
    assert!(fires(d, json!({"A": "mimikatz # EVENT::Clear now"})));
    assert!(fires(d, json!({"nested": {"b": "x event::drop"}})));
    assert!(!fires(d, json!({"A": "event:clear"})));
    let all = "    keywords_cmdlet:\n        '|all':\n            - 'OabVirtualDirectory'\n            - ' -ExternalUrl '\n    condition: keywords_cmdlet";
    assert!(fires(
        all,
        json!({"A": "Set-OabVirtualDirectory", "B": "x -ExternalUrl y"})
    ));
    assert!(!fires(all, json!({"A": "Set-OabVirtualDirectory"})));
    // A number keyword matches numeric values too.
    assert!(fires(
        "    keywords:\n        - 4625\n    condition: keywords",
        json!({"EventID": 4625})
    ));
}

#[test]
fn lists_of_maps_and_list_fields() {
    let d = "    sel:\n        - Image|endswith: '\\example.exe'\n        - Description|contains: 'Test executable'\n    condition: sel";
    assert!(fires(d, json!({"Image": "c:\\example.exe"})));
    assert!(fires(d, json!({"Description": "A test executable"})));
    assert!(!fires(d, json!({"Image": "c:\\other.exe"})));
    // A field holding several values matches when any value does.
    assert!(fires(
        "    sel:\n        Tag: b\n    condition: sel",
        json!({"Tag": ["a", "b"]})
    ));
    // `all` over a multi-valued field: each pattern may match a different value.
    assert!(fires(
        "    sel:\n        Tag|all:\n            - a\n            - b\n    condition: sel",
        json!({"Tag": ["a", "b"]})
    ));
}

#[test]
fn field_names_lose_their_spaces() {
    let d = "    sel:\n        SAM User Account: 'bob'\n    condition: sel";
    assert!(fires(d, json!({"SAMUserAccount": "bob"})));
    assert!(
        fires(d, json!({"SAM User Account": "bob"})),
        "event field names with spaces match too"
    );
}

#[test]
fn condition_grammar() {
    let sels = "    selection1:\n        A: 1\n    selection2:\n        B: 1\n    filter_x:\n        C: 1\n    _private:\n        D: 1\n";
    let check =
        |cond: &str, ev: serde_json::Value| fires(&format!("{sels}    condition: {cond}"), ev);
    assert!(check("selection1 and not filter_x", json!({"A": 1})));
    assert!(!check(
        "selection1 and not filter_x",
        json!({"A": 1, "C": 1})
    ));
    assert!(check("1 of selection*", json!({"B": 1})));
    assert!(!check("all of selection*", json!({"B": 1})));
    assert!(check("all of selection*", json!({"A": 1, "B": 1})));
    assert!(check("1 of them", json!({"C": 1})));
    assert!(
        !check("1 of them", json!({"D": 1})),
        "`them` skips identifiers starting with _"
    );
    assert!(
        check("_private", json!({"D": 1})),
        "they can still be named explicitly"
    );
    assert!(check("all of them", json!({"A": 1, "B": 1, "C": 1})));
    assert!(
        check("selection1 or selection2 and filter_x", json!({"A": 1})),
        "and binds tighter than or"
    );
    assert!(!check(
        "(selection1 or selection2) and filter_x",
        json!({"A": 1})
    ));
    assert!(check("not not selection1", json!({"A": 1})));
    assert!(check("2 of selection* or filter_x", json!({"C": 1})));
    assert!(check("2 of them", json!({"A": 1, "C": 1})));
    assert!(!check("2 of them", json!({"A": 1})));
    // Several conditions are OR-ed.
    assert!(fires(
        &format!("{sels}    condition:\n        - selection1\n        - selection2"),
        json!({"B": 1})
    ));
    assert!(
        unsupported(&format!("{sels}    condition: selection1 and nope"))
            .contains("unknown search identifier 'nope'")
    );
    assert!(
        unsupported(&format!("{sels}    condition: 1 of zzz*"))
            .contains("matches no search identifier")
    );
    assert!(
        unsupported(&format!("{sels}    condition: selection1 | count() > 5"))
            .contains("correlation")
    );
}

#[test]
fn filters_suppress_listed_rules() {
    let yaml = "title: r\nid: 6f3e2987-db24-4c78-a860-b4f4095a7095\nlogsource:\n    product: test\ndetection:\n    sel:\n        Image|endswith: '\\rar.exe'\n    condition: sel\n---\ntitle: Filter Administrator account\nlogsource:\n    product: test\nfilter:\n    rules:\n        - 6f3e2987-db24-4c78-a860-b4f4095a7095\n    selection:\n        User|startswith: 'adm_'\n    condition: selection\n";
    let (engine, _) = engine_with(yaml, &LoadOptions::default());
    let mut s = engine.new_scratch();
    let mut out = Vec::new();
    engine.matches(
        &json!({"Image": "c:\\rar.exe", "User": "bob"}),
        &mut s,
        &mut out,
    );
    assert_eq!(out.len(), 1);
    out.clear();
    engine.matches(
        &json!({"Image": "c:\\rar.exe", "User": "adm_bob"}),
        &mut s,
        &mut out,
    );
    assert!(
        out.is_empty(),
        "the filter's condition names what to suppress (spec example)"
    );
}

#[test]
fn invalid_rules_are_reported_not_dropped() {
    let mut set = RuleSet::default();
    set.add_text(Path::new("bad.yml"), "title: x\nlogsource: {product: a}\ndetection:\n    sel:\n        A|nomod: 1\n    condition: sel\n", &LoadOptions::default());
    set.add_text(
        Path::new("bad2.yml"),
        "title: [unclosed\n",
        &LoadOptions::default(),
    );
    set.add_text(
        Path::new("bad3.yml"),
        "logsource: {product: a}\ndetection: {sel: {A: 1}, condition: sel}\n",
        &LoadOptions::default(),
    );
    let reasons: Vec<String> = set
        .invalid
        .iter()
        .map(|r| format!("{} {:?}", r.path.display(), r.outcome))
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons[0].contains("unknown modifier 'nomod'"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("YAML"), "{reasons:?}");
    assert!(reasons[2].contains("missing 'title'"), "{reasons:?}");
}

#[test]
fn builtin_routing_sends_process_creation_to_sysmon_and_security_4688() {
    let yaml = "title: whoami\nid: 11111111-0000-0000-0000-000000000001\nlogsource:\n    product: windows\n    category: process_creation\ndetection:\n    sel:\n        Image|endswith: '\\whoami.exe'\n    condition: sel\n";
    let mut set = RuleSet::default();
    set.add_text(Path::new("r.yml"), yaml, &LoadOptions::default());
    let (engine, report) = Engine::build(set.rules, &set.filters, &EngineOptions::default());
    assert_eq!(report[0].1, Outcome::Active);
    let mut s = engine.new_scratch();
    let mut out = Vec::new();
    let sysmon = json!({"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "Image": "C:\\Windows\\System32\\whoami.exe"});
    engine.matches(&sysmon, &mut s, &mut out);
    assert_eq!(out.len(), 1, "Sysmon EID 1");
    out.clear();
    let security = json!({"Channel": "Security", "EventID": 4688, "NewProcessName": "C:\\Windows\\System32\\whoami.exe"});
    engine.matches(&security, &mut s, &mut out);
    assert_eq!(
        out.len(),
        1,
        "Security 4688 through the Image→NewProcessName mapping"
    );
    out.clear();
    let wrong_id = json!({"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 11, "Image": "C:\\Windows\\System32\\whoami.exe"});
    engine.matches(&wrong_id, &mut s, &mut out);
    assert!(out.is_empty(), "file_event is not process_creation");
    // A rule for a product with no mapped source is reported, not evaluated.
    let mut set = RuleSet::default();
    set.add_text(Path::new("a.yml"), "title: aws\nlogsource: {product: aws, service: cloudtrail}\ndetection: {sel: {eventName: x}, condition: sel}\n", &LoadOptions::default());
    let (_, report) = Engine::build(set.rules, &set.filters, &EngineOptions::default());
    assert!(matches!(report[0].1, Outcome::Unrouted(_)));
}

#[test]
fn payload_channel_shadows_the_log_channel_but_routing_uses_the_log() {
    // Event 104 (a log was cleared) is written to the System log; its UserData `Channel` names
    // the cleared log, which is what SigmaHQ's eventlog-cleared rules test. Decoders move the
    // System value aside to `System_Channel`.
    let yaml = "title: cleared\nid: 22222222-0000-0000-0000-000000000001\nlogsource: {product: windows, service: system}\ndetection:\n    sel:\n        EventID: 104\n        Channel: 'Microsoft-Windows-Sysmon/Operational'\n    condition: sel\n";
    let mut set = RuleSet::default();
    set.add_text(Path::new("r.yml"), yaml, &LoadOptions::default());
    let (engine, _) = Engine::build(set.rules, &set.filters, &EngineOptions::default());
    let mut s = engine.new_scratch();
    let mut out = Vec::new();
    let cleared_sysmon = json!({"System_Channel": "System", "EventID": 104, "Channel": "Microsoft-Windows-Sysmon/Operational"});
    engine.matches(&cleared_sysmon, &mut s, &mut out);
    assert_eq!(
        out.len(),
        1,
        "routed by the log (System), matched on the payload Channel"
    );
    out.clear();
    let cleared_other =
        json!({"System_Channel": "System", "EventID": 104, "Channel": "Application"});
    engine.matches(&cleared_other, &mut s, &mut out);
    assert!(out.is_empty());
    let from_sysmon_log =
        json!({"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 104});
    engine.matches(&from_sysmon_log, &mut s, &mut out);
    assert!(
        out.is_empty(),
        "an event of the Sysmon log is not a System-log rule's event"
    );
}
