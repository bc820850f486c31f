//! The internet socket options Linux knows at the IP, IPv6 and TCP levels,
//! their defaults and the values a set takes, and how an option's value is
//! copied out to a buffer of the length a program gives.
//!
//! The loopback is made of pipes, so most options change nothing; what
//! matters to programs is that a get answers as Linux does. OpenSSH's
//! sshd drops every connection whose IP_OPTIONS are not empty, and an
//! option Linux does not have must be ENOPROTOOPT, not a zero.

/// A Linux error number.
type Errno = i64;

pub const IPPROTO_IP: u64 = 0;
pub const IPPROTO_TCP: u64 = 6;
pub const IPPROTO_UDP: u64 = 17;
pub const IPPROTO_IPV6: u64 = 41;
pub const IPPROTO_UDPLITE: u64 = 136;

pub const IP_OPTIONS: u64 = 4;
/// The longest IP options list (an IPv4 header's room).
pub const IP_OPTIONS_MAX: usize = 40;
const IP_TTL: u64 = 2;
const IP_MTU: u64 = 14;
const IP_MULTICAST_TTL: u64 = 33;
const IP_MULTICAST_LOOP: u64 = 34;
const IP_MTU_DISCOVER: u64 = 10;
const IP_MULTICAST_ALL: u64 = 49;
const IPV6_UNICAST_HOPS: u64 = 16;
const IPV6_MULTICAST_HOPS: u64 = 18;
const IPV6_MULTICAST_LOOP: u64 = 19;
const IPV6_MTU: u64 = 24;
const IPV6_MULTICAST_ALL: u64 = 29;
const TCP_SYNCNT: u64 = 7;
const TCP_LINGER2: u64 = 8;
const TCP_QUICKACK: u64 = 12;
const TCP_ULP: u64 = 31;

const EINVAL: Errno = 22;
const ENOENT: Errno = 2;
const ENOPROTOOPT: Errno = 92;
const EOPNOTSUPP: Errno = 95;

/// The loopback's MTU as IP_MTU and IPV6_MTU give it on a connected
/// socket (what Linux answered here).
pub const LOOPBACK_MTU: i32 = 65535;

/// What an internet option is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opt {
    /// An int, read as `default` until set; a set is checked by `rule`.
    Int { default: i32, rule: Rule },
    /// IP_OPTIONS: bytes, none by default.
    IpOptions,
    /// IP_MTU or IPV6_MTU: the path's MTU once connected (ENOTCONN before);
    /// not settable (ENOPROTOOPT).
    Mtu,
    /// Not this module's: the caller's own handling (TCP_INFO, the
    /// keepalive times, UDP-Lite's coverage and the like).
    Other,
}

/// How a set value of an int option is checked and kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Kept as given.
    Any,
    /// Kept as 0 or 1.
    Flag,
    /// IP_TTL: 1 to 255, or -1 for the default again.
    Ttl,
    /// IPV6_UNICAST_HOPS and IPV6_MULTICAST_HOPS: 0 to 255, or -1.
    Hops,
    /// IP_MULTICAST_TTL: 0 to 255 (-1 for the default).
    MulticastTtl,
}

/// What a set does with an int option's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Set {
    /// Keep this value.
    Keep(i32),
    /// Forget the value: the option reads as its default again.
    Default,
}

impl Rule {
    /// A set of `v`: what to keep, or EINVAL as Linux refuses it.
    pub fn set(self, v: i32) -> Result<Set, Errno> {
        match self {
            Rule::Any => Ok(Set::Keep(v)),
            Rule::Flag => Ok(Set::Keep((v != 0) as i32)),
            Rule::Ttl => match v {
                -1 => Ok(Set::Default),
                1..=255 => Ok(Set::Keep(v)),
                _ => Err(EINVAL),
            },
            Rule::Hops | Rule::MulticastTtl => match v {
                -1 => Ok(Set::Default),
                0..=255 => Ok(Set::Keep(v)),
                _ => Err(EINVAL),
            },
        }
    }
}

/// The socket an option is asked of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inet {
    /// AF_INET6 (which also answers the IP level, for mapped addresses).
    pub v6: bool,
    /// A TCP socket (else a datagram one: UDP, UDP-Lite, ping, raw).
    pub stream: bool,
}

