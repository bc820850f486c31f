//! System V message queues (msgget, msgsnd, msgrcv, msgctl) as the
//! processor keeps them: the queues by id, which message a msgrcv type
//! selects, Linux's limits and errors, and `struct msqid_ds` as x86-64
//! Linux lays it out. Waiting is the kernel's
//! (`kernel/syscall/sysv_msg.rs`).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use crate::sysv::{Lookup, IPC_CREAT, IPC_EXCL, IPC_PRIVATE};

/// msgrcv's flags.
pub const MSG_NOERROR: u64 = 0o10000;
pub const MSG_EXCEPT: u64 = 0o20000;
pub const MSG_COPY: u64 = 0o40000;
pub const IPC_NOWAIT: u64 = 0o4000;
/// Linux's defaults: the largest message, a queue's bytes, queues at most.
pub const MSGMAX: usize = 8192;
pub const MSGMNB: usize = 16384;
pub const MSGMNI: usize = 32000;
/// `struct msqid_ds`'s size on x86-64.
pub const MSQID_DS_LEN: usize = 120;

const ENOENT: i64 = 2;
const E2BIG: i64 = 7;
const EEXIST: i64 = 17;
const EINVAL: i64 = 22;
const ENOSPC: i64 = 28;

/// One queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Queue {
    pub key: i32,
    pub perm: crate::sysv::Perm,
    /// (type, text), oldest first.
    pub msgs: VecDeque<(i64, Vec<u8>)>,
    /// Bytes of text queued, and the most it may hold (msg_qbytes).
    pub bytes: usize,
    pub max_bytes: usize,
    pub lspid: u32,
    pub lrpid: u32,
    /// Seconds since 1970 of the last send, receive and change.
    pub stime: u64,
    pub rtime: u64,
    pub ctime: u64,
}

impl Queue {
    /// Where the message msgrcv's `msgtyp` and flags select lies.
    pub fn select(&self, msgtyp: i64, flags: u64) -> Option<usize> {
        match msgtyp {
            0 => (!self.msgs.is_empty()).then_some(0),
            t if t > 0 && flags & MSG_EXCEPT != 0 => self.msgs.iter().position(|m| m.0 != t),
            t if t > 0 => self.msgs.iter().position(|m| m.0 == t),
            // The lowest type not above |msgtyp|, the oldest of those.
            t => {
                let most = t.checked_neg().unwrap_or(i64::MAX);
                let mut best: Option<usize> = None;
                for (i, m) in self.msgs.iter().enumerate() {
                    if m.0 <= most && best.is_none_or(|b| m.0 < self.msgs[b].0) {
                        best = Some(i);
                    }
                }
                best
            }
        }
    }
}

/// What msgsnd or msgrcv found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<T> {
    Done(T),
    /// No room (msgsnd) or no such message (msgrcv) yet.
    Wait,
}

/// Every queue, by id.
#[derive(Default)]
pub struct Queues {
    pub by_id: BTreeMap<i32, Queue>,
    next: i32,
}

impl Queues {
    /// msgget's checks, in Linux's order.
    pub fn lookup(&self, key: i32, flags: u64) -> Result<Lookup, i64> {
        if key != IPC_PRIVATE {
            if let Some((&id, _)) = self.by_id.iter().find(|(_, q)| q.key == key) {
                if flags & IPC_CREAT != 0 && flags & IPC_EXCL != 0 {
                    return Err(EEXIST);
                }
                return Ok(Lookup::Found(id));
            }
            if flags & IPC_CREAT == 0 {
                return Err(ENOENT);
            }
        }
        if self.by_id.len() >= MSGMNI {
            return Err(ENOSPC);
        }
        Ok(Lookup::Create)
    }

    /// A new empty queue; its id.
    pub fn create(&mut self, key: i32, perm: crate::sysv::Perm, now: u64) -> i32 {
        let id = crate::sysv::next_id(&self.by_id, &mut self.next);
        self.by_id.insert(
            id,
            Queue {
                key,
                perm,
                max_bytes: MSGMNB,
                ctime: now,
                ..Default::default()
            },
        );
        id
    }

    /// msgsnd of a message of type `mtype` by `pid`.
    pub fn send(
        &mut self,
        id: i32,
        mtype: i64,
        text: &[u8],
        pid: u32,
        now: u64,
    ) -> Result<Outcome<()>, i64> {
        if mtype < 1 || text.len() > MSGMAX {
            return Err(EINVAL);
        }
        let q = self.by_id.get_mut(&id).ok_or(EINVAL)?;
        // Linux's test: the bytes fit, and the messages are fewer than
        // the byte limit (so empty messages cannot pile up for ever).
        if q.bytes + text.len() > q.max_bytes || q.msgs.len() + 1 > q.max_bytes {
            return Ok(Outcome::Wait);
        }
        q.msgs.push_back((mtype, text.to_vec()));
        q.bytes += text.len();
        q.lspid = pid;
        q.stime = now;
        Ok(Outcome::Done(()))
    }

