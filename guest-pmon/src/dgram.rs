//! UDP on the loopback: AF_INET and AF_INET6 datagram sockets between the
//! processes of one processor. Each socket keeps the datagrams sent to its
//! port, each whole with its sender's address, as Linux's UDP does: a
//! datagram to a port no socket has is dropped (UDP promises nothing), so
//! is one that finds its receiver's buffer full, and a read takes one
//! datagram whatever its size (the rest of a long one is cut, MSG_TRUNC).
//! UDP ports are their own names, apart from TCP's. UDP-Lite (RFC 3828,
//! IPPROTO_UDPLITE) sockets are the same with ports of their own: on the
//! loopback no byte is damaged, so a datagram's checksum coverage changes
//! nothing but whether a receiver that asked for more coverage than its
//! sender gave takes it (Linux drops it).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use crate::icmp;
use crate::inet::{Addr, InetName};

/// What a socket may hold unread (Linux's default rmem).
pub const RCVBUF: usize = 212_992;
/// The largest UDP payload over IPv4.
pub const MAX_DATAGRAM: usize = 65_507;

const EINVAL: i64 = 22;
const EMSGSIZE: i64 = 90;
const EADDRINUSE: i64 = 98;
const EDESTADDRREQ: i64 = 89;
const EPIPE: i64 = 32;
const ENOTCONN: i64 = 107;
pub const ECONNREFUSED: i64 = 111;
const IPPROTO_ICMP: u16 = 1;
const IPPROTO_ICMPV6: u16 = 58;

/// What a datagram socket speaks; each has ports (or echo identifiers) of
/// its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    #[default]
    Udp,
    /// UDP-Lite (IPPROTO_UDPLITE).
    Lite,
    /// A ping socket (SOCK_DGRAM, IPPROTO_ICMP or IPPROTO_ICMPV6): its
    /// port is its echo identifier; it sends echo requests and reads the
    /// replies for its identifier ([`crate::icmp`]).
    Ping,
    /// A raw ICMP socket (SOCK_RAW, IPPROTO_ICMP or IPPROTO_ICMPV6): no
    /// port; it reads every ICMP message of its family its filter lets
    /// through, an IPv4 one with its IP header.
    Raw,
}

#[derive(Debug, Default)]
struct Sock {
    v6: bool,
    /// IPV6_V6ONLY when it bound: its port apart from IPv4's.
    v6only: bool,
    proto: Proto,
    /// A raw socket's ICMP_FILTER or ICMP6_FILTER: a set bit drops that
    /// type ([`crate::icmp::filtered`]).
    filter: [u32; 8],
    /// UDP-Lite's checksum coverage: what its datagrams carry
    /// (UDPLITE_SEND_CSCOV; 0: all) and, once set, the least it takes
    /// (UDPLITE_RECV_CSCOV; 0: all, so partly covered ones are dropped).
    send_cscov: u16,
    recv_cscov: Option<u16>,
    name: Option<InetName>,
    peer: Option<InetName>,
    queue: VecDeque<(InetName, Vec<u8>, Marks)>,
    bytes: usize,
    /// Linux's sk_shutdown: [`SHUT_READING`] and [`SHUT_SENDING`].
    shut: u8,
    /// Linux's sk_err: the error its next receive, send or SO_ERROR
    /// reports, and takes.
    error: Option<i64>,
}

impl Sock {
    /// Queues a datagram from `from` unless its buffer is full (dropped,
    /// as the loopback drops one): whether it took it.
    fn take(&mut self, from: InetName, data: Vec<u8>, marks: Marks) -> bool {
        if self.bytes + data.len() > RCVBUF {
            return false;
        }
        self.bytes += data.len();
        let seen = from.seen_from(self.v6);
        self.queue.push_back((seen, data, marks));
        true
    }
}

/// A socket's sides shut by shutdown(2).
const SHUT_READING: u8 = 1;
const SHUT_SENDING: u8 = 2;

/// What the IP header of a datagram carried that a receiver may ask for
/// (IP_PKTINFO, IP_RECVTTL, IP_RECVTOS and their IPv6 kin): the hop limit
/// (TTL), the traffic class (TOS) and the address it was sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marks {
    pub hops: u8,
    pub tclass: u8,
    pub dest: InetName,
}

