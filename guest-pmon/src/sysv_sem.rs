//! System V semaphore sets (semget, semop, semtimedop, semctl) as the
//! processor keeps them: the sets by id, an operation list applied all at
//! once or not at all, SEM_UNDO's adjustments undone when a process ends,
//! Linux's limits and errors, and `struct semid_ds` as x86-64 Linux lays
//! it out. Waiting is the kernel's (`kernel/syscall/sysv_sem.rs`).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::sysv::{Lookup, IPC_CREAT, IPC_EXCL, IPC_PRIVATE};

/// sem_flg bits.
pub const IPC_NOWAIT: i16 = 0o4000;
pub const SEM_UNDO: i16 = 0x1000;
/// Linux's limits: semaphores per set, the largest value, operations per
/// call, sets at most.
pub const SEMMSL: u64 = 32000;
pub const SEMVMX: i32 = 32767;
pub const SEMOPM: usize = 500;
pub const SEMMNI: usize = 32000;
/// `struct sembuf`'s size.
pub const SEMBUF_LEN: usize = 6;
/// `struct semid_ds`'s size on x86-64.
pub const SEMID_DS_LEN: usize = 104;

const ENOENT: i64 = 2;
const E2BIG: i64 = 7;
const EAGAIN: i64 = 11;
const EEXIST: i64 = 17;
const EINVAL: i64 = 22;
const EFBIG: i64 = 27;
const ENOSPC: i64 = 28;
const ERANGE: i64 = 34;

/// One set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SemSet {
    pub key: i32,
    pub perm: crate::sysv::Perm,
    pub vals: Vec<u16>,
    /// The last process to change each semaphore (GETPID).
    pub pids: Vec<u32>,
    /// Seconds since 1970 of the last semop and the last change.
    pub otime: u64,
    pub ctime: u64,
}

/// One `struct sembuf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SemOp {
    pub num: u16,
    pub op: i16,
    pub flg: i16,
}

impl SemOp {
    /// The operations of a semop call from their bytes.
    pub fn parse(bytes: &[u8]) -> Vec<SemOp> {
        bytes
            .chunks_exact(SEMBUF_LEN)
            .map(|c| SemOp {
                num: u16::from_le_bytes([c[0], c[1]]),
                op: i16::from_le_bytes([c[2], c[3]]),
                flg: i16::from_le_bytes([c[4], c[5]]),
            })
            .collect()
    }
}

/// What a semop did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Applied; whether a value changed (waiters may go on).
    Done { changed: bool },
    /// Nothing applied: semaphore `num` must reach zero (`zero`) or grow.
    Wait { num: u16, zero: bool },
}

/// Every set, and every process's SEM_UNDO adjustments.
#[derive(Default)]
pub struct Semaphores {
    pub by_id: BTreeMap<i32, SemSet>,
    next: i32,
    /// (process, set, semaphore) -> what its end adds back.
    undo: BTreeMap<(u32, i32, u16), i32>,
}

impl Semaphores {
    /// semget's checks, in Linux's order.
    pub fn lookup(&self, key: i32, nsems: u64, flags: u64) -> Result<Lookup, i64> {
        if key != IPC_PRIVATE {
            if let Some((&id, set)) = self.by_id.iter().find(|(_, s)| s.key == key) {
                if flags & IPC_CREAT != 0 && flags & IPC_EXCL != 0 {
                    return Err(EEXIST);
                }
                if nsems > set.vals.len() as u64 {
                    return Err(EINVAL);
                }
                return Ok(Lookup::Found(id));
            }
            if flags & IPC_CREAT == 0 {
                return Err(ENOENT);
            }
        }
        if nsems == 0 || nsems > SEMMSL {
            return Err(EINVAL);
        }
        if self.by_id.len() >= SEMMNI {
            return Err(ENOSPC);
        }
        Ok(Lookup::Create)
    }

    /// A new set of `nsems` zeros; its id.
    pub fn create(&mut self, key: i32, nsems: usize, perm: crate::sysv::Perm, now: u64) -> i32 {
        let id = crate::sysv::next_id(&self.by_id, &mut self.next);
        self.by_id.insert(
            id,
            SemSet {
                key,
                perm,
                vals: alloc::vec![0; nsems],
                pids: alloc::vec![0; nsems],
                otime: 0,
                ctime: now,
            },
        );
        id
    }

