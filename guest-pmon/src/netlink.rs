//! NETLINK_ROUTE sockets, as far as programs use them to learn the
//! machine's network interfaces: dumps of links (RTM_GETLINK) and of
//! addresses (RTM_GETADDR), which glibc's getifaddrs and if_nameindex,
//! Go's net.Interfaces and libuv (Node's os.networkInterfaces) make, and of
//! routes (RTM_GETROUTE: `ip route`, programs looking for a gateway).
//!
//! Decided: the only network a process here has is the loopback
//! (`pmon::inet`), so the only interface is `lo` (index 1) with 127.0.0.1/8
//! and ::1/128; every other request is answered with EOPNOTSUPP in an
//! NLMSG_ERROR, as Linux answers a request it has no handler for, and
//! nothing is ever multicast to a socket.
//!
//! NETLINK_SOCK_DIAG sockets answer dumps of TCP and UDP sockets
//! (SOCK_DIAG_BY_FAMILY with `struct inet_diag_req_v2`), which `ss` asks
//! before it falls back to /proc/net (it printed "Cannot open netlink
//! socket" first): the processor's own sockets, as /proc/net lists them
//! (`pmon::procnet`). Other families (AF_UNIX's unix_diag) and single
//! lookups get EOPNOTSUPP, and `ss -x` reads /proc/net/unix.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::procnet::InetSock;

pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_GETROUTE: u16 = 26;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_MULTI: u16 = 2;
const NLM_F_ACK: u16 = 4;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_DUMP: u16 = 0x300;
const HEADER: usize = 16;
/// Message types below it are netlink's own (NOOP, ERROR, DONE, OVERRUN).
const NLMSG_MIN_TYPE: u16 = 0x10;
/// What a socket holds unread at most (Linux's default receive buffer).
const RCVBUF: usize = 212_992;

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const EOPNOTSUPP: i32 = 95;
const EINVAL: i32 = 22;
const ENODEV: i32 = 19;
const ENOENT: i32 = 2;

/// The loopback interface's index and name.
pub const LO_INDEX: u32 = 1;
pub const LO_NAME: &[u8] = b"lo";
/// IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_LOWER_UP.
pub const LO_FLAGS: u32 = 0x1 | 0x8 | 0x40 | 0x1_0000;
/// Its MTU and transmit queue length, Linux's for lo.
pub const LO_MTU: u32 = 65536;
pub const LO_TXQLEN: u32 = 1000;
const ARPHRD_LOOPBACK: u16 = 772;
const RT_SCOPE_HOST: u8 = 254;
const IFA_F_PERMANENT: u8 = 0x80;

/// The netlink protocols served: NETLINK_ROUTE and NETLINK_SOCK_DIAG.
pub const NETLINK_ROUTE: u8 = 0;
pub const NETLINK_SOCK_DIAG: u8 = 4;
/// SOCK_DIAG_BY_FAMILY: a sock_diag request and its answers.
pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

/// What a NETLINK_SOCK_DIAG request may list: the processor's TCP and
/// UDP sockets (empty for NETLINK_ROUTE).
#[derive(Clone, Copy, Debug, Default)]
pub struct Sockets<'a> {
    pub tcp: &'a [InetSock],
    pub udp: &'a [InetSock],
}

