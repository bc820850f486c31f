//! A storage component in a rack (`--globals`) serves a vNode's requests
//! only from the processors the global managers granted it to
//! (`lego_control::Grant`, sent with every answer to its heartbeat): the
//! VMM checks each storage request's vNode against the frame's source,
//! which the fabric authenticated, and answers EACCES itself for the
//! rest, before the guest sees them. The storage monitor then confines a
//! granted request to its vNode's directory. Without `--globals` nothing
//! is checked here (a rack built by hand has no managers to grant).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;

use lego_control::Grant;
use lego_proto::storage::{encode_reply, StoreReply, StoreRequest, EACCES, STORE_MAGIC};
use zerocopy::FromBytes;

#[derive(Default)]
pub struct Grants {
    /// Set by the first grants the managers send: until then the
    /// component has not joined a rack's decisions, and checks nothing.
    enforcing: AtomicBool,
    allowed: RwLock<HashSet<(u32, u32)>>,
    pub refused: AtomicU64,
}

impl Grants {
    /// The managers' whole list, replacing the last one.
    pub fn replace(&self, grants: &[Grant]) {
        let set = grants.iter().map(|g| (g.vnode, g.processor)).collect();
        *self.allowed.write().unwrap_or_else(|p| p.into_inner()) = set;
        self.enforcing.store(true, Ordering::Release);
    }

    /// None when the guest should serve the request; else the refusal to
    /// send in its place. Anything that is not a storage request goes to
    /// the guest, which answers it EPROTO.
    pub fn check(&self, src: u32, payload: &[u8], record: bool) -> Option<Vec<u8>> {
        if !self.enforcing.load(Ordering::Acquire) {
            return None;
        }
        let (head, _) = StoreRequest::read_from_prefix(payload).ok()?;
        if head.magic != STORE_MAGIC {
            return None;
        }
        let granted = head.vnode != 0
            && self
                .allowed
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&(head.vnode, src));
        if granted {
            return None;
        }
        if !record {
            return Some(Vec::new());
        }
        let n = self.refused.fetch_add(1, Ordering::Relaxed);
        if n.is_power_of_two() || n == 0 {
            log::warn!(
                "refused a request from component {src} for vNode {}: the managers did not grant it ({} refused so far)",
                head.vnode,
                n + 1
            );
        }
        Some(encode_reply(
            &StoreReply {
                errno: EACCES,
                ..Default::default()
            },
            &[],
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lego_proto::storage::{decode_reply, encode_request, OP_STAT};

    fn request(vnode: u32) -> Vec<u8> {
        encode_request(
            &StoreRequest {
                op: OP_STAT,
                vnode,
                ..Default::default()
            },
            b"/x",
            &[],
            &[],
        )
    }

    #[test]
    fn only_granted_processors_reach_a_vnode() {
        let g = Grants::default();
        // Before the managers speak, nothing is checked.
        assert!(g.check(9, &request(1), true).is_none());
        g.replace(&[Grant {
            vnode: 1,
            processor: 4,
        }]);
        assert!(g.check(4, &request(1), true).is_none());
        for (src, vnode) in [(5, 1), (4, 2), (4, 0)] {
            let reply = g.check(src, &request(vnode), true).expect("refused");
            assert_eq!(decode_reply(&reply).expect("a reply").0.errno, EACCES);
        }
        assert_eq!(g.refused.load(Ordering::Relaxed), 3);
        // Not a storage request: the guest answers it.
        assert!(g.check(5, b"garbage", true).is_none());
    }
}