    /// semop by process `pid`: every operation, in order, or none.
    pub fn semop(&mut self, id: i32, ops: &[SemOp], pid: u32, now: u64) -> Result<Outcome, i64> {
        if ops.is_empty() {
            return Err(EINVAL);
        }
        if ops.len() > SEMOPM {
            return Err(E2BIG);
        }
        let set = self.by_id.get_mut(&id).ok_or(EINVAL)?;
        if ops.iter().any(|o| o.num as usize >= set.vals.len()) {
            return Err(EFBIG);
        }
        let mut vals: Vec<i32> = set.vals.iter().map(|&v| v as i32).collect();
        let mut adjust: Vec<(u16, i32)> = Vec::new();
        for o in ops {
            let v = &mut vals[o.num as usize];
            let op = o.op as i32;
            let blocked = if op == 0 { *v != 0 } else { *v + op < 0 };
            if blocked {
                if o.flg & IPC_NOWAIT != 0 {
                    return Err(EAGAIN);
                }
                return Ok(Outcome::Wait {
                    num: o.num,
                    zero: op == 0,
                });
            }
            *v += op;
            if *v > SEMVMX {
                return Err(ERANGE);
            }
            if o.flg & SEM_UNDO != 0 && op != 0 {
                let before = self.undo.get(&(pid, id, o.num)).copied().unwrap_or(0);
                let pending: i32 = adjust
                    .iter()
                    .filter(|(n, _)| *n == o.num)
                    .map(|(_, a)| a)
                    .sum();
                if (before + pending - op).abs() > SEMVMX {
                    return Err(ERANGE);
                }
                adjust.push((o.num, -op));
            }
        }
        let changed = ops.iter().any(|o| o.op != 0);
        for o in ops {
            set.pids[o.num as usize] = pid;
        }
        for (i, v) in vals.into_iter().enumerate() {
            set.vals[i] = v as u16;
        }
        set.otime = now;
        for (num, a) in adjust {
            let e = self.undo.entry((pid, id, num)).or_insert(0);
            *e += a;
            if *e == 0 {
                self.undo.remove(&(pid, id, num));
            }
        }
        Ok(Outcome::Done { changed })
    }

    /// SETVAL and SETALL: semaphore values set outright, which cancels
    /// every process's adjustments to them (as Linux does).
    pub fn set_values(
        &mut self,
        id: i32,
        first: u16,
        vals: &[i32],
        pid: u32,
        now: u64,
    ) -> Result<(), i64> {
        let set = self.by_id.get_mut(&id).ok_or(EINVAL)?;
        let end = first as usize + vals.len();
        if end > set.vals.len() {
            return Err(EINVAL);
        }
        if vals.iter().any(|&v| !(0..=SEMVMX).contains(&v)) {
            return Err(ERANGE);
        }
        for (i, &v) in vals.iter().enumerate() {
            set.vals[first as usize + i] = v as u16;
            set.pids[first as usize + i] = pid;
        }
        set.ctime = now;
        self.undo
            .retain(|&(_, s, n), _| s != id || (n as usize) < first as usize || n as usize >= end);
        Ok(())
    }

    /// IPC_RMID.
    pub fn remove(&mut self, id: i32) -> bool {
        self.undo.retain(|&(_, s, _), _| s != id);
        self.by_id.remove(&id).is_some()
    }

    /// Process `pid` ended: its SEM_UNDO adjustments are made (a value
    /// kept between 0 and SEMVMX); whether any value changed.
    pub fn exit(&mut self, pid: u32) -> bool {
        let mine: Vec<((u32, i32, u16), i32)> = self
            .undo
            .range((pid, i32::MIN, 0)..=(pid, i32::MAX, u16::MAX))
            .map(|(k, v)| (*k, *v))
            .collect();
        let mut changed = false;
        for ((_, id, num), adj) in mine {
            self.undo.remove(&(pid, id, num));
            if let Some(set) = self.by_id.get_mut(&id) {
                if let Some(v) = set.vals.get_mut(num as usize) {
                    let new = (*v as i32 + adj).clamp(0, SEMVMX) as u16;
                    changed |= new != *v;
                    *v = new;
                    set.pids[num as usize] = pid;
                }
            }
        }
        changed
    }
}

/// `struct semid_ds` of a set.
pub fn semid_ds(set: &SemSet) -> Vec<u8> {
    let mut b = alloc::vec![0u8; SEMID_DS_LEN];
    b[0..4].copy_from_slice(&set.key.to_le_bytes());
    set.perm.write(&mut b, 0);
    b[48..56].copy_from_slice(&set.otime.to_le_bytes());
    b[64..72].copy_from_slice(&set.ctime.to_le_bytes());
    b[80..88].copy_from_slice(&(set.vals.len() as u64).to_le_bytes());
    b
}

