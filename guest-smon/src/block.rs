//! The block device the file system runs on, and an in-memory one for tests
//! that can show the disk as a crash would leave it.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// Bytes in a device sector: the unit the device writes atomically.
pub const SECTOR: usize = 512;

/// The device failed the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoError;

pub trait BlockDevice {
    /// Size in 512-byte sectors.
    fn sectors(&self) -> u64;
    /// `buf.len()` is a multiple of [`SECTOR`].
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError>;
    /// Each `(sector, buf)` as [`BlockDevice::read`]; a device that can
    /// takes them all at once (one exit for the reads of a group).
    fn read_many(&mut self, reads: &mut [(u64, &mut [u8])]) -> Result<(), IoError> {
        reads.iter_mut().try_for_each(|(s, b)| self.read(*s, b))
    }
    /// `buf.len()` is a multiple of [`SECTOR`].
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError>;
    /// The writes `(sector, bytes)` in order, as if one by one: none after
    /// a failed one is made. A device that can takes them all at once (one
    /// exit for a file block and the log record naming it).
    fn write_many(&mut self, writes: &[(u64, &[u8])]) -> Result<(), IoError> {
        writes.iter().try_for_each(|(s, b)| self.write(*s, b))
    }
    /// Everything written before is durable when this returns Ok.
    fn flush(&mut self) -> Result<(), IoError>;
    /// [`BlockDevice::write_many`], then [`BlockDevice::flush`] unless a
    /// write failed. A device that can makes both in one exit (a sync
    /// that follows a group's writes: a program's write and fsync).
    fn write_many_and_flush(&mut self, writes: &[(u64, &[u8])]) -> Result<(), IoError> {
        self.write_many(writes)?;
        self.flush()
    }
}

/// A borrowed device is a device: the caller keeps it when mount fails.
impl<T: BlockDevice + ?Sized> BlockDevice for &mut T {
    fn sectors(&self) -> u64 {
        (**self).sectors()
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        (**self).read(sector, buf)
    }
    fn read_many(&mut self, reads: &mut [(u64, &mut [u8])]) -> Result<(), IoError> {
        (**self).read_many(reads)
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        (**self).write(sector, buf)
    }
    fn write_many(&mut self, writes: &[(u64, &[u8])]) -> Result<(), IoError> {
        (**self).write_many(writes)
    }
    fn flush(&mut self) -> Result<(), IoError> {
        (**self).flush()
    }
    fn write_many_and_flush(&mut self, writes: &[(u64, &[u8])]) -> Result<(), IoError> {
        (**self).write_many_and_flush(writes)
    }
}

/// An in-memory disk for tests. It is sparse (never-written sectors read as
/// zeros and cost nothing) so that cutting a 64 MiB disk at every write of a
/// test is cheap, and it keeps every write call in order so that
/// [`MemDisk::cut`] can rebuild the disk as a crash after any write leaves it.
#[derive(Clone)]
pub struct MemDisk {
    sectors: u64,
    data: BTreeMap<u64, [u8; SECTOR]>,
    /// Every write call, in order: (first sector, bytes).
    journal: Vec<(u64, Vec<u8>)>,
    flushes: u64,
    /// Flushes made on their own (not after writes in the same call).
    flush_calls: u64,
    /// Write calls made, failed ones too (a `write_many` is one, so is a
    /// `write_many_and_flush`): what costs an exit each on the virtual disk.
    calls: u64,
    /// Read calls made (a `read_many` is one).
    read_calls: u64,
    /// Fail every write once this many write calls have been made.
    fail_writes_after: Option<u64>,
    /// Fail only the write call made when this many have been made.
    fail_write: Option<u64>,
}

impl MemDisk {
    pub fn new(sectors: u64) -> Self {
        MemDisk {
            sectors,
            data: BTreeMap::new(),
            journal: Vec::new(),
            flushes: 0,
            flush_calls: 0,
            calls: 0,
            read_calls: 0,
            fail_writes_after: None,
            fail_write: None,
        }
    }

    /// A disk of `bytes` bytes (rounded down to whole sectors).
    pub fn with_bytes(bytes: u64) -> Self {
        Self::new(bytes / SECTOR as u64)
    }

    /// Write calls made so far (failed ones are not counted).
    pub fn writes(&self) -> u64 {
        self.journal.len() as u64
    }

    pub fn flushes(&self) -> u64 {
        self.flushes
    }

    /// Flushes made on their own: each an exit on the virtual disk.
    pub fn flush_calls(&self) -> u64 {
        self.flush_calls
    }

    /// Write calls made, failed ones too (a `write_many` is one, however
    /// many writes it carries).
    pub fn write_calls(&self) -> u64 {
        self.calls
    }

    /// Read calls made (a `read_many` is one, however many reads it
    /// carries): what costs an exit each on the virtual disk.
    pub fn read_calls(&self) -> u64 {
        self.read_calls
    }

    /// Makes every write after the first `n` (counted from creation) fail.
    pub fn fail_writes_after(&mut self, n: Option<u64>) {
        self.fail_writes_after = n;
    }

