//! `dozor searches …` and `dozor events export` (issue 16): saved event searches — list, save,
//! re-run, delete — and the streamed CSV / NDJSON export of a search.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use dozor_model::{SavedSearch, SavedSearchParams};
use serde_json::json;

use super::{
    Cell, Client, EXIT_CODES, Format, Remote, SearchArgs, emit, emit_json, read, table, time_ms,
    truncate,
};

#[derive(Subcommand)]
pub enum SearchesCmd {
    /// List the saved searches you can see (yours and the shared ones).
    #[command(after_help = EXIT_CODES)]
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Save a search under a name (analyst or admin; audited).
    #[command(after_help = EXIT_CODES)]
    Save(SaveArgs),
    /// Re-run a saved search (by id or name): its query, time range and agent.
    #[command(after_help = EXIT_CODES)]
    Run {
        /// The search's id or name.
        search: String,
        /// Events per page, 1-1000 [default: 100].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: Option<u32>,
        /// Every matching event (all pages).
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Delete a saved search (its owner or an admin; audited).
    #[command(after_help = EXIT_CODES)]
    Delete {
        /// The search's id or name.
        search: String,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Args)]
pub struct SaveArgs {
    /// Its name (unique among your searches).
    name: String,
    /// The query (words are joined with spaces).
    #[arg(value_name = "QUERY")]
    query: Vec<String>,
    /// Time range: 15m, 1h, 24h, 7d, 30d or all [default: 24h]; custom with --from/--to.
    #[arg(long, value_name = "R", conflicts_with_all = ["from", "to"])]
    range: Option<String>,
    /// Start (RFC 3339, ms, now-2h …); makes the range custom.
    #[arg(long, value_name = "T")]
    from: Option<String>,
    /// End; makes the range custom.
    #[arg(long, value_name = "T")]
    to: Option<String>,
    /// Only events of this agent.
    #[arg(long, value_name = "A")]
    agent: Option<String>,
    /// Extra columns for the events page (comma-separated event fields).
    #[arg(long, value_name = "F,F", value_delimiter = ',')]
    columns: Vec<String>,
    /// Visible to every operator.
    #[arg(long)]
    shared: bool,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Args)]
pub struct ExportArgs {
    /// The query (words are joined with spaces). Empty: every event.
    #[arg(value_name = "QUERY")]
    query: Vec<String>,
    /// Events at or after this time: RFC 3339, milliseconds, `now-7d` [default: all].
    #[arg(long, value_name = "T")]
    from: Option<String>,
    /// Events before this time.
    #[arg(long, value_name = "T")]
    to: Option<String>,
    /// Only events of this agent.
    #[arg(long, value_name = "A")]
    agent: Option<String>,
    /// NDJSON (one stored event per line) instead of CSV.
    #[arg(long)]
    ndjson: bool,
    /// CSV columns besides time, id and agent (comma-separated event fields) [default: ten
    /// common ones].
    #[arg(long, value_name = "F,F", value_delimiter = ',')]
    columns: Vec<String>,
    /// At most this many rows, 1-1,000,000 [default: 100,000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    limit: Option<u32>,
    /// Write here [default: stdout].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    remote: Remote,
}

pub fn searches(cmd: SearchesCmd) -> Result<u8> {
    match cmd {
        SearchesCmd::List { remote } => {
            let client = Client::connect(&remote, false)?;
            let answer = client.get("/api/v1/saved-searches", &[])?;
            if client.format == Format::Json {
                emit_json(&answer)?;
                return Ok(0);
            }
            let list: Vec<SavedSearch> = read(&answer, "saved searches")?;
            if list.is_empty() {
                eprintln!("no saved searches");
                return Ok(0);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|s| {
                    vec![
                        s.id.to_string(),
                        truncate(s.name.cell(), 40),
                        s.owner.cell(),
                        if s.shared { "yes" } else { "no" }.to_owned(),
                        range_text(&s.params),
                        time_ms(s.last_run_at),
                        truncate(s.query.cell(), 60),
                    ]
                })
                .collect();
            emit(&table(
                &[
                    "ID", "NAME", "OWNER", "SHARED", "RANGE", "LAST RUN", "QUERY",
                ],
                &rows,
            ))?;
            Ok(0)
        }
        SearchesCmd::Save(a) => {
            let custom = a.from.is_some() || a.to.is_some();
            let params = SavedSearchParams {
                range: if custom {
                    Some("custom".into())
                } else {
                    a.range
                },
                from: a.from,
                to: a.to,
                agent: a.agent,
                columns: a.columns,
            };
            let body = json!({
                "name": a.name,
                "query": a.query.join(" "),
                "params": params,
                "shared": a.shared,
            });
            let client = Client::connect(&a.remote, false)?;
            let answer = client.post("/api/v1/saved-searches", &body)?;
            if client.format == Format::Json {
                emit_json(&answer)?;
            } else {
                let s: SavedSearch = read(&answer, "a saved search")?;
                eprintln!("saved as {} ({:?})", s.id, s.name);
            }
            Ok(0)
        }
        SearchesCmd::Run {
            search,
            limit,
            all,
            remote,
        } => {
            let client = Client::connect(&remote, false)?;
            let s = find(&client, &search)?;
            let (from, to) = bounds(&s.params);
            eprintln!(
                "{}: {}",
                s.name,
                if s.query.is_empty() {
                    "every event"
                } else {
                    &s.query
                }
            );
            super::search(SearchArgs {
                query: vec![s.query],
                from,
                to,
                agent: s.params.agent,
                limit: limit.or(all.then_some(1000)),
                all,
                cursor: None,
                remote,
            })
        }
        SearchesCmd::Delete { search, remote } => {
            let client = Client::connect(&remote, false)?;
            let s = find(&client, &search)?;
            client.delete(&format!("/api/v1/saved-searches/{}", s.id))?;
            eprintln!("deleted {} ({:?})", s.id, s.name);
            Ok(0)
        }
    }
}

