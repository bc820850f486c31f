//! System V shared memory segments (shmget, shmctl) as the processor
//! keeps them: which segment a key names, the checks Linux makes, and
//! `struct shmid_ds` as x86-64 Linux lays it out. The segments' pages are
//! shared-memory objects (`crate::anon`); attaching and detaching are the
//! kernel's (`kernel/syscall/sysv_shm.rs`).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::cred::Cred;

pub const IPC_PRIVATE: i32 = 0;
pub const IPC_CREAT: u64 = 0o1000;
pub const IPC_EXCL: u64 = 0o2000;
pub const IPC_RMID: u64 = 0;
pub const IPC_SET: u64 = 1;
pub const IPC_STAT: u64 = 2;
/// OR'ed into shmctl's command by libcs that ask for the 64-bit layout
/// (musl); it is the only layout on x86-64.
pub const IPC_64: u64 = 0x100;
pub const SHM_LOCK: u64 = 11;
pub const SHM_UNLOCK: u64 = 12;
/// Linux's SHMMNI: segments at most.
pub const MAX_SEGMENTS: usize = 4096;

const EINVAL: i64 = 22;
const EEXIST: i64 = 17;
const ENOENT: i64 = 2;
const ENOSPC: i64 = 28;

/// What an object's user may ask of it (ipcperms' S_IRUGO and S_IWUGO
/// bits, as in a mode's "others" triple).
pub const READ: u32 = 4;
pub const WRITE: u32 = 2;
pub const EXEC: u32 = 1;

/// A segment's, set's or queue's `struct ipc64_perm` less its key: its
/// owner and creator, and who may read and write it (svipc(7)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Perm {
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    /// The low nine permission bits.
    pub mode: u32,
}

impl Perm {
    /// An object made now by `cred` (its effective ids own it), with the
    /// permission bits of the call's flags.
    pub fn new(cred: &Cred, flags: u64) -> Perm {
        let (uid, gid) = (cred.uid.effective, cred.gid.effective);
        Perm {
            uid,
            gid,
            cuid: uid,
            cgid: gid,
            mode: (flags & 0o777) as u32,
        }
    }

    /// Linux's `ipcperms`: whether a caller with `cred` (and supplementary
    /// `groups`) may have `want` ([`READ`], [`WRITE`], [`EXEC`]; or a
    /// get's flags, whose three triples are merged as Linux merges them):
    /// the owner's bits for the owner or creator, the group's for a member
    /// of the owner's or creator's group, else the others'; CAP_IPC_OWNER
    /// passes anything.
    pub fn allows(&self, cred: &Cred, groups: &[u32], want: u32) -> bool {
        let want = (want >> 6 | want >> 3 | want) & 0o7;
        let euid = cred.uid.effective;
        let in_group = |g: u32| cred.gid.fs == g || groups.contains(&g);
        let granted = if euid == self.uid || euid == self.cuid {
            self.mode >> 6
        } else if in_group(self.cgid) || in_group(self.gid) {
            self.mode >> 3
        } else {
            self.mode
        };
        want & !granted & 0o7 == 0 || cred.capable(crate::caps::IPC_OWNER)
    }

    /// Root's object with these permission bits (for tests).
    #[cfg(test)]
    pub fn with_mode(mode: u32) -> Perm {
        Perm {
            mode,
            ..Default::default()
        }
    }

    /// Whether `cred` may change or remove the object (IPC_SET, IPC_RMID):
    /// its owner, its creator, or a holder of CAP_SYS_ADMIN; else EPERM.
    pub fn may_change(&self, cred: &Cred) -> bool {
        let euid = cred.uid.effective;
        euid == self.uid || euid == self.cuid || cred.capable(crate::caps::SYS_ADMIN)
    }

    /// IPC_SET's new owner, group and permission bits, from the caller's
    /// `*_ds`: EINVAL for an owner or group of -1, as Linux (an invalid
    /// id); the creator stays.
    pub fn set_from(&mut self, ds: &[u8]) -> Result<(), i64> {
        let word = |at: usize| -> Option<u32> {
            Some(u32::from_le_bytes(ds.get(at..at + 4)?.try_into().ok()?))
        };
        let (Some(uid), Some(gid), Some(mode)) = (word(4), word(8), word(20)) else {
            return Err(EINVAL);
        };
        if uid == u32::MAX || gid == u32::MAX {
            return Err(EINVAL);
        }
        (self.uid, self.gid, self.mode) = (uid, gid, mode & 0o777);
        Ok(())
    }