/// The option `name` at `level` of socket `s` (not SOL_SOCKET), or the
/// error Linux gives for it: ENOPROTOOPT for a name its level does not
/// have, and for a level the socket does not speak EOPNOTSUPP (an IPv4
/// socket's get) or ENOPROTOOPT (a set, and IPv6's answer).
pub fn inet(s: Inet, level: u64, name: u64, set: bool) -> Result<Opt, Errno> {
    let foreign = if s.v6 || set { ENOPROTOOPT } else { EOPNOTSUPP };
    match level {
        IPPROTO_IP => ip(name),
        IPPROTO_IPV6 if s.v6 => ipv6(name),
        IPPROTO_TCP if s.stream => tcp(name, set),
        IPPROTO_UDP | IPPROTO_UDPLITE if !s.stream => Ok(Opt::Other),
        _ => Err(foreign),
    }
}

fn int(default: i32, rule: Rule) -> Result<Opt, Errno> {
    Ok(Opt::Int { default, rule })
}

/// IPPROTO_IP: the names of Linux's `ip_setsockopt` and `ip_getsockopt`.
fn ip(name: u64) -> Result<Opt, Errno> {
    match name {
        IP_OPTIONS => Ok(Opt::IpOptions),
        IP_TTL => int(64, Rule::Ttl),
        IP_MTU => Ok(Opt::Mtu),
        // IP_PMTUDISC_WANT.
        IP_MTU_DISCOVER => int(1, Rule::Any),
        IP_MULTICAST_TTL => int(1, Rule::MulticastTtl),
        IP_MULTICAST_LOOP | IP_MULTICAST_ALL => int(1, Rule::Flag),
        // IP_TOS, the flags (IP_RECVERR, IP_PKTINFO, IP_FREEBIND,
        // IP_TRANSPARENT, IP_BIND_ADDRESS_NO_PORT...) and the rest.
        1 | 3 | 6..=9 | 11..=13 | 15..=26 | 32 | 35..=48 | 50..=52 => int(0, Rule::Any),
        _ => Err(ENOPROTOOPT),
    }
}

/// IPPROTO_IPV6: the names of Linux's `ipv6_setsockopt`.
fn ipv6(name: u64) -> Result<Opt, Errno> {
    match name {
        IPV6_UNICAST_HOPS => int(64, Rule::Hops),
        IPV6_MULTICAST_HOPS => int(1, Rule::Hops),
        IPV6_MULTICAST_LOOP | IPV6_MULTICAST_ALL => int(1, Rule::Flag),
        IPV6_MTU => Ok(Opt::Mtu),
        1..=11 | 17 | 20..=23 | 25..=28 | 30..=32 | 34..=36 | 49..=62 | 66 | 67 | 70 | 72..=78 => {
            int(0, Rule::Any)
        }
        _ => Err(ENOPROTOOPT),
    }
}

/// IPPROTO_TCP: the names of Linux's `do_tcp_setsockopt`.
fn tcp(name: u64, set: bool) -> Result<Opt, Errno> {
    match name {
        TCP_SYNCNT => int(6, Rule::Any),
        TCP_LINGER2 => int(60, Rule::Any),
        TCP_QUICKACK => int(1, Rule::Flag),
        // An upper layer protocol (kernel TLS) is a module this kernel
        // does not have, as Linux answers when it is not loaded.
        TCP_ULP if set => Err(ENOENT),
        TCP_ULP => Ok(Opt::Other),
        1..=37 => Ok(Opt::Other),
        _ => Err(ENOPROTOOPT),
    }
}

/// The bytes a get of an int option copies out, for a buffer of `room`
/// bytes at `level`; EINVAL for a negative room. As Linux: at the IP
/// level a buffer shorter than an int gets a value that fits in one byte
/// as one byte; elsewhere the int's first `room` bytes.
pub fn int_bytes(level: u64, room: i32, v: i32) -> Result<([u8; 4], usize), Errno> {
    if room < 0 {
        return Err(EINVAL);
    }
    let room = room as usize;
    if level == IPPROTO_IP && room < 4 && room > 0 && (0..=255).contains(&v) {
        return Ok(([v as u8, 0, 0, 0], 1));
    }
    Ok((v.to_le_bytes(), room.min(4)))
}

/// The int a set gives in `bytes` (its option's length): at the IP level
/// one byte will do, as Linux reads a char there; elsewhere an int, or
/// EINVAL.
pub fn int_value(level: u64, bytes: &[u8]) -> Result<i32, Errno> {
    match bytes {
        [a, b, c, d, ..] => Ok(i32::from_le_bytes([*a, *b, *c, *d])),
        [a, ..] if level == IPPROTO_IP => Ok(*a as i32),
        _ => Err(EINVAL),
    }
}

