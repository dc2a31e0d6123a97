//! The boxed future the crate's object-safe traits return (sinks, verifiers, catalogs,
//! readiness checks). Depends on nothing.

use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future (what the object-safe traits of this crate return).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
