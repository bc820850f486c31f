//! A memory component's page index: a table in its guest RAM that says
//! which frame holds which process page, published by the memory monitor
//! so that its VMM can answer page reads itself, without waking the guest
//! (what an RDMA one-sided read would do on a NIC).
//!
//! The table is open addressing with linear probing over a power-of-two
//! number of [`IndexSlot`]s. Only the guest writes it; the VMM reads it
//! while the guest runs. Each slot is a sequence lock: the writer makes
//! `seq` odd, changes the slot, and makes `seq` even again; a reader
//! that sees an odd `seq`, or a different `seq` after it read the slot
//! (and the frame), has raced a change and leaves the request to the
//! guest. The guest also brackets writes to a published page's frame with
//! its slot's `seq`, so a page copied while it changed is never served.
//!
//! Only pages the guest has read out itself are published, with the
//! protection their VMA had then; the guest unpublishes a page before its
//! frame is freed or moved and before its VMA changes. A page not in the
//! index, or one whose protection refuses the access, goes to the guest.

use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// EAX = guest-physical address of a [`PageIndexSetup`]: the memory
/// monitor's page index and frames. The VMM writes `status` (0: it will
/// serve reads from them; otherwise it will not, and says why in its log).
pub const PORT_PAGE_INDEX: u16 = 0x630;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct PageIndexSetup {
    /// Guest-physical address of `slot_count` [`IndexSlot`]s.
    pub slots: u64,
    /// Guest-physical address of `frame_count` frames of 4 KiB.
    pub frames: u64,
    /// A power of two.
    pub slot_count: u32,
    pub frame_count: u32,
    pub status: u32,
    pub _pad: u32,
}

/// One slot. `state` is [`SLOT_EMPTY`], [`SLOT_GONE`] (a deleted entry
/// that probes pass over) or [`SLOT_LIVE`] | the page's protection.
#[repr(C)]
pub struct IndexSlot {
    pub seq: AtomicU32,
    pub state: AtomicU32,
    pub pid: AtomicU32,
    pub frame: AtomicU32,
    pub vpage: AtomicU64,
}

pub const INDEX_SLOT_LEN: usize = core::mem::size_of::<IndexSlot>();
const _: () = assert!(INDEX_SLOT_LEN == 24);

pub const SLOT_EMPTY: u32 = 0;
pub const SLOT_GONE: u32 = 1;
pub const SLOT_LIVE: u32 = 0x100;
/// The protection bits of a live slot's `state`.
pub const SLOT_PROT: u32 = 0xff;

impl IndexSlot {
    pub const fn empty() -> IndexSlot {
        IndexSlot {
            seq: AtomicU32::new(0),
            state: AtomicU32::new(SLOT_EMPTY),
            pid: AtomicU32::new(0),
            frame: AtomicU32::new(0),
            vpage: AtomicU64::new(0),
        }
    }

    /// The writer's side: `seq` odd while `change` runs.
    pub fn write(&self, change: impl FnOnce(&IndexSlot)) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        change(self);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }
}

/// The vpage of a process's epoch slot: its `frame` holds the epoch the
/// memory monitor holds the process at (`lego_proto::memory`'s
/// `MemRequest::epoch`). No page lies there (addresses are below 2^57).
/// The VMM serves a read only when the process's epoch slot is there and
/// names the request's epoch; anything else goes to the guest, which
/// decides.
pub const EPOCH_VPAGE: u64 = u64::MAX >> 12;

/// Where probing for (pid, vpage) starts, in a table of `mask + 1` slots.
pub fn index_start(pid: u32, vpage: u64, mask: usize) -> usize {
    let mut x = vpage ^ ((pid as u64) << 40) ^ 0x9e37_79b9_7f4a_7c15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x as usize) & mask
}

/// What a reader found: the frame, the protection, and what it needs to
/// check afterwards with [`still_valid`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub frame: u32,
    pub prot: u32,
    pub slot: usize,
    pub seq: u32,
}

/// The reader's lookup over `slots` (a power-of-two count). None when the
/// page is not published or a change was met (the guest answers then).
pub fn index_lookup(slots: &[IndexSlot], pid: u32, vpage: u64) -> Option<Found> {
    let mask = slots.len().checked_sub(1)?;
    let mut i = index_start(pid, vpage, mask);
    for _ in 0..slots.len() {
        let slot = &slots[i];
        let seq = slot.seq.load(Ordering::Acquire);
        if seq & 1 == 1 {
            return None;
        }
        let state = slot.state.load(Ordering::Relaxed);
        let (p, v, f) = (
            slot.pid.load(Ordering::Relaxed),
            slot.vpage.load(Ordering::Relaxed),
            slot.frame.load(Ordering::Relaxed),
        );
        fence(Ordering::Acquire);
        if slot.seq.load(Ordering::Relaxed) != seq {
            return None;
        }
        if state == SLOT_EMPTY {
            return None;
        }
        if state & SLOT_LIVE != 0 && p == pid && v == vpage {
            return Some(Found {
                frame: f,
                prot: state & SLOT_PROT,
                slot: i,
                seq,
            });
        }
        i = (i + 1) & mask;
    }
    None
}

/// Whether the guest holds `pid` at `epoch`, as its epoch slot says (a
/// slot met while it changed, or none, says no).
pub fn epoch_matches(slots: &[IndexSlot], pid: u32, epoch: u32) -> bool {
    index_lookup(slots, pid, EPOCH_VPAGE).is_some_and(|f| f.frame == epoch)
}

/// Whether the slot a lookup found is unchanged (call after copying the
/// frame: a changed slot means the copy may be torn).
pub fn still_valid(slots: &[IndexSlot], found: &Found) -> bool {
    fence(Ordering::Acquire);
    slots
        .get(found.slot)
        .is_some_and(|s| s.seq.load(Ordering::Relaxed) == found.seq)
}
