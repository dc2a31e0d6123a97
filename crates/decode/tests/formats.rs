//! XML, JSON and format detection on small inputs written by the tests.

use std::path::{Path, PathBuf};

use dozor_decode::{
    DecodeError, FlatEvent, InputFormat, Location, ReadOptions, Value, detect_format, flatten_json,
    flatten_windows_json, parse_event_xml, read_path,
};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

fn read(path: &Path) -> (Vec<FlatEvent>, Vec<DecodeError>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for item in read_path(path, &ReadOptions::default()).unwrap_or_else(|e| panic!("{e}")) {
        match item {
            Ok(e) => good.push(e),
            Err(e) => bad.push(e),
        }
    }
    (good, bad)
}

fn s(v: &str) -> Value {
    Value::from(v)
}

const LOG_CLEARED: &str = r#"<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event">
  <System>
    <Provider Name="Microsoft-Windows-Eventlog" Guid="{fc65ddd8-d6ef-4962-83d5-6e5cfe9ce148}"/>
    <EventID>1102</EventID><Version>0</Version><Level>4</Level><Task>104</Task><Opcode>0</Opcode>
    <Keywords>0x4020000000000000</Keywords>
    <TimeCreated SystemTime="2019-03-19T23:34:25.215926Z"/>
    <EventRecordID>2045</EventRecordID>
    <Correlation ActivityID="{1c6f4a2f-d39b-0000-834d-6f1c9bd3d401}"/>
    <Execution ProcessID="1040" ThreadID="4148"/>
    <Channel>Security</Channel><Computer>WIN-77LTAPHIQ1R.example.corp</Computer><Security/>
  </System>
  <UserData>
    <LogFileCleared xmlns="http://manifests.microsoft.com/win/2004/08/windows/eventlog">
      <SubjectUserSid>S-1-5-21-2</SubjectUserSid>
      <SubjectUserName>Administrator</SubjectUserName>
      <SubjectDomainName>EXAMPLE</SubjectDomainName>
      <SubjectLogonId>0x1bbdce</SubjectLogonId>
    </LogFileCleared>
  </UserData>
</Event>"#;

#[test]
fn user_data_leaves_by_name() {
    let e = parse_event_xml(LOG_CLEARED).expect("xml");
    assert_eq!(e.get("EventID"), Some(&Value::Int(1102)));
    assert_eq!(e.get("SubjectUserName"), Some(&s("Administrator")));
    assert_eq!(e.get("SubjectLogonId"), Some(&s("0x1bbdce")));
    assert_eq!(
        e.get("Correlation_ActivityID"),
        Some(&s("{1c6f4a2f-d39b-0000-834d-6f1c9bd3d401}"))
    );
    assert_eq!(e.get("Execution_ThreadID"), Some(&Value::Int(4148)));
    assert_eq!(e.get("Security_UserID"), None);
    assert_eq!(e.get("LogFileCleared_xmlns"), None);
    assert_eq!(e.timestamp_millis, Some(1_553_038_465_215));

    // The same record as evtx_dump JSON gives the same event.
    let json = serde_json::json!({"Event": {"#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
        "System": {"Provider": {"#attributes": {"Name": "Microsoft-Windows-Eventlog", "Guid": "{fc65ddd8-d6ef-4962-83d5-6e5cfe9ce148}"}},
            "EventID": 1102, "Version": 0, "Level": 4, "Task": 104, "Opcode": 0, "Keywords": "0x4020000000000000",
            "TimeCreated": {"#attributes": {"SystemTime": "2019-03-19T23:34:25.215926Z"}}, "EventRecordID": 2045,
            "Correlation": {"#attributes": {"ActivityID": "{1c6f4a2f-d39b-0000-834d-6f1c9bd3d401}"}},
            "Execution": {"#attributes": {"ProcessID": 1040, "ThreadID": 4148}},
            "Channel": "Security", "Computer": "WIN-77LTAPHIQ1R.example.corp", "Security": null},
        "UserData": {"LogFileCleared": {"#attributes": {"xmlns": "http://manifests.microsoft.com/win/2004/08/windows/eventlog"},
            "SubjectUserSid": "S-1-5-21-2", "SubjectUserName": "Administrator",
            "SubjectDomainName": "EXAMPLE", "SubjectLogonId": "0x1bbdce"}}}});
    assert_eq!(flatten_windows_json(&json).expect("json"), e);
}

