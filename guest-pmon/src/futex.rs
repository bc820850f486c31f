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
//!
//! Also what Linux's robust and priority-inheritance futexes mean for the
//! word (`futex(2)`, Documentation/locking/robust-futex*.rst and
//! pi-futex.rst): the owner's TID in the low 30 bits, FUTEX_WAITERS and
//! FUTEX_OWNER_DIED above it. There are no priorities here, so a PI futex
//! is a lock the kernel hands to its oldest waiter; what programs need
//! from it is that musl and glibc accept PTHREAD_PRIO_INHERIT and that
//! its lock, unlock and owner-died rules hold.

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
pub const FUTEX_LOCK_PI: u32 = 6;
pub const FUTEX_UNLOCK_PI: u32 = 7;
pub const FUTEX_TRYLOCK_PI: u32 = 8;
/// LOCK_PI with its timeout on CLOCK_MONOTONIC (or FUTEX_CLOCK_REALTIME).
pub const FUTEX_LOCK_PI2: u32 = 13;

/// The word's bits: the owner, and the two flags above it.
pub const FUTEX_WAITERS: u32 = 0x8000_0000;
pub const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
pub const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

/// `struct robust_list_head`'s size, the only one set_robust_list takes.
pub const ROBUST_LIST_HEAD_LEN: u64 = 24;
/// The most entries walked at an exit (Linux's ROBUST_LIST_LIMIT): a list
/// made circular by a bug ends.
pub const ROBUST_LIST_LIMIT: usize = 2048;

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

    /// How many wait on `key`.
    pub fn waiting(&self, key: Key) -> usize {
        self.queues
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(0, |(_, q)| q.len())
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

/// What FUTEX_LOCK_PI (or TRYLOCK_PI) by `tid` does with a word holding
/// `val`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PiLock {
    /// No owner: the caller owns it, the word becomes this (OWNER_DIED
    /// kept, for the caller to see; WAITERS when others still wait).
    Take(u32),
    /// Owned by another: the word becomes this (WAITERS set, so that the
    /// owner's unlock comes to the kernel) and the caller waits.
    Wait(u32),
    /// The caller owns it already: EDEADLK.
    Deadlock,
}

pub fn pi_lock(val: u32, tid: u32, others_wait: bool) -> PiLock {
    match val & FUTEX_TID_MASK {
        0 => PiLock::Take(
            (val & FUTEX_OWNER_DIED) | tid | if others_wait { FUTEX_WAITERS } else { 0 },
        ),
        owner if owner == tid => PiLock::Deadlock,
        _ => PiLock::Wait(val | FUTEX_WAITERS),
    }
}

/// The word after its owner lets go (FUTEX_UNLOCK_PI, or the owner died
/// holding it: `died`): the oldest waiter `next` owns it, WAITERS while
/// `more` wait behind it; with none it is free.
pub fn pi_hand_over(next: Option<u32>, more: bool, died: bool) -> u32 {
    let died = if died { FUTEX_OWNER_DIED } else { 0 };
    match next {
        Some(t) => (t & FUTEX_TID_MASK) | died | if more { FUTEX_WAITERS } else { 0 },
        None => died,
    }
}

/// A robust futex word `val` whose owner `tid` ended: the word to write
/// (the owner gone, OWNER_DIED set, WAITERS kept) and whether to wake a
/// waiter; None when `tid` does not own it (left alone, as Linux does).
pub fn owner_died(val: u32, tid: u32) -> Option<(u32, bool)> {
    if val & FUTEX_TID_MASK != tid {
        return None;
    }
    Some((
        (val & FUTEX_WAITERS) | FUTEX_OWNER_DIED,
        val & FUTEX_WAITERS != 0,
    ))
}

/// The futex words a thread's robust list names, as Linux walks it at the
/// thread's exit: `head` is the address set_robust_list gave, `read`
/// reads a user word (None: unreadable, which ends the walk). Each is
/// (word address, is PI); then the pending one, if any
/// (`list_op_pending`: a lock being taken or released when the thread
/// ended).
pub type RobustWord = (u64, bool);

