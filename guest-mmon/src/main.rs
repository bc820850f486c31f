//! guest-mmon: the memory monitor. It serves processes' virtual memory
//! over the fabric (the logic is the `mmon` library; this is its shell):
//! page frames are carved from this component's RAM.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::alloc::{alloc, Layout};
use alloc::collections::VecDeque;
use alloc::vec::Vec;

use lego_image::fabric::{self, FabricError, Message};
use lego_image::{cpu, heap, BootInfo, Role};
use lego_proto::frame::Kind;
use lego_proto::index::{PageIndexSetup, PORT_PAGE_INDEX};
use mmon::frames::FrameStore;
use mmon::owner::{Owner, Source};
use mmon::service::{Monitor, Remote};

lego_image::guest!(Role::Memory, main);

/// What this memory component has to offer.
pub struct MemorySummary {
    pub ram_bytes: u64,
    pub heap_bytes: u64,
}

/// Page frames in this component's RAM.
struct RamFrames {
    base: *mut u8,
    count: u32,
}

const PAGE: usize = 4096;

impl RamFrames {
    /// Takes three quarters of the free heap for frames; the rest holds the
    /// page table and the VMAs. The memory is not cleared here: a frame is
    /// zero-filled when first given to a page, and untouched RAM costs the
    /// host nothing.
    fn carve() -> RamFrames {
        let count = (heap::free() / 4 * 3 / PAGE) as u32;
        let layout = Layout::from_size_align(count as usize * PAGE, PAGE).expect("frame layout");
        // SAFETY: a non-empty layout; the frames live as long as the guest.
        let base = unsafe { alloc(layout) };
        assert!(!base.is_null(), "no room for {count} page frames");
        RamFrames { base, count }
    }

    fn at(&self, frame: u32) -> *mut u8 {
        assert!(frame < self.count, "frame {frame} out of range");
        // SAFETY: frame < count, inside the allocation.
        unsafe { self.base.add(frame as usize * PAGE) }
    }
}

impl FrameStore for RamFrames {
    fn read(&self, frame: u32, out: &mut [u8; PAGE]) {
        // SAFETY: a whole frame inside the allocation.
        unsafe { core::ptr::copy_nonoverlapping(self.at(frame), out.as_mut_ptr(), PAGE) };
    }

    fn write(&mut self, frame: u32, data: &[u8; PAGE]) {
        // SAFETY: as above.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), self.at(frame), PAGE) };
    }

    fn zero(&mut self, frame: u32) {
        // SAFETY: as above.
        unsafe { core::ptr::write_bytes(self.at(frame), 0, PAGE) };
    }

    fn heap_free(&self) -> u64 {
        heap::free() as u64
    }
}

fn main(boot: &'static BootInfo) -> ! {
    let summary = MemorySummary {
        ram_bytes: boot.mem_size,
        heap_bytes: heap::size() as u64,
    };
    announce(&summary);
    // The fabric's queues first, then frames from what is left.
    let served = match fabric::init(boot) {
        Ok(()) => true,
        Err(FabricError::Disabled) => false,
        Err(e) => panic!("the VMM refused the fabric queues: {e:?}"),
    };
    let frames = RamFrames::carve();
    let count = frames.count;
    let frames_at = cpu::virt_to_phys(frames.base as u64);
    let n = (boot.vregion_peer_count as usize).min(boot.vregion_peers.len());
    let peers = &boot.vregion_peers[..n];
    let mut monitor = Monitor::new(boot.component_id, peers, frames, count);
    monitor.set_backup(boot.backup);
    lego_image::println!(
        "memory monitor: {count} page frames, vRegion peers {peers:?}, backup {}",
        boot.backup
    );
    if !served {
        cpu::halt_forever()
    }
    offer_page_index(&monitor, frames_at, count);
    lego_image::println!("fabric: component {} serving", boot.component_id);
    let mut remote = FabricRemote {
        later: VecDeque::new(),
        dropped: 0,
    };
    let mut served: u32 = 0;
    let mut owners_seen = 0;
    loop {
        if served % 256 == 0 {
            publish_used(boot, &monitor);
        }
        refresh_owners(boot, &mut monitor, &mut owners_seen);
        let m = match remote.later.pop_front() {
            Some(m) => m,
            None => match fabric::recv(1000) {
                Ok(Some(m)) => m,
                _ => {
                    served = 0;
                    continue;
                }
            },
        };
        served = served.wrapping_add(1);
        if m.header.is_reply() {
            // A late reply to a call that already gave up.
            continue;
        }
        match m.header.kind {
            Kind::Ping => answer(&m, Kind::Pong, &m.payload),
            Kind::Data => {
                let out = monitor.handle(source(&m), &m.payload, &mut remote);
                answer(&m, Kind::Data, &out);
            }
            Kind::Pong | Kind::Error => {}
        }
    }
}

