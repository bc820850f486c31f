//! POSIX message queues (mq_overview(7)): named queues of messages with
//! priorities, opened by name and used through descriptors, as Linux's
//! mqueue file system keeps them. A receive takes the oldest message of
//! the highest priority; a queue holds at most `maxmsg` messages of at
//! most `msgsize` bytes each; one process at a time may ask to be told
//! (mq_notify) when a message arrives in the empty queue.
//!
//! Linux's limits hold, with their defaults of /proc/sys/fs/mqueue:
//! `msg_max` 10 and `msgsize_max` 8192 for a process without
//! CAP_SYS_RESOURCE (past them EINVAL), 65 536 messages and 16 MiB for
//! one with it; `queues_max` 256 queues (ENOSPC); and each user's
//! RLIMIT_MSGQUEUE, charged as Linux charges a queue (EMFILE past it).
//!
//! This module keeps the queues; the kernel keeps the descriptors, parks
//! the threads that must wait and delivers notifications.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

const EACCES: i64 = 13;
const EBUSY: i64 = 16;
const EEXIST: i64 = 17;
const EINVAL: i64 = 22;
const EMFILE: i64 = 24;
const ENOENT: i64 = 2;
const ENOSPC: i64 = 28;
const EMSGSIZE: i64 = 90;
const ENAMETOOLONG: i64 = 36;
const EPERM: i64 = 1;

/// /proc/sys/fs/mqueue's defaults.
pub const MSG_MAX: i64 = 10;
pub const MSGSIZE_MAX: i64 = 8192;
pub const QUEUES_MAX: usize = 256;
/// The most a privileged process may ask for (Linux's HARD_MSGMAX and
/// HARD_MSGSIZEMAX).
const HARD_MSGMAX: i64 = 65_536;
const HARD_MSGSIZEMAX: i64 = 16 * 1024 * 1024;
/// Priorities are below this (MQ_PRIO_MAX).
pub const PRIO_MAX: u32 = 32_768;
/// What Linux charges per message slot against RLIMIT_MSGQUEUE besides the
/// bytes: a `struct msg_msg` pointer's worth and a tree node per
/// priority (x86_64 sizes).
const SLOT_COST: u64 = 48 + 40;

/// How a process asked to be told (struct sigevent's sigev_notify).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notify {
    /// SIGEV_SIGNAL: this signal, with this value (si_value).
    Signal { signo: u32, value: u64 },
    /// SIGEV_NONE: registered, told nothing.
    None,
    /// SIGEV_THREAD as the C libraries make it: a 32-byte cookie sent to
    /// their netlink socket (the kernel's id of it).
    Thread { socket: usize, cookie: [u8; 32] },
}

impl Notify {
    /// sigev_notify's number, as the queue's file shows it.
    pub fn kind(&self) -> i32 {
        match self {
            Notify::Signal { .. } => 0,
            Notify::None => 1,
            Notify::Thread { .. } => 2,
        }
    }
}

/// Who opens or creates: ids and whether capabilities let it past modes
/// (CAP_DAC_OVERRIDE), owners (CAP_FOWNER) and limits (CAP_SYS_RESOURCE).
#[derive(Clone, Copy, Debug, Default)]
pub struct Opener {
    pub uid: u32,
    pub gid: u32,
    pub override_modes: bool,
    pub owner_override: bool,
    pub over_limits: bool,
    /// RLIMIT_MSGQUEUE's soft limit.
    pub bytes_limit: u64,
}

#[derive(Debug)]
pub struct Queue {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub maxmsg: usize,
    pub msgsize: usize,
    /// Messages by priority, each priority's oldest first.
    msgs: BTreeMap<u32, VecDeque<Vec<u8>>>,
    pub count: usize,
    /// The bytes of the messages queued (the file's QSIZE).
    pub bytes: usize,
    /// Open descriptions of it; it goes when none is left and its name
    /// has gone.
    pub opens: usize,
    pub named: bool,
    /// The process registered for notification and how.
    pub notify: Option<(u32, Notify)>,
    /// Changes with every send and receive, for edge-triggered epoll.
    pub generation: u64,
    /// What its creation charged its owner's RLIMIT_MSGQUEUE.
    charge: u64,
}

impl Queue {
    pub fn readable(&self) -> bool {
        self.count > 0
    }

    pub fn writable(&self) -> bool {
        self.count < self.maxmsg
    }

