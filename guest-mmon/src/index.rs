//! The writer's side of the page index (`lego_proto::index`): which frame
//! holds which process page, for the VMM to serve page reads from without
//! waking this guest. Only this guest writes it; every change goes through
//! the slot's sequence lock, so the VMM, reading at any moment, either
//! sees a whole slot or knows it raced and leaves the request to us.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use alloc::collections::BTreeMap;

use lego_proto::index::{
    index_lookup, index_start, Found, IndexSlot, EPOCH_VPAGE, SLOT_EMPTY, SLOT_GONE, SLOT_LIVE,
    SLOT_PROT,
};

use crate::frames::Pid;

pub struct PageIndex {
    slots: Box<[IndexSlot]>,
    /// Live entries and deleted ones (which probes still walk over).
    live: usize,
    gone: usize,
    /// Each process's epoch slot (`EPOCH_VPAGE`), kept here too so that
    /// starting the table again keeps them.
    epochs: BTreeMap<Pid, u32>,
}

impl PageIndex {
    /// An index for about `entries` pages (at least twice as many slots,
    /// a power of two).
    pub fn new(entries: usize) -> PageIndex {
        let n = (entries.max(8) * 2).next_power_of_two();
        let slots: Vec<IndexSlot> = (0..n).map(|_| IndexSlot::empty()).collect();
        PageIndex {
            slots: slots.into_boxed_slice(),
            live: 0,
            gone: 0,
            epochs: BTreeMap::new(),
        }
    }

    /// The VMM serves pid's pages only to requests of `epoch`.
    pub fn set_epoch(&mut self, pid: Pid, epoch: u32) {
        // Out first, old epoch and all: a publish that starts the table
        // again puts back the epochs it knows, and must not meet this one
        // (two live slots for one pid, the VMM reading the older).
        self.epochs.remove(&pid);
        self.unpublish(pid, EPOCH_VPAGE);
        self.publish(pid, EPOCH_VPAGE, epoch, 0);
        self.epochs.insert(pid, epoch);
    }

    /// pid is gone: its epoch slot too.
    pub fn drop_epoch(&mut self, pid: Pid) {
        self.epochs.remove(&pid);
        self.unpublish(pid, EPOCH_VPAGE);
    }

    /// The slots, for the VMM: their address and count.
    pub fn region(&self) -> (*const IndexSlot, usize) {
        (self.slots.as_ptr(), self.slots.len())
    }

