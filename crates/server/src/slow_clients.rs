//! Protection against clients that hold connections open: a cap on connections (in all and
//! per IP address) and a deadline for request bodies (`limits.body_timeout` plus
//! `limits.body_min_rate`). Header timeouts are hyper's (`limits.header_timeout`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::config::Limits;

/// Open connections, in all and per address.
#[derive(Debug)]
pub struct ConnectionLimiter {
    total: Arc<Semaphore>,
    per_address: Mutex<HashMap<IpAddr, usize>>,
    max_per_address: usize,
}

/// A connection's place under the caps; released when dropped.
#[derive(Debug)]
pub struct ConnectionSlot {
    limiter: Arc<ConnectionLimiter>,
    address: IpAddr,
    _total: OwnedSemaphorePermit,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `limits.max_connections` are open.
    Total,
    /// `limits.max_connections_per_address` are open from this address.
    PerAddress,
}

impl ConnectionLimiter {
    pub fn new(limits: &Limits) -> Arc<ConnectionLimiter> {
        Arc::new(ConnectionLimiter {
            total: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            per_address: Mutex::new(HashMap::new()),
            max_per_address: limits.max_connections_per_address.max(1),
        })
    }

    /// A slot for a new connection from `address`, or why not.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<ConnectionSlot, Refused> {
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refused::Total)?;
        let mut open = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(address).or_insert(0);
        if *count >= self.max_per_address {
            return Err(Refused::PerAddress);
        }
        *count += 1;
        Ok(ConnectionSlot {
            limiter: self.clone(),
            address,
            _total: total,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self
            .limiter
            .per_address
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

/// How long a body may take: `grace`, plus one second per `min_rate` bytes received.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline {
    pub grace: Duration,
    pub min_rate: u64,
}

impl BodyDeadline {
    pub fn from_limits(limits: &Limits) -> BodyDeadline {
        BodyDeadline {
            grace: limits.body_timeout,
            min_rate: limits.body_min_rate.max(1),
        }
    }

    fn deadline(&self, start: Instant, received: u64) -> Instant {
        let earned = Duration::from_secs_f64(received as f64 / self.min_rate as f64);
        start + self.grace + earned.min(Duration::from_secs(365 * 24 * 3600))
    }
}

/// The body was not sent in time.
#[derive(Debug, thiserror::Error)]
#[error(
    "the request body arrived too slowly: {received} bytes in {elapsed:?} (limits.body_timeout = {grace:?}, then limits.body_min_rate = {min_rate} bytes/s)"
)]
pub struct BodyTooSlow {
    received: u64,
    elapsed: Duration,
    grace: Duration,
    min_rate: u64,
}

/// A request body that fails with [`BodyTooSlow`] when it does not arrive in time.
pub struct DeadlineBody<B> {
    inner: B,
    limit: BodyDeadline,
    start: Instant,
    received: u64,
    timer: Pin<Box<Sleep>>,
    expired: bool,
}

impl<B> DeadlineBody<B> {
    pub fn new(inner: B, limit: BodyDeadline) -> DeadlineBody<B> {
        let start = Instant::now();
        DeadlineBody {
            inner,
            limit,
            start,
            received: 0,
            timer: Box::pin(tokio::time::sleep_until(limit.deadline(start, 0))),
            expired: false,
        }
    }
}

impl<B> HttpBody for DeadlineBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    let deadline = this.limit.deadline(this.start, this.received);
                    this.timer.as_mut().reset(deadline);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.expired = true;
                    Poll::Ready(Some(Err(Box::new(BodyTooSlow {
                        received: this.received,
                        elapsed: this.start.elapsed(),
                        grace: this.limit.grace,
                        min_rate: this.limit.min_rate,
                    }))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.expired || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_address: usize) -> Limits {
        let mut limits = crate::config::Config::defaults().limits;
        limits.max_connections = total;
        limits.max_connections_per_address = per_address;
        limits
    }

    #[test]
    fn caps_connections_in_all_and_per_address() {
        let limiter = ConnectionLimiter::new(&limits(3, 2));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = limiter.admit(a).unwrap();
        let _a2 = limiter.admit(a).unwrap();
        assert_eq!(limiter.admit(a).unwrap_err(), Refused::PerAddress);
        let _b1 = limiter.admit(b).unwrap();
        assert_eq!(limiter.admit(b).unwrap_err(), Refused::Total);
        drop(a1);
        assert!(limiter.admit(a).is_ok());
    }

    #[test]
    fn deadline_grows_with_the_bytes_received() {
        let limit = BodyDeadline {
            grace: Duration::from_secs(10),
            min_rate: 1000,
        };
        let start = Instant::now();
        assert_eq!(limit.deadline(start, 0), start + Duration::from_secs(10));
        assert_eq!(limit.deadline(start, 5000), start + Duration::from_secs(15));
    }
}
