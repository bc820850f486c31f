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
//! mremap shrinks, grows (within the object) and moves such a mapping
//! (`mremap_shared`). Protection is enforced by the CPU through the page
//! tables (the holder's mapping is read-write).

use super::super::store;
use super::super::uaccess::UserSpace;
use super::*;

/// The futex key space for words of shared anonymous memory: waiters in
/// any process meet on the holder's address.
const HOLDER_FUTEX_SPACE: u32 = u32::MAX;

/// The holder of every shared object.
pub struct AnonHolder {
    /// Its address-space id.
    pub space: u32,
    pub slot: u32,
    /// Object start (in the holder) -> the object.
    pub objects: BTreeMap<u64, Object>,
    /// A file -> its object's start.
    pub files: BTreeMap<FileRef, u64>,
}

/// A file that may be mapped shared: on the storage component, or in the
/// processor's tmpfs (/tmp, /dev/shm).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileRef {
    Store(u64),
    Tmp(pmon::tmpfs::Ino),
}

/// One object: shared anonymous memory, or the pages of a file that
/// processes here map shared (file offset `x` at `start + x`).
pub struct Object {
    pub len: u64,
    pub file: Option<FileRef>,
    /// For a file: the offsets whose bytes are in (read from the file at
    /// the first mapping of them).
    pub filled: pmon::anon::Filled,
}

