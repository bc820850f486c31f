//! File-backed pages: pages of a process that hold a host file's bytes and
//! that nothing can have written (their mapping does not allow writes), so
//! their memory component holds no frame for them. execve maps a program's
//! read-only segments this way, and mmap a host file's read-only
//! mappings: nothing is copied to a memory component, and a miss reads
//! the page from the file, as Linux serves a fault on a private file
//! mapping from its page cache. A 185 MiB compiler run a thousand times
//! by its driver (`zig cc` building musl) was copied whole at every
//! execve before, a second each.
//!
//! Unlike fresh ranges, these cannot be forgotten while their mapping
//! lasts: the memory component would answer zeros. A range goes only with
//! its mapping (munmap, a mapping made over it, the process ending); a
//! call that would let its pages be written or moved (mprotect with
//! PROT_WRITE, mremap) has them copied to the memory component first (the
//! ExCache does both, `ExCache::memory_call`).
//!
//! Ranges are kept per window slot, sorted and disjoint.

use std::collections::BTreeMap;
use std::fs::File;
use std::sync::Arc;

const PAGE: u64 = 4096;

/// Where the bytes of one range come from.
#[derive(Clone, Debug)]
pub struct Source {
    pub file: Arc<File>,
    /// The file offset of the range's first page.
    pub offset: u64,
    /// Where the file's bytes end in the process (a segment's `filesz`):
    /// past it, the range's last page reads as zeros.
    pub file_end: u64,
    /// The mapping's protection (PROT_READ 1, PROT_EXEC 4; never
    /// PROT_WRITE).
    pub prot: u32,
}

/// A piece of a range, as [`Filed::within`] gives it.
#[derive(Clone, Debug)]
pub struct Piece {
    pub start: u64,
    pub end: u64,
    pub source: Source,
}

impl Piece {
    /// The file offset of page `va` and how many of the page's bytes the
    /// file has (the rest read as zeros).
    pub fn file_part(&self, va: u64) -> (u64, u64) {
        let offset = self.source.offset + (va - self.start);
        (offset, self.source.file_end.saturating_sub(va).min(PAGE))
    }
}

#[derive(Default)]
pub struct Filed {
    /// (slot, start) -> (end, source).
    ranges: BTreeMap<(u64, u64), (u64, Source)>,
}

impl Filed {
    /// [start, end) of `slot` (pages) reads `source`. What was there is
    /// replaced.
    pub fn insert(&mut self, slot: u64, start: u64, end: u64, source: Source) {
        if start >= end {
            return;
        }
        self.remove(slot, start, end);
        self.ranges.insert((slot, start), (end, source));
    }

    /// Nothing in [start, end) of `slot` is file-backed any more.
    pub fn remove(&mut self, slot: u64, start: u64, end: u64) {
        self.cut(slot, start, end);
    }

    /// The pieces of `slot`'s ranges inside [start, end), cut at its ends
    /// and taken out (the parts outside stay).
    fn cut(&mut self, slot: u64, start: u64, end: u64) -> Vec<Piece> {
        if start >= end {
            return Vec::new();
        }
        let mut touched: Vec<u64> = Vec::new();
        // The range starting before `start` may reach into it.
        if let Some((&(sl, ls), (le, _))) = self.ranges.range(..(slot, start)).next_back() {
            if sl == slot && *le > start {
                touched.push(ls);
            }
        }
        touched.extend(
            self.ranges
                .range((slot, start)..(slot, end))
                .map(|(&(_, s), _)| s),
        );
        let mut inside = Vec::new();
        for s in touched {
            let Some((e, source)) = self.ranges.remove(&(slot, s)) else {
                continue;
            };
            let at = |va: u64| Source {
                offset: source.offset + (va - s),
                ..source.clone()
            };
            if s < start {
                self.ranges.insert((slot, s), (start, source.clone()));
            }
            if e > end {
                self.ranges.insert((slot, end), (e, at(end)));
            }
            let (a, b) = (s.max(start), e.min(end));
            inside.push(Piece {
                start: a,
                end: b,
                source: at(a),
            });
        }
        inside
    }

    /// The protection of [start, end) of `slot` changed to `prot` (one
    /// without PROT_WRITE).
    pub fn set_prot(&mut self, slot: u64, start: u64, end: u64, prot: u32) {
        for mut piece in self.cut(slot, start, end) {
            piece.source.prot = prot;
            self.ranges
                .insert((slot, piece.start), (piece.end, piece.source));
        }
    }

