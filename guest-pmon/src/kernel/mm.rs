//! A process's address space as the processor sees it: page tables that
//! map its half to its slot of the process window, vRegion by vRegion as
//! it touches them, and the memory calls (made at its home memory
//! component, through the VMM so the ExCache follows them).
//!
//! The page tables hold no knowledge of the process's mappings: every
//! vRegion it touches is mapped whole (one page directory of 2 MiB pages
//! into the window), and whether an address is mapped, and how, is the
//! memory component's to say when the page is first touched. An access it
//! refuses comes back from the VMM as a page fault on a present page.

use alloc::alloc::{alloc_zeroed, dealloc, Layout};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use lego_image::cpu::{phys_of, virt_to_phys};
use lego_image::hypercall;
use lego_proto::hypercall::{
    PORT_MEMORY_CALL, PORT_MEMORY_CALLS, PORT_PROCESS_START, PORT_VREGION,
};
use lego_proto::memory::*;
use lego_proto::process::{
    MemoryCall, MemoryCalls, ProcessStart, VRegionMap, Window, MEMORY_CALLS_MAX,
    PROCESS_FAULTS_TO_GUEST, PROCESS_SHARED_HOLDER,
};

use super::uaccess::UserSpace;
use super::Errno;

/// What top-down mmap leaves free under the top of the address space for
/// the main stack (8 MiB of it, at the top) to overflow into and fault:
/// Linux's smallest gap (MIN_GAP) between the stack top and mmap_base.
const STACK_GAP: u64 = 128 << 20;

const P: u64 = 1;
const W: u64 = 2;
const U: u64 = 4;
const HUGE: u64 = 1 << 7;

fn page() -> Option<*mut u64> {
    let layout = Layout::from_size_align(4096, 4096).ok()?;
    // SAFETY: a non-zero-sized layout.
    let p = unsafe { alloc_zeroed(layout) } as *mut u64;
    (!p.is_null()).then_some(p)
}

fn free_page(p: *mut u64) {
    if let Ok(layout) = Layout::from_size_align(4096, 4096) {
        // SAFETY: allocated by `page` with this layout.
        unsafe { dealloc(p as *mut u8, layout) };
    }
}

/// One address space: a window slot, its memory components' process id,
/// and its page tables.
pub struct Space {
    pub slot: u32,
    /// The process id its memory components know it by.
    pub gpid: u32,
    pub window: Window,
    /// One PDPT per PML4 slot of the user half.
    pdpts: Vec<*mut u64>,
    /// vRegion index -> its page directory.
    pds: BTreeMap<u64, *mut u64>,
    /// 2 MiB chunks split into 4 KiB pages (to refuse some of them).
    pts: BTreeMap<u64, *mut u64>,
    /// Pages a memory component refused: not present here (or read-only,
    /// for a write refused), so the CPU faults on them with the exact
    /// address. Restored when a memory call changes their range.
    /// (The value: the refusal was for protection, EACCES.)
    refused: BTreeMap<u64, bool>,
    /// The program break the home last reported.
    pub brk: u64,
    /// Its home memory component.
    pub home: u32,
    /// Where the program's parts lie (for naming its mappings).
    pub layout: pmon::procfs::Layout,
    /// Ranges that show shared anonymous memory: the holder's pages, in
    /// `holder_slot` (`kernel/syscall/shared_anon.rs`).
    pub redirects: pmon::anon::Redirects,
    pub holder_slot: u32,
    /// Its locked ranges (mlock; [`pmon::mlock`]).
    pub locked: pmon::mlock::Locked,
}

// SAFETY: the page-table pages are owned by the Space and only touched
// under the kernel's lock.
unsafe impl Send for Space {}

