//! POSIX message queues: mq_open, mq_unlink, mq_timedsend,
//! mq_timedreceive, mq_notify and mq_getsetattr on the processor's queues
//! ([`pmon::mqueue`]). A descriptor of a queue is a file (`Kind::MQueue`)
//! that poll, select and epoll watch and whose read gives Linux's status
//! line. A send to a full queue or a receive from an empty one parks the
//! thread until the queue changes or its absolute CLOCK_REALTIME timeout
//! (ETIMEDOUT); O_NONBLOCK makes it EAGAIN.
//!
//! Notification: SIGEV_SIGNAL sends the signal with si_code SI_MESGQ, the
//! sender's pid and uid and the registered value; SIGEV_THREAD, as glibc
//! and musl make it, sends its 32-byte cookie to their NETLINK_ROUTE
//! socket, whose helper thread then runs the function. A registration
//! ends when it fires, when its process gives it up (a null sigevent),
//! closes any descriptor of the queue (close, dup2 over it, an exec's
//! close-on-exec) or exits.
//!
//! Decided: there is no /dev/mqueue to list or mount; queues are named only
//! through these calls.

use pmon::mqueue::{Notify, Opener, Sent};

use super::*;

const ETIMEDOUT: Errno = 110;
const EMSGSIZE: Errno = 90;
const O_CREAT: u64 = 0o100;
const O_ACCMODE: u32 = 3;
const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SIGEV_THREAD: i32 = 2;
/// si_code of a message queue's notification.
const SI_MESGQ: i32 = -3;
/// The last byte of a SIGEV_THREAD cookie: a message came, or the
/// registration was removed.
const NOTIFY_WOKENUP: u8 = 1;
const NOTIFY_REMOVED: u8 = 2;
/// The size of struct mq_attr.
const MQ_ATTR_LEN: usize = 64;
/// RLIMIT_MSGQUEUE.
pub(super) const RLIMIT_MSGQUEUE: usize = 12;

impl Kernel {
    /// Who process `pid` is to the queues.
    fn mq_opener(&self, pid: Pid) -> Opener {
        let Some(p) = self.procs.get(&pid) else {
            return Opener::default();
        };
        Opener {
            uid: p.cred.uid.effective,
            gid: p.cred.gid.effective,
            override_modes: p.cred.capable(pmon::caps::DAC_OVERRIDE),
            owner_override: p.cred.capable(pmon::caps::FOWNER),
            over_limits: p.cred.capable(pmon::caps::SYS_RESOURCE),
            bytes_limit: p.rlimits[RLIMIT_MSGQUEUE].0,
        }
    }

    /// A queue's name as the call gives it (the C library took its slash).
    fn mq_name(&mut self, pid: Pid, at: u64) -> Result<Vec<u8>, Errno> {
        uaccess::read_cstr(self.space_mut(pid)?, at, 4095)
    }