    /// msgrcv of at most `max` bytes of text by `pid`: the message's type
    /// and text (cut to `max` with MSG_NOERROR; E2BIG, and the message
    /// stays, without it). With MSG_COPY (checkpointing tools' flag, which
    /// needs IPC_NOWAIT and refuses MSG_EXCEPT: [`copy_flags_valid`]),
    /// `msgtyp` is a place in the queue, counted from 0, and the message
    /// there is copied and left; one longer than `max` is E2BIG, or EINVAL
    /// with MSG_NOERROR (the copy is not cut), as Linux's.
    pub fn receive(
        &mut self,
        id: i32,
        msgtyp: i64,
        max: usize,
        flags: u64,
        pid: u32,
        now: u64,
    ) -> Result<Outcome<(i64, Vec<u8>)>, i64> {
        let copy = flags & MSG_COPY != 0;
        if !copy_flags_valid(flags) {
            return Err(EINVAL);
        }
        let q = self.by_id.get_mut(&id).ok_or(EINVAL)?;
        if copy {
            let Some((mtype, text)) = usize::try_from(msgtyp).ok().and_then(|i| q.msgs.get(i))
            else {
                return Ok(Outcome::Wait);
            };
            if text.len() > max {
                return Err(if flags & MSG_NOERROR == 0 {
                    E2BIG
                } else {
                    EINVAL
                });
            }
            return Ok(Outcome::Done((*mtype, text.clone())));
        }
        let Some(at) = q.select(msgtyp, flags) else {
            return Ok(Outcome::Wait);
        };
        if q.msgs[at].1.len() > max && flags & MSG_NOERROR == 0 {
            return Err(E2BIG);
        }
        let Some((mtype, mut text)) = q.msgs.remove(at) else {
            return Ok(Outcome::Wait);
        };
        q.bytes -= text.len();
        text.truncate(max);
        q.lrpid = pid;
        q.rtime = now;
        Ok(Outcome::Done((mtype, text)))
    }
}

/// Whether msgrcv's flags are valid as far as MSG_COPY goes (it needs
/// IPC_NOWAIT and refuses MSG_EXCEPT): Linux checks this first of all.
pub fn copy_flags_valid(flags: u64) -> bool {
    flags & MSG_COPY == 0 || (flags & MSG_EXCEPT == 0 && flags & IPC_NOWAIT != 0)
}

/// `struct msqid_ds` of a queue.
pub fn msqid_ds(q: &Queue) -> Vec<u8> {
    let mut b = alloc::vec![0u8; MSQID_DS_LEN];
    b[0..4].copy_from_slice(&q.key.to_le_bytes());
    q.perm.write(&mut b, 0);
    b[48..56].copy_from_slice(&q.stime.to_le_bytes());
    b[56..64].copy_from_slice(&q.rtime.to_le_bytes());
    b[64..72].copy_from_slice(&q.ctime.to_le_bytes());
    b[72..80].copy_from_slice(&(q.bytes as u64).to_le_bytes());
    b[80..88].copy_from_slice(&(q.msgs.len() as u64).to_le_bytes());
    b[88..96].copy_from_slice(&(q.max_bytes as u64).to_le_bytes());
    b[96..100].copy_from_slice(&q.lspid.to_le_bytes());
    b[100..104].copy_from_slice(&q.lrpid.to_le_bytes());
    b
}

/// msg_qbytes from a caller's `struct msqid_ds` (IPC_SET).
pub fn qbytes_of(ds: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(ds.get(88..96)?.try_into().ok()?))
}

