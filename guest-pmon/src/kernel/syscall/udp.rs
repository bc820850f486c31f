//! UDP sockets on the loopback (`socket(AF_INET or AF_INET6, SOCK_DGRAM)`,
//! [`pmon::dgram`]): bind, connect, sendto, recvfrom, sendmsg, recvmsg,
//! read, write, the names, SO_RCVTIMEO, poll and epoll. A receive with
//! nothing queued waits for a datagram (or SO_RCVTIMEO, then EAGAIN); a
//! send never waits (a datagram that finds no room is dropped, as UDP may
//! drop it). A connected socket whose datagram no socket took gets
//! ECONNREFUSED at its next call, as Linux reports the loopback's ICMP
//! port unreachable (and POLLERR meanwhile).

use pmon::cmsg;
use pmon::dgram::{self, Marks, Proto};
use pmon::inet::{Addr, InetName};
use pmon::unixsock::Name;

use super::*;

use super::unix::{
    ENOBUFS, ENOTCONN, EOPNOTSUPP, IPPROTO_UDPLITE, MSG_DONTWAIT, MSG_PEEK, MSG_TRUNC, SOL_SOCKET,
    SO_DOMAIN, SO_ERROR, SO_PROTOCOL, SO_RCVBUF, SO_SNDBUF, SO_TYPE,
};

const SO_RCVTIMEO: u64 = 20;
const SOCK_DGRAM: u32 = 2;
const IPPROTO_UDP: u32 = 17;
const AF_UNSPEC: u16 = 0;
const IPPROTO_IP: u64 = 0;
const IPPROTO_IPV6: u64 = 41;
const IP_TOS: u64 = 1;
const IP_TTL: u64 = 2;
const IP_PKTINFO: u64 = 8;
const IP_RECVTTL: u64 = 12;
const IP_RECVTOS: u64 = 13;
const IPV6_2292PKTINFO: u64 = 2;
const IPV6_2292HOPLIMIT: u64 = 8;
const IPV6_UNICAST_HOPS: u64 = 16;
const IPV6_RECVPKTINFO: u64 = 49;
const IPV6_PKTINFO: u64 = 50;
const IPV6_RECVHOPLIMIT: u64 = 51;
const IPV6_HOPLIMIT: u64 = 52;
const IPV6_RECVTCLASS: u64 = 66;
const IPV6_TCLASS: u64 = 67;
const MSG_CTRUNC: u32 = 8;
const SOCK_RAW: u32 = 3;
const SOL_RAW: u64 = 255;
const ICMP_FILTER: u64 = 1;
const SOL_ICMPV6: u64 = 58;
const ICMP6_FILTER: u64 = 1;
/// What a send reads at most: one byte past the largest datagram (UDP's
/// or ICMP's), so that one too large is EMSGSIZE.
const MAX_SEND: usize = pmon::icmp::MAX_MESSAGE + 1;

/// The struct in6_pktinfo of a datagram with `marks`: the address it was
/// sent to, the interface (lo).
fn info6(marks: &Marks) -> Vec<u8> {
    let mut info = match marks.dest.addr {
        Addr::Loopback6 | Addr::Any6 => 1u128.to_be_bytes().to_vec(),
        _ => 0xffff_7f00_0001u128.to_be_bytes().to_vec(),
    };
    info.extend_from_slice(&1u32.to_le_bytes());
    info
}

impl Kernel {
    /// socket(AF_INET or AF_INET6, SOCK_DGRAM, 0 or IPPROTO_UDP), or
    /// IPPROTO_UDPLITE, or an ICMP ping or raw socket (`proto`).
    pub(super) fn sys_udp_socket(&mut self, pid: Pid, v6: bool, ty: u64, proto: Proto) -> Ret {
        let id = self.next_pipe;
        self.next_pipe += 1;
        self.dgrams.open(id, v6, proto);
        match self.install_socket(pid, Kind::Dgram(id), ty) {
            Ok(fd) => Ret::Val(fd),
            Err(e) => {
                self.dgrams.close(id);
                err(e)
            }
        }
    }