/// Every datagram socket of the processor, by id.
#[derive(Debug, Default)]
pub struct Datagrams {
    socks: BTreeMap<usize, Sock>,
    /// By protocol, port and side of the port (true: IPv6's,
    /// [`InetName::sides`]). Raw sockets have none.
    ports: BTreeMap<(Proto, u16, bool), usize>,
    next_port: u32,
    /// The identification of the next IPv4 packet a raw socket reads.
    next_ip_id: u16,
}

/// UDPLITE_SEND_CSCOV and UDPLITE_RECV_CSCOV.
pub const UDPLITE_SEND_CSCOV: u64 = 10;
pub const UDPLITE_RECV_CSCOV: u64 = 11;

impl Datagrams {
    pub fn open(&mut self, id: usize, v6: bool, proto: Proto) {
        let name = match proto {
            // A raw socket's port is its protocol, as Linux names it.
            Proto::Raw => Some(InetName {
                port: if v6 { IPPROTO_ICMPV6 } else { IPPROTO_ICMP },
                ..unbound(v6)
            }),
            _ => None,
        };
        self.socks.insert(
            id,
            Sock {
                v6,
                proto,
                name,
                ..Default::default()
            },
        );
    }

    pub fn close(&mut self, id: usize) {
        if let Some(s) = self.socks.remove(&id) {
            if let Some(n) = s.name {
                for &v6 in n.sides(s.v6only) {
                    if self.ports.get(&(s.proto, n.port, v6)) == Some(&id) {
                        self.ports.remove(&(s.proto, n.port, v6));
                    }
                }
            }
        }
    }

    /// IPV6_V6ONLY of IPv6 socket `id`, as it binds.
    pub fn set_v6only(&mut self, id: usize, on: bool) {
        if let Some(s) = self.socks.get_mut(&id).filter(|s| s.v6) {
            s.v6only = on;
        }
    }

    pub fn proto_of(&self, id: usize) -> Proto {
        self.socks.get(&id).map_or(Proto::Udp, |s| s.proto)
    }

    /// Socket `id` if it speaks `proto`: its options are that protocol's,
    /// which another has not (ENOPROTOOPT).
    fn speaking_mut(&mut self, id: usize, proto: Proto) -> Result<&mut Sock, i64> {
        const ENOPROTOOPT: i64 = 92;
        self.socks
            .get_mut(&id)
            .filter(|s| s.proto == proto)
            .ok_or(ENOPROTOOPT)
    }

    fn speaking(&self, id: usize, proto: Proto) -> Result<&Sock, i64> {
        const ENOPROTOOPT: i64 = 92;
        self.socks
            .get(&id)
            .filter(|s| s.proto == proto)
            .ok_or(ENOPROTOOPT)
    }

    /// setsockopt of ICMP_FILTER or ICMP6_FILTER on a raw socket (`words`
    /// of the filter given; the rest pass); ENOPROTOOPT on another.
    pub fn set_filter(&mut self, id: usize, words: &[u32]) -> Result<(), i64> {
        let s = self.speaking_mut(id, Proto::Raw)?;
        s.filter = [0; 8];
        for (w, v) in s.filter.iter_mut().zip(words) {
            *w = *v;
        }
        Ok(())
    }

    /// A raw socket's filter.
    pub fn filter(&self, id: usize) -> Result<[u32; 8], i64> {
        self.speaking(id, Proto::Raw).map(|s| s.filter)
    }

    /// setsockopt of UDPLITE_SEND_CSCOV or UDPLITE_RECV_CSCOV: as Linux,
    /// 1 to 7 are 8 (the header is always covered), and past 65535 is
    /// 65535; a UDP socket has no such option (ENOPROTOOPT).
    pub fn set_coverage(&mut self, id: usize, which: u64, v: i32) -> Result<(), i64> {
        const ENOPROTOOPT: i64 = 92;
        let s = self.speaking_mut(id, Proto::Lite)?;
        // As Linux: anything below 8 but 0 (negative too) is 8.
        let v = match v {
            v if v != 0 && v < 8 => 8,
            v if v > 0xffff => 0xffff,
            v => v as u16,
        };
        match which {
            UDPLITE_SEND_CSCOV => s.send_cscov = v,
            UDPLITE_RECV_CSCOV => s.recv_cscov = Some(v),
            _ => return Err(ENOPROTOOPT),
        }
        Ok(())
    }

