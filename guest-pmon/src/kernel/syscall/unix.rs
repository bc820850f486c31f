//! AF_UNIX stream sockets. socketpair: two connected ends, each a pair of
//! the monitor's pipes (one to receive from, one to send into), so they
//! read, write, poll, block and end as pipes do. Event loops make one to
//! wake themselves (tokio's signal and process handling, for one).
//! socket, bind, listen, connect and accept: the same ends, made when a
//! connection is accepted into a listener's queue, between processes of
//! this processor (names: [`pmon::unixsock`]). AF_INET and AF_INET6
//! stream sockets are the same connections, named by loopback addresses
//! and ports ([`pmon::inet`]): the processes of a processor reach each
//! other at 127.0.0.1 and ::1; no other network is given to processes
//! (another address is ENETUNREACH), and datagram sockets are not served
//! (EPROTONOSUPPORT: pipes keep no message boundaries). The calls that
//! take a descriptor answer ENOTSOCK for anything else, as Linux does.

use pmon::fd::SHUT_WR_FLAG;
use pmon::inet::InetName;
use pmon::unixsock::{Name, SockAddr};

use super::*;

const AF_UNIX: u64 = 1;
const AF_INET: u64 = 2;
const AF_INET6: u64 = 10;
const SOCK_STREAM: u64 = 1;
const SOCK_NONBLOCK: u64 = 0o4000;
const SOCK_CLOEXEC: u64 = 0o2000000;
pub(super) const SOL_SOCKET: u64 = 1;
pub(super) const SO_TYPE: u64 = 3;
pub(super) const SO_ERROR: u64 = 4;
pub(super) const SO_SNDBUF: u64 = 7;
pub(super) const SO_RCVBUF: u64 = 8;
pub(super) const MSG_DONTWAIT: u64 = 0x40;
const MSG_NOSIGNAL: u64 = 0x4000;
const ENOTSOCK: Errno = 88;
const EPROTONOSUPPORT: Errno = 93;
pub(super) const EOPNOTSUPP: Errno = 95;
const EAFNOSUPPORT: Errno = 97;
const EISCONN: Errno = 106;
pub(super) const ENOTCONN: Errno = 107;
pub(super) const ENOPROTOOPT: Errno = 92;
const SO_ACCEPTCONN: u64 = 30;
pub(super) const SO_PROTOCOL: u64 = 38;
pub(super) const SO_DOMAIN: u64 = 39;
const IPPROTO_IP: u64 = 0;
const IPPROTO_TCP: u64 = 6;
const IPPROTO_IPV6: u64 = 41;
const IPPROTO_UDP: u64 = 17;
const SOCK_DGRAM: u64 = 2;

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
            // Internet sockets have no pairs.
            AF_INET | AF_INET6 => return err(EOPNOTSUPP),
            _ => return err(EAFNOSUPPORT),
        }
        if ty & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != SOCK_STREAM {
            // Datagram and sequenced sockets keep message boundaries,
            // which pipes do not.
            return err(EPROTONOSUPPORT);
        }
        if protocol != 0 {
            return err(EPROTONOSUPPORT);
        }
        let (a, b) = (self.next_pipe, self.next_pipe + 1);
        self.next_pipe += 2;
        for id in [a, b] {
            let mut p = Pipe::new();
            (p.readers, p.writers) = (1, 1);
            self.pipes.insert(id, p);
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
            _ => return err(EAFNOSUPPORT),
        };
        if let (Some(v6), SOCK_DGRAM) = (inet, ty & !(SOCK_NONBLOCK | SOCK_CLOEXEC)) {
            if protocol != 0 && protocol != IPPROTO_UDP {
                return err(EPROTONOSUPPORT);
            }
            return self.sys_udp_socket(pid, v6, ty);
        }
        if ty & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != SOCK_STREAM {
            // AF_UNIX datagram and sequenced sockets keep message
            // boundaries, which pipes do not.
            return err(EPROTONOSUPPORT);
        }
        if protocol != 0 && !(inet.is_some() && protocol == IPPROTO_TCP) {
            return err(EPROTONOSUPPORT);
        }
        let id = self.next_pipe;
        self.next_pipe += 1;
        match inet {
            Some(v6) => self.unix.open_inet(id, v6),
            None => self.unix.open(id),
        }
        let nb = nonblock(ty);
        let file = OpenFile::new(Kind::Unix(id), O_RDWR | nb);
        match self
            .proc_mut(pid)
            .and_then(|p| p.fds.install(file, ty & SOCK_CLOEXEC != 0, 0))
        {
            Ok(fd) => Ret::Val(fd),
            Err(e) => {
                self.unix.close(id);
                err(e)
            }
        }
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
            Kind::Dgram(id) => return self.udp_call(tid, &f, id, n, a),
            _ => return err(ENOTSOCK),
        };
        match n {
            nr::SENDTO => self.socket_send(tid, &f, tx, &[(a[1], a[2] as usize)], a[3]),
            nr::RECVFROM => {
                if a[4] != 0 && a[5] != 0 {
                    // No address: the peer is unnamed.
                    if let Err(e) = self
                        .space_mut(pid)
                        .and_then(|s| uaccess::write_u32(s, a[5], 0))
                    {
                        return err(e);
                    }
                }
                self.socket_recv(tid, &f, rx, &[(a[1], a[2] as usize)], a[3])
            }
            nr::SENDMSG | nr::RECVMSG => {
                let (hdr, vecs) = match self.msghdr(pid, a[1]) {
                    Ok(h) => h,
                    Err(e) => return err(e),
                };
                let controllen = hdr.controllen;
                if n == nr::SENDMSG {
                    // Passing descriptors or credentials (control data)
                    // is not served.
                    if controllen != 0 {
                        return err(EOPNOTSUPP);
                    }
                    return self.socket_send(tid, &f, tx, &vecs, a[2]);
                }
                // Nothing comes with the bytes: no address, no control
                // data, no flags.
                let clear = |k: &mut Kernel| -> Result<(), Errno> {
                    let s = k.space_mut(pid)?;
                    uaccess::write_u32(s, a[1] + 8, 0)?;
                    uaccess::write_u64(s, a[1] + 40, 0)?;
                    uaccess::write_u32(s, a[1] + 48, 0)
                };
                if let Err(e) = clear(self) {
                    return err(e);
                }
                self.socket_recv(tid, &f, rx, &vecs, a[2])
            }
            nr::SHUTDOWN => match a[1] {
                0 => Ret::Val(0),
                1 | 2 => {
                    if f.flags.get() & SHUT_WR_FLAG == 0 {
                        f.flags.set(f.flags.get() | SHUT_WR_FLAG);
                        if let Some(p) = self.pipes.get_mut(&tx) {
                            p.writers = p.writers.saturating_sub(1);
                        }
                        self.pipe_changed(tx);
                    }
                    Ret::Val(0)
                }
                _ => err(EINVAL),
            },
            nr::GETSOCKOPT | nr::SETSOCKOPT => {
                let inet = match self.unix_names.get(&rx) {
                    Some((Some(Name::Inet(n)), _)) => Some(n.v6()),
                    _ => None,
                };
                self.socket_option(pid, n, a, false, inet)
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
            // Connecting, binding, listening: these ends are connected.
            nr::CONNECT => err(EISCONN),
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
        let hdr = MsgHdr {
            name: word(0),
            namelen: word(8) as u32 as u64,
            iov: word(16),
            iovlen: word(24),
            controllen: word(40),
        };
        if hdr.iovlen > 1024 {
            return Err(EINVAL);
        }
        let vecs = self.iovecs(pid, hdr.iov, hdr.iovlen as usize)?;
        Ok((hdr, vecs))
    }

    /// getsockopt and setsockopt at SOL_SOCKET: the type, the family, no
    /// pending error, whether it listens, the pipes' size; what is set
    /// (buffer sizes and the like) is taken and has no effect. An internet
    /// socket also takes TCP's and IP's options (TCP_NODELAY, IP_TOS and
    /// the like), which a loopback made of pipes has no use for; reading
    /// one gives 0.
    fn socket_option(
        &mut self,
        pid: Pid,
        n: u64,
        a: [u64; 6],
        listening: bool,
        inet: Option<bool>,
    ) -> Ret {
        let ip_level = matches!(a[1], IPPROTO_IP | IPPROTO_TCP | IPPROTO_IPV6);
        if a[1] != SOL_SOCKET && !(inet.is_some() && ip_level) {
            return err(ENOPROTOOPT);
        }
        if n == nr::SETSOCKOPT {
            return Ret::Val(0);
        }
        let v: u32 = match a[2] {
            _ if a[1] != SOL_SOCKET => 0,
            SO_TYPE => SOCK_STREAM as u32,
            SO_ERROR => 0,
            SO_ACCEPTCONN => listening as u32,
            SO_SNDBUF | SO_RCVBUF => pmon::pipe::CAPACITY as u32,
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
        let r = self.space_mut(pid).and_then(|s| {
            uaccess::write_u32(s, a[3], v)?;
            uaccess::write_u32(s, a[4], 4)
        });
        val(r.map(|_| 0))
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
        let room = uaccess::read_u32(s, len)? as usize;
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
        pmon::inet::parse(&bytes, v6, bind)
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
            Some(SockAddr::Path(p)) if p.is_empty() => return Err(ENOENT),
            Some(SockAddr::Path(p)) => {
                let cwd = self
                    .procs
                    .get(&pid)
                    .map(|p| p.cwd.clone())
                    .unwrap_or_default();
                Some(Name::Path(pmon::path::resolve(&cwd, &p)))
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
            nr::BIND => {
                let name = match inet {
                    Some(v6) => self
                        .sockaddr_inet(pid, a[1], a[2], v6, true)
                        .map(|n| Some(Name::Inet(n))),
                    None => self.sockaddr_name(pid, a[1], a[2]),
                };
                match name {
                    Ok(name) => val(self.unix.bind(id, name).map(|_| 0)),
                    Err(e) => err(e),
                }
            }
            nr::LISTEN => {
                // An internet socket listens on a port of its own if it
                // was never bound, as Linux's does.
                if let (Some(v6), None) = (inet, self.unix.name_of(id)) {
                    if let Err(e) = self.unix.bind(id, Some(Name::Inet(InetName::unbound(v6)))) {
                        return err(e);
                    }
                }
                val(self.unix.listen(id, a[1] as i32).map(|_| 0))
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
                let listening = self.unix.is_listening(id);
                self.socket_option(pid, n, a, listening, inet)
            }
            // Sending, receiving, shutting down or naming a peer needs one.
            _ => err(ENOTCONN),
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
        let listener = match self.unix.listener(&name) {
            Ok(l) => l,
            Err(EAGAIN) if !f.nonblocking() => {
                // Its queue is full: an accept there makes room.
                if let Ok(l) = self.unix.listening_at(&name) {
                    self.block(tid, Wait::Pipe(l), None, None, OnWake::Retry);
                    return Ret::Block;
                }
                return err(EAGAIN);
            }
            Err(e) => return err(e),
        };
        // Client to server, and back.
        let (up, down) = (self.next_pipe, self.next_pipe + 1);
        self.next_pipe += 2;
        for p in [up, down] {
            let mut pipe = Pipe::new();
            (pipe.readers, pipe.writers) = (1, 1);
            self.pipes.insert(p, pipe);
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
        let client = OpenFile::new(
            Kind::Socket(down, up),
            O_RDWR | (f.flags.get() & O_NONBLOCK),
        );
        let fd = a[0] as i32 as i64;
        let replaced = self.proc_mut(pid).and_then(|p| {
            let cloexec = p.fds.cloexec(fd)?;
            p.fds.install_at(fd as usize, client, cloexec)
        });
        if let Err(e) = replaced {
            self.pipes.remove(&up);
            self.pipes.remove(&down);
            return err(e);
        }
        // This socket is a connection now: it names nothing and takes
        // no connections.
        self.unix.close(id);
        self.unix_names
            .insert(down, (own.clone(), Some(name.clone())));
        self.unix.queue(listener, up, down, own);
        // The listener's accept and its pollers look again.
        self.pipe_changed(listener);
        Ret::Val(0)
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

    fn socket_send(
        &mut self,
        tid: Tid,
        f: &Arc<OpenFile>,
        tx: usize,
        vecs: &[(u64, usize)],
        flags: u64,
    ) -> Ret {
        let peer_gone = self.pipes.get(&tx).is_none_or(|p| p.readers == 0);
        if flags & MSG_NOSIGNAL != 0 && (peer_gone || pmon::fd::shut_for_writing(f)) {
            return err(EPIPE);
        }
        if flags & MSG_DONTWAIT != 0
            && !peer_gone
            && self.pipes.get(&tx).is_some_and(|p| !p.writable())
        {
            return err(EAGAIN);
        }
        self.write_from(tid, f, vecs)
    }

    fn socket_recv(
        &mut self,
        tid: Tid,
        f: &Arc<OpenFile>,
        rx: usize,
        vecs: &[(u64, usize)],
        flags: u64,
    ) -> Ret {
        if flags & MSG_DONTWAIT != 0
            && self
                .pipes
                .get(&rx)
                .is_some_and(|p| !p.readable() && p.writers > 0)
        {
            return err(EAGAIN);
        }
        self.read_into(tid, f, vecs)
    }
}

/// The fields of a `struct msghdr` the socket calls use.
pub(super) struct MsgHdr {
    pub name: u64,
    pub namelen: u64,
    pub iov: u64,
    pub iovlen: u64,
    pub controllen: u64,
}

/// O_NONBLOCK if a socket's type (or accept4's flags) asks for it.
fn nonblock(ty: u64) -> u32 {
    if ty & SOCK_NONBLOCK != 0 {
        O_NONBLOCK
    } else {
        0
    }
}
