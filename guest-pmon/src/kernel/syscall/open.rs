//! Opening a file: openat and openat2 with their flags and resolve modes,
//! the host's files opened through the VMM, access/faccessat and readlink.

use super::*;

impl Kernel {
    pub(super) fn sys_openat(
        &mut self,
        pid: Pid,
        dirfd: i64,
        path: u64,
        flags: u64,
        mode: u64,
    ) -> Ret {
        match self
            .space_mut(pid)
            .and_then(|s| uaccess::read_cstr(s, path, pmon::path::PATH_MAX - 1))
        {
            Ok(p) => self.openat_path(pid, dirfd, &p, flags as u32, mode as u32),
            Err(e) => err(e),
        }
    }

    /// openat of path `p`. O_PATH gives a descriptor that only names the file (the
    /// other flags but O_CLOEXEC, O_DIRECTORY and O_NOFOLLOW ignored, as
    /// Linux ignores them): it opens a symbolic link itself with
    /// O_NOFOLLOW (glibc's fchmodat(AT_SYMLINK_NOFOLLOW) looks at it so),
    /// and a named pipe or socket without opening either.
    pub(super) fn openat_path(
        &mut self,
        pid: Pid,
        dirfd: i64,
        p: &[u8],
        flags: u32,
        mode: u32,
    ) -> Ret {
        if flags & O_PATH == 0 {
            return self.open_path(pid, dirfd, p, flags, mode);
        }
        const KEPT: u32 = O_CLOEXEC | 0o200000 | 0o400000;
        let r = self.open_path(pid, dirfd, p, flags & (KEPT | O_PATH), 0);
        if let Ret::Val(fd) = r {
            if let Ok(f) = self.file(pid, fd) {
                // F_GETFL shows O_NOFOLLOW and O_DIRECTORY as asked.
                const SHOWN: u32 = 0o200000 | 0o400000;
                f.flags
                    .set((f.flags.get() & !O_ACCMODE) | O_PATH | (flags & SHOWN));
            }
        }
        r
    }

    /// A call's extensible struct (openat2's open_how, clone3's
    /// clone_args): `size` bytes at `at`, of which this kernel knows the
    /// first `known`, as Linux's copy_struct_from_user takes them: EINVAL
    /// below `min` bytes, E2BIG past a page or for a newer program's field
    /// set past ours.
    pub(super) fn read_extensible(
        &mut self,
        pid: Pid,
        at: u64,
        size: u64,
        min: u64,
        known: usize,
    ) -> Result<Vec<u8>, Errno> {
        if size < min {
            return Err(EINVAL);
        }
        if size > 4096 {
            return Err(E2BIG);
        }
        let raw = uaccess::read_vec(self.space_mut(pid)?, at, size as usize)?;
        if raw
            .get(known..)
            .is_some_and(|tail| tail.iter().any(|&b| b != 0))
        {
            return Err(E2BIG);
        }
        Ok(raw)
    }

    /// openat2: openat with its `struct open_how` checked as Linux checks
    /// it (unknown flags, a mode without O_CREAT, a larger struct whose
    /// tail is not zero) and the path walked under its RESOLVE_* flags
    /// (`pmon::scoped`); the open itself is openat's. It was ENOSYS, which
    /// a program may take for a kernel older than the 6.1 that uname
    /// names.
    pub(super) fn sys_openat2(
        &mut self,
        pid: Pid,
        dirfd: i64,
        path: u64,
        how: u64,
        size: u64,
    ) -> Ret {
        use pmon::scoped::{RESOLVE_ALL, RESOLVE_BENEATH, RESOLVE_CACHED, RESOLVE_IN_ROOT};
        const O_CREAT: u64 = 0o100;
        const O_EXCL: u64 = 0o200;
        const O_TRUNC: u64 = 0o1000;
        const O_NOFOLLOW: u64 = 0o400000;
        const O_TMPFILE: u64 = 0o20000000;
        // Every flag openat knows (O_ACCMODE to __O_TMPFILE, FASYNC and
        // O_LARGEFILE among them).
        const VALID: u64 = 0o37777703;
        let raw = match self.read_extensible(pid, how, size, 24, 24) {
            Ok(r) => r,
            Err(e) => return err(e),
        };
        let (flags, mode, resolve) = (word_at(&raw, 0), word_at(&raw, 1), word_at(&raw, 2));
        if flags & !VALID != 0 || resolve & !RESOLVE_ALL != 0 {
            return err(EINVAL);
        }
        let makes = flags & (O_CREAT | O_TMPFILE) != 0;
        if (makes && mode & !0o7777 != 0) || (!makes && mode != 0) {
            return err(EINVAL);
        }
        if resolve & RESOLVE_BENEATH != 0 && resolve & RESOLVE_IN_ROOT != 0 {
            return err(EINVAL);
        }
        // RESOLVE_CACHED is never refused for want of a cache here, but
        // Linux refuses what would write.
        if resolve & RESOLVE_CACHED != 0 && flags & (O_CREAT | O_TRUNC | O_TMPFILE) != 0 {
            return err(EAGAIN);
        }
        let p = match self
            .space_mut(pid)
            .and_then(|s| uaccess::read_cstr(s, path, pmon::path::PATH_MAX - 1))
        {
            Ok(p) => p,
            Err(e) => return err(e),
        };
        let scoped = resolve & !RESOLVE_CACHED;
        if scoped == 0 || p.is_empty() {
            return self.openat_path(pid, dirfd, &p, flags as u32, mode as u32);
        }
        let follow_last = flags & O_NOFOLLOW == 0 && flags & (O_CREAT | O_EXCL) != O_CREAT | O_EXCL;
        let walked = self.resolve(pid, dirfd, b".").and_then(|start| {
            let start = self.shown(pid, &start);
            pmon::scoped::walk(&start, &p, scoped, follow_last, &mut |full| {
                self.scoped_node(pid, full)
            })
        });
        match walked {
            Ok(full) => self.openat_path(pid, AT_FDCWD, &full, flags as u32, mode as u32),
            Err(e) => err(e),
        }
    }

