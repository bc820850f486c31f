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

#[derive(Debug, Default)]
struct Sock {
    v6: bool,
    /// IPV6_V6ONLY when it bound: its port apart from IPv4's.
    v6only: bool,
    /// UDP-Lite, not UDP.
    lite: bool,
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
    /// By protocol (UDP-Lite or not), port and side of the port (true:
    /// IPv6's, [`InetName::sides`]).
    ports: BTreeMap<(bool, u16, bool), usize>,
    next_port: u32,
}

/// UDPLITE_SEND_CSCOV and UDPLITE_RECV_CSCOV.
pub const UDPLITE_SEND_CSCOV: u64 = 10;
pub const UDPLITE_RECV_CSCOV: u64 = 11;

impl Datagrams {
    pub fn open(&mut self, id: usize, v6: bool, lite: bool) {
        self.socks.insert(
            id,
            Sock {
                v6,
                lite,
                ..Default::default()
            },
        );
    }

    pub fn close(&mut self, id: usize) {
        if let Some(s) = self.socks.remove(&id) {
            if let Some(n) = s.name {
                for &v6 in n.sides(s.v6only) {
                    if self.ports.get(&(s.lite, n.port, v6)) == Some(&id) {
                        self.ports.remove(&(s.lite, n.port, v6));
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

    pub fn is_lite(&self, id: usize) -> bool {
        self.socks.get(&id).is_some_and(|s| s.lite)
    }

    /// setsockopt of UDPLITE_SEND_CSCOV or UDPLITE_RECV_CSCOV: as Linux,
    /// 1 to 7 are 8 (the header is always covered), and past 65535 is
    /// 65535; a UDP socket has no such option (ENOPROTOOPT).
    pub fn set_coverage(&mut self, id: usize, which: u64, v: i32) -> Result<(), i64> {
        const ENOPROTOOPT: i64 = 92;
        let s = self
            .socks
            .get_mut(&id)
            .filter(|s| s.lite)
            .ok_or(ENOPROTOOPT)?;
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
        let s = self.socks.get(&id).filter(|s| s.lite).ok_or(ENOPROTOOPT)?;
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
        if self.socks.get(&id).ok_or(EINVAL)?.name.is_some() {
            return Err(EINVAL);
        }
        let lite = self.is_lite(id);
        let v6only = self.socks.get(&id).is_some_and(|s| s.v6only);
        let taken = |ports: &BTreeMap<_, _>, p: u16| {
            name.sides(v6only)
                .iter()
                .any(|&v6| ports.contains_key(&(lite, p, v6)))
        };
        let port = match name.port {
            0 => self.free_port(lite)?,
            p if taken(&self.ports, p) => return Err(EADDRINUSE),
            p => p,
        };
        for &v6 in name.sides(v6only) {
            self.ports.insert((lite, port, v6), id);
        }
        if let Some(s) = self.socks.get_mut(&id) {
            s.name = Some(InetName { port, ..name });
        }
        Ok(())
    }

    fn free_port(&mut self, lite: bool) -> Result<u16, i64> {
        let ports = &self.ports;
        crate::inet::free_port(&mut self.next_port, |p| {
            ports.contains_key(&(lite, p, false)) || ports.contains_key(&(lite, p, true))
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

    /// sendto (`to`) or send (the connected peer): Ok(true) if a socket
    /// took it (the kernel wakes its readers), Ok(false) if it was
    /// dropped. `hops` and `tclass`: the hop limit and traffic class its
    /// IP header carries.
    pub fn send_marked(
        &mut self,
        id: usize,
        to: Option<InetName>,
        data: &[u8],
        hops: u8,
        tclass: u8,
    ) -> Result<bool, i64> {
        // Linux's order: the size, the destination, a pending error, a
        // shut sending side.
        if data.len() > MAX_DATAGRAM {
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
        let from = self.autobind(id)?.local();
        let (lite, cscov) = self
            .socks
            .get(&id)
            .map_or((false, 0), |s| (s.lite, s.send_cscov));
        // A connected socket reads only its peer.
        let dest = self
            .ports
            .get(&(lite, to.port, to.reaches_v6()))
            .copied()
            .filter(|d| {
                self.socks
                    .get(d)
                    .is_some_and(|s| s.peer.is_none_or(|p| p.port == from.port))
            });
        let Some(d) = dest.and_then(|d| self.socks.get_mut(&d)) else {
            // No socket takes it: the loopback answers with ICMP port
            // unreachable, which Linux gives a sender connected to that
            // peer as ECONNREFUSED at its next call (a resolver with no
            // server learns it at once rather than after its timeout).
            if self.peer_of(id) == Some(to) {
                if let Some(s) = self.socks.get_mut(&id) {
                    s.error = Some(ECONNREFUSED);
                }
            }
            return Ok(false);
        };
        // A UDP-Lite receiver that set a coverage drops a partly covered
        // datagram that covers less (0: it wants all of each).
        let partial = cscov != 0 && (cscov as usize) < 8 + data.len();
        if lite && partial && d.recv_cscov.is_some_and(|r| r == 0 || cscov < r) {
            return Ok(false);
        }
        if d.bytes + data.len() > RCVBUF {
            return Ok(false);
        }
        d.bytes += data.len();
        let seen = from.seen_from(d.v6);
        let marks = Marks {
            hops,
            tclass,
            dest: to.local(),
        };
        d.queue.push_back((seen, data.to_vec(), marks));
        Ok(true)
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

    /// The socket of `lite`'s protocol a datagram sent to `to` reaches,
    /// if any (its readers to wake).
    pub fn at(&self, lite: bool, to: InetName) -> Option<usize> {
        self.ports.get(&(lite, to.port, to.reaches_v6())).copied()
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
        d.open(1, false, false);
        d.open(2, true, false);
        d.open(3, true, false);
        d.open(4, true, false);
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
        assert_eq!(d.at(false, lo(7000)), Some(1));
        assert_eq!(d.at(false, at(7000, Addr::Loopback6)), Some(4));
    }

    #[test]
    fn datagrams_arrive_whole_with_their_sender() {
        let mut d = Datagrams::default();
        d.open(1, false, false);
        d.open(2, false, false);
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
            d.open(id, false, false);
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
            d.open(id, false, false);
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
        assert_eq!(d.at(false, lo(5002)), None);
        d.open(4, true, false);
        d.bind(4, lo(5002)).unwrap();
    }

    #[test]
    fn udp_lite_has_its_own_ports_and_coverage() {
        let mut d = Datagrams::default();
        d.open(1, false, false);
        d.open(2, false, true);
        d.open(3, false, true);
        d.bind(1, lo(6000)).unwrap();
        d.bind(2, lo(6000)).unwrap();
        assert_eq!(d.at(true, lo(6000)), Some(2));
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
        d.open(1, false, false);
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
        d.open(1, false, false);
        d.bind(1, unbound(false)).unwrap();
        let port = d.name_of(1).unwrap().port;
        assert_eq!(d.send_marked(1, Some(lo(port)), b"x", 7, 0x10), Ok(true));
        let (_, data, marks) = d.receive_marked(1, true).unwrap();
        assert_eq!((data, marks.hops, marks.tclass), (b"x".to_vec(), 7, 0x10));
        assert_eq!(marks.dest, lo(port));
    }
}