impl Space {
    /// A new, empty address space in `slot`; the home memory component is
    /// told at once (OP_NEW). `brk` is where the break starts; `holder`:
    /// it holds shared memory, and is no process's
    /// (`PROCESS_SHARED_HOLDER`).
    pub fn new(
        slot: u32,
        gpid: u32,
        home: u32,
        window: Window,
        brk: u64,
        holder: bool,
    ) -> Result<Space, Errno> {
        let start = ProcessStart {
            slot,
            pid: gpid,
            home,
            status: 0,
            flags: PROCESS_FAULTS_TO_GUEST | if holder { PROCESS_SHARED_HOLDER } else { 0 },
        };
        hypercall::out(PORT_PROCESS_START, phys_of(&start) as u32);
        // SAFETY: the VMM wrote the status during the hypercall.
        if unsafe { core::ptr::read_volatile(&start.status) } != 0 {
            return Err(super::EAGAIN);
        }
        let slots = window.user_top().div_ceil(1 << 39).max(1) as usize;
        let mut pdpts = Vec::with_capacity(slots);
        for _ in 0..slots {
            pdpts.push(page().ok_or(super::ENOMEM)?);
        }
        let mut s = Space {
            home,
            slot,
            gpid,
            window,
            pdpts,
            pds: BTreeMap::new(),
            pts: BTreeMap::new(),
            refused: BTreeMap::new(),
            brk,
            layout: pmon::procfs::Layout::default(),
            redirects: pmon::anon::Redirects::default(),
            holder_slot: 0,
            locked: pmon::mlock::Locked::default(),
        };
        let r = s.call(MemRequest {
            op: OP_NEW,
            addr: brk,
            len: window.user_top(),
            arg: window.user_top().saturating_sub(STACK_GAP),
            ..Default::default()
        });
        match r {
            Ok(b) => {
                s.brk = b;
                Ok(s)
            }
            Err(e) => {
                s.release();
                Err(e)
            }
        }
    }

    /// The PML4 entries of this space's user half.
    pub fn pml4_entries(&self) -> Vec<u64> {
        self.pdpts
            .iter()
            .map(|&p| virt_to_phys(p as u64) | P | W | U)
            .collect()
    }

    /// The mappings, as the home keeps them (for /proc/self/maps): one
    /// OP_MAPS per chunk.
    pub fn maps(&mut self) -> Result<Vec<VmaEntry>, Errno> {
        self.maps_in(0, u64::MAX)
    }

    /// The VMAs that meet [start, end) (and perhaps a few after), asked
    /// from `start` on: a range check costs one call however many VMAs
    /// the process has elsewhere.
    pub fn maps_in(&mut self, start: u64, end: u64) -> Result<Vec<VmaEntry>, Errno> {
        let mut all: Vec<VmaEntry> = Vec::new();
        let mut buf = alloc::vec![0u8; MAX_SYNC_ENTRIES * VMA_ENTRY_LEN];
        loop {
            let from = all.last().map_or(start, |v| v.end);
            if from >= end {
                return Ok(all);
            }
            let req = MemRequest {
                op: OP_MAPS,
                addr: from,
                ..Default::default()
            };
            let (n, got) = self.call_into(req, &mut buf)?;
            let got = &buf[..got.min(buf.len())];
            for chunk in got.chunks_exact(VMA_ENTRY_LEN) {
                if let Ok(v) = <VmaEntry as zerocopy::FromBytes>::read_from_bytes(chunk) {
                    all.push(v);
                }
            }
            if n as usize * VMA_ENTRY_LEN != got.len() {
                return Err(super::EIO);
            }
            if (n as usize) < MAX_SYNC_ENTRIES {
                return Ok(all);
            }
        }
    }

    /// The home memory component's counters (its frames: the memory a
    /// process here can have).
    pub fn home_stats(&mut self) -> Result<MemStats, Errno> {
        let mut buf = alloc::vec![0u8; core::mem::size_of::<MemStats>()];
        let req = MemRequest {
            op: OP_STATS,
            ..Default::default()
        };
        let (_, got) = self.call_into(req, &mut buf)?;
        <MemStats as zerocopy::FromBytes>::read_from_bytes(&buf[..got.min(buf.len())])
            .map_err(|_| super::EIO)
    }

    /// A memory call at the home, through the VMM: its value, or the errno.
    /// Pages refused in the range it changes are mapped again.
    pub fn call(&mut self, req: MemRequest) -> Result<u64, Errno> {
        self.call_into(req, &mut []).map(|(v, _)| v)
    }

    /// [`Self::call`], with what follows the reply copied to `out`: the
    /// value and the bytes copied.
    fn call_into(&mut self, mut req: MemRequest, out: &mut [u8]) -> Result<(u64, usize), Errno> {
        req.pid = self.gpid;
        if !self.refused.is_empty() {
            match req.op {
                OP_MMAP | OP_MPROTECT | OP_MUNMAP | OP_MREMAP | OP_BRK | OP_DISCARD => {
                    // Coarse but safe: a call may move or widen ranges.
                    self.unrefuse(0, u64::MAX);
                }
                _ => {}
            }
        }
        let call = MemoryCall {
            slot: self.slot,
            request: req,
            payload: if out.is_empty() {
                0
            } else {
                virt_to_phys(out.as_ptr() as u64)
            },
            payload_len: out.len() as u32,
            ..Default::default()
        };
        hypercall::out(PORT_MEMORY_CALL, phys_of(&call) as u32);
        // SAFETY: the VMM wrote the reply and the payload's length during
        // the hypercall.
        let (reply, got) = unsafe {
            (
                core::ptr::read_volatile(&call.reply),
                core::ptr::read_volatile(&call.payload_len) as usize,
            )
        };
        errno_of(reply.status).map(|()| (reply.value, got))
    }

