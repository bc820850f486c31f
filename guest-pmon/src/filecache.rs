//! The processor's cache of storage file data: 64 KiB chunks of files
//! (by inode), kept in the monitor's memory within a byte budget, oldest
//! first out. Reads are served from it and fill it a whole chunk run at a
//! time (which is also the read-ahead); writes go through to the storage
//! component first and then patch the chunks they touch, so the storage
//! component always holds everything a program wrote.
//!
//! Consistency is NFS's close-to-open: what a processor caches of a file
//! is checked at each open against the file's size and times at the
//! storage component, and dropped if another processor changed it; every
//! process of this processor shares the cache, so they always agree.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

/// Bytes of one chunk (and of one storage request).
pub const CHUNK: u64 = 64 * 1024;

/// A buffer's capacity: a chunk and a storage reply's head in front of
/// it, so a buffer serves as a chunk or as a room for a read's reply
/// without growing (a Vec that grows doubles: a chunk would hold 128 KiB
/// of the monitor's heap while the budget counts 64).
const BUFFER: usize = CHUNK as usize + lego_proto::storage::REPLY_HEAD;

/// Spare chunk buffers kept at most: a few beyond what the budget holds,
/// and the rooms of the pieces read ahead (a few MiB).
const SPARE_MAX: usize = 160;

/// What the cache last knew of a file: its size and change times.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Version {
    pub size: u64,
    pub mtime: u64,
    pub ctime: u64,
}

/// Counters for the exit line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub hits: u64,
    pub misses: u64,
    pub dropped: u64,
}

/// A chunk's bytes: `buf[skip..]`, which are the chunk's from byte
/// `first` on. A whole chunk starts at 0 and is shorter than CHUNK only
/// at the file's end; a random read's few blocks are a part of one
/// ([`FileCache::fill_part`]). A chunk read ahead keeps the buffer its
/// reply came in, after the reply's head, rather than being copied out
/// of it.
struct Chunk {
    buf: Vec<u8>,
    skip: usize,
    first: usize,
}

impl Chunk {
    fn whole(buf: Vec<u8>, skip: usize) -> Chunk {
        Chunk {
            buf,
            skip,
            first: 0,
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.skip..]
    }

    fn len(&self) -> usize {
        self.buf.len() - self.skip
    }

    /// Where its bytes end in the chunk.
    fn end(&self) -> usize {
        self.first + self.len()
    }
}

pub struct FileCache {
    budget: u64,
    used: u64,
    /// (inode, chunk index) -> the chunk.
    chunks: BTreeMap<(u64, u64), Chunk>,
    order: VecDeque<(u64, u64)>,
    versions: BTreeMap<u64, Version>,
    /// Buffers of chunks that left, kept for the next: the monitor's
    /// allocator (a linked list) slows down when thousands of 64 KiB
    /// blocks come and go.
    spare: Vec<Vec<u8>>,
    /// Moves whenever what is known of a file changes (a write, a
    /// truncation, another processor's change): a read-ahead asked for
    /// before is stale ([`FileCache::generation`]).
    generations: BTreeMap<u64, u64>,
    pub counts: Counts,
}

impl FileCache {
    pub fn new(budget: u64) -> FileCache {
        FileCache {
            budget,
            used: 0,
            chunks: BTreeMap::new(),
            order: VecDeque::new(),
            versions: BTreeMap::new(),
            spare: Vec::new(),
            generations: BTreeMap::new(),
            counts: Counts::default(),
        }
    }

    pub fn used(&self) -> u64 {
        self.used
    }

    /// The file's generation: bytes read from storage while it stays the
    /// same may be filled in.
    pub fn generation(&self, ino: u64) -> u64 {
        self.generations.get(&ino).copied().unwrap_or(0)
    }

    fn moved(&mut self, ino: u64) {
        *self.generations.entry(ino).or_insert(0) += 1;
    }

