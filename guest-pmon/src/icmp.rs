//! ICMP echo on the loopback: the packets behind `ping 127.0.0.1` and
//! `ping ::1`. Lego's network is the loopback (see [`crate::inet`]), whose
//! kernel answers every echo request sent to it; this module checks the
//! messages a program sends (ping sockets, `SOCK_DGRAM` with
//! IPPROTO_ICMP or IPPROTO_ICMPV6, take only echo requests; raw sockets
//! send any), builds the kernel's echo reply, the internet checksums
//! (RFC 1071; ICMPv6's over its pseudo-header, RFC 4443) and the IPv4
//! header a raw IPv4 socket reads in front of each message.
//! [`crate::dgram`] delivers them.

use alloc::vec::Vec;

/// ICMP's echo request and reply types (RFC 792), and ICMPv6's (RFC 4443).
pub const ECHO_REQUEST: u8 = 8;
pub const ECHO_REPLY: u8 = 0;
pub const ECHO_REQUEST6: u8 = 128;
pub const ECHO_REPLY6: u8 = 129;

/// An ICMP header: type, code, checksum, identifier, sequence number.
pub const HEADER: usize = 8;
/// An IPv4 header without options.
pub const IPV4_HEADER: usize = 20;
/// The largest ICMP message in one IPv4 packet.
pub const MAX_MESSAGE: usize = 65_535 - IPV4_HEADER;

