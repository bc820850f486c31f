//! /proc/PID of this processor's processes: stat, status, cmdline and
//! comm for any of them (ps, top, pgrep, pidof and killall read these for
//! each number in /proc), and /proc listed with their numbers in place of
//! the host's; /proc/PID/task lists a process's threads, and
//! /proc/PID/task/TID holds each one's stat, status and comm (`ps -L`,
//! `top -H`, Go's syscall tests reading every thread's ids). Its exe, cwd,
//! root, fd and maps too, for whoever may trace it (Linux's
//! PTRACE_MODE_READ): toybox's ps names a command by its exe and takes a
//! process without one for a kernel thread; lsof reads every fd.
//!
//! Decided: a process's memory lives at its memory component, so its
//! VmSize is its mappings' total (asked of its home) and VmRSS what it
//! locked (mlock); CPU time is user and system time; a process of
//! another vNode does not exist here, as for kill.

use pmon::path::ProcFile;
use pmon::procfs::ProcInfo;
use pmon::tmpfs::Entry;

use super::*;

/// getdents64's d_type of a directory, a regular file and a symbolic
/// link.
const DT_DIR: u8 = 4;
pub(super) const DT_REG: u8 = 8;
pub(super) const DT_LNK: u8 = 10;

/// Clock ticks (USER_HZ, 100 a second) in `ns`.
fn ticks(ns: u64) -> u64 {
    ns / 10_000_000
}

impl Kernel {
    /// syslog(2) (klogctl; dmesg): the processor keeps no kernel log
    /// for its programs (the monitor's messages go to lego-vmm's stderr),
    /// so the log is empty: reads take nothing, its size is Linux's
    /// default buffer's, and a read that waits for a message (klogd's)
    /// waits until a signal, as Linux's would for one that never comes.
    /// As Linux with dmesg_restrict (Debian's default), only root may
    /// read or change it (EPERM); a bad console level is EINVAL.
    pub(super) fn sys_syslog(&mut self, tid: Tid, action: i32, len: i32) -> Ret {
        const LOG_BUF_LEN: i64 = 1 << 17;
        let pid = self.pid_of(tid);
        let root = self
            .procs
            .get(&pid)
            .is_some_and(|p| p.cred.uid.effective == 0);
        match action {
            0..=10 if !root => err(EPERM),
            // Read, read all, read and clear: nothing to read.
            2..=4 if len < 0 => err(EINVAL),
            8 if !(1..=8).contains(&len) => err(EINVAL),
            2 if self.signal_deliverable(tid) => err(EINTR),
            2 => {
                self.block(tid, Wait::Signal, None, None, OnWake::Return(-EINTR));
                Ret::Block
            }
            0..=9 => Ret::Val(0),
            10 => Ret::Val(LOG_BUF_LEN),
            _ => err(EINVAL),
        }
    }

    /// Whether process `caller` may open process `target`'s writable
    /// /proc files (0644, its owner's): the same user, or root.
    pub(super) fn may_write_proc(&self, caller: Pid, target: Pid) -> bool {
        let uid = |p: Pid| self.procs.get(&p).map(|p| p.cred.uid.effective);
        matches!(uid(caller), Some(0)) || (uid(caller).is_some() && uid(caller) == uid(target))
    }

    /// A write to an open /proc file: comm names the thread (its first
    /// 15 bytes, as given: Linux keeps a newline too; another process's
    /// is EINVAL), oom_score_adj takes a number in -1000..=1000 (lowered
    /// by root only: EACCES).
    pub(super) fn proc_write(
        &mut self,
        tid: Tid,
        f: &OpenFile,
        data: &[u8],
    ) -> Result<usize, Errno> {
        let caller = self.pid_of(tid);
        let name = pmon::path::name(&f.path, caller);
        let (p, t, file) = match name {
            Name::Proc(p, file) => (p, p, file),
            Name::TaskFile(p, t, file) => (p, t, file),
            _ => return Err(EBADF),
        };
        match file {
            ProcFile::Comm => {
                if p != caller {
                    return Err(EINVAL);
                }
                let given = &data[..data.len().min(15)];
                let given = given.split(|&c| c == 0).next().unwrap_or_default();
                let t = self.threads.get_mut(&t).ok_or(ESRCH)?;
                t.name = [0; 16];
                t.name[..given.len()].copy_from_slice(given);
                Ok(data.len())
            }
            ProcFile::OomScoreAdj => {
                let text = core::str::from_utf8(data).map_err(|_| EINVAL)?;
                let v: i32 = text.trim().parse().map_err(|_| EINVAL)?;
                if !(-1000..=1000).contains(&v) {
                    return Err(EINVAL);
                }
                let root = self
                    .procs
                    .get(&caller)
                    .is_some_and(|c| c.cred.uid.effective == 0);
                let target = self.procs.get_mut(&p).ok_or(ESRCH)?;
                if (v as i16) < target.oom_score_adj && !root {
                    return Err(EACCES);
                }
                target.oom_score_adj = v as i16;
                Ok(data.len())
            }
            _ => Err(EBADF),
        }
    }