    /// The owner, group, creator and mode words of a `struct ipc64_perm`
    /// at the start of `ds` (after its key); `extra` mode bits (SHM_DEST,
    /// SHM_LOCKED) are OR'ed in.
    pub fn write(&self, ds: &mut [u8], extra: u32) {
        if ds.len() < 24 {
            return;
        }
        ds[4..8].copy_from_slice(&self.uid.to_le_bytes());
        ds[8..12].copy_from_slice(&self.gid.to_le_bytes());
        ds[12..16].copy_from_slice(&self.cuid.to_le_bytes());
        ds[16..20].copy_from_slice(&self.cgid.to_le_bytes());
        ds[20..24].copy_from_slice(&((self.mode & 0o777) | extra).to_le_bytes());
    }
}

/// One segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub key: i32,
    /// Bytes asked for (the object is this rounded up to pages).
    pub size: u64,
    /// Its object's start in the shared-memory holder.
    pub object: u64,
    pub perm: Perm,
    pub cpid: u32,
    pub lpid: u32,
    /// Seconds since 1970 of the last attach, detach and change.
    pub atime: u64,
    pub dtime: u64,
    pub ctime: u64,
    /// IPC_RMID was given: it goes with its last attach.
    pub removed: bool,
    /// SHM_LOCK was given (and no SHM_UNLOCK since): shown as SHM_LOCKED.
    pub locked: bool,
}

/// What shmget finds for a key.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// An existing segment's id.
    Found(i32),
    /// None yet: make one of this many bytes.
    Create,
}

/// Every segment, by id.
#[derive(Default)]
pub struct Segments {
    pub by_id: BTreeMap<i32, Segment>,
    next: i32,
}

impl Segments {
    /// shmget's checks, in Linux's order: Ok(Found) for an existing key,
    /// Ok(Create) when one is to be made.
    pub fn lookup(&self, key: i32, size: u64, flags: u64) -> Result<Lookup, i64> {
        if key != IPC_PRIVATE {
            if let Some((&id, seg)) = self.by_id.iter().find(|(_, s)| s.key == key && !s.removed) {
                if flags & IPC_CREAT != 0 && flags & IPC_EXCL != 0 {
                    return Err(EEXIST);
                }
                if size > seg.size {
                    return Err(EINVAL);
                }
                return Ok(Lookup::Found(id));
            }
            if flags & IPC_CREAT == 0 {
                return Err(ENOENT);
            }
        }
        if size == 0 || size > 1 << 46 {
            return Err(EINVAL);
        }
        if self.by_id.len() >= MAX_SEGMENTS {
            return Err(ENOSPC);
        }
        Ok(Lookup::Create)
    }

    /// Records a new segment; its id.
    pub fn add(&mut self, seg: Segment) -> i32 {
        let id = next_id(&self.by_id, &mut self.next);
        self.by_id.insert(id, seg);
        id
    }
}

/// The next id free in `by_id` from `next` (which moves past it): ids
/// of segments, semaphore sets and message queues, positive and reused
/// only after they wrap.
pub fn next_id<T>(by_id: &BTreeMap<i32, T>, next: &mut i32) -> i32 {
    let mut id = *next;
    while by_id.contains_key(&id) {
        id = id.wrapping_add(1) & 0x7fff_ffff;
    }
    *next = id.wrapping_add(1) & 0x7fff_ffff;
    id
}

/// The id SEM_STAT or MSG_STAT's `index` (a place in the kernel's table,
/// not an id) names.
pub fn id_at_index<T>(by_id: &BTreeMap<i32, T>, index: i32) -> Option<i32> {
    let i = usize::try_from(index).ok()?;
    by_id.keys().nth(i).copied()
}

