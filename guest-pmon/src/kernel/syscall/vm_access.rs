//! process_vm_readv and process_vm_writev: copies between the caller's
//! memory and another process's (CMA, as MPI libraries and profilers use
//! it), under ptrace's rules for who may reach whom.

use super::*;

/// The most copied per step: a piece of a local and a remote buffer.
const STEP: usize = 64 * 1024;

impl Kernel {
    /// `write`: process_vm_writev (local to remote), else readv.
    pub(super) fn sys_process_vm(&mut self, tid: Tid, write: bool, a: [u64; 6]) -> Ret {
        let pid = self.pid_of(tid);
        if a[5] != 0 {
            return err(EINVAL);
        }
        let total = |v: &[(u64, usize)]| v.iter().try_fold(0usize, |s, &(_, n)| s.checked_add(n));
        let too_big = |v: &[(u64, usize)]| total(v).is_none_or(|t| t > isize::MAX as usize);
        let local = match self.iovecs(pid, a[1], a[2] as usize) {
            Ok(l) if too_big(&l) => return err(EINVAL),
            Ok(l) => l,
            Err(e) => return err(e),
        };
        // Nothing to copy is 0 before the target is looked at (Linux's).
        if total(&local) == Some(0) {
            return Ret::Val(0);
        }
        let remote = match self.iovecs(pid, a[3], a[4] as usize) {
            Ok(r) if too_big(&r) => return err(EINVAL),
            Ok(r) => r,
            Err(e) => return err(e),
        };
        // The target: a process or any of its threads.
        let target = a[0] as i32;
        let target = match self.threads.get(&(target as Tid)) {
            _ if target <= 0 => return err(ESRCH),
            Some(t) => t.pid,
            None if self.procs.contains_key(&(target as Pid)) => target as Pid,
            None => return err(ESRCH),
        };
        let me = self.procs.get(&pid).map(|p| p.cred).unwrap_or_default();
        let (cred, dumpable, space) = match self.procs.get(&target) {
            Some(p) => (p.cred, p.dumpable, p.space),
            None => return err(ESRCH),
        };
        if self.space_of(target).is_none() {
            return err(ESRCH);
        }
        if target != pid && !me.may_trace(&cred, dumpable) {
            return err(pmon::cred::EPERM);
        }
        let (mut l, mut r) = (Pieces::new(&local), Pieces::new(&remote));
        let mut done = 0usize;
        while let (Some((la, ln)), Some((ra, rn))) = (l.next_room(), r.next_room()) {
            let n = ln.min(rn).min(STEP);
            let mut buf = alloc::vec![0u8; n];
            let moved = if write {
                self.space_mut(pid)
                    .and_then(|s| uaccess::read(s, la, &mut buf))
                    .and_then(|_| {
                        self.in_space(space, |k| {
                            k.space_mut(target)
                                .and_then(|s| uaccess::write(s, ra, &buf))
                        })
                    })
            } else {
                self.in_space(space, |k| {
                    k.space_mut(target)
                        .and_then(|s| uaccess::read(s, ra, &mut buf))
                })
                .and_then(|_| {
                    self.space_mut(pid)
                        .and_then(|s| uaccess::write(s, la, &buf))
                })
            };
            if let Err(e) = moved {
                return if done > 0 {
                    Ret::Val(done as i64)
                } else {
                    err(e)
                };
            }
            l.took(n);
            r.took(n);
            done += n;
        }
        Ret::Val(done as i64)
    }
}

/// Walks a list of buffers: where the next bytes go, and how many fit
/// there before the buffer ends.
struct Pieces<'a> {
    vecs: &'a [(u64, usize)],
    at: usize,
    off: usize,
}

impl<'a> Pieces<'a> {
    fn new(vecs: &'a [(u64, usize)]) -> Self {
        Pieces {
            vecs,
            at: 0,
            off: 0,
        }
    }

    fn next_room(&mut self) -> Option<(u64, usize)> {
        while let Some(&(base, len)) = self.vecs.get(self.at) {
            if self.off < len {
                return Some((base + self.off as u64, len - self.off));
            }
            self.at += 1;
            self.off = 0;
        }
        None
    }

    fn took(&mut self, n: usize) {
        self.off += n;
    }
}
