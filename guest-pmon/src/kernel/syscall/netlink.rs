//! AF_NETLINK sockets of the NETLINK_ROUTE and NETLINK_SOCK_DIAG
//! protocols ([`pmon::netlink`]):
//! socket, bind, the names, sends and receives (and read and write), so
//! that getifaddrs, if_nameindex, Go's net.Interfaces and Node's
//! os.networkInterfaces find the loopback interface.

use pmon::netlink::Socket;

use super::*;

use super::unix::{EOPNOTSUPP, MSG_DONTWAIT, MSG_PEEK, SOL_SOCKET, SO_DOMAIN, SO_PROTOCOL};

const AF_NETLINK: u16 = 16;
const SOCK_DGRAM: u64 = 2;
const SOCK_RAW: u64 = 3;
const NETLINK_ROUTE: u64 = 0;
const EPROTONOSUPPORT: Errno = 93;
const ESOCKTNOSUPPORT: Errno = 94;
const EADDRINUSE: Errno = 98;
const ENOPROTOOPT: Errno = 92;
const EMSGSIZE: Errno = 90;
/// The most one send may carry (Linux's is the socket's send buffer).
const MAX_SEND: usize = 64 * 1024;

impl Kernel {
    /// socket(AF_NETLINK, SOCK_RAW or SOCK_DGRAM, NETLINK_ROUTE or
    /// NETLINK_SOCK_DIAG).
    pub(super) fn sys_netlink_socket(&mut self, pid: Pid, ty: u64, protocol: u64) -> Ret {
        let base = ty & !((O_NONBLOCK | O_CLOEXEC) as u64);
        if base != SOCK_RAW && base != SOCK_DGRAM {
            return err(ESOCKTNOSUPPORT);
        }
        let protocol = match protocol {
            NETLINK_ROUTE => pmon::netlink::NETLINK_ROUTE,
            4 => pmon::netlink::NETLINK_SOCK_DIAG,
            _ => return err(EPROTONOSUPPORT),
        };
        let id = self.next_pipe;
        self.next_pipe += 1;
        // Linux gives a process's first socket its pid as port id, later
        // ones negative numbers.
        let taken = |k: &Kernel, port: u32| k.netlinks.values().any(|(s, _)| s.port == port);
        let port = if taken(self, pid) {
            (-4096 - id as i64) as i32 as u32
        } else {
            pid
        };
        self.netlinks.insert(id, (Socket::of(port, protocol), base));
        match self.install_socket(pid, Kind::Netlink(id), ty) {
            Ok(fd) => Ret::Val(fd),
            Err(e) => {
                self.netlinks.remove(&id);
                err(e)
            }
        }
    }

    /// A netlink address: family, pad, port id, groups.
    fn put_netlink_name(&mut self, pid: Pid, addr: u64, len: u64, port: u32) -> Result<(), Errno> {
        let mut b = [0u8; 12];
        b[..2].copy_from_slice(&AF_NETLINK.to_le_bytes());
        b[4..8].copy_from_slice(&port.to_le_bytes());
        let s = self.space_mut(pid)?;
        let room = super::unix::address_room(s, len)?;
        uaccess::write(s, addr, &b[..room.min(b.len())])?;
        uaccess::write_u32(s, len, b.len() as u32)
    }

