//! inotify: inotify_init, inotify_init1, inotify_add_watch,
//! inotify_rm_watch, reading events, and the changes the processor's
//! programs make to files reported to every instance ([`pmon::inotify`]).
//!
//! Reported: opening, reading, writing, truncating, changing the
//! attributes of and closing files and directories (the tmpfs, storage,
//! and the host's read-only files), and making, removing and renaming
//! names in directories of the tmpfs and storage. Decided: a file's events
//! go to the directory it was opened in even after a rename moved it
//! (Linux follows it to its new directory); storage files changed by
//! another processor are not reported.

use pmon::inotify::{self, Change, Instance, Key};

use super::*;

const EMFILE: Errno = 24;

impl Kernel {
    pub(super) fn sys_inotify_init(&mut self, pid: Pid, flags: u64) -> Ret {
        if flags & !((O_CLOEXEC | O_NONBLOCK) as u64) != 0 {
            return err(EINVAL);
        }
        if self.inotifies.len() >= inotify::MAX_INSTANCES {
            return err(EMFILE);
        }
        let id = self.next_event_id;
        self.next_event_id += 1;
        self.inotifies.insert(id, Instance::default());
        let file = OpenFile::new(Kind::Inotify(id), O_RDONLY | (flags as u32 & O_NONBLOCK));
        match self
            .proc_mut(pid)
            .and_then(|p| p.fds.install(file, flags & O_CLOEXEC as u64 != 0, 0))
        {
            Ok(fd) => Ret::Val(fd),
            Err(e) => {
                self.inotifies.remove(&id);
                err(e)
            }
        }
    }

    fn inotify_of(&self, pid: Pid, fd: i64) -> Result<usize, Errno> {
        match self.file(pid, fd)?.kind {
            Kind::Inotify(id) => Ok(id),
            _ => Err(EINVAL),
        }
    }

    pub(super) fn sys_inotify_add_watch(&mut self, pid: Pid, fd: i64, path: u64, mask: u64) -> Ret {
        let mask = mask as u32;
        let r = (|| {
            // Linux's order: the mask's bits, the descriptor, the rest of
            // the mask, the kind of descriptor, then the path.
            inotify::check_bits(mask)?;
            let f = self.file(pid, fd)?;
            inotify::check_mask(mask)?;
            let Kind::Inotify(id) = f.kind else {
                return Err(EINVAL);
            };
            let p = uaccess::read_cstr(self.space_mut(pid)?, path, pmon::path::PATH_MAX - 1)?;
            let follow = mask & inotify::IN_DONT_FOLLOW == 0;
            let st = self.stat_path_of(pid, AT_FDCWD, &p, follow)?;
            let full = if follow {
                self.lookup_follow(pid, AT_FDCWD, &p)?.0
            } else {
                self.lookup(pid, AT_FDCWD, &p)?.0
            };
            let mode = super::stat_mode(&st);
            if mask & inotify::IN_ONLYDIR != 0 && mode & 0o170000 != 0o040000 {
                return Err(ENOTDIR);
            }
            let ino = u64::from_le_bytes(st[8..16].try_into().unwrap_or([0; 8]));
            let key = self.key_at(&full, ino);
            let watches: usize = self.inotifies.values().map(|i| i.watch_count()).sum();
            let i = self.inotifies.get_mut(&id).ok_or(EBADF)?;
            let known = i.watches_near(&full, key);
            if watches >= inotify::MAX_WATCHES && !known {
                return Err(ENOSPC);
            }
            i.add(&full, key, mask).map(|wd| wd as i64)
        })();
        val(r)
    }

    pub(super) fn sys_inotify_rm_watch(&mut self, pid: Pid, fd: i64, wd: u64) -> Ret {
        let r = self.inotify_of(pid, fd).and_then(|id| {
            let i = self.inotifies.get_mut(&id).ok_or(EBADF)?;
            i.remove(wd as i32)?;
            Ok(id)
        });
        match r {
            Ok(id) => {
                self.wake_all(Wait::EventFd(id));
                Ret::Val(0)
            }
            Err(e) => err(e),
        }
    }

    /// A read of an instance; Ok(None): wait for an event.
    pub(super) fn inotify_read(
        &mut self,
        f: &OpenFile,
        id: usize,
        len: usize,
    ) -> Result<Option<Vec<u8>>, Errno> {
        let i = self.inotifies.get_mut(&id).ok_or(EBADF)?;
        if i.is_empty() {
            return if f.nonblocking() {
                Err(EAGAIN)
            } else {
                Ok(None)
            };
        }
        i.read(len).map(Some)
    }