/// /proc/sysvipc/msg: a line per queue, Linux's columns.
pub fn proc_list(queues: &Queues) -> Vec<u8> {
    let mut out = alloc::string::String::from(
        "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n",
    );
    for (&id, q) in &queues.by_id {
        let _ = core::fmt::Write::write_fmt(
            &mut out,
            format_args!(
                "{:>10} {:>10}  {:>4o}  {:>10} {:>10} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>10} {:>10} {:>10}\n",
                q.key,
                id,
                q.perm.mode,
                q.bytes,
                q.msgs.len(),
                q.lspid,
                q.lrpid,
                q.perm.uid,
                q.perm.gid,
                q.perm.cuid,
                q.perm.cgid,
                q.stime,
                q.rtime,
                q.ctime
            ),
        );
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: usize) -> Vec<u8> {
        alloc::vec![7; n]
    }

    #[test]
    fn types_select_messages_as_linux_does() {
        let mut qs = Queues::default();
        let id = qs.create(1, crate::sysv::Perm::with_mode(0o600), 0);
        for t in [3, 1, 2, 1] {
            assert_eq!(qs.send(id, t, &[t as u8], 9, 1), Ok(Outcome::Done(())));
        }
        let q = &qs.by_id[&id];
        assert_eq!(q.select(0, 0), Some(0));
        assert_eq!(q.select(2, 0), Some(2));
        assert_eq!(q.select(2, MSG_EXCEPT), Some(0));
        assert_eq!(q.select(5, 0), None);
        // Lowest type up to 2: the oldest type 1.
        assert_eq!(q.select(-2, 0), Some(1));
        assert_eq!(q.select(i64::MIN, 0), Some(1));
        assert_eq!(
            qs.receive(id, -2, 10, 0, 4, 2),
            Ok(Outcome::Done((1, alloc::vec![1])))
        );
        assert_eq!(
            qs.receive(id, 1, 10, 0, 4, 2),
            Ok(Outcome::Done((1, alloc::vec![1])))
        );
        assert_eq!(qs.receive(id, 1, 10, 0, 4, 2), Ok(Outcome::Wait));
        assert_eq!(qs.by_id[&id].lrpid, 4);
        assert_eq!(qs.by_id[&id].msgs.len(), 2);
    }

    #[test]
    fn sizes_and_limits() {
        let mut qs = Queues::default();
        let id = qs.create(1, crate::sysv::Perm::with_mode(0o600), 0);
        assert_eq!(qs.send(id, 0, b"x", 1, 0), Err(EINVAL));
        assert_eq!(qs.send(id, 1, &text(MSGMAX + 1), 1, 0), Err(EINVAL));
        assert_eq!(qs.send(id + 1, 1, b"x", 1, 0), Err(EINVAL));
        assert_eq!(qs.send(id, 1, &text(MSGMAX), 1, 0), Ok(Outcome::Done(())));
        assert_eq!(qs.send(id, 1, &text(MSGMAX), 1, 0), Ok(Outcome::Done(())));
        // Full: the next waits (or EAGAIN with IPC_NOWAIT, the kernel's).
        assert_eq!(qs.send(id, 1, b"x", 1, 0), Ok(Outcome::Wait));
        // Too long for the buffer: E2BIG, and it stays; cut with NOERROR.
        assert_eq!(qs.receive(id, 0, 10, 0, 1, 0), Err(E2BIG));
        assert_eq!(
            qs.receive(id, 0, 10, MSG_NOERROR, 1, 0),
            Ok(Outcome::Done((1, text(10))))
        );
        assert_eq!(qs.by_id[&id].bytes, MSGMAX);
        // MSG_COPY: only with IPC_NOWAIT, not with MSG_EXCEPT; a place in
        // the queue; the message stays.
        assert_eq!(qs.receive(id, 0, 10, MSG_COPY, 1, 0), Err(EINVAL));
        let nowait_copy = MSG_COPY | IPC_NOWAIT;
        assert_eq!(
            qs.receive(id, 0, 10, nowait_copy | MSG_EXCEPT, 1, 0),
            Err(EINVAL)
        );
        assert_eq!(qs.receive(id, 0, 10, nowait_copy, 1, 0), Err(E2BIG));
        assert_eq!(
            qs.receive(id, 0, 10, nowait_copy | MSG_NOERROR, 1, 0),
            Err(EINVAL)
        );
        assert_eq!(
            qs.receive(id, 0, MSGMAX, nowait_copy, 1, 0),
            Ok(Outcome::Done((1, text(MSGMAX))))
        );
        assert_eq!(
            qs.receive(id, 1, MSGMAX, nowait_copy, 1, 0),
            Ok(Outcome::Wait)
        );
        assert_eq!(
            qs.receive(id, -1, MSGMAX, nowait_copy, 1, 0),
            Ok(Outcome::Wait)
        );
        assert_eq!(qs.by_id[&id].bytes, MSGMAX);
    }

    #[test]
    fn keys_and_msqid_ds() {
        let mut qs = Queues::default();
        assert_eq!(qs.lookup(5, 0), Err(ENOENT));
        assert_eq!(qs.lookup(5, IPC_CREAT), Ok(Lookup::Create));
        let id = qs.create(5, crate::sysv::Perm::with_mode(0o640), 77);
        assert_eq!(qs.lookup(5, 0), Ok(Lookup::Found(id)));
        assert_eq!(qs.lookup(5, IPC_CREAT | IPC_EXCL), Err(EEXIST));
        qs.send(id, 2, b"abc", 3, 78).unwrap();
        let ds = msqid_ds(&qs.by_id[&id]);
        assert_eq!(ds.len(), MSQID_DS_LEN);
        assert_eq!(&ds[20..24], &0o640u32.to_le_bytes());
        assert_eq!(&ds[48..56], &78u64.to_le_bytes());
        assert_eq!(&ds[72..80], &3u64.to_le_bytes());
        assert_eq!(&ds[80..88], &1u64.to_le_bytes());
        assert_eq!(qbytes_of(&ds), Some(MSGMNB as u64));
        assert_eq!(&ds[96..100], &3u32.to_le_bytes());
    }
}