    pub fn live(&self) -> usize {
        self.live
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The slot holding (pid, vpage), if published.
    fn find(&self, pid: Pid, vpage: u64) -> Option<usize> {
        let mask = self.mask();
        let mut i = index_start(pid, vpage, mask);
        for _ in 0..self.slots.len() {
            let s = &self.slots[i];
            let state = s.state.load(Ordering::Relaxed);
            if state == SLOT_EMPTY {
                return None;
            }
            if state & SLOT_LIVE != 0
                && s.pid.load(Ordering::Relaxed) == pid
                && s.vpage.load(Ordering::Relaxed) == vpage
            {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// Publishes (pid, vpage) in `frame` with protection `prot` (or
    /// updates it).
    pub fn publish(&mut self, pid: Pid, vpage: u64, frame: u32, prot: u32) {
        let state = SLOT_LIVE | (prot & SLOT_PROT);
        if let Some(i) = self.find(pid, vpage) {
            self.slots[i].write(|s| {
                s.frame.store(frame, Ordering::Relaxed);
                s.state.store(state, Ordering::Relaxed);
            });
            return;
        }
        if (self.live + self.gone + 1) * 4 > self.slots.len() * 3 {
            // Too full to probe fast: start again. Pages are published
            // again as the guest serves them.
            self.clear();
        }
        self.insert(pid, vpage, frame, state);
    }

    /// Puts (pid, vpage) in a free slot (one is left: the table is never
    /// filled past three quarters, but for epoch slots, at most one per
    /// process, which stop at the last free slot).
    fn insert(&mut self, pid: Pid, vpage: u64, frame: u32, state: u32) {
        if self.live + self.gone + 1 >= self.slots.len() {
            return;
        }
        let mask = self.mask();
        let mut i = index_start(pid, vpage, mask);
        loop {
            let st = self.slots[i].state.load(Ordering::Relaxed);
            if st == SLOT_EMPTY || st == SLOT_GONE {
                if st == SLOT_GONE {
                    self.gone -= 1;
                }
                self.slots[i].write(|s| {
                    s.pid.store(pid, Ordering::Relaxed);
                    s.vpage.store(vpage, Ordering::Relaxed);
                    s.frame.store(frame, Ordering::Relaxed);
                    s.state.store(state, Ordering::Relaxed);
                });
                self.live += 1;
                return;
            }
            i = (i + 1) & mask;
        }
    }

    /// Unpublishes (pid, vpage): the VMM no longer serves it.
    pub fn unpublish(&mut self, pid: Pid, vpage: u64) {
        if let Some(i) = self.find(pid, vpage) {
            self.slots[i].write(|s| s.state.store(SLOT_GONE, Ordering::Relaxed));
            self.live -= 1;
            self.gone += 1;
        }
    }

    /// Runs `change` (a write to the frame of (pid, vpage)) with the page's
    /// slot marked as changing, so a VMM copy that overlaps it is thrown away.
    pub fn while_writing<R>(&self, pid: Pid, vpage: u64, change: impl FnOnce() -> R) -> R {
        match self.find(pid, vpage) {
            Some(i) => {
                let mut out = None;
                self.slots[i].write(|_| out = Some(change()));
                match out {
                    Some(r) => r,
                    None => unreachable!("the change ran inside the write"),
                }
            }
            None => change(),
        }
    }

    /// Unpublishes every page (epoch slots stay).
    pub fn clear(&mut self) {
        for s in self.slots.iter() {
            if s.state.load(Ordering::Relaxed) != SLOT_EMPTY {
                s.write(|s| s.state.store(SLOT_EMPTY, Ordering::Relaxed));
            }
        }
        self.live = 0;
        self.gone = 0;
        let epochs: Vec<(Pid, u32)> = self.epochs.iter().map(|(&p, &e)| (p, e)).collect();
        for (pid, epoch) in epochs {
            self.insert(pid, EPOCH_VPAGE, epoch, SLOT_LIVE);
        }
    }

    /// What the VMM would find (the reader's lookup, for tests).
    pub fn lookup(&self, pid: Pid, vpage: u64) -> Option<Found> {
        index_lookup(&self.slots, pid, vpage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn published_pages_are_found_until_unpublished() {
        let mut ix = PageIndex::new(16);
        ix.publish(7, 0x1000, 3, 3);
        ix.publish(8, 0x1000, 4, 1);
        let f = ix.lookup(7, 0x1000).unwrap();
        assert_eq!((f.frame, f.prot), (3, 3));
        assert_eq!(ix.lookup(8, 0x1000).unwrap().frame, 4);
        ix.unpublish(7, 0x1000);
        assert_eq!(ix.lookup(7, 0x1000), None);
        assert_eq!(ix.lookup(8, 0x1000).unwrap().frame, 4);
        ix.publish(8, 0x1000, 5, 3);
        assert_eq!(ix.lookup(8, 0x1000).unwrap().prot, 3);
        assert_eq!(ix.live(), 1);
    }

    #[test]
    fn a_write_in_progress_is_seen_by_the_reader() {
        let mut ix = PageIndex::new(16);
        ix.publish(1, 9, 2, 3);
        let before = ix.lookup(1, 9).unwrap();
        assert!(lego_proto::index::still_valid(&ix.slots, &before));
        ix.while_writing(1, 9, || {
            // Mid-write the reader gets nothing, and an earlier find is stale.
            assert_eq!(index_lookup(&ix.slots, 1, 9), None);
            assert!(!lego_proto::index::still_valid(&ix.slots, &before));
        });
        assert!(!lego_proto::index::still_valid(&ix.slots, &before));
        assert!(ix.lookup(1, 9).is_some());
    }

    /// Epoch slots outlive the clears that make room, one per process,
    /// even when setting one is what fills the table.
    #[test]
    fn epoch_slots_stay_one_per_process_through_clears() {
        let mut ix = PageIndex::new(8);
        let live_epochs = |ix: &PageIndex, pid: Pid| {
            ix.slots
                .iter()
                .filter(|s| {
                    s.state.load(Ordering::Relaxed) & SLOT_LIVE != 0
                        && s.pid.load(Ordering::Relaxed) == pid
                        && s.vpage.load(Ordering::Relaxed) == EPOCH_VPAGE
                })
                .count()
        };
        ix.set_epoch(1, 1);
        ix.set_epoch(2, 1);
        for round in 0..40u32 {
            ix.publish(3, u64::from(round), round, 3);
            // Raised at every fill level, so one raise meets a clear.
            ix.set_epoch(1, round + 2);
            assert_eq!(live_epochs(&ix, 1), 1, "round {round}");
            assert_eq!(live_epochs(&ix, 2), 1, "round {round}");
            assert_eq!(ix.lookup(1, EPOCH_VPAGE).map(|f| f.frame), Some(round + 2));
            assert_eq!(ix.lookup(2, EPOCH_VPAGE).map(|f| f.frame), Some(1));
            // A new process's first epoch, too.
            ix.set_epoch(100 + round, 7);
            assert_eq!(live_epochs(&ix, 100 + round), 1, "round {round}");
            ix.drop_epoch(100 + round);
            assert_eq!(live_epochs(&ix, 100 + round), 0, "round {round}");
        }
        ix.drop_epoch(1);
        assert_eq!(ix.lookup(1, EPOCH_VPAGE), None);
        assert_eq!(live_epochs(&ix, 1), 0);
    }

    proptest! {
        /// Against a map: whatever is published and unpublished, with a
        /// small table that fills and starts again, the reader finds only
        /// what the map has, with its frame and protection.
        #[test]
        fn matches_a_map(ops in proptest::collection::vec((any::<bool>(), 0u32..3, 0u64..40, 0u32..100, 0u32..8), 1..300)) {
            let mut ix = PageIndex::new(8);
            let mut model: BTreeMap<(u32, u64), (u32, u32)> = BTreeMap::new();
            for (publish, pid, vpage, frame, prot) in ops {
                let before = ix.live();
                if publish {
                    ix.publish(pid, vpage, frame, prot);
                    if ix.live() <= before && !model.contains_key(&(pid, vpage)) {
                        // The table was cleared to make room.
                        model.clear();
                    }
                    model.insert((pid, vpage), (frame, prot));
                } else {
                    ix.unpublish(pid, vpage);
                    model.remove(&(pid, vpage));
                }
                prop_assert_eq!(ix.live(), model.len());
                for pid in 0..3 {
                    for vpage in 0..40 {
                        let got = ix.lookup(pid, vpage).map(|f| (f.frame, f.prot));
                        prop_assert_eq!(got, model.get(&(pid, vpage)).copied());
                    }
                }
            }
        }
    }
}
