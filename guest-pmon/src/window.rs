//! Maps a process's virtual pages into its slot of the guest-physical
//! process window (see `lego_proto::process`). No memslot backs the
//! window: the first access to each page faults into the VMM, whose
//! ExCache fetches it from a memory component.

use alloc::alloc::{alloc_zeroed, Layout};

use lego_image::cpu::{self as cpu, virt_to_phys};
use lego_image::hypercall;
use lego_proto::boot::{upper, PML4};
use lego_proto::hypercall::PORT_VREGION;
use lego_proto::memory::VREGION_SHIFT;
use lego_proto::process::{VRegionMap, Window, PROCESS_LOW};

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
    /// The VMM would not give this vRegion a memslot (it logs why).
    Refused(u64),
}

/// The table behind `table[index]`, made if absent. Page tables live in the
/// heap, reached at their upper-half alias.
fn next(table: *mut u64, index: u64, va: u64) -> Result<*mut u64, MapError> {
    // SAFETY: `table` is a live page table page (the VMM's PML4 or one made
    // here), and index < 512.
    let entry = unsafe { &mut *table.add(index as usize) };
    if *entry & PRESENT != 0 {
        if *entry & HUGE != 0 {
            return Err(MapError::Huge(va));
        }
        return Ok(upper(*entry & ADDR) as *mut u64);
    }
    let layout = Layout::from_size_align(4096, 4096).map_err(|_| MapError::NoMemory)?;
    // SAFETY: a non-zero-sized layout.
    let page = unsafe { alloc_zeroed(layout) };
    if page.is_null() {
        return Err(MapError::NoMemory);
    }
    let phys = virt_to_phys(page as u64);
    *entry = phys | PRESENT | WRITABLE | USER;
    Ok(page as *mut u64)
}

/// Maps the vRegions that [start, start + len) touches, of the process in
/// `slot`, to its window: the VMM first gives each its memslot (an access
/// to the window without one would be emulated as MMIO), then one page
/// directory maps the whole vRegion with 2 MiB pages (PVM offers no 1 GiB
/// pages). Pages the process has not mapped fault at its memory component,
/// which says so, and the VMM delivers that as a page fault.
pub fn map(window: Window, slot: u64, start: u64, len: u64) -> Result<(), MapError> {
    let end = start.checked_add(len).ok_or(MapError::OutOfRange(start))?;
    if start < PROCESS_LOW || end > window.user_top() {
        return Err(MapError::OutOfRange(start));
    }
    let first = start >> VREGION_SHIFT;
    let last = (end - 1) >> VREGION_SHIFT;
    for index in first..=last {
        let va = index << VREGION_SHIFT;
        let req = VRegionMap {
            slot: slot as u32,
            status: 0,
            index,
        };
        hypercall::out(PORT_VREGION, cpu::phys_of(&req) as u32);
        // SAFETY: the VMM wrote the status during the hypercall.
        if unsafe { core::ptr::read_volatile(&req.status) } != 0 {
            return Err(MapError::Refused(va));
        }
        let pdpt = next(upper(PML4) as *mut u64, (va >> 39) & 511, va)?;
        let pd = next(pdpt, (va >> 30) & 511, va)?;
        for i in 0..512u64 {
            let at = va + (i << 21);
            // SAFETY: a page directory made by `next`; i < 512.
            unsafe {
                *pd.add(i as usize) = window.gpa(slot, at) | PRESENT | WRITABLE | USER | HUGE
            };
        }
    }
    Ok(())
}
