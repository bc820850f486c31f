//! UDP sockets on the loopback (`socket(AF_INET or AF_INET6, SOCK_DGRAM)`,
//! [`pmon::dgram`]): bind, connect, sendto, recvfrom, sendmsg, recvmsg,
//! read, write, the names, SO_RCVTIMEO, poll and epoll. A receive with
//! nothing queued waits for a datagram (or SO_RCVTIMEO, then EAGAIN); a
//! send never waits (a datagram that finds no room is dropped, as UDP may
//! drop it).

use pmon::dgram::{self, MAX_DATAGRAM};
use pmon::inet::InetName;
use pmon::unixsock::Name;

use super::*;

use super::unix::{
    ENOTCONN, EOPNOTSUPP, IPPROTO_UDPLITE, MSG_DONTWAIT, MSG_PEEK, MSG_TRUNC, SOL_SOCKET,
    SO_DOMAIN, SO_ERROR, SO_PROTOCOL, SO_RCVBUF, SO_SNDBUF, SO_TYPE,
};

const SO_RCVTIMEO: u64 = 20;
const SOCK_DGRAM: u32 = 2;
const IPPROTO_UDP: u32 = 17;
const AF_UNSPEC: u16 = 0;

impl Kernel {
    /// socket(AF_INET or AF_INET6, SOCK_DGRAM, 0 or IPPROTO_UDP), or
    /// IPPROTO_UDPLITE (`lite`).
    pub(super) fn sys_udp_socket(&mut self, pid: Pid, v6: bool, ty: u64, lite: bool) -> Ret {
        let id = self.next_pipe;
        self.next_pipe += 1;
        self.dgrams.open(id, v6, lite);
        let nb = if ty & O_NONBLOCK as u64 != 0 {
            O_NONBLOCK
        } else {
            0
        };
        let file = OpenFile::new(Kind::Dgram(id), O_RDWR | nb);
        match self
            .proc_mut(pid)
            .and_then(|p| p.fds.install(file, ty & O_CLOEXEC as u64 != 0, 0))
        {
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
        match n {
            nr::BIND => match self.udp_address(pid, a[1], a[2], v6, true) {
                Ok(Some(name)) => val(self.dgrams.bind(id, name).map(|_| 0)),
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
                    .and_then(|s| uaccess::read_vec(s, a[1], (a[2] as usize).min(MAX_DATAGRAM + 1)))
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
                for &(at, len) in &vecs {
                    if data.len().saturating_add(len) > MAX_DATAGRAM + 1 {
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
                self.udp_send(id, to, &data)
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
                let v: u32 = match a[2] {
                    SO_TYPE => SOCK_DGRAM,
                    SO_ERROR => 0,
                    SO_SNDBUF | SO_RCVBUF => dgram::RCVBUF as u32,
                    SO_DOMAIN if v6 => 10,
                    SO_DOMAIN => 2,
                    _ if self.dgrams.is_lite(id) => IPPROTO_UDPLITE as u32,
                    _ => IPPROTO_UDP,
                };
                let r = self.space_mut(pid).and_then(|s| {
                    uaccess::write_u32(s, a[3], v)?;
                    uaccess::write_u32(s, a[4], 4)
                });
                val(r.map(|_| 0))
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
                let r = self.dgrams.coverage(id, a[2]).and_then(|v| {
                    let s = self.space_mut(pid)?;
                    uaccess::write_u32(s, a[3], v as u32)?;
                    uaccess::write_u32(s, a[4], 4)
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
        Ok(Some(if bind { name } else { name.local() }))
    }

    fn udp_send(&mut self, id: usize, to: Option<InetName>, data: &[u8]) -> Ret {
        let dest = to
            .or(self.dgrams.peer_of(id))
            .and_then(|t| self.dgrams.at_port(self.dgrams.is_lite(id), t.port));
        match self.dgrams.send(id, to, data) {
            Ok(delivered) => {
                if let (true, Some(d)) = (delivered, dest) {
                    self.wake_all(Wait::Dgram(d));
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
        let Some((from, data)) = self.dgrams.receive(id, flags & MSG_PEEK != 0) else {
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
        self.give_datagram(pid, vecs, &data, flags, msghdr)
    }

    /// The rest of a receive of one datagram (UDP, netlink): its bytes
    /// into `vecs` (the rest cut), recvmsg's flags (MSG_TRUNC when cut)
    /// and no control data, and the length copied, or the datagram's
    /// whole length with MSG_TRUNC in `flags`.
    pub(super) fn give_datagram(
        &mut self,
        pid: Pid,
        vecs: &[(u64, usize)],
        data: &[u8],
        flags: u64,
        msghdr: Option<u64>,
    ) -> Ret {
        let room = vecs.iter().fold(0usize, |t, &(_, l)| t.saturating_add(l));
        let copied = room.min(data.len());
        if let Err((_, e)) = self.scatter(pid, vecs, 0, &data[..copied]) {
            return err(e);
        }
        if let Some(h) = msghdr {
            let truncated = if copied < data.len() {
                MSG_TRUNC as u32
            } else {
                0
            };
            let r = self.space_mut(pid).and_then(|s| {
                uaccess::write_u64(s, h + 40, 0)?;
                uaccess::write_u32(s, h + 48, truncated)
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
