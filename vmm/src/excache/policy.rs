//! Which ExCache frame to evict: FIFO, or LRU over the accesses a VMM can
//! see. Hits never exit, so the VMM sees a page used only when it misses
//! and when it is first written after a read miss (its read-only mapping
//! is upgraded, one exit). LRU moves a page to the back of the queue on
//! both; FIFO only on the miss. Seeing every access would mean unmapping
//! pages to sample them, an exit per sample at about 50 us each here.

use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Policy {
    Fifo,
    Lru,
}

pub struct Order {
    policy: Policy,
    /// Frames in use, least recently installed (or used) first.
    queue: VecDeque<u32>,
}

impl Order {
    pub fn new(policy: Policy) -> Order {
        Order {
            policy,
            queue: VecDeque::new(),
        }
    }

    pub fn insert(&mut self, frame: u32) {
        self.queue.push_back(frame);
    }

    /// Keeps only the frames `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(u32) -> bool) {
        self.queue.retain(|&f| keep(f));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// The frame to evict: the front of the queue.
    pub fn victim(&mut self) -> Option<u32> {
        self.queue.pop_front()
    }

    /// The page in `frame` was used (first written): LRU moves it to the back.
    pub fn touch(&mut self, frame: u32) {
        if self.policy == Policy::Lru {
            if let Some(i) = self.queue.iter().position(|&f| f == frame) {
                self.queue.remove(i);
                self.queue.push_back(frame);
            }
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
        assert_eq!(o.victim(), Some(0));
        assert_eq!(o.victim(), Some(1));
        assert_eq!(o.len(), 2);
    }

    #[test]
    fn lru_evicts_the_least_recently_used() {
        let mut o = Order::new(Policy::Lru);
        (0..4).for_each(|f| o.insert(f));
        o.touch(0);
        o.touch(2);
        assert_eq!(o.victim(), Some(1));
        assert_eq!(o.victim(), Some(3));
        assert_eq!(o.victim(), Some(0));
        o.retain(|f| f != 2);
        assert_eq!(o.victim(), None);
    }
}
