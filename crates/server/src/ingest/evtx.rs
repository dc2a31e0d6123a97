//! `POST /api/v1/ingest/evtx`: an EVTX file or Windows event XML, decoded by `dozor_decode`,
//! converted to normalized events ([`crate::winlog`]) and queued like any batch.
//!
//! The body is spooled (decompressed) to a temporary file in `<data_dir>/tmp`, never held in
//! memory, and decoded on a blocking thread (at most [`crate::state::EVTX_DECODERS`] at once).
//! Events go to the sink in batches of `limits.max_batch_events`; if the queue fills up
//! midway the answer is 503 and the file can simply be sent again: event ids are derived from
//! computer, channel and record id, so what was queued already comes back as duplicates.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use dozor_decode::{DecodeError, InputFormat, ReadOptions};

use super::{IngestReport, Prepared, body, now_text, submit};
use crate::problem::Problem;
use crate::state::AppState;
use crate::winlog;

/// The declared format: `None` to sniff (EVTX signature, or `<` for XML).
fn declared_format(headers: &HeaderMap) -> Result<Option<InputFormat>, Problem> {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match essence.as_str() {
        "" | "application/octet-stream" | "application/x-evtx" | "application/vnd.ms-evtx" => {
            Ok(None)
        }
        "application/xml" | "text/xml" => Ok(Some(InputFormat::Xml)),
        other => Err(Problem::unsupported_media_type(format!(
            "Content-Type {other:?} is not accepted here; send an EVTX file (application/octet-stream) or Windows event XML (application/xml)"
        ))
        .with("supported_types", ["application/octet-stream", "application/xml"])),
    }
}

/// A decode error without the temporary file's path.
fn describe(e: &DecodeError) -> String {
    match e {
        DecodeError::Record { at, message } => format!("{}: {message}", at.location),
        DecodeError::Unreadable { message, .. } => message.clone(),
        DecodeError::Io { source, .. } => format!("read error: {source}"),
    }
}

pub(crate) async fn ingest_evtx(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    client_certificates: &[rustls_pki_types::CertificateDer<'static>],
    mut body: Body,
) -> Result<IngestReport, Problem> {
    let sender = super::authorize(state, headers, client_certificates, &mut body).await?;
    let declared = declared_format(headers)?;
    let encoding = body::content_encoding(headers)?;

    let limit = state.limits.max_evtx_bytes;
    // Room on disk for the spooled upload, until the request ends.
    let _room = match state
        .evtx_scratch
        .reserve(crate::disk_quota::upload_size(headers, limit))
    {
        Ok(room) => room,
        Err(problem) => {
            body::linger(&mut body).await;
            return Err(problem);
        }
    };
    let tmp_dir = state.tmp_dir.clone();
    let spool = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&tmp_dir)?;
        let tmp = tempfile::Builder::new()
            .prefix("upload-")
            .suffix(".spool")
            .tempfile_in(&tmp_dir)?;
        let file = tmp.reopen()?;
        Ok::<_, std::io::Error>((tmp, file))
    })
    .await
    .map_err(|e| Problem::internal(format!("spool task failed: {e}")))?;
    let (tmp, file) = spool.map_err(|e| {
        tracing::error!("cannot create an upload spool file: {e}");
        Problem::internal("cannot create an upload spool file")
    })?;
    body::receive(body, headers, encoding, limit, file)
        .await
        .map_err(|e| e.into_problem("limits.max_evtx_bytes"))?;

    let permit = state
        .evtx_permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| Problem::internal("the server is shutting down"))?;
    let received_at = chrono::Utc::now();
    let validator = state.validator.clone();
    let max_batch = state.limits.max_batch_events;
    let task_sender = sender.clone();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Prepared, Problem>>(1);
    let task = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let path = tmp.path().to_owned();
        let format = match declared {
            Some(format) => format,
            None => match dozor_decode::detect_format(&path) {
                Ok(format) => format,
                Err(e) => {
                    let _ = tx.blocking_send(Err(Problem::bad_request(
                        "unreadable-upload",
                        describe(&e),
                    )));
                    return;
                }
            },
        };
        if format == InputFormat::Json {
            let _ = tx.blocking_send(Err(Problem::unsupported_media_type(
                "the body is JSON: send normalized events to /api/v1/ingest",
            )));
            return;
        }
        let options = ReadOptions {
            format,
            ..ReadOptions::default()
        };
        let events = match dozor_decode::read_path(&path, &options) {
            Ok(events) => events,
            Err(e) => {
                let _ = tx.blocking_send(Err(Problem::bad_request(
                    "unreadable-upload",
                    format!("the upload can't be decoded: {}", describe(&e)),
                )));
                return;
            }
        };
        let now = now_text(received_at);
        let mut chunk = Prepared::default();
        for (index, item) in events.enumerate() {
            match item {
                Ok(flat) => match winlog::to_event(&flat) {
                    Ok(value) => chunk.push(index, value, &task_sender, &validator, &now),
                    Err(message) => chunk.push_unreadable(index, message),
                },
                Err(e) => chunk.push_unreadable(index, describe(&e)),
            }
            if chunk.events.len() >= max_batch
                && tx.blocking_send(Ok(std::mem::take(&mut chunk))).is_err()
            {
                return; // the request ended (queue full or client gone)
            }
        }
        let _ = tx.blocking_send(Ok(chunk));
        drop(tmp);
    });

    let mut report = IngestReport::default();
    while let Some(message) = rx.recv().await {
        let chunk = message?;
        report.received += chunk.received;
        report.duplicates += chunk.duplicates_in_batch;
        report.add_rejections(chunk.rejected_events, chunk.rejected);
        submit(state, &sender, received_at, chunk.events, &mut report).await?;
    }
    task.await
        .map_err(|e| Problem::internal(format!("decode task failed: {e}")))?;
    Ok(report)
}