    /// The socket calls on UDP socket `id`.
    pub(super) fn udp_call(
        &mut self,
        tid: Tid,
        f: &Arc<OpenFile>,
        id: usize,
        n: u64,
        a: [u64; 6],
    ) -> Ret {
        let pid = self.pid_of(tid);
        let v6 = self.dgrams.is_v6(id);
        // Datagrams have no urgent data, and no errors are ever queued.
        let flags = match n {
            nr::SENDTO | nr::RECVFROM => a[3],
            nr::SENDMSG | nr::RECVMSG => a[2],
            _ => 0,
        };
        if matches!(n, nr::SENDTO | nr::SENDMSG) && flags & super::unix::MSG_OOB != 0 {
            return err(EOPNOTSUPP);
        }
        if matches!(n, nr::RECVFROM | nr::RECVMSG) && flags & super::unix::MSG_ERRQUEUE != 0 {
            return err(EAGAIN);
        }
        match n {
            nr::BIND => match self.udp_address(pid, a[1], a[2], v6, true) {
                Ok(Some(name)) => {
                    self.dgrams.set_v6only(id, self.v6only_option(id));
                    val(self.dgrams.bind(id, name).map(|_| 0))
                }
                Ok(None) => err(EINVAL),
                Err(e) => err(e),
            },
            nr::CONNECT => match self.udp_address(pid, a[1], a[2], v6, false) {
                Ok(peer) => val(self.dgrams.connect(id, peer).map(|_| 0)),
                Err(e) => err(e),
            },
            nr::SENDTO => {
                let data = match self
                    .space_mut(pid)
                    .and_then(|s| uaccess::read_vec(s, a[1], (a[2] as usize).min(MAX_SEND)))
                {
                    Ok(d) => d,
                    Err(e) => return err(e),
                };
                let to = if a[4] != 0 {
                    match self.udp_address(pid, a[4], a[5], v6, false) {
                        Ok(t) => t,
                        Err(e) => return err(e),
                    }
                } else {
                    None
                };
                self.udp_send(id, to, &data)
            }
            nr::RECVFROM => self.udp_recv(
                tid,
                f,
                id,
                &[(a[1], a[2] as usize)],
                a[3],
                (a[4], a[5]),
                None,
            ),
            nr::SENDMSG | nr::RECVMSG => {
                let (hdr, vecs) = match self.msghdr(pid, a[1]) {
                    Ok(h) => h,
                    Err(e) => return err(e),
                };
                let (name, namelen) = (hdr.name, hdr.namelen);
                if n == nr::RECVMSG {
                    return self.udp_recv(tid, f, id, &vecs, a[2], (name, a[1] + 8), Some(a[1]));
                }
                let mut data = Vec::new();
                // Up to one byte past the largest datagram: more is
                // EMSGSIZE (the send says), not a shorter datagram.
                for &(at, len) in &vecs {
                    let len = len.min(MAX_SEND - data.len());
                    if len == 0 {
                        break;
                    }
                    match self
                        .space_mut(pid)
                        .and_then(|s| uaccess::read_vec(s, at, len))
                    {
                        Ok(d) => data.extend_from_slice(&d),
                        Err(e) => return err(e),
                    }
                }
                let to = if name != 0 {
                    match self.udp_address(pid, name, namelen, v6, false) {
                        Ok(t) => t,
                        Err(e) => return err(e),
                    }
                } else {
                    None
                };
                let control = if hdr.controllen == 0 {
                    Vec::new()
                } else if hdr.controllen > cmsg::MAX_CONTROL as u64 {
                    return err(ENOBUFS);
                } else {
                    match self
                        .space_mut(pid)
                        .and_then(|s| uaccess::read_vec(s, hdr.control, hdr.controllen as usize))
                    {
                        Ok(c) => c,
                        Err(e) => return err(e),
                    }
                };
                match self.udp_marks(id, &control) {
                    Ok(marks) => self.udp_send_marked(id, to, &data, marks),
                    Err(e) => err(e),
                }
            }
            nr::GETSOCKNAME => {
                let name = self.dgrams.name_of(id).unwrap_or(dgram::unbound(v6));
                val(self
                    .put_sockaddr(pid, a[1], a[2], Some(&Name::Inet(name)))
                    .map(|_| 0))
            }
            nr::GETPEERNAME => match self.dgrams.peer_of(id) {
                Some(p) => val(self
                    .put_sockaddr(pid, a[1], a[2], Some(&Name::Inet(p.seen_from(v6))))
                    .map(|_| 0)),
                None => err(ENOTCONN),
            },
            nr::SETSOCKOPT if a[1] == SOL_SOCKET && a[2] == SO_RCVTIMEO => {
                let ns = match self.timeout_value(pid, a[3], a[4]) {
                    Ok(ns) => ns,
                    Err(e) => return err(e),
                };
                self.udp_timeouts.insert(id, ns);
                Ret::Val(0)
            }
            nr::GETSOCKOPT if a[1] == SOL_SOCKET && a[2] == SO_RCVTIMEO => {
                let ns = self.udp_timeouts.get(&id).copied().unwrap_or(0);
                self.put_timeout_option(pid, a, ns)
            }
            nr::GETSOCKOPT
                if a[1] == SOL_SOCKET
                    && matches!(
                        a[2],
                        SO_TYPE | SO_ERROR | SO_SNDBUF | SO_RCVBUF | SO_DOMAIN | SO_PROTOCOL
                    ) =>
            {
                let proto = self.dgrams.proto_of(id);
                let v: u32 = match a[2] {
                    SO_TYPE if proto == Proto::Raw => SOCK_RAW,
                    SO_TYPE => SOCK_DGRAM,
                    SO_ERROR => self.dgrams.take_error(id).unwrap_or(0) as u32,
                    SO_SNDBUF | SO_RCVBUF => dgram::RCVBUF as u32,
                    SO_DOMAIN if v6 => 10,
                    SO_DOMAIN => 2,
                    _ => match proto {
                        Proto::Lite => IPPROTO_UDPLITE as u32,
                        Proto::Ping | Proto::Raw if v6 => 58,
                        Proto::Ping | Proto::Raw => 1,
                        Proto::Udp => IPPROTO_UDP,
                    },
                };
                self.put_int_option(pid, a, v as i32)
            }
            // UDP-Lite's checksum coverage (ENOPROTOOPT for UDP), at
            // SOL_UDPLITE or SOL_UDP, as Linux takes it.
            nr::SETSOCKOPT
                if matches!(a[1], IPPROTO_UDPLITE | 17)
                    && matches!(a[2], dgram::UDPLITE_SEND_CSCOV | dgram::UDPLITE_RECV_CSCOV) =>
            {
                if a[4] < 4 {
                    return err(EINVAL);
                }
                let r = self
                    .space_mut(pid)
                    .and_then(|s| uaccess::read_u32(s, a[3]))
                    .and_then(|v| self.dgrams.set_coverage(id, a[2], v as i32));
                val(r.map(|_| 0))
            }
            nr::GETSOCKOPT
                if matches!(a[1], IPPROTO_UDPLITE | 17)
                    && matches!(a[2], dgram::UDPLITE_SEND_CSCOV | dgram::UDPLITE_RECV_CSCOV) =>
            {
                match self.dgrams.coverage(id, a[2]) {
                    Ok(v) => self.put_int_option(pid, a, v as i32),
                    Err(e) => err(e),
                }
            }
            // A raw ICMP socket's filter of types (a set bit drops one);
            // shorter than the filter, the rest pass, as Linux copies it.
            nr::SETSOCKOPT
                if (a[1], a[2]) == (SOL_RAW, ICMP_FILTER) && !v6
                    || (a[1], a[2]) == (SOL_ICMPV6, ICMP6_FILTER) && v6 =>
            {
                // Not a raw socket's option (ENOPROTOOPT) before a bad
                // pointer.
                if let Err(e) = self.dgrams.filter(id) {
                    return err(e);
                }
                let len = (a[4] as usize).min(if v6 { 32 } else { 4 });
                let bytes = match self
                    .space_mut(pid)
                    .and_then(|s| uaccess::read_vec(s, a[3], len))
                {
                    Ok(b) => b,
                    Err(e) => return err(e),
                };
                let mut words = [0u32; 8];
                for (i, b) in bytes.iter().enumerate() {
                    words[i / 4] |= (*b as u32) << (8 * (i % 4));
                }
                val(self.dgrams.set_filter(id, &words).map(|_| 0))
            }
            nr::GETSOCKOPT
                if (a[1], a[2]) == (SOL_RAW, ICMP_FILTER) && !v6
                    || (a[1], a[2]) == (SOL_ICMPV6, ICMP6_FILTER) && v6 =>
            {
                let filter = match self.dgrams.filter(id) {
                    Ok(f) => f,
                    Err(e) => return err(e),
                };
                let r = self.space_mut(pid).and_then(|s| {
                    let room = uaccess::read_u32(s, a[4])? as i32;
                    if room < 0 {
                        return Err(EINVAL);
                    }
                    let len = (room as usize).min(if v6 { 32 } else { 4 });
                    let bytes: Vec<u8> = filter.iter().flat_map(|w| w.to_le_bytes()).collect();
                    uaccess::write(s, a[3], &bytes[..len])?;
                    uaccess::write_u32(s, a[4], len as u32)
                });
                val(r.map(|_| 0))
            }
            // The rest are kept and read back as for every socket
            // (SO_BROADCAST, SO_REUSEPORT, SO_LINGER, IP and UDP levels).
            nr::SETSOCKOPT | nr::GETSOCKOPT => {
                let sock = super::unix::Sock {
                    ty: SOCK_DGRAM as u64,
                    listening: false,
                    inet: Some(v6),
                    peer: None,
                    sends_into: None,
                    key: id,
                };
                self.socket_option(pid, n, a, sock)
            }
            nr::SHUTDOWN => {
                let done = self.dgrams.shutdown(id, a[1]);
                // A receiver asleep on it (another thread) wakes to 0.
                if a[1] != super::unix::SHUT_WR {
                    self.wake_all(Wait::Dgram(id));
                }
                val(done.map(|_| 0))
            }
            _ => err(EOPNOTSUPP),
        }
    }

