//! Host memory behind the process window: one memslot per vRegion a
//! process uses, backed by a 1 GiB reservation (`MAP_NORESERVE`, so it
//! costs host memory only for the pages cached in it) that the ExCache's
//! userfaultfd serves. The guest asks for a vRegion before it maps it
//! (`PORT_VREGION`), so no access ever lands in the window without a
//! memslot (which KVM would emulate as MMIO).

use std::collections::HashMap;
use std::sync::Arc;

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use lego_proto::memory::{VREGION_SHIFT, VREGION_SIZE};
use lego_proto::process::Window;

use super::uffd::Uffd;

/// Memslot 0 is guest RAM.
const FIRST_SLOT: u32 = 1;

struct Region {
    host: u64,
    memslot: u32,
}

/// The vRegions with memslots, by (process slot, vRegion index).
pub struct Regions {
    vm: Arc<VmFd>,
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

    /// Makes sure vRegion `index` of the process in `slot` has a memslot.
    pub fn ensure(&mut self, uffd: &Uffd, slot: u64, index: u64) -> Result<(), String> {
        if self.by_key.contains_key(&(slot, index)) {
            return Ok(());
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
        let host = host as u64;
        let undo = |regions: &mut Regions, why: String| {
            // SAFETY: our own reservation, unmapped once.
            unsafe { libc::munmap(host as *mut libc::c_void, VREGION_SIZE as usize) };
            regions.free_memslots.push(memslot);
            Err(why)
        };
        if let Err(e) = uffd.register(host, VREGION_SIZE) {
            return undo(self, e.to_string());
        }
        let region = kvm_userspace_memory_region {
            slot: memslot,
            flags: 0,
            guest_phys_addr: self.window.gpa(slot, va),
            memory_size: VREGION_SIZE,
            userspace_addr: host,
        };
        // SAFETY: the reservation lives until `drop_slot` deletes the
        // memslot first and unmaps it after.
        if let Err(e) = unsafe { self.vm.set_user_memory_region(region) } {
            return undo(self, format!("KVM refused a vRegion memslot: {e}"));
        }
        self.by_key.insert((slot, index), Region { host, memslot });
        self.by_host.insert(host, (slot, index));
        Ok(())
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

    /// Deletes every memslot of `slot` and frees the host memory behind it.
    pub fn drop_slot(&mut self, slot: u64) {
        let keys: Vec<(u64, u64)> = self
            .by_key
            .keys()
            .copied()
            .filter(|&(s, _)| s == slot)
            .collect();
        for key in keys {
            let Some(r) = self.by_key.remove(&key) else {
                continue;
            };
            self.by_host.remove(&r.host);
            let region = kvm_userspace_memory_region {
                slot: r.memslot,
                flags: 0,
                guest_phys_addr: self.window.gpa(key.0, key.1 << VREGION_SHIFT),
                memory_size: 0,
                userspace_addr: r.host,
            };
            // SAFETY: deleting a memslot we created; its memory is unmapped after.
            match unsafe { self.vm.set_user_memory_region(region) } {
                Ok(()) => self.free_memslots.push(r.memslot),
                Err(e) => log::warn!("excache: deleting memslot {}: {e}", r.memslot),
            }
            // SAFETY: our own reservation; KVM no longer maps it.
            unsafe { libc::munmap(r.host as *mut libc::c_void, VREGION_SIZE as usize) };
        }
    }
}

impl Drop for Regions {
    fn drop(&mut self) {
        let slots: std::collections::BTreeSet<u64> = self.by_key.keys().map(|k| k.0).collect();
        for s in slots {
            self.drop_slot(s);
        }
    }
}
