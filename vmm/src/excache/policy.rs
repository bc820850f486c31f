//! Which cached page to evict: FIFO, or LRU over the accesses a VMM can
//! see. Hits never reach the VMM, so it sees a page used only when it
//! misses and when it is first written after a read miss (a write-protect
//! fault). LRU moves a page to the back of the queue on both; FIFO only
//! on the miss. The hit-ratio sampler (`sample.rs`) takes a few pages
//! away each period, and a sampled page that is touched counts as used
//! too.

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

    /// A page drawn uniformly from the queue with the random number `r`,
    /// or None (then draw again): stamps are dense enough between the
    /// oldest and the next that a draw in that range mostly finds a page,
    /// and every page is found with the same chance.
    pub fn pick(&self, r: u64) -> Option<K> {
        let (&first, _) = self.queue.first_key_value()?;
        let span = self.next - first;
        self.queue.get(&(first + r % span)).copied()
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
    fn picks_are_uniform_over_the_pages_queued() {
        let mut o = Order::new(Policy::Lru);
        (0..100).for_each(|f| o.insert(f));
        // Holes: every other page touched (moved to the back) or gone.
        (0..50).for_each(|f| o.touch(f * 2));
        (0..20).for_each(|f| o.remove(f * 2 + 1));
        let mut seen = [0u32; 100];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut found = 0;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if let Some(k) = o.pick(x) {
                seen[k] += 1;
                found += 1;
            }
        }
        let live: Vec<u32> = (0..100)
            .filter(|f| !(f % 2 == 1 && *f < 40))
            .map(|f| seen[f])
            .collect();
        assert_eq!(live.len(), 80);
        assert!(live.iter().all(|&n| n > 0));
        let mean = found as f64 / 80.0;
        assert!(
            live.iter().all(|&n| (n as f64 - mean).abs() < mean * 0.1),
            "{live:?}"
        );
        assert!((1..40).step_by(2).all(|f| seen[f] == 0), "gone pages");
        assert_eq!(Order::<u32>::new(Policy::Fifo).pick(5), None);
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
