//! The dashboard in a real headless Chromium (Debian `chromium` + `chromedriver`), against the
//! real `dozor server`: sign in, see the alert a real EVTX event produced, change its status,
//! search events, approve a playbook's request in the approvals inbox, switch to Russian. Screenshots go to
//! `$CARGO_TARGET_TMPDIR/ui-screenshots/` (the path is printed).
//!
//! Skips (saying so) only when chromedriver is not installed; `.ci/run` installs it.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const RULE_TITLE: &str = "File Download Via Bitsadmin";

fn shared_dir() -> PathBuf {
    std::env::var_os("DOZOR_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Started {
    _child: Killed,
    url: String,
    password: String,
    token: String,
}

/// `dozor server` with a temp data dir; returns its URL and the first-start credentials.
fn start_server(dir: &Path, rules: &Path) -> Started {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dozor"))
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .env("DOZOR_RULES_DIRS", rules)
        .env("DOZOR_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dozor server");
    let stderr = child.stderr.take().expect("stderr");
    let child = Killed(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut password, mut token) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("dozor server did not start");
        if let Some(p) = line.trim().strip_prefix("password:") {
            password = Some(p.trim().to_owned());
        }
        if let Some(t) = line.split_whitespace().find(|w| w.starts_with("dzt_")) {
            token = Some(t.to_owned());
        }
        if let Some(url) = line.strip_prefix("dozor server listening on ") {
            // The server's warnings stay visible: nextest shows them when the test fails.
            std::thread::spawn(move || {
                while let Ok(line) = rx.recv() {
                    eprintln!("[dozor server] {line}");
                }
            });
            return Started {
                _child: child,
                url: url.trim().to_owned(),
                password: password.expect("first-start password printed"),
                token: token.expect("first-start token printed"),
            };
        }
    }
}

