//! Shared anonymous memory (`MAP_SHARED | MAP_ANONYMOUS`, and `MAP_SHARED`
//! of /dev/zero): which ranges of one address space show another space's
//! pages.
//!
//! A process's pages live in its own slot of the process window, so a
//! forked child's copy of a mapping is a copy. Linux backs shared anonymous
//! memory with an unlinked tmpfs object that every mapper's page tables
//! point at; here the object is a range of a hidden holder address space
//! (its own slot, its pages at a memory component like any process's), and
//! the mappers' page tables point their pages at the holder's window pages.
//! All processes of a program run on one processor and share its ExCache,
//! so they see one page: writes are seen at once, atomics and futexes work
//! between processes.
//!
//! This module keeps the ranges; `kernel/syscall/shared_anon.rs` makes the
//! objects and writes the page tables.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// One redirected range of a space: `[start, end)` shows the holder's
/// pages from `at` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub start: u64,
    pub end: u64,
    /// The holder's address of `start`'s page.
    pub at: u64,
    /// The object (its start in the holder) the pages belong to.
    pub object: u64,
    /// PROT_ bits the process asked for (the page-table entries follow
    /// them: the holder's mapping is always readable and writable).
    pub prot: u32,
    /// Whether mprotect may add PROT_WRITE (Linux's VM_MAYWRITE): not for
    /// a shared mapping of a descriptor open only for reading.
    pub may_write: bool,
}

/// The redirected ranges of one address space, none overlapping.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Redirects {
    pieces: BTreeMap<u64, Piece>,
}

impl Redirects {
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    pub fn pieces(&self) -> impl Iterator<Item = &Piece> {
        self.pieces.values()
    }

    /// The piece holding `va`, if any.
    pub fn find(&self, va: u64) -> Option<&Piece> {
        self.pieces
            .range(..=va)
            .next_back()
            .map(|(_, p)| p)
            .filter(|p| va < p.end)
    }

    /// The holder's address `va` shows, if it is redirected.
    pub fn target(&self, va: u64) -> Option<u64> {
        self.find(va).map(|p| p.at + (va - p.start))
    }

    /// Redirects `[start, end)` to the holder's pages from `at`; whatever
    /// was redirected there before stops being so.
    pub fn insert(&mut self, start: u64, end: u64, at: u64, object: u64, prot: u32) {
        if start >= end {
            return;
        }
        self.remove(start, end);
        self.pieces.insert(
            start,
            Piece {
                start,
                end,
                at,
                object,
                prot,
                may_write: true,
            },
        );
    }

    /// The redirected parts of `[start, end)` may not be made writable.
    pub fn forbid_writes(&mut self, start: u64, end: u64) {
        for p in self.overlapping(start, end) {
            if let Some(q) = self.pieces.get_mut(&p.start) {
                q.may_write = false;
            }
        }
    }

    /// Whether some of `[start, end)` may not be made writable.
    pub fn writes_forbidden(&self, start: u64, end: u64) -> bool {
        self.overlapping(start, end).iter().any(|p| !p.may_write)
    }

    /// `[start, end)` stops being redirected. Returns the ranges that were,
    /// whose page-table entries must go back to the space's own pages.
    pub fn remove(&mut self, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut gone = Vec::new();
        for p in self.overlapping(start, end) {
            self.pieces.remove(&p.start);
            if p.start < start {
                self.pieces.insert(p.start, Piece { end: start, ..p });
            }
            if end < p.end {
                self.pieces.insert(
                    end,
                    Piece {
                        start: end,
                        at: p.at + (end - p.start),
                        ..p
                    },
                );
            }
            gone.push((p.start.max(start), p.end.min(end)));
        }
        gone
    }

