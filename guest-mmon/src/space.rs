//! One process's virtual address space: its VMAs and its program break,
//! with the Linux semantics a process relies on.
//!
//! Addresses are page-aligned where Linux requires it (EINVAL otherwise),
//! lengths are rounded up to pages, and every call either succeeds or
//! changes nothing.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::PAGE;

pub const PROT_READ: u32 = 1;
pub const PROT_WRITE: u32 = 2;
pub const PROT_EXEC: u32 = 4;
const PROT_ALL: u32 = PROT_READ | PROT_WRITE | PROT_EXEC;
/// The most VMAs a space holds: Linux's vm.max_map_count default. An
/// mmap, munmap or mprotect that would make more (a new one, or one split
/// in parts) fails with ENOMEM, as Linux's do; without the bound a
/// program's runaway mappings would fill the memory component's own
/// memory instead. (Adjacent VMAs of one protection are one here, so a
/// process of many file mappings reaches it later than on Linux.)
pub const MAX_MAP_COUNT: usize = 65530;

/// Errors, named for the errno Linux returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemError {
    /// EINVAL: misaligned, zero length, bad protection bits.
    Invalid,
    /// ENOMEM: no room, or (mprotect, munmap of mremap) the range is not mapped.
    NoMemory,
    /// EFAULT: an access outside every VMA (the processor makes it SIGSEGV).
    NotMapped,
    /// EACCES: an access the VMA's protection does not allow (SIGSEGV too).
    Permission,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: u32,
}

/// A range of virtual memory that was unmapped (its pages' frames must be freed).
pub type Range = (u64, u64);

/// What mremap did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remapped {
    /// Where the mapping is now.
    pub addr: u64,
    /// Pages that moved: (from, to, bytes).
    pub moved: Option<(u64, u64, u64)>,
    /// Ranges given back (shrinking).
    pub freed: Vec<Range>,
}

#[derive(Clone)]
pub struct AddressSpace {
    /// start -> VMA, non-overlapping.
    vmas: BTreeMap<u64, Vma>,
    /// The lowest address the space manages and one past the highest.
    low: u64,
    high: u64,
    /// Where the heap starts (the end of the loaded program) and ends now.
    brk_start: u64,
    brk: u64,
    /// Where top-down mmap starts looking (Linux's mmap_base): below the
    /// main stack's room, so a stack that overflows faults instead of
    /// running into a mapping.
    mmap_base: u64,
}

fn page_up(x: u64) -> Option<u64> {
    x.checked_add(PAGE - 1).map(|v| v & !(PAGE - 1))
}

impl AddressSpace {
    /// A space managing [low, high), with the heap starting at `brk_start`.
    pub fn new(low: u64, high: u64, brk_start: u64) -> AddressSpace {
        let brk_start = page_up(brk_start).unwrap_or(high).clamp(low, high);
        AddressSpace {
            vmas: BTreeMap::new(),
            low,
            high,
            brk_start,
            brk: brk_start,
            mmap_base: high,
        }
    }

    /// Top-down mmap starts at `base` (clamped into the space) instead of
    /// the end of the space.
    pub fn set_mmap_base(&mut self, base: u64) {
        self.mmap_base = (base & !(PAGE - 1)).clamp(self.low, self.high);
    }

    pub fn vmas(&self) -> impl Iterator<Item = &Vma> {
        self.vmas.values()
    }

    /// One past the highest address the space manages.
    pub fn high(&self) -> u64 {
        self.high
    }

    /// Whether every page of [start, end) lies in a VMA.
    pub fn covers(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        while at < end {
            match self.find(at) {
                Some(v) => at = v.end,
                None => return false,
            }
        }
        true
    }