    /// Fails the one write call made once `n` have been made; the ones
    /// after it work (a device error on one request).
    pub fn fail_write(&mut self, n: Option<u64>) {
        self.fail_write = n;
    }

    /// The disk as a crash right after the first `k` write calls leaves it.
    pub fn cut(&self, k: u64) -> MemDisk {
        self.cut_torn(k, 0)
    }

    /// The disk after the first `k` write calls and the first `torn` sectors
    /// of write `k` (a crash in the middle of a multi-sector write: the
    /// device writes sectors atomically, not whole requests).
    pub fn cut_torn(&self, k: u64, torn: usize) -> MemDisk {
        let mut d = MemDisk::new(self.sectors);
        for (i, (sector, buf)) in self.journal.iter().enumerate() {
            let i = i as u64;
            if i < k {
                d.apply(*sector, buf);
            } else if i == k {
                let n = torn.min(buf.len() / SECTOR);
                d.apply(*sector, &buf[..n * SECTOR]);
            } else {
                break;
            }
        }
        d.journal = self.journal[..k.min(self.writes()) as usize].to_vec();
        d
    }

    /// The sectors write call `i` covered.
    pub fn write_len(&self, i: u64) -> usize {
        self.journal
            .get(i as usize)
            .map_or(0, |(_, b)| b.len() / SECTOR)
    }

    /// Flips bits of one byte on the "medium", bypassing the journal: damage.
    pub fn corrupt(&mut self, sector: u64, offset: usize) {
        let s = self.data.entry(sector).or_insert([0; SECTOR]);
        s[offset % SECTOR] ^= 0x5a;
    }

    fn apply(&mut self, sector: u64, buf: &[u8]) {
        for (i, chunk) in buf.chunks_exact(SECTOR).enumerate() {
            let mut s = [0u8; SECTOR];
            s.copy_from_slice(chunk);
            self.data.insert(sector + i as u64, s);
        }
    }

    fn in_range(&self, sector: u64, len: usize) -> bool {
        len % SECTOR == 0
            && sector
                .checked_add((len / SECTOR) as u64)
                .is_some_and(|end| end <= self.sectors)
    }
}

impl BlockDevice for MemDisk {
    fn sectors(&self) -> u64 {
        self.sectors
    }

    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.read_calls += 1;
        if !self.in_range(sector, buf.len()) {
            return Err(IoError);
        }
        for (i, chunk) in buf.chunks_exact_mut(SECTOR).enumerate() {
            match self.data.get(&(sector + i as u64)) {
                Some(s) => chunk.copy_from_slice(s),
                None => chunk.fill(0),
            }
        }
        Ok(())
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        self.calls += 1;
        if !self.in_range(sector, buf.len()) {
            return Err(IoError);
        }
        if self.fail_writes_after.is_some_and(|n| self.writes() >= n) {
            return Err(IoError);
        }
        let made = self.writes();
        if self.fail_write.take_if(|n| *n == made).is_some() {
            return Err(IoError);
        }
        self.apply(sector, buf);
        self.journal.push((sector, buf.to_vec()));
        Ok(())
    }

    fn read_many(&mut self, reads: &mut [(u64, &mut [u8])]) -> Result<(), IoError> {
        let before = self.read_calls;
        let r = reads.iter_mut().try_for_each(|(s, b)| self.read(*s, b));
        self.read_calls = before + 1;
        r
    }

    fn write_many(&mut self, writes: &[(u64, &[u8])]) -> Result<(), IoError> {
        let before = self.calls;
        let r = writes.iter().try_for_each(|(s, b)| self.write(*s, b));
        self.calls = before + 1;
        r
    }

    fn flush(&mut self) -> Result<(), IoError> {
        self.flushes += 1;
        self.flush_calls += 1;
        Ok(())
    }

    fn write_many_and_flush(&mut self, writes: &[(u64, &[u8])]) -> Result<(), IoError> {
        self.write_many(writes)?;
        self.flushes += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_replays_a_prefix_of_the_writes() {
        let mut d = MemDisk::new(16);
        d.write(0, &[1; SECTOR]).unwrap();
        d.write(1, &[2; 2 * SECTOR]).unwrap();
        d.write(0, &[3; SECTOR]).unwrap();
        let mut buf = [0u8; 3 * SECTOR];
        let mut c = d.cut(2);
        c.read(0, &mut buf).unwrap();
        assert!(buf[..SECTOR].iter().all(|&b| b == 1));
        assert!(buf[SECTOR..].iter().all(|&b| b == 2));
        let mut t = d.cut_torn(1, 1);
        t.read(0, &mut buf).unwrap();
        assert!(buf[SECTOR..2 * SECTOR].iter().all(|&b| b == 2));
        assert!(buf[2 * SECTOR..].iter().all(|&b| b == 0));
        d.read(0, &mut buf[..SECTOR]).unwrap();
        assert_eq!(buf[0], 3);
        assert!(d.read(15, &mut buf[..2 * SECTOR]).is_err());
        assert_eq!(c.writes(), 2);
    }
}