    /// Fixed mappings (OP_MMAP with FLAG_FIXED, over ranges that do not
    /// meet) made at the home together, [`MEMORY_CALLS_MAX`] to an exit,
    /// in one round trip (an execve's segments, stack and vDSO: seven
    /// calls of about 130 us each for a static program). The first
    /// error, once all were made.
    pub fn map_fixed(&mut self, maps: &[MemRequest]) -> Result<(), Errno> {
        if !self.refused.is_empty() {
            self.unrefuse(0, u64::MAX);
        }
        let mut first_error = Ok(());
        for chunk in maps.chunks(MEMORY_CALLS_MAX) {
            let mut calls = alloc::boxed::Box::new(MemoryCalls {
                slot: self.slot,
                count: chunk.len() as u32,
                ..Default::default()
            });
            for (to, req) in calls.requests.iter_mut().zip(chunk) {
                *to = MemRequest {
                    op: OP_MMAP,
                    pid: self.gpid,
                    flags: req.flags | FLAG_FIXED,
                    ..*req
                };
            }
            hypercall::out(PORT_MEMORY_CALLS, phys_of(&*calls) as u32);
            for reply in calls.replies.iter().take(chunk.len()) {
                // SAFETY: the VMM wrote the replies during the hypercall.
                let status = unsafe { core::ptr::read_volatile(&reply.status) };
                if first_error.is_ok() {
                    first_error = errno_of(status);
                }
            }
        }
        first_error
    }

    /// Maps vRegion `index` (asking the VMM for its memslot first).
    fn map_vregion(&mut self, index: u64) -> Result<(), Errno> {
        if self.pds.contains_key(&index) {
            return Ok(());
        }
        let va = index << VREGION_SHIFT;
        if va >= self.window.user_top() {
            return Err(super::EFAULT);
        }
        let req = VRegionMap {
            slot: self.slot,
            status: 0,
            index,
        };
        hypercall::out(PORT_VREGION, phys_of(&req) as u32);
        // SAFETY: the VMM wrote the status during the hypercall.
        if unsafe { core::ptr::read_volatile(&req.status) } != 0 {
            return Err(super::ENOMEM);
        }
        let pd = page().ok_or(super::ENOMEM)?;
        for i in 0..512u64 {
            let entry = self.chunk_entry(va + (i << 21));
            // SAFETY: our fresh page directory; i < 512.
            unsafe { *pd.add(i as usize) = entry };
        }
        let pdpt = self.pdpts[(va >> 39) as usize];
        // SAFETY: one of our PDPTs; the index is < 512.
        unsafe { *pdpt.add(((va >> 30) & 511) as usize) = virt_to_phys(pd as u64) | P | W | U };
        self.pds.insert(index, pd);
        Ok(())
    }

    /// A page fault the process took at `addr`, for a page-directory that
    /// is not there yet: maps its vRegion. Err when the address is outside
    /// the process's half (a SIGSEGV).
    pub fn fault_in(&mut self, addr: u64) -> Result<bool, Errno> {
        if addr >= self.window.user_top() {
            return Err(super::EFAULT);
        }
        let index = addr >> VREGION_SHIFT;
        let chunk = addr & !((1 << 21) - 1);
        if self.pds.contains_key(&index) {
            // A chunk of shared memory touched first: its page table.
            if !self.pts.contains_key(&chunk) && self.redirects.meets(chunk, chunk + (1 << 21)) {
                self.page_table(chunk)?;
                return Ok(true);
            }
            // Mapped already: the fault is the memory component's refusal.
            return Ok(false);
        }
        self.map_vregion(index)?;
        Ok(true)
    }

    /// The page-table entry of the 4 KiB page at `page`: the space's own
    /// window page, or the holder's page it is redirected to, present and
    /// writable as the range's protection allows (the CPU enforces it
    /// there; the memory component sees only the holder's mapping).
    fn entry_of(&self, page: u64) -> u64 {
        let Some(p) = self.redirects.find(page) else {
            return self.window.gpa(self.slot as u64, page) | P | W | U;
        };
        let gpa = self
            .window
            .gpa(self.holder_slot as u64, p.at + (page - p.start));
        match p.prot & 7 {
            0 => 0,
            prot if prot & 2 != 0 => gpa | P | W | U,
            _ => gpa | P | U,
        }
    }