    /// The root directory of process `pid` (its chroot).
    pub(super) fn root_of(&self, pid: Pid) -> Vec<u8> {
        self.procs
            .get(&pid)
            .map_or_else(|| b"/".to_vec(), |pr| pr.root.clone())
    }

    /// The resolved path `full` as process `pid` names it (from its root),
    /// to look up again: a chroot's root is not taken twice.
    pub(super) fn shown(&self, pid: Pid, full: &[u8]) -> Vec<u8> {
        pmon::path::shown_in(&self.root_of(pid), full)
    }

    /// What openat2's walk finds at `shown` (absolute as process `pid`
    /// sees it, no link before its last name).
    pub(super) fn scoped_node(
        &mut self,
        pid: Pid,
        shown: &[u8],
    ) -> Result<pmon::scoped::Node, Errno> {
        use pmon::scoped::Node;
        let full = self.resolve(pid, AT_FDCWD, shown)?;
        let root = self.root_of(pid);
        let name = self.task_name(pid, pmon::path::name(&full, pid));
        match name {
            Name::Exe(_) => return Ok(Node::Magic(None)),
            Name::Cwd(_) | Name::Root(_) | Name::Fd(..) => {
                let to = match self.link_of(pid, &full) {
                    Ok(Some(t)) => Some(pmon::path::shown_in(&root, &t)),
                    Ok(None) | Err(ENOTDIR) => None,
                    Err(e) => return Err(e),
                };
                return Ok(Node::Magic(to));
            }
            _ => {}
        }
        match self.link_of(pid, &full) {
            Ok(Some(t)) => Ok(Node::Link(t)),
            Ok(None) => match self.stat_path_of(pid, AT_FDCWD, shown, false) {
                Ok(st) => {
                    let dev = word_at(&st, 0);
                    Ok(if stat_is_dir(&st) {
                        Node::Dir(dev)
                    } else {
                        Node::File(dev)
                    })
                }
                Err(ENOENT) => Ok(Node::Missing),
                Err(e) => Err(e),
            },
            Err(ENOENT) => Ok(Node::Missing),
            Err(e) => Err(e),
        }
    }

