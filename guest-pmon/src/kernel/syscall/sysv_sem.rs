//! System V semaphores: semget, semop, semtimedop and semctl on the
//! processor's sets ([`pmon::sysv_sem`]). A semop that must wait parks its
//! thread until any set changes, then tries again (all its operations, or
//! none, as before); a signal ends the wait with EINTR whatever
//! SA_RESTART says, semtimedop's timeout with EAGAIN, and a set removed
//! meanwhile with EIDRM, as Linux's do. Sets are the processor's: the
//! processes of one processor share them (as they share its file locks).
//!
//! Owners and modes are checked as Linux checks them (`ipc.rs`); IPC_INFO
//! and SEM_INFO give Linux's limits.

use pmon::sysv::Lookup;
use pmon::sysv_sem::*;

use super::*;

const EIDRM: Errno = 43;
const GETPID: u64 = 11;
const GETVAL: u64 = 12;
const GETALL: u64 = 13;
const GETNCNT: u64 = 14;
const GETZCNT: u64 = 15;
const SETVAL: u64 = 16;
const SETALL: u64 = 17;
const SEM_STAT: u64 = 18;
const SEM_INFO: u64 = 19;
const SEM_STAT_ANY: u64 = 20;
const IPC_INFO: u64 = 3;

impl Kernel {
    pub(super) fn sys_semget(&mut self, pid: Pid, key: i32, nsems: u64, flags: u64) -> Ret {
        match self.sems.lookup(key, nsems, flags) {
            Ok(Lookup::Found(id)) => {
                let perm = self.sems.by_id.get(&id).map(|s| s.perm);
                self.ipc_found(pid, id, perm, flags)
            }
            Ok(Lookup::Create) => {
                let now = self.realtime_ns() / 1_000_000_000;
                let perm = self.ipc_new_perm(pid, flags);
                Ret::Val(self.sems.create(key, nsems as usize, perm, now) as i64)
            }
            Err(e) => err(e),
        }
    }

    /// semop (`timeout` 0) and semtimedop.
    pub(super) fn sys_semtimedop(
        &mut self,
        tid: Tid,
        id: i32,
        sops: u64,
        nsops: u64,
        timeout: u64,
    ) -> Ret {
        let pid = self.pid_of(tid);
        self.sem_waiters.remove(&tid);
        let retrying = self.threads.get(&tid).is_some_and(|t| t.retrying);
        if nsops == 0 {
            return err(EINVAL);
        }
        if nsops > SEMOPM as u64 {
            return err(E2BIG);
        }
        let bytes = match self
            .space_mut(pid)
            .and_then(|s| uaccess::read_vec(s, sops, nsops as usize * SEMBUF_LEN))
        {
            Ok(b) => b,
            Err(e) => return err(e),
        };
        let timeout_ns = match self.read_timeout(pid, timeout) {
            Ok(t) => t,
            Err(e) => return err(e),
        };
        if retrying && !self.sems.by_id.contains_key(&id) {
            return err(EIDRM);
        }
        let ops = SemOp::parse(&bytes);
        // Read permission to wait for zeros, write to change a value;
        // checked after a number past the set's end (EFBIG), and once: a
        // sleeping semop completes after an IPC_SET took it away, as
        // Linux's.
        if let Some(set) = self.sems.by_id.get(&id).filter(|_| !retrying) {
            let inside = ops.iter().all(|o| (o.num as usize) < set.vals.len());
            let alter = ops.iter().any(|o| o.op != 0);
            let want = if alter {
                pmon::sysv::WRITE
            } else {
                pmon::sysv::READ
            };
            if inside && !self.ipc_allows(pid, &set.perm, want) {
                return err(EACCES);
            }
        }
        let now = self.realtime_ns() / 1_000_000_000;
        match self.sems.semop(id, &ops, pid, now) {
            Ok(Outcome::Done { changed }) => {
                if changed {
                    self.wake_all(Wait::Sem);
                }
                Ret::Val(0)
            }
            Ok(Outcome::Wait { num, zero }) => {
                let deadline = self.wait_deadline(tid, timeout_ns);
                if deadline.is_some_and(|d| d <= self.now_ns()) {
                    return err(EAGAIN);
                }
                self.sem_waiters.insert(tid, (id, num, zero));
                self.block(tid, Wait::Sem, deadline, Some(-EAGAIN), OnWake::Retry);
                Ret::Block
            }
            Err(e) => err(e),
        }
    }

    /// How many threads wait on semaphore `num` of set `id` to grow
    /// (`zero` false) or to reach zero.
    fn sem_waiting(&self, id: i32, num: u16, zero: bool) -> i64 {
        self.sem_waiters
            .iter()
            .filter(|(tid, &w)| {
                w == (id, num, zero)
                    && self.threads.get(tid).is_some_and(|t| {
                        matches!(
                            t.state,
                            State::Blocked {
                                wait: Wait::Sem,
                                ..
                            }
                        )
                    })
            })
            .count() as i64
    }

