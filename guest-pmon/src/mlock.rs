//! Locked memory (mlock, mlock2, mlockall, MAP_LOCKED): which ranges of an
//! address space are locked, and whether new mappings are (MCL_FUTURE).
//!
//! Nothing of a process is paged out behind its back here (the ExCache
//! holds what it touches, its memory component the rest), so a lock
//! changes no page. It is kept for what Linux makes of it: VmLck in
//! /proc/PID/status, RLIMIT_MEMLOCK, and the calls a locked range refuses
//! (madvise's discards, msync's MS_INVALIDATE). As Linux's VM_LOCKED, it
//! belongs to the address space: a fork child and an execve start with
//! none.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// The locked ranges of one address space.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Locked {
    /// start -> end, page-aligned, none overlapping or touching.
    ranges: BTreeMap<u64, u64>,
    /// mlockall(MCL_FUTURE): mappings made from now on are locked.
    pub future: bool,
}

impl Locked {
    /// Bytes locked in all.
    pub fn total(&self) -> u64 {
        self.ranges.iter().map(|(s, e)| e - s).sum()
    }

    /// Bytes of `[start, end)` locked.
    pub fn within(&self, start: u64, end: u64) -> u64 {
        self.overlapping(start, end)
            .into_iter()
            .map(|(s, e)| e.min(end) - s.max(start))
            .sum()
    }

    /// Whether some of `[start, end)` is locked.
    pub fn meets(&self, start: u64, end: u64) -> bool {
        !self.overlapping(start, end).is_empty()
    }

    /// Locks `[start, end)`.
    pub fn add(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        // Joined with what overlaps or touches it.
        let (mut lo, mut hi) = (start, end);
        let touching: Vec<(u64, u64)> = self
            .ranges
            .range(..=end)
            .filter(|&(_, &e)| e >= start)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in touching {
            self.ranges.remove(&s);
            lo = lo.min(s);
            hi = hi.max(e);
        }
        self.ranges.insert(lo, hi);
    }

    /// Unlocks `[start, end)` (munlock, munmap, a mapping replaced).
    pub fn remove(&mut self, start: u64, end: u64) {
        for (s, e) in self.overlapping(start, end) {
            self.ranges.remove(&s);
            if s < start {
                self.ranges.insert(s, start);
            }
            if end < e {
                self.ranges.insert(end, e);
            }
        }
    }

    /// mremap moved `[old, old + len)` to `new`: its locked parts are
    /// locked there.
    pub fn moved(&mut self, old: u64, len: u64, new: u64) {
        let end = old.saturating_add(len);
        let parts: Vec<(u64, u64)> = self
            .overlapping(old, end)
            .into_iter()
            .map(|(s, e)| (s.max(old), e.min(end)))
            .collect();
        self.remove(old, end);
        for (s, e) in parts {
            self.add(new + (s - old), new + (e - old));
        }
    }

    /// `[start, end)` cut where locking begins or ends inside it, in
    /// order: as Linux's VMAs split at VM_LOCKED, for /proc/PID/maps.
    pub fn pieces(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut cuts: Vec<u64> = self
            .overlapping(start, end)
            .into_iter()
            .flat_map(|(s, e)| [s, e])
            .filter(|&c| c > start && c < end)
            .collect();
        cuts.dedup();
        let mut out = Vec::with_capacity(cuts.len() + 1);
        let mut at = start;
        for c in cuts {
            out.push((at, c));
            at = c;
        }
        out.push((at, end));
        out
    }

    /// munlockall: nothing is locked, now or later.
    pub fn clear(&mut self) {
        self.ranges.clear();
        self.future = false;
    }

    fn overlapping(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        if start >= end {
            return Vec::new();
        }
        let mut out = Vec::new();
        if let Some((&s, &e)) = self.ranges.range(..start).next_back() {
            if e > start {
                out.push((s, e));
            }
        }
        out.extend(self.ranges.range(start..end).map(|(&s, &e)| (s, e)));
        out
    }
}

/// Whether locking `more` bytes on top of `held` stays within the
/// RLIMIT_MEMLOCK soft limit `limit` (no limit for CAP_IPC_LOCK, which
/// the caller checks first).
pub fn within_limit(held: u64, more: u64, limit: u64) -> bool {
    held.checked_add(more).is_some_and(|t| t <= limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = 4096;

    fn ranges(l: &Locked) -> Vec<(u64, u64)> {
        l.ranges.iter().map(|(&s, &e)| (s, e)).collect()
    }

    #[test]
    fn ranges_join_split_and_count() {
        let mut l = Locked::default();
        l.add(10 * P, 12 * P);
        l.add(12 * P, 13 * P);
        l.add(20 * P, 22 * P);
        assert_eq!(ranges(&l), [(10 * P, 13 * P), (20 * P, 22 * P)]);
        assert_eq!(l.total(), 5 * P);
        assert_eq!(l.within(11 * P, 21 * P), 3 * P);
        l.add(11 * P, 21 * P);
        assert_eq!(ranges(&l), [(10 * P, 22 * P)]);
        l.remove(12 * P, 14 * P);
        assert_eq!(ranges(&l), [(10 * P, 12 * P), (14 * P, 22 * P)]);
        assert!(l.meets(11 * P, 13 * P) && !l.meets(12 * P, 14 * P));
        l.remove(0, 100 * P);
        assert_eq!(l.total(), 0);
        assert!(!l.meets(0, u64::MAX));
    }

    #[test]
    fn a_range_is_cut_at_the_edges_of_locks() {
        let mut l = Locked::default();
        assert_eq!(l.pieces(0, 10 * P), [(0, 10 * P)]);
        l.add(2 * P, 4 * P);
        l.add(6 * P, 12 * P);
        assert_eq!(
            l.pieces(0, 10 * P),
            [(0, 2 * P), (2 * P, 4 * P), (4 * P, 6 * P), (6 * P, 10 * P)]
        );
        assert_eq!(l.pieces(3 * P, 5 * P), [(3 * P, 4 * P), (4 * P, 5 * P)]);
        assert_eq!(l.pieces(7 * P, 8 * P), [(7 * P, 8 * P)]);
    }

    #[test]
    fn a_move_takes_the_locked_parts_along() {
        let mut l = Locked::default();
        l.add(10 * P, 12 * P);
        l.add(30 * P, 31 * P);
        l.moved(11 * P, 4 * P, 50 * P);
        assert_eq!(
            ranges(&l),
            [(10 * P, 11 * P), (30 * P, 31 * P), (50 * P, 51 * P)]
        );
        l.future = true;
        l.clear();
        assert_eq!((l.total(), l.future), (0, false));
    }

    #[test]
    fn the_limit_holds_and_does_not_wrap() {
        assert!(within_limit(4 * P, 4 * P, 8 * P));
        assert!(!within_limit(4 * P, 4 * P + 1, 8 * P));
        assert!(!within_limit(u64::MAX, 1, u64::MAX));
        assert!(within_limit(0, 0, 0));
    }
}