const EINVAL: i64 = 22;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_ICMPV6: u8 = 58;
const LOOPBACK4: [u8; 4] = [127, 0, 0, 1];
const LOOPBACK6: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// The ones' complement sum of `parts` in 16-bit big-endian words, as if
/// they were one buffer of even-length parts (RFC 1071), complemented.
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &b in part.iter() {
            match odd.take() {
                Some(hi) => sum += u16::from_be_bytes([hi, b]) as u32,
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += (hi as u32) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// ICMPv6's pseudo-header for `len` bytes from ::1 to ::1.
fn pseudo6(len: usize) -> [u8; 40] {
    let mut p = [0u8; 40];
    p[..16].copy_from_slice(&LOOPBACK6);
    p[16..32].copy_from_slice(&LOOPBACK6);
    p[32..36].copy_from_slice(&(len as u32).to_be_bytes());
    p[39] = IPPROTO_ICMPV6;
    p
}

/// Sets `msg`'s checksum field: over the message for ICMP, over the
/// pseudo-header and the message for ICMPv6 (the kernel computes it for
/// every ICMPv6 socket, and for ICMP ping sockets).
pub fn seal(msg: &mut [u8], v6: bool) {
    if msg.len() < 4 {
        return;
    }
    msg[2..4].copy_from_slice(&[0, 0]);
    let sum = match v6 {
        true => checksum(&[&pseudo6(msg.len()), msg]),
        false => checksum(&[msg]),
    };
    msg[2..4].copy_from_slice(&sum.to_be_bytes());
}

/// Whether an ICMP message's own checksum is right (IPv4: the sender
/// computed it; the loopback's kernel drops one that is wrong).
pub fn intact(msg: &[u8]) -> bool {
    checksum(&[msg]) == 0
}

/// What a ping socket takes (Linux's `ping_common_sendmsg`): at least a
/// header, of an echo request with code 0; EINVAL otherwise.
pub fn check_ping(msg: &[u8], v6: bool) -> Result<(), i64> {
    let request = if v6 { ECHO_REQUEST6 } else { ECHO_REQUEST };
    match msg {
        [ty, 0, ..] if msg.len() >= HEADER && *ty == request => Ok(()),
        _ => Err(EINVAL),
    }
}

/// The echo identifier of an ICMP message (a ping socket's port).
pub fn ident(msg: &[u8]) -> u16 {
    match msg {
        [_, _, _, _, a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}

/// `msg` with echo identifier `id` (a ping socket's: the kernel writes it)
/// and its checksum sealed.
pub fn with_ident(msg: &[u8], id: u16, v6: bool) -> Vec<u8> {
    let mut m = msg.to_vec();
    if m.len() >= HEADER {
        m[4..6].copy_from_slice(&id.to_be_bytes());
    }
    seal(&mut m, v6);
    m
}

/// The loopback kernel's answer to `msg`: for an echo request (of a right
/// checksum over IPv4), the echo reply with its identifier, sequence
/// number and data; nothing for anything else.
pub fn reply(msg: &[u8], v6: bool) -> Option<Vec<u8>> {
    let (request, answer) = match v6 {
        true => (ECHO_REQUEST6, ECHO_REPLY6),
        false => (ECHO_REQUEST, ECHO_REPLY),
    };
    if msg.len() < HEADER || msg[0] != request || msg[1] != 0 || (!v6 && !intact(msg)) {
        return None;
    }
    let mut r = msg.to_vec();
    r[0] = answer;
    seal(&mut r, v6);
    Some(r)
}

/// The IPv4 header a raw IPv4 socket reads in front of `msg` (from and to
/// 127.0.0.1, with `ttl`, `tos` and the packet's `id`).
pub fn ipv4_header(msg: &[u8], ttl: u8, tos: u8, id: u16) -> [u8; IPV4_HEADER] {
    let mut h = [0u8; IPV4_HEADER];
    h[0] = 0x45;
    h[1] = tos;
    let total = (IPV4_HEADER + msg.len()).min(0xffff) as u16;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h[8] = ttl;
    h[9] = IPPROTO_ICMP;
    h[12..16].copy_from_slice(&LOOPBACK4);
    h[16..20].copy_from_slice(&LOOPBACK4);
    let sum = checksum(&[&h]);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h
}

/// Whether a socket's ICMP_FILTER (IPv4: a bit per type below 32) or
/// ICMP6_FILTER (IPv6: a bit per type) `filter` drops type `ty`: a set
/// bit blocks it, as both filters do.
pub fn filtered(filter: &[u32; 8], ty: u8, v6: bool) -> bool {
    if !v6 && ty >= 32 {
        return false;
    }
    filter[(ty >> 5) as usize] & (1 << (ty & 31)) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo(v6: bool) -> Vec<u8> {
        let ty = if v6 { ECHO_REQUEST6 } else { ECHO_REQUEST };
        let mut m = alloc::vec![ty, 0, 0, 0, 0x12, 0x34, 0, 7, b'a', b'b', b'c'];
        seal(&mut m, v6);
        m
    }

    #[test]
    fn checksums_as_rfc_1071_computes_them() {
        // RFC 1071's example words: 0001 f203 f4f5 f6f7 sum to ddf2.
        assert_eq!(
            checksum(&[&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]]),
            !0xddf2
        );
        // An odd length pads with a zero byte; parts join as one buffer.
        assert_eq!(checksum(&[&[0xab]]), !0xab00);
        assert_eq!(
            checksum(&[&[0x12], &[0x34, 0x56]]),
            checksum(&[&[0x12, 0x34, 0x56]])
        );
        let m = echo(false);
        assert!(intact(&m));
        let mut bad = m.clone();
        bad[9] ^= 1;
        assert!(!intact(&bad));
    }

    #[test]
    fn an_echo_request_gets_its_reply_and_nothing_else_does() {
        for v6 in [false, true] {
            let m = echo(v6);
            let r = reply(&m, v6).expect("a reply");
            assert_eq!(r[0], if v6 { ECHO_REPLY6 } else { ECHO_REPLY });
            assert_eq!(r[4..], m[4..], "identifier, sequence and data kept");
            if v6 {
                assert_eq!(checksum(&[&pseudo6(r.len()), &r]), 0);
            } else {
                assert!(intact(&r));
            }
            assert_eq!(reply(&r, v6), None, "a reply is not answered");
            assert_eq!(reply(&m[..7], v6), None, "shorter than a header");
        }
        let mut bad = echo(false);
        bad[10] ^= 0xff;
        assert_eq!(reply(&bad, false), None, "a wrong checksum is dropped");
    }

    #[test]
    fn ping_sockets_take_echo_requests_only() {
        assert_eq!(check_ping(&echo(false), false), Ok(()));
        assert_eq!(check_ping(&echo(true), true), Ok(()));
        assert_eq!(check_ping(&echo(false), true), Err(EINVAL));
        assert_eq!(check_ping(&echo(false)[..7], false), Err(EINVAL));
        let mut code = echo(false);
        code[1] = 1;
        assert_eq!(check_ping(&code, false), Err(EINVAL));
        let m = with_ident(&echo(false), 0x4321, false);
        assert_eq!(ident(&m), 0x4321);
        assert!(intact(&m));
    }

    #[test]
    fn the_ipv4_header_is_sound() {
        let m = echo(false);
        let h = ipv4_header(&m, 64, 0, 1);
        assert_eq!(checksum(&[&h]), 0);
        assert_eq!(u16::from_be_bytes([h[2], h[3]]) as usize, 20 + m.len());
        assert_eq!((h[8], h[9]), (64, 1));
    }

    #[test]
    fn filters_block_the_types_whose_bits_are_set() {
        let mut f = [0u32; 8];
        f[0] = 1 << ECHO_REQUEST;
        assert!(filtered(&f, ECHO_REQUEST, false));
        assert!(!filtered(&f, ECHO_REPLY, false));
        f[ECHO_REQUEST6 as usize >> 5] |= 1;
        assert!(filtered(&f, ECHO_REQUEST6, true));
        assert!(
            !filtered(&f, ECHO_REQUEST6, false),
            "IPv4's filter has 32 types"
        );
    }
}