    /// getsockopt of a coverage option.
    pub fn coverage(&self, id: usize, which: u64) -> Result<u16, i64> {
        const ENOPROTOOPT: i64 = 92;
        let s = self.speaking(id, Proto::Lite)?;
        match which {
            UDPLITE_SEND_CSCOV => Ok(s.send_cscov),
            UDPLITE_RECV_CSCOV => Ok(s.recv_cscov.unwrap_or(0)),
            _ => Err(ENOPROTOOPT),
        }
    }

    pub fn is_v6(&self, id: usize) -> bool {
        self.socks.get(&id).is_some_and(|s| s.v6)
    }

    pub fn name_of(&self, id: usize) -> Option<InetName> {
        self.socks.get(&id).and_then(|s| s.name)
    }

    pub fn peer_of(&self, id: usize) -> Option<InetName> {
        self.socks.get(&id).and_then(|s| s.peer)
    }

    /// bind: port 0 takes a free one of the ephemeral range.
    pub fn bind(&mut self, id: usize, name: InetName) -> Result<(), i64> {
        let s = self.socks.get_mut(&id).ok_or(EINVAL)?;
        if s.proto == Proto::Raw {
            // An address only (each is this processor's): the port stays
            // the protocol, and binding again is allowed, as Linux's.
            let port = s.name.map_or(0, |n| n.port);
            s.name = Some(InetName { port, ..name });
            return Ok(());
        }
        if s.name.is_some() {
            return Err(EINVAL);
        }
        let (proto, v6only) = (s.proto, s.v6only);
        let taken = |ports: &BTreeMap<_, _>, p: u16| {
            name.sides(v6only)
                .iter()
                .any(|&v6| ports.contains_key(&(proto, p, v6)))
        };
        let port = match name.port {
            0 => self.free_port(proto)?,
            p if taken(&self.ports, p) => return Err(EADDRINUSE),
            p => p,
        };
        for &v6 in name.sides(v6only) {
            self.ports.insert((proto, port, v6), id);
        }
        if let Some(s) = self.socks.get_mut(&id) {
            s.name = Some(InetName { port, ..name });
        }
        Ok(())
    }

    fn free_port(&mut self, proto: Proto) -> Result<u16, i64> {
        let ports = &self.ports;
        crate::inet::free_port(&mut self.next_port, |p| {
            ports.contains_key(&(proto, p, false)) || ports.contains_key(&(proto, p, true))
        })
        .ok_or(EADDRINUSE)
    }

    /// A socket about to send or connect gets a name if it has none.
    fn autobind(&mut self, id: usize) -> Result<InetName, i64> {
        if let Some(n) = self.name_of(id) {
            return Ok(n);
        }
        let any = InetName::unbound(self.is_v6(id));
        self.bind(id, any)?;
        self.name_of(id).ok_or(EINVAL)
    }

    /// connect: where send goes and the only sender read from (None:
    /// AF_UNSPEC, dissolve it).
    pub fn connect(&mut self, id: usize, peer: Option<InetName>) -> Result<(), i64> {
        if peer.is_some() {
            self.autobind(id)?;
        }
        let s = self.socks.get_mut(&id).ok_or(EINVAL)?;
        s.peer = peer.map(|p| p.local());
        Ok(())
    }

