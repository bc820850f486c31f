//! Waiting for descriptors: poll, ppoll, select and pselect6, and the
//! readiness of each kind of open file they share with epoll.

use super::*;

impl Kernel {
    pub(super) fn sys_poll(&mut self, tid: Tid, fds: u64, n: usize, timeout_ms: i64) -> Ret {
        const POLLIN: u16 = 1;
        const POLLPRI: u16 = 2;
        const POLLOUT: u16 = 4;
        const POLLERR: u16 = 8;
        const POLLHUP: u16 = 16;
        const POLLNVAL: u16 = 32;
        const POLLRDNORM: u16 = 0x40;
        const POLLWRNORM: u16 = 0x100;
        const POLLRDHUP: u16 = 0x2000;
        let pid = self.pid_of(tid);
        // Linux's bound: the descriptors a process may have.
        if n > self.procs.get(&pid).map_or(0, |p| p.fds.limit) {
            return err(EINVAL);
        }
        let mut raw = match self
            .space_mut(pid)
            .and_then(|s| uaccess::read_vec(s, fds, n * 8))
        {
            Ok(r) => r,
            Err(e) => return err(e),
        };
        let mut ready = 0;
        let mut stdin = false;
        for c in raw.chunks_exact_mut(8) {
            let fd = i32::from_le_bytes(c[..4].try_into().unwrap_or([0; 4]));
            let events = u16::from_le_bytes(c[4..6].try_into().unwrap_or([0; 2]));
            let revents = if fd < 0 {
                0
            } else {
                match self.file(pid, fd as i64) {
                    Err(_) => POLLNVAL,
                    Ok(f) => {
                        stdin |= matches!(f.kind, Kind::Stdio(0, _));
                        let (r, w, hup) = self.readiness(&f);
                        let mut e = 0;
                        if r {
                            e |= events & (POLLIN | POLLRDNORM);
                        }
                        if w {
                            e |= events & (POLLOUT | POLLWRNORM);
                        }
                        if events & POLLPRI != 0 && self.urgent(&f) {
                            e |= POLLPRI;
                        }
                        if events & POLLRDHUP != 0 && self.read_shut_down(&f) {
                            e |= POLLRDHUP;
                        }
                        if hup {
                            e |= POLLHUP;
                        }
                        if self.has_error(&f) {
                            e |= POLLERR;
                        }
                        e
                    }
                }
            };
            c[6..8].copy_from_slice(&revents.to_le_bytes());
            if revents != 0 {
                ready += 1;
            }
        }
        let deadline = self.wait_deadline(
            tid,
            (timeout_ms >= 0).then(|| timeout_ms as u64 * 1_000_000),
        );
        if ready > 0 || deadline.is_some_and(|d| d <= self.now_ns()) {
            return val(self
                .space_mut(pid)
                .and_then(|s| uaccess::write(s, fds, &raw).map(|_| ready)));
        }
        self.park_until_ready(tid, deadline, stdin);
        Ret::Block
    }

    /// The monitor's deadline for an absolute time `at` (ns) on the wall
    /// clock (`realtime`) or CLOCK_MONOTONIC.
    pub(in crate::kernel) fn absolute_deadline(&self, at: u64, realtime: bool) -> u64 {
        let now_clock = if realtime {
            self.realtime_ns()
        } else {
            self.now_ns()
        };
        self.now_ns() + at.saturating_sub(now_clock)
    }

    /// The deadline of a poll-like call that waits `timeout_ns` (None:
    /// for ever). A call made again after a wake keeps its first deadline,
    /// so that activity elsewhere cannot postpone its timeout; once it has
    /// passed the call looks one last time and returns.
    pub(super) fn wait_deadline(&mut self, tid: Tid, timeout_ns: Option<u64>) -> Option<u64> {
        let fresh = timeout_ns.map(|t| self.now_ns().saturating_add(t));
        match self.threads.get_mut(&tid) {
            Some(t) if t.retrying => t.wait_deadline.unwrap_or(fresh),
            Some(t) => {
                t.wait_deadline = Some(fresh);
                fresh
            }
            None => fresh,
        }
    }

    /// Parks a thread of poll, select or epoll_wait until something it may
    /// be waiting for changes (a pipe, an eventfd, stdin if it watches it)
    /// or its deadline: either way it looks again.
    pub(super) fn park_until_ready(&mut self, tid: Tid, deadline: Option<u64>, stdin: bool) {
        let wait = if stdin { Wait::AnyStdin } else { Wait::Any };
        self.block(tid, wait, deadline, None, OnWake::Retry);
    }

