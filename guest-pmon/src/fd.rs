//! A process's descriptor table, with Linux's rules: new descriptors take
//! the lowest free number, `dup` shares the open file (its offset and
//! status flags) while `FD_CLOEXEC` belongs to the descriptor, fork copies
//! the table (sharing the open files), execve closes the close-on-exec
//! ones, and RLIMIT_NOFILE bounds the numbers.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::Cell;

/// Linux's errno values the table gives.
pub const EBADF: i64 = 9;
pub const EMFILE: i64 = 24;
pub const EINVAL: i64 = 22;

/// Open-file status flags a descriptor's file keeps (fcntl F_GETFL/F_SETFL).
pub const O_RDONLY: u32 = 0;
pub const O_WRONLY: u32 = 1;
pub const O_RDWR: u32 = 2;
pub const O_ACCMODE: u32 = 3;
pub const O_APPEND: u32 = 0o2000;
pub const O_NONBLOCK: u32 = 0o4000;
pub const O_CLOEXEC: u32 = 0o2000000;
/// Each write is durable when it returns (O_SYNC is this and `O_SYNC_ONLY`).
pub const O_DSYNC: u32 = 0o10000;
/// A descriptor that only names a file (for fstat, *at() calls, fchdir):
/// it neither reads nor writes.
pub const O_PATH: u32 = 0o10000000;
/// O_SYNC's own bit (Linux's `__O_SYNC`).
pub const O_SYNC_ONLY: u32 = 0o4000000;

/// The default soft RLIMIT_NOFILE.
pub const DEFAULT_LIMIT: usize = 1024;
/// The most a process may raise it to here.
pub const MAX_LIMIT: usize = 65536;

/// What a descriptor leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Stdin (0), stdout (1) or stderr (2) of a run: lego-vmm's own for
    /// run 0 (the program after `--`), a `lego run` client's otherwise.
    Stdio(u32, u32),
    PipeRead(usize),
    PipeWrite(usize),
    DevNull,
    DevZero,
    DevFull,
    DevUrandom,
    /// A host file, read-only (until the storage component serves files):
    /// the VMM's handle.
    Host(u32),
    /// A host directory.
    HostDir(u32),
    /// A file or directory of /tmp's tmpfs: its inode.
    Tmp(u64),
    /// A file on the storage component (`--storage`): its inode number.
    Store(u64),
    /// A directory on the storage component.
    StoreDir(u64),
    /// One end of a socketpair(AF_UNIX, SOCK_STREAM): the pipe it
    /// receives from and the pipe it sends into.
    Socket(usize, usize),
    /// An AF_UNIX socket made by socket() and not connected: bound,
    /// listening or neither (the kernel's [`crate::unixsock`] id). It
    /// becomes a `Socket` when it connects.
    Unix(usize),
    /// An AF_UNIX SOCK_DGRAM socket made by socket(): the id of the pipe
    /// its messages queue in, which is also its [`crate::unixsock`] id.
    /// It stays this kind whether it binds or connects.
    UnixDgram(usize),
    /// The master end of a pseudo-terminal (the kernel's id of it).
    PtyMaster(usize),
    /// The slave end (/dev/pts/N) of a pseudo-terminal.
    PtySlave(usize),
    /// An epoll instance (the kernel's table of them).
    Epoll(usize),
    /// An eventfd counter.
    EventFd(usize),
    /// A signalfd (the kernel's table of their sets).
    SignalFd(usize),
    /// An inotify instance (the kernel's table of them).
    Inotify(usize),
    /// A POSIX message queue (`crate::mqueue`'s id of it).
    MQueue(usize),
    /// A NETLINK_ROUTE socket (`crate::netlink`).
    Netlink(usize),
    /// A UDP socket on the loopback (`crate::dgram`).
    Dgram(usize),
    /// A process's descriptor (pidfd_open, CLONE_PIDFD): its id and its
    /// start time, which tell it from a later process given the same id.
    PidFd(u32, u64),
    /// /proc/PID opened as a directory: the process's id and start time
    /// (pidfd_send_signal takes it for a pidfd, as Linux does).
    ProcDir(u32, u64),
    /// A file the monitor made up when it was opened (/proc/self/maps):
    /// its bytes are the open file's `data`.
    Generated,
}

