//! The pseudo-random byte stream the fabric tests send, and the checksum
//! they report, defined once so the guest that sends and the host test that
//! checks agree.

/// Fills `buf` with the stream's bytes for chunk `index`.
pub fn fill(index: u64, buf: &mut [u8]) {
    let mut x = index.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for b in buf.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
}

/// 64-bit FNV-1a, continued from `hash` (start with [`FNV_START`]).
pub fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= b as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// The checksum of a stream of `bytes` bytes sent in `chunk`-byte pieces.
pub fn stream_checksum(bytes: u64, chunk: usize) -> u64 {
    let mut hash = FNV_START;
    let mut buf = [0u8; 8192];
    let mut left = bytes;
    let mut index = 0;
    while left > 0 {
        let n = (chunk as u64).min(left) as usize;
        fill(index, &mut buf[..n]);
        hash = fnv(hash, &buf[..n]);
        left -= n as u64;
        index += 1;
    }
    hash
}

/// The echo service every monitor runs until its own protocol lands: a Data
/// request is answered with its own bytes, except an 8-byte request
/// `GIVE` + n (u32, little-endian), answered with n bytes of [`fill`]
/// (a small request for a page, like a memory read).
pub const GIVE: [u8; 4] = *b"GIVE";

pub fn give_request(n: u32) -> [u8; 8] {
    let mut r = [0u8; 8];
    r[..4].copy_from_slice(&GIVE);
    r[4..].copy_from_slice(&n.to_le_bytes());
    r
}

/// The n of a `GIVE` request.
pub fn parse_give(payload: &[u8]) -> Option<u32> {
    if payload.len() == 8 && payload[..4] == GIVE {
        Some(u32::from_le_bytes([
            payload[4], payload[5], payload[6], payload[7],
        ]))
    } else {
        None
    }
}
