//! Futex wait queues: threads waiting on a word of their address space,
//! woken by FUTEX_WAKE and friends, as glibc's and musl's mutexes,
//! condition variables, thread joins (CLONE_CHILD_CLEARTID) and
//! `pthread_barrier`s use them.
//!
//! The value check of FUTEX_WAIT and the queueing happen under the
//! kernel's lock, as Linux does them under the hash-bucket lock, so a wake
//! between a waiter's check and its sleep cannot be lost. Waiters are
//! keyed by (address space, address): threads of one process share the
//! space; a forked child has its own even at the same addresses.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

pub const FUTEX_WAIT: u32 = 0;
pub const FUTEX_WAKE: u32 = 1;
pub const FUTEX_REQUEUE: u32 = 3;
pub const FUTEX_CMP_REQUEUE: u32 = 4;
pub const FUTEX_WAKE_OP: u32 = 5;
pub const FUTEX_WAIT_BITSET: u32 = 9;
pub const FUTEX_WAKE_BITSET: u32 = 10;
pub const FUTEX_PRIVATE_FLAG: u32 = 128;
pub const FUTEX_CLOCK_REALTIME: u32 = 256;
pub const FUTEX_CMD_MASK: u32 = !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
pub const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;

/// Which word: (address space id, user address).
pub type Key = (u32, u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Waiter {
    tid: u32,
    bitset: u32,
}

/// Every futex with waiters.
#[derive(Default)]
pub struct Futexes {
    queues: Vec<(Key, VecDeque<Waiter>)>,
}

impl Futexes {
    pub fn new() -> Futexes {
        Futexes::default()
    }

    fn queue(&mut self, key: Key) -> &mut VecDeque<Waiter> {
        if let Some(i) = self.queues.iter().position(|(k, _)| *k == key) {
            return &mut self.queues[i].1;
        }
        self.queues.push((key, VecDeque::new()));
        let last = self.queues.len() - 1;
        &mut self.queues[last].1
    }

    fn tidy(&mut self) {
        self.queues.retain(|(_, q)| !q.is_empty());
    }

    /// Thread `tid` sleeps on `key` (its value was checked by the caller).
    pub fn wait(&mut self, key: Key, tid: u32, bitset: u32) {
        self.queue(key).push_back(Waiter { tid, bitset });
    }

    /// Wakes up to `n` waiters on `key` whose bitset meets `bitset`,
    /// oldest first; the threads woken.
    pub fn wake(&mut self, key: Key, n: u32, bitset: u32) -> Vec<u32> {
        let mut woken = Vec::new();
        if let Some(i) = self.queues.iter().position(|(k, _)| *k == key) {
            let q = &mut self.queues[i].1;
            q.retain(|w| {
                if (woken.len() as u32) < n && w.bitset & bitset != 0 {
                    woken.push(w.tid);
                    false
                } else {
                    true
                }
            });
        }
        self.tidy();
        woken
    }

    /// Wakes up to `n` waiters on `from` and moves up to `m` of the rest
    /// to `to`; (woken, moved count).
    pub fn requeue(&mut self, from: Key, to: Key, n: u32, m: u32) -> (Vec<u32>, u32) {
        let woken = self.wake(from, n, FUTEX_BITSET_MATCH_ANY);
        let mut moved = Vec::new();
        if let Some(i) = self.queues.iter().position(|(k, _)| *k == from) {
            let q = &mut self.queues[i].1;
            while (moved.len() as u32) < m {
                match q.pop_front() {
                    Some(w) => moved.push(w),
                    None => break,
                }
            }
        }
        let count = moved.len() as u32;
        self.queue(to).extend(moved);
        self.tidy();
        (woken, count)
    }

    /// A thread stops waiting without a wake (timeout, signal, exit).
    /// Whether it was still queued.
    pub fn cancel(&mut self, tid: u32) -> bool {
        let mut found = false;
        for (_, q) in self.queues.iter_mut() {
            let before = q.len();
            q.retain(|w| w.tid != tid);
            found |= q.len() != before;
        }
        self.tidy();
        found
    }

    /// Every waiter of address space `space` goes (the process ended).
    pub fn drop_space(&mut self, space: u32) -> Vec<u32> {
        let mut gone = Vec::new();
        for (k, q) in self.queues.iter_mut() {
            if k.0 == space {
                gone.extend(q.drain(..).map(|w| w.tid));
            }
        }
        self.tidy();
        gone
    }
}

/// FUTEX_WAKE_OP's operation on the second word: the new value and whether
/// to wake its waiters, from the encoded `val3` and the old value.
pub fn wake_op(val3: u32, old: u32) -> Option<(u32, bool)> {
    let op = (val3 >> 28) & 7;
    let shift_arg = (val3 >> 31) & 1 != 0;
    let cmp = (val3 >> 24) & 15;
    let mut oparg = (val3 >> 12) & 0xfff;
    let cmparg = val3 & 0xfff;
    if shift_arg {
        if oparg > 31 {
            return None;
        }
        oparg = 1 << oparg;
    }
    let new = match op {
        0 => oparg,
        1 => old.wrapping_add(oparg),
        2 => old | oparg,
        3 => old & !oparg,
        4 => old ^ oparg,
        _ => return None,
    };
    let o = old as i32;
    let c = cmparg as i32;
    let wake = match cmp {
        0 => o == c,
        1 => o != c,
        2 => o < c,
        3 => o <= c,
        4 => o > c,
        5 => o >= c,
        _ => return None,
    };
    Some((new, wake))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakes_go_oldest_first_and_respect_bitsets() {
        let mut f = Futexes::new();
        let k = (1, 0x1000);
        f.wait(k, 10, FUTEX_BITSET_MATCH_ANY);
        f.wait(k, 11, 0b01);
        f.wait(k, 12, 0b10);
        f.wait((2, 0x1000), 20, FUTEX_BITSET_MATCH_ANY);
        assert_eq!(f.wake(k, 1, FUTEX_BITSET_MATCH_ANY), alloc::vec![10]);
        assert_eq!(f.wake(k, 5, 0b10), alloc::vec![12]);
        assert_eq!(f.wake(k, 5, FUTEX_BITSET_MATCH_ANY), alloc::vec![11]);
        assert!(f.wake(k, 5, FUTEX_BITSET_MATCH_ANY).is_empty());
        // Another address space's waiter at the same address is untouched.
        assert_eq!(
            f.wake((2, 0x1000), 5, FUTEX_BITSET_MATCH_ANY),
            alloc::vec![20]
        );
    }

    #[test]
    fn requeue_moves_the_rest() {
        let mut f = Futexes::new();
        let (a, b) = ((1, 8), (1, 16));
        for t in 1..=5 {
            f.wait(a, t, FUTEX_BITSET_MATCH_ANY);
        }
        let (woken, moved) = f.requeue(a, b, 1, 2);
        assert_eq!(woken, alloc::vec![1]);
        assert_eq!(moved, 2);
        assert_eq!(f.wake(b, 10, FUTEX_BITSET_MATCH_ANY), alloc::vec![2, 3]);
        assert_eq!(f.wake(a, 10, FUTEX_BITSET_MATCH_ANY), alloc::vec![4, 5]);
    }

    #[test]
    fn cancelled_waiters_are_not_woken() {
        let mut f = Futexes::new();
        f.wait((1, 8), 7, FUTEX_BITSET_MATCH_ANY);
        assert!(f.cancel(7));
        assert!(!f.cancel(7));
        assert!(f.wake((1, 8), 1, FUTEX_BITSET_MATCH_ANY).is_empty());
    }

    #[test]
    fn wake_op_decodes_glibcs_encoding() {
        // FUTEX_OP(FUTEX_OP_SET, 0, FUTEX_OP_CMP_GT, 1): glibc's
        // pthread_cond_signal of old.
        let val3 = (4 << 24) | 1;
        assert_eq!(wake_op(val3, 2), Some((0, true)));
        assert_eq!(wake_op(val3, 1), Some((0, false)));
        // ADD 1, CMP_EQ 0
        let add = (1 << 28) | (1 << 12);
        assert_eq!(wake_op(add, 0), Some((1, true)));
    }
}