    /// The page-directory entry of a 2 MiB chunk with no page table: the
    /// space's own window pages, one 2 MiB page; or, when it shows shared
    /// memory, not present, so that its first touch (or the monitor's
    /// `prepare`) builds its page table: a mapping of many GiB costs page
    /// tables only where it is used.
    fn chunk_entry(&self, chunk: u64) -> u64 {
        if self.redirects.meets(chunk, chunk + (1 << 21)) {
            0
        } else {
            self.window.gpa(self.slot as u64, chunk) | P | W | U | HUGE
        }
    }

    /// The 4 KiB page table of `page`'s 2 MiB chunk, splitting the chunk
    /// (and mapping its vRegion) first.
    fn page_table(&mut self, page: u64) -> Result<*mut u64, Errno> {
        let chunk = page & !((1 << 21) - 1);
        if let Some(&pt) = self.pts.get(&chunk) {
            return Ok(pt);
        }
        self.map_vregion(page >> VREGION_SHIFT)?;
        let Some(&pd) = self.pds.get(&(page >> VREGION_SHIFT)) else {
            return Err(super::EFAULT);
        };
        let pt = self::page().ok_or(super::ENOMEM)?;
        for i in 0..512u64 {
            let entry = self.entry_of(chunk + (i << 12));
            // SAFETY: our fresh page table; i < 512.
            unsafe { *pt.add(i as usize) = entry };
        }
        // SAFETY: our page directory; the index is < 512.
        unsafe { *pd.add(((chunk >> 21) & 511) as usize) = virt_to_phys(pt as u64) | P | W | U };
        self.pts.insert(chunk, pt);
        Ok(pt)
    }

    /// Rewrites the page-table entries of [start, end) from `redirects`
    /// (after it changed there). Allocates nothing: chunks without a page
    /// table get theirs at first touch. The caller flushes the TLB.
    pub fn remap(&mut self, start: u64, end: u64) {
        let mut chunk = start & !((1 << 21) - 1);
        while chunk < end {
            let next = chunk + (1 << 21);
            if let Some(&pt) = self.pts.get(&chunk) {
                let mut page = start.max(chunk) & !0xfff;
                while page < end.min(next) {
                    self.refused.remove(&page);
                    let entry = self.entry_of(page);
                    // SAFETY: our page table; the index is < 512.
                    unsafe { *pt.add(((page >> 12) & 511) as usize) = entry };
                    page += 4096;
                }
            } else if let Some(&pd) = self.pds.get(&(chunk >> VREGION_SHIFT)) {
                let entry = self.chunk_entry(chunk);
                // SAFETY: our page directory; the index is < 512.
                unsafe { *pd.add(((chunk >> 21) & 511) as usize) = entry };
            }
            chunk = next;
        }
    }

    /// Page tables for the chunks of [addr, addr + len) that show shared
    /// memory (their first touch, by the process or by the monitor).
    fn build_shared(&mut self, addr: u64, len: u64) -> Result<(), Errno> {
        if self.redirects.is_empty() || len == 0 {
            return Ok(());
        }
        let mut chunk = addr & !((1 << 21) - 1);
        let end = addr.saturating_add(len);
        while chunk < end {
            if !self.pts.contains_key(&chunk) && self.redirects.meets(chunk, chunk + (1 << 21)) {
                self.page_table(chunk)?;
            }
            chunk += 1 << 21;
        }
        Ok(())
    }

    /// The VMM said the memory component refused the access to the page at
    /// `va` (a write, if `write_only`): the page faults in the CPU from now
    /// on, not present, or read-only for a refused write. Its 2 MiB chunk
    /// is split into 4 KiB pages first.
    pub fn refuse(&mut self, va: u64, write_only: bool, protection: bool) -> Result<(), Errno> {
        let page = va & !0xfff;
        if !self.pds.contains_key(&(page >> VREGION_SHIFT)) {
            return Err(super::EFAULT);
        }
        let pt = self.page_table(page)?;
        let entry = if write_only {
            self.entry_of(page) & !W
        } else {
            0
        };
        // SAFETY: our page table; the index is < 512.
        unsafe { *pt.add(((page >> 12) & 511) as usize) = entry };
        self.refused.insert(page, protection);
        Ok(())
    }

