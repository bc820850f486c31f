//! The page frames of this memory component and the page table from
//! (process, virtual page) to frame, with exact accounting.
//!
//! Frames are numbers; what a frame holds is kept by a [`FrameStore`]
//! (guest RAM in the unikernel, plain memory in the host tests).
//!
//! fork shares frames, as Linux's copy-on-write does: the child's pages
//! name the parent's frames, and the first write to a shared frame (a
//! processor's write-back, which always brings the whole page) gives the
//! writer a frame of its own. So a fork costs bookkeeping, not memory:
//! CPython's multiprocessing tests fork 100 children of a 30 MiB
//! interpreter, which copied page by page ran a 2 GiB component out of
//! frames after 46. Reads never copy. As on Linux with overcommit, the
//! memory is taken when it is written: a write-back that finds no free
//! frame is refused then (OUT_OF_FRAMES), not the fork.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::index::PageIndex;
use crate::PAGE;

pub type Pid = u32;

/// Where frames' bytes live.
pub trait FrameStore {
    fn read(&self, frame: u32, out: &mut [u8; PAGE as usize]);
    fn write(&mut self, frame: u32, data: &[u8; PAGE as usize]);
    fn zero(&mut self, frame: u32);
    /// Bytes free for bookkeeping (the heap), if known.
    fn heap_free(&self) -> u64 {
        0
    }
}

pub struct Frames {
    free: Vec<u32>,
    total: u32,
    /// (pid, virtual page number) -> frame.
    table: BTreeMap<(Pid, u64), u32>,
    /// Frames in use per process.
    per_process: BTreeMap<Pid, u64>,
    /// The pages the VMM may serve reads of itself.
    index: PageIndex,
    /// How many pages beyond the first name each frame (after fork), by
    /// frame: a fork and an exit count every page of a process, so a
    /// count is one index, not a search (4 bytes a frame, beside its 4 KiB).
    shared: Vec<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfFrames;

impl Frames {
    pub fn new(total: u32) -> Frames {
        Frames {
            free: (0..total).rev().collect(),
            total,
            table: BTreeMap::new(),
            per_process: BTreeMap::new(),
            index: PageIndex::new(total as usize),
            shared: alloc::vec![0; total as usize],
        }
    }

    pub fn free_frames(&self) -> u32 {
        self.free.len() as u32
    }

    pub fn total(&self) -> u32 {
        self.total
    }

    pub fn used_by(&self, pid: Pid) -> u64 {
        self.per_process.get(&pid).copied().unwrap_or(0)
    }

    /// The frame of (pid, vpage), if it has one.
    pub fn lookup(&self, pid: Pid, vpage: u64) -> Option<u32> {
        self.table.get(&(pid, vpage)).copied()
    }

    /// The frame of (pid, vpage), given a zeroed one on first touch.
    pub fn touch(
        &mut self,
        pid: Pid,
        vpage: u64,
        store: &mut dyn FrameStore,
    ) -> Result<u32, OutOfFrames> {
        self.take(pid, vpage, Some(store))
    }

    /// [`Frames::touch`] for a page about to be written whole: a new frame
    /// is not zeroed first (a processor's write-back of fresh memory would
    /// otherwise write each frame twice), and a frame shared since a fork
    /// is left to the others: the page gets a frame of its own, not a
    /// copy, since every byte is about to be written.
    pub fn touch_to_overwrite(&mut self, pid: Pid, vpage: u64) -> Result<u32, OutOfFrames> {
        if let Some(f) = self.lookup(pid, vpage) {
            if self.shared[f as usize] == 0 {
                return Ok(f);
            }
            let own = self.free.pop().ok_or(OutOfFrames)?;
            self.unshare(f);
            // The VMM served this page from the shared frame.
            self.index.unpublish(pid, vpage);
            self.table.insert((pid, vpage), own);
            return Ok(own);
        }
        self.take(pid, vpage, None)
    }

    /// One page fewer names frame `f`; the last one frees it.
    fn unshare(&mut self, f: u32) {
        match &mut self.shared[f as usize] {
            0 => self.free.push(f),
            n => *n -= 1,
        }
    }

    /// Frames named by more than one page.
    #[cfg(test)]
    pub fn shared_frames(&self) -> usize {
        self.shared.iter().filter(|&&n| n > 0).count()
    }

