//! AF_UNIX sockets. socketpair: two connected ends, each a pair of the
//! monitor's pipes (one to receive from, one to send into), so they read,
//! write, poll, block and end as pipes do; SOCK_SEQPACKET and SOCK_DGRAM
//! pairs keep message boundaries in those pipes ([`pmon::pipe::Mode`]).
//! Event loops make one to wake themselves (tokio's signal and process
//! handling, for one). socket, bind, listen, connect and accept: the same
//! ends (SOCK_STREAM or SOCK_SEQPACKET), made when a connection is
//! accepted into a listener's queue, between processes of this processor
//! (names: [`pmon::unixsock`]). Descriptors pass with SCM_RIGHTS
//! ([`pmon::cmsg`]): they ride in the pipe with the bytes sent and are
//! installed in the receiver's table by the recvmsg that reads those
//! bytes. AF_INET and AF_INET6 stream sockets are the same connections,
//! named by loopback addresses and ports ([`pmon::inet`]): the processes
//! of a processor reach each other at 127.0.0.1 and ::1; no other network
//! is given to processes (another address is ENETUNREACH). AF_UNIX
//! datagram sockets made by socket() to bind, connect and sendto are
//! [`dgram`]'s. The calls that take a descriptor answer ENOTSOCK for
//! anything else, as Linux does.

mod dgram;

use pmon::cmsg::{self, Ucred};
use pmon::dgram::Proto;
use pmon::fd::{CONNECTING_FLAG, SHUT_WR_FLAG};
use pmon::inet::InetName;
use pmon::pipe::Mode;
use pmon::unixsock::{Name, SockAddr};

use super::*;

const AF_UNIX: u64 = 1;
const AF_INET: u64 = 2;
const AF_INET6: u64 = 10;
const SOCK_STREAM: u64 = 1;
const SOCK_NONBLOCK: u64 = 0o4000;
const SOCK_CLOEXEC: u64 = 0o2000000;
/// shutdown's `how`.
pub(super) const SHUT_RD: u64 = 0;
pub(super) const SHUT_WR: u64 = 1;
pub(super) const SHUT_RDWR: u64 = 2;
pub(super) const SOL_SOCKET: u64 = 1;
pub(super) const SO_TYPE: u64 = 3;
pub(super) const SO_ERROR: u64 = 4;
pub(super) use pmon::sockbuf::{SO_RCVBUF, SO_SNDBUF};
pub(super) const MSG_DONTWAIT: u64 = 0x40;
pub(super) const MSG_PEEK: u64 = 2;
pub(super) const MSG_TRUNC: u64 = 0x20;
const MSG_CTRUNC: u32 = 8;
const MSG_WAITALL: u64 = 0x100;
const MSG_NOSIGNAL: u64 = 0x4000;
/// Asked of recvmsg, and said back in its msg_flags, as Linux's
/// ___sys_recvmsg keeps it.
pub(super) const MSG_CMSG_CLOEXEC: u64 = 0x4000_0000;
const SO_PASSCRED: u64 = 16;
const SO_PRIORITY: u64 = 12;
pub(super) const SO_RCVLOWAT: u64 = 18;
const SO_RCVTIMEO: u64 = 20;
const SO_REUSEPORT: u64 = 15;
/// Marks a socket file's node as storage's in `UnixSockets`' table of
/// nodes, whose other numbers are the tmpfs's.
const STORE_NODE: u64 = 1 << 63;
const SO_SNDTIMEO: u64 = 21;
const SO_SNDLOWAT: u64 = 19;
const TCP_NODELAY: u64 = 1;
/// SOL_SOCKET options whose value is kept and read back: SO_REUSEADDR,
/// SO_DONTROUTE, SO_BROADCAST, SO_KEEPALIVE, SO_OOBINLINE, SO_PRIORITY,
/// SO_REUSEPORT, SO_PASSCRED, SO_RCVLOWAT, SO_SNDLOWAT, SO_MARK,
/// SO_BUSY_POLL, SO_INCOMING_CPU.
const KEPT_OPTIONS: [u64; 13] = [
    2,
    SO_DONTROUTE,
    6,
    9,
    SO_OOBINLINE,
    SO_PRIORITY,
    15,
    SO_PASSCRED,
    SO_RCVLOWAT,
    SO_SNDLOWAT,
    SO_MARK,
    SO_BUSY_POLL,
    SO_INCOMING_CPU,
];
const SO_DONTROUTE: u64 = 5;
const SO_BINDTODEVICE: u64 = 25;
const SO_MARK: u64 = 36;
const SO_PEEK_OFF: u64 = 42;
const SO_BUSY_POLL: u64 = 46;
const SO_MAX_PACING_RATE: u64 = 47;
const SO_INCOMING_CPU: u64 = 49;
const SO_COOKIE: u64 = 57;
const SO_PASSPIDFD: u64 = 76;
const ENODEV: Errno = 19;
const SO_PEERCRED: u64 = 17;
const SO_OOBINLINE: u64 = 10;
pub(super) const MSG_OOB: u64 = 1;
/// A socket's queue of errors (IP_RECVERR's): never any here, so an
/// internet socket's read of it is EAGAIN, as Linux's with none queued.
pub(super) const MSG_ERRQUEUE: u64 = 0x2000;
const SO_LINGER: u64 = 13;
const SOCK_SEQPACKET: u64 = 5;
pub(super) const ENOBUFS: Errno = 105;
/// The uid and gid SO_PEERCRED gives for a socket with no peer (Linux's
/// overflow ids).
const NO_ID: u32 = 65534;
const ENOTSOCK: Errno = 88;
const EPROTONOSUPPORT: Errno = 93;
pub(super) const EOPNOTSUPP: Errno = 95;
const EAFNOSUPPORT: Errno = 97;
const EISCONN: Errno = 106;
const EINPROGRESS: Errno = 115;
pub(super) const ENOTCONN: Errno = 107;
const EMSGSIZE: Errno = 90;
pub(super) const ENOPROTOOPT: Errno = 92;
const SO_ACCEPTCONN: u64 = 30;
pub(super) const SO_PROTOCOL: u64 = 38;
pub(super) const SO_DOMAIN: u64 = 39;
const IPPROTO_IP: u64 = 0;
const IPPROTO_TCP: u64 = 6;
const IPPROTO_IPV6: u64 = 41;
const IPV6_V6ONLY: u64 = 26;
const IPPROTO_UDP: u64 = 17;
pub(super) const IPPROTO_UDPLITE: u64 = 136;
const SOCK_DGRAM: u64 = 2;
const SOCK_RAW: u64 = 3;
const AF_NETLINK: u64 = 16;
const IPPROTO_ICMP: u64 = 1;
const IPPROTO_ICMPV6: u64 = 58;

impl Kernel {
    pub(super) fn sys_socketpair(
        &mut self,
        pid: Pid,
        domain: u64,
        ty: u64,
        protocol: u64,
        sv: u64,
    ) -> Ret {
        match domain {
            AF_UNIX => {}
            // Internet sockets have no pairs: as Linux, the socket is
            // made first (its type and protocol checked: EINVAL,
            // EPROTONOSUPPORT, EPERM) and its pairing refused.
            AF_INET | AF_INET6 => {
                return match self.sys_socket(pid, domain, ty, protocol) {
                    Ret::Val(fd) if fd >= 0 => {
                        self.sys_close(pid, fd);
                        err(EOPNOTSUPP)
                    }
                    refused => refused,
                }
            }
            _ => return err(EAFNOSUPPORT),
        }
        let mode = match ty & !(SOCK_NONBLOCK | SOCK_CLOEXEC) {
            SOCK_STREAM => Mode::Stream,
            SOCK_SEQPACKET => Mode::Packets,
            SOCK_DGRAM => Mode::Datagrams,
            _ => return err(EPROTONOSUPPORT),
        };
        if protocol != 0 {
            return err(EPROTONOSUPPORT);
        }
        let (a, b) = (self.next_pipe, self.next_pipe + 1);
        self.next_pipe += 2;
        for id in [a, b] {
            self.pipes.insert(id, Pipe::socket(mode, pid));
        }
        let nb = nonblock(ty);
        let cloexec = ty & SOCK_CLOEXEC != 0;
        let one = OpenFile::new(Kind::Socket(b, a), O_RDWR | nb);
        let two = OpenFile::new(Kind::Socket(a, b), O_RDWR | nb);
        self.install_pair(pid, [one, two], cloexec, sv, &[a, b])
    }

    /// socket(AF_UNIX, AF_INET or AF_INET6, SOCK_STREAM): a socket to
    /// bind, listen or connect.
    pub(super) fn sys_socket(&mut self, pid: Pid, domain: u64, ty: u64, protocol: u64) -> Ret {
        let inet = match domain {
            AF_UNIX => None,
            AF_INET => Some(false),
            AF_INET6 => Some(true),
            AF_NETLINK => return self.sys_netlink_socket(pid, ty, protocol),
            _ => return err(EAFNOSUPPORT),
        };
        // As Linux: flags but these two, or a type past SOCK_PACKET, are
        // EINVAL; AF_UNIX takes SOCK_RAW as SOCK_DGRAM and has no other.
        const SOCK_TYPE_MASK: u64 = 0xf;
        const SOCK_MAX: u64 = 11;
        const ESOCKTNOSUPPORT: Errno = 94;
        let base = ty & SOCK_TYPE_MASK;
        if ty & !SOCK_TYPE_MASK & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 || base >= SOCK_MAX {
            return err(EINVAL);
        }
        if inet.is_none() && base == SOCK_RAW {
            if protocol != 0 {
                return err(EPROTONOSUPPORT);
            }
            return self.sys_unix_dgram_socket(pid, ty);
        }
        if inet.is_none() && !matches!(base, SOCK_STREAM | SOCK_SEQPACKET | SOCK_DGRAM) {
            return err(ESOCKTNOSUPPORT);
        }
        if let Some(v6) = inet {
            // ICMP (IPv4) or ICMPv6 (IPv6): echo on the loopback.
            let icmp = if v6 { IPPROTO_ICMPV6 } else { IPPROTO_ICMP };
            match base {
                SOCK_DGRAM => {
                    return match protocol {
                        0 | IPPROTO_UDP => self.sys_udp_socket(pid, v6, ty, Proto::Udp),
                        IPPROTO_UDPLITE => self.sys_udp_socket(pid, v6, ty, Proto::Lite),
                        // Decided: ping sockets for every group, as
                        // systemd's ping_group_range opens them.
                        p if p == icmp => self.sys_udp_socket(pid, v6, ty, Proto::Ping),
                        _ => err(EPROTONOSUPPORT),
                    };
                }
                // Linux asks CAP_NET_RAW before it looks at the protocol
                // (once there is one); raw sockets of other protocols are
                // not offered.
                SOCK_RAW => {
                    let raw = self
                        .procs
                        .get(&pid)
                        .is_some_and(|p| p.cred.capable(pmon::caps::NET_RAW));
                    return match protocol {
                        // (No protocol is looked at before the capability.)
                        0 => err(EPROTONOSUPPORT),
                        _ if !raw => err(pmon::cred::EPERM),
                        p if p == icmp => self.sys_udp_socket(pid, v6, ty, Proto::Raw),
                        _ => err(EPROTONOSUPPORT),
                    };
                }
                _ => {}
            }
        }
        let packets = match (base, inet) {
            (SOCK_STREAM, _) => false,
            (SOCK_SEQPACKET, None) => true,
            (SOCK_DGRAM, None) if protocol == 0 => return self.sys_unix_dgram_socket(pid, ty),
            _ => return err(EPROTONOSUPPORT),
        };
        if protocol != 0 && !(inet.is_some() && protocol == IPPROTO_TCP) {
            return err(EPROTONOSUPPORT);
        }
        let id = self.next_pipe;
        self.next_pipe += 1;
        match inet {
            Some(v6) => self.unix.open_inet(id, v6),
            None if packets => self.unix.open_packets(id),
            None => self.unix.open(id),
        }
        match self.install_socket(pid, Kind::Unix(id), ty) {
            Ok(fd) => Ret::Val(fd),
            Err(e) => {
                self.unix.close(id);
                err(e)
            }
        }
    }