    /// Whether `f` is a socket whose receiving side is shut (poll's
    /// POLLRDHUP): by this end (SHUT_RD), by its peer's end of writing,
    /// or by a failed connect. Never a pipe's: Linux reports POLLRDHUP for
    /// sockets only.
    pub(in crate::kernel) fn read_shut_down(&self, f: &OpenFile) -> bool {
        match f.kind {
            Kind::Socket(rx, _) => self.pipes.get(&rx).is_none_or(|p| p.ended()),
            Kind::Unix(id) => self.connect_failed(id) || self.unix.reading_shut(id),
            Kind::Dgram(id) => self.dgrams.read_shut(id),
            _ => false,
        }
    }

    /// Whether `f` holds an error condition (poll's POLLERR, epoll's
    /// EPOLLERR): a pipe's write end whose readers are gone, a TCP
    /// connect that failed after EINPROGRESS, a UDP socket's pending error.
    pub(in crate::kernel) fn has_error(&self, f: &OpenFile) -> bool {
        match f.kind {
            Kind::PipeWrite(id) => self.pipes.get(&id).is_none_or(|p| p.readers == 0),
            Kind::Unix(id) => self.connect_failed(id),
            Kind::Dgram(id) => self.dgrams.has_error(id),
            Kind::Socket(rx, tx) => {
                self.pipes.get(&rx).is_some_and(|p| p.reset_by_peer)
                    || self.pipes.get(&tx).is_some_and(|p| p.writer_error)
            }
            _ => false,
        }
    }

    /// Whether `id` names the parent outside ([`OUTSIDE`]): no process or
    /// thread here has that id.
    pub(in crate::kernel) fn is_outside(&self, id: u32) -> bool {
        id == OUTSIDE && !self.procs.contains_key(&id) && !self.threads.contains_key(&id)
    }

    /// Whether a send on TCP or SOCK_SEQPACKET connection (rx, tx)
    /// reports its peer's reset now (taking it): Linux's send reports a
    /// pending socket error before EPIPE, without SIGPIPE. An AF_UNIX
    /// stream's send does not: it fails with EPIPE and leaves the error to
    /// the next read or SO_ERROR.
    pub(in crate::kernel) fn send_takes_reset(&mut self, rx: usize, tx: usize) -> bool {
        if !self
            .pipes
            .get(&tx)
            .is_some_and(|p| p.tcp || p.mode() == pmon::pipe::Mode::Packets)
        {
            return false;
        }
        self.pipes.get_mut(&rx).is_some_and(|p| p.take_reset())
    }

    /// Whether a socket holds urgent data not taken (POLLPRI).
    pub(in crate::kernel) fn urgent(&self, f: &Arc<OpenFile>) -> bool {
        match f.kind {
            Kind::Socket(rx, _) => self.pipes.get(&rx).is_some_and(|p| p.urgent_pending()),
            _ => false,
        }
    }