/// The least holder range given to a file's object, so that later
/// mappings of the file further in fit (ENOMEM otherwise, decided: the
/// object does not move while mapped): 256 MiB, or a 1024th of the
/// holder's addresses where they are fewer (a 39-bit host: 16 MiB), so
/// that a thousand files may be mapped at once.
const FILE_OBJECT_MIN: u64 = 256 << 20;

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
        let (holder_slot, at) = self.new_object(len, None)?;
        self.show_object(space, a, end, holder_slot, at, at, prot)
    }

    /// A new object of `len` bytes in the holder (made if there is none):
    /// the holder's slot and the object's start.
    pub(super) fn new_object(
        &mut self,
        len: u64,
        file: Option<FileRef>,
    ) -> Result<(u32, u64), Errno> {
        let holder = self.anon_holder()?;
        let made = self.spaces.get_mut(&holder.0).ok_or(ENOMEM).and_then(|e| {
            let at = e.space.call(MemRequest {
                op: OP_MMAP,
                len,
                prot: 3,
                ..Default::default()
            })?;
            // The holder's vRegions need their memslots at the VMM (the
            // mappers' accesses land there) and its page tables (the
            // monitor writes file bytes in through them).
            if let Err(err) = e.space.prepare(at, len, true) {
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
            h.objects.insert(
                at,
                Object {
                    len,
                    file,
                    filled: Default::default(),
                },
            );
            if let Some(f) = file {
                h.files.insert(f, at);
            }
        }
        Ok((holder.1, at))
    }

    /// Makes [a, a + len) of `space` (just mapped there) show `file` from
    /// `offset`, shared with every other mapping of the file
    /// here: the file's object, whose pages not in yet are read from the
    /// file first.
    pub(super) fn map_file_shared(
        &mut self,
        space: u32,
        a: u64,
        len: u64,
        file: FileRef,
        offset: u64,
        prot: u32,
    ) -> Result<(), Errno> {
        let end = range_end(a, len);
        let need = offset.checked_add(end - a).ok_or(ENOMEM)?;
        let existing = self
            .anon
            .as_ref()
            .and_then(|h| h.files.get(&file).map(|&at| (h.slot, at)));
        let (slot, object) = match existing {
            Some((slot, at)) => {
                let fits = self
                    .anon
                    .as_ref()
                    .and_then(|h| h.objects.get(&at))
                    .is_some_and(|o| need <= o.len);
                if !fits {
                    return Err(ENOMEM);
                }
                (slot, at)
            }
            None => {
                let least = (self.window.user_top() / 1024).clamp(64 << 10, FILE_OBJECT_MIN);
                let extent = need.checked_next_power_of_two().ok_or(ENOMEM)?.max(least);
                self.new_object(extent, Some(file))?
            }
        };
        if let Err(e) = self.fill_object(object, file, offset, need) {
            self.gc_shared_anon();
            return Err(e);
        }
        self.show_object(space, a, end, slot, object + offset, object, prot)
    }

    /// [a, end) of `space` shows the holder's pages from `at` (of
    /// `object`), with `prot`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn show_object(
        &mut self,
        space: u32,
        a: u64,
        end: u64,
        slot: u32,
        at: u64,
        object: u64,
        prot: u32,
    ) -> Result<(), Errno> {
        let Some(e) = self.spaces.get_mut(&space) else {
            self.gc_shared_anon();
            return Err(ESRCH);
        };
        e.space.holder_slot = slot;
        e.space.redirects.insert(a, end, at, object, prot);
        e.space.remap(a, end);
        self.flush_tlb(space);
        Ok(())
    }

    /// Reads the file's bytes of [lo, hi) that `object` does not hold yet
    /// into it (what lies past the file's end stays zeros, as the file
    /// would read).
    fn fill_object(&mut self, object: u64, file: FileRef, lo: u64, hi: u64) -> Result<(), Errno> {
        let missing = match self.anon.as_ref().and_then(|h| h.objects.get(&object)) {
            Some(o) => o.filled.missing(lo, hi),
            None => return Err(ENOMEM),
        };
        if missing.is_empty() {
            return Ok(());
        }
        let size = self.shared_file_size(file)?;
        let holder = self.anon.as_ref().map_or(0, |h| h.space);
        for (from, to) in missing {
            let mut at = from;
            while at < to.min(size) {
                let n = (to.min(size) - at).min(1 << 20) as usize;
                let chunk = self.shared_file_read(file, at, n)?;
                if chunk.is_empty() {
                    break;
                }
                self.write_object(holder, object + at, &chunk)?;
                at += chunk.len() as u64;
            }
            if let Some(o) = self.anon.as_mut().and_then(|h| h.objects.get_mut(&object)) {
                o.filled.add(from, to);
            }
        }
        // mmap reads the file, for its atime.
        if let FileRef::Store(ino) = file {
            self.accessed(ino);
        }
        Ok(())
    }

    /// The size of `file`.
    pub(super) fn shared_file_size(&mut self, file: FileRef) -> Result<u64, Errno> {
        match file {
            FileRef::Store(ino) => Ok(store::stat_ino(ino)?.size),
            FileRef::Tmp(ino) => self.tmp.stat(ino).map(|st| st.size).map_err(|e| e as Errno),
        }
    }

    /// Up to `n` bytes of `file` from `at`.
    pub(super) fn shared_file_read(
        &mut self,
        file: FileRef,
        at: u64,
        n: usize,
    ) -> Result<Vec<u8>, Errno> {
        match file {
            FileRef::Store(ino) => self.file_read(ino, at, n),
            FileRef::Tmp(ino) => {
                let mut b = alloc::vec![0u8; n];
                let now = self.realtime_ns();
                let got = self
                    .tmp
                    .read(ino, at, &mut b, now)
                    .map_err(|e| e as Errno)?;
                b.truncate(got);
                Ok(b)
            }
        }
    }

    /// Up to `n` bytes of `file` from `at` as processes here see them: with
    /// what was stored through its shared mappings (`overlay_shared`).
    pub(in crate::kernel) fn file_bytes(
        &mut self,
        file: FileRef,
        at: u64,
        n: usize,
    ) -> Result<Vec<u8>, Errno> {
        let mut b = self.shared_file_read(file, at, n)?;
        self.overlay_shared(file, at, &mut b);
        Ok(b)
    }

    /// A private mapping of `file`, made writable at `at` for this: its
    /// bytes from `offset` are written in (as processes here see them),
    /// then the mapping gets `prot`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fill_private(
        &mut self,
        pid: Pid,
        file: FileRef,
        offset: u64,
        at: u64,
        len: u64,
        prot: u64,
    ) -> Result<(), Errno> {
        let total = self.shared_file_size(file)?.saturating_sub(offset).min(len);
        let mut done = 0;
        while done < total {
            let n = (total - done).min(1 << 20) as usize;
            let chunk = self.file_bytes(file, offset + done, n)?;
            if chunk.is_empty() {
                break;
            }
            uaccess::write(self.space_mut(pid)?, at + done, &chunk)?;
            done += chunk.len() as u64;
        }
        // mmap reads the file, for its atime.
        if let FileRef::Store(ino) = file {
            self.accessed(ino);
        }
        self.filled(pid, at, len, prot)
    }

    /// Writes `bytes` to `file` at `at` (a mapping's write-back: the
    /// object has them already).
    pub(super) fn shared_file_write(
        &mut self,
        file: FileRef,
        at: u64,
        bytes: &[u8],
    ) -> Result<(), Errno> {
        match file {
            FileRef::Store(ino) => self.file_write_only(ino, at, bytes).map(|_| ()),
            FileRef::Tmp(ino) => {
                let now = self.realtime_ns();
                self.tmp
                    .write(ino, at, bytes, now)
                    .map(|_| ())
                    .map_err(|e| e as Errno)
            }
        }
    }

    /// Writes `bytes` into the holder at `at`.
    fn write_object(&mut self, holder: u32, at: u64, bytes: &[u8]) -> Result<(), Errno> {
        self.in_space(holder, |k| {
            let s = &mut k.spaces.get_mut(&holder).ok_or(ESRCH)?.space;
            uaccess::write(s, at, bytes).map(|_| ())
        })
    }

    /// `file` now holds `bytes` at `offset`: its object shows them where it
    /// holds the file's bytes.
    pub(in crate::kernel) fn patch_file_object(
        &mut self,
        file: FileRef,
        offset: u64,
        bytes: &[u8],
    ) {
        let Some((holder, object, held)) = self.anon.as_ref().and_then(|h| {
            let at = *h.files.get(&file)?;
            let o = h.objects.get(&at)?;
            let end = offset.saturating_add(bytes.len() as u64);
            Some((h.space, at, o.filled.held(offset, end)))
        }) else {
            return;
        };
        for (lo, hi) in held {
            let part = &bytes[(lo - offset) as usize..(hi - offset) as usize];
            // A holder the memory component will not let us write (it
            // cannot be reached: the mappers stop with EIO at their next
            // access anyway) keeps its old bytes.
            let _ = self.write_object(holder, object + lo, part);
        }
    }

    /// `n` bytes of `file`'s object from file offset `offset`.
    pub(super) fn read_object(
        &mut self,
        file: FileRef,
        offset: u64,
        n: usize,
    ) -> Result<Vec<u8>, Errno> {
        let (holder, object) = self
            .anon
            .as_ref()
            .and_then(|h| Some((h.space, *h.files.get(&file)?)))
            .ok_or(ENOENT)?;
        self.in_space(holder, |k| {
            let s = &mut k.spaces.get_mut(&holder).ok_or(ESRCH)?.space;
            uaccess::read_vec(s, object + offset, n)
        })
    }

    /// `bytes`, just read from `file` at `offset`, as the file's shared
    /// mappings have them: what processes stored through a mapping and
    /// have not written back yet reads as stored, as through Linux's page
    /// cache.
    pub(in crate::kernel) fn overlay_shared(
        &mut self,
        file: FileRef,
        offset: u64,
        bytes: &mut [u8],
    ) {
        let Some(held) = self.anon.as_ref().and_then(|h| {
            let o = h.objects.get(h.files.get(&file)?)?;
            Some(
                o.filled
                    .held(offset, offset.saturating_add(bytes.len() as u64)),
            )
        }) else {
            return;
        };
        for (lo, hi) in held {
            let got = self.read_object(file, lo, (hi - lo) as usize);
            // Unreadable (its memory component is gone): the file's bytes.
            if let Ok(b) = got {
                bytes[(lo - offset) as usize..(hi - offset) as usize].copy_from_slice(&b);
            }
        }
    }

    /// The end of what `file`'s object holds (0 without one).
    pub(in crate::kernel) fn file_object_end(&self, file: FileRef) -> u64 {
        self.anon
            .as_ref()
            .and_then(|h| h.objects.get(h.files.get(&file)?))
            .map_or(0, |o| o.filled.end())
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
            e.space.remap(s, t);
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
            e.space.remap(s, t);
        }
        self.flush_tlb(space);
    }

    /// mremap of [old, old + old_len) of `space`, which shows shared memory
    /// or a shared file mapping: the range must be one mapping of one
    /// object (EFAULT otherwise, as Linux for a range over several). It
    /// may shrink, grow within its object (for a file, up to the object's
    /// extent, filled from the file), and move with MREMAP_MAYMOVE; the
    /// new range shows the same pages.
    pub(super) fn mremap_shared(
        &mut self,
        pid: Pid,
        space: u32,
        old: u64,
        old_len: u64,
        new_len: u64,
        flags: u32,
    ) -> Ret {
        let old_end = range_end(old, old_len);
        if old % 4096 != 0 || new_len == 0 {
            return err(EINVAL);
        }
        let Some(piece) = self
            .spaces
            .get(&space)
            .and_then(|e| e.space.redirects.find(old).copied())
        else {
            return err(EFAULT);
        };
        if old_end > piece.end {
            return err(EFAULT);
        }
        let at = piece.at + (old - piece.start);
        let Some((object_len, file)) = self
            .anon
            .as_ref()
            .and_then(|h| h.objects.get(&piece.object))
            .map(|o| (o.len, o.file))
        else {
            return err(EFAULT);
        };
        let new_size = range_end(0, new_len);
        if new_size > self.window.user_top() {
            return err(EINVAL);
        }
        if at
            .checked_add(new_size)
            .is_none_or(|e| e > piece.object + object_len)
        {
            return err(ENOMEM);
        }
        let map = self
            .shared_maps
            .iter()
            .find(|m| m.space == space && m.start <= old && old < m.end)
            .copied();
        // A file's pages further in are read before anything changes.
        if let (Some(f), true) = (file, new_size > old_end - old) {
            let from = at - piece.object;
            if let Err(e) = self.fill_object(piece.object, f, from, from + new_size) {
                return err(e);
            }
        }
        // What a shrink drops reaches the file first.
        if new_size < old_end - old {
            let _ = self.flush_shared(space, old + new_size, old_end, false);
        }
        let new = match self.mem(pid, OP_MREMAP, old, old_len, new_len, 0, flags) {
            Ret::Val(v) if v >= 0 => v as u64,
            r => return r,
        };
        if let Some(e) = self.spaces.get_mut(&space) {
            let mut changed = e.space.redirects.remove(old, old_end);
            e.space
                .redirects
                .insert(new, new + new_size, at, piece.object, piece.prot);
            if !piece.may_write {
                e.space.redirects.forbid_writes(new, new + new_size);
            }
            changed.push((new, new + new_size));
            for (s, t) in changed {
                e.space.remap(s, t);
            }
        }
        self.flush_tlb(space);
        if let Some(m) = map {
            self.forget_shared(space, old, old_end);
            self.add_shared_map(SharedMap {
                start: new,
                end: new + new_size,
                offset: m.offset + (old - m.start),
                ..m
            });
        }
        // A System V attach moves with it, and so do its locks.
        for a in self.sysv_attaches.iter_mut() {
            if a.space == space && a.start == old {
                a.start = new;
            }
        }
        self.relock_remapped(pid, old, old_len, new, new_len);
        Ret::Val(new as i64)
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
                e.space.remap(p.start, p.end);
            }
        }
        self.flush_tlb(to);
    }

    /// Unmaps the objects no space shows any more; the holder goes with
    /// the last.
    pub(in crate::kernel) fn gc_shared_anon(&mut self) {
        if self.anon.is_none() {
            return;
        }
        self.prune_attaches();
        let Some(h) = self.anon.as_ref() else {
            return;
        };
        let holder = h.space;
        // System V segments are kept until IPC_RMID and their last detach.
        // The objects in use are gathered first, so that a run of removals
        // (4096 segments at the end of shmget03) costs no pass over every
        // object for each.
        let used: alloc::collections::BTreeSet<u64> = self
            .spaces
            .values()
            .flat_map(|e| e.space.redirects.pieces().map(|p| p.object))
            .chain(self.sysv.by_id.values().map(|s| s.object))
            .collect();
        let unused: Vec<(u64, u64)> = h
            .objects
            .iter()
            .filter(|(at, _)| !used.contains(at))
            .map(|(&at, o)| (at, o.len))
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
                if let Some(f) = h.objects.remove(&at).and_then(|o| o.file) {
                    h.files.remove(&f);
                }
            }
        }
        if self.anon.as_ref().is_some_and(|h| h.objects.is_empty()) {
            self.anon = None;
            self.drop_space(holder);
        }
    }

    /// remap_file_pages, as Linux has emulated it since 4.0: the pages
    /// `[start, start + size)` of one shared mapping (of a file, shared
    /// anonymous memory or a System V segment) show its object from page
    /// `pgoff` on, with the mapping's protection. `prot` must be 0; the
    /// flags mean nothing here (Linux keeps only MAP_NONBLOCK, a hint);
    /// a range not all in one shared mapping is EINVAL. Decided: an
    /// anonymous object's pages past its end are EINVAL here (Linux maps
    /// them, and an access is SIGBUS).
    pub(super) fn sys_remap_file_pages(
        &mut self,
        pid: Pid,
        (start, size): (u64, u64),
        prot: u64,
        pgoff: u64,
    ) -> Ret {
        if prot != 0 {
            return err(EINVAL);
        }
        let start = start & !(pmon::PAGE - 1);
        let size = size & !(pmon::PAGE - 1);
        let Some(end) = start.checked_add(size).filter(|&e| e > start) else {
            return err(EINVAL);
        };
        let Some(offset) = pgoff
            .checked_mul(pmon::PAGE)
            .filter(|o| o.checked_add(size).is_some())
        else {
            return err(EINVAL);
        };
        let Some(space) = self.procs.get(&pid).map(|p| p.space) else {
            return err(ESRCH);
        };
        let Some((object, prot, may_write)) = self
            .spaces
            .get(&space)
            .and_then(|e| e.space.redirects.one_mapping(start, end))
        else {
            return err(EINVAL);
        };
        let Some((slot, file, len)) = self
            .anon
            .as_ref()
            .and_then(|h| h.objects.get(&object).map(|o| (h.slot, o.file, o.len)))
        else {
            return err(EINVAL);
        };
        // A file mapping's record says which file pages its addresses
        // show, for its write-backs: the pages shown there so far are
        // written back now, and the record then names the new ones (a
        // write through a page shown outside the mapping's first range was
        // lost at munmap before).
        let record = match file {
            Some(_) => {
                let _ = self.flush_shared(space, start, end, false);
                self.shared_maps
                    .iter()
                    .find(|m| m.space == space && m.start <= start && end <= m.end)
                    .copied()
            }
            None => None,
        };
        let shown = match file {
            Some(f) => self.map_file_shared(space, start, size, f, offset, prot),
            None if offset + size <= len => {
                self.show_object(space, start, end, slot, object + offset, object, prot)
            }
            None => Err(EINVAL),
        };
        if let Err(e) = shown {
            return err(e);
        }
        if let Some(m) = record {
            self.forget_shared(space, start, end);
            self.add_shared_map(SharedMap {
                start,
                end,
                offset,
                ..m
            });
        }
        if !may_write {
            if let Some(e) = self.spaces.get_mut(&space) {
                e.space.redirects.forbid_writes(start, end);
            }
        }
        Ret::Val(0)
    }

    /// The spaces whose processes die for pages `[first, end)` of the
    /// space its memory components know as `gpid`, which found no frame:
    /// that space; or, for the holder of shared memory, every space that
    /// maps an object holding any of the pages. The pages' contents are
    /// lost, so no process that could read them is left: a System V
    /// segment among the objects is removed (as by IPC_RMID), and a file's
    /// object is read from the file again at its next mapping (its writes
    /// not written back are lost, as a process killed before msync loses
    /// them).
    pub(in crate::kernel) fn oom_spaces(
        &mut self,
        gpid: u32,
        (first, end): (u64, u64),
    ) -> alloc::collections::BTreeSet<u32> {
        let Some(id) = self
            .spaces
            .iter()
            .find(|(_, e)| e.space.gpid == gpid)
            .map(|(&id, _)| id)
        else {
            return Default::default();
        };
        let Some(h) = self.anon.as_ref().filter(|h| h.space == id) else {
            return [id].into();
        };
        let objects =
            pmon::anon::objects_meeting(h.objects.iter().map(|(&at, o)| (at, o.len)), first, end);
        let mut removed = false;
        for seg in self.sysv.by_id.values_mut() {
            if !seg.removed && objects.binary_search(&seg.object).is_ok() {
                seg.removed = true;
                seg.key = pmon::sysv::IPC_PRIVATE;
                removed = true;
            }
        }
        if removed {
            // One attached nowhere goes now; the others with their last
            // detach, at their processes' exits.
            self.gc_shared_anon();
        }
        self.spaces
            .iter()
            .filter(|(_, e)| {
                e.space
                    .redirects
                    .pieces()
                    .any(|p| objects.binary_search(&p.object).is_ok())
            })
            .map(|(&id, _)| id)
            .collect()
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
        let id = self.make_space(1 << 30, true).map_err(|_| ENOMEM)?;
        let slot = self.spaces.get(&id).map_or(0, |e| e.space.slot);
        self.anon = Some(AnonHolder {
            space: id,
            slot,
            objects: BTreeMap::new(),
            files: BTreeMap::new(),
        });
        Ok((id, slot))
    }

    /// Page-table entries of `space` changed: this vCPU reloads them now;
    /// one running the space elsewhere is interrupted and reloads them
    /// before it runs on.
    fn flush_tlb(&mut self, space: u32) {
        let cpu = lego_image::cpu::current_cpu();
        let mut others = Vec::new();
        let mut here = false;
        for (i, c) in self.cpus.iter_mut().enumerate() {
            if c.loaded == Some(space) {
                c.stale = true;
                if i as u32 == cpu {
                    here = true;
                } else {
                    others.push(i as u32);
                }
            }
        }
        if here {
            self.load_space_id(cpu, space);
        }
        for other in others {
            host::kick(other);
        }
    }
}