/// One socket: its port id and the datagrams waiting to be read.
#[derive(Clone, Debug, Default)]
pub struct Socket {
    pub port: u32,
    /// NETLINK_ROUTE or NETLINK_SOCK_DIAG.
    pub protocol: u8,
    /// Whether it has its port id yet (bind, or its first send): before,
    /// getsockname says 0, as Linux's.
    pub bound: bool,
    queue: VecDeque<Vec<u8>>,
    queued: usize,
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Appends a route attribute (`struct rtattr` and its data, padded).
fn attr(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    out.extend_from_slice(&((4 + data.len()) as u16).to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(data);
    out.resize(align4(out.len()), 0);
}

/// The data of the first route attribute of type `kind` among `attrs`.
fn find_attr(mut attrs: &[u8], kind: u16) -> Option<&[u8]> {
    while attrs.len() >= 4 {
        let len = u16::from_le_bytes([attrs[0], attrs[1]]) as usize;
        let ty = u16::from_le_bytes([attrs[2], attrs[3]]);
        if len < 4 || len > attrs.len() {
            return None;
        }
        if ty == kind {
            return Some(&attrs[4..len]);
        }
        attrs = &attrs[align4(len).min(attrs.len())..];
    }
    None
}

/// A message: its header for `seq` and `port`, then `body`.
fn message(kind: u16, flags: u16, seq: u32, port: u32, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(HEADER + body.len());
    m.extend_from_slice(&((HEADER + body.len()) as u32).to_le_bytes());
    m.extend_from_slice(&kind.to_le_bytes());
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&seq.to_le_bytes());
    m.extend_from_slice(&port.to_le_bytes());
    m.extend_from_slice(body);
    m
}

/// RTM_NEWLINK of `lo`.
fn lo_link() -> Vec<u8> {
    let mut b = Vec::new();
    // struct ifinfomsg: family, pad, type, index, flags, change.
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&ARPHRD_LOOPBACK.to_le_bytes());
    b.extend_from_slice(&(LO_INDEX as i32).to_le_bytes());
    b.extend_from_slice(&LO_FLAGS.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    attr(&mut b, 3, b"lo\0"); // IFLA_IFNAME
    attr(&mut b, 1, &[0; 6]); // IFLA_ADDRESS
    attr(&mut b, 2, &[0; 6]); // IFLA_BROADCAST
    attr(&mut b, 4, &LO_MTU.to_le_bytes()); // IFLA_MTU
    attr(&mut b, 13, &LO_TXQLEN.to_le_bytes()); // IFLA_TXQLEN
    attr(&mut b, 16, &[0]); // IFLA_OPERSTATE: unknown, as lo's
    b
}

/// RTM_NEWADDR of lo's address of family `family`.
fn lo_addr(family: u8) -> Vec<u8> {
    let mut b = Vec::new();
    let (prefix, addr): (u8, &[u8]) = if family == AF_INET {
        (8, &[127, 0, 0, 1])
    } else {
        (128, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    };
    // struct ifaddrmsg: family, prefix length, flags, scope, index.
    b.extend_from_slice(&[family, prefix, IFA_F_PERMANENT, RT_SCOPE_HOST]);
    b.extend_from_slice(&LO_INDEX.to_le_bytes());
    attr(&mut b, 1, addr); // IFA_ADDRESS
    if family == AF_INET {
        attr(&mut b, 2, addr); // IFA_LOCAL
        attr(&mut b, 3, b"lo\0"); // IFA_LABEL
    }
    attr(&mut b, 8, &(IFA_F_PERMANENT as u32).to_le_bytes()); // IFA_FLAGS
    b
}

/// RTM_NEWROUTE of each of lo's routes of family `family`, as Linux
/// keeps them for a network namespace whose only interface is lo: all in
/// the local table (127.0.0.0/8, 127.0.0.1 and the broadcast
/// 127.255.255.255; ::1), none in the main table, so `ip route` lists
/// nothing and there is no gateway.
fn lo_routes(family: u8) -> Vec<Vec<u8>> {
    const RT_TABLE_LOCAL: u8 = 255;
    const RTPROT_KERNEL: u8 = 2;
    const RT_SCOPE_LINK: u8 = 253;
    const RTN_LOCAL: u8 = 2;
    const RTN_BROADCAST: u8 = 3;
    // struct rtmsg: family, destination and source lengths, tos, table,
    // protocol, scope, type, flags.
    let head = |dst_len: u8, scope: u8, kind: u8| {
        let mut b = Vec::new();
        b.extend_from_slice(&[
            family,
            dst_len,
            0,
            0,
            RT_TABLE_LOCAL,
            RTPROT_KERNEL,
            scope,
            kind,
        ]);
        b.extend_from_slice(&0u32.to_le_bytes());
        attr(&mut b, 15, &(RT_TABLE_LOCAL as u32).to_le_bytes()); // RTA_TABLE
        b
    };
    if family == AF_INET {
        [
            ([127, 0, 0, 0], 8, RT_SCOPE_HOST, RTN_LOCAL),
            ([127, 0, 0, 1], 32, RT_SCOPE_HOST, RTN_LOCAL),
            ([127, 255, 255, 255], 32, RT_SCOPE_LINK, RTN_BROADCAST),
        ]
        .into_iter()
        .map(|(dst, len, scope, kind)| {
            let mut b = head(len, scope, kind);
            attr(&mut b, 1, &dst); // RTA_DST
            attr(&mut b, 7, &[127, 0, 0, 1]); // RTA_PREFSRC
            attr(&mut b, 4, &LO_INDEX.to_le_bytes()); // RTA_OIF
            b
        })
        .collect()
    } else {
        let mut b = head(128, 0, RTN_LOCAL);
        attr(&mut b, 1, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]); // RTA_DST
        attr(&mut b, 6, &0u32.to_le_bytes()); // RTA_PRIORITY
        attr(&mut b, 4, &LO_INDEX.to_le_bytes()); // RTA_OIF
        attr(&mut b, 12, &[0; 32]); // RTA_CACHEINFO
        attr(&mut b, 20, &[0]); // RTA_PREF: medium
        alloc::vec![b]
    }
}

/// `struct inet_diag_msg` of socket `s` of `family`: its state, ports
/// (big-endian) and addresses, queues, owner and inode; no timers.
fn diag_msg(s: &InetSock, family: u8) -> Vec<u8> {
    let mut b = Vec::with_capacity(72);
    b.extend_from_slice(&[family, s.state, 0, 0]);
    b.extend_from_slice(&s.local.port.to_be_bytes());
    b.extend_from_slice(&s.remote.map_or(0, |r| r.port).to_be_bytes());
    b.extend_from_slice(&crate::procnet::octets(s.local.addr));
    b.extend_from_slice(&s.remote.map_or([0; 16], |r| crate::procnet::octets(r.addr)));
    b.extend_from_slice(&0u32.to_le_bytes()); // interface
    b.extend_from_slice(&(s.inode as u32).to_le_bytes()); // cookie
    b.extend_from_slice(&((s.inode >> 32) as u32).to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes()); // expires
    b.extend_from_slice(&(s.rx_queue as u32).to_le_bytes());
    b.extend_from_slice(&(s.tx_queue as u32).to_le_bytes());
    b.extend_from_slice(&s.uid.to_le_bytes());
    b.extend_from_slice(&(s.inode as u32).to_le_bytes());
    b
}

impl Socket {
    pub fn new(port: u32) -> Socket {
        Socket {
            port,
            ..Default::default()
        }
    }