    /// open of path `p`.
    pub(super) fn open_path(
        &mut self,
        pid: Pid,
        dirfd: i64,
        p: &[u8],
        flags: u32,
        mode: u32,
    ) -> Ret {
        const O_CREAT: u32 = 0o100;
        const O_TRUNC: u32 = 0o1000;
        const O_DIRECTORY: u32 = 0o200000;
        const O_TMPFILE: u32 = 0o20000000;
        const EOPNOTSUPP: Errno = 95;
        let mut flags = flags;
        let path_only = flags & O_PATH != 0;
        // Unnamed files: neither the tmpfs nor storage makes them, and
        // EOPNOTSUPP is what a Linux file system without them answers,
        // which glibc's tmpfile() and programs take as "use a name".
        // O_CREAT with O_DIRECTORY (O_TMPFILE's among them) is EINVAL
        // since Linux 6.4, which made it stop creating regular files.
        if flags & (O_CREAT | O_DIRECTORY) == O_CREAT | O_DIRECTORY {
            return err(EINVAL);
        }
        if flags & O_TMPFILE != 0 {
            return err(EOPNOTSUPP);
        }
        // "name/" opens a directory only, and never makes a file.
        if ends_in_slash(p) {
            if flags & O_CREAT != 0 {
                return err(EISDIR);
            }
            flags |= O_DIRECTORY;
        }
        let cloexec = flags & O_CLOEXEC != 0;
        // The last name is followed unless O_NOFOLLOW, or O_CREAT with
        // O_EXCL (which must make it), as Linux.
        const O_EXCL: u32 = 0o200;
        const O_NOFOLLOW: u32 = 0o400000;
        let no_follow = flags & O_NOFOLLOW != 0 || flags & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL;
        let looked = if no_follow {
            self.lookup(pid, dirfd, p)
        } else {
            self.lookup_follow(pid, dirfd, p)
        };
        let (full, name) = match looked {
            Ok(v) => v,
            Err(e) => return err(e),
        };
        if let (true, Some(ino)) = (path_only, self.tmp_node(&full)) {
            return self.tmp_path_open(pid, ino, full, flags, cloexec);
        }
        // A program some process is running is not opened for writing
        // (ETXTBSY), as Linux's deny_write_access: `cp` over a running
        // program fails, an installer's unlink and rename do not.
        const ETXTBSY: Errno = 26;
        if (flags & O_ACCMODE != O_RDONLY || flags & O_TRUNC != 0) && !path_only {
            let vnode = self.procs.get(&pid).map_or(0, |p| p.vnode);
            let on_storage = self.on_storage(&full);
            // By name first (nothing to ask in the usual case), then by
            // the file now there: a new file made in a running program's
            // place (`ld -o`, `install`) is not the one running.
            let running: Vec<u64> = self
                .procs
                .values()
                .filter(|p| p.life == Life::Alive && p.exe == full)
                .filter(|p| !on_storage || p.vnode == vnode)
                .filter_map(|p| p.exe_ino)
                .collect();
            if !running.is_empty()
                && self
                    .file_identity(&full)
                    .is_some_and(|now| running.contains(&now))
            {
                return err(ETXTBSY);
            }
        }
        // O_NOATIME only by the file's owner or with CAP_FOWNER (EPERM).
        const O_NOATIME: u32 = 0o1000000;
        let fowner = self
            .procs
            .get(&pid)
            .is_none_or(|p| p.cred.capable(pmon::caps::FOWNER));
        if flags & O_NOATIME != 0 && !path_only && !fowner {
            if let (Some(p), Ok(o)) = (self.procs.get(&pid), self.owned_at(&full)) {
                if p.cred.uid.fs != o.uid {
                    return err(EPERM);
                }
            }
        }
        // (Storage's links are `store_open`'s: its stat tells them.)
        if no_follow
            && self
                .tmp_node(&full)
                .is_some_and(|ino| self.tmp.is_symlink(ino))
        {
            return err(if flags & O_EXCL != 0 { EEXIST } else { ELOOP });
        }
        if let Some(kind) = Self::device(name) {
            let file = OpenFile::new(kind, flags & (O_ACCMODE | O_NONBLOCK | O_APPEND));
            return val(self
                .proc_mut(pid)
                .and_then(|pr| pr.fds.install(file, cloexec, 0)));
        }
        match name {
            // Linux opens the file again. A tmpfs file (a memfd) is: its
            // own offset and flags, and O_TRUNC (LTP memfd_create01). For
            // the rest, sharing the open file is what matters (pipes:
            // bash's process substitution).
            Name::Fd(t, n) if t == pid => {
                return match self.fd_file(pid, t, n) {
                    Ok(f) => match f.kind {
                        Kind::Tmp(ino) if !self.tmp.is_fifo(ino) && !self.tmp.is_socket(ino) => {
                            self.tmp_reopen(pid, ino, f.path.clone(), flags, cloexec)
                        }
                        _ => match self.reopen_by_path(pid, &f, flags) {
                            Some(r) => r,
                            None => val(self.dup(pid, n as i64, 0, cloexec)),
                        },
                    },
                    Err(e) => err(e),
                };
            }
            // Another process's: its open file, as pidfd_getfd gives it
            // (a file opened again, as above).
            Name::Fd(t, n) => {
                return match self.fd_file(pid, t, n) {
                    Ok(f) => match f.kind {
                        Kind::Tmp(ino) => self.tmp_reopen(pid, ino, f.path.clone(), flags, cloexec),
                        _ => match self.reopen_by_path(pid, &f, flags) {
                            Some(r) => r,
                            None => val(self
                                .proc_mut(pid)
                                .and_then(|p| p.fds.install(f, cloexec, 0))),
                        },
                    },
                    Err(e) => err(e),
                };
            }
            Name::Ptmx => return self.open_ptmx(pid, flags, cloexec),
            Name::Pts(n) => {
                return match self.pty_numbered(n) {
                    Some(id) => self.open_pty_slave(pid, id, flags, cloexec),
                    None => err(ENOENT),
                }
            }
            // Symbolic links, not followed (O_NOFOLLOW): lookup_follow
            // follows them.
            Name::Exe(_) | Name::Cwd(_) | Name::Root(_) => return err(ELOOP),
            // /proc/self is a symbolic link to /proc/PID.
            Name::SelfDir if no_follow => return err(ELOOP),
            Name::ProcDir(p) if !self.sees_process(pid, p) => return err(ENOENT),
            Name::SelfDir | Name::ProcDir(_) | Name::TaskDir(_) | Name::Task(..)
                if flags & O_ACCMODE != O_RDONLY || flags & (O_CREAT | O_TRUNC) != 0 =>
            {
                return err(EISDIR)
            }
            Name::SelfDir => return self.open_proc_dir(pid, pid, None, flags, cloexec),
            Name::ProcDir(p) => return self.open_proc_dir(pid, p, None, flags, cloexec),
            Name::TaskDir(p) => return self.open_proc_dir(pid, p, Some(None), flags, cloexec),
            Name::Task(p, t) => return self.open_proc_dir(pid, p, Some(Some(t)), flags, cloexec),
            Name::Hidden => return err(ENOENT),
            Name::FdDir(_) if flags & O_ACCMODE != O_RDONLY || flags & (O_CREAT | O_TRUNC) != 0 => {
                return err(EISDIR)
            }
            Name::FdDir(t) => {
                if let Err(e) = self.reach(pid, t) {
                    return err(e);
                }
                return self.open_fd_dir(pid, t, flags, cloexec, false);
            }
            Name::FdInfoDir(_)
                if flags & O_ACCMODE != O_RDONLY || flags & (O_CREAT | O_TRUNC) != 0 =>
            {
                return err(EISDIR)
            }
            Name::FdInfoDir(t) => {
                if let Err(e) = self.reach(pid, t) {
                    return err(e);
                }
                return self.open_fd_dir(pid, t, flags, cloexec, true);
            }
            Name::FdInfo(..)
                if flags & O_ACCMODE != O_RDONLY || flags & (O_CREAT | O_TRUNC) != 0 =>
            {
                return err(EACCES)
            }
            Name::FdInfo(t, n) => {
                let data = match self.fd_file(pid, t, n) {
                    Ok(f) => self.fdinfo(t, n, &f),
                    Err(e) => return err(e),
                };
                let file = OpenFile::generated(full, data);
                return val(self
                    .proc_mut(pid)
                    .and_then(|pr| pr.fds.install(file, cloexec, 0)));
            }
            Name::Proc(p, file) | Name::TaskFile(p, _, file)
                if (flags & O_ACCMODE != O_RDONLY || flags & (O_CREAT | O_TRUNC) != 0)
                    && !(file.writable() && self.may_write_proc(pid, p)) =>
            {
                return err(EACCES)
            }
            Name::Proc(p, file) | Name::TaskFile(p, _, file) => {
                let tid = match name {
                    Name::TaskFile(_, t, _) => t,
                    _ => p,
                };
                let data = match self.proc_file(pid, p, tid, file) {
                    Ok(d) => d,
                    Err(e) => return err(e),
                };
                let file = OpenFile::generated(full, data);
                file.flags.set(flags & O_ACCMODE);
                return val(self
                    .proc_mut(pid)
                    .and_then(|pr| pr.fds.install(file, cloexec, 0)));
            }
            n if n.is_generated() => {
                if flags & O_ACCMODE != O_RDONLY || flags & (O_CREAT | O_TRUNC) != 0 {
                    return err(EACCES);
                }
                let data = match name {
                    Name::Maps(t, which) => {
                        match self.reach(pid, t).and_then(|()| self.maps_of(t, which)) {
                            Ok(d) => d,
                            Err(e) => return err(e),
                        }
                    }
                    Name::MemInfo => match self.memory_of(pid) {
                        Ok((total, free)) => pmon::procfs::meminfo(total, free),
                        Err(e) => return err(e),
                    },
                    Name::LoadAvg => {
                        let running = self.running_threads(true);
                        self.sample_load(true);
                        let last = self.ids.last();
                        self.load.text(running, self.threads.len() as u64, last)
                    }
                    Name::Uptime => {
                        let idle = self.cpus.iter().map(|c| c.idle_ns).sum();
                        pmon::procfs::uptime(self.now_ns(), idle)
                    }
                    Name::Stat => {
                        let up_ns = self.now_ns();
                        let cpus: Vec<_> = self
                            .cpus
                            .iter()
                            .map(|c| pmon::procfs::CpuTimes {
                                user_ns: self.cycles_ns(c.user_cycles),
                                idle_ns: c.idle_ns,
                                up_ns,
                            })
                            .collect();
                        let running = self.running_threads(true);
                        let counts = pmon::procfs::StatCounts {
                            // Rounded once, so that it does not move.
                            btime: self.realtime_ns().saturating_sub(up_ns) / 1_000_000_000,
                            ctxt: self.cpus.iter().map(|c| c.switches).sum(),
                            forks: self.forks,
                            running,
                        };
                        pmon::procfs::stat_file(&cpus, &counts)
                    }
                    Name::CpuInfo => match host::slurp(b"/proc/cpuinfo", 1 << 22) {
                        Ok(text) => pmon::procfs::cpuinfo(&text, self.cpus.len() as u32),
                        Err(e) => return err(e),
                    },
                    Name::Mounts => match host::slurp(b"/proc/mounts", 1 << 22) {
                        Ok(text) => pmon::procfs::mounts(&text, self.storage),
                        Err(e) => return err(e),
                    },
                    Name::MountInfo => match host::slurp(b"/proc/mounts", 1 << 22) {
                        Ok(text) => {
                            let storage = self.storage;
                            // What stat gives at each mount point: the
                            // tmpfs's and storage's own devices, else the
                            // host's.
                            let dev = |at: &[u8]| match at {
                                b"/tmp" | b"/dev/shm" => 0xfa,
                                b"/" if storage => 0xfb,
                                _ => host::stat_path(at, true).map_or(0, |st| st.dev),
                            };
                            pmon::procfs::mountinfo(&pmon::procfs::mounts(&text, storage), dev)
                        }
                        Err(e) => return err(e),
                    },
                    Name::Net(f) => self.proc_net(f),
                    Name::SysvIpc(f) => self.proc_sysvipc(f),
                    Name::UtsName(which) => {
                        let mut name = self.uts_name(pid, which).to_vec();
                        name.push(b'\n');
                        name
                    }
                    _ => pmon::procfs::cpu_list(self.cpus.len() as u32),
                };
                let file = OpenFile::generated(full, data);
                return val(self
                    .proc_mut(pid)
                    .and_then(|pr| pr.fds.install(file, cloexec, 0)));
            }
            _ => {}
        }
        // O_CREAT by a process without CAP_DAC_OVERRIDE: a new name needs
        // write and search permission on its directory; a file there (bar
        // O_EXCL's EEXIST) its own bits, asked here, before storage's
        // create, which truncates in the same request (a link on storage:
        // its target's; O_NOFOLLOW's ELOOP comes later). One look at the
        // name serves both.
        if flags & O_CREAT != 0 && !self.overrides(pid) {
            let checked = match self.owner_of_name(&full) {
                None => self.may_change_in(pid, &full, None),
                Some(f) if flags & O_EXCL == 0 => {
                    let f = if f.mode & 0o170000 != 0o120000 {
                        Some(f)
                    } else if flags & O_NOFOLLOW == 0 {
                        crate::kernel::store::stat(&full, true)
                            .ok()
                            .map(|st| pmon::cred::Owned::from(&st))
                    } else {
                        None
                    };
                    f.map_or(Ok(()), |f| self.may(pid, f, open_wants(flags)))
                }
                Some(_) => Ok(()),
            };
            if let Err(e) = checked {
                return err(e);
            }
        }
        if let Some(r) = self.tmp_open(pid, &full, flags, mode, cloexec) {
            return r;
        }
        let looks = flags & O_ACCMODE == O_RDONLY && flags & (O_CREAT | O_TRUNC) == 0;
        let stored = if looks {
            self.on_storage_to_look(&full)
        } else {
            self.on_storage(&full)
        };
        if stored {
            if !looks && flags & O_PATH == 0 {
                let up = super::store::CopyUp::Open {
                    exclusive: flags & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL,
                    trunc: flags & O_TRUNC != 0,
                };
                if let Err(e) = self.store_copy_up(&full, up) {
                    return err(e);
                }
            }
            let opened = self.store_open(pid, full.clone(), flags, mode, cloexec);
            if matches!(opened, Ret::Val(v) if v == -ENOENT) {
                if let Some(to) = self.storage_leads_to(pid, &full, !no_follow) {
                    let again =
                        |k: &mut Self, to: &[u8]| Ok(k.open_path(pid, AT_FDCWD, to, flags, mode));
                    return self.leaving_storage(&to, again).unwrap_or_else(err);
                }
            }
            return opened;
        }
        // The host's files, read-only until storage serves files. As in
        // Linux's do_open and may_open: O_CREAT on an existing name is
        // EEXIST with O_EXCL, EISDIR for a directory, and otherwise opens
        // it (flock(1) opens its lock file so); only a write, a truncate
        // or a new name is the file system's EROFS.
        let writes = flags & O_ACCMODE != O_RDONLY || flags & O_TRUNC != 0;
        if writes || flags & O_CREAT != 0 {
            let exclusive = flags & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL;
            match host::stat_path(&full, !exclusive) {
                Ok(_) if exclusive => return err(EEXIST),
                Ok(st) if st.mode & 0o170000 == 0o040000 => return err(EISDIR),
                Ok(_) if writes => return err(EROFS),
                Ok(_) => {}
                Err(ENOENT) if flags & O_CREAT != 0 => return err(self.cannot_make(&full)),
                Err(e) => return err(e),
            }
        }
        use lego_proto::program::{ELSEWHERE, OPEN_READ, OPEN_SAY_ELSEWHERE};
        let (handle, st) = match host::open_as(&full, OPEN_READ | OPEN_SAY_ELSEWHERE) {
            Ok(v) => v,
            // A link of the host's leads into /proc, /sys, /dev or /tmp:
            // what is there is Lego's (/etc/mtab, a link to /proc/mounts,
            // lists Lego's mounts). The target is in one of those trees,
            // which the VMM never answers so: this recurses once.
            Err(e) if e == ELSEWHERE as i64 => {
                return match pmon::path::leaves_host(&full, |l| host::readlink(l).ok()) {
                    Some(to) => self.open_path(pid, AT_FDCWD, &to, flags, mode),
                    // Changed on the host meanwhile.
                    None => err(ENOENT),
                };
            }
            Err(e) => return err(e),
        };
        let is_dir = st.mode & 0o170000 == 0o040000;
        if flags & O_DIRECTORY != 0 && !is_dir {
            host::close(handle);
            return err(ENOTDIR);
        }
        if !path_only && !self.overrides(pid) {
            if let Err(e) = self.may(pid, pmon::cred::Owned::from(&st), open_wants(flags)) {
                host::close(handle);
                return err(e);
            }
        }
        let kind = if is_dir {
            Kind::HostDir(handle)
        } else {
            Kind::Host(handle)
        };
        let file = OpenFile::with_path(kind, flags & (O_ACCMODE | O_NONBLOCK | O_APPEND), full);
        self.install_host(pid, handle, file, cloexec)
    }