    /// The inode key of the object at `full` whose st_ino is `ino`.
    fn key_at(&self, full: &[u8], ino: u64) -> Option<Key> {
        if self.on_storage(full) {
            Some(Key::Store(ino))
        } else {
            self.tmp_node(full).map(Key::Tmp)
        }
    }

    /// Tells every instance of a change.
    pub(in crate::kernel) fn notify(&mut self, c: Change) {
        let mut woken = Vec::new();
        for (id, i) in self.inotifies.iter_mut() {
            let before = i.generation;
            i.deliver(&c);
            if i.generation != before {
                woken.push(*id);
            }
        }
        if !self.dnotifies.is_empty() {
            let (heard, rest): (Vec<usize>, Vec<usize>) =
                woken.iter().partition(|id| self.dnotifies.contains_key(id));
            woken = rest;
            self.dnotify_heard(&heard);
        }
        for id in woken {
            self.wake_all(Wait::EventFd(id));
        }
    }

    /// Something happened to an open file or directory (`mask`: IN_OPEN,
    /// IN_ACCESS, IN_MODIFY, IN_ATTRIB or a close): its watch and its
    /// directory's hear of it.
    pub(in crate::kernel) fn notify_open_file(&mut self, f: &OpenFile, mask: u32) {
        // An O_PATH descriptor is not an open for inotify.
        if self.inotifies.is_empty() || f.flags.get() & pmon::fd::O_PATH != 0 {
            return;
        }
        let (key, dir) = match f.kind {
            Kind::Tmp(ino) => (Some(Key::Tmp(ino)), self.tmp.is_directory(ino)),
            Kind::Store(ino) => (Some(Key::Store(ino)), false),
            Kind::StoreDir(ino) => (Some(Key::Store(ino)), true),
            Kind::Host(_) => (None, false),
            Kind::HostDir(_) => (None, true),
            _ => return,
        };
        // Most files are watched by nobody: nothing to copy or tell.
        if !self
            .inotifies
            .values()
            .any(|i| i.watches_near(&f.path, key))
        {
            return;
        }
        let path = f.path.clone();
        // Its last name gone (IN_EXCL_UNLINK leaves it out).
        let unlinked = match f.kind {
            Kind::Tmp(ino) => self.tmp.stat(ino).is_ok_and(|st| st.nlink == 0),
            Kind::Store(ino) => self.unlinked.contains_key(&ino),
            _ => false,
        };
        self.notify(Change {
            path: &path,
            key,
            mask: mask | if dir { inotify::IN_ISDIR } else { 0 },
            cookie: 0,
            to_self: true,
            to_parent: true,
            unlinked,
        });
    }

    /// Something happened to the object at `full` (by path): `mask` to
    /// its watch and its directory's.
    pub(in crate::kernel) fn notify_path(&mut self, full: &[u8], mask: u32) {
        if !self.may_hear_of(full) {
            return;
        }
        let (key, dir) = self.key_and_dir(full);
        self.notify(Change {
            path: full,
            key,
            mask: mask | if dir { inotify::IN_ISDIR } else { 0 },
            cookie: 0,
            to_self: true,
            to_parent: true,
            unlinked: false,
        });
    }

    /// Whether a watch may hear of something at `full`: it or its
    /// directory is watched by path, or it may be watched by inode (the
    /// tmpfs's are looked up cheaply; a storage object is looked at only
    /// while some watch is on storage, since the look is a round trip).
    fn may_hear_of(&self, full: &[u8]) -> bool {
        self.inotifies.values().any(|i| {
            i.watches_near(full, None)
                || (i.watches_storage() && self.on_storage(full))
                || self.tmp_node(full).is_some()
        })
    }

    /// The inode key of the object at `full`, and whether it is a
    /// directory (None and false when it is not there).
    pub(super) fn key_and_dir(&self, full: &[u8]) -> (Option<Key>, bool) {
        if self.on_storage(full) {
            return match self.store_stat_path(full, false) {
                Ok(st) => {
                    let ino = u64::from_le_bytes(st[8..16].try_into().unwrap_or([0; 8]));
                    let mode = super::stat_mode(&st);
                    (Some(Key::Store(ino)), mode & 0o170000 == 0o040000)
                }
                Err(_) => (None, false),
            };
        }
        match self.tmp_node(full) {
            Some(ino) => (Some(Key::Tmp(ino)), self.tmp.is_directory(ino)),
            None => (None, false),
        }
    }

