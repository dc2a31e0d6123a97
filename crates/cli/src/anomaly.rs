//! `dozor anomaly …` (issue 17): the anomaly models on their own, without the rest of Dozor —
//! train them from normalized events (`dozor convert` output, the ingest NDJSON), score
//! events with them, or serve them over a small REST API on 127.0.0.1.

use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::{Args, Subcommand};
use dozor_anomaly::{Activity, Detector, Finding, ModelFile};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Subcommand)]
pub enum AnomalyCmd {
    /// Train the per-entity models (rare process, rare parent→child, rare logon source, new
    /// destination, new listening port, unusual logon hour, failed-logon burst, volume spike)
    /// from normalized events and write a model file.
    ///
    /// Exit codes: 0 = written; 2 = error (no usable event, unreadable input, bad arguments).
    Train(TrainArgs),
    /// Score normalized events with a model file: findings as JSON lines on stdout, a summary
    /// on stderr. The models learn from what they score, as they do in a running service.
    ///
    /// Exit codes: 0 = nothing unusual; 1 = findings; 2 = error.
    Score(ScoreArgs),
    /// Serve a model file over HTTP on 127.0.0.1: `POST /api/v1/anomaly/score` ({"events":
    /// [...]} → findings with explanations) and `GET /api/v1/anomaly/models`; every request
    /// needs the bearer token (`DOZOR_ANOMALY_TOKEN`, or one made and printed at start).
    Serve(ServeArgs),
}

#[derive(Args)]
pub struct TrainArgs {
    /// NDJSON files of normalized events (one JSON object per line, with `@timestamp` and
    /// `host.name`); `-` reads standard input.
    #[arg(long = "events", required = true, value_name = "FILE")]
    events: Vec<PathBuf>,
    /// The model file to write.
    #[arg(long, value_name = "MODEL")]
    out: PathBuf,
}

#[derive(Args)]
pub struct ScoreArgs {
    /// The model file.
    #[arg(long, value_name = "MODEL")]
    model: PathBuf,
    /// NDJSON files of normalized events; `-` reads standard input.
    #[arg(long = "events", required = true, value_name = "FILE")]
    events: Vec<PathBuf>,
    /// Write the models, with what they learned from these events, here.
    #[arg(long, value_name = "MODEL")]
    save: Option<PathBuf>,
}

#[derive(Args)]
pub struct ServeArgs {
    /// The model file.
    #[arg(long, value_name = "MODEL")]
    model: PathBuf,
    /// Address to listen on (loopback only: the service speaks plain HTTP).
    #[arg(long, default_value = "127.0.0.1:8790", value_name = "ADDR")]
    listen: SocketAddr,
}

/// Lines whose problem is printed; the rest are only counted.
const SHOWN_PROBLEMS: usize = 5;

/// Events read from NDJSON: each with its time, unusable lines counted and the first shown.
struct EventsRead {
    events: Vec<(i64, Activity)>,
    skipped: u64,
}

fn time_of(doc: &Value) -> Option<i64> {
    let t = doc.get("@timestamp")?.as_str()?;
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.timestamp())
}

fn read_events(paths: &[PathBuf]) -> Result<EventsRead> {
    let mut out = EventsRead {
        events: Vec::new(),
        skipped: 0,
    };
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {human_pos} events read ({per_sec})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Some(bar)
    } else {
        None
    };
    for path in paths {
        let (name, reader): (String, Box<dyn Read>) = if path == Path::new("-") {
            ("stdin".into(), Box::new(std::io::stdin()))
        } else {
            let file =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            (path.display().to_string(), Box::new(file))
        };
        for (index, line) in BufReader::new(reader).lines().enumerate() {
            let line = line.with_context(|| format!("reading {name}"))?;
            if line.trim().is_empty() {
                continue;
            }
            let problem = match serde_json::from_str::<Value>(&line) {
                Err(e) => Some(format!("not JSON ({e})")),
                Ok(doc) => match (time_of(&doc), Activity::of(&doc)) {
                    (None, _) => Some("no RFC 3339 `@timestamp`".to_owned()),
                    (_, None) => Some("no `host.name`".to_owned()),
                    (Some(t), Some(a)) => {
                        out.events.push((t, a));
                        None
                    }
                },
            };
            if let Some(problem) = problem {
                out.skipped += 1;
                if out.skipped as usize <= SHOWN_PROBLEMS {
                    eprintln!("{name}:{}: skipped: {problem}", index + 1);
                }
            }
            if let Some(bar) = &progress {
                bar.inc(1);
            }
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    if out.skipped as usize > SHOWN_PROBLEMS {
        eprintln!(
            "… {} lines skipped in all (the first {SHOWN_PROBLEMS} are shown)",
            out.skipped
        );
    }
    // Models learn in time order; a stable sort keeps the file order of equal times.
    out.events.sort_by_key(|(t, _)| *t);
    Ok(out)
}

fn load(path: &Path) -> Result<Detector> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let file = ModelFile::from_bytes(&bytes).with_context(|| format!("{}", path.display()))?;
    Detector::from_model_file(&file).with_context(|| format!("{}", path.display()))
}

fn save(detector: &Detector, path: &Path) -> Result<()> {
    let bytes = detector.to_model_file().to_bytes()?;
    // Written beside and renamed, so a crash never leaves half a model.
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn utc(t: Option<i64>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| "-".into())
}

