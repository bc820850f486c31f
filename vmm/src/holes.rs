//! Filling the disk file's holes just ahead of a writer that syncs often.
//!
//! A disk `--disk` creates is sparse, and the guest's file system writes
//! new blocks (copy-on-write, log appends), so each write lands in a hole
//! of the host file and the host file system allocates it; the FLUSH after
//! it (`fdatasync`) must then commit that allocation too. Measured on this
//! host's ext4 (4 KiB pwrite + fdatasync, medians of 400): 37 us rewriting
//! a block, 41 us into zeros written before, 92 us into a hole, 103 us
//! into a `fallocate`d (unwritten) range; through Lego, a program's 4 KiB
//! write + fdatasync took 354-478 us on a sparse disk and 272-332 us on
//! the same disk with its holes filled.
//!
//! So after a flush, the 1 MiB chunks written since the one before, and
//! the chunk after each, get their holes written with zeros (only holes:
//! data is never touched, and zeros read as the hole did), and the next
//! writes there are rewrites. Only after a flush: the file's writes are
//! then all allocated, so SEEK_HOLE sees them. A flush after a bulk write
//! (more than [`TRACK_MOST`] chunks) fills nothing: those chunks are data
//! already, and zeros ahead of a stream would only be written twice. The
//! price is a disk file up to a chunk larger than what was written, and
//! one fill of at most a few MiB now and then, inside the flush's exit.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

/// The unit of filling.
pub const CHUNK: u64 = 1 << 20;
/// Chunks written between two flushes beyond which a flush fills nothing.
pub const TRACK_MOST: usize = 8;

#[derive(Default)]
pub struct Holes {
    /// Chunks written since the last flush (empty once past TRACK_MOST).
    written: BTreeSet<u64>,
    bulk: bool,
    /// Chunks known to have no holes.
    full: BTreeSet<u64>,
    /// The file cannot say where its holes are (a block device, a file
    /// system without SEEK_HOLE): nothing to do.
    blind: bool,
    /// Bytes of holes filled so far.
    pub filled: u64,
}

impl Holes {
    /// A write of `len` bytes at `offset`.
    pub fn wrote(&mut self, offset: u64, len: u64) {
        if self.bulk || len == 0 || self.blind {
            return;
        }
        for c in offset / CHUNK..=(offset + len - 1) / CHUNK {
            if self.written.insert(c) && self.written.len() > TRACK_MOST {
                self.written.clear();
                self.bulk = true;
                return;
            }
        }
    }

    /// After a flush of `file` (`size` bytes): fills the holes of the
    /// chunks written since the last flush and of the chunk after each.
    /// Returns the bytes filled; an error leaves the holes (the disk's
    /// content is the same either way).
    pub fn after_flush(&mut self, file: &File, size: u64) -> io::Result<u64> {
        let written = std::mem::take(&mut self.written);
        self.bulk = false;
        let mut filled = 0;
        for c in written.iter().flat_map(|&c| [c, c + 1]) {
            if self.blind || c * CHUNK >= size || self.full.contains(&c) {
                continue;
            }
            match fill(file, c * CHUNK, ((c + 1) * CHUNK).min(size)) {
                Ok(n) => {
                    filled += n;
                    self.full.insert(c);
                }
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.blind = true,
                Err(e) => return Err(e),
            }
        }
        self.filled += filled;
        Ok(filled)
    }
}

/// Writes zeros into the holes of `file` in [start, end); returns the bytes
/// written.
fn fill(file: &File, start: u64, end: u64) -> io::Result<u64> {
    static ZEROS: [u8; CHUNK as usize] = [0; CHUNK as usize];
    let seek = |from: u64, whence: libc::c_int| -> io::Result<Option<u64>> {
        // SAFETY: lseek on an open descriptor; the offset is in range.
        let r = unsafe { libc::lseek(file.as_raw_fd(), from as libc::off_t, whence) };
        if r >= 0 {
            return Ok(Some(r as u64));
        }
        match io::Error::last_os_error() {
            // No data (or hole) past `from`.
            e if e.raw_os_error() == Some(libc::ENXIO) => Ok(None),
            e => Err(e),
        }
    };
    let mut at = start;
    let mut filled = 0;
    while at < end {
        let Some(hole) = seek(at, libc::SEEK_HOLE)? else {
            break;
        };
        if hole >= end {
            break;
        }
        let data = seek(hole, libc::SEEK_DATA)?.unwrap_or(end).min(end);
        file.write_all_at(&ZEROS[..(data - hole) as usize], hole)?;
        filled += data - hole;
        at = data;
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sparse(name: &str, size: u64) -> (File, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!("lego-holes-{name}-{}", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        f.set_len(size).unwrap();
        (f, path)
    }

    fn holes_in(f: &File, start: u64, end: u64) -> bool {
        // SAFETY: lseek on an open descriptor.
        let hole = unsafe { libc::lseek(f.as_raw_fd(), start as libc::off_t, libc::SEEK_HOLE) };
        hole >= 0 && (hole as u64) < end
    }

    #[test]
    fn a_flush_fills_the_written_chunks_and_the_next_keeping_the_data() {
        let (f, path) = sparse("fill", 8 * CHUNK);
        let mut h = Holes::default();
        let data = vec![0xabu8; 4096];
        f.write_all_at(&data, 2 * CHUNK + 8192).unwrap();
        h.wrote(2 * CHUNK + 8192, 4096);
        f.sync_data().unwrap();
        if !holes_in(&f, 0, 8 * CHUNK) {
            // This file system keeps no holes: nothing to test.
            let _ = std::fs::remove_file(path);
            return;
        }
        let n = h.after_flush(&f, 8 * CHUNK).unwrap();
        assert_eq!(n, 2 * CHUNK - 4096, "chunk 2 around the data, and chunk 3");
        assert!(!holes_in(&f, 2 * CHUNK, 4 * CHUNK));
        assert!(holes_in(&f, 4 * CHUNK, 8 * CHUNK), "nothing further");
        let mut back = vec![0u8; 4096];
        f.read_exact_at(&mut back, 2 * CHUNK + 8192).unwrap();
        assert_eq!(back, data, "the data is kept");
        f.read_exact_at(&mut back, 2 * CHUNK).unwrap();
        assert!(back.iter().all(|&b| b == 0));
        // Filled chunks are not looked at again; nothing written, nothing to do.
        h.wrote(3 * CHUNK, 4096);
        assert_eq!(h.after_flush(&f, 8 * CHUNK).unwrap(), CHUNK, "chunk 4 only");
        assert_eq!(h.after_flush(&f, 8 * CHUNK).unwrap(), 0);
        // The last chunk has no next one.
        h.wrote(8 * CHUNK - 4096, 4096);
        assert_eq!(h.after_flush(&f, 8 * CHUNK).unwrap(), CHUNK);
        assert_eq!(h.filled, 4 * CHUNK - 4096);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn a_bulk_write_fills_nothing() {
        let (f, path) = sparse("bulk", 32 * CHUNK);
        let mut h = Holes::default();
        for c in 0..TRACK_MOST as u64 + 1 {
            h.wrote(c * CHUNK, 4096);
        }
        assert_eq!(h.after_flush(&f, 32 * CHUNK).unwrap(), 0);
        // One write spanning many chunks is bulk too.
        h.wrote(0, 16 * CHUNK);
        assert_eq!(h.after_flush(&f, 32 * CHUNK).unwrap(), 0);
        let _ = std::fs::remove_file(path);
    }
}