    /// Whether `caller` sees process `pid` (alive or a zombie).
    pub(super) fn sees_process(&self, caller: Pid, pid: Pid) -> bool {
        let vnode = self.procs.get(&caller).map_or(0, |p| p.vnode);
        self.procs.get(&pid).is_some_and(|p| p.vnode == vnode)
    }

    /// Whether `caller` may look into process `target`'s program,
    /// directories, descriptors and mappings (/proc/PID/{exe,cwd,root,fd,
    /// maps}): its own always; another's if it sees it (else ENOENT), it
    /// has not exited (a zombie has none of these: ENOENT), and it may
    /// trace it (else EACCES, Linux's PTRACE_MODE_READ check).
    pub(super) fn reach(&self, caller: Pid, target: Pid) -> Result<(), Errno> {
        if caller == target {
            return Ok(());
        }
        let Some(p) = self
            .procs
            .get(&target)
            .filter(|_| self.sees_process(caller, target))
        else {
            return Err(ENOENT);
        };
        if p.life != Life::Alive {
            return Err(ENOENT);
        }
        let me = self.procs.get(&caller).map(|c| c.cred).unwrap_or_default();
        if !me.may_trace(&p.cred, p.dumpable) {
            return Err(EACCES);
        }
        Ok(())
    }

    /// The open file of /proc/PID/fd/N (or /dev/fd/N) for `caller`: a
    /// closed descriptor's name does not exist (ENOENT), as on Linux.
    pub(super) fn fd_file(&self, caller: Pid, target: Pid, n: i32) -> Result<Arc<OpenFile>, Errno> {
        self.reach(caller, target)?;
        self.file(target, n as i64)
            .map_err(|e| if e == EBADF { ENOENT } else { e })
    }

    /// /proc/PID/fdinfo/N of process `target`'s descriptor `n`, open as
    /// `f`: its offset, status flags (O_LARGEFILE, as every open on
    /// x86-64 has it, and O_CLOEXEC where the descriptor has it), mount
    /// and inode.
    pub(super) fn fdinfo(&mut self, target: Pid, n: i32, f: &Arc<OpenFile>) -> Vec<u8> {
        const O_LARGEFILE: u32 = 0o100000;
        let cloexec = self
            .procs
            .get(&target)
            .and_then(|p| p.fds.cloexec(n as i64).ok())
            .unwrap_or(false);
        let flags = (f.flags.get() & !pmon::fd::STATUS_BITS)
            | O_LARGEFILE
            | if cloexec { O_CLOEXEC } else { 0 };
        let ino = self.stat_of(f).map_or(0, |st| {
            u64::from_le_bytes(st[8..16].try_into().unwrap_or([0; 8]))
        });
        let mnt_id = if f.path.first() == Some(&b'/') {
            host::slurp(b"/proc/mounts", 1 << 22)
                .map(|text| {
                    let mounts = pmon::procfs::mounts(&text, self.storage);
                    pmon::procfs::mount_id(&mounts, &f.path)
                })
                .unwrap_or(0)
        } else {
            0
        };
        pmon::procfs::fdinfo(f.offset.get(), flags, mnt_id, ino)
    }

    /// Where /proc/PID/exe, cwd or root (`name`) links to, for `caller`.
    pub(super) fn link_target(&self, caller: Pid, name: Name) -> Result<Vec<u8>, Errno> {
        match name {
            Name::Exe(t) => self.reach(caller, t).map(|()| self.exe_of(t)),
            // A removed one reads as Linux's: "PATH (deleted)".
            Name::Cwd(t) => self.reach(caller, t).and_then(|()| {
                let p = self.procs.get(&t).ok_or(ENOENT)?;
                Ok(match p.cwd_gone {
                    true => [&p.cwd[..], b" (deleted)"].concat(),
                    false => p.cwd.clone(),
                })
            }),
            Name::Root(t) => self.reach(caller, t).map(|()| {
                self.procs
                    .get(&t)
                    .map_or_else(|| b"/".to_vec(), |p| p.root.clone())
            }),
            _ => Err(EINVAL),
        }
    }