    /// Whether a descriptor of some process leads to inode `key`.
    fn open_anywhere(&self, key: Key) -> bool {
        self.procs
            .values()
            .any(|p| p.fds.iter().any(|(_, f)| key_of(f) == Some(key)))
    }

    /// The last descriptor of `f` closed: a file whose names all went
    /// while it was open is gone now.
    pub(in crate::kernel) fn notify_last_close(&mut self, f: &OpenFile) {
        let Some(key) = key_of(f) else {
            return;
        };
        let Some(at) = self.doomed.iter().position(|k| *k == key) else {
            return;
        };
        if self.open_anywhere(key) {
            return;
        }
        self.doomed.remove(at);
        let path = f.path.clone();
        self.notify(Change {
            path: &path,
            key: Some(key),
            mask: inotify::IN_DELETE_SELF,
            cookie: 0,
            to_self: true,
            to_parent: false,
            unlinked: false,
        });
    }

    /// A name `full` was made (`dir`: a directory): its directory hears
    /// IN_CREATE.
    pub(in crate::kernel) fn notify_created(&mut self, full: &[u8], dir: bool) {
        if self.inotifies.is_empty() {
            return;
        }
        self.notify(Change {
            path: full,
            key: None,
            mask: inotify::IN_CREATE | if dir { inotify::IN_ISDIR } else { 0 },
            cookie: 0,
            to_self: false,
            to_parent: true,
            unlinked: false,
        });
    }

    /// What a removal of the name `full` will report, looked up before it
    /// goes: its key, whether it is a directory, and whether its inode
    /// goes with the name (its last link).
    pub(in crate::kernel) fn before_removal(
        &self,
        full: &[u8],
    ) -> Option<(Option<Key>, bool, bool)> {
        if self.inotifies.is_empty() {
            return None;
        }
        let st = if self.on_storage(full) {
            self.store_stat_path(full, false).ok()?
        } else {
            self.tmp_stat(self.tmp_node(full)?).ok()?
        };
        let ino = u64::from_le_bytes(st[8..16].try_into().unwrap_or([0; 8]));
        let nlink = u64::from_le_bytes(st[16..24].try_into().unwrap_or([0; 8]));
        let mode = super::stat_mode(&st);
        let dir = mode & 0o170000 == 0o040000;
        let key = if self.on_storage(full) {
            Key::Store(ino)
        } else {
            Key::Tmp(ino)
        };
        Some((Some(key), dir, dir || nlink <= 1))
    }

    /// The name `full` was removed (`what`: [`Self::before_removal`]'s):
    /// a file's watch hears IN_ATTRIB (its link count), the object's
    /// IN_DELETE_SELF when its inode went, its directory IN_DELETE.
    pub(in crate::kernel) fn notify_removed(
        &mut self,
        full: &[u8],
        what: Option<(Option<Key>, bool, bool)>,
    ) {
        let Some((key, dir, last)) = what else {
            return;
        };
        let isdir = if dir { inotify::IN_ISDIR } else { 0 };
        self.notify_unlinked(full, key, dir, last);
        self.notify(Change {
            path: full,
            key: None,
            mask: inotify::IN_DELETE | isdir,
            cookie: 0,
            to_self: false,
            to_parent: true,
            unlinked: false,
        });
    }

    /// The name `full` of an object (`key`, `dir`) went, `last` if it was
    /// its last: a file's watch hears IN_ATTRIB (its link count), and the
    /// object's IN_DELETE_SELF once its inode goes, which for a file still
    /// open is at its last close.
    fn notify_unlinked(&mut self, full: &[u8], key: Option<Key>, dir: bool, last: bool) {
        let to_self = |mask| Change {
            path: full,
            key,
            mask,
            cookie: 0,
            to_self: true,
            to_parent: false,
            unlinked: false,
        };
        if !dir {
            self.notify(to_self(inotify::IN_ATTRIB));
        }
        match key {
            Some(k) if last && !dir && self.open_anywhere(k) => self.doomed.push(k),
            // Linux marks neither IN_DELETE_SELF nor IN_MOVE_SELF with
            // IN_ISDIR.
            _ if last => self.notify(to_self(inotify::IN_DELETE_SELF)),
            _ => {}
        }
    }

