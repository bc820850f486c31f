//! Shared anonymous memory (`MAP_SHARED | MAP_ANONYMOUS`, `MAP_SHARED` of
//! /dev/zero), shared between a process and the children it forks, as
//! PostgreSQL, nginx, Apache's scoreboard and process-shared semaphores
//! use it.
//!
//! Each mapping is an object in a hidden holder address space (made at the
//! first such mmap, in a window slot of its own, homed where the caller
//! is; gone with its last object). The mapper's own range is an ordinary
//! anonymous mapping at its memory component (so /proc/self/maps, munmap
//! and mprotect are checked there as for any mapping), but its page-table
//! entries point at the holder's pages (`pmon::anon`), and so do a forked
//! child's. Every process of a program runs on this processor, so all of
//! them reach the same page of the one ExCache: a store is seen at once,
//! and atomics and futexes work between the processes. An object is
//! unmapped from the holder when no space shows any of it any more.
//!
//! Decided: mremap may shrink such a mapping in place; moving or growing
//! it is EINVAL (Linux can). Protection is enforced by the CPU through the
//! page tables (the holder's mapping is read-write).

use super::super::uaccess::UserSpace;
use super::*;

/// The futex key space for words of shared anonymous memory: waiters in
/// any process meet on the holder's address.
const HOLDER_FUTEX_SPACE: u32 = u32::MAX;

/// The holder of every shared anonymous object.
pub struct AnonHolder {
    /// Its address-space id.
    pub space: u32,
    pub slot: u32,
    /// Object start -> length, in the holder.
    pub objects: BTreeMap<u64, u64>,
}

impl Kernel {
    /// Makes [a, a + len) of `space` (just mapped there, anonymous) shared
    /// memory: a new object, which the range then shows.
    pub(super) fn map_shared_anon(
        &mut self,
        space: u32,
        a: u64,
        len: u64,
        prot: u32,
    ) -> Result<(), Errno> {
        let end = range_end(a, len);
        let len = end - a;
        let holder = self.anon_holder()?;
        let made = self.spaces.get_mut(&holder.0).ok_or(ENOMEM).and_then(|e| {
            let at = e.space.call(MemRequest {
                op: OP_MMAP,
                len,
                prot: 3,
                ..Default::default()
            })?;
            // The holder's vRegions need their memslots at the VMM: the
            // mappers' accesses land there.
            if let Err(err) = e.space.prepare(at, len) {
                let _ = e.space.call(MemRequest {
                    op: OP_MUNMAP,
                    addr: at,
                    len,
                    ..Default::default()
                });
                return Err(err);
            }
            Ok(at)
        });
        let at = match made {
            Ok(at) => at,
            Err(e) => {
                self.gc_shared_anon();
                return Err(e);
            }
        };
        if let Some(h) = self.anon.as_mut() {
            h.objects.insert(at, len);
        }
        let remapped = match self.spaces.get_mut(&space) {
            Some(e) => {
                e.space.holder_slot = holder.1;
                e.space.redirects.insert(a, end, at, at, prot);
                e.space.remap(a, end)
            }
            None => Err(ESRCH),
        };
        if let Err(e) = remapped {
            self.unshare_anon(space, a, end);
            self.gc_shared_anon();
            return Err(e);
        }
        self.flush_tlb(space);
        Ok(())
    }

    /// [start, end) of `space` stops showing shared anonymous memory
    /// (munmap, a mapping put over it, the space going).
    pub(in crate::kernel) fn unshare_anon(&mut self, space: u32, start: u64, end: u64) {
        let Some(e) = self.spaces.get_mut(&space) else {
            return;
        };
        if !e.space.redirects.meets(start, end) {
            return;
        }
        for (s, t) in e.space.redirects.remove(start, end) {
            // The entries go back to the space's own pages, which the
            // memory component now says are unmapped or something new.
            let _ = e.space.remap(s, t);
        }
        self.flush_tlb(space);
        self.gc_shared_anon();
    }