pub fn robust_words(
    head: u64,
    mut read: impl FnMut(u64) -> Option<u64>,
) -> (Vec<RobustWord>, Option<RobustWord>) {
    let mut words = Vec::new();
    let (Some(first), Some(offset), Some(pending)) = (
        read(head),
        read(head.wrapping_add(8)),
        read(head.wrapping_add(16)),
    ) else {
        return (words, None);
    };
    // An entry's low bit says its futex is PI; the word lies at the
    // entry plus the (signed) offset.
    let word = |entry: u64| (entry & !1).wrapping_add(offset);
    let pending_entry = pending & !1;
    let mut entry = first;
    for _ in 0..ROBUST_LIST_LIMIT {
        if entry & !1 == head {
            break;
        }
        // The next link is read before the word is touched.
        let next = read(entry & !1);
        if entry & !1 != pending_entry {
            words.push((word(entry), entry & 1 != 0));
        }
        match next {
            Some(n) => entry = n,
            None => break,
        }
    }
    let pending = (pending_entry != 0).then(|| (word(pending), pending & 1 != 0));
    (words, pending)
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
    fn pi_words_follow_linuxs_rules() {
        // Free: taken; a dead owner's mark stays for the taker to see.
        assert_eq!(pi_lock(0, 7, false), PiLock::Take(7));
        assert_eq!(
            pi_lock(FUTEX_OWNER_DIED, 7, true),
            PiLock::Take(FUTEX_OWNER_DIED | FUTEX_WAITERS | 7)
        );
        assert_eq!(pi_lock(7, 7, false), PiLock::Deadlock);
        assert_eq!(pi_lock(9, 7, false), PiLock::Wait(9 | FUTEX_WAITERS));
        // Unlock hands it to the oldest waiter.
        assert_eq!(pi_hand_over(Some(8), false, false), 8);
        assert_eq!(pi_hand_over(Some(8), true, false), 8 | FUTEX_WAITERS);
        assert_eq!(pi_hand_over(None, false, false), 0);
        assert_eq!(pi_hand_over(Some(8), false, true), 8 | FUTEX_OWNER_DIED);
        assert_eq!(pi_hand_over(None, false, true), FUTEX_OWNER_DIED);
    }

    #[test]
    fn a_dead_owners_robust_words_are_marked() {
        assert_eq!(owner_died(7, 7), Some((FUTEX_OWNER_DIED, false)));
        assert_eq!(
            owner_died(7 | FUTEX_WAITERS, 7),
            Some((FUTEX_OWNER_DIED | FUTEX_WAITERS, true))
        );
        assert_eq!(owner_died(8, 7), None, "another's lock is left alone");
        assert_eq!(owner_died(0, 7), None);
    }

    #[test]
    fn robust_lists_are_walked_as_linux_does() {
        use alloc::collections::BTreeMap;
        // head at 0x100 -> entry 0x200 -> entry 0x301 (PI) -> head; the
        // word lies 8 bytes before each entry (offset -8); entry 0x200 is
        // also pending, so it comes once, last.
        let mut mem = BTreeMap::new();
        mem.insert(0x100u64, 0x200u64);
        mem.insert(0x108, (-8i64) as u64);
        mem.insert(0x110, 0x200);
        mem.insert(0x200, 0x301);
        mem.insert(0x300, 0x100);
        let read = |a: u64| mem.get(&a).copied();
        assert_eq!(
            robust_words(0x100, read),
            (alloc::vec![(0x2f8, true)], Some((0x1f8, false)))
        );
        // A loop ends at the limit; an unreadable link ends the walk.
        let mut looped = BTreeMap::new();
        looped.insert(0x100u64, 0x200u64);
        looped.insert(0x108, 0);
        looped.insert(0x110, 0);
        looped.insert(0x200, 0x200);
        let (words, _) = robust_words(0x100, |a| looped.get(&a).copied());
        assert_eq!(words.len(), ROBUST_LIST_LIMIT);
        let mut broken = BTreeMap::new();
        broken.insert(0x100u64, 0x200u64);
        broken.insert(0x108, 0);
        broken.insert(0x110, 0);
        assert_eq!(
            robust_words(0x100, |a| broken.get(&a).copied()),
            (alloc::vec![(0x200, false)], None)
        );
        assert_eq!(robust_words(0x100, |_| None), (alloc::vec![], None));
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