    /// The address at `at` (`len` bytes) for a UDP socket; None for
    /// AF_UNSPEC (connect's way to forget a peer).
    fn udp_address(
        &mut self,
        pid: Pid,
        at: u64,
        len: u64,
        v6: bool,
        bind: bool,
    ) -> Result<Option<InetName>, Errno> {
        if !(2..=128).contains(&len) {
            return Err(EINVAL);
        }
        let bytes = uaccess::read_vec(self.space_mut(pid)?, at, len as usize)?;
        if !bind && u16::from_le_bytes([bytes[0], bytes[1]]) == AF_UNSPEC {
            return Ok(None);
        }
        let name = pmon::inet::parse(&bytes, v6, bind)?;
        if bind {
            self.may_bind_port(pid, name.port)?;
        }
        Ok(Some(if bind { name } else { name.local() }))
    }

    fn udp_send(&mut self, id: usize, to: Option<InetName>, data: &[u8]) -> Ret {
        match self.udp_marks(id, &[]) {
            Ok(marks) => self.udp_send_marked(id, to, data, marks),
            Err(e) => err(e),
        }
    }

    /// A datagram whose IP header carries `(hops, tclass)`.
    fn udp_send_marked(
        &mut self,
        id: usize,
        to: Option<InetName>,
        data: &[u8],
        (hops, tclass): (u8, u8),
    ) -> Ret {
        match self.dgrams.send_marked(id, to, data, hops, tclass) {
            Ok(mut took) => {
                // Its receivers woken, or the sender (to its error, when
                // nobody took it).
                if took.is_empty() && self.dgrams.has_error(id) {
                    took.push(id);
                }
                for &d in &took {
                    self.wake_all(Wait::Dgram(d));
                }
                if !took.is_empty() {
                    self.wake_all(Wait::Any);
                    self.wake_all(Wait::AnyStdin);
                }
                Ret::Val(data.len() as i64)
            }
            Err(e) => err(e),
        }
    }