    /// (readable, writable, hung up) for poll and select.
    pub(super) fn readiness(&mut self, f: &Arc<OpenFile>) -> (bool, bool, bool) {
        match f.kind {
            Kind::PipeRead(id) => match self.pipes.get(&id) {
                Some(p) => (p.holds_data(), false, p.writers == 0 && !p.awaits_writer),
                None => (true, false, true),
            },
            Kind::PipeWrite(id) => match self.pipes.get(&id) {
                Some(p) => (false, p.writable(), false),
                None => (false, true, false),
            },
            Kind::Stdio(0, run) if self.stdin_back.get(&run).is_some_and(|b| !b.is_empty()) => {
                (true, false, false)
            }
            Kind::Stdio(0, run) => {
                let mut probe = [0u8; 0];
                // A zero-byte read tells whether stdin has something (or ended).
                let n = host::read_stdin(run, &mut probe);
                (n != -lego_proto::program::EAGAIN, false, false)
            }
            Kind::Stdio(..) => (false, true, false),
            Kind::Socket(rx, tx) => {
                // SO_RCVLOWAT: a TCP socket is readable with that many
                // bytes (Linux's tcp_poll; AF_UNIX's poll ignores it).
                let lowat = self
                    .sock_option(rx, unix::SOL_SOCKET, unix::SO_RCVLOWAT)
                    .map_or(1, |v| v as usize);
                let (r, ended, tcp, reset) = match self.pipes.get(&rx) {
                    Some(p) => {
                        let r = if p.tcp && lowat > 1 {
                            p.pending() >= lowat || p.ended()
                        } else {
                            p.readable()
                        };
                        (r, p.ended(), p.tcp, p.was_reset)
                    }
                    None => (true, true, false, false),
                };
                let (w, peer_shut, sent_reset) = match self.pipes.get(&tx) {
                    Some(p) => (
                        p.writable() || p.readers == 0,
                        p.readers == 0 || p.read_shut,
                        p.is_reset(),
                    ),
                    None => (true, true, false),
                };
                // Linux's POLLHUP: both directions shut. TCP counts only
                // this end's shutdowns (a peer's close is a FIN: readable,
                // POLLRDHUP) and a reset; AF_UNIX counts the peer's too.
                let sent_shut = f.flags.get() & pmon::fd::SHUT_WR_FLAG != 0;
                let hup = if tcp {
                    reset || sent_reset || (ended && sent_shut)
                } else {
                    ended && (sent_shut || peer_shut)
                };
                (r || ended, w, hup)
            }
            Kind::EventFd(id) => match self.eventfds.get(&id) {
                Some(e) => (e.readable(), e.writable(), false),
                None => (false, false, true),
            },
            // A listener is readable with a connection to accept; a
            // socket that neither listens nor is connected is hung up,
            // as Linux polls an unconnected stream socket.
            Kind::Unix(id) if self.unix.is_listening(id) => (self.unix.ready(id), false, false),
            // A TCP connect that failed after EINPROGRESS.
            Kind::Unix(id) if self.connect_failed(id) => (true, true, true),
            // Writable and hung up, as Linux polls a closed stream socket.
            Kind::Unix(id) => (self.unix.reading_shut(id), true, true),
            Kind::Dgram(id) => (
                self.dgrams.readable(id) || self.dgrams.read_shut(id),
                true,
                self.dgrams.shut_both(id),
            ),
            Kind::Netlink(id) => (
                self.netlinks.get(&id).is_some_and(|(s, _)| s.readable()),
                true,
                false,
            ),
            Kind::UnixDgram(id) => {
                let (r, w) = self.unix_dgram_ready(id);
                (r, w, false)
            }
            Kind::PtyMaster(id) => self.pty_ready(id, true),
            Kind::PtySlave(id) => self.pty_ready(id, false),
            Kind::SignalFd(id) => {
                let mask = self.signalfd_mask(id);
                let ready = self.caller().is_some_and(|t| self.pending_in(t, mask));
                (ready, false, false)
            }
            // Taken out of the table while it is looked at, so an
            // instance met again (a loop ELOOP did not stop) is not ready.
            Kind::Epoll(id) => (self.epoll_readable(id), false, false),
            Kind::Inotify(id) => match self.inotifies.get(&id) {
                Some(i) => (!i.is_empty(), false, false),
                None => (false, false, true),
            },
            Kind::PidFd(target, started) => self.pidfd_readiness(target, started),
            Kind::MQueue(id) => match self.mqueues.queues.get(&id) {
                Some(q) => (q.readable(), q.writable(), false),
                None => (false, false, true),
            },
            _ => (true, true, false),
        }
    }