    /// The redirected parts of `[start, end)` take protection `prot`.
    /// Returns the ranges that changed.
    pub fn protect(&mut self, start: u64, end: u64, prot: u32) -> Vec<(u64, u64)> {
        let mut changed = Vec::new();
        for p in self.overlapping(start, end) {
            let (s, e) = (p.start.max(start), p.end.min(end));
            self.remove(s, e);
            self.pieces.insert(
                s,
                Piece {
                    start: s,
                    end: e,
                    at: p.at + (s - p.start),
                    prot,
                    ..p
                },
            );
            changed.push((s, e));
        }
        changed
    }

    /// The object, protection and `may_write` of `[start, end)` when all
    /// of it shows one object with one protection (remap_file_pages
    /// works within one mapping).
    pub fn one_mapping(&self, start: u64, end: u64) -> Option<(u64, u32, bool)> {
        if !self.covers(start, end) {
            return None;
        }
        let pieces = self.overlapping(start, end);
        let first = *pieces.first()?;
        pieces
            .iter()
            .all(|p| (p.object, p.prot, p.may_write) == (first.object, first.prot, first.may_write))
            .then_some((first.object, first.prot, first.may_write))
    }

    /// Whether `[start, end)` meets a redirected range.
    pub fn meets(&self, start: u64, end: u64) -> bool {
        !self.overlapping(start, end).is_empty()
    }

    /// Whether redirected ranges cover all of `[start, end)`.
    pub fn covers(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        for p in self.overlapping(start, end) {
            if p.start > at {
                return false;
            }
            at = p.end;
        }
        at >= end
    }

    fn overlapping(&self, start: u64, end: u64) -> Vec<Piece> {
        if start >= end {
            return Vec::new();
        }
        let mut out: Vec<Piece> = Vec::new();
        if let Some((_, p)) = self.pieces.range(..start).next_back() {
            if p.end > start {
                out.push(*p);
            }
        }
        out.extend(self.pieces.range(start..end).map(|(_, p)| *p));
        out
    }
}

/// The objects, of those given as (start, length) in the holder, that
/// hold any of the holder's pages `[first, end)`: their starts, in order.
/// A run of pages that found no frame at a memory component names them,
/// and their mappers are the processes killed for it.
pub fn objects_meeting(
    objects: impl IntoIterator<Item = (u64, u64)>,
    first: u64,
    end: u64,
) -> Vec<u64> {
    let mut out: Vec<u64> = objects
        .into_iter()
        .filter(|&(start, len)| first < end && start < end && first < start.saturating_add(len))
        .map(|(start, _)| start)
        .collect();
    out.sort_unstable();
    out
}

/// Which byte ranges of a file an object holds (filled from the file when
/// first mapped; later writes to the file are patched into these only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filled {
    /// start -> end, none overlapping or touching.
    ranges: BTreeMap<u64, u64>,
}

impl Filled {
    /// The parts of [lo, hi) not held yet.
    pub fn missing(&self, lo: u64, hi: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut at = lo;
        for (s, e) in self.held(lo, hi) {
            if at < s {
                out.push((at, s));
            }
            at = e;
        }
        if at < hi {
            out.push((at, hi));
        }
        out
    }

    /// The parts of [lo, hi) held.
    pub fn held(&self, lo: u64, hi: u64) -> Vec<(u64, u64)> {
        if lo >= hi {
            return Vec::new();
        }
        let first = self.ranges.range(..=lo).next_back().map_or(lo, |(&s, _)| s);
        self.ranges
            .range(first..hi)
            .filter(|(_, &e)| e > lo)
            .map(|(&s, &e)| (s.max(lo), e.min(hi)))
            .collect()
    }

    /// [lo, hi) is held from now on.
    pub fn add(&mut self, lo: u64, hi: u64) {
        if lo >= hi {
            return;
        }
        let (mut lo, mut hi) = (lo, hi);
        let touching: Vec<(u64, u64)> = {
            let first = self.ranges.range(..=lo).next_back().map_or(lo, |(&s, _)| s);
            self.ranges
                .range(first..=hi)
                .filter(|(_, &e)| e >= lo)
                .map(|(&s, &e)| (s, e))
                .collect()
        };
        for (s, e) in touching {
            self.ranges.remove(&s);
            lo = lo.min(s);
            hi = hi.max(e);
        }
        self.ranges.insert(lo, hi);
    }

