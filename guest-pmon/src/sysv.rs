//! System V shared memory segments (shmget, shmctl) as the processor
//! keeps them: which segment a key names, the checks Linux makes, and
//! `struct shmid_ds` as x86-64 Linux lays it out. The segments' pages are
//! shared-memory objects (`crate::anon`); attaching and detaching are the
//! kernel's (`kernel/syscall/sysv_shm.rs`).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

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

/// One segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub key: i32,
    /// Bytes asked for (the object is this rounded up to pages).
    pub size: u64,
    /// Its object's start in the shared-memory holder.
    pub object: u64,
    /// Permission bits.
    pub mode: u32,
    pub cpid: u32,
    pub lpid: u32,
    /// Seconds since 1970 of the last attach, detach and change.
    pub atime: u64,
    pub dtime: u64,
    pub ctime: u64,
    /// IPC_RMID was given: it goes with its last attach.
    pub removed: bool,
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

    /// Whether a segment, removed or not, holds `object`.
    pub fn holds(&self, object: u64) -> bool {
        self.by_id.values().any(|s| s.object == object)
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
    // uid, gid, cuid, cgid: 0 (every process here runs as root's ids).
    // SHM_DEST: removed, it goes with its last detach.
    let dest = if seg.removed { 0o1000 } else { 0 };
    b[20..24].copy_from_slice(&((seg.mode & 0o777) | dest).to_le_bytes());
    b[48..56].copy_from_slice(&seg.size.to_le_bytes());
    b[56..64].copy_from_slice(&seg.atime.to_le_bytes());
    b[64..72].copy_from_slice(&seg.dtime.to_le_bytes());
    b[72..80].copy_from_slice(&seg.ctime.to_le_bytes());
    b[80..84].copy_from_slice(&seg.cpid.to_le_bytes());
    b[84..88].copy_from_slice(&seg.lpid.to_le_bytes());
    b[88..96].copy_from_slice(&nattch.to_le_bytes());
    b
}

/// The permission bits IPC_SET gives, from the caller's `shmid_ds`.
pub fn mode_of(ds: &[u8]) -> Option<u32> {
    let m = ds.get(20..24)?;
    Some(u32::from_le_bytes(m.try_into().ok()?) & 0o777)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(key: i32, size: u64) -> Segment {
        Segment {
            key,
            size,
            object: 0x1000 * size,
            mode: 0o600,
            cpid: 1,
            lpid: 0,
            atime: 0,
            dtime: 0,
            ctime: 5,
            removed: false,
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
        assert!(s.holds(seg(42, 100).object));
        assert!(!s.holds(1));
    }

    #[test]
    fn shmid_ds_is_laid_out_as_x86_64_linux() {
        let b = shmid_ds(&seg(7, 8192), 3);
        assert_eq!(b.len(), 112);
        assert_eq!(i32::from_le_bytes(b[0..4].try_into().unwrap()), 7);
        assert_eq!(mode_of(&b), Some(0o600));
        assert_eq!(u64::from_le_bytes(b[48..56].try_into().unwrap()), 8192);
        assert_eq!(u64::from_le_bytes(b[72..80].try_into().unwrap()), 5);
        assert_eq!(u32::from_le_bytes(b[80..84].try_into().unwrap()), 1);
        assert_eq!(u64::from_le_bytes(b[88..96].try_into().unwrap()), 3);
        assert_eq!(mode_of(&b[..10]), None);
    }
}
