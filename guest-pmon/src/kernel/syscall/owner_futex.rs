//! Futexes whose word names its owner: robust lists (set_robust_list,
//! get_robust_list, and the owner-died marking when a thread ends) and
//! priority-inheritance locks (FUTEX_LOCK_PI, LOCK_PI2, TRYLOCK_PI,
//! UNLOCK_PI), on the rules in [`pmon::futex`]. musl refuses
//! `pthread_mutexattr_setrobust` and `PTHREAD_PRIO_INHERIT` when the kernel
//! lacks these (it probes them), and glibc's robust mutexes rely on the
//! list being walked when their owner dies.
//!
//! Words are changed with a compare-and-swap, as Linux does: a thread of
//! the process on another vCPU may change one in user mode meanwhile (an
//! owner unlocking without the kernel, a waiter setting FUTEX_WAITERS),
//! and a plain write over that would leave a lock owned by a thread that
//! let it go, its waiters asleep for ever (found with two vCPUs).

use pmon::futex::*;

use super::*;

const EDEADLK: Errno = 35;

impl Kernel {
    pub(super) fn sys_set_robust_list(&mut self, tid: Tid, head: u64, len: u64) -> Ret {
        if len != ROBUST_LIST_HEAD_LEN {
            return err(EINVAL);
        }
        if let Some(t) = self.threads.get_mut(&tid) {
            t.robust_list = head;
        }
        Ret::Val(0)
    }

    /// get_robust_list(tid, &head, &len): `who` 0 is the caller.
    pub(super) fn sys_get_robust_list(
        &mut self,
        tid: Tid,
        who: u64,
        head_at: u64,
        len_at: u64,
    ) -> Ret {
        let who = if who == 0 { tid } else { who as u32 };
        let pid = self.pid_of(tid);
        let me = self.procs.get(&pid).map(|p| p.cred).unwrap_or_default();
        // Another process's list is for who may trace it (Linux's
        // PTRACE_MODE_READ): its address is no one else's to learn. The
        // parent outside is root's, with no list here.
        let head = if self.is_outside(who) {
            if !me.may_trace(&pmon::cred::Cred::default(), true) {
                return err(EPERM);
            }
            0
        } else {
            let Some(t) = self.threads.get(&who) else {
                return err(ESRCH);
            };
            let owner = self.procs.get(&t.pid);
            if t.pid != pid && !owner.is_some_and(|o| me.may_trace(&o.cred, o.dumpable)) {
                return err(EPERM);
            }
            t.robust_list
        };
        let r = self.space_mut(pid).and_then(|s| {
            uaccess::write_u64(s, head_at, head)?;
            uaccess::write_u64(s, len_at, ROBUST_LIST_HEAD_LEN)
        });
        match r {
            Ok(()) => Ret::Val(0),
            Err(e) => err(e),
        }
    }

    /// Thread `tid` ends (or execs): each robust lock it still holds is
    /// marked FUTEX_OWNER_DIED and one waiter is woken (a PI lock is handed
    /// to its oldest waiter), so that the next locker gets EOWNERDEAD
    /// instead of waiting forever. Its list is forgotten.
    pub(in crate::kernel) fn release_robust_list(&mut self, tid: Tid) {
        let Some(t) = self.threads.get_mut(&tid) else {
            return;
        };
        let head = core::mem::take(&mut t.robust_list);
        let pid = t.pid;
        if head == 0 {
            return;
        }
        let Some(space_id) = self.procs.get(&pid).map(|p| p.space) else {
            return;
        };
        // User addresses mean the loaded space: a process killed from
        // another's call has its own loaded for the walk.
        self.in_space(space_id, |k| {
            k.release_robust_words(tid, pid, space_id, head)
        });
    }

    fn release_robust_words(&mut self, tid: Tid, pid: Pid, space_id: u32, head: u64) {
        let (mut words, pending) = match self.space_of(pid) {
            Some(space) => robust_words(head, |at| uaccess::read_u64(space, at).ok()),
            None => return,
        };
        words.extend(pending);
        for (at, pi) in words {
            if at % 4 != 0 {
                continue;
            }
            let Some(space) = self.space_of(pid) else {
                return;
            };
            let Ok(val) = uaccess::read_u32(space, at) else {
                continue;
            };
            let key = self.futex_key(space_id, at);
            // A lock being released when the thread ended may be free
            // already with a waiter not yet woken (Linux wakes it too).
            if val == 0 && !pi && pending == Some((at, pi)) {
                self.wake_futex(key, 1);
                continue;
            }
            if pi {
                if owner_died(val, tid).is_some() {
                    // A word it cannot write any more has no one to tell.
                    let _ = self.hand_over_pi(pid, at, key, true);
                }
                continue;
            }
            let marked = self.update_word(pid, at, |v| owner_died(v, tid).map(|(m, _)| m));
            if let Ok(Some((before, _))) = marked {
                if before & FUTEX_WAITERS != 0 {
                    self.wake_futex(key, 1);
                }
            }
        }
    }

