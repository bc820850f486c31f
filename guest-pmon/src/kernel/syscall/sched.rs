//! Scheduling attributes and supplementary groups, kept per thread and
//! per process with Linux's checks ([`pmon::sched`] says what the
//! scheduler does with them): sched_setscheduler, sched_setparam and
//! their getters, sched_get_priority_min/max, sched_rr_get_interval,
//! sched_setaffinity/getaffinity, setpriority/getpriority (nice values;
//! PRIO_PROCESS, PRIO_PGRP, PRIO_USER), sched_setattr/getattr,
//! ioprio_set/get (kept per thread, inherited; no disk here orders by
//! them), setgroups/getgroups.

use pmon::sched::{
    check_ioprio, ioprio_best, priority_range, Sched, SCHED_ATTR_LEN, SCHED_ATTR_SIZE_VER0,
};

use super::*;

const PRIO_PROCESS: u64 = 0;
const PRIO_PGRP: u64 = 1;
const PRIO_USER: u64 = 2;
/// Linux's NGROUPS_MAX.
const NGROUPS_MAX: usize = 65536;
/// How often the VMM takes a vCPU back from a thread (`vmm/src/preempt.rs`):
/// the time slice sched_rr_get_interval reports.
const SLICE_NS: u64 = 10_000_000;
const E2BIG: Errno = 7;
/// The most of a `struct sched_attr` Linux reads or writes.
const SCHED_ATTR_MAX: usize = 4096;

impl Kernel {
    /// The thread a sched_* call's `pid` names: the caller for 0; EINVAL
    /// for a negative one and ESRCH for one that does not exist, as Linux.
    fn sched_target(&self, tid: Tid, pid: u64) -> Result<Tid, Errno> {
        let pid = pid as i32;
        if pid < 0 {
            return Err(EINVAL);
        }
        let t = if pid == 0 { tid } else { pid as Tid };
        if self.is_outside(t) {
            return Ok(t);
        }
        match self.threads.get(&t) {
            Some(th) if th.state != State::Dead => Ok(t),
            _ => Err(ESRCH),
        }
    }

    /// Thread `t`'s attributes (the parent outside: a root's defaults).
    fn sched_of(&self, t: Tid) -> Result<Sched, Errno> {
        if self.is_outside(t) {
            return Ok(Sched::new(self.cpus.len()));
        }
        self.threads.get(&t).map(|t| t.sched).ok_or(ESRCH)
    }

    /// Gives thread `t` the attributes `new`.
    fn set_sched(&mut self, t: Tid, new: Sched) -> Result<(), Errno> {
        let th = self.threads.get_mut(&t).ok_or(ESRCH)?;
        th.sched = new;
        Ok(())
    }

