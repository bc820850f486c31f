//! /tmp as processes see it: the monitor's tmpfs ([`pmon::tmpfs`]) over
//! the host's /tmp. A name the tmpfs holds is the tmpfs's; any other name
//! under /tmp is the host's, read-only as every host file; a new name made
//! in /tmp or in a directory the tmpfs holds goes to the tmpfs (unless the
//! host already has it). A listing of /tmp shows the tmpfs's names only.
//! Everything here is lost when the processor stops: durable files are the
//! storage component's.

use pmon::tmpfs::{self, Ino};

use super::*;
use pmon::cred::MAY_WRITE;

const O_RDWR: u32 = 2;
const O_CREAT: u32 = 0o100;
const O_EXCL: u32 = 0o200;
const O_TRUNC: u32 = 0o1000;
const O_DIRECTORY: u32 = 0o200000;
const AT_REMOVEDIR: u64 = 0x200;
const RENAME_NOREPLACE: u64 = 1;
const RENAME_EXCHANGE: u64 = 2;
const EXDEV: Errno = 18;
const EBUSY: Errno = 16;
const EOPNOTSUPP: Errno = 95;
const F_SEAL_SEAL: u32 = 1;
const F_SEAL_SHRINK: u32 = 2;
const F_SEAL_GROW: u32 = 4;
const F_SEAL_WRITE: u32 = 8;
const F_SEAL_FUTURE_WRITE: u32 = 0x10;
const F_SEAL_EXEC: u32 = 0x20;
const UTIME_NOW: u64 = (1 << 30) - 1;
const UTIME_OMIT: u64 = (1 << 30) - 2;

/// Whether a rename of storage's `from` to `to` would remove a directory:
/// one is at `to`, and it is not `from`'s.
fn store_replaces_dir(from: &[u8], to: &[u8]) -> bool {
    use super::super::store::stat;
    match (stat(from, false), stat(to, false)) {
        (Ok(f), Ok(t)) => f.ino != t.ino && t.mode & 0o170000 == 0o040000,
        _ => false,
    }
}

/// What a rename did, for the working directories at its names
/// ([`Kernel::follow_renamed`]).
#[derive(Clone, Copy)]
enum Renamed {
    /// `from` moved to `to`; `replaced`: another directory was at `to`,
    /// and went.
    Moved { replaced: bool },
    /// The two swapped (RENAME_EXCHANGE).
    Exchanged,
}

/// The file a call that changes one names (truncate, chmod, chown,
/// utimensat): a descriptor, or a path already resolved, so that the call
/// can be made again on the path storage's links lead to
/// ([`Kernel::or_led_off`]).
pub(super) enum Named {
    Fd(i64),
    Path(Vec<u8>),
}

/// What a call does with the last name of its path
/// ([`Kernel::check_last_name`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum NameUse {
    Rmdir,
    Unlink,
    MakeDir,
    /// A file, a link or a node: anything but a directory.
    MakeOther,
}

/// The entries of the host's directory at `path` ("." and ".." among
/// them); None when the host has no directory there, or an empty one.
pub(super) fn host_listing(path: &[u8]) -> Option<Vec<tmpfs::Dirent>> {
    let (h, st) = host::open_as(path, lego_proto::program::OPEN_READ).ok()?;
    let mut out = Vec::new();
    if st.mode & 0o170000 == 0o040000 {
        let mut at = 0;
        while let Ok((bytes, next)) = host::readdir(h, at, 1 << 16) {
            if bytes.is_empty() || next == at {
                break;
            }
            out.extend(tmpfs::parse_dirents(&bytes));
            at = next;
        }
    }
    host::close(h);
    (!out.is_empty()).then_some(out)
}

/// The part of `full` (absolute, normalized) below /tmp: `b""` for /tmp.
pub(super) fn below_tmp(full: &[u8]) -> Option<&[u8]> {
    pmon::path::below(full, b"/tmp")
}

/// Whether tmpfs path `rel` is in /dev/shm (`pmon::path::dev_shm_alias`),
/// which is another file system to Linux's eyes.
fn in_dev_shm(rel: &[u8]) -> bool {
    rel.strip_prefix(pmon::path::DEV_SHM_DIR)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(b"/"))
}

impl Kernel {
    /// Writes `data` to tmpfs file `ino` at `at`; its shared mappings show
    /// the bytes at once.
    pub(in crate::kernel) fn tmp_write_at(
        &mut self,
        ino: Ino,
        at: u64,
        data: &[u8],
    ) -> Result<usize, Errno> {
        let now = self.realtime_ns();
        let seals = self.seals_of(ino);
        if seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 {
            return Err(EPERM);
        }
        if seals & F_SEAL_GROW != 0
            && at.saturating_add(data.len() as u64) > self.tmp.stat(ino).map_or(0, |st| st.size)
        {
            return Err(EPERM);
        }
        let n = self.tmp.write(ino, at, data, now)?;
        if self.has_shared(FileRef::Tmp(ino)) {
            self.patch_shared(FileRef::Tmp(ino), at, &data[..n]);
        }
        Ok(n)
    }

    /// Truncates tmpfs file `ino` to `len`; its shared mappings show zeros
    /// for what went.
    pub(in crate::kernel) fn tmp_truncate(&mut self, ino: Ino, len: u64) -> Result<(), Errno> {
        let now = self.realtime_ns();
        let old = self.tmp.stat(ino).map_or(0, |st| st.size);
        let seals = self.seals_of(ino);
        if (len < old && seals & F_SEAL_SHRINK != 0) || (len > old && seals & F_SEAL_GROW != 0) {
            return Err(EPERM);
        }
        self.tmp.truncate(ino, len, now)?;
        if len < old && self.has_shared(FileRef::Tmp(ino)) {
            self.zero_shared(FileRef::Tmp(ino), len, old);
        }
        if len < old {
            self.truncated_private(FileRef::Tmp(ino), len);
        }
        Ok(())
    }

    /// The tmpfs node a resolved path names, if any.
    pub(in crate::kernel) fn tmp_node(&self, full: &[u8]) -> Option<Ino> {
        self.tmp.lookup(below_tmp(full)?).ok()
    }

