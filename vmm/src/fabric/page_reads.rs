//! A memory component's VMM answering page reads itself, from the page
//! index its monitor publishes in guest RAM (`lego_proto::index`): a read
//! of a published page is copied out of the frame and answered on the
//! device thread, without waking the guest (which costs a wake-up and a
//! VM entry per request). Whatever the index cannot answer for sure (a
//! page not published, a protection that refuses the access, a slot that
//! changed while it was read) goes to the guest as before.

use lego_proto::index::{
    epoch_matches, index_lookup, still_valid, IndexSlot, PageIndexSetup, INDEX_SLOT_LEN,
};
use lego_proto::memory::*;
use vm_memory::{GuestAddress, GuestMemoryBackend};
use zerocopy::{FromBytes, IntoBytes};

use crate::memory::GuestRam;

const PROT_READ: u32 = 1;
const PROT_WRITE: u32 = 2;

pub struct PageReads {
    /// Keeps the mapping the pointers below point into alive.
    _ram: GuestRam,
    slots: *const IndexSlot,
    slot_count: usize,
    frames: *const u8,
    frame_count: u32,
}

// SAFETY: the pointers are into guest RAM, mapped for as long as `_ram`
// lives; the slots are only read through atomics, frames only copied.
unsafe impl Send for PageReads {}
unsafe impl Sync for PageReads {}

impl PageReads {
    /// Checks the guest's setup against its RAM.
    pub fn new(ram: &GuestRam, s: &PageIndexSetup) -> Result<PageReads, String> {
        if s.slot_count == 0 || !s.slot_count.is_power_of_two() {
            return Err(format!(
                "{} index slots is not a power of two",
                s.slot_count
            ));
        }
        if s.slots % 8 != 0 || s.frames % 4096 != 0 {
            return Err("the index or the frames are misaligned".into());
        }
        let host = |gpa: u64, len: u64, what: &str| -> Result<*const u8, String> {
            let last = gpa
                .checked_add(len.saturating_sub(1))
                .ok_or_else(|| format!("the {what} wrap around"))?;
            let a = ram.get_host_address(GuestAddress(gpa));
            let b = ram.get_host_address(GuestAddress(last));
            match (a, b) {
                // One region: the addresses are contiguous in between.
                (Ok(a), Ok(b)) if b as u64 - a as u64 == last - gpa => Ok(a as *const u8),
                _ => Err(format!(
                    "the {what} at {gpa:#x} ({len} bytes) are outside guest RAM"
                )),
            }
        };
        let slots = host(
            s.slots,
            s.slot_count as u64 * INDEX_SLOT_LEN as u64,
            "index slots",
        )?;
        let frames = host(s.frames, s.frame_count as u64 * PAGE as u64, "frames")?;
        Ok(PageReads {
            _ram: ram.clone(),
            slots: slots as *const IndexSlot,
            slot_count: s.slot_count as usize,
            frames,
            frame_count: s.frame_count,
        })
    }

    fn slots(&self) -> &[IndexSlot] {
        // SAFETY: checked in `new` to lie in guest RAM, 8-aligned; the
        // guest changes them only through atomic stores.
        unsafe { std::slice::from_raw_parts(self.slots, self.slot_count) }
    }