    /// sendmmsg and recvmmsg (`call`: SENDMSG or RECVMSG): sendmsg or
    /// recvmsg of each `struct mmsghdr` in turn, its length written after
    /// its header, until one fails; the count done, or the first one's
    /// error. Only the first may wait (a wait that ends it makes the call
    /// again, nothing being done yet); the rest are tried without waiting,
    /// as MSG_WAITFORONE asks. Decided: a blocking recvmmsg returns what
    /// came with the first message rather than waiting for all `vlen`, and
    /// its timeout is checked but not kept.
    pub(super) fn sys_mmsg(&mut self, tid: Tid, call: u64, a: [u64; 6]) -> Ret {
        const MMSGHDR: u64 = 64;
        const UIO_MAXIOV: u64 = 1024;
        const MSG_WAITFORONE: u64 = 0x10000;
        let pid = self.pid_of(tid);
        let (fd, vec, vlen, mut flags) = (a[0], a[1], a[2].min(UIO_MAXIOV), a[3]);
        if call == nr::RECVMSG {
            flags &= !MSG_WAITFORONE;
            // Its timeout is read and checked (EFAULT, EINVAL), as Linux.
            if a[4] != 0 {
                if let Err(e) = self.read_timespec(pid, a[4]) {
                    return err(e);
                }
            }
        }
        let mut done = 0;
        while done < vlen {
            let hdr = vec + done * MMSGHDR;
            let flags = if done == 0 {
                flags
            } else {
                flags | MSG_DONTWAIT
            };
            match self.sys_socket_call(tid, call, [fd, hdr, flags, 0, 0, 0]) {
                Ret::Val(n) if n >= 0 => {
                    let len = self
                        .space_mut(pid)
                        .and_then(|s| uaccess::write_u32(s, hdr + 56, n as u32));
                    if let Err(e) = len {
                        return if done > 0 {
                            Ret::Val(done as i64)
                        } else {
                            err(e)
                        };
                    }
                    done += 1;
                }
                r if done == 0 => return r,
                _ => break,
            }
        }
        Ret::Val(done as i64)
    }