    /// A /proc/PID/task name checked: the thread must be one of the
    /// process's, and the process one `caller` sees (else Hidden, ENOENT).
    pub(super) fn task_name(&self, caller: Pid, name: Name) -> Name {
        let of = |pid: Pid, tid: Pid| {
            self.sees_process(caller, pid)
                && self.procs.get(&pid).is_some_and(|p| {
                    p.threads.contains(&tid) || (tid == pid && p.life != Life::Alive)
                })
        };
        match name {
            Name::TaskDir(p) if !self.sees_process(caller, p) => Name::Hidden,
            Name::Task(p, t) | Name::TaskFile(p, t, _) if !of(p, t) => Name::Hidden,
            n => n,
        }
    }

    /// /proc/PID/cmdline as Linux reads it, from the process's memory: its
    /// argument strings as they are now, or, when the program wrote over
    /// the end of the last one (setproctitle: nginx's `nginx: worker
    /// process`, PostgreSQL's backends), its title up to the first NUL,
    /// which may run on into the environment's strings (a page at most).
    /// None when they cannot be read.
    fn live_cmdline(&mut self, pid: Pid) -> Option<Vec<u8>> {
        let (area, space) = self.procs.get(&pid).map(|p| (p.args, p.space))?;
        if area.end <= area.start {
            return None;
        }
        let read = |k: &mut Kernel, at: u64, len: u64| -> Option<Vec<u8>> {
            let mut buf = alloc::vec![0u8; len as usize];
            k.in_space(space, |k| {
                k.space_mut(pid)
                    .and_then(|s| uaccess::read(s, at, &mut buf))
            })
            .ok()?;
            Some(buf)
        };
        if read(self, area.end - 1, 1)? == [0] {
            return read(self, area.start, area.end - area.start);
        }
        let env_end = area.env_end.max(area.end);
        let mut title = read(self, area.start, (env_end - area.start).min(4096))?;
        if let Some(nul) = title.iter().position(|&c| c == 0) {
            title.truncate(nul + 1);
        }
        Some(title)
    }

