//! What each end of a new fabric connection (TCP, or RDMA's side channel)
//! says first: who it is, the largest frame it takes, and the nonce the
//! other end must seal its frames with (see `auth`). Tagged with the rack
//! key, so a process without the key is told apart before its first frame.

use lego_proto::frame::ComponentId;

use crate::auth::{Nonce, SenderRole, NONCE_LEN, TAG_LEN};
use crate::key::RackKey;

pub const HELLO_LEN: usize = 48 + TAG_LEN;
const MAGIC: u32 = 0x4948_474c; // "LGHI"
const VERSION: u8 = 1;
const CONTEXT: &[u8] = b"lego fabric hello v1";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    pub role: SenderRole,
    pub component: ComponentId,
    /// The largest frame (header and payload) this end delivers.
    pub max_frame: u32,
    pub pid: u32,
    /// Random per process: two processes with one id differ here.
    pub instance: u64,
    pub nonce: Nonce,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    #[error("not a Lego fabric greeting (magic {0:#010x}): the other end does not speak this fabric or is an older build")]
    Magic(u32),
    #[error("greeting version {0}, this component speaks {VERSION}")]
    Version(u8),
    #[error("the greeting is not signed with this rack's key")]
    BadTag,
    #[error("the greeting names component 0")]
    NoId,
}

fn tag(key: &RackKey, body: &[u8]) -> blake3::Hash {
    let mut h = blake3::Hasher::new_keyed(key.bytes());
    h.update(CONTEXT);
    h.update(body);
    h.finalize()
}

impl Hello {
    pub fn encode(&self, key: &RackKey) -> [u8; HELLO_LEN] {
        let mut b = [0u8; HELLO_LEN];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4] = VERSION;
        b[5] = self.role;
        b[8..12].copy_from_slice(&self.component.to_le_bytes());
        b[12..16].copy_from_slice(&self.max_frame.to_le_bytes());
        b[16..20].copy_from_slice(&self.pid.to_le_bytes());
        b[24..32].copy_from_slice(&self.instance.to_le_bytes());
        b[32..48].copy_from_slice(&self.nonce);
        let t = tag(key, &b[..48]);
        b[48..].copy_from_slice(t.as_bytes());
        b
    }

    pub fn decode(key: &RackKey, b: &[u8; HELLO_LEN]) -> Result<Hello, HelloError> {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let magic = u32_at(0);
        if magic != MAGIC {
            return Err(HelloError::Magic(magic));
        }
        if b[4] != VERSION {
            return Err(HelloError::Version(b[4]));
        }
        let mut got = [0u8; TAG_LEN];
        got.copy_from_slice(&b[48..]);
        let reserved = b[6] | b[7] | b[20] | b[21] | b[22] | b[23];
        if tag(key, &b[..48]) != blake3::Hash::from_bytes(got) || reserved != 0 {
            return Err(HelloError::BadTag);
        }
        if u32_at(8) == 0 {
            return Err(HelloError::NoId);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&b[32..48]);
        let mut instance = [0u8; 8];
        instance.copy_from_slice(&b[24..32]);
        Ok(Hello {
            role: b[5],
            component: u32_at(8),
            max_frame: u32_at(12),
            pid: u32_at(16),
            instance: u64::from_le_bytes(instance),
            nonce,
        })
    }
}

/// This process's instance number, the same for all its connections.
pub fn instance() -> u64 {
    static INSTANCE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *INSTANCE.get_or_init(|| {
        let n = crate::auth::fresh_nonce();
        u64::from_le_bytes([n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7]])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let key = RackKey::from_bytes([1; 32]);
        let h = Hello {
            role: 2,
            component: 5,
            max_frame: 8224,
            pid: 77,
            instance: 0xdead_beef,
            nonce: [3; 16],
        };
        let b = h.encode(&key);
        assert_eq!(Hello::decode(&key, &b), Ok(h));
        assert_eq!(
            Hello::decode(&RackKey::from_bytes([2; 32]), &b),
            Err(HelloError::BadTag)
        );
        let mut m = b;
        m[0] ^= 1;
        assert!(matches!(Hello::decode(&key, &m), Err(HelloError::Magic(_))));
        let mut c = b;
        c[9] ^= 1;
        assert_eq!(Hello::decode(&key, &c), Err(HelloError::BadTag));
    }
}