    /// The file-backed pieces of [start, end) of `slot`, left in place.
    pub fn within(&self, slot: u64, start: u64, end: u64) -> Vec<Piece> {
        let mut out = Vec::new();
        let first = match self.ranges.range(..=(slot, start)).next_back() {
            Some((&(sl, s), _)) if sl == slot => s,
            _ => start,
        };
        for (&(_, s), (e, source)) in self.ranges.range((slot, first)..(slot, end)) {
            if *e <= start {
                continue;
            }
            let a = s.max(start);
            out.push(Piece {
                start: a,
                end: (*e).min(end),
                source: Source {
                    offset: source.offset + (a - s),
                    ..source.clone()
                },
            });
        }
        out
    }

    /// The piece of `slot` that page `va` lies in, from `va` to its end.
    pub fn at(&self, slot: u64, va: u64) -> Option<Piece> {
        let (&(sl, s), (e, source)) = self.ranges.range(..=(slot, va)).next_back()?;
        (sl == slot && va < *e).then(|| Piece {
            start: va,
            end: *e,
            source: Source {
                offset: source.offset + (va - s),
                ..source.clone()
            },
        })
    }

    /// Forgets every range of `slot` (its process ended).
    pub fn clear(&mut self, slot: u64) {
        self.remove(slot, 0, u64::MAX);
    }

