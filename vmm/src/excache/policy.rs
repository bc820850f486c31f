//! Which cached page to evict: FIFO, or LRU over the accesses a VMM can
//! see. Hits never reach the VMM, so it sees a page used only when it
//! misses and when it is first written after a read miss (a write-protect
//! fault). LRU moves a page to the back of the queue on both; FIFO only
//! on the miss. Seeing every access would mean taking pages away to
//! sample them, a fault per sample.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Policy {
    Fifo,
    Lru,
}

/// The queue of cached pages, least recently installed (or used) first.
/// Each page has a stamp; touching gives it a new one, so both insert and
/// touch are O(log n) even for caches of millions of pages.
pub struct Order<K> {
    policy: Policy,
    stamps: HashMap<K, u64>,
    queue: BTreeMap<u64, K>,
    next: u64,
}

impl<K: Copy + Eq + Hash> Order<K> {
    pub fn new(policy: Policy) -> Order<K> {
        Order {
            policy,
            stamps: HashMap::new(),
            queue: BTreeMap::new(),
            next: 0,
        }
    }

    pub fn insert(&mut self, key: K) {
        self.remove(key);
        self.stamps.insert(key, self.next);
        self.queue.insert(self.next, key);
        self.next += 1;
    }

    pub fn remove(&mut self, key: K) {
        if let Some(s) = self.stamps.remove(&key) {
            self.queue.remove(&s);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.stamps.len()
    }

    /// The page to evict (the front of the queue), taken out of the queue;
    /// `skip` passes over pages that cannot go now.
    pub fn victim(&mut self, mut skip: impl FnMut(K) -> bool) -> Option<K> {
        let key = self.queue.values().copied().find(|&k| !skip(k))?;
        self.remove(key);
        Some(key)
    }

    /// The page was used (first written): LRU moves it to the back.
    pub fn touch(&mut self, key: K) {
        if self.policy == Policy::Lru && self.stamps.contains_key(&key) {
            self.insert(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_evicts_the_oldest_whatever_was_used() {
        let mut o = Order::new(Policy::Fifo);
        (0..4).for_each(|f| o.insert(f));
        o.touch(0);
        assert_eq!(o.victim(|_| false), Some(0));
        assert_eq!(o.victim(|_| false), Some(1));
        assert_eq!(o.len(), 2);
    }

    #[test]
    fn lru_evicts_the_least_recently_used() {
        let mut o = Order::new(Policy::Lru);
        (0..4).for_each(|f| o.insert(f));
        o.touch(0);
        o.touch(2);
        assert_eq!(o.victim(|_| false), Some(1));
        assert_eq!(o.victim(|_| false), Some(3));
        assert_eq!(o.victim(|_| false), Some(0));
        o.remove(2);
        assert_eq!(o.victim(|_| false), None);
    }

    #[test]
    fn pages_that_cannot_go_are_passed_over() {
        let mut o = Order::new(Policy::Fifo);
        (0..3).for_each(|f| o.insert(f));
        assert_eq!(o.victim(|k| k == 0), Some(1));
        assert_eq!(o.victim(|_| false), Some(0));
        o.remove(2);
        assert_eq!(o.len(), 0);
    }
}
