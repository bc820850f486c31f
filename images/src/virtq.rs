//! The guest side of a virtio split queue (virtio 1.x, section 2.7), for
//! the fabric: a descriptor table, an available ring the guest writes and a
//! used ring the device writes, plus one buffer per descriptor. Everything
//! lives in heap memory, which is identity-mapped, so a pointer is also the
//! guest-physical address the device uses.
//!
//! There are no interrupts: the guest polls the used ring, and waits in a
//! hypercall only when it has nothing else to do.

use alloc::alloc::{alloc_zeroed, Layout};
use alloc::vec::Vec;
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{fence, Ordering};

use lego_proto::hypercall::QueueAddrs;

const DESC_F_WRITE: u16 = 2;
/// Set by the device in the used ring's flags while it polls.
const USED_F_NO_NOTIFY: u16 = 1;

pub struct SplitQueue {
    size: u16,
    desc: *mut u8,
    avail: *mut u8,
    used: *mut u8,
    buffers: *mut u8,
    buffer_len: u32,
    free: Vec<u16>,
    /// The next avail index the guest will publish.
    avail_idx: u16,
    /// The used index the guest has consumed up to.
    last_used: u16,
}

// SAFETY: the queue memory is owned by this struct and only reached through
// it; callers serialize access (the fabric keeps it behind a lock).
unsafe impl Send for SplitQueue {}

fn allocate(size: usize, align: usize) -> *mut u8 {
    let layout = Layout::from_size_align(size, align).expect("queue layout");
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { alloc_zeroed(layout) };
    assert!(
        !p.is_null(),
        "out of memory for a virtqueue of {size} bytes"
    );
    p
}

impl SplitQueue {
    /// A queue of `size` descriptors, each with a `buffer_len`-byte buffer.
    /// The memory is never freed: queues live as long as the guest.
    pub fn new(size: u16, buffer_len: u32) -> SplitQueue {
        assert!(size.is_power_of_two(), "queue size must be a power of two");
        let n = size as usize;
        SplitQueue {
            size,
            desc: allocate(16 * n, 16),
            avail: allocate(6 + 2 * n, 2),
            used: allocate(6 + 8 * n, 4),
            buffers: allocate(n * buffer_len as usize, 4096),
            buffer_len,
            free: (0..size).rev().collect(),
            avail_idx: 0,
            last_used: 0,
        }
    }

    pub fn addrs(&self) -> QueueAddrs {
        QueueAddrs {
            desc: crate::cpu::virt_to_phys(self.desc as u64),
            avail: crate::cpu::virt_to_phys(self.avail as u64),
            used: crate::cpu::virt_to_phys(self.used as u64),
        }
    }

    fn buffer(&self, id: u16) -> *mut u8 {
        // SAFETY: id < size, inside the buffer allocation.
        unsafe { self.buffers.add(id as usize * self.buffer_len as usize) }
    }

    fn set_desc(&mut self, id: u16, len: u32, flags: u16) {
        let addr = crate::cpu::virt_to_phys(self.buffer(id) as u64);
        // SAFETY: id < size; the descriptor table holds `size` 16-byte entries.
        unsafe {
            let d = self.desc.add(id as usize * 16);
            write_volatile(d as *mut u64, addr);
            write_volatile(d.add(8) as *mut u32, len);
            write_volatile(d.add(12) as *mut u16, flags);
            write_volatile(d.add(14) as *mut u16, 0);
        }
    }

    /// Makes descriptor `id` available to the device.
    fn publish(&mut self, id: u16) {
        let slot = (self.avail_idx % self.size) as usize;
        // SAFETY: slot < size; the ring follows the 4-byte flags/idx header.
        unsafe { write_volatile(self.avail.add(4 + 2 * slot) as *mut u16, id) };
        self.avail_idx = self.avail_idx.wrapping_add(1);
        // The ring entry must be visible before the index that covers it.
        fence(Ordering::Release);
        // SAFETY: the idx field of the avail ring.
        unsafe { write_volatile(self.avail.add(2) as *mut u16, self.avail_idx) };
    }

    fn used_idx(&self) -> u16 {
        // SAFETY: the idx field of the used ring, written by the device.
        let idx = unsafe { read_volatile(self.used.add(2) as *const u16) };
        fence(Ordering::Acquire);
        idx
    }

    /// The next entry the device has used: descriptor id and bytes written.
    pub fn pop_used(&mut self) -> Option<(u16, u32)> {
        if self.last_used == self.used_idx() {
            return None;
        }
        let slot = (self.last_used % self.size) as usize;
        // SAFETY: slot < size; used entries are 8 bytes after the header.
        let (id, len) = unsafe {
            let e = self.used.add(4 + 8 * slot);
            (
                read_volatile(e as *const u32),
                read_volatile(e.add(4) as *const u32),
            )
        };
        self.last_used = self.last_used.wrapping_add(1);
        // A device that names a descriptor it was not given is ignored.
        (id < self.size as u32).then_some((id as u16, len.min(self.buffer_len)))
    }

    /// Whether the device has used entries the guest has not taken yet.
    pub fn has_used(&self) -> bool {
        self.last_used != self.used_idx()
    }

    /// The used index the guest has consumed (for the wait hypercall).
    pub fn last_used(&self) -> u16 {
        self.last_used
    }

    /// Whether the device wants a kick for new buffers (it does not while it polls).
    pub fn device_wants_kick(&self) -> bool {
        fence(Ordering::SeqCst);
        // SAFETY: the flags field of the used ring.
        unsafe { read_volatile(self.used as *const u16) & USED_F_NO_NOTIFY == 0 }
    }

    // --- transmit side ---

    /// Takes back the buffers the device has finished with.
    pub fn reclaim(&mut self) {
        while let Some((id, _)) = self.pop_used() {
            self.free.push(id);
        }
    }

    /// Copies `parts` into a free buffer and offers it; false if none is
    /// free or the parts do not fit.
    pub fn push(&mut self, parts: &[&[u8]]) -> bool {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > self.buffer_len as usize {
            return false;
        }
        self.reclaim();
        let Some(id) = self.free.pop() else {
            return false;
        };
        let mut at = self.buffer(id);
        for part in parts {
            // SAFETY: the parts fit in the buffer (checked above).
            unsafe {
                core::ptr::copy_nonoverlapping(part.as_ptr(), at, part.len());
                at = at.add(part.len());
            }
        }
        self.set_desc(id, len as u32, 0);
        self.publish(id);
        true
    }

    // --- receive side ---

    /// Offers every buffer to the device for writing.
    pub fn post_all(&mut self) {
        while let Some(id) = self.free.pop() {
            self.set_desc(id, self.buffer_len, DESC_F_WRITE);
            self.publish(id);
        }
    }

    /// The bytes the device wrote into buffer `id`.
    pub fn received(&self, id: u16, len: u32) -> &[u8] {
        // SAFETY: id < size and len <= buffer_len (pop_used clamps it).
        unsafe { core::slice::from_raw_parts(self.buffer(id), len as usize) }
    }

    /// Gives buffer `id` back to the device.
    pub fn repost(&mut self, id: u16) {
        self.set_desc(id, self.buffer_len, DESC_F_WRITE);
        self.publish(id);
    }
}
