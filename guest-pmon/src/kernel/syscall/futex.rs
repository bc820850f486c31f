//! futex: waits and wakes on a word of user memory, private or shared
//! (`pmon::futex` holds the waiters).

use super::*;

impl Kernel {
    /// A shared futex's page must be there (Linux looks it up: EFAULT
    /// when unmapped or PROT_NONE); a private one's key is its address
    /// alone, asked nothing.
    pub(super) fn shared_futex_there(&mut self, pid: Pid, op: u32, at: u64) -> Result<(), Errno> {
        if op & pmon::futex::FUTEX_PRIVATE_FLAG != 0 {
            return Ok(());
        }
        uaccess::read_u32(self.space_mut(pid)?, at).map(|_| ())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn sys_futex(
        &mut self,
        tid: Tid,
        uaddr: u64,
        op: u32,
        v: u32,
        timeout: u64,
        uaddr2: u64,
        v3: u32,
    ) -> Ret {
        use pmon::futex::*;
        let pid = self.pid_of(tid);
        if uaddr % 4 != 0 {
            return err(EINVAL);
        }
        let space = self.procs.get(&pid).map_or(0, |p| p.space);
        let cmd = op & FUTEX_CMD_MASK;
        let key = self.futex_key(space, uaddr);
        let key2 = self.futex_key(space, uaddr2);
        match cmd {
            FUTEX_WAIT | FUTEX_WAIT_BITSET => {
                let bitset = if cmd == FUTEX_WAIT {
                    FUTEX_BITSET_MATCH_ANY
                } else {
                    v3
                };
                if bitset == 0 {
                    return err(EINVAL);
                }
                let cur = match self
                    .space_mut(pid)
                    .and_then(|s| uaccess::read_u32(s, uaddr))
                {
                    Ok(c) => c,
                    Err(e) => return err(e),
                };
                if cur != v {
                    return err(EAGAIN);
                }
                let deadline = match self.read_timeout(pid, timeout) {
                    Ok(None) => None,
                    Ok(Some(ns)) if cmd == FUTEX_WAIT => Some(self.now_ns().saturating_add(ns)),
                    // WAIT_BITSET's timeout is absolute, on CLOCK_MONOTONIC
                    // or (FUTEX_CLOCK_REALTIME) the wall clock.
                    Ok(Some(ns)) => {
                        Some(self.absolute_deadline(ns, op & FUTEX_CLOCK_REALTIME != 0))
                    }
                    Err(e) => return err(e),
                };
                self.futexes.wait(key, tid, bitset);
                self.block(
                    tid,
                    Wait::Futex,
                    deadline,
                    Some(-ETIMEDOUT),
                    OnWake::Return(0),
                );
                Ret::Block
            }
            FUTEX_WAKE | FUTEX_WAKE_BITSET => {
                let bitset = if cmd == FUTEX_WAKE {
                    FUTEX_BITSET_MATCH_ANY
                } else {
                    v3
                };
                if bitset == 0 {
                    return err(EINVAL);
                }
                if let Err(e) = self.shared_futex_there(pid, op, uaddr) {
                    return err(e);
                }
                let woken = self.futexes.wake(key, v, bitset);
                let n = woken.len();
                for w in woken {
                    self.wake(w, OnWake::Return(0));
                }
                Ret::Val(n as i64)
            }
            FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
                // Negative counts are EINVAL (CVE-2018-6927's fix).
                if (v as i32) < 0 || (timeout as u32 as i32) < 0 {
                    return err(EINVAL);
                }
                if let Err(e) = self.shared_futex_there(pid, op, uaddr2) {
                    return err(e);
                }
                if cmd == FUTEX_CMP_REQUEUE {
                    let cur = match self
                        .space_mut(pid)
                        .and_then(|s| uaccess::read_u32(s, uaddr))
                    {
                        Ok(c) => c,
                        Err(e) => return err(e),
                    };
                    if cur != v3 {
                        return err(EAGAIN);
                    }
                }
                let (woken, moved) = self.futexes.requeue(key, key2, v, timeout as u32);
                let n = woken.len() as i64;
                for w in woken {
                    self.wake(w, OnWake::Return(0));
                }
                Ret::Val(n + moved as i64)
            }
            FUTEX_WAKE_OP => {
                let old = match self
                    .space_mut(pid)
                    .and_then(|s| uaccess::read_u32(s, uaddr2))
                {
                    Ok(o) => o,
                    Err(e) => return err(e),
                };
                let Some((new, wake2)) = wake_op(v3, old) else {
                    return err(EINVAL);
                };
                if let Err(e) = self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write_u32(s, uaddr2, new))
                {
                    return err(e);
                }
                let mut woken = self.futexes.wake(key, v, FUTEX_BITSET_MATCH_ANY);
                if wake2 {
                    woken.extend(
                        self.futexes
                            .wake(key2, timeout as u32, FUTEX_BITSET_MATCH_ANY),
                    );
                }
                let n = woken.len();
                for w in woken {
                    self.wake(w, OnWake::Return(0));
                }
                Ret::Val(n as i64)
            }
            FUTEX_LOCK_PI | FUTEX_LOCK_PI2 | FUTEX_TRYLOCK_PI | FUTEX_UNLOCK_PI => {
                self.sys_futex_pi(tid, uaddr, op, timeout)
            }
            _ => err(ENOSYS),
        }
    }
}
