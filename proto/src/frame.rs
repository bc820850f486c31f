//! The fabric's envelope: every message between components is one frame, a
//! fixed 32-byte [`Header`] and a payload of `length` bytes.
//!
//! The header carries what any hop needs to check and route a message
//! without understanding it: magic, protocol version, kind, flags, payload
//! length, request id, source and destination component ids. [`decode`]
//! checks all of it and returns a [`DecodeError`], never panics, for any
//! byte string; it is fuzzed (`proto/fuzz`) and property-tested.
//!
//! The payload is never copied by this module: [`Header::encode`] produces
//! the 32 header bytes and a transport sends them and the payload slice
//! together (a vectored write, or two copies into a shared ring), so a page
//! goes from guest memory to the wire in one copy.

use core::fmt;

/// "LG", little-endian.
pub const MAGIC: u16 = 0x474c;
/// The protocol version this build speaks. A frame of any other version is
/// refused: components of one rack are built together.
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 32;
/// The largest payload a frame may carry: room for 256 pages.
pub const MAX_PAYLOAD: u32 = 1 << 20;

/// A component id, stable across restarts. 0 is nobody.
pub type ComponentId = u32;

/// What a frame is. Unknown kinds are refused at decode time, so every
/// kind that reaches a handler is one it was built to understand.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Liveness check; answered by [`Kind::Pong`] with the same payload.
    Ping = 1,
    Pong = 2,
    /// Opaque bytes for the destination monitor.
    Data = 3,
    /// The request could not be delivered or served; the payload is an
    /// [`ErrorCode`] (u32) and UTF-8 detail.
    Error = 4,
}

impl Kind {
    pub const fn from_u8(v: u8) -> Option<Kind> {
        match v {
            1 => Some(Kind::Ping),
            2 => Some(Kind::Pong),
            3 => Some(Kind::Data),
            4 => Some(Kind::Error),
            _ => None,
        }
    }
}

/// Flag bits.
pub const FLAG_REPLY: u16 = 1;
/// Set only by the VMM that hands a frame to its guest: the frame's sender
/// is a memory component, as the sender's VMM stated in the frame's
/// authenticated trailer. A guest never sets it (its VMM drops such a
/// frame), and whatever a frame carries here on the wire is overwritten.
pub const FLAG_FROM_MEMORY: u16 = 2;
/// Flags this version defines; any other bit set is an error.
pub const KNOWN_FLAGS: u16 = FLAG_REPLY | FLAG_FROM_MEMORY;

/// Why a request failed, in an [`Kind::Error`] frame.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// The destination did not answer within the deadline.
    Timeout = 1,
    /// No connection to the destination could be made.
    Unreachable = 2,
    /// The destination is not a component this one knows.
    UnknownDestination = 3,
    /// The receiver could not parse the request.
    BadRequest = 4,
    /// The frame is larger than the destination takes.
    TooLarge = 5,
    /// The destination's guest did not take the frame in time.
    NotTaken = 6,
}

impl ErrorCode {
    pub const fn from_u32(v: u32) -> Option<ErrorCode> {
        match v {
            1 => Some(ErrorCode::Timeout),
            2 => Some(ErrorCode::Unreachable),
            3 => Some(ErrorCode::UnknownDestination),
            4 => Some(ErrorCode::BadRequest),
            5 => Some(ErrorCode::TooLarge),
            6 => Some(ErrorCode::NotTaken),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub flags: u16,
    /// Payload bytes that follow the header.
    pub length: u32,
    /// Chosen by the requester; a reply carries the request's id.
    pub request_id: u64,
    pub src: ComponentId,
    pub dst: ComponentId,
}

/// Everything that can be wrong with bytes that claim to be a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the header, or than header plus payload: wait for
    /// more (a stream) or drop (a datagram). `need` is the total wanted.
    Truncated {
        have: usize,
        need: usize,
    },
    BadMagic(u16),
    BadVersion(u8),
    UnknownKind(u8),
    UnknownFlags(u16),
    /// The reserved word is not zero.
    Reserved(u32),
    /// The payload length is larger than [`MAX_PAYLOAD`].
    Oversized(u32),
}

impl DecodeError {
    /// Whether more bytes could make the frame whole; every other error
    /// means the stream is not speaking this protocol.
    pub const fn is_truncated(&self) -> bool {
        matches!(self, DecodeError::Truncated { .. })
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { have, need } => {
                write!(f, "truncated frame: {have} of {need} bytes")
            }
            DecodeError::BadMagic(m) => write!(f, "not a Lego frame (magic {m:#06x})"),
            DecodeError::BadVersion(v) => {
                write!(f, "protocol version {v}, this component speaks {VERSION}")
            }
            DecodeError::UnknownKind(k) => write!(f, "unknown message kind {k}"),
            DecodeError::UnknownFlags(x) => write!(f, "unknown flags {x:#06x}"),
            DecodeError::Reserved(r) => write!(f, "reserved header word is {r:#x}, not 0"),
            DecodeError::Oversized(n) => {
                write!(
                    f,
                    "payload of {n} bytes, more than the {MAX_PAYLOAD} allowed"
                )
            }
        }
    }
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    (u32_at(b, i) as u64) | ((u32_at(b, i + 4) as u64) << 32)
}

