//! Authenticated frames: on the wire between VMMs every frame (the 32-byte
//! header and its payload, `lego_proto::frame`) is followed by a
//! [`TRAILER_LEN`]-byte trailer: a sequence number, the sender's role, and
//! a tag, the keyed BLAKE3 hash (rack key) of everything before it and of
//! the receiver's nonce for this channel.
//!
//! The nonce makes a frame valid on one channel only (a TCP connection, a
//! ring as read by one reader process, an RDMA queue pair): the receiver
//! picks it at random when the channel opens and tells the sender (it is
//! not secret, only fresh), so a frame recorded on one connection is
//! refused on any other. The sequence
//! number makes a frame valid once: each channel is in order, so the
//! receiver expects exactly the next number and drops any other.
//!
//! Guests never see the key or the trailer: their VMM seals and opens.

use lego_proto::frame::HEADER_LEN;

use crate::key::RackKey;

pub const NONCE_LEN: usize = 16;
pub const TAG_LEN: usize = 32;
/// seq (8), role (1), reserved (7), tag (32).
pub const TRAILER_LEN: usize = 16 + TAG_LEN;

/// What a receiver picks for each channel it reads.
pub type Nonce = [u8; NONCE_LEN];

/// Who sent a frame, as its VMM states it inside the authenticated trailer
/// (`lego_proto::boot::Role` values; 0 for a tool that is not a component).
pub type SenderRole = u8;
pub const ROLE_TOOL: SenderRole = 0;

const FRAME_CONTEXT: &[u8] = b"lego fabric frame v1";

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the frame carries no valid authentication tag (it was not sealed with this rack's key for this channel)")]
    BadTag,
    #[error("the frame was replayed or is out of order (sequence {seq}, expected {expected})")]
    Replayed { seq: u64, expected: u64 },
    #[error("the frame is shorter than its header, payload and trailer")]
    Short,
}

/// A fresh random nonce. Falls back to the clock and pid only if the
/// kernel has no randomness to give, which it always has on Linux.
pub fn fresh_nonce() -> Nonce {
    let mut n = [0u8; NONCE_LEN];
    if getrandom::fill(&mut n).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let h = blake3::hash(
            &[
                t.to_le_bytes().as_slice(),
                &std::process::id().to_le_bytes(),
            ]
            .concat(),
        );
        n.copy_from_slice(&h.as_bytes()[..NONCE_LEN]);
    }
    n
}

fn tag(
    key: &RackKey,
    nonce: &Nonce,
    header: &[u8],
    payload: &[u8],
    head: &[u8; 16],
) -> blake3::Hash {
    finish(&absorb(key, payload), header, nonce, head)
}

/// A payload hashed under the rack's key, ready to be sealed into frames
/// for several channels: the same payload sent to two components (a
/// write-back and its copy) is hashed once.
#[derive(Clone)]
pub struct Absorbed(blake3::Hasher);

/// The payload first, from the start of BLAKE3's first 1 KiB chunk: a page
/// is then four whole chunks, hashed side by side with SIMD. What follows
/// it in the tag has fixed lengths, so the input still reads one way only.
pub fn absorb(key: &RackKey, payload: &[u8]) -> Absorbed {
    let mut h = blake3::Hasher::new_keyed(key.bytes());
    h.update(payload);
    Absorbed(h)
}

fn finish(absorbed: &Absorbed, header: &[u8], nonce: &Nonce, head: &[u8; 16]) -> blake3::Hash {
    let mut h = absorbed.0.clone();
    h.update(header);
    h.update(nonce);
    h.update(head);
    h.update(FRAME_CONTEXT);
    h.finalize()
}

