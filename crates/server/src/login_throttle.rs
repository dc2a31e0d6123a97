//! Failed sign-ins per user name and per address, in memory: after [`FREE_FAILURES`]
//! failures the next attempt must wait 30 s, doubling up to 15 min.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins allowed before throttling starts.
pub const FREE_FAILURES: u32 = 5;
const FIRST_LOCK: Duration = Duration::from_secs(30);
const LONGEST_LOCK: Duration = Duration::from_secs(15 * 60);
/// Failures from one address before that address is throttled (many users, one attacker).
const FREE_FAILURES_PER_ADDRESS: u32 = 20;

#[derive(Debug, Default, Clone, Copy)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
}

/// Failed logins per user name and per address, in memory.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    entries: Mutex<HashMap<String, Failures>>,
}

fn lock_for(count: u32, free: u32) -> Option<Duration> {
    (count >= free).then(|| {
        let doublings = (count - free).min(10);
        (FIRST_LOCK * 2u32.pow(doublings)).min(LONGEST_LOCK)
    })
}

impl LoginThrottle {
    /// How long until `user` from `address` may try again (`None`: now).
    pub fn wait(&self, user: &str, address: &str) -> Option<Duration> {
        let now = Instant::now();
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        [format!("user:{user}"), format!("addr:{address}")]
            .iter()
            .filter_map(|k| entries.get(k)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max()
    }

    pub fn failed(&self, user: &str, address: &str) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() > 100_000 {
            entries.retain(|_, f| f.locked_until.is_some_and(|u| u > now));
        }
        for (key, free) in [
            (format!("user:{user}"), FREE_FAILURES),
            (format!("addr:{address}"), FREE_FAILURES_PER_ADDRESS),
        ] {
            let f = entries.entry(key).or_default();
            f.count += 1;
            f.locked_until = lock_for(f.count, free).map(|d| now + d);
        }
    }

    pub fn succeeded(&self, user: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&format!("user:{user}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_locks_after_free_failures_and_doubles() {
        let t = LoginThrottle::default();
        for _ in 0..FREE_FAILURES - 1 {
            t.failed("ann", "10.0.0.1");
            assert!(t.wait("ann", "10.0.0.1").is_none());
        }
        t.failed("ann", "10.0.0.1");
        let first = t.wait("ann", "10.0.0.1").unwrap();
        assert!(first <= FIRST_LOCK && first > FIRST_LOCK - Duration::from_secs(2));
        t.failed("ann", "10.0.0.1");
        assert!(t.wait("ann", "10.0.0.1").unwrap() > FIRST_LOCK);
        // another user from another address is not affected; success clears the user
        assert!(t.wait("bob", "10.0.0.2").is_none());
        t.succeeded("ann");
        assert!(t.wait("ann", "10.0.0.9").is_none());
        assert_eq!(lock_for(100, 5), Some(LONGEST_LOCK));
    }
}