impl Header {
    /// A request of `kind` with `length` payload bytes.
    pub const fn request(
        kind: Kind,
        request_id: u64,
        src: ComponentId,
        dst: ComponentId,
        length: u32,
    ) -> Header {
        Header {
            kind,
            flags: 0,
            length,
            request_id,
            src,
            dst,
        }
    }

    /// The header of a reply to `self`: same id, endpoints swapped.
    pub const fn reply(&self, kind: Kind, length: u32) -> Header {
        Header {
            kind,
            flags: FLAG_REPLY,
            length,
            request_id: self.request_id,
            src: self.dst,
            dst: self.src,
        }
    }

    pub const fn is_reply(&self) -> bool {
        self.flags & FLAG_REPLY != 0
    }

    /// Whether the receiving VMM says the sender is a memory component.
    pub const fn from_memory(&self) -> bool {
        self.flags & FLAG_FROM_MEMORY != 0
    }

    /// The 32 header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..2].copy_from_slice(&MAGIC.to_le_bytes());
        b[2] = VERSION;
        b[3] = self.kind as u8;
        b[4..6].copy_from_slice(&self.flags.to_le_bytes());
        // 6..8 and 28..32 reserved, zero.
        b[8..12].copy_from_slice(&self.length.to_le_bytes());
        b[12..20].copy_from_slice(&self.request_id.to_le_bytes());
        b[20..24].copy_from_slice(&self.src.to_le_bytes());
        b[24..28].copy_from_slice(&self.dst.to_le_bytes());
        b
    }

    /// Checks and decodes a header from the start of `bytes` (which may
    /// hold more). The payload length is checked against [`MAX_PAYLOAD`]
    /// but not against `bytes`: see [`decode`] for a whole frame.
    pub fn decode(bytes: &[u8]) -> Result<Header, DecodeError> {
        if bytes.len() < HEADER_LEN {
            return Err(DecodeError::Truncated {
                have: bytes.len(),
                need: HEADER_LEN,
            });
        }
        let magic = u16_at(bytes, 0);
        if magic != MAGIC {
            return Err(DecodeError::BadMagic(magic));
        }
        if bytes[2] != VERSION {
            return Err(DecodeError::BadVersion(bytes[2]));
        }
        let kind = Kind::from_u8(bytes[3]).ok_or(DecodeError::UnknownKind(bytes[3]))?;
        let flags = u16_at(bytes, 4);
        if flags & !KNOWN_FLAGS != 0 {
            return Err(DecodeError::UnknownFlags(flags));
        }
        let reserved = u16_at(bytes, 6) as u32 | u32_at(bytes, 28);
        if reserved != 0 {
            return Err(DecodeError::Reserved(reserved));
        }
        let length = u32_at(bytes, 8);
        if length > MAX_PAYLOAD {
            return Err(DecodeError::Oversized(length));
        }
        Ok(Header {
            kind,
            flags,
            length,
            request_id: u64_at(bytes, 12),
            src: u32_at(bytes, 20),
            dst: u32_at(bytes, 24),
        })
    }

    /// Header plus payload bytes.
    pub const fn frame_len(&self) -> usize {
        HEADER_LEN + self.length as usize
    }
}

/// Decodes one whole frame from the start of `bytes`: its header, its
/// payload (borrowed, not copied) and the bytes it used.
pub fn decode(bytes: &[u8]) -> Result<(Header, &[u8], usize), DecodeError> {
    let header = Header::decode(bytes)?;
    let need = header.frame_len();
    if bytes.len() < need {
        return Err(DecodeError::Truncated {
            have: bytes.len(),
            need,
        });
    }
    Ok((header, &bytes[HEADER_LEN..need], need))
}

/// The payload of an [`Kind::Error`] frame: the code, then UTF-8 detail.
pub fn encode_error(code: ErrorCode, detail: &str, out: &mut [u8]) -> usize {
    let detail = &detail.as_bytes()[..detail.len().min(out.len().saturating_sub(4))];
    if out.len() < 4 {
        return 0;
    }
    out[..4].copy_from_slice(&(code as u32).to_le_bytes());
    out[4..4 + detail.len()].copy_from_slice(detail);
    4 + detail.len()
}