    fn take(
        &mut self,
        pid: Pid,
        vpage: u64,
        zero_in: Option<&mut dyn FrameStore>,
    ) -> Result<u32, OutOfFrames> {
        if let Some(f) = self.lookup(pid, vpage) {
            return Ok(f);
        }
        let f = self.free.pop().ok_or(OutOfFrames)?;
        if let Some(store) = zero_in {
            store.zero(f);
        }
        self.table.insert((pid, vpage), f);
        *self.per_process.entry(pid).or_default() += 1;
        Ok(f)
    }

    /// Frees the frames of pid's pages in [start, end) (byte addresses).
    pub fn release(&mut self, pid: Pid, start: u64, end: u64) -> u64 {
        let keys: Vec<(Pid, u64)> = self
            .table
            .range((pid, start / PAGE)..(pid, end.div_ceil(PAGE)))
            .map(|(k, _)| *k)
            .collect();
        for k in &keys {
            self.index.unpublish(k.0, k.1);
            if let Some(f) = self.table.remove(k) {
                self.unshare(f);
            }
        }
        self.uncount(pid, keys.len() as u64);
        keys.len() as u64
    }

    /// Moves pid's pages [from, from + len) to start at `to` (mremap).
    pub fn relocate(&mut self, pid: Pid, from: u64, to: u64, len: u64) {
        let moved: Vec<((Pid, u64), u32)> = self
            .table
            .range((pid, from / PAGE)..(pid, (from + len) / PAGE))
            .map(|(k, f)| (*k, *f))
            .collect();
        for (k, _) in &moved {
            self.index.unpublish(k.0, k.1);
            self.table.remove(k);
        }
        for ((_, vpage), f) in moved {
            let new = vpage - from / PAGE + to / PAGE;
            self.index.unpublish(pid, new);
            self.table.insert((pid, new), f);
        }
    }

    /// Gives `to` every page of `from` (fork), sharing their frames until
    /// one of them is written ([`Frames::touch_to_overwrite`]). The pages
    /// given. A page `to` has already keeps its own frame.
    pub fn copy_process(&mut self, from: Pid, to: Pid) -> u64 {
        let pages: Vec<(u64, u32)> = self
            .table
            .range((from, 0)..(from, u64::MAX))
            .map(|(k, f)| (k.1, *f))
            .collect();
        let mut given = 0;
        for &(vpage, f) in &pages {
            if let alloc::collections::btree_map::Entry::Vacant(e) = self.table.entry((to, vpage)) {
                e.insert(f);
                self.shared[f as usize] += 1;
                given += 1;
            }
        }
        *self.per_process.entry(to).or_default() += given;
        pages.len() as u64
    }

    /// The VMM may serve reads of (pid, vpage) from its frame, whose VMA
    /// has protection `prot` (nothing happens if it has no frame).
    pub fn publish(&mut self, pid: Pid, vpage: u64, prot: u32) {
        if let Some(&f) = self.table.get(&(pid, vpage)) {
            self.index.publish(pid, vpage, f, prot);
        }
    }

    /// The VMM no longer serves pid's pages in [start, end) (byte
    /// addresses): their VMAs are about to change.
    pub fn unpublish_range(&mut self, pid: Pid, start: u64, end: u64) {
        let keys: Vec<u64> = self
            .table
            .range((pid, start / PAGE)..(pid, end.div_ceil(PAGE)))
            .map(|(k, _)| k.1)
            .collect();
        for vpage in keys {
            self.index.unpublish(pid, vpage);
        }
    }

    /// Writes `data` into the frame of (pid, vpage), `frame`, so that a
    /// VMM copy of it made meanwhile is thrown away.
    pub fn write_frame(
        &self,
        pid: Pid,
        vpage: u64,
        frame: u32,
        store: &mut dyn FrameStore,
        data: &[u8; PAGE as usize],
    ) {
        self.index
            .while_writing(pid, vpage, || store.write(frame, data));
    }

    /// The VMM serves pid's pages only to requests of `epoch` (see
    /// `lego_proto::index::EPOCH_VPAGE`).
    pub fn set_epoch(&mut self, pid: Pid, epoch: u32) {
        self.index.set_epoch(pid, epoch);
    }

    /// pid is gone: so is its epoch slot.
    pub fn drop_epoch(&mut self, pid: Pid) {
        self.index.drop_epoch(pid);
    }

    pub fn index(&self) -> &PageIndex {
        &self.index
    }

    /// Frees everything pid had (the process exited).
    pub fn release_process(&mut self, pid: Pid) -> u64 {
        self.release(pid, 0, u64::MAX - PAGE)
    }

