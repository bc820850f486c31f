//! What a file is: stat, fstat, newfstatat, statx, statfs and fstatfs,
//! and the /proc files whose contents describe one (maps, the exe link).

use super::*;

impl Kernel {
    /// statfs and fstatfs: the tmpfs's, or the host file system's marked
    /// read-only (as Lego sees it); pipes, epoll and eventfds get their
    /// pseudo file systems' magic numbers.
    pub(super) fn sys_statfs(&mut self, pid: Pid, path: Option<u64>, fd: i64, buf: u64) -> Ret {
        const ST_RDONLY: u64 = 1;
        let host_of = |p: &[u8]| {
            host::statfs(p).map(|mut w| {
                w[10] |= ST_RDONLY;
                w
            })
        };
        let pseudo = |magic: u64| {
            let mut w = [0u64; 15];
            (w[0], w[1], w[8], w[9]) = (magic, 4096, 255, 4096);
            w
        };
        let words = match path {
            Some(p) => match self.path_arg(pid, AT_FDCWD, p) {
                Ok(full) => self.statfs_at(pid, &full, host_of, pseudo),
                Err(e) => Err(e),
            },
            None => match self.file(pid, fd) {
                Ok(f) => self.statfs_of(&f, host_of, pseudo),
                Err(e) => Err(e),
            },
        };
        match words {
            Ok(w) => {
                let bytes: Vec<u8> = w.iter().flat_map(|x| x.to_le_bytes()).collect();
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write(s, buf, &bytes).map(|_| 0)))
            }
            Err(e) => err(e),
        }
    }

    /// statfs of the resolved path `full`.
    fn statfs_at(
        &mut self,
        pid: Pid,
        full: &[u8],
        host_of: impl Fn(&[u8]) -> Result<[u64; 15], Errno> + Copy,
        pseudo: impl Fn(u64) -> [u64; 15] + Copy,
    ) -> Result<[u64; 15], Errno> {
        // (/proc/PID/{exe,cwd,root} are followed.)
        let (full, name) = self.lookup_follow(pid, AT_FDCWD, &self.shown(pid, full))?;
        match name {
            Name::Hidden => Err(ENOENT),
            Name::Fd(t, n) => self
                .fd_file(pid, t, n)
                .and_then(|f| self.statfs_of(&f, host_of, pseudo)),
            Name::Maps(..)
            | Name::MemInfo
            | Name::SelfDir
            | Name::FdDir(_)
            | Name::FdInfoDir(_)
            | Name::FdInfo(..)
            | Name::Proc(..)
            | Name::ProcDir(_)
            | Name::TaskDir(_)
            | Name::Task(..)
            | Name::TaskFile(..) => host_of(b"/proc"),
            _ if self.tmp_node(&full).is_some() => Ok(self.tmp_statfs()),
            // The name must be there (ENOENT, ENOTDIR) as on Linux; past
            // storage's links that lead off it, the file system reached.
            _ if self.on_storage(&full) => match crate::kernel::store::stat(&full, true) {
                Ok(_) => self.store_statfs(),
                Err(ENOENT) => match self.storage_leads_to(pid, &full, true) {
                    Some(to) => self.leaving_storage(&to, |k, to| {
                        let to = k.resolve(pid, AT_FDCWD, to)?;
                        k.statfs_at(pid, &to, host_of, pseudo)
                    }),
                    // A name of the host's installation storage lacks
                    // shows through storage's root, whose file system it
                    // is in (`df /etc/passwd` is `df /`).
                    None if pmon::path::shown_from_host(&full)
                        && host::stat_path(&full, true).is_ok() =>
                    {
                        self.store_statfs()
                    }
                    None => Err(ENOENT),
                },
                Err(e) => Err(e),
            },
            _ => host_of(&full),
        }
    }

    pub(super) fn statfs_of(
        &self,
        f: &OpenFile,
        host_of: impl Fn(&[u8]) -> Result<[u64; 15], Errno>,
        pseudo: impl Fn(u64) -> [u64; 15],
    ) -> Result<[u64; 15], Errno> {
        match f.kind {
            Kind::Tmp(_) => Ok(self.tmp_statfs()),
            Kind::Store(_) | Kind::StoreDir(_) => self.store_statfs(),
            Kind::Host(_) | Kind::HostDir(_) => host_of(procpid::on_host(f)),
            Kind::Generated | Kind::ProcDir(..) => host_of(b"/proc"),
            Kind::DevNull | Kind::DevZero | Kind::DevFull | Kind::DevUrandom => host_of(b"/dev"),
            // DEVPTS_SUPER_MAGIC.
            Kind::PtyMaster(_) | Kind::PtySlave(_) => Ok(pseudo(0x1cd1)),
            // PIPEFS_MAGIC and ANON_INODE_FS_MAGIC.
            Kind::PipeRead(_) | Kind::PipeWrite(_) | Kind::Stdio(..) => Ok(pseudo(0x5049_5045)),
            // SOCKFS_MAGIC.
            Kind::Socket(..)
            | Kind::Unix(_)
            | Kind::UnixDgram(_)
            | Kind::Dgram(_)
            | Kind::Netlink(_) => Ok(pseudo(0x534f_434b)),
            Kind::Epoll(_)
            | Kind::EventFd(_)
            | Kind::SignalFd(_)
            | Kind::Inotify(_)
            | Kind::PidFd(..) => Ok(pseudo(0x0904_1934)),
            // MQUEUE_MAGIC.
            Kind::MQueue(_) => Ok(pseudo(0x1980_0202)),
        }
    }

    /// Linux's most bytes one read or write moves (INT_MAX rounded down to
    /// a page).
    pub(super) const MAX_RW_COUNT: usize = 0x7fff_f000;

    /// struct stat for an open file.
    pub(super) fn stat_of(&mut self, f: &Arc<OpenFile>) -> Result<[u8; 144], Errno> {
        let (mode, size, rdev, ino, dev, blksize) = match f.kind {
            Kind::Stdio(n, run) => {
                let st = host::stat(run, n).map_err(|e| -e)?;
                (st.mode, st.size, st.rdev, st.ino, st.dev, st.blksize)
            }
            Kind::PipeRead(id) | Kind::PipeWrite(id) => {
                (S_IFIFO | 0o600, 0, 0, pipe_ino(id), 0xc, 4096)
            }
            // A named pipe opened for reading and writing.
            Kind::Socket(rx, tx) if rx == tx => (S_IFIFO | 0o600, 0, 0, pipe_ino(rx), 0xc, 4096),
            Kind::Socket(id, _)
            | Kind::Unix(id)
            | Kind::UnixDgram(id)
            | Kind::Dgram(id)
            | Kind::Netlink(id) => (0o140777, 0, 0, socket_ino(id), 0x8, 4096),
            Kind::DevNull => (S_IFCHR | 0o666, 0, (1 << 8) | 3, 5, 5, 4096),
            Kind::DevZero => (S_IFCHR | 0o666, 0, (1 << 8) | 5, 6, 5, 4096),
            Kind::DevFull => (S_IFCHR | 0o666, 0, (1 << 8) | 7, 8, 5, 4096),
            Kind::DevUrandom => (S_IFCHR | 0o666, 0, (1 << 8) | 9, 7, 5, 4096),
            Kind::PtyMaster(id) | Kind::PtySlave(id) => {
                let master = matches!(f.kind, Kind::PtyMaster(_));
                let (mode, rdev, ino) = self.pty_stat(id, master);
                let mut st = stat_bytes(mode, 0, rdev, ino, 6, 1024, self.realtime_ns());
                // st_uid and st_gid.
                let (uid, gid) = self.pty_owner(id, master);
                st[28..32].copy_from_slice(&uid.to_le_bytes());
                st[32..36].copy_from_slice(&gid.to_le_bytes());
                return Ok(st);
            }
            // As procfs: a regular file of size 0, read to its end.
            Kind::Generated => (S_IFREG | 0o444, 0, 0, 0x2000, 0x16, 1024),
            // As Linux's mqueue file system: the status line's size.
            Kind::MQueue(id) => {
                let mode = self.mqueues.queues.get(&id).map_or(0, |q| q.mode);
                (S_IFREG | mode, 80, 0, 0x6000 + id as u64, 0x13, 4096)
            }
            // Any process's directory is lego-vmm's own, for its fstat.
            Kind::ProcDir(..) => {
                return host::stat_path(b"/proc/self", true).map(|st| file_stat_bytes(&st));
            }
            Kind::Host(_) | Kind::HostDir(_) => {
                return host::stat_path(procpid::on_host(f), true).map(|st| file_stat_bytes(&st));
            }
            Kind::Tmp(ino) => return self.tmp_stat(ino),
            Kind::Store(ino) | Kind::StoreDir(ino) => return self.store_stat_ino(ino),
            // Anonymous inodes, as Linux's.
            Kind::Epoll(id) | Kind::EventFd(id) | Kind::SignalFd(id) | Kind::Inotify(id) => {
                (0o600, 0, 0, 0x3000 + id as u64, 0xe, 4096)
            }
            // One inode per process, as Linux's pidfs gives (two pidfds of
            // one process compare equal).
            Kind::PidFd(_, started) => (0o600, 0, 0, (1 << 63) | started, 0xe, 4096),
        };
        Ok(stat_bytes(
            mode,
            size,
            rdev,
            ino,
            dev,
            blksize,
            self.realtime_ns(),
        ))
    }

    pub(super) fn sys_fstat(&mut self, pid: Pid, fd: i64, buf: u64) -> Ret {
        let f = match self.file(pid, fd) {
            Ok(f) => f,
            Err(e) => return err(e),
        };
        let st = match self.stat_of(&f) {
            Ok(s) => s,
            Err(e) => return err(e),
        };
        val(self
            .space_mut(pid)
            .and_then(|s| uaccess::write(s, buf, &st).map(|_| 0)))
    }

    /// A path resolved and classified (pmon::path::name): the monitor's
    /// devices and the calling process's /proc and /dev/fd entries are
    /// answered here, the rest by the host.
    pub(super) fn lookup(&self, pid: Pid, dirfd: i64, p: &[u8]) -> Result<(Vec<u8>, Name), Errno> {
        let full = self.resolve(pid, dirfd, p)?;
        let name = self.task_name(pid, pmon::path::name(&full, pid));
        Ok((full, name))
    }

    /// [`Self::lookup`], following the last name if it is a symbolic link
    /// of the tmpfs or /proc/PID/{exe,cwd,root}.
    pub(super) fn lookup_follow(
        &self,
        pid: Pid,
        dirfd: i64,
        p: &[u8],
    ) -> Result<(Vec<u8>, Name), Errno> {
        let full = self.follow(self.resolve(pid, dirfd, p)?)?;
        let name = self.task_name(pid, pmon::path::name(&full, pid));
        match name {
            Name::Exe(_) | Name::Cwd(_) | Name::Root(_) => {
                let to = self.follow(self.link_target(pid, name)?)?;
                let name = self.task_name(pid, pmon::path::name(&to, pid));
                Ok((to, name))
            }
            _ => Ok((full, name)),
        }
    }

    pub(super) fn device(name: Name) -> Option<Kind> {
        match name {
            Name::Null => Some(Kind::DevNull),
            Name::Zero => Some(Kind::DevZero),
            Name::Full => Some(Kind::DevFull),
            Name::Urandom => Some(Kind::DevUrandom),
            _ => None,
        }
    }

    /// (total, free) bytes of the home memory component of process `pid`.
    pub(super) fn memory_of(&mut self, pid: Pid) -> Result<(u64, u64), Errno> {
        let st = self.space_mut(pid)?.home_stats()?;
        Ok((st.frames_total * 4096, st.frames_free * 4096))
    }

    /// /proc/self/maps of process `pid`, as its home lists the mappings now.
    pub(super) fn maps_of(
        &mut self,
        pid: Pid,
        which: pmon::path::MapsFile,
    ) -> Result<Vec<u8>, Errno> {
        let exe = self.exe_of(pid);
        let space = self.space_mut(pid)?;
        // Cut where locking starts or ends, as Linux's VMAs are.
        let vmas: Vec<lego_proto::memory::VmaEntry> = space
            .maps()?
            .into_iter()
            .flat_map(|v| {
                space
                    .locked
                    .pieces(v.start, v.end)
                    .into_iter()
                    .map(move |(start, end)| lego_proto::memory::VmaEntry { start, end, ..v })
            })
            .collect();
        let pieces: Vec<pmon::anon::Piece> =
            self.space_mut(pid)?.redirects.pieces().copied().collect();
        // Named as Linux names them: a System V segment, or anonymous
        // memory (an object with no file); a file's mapping is not named.
        let shared: Vec<(u64, u64, Option<Vec<u8>>)> = pieces
            .iter()
            .map(|p| {
                let anonymous = self
                    .anon
                    .as_ref()
                    .and_then(|h| h.objects.get(&p.object))
                    .is_some_and(|o| o.file.is_none());
                let name = self
                    .segment_name(p.object)
                    .or_else(|| anonymous.then(|| b"/dev/zero (deleted)".to_vec()));
                (p.start, p.end, name)
            })
            .collect();
        let space = self.space_mut(pid)?;
        let maps = pmon::procfs::maps(&vmas, &space.layout, space.brk, &exe, &shared);
        let locked = |start, end| space.locked.within(start, end);
        Ok(match which {
            pmon::path::MapsFile::Maps => maps,
            pmon::path::MapsFile::Smaps => pmon::procfs::smaps(&maps, locked, false),
            pmon::path::MapsFile::Rollup => pmon::procfs::smaps(&maps, locked, true),
        })
    }

    /// The program process `pid` runs, as an absolute path.
    pub(super) fn exe_of(&self, pid: Pid) -> Vec<u8> {
        self.procs
            .get(&pid)
            .map(|pr| pmon::path::resolve(&pr.cwd, &pr.exe))
            .unwrap_or_default()
    }

    /// What readlink of /proc/self/fd/N says of a descriptor's file.
    pub(super) fn describe(f: &OpenFile) -> Vec<u8> {
        match f.kind {
            Kind::Host(_)
            | Kind::HostDir(_)
            | Kind::Generated
            | Kind::Store(_)
            | Kind::StoreDir(_)
            | Kind::PtyMaster(_)
            | Kind::PtySlave(_) => f.path.clone(),
            Kind::Tmp(_) => pmon::path::dev_shm_shown(f.path.clone()),
            // The numbers fstat gives, as Linux's links name the inode.
            Kind::PipeRead(id) | Kind::PipeWrite(id) => {
                alloc::format!("pipe:[{}]", pipe_ino(id)).into_bytes()
            }
            Kind::Socket(rx, tx) if rx == tx => {
                alloc::format!("pipe:[{}]", pipe_ino(rx)).into_bytes()
            }
            Kind::Socket(id, _)
            | Kind::Unix(id)
            | Kind::UnixDgram(id)
            | Kind::Dgram(id)
            | Kind::Netlink(id) => alloc::format!("socket:[{}]", socket_ino(id)).into_bytes(),
            Kind::DevNull => b"/dev/null".to_vec(),
            Kind::DevZero => b"/dev/zero".to_vec(),
            Kind::DevFull => b"/dev/full".to_vec(),
            Kind::DevUrandom => b"/dev/urandom".to_vec(),
            Kind::Epoll(_) => b"anon_inode:[eventpoll]".to_vec(),
            Kind::EventFd(_) => b"anon_inode:[eventfd]".to_vec(),
            Kind::SignalFd(_) => b"anon_inode:[signalfd]".to_vec(),
            Kind::Inotify(_) => b"anon_inode:inotify".to_vec(),
            Kind::PidFd(..) => b"anon_inode:[pidfd]".to_vec(),
            Kind::MQueue(_) => f.path.clone(),
            // /proc/PID, or its task directory or a thread's in it.
            Kind::ProcDir(..) => f.path.clone(),
            // lego-vmm's own stdio: the host's name of it (`pipe:[N]`, a
            // terminal, a file), as readlink -f /dev/stdin finds on Linux.
            // A run's (a connection) has none to give.
            Kind::Stdio(n, 0) => host::readlink(alloc::format!("/proc/self/fd/{n}").as_bytes())
                .unwrap_or_else(|_| alloc::format!("/dev/lego-stdio/{n}").into_bytes()),
            Kind::Stdio(n, _) => alloc::format!("/dev/lego-stdio/{n}").into_bytes(),
        }
    }

    /// struct stat of a path (a device, the program itself, or a host file).
    pub(super) fn stat_path(
        &mut self,
        pid: Pid,
        dirfd: i64,
        path: u64,
        flags: u64,
    ) -> Result<[u8; 144], Errno> {
        // A null path with AT_EMPTY_PATH is the descriptor's, as since
        // Linux 6.11.
        let p = if path == 0 && flags & AT_EMPTY_PATH != 0 {
            Vec::new()
        } else {
            uaccess::read_cstr(self.space_mut(pid)?, path, pmon::path::PATH_MAX - 1)?
        };
        if p.is_empty() {
            if flags & AT_EMPTY_PATH == 0 {
                return Err(ENOENT);
            }
            let f = self.file(pid, dirfd)?;
            return self.stat_of(&f);
        }
        // "name/" names a directory (through a symlink): anything else
        // is ENOTDIR, as Linux.
        if ends_in_slash(&p) {
            let st = self.stat_path_of(pid, dirfd, &p, true)?;
            if !stat_is_dir(&st) {
                return Err(ENOTDIR);
            }
            return Ok(st);
        }
        self.stat_path_of(pid, dirfd, &p, flags & AT_SYMLINK_NOFOLLOW == 0)
    }

    pub(super) fn stat_path_of(
        &mut self,
        pid: Pid,
        dirfd: i64,
        p: &[u8],
        follow: bool,
    ) -> Result<[u8; 144], Errno> {
        let (full, name) = if follow {
            self.lookup_follow(pid, dirfd, p)?
        } else {
            self.lookup(pid, dirfd, p)?
        };
        if let Some(kind) = Self::device(name) {
            return self.stat_of(&OpenFile::new(kind, O_RDWR));
        }
        // lstat of /dev/stdin, /dev/fd and the like: Linux's links.
        if let (false, Some(target)) = (follow, pmon::path::descriptor_link(&full)) {
            let mut st = host::stat_path(b"/proc/self/exe", false)?;
            st.mode = 0o120777;
            st.size = target.len() as u64;
            return Ok(file_stat_bytes(&st));
        }
        let st = match name {
            Name::Fd(t, n) => {
                let f = self.fd_file(pid, t, n)?;
                // /dev/fd/N is /proc/self/fd/N.
                if follow || !(full.starts_with(b"/proc/") || full.starts_with(b"/dev/fd/")) {
                    return self.stat_of(&f);
                }
                // lstat of /proc/PID/fd/N: the link, its permission bits
                // the descriptor's access (lr-x, l-wx or lrwx), as Linux.
                let mut st = host::stat_path(b"/proc/self/exe", false)?;
                let access = f.flags.get() & O_ACCMODE;
                st.mode = 0o120000
                    | if access != O_WRONLY { 0o500 } else { 0o100 }
                    | if access != O_RDONLY { 0o200 } else { 0 };
                st.size = 64;
                st
            }
            Name::Ptmx => return self.stat_of(&OpenFile::new(Kind::PtyMaster(usize::MAX), 0)),
            Name::Pts(n) => {
                let id = self.pty_numbered(n).ok_or(ENOENT)?;
                return self.stat_of(&OpenFile::new(Kind::PtySlave(id), 0));
            }
            // Not followed (lookup_follow follows them): the links.
            Name::Exe(_) | Name::Cwd(_) | Name::Root(_) => {
                self.link_target(pid, name)?;
                host::stat_path(b"/proc/self/exe", false)?
            }
            Name::SelfDir => host::stat_path(b"/proc/self", follow)?,
            Name::FdDir(t) | Name::FdInfoDir(t) => {
                self.reach(pid, t)?;
                host::stat_path(FD_DIR, true)?
            }
            Name::FdInfo(t, n) => {
                self.fd_file(pid, t, n)?;
                return self.stat_of(&OpenFile::generated(full, Vec::new()));
            }
            Name::Maps(t, _) => {
                self.reach(pid, t)?;
                return self.stat_of(&OpenFile::generated(full, Vec::new()));
            }
            n if n.is_generated() => {
                return self.stat_of(&OpenFile::generated(full, Vec::new()));
            }
            Name::Proc(p, _) if self.sees_process(pid, p) => {
                return self.stat_of(&OpenFile::generated(full, Vec::new()));
            }
            Name::ProcDir(p) if self.sees_process(pid, p) => host::stat_path(b"/proc/self", true)?,
            Name::Proc(..) | Name::ProcDir(_) => return Err(ENOENT),
            // (Checked by `task_name`.)
            Name::TaskDir(_) | Name::Task(..) => host::stat_path(b"/proc/self", true)?,
            Name::TaskFile(..) => return self.stat_of(&OpenFile::generated(full, Vec::new())),
            Name::Hidden => return Err(ENOENT),
            _ if self.on_storage_to_look(&full) => {
                return match self.store_stat_path(&full, follow) {
                    Err(ENOENT) => match self.storage_leads_to(pid, &full, follow) {
                        Some(to) => self.leaving_storage(&to, |k, to| {
                            k.stat_path_of(pid, AT_FDCWD, to, follow)
                        }),
                        None => Err(ENOENT),
                    },
                    r => r,
                }
            }
            _ => match self.tmp_node(&full) {
                Some(ino) => return self.tmp_stat(ino),
                None => host::stat_path(&full, follow)?,
            },
        };
        Ok(file_stat_bytes(&st))
    }

    /// The extended-attribute calls, on a file system that keeps none:
    /// the file must exist (ENOENT, EBADF as Linux), a get or remove finds
    /// no attribute (ENODATA), a list is empty, a set is refused
    /// (EOPNOTSUPP, as a file system without them answers). GNU ls -l
    /// asks for ACLs this way and reports ENOSYS as an error.
    pub(super) fn sys_newfstatat(
        &mut self,
        pid: Pid,
        dirfd: i64,
        path: u64,
        buf: u64,
        flags: u64,
    ) -> Ret {
        const AT_NO_AUTOMOUNT: u64 = 0x800;
        if flags & !(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH) != 0 {
            return err(EINVAL);
        }
        let st = match self.stat_path(pid, dirfd, path, flags) {
            Ok(s) => s,
            Err(e) => return err(e),
        };
        val(self
            .space_mut(pid)
            .and_then(|s| uaccess::write(s, buf, &st).map(|_| 0)))
    }

    pub(super) fn sys_statx(
        &mut self,
        pid: Pid,
        dirfd: i64,
        path: u64,
        flags: u64,
        mask: u64,
        buf: u64,
    ) -> Ret {
        const AT_NO_AUTOMOUNT: u64 = 0x800;
        const AT_STATX_SYNC_TYPE: u64 = 0x6000;
        const STATX_RESERVED: u64 = 0x8000_0000;
        if flags & !(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_STATX_SYNC_TYPE)
            != 0
            || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE
            || mask & STATX_RESERVED != 0
        {
            return err(EINVAL);
        }
        let st = match self.stat_path(pid, dirfd, path, flags) {
            Ok(s) => s,
            Err(e) => return err(e),
        };
        // struct stat -> struct statx (the fields programs read).
        let word = |at: usize| u64::from_le_bytes(st[at..at + 8].try_into().unwrap_or([0; 8]));
        let mode = stat_mode(&st);
        let mut x = [0u8; 256];
        x[0..4].copy_from_slice(&0x7ffu32.to_le_bytes()); // stx_mask: the basic stats
        x[4..8].copy_from_slice(&(word(56) as u32).to_le_bytes()); // blksize
        x[16..20].copy_from_slice(&(word(16) as u32).to_le_bytes()); // nlink
        x[28..30].copy_from_slice(&(mode as u16).to_le_bytes());
        x[32..40].copy_from_slice(&word(8).to_le_bytes()); // ino
        x[40..48].copy_from_slice(&word(48).to_le_bytes()); // size
        x[48..56].copy_from_slice(&word(64).to_le_bytes()); // blocks
                                                            // uid and gid.
        x[20..28].copy_from_slice(&st[28..36]);
        // atime, ctime, mtime: seconds and nanoseconds (btime is not
        // offered: the mask leaves it out).
        for (to, from) in [(64, 72), (96, 104), (112, 88)] {
            x[to..to + 8].copy_from_slice(&word(from).to_le_bytes());
            x[to + 8..to + 12].copy_from_slice(&(word(from + 8) as u32).to_le_bytes());
        }
        // rdev and dev as Linux's old encoding splits them (major above
        // the low 8 bits, minor in them).
        for (to, from) in [(128, 40), (136, 0)] {
            let d = word(from);
            x[to..to + 4].copy_from_slice(&(((d >> 8) & 0xfff) as u32).to_le_bytes());
            x[to + 4..to + 8]
                .copy_from_slice(&(((d & 0xff) | ((d >> 12) & !0xff)) as u32).to_le_bytes());
        }
        val(self
            .space_mut(pid)
            .and_then(|s| uaccess::write(s, buf, &x).map(|_| 0)))
    }
}