/// Tells the VMM how much of this component's memory holds pages
/// (`BootInfo::mem_used`): a store to guest memory, no exit.
fn publish_used<S: mmon::frames::FrameStore>(boot: &'static BootInfo, monitor: &Monitor<S>) {
    let frames = monitor.frames();
    let used = (frames.total() - frames.free_frames()) as u64 * PAGE as u64;
    // SAFETY: the boot information stays mapped for the guest's life; the
    // VMM only reads this word.
    unsafe {
        core::sync::atomic::AtomicU64::from_ptr(core::ptr::addr_of!(boot.mem_used) as *mut u64)
            .store(used, core::sync::atomic::Ordering::Relaxed)
    };
    let (homed, held) = monitor.process_counts();
    // SAFETY: as above.
    unsafe {
        core::ptr::write_volatile(core::ptr::addr_of!(boot.processes_homed) as *mut u32, homed);
        core::ptr::write_volatile(core::ptr::addr_of!(boot.processes_held) as *mut u32, held);
        core::ptr::write_volatile(
            core::ptr::addr_of!(boot.backup_in_use) as *mut u32,
            monitor.backup(),
        );
    }
}

/// In a rack: takes the managers' vRegion owners when the VMM has written
/// a new list (a seqlock: an odd or moved number means it is being
/// written, and the list is read again at the next request).
fn refresh_owners<S: mmon::frames::FrameStore>(
    boot: &'static BootInfo,
    monitor: &mut Monitor<S>,
    seen: &mut u32,
) {
    use core::sync::atomic::{fence, Ordering};
    // SAFETY: the boot information stays mapped for the guest's life; the
    // VMM writes these words, the guest only reads them.
    let read_seq = || unsafe { core::ptr::read_volatile(core::ptr::addr_of!(boot.owner_seq)) };
    let before = read_seq();
    if before == *seen || before % 2 == 1 {
        return;
    }
    fence(Ordering::Acquire);
    // SAFETY: as above.
    let count = unsafe { core::ptr::read_volatile(core::ptr::addr_of!(boot.owner_count)) } as usize;
    // SAFETY: as above.
    let backup = unsafe { core::ptr::read_volatile(core::ptr::addr_of!(boot.backup)) };
    let mut list = [(0u32, 0u64); lego_proto::memory::MAX_VREGION_PEERS];
    let n = count.min(list.len());
    for (i, slot) in list.iter_mut().enumerate().take(n) {
        // SAFETY: as above.
        let word = unsafe { core::ptr::read_volatile(core::ptr::addr_of!(boot.owners[i])) };
        *slot = ((word >> 32) as u32, (word & 0xffff_ffff) << 20);
    }
    fence(Ordering::Acquire);
    if read_seq() != before {
        return;
    }
    *seen = before;
    monitor.set_rack_owners(&list[..n], boot.mem_size);
    // A new name replaces the old: the managers name another backup when
    // the one before is down, or after their restart when it was never
    // reported (a --backup given by hand never changes: the VMM does not
    // write over it).
    if backup != 0 && monitor.backup() != backup {
        lego_image::println!("memory monitor: the managers named component {backup} as backup");
        monitor.set_backup(backup);
        publish_used(boot, monitor);
    }
}