    /// An open of /proc/self/fd/N (or /dev/stdin, /proc/PID/fd/N) whose
    /// file is the host's or storage's: the file opened again by its path,
    /// as Linux opens it again, with its own offset, the new flags and
    /// O_TRUNC (`cat /dev/fd/3` reads from the start; a descriptor opened
    /// O_PATH is reopened to read, as systemd and runc do). None where
    /// sharing the open file is what Linux's reopen amounts to (pipes,
    /// sockets, devices, stdio) or the path no longer leads to the file
    /// (a storage file unlinked or renamed by another processor): the
    /// caller shares it then.
    fn reopen_by_path(&mut self, pid: Pid, f: &OpenFile, flags: u32) -> Option<Ret> {
        let same = |k: &Kind| match (f.kind, *k) {
            (Kind::Store(a) | Kind::StoreDir(a), Kind::Store(b) | Kind::StoreDir(b)) => a == b,
            // The host's files do not change under Lego.
            (Kind::Host(_) | Kind::HostDir(_), Kind::Host(_) | Kind::HostDir(_)) => true,
            _ => false,
        };
        if !same(&f.kind) || f.path.is_empty() {
            return None;
        }
        let shown = self.shown(pid, &f.path);
        match self.open_path(pid, AT_FDCWD, &shown, flags, 0) {
            Ret::Val(fd) if fd >= 0 => match self.file(pid, fd) {
                Ok(new) if same(&new.kind) => Some(Ret::Val(fd)),
                _ => {
                    let _ = self.sys_close(pid, fd);
                    None
                }
            },
            Ret::Val(e) if e == -ENOENT => None,
            r => Some(r),
        }
    }

