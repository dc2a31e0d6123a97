//! Sign-in throttling, in memory: how many password checks run at once, and failed sign-ins
//! per user name *and* address and per address.
//!
//! - Password checks (argon2id, 19 MiB each) run at most [`hashing_permits`] at a time; an
//!   attempt that finds them all busy is refused at once (429) instead of queueing, so a
//!   flood of sign-ins costs a bounded amount of memory and CPU.
//! - An attempt is counted as a failure *before* its password is checked (and forgiven when
//!   the password was right), so parallel attempts can't all slip past the count.
//! - After [`FREE_FAILURES`] failures of one user name from one address, that pair must wait
//!   30 s, doubling up to 15 min; after [`FREE_FAILURES_PER_ADDRESS`] failures from one
//!   address (any user names), the whole address must. Someone guessing from one address
//!   does not lock the real user out from another one. There is no cap per user name across
//!   addresses: it would let anyone lock out any account.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Failed logins of one user name from one address allowed before throttling starts.
pub const FREE_FAILURES: u32 = 5;
/// Failures from one address (many user names, one attacker) before that address is
/// throttled.
pub const FREE_FAILURES_PER_ADDRESS: u32 = 20;
const FIRST_LOCK: Duration = Duration::from_secs(30);
const LONGEST_LOCK: Duration = Duration::from_secs(15 * 60);
/// Most entries kept; past it, entries not locked now are forgotten.
const MAX_ENTRIES: usize = 100_000;

/// How many password checks may run at once: the CPUs, at least 2 and at most 4 (each holds
/// 19 MiB while it runs).
pub fn hashing_permits() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 4)
}

#[derive(Debug, Default, Clone, Copy)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
}

impl Failures {
    fn set(&mut self, count: u32, free: u32, now: Instant) {
        self.count = count;
        self.locked_until = lock_for(count, free).map(|d| now + d);
    }
}

/// Sign-in attempts in flight and failures, in memory.
#[derive(Debug)]
pub struct LoginThrottle {
    entries: Mutex<HashMap<String, Failures>>,
    hashing: Arc<Semaphore>,
}

impl Default for LoginThrottle {
    fn default() -> LoginThrottle {
        LoginThrottle::with_permits(hashing_permits())
    }
}

fn lock_for(count: u32, free: u32) -> Option<Duration> {
    (count >= free).then(|| {
        let doublings = (count - free).min(10);
        (FIRST_LOCK * 2u32.pow(doublings)).min(LONGEST_LOCK)
    })
}

fn pair_key(user: &str, address: &str) -> String {
    format!("pair:{address}\n{user}")
}

fn address_key(address: &str) -> String {
    format!("addr:{address}")
}

impl LoginThrottle {
    /// A throttle letting `permits` password checks run at once.
    pub fn with_permits(permits: usize) -> LoginThrottle {
        LoginThrottle {
            entries: Mutex::default(),
            hashing: Arc::new(Semaphore::new(permits.max(1))),
        }
    }

    /// A permit to check one password, `None` when all are taken (answer 429 at once).
    pub fn hashing_permit(&self) -> Option<OwnedSemaphorePermit> {
        self.hashing.clone().try_acquire_owned().ok()
    }

    /// Counts an attempt of `user` from `address` as a failure before its password is checked:
    /// `Err(wait)` when the pair or the address must wait (nothing counted then).
    pub fn attempt(&self, user: &str, address: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let keys = [
            (pair_key(user, address), FREE_FAILURES),
            (address_key(address), FREE_FAILURES_PER_ADDRESS),
        ];
        let wait = keys
            .iter()
            .filter_map(|(k, _)| entries.get(k)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, f| f.locked_until.is_some_and(|u| u > now));
        }
        for (key, free) in keys {
            let f = entries.entry(key).or_default();
            let count = f.count.saturating_add(1);
            f.set(count, free, now);
        }
        Ok(())
    }

    /// The password was right: the pair starts afresh and the address's count forgets this
    /// attempt.
    pub fn succeeded(&self, user: &str, address: &str) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(&pair_key(user, address));
        let key = address_key(address);
        if let Some(f) = entries.get_mut(&key) {
            let count = f.count.saturating_sub(1);
            if count == 0 {
                entries.remove(&key);
            } else {
                f.set(count, FREE_FAILURES_PER_ADDRESS, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_locked_after_free_failures_and_the_lock_doubles() {
        let t = LoginThrottle::default();
        for _ in 0..FREE_FAILURES {
            t.attempt("ann", "10.0.0.1").unwrap();
        }
        let first = t.attempt("ann", "10.0.0.1").unwrap_err();
        assert!(first <= FIRST_LOCK && first > FIRST_LOCK - Duration::from_secs(2));
        assert_eq!(
            lock_for(FREE_FAILURES + 1, FREE_FAILURES),
            Some(FIRST_LOCK * 2)
        );
        assert_eq!(lock_for(100, 5), Some(LONGEST_LOCK));
        // the same user from another address, and another user from the same one, go on
        t.attempt("ann", "10.0.0.2").unwrap();
        t.attempt("bob", "10.0.0.1").unwrap();
    }

    #[test]
    fn a_success_clears_the_pair_and_forgives_the_attempt() {
        let t = LoginThrottle::default();
        for _ in 0..FREE_FAILURES - 1 {
            t.attempt("ann", "10.0.0.1").unwrap();
        }
        // the right password on the last free attempt
        t.attempt("ann", "10.0.0.1").unwrap();
        t.succeeded("ann", "10.0.0.1");
        for _ in 0..FREE_FAILURES {
            t.attempt("ann", "10.0.0.1").unwrap();
        }
    }

    #[test]
    fn an_address_trying_many_names_is_locked_for_all_of_them() {
        let t = LoginThrottle::default();
        for i in 0..FREE_FAILURES_PER_ADDRESS {
            t.attempt(&format!("user{i}"), "10.0.0.66").unwrap();
        }
        assert!(t.attempt("admin", "10.0.0.66").is_err());
        // the real admin elsewhere is not affected
        t.attempt("admin", "10.0.0.7").unwrap();
    }

    #[test]
    fn hashing_permits_are_bounded() {
        let t = LoginThrottle::with_permits(2);
        let a = t.hashing_permit().unwrap();
        let _b = t.hashing_permit().unwrap();
        assert!(
            t.hashing_permit().is_none(),
            "a third check would exceed the bound"
        );
        drop(a);
        assert!(t.hashing_permit().is_some());
        assert!((2..=4).contains(&hashing_permits()));
    }
}
