//! The storage monitor's file system: durable and crash-consistent.
//!
//! The namespace and the inode table live in memory ([`tree`]); the disk
//! holds a checkpoint of them plus a log of every change since ([`log`]);
//! file data is copy-on-write in 4 KiB blocks, each with its checksum in the
//! block map. See [`layout`] for where things are on the disk.
//!
//! Durability contract: when an operation returns Ok, its data and its log
//! record have been written to the device (the write calls returned), so the
//! death of the process cannot lose it; [`Fs::sync`] also flushes the
//! device, which is what makes it survive a power cut.
//!
//! Crash consistency: a change is exactly one log record, and a record is
//! only written after the data it points to, so a crash at any point leaves
//! the state before or after each operation. Blocks a record stops using are
//! only reused after the next flush (or checkpoint), once the record is
//! durable: until then the metadata on the disk may still point at them.
//!
//! Known limits: a write of more than [`CHUNK_BLOCKS`] blocks is several
//! records (a crash may keep a prefix of it, as POSIX allows); reads do not
//! update atime here (the processor asks, by relatime's rule); if the namespace outgrows a
//! checkpoint slot (disk/32, at least 4 MiB: some 50,000 files with short
//! names at the minimum size), every operation but unlink, rmdir and
//! truncate fails with ENOSPC once the log needs a checkpoint, and those
//! three keep working (in the last quarter of the log) so that the user can
//! shrink the tree until a checkpoint fits again. Nothing is corrupted.

mod codec;
pub mod layout;
pub mod log;
mod space;
pub mod tree;

use crate::block::{BlockDevice, SECTOR};
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use layout::{CkptHeader, Superblock, BLOCK, SECTORS_PER_BLOCK};
use log::{BlockRef, Link, Record};
use space::Space;
use tree::{Tree, NAME_MAX, ROOT};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

pub const PATH_MAX: usize = 4095;
/// Symlinks followed while resolving one path, as Linux.
pub const MAX_HOPS: u32 = 40;
/// File blocks one write record covers at most: bounds the record (16 KiB)
/// and the buffer one write needs.
pub const CHUNK_BLOCKS: u64 = 1024;
/// The largest file size.
pub const MAX_FILE: u64 = 1 << 44;
/// The most one read returns.
pub const MAX_READ: usize = 64 << 20;
/// The most bytes [`Fs::stage_reads`] reads ahead for one group.
pub const STAGE_MAX: u64 = 4 << 20;

pub const S_IFREG: u32 = 0o100000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFIFO: u32 = 0o010000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_ISUID: u32 = 0o4000;
pub const S_ISGID: u32 = 0o2000;
const S_IXGRP: u32 = 0o010;

const B: u64 = BLOCK as u64;

/// A Linux errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    pub const ENOENT: Errno = Errno(2);
    pub const EPERM: Errno = Errno(1);
    pub const EIO: Errno = Errno(5);
    pub const EBADF: Errno = Errno(9);
    pub const EBUSY: Errno = Errno(16);
    pub const EEXIST: Errno = Errno(17);
    pub const ENOTDIR: Errno = Errno(20);
    pub const EISDIR: Errno = Errno(21);
    pub const EINVAL: Errno = Errno(22);
    pub const EFBIG: Errno = Errno(27);
    pub const ENOSPC: Errno = Errno(28);
    pub const EMLINK: Errno = Errno(31);
    pub const ENAMETOOLONG: Errno = Errno(36);
    pub const ENOTEMPTY: Errno = Errno(39);
    pub const ELOOP: Errno = Errno(40);
    pub const ESTALE: Errno = Errno(116);
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountError {
    /// No Lego file system on the device: the caller must not write it.
    NotLego,
    Version(u32),
    TooSmall,
    Damaged(&'static str),
    Io,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    File = 1,
    Dir = 2,
    Symlink = 3,
    /// A named pipe (mkfifo): only its name and metadata are here; its
    /// bytes go through a pipe of the processor that opens it.
    Fifo = 4,
    /// An AF_UNIX socket's file (bind): its name and metadata; the socket
    /// is the processor's.
    Socket = 5,
}

impl Kind {
    pub fn from_u8(v: u8) -> Option<Kind> {
        match v {
            1 => Some(Kind::File),
            2 => Some(Kind::Dir),
            3 => Some(Kind::Symlink),
            4 => Some(Kind::Fifo),
            5 => Some(Kind::Socket),
            _ => None,
        }
    }

    /// Linux's d_type: DT_REG 8, DT_DIR 4, DT_LNK 10, DT_FIFO 1, DT_SOCK 12.
    pub fn d_type(self) -> u8 {
        match self {
            Kind::File => 8,
            Kind::Dir => 4,
            Kind::Symlink => 10,
            Kind::Fifo => 1,
            Kind::Socket => 12,
        }
    }

    fn type_bits(self) -> u32 {
        match self {
            Kind::File => S_IFREG,
            Kind::Dir => S_IFDIR,
            Kind::Symlink => S_IFLNK,
            Kind::Fifo => S_IFIFO,
            Kind::Socket => S_IFSOCK,
        }
    }
}

/// What mount found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    pub records_replayed: u64,
    /// The generation of the checkpoint mounted from.
    pub checkpoint_gen: u64,
    /// The first sequence number after that checkpoint.
    pub checkpoint_seq: u64,
    /// Inodes, the root included.
    pub files: u64,
}