    /// sendto (`to`) or send (the connected peer): the sockets that took
    /// it (the kernel wakes their readers; none if it was dropped).
    /// `hops` and `tclass`: the hop limit and traffic class its IP header
    /// carries.
    pub fn send_marked(
        &mut self,
        id: usize,
        to: Option<InetName>,
        data: &[u8],
        hops: u8,
        tclass: u8,
    ) -> Result<Vec<usize>, i64> {
        let (proto, v6) = (self.proto_of(id), self.is_v6(id));
        let icmp = matches!(proto, Proto::Ping | Proto::Raw);
        // Linux's order: the size, the destination, a pending error, a
        // shut sending side.
        if data.len()
            > if icmp {
                icmp::MAX_MESSAGE
            } else {
                MAX_DATAGRAM
            }
        {
            return Err(EMSGSIZE);
        }
        let to = match to.or_else(|| self.peer_of(id)) {
            Some(t) => t,
            None => return Err(EDESTADDRREQ),
        };
        if let Some(e) = self.take_error(id) {
            return Err(e);
        }
        if self
            .socks
            .get(&id)
            .is_some_and(|s| s.shut & SHUT_SENDING != 0)
        {
            return Err(EPIPE);
        }
        let marks = Marks {
            hops,
            tclass,
            dest: to.local(),
        };
        if icmp {
            // ICMPv6 does not reach IPv4 through a mapped address.
            if v6 && to.addr == Addr::Mapped4 {
                return Err(EINVAL);
            }
            if proto == Proto::Ping {
                icmp::check_ping(data, v6)?;
            }
            return self.send_icmp(id, to, data, marks);
        }
        let from = self.autobind(id)?.local();
        let (lite, cscov) = self
            .socks
            .get(&id)
            .map_or((false, 0), |s| (s.proto == Proto::Lite, s.send_cscov));
        // A connected socket reads only its peer.
        let dest = self
            .ports
            .get(&(proto, to.port, to.reaches_v6()))
            .copied()
            .filter(|d| {
                self.socks
                    .get(d)
                    .is_some_and(|s| s.peer.is_none_or(|p| p.port == from.port))
            });
        let Some((d_id, d)) = dest.and_then(|d| Some((d, self.socks.get_mut(&d)?))) else {
            // No socket takes it: the loopback answers with ICMP port
            // unreachable, which Linux gives a sender connected to that
            // peer as ECONNREFUSED at its next call (a resolver with no
            // server learns it at once rather than after its timeout).
            if self.peer_of(id) == Some(to) {
                if let Some(s) = self.socks.get_mut(&id) {
                    s.error = Some(ECONNREFUSED);
                }
            }
            return Ok(Vec::new());
        };
        // A UDP-Lite receiver that set a coverage drops a partly covered
        // datagram that covers less (0: it wants all of each).
        let partial = cscov != 0 && (cscov as usize) < 8 + data.len();
        if lite && partial && d.recv_cscov.is_some_and(|r| r == 0 || cscov < r) {
            return Ok(Vec::new());
        }
        Ok(match d.take(from, data.to_vec(), marks) {
            true => alloc::vec![d_id],
            false => Vec::new(),
        })
    }

    /// An ICMP message from ping or raw socket `id` to `to` on the
    /// loopback: every raw socket of its family reads it, and the
    /// loopback's kernel answers an echo request with an echo reply, which
    /// the raw sockets read too and, for a ping socket's request, the
    /// ping socket whose identifier it carries.
    fn send_icmp(
        &mut self,
        id: usize,
        to: InetName,
        data: &[u8],
        marks: Marks,
    ) -> Result<Vec<usize>, i64> {
        let v6 = self.is_v6(id);
        let msg = match self.proto_of(id) {
            // The kernel writes a ping socket's identifier, and sums every
            // ICMPv6 message.
            Proto::Ping => icmp::with_ident(data, self.autobind(id)?.port, v6),
            _ if v6 => {
                let mut m = data.to_vec();
                icmp::seal(&mut m, true);
                m
            }
            _ => data.to_vec(),
        };
        let from = self.name_of(id).unwrap_or(unbound(v6)).local();
        let mut took = self.deliver_raw(v6, &msg, from, marks);
        if let Some(reply) = icmp::reply(&msg, v6) {
            let back = Marks {
                hops: 64,
                tclass: marks.tclass,
                dest: from,
            };
            took.extend(self.deliver_raw(v6, &reply, to.local(), back));
            let pinger = InetName {
                port: icmp::ident(&reply),
                addr: from.addr,
            };
            let seen = InetName {
                port: 0,
                ..to.local()
            };
            if let Some(p) = self.at(Proto::Ping, pinger) {
                if self
                    .socks
                    .get_mut(&p)
                    .is_some_and(|s| s.take(seen, reply, back))
                {
                    took.push(p);
                }
            }
        }
        took.sort_unstable();
        took.dedup();
        Ok(took)
    }