    /// The reply to `payload` if it is a page read this VMM can answer
    /// for sure; None leaves it to the guest.
    pub fn answer(&self, payload: &[u8]) -> Option<Vec<u8>> {
        let (r, _) = MemRequest::read_from_prefix(payload).ok()?;
        if r.op != OP_READ || r.flags & (FLAG_FROM_HOME | FLAG_TAKEOVER) != 0 {
            return None;
        }
        let slots = self.slots();
        // Only at the epoch the guest holds the process at: a stale copy
        // or a stale sender is the guest's to refuse (or a take-over its
        // to record).
        if !epoch_matches(slots, r.pid, r.epoch) {
            return None;
        }
        let need = if r.flags & FLAG_FOR_WRITE != 0 {
            PROT_WRITE
        } else {
            PROT_READ
        };
        let first = r.addr / PAGE as u64;
        let pages = if r.len > PAGE as u64 {
            r.len.div_ceil(PAGE as u64).min(MAX_RUN as u64)
        } else {
            1
        };
        let mut out = vec![0u8; REPLY_LEN];
        let mut prot = None;
        for i in 0..pages {
            let vpage = first + i;
            // Garbage addresses stop the run, never overflow.
            match vpage.checked_mul(PAGE as u64) {
                Some(at) if vregion(at) == vregion(r.addr) => {}
                _ => break,
            }
            let Some(found) = index_lookup(slots, r.pid, vpage) else {
                break;
            };
            match prot {
                // The first page decides; the run goes on while the
                // protection stays (the guest's runs stop at the VMA).
                None if found.prot & need == 0 => return None,
                None => prot = Some(found.prot),
                Some(p) if p != found.prot => break,
                Some(_) => {}
            }
            if found.frame >= self.frame_count {
                break;
            }
            let at = out.len();
            // SAFETY: frame < frame_count, inside the checked range.
            let src = unsafe {
                std::slice::from_raw_parts(self.frames.add(found.frame as usize * PAGE), PAGE)
            };
            out.extend_from_slice(src);
            if !still_valid(slots, &found) {
                out.truncate(at);
                break;
            }
        }
        let prot = prot?;
        if out.len() == REPLY_LEN {
            return None;
        }
        let head = MemReply {
            status: OK,
            epoch: r.epoch,
            value: prot as u64,
        };
        out[..REPLY_LEN].copy_from_slice(head.as_bytes());
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lego_proto::index::{index_start, EPOCH_VPAGE, SLOT_LIVE};
    use std::sync::atomic::Ordering;
    use vm_memory::Bytes;

    const SLOTS_AT: u64 = 0x1000;
    const FRAMES_AT: u64 = 0x10000;

    fn ram() -> GuestRam {
        GuestRam::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap()
    }

    fn setup(slot_count: u32) -> PageIndexSetup {
        PageIndexSetup {
            slots: SLOTS_AT,
            frames: FRAMES_AT,
            slot_count,
            frame_count: 4,
            ..Default::default()
        }
    }

    /// Publishes (pid, vpage) in `frame`, as the guest would.
    fn publish(r: &PageReads, pid: u32, vpage: u64, frame: u32, prot: u32) {
        let slots = r.slots();
        let mut i = index_start(pid, vpage, slots.len() - 1);
        while slots[i].state.load(Ordering::Relaxed) != 0 {
            i = (i + 1) & (slots.len() - 1);
        }
        slots[i].write(|s| {
            s.pid.store(pid, Ordering::Relaxed);
            s.vpage.store(vpage, Ordering::Relaxed);
            s.frame.store(frame, Ordering::Relaxed);
            s.state.store(SLOT_LIVE | prot, Ordering::Relaxed);
        });
    }

    fn read(pid: u32, vpage: u64, pages: u64, flags: u32) -> Vec<u8> {
        MemRequest {
            op: OP_READ,
            pid,
            addr: vpage * PAGE as u64,
            len: pages * PAGE as u64,
            flags,
            ..Default::default()
        }
        .as_bytes()
        .to_vec()
    }

    #[test]
    fn published_pages_are_answered_and_the_rest_left_to_the_guest() {
        let ram = ram();
        ram.write_slice(&[0xab; PAGE], GuestAddress(FRAMES_AT + 2 * PAGE as u64))
            .unwrap();
        ram.write_slice(&[0xcd; PAGE], GuestAddress(FRAMES_AT + 3 * PAGE as u64))
            .unwrap();
        let r = PageReads::new(&ram, &setup(16)).unwrap();
        publish(&r, 7, 100, 2, PROT_READ);
        publish(&r, 7, 101, 3, PROT_READ);
        // Not before the guest names the epoch it holds the process at.
        assert!(r.answer(&read(7, 100, 1, 0)).is_none());
        publish(&r, 7, EPOCH_VPAGE, 0, 0);

        let out = r.answer(&read(7, 100, 1, 0)).expect("a published page");
        let (head, page) = MemReply::read_from_prefix(&out).unwrap();
        assert_eq!((head.status, head.value), (OK, PROT_READ as u64));
        assert_eq!(page, &[0xab; PAGE][..]);
        // A run stops at the first page not published.
        let out = r.answer(&read(7, 100, 4, FLAG_PEEK)).unwrap();
        assert_eq!(out.len(), REPLY_LEN + 2 * PAGE);
        assert!(out[REPLY_LEN + PAGE..].iter().all(|&b| b == 0xcd));
        // Not published, another process, a write to a read-only page, a
        // claim from the home, another operation: the guest answers.
        assert!(r.answer(&read(7, 102, 1, 0)).is_none());
        assert!(r.answer(&read(8, 100, 1, 0)).is_none());
        assert!(r.answer(&read(7, 100, 1, FLAG_FOR_WRITE)).is_none());
        assert!(r.answer(&read(7, 100, 1, FLAG_FROM_HOME)).is_none());
        let mut write = read(7, 100, 1, 0);
        write[..4].copy_from_slice(&OP_WRITE.to_le_bytes());
        assert!(r.answer(&write).is_none());
        assert!(r.answer(&[1, 2, 3]).is_none(), "garbage is left alone");
        assert!(r.answer(&read(7, u64::MAX / 4096, 16, 0)).is_none());
        // Another epoch, or a take-over: the guest decides.
        let mut later = read(7, 100, 1, 0);
        later[40..44].copy_from_slice(&1u32.to_le_bytes());
        assert!(r.answer(&later).is_none());
        assert!(r.answer(&read(7, 100, 1, FLAG_TAKEOVER)).is_none());
    }

    #[test]
    fn a_page_being_written_is_not_answered() {
        let r = PageReads::new(&ram(), &setup(16)).unwrap();
        publish(&r, 7, 100, 1, PROT_READ | PROT_WRITE);
        let slots = r.slots();
        let i = (0..16)
            .find(|&i| slots[i].state.load(Ordering::Relaxed) != 0)
            .unwrap();
        publish(&r, 7, EPOCH_VPAGE, 0, 0);
        slots[i].write(|_| assert!(r.answer(&read(7, 100, 1, 0)).is_none()));
        assert!(r.answer(&read(7, 100, 1, FLAG_FOR_WRITE)).is_some());
    }

    #[test]
    fn setups_outside_guest_ram_are_refused() {
        let ram = ram();
        assert!(
            PageReads::new(&ram, &setup(12)).is_err(),
            "not a power of two"
        );
        let mut s = setup(16);
        s.frames = (1 << 20) - 4096;
        assert!(PageReads::new(&ram, &s).is_err(), "frames past the end");
        let mut s = setup(1 << 20);
        s.slots = 8;
        assert!(PageReads::new(&ram, &s).is_err(), "slots past the end");
        let mut s = setup(16);
        s.slots = u64::MAX - 15;
        assert!(PageReads::new(&ram, &s).is_err(), "wrapping");
    }
}
