//! Host memory behind the process window: one memslot per vRegion a
//! process uses, backed by a 1 GiB reservation (`MAP_NORESERVE`, so it
//! costs host memory only for the pages cached in it) that the ExCache's
//! userfaultfd serves. The guest asks for a vRegion before it maps it
//! (`PORT_VREGION`), so no access ever lands in the window without a
//! memslot (which KVM would emulate as MMIO).
//!
//! Memslots change outside the ExCache's lock, always: KVM waits for every
//! vCPU to leave its memory-read section before a memslot change is done,
//! and a vCPU blocked on a page fault stays in it until a handler thread,
//! which needs the lock, serves the fault. So the bookkeeping here is
//! split in a part under the lock (reserve, forget) and the memslot calls
//! the caller makes after letting the lock go.

use std::collections::HashMap;
use std::sync::Arc;

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use lego_proto::memory::{VREGION_SHIFT, VREGION_SIZE};
use lego_proto::process::Window;

use super::uffd::Uffd;

/// Memslot 0 is guest RAM.
const FIRST_SLOT: u32 = 1;

/// More populated runs than this in a vRegion are dropped with one call
/// over the whole of it (each call tells KVM's MMU notifier its range).
const MAX_RUNS: usize = 512;

/// One vRegion's memslot and host reservation.
#[derive(Clone, Copy, Debug)]
pub struct Region {
    pub host: u64,
    pub memslot: u32,
    pub gpa: u64,
}

impl Region {
    /// Gives KVM the memslot (outside the ExCache's lock).
    pub fn install(&self, vm: &VmFd) -> Result<(), String> {
        let region = kvm_userspace_memory_region {
            slot: self.memslot,
            flags: 0,
            guest_phys_addr: self.gpa,
            memory_size: VREGION_SIZE,
            userspace_addr: self.host,
        };
        // SAFETY: the reservation lives until `remove` deletes the memslot
        // first and unmaps it after.
        unsafe { vm.set_user_memory_region(region) }
            .map_err(|e| format!("KVM refused a vRegion memslot: {e}"))
    }

    /// Deletes the memslot and frees the host memory (outside the lock).
    pub fn remove(&self, vm: &VmFd) {
        let region = kvm_userspace_memory_region {
            slot: self.memslot,
            flags: 0,
            guest_phys_addr: self.gpa,
            memory_size: 0,
            userspace_addr: self.host,
        };
        // SAFETY: deleting a memslot we created; its memory is unmapped after.
        if let Err(e) = unsafe { vm.set_user_memory_region(region) } {
            log::warn!("excache: deleting memslot {}: {e}", self.memslot);
        }
        self.unmap();
    }

    fn unmap(&self) {
        // SAFETY: our own reservation; KVM no longer maps it.
        unsafe { libc::munmap(self.host as *mut libc::c_void, VREGION_SIZE as usize) };
    }
}

/// The vRegions with memslots, by (process slot, vRegion index).
pub struct Regions {
    pub vm: Arc<VmFd>,
    window: Window,
    max_memslots: u32,
    by_key: HashMap<(u64, u64), Region>,
    /// Host address of each region -> its key, for faults.
    by_host: std::collections::BTreeMap<u64, (u64, u64)>,
    free_memslots: Vec<u32>,
    next_memslot: u32,
}

impl Regions {
    pub fn new(vm: Arc<VmFd>, window: Window, max_memslots: u32) -> Regions {
        Regions {
            vm,
            window,
            max_memslots,
            by_key: HashMap::new(),
            by_host: std::collections::BTreeMap::new(),
            free_memslots: Vec::new(),
            next_memslot: FIRST_SLOT,
        }
    }

    pub fn window(&self) -> Window {
        self.window
    }

    /// Reserves what vRegion `index` of `slot` needs (a memslot number, the
    /// host memory, registered with the userfaultfd) and records it; the
    /// caller installs the memslot after letting the lock go. None if it
    /// has one already.
    pub fn reserve(
        &mut self,
        uffd: &Uffd,
        slot: u64,
        index: u64,
    ) -> Result<Option<Region>, String> {
        if self.by_key.contains_key(&(slot, index)) {
            return Ok(None);
        }
        let va = index << VREGION_SHIFT;
        if va >= self.window.user_top() {
            return Err(format!(
                "vRegion {index} lies beyond the {} GiB of address space a process has here",
                self.window.user_top() >> 30
            ));
        }
        let memslot = match self.free_memslots.pop() {
            Some(m) => m,
            None if self.next_memslot < self.max_memslots => {
                self.next_memslot += 1;
                self.next_memslot - 1
            }
            None => {
                return Err(format!(
                    "KVM has no memslot left ({} in use); processes use too many vRegions",
                    self.by_key.len()
                ))
            }
        };
        // SAFETY: a fresh anonymous reservation that nothing else refers to.
        let host = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                VREGION_SIZE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if host == libc::MAP_FAILED {
            self.free_memslots.push(memslot);
            return Err(format!(
                "cannot reserve 1 GiB of host address space for a vRegion: {}",
                std::io::Error::last_os_error()
            ));
        }
        let region = Region {
            host: host as u64,
            memslot,
            gpa: self.window.gpa(slot, va),
        };
        if let Err(e) = uffd.register(region.host, VREGION_SIZE) {
            region.unmap();
            self.free_memslots.push(memslot);
            return Err(e.to_string());
        }
        self.by_key.insert((slot, index), region);
        self.by_host.insert(region.host, (slot, index));
        Ok(Some(region))
    }

