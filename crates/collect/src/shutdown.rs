//! A cheap, clonable stop signal shared by the collector threads.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A stop signal: [`Shutdown::trigger`] once, every clone sees it.
///
/// Collector threads sleep in [`Shutdown::wait_timeout`] between polls, so a trigger wakes them
/// at once instead of after their poll interval.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    inner: Arc<(Mutex<bool>, Condvar)>,
}

impl Shutdown {
    /// A new, untriggered signal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every holder of a clone to stop. Idempotent.
    pub fn trigger(&self) {
        let (lock, cvar) = &*self.inner;
        let mut triggered = lock.lock().unwrap_or_else(PoisonError::into_inner);
        *triggered = true;
        cvar.notify_all();
    }

    /// Whether [`Shutdown::trigger`] was called.
    pub fn is_triggered(&self) -> bool {
        *self.inner.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps up to `timeout`; returns `true` as soon as the signal is (or already was)
    /// triggered, `false` when the time ran out.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let (lock, cvar) = &*self.inner;
        let deadline = Instant::now() + timeout;
        let mut triggered = lock.lock().unwrap_or_else(PoisonError::into_inner);
        while !*triggered {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            triggered = cvar
                .wait_timeout(triggered, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_wakes_waiters() {
        let s = Shutdown::new();
        assert!(!s.is_triggered());
        assert!(!s.wait_timeout(Duration::from_millis(10)));
        let c = s.clone();
        let t = std::thread::spawn(move || c.wait_timeout(Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(20));
        s.trigger();
        assert!(t.join().unwrap_or(false));
        assert!(s.is_triggered());
        assert!(s.wait_timeout(Duration::from_secs(30)));
    }
}
