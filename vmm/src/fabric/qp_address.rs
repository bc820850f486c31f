//! What two RDMA endpoints exchange to connect their queue pairs, over a
//! TCP side channel: component id, queue-pair number, packet sequence
//! number and GID. Fixed 32 bytes, checked on decode. Plain code, compiled
//! and tested with or without the `rdma` feature.

use lego_proto::frame::ComponentId;

pub const LEN: usize = 32;
const MAGIC: u32 = 0x5144_474c; // "LGDQ"

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QpAddress {
    pub component: ComponentId,
    pub qp_number: u32,
    /// 24 bits.
    pub psn: u32,
    pub gid: [u8; 16],
}

impl QpAddress {
    pub fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&self.component.to_le_bytes());
        b[8..12].copy_from_slice(&self.qp_number.to_le_bytes());
        b[12..16].copy_from_slice(&self.psn.to_le_bytes());
        b[16..32].copy_from_slice(&self.gid);
        b
    }

    pub fn decode(b: &[u8]) -> Result<QpAddress, String> {
        let b: &[u8; LEN] = b
            .try_into()
            .map_err(|_| format!("{} bytes, not {LEN}", b.len()))?;
        let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        if word(0) != MAGIC {
            return Err(format!("not a queue-pair address (magic {:#x})", word(0)));
        }
        let psn = word(12);
        if psn > 0x00ff_ffff {
            return Err(format!("packet sequence number {psn:#x} is over 24 bits"));
        }
        if word(4) == 0 {
            return Err("component id 0".into());
        }
        let mut gid = [0u8; 16];
        gid.copy_from_slice(&b[16..32]);
        Ok(QpAddress {
            component: word(4),
            qp_number: word(8),
            psn,
            gid,
        })
    }
}

/// Parses the address part of `--peer ID=rdma:HOST:PORT`.
pub fn parse_peer_addr(addr: &str) -> Option<&str> {
    addr.strip_prefix("rdma:").filter(|rest| !rest.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let a = QpAddress {
            component: 7,
            qp_number: 0x1234,
            psn: 0xabcdef,
            gid: [9; 16],
        };
        assert_eq!(QpAddress::decode(&a.encode()), Ok(a));
        assert!(QpAddress::decode(&a.encode()[..31])
            .unwrap_err()
            .contains("31 bytes"));
        let mut bad = a.encode();
        bad[0] ^= 1;
        assert!(QpAddress::decode(&bad).unwrap_err().contains("magic"));
        let mut psn = a.encode();
        psn[15] = 1;
        assert!(QpAddress::decode(&psn).unwrap_err().contains("24 bits"));
        let mut zero = a.encode();
        zero[4..8].fill(0);
        assert!(QpAddress::decode(&zero).is_err());
    }

    #[test]
    fn peer_addresses() {
        assert_eq!(parse_peer_addr("rdma:10.0.0.2:7100"), Some("10.0.0.2:7100"));
        assert_eq!(parse_peer_addr("rdma:"), None);
        assert_eq!(parse_peer_addr("10.0.0.2:7100"), None);
    }
}