    /// Undoes a reservation whose memslot KVM refused.
    pub fn unreserve(&mut self, slot: u64, index: u64) {
        if let Some(r) = self.by_key.remove(&(slot, index)) {
            self.by_host.remove(&r.host);
            r.unmap();
            self.free_memslots.push(r.memslot);
        }
    }

    /// The (slot, page address) a host address in a region stands for.
    pub fn page_of(&self, host: u64) -> Option<(u64, u64)> {
        let (&base, &(slot, index)) = self.by_host.range(..=host).next_back()?;
        let off = host - base;
        (off < VREGION_SIZE).then_some((slot, (index << VREGION_SHIFT) + (off & !0xfff)))
    }

    /// The host address of a page, if its vRegion has a memslot.
    pub fn host_of(&self, slot: u64, va: u64) -> Option<u64> {
        let r = self.by_key.get(&(slot, va >> VREGION_SHIFT))?;
        Some(r.host + (va & (VREGION_SIZE - 1) & !0xfff))
    }

    /// Forgets every region of `slot` (faults there are no longer served)
    /// and returns them for the caller to remove outside the lock; their
    /// memslot numbers are free again after that.
    pub fn take_slot(&mut self, slot: u64) -> Vec<Region> {
        let keys: Vec<(u64, u64)> = self
            .by_key
            .keys()
            .copied()
            .filter(|&(s, _)| s == slot)
            .collect();
        let mut out = Vec::new();
        for key in keys {
            if let Some(r) = self.by_key.remove(&key) {
                self.by_host.remove(&r.host);
                out.push(r);
            }
        }
        out
    }

    /// Empties every region of `slot` for the slot's next process and
    /// keeps its memslot: MADV_DONTNEED drops the host pages (KVM's MMU
    /// notifier drops its mappings of them) and the userfaultfd serves the
    /// next access as before. Deleting and adding a memslot makes KVM
    /// flush its shadow MMU (PVM shadow-pages the guest), which was 38% of
    /// a processor's CPU in a loop of process starts. False when the regions kept
    /// would hold more than half of the memslots (nothing done then), or
    /// when dropping a region's pages failed: the caller removes them
    /// instead (their memory is unmapped).
    pub fn empty_slot(&mut self, slot: u64) -> bool {
        if self.by_key.len() as u32 > self.max_memslots / 2 {
            return false;
        }
        for (&(s, _), r) in &self.by_key {
            if s != slot {
                continue;
            }
            // Only the runs that hold pages (see `pagemap`); all of it
            // when the kernel cannot say which, or when the runs are so
            // many that one call over the whole costs less.
            let runs = super::pagemap::populated(r.host, r.host + VREGION_SIZE)
                .filter(|runs| runs.len() <= MAX_RUNS)
                .unwrap_or_else(|| vec![(r.host, r.host + VREGION_SIZE)]);
            for (start, end) in runs {
                // SAFETY: inside our own reservation; its pages are
                // dropped, the mapping stays.
                let r = unsafe {
                    libc::madvise(
                        start as *mut libc::c_void,
                        (end - start) as usize,
                        libc::MADV_DONTNEED,
                    )
                };
                if r != 0 {
                    // Pages of the process before would stay for the
                    // next: the caller removes the regions instead.
                    log::warn!(
                        "excache: emptying a vRegion failed ({}); its memslot goes",
                        std::io::Error::last_os_error()
                    );
                    return false;
                }
            }
        }
        true
    }

    /// Memslot numbers whose regions were removed can be used again.
    pub fn recycle(&mut self, regions: &[Region]) {
        self.free_memslots.extend(regions.iter().map(|r| r.memslot));
    }
}

impl Drop for Regions {
    fn drop(&mut self) {
        for r in self.by_key.values() {
            r.remove(&self.vm);
        }
    }
}