    /// The calls on a socket descriptor: served for AF_UNIX sockets,
    /// ENOTSOCK for any other file.
    pub(super) fn sys_socket_call(&mut self, tid: Tid, n: u64, a: [u64; 6]) -> Ret {
        let pid = self.pid_of(tid);
        let f = match self.file(pid, a[0] as i32 as i64) {
            Ok(f) => f,
            Err(e) => return err(e),
        };
        let (rx, tx) = match f.kind {
            Kind::Socket(rx, tx) => (rx, tx),
            Kind::Unix(id) => return self.unconnected_call(tid, &f, id, n, a),
            Kind::UnixDgram(id) => return self.unix_dgram_call(tid, &f, id, n, a),
            Kind::Dgram(id) => return self.udp_call(tid, &f, id, n, a),
            Kind::Netlink(id) => return self.netlink_call(tid, &f, id, n, a),
            _ => return err(ENOTSOCK),
        };
        match n {
            nr::SENDTO => self.socket_send(
                tid,
                &f,
                tx,
                &[(a[1], a[2] as usize)],
                a[3],
                Vec::new(),
                None,
            ),
            nr::RECVFROM => {
                if a[4] != 0 && a[5] != 0 {
                    // No address: the peer is unnamed.
                    if let Err(e) = self.space_mut(pid).and_then(|s| {
                        address_room(s, a[5])?;
                        uaccess::write_u32(s, a[5], 0)
                    }) {
                        return err(e);
                    }
                }
                self.socket_recv(tid, &f, rx, &[(a[1], a[2] as usize)], a[3], None, None)
            }
            nr::SENDMSG => {
                let (hdr, vecs) = match self.msghdr(pid, a[1]) {
                    Ok(h) => h,
                    Err(e) => return err(e),
                };
                match self.rights_sent(pid, &hdr) {
                    Ok((rights, creds)) => {
                        self.socket_send(tid, &f, tx, &vecs, a[2], rights, creds)
                    }
                    Err(e) => err(e),
                }
            }
            nr::RECVMSG => {
                let (hdr, vecs) = match self.msghdr(pid, a[1]) {
                    Ok(h) => h,
                    Err(e) => return err(e),
                };
                // No address: the peer is unnamed.
                if let Err(e) = self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write_u32(s, a[1] + 8, 0))
                {
                    return err(e);
                }
                self.socket_recv(tid, &f, rx, &vecs, a[2], Some((a[1], hdr)), None)
            }
            nr::SHUTDOWN => {
                let how = a[1];
                if how > SHUT_RDWR {
                    return err(EINVAL);
                }
                // Reading: a reader asleep on it (another thread) wakes to
                // the end, as servers stop their reader threads.
                if how != SHUT_WR {
                    self.shut_for_reading(rx);
                }
                if how != SHUT_RD && f.flags.get() & SHUT_WR_FLAG == 0 {
                    f.flags.set(f.flags.get() | SHUT_WR_FLAG);
                    if let Some(p) = self.pipes.get_mut(&tx) {
                        p.writers = p.writers.saturating_sub(1);
                    }
                    self.pipe_changed(tx);
                }
                Ret::Val(0)
            }
            nr::GETSOCKOPT | nr::SETSOCKOPT => {
                let inet = match self.unix_names.get(&rx) {
                    Some((Some(Name::Inet(n)), _)) => Some(n.v6()),
                    _ => None,
                };
                let (mode, peer) = self
                    .pipes
                    .get(&rx)
                    .map_or((Mode::Stream, None), |p| (p.mode(), Some(p.sender)));
                let sock = Sock {
                    ty: match mode {
                        Mode::Stream => SOCK_STREAM,
                        Mode::Packets => SOCK_SEQPACKET,
                        Mode::Datagrams => SOCK_DGRAM,
                    },
                    listening: false,
                    inet,
                    peer,
                    key: rx,
                    sends_into: Some(tx),
                };
                self.socket_option(pid, n, a, sock)
            }
            // A TCP connection reset by its peer has none any more
            // (Linux's CLOSE state).
            nr::GETPEERNAME if self.pipes.get(&rx).is_some_and(|p| p.tcp && p.was_reset) => {
                err(ENOTCONN)
            }
            nr::GETSOCKNAME | nr::GETPEERNAME => {
                // A socketpair's ends are unnamed: just the family.
                let names = self.unix_names.get(&rx);
                let name = match (n, names) {
                    (nr::GETSOCKNAME, Some((own, _))) => own.clone(),
                    (_, Some((_, peer))) => peer.clone(),
                    _ => None,
                };
                val(self.put_sockaddr(pid, a[1], a[2], name.as_ref()).map(|_| 0))
            }
            // A TCP connect that said EINPROGRESS is done: said once.
            nr::CONNECT if f.flags.get() & CONNECTING_FLAG != 0 => {
                f.flags.set(f.flags.get() & !CONNECTING_FLAG);
                Ret::Val(0)
            }
            // Connecting, binding, listening: these ends are connected.
            nr::CONNECT => err(EISCONN),
            // As Linux: a connected stream neither listens nor accepts
            // (EINVAL; a datagram socket never does: EOPNOTSUPP), and is
            // bound already.
            nr::LISTEN | nr::ACCEPT | nr::ACCEPT4
                if self
                    .pipes
                    .get(&rx)
                    .is_some_and(|p| p.mode() != Mode::Datagrams) =>
            {
                err(EINVAL)
            }
            nr::BIND => err(EINVAL),
            _ => err(EOPNOTSUPP),
        }
    }

    /// The `struct msghdr` at `at` of sendmsg or recvmsg, and its iovecs.
    pub(super) fn msghdr(
        &mut self,
        pid: Pid,
        at: u64,
    ) -> Result<(MsgHdr, Vec<(u64, usize)>), Errno> {
        let b = uaccess::read_vec(self.space_mut(pid)?, at, 56)?;
        let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        // A negative name length is EINVAL (none is asked without a name).
        if word(0) != 0 && (word(8) as u32 as i32) < 0 {
            return Err(EINVAL);
        }
        let hdr = MsgHdr {
            name: word(0),
            namelen: word(8) as u32 as u64,
            iov: word(16),
            iovlen: word(24),
            control: word(32),
            controllen: word(40),
        };
        // (EMSGSIZE for a message's vector, where readv says EINVAL.)
        if hdr.iovlen > 1024 {
            return Err(EMSGSIZE);
        }
        let vecs = self.iovecs(pid, hdr.iov, hdr.iovlen as usize)?;
        Ok((hdr, vecs))
    }

    /// getsockopt and setsockopt at SOL_SOCKET: the type, the family, no
    /// pending error, whether it listens, the pipes' size. The flags and
    /// numbers a program sets (SO_REUSEADDR, SO_KEEPALIVE, SO_RCVLOWAT and
    /// the like; an internet socket's TCP_NODELAY, IP_TOS and the like)
    /// are kept and read back as Linux gives them (a flag as 1), and have
    /// no effect on a loopback made of pipes; one never set reads as
    /// Linux's default. Buffer sizes and timeouts are taken and read as
    /// the pipes' (they were 0 until CPython's test suite read one).
    pub(super) fn socket_option(&mut self, pid: Pid, n: u64, a: [u64; 6], sock: Sock) -> Ret {
        let inet = sock.inet;
        let udp = sock.ty == SOCK_DGRAM && matches!(a[1], IPPROTO_UDP | IPPROTO_UDPLITE);
        let ip_level = matches!(a[1], IPPROTO_IP | IPPROTO_TCP | IPPROTO_IPV6) || udp;
        // A level no protocol of the socket has: Linux's IP answers
        // EOPNOTSUPP to a get and ENOPROTOOPT to a set, AF_UNIX (which
        // has none but SOL_SOCKET) EOPNOTSUPP to both.
        if a[1] != SOL_SOCKET && !(inet.is_some() && ip_level) {
            return err(if n == nr::SETSOCKOPT && inet.is_some() {
                ENOPROTOOPT
            } else {
                EOPNOTSUPP
            });
        }
        if a[1] == SOL_SOCKET && matches!(a[2], SO_RCVTIMEO | SO_SNDTIMEO) {
            return self.socket_timeout_option(pid, n, a, sock.key);
        }
        if a[1] == SOL_SOCKET && a[2] == SO_LINGER {
            return self.linger_option(pid, n, a, sock.key);
        }
        if a[1] == SOL_SOCKET && matches!(a[2], SO_SNDBUF | SO_RCVBUF) && sock.ty == SOCK_STREAM {
            return self.buffer_option(pid, n, a, sock);
        }
        if a[1] == SOL_SOCKET {
            if let Some(r) = self.device_option(pid, n, a, &sock) {
                return r;
            }
        }
        if a[1] == IPPROTO_TCP && inet.is_some() && sock.ty == SOCK_STREAM {
            if let Some(r) = self.tcp_option(pid, n, a, &sock) {
                return r;
            }
        }
        if let (Some(v6), false) = (inet, a[1] == SOL_SOCKET) {
            use pmon::sockopt::Opt;
            let s = pmon::sockopt::Inet {
                v6,
                stream: sock.ty == SOCK_STREAM,
            };
            match pmon::sockopt::inet(s, a[1], a[2], n == nr::SETSOCKOPT) {
                Err(e) => return err(e),
                Ok(Opt::IpOptions) => return self.ip_options_option(pid, n, a, sock.key),
                Ok(Opt::Mtu) if n == nr::SETSOCKOPT => return err(ENOPROTOOPT),
                Ok(Opt::Mtu) => {
                    let connected = sock.sends_into.is_some()
                        || (sock.ty != SOCK_STREAM && self.dgrams.peer_of(sock.key).is_some());
                    if !connected {
                        return err(ENOTCONN);
                    }
                    return self.put_int_option(pid, a, pmon::sockopt::LOOPBACK_MTU);
                }
                Ok(Opt::Int { default, rule }) => {
                    return self.int_option(pid, n, a, sock.key, default, rule)
                }
                Ok(Opt::Other) => {}
            }
        }
        let kept = a[1] != SOL_SOCKET || KEPT_OPTIONS.contains(&a[2]);
        if n == nr::SETSOCKOPT {
            if !kept {
                return Ret::Val(0);
            }
            if a[4] < 4 {
                return err(EINVAL);
            }
            let v = match self.space_mut(pid).and_then(|s| uaccess::read_u32(s, a[3])) {
                Ok(v) => v,
                Err(e) => return err(e),
            };
            let v: u64 = match (a[1], a[2]) {
                (SOL_SOCKET, SO_RCVLOWAT) => v.clamp(1, i32::MAX as u32) as u64,
                (SOL_SOCKET, SO_PRIORITY | SO_MARK | SO_BUSY_POLL | SO_INCOMING_CPU) => v as u64,
                (SOL_SOCKET, _) | (IPPROTO_TCP, TCP_NODELAY) => (v != 0) as u64,
                _ => v as u64,
            };
            self.sock_options
                .entry(sock.key)
                .or_default()
                .insert((a[1], a[2]), v);
            if let (SOL_SOCKET, SO_OOBINLINE, Some(tx)) = (a[1], a[2], sock.sends_into) {
                self.apply_options(sock.key, tx);
            }
            return Ret::Val(0);
        }
        if kept {
            let default = match (a[1], a[2]) {
                (SOL_SOCKET, SO_RCVLOWAT | SO_SNDLOWAT) => 1,
                // The CPU that took its last packet: none yet, or this
                // processor's first.
                (SOL_SOCKET, SO_INCOMING_CPU) if sock.sends_into.is_none() => u32::MAX as u64,
                _ => 0,
            };
            let v = self
                .sock_options
                .get(&sock.key)
                .and_then(|o| o.get(&(a[1], a[2])))
                .copied()
                .unwrap_or(default);
            return self.put_int_option(pid, a, v as i32);
        }
        if a[1] == SOL_SOCKET && a[2] == SO_PEERCRED {
            // struct ucred: the peer's pid and its effective uid and gid
            // (now: Linux's are those at connect); no peer: pid 0.
            let ucred = match sock.peer {
                Some(p) => {
                    let c = self.procs.get(&p).map(|pr| pr.cred).unwrap_or_default();
                    [p, c.uid.effective, c.gid.effective]
                }
                None => [0, NO_ID, NO_ID],
            };
            let cred: Vec<u8> = ucred.iter().flat_map(|v| v.to_le_bytes()).collect();
            let r = self.space_mut(pid).and_then(|s| {
                let room = uaccess::read_u32(s, a[4])? as usize;
                uaccess::write(s, a[3], &cred[..room.min(cred.len())])?;
                uaccess::write_u32(s, a[4], room.min(cred.len()) as u32)
            });
            return val(r.map(|_| 0));
        }
        let v: u32 = match a[2] {
            _ if a[1] != SOL_SOCKET => 0,
            SO_TYPE => sock.ty as u32,
            SO_ERROR => match self.take_connect_error(sock.key) {
                Some(e) => e as u32,
                // A connection's reset, taken (sock.key is its rx).
                None if self
                    .pipes
                    .get_mut(&sock.key)
                    .is_some_and(|p| p.take_reset()) =>
                {
                    ECONNRESET as u32
                }
                None if sock
                    .sends_into
                    .and_then(|tx| self.pipes.get_mut(&tx))
                    .is_some_and(|p| core::mem::take(&mut p.writer_error)) =>
                {
                    EPIPE as u32
                }
                None => 0,
            },
            SO_ACCEPTCONN => sock.listening as u32,
            SO_SNDBUF | SO_RCVBUF => pmon::pipe::MESSAGE_CAPACITY as u32,
            SO_DOMAIN => match inet {
                None => AF_UNIX as u32,
                Some(false) => AF_INET as u32,
                Some(true) => AF_INET6 as u32,
            },
            SO_PROTOCOL => {
                if inet.is_some() {
                    IPPROTO_TCP as u32
                } else {
                    0
                }
            }
            _ => return err(ENOPROTOOPT),
        };
        self.put_int_option(pid, a, v as i32)
    }

    /// A get's int `v` copied out as Linux copies it to the buffer and
    /// length getsockopt `a` gives (`pmon::sockopt::int_bytes`): a short
    /// buffer gets part of it, never more than its length.
    pub(super) fn put_int_option(&mut self, pid: Pid, a: [u64; 6], v: i32) -> Ret {
        let r = self.space_mut(pid).and_then(|s| {
            let room = uaccess::read_u32(s, a[4])? as i32;
            let (bytes, len) = pmon::sockopt::int_bytes(a[1], room, v)?;
            uaccess::write(s, a[3], &bytes[..len])?;
            uaccess::write_u32(s, a[4], len as u32)
        });
        val(r.map(|_| 0))
    }

    /// An internet option that is an int (`pmon::sockopt::Opt::Int`): a set
    /// checked by its rule and kept, a get of what was kept or `default`.
    fn int_option(
        &mut self,
        pid: Pid,
        n: u64,
        a: [u64; 6],
        key: usize,
        default: i32,
        rule: pmon::sockopt::Rule,
    ) -> Ret {
        if n == nr::GETSOCKOPT {
            let v = self
                .sock_option(key, a[1], a[2])
                .map_or(default, |v| v as u32 as i32);
            return self.put_int_option(pid, a, v);
        }
        let len = (a[4] as u32 as usize).min(4);
        let set = self
            .space_mut(pid)
            .and_then(|s| uaccess::read_vec(s, a[3], len))
            .and_then(|b| pmon::sockopt::int_value(a[1], &b))
            .and_then(|v| rule.set(v));
        let options = self.sock_options.entry(key).or_default();
        match set {
            Ok(pmon::sockopt::Set::Keep(v)) => {
                options.insert((a[1], a[2]), v as u32 as u64);
            }
            Ok(pmon::sockopt::Set::Default) => {
                options.remove(&(a[1], a[2]));
            }
            Err(e) => return err(e),
        }
        Ret::Val(0)
    }

    /// IP_OPTIONS: none until a set gives some (the loopback carries none
    /// on its segments; sshd refuses a connection whose list is not
    /// empty). Kept in the socket's options as words after the length,
    /// at names above any of Linux's.
    fn ip_options_option(&mut self, pid: Pid, n: u64, a: [u64; 6], key: usize) -> Ret {
        const LEVEL: u64 = pmon::sockopt::IPPROTO_IP;
        let word = |i: usize| pmon::sockopt::IP_OPTIONS | ((i as u64 + 1) << 32);
        if n == nr::SETSOCKOPT {
            let given = (a[4] as u32 as usize).min(pmon::sockopt::IP_OPTIONS_MAX + 1);
            let list = match self
                .space_mut(pid)
                .and_then(|s| uaccess::read_vec(s, a[3], given))
                .and_then(|b| pmon::sockopt::ip_options(&b))
            {
                Ok(l) => l,
                Err(e) => return err(e),
            };
            let options = self.sock_options.entry(key).or_default();
            options.retain(|&(level, name), _| {
                !(level == LEVEL && name & 0xffff_ffff == pmon::sockopt::IP_OPTIONS)
            });
            options.insert((LEVEL, pmon::sockopt::IP_OPTIONS), list.len() as u64);
            for (i, w) in list.chunks(8).enumerate() {
                let mut b = [0u8; 8];
                b[..w.len()].copy_from_slice(w);
                options.insert((LEVEL, word(i)), u64::from_le_bytes(b));
            }
            return Ret::Val(0);
        }
        let len = self
            .sock_option(key, LEVEL, pmon::sockopt::IP_OPTIONS)
            .unwrap_or(0) as usize;
        let list: Vec<u8> = (0..len.div_ceil(8))
            .flat_map(|i| {
                self.sock_option(key, LEVEL, word(i))
                    .unwrap_or(0)
                    .to_le_bytes()
            })
            .take(len)
            .collect();
        let r = self.space_mut(pid).and_then(|s| {
            let room = uaccess::read_u32(s, a[4])? as i32;
            if room < 0 {
                return Err(EINVAL);
            }
            let len = (room as usize).min(list.len());
            uaccess::write(s, a[3], &list[..len])?;
            uaccess::write_u32(s, a[4], len as u32)
        });
        val(r.map(|_| 0))
    }

    /// The SOL_SOCKET options that are not one int kept as set, and those
    /// that need a privilege; None for the rest. As Linux 6.18 answers:
    /// SO_PASSCRED and SO_PASSPIDFD are AF_UNIX's (EOPNOTSUPP on internet
    /// sockets); SO_MARK and a raised SO_BUSY_POLL need CAP_NET_ADMIN,
    /// SO_BINDTODEVICE CAP_NET_RAW and a device there is (the loopback,
    /// `lo`); SO_COOKIE is a number no other socket has; SO_MAX_PACING_RATE
    /// a u64 (no pacing: all ones). Decided: SO_PEEK_OFF reads as -1 (off)
    /// and a set is EOPNOTSUPP, as from a protocol without it, since
    /// MSG_PEEK here always reads from the start.
    fn device_option(&mut self, pid: Pid, n: u64, a: [u64; 6], sock: &Sock) -> Option<Ret> {
        let set = n == nr::SETSOCKOPT;
        let capable = |k: &Self, cap: u32| k.procs.get(&pid).is_some_and(|p| p.cred.capable(cap));
        match a[2] {
            SO_PASSCRED | SO_PASSPIDFD if sock.inet.is_some() => Some(err(EOPNOTSUPP)),
            SO_MARK if set && !capable(self, pmon::caps::NET_ADMIN) => Some(err(EPERM)),
            SO_BUSY_POLL if set => {
                let v = match self.space_mut(pid).and_then(|s| uaccess::read_u32(s, a[3])) {
                    Ok(v) => v as i32,
                    Err(e) => return Some(err(e)),
                };
                let now = self
                    .sock_option(sock.key, SOL_SOCKET, SO_BUSY_POLL)
                    .unwrap_or(0);
                match v {
                    _ if a[4] < 4 || v < 0 => Some(err(EINVAL)),
                    _ if v as u64 > now && !capable(self, pmon::caps::NET_ADMIN) => {
                        Some(err(EPERM))
                    }
                    _ => None,
                }
            }
            SO_PEEK_OFF if set => Some(err(EOPNOTSUPP)),
            SO_PEEK_OFF => Some(self.put_int_option(pid, a, -1)),
            SO_COOKIE if set => Some(err(ENOPROTOOPT)),
            SO_COOKIE => {
                // Keys are apart within a kind of socket; the type and
                // family set the kinds apart.
                let family = sock.inet.map_or(0, |v6| 1 + v6 as u64);
                let cookie = (sock.key as u64 + 1) | (sock.ty << 56) | (family << 60);
                Some(self.put_bytes_option(pid, a, &cookie.to_le_bytes(), 8))
            }
            SO_MAX_PACING_RATE if set => {
                let len = (a[4] as u32 as usize).min(8);
                let rate = match self
                    .space_mut(pid)
                    .and_then(|s| uaccess::read_vec(s, a[3], len))
                {
                    Ok(b) if b.len() == 8 => u64::from_le_bytes(b.try_into().unwrap_or_default()),
                    Ok(b) if b.len() >= 4 => match u32::from_le_bytes([b[0], b[1], b[2], b[3]]) {
                        u32::MAX => u64::MAX,
                        r => r as u64,
                    },
                    Ok(_) => return Some(err(EINVAL)),
                    Err(e) => return Some(err(e)),
                };
                self.sock_options
                    .entry(sock.key)
                    .or_default()
                    .insert((SOL_SOCKET, SO_MAX_PACING_RATE), rate);
                Some(Ret::Val(0))
            }
            SO_MAX_PACING_RATE => {
                let rate = self
                    .sock_option(sock.key, SOL_SOCKET, SO_MAX_PACING_RATE)
                    .unwrap_or(u64::MAX);
                // A buffer for a u32 gets it capped, as Linux gives it.
                let short = (rate.min(u32::MAX as u64) as u32).to_le_bytes();
                let room = self
                    .space_mut(pid)
                    .and_then(|s| uaccess::read_u32(s, a[4]))
                    .unwrap_or(0);
                Some(if room >= 8 {
                    self.put_bytes_option(pid, a, &rate.to_le_bytes(), 0)
                } else {
                    self.put_bytes_option(pid, a, &short, 0)
                })
            }
            SO_BINDTODEVICE if set => {
                if !capable(self, pmon::caps::NET_RAW) {
                    return Some(err(EPERM));
                }
                // IFNAMSIZ.
                let name = match self.option_name(pid, a, 16) {
                    Ok(n) => n,
                    Err(e) => return Some(err(e)),
                };
                let bound = match &name[..] {
                    b"" => 0,
                    b"lo" => 1,
                    _ => return Some(err(ENODEV)),
                };
                self.sock_options
                    .entry(sock.key)
                    .or_default()
                    .insert((SOL_SOCKET, SO_BINDTODEVICE), bound);
                Some(Ret::Val(0))
            }
            SO_BINDTODEVICE => {
                let name: &[u8] = match self.sock_option(sock.key, SOL_SOCKET, SO_BINDTODEVICE) {
                    Some(1) => b"lo\0",
                    _ => b"",
                };
                Some(self.put_bytes_option(pid, a, name, 0))
            }
            _ => None,
        }
    }

    /// The name a setsockopt `a` gives (SO_BINDTODEVICE, TCP_CONGESTION):
    /// at most `most` bytes of it, up to a NUL if there is one.
    fn option_name(&mut self, pid: Pid, a: [u64; 6], most: usize) -> Result<Vec<u8>, Errno> {
        let len = (a[4] as u32 as usize).min(most);
        let mut name = uaccess::read_vec(self.space_mut(pid)?, a[3], len)?;
        if let Some(end) = name.iter().position(|&c| c == 0) {
            name.truncate(end);
        }
        Ok(name)
    }

    /// A get's value of several bytes, cut to the caller's buffer;
    /// EINVAL for a buffer shorter than `least` or a negative length.
    fn put_bytes_option(&mut self, pid: Pid, a: [u64; 6], bytes: &[u8], least: usize) -> Ret {
        let r = self.space_mut(pid).and_then(|s| {
            let room = uaccess::read_u32(s, a[4])? as i32;
            if room < 0 || (room as usize) < least {
                return Err(EINVAL);
            }
            let len = (room as usize).min(bytes.len());
            uaccess::write(s, a[3], &bytes[..len])?;
            uaccess::write_u32(s, a[4], len as u32)
        });
        val(r.map(|_| 0))
    }

    /// SO_SNDBUF and SO_RCVBUF of a stream socket (`pmon::sockbuf`): kept
    /// as Linux keeps them, and a connection's directions sized by them.
    fn buffer_option(&mut self, pid: Pid, n: u64, a: [u64; 6], sock: Sock) -> Ret {
        let tcp = sock.inet.is_some();
        if n == nr::SETSOCKOPT {
            if a[4] < 4 {
                return err(EINVAL);
            }
            let v = match self.space_mut(pid).and_then(|s| uaccess::read_u32(s, a[3])) {
                Ok(v) => v,
                Err(e) => return err(e),
            };
            self.sock_options
                .entry(sock.key)
                .or_default()
                .insert((SOL_SOCKET, a[2]), pmon::sockbuf::stored(a[2], v));
            if let Some(tx) = sock.sends_into {
                self.apply_options(sock.key, tx);
            }
            return Ret::Val(0);
        }
        let v = self
            .sock_options
            .get(&sock.key)
            .and_then(|o| o.get(&(SOL_SOCKET, a[2])))
            .copied()
            .unwrap_or_else(|| pmon::sockbuf::default(a[2], tcp));
        self.put_int_option(pid, a, v as i32)
    }

    /// What the options of the two ends of the stream connection whose
    /// end receives from `rx` and sends into `tx` say of its directions:
    /// their sizes, from SO_SNDBUF and SO_RCVBUF (`pmon::sockbuf`), and
    /// whether each reader keeps urgent data in line (SO_OOBINLINE). The
    /// other end's options are keyed by the pipe it receives from, `tx`.
    pub(super) fn apply_options(&mut self, rx: usize, tx: usize) {
        for (pipe, sender, receiver) in [(tx, rx, tx), (rx, tx, rx)] {
            let opt = |key: usize, o: u64| {
                self.sock_options
                    .get(&key)
                    .and_then(|m| m.get(&(SOL_SOCKET, o)))
                    .copied()
            };
            let (send, receive) = (opt(sender, SO_SNDBUF), opt(receiver, SO_RCVBUF));
            let inline = opt(receiver, SO_OOBINLINE).is_some_and(|v| v != 0);
            let Some(p) = self.pipes.get_mut(&pipe) else {
                continue;
            };
            if p.mode() != Mode::Stream {
                continue;
            }
            p.hold(pmon::sockbuf::capacity(p.tcp, send, receive));
            p.oob_inline = inline;
            // Writers waiting for room look again.
            self.pipe_changed(pipe);
        }
    }

    /// SO_LINGER (a `struct linger`): kept as on, off and seconds; a TCP
    /// socket closed with it on at 0 seconds resets its connection
    /// (Linux's abortive close, [`linger_aborts`]).
    fn linger_option(&mut self, pid: Pid, n: u64, a: [u64; 6], key: usize) -> Ret {
        if n == nr::SETSOCKOPT {
            if a[4] < 8 {
                return err(EINVAL);
            }
            let l = match self
                .space_mut(pid)
                .and_then(|s| uaccess::read_vec(s, a[3], 8))
            {
                Ok(b) => b,
                Err(e) => return err(e),
            };
            let on = u32::from_le_bytes([l[0], l[1], l[2], l[3]]) != 0;
            // Turned off, it keeps the seconds it had (Linux's).
            let secs = if on {
                u32::from_le_bytes([l[4], l[5], l[6], l[7]])
            } else {
                self.sock_options
                    .get(&key)
                    .and_then(|o| o.get(&(SOL_SOCKET, SO_LINGER)))
                    .map_or(0, |&v| v as u32)
            };
            self.sock_options
                .entry(key)
                .or_default()
                .insert((SOL_SOCKET, SO_LINGER), ((on as u64) << 32) | secs as u64);
            return Ret::Val(0);
        }
        let v = self
            .sock_options
            .get(&key)
            .and_then(|o| o.get(&(SOL_SOCKET, SO_LINGER)))
            .copied()
            .unwrap_or(0);
        let mut l = [0u8; 8];
        l[..4].copy_from_slice(&((v >> 32) as u32).to_le_bytes());
        l[4..].copy_from_slice(&(v as u32).to_le_bytes());
        let r = self.space_mut(pid).and_then(|s| {
            let room = (uaccess::read_u32(s, a[4])? as usize).min(l.len());
            uaccess::write(s, a[3], &l[..room])?;
            uaccess::write_u32(s, a[4], room as u32)
        });
        val(r.map(|_| 0))
    }

    /// Whether socket `key` is set to linger 0 seconds: its close resets
    /// a TCP connection instead of ending it.
    pub(in crate::kernel) fn linger_aborts(&self, key: usize) -> bool {
        self.sock_options
            .get(&key)
            .and_then(|o| o.get(&(SOL_SOCKET, SO_LINGER)))
            .is_some_and(|&v| v == 1 << 32)
    }

    /// SO_RCVTIMEO and SO_SNDTIMEO (a `struct timeval`; 0: no limit):
    /// kept in ns for socket `key`; a wait to receive or send then ends
    /// with EAGAIN at that time ([`Self::io_deadline`]). EDOM for
    /// microseconds past a second, as Linux.
    fn socket_timeout_option(&mut self, pid: Pid, n: u64, a: [u64; 6], key: usize) -> Ret {
        if n == nr::SETSOCKOPT {
            let ns = match self.timeout_value(pid, a[3], a[4]) {
                Ok(ns) => ns,
                Err(e) => return err(e),
            };
            self.sock_options
                .entry(key)
                .or_default()
                .insert((SOL_SOCKET, a[2]), ns);
            return Ret::Val(0);
        }
        let ns = self
            .sock_options
            .get(&key)
            .and_then(|o| o.get(&(SOL_SOCKET, a[2])))
            .copied()
            .unwrap_or(0);
        self.put_timeout_option(pid, a, ns)
    }

    /// getsockopt's answer of a timeout of `ns` (0: none) as the `struct
    /// timeval` SO_RCVTIMEO and SO_SNDTIMEO give, cut to the caller's room.
    pub(super) fn put_timeout_option(&mut self, pid: Pid, a: [u64; 6], ns: u64) -> Ret {
        let tv: Vec<u8> = [ns / 1_000_000_000, (ns % 1_000_000_000) / 1000]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let r = self.space_mut(pid).and_then(|s| {
            let room = (uaccess::read_u32(s, a[4])? as usize).min(tv.len());
            uaccess::write(s, a[3], &tv[..room])?;
            uaccess::write_u32(s, a[4], room as u32)
        });
        val(r.map(|_| 0))
    }

    /// The `struct timeval` of an SO_RCVTIMEO or SO_SNDTIMEO a program
    /// sets (`len` bytes at `at`), in ns; 0 is no limit. Shared by every
    /// socket family, so each answers as Linux's `sock_set_timeout` does:
    /// EINVAL for a short option, EDOM for microseconds past a second,
    /// and a negative time taken as no limit.
    pub(super) fn timeout_value(&mut self, pid: Pid, at: u64, len: u64) -> Result<u64, Errno> {
        const EDOM: Errno = 33;
        if len < 16 {
            return Err(EINVAL);
        }
        let tv = uaccess::read_u64s::<2>(self.space_mut(pid)?, at)?;
        if tv[1] >= 1_000_000 {
            return Err(EDOM);
        }
        if (tv[0] as i64) < 0 {
            return Ok(0);
        }
        Ok(tv[0]
            .saturating_mul(1_000_000_000)
            .saturating_add(tv[1] * 1000))
    }

    /// When a wait of thread `tid` to receive from (or send into, `write`)
    /// `f` ends by its socket's SO_RCVTIMEO (SO_SNDTIMEO): the deadline
    /// and what the call then returns (EAGAIN); none for other files or
    /// without a limit. EAGAIN at once when the time has passed.
    pub(super) fn io_deadline(
        &mut self,
        tid: Tid,
        f: &OpenFile,
        write: bool,
    ) -> Result<(Option<u64>, Option<i64>), Errno> {
        let (Kind::Socket(rx, _) | Kind::UnixDgram(rx)) = f.kind else {
            return Ok((None, None));
        };
        let name = if write { SO_SNDTIMEO } else { SO_RCVTIMEO };
        let limit = self
            .sock_options
            .get(&rx)
            .and_then(|o| o.get(&(SOL_SOCKET, name)))
            .copied()
            .filter(|&ns| ns > 0);
        let Some(ns) = limit else {
            return Ok((None, None));
        };
        let deadline = self.wait_deadline(tid, Some(ns));
        if deadline.is_some_and(|d| d <= self.now_ns()) {
            return Err(EAGAIN);
        }
        Ok((deadline, Some(-EAGAIN)))
    }

    /// A sockaddr for `name` (None: just the family) into `addr`, as much
    /// as `*len` says fits; `*len` becomes its full length.
    pub(super) fn put_sockaddr(
        &mut self,
        pid: Pid,
        addr: u64,
        len: u64,
        name: Option<&Name>,
    ) -> Result<(), Errno> {
        let bytes = match name {
            Some(n) => n.sockaddr(),
            None => (AF_UNIX as u16).to_le_bytes().to_vec(),
        };
        let s = self.space_mut(pid)?;
        let room = address_room(s, len)?;
        uaccess::write(s, addr, &bytes[..room.min(bytes.len())])?;
        uaccess::write_u32(s, len, bytes.len() as u32)
    }

    /// The address a socket of family `v6` is given at `addr` (`len`
    /// bytes) to bind to (`bind`) or to connect to.
    fn sockaddr_inet(
        &mut self,
        pid: Pid,
        addr: u64,
        len: u64,
        v6: bool,
        bind: bool,
    ) -> Result<InetName, Errno> {
        if len > 128 {
            return Err(EINVAL);
        }
        let bytes = uaccess::read_vec(self.space_mut(pid)?, addr, len as usize)?;
        let name = pmon::inet::parse(&bytes, v6, bind)?;
        if bind {
            self.may_bind_port(pid, name.port)?;
        }
        Ok(name)
    }

    /// A port below 1024 is bound only with CAP_NET_BIND_SERVICE (EACCES),
    /// as Linux's ip_unprivileged_port_start has it by default.
    pub(super) fn may_bind_port(&self, pid: Pid, port: u16) -> Result<(), Errno> {
        let allowed = self
            .procs
            .get(&pid)
            .is_none_or(|p| p.cred.capable(pmon::caps::NET_BIND_SERVICE));
        if port != 0 && port < 1024 && !allowed {
            return Err(EACCES);
        }
        Ok(())
    }

    /// The name a `sockaddr_un` at `addr` (`len` bytes) gives, a path made
    /// absolute from the working directory; None: just the family.
    fn sockaddr_name(&mut self, pid: Pid, addr: u64, len: u64) -> Result<Option<Name>, Errno> {
        if !(2..=110).contains(&len) {
            return Err(EINVAL);
        }
        let bytes = uaccess::read_vec(self.space_mut(pid)?, addr, len as usize)?;
        Ok(match pmon::unixsock::parse_sockaddr(&bytes)? {
            None => None,
            Some(SockAddr::Abstract(a)) => Some(Name::Abstract(a)),
            Some(SockAddr::Path(p)) if p.is_empty() || self.in_removed_cwd(pid, &p) => {
                return Err(ENOENT)
            }
            Some(SockAddr::Path(p)) => {
                let (root, cwd) = self
                    .procs
                    .get(&pid)
                    .map(|p| (p.root.clone(), p.cwd.clone()))
                    .unwrap_or_else(|| (b"/".to_vec(), b"/".to_vec()));
                Some(Name::Path(pmon::path::resolve_in(&root, &cwd, &p)))
            }
        })
    }

    /// The calls on a socket that is not connected: bind, listen,
    /// connect, accept, and what a socket may be asked before.
    fn unconnected_call(
        &mut self,
        tid: Tid,
        f: &Arc<OpenFile>,
        id: usize,
        n: u64,
        a: [u64; 6],
    ) -> Ret {
        let pid = self.pid_of(tid);
        if !self.unix.exists(id) {
            // Connected through another descriptor of the same open file.
            return err(EISCONN);
        }
        let inet = self.unix.inet(id);
        match n {
            nr::BIND => val(self.unix_bind(pid, id, a[1], a[2]).map(|_| 0)),
            nr::LISTEN => {
                // An internet socket listens on a port of its own if it
                // was never bound, as Linux's does.
                if let (Some(v6), None) = (inet, self.unix.name_of(id)) {
                    if let Err(e) = self.unix.bind(id, Some(Name::Inet(InetName::unbound(v6)))) {
                        return err(e);
                    }
                }
                val(self.unix.listen(id, a[1] as i32, pid).map(|_| 0))
            }
            nr::CONNECT => self.unix_connect(tid, f, id, a),
            nr::ACCEPT => self.unix_accept(tid, f, id, a, 0),
            nr::ACCEPT4 => self.unix_accept(tid, f, id, a, a[3]),
            nr::GETSOCKNAME => {
                let name = match (self.unix.name_of(id).cloned(), inet) {
                    (None, Some(v6)) => Some(Name::Inet(InetName::unbound(v6))),
                    (name, _) => name,
                };
                val(self.put_sockaddr(pid, a[1], a[2], name.as_ref()).map(|_| 0))
            }
            nr::GETSOCKOPT | nr::SETSOCKOPT => {
                let sock = Sock {
                    ty: if self.unix.packets(id) {
                        SOCK_SEQPACKET
                    } else {
                        SOCK_STREAM
                    },
                    listening: self.unix.is_listening(id),
                    inet,
                    peer: None,
                    key: id,
                    sends_into: None,
                };
                self.socket_option(pid, n, a, sock)
            }
            nr::SHUTDOWN if a[1] > SHUT_RDWR => err(EINVAL),
            // A listener shut for reading takes no more connections; its
            // sleepers in accept wake to EINVAL.
            nr::SHUTDOWN if self.unix.is_listening(id) => {
                if a[1] != SHUT_WR {
                    let waiting = self.unix.stop_listening(id);
                    self.reset_waiting(waiting);
                    self.pipe_changed(id);
                }
                Ret::Val(0)
            }
            // Linux's AF_UNIX shutdown does not ask for a peer.
            nr::SHUTDOWN if inet.is_none() => {
                if a[1] != SHUT_WR {
                    self.unix.shut_reading(id);
                    self.pipe_changed(id);
                }
                Ret::Val(0)
            }
            // A TCP socket that never connected sends nothing: EPIPE and
            // SIGPIPE (unless MSG_NOSIGNAL), as Linux's tcp_sendmsg.
            nr::SENDTO | nr::SENDMSG | nr::SENDMMSG if inet.is_some() => {
                // A refused non-blocking connect says its error first.
                if let Some(e) = self.take_connect_error(id) {
                    return err(e);
                }
                let flags = if n == nr::SENDMSG { a[2] } else { a[3] };
                if flags & MSG_NOSIGNAL == 0 {
                    self.signal_thread(tid, SigInfo::user(SIGPIPE, SI_USER, 0));
                }
                err(EPIPE)
            }
            // Sending, receiving, shutting down or naming a peer needs one.
            _ => err(ENOTCONN),
        }
    }

    /// bind of socket `id` to the address at `addr` (`len` bytes): a path
    /// under /tmp makes a socket file; just the family, an abstract name
    /// of Linux's autobind form.
    fn unix_bind(&mut self, pid: Pid, id: usize, addr: u64, len: u64) -> Result<(), Errno> {
        let name = match self.unix.inet(id) {
            Some(v6) => Some(Name::Inet(self.sockaddr_inet(pid, addr, len, v6, true)?)),
            None => self.sockaddr_name(pid, addr, len)?,
        };
        self.unix.set_v6only(id, self.v6only_option(id));
        let reuseport = self.sock_option(id, SOL_SOCKET, SO_REUSEPORT);
        self.unix
            .set_reuseport(id, reuseport.is_some_and(|v| v != 0));
        match name {
            Some(Name::Path(p)) if super::tmp::below_tmp(&p).is_some() || self.on_storage(&p) => {
                self.bind_file(pid, id, p)
            }
            // Elsewhere the name is kept here alone (stat does not show
            // it; unlink removes it), as the socket file Linux makes: in a
            // directory that is there, and taken if a file has it already
            // (a directory: "//" is "/") or a socket has. Decided: a
            // closed socket's name is free again without an unlink, as
            // programs that look for the file with stat find none.
            Some(Name::Path(p)) => {
                self.socket_dir_there(&p)?;
                let name = Name::Path(p);
                if self.unix.named(&name).is_ok()
                    || matches!(&name, Name::Path(p) if self.file_exists(p))
                {
                    return Err(pmon::unixsock::EADDRINUSE);
                }
                self.unix.bind(id, Some(name))
            }
            name => self.unix.bind(id, name),
        }
    }

    /// IPV6_V6ONLY of socket `id`, which decides as it binds whether its
    /// port is apart from IPv4's.
    pub(super) fn v6only_option(&self, id: usize) -> bool {
        self.sock_option(id, IPPROTO_IPV6, IPV6_V6ONLY)
            .is_some_and(|v| v != 0)
    }

    /// The value socket `key` was given for option `name` of `level`, if
    /// it was set.
    pub(super) fn sock_option(&self, key: usize, level: u64, name: u64) -> Option<u64> {
        self.sock_options
            .get(&key)
            .and_then(|o| o.get(&(level, name)))
            .copied()
    }

    /// The directory a socket's path name `path` (absolute, outside
    /// /tmp) would be made in: ENOENT if missing, ENOTDIR if a file.
    fn socket_dir_there(&self, path: &[u8]) -> Result<(), Errno> {
        let Some(dir) = pmon::path::parent(path) else {
            return Ok(());
        };
        let mode = if self.on_storage(dir) {
            super::super::store::stat(dir, true)?.mode
        } else {
            host::stat_path(dir, true)?.mode
        };
        if mode & 0o170000 != 0o040000 {
            return Err(ENOTDIR);
        }
        Ok(())
    }

    /// Whether `path` (absolute, normalized, outside /tmp) names a file:
    /// on storage when it is storage's, else on the host.
    pub(super) fn file_exists(&self, path: &[u8]) -> bool {
        if self.on_storage(path) {
            return self.store_stat_path(path, false).is_ok();
        }
        host::stat_path(path, false).is_ok()
    }

    /// bind of socket `id` to `path` under /tmp or on storage: a socket
    /// file made there (EADDRINUSE if the name exists, as on Linux; ENOENT
    /// without its directory), which finds the socket from then on.
    fn bind_file(&mut self, pid: Pid, id: usize, path: Vec<u8>) -> Result<(), Errno> {
        // Linux makes the file before it looks at the socket: binding a
        // bound socket to its own path again is EADDRINUSE.
        if self.unix.name_of(id).is_some() {
            let exists = self.tmp_node(&path).is_some() || self.file_exists(&path);
            return Err(if exists {
                pmon::unixsock::EADDRINUSE
            } else {
                EINVAL
            });
        }
        let perm = 0o777 & !self.procs.get(&pid).map_or(0o022, |p| p.umask);
        let node = match self.make_node(pid, &path, super::fifo::S_IFSOCK_MODE, perm) {
            Ok(SpecialNode::Tmp(ino)) => ino,
            Ok(SpecialNode::Store(ino)) => STORE_NODE | ino,
            Err(EEXIST) => return Err(pmon::unixsock::EADDRINUSE),
            Err(e) => return Err(e),
        };
        self.unix.bind_node(id, Name::Path(path), node)
    }

    /// The socket a connect to `name` reaches: under /tmp, the one whose
    /// socket file the path leads to (ENOENT without a file, ECONNREFUSED
    /// for a file that is no socket's, the host's among them); elsewhere the one with the name
    /// (ECONNREFUSED for a file no socket has, as for one in /tmp).
    fn socket_at(&self, name: &Name) -> Result<usize, Errno> {
        match name {
            Name::Path(p) if super::tmp::below_tmp(p).is_some() => {
                let to = self.follow(p.clone())?;
                // A file of the host's /tmp showing through (a host
                // program's socket): no socket here has it.
                let ino = match self.tmp_node(&to) {
                    Some(ino) => ino,
                    None if self.file_exists(&to) => return Err(ECONNREFUSED),
                    None => return Err(ENOENT),
                };
                if !self.tmp.is_socket(ino) {
                    return Err(ECONNREFUSED);
                }
                self.unix.at_node(ino)
            }
            // On storage: the socket whose file the path leads to, as in
            // /tmp.
            Name::Path(p) if self.on_storage(p) => {
                let st = super::super::store::stat(p, true)?;
                if st.mode & 0o170000 != super::store::S_IFSOCK {
                    return Err(ECONNREFUSED);
                }
                self.unix.at_node(STORE_NODE | st.ino)
            }
            Name::Path(p) => match self.unix.named(name) {
                Err(ENOENT) if self.file_exists(p) => Err(ECONNREFUSED),
                found => found,
            },
            other => self.unix.named(other),
        }
    }

    /// connect: a connection queued at the listener the address names;
    /// the descriptor becomes the client's end of it. Waits while the
    /// listener's queue is full (EAGAIN if non-blocking).
    fn unix_connect(&mut self, tid: Tid, f: &Arc<OpenFile>, id: usize, a: [u64; 6]) -> Ret {
        let pid = self.pid_of(tid);
        let inet = self.unix.inet(id);
        let name = match inet {
            // A wildcard address is this host, as on Linux.
            Some(v6) => match self.sockaddr_inet(pid, a[1], a[2], v6, false) {
                Ok(n) => Name::Inet(n.local()),
                Err(e) => return err(e),
            },
            None => match self.sockaddr_name(pid, a[1], a[2]) {
                Ok(Some(n)) => n,
                Ok(None) => return err(EINVAL),
                Err(e) => return err(e),
            },
        };
        // A socket file is connected to only with write permission on it
        // (EACCES), as Linux's unix_find_bsd asks.
        if let (Name::Path(path), false) = (&name, self.overrides(pid)) {
            if let Err(e) = self
                .owned_at(path)
                .and_then(|o| self.may(pid, o, pmon::cred::MAY_WRITE))
            {
                if e == EACCES {
                    return err(e);
                }
            }
        }
        // A TCP connect's earlier failure, kept for its report.
        if let Some(e) = self.take_connect_error(id) {
            return err(e);
        }
        let packets = self.unix.packets(id);
        let listener = match self
            .socket_at(&name)
            .and_then(|t| self.unix.spread(t, &name, packets))
        {
            Ok(l) => l,
            Err(EAGAIN) if !f.nonblocking() => {
                // Its queue is full: an accept there makes room.
                let target = self.socket_at(&name).unwrap_or(id);
                self.block(tid, Wait::Pipe(target), None, None, OnWake::Retry);
                return Ret::Block;
            }
            // A non-blocking TCP connect does not wait for the answer, as
            // Linux's: EINPROGRESS, the refusal kept for SO_ERROR, poll
            // and the next connect.
            Err(e) if inet.is_some() && f.nonblocking() && e != EAGAIN => {
                self.sock_options
                    .entry(id)
                    .or_default()
                    .insert((SOL_SOCKET, SO_ERROR), e as u64);
                self.pipe_changed(id);
                return err(EINPROGRESS);
            }
            Err(e) => return err(e),
        };
        // Client to server, and back.
        let (up, down) = (self.next_pipe, self.next_pipe + 1);
        self.next_pipe += 2;
        let mode = if packets { Mode::Packets } else { Mode::Stream };
        // Each end sees the other's process as its peer: the server the
        // client, the client the process that made the server listen.
        let server = self.unix.owner(listener);
        let tcp = inet.is_some() && !packets;
        for (id, sender) in [(up, pid), (down, server)] {
            let mut p = Pipe::socket(mode, sender);
            p.tcp = tcp;
            self.pipes.insert(id, p);
        }
        // An internet client has an address of its own: its bound one on
        // the loopback, or a port of the ephemeral range.
        if let (Some(v6), None) = (inet, self.unix.name_of(id)) {
            if let Err(e) = self.unix.bind(id, Some(Name::Inet(InetName::unbound(v6)))) {
                self.pipes.remove(&up);
                self.pipes.remove(&down);
                return err(e);
            }
        }
        let own = match self.unix.name_of(id).cloned() {
            Some(Name::Inet(n)) => Some(Name::Inet(n.local())),
            other => other,
        };
        // A non-blocking TCP connect is not done at once on Linux: it
        // says EINPROGRESS, and the socket is writable when it is.
        let in_progress = inet.is_some() && f.nonblocking();
        let connecting = if in_progress { CONNECTING_FLAG } else { 0 };
        let client = OpenFile::new(
            Kind::Socket(down, up),
            O_RDWR | (f.flags.get() & O_NONBLOCK) | connecting,
        );
        let fd = a[0] as i32 as i64;
        // Every descriptor of the socket, in every process (dup, fork),
        // leads to the connection, as Linux's one open file does.
        let mut moved = Vec::new();
        for p in self.procs.values_mut() {
            moved.extend(p.fds.replace_file(f, &client));
        }
        if moved.is_empty() {
            self.pipes.remove(&up);
            self.pipes.remove(&down);
            return err(EBADF);
        }
        // What epoll watched on the socket, it watches on the connection
        // (interests know a file by its serial, as `fd_state` reports it);
        // its owner, signal and O_ASYNC (set before the connect, as by
        // F_SETOWN and F_SETFL) go with it too.
        let (from, to) = (f.serial as usize, client.serial as usize);
        for e in self.epolls.values_mut() {
            for &d in &moved {
                e.rebind(d as i32, from, to);
            }
        }
        client.owner.set(f.owner.get());
        client.sig.set(f.sig.get());
        if f.flags.get() & super::sigio::O_ASYNC != 0 {
            self.set_async(&client, fd, true);
        }
        // This socket is a connection now: it names nothing and takes
        // no connections; its options go with it.
        self.unix.close(id);
        if let Some(o) = self.sock_options.remove(&id) {
            self.sock_options.insert(down, o);
        }
        self.apply_options(down, up);
        self.unix_names
            .insert(down, (own.clone(), Some(name.clone())));
        self.unix.queue(listener, up, down, own);
        // The listener's accept and its pollers look again.
        self.pipe_changed(listener);
        if in_progress {
            return err(EINPROGRESS);
        }
        Ret::Val(0)
    }

    /// Receiving pipe `rx` of a socket shut for reading (SHUT_RD): its
    /// readers see the end past what it holds, and wake to it.
    pub(super) fn shut_for_reading(&mut self, rx: usize) {
        if let Some(p) = self.pipes.get_mut(&rx) {
            p.read_shut = true;
        }
        self.pipe_changed(rx);
    }

    /// The error a non-blocking TCP connect of unconnected socket `id`
    /// ended with, taken (SO_ERROR and the next connect report it once).
    pub(super) fn take_connect_error(&mut self, id: usize) -> Option<Errno> {
        let e = self
            .sock_options
            .get_mut(&id)?
            .remove(&(SOL_SOCKET, SO_ERROR))?;
        Some(e as Errno)
    }

    /// Whether unconnected socket `id` holds such an error (poll: POLLERR).
    pub(super) fn connect_failed(&self, id: usize) -> bool {
        self.sock_options
            .get(&id)
            .is_some_and(|o| o.contains_key(&(SOL_SOCKET, SO_ERROR)))
    }

    /// accept and accept4: the oldest connection queued, as a new
    /// descriptor; waits for one unless non-blocking.
    fn unix_accept(
        &mut self,
        tid: Tid,
        f: &Arc<OpenFile>,
        id: usize,
        a: [u64; 6],
        flags: u64,
    ) -> Ret {
        let pid = self.pid_of(tid);
        if !self.unix.is_listening(id) {
            return err(EINVAL);
        }
        if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
            return err(EINVAL);
        }
        let Some((rx, tx, client)) = self.unix.accept(id) else {
            if f.nonblocking() {
                return err(EAGAIN);
            }
            self.block(tid, Wait::Pipe(id), None, None, OnWake::Retry);
            return Ret::Block;
        };
        // A connect waiting for room in the queue tries again.
        self.wake_all(Wait::Pipe(id));
        let server = OpenFile::new(Kind::Socket(rx, tx), O_RDWR | nonblock(flags));
        let own = self.unix.name_of(id).cloned();
        // An internet connection's ends, each in the family of the socket
        // that asks: a v4 client of a v6 server is ::ffff:127.0.0.1.
        let (own, client) = match (own, client) {
            (Some(Name::Inet(s)), Some(Name::Inet(c))) => {
                let here = if s.v6() && !c.v6() {
                    c.seen_from(true).addr
                } else {
                    s.local().addr
                };
                let own = pmon::inet::InetName { addr: here, ..s };
                (Some(Name::Inet(own)), Some(Name::Inet(c.seen_from(s.v6()))))
            }
            other => other,
        };
        self.unix_names.insert(rx, (own, client.clone()));
        // An accepted socket starts with its listener's options, as
        // Linux's copy of the listening socket does.
        if let Some(o) = self.sock_options.get(&id).cloned() {
            self.sock_options.insert(rx, o);
        }
        self.apply_options(rx, tx);
        // The peer's address first: as on Linux, a bad buffer (EFAULT)
        // drops the connection rather than leave a descriptor unreported.
        let told = if a[1] != 0 && a[2] != 0 {
            self.put_sockaddr(pid, a[1], a[2], client.as_ref())
        } else {
            Ok(())
        };
        let installed = told.and_then(|()| {
            self.proc_mut(pid)
                .and_then(|p| p.fds.install(server.clone(), flags & SOCK_CLOEXEC != 0, 0))
        });
        match installed {
            Ok(fd) => Ret::Val(fd),
            Err(e) => {
                self.release_file(server);
                err(e)
            }
        }
    }

    /// send, sendto, sendmsg on a connected AF_UNIX socket: the bytes of
    /// `vecs`, with descriptors `rights` (SCM_RIGHTS) riding along.
    #[allow(clippy::too_many_arguments)]
    fn socket_send(
        &mut self,
        tid: Tid,
        f: &Arc<OpenFile>,
        tx: usize,
        vecs: &[(u64, usize)],
        flags: u64,
        rights: Vec<Arc<OpenFile>>,
        creds: Option<Ucred>,
    ) -> Ret {
        if let Kind::Socket(rx, _) = f.kind {
            if self.send_takes_reset(rx, tx) {
                return err(ECONNRESET);
            }
        }
        let (peer_gone, datagrams, peer_shut) =
            self.pipes.get(&tx).map_or((true, false, false), |p| {
                (p.refuses_send(), p.mode() == Mode::Datagrams, p.read_shut)
            });
        if flags & MSG_OOB != 0 {
            // Urgent data is a stream's (TCP, and AF_UNIX since Linux
            // 5.15): its last byte becomes the urgent byte.
            if self
                .pipes
                .get(&tx)
                .is_some_and(|p| p.mode() != Mode::Stream)
            {
                return err(EOPNOTSUPP);
            }
            let sent = self.socket_send(tid, f, tx, vecs, flags & !MSG_OOB, rights, creds);
            if let Ret::Val(n) = sent {
                if n > 0 {
                    if let Some(p) = self.pipes.get_mut(&tx) {
                        p.mark_urgent();
                    }
                    self.pipe_changed(tx);
                }
            }
            return sent;
        }
        // A datagram peer shut for reading: EPIPE without SIGPIPE, as
        // Linux's unix_dgram_sendmsg.
        if datagrams && peer_shut {
            return err(EPIPE);
        }
        if peer_gone && datagrams {
            return err(ECONNREFUSED);
        }
        if flags & MSG_NOSIGNAL != 0 && (peer_gone || pmon::fd::shut_for_writing(f)) {
            return err(EPIPE);
        }
        let nonblocking = f.nonblocking() || flags & MSG_DONTWAIT != 0;
        if nonblocking && !peer_gone && self.pipes.get(&tx).is_some_and(|p| !p.writable()) {
            return err(EAGAIN);
        }
        if rights.is_empty() && creds.is_none() {
            return self.write_from(tid, f, vecs, nonblocking);
        }
        if pmon::fd::shut_for_writing(f) {
            self.signal_thread(tid, SigInfo::user(SIGPIPE, SI_USER, 0));
            return err(EPIPE);
        }
        let total = Self::io_total(vecs).min(1 << 20);
        let data = match self.gather(self.pid_of(tid), vecs, 0, total) {
            Ok(d) => d,
            Err(e) => return err(e),
        };
        self.send_or_wait(tid, f, tx, &data, rights, nonblocking, None, creds)
    }

    /// `data` (with `rights`, sent by `from`) into socket pipe `dst`, or
    /// the caller parked until there is room: the call is made again then,
    /// or ends with EAGAIN at its SO_SNDTIMEO.
    #[allow(clippy::too_many_arguments)]
    fn send_or_wait(
        &mut self,
        tid: Tid,
        f: &Arc<OpenFile>,
        dst: usize,
        data: &[u8],
        rights: Vec<Arc<OpenFile>>,
        nonblocking: bool,
        from: Option<Name>,
        creds: Option<Ucred>,
    ) -> Ret {
        match self.pipe_send(tid, dst, data, rights, nonblocking, from, creds) {
            Ok(Some(n)) => Ret::Val(n as i64),
            Ok(None) => {
                let (deadline, on_timeout) = match self.io_deadline(tid, f, true) {
                    Ok(d) => d,
                    Err(e) => return err(e),
                };
                self.block(tid, Wait::Pipe(dst), deadline, on_timeout, OnWake::Retry);
                Ret::Block
            }
            Err(e) => err(e),
        }
    }

    /// The descriptors a sendmsg's control data passes (SCM_RIGHTS), each
    /// the caller's open file, and the credentials it claims
    /// (SCM_CREDENTIALS): EBADF for a descriptor it does not have, EPERM
    /// for credentials that are not its own (Linux's `scm_check_creds`),
    /// EINVAL for control data Linux refuses, ENOBUFS past its size limit.
    pub(super) fn rights_sent(
        &mut self,
        pid: Pid,
        hdr: &MsgHdr,
    ) -> Result<(Vec<Arc<OpenFile>>, Option<Ucred>), Errno> {
        if hdr.controllen == 0 {
            return Ok((Vec::new(), None));
        }
        if hdr.controllen > cmsg::MAX_CONTROL as u64 {
            return Err(ENOBUFS);
        }
        let control =
            uaccess::read_vec(self.space_mut(pid)?, hdr.control, hdr.controllen as usize)?;
        let fds = cmsg::rights(&control)?;
        let creds = cmsg::credentials(&control);
        if let Some(c) = creds {
            let cred = self.procs.get(&pid).map(|p| p.cred).unwrap_or_default();
            let own_pid = c.pid == pid || cred.capable(pmon::caps::SYS_ADMIN);
            if !own_pid || !cred.may_claim(c.uid, c.gid) {
                return Err(EPERM);
            }
        }
        let rights = fds
            .into_iter()
            .map(|fd| self.file(pid, fd as i64))
            .collect::<Result<_, _>>()?;
        Ok((rights, creds))
    }

    /// Who process `pid` is, as a message it sends says (its real user
    /// and group, as Linux's `scm_send`).
    pub(super) fn ucred_of(&self, pid: Pid) -> Ucred {
        match self.procs.get(&pid) {
            Some(p) => Ucred {
                pid,
                uid: p.cred.uid.real,
                gid: p.cred.gid.real,
            },
            None => Ucred::UNKNOWN,
        }
    }

    /// recv, recvfrom, recvmsg on a connected AF_UNIX socket: what one read
    /// takes (a stream's bytes up to the end of those that carried
    /// descriptors, or one message), copied into `vecs` before anything is
    /// taken, so a bad buffer loses nothing. For recvmsg (`msg`: the
    /// msghdr's address and fields) the descriptors that came are
    /// installed as far as its control buffer has room (the rest closed,
    /// MSG_CTRUNC) and a cut message says MSG_TRUNC; otherwise they are
    /// closed, as Linux closes them. MSG_PEEK leaves everything queued (the
    /// descriptors are installed all the same); MSG_WAITALL waits for the
    /// whole buffer on a stream when it fits the pipe; MSG_TRUNC returns a
    /// message's whole length. `from` (an address buffer and where its
    /// length is) gets the message's sender: its name, or an empty
    /// address for an unnamed one, as Linux gives it.
    #[allow(clippy::too_many_arguments)]
    fn socket_recv(
        &mut self,
        tid: Tid,
        f: &Arc<OpenFile>,
        rx: usize,
        vecs: &[(u64, usize)],
        flags: u64,
        msg: Option<(u64, MsgHdr)>,
        from: Option<(u64, u64)>,
    ) -> Ret {
        let pid = self.pid_of(tid);
        let peek = flags & MSG_PEEK != 0;
        let nonblocking = f.nonblocking() || flags & MSG_DONTWAIT != 0;
        let total = Self::io_total(vecs).min(1 << 20);
        let Some(p) = self.pipes.get_mut(&rx) else {
            return Ret::Val(0);
        };
        let stream = p.mode() == Mode::Stream;
        if flags & MSG_ERRQUEUE != 0 && p.tcp {
            return err(EAGAIN);
        }
        if flags & MSG_OOB != 0 {
            let asked = (flags & MSG_CMSG_CLOEXEC) as u32;
            return self.recv_urgent(pid, rx, vecs, peek, msg.map(|(at, _)| (at, asked)));
        }
        let short = stream && p.len() < total && total <= p.capacity() && !p.hung_up();
        let wait = if flags & MSG_WAITALL != 0 && !peek && !nonblocking && short {
            Err(pmon::pipe::Io::Wait)
        } else {
            p.take(total, true)
        };
        let seen = match wait {
            Ok(t) => t,
            Err(pmon::pipe::Io::Reset) => return err(ECONNRESET),
            Err(pmon::pipe::Io::Wait) if nonblocking => return err(EAGAIN),
            Err(_) => {
                let (deadline, on_timeout) = match self.io_deadline(tid, f, false) {
                    Ok(d) => d,
                    Err(e) => return err(e),
                };
                self.block(tid, Wait::Pipe(rx), deadline, on_timeout, OnWake::Retry);
                return Ret::Block;
            }
        };
        let copied = match self.scatter(pid, vecs, 0, &seen.data) {
            Ok(()) => seen.data.len(),
            Err((0, e)) if !seen.data.is_empty() => return err(e),
            Err((put, _)) => put,
        };
        let whole = seen.whole;
        let sent_by = seen.creds;
        if let Some((addr, len)) = from {
            let told = match &seen.from {
                Some(name) => self.put_sockaddr(pid, addr, len, Some(name)),
                None => self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write_u32(s, len, 0)),
            };
            if let Err(e) = told {
                return err(e);
            }
        }
        let rights = if peek {
            seen.rights
        } else {
            drop(seen.rights);
            let taken = self
                .pipes
                .get_mut(&rx)
                .and_then(|p| p.take(copied, false).ok())
                .unwrap_or_default();
            self.pipe_changed(rx);
            taken.rights
        };
        let mut out_flags = (flags & MSG_CMSG_CLOEXEC) as u32;
        if !stream && copied < whole {
            out_flags |= MSG_TRUNC as u32;
        }
        match msg {
            Some((at, hdr)) => {
                let cloexec = flags & MSG_CMSG_CLOEXEC != 0;
                // SO_PASSCRED: who sent it comes first, as Linux's
                // scm_recv puts it before the descriptors.
                let creds = match self.passes_creds(rx) {
                    true => Some(sent_by.unwrap_or_else(|| self.stream_sender(rx))),
                    false => None,
                };
                let (before, creds_cut) = match creds {
                    Some(c) => {
                        let mut out = Vec::new();
                        let whole = cmsg::put(
                            &mut out,
                            hdr.controllen as usize,
                            cmsg::SOL_SOCKET,
                            cmsg::SCM_CREDENTIALS,
                            &c.bytes(),
                        );
                        // A bad buffer loses the credentials, not the
                        // bytes already taken (Linux's put_cmsg failing).
                        match self
                            .space_mut(pid)
                            .and_then(|s| uaccess::write(s, hdr.control, &out))
                        {
                            Ok(()) => (out.len(), !whole),
                            Err(_) => (0, true),
                        }
                    }
                    None => (0, false),
                };
                let rest = MsgHdr {
                    control: hdr.control + before as u64,
                    controllen: hdr.controllen.saturating_sub(before as u64),
                    ..hdr
                };
                let (control, cut) = self.install_rights(pid, rights, &rest, cloexec);
                let control = control + before;
                if cut || creds_cut {
                    out_flags |= MSG_CTRUNC;
                }
                let r = self.space_mut(pid).and_then(|s| {
                    uaccess::write_u64(s, at + 40, control as u64)?;
                    uaccess::write_u32(s, at + 48, out_flags)
                });
                if let Err(e) = r {
                    return err(e);
                }
            }
            None => {
                for r in rights {
                    self.release_file(r);
                }
            }
        }
        if flags & MSG_TRUNC != 0 && !stream {
            Ret::Val(whole as i64)
        } else {
            Ret::Val(copied as i64)
        }
    }

    /// recv with MSG_OOB on a connected socket: the urgent byte
    /// (`pmon::pipe`), never waited for; EINVAL when there is none to
    /// take, as Linux's TCP answers, and EOPNOTSUPP on a message socket.
    /// recvmsg (`msg`: the msghdr's address and the flags it says back)
    /// says MSG_OOB in its flags.
    fn recv_urgent(
        &mut self,
        pid: Pid,
        rx: usize,
        vecs: &[(u64, usize)],
        peek: bool,
        msg: Option<(u64, u32)>,
    ) -> Ret {
        let Some(p) = self.pipes.get_mut(&rx) else {
            return err(EINVAL);
        };
        if p.mode() != Mode::Stream {
            return err(EOPNOTSUPP);
        }
        let Some(byte) = p.take_urgent(true) else {
            return err(EINVAL);
        };
        // Copied before it is taken: a bad buffer loses nothing.
        let want = Self::io_total(vecs) > 0;
        if want {
            if let Err((_, e)) = self.scatter(pid, vecs, 0, &[byte]) {
                return err(e);
            }
        }
        if !peek {
            if let Some(p) = self.pipes.get_mut(&rx) {
                p.take_urgent(false);
            }
            self.pipe_changed(rx);
        }
        if let Some((at, asked)) = msg {
            let out_flags = asked | MSG_OOB as u32 | if want { 0 } else { MSG_TRUNC as u32 };
            let r = self.space_mut(pid).and_then(|s| {
                uaccess::write_u64(s, at + 40, 0)?;
                uaccess::write_u32(s, at + 48, out_flags)
            });
            if let Err(e) = r {
                return err(e);
            }
        }
        Ret::Val(want as i64)
    }

    /// Whether the socket reading pipe `rx` asked for its senders'
    /// credentials (SO_PASSCRED).
    fn passes_creds(&self, rx: usize) -> bool {
        self.sock_options
            .get(&rx)
            .and_then(|o| o.get(&(SOL_SOCKET, SO_PASSCRED)))
            .is_some_and(|&v| v != 0)
    }

    /// Who sends into stream pipe `rx` when its bytes did not say: the
    /// process at its other end now.
    fn stream_sender(&self, rx: usize) -> Ucred {
        match self.pipes.get(&rx).map(|p| p.sender) {
            Some(pid) if pid != 0 => self.ucred_of(pid),
            _ => Ucred::UNKNOWN,
        }
    }

    /// Descriptors received into the caller's table and named in its
    /// control buffer, as many as both have room for; the others are
    /// closed. The control bytes written, and whether some were cut.
    fn install_rights(
        &mut self,
        pid: Pid,
        rights: Vec<Arc<OpenFile>>,
        hdr: &MsgHdr,
        cloexec: bool,
    ) -> (usize, bool) {
        if rights.is_empty() {
            return (0, false);
        }
        let room = cmsg::room(hdr.controllen as usize);
        let mut fds = Vec::new();
        let mut left = Vec::new();
        for r in rights {
            let installed = if fds.len() < room {
                self.proc_mut(pid)
                    .and_then(|p| p.fds.install(r.clone(), cloexec, 0))
                    .ok()
            } else {
                None
            };
            match installed {
                Some(fd) => fds.push(fd as i32),
                None => left.push(r),
            }
        }
        let message = cmsg::rights_message(&fds, hdr.controllen as usize);
        let written = self
            .space_mut(pid)
            .and_then(|s| uaccess::write(s, hdr.control, &message));
        if written.is_err() {
            // The buffer is bad: the descriptors are not the caller's.
            for fd in fds.drain(..) {
                if let Ok(f) = self.proc_mut(pid).and_then(|p| p.fds.close(fd as i64)) {
                    self.release_file(f);
                }
            }
        }
        let cut = !left.is_empty() || written.is_err();
        for r in left {
            self.release_file(r);
        }
        (if fds.is_empty() { 0 } else { message.len() }, cut)
    }
}

