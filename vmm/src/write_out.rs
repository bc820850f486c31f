//! Starting the host's write-out of the disk file while a guest writes,
//! so that its next FLUSH waits for the last few MiB only.
//!
//! A buffered write lands in the host's page cache, which this host writes
//! to its disk only past its dirty thresholds (gigabytes here) or at an
//! fdatasync: a program writing 256 MiB and then calling fsync waited for
//! the whole 256 MiB at the fsync, after the fabric had carried it. Once
//! [`START_AFTER`] bytes have been written since the last start or flush,
//! the block device asks the host to start writing the range they span
//! (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`, which waits for
//! nothing to reach the disk), so the disk works while the data still
//! comes. What a FLUSH promises does not change: it is still fdatasync.

/// Bytes written since the last start of write-out after which the next
/// starts (a 64 KiB request each: 128 requests).
pub const START_AFTER: u64 = 8 << 20;

/// The range written since write-out was last started (or the disk
/// flushed).
#[derive(Default, Debug)]
pub struct WriteOut {
    lo: u64,
    hi: u64,
    bytes: u64,
}

impl WriteOut {
    /// `len` bytes were written at `at`: the range (offset, length) whose
    /// write-out should start now, if enough has been written.
    pub fn wrote(&mut self, at: u64, len: u64) -> Option<(u64, u64)> {
        if len == 0 {
            return None;
        }
        let end = at.saturating_add(len);
        if self.bytes == 0 {
            (self.lo, self.hi) = (at, end);
        } else {
            self.lo = self.lo.min(at);
            self.hi = self.hi.max(end);
        }
        self.bytes = self.bytes.saturating_add(len);
        if self.bytes < START_AFTER {
            return None;
        }
        let range = (self.lo, self.hi - self.lo);
        self.flushed();
        Some(range)
    }

    /// The disk was flushed: everything written before is on it.
    pub fn flushed(&mut self) {
        *self = WriteOut::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_out_starts_once_enough_is_written_over_the_range_written() {
        let mut w = WriteOut::default();
        let chunk = 64 << 10;
        let n = START_AFTER / chunk;
        for i in 0..n - 1 {
            assert_eq!(w.wrote(4096 + i * chunk, chunk), None);
        }
        assert_eq!(w.wrote(0, chunk), Some((0, 4096 + (n - 1) * chunk)));
        // Counted again from nothing.
        assert_eq!(w.wrote(1 << 30, chunk), None);
    }

    #[test]
    fn a_flush_forgets_what_was_written() {
        let mut w = WriteOut::default();
        assert_eq!(w.wrote(0, START_AFTER - 1), None);
        w.flushed();
        assert_eq!(w.wrote(START_AFTER, 1), None);
        assert_eq!(w.wrote(0, START_AFTER - 1), Some((0, START_AFTER + 1)));
        assert_eq!(w.wrote(5, 0), None);
    }
}
