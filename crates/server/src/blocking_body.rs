//! A request body read by blocking code as it arrives: a streaming parser on a blocking thread
//! reads the upload through [`std::io::Read`] while an async task forwards its frames. Nothing
//! holds the whole body — a 37 MB report costs a few chunks in flight, not 37 MB twice (axum's
//! `to_bytes` keeps the frames and then copies them into one buffer).

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use axum::body::Body;
use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use tokio::sync::mpsc;

/// Frames in flight between the forwarder and the reader: enough to keep both busy, few
/// enough that a slow parser pushes back on the client.
const FRAMES_IN_FLIGHT: usize = 8;

const READING: u8 = 0;
const TOO_LARGE: u8 = 1;
const UNREADABLE: u8 = 2;

/// How the forwarding ended when the reader saw an error: the body was larger than the
/// limit, or the client's stream failed. Read after the blocking side has finished.
#[derive(Clone)]
pub(crate) struct BodyOutcome(Arc<AtomicU8>);

impl BodyOutcome {
    fn new() -> Self {
        BodyOutcome(Arc::new(AtomicU8::new(READING)))
    }

    pub(crate) fn too_large(&self) -> bool {
        self.0.load(Ordering::Acquire) == TOO_LARGE
    }

    pub(crate) fn unreadable(&self) -> bool {
        self.0.load(Ordering::Acquire) == UNREADABLE
    }

    fn set(&self, state: u8) {
        self.0.store(state, Ordering::Release);
    }
}

/// The reading end, for a blocking thread (it blocks on the channel).
pub(crate) struct BlockingBody {
    frames: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl Read for BlockingBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.current.is_empty() {
                let n = buf.len().min(self.current.len());
                buf[..n].copy_from_slice(&self.current[..n]);
                self.current.advance(n);
                return Ok(n);
            }
            match self.frames.blocking_recv() {
                Some(Ok(data)) => self.current = data,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
    }
}

/// Splits `body` into a reader for a blocking thread and the future that feeds it; run the
/// future concurrently with the blocking work (`tokio::join!`). More than `limit` bytes end
/// the stream with an error and mark the outcome `too_large`; when the reader goes away
/// early (the parser refused the input) the rest of the body is not read. The future yields
/// the bytes it forwarded.
pub(crate) fn blocking_body(
    body: Body,
    limit: u64,
) -> (
    BlockingBody,
    impl std::future::Future<Output = u64> + Send,
    BodyOutcome,
) {
    let (tx, rx) = mpsc::channel(FRAMES_IN_FLIGHT);
    let outcome = BodyOutcome::new();
    let marker = outcome.clone();
    let forward = async move {
        let mut body = body;
        let mut seen: u64 = 0;
        while let Some(frame) = body.frame().await {
            let data = match frame {
                Ok(frame) => match frame.into_data() {
                    Ok(data) => data,
                    // Trailers carry no report bytes.
                    Err(_) => continue,
                },
                Err(e) => {
                    marker.set(UNREADABLE);
                    let _ = tx.send(Err(io::Error::other(e.to_string()))).await;
                    return seen;
                }
            };
            seen = seen.saturating_add(data.len() as u64);
            if seen > limit {
                marker.set(TOO_LARGE);
                let _ = tx
                    .send(Err(io::Error::other(format!(
                        "the body is larger than {limit} bytes"
                    ))))
                    .await;
                return seen;
            }
            if tx.send(Ok(data)).await.is_err() {
                return seen;
            }
        }
        seen
    };
    (
        BlockingBody {
            frames: rx,
            current: Bytes::new(),
        },
        forward,
        outcome,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(parts: &[&'static [u8]]) -> Body {
        let chunks: Vec<Result<Bytes, io::Error>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        Body::from_stream(futures_util::stream::iter(chunks))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_is_read_whole_across_frames() {
        let (mut reader, forward, outcome) = blocking_body(chunked(&[b"<a>", b"x", b"</a>"]), 100);
        let read = tokio::task::spawn_blocking(move || {
            let mut all = String::new();
            reader.read_to_string(&mut all).map(|_| all)
        });
        let (_, text) = tokio::join!(forward, read);
        assert_eq!(text.unwrap().unwrap(), "<a>x</a>");
        assert!(!outcome.too_large() && !outcome.unreadable());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn more_than_the_limit_is_an_error_marked_too_large() {
        let (mut reader, forward, outcome) = blocking_body(chunked(&[b"12345", b"678"]), 6);
        let read = tokio::task::spawn_blocking(move || {
            let mut all = Vec::new();
            reader.read_to_end(&mut all)
        });
        let (_, result) = tokio::join!(forward, read);
        assert!(result.unwrap().is_err());
        assert!(outcome.too_large());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_that_stops_early_stops_the_forwarding() {
        let parts: Vec<&'static [u8]> = vec![b"0123456789"; 100];
        let (mut reader, forward, _) = blocking_body(chunked(&parts), u64::MAX);
        let read = tokio::task::spawn_blocking(move || {
            let mut first = [0u8; 4];
            reader.read_exact(&mut first).map(|_| first)
            // the reader is dropped here
        });
        let (_, first) = tokio::join!(forward, read);
        assert_eq!(&first.unwrap().unwrap(), b"0123");
    }
}