/// IP_OPTIONS as a set gives them: EINVAL past 40 bytes; padded with
/// end-of-list bytes to a multiple of four, as Linux keeps them.
pub fn ip_options(given: &[u8]) -> Result<alloc::vec::Vec<u8>, Errno> {
    if given.len() > IP_OPTIONS_MAX {
        return Err(EINVAL);
    }
    let mut v = given.to_vec();
    v.resize(given.len().div_ceil(4) * 4, 0);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4_TCP: Inet = Inet {
        v6: false,
        stream: true,
    };
    const V4_UDP: Inet = Inet {
        v6: false,
        stream: false,
    };
    const V6_UDP: Inet = Inet {
        v6: true,
        stream: false,
    };

    #[test]
    fn levels_and_names_answer_as_linux() {
        assert_eq!(
            inet(V4_TCP, IPPROTO_IP, IP_OPTIONS, false),
            Ok(Opt::IpOptions)
        );
        assert_eq!(
            inet(V4_TCP, IPPROTO_IP, IP_TTL, false),
            Ok(Opt::Int {
                default: 64,
                rule: Rule::Ttl
            })
        );
        assert_eq!(inet(V4_TCP, IPPROTO_IP, 9999, false), Err(ENOPROTOOPT));
        assert_eq!(inet(V4_TCP, IPPROTO_TCP, 9999, false), Err(ENOPROTOOPT));
        // Another family's or protocol's level.
        assert_eq!(
            inet(V4_TCP, IPPROTO_IPV6, IPV6_UNICAST_HOPS, false),
            Err(EOPNOTSUPP)
        );
        assert_eq!(
            inet(V4_TCP, IPPROTO_IPV6, IPV6_UNICAST_HOPS, true),
            Err(ENOPROTOOPT)
        );
        assert_eq!(inet(V4_UDP, IPPROTO_TCP, 1, false), Err(EOPNOTSUPP));
        assert_eq!(inet(V6_UDP, IPPROTO_TCP, 1, false), Err(ENOPROTOOPT));
        // IPv6 sockets answer the IP level too.
        assert!(matches!(
            inet(V6_UDP, IPPROTO_IP, IP_TTL, false),
            Ok(Opt::Int { default: 64, .. })
        ));
        assert!(matches!(
            inet(V6_UDP, IPPROTO_IPV6, IPV6_UNICAST_HOPS, false),
            Ok(Opt::Int { default: 64, .. })
        ));
        assert_eq!(inet(V6_UDP, IPPROTO_IPV6, 12, false), Err(ENOPROTOOPT));
        assert_eq!(inet(V4_UDP, IPPROTO_UDP, 10, false), Ok(Opt::Other));
        assert_eq!(inet(V4_TCP, IPPROTO_TCP, TCP_ULP, true), Err(ENOENT));
        assert!(matches!(
            inet(V4_TCP, IPPROTO_TCP, TCP_SYNCNT, false),
            Ok(Opt::Int { default: 6, .. })
        ));
    }

    #[test]
    fn sets_are_checked_as_linux() {
        assert_eq!(Rule::Ttl.set(200), Ok(Set::Keep(200)));
        assert_eq!(Rule::Ttl.set(-1), Ok(Set::Default));
        assert_eq!(Rule::Ttl.set(0), Err(EINVAL));
        assert_eq!(Rule::Ttl.set(256), Err(EINVAL));
        assert_eq!(Rule::Hops.set(0), Ok(Set::Keep(0)));
        assert_eq!(Rule::Hops.set(-2), Err(EINVAL));
        assert_eq!(Rule::Flag.set(7), Ok(Set::Keep(1)));
        assert_eq!(int_value(IPPROTO_IP, &[5]), Ok(5));
        assert_eq!(int_value(IPPROTO_TCP, &[5]), Err(EINVAL));
        assert_eq!(int_value(IPPROTO_TCP, &[5, 1, 0, 0]), Ok(261));
        assert_eq!(ip_options(&[1, 1, 1]).unwrap(), [1, 1, 1, 0]);
        assert!(ip_options(&[]).unwrap().is_empty());
        assert_eq!(ip_options(&[1; 41]), Err(EINVAL));
    }

    #[test]
    fn a_short_buffer_gets_what_linux_copies() {
        assert_eq!(int_bytes(IPPROTO_IP, 1, 64), Ok(([64, 0, 0, 0], 1)));
        assert_eq!(int_bytes(IPPROTO_IP, 1, -1), Ok(([0xff; 4], 1)));
        assert_eq!(int_bytes(IPPROTO_IP, 0, 64).map(|r| r.1), Ok(0));
        assert_eq!(int_bytes(IPPROTO_TCP, 2, 0x0102), Ok(([2, 1, 0, 0], 2)));
        assert_eq!(int_bytes(IPPROTO_TCP, 64, 7), Ok(([7, 0, 0, 0], 4)));
        assert_eq!(int_bytes(IPPROTO_TCP, -1, 7), Err(EINVAL));
    }
}