    /// A socket of `protocol` (NETLINK_ROUTE or NETLINK_SOCK_DIAG).
    pub fn of(port: u32, protocol: u8) -> Socket {
        Socket {
            port,
            protocol,
            ..Default::default()
        }
    }

    /// A datagram a program sent: each message in it is answered, in
    /// order, with datagrams queued to be read (a sock_diag dump from
    /// `socks`).
    pub fn request(&mut self, bytes: &[u8], socks: Sockets) {
        self.bound = true;
        let mut at = 0;
        while at + HEADER <= bytes.len() {
            let h = &bytes[at..];
            let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
            if len < HEADER || len > h.len() {
                // Linux drops a malformed message, and what follows it.
                break;
            }
            let kind = u16::from_le_bytes([h[4], h[5]]);
            let flags = u16::from_le_bytes([h[6], h[7]]);
            let seq = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
            let msg = &h[..len];
            at += align4(len);
            // A reader that never reads: past its receive buffer, answers
            // are dropped, as Linux drops them (ENOBUFS aside). Control
            // messages (NOOP, ERROR, DONE, OVERRUN) ask nothing.
            if self.queued > RCVBUF || kind < NLMSG_MIN_TYPE {
                continue;
            }
            if flags & NLM_F_REQUEST == 0 {
                if flags & NLM_F_ACK != 0 {
                    self.ack(msg, seq);
                }
                continue;
            }
            if self.protocol == NETLINK_SOCK_DIAG {
                self.answer_diag(msg, kind, flags, seq, socks);
            } else {
                self.answer(msg, kind, flags, seq);
            }
        }
    }

