//! A bounded, sharded per-IP cache.
//!
//! Each shard keeps two generations of entries: lookups hit the "hot" map, a hit in the "cold"
//! map moves the entry back to "hot", and when "hot" is full it becomes "cold" and the old
//! "cold" is dropped. This approximates LRU (entries used at least once per generation stay)
//! with O(1) work and no per-entry bookkeeping. The total number of entries never exceeds the
//! configured size (rounded up to a multiple of twice the shard count).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

const SHARDS: usize = 16;

struct Shard<V> {
    hot: HashMap<IpAddr, Arc<V>>,
    cold: HashMap<IpAddr, Arc<V>>,
}

pub(crate) struct IpCache<V> {
    shards: Vec<Mutex<Shard<V>>>,
    /// Entries per generation per shard; 0 disables the cache.
    generation_capacity: usize,
    /// Hashes for the maps.
    hasher: RandomState,
    /// Picks the shard: seeded apart from `hasher` (with the same seed, every key of a shard
    /// would share the low hash bits the maps index by), and randomly, so that chosen addresses
    /// cannot pile into one shard.
    shard_hasher: RandomState,
}

impl<V> IpCache<V> {
    /// A cache of at most about `capacity` entries; 0 disables it.
    pub(crate) fn new(capacity: usize) -> Self {
        let generation_capacity = capacity.div_ceil(2 * SHARDS);
        let hasher = RandomState::new();
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    hot: HashMap::with_hasher(hasher.clone()),
                    cold: HashMap::with_hasher(hasher.clone()),
                })
            })
            .collect();
        IpCache {
            shards,
            generation_capacity,
            hasher,
            shard_hasher: RandomState::new(),
        }
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.generation_capacity > 0
    }

    fn shard(&self, ip: &IpAddr) -> MutexGuard<'_, Shard<V>> {
        let index = (self.shard_hasher.hash_one(ip) as usize) % SHARDS;
        // A panic while holding the lock cannot leave the maps inconsistent: use them anyway.
        self.shards[index]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn get(&self, ip: &IpAddr) -> Option<Arc<V>> {
        if !self.is_enabled() {
            return None;
        }
        let mut shard = self.shard(ip);
        if let Some(v) = shard.hot.get(ip) {
            return Some(Arc::clone(v));
        }
        let v = shard.cold.remove(ip)?;
        self.insert_hot(&mut shard, *ip, Arc::clone(&v));
        Some(v)
    }

    pub(crate) fn insert(&self, ip: IpAddr, value: Arc<V>) {
        if !self.is_enabled() {
            return;
        }
        let mut shard = self.shard(&ip);
        self.insert_hot(&mut shard, ip, value);
    }

    fn insert_hot(&self, shard: &mut Shard<V>, ip: IpAddr, value: Arc<V>) {
        if shard.hot.len() >= self.generation_capacity && !shard.hot.contains_key(&ip) {
            let hot = std::mem::replace(
                &mut shard.hot,
                HashMap::with_capacity_and_hasher(self.generation_capacity, self.hasher.clone()),
            );
            shard.cold = hot;
        }
        shard.hot.insert(ip, value);
    }

    /// Number of cached entries (both generations).
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                s.hot.len() + s.cold.len()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(i: u32) -> IpAddr {
        IpAddr::V4(i.into())
    }

    #[test]
    fn disabled_cache_stores_nothing() {
        let c = IpCache::<u32>::new(0);
        c.insert(ip(1), Arc::new(1));
        assert!(c.get(&ip(1)).is_none());
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn bounded_and_keeps_recently_used() {
        let c = IpCache::<u32>::new(1000);
        for i in 0..100_000 {
            c.insert(ip(i), Arc::new(i));
            // Keep touching one entry: it must survive.
            assert_eq!(
                c.get(&ip(7)).as_deref(),
                if i >= 7 { Some(&7) } else { None }
            );
        }
        assert!(c.len() <= 1024, "{}", c.len());
        assert!(c.len() >= 400, "{}", c.len());
        assert_eq!(c.get(&ip(99_999)).as_deref(), Some(&99_999));
        assert!(c.get(&ip(10)).is_none());
    }
}
