//! Reading and writing through descriptors: read, write, their vectored
//! forms, lseek, getdents64, fsync and sync_file_range, for every kind of
//! open file (the tmpfs's, storage's, the host's, pipes, sockets, devices).

use super::*;

impl Kernel {
    /// One read from a file, into a kernel buffer; Ok(None): wait.
    pub(super) fn read_file(
        &mut self,
        f: &Arc<OpenFile>,
        len: usize,
    ) -> Result<Option<Vec<u8>>, Errno> {
        if !f.readable() {
            return Err(EBADF);
        }
        match f.kind {
            Kind::DevNull => Ok(Some(Vec::new())),
            Kind::DevZero | Kind::DevFull => Ok(Some(alloc::vec![0u8; len])),
            Kind::DevUrandom => {
                let mut b = alloc::vec![0u8; len];
                self.rng.fill_bytes(&mut b);
                Ok(Some(b))
            }
            Kind::Stdio(0, run) if self.stdin_back.get(&run).is_some_and(|b| !b.is_empty()) => {
                let back = self.stdin_back.entry(run).or_default();
                let n = len.min(back.len());
                Ok(Some(back.drain(..n).collect()))
            }
            Kind::Stdio(0, run) => {
                let mut b = alloc::vec![0u8; len];
                let n = host::read_stdin(run, &mut b);
                if n == -lego_proto::program::EAGAIN {
                    return if f.nonblocking() {
                        Err(EAGAIN)
                    } else {
                        Ok(None)
                    };
                }
                if n < 0 {
                    return Err(-n);
                }
                b.truncate(n as usize);
                Ok(Some(b))
            }
            Kind::Stdio(..) => Err(EBADF),
            Kind::PipeRead(id) | Kind::Socket(id, _) | Kind::UnixDgram(id) => {
                let waited_open = f.flags.get() & pmon::fd::WAITED_OPEN_FLAG != 0;
                self.pipe_read(id, len, f.nonblocking(), waited_open)
            }
            // As Linux reads an unconnected stream socket.
            Kind::Unix(_) => Err(EINVAL),
            Kind::Dgram(id) => self.udp_read(f, id, len),
            Kind::PtyMaster(id) => self.pty_read(f, id, true, len),
            Kind::PtySlave(id) => self.pty_read(f, id, false, len),
            Kind::PipeWrite(_) => Err(EBADF),
            Kind::Host(h) => {
                let mut b = alloc::vec![0u8; len];
                let n = host::read(h, f.offset.get(), &mut b);
                if n < 0 {
                    return Err(-n);
                }
                b.truncate(n as usize);
                f.offset.set(f.offset.get() + n as u64);
                Ok(Some(b))
            }
            Kind::HostDir(_) => Err(EISDIR),
            Kind::Generated => {
                let b = generated_at(f, f.offset.get(), len);
                f.offset.set(f.offset.get() + b.len() as u64);
                Ok(Some(b))
            }
            Kind::Tmp(ino) => self.tmp_read(f, ino, len).map(Some),
            Kind::Store(ino) => self.store_read(f, ino, len).map(Some),
            Kind::StoreDir(_) => Err(EISDIR),
            Kind::EventFd(id) => self.eventfd_read(f, id, len),
            Kind::SignalFd(id) => match self.caller() {
                Some(tid) => self.signalfd_read(tid, f, id, len),
                None => Err(EINVAL),
            },
            Kind::Inotify(id) => self.inotify_read(f, id, len),
            Kind::Netlink(id) => self.netlink_read(f, id, len),
            Kind::MQueue(id) => self.mq_read(f, id, len).map(Some),
            Kind::Epoll(_) | Kind::PidFd(..) => Err(EINVAL),
            Kind::ProcDir(..) => Err(EISDIR),
        }
    }