    /// mprotect of [start, end) of `space` succeeded: its shared pages
    /// take `prot` in the page tables.
    pub(super) fn protect_shared_anon(&mut self, space: u32, start: u64, end: u64, prot: u32) {
        let Some(e) = self.spaces.get_mut(&space) else {
            return;
        };
        let changed = e.space.redirects.protect(start, end, prot);
        if changed.is_empty() {
            return;
        }
        for (s, t) in changed {
            let _ = e.space.remap(s, t);
        }
        self.flush_tlb(space);
    }

    /// Whether [start, end) of `space` meets shared anonymous memory.
    pub(super) fn meets_shared_anon(&self, space: u32, start: u64, end: u64) -> bool {
        self.spaces
            .get(&space)
            .is_some_and(|e| e.space.redirects.meets(start, end))
    }

    /// A forked child shows the same shared pages as its parent.
    pub(super) fn fork_shared_anon(&mut self, from: u32, to: u32) {
        let Some((redirects, slot)) = self
            .spaces
            .get(&from)
            .map(|e| (e.space.redirects.clone(), e.space.holder_slot))
        else {
            return;
        };
        if redirects.is_empty() {
            return;
        }
        if let Some(e) = self.spaces.get_mut(&to) {
            e.space.holder_slot = slot;
            e.space.redirects = redirects.clone();
            for p in redirects.pieces() {
                let _ = e.space.remap(p.start, p.end);
            }
        }
        self.flush_tlb(to);
    }

    /// Unmaps the objects no space shows any more; the holder goes with
    /// the last.
    pub(in crate::kernel) fn gc_shared_anon(&mut self) {
        let Some(h) = self.anon.as_ref() else {
            return;
        };
        let holder = h.space;
        let unused: Vec<(u64, u64)> = h
            .objects
            .iter()
            .filter(|(&at, _)| !self.spaces.values().any(|e| e.space.redirects.uses(at)))
            .map(|(&at, &len)| (at, len))
            .collect();
        for (at, len) in unused {
            if let Some(e) = self.spaces.get_mut(&holder) {
                let _ = e.space.call(MemRequest {
                    op: OP_MUNMAP,
                    addr: at,
                    len,
                    ..Default::default()
                });
            }
            if let Some(h) = self.anon.as_mut() {
                h.objects.remove(&at);
            }
        }
        if self.anon.as_ref().is_some_and(|h| h.objects.is_empty()) {
            self.anon = None;
            self.drop_space(holder);
        }
    }

    /// The futex key of `uaddr` in `space`: shared memory's words meet in
    /// every process that shows them.
    pub(in crate::kernel) fn futex_key(&self, space: u32, uaddr: u64) -> pmon::futex::Key {
        match self
            .spaces
            .get(&space)
            .and_then(|e| e.space.redirects.target(uaddr))
        {
            Some(at) => (HOLDER_FUTEX_SPACE, at),
            None => (space, uaddr),
        }
    }

    /// The holder (space id, slot), made if there is none.
    fn anon_holder(&mut self) -> Result<(u32, u32), Errno> {
        if let Some(h) = self.anon.as_ref() {
            return Ok((h.space, h.slot));
        }
        let id = self.new_space(1 << 30).map_err(|_| ENOMEM)?;
        let slot = self.spaces.get(&id).map_or(0, |e| e.space.slot);
        self.anon = Some(AnonHolder {
            space: id,
            slot,
            objects: BTreeMap::new(),
        });
        Ok((id, slot))
    }

    /// Page-table entries of `space` changed: this vCPU reloads them now,
    /// others when they next load the space.
    fn flush_tlb(&mut self, space: u32) {
        let cpu = lego_image::cpu::current_cpu();
        let mut here = false;
        for (i, c) in self.cpus.iter_mut().enumerate() {
            if c.loaded == Some(space) {
                c.loaded = None;
                here |= i as u32 == cpu;
            }
        }
        if here {
            self.load_space_id(cpu, space);
        }
    }
}