    /// Whether the page tables here let the process make an access at `va`
    /// now (a write if `write`): the entry that maps it (the chunk's 2 MiB
    /// page, or its 4 KiB page where the chunk is split) is present, user
    /// and, for a write, writable. A fault on such an access was taken on a
    /// translation that has changed since.
    pub fn allows(&self, va: u64, write: bool) -> bool {
        let Some(&pd) = self.pds.get(&(va >> VREGION_SHIFT)) else {
            return false;
        };
        let chunk = va & !((1 << 21) - 1);
        // SAFETY: our page table or directory; the index is < 512.
        let entry = match self.pts.get(&chunk) {
            Some(&pt) => unsafe { *pt.add(((va >> 12) & 511) as usize) },
            None => unsafe { *pd.add(((va >> 21) & 511) as usize) },
        };
        entry & (P | U) == P | U && (!write || entry & W != 0)
    }

    /// Whether the page at `va` was refused for its protection (EACCES),
    /// or lies in shared anonymous memory (whose protection the CPU
    /// enforces here).
    pub fn refused_for_protection(&self, va: u64) -> bool {
        self.refused.get(&(va & !0xfff)).copied().unwrap_or(false)
            || self.redirects.find(va).is_some()
    }

    /// A memory call changed [start, end): refused pages there are mapped
    /// again (the memory component decides anew).
    pub fn unrefuse(&mut self, start: u64, end: u64) {
        let pages: Vec<u64> = self.refused.range(start..end).map(|(p, _)| *p).collect();
        for page in pages {
            self.refused.remove(&page);
            let chunk = page & !((1 << 21) - 1);
            if let Some(&pt) = self.pts.get(&chunk) {
                let entry = self.entry_of(page);
                // SAFETY: our page table; the index is < 512.
                unsafe { *pt.add(((page >> 12) & 511) as usize) = entry };
            }
        }
    }

    /// Frees the page tables and ends the slot's process at the VMM (after
    /// OP_EXIT at the home).
    pub fn release(&mut self) {
        for (_, pt) in core::mem::take(&mut self.pts) {
            free_page(pt);
        }
        self.refused.clear();
        for (_, pd) in core::mem::take(&mut self.pds) {
            free_page(pd);
        }
        for pdpt in self.pdpts.drain(..) {
            free_page(pdpt);
        }
        let end = ProcessStart {
            slot: self.slot,
            ..Default::default()
        };
        hypercall::out(PORT_PROCESS_START, phys_of(&end) as u32);
    }

    /// Ends the process at its memory components; its page tables and
    /// slot stay until [`Space::release`] (no vCPU may still walk them).
    pub fn end(&mut self) {
        let _ = self.call(MemRequest {
            op: OP_EXIT,
            ..Default::default()
        });
    }
}

impl UserSpace for Space {
    fn top(&self) -> u64 {
        self.window.user_top()
    }

    fn prepare(&mut self, addr: u64, len: u64, write: bool) -> Result<(), Errno> {
        let first = addr >> VREGION_SHIFT;
        let last = (addr + len - 1) >> VREGION_SHIFT;
        for index in first..=last {
            self.map_vregion(index)?;
        }
        self.build_shared(addr, len)?;
        // Pages the CPU refuses (refused by the memory component, or shared
        // memory's protection) are EFAULT before any access: see `prepare`.
        // Chunks without a page table are one 2 MiB page, all allowed.
        let end = addr + len;
        let first = addr & !((1 << 21) - 1);
        for (&chunk, &pt) in self.pts.range(first..end) {
            let mut page = (addr & !0xfff).max(chunk);
            while page < end.min(chunk + (1 << 21)) {
                // SAFETY: our page table; the index is < 512.
                let entry = unsafe { *pt.add(((page >> 12) & 511) as usize) };
                if entry & P == 0 || (write && entry & W == 0) {
                    return Err(super::EFAULT);
                }
                page += 4096;
            }
        }
        Ok(())
    }
}

/// The errno of a memory call's reply status (OK: none).
fn errno_of(status: u32) -> Result<(), Errno> {
    match status {
        OK => Ok(()),
        ENOMEM | OUT_OF_FRAMES => Err(super::ENOMEM),
        EFAULT => Err(super::EFAULT),
        EACCES => Err(super::EACCES),
        EINVAL => Err(super::EINVAL),
        EEXIST => Err(super::EEXIST),
        ESRCH => Err(super::ESRCH),
        // The memory component cannot be reached: the process cannot
        // go on (the VMM has said why on its stderr).
        _ => Err(super::EIO),
    }
}