    fn push(&mut self, datagram: Vec<u8>) {
        self.queued += datagram.len();
        self.queue.push_back(datagram);
    }

    /// A NETLINK_ROUTE request.
    fn answer(&mut self, msg: &[u8], kind: u16, flags: u16, seq: u32) {
        // The family asked for (rtgenmsg's or ifaddrmsg's first byte); 0
        // or one without addresses (AF_PACKET, glibc's) means all.
        let family = msg.get(HEADER).copied().unwrap_or(0);
        let port = self.port;
        let multi = NLM_F_MULTI;
        match kind {
            // Dumps: no acknowledgement, NLMSG_DONE alone at the end.
            RTM_GETLINK | RTM_GETADDR | RTM_GETROUTE if flags & NLM_F_DUMP == NLM_F_DUMP => {
                let mut out = Vec::new();
                if kind == RTM_GETLINK {
                    out.extend(message(RTM_NEWLINK, multi, seq, port, &lo_link()));
                } else {
                    for f in [AF_INET, AF_INET6] {
                        if family != f && (family == AF_INET || family == AF_INET6) {
                            continue;
                        }
                        if kind == RTM_GETADDR {
                            out.extend(message(RTM_NEWADDR, multi, seq, port, &lo_addr(f)));
                        } else {
                            for r in lo_routes(f) {
                                out.extend(message(RTM_NEWROUTE, multi, seq, port, &r));
                            }
                        }
                    }
                }
                self.push(out);
                self.push(message(NLMSG_DONE, multi, seq, port, &0i32.to_le_bytes()));
            }
            // One link, by index or else by name (IFLA_IFNAME or
            // IFLA_ALT_IFNAME): lo, or ENODEV; neither is EINVAL.
            RTM_GETLINK => {
                let index = msg
                    .get(HEADER + 4..HEADER + 8)
                    .map_or(0, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                let attrs = msg.get(HEADER + 16..).unwrap_or(&[]);
                let name = find_attr(attrs, 3).or_else(|| find_attr(attrs, 53));
                let found = match (index, name) {
                    (i, _) if i > 0 => Ok(i == LO_INDEX as i32),
                    (_, Some(n)) => Ok(n.split(|&c| c == 0).next() == Some(LO_NAME)),
                    _ => Err(EINVAL),
                };
                match found {
                    Ok(true) => {
                        self.push(message(RTM_NEWLINK, 0, seq, port, &lo_link()));
                        if flags & NLM_F_ACK != 0 {
                            self.ack(msg, seq);
                        }
                    }
                    Ok(false) => self.error(msg, seq, ENODEV),
                    Err(e) => self.error(msg, seq, e),
                }
            }
            _ => self.error(msg, seq, EOPNOTSUPP),
        }
    }

    /// A NETLINK_SOCK_DIAG message: a dump of the TCP or UDP sockets of
    /// one family in the states asked for, one `struct inet_diag_msg`
    /// each, then NLMSG_DONE.
    fn answer_diag(&mut self, msg: &[u8], kind: u16, flags: u16, seq: u32, socks: Sockets) {
        // Every request starts with its family. Others than IPv4's and
        // IPv6's, and protocols without a handler here, are EOPNOTSUPP
        // and ENOENT, as Linux answers what it has no handler for (`ss`
        // then reads /proc/net, saying nothing).
        let family = msg.get(HEADER).copied().unwrap_or(0);
        if family != AF_INET && family != AF_INET6 {
            return self.error(msg, seq, EOPNOTSUPP);
        }
        // struct inet_diag_req_v2: family, protocol, extensions, pad,
        // states, then the socket id (asked for by single lookups only).
        let Some(req) = msg.get(HEADER..HEADER + 56) else {
            return self.error(msg, seq, EINVAL);
        };
        let (protocol, states) = (req[1], u32::from_le_bytes([req[4], req[5], req[6], req[7]]));
        let list = match protocol {
            IPPROTO_TCP => socks.tcp,
            IPPROTO_UDP => socks.udp,
            _ => return self.error(msg, seq, ENOENT),
        };
        if kind != SOCK_DIAG_BY_FAMILY || flags & NLM_F_DUMP != NLM_F_DUMP {
            return self.error(msg, seq, EOPNOTSUPP);
        }
        let port = self.port;
        let mut out = Vec::new();
        for s in list {
            if s.local.v6() != (family == AF_INET6) || states & (1 << s.state) == 0 {
                continue;
            }
            out.extend(message(
                SOCK_DIAG_BY_FAMILY,
                NLM_F_MULTI,
                seq,
                port,
                &diag_msg(s, family),
            ));
        }
        if !out.is_empty() {
            self.push(out);
        }
        self.push(message(
            NLMSG_DONE,
            NLM_F_MULTI,
            seq,
            port,
            &0i32.to_le_bytes(),
        ));
    }

    /// NLMSG_ERROR: the negative errno and the request it answers,
    /// whole, as Linux returns it with an error.
    fn error(&mut self, msg: &[u8], seq: u32, errno: i32) {
        let mut body = (-errno).to_le_bytes().to_vec();
        body.extend_from_slice(msg);
        body.resize(align4(body.len()), 0);
        self.push(message(NLMSG_ERROR, 0, seq, self.port, &body));
    }

    /// An acknowledgement (NLMSG_ERROR with 0): the request's header only
    /// (NLM_F_CAPPED).
    fn ack(&mut self, msg: &[u8], seq: u32) {
        let mut body = 0i32.to_le_bytes().to_vec();
        body.extend_from_slice(&msg[..HEADER]);
        self.push(message(NLMSG_ERROR, NLM_F_CAPPED, seq, self.port, &body));
    }

    /// The next datagram (taken unless `peek`).
    /// A datagram the kernel sends it on its own (a message queue's
    /// SIGEV_THREAD notification), queued like an answer.
    pub fn deliver(&mut self, datagram: Vec<u8>) {
        self.push(datagram);
    }

    pub fn receive(&mut self, peek: bool) -> Option<Vec<u8>> {
        if peek {
            return self.queue.front().cloned();
        }
        let d = self.queue.pop_front()?;
        self.queued -= d.len();
        Some(d)
    }

    pub fn readable(&self) -> bool {
        !self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inet::{Addr, InetName};

    impl Socket {
        fn request_route(&mut self, bytes: &[u8]) {
            self.request(bytes, Sockets::default());
        }
    }

    #[test]
    fn a_sock_diag_dump_lists_the_family_and_states_asked_for() {
        let name = |addr, port| InetName { addr, port };
        let sock = |local, remote, state| InetSock {
            local,
            remote,
            state,
            tx_queue: 0,
            rx_queue: 3,
            uid: 0,
            inode: 77,
        };
        let tcp = [
            sock(
                name(Addr::Loopback4, 8080),
                None,
                crate::procnet::TCP_LISTEN,
            ),
            sock(
                name(Addr::Loopback4, 8080),
                Some(name(Addr::Loopback4, 40000)),
                crate::procnet::TCP_ESTABLISHED,
            ),
            sock(name(Addr::Any6, 22), None, crate::procnet::TCP_LISTEN),
        ];
        let socks = Sockets {
            tcp: &tcp,
            udp: &[],
        };
        let req = |family: u8, protocol: u8, states: u32| {
            let mut body = alloc::vec![family, protocol, 0, 0];
            body.extend_from_slice(&states.to_le_bytes());
            body.extend_from_slice(&[0; 48]);
            message(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 3, 0, &body)
        };
        let mut s = Socket::of(5, NETLINK_SOCK_DIAG);
        // Listeners of IPv4 (state 10): one, its port big-endian.
        s.request(&req(AF_INET, IPPROTO_TCP, 1 << 10), socks);
        let got = messages(&s.receive(false).unwrap_or_default());
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].0, got[0].4[0], got[0].4[1]),
            (SOCK_DIAG_BY_FAMILY, AF_INET, 10)
        );
        assert_eq!(&got[0].4[4..6], &8080u16.to_be_bytes());
        assert_eq!(&got[0].4[8..12], &[127, 0, 0, 1]);
        assert_eq!(got[0].4.len(), 72);
        assert_eq!(
            messages(&s.receive(false).unwrap_or_default())[0].0,
            NLMSG_DONE
        );
        // Every state of IPv6: the one listener; of IPv4: both.
        s.request(&req(AF_INET6, IPPROTO_TCP, !0), socks);
        assert_eq!(messages(&s.receive(false).unwrap_or_default()).len(), 1);
        s.receive(false);
        s.request(&req(AF_INET, IPPROTO_TCP, !0), socks);
        assert_eq!(messages(&s.receive(false).unwrap_or_default()).len(), 2);
        s.receive(false);
        // UDP has none: DONE alone. AF_UNIX: EOPNOTSUPP.
        s.request(&req(AF_INET, IPPROTO_UDP, !0), socks);
        assert_eq!(
            messages(&s.receive(false).unwrap_or_default())[0].0,
            NLMSG_DONE
        );
        s.request(&req(1, 0, !0), socks);
        assert_eq!(
            messages(&s.receive(false).unwrap_or_default())[0].0,
            NLMSG_ERROR
        );
        // Short requests are EINVAL, never a panic; nor is an empty one.
        s.request(
            &message(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, 4, 0, &[2, 6]),
            socks,
        );
        assert_eq!(
            messages(&s.receive(false).unwrap_or_default())[0].0,
            NLMSG_ERROR
        );
        s.request(
            &message(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, 4, 0, &[]),
            socks,
        );
        assert_eq!(
            messages(&s.receive(false).unwrap_or_default())[0].0,
            NLMSG_ERROR
        );
    }