    /// `from` was renamed to `to` (`what`: the moved object's
    /// [`Self::before_removal`], `replaced`: the target's, if one was
    /// there): IN_MOVED_FROM and IN_MOVED_TO with one cookie, the
    /// replaced target's removal, the object's IN_MOVE_SELF; watches
    /// follow the move.
    pub(in crate::kernel) fn notify_renamed(
        &mut self,
        from: &[u8],
        to: &[u8],
        what: Option<(Option<Key>, bool, bool)>,
        replaced: Option<(Option<Key>, bool, bool)>,
        exchange: bool,
    ) {
        let Some((key, _, _)) = what else {
            return;
        };
        // Onto itself, or another name of itself: nothing moved.
        if key.is_some() && replaced.is_some_and(|(k, _, _)| k == key) {
            return;
        }
        self.notify_moved(from, to, what);
        if exchange {
            // Each moved, in turn, and the watches trade paths.
            self.notify_move_self(to, key);
            self.notify_moved(to, from, replaced);
            self.notify_move_self(from, replaced.and_then(|r| r.0));
            for i in self.inotifies.values_mut() {
                i.exchanged(from, to);
            }
            return;
        }
        if let Some((rkey, rdir, last)) = replaced {
            self.notify_unlinked(to, rkey, rdir, last);
        }
        for i in self.inotifies.values_mut() {
            i.renamed(from, to);
        }
        self.notify_move_self(to, key);
    }

    /// The object (`key`) now at `path` moved: its own watch hears.
    fn notify_move_self(&mut self, path: &[u8], key: Option<Key>) {
        self.notify(Change {
            path,
            key,
            mask: inotify::IN_MOVE_SELF,
            cookie: 0,
            to_self: true,
            to_parent: false,
            unlinked: false,
        });
    }

    /// IN_MOVED_FROM and IN_MOVED_TO of one move, with one cookie.
    fn notify_moved(&mut self, from: &[u8], to: &[u8], what: Option<(Option<Key>, bool, bool)>) {
        let Some((_, dir, _)) = what else {
            return;
        };
        self.next_cookie = self.next_cookie.wrapping_add(1).max(1);
        let cookie = self.next_cookie;
        let isdir = if dir { inotify::IN_ISDIR } else { 0 };
        for (path, mask) in [(from, inotify::IN_MOVED_FROM), (to, inotify::IN_MOVED_TO)] {
            self.notify(Change {
                path,
                key: None,
                mask: mask | isdir,
                cookie,
                to_self: false,
                to_parent: true,
                unlinked: false,
            });
        }
    }
}

/// What a call about to change files looked at first, to report after
/// it succeeded.
enum Before {
    Nothing,
    /// A name the call makes (`dir`: a directory).
    Made(Vec<u8>, bool),
    /// An open: the name, and whether it was there (O_CREAT makes it).
    Open(Vec<u8>, bool),
    /// A name the call removes.
    Removed(Vec<u8>, Option<(Option<Key>, bool, bool)>),
    /// A rename: from, to, the moved object and the replaced one.
    Renamed(Vec<u8>, Vec<u8>, Renaming),
    /// A hard link: the linked object's name and the new name.
    Linked(Vec<u8>, Vec<u8>),
    /// An object whose attributes (IN_ATTRIB) or contents (IN_MODIFY)
    /// the call changes, by name.
    Changed(Vec<u8>, u32),
}

type Renaming = (
    Option<(Option<Key>, bool, bool)>,
    Option<(Option<Key>, bool, bool)>,
);

const O_CREAT: u64 = 0o100;

impl Kernel {
    /// A system call while some instance watches: what it changed is
    /// reported once it succeeded.
    pub(super) fn dispatch_watched(&mut self, tid: Tid, n: u64, a: [u64; 6]) -> Ret {
        let pid = self.pid_of(tid);
        let before = self.watch_before(pid, n, &a);
        let ret = self.dispatch(tid, n, a);
        if let Ret::Val(v) = ret {
            if v >= 0 {
                self.watch_after(pid, n, &a, v, before);
            }
        }
        ret
    }