    /// The text a read of its file gives, as Linux's mqueue file system.
    pub fn status(&self) -> Vec<u8> {
        let (kind, signo, pid) = match self.notify {
            Some((pid, n)) => {
                let signo = match n {
                    Notify::Signal { signo, .. } => signo as i32,
                    _ => 0,
                };
                (n.kind(), signo, pid as i32)
            }
            None => (0, 0, 0),
        };
        alloc::format!(
            "QSIZE:{:<10} NOTIFY:{:<5} SIGNO:{:<5} NOTIFY_PID:{:<6}\n",
            self.bytes,
            kind,
            signo,
            pid
        )
        .into_bytes()
    }
}

/// A send's outcome.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    /// Queued; the registered process to tell, if this was its moment.
    Done(Option<(u32, Notify)>),
    /// The queue is full.
    Full,
}

/// The processor's message queues.
#[derive(Debug, Default)]
pub struct MQueues {
    by_name: BTreeMap<Vec<u8>, usize>,
    pub queues: BTreeMap<usize, Queue>,
    next: usize,
    /// RLIMIT_MSGQUEUE bytes charged, by user.
    charged: BTreeMap<u32, u64>,
}

/// The access an open's flags ask for, as (read, write); EINVAL for
/// O_ACCMODE 3.
pub fn access(oflag: u32) -> Result<(bool, bool), i64> {
    match oflag & 3 {
        0 => Ok((true, false)),
        1 => Ok((false, true)),
        2 => Ok((true, true)),
        _ => Err(EINVAL),
    }
}

/// A name as the system call takes it (the C library has taken its
/// leading slash): one path component of the queues' file system.
fn check_name(name: &[u8]) -> Result<(), i64> {
    if name.len() > 255 {
        return Err(ENAMETOOLONG);
    }
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(EACCES);
    }
    Ok(())
}

impl MQueues {
    /// mq_open: the queue `name` (made if `O_CREAT` asks and it does not
    /// exist, with `mode` after the umask and `attr` (maxmsg, msgsize) or
    /// the defaults), its id.
    pub fn open(
        &mut self,
        name: &[u8],
        oflag: u32,
        mode: u32,
        attr: Option<(i64, i64)>,
        who: &Opener,
    ) -> Result<usize, i64> {
        const O_CREAT: u32 = 0o100;
        const O_EXCL: u32 = 0o200;
        check_name(name)?;
        let (read, write) = access(oflag)?;
        if let Some(&id) = self.by_name.get(name) {
            if oflag & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL {
                return Err(EEXIST);
            }
            let q = self.queues.get_mut(&id).ok_or(ENOENT)?;
            if !who.override_modes {
                let bits = if who.uid == q.uid {
                    q.mode >> 6
                } else if who.gid == q.gid {
                    q.mode >> 3
                } else {
                    q.mode
                };
                if (read && bits & 4 == 0) || (write && bits & 2 == 0) {
                    return Err(EACCES);
                }
            }
            q.opens += 1;
            return Ok(id);
        }
        if oflag & O_CREAT == 0 {
            return Err(ENOENT);
        }
        let (maxmsg, msgsize) = match attr {
            None => (MSG_MAX, MSGSIZE_MAX),
            Some((m, s)) => {
                if m <= 0 || s <= 0 {
                    return Err(EINVAL);
                }
                let (most_m, most_s) = if who.over_limits {
                    (HARD_MSGMAX, HARD_MSGSIZEMAX)
                } else {
                    (MSG_MAX, MSGSIZE_MAX)
                };
                if m > most_m || s > most_s {
                    return Err(EINVAL);
                }
                (m, s)
            }
        };
        if self.queues.len() >= QUEUES_MAX && !who.over_limits {
            return Err(ENOSPC);
        }
        let charge = maxmsg as u64 * (msgsize as u64 + SLOT_COST);
        let used = self.charged.get(&who.uid).copied().unwrap_or(0);
        if used.saturating_add(charge) > who.bytes_limit {
            return Err(EMFILE);
        }
        self.charged.insert(who.uid, used + charge);
        self.next += 1;
        let id = self.next;
        self.queues.insert(
            id,
            Queue {
                uid: who.uid,
                gid: who.gid,
                mode: mode & 0o7777,
                maxmsg: maxmsg as usize,
                msgsize: msgsize as usize,
                msgs: BTreeMap::new(),
                count: 0,
                bytes: 0,
                opens: 1,
                named: true,
                notify: None,
                generation: 0,
                charge,
            },
        );
        self.by_name.insert(name.to_vec(), id);
        Ok(id)
    }

