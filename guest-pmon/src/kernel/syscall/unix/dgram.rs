//! AF_UNIX datagram sockets with names: socket(AF_UNIX, SOCK_DGRAM), then
//! bind, connect, sendto, recvfrom, as syslog daemons, `sd_notify` and
//! asyncio's datagram endpoints use them. Each socket is one message pipe
//! ([`Mode::Datagrams`]) that every sender writes into, each message with
//! its sender's name ([`pmon::pipe::Pipe::send_from`]) for the reader's
//! recvfrom; so reads, poll, epoll, FIONREAD, MSG_PEEK, MSG_TRUNC,
//! SO_RCVTIMEO and descriptors passed with SCM_RIGHTS work as on the
//! socketpair ends. As on Linux: a send without an address goes to the
//! connected peer (ENOTCONN without one), an address overrides it; a socket
//! connected to another takes messages from that one only (EPERM); a send
//! to a closed socket is ECONNREFUSED and, when that was the peer, leaves
//! the sender unconnected; a full receiver makes the sender wait (EAGAIN
//! if non-blocking); an unnamed sender is seen with an empty address.
//! Names are those of the stream sockets ([`pmon::unixsock`]): a path
//! under /tmp is a socket file, other paths and abstract names the
//! processor's own.

use super::*;

impl Kernel {
    /// socket(AF_UNIX, SOCK_DGRAM): a socket with its own message queue,
    /// unnamed and unconnected.
    pub(super) fn sys_unix_dgram_socket(&mut self, pid: Pid, ty: u64) -> Ret {
        let id = self.next_pipe;
        self.next_pipe += 1;
        self.pipes.insert(id, Pipe::socket(Mode::Datagrams, pid));
        self.unix.open_dgram(id);
        match self.install_socket(pid, Kind::UnixDgram(id), ty) {
            Ok(fd) => Ret::Val(fd),
            Err(e) => {
                self.close_unix_dgram(id);
                err(e)
            }
        }
    }

    /// The last descriptor of datagram socket `id` closed: its name goes
    /// (a socket file stays, refusing), and its queue with the
    /// descriptors in flight in it; senders waiting for room look again.
    pub(in crate::kernel) fn close_unix_dgram(&mut self, id: usize) {
        self.sock_options.remove(&id);
        self.unix.close(id);
        if let Some(p) = self.pipes.get_mut(&id) {
            p.readers = 0;
            p.writers = 0;
        }
        self.pipe_changed(id);
    }

    /// The socket calls on datagram socket `id`.
    pub(super) fn unix_dgram_call(
        &mut self,
        tid: Tid,
        f: &Arc<OpenFile>,
        id: usize,
        n: u64,
        a: [u64; 6],
    ) -> Ret {
        let pid = self.pid_of(tid);
        match n {
            nr::BIND => val(self.unix_bind(pid, id, a[1], a[2]).map(|_| 0)),
            nr::CONNECT => val(self.unix_dgram_connect(pid, id, a[1], a[2]).map(|_| 0)),
            nr::SENDTO => {
                let to = if a[4] != 0 {
                    match self.sockaddr_name(pid, a[4], a[5]) {
                        Ok(Some(name)) => Some(name),
                        Ok(None) => return err(EINVAL),
                        Err(e) => return err(e),
                    }
                } else {
                    None
                };
                self.unix_dgram_send(
                    tid,
                    f,
                    id,
                    &[(a[1], a[2] as usize)],
                    a[3],
                    to,
                    Vec::new(),
                    None,
                )
            }
            nr::SENDMSG => {
                let (hdr, vecs) = match self.msghdr(pid, a[1]) {
                    Ok(h) => h,
                    Err(e) => return err(e),
                };
                let to = if hdr.name != 0 && hdr.namelen != 0 {
                    match self.sockaddr_name(pid, hdr.name, hdr.namelen) {
                        Ok(Some(name)) => Some(name),
                        Ok(None) => return err(EINVAL),
                        Err(e) => return err(e),
                    }
                } else {
                    None
                };
                match self.rights_sent(pid, &hdr) {
                    Ok((rights, creds)) => {
                        self.unix_dgram_send(tid, f, id, &vecs, a[2], to, rights, creds)
                    }
                    Err(e) => err(e),
                }
            }
            nr::RECVFROM => {
                let from = (a[4] != 0 && a[5] != 0).then_some((a[4], a[5]));
                self.socket_recv(tid, f, id, &[(a[1], a[2] as usize)], a[3], None, from)
            }
            nr::RECVMSG => {
                let (hdr, vecs) = match self.msghdr(pid, a[1]) {
                    Ok(h) => h,
                    Err(e) => return err(e),
                };
                // The sender's name goes where the msghdr says, its
                // length into the msghdr's own field.
                let from = (hdr.name != 0).then_some((hdr.name, a[1] + 8));
                if hdr.name == 0 {
                    if let Err(e) = self
                        .space_mut(pid)
                        .and_then(|s| uaccess::write_u32(s, a[1] + 8, 0))
                    {
                        return err(e);
                    }
                }
                self.socket_recv(tid, f, id, &vecs, a[2], Some((a[1], hdr)), from)
            }
            nr::GETSOCKNAME => {
                let name = self.unix.name_of(id).cloned();
                val(self.put_sockaddr(pid, a[1], a[2], name.as_ref()).map(|_| 0))
            }
            nr::GETPEERNAME => match self.unix.dgram_peer(id) {
                Some((_, name)) => {
                    val(self.put_sockaddr(pid, a[1], a[2], name.as_ref()).map(|_| 0))
                }
                None => err(ENOTCONN),
            },
            nr::SHUTDOWN => {
                let how = a[1];
                if how > SHUT_RDWR {
                    return err(EINVAL);
                }
                // Reading: a receiver asleep wakes to 0, and senders get
                // EPIPE, as Linux's unix_dgram_sendmsg gives them.
                if how != SHUT_WR {
                    self.shut_for_reading(id);
                }
                if how != SHUT_RD {
                    f.flags.set(f.flags.get() | SHUT_WR_FLAG);
                }
                Ret::Val(0)
            }
            nr::GETSOCKOPT | nr::SETSOCKOPT => {
                let sock = Sock {
                    ty: SOCK_DGRAM,
                    listening: false,
                    inet: None,
                    peer: None,
                    key: id,
                    sends_into: None,
                };
                self.socket_option(pid, n, a, sock)
            }
            // Linux: a datagram socket neither listens nor accepts.
            _ => err(EOPNOTSUPP),
        }
    }

