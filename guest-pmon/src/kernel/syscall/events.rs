//! epoll and eventfd system calls ([`pmon::events`] holds their rules).
//! A thread in epoll_wait parks like one in poll: it looks again when any
//! pipe, eventfd or stdin changes, or at its deadline.

use pmon::events::{self, EventFd, FdState};

use super::*;

const EFD_SEMAPHORE: u64 = 1;
const CLOCK_REALTIME: u64 = 0;
const CLOCK_MONOTONIC: u64 = 1;
const CLOCK_BOOTTIME: u64 = 7;
const TFD_TIMER_ABSTIME: u64 = 1;
const TFD_TIMER_CANCEL_ON_SET: u64 = 2;

impl Kernel {
    pub(super) fn sys_epoll_create(&mut self, pid: Pid, flags: u64) -> Ret {
        if flags & !(O_CLOEXEC as u64) != 0 {
            return err(EINVAL);
        }
        let id = self.next_event_id;
        self.next_event_id += 1;
        self.epolls.insert(id, events::Epoll::new());
        let file = OpenFile::new(Kind::Epoll(id), O_RDWR);
        match self
            .proc_mut(pid)
            .and_then(|p| p.fds.install(file, flags != 0, 0))
        {
            Ok(fd) => Ret::Val(fd),
            Err(e) => {
                self.epolls.remove(&id);
                err(e)
            }
        }
    }

    pub(super) fn sys_eventfd(&mut self, pid: Pid, initial: u64, flags: u64) -> Ret {
        let known = EFD_SEMAPHORE | (O_CLOEXEC | O_NONBLOCK) as u64;
        if flags & !known != 0 {
            return err(EINVAL);
        }
        let id = self.next_event_id;
        self.next_event_id += 1;
        self.eventfds.insert(
            id,
            EventFd::new(initial as u32 as u64, flags & EFD_SEMAPHORE != 0),
        );
        self.install_eventfd(pid, id, flags)
    }

    /// A descriptor for eventfd `id` (a timerfd too), O_NONBLOCK and
    /// O_CLOEXEC as `flags` say; the eventfd goes if none can be had.
    fn install_eventfd(&mut self, pid: Pid, id: usize, flags: u64) -> Ret {
        let file = OpenFile::new(Kind::EventFd(id), O_RDWR | (flags as u32 & O_NONBLOCK));
        match self
            .proc_mut(pid)
            .and_then(|p| p.fds.install(file, flags & O_CLOEXEC as u64 != 0, 0))
        {
            Ok(fd) => Ret::Val(fd),
            Err(e) => {
                self.eventfds.remove(&id);
                self.timerfds.remove(&id);
                err(e)
            }
        }
    }

    /// timerfd_create: an eventfd whose counter its timer raises
    /// ([`pmon::events::TimerFd`]). CLOCK_MONOTONIC and CLOCK_BOOTTIME
    /// are the same clock here (nothing suspends); CLOCK_REALTIME timers
    /// are set against the wall clock as it is when they are armed.
    pub(super) fn sys_timerfd_create(&mut self, pid: Pid, clock: u64, flags: u64) -> Ret {
        if !matches!(clock, CLOCK_REALTIME | CLOCK_MONOTONIC | CLOCK_BOOTTIME) {
            return err(EINVAL);
        }
        if flags & !((O_CLOEXEC | O_NONBLOCK) as u64) != 0 {
            return err(EINVAL);
        }
        let id = self.next_event_id;
        self.next_event_id += 1;
        self.eventfds.insert(id, EventFd::new(0, false));
        let timer = events::TimerFd {
            realtime: clock == CLOCK_REALTIME,
            ..Default::default()
        };
        self.timerfds.insert(id, timer);
        self.install_eventfd(pid, id, flags)
    }

    /// The timerfd `fd` leads to: its id; EBADF for no descriptor, EINVAL
    /// for one that is not a timerfd.
    fn timerfd_of(&self, pid: Pid, fd: i64) -> Result<usize, Errno> {
        match self.file(pid, fd)?.kind {
            Kind::EventFd(id) if self.timerfds.contains_key(&id) => Ok(id),
            _ => Err(EINVAL),
        }
    }

