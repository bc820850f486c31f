//! A memory component in a rack (`--globals`) serves a process's pages and
//! mappings only to the processor that made it: the source of a process's
//! OP_NEW here owns it, and requests for it from any other non-memory
//! source are refused (ESRCH) by the VMM before the guest or the page
//! index sees them, and counted. Requests from memory components (homes,
//! owners, backups: their VMMs greeted as memory, which the fabric
//! authenticated) pass, and so do requests for a process made elsewhere
//! (a vRegion owner's, which a home told about it; not checked here).
//! Process ids are the processor's own (its lego-vmm's pid in the high
//! bits), so another processor never names them honestly. Without
//! `--globals` nothing is checked (racks built by hand, and the tests and
//! fuzzers that speak as several tools for one process).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use lego_proto::memory::{MemReply, MemRequest, ESRCH, OP_BACKUP, OP_NEW, OP_STATS};
use zerocopy::{FromBytes, IntoBytes};

#[derive(Default)]
pub struct ProcessOwners {
    /// Read on every request, written once per process made.
    owners: RwLock<HashMap<u32, u32>>,
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
        if matches!(r.op, OP_STATS | OP_BACKUP) {
            return None;
        }
        let owner = self
            .owners
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&r.pid)
            .copied();
        match owner {
            Some(o) if o == src => None,
            None => {
                if r.op == OP_NEW {
                    self.owners
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .entry(r.pid)
                        .or_insert(src);
                }
                None
            }
            Some(o) => {
                let n = if record {
                    self.refused.fetch_add(1, Ordering::Relaxed)
                } else {
                    1
                };
                if record && (n == 0 || n.is_power_of_two()) {
                    log::warn!(
                        "refused component {src}'s request for process {:#x}, which runs on processor {o} ({} refused so far)",
                        r.pid,
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lego_proto::memory::OP_READ;

    fn req(op: u32, pid: u32) -> Vec<u8> {
        MemRequest {
            op,
            pid,
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
        assert!(o.check(4, processor, &req(OP_NEW, 0x400), true).is_none());
        assert!(o.check(4, processor, &req(OP_READ, 0x400), true).is_none());
        let refusal = o
            .check(5, processor, &req(OP_READ, 0x400), true)
            .expect("refused");
        let (head, _) = MemReply::read_from_prefix(&refusal).expect("a reply");
        assert_eq!(head.status, ESRCH);
        // Memory components and stats pass; another process is another's.
        assert!(o.check(2, memory, &req(OP_READ, 0x400), true).is_none());
        assert!(o.check(5, processor, &req(OP_STATS, 0x400), true).is_none());
        assert!(o.check(5, processor, &req(OP_NEW, 0x800), true).is_none());
        // A process made elsewhere is not checked (a vRegion owner's).
        assert!(o.check(6, processor, &req(OP_READ, 0xc00), true).is_none());
        assert!(o.check(4, processor, &req(OP_NEW, 0x800), true).is_some());
        assert_eq!(o.refused.load(Ordering::Relaxed), 2);
        assert!(
            o.check(5, processor, b"junk", true).is_none(),
            "the guest answers junk"
        );
    }
}