    pub(super) fn sys_mq_open(
        &mut self,
        pid: Pid,
        name: u64,
        oflag: u64,
        mode: u64,
        attr: u64,
    ) -> Ret {
        let name = match self.mq_name(pid, name) {
            Ok(n) => n,
            Err(e) => return err(e),
        };
        let given = if oflag & O_CREAT != 0 && attr != 0 {
            match self
                .space_mut(pid)
                .and_then(|s| uaccess::read_vec(s, attr, MQ_ATTR_LEN))
            {
                Ok(b) => {
                    let field = |i: usize| {
                        i64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]))
                    };
                    Some((field(1), field(2)))
                }
                Err(e) => return err(e),
            }
        } else {
            None
        };
        let umask = self.procs.get(&pid).map_or(0o022, |p| p.umask);
        let who = self.mq_opener(pid);
        let id = match self
            .mqueues
            .open(&name, oflag as u32, mode as u32 & !umask, given, &who)
        {
            Ok(id) => id,
            Err(e) => return err(e),
        };
        let flags = oflag as u32 & (O_ACCMODE | O_NONBLOCK);
        let mut path = b"/".to_vec();
        path.extend_from_slice(&name);
        let file = OpenFile::with_path(Kind::MQueue(id), flags, path);
        match self
            .proc_mut(pid)
            .and_then(|p| p.fds.install(file, oflag & O_CLOEXEC as u64 != 0, 0))
        {
            Ok(fd) => Ret::Val(fd),
            Err(e) => {
                self.mqueues.close(id);
                err(e)
            }
        }
    }

    pub(super) fn sys_mq_unlink(&mut self, pid: Pid, name: u64) -> Ret {
        let name = match self.mq_name(pid, name) {
            Ok(n) => n,
            Err(e) => return err(e),
        };
        let who = self.mq_opener(pid);
        val(self.mqueues.unlink(&name, &who).map(|_| 0))
    }

    /// The queue behind `fd`, with its open file: EBADF for a descriptor
    /// that is no queue's, or not open for `write` (or reading).
    fn mq_file(
        &self,
        pid: Pid,
        fd: i64,
        write: Option<bool>,
    ) -> Result<(Arc<OpenFile>, usize), Errno> {
        let f = self.file(pid, fd)?;
        let Kind::MQueue(id) = f.kind else {
            return Err(EBADF);
        };
        if let Some(w) = write {
            let (r, wr) = pmon::mqueue::access(f.flags.get()).map_err(|_| EBADF)?;
            if (w && !wr) || (!w && !r) {
                return Err(EBADF);
            }
        }
        Ok((f, id))
    }

    /// What a send (`write`) or receive starts from, in Linux's order:
    /// its timeout (absolute, CLOCK_REALTIME) as a deadline on the
    /// monitor's clock (EINVAL for a bad one), then the queue `fd` is open
    /// on for that (EBADF).
    fn mq_call(
        &mut self,
        pid: Pid,
        fd: i64,
        write: bool,
        timeout: u64,
    ) -> Result<(Arc<OpenFile>, usize, Option<u64>), Errno> {
        let deadline = self
            .read_timeout(pid, timeout)?
            .map(|ns| self.absolute_deadline(ns, true));
        let (f, id) = self.mq_file(pid, fd, Some(write))?;
        Ok((f, id, deadline))
    }

    /// Parks `tid` on queue `id` (`sending`: for room) until it changes
    /// or `deadline`; EAGAIN without waiting for a non-blocking file.
    fn mq_wait(
        &mut self,
        tid: Tid,
        f: &OpenFile,
        id: usize,
        sending: bool,
        deadline: Option<u64>,
    ) -> Ret {
        if f.nonblocking() {
            return err(EAGAIN);
        }
        if deadline.is_some_and(|d| d <= self.now_ns()) {
            return err(ETIMEDOUT);
        }
        let wait = if sending {
            Wait::MQueueSend(id)
        } else {
            Wait::MQueueReceive(id)
        };
        self.block(tid, wait, deadline, Some(-ETIMEDOUT), OnWake::Retry);
        Ret::Block
    }

    pub(super) fn sys_mq_timedsend(
        &mut self,
        tid: Tid,
        fd: i64,
        at: u64,
        len: u64,
        prio: u64,
        timeout: u64,
    ) -> Ret {
        let pid = self.pid_of(tid);
        // In Linux's order: the priority, the timeout, the descriptor.
        if prio >= pmon::mqueue::PRIO_MAX as u64 {
            return err(EINVAL);
        }
        let (f, id, deadline) = match self.mq_call(pid, fd, true, timeout) {
            Ok(x) => x,
            Err(e) => return err(e),
        };
        if self
            .mqueues
            .queues
            .get(&id)
            .is_some_and(|q| len as usize > q.msgsize)
        {
            return err(EMSGSIZE);
        }
        let data = match self
            .space_mut(pid)
            .and_then(|s| uaccess::read_vec(s, at, len as usize))
        {
            Ok(d) => d,
            Err(e) => return err(e),
        };
        let receivers = self.threads.values().any(
            |t| matches!(t.state, State::Blocked { wait: Wait::MQueueReceive(q), .. } if q == id),
        );
        match self.mqueues.send(id, &data, prio as u32, receivers) {
            Ok(Sent::Done(told)) => {
                if let Some((owner, how)) = told {
                    self.mq_tell(owner, how, pid);
                }
                self.wake_all(Wait::MQueueReceive(id));
                Ret::Val(0)
            }
            Ok(Sent::Full) => self.mq_wait(tid, &f, id, true, deadline),
            Err(e) => err(e),
        }
    }

    pub(super) fn sys_mq_timedreceive(
        &mut self,
        tid: Tid,
        fd: i64,
        at: u64,
        len: u64,
        prio_at: u64,
        timeout: u64,
    ) -> Ret {
        let pid = self.pid_of(tid);
        let (f, id, deadline) = match self.mq_call(pid, fd, false, timeout) {
            Ok(x) => x,
            Err(e) => return err(e),
        };
        // The buffer first: a message is not taken for a bad pointer.
        if self
            .mqueues
            .queues
            .get(&id)
            .is_some_and(|q| len as usize >= q.msgsize)
        {
            if let Err(e) = self
                .space_mut(pid)
                .and_then(|s| uaccess::read_vec(s, at, 1))
            {
                return err(e);
            }
        }
        match self.mqueues.receive(id, len as usize) {
            Ok(Some((msg, prio))) => {
                self.wake_all(Wait::MQueueSend(id));
                let written = self.space_mut(pid).and_then(|s| {
                    uaccess::write(s, at, &msg)?;
                    if prio_at != 0 {
                        uaccess::write_u32(s, prio_at, prio)?;
                    }
                    Ok(())
                });
                match written {
                    Ok(()) => Ret::Val(msg.len() as i64),
                    Err(e) => err(e),
                }
            }
            Ok(None) => self.mq_wait(tid, &f, id, false, deadline),
            Err(e) => err(e),
        }
    }

    pub(super) fn sys_mq_notify(&mut self, pid: Pid, fd: i64, sevp: u64) -> Ret {
        // The request is read and its kind checked before the descriptor
        // (EFAULT, EINVAL, then EBADF), as Linux's do_mq_notify.
        if sevp != 0 {
            let kind = self
                .space_mut(pid)
                .and_then(|s| uaccess::read_vec(s, sevp, 64))
                .map(|ev| {
                    let word =
                        |i: usize| i32::from_le_bytes([ev[i], ev[i + 1], ev[i + 2], ev[i + 3]]);
                    (word(12), word(8) as u32)
                });
            match kind {
                Ok((SIGEV_SIGNAL, signo)) if signo > 64 => return err(EINVAL),
                Ok((SIGEV_NONE | SIGEV_SIGNAL | SIGEV_THREAD, _)) => {}
                Ok(_) => return err(EINVAL),
                Err(e) => return err(e),
            }
        }
        let id = match self.mq_file(pid, fd, None) {
            Ok((_, id)) => id,
            Err(e) => return err(e),
        };
        if sevp == 0 {
            let gone = self.mqueues.forget(Some(id), pid);
            self.mq_removed(gone);
            return Ret::Val(0);
        }
        let ev = match self
            .space_mut(pid)
            .and_then(|s| uaccess::read_vec(s, sevp, 64))
        {
            Ok(b) => b,
            Err(e) => return err(e),
        };
        let word = |i: usize| i32::from_le_bytes(ev[i..i + 4].try_into().unwrap_or([0; 4]));
        let value = u64::from_le_bytes(ev[0..8].try_into().unwrap_or([0; 8]));
        let how = match word(12) {
            SIGEV_NONE => Notify::None,
            SIGEV_SIGNAL => {
                let signo = word(8);
                if !(1..=64).contains(&signo) {
                    return err(EINVAL);
                }
                Notify::Signal {
                    signo: signo as u32,
                    value,
                }
            }
            SIGEV_THREAD => {
                let socket = match self.file(pid, word(8) as i64) {
                    Ok(f) => match f.kind {
                        Kind::Netlink(s) => s,
                        _ => return err(EBADF),
                    },
                    Err(e) => return err(e),
                };
                let mut cookie = [0u8; 32];
                match self
                    .space_mut(pid)
                    .and_then(|s| uaccess::read_vec(s, value, 32))
                {
                    Ok(b) => cookie.copy_from_slice(&b),
                    Err(e) => return err(e),
                }
                Notify::Thread { socket, cookie }
            }
            _ => return err(EINVAL),
        };
        val(self.mqueues.notify(id, pid, Some(how)).map(|_| 0))
    }

    pub(super) fn sys_mq_getsetattr(&mut self, pid: Pid, fd: i64, new: u64, old: u64) -> Ret {
        let (f, id) = match self.mq_file(pid, fd, None) {
            Ok(x) => x,
            Err(e) => return err(e),
        };
        let flags = if new != 0 {
            match self
                .space_mut(pid)
                .and_then(|s| uaccess::read_vec(s, new, MQ_ATTR_LEN))
            {
                Ok(b) => {
                    let flags = u64::from_le_bytes(b[0..8].try_into().unwrap_or([0; 8]));
                    if flags & !(O_NONBLOCK as u64) != 0 {
                        return err(EINVAL);
                    }
                    Some(flags as u32)
                }
                Err(e) => return err(e),
            }
        } else {
            None
        };
        if old != 0 {
            let Some(q) = self.mqueues.queues.get(&id) else {
                return err(EBADF);
            };
            let mut b = [0u8; MQ_ATTR_LEN];
            let fields = [
                (f.flags.get() & O_NONBLOCK) as u64,
                q.maxmsg as u64,
                q.msgsize as u64,
                q.count as u64,
            ];
            for (i, v) in fields.iter().enumerate() {
                b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
            }
            if let Err(e) = self.space_mut(pid).and_then(|s| uaccess::write(s, old, &b)) {
                return err(e);
            }
        }
        if let Some(n) = flags {
            f.flags.set((f.flags.get() & !O_NONBLOCK) | n);
        }
        Ret::Val(0)
    }

    /// Tells process `owner` (as it registered, `how`) that a message came
    /// into the empty queue, sent by `sender`.
    fn mq_tell(&mut self, owner: Pid, how: Notify, sender: Pid) {
        match how {
            Notify::None => {}
            Notify::Signal { signo, value } => {
                let uid = self.procs.get(&sender).map_or(0, |p| p.cred.uid.real);
                let mut info = SigInfo::user(signo, SI_MESGQ, sender);
                info.uid = uid;
                info.value = value;
                self.signal_process(owner, info);
            }
            Notify::Thread { socket, mut cookie } => {
                cookie[31] = NOTIFY_WOKENUP;
                self.mq_cookie(socket, cookie);
            }
        }
    }

    /// Registrations that ended without firing: a SIGEV_THREAD one says so
    /// to its C library's helper thread, which frees what it kept.
    fn mq_removed(&mut self, gone: Vec<Notify>) {
        for n in gone {
            if let Notify::Thread { socket, mut cookie } = n {
                cookie[31] = NOTIFY_REMOVED;
                self.mq_cookie(socket, cookie);
            }
        }
    }

    fn mq_cookie(&mut self, socket: usize, cookie: [u8; 32]) {
        if let Some((s, _)) = self.netlinks.get_mut(&socket) {
            s.deliver(cookie.to_vec());
            self.wake_all(Wait::Dgram(socket));
        }
    }

    /// Process `pid` closed a descriptor of queue `id`: its registration
    /// there goes, as Linux's mqueue_flush_file drops it.
    pub(super) fn mq_descriptor_closed(&mut self, pid: Pid, id: usize) {
        let gone = self.mqueues.forget(Some(id), pid);
        self.mq_removed(gone);
    }

    /// Process `pid` ends: its registrations on every queue go.
    pub(in crate::kernel) fn mq_forget_process(&mut self, pid: Pid) {
        if self.mqueues.queues.is_empty() {
            return;
        }
        let gone = self.mqueues.forget(None, pid);
        self.mq_removed(gone);
    }

    /// read() of a queue's descriptor: Linux's status line from `offset`.
    pub(super) fn mq_read(&self, f: &OpenFile, id: usize, len: usize) -> Result<Vec<u8>, Errno> {
        let text = self
            .mqueues
            .queues
            .get(&id)
            .map(|q| q.status())
            .unwrap_or_default();
        let from = (f.offset.get() as usize).min(text.len());
        let n = len.min(text.len() - from);
        f.offset.set((from + n) as u64);
        Ok(text[from..from + n].to_vec())
    }
}