    pub(super) fn sys_semctl(&mut self, pid: Pid, id: i32, num: u64, cmd: u64, arg: u64) -> Ret {
        let cmd = cmd & !pmon::sysv::IPC_64;
        let now = self.realtime_ns() / 1_000_000_000;
        if cmd == IPC_INFO || cmd == SEM_INFO {
            // struct seminfo: semmap, semmni, semmns, semmnu, semmsl,
            // semopm, semume, semusz, semvmx, semaem.
            let used = self.sems.by_id.len() as i32;
            let sems: usize = self.sems.by_id.values().map(|s| s.vals.len()).sum();
            let mut info: [i32; 10] = [
                SEMMNI as i32,
                SEMMNI as i32,
                i32::MAX,
                SEMMNI as i32,
                SEMMSL as i32,
                SEMOPM as i32,
                SEMOPM as i32,
                20,
                SEMVMX,
                SEMVMX,
            ];
            if cmd == SEM_INFO {
                // semusz and semaem count what is in use.
                (info[7], info[9]) = (used, sems as i32);
            }
            let bytes: Vec<u8> = info.iter().flat_map(|v| v.to_le_bytes()).collect();
            return match self
                .space_mut(pid)
                .and_then(|s| uaccess::write(s, arg, &bytes))
            {
                Ok(()) => Ret::Val(self.sems.by_id.keys().next_back().map_or(0, |&k| k as i64)),
                Err(e) => err(e),
            };
        }
        // SEM_STAT names a set by its index in the kernel's table.
        let id = if cmd == SEM_STAT || cmd == SEM_STAT_ANY {
            match pmon::sysv::id_at_index(&self.sems.by_id, id) {
                Some(k) => k,
                None => return err(EINVAL),
            }
        } else {
            id
        };
        let Some(set) = self.sems.by_id.get(&id) else {
            return err(EINVAL);
        };
        let nsems = set.vals.len();
        let perm = set.perm;
        let one = |num: u64| (num < nsems as u64).then_some(num as usize).ok_or(EINVAL);
        // What each command asks of the set, checked first as Linux's
        // semctl_main does (SETVAL's number and value are checked before).
        let want = match cmd {
            GETVAL | GETPID | GETNCNT | GETZCNT | GETALL | pmon::sysv::IPC_STAT | SEM_STAT => {
                Some(pmon::sysv::READ)
            }
            SETALL => Some(pmon::sysv::WRITE),
            SETVAL if one(num).is_ok() && (0..=SEMVMX).contains(&(arg as u32 as i32)) => {
                Some(pmon::sysv::WRITE)
            }
            _ => None,
        };
        if want.is_some_and(|w| !self.ipc_allows(pid, &perm, w)) {
            return err(EACCES);
        }
        match cmd {
            pmon::sysv::IPC_RMID if !self.ipc_may_change(pid, &perm) => err(EPERM),
            pmon::sysv::IPC_RMID => {
                self.sems.remove(id);
                self.wake_all(Wait::Sem);
                Ret::Val(0)
            }
            pmon::sysv::IPC_STAT | SEM_STAT | SEM_STAT_ANY => {
                let ds = semid_ds(set);
                self.ipc_stat(pid, arg, &ds, cmd == pmon::sysv::IPC_STAT, id)
            }
            pmon::sysv::IPC_SET => {
                // The caller's buffer first (EFAULT), then its right (EPERM).
                let ds = match self.ipc_set_ds(pid, arg, SEMID_DS_LEN) {
                    Ok(b) => b,
                    Err(e) => return err(e),
                };
                if !self.ipc_may_change(pid, &perm) {
                    return err(EPERM);
                }
                if let Some(set) = self.sems.by_id.get_mut(&id) {
                    if let Err(e) = set.perm.set_from(&ds) {
                        return err(e);
                    }
                    set.ctime = now;
                }
                Ret::Val(0)
            }
            GETVAL => match one(num) {
                Ok(n) => Ret::Val(set.vals[n] as i64),
                Err(e) => err(e),
            },
            GETPID => match one(num) {
                Ok(n) => Ret::Val(set.pids[n] as i64),
                Err(e) => err(e),
            },
            GETNCNT | GETZCNT => match one(num) {
                Ok(n) => Ret::Val(self.sem_waiting(id, n as u16, cmd == GETZCNT)),
                Err(e) => err(e),
            },
            GETALL => {
                let bytes: Vec<u8> = set.vals.iter().flat_map(|v| v.to_le_bytes()).collect();
                match self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write(s, arg, &bytes))
                {
                    Ok(()) => Ret::Val(0),
                    Err(e) => err(e),
                }
            }
            SETVAL | SETALL => {
                let (first, vals) = if cmd == SETVAL {
                    match one(num) {
                        // The union's int, passed by value.
                        Ok(n) => (n as u16, alloc::vec![arg as u32 as i32]),
                        Err(e) => return err(e),
                    }
                } else {
                    match self
                        .space_mut(pid)
                        .and_then(|s| uaccess::read_vec(s, arg, nsems * 2))
                    {
                        Ok(b) => (
                            0,
                            b.chunks_exact(2)
                                .map(|c| u16::from_le_bytes([c[0], c[1]]) as i32)
                                .collect(),
                        ),
                        Err(e) => return err(e),
                    }
                };
                match self.sems.set_values(id, first, &vals, pid, now) {
                    Ok(()) => {
                        self.wake_all(Wait::Sem);
                        Ret::Val(0)
                    }
                    Err(e) => err(e),
                }
            }
            _ => err(EINVAL),
        }
    }

    /// Process `pid` ended: its SEM_UNDO adjustments are made.
    pub(in crate::kernel) fn sem_exit(&mut self, pid: Pid) {
        if self.sems.exit(pid) {
            self.wake_all(Wait::Sem);
        }
    }
}