    /// recvfrom and recvmsg: one datagram into `vecs`; its sender into
    /// (`name`, `namelen`) if asked; recvmsg's flags (MSG_TRUNC) at
    /// `msghdr` + 48.
    #[allow(clippy::too_many_arguments)]
    fn udp_recv(
        &mut self,
        tid: Tid,
        f: &Arc<OpenFile>,
        id: usize,
        vecs: &[(u64, usize)],
        flags: u64,
        (name, namelen): (u64, u64),
        msghdr: Option<u64>,
    ) -> Ret {
        let pid = self.pid_of(tid);
        if let Some(e) = self.dgrams.take_error(id) {
            return err(e);
        }
        let Some((from, data, marks)) = self.dgrams.receive_marked(id, flags & MSG_PEEK != 0)
        else {
            if self.dgrams.read_shut(id) {
                return Ret::Val(0);
            }
            if f.nonblocking() || flags & MSG_DONTWAIT != 0 {
                return err(EAGAIN);
            }
            let timeout = self.udp_timeouts.get(&id).copied().filter(|&t| t > 0);
            let deadline = self.wait_deadline(tid, timeout);
            if deadline.is_some_and(|d| d <= self.now_ns()) {
                return err(EAGAIN);
            }
            self.block(tid, Wait::Dgram(id), deadline, Some(-EAGAIN), OnWake::Retry);
            return Ret::Block;
        };
        let v6 = self.dgrams.is_v6(id);
        if name != 0 && namelen != 0 {
            if let Err(e) =
                self.put_sockaddr(pid, name, namelen, Some(&Name::Inet(from.seen_from(v6))))
            {
                return err(e);
            }
        }
        let control = match msghdr {
            Some(h) => match self.udp_control(pid, id, h, &marks) {
                Ok(c) => Some(c),
                Err(e) => return err(e),
            },
            None => None,
        };
        self.give_datagram(pid, vecs, &data, flags, msghdr, control)
    }