    /// Whether chunk `index` of `ino` is cached whole (to the file's end
    /// if that comes first).
    pub fn holds(&self, ino: u64, index: u64) -> bool {
        let size = self.size(ino).unwrap_or(0);
        self.chunks.get(&(ino, index)).is_some_and(|c| {
            c.first == 0 && (c.len() as u64 == CHUNK || index * CHUNK + c.len() as u64 >= size)
        })
    }

    /// The file's size as last known.
    pub fn size(&self, ino: u64) -> Option<u64> {
        self.versions.get(&ino).map(|v| v.size)
    }

    /// At open: `seen` is the file as the storage component has it now.
    /// A file changed since it was cached (by another processor) loses
    /// its chunks.
    pub fn check(&mut self, ino: u64, seen: Version) {
        match self.versions.get(&ino) {
            Some(v) if *v == seen => {}
            Some(_) => {
                self.drop_file(ino);
                self.versions.insert(ino, seen);
                self.counts.dropped += 1;
            }
            None => {
                self.versions.insert(ino, seen);
            }
        }
    }

    /// This processor changed the file: the storage component's answer
    /// says what it is now.
    pub fn changed(&mut self, ino: u64, now: Version) {
        self.moved(ino);
        self.versions.insert(ino, now);
    }

    /// This processor wrote the file up to `end` at time `now` without
    /// waiting for the storage component (write-behind): the file as it
    /// will be once the write is served, which sets the times to the
    /// request's `now`.
    pub fn grew(&mut self, ino: u64, end: u64, now: u64) {
        self.moved(ino);
        if let Some(v) = self.versions.get_mut(&ino) {
            v.size = v.size.max(end);
            v.mtime = now;
            v.ctime = now;
        }
    }

    /// What the cache knew of `ino` may be wrong (a write-behind failed):
    /// its chunks and version go; the next open or read asks again.
    pub fn forget(&mut self, ino: u64) {
        self.drop_file(ino);
        self.versions.remove(&ino);
    }

    /// Bytes [offset, offset + len) of `ino` from the cache, or None if a
    /// chunk of it is missing. Stops early at the end of the file.
    pub fn read(&mut self, ino: u64, offset: u64, len: usize) -> Option<Vec<u8>> {
        let size = self.versions.get(&ino)?.size;
        let end = size.min(offset.saturating_add(len as u64));
        if offset >= end {
            // At or past the end: nothing to read, if the size is known.
            self.counts.hits += 1;
            return Some(Vec::new());
        }
        let mut out = Vec::with_capacity((end - offset) as usize);
        let mut at = offset;
        while at < end {
            let (index, within) = (at / CHUNK, (at % CHUNK) as usize);
            let chunk = self.chunks.get(&(ino, index))?;
            let stop = (CHUNK as usize).min(within + (end - at) as usize);
            let from = within.checked_sub(chunk.first)?;
            let bytes = chunk
                .bytes()
                .get(from..stop.min(chunk.end()) - chunk.first)?;
            if bytes.is_empty() {
                return None;
            }
            out.extend_from_slice(bytes);
            at += bytes.len() as u64;
        }
        self.counts.hits += 1;
        Some(out)
    }

    /// Bytes read from storage at `offset` (a chunk boundary): they become
    /// chunks. The last one may be short (the end of the file).
    pub fn fill(&mut self, ino: u64, offset: u64, data: &[u8]) {
        debug_assert_eq!(offset % CHUNK, 0);
        self.counts.misses += 1;
        for (k, piece) in data.chunks(CHUNK as usize).enumerate() {
            let buf = self.buffer(piece);
            self.put((ino, offset / CHUNK + k as u64), Chunk::whole(buf, 0));
        }
    }

