//! Frames worth sending to a component: headers that decode (mostly), with
//! kinds, flags, ids and lengths drawn towards every limit the fabric and
//! the memory monitor have, payloads that are memory requests more often
//! than noise, and the ways a frame can fail authentication.

use lego_proto::frame::{Header, Kind, FLAG_FROM_MEMORY, FLAG_REPLY, HEADER_LEN, MAX_PAYLOAD};
use lego_proto::hypercall::FABRIC_BUFFER;
use lego_proto::memory::*;
use zerocopy::IntoBytes;

/// What to do with a frame's authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seal {
    /// Sealed as the next frame of its channel: it reaches the guest.
    Proper,
    /// Sealed, then a byte of it changed.
    Tampered,
    /// Sent twice.
    Replayed,
    /// No trailer at all.
    Bare,
}

#[derive(Debug)]
pub struct FuzzFrame {
    pub header: Header,
    /// The header bytes as sent (a few have a field no decoder accepts).
    pub head: [u8; HEADER_LEN],
    pub payload: Vec<u8>,
    pub seal: Seal,
}

impl FuzzFrame {
    /// Whether the receiver closes the connection for it (so the sender
    /// must open another): its header does not decode, or its
    /// authentication fails in a way that leaves the stream unframed.
    pub fn ends_connection(&self) -> bool {
        Header::decode(&self.head).is_err() || matches!(self.seal, Seal::Tampered | Seal::Bare)
    }
}

/// Payload lengths at and around every limit.
fn length(rng: &mut fastrand::Rng) -> usize {
    let guest = FABRIC_BUFFER as usize - HEADER_LEN;
    let edges = [
        0,
        1,
        7,
        8,
        REQUEST_LEN - 1,
        REQUEST_LEN,
        REQUEST_LEN + 1,
        REQUEST_LEN + PAGE - 1,
        REQUEST_LEN + PAGE,
        REQUEST_LEN + PAGE + 1,
        PAGE,
        guest - 1,
        guest,
        guest + 1,
        9000,
        65536,
    ];
    match rng.u8(0..10) {
        0..=6 => edges[rng.usize(0..edges.len())],
        7 | 8 => rng.usize(0..=guest + 64),
        // Rarely: up to the protocol's own limit, 1 MiB.
        _ => {
            if rng.bool() {
                MAX_PAYLOAD as usize
            } else {
                rng.usize(guest..=MAX_PAYLOAD as usize)
            }
        }
    }
}

/// A memory request with fields drawn towards the monitor's edges.
fn mem_request(rng: &mut fastrand::Rng, pids: &[u32]) -> MemRequest {
    let addrs = [
        0,
        lego_proto::process::USER_LOW - 1,
        lego_proto::process::USER_LOW,
        1 << 30,
        (1 << 30) + PAGE as u64,
        (2 << 30) - PAGE as u64,
        lego_proto::process::USER_TOP_MAX - PAGE as u64,
        lego_proto::process::USER_TOP_MAX,
        u64::MAX - PAGE as u64 + 1,
    ];
    let lens = [
        0,
        1,
        PAGE as u64,
        4 * PAGE as u64,
        MAX_PRESENT_LEN,
        MAX_PRESENT_LEN + 1,
        1 << 40,
        u64::MAX,
    ];
    let pick = |rng: &mut fastrand::Rng, v: &[u64]| {
        if rng.u8(0..4) == 0 {
            rng.u64(..)
        } else {
            v[rng.usize(0..v.len())]
        }
    };
    let flag_bits = [
        FLAG_FIXED,
        FLAG_MAYMOVE,
        FLAG_FROM_HOME,
        FLAG_FOR_WRITE,
        FLAG_PEEK,
        FLAG_WRITEBACK,
        FLAG_TAKEOVER,
    ];
    let mut flags = 0;
    for f in flag_bits {
        if rng.u8(0..4) == 0 {
            flags |= f;
        }
    }
    if rng.u8(0..16) == 0 {
        flags = rng.u32(..);
    }
    MemRequest {
        op: if rng.u8(0..8) == 0 {
            rng.u32(..)
        } else {
            rng.u32(OP_READ..=OP_PRESENT)
        },
        pid: if rng.u8(0..8) == 0 {
            rng.u32(..)
        } else {
            pids[rng.usize(0..pids.len())]
        },
        addr: pick(rng, &addrs),
        len: pick(rng, &lens),
        arg: pick(rng, &addrs),
        prot: if rng.bool() {
            rng.u32(0..8)
        } else {
            rng.u32(..)
        },
        flags,
        // Mostly the epoch the fuzzer's processes start at.
        epoch: if rng.u8(0..4) == 0 { rng.u32(..) } else { 0 },
        _pad: 0,
    }
}

/// One frame from `src` (mostly) to `dst` (mostly).
pub fn frame(rng: &mut fastrand::Rng, src: u32, dst: u32, pids: &[u32]) -> FuzzFrame {
    let kind = match rng.u8(0..10) {
        0..=5 => Kind::Data,
        6 | 7 => Kind::Ping,
        8 => Kind::Pong,
        _ => Kind::Error,
    };
    let payload = if kind == Kind::Data && rng.u8(0..4) != 0 {
        let mut p = mem_request(rng, pids).as_bytes().to_vec();
        match rng.u8(0..4) {
            0 => p.truncate(rng.usize(0..=REQUEST_LEN)),
            1 | 2 => {
                let mut page = vec![0u8; PAGE];
                rng.fill(&mut page);
                p.extend_from_slice(&page[..rng.usize(PAGE - 8..=PAGE)]);
            }
            _ => {}
        }
        p
    } else {
        let mut p = vec![0u8; length(rng)];
        if rng.bool() {
            rng.fill(&mut p);
        }
        p
    };
    let mut flags = 0;
    if rng.u8(0..6) == 0 {
        flags |= FLAG_REPLY;
    }
    if rng.u8(0..6) == 0 {
        flags |= FLAG_FROM_MEMORY;
    }
    let header = Header {
        kind,
        flags,
        length: payload.len() as u32,
        request_id: match rng.u8(0..8) {
            0 => rng.u64(..) | 1 << 63,
            1 => 0,
            _ => rng.u64(1..1 << 40),
        },
        src: if rng.u8(0..10) == 0 { rng.u32(..) } else { src },
        dst: match rng.u8(0..12) {
            0 => 0,
            1 => rng.u32(..),
            _ => dst,
        },
    };
    let mut head = header.encode();
    // Now and then a field no decoder takes: the connection must close,
    // and only it.
    match rng.u8(0..40) {
        0 => head[3] = rng.u8(5..),
        1 => head[5] |= 0x80,
        2 => head[29] = 1,
        3 => head[8..12].copy_from_slice(&(MAX_PAYLOAD + 1 + rng.u32(0..16)).to_le_bytes()),
        _ => {}
    }
    let seal = match rng.u8(0..30) {
        0 => Seal::Tampered,
        1 => Seal::Replayed,
        2 => Seal::Bare,
        _ => Seal::Proper,
    };
    FuzzFrame {
        header,
        head,
        payload,
        seal,
    }
}