    /// The control messages a recvmsg on `id` gets for a datagram with
    /// `marks`, for the buffer msghdr `h` names: those of the IP_PKTINFO,
    /// IP_RECVTTL, IP_RECVTOS, IPV6_RECVPKTINFO, IPV6_RECVHOPLIMIT and
    /// IPV6_RECVTCLASS the socket set, in Linux's order, and whether any
    /// was cut (MSG_CTRUNC).
    fn udp_control(
        &mut self,
        pid: Pid,
        id: usize,
        h: u64,
        marks: &Marks,
    ) -> Result<(u64, Vec<u8>, bool), Errno> {
        let (at, room) = {
            let s = self.space_mut(pid)?;
            (uaccess::read_u64(s, h + 32)?, uaccess::read_u64(s, h + 40)?)
        };
        let room = (room as usize).min(pmon::cmsg::MAX_CONTROL);
        let on = |level: u64, opt: u64| {
            self.sock_options
                .get(&id)
                .and_then(|o| o.get(&(level, opt)))
                .is_some_and(|&v| v != 0)
        };
        let mut out = Vec::new();
        let mut whole = true;
        // The receiving socket's family decides, as it does for the
        // sender's address; the only IPv4 address here is 127.0.0.1.
        if !self.dgrams.is_v6(id) {
            let addr = [127, 0, 0, 1];
            if on(IPPROTO_IP, IP_PKTINFO) {
                // struct in_pktinfo: the interface (lo), the local address
                // and the one the datagram was sent to.
                let mut info = 1i32.to_le_bytes().to_vec();
                info.extend_from_slice(&addr);
                info.extend_from_slice(&addr);
                whole &= cmsg::put(&mut out, room, 0, IP_PKTINFO as u32, &info);
            }
            if on(IPPROTO_IP, IP_RECVTTL) {
                let ttl = (marks.hops as i32).to_le_bytes();
                whole &= cmsg::put(&mut out, room, 0, IP_TTL as u32, &ttl);
            }
            if on(IPPROTO_IP, IP_RECVTOS) {
                whole &= cmsg::put(&mut out, room, 0, IP_TOS as u32, &[marks.tclass]);
            }
        } else {
            if on(IPPROTO_IPV6, IPV6_RECVPKTINFO) {
                whole &= cmsg::put(&mut out, room, 41, IPV6_PKTINFO as u32, &info6(marks));
            }
            if on(IPPROTO_IPV6, IPV6_RECVHOPLIMIT) {
                let hops = (marks.hops as i32).to_le_bytes();
                whole &= cmsg::put(&mut out, room, 41, IPV6_HOPLIMIT as u32, &hops);
            }
            if on(IPPROTO_IPV6, IPV6_RECVTCLASS) {
                let class = (marks.tclass as i32).to_le_bytes();
                whole &= cmsg::put(&mut out, room, 41, IPV6_TCLASS as u32, &class);
            }
            // RFC 2292's older names, after the others as Linux puts them
            // (busybox's ping6 asks the hop limit so).
            if on(IPPROTO_IPV6, IPV6_2292PKTINFO) {
                whole &= cmsg::put(&mut out, room, 41, IPV6_2292PKTINFO as u32, &info6(marks));
            }
            if on(IPPROTO_IPV6, IPV6_2292HOPLIMIT) {
                let hops = (marks.hops as i32).to_le_bytes();
                whole &= cmsg::put(&mut out, room, 41, IPV6_2292HOPLIMIT as u32, &hops);
            }
        }
        Ok((at, out, !whole))
    }