    /// Changes pid's word at `at` by `change` (None: leave it) with a
    /// compare-and-swap, again while user mode changes it under us; the
    /// word before and after.
    fn update_word(
        &mut self,
        pid: Pid,
        at: u64,
        mut change: impl FnMut(u32) -> Option<u32>,
    ) -> Result<Option<(u32, u32)>, Errno> {
        let space = self.space_mut(pid)?;
        let mut val = uaccess::read_u32(space, at)?;
        loop {
            let Some(new) = change(val) else {
                return Ok(None);
            };
            let seen = uaccess::cmpxchg_u32(space, at, val, new)?;
            if seen == val {
                return Ok(Some((val, new)));
            }
            val = seen;
        }
    }

    fn wake_futex(&mut self, key: Key, n: u32) {
        for w in self.futexes.wake(key, n, FUTEX_BITSET_MATCH_ANY) {
            self.wake(w, OnWake::Return(0));
        }
    }

    /// The PI lock at `at` goes to its oldest waiter, or becomes free
    /// (`died`: its owner ended holding it).
    fn hand_over_pi(&mut self, pid: Pid, at: u64, key: Key, died: bool) -> Result<(), Errno> {
        let next = self
            .futexes
            .wake(key, 1, FUTEX_BITSET_MATCH_ANY)
            .first()
            .copied();
        let more = self.futexes.waiting(key) > 0;
        let word = pi_hand_over(next, more, died);
        // Only the owner (the caller, or the thread that ended) lets go;
        // the swap keeps a waiter's FUTEX_WAITERS from being lost.
        let written = self.update_word(pid, at, |_| Some(word));
        if let Some(w) = next {
            // It owns the lock now: its LOCK_PI returns 0.
            self.wake(w, OnWake::Return(0));
        }
        written.map(|_| ())
    }

    /// FUTEX_LOCK_PI, LOCK_PI2, TRYLOCK_PI and UNLOCK_PI on `uaddr`.
    pub(super) fn sys_futex_pi(&mut self, tid: Tid, uaddr: u64, op: u32, timeout: u64) -> Ret {
        let pid = self.pid_of(tid);
        let cmd = op & FUTEX_CMD_MASK;
        let space = self.procs.get(&pid).map_or(0, |p| p.space);
        let key = self.futex_key(space, uaddr);
        // (sys_futex checked the word's alignment.)
        if cmd == FUTEX_UNLOCK_PI {
            let val = match self
                .space_mut(pid)
                .and_then(|s| uaccess::read_u32(s, uaddr))
            {
                Ok(v) => v,
                Err(e) => return err(e),
            };
            if val & FUTEX_TID_MASK != tid {
                return err(EPERM);
            }
            return match self.hand_over_pi(pid, uaddr, key, false) {
                Ok(()) => Ret::Val(0),
                Err(e) => err(e),
            };
        }
        let others_wait = self.futexes.waiting(key) > 0;
        // Decided on the word as the swap finds it (the owner may unlock
        // in user mode meanwhile, making it ours to take).
        let mut outcome = Ok(());
        let changed = self.update_word(pid, uaddr, |v| match pi_lock(v, tid, others_wait) {
            PiLock::Deadlock => {
                outcome = Err(EDEADLK);
                None
            }
            PiLock::Take(word) => Some(word),
            PiLock::Wait(_) if cmd == FUTEX_TRYLOCK_PI => {
                outcome = Err(EAGAIN);
                None
            }
            PiLock::Wait(word) => Some(word),
        });
        let word = match changed {
            Err(e) => return err(e),
            Ok(Some((_, word))) => word,
            Ok(None) => return err(outcome.err().unwrap_or(EAGAIN)),
        };
        if word & FUTEX_TID_MASK == tid {
            return Ret::Val(0);
        }
        // An owner that is no thread here will never hand it over.
        if !self.threads.contains_key(&(word & FUTEX_TID_MASK)) {
            return err(ESRCH);
        }
        // LOCK_PI's timeout is absolute on CLOCK_REALTIME; LOCK_PI2's on
        // CLOCK_MONOTONIC unless FUTEX_CLOCK_REALTIME says otherwise.
        let realtime = cmd == FUTEX_LOCK_PI || op & FUTEX_CLOCK_REALTIME != 0;
        let deadline = match self.read_timeout(pid, timeout) {
            Ok(at) => at.map(|ns| self.absolute_deadline(ns, realtime)),
            Err(e) => return err(e),
        };
        self.futexes.wait(key, tid, FUTEX_BITSET_MATCH_ANY);
        self.block(
            tid,
            Wait::FutexPi,
            deadline,
            Some(-ETIMEDOUT),
            OnWake::Return(0),
        );
        Ret::Block
    }
}