    fn uncount(&mut self, pid: Pid, n: u64) {
        if let Some(c) = self.per_process.get_mut(&pid) {
            *c -= n;
            if *c == 0 {
                self.per_process.remove(&pid);
            }
        }
    }

    /// Bytes of page-table bookkeeping per mapped page (for the overhead figure).
    pub const ENTRY_BYTES: u64 =
        (core::mem::size_of::<(Pid, u64)>() + core::mem::size_of::<u32>()) as u64;
}

/// Page frames in a vector: the store of the host unit tests.
#[cfg(test)]
pub(crate) struct VecFrames(pub Vec<[u8; PAGE as usize]>);

#[cfg(test)]
impl FrameStore for VecFrames {
    fn read(&self, f: u32, out: &mut [u8; PAGE as usize]) {
        *out = self.0[f as usize];
    }
    fn write(&mut self, f: u32, d: &[u8; PAGE as usize]) {
        self.0[f as usize] = *d;
    }
    fn zero(&mut self, f: u32) {
        self.0[f as usize] = [0; PAGE as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::VecFrames as Mem;

    #[test]
    fn zero_fill_accounting_and_exhaustion() {
        let mut mem = Mem(vec![[0xaa; PAGE as usize]; 4]);
        let mut fr = Frames::new(4);
        let f = fr.touch(1, 10, &mut mem).unwrap();
        let mut page = [1u8; PAGE as usize];
        mem.read(f, &mut page);
        assert!(page.iter().all(|&b| b == 0), "zero-filled on first touch");
        assert_eq!(
            fr.touch(1, 10, &mut mem),
            Ok(f),
            "same frame on the next touch"
        );
        fr.touch(1, 11, &mut mem).unwrap();
        fr.touch(2, 10, &mut mem).unwrap();
        fr.touch(2, 99, &mut mem).unwrap();
        assert_eq!(fr.touch(3, 1, &mut mem), Err(OutOfFrames));
        assert_eq!((fr.used_by(1), fr.used_by(2), fr.free_frames()), (2, 2, 0));
        assert_eq!(fr.release(1, 11 * PAGE, 12 * PAGE), 1);
        assert_eq!(fr.release_process(2), 2);
        assert_eq!((fr.used_by(1), fr.used_by(2), fr.free_frames()), (1, 0, 3));
        fr.relocate(1, 10 * PAGE, 50 * PAGE, PAGE);
        assert_eq!((fr.lookup(1, 10), fr.lookup(1, 50)), (None, Some(f)));
        assert_eq!(fr.release_process(1), 1);
        assert_eq!(fr.free_frames(), 4, "every frame came back");
    }

    #[test]
    fn fork_shares_frames_until_a_write_back() {
        let mut mem = Mem(vec![[0; PAGE as usize]; 4]);
        let mut fr = Frames::new(4);
        let a = fr.touch(1, 10, &mut mem).unwrap();
        mem.write(a, &[7; PAGE as usize]);
        fr.touch(1, 11, &mut mem).unwrap();
        // Two children: no frame taken, both read the parent's bytes.
        assert_eq!(fr.copy_process(1, 2), 2);
        assert_eq!(fr.copy_process(1, 3), 2);
        assert_eq!((fr.free_frames(), fr.shared_frames()), (2, 2));
        assert_eq!(fr.lookup(2, 10), Some(a));
        assert_eq!(fr.touch(3, 10, &mut mem), Ok(a), "a read does not copy");
        // A write-back gives the writer its own frame; the others keep a.
        let own = fr.touch_to_overwrite(2, 10).unwrap();
        assert_ne!(own, a);
        assert_eq!((fr.lookup(1, 10), fr.lookup(3, 10)), (Some(a), Some(a)));
        assert_eq!(fr.touch_to_overwrite(2, 10), Ok(own), "its own from now on");
        // Out of frames: the write-back is refused, the sharing stays.
        fr.touch_to_overwrite(3, 11).unwrap();
        assert_eq!(fr.free_frames(), 0);
        assert_eq!(fr.touch_to_overwrite(3, 10), Err(OutOfFrames));
        assert_eq!(fr.lookup(3, 10), Some(a));
        // The last page naming a frame frees it.
        assert_eq!(fr.release_process(1), 2);
        assert_eq!(fr.free_frames(), 0, "a and 11's frame still named");
        assert_eq!(fr.release_process(3), 2);
        assert_eq!(fr.release_process(2), 2);
        assert_eq!((fr.free_frames(), fr.shared_frames()), (4, 0));
    }
}