    /// A descriptor for `file`, open on the host as `handle` (closed
    /// there when no descriptor is left for it).
    pub(super) fn install_host(
        &mut self,
        pid: Pid,
        handle: u32,
        file: Arc<OpenFile>,
        cloexec: bool,
    ) -> Ret {
        match self
            .proc_mut(pid)
            .and_then(|pr| pr.fds.install(file, cloexec, 0))
        {
            Ok(fd) => Ret::Val(fd),
            Err(e) => {
                host::close(handle);
                err(e)
            }
        }
    }

    /// EACCES unless process `pid` may `want` (`pmon::cred`'s MAY_ bits)
    /// of a file owned as `f`, by its file-system ids and capabilities.
    pub(in crate::kernel) fn may(
        &self,
        pid: Pid,
        f: pmon::cred::Owned,
        want: u32,
    ) -> Result<(), Errno> {
        match self.procs.get(&pid) {
            Some(p) if !p.cred.may_access(&p.groups, f, want) => Err(EACCES),
            _ => Ok(()),
        }
    }

    /// Whether `pid` passes any read or write check without a look at the
    /// file (CAP_DAC_OVERRIDE): root, the usual caller, asks nothing more.
    pub(in crate::kernel) fn overrides(&self, pid: Pid) -> bool {
        self.procs
            .get(&pid)
            .is_none_or(|p| p.cred.capable(pmon::caps::DAC_OVERRIDE))
    }

