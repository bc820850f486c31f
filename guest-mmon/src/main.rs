//! guest-mmon: the memory monitor. It serves virtual memory once the fabric
//! and memory-monitor issues land; today it boots, reports what it has and
//! waits.
#![no_std]
#![no_main]

use lego_image::{fabric, heap, BootInfo, Role};

lego_image::guest!(Role::Memory, main);

/// What this memory component has to offer.
pub struct MemorySummary {
    pub ram_bytes: u64,
    pub heap_bytes: u64,
}

fn main(boot: &'static BootInfo) -> ! {
    let summary = MemorySummary {
        ram_bytes: boot.mem_size,
        heap_bytes: heap::size() as u64,
    };
    announce(&summary);
    fabric::serve_or_idle(boot, fabric::echo)
}

#[inline(never)]
fn announce(summary: &MemorySummary) {
    lego_image::println!(
        "memory monitor: {} MiB of RAM, {} MiB of heap; nothing to serve yet; idle until stopped",
        summary.ram_bytes >> 20,
        summary.heap_bytes >> 20
    );
}