/// An open file: what it is, its offset and its status flags, shared by
/// every descriptor that dup or fork made from the same open. The kernel
/// runs one system call at a time (a big lock), so cells suffice.
#[derive(Debug)]
pub struct OpenFile {
    pub kind: Kind,
    pub offset: Cell<u64>,
    pub flags: Cell<u32>,
    /// The absolute path it was opened by (files and directories), for
    /// *at() calls relative to it and fchdir.
    pub path: alloc::vec::Vec<u8>,
    /// A generated file's bytes.
    pub data: alloc::vec::Vec<u8>,
    /// Who hears of it by signal (F_SETOWN, F_SETOWN_EX): the owner's
    /// kind (F_OWNER_TID, F_OWNER_PID, F_OWNER_PGRP) and id, 0 for none.
    pub owner: Cell<(i32, i32)>,
    /// The signal it sends them (F_SETSIG; 0: SIGIO).
    pub sig: Cell<u32>,
    /// Which open file this is, never reused (its address is, once it is
    /// freed): epoll tells a file closed from a new one on its descriptor
    /// by it.
    pub serial: u64,
}

/// The next [`OpenFile::serial`].
static NEXT_SERIAL: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);

fn next_serial() -> u64 {
    NEXT_SERIAL.fetch_add(1, core::sync::atomic::Ordering::Relaxed)
}

pub const F_OWNER_TID: i32 = 0;
pub const F_OWNER_PID: i32 = 1;
pub const F_OWNER_PGRP: i32 = 2;

// SAFETY: every access happens under the kernel's lock.
unsafe impl Sync for OpenFile {}
// SAFETY: as above.
unsafe impl Send for OpenFile {}

/// A status bit of an open socket's flags that no fcntl flag uses: its
/// sending side was shut down (shutdown SHUT_WR).
pub const SHUT_WR_FLAG: u32 = 1 << 30;

/// A status bit of a TCP socket whose non-blocking connect said
/// EINPROGRESS: the next connect reports that it is done (0), once.
pub const CONNECTING_FLAG: u32 = 1 << 29;

/// A status bit of a named pipe's end opened without O_NONBLOCK. Linux's
/// open would have waited for the other end (here the end's first read or
/// write does), so until a writer has come, this reader's reads wait, or
/// say EAGAIN once the end was made non-blocking (Go opens FIFOs so, then
/// polls them), rather than the end of the file that a reader opened
/// O_NONBLOCK sees.
pub const WAITED_OPEN_FLAG: u32 = 1 << 28;

/// The status bits above, which F_GETFL does not show.
pub const STATUS_BITS: u32 = SHUT_WR_FLAG | CONNECTING_FLAG | WAITED_OPEN_FLAG;

/// Whether `f` is a socket whose sending side was shut down.
pub fn shut_for_writing(f: &OpenFile) -> bool {
    matches!(f.kind, Kind::Socket(..)) && f.flags.get() & SHUT_WR_FLAG != 0
}

impl OpenFile {
    pub fn new(kind: Kind, flags: u32) -> Arc<OpenFile> {
        OpenFile::with_path(kind, flags, alloc::vec::Vec::new())
    }

    pub fn with_path(kind: Kind, flags: u32, path: alloc::vec::Vec<u8>) -> Arc<OpenFile> {
        Arc::new(OpenFile {
            kind,
            offset: Cell::new(0),
            flags: Cell::new(flags & !O_CLOEXEC),
            path,
            data: alloc::vec::Vec::new(),
            owner: Cell::new((F_OWNER_PID, 0)),
            sig: Cell::new(0),
            serial: next_serial(),
        })
    }

    /// A generated file named `path` holding `data`, read-only.
    pub fn generated(path: alloc::vec::Vec<u8>, data: alloc::vec::Vec<u8>) -> Arc<OpenFile> {
        Arc::new(OpenFile {
            kind: Kind::Generated,
            offset: Cell::new(0),
            flags: Cell::new(O_RDONLY),
            path,
            data,
            owner: Cell::new((F_OWNER_PID, 0)),
            sig: Cell::new(0),
            serial: next_serial(),
        })
    }

    pub fn readable(&self) -> bool {
        let f = self.flags.get();
        f & O_ACCMODE != O_WRONLY && f & O_PATH == 0
    }

    pub fn writable(&self) -> bool {
        let f = self.flags.get();
        f & O_ACCMODE != O_RDONLY && f & O_PATH == 0
    }

    pub fn nonblocking(&self) -> bool {
        self.flags.get() & O_NONBLOCK != 0
    }
}