    /// The socket calls on netlink socket `id`.
    pub(super) fn netlink_call(
        &mut self,
        tid: Tid,
        f: &Arc<OpenFile>,
        id: usize,
        n: u64,
        a: [u64; 6],
    ) -> Ret {
        let pid = self.pid_of(tid);
        let Some((port, bound, ty)) = self.netlinks.get(&id).map(|(s, ty)| (s.port, s.bound, *ty))
        else {
            return err(EBADF);
        };
        match n {
            nr::BIND => {
                let b = match self
                    .space_mut(pid)
                    .and_then(|s| uaccess::read_vec(s, a[1], (a[2] as usize).min(12)))
                {
                    Ok(b) => b,
                    Err(e) => return err(e),
                };
                if b.len() < 12 || u16::from_le_bytes([b[0], b[1]]) != AF_NETLINK {
                    return err(EINVAL);
                }
                // A port id of its own choosing, if free (multicast groups
                // are taken: nothing is ever multicast here).
                let want = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
                if want != 0 && want != port {
                    if self.netlinks.values().any(|(s, _)| s.port == want) {
                        return err(EADDRINUSE);
                    }
                    if let Some((s, _)) = self.netlinks.get_mut(&id) {
                        s.port = want;
                    }
                }
                if let Some((s, _)) = self.netlinks.get_mut(&id) {
                    s.bound = true;
                }
                Ret::Val(0)
            }
            nr::CONNECT => Ret::Val(0),
            // Its port id once bound (bind, or its first send), 0 before.
            nr::GETSOCKNAME => {
                let shown = if bound { port } else { 0 };
                val(self.put_netlink_name(pid, a[1], a[2], shown).map(|_| 0))
            }
            // Its peer is the kernel, port 0.
            nr::GETPEERNAME => val(self.put_netlink_name(pid, a[1], a[2], 0).map(|_| 0)),
            nr::SENDTO if a[2] as usize > MAX_SEND => err(EMSGSIZE),
            nr::SENDTO => {
                match self
                    .space_mut(pid)
                    .and_then(|s| uaccess::read_vec(s, a[1], a[2] as usize))
                {
                    Ok(d) => self.netlink_send(id, &d),
                    Err(e) => err(e),
                }
            }
            nr::SENDMSG => {
                let (_, vecs) = match self.msghdr(pid, a[1]) {
                    Ok(h) => h,
                    Err(e) => return err(e),
                };
                if vecs.iter().fold(0usize, |t, &(_, l)| t.saturating_add(l)) > MAX_SEND {
                    return err(EMSGSIZE);
                }
                let mut data = Vec::new();
                for (at, len) in vecs {
                    match self
                        .space_mut(pid)
                        .and_then(|s| uaccess::read_vec(s, at, len))
                    {
                        Ok(d) => data.extend_from_slice(&d),
                        Err(e) => return err(e),
                    }
                }
                self.netlink_send(id, &data)
            }
            nr::RECVFROM => self.netlink_recv(
                tid,
                f,
                id,
                &[(a[1], a[2] as usize)],
                a[3],
                (a[4], a[5]),
                None,
            ),
            nr::RECVMSG => {
                let (hdr, vecs) = match self.msghdr(pid, a[1]) {
                    Ok(h) => h,
                    Err(e) => return err(e),
                };
                let name = if hdr.name != 0 {
                    (hdr.name, a[1] + 8)
                } else {
                    (0, 0)
                };
                self.netlink_recv(tid, f, id, &vecs, a[2], name, Some(a[1]))
            }
            nr::SETSOCKOPT => Ret::Val(0),
            nr::GETSOCKOPT => {
                let v: u32 = match (a[1], a[2]) {
                    (SOL_SOCKET, 3) => ty as u32, // SO_TYPE
                    (SOL_SOCKET, SO_DOMAIN) => AF_NETLINK as u32,
                    (SOL_SOCKET, SO_PROTOCOL) => self
                        .netlinks
                        .get(&id)
                        .map_or(NETLINK_ROUTE as u32, |(s, _)| s.protocol as u32),
                    (SOL_SOCKET, 7 | 8) => 212_992, // SO_SNDBUF, SO_RCVBUF
                    (SOL_SOCKET, 4) => 0,           // SO_ERROR
                    (270, _) => 0,                  // SOL_NETLINK's flags: off
                    _ => return err(ENOPROTOOPT),
                };
                let r = self.space_mut(pid).and_then(|s| {
                    if uaccess::read_u32(s, a[4])? < 4 {
                        return Err(EINVAL);
                    }
                    uaccess::write_u32(s, a[3], v)?;
                    uaccess::write_u32(s, a[4], 4)
                });
                val(r.map(|_| 0))
            }
            nr::SHUTDOWN => Ret::Val(0),
            _ => err(EOPNOTSUPP),
        }
    }

    /// A datagram sent to the kernel: its requests are answered. Larger
    /// than the send buffer is EMSGSIZE, as Linux's.
    pub(super) fn netlink_send(&mut self, id: usize, data: &[u8]) -> Ret {
        if data.len() > MAX_SEND {
            return err(EMSGSIZE);
        }
        let diag = self
            .netlinks
            .get(&id)
            .is_some_and(|(s, _)| s.protocol == pmon::netlink::NETLINK_SOCK_DIAG);
        let (tcp, udp) = if diag {
            (self.inet_sockets(true), self.inet_sockets(false))
        } else {
            (Vec::new(), Vec::new())
        };
        if let Some((s, _)) = self.netlinks.get_mut(&id) {
            s.request(
                data,
                pmon::netlink::Sockets {
                    tcp: &tcp,
                    udp: &udp,
                },
            );
        }
        self.wake_all(Wait::Dgram(id));
        Ret::Val(data.len() as i64)
    }

    /// A read of netlink socket `id`: the next datagram, or a wait.
    pub(super) fn netlink_read(
        &mut self,
        f: &OpenFile,
        id: usize,
        len: usize,
    ) -> Result<Option<Vec<u8>>, Errno> {
        let (s, _) = self.netlinks.get_mut(&id).ok_or(EBADF)?;
        match s.receive(false) {
            Some(mut d) => {
                d.truncate(len);
                Ok(Some(d))
            }
            None if f.nonblocking() => Err(EAGAIN),
            None => Ok(None),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn netlink_recv(
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
        let got = self
            .netlinks
            .get_mut(&id)
            .and_then(|(s, _)| s.receive(flags & MSG_PEEK != 0));
        let Some(data) = got else {
            if f.nonblocking() || flags & MSG_DONTWAIT != 0 {
                return err(EAGAIN);
            }
            self.block(tid, Wait::Dgram(id), None, None, OnWake::Retry);
            return Ret::Block;
        };
        // From the kernel: port 0.
        if name != 0 && namelen != 0 {
            if let Err(e) = self.put_netlink_name(pid, name, namelen, 0) {
                return err(e);
            }
        }
        self.give_datagram(pid, vecs, &data, flags, msghdr, None)
    }
}