    pub(super) fn sys_lseek(&mut self, pid: Pid, fd: i64, off: i64, whence: u64) -> Ret {
        let f = match self.file(pid, fd) {
            Ok(f) => f,
            Err(e) => return err(e),
        };
        match f.kind {
            Kind::DevNull | Kind::DevZero | Kind::DevFull | Kind::DevUrandom => Ret::Val(0),
            Kind::Host(_)
            | Kind::HostDir(_)
            | Kind::Generated
            | Kind::Tmp(_)
            | Kind::Store(_)
            | Kind::StoreDir(_)
            | Kind::ProcDir(..) => {
                const SEEK_DATA: u64 = 3;
                const SEEK_HOLE: u64 = 4;
                let size = || -> Result<i64, Errno> { self.file_size(&f).map(|s| s as i64) };
                let base = match whence {
                    0 => 0,
                    1 => f.offset.get() as i64,
                    2 => match size() {
                        Ok(s) => s,
                        Err(e) => return err(e),
                    },
                    // As Linux's generic answer for a file system that
                    // does not report holes: all of the file is data, and
                    // its end is the one hole.
                    SEEK_DATA | SEEK_HOLE => {
                        let end = match size() {
                            Ok(s) => s,
                            Err(e) => return err(e),
                        };
                        if off < 0 || off >= end {
                            return err(ENXIO);
                        }
                        let at = if whence == SEEK_DATA { off } else { end };
                        f.offset.set(at as u64);
                        return Ret::Val(at);
                    }
                    _ => return err(EINVAL),
                };
                let Some(new) = base.checked_add(off).filter(|&n| n >= 0) else {
                    return err(EINVAL);
                };
                f.offset.set(new as u64);
                Ret::Val(new)
            }
            // lego-vmm's own stdio, where the host's fd seeks (a file):
            // the offset is the host fd's, less what was read and given
            // back (`unread`), which the seek drops.
            Kind::Stdio(fd, run) => {
                let back = match fd {
                    0 => self.stdin_back.get(&run).map_or(0, |b| b.len() as i64),
                    _ => 0,
                };
                let off = if whence == 1 { off - back } else { off };
                let r = host::seek_stdio(run, fd, off, whence);
                if r >= 0 && fd == 0 {
                    self.stdin_back.remove(&run);
                }
                Ret::Val(r)
            }
            _ => err(ESPIPE),
        }
    }

