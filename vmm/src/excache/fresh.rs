//! Fresh memory: pages of a process that no one has written since their
//! mapping was made, so their memory component holds no frame for them
//! and they read as zeros. The ExCache learns them from the memory calls
//! it makes on the guest's behalf (an anonymous mmap's range is fresh) and
//! forgets them on every change it cannot follow exactly (munmap,
//! mprotect, mremap, a program's pages loaded, the process ending). A miss
//! on a fresh page is served with zeros on the spot: no round trip.
//!
//! Ranges are kept per window slot, sorted and disjoint, with the
//! protection of the mapping that made them.

use std::collections::BTreeMap;

const PAGE: u64 = 4096;

/// A run of fresh pages handed out by [`Fresh::take`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub start: u64,
    pub end: u64,
    /// The protection of the mapping (PROT_READ 1, PROT_WRITE 2).
    pub prot: u32,
}

#[derive(Default)]
pub struct Fresh {
    /// (slot, start) -> (end, prot).
    ranges: BTreeMap<(u64, u64), (u64, u32)>,
}

impl Fresh {
    /// [start, end) of `slot` is fresh, with protection `prot`.
    pub fn insert(&mut self, slot: u64, start: u64, end: u64, prot: u32) {
        if start >= end {
            return;
        }
        self.remove(slot, start, end);
        // Joined to a neighbour of the same protection, so runs stay long.
        let (mut s, mut e) = (start, end);
        if let Some((&(sl, ls), &(le, lp))) = self.ranges.range(..(slot, start)).next_back() {
            if sl == slot && le == start && lp == prot {
                self.ranges.remove(&(sl, ls));
                s = ls;
            }
        }
        if let Some(&(re, rp)) = self.ranges.get(&(slot, end)) {
            if rp == prot {
                self.ranges.remove(&(slot, end));
                e = re;
            }
        }
        self.ranges.insert((slot, s), (e, prot));
    }

    /// Nothing in [start, end) of `slot` is known fresh any more.
    pub fn remove(&mut self, slot: u64, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let mut touched: Vec<(u64, u64, u32)> = Vec::new();
        // The range starting before `start` may reach into it.
        if let Some((&(sl, ls), &(le, lp))) = self.ranges.range(..(slot, start)).next_back() {
            if sl == slot && le > start {
                touched.push((ls, le, lp));
            }
        }
        for (&(_, s), &(e, p)) in self.ranges.range((slot, start)..(slot, end)) {
            touched.push((s, e, p));
        }
        for (s, e, p) in touched {
            self.ranges.remove(&(slot, s));
            if s < start {
                self.ranges.insert((slot, s), (start, p));
            }
            if e > end {
                self.ranges.insert((slot, end), (e, p));
            }
        }
    }

    /// Forgets every fresh page of `slot`.
    pub fn clear(&mut self, slot: u64) {
        self.remove(slot, 0, u64::MAX);
    }

    /// Whether the page at `va` of `slot` is fresh, and its protection.
    pub fn prot_of(&self, slot: u64, va: u64) -> Option<u32> {
        let (&(sl, _), &(e, p)) = self.ranges.range(..=(slot, va)).next_back()?;
        (sl == slot && va < e).then_some(p)
    }

    /// Takes the fresh run that starts at `va` (a page), at most `max`
    /// pages and not past `limit`; it is no longer fresh once taken (its
    /// pages are about to be cached). None when `va` is not fresh.
    pub fn take(&mut self, slot: u64, va: u64, max: u64, limit: u64) -> Option<Run> {
        let prot = self.prot_of(slot, va)?;
        let (&(_, _), &(e, _)) = self.ranges.range(..=(slot, va)).next_back()?;
        let end = e.min(limit).min(va.saturating_add(max.max(1) * PAGE));
        let end = end.max(va + PAGE);
        self.remove(slot, va, end);
        Some(Run {
            start: va,
            end,
            prot,
        })
    }