    fn watch_before(&mut self, pid: Pid, n: u64, a: &[u64; 6]) -> Before {
        let fd = |i: usize| a[i] as i32 as i64;
        let path = |k: &mut Kernel, dirfd: i64, ptr: u64| k.path_arg(pid, dirfd, ptr).ok();
        let opt = |p: Option<Vec<u8>>, f: &dyn Fn(Vec<u8>) -> Before| p.map_or(Before::Nothing, f);
        match n {
            nr::OPEN | nr::OPENAT | nr::CREAT => {
                let (dirfd, ptr, flags) = match n {
                    nr::OPEN => (AT_FDCWD, a[0], a[1]),
                    nr::OPENAT => (fd(0), a[1], a[2]),
                    _ => (AT_FDCWD, a[0], O_CREAT),
                };
                if flags & O_CREAT == 0 {
                    return Before::Nothing;
                }
                let full = path(self, dirfd, ptr).and_then(|f| self.follow(f).ok());
                // Whether it was there matters only to its directory's
                // watch (IN_CREATE).
                let watched = |k: &Kernel, f: &[u8]| {
                    let (dir, _) = inotify::split(f);
                    k.inotifies.values().any(|i| i.watches_near(dir, None))
                };
                match full {
                    Some(f) if watched(self, &f) => {
                        let there = self.key_and_dir(&f).0.is_some() || host_has(&f);
                        Before::Open(f, there)
                    }
                    _ => Before::Nothing,
                }
            }
            nr::MKDIR => opt(path(self, AT_FDCWD, a[0]), &|f| Before::Made(f, true)),
            nr::MKDIRAT => opt(path(self, fd(0), a[1]), &|f| Before::Made(f, true)),
            nr::MKNOD => opt(path(self, AT_FDCWD, a[0]), &|f| Before::Made(f, false)),
            nr::MKNODAT => opt(path(self, fd(0), a[1]), &|f| Before::Made(f, false)),
            nr::SYMLINK => opt(path(self, AT_FDCWD, a[1]), &|f| Before::Made(f, false)),
            nr::SYMLINKAT => opt(path(self, fd(1), a[2]), &|f| Before::Made(f, false)),
            nr::LINK | nr::LINKAT => {
                let (old, new) = if n == nr::LINK {
                    (path(self, AT_FDCWD, a[0]), path(self, AT_FDCWD, a[1]))
                } else {
                    (path(self, fd(0), a[1]), path(self, fd(2), a[3]))
                };
                match (old, new) {
                    (Some(o), Some(n)) => Before::Linked(o, n),
                    _ => Before::Nothing,
                }
            }
            nr::UNLINK | nr::RMDIR | nr::UNLINKAT => {
                let full = if n == nr::UNLINKAT {
                    path(self, fd(0), a[1])
                } else {
                    path(self, AT_FDCWD, a[0])
                };
                match full {
                    Some(f) => {
                        let what = self.before_removal(&f);
                        Before::Removed(f, what)
                    }
                    None => Before::Nothing,
                }
            }
            nr::RENAME | nr::RENAMEAT | nr::RENAMEAT2 => {
                let (from, to) = if n == nr::RENAME {
                    (path(self, AT_FDCWD, a[0]), path(self, AT_FDCWD, a[1]))
                } else {
                    (path(self, fd(0), a[1]), path(self, fd(2), a[3]))
                };
                match (from, to) {
                    (Some(f), Some(t)) => {
                        let what = (self.before_removal(&f), self.before_removal(&t));
                        Before::Renamed(f, t, what)
                    }
                    _ => Before::Nothing,
                }
            }
            nr::CHMOD | nr::CHOWN | nr::UTIME | nr::UTIMES => {
                let full = path(self, AT_FDCWD, a[0]).and_then(|f| self.follow(f).ok());
                opt(full, &|f| Before::Changed(f, inotify::IN_ATTRIB))
            }
            nr::SETXATTR | nr::REMOVEXATTR => {
                let full = path(self, AT_FDCWD, a[0]).and_then(|f| self.follow(f).ok());
                opt(full, &|f| Before::Changed(f, inotify::IN_ATTRIB))
            }
            nr::LCHOWN | nr::LSETXATTR | nr::LREMOVEXATTR => {
                opt(path(self, AT_FDCWD, a[0]), &|f| {
                    Before::Changed(f, inotify::IN_ATTRIB)
                })
            }
            nr::TRUNCATE => {
                let full = path(self, AT_FDCWD, a[0]).and_then(|f| self.follow(f).ok());
                opt(full, &|f| Before::Changed(f, inotify::IN_MODIFY))
            }
            nr::FCHMODAT | nr::FCHOWNAT | nr::FUTIMESAT | nr::UTIMENSAT if a[1] != 0 => {
                // The NOFOLLOW flag: fchownat's and utimensat's.
                let flags = match n {
                    nr::FCHOWNAT => a[4],
                    nr::UTIMENSAT => a[3],
                    _ => 0,
                };
                let full = path(self, fd(0), a[1]);
                let full = if flags & AT_SYMLINK_NOFOLLOW == 0 {
                    full.and_then(|f| self.follow(f).ok())
                } else {
                    full
                };
                opt(full, &|f| Before::Changed(f, inotify::IN_ATTRIB))
            }
            _ => Before::Nothing,
        }
    }