/// Splits an error payload into its code and detail.
pub fn decode_error(payload: &[u8]) -> Option<(ErrorCode, &str)> {
    if payload.len() < 4 {
        return None;
    }
    let code = ErrorCode::from_u32(u32_at(payload, 0))?;
    let detail = core::str::from_utf8(&payload[4..]).unwrap_or("");
    Some((code, detail))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn kind() -> impl Strategy<Value = Kind> {
        prop_oneof![
            Just(Kind::Ping),
            Just(Kind::Pong),
            Just(Kind::Data),
            Just(Kind::Error)
        ]
    }

    fn frame_bytes(h: &Header, payload: &[u8]) -> Vec<u8> {
        let mut v = h.encode().to_vec();
        v.extend_from_slice(payload);
        v
    }

    proptest! {
        #[test]
        fn round_trip(kind in kind(), reply in any::<bool>(), id in any::<u64>(), src in any::<u32>(),
                      dst in any::<u32>(), payload in proptest::collection::vec(any::<u8>(), 0..600),
                      tail in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut h = Header::request(kind, id, src, dst, payload.len() as u32);
            if reply { h = h.reply(kind, payload.len() as u32); }
            let mut bytes = frame_bytes(&h, &payload);
            bytes.extend_from_slice(&tail);
            let (got, body, used) = decode(&bytes).unwrap();
            prop_assert_eq!(got, h);
            prop_assert_eq!(body, &payload[..]);
            prop_assert_eq!(used, HEADER_LEN + payload.len());
        }

        #[test]
        fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok((h, body, used)) = decode(&bytes) {
                prop_assert!(used <= bytes.len());
                prop_assert_eq!(body.len(), h.length as usize);
            }
        }

        #[test]
        fn every_prefix_is_truncated(payload in proptest::collection::vec(any::<u8>(), 0..100), cut in 0usize..132) {
            let h = Header::request(Kind::Data, 7, 1, 2, payload.len() as u32);
            let bytes = frame_bytes(&h, &payload);
            let cut = cut.min(bytes.len());
            let r = decode(&bytes[..cut]);
            if cut < bytes.len() {
                prop_assert!(matches!(r, Err(DecodeError::Truncated { .. })), "{:?}", r);
            } else {
                prop_assert!(r.is_ok());
            }
        }

        #[test]
        fn a_flipped_header_bit_never_passes_silently(byte in 0usize..HEADER_LEN, bit in 0u8..8) {
            let h = Header::request(Kind::Ping, 42, 3, 4, 0);
            let mut bytes = h.encode();
            bytes[byte] ^= 1 << bit;
            // A flip may only pass where another value is also meaningful:
            // the kind (1 <-> 3 ...), the reply flag, the id and the endpoints.
            if let Ok((got, _, _)) = decode(&bytes) {
                let meaningful = byte == 3 || (byte == 4 && bit <= 1) || (12..28).contains(&byte);
                prop_assert!(meaningful, "byte {} bit {} passed: {:?}", byte, bit, got);
            }
        }
    }

    #[test]
    fn each_check_has_its_error() {
        let good = Header::request(Kind::Data, 1, 2, 3, 0).encode();
        let with = |i: usize, v: u8| {
            let mut b = good;
            b[i] = v;
            decode(&b).map(|r| r.0)
        };
        assert_eq!(with(0, 0), Err(DecodeError::BadMagic(0x4700)));
        assert_eq!(with(2, 9), Err(DecodeError::BadVersion(9)));
        assert_eq!(with(3, 77), Err(DecodeError::UnknownKind(77)));
        assert_eq!(with(5, 0x80), Err(DecodeError::UnknownFlags(0x8000)));
        assert_eq!(with(7, 1), Err(DecodeError::Reserved(0x100)));
        assert_eq!(with(31, 1), Err(DecodeError::Reserved(0x100_0000)));
        let mut big = good;
        big[8..12].copy_from_slice(&(MAX_PAYLOAD + 1).to_le_bytes());
        assert_eq!(
            decode(&big).map(|r| r.0),
            Err(DecodeError::Oversized(MAX_PAYLOAD + 1))
        );
        assert!(decode(&good[..5]).unwrap_err().is_truncated());
    }

    #[test]
    fn error_payloads() {
        let mut buf = [0u8; 64];
        let n = encode_error(ErrorCode::Unreachable, "component 7 refused", &mut buf);
        assert_eq!(
            decode_error(&buf[..n]),
            Some((ErrorCode::Unreachable, "component 7 refused"))
        );
        assert_eq!(decode_error(&buf[..3]), None);
        assert_eq!(encode_error(ErrorCode::Timeout, "x", &mut buf[..2]), 0);
        let n = encode_error(ErrorCode::Timeout, "a long detail", &mut buf[..6]);
        assert_eq!(decode_error(&buf[..n]), Some((ErrorCode::Timeout, "a ")));
    }
}