    /// The bytes of /proc/PID/`file` of process `pid`, or of its thread
    /// `tid` (/proc/PID/task/TID/`file`; `pid` itself for the process's
    /// own files, which describe its first thread).
    pub(super) fn proc_file(
        &mut self,
        caller: Pid,
        pid: Pid,
        tid: Pid,
        file: ProcFile,
    ) -> Result<Vec<u8>, Errno> {
        if !self.sees_process(caller, pid) {
            return Err(ENOENT);
        }
        let Some(p) = self.procs.get(&pid) else {
            return Err(ENOENT);
        };
        let zombie = p.life != Life::Alive;
        // The thread described: the first one, unless another is named.
        let named = tid != pid && p.threads.contains(&tid);
        let thread = if named {
            Some(tid)
        } else {
            p.threads.first().copied()
        };
        let comm = thread.map_or_else(Vec::new, |t| self.comm_of(t));
        // Its environment and auxiliary vector are for who may trace it
        // (Linux's PTRACE_MODE_READ).
        if matches!(file, ProcFile::Environ | ProcFile::Auxv) && caller != pid {
            let me = self.procs.get(&caller).map(|c| c.cred).unwrap_or_default();
            if !me.may_trace(&p.cred, p.dumpable) {
                return Err(EACCES);
            }
        }
        match file {
            ProcFile::Cmdline | ProcFile::Environ | ProcFile::Auxv if zombie => {
                return Ok(Vec::new())
            }
            ProcFile::Cmdline => {
                let at_exec = p.cmdline.clone();
                return Ok(self.live_cmdline(pid).unwrap_or(at_exec));
            }
            ProcFile::Environ => return Ok(p.environ.clone()),
            ProcFile::Auxv => return Ok(p.auxv.clone()),
            ProcFile::Limits => return Ok(pmon::procfs::limits(&p.rlimits)),
            ProcFile::Cgroup => return Ok(b"0::/\n".to_vec()),
            ProcFile::OomScoreAdj => {
                return Ok(alloc::format!("{}\n", p.oom_score_adj).into_bytes())
            }
            ProcFile::Comm => {
                let mut c = comm;
                c.push(b'\n');
                return Ok(c);
            }
            _ => {}
        }
        // A thread's own state. The process's is its first thread's, as
        // Linux's: sleeping while another thread runs (LTP's
        // TST_PROCESS_STATE_WAIT waits for that from a second thread).
        // Decided: once the first thread has ended, the oldest left's (Linux
        // shows a zombie leader; but a thread that ran execve keeps its own
        // id here, where Linux gives it the leader's).
        let shown = if named {
            tid
        } else if p.threads.contains(&pid) {
            pid
        } else {
            p.threads.first().copied().unwrap_or(pid)
        };
        let state = if zombie {
            b'Z'
        } else if p.job.stopped {
            b'T'
        } else if self
            .threads
            .get(&shown)
            .is_some_and(|t| matches!(t.state, State::Running(_) | State::Runnable))
        {
            b'R'
        } else {
            b'S'
        };
        let first = thread.and_then(|t| self.threads.get(&t));
        let bit = |i: usize| 1u64 << i;
        let (ignored, caught) = p
            .actions
            .iter()
            .enumerate()
            .fold((0, 0), |(ig, ca), (i, a)| {
                if a.handler == SIG_IGN {
                    (ig | bit(i), ca)
                } else if a.handler != SIG_DFL {
                    (ig, ca | bit(i))
                } else {
                    (ig, ca)
                }
            });
        let pending_of = |q: &VecDeque<SigInfo>| {
            q.iter()
                .fold(0u64, |s, i| s | 1u64.checked_shl(i.signo - 1).unwrap_or(0))
        };
        let [user, sys, child_user, child_sys] = self.times_ns(pid);
        // A thread named by its task directory shows its own time.
        let (user, sys) = if named {
            self.thread_times_ns(tid)
        } else {
            (user, sys)
        };
        let mut info = ProcInfo {
            pid,
            tid,
            ppid: p.ppid,
            pgid: p.pgid,
            sid: p.sid,
            state,
            comm,
            threads: p.threads.len().max(1) as u32,
            utime: ticks(user),
            stime: ticks(sys),
            cutime: ticks(child_user),
            cstime: ticks(child_sys),
            start: ticks(p.started),
            vsize: 0,
            locked: 0,
            seccomp: first.map_or((0, 0), |t| (t.seccomp_mode, t.seccomp.len())),
            umask: p.umask,
            pending: first.map_or(0, |t| pending_of(&t.pending)),
            shared_pending: pending_of(&p.pending),
            blocked: first.map_or(0, |t| t.sigmask),
            ignored,
            caught,
            fds: 64,
            groups: p.groups.clone(),
            cred: p.cred,
            cpus_allowed: first.map_or(0, |t| t.sched.affinity),
            no_new_privs: p.no_new_privs,
        };
        if !zombie {
            if let Some(space) = self.space_of(pid) {
                if let Ok(vmas) = space.maps() {
                    info.vsize = vmas.iter().map(|v| v.end.saturating_sub(v.start)).sum();
                }
                info.locked = space.locked.total();
            }
        }
        Ok(match file {
            ProcFile::Stat => pmon::procfs::stat(&info),
            ProcFile::Statm => pmon::procfs::statm(info.vsize, info.locked),
            _ => pmon::procfs::status(&info),
        })
    }

    /// A thread's name (comm): the one prctl PR_SET_NAME gave, else its
    /// program's file name, 15 bytes at most, as Linux's.
    pub(super) fn comm_of(&self, tid: Tid) -> Vec<u8> {
        let Some(t) = self.threads.get(&tid) else {
            return Vec::new();
        };
        if t.name[0] != 0 {
            let end = t.name.iter().position(|&c| c == 0).unwrap_or(t.name.len());
            return t.name[..end].to_vec();
        }
        let exe = self.procs.get(&t.pid).map_or(&[][..], |p| &p.exe[..]);
        let base = pmon::path::last(exe);
        base[..base.len().min(15)].to_vec()
    }

