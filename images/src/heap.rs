//! The heap: every byte of guest RAM above the image.
//!
//! Later issues carve page frames out of guest RAM for the monitors; until
//! then the heap takes all of it. Its pages are not touched until used, so a
//! large `--mem` costs the host nothing up front.
//!
//! The allocator is talc: its free lists are binned by size, where the
//! linked-list allocator before it searched one list first-fit. Measured on
//! the storage monitor, whose heap holds a file system's block maps beside
//! 64 KiB request buffers: updating a file's block map for a 256 KiB write
//! took 150 us with the linked list and 20 us with talc, and a 256 MiB
//! sequential write through a processor took 465-530 ms against 415-445 ms
//! (README, storage).

use lego_proto::boot::BootInfo;

#[cfg(not(test))]
#[global_allocator]
static HEAP: talc::Talck<spin::Mutex<()>, talc::ErrOnOom> = talc::Talc::new(talc::ErrOnOom).lock();

/// Bytes the heap manages, for reports.
pub fn size() -> usize {
    #[cfg(not(test))]
    {
        HEAP.lock().get_counters().claimed_bytes
    }
    #[cfg(test)]
    {
        0
    }
}

/// Bytes the heap has free now.
pub fn free() -> usize {
    #[cfg(not(test))]
    {
        HEAP.lock().get_counters().available_bytes
    }
    #[cfg(test)]
    {
        0
    }
}

/// Hands guest RAM from the end of the image to the end of memory to the allocator.
pub fn init(boot: &BootInfo) {
    let start = boot.image_end;
    let end = boot.mem_size;
    if end <= start {
        panic!("no room for a heap: the image ends at {start:#x} and RAM at {end:#x}");
    }
    #[cfg(not(test))]
    // SAFETY: [image_end, mem_size) is RAM that nothing else uses (the VMM
    // puts stacks and boot structures below the image); the heap hands it
    // out at its upper-half alias, where the images run.
    let claimed = unsafe {
        let base = lego_proto::boot::upper(start) as *mut u8;
        HEAP.lock()
            .claim(talc::Span::from_base_size(base, (end - start) as usize))
    };
    #[cfg(not(test))]
    if claimed.is_err() {
        panic!("the heap could not take RAM {start:#x}..{end:#x}");
    }
}