#[test]
fn unnamed_data_and_binary() {
    let xml = r#"<Event><System><Provider Name="EventLog"/><EventID Qualifiers="32768">6009</EventID>
        <Channel>System</Channel></System>
        <EventData><Data>10.00.</Data><Data>15063</Data><Data></Data><Binary>E1070700</Binary></EventData></Event>"#;
    let e = parse_event_xml(xml).expect("xml");
    assert_eq!(e.get("EventID"), Some(&Value::Int(6009)));
    assert_eq!(e.get("EventID_Qualifiers"), Some(&Value::Int(32768)));
    assert_eq!(
        e.get("Data"),
        Some(&Value::List(vec![s("10.00."), s("15063"), s("")]))
    );
    assert_eq!(e.get("Binary"), Some(&s("E1070700")));
    let one = parse_event_xml("<Event><System/><EventData><Data>only</Data></EventData></Event>")
        .expect("xml");
    assert_eq!(one.get("Data"), Some(&s("only")));
}

#[test]
fn empty_values_are_empty_strings_everywhere() {
    let xml = r#"<Event><System><EventID>1</EventID></System><EventData><Data Name="A"/><Data Name="B"></Data></EventData></Event>"#;
    let json =
        serde_json::json!({"Event": {"System": {"EventID": 1}, "EventData": {"A": null, "B": ""}}});
    let from_xml = parse_event_xml(xml).expect("xml");
    let from_json = flatten_windows_json(&json).expect("json");
    assert_eq!(from_xml, from_json);
    assert_eq!(from_xml.get("A"), Some(&s("")));
}

#[test]
fn xml_file_with_several_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = |id: u32, user: &str| {
        format!(
            "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><EventID>4624</EventID>\
             <EventRecordID>{id}</EventRecordID><Channel>Security</Channel></System>\
             <EventData><Data Name='TargetUserName'>{user}</Data></EventData></Event>"
        )
    };
    let wrapped = format!(
        "<?xml version=\"1.0\"?>\r\n<Events>\r\n{}\r\n{}\r\n</Events>\r\n",
        one(1, "alice"),
        one(2, "bob")
    );
    let path = write(dir.path(), "events.xml", wrapped.as_bytes());
    let (good, bad) = read(&path);
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(good.len(), 2);
    assert_eq!(good[1].get("TargetUserName"), Some(&s("bob")));

    // Bare events one after another, with a damaged one in the middle.
    let broken = "<Event><System><EventID>9</EventID></System><EventData><Data Name='X' Name='Y'>v</Data></EventData></Event>";
    let bare = format!("{}\n{broken}\n{}\n", one(1, "alice"), one(3, "carol"));
    let path = write(dir.path(), "bare.log", bare.as_bytes());
    let (good, bad) = read(&path);
    assert_eq!(good.len(), 2, "{bad:?}");
    assert_eq!(good[1].get("TargetUserName"), Some(&s("carol")));
    assert_eq!(bad.len(), 1);
    assert!(
        matches!(bad[0].location(), Location::Byte { .. }),
        "{}",
        bad[0]
    );
    assert!(bad[0].to_string().contains("bare.log: byte"), "{}", bad[0]);

    // UTF-16 (PowerShell's `>`), with a byte-order mark.
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in wrapped.encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    let path = write(dir.path(), "utf16.xml", &utf16);
    let (good, bad) = read(&path);
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(good.len(), 2);

    // XML without any event is one clear error.
    let path = write(dir.path(), "other.xml", b"<report><result/></report>");
    let (good, bad) = read(&path);
    assert!(good.is_empty());
    assert!(
        bad[0].is_fatal() && bad[0].to_string().contains("no Windows <Event>"),
        "{}",
        bad[0]
    );
}

const WINLOGBEAT: &str = r#"{"@timestamp":"2023-05-04T10:11:12.345Z","event":{"code":"4688","kind":"event","provider":"Microsoft-Windows-Security-Auditing","action":"created-process"},"host":{"name":"ws1"},"winlog":{"api":"wineventlog","channel":"Security","computer_name":"ws1.example.corp","event_id":"4688","provider_name":"Microsoft-Windows-Security-Auditing","provider_guid":"{54849625-5478-4994-a5ba-3e3b0328c30d}","record_id":"125344","process":{"pid":4,"thread":{"id":7772}},"keywords":["Audit Success"],"opcode":"Info","task":"Process Creation","event_data":{"SubjectUserName":"WS1$","NewProcessName":"C:\\Windows\\System32\\cmd.exe","CommandLine":"cmd.exe /c whoami","TokenElevationType":"%%1936","MandatoryLabel":"S-1-16-16384"}}}"#;

