//! A map that holds at most a fixed number of entries and evicts the least recently used one to
//! make room: the per-container caches keyed by a destination id a caller chooses (settings,
//! webhook token re-reads) stay bounded however many ids arrive (docs/contracts.md §4).
//!
//! Eviction scans for the oldest entry, O(n), and only happens when a new key arrives at a full
//! map; n is a configured bound (`SETTINGS_CACHE_SIZE`, 1000 by default), so a scan costs
//! microseconds, and a new key already costs a Secrets Manager call.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

/// A map of at most `capacity` entries, least recently used evicted first.
#[derive(Debug)]
pub struct LruMap<K, V> {
    entries: HashMap<K, (V, u64)>,
    /// Bumped at every use; an entry's stamp is the tick of its last use.
    tick: u64,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> LruMap<K, V> {
    /// A map of at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        LruMap {
            entries: HashMap::new(),
            tick: 0,
            capacity: capacity.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// The value of `key`, marked as just used.
    pub fn get<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let tick = self.next_tick();
        self.entries.get_mut(key).map(|(value, used)| {
            *used = tick;
            value
        })
    }

    /// The value of `key`, inserted with `make` when absent (evicting the least recently used
    /// entry when the map is full); marked as just used.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let tick = self.next_tick();
        if !self.entries.contains_key(&key) {
            self.make_room();
        }
        let (value, used) = self.entries.entry(key).or_insert_with(|| (make(), tick));
        *used = tick;
        value
    }

    /// Sets `key` to `value`, marked as just used; evicts when a new key finds the map full.
    pub fn insert(&mut self, key: K, value: V) {
        let tick = self.next_tick();
        if !self.entries.contains_key(&key) {
            self.make_room();
        }
        self.entries.insert(key, (value, tick));
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.remove(key).map(|(value, _)| value)
    }

    /// Evicts least recently used entries until one more fits.
    fn make_room(&mut self) {
        while self.entries.len() >= self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(key, _)| key.clone());
            match oldest {
                Some(key) => {
                    self.entries.remove(&key);
                }
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_entry_is_evicted_when_a_new_key_arrives_at_a_full_map() {
        let mut m = LruMap::new(2);
        m.insert("a", 1);
        m.insert("b", 2);
        assert_eq!(m.get("a").copied(), Some(1)); // "b" is now the oldest
        m.insert("c", 3);
        assert_eq!(m.len(), 2);
        assert!(m.get("b").is_none());
        assert_eq!(m.get("a").copied(), Some(1));
        assert_eq!(m.get("c").copied(), Some(3));
        // Replacing an existing key evicts nothing.
        m.insert("c", 4);
        assert_eq!(m.len(), 2);
        assert_eq!(m.get("a").copied(), Some(1));
    }

    #[test]
    fn get_or_insert_with_makes_a_value_only_for_a_new_key_and_stays_bounded() {
        let mut m = LruMap::new(3);
        let mut made = 0;
        for key in ["a", "b", "a", "c", "d", "e", "a"] {
            m.get_or_insert_with(key, || {
                made += 1;
                made
            });
            assert!(m.len() <= 3);
        }
        // d evicts b (a was used after it), e evicts a, the last a evicts c.
        assert_eq!(m.len(), 3);
        assert!(m.get("b").is_none() && m.get("c").is_none());
        assert!(m.get("d").is_some() && m.get("e").is_some());
        assert_eq!(made, 6, "a was evicted by e and made again");
        assert_eq!(m.remove("a"), Some(6));
        assert_eq!(m.capacity(), 3);
        assert_eq!(LruMap::<u8, u8>::new(0).capacity(), 1);
    }
}