    pub(super) fn sys_access(&mut self, pid: Pid, dirfd: i64, path: u64, mode: u64) -> Ret {
        if mode & !0o7 != 0 {
            return err(EINVAL);
        }
        match self
            .space_mut(pid)
            .and_then(|s| uaccess::read_cstr(s, path, pmon::path::PATH_MAX - 1))
        {
            Ok(p) => self.access_path(pid, dirfd, &p, mode),
            Err(e) => err(e),
        }
    }

    /// access of path `p` (`mode` checked).
    fn access_path(&mut self, pid: Pid, dirfd: i64, p: &[u8], mode: u64) -> Ret {
        const W_OK: u64 = 2;
        const X_OK: u64 = 1;
        let (full, name) = match self.lookup_follow(pid, dirfd, p) {
            Ok(v) => v,
            Err(e) => return err(e),
        };
        let full = match name {
            Name::Null | Name::Zero | Name::Full | Name::Urandom | Name::Ptmx => {
                return Ret::Val(0)
            }
            Name::Pts(n) => return val(self.pty_numbered(n).map(|_| 0).ok_or(ENOENT)),
            Name::Fd(t, n) => return val(self.fd_file(pid, t, n).map(|_| 0)),
            Name::Hidden => return err(ENOENT),
            // (Followed by lookup_follow.)
            Name::Exe(_) | Name::Cwd(_) | Name::Root(_) => return err(ENOENT),
            Name::SelfDir => b"/proc/self".to_vec(),
            Name::FdInfo(t, n) if mode & X_OK != 0 => {
                return val(self.fd_file(pid, t, n).and(Err(EACCES)))
            }
            Name::FdInfo(t, n) => return val(self.fd_file(pid, t, n).map(|_| 0)),
            Name::Maps(t, _) | Name::FdDir(t) | Name::FdInfoDir(t) if t != pid => {
                return val(self.reach(pid, t).map(|()| 0))
            }
            Name::Maps(..)
            | Name::CpuList
            | Name::MemInfo
            | Name::Uptime
            | Name::LoadAvg
            | Name::Stat
            | Name::CpuInfo
            | Name::Mounts
            | Name::MountInfo
            | Name::Net(_)
            | Name::SysvIpc(_)
            | Name::UtsName(_) => {
                return if mode & X_OK != 0 {
                    err(EACCES)
                } else {
                    Ret::Val(0)
                }
            }
            Name::Proc(p, _) | Name::ProcDir(p) if !self.sees_process(pid, p) => {
                return err(ENOENT)
            }
            Name::Proc(..) | Name::TaskFile(..) if mode & X_OK != 0 => return err(EACCES),
            Name::Proc(..)
            | Name::ProcDir(_)
            | Name::FdDir(_)
            | Name::FdInfoDir(_)
            | Name::TaskDir(_)
            | Name::Task(..)
            | Name::TaskFile(..) => return Ret::Val(0),
            Name::Host => full,
        };
        // "name/" is a directory's, as in stat.
        if ends_in_slash(p) {
            match self.stat_path_of(pid, dirfd, p, true) {
                Ok(st) if !stat_is_dir(&st) => return err(ENOTDIR),
                Ok(_) => {}
                Err(e) => return err(e),
            }
        }
        // The file's bits as the caller's real ids and their capabilities
        // let it (`Cred::for_access`): root may read and write anything
        // and execute what has an execute bit.
        let allowed = |k: &Self, f: pmon::cred::Owned| match k.procs.get(&pid) {
            Some(p) if !p.cred.for_access().may_access(&p.groups, f, mode as u32) => err(EACCES),
            _ => Ret::Val(0),
        };
        if let Some(ino) = self.tmp_node(&full) {
            return match self.tmp.stat(ino) {
                Ok(st) => allowed(self, pmon::cred::Owned::from(&st)),
                Err(e) => err(e),
            };
        }
        if self.on_storage_to_look(&full) {
            return match crate::kernel::store::stat(&full, true) {
                Ok(st) => allowed(self, pmon::cred::Owned::from(&st)),
                Err(ENOENT) => match self.storage_leads_to(pid, &full, true) {
                    Some(to) => {
                        let again =
                            |k: &mut Self, to: &[u8]| Ok(k.access_path(pid, AT_FDCWD, to, mode));
                        self.leaving_storage(&to, again).unwrap_or_else(err)
                    }
                    None => err(ENOENT),
                },
                Err(e) => err(e),
            };
        }
        // A host file that shows through /tmp is writable there: a write
        // copies it up (`tmp_copy_up`), as overlayfs answers access for a
        // lower file. stress-ng refused a `--temp-path` in the host's /tmp.
        // So does one of the host's installation shown where storage
        // lacks it (`store_copy_up`), but for the libraries, which stay
        // the host's (EROFS).
        let copies_up = tmp::below_tmp(&full).is_some()
            || (self.storage
                && pmon::path::shown_from_host(&full)
                && !pmon::path::system_library(&full));
        match host::stat_path(&full, true) {
            Ok(_) if mode & W_OK != 0 && !copies_up => err(EROFS),
            Ok(st) => allowed(self, pmon::cred::Owned::from(&st)),
            Err(e) => err(e),
        }
    }