    fn request(kind: u16, flags: u16, seq: u32, family: u8) -> Vec<u8> {
        message(kind, flags, seq, 0, &[family, 0, 0, 0])
    }

    /// The messages of a datagram: (type, flags, seq, port, body).
    fn messages(d: &[u8]) -> Vec<(u16, u16, u32, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < d.len() {
            let len = u32::from_le_bytes(d[at..at + 4].try_into().unwrap()) as usize;
            let w16 = |o: usize| u16::from_le_bytes([d[at + o], d[at + o + 1]]);
            let w32 = |o: usize| u32::from_le_bytes(d[at + o..at + o + 4].try_into().unwrap());
            out.push((
                w16(4),
                w16(6),
                w32(8),
                w32(12),
                d[at + 16..at + len].to_vec(),
            ));
            at += align4(len);
        }
        out
    }

    #[test]
    fn a_link_dump_gives_lo_then_done() {
        let mut s = Socket::new(77);
        s.request_route(&request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 5, 17));
        let first = messages(&s.receive(false).unwrap());
        assert_eq!(first.len(), 1);
        let (kind, flags, seq, port, body) = &first[0];
        assert_eq!(
            (*kind, *flags, *seq, *port),
            (RTM_NEWLINK, NLM_F_MULTI, 5, 77)
        );
        assert_eq!(i32::from_le_bytes(body[4..8].try_into().unwrap()), 1);
        assert!(body.windows(3).any(|w| w == b"lo\0"));
        let done = messages(&s.receive(false).unwrap());
        assert_eq!(done[0].0, NLMSG_DONE);
        assert!(s.receive(false).is_none());
    }

    #[test]
    fn an_address_dump_gives_each_family_asked_for() {
        let mut s = Socket::new(1);
        s.request_route(&request(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 1, 0));
        let all = messages(&s.receive(false).unwrap());
        let families: Vec<u8> = all.iter().map(|m| m.4[0]).collect();
        assert_eq!(families, [AF_INET, AF_INET6]);
        assert_eq!(
            &all[0].4[..4],
            &[AF_INET, 8, IFA_F_PERMANENT, RT_SCOPE_HOST]
        );
        s.receive(false);
        s.request_route(&request(
            RTM_GETADDR,
            NLM_F_REQUEST | NLM_F_DUMP,
            2,
            AF_INET6,
        ));
        let v6 = messages(&s.receive(false).unwrap());
        assert_eq!(v6.len(), 1);
        assert_eq!(v6[0].4[1], 128);
    }

    #[test]
    fn a_route_dump_gives_lo_s_local_routes() {
        let mut s = Socket::new(9);
        s.request_route(&request(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, 4, 0));
        let routes = messages(&s.receive(false).unwrap_or_default());
        // Three of IPv4 (127.0.0.0/8, 127.0.0.1, 127.255.255.255), ::1.
        let shape: Vec<(u16, u8, u8, u8)> = routes
            .iter()
            .map(|m| (m.0, m.4[0], m.4[1], m.4[7]))
            .collect();
        assert_eq!(
            shape,
            [
                (RTM_NEWROUTE, AF_INET, 8, 2),
                (RTM_NEWROUTE, AF_INET, 32, 2),
                (RTM_NEWROUTE, AF_INET, 32, 3),
                (RTM_NEWROUTE, AF_INET6, 128, 2)
            ]
        );
        assert!(routes
            .iter()
            .all(|m| m.4[4] == 255 && m.1 == NLM_F_MULTI && m.2 == 4));
        assert_eq!(
            find_attr(&routes[2].4[12..], 1),
            Some(&[127, 255, 255, 255][..])
        );
        assert_eq!(
            messages(&s.receive(false).unwrap_or_default())[0].0,
            NLMSG_DONE
        );
        s.request_route(&request(
            RTM_GETROUTE,
            NLM_F_REQUEST | NLM_F_DUMP,
            5,
            AF_INET6,
        ));
        assert_eq!(messages(&s.receive(false).unwrap_or_default()).len(), 1);
    }

    #[test]
    fn one_link_by_index_or_name_and_acks() {
        let mut s = Socket::new(3);
        let mut by_name = message(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, 7, 0, &[0; 16]);
        attr(&mut by_name, 3, b"lo\0");
        let n = by_name.len() as u32;
        by_name[..4].copy_from_slice(&n.to_le_bytes());
        s.request_route(&by_name);
        let link = messages(&s.receive(false).unwrap());
        assert_eq!((link[0].0, link[0].1), (RTM_NEWLINK, 0));
        let ack = messages(&s.receive(false).unwrap());
        assert_eq!((ack[0].0, ack[0].1), (NLMSG_ERROR, NLM_F_CAPPED));
        assert_eq!(&ack[0].4[..4], &[0; 4]);
        let mut other = message(RTM_GETLINK, NLM_F_REQUEST, 8, 0, &[0; 16]);
        attr(&mut other, 3, b"eth0\0");
        let n = other.len() as u32;
        other[..4].copy_from_slice(&n.to_le_bytes());
        s.request_route(&other);
        let e = messages(&s.receive(false).unwrap());
        assert_eq!(i32::from_le_bytes(e[0].4[..4].try_into().unwrap()), -ENODEV);
        s.request_route(&message(RTM_GETLINK, NLM_F_REQUEST, 9, 0, &[0; 16]));
        let e = messages(&s.receive(false).unwrap());
        assert_eq!(i32::from_le_bytes(e[0].4[..4].try_into().unwrap()), -EINVAL);
        // A control message asks nothing.
        s.request_route(&message(1, NLM_F_REQUEST | NLM_F_ACK, 10, 0, &[]));
        assert!(!s.readable());
    }

    #[test]
    fn other_requests_and_garbage_get_errors_or_nothing() {
        let mut s = Socket::new(1);
        s.request_route(&request(99, NLM_F_REQUEST, 9, 0));
        let e = messages(&s.receive(false).unwrap());
        assert_eq!(e[0].0, NLMSG_ERROR);
        assert_eq!(
            i32::from_le_bytes(e[0].4[..4].try_into().unwrap()),
            -EOPNOTSUPP
        );
        // A header whose length runs past the datagram, and a short one.
        let mut bad = request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, 0);
        bad[0] = 200;
        s.request_route(&bad);
        s.request_route(&[1, 2, 3]);
        assert!(!s.readable());
        // A message whose padded length runs past the datagram's end.
        let mut odd = request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 2, 0);
        odd.truncate(17);
        odd[0] = 17;
        s.request_route(&odd);
        assert!(s.readable());
        // Requests nobody reads stop being answered.
        let mut t = Socket::new(1);
        for _ in 0..10_000 {
            t.request_route(&request(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 1, 0));
        }
        assert!(t.queued < 2 * RCVBUF);
        assert_eq!(t.queued, t.queue.iter().map(Vec::len).sum::<usize>());
    }
}