    fn watch_after(&mut self, pid: Pid, n: u64, a: &[u64; 6], v: i64, before: Before) {
        let fd = |i: usize| a[i] as i32 as i64;
        match before {
            Before::Made(full, dir) => self.notify_created(&full, dir),
            Before::Open(full, there) => {
                if !there {
                    self.notify_created(&full, false);
                }
            }
            Before::Removed(full, what) => self.notify_removed(&full, what),
            Before::Renamed(from, to, (what, replaced)) => {
                // renameat2's RENAME_EXCHANGE.
                let exchange = n == nr::RENAMEAT2 && a[4] & 2 != 0;
                self.notify_renamed(&from, &to, what, replaced, exchange)
            }
            Before::Linked(old, new) => {
                let (key, _) = self.key_and_dir(&new);
                self.notify(Change {
                    path: &old,
                    key,
                    mask: inotify::IN_ATTRIB,
                    cookie: 0,
                    to_self: true,
                    to_parent: false,
                    unlinked: false,
                });
                self.notify_created(&new, false);
            }
            Before::Changed(full, mask) => self.notify_path(&full, mask),
            Before::Nothing => {}
        }
        // Calls on descriptors.
        let on_fd = |k: &mut Kernel, i: usize, mask: u32| {
            if let Ok(f) = k.file(pid, fd(i)) {
                k.notify_open_file(&f, mask);
            }
        };
        match n {
            nr::OPEN | nr::CREAT | nr::OPENAT => {
                if let Ok(f) = self.file(pid, v) {
                    self.notify_open_file(&f, inotify::IN_OPEN);
                }
            }
            nr::READ | nr::READV | nr::PREAD64 | nr::PREADV | nr::PREADV2 if v > 0 => {
                on_fd(self, 0, inotify::IN_ACCESS)
            }
            nr::WRITE | nr::WRITEV | nr::PWRITE64 | nr::PWRITEV | nr::PWRITEV2 if v > 0 => {
                on_fd(self, 0, inotify::IN_MODIFY)
            }
            nr::GETDENTS64 => on_fd(self, 0, inotify::IN_ACCESS),
            nr::FCHMOD | nr::FCHOWN | nr::FSETXATTR | nr::FREMOVEXATTR => {
                on_fd(self, 0, inotify::IN_ATTRIB)
            }
            nr::FCHMODAT | nr::FCHOWNAT | nr::UTIMENSAT if a[1] == 0 => {
                on_fd(self, 0, inotify::IN_ATTRIB)
            }
            nr::FTRUNCATE | nr::FALLOCATE => on_fd(self, 0, inotify::IN_MODIFY),
            nr::SENDFILE if v > 0 => {
                on_fd(self, 1, inotify::IN_ACCESS);
                on_fd(self, 0, inotify::IN_MODIFY);
            }
            nr::COPY_FILE_RANGE | nr::SPLICE if v > 0 => {
                on_fd(self, 0, inotify::IN_ACCESS);
                on_fd(self, 2, inotify::IN_MODIFY);
            }
            _ => {}
        }
    }
}

/// The inode an open file leads to, where the monitor knows inodes.
fn key_of(f: &OpenFile) -> Option<Key> {
    match f.kind {
        Kind::Tmp(ino) => Some(Key::Tmp(ino)),
        Kind::Store(ino) | Kind::StoreDir(ino) => Some(Key::Store(ino)),
        _ => None,
    }
}

/// Whether the host has a file at `full` (read-only files the monitor
/// shows from the host).
fn host_has(full: &[u8]) -> bool {
    host::stat_path(full, false).is_ok()
}
