//! Maps a process's virtual pages into its slot of the guest-physical
//! process window (see `lego_proto::process`). No memslot backs the
//! window: the first access to each page exits to the VMM, whose ExCache
//! fetches it from a memory component.

use alloc::alloc::{alloc_zeroed, Layout};

use lego_image::cpu::virt_to_phys;
use lego_proto::boot::PML4;
use lego_proto::process::{Window, PROCESS_LOW};

const PRESENT: u64 = 1;
const WRITABLE: u64 = 2;
const USER: u64 = 4;
const HUGE: u64 = 1 << 7;
const ADDR: u64 = 0x000f_ffff_ffff_f000;

// The fields are read through Debug, in the panic that reports them.
#[allow(dead_code)]
#[derive(Debug)]
pub enum MapError {
    /// Below [`PROCESS_LOW`] (the monitor's own) or above the window's
    /// user top.
    OutOfRange(u64),
    /// A large page is in the way.
    Huge(u64),
    NoMemory,
}

/// The table behind `table[index]`, made if absent. Page tables live in the
/// identity-mapped heap, so their physical and virtual addresses agree.
fn next(table: *mut u64, index: u64, va: u64) -> Result<*mut u64, MapError> {
    // SAFETY: `table` is a live page table page (the VMM's PML4 or one made
    // here), and index < 512.
    let entry = unsafe { &mut *table.add(index as usize) };
    if *entry & PRESENT != 0 {
        if *entry & HUGE != 0 {
            return Err(MapError::Huge(va));
        }
        return Ok((*entry & ADDR) as *mut u64);
    }
    let layout = Layout::from_size_align(4096, 4096).map_err(|_| MapError::NoMemory)?;
    // SAFETY: a non-zero-sized layout.
    let page = unsafe { alloc_zeroed(layout) };
    if page.is_null() {
        return Err(MapError::NoMemory);
    }
    let phys = virt_to_phys(page as u64);
    *entry = phys | PRESENT | WRITABLE | USER;
    Ok(phys as *mut u64)
}

/// Maps [start, start + len) of the process in `slot` to its window.
pub fn map(window: Window, slot: u64, start: u64, len: u64) -> Result<(), MapError> {
    let end = start.checked_add(len).ok_or(MapError::OutOfRange(start))?;
    if start < PROCESS_LOW || end > window.user_top() {
        return Err(MapError::OutOfRange(start));
    }
    let mut va = start & !0xfff;
    while va < end {
        let pdpt = next(PML4 as *mut u64, (va >> 39) & 511, va)?;
        let pd = next(pdpt, (va >> 30) & 511, va)?;
        let pt = next(pd, (va >> 21) & 511, va)?;
        // SAFETY: a page table page made by `next`; index < 512.
        unsafe {
            *pt.add(((va >> 12) & 511) as usize) = window.gpa(slot, va) | PRESENT | WRITABLE | USER
        };
        va += 4096;
    }
    Ok(())
}
