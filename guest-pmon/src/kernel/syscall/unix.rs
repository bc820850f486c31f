//! socketpair(AF_UNIX, SOCK_STREAM): two connected ends, each a pair of
//! the monitor's pipes (one to receive from, one to send into), so they
//! read, write, poll, block and end as pipes do. Event loops make one to
//! wake themselves (tokio's signal and process handling, for one).
//! Sockets with addresses (socket, bind, connect) are not served: they
//! need the network the rack does not give processes yet. The calls that
//! take a descriptor answer ENOTSOCK for anything else, as Linux does.

use pmon::fd::SHUT_WR_FLAG;

use super::*;

const AF_UNIX: u64 = 1;
const AF_INET: u64 = 2;
const AF_INET6: u64 = 10;
const SOCK_STREAM: u64 = 1;
const SOCK_NONBLOCK: u64 = 0o4000;
const SOCK_CLOEXEC: u64 = 0o2000000;
const SOL_SOCKET: u64 = 1;
const SO_TYPE: u64 = 3;
const SO_ERROR: u64 = 4;
const SO_SNDBUF: u64 = 7;
const SO_RCVBUF: u64 = 8;
const MSG_DONTWAIT: u64 = 0x40;
const MSG_NOSIGNAL: u64 = 0x4000;
const ENOTSOCK: Errno = 88;
const EPROTONOSUPPORT: Errno = 93;
const EOPNOTSUPP: Errno = 95;
const EAFNOSUPPORT: Errno = 97;
const EISCONN: Errno = 106;
const ENOPROTOOPT: Errno = 92;

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
        let nb = if ty & SOCK_NONBLOCK != 0 {
            O_NONBLOCK
        } else {
            0
        };
        let cloexec = ty & SOCK_CLOEXEC != 0;
        let one = OpenFile::new(Kind::Socket(b, a), O_RDWR | nb);
        let two = OpenFile::new(Kind::Socket(a, b), O_RDWR | nb);
        self.install_pair(pid, [one, two], cloexec, sv, &[a, b])
    }

    /// The calls on a socket descriptor: served for socketpair ends,
    /// ENOTSOCK for any other file.
    pub(super) fn sys_socket_call(&mut self, tid: Tid, n: u64, a: [u64; 6]) -> Ret {
        let pid = self.pid_of(tid);
        let f = match self.file(pid, a[0] as i32 as i64) {
            Ok(f) => f,
            Err(e) => return err(e),
        };
        let Kind::Socket(rx, tx) = f.kind else {
            return err(ENOTSOCK);
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
                let hdr = match self
                    .space_mut(pid)
                    .and_then(|s| uaccess::read_vec(s, a[1], 56))
                {
                    Ok(h) => h,
                    Err(e) => return err(e),
                };
                let word =
                    |at: usize| u64::from_le_bytes(hdr[at..at + 8].try_into().unwrap_or([0; 8]));
                let (iov, iovlen, controllen) = (word(16), word(24), word(40));
                if iovlen > 1024 {
                    return err(EINVAL);
                }
                let vecs = match self.iovecs(pid, iov, iovlen as usize) {
                    Ok(v) => v,
                    Err(e) => return err(e),
                };
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
            nr::GETSOCKOPT => {
                if a[1] != SOL_SOCKET {
                    return err(ENOPROTOOPT);
                }
                let v: u32 = match a[2] {
                    SO_TYPE => SOCK_STREAM as u32,
                    SO_ERROR => 0,
                    SO_SNDBUF | SO_RCVBUF => pmon::pipe::CAPACITY as u32,
                    _ => return err(ENOPROTOOPT),
                };
                let r = self.space_mut(pid).and_then(|s| {
                    uaccess::write_u32(s, a[3], v)?;
                    uaccess::write_u32(s, a[4], 4)
                });
                val(r.map(|_| 0))
            }
            // Buffer sizes and the like are taken and have no effect.
            nr::SETSOCKOPT if a[1] == SOL_SOCKET => Ret::Val(0),
            nr::SETSOCKOPT => err(ENOPROTOOPT),
            nr::GETSOCKNAME | nr::GETPEERNAME => {
                // An unnamed AF_UNIX socket: just the family.
                let r = self.space_mut(pid).and_then(|s| {
                    let room = uaccess::read_u32(s, a[2])?;
                    if room >= 2 {
                        uaccess::write(s, a[1], &(AF_UNIX as u16).to_le_bytes())?;
                    }
                    uaccess::write_u32(s, a[2], 2)
                });
                val(r.map(|_| 0))
            }
            // Connecting, binding, listening: these ends are connected.
            nr::CONNECT => err(EISCONN),
            _ => err(EOPNOTSUPP),
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