fn curl(url: &str, ca: &Path, args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--cacert"])
        .arg(ca)
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn type_into(client: &Client, css: &str, text: &str) {
    // A page still loading may swap the field out from under the keystrokes.
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .execute("return document.readyState", vec![])
        .await
        .ok()
        .and_then(|v| v.as_str().map(|s| s != "complete"))
        .unwrap_or(true)
    {
        assert!(
            Instant::now() < deadline,
            "{css}: the page never finished loading"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let field = client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn screenshot(client: &Client, dir: &Path, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
}

async fn wait_text(client: &Client, what: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let source = client.source().await.unwrap_or_default();
        if source.contains(needle) {
            return source;
        }
        if Instant::now() >= deadline {
            // What the page says (an error message, a refusal) is the first clue.
            let shown = client
                .execute(
                    "return document.body ? document.body.innerText : ''",
                    vec![],
                )
                .await
                .ok()
                .and_then(|v| v.as_str().map(|s| s.chars().take(1500).collect::<String>()))
                .unwrap_or_default();
            panic!(
                "timed out waiting for {what} ({needle:?}) at {:?}; the page shows:\n{shown}",
                client.current_url().await.map(|u| u.to_string())
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_real_browser() {
    let chromedriver = Path::new("/usr/bin/chromedriver");
    let chromium = Path::new("/usr/bin/chromium");
    if !chromedriver.exists() || !chromium.exists() {
        println!(
            "skipped: Debian chromium and chromium-driver are not installed (.ci/run installs them)"
        );
        return;
    }
    let evtx = shared_dir().join(
        "sigma/regression_data/rules/windows/process_creation/proc_creation_win_bitsadmin_download/d059842b-6b9d-4ed1-b5c3-5b89143c6ede.evtx",
    );
    let rule = shared_dir()
        .join("sigma/rules/windows/process_creation/proc_creation_win_bitsadmin_download.yml");
    assert!(evtx.is_file() && rule.is_file(), "../shared is needed");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::copy(&rule, rules.join("rule.yml")).unwrap();
    // Our own rule for one process of ../shared's sysmon.evtx that sits four levels deep:
    // launcher.exe → opera_autoupdate.exe → launcher.exe → installer.exe (with 3 children).
    std::fs::write(
        rules.join("deep-process.yml"),
        "title: Opera Installer Started By Its Launcher\n\
         id: 6f3b8c7e-2d0a-4c55-9a41-3f1d1c0b7e21\n\
         status: test\n\
         level: medium\n\
         tags: [attack.execution, attack.t1204.002]\n\
         logsource: {product: windows, category: process_creation}\n\
         detection:\n\
         \x20 selection:\n\
         \x20   Image|endswith: '\\installer.exe'\n\
         \x20   ParentImage|endswith: '\\launcher.exe'\n\
         \x20   CommandLine|contains: 'installing'\n\
         \x20 condition: selection\n",
    )
    .unwrap();
    // Two more of our own on the same log, so its host has three alerts to group into an
    // incident.
    for (file, title, id, image, parent, tag) in [
        (
            "ping.yml",
            "Ping Started From Cmd",
            "0c4a7f51-8e2b-4d3c-9f6a-5b1e2d3c4a51",
            "PING.EXE",
            "cmd.exe",
            "attack.t1018",
        ),
        (
            "installer-chain.yml",
            "Installer Started By Installer",
            "0c4a7f51-8e2b-4d3c-9f6a-5b1e2d3c4a52",
            "installer.exe",
            "installer.exe",
            "attack.t1204.002",
        ),
    ] {
        std::fs::write(
            rules.join(file),
            format!(
                "title: {title}\nid: {id}\nstatus: test\nlevel: low\ntags: [{tag}]\n\
                 logsource: {{product: windows, category: process_creation}}\n\
                 detection:\n  selection:\n    Image|endswith: '\\{image}'\n\
                 \x20   ParentImage|endswith: '\\{parent}'\n  condition: selection\n"
            ),
        )
        .unwrap();
    }
    let sysmon = shared_dir().join("datasets/evtx-samples/sysmon.evtx");
    assert!(sysmon.is_file(), "../shared is needed");
    let server = start_server(dir.path(), &rules);
    let ca = dir.path().join("data/pki/ca.crt.pem");

    // A real Sysmon event in, an alert out.
    let (status, body) = curl(
        &format!("{}/api/v1/ingest/evtx", server.url),
        &ca,
        &[
            "-H",
            &format!("Authorization: Bearer {}", server.token),
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", evtx.display()),
        ],
    );
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let alert_id = loop {
        let (_, body) = curl(
            &format!("{}/api/v1/alerts", server.url),
            &ca,
            &["-H", &format!("Authorization: Bearer {}", server.token)],
        );
        let page: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if let Some(id) = page["alerts"][0]["id"].as_i64() {
            break id;
        }
        assert!(Instant::now() < deadline, "no alert: {body}");
        std::thread::sleep(Duration::from_millis(250));
    };

    // The browser.
    let port = free_port();
    let driver = Killed(
        Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver"),
    );
    let profile = dir.path().join("chromium-profile");
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    // The server's certificate comes from its own CA, which this throw-away profile does
    // not know.
    caps.insert("acceptInsecureCerts".into(), json!(true));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                "--lang=en-US", format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {"intl.accept_languages": "en-US,en"},
        }),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = loop {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => break c,
            Err(e) => {
                assert!(Instant::now() < deadline, "chromedriver: {e}");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    };
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    println!("screenshots: {}", shots.display());

    // Not signed in: the login page.
    client
        .goto(&format!("{}/ui/alerts", server.url))
        .await
        .unwrap();
    wait_text(&client, "the login page", "name=\"password\"").await;
    screenshot(&client, &shots, "01-login").await;
    // A wrong password is refused with a message, then the right one signs in.
    const SUBMIT: &str = "form button[type=submit], form input[type=submit]";
    type_into(&client, "input[name=username]", "admin").await;
    type_into(&client, "input[name=password]", "wrong password!").await;
    click(&client, SUBMIT).await;
    wait_text(&client, "the refusal", "Wrong user name or password.").await;
    type_into(&client, "input[name=username]", "admin").await;
    type_into(&client, "input[name=password]", &server.password).await;
    click(&client, SUBMIT).await;

    // The alerts list shows the alert; it leads to its detail.
    wait_text(&client, "the alert in the list", RULE_TITLE).await;
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/ui/alerts"),
        "back where we wanted to go"
    );
    screenshot(&client, &shots, "02-alerts").await;
    client
        .goto(&format!("{}/ui/alerts/{alert_id}", server.url))
        .await
        .unwrap();
    wait_text(&client, "the alert detail", "bitsadmin").await;
    screenshot(&client, &shots, "03-alert-detail").await;
    click(&client, "form.workflow button[value=acknowledged]").await;
    // The change is real: the API says so, and the history shows it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = curl(
            &format!("{}/api/v1/alerts/{alert_id}", server.url),
            &ca,
            &["-H", &format!("Authorization: Bearer {}", server.token)],
        );
        let detail: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if detail["alert"]["status"] == "acknowledged" {
            assert!(
                body.contains("admin"),
                "the change is the signed-in user's: {body}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "status not changed: {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    screenshot(&client, &shots, "04-alert-acknowledged").await;

    // Events search with the query language, a histogram and results.
    client
        .goto(&format!(
            "{}/ui/events?q=process.command_line%3A*bitsadmin*&range=30d",
            server.url
        ))
        .await
        .unwrap();
    let page = wait_text(&client, "search results", "bitsadmin").await;
    assert!(page.contains("<svg"), "a histogram");
    screenshot(&client, &shots, "05-events").await;
    // A query that does not parse says so.
    client
        .goto(&format!("{}/ui/events?q=%28unbalanced", server.url))
        .await
        .unwrap();
    screenshot(&client, &shots, "06-events-bad-query").await;

    // A process tree from real Sysmon events, and a pivot from the alert to the host's events.
    let (status, body) = curl(
        &format!("{}/api/v1/ingest/evtx", server.url),
        &ca,
        &[
            "-H",
            &format!("Authorization: Bearer {}", server.token),
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", sysmon.display()),
        ],
    );
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let deep_alert = loop {
        let (_, body) = curl(
            &format!(
                "{}/api/v1/alerts?rule=6f3b8c7e-2d0a-4c55-9a41-3f1d1c0b7e21",
                server.url
            ),
            &ca,
            &["-H", &format!("Authorization: Bearer {}", server.token)],
        );
        let page: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if let Some(id) = page["alerts"][0]["id"].as_i64() {
            assert_eq!(page["alerts"][0]["host"], "DESKTOP-2KGM189", "{body}");
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "no alert from sysmon.evtx: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    client
        .goto(&format!("{}/ui/alerts/{deep_alert}", server.url))
        .await
        .unwrap();
    let page = wait_text(&client, "the process tree", "process-tree").await;
    let tree = page
        .split("class=\"process-tree\"")
        .nth(1)
        .unwrap_or_default()
        .split("</ul>")
        .next()
        .unwrap_or_default();
    let at = |name: &str| {
        tree.find(name)
            .unwrap_or_else(|| panic!("{name} in the tree: {tree}"))
    };
    // Root first: launcher → opera_autoupdate → launcher → installer (this alert) → children.
    assert!(at("opera_autoupdate.exe") < at("pt-focus"), "{tree}");
    assert!(
        tree.contains("depth-3"),
        "three levels above the process: {tree}"
    );
    assert!(
        tree.matches("pt-child").count() >= 3,
        "its children: {tree}"
    );
    screenshot(&client, &shots, "14-process-tree").await;
    // Pivot: the host's events around the alert.
    click(&client, "dd.pivots a.chip").await;
    let page = wait_text(&client, "the host's events", "events-table").await;
    assert!(page.contains("host.name"), "the pivot searches the host");
    assert!(
        !page.contains(">0 events in range"),
        "the host has events then"
    );
    screenshot(&client, &shots, "15-pivot-host-events").await;
    client
        .goto(&format!("{}/ui/hosts", server.url))
        .await
        .unwrap();
    wait_text(&client, "the host list", "DESKTOP-2KGM189").await;
    screenshot(&client, &shots, "16-hosts").await;

    // An exception from the alert page stops the repeat: the same process started again on
    // that host is counted on the exception, not alerted.
    client
        .goto(&format!("{}/ui/alerts/{deep_alert}", server.url))
        .await
        .unwrap();
    wait_text(&client, "the exception form", "exception-form").await;
    click(&client, "details.exception-form summary").await;
    type_into(
        &client,
        "details.exception-form input[name=reason]",
        "Opera's own updater",
    )
    .await;
    click(&client, "details.exception-form button[type=submit]").await;
    let page = wait_text(&client, "the exceptions page", "Exception added").await;
    assert!(
        page.contains("DESKTOP-2KGM189"),
        "the condition is the host"
    );
    screenshot(&client, &shots, "17-exception").await;
    let converted = Command::new(env!("CARGO_BIN_EXE_dozor"))
        .arg("convert")
        .arg(&sysmon)
        .output()
        .expect("dozor convert");
    let line = String::from_utf8_lossy(&converted.stdout)
        .lines()
        .find(|l| {
            l.contains("{94f748d5-4dcb-5a9e-0000-0010b2051110}") && l.contains("\"code\":\"1\"")
        })
        .expect("the process's start event")
        .to_owned();
    let mut repeat: Value = serde_json::from_str(&line).unwrap();
    repeat["event"]["id"] = json!("5b8a7f2e-0c1d-4e6f-9a3b-7d2e1f0c9b8a");
    repeat["@timestamp"] = json!("2026-01-05T10:00:00Z");
    let (status, body) = curl(
        &format!("{}/api/v1/ingest", server.url),
        &ca,
        &[
            "-H",
            &format!("Authorization: Bearer {}", server.token),
            "-H",
            "Content-Type: application/x-ndjson",
            "--data-binary",
            &repeat.to_string(),
        ],
    );
    assert!(status == 202 || status == 200, "{status} {body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = curl(
            &format!("{}/api/v1/exceptions", server.url),
            &ca,
            &["-H", &format!("Authorization: Bearer {}", server.token)],
        );
        let list: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if list[0]["suppressed"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the repeat was not suppressed: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (_, body) = curl(
        &format!(
            "{}/api/v1/alerts?rule=6f3b8c7e-2d0a-4c55-9a41-3f1d1c0b7e21&status=new",
            server.url
        ),
        &ca,
        &["-H", &format!("Authorization: Bearer {}", server.token)],
    );
    let page: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        page["alerts"].as_array().map(Vec::len),
        Some(1),
        "no new alert: {body}"
    );
    assert_eq!(
        page["alerts"][0]["count"], 1,
        "not folded in either: {body}"
    );

    incident_from_three_alerts(&client, &server, &ca, &shots).await;
    attack_matrix_shows_alerts_and_coverage(&client, &server, &shots).await;
    what_a_new_user_found_wrong(&client, &server, &shots).await;

    // Response: a playbook run waits for an approval; the inbox approves it.
    let (status, body) = curl(
        &format!("{}/api/v1/playbooks/quarantine-host/run", server.url),
        &ca,
        &[
            "-H",
            &format!("Authorization: Bearer {}", server.token),
            "-H",
            "Content-Type: application/json",
            "--data",
            &json!({"alert_id": alert_id}).to_string(),
        ],
    );
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let approval_id = loop {
        let (_, body) = curl(
            &format!("{}/api/v1/approvals?status=pending", server.url),
            &ca,
            &["-H", &format!("Authorization: Bearer {}", server.token)],
        );
        let list: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if let Some(id) = list["approvals"][0]["id"].as_str() {
            break id.to_owned();
        }
        assert!(Instant::now() < deadline, "no approval asked: {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    client
        .goto(&format!("{}/ui/approvals", server.url))
        .await
        .unwrap();
    wait_text(&client, "the approvals inbox", &approval_id).await;
    screenshot(&client, &shots, "10-approvals").await;
    let form = format!("div[data-approval-id=\"{approval_id}\"] form.decide");
    type_into(
        &client,
        &format!("{form} input[name=comment]"),
        "checked by hand",
    )
    .await;
    click(&client, &format!("{form} button[value=approve]")).await;
    wait_text(&client, "the approval decided", "Approved by admin").await;
    screenshot(&client, &shots, "11-approved").await;
    let (_, body) = curl(
        &format!("{}/api/v1/approvals/{approval_id}", server.url),
        &ca,
        &["-H", &format!("Authorization: Bearer {}", server.token)],
    );
    let approval: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    assert_eq!(approval["status"], "approved", "{body}");
    assert_eq!(approval["comment"], "checked by hand", "{body}");
    // the run page shows the decided step
    client
        .goto(&format!(
            "{}/ui/playbook-runs/{}",
            server.url,
            approval["run_id"].as_str().expect("a run's approval")
        ))
        .await
        .unwrap();
    wait_text(&client, "the run page", "data-step-status=").await;
    screenshot(&client, &shots, "12-run").await;

    saved_search_rerun(&client, &server, &ca, &shots).await;

    // Threat intelligence: an indicator added with the search page's form shows on its page.
    client
        .goto(&format!("{}/ui/intel", server.url))
        .await
        .unwrap();
    wait_text(&client, "the indicator search", "add-ioc-form").await;
    click(&client, "details.add-ioc summary").await;
    type_into(
        &client,
        "form.add-ioc-form input[name=value]",
        "Browser-Test.example",
    )
    .await;
    type_into(&client, "form.add-ioc-form input[name=tags]", "tlp:green").await;
    click(&client, "form.add-ioc-form button[type=submit]").await;
    let page = wait_text(&client, "the new indicator's page", "Indicator added.").await;
    assert!(page.contains("browser-test.example"), "normalized value");
    assert!(page.contains("data-source=\"manual\""), "its source");
    screenshot(&client, &shots, "13-intel-ioc").await;

    // Russian.
    client
        .goto(&format!("{}/ui/overview", server.url))
        .await
        .unwrap();
    wait_text(&client, "the overview", "user-menu").await;
    screenshot(&client, &shots, "07-overview-en").await;
    click(&client, "details.user-menu summary").await;
    click(&client, "form.lang-switch button[value=ru]").await;
    let page = wait_text(&client, "the Russian overview", "lang=\"ru\"").await;
    assert!(page.contains("Алерты"), "Russian navigation");
    screenshot(&client, &shots, "08-overview-ru").await;
    client
        .goto(&format!("{}/ui/alerts/{alert_id}", server.url))
        .await
        .unwrap();
    wait_text(&client, "the Russian alert page", "lang=\"ru\"").await;
    screenshot(&client, &shots, "09-alert-ru").await;

    client.close().await.unwrap();
    drop(driver);
    let mut f = std::fs::File::create(shots.join("README.txt")).unwrap();
    writeln!(f, "screenshots of crates/cli/tests/ui_browser.rs").unwrap();
}

/// The API's JSON answer to a GET, as the admin.
fn api_get(server: &Started, ca: &Path, path: &str) -> Value {
    let (status, body) = curl(
        &format!("{}{path}", server.url),
        ca,
        &["-H", &format!("Authorization: Bearer {}", server.token)],
    );
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// Three alerts of one host, picked on the alert list and grouped with "Create incident";
/// then a task ticked off and an observable added on the incident's page.
async fn incident_from_three_alerts(client: &Client, server: &Started, ca: &Path, shots: &Path) {
    const HOST: &str = "DESKTOP-2KGM189";
    let deadline = Instant::now() + Duration::from_secs(60);
    let ids: Vec<i64> = loop {
        let page = api_get(
            server,
            ca,
            &format!("/api/v1/alerts?host={HOST}&time=detected"),
        );
        let ids: Vec<i64> = page["alerts"]
            .as_array()
            .map(|a| a.iter().filter_map(|a| a["id"].as_i64()).collect())
            .unwrap_or_default();
        if ids.len() >= 3 {
            break ids;
        }
        assert!(Instant::now() < deadline, "three alerts on {HOST}: {page}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let picked = &ids[..3];
    client
        .goto(&format!(
            "{}/ui/alerts?status_any=1&host={HOST}&range=all",
            server.url
        ))
        .await
        .unwrap();
    wait_text(client, "the host's alerts", "alerts-table").await;
    // The list offers the suggestion too, on the incidents page; here: by hand.
    for id in picked {
        click(client, &format!("input[name=id][value=\"{id}\"]")).await;
    }
    click(client, "button[formaction=\"/ui/incidents\"]").await;
    let page = wait_text(client, "the new incident", "Incident opened.").await;
    for id in picked {
        assert!(
            page.contains(&format!("data-alert-id=\"{id}\"")),
            "alert {id} in the incident"
        );
    }
    assert!(
        page.contains(&format!("3 alerts on {HOST}")),
        "a title from the alerts"
    );
    let incident = client
        .current_url()
        .await
        .unwrap()
        .path()
        .trim_start_matches("/ui/incidents/")
        .to_owned();
    screenshot(client, shots, "18-incident").await;
    type_into(
        client,
        "form[action$=\"/tasks\"] input[name=title]",
        "Reimage the host",
    )
    .await;
    click(client, "form[action$=\"/tasks\"] button[type=submit]").await;
    wait_text(client, "the task", "Task added.").await;
    click(client, "button.task-toggle").await;
    wait_text(client, "the task done", "Task updated.").await;
    type_into(
        client,
        "form[action$=\"/observables\"] input[name=value]",
        "203.0.113.9",
    )
    .await;
    click(client, "form[action$=\"/observables\"] button[type=submit]").await;
    let page = wait_text(client, "the observable", "Observable added.").await;
    assert!(page.contains("203.0.113.9"));
    assert!(page.contains("incident-timeline"), "the merged timeline");
    screenshot(client, shots, "19-incident-worked").await;
    let detail = api_get(server, ca, &format!("/api/v1/incidents/{incident}"));
    assert_eq!(detail["incident"]["alert_count"], 3, "{detail}");
    assert_eq!(detail["tasks"][0]["done"], true, "{detail}");
    assert_eq!(detail["incident"]["owner"], "admin", "{detail}");
    client
        .goto(&format!("{}/ui/incidents", server.url))
        .await
        .unwrap();
    wait_text(client, "the incident list", &format!("3 alerts on {HOST}")).await;
}

/// The ATT&CK matrix: technique names, a technique with alerts coloured, rule coverage.
async fn attack_matrix_shows_alerts_and_coverage(client: &Client, server: &Started, shots: &Path) {
    client
        .goto(&format!("{}/ui/attack", server.url))
        .await
        .unwrap();
    let page = wait_text(client, "the ATT&CK matrix", "attack-matrix").await;
    let cell = |id: &str| -> String {
        page.split(&format!("data-technique=\"{id}\""))
            .nth(1)
            .and_then(|rest| rest.split("</li>").next())
            .unwrap_or_else(|| panic!("{id} in the matrix"))
            .to_owned()
    };
    // BITS Jobs (the bitsadmin rule) and User Execution (ours, T1204.002) have alerts today.
    assert!(page.contains("BITS Jobs"), "technique names, not only ids");
    assert!(cell("T1197").contains("tech-alerts"), "{}", cell("T1197"));
    assert!(cell("T1204").contains("tech-alerts"), "{}", cell("T1204"));
    assert!(
        !cell("T1595").contains("tech-alerts"),
        "no alerts for Active Scanning"
    );
    screenshot(client, shots, "20-attack").await;
}

/// A search saved from the events page with its columns, listed on the saved searches page
/// and re-run from there: the events page comes back with the query and the chosen column,
/// and the CSV export link of that page answers with the same events.
async fn saved_search_rerun(client: &Client, server: &Started, ca: &Path, shots: &Path) {
    client
        .goto(&format!(
            "{}/ui/events?q=process.name%3A*&range=all&cols=host.name,user.name",
            server.url
        ))
        .await
        .unwrap();
    let page = wait_text(client, "the events page with columns", "save-search").await;
    assert!(
        page.contains("<th><code>host.name</code></th>"),
        "the chosen column"
    );
    type_into(
        client,
        "form.save-search input[name=name]",
        "Process starts",
    )
    .await;
    click(client, "form.save-search input[name=shared]").await;
    click(client, "form.save-search button[type=submit]").await;
    wait_text(client, "the saved search's flash", "Search saved.").await;

    client
        .goto(&format!("{}/ui/searches", server.url))
        .await
        .unwrap();
    let page = wait_text(client, "the saved searches page", "run-search").await;
    assert!(page.contains("Process starts"), "listed");
    assert!(page.contains("process.name:*"), "with its query");
    screenshot(client, shots, "20-saved-searches").await;
    click(client, "a.run-search").await;
    let page = wait_text(
        client,
        "the re-run search",
        "<th><code>user.name</code></th>",
    )
    .await;
    assert!(
        page.contains("value=\"process.name:*\""),
        "the query is back"
    );
    let url = client.current_url().await.unwrap().to_string();
    assert!(url.contains("cols=host.name%2Cuser.name"), "{url}");
    screenshot(client, shots, "21-saved-search-rerun").await;

    // The run was recorded; the export link of the page gives the same search as CSV.
    let saved = api_get(server, ca, "/api/v1/saved-searches");
    let search = &saved[0];
    assert_eq!(search["name"], "Process starts", "{saved}");
    assert!(search["last_run_at"].is_i64(), "{saved}");
    let export = client
        .find(Locator::Css(
            "a[href^=\"/api/v1/events/export?format=csv\"]",
        ))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .expect("an export link");
    let (status, csv) = curl(
        &format!("{}{}", server.url, export.replace("&amp;", "&")),
        ca,
        &["-H", &format!("Authorization: Bearer {}", server.token)],
    );
    assert_eq!(status, 200, "{export}: {csv}");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("@timestamp,event.id,agent_id,host.name,user.name")
    );
    assert!(lines.count() > 0, "the events of the search");
}

/// What a new user found wrong (issue 16), as the browser shows it now.
async fn what_a_new_user_found_wrong(client: &Client, server: &Started, shots: &Path) {
    // Rules: level and tags come from the rules themselves; a tag finds its rules.
    client
        .goto(&format!("{}/ui/rules?q=t1197", server.url))
        .await
        .unwrap();
    let page = wait_text(client, "rules by tag", RULE_TITLE).await;
    let row = page
        .split(RULE_TITLE)
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap_or_default();
    assert!(row.contains("lv lv-"), "a level, not a dash: {row}");
    assert!(
        !page.contains("Installer Started By Installer"),
        "only the tagged rule"
    );
    screenshot(client, shots, "21-rules-by-tag").await;
    // Alerts of uploaded 2018 logs: tied to their host, and in the 24 h widgets because they
    // were detected today.
    client
        .goto(&format!("{}/ui/alerts?status_any=1&range=all", server.url))
        .await
        .unwrap();
    let page = wait_text(client, "the alert list", "alerts-table").await;
    assert!(
        page.contains("href=\"/ui/hosts/DESKTOP-2KGM189\""),
        "a host column"
    );
    assert!(!page.contains("not tied to an agent"));
    client
        .goto(&format!("{}/ui/overview", server.url))
        .await
        .unwrap();
    let page = wait_text(client, "the overview", "user-menu").await;
    assert!(
        page.contains("Ping Started From Cmd"),
        "old logs' alerts count by detection time"
    );
    // All time: the histogram spans the matching events and says how many there are; a
    // sidebar value can be excluded.
    client
        .goto(&format!(
            "{}/ui/events?q=host.name%3ADESKTOP-2KGM189&range=all",
            server.url
        ))
        .await
        .unwrap();
    let page = wait_text(client, "all of the host's events", "events in range").await;
    let before = page.split(" events in range").next().unwrap_or_default();
    let count: u64 = before
        .rsplit(|c: char| !c.is_ascii_digit() && c != ',' && c != '\u{a0}')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(0);
    assert!(
        count >= 358,
        "every event of sysmon.evtx is in range: {count}"
    );
    screenshot(client, shots, "22-events-all-time").await;
    click(client, "section.field a.exclude").await;
    wait_text(client, "an excluded value", "NOT").await;
    let url = client.current_url().await.unwrap().to_string();
    assert!(
        url.contains("NOT"),
        "the exclude link adds a NOT term: {url}"
    );
}
