//! The guest side of a virtio split queue (virtio 1.x, section 2.7), for
//! the fabric and the disk: a descriptor table, an available ring the guest
//! writes and a used ring the device writes, plus one buffer per descriptor
//! (the disk's chains also point at their callers' memory). Everything
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

const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;
/// Set by the device in the used ring's flags while it polls.
const USED_F_NO_NOTIFY: u16 = 1;

/// One descriptor of a request chain ([`SplitQueue::push_chain`]).
pub enum Part<'a> {
    /// Copied into the descriptor's own buffer, for the device to read.
    Copy(&'a [u8]),
    /// The descriptor's own buffer, `len` bytes of it, for the device to write.
    Reply(u32),
    /// Memory of the caller's, by guest-physical address: it must stay
    /// valid (and, for the device to write, untouched) until the chain is used.
    Memory {
        addr: u64,
        len: u32,
        device_writes: bool,
    },
}

/// A chain [`SplitQueue::push_chain`] offered: its first descriptor (what
/// the used ring names) and its last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chain {
    pub head: u16,
    pub last: u16,
}

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

    // --- request chains (the disk) ---

    /// Descriptors not offered to the device.
    pub fn free_descriptors(&self) -> usize {
        self.free.len()
    }

    fn write_desc(&mut self, id: u16, addr: u64, len: u32, flags: u16, next: u16) {
        // SAFETY: id < size; the descriptor table holds `size` 16-byte entries.
        unsafe {
            let d = self.desc.add(id as usize * 16);
            write_volatile(d as *mut u64, addr);
            write_volatile(d.add(8) as *mut u32, len);
            write_volatile(d.add(12) as *mut u16, flags);
            write_volatile(d.add(14) as *mut u16, next);
        }
    }

    /// Offers `parts` as one chain; None (and nothing offered) if there are
    /// not enough free descriptors or a copied part does not fit its
    /// buffer. Give the descriptors back with [`release_chain`] once the
    /// device has used it.
    ///
    /// [`release_chain`]: SplitQueue::release_chain
    pub fn push_chain(&mut self, parts: &[Part]) -> Option<Chain> {
        let fits = parts.iter().all(|p| match p {
            Part::Copy(b) => b.len() <= self.buffer_len as usize,
            Part::Reply(n) => *n <= self.buffer_len,
            Part::Memory { .. } => true,
        });
        if parts.is_empty() || !fits || parts.len() > self.free.len() {
            return None;
        }
        let ids: Vec<u16> = (0..parts.len()).filter_map(|_| self.free.pop()).collect();
        for (i, (part, &id)) in parts.iter().zip(&ids).enumerate() {
            let (next, more) = match ids.get(i + 1) {
                Some(&n) => (n, DESC_F_NEXT),
                None => (0, 0),
            };
            let own = crate::cpu::virt_to_phys(self.buffer(id) as u64);
            let (addr, len, flags) = match *part {
                Part::Copy(bytes) => {
                    // SAFETY: fits in the descriptor's buffer (checked above).
                    unsafe {
                        core::ptr::copy_nonoverlapping(bytes.as_ptr(), self.buffer(id), bytes.len())
                    };
                    (own, bytes.len() as u32, 0)
                }
                Part::Reply(n) => (own, n, DESC_F_WRITE),
                Part::Memory {
                    addr,
                    len,
                    device_writes,
                } => (addr, len, if device_writes { DESC_F_WRITE } else { 0 }),
            };
            self.write_desc(id, addr, len, flags | more, next);
        }
        let chain = Chain {
            head: ids[0],
            last: ids[ids.len() - 1],
        };
        self.publish(chain.head);
        Some(chain)
    }

    /// Takes back the descriptors of a used chain that starts at `head`.
    pub fn release_chain(&mut self, head: u16) {
        let mut id = head;
        // A chain is never longer than the queue; the bound guards a table
        // the device scribbled on.
        for _ in 0..self.size {
            self.free.push(id);
            // SAFETY: id < size; flags and next of its descriptor.
            let (flags, next) = unsafe {
                let d = self.desc.add(id as usize * 16);
                (
                    read_volatile(d.add(12) as *const u16),
                    read_volatile(d.add(14) as *const u16),
                )
            };
            if flags & DESC_F_NEXT == 0 || next >= self.size {
                return;
            }
            id = next;
        }
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