    /// How many ranges are kept (for tests and stats).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.ranges.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: u64 = PAGE;

    #[test]
    fn a_mapping_is_fresh_until_taken() {
        let mut f = Fresh::default();
        f.insert(1, 0x10000, 0x20000, 3);
        assert_eq!(f.prot_of(1, 0x10000), Some(3));
        assert_eq!(f.prot_of(1, 0x1f000), Some(3));
        assert_eq!(f.prot_of(1, 0x20000), None);
        assert_eq!(f.prot_of(0, 0x10000), None);
        let run = f.take(1, 0x12000, 4, u64::MAX).unwrap();
        assert_eq!((run.start, run.end, run.prot), (0x12000, 0x16000, 3));
        assert_eq!(f.prot_of(1, 0x12000), None);
        assert_eq!(f.prot_of(1, 0x15000), None);
        assert_eq!(f.prot_of(1, 0x11000), Some(3));
        assert_eq!(f.prot_of(1, 0x16000), Some(3));
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn a_run_stops_at_the_range_and_the_limit() {
        let mut f = Fresh::default();
        f.insert(2, 0x10000, 0x13000, 1);
        let run = f.take(2, 0x11000, 16, u64::MAX).unwrap();
        assert_eq!(run.end, 0x13000);
        f.insert(2, 0x10000, 0x40000, 1);
        assert_eq!(f.take(2, 0x10000, 64, 0x12000).unwrap().end, 0x12000);
        assert_eq!(f.take(7, 0x10000, 64, u64::MAX), None);
    }

    #[test]
    fn neighbours_of_one_protection_join() {
        let mut f = Fresh::default();
        f.insert(0, 0x10000, 0x20000, 3);
        f.insert(0, 0x20000, 0x30000, 3);
        f.insert(0, 0x30000, 0x40000, 1);
        assert_eq!(f.len(), 2);
        assert_eq!(f.take(0, 0x1f000, 64, u64::MAX).unwrap().end, 0x30000);
    }

    #[test]
    fn clearing_a_slot_leaves_the_others() {
        let mut f = Fresh::default();
        f.insert(0, P, 8 * P, 3);
        f.insert(1, P, 8 * P, 3);
        f.clear(0);
        assert_eq!(f.prot_of(0, P), None);
        assert_eq!(f.prot_of(1, P), Some(3));
    }

    proptest! {
        /// Against a page-by-page model: every insert, remove and take
        /// leaves exactly the pages the model has, with their protection.
        #[test]
        fn matches_a_page_model(ops in proptest::collection::vec((0u8..3, 0u64..2, 0u64..64, 1u64..24, 1u32..4), 1..60)) {
            let mut f = Fresh::default();
            let mut model: BTreeMap<(u64, u64), u32> = BTreeMap::new();
            for (op, slot, first, n, prot) in ops {
                let (start, end) = (first * P, (first + n) * P);
                match op {
                    0 => {
                        f.insert(slot, start, end, prot);
                        for p in first..first + n {
                            model.insert((slot, p), prot);
                        }
                    }
                    1 => {
                        f.remove(slot, start, end);
                        for p in first..first + n {
                            model.remove(&(slot, p));
                        }
                    }
                    _ => {
                        let got = f.take(slot, start, n, u64::MAX);
                        match model.get(&(slot, first)).copied() {
                            None => prop_assert_eq!(got, None),
                            Some(mp) => {
                                let run = got.unwrap();
                                prop_assert_eq!(run.prot, mp);
                                prop_assert!(run.end > run.start && run.end <= end);
                                for p in first..run.end / P {
                                    prop_assert!(model.remove(&(slot, p)).is_some());
                                }
                            }
                        }
                    }
                }
                for slot in 0..2 {
                    for p in 0..100 {
                        prop_assert_eq!(f.prot_of(slot, p * P), model.get(&(slot, p)).copied());
                    }
                }
            }
        }
    }
}
