//! guest-mmon: the memory monitor. It serves processes' virtual memory
//! over the fabric (the logic is the `mmon` library; this is its shell):
//! page frames are carved from this component's RAM.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::alloc::{alloc, Layout};

use lego_image::fabric::{self, FabricError};
use lego_image::{cpu, heap, BootInfo, Role};
use mmon::frames::FrameStore;
use mmon::service::Monitor;

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
    let mut monitor = Monitor::new(frames, count);
    lego_image::println!("memory monitor: {count} page frames");
    if !served {
        cpu::halt_forever()
    }
    lego_image::println!("fabric: component {} serving", boot.component_id);
    fabric::serve(move |m| Some(monitor.handle(&m.payload)))
}

#[inline(never)]
fn announce(summary: &MemorySummary) {
    lego_image::println!(
        "memory monitor: {} MiB of RAM, {} MiB of heap",
        summary.ram_bytes >> 20,
        summary.heap_bytes >> 20
    );
}
