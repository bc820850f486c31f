//! Shared writable mappings of storage files (mmap MAP_SHARED with
//! PROT_WRITE). The mapping is process memory at the memory component,
//! filled from the file when it is made; what the process writes there
//! reaches the file at msync, munmap, fsync or fdatasync of the file, and
//! when the space goes (exit, execve): the mapped bytes inside the file's
//! size are written back, as Linux writes back dirty pages (bytes past the
//! end of the file are not). Decided for now: the mapping is this space's
//! own copy. Another process's mapping of the same file sees the changes
//! once they are written back and it maps the file again, not at once;
//! a forked child's copy writes back on its own.

use super::super::store;
use super::*;

/// One shared writable mapping of a storage file.
#[derive(Clone, Copy, Debug)]
pub struct SharedMap {
    pub space: u32,
    pub start: u64,
    pub end: u64,
    pub ino: u64,
    /// The file offset `start` maps.
    pub offset: u64,
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
            .filter(|m| m.space == space && m.start < hi && lo < m.end)
            .collect();
        let mut result = Ok(());
        for m in &hits {
            if let Err(e) = self.write_back_map(m, lo.max(m.start), hi.min(m.end)) {
                result = Err(e);
            }
        }
        if forget {
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
        result
    }

    /// Every shared mapping of file `ino`, in every space, written back
    /// (fsync of the file).
    pub(super) fn flush_file_maps(&mut self, ino: u64) -> Result<(), Errno> {
        let hits: Vec<SharedMap> = self
            .shared_maps
            .iter()
            .copied()
            .filter(|m| m.ino == ino)
            .collect();
        for m in &hits {
            self.write_back_map(m, m.start, m.end)?;
        }
        Ok(())
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

    /// Writes [lo, hi) of mapping `m` to its file, within the file's size.
    fn write_back_map(&mut self, m: &SharedMap, lo: u64, hi: u64) -> Result<(), Errno> {
        let size = store::stat_ino(m.ino)?.size;
        let file_at = m.offset + (lo - m.start);
        if file_at >= size {
            return Ok(());
        }
        let total = (hi - lo).min(size - file_at);
        let mut done = 0;
        while done < total {
            let n = (total - done).min(1 << 20) as usize;
            let bytes = {
                let space = &mut self.spaces.get_mut(&m.space).ok_or(ESRCH)?.space;
                uaccess::read_vec(space, lo + done, n)?
            };
            self.file_write(m.ino, file_at + done, &bytes, false)?;
            done += n as u64;
        }
        Ok(())
    }
}
