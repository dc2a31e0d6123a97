//! `dozor intel …` (issue 14): a running server's threat intelligence — its sources and their
//! syncs, indicators (search, add by hand), documents imported whole, and exports (a STIX 2.1
//! bundle, or a MISP feed directory of Dozor's own indicators and sightings).

use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use dozor_model::{IntelImportReport, IntelSourceList, IntelSyncStatus, IocPage, IocView};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use super::{
    Cell, Client, EXIT_CODES, Format, MAX_ANSWER, MAX_PROBLEM, Remote, clean, emit, emit_json,
    key_values, problem_message, read, segment, table, time_ms,
};

/// The largest document the server imports (`POST /api/v1/intel/import`).
const MAX_IMPORT_BYTES: u64 = 64 << 20;
/// Files at least this large get a progress bar (when stderr is a terminal).
const PROGRESS_FROM_BYTES: u64 = 1 << 20;

const SYNC_EXIT_CODES: &str = "Exit codes: 0 = synced (`ok`, or `partial`: some objects \
skipped, listed); 1 = the sync failed (the report says why); 2 = error: the server refused the \
request (no such source, syncing already), could not be reached, or bad arguments.";

#[derive(Subcommand)]
pub enum IntelCmd {
    /// List the intelligence sources: kind, enabled, schedule and the last sync's time,
    /// outcome, counts and error.
    #[command(after_help = EXIT_CODES)]
    Sources {
        #[command(flatten)]
        remote: Remote,
    },
    /// Sync a source now and print its report when it is done (analyst or admin; audited).
    #[command(after_help = SYNC_EXIT_CODES)]
    Sync {
        /// The source's name (as `dozor intel sources` lists it).
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Import a file of indicators (analyst or admin; audited): a MISP event or restSearch
    /// answer, a STIX bundle, a CSV list (the value in the first column) or freetext.
    ///
    /// The indicators are stored like a sync's (warninglists, merged with other sources',
    /// retro-hunt); what can't be imported is listed with the reason and the rest is stored.
    #[command(after_help = EXIT_CODES)]
    Import(ImportArgs),
    /// Search the stored indicators (newest id last; `--limit` per page).
    #[command(after_help = EXIT_CODES)]
    Search(SearchArgs),
    /// Add an indicator by hand (source `manual`; analyst or admin; audited).
    #[command(after_help = EXIT_CODES)]
    Add(AddArgs),
    /// Export indicators: a STIX 2.1 bundle (file or stdout), or the MISP feed of Dozor's own
    /// indicators and sightings as a directory (manifest.json, <uuid>.json, hashes.csv) that
    /// a MISP reads as a local feed.
    #[command(after_help = EXIT_CODES)]
    Export(ExportArgs),
}

/// How to reach the server, for the commands whose `--format` is a document format.
#[derive(Args, Clone, Debug)]
pub struct Connection {
    /// Server URL [default: https://127.0.0.1:8443, or `server` in ~/.config/dozor/cli.toml].
    #[arg(long, env = "DOZOR_SERVER", value_name = "URL")]
    server: Option<String>,
    /// API token (`dzt_…`).
    #[arg(
        long,
        env = "DOZOR_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// PEM file of the CA to trust (pinned) for an https server.
    #[arg(long, env = "DOZOR_CA", value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Do not verify the server's certificate (a warning is printed; prefer --ca).
    #[arg(long)]
    insecure: bool,
}

impl Connection {
    pub(super) fn remote(&self, format: Format) -> Remote {
        Remote {
            server: self.server.clone(),
            token: self.token.clone(),
            ca: self.ca.clone(),
            insecure: self.insecure,
            format,
        }
    }
}

/// The document formats of `import`.
#[derive(Copy, Clone, PartialEq, Eq, ValueEnum, Debug)]
pub enum DocFormat {
    /// Told from the content.
    Auto,
    Misp,
    Stix,
    Csv,
    Freetext,
}

#[derive(Args)]
pub struct ImportArgs {
    /// The file (at most 64 MiB).
    file: PathBuf,
    /// Store the indicators under this source name [default: import].
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
    /// The file's format.
    #[arg(long, value_enum, default_value = "auto")]
    format: DocFormat,
    /// Print the server's report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Args)]
pub struct SearchArgs {
    /// The value contains this (case-insensitive). Empty: every indicator.
    #[arg(value_name = "Q")]
    query: Option<String>,
    /// Only this kind (ip, cidr, domain, hostname, url, md5, sha1, sha256, sha512, imphash,
    /// filename, email, registry_key, user_agent, ja3).
    #[arg(long, value_name = "K")]
    kind: Option<String>,
    /// Only given by this source.
    #[arg(long, value_name = "S")]
    source: Option<String>,
    /// Only carrying this tag.
    #[arg(long, value_name = "T")]
    tag: Option<String>,
    /// Only active ones (enabled, not expired).
    #[arg(long)]
    active: bool,
    /// Indicators per page, 1-10000 [default: 100].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    limit: Option<u32>,
    /// Start at this `next_cursor` of an earlier page.
    #[arg(long)]
    cursor: Option<String>,
    /// The API's JSON (the same as --format json).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Args)]
pub struct AddArgs {
    /// ip, cidr, domain, hostname, url, md5, sha1, sha256, sha512, imphash, filename, email,
    /// registry_key, user_agent, ja3.
    kind: String,
    /// The value (normalized by the server).
    value: String,
    /// Not matched after this: a span in days (`30d`, `2w`) or a time (RFC 3339, rounded up to
    /// whole days from now) [default: never].
    #[arg(long, value_name = "30d|RFC3339")]
    expires: Option<String>,
    /// 0-100.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=100))]
    confidence: Option<u8>,
    /// A tag (a TLP, a campaign); repeatable.
    #[arg(long = "tag", value_name = "T")]
    tags: Vec<String>,
    /// Why it was added (kept with the manual source).
    #[arg(long, value_name = "C")]
    comment: Option<String>,
    /// Match and enrich, but raise no alert (MISP's `to_ids` off).
    #[arg(long)]
    no_alert: bool,
    #[command(flatten)]
    remote: Remote,
}

/// What `export` writes.
#[derive(Copy, Clone, PartialEq, Eq, ValueEnum, Debug)]
pub enum ExportFormat {
    /// A STIX 2.1 bundle of the chosen indicators.
    Stix,
    /// A MISP feed directory of Dozor's own indicators (manual and matched) and sightings.
    MispFeed,
}

#[derive(Args)]
pub struct ExportArgs {
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// stix: the file [default: stdout]; misp-feed: the directory (created) [default:
    /// dozor-misp-feed].
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// stix: only this kind.
    #[arg(long, value_name = "K")]
    kind: Option<String>,
    /// stix: only given by this source.
    #[arg(long, value_name = "S")]
    source: Option<String>,
    /// stix: only carrying this tag.
    #[arg(long, value_name = "T")]
    tag: Option<String>,
    /// stix: only active ones (enabled, not expired).
    #[arg(long)]
    active: bool,
    #[command(flatten)]
    connection: Connection,
}

pub fn intel(cmd: IntelCmd) -> Result<u8> {
    match cmd {
        IntelCmd::Sources { remote } => sources(&remote),
        IntelCmd::Sync { name, remote } => sync(&name, &remote),
        IntelCmd::Import(args) => import(args),
        IntelCmd::Search(args) => search(args),
        IntelCmd::Add(args) => add(args),
        IntelCmd::Export(args) => export(args),
    }
}

// ---------------------------------------------------------------- sources, sync

/// `every 1h`, `every 90s`, `manual`.
fn schedule(interval_secs: u64) -> String {
    match interval_secs {
        0 => "manual".to_owned(),
        s if s % 86_400 == 0 => format!("every {}d", s / 86_400),
        s if s % 3600 == 0 => format!("every {}h", s / 3600),
        s if s % 60 == 0 => format!("every {}m", s / 60),
        s => format!("every {s}s"),
    }
}

fn sources(remote: &Remote) -> Result<u8> {
    let client = Client::connect(remote, false)?;
    let answer = client.get("/api/v1/intel/sources", &[])?;
    if client.format == Format::Json {
        emit_json(&answer)?;
        return Ok(0);
    }
    let list: IntelSourceList = read(&answer, "a list of intelligence sources")?;
    if list.sources.is_empty() {
        eprintln!(
            "no intelligence sources (an admin adds one with PUT /api/v1/intel/sources/NAME)"
        );
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = list
        .sources
        .iter()
        .map(|s| {
            let last = s.last_sync.as_ref();
            let count =
                |f: fn(&IntelSyncStatus) -> u64| last.map_or("-".to_owned(), |l| f(l).to_string());
            vec![
                s.name.cell(),
                s.spec
                    .get("kind")
                    .and_then(Value::as_str)
                    .map_or_else(|| "-".to_owned(), clean),
                if s.enabled { "yes" } else { "no" }.to_owned(),
                schedule(s.interval_secs),
                time_ms(last.map(|l| l.finished_at)),
                last.map_or_else(|| "never".to_owned(), |l| l.status.cell()),
                count(|l| l.added),
                count(|l| l.updated),
                count(|l| l.skipped),
                last.and_then(|l| l.error.clone()).cell(),
            ]
        })
        .collect();
    emit(&table(
        &[
            "NAME",
            "KIND",
            "ENABLED",
            "SCHEDULE",
            "LAST SYNC",
            "STATUS",
            "ADDED",
            "UPDATED",
            "SKIPPED",
            "ERROR",
        ],
        &rows,
    ))?;
    Ok(0)
}

/// A sync's or an import's counts and what it skipped, as `key value` lines.
fn report(head: &[(&str, String)], s: &IntelSyncStatus) -> String {
    let mut pairs: Vec<(&str, String)> = head.to_vec();
    pairs.extend([
        ("status", s.status.cell()),
        ("added", s.added.to_string()),
        ("updated", s.updated.to_string()),
        ("unchanged", s.unchanged.to_string()),
        ("expired", s.expired.to_string()),
        ("skipped", s.skipped.to_string()),
        ("ignored (not indicators)", s.ignored.to_string()),
        ("warninglisted", s.warninglisted.to_string()),
        ("retro-hunt matches", s.retro_matches.to_string()),
        (
            "took",
            format!("{} ms", s.finished_at.saturating_sub(s.started_at)),
        ),
    ]);
    if let Some(e) = &s.error {
        pairs.push(("error", clean(e)));
    }
    let mut out = key_values(&pairs);
    if !s.ignored_reasons.is_empty() {
        out.push_str("\nignored (reason: count):\n");
        for (reason, n) in &s.ignored_reasons {
            out.push_str(&format!("  {}: {n}\n", clean(reason)));
        }
    }
    if !s.skipped_examples.is_empty() {
        out.push_str("\nskipped (object: reason):\n");
        for e in &s.skipped_examples {
            out.push_str(&format!("  {}\n", clean(e)));
        }
        let more = s.skipped.saturating_sub(s.skipped_examples.len() as u64);
        if more > 0 {
            out.push_str(&format!("  … and {more} more\n"));
        }
    }
    out
}

fn sync(name: &str, remote: &Remote) -> Result<u8> {
    let client = Client::connect(remote, false)?;
    eprintln!("syncing {} …", clean(name));
    let answer = client.post(
        &format!("/api/v1/intel/sources/{}/sync", segment(name)),
        &json!({}),
    )?;
    let status: IntelSyncStatus = read(&answer, "a sync report")?;
    match client.format {
        Format::Json => emit_json(&answer)?,
        Format::Table => emit(&report(&[("source", clean(name))], &status))?,
    }
    Ok(if status.status == "failed" { 1 } else { 0 })
}

// ---------------------------------------------------------------- import

/// Sends a file as the request's body, with a progress bar when it is large and stderr is a
/// terminal (the bar says when the upload is done and the server is at work).
pub(super) fn send_file(
    request: ureq::RequestBuilder<ureq::typestate::WithBody>,
    file: File,
    size: u64,
) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
    if size < PROGRESS_FROM_BYTES || !std::io::stderr().is_terminal() {
        return request.send(file);
    }
    let bar = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {bytes}/{total_bytes} ({eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let body = Uploading {
        inner: bar.wrap_read(file),
        bar: bar.clone(),
        done: false,
    };
    let sent = request.send(ureq::SendBody::from_owned_reader(body));
    bar.finish_and_clear();
    sent
}

/// A reader that tells its progress bar when the upload is read out (the server then parses).
struct Uploading<R> {
    inner: R,
    bar: ProgressBar,
    done: bool,
}

impl<R: Read> Read for Uploading<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && !self.done {
            self.done = true;
            self.bar.set_message("sent; the server is importing");
        }
        Ok(n)
    }
}

fn import(args: ImportArgs) -> Result<u8> {
    let format = if args.json {
        Format::Json
    } else {
        Format::Table
    };
    let client = Client::connect(&args.connection.remote(format), false)?;
    let path = &args.file;
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if size > MAX_IMPORT_BYTES {
        bail!(
            "{} has {size} bytes; the server imports at most {MAX_IMPORT_BYTES} (64 MiB): split it",
            path.display()
        );
    }
    let mut request = client
        .agent
        .post(client.url("/api/v1/intel/import"))
        .header("Authorization", format!("Bearer {}", client.token))
        .header("Accept", "application/json")
        .content_type("application/octet-stream");
    if let Some(source) = &args.source {
        request = request.query("source", source);
    }
    let doc_format = args
        .format
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_else(|| "auto".into());
    request = request.query("format", &doc_format);
    let response = send_file(request, file, size).map_err(|e| client.transport_error(e))?;
    let answer = client.answer(response)?;
    if args.json {
        emit_json(&answer)?;
        return Ok(0);
    }
    let r: IntelImportReport = read(&answer, "an import report")?;
    emit(&report(
        &[
            ("file", clean(&path.display().to_string())),
            ("source", r.source.cell()),
            ("format", r.format.cell()),
            ("bytes", r.bytes.to_string()),
        ],
        &r.result,
    ))?;
    Ok(0)
}

// ---------------------------------------------------------------- search, add

fn iocs_table(iocs: &[IocView]) -> String {
    let rows: Vec<Vec<String>> = iocs
        .iter()
        .map(|v| {
            let i = &v.ioc;
            let sources: Vec<String> = i.sources.iter().map(|s| s.name.clone()).collect();
            vec![
                i.id.cell(),
                i.kind.cell(),
                super::truncate(i.value.cell(), 80),
                sources.cell(),
                super::truncate(i.tags.cell(), 40),
                i.confidence.map_or("-".to_owned(), |c| c.to_string()),
                format!("{:.1}", v.decay_score),
                if v.active { "yes" } else { "no" }.to_owned(),
                if i.to_ids { "yes" } else { "no" }.to_owned(),
                time_ms(i.expires),
                i.sightings.to_string(),
                i.warninglists.cell(),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "KIND",
            "VALUE",
            "SOURCES",
            "TAGS",
            "CONF",
            "SCORE",
            "ACTIVE",
            "ALERT",
            "EXPIRES",
            "SIGHTINGS",
            "WARNINGLISTS",
        ],
        &rows,
    )
}

fn search(mut args: SearchArgs) -> Result<u8> {
    if args.json {
        args.remote.format = Format::Json;
    }
    let client = Client::connect(&args.remote, false)?;
    let mut query: Vec<(&str, String)> = Vec::new();
    for (key, value) in [
        ("q", args.query),
        ("kind", args.kind),
        ("source", args.source),
        ("tag", args.tag),
        ("cursor", args.cursor),
    ] {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            query.push((key, v));
        }
    }
    if args.active {
        query.push(("active", "true".into()));
    }
    query.push(("limit", args.limit.unwrap_or(100).to_string()));
    let page = client.get("/api/v1/intel/iocs", &query)?;
    match client.format {
        Format::Json => emit_json(&page)?,
        Format::Table => {
            let page: IocPage = read(&page, "a page of indicators")?;
            if page.iocs.is_empty() {
                eprintln!("no indicators match");
            } else {
                emit(&iocs_table(&page.iocs))?;
            }
            if let Some(cursor) = &page.next_cursor {
                eprintln!(
                    "{} indicators shown; there are more: --cursor {cursor} shows the next page",
                    page.iocs.len()
                );
            }
        }
    }
    Ok(0)
}

/// `--expires`: `30d`, `2w` or an RFC 3339 time (rounded up to whole days from `now_ms`).
fn expires_in_days(text: &str, now_ms: i64) -> Result<u32> {
    let text = text.trim();
    let span = |digits: &str, per: u64| -> Option<u32> {
        let n: u64 = digits.parse().ok()?;
        u32::try_from(n.checked_mul(per)?).ok()
    };
    let days = if let Some(d) = text.strip_suffix('d') {
        span(d, 1)
    } else if let Some(w) = text.strip_suffix('w') {
        span(w, 7)
    } else if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        let ms = t.timestamp_millis() - now_ms;
        if ms <= 0 {
            bail!("--expires {text}: that time has passed");
        }
        u32::try_from((ms + 86_399_999) / 86_400_000).ok()
    } else {
        None
    };
    match days {
        Some(0) => bail!("--expires {text}: at least one day"),
        Some(d) if d <= 36_500 => Ok(d),
        Some(_) => bail!("--expires {text}: at most 36500 days"),
        None => Err(anyhow!(
            "--expires {text:?}: a span in days or weeks (30d, 2w) or an RFC 3339 time"
        )),
    }
}

fn add(args: AddArgs) -> Result<u8> {
    let client = Client::connect(&args.remote, false)?;
    let now = chrono::Utc::now().timestamp_millis();
    let days = args
        .expires
        .as_deref()
        .map(|e| expires_in_days(e, now))
        .transpose()?;
    let body = json!({
        "kind": args.kind,
        "value": args.value,
        "tags": args.tags,
        "confidence": args.confidence,
        "to_ids": !args.no_alert,
        "expires_in_days": days,
        "comment": args.comment,
    });
    let answer = client.post("/api/v1/intel/iocs", &body)?;
    match client.format {
        Format::Json => emit_json(&answer)?,
        Format::Table => {
            let v: IocView = read(&answer, "an indicator")?;
            emit(&iocs_table(std::slice::from_ref(&v)))?;
        }
    }
    Ok(0)
}

// ---------------------------------------------------------------- export

/// A GET whose answer is kept as bytes (a bundle, a feed file), with its headers; a refusal
/// is the problem's message.
pub(super) fn fetch(
    client: &Client,
    path: &str,
    query: &[(&str, String)],
    accept: &str,
) -> Result<(ureq::http::HeaderMap, Vec<u8>)> {
    let mut response = client.get_response(path, query, accept)?;
    let status = response.status();
    if !status.is_success() {
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_PROBLEM)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(|e| client.transport_error(e))?;
        bail!(problem_message(
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            &text
        ));
    }
    let headers = response.headers().clone();
    let bytes = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_vec()
        .map_err(|e| client.transport_error(e))?;
    Ok((headers, bytes))
}

/// Writes `bytes` next to `path` and renames it there (a reader never sees half a file).
pub(super) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

fn export(args: ExportArgs) -> Result<u8> {
    let client = Client::connect(&args.connection.remote(Format::Table), false)?;
    match args.format {
        ExportFormat::Stix => {
            let mut query: Vec<(&str, String)> = Vec::new();
            for (key, value) in [
                ("kind", args.kind),
                ("source", args.source),
                ("tag", args.tag),
            ] {
                if let Some(v) = value.filter(|v| !v.is_empty()) {
                    query.push((key, v));
                }
            }
            if args.active {
                query.push(("active", "true".into()));
            }
            let (headers, bytes) = fetch(
                &client,
                "/api/v1/intel/export/stix",
                &query,
                "application/stix+json, application/json",
            )?;
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned()
            };
            match &args.out {
                Some(path) => {
                    write_file(path, &bytes)?;
                    eprintln!(
                        "wrote {} indicators to {}",
                        header("x-dozor-exported"),
                        path.display()
                    );
                }
                None => {
                    let mut text = String::from_utf8_lossy(&bytes).into_owned();
                    text.push('\n');
                    emit(&text)?;
                }
            }
            let skipped = header("x-dozor-skipped");
            if !skipped.is_empty() && skipped != "0" {
                eprintln!(
                    "{skipped} indicators left out (STIX has no pattern for their kind): {}",
                    clean(&header("x-dozor-skipped-examples"))
                );
            }
            if header("x-dozor-truncated") == "true" {
                eprintln!(
                    "warning: more indicators match than one export holds (100,000): narrow it \
                     with --kind, --source, --tag or --active"
                );
            }
        }
        ExportFormat::MispFeed => {
            let dir = args.out.unwrap_or_else(|| PathBuf::from("dozor-misp-feed"));
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let base = "/api/v1/intel/export/misp-feed";
            let (_, manifest) = fetch(
                &client,
                &format!("{base}/manifest.json"),
                &[],
                "application/json",
            )?;
            let doc: Value = serde_json::from_slice(&manifest)
                .context("the server's manifest.json is not JSON")?;
            let uuids: Vec<String> = doc
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            let mut attributes = 0usize;
            for uuid in &uuids {
                if uuid.is_empty() || !uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                    bail!(
                        "the server's manifest lists {:?}, which is no event uuid",
                        clean(uuid)
                    );
                }
                let file = format!("{uuid}.json");
                let (_, event) =
                    fetch(&client, &format!("{base}/{file}"), &[], "application/json")?;
                attributes += serde_json::from_slice::<Value>(&event)
                    .ok()
                    .and_then(|e| {
                        e.pointer("/Event/Attribute")
                            .and_then(Value::as_array)
                            .map(Vec::len)
                    })
                    .unwrap_or(0);
                write_file(&dir.join(&file), &event)?;
            }
            let (_, hashes) = fetch(&client, &format!("{base}/hashes.csv"), &[], "text/csv")?;
            write_file(&dir.join("hashes.csv"), &hashes)?;
            // The manifest last: a reader that sees it finds the events it lists.
            write_file(&dir.join("manifest.json"), &manifest)?;
            eprintln!(
                "wrote a MISP feed to {}: manifest.json, {} event(s) with {attributes} \
                 attribute(s), hashes.csv",
                dir.display(),
                uuids.len()
            );
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_spans() {
        let now = 1_800_000_000_000;
        assert_eq!(expires_in_days("30d", now).unwrap(), 30);
        assert_eq!(expires_in_days("2w", now).unwrap(), 14);
        let in_36h = chrono::DateTime::from_timestamp_millis(now + 36 * 3_600_000)
            .unwrap()
            .to_rfc3339();
        assert_eq!(expires_in_days(&in_36h, now).unwrap(), 2);
        for bad in ["0d", "soon", "-3d", "99999999999d", "2001-01-01T00:00:00Z"] {
            assert!(expires_in_days(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn schedules() {
        assert_eq!(schedule(0), "manual");
        assert_eq!(schedule(3600), "every 1h");
        assert_eq!(schedule(90), "every 90s");
        assert_eq!(schedule(172_800), "every 2d");
    }
}