/// A file's metadata, as stat reports it: the protocol's own type, so
/// the service hands it on as it is.
pub use lego_proto::storage::StoreStat as Stat;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub ino: u64,
    pub kind: Kind,
    /// The cookie to pass to [`Fs::readdir`] to continue after this entry.
    pub next: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatFs {
    pub block_size: u64,
    pub blocks: u64,
    /// Free blocks, counting those freed but reusable only after the next
    /// flush (an allocation that needs them flushes first).
    pub blocks_free: u64,
    pub files: u64,
    pub name_max: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckReport {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Named pipes and sockets' files.
    pub specials: u64,
    pub used_blocks: u64,
    pub pending_blocks: u64,
    pub free_blocks: u64,
}

/// Where a path led.
enum Walk {
    Found {
        parent: u64,
        name: Vec<u8>,
        ino: u64,
    },
    /// Everything but the last component exists; the last does not.
    Missing { parent: u64, name: Vec<u8> },
}

enum CkptError {
    TooBig,
    Io,
}

pub struct Fs<D: BlockDevice> {
    dev: D,
    /// Whether the last path walk followed a symbolic link
    /// ([`Fs::past_link`]).
    past_link: core::cell::Cell<bool>,
    sb: Superblock,
    tree: Tree,
    /// Where paths start: the disk's root, or a vNode's directory while
    /// the service serves that vNode ([`Fs::enter`]). Absolute symlink
    /// targets and `..` never leave it.
    ns_root: u64,
    space: Space,
    /// Freed by records not yet known durable: reusable after a flush.
    pending: Vec<u64>,
    /// Generation and slot of the newest durable checkpoint.
    gen: u64,
    slot: usize,
    ckpt_seq: u64,
    next_seq: u64,
    /// Checksum of the last record (or checkpoint header): the next `prev`.
    prev: u64,
    /// Sectors of the log in use.
    log_head: u64,
    /// Log sectors after which the next record first takes a checkpoint.
    ckpt_at: u64,
    /// Sectors a checkpoint may use: the slot, or less for tests.
    ckpt_limit: u64,
    /// The [`Fs::weight`] at which the last checkpoint did not fit its slot.
    too_big: Option<u64>,
    /// While a group is open ([`Fs::open_group`]): the device writes of its
    /// changes, in order, not made yet.
    held: Option<Vec<(u64, Vec<u8>)>>,
    /// Changes held in groups so far: a request that moved it wrote.
    held_count: u64,
    /// A group's device write failed: the tree holds changes the disk may
    /// not, so every call fails with EIO until the disk is mounted again.
    broken: bool,
    /// Blocks read ahead for the reads of a group ([`Fs::stage_reads`]):
    /// (first block, the bytes of the run from it). A block is only ever
    /// written once freshly allocated, so they hold until the next
    /// allocation, which drops them.
    staged: Vec<(u64, Vec<u8>)>,
    /// The owner and group of what requests make until the next
    /// [`Fs::act_for`]: the caller's, as the service is told with each
    /// request (root's until then).
    creator: (u32, u32),
}

fn eio<T>(_: T) -> Errno {
    Errno::EIO
}

/// Splits an absolute, normalized path into its components.
fn parse(path: &[u8]) -> Result<Vec<&[u8]>, Errno> {
    if path.first() != Some(&b'/') || path.contains(&0) {
        return Err(Errno::EINVAL);
    }
    if path.len() > PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if path == b"/" {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for c in path[1..].split(|&b| b == b'/') {
        if c.is_empty() || c == b"." || c == b".." {
            return Err(Errno::EINVAL);
        }
        if c.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        out.push(c);
    }
    Ok(out)
}

impl<D: BlockDevice> Fs<D> {
    /// Makes an empty file system on `dev`, overwriting whatever it held.
    pub fn format(mut dev: D, now: u64) -> Result<Self, MountError> {
        let sectors = dev.sectors();
        Superblock::for_device(sectors, 0)?;
        // Seeding the id with the old superblock makes it differ from the
        // previous file system's even at the same `now`.
        let mut id_src = vec![0u8; BLOCK + 16];
        dev.read(0, &mut id_src[..BLOCK])
            .map_err(|_| MountError::Io)?;
        id_src[BLOCK..BLOCK + 8].copy_from_slice(&now.to_le_bytes());
        id_src[BLOCK + 8..].copy_from_slice(&sectors.to_le_bytes());
        let sb = Superblock::for_device(sectors, xxh3_64(&id_src))?;
        let zero = [0u8; SECTOR];
        for s in [sb.ckpt[1].start, sb.log.start] {
            dev.write(s, &zero).map_err(|_| MountError::Io)?;
        }
        let space = Space::new(sb.data_blocks());
        let ckpt_at = sb.log.len * 3 / 4;
        let mut fs = Fs {
            dev,
            sb,
            tree: Tree::new(now),
            ns_root: ROOT,
            past_link: core::cell::Cell::new(false),
            space,
            pending: Vec::new(),
            gen: 0,
            slot: 1,
            ckpt_seq: 1,
            next_seq: 1,
            prev: 0,
            log_head: 0,
            ckpt_at,
            ckpt_limit: u64::MAX,
            too_big: None,
            held: None,
            held_count: 0,
            broken: false,
            staged: Vec::new(),
            creator: (0, 0),
        };
        fs.write_checkpoint().map_err(|_| MountError::Io)?;
        let sbuf = fs.sb.encode();
        fs.dev.write(0, &sbuf).map_err(|_| MountError::Io)?;
        fs.dev.flush().map_err(|_| MountError::Io)?;
        Ok(fs)
    }

    /// Recovers the file system on `dev`: the newest valid checkpoint, then
    /// the log records after it up to the first torn one. Never writes (it
    /// flushes once, on success).
    pub fn mount(mut dev: D) -> Result<(Self, Recovery), MountError> {
        if dev.sectors() < SECTORS_PER_BLOCK {
            return Err(MountError::NotLego);
        }
        let mut b = vec![0u8; BLOCK];
        dev.read(0, &mut b).map_err(|_| MountError::Io)?;
        let sb = Superblock::decode(&b, dev.sectors())?;
        let fs_id = sb.fs_id;

        let mut heads = Vec::new();
        for (i, r) in sb.ckpt.iter().enumerate() {
            let mut s = [0u8; SECTOR];
            dev.read(r.start, &mut s).map_err(|_| MountError::Io)?;
            if let Some(h) = CkptHeader::decode(&s, fs_id) {
                if h.len.div_ceil(SECTOR as u64) < r.len {
                    heads.push((i, h));
                }
            }
        }
        heads.sort_by_key(|(_, h)| core::cmp::Reverse(h.gen));
        let mut chosen = None;
        for (i, h) in heads {
            let mut p = vec![0u8; h.len.div_ceil(SECTOR as u64) as usize * SECTOR];
            dev.read(sb.ckpt[i].start + 1, &mut p)
                .map_err(|_| MountError::Io)?;
            let p = &p[..h.len as usize];
            // A checksum mismatch is a checkpoint torn by a crash: it was
            // never flushed, so the log was not restarted and the older one
            // is complete. Unless the log holds a record written after it:
            // then it was complete once and has been damaged since, and the
            // older one would silently lose everything in between. A
            // matching checksum over bytes that do not decode is damage too.
            if xxh3_64_with_seed(p, fs_id) != h.payload_csum {
                let after = Link {
                    gen: h.gen,
                    seq: h.next_seq,
                    prev: h.csum(fs_id),
                };
                let mut first = vec![0u8; SECTOR];
                dev.read(sb.log.start, &mut first)
                    .map_err(|_| MountError::Io)?;
                if let Some(len) = log::expected_len(&first, after) {
                    let n = log::sectors_for(len).min(sb.log.len);
                    let mut frame = vec![0u8; n as usize * SECTOR];
                    dev.read(sb.log.start, &mut frame)
                        .map_err(|_| MountError::Io)?;
                    if log::verify(&frame, len, fs_id).is_some() {
                        return Err(MountError::Damaged("newest checkpoint"));
                    }
                }
                continue;
            }
            chosen = Some((i, h, Tree::decode(p).map_err(MountError::Damaged)?));
            break;
        }
        let (slot, h, mut tree) = chosen.ok_or(MountError::Damaged("no valid checkpoint"))?;

        let mut link = Link {
            gen: h.gen,
            seq: h.next_seq,
            prev: h.csum(fs_id),
        };
        let mut head = 0u64;
        let mut replayed = 0u64;
        let mut first = [0u8; SECTOR];
        while head < sb.log.len {
            dev.read(sb.log.start + head, &mut first)
                .map_err(|_| MountError::Io)?;
            let Some(len) = log::expected_len(&first, link) else {
                break;
            };
            let n = log::sectors_for(len);
            if head + n > sb.log.len {
                break;
            }
            let mut frame = vec![0u8; n as usize * SECTOR];
            frame[..SECTOR].copy_from_slice(&first);
            if n > 1 {
                dev.read(sb.log.start + head + 1, &mut frame[SECTOR..])
                    .map_err(|_| MountError::Io)?;
            }
            let Some(c) = log::verify(&frame, len, fs_id) else {
                break;
            };
            let rec = Record::decode(&frame[log::HDR..log::HDR + len])
                .map_err(|_| MountError::Damaged("undecodable log record"))?;
            tree.apply(&rec).map_err(MountError::Damaged)?;
            head += n;
            link.seq += 1;
            link.prev = c;
            replayed += 1;
        }

        let mut space = Space::new(sb.data_blocks());
        for i in tree.inodes.values() {
            for r in i.blocks.values() {
                if !space.mark(r.phys) {
                    return Err(MountError::Damaged("data block out of range or shared"));
                }
            }
        }
        // The blocks the replayed records freed are about to be reused: the
        // records must be on the medium first, not only in a cache.
        dev.flush().map_err(|_| MountError::Io)?;
        let rec = Recovery {
            records_replayed: replayed,
            checkpoint_gen: h.gen,
            checkpoint_seq: h.next_seq,
            files: tree.inodes.len() as u64,
        };
        let ckpt_at = sb.log.len * 3 / 4;
        Ok((
            Fs {
                dev,
                sb,
                tree,
                ns_root: ROOT,
                past_link: core::cell::Cell::new(false),
                space,
                pending: Vec::new(),
                gen: h.gen,
                slot,
                ckpt_seq: h.next_seq,
                next_seq: link.seq,
                prev: link.prev,
                log_head: head,
                ckpt_at,
                ckpt_limit: u64::MAX,
                too_big: None,
                held: None,
                held_count: 0,
                broken: false,
                staged: Vec::new(),
                creator: (0, 0),
            },
            rec,
        ))
    }

    pub fn into_device(self) -> D {
        self.dev
    }

    pub fn device(&self) -> &D {
        &self.dev
    }

    /// The block device, to change (tests make it fail).
    #[cfg(test)]
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.dev
    }

    /// Takes checkpoints after `sectors` of log instead of 3/4 of it: lets
    /// tests reach checkpoints quickly.
    pub fn set_checkpoint_threshold(&mut self, sectors: u64) {
        self.ckpt_at = sectors.clamp(1, self.sb.log.len);
    }

    /// Pretends checkpoint slots hold only `sectors`: lets tests outgrow one.
    pub fn set_checkpoint_limit(&mut self, sectors: u64) {
        self.ckpt_limit = sectors;
    }

    /// Writes the whole tree into the older checkpoint slot and flushes; on
    /// success the log restarts empty under the new generation.
    fn write_checkpoint(&mut self) -> Result<(), CkptError> {
        // The records before it reach the log first: the checkpoint holds
        // their changes, and the log restarts after it.
        self.write_held().map_err(|_| CkptError::Io)?;
        let payload = self.tree.encode();
        let slot = 1 - self.slot;
        let region = self.sb.ckpt[slot];
        let psec = payload.len().div_ceil(SECTOR) as u64;
        if 1 + psec > region.len.min(self.ckpt_limit) {
            return Err(CkptError::TooBig);
        }
        let h = CkptHeader {
            gen: self.gen + 1,
            next_seq: self.next_seq,
            len: payload.len() as u64,
            payload_csum: xxh3_64_with_seed(&payload, self.sb.fs_id),
        };
        // Header and payload in one write: a crash tears it, and the payload
        // checksum then rejects it.
        let mut buf = vec![0u8; (1 + psec) as usize * SECTOR];
        h.encode(self.sb.fs_id, &mut buf[..SECTOR]);
        buf[SECTOR..SECTOR + payload.len()].copy_from_slice(&payload);
        self.dev
            .write(region.start, &buf)
            .map_err(|_| CkptError::Io)?;
        // Only once the checkpoint is durable may the log be overwritten.
        self.dev.flush().map_err(|_| CkptError::Io)?;
        self.gen = h.gen;
        self.slot = slot;
        self.ckpt_seq = h.next_seq;
        self.prev = h.csum(self.sb.fs_id);
        self.log_head = 0;
        self.too_big = None;
        self.release_pending();
        Ok(())
    }

    /// What a checkpoint's size grows with: inodes, their other names (hard
    /// links) and blocks in use. Asked only once the log needs a
    /// checkpoint.
    fn weight(&self) -> u64 {
        let used = self.space.total() - self.space.free() - self.pending.len() as u64;
        let names: u64 = self
            .tree
            .inodes
            .values()
            .map(|i| i.links.len() as u64)
            .sum();
        self.tree.inodes.len() as u64 + names + used
    }

    fn release_pending(&mut self) {
        for b in core::mem::take(&mut self.pending) {
            self.space.release(b);
        }
    }

    /// Takes a checkpoint now.
    pub fn checkpoint(&mut self) -> Result<(), Errno> {
        self.write_checkpoint().map_err(|e| match e {
            CkptError::TooBig => Errno::ENOSPC,
            CkptError::Io => Errno::EIO,
        })
    }

    /// Opens a group: until [`Fs::close_group`] the device writes of the
    /// changes made are held, then made in one device call, in order (a
    /// storage component serving the requests that arrived together: one
    /// exit for all their blocks and records instead of one each). The
    /// changes are seen at once; they may be acknowledged only once the
    /// group closed without an error. A read of the disk, a checkpoint or
    /// a flush in between makes the held writes first.
    pub fn open_group(&mut self) {
        if self.held.is_none() {
            self.held = Some(Vec::new());
        }
    }

    /// Makes the group's held writes and closes it. An error means some of
    /// its changes may not be on the disk while the tree has them all: from
    /// then on every call fails with EIO ([`Fs::broken`]); mounting the
    /// disk again recovers what reached it.
    pub fn close_group(&mut self) -> Result<(), Errno> {
        let r = self.write_held();
        self.held = None;
        self.staged.clear();
        r
    }

    /// Changes held in groups so far (a call that moved it changed state).
    pub fn held_count(&self) -> u64 {
        self.held_count
    }

    /// Whether a group's writes failed ([`Fs::close_group`]).
    pub fn broken(&self) -> bool {
        self.broken
    }

    /// Makes the writes held so far in one device call; the group stays
    /// open.
    fn write_held(&mut self) -> Result<(), Errno> {
        if self.broken {
            return Err(Errno::EIO);
        }
        let held = match self.held.as_mut() {
            Some(h) if !h.is_empty() => core::mem::take(h),
            _ => return Ok(()),
        };
        let writes: Vec<(u64, &[u8])> = held.iter().map(|(s, b)| (*s, &b[..])).collect();
        self.dev.write_many(&writes).map_err(|_| {
            self.broken = true;
            Errno::EIO
        })
    }

    /// Makes `rec` durable-on-write and applies it: the one way state changes.
    fn commit(&mut self, rec: &Record) -> Result<(), Errno> {
        self.commit_with(rec, &[])
    }

    /// [`Fs::commit`] of `rec` with the blocks it names, `data` (device
    /// writes), written first in the same device call: one exit for a
    /// file's new blocks and their record, and no record if a block's write
    /// failed.
    fn commit_with(&mut self, rec: &Record, data: &[(u64, &[u8])]) -> Result<(), Errno> {
        if self.broken {
            return Err(Errno::EIO);
        }
        // The operation checked everything already; a record the tree would
        // reject must never reach the log, or the next mount fails.
        self.tree.validate(rec).map_err(eio)?;
        let payload = rec.encode();
        let n = log::sectors_for(payload.len());
        if self.log_head + n > self.ckpt_at {
            // After a checkpoint did not fit, trying again before the tree
            // got smaller would only serialize it once per operation.
            if self.too_big.is_none_or(|w| self.weight() < w) {
                match self.write_checkpoint() {
                    Ok(()) => {}
                    Err(CkptError::TooBig) => self.too_big = Some(self.weight()),
                    Err(CkptError::Io) => return Err(Errno::EIO),
                }
            }
            // The tree outgrew its slot: the rest of the log is kept for
            // records that shrink the tree, which is what makes a checkpoint
            // fit again, so growing it is refused at once.
            let shrinks = matches!(
                rec,
                Record::Unlink { .. } | Record::Rmdir { .. } | Record::SetSize { .. }
            );
            if self.too_big.is_some() && !shrinks {
                return Err(Errno::ENOSPC);
            }
        }
        if self.log_head + n > self.sb.log.len {
            return Err(Errno::ENOSPC);
        }
        let link = Link {
            gen: self.gen,
            seq: self.next_seq,
            prev: self.prev,
        };
        let (frame, csum) = log::frame(&payload, link, self.sb.fs_id);
        let at = self.sb.log.start + self.log_head;
        match self.held.as_mut() {
            Some(held) => {
                held.extend(data.iter().map(|(s, b)| (*s, b.to_vec())));
                held.push((at, frame));
                self.held_count += 1;
            }
            None => {
                let mut writes = data.to_vec();
                writes.push((at, &frame));
                self.dev.write_many(&writes).map_err(eio)?;
            }
        }
        self.log_head += n;
        self.next_seq += 1;
        self.prev = csum;
        let freed = self.tree.apply(rec).map_err(eio)?;
        self.pending.extend(freed);
        Ok(())
    }

    /// Paths start at directory `root` until [`Fs::leave`] (a vNode's
    /// namespace); `root` must be a directory.
    pub fn enter(&mut self, root: u64) -> Result<(), Errno> {
        match self.tree.get(root) {
            Some(i) if i.kind == Kind::Dir => {
                self.ns_root = root;
                Ok(())
            }
            _ => Err(Errno::ENOENT),
        }
    }

    pub fn leave(&mut self) {
        self.ns_root = ROOT;
    }

    /// Files, directories and links made from now on are owned by `uid`
    /// and `gid` (the caller's file-system ids), but for Linux's rule of a
    /// set-group-ID directory: what is made in one takes the directory's
    /// group, and a directory made there is set-group-ID too.
    pub fn act_for(&mut self, uid: u32, gid: u32) {
        self.creator = (uid, gid);
    }

    /// Whether inode `ino` is the namespace's root or under it.
    pub fn in_namespace(&self, ino: u64) -> bool {
        self.tree.is_within(ino, self.ns_root)
    }

    /// Flushes the device: everything acknowledged before is durable.
    pub fn sync(&mut self) -> Result<(), Errno> {
        if self.broken {
            return Err(Errno::EIO);
        }
        // The group's held writes (a program's write and fsync arrive
        // together) and the flush in one device call.
        let held = self.held.as_mut().map(core::mem::take).unwrap_or_default();
        if held.is_empty() {
            self.dev.flush().map_err(eio)?;
        } else {
            let writes: Vec<(u64, &[u8])> = held.iter().map(|(s, b)| (*s, &b[..])).collect();
            self.dev.write_many_and_flush(&writes).map_err(|_| {
                self.broken = true;
                Errno::EIO
            })?;
        }
        self.release_pending();
        Ok(())
    }

    fn walk(&self, path: &[u8], follow_last: bool) -> Result<Walk, Errno> {
        self.walk_noting(path, follow_last, &mut None)
    }

    /// Where `path` leads past storage's own symbolic links when the walk
    /// stops at a name storage lacks: the path reached, the links before
    /// it resolved (`/etc/localtime` to `/usr/share/zoneinfo/UTC`, a
    /// linked directory's `/d/share/doc` to `/usr/share/doc`), for the
    /// processor to look up where it keeps such names (the host's files,
    /// /dev, /tmp). EINVAL when no link was followed and EEXIST when the
    /// walk finds a file: the path leads nowhere else.
    pub fn leads_to(&self, path: &[u8], follow_last: bool) -> Result<Vec<u8>, Errno> {
        let mut reached = None;
        let walked = self.walk_noting(path, follow_last, &mut reached);
        match (walked, reached) {
            (Ok(Walk::Found { .. }), _) => Err(Errno::EEXIST),
            (Ok(Walk::Missing { .. }) | Err(Errno::ENOENT), Some(p)) if p.len() <= PATH_MAX => {
                Ok(p)
            }
            (Ok(Walk::Missing { .. }) | Err(Errno::ENOENT), Some(_)) => Err(Errno::ENAMETOOLONG),
            (Ok(Walk::Missing { .. }) | Err(Errno::ENOENT), None) => Err(Errno::EINVAL),
            (Err(e), _) => Err(e),
        }
    }

    /// Whether the last path walk followed a symbolic link: an ENOENT
    /// it ended in may lie off storage ([`Self::leads_to`]).
    pub fn past_link(&self) -> bool {
        self.past_link.get()
    }

    /// [`Self::walk`], setting `reached` (when a link was followed on the
    /// way) to the path it stopped at where a name is missing.
    fn walk_noting(
        &self,
        path: &[u8],
        follow_last: bool,
        reached: &mut Option<Vec<u8>>,
    ) -> Result<Walk, Errno> {
        self.past_link.set(false);
        let comps = parse(path)?;
        let mut queue: VecDeque<Vec<u8>> = comps.iter().map(|c| c.to_vec()).collect();
        // The textual path of `cur`: relative targets and their ".." are
        // resolved against it lexically.
        let mut walked: Vec<Vec<u8>> = Vec::new();
        let mut cur = self.ns_root;
        let mut hops = 0;
        loop {
            let Some(name) = queue.pop_front() else {
                let i = self.tree.get(cur).ok_or(Errno::EIO)?;
                return Ok(Walk::Found {
                    parent: i.parent,
                    name: i.name.clone(),
                    ino: cur,
                });
            };
            let last = queue.is_empty();
            let Some(ino) = self.tree.lookup(cur, &name) else {
                if hops > 0 {
                    let names = walked.iter().chain([&name]).chain(queue.iter());
                    *reached = Some(names.fold(Vec::new(), |mut p, n| {
                        p.push(b'/');
                        p.extend_from_slice(n);
                        p
                    }));
                }
                return if last {
                    Ok(Walk::Missing { parent: cur, name })
                } else {
                    Err(Errno::ENOENT)
                };
            };
            let i = self.tree.get(ino).ok_or(Errno::EIO)?;
            match i.kind {
                Kind::Symlink if !last || follow_last => {
                    self.past_link.set(true);
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Err(Errno::ELOOP);
                    }
                    let mut base = if i.target.first() == Some(&b'/') {
                        Vec::new()
                    } else {
                        core::mem::take(&mut walked)
                    };
                    for c in i.target.split(|&b| b == b'/') {
                        match c {
                            b"" | b"." => {}
                            b".." => {
                                base.pop();
                            }
                            c if c.len() > NAME_MAX => return Err(Errno::ENAMETOOLONG),
                            c => base.push(c.to_vec()),
                        }
                    }
                    base.extend(queue.drain(..));
                    queue = base.into();
                    walked.clear();
                    cur = self.ns_root;
                }
                _ if last => {
                    return Ok(Walk::Found {
                        parent: cur,
                        name,
                        ino,
                    })
                }
                Kind::Dir => {
                    walked.push(name);
                    cur = ino;
                }
                _ => return Err(Errno::ENOTDIR),
            }
        }
    }

    fn found(&self, path: &[u8], follow: bool) -> Result<(u64, Vec<u8>, u64), Errno> {
        match self.walk(path, follow)? {
            Walk::Found { parent, name, ino } => Ok((parent, name, ino)),
            Walk::Missing { .. } => Err(Errno::ENOENT),
        }
    }

    fn inode(&self, ino: u64) -> Result<&tree::Inode, Errno> {
        self.tree.get(ino).ok_or(Errno::ESTALE)
    }

    fn file(&self, ino: u64) -> Result<&tree::Inode, Errno> {
        let i = self.inode(ino)?;
        match i.kind {
            Kind::File => Ok(i),
            Kind::Dir => Err(Errno::EISDIR),
            Kind::Symlink | Kind::Fifo | Kind::Socket => Err(Errno::EINVAL),
        }
    }

    pub fn stat_ino(&self, ino: u64) -> Result<Stat, Errno> {
        let i = self.inode(ino)?;
        Ok(Stat {
            ino,
            mode: i.kind.type_bits() | i.mode,
            nlink: if i.kind == Kind::Dir {
                2 + i.subdirs
            } else {
                1 + i.links.len() as u32
            },
            size: if i.kind == Kind::Dir { B } else { i.size },
            // A directory's entries live in the tree, not in blocks of its
            // own; it shows the one block its size says, as on ext4 (so
            // `du` counts it).
            blocks: if i.kind == Kind::Dir {
                SECTORS_PER_BLOCK
            } else {
                i.blocks.len() as u64 * SECTORS_PER_BLOCK
            },
            atime: i.atime,
            mtime: i.mtime,
            ctime: i.ctime,
            uid: i.uid,
            gid: i.gid,
        })
    }

    pub fn stat(&self, path: &[u8], follow: bool) -> Result<Stat, Errno> {
        let (_, _, ino) = self.found(path, follow)?;
        self.stat_ino(ino)
    }

    fn make(
        &mut self,
        parent: u64,
        name: Vec<u8>,
        kind: Kind,
        mode: u32,
        target: Vec<u8>,
        now: u64,
    ) -> Result<Stat, Errno> {
        let ino = self.tree.next_ino;
        let (uid, mut gid) = self.creator;
        let mut mode = mode & 0o7777;
        let dir = self.inode(parent)?;
        if dir.mode & S_ISGID != 0 {
            gid = dir.gid;
            if kind == Kind::Dir {
                mode |= S_ISGID;
            }
        }
        self.commit(&Record::Create {
            parent,
            name,
            ino,
            kind,
            mode,
            uid,
            gid,
            time: now,
            target,
        })?;
        self.stat_ino(ino)
    }

    /// O_CREAT: creates a regular file if missing (EEXIST if `excl` and the
    /// path exists, even as a symlink); `trunc` empties an existing file.
    pub fn create(
        &mut self,
        path: &[u8],
        mode: u32,
        excl: bool,
        trunc: bool,
        now: u64,
    ) -> Result<Stat, Errno> {
        match self.walk(path, !excl)? {
            Walk::Found { ino, .. } => {
                if excl {
                    return Err(Errno::EEXIST);
                }
                // A named pipe or a socket's file is opened as it is
                // (O_TRUNC means nothing to it): the processor's.
                if matches!(self.inode(ino)?.kind, Kind::Fifo | Kind::Socket) {
                    return self.stat_ino(ino);
                }
                let i = self.file(ino)?;
                if trunc && (i.size > 0 || !i.blocks.is_empty()) {
                    self.truncate_ino(ino, 0, now)?;
                }
                self.stat_ino(ino)
            }
            Walk::Missing { parent, name } => {
                self.make(parent, name, Kind::File, mode, Vec::new(), now)
            }
        }
    }

    pub fn mkdir(&mut self, path: &[u8], mode: u32, now: u64) -> Result<Stat, Errno> {
        match self.walk(path, false)? {
            Walk::Found { .. } => Err(Errno::EEXIST),
            Walk::Missing { parent, name } => {
                self.make(parent, name, Kind::Dir, mode, Vec::new(), now)
            }
        }
    }

    /// mkfifo, or bind of an AF_UNIX socket: a named pipe or a socket's
    /// file (`kind`) at `path` (EEXIST if the name is taken).
    pub fn mknod(&mut self, path: &[u8], kind: Kind, mode: u32, now: u64) -> Result<Stat, Errno> {
        if !matches!(kind, Kind::Fifo | Kind::Socket) {
            return Err(Errno::EINVAL);
        }
        match self.walk(path, false)? {
            Walk::Found { .. } => Err(Errno::EEXIST),
            Walk::Missing { parent, name } => self.make(parent, name, kind, mode, Vec::new(), now),
        }
    }

    pub fn rmdir(&mut self, path: &[u8], now: u64) -> Result<(), Errno> {
        let (parent, name, ino) = self.found(path, false)?;
        if ino == ROOT || ino == self.ns_root {
            return Err(Errno::EBUSY);
        }
        let i = self.inode(ino)?;
        if i.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        if !i.children.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        self.commit(&Record::Rmdir {
            parent,
            name,
            time: now,
        })
    }

    /// Removes a file or symlink; EISDIR on a directory.
    pub fn unlink(&mut self, path: &[u8], now: u64) -> Result<(), Errno> {
        let (parent, name, ino) = self.found(path, false)?;
        if self.inode(ino)?.kind == Kind::Dir {
            return Err(Errno::EISDIR);
        }
        self.commit(&Record::Unlink {
            parent,
            name,
            time: now,
        })
    }

    /// Atomic rename, replacing the target as Linux does.
    pub fn rename(
        &mut self,
        from: &[u8],
        to: &[u8],
        noreplace: bool,
        now: u64,
    ) -> Result<(), Errno> {
        let (fp, fname, src) = self.found(from, false)?;
        let (tp, tname, dst) = match self.walk(to, false)? {
            Walk::Found { parent, name, ino } => (parent, name, Some(ino)),
            Walk::Missing { parent, name } => (parent, name, None),
        };
        if src == ROOT || dst == Some(ROOT) || src == self.ns_root || dst == Some(self.ns_root) {
            return Err(Errno::EBUSY);
        }
        if noreplace && dst.is_some() {
            return Err(Errno::EEXIST);
        }
        if dst == Some(src) {
            return Ok(());
        }
        let s_dir = self.inode(src)?.kind == Kind::Dir;
        if s_dir && self.tree.is_within(tp, src) {
            return Err(Errno::EINVAL);
        }
        if let Some(d) = dst {
            let d = self.inode(d)?;
            match (s_dir, d.kind == Kind::Dir) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !d.children.is_empty() => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
        }
        self.commit(&Record::Rename {
            from_parent: fp,
            from_name: fname,
            to_parent: tp,
            to_name: tname,
            time: now,
        })
    }

    /// A hard link: `new` becomes another name of the file or symlink at
    /// `old` (through a final symlink with `follow`). EPERM for a
    /// directory, as Linux; EEXIST if `new` exists, even as a dangling
    /// symlink.
    pub fn link(&mut self, old: &[u8], follow: bool, new: &[u8], now: u64) -> Result<Stat, Errno> {
        // As Linux: the old name, then the new one, then what may be linked.
        let (_, _, ino) = self.found(old, follow)?;
        match self.walk(new, false)? {
            Walk::Found { .. } => Err(Errno::EEXIST),
            Walk::Missing { parent, name } => {
                let i = self.inode(ino)?;
                if i.kind == Kind::Dir {
                    return Err(Errno::EPERM);
                }
                if i.links.len() + 1 >= tree::LINK_MAX {
                    return Err(Errno::EMLINK);
                }
                self.commit(&Record::Link {
                    ino,
                    parent,
                    name,
                    time: now,
                })?;
                self.stat_ino(ino)
            }
        }
    }

    pub fn symlink(&mut self, target: &[u8], path: &[u8], now: u64) -> Result<Stat, Errno> {
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        if target.contains(&0) {
            return Err(Errno::EINVAL);
        }
        if target.len() > PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        match self.walk(path, false)? {
            Walk::Found { .. } => Err(Errno::EEXIST),
            Walk::Missing { parent, name } => {
                self.make(parent, name, Kind::Symlink, 0o777, target.to_vec(), now)
            }
        }
    }

    /// EINVAL if `path` is not a symlink.
    pub fn readlink(&self, path: &[u8]) -> Result<Vec<u8>, Errno> {
        let (_, _, ino) = self.found(path, false)?;
        let i = self.inode(ino)?;
        if i.kind != Kind::Symlink {
            return Err(Errno::EINVAL);
        }
        Ok(i.target.clone())
    }

    pub fn chmod(&mut self, path: &[u8], mode: u32, now: u64) -> Result<(), Errno> {
        let (_, _, ino) = self.found(path, true)?;
        self.chmod_ino(ino, mode, now)
    }

    pub fn chmod_ino(&mut self, ino: u64, mode: u32, now: u64) -> Result<(), Errno> {
        self.inode(ino)?;
        self.commit(&Record::SetMode {
            ino,
            mode: mode & 0o7777,
            time: now,
        })
    }

    /// chown: `uid` and `gid` (None: unchanged) of `ino`. As Linux does,
    /// every chown (even one changing neither) clears the set-user-ID bit
    /// of anything but a directory, and its set-group-ID bit when it is
    /// group-executable (set-group-ID without it means mandatory locking,
    /// and stays). Whether the caller may is the processor's to check: it
    /// knows the caller's credentials.
    pub fn chown_ino(
        &mut self,
        ino: u64,
        uid: Option<u32>,
        gid: Option<u32>,
        now: u64,
    ) -> Result<(), Errno> {
        let i = self.inode(ino)?;
        let mut mode = i.mode;
        if i.kind != Kind::Dir {
            mode &= !S_ISUID;
            if mode & S_IXGRP != 0 {
                mode &= !S_ISGID;
            }
        }
        let rec = Record::SetOwner {
            ino,
            uid: uid.unwrap_or(i.uid),
            gid: gid.unwrap_or(i.gid),
            mode,
            time: now,
        };
        self.commit(&rec)
    }

    pub fn set_times(
        &mut self,
        path: &[u8],
        atime: Option<u64>,
        mtime: Option<u64>,
        now: u64,
    ) -> Result<(), Errno> {
        let (_, _, ino) = self.found(path, true)?;
        self.set_times_ino(ino, atime, mtime, now)
    }

    pub fn set_times_ino(
        &mut self,
        ino: u64,
        atime: Option<u64>,
        mtime: Option<u64>,
        now: u64,
    ) -> Result<(), Errno> {
        self.inode(ino)?;
        self.commit(&Record::SetTimes {
            ino,
            atime,
            mtime,
            time: now,
        })
    }

    /// Reads the blocks `refs` name, consecutive on the disk, into `buf` in
    /// one device read, and checks each against its hash: damaged data is
    /// an error, never returned.
    fn read_blocks(&mut self, refs: &[BlockRef], buf: &mut [u8]) -> Result<(), Errno> {
        let Some(first) = refs.first() else {
            return Ok(());
        };
        // A block a held write has not put on the disk yet is read after it.
        self.write_held()?;
        let (lo, hi) = (first.phys, first.phys + refs.len() as u64);
        let staged = self.staged.iter().find_map(|(at, bytes)| {
            let end = at + (bytes.len() / BLOCK) as u64;
            (*at <= lo && hi <= end).then(|| &bytes[(lo - at) as usize * BLOCK..][..buf.len()])
        });
        match staged {
            Some(bytes) => buf.copy_from_slice(bytes),
            None => self
                .dev
                .read(self.sb.block_sector(first.phys), buf)
                .map_err(eio)?,
        }
        for (r, blk) in refs.iter().zip(buf.chunks_exact(BLOCK)) {
            if xxh3_64(blk) != r.hash {
                return Err(Errno::EIO);
            }
        }
        Ok(())
    }

    /// The current bytes of file block `fb` (zeros for a hole).
    fn block_content(&mut self, ino: u64, fb: u64) -> Result<Vec<u8>, Errno> {
        let mut buf = vec![0u8; BLOCK];
        if let Some(r) = self.file(ino)?.blocks.get(&fb).copied() {
            self.read_blocks(&[r], &mut buf)?;
        }
        Ok(buf)
    }

    /// Reads up to `len` bytes at `offset`; short at the end of the file,
    /// and beyond [`MAX_READ`] bytes (a short read, as POSIX allows, rather
    /// than a buffer the monitor's heap cannot hold).
    pub fn read_ino(&mut self, ino: u64, offset: u64, len: usize) -> Result<Vec<u8>, Errno> {
        self.read_ino_after(0, ino, offset, len)
    }

    /// [`Fs::read_ino`] into a buffer that starts with `head` bytes left
    /// free (a reply's head, written there without copying the data).
    pub fn read_ino_after(
        &mut self,
        head: usize,
        ino: u64,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, Errno> {
        let Some(end) = self.read_end(ino, offset, len)? else {
            return Ok(vec![0u8; head]);
        };
        let mut buf = vec![0u8; head + (end - offset) as usize];
        let out = &mut buf[head..];
        // One device read per run of blocks consecutive in the file and on
        // the disk.
        for (first, refs) in self.runs(ino, offset, end)? {
            let n = refs.len();
            let (run_start, run_end) = (first * B, (first + n as u64) * B);
            // A run wholly inside the read goes straight into the answer.
            if offset <= run_start && run_end <= end {
                let at = (run_start - offset) as usize;
                self.read_blocks(&refs, &mut out[at..at + n * BLOCK])?;
                continue;
            }
            let mut run = vec![0u8; n * BLOCK];
            self.read_blocks(&refs, &mut run)?;
            let (lo, hi) = (run_start.max(offset), run_end.min(end));
            out[(lo - offset) as usize..(hi - offset) as usize]
                .copy_from_slice(&run[(lo - run_start) as usize..(hi - run_start) as usize]);
        }
        Ok(buf)
    }

    /// Where a read of `len` bytes of `ino` at `offset` ends: short at the
    /// end of the file and beyond [`MAX_READ`]; None if it reads nothing.
    fn read_end(&self, ino: u64, offset: u64, len: usize) -> Result<Option<u64>, Errno> {
        let size = self.file(ino)?.size;
        let end = size.min(offset.saturating_add(len.min(MAX_READ) as u64));
        Ok((offset < end).then_some(end))
    }

    /// The blocks of `ino` that hold bytes [offset, end), as runs
    /// consecutive in the file and on the disk: each run's first file
    /// block and its blocks. Holes are in no run.
    fn runs(&self, ino: u64, offset: u64, end: u64) -> Result<Vec<(u64, Vec<BlockRef>)>, Errno> {
        let (fb0, fb1) = (offset / B, end.div_ceil(B));
        let mut out: Vec<(u64, Vec<BlockRef>)> = Vec::new();
        for (&fb, &r) in self.file(ino)?.blocks.range(fb0..fb1) {
            match out.last_mut() {
                Some((first, refs))
                    if *first + refs.len() as u64 == fb
                        && refs.last().is_some_and(|l| l.phys + 1 == r.phys) =>
                {
                    refs.push(r)
                }
                _ => out.push((fb, alloc::vec![r])),
            }
        }
        Ok(out)
    }

    /// Reads ahead, in one device call, the blocks that the reads `wanted`
    /// ((inode, offset, length) each: the read requests that arrived
    /// together) will need, when they would otherwise take more than one
    /// device read: each costs an exit to the VMM (about 40 us here), the
    /// most of a 64 KiB read's time. At most [`STAGE_MAX`] bytes; what is
    /// not staged is read as before. Kept until the group closes or a block
    /// is allocated. A failure stages nothing: the reads then meet it
    /// themselves.
    pub fn stage_reads(&mut self, wanted: &[(u64, u64, usize)]) {
        self.staged.clear();
        if self.broken {
            return;
        }
        // Disk extents (first block, blocks), and the device reads the
        // requests would make alone.
        let mut extents: Vec<(u64, u64)> = Vec::new();
        for &(ino, offset, len) in wanted {
            let Ok(Some(end)) = self.read_end(ino, offset, len) else {
                continue;
            };
            if let Ok(runs) = self.runs(ino, offset, end) {
                extents.extend(runs.iter().map(|(_, r)| (r[0].phys, r.len() as u64)));
            }
        }
        if extents.len() < 2 {
            return;
        }
        extents.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::new();
        let mut total = 0;
        for (at, n) in extents {
            if (total + n) * B > STAGE_MAX {
                break;
            }
            match merged.last_mut() {
                Some((first, len)) if at <= *first + *len => {
                    let end = (*first + *len).max(at + n);
                    total += end - (*first + *len);
                    *len = end - *first;
                }
                _ => {
                    total += n;
                    merged.push((at, n));
                }
            }
        }
        if self.write_held().is_err() {
            return;
        }
        let mut staged: Vec<(u64, Vec<u8>)> = merged
            .iter()
            .map(|&(at, n)| (at, vec![0u8; n as usize * BLOCK]))
            .collect();
        let sb = &self.sb;
        let mut reads: Vec<(u64, &mut [u8])> = staged
            .iter_mut()
            .map(|(at, buf)| (sb.block_sector(*at), &mut buf[..]))
            .collect();
        if self.dev.read_many(&mut reads).is_ok() {
            self.staged = staged;
        }
    }

    /// `n` free blocks; flushes first if only blocks awaiting a flush are left.
    fn allocate(&mut self, n: u64) -> Result<Vec<u64>, Errno> {
        // A staged block may be about to get new contents.
        self.staged.clear();
        if self.space.free() < n && !self.pending.is_empty() {
            self.sync()?;
        }
        self.space.alloc(n).ok_or(Errno::ENOSPC)
    }

    fn release(&mut self, blocks: &[u64]) {
        for &b in blocks {
            self.space.release(b);
        }
    }

    /// The device writes that put `buf` (whole blocks) at `phys`: one per
    /// run of consecutive blocks.
    fn block_writes<'a>(&self, phys: &[u64], buf: &'a [u8]) -> Vec<(u64, &'a [u8])> {
        let mut out = Vec::new();
        let mut k = 0;
        while k < phys.len() {
            let mut n = 1;
            while k + n < phys.len() && phys[k + n] == phys[k] + n as u64 {
                n += 1;
            }
            out.push((
                self.sb.block_sector(phys[k]),
                &buf[k * BLOCK..(k + n) * BLOCK],
            ));
            k += n;
        }
        out
    }

    /// Writes new copies of file blocks `fb0..fb0 + n` holding `bytes` at
    /// `pos`, then the record that switches the file to them.
    fn write_chunk(
        &mut self,
        ino: u64,
        fb0: u64,
        n: u64,
        pos: u64,
        bytes: &[u8],
        now: u64,
    ) -> Result<(), Errno> {
        let start = (pos - fb0 * B) as usize;
        let end = start + bytes.len();
        // Whole blocks are written from the request itself; a partial
        // block at either end is merged with what the file holds.
        let merged;
        let buf: &[u8] = if start == 0 && end == (n * B) as usize {
            bytes
        } else {
            let mut m = vec![0u8; (n * B) as usize];
            let (head_partial, tail_partial) = (start % BLOCK != 0, end % BLOCK != 0);
            if head_partial || (n == 1 && tail_partial) {
                m[..BLOCK].copy_from_slice(&self.block_content(ino, fb0)?);
            }
            if tail_partial && n > 1 {
                let last = (n - 1) as usize;
                m[last * BLOCK..].copy_from_slice(&self.block_content(ino, fb0 + n - 1)?);
            }
            m[start..end].copy_from_slice(bytes);
            merged = m;
            &merged
        };
        let phys = self.allocate(n)?;
        let refs = phys
            .iter()
            .zip(buf.chunks_exact(BLOCK))
            .map(|(&p, blk)| BlockRef {
                phys: p,
                hash: xxh3_64(blk),
            })
            .collect();
        let result = self.file(ino).map(|i| i.size).and_then(|size| {
            let size = size.max(pos + bytes.len() as u64);
            let data = self.block_writes(&phys, buf);
            self.commit_with(
                &Record::WriteBlocks {
                    ino,
                    first: fb0,
                    refs,
                    size,
                    time: now,
                },
                &data,
            )
        });
        if result.is_err() {
            // Nothing points at them: they can be reused at once.
            self.release(&phys);
        }
        result
    }

    /// Writes `data` at `offset`, or at the end of the file when `append`;
    /// returns where it wrote and the new size.
    pub fn write_ino(
        &mut self,
        ino: u64,
        offset: u64,
        data: &[u8],
        append: bool,
        now: u64,
    ) -> Result<(u64, u64), Errno> {
        let size = self.file(ino)?.size;
        let off = if append { size } else { offset };
        if data.is_empty() {
            return Ok((off, size));
        }
        let end = off
            .checked_add(data.len() as u64)
            .filter(|&e| e <= MAX_FILE)
            .ok_or(Errno::EFBIG)?;
        let mut pos = off;
        while pos < end {
            let fb0 = pos / B;
            let fb1 = (fb0 + CHUNK_BLOCKS).min(end.div_ceil(B));
            let chunk_end = end.min(fb1 * B);
            let bytes = &data[(pos - off) as usize..(chunk_end - off) as usize];
            self.write_chunk(ino, fb0, fb1 - fb0, pos, bytes, now)?;
            pos = chunk_end;
        }
        Ok((off, self.file(ino)?.size))
    }

    pub fn truncate_ino(&mut self, ino: u64, size: u64, now: u64) -> Result<(), Errno> {
        let i = self.file(ino)?;
        if size > MAX_FILE {
            return Err(Errno::EFBIG);
        }
        let cut = size % B;
        // Bytes past the end must read as zeros if the file grows again, so
        // the block holding the new end gets a zeroed tail (a new copy).
        let mut tail = None;
        if size < i.size && cut != 0 && i.blocks.contains_key(&(size / B)) {
            let mut blk = self.block_content(ino, size / B)?;
            blk[cut as usize..].fill(0);
            let phys = self.allocate(1)?;
            tail = Some((
                BlockRef {
                    phys: phys[0],
                    hash: xxh3_64(&blk),
                },
                blk,
            ));
        }
        let data = match &tail {
            Some((t, blk)) => self.block_writes(&[t.phys], blk),
            None => Vec::new(),
        };
        let tail_ref = tail.as_ref().map(|(t, _)| *t);
        let r = self.commit_with(
            &Record::SetSize {
                ino,
                size,
                time: now,
                tail: tail_ref,
            },
            &data,
        );
        if let (Err(_), Some(t)) = (&r, tail_ref) {
            self.release(&[t.phys]);
        }
        r
    }

    /// Entries after `cookie` (0 = from the start, "." and ".." first), at
    /// most `max` of them, and the cookie to continue from; empty at the
    /// end. Cookies are hashes of names ([`tree::name_key`]), so a listing
    /// resumes correctly however the directory changed in between: entries
    /// present throughout are returned exactly once. Names whose hashes
    /// collide are returned together, even beyond `max`, so a cookie never
    /// falls inside such a group.
    pub fn readdir(
        &self,
        ino: u64,
        cookie: u64,
        max: usize,
    ) -> Result<(Vec<DirEntry>, u64), Errno> {
        let d = self.inode(ino)?;
        if d.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        let mut out = Vec::new();
        let mut next = cookie;
        for (c, name, e) in [(1, &b"."[..], ino), (2, &b".."[..], d.parent)] {
            if cookie < c && out.len() < max {
                out.push(DirEntry {
                    name: name.to_vec(),
                    ino: e,
                    kind: Kind::Dir,
                    next: c,
                });
                next = c;
            }
        }
        if out.len() < max {
            let mut it = d
                .children
                .range((cookie.max(2).saturating_add(1), Vec::new())..)
                .peekable();
            while let Some(((h, _), _)) = it.peek() {
                let h = *h;
                let mut group = Vec::new();
                while let Some(((gh, name), child)) = it.peek() {
                    if *gh != h {
                        break;
                    }
                    let kind = self.inode(**child)?.kind;
                    group.push(DirEntry {
                        name: name.clone(),
                        ino: **child,
                        kind,
                        next: h,
                    });
                    it.next();
                }
                if !out.is_empty() && out.len() + group.len() > max {
                    break;
                }
                out.extend(group);
                next = h;
                if out.len() >= max {
                    break;
                }
            }
        }
        Ok((out, next))
    }

    /// [`Fs::readdir`] of the directory `path` names (symlinks followed).
    pub fn readdir_path(
        &self,
        path: &[u8],
        cookie: u64,
        max: usize,
    ) -> Result<(Vec<DirEntry>, u64), Errno> {
        let (_, _, ino) = self.found(path, true)?;
        self.readdir(ino, cookie, max)
    }

    pub fn statfs(&self) -> StatFs {
        StatFs {
            block_size: B,
            blocks: self.space.total(),
            blocks_free: self.space.free() + self.pending.len() as u64,
            files: self.tree.inodes.len() as u64,
            name_max: NAME_MAX as u32,
        }
    }

    /// (data blocks, inodes) under the namespace's root ([`Fs::enter`]),
    /// the root included.
    pub fn namespace_usage(&self) -> (u64, u64) {
        let (mut blocks, mut files) = (0u64, 0u64);
        let mut todo = alloc::vec![self.ns_root];
        // A file of several names is counted once.
        let mut linked = alloc::collections::BTreeSet::new();
        // Bounded by the inode count: the tree has no cycles, but a bug
        // must not hang the monitor.
        while let Some(ino) = todo.pop() {
            if files > self.tree.inodes.len() as u64 {
                break;
            }
            let Some(i) = self.tree.get(ino) else {
                continue;
            };
            if !i.links.is_empty() && !linked.insert(ino) {
                continue;
            }
            files += 1;
            blocks += i.blocks.len() as u64;
            todo.extend(i.children.values().copied());
        }
        (blocks, files)
    }

    /// fsck of the in-memory state: the namespace is one tree with
    /// consistent back links and counts, and every data block is used by
    /// exactly one file (or awaits a flush) and the bitmap agrees.
    pub fn check(&self) -> Result<CheckReport, String> {
        use alloc::format;
        let t = &self.tree;
        let mut rep = CheckReport {
            files: 0,
            dirs: 0,
            symlinks: 0,
            specials: 0,
            used_blocks: 0,
            pending_blocks: self.pending.len() as u64,
            free_blocks: self.space.free(),
        };
        let mut seen = Space::new(self.space.total());
        // Directory entries naming each inode: one per name.
        let mut entries = alloc::collections::BTreeMap::new();
        let link_names: alloc::collections::BTreeSet<(u64, u64, &[u8])> = t
            .inodes
            .iter()
            .flat_map(|(&ino, i)| i.links.iter().map(move |(p, n)| (ino, *p, &n[..])))
            .collect();
        for (&ino, i) in &t.inodes {
            if ino >= t.next_ino {
                return Err(format!("inode {ino} not below next_ino {}", t.next_ino));
            }
            if ino != ROOT {
                if t.lookup(i.parent, &i.name) != Some(ino) {
                    return Err(format!("inode {ino} missing from its parent {}", i.parent));
                }
                if i.kind == Kind::Dir && !i.links.is_empty() {
                    return Err(format!("directory {ino} has hard links"));
                }
                for (p, name) in &i.links {
                    if t.lookup(*p, name) != Some(ino) || (*p == i.parent && name == &i.name) {
                        return Err(format!("link of {ino} missing from directory {p}"));
                    }
                }
                if !t.is_within(ino, ROOT) {
                    return Err(format!("inode {ino} unreachable"));
                }
            }
            match i.kind {
                Kind::Dir => {
                    rep.dirs += 1;
                    let mut subdirs = 0;
                    for ((h, name), c) in &i.children {
                        let ci = t.get(*c).ok_or(format!("dangling entry to {c}"))?;
                        let named = (ci.parent == ino && &ci.name == name)
                            || link_names.contains(&(*c, ino, &name[..]));
                        if !named || *h != tree::name_key(name) {
                            return Err(format!("entry {c} in {ino} disagrees with the inode"));
                        }
                        *entries.entry(*c).or_insert(0usize) += 1;
                        subdirs += (ci.kind == Kind::Dir) as u32;
                    }
                    if subdirs != i.subdirs {
                        return Err(format!(
                            "nlink of {ino}: {} subdirs, counted {subdirs}",
                            i.subdirs
                        ));
                    }
                }
                Kind::Symlink => {
                    rep.symlinks += 1;
                    if i.target.is_empty() || i.size != i.target.len() as u64 {
                        return Err(format!("symlink {ino} target"));
                    }
                }
                Kind::File => rep.files += 1,
                Kind::Fifo | Kind::Socket => rep.specials += 1,
            }
            if i.kind != Kind::File && !i.blocks.is_empty() {
                return Err(format!("non-file {ino} has blocks"));
            }
            for (fb, r) in &i.blocks {
                if *fb >= i.size.div_ceil(B) {
                    return Err(format!("inode {ino} block {fb} beyond size {}", i.size));
                }
                if !seen.mark(r.phys) {
                    return Err(format!("block {} used twice or out of range", r.phys));
                }
                rep.used_blocks += 1;
            }
        }
        for (&ino, i) in &t.inodes {
            let names = if ino == ROOT { 0 } else { 1 + i.links.len() };
            if entries.get(&ino).copied().unwrap_or(0) != names {
                return Err(format!("inode {ino} has {names} names but other entries"));
            }
        }
        for &p in &self.pending {
            if !seen.mark(p) {
                return Err(format!("pending block {p} also in use"));
            }
        }
        for b in 0..self.space.total() {
            if seen.is_used(b) != self.space.is_used(b) {
                return Err(format!("bitmap disagrees at block {b}"));
            }
        }
        if seen.free() != self.space.free() {
            return Err("free count disagrees".into());
        }
        Ok(rep)
    }
}

#[cfg(test)]
mod tests;
