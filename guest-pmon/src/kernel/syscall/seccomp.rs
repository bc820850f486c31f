//! seccomp(2) and prctl's PR_SET_SECCOMP and PR_GET_SECCOMP: a thread's
//! strict mode or its filters ([`pmon::seccomp`]), run before each of
//! its system calls, kept by fork, clone and execve as Linux keeps them.
//!
//! Decided: what needs a tracer or a supervisor (SECCOMP_RET_TRACE,
//! SECCOMP_RET_USER_NOTIF) finds none, so the call fails with ENOSYS, as
//! on Linux with no tracer attached; a listener
//! (SECCOMP_FILTER_FLAG_NEW_LISTENER) is not offered (EINVAL before the
//! filter is taken).

use alloc::sync::Arc;

use pmon::seccomp::{self, Data, Insn};

use super::*;

const SECCOMP_SET_MODE_STRICT: u64 = 0;
const SECCOMP_SET_MODE_FILTER: u64 = 1;
const SECCOMP_GET_ACTION_AVAIL: u64 = 2;
const SECCOMP_GET_NOTIF_SIZES: u64 = 3;
const FLAG_TSYNC: u64 = 1;
const FLAG_LOG: u64 = 2;
const FLAG_SPEC_ALLOW: u64 = 4;
const FLAG_NEW_LISTENER: u64 = 8;
const FLAG_TSYNC_ESRCH: u64 = 16;
const FLAG_WAIT_KILLABLE_RECV: u64 = 32;
/// A thread's modes, as /proc/PID/status's Seccomp line shows them.
pub(in crate::kernel) const MODE_STRICT: u8 = 1;
pub(in crate::kernel) const MODE_FILTER: u8 = 2;
/// SIGSYS's si_code for a seccomp trap.
const SYS_SECCOMP: i32 = 1;
const EOPNOTSUPP: Errno = 95;

impl Kernel {
    /// Before thread `tid` makes call `n`: None to go on, or what the call
    /// returns instead (its errno, or no return: the thread or process
    /// was ended, or SIGSYS is on its way).
    pub(super) fn seccomp_check(&mut self, tid: Tid, n: u64, a: &[u64; 6], ip: u64) -> Option<Ret> {
        let t = self.threads.get(&tid)?;
        match t.seccomp_mode {
            0 => None,
            MODE_STRICT if seccomp::strict_allows(n) => None,
            MODE_STRICT => {
                let pid = t.pid;
                self.kill_process(pid, signals::killed(SIGKILL, false), None);
                Some(Ret::NoReturn)
            }
            _ => {
                let data = Data {
                    nr: n as i32,
                    arch: seccomp::ARCH_X86_64,
                    ip,
                    args: *a,
                };
                let ret = seccomp::evaluate(&t.seccomp, &data);
                let pid = t.pid;
                let value = ret & seccomp::RET_DATA;
                match ret & seccomp::RET_ACTION_FULL {
                    seccomp::RET_ALLOW | seccomp::RET_LOG => None,
                    seccomp::RET_ERRNO => Some(err(value.min(4095) as Errno)),
                    seccomp::RET_TRACE | seccomp::RET_USER_NOTIF => Some(err(ENOSYS)),
                    seccomp::RET_TRAP => {
                        // SIGSYS with the call's address, number and arch;
                        // the call is not made.
                        let info = SigInfo {
                            errno: value as i32,
                            addr: ip,
                            status: n as i32,
                            value: seccomp::ARCH_X86_64 as u64,
                            ..SigInfo::user(SIGSYS, SYS_SECCOMP, 0)
                        };
                        self.force_signal(tid, info, 0, 0);
                        Some(Ret::NoReturn)
                    }
                    seccomp::RET_KILL_THREAD
                        if self.procs.get(&pid).is_some_and(|p| p.threads.len() > 1) =>
                    {
                        self.exit_thread(tid, 0);
                        Some(Ret::NoReturn)
                    }
                    // KILL_PROCESS, KILL_THREAD of the last thread, and any
                    // action unknown (Linux takes those as KILL_PROCESS).
                    _ => {
                        let info = SigInfo {
                            addr: ip,
                            status: n as i32,
                            value: seccomp::ARCH_X86_64 as u64,
                            ..SigInfo::user(SIGSYS, SYS_SECCOMP, 0)
                        };
                        self.kill_process(pid, signals::killed(SIGSYS, true), Some(info));
                        Some(Ret::NoReturn)
                    }
                }
            }
        }
    }

