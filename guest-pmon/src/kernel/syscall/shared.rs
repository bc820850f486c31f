//! Shared mappings of storage files (mmap MAP_SHARED). Every shared
//! mapping of a file on this processor shows one object, the file's pages
//! in the shared-memory holder (`shared_anon`), filled from the file at
//! the first mapping of each range: as one page cache on Linux, a store
//! through one mapping is seen at once through every other, in every
//! process here. The object is kept in step with the file both ways:
//!
//! - What a process writes to the file (write, pwrite, truncate) is
//!   written into the object at once (LMDB's and SQLite's readers map the
//!   file while the writer uses write()).
//! - What processes write through their mappings reaches the file at
//!   msync, munmap, fsync or fdatasync of the file, and when a mapping
//!   space goes (exit, execve): the mapped bytes inside the file's size
//!   that differ from the file's are written back.
//!
//! This list keeps who maps what, for those write-backs and for
//! mprotect's EACCES.

use super::shared_anon::FileRef;
use super::*;

/// One shared mapping of a storage file.
#[derive(Clone, Copy, Debug)]
pub struct SharedMap {
    pub space: u32,
    pub start: u64,
    pub end: u64,
    pub file: FileRef,
    /// The file offset `start` maps.
    pub offset: u64,
    /// Mapped with PROT_WRITE, or given it since: written back.
    pub writable: bool,
    /// The file was open for writing: PROT_WRITE may be added (EACCES
    /// otherwise, as Linux).
    pub may_write: bool,
}

impl Kernel {
    pub(super) fn add_shared_map(&mut self, map: SharedMap) {
        self.shared_maps.push(map);
    }

    /// Writes the mapped bytes of [lo, hi) in `space` back to their files
    /// (all of the space's maps for (0, u64::MAX)); with `forget`, the
    /// range stops being a shared mapping (munmap, the space going).
    pub(in crate::kernel) fn flush_shared(
        &mut self,
        space: u32,
        lo: u64,
        hi: u64,
        forget: bool,
    ) -> Result<(), Errno> {
        if self.shared_maps.is_empty() {
            if forget {
                self.private_maps.forget(space, lo, hi);
            }
            return Ok(());
        }
        let hits: Vec<SharedMap> = self
            .shared_maps
            .iter()
            .copied()
            .filter(|m| m.writable && m.space == space && m.start < hi && lo < m.end)
            .collect();
        let mut result = Ok(());
        for m in &hits {
            if let Err(e) = self.write_back_map(m, lo.max(m.start), hi.min(m.end)) {
                result = Err(e);
            }
        }
        if forget {
            self.forget_shared(space, lo, hi);
        }
        result
    }

    /// [lo, hi) of `space` stops being a shared mapping, without a
    /// write-back (it was written back before something replaced it), and
    /// stops being a private one of a file.
    pub(super) fn forget_shared(&mut self, space: u32, lo: u64, hi: u64) {
        self.private_maps.forget(space, lo, hi);
        let mut kept = Vec::with_capacity(self.shared_maps.len() + 1);
        for m in self.shared_maps.drain(..) {
            if m.space != space || m.end <= lo || hi <= m.start {
                kept.push(m);
                continue;
            }
            if m.start < lo {
                kept.push(SharedMap { end: lo, ..m });
            }
            if hi < m.end {
                kept.push(SharedMap {
                    start: hi,
                    offset: m.offset + (hi - m.start),
                    ..m
                });
            }
        }
        self.shared_maps = kept;
    }

    /// Every shared mapping of `file`, in every space, written back (fsync
    /// of the file).
    pub(super) fn flush_file_maps(&mut self, file: FileRef) -> Result<(), Errno> {
        let hits: Vec<SharedMap> = self
            .shared_maps
            .iter()
            .copied()
            .filter(|m| m.writable && m.file == file)
            .collect();
        for m in &hits {
            self.write_back_map(m, m.start, m.end)?;
        }
        Ok(())
    }

    /// Before an mprotect of [lo, hi) in `space` to `prot`: adding
    /// PROT_WRITE to a shared mapping of a file not open for writing is
    /// EACCES, as on Linux.
    pub(super) fn may_protect_shared(
        &self,
        space: u32,
        lo: u64,
        hi: u64,
        prot: u64,
    ) -> Result<(), Errno> {
        let hit = |m: &SharedMap| m.space == space && m.start < hi && lo < m.end;
        if prot & 2 != 0 && self.shared_maps.iter().any(|m| hit(m) && !m.may_write) {
            return Err(EACCES);
        }
        Ok(())
    }

