//! Shared mappings of storage files (mmap MAP_SHARED). The mapping is
//! process memory at the memory component, filled from the file when it
//! is made, and kept in step with the file in both directions:
//!
//! - What a process writes to the file (write, pwrite, truncate, and the
//!   write-back of another mapping) is written into every shared mapping
//!   of the file on this processor at once, whatever their protection, as
//!   one page cache shows it on Linux (LMDB's and SQLite's readers map the
//!   file and the writer uses write()).
//! - What a process writes through a mapping reaches the file at msync,
//!   munmap, fsync or fdatasync of the file, and when the space goes (exit,
//!   execve): the mapped bytes inside the file's size are written back
//!   (with no dirty bits from the ExCache yet, the whole mapped range), and
//!   from the file they reach the other mappings as above.
//!
//! Decided for now: between those points each mapping is its own copy, so
//! two processes writing the same bytes through their mappings without an
//! msync in between see each other's bytes only then, the later write-back
//! winning; a forked child's copy of a mapping writes back on its own.

use super::super::store;
use super::*;

/// One shared mapping of a storage file.
#[derive(Clone, Copy, Debug)]
pub struct SharedMap {
    pub space: u32,
    pub start: u64,
    pub end: u64,
    pub ino: u64,
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
    /// write-back (it was written back before something replaced it).
    pub(super) fn forget_shared(&mut self, space: u32, lo: u64, hi: u64) {
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

    /// Every shared mapping of file `ino`, in every space, written back
    /// (fsync of the file).
    pub(super) fn flush_file_maps(&mut self, ino: u64) -> Result<(), Errno> {
        let hits: Vec<SharedMap> = self
            .shared_maps
            .iter()
            .copied()
            .filter(|m| m.writable && m.ino == ino)
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

    /// Whether file `ino` has a shared mapping here.
    pub(in crate::kernel) fn has_shared(&self, ino: u64) -> bool {
        self.shared_maps.iter().any(|m| m.ino == ino)
    }

    /// File `ino` now holds `bytes` at `at`: every shared mapping of that
    /// range shows them, but `except` (a space and the start of one of its
    /// mappings: the one being written back, whose threads may have
    /// written it again since it was read).
    pub(in crate::kernel) fn patch_shared(
        &mut self,
        ino: u64,
        at: u64,
        bytes: &[u8],
        except: Option<(u32, u64)>,
    ) {
        let end = at + bytes.len() as u64;
        let hits: Vec<SharedMap> = self
            .shared_maps
            .iter()
            .copied()
            .filter(|m| {
                m.ino == ino
                    && except != Some((m.space, m.start))
                    && m.offset < end
                    && at < m.offset + (m.end - m.start)
            })
            .collect();
        for m in hits {
            let lo = at.max(m.offset);
            let hi = end.min(m.offset + (m.end - m.start));
            let va = m.start + (lo - m.offset);
            let part = &bytes[(lo - at) as usize..(hi - at) as usize];
            // A mapping the memory component will not let us write (it
            // cannot be reached: the process is stopped with EIO at its
            // next access anyway) keeps its old bytes.
            let _ = self.in_space(m.space, |k| k.write_over_protection(m.space, va, part));
        }
    }

    /// Bytes [lo, hi) of file `ino` are gone (a truncate): its shared
    /// mappings show zeros there.
    pub(in crate::kernel) fn zero_shared(&mut self, ino: u64, lo: u64, hi: u64) {
        let mapped_end = self
            .shared_maps
            .iter()
            .filter(|m| m.ino == ino)
            .map(|m| m.offset + (m.end - m.start))
            .max()
            .unwrap_or(0);
        let zeros = alloc::vec![0u8; 1 << 20];
        let mut at = lo;
        while at < hi.min(mapped_end) {
            let n = (hi.min(mapped_end) - at).min(1 << 20);
            self.patch_shared(ino, at, &zeros[..n as usize], None);
            at += n;
        }
    }

    /// Writes `data` into `space` (loaded) at `va`, whatever the pages'
    /// protection: pages a process may not write are opened for the write
    /// and given their protection back.
    fn write_over_protection(&mut self, space: u32, va: u64, data: &[u8]) -> Result<(), Errno> {
        let s = &mut self.spaces.get_mut(&space).ok_or(ESRCH)?.space;
        if uaccess::write(s, va, data).is_ok() {
            return Ok(());
        }
        let lo = va & !0xfff;
        let hi = (va + data.len() as u64)
            .checked_next_multiple_of(4096)
            .ok_or(EFAULT)?;
        let closed: Vec<(u64, u64, u32)> = s
            .maps()?
            .iter()
            .filter(|v| v.start < hi && lo < v.end && v.prot & 3 != 3)
            .map(|v| (v.start.max(lo), v.end.min(hi), v.prot))
            .collect();
        let protect = |s: &mut crate::kernel::mm::Space, start: u64, end: u64, prot: u32| {
            s.call(MemRequest {
                op: OP_MPROTECT,
                addr: start,
                len: end - start,
                prot,
                ..Default::default()
            })
        };
        for &(start, end, prot) in &closed {
            protect(s, start, end, prot | 3)?;
        }
        let wrote = uaccess::write(s, va, data);
        for &(start, end, prot) in &closed {
            protect(s, start, end, prot)?;
        }
        wrote
    }

    /// A forked child's copy of its parent's shared mappings.
    pub(super) fn fork_shared_maps(&mut self, from: u32, to: u32) {
        let copies: Vec<SharedMap> = self
            .shared_maps
            .iter()
            .filter(|m| m.space == from)
            .map(|m| SharedMap { space: to, ..*m })
            .collect();
        self.shared_maps.extend(copies);
    }

    /// Writes [lo, hi) of mapping `m` to its file, within the file's size:
    /// the bytes that differ from the file's, which (every write to the
    /// file being patched into every mapping) are the ones this mapping
    /// changed. Only those reach the other mappings, so a write-back never
    /// undoes bytes another mapping changed and has not written back.
    fn write_back_map(&mut self, m: &SharedMap, lo: u64, hi: u64) -> Result<(), Errno> {
        let size = store::stat_ino(m.ino)?.size;
        let file_at = m.offset.saturating_add(lo - m.start);
        if file_at >= size {
            return Ok(());
        }
        let total = (hi - lo).min(size - file_at);
        let mut done = 0;
        while done < total {
            let n = (total - done).min(1 << 20) as usize;
            // The mapping's own space, whichever process asked.
            let bytes = self.in_space(m.space, |k| {
                let space = &mut k.spaces.get_mut(&m.space).ok_or(ESRCH)?.space;
                uaccess::read_vec(space, lo + done, n)
            })?;
            let now = self.file_read(m.ino, file_at + done, n)?;
            let runs = pmon::writeback::changed_runs(&bytes, &now);
            // To the file in few requests; to the other mappings exactly,
            // each once its bytes are in the file (a failure later leaves
            // every mapping agreeing with the file).
            for (from, to) in pmon::writeback::joined(&runs, 4096) {
                let at = file_at + done + from as u64;
                self.file_write_only(m.ino, at, &bytes[from..to])?;
                for &(a, b) in runs.iter().filter(|r| from <= r.0 && r.1 <= to) {
                    let at = file_at + done + a as u64;
                    self.patch_shared(m.ino, at, &bytes[a..b], Some((m.space, m.start)));
                }
            }
            done += n as u64;
        }
        Ok(())
    }
}
