//! Which ExCache frame to evict: FIFO, or LRU approximated with the only
//! access signal a VMM gets for free. Hits never exit, so the VMM cannot
//! see reads of a cached page; KVM's dirty log tells which pages were
//! written since the last look. LRU is therefore "second chance on
//! writes": the oldest frame is evicted unless it was written since it was
//! last considered, in which case it goes to the back of the queue.

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

    /// The frame to evict. `written(frame)` asks whether it was written
    /// since it was last asked (LRU only; each frame is asked at most once
    /// per call, so this ends).
    pub fn victim(&mut self, mut written: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.policy == Policy::Lru {
            for _ in 0..self.queue.len() {
                let f = self.queue.pop_front()?;
                if !written(f) {
                    return Some(f);
                }
                self.queue.push_back(f);
            }
        }
        self.queue.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_evicts_the_oldest_whatever_was_written() {
        let mut o = Order::new(Policy::Fifo);
        (0..4).for_each(|f| o.insert(f));
        assert_eq!(o.victim(|_| true), Some(0));
        assert_eq!(o.victim(|_| false), Some(1));
        assert_eq!(o.len(), 2);
    }

    #[test]
    fn lru_gives_written_frames_a_second_chance() {
        let mut o = Order::new(Policy::Lru);
        (0..4).for_each(|f| o.insert(f));
        // 0 and 1 were written: 2 goes, and 0, 1 move behind 3.
        let mut seen = Vec::new();
        let v = o.victim(|f| {
            seen.push(f);
            f < 2
        });
        assert_eq!((v, seen), (Some(2), vec![0, 1, 2]));
        assert_eq!(o.victim(|_| false), Some(3));
        // Everything written: it still evicts (the oldest after a full turn).
        assert_eq!(o.victim(|_| true), Some(0));
        assert_eq!(o.victim(|_| true), Some(1));
        assert_eq!(o.victim(|_| true), None);
    }
}