    /// Bytes read from storage at `offset`, all inside one chunk (a random
    /// read's blocks, not the whole chunk): kept as that part of the
    /// chunk, unless the chunk holds more already.
    pub fn fill_part(&mut self, ino: u64, offset: u64, data: &[u8]) {
        let (index, first) = (offset / CHUNK, (offset % CHUNK) as usize);
        if data.is_empty() || first + data.len() > CHUNK as usize {
            return;
        }
        self.counts.misses += 1;
        if let Some(c) = self.chunks.get(&(ino, index)) {
            if c.first <= first && first + data.len() <= c.end() {
                return;
            }
        }
        // Its own size: a chunk's buffer would hold 64 KiB for a few.
        self.put(
            (ino, index),
            Chunk {
                buf: data.to_vec(),
                skip: 0,
                first,
            },
        );
    }

    /// Bytes read from storage at `offset` (a chunk boundary), at most a
    /// chunk, which are `buf[data]`: the buffer becomes the chunk as it is.
    pub fn adopt(
        &mut self,
        ino: u64,
        offset: u64,
        mut buf: Vec<u8>,
        data: core::ops::Range<usize>,
    ) {
        if offset % CHUNK != 0
            || data.is_empty()
            || data.len() as u64 > CHUNK
            || data.end > buf.len()
        {
            self.give_back(buf);
            return;
        }
        buf.truncate(data.end);
        self.put((ino, offset / CHUNK), Chunk::whole(buf, data.start));
    }

    /// A buffer of `len` bytes to read into: a spare one if there is one,
    /// its old bytes left in it (whoever fills it overwrites them).
    pub fn room(&mut self, len: usize) -> Vec<u8> {
        let Some(mut b) = self.spare.pop() else {
            let mut b = Vec::with_capacity(len.max(BUFFER));
            b.resize(len, 0);
            return b;
        };
        if b.len() < len {
            b.reserve_exact(len - b.len());
            b.resize(len, 0);
        } else {
            b.truncate(len);
        }
        b
    }

    /// A buffer from [`FileCache::room`] not kept after all.
    pub fn give_back(&mut self, buf: Vec<u8>) {
        // Only buffers that hold a chunk without growing.
        if self.spare.len() < SPARE_MAX && buf.capacity() >= BUFFER {
            self.spare.push(buf);
        }
    }

    /// A write of `data` at `offset` that the storage component took:
    /// the chunks it touches are patched where they hold the bytes around
    /// it, else dropped (read again when needed).
    pub fn wrote(&mut self, ino: u64, offset: u64, data: &[u8]) {
        self.moved(ino);
        let mut at = offset;
        let end = offset + data.len() as u64;
        while at < end {
            let (index, within) = (at / CHUNK, (at % CHUNK) as usize);
            let n = ((CHUNK as usize - within) as u64).min(end - at) as usize;
            let src = &data[(at - offset) as usize..(at - offset) as usize + n];
            let key = (ino, index);
            match self.chunks.get_mut(&key) {
                // The write starts inside (or right at the end of) what
                // the chunk holds: patch and perhaps extend it.
                Some(c) if c.first <= within && within <= c.end() => {
                    let old = c.len();
                    let at = c.skip + within - c.first;
                    if at + n > c.buf.len() {
                        c.buf.resize(at + n, 0);
                    }
                    c.buf[at..at + n].copy_from_slice(src);
                    self.used += (c.len() - old) as u64;
                }
                Some(_) => self.remove(key),
                // A whole new chunk, or the file's new tail from a chunk
                // boundary: worth keeping (a program reads back what it
                // wrote).
                None if within == 0 => {
                    let buf = self.buffer(src);
                    self.put(key, Chunk::whole(buf, 0))
                }
                None => {}
            }
            at += n as u64;
        }
        self.evict();
    }

