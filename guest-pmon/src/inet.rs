//! AF_INET and AF_INET6 addresses of stream sockets on the loopback: the
//! processes of one processor reach each other at 127.0.0.1 and ::1 as on
//! a Linux host, through the same connections as AF_UNIX sockets
//! (`crate::unixsock`). This is the `sockaddr_in` and `sockaddr_in6`
//! side: which addresses are this host's, how each is written back, and
//! the port a socket is known by.
//!
//! Decided: a processor has no network beyond its loopback (components
//! talk over the fabric, not through their programs), so binding another
//! address is EADDRNOTAVAIL and connecting to one ENETUNREACH. As on
//! Linux, an IPv6 socket takes IPv4 connections too (IPV6_V6ONLY off):
//! a port is one name whatever the family.

use alloc::vec::Vec;

pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;
/// `sockaddr_in` and `sockaddr_in6` sizes.
pub const SOCKADDR_IN_LEN: usize = 16;
pub const SOCKADDR_IN6_LEN: usize = 28;
/// Linux's default ephemeral range (ip_local_port_range).
pub const EPHEMERAL: core::ops::RangeInclusive<u16> = 32768..=60999;

const EINVAL: i64 = 22;
const EAFNOSUPPORT: i64 = 97;
const EADDRNOTAVAIL: i64 = 99;
const ENETUNREACH: i64 = 101;

/// The loopback addresses a socket can have or name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Addr {
    /// 0.0.0.0
    Any4,
    /// 127.0.0.1 (any of 127/8 is taken as it)
    Loopback4,
    /// ::
    Any6,
    /// ::1
    Loopback6,
    /// ::ffff:127.0.0.1, an IPv4 peer as an IPv6 socket sees it
    Mapped4,
}

/// An address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct InetName {
    pub port: u16,
    pub addr: Addr,
}

impl InetName {
    /// The sides of its port a socket bound here takes (false: IPv4's,
    /// true: IPv6's), which no other socket may take too: IPv4's
    /// addresses and IPv4 mapped into IPv6 take IPv4's, ::1 IPv6's, and
    /// IPv6's wildcard both unless the socket is v6-only, as Linux's
    /// (`net.ipv6.bindv6only` 0). 127.0.0.1 and ::1 are apart.
    pub fn sides(&self, v6only: bool) -> &'static [bool] {
        match self.addr {
            Addr::Loopback6 => &[true],
            Addr::Any6 if v6only => &[true],
            Addr::Any6 => &[false, true],
            Addr::Any4 | Addr::Loopback4 | Addr::Mapped4 => &[false],
        }
    }

    /// Whether a connection or datagram sent here reaches the IPv6 side
    /// of its port ([`Self::sides`]).
    pub fn reaches_v6(&self) -> bool {
        matches!(self.addr, Addr::Any6 | Addr::Loopback6)
    }

    pub fn v6(&self) -> bool {
        matches!(self.addr, Addr::Any6 | Addr::Loopback6 | Addr::Mapped4)
    }

    /// What names a listener: its port alone (both families share them).
    pub fn key(&self) -> InetName {
        InetName {
            port: self.port,
            addr: Addr::Any4,
        }
    }

    /// Where a socket bound here is once connected: a wildcard becomes
    /// the loopback of its family.
    pub fn local(&self) -> InetName {
        let addr = match self.addr {
            Addr::Any4 => Addr::Loopback4,
            Addr::Any6 => Addr::Loopback6,
            a => a,
        };
        InetName { addr, ..*self }
    }

    /// This (connected) socket's address as a socket of the other end's
    /// family sees it: an IPv4 peer is ::ffff:127.0.0.1 to IPv6.
    pub fn seen_from(&self, v6: bool) -> InetName {
        let addr = match (v6, self.v6()) {
            (false, _) => Addr::Loopback4,
            (true, true) if self.addr != Addr::Mapped4 => Addr::Loopback6,
            (true, _) => Addr::Mapped4,
        };
        InetName {
            port: self.port,
            addr,
        }
    }

    /// The wildcard address of port 0 in a family: an unbound socket's.
    pub fn unbound(v6: bool) -> InetName {
        InetName {
            port: 0,
            addr: if v6 { Addr::Any6 } else { Addr::Any4 },
        }
    }

    /// Its `sockaddr_in` or `sockaddr_in6`.
    pub fn sockaddr(&self) -> Vec<u8> {
        let port = self.port.to_be_bytes();
        if !self.v6() {
            let mut b = alloc::vec![0u8; SOCKADDR_IN_LEN];
            b[0..2].copy_from_slice(&AF_INET.to_le_bytes());
            b[2..4].copy_from_slice(&port);
            if self.addr == Addr::Loopback4 {
                b[4..8].copy_from_slice(&[127, 0, 0, 1]);
            }
            return b;
        }
        let mut b = alloc::vec![0u8; SOCKADDR_IN6_LEN];
        b[0..2].copy_from_slice(&AF_INET6.to_le_bytes());
        b[2..4].copy_from_slice(&port);
        match self.addr {
            Addr::Loopback6 => b[23] = 1,
            Addr::Mapped4 => {
                b[18..20].copy_from_slice(&[0xff, 0xff]);
                b[20..24].copy_from_slice(&[127, 0, 0, 1]);
            }
            _ => {}
        }
        b
    }
}