    /// Where a new name `full` is made: in the tmpfs (its path there), or
    /// None when it would be the host's (read-only). A directory of the
    /// host's /tmp it goes in is copied up first (`tmp_copy_up_dirs`).
    pub(super) fn tmp_new_name<'a>(&mut self, full: &'a [u8]) -> Option<&'a [u8]> {
        let rel = below_tmp(full)?;
        if host::stat_path(full, false).is_ok() {
            return None;
        }
        if !self.tmp.has_parent(rel) {
            self.tmp_copy_up_dirs(rel);
        }
        self.tmp.has_parent(rel).then_some(rel)
    }

    /// Whether the tmpfs would take new name `full` (`tmp_new_name`),
    /// copying nothing.
    fn tmp_would_take(&self, full: &[u8]) -> bool {
        let Some(rel) = below_tmp(full) else {
            return false;
        };
        if host::stat_path(full, false).is_ok() {
            return false;
        }
        self.tmp.has_parent(rel)
            || pmon::path::parent(full).is_some_and(|dir| {
                below_tmp(dir).is_some_and(|r| !r.is_empty())
                    && host::stat_path(dir, false).is_ok_and(|st| st.mode & 0o170000 == 0o040000)
            })
    }

    /// Copies the directories of the host's /tmp that lead to tmpfs path
    /// `rel` into the tmpfs (permission bits, owner and times), as overlayfs
    /// copies a lower directory up before it makes a name in it; such a
    /// directory then lists the host's names beside its own
    /// (`tmp_getdents`) and a name it lacks is still the host's. Stops at
    /// the first name on the way that is neither the tmpfs's directory nor
    /// the host's (a file, a symbolic link, nothing): the caller's error.
    fn tmp_copy_up_dirs(&mut self, rel: &[u8]) {
        let Some(cut) = rel.iter().rposition(|&c| c == b'/') else {
            return;
        };
        let ends = rel[..cut]
            .iter()
            .enumerate()
            .filter(|&(_, &c)| c == b'/')
            .map(|(i, _)| i)
            .chain([cut]);
        for end in ends {
            let dir = &rel[..end];
            match self.tmp.lookup(dir) {
                Ok(ino) if self.tmp.is_directory(ino) => continue,
                Ok(_) => return,
                Err(_) => {}
            }
            let mut host_dir = b"/tmp/".to_vec();
            host_dir.extend_from_slice(dir);
            let Ok(st) = host::stat_path(&host_dir, false) else {
                return;
            };
            if st.mode & 0o170000 != 0o040000 {
                return;
            }
            let now = self.realtime_ns();
            self.tmp.made_by(st.uid, st.gid);
            let Ok(ino) = self.tmp.mkdir(dir, st.mode & 0o7777, now) else {
                return;
            };
            self.tmp_over_host.insert(ino);
            let ns = |s: u64, n: u64| s.saturating_mul(1_000_000_000).saturating_add(n);
            let _ = self.tmp.set_times(
                ino,
                Some(ns(st.atime, st.atime_ns)),
                Some(ns(st.mtime, st.mtime_ns)),
                now,
            );
        }
    }

    /// openat of a path under /tmp that the tmpfs holds or makes; None
    /// when the host's file answers.
    pub(super) fn tmp_open(
        &mut self,
        pid: Pid,
        full: &[u8],
        flags: u32,
        mode: u32,
        cloexec: bool,
    ) -> Option<Ret> {
        let rel = below_tmp(full)?;
        // An existing file's bits (a tmpfs file's O_CREAT asked by
        // open_path; the host's file under /tmp it does not see).
        let checks = flags & O_PATH == 0 && !self.overrides(pid);
        let ino = match self.tmp.lookup(rel) {
            Ok(_) if flags & O_CREAT != 0 && flags & O_EXCL != 0 => return Some(err(EEXIST)),
            Ok(ino) if checks && flags & O_CREAT == 0 => {
                let st = match self.tmp.stat(ino) {
                    Ok(st) => st,
                    Err(e) => return Some(err(e)),
                };
                let f = pmon::cred::Owned::from(&st);
                if let Err(e) = self.may(pid, f, super::open_wants(flags)) {
                    return Some(err(e));
                }
                ino
            }
            Ok(ino) => ino,
            // A name under a tmpfs file, or too long: the tmpfs's to refuse.
            Err(e @ (tmpfs::ENOTDIR | tmpfs::ENAMETOOLONG)) => return Some(err(e)),
            // The host's file opened for writing: copied up first, if the
            // caller may write it.
            Err(_) if flags & O_ACCMODE != O_RDONLY || flags & O_TRUNC != 0 => {
                if let (true, Ok(st)) = (checks, host::stat_path(full, true)) {
                    let f = pmon::cred::Owned::from(&st);
                    if let Err(e) = self.may(pid, f, super::open_wants(flags)) {
                        return Some(err(e));
                    }
                }
                match self.tmp_copy_up(pid, full, flags & O_TRUNC != 0) {
                    Some(Ok(ino)) => ino,
                    Some(Err(e)) => return Some(err(e)),
                    None if flags & O_CREAT != 0 => match self.tmp_create_new(pid, full, mode)? {
                        Ok(ino) => ino,
                        Err(e) => return Some(err(e)),
                    },
                    None => return None,
                }
            }
            Err(_) if flags & O_CREAT != 0 => match self.tmp_create_new(pid, full, mode)? {
                Ok(ino) => ino,
                Err(e) => return Some(err(e)),
            },
            Err(_) => return None,
        };
        if self.tmp.is_socket(ino) {
            // A socket is connected to, not opened.
            return Some(err(ENXIO));
        }
        if self.tmp.is_fifo(ino) {
            if flags & O_DIRECTORY != 0 {
                return Some(err(ENOTDIR));
            }
            return Some(self.fifo_open(pid, SpecialNode::Tmp(ino), full, flags, cloexec));
        }
        let is_dir = self.tmp.is_directory(ino);
        let access = flags & O_ACCMODE;
        // O_TRUNC asks to write, as Linux takes it (and it truncates a
        // file opened read-only).
        if is_dir && (access != O_RDONLY || flags & (O_CREAT | O_TRUNC) != 0) {
            return Some(err(EISDIR));
        }
        if !is_dir && flags & O_DIRECTORY != 0 {
            return Some(err(ENOTDIR));
        }
        if !is_dir && flags & O_TRUNC != 0 {
            if let Err(e) = self.tmp_truncate(ino, 0) {
                return Some(err(e));
            }
        }
        let file = OpenFile::with_path(
            Kind::Tmp(ino),
            flags & (O_ACCMODE | O_NONBLOCK | O_APPEND),
            full.to_vec(),
        );
        Some(self.install_tmp(pid, ino, file, cloexec))
    }

    /// An open of /proc/PID/fd/N that leads to tmpfs file `ino` (`path`
    /// its name): a new open file, with the file's permission bits asked
    /// and O_TRUNC done, as Linux opens the file again.
    pub(super) fn tmp_reopen(
        &mut self,
        pid: Pid,
        ino: Ino,
        path: Vec<u8>,
        flags: u32,
        cloexec: bool,
    ) -> Ret {
        if !self.overrides(pid) {
            let st = match self.tmp.stat(ino) {
                Ok(st) => st,
                Err(e) => return err(e),
            };
            if let Err(e) = self.may(pid, pmon::cred::Owned::from(&st), super::open_wants(flags)) {
                return err(e);
            }
        }
        let is_dir = self.tmp.is_directory(ino);
        if is_dir && (flags & O_ACCMODE != O_RDONLY || flags & (O_CREAT | O_TRUNC) != 0) {
            return err(EISDIR);
        }
        if !is_dir && flags & O_DIRECTORY != 0 {
            return err(ENOTDIR);
        }
        // A descriptor first (EMFILE truncates nothing), as Linux's open.
        if let Err(e) = self.proc_mut(pid).and_then(|p| p.fds.lowest_free(0)) {
            return err(e);
        }
        if !is_dir && flags & O_TRUNC != 0 {
            if let Err(e) = self.tmp_truncate(ino, 0) {
                return err(e);
            }
        }
        let file = OpenFile::with_path(
            Kind::Tmp(ino),
            flags & (O_ACCMODE | O_NONBLOCK | O_APPEND),
            path,
        );
        self.install_tmp(pid, ino, file, cloexec)
    }

    /// O_CREAT's new tmpfs file at `full` (`mode` less the umask), or None
    /// when the name would be the host's (`tmp_new_name`).
    fn tmp_create_new(&mut self, pid: Pid, full: &[u8], mode: u32) -> Option<Result<Ino, Errno>> {
        let rel = self.tmp_new_name(full)?;
        let perm = mode & !self.procs.get(&pid).map_or(0o022, |p| p.umask);
        self.tmp_made_by(pid);
        let now = self.realtime_ns();
        Some(self.tmp.create(rel, perm, true, now).map(|(ino, _)| ino))
    }

    /// A regular file of the host's /tmp showing through (by name, read-only)
    /// that a process opens for writing: copied into the tmpfs first, its
    /// bytes (unless `trunc`) and permission bits, as overlayfs copies a
    /// lower file up, so that /tmp stays writable whatever the host keeps
    /// there; the copy shadows the host's file from then on. None when the
    /// host has no such regular file or the tmpfs has no directory for it.
    fn tmp_copy_up(&mut self, pid: Pid, full: &[u8], trunc: bool) -> Option<Result<Ino, Errno>> {
        let rel = below_tmp(full)?;
        let st = host::stat_path(full, false).ok()?;
        if st.mode & 0o170000 != 0o100000 {
            return None;
        }
        if !self.tmp.has_parent(rel) {
            self.tmp_copy_up_dirs(rel);
            if !self.tmp.has_parent(rel) {
                return None;
            }
        }
        let now = self.realtime_ns();
        self.tmp_made_by(pid);
        let ino = match self.tmp.create(rel, st.mode & 0o7777, true, now) {
            Ok((ino, _)) => ino,
            Err(e) => return Some(Err(e)),
        };
        self.tmp_over_host.insert(ino);
        if trunc || st.size == 0 {
            return Some(Ok(ino));
        }
        let copied = host::open_as(full, lego_proto::program::OPEN_READ).and_then(|(h, _)| {
            let mut buf = alloc::vec![0u8; 64 << 10];
            let mut at = 0u64;
            let result = loop {
                let n = host::read(h, at, &mut buf);
                if n < 0 {
                    break Err(-n);
                }
                if n == 0 {
                    break Ok(());
                }
                if let Err(e) = self.tmp.write(ino, at, &buf[..n as usize], now) {
                    break Err(e);
                }
                at += n as u64;
            };
            host::close(h);
            result
        });
        match copied {
            Ok(()) => Some(Ok(ino)),
            Err(e) => {
                // Nothing half-copied stays: the host's file shows again.
                let _ = self.tmp.unlink(rel, now);
                Some(Err(e))
            }
        }
    }

    /// A descriptor for `file`, open on tmpfs node `ino` (held while a
    /// descriptor leads to it).
    fn install_tmp(&mut self, pid: Pid, ino: Ino, file: Arc<OpenFile>, cloexec: bool) -> Ret {
        self.tmp.hold(ino);
        match self
            .proc_mut(pid)
            .and_then(|pr| pr.fds.install(file, cloexec, 0))
        {
            Ok(fd) => Ret::Val(fd),
            Err(e) => {
                self.tmp.release(ino);
                err(e)
            }
        }
    }

    /// open with O_PATH of tmpfs node `ino` (any kind: a symbolic link
    /// itself, a named pipe or socket unopened): a descriptor naming it.
    pub(super) fn tmp_path_open(
        &mut self,
        pid: Pid,
        ino: Ino,
        full: Vec<u8>,
        flags: u32,
        cloexec: bool,
    ) -> Ret {
        if flags & O_DIRECTORY != 0 && !self.tmp.is_directory(ino) {
            return err(ENOTDIR);
        }
        let file = OpenFile::with_path(Kind::Tmp(ino), O_PATH, full);
        self.install_tmp(pid, ino, file, cloexec)
    }

    /// A tmpfs file's seals: F_SEAL_SEAL (no more) unless it is a memfd
    /// made with MFD_ALLOW_SEALING, as on Linux.
    pub(in crate::kernel) fn seals_of(&self, ino: Ino) -> u32 {
        self.seals.get(&ino).copied().unwrap_or(F_SEAL_SEAL)
    }

    /// fcntl F_ADD_SEALS on tmpfs file `ino` (open for writing if
    /// `writable`), with Linux's errors: EPERM when sealed against seals
    /// or not writable, EINVAL for unknown seals, EBUSY for F_SEAL_WRITE
    /// while a writable shared mapping of it exists.
    pub(in crate::kernel) fn add_seals(
        &mut self,
        ino: Ino,
        writable: bool,
        add: u32,
    ) -> Result<(), Errno> {
        const KNOWN: u32 = F_SEAL_SEAL
            | F_SEAL_SHRINK
            | F_SEAL_GROW
            | F_SEAL_WRITE
            | F_SEAL_FUTURE_WRITE
            | F_SEAL_EXEC;
        if add & !KNOWN != 0 {
            return Err(EINVAL);
        }
        if !writable {
            return Err(EPERM);
        }
        let now = self.seals_of(ino);
        if now & F_SEAL_SEAL != 0 {
            return Err(EPERM);
        }
        if add & F_SEAL_WRITE != 0
            && self
                .shared_maps
                .iter()
                .any(|m| m.file == FileRef::Tmp(ino) && m.writable)
        {
            return Err(EBUSY);
        }
        self.seals.insert(ino, now | add);
        Ok(())
    }

    /// memfd_create: a tmpfs file with no name, open for reading and
    /// writing (made and unlinked at once); its shared mappings are
    /// shared as any tmpfs file's. With MFD_ALLOW_SEALING it takes seals
    /// (F_SEAL_WRITE, SHRINK, GROW and FUTURE_WRITE are enforced on write
    /// and truncate; EXEC is kept); without, it is sealed against them.
    /// MFD_HUGETLB is EINVAL, as on a host without huge pages set aside.
    pub(super) fn sys_memfd_create(&mut self, pid: Pid, name: u64, flags: u64) -> Ret {
        const MFD_CLOEXEC: u64 = 1;
        const MFD_ALLOW_SEALING: u64 = 2;
        const MFD_NOEXEC_SEAL: u64 = 8;
        const MFD_EXEC: u64 = 0x10;
        /// NAME_MAX less "memfd:".
        const MFD_NAME_MAX: usize = 249;
        if flags & !(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL | MFD_EXEC) != 0 {
            return err(EINVAL);
        }
        let name = match self
            .space_mut(pid)
            .and_then(|s| uaccess::read_cstr(s, name, MFD_NAME_MAX + 1))
        {
            Ok(n) if n.len() <= MFD_NAME_MAX => n,
            // Too long, however long: EINVAL, as Linux's strnlen_user check.
            Ok(_) | Err(ENAMETOOLONG) => return err(EINVAL),
            Err(e) => return err(e),
        };
        let now = self.realtime_ns();
        // A name no one has (it goes again before anything can see it).
        let mut made = Err(EEXIST);
        for k in 0..64 {
            let rel = alloc::format!(".lego-memfd-{k}");
            made = self
                .tmp
                .create(rel.as_bytes(), 0o777, true, now)
                .map(|(ino, _)| (ino, rel));
            if made != Err(EEXIST) {
                break;
            }
        }
        let (ino, rel) = match made {
            Ok(v) => v,
            Err(e) => return err(e),
        };
        let mut shown = b"/memfd:".to_vec();
        shown.extend_from_slice(&name);
        shown.extend_from_slice(b" (deleted)");
        let file = OpenFile::with_path(Kind::Tmp(ino), O_RDWR, shown);
        if flags & MFD_ALLOW_SEALING != 0 {
            self.seals.insert(ino, 0);
        }
        self.tmp.hold(ino);
        let _ = self.tmp.unlink(rel.as_bytes(), now);
        match self
            .proc_mut(pid)
            .and_then(|pr| pr.fds.install(file, flags & MFD_CLOEXEC != 0, 0))
        {
            Ok(fd) => Ret::Val(fd),
            Err(e) => {
                self.tmp.release(ino);
                err(e)
            }
        }
    }

    /// struct statfs (15 words) of the tmpfs.
    pub(super) fn tmp_statfs(&self) -> [u64; 15] {
        const TMPFS_MAGIC: u64 = 0x0102_1994;
        const ST_NOSUID: u64 = 2;
        let (cap, used) = (self.tmp.capacity() / 4096, self.tmp.used() / 4096);
        let files = cap.max(1024);
        let mut w = [0u64; 15];
        w[0] = TMPFS_MAGIC;
        w[1] = 4096;
        w[2] = cap;
        w[3] = cap.saturating_sub(used);
        w[4] = cap.saturating_sub(used);
        w[5] = files;
        w[6] = files.saturating_sub(self.tmp.nodes());
        w[8] = 255;
        w[9] = 4096;
        w[10] = ST_NOSUID;
        w
    }

    /// struct stat of a tmpfs node.
    pub(super) fn tmp_stat(&self, ino: Ino) -> Result<[u8; 144], Errno> {
        let st = self.tmp.stat(ino)?;
        // An anonymous device (0:250) the host is unlikely to have
        // mounted, so tools that match /tmp to its mount by device (df)
        // find the tmpfs's line.
        Ok(stat_bytes_ns(
            0xfa,
            &lego_proto::storage::StoreStat {
                ino: st.ino,
                mode: st.mode,
                nlink: st.nlink,
                size: st.size,
                blocks: st.blocks,
                atime: st.atime,
                mtime: st.mtime,
                ctime: st.ctime,
                uid: st.uid,
                gid: st.gid,
            },
        ))
    }

    /// One read of an open tmpfs file at its offset.
    pub(super) fn tmp_read(
        &mut self,
        f: &OpenFile,
        ino: Ino,
        len: usize,
    ) -> Result<Vec<u8>, Errno> {
        let b = self.file_bytes(FileRef::Tmp(ino), f.offset.get(), len.min(1 << 20))?;
        f.offset.set(f.offset.get() + b.len() as u64);
        Ok(b)
    }

    /// One write to an open tmpfs file, at its offset or its end (O_APPEND).
    pub(super) fn tmp_write(
        &mut self,
        f: &OpenFile,
        ino: Ino,
        data: &[u8],
    ) -> Result<usize, Errno> {
        let at = if f.flags.get() & O_APPEND != 0 {
            self.tmp.stat(ino)?.size
        } else {
            f.offset.get()
        };
        let n = self.tmp_write_at(ino, at, data)?;
        f.offset.set(at + n as u64);
        Ok(n)
    }

    /// getdents64 of a tmpfs directory.
    pub(super) fn tmp_getdents(
        &mut self,
        pid: Pid,
        f: &OpenFile,
        ino: Ino,
        buf: u64,
        len: usize,
    ) -> Ret {
        let mut entries = match self.tmp.list(ino, f.offset.get()) {
            Ok(e) => e,
            Err(e) => return err(e),
        };
        // /dev/shm's directory is not one of /tmp's names.
        if ino == tmpfs::ROOT {
            entries.retain(|e| e.name != pmon::path::DEV_SHM_DIR);
        } else if let Some(lower) = self.host_dir_under(ino, &f.path) {
            // A directory copied up over the host's (`tmp_copy_up_dirs`):
            // the host's names it does not have follow its own, each at a
            // place past any of the tmpfs's.
            const HOST_AT: u64 = 1 << 40;
            let from = f.offset.get().saturating_sub(HOST_AT) as usize;
            if f.offset.get() >= HOST_AT {
                entries.clear();
            }
            let own = self.tmp.list(ino, 0).unwrap_or_default();
            let extra = lower
                .into_iter()
                .filter(|(_, name, _)| name != b"." && name != b"..")
                .filter(|(_, name, _)| !own.iter().any(|e| &e.name == name))
                // Not one a program removed (`tmp_remove_host`).
                .filter(|(_, name, _)| {
                    let mut p = f.path.clone();
                    p.push(b'/');
                    p.extend_from_slice(name);
                    !host::removed(&p)
                });
            for (j, d) in extra.enumerate().skip(from) {
                entries.push(tmpfs::Entry::of_host(d, HOST_AT + j as u64 + 1));
            }
        }
        self.put_dirents(pid, f, &entries, buf, len)
    }

    /// The entries of the host's directory at `path` when tmpfs directory
    /// `ino` lies over it (a directory of the host's /tmp copied up, and
    /// still at its name); None for the tmpfs's own directories, which ask
    /// the host nothing.
    fn host_dir_under(&self, ino: Ino, path: &[u8]) -> Option<Vec<tmpfs::Dirent>> {
        if !self.tmp_over_host.contains(&ino) || below_tmp(path).is_none_or(|r| r.is_empty()) {
            return None;
        }
        host_listing(path)
    }

    /// getdents64's answer from `entries` (those from the directory's
    /// offset on): as many as fit in `len` bytes at `buf`, the offset moved
    /// past them; EINVAL when not even the first fits.
    pub(super) fn put_dirents(
        &mut self,
        pid: Pid,
        f: &OpenFile,
        entries: &[tmpfs::Entry],
        buf: u64,
        len: usize,
    ) -> Ret {
        let bytes = tmpfs::dirents(entries, len);
        if bytes.is_empty() && !entries.is_empty() {
            return err(EINVAL);
        }
        let consumed = entries
            .iter()
            .scan(0usize, |at, e| {
                *at += (19 + e.name.len() + 1).next_multiple_of(8);
                Some((*at, e.next))
            })
            .take_while(|&(at, _)| at <= bytes.len())
            .last();
        if let Err(e) = self
            .space_mut(pid)
            .and_then(|s| uaccess::write(s, buf, &bytes))
        {
            return err(e);
        }
        if let Some((_, next)) = consumed {
            f.offset.set(next);
        }
        Ret::Val(bytes.len() as i64)
    }

    pub(super) fn sys_mkdirat(&mut self, pid: Pid, dirfd: i64, path: u64, mode: u64) -> Ret {
        if let Err(e) = self.check_last_name(pid, dirfd, path, NameUse::MakeDir) {
            return err(e);
        }
        match self.path_arg(pid, dirfd, path) {
            Ok(full) => self.mkdir_at(pid, full, mode),
            Err(e) => err(e),
        }
    }

    /// mkdir of `full` (resolved).
    fn mkdir_at(&mut self, pid: Pid, full: Vec<u8>, mode: u64) -> Ret {
        if self.on_storage(&full) {
            let made = self.store_mkdir(pid, &full, mode as u32);
            return self.or_off_storage(pid, &full, made, |k, full| k.mkdir_at(pid, full, mode));
        }
        if self.tmp_node(&full).is_some() || host::stat_path(&full, false).is_ok() {
            return err(EEXIST);
        }
        let Some(rel) = self.tmp_new_name(&full) else {
            return err(self.cannot_make(&full));
        };
        let perm = mode as u32 & !self.procs.get(&pid).map_or(0o022, |p| p.umask);
        let now = self.realtime_ns();
        self.tmp_made_by(pid);
        val(self.tmp.mkdir(rel, perm, now).map(|_| 0))
    }

    pub(super) fn sys_unlinkat(&mut self, pid: Pid, dirfd: i64, path: u64, flags: u64) -> Ret {
        if flags & !AT_REMOVEDIR != 0 {
            return err(EINVAL);
        }
        let how = if flags & AT_REMOVEDIR != 0 {
            NameUse::Rmdir
        } else {
            NameUse::Unlink
        };
        if let Err(e) = self.check_last_name(pid, dirfd, path, how) {
            return err(e);
        }
        match self.path_arg(pid, dirfd, path) {
            Ok(full) => self.unlink_at(pid, full, flags),
            Err(e) => err(e),
        }
    }

    /// unlink or rmdir (`flags`' AT_REMOVEDIR) of `full` (resolved).
    fn unlink_at(&mut self, pid: Pid, full: Vec<u8>, flags: u64) -> Ret {
        let how = if flags & AT_REMOVEDIR != 0 {
            NameUse::Rmdir
        } else {
            NameUse::Unlink
        };
        // A socket's name outside /tmp, which stands for its file.
        if how == NameUse::Unlink
            && below_tmp(&full).is_none()
            && self
                .unix
                .has_path(&pmon::unixsock::Name::Path(full.clone()))
            && !self.file_exists(&full)
        {
            self.unix.unlink_path(&pmon::unixsock::Name::Path(full));
            return Ret::Val(0);
        }
        let rmdir = how == NameUse::Rmdir;
        if self.on_storage(&full) {
            let removed = self.store_unlink(&full, rmdir);
            if rmdir && matches!(removed, Ret::Val(0)) {
                let vnode = self.procs.get(&pid).map(|p| p.vnode);
                self.cwd_removed(&full, vnode);
            }
            return self
                .or_off_storage(pid, &full, removed, |k, full| k.unlink_at(pid, full, flags));
        }
        let now = self.realtime_ns();
        let removed = match below_tmp(&full) {
            // /dev/shm itself, as a mount point.
            Some(rel) if rel == pmon::path::DEV_SHM_DIR => err(EBUSY),
            Some(rel) if self.tmp.lookup(rel).is_ok() => {
                let ino = self.tmp.lookup(rel).ok();
                let over_host = ino.is_some_and(|i| self.tmp_over_host.contains(&i));
                let removed = if rmdir {
                    if over_host && self.host_names_left(&full) {
                        return err(tmpfs::ENOTEMPTY);
                    }
                    self.tmp.rmdir(rel, now).map(|_| {
                        if let Some(ino) = ino {
                            self.tmp_over_host.remove(&ino);
                        }
                    })
                } else {
                    self.tmp.unlink(rel, now)
                };
                // A copy of the host's file (or directory) goes with the
                // host's name under it (a hard link of a copy may stand at
                // a name the host has not).
                if removed.is_ok() && over_host && host::stat_path(&full, false).is_ok() {
                    host::remove(&full);
                }
                val(removed.map(|_| 0))
            }
            Some(rel) => match host::stat_path(&full, false) {
                Ok(st) => self.tmp_remove_host(&full, rel, st.mode, rmdir),
                Err(e) => err(e),
            },
            None => match host::stat_path(&full, false) {
                Ok(_) => err(EROFS),
                Err(e) => err(e),
            },
        };
        if rmdir && matches!(removed, Ret::Val(0)) {
            self.cwd_removed(&full, None);
        }
        removed
    }

    /// unlink or rmdir (`dir`) of a name of the host's /tmp showing through
    /// (`full`, `rel` under /tmp; its stat's `mode`): the name is hidden
    /// from then on, as overlayfs's whiteout hides a lower file, and the
    /// host's file is never touched; the directories leading to it are
    /// copied up, so that listings come from the tmpfs and leave it out.
    /// It was EROFS: a program could not remove a stale lock or socket
    /// file of a host program's (tmux's server socket, PostgreSQL's lock)
    /// nor anything it found in /tmp.
    fn tmp_remove_host(&mut self, full: &[u8], rel: &[u8], mode: u32, dir: bool) -> Ret {
        let is_dir = mode & 0o170000 == 0o040000;
        match (dir, is_dir) {
            (true, false) => return err(ENOTDIR),
            (false, true) => return err(EISDIR),
            (true, true) if self.host_names_left(full) => return err(tmpfs::ENOTEMPTY),
            _ => {}
        }
        self.tmp_copy_up_dirs(rel);
        host::remove(full);
        Ret::Val(0)
    }

    /// Whether the host's directory `full` has a name that is not hidden.
    fn host_names_left(&self, full: &[u8]) -> bool {
        let Ok((h, st)) = host::open_as(full, lego_proto::program::OPEN_READ) else {
            return false;
        };
        let mut left = false;
        let mut at = 0;
        while st.mode & 0o170000 == 0o040000 && !left {
            let Ok((bytes, next)) = host::readdir(h, at, 1 << 16) else {
                break;
            };
            if bytes.is_empty() || next == at {
                break;
            }
            left = tmpfs::parse_dirents(&bytes).iter().any(|(_, name, _)| {
                let mut p = full.to_vec();
                p.push(b'/');
                p.extend_from_slice(name);
                name != b"." && name != b".." && !host::removed(&p)
            });
            at = next;
        }
        host::close(h);
        left
    }

    pub(super) fn sys_renameat(
        &mut self,
        pid: Pid,
        (olddir, old): (i64, u64),
        (newdir, new): (i64, u64),
        flags: u64,
    ) -> Ret {
        // RENAME_WHITEOUT is an overlay file system's; EXCHANGE excludes
        // NOREPLACE.
        if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0
            || flags & (RENAME_NOREPLACE | RENAME_EXCHANGE) == RENAME_NOREPLACE | RENAME_EXCHANGE
        {
            return err(EINVAL);
        }
        if let Err(e) = self.rename_names(pid, (olddir, old), new) {
            return err(e);
        }
        match self.path_pair(pid, (olddir, old), (newdir, new)) {
            Ok((from, to)) => self.rename_at(pid, from, to, flags),
            Err(e) => err(e),
        }
    }

    /// Whether a process (of `vnode`, for a storage name) whose working
    /// directory is not removed is in `full`.
    fn a_cwd_is(&self, full: &[u8], vnode: Option<u32>) -> bool {
        let full = pmon::path::dev_shm_shown(full.to_vec());
        self.procs
            .values()
            .any(|p| p.cwd == full && !p.cwd_gone && vnode.is_none_or(|v| v == p.vnode))
    }

    /// rename of `from` to `to` (both resolved), `flags` checked.
    fn rename_at(&mut self, pid: Pid, from: Vec<u8>, to: Vec<u8>, flags: u64) -> Ret {
        let exchange = flags & RENAME_EXCHANGE != 0;
        // The old name goes from its directory, the new one is made in (or
        // replaces a name of) its own.
        if !self.overrides(pid) {
            let checked = self.may_change_name(pid, &from, true).and_then(|()| {
                let replaced = self.owner_of_name(&to);
                self.may_change_in(pid, &to, replaced)
            });
            if let Err(e) = checked {
                return err(e);
            }
        }
        match (self.on_storage(&from), self.on_storage(&to)) {
            // Decided: storage does not exchange (its rename is one
            // request that replaces; an exchange would need a new one).
            (true, true) if exchange => return err(EINVAL),
            (true, true) => {
                let noreplace = flags & RENAME_NOREPLACE != 0;
                let vnode = self.procs.get(&pid).map(|p| p.vnode);
                // Asked only where a process is in `to`: whether another
                // directory is there, which the rename removes (through
                // storage's links `from` may name the same one).
                let replaced = self.a_cwd_is(&to, vnode) && store_replaces_dir(&from, &to);
                let r = self.store_rename(&from, &to, noreplace);
                if matches!(r, Ret::Val(0)) {
                    self.follow_renamed(&from, &to, vnode, Renamed::Moved { replaced });
                }
                if !matches!(r, Ret::Val(v) if v == -ENOENT)
                    || !super::super::store::enoent_past_link()
                {
                    return r;
                }
                // A link of storage on either path led off it (a directory
                // linked into /tmp): the rename goes on where they lead,
                // within the tmpfs, or EXDEV across (`mv` then copies).
                let from_led = self.storage_leads_off(pid, &from, false);
                let to_led = self.storage_leads_off(pid, &to, false);
                let again = |k: &mut Self, from, to| k.rename_at(pid, from, to, flags);
                return self
                    .again_where_led(pid, (from, from_led), (to, to_led), again)
                    .unwrap_or(r);
            }
            (true, false) | (false, true) => return err(EXDEV),
            (false, false) => {}
        }
        let now = self.realtime_ns();
        let (Some(rf), Some(rt)) = (below_tmp(&from), below_tmp(&to)) else {
            return self.host_rename_error(&from, &to);
        };
        // A file of the host's /tmp moves as a copy, its name hidden after
        // (`tmp_remove_host`); other host names are EXDEV, so that `mv`
        // copies them and removes the originals (EROFS before). A copy in
        // the tmpfs hides the host's name it stood over when it moves.
        let host_from = if let Ok(ino) = self.tmp.lookup(rf) {
            // A directory copied up over the host's still lists host names
            // that cannot move with it: EXDEV, as overlayfs answers
            // without redirect_dir. A copy's host name is hidden after.
            let over_host = self.tmp_over_host.contains(&ino);
            if over_host && self.tmp.is_directory(ino) && self.host_names_left(&from) {
                return err(EXDEV);
            }
            over_host && host::stat_path(&from, false).is_ok()
        } else {
            match host::stat_path(&from, false) {
                Ok(st) if st.mode & 0o170000 == 0o100000 && !exchange => {
                    match self.tmp_copy_up(pid, &from, false) {
                        Some(Ok(_)) => true,
                        Some(Err(e)) => return err(e),
                        None => return self.host_rename_error(&from, &to),
                    }
                }
                Ok(_) => return err(EXDEV),
                Err(e) => return err(e),
            }
        };
        if rf == pmon::path::DEV_SHM_DIR || rt == pmon::path::DEV_SHM_DIR {
            return err(EBUSY);
        }
        if in_dev_shm(rf) != in_dev_shm(rt) {
            return err(EXDEV);
        }
        let target = self.tmp.lookup(rt).is_ok();
        if exchange {
            if !target {
                // A host file cannot move.
                return if host::stat_path(&to, false).is_ok() {
                    err(EXDEV)
                } else {
                    err(ENOENT)
                };
            }
            let exchanged = self.tmp.exchange(rf, rt, now);
            if exchanged.is_ok() {
                self.follow_renamed(&from, &to, None, Renamed::Exchanged);
            }
            return val(exchanged.map(|_| 0));
        }
        if !target && !self.tmp.has_parent(rt) {
            // Into a directory of the host's /tmp: copied up first.
            self.tmp_copy_up_dirs(rt);
            if !self.tmp.has_parent(rt) {
                // As Linux: a missing directory is ENOENT and a file in
                // the way ENOTDIR (zig's cache makes the directory and
                // tries again only on ENOENT).
                return match self.cannot_make(&to) {
                    EROFS => err(EXDEV),
                    e => err(e),
                };
            }
        }
        if flags & RENAME_NOREPLACE != 0 && (target || host::stat_path(&to, false).is_ok()) {
            return err(EEXIST);
        }
        let ino = self.tmp.lookup(rf).ok();
        let replaced = self.a_cwd_is(&to, None)
            && matches!((ino, self.tmp.lookup(rt)), (Some(f), Ok(t)) if f != t && self.tmp.is_directory(t));
        let moved = self.tmp.rename(rf, rt, now);
        if moved.is_ok() {
            if host_from {
                host::remove(&from);
            }
            // Moved, it stands over no host directory (at its new name it
            // is opaque, as overlayfs makes a directory renamed over one).
            if let Some(ino) = ino {
                self.tmp_over_host.remove(&ino);
            }
            self.follow_renamed(&from, &to, None, Renamed::Moved { replaced });
        }
        val(moved.map(|_| 0))
    }

    /// A directory renamed from `from` to `to`: working directories and
    /// roots in it or below follow it, as Linux's (which hold the
    /// directory, not its name), so a process whose directory was renamed
    /// still reaches its names (LTP's inotify02 renames its own). A
    /// storage rename moves only `vnode`'s (each vNode has its files).
    ///
    /// A directory the rename replaced (an empty one at `to`) is gone: a
    /// process whose working directory it was keeps it removed
    /// ([`Self::cwd_removed`]), and a removed one keeps its name. An
    /// exchange moves those in `to` to `from` as well.
    fn follow_renamed(&mut self, from: &[u8], to: &[u8], vnode: Option<u32>, how: Renamed) {
        let from = pmon::path::dev_shm_shown(from.to_vec());
        let to = pmon::path::dev_shm_shown(to.to_vec());
        let exchange = matches!(how, Renamed::Exchanged);
        if matches!(how, Renamed::Moved { replaced: true }) {
            self.cwd_removed(&to, vnode);
        }
        let below = |path: &[u8], dir: &[u8]| match path.strip_prefix(dir) {
            Some(rest) if rest.is_empty() || rest.starts_with(b"/") => Some(rest.to_vec()),
            _ => None,
        };
        let moved = |path: &mut Vec<u8>| {
            if let Some(rest) = below(path, &from) {
                *path = [&to[..], &rest].concat();
            } else if let Some(rest) = below(path, &to).filter(|_| exchange) {
                *path = [&from[..], &rest].concat();
            }
        };
        for p in self
            .procs
            .values_mut()
            .filter(|p| vnode.is_none_or(|v| v == p.vnode))
        {
            if !p.cwd_gone {
                moved(&mut p.cwd);
            }
            if p.root != b"/" {
                moved(&mut p.root);
            }
        }
    }

    /// The directory `full` was removed (rmdir, or a rename over it): a
    /// process whose working directory it was is in a removed directory,
    /// as Linux's dead one: getcwd is ENOENT, /proc/self/cwd reads
    /// "PATH (deleted)", and names relative to it are not found, even once
    /// a new directory is made at its name (the name is all a working
    /// directory here holds). A storage directory is only `vnode`'s.
    pub(super) fn cwd_removed(&mut self, full: &[u8], vnode: Option<u32>) {
        let full = pmon::path::dev_shm_shown(full.to_vec());
        for p in self.procs.values_mut() {
            if p.cwd == full && vnode.is_none_or(|v| v == p.vnode) {
                p.cwd_gone = true;
            }
        }
    }

    /// Linux's checks of rename's names as written, whatever the file
    /// system: `.` or `..` last is EBUSY, a name longer than NAME_MAX is
    /// ENAMETOOLONG, and a trailing slash on either needs the source to be
    /// a directory (ENOTDIR: `mv file dir/` with no such directory must
    /// not make a file named `dir`).
    fn rename_names(&mut self, pid: Pid, (olddir, old): (i64, u64), new: u64) -> Result<(), Errno> {
        const NAME_MAX: usize = 255;
        let mut slash = false;
        for p in [old, new] {
            let raw = uaccess::read_cstr(self.space_mut(pid)?, p, pmon::path::PATH_MAX - 1)?;
            let last = pmon::path::split_last(&raw);
            if last.dotted() {
                return Err(EBUSY);
            }
            if last.name.len() > NAME_MAX {
                return Err(ENAMETOOLONG);
            }
            slash |= last.slash;
        }
        if slash {
            // The source itself (a link is not followed), which must be a
            // directory; its stat says ENOENT or ENOTDIR first.
            let st = self.stat_path(pid, olddir, old, AT_SYMLINK_NOFOLLOW)?;
            if !super::stat_is_dir(&st) {
                return Err(ENOTDIR);
            }
        }
        Ok(())
    }

    /// Linux's checks of the last name a call makes or removes, as the
    /// program wrote it: the absolute path has lost its `.`, `..` and
    /// trailing slash, and without them rmdir("d/.") removed `d` and
    /// link("f", "g/") made `g`. As Linux, the directory the name is in
    /// answers first (rmdir("gone/.") is ENOENT).
    pub(super) fn check_last_name(
        &mut self,
        pid: Pid,
        dirfd: i64,
        ptr: u64,
        how: NameUse,
    ) -> Result<(), Errno> {
        let raw = uaccess::read_cstr(self.space_mut(pid)?, ptr, pmon::path::PATH_MAX - 1)?;
        if raw.is_empty() {
            return Err(ENOENT);
        }
        let last = pmon::path::split_last(&raw);
        if last.dotted() {
            if !last.dir.is_empty()
                && !super::stat_is_dir(&self.stat_path_of(pid, dirfd, last.dir, true)?)
            {
                return Err(ENOTDIR);
            }
            return Err(match how {
                NameUse::Rmdir if last.name == b"." => EINVAL,
                NameUse::Rmdir => tmpfs::ENOTEMPTY,
                NameUse::Unlink => EISDIR,
                NameUse::MakeDir | NameUse::MakeOther => EEXIST,
            });
        }
        // "name/" names a directory: unlink refuses it either way (a
        // symbolic link is not followed: ENOTDIR), and only mkdir makes
        // one.
        if last.slash && matches!(how, NameUse::Unlink | NameUse::MakeOther) {
            let st = self.stat_path_of(pid, dirfd, last.bare, false)?;
            return Err(match how {
                NameUse::Unlink if super::stat_is_dir(&st) => EISDIR,
                NameUse::Unlink => ENOTDIR,
                _ => EEXIST,
            });
        }
        if !self.overrides(pid) {
            let full = self.path_arg(pid, dirfd, ptr)?;
            let removes = matches!(how, NameUse::Rmdir | NameUse::Unlink);
            self.may_change_name(pid, &full, removes)?;
        }
        Ok(())
    }

    /// The owner, group and mode of the tmpfs's or storage's file at
    /// `full` (a link itself); None where neither has one.
    pub(super) fn owner_of_name(&self, full: &[u8]) -> Option<pmon::cred::Owned> {
        if let Some(ino) = self.tmp_node(full) {
            return self
                .tmp
                .stat(ino)
                .ok()
                .map(|st| pmon::cred::Owned::from(&st));
        }
        if self.on_storage_to_look(full) {
            return super::super::store::stat(full, false)
                .ok()
                .map(|st| pmon::cred::Owned::from(&st));
        }
        None
    }

    /// Whether a process without CAP_DAC_OVERRIDE may make (`removes`
    /// false) or remove the name `full` (absolute), as Linux's
    /// `may_create` and `may_delete`: write and search permission on its
    /// directory, and in a sticky directory (/tmp) a name only its file's
    /// owner or the directory's (or CAP_FOWNER) removes (EPERM). A name
    /// that is there (to make) or not (to remove) passes: the call's own
    /// EEXIST or ENOENT answers. The host's directories are read-only
    /// either way (EROFS), so only the tmpfs's and storage's are asked.
    pub(super) fn may_change_name(
        &mut self,
        pid: Pid,
        full: &[u8],
        removes: bool,
    ) -> Result<(), Errno> {
        let file = self.owner_of_name(full);
        if file.is_some() != removes {
            return Ok(());
        }
        self.may_change_in(pid, full, file)
    }

    /// [`Self::may_change_name`]'s look at the directory of `full`, whose
    /// file (`file`, what [`Self::owner_of_name`] found) a caller already
    /// knows: None for a name to make, the file for one removed or
    /// replaced.
    pub(super) fn may_change_in(
        &self,
        pid: Pid,
        full: &[u8],
        file: Option<pmon::cred::Owned>,
    ) -> Result<(), Errno> {
        let Some(dir) = pmon::path::parent(full) else {
            return Ok(());
        };
        let Some(d) = self.owner_of_name(dir) else {
            return Ok(());
        };
        use pmon::cred::{MAY_EXEC, MAY_WRITE};
        self.may(pid, d, MAY_WRITE | MAY_EXEC)?;
        match (file, self.procs.get(&pid)) {
            (Some(f), Some(p))
                if d.mode & 0o1000 != 0
                    && p.cred.uid.fs != f.uid
                    && p.cred.uid.fs != d.uid
                    && !p.cred.capable(pmon::caps::FOWNER) =>
            {
                Err(EPERM)
            }
            _ => Ok(()),
        }
    }

    /// link's checks of its names as given: "old/" must be a directory
    /// (which cannot be linked: EPERM), then the new name as any name
    /// made.
    fn link_names(
        &mut self,
        pid: Pid,
        (olddir, old): (i64, u64),
        (newdir, new): (i64, u64),
    ) -> Result<(), Errno> {
        let raw = uaccess::read_cstr(self.space_mut(pid)?, old, pmon::path::PATH_MAX - 1)?;
        if super::ends_in_slash(&raw) {
            let st = self.stat_path_of(pid, olddir, &raw, true)?;
            return Err(if super::stat_is_dir(&st) {
                EPERM
            } else {
                ENOTDIR
            });
        }
        self.check_last_name(pid, newdir, new, NameUse::MakeOther)
    }

    /// The two path arguments of rename and link, made absolute.
    fn path_pair(
        &mut self,
        pid: Pid,
        (olddir, old): (i64, u64),
        (newdir, new): (i64, u64),
    ) -> Result<(Vec<u8>, Vec<u8>), Errno> {
        let from = self.path_arg(pid, olddir, old)?;
        Ok((from, self.path_arg(pid, newdir, new)?))
    }

    /// A call on two paths (rename, link) done again where storage's links
    /// on them lead off it (`*_led`, from [`Self::storage_leads_off`]; a
    /// path that led nowhere stays as it is). Err gives the paths back
    /// when neither led anywhere.
    fn again_where_led(
        &mut self,
        pid: Pid,
        (from, from_led): (Vec<u8>, Option<Vec<u8>>),
        (to, to_led): (Vec<u8>, Option<Vec<u8>>),
        call: impl FnOnce(&mut Self, Vec<u8>, Vec<u8>) -> Ret,
    ) -> Result<Ret, (Vec<u8>, Vec<u8>)> {
        if from_led.is_none() && to_led.is_none() {
            return Err((from, to));
        }
        let again = |k: &mut Self, _: &[u8]| {
            let from = match from_led {
                Some(p) => k.resolve(pid, AT_FDCWD, &p)?,
                None => from,
            };
            let to = match to_led {
                Some(p) => k.resolve(pid, AT_FDCWD, &p)?,
                None => to,
            };
            Ok(call(k, from, to))
        };
        Ok(self.leaving_storage(&[], again).unwrap_or_else(err))
    }

    /// symlink: a link on storage or in the tmpfs; elsewhere as
    /// [`Self::no_links`].
    pub(super) fn sys_symlinkat(&mut self, pid: Pid, target: u64, dirfd: i64, new: u64) -> Ret {
        let target = match self
            .space_mut(pid)
            .and_then(|s| uaccess::read_cstr(s, target, pmon::path::PATH_MAX - 1))
        {
            Ok(t) if t.is_empty() => return err(ENOENT),
            Ok(t) => t,
            Err(e) => return err(e),
        };
        if let Err(e) = self.check_last_name(pid, dirfd, new, NameUse::MakeOther) {
            return err(e);
        }
        match self.path_arg(pid, dirfd, new) {
            Ok(full) => self.symlink_at(pid, &target, full),
            Err(e) => err(e),
        }
    }

    /// A symbolic link to `target` at `full` (resolved).
    fn symlink_at(&mut self, pid: Pid, target: &[u8], full: Vec<u8>) -> Ret {
        if self.on_storage(&full) {
            let made = self.store_symlink(target, &full);
            let again = |k: &mut Self, full| k.symlink_at(pid, target, full);
            return self.or_off_storage(pid, &full, made, again);
        }
        if self.tmp_node(&full).is_none() {
            if let Some(rel) = self.tmp_new_name(&full) {
                let now = self.realtime_ns();
                self.tmp_made_by(pid);
                return val(self.tmp.symlink(rel, target, now).map(|_| 0));
            }
        }
        self.no_links(&full)
    }

    /// `full` (absolute) with the tmpfs's symbolic links in it followed:
    /// every directory on the way, and the last name too if `follow_last`.
    /// A link's target is taken from the link's directory and may lead
    /// anywhere (storage, the host's files, /dev/shm). ELOOP after 40, as
    /// Linux.
    pub(in crate::kernel) fn tmp_links(
        &self,
        full: Vec<u8>,
        follow_last: bool,
    ) -> Result<Vec<u8>, Errno> {
        const ELOOP: Errno = 40;
        let mut full = full;
        'again: for _ in 0..40 {
            let Some(rel) = below_tmp(&full) else {
                return Ok(full);
            };
            let names: Vec<&[u8]> = rel
                .split(|&c| c == b'/')
                .filter(|c| !c.is_empty())
                .collect();
            let mut prefix: Vec<u8> = Vec::new();
            for (i, name) in names.iter().enumerate() {
                let dir_len = prefix.len();
                if !prefix.is_empty() {
                    prefix.push(b'/');
                }
                prefix.extend_from_slice(name);
                let ino = match self.tmp.lookup(&prefix) {
                    Ok(ino) => ino,
                    // A name too long where the walk reaches it.
                    Err(tmpfs::ENAMETOOLONG) => return Err(ENAMETOOLONG),
                    Err(_) => return Ok(full),
                };
                let last = i + 1 == names.len();
                let link = self.tmp.is_symlink(ino);
                // A name under a file of the tmpfs: ENOTDIR, whatever
                // the host's /tmp below it has.
                if !link && !last && !self.tmp.is_directory(ino) {
                    return Err(ENOTDIR);
                }
                if !link || (last && !follow_last) {
                    continue;
                }
                let Ok(target) = self.tmp.readlink(ino) else {
                    return Ok(full);
                };
                let mut dir = b"/tmp/".to_vec();
                dir.extend_from_slice(&prefix[..dir_len]);
                let mut next = pmon::path::resolve(&dir, target);
                for rest in &names[i + 1..] {
                    next.push(b'/');
                    next.extend_from_slice(rest);
                }
                full = pmon::path::dev_shm_alias(pmon::path::resolve(b"/", &next));
                continue 'again;
            }
            return Ok(full);
        }
        Err(ELOOP)
    }

    /// link and linkat: a hard link on storage or in the tmpfs (both names
    /// there; EXDEV between storage and the tmpfs or the host's files, as
    /// between two Linux file systems); elsewhere as [`Self::no_links`]. AT_EMPTY_PATH
    /// with an empty path gets ENOENT, as Linux gives a process without
    /// CAP_DAC_READ_SEARCH: linking an open descriptor is not supported.
    pub(super) fn sys_linkat(
        &mut self,
        pid: Pid,
        (olddir, old): (i64, u64),
        (newdir, new): (i64, u64),
        flags: u64,
    ) -> Ret {
        const AT_SYMLINK_FOLLOW: u64 = 0x400;
        if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
            return err(EINVAL);
        }
        // (AT_SYMLINK_FOLLOW follows the old name's link: a dangling one
        // is ENOENT.)
        let follow_flag = match flags & AT_SYMLINK_FOLLOW {
            0 => AT_SYMLINK_NOFOLLOW,
            _ => 0,
        };
        // Linux looks the old name up first (rename looks up both
        // directories first): a missing one is ENOENT before anything wrong
        // with the new name's directory (ENOTDIR below a file).
        let checked = self
            .link_names(pid, (olddir, old), (newdir, new))
            .and_then(|()| self.path_pair(pid, (olddir, old), (newdir, new)));
        match checked {
            Ok((from, to)) => self.hard_link_at(pid, from, to, flags),
            Err(e) => match self.stat_path(pid, olddir, old, follow_flag) {
                Err(old) => err(old),
                Ok(_) => err(e),
            },
        }
    }

    /// link of `from` as `to` (both resolved), `flags` checked.
    fn hard_link_at(&mut self, pid: Pid, from: Vec<u8>, to: Vec<u8>, flags: u64) -> Ret {
        const AT_SYMLINK_FOLLOW: u64 = 0x400;
        let follow = flags & AT_SYMLINK_FOLLOW != 0;
        let exists = |k: &Kernel, p: &[u8]| {
            if k.on_storage(p) {
                super::super::store::stat(p, false).is_ok()
            } else {
                k.tmp_node(p).is_some() || host::stat_path(p, false).is_ok()
            }
        };
        let again = |k: &mut Self, from, to| k.hard_link_at(pid, from, to, flags);
        match (self.on_storage(&from), self.on_storage(&to)) {
            (true, true) => {
                let r = self.store_link(&from, &to, follow);
                if !matches!(r, Ret::Val(v) if v == -ENOENT)
                    || !super::super::store::enoent_past_link()
                {
                    return r;
                }
                let from_led = self.storage_leads_off(pid, &from, follow);
                let to_led = self.storage_leads_off(pid, &to, false);
                self.again_where_led(pid, (from, from_led), (to, to_led), again)
                    .unwrap_or(r)
            }
            (true, false) | (false, true) => {
                // A path on storage whose links lead off it (a directory
                // linked into /tmp) names the file where they lead.
                let led = |k: &mut Self, p: &[u8], follow: bool| {
                    if k.on_storage(p) && !exists(k, p) {
                        k.storage_leads_to(pid, p, follow)
                    } else {
                        None
                    }
                };
                let from_led = led(self, &from, follow);
                let to_led = led(self, &to, false);
                let (from, to) =
                    match self.again_where_led(pid, (from, from_led), (to, to_led), again) {
                        Ok(r) => return r,
                        Err((from, to)) => (from, to),
                    };
                // As Linux: the old name must exist and the new one not,
                // then the two file systems differ.
                if !exists(self, &from) {
                    err(ENOENT)
                } else if exists(self, &to) {
                    err(EEXIST)
                } else {
                    err(EXDEV)
                }
            }
            (false, false) => {
                // AT_SYMLINK_FOLLOW links what a symbolic link names;
                // without it, the link itself.
                let from = match self.tmp_links(from, follow) {
                    Ok(p) => p,
                    Err(e) => return err(e),
                };
                // Within the tmpfs: another name of the file (glibc's
                // sem_open links its new semaphore into /dev/shm).
                if let (Some(_), Some(rel_from), Some(rel_to)) = (
                    self.tmp_node(&from),
                    below_tmp(&from),
                    self.tmp_new_name(&to),
                ) {
                    if in_dev_shm(rel_from) != in_dev_shm(rel_to) {
                        return err(EXDEV);
                    }
                    let now = self.realtime_ns();
                    return val(self.tmp.link(rel_from, rel_to, now).map(|_| 0));
                }
                if self.tmp_node(&from).is_none() && host::stat_path(&from, false).is_err() {
                    return err(ENOENT);
                }
                self.no_links(&to)
            }
        }
    }

    /// link and symlink where no link can be made: a name that exists is
    /// EEXIST; a new name in the tmpfs for one of the host's files is
    /// EXDEV (another file system); the host's directories are read-only.
    pub(super) fn no_links(&self, full: &[u8]) -> Ret {
        if self.tmp_node(full).is_some() || host::stat_path(full, false).is_ok() {
            return err(EEXIST);
        }
        if self.tmp_would_take(full) {
            err(EXDEV)
        } else {
            err(self.cannot_make(full))
        }
    }

    /// Why a new name `full` that the tmpfs does not take cannot be made:
    /// it is too long (ENAMETOOLONG), its directory is missing (ENOENT) or
    /// not one (ENOTDIR), or it is the host's (EROFS).
    pub(super) fn cannot_make(&self, full: &[u8]) -> Errno {
        // NAME_MAX, as Linux checks it before looking anything up.
        if pmon::path::last(full).len() > 255 {
            return ENAMETOOLONG;
        }
        let Some(parent) = pmon::path::parent(full) else {
            return ENOENT;
        };
        if let Some(ino) = self.tmp_node(parent) {
            return if self.tmp.is_directory(ino) {
                EROFS
            } else {
                ENOTDIR
            };
        }
        match host::stat_path(parent, true) {
            Ok(st) if st.mode & 0o170000 == 0o040000 => EROFS,
            Ok(_) => ENOTDIR,
            Err(e) => e,
        }
    }

    /// rename where a name is the host's: it cannot change. A source that
    /// is nowhere is ENOENT first, as Linux looks it up before anything.
    fn host_rename_error(&self, from: &[u8], to: &[u8]) -> Ret {
        if self.tmp_node(from).is_none() {
            if let Err(e) = host::stat_path(from, false) {
                return err(e);
            }
        }
        if self.tmp_node(from).is_some() || self.tmp_node(to).is_some() {
            return err(EXDEV);
        }
        match host::stat_path(from, false) {
            Ok(_) => err(EROFS),
            Err(e) => err(e),
        }
    }

    /// The tmpfs node a path or a descriptor names for a call that changes
    /// it (truncate, chmod, utimensat): Err(EROFS) for the host's files.
    fn tmp_target(&mut self, pid: Pid, named: &Named) -> Result<Ino, Errno> {
        self.tmp_target_at(pid, named, true)
    }

    /// [`Self::tmp_target`], naming a symbolic link itself unless `follow`.
    fn tmp_target_at(&mut self, pid: Pid, named: &Named, follow: bool) -> Result<Ino, Errno> {
        let full = match named {
            Named::Fd(fd) => {
                let f = self.file(pid, *fd)?;
                return match f.kind {
                    Kind::Tmp(ino) => Ok(ino),
                    Kind::Host(_) | Kind::HostDir(_) | Kind::Generated => Err(EROFS),
                    _ => Err(EINVAL),
                };
            }
            Named::Path(full) => full.clone(),
        };
        let full = self.tmp_links(full, follow)?;
        match self.tmp_node(&full) {
            Some(ino) => Ok(ino),
            None => host::stat_path(&full, follow).and(Err(EROFS)),
        }
    }

    /// The storage file a path or a descriptor names for a call that
    /// changes it: its full path, or its inode when named by descriptor.
    /// None when it is not on storage.
    fn store_target(&mut self, pid: Pid, named: &Named) -> Option<Result<(Vec<u8>, u64), Errno>> {
        match named {
            Named::Fd(fd) => match self.file(pid, *fd) {
                Ok(f) => match f.kind {
                    Kind::Store(ino) | Kind::StoreDir(ino) => Some(Ok((Vec::new(), ino))),
                    _ => None,
                },
                Err(e) => Some(Err(e)),
            },
            Named::Path(full) if self.on_storage(full) => Some(Ok((full.clone(), 0))),
            Named::Path(_) => None,
        }
    }

    /// What a call names by a descriptor (`path` None) or a path from
    /// `dirfd`, resolved.
    fn named(&mut self, pid: Pid, fd: i64, path: Option<u64>) -> Result<Named, Errno> {
        match path {
            None => Ok(Named::Fd(fd)),
            Some(p) => self.path_arg(pid, fd, p).map(Named::Path),
        }
    }

    pub(super) fn sys_truncate(&mut self, pid: Pid, fd: i64, path: Option<u64>, len: u64) -> Ret {
        if (len as i64) < 0 {
            return err(EINVAL);
        }
        // Past RLIMIT_FSIZE: SIGXFSZ and EFBIG, as Linux's.
        if len > 0 {
            if let Err(e) = self.within_fsize(1, |_| Ok(len - 1)) {
                return err(e);
            }
        }
        if path.is_none() {
            if let Ok(f) = self.file(pid, fd) {
                if matches!(f.kind, Kind::Store(_)) && !f.writable() {
                    return err(EINVAL);
                }
                if matches!(f.kind, Kind::StoreDir(_)) {
                    return err(EINVAL);
                }
            }
        }
        match self.named(pid, fd, path) {
            Ok(named) => self.truncate_named(pid, named, len),
            Err(e) => err(e),
        }
    }

    /// truncate or ftruncate of what `named` names, its checks done.
    fn truncate_named(&mut self, pid: Pid, named: Named, len: u64) -> Ret {
        match self.store_target(pid, &named) {
            Some(Ok((full, ino))) => {
                let ino = if full.is_empty() {
                    ino
                } else {
                    // By name: the caller must be let write it (EACCES);
                    // a host's file that shows is copied up.
                    match self.store_stat_to_write(pid, &full) {
                        Ok(st) if st.mode & 0o170000 == 0o040000 => return err(EISDIR),
                        Ok(st) => match self.may(pid, pmon::cred::Owned::from(&st), MAY_WRITE) {
                            Ok(()) => st.ino,
                            Err(e) => return err(e),
                        },
                        Err(e) => {
                            return self.or_led_off(pid, &full, true, err(e), |k, to| {
                                k.truncate_named(pid, Named::Path(to), len)
                            })
                        }
                    }
                };
                let head = lego_proto::storage::StoreRequest {
                    op: lego_proto::storage::OP_TRUNCATE,
                    ino,
                    offset: len,
                    ..Default::default()
                };
                return self.store_change(head, &[]);
            }
            Some(Err(e)) => return err(e),
            None => {}
        }
        if let Named::Fd(fd) = named {
            match self.file(pid, fd) {
                Ok(f) if matches!(f.kind, Kind::Tmp(_)) && !f.writable() => return err(EINVAL),
                Ok(f) if matches!(f.kind, Kind::Host(_)) && !f.writable() => return err(EINVAL),
                _ => {}
            }
        }
        let by_path = matches!(named, Named::Path(_));
        match self.tmp_target(pid, &named) {
            Ok(ino) if self.tmp.is_directory(ino) => err(EISDIR),
            // A named pipe or a socket's name has no length to set.
            Ok(ino) if self.tmp.is_fifo(ino) || self.tmp.is_socket(ino) => err(EINVAL),
            Ok(ino) if by_path && !self.overrides(pid) => {
                let allowed = self
                    .tmp
                    .stat(ino)
                    .and_then(|st| self.may(pid, pmon::cred::Owned::from(&st), MAY_WRITE));
                val(allowed.and_then(|()| self.tmp_truncate(ino, len).map(|_| 0)))
            }
            Ok(ino) => val(self.tmp_truncate(ino, len).map(|_| 0)),
            Err(e) => err(e),
        }
    }

    pub(super) fn sys_chmod(&mut self, pid: Pid, fd: i64, path: Option<u64>, mode: u64) -> Ret {
        // /proc/self/fd/N is the open file itself (glibc's
        // fchmodat(AT_SYMLINK_NOFOLLOW) changes a file this way).
        let named = match self.named(pid, fd, path) {
            Ok(Named::Path(full)) => match pmon::path::name(&full, pid) {
                Name::Fd(t, n) if t == pid => Named::Fd(n as i64),
                _ => Named::Path(full),
            },
            Ok(named) => named,
            Err(e) => return err(e),
        };
        self.chmod_named(pid, named, mode as u32 & 0o7777)
    }

    /// chmod of what `named` names.
    fn chmod_named(&mut self, pid: Pid, named: Named, mode: u32) -> Ret {
        if let Some(pty) = self.pty_target(pid, &named, true) {
            let r = pty.and_then(|id| {
                let owner = self.pty_owner(id, false);
                let mode = self.chmod_allowed(pid, mode, || Ok(owner))?;
                if let Some((_, p)) = self.ptys.get_mut(&id) {
                    p.perm = mode;
                }
                Ok(0)
            });
            return val(r);
        }
        match self.store_target(pid, &named) {
            Some(Ok((full, ino))) => {
                let r = match self.chmod_allowed(pid, mode, || store_owner(&full, ino, true)) {
                    Ok(mode) => {
                        let head = lego_proto::storage::StoreRequest {
                            op: lego_proto::storage::OP_CHMOD,
                            ino,
                            mode,
                            ..Default::default()
                        };
                        self.store_change(head, &full)
                    }
                    Err(e) => err(e),
                };
                return self.or_led_off(pid, &full, true, r, |k, to| {
                    k.chmod_named(pid, Named::Path(to), mode)
                });
            }
            Some(Err(e)) => return err(e),
            None => {}
        }
        let now = self.realtime_ns();
        let r = self.tmp_target(pid, &named).and_then(|ino| {
            let owner = self.tmp.stat(ino).map(|st| (st.uid, st.gid));
            let mode = self.chmod_allowed(pid, mode, || owner)?;
            self.tmp.chmod(ino, mode, now)
        });
        val(r.map(|_| 0))
    }

    /// The mode a chmod by `pid` gives a file owned by `owner()` (asked only
    /// of an unprivileged caller, since it may cost storage a round trip):
    /// EPERM unless the caller owns it or has CAP_FOWNER, and without the
    /// set-group-ID bit when the caller is not in the file's group and
    /// lacks CAP_FSETID, as Linux's chmod.
    fn chmod_allowed(
        &self,
        pid: Pid,
        mode: u32,
        owner: impl FnOnce() -> Result<(u32, u32), Errno>,
    ) -> Result<u32, Errno> {
        let p = self.procs.get(&pid).ok_or(ESRCH)?;
        let (c, groups) = (&p.cred, &p.groups);
        if c.capable(pmon::caps::FOWNER) && c.capable(pmon::caps::FSETID) {
            return Ok(mode);
        }
        let (uid, gid) = owner()?;
        if uid != c.uid.fs && !c.capable(pmon::caps::FOWNER) {
            return Err(EPERM);
        }
        let in_group = gid == c.gid.fs || groups.contains(&gid);
        if !in_group && !c.capable(pmon::caps::FSETID) {
            return Ok(mode & !0o2000);
        }
        Ok(mode)
    }

    /// fchmodat2: fchmodat with flags (glibc from 2.39 calls it). A
    /// symbolic link's own mode does not change (EOPNOTSUPP, as Linux's
    /// file systems answer); AT_EMPTY_PATH with an empty path names the
    /// descriptor's file, an O_PATH one too.
    pub(super) fn sys_fchmodat2(
        &mut self,
        pid: Pid,
        dirfd: i64,
        path: u64,
        mode: u64,
        flags: u64,
    ) -> Ret {
        if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
            return err(EINVAL);
        }
        let empty = match self
            .space_mut(pid)
            .and_then(|s| uaccess::read_cstr(s, path, pmon::path::PATH_MAX - 1))
        {
            Ok(p) => p.is_empty(),
            Err(e) => return err(e),
        };
        if empty || flags & AT_SYMLINK_NOFOLLOW != 0 {
            match self.stat_path(pid, dirfd, path, flags) {
                Ok(st)
                    if flags & AT_SYMLINK_NOFOLLOW != 0
                        && super::stat_mode(&st) & 0o170000 == 0o120000 =>
                {
                    return err(EOPNOTSUPP)
                }
                Ok(_) => {}
                Err(e) => return err(e),
            }
        }
        self.sys_chmod(pid, dirfd, (!empty).then_some(path), mode)
    }

    /// chown, fchown, lchown, fchownat: a file of the tmpfs or storage
    /// keeps its owner and group (-1 leaves one as it is), changed as
    /// Linux lets the caller ([`Self::chown_allowed`]); the host's files
    /// are read-only. lchown and fchownat with AT_SYMLINK_NOFOLLOW name a
    /// symbolic link itself (cp -a and tar give a link its owner before its
    /// target exists); `flags` are fchownat's.
    pub(super) fn sys_chown(
        &mut self,
        pid: Pid,
        fd: i64,
        path: Option<u64>,
        (uid, gid): (u64, u64),
        follow: bool,
        flags: u64,
    ) -> Ret {
        if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
            return err(EINVAL);
        }
        let follow = follow && flags & AT_SYMLINK_NOFOLLOW == 0;
        let path = match self.empty_path_names_fd(pid, path, flags) {
            Ok(p) => p,
            Err(e) => return err(e),
        };
        let id = |v: u64| (v as u32 != u32::MAX).then_some(v as u32);
        match self.named(pid, fd, path) {
            Ok(named) => self.chown_named(pid, named, (id(uid), id(gid)), follow),
            Err(e) => err(e),
        }
    }

    /// chown of what `named` names (None: the owner or group stays).
    fn chown_named(
        &mut self,
        pid: Pid,
        named: Named,
        (uid, gid): (Option<u32>, Option<u32>),
        follow: bool,
    ) -> Ret {
        if let Some(pty) = self.pty_target(pid, &named, follow) {
            let r = pty.and_then(|id| {
                let owner = self.pty_owner(id, false);
                self.chown_allowed(pid, uid, gid, || Ok(owner))?;
                if let Some((_, p)) = self.ptys.get_mut(&id) {
                    p.owner = (uid.unwrap_or(owner.0), gid.unwrap_or(owner.1));
                }
                Ok(0)
            });
            return val(r);
        }
        match self.store_target(pid, &named) {
            Some(Ok((full, ino))) => {
                if let Err(e) =
                    self.chown_allowed(pid, uid, gid, || store_owner(&full, ino, follow))
                {
                    return self.or_led_off(pid, &full, follow, err(e), |k, to| {
                        k.chown_named(pid, Named::Path(to), (uid, gid), follow)
                    });
                }
                let head = lego_proto::storage::StoreRequest {
                    op: lego_proto::storage::OP_CHOWN,
                    ino,
                    flags: if follow {
                        lego_proto::storage::FLAG_FOLLOW
                    } else {
                        0
                    },
                    offset: u64::from(uid.unwrap_or(u32::MAX)),
                    len: u64::from(gid.unwrap_or(u32::MAX)),
                    ..Default::default()
                };
                let r = self.store_change(head, &full);
                return self.or_led_off(pid, &full, follow, r, |k, to| {
                    k.chown_named(pid, Named::Path(to), (uid, gid), follow)
                });
            }
            Some(Err(e)) => return err(e),
            None => {}
        }
        let now = self.realtime_ns();
        let r = self.tmp_target_at(pid, &named, follow).and_then(|ino| {
            let owner = self.tmp.stat(ino).map(|st| (st.uid, st.gid));
            self.chown_allowed(pid, uid, gid, || owner)?;
            self.tmp.chown(ino, uid, gid, now)
        });
        val(r.map(|_| 0))
    }

    /// EPERM unless `pid` may give a file owned by `owner()` the owner
    /// `uid` and group `gid` ([`pmon::cred::Cred::may_chown`]); the owner
    /// is asked only of a caller without CAP_CHOWN.
    fn chown_allowed(
        &self,
        pid: Pid,
        uid: Option<u32>,
        gid: Option<u32>,
        owner: impl FnOnce() -> Result<(u32, u32), Errno>,
    ) -> Result<(), Errno> {
        let p = self.procs.get(&pid).ok_or(ESRCH)?;
        if p.cred.capable(pmon::caps::CHOWN) {
            return Ok(());
        }
        if p.cred.may_chown(&p.groups, owner()?, uid, gid) {
            Ok(())
        } else {
            Err(EPERM)
        }
    }

    /// None (the call names the descriptor) for an empty path with
    /// AT_EMPTY_PATH; an empty path without it is ENOENT, as Linux.
    fn empty_path_names_fd(
        &mut self,
        pid: Pid,
        path: Option<u64>,
        flags: u64,
    ) -> Result<Option<u64>, Errno> {
        let Some(p) = path else {
            return Ok(None);
        };
        let first = uaccess::read_vec(self.space_mut(pid)?, p, 1)?;
        match (first.first(), flags & AT_EMPTY_PATH != 0) {
            (Some(0), true) => Ok(None),
            (Some(0), false) => Err(ENOENT),
            _ => Ok(Some(p)),
        }
    }

    pub(super) fn sys_utimensat(
        &mut self,
        pid: Pid,
        dirfd: i64,
        path: u64,
        times: u64,
        flags: u64,
    ) -> Ret {
        if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 || (path == 0 && flags != 0) {
            return err(EINVAL);
        }
        let follow = flags & AT_SYMLINK_NOFOLLOW == 0;
        let now = self.realtime_ns();
        // Both now (no times, or UTIME_NOW twice): a touch.
        let mut touch = times == 0;
        let (atime, mtime) = if times == 0 {
            (Some(now), Some(now))
        } else {
            let t = match self
                .space_mut(pid)
                .and_then(|s| uaccess::read_vec(s, times, 32))
            {
                Ok(t) => t,
                Err(e) => return err(e),
            };
            let word = |at: usize| u64::from_le_bytes(t[at..at + 8].try_into().unwrap_or([0; 8]));
            let one = |sec: u64, nsec: u64| match nsec {
                UTIME_NOW => Ok(Some(now)),
                UTIME_OMIT => Ok(None),
                n if n < 1_000_000_000 => Ok(Some(sec.saturating_mul(1_000_000_000) + n)),
                _ => Err(EINVAL),
            };
            touch = word(8) == UTIME_NOW && word(24) == UTIME_NOW;
            match (one(word(0), word(8)), one(word(16), word(24))) {
                (Ok(a), Ok(m)) => (a, m),
                _ => return err(EINVAL),
            }
        };
        // No path and no descriptor: the null path is a bad address.
        if path == 0 && dirfd == AT_FDCWD {
            return err(EFAULT);
        }
        let named = match self.empty_path_names_fd(pid, (path != 0).then_some(path), flags) {
            Ok(n) => n,
            Err(e) => return err(e),
        };
        self.set_times(pid, dirfd, named, (atime, mtime), follow, touch)
    }

    /// utime, utimes and futimesat (older programs and libcs call them):
    /// utimensat with times in seconds (`utimbuf`, `micros` false) or
    /// timevals, none meaning now.
    pub(super) fn sys_utimes(
        &mut self,
        pid: Pid,
        dirfd: i64,
        path: u64,
        times: u64,
        micros: bool,
    ) -> Ret {
        if path == 0 && dirfd == AT_FDCWD {
            return err(EFAULT);
        }
        let now = self.realtime_ns();
        let (atime, mtime) = if times == 0 {
            (now, now)
        } else {
            let len = if micros { 32 } else { 16 };
            let t = match self
                .space_mut(pid)
                .and_then(|s| uaccess::read_vec(s, times, len))
            {
                Ok(t) => t,
                Err(e) => return err(e),
            };
            let word = |at: usize| u64::from_le_bytes(t[at..at + 8].try_into().unwrap_or([0; 8]));
            if !micros {
                (
                    word(0).saturating_mul(1_000_000_000),
                    word(8).saturating_mul(1_000_000_000),
                )
            } else if word(8) >= 1_000_000 || word(24) >= 1_000_000 {
                return err(EINVAL);
            } else {
                let ns = |sec: u64, us: u64| sec.saturating_mul(1_000_000_000) + us * 1000;
                (ns(word(0), word(8)), ns(word(16), word(24)))
            }
        };
        let named = (path != 0).then_some(path);
        self.set_times(
            pid,
            dirfd,
            named,
            (Some(atime), Some(mtime)),
            true,
            times == 0,
        )
    }

    /// Sets (or leaves, None) the access and modification times of what
    /// `path` names, or the descriptor `dirfd` when there is no path.
    ///
    /// As Linux's: setting them to now (`touch`) takes the file's owner,
    /// CAP_FOWNER or write permission (EACCES); setting them to given
    /// times takes the owner or CAP_FOWNER (EPERM).
    fn set_times(
        &mut self,
        pid: Pid,
        dirfd: i64,
        named: Option<u64>,
        (atime, mtime): (Option<u64>, Option<u64>),
        follow: bool,
        touch: bool,
    ) -> Ret {
        if atime.is_none() && mtime.is_none() {
            // Both UTIME_OMIT: nothing to do, and as Linux's utimensat the
            // path is not even looked up.
            return Ret::Val(0);
        }
        match self.named(pid, dirfd, named) {
            Ok(named) => self.set_times_named(pid, named, (atime, mtime), follow, touch),
            Err(e) => err(e),
        }
    }

    /// [`Self::set_times`] of what `named` names.
    fn set_times_named(
        &mut self,
        pid: Pid,
        named: Named,
        (atime, mtime): (Option<u64>, Option<u64>),
        follow: bool,
        touch: bool,
    ) -> Ret {
        let now = self.realtime_ns();
        let again = |k: &mut Self, to| {
            k.set_times_named(pid, Named::Path(to), (atime, mtime), follow, touch)
        };
        match self.store_target(pid, &named) {
            Some(Ok((full, ino))) => {
                if let Err(e) = self.times_allowed(pid, touch, || store_owned(&full, ino, follow)) {
                    return self.or_led_off(pid, &full, follow, err(e), again);
                }
                let mut head = lego_proto::storage::StoreRequest {
                    op: lego_proto::storage::OP_UTIMES,
                    ino,
                    ..Default::default()
                };
                if follow {
                    head.flags |= lego_proto::storage::FLAG_FOLLOW;
                }
                if let Some(a) = atime {
                    head.flags |= lego_proto::storage::FLAG_ATIME;
                    head.atime = a;
                }
                if let Some(m) = mtime {
                    head.flags |= lego_proto::storage::FLAG_MTIME;
                    head.mtime = m;
                }
                let r = self.store_change(head, &full);
                return self.or_led_off(pid, &full, follow, r, again);
            }
            Some(Err(e)) => return err(e),
            None => {}
        }
        let target = self.tmp_target_at(pid, &named, follow);
        let r = target.and_then(|ino| {
            let owned = self.tmp.stat(ino).map(|st| pmon::cred::Owned::from(&st));
            self.times_allowed(pid, touch, || owned)?;
            self.tmp.set_times(ino, atime, mtime, now)
        });
        val(r.map(|_| 0))
    }

    /// Whether `pid` may set the times of a file `owned()` describes
    /// (asked only of a caller without CAP_FOWNER, since it may cost
    /// storage a round trip): see [`Self::set_times`].
    fn times_allowed(
        &self,
        pid: Pid,
        touch: bool,
        owned: impl FnOnce() -> Result<pmon::cred::Owned, Errno>,
    ) -> Result<(), Errno> {
        let p = self.procs.get(&pid).ok_or(ESRCH)?;
        if p.cred.capable(pmon::caps::FOWNER) {
            return Ok(());
        }
        let f = owned()?;
        if f.uid == p.cred.uid.fs {
            return Ok(());
        }
        if !touch {
            return Err(EPERM);
        }
        if p.cred.may_access(&p.groups, f, MAY_WRITE) {
            Ok(())
        } else {
            Err(EACCES)
        }
    }

    /// A mapping filled from a file (made writable for it) gets the
    /// protection it was asked with.
    pub(super) fn filled(&mut self, pid: Pid, at: u64, len: u64, prot: u64) -> Result<(), Errno> {
        if prot & 3 != 3 {
            self.space_mut(pid)?.call(MemRequest {
                op: OP_MPROTECT,
                addr: at,
                len,
                prot: prot as u32,
                ..Default::default()
            })?;
        }
        Ok(())
    }
}

/// The owner and group of a storage file: of `path` (through a final link
/// if `follow`), or of inode `ino` when the path is empty (a descriptor's).
fn store_owner(path: &[u8], ino: u64, follow: bool) -> Result<(u32, u32), Errno> {
    store_owned(path, ino, follow).map(|f| (f.uid, f.gid))
}

/// The owner, group and mode of a storage file, as [`store_owner`]; a
/// name of the host's installation that storage lacks is the host's file
/// (a change to it copies it up as the host owns it).
fn store_owned(path: &[u8], ino: u64, follow: bool) -> Result<pmon::cred::Owned, Errno> {
    let st = if path.is_empty() {
        super::super::store::stat_ino(ino)
    } else {
        super::super::store::stat(path, follow)
    };
    match st {
        Err(ENOENT) if !path.is_empty() && pmon::path::shown_from_host(path) => {
            host::stat_path(path, follow).map(|st| pmon::cred::Owned::from(&st))
        }
        st => st.map(|st| pmon::cred::Owned {
            uid: st.uid,
            gid: st.gid,
            mode: st.mode,
        }),
    }
}