/// A saved search by id, else by name (yours first, then a shared one).
fn find(client: &Client, search: &str) -> Result<SavedSearch> {
    let list: Vec<SavedSearch> = read(
        &client.get("/api/v1/saved-searches", &[])?,
        "saved searches",
    )?;
    if let Ok(id) = search.parse::<i64>()
        && let Some(s) = list.iter().find(|s| s.id == id)
    {
        return Ok(s.clone());
    }
    let named: Vec<&SavedSearch> = list.iter().filter(|s| s.name == search).collect();
    match named.as_slice() {
        [] => bail!("no saved search {search:?} (dozor searches list shows them)"),
        [one] => Ok((*one).clone()),
        several => bail!(
            "{} saved searches are named {search:?} (ids {}); give the id",
            several.len(),
            several
                .iter()
                .map(|s| s.id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `from` / `to` of a saved time range (the events page's default: the last 24 h).
fn bounds(p: &SavedSearchParams) -> (Option<String>, Option<String>) {
    match p.range.as_deref() {
        Some("all") => (None, None),
        Some("custom") => (p.from.clone(), p.to.clone()),
        Some(r @ ("15m" | "1h" | "7d" | "30d")) => (Some(format!("now-{r}")), None),
        _ => (Some("now-24h".into()), None),
    }
}

fn range_text(p: &SavedSearchParams) -> String {
    match (p.range.as_deref(), &p.from, &p.to) {
        (Some("custom"), from, to) => format!(
            "{} .. {}",
            from.as_deref().unwrap_or("-"),
            to.as_deref().unwrap_or("now")
        ),
        (Some(r), _, _) => r.to_owned(),
        (None, _, _) => "24h".to_owned(),
    }
}

/// Keeps the last bytes written, to see whether the export ended with its truncation line.
struct Tail<W> {
    inner: W,
    tail: Vec<u8>,
    written: u64,
}

impl<W: Write> Write for Tail<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        self.tail.extend_from_slice(&buf[..n]);
        if self.tail.len() > 512 {
            self.tail.drain(..self.tail.len() - 512);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

pub fn export(a: ExportArgs) -> Result<u8> {
    let client = Client::connect(&a.remote, true)?;
    let mut query: Vec<(&str, String)> =
        vec![("format", if a.ndjson { "ndjson" } else { "csv" }.to_owned())];
    let q = a.query.join(" ");
    if !q.trim().is_empty() {
        query.push(("q", q));
    }
    for (key, value) in [("from", a.from), ("to", a.to), ("agent", a.agent)] {
        if let Some(v) = value {
            query.push((key, v));
        }
    }
    if !a.columns.is_empty() {
        query.push(("columns", a.columns.join(",")));
    }
    if let Some(l) = a.limit {
        query.push(("limit", l.to_string()));
    }
    let response = client.get_response("/api/v1/events/export", &query, "*/*")?;
    if !response.status().is_success() {
        client.answer(response)?;
        bail!("the export was refused");
    }
    let mut body = response.into_body().into_reader();
    let (written, tail) = match &a.out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut w = Tail {
                inner: std::io::BufWriter::new(file),
                tail: Vec::new(),
                written: 0,
            };
            std::io::copy(&mut body, &mut w)
                .with_context(|| format!("writing {}", path.display()))?;
            w.flush()?;
            (w.written, w.tail)
        }
        None => {
            let mut w = Tail {
                inner: std::io::stdout().lock(),
                tail: Vec::new(),
                written: 0,
            };
            std::io::copy(&mut body, &mut w).context("writing the export")?;
            w.flush()?;
            (w.written, w.tail)
        }
    };
    let tail = String::from_utf8_lossy(&tail);
    let last = tail.trim_end().rsplit('\n').next().unwrap_or_default();
    if last.starts_with("# truncated") || last.contains("\"truncated\":true") {
        eprintln!("warning: more events matched than --limit allows; the last line says so");
    }
    if let Some(path) = &a.out {
        eprintln!("{written} bytes written to {}", path.display());
    }
    Ok(0)
}