    pub(super) fn sys_getdents64(&mut self, pid: Pid, fd: i64, buf: u64, len: usize) -> Ret {
        let f = match self.file(pid, fd) {
            Ok(f) => f,
            Err(e) => return err(e),
        };
        if let Kind::Tmp(ino) = f.kind {
            return self.tmp_getdents(pid, &f, ino, buf, len);
        }
        if let Kind::StoreDir(ino) = f.kind {
            return self.store_getdents(pid, &f, ino, buf, len);
        }
        if let Kind::ProcDir(target, started) = f.kind {
            if f.path.ends_with(b"/task") {
                return self.task_dir_getdents(pid, &f, target, started, buf, len);
            }
            return self.proc_dir_getdents(pid, &f, target, started, buf, len);
        }
        let Kind::HostDir(h) = f.kind else {
            return err(ENOTDIR);
        };
        if f.path == b"/proc" {
            return self.proc_getdents(pid, &f, h, buf, len);
        }
        if let Some(target) = pmon::path::fd_dir_of(&f.path) {
            return self.fd_getdents(pid, target, &f, (buf, len), procpid::DT_LNK);
        }
        if let Some(target) = pmon::path::fdinfo_dir_of(&f.path) {
            return self.fd_getdents(pid, target, &f, (buf, len), procpid::DT_REG);
        }
        match host::readdir(h, f.offset.get(), len) {
            Ok((bytes, next)) => {
                if let Err(e) = self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write(s, buf, &bytes))
                {
                    return err(e);
                }
                f.offset.set(next);
                Ret::Val(bytes.len() as i64)
            }
            Err(e) => err(e),
        }
    }

    /// One write; Ok(None): wait.
    pub(super) fn write_file(
        &mut self,
        tid: Tid,
        f: &Arc<OpenFile>,
        data: &[u8],
    ) -> Result<Option<usize>, Errno> {
        if !f.writable() {
            return Err(EBADF);
        }
        match f.kind {
            Kind::DevNull | Kind::DevZero | Kind::DevUrandom => Ok(Some(data.len())),
            Kind::DevFull => Err(ENOSPC),
            Kind::Stdio(fd @ (1 | 2), run) => {
                let n = host::write(run, fd, data);
                if n == -lego_proto::program::EPIPE {
                    self.signal_thread(tid, SigInfo::user(SIGPIPE, SI_USER, 0));
                    return Err(EPIPE);
                }
                if n < 0 {
                    return Err(-n);
                }
                Ok(Some(n as usize))
            }
            Kind::Stdio(..) => Err(EBADF),
            Kind::PipeWrite(id) => self.pipe_write(tid, id, data, f.nonblocking()),
            Kind::Socket(rx, tx) if self.send_takes_reset(rx, tx) => Err(ECONNRESET),
            Kind::Socket(..) if pmon::fd::shut_for_writing(f) => {
                self.signal_thread(tid, SigInfo::user(SIGPIPE, SI_USER, 0));
                Err(EPIPE)
            }
            Kind::Socket(_, id) => self.pipe_write(tid, id, data, f.nonblocking()),
            // (A TCP socket's write as its send: a refused connect's
            // error, else EPIPE and SIGPIPE.)
            Kind::Unix(id) if self.unix.inet(id).is_some() => {
                if let Some(e) = self.take_connect_error(id) {
                    return Err(e);
                }
                self.signal_thread(tid, SigInfo::user(SIGPIPE, SI_USER, 0));
                Err(EPIPE)
            }
            Kind::Unix(_) => Err(unix::ENOTCONN),
            Kind::UnixDgram(id) => self.unix_dgram_write(tid, f, id, data),
            Kind::PtyMaster(id) => self.pty_write(f, id, true, data),
            Kind::PtySlave(id) => self.pty_write(f, id, false, data),
            Kind::Dgram(id) => self.udp_write(id, data),
            Kind::PipeRead(_) => Err(EBADF),
            Kind::Generated => self.proc_write(tid, f, data).map(Some),
            Kind::Host(_) | Kind::HostDir(_) => Err(EBADF),
            Kind::Tmp(ino) => {
                let append = f.flags.get() & O_APPEND != 0;
                let data = &data[..self.write_room(f, f.offset.get(), data.len(), append)?];
                self.tmp_write(f, ino, data).map(Some)
            }
            Kind::Store(ino) => {
                let append = f.flags.get() & O_APPEND != 0;
                let data = &data[..self.write_room(f, f.offset.get(), data.len(), append)?];
                self.store_write(f, ino, data).map(Some)
            }
            Kind::StoreDir(_) => Err(EBADF),
            Kind::EventFd(id) => self.eventfd_write(f, id, data),
            Kind::SignalFd(_) | Kind::Inotify(_) => Err(EINVAL),
            Kind::Netlink(id) => match self.netlink_send(id, data) {
                Ret::Val(n) if n < 0 => Err(-n),
                Ret::Val(n) => Ok(Some(n as usize)),
                _ => Ok(Some(data.len())),
            },
            // Linux's mqueue files have no write.
            Kind::Epoll(_) | Kind::PidFd(..) | Kind::MQueue(_) => Err(EINVAL),
            Kind::ProcDir(..) => Err(EBADF),
        }
    }

    /// A pipe's bytes (a pipe's read end, a socket's receiving pipe: one
    /// message of a message socket); Ok(None): wait. Descriptors sent with
    /// them are closed: a read has no room for them. `waited_open`: a
    /// named pipe's reader opened without O_NONBLOCK (`WAITED_OPEN_FLAG`).
    pub(super) fn pipe_read(
        &mut self,
        id: usize,
        len: usize,
        nonblocking: bool,
        waited_open: bool,
    ) -> Result<Option<Vec<u8>>, Errno> {
        let Some(p) = self.pipes.get_mut(&id) else {
            return Ok(Some(Vec::new()));
        };
        let stream = p.mode() == pmon::pipe::Mode::Stream;
        match p.take(len, false) {
            Ok(t) => {
                if t.whole > 0 || !stream {
                    self.pipe_changed(id);
                }
                for f in t.rights {
                    self.release_file(f);
                }
                Ok(Some(t.data))
            }
            // A named pipe no writer has opened yet, opened O_NONBLOCK:
            // Linux's read says end of file (its poll says nothing, which
            // `readable` keeps). Opened blocking, Linux's open would still
            // be waiting for a writer: EAGAIN below.
            Err(Io::Wait) if nonblocking && p.writers == 0 && stream && !waited_open => {
                Ok(Some(Vec::new()))
            }
            Err(Io::Wait) if nonblocking => Err(EAGAIN),
            Err(Io::Wait) => Ok(None),
            Err(Io::Reset) => Err(ECONNRESET),
            Err(_) => Err(EPIPE),
        }
    }

    /// Bytes into a pipe (a pipe's write end, a socket's sending pipe);
    /// Ok(None): wait. No reader left: SIGPIPE and EPIPE.
    pub(super) fn pipe_write(
        &mut self,
        tid: Tid,
        id: usize,
        data: &[u8],
        nonblocking: bool,
    ) -> Result<Option<usize>, Errno> {
        self.pipe_send(tid, id, data, Vec::new(), nonblocking, None, None)
    }

    /// [`Self::pipe_write`] with descriptors going along (SCM_RIGHTS), by
    /// a sender named `from` (a named datagram socket). A datagram
    /// socket whose peer is gone refuses, without SIGPIPE, as Linux's
    /// does.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::kernel) fn pipe_send(
        &mut self,
        tid: Tid,
        id: usize,
        data: &[u8],
        rights: Vec<Arc<OpenFile>>,
        nonblocking: bool,
        from: Option<pmon::unixsock::Name>,
        creds: Option<pmon::cmsg::Ucred>,
    ) -> Result<Option<usize>, Errno> {
        // A message always says who sent it; a stream's bytes only when
        // the send claimed credentials (`Pipe::send_as`).
        let message = self
            .pipes
            .get(&id)
            .is_some_and(|p| p.mode() != pmon::pipe::Mode::Stream);
        let creds = match creds {
            None if message => Some(self.ucred_of(self.pid_of(tid))),
            c => c,
        };
        let Some(p) = self.pipes.get_mut(&id) else {
            return Err(EPIPE);
        };
        let datagrams = p.mode() == pmon::pipe::Mode::Datagrams;
        match p.send_as(data, rights, from, creds) {
            Io::Done(n) => {
                self.pipe_changed(id);
                Ok(Some(n))
            }
            Io::Wait if nonblocking => Err(EAGAIN),
            Io::Wait => Ok(None),
            Io::TooBig => Err(EMSGSIZE),
            Io::Reset => Err(ECONNRESET),
            Io::Broken if datagrams => Err(ECONNREFUSED),
            Io::Broken => {
                self.signal_thread(tid, SigInfo::user(SIGPIPE, SI_USER, 0));
                Err(EPIPE)
            }
        }
    }

    /// What a thread that must wait to read (or write) `f` waits for.
    pub(super) fn wait_of(&self, f: &Arc<OpenFile>, write: bool) -> Wait {
        match f.kind {
            Kind::SignalFd(id) => Wait::Signals(self.signalfd_mask(id)),
            Kind::Dgram(id) => Wait::Dgram(id),
            Kind::Socket(rx, tx) => Wait::Pipe(if write { tx } else { rx }),
            // A writer waits for room at its peer.
            Kind::UnixDgram(id) => Wait::Pipe(match self.unix.dgram_peer(id) {
                Some((peer, _)) if write => peer,
                _ => id,
            }),
            Kind::PipeRead(id) | Kind::PipeWrite(id) => Wait::Pipe(id),
            Kind::PtyMaster(id) | Kind::PtySlave(id) => Wait::Pipe(id),
            Kind::EventFd(id) | Kind::Inotify(id) => Wait::EventFd(id),
            Kind::Netlink(id) => Wait::Dgram(id),
            _ => Wait::Stdin,
        }
    }

    /// Gives back bytes [`Self::read_file`] took that the reader could not
    /// store (a bad buffer): no data is lost to an EFAULT, as in Linux.
    pub(super) fn unread(&mut self, f: &Arc<OpenFile>, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        match f.kind {
            Kind::Stdio(0, run) => {
                let mut back = data.to_vec();
                let old = self.stdin_back.entry(run).or_default();
                back.append(old);
                *old = back;
            }
            Kind::PipeRead(id) | Kind::Socket(id, _) | Kind::UnixDgram(id) => {
                if let Some(p) = self.pipes.get_mut(&id) {
                    p.unread(data);
                }
            }
            Kind::EventFd(id) => {
                if let (Some(e), Ok(b)) = (self.eventfds.get_mut(&id), data.try_into()) {
                    let _ = e.write(u64::from_le_bytes(b));
                }
            }
            Kind::Host(_) | Kind::Generated | Kind::Tmp(_) | Kind::Store(_) => f
                .offset
                .set(f.offset.get().saturating_sub(data.len() as u64)),
            _ => {}
        }
    }

    pub(super) fn sys_read(&mut self, tid: Tid, fd: i64, buf: u64, len: usize) -> Ret {
        match self.file(self.pid_of(tid), fd) {
            Ok(f) => self.read_into(tid, &f, &[(buf, len)]),
            Err(e) => err(e),
        }
    }

    pub(super) fn sys_write(&mut self, tid: Tid, fd: i64, buf: u64, len: usize) -> Ret {
        match self.file(self.pid_of(tid), fd) {
            Ok(f) => self.write_from(tid, &f, &[(buf, len)], false),
            Err(e) => err(e),
        }
    }

    pub(super) fn sys_readv(&mut self, tid: Tid, fd: i64, iov: u64, count: usize) -> Ret {
        let pid = self.pid_of(tid);
        let f = match self.file(pid, fd) {
            Ok(f) => f,
            Err(e) => return err(e),
        };
        match self.iovecs(pid, iov, count) {
            Ok(vecs) => self.read_into(tid, &f, &vecs),
            Err(e) => err(e),
        }
    }

    pub(super) fn sys_writev(&mut self, tid: Tid, fd: i64, iov: u64, count: usize) -> Ret {
        let pid = self.pid_of(tid);
        let f = match self.file(pid, fd) {
            Ok(f) => f,
            Err(e) => return err(e),
        };
        match self.iovecs(pid, iov, count) {
            Ok(vecs) => self.write_from(tid, &f, &vecs, false),
            Err(e) => err(e),
        }
    }

    pub(super) fn iovecs(
        &mut self,
        pid: Pid,
        iov: u64,
        count: usize,
    ) -> Result<Vec<(u64, usize)>, Errno> {
        if count > 1024 {
            return Err(EINVAL);
        }
        let raw = uaccess::read_vec(self.space_mut(pid)?, iov, count * 16)?;
        let vecs: Vec<(u64, usize)> = raw
            .chunks_exact(16)
            .map(|c| {
                let base = u64::from_le_bytes(c[..8].try_into().unwrap_or([0; 8]));
                let len = u64::from_le_bytes(c[8..].try_into().unwrap_or([0; 8]));
                (base, len as usize)
            })
            .collect();
        // A length that is negative as an ssize_t is EINVAL, as Linux's.
        if vecs.iter().any(|&(_, len)| len > isize::MAX as usize) {
            return Err(EINVAL);
        }
        Ok(vecs)
    }

    /// read/readv of `f` scattered over `vecs`, 1 MiB at a time: a regular
    /// file fills the buffers up to its end in one call, as on Linux (a
    /// pipe, socket or terminal gives what it has). A buffer that turns out
    /// bad keeps what was stored before it and gives the rest back to the
    /// file (EFAULT if nothing was stored); no data means the thread waits
    /// until the file has some.
    pub(super) fn read_into(&mut self, tid: Tid, f: &Arc<OpenFile>, vecs: &[(u64, usize)]) -> Ret {
        let regular = matches!(
            f.kind,
            Kind::Store(_) | Kind::Tmp(_) | Kind::Host(_) | Kind::Generated
        );
        let total = Self::io_total(vecs);
        let mut done = 0;
        loop {
            let ask = (total - done).min(1 << 20);
            let data = match self.read_file(f, ask) {
                Ok(Some(d)) => d,
                Ok(None) if done > 0 => return Ret::Val(done as i64),
                Ok(None) => {
                    let (deadline, on_timeout) = match self.io_deadline(tid, f, false) {
                        Ok(d) => d,
                        Err(e) => return err(e),
                    };
                    self.block(
                        tid,
                        self.wait_of(f, false),
                        deadline,
                        on_timeout,
                        OnWake::Retry,
                    );
                    return Ret::Block;
                }
                Err(_) if done > 0 => return Ret::Val(done as i64),
                Err(e) => return err(e),
            };
            let got = data.len();
            if let Err((put, e)) = self.scatter(self.pid_of(tid), vecs, done, &data) {
                self.unread(f, &data[put..]);
                return if done + put > 0 {
                    Ret::Val((done + put) as i64)
                } else {
                    err(e)
                };
            }
            done += got;
            if !regular || got < ask || done >= total {
                return Ret::Val(done as i64);
            }
        }
    }

    /// Copies `data` into the process's buffers `vecs` from byte `skip` of
    /// them on; on a fault, the bytes copied before it and the error.
    pub(in crate::kernel) fn scatter(
        &mut self,
        pid: Pid,
        vecs: &[(u64, usize)],
        skip: usize,
        data: &[u8],
    ) -> Result<(), (usize, Errno)> {
        let (mut at, mut start) = (0, 0usize);
        for &(base, vlen) in vecs {
            if at == data.len() {
                break;
            }
            let end = start.saturating_add(vlen);
            if end > skip {
                let from = skip.saturating_sub(start);
                let n = (vlen - from).min(data.len() - at);
                self.space_mut(pid)
                    .and_then(|s| uaccess::write(s, base + from as u64, &data[at..at + n]))
                    .map_err(|e| (at, e))?;
                at += n;
            }
            start = end;
        }
        Ok(())
    }

    /// The bytes a call on the buffers `vecs` moves at most.
    pub(in crate::kernel) fn io_total(vecs: &[(u64, usize)]) -> usize {
        vecs.iter()
            .fold(0usize, |t, &(_, len)| t.saturating_add(len))
            .min(Self::MAX_RW_COUNT)
    }

    /// write/writev of `f` gathered from `vecs`: the bytes are copied from
    /// the process 1 MiB at a time; a regular file takes them all in one
    /// call, as on Linux, and so does a blocking pipe or stream socket,
    /// waiting for room (a terminal or datagram takes what its write
    /// takes); a full pipe makes the thread wait. `dont_wait`: a send with
    /// MSG_DONTWAIT (or a non-blocking vmsplice) on a blocking descriptor.
    pub(in crate::kernel) fn write_from(
        &mut self,
        tid: Tid,
        f: &Arc<OpenFile>,
        vecs: &[(u64, usize)],
        dont_wait: bool,
    ) -> Ret {
        let regular = matches!(f.kind, Kind::Store(_) | Kind::Tmp(_));
        // A blocking write to a pipe or stream socket writes everything,
        // waiting for room as often as it takes (a signal or a send
        // timeout ends it with the count written so far).
        let whole = !(f.nonblocking() || dont_wait)
            && matches!(f.kind, Kind::PipeWrite(_) | Kind::Socket(..));
        let total = Self::io_total(vecs);
        let mut done = match self.threads.get(&tid) {
            Some(t) if t.retrying && whole => t.written.min(total),
            _ => 0,
        };
        if let Some(t) = self.threads.get_mut(&tid) {
            t.written = 0;
        }
        loop {
            let data = match self.gather(self.pid_of(tid), vecs, done, (total - done).min(1 << 20))
            {
                Ok(d) => d,
                Err(_) if done > 0 => return Ret::Val(done as i64),
                Err(e) => return err(e),
            };
            match self.write_file(tid, f, &data) {
                Ok(Some(n)) => {
                    done += n;
                    if done >= total || !(regular || whole) || (regular && n < data.len()) {
                        return Ret::Val(done as i64);
                    }
                }
                Ok(None) if done > 0 && !whole => return Ret::Val(done as i64),
                Ok(None) => {
                    let (deadline, mut on_timeout) = match self.io_deadline(tid, f, true) {
                        Ok(d) => d,
                        Err(_) if done > 0 => return Ret::Val(done as i64),
                        Err(e) => return err(e),
                    };
                    if done > 0 {
                        on_timeout = Some(done as i64);
                        if let Some(t) = self.threads.get_mut(&tid) {
                            t.written = done;
                        }
                    }
                    self.block(
                        tid,
                        self.wait_of(f, true),
                        deadline,
                        on_timeout,
                        OnWake::Retry,
                    );
                    return Ret::Block;
                }
                Err(_) if done > 0 => return Ret::Val(done as i64),
                Err(e) => return err(e),
            }
        }
    }

    /// `len` bytes of the process's buffers `vecs`, from byte `skip` of
    /// them on, copied once.
    pub(in crate::kernel) fn gather(
        &mut self,
        pid: Pid,
        vecs: &[(u64, usize)],
        skip: usize,
        len: usize,
    ) -> Result<Vec<u8>, Errno> {
        let mut data = alloc::vec![0u8; len];
        let (mut at, mut start) = (0, 0usize);
        for &(base, vlen) in vecs {
            if at == len {
                break;
            }
            let end = start.saturating_add(vlen);
            if end > skip {
                let from = skip.saturating_sub(start);
                let n = (vlen - from).min(len - at);
                let s = self.space_mut(pid)?;
                uaccess::read(s, base + from as u64, &mut data[at..at + n])?;
                at += n;
            }
            start = end;
        }
        Ok(data)
    }

    /// fsync and fdatasync: a storage file's writes (and its shared
    /// mappings' stores) are at the storage component when it returns.
    pub(super) fn sys_fsync(&mut self, pid: Pid, fd: i64) -> Ret {
        match self.file(pid, fd) {
            Ok(f) if matches!(f.kind, Kind::Store(_) | Kind::StoreDir(_)) => {
                let mut file = None;
                if let Kind::Store(ino) = f.kind {
                    if let Err(e) = self.flush_file_maps(FileRef::Store(ino)) {
                        return err(e);
                    }
                    file = Some(ino);
                }
                val(self.store_sync(file))
            }
            // Nothing here is durable (tmpfs) or changes (the host's);
            // a tmpfs file's shared mappings reach it.
            Ok(f) if matches!(f.kind, Kind::Tmp(_) | Kind::Host(_) | Kind::HostDir(_)) => {
                if let Kind::Tmp(ino) = f.kind {
                    if let Err(e) = self.flush_file_maps(FileRef::Tmp(ino)) {
                        return err(e);
                    }
                }
                Ret::Val(0)
            }
            Ok(_) => err(EINVAL),
            Err(e) => err(e),
        }
    }

    /// sync_file_range, with Linux's checks: SYNC_FILE_RANGE_WAIT_AFTER
    /// waits for the range to be written, which here is an fdatasync of
    /// the file (writes reach the storage component whole, not by range);
    /// without it the call only starts what the monitor's write-behind
    /// starts anyway. ESPIPE for what is not a file or directory.
    pub(super) fn sys_sync_file_range(
        &mut self,
        pid: Pid,
        fd: i64,
        offset: u64,
        len: u64,
        flags: u64,
    ) -> Ret {
        const WAIT_AFTER: u64 = 4;
        let end = (offset as i64).checked_add(len as i64);
        if flags & !7 != 0 || (offset as i64) < 0 || end.is_none_or(|e| e < 0) {
            // A bad descriptor is told first, as Linux's.
            return err(self.file(pid, fd).err().unwrap_or(EINVAL));
        }
        match self.file(pid, fd) {
            Ok(f) if flags & WAIT_AFTER != 0 && matches!(f.kind, Kind::Store(_) | Kind::Tmp(_)) => {
                self.sys_fsync(pid, fd)
            }
            Ok(f)
                if matches!(
                    f.kind,
                    Kind::Host(_)
                        | Kind::HostDir(_)
                        | Kind::Tmp(_)
                        | Kind::Store(_)
                        | Kind::StoreDir(_)
                        | Kind::Generated
                        | Kind::ProcDir(..)
                ) =>
            {
                Ret::Val(0)
            }
            Ok(_) => err(ESPIPE),
            Err(e) => err(e),
        }
    }
}