/// Who sent a message: its VMM checked the source id (it is the one the
/// sender's VMM sealed) and says whether the sender is a memory component.
fn source(m: &Message) -> Source {
    Source {
        id: m.header.src,
        memory: m.header.from_memory(),
    }
}

fn answer(m: &Message, kind: Kind, payload: &[u8]) {
    fabric::reply_to(&m.header, kind, payload);
}

/// Calls to the other memory components, for the homes here.
struct FabricRemote {
    /// Requests that arrived during a call and wait for the main loop.
    later: VecDeque<Message>,
    /// Requests dropped because `later` was full.
    dropped: u64,
}

/// Requests kept while a home waits for another component (the heap is small).
const MAX_LATER: usize = 1024;

/// How long a home waits for another memory component. The VMM answers a
/// call to a dead or silent peer with an error frame after
/// `--fabric-timeout-ms`; this bounds the wait if even that never comes.
const CALL_PATIENCE_MS: u16 = 1000;
const CALL_ROUNDS: u32 = 30;

impl<S: FrameStore> Remote<S> for FabricRemote {
    fn call(&mut self, dst: u32, request: &[u8], owner: &mut Owner<S>) -> Option<Vec<u8>> {
        let id = fabric::start(dst, Kind::Data, request).ok()?;
        let mut idle = 0;
        while idle < CALL_ROUNDS {
            let Ok(Some(m)) = fabric::recv(CALL_PATIENCE_MS) else {
                idle += 1;
                continue;
            };
            if m.header.is_reply() {
                if m.header.request_id == id {
                    return (m.header.kind == Kind::Data).then_some(m.payload);
                }
                continue;
            }
            // Another home's request to this owner is served now: that home
            // may be waiting for us while we wait for it. Unless requests
            // for the same process wait already: they go first, in order.
            let pid_of = |m: &Message| m.payload.get(4..8).map(|b| [b[0], b[1], b[2], b[3]]);
            let queued_same = self.later.iter().any(|q| pid_of(q) == pid_of(&m));
            if m.header.kind == Kind::Data && Monitor::<S>::is_from_home(&m.payload) && !queued_same
            {
                let out = match zerocopy::FromBytes::read_from_prefix(&m.payload[..]) {
                    Ok((r, rest)) => owner.serve_from(source(&m), &r, rest),
                    Err(_) => continue,
                };
                answer(&m, Kind::Data, &out);
            } else if self.later.len() < MAX_LATER {
                self.later.push_back(m);
            } else {
                // The sender's VMM answers it with a timeout error.
                self.dropped += 1;
            }
        }
        None
    }
}

/// Offers the VMM the page index, so it serves page reads of published
/// pages itself (`lego_proto::index`).
fn offer_page_index<S: mmon::frames::FrameStore>(monitor: &Monitor<S>, frames_at: u64, count: u32) {
    let (slots, slot_count) = monitor.frames().index().region();
    let setup = PageIndexSetup {
        slots: cpu::virt_to_phys(slots as u64),
        frames: frames_at,
        slot_count: slot_count as u32,
        frame_count: count,
        status: u32::MAX,
        _pad: 0,
    };
    lego_image::hypercall::out(PORT_PAGE_INDEX, cpu::phys_of(&setup) as u32);
    // SAFETY: the VMM wrote the status during the hypercall.
    let status = unsafe { core::ptr::read_volatile(&setup.status) };
    if status != 0 {
        lego_image::println!(
            "memory monitor: the VMM serves no page reads itself (status {status})"
        );
    }
}

#[inline(never)]
fn announce(summary: &MemorySummary) {
    lego_image::println!(
        "memory monitor: {} MiB of RAM, {} MiB of heap",
        summary.ram_bytes >> 20,
        summary.heap_bytes >> 20
    );
}
