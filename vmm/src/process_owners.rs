//! A memory component in a rack (`--globals`) serves a process's pages and
//! mappings only to the processor that runs it. In a rack a process id
//! names its processor: the processor's component id is its top
//! [`ID_BITS`] bits ([`rack_pid_base`]), so the rule needs no state and
//! holds at every memory component alike: at the home, at the owner of
//! any of its vRegions, at a backup, and for ids not made yet (a forged
//! `OP_NEW` cannot claim another processor's future process, nor a
//! forged `OP_FORK` copy into one). A request from a non-memory source
//! for a process (or a fork's child) whose id names another processor is
//! refused (ESRCH) by the VMM before the guest or the page
//! index sees it, and counted. Requests from memory components (homes,
//! owners, backups: their VMMs greeted as memory, which the fabric
//! authenticated) pass. Without `--globals` nothing is checked (racks
//! built by hand, and the tests and fuzzers that speak as several tools
//! for one process), and process ids carry the lego-vmm's pid instead.

use std::sync::atomic::{AtomicU64, Ordering};

use lego_proto::memory::{about_the_component, MemReply, MemRequest, ESRCH, OP_FORK};
use zerocopy::{FromBytes, IntoBytes};

/// The bits of a rack process id that name its processor; the ten below
/// them tell apart this processor's lego-vmm runs (its host pid's low
/// bits), and the lowest ten are the monitor's own process id.
pub const ID_BITS: u32 = 12;
const ID_SHIFT: u32 = 32 - ID_BITS;

/// The process id base of processor `id` in a rack; None when the id does
/// not fit in [`ID_BITS`].
pub fn rack_pid_base(id: u32) -> Option<u32> {
    (id < 1 << ID_BITS).then(|| id << ID_SHIFT | (std::process::id() & 0x3ff) << 10)
}

/// The processor a rack process id names.
pub fn processor_of(pid: u32) -> u32 {
    pid >> ID_SHIFT
}

#[derive(Default)]
pub struct ProcessOwners {
    pub refused: AtomicU64,
}

impl ProcessOwners {
    /// None when the request goes on; else the refusal to send instead
    /// (counted and logged when `record`: the receiving thread asks first,
    /// to keep a refused read from the page index, and the device thread
    /// then answers it).
    pub fn check(&self, src: u32, role: u8, payload: &[u8], record: bool) -> Option<Vec<u8>> {
        if role == lego_proto::boot::Role::Memory as u8 {
            return None;
        }
        let (r, _) = MemRequest::read_from_prefix(payload).ok()?;
        if about_the_component(r.op) {
            return None;
        }
        // A fork's child (in `arg`) must be the same processor's too: the
        // parent's memory is copied into it.
        let child_ok = r.op != OP_FORK || processor_of(r.arg as u32) == src && r.arg >> 32 == 0;
        if processor_of(r.pid) == src && child_ok {
            return None;
        }
        let n = if record {
            self.refused.fetch_add(1, Ordering::Relaxed)
        } else {
            1
        };
        if record && (n == 0 || n.is_power_of_two()) {
            log::warn!(
                "refused component {src}'s request for process {:#x}, which runs on processor {} ({} refused so far)",
                r.pid,
                processor_of(r.pid),
                n + 1
            );
        }
        Some(
            MemReply {
                status: ESRCH,
                ..Default::default()
            }
            .as_bytes()
            .to_vec(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lego_proto::memory::{OP_NEW, OP_READ, OP_STATS};

    fn req(op: u32, pid: u32) -> Vec<u8> {
        fork(op, pid, 0)
    }

    fn fork(op: u32, pid: u32, child: u32) -> Vec<u8> {
        MemRequest {
            op,
            pid,
            arg: child as u64,
            ..Default::default()
        }
        .as_bytes()
        .to_vec()
    }

    #[test]
    fn a_process_is_served_to_its_processor_only() {
        let o = ProcessOwners::default();
        let processor = lego_proto::boot::Role::Processor as u8;
        let memory = lego_proto::boot::Role::Memory as u8;
        let four = rack_pid_base(4).expect("fits") | 7;
        assert_eq!(processor_of(four), 4);
        assert!(o.check(4, processor, &req(OP_NEW, four), true).is_none());
        assert!(o.check(4, processor, &req(OP_READ, four), true).is_none());
        let refusal = o
            .check(5, processor, &req(OP_READ, four), true)
            .expect("refused");
        let (head, _) = MemReply::read_from_prefix(&refusal).expect("a reply");
        assert_eq!(head.status, ESRCH);
        // Memory components and stats pass.
        assert!(o.check(2, memory, &req(OP_READ, four), true).is_none());
        assert!(o.check(5, processor, &req(OP_STATS, four), true).is_none());
        // Processor 5 cannot make, nor read, a process of processor 4's
        // that does not exist yet; its own it can.
        let future = rack_pid_base(4).expect("fits") | 900;
        assert!(o.check(5, processor, &req(OP_NEW, future), true).is_some());
        assert!(o.check(5, processor, &req(OP_READ, future), true).is_some());
        let five = rack_pid_base(5).expect("fits") | 2;
        assert!(o.check(5, processor, &req(OP_NEW, five), true).is_none());
        assert_eq!(o.refused.load(Ordering::Relaxed), 3);
        // A fork copies into its child: the child must be the forking
        // processor's own, or another's process would get its memory.
        assert!(o
            .check(5, processor, &fork(OP_FORK, five, five + 1), true)
            .is_none());
        assert!(o
            .check(5, processor, &fork(OP_FORK, five, four), true)
            .is_some());
        assert_eq!(o.refused.load(Ordering::Relaxed), 4);
        assert!(
            o.check(5, processor, b"junk", true).is_none(),
            "the guest answers junk"
        );
        assert_eq!(rack_pid_base(1 << ID_BITS), None);
    }
}