    /// The file was truncated (or extended) to `size`.
    pub fn truncated(&mut self, ino: u64, size: u64) {
        self.moved(ino);
        let keys: Vec<(u64, u64)> = self
            .chunks
            .range((ino, size / CHUNK)..=(ino, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            let start = key.1 * CHUNK;
            let keep = size.saturating_sub(start) as usize;
            match self.chunks.get_mut(&key) {
                Some(c) if c.first < keep && c.end() > keep => {
                    self.used -= (c.end() - keep) as u64;
                    c.buf.truncate(c.skip + keep - c.first);
                }
                Some(c) if c.first < keep => {}
                Some(_) => self.remove(key),
                None => {}
            }
        }
    }

    /// Drops everything cached of `ino`.
    pub fn drop_file(&mut self, ino: u64) {
        self.moved(ino);
        let keys: Vec<(u64, u64)> = self
            .chunks
            .range((ino, 0)..=(ino, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            self.remove(key);
        }
    }

    /// A chunk buffer holding `bytes`: a spare one if there is one.
    fn buffer(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut b = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BUFFER));
        b.clear();
        b.extend_from_slice(bytes);
        b
    }

    fn put(&mut self, key: (u64, u64), chunk: Chunk) {
        if self.budget == 0 {
            self.give_back(chunk.buf);
            return;
        }
        self.used += chunk.len() as u64;
        if let Some(old) = self.chunks.insert(key, chunk) {
            self.used -= old.len() as u64;
            self.give_back(old.buf);
        } else {
            self.order.push_back(key);
        }
        self.evict();
    }

    fn remove(&mut self, key: (u64, u64)) {
        if let Some(old) = self.chunks.remove(&key) {
            self.used -= old.len() as u64;
            self.give_back(old.buf);
        }
    }