    /// The end of the last range held (0 for none).
    pub fn end(&self) -> u64 {
        self.ranges.values().next_back().copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u64 = 1 << 20;

    fn ranges(r: &Redirects) -> Vec<(u64, u64, u64, u32)> {
        r.pieces().map(|p| (p.start, p.end, p.at, p.prot)).collect()
    }

    #[test]
    fn the_objects_a_run_of_pages_meets_are_those_holding_any_of_them() {
        let objects = [(0, 4 * M), (4 * M, M), (8 * M, 2 * M)];
        assert_eq!(objects_meeting(objects, 4 * M, 4 * M + 4096), [4 * M]);
        assert_eq!(
            objects_meeting(objects, 4 * M - 4096, 4 * M + 4096),
            [0, 4 * M]
        );
        assert_eq!(objects_meeting(objects, 3 * M, 9 * M), [0, 4 * M, 8 * M]);
        // Between objects, or past them, or an empty run: none.
        assert!(objects_meeting(objects, 5 * M, 8 * M).is_empty());
        assert!(objects_meeting(objects, 10 * M, 11 * M).is_empty());
        assert!(objects_meeting(objects, 9 * M, 9 * M).is_empty());
        // An object at the top of the addresses does not overflow.
        assert_eq!(
            objects_meeting([(u64::MAX - 4095, 4096)], u64::MAX - 10, u64::MAX),
            [u64::MAX - 4095]
        );
    }

    #[test]
    fn one_mapping_is_one_object_with_one_protection_over_the_whole_range() {
        let mut r = Redirects::default();
        r.insert(M, 3 * M, 50 * M, 50 * M, 3);
        r.insert(3 * M, 4 * M, 60 * M, 60 * M, 3);
        assert_eq!(r.one_mapping(M, 2 * M), Some((50 * M, 3, true)));
        // Pieces of one object after a remap of part of it.
        r.insert(2 * M, 3 * M, 52 * M, 50 * M, 3);
        assert_eq!(r.one_mapping(M, 3 * M), Some((50 * M, 3, true)));
        // Across objects, past the end, over a hole, or another protection.
        assert_eq!(r.one_mapping(2 * M, 4 * M), None);
        assert_eq!(r.one_mapping(3 * M, 5 * M), None);
        assert_eq!(r.one_mapping(0, 2 * M), None);
        r.protect(M, 2 * M, 1);
        assert_eq!(r.one_mapping(M, 3 * M), None);
        assert_eq!(r.one_mapping(M, 2 * M), Some((50 * M, 1, true)));
    }

    #[test]
    fn a_hole_in_the_middle_keeps_both_ends_pointing_at_their_pages() {
        let mut r = Redirects::default();
        r.insert(10 * M, 14 * M, 100 * M, 100 * M, 3);
        let gone = r.remove(11 * M, 12 * M);
        assert_eq!(gone, [(11 * M, 12 * M)]);
        assert_eq!(
            ranges(&r),
            [(10 * M, 11 * M, 100 * M, 3), (12 * M, 14 * M, 102 * M, 3)]
        );
        assert_eq!(r.target(13 * M + 4096), Some(103 * M + 4096));
        assert_eq!(r.target(11 * M), None);
        assert_eq!(r.target(14 * M), None);
        assert!(r.pieces().any(|p| p.object == 100 * M));
    }

    #[test]
    fn removing_across_pieces_returns_only_what_was_redirected() {
        let mut r = Redirects::default();
        r.insert(M, 2 * M, 50 * M, 50 * M, 3);
        r.insert(4 * M, 6 * M, 60 * M, 60 * M, 1);
        let gone = r.remove(0, 5 * M);
        assert_eq!(gone, [(M, 2 * M), (4 * M, 5 * M)]);
        assert_eq!(ranges(&r), [(5 * M, 6 * M, 61 * M, 1)]);
        assert!(!r.pieces().any(|p| p.object == 50 * M));
        assert!(r.pieces().any(|p| p.object == 60 * M));
        assert!(r.remove(7 * M, 8 * M).is_empty());
    }

    #[test]
    fn coverage_and_forbidden_writes_follow_the_pieces() {
        let mut r = Redirects::default();
        r.insert(M, 2 * M, 50 * M, 50 * M, 1);
        r.insert(2 * M, 3 * M, 60 * M, 60 * M, 3);
        r.insert(4 * M, 5 * M, 70 * M, 70 * M, 3);
        assert!(r.covers(M, 3 * M) && r.covers(M + 4096, 2 * M + 4096));
        assert!(!r.covers(M, 5 * M) && !r.covers(0, 2 * M));
        assert!(r.covers(7 * M, 7 * M), "an empty range");
        r.forbid_writes(M, 2 * M);
        assert!(r.writes_forbidden(0, M + 1) && !r.writes_forbidden(2 * M, 5 * M));
        // Split pieces keep it; a new mapping over the range does not.
        r.protect(M, M + 4096, 3);
        r.remove(M + 4096, M + 8192);
        assert!(r.writes_forbidden(M, M + 4096) && r.writes_forbidden(M + 8192, 2 * M));
        r.insert(M, 2 * M, 80 * M, 80 * M, 1);
        assert!(!r.writes_forbidden(0, 3 * M));
    }

    #[test]
    fn protecting_part_of_a_piece_splits_it() {
        let mut r = Redirects::default();
        r.insert(0x10000, 0x20000, 0x80000, 0x80000, 3);
        let changed = r.protect(0x12000, 0x13000, 1);
        assert_eq!(changed, [(0x12000, 0x13000)]);
        assert_eq!(
            ranges(&r),
            [
                (0x10000, 0x12000, 0x80000, 3),
                (0x12000, 0x13000, 0x82000, 1),
                (0x13000, 0x20000, 0x83000, 3)
            ]
        );
        assert_eq!(r.find(0x12fff).map(|p| p.prot), Some(1));
        assert!(r.meets(0x1f000, 0x30000));
        assert!(!r.meets(0x20000, 0x30000));
        assert!(r.protect(0x30000, 0x40000, 0).is_empty());
    }

    #[test]
    fn a_new_range_replaces_what_it_covers() {
        let mut r = Redirects::default();
        r.insert(0, 4 * M, 10 * M, 10 * M, 3);
        r.insert(M, 2 * M, 20 * M, 20 * M, 3);
        assert_eq!(
            ranges(&r),
            [
                (0, M, 10 * M, 3),
                (M, 2 * M, 20 * M, 3),
                (2 * M, 4 * M, 12 * M, 3)
            ]
        );
        r.insert(5 * M, 5 * M, 0, 0, 3);
        assert_eq!(r.pieces().count(), 3);
    }

    #[test]
    fn filled_ranges_merge_and_report_what_is_missing() {
        let mut f = Filled::default();
        assert_eq!(f.missing(0, 10), [(0, 10)]);
        f.add(2, 4);
        f.add(6, 8);
        assert_eq!(f.missing(0, 10), [(0, 2), (4, 6), (8, 10)]);
        assert_eq!(f.held(3, 7), [(3, 4), (6, 7)]);
        f.add(4, 6);
        assert_eq!(f.held(0, 10), [(2, 8)]);
        assert_eq!(f.missing(3, 7), []);
        f.add(8, 9);
        f.add(0, 1);
        assert_eq!(f.held(0, 100), [(0, 1), (2, 9)]);
        assert_eq!(f.end(), 9);
        assert!(f.held(5, 5).is_empty());
    }
}