#[derive(Clone, Debug)]
struct Slot {
    file: Arc<OpenFile>,
    cloexec: bool,
}

#[derive(Clone, Debug)]
pub struct FdTable {
    slots: Vec<Option<Slot>>,
    /// RLIMIT_NOFILE: descriptors are below it.
    pub limit: usize,
}

impl Default for FdTable {
    fn default() -> Self {
        FdTable::new()
    }
}

impl FdTable {
    pub fn new() -> FdTable {
        FdTable {
            slots: Vec::new(),
            limit: DEFAULT_LIMIT,
        }
    }

    /// The table a program starts with: 0, 1, 2 on lego-vmm's stdio.
    pub fn with_stdio(run: u32) -> FdTable {
        let mut t = FdTable::new();
        for (fd, flags) in [(0, O_RDONLY), (1, O_WRONLY), (2, O_WRONLY)] {
            let _ = t.install_at(fd, OpenFile::new(Kind::Stdio(fd as u32, run), flags), false);
        }
        t
    }

    pub fn get(&self, fd: i64) -> Result<&Arc<OpenFile>, i64> {
        let i = usize::try_from(fd).map_err(|_| EBADF)?;
        self.slots
            .get(i)
            .and_then(|s| s.as_ref())
            .map(|s| &s.file)
            .ok_or(EBADF)
    }

    pub fn cloexec(&self, fd: i64) -> Result<bool, i64> {
        let i = usize::try_from(fd).map_err(|_| EBADF)?;
        self.slots
            .get(i)
            .and_then(|s| s.as_ref())
            .map(|s| s.cloexec)
            .ok_or(EBADF)
    }

    pub fn set_cloexec(&mut self, fd: i64, on: bool) -> Result<(), i64> {
        let i = usize::try_from(fd).map_err(|_| EBADF)?;
        let slot = self
            .slots
            .get_mut(i)
            .and_then(|s| s.as_mut())
            .ok_or(EBADF)?;
        slot.cloexec = on;
        Ok(())
    }

    /// The lowest free descriptor at or above `from`.
    pub fn lowest_free(&self, from: usize) -> Result<usize, i64> {
        let fd = (from..)
            .find(|&i| self.slots.get(i).is_none_or(|s| s.is_none()))
            .unwrap_or(usize::MAX);
        if fd >= self.limit {
            return Err(EMFILE);
        }
        Ok(fd)
    }

    /// A new descriptor for `file`, the lowest free one at or above `from`.
    pub fn install(&mut self, file: Arc<OpenFile>, cloexec: bool, from: usize) -> Result<i64, i64> {
        let fd = self.lowest_free(from)?;
        self.install_at(fd, file, cloexec)?;
        Ok(fd as i64)
    }

    /// Puts `file` at `fd`, closing what was there; what was there, if any.
    pub fn install_at(
        &mut self,
        fd: usize,
        file: Arc<OpenFile>,
        cloexec: bool,
    ) -> Result<Option<Arc<OpenFile>>, i64> {
        if fd >= self.limit {
            return Err(EBADF);
        }
        if self.slots.len() <= fd {
            self.slots.resize(fd + 1, None);
        }
        Ok(self.slots[fd]
            .replace(Slot { file, cloexec })
            .map(|s| s.file))
    }