    /// After that mprotect succeeded: a mapping given PROT_WRITE is written
    /// back from then on.
    pub(super) fn protected_shared(&mut self, space: u32, lo: u64, hi: u64, prot: u64) {
        if prot & 2 == 0 {
            return;
        }
        for m in self
            .shared_maps
            .iter_mut()
            .filter(|m| m.space == space && m.start < hi && lo < m.end)
        {
            m.writable = true;
        }
    }

    /// Whether `file` has a shared mapping here.
    pub(in crate::kernel) fn has_shared(&self, file: FileRef) -> bool {
        self.shared_maps.iter().any(|m| m.file == file)
    }

    /// `file` now holds `bytes` at `at`: every shared mapping of it shows
    /// them (they all show the file's one object).
    pub(in crate::kernel) fn patch_shared(&mut self, file: FileRef, at: u64, bytes: &[u8]) {
        self.patch_file_object(file, at, bytes);
    }

    /// Bytes [lo, hi) of `file` are gone (a truncate): its shared mappings
    /// show zeros there.
    pub(in crate::kernel) fn zero_shared(&mut self, file: FileRef, lo: u64, hi: u64) {
        let held_end = self.file_object_end(file);
        let zeros = alloc::vec![0u8; 1 << 20];
        let mut at = lo;
        while at < hi.min(held_end) {
            let n = (hi.min(held_end) - at).min(1 << 20);
            self.patch_shared(file, at, &zeros[..n as usize]);
            at += n;
        }
    }

    /// `file` was cut to `size` bytes: the pages of its private mappings
    /// past the new end are dropped, in every process, as Linux drops them
    /// (`pmon::private_maps`). Decided: an access there reads zeros rather
    /// than raising SIGBUS, since those pages are anonymous memory at the
    /// memory component, which knows no file size.
    pub(in crate::kernel) fn truncated_private(&mut self, file: FileRef, size: u64) {
        for (space, lo, hi) in self.private_maps.truncated(file, size) {
            let Some(e) = self.spaces.get_mut(&space) else {
                continue;
            };
            // munmap forgets its range first, so a failure is a memory
            // component's: the pages keep their old bytes, as before
            // truncations reached private mappings.
            let _ = e.space.call(MemRequest {
                op: OP_DISCARD,
                addr: lo,
                len: hi - lo,
                ..Default::default()
            });
        }
    }

    /// A forked child's copy of its parent's shared mappings (and of its
    /// private file mappings).
    pub(super) fn fork_shared_maps(&mut self, from: u32, to: u32) {
        self.private_maps.fork(from, to);
        let copies: Vec<SharedMap> = self
            .shared_maps
            .iter()
            .filter(|m| m.space == from)
            .map(|m| SharedMap { space: to, ..*m })
            .collect();
        self.shared_maps.extend(copies);
    }

    /// Writes [lo, hi) of mapping `m` to its file, within the file's size:
    /// the bytes that differ from the file's (every write to the file
    /// being patched into the object, they are the ones written through a
    /// mapping), in few requests.
    fn write_back_map(&mut self, m: &SharedMap, lo: u64, hi: u64) -> Result<(), Errno> {
        let size = match self.shared_file_size(m.file) {
            Ok(s) => s,
            // A tmpfs file unlinked and closed (shm_unlink): nothing to
            // write to, as on Linux.
            Err(ENOENT) if matches!(m.file, FileRef::Tmp(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let file_at = m.offset.saturating_add(lo - m.start);
        if file_at >= size {
            return Ok(());
        }
        let total = (hi - lo).min(size - file_at);
        let mut done = 0;
        while done < total {
            let n = (total - done).min(1 << 20) as usize;
            // From the file's object (whatever the mapping's protection).
            let bytes = self.read_object(m.file, file_at + done, n)?;
            let now = self.shared_file_read(m.file, file_at + done, n)?;
            let runs = pmon::writeback::changed_runs(&bytes, &now);
            for (from, to) in pmon::writeback::joined(&runs, 4096) {
                let at = file_at + done + from as u64;
                self.shared_file_write(m.file, at, &bytes[from..to])?;
            }
            done += n as u64;
        }
        Ok(())
    }
}
