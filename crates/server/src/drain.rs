//! Early answers to requests whose body was never read.
//!
//! A route that refuses a request before reading its body (401 without a credential, 403
//! for the wrong role, 415 for the wrong media type) used to drop the body: hyper then closed
//! the connection while the client was still sending, and the client saw a reset (HTTP/1.1)
//! or a stream error (HTTP/2) instead of the answer. Here the body is shared between the
//! handler and this layer; after the answer, what the handler left unread is read and
//! thrown away in the background — at most [`DRAIN_BYTES`] within [`DRAIN_TIME`], so a
//! refused client can't make the server read forever — while the answer goes out at once.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use hyper::body::{Frame, SizeHint};

/// Most bytes of a refused request's body read to let its answer through cleanly.
pub(crate) const DRAIN_BYTES: u64 = 1024 * 1024;
/// Longest time spent reading a refused request's body.
pub(crate) const DRAIN_TIME: Duration = Duration::from_secs(5);

type Slot = Arc<Mutex<Option<Body>>>;

/// The handler's view of the request body: reads from the shared slot.
struct SharedBody {
    slot: Slot,
    hint: SizeHint,
}

impl HttpBody for SharedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let mut slot = match self.slot.lock() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        match slot.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn size_hint(&self) -> SizeHint {
        self.hint.clone()
    }
}

/// The middleware: shares the body with the handler and drains what its answer left unread.
pub(crate) async fn drain_unread_body(request: Request, next: Next) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let hint = body.size_hint();
    let slot: Slot = Arc::new(Mutex::new(Some(body)));
    let shared = SharedBody {
        slot: slot.clone(),
        hint,
    };
    let response = next
        .run(Request::from_parts(parts, Body::new(shared)))
        .await;
    let left = match slot.lock() {
        Ok(mut slot) => slot.take(),
        Err(poisoned) => poisoned.into_inner().take(),
    };
    if let Some(body) = left.filter(|b| !b.is_end_stream()) {
        tokio::spawn(drain(body));
    }
    response
}

async fn drain(mut body: Body) {
    use http_body_util::BodyExt;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut read = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            read += frame.data_ref().map_or(0, |d| d.len() as u64);
            if read > DRAIN_BYTES {
                break;
            }
        }
    })
    .await;
}