    /// mq_unlink: the name goes; the queue stays while it is open.
    pub fn unlink(&mut self, name: &[u8], who: &Opener) -> Result<(), i64> {
        check_name(name)?;
        let id = *self.by_name.get(name).ok_or(ENOENT)?;
        // The queues' directory is sticky, as /dev/mqueue is (1777).
        if let Some(q) = self.queues.get(&id) {
            if q.uid != who.uid && !who.owner_override {
                return Err(EPERM);
            }
        }
        self.by_name.remove(name);
        if let Some(q) = self.queues.get_mut(&id) {
            q.named = false;
        }
        self.drop_if_done(id);
        Ok(())
    }

    /// An open description of queue `id` closed.
    pub fn close(&mut self, id: usize) {
        if let Some(q) = self.queues.get_mut(&id) {
            q.opens = q.opens.saturating_sub(1);
        }
        self.drop_if_done(id);
    }

    fn drop_if_done(&mut self, id: usize) {
        if self
            .queues
            .get(&id)
            .is_some_and(|q| q.opens == 0 && !q.named)
        {
            if let Some(q) = self.queues.remove(&id) {
                if let Some(c) = self.charged.get_mut(&q.uid) {
                    *c = c.saturating_sub(q.charge);
                }
            }
        }
    }

    /// mq_timedsend of `data` at `prio`. `receivers_waiting`: a thread is
    /// parked in a receive on it, which takes the notification's place.
    pub fn send(
        &mut self,
        id: usize,
        data: &[u8],
        prio: u32,
        receivers_waiting: bool,
    ) -> Result<Sent, i64> {
        let q = self.queues.get_mut(&id).ok_or(EINVAL)?;
        if prio >= PRIO_MAX {
            return Err(EINVAL);
        }
        if data.len() > q.msgsize {
            return Err(EMSGSIZE);
        }
        if q.count >= q.maxmsg {
            return Ok(Sent::Full);
        }
        let was_empty = q.count == 0;
        q.msgs.entry(prio).or_default().push_back(data.to_vec());
        q.count += 1;
        q.bytes += data.len();
        q.generation += 1;
        // Told once, when the empty queue gets a message no waiting
        // receiver takes; the registration ends with it.
        let told = if was_empty && !receivers_waiting {
            q.notify.take()
        } else {
            None
        };
        Ok(Sent::Done(told))
    }

    /// mq_timedreceive into a buffer of `len` bytes: the oldest message of
    /// the highest priority and its priority; Ok(None) when empty.
    pub fn receive(&mut self, id: usize, len: usize) -> Result<Option<(Vec<u8>, u32)>, i64> {
        let q = self.queues.get_mut(&id).ok_or(EINVAL)?;
        if len < q.msgsize {
            return Err(EMSGSIZE);
        }
        let Some(mut top) = q.msgs.last_entry() else {
            return Ok(None);
        };
        let prio = *top.key();
        let Some(msg) = top.get_mut().pop_front() else {
            return Ok(None);
        };
        if top.get().is_empty() {
            top.remove();
        }
        q.count -= 1;
        q.bytes -= msg.len();
        q.generation += 1;
        Ok(Some((msg, prio)))
    }

    /// mq_notify: process `pid` registers (`how`) or, with None, gives up
    /// its registration. EBUSY while another registration holds.
    pub fn notify(&mut self, id: usize, pid: u32, how: Option<Notify>) -> Result<(), i64> {
        let q = self.queues.get_mut(&id).ok_or(EINVAL)?;
        match how {
            Some(n) => {
                if q.notify.is_some() {
                    return Err(EBUSY);
                }
                q.notify = Some((pid, n));
            }
            None => {
                if q.notify.is_some_and(|(p, _)| p == pid) {
                    q.notify = None;
                }
            }
        }
        Ok(())
    }

