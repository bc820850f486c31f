//! System V shared memory: shmget, shmat, shmdt and shmctl. A segment is a
//! shared-memory object in the holder (`shared_anon`), kept while the
//! segment is (not only while it is attached, as Linux keeps it until
//! IPC_RMID); an attach is a mapping that shows it. Attaches are
//! inherited by fork and go at exit and execve, as on Linux.
//!
//! Decided: IPC_INFO, SHM_INFO and SHM_STAT are EINVAL; SHM_HUGETLB is
//! taken as ordinary memory; every process here has root's ids, so only
//! the mode is kept.

use pmon::sysv::{self, Lookup, Segment};

use super::*;

const SHM_RDONLY: u64 = 0o10000;
const SHM_RND: u64 = 0o20000;
const SHM_REMAP: u64 = 0o40000;
const SHM_EXEC: u64 = 0o100000;

impl Kernel {
    pub(super) fn sys_shmget(&mut self, pid: Pid, key: i32, size: u64, flags: u64) -> Ret {
        match self.sysv.lookup(key, size, flags) {
            Ok(Lookup::Found(id)) => Ret::Val(id as i64),
            Ok(Lookup::Create) => {
                let len = range_end(0, size);
                let object = match self.new_object(len, None) {
                    Ok((_, at)) => at,
                    Err(e) => return err(e),
                };
                let now = self.realtime_ns() / 1_000_000_000;
                let id = self.sysv.add(Segment {
                    key,
                    size,
                    object,
                    mode: (flags & 0o777) as u32,
                    cpid: pid,
                    lpid: 0,
                    atime: 0,
                    dtime: 0,
                    ctime: now,
                    removed: false,
                });
                Ret::Val(id as i64)
            }
            Err(e) => err(e),
        }
    }

    pub(super) fn sys_shmat(&mut self, pid: Pid, id: i32, addr: u64, flags: u64) -> Ret {
        let Some(seg) = self.sysv.by_id.get(&id).cloned() else {
            return err(EINVAL);
        };
        let mut hint = addr;
        if flags & SHM_RND != 0 {
            hint &= !0xfff;
        } else if hint % 4096 != 0 {
            return err(EINVAL);
        }
        let prot =
            if flags & SHM_RDONLY != 0 { 1 } else { 3 } | if flags & SHM_EXEC != 0 { 4 } else { 0 };
        let len = range_end(0, seg.size);
        let space = self.procs.get(&pid).map_or(0, |p| p.space);
        let fixed = hint != 0 && flags & SHM_REMAP != 0;
        if fixed {
            let _ = self.flush_shared(space, hint, hint + len, true);
        }
        let a = match self.space_mut(pid).and_then(|s| {
            s.call(MemRequest {
                op: OP_MMAP,
                addr: hint,
                len,
                prot,
                flags: if fixed { FLAG_FIXED } else { 0 },
                ..Default::default()
            })
        }) {
            Ok(a) => a,
            Err(e) => return err(e),
        };
        // An address asked for without SHM_REMAP must be free, as Linux.
        if hint != 0 && a != hint {
            let _ = self.mem(pid, OP_MUNMAP, a, len, 0, 0, 0);
            return err(EINVAL);
        }
        self.forget_shared(space, a, a + len);
        self.unshare_anon(space, a, a + len);
        let slot = self.anon.as_ref().map_or(0, |h| h.slot);
        if let Err(e) = self.show_object(space, a, a + len, slot, seg.object, seg.object, prot) {
            let _ = self.mem(pid, OP_MUNMAP, a, len, 0, 0, 0);
            return err(e);
        }
        self.sysv_attaches.push((space, a, id));
        let now = self.realtime_ns() / 1_000_000_000;
        if let Some(s) = self.sysv.by_id.get_mut(&id) {
            s.atime = now;
            s.lpid = pid;
        }
        Ret::Val(a as i64)
    }

    pub(super) fn sys_shmdt(&mut self, pid: Pid, addr: u64) -> Ret {
        let space = self.procs.get(&pid).map_or(0, |p| p.space);
        self.prune_attaches();
        let Some(i) = self
            .sysv_attaches
            .iter()
            .position(|&(s, a, _)| s == space && a == addr)
        else {
            return err(EINVAL);
        };
        let (_, _, id) = self.sysv_attaches.remove(i);
        let len = self.sysv.by_id.get(&id).map_or(0, |s| range_end(0, s.size));
        let r = self.mem(pid, OP_MUNMAP, addr, len, 0, 0, 0);
        self.unshare_anon(space, addr, addr + len);
        let now = self.realtime_ns() / 1_000_000_000;
        if let Some(s) = self.sysv.by_id.get_mut(&id) {
            s.dtime = now;
            s.lpid = pid;
        }
        self.gc_shared_anon();
        r
    }

    pub(super) fn sys_shmctl(&mut self, pid: Pid, id: i32, cmd: u64, buf: u64) -> Ret {
        let cmd = cmd & !sysv::IPC_64;
        if !self.sysv.by_id.contains_key(&id) || id < 0 {
            return err(EINVAL);
        }
        match cmd {
            sysv::IPC_STAT => {
                self.prune_attaches();
                let nattch = self.sysv_attaches.iter().filter(|a| a.2 == id).count() as u64;
                let Some(seg) = self.sysv.by_id.get(&id) else {
                    return err(EINVAL);
                };
                let ds = sysv::shmid_ds(seg, nattch);
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write(s, buf, &ds).map(|_| 0)))
            }
            sysv::IPC_SET => {
                let ds = match self
                    .space_mut(pid)
                    .and_then(|s| uaccess::read_vec(s, buf, 112))
                {
                    Ok(d) => d,
                    Err(e) => return err(e),
                };
                let now = self.realtime_ns() / 1_000_000_000;
                if let (Some(s), Some(mode)) = (self.sysv.by_id.get_mut(&id), sysv::mode_of(&ds)) {
                    s.mode = mode;
                    s.ctime = now;
                }
                Ret::Val(0)
            }
            sysv::IPC_RMID => {
                if let Some(s) = self.sysv.by_id.get_mut(&id) {
                    s.removed = true;
                    s.key = sysv::IPC_PRIVATE;
                }
                self.gc_shared_anon();
                Ret::Val(0)
            }
            sysv::SHM_LOCK | sysv::SHM_UNLOCK => Ret::Val(0),
            _ => err(EINVAL),
        }
    }

    /// A forked child has its parent's attaches.
    pub(super) fn fork_attaches(&mut self, from: u32, to: u32) {
        let copies: Vec<(u32, u64, i32)> = self
            .sysv_attaches
            .iter()
            .filter(|a| a.0 == from)
            .map(|&(_, a, id)| (to, a, id))
            .collect();
        self.sysv_attaches.extend(copies);
    }

    /// Attaches whose space is gone or no longer shows the segment there
    /// (munmap'd, replaced) are forgotten; so are removed segments with
    /// no attach left.
    pub(in crate::kernel) fn prune_attaches(&mut self) {
        let spaces = &self.spaces;
        let segs = &self.sysv.by_id;
        self.sysv_attaches.retain(|&(space, a, id)| {
            let object = segs.get(&id).map(|s| s.object);
            spaces
                .get(&space)
                .and_then(|e| e.space.redirects.find(a).map(|p| p.object))
                .is_some_and(|o| Some(o) == object)
        });
        let attached: Vec<i32> = self.sysv_attaches.iter().map(|a| a.2).collect();
        self.sysv
            .by_id
            .retain(|id, s| !s.removed || attached.contains(id));
    }
}