    pub(super) fn sys_sched(&mut self, tid: Tid, n: u64, a: [u64; 6]) -> Ret {
        let pid = self.pid_of(tid);
        // The parent outside is read, never changed.
        let changes = matches!(
            n,
            nr::SCHED_SETSCHEDULER | nr::SCHED_SETPARAM | nr::SCHED_SETAFFINITY | nr::SCHED_SETATTR
        );
        if changes && self.is_outside(a[0] as i32 as u32) {
            // (A parameter that cannot be read is EFAULT, and an unknown
            // policy EINVAL, before any permission.)
            let param = match n {
                nr::SCHED_SETSCHEDULER => a[2],
                nr::SCHED_SETPARAM => a[1],
                _ => 0,
            };
            if param != 0 {
                if let Err(e) = self
                    .space_mut(pid)
                    .and_then(|s| uaccess::read_u32(s, param))
                {
                    return err(e);
                }
            }
            const SCHED_RESET_ON_FORK: i32 = 0x4000_0000;
            if n == nr::SCHED_SETSCHEDULER
                && !matches!(a[1] as i32 & !SCHED_RESET_ON_FORK, 0..=3 | 5 | 6)
            {
                return err(EINVAL);
            }
            return err(pmon::cred::EPERM);
        }
        match n {
            nr::SCHED_SETSCHEDULER | nr::SCHED_SETPARAM => {
                let r = self.sched_target(tid, a[0]).and_then(|t| {
                    let param = if n == nr::SCHED_SETSCHEDULER {
                        a[2]
                    } else {
                        a[1]
                    };
                    if param == 0 {
                        return Err(EINVAL);
                    }
                    let prio = uaccess::read_u32(self.space_mut(pid)?, param)? as i32 as i64;
                    let policy = (n == nr::SCHED_SETSCHEDULER).then_some(a[1] as i32 as i64);
                    self.may_change(pid, t)?;
                    let mut new = self.sched_of(t)?;
                    new.set(policy, prio)?;
                    self.may_take(pid, t, &new)?;
                    self.set_sched(t, new)
                });
                val(r.map(|_| 0))
            }
            nr::SCHED_GETSCHEDULER => val(self
                .sched_target(tid, a[0])
                .and_then(|t| self.sched_of(t).map(|s| s.scheduler() as i64))),
            nr::SCHED_GETPARAM => {
                let r = self.sched_target(tid, a[0]).and_then(|t| {
                    if a[1] == 0 {
                        return Err(EINVAL);
                    }
                    let prio = self.sched_of(t)?.priority;
                    uaccess::write_u32(self.space_mut(pid)?, a[1], prio).map(|_| 0)
                });
                val(r)
            }
            nr::SCHED_GET_PRIORITY_MAX | nr::SCHED_GET_PRIORITY_MIN => {
                let r = u32::try_from(a[0] as i32).map_err(|_| EINVAL);
                val(r.and_then(priority_range).map(|(min, max)| {
                    if n == nr::SCHED_GET_PRIORITY_MAX {
                        max as i64
                    } else {
                        min as i64
                    }
                }))
            }
            nr::SCHED_RR_GET_INTERVAL => {
                let r = self.sched_target(tid, a[0]).and_then(|t| {
                    let ns = self.sched_of(t)?.interval_ns(SLICE_NS);
                    let ts: Vec<u8> = [ns / 1_000_000_000, ns % 1_000_000_000]
                        .iter()
                        .flat_map(|v| v.to_le_bytes())
                        .collect();
                    uaccess::write(self.space_mut(pid)?, a[1], &ts).map(|_| 0)
                });
                val(r)
            }
            nr::SCHED_SETAFFINITY => {
                let cpus = self.cpus.len();
                let r = self.affinity_target(tid, a[0]).and_then(|t| {
                    let len = (a[1] as usize).min(128);
                    let mask = uaccess::read_vec(self.space_mut(pid)?, a[2], len)?;
                    self.may_change(pid, t)?;
                    let mut new = self.sched_of(t)?;
                    new.set_affinity(&mask, cpus)?;
                    self.set_sched(t, new)
                });
                val(r.map(|_| 0))
            }
            nr::SCHED_GETAFFINITY => {
                let n = self.cpus.len();
                let size = (a[1] as usize).min(128);
                if size < n.div_ceil(8) || size % 8 != 0 {
                    return err(EINVAL);
                }
                let r = self.affinity_target(tid, a[0]).and_then(|t| {
                    let bits = self.sched_of(t)?.affinity;
                    let mut mask = alloc::vec![0u8; size];
                    for (i, b) in mask.iter_mut().take(8).enumerate() {
                        *b = (bits >> (8 * i)) as u8;
                    }
                    uaccess::write(self.space_mut(pid)?, a[2], &mask).map(|_| size as i64)
                });
                val(r)
            }
            // The parent outside, by pid: a root's defaults, read only.
            nr::GETPRIORITY | nr::IOPRIO_GET
                if self.outside_by_pid(n == nr::IOPRIO_GET, a[0], a[1]) =>
            {
                let defaults = Sched::new(self.cpus.len());
                Ret::Val(if n == nr::GETPRIORITY {
                    defaults.priority_value()
                } else {
                    defaults.ioprio as i64
                })
            }
            nr::SETPRIORITY | nr::IOPRIO_SET
                if self.outside_by_pid(n == nr::IOPRIO_SET, a[0], a[1]) =>
            {
                err(pmon::cred::EPERM)
            }
            nr::GETPRIORITY | nr::SETPRIORITY => {
                let who = match self.priority_targets(tid, a[0], a[1]) {
                    Ok(w) => w,
                    Err(e) => return err(e),
                };
                let mut best = 0;
                // As Linux's set_one_prio: each target it may not change
                // is EPERM, a lower nice value without privilege EACCES;
                // the others change, and the last error is the answer.
                let mut error = None;
                for t in who {
                    if n == nr::SETPRIORITY {
                        let Some(mut new) = self.threads.get(&t).map(|th| th.sched) else {
                            continue;
                        };
                        new.set_nice(a[2] as i32 as i64);
                        if let Err(e) = self.may_change(pid, t) {
                            error = Some(e);
                            continue;
                        }
                        if self.may_take(pid, t, &new).is_err() {
                            error = Some(EACCES);
                            continue;
                        }
                        self.set_sched(t, new).ok();
                    }
                    if let Some(th) = self.threads.get(&t) {
                        best = best.max(th.sched.priority_value());
                    }
                }
                match error {
                    Some(e) => err(e),
                    None => Ret::Val(if n == nr::SETPRIORITY { 0 } else { best }),
                }
            }
            nr::SCHED_GETATTR => {
                let size = a[2] as u32 as usize;
                if a[1] == 0
                    || (a[0] as i32) < 0
                    || !(SCHED_ATTR_SIZE_VER0..=SCHED_ATTR_MAX).contains(&size)
                    || a[3] as u32 != 0
                {
                    return err(EINVAL);
                }
                let r = self.sched_target(tid, a[0]).and_then(|t| {
                    let mut attr = self.sched_of(t)?.attr();
                    let size = size.min(SCHED_ATTR_LEN);
                    attr[..4].copy_from_slice(&(size as u32).to_le_bytes());
                    uaccess::write(self.space_mut(pid)?, a[1], &attr[..size]).map(|_| 0)
                });
                val(r)
            }
            nr::SCHED_SETATTR => {
                if a[1] == 0 || (a[0] as i32) < 0 || a[2] as u32 != 0 {
                    return err(EINVAL);
                }
                let attr = match self.read_sched_attr(pid, a[1]) {
                    Ok(attr) => attr,
                    Err(e) => return err(e),
                };
                let r = self.sched_target(tid, a[0]).and_then(|t| {
                    self.may_change(pid, t)?;
                    let mut new = self.sched_of(t)?;
                    new.set_attr(&attr)?;
                    self.may_take(pid, t, &new)?;
                    self.set_sched(t, new)
                });
                val(r.map(|_| 0))
            }
            nr::IOPRIO_SET => {
                // Linux asks CAP_SYS_NICE or CAP_SYS_ADMIN for the real-time class.
                let privileged = self.procs.get(&pid).is_some_and(|p| {
                    p.cred.capable(pmon::caps::SYS_NICE) || p.cred.capable(pmon::caps::SYS_ADMIN)
                });
                let r = check_ioprio(a[2] as i32 as i64, privileged)
                    .and_then(|v| Ok((v, self.ioprio_targets(tid, a[0], a[1])?)));
                match r {
                    Ok((v, targets)) => {
                        let mut error = None;
                        for t in targets {
                            if let Err(e) = self.may_change(pid, t) {
                                error = Some(e);
                                continue;
                            }
                            if let Some(th) = self.threads.get_mut(&t) {
                                th.sched.ioprio = v;
                            }
                        }
                        error.map_or(Ret::Val(0), err)
                    }
                    Err(e) => err(e),
                }
            }
            nr::IOPRIO_GET => {
                let targets = match self.ioprio_targets(tid, a[0], a[1]) {
                    Ok(t) => t,
                    Err(e) => return err(e),
                };
                let mut values = targets
                    .iter()
                    .filter_map(|t| self.threads.get(t).map(|th| th.sched.ioprio));
                // A process's own value as it is; a group's or a user's,
                // the best of them, as Linux compares them.
                let first = values.next().unwrap_or(0);
                Ret::Val(values.fold(first, ioprio_best) as i64)
            }
            nr::SETGROUPS => {
                if !self
                    .procs
                    .get(&pid)
                    .is_some_and(|p| p.cred.capable(pmon::caps::SETGID))
                {
                    return err(pmon::cred::EPERM);
                }
                let size = a[0] as i32;
                if size < 0 || size as usize > NGROUPS_MAX {
                    return err(EINVAL);
                }
                let raw = match self
                    .space_mut(pid)
                    .and_then(|s| uaccess::read_vec(s, a[1], size as usize * 4))
                {
                    Ok(r) => r,
                    Err(e) => return err(e),
                };
                // Linux keeps them sorted, and getgroups gives them so.
                let mut groups: Vec<u32> = raw
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                groups.sort_unstable();
                val(self.proc_mut(pid).map(|p| {
                    p.groups = groups;
                    0
                }))
            }
            nr::GETGROUPS => {
                let groups = self
                    .procs
                    .get(&pid)
                    .map(|p| p.groups.clone())
                    .unwrap_or_default();
                let size = a[0] as i32;
                if size < 0 {
                    return err(EINVAL);
                }
                if size == 0 {
                    return Ret::Val(groups.len() as i64);
                }
                if (size as usize) < groups.len() {
                    return err(EINVAL);
                }
                let bytes: Vec<u8> = groups.iter().flat_map(|g| g.to_le_bytes()).collect();
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write(s, a[1], &bytes))
                    .map(|_| groups.len() as i64))
            }
            _ => err(ENOSYS),
        }
    }

    /// The thread sched_setaffinity/getaffinity's `pid` names (ESRCH for a
    /// negative one, as Linux finds no such task).
    fn affinity_target(&self, tid: Tid, pid: u64) -> Result<Tid, Errno> {
        if (pid as i32) < 0 {
            return Err(ESRCH);
        }
        self.sched_target(tid, pid)
    }

    /// Whether process `pid` may change thread `t`'s attributes (Linux's
    /// check_same_owner): privileged, or its effective user id is the
    /// target's real or effective one. EPERM otherwise.
    fn may_change(&self, pid: Pid, t: Tid) -> Result<(), Errno> {
        let me = self.procs.get(&pid).map(|p| p.cred).unwrap_or_default();
        let target = self
            .threads
            .get(&t)
            .and_then(|th| self.procs.get(&th.pid))
            .map(|p| p.cred);
        let own = target
            .is_some_and(|c| me.uid.effective == c.uid.real || me.uid.effective == c.uid.effective);
        if me.capable(pmon::caps::SYS_NICE) || own {
            Ok(())
        } else {
            Err(pmon::cred::EPERM)
        }
    }

    /// Whether process `pid` may give thread `t` the attributes `new`
    /// without privilege: no real-time policy and no lower nice value
    /// (RLIMIT_RTPRIO and RLIMIT_NICE are 0 here, as Linux's defaults).
    /// EPERM otherwise.
    fn may_take(&self, pid: Pid, t: Tid, new: &Sched) -> Result<(), Errno> {
        if self
            .procs
            .get(&pid)
            .is_some_and(|p| p.cred.capable(pmon::caps::SYS_NICE))
        {
            return Ok(());
        }
        let old = self.threads.get(&t).map(|th| th.sched);
        let rt = new.priority > 0 && old.is_none_or(|o| new.priority > o.priority);
        let lower = old.is_some_and(|o| new.nice < o.nice);
        if rt || lower {
            Err(pmon::cred::EPERM)
        } else {
            Ok(())
        }
    }

    /// A `struct sched_attr` from the caller, by Linux's size rules: 0
    /// means the first size; one under it or past a page, or longer than
    /// this monitor knows with anything but zeros in the rest, is E2BIG,
    /// with the size known written back into it.
    fn read_sched_attr(&mut self, pid: Pid, at: u64) -> Result<[u8; SCHED_ATTR_LEN], Errno> {
        let space = self.space_mut(pid)?;
        let size = match uaccess::read_u32(space, at)? as usize {
            0 => SCHED_ATTR_SIZE_VER0,
            s => s,
        };
        let too_big = |space: &mut dyn uaccess::UserSpace| {
            uaccess::write_u32(space, at, SCHED_ATTR_LEN as u32)?;
            Err(E2BIG)
        };
        if !(SCHED_ATTR_SIZE_VER0..=SCHED_ATTR_MAX).contains(&size) {
            return too_big(space);
        }
        if size > SCHED_ATTR_LEN {
            let rest = uaccess::read_vec(space, at + SCHED_ATTR_LEN as u64, size - SCHED_ATTR_LEN)?;
            if rest.iter().any(|&b| b != 0) {
                return too_big(space);
            }
        }
        let mut attr = [0u8; SCHED_ATTR_LEN];
        let n = size.min(SCHED_ATTR_LEN);
        uaccess::read(space, at, &mut attr[..n])?;
        Ok(attr)
    }

    /// Whether a priority call's `which` and `who` name the parent outside
    /// by its pid (`io`: ioprio's numbering, one higher).
    fn outside_by_pid(&self, io: bool, which: u64, who: u64) -> bool {
        which == PRIO_PROCESS + io as u64 && self.is_outside(who as i32 as u32)
    }

    /// The threads ioprio_set/get's `which` (IOPRIO_WHO_PROCESS, _PGRP,
    /// _USER: setpriority's, one higher) and `who` name.
    fn ioprio_targets(&self, tid: Tid, which: u64, who: u64) -> Result<Vec<Tid>, Errno> {
        match which {
            1..=3 => self.priority_targets(tid, which - 1, who),
            _ => Err(EINVAL),
        }
    }

    /// The threads setpriority/getpriority's `which` and `who` name: a
    /// thread (PRIO_PROCESS), a process group's threads, or a user's
    /// (every process here is root's, uid 0). ESRCH when none.
    fn priority_targets(&self, tid: Tid, which: u64, who: u64) -> Result<Vec<Tid>, Errno> {
        let who = who as i32;
        let pid = self.pid_of(tid);
        let threads: Vec<Tid> = match which {
            PRIO_PROCESS => {
                let t = if who == 0 { tid } else { who as Tid };
                self.threads
                    .get(&t)
                    .filter(|th| th.state != State::Dead)
                    .map(|th| th.tid)
                    .into_iter()
                    .collect()
            }
            PRIO_PGRP => {
                let group = if who == 0 {
                    self.procs.get(&pid).map_or(0, |p| p.pgid)
                } else {
                    who as Pid
                };
                self.procs
                    .values()
                    .filter(|p| p.pgid == group && p.life == Life::Alive)
                    .flat_map(|p| p.threads.iter().copied())
                    .collect()
            }
            PRIO_USER => {
                // A user's processes by real user id; 0 is the caller's.
                let uid = if who == 0 {
                    self.procs.get(&pid).map_or(0, |p| p.cred.uid.real)
                } else {
                    who as u32
                };
                self.procs
                    .values()
                    .filter(|p| p.life == Life::Alive && p.cred.uid.real == uid)
                    .flat_map(|p| p.threads.iter().copied())
                    .collect()
            }
            _ => return Err(EINVAL),
        };
        if threads.is_empty() {
            return Err(ESRCH);
        }
        Ok(threads)
    }
}