    /// Every raw socket of the family (`v6`) whose filter lets `msg`
    /// through reads it, from `from`; those that took it.
    fn deliver_raw(&mut self, v6: bool, msg: &[u8], from: InetName, marks: Marks) -> Vec<usize> {
        let ty = msg.first().copied().unwrap_or(0);
        // An IPv4 raw socket reads the IP header too, one packet's for all.
        let packet = match v6 {
            true => msg.to_vec(),
            false => {
                self.next_ip_id = self.next_ip_id.wrapping_add(1);
                let h = icmp::ipv4_header(msg, marks.hops, marks.tclass, self.next_ip_id);
                [&h[..], msg].concat()
            }
        };
        let seen = InetName { port: 0, ..from };
        let mut took = Vec::new();
        for (&r, s) in self.socks.iter_mut() {
            let reads = s.proto == Proto::Raw && s.v6 == v6 && !icmp::filtered(&s.filter, ty, v6);
            if reads && s.take(seen, packet.clone(), marks) {
                took.push(r);
            }
        }
        took
    }

    /// The next datagram for `id` (taken unless `peek`): its sender and
    /// its bytes, whole.
    pub fn receive(&mut self, id: usize, peek: bool) -> Option<(InetName, Vec<u8>)> {
        self.receive_marked(id, peek)
            .map(|(from, data, _)| (from, data))
    }

    /// [`Self::receive`] with what the datagram's IP header carried.
    pub fn receive_marked(&mut self, id: usize, peek: bool) -> Option<(InetName, Vec<u8>, Marks)> {
        let s = self.socks.get_mut(&id)?;
        if peek {
            return s.queue.front().cloned();
        }
        let (from, data, marks) = s.queue.pop_front()?;
        s.bytes -= data.len();
        Some((from, data, marks))
    }

    /// shutdown(2) with `how` (0: reading, 1: sending, 2: both; EINVAL
    /// past that). As Linux's, the sides are shut even when the socket
    /// has no peer, which is then ENOTCONN.
    pub fn shutdown(&mut self, id: usize, how: u64) -> Result<(), i64> {
        if how > 2 {
            return Err(EINVAL);
        }
        let s = self.socks.get_mut(&id).ok_or(EINVAL)?;
        s.shut |= how as u8 + 1;
        if s.peer.is_none() {
            return Err(ENOTCONN);
        }
        Ok(())
    }

    /// The error `id` holds for its next call, taken (its receive, send
    /// and SO_ERROR report it first).
    pub fn take_error(&mut self, id: usize) -> Option<i64> {
        self.socks.get_mut(&id).and_then(|s| s.error.take())
    }

    /// Whether `id` holds an error (poll's POLLERR).
    pub fn has_error(&self, id: usize) -> bool {
        self.socks.get(&id).is_some_and(|s| s.error.is_some())
    }

    /// Whether `id` was shut for reading: a receive that finds no
    /// datagram returns 0 rather than wait.
    pub fn read_shut(&self, id: usize) -> bool {
        self.socks
            .get(&id)
            .is_some_and(|s| s.shut & SHUT_READING != 0)
    }

    /// Whether both sides of `id` are shut (poll's POLLHUP).
    pub fn shut_both(&self, id: usize) -> bool {
        self.socks
            .get(&id)
            .is_some_and(|s| s.shut == SHUT_READING | SHUT_SENDING)
    }

    pub fn readable(&self, id: usize) -> bool {
        self.socks.get(&id).is_some_and(|s| !s.queue.is_empty())
    }

    /// The socket of `proto` a datagram sent to `to` reaches, if any.
    pub fn at(&self, proto: Proto, to: InetName) -> Option<usize> {
        self.ports.get(&(proto, to.port, to.reaches_v6())).copied()
    }
}

