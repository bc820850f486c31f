//! System V shared memory: shmget, shmat, shmdt and shmctl. A segment is a
//! shared-memory object in the holder (`shared_anon`), kept while the
//! segment is (not only while it is attached, as Linux keeps it until
//! IPC_RMID); an attach is a mapping that shows it. Attaches are
//! inherited by fork and go at exit and execve, as on Linux.
//!
//! IPC_INFO gives Linux's default limits, SHM_INFO what is in use, and
//! SHM_STAT / SHM_STAT_ANY a segment by its place in the table, as
//! `ipcs -m` reads them (stress-ng checks them). Decided: SHM_HUGETLB is
//! taken as ordinary memory. Owners and modes are checked as Linux checks
//! them (`ipc.rs`); SHM_LOCK is recorded (SHM_LOCKED) but pins nothing,
//! every page being its memory component's anyway.

use pmon::sysv::{self, Lookup, Segment};

use super::*;

/// One attach of a segment: a mapping in a space that shows it.
#[derive(Clone, Copy, Debug)]
pub struct Attach {
    pub space: u32,
    pub start: u64,
    pub id: i32,
    /// Attached with SHM_RDONLY: PROT_WRITE may not be added (EACCES).
    pub read_only: bool,
}

const SHM_RDONLY: u64 = 0o10000;
const SHM_RND: u64 = 0o20000;
const SHM_REMAP: u64 = 0o40000;
const SHM_EXEC: u64 = 0o100000;