    /// Oldest chunks out until the cache fits its budget. `order` may name
    /// chunks already removed; they are skipped.
    fn evict(&mut self) {
        while self.used > self.budget {
            let Some(key) = self.order.pop_front() else {
                break;
            };
            self.remove(key);
        }
        // Keep the queue from growing with names of removed chunks.
        if self.order.len() > 2 * self.chunks.len() + 64 {
            let chunks = &self.chunks;
            self.order.retain(|k| chunks.contains_key(k));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(size: u64) -> Version {
        Version {
            size,
            mtime: 1,
            ctime: 1,
        }
    }

    fn bytes(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn reads_come_from_filled_chunks_and_stop_at_the_end() {
        let mut c = FileCache::new(1 << 20);
        let data = bytes(100_000, 1);
        c.check(5, v(100_000));
        assert_eq!(c.read(5, 0, 10), None);
        c.fill(5, 0, &data);
        assert_eq!(c.read(5, 10, 20).as_deref(), Some(&data[10..30]));
        assert_eq!(c.read(5, 60_000, 40_000).as_deref(), Some(&data[60_000..]));
        assert_eq!(c.read(5, 100_000, 10).as_deref(), Some(&[][..]));
        assert_eq!(c.used(), 100_000);
    }

    #[test]
    fn writes_patch_extend_or_drop_chunks() {
        let mut c = FileCache::new(1 << 20);
        let mut data = bytes(70_000, 2);
        c.check(1, v(70_000));
        c.fill(1, 0, &data);
        // Inside, and past the end of the short last chunk.
        c.wrote(1, 100, b"hello");
        data[100..105].copy_from_slice(b"hello");
        c.wrote(1, 70_000, b"tail");
        data.extend_from_slice(b"tail");
        c.changed(1, v(70_004));
        assert_eq!(c.read(1, 0, 70_004).as_deref(), Some(&data[..]));
        // A write leaving a gap after a chunk's bytes drops the chunk.
        c.wrote(1, 70_010, b"x");
        assert_eq!(c.read(1, CHUNK, 10), None);
    }

    #[test]
    fn a_write_behind_grows_the_file_as_served_and_a_failure_forgets_it() {
        let mut c = FileCache::new(1 << 20);
        let data = bytes(2 * CHUNK as usize, 5);
        c.check(4, v(0));
        c.wrote(4, 0, &data);
        // Not answered yet: the size is what the write makes it, so the
        // bytes read back are the ones written, and the times are the
        // request's, as the storage component sets them.
        c.grew(4, data.len() as u64, 9);
        assert_eq!(c.read(4, 0, data.len() + 10).as_deref(), Some(&data[..]));
        c.check(
            4,
            Version {
                size: data.len() as u64,
                mtime: 9,
                ctime: 9,
            },
        );
        assert!(c.read(4, 0, 10).is_some(), "its own write is no change");
        // A smaller write behind does not shrink it.
        c.grew(4, 10, 10);
        assert_eq!(c.read(4, 0, data.len()).map(|b| b.len()), Some(data.len()));
        c.forget(4);
        assert_eq!(c.read(4, 0, 10), None);
        assert_eq!(c.used(), 0);
        // Unknown files are left unknown.
        c.grew(8, 100, 1);
        assert_eq!(c.read(8, 0, 10), None);
    }

    #[test]
    fn adopted_buffers_are_chunks_after_their_head() {
        let mut c = FileCache::new(1 << 20);
        let data = bytes(CHUNK as usize + 100, 6);
        c.check(3, v(data.len() as u64));
        // Two replies with a 40-byte head each, the second short.
        for (k, piece) in data.chunks(CHUNK as usize).enumerate() {
            let mut room = c.room(40 + CHUNK as usize);
            room[40..40 + piece.len()].copy_from_slice(piece);
            c.adopt(3, k as u64 * CHUNK, room, 40..40 + piece.len());
        }
        assert_eq!(c.used(), data.len() as u64);
        assert_eq!(c.read(3, 0, data.len()).as_deref(), Some(&data[..]));
        // Writes patch and extend them where their bytes are, truncation
        // trims them.
        let mut want = data.clone();
        c.wrote(3, 10, b"patch");
        want[10..15].copy_from_slice(b"patch");
        c.wrote(3, data.len() as u64, b"more");
        want.extend_from_slice(b"more");
        c.changed(3, v(want.len() as u64));
        assert_eq!(c.read(3, 0, want.len()).as_deref(), Some(&want[..]));
        c.truncated(3, CHUNK + 50);
        c.changed(3, v(CHUNK + 50));
        assert_eq!(
            c.read(3, 0, 1 << 20).as_deref(),
            Some(&want[..CHUNK as usize + 50])
        );
        assert_eq!(c.used(), CHUNK + 50);
        // A buffer that is not a chunk's worth is given back, not kept.
        let room = c.room(10);
        c.adopt(3, 5, room, 0..10);
        assert_eq!(c.used(), CHUNK + 50);
        // Rooms come from the spares without losing their length, and a
        // reply's room fits a spare chunk's buffer without growing it.
        c.drop_file(3);
        assert_eq!(c.used(), 0);
        assert_eq!(c.room(CHUNK as usize + 40).len(), CHUNK as usize + 40);
        c.fill(4, 0, &bytes(100, 1));
        c.drop_file(4);
        let room = c.room(BUFFER);
        assert_eq!((room.len(), room.capacity()), (BUFFER, BUFFER));
    }

    #[test]
    fn parts_of_chunks_serve_what_they_hold_and_follow_writes() {
        let mut c = FileCache::new(1 << 20);
        let data = bytes(3 * CHUNK as usize, 8);
        c.check(6, v(data.len() as u64));
        let at = CHUNK as usize + 8192;
        c.fill_part(6, at as u64, &data[at..at + 4096]);
        assert_eq!(c.used(), 4096);
        // What it holds, and nothing around it.
        assert_eq!(
            c.read(6, at as u64 + 10, 100).as_deref(),
            Some(&data[at + 10..at + 110])
        );
        assert_eq!(c.read(6, at as u64 - 1, 2), None);
        assert_eq!(c.read(6, at as u64 + 4000, 200), None);
        assert!(!c.holds(6, 1), "a part is not the whole chunk");
        // A part inside it changes nothing; another replaces it.
        c.fill_part(6, at as u64 + 4096 - 512, &data[at + 4096 - 512..at + 4096]);
        assert_eq!(c.used(), 4096);
        // Writes: inside or right after it patch and extend it; one that
        // leaves a gap, or starts before it, drops it.
        let mut want = data.clone();
        c.wrote(6, at as u64 + 4, b"xy");
        want[at + 4..at + 6].copy_from_slice(b"xy");
        c.wrote(6, at as u64 + 4096, b"tail");
        want[at + 4096..at + 4100].copy_from_slice(b"tail");
        assert_eq!(
            c.read(6, at as u64, 4100).as_deref(),
            Some(&want[at..at + 4100])
        );
        c.wrote(6, at as u64 - 10, b"before");
        assert_eq!(c.read(6, at as u64, 10), None);
        // Truncation inside a part trims it; before it, removes it.
        c.fill_part(6, at as u64, &want[at..at + 4096]);
        c.truncated(6, at as u64 + 100);
        c.changed(6, v(at as u64 + 100));
        assert_eq!(
            c.read(6, at as u64, 4096).as_deref(),
            Some(&want[at..at + 100])
        );
        c.truncated(6, at as u64 - 1);
        assert_eq!(c.used(), 0);
        // A whole chunk read later replaces a part, and is held.
        c.fill_part(6, 0, &data[..4096]);
        c.fill(6, 0, &data[..CHUNK as usize]);
        assert!(c.holds(6, 0));
        // Garbage: a part crossing its chunk's end is not kept.
        c.fill_part(6, CHUNK - 10, &data[..20]);
        assert_eq!(c.used(), CHUNK);
    }

    #[test]
    fn every_change_moves_the_generation() {
        let mut c = FileCache::new(1 << 20);
        c.check(2, v(10));
        let mut g = c.generation(2);
        let mut moved = |c: &FileCache, what: &str| {
            assert!(c.generation(2) > g, "{what} moves it");
            g = c.generation(2);
        };
        c.wrote(2, 0, b"x");
        moved(&c, "a write");
        c.grew(2, 20, 3);
        moved(&c, "a write behind");
        c.truncated(2, 5);
        moved(&c, "a truncation");
        c.changed(2, v(5));
        moved(&c, "a change");
        c.check(2, v(6));
        moved(&c, "another processor's change");
        c.forget(2);
        moved(&c, "a failed write behind");
        let before = c.generation(2);
        c.check(2, v(6));
        c.fill(2, 0, &bytes(6, 1));
        assert!(c.holds(2, 0) && !c.holds(2, 1));
        assert_eq!(c.generation(2), before, "reads do not");
        assert_eq!(c.generation(9), 0);
    }

    #[test]
    fn another_processors_change_drops_the_file_at_open() {
        let mut c = FileCache::new(1 << 20);
        c.check(3, v(10));
        c.fill(3, 0, &bytes(10, 3));
        c.check(3, v(10));
        assert!(c.read(3, 0, 10).is_some());
        c.check(
            3,
            Version {
                size: 10,
                mtime: 2,
                ctime: 2,
            },
        );
        assert_eq!(c.read(3, 0, 10), None);
        assert_eq!(c.counts.dropped, 1);
    }

    #[test]
    fn truncation_trims_and_the_budget_evicts_oldest_first() {
        let mut c = FileCache::new(3 * CHUNK);
        c.check(9, v(5 * CHUNK));
        c.fill(9, 0, &bytes(5 * CHUNK as usize, 4));
        assert!(c.used() <= 3 * CHUNK);
        assert_eq!(c.read(9, 0, 10), None, "the oldest chunks went first");
        assert!(c.read(9, 4 * CHUNK, 10).is_some());
        c.truncated(9, 4 * CHUNK + 5);
        c.changed(9, v(4 * CHUNK + 5));
        assert_eq!(c.read(9, 4 * CHUNK, 100).map(|b| b.len()), Some(5));
        c.drop_file(9);
        assert_eq!(c.used(), 0);
    }
}