/// The trailer of a frame (its header bytes and payload) sent as number
/// `seq` on the channel whose reader picked `nonce`.
pub fn seal(
    key: &RackKey,
    nonce: &Nonce,
    seq: u64,
    role: SenderRole,
    header: &[u8; HEADER_LEN],
    payload: &[u8],
) -> [u8; TRAILER_LEN] {
    let mut head = [0u8; 16];
    head[..8].copy_from_slice(&seq.to_le_bytes());
    head[8] = role;
    let t = tag(key, nonce, header, payload, &head);
    let mut out = [0u8; TRAILER_LEN];
    out[..16].copy_from_slice(&head);
    out[16..].copy_from_slice(t.as_bytes());
    out
}

/// [`seal`] of a payload [`absorb`]ed under the same key.
pub fn seal_absorbed(
    absorbed: &Absorbed,
    nonce: &Nonce,
    seq: u64,
    role: SenderRole,
    header: &[u8; HEADER_LEN],
) -> [u8; TRAILER_LEN] {
    let mut head = [0u8; 16];
    head[..8].copy_from_slice(&seq.to_le_bytes());
    head[8] = role;
    let t = finish(absorbed, header, nonce, &head);
    let mut out = [0u8; TRAILER_LEN];
    out[..16].copy_from_slice(&head);
    out[16..].copy_from_slice(t.as_bytes());
    out
}

/// What a valid trailer says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened {
    pub seq: u64,
    pub role: SenderRole,
}

/// Checks `frame` (header, payload, trailer) against the key and this
/// channel's nonce, and that it is number `expected` on the channel.
pub fn open(
    key: &RackKey,
    nonce: &Nonce,
    expected: u64,
    frame: &[u8],
) -> Result<Opened, AuthError> {
    let body_len = frame
        .len()
        .checked_sub(TRAILER_LEN)
        .filter(|&n| n >= HEADER_LEN)
        .ok_or(AuthError::Short)?;
    let (body, trailer) = frame.split_at(body_len);
    let mut head = [0u8; 16];
    head.copy_from_slice(&trailer[..16]);
    let mut got = [0u8; TAG_LEN];
    got.copy_from_slice(&trailer[16..]);
    let want = tag(key, nonce, &body[..HEADER_LEN], &body[HEADER_LEN..], &head);
    // blake3::Hash compares in constant time.
    if want != blake3::Hash::from_bytes(got) || head[9..].iter().any(|&b| b != 0) {
        return Err(AuthError::BadTag);
    }
    let seq = u64::from_le_bytes([
        head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7],
    ]);
    if seq != expected {
        return Err(AuthError::Replayed { seq, expected });
    }
    Ok(Opened { seq, role: head[8] })
}

/// The sending end of one channel: the peer's nonce and the next number.
#[derive(Clone, Debug)]
pub struct Sealer {
    pub nonce: Nonce,
    pub next: u64,
}

impl Sealer {
    pub fn new(nonce: Nonce) -> Sealer {
        Sealer { nonce, next: 0 }
    }

    /// The trailer for the next frame; the number is used up even if the
    /// frame is then not sent whole (the channel is closed then anyway).
    pub fn seal(
        &mut self,
        key: &RackKey,
        role: SenderRole,
        header: &[u8; HEADER_LEN],
        payload: &[u8],
    ) -> [u8; TRAILER_LEN] {
        let t = seal(key, &self.nonce, self.next, role, header, payload);
        self.next += 1;
        t
    }

    /// [`Sealer::seal`] of a payload already [`absorb`]ed.
    pub fn seal_absorbed(
        &mut self,
        absorbed: &Absorbed,
        role: SenderRole,
        header: &[u8; HEADER_LEN],
    ) -> [u8; TRAILER_LEN] {
        let t = seal_absorbed(absorbed, &self.nonce, self.next, role, header);
        self.next += 1;
        t
    }
}

/// The receiving end of one channel: the nonce this side picked.
#[derive(Clone, Debug)]
pub struct Opener {
    pub nonce: Nonce,
    pub next: u64,
}

impl Opener {
    pub fn new() -> Opener {
        Opener {
            nonce: fresh_nonce(),
            next: 0,
        }
    }

