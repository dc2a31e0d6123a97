//! Answering a request before reading its body (401/403 from the credential check, 404, 405,
//! ...) without the client seeing a reset: over HTTP/2 an unread request body ends the stream
//! with RST_STREAM, and over HTTP/1 the connection is closed, and a client still sending often
//! reports that instead of the answer. After a 4xx the unread rest of the body is read and
//! dropped (at most [`crate::ingest::body::linger`]'s bytes and time), then the answer goes.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

/// A request body the middleware can still reach after the handler is done with it.
struct SharedBody(Arc<Mutex<Body>>);

impl HttpBody for SharedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let mut body = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Pin::new(&mut *body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).size_hint()
    }
}

/// The middleware: see the module documentation.
pub(crate) async fn drain_after_refusal(request: Request, next: Next) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let shared = Arc::new(Mutex::new(body));
    let request = Request::from_parts(parts, Body::new(SharedBody(shared.clone())));
    let response = next.run(request).await;
    if response.status().is_client_error() || response.status().is_server_error() {
        let mut body = std::mem::take(&mut *shared.lock().unwrap_or_else(|e| e.into_inner()));
        if !body.is_end_stream() {
            crate::ingest::body::linger(&mut body).await;
        }
    }
    response
}