/// The fields of a `struct msghdr` the socket calls use.
pub(super) struct MsgHdr {
    pub name: u64,
    pub namelen: u64,
    pub iov: u64,
    pub iovlen: u64,
    pub control: u64,
    pub controllen: u64,
}

/// What getsockopt says of a socket.
pub(super) struct Sock {
    pub ty: u64,
    pub listening: bool,
    /// Some(is IPv6) for an internet socket.
    pub inet: Option<bool>,
    /// The process at the other end (SO_PEERCRED), if connected.
    pub peer: Option<Pid>,
    /// The pipe a connected socket sends into.
    pub sends_into: Option<usize>,
    /// Its options' key in `sock_options`.
    pub key: usize,
}

const TCP_MAXSEG: u64 = 2;
const TCP_KEEPIDLE: u64 = 4;
const TCP_KEEPINTVL: u64 = 5;
const TCP_KEEPCNT: u64 = 6;
const TCP_INFO: u64 = 11;
const TCP_CONGESTION: u64 = 13;
const TCP_FASTOPEN: u64 = 23;
/// The congestion controls Linux offers by default (TCP_CONGESTION):
/// what a set may name, kept by index.
const CONGESTION: [&[u8]; 2] = [b"cubic", b"reno"];
/// Linux's `struct tcp_info` as 6.x has it (a shorter buffer gets its
/// start).
const TCP_INFO_LEN: usize = 248;