    /// getdents64 of /proc: the host's names but its process numbers, and
    /// this processor's processes in their place.
    pub(super) fn proc_getdents(
        &mut self,
        pid: Pid,
        f: &OpenFile,
        h: u32,
        buf: u64,
        len: usize,
    ) -> Ret {
        // (place, name, d_type): the host's files keep theirs (its /proc/self is
        // a symbolic link, cpuinfo a regular file).
        let mut names: Vec<(u64, Vec<u8>, u8)> = Vec::new();
        let mut at = 0;
        loop {
            let (bytes, next) = match host::readdir(h, at, 1 << 16) {
                Ok(r) => r,
                Err(e) => return err(e),
            };
            if bytes.is_empty() {
                break;
            }
            for (_, name, dtype) in pmon::tmpfs::parse_dirents(&bytes) {
                let numeric = !name.is_empty() && name.iter().all(u8::is_ascii_digit);
                if !numeric {
                    names.push((names.len() as u64, name, dtype));
                }
            }
            if next == at {
                break;
            }
            at = next;
        }
        let vnode = self.procs.get(&pid).map_or(0, |p| p.vnode);
        // Processes after the host's names, each at a place of its own
        // (its pid past them), as Linux's: one that ends between two
        // reads moves no other.
        for p in self.procs.values().filter(|p| p.vnode == vnode) {
            let at = PIDS_AT + p.pid as u64;
            names.push((at, alloc::format!("{}", p.pid).into_bytes(), DT_DIR));
        }
        self.put_listing(pid, f, names, 0x7000, buf, len)
    }

    /// A made-up directory's listing, (place, name, d_type) in ascending
    /// places, from the open file's offset (a place) on; inode numbers
    /// from `ino_base`. An entry's place stays while others come and go,
    /// so a program that closes or reaps between reads skips nothing.
    fn put_listing(
        &mut self,
        pid: Pid,
        f: &OpenFile,
        names: Vec<(u64, Vec<u8>, u8)>,
        ino_base: u64,
        buf: u64,
        len: usize,
    ) -> Ret {
        let from = f.offset.get();
        let entries: Vec<Entry> = names
            .into_iter()
            .filter(|&(at, _, _)| at >= from)
            .map(|(at, name, dtype)| Entry {
                ino: ino_base + at,
                is_dir: dtype == DT_DIR,
                is_fifo: false,
                is_socket: false,
                is_symlink: dtype == DT_LNK,
                name,
                next: at + 1,
            })
            .collect();
        self.put_dirents(pid, f, &entries, buf, len)
    }

    /// /proc/PID opened (/proc/self too): a directory that lists what is
    /// served of the process and that *at calls can start from; ENOENT
    /// for a process not seen here, as Linux. (The caller refuses opens for
    /// writing: EISDIR.)
    /// `task`: its task directory (`Some(None)`) or the directory of its
    /// thread TID in it (`Some(Some(TID))`), which the open file's path
    /// tells apart (its listing and the *at calls from it go by it).
    pub(super) fn open_proc_dir(
        &mut self,
        pid: Pid,
        target: Pid,
        task: Option<Option<Pid>>,
        flags: u32,
        cloexec: bool,
    ) -> Ret {
        if !self.sees_process(pid, target) {
            return err(ENOENT);
        }
        let started = self.procs.get(&target).map_or(0, |p| p.started);
        let path = match task {
            None => alloc::format!("/proc/{target}"),
            Some(None) => alloc::format!("/proc/{target}/task"),
            Some(Some(tid)) => alloc::format!("/proc/{target}/task/{tid}"),
        };
        let file = OpenFile::with_path(
            Kind::ProcDir(target, started),
            flags & O_NONBLOCK,
            path.into_bytes(),
        );
        val(self
            .proc_mut(pid)
            .and_then(|p| p.fds.install(file, cloexec, 0)))
    }

    /// The listing of an open /proc/PID: the files served of that process
    /// (more of the caller's own), ENOENT once it is reaped, as Linux.
    pub(super) fn proc_dir_getdents(
        &mut self,
        pid: Pid,
        f: &OpenFile,
        target: Pid,
        started: u64,
        buf: u64,
        len: usize,
    ) -> Ret {
        if self.procs.get(&target).is_none_or(|p| p.started != started) {
            return err(ENOENT);
        }
        const DT_REG: u8 = 8;
        let mut files: Vec<(&[u8], u8)> = alloc::vec![
            (b".", DT_DIR),
            (b"..", DT_DIR),
            (b"auxv", DT_REG),
            (b"cgroup", DT_REG),
            (b"cmdline", DT_REG),
            (b"comm", DT_REG),
            (b"environ", DT_REG),
            (b"limits", DT_REG),
            (b"oom_score_adj", DT_REG),
            (b"stat", DT_REG),
            (b"statm", DT_REG),
            (b"status", DT_REG),
        ];
        // A thread's directory lists only the files above (its exe, fd,
        // ... are its process's and open all the same).
        if !f.path.windows(6).any(|w| w == b"/task/") {
            files.extend([
                (&b"cwd"[..], DT_LNK),
                (b"exe", DT_LNK),
                (b"fd", DT_DIR),
                (b"maps", DT_REG),
                (b"mountinfo", DT_REG),
                (b"mounts", DT_REG),
                (b"root", DT_LNK),
            ]);
        }
        let names = files
            .into_iter()
            .enumerate()
            .map(|(i, (name, dtype))| (i as u64, name.to_vec(), dtype))
            .collect();
        self.put_listing(pid, f, names, 0x7c00, buf, len)
    }