    /// Checks the next frame; a replayed or forged one leaves the expected
    /// number where it was, so the genuine stream carries on.
    pub fn open(&mut self, key: &RackKey, frame: &[u8]) -> Result<Opened, AuthError> {
        let o = open(key, &self.nonce, self.next, frame)?;
        self.next += 1;
        Ok(o)
    }
}

impl Default for Opener {
    fn default() -> Self {
        Opener::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lego_proto::frame::{Header, Kind};

    fn frame(s: &mut Sealer, key: &RackKey, payload: &[u8]) -> Vec<u8> {
        let h = Header::request(Kind::Data, 7, 1, 2, payload.len() as u32).encode();
        let t = s.seal(key, 2, &h, payload);
        [&h[..], payload, &t].concat()
    }

    #[test]
    fn a_payload_absorbed_once_seals_for_several_channels() {
        let key = RackKey::from_bytes([7; 32]);
        let (mut rx1, mut rx2) = (Opener::new(), Opener::new());
        let (mut tx1, mut tx2) = (Sealer::new(rx1.nonce), Sealer::new(rx2.nonce));
        let payload = [5u8; 4096 + 100];
        let absorbed = absorb(&key, &payload);
        for (tx, rx, dst) in [(&mut tx1, &mut rx1, 2), (&mut tx2, &mut rx2, 3)] {
            let h = Header::request(Kind::Data, 7, 1, dst, payload.len() as u32).encode();
            let mut plain = tx.clone();
            let t = tx.seal_absorbed(&absorbed, 2, &h);
            assert_eq!(
                t,
                plain.seal(&key, 2, &h, &payload),
                "the same trailer as sealing the payload anew"
            );
            let f = [&h[..], &payload, &t].concat();
            assert_eq!(rx.open(&key, &f).map(|o| o.seq), Ok(0));
        }
        // Another payload does not open with that hash.
        let h = Header::request(Kind::Data, 8, 1, 2, 4).encode();
        let t = tx1.seal_absorbed(&absorbed, 2, &h);
        assert_eq!(
            rx1.open(&key, &[&h[..], &[1, 2, 3, 4], &t].concat()),
            Err(AuthError::BadTag)
        );
    }

    #[test]
    fn sealed_frames_open_in_order_once() {
        let key = RackKey::from_bytes([7; 32]);
        let mut rx = Opener::new();
        let mut tx = Sealer::new(rx.nonce);
        let a = frame(&mut tx, &key, b"first");
        let b = frame(&mut tx, &key, &[9; 4096]);
        assert_eq!(rx.open(&key, &a), Ok(Opened { seq: 0, role: 2 }));
        assert_eq!(
            rx.open(&key, &a),
            Err(AuthError::Replayed {
                seq: 0,
                expected: 1
            })
        );
        assert_eq!(rx.open(&key, &b).map(|o| o.seq), Ok(1));
    }

    #[test]
    fn any_change_or_another_key_or_channel_is_refused() {
        let key = RackKey::from_bytes([7; 32]);
        let rx = Opener::new();
        let good = frame(&mut Sealer::new(rx.nonce), &key, b"hello rack");
        for i in 0..good.len() {
            for bit in [0x01, 0x80] {
                let mut bad = good.clone();
                bad[i] ^= bit;
                assert!(
                    rx.clone().open(&key, &bad).is_err(),
                    "byte {i} bit {bit:#x}"
                );
            }
        }
        let other = RackKey::from_bytes([8; 32]);
        assert_eq!(rx.clone().open(&other, &good), Err(AuthError::BadTag));
        assert_eq!(Opener::new().open(&key, &good), Err(AuthError::BadTag));
        // Without its trailer (or cut short), it is not a frame at all.
        assert!(rx
            .clone()
            .open(&key, &good[..good.len() - TRAILER_LEN])
            .is_err());
        assert_eq!(rx.clone().open(&key, &good[..40]), Err(AuthError::Short));
    }
}