impl Kernel {
    pub(super) fn sys_shmget(&mut self, pid: Pid, key: i32, size: u64, flags: u64) -> Ret {
        match self.sysv.lookup(key, size, flags) {
            Ok(Lookup::Found(id)) => {
                let perm = self.sysv.by_id.get(&id).map(|s| s.perm);
                self.ipc_found(pid, id, perm, flags)
            }
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
                    perm: self.ipc_new_perm(pid, flags),
                    cpid: pid,
                    lpid: 0,
                    atime: 0,
                    dtime: 0,
                    ctime: now,
                    removed: false,
                    locked: false,
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
        // Read and write, read alone with SHM_RDONLY, execute too with
        // SHM_EXEC: the mode's bits in that order.
        let want = (prot & 1) << 2 | (prot & 2) | (prot & 4) >> 2;
        if !self.ipc_allows(pid, &seg.perm, want) {
            return err(EACCES);
        }
        let len = range_end(0, seg.size);
        let top = self.window.user_top();
        if hint.checked_add(len).is_none_or(|end| end > top) {
            return err(ENOMEM);
        }
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
        // SHM_REMAP over shared memory: that range stops showing it (file
        // mappings there were written back and forgotten above).
        self.unshare_anon(space, a, a + len);
        let slot = self.anon.as_ref().map_or(0, |h| h.slot);
        if let Err(e) = self.show_object(space, a, a + len, slot, seg.object, seg.object, prot) {
            let _ = self.mem(pid, OP_MUNMAP, a, len, 0, 0, 0);
            return err(e);
        }
        self.sysv_attaches.push(Attach {
            space,
            start: a,
            id,
            read_only: flags & SHM_RDONLY != 0,
        });
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
            .position(|a| a.space == space && a.start == addr)
        else {
            return err(EINVAL);
        };
        let id = self.sysv_attaches.remove(i).id;
        let Some((object, len)) = self
            .sysv
            .by_id
            .get(&id)
            .map(|s| (s.object, range_end(0, s.size)))
        else {
            return err(EINVAL);
        };
        // Only what still shows the segment (part may have been unmapped
        // or moved, and something else mapped there).
        let pieces: Vec<(u64, u64)> = self.spaces.get(&space).map_or(Vec::new(), |e| {
            e.space
                .redirects
                .pieces()
                .filter(|p| {
                    p.object == object && p.start < addr.saturating_add(len) && addr <= p.start
                })
                .map(|p| (p.start, p.end))
                .collect()
        });
        // Unmapped as munmap does it (its sharing and locks go too).
        for (s, t) in pieces {
            let _ = self.unmap_range(pid, s, t - s);
        }
        let now = self.realtime_ns() / 1_000_000_000;
        if let Some(s) = self.sysv.by_id.get_mut(&id) {
            s.dtime = now;
            s.lpid = pid;
        }
        self.gc_shared_anon();
        Ret::Val(0)
    }

    pub(super) fn sys_shmctl(&mut self, pid: Pid, id: i32, cmd: u64, buf: u64) -> Ret {
        const IPC_INFO: u64 = 3;
        const SHM_STAT: u64 = 13;
        const SHM_INFO: u64 = 14;
        const SHM_STAT_ANY: u64 = 15;
        let cmd = cmd & !sysv::IPC_64;
        self.prune_attaches();
        // The highest place in use in the table (0 with none).
        let top = self.sysv.by_id.len().saturating_sub(1) as i64;
        if cmd == IPC_INFO || cmd == SHM_INFO {
            let info: Vec<u8> = if cmd == IPC_INFO {
                // struct shminfo: shmmax, shmmin, shmmni, shmseg, shmall
                // and four unused words; Linux's defaults.
                let most = u64::MAX - (1 << 24);
                [most, 1, 4096, 4096, most, 0, 0, 0, 0]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect()
            } else {
                // struct shm_info: used_ids, then shm_tot and shm_rss in
                // pages, swap figures 0.
                let pages: u64 = self
                    .sysv
                    .by_id
                    .values()
                    .map(|s| s.size.div_ceil(4096))
                    .sum();
                let mut b = (self.sysv.by_id.len() as u32).to_le_bytes().to_vec();
                b.extend_from_slice(&[0; 4]);
                for v in [pages, pages, 0, 0, 0] {
                    b.extend_from_slice(&v.to_le_bytes());
                }
                b
            };
            return val(self
                .space_mut(pid)
                .and_then(|s| uaccess::write(s, buf, &info).map(|_| top)));
        }
        if cmd == SHM_STAT || cmd == SHM_STAT_ANY {
            let Some(found) = sysv::id_at_index(&self.sysv.by_id, id) else {
                return err(EINVAL);
            };
            let nattch = self.sysv_attaches.iter().filter(|a| a.id == found).count() as u64;
            let Some(seg) = self.sysv.by_id.get(&found) else {
                return err(EINVAL);
            };
            if cmd == SHM_STAT && !self.ipc_allows(pid, &seg.perm, sysv::READ) {
                return err(EACCES);
            }
            let ds = sysv::shmid_ds(seg, nattch);
            return val(self
                .space_mut(pid)
                .and_then(|s| uaccess::write(s, buf, &ds).map(|_| found as i64)));
        }
        let Some(perm) = self.sysv.by_id.get(&id).map(|s| s.perm).filter(|_| id >= 0) else {
            return err(EINVAL);
        };
        match cmd {
            sysv::IPC_STAT => {
                if !self.ipc_allows(pid, &perm, sysv::READ) {
                    return err(EACCES);
                }
                self.prune_attaches();
                let nattch = self.sysv_attaches.iter().filter(|a| a.id == id).count() as u64;
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
                if !self.ipc_may_change(pid, &perm) {
                    return err(EPERM);
                }
                let now = self.realtime_ns() / 1_000_000_000;
                if let Some(s) = self.sysv.by_id.get_mut(&id) {
                    if let Err(e) = s.perm.set_from(&ds) {
                        return err(e);
                    }
                    s.ctime = now;
                }
                Ret::Val(0)
            }
            sysv::IPC_RMID => {
                if !self.ipc_may_change(pid, &perm) {
                    return err(EPERM);
                }
                if let Some(s) = self.sysv.by_id.get_mut(&id) {
                    s.removed = true;
                    s.key = sysv::IPC_PRIVATE;
                }
                self.gc_shared_anon();
                Ret::Val(0)
            }
            sysv::SHM_LOCK | sysv::SHM_UNLOCK => {
                // Linux's rule: CAP_IPC_LOCK, or the owner or creator, who
                // may lock only under a RLIMIT_MEMLOCK other than 0.
                let Some(p) = self.procs.get(&pid) else {
                    return err(EINVAL);
                };
                if !p.cred.capable(pmon::caps::IPC_LOCK) {
                    let euid = p.cred.uid.effective;
                    let memlock = p.rlimits[pmon::rlimit::RLIMIT_MEMLOCK].0;
                    if (euid != perm.uid && euid != perm.cuid)
                        || (cmd == sysv::SHM_LOCK && memlock == 0)
                    {
                        return err(EPERM);
                    }
                }
                if let Some(s) = self.sysv.by_id.get_mut(&id) {
                    s.locked = cmd == sysv::SHM_LOCK;
                }
                Ret::Val(0)
            }
            _ => err(EINVAL),
        }
    }

    /// A forked child has its parent's attaches.
    pub(super) fn fork_attaches(&mut self, from: u32, to: u32) {
        let copies: Vec<Attach> = self
            .sysv_attaches
            .iter()
            .filter(|a| a.space == from)
            .map(|&a| Attach { space: to, ..a })
            .collect();
        self.sysv_attaches.extend(copies);
    }

    /// Whether adding PROT_WRITE to [lo, hi) of `space` meets an attach
    /// made with SHM_RDONLY (EACCES on Linux).
    pub(super) fn read_only_attach(&mut self, space: u32, lo: u64, hi: u64) -> bool {
        self.prune_attaches();
        let segs = &self.sysv.by_id;
        self.sysv_attaches.iter().any(|a| {
            let len = segs.get(&a.id).map_or(0, |s| range_end(0, s.size));
            a.read_only && a.space == space && a.start < hi && lo < a.start.saturating_add(len)
        })
    }

    /// Attaches whose space is gone or shows none of the segment in its
    /// range any more (munmap'd, replaced) are forgotten; so are removed
    /// segments with no attach left.
    pub(in crate::kernel) fn prune_attaches(&mut self) {
        let spaces = &self.spaces;
        let segs = &self.sysv.by_id;
        self.sysv_attaches.retain(|a| {
            let Some(seg) = segs.get(&a.id) else {
                return false;
            };
            let end = a.start.saturating_add(range_end(0, seg.size));
            spaces.get(&a.space).is_some_and(|e| {
                e.space
                    .redirects
                    .pieces()
                    .any(|p| p.object == seg.object && p.start < end && a.start < p.end)
            })
        });
        let attached: alloc::collections::BTreeSet<i32> =
            self.sysv_attaches.iter().map(|a| a.id).collect();
        self.sysv
            .by_id
            .retain(|id, s| !s.removed || attached.contains(id));
    }

    /// /proc/self/maps's name for a range showing `object`, if it is a
    /// segment's (`/SYSV<key> (deleted)`, as Linux).
    pub(super) fn segment_name(&self, object: u64) -> Option<Vec<u8>> {
        self.sysv
            .by_id
            .values()
            .find(|s| s.object == object)
            .map(|s| alloc::format!("/SYSV{:08x} (deleted)", s.key as u32).into_bytes())
    }
}