/// `struct shmid_ds` (112 bytes) of a segment with `nattch` attaches.
pub fn shmid_ds(seg: &Segment, nattch: u64) -> Vec<u8> {
    let mut b = alloc::vec![0u8; 112];
    b[0..4].copy_from_slice(&seg.key.to_le_bytes());
    // SHM_DEST: removed, it goes with its last detach.
    let dest = if seg.removed { 0o1000 } else { 0 };
    let locked = if seg.locked { 0o2000 } else { 0 };
    seg.perm.write(&mut b, dest | locked);
    b[48..56].copy_from_slice(&seg.size.to_le_bytes());
    b[56..64].copy_from_slice(&seg.atime.to_le_bytes());
    b[64..72].copy_from_slice(&seg.dtime.to_le_bytes());
    b[72..80].copy_from_slice(&seg.ctime.to_le_bytes());
    b[80..84].copy_from_slice(&seg.cpid.to_le_bytes());
    b[84..88].copy_from_slice(&seg.lpid.to_le_bytes());
    b[88..96].copy_from_slice(&nattch.to_le_bytes());
    b
}

/// /proc/sysvipc/shm: a line per segment (`nattch` counts its attaches),
/// Linux's columns; its resident bytes are all its pages (SHM_INFO's
/// shm_rss counts them so too).
pub fn proc_list(segs: &Segments, nattch: impl Fn(i32) -> u64) -> Vec<u8> {
    let mut out = alloc::string::String::from(
        "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n",
    );
    for (&id, s) in &segs.by_id {
        let mode =
            s.perm.mode | if s.removed { 0o1000 } else { 0 } | if s.locked { 0o2000 } else { 0 };
        let _ = core::fmt::Write::write_fmt(
            &mut out,
            format_args!(
                "{:>10} {:>10}  {:>4o} {:>21} {:>5} {:>5}  {:>5} {:>5} {:>5} {:>5} {:>5} {:>10} {:>10} {:>10} {:>21} {:>21}\n",
                s.key,
                id,
                mode,
                s.size,
                s.cpid,
                s.lpid,
                nattch(id),
                s.perm.uid,
                s.perm.gid,
                s.perm.cuid,
                s.perm.cgid,
                s.atime,
                s.dtime,
                s.ctime,
                s.size.div_ceil(4096) * 4096,
                0
            ),
        );
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(key: i32, size: u64) -> Segment {
        Segment {
            key,
            size,
            object: 0x1000 * size,
            perm: Perm {
                uid: 1000,
                gid: 100,
                cuid: 0,
                cgid: 0,
                mode: 0o600,
            },
            cpid: 1,
            lpid: 0,
            atime: 0,
            dtime: 0,
            ctime: 5,
            removed: false,
            locked: false,
        }
    }

    #[test]
    fn keys_find_their_segment_with_linuxs_errors() {
        let mut s = Segments::default();
        assert_eq!(s.lookup(42, 100, 0), Err(ENOENT));
        assert_eq!(s.lookup(42, 0, IPC_CREAT), Err(EINVAL));
        assert_eq!(s.lookup(42, 100, IPC_CREAT), Ok(Lookup::Create));
        let id = s.add(seg(42, 100));
        assert_eq!(s.lookup(42, 50, 0), Ok(Lookup::Found(id)));
        assert_eq!(s.lookup(42, 100, IPC_CREAT), Ok(Lookup::Found(id)));
        assert_eq!(s.lookup(42, 101, 0), Err(EINVAL));
        assert_eq!(s.lookup(42, 10, IPC_CREAT | IPC_EXCL), Err(EEXIST));
        // IPC_PRIVATE always makes a new one.
        assert_eq!(s.lookup(IPC_PRIVATE, 10, 0), Ok(Lookup::Create));
        let other = s.add(seg(IPC_PRIVATE, 10));
        assert_ne!(id, other);
        // A removed segment's key is free again.
        if let Some(x) = s.by_id.get_mut(&id) {
            x.removed = true;
        }
        assert_eq!(s.lookup(42, 100, 0), Err(ENOENT));
        assert!(s.by_id.values().any(|g| g.object == seg(42, 100).object));
        assert!(!s.by_id.values().any(|g| g.object == 1));
    }

    #[test]
    fn shmid_ds_is_laid_out_as_x86_64_linux() {
        let b = shmid_ds(&seg(7, 8192), 3);
        assert_eq!(b.len(), 112);
        assert_eq!(i32::from_le_bytes(b[0..4].try_into().unwrap()), 7);
        let word = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
        assert_eq!((word(4), word(8), word(12), word(16)), (1000, 100, 0, 0));
        assert_eq!(word(20), 0o600);
        assert_eq!(u64::from_le_bytes(b[48..56].try_into().unwrap()), 8192);
        assert_eq!(u64::from_le_bytes(b[72..80].try_into().unwrap()), 5);
        assert_eq!(u32::from_le_bytes(b[80..84].try_into().unwrap()), 1);
        assert_eq!(u64::from_le_bytes(b[88..96].try_into().unwrap()), 3);
        let mut gone = seg(7, 8192);
        (gone.removed, gone.locked) = (true, true);
        let b = shmid_ds(&gone, 0);
        assert_eq!(u32::from_le_bytes(b[20..24].try_into().unwrap()), 0o3600);
    }

    fn user(uid: u32, gid: u32) -> Cred {
        let mut c = Cred::default();
        c.uid.effective = uid;
        c.uid.fs = uid;
        c.gid.effective = gid;
        c.gid.fs = gid;
        c.caps.effective = 0;
        c
    }

    #[test]
    fn ipcperms_gives_owner_group_and_other_bits_as_linux() {
        let mut p = Perm::new(&user(1000, 100), 0o640);
        assert_eq!((p.uid, p.gid, p.cuid, p.cgid), (1000, 100, 1000, 100));
        // The owner reads and writes; its group reads; others nothing.
        assert!(p.allows(&user(1000, 5), &[], READ | WRITE));
        assert!(p.allows(&user(7, 100), &[], READ));
        assert!(!p.allows(&user(7, 100), &[], WRITE));
        assert!(p.allows(&user(7, 5), &[100], READ));
        assert!(!p.allows(&user(7, 5), &[], READ));
        // A get's flags ask for what any of their triples holds.
        assert!(!p.allows(&user(7, 5), &[], 0o400));
        assert!(p.allows(&user(7, 5), &[], 0));
        // The creator keeps the owner's bits after the owner changes.
        p.uid = 2000;
        assert!(p.allows(&user(1000, 5), &[], WRITE));
        // Root without CAP_IPC_OWNER is an other; with it, anything goes.
        let mut root = user(0, 0);
        assert!(!p.allows(&root, &[], READ));
        root.caps.effective = 1 << crate::caps::IPC_OWNER;
        assert!(p.allows(&root, &[], READ | WRITE | EXEC));
    }

    #[test]
    fn owner_creator_or_sys_admin_may_change() {
        let mut p = Perm::new(&user(1000, 100), 0o600);
        p.uid = 2000;
        assert!(p.may_change(&user(1000, 1)));
        assert!(p.may_change(&user(2000, 1)));
        assert!(!p.may_change(&user(3000, 100)));
        let mut admin = user(3000, 1);
        admin.caps.effective = 1 << crate::caps::SYS_ADMIN;
        assert!(admin.capable(crate::caps::SYS_ADMIN));
        assert!(p.may_change(&admin));
    }

    #[test]
    fn ipc_set_takes_owner_group_and_mode_but_not_minus_one() {
        let mut p = Perm::new(&user(1000, 100), 0o600);
        let mut ds = [0u8; 48];
        ds[4..8].copy_from_slice(&5u32.to_le_bytes());
        ds[8..12].copy_from_slice(&6u32.to_le_bytes());
        ds[12..16].copy_from_slice(&9u32.to_le_bytes());
        ds[20..24].copy_from_slice(&0o7644u32.to_le_bytes());
        assert_eq!(p.set_from(&ds), Ok(()));
        assert_eq!(
            (p.uid, p.gid, p.cuid, p.cgid, p.mode),
            (5, 6, 1000, 100, 0o644)
        );
        ds[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(p.set_from(&ds), Err(EINVAL));
        assert_eq!(p.set_from(&ds[..10]), Err(EINVAL));
        assert_eq!(p.uid, 5);
    }
}