    /// `to` gets `from`'s ranges (a forked child: the memory component
    /// copied the mappings, and these pages hold no frame in either).
    pub fn inherit(&mut self, from: u64, to: u64) {
        if from == to {
            return;
        }
        self.clear(to);
        let copies: Vec<(u64, u64, Source)> = self
            .ranges
            .range((from, 0)..(from + 1, 0))
            .map(|(&(_, s), (e, src))| (s, *e, src.clone()))
            .collect();
        for (s, e, src) in copies {
            self.ranges.insert((to, s), (e, src));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    const P: u64 = PAGE;

    fn files(n: usize) -> Vec<Arc<File>> {
        (0..n)
            .map(|_| Arc::new(File::open("/dev/null").expect("open /dev/null")))
            .collect()
    }

    fn src(file: &Arc<File>, offset: u64, file_end: u64) -> Source {
        Source {
            file: file.clone(),
            offset,
            file_end,
            prot: 5,
        }
    }

    #[test]
    fn a_segment_reads_its_file_until_unmapped() {
        let f = files(1);
        let mut m = Filed::default();
        m.insert(1, 0x10000, 0x14000, src(&f[0], 0x3000, 0x13800));
        let p = m.at(1, 0x12000).unwrap();
        assert_eq!((p.start, p.end), (0x12000, 0x14000));
        assert_eq!(p.file_part(0x12000), (0x5000, P));
        // The last page has half a page of the file, then zeros.
        assert_eq!(p.file_part(0x13000), (0x6000, 0x800));
        assert!(m.at(1, 0x14000).is_none());
        assert!(m.at(2, 0x12000).is_none());
        m.remove(1, 0x11000, 0x12000);
        assert!(m.at(1, 0x11000).is_none());
        // The part after the hole keeps its offset in the file.
        assert_eq!(m.at(1, 0x12000).unwrap().file_part(0x12000).0, 0x5000);
        assert_eq!(m.at(1, 0x10000).unwrap().end, 0x11000);
        m.clear(1);
        assert!(m.at(1, 0x10000).is_none() && m.at(1, 0x13000).is_none());
    }

    #[test]
    fn within_lists_the_pieces_of_a_range_and_leaves_them() {
        let f = files(2);
        let mut m = Filed::default();
        m.insert(3, 0x10000, 0x12000, src(&f[0], 0, 0x12000));
        m.insert(3, 0x20000, 0x24000, src(&f[1], 0x8000, 0x24000));
        let w = m.within(3, 0x11000, 0x22000);
        assert_eq!(w.len(), 2);
        assert_eq!(
            (w[0].start, w[0].end, w[0].source.offset),
            (0x11000, 0x12000, 0x1000)
        );
        assert_eq!(
            (w[1].start, w[1].end, w[1].source.offset),
            (0x20000, 0x22000, 0x8000)
        );
        assert!(Arc::ptr_eq(&w[1].source.file, &f[1]));
        assert!(m.at(3, 0x23000).is_some() && m.at(3, 0x10000).is_some());
        assert!(m.within(3, 0x12000, 0x20000).is_empty());
    }

    #[test]
    fn a_child_inherits_and_a_protection_splits() {
        let f = files(1);
        let mut m = Filed::default();
        m.insert(1, 0x10000, 0x14000, src(&f[0], 0, 0x14000));
        m.inherit(1, 2);
        m.set_prot(1, 0x11000, 0x12000, 0);
        assert_eq!(m.at(1, 0x11000).unwrap().source.prot, 0);
        assert_eq!(m.at(1, 0x12000).unwrap().source.prot, 5);
        assert_eq!(m.at(1, 0x12000).unwrap().source.offset, 0x2000);
        assert_eq!(m.at(2, 0x11000).unwrap().source.prot, 5);
        m.clear(1);
        assert!(m.at(2, 0x13000).is_some());
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u64, u64, u64, usize, u64),
        Remove(u64, u64, u64),
        SetProt(u64, u64, u64, u32),
        Clear(u64),
        Inherit(u64, u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let slot = 0u64..3;
        let page = 0u64..24;
        prop_oneof![
            (slot.clone(), page.clone(), 1u64..8, 0usize..3, 0u64..64)
                .prop_map(|(s, a, n, f, o)| Op::Insert(s, a, a + n, f, o)),
            (slot.clone(), page.clone(), 1u64..8).prop_map(|(s, a, n)| Op::Remove(s, a, a + n)),
            (slot.clone(), page.clone(), 1u64..8, 0u32..6).prop_map(|(s, a, n, p)| Op::SetProt(
                s,
                a,
                a + n,
                p
            )),
            slot.clone().prop_map(Op::Clear),
            (slot.clone(), slot).prop_map(|(a, b)| Op::Inherit(a, b)),
        ]
    }

    proptest! {
        /// Against a map of pages: each page of each slot reads the file,
        /// the offset and the protection the last operation on it gave.
        #[test]
        fn ranges_follow_a_map_of_pages(ops in proptest::collection::vec(op(), 1..40)) {
            let f = files(3);
            let mut m = Filed::default();
            // (slot, page) -> (file, file page, prot)
            let mut model: HashMap<(u64, u64), (usize, u64, u32)> = HashMap::new();
            for op in ops {
                match op {
                    Op::Insert(s, a, b, fi, o) => {
                        m.insert(s, a * P, b * P, src(&f[fi], o * P, b * P));
                        for (i, q) in (a..b).enumerate() {
                            model.insert((s, q), (fi, o + i as u64, 5));
                        }
                    }
                    Op::Remove(s, a, b) => {
                        m.remove(s, a * P, b * P);
                        for q in a..b {
                            model.remove(&(s, q));
                        }
                    }
                    Op::SetProt(s, a, b, p) => {
                        m.set_prot(s, a * P, b * P, p);
                        for q in a..b {
                            if let Some(v) = model.get_mut(&(s, q)) {
                                v.2 = p;
                            }
                        }
                    }
                    Op::Clear(s) => {
                        m.clear(s);
                        model.retain(|k, _| k.0 != s);
                    }
                    Op::Inherit(a, b) => {
                        m.inherit(a, b);
                        if a != b {
                            model.retain(|k, _| k.0 != b);
                            let copies: Vec<_> = model
                                .iter()
                                .filter(|(k, _)| k.0 == a)
                                .map(|(k, v)| ((b, k.1), *v))
                                .collect();
                            model.extend(copies);
                        }
                    }
                }
                for s in 0..3 {
                    for q in 0..40 {
                        let got = m.at(s, q * P).map(|p| {
                            let fi = f.iter().position(|x| Arc::ptr_eq(x, &p.source.file)).unwrap();
                            (fi, p.source.offset / P, p.source.prot)
                        });
                        prop_assert_eq!(got, model.get(&(s, q)).copied(), "slot {} page {}", s, q);
                        let w = m.within(s, q * P, (q + 1) * P);
                        prop_assert_eq!(w.len(), usize::from(model.contains_key(&(s, q))));
                    }
                }
            }
        }
    }
}