/// O_NONBLOCK if a socket's type (or accept4's flags) asks for it.
impl Kernel {
    /// The TCP options that are more than a number kept: the keepalive
    /// times' bounds and defaults, the segment size, the congestion
    /// control's name, TCP_INFO. None: kept as any other.
    fn tcp_option(&mut self, pid: Pid, n: u64, a: [u64; 6], sock: &Sock) -> Option<Ret> {
        let connected = sock.sends_into.is_some();
        if n == nr::SETSOCKOPT {
            let max = match a[2] {
                TCP_KEEPIDLE | TCP_KEEPINTVL => Some(32767),
                TCP_KEEPCNT => Some(127),
                _ => None,
            };
            if let Some(max) = max {
                if a[4] < 4 {
                    return Some(err(EINVAL));
                }
                return match self.space_mut(pid).and_then(|s| uaccess::read_u32(s, a[3])) {
                    Ok(v) if (1..=max).contains(&v) => None,
                    Ok(_) => Some(err(EINVAL)),
                    Err(e) => Some(err(e)),
                };
            }
            return match a[2] {
                TCP_INFO => Some(err(ENOPROTOOPT)),
                // Linux's fastopen is set before a listen or a connect.
                TCP_FASTOPEN if connected => Some(err(EINVAL)),
                TCP_CONGESTION => {
                    let name = match self.option_name(pid, a, 15) {
                        Ok(n) => n,
                        Err(e) => return Some(err(e)),
                    };
                    match CONGESTION.iter().position(|c| *c == &name[..]) {
                        Some(i) => {
                            self.sock_options
                                .entry(sock.key)
                                .or_default()
                                .insert((IPPROTO_TCP, TCP_CONGESTION), i as u64);
                            Some(Ret::Val(0))
                        }
                        None => Some(err(ENOENT)),
                    }
                }
                _ => None,
            };
        }
        let kept = self.sock_option(sock.key, IPPROTO_TCP, a[2]);
        let bytes: Vec<u8> = match a[2] {
            TCP_KEEPIDLE | TCP_KEEPINTVL | TCP_KEEPCNT if kept.is_none() => {
                let v: u32 = match a[2] {
                    TCP_KEEPIDLE => 7200,
                    TCP_KEEPINTVL => 75,
                    _ => 9,
                };
                v.to_le_bytes().to_vec()
            }
            // The loopback's: its MTU less the headers and timestamps, or
            // Linux's default before a connection.
            TCP_MAXSEG if kept.is_none() => {
                let mss: u32 = if connected { 65483 } else { 536 };
                mss.to_le_bytes().to_vec()
            }
            TCP_CONGESTION => {
                let name = CONGESTION[kept.unwrap_or(0) as usize % CONGESTION.len()];
                let mut b = alloc::vec![0u8; 16];
                b[..name.len()].copy_from_slice(name);
                b
            }
            TCP_INFO => self.tcp_info(sock),
            _ => return None,
        };
        let r = self.space_mut(pid).and_then(|s| {
            let room = uaccess::read_u32(s, a[4])? as usize;
            let len = room.min(bytes.len());
            uaccess::write(s, a[3], &bytes[..len])?;
            uaccess::write_u32(s, a[4], len as u32)
        });
        Some(val(r.map(|_| 0)))
    }

