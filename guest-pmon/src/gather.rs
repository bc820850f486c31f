//! Small file writes gathered on the processor before they go to the
//! storage component, as a page cache holds dirty pages: a write of up to
//! one request (64 KiB) returns once it is in the file cache and here, and
//! the gathered writes go out together, posted (one exit, the storage
//! component serving them as one group), with the next call that talks to
//! storage (so nothing asked later can overtake them: a read, a stat, a
//! truncate, a sync), when [`MAX_WRITES`] or [`MAX_BYTES`] are held, when
//! the oldest is [`MAX_AGE_NS`] old, and when the processor has nothing to
//! run. Writes that continue the last one (a program writing a file in
//! 4 KiB calls, as stdio does) join it, up to one request.
//!
//! Why: each small write used to wait for its answer, a round trip to the
//! storage component's guest and a disk write there (150-200 us here), and
//! a 4 KiB write and an fdatasync two of them; now the fdatasync carries
//! the write with it.
//!
//! What a crash loses is what Linux's page cache loses: writes not yet
//! synced. What `fsync` acknowledged is on the storage component's disk.

use alloc::vec::Vec;

/// Gathered writes that make a flush.
pub const MAX_WRITES: usize = 32;
/// Gathered bytes that make a flush.
pub const MAX_BYTES: usize = 1 << 20;
/// The age of the oldest gathered write that makes a flush (checked when
/// the processor's monitor runs its timers: each system call and tick).
pub const MAX_AGE_NS: u64 = 10_000_000;

/// One gathered write: which file (`K`: where it goes and its number
/// there), where, the bytes, and when it was made (the file's mtime, on
/// the wall clock).
#[derive(Debug, PartialEq, Eq)]
pub struct Held<K> {
    pub file: K,
    pub offset: u64,
    pub data: Vec<u8>,
    pub now: u64,
}

#[derive(Debug)]
pub struct Gathered<K> {
    writes: Vec<Held<K>>,
    bytes: usize,
    /// When the oldest held write was made (the monotonic clock).
    since: u64,
    /// The most bytes one write may grow to by joining (one request).
    piece: usize,
}

impl<K: PartialEq + Copy> Gathered<K> {
    pub const fn new(piece: usize) -> Self {
        Gathered {
            writes: Vec::new(),
            bytes: 0,
            since: 0,
            piece,
        }
    }

    /// Holds a write (at most one piece) made at `now` (wall clock) and
    /// `at` (monotonic). Returns whether the held writes should go now
    /// ([`MAX_WRITES`] or [`MAX_BYTES`] reached).
    pub fn add(&mut self, file: K, offset: u64, data: &[u8], now: u64, at: u64) -> bool {
        if self.writes.is_empty() {
            self.since = at;
        }
        self.bytes += data.len();
        match self.writes.last_mut() {
            Some(last)
                if last.file == file
                    && last.offset + last.data.len() as u64 == offset
                    && last.data.len() + data.len() <= self.piece =>
            {
                last.data.extend_from_slice(data);
                last.now = now;
            }
            _ => self.writes.push(Held {
                file,
                offset,
                data: data.to_vec(),
                now,
            }),
        }
        self.writes.len() >= MAX_WRITES || self.bytes >= MAX_BYTES
    }

    /// Takes every held write, oldest first.
    pub fn take(&mut self) -> Vec<Held<K>> {
        self.bytes = 0;
        core::mem::take(&mut self.writes)
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Whether the oldest held write is [`MAX_AGE_NS`] old at `at`
    /// (monotonic).
    pub fn stale(&self, at: u64) -> bool {
        !self.writes.is_empty() && at.saturating_sub(self.since) >= MAX_AGE_NS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_written_in_order_gathers_into_pieces() {
        let mut g = Gathered::new(16);
        for i in 0..10u64 {
            assert!(!g.add(7u32, i * 4, &[i as u8; 4], 100 + i, i));
        }
        let held = g.take();
        assert_eq!(held.len(), 3, "{held:?}");
        assert_eq!((held[0].offset, held[0].data.len()), (0, 16));
        assert_eq!((held[1].offset, held[1].data.len()), (16, 16));
        assert_eq!((held[2].offset, held[2].data.len()), (32, 8));
        // The bytes in order, and the latest time of each piece.
        assert_eq!(
            &held[1].data[..],
            &[4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7]
        );
        assert_eq!(held[0].now, 103);
        assert!(g.is_empty() && g.take().is_empty());
    }

    #[test]
    fn other_files_and_other_places_keep_their_order() {
        let mut g = Gathered::new(1 << 16);
        g.add(1u32, 0, b"a", 1, 1);
        g.add(2, 1, b"b", 2, 2); // another file at the next offset: apart
        g.add(1, 1, b"c", 3, 3); // not the last write: apart
        g.add(1, 0, b"d", 4, 4); // an overwrite: apart, after
        let held = g.take();
        let order: Vec<(u32, u64, &[u8])> = held
            .iter()
            .map(|h| (h.file, h.offset, &h.data[..]))
            .collect();
        assert_eq!(
            order,
            [(1, 0, &b"a"[..]), (2, 1, b"b"), (1, 1, b"c"), (1, 0, b"d")]
        );
    }

    #[test]
    fn a_full_or_old_gathering_asks_to_go() {
        let mut g = Gathered::new(1 << 16);
        for i in 0..MAX_WRITES as u64 - 1 {
            assert!(!g.add(0u32, i * 100, b"x", 0, 0));
        }
        assert!(g.add(0, 99_999, b"x", 0, 0), "the 32nd write");
        g.take();
        assert!(!g.add(0, 0, &[0; 1 << 16], 0, 0));
        let mut off = 1 << 16;
        let mut full = false;
        while !full {
            full = g.add(off as u32, off, &[0; 1 << 16], 0, 0);
            off += 1 << 16;
        }
        assert_eq!(off, MAX_BYTES as u64, "full at 1 MiB");
        g.take();
        assert!(!g.stale(u64::MAX), "nothing held is never stale");
        g.add(0, 0, b"x", 1, 5);
        g.add(0, 1, b"x", 2, 5 + MAX_AGE_NS);
        assert!(!g.stale(5 + MAX_AGE_NS - 1));
        assert!(g.stale(5 + MAX_AGE_NS), "the oldest write's age counts");
    }
}