/// A port of the ephemeral range that `taken` does not hold, tried in
/// turn from the one after `next` (which moves to it): what bind to port
/// 0 gives, for TCP and UDP alike.
pub fn free_port(next: &mut u32, taken: impl Fn(u16) -> bool) -> Option<u16> {
    let (lo, hi) = (*EPHEMERAL.start(), *EPHEMERAL.end());
    let span = (hi - lo) as u32 + 1;
    for _ in 0..span {
        *next = (*next + 1) % span;
        let port = lo + *next as u16;
        if !taken(port) {
            return Some(port);
        }
    }
    None
}

/// The address a socket of family `v6` is given to bind (`bind`) or to
/// connect to, from the caller's bytes.
pub fn parse(bytes: &[u8], v6: bool, bind: bool) -> Result<InetName, i64> {
    let family = match bytes.get(0..2) {
        Some(f) => u16::from_le_bytes([f[0], f[1]]),
        None => return Err(EINVAL),
    };
    let foreign = if bind { EADDRNOTAVAIL } else { ENETUNREACH };
    if !v6 {
        if family != AF_INET {
            return Err(EAFNOSUPPORT);
        }
        if bytes.len() < SOCKADDR_IN_LEN {
            return Err(EINVAL);
        }
        let port = u16::from_be_bytes([bytes[2], bytes[3]]);
        let addr = match bytes[4..8] {
            [0, 0, 0, 0] => Addr::Any4,
            [127, _, _, _] => Addr::Loopback4,
            _ => return Err(foreign),
        };
        return Ok(InetName { port, addr });
    }
    if family != AF_INET6 {
        return Err(EAFNOSUPPORT);
    }
    if bytes.len() < 24 {
        return Err(EINVAL);
    }
    let port = u16::from_be_bytes([bytes[2], bytes[3]]);
    let a = &bytes[8..24];
    let addr = if a.iter().all(|&x| x == 0) {
        Addr::Any6
    } else if a[..15].iter().all(|&x| x == 0) && a[15] == 1 {
        Addr::Loopback6
    } else if a[..10].iter().all(|&x| x == 0) && a[10..12] == [0xff, 0xff] && a[12] == 127 {
        Addr::Mapped4
    } else {
        return Err(foreign);
    };
    Ok(InetName { port, addr })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(addr: [u8; 4], port: u16) -> Vec<u8> {
        let mut b = alloc::vec![0u8; 16];
        b[0] = 2;
        b[2..4].copy_from_slice(&port.to_be_bytes());
        b[4..8].copy_from_slice(&addr);
        b
    }

    fn v6(addr: [u8; 16], port: u16) -> Vec<u8> {
        let mut b = alloc::vec![0u8; 28];
        b[0] = 10;
        b[2..4].copy_from_slice(&port.to_be_bytes());
        b[8..24].copy_from_slice(&addr);
        b
    }

    #[test]
    fn only_the_loopback_is_this_hosts() {
        let lo = InetName {
            port: 8080,
            addr: Addr::Loopback4,
        };
        assert_eq!(parse(&v4([127, 0, 0, 1], 8080), false, false), Ok(lo));
        assert_eq!(parse(&v4([127, 1, 2, 3], 8080), false, true), Ok(lo));
        assert_eq!(
            parse(&v4([0; 4], 0), false, true).map(|n| n.addr),
            Ok(Addr::Any4)
        );
        assert_eq!(
            parse(&v4([10, 0, 0, 1], 80), false, true),
            Err(EADDRNOTAVAIL)
        );
        assert_eq!(
            parse(&v4([10, 0, 0, 1], 80), false, false),
            Err(ENETUNREACH)
        );
        assert_eq!(
            parse(&v4([127, 0, 0, 1], 80)[..8], false, false),
            Err(EINVAL)
        );
        assert_eq!(
            parse(&v4([127, 0, 0, 1], 80), true, false),
            Err(EAFNOSUPPORT)
        );
        let mut one = [0u8; 16];
        one[15] = 1;
        assert_eq!(
            parse(&v6(one, 5), true, false).map(|n| n.addr),
            Ok(Addr::Loopback6)
        );
        let mut mapped = [0u8; 16];
        mapped[10..12].copy_from_slice(&[0xff, 0xff]);
        mapped[12..16].copy_from_slice(&[127, 0, 0, 1]);
        assert_eq!(
            parse(&v6(mapped, 5), true, false).map(|n| n.addr),
            Ok(Addr::Mapped4)
        );
        assert_eq!(parse(&v6([0x20; 16], 5), true, false), Err(ENETUNREACH));
        assert_eq!(parse(&v6(one, 5), false, false), Err(EAFNOSUPPORT));
    }

    #[test]
    fn names_are_written_back_in_the_askers_family() {
        let client = InetName {
            port: 40000,
            addr: Addr::Loopback4,
        };
        assert_eq!(client.sockaddr(), v4([127, 0, 0, 1], 40000));
        assert_eq!(client.seen_from(true).addr, Addr::Mapped4);
        assert_eq!(client.seen_from(false), client);
        let mut mapped = [0u8; 16];
        mapped[10..12].copy_from_slice(&[0xff, 0xff]);
        mapped[12..16].copy_from_slice(&[127, 0, 0, 1]);
        assert_eq!(client.seen_from(true).sockaddr(), v6(mapped, 40000));
        let any6 = InetName::unbound(true);
        assert_eq!(any6.sockaddr(), v6([0; 16], 0));
        assert_eq!(any6.local().addr, Addr::Loopback6);
        assert_eq!(InetName::unbound(false).sockaddr(), v4([0; 4], 0));
        // A port is one name whatever the family.
        assert_eq!(any6.key(), InetName::unbound(false).key());
    }
}