#[test]
fn winlogbeat_documents() {
    let doc: serde_json::Value = serde_json::from_str(WINLOGBEAT).expect("json");
    let e = flatten_json(&doc).expect("flatten");
    assert_eq!(e.get("EventID"), Some(&Value::Int(4688)));
    assert_eq!(e.get("Channel"), Some(&s("Security")));
    assert_eq!(
        e.get("Provider_Name"),
        Some(&s("Microsoft-Windows-Security-Auditing"))
    );
    assert_eq!(e.get("Computer"), Some(&s("ws1.example.corp")));
    assert_eq!(e.get("EventRecordID"), Some(&Value::Int(125_344)));
    assert_eq!(e.get("Execution_ThreadID"), Some(&Value::Int(7772)));
    assert_eq!(e.get("CommandLine"), Some(&s("cmd.exe /c whoami")));
    assert_eq!(
        e.get("winlog.event_data.CommandLine"),
        Some(&s("cmd.exe /c whoami"))
    );
    assert_eq!(
        e.get("winlog.keywords"),
        Some(&Value::List(vec![s("Audit Success")]))
    );
    assert_eq!(e.get("event.code"), Some(&s("4688")));
    assert_eq!(e.get("host.name"), Some(&s("ws1")));
    assert_eq!(e.timestamp_millis, Some(1_683_195_072_345));
}

#[test]
fn ndjson_with_a_bad_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{WINLOGBEAT}\n\n{{\"broken\": \n{{\"message\":\"plain\",\"a\":{{\"b\":[1,2]}},\"timestamp\":1683195072}}\r\n"
    );
    let path = write(dir.path(), "events.ndjson", text.as_bytes());
    let (good, bad) = read(&path);
    assert_eq!(good.len(), 2);
    assert_eq!(bad.len(), 1);
    assert_eq!(
        bad[0].location(),
        Location::Line {
            line: 3,
            column: Some(10)
        }
    );
    assert!(
        bad[0]
            .to_string()
            .starts_with(&format!("{}: line 3", path.display())),
        "{}",
        bad[0]
    );
    assert_eq!(good[0].get("EventID"), Some(&Value::Int(4688)));
    assert_eq!(
        good[1].get("a.b"),
        Some(&Value::List(vec![Value::Int(1), Value::Int(2)]))
    );
    assert_eq!(good[1].timestamp_millis, Some(1_683_195_072_000));
}

#[test]
fn json_arrays_and_evtx_dump_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = r#"[
      {"Event": {"System": {"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational"},
                 "EventData": {"Image": "C:\\a.exe", "ProcessId": 42}}},
      {"flat": true, "nested": {"x": "y"}},
      7
    ]"#;
    let path = write(dir.path(), "mixed.json", text.as_bytes());
    let (good, bad) = read(&path);
    assert_eq!(good.len(), 2);
    assert_eq!(good[0].get("Image"), Some(&s("C:\\a.exe")));
    assert_eq!(good[0].get("ProcessId"), Some(&Value::Int(42)));
    assert_eq!(good[1].get("nested.x"), Some(&s("y")));
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].location(), Location::Item { index: 2 });
}

#[test]
fn format_detection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(&str, &[u8], InputFormat); 6] = [
        ("a.txt", b"  <Event/>", InputFormat::Xml),
        ("a.log", b"\n{\"a\":1}", InputFormat::Json),
        ("a.data", b"[{}]", InputFormat::Json),
        ("x.evtx", b"ElfFile\0rest", InputFormat::Evtx),
        ("named.evtx", b"", InputFormat::Evtx),
        ("named.jsonl", b"", InputFormat::Json),
    ];
    for (name, bytes, want) in cases {
        let path = write(dir.path(), name, bytes);
        assert_eq!(detect_format(&path).expect(name), want, "{name}");
    }
    let path = write(dir.path(), "what.bin", b"\x00\x01\x02");
    assert!(detect_format(&path).unwrap_err().is_fatal());
    let path = write(dir.path(), "empty", b"");
    assert!(
        read_path(&path, &ReadOptions::default())
            .unwrap_err()
            .to_string()
            .contains("empty")
    );
    let path = write(dir.path(), "events.xml", LOG_CLEARED.as_bytes());
    assert_eq!(
        read_path(&path, &ReadOptions::default())
            .expect("xml")
            .format(),
        InputFormat::Xml
    );
}

#[test]
fn payload_fields_shadow_system_fields_of_the_same_name() {
    // System log event 104: UserData's Channel is the log that was cleared.
    let xml = r#"<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event">
  <System><Provider Name="Microsoft-Windows-Eventlog"/><EventID>104</EventID><Channel>System</Channel><Computer>pc</Computer></System>
  <UserData><LogFileCleared xmlns="http://manifests.microsoft.com/win/2004/08/windows/eventlog">
    <SubjectUserName>bob</SubjectUserName><Channel>Microsoft-Windows-Sysmon/Operational</Channel><BackupPath></BackupPath>
  </LogFileCleared></UserData>
</Event>"#;
    let e = parse_event_xml(xml).expect("xml");
    assert_eq!(
        e.get("Channel"),
        Some(&s("Microsoft-Windows-Sysmon/Operational"))
    );
    assert_eq!(e.get("System_Channel"), Some(&s("System")));
    assert_eq!(e.fields.iter().filter(|(n, _)| n == "Channel").count(), 1);
    assert_eq!(
        e.get("Computer"),
        Some(&s("pc")),
        "fields without a clash keep their name"
    );
}