    /// The listing of an open /proc/PID/task: `.`, `..` and a directory
    /// per thread, by id (ENOENT once the process is reaped).
    pub(super) fn task_dir_getdents(
        &mut self,
        pid: Pid,
        f: &OpenFile,
        target: Pid,
        started: u64,
        buf: u64,
        len: usize,
    ) -> Ret {
        let Some(p) = self.procs.get(&target).filter(|p| p.started == started) else {
            return err(ENOENT);
        };
        let mut names: Vec<(u64, Vec<u8>, u8)> =
            alloc::vec![(0, b".".to_vec(), DT_DIR), (1, b"..".to_vec(), DT_DIR)];
        // Each at a place of its own (its id past `..`), as in /proc.
        let mut tids = p.threads.clone();
        tids.sort_unstable();
        names.extend(
            tids.iter()
                .map(|&t| (2 + t as u64, alloc::format!("{t}").into_bytes(), DT_DIR)),
        );
        self.put_listing(pid, f, names, 0x7400, buf, len)
    }

    /// /proc/PID/fd (/proc/self/fd, /dev/fd) of process `target` opened
    /// by `pid`: a directory of the host's, for its fstat, whose listing
    /// [`Self::fd_getdents`] makes of `target`'s descriptors, as Linux's
    /// stays the process's it was opened for. (The caller checked that
    /// `pid` may look, and refuses opens for writing: EISDIR.)
    pub(super) fn open_fd_dir(
        &mut self,
        pid: Pid,
        target: Pid,
        flags: u32,
        cloexec: bool,
        info: bool,
    ) -> Ret {
        let handle = match host::open_as(FD_DIR, lego_proto::program::OPEN_READ) {
            Ok((h, _)) => h,
            Err(e) => return err(e),
        };
        let path = if info {
            pmon::path::fdinfo_dir(target)
        } else {
            pmon::path::fd_dir(target)
        };
        let file = OpenFile::with_path(Kind::HostDir(handle), flags & O_NONBLOCK, path);
        self.install_host(pid, handle, file, cloexec)
    }

    /// The listing of an open /proc/PID/fd or fdinfo: `.`, `..` and
    /// process `target`'s open descriptors, of type `dtype` (symbolic
    /// links, or fdinfo's files), as Linux lists them (ENOENT once it has
    /// exited).
    pub(super) fn fd_getdents(
        &mut self,
        pid: Pid,
        target: Pid,
        f: &OpenFile,
        (buf, len): (u64, usize),
        dtype: u8,
    ) -> Ret {
        // A descriptor's place is its number past `.` and `..`, as on
        // Linux: CPython's subprocess closes descriptors while it reads
        // this listing a few entries at a time.
        let mut names: Vec<(u64, Vec<u8>, u8)> =
            alloc::vec![(0, b".".to_vec(), DT_DIR), (1, b"..".to_vec(), DT_DIR)];
        if self.reach(pid, target).is_err() {
            return err(ENOENT);
        }
        if let Some(p) = self.procs.get(&target) {
            names.extend(
                p.fds
                    .iter()
                    .map(|(fd, _)| (fd as u64 + 2, alloc::format!("{fd}").into_bytes(), dtype)),
            );
        }
        self.put_listing(pid, f, names, 0x7800, buf, len)
    }
}

/// Where /proc's listing places its processes: past the host's names.
const PIDS_AT: u64 = 1 << 20;

/// The host's name of a host file or directory open as `f`: its path,
/// but lego-vmm's own /proc/self/fd for an open /proc/PID/fd, whose path
/// names a Lego process (the host's /proc/PID is another process, or
/// none: its fstat was ENOENT at times in a pid namespace).
pub(super) fn on_host(f: &OpenFile) -> &[u8] {
    if pmon::path::fd_dir_of(&f.path).is_some() {
        FD_DIR
    } else {
        &f.path
    }
}

/// Where a process's /proc/PID/fd opens on the host (lego-vmm's own,
/// for a directory's fstat); its listing is the process's.
pub(super) const FD_DIR: &[u8] = b"/proc/self/fd";