pub fn run(cmd: AnomalyCmd) -> Result<u8> {
    match cmd {
        AnomalyCmd::Train(a) => {
            let started = std::time::Instant::now();
            let read = read_events(&a.events)?;
            if read.events.is_empty() {
                bail!(
                    "no usable event to train on ({} lines skipped)",
                    read.skipped
                );
            }
            let mut detector = Detector::new();
            for (t, activity) in &read.events {
                detector.event(activity, *t, false);
            }
            detector.flush(false);
            // The host-hour forest, once the file holds enough host-hours (256).
            if !detector.train_forest(17)? {
                eprintln!("too few host-hours for the isolation forest; per-entity models only");
            }
            save(&detector, &a.out)?;
            eprintln!(
                "trained on {} events from {} to {} in {:.1} s; wrote {}",
                detector.events,
                utc(detector.first_time),
                utc(detector.last_time),
                started.elapsed().as_secs_f64(),
                a.out.display()
            );
            for m in detector.summary() {
                eprintln!("  {:<20} {:>7} {}", m.name, m.entities, m.entity_field);
            }
            Ok(0)
        }
        AnomalyCmd::Score(a) => {
            let mut detector = load(&a.model)?;
            let read = read_events(&a.events)?;
            let mut findings: Vec<Finding> = Vec::new();
            for (t, activity) in &read.events {
                findings.extend(detector.event(activity, *t, true));
            }
            findings.extend(detector.flush(true));
            let mut out = std::io::stdout().lock();
            for f in &findings {
                use std::io::Write;
                writeln!(out, "{}", serde_json::to_string(f)?)?;
            }
            eprintln!(
                "{} events scored, {} findings",
                read.events.len(),
                findings.len()
            );
            if let Some(path) = &a.save {
                save(&detector, path)?;
            }
            Ok(u8::from(!findings.is_empty()))
        }
        AnomalyCmd::Serve(a) => serve(a),
    }
}

/// The service's state: the models (they learn from what they score) and the token.
struct Service {
    detector: Mutex<Detector>,
    token: String,
    model: PathBuf,
}

fn refuse(status: StatusCode, detail: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        json!({"status": status.as_u16(), "title": status.canonical_reason(), "detail": detail.into()})
            .to_string(),
    )
        .into_response()
}

fn authorized(service: &Service, headers: &HeaderMap) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Length first, then every byte: no early exit on the first difference.
    given.len() == service.token.len()
        && given
            .bytes()
            .zip(service.token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoreRequest {
    events: Vec<Value>,
}

/// Events one request may score.
const MAX_SCORE_EVENTS: usize = 10_000;

async fn score(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !authorized(&service, &headers) {
        return refuse(StatusCode::UNAUTHORIZED, "a bearer token is needed");
    }
    let request: ScoreRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("expected {{\"events\": [normalized events]}}: {e}"),
            );
        }
    };
    if request.events.len() > MAX_SCORE_EVENTS {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("at most {MAX_SCORE_EVENTS} events per request"),
        );
    }
    let mut parsed = Vec::with_capacity(request.events.len());
    let mut problems = Vec::new();
    for (index, doc) in request.events.iter().enumerate() {
        match (time_of(doc), Activity::of(doc)) {
            (Some(t), Some(a)) => parsed.push((index, t, a)),
            (None, _) => {
                problems.push(json!({"index": index, "problem": "no RFC 3339 `@timestamp`"}))
            }
            (_, None) => problems.push(json!({"index": index, "problem": "no `host.name`"})),
        }
    }
    parsed.sort_by_key(|(_, t, _)| *t);
    let mut results = Vec::new();
    {
        let mut detector = match service.detector.lock() {
            Ok(d) => d,
            Err(poisoned) => poisoned.into_inner(),
        };
        for (index, t, activity) in &parsed {
            for f in detector.event(activity, *t, true) {
                results.push(json!({"index": index, "finding": f}));
            }
        }
    }
    Json(json!({"scored": parsed.len(), "findings": results, "skipped": problems})).into_response()
}

async fn models(State(service): State<Arc<Service>>, headers: HeaderMap) -> Response {
    if !authorized(&service, &headers) {
        return refuse(StatusCode::UNAUTHORIZED, "a bearer token is needed");
    }
    let detector = match service.detector.lock() {
        Ok(d) => d,
        Err(poisoned) => poisoned.into_inner(),
    };
    Json(json!({
        "file": service.model.display().to_string(),
        "events": detector.events,
        "first_event": utc(detector.first_time),
        "last_event": utc(detector.last_time),
        "models": detector.summary(),
    }))
    .into_response()
}

fn serve(a: ServeArgs) -> Result<u8> {
    if !a.listen.ip().is_loopback() {
        bail!(
            "{} is not a loopback address: the stand-alone service speaks plain HTTP; listen on \
             127.0.0.1 and put a TLS proxy in front to reach it from elsewhere",
            a.listen
        );
    }
    let detector = load(&a.model)?;
    let token = match std::env::var("DOZOR_ANOMALY_TOKEN") {
        Ok(t) if t.len() >= 16 => t,
        Ok(_) => bail!("DOZOR_ANOMALY_TOKEN must be at least 16 characters"),
        Err(_) => {
            let t = format!(
                "dza_{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            );
            eprintln!("token (shown once; set DOZOR_ANOMALY_TOKEN to choose one): {t}");
            t
        }
    };
    let service = Arc::new(Service {
        detector: Mutex::new(detector),
        token,
        model: a.model.clone(),
    });
    let app = Router::new()
        .route("/api/v1/anomaly/score", post(score))
        .route("/api/v1/anomaly/models", get(models))
        .layer(axum::extract::DefaultBodyLimit::max(32 << 20))
        .with_state(service);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .with_context(|| format!("listening on {}", a.listen))?;
        eprintln!(
            "serving {} on http://{}",
            a.model.display(),
            listener.local_addr()?
        );
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(0)
}