    /// faccessat2 with AT_SYMLINK_NOFOLLOW (a symbolic link answers for
    /// itself: it exists, and its bits are all set) or AT_EMPTY_PATH (the
    /// file `dirfd` is open on). Before, the flags were checked and then
    /// not looked at: a link to a missing file was ENOENT.
    pub(super) fn sys_access_at(
        &mut self,
        pid: Pid,
        dirfd: i64,
        path: u64,
        mode: u64,
        flags: u64,
    ) -> Ret {
        const W_OK: u64 = 2;
        const X_OK: u64 = 1;
        if mode & !0o7 != 0 {
            return err(EINVAL);
        }
        let p = if path == 0 && flags & AT_EMPTY_PATH != 0 {
            Vec::new()
        } else {
            match self
                .space_mut(pid)
                .and_then(|s| uaccess::read_cstr(s, path, pmon::path::PATH_MAX - 1))
            {
                Ok(p) => p,
                Err(e) => return err(e),
            }
        };
        // Written where the file is the host's: its file systems are
        // read-only here.
        let (st, host) = if p.is_empty() {
            if flags & AT_EMPTY_PATH == 0 {
                return err(ENOENT);
            }
            let f = match self.file(pid, dirfd) {
                Ok(f) => f,
                Err(e) => return err(e),
            };
            let host = matches!(f.kind, Kind::Host(_) | Kind::HostDir(_));
            match self.stat_of(&f) {
                Ok(st) => (st, host),
                Err(e) => return err(e),
            }
        } else {
            if flags & AT_SYMLINK_NOFOLLOW == 0 {
                return self.sys_access(pid, dirfd, path, mode);
            }
            let st = match self.stat_path(pid, dirfd, path, AT_SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(e) => return err(e),
            };
            if stat_mode(&st) & 0o170000 != 0o120000 {
                return self.sys_access(pid, dirfd, path, mode);
            }
            let host = match self.lookup(pid, dirfd, &p) {
                Ok((full, Name::Host)) => {
                    self.tmp_node(&full).is_none()
                        && !self.on_storage(&full)
                        && tmp::below_tmp(&full).is_none()
                }
                Ok(_) => false,
                Err(e) => return err(e),
            };
            (st, host)
        };
        if mode & W_OK != 0 && host {
            return err(EROFS);
        }
        if mode & X_OK != 0 && stat_mode(&st) & 0o111 == 0 {
            return err(EACCES);
        }
        Ret::Val(0)
    }

