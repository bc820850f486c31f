//! System V message queues: msgget, msgsnd, msgrcv and msgctl on the
//! processor's queues ([`pmon::sysv_msg`]). A send to a full queue, or a
//! receive that finds no message of its type, parks the thread until a
//! queue changes, then tries again (IPC_NOWAIT: EAGAIN and ENOMSG
//! instead); a signal ends the wait with EINTR whatever SA_RESTART says,
//! the queue's removal with EIDRM, as Linux's do.
//!
//! Owners and modes are checked as Linux checks them (`ipc.rs`); raising
//! msg_qbytes past Linux's MSGMNB default takes CAP_SYS_RESOURCE.

use pmon::sysv::Lookup;
use pmon::sysv_msg::*;

use super::*;

const EIDRM: Errno = 43;
const ENOMSG: Errno = 42;
const IPC_INFO: u64 = 3;
const MSG_STAT: u64 = 11;
const MSG_INFO: u64 = 12;
const MSG_STAT_ANY: u64 = 13;

impl Kernel {
    pub(super) fn sys_msgget(&mut self, pid: Pid, key: i32, flags: u64) -> Ret {
        match self.msgs.lookup(key, flags) {
            Ok(Lookup::Found(id)) => {
                let perm = self.msgs.by_id.get(&id).map(|q| q.perm);
                self.ipc_found(pid, id, perm, flags)
            }
            Ok(Lookup::Create) => {
                let now = self.realtime_ns() / 1_000_000_000;
                let perm = self.ipc_new_perm(pid, flags);
                Ret::Val(self.msgs.create(key, perm, now) as i64)
            }
            Err(e) => err(e),
        }
    }

    /// Waits for any queue to change, or fails at once with `nowait`.
    fn msg_wait(&mut self, tid: Tid, flags: u64, nowait: Errno) -> Ret {
        if flags & IPC_NOWAIT != 0 {
            return err(nowait);
        }
        self.block(tid, Wait::Msg, None, None, OnWake::Retry);
        Ret::Block
    }

    /// A retried call whose queue went meanwhile: EIDRM.
    fn msg_queue_gone(&self, tid: Tid, id: i32) -> bool {
        self.threads.get(&tid).is_some_and(|t| t.retrying) && !self.msgs.by_id.contains_key(&id)
    }

    /// msgsnd(id, {long mtype; char mtext[size]}, size, flags).
    pub(super) fn sys_msgsnd(&mut self, tid: Tid, id: i32, at: u64, size: u64, flags: u64) -> Ret {
        let pid = self.pid_of(tid);
        if self.msg_queue_gone(tid, id) {
            return err(EIDRM);
        }
        if size > MSGMAX as u64 {
            return err(EINVAL);
        }
        let msg = match self
            .space_mut(pid)
            .and_then(|s| uaccess::read_vec(s, at, 8 + size as usize))
        {
            Ok(b) => b,
            Err(e) => return err(e),
        };
        let mtype = i64::from_le_bytes(msg[..8].try_into().unwrap_or([0; 8]));
        // Linux refuses a type below 1 before it looks the queue up.
        let perm = self.msgs.by_id.get(&id).map(|q| q.perm);
        if mtype >= 1 && perm.is_some_and(|p| !self.ipc_allows(pid, &p, pmon::sysv::WRITE)) {
            return err(EACCES);
        }
        let now = self.realtime_ns() / 1_000_000_000;
        match self.msgs.send(id, mtype, &msg[8..], pid, now) {
            Ok(pmon::sysv_msg::Outcome::Done(())) => {
                self.wake_all(Wait::Msg);
                Ret::Val(0)
            }
            Ok(pmon::sysv_msg::Outcome::Wait) => self.msg_wait(tid, flags, EAGAIN),
            Err(e) => err(e),
        }
    }