    /// seccomp(2).
    pub(super) fn sys_seccomp(&mut self, tid: Tid, op: u64, flags: u64, args: u64) -> Ret {
        match op {
            SECCOMP_SET_MODE_STRICT if flags != 0 || args != 0 => err(EINVAL),
            SECCOMP_SET_MODE_STRICT => self.seccomp_strict(tid),
            SECCOMP_SET_MODE_FILTER => self.seccomp_filter(tid, flags, args),
            SECCOMP_GET_ACTION_AVAIL if flags != 0 => err(EINVAL),
            SECCOMP_GET_ACTION_AVAIL => {
                let pid = self.pid_of(tid);
                match self.space_mut(pid).and_then(|s| uaccess::read_u32(s, args)) {
                    Ok(action) if seccomp::action_known(action) => Ret::Val(0),
                    Ok(_) => err(EOPNOTSUPP),
                    Err(e) => err(e),
                }
            }
            SECCOMP_GET_NOTIF_SIZES if flags != 0 => err(EINVAL),
            SECCOMP_GET_NOTIF_SIZES => {
                // struct seccomp_notif_sizes: notif 80, resp 24, data 64.
                let pid = self.pid_of(tid);
                let mut sizes = [0u8; 6];
                sizes[0..2].copy_from_slice(&80u16.to_le_bytes());
                sizes[2..4].copy_from_slice(&24u16.to_le_bytes());
                sizes[4..6].copy_from_slice(&64u16.to_le_bytes());
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write(s, args, &sizes).map(|_| 0)))
            }
            _ => err(EINVAL),
        }
    }

    /// prctl PR_GET_SECCOMP (21) and PR_SET_SECCOMP (22).
    pub(super) fn prctl_seccomp(&mut self, tid: Tid, option: u64, a: &[u64; 6]) -> Ret {
        if option == 21 {
            return Ret::Val(self.threads.get(&tid).map_or(0, |t| t.seccomp_mode) as i64);
        }
        match a[1] {
            // Strict mode ignores the third argument, as Linux's prctl.
            1 => self.seccomp_strict(tid),
            2 => self.seccomp_filter(tid, 0, a[2]),
            _ => err(EINVAL),
        }
    }

    fn seccomp_strict(&mut self, tid: Tid) -> Ret {
        match self.threads.get_mut(&tid) {
            // A thread with filters may not go strict (Linux's
            // seccomp_may_assign_mode).
            Some(t) if t.seccomp_mode == MODE_FILTER => err(EINVAL),
            Some(t) => {
                t.seccomp_mode = MODE_STRICT;
                Ret::Val(0)
            }
            None => err(ESRCH),
        }
    }

    fn seccomp_filter(&mut self, tid: Tid, flags: u64, prog: u64) -> Ret {
        let known = FLAG_TSYNC
            | FLAG_LOG
            | FLAG_SPEC_ALLOW
            | FLAG_NEW_LISTENER
            | FLAG_TSYNC_ESRCH
            | FLAG_WAIT_KILLABLE_RECV;
        if flags & !known != 0 || flags & FLAG_NEW_LISTENER != 0 {
            return err(EINVAL);
        }
        let pid = self.pid_of(tid);
        if self
            .threads
            .get(&tid)
            .is_some_and(|t| t.seccomp_mode == MODE_STRICT)
        {
            return err(EINVAL);
        }
        // struct sock_fprog: a length (u16) and a pointer. Linux's order:
        // the struct read (EFAULT), its length (EINVAL), who may (EACCES:
        // without no_new_privs only CAP_SYS_ADMIN, since a filter could
        // fool a set-user-ID program it runs), then the program.
        let head = match self
            .space_mut(pid)
            .and_then(|s| uaccess::read_vec(s, prog, 16))
        {
            Ok(h) => h,
            Err(e) => return err(e),
        };
        let len = u16::from_le_bytes([head[0], head[1]]) as usize;
        let at = u64::from_le_bytes(head[8..16].try_into().unwrap_or([0; 8]));
        if len == 0 || len > seccomp::MAX_INSNS {
            return err(EINVAL);
        }
        let allowed = self
            .procs
            .get(&pid)
            .is_some_and(|p| p.no_new_privs || p.cred.capable(pmon::caps::SYS_ADMIN));
        if !allowed {
            return err(EACCES);
        }
        let filter = match self.space_mut(pid).and_then(|s| {
            let bytes = uaccess::read_vec(s, at, len * 8)?;
            let insns = bytes
                .chunks_exact(8)
                .map(|c| Insn::decode(c.try_into().unwrap_or(&[0; 8])))
                .collect();
            seccomp::check(insns).map_err(|e| e as Errno)
        }) {
            Ok(mut f) => {
                f.log = flags & FLAG_LOG != 0;
                f
            }
            Err(e) => return err(e),
        };
        let filter = Arc::new(filter);
        // TSYNC: every thread of the process takes the caller's filters,
        // if each has them or none beyond (else the id of one that does
        // not, or ESRCH with TSYNC_ESRCH).
        let mut targets = alloc::vec![tid];
        if flags & FLAG_TSYNC != 0 {
            let mine = self
                .threads
                .get(&tid)
                .map(|t| t.seccomp.clone())
                .unwrap_or_default();
            let others: Vec<Tid> = self
                .procs
                .get(&pid)
                .map(|p| p.threads.iter().copied().filter(|&t| t != tid).collect())
                .unwrap_or_default();
            for other in others {
                let Some(o) = self.threads.get(&other) else {
                    continue;
                };
                let ancestor = o.seccomp.len() <= mine.len()
                    && o.seccomp.iter().zip(&mine).all(|(a, b)| Arc::ptr_eq(a, b));
                if o.seccomp_mode == MODE_STRICT || !ancestor {
                    return if flags & FLAG_TSYNC_ESRCH != 0 {
                        err(ESRCH)
                    } else {
                        Ret::Val(other as i64)
                    };
                }
                targets.push(other);
            }
        }
        let total: usize = self
            .threads
            .get(&tid)
            .map_or(0, |t| t.seccomp.iter().map(|f| f.len() + 4).sum());
        if total + filter.len() > seccomp::MAX_INSNS_PER_PATH {
            return err(ENOMEM);
        }
        let mut chain = self
            .threads
            .get(&tid)
            .map(|t| t.seccomp.clone())
            .unwrap_or_default();
        chain.push(filter);
        for t in targets {
            if let Some(t) = self.threads.get_mut(&t) {
                t.seccomp = chain.clone();
                t.seccomp_mode = MODE_FILTER;
            }
        }
        Ret::Val(0)
    }
}