    /// The VMA containing `addr`.
    pub fn find(&self, addr: u64) -> Option<&Vma> {
        self.vmas
            .range(..=addr)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| addr < v.end)
    }

    /// Whether a read (or write) of `addr` is allowed. As on x86 Linux,
    /// any access right lets a page be read: the page tables cannot say
    /// write-only or execute-only (an instruction fetch from a PROT_EXEC
    /// page is a read here; LTP mprotect04 runs code there).
    pub fn check(&self, addr: u64, write: bool) -> Result<&Vma, MemError> {
        let vma = self.find(addr).ok_or(MemError::NotMapped)?;
        let need = if write { PROT_WRITE } else { PROT_ALL };
        if vma.prot & need == 0 {
            return Err(MemError::Permission);
        }
        Ok(vma)
    }

    /// The VMAs that overlap [start, end), in address order: the one
    /// begun before `start` that reaches into it, then those begun inside.
    /// A look at the range only, never a walk over every VMA below it
    /// (a process may hold 65530 of them).
    fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = &Vma> {
        // An empty range meets nothing (a cut there would split the VMA
        // around it: mremap to the same size did).
        let before = self
            .vmas
            .range(..start)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| v.end > start && start < end);
        let inside = self.vmas.range(start..end.max(start)).map(|(_, v)| v);
        before.into_iter().chain(inside)
    }

    /// How many VMAs a change of [start, end) adds by splitting those
    /// that straddle its ends: to `prot` (mprotect, a fixed mmap), each
    /// end inside a VMA of another protection is a split; unmapping
    /// (`None`) splits only a VMA that holds the whole range inside it.
    fn splits(&self, start: u64, end: u64, prot: Option<u32>) -> usize {
        if start >= end {
            return 0;
        }
        let differs = |v: &&Vma| prot.is_none_or(|p| p != v.prot);
        let head = self.find(start).filter(|v| v.start < start).filter(differs);
        let tail = end
            .checked_sub(1)
            .and_then(|last| self.find(last))
            .filter(|v| v.end > end)
            .filter(differs);
        match prot {
            None => usize::from(head.zip(tail).is_some_and(|(h, t)| h.start == t.start)),
            Some(_) => usize::from(head.is_some()) + usize::from(tail.is_some()),
        }
    }

    /// ENOMEM if `more` VMAs would take the space past [`MAX_MAP_COUNT`].
    fn room_for(&self, more: usize) -> Result<(), MemError> {
        if self.vmas.len().saturating_add(more) > MAX_MAP_COUNT {
            return Err(MemError::NoMemory);
        }
        Ok(())
    }

    /// Whether anything in [start, end) is mapped.
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        self.vmas
            .range(..end)
            .next_back()
            .is_some_and(|(_, v)| v.end > start)
    }

    fn fully_mapped(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        for v in self.overlapping(start, end) {
            if v.start > at {
                return false;
            }
            at = v.end;
            if at >= end {
                return true;
            }
        }
        at >= end
    }

    /// Removes [start, end) from every VMA, splitting where needed.
    fn cut(&mut self, start: u64, end: u64) {
        let hit: Vec<Vma> = self.overlapping(start, end).copied().collect();
        for v in hit {
            self.vmas.remove(&v.start);
            if v.start < start {
                self.vmas.insert(v.start, Vma { end: start, ..v });
            }
            if v.end > end {
                self.vmas.insert(end, Vma { start: end, ..v });
            }
        }
    }

    /// Joins VMAs that touch and have the same protection, around [start, end).
    fn merge_around(&mut self, start: u64, end: u64) {
        let from = self
            .vmas
            .range(..start)
            .next_back()
            .map_or(start, |(k, _)| *k);
        let keys: Vec<u64> = self.vmas.range(from..=end).map(|(k, _)| *k).collect();
        let mut prev: Option<Vma> = None;
        for k in keys {
            let Some(v) = self.vmas.get(&k).copied() else {
                continue;
            };
            if let Some(p) = prev {
                if p.end == v.start && p.prot == v.prot {
                    self.vmas.remove(&v.start);
                    let joined = Vma { end: v.end, ..p };
                    self.vmas.insert(p.start, joined);
                    prev = Some(joined);
                    continue;
                }
            }
            prev = Some(v);
        }
    }

    fn insert(&mut self, start: u64, end: u64, prot: u32) {
        self.vmas.insert(start, Vma { start, end, prot });
        self.merge_around(start, end);
    }

    /// A free range of `len` bytes, highest first from the mmap base down
    /// to the heap's reach (like Linux's top-down mmap layout).
    fn find_free(&self, len: u64) -> Option<u64> {
        let mut top = self.mmap_base;
        for (_, v) in self.vmas.range(..self.mmap_base).rev() {
            if v.end <= top && top - v.end >= len && top - len >= self.brk {
                return Some(top - len);
            }
            top = top.min(v.start);
        }
        (top >= len && top - len >= self.brk.max(self.low)).then(|| top - len)
    }

    /// Anonymous mmap. With `fixed`, maps exactly at `addr` (replacing what
    /// was there); otherwise `addr` is a hint used if the range is free.
    pub fn mmap(&mut self, addr: u64, len: u64, prot: u32, fixed: bool) -> Result<u64, MemError> {
        if len == 0 || prot & !PROT_ALL != 0 || addr % PAGE != 0 {
            return Err(MemError::Invalid);
        }
        let len = page_up(len).ok_or(MemError::NoMemory)?;
        let fits = |a: u64| a >= self.low && a.checked_add(len).is_some_and(|e| e <= self.high);
        let start = if fixed {
            if !fits(addr) {
                return Err(if addr.checked_add(len).is_none() {
                    MemError::Invalid
                } else {
                    MemError::NoMemory
                });
            }
            self.room_for(1 + self.splits(addr, addr + len, Some(prot)))?;
            self.cut(addr, addr + len);
            addr
        } else if addr != 0 && fits(addr) && !self.overlaps(addr, addr + len) {
            addr
        } else {
            self.find_free(len).ok_or(MemError::NoMemory)?
        };
        if !fixed {
            self.room_for(1)?;
        }
        self.insert(start, start + len, prot);
        Ok(start)
    }

    /// munmap: any part of the range may be unmapped already. Returns the
    /// ranges that were mapped (their frames are freed by the caller).
    pub fn munmap(&mut self, addr: u64, len: u64) -> Result<Vec<Range>, MemError> {
        if addr % PAGE != 0 || len == 0 {
            return Err(MemError::Invalid);
        }
        let end = page_up(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or(MemError::Invalid)?;
        self.room_for(self.splits(addr, end, None))?;
        let removed = self.mapped_parts(addr, end);
        self.cut(addr, end);
        Ok(removed)
    }

    fn mapped_parts(&self, start: u64, end: u64) -> Vec<Range> {
        self.overlapping(start, end)
            .map(|v| (v.start.max(start), v.end.min(end)))
            .collect()
    }

    /// The VMAs in [start, end), clipped to it, in address order.
    pub fn clipped(&self, start: u64, end: u64) -> Vec<Vma> {
        self.overlapping(start, end)
            .map(|v| Vma {
                start: v.start.max(start),
                end: v.end.min(end),
                prot: v.prot,
            })
            .collect()
    }

    /// Makes the VMAs in [start, end) exactly `vmas` (each is clipped to
    /// the range; empty ones are skipped). A vRegion's owner applies its
    /// home's changes with this. Returns the parts of the range left
    /// unmapped, whose frames the caller frees.
    pub fn replace(&mut self, start: u64, end: u64, vmas: &[Vma]) -> Vec<Range> {
        self.cut(start, end);
        let mut gaps = Vec::new();
        let mut at = start;
        for v in vmas {
            let (a, b) = (v.start.max(at), v.end.min(end));
            if a >= b || v.prot & !PROT_ALL != 0 {
                continue;
            }
            if a > at {
                gaps.push((at, a));
            }
            self.insert(a, b, v.prot);
            at = b;
        }
        if at < end {
            gaps.push((at, end));
        }
        gaps
    }

    /// Whether the space has no VMA at all.
    pub fn is_empty(&self) -> bool {
        self.vmas.is_empty()
    }

    /// mprotect: the whole range must be mapped (ENOMEM otherwise).
    pub fn mprotect(&mut self, addr: u64, len: u64, prot: u32) -> Result<(), MemError> {
        if addr % PAGE != 0 || prot & !PROT_ALL != 0 {
            return Err(MemError::Invalid);
        }
        if len == 0 {
            return Ok(());
        }
        let end = page_up(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or(MemError::NoMemory)?;
        if !self.fully_mapped(addr, end) {
            return Err(MemError::NoMemory);
        }
        self.room_for(self.splits(addr, end, Some(prot)))?;
        self.cut(addr, end);
        self.insert(addr, end, prot);
        Ok(())
    }

    /// The current program break.
    pub fn brk_now(&self) -> u64 {
        self.brk
    }

    /// brk: moves the break (page-granular heap VMA, read-write). Like
    /// Linux, it returns the break in force: the old one on failure. Pages
    /// given back when it shrinks are returned as ranges to free.
    pub fn brk(&mut self, new: u64) -> (u64, Vec<Range>) {
        if new < self.brk_start || new > self.high {
            return (self.brk, Vec::new());
        }
        let (old_end, new_end) = (
            page_up(self.brk).unwrap_or(self.brk),
            page_up(new).unwrap_or(new),
        );
        let mut freed = Vec::new();
        if new_end > old_end {
            if self.overlaps(old_end, new_end) {
                return (self.brk, Vec::new());
            }
            self.insert(old_end, new_end, PROT_READ | PROT_WRITE);
        } else if new_end < old_end {
            freed = self.mapped_parts(new_end, old_end);
            self.cut(new_end, old_end);
        }
        self.brk = new;
        (self.brk, freed)
    }

    /// mremap of the mapping at [old, old + old_len): shrinking unmaps the
    /// tail; growing extends in place if the pages after it are free, else
    /// moves it if `may_move`.
    pub fn mremap(
        &mut self,
        old: u64,
        old_len: u64,
        new_len: u64,
        may_move: bool,
    ) -> Result<Remapped, MemError> {
        if old % PAGE != 0 || new_len == 0 {
            return Err(MemError::Invalid);
        }
        let old_len = page_up(old_len).ok_or(MemError::Invalid)?;
        let new_len = page_up(new_len).ok_or(MemError::Invalid)?;
        let old_end = old.checked_add(old_len).ok_or(MemError::Invalid)?;
        // The old range must lie in one VMA.
        let vma = *self.find(old).ok_or(MemError::NotMapped)?;
        if old_len == 0 || old_end > vma.end {
            return Err(MemError::NotMapped);
        }
        if new_len <= old_len {
            // A cut inside the VMA leaves its tail as one more.
            self.room_for(self.splits(old + new_len, old_end, None))?;
            let freed = self.mapped_parts(old + new_len, old_end);
            self.cut(old + new_len, old_end);
            return Ok(Remapped {
                addr: old,
                moved: None,
                freed,
            });
        }
        let grow_end = old.checked_add(new_len).ok_or(MemError::NoMemory)?;
        if grow_end <= self.high && !self.overlaps(old_end, grow_end) {
            self.insert(old_end, grow_end, vma.prot);
            return Ok(Remapped {
                addr: old,
                moved: None,
                freed: Vec::new(),
            });
        }
        if !may_move {
            return Err(MemError::NoMemory);
        }
        // Move: take the old range out first so its space can be reused
        // (a hole in the VMA is one more, the new place another).
        self.room_for(self.splits(old, old_end, None) + 1)?;
        self.cut(old, old_end);
        match self.find_free(new_len) {
            Some(to) => {
                self.insert(to, to + new_len, vma.prot);
                Ok(Remapped {
                    addr: to,
                    moved: Some((old, to, old_len)),
                    freed: Vec::new(),
                })
            }
            None => {
                self.insert(old, old_end, vma.prot);
                Err(MemError::NoMemory)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap as Model;

    const LOW: u64 = 0x10_0000;
    const HIGH: u64 = 0x10_0000 + 256 * PAGE;
    const RW: u32 = PROT_READ | PROT_WRITE;

    fn space() -> AddressSpace {
        AddressSpace::new(LOW, HIGH, LOW + 16 * PAGE)
    }

    /// The space page by page, as the model keeps it.
    fn pages(s: &AddressSpace) -> Model<u64, u32> {
        let mut m = Model::new();
        for v in s.vmas() {
            let mut a = v.start;
            while a < v.end {
                m.insert(a / PAGE, v.prot);
                a += PAGE;
            }
        }
        m
    }

    fn invariants(s: &AddressSpace) {
        let v: Vec<Vma> = s.vmas().copied().collect();
        for w in v.windows(2) {
            assert!(w[0].end <= w[1].start, "overlap {w:?}");
            assert!(
                !(w[0].end == w[1].start && w[0].prot == w[1].prot),
                "unmerged {w:?}"
            );
        }
        for x in &v {
            assert!(
                x.start < x.end && x.start % PAGE == 0 && x.end % PAGE == 0,
                "{x:?}"
            );
            assert!(x.start >= LOW && x.end <= HIGH, "{x:?}");
        }
    }

    #[test]
    fn top_down_mmap_starts_at_the_mmap_base() {
        let mut s = space();
        s.set_mmap_base(HIGH - 64 * PAGE);
        // The main stack's room above the base is left alone...
        let a = s.mmap(0, 2 * PAGE, RW, false).unwrap();
        assert_eq!(a, HIGH - 66 * PAGE);
        // ...but a fixed mapping or a free hint may go there.
        assert_eq!(
            s.mmap(HIGH - 8 * PAGE, 8 * PAGE, RW, true),
            Ok(HIGH - 8 * PAGE)
        );
        assert_eq!(
            s.mmap(HIGH - 20 * PAGE, PAGE, RW, false),
            Ok(HIGH - 20 * PAGE)
        );
        assert_eq!(s.mmap(0, PAGE, RW, false), Ok(HIGH - 67 * PAGE));
        invariants(&s);
    }

    #[test]
    fn linux_examples() {
        let mut s = space();
        let a = s.mmap(0, 3 * PAGE, RW, false).unwrap();
        assert_eq!(a, HIGH - 3 * PAGE, "top-down");
        // A partial munmap splits the VMA.
        assert_eq!(
            s.munmap(a + PAGE, PAGE).unwrap(),
            vec![(a + PAGE, a + 2 * PAGE)]
        );
        assert_eq!(s.check(a, true).map(|v| v.end), Ok(a + PAGE));
        assert_eq!(s.check(a + PAGE, false), Err(MemError::NotMapped));
        // mprotect over a hole fails and changes nothing.
        assert_eq!(s.mprotect(a, 3 * PAGE, PROT_READ), Err(MemError::NoMemory));
        assert_eq!(s.check(a, true).map(|v| v.prot), Ok(RW));
        assert_eq!(s.mprotect(a, PAGE, PROT_READ), Ok(()));
        assert_eq!(s.check(a, true), Err(MemError::Permission));
        // Execute-only and write-only pages read, as on x86.
        assert_eq!(s.mprotect(a, PAGE, PROT_EXEC), Ok(()));
        assert!(s.check(a, false).is_ok() && s.check(a, true).is_err());
        assert_eq!(s.mprotect(a, PAGE, PROT_WRITE), Ok(()));
        assert!(s.check(a, false).is_ok() && s.check(a, true).is_ok());
        assert_eq!(s.mprotect(a, PAGE, 0), Ok(()));
        assert_eq!(s.check(a, false), Err(MemError::Permission));
        assert_eq!(s.mprotect(a, PAGE, PROT_READ), Ok(()));
        // Misaligned or empty requests.
        assert_eq!(s.mmap(1, PAGE, RW, true), Err(MemError::Invalid));
        assert_eq!(s.mmap(0, 0, RW, false), Err(MemError::Invalid));
        assert_eq!(s.munmap(a + 1, PAGE), Err(MemError::Invalid));
        // brk grows and shrinks; below its start it fails with the old break.
        let b0 = s.brk_now();
        assert_eq!(s.brk(b0 + 10).0, b0 + 10);
        assert!(s.check(b0, true).is_ok());
        assert_eq!(s.brk(b0 - PAGE).0, b0 + 10);
        let (b, freed) = s.brk(b0);
        assert_eq!((b, freed), (b0, vec![(b0, b0 + PAGE)]));
        assert_eq!(s.check(b0, false), Err(MemError::NotMapped));
    }

    #[test]
    fn the_vma_count_stops_at_linuxs_bound() {
        // Alternating protections, so that no two VMAs merge.
        let mut s = AddressSpace::new(LOW, LOW + 4 * MAX_MAP_COUNT as u64 * PAGE, LOW);
        let prot = |i: u64| if i % 2 == 0 { RW } else { PROT_READ };
        let mut i = 0;
        while s.mmap(LOW + i * PAGE * 3, 3 * PAGE, prot(i), true).is_ok() {
            i += 1;
        }
        assert_eq!(s.vmas().count(), MAX_MAP_COUNT);
        let a = LOW + 2 * 3 * PAGE;
        // Full: splitting one in three parts, or a new one, is ENOMEM.
        assert_eq!(s.munmap(a + PAGE, PAGE), Err(MemError::NoMemory));
        assert_eq!(
            s.mprotect(a + PAGE, PAGE, PROT_READ),
            Err(MemError::NoMemory)
        );
        assert_eq!(s.mmap(0, PAGE, RW, false), Err(MemError::NoMemory));
        // mremap too: a shrink that leaves a tail, a move out of a middle;
        // the same size changes nothing and goes.
        let c = LOW + 4 * 3 * PAGE;
        assert_eq!(
            s.mremap(c, 2 * PAGE, PAGE, false).err(),
            Some(MemError::NoMemory)
        );
        assert_eq!(
            s.mremap(c + PAGE, PAGE, 2 * PAGE, true).err(),
            Some(MemError::NoMemory)
        );
        assert_eq!(s.mremap(c, PAGE, PAGE, false).map(|m| m.addr), Ok(c));
        assert_eq!(s.vmas().count(), MAX_MAP_COUNT);
        // What adds none goes on: a whole VMA's protection, an end cut off,
        // a range of the same protection, and unmapping whole ones.
        assert_eq!(s.mprotect(a, 3 * PAGE, PROT_READ), Ok(()));
        assert_eq!(s.mprotect(a + PAGE, PAGE, PROT_READ), Ok(()));
        assert_eq!(s.munmap(a + 2 * PAGE, PAGE).map(|r| r.len()), Ok(1));
        assert!(s.munmap(a, 2 * PAGE).is_ok());
        // With room again, a split is allowed.
        let b = LOW + 10 * 3 * PAGE;
        assert!(s.munmap(b + PAGE, PAGE).is_ok());
        assert_eq!(s.vmas().count(), MAX_MAP_COUNT);
    }

    #[test]
    fn mremap_grows_in_place_moves_and_shrinks() {
        let mut s = space();
        let a = s.mmap(LOW + 100 * PAGE, 2 * PAGE, RW, true).unwrap();
        assert_eq!(
            s.mremap(a, 2 * PAGE, 4 * PAGE, false).unwrap().addr,
            a,
            "in place"
        );
        s.mmap(a + 4 * PAGE, PAGE, PROT_READ, true).unwrap();
        assert_eq!(
            s.mremap(a, 4 * PAGE, 8 * PAGE, false),
            Err(MemError::NoMemory)
        );
        let r = s.mremap(a, 4 * PAGE, 8 * PAGE, true).unwrap();
        let to = r.addr;
        assert_ne!(to, a);
        assert_eq!(r.moved, Some((a, to, 4 * PAGE)));
        assert_eq!(s.check(a, false), Err(MemError::NotMapped));
        assert!(s.check(to + 7 * PAGE, true).is_ok());
        let r = s.mremap(to, 8 * PAGE, 3 * PAGE, false).unwrap();
        assert_eq!(
            (r.addr, r.freed),
            (to, vec![(to + 3 * PAGE, to + 8 * PAGE)])
        );
        invariants(&s);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Map {
            page: u64,
            n: u64,
            prot: u32,
            fixed: bool,
        },
        Unmap {
            page: u64,
            n: u64,
        },
        Protect {
            page: u64,
            n: u64,
            prot: u32,
        },
        Brk {
            pages: u64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        let page = 0u64..260;
        let n = 1u64..20;
        let prot = 0u32..8;
        prop_oneof![
            (page.clone(), n.clone(), prot.clone(), any::<bool>()).prop_map(
                |(page, n, prot, fixed)| Op::Map {
                    page,
                    n,
                    prot,
                    fixed
                }
            ),
            (page.clone(), n.clone()).prop_map(|(page, n)| Op::Unmap { page, n }),
            (page, n, prot).prop_map(|(page, n, prot)| Op::Protect { page, n, prot }),
            (0u64..40).prop_map(|pages| Op::Brk { pages }),
        ]
    }

    proptest! {
        /// Sequences of calls against a model that keeps one protection per
        /// page, with Linux's rules written out plainly.
        #[test]
        fn matches_a_page_model(ops in proptest::collection::vec(op(), 1..40)) {
            let mut s = space();
            let mut model: Model<u64, u32> = Model::new();
            let low_page = LOW / PAGE;
            let high_page = HIGH / PAGE;
            let brk_start = LOW + 16 * PAGE;
            let mut brk = brk_start;
            for op in ops {
                match op {
                    Op::Map { page, n, prot, fixed } => {
                        let addr = (low_page + page) * PAGE;
                        let got = s.mmap(if fixed { addr } else { 0 }, n * PAGE, prot, fixed);
                        if fixed {
                            let ok = low_page + page + n <= high_page;
                            prop_assert_eq!(got.is_ok(), ok, "{:?}", got);
                            if ok {
                                for p in low_page + page..low_page + page + n { model.insert(p, prot); }
                            }
                        } else if let Ok(a) = got {
                            for p in a / PAGE..a / PAGE + n {
                                prop_assert!(!model.contains_key(&p), "mmap reused a mapped page");
                                model.insert(p, prot);
                            }
                        }
                    }
                    Op::Unmap { page, n } => {
                        let addr = (low_page + page) * PAGE;
                        let removed = s.munmap(addr, n * PAGE).unwrap();
                        let was: u64 = removed.iter().map(|(a, b)| (b - a) / PAGE).sum();
                        let mut count = 0;
                        for p in low_page + page..low_page + page + n {
                            if model.remove(&p).is_some() { count += 1; }
                        }
                        prop_assert_eq!(was, count);
                    }
                    Op::Protect { page, n, prot } => {
                        let start = low_page + page;
                        let all = (start..start + n).all(|p| model.contains_key(&p));
                        let got = s.mprotect(start * PAGE, n * PAGE, prot);
                        prop_assert_eq!(got.is_ok(), all, "{:?}", got);
                        if all { for p in start..start + n { model.insert(p, prot); } }
                    }
                    Op::Brk { pages } => {
                        let new = brk_start + pages * PAGE;
                        let old_end = brk;
                        let grow_free = (old_end / PAGE..new / PAGE).all(|p| !model.contains_key(&p));
                        let (now, _) = s.brk(new);
                        if new <= old_end || grow_free {
                            prop_assert_eq!(now, new);
                            if new > old_end { for p in old_end / PAGE..new / PAGE { model.insert(p, RW); } }
                            else { for p in new / PAGE..old_end / PAGE { model.remove(&p); } }
                            brk = new;
                        } else {
                            prop_assert_eq!(now, old_end);
                        }
                    }
                }
                invariants(&s);
                prop_assert_eq!(pages(&s), model.clone());
            }
        }
    }
}