    /// msgrcv(id, buffer, size, msgtyp, flags): the text's length.
    pub(super) fn sys_msgrcv(
        &mut self,
        tid: Tid,
        id: i32,
        at: u64,
        size: u64,
        msgtyp: i64,
        flags: u64,
    ) -> Ret {
        let pid = self.pid_of(tid);
        if self.msg_queue_gone(tid, id) {
            return err(EIDRM);
        }
        if (size as i64) < 0 || !copy_flags_valid(flags) {
            return err(EINVAL);
        }
        // The buffer first: a message is not taken for a bad pointer.
        if let Err(e) = self
            .space_mut(pid)
            .and_then(|s| uaccess::read_vec(s, at, 8))
        {
            return err(e);
        }
        let perm = self.msgs.by_id.get(&id).map(|q| q.perm);
        if perm.is_some_and(|p| !self.ipc_allows(pid, &p, pmon::sysv::READ)) {
            return err(EACCES);
        }
        let now = self.realtime_ns() / 1_000_000_000;
        let max = (size as usize).min(MSGMAX * 16);
        match self.msgs.receive(id, msgtyp, max, flags, pid, now) {
            Ok(pmon::sysv_msg::Outcome::Done((mtype, text))) => {
                self.wake_all(Wait::Msg);
                let mut out = mtype.to_le_bytes().to_vec();
                out.extend_from_slice(&text);
                match self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write(s, at, &out))
                {
                    Ok(()) => Ret::Val(text.len() as i64),
                    Err(e) => err(e),
                }
            }
            Ok(pmon::sysv_msg::Outcome::Wait) => self.msg_wait(tid, flags, ENOMSG),
            Err(e) => err(e),
        }
    }

    pub(super) fn sys_msgctl(&mut self, pid: Pid, id: i32, cmd: u64, arg: u64) -> Ret {
        let cmd = cmd & !pmon::sysv::IPC_64;
        let now = self.realtime_ns() / 1_000_000_000;
        if cmd == IPC_INFO || cmd == MSG_INFO {
            // struct msginfo: msgpool, msgmap, msgmax, msgmnb, msgmni,
            // msgssz, msgtql (ints), msgseg (unsigned short).
            let (pool, map, tql) = if cmd == MSG_INFO {
                let queued: usize = self.msgs.by_id.values().map(|q| q.msgs.len()).sum();
                let bytes: usize = self.msgs.by_id.values().map(|q| q.bytes).sum();
                (self.msgs.by_id.len() as i32, queued as i32, bytes as i32)
            } else {
                (
                    (MSGMNI * MSGMNB / 1024) as i32,
                    MSGMNB as i32,
                    MSGMNB as i32,
                )
            };
            let info = [
                pool,
                map,
                MSGMAX as i32,
                MSGMNB as i32,
                MSGMNI as i32,
                16,
                tql,
            ];
            let mut bytes: Vec<u8> = info.iter().flat_map(|v| v.to_le_bytes()).collect();
            bytes.extend_from_slice(&0xffffu16.to_le_bytes());
            bytes.extend_from_slice(&[0, 0]);
            return match self
                .space_mut(pid)
                .and_then(|s| uaccess::write(s, arg, &bytes))
            {
                Ok(()) => Ret::Val(self.msgs.by_id.keys().next_back().map_or(0, |&k| k as i64)),
                Err(e) => err(e),
            };
        }
        // MSG_STAT names a queue by its index in the kernel's table.
        let id = if cmd == MSG_STAT || cmd == MSG_STAT_ANY {
            match pmon::sysv::id_at_index(&self.msgs.by_id, id) {
                Some(k) => k,
                None => return err(EINVAL),
            }
        } else {
            id
        };
        let Some(q) = self.msgs.by_id.get(&id) else {
            return err(EINVAL);
        };
        let perm = q.perm;
        match cmd {
            pmon::sysv::IPC_RMID => {
                if !self.ipc_may_change(pid, &perm) {
                    return err(EPERM);
                }
                self.msgs.by_id.remove(&id);
                self.wake_all(Wait::Msg);
                Ret::Val(0)
            }
            pmon::sysv::IPC_STAT | MSG_STAT | MSG_STAT_ANY => {
                if cmd != MSG_STAT_ANY && !self.ipc_allows(pid, &perm, pmon::sysv::READ) {
                    return err(EACCES);
                }
                let ds = msqid_ds(q);
                self.ipc_stat(pid, arg, &ds, cmd == pmon::sysv::IPC_STAT, id)
            }
            pmon::sysv::IPC_SET => {
                let ds = match self.ipc_set_ds(pid, arg, MSQID_DS_LEN) {
                    Ok(b) => b,
                    Err(e) => return err(e),
                };
                let Some(qbytes) = qbytes_of(&ds) else {
                    return err(EINVAL);
                };
                if !self.ipc_may_change(pid, &perm) {
                    return err(EPERM);
                }
                let resource = self
                    .procs
                    .get(&pid)
                    .is_some_and(|p| p.cred.capable(pmon::caps::SYS_RESOURCE));
                if qbytes > MSGMNB as u64 && !resource {
                    return err(EPERM);
                }
                if qbytes > i32::MAX as u64 {
                    return err(EINVAL);
                }
                if let Some(q) = self.msgs.by_id.get_mut(&id) {
                    if let Err(e) = q.perm.set_from(&ds) {
                        return err(e);
                    }
                    q.max_bytes = qbytes as usize;
                    q.ctime = now;
                }
                // Room may have been made.
                self.wake_all(Wait::Msg);
                Ret::Val(0)
            }
            _ => err(EINVAL),
        }
    }
}