    /// The hop limit and traffic class `id`'s next datagram carries: its
    /// socket options' (IP_TTL and IP_TOS, or IPV6_UNICAST_HOPS and
    /// IPV6_TCLASS), unless the sendmsg's control data (`control`) gives
    /// others; EINVAL for control data Linux refuses.
    fn udp_marks(&self, id: usize, control: &[u8]) -> Result<(u8, u8), Errno> {
        let opt = |level: u64, o: u64| {
            self.sock_options
                .get(&id)
                .and_then(|m| m.get(&(level, o)))
                .copied()
        };
        let (mut hops, mut class) = if self.dgrams.is_v6(id) {
            (
                opt(IPPROTO_IPV6, IPV6_UNICAST_HOPS).filter(|&v| v <= 255),
                opt(IPPROTO_IPV6, IPV6_TCLASS).filter(|&v| v <= 255),
            )
        } else {
            (
                opt(IPPROTO_IP, IP_TTL).filter(|&v| (1..=255).contains(&v)),
                opt(IPPROTO_IP, IP_TOS),
            )
        };
        let int = |d: &[u8]| -> Result<i32, Errno> {
            Ok(i32::from_le_bytes(d.try_into().map_err(|_| EINVAL)?))
        };
        for (level, ty, data) in cmsg::messages(control)? {
            match (level as u64, ty as u64) {
                (IPPROTO_IP, IP_TTL) => match int(&data)? {
                    v @ 1..=255 => hops = Some(v as u64),
                    _ => return Err(EINVAL),
                },
                (IPPROTO_IP, IP_TOS) => {
                    class = Some(match data.len() {
                        1 => data[0] as u64,
                        _ => (int(&data)? & 0xff) as u64,
                    })
                }
                // -1: the socket's own.
                (IPPROTO_IPV6, IPV6_HOPLIMIT) => match int(&data)? {
                    -1 => {}
                    v @ 0..=255 => hops = Some(v as u64),
                    _ => return Err(EINVAL),
                },
                (IPPROTO_IPV6, IPV6_TCLASS) => match int(&data)? {
                    -1 => {}
                    v @ 0..=255 => class = Some(v as u64),
                    _ => return Err(EINVAL),
                },
                _ => {}
            }
        }
        Ok((hops.unwrap_or(64) as u8, class.unwrap_or(0) as u8))
    }