/// /proc/sysvipc/sem: a line per set, Linux's columns.
pub fn proc_list(sems: &Semaphores) -> Vec<u8> {
    let mut out = alloc::string::String::from(
        "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n",
    );
    for (&id, s) in &sems.by_id {
        let _ = core::fmt::Write::write_fmt(
            &mut out,
            format_args!(
                "{:>10} {:>10}  {:>4o} {:>10} {:>5} {:>5} {:>5} {:>5} {:>10} {:>10}\n",
                s.key,
                id,
                s.perm.mode,
                s.vals.len(),
                s.perm.uid,
                s.perm.gid,
                s.perm.cuid,
                s.perm.cgid,
                s.otime,
                s.ctime
            ),
        );
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(num: u16, op: i16, flg: i16) -> SemOp {
        SemOp { num, op, flg }
    }

    #[test]
    fn keys_find_their_set_with_linuxs_errors() {
        let mut s = Semaphores::default();
        assert_eq!(s.lookup(9, 1, 0), Err(ENOENT));
        assert_eq!(s.lookup(9, 0, IPC_CREAT), Err(EINVAL));
        assert_eq!(s.lookup(9, SEMMSL + 1, IPC_CREAT), Err(EINVAL));
        assert_eq!(s.lookup(9, 2, IPC_CREAT), Ok(Lookup::Create));
        let id = s.create(9, 2, crate::sysv::Perm::with_mode(0o666), 5);
        assert_eq!(s.lookup(9, 0, 0), Ok(Lookup::Found(id)));
        assert_eq!(s.lookup(9, 3, 0), Err(EINVAL));
        assert_eq!(s.lookup(9, 1, IPC_CREAT | IPC_EXCL), Err(EEXIST));
        assert_eq!(s.lookup(IPC_PRIVATE, 1, 0), Ok(Lookup::Create));
        assert!(s.remove(id));
        assert_eq!(s.lookup(9, 1, 0), Err(ENOENT));
    }

    #[test]
    fn operations_apply_all_or_none() {
        let mut s = Semaphores::default();
        let id = s.create(1, 2, crate::sysv::Perm::with_mode(0o600), 0);
        assert_eq!(
            s.semop(id, &[op(0, 2, 0)], 7, 1),
            Ok(Outcome::Done { changed: true })
        );
        // The second would go below zero: the first is not applied either.
        assert_eq!(
            s.semop(id, &[op(0, -1, 0), op(1, -1, 0)], 7, 2),
            Ok(Outcome::Wait {
                num: 1,
                zero: false
            })
        );
        assert_eq!(s.by_id[&id].vals, alloc::vec![2, 0]);
        assert_eq!(
            s.semop(id, &[op(0, 0, 0)], 7, 2),
            Ok(Outcome::Wait { num: 0, zero: true })
        );
        assert_eq!(s.semop(id, &[op(1, -1, IPC_NOWAIT)], 7, 2), Err(EAGAIN));
        assert_eq!(s.semop(id, &[op(2, 1, 0)], 7, 2), Err(EFBIG));
        assert_eq!(s.semop(id, &[], 7, 2), Err(EINVAL));
        assert_eq!(s.semop(id + 1, &[op(0, 1, 0)], 7, 2), Err(EINVAL));
        assert_eq!(s.semop(id, &[op(0, i16::MAX, 0)], 7, 2), Err(ERANGE));
        assert_eq!(s.by_id[&id].vals, alloc::vec![2, 0]);
        assert_eq!(
            s.semop(id, &[op(0, -2, 0), op(0, 0, 0)], 8, 3),
            Ok(Outcome::Done { changed: true })
        );
        assert_eq!(s.by_id[&id].pids, alloc::vec![8, 0]);
        assert_eq!(s.by_id[&id].otime, 3);
    }

    #[test]
    fn undo_is_made_at_exit_and_cancelled_by_setval() {
        let mut s = Semaphores::default();
        let id = s.create(1, 1, crate::sysv::Perm::with_mode(0o600), 0);
        s.set_values(id, 0, &[3], 1, 0).unwrap();
        // Process 7 takes two with SEM_UNDO and dies: they come back.
        s.semop(id, &[op(0, -2, SEM_UNDO)], 7, 1).unwrap();
        assert_eq!(s.by_id[&id].vals, alloc::vec![1]);
        assert!(s.exit(7));
        assert_eq!(s.by_id[&id].vals, alloc::vec![3]);
        assert!(!s.exit(7), "once");
        // SETVAL forgets the adjustment.
        s.semop(id, &[op(0, -1, SEM_UNDO)], 8, 1).unwrap();
        s.set_values(id, 0, &[5], 1, 2).unwrap();
        assert!(!s.exit(8));
        assert_eq!(s.by_id[&id].vals, alloc::vec![5]);
        assert_eq!(s.set_values(id, 0, &[SEMVMX + 1], 1, 2), Err(ERANGE));
        assert_eq!(s.set_values(id, 1, &[1], 1, 2), Err(EINVAL));
        // A removed set's adjustments go with it.
        s.semop(id, &[op(0, 1, SEM_UNDO)], 9, 1).unwrap();
        s.remove(id);
        assert!(!s.exit(9));
    }

    #[test]
    fn sembufs_and_semid_ds_are_x86_64_linuxs() {
        let b = [1, 0, 0xff, 0xff, 0x00, 0x18];
        assert_eq!(SemOp::parse(&b), alloc::vec![op(1, -1, 0x1800)]);
        let mut s = Semaphores::default();
        let id = s.create(42, 3, crate::sysv::Perm::with_mode(0o640), 99);
        let ds = semid_ds(&s.by_id[&id]);
        assert_eq!(ds.len(), SEMID_DS_LEN);
        assert_eq!(&ds[0..4], &42i32.to_le_bytes());
        assert_eq!(&ds[20..24], &0o640u32.to_le_bytes());
        assert_eq!(&ds[64..72], &99u64.to_le_bytes());
        assert_eq!(&ds[80..88], &3u64.to_le_bytes());
    }
}