    /// The current setting of timerfd `id` as an itimerspec's bytes.
    fn timerfd_setting(&self, id: usize) -> [u8; 32] {
        let (left, period) = self
            .timerfds
            .get(&id)
            .map_or((0, 0), |t| t.remaining(self.now_ns()));
        itimerspec(period, left)
    }

    pub(super) fn sys_timerfd_settime(
        &mut self,
        pid: Pid,
        fd: i64,
        flags: u64,
        new: u64,
        old: u64,
    ) -> Ret {
        let id = match self.timerfd_of(pid, fd) {
            Ok(id) => id,
            Err(e) => return err(e),
        };
        if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
            return err(EINVAL);
        }
        let (period, value) = match self.read_itimerspec(pid, new) {
            Ok(s) => s,
            Err(e) => return err(e),
        };
        if old != 0 {
            let bytes = self.timerfd_setting(id);
            if let Err(e) = self
                .space_mut(pid)
                .and_then(|s| uaccess::write(s, old, &bytes))
            {
                return err(e);
            }
        }
        let now = self.now_ns();
        let mut owed = 0;
        let first = (value > 0).then(|| {
            if flags & TFD_TIMER_ABSTIME == 0 {
                return now.saturating_add(value);
            }
            // An absolute time on the timer's clock, as monotonic ns (one
            // already past expires at once, the periods since counted).
            if self.timerfds.get(&id).is_some_and(|t| t.realtime) {
                let at;
                (at, owed) = events::from_wall_clock(value, self.realtime_ns(), now, period);
                at
            } else {
                value
            }
        });
        if let Some(t) = self.timerfds.get_mut(&id) {
            t.arm(first, period);
            t.owed = owed;
        }
        if let Some(e) = self.eventfds.get_mut(&id) {
            e.clear();
        }
        self.wake_all(Wait::EventFd(id));
        Ret::Val(0)
    }

    pub(super) fn sys_timerfd_gettime(&mut self, pid: Pid, fd: i64, out: u64) -> Ret {
        let id = match self.timerfd_of(pid, fd) {
            Ok(id) => id,
            Err(e) => return err(e),
        };
        let bytes = self.timerfd_setting(id);
        match self
            .space_mut(pid)
            .and_then(|s| uaccess::write(s, out, &bytes))
        {
            Ok(()) => Ret::Val(0),
            Err(e) => err(e),
        }
    }

    pub(super) fn sys_epoll_ctl(
        &mut self,
        pid: Pid,
        epfd: i64,
        op: u64,
        fd: i64,
        event: u64,
    ) -> Ret {
        let ep = match self.file(pid, epfd) {
            Ok(f) => f,
            Err(e) => return err(e),
        };
        let target = match self.file(pid, fd) {
            // An O_PATH descriptor is for no I/O: EBADF, first, as
            // Linux's fdget.
            Ok(f) if f.flags.get() & O_PATH != 0 => return err(EBADF),
            Ok(f) => f,
            Err(e) => return err(e),
        };
        let Kind::Epoll(id) = ep.kind else {
            return err(EINVAL);
        };
        if fd == epfd {
            return err(EINVAL);
        }
        // An epoll instance in another: no loop, and no deeper than
        // Linux's nesting limit.
        if let (Kind::Epoll(inner), true) = (target.kind, op as u32 == events::EPOLL_CTL_ADD) {
            if self.epoll_reaches(pid, inner, id, 0) {
                const ELOOP: Errno = 40;
                return err(ELOOP);
            }
        }
        // Regular files, directories and the devices without a poll
        // (/dev/null, zero, full) are always ready: epoll refuses them
        // (EPERM), as Linux.
        if matches!(
            target.kind,
            Kind::Host(_)
                | Kind::HostDir(_)
                | Kind::Tmp(_)
                | Kind::Store(_)
                | Kind::StoreDir(_)
                | Kind::ProcDir(..)
                | Kind::Generated
                | Kind::DevNull
                | Kind::DevZero
                | Kind::DevFull
        ) {
            return err(EPERM);
        }
        let (mask, data) = if op as u32 == events::EPOLL_CTL_DEL {
            (0, 0)
        } else {
            match self
                .space_mut(pid)
                .and_then(|s| uaccess::read_vec(s, event, events::EVENT_LEN))
            {
                Ok(b) => (
                    u32::from_le_bytes(b[0..4].try_into().unwrap_or([0; 4])),
                    u64::from_le_bytes(b[4..12].try_into().unwrap_or([0; 8])),
                ),
                Err(e) => return err(e),
            }
        };
        // Linux wakes one of several epoll instances (EPOLLEXCLUSIVE) only
        // for files that are not epoll instances themselves.
        if matches!(target.kind, Kind::Epoll(_))
            && op as u32 == events::EPOLL_CTL_ADD
            && mask & events::EPOLLEXCLUSIVE != 0
        {
            return err(EINVAL);
        }
        let file = target.serial as usize;
        let done = match self.epolls.get_mut(&id) {
            Some(e) => e.ctl(op as u32, fd as i32, file, mask, data),
            None => return err(EBADF),
        };
        // A descriptor watched from now on that is ready already wakes a
        // thread parked in epoll_wait, as Linux's ep_insert and ep_modify
        // do: Go adds a socket whose non-blocking connect was refused
        // while its netpoller sleeps on another vCPU, and nothing else
        // would ever wake it.
        if done.is_ok() && op as u32 != events::EPOLL_CTL_DEL {
            let state = self.epoll_state(&target);
            if state.ready & (mask | events::EPOLLERR | events::EPOLLHUP) != 0 {
                self.wake_all(Wait::Any);
            }
        }
        val(done.map(|_| 0))
    }

    /// epoll_wait, epoll_pwait and epoll_pwait2 (`timeout_ms` < 0: no
    /// deadline; the signal mask of the p-variants is not applied).
    pub(super) fn sys_epoll_wait(
        &mut self,
        tid: Tid,
        epfd: i64,
        out: u64,
        max: i64,
        timeout_ms: i64,
    ) -> Ret {
        let pid = self.pid_of(tid);
        if max <= 0 || max > (i32::MAX as i64) / events::EVENT_LEN as i64 {
            return err(EINVAL);
        }
        let ep = match self.file(pid, epfd) {
            Ok(f) => f,
            Err(e) => return err(e),
        };
        let Kind::Epoll(id) = ep.kind else {
            return err(EINVAL);
        };
        let Some(mut epoll) = self.epolls.remove(&id) else {
            return err(EBADF);
        };
        let mut states = BTreeMap::new();
        let mut stdin = false;
        for fd in epoll.fds() {
            if let Ok(f) = self.file(pid, fd as i64) {
                stdin |= matches!(f.kind, Kind::Stdio(0, _));
                let state = self.epoll_state(&f);
                states.insert(fd, state);
            }
        }
        let ready = epoll.collect(max as usize, |fd| states.get(&fd).copied());
        self.epolls.insert(id, epoll);
        let deadline = self.wait_deadline(
            tid,
            (timeout_ms >= 0).then(|| timeout_ms as u64 * 1_000_000),
        );
        if !ready.is_empty() || deadline.is_some_and(|d| d <= self.now_ns()) {
            let bytes = events::encode(&ready);
            return val(self
                .space_mut(pid)
                .and_then(|s| uaccess::write(s, out, &bytes).map(|_| ready.len() as i64)));
        }
        self.park_until_ready(tid, deadline, stdin);
        Ret::Block
    }

    /// Whether epoll instance `from` watches `to`, itself or through the
    /// instances it watches (descriptors of process `pid`), or watches a
    /// chain deeper than Linux's EPOLL_MAX_NESTS (4).
    fn epoll_reaches(&mut self, pid: Pid, from: usize, to: usize, depth: u32) -> bool {
        if from == to || depth >= 4 {
            return true;
        }
        let fds = self.epolls.get(&from).map(|e| e.fds()).unwrap_or_default();
        fds.into_iter()
            .any(|fd| match self.file(pid, fd as i64).map(|f| f.kind) {
                Ok(Kind::Epoll(inner)) => self.epoll_reaches(pid, inner, to, depth + 1),
                _ => false,
            })
    }

    /// Whether epoll instance `id` has events to report (so it is
    /// readable where another epoll, poll or select watches it); its
    /// descriptors are the calling process's.
    pub(super) fn epoll_readable(&mut self, id: usize) -> bool {
        let pid = self.caller().map_or(0, |t| self.pid_of(t));
        let Some(epoll) = self.epolls.remove(&id) else {
            return false;
        };
        let mut states = BTreeMap::new();
        for fd in epoll.fds() {
            if let Ok(f) = self.file(pid, fd as i64) {
                let state = self.epoll_state(&f);
                states.insert(fd, state);
            }
        }
        let ready = epoll.any_ready(|fd| states.get(&fd).copied());
        self.epolls.insert(id, epoll);
        ready
    }

    /// What an open file is now, for epoll.
    pub(super) fn epoll_state(&mut self, f: &Arc<OpenFile>) -> FdState {
        let (r, w, hup) = self.readiness(f);
        let mut ready = 0;
        if r {
            ready |= events::EPOLLIN | events::EPOLLRDNORM;
        }
        if w {
            ready |= events::EPOLLOUT | events::EPOLLWRNORM;
        }
        if self.urgent(f) {
            ready |= events::EPOLLPRI;
        }
        if hup {
            ready |= events::EPOLLHUP;
        }
        if self.read_shut_down(f) {
            ready |= events::EPOLLRDHUP;
        }
        if self.has_error(f) {
            ready |= events::EPOLLERR;
        }
        let generation = match f.kind {
            Kind::PipeRead(id) | Kind::PipeWrite(id) => {
                self.pipe_generation.get(&id).copied().unwrap_or(0)
            }
            Kind::Socket(rx, tx) => {
                let g = |id| self.pipe_generation.get(&id).copied().unwrap_or(0);
                g(rx).wrapping_add(g(tx))
            }
            Kind::PtyMaster(id) | Kind::PtySlave(id) => {
                self.pipe_generation.get(&id).copied().unwrap_or(0)
            }
            Kind::UnixDgram(id) => {
                let g = |id| self.pipe_generation.get(&id).copied().unwrap_or(0);
                let peer = self.unix.dgram_peer(id).map_or(0, |(p, _)| g(p));
                g(id).wrapping_add(peer)
            }
            Kind::EventFd(id) => self.eventfds.get(&id).map_or(0, |e| e.generation),
            Kind::Inotify(id) => self.inotifies.get(&id).map_or(0, |i| i.generation),
            Kind::MQueue(id) => self.mqueues.queues.get(&id).map_or(0, |q| q.generation),
            // A process's life moves one way: its stage is the generation.
            Kind::PidFd(target, started) => self.pidfd_state(target, started) as u64,
            // Not tracked: every look is news (edge-triggered acts as
            // level-triggered).
            _ => self.now_ns(),
        };
        FdState {
            file: f.serial as usize,
            ready,
            generation,
        }
    }

    /// One read of an eventfd: its 8-byte counter; Ok(None): wait.
    pub(super) fn eventfd_read(
        &mut self,
        f: &OpenFile,
        id: usize,
        len: usize,
    ) -> Result<Option<Vec<u8>>, Errno> {
        if len < 8 {
            return Err(EINVAL);
        }
        let Some(e) = self.eventfds.get_mut(&id) else {
            return Err(EBADF);
        };
        match e.read() {
            Ok(v) => {
                self.wake_all(Wait::EventFd(id));
                Ok(Some(v.to_le_bytes().to_vec()))
            }
            Err(_) if f.nonblocking() => Err(EAGAIN),
            Err(_) => Ok(None),
        }
    }

    /// One write to an eventfd; Ok(None): wait.
    pub(super) fn eventfd_write(
        &mut self,
        f: &OpenFile,
        id: usize,
        data: &[u8],
    ) -> Result<Option<usize>, Errno> {
        if self.timerfds.contains_key(&id) {
            return Err(EINVAL);
        }
        let Some(v) = data
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
        else {
            return Err(EINVAL);
        };
        let Some(e) = self.eventfds.get_mut(&id) else {
            return Err(EBADF);
        };
        match e.write(v) {
            Ok(()) => {
                self.wake_all(Wait::EventFd(id));
                Ok(Some(8))
            }
            Err(events::EAGAIN) if !f.nonblocking() => Ok(None),
            Err(e) => Err(e),
        }
    }
}
