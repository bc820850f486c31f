//! mlock, mlock2, munlock, mlockall, munlockall and MAP_LOCKED, with
//! Linux's rules (`mm/mlock.c`): RLIMIT_MEMLOCK bounds what a process
//! without CAP_IPC_LOCK locks (EPERM when it is 0, ENOMEM past it; EAGAIN
//! for a mapping), and the range must be mapped whole. What is locked is
//! kept in the space ([`pmon::mlock`]): VmLck shows it, and madvise's
//! discards and msync's MS_INVALIDATE refuse it.

use super::*;

const MCL_CURRENT: u64 = 1;
const MCL_FUTURE: u64 = 2;
const MCL_ONFAULT: u64 = 4;

impl Kernel {
    /// RLIMIT_MEMLOCK's soft limit for `pid`, or None with CAP_IPC_LOCK.
    fn lock_limit(&self, pid: Pid) -> Option<u64> {
        let p = self.procs.get(&pid)?;
        if p.cred.capable(pmon::caps::IPC_LOCK) {
            return None;
        }
        Some(p.rlimits[pmon::rlimit::RLIMIT_MEMLOCK].0)
    }

    /// mlock and mlock2 (`onfault`: MLOCK_ONFAULT, the same here: nothing
    /// is faulted in ahead either way).
    pub(super) fn sys_mlock(&mut self, pid: Pid, addr: u64, len: u64) -> Ret {
        let limit = self.lock_limit(pid);
        if limit == Some(0) {
            return err(EPERM);
        }
        let start = addr & !4095;
        let end = match self.mapped_whole(pid, addr, len) {
            Ok(end) => end,
            Err(e) => return err(e),
        };
        let space = match self.space_mut(pid) {
            Ok(s) => s,
            Err(e) => return err(e),
        };
        if let Some(limit) = limit {
            let held = space.locked.total();
            let more = (end - start) - space.locked.within(start, end);
            if !pmon::mlock::within_limit(held, more, limit) {
                return err(ENOMEM);
            }
        }
        space.locked.add(start, end);
        Ret::Val(0)
    }

    pub(super) fn sys_munlock(&mut self, pid: Pid, addr: u64, len: u64) -> Ret {
        let end = match self.mapped_whole(pid, addr, len) {
            Ok(end) => end,
            Err(e) => return err(e),
        };
        match self.space_mut(pid) {
            Ok(s) => {
                s.locked.remove(addr & !4095, end);
                Ret::Val(0)
            }
            Err(e) => err(e),
        }
    }

    pub(super) fn sys_mlockall(&mut self, pid: Pid, flags: u64) -> Ret {
        if flags == 0
            || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0
            || flags == MCL_ONFAULT
        {
            return err(EINVAL);
        }
        let limit = self.lock_limit(pid);
        if limit == Some(0) {
            return err(EPERM);
        }
        let space = match self.space_mut(pid) {
            Ok(s) => s,
            Err(e) => return err(e),
        };
        if flags & MCL_CURRENT != 0 {
            let top = space.window.user_top();
            let maps = match space.maps_in(0, top) {
                Ok(m) => m,
                Err(e) => return err(e),
            };
            let total: u64 = maps.iter().map(|v| v.end.saturating_sub(v.start)).sum();
            if limit.is_some_and(|l| total > l) {
                return err(ENOMEM);
            }
            for v in &maps {
                space.locked.add(v.start, v.end);
            }
        }
        // As Linux's: the call sets MCL_FUTURE or clears it.
        space.locked.future = flags & MCL_FUTURE != 0;
        Ret::Val(0)
    }

    pub(super) fn sys_munlockall(&mut self, pid: Pid) -> Ret {
        match self.space_mut(pid) {
            Ok(s) => {
                s.locked.clear();
                Ret::Val(0)
            }
            Err(e) => err(e),
        }
    }

    /// A new mapping `[start, end)` of `pid`'s (mmap, brk, mremap's new
    /// part): locked if it asked (MAP_LOCKED) or mlockall(MCL_FUTURE) is
    /// in force, within RLIMIT_MEMLOCK (EAGAIN past it, as Linux's mmap).
    pub(super) fn lock_new(
        &mut self,
        pid: Pid,
        start: u64,
        end: u64,
        asked: bool,
    ) -> Result<(), Errno> {
        let limit = self.lock_limit(pid);
        let space = self.space_mut(pid)?;
        if !asked && !space.locked.future {
            return Ok(());
        }
        if let Some(limit) = limit {
            let more = (end - start) - space.locked.within(start, end);
            if !pmon::mlock::within_limit(space.locked.total(), more, limit) {
                return Err(EAGAIN);
            }
        }
        space.locked.add(start, end);
        Ok(())
    }

    /// EAGAIN if a new mapping of `len` bytes would be locked (asked, or
    /// MCL_FUTURE) past RLIMIT_MEMLOCK: asked before anything is mapped or
    /// replaced, as Linux's mmap asks it.
    pub(super) fn lock_room(&mut self, pid: Pid, len: u64, asked: bool) -> Result<(), Errno> {
        let limit = self.lock_limit(pid);
        let space = self.space_mut(pid)?;
        if !asked && !space.locked.future {
            return Ok(());
        }
        match limit {
            Some(l) if !pmon::mlock::within_limit(space.locked.total(), len, l) => Err(EAGAIN),
            _ => Ok(()),
        }
    }

    /// Whether some of `[start, end)` of `pid` is locked.
    pub(super) fn locked_in(&self, pid: Pid, start: u64, end: u64) -> bool {
        let space = self.procs.get(&pid).map_or(0, |p| p.space);
        self.spaces
            .get(&space)
            .is_some_and(|e| e.space.locked.meets(start, end))
    }

    /// mremap moved `[old, old + old_len)` of `pid` to `new` with
    /// `new_len`: its locks move along, a shrink drops the cut part's, and
    /// what it grew by is locked if it was (Linux's VM_LOCKED goes with
    /// the mapping) or under MCL_FUTURE.
    pub(super) fn relock_remapped(
        &mut self,
        pid: Pid,
        old: u64,
        old_len: u64,
        new: u64,
        new_len: u64,
    ) {
        let (old_len, new_len) = (old_len.div_ceil(4096) * 4096, new_len.div_ceil(4096) * 4096);
        let Ok(space) = self.space_mut(pid) else {
            return;
        };
        let was = space.locked.meets(old, old.saturating_add(old_len));
        if new != old {
            space.locked.moved(old, old_len, new);
        }
        if new_len < old_len {
            space.locked.remove(new + new_len, new + old_len);
        } else if new_len > old_len && (was || space.locked.future) {
            space.locked.add(new + old_len, new + new_len);
        }
    }

    /// `[start, end)` of `pid` is unmapped or replaced: its locks go.
    pub(super) fn unlock_gone(&mut self, pid: Pid, start: u64, end: u64) {
        if let Ok(s) = self.space_mut(pid) {
            s.locked.remove(start, end);
        }
    }
}