    /// The rest of a receive of one datagram (UDP, netlink): its bytes
    /// into `vecs` (the rest cut), recvmsg's flags (MSG_TRUNC when cut)
    /// and its control data (`control`: where, the bytes, and whether
    /// some were cut: MSG_CTRUNC; none without), and the length copied,
    /// or the datagram's whole length with MSG_TRUNC in `flags`.
    pub(super) fn give_datagram(
        &mut self,
        pid: Pid,
        vecs: &[(u64, usize)],
        data: &[u8],
        flags: u64,
        msghdr: Option<u64>,
        control: Option<(u64, Vec<u8>, bool)>,
    ) -> Ret {
        let room = vecs.iter().fold(0usize, |t, &(_, l)| t.saturating_add(l));
        let copied = room.min(data.len());
        if let Err((_, e)) = self.scatter(pid, vecs, 0, &data[..copied]) {
            return err(e);
        }
        if let Some(h) = msghdr {
            let mut out_flags = (flags & unix::MSG_CMSG_CLOEXEC) as u32;
            if copied < data.len() {
                out_flags |= MSG_TRUNC as u32;
            }
            let (at, bytes, cut) = control.unwrap_or((0, Vec::new(), false));
            if cut {
                out_flags |= MSG_CTRUNC;
            }
            let r = self.space_mut(pid).and_then(|s| {
                if !bytes.is_empty() {
                    uaccess::write(s, at, &bytes)?;
                }
                uaccess::write_u64(s, h + 40, bytes.len() as u64)?;
                uaccess::write_u32(s, h + 48, out_flags)
            });
            if let Err(e) = r {
                return err(e);
            }
        }
        if flags & MSG_TRUNC != 0 {
            Ret::Val(data.len() as i64)
        } else {
            Ret::Val(copied as i64)
        }
    }

    /// read(2) of a UDP socket: one datagram; Ok(None): wait.
    pub(super) fn udp_read(
        &mut self,
        f: &OpenFile,
        id: usize,
        len: usize,
    ) -> Result<Option<Vec<u8>>, Errno> {
        if let Some(e) = self.dgrams.take_error(id) {
            return Err(e);
        }
        match self.dgrams.receive(id, false) {
            Some((_, mut data)) => {
                data.truncate(len);
                Ok(Some(data))
            }
            None if self.dgrams.read_shut(id) => Ok(Some(Vec::new())),
            None if f.nonblocking() => Err(EAGAIN),
            None => Ok(None),
        }
    }

    /// write(2) of a UDP socket: one datagram to its peer.
    pub(super) fn udp_write(&mut self, id: usize, data: &[u8]) -> Result<Option<usize>, Errno> {
        match self.udp_send(id, None, data) {
            Ret::Val(n) if n >= 0 => Ok(Some(n as usize)),
            Ret::Val(n) => Err(-n),
            _ => Err(EINVAL),
        }
    }
}