    pub(super) fn sys_readlink(
        &mut self,
        pid: Pid,
        dirfd: i64,
        path: u64,
        buf: u64,
        size: usize,
    ) -> Ret {
        let p = match self
            .space_mut(pid)
            .and_then(|s| uaccess::read_cstr(s, path, pmon::path::PATH_MAX - 1))
        {
            Ok(p) => p,
            Err(e) => return err(e),
        };
        if size == 0 {
            return err(EINVAL);
        }
        // An empty path: the symbolic link an O_PATH descriptor names.
        let p = if p.is_empty() {
            // (The working directory is no link: ENOENT, as Linux.)
            if dirfd == AT_FDCWD {
                return err(ENOENT);
            }
            match self.file(pid, dirfd) {
                Ok(f) if f.flags.get() & O_PATH != 0 && !f.path.is_empty() => f.path.clone(),
                Ok(_) => return err(ENOENT),
                Err(e) => return err(e),
            }
        } else {
            p
        };
        let target = match self.link_at(pid, dirfd, &p) {
            Ok(t) => t,
            Err(e) => return err(e),
        };
        let n = target.len().min(size);
        val(self
            .space_mut(pid)
            .and_then(|s| uaccess::write(s, buf, &target[..n]).map(|_| n as i64)))
    }

    /// readlink of path `p`: the target.
    fn link_at(&mut self, pid: Pid, dirfd: i64, p: &[u8]) -> Result<Vec<u8>, Errno> {
        let (full, name) = self.lookup(pid, dirfd, p)?;
        if let Some(target) = pmon::path::descriptor_link(&full) {
            return Ok(target.to_vec());
        }
        Ok(match name {
            Name::Exe(_) | Name::Cwd(_) | Name::Root(_) => self.link_target(pid, name)?,
            Name::SelfDir if full == b"/proc/thread-self" => {
                alloc::format!("{pid}/task/{}", self.caller).into_bytes()
            }
            Name::SelfDir => alloc::format!("{pid}").into_bytes(),
            Name::Fd(t, n) => Self::describe(&*self.fd_file(pid, t, n)?),
            Name::Hidden => return Err(ENOENT),
            Name::Null
            | Name::Zero
            | Name::Full
            | Name::Urandom
            | Name::Ptmx
            | Name::Pts(_)
            | Name::Maps(..)
            | Name::CpuList
            | Name::MemInfo
            | Name::Uptime
            | Name::LoadAvg
            | Name::Stat
            | Name::CpuInfo
            | Name::Mounts
            | Name::MountInfo
            | Name::Net(_)
            | Name::SysvIpc(_)
            | Name::UtsName(_)
            | Name::Proc(..)
            | Name::ProcDir(_)
            | Name::TaskDir(_)
            | Name::Task(..)
            | Name::TaskFile(..)
            | Name::FdDir(_)
            | Name::FdInfoDir(_) => return Err(EINVAL),
            Name::FdInfo(t, n) => {
                return Err(self.fd_file(pid, t, n).err().unwrap_or(EINVAL));
            }
            Name::Host if self.tmp_node(&full).is_some() => {
                match self
                    .tmp_node(&full)
                    .map(|ino| self.tmp.readlink(ino).map(<[u8]>::to_vec))
                {
                    Some(Ok(t)) => t,
                    _ => return Err(EINVAL),
                }
            }
            Name::Host if self.on_storage_to_look(&full) => match self.store_readlink(&full) {
                Err(ENOENT) => match self.storage_leads_to(pid, &full, false) {
                    Some(to) => self.leaving_storage(&to, |k, to| k.link_at(pid, AT_FDCWD, to))?,
                    None => return Err(ENOENT),
                },
                r => r?,
            },
            Name::Host => host::readlink(&full)?,
        })
    }
}