    /// Every descriptor of `old` leads to `new` instead (a socket that
    /// connected became a connection: its duplicates too), keeping their
    /// close-on-exec flags; their numbers.
    pub fn replace_file(&mut self, old: &Arc<OpenFile>, new: &Arc<OpenFile>) -> Vec<i64> {
        let mut fds = Vec::new();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if let Some(s) = slot.as_mut().filter(|s| Arc::ptr_eq(&s.file, old)) {
                s.file = new.clone();
                fds.push(i as i64);
            }
        }
        fds
    }

    /// Removes `fd`; its open file (the caller drops the last reference's
    /// resources: a pipe end).
    pub fn close(&mut self, fd: i64) -> Result<Arc<OpenFile>, i64> {
        let i = usize::try_from(fd).map_err(|_| EBADF)?;
        let slot = self.slots.get_mut(i).and_then(|s| s.take()).ok_or(EBADF)?;
        Ok(slot.file)
    }

    /// dup / F_DUPFD(_CLOEXEC): the lowest free descriptor at or above `from`.
    pub fn dup(&mut self, fd: i64, from: usize, cloexec: bool) -> Result<i64, i64> {
        let file = self.get(fd)?.clone();
        if from >= self.limit {
            return Err(EINVAL);
        }
        self.install(file, cloexec, from)
    }

    /// dup2 / dup3: `new` becomes a copy of `old`; what `new` held is returned.
    pub fn dup_to(
        &mut self,
        old: i64,
        new: i64,
        cloexec: bool,
    ) -> Result<Option<Arc<OpenFile>>, i64> {
        let file = self.get(old)?.clone();
        let n = usize::try_from(new).map_err(|_| EBADF)?;
        self.install_at(n, file, cloexec)
    }

    /// execve: close-on-exec descriptors go; their files are returned.
    pub fn exec(&mut self) -> Vec<Arc<OpenFile>> {
        let mut closed = Vec::new();
        for s in self.slots.iter_mut() {
            if s.as_ref().is_some_and(|s| s.cloexec) {
                if let Some(slot) = s.take() {
                    closed.push(slot.file);
                }
            }
        }
        closed
    }

    /// Every open descriptor and its file.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &Arc<OpenFile>)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (i as i64, &s.file)))
    }

    /// Takes every descriptor out (the process exits).
    pub fn clear(&mut self) -> Vec<Arc<OpenFile>> {
        self.slots.drain(..).flatten().map(|s| s.file).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_descriptors_take_the_lowest_free_number() {
        let mut t = FdTable::with_stdio(0);
        let f = OpenFile::new(Kind::DevNull, O_RDWR);
        assert_eq!(t.install(f.clone(), false, 0), Ok(3));
        assert!(t.close(1).is_ok());
        assert_eq!(t.install(f.clone(), false, 0), Ok(1));
        assert_eq!(t.install(f, false, 10), Ok(10));
        assert_eq!(t.close(99).err(), Some(EBADF));
        assert_eq!(t.get(-1).err(), Some(EBADF));
    }

    #[test]
    fn a_replaced_file_is_replaced_at_every_descriptor() {
        let mut t = FdTable::with_stdio(0);
        let old = OpenFile::new(Kind::DevZero, O_RDONLY);
        let fd = t.install(old.clone(), true, 0).unwrap();
        let d = t.dup(fd, 10, false).unwrap();
        let new = OpenFile::new(Kind::DevNull, O_RDWR);
        assert_eq!(t.replace_file(&old, &new), vec![fd, d]);
        assert!(Arc::ptr_eq(t.get(fd).unwrap(), &new) && Arc::ptr_eq(t.get(d).unwrap(), &new));
        assert_eq!((t.cloexec(fd), t.cloexec(d)), (Ok(true), Ok(false)));
        assert_eq!(t.get(0).unwrap().kind, Kind::Stdio(0, 0));
        assert!(t.replace_file(&old, &new).is_empty());
    }

    #[test]
    fn dup_shares_the_file_and_not_close_on_exec() {
        let mut t = FdTable::with_stdio(0);
        let fd = t
            .install(OpenFile::new(Kind::DevZero, O_RDONLY), true, 0)
            .unwrap();
        let d = t.dup(fd, 0, false).unwrap();
        t.get(fd).unwrap().offset.set(42);
        assert_eq!(t.get(d).unwrap().offset.get(), 42, "one open file");
        assert_eq!(t.cloexec(fd), Ok(true));
        assert_eq!(t.cloexec(d), Ok(false));
        let closed = t.exec();
        assert_eq!(closed.len(), 1);
        assert!(t.get(fd).is_err() && t.get(d).is_ok());
        // dup2 onto stdout replaces it.
        let old = t.dup_to(d, 1, false).unwrap();
        assert_eq!(old.map(|f| f.kind), Some(Kind::Stdio(1, 0)));
        assert_eq!(t.get(1).unwrap().kind, Kind::DevZero);
    }

    #[test]
    fn the_limit_bounds_descriptors() {
        let mut t = FdTable::with_stdio(0);
        t.limit = 4;
        let f = OpenFile::new(Kind::DevNull, O_RDWR);
        assert_eq!(t.install(f.clone(), false, 0), Ok(3));
        assert_eq!(t.install(f.clone(), false, 0), Err(EMFILE));
        assert_eq!(t.dup_to(0, 4, false).err(), Some(EBADF));
        assert_eq!(t.dup(0, 4, false), Err(EINVAL));
    }
}