    /// Process `pid` ended or closed a descriptor of queue `id` (None:
    /// every queue): its registrations go, as Linux's do.
    pub fn forget(&mut self, id: Option<usize>, pid: u32) -> Vec<Notify> {
        let mut gone = Vec::new();
        for (_, q) in self
            .queues
            .iter_mut()
            .filter(|(k, _)| id.is_none_or(|i| i == **k))
        {
            if let Some((p, n)) = q.notify {
                if p == pid {
                    q.notify = None;
                    gone.push(n);
                }
            }
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> Opener {
        Opener {
            override_modes: true,
            owner_override: true,
            over_limits: true,
            bytes_limit: 819_200,
            ..Opener::default()
        }
    }

    fn user(uid: u32) -> Opener {
        Opener {
            uid,
            gid: uid,
            bytes_limit: 819_200,
            ..Opener::default()
        }
    }

    const CREAT: u32 = 0o100 | 2;

    #[test]
    fn highest_priority_first_then_oldest() {
        let mut m = MQueues::default();
        let q = m.open(b"q", CREAT, 0o600, Some((4, 16)), &root()).unwrap();
        for (d, p) in [(&b"low"[..], 1), (b"high", 5), (b"low2", 1), (b"high2", 5)] {
            assert_eq!(m.send(q, d, p, false), Ok(Sent::Done(None)));
        }
        assert_eq!(m.send(q, b"x", 0, false), Ok(Sent::Full));
        assert_eq!(m.receive(q, 8), Err(EMSGSIZE));
        let order: Vec<_> = (0..4).map(|_| m.receive(q, 16).unwrap().unwrap()).collect();
        assert_eq!(
            order,
            [
                (b"high".to_vec(), 5),
                (b"high2".to_vec(), 5),
                (b"low".to_vec(), 1),
                (b"low2".to_vec(), 1)
            ]
        );
        assert_eq!(m.receive(q, 16), Ok(None));
        assert_eq!(m.send(q, &[0; 17], 0, false), Err(EMSGSIZE));
        assert_eq!(m.send(q, b"x", PRIO_MAX, false), Err(EINVAL));
    }

    #[test]
    fn names_modes_limits_and_unlink() {
        let mut m = MQueues::default();
        assert_eq!(m.open(b"a/b", CREAT, 0o600, None, &root()), Err(EACCES));
        assert_eq!(m.open(b"", CREAT, 0o600, None, &root()), Err(EACCES));
        assert_eq!(
            m.open(&[b'x'; 256], CREAT, 0o600, None, &root()),
            Err(ENAMETOOLONG)
        );
        assert_eq!(m.open(b"q", 2, 0o600, None, &root()), Err(ENOENT));
        assert_eq!(
            m.open(b"q", CREAT, 0o600, Some((11, 10)), &user(5)),
            Err(EINVAL)
        );
        assert_eq!(
            m.open(b"q", CREAT, 0o600, Some((0, 10)), &root()),
            Err(EINVAL)
        );
        let q = m.open(b"q", CREAT, 0o640, None, &user(5)).unwrap();
        assert_eq!(
            m.open(b"q", CREAT | 0o200, 0o600, None, &root()),
            Err(EEXIST)
        );
        assert_eq!(m.open(b"q", 0, 0, None, &user(6)), Err(EACCES));
        assert_eq!(m.open(b"q", 3, 0, None, &root()), Err(EINVAL));
        assert_eq!(m.open(b"q", 2, 0, None, &user(5)), Ok(q));
        assert_eq!(m.unlink(b"q", &user(6)), Err(EPERM));
        m.unlink(b"q", &user(5)).unwrap();
        assert_eq!(m.unlink(b"q", &user(5)), Err(ENOENT));
        // Open twice: the queue stays until both close.
        m.close(q);
        assert!(m.queues.contains_key(&q));
        m.close(q);
        assert!(m.queues.is_empty());
        // RLIMIT_MSGQUEUE: nine default queues fit in 819 200 bytes.
        for i in 0..9u8 {
            m.open(&[b'a' + i], CREAT, 0o600, None, &user(7)).unwrap();
        }
        assert_eq!(m.open(b"z", CREAT, 0o600, None, &user(7)), Err(EMFILE));
        assert!(m.open(b"z", CREAT, 0o600, None, &user(8)).is_ok());
    }

    #[test]
    fn one_registration_told_once_when_the_empty_queue_gets_a_message() {
        let mut m = MQueues::default();
        let q = m.open(b"q", CREAT, 0o600, None, &root()).unwrap();
        let how = Notify::Signal {
            signo: 10,
            value: 7,
        };
        m.notify(q, 3, Some(how)).unwrap();
        assert_eq!(m.notify(q, 4, Some(Notify::None)), Err(EBUSY));
        // Another process's removal does nothing.
        m.notify(q, 4, None).unwrap();
        // A waiting receiver takes the message's place.
        assert_eq!(m.send(q, b"a", 0, true), Ok(Sent::Done(None)));
        m.receive(q, 8192).unwrap();
        assert_eq!(m.send(q, b"b", 0, false), Ok(Sent::Done(Some((3, how)))));
        assert_eq!(m.send(q, b"c", 0, false), Ok(Sent::Done(None)));
        assert!(m.queues[&q].status().starts_with(b"QSIZE:2 "));
        m.notify(q, 3, Some(Notify::None)).unwrap();
        assert_eq!(m.forget(None, 3), [Notify::None]);
        assert!(m.queues[&q].notify.is_none());
    }
}