    /// ppoll, pselect6 and epoll_pwait(2) with a signal mask (`mask`, a
    /// user pointer to `size` bytes; 0: none): the thread waits under
    /// that mask, as Linux's set_user_sigmask, so that a signal blocked
    /// until the call (make's SIGCHLD around its jobserver's pselect)
    /// ends the wait with EINTR and its handler runs, the frame keeping
    /// the mask from before. Returning otherwise, the mask from before
    /// comes back at once. A call made again after a wake keeps the mask
    /// saved the first time.
    pub(super) fn with_call_mask(
        &mut self,
        tid: Tid,
        mask: u64,
        size: u64,
        call: impl FnOnce(&mut Kernel) -> Ret,
    ) -> Ret {
        if mask == 0 {
            return call(self);
        }
        if size != 8 {
            return err(EINVAL);
        }
        let pid = self.pid_of(tid);
        let new = match self.space_mut(pid).and_then(|s| uaccess::read_u64(s, mask)) {
            Ok(m) => m & !UNBLOCKABLE,
            Err(e) => return err(e),
        };
        if let Some(t) = self.threads.get_mut(&tid) {
            if t.saved_mask.is_none() {
                t.saved_mask = Some(t.sigmask);
            }
            t.sigmask = new;
        }
        // Ready at once, it returns so (a signal pending stays so, under
        // the mask from before); about to wait, a signal pending and open
        // under the new mask ends the wait (`interrupt_if_signalled`).
        let r = call(self);
        match r {
            Ret::Block | Ret::NoReturn => {}
            Ret::Val(v) if v == -EINTR => {}
            Ret::Val(_) => {
                if let Some(t) = self.threads.get_mut(&tid) {
                    if let Some(m) = t.saved_mask.take() {
                        t.sigmask = m;
                    }
                }
            }
        }
        r
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn sys_select(
        &mut self,
        tid: Tid,
        n: u64,
        rd: u64,
        wr: u64,
        ex: u64,
        tv: u64,
        pselect: bool,
    ) -> Ret {
        let pid = self.pid_of(tid);
        let n = n as usize;
        if n > 1024 {
            return err(EINVAL);
        }
        let bytes = n.div_ceil(64) * 8;
        let read_set = |k: &mut Kernel, p: u64| -> Result<Vec<u8>, Errno> {
            if p == 0 {
                Ok(alloc::vec![0u8; bytes])
            } else {
                uaccess::read_vec(k.space_mut(pid)?, p, bytes)
            }
        };
        let (r_in, w_in, x_in) = match (read_set(self, rd), read_set(self, wr), read_set(self, ex))
        {
            (Ok(a), Ok(b), Ok(c)) => (a, b, c),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return err(e),
        };
        let mut r_out = alloc::vec![0u8; bytes];
        let mut w_out = alloc::vec![0u8; bytes];
        let mut x_out = alloc::vec![0u8; bytes];
        let mut ready = 0i64;
        let mut stdin = false;
        for fd in 0..n {
            let (want_r, want_w, want_x) = (
                r_in[fd / 8] & (1 << (fd % 8)) != 0,
                w_in[fd / 8] & (1 << (fd % 8)) != 0,
                x_in[fd / 8] & (1 << (fd % 8)) != 0,
            );
            if !want_r && !want_w && !want_x {
                continue;
            }
            let f = match self.file(pid, fd as i64) {
                Ok(f) => f,
                Err(e) => return err(e),
            };
            stdin |= matches!(f.kind, Kind::Stdio(0, _));
            let (r, w, hup) = self.readiness(&f);
            // Linux's select counts an error condition as both readable
            // and writable (POLLIN_SET and POLLOUT_SET hold EPOLLERR):
            // asyncio learns that a child closed its stdin pipe by
            // watching the pipe's write end for reading.
            let error = self.has_error(&f);
            if want_r && (r || hup || error) {
                r_out[fd / 8] |= 1 << (fd % 8);
                ready += 1;
            }
            if want_w && (w || error) {
                w_out[fd / 8] |= 1 << (fd % 8);
                ready += 1;
            }
            // The exceptional condition: urgent data (POLLPRI).
            if want_x && self.urgent(&f) {
                x_out[fd / 8] |= 1 << (fd % 8);
                ready += 1;
            }
        }
        let timeout_ns = if tv == 0 {
            None
        } else if pselect {
            match self.read_timespec(pid, tv) {
                Ok(ns) => Some(ns),
                Err(e) => return err(e),
            }
        } else {
            match self
                .space_mut(pid)
                .and_then(|s| uaccess::read_vec(s, tv, 16))
            {
                Ok(b) => {
                    let s = u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
                    let us = u64::from_le_bytes(b[8..].try_into().unwrap_or([0; 8]));
                    Some(s.saturating_mul(1_000_000_000).saturating_add(us * 1000))
                }
                Err(e) => return err(e),
            }
        };
        let deadline = self.wait_deadline(tid, timeout_ns);
        let now = self.now_ns();
        if ready > 0 || deadline.is_some_and(|d| d <= now) {
            // As Linux: the timeout is left holding the time not waited.
            let left = deadline.map_or(0, |d| d.saturating_sub(now));
            let (sec, frac) = if pselect {
                (left / 1_000_000_000, left % 1_000_000_000)
            } else {
                (left / 1_000_000_000, left % 1_000_000_000 / 1000)
            };
            // Unless the process's personality has STICKY_TIMEOUTS.
            const STICKY_TIMEOUTS: u32 = 0x0400_0000;
            let sticky = self
                .procs
                .get(&pid)
                .is_some_and(|p| p.personality & STICKY_TIMEOUTS != 0);
            let r = self.space_mut(pid).and_then(|s| {
                if rd != 0 {
                    uaccess::write(s, rd, &r_out)?;
                }
                if wr != 0 {
                    uaccess::write(s, wr, &w_out)?;
                }
                if ex != 0 {
                    uaccess::write(s, ex, &x_out)?;
                }
                if tv != 0 && !sticky {
                    uaccess::write_u64(s, tv, sec)?;
                    uaccess::write_u64(s, tv + 8, frac)?;
                }
                Ok(ready)
            });
            return val(r);
        }
        // At the deadline the retry finds it passed, clears the sets and
        // returns 0, as Linux does.
        self.park_until_ready(tid, deadline, stdin);
        Ret::Block
    }
}