    /// connect: the socket the address names becomes where sends without
    /// an address go (EPROTOTYPE for a stream socket's name, EPERM for one
    /// connected to another); AF_UNSPEC forgets the peer.
    fn unix_dgram_connect(
        &mut self,
        pid: Pid,
        id: usize,
        addr: u64,
        len: u64,
    ) -> Result<(), Errno> {
        if len >= 2 {
            let family = uaccess::read_vec(self.space_mut(pid)?, addr, 2)?;
            if family == [0, 0] {
                self.unix.dgram_connect(id, None);
                return Ok(());
            }
        }
        let name = self.sockaddr_name(pid, addr, len)?.ok_or(EINVAL)?;
        let to = self.socket_at(&name)?;
        let to = self.unix.may_send(id, to)?;
        self.unix.dgram_connect(id, Some(to));
        // Poll's writability now follows the peer's queue.
        self.pipe_changed(id);
        Ok(())
    }

    /// Where a send of datagram socket `id` goes: the socket `to` names,
    /// or its peer. A peer found closed is forgotten (ECONNREFUSED this
    /// once, ENOTCONN after), as Linux's send does.
    fn dgram_destination(&mut self, id: usize, to: Option<Name>) -> Result<usize, Errno> {
        let (target, connected) = match to {
            Some(name) => (self.socket_at(&name)?, false),
            None => (self.unix.dgram_peer(id).ok_or(ENOTCONN)?.0, true),
        };
        match self.unix.may_send(id, target) {
            Err(ECONNREFUSED) if connected => {
                self.unix.dgram_connect(id, None);
                Err(ECONNREFUSED)
            }
            other => other,
        }
    }

    /// send, sendto, sendmsg: one message of the bytes of `vecs` (and
    /// descriptors `rights`) to `to` or the peer, carrying this socket's
    /// name; waits while the receiver is full unless non-blocking or
    /// SO_SNDTIMEO ends the wait.
    #[allow(clippy::too_many_arguments)]
    fn unix_dgram_send(
        &mut self,
        tid: Tid,
        f: &Arc<OpenFile>,
        id: usize,
        vecs: &[(u64, usize)],
        flags: u64,
        to: Option<Name>,
        rights: Vec<Arc<OpenFile>>,
        creds: Option<Ucred>,
    ) -> Ret {
        if f.flags.get() & SHUT_WR_FLAG != 0 {
            if flags & MSG_NOSIGNAL == 0 {
                self.signal_thread(tid, SigInfo::user(SIGPIPE, SI_USER, 0));
            }
            return err(EPIPE);
        }
        let dst = match self.dgram_destination(id, to) {
            Ok(d) => d,
            Err(e) => return err(e),
        };
        let total = Self::io_total(vecs);
        if total > pmon::pipe::MAX_MESSAGE {
            return err(EMSGSIZE);
        }
        let data = match self.gather(self.pid_of(tid), vecs, 0, total) {
            Ok(d) => d,
            Err(e) => return err(e),
        };
        let nonblocking = f.nonblocking() || flags & MSG_DONTWAIT != 0;
        let from = self.unix.name_of(id).cloned();
        self.send_or_wait(tid, f, dst, &data, rights, nonblocking, from, creds)
    }

    /// write() on datagram socket `id`: a message to its peer (ENOTCONN
    /// without one); Ok(None) to wait for room.
    pub(in crate::kernel) fn unix_dgram_write(
        &mut self,
        tid: Tid,
        f: &Arc<OpenFile>,
        id: usize,
        data: &[u8],
    ) -> Result<Option<usize>, Errno> {
        if f.flags.get() & SHUT_WR_FLAG != 0 {
            self.signal_thread(tid, SigInfo::user(SIGPIPE, SI_USER, 0));
            return Err(EPIPE);
        }
        let dst = self.dgram_destination(id, None)?;
        let from = self.unix.name_of(id).cloned();
        self.pipe_send(tid, dst, data, Vec::new(), f.nonblocking(), from, None)
    }

    /// What poll sees of datagram socket `id`: readable with a message
    /// queued; writable unless its peer's queue is full.
    pub(in crate::kernel) fn unix_dgram_ready(&self, id: usize) -> (bool, bool) {
        let readable = self.pipes.get(&id).is_some_and(|p| p.readable());
        let writable = match self.unix.dgram_peer(id) {
            Some((peer, _)) => self.pipes.get(&peer).is_none_or(|p| p.writable()),
            None => true,
        };
        (readable, writable)
    }
}