    /// `struct tcp_info` of a socket: its state, and the loopback's
    /// constants Linux gives (segment sizes, MTU, window); decided: the
    /// timers and round-trip times are 0, as the bytes move between pipes.
    fn tcp_info(&self, sock: &Sock) -> Vec<u8> {
        let mut b = alloc::vec![0u8; TCP_INFO_LEN];
        let state = if sock.listening {
            pmon::procnet::TCP_LISTEN
        } else if sock.sends_into.is_none() {
            7
        } else if self.pipes.get(&sock.key).is_none_or(|p| p.ended()) {
            pmon::procnet::TCP_CLOSE_WAIT
        } else {
            pmon::procnet::TCP_ESTABLISHED
        };
        b[0] = state;
        let mut put = |at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        if sock.sends_into.is_some() {
            put(16, 65483); // snd_mss
            put(20, 65483); // rcv_mss
            put(60, 65535); // pmtu
            put(64, 65483); // rcv_ssthresh
            put(76, 0x7fff_ffff); // snd_ssthresh
            put(80, 10); // snd_cwnd
            put(84, 65483); // advmss
            put(88, 3); // reordering
        }
        b
    }
    /// A new socket of `kind` for process `pid`, as socket()'s `ty` asks
    /// (SOCK_NONBLOCK, SOCK_CLOEXEC): its descriptor. On an error the
    /// caller forgets what it made for it.
    pub(super) fn install_socket(&mut self, pid: Pid, kind: Kind, ty: u64) -> Result<i64, Errno> {
        let file = OpenFile::new(kind, O_RDWR | nonblock(ty));
        self.proc_mut(pid)
            .and_then(|p| p.fds.install(file, ty & SOCK_CLOEXEC != 0, 0))
    }
}

fn nonblock(ty: u64) -> u32 {
    if ty & SOCK_NONBLOCK != 0 {
        O_NONBLOCK
    } else {
        0
    }
}

/// The room a caller gives for an address (the int at `len`, as Linux's
/// move_addr_to_user reads it): a negative one is EINVAL.
pub(super) fn address_room(s: &mut dyn uaccess::UserSpace, len: u64) -> Result<usize, Errno> {
    match uaccess::read_u32(s, len)? as i32 {
        n if n < 0 => Err(EINVAL),
        n => Ok(n as usize),
    }
}