/// The wildcard of a family, as a datagram socket's unbound name.
pub fn unbound(v6: bool) -> InetName {
    InetName {
        port: 0,
        addr: if v6 { Addr::Any6 } else { Addr::Any4 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A send with Linux's default marks.
    fn send(d: &mut Datagrams, id: usize, to: Option<InetName>, data: &[u8]) -> Result<bool, i64> {
        d.send_marked(id, to, data, 64, 0)
            .map(|took| !took.is_empty())
    }

    fn lo(port: u16) -> InetName {
        InetName {
            port,
            addr: Addr::Loopback4,
        }
    }

    #[test]
    fn ports_of_the_two_families_are_apart() {
        let at = |port, addr| InetName { port, addr };
        let mut d = Datagrams::default();
        d.open(1, false, Proto::Udp);
        d.open(2, true, Proto::Udp);
        d.open(3, true, Proto::Udp);
        d.open(4, true, Proto::Udp);
        d.bind(1, lo(7000)).unwrap();
        d.bind(2, at(7000, Addr::Loopback6)).unwrap();
        assert_eq!(send(&mut d, 3, Some(lo(7000)), b"four"), Ok(true));
        assert_eq!(
            send(&mut d, 3, Some(at(7000, Addr::Loopback6)), b"six"),
            Ok(true)
        );
        assert_eq!(d.receive(1, false).map(|r| r.1), Some(b"four".to_vec()));
        assert_eq!(d.receive(2, false).map(|r| r.1), Some(b"six".to_vec()));
        assert_eq!(d.bind(4, at(7000, Addr::Any6)), Err(EADDRINUSE));
        d.close(2);
        assert_eq!(
            d.bind(4, at(7000, Addr::Any6)),
            Err(EADDRINUSE),
            "IPv4's is 1's"
        );
        d.set_v6only(4, true);
        d.bind(4, at(7000, Addr::Any6)).unwrap();
        assert_eq!(d.at(Proto::Udp, lo(7000)), Some(1));
        assert_eq!(d.at(Proto::Udp, at(7000, Addr::Loopback6)), Some(4));
    }

    #[test]
    fn datagrams_arrive_whole_with_their_sender() {
        let mut d = Datagrams::default();
        d.open(1, false, Proto::Udp);
        d.open(2, false, Proto::Udp);
        d.bind(1, unbound(false)).unwrap();
        let port = d.name_of(1).unwrap().port;
        assert!(crate::inet::EPHEMERAL.contains(&port));
        assert_eq!(send(&mut d, 2, Some(lo(port)), b"one"), Ok(true));
        assert_eq!(send(&mut d, 2, Some(lo(port)), b"two!"), Ok(true));
        let sender = d.name_of(2).unwrap().port;
        assert_eq!(d.receive(1, true).map(|r| r.1), Some(b"one".to_vec()));
        assert_eq!(d.receive(1, false), Some((lo(sender), b"one".to_vec())));
        assert_eq!(d.receive(1, false).map(|r| r.1), Some(b"two!".to_vec()));
        assert_eq!(d.receive(1, false), None);
        // No socket at the port: dropped, not an error.
        assert_eq!(send(&mut d, 2, Some(lo(9)), b"x"), Ok(false));
        assert_eq!(send(&mut d, 2, None, b"x"), Err(EDESTADDRREQ));
        assert_eq!(
            send(&mut d, 2, Some(lo(port)), &[0; MAX_DATAGRAM + 1]),
            Err(EMSGSIZE)
        );
    }

    #[test]
    fn a_connected_sender_learns_that_no_socket_took_its_datagram() {
        let mut d = Datagrams::default();
        for id in 1..=4 {
            d.open(id, false, Proto::Udp);
        }
        // Unconnected: dropped, nothing reported.
        assert_eq!(send(&mut d, 1, Some(lo(53)), b"q"), Ok(false));
        assert!(!d.has_error(1));
        // Connected to a port nobody has: the send passes, the next call
        // reports it once.
        d.connect(2, Some(lo(53))).unwrap();
        assert_eq!(send(&mut d, 2, None, b"q"), Ok(false));
        assert!(d.has_error(2));
        assert_eq!(send(&mut d, 2, None, b"q"), Err(ECONNREFUSED));
        assert!(!d.has_error(2));
        assert_eq!(send(&mut d, 2, None, b"q"), Ok(false));
        assert_eq!(d.take_error(2), Some(ECONNREFUSED));
        assert_eq!(d.take_error(2), None);
        // To another address than its peer: no report.
        assert_eq!(send(&mut d, 2, Some(lo(54)), b"q"), Ok(false));
        assert!(!d.has_error(2));
        // A socket at the port connected to someone else does not take it.
        d.bind(3, lo(6000)).unwrap();
        d.bind(4, lo(6001)).unwrap();
        d.connect(3, Some(lo(6001))).unwrap();
        d.connect(2, Some(lo(6000))).unwrap();
        assert_eq!(send(&mut d, 2, None, b"q"), Ok(false));
        assert_eq!(d.take_error(2), Some(ECONNREFUSED));
        // Its peer's datagrams reach it, and nothing is reported.
        assert_eq!(send(&mut d, 4, Some(lo(6000)), b"a"), Ok(true));
        assert!(!d.has_error(4));
        assert_eq!(d.receive(3, false).map(|r| r.1), Some(b"a".to_vec()));
    }

    #[test]
    fn ports_buffers_and_connected_sockets() {
        let mut d = Datagrams::default();
        for id in 1..=3 {
            d.open(id, false, Proto::Udp);
        }
        d.bind(1, lo(5000)).unwrap();
        assert_eq!(d.bind(2, lo(5000)), Err(EADDRINUSE));
        assert_eq!(d.bind(1, lo(5001)), Err(EINVAL), "bound already");
        // Connected to 2's port, 1 drops what 3 sends.
        d.bind(2, lo(5002)).unwrap();
        d.connect(1, Some(lo(5002))).unwrap();
        assert_eq!(send(&mut d, 3, Some(lo(5000)), b"x"), Ok(false));
        assert_eq!(send(&mut d, 2, Some(lo(5000)), b"y"), Ok(true));
        assert_eq!(send(&mut d, 1, None, b"to 2"), Ok(true));
        assert_eq!(d.receive(2, false).map(|r| r.0.port), Some(5000));
        // A full buffer drops.
        let big = alloc::vec![0u8; MAX_DATAGRAM];
        let mut taken = 0;
        while send(&mut d, 1, None, &big) == Ok(true) {
            taken += 1;
        }
        assert_eq!(taken, RCVBUF / MAX_DATAGRAM);
        d.close(2);
        assert_eq!(d.at(Proto::Udp, lo(5002)), None);
        d.open(4, true, Proto::Udp);
        d.bind(4, lo(5002)).unwrap();
    }

    #[test]
    fn udp_lite_has_its_own_ports_and_coverage() {
        let mut d = Datagrams::default();
        d.open(1, false, Proto::Udp);
        d.open(2, false, Proto::Lite);
        d.open(3, false, Proto::Lite);
        d.bind(1, lo(6000)).unwrap();
        d.bind(2, lo(6000)).unwrap();
        assert_eq!(d.at(Proto::Lite, lo(6000)), Some(2));
        // From UDP-Lite to the port: the UDP-Lite socket takes it.
        assert_eq!(send(&mut d, 3, Some(lo(6000)), b"lite"), Ok(true));
        assert_eq!(d.receive(2, false).map(|r| r.1), Some(b"lite".to_vec()));
        assert!(d.receive(1, false).is_none());
        assert_eq!(
            d.set_coverage(1, UDPLITE_SEND_CSCOV, 20),
            Err(92),
            "UDP has none"
        );
        d.set_coverage(3, UDPLITE_SEND_CSCOV, 3).unwrap();
        assert_eq!(d.coverage(3, UDPLITE_SEND_CSCOV), Ok(8));
        d.set_coverage(2, UDPLITE_RECV_CSCOV, 20).unwrap();
        // 8 bytes covered, 20 asked for: dropped; a short datagram is
        // covered whole.
        assert_eq!(send(&mut d, 3, Some(lo(6000)), &[0; 30]), Ok(false));
        assert_eq!(send(&mut d, 3, Some(lo(6000)), b"ab"), Ok(false));
        d.set_coverage(3, UDPLITE_SEND_CSCOV, 0).unwrap();
        assert_eq!(send(&mut d, 3, Some(lo(6000)), &[0; 30]), Ok(true));
    }

    #[test]
    fn shutdown_shuts_sides_even_without_a_peer() {
        let mut d = Datagrams::default();
        d.open(1, false, Proto::Udp);
        d.bind(1, unbound(false)).unwrap();
        let port = d.name_of(1).unwrap().port;
        assert_eq!(d.shutdown(1, 3), Err(EINVAL));
        assert_eq!(d.shutdown(1, 0), Err(ENOTCONN));
        assert!(d.read_shut(1) && !d.shut_both(1));
        d.connect(1, Some(lo(port))).unwrap();
        // A datagram already sent is still read; the side is shut after.
        assert_eq!(send(&mut d, 1, None, b"kept"), Ok(true));
        assert_eq!(d.shutdown(1, 1), Ok(()));
        assert!(d.shut_both(1));
        assert_eq!(send(&mut d, 1, None, b"late"), Err(EPIPE));
        assert_eq!(d.receive(1, false).map(|r| r.1), Some(b"kept".to_vec()));
    }

    #[test]
    fn a_datagram_keeps_the_marks_it_was_sent_with() {
        let mut d = Datagrams::default();
        d.open(1, false, Proto::Udp);
        d.bind(1, unbound(false)).unwrap();
        let port = d.name_of(1).unwrap().port;
        assert_eq!(
            d.send_marked(1, Some(lo(port)), b"x", 7, 0x10),
            Ok(alloc::vec![1])
        );
        let (_, data, marks) = d.receive_marked(1, true).unwrap();
        assert_eq!((data, marks.hops, marks.tclass), (b"x".to_vec(), 7, 0x10));
        assert_eq!(marks.dest, lo(port));
    }

    fn echo(ty: u8) -> Vec<u8> {
        let mut m = alloc::vec![ty, 0, 0, 0, 0, 0, 0, 9, b'p', b'i', b'n', b'g'];
        icmp::seal(&mut m, false);
        m
    }

    #[test]
    fn a_ping_socket_reads_the_reply_to_its_echo_request() {
        let mut d = Datagrams::default();
        d.open(1, false, Proto::Ping);
        d.open(2, false, Proto::Ping);
        d.open(3, false, Proto::Raw);
        // Anything but an echo request is refused.
        assert_eq!(
            d.send_marked(1, Some(lo(0)), &echo(icmp::ECHO_REPLY), 64, 0),
            Err(EINVAL)
        );
        assert_eq!(d.send_marked(1, Some(lo(0)), b"\x08\0", 64, 0), Err(EINVAL));
        assert_eq!(d.name_of(1), None, "not bound by a refused send");
        let took = d
            .send_marked(1, Some(lo(0)), &echo(icmp::ECHO_REQUEST), 64, 0)
            .unwrap();
        assert_eq!(took, alloc::vec![1, 3], "the pinger and the raw socket");
        let ident = d.name_of(1).expect("bound by its send").port;
        let (from, reply) = d.receive(1, false).expect("the reply");
        assert_eq!((from.port, from.addr), (0, Addr::Loopback4));
        assert_eq!(reply[0], icmp::ECHO_REPLY);
        assert_eq!(icmp::ident(&reply), ident, "the kernel's identifier");
        assert_eq!(&reply[6..], &echo(0)[6..], "sequence and data");
        assert!(icmp::intact(&reply));
        assert!(!d.readable(2), "another identifier");
        // The raw socket read the request and the reply, IP headers first.
        let (_, request) = d.receive(3, false).expect("the request");
        assert_eq!((request.len(), request[20]), (20 + 12, icmp::ECHO_REQUEST));
        let (_, answer) = d.receive(3, false).expect("the reply");
        assert_eq!(&answer[20..], &reply[..]);
        // A ping socket's identifier is its port: taken ones are refused.
        assert_eq!(d.bind(2, lo(ident)), Err(EADDRINUSE));
    }

    #[test]
    fn raw_sockets_read_what_their_filter_lets_through() {
        let mut d = Datagrams::default();
        d.open(1, false, Proto::Raw);
        d.open(2, false, Proto::Raw);
        d.open(3, true, Proto::Raw);
        assert_eq!(d.name_of(1).map(|n| n.port), Some(1), "the protocol");
        d.set_filter(2, &[!(1u32 << icmp::ECHO_REPLY)]).unwrap();
        assert_eq!(d.filter(2).map(|f| f[0]), Ok(!1));
        let took = d
            .send_marked(1, Some(lo(0)), &echo(icmp::ECHO_REQUEST), 64, 0)
            .unwrap();
        assert_eq!(took, alloc::vec![1, 2], "not the IPv6 one");
        assert_eq!(
            d.receive(2, false).map(|(_, m)| m[20]),
            Some(icmp::ECHO_REPLY)
        );
        assert!(!d.readable(2), "the request was filtered out");
        // A wrong checksum reaches the raw sockets and gets no reply.
        let mut bad = echo(icmp::ECHO_REQUEST);
        bad[11] ^= 1;
        d.receive(1, false);
        d.receive(1, false);
        assert_eq!(
            d.send_marked(1, Some(lo(0)), &bad, 64, 0),
            Ok(alloc::vec![1])
        );
        assert_eq!(d.set_filter(4, &[0]), Err(92), "no such raw socket");
    }
}
