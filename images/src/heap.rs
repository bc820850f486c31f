//! The heap: every byte of guest RAM above the image.
//!
//! Later issues carve page frames out of guest RAM for the monitors; until
//! then the heap takes all of it. Its pages are not touched until used, so a
//! large `--mem` costs the host nothing up front.

use lego_proto::boot::BootInfo;

#[cfg(not(test))]
#[global_allocator]
static HEAP: linked_list_allocator::LockedHeap = linked_list_allocator::LockedHeap::empty();

/// Bytes the heap manages, for reports.
pub fn size() -> usize {
    #[cfg(not(test))]
    {
        HEAP.lock().size()
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
        HEAP.lock().free()
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
    unsafe {
        HEAP.lock().init(
            lego_proto::boot::upper(start) as *mut u8,
            (end - start) as usize,
        )
    };
}
