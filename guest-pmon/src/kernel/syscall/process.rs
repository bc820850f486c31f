//! Threads and processes: clone, clone3 and fork, execve and execveat,
//! wait4 and waitid, setpgid, unshare and the reaping of a child.

use super::*;

impl Kernel {
    /// unshare(2). A process's descriptor table, working directory, root,
    /// umask and System V undo list are its own here, not shared with
    /// other processes, so CLONE_FILES, CLONE_FS and CLONE_SYSVSEM change
    /// nothing for a process of one thread, and CLONE_THREAD, CLONE_SIGHAND
    /// and CLONE_VM are allowed only there, as Linux allows them. Decided:
    /// the threads of a process share these here, so a thread of several
    /// cannot take its own (EINVAL); namespaces are not offered (EPERM, as
    /// in a container without CAP_SYS_ADMIN: `unshare -r` and sandboxes
    /// that try one fall back). Unknown flags are EINVAL.
    pub(super) fn sys_unshare(&mut self, pid: Pid, flags: u64) -> Ret {
        const CLONE_VM: u64 = 0x100;
        const CLONE_FS: u64 = 0x200;
        const CLONE_FILES: u64 = 0x400;
        const CLONE_SIGHAND: u64 = 0x800;
        const CLONE_THREAD: u64 = 0x1_0000;
        const CLONE_SYSVSEM: u64 = 0x4_0000;
        // NEWTIME, NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET.
        const NAMESPACES: u64 = 0x80
            | 0x2_0000
            | 0x200_0000
            | 0x400_0000
            | 0x800_0000
            | 0x1000_0000
            | 0x2000_0000
            | 0x4000_0000;
        const PER_THREAD: u64 = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD;
        if flags & !(PER_THREAD | CLONE_SYSVSEM | NAMESPACES) != 0 {
            return err(EINVAL);
        }
        let alone = self.procs.get(&pid).is_some_and(|p| p.threads.len() <= 1);
        if flags & PER_THREAD != 0 && !alone {
            return err(EINVAL);
        }
        if flags & NAMESPACES != 0 {
            return err(EPERM);
        }
        Ret::Val(0)
    }

    /// A child is reaped: its CPU time joins its parent's children's.
    pub(super) fn reap_child(&mut self, parent: Pid, child: Pid) {
        if let Some(c) = self.procs.remove(&child) {
            if let Some(p) = self.procs.get_mut(&parent) {
                p.child_cycles += c.cycles + c.child_cycles;
                p.child_sys_cycles += c.sys_cycles + c.child_sys_cycles;
            }
        }
        // A pidfd of the child hangs up now: its pollers look again.
        self.wake_all(Wait::Any);
    }

    /// setpgid with Linux's checks: the caller or a child of its (ESRCH),
    /// a child in the caller's session (EPERM) that has not run execve
    /// (EACCES), not a session leader (EPERM), into a
    /// new group of its own or an existing one of that session (EPERM).
    pub(super) fn setpgid(&mut self, pid: Pid, target: i32, pgid: i32) -> Result<(), Errno> {
        if target < 0 || pgid < 0 {
            return Err(EINVAL);
        }
        let target = if target == 0 { pid } else { target as Pid };
        let pgid = if pgid == 0 { target } else { pgid as Pid };
        let sid = self.procs.get(&pid).map(|p| p.sid).ok_or(ESRCH)?;
        let t = self.procs.get(&target).ok_or(ESRCH)?;
        if target != pid && t.ppid != pid {
            return Err(ESRCH);
        }
        if target != pid && t.sid != sid {
            return Err(EPERM);
        }
        if target != pid && t.execed {
            return Err(EACCES);
        }
        if t.sid == target || t.sid != sid {
            return Err(EPERM);
        }
        if pgid != target && !self.procs.values().any(|p| p.pgid == pgid && p.sid == sid) {
            return Err(EPERM);
        }
        if let Some(t) = self.procs.get_mut(&target) {
            t.pgid = pgid;
        }
        Ok(())
    }

    pub(super) fn sys_clone(
        &mut self,
        tid: Tid,
        flags: u64,
        stack: u64,
        ptid: u64,
        ctid: u64,
        tls: u64,
    ) -> Ret {
        // clone's CLONE_PIDFD writes the pidfd where CLONE_PARENT_SETTID
        // writes the id: both is EINVAL, as Linux.
        const CLONE_DETACHED: u64 = 0x40_0000;
        if flags & CLONE_PIDFD != 0 && flags & (CLONE_PARENT_SETTID | CLONE_DETACHED) != 0 {
            return err(EINVAL);
        }
        let pidfd = (flags & CLONE_PIDFD != 0).then_some(ptid);
        self.clone_task(tid, flags, stack, ptid, ctid, tls, pidfd, false)
    }

    /// clone3: `struct clone_args` (`size` bytes at `at`, checked as
    /// Linux checks it) made into clone's arguments. CLONE_CLEAR_SIGHAND
    /// gives the child default handlers; decided: set_tid (which asks for
    /// chosen process ids, CRIU's) is EPERM, as for a caller without
    /// CAP_CHECKPOINT_RESTORE, and CLONE_INTO_CGROUP, with no cgroups
    /// here, needs only an open directory. It was ENOSYS, which glibc
    /// falls back from but a program calling it itself may not.
    pub(super) fn sys_clone3(&mut self, tid: Tid, at: u64, size: u64) -> Ret {
        const CLONE_CLEAR_SIGHAND: u64 = 1 << 32;
        const CLONE_INTO_CGROUP: u64 = 1 << 33;
        const CLONE_DETACHED: u64 = 0x40_0000;
        let pid = self.pid_of(tid);
        // The first version is 64 bytes; this kernel knows 88.
        let raw = match self.read_extensible(pid, at, size, 64, 88) {
            Ok(r) => r,
            Err(e) => return err(e),
        };
        let field = |i: usize| word_at(&raw, i);
        let (flags, pidfd, ctid, ptid, exit_signal) =
            (field(0), field(1), field(2), field(3), field(4));
        let (stack, stack_size, tls, set_tid, set_tid_size, cgroup) =
            (field(5), field(6), field(7), field(8), field(9), field(10));
        // The exit signal is a field of its own: of clone's low byte only
        // CLONE_NEWTIME (0x80) is a flag.
        if flags & !(0xffff_ff80 | CLONE_CLEAR_SIGHAND | CLONE_INTO_CGROUP) != 0
            || flags & CLONE_DETACHED != 0
            || exit_signal >= 64
            || (flags & (CLONE_THREAD | CLONE_PARENT) != 0 && exit_signal != 0)
            || (flags & CLONE_CLEAR_SIGHAND != 0 && flags & CLONE_SIGHAND != 0)
            || (stack == 0) != (stack_size == 0)
            || (set_tid == 0) != (set_tid_size == 0)
        {
            return err(EINVAL);
        }
        if set_tid_size != 0 {
            return err(EPERM);
        }
        if flags & CLONE_INTO_CGROUP != 0
            && !self
                .file(pid, cgroup as i32 as i64)
                .is_ok_and(|f| self.is_directory_file(&f))
        {
            return err(EBADF);
        }
        // The stack is given by its lowest address and size; clone takes
        // its top.
        let top = if stack != 0 {
            stack.saturating_add(stack_size)
        } else {
            0
        };
        let pidfd = (flags & CLONE_PIDFD != 0).then_some(pidfd);
        let clear_sighand = flags & CLONE_CLEAR_SIGHAND != 0;
        let flags = (flags & 0xffff_ff00) | exit_signal;
        self.clone_task(tid, flags, top, ptid, ctid, tls, pidfd, clear_sighand)
    }

    /// A new thread or process, as clone's `flags` say; `pidfd_at` is
    /// where CLONE_PIDFD's descriptor is written, and `clear_sighand`
    /// gives the child default handlers (clone3's CLONE_CLEAR_SIGHAND).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn clone_task(
        &mut self,
        tid: Tid,
        flags: u64,
        stack: u64,
        ptid: u64,
        ctid: u64,
        tls: u64,
        pidfd_at: Option<u64>,
        clear_sighand: bool,
    ) -> Ret {
        let pid = self.pid_of(tid);
        let thread = flags & CLONE_THREAD != 0;
        const CLONE_NEWNS: u64 = 0x20000;
        // As Linux's copy_process: shared handlers need the shared memory,
        // a thread the shared handlers; a new mount namespace cannot share
        // the file-system information.
        if (thread && flags & CLONE_SIGHAND == 0)
            || (flags & CLONE_SIGHAND != 0 && flags & CLONE_VM == 0)
            || flags & (CLONE_FS | CLONE_NEWNS) == CLONE_FS | CLONE_NEWNS
        {
            return err(EINVAL);
        }
        // A thread has no pidfd (before Linux 6.9): EINVAL, as Linux. Its
        // descriptor must be had before the child is made.
        let pidfd_at = if let Some(at) = pidfd_at {
            if thread {
                return err(EINVAL);
            }
            // Its number is written first: a bad pointer is EFAULT with no
            // child made, as Linux.
            let fd = match self.proc_mut(pid).and_then(|p| p.fds.lowest_free(0)) {
                Ok(fd) => fd,
                Err(e) => return err(e),
            };
            if let Err(e) = self
                .space_mut(pid)
                .and_then(|s| uaccess::write_u32(s, at, fd as u32))
            {
                return err(e);
            }
            Some(fd)
        } else {
            None
        };
        let Some(new) = self.alloc_id() else {
            return err(EAGAIN);
        };
        let Some(parent_ctx) = self.threads.get(&tid).and_then(|t| t.ctx.as_ref()) else {
            return err(ESRCH);
        };
        let mut ctx = UserContext {
            frame: parent_ctx.frame,
            fs_base: parent_ctx.fs_base,
            xsave: parent_ctx.xsave.clone(),
            exact: false,
        };
        ctx.frame.gprs[0] = 0;
        if stack != 0 {
            ctx.frame.rsp = stack;
        }
        if flags & CLONE_SETTLS != 0 {
            ctx.fs_base = tls;
        }
        let sigmask = self.threads.get(&tid).map_or(0, |t| t.sigmask);
        let sched = self
            .threads
            .get(&tid)
            .map_or(pmon::sched::Sched::new(self.cpus.len()), |t| {
                t.sched.for_child()
            });
        let altstack = self
            .threads
            .get(&tid)
            .map_or(AltStack::default(), |t| t.altstack);
        let child_pid = if thread {
            if let Some(p) = self.procs.get_mut(&pid) {
                p.threads.push(new);
            }
            pid
        } else {
            let Some(parent) = self.procs.get(&pid) else {
                return err(ESRCH);
            };
            let mut actions = parent.actions;
            if clear_sighand {
                pmon::signal::reset_handlers(&mut actions);
            }
            let (space, fds, cwd, root, umask, exe, exe_on_host, bias, rlimits, pgid, sid) = (
                parent.space,
                parent.fds.clone(),
                parent.cwd.clone(),
                parent.root.clone(),
                parent.umask,
                parent.exe.clone(),
                parent.exe_on_host,
                parent.bias,
                parent.rlimits,
                parent.pgid,
                parent.sid,
            );
            let (cmdline, args) = (parent.cmdline.clone(), parent.args);
            let (environ, auxv) = (parent.environ.clone(), parent.auxv.clone());
            let groups = parent.groups.clone();
            let cwd_gone = parent.cwd_gone;
            let cred = parent.cred;
            let personality = parent.personality;
            let oom_score_adj = parent.oom_score_adj;
            let (dumpable, no_new_privs, run, vnode, home) = (
                parent.dumpable,
                parent.no_new_privs,
                parent.run,
                parent.vnode,
                parent.home,
            );
            let space = if flags & CLONE_VM != 0 {
                if let Some(e) = self.spaces.get_mut(&space) {
                    e.users += 1;
                }
                space
            } else {
                match self.fork_space(space) {
                    Ok(s) => s,
                    Err(e) => return err(e),
                }
            };
            let ppid = if flags & CLONE_PARENT != 0 {
                self.procs.get(&pid).map_or(pid, |p| p.ppid)
            } else {
                pid
            };
            self.procs.insert(
                new,
                Process {
                    pid: new,
                    ppid,
                    pgid,
                    sid,
                    space,
                    fds,
                    actions,
                    pending: VecDeque::new(),
                    threads: alloc::vec![new],
                    life: Life::Alive,
                    cwd,
                    cwd_gone,
                    root,
                    umask,
                    personality,
                    exe,
                    exe_on_host,
                    bias,
                    exit_signal: (flags & 0xff) as u32,
                    vfork_parent: (flags & CLONE_VFORK != 0).then_some(tid),
                    rlimits,
                    groups,
                    cred,
                    cycles: 0,
                    child_cycles: 0,
                    sys_cycles: 0,
                    child_sys_cycles: 0,
                    alarm: None,
                    // Not inherited by a forked child, as Linux's.
                    cpu_timers: [None; 2],
                    timers: Default::default(),
                    cmdline,
                    environ,
                    auxv,
                    args,
                    started: self.now_ns(),
                    pdeath_signal: 0,
                    subreaper: false,
                    execed: false,
                    exe_ino: None,
                    dumpable,
                    no_new_privs,
                    oom_score_adj,
                    job: JobState::default(),
                    run,
                    vnode,
                    home,
                },
            );
            new
        };
        let _ = (CLONE_FS, CLONE_FILES);
        self.forks += 1;
        self.threads.insert(
            new,
            Thread {
                tid: new,
                pid: child_pid,
                ctx: Some(alloc::boxed::Box::new(ctx)),
                state: State::Runnable,
                sigmask,
                pending: VecDeque::new(),
                altstack: if thread {
                    AltStack {
                        flags: SS_DISABLE,
                        ..Default::default()
                    }
                } else {
                    altstack
                },
                clear_child_tid: if flags & CLONE_CHILD_CLEARTID != 0 {
                    ctid
                } else {
                    0
                },
                robust_list: 0,
                restart: false,
                saved_mask: None,
                yielded: false,
                retrying: false,
                written: 0,
                name: [0; 16],
                timer_slack: {
                    let now = self
                        .threads
                        .get(&tid)
                        .map_or(DEFAULT_TIMER_SLACK, |t| t.timer_slack.0);
                    (now, now)
                },
                wait_deadline: None,
                sched,
                cycles: 0,
                sys_cycles: 0,
                seccomp_mode: self.threads.get(&tid).map_or(0, |t| t.seccomp_mode),
                seccomp: self
                    .threads
                    .get(&tid)
                    .map(|t| t.seccomp.clone())
                    .unwrap_or_default(),
                fault_retries: (0, 0),
            },
        );
        if let Some(fd) = pidfd_at {
            // The slot found free above: nothing has run since.
            let started = self.procs.get(&child_pid).map_or(0, |p| p.started);
            let file = OpenFile::new(Kind::PidFd(child_pid, started), O_RDWR);
            if let Some(p) = self.procs.get_mut(&pid) {
                let _ = p.fds.install_at(fd, file, true);
            }
        }
        // The tid words: the parent's in its space, the child's in the
        // child's (the same space for threads and vfork).
        if flags & CLONE_PARENT_SETTID != 0 {
            if let Some(s) = self.space_of(pid) {
                let _ = uaccess::write_u32(s, ptid, new);
            }
        }
        // A forked child's was skipped once: glibc caches the TID it finds
        // there, and its child then locked mutexes (and robust ones) with
        // its parent's TID.
        if flags & CLONE_CHILD_SETTID != 0 {
            let child_space = self.procs.get(&child_pid).map_or(0, |p| p.space);
            self.in_space(child_space, |k| {
                if let Some(s) = k.space_of(child_pid) {
                    let _ = uaccess::write_u32(s, ctid, new);
                }
            });
        }
        self.runq.push_back(new);
        self.kick_idle();
        if flags & CLONE_VFORK != 0 {
            // The parent waits until the child execs or exits.
            if let Some(ctx) = self.threads.get_mut(&tid).and_then(|t| t.ctx.as_mut()) {
                ctx.frame.gprs[0] = new as u64;
            }
            self.block(
                tid,
                Wait::Vfork(new),
                None,
                None,
                OnWake::Return(new as i64),
            );
            if let Some(t) = self.threads.get_mut(&tid) {
                if let State::Blocked { interruptible, .. } = &mut t.state {
                    *interruptible = false;
                }
            }
            return Ret::Block;
        }
        Ret::Val(new as i64)
    }

    /// A copy of space `from` for a forked child: its dirty pages are
    /// written back first (the VMM does that for OP_FORK), then the memory
    /// components copy every mapping and page.
    pub(super) fn fork_space(&mut self, from: u32) -> Result<u32, Errno> {
        let (brk, from_gpid, layout, home) = match self.spaces.get(&from) {
            Some(e) => (
                e.space.brk,
                e.space.gpid,
                e.space.layout.clone(),
                e.space.home,
            ),
            None => return Err(ESRCH),
        };
        // The child's memory is copied at the parent's home.
        self.home_now = home;
        let to = self.new_space(brk)?;
        let child_gpid = match self.spaces.get_mut(&to) {
            Some(e) => {
                e.space.layout = layout;
                e.space.gpid
            }
            None => 0,
        };
        let r = self.spaces.get_mut(&from).map(|e| {
            e.space.call(MemRequest {
                op: OP_FORK,
                arg: child_gpid as u64,
                ..Default::default()
            })
        });
        let _ = from_gpid;
        match r {
            Some(Ok(_)) => {
                self.fork_shared_maps(from, to);
                self.fork_shared_anon(from, to);
                self.fork_attaches(from, to);
                Ok(to)
            }
            Some(Err(e)) => {
                self.drop_space(to);
                Err(e)
            }
            None => {
                self.drop_space(to);
                Err(ESRCH)
            }
        }
    }

    pub(super) fn sys_execve(&mut self, tid: Tid, path: u64, argv: u64, envp: u64) -> Ret {
        self.sys_execveat(tid, AT_FDCWD, path, argv, envp, 0)
    }

    /// The file an open descriptor executes (fexecve, /proc/self/fd/N,
    /// execveat's AT_EMPTY_PATH): a file of the host, the tmpfs or
    /// storage, by the path it was opened by (and whether it is the
    /// host's); EACCES for a directory or anything else. Linux runs the
    /// open file itself; the loader here reads a program by its path, so
    /// a tmpfs or storage file that no longer has that name (renamed,
    /// removed, a memfd) is ENOENT rather than whatever has the name now.
    pub(super) fn exec_of_fd(&mut self, pid: Pid, fd: i64) -> Result<(Vec<u8>, bool), Errno> {
        let f = self.file(pid, fd)?;
        match f.kind {
            Kind::Host(_) => Ok((f.path.clone(), true)),
            Kind::Store(ino) => {
                let now = self.store_stat_path(&f.path, false).ok();
                // struct stat's st_ino.
                let same = now.is_some_and(|st| st[8..16] == ino.to_le_bytes());
                if same {
                    Ok((f.path.clone(), false))
                } else {
                    Err(ENOENT)
                }
            }
            Kind::Tmp(ino) if !self.tmp.is_directory(ino) => {
                let full = pmon::path::dev_shm_alias(f.path.clone());
                let now = tmp::below_tmp(&full).and_then(|rel| self.tmp.lookup(rel).ok());
                if now == Some(ino) {
                    return Ok((f.path.clone(), false));
                }
                // No name leads to it (a memfd, a deleted file): the load
                // reads the inode, and the program's /proc/self/exe says
                // so, as Linux's.
                self.exec_inode = Some(ino);
                let mut shown = f.path.clone();
                if !shown.ends_with(b" (deleted)") {
                    shown.extend_from_slice(b" (deleted)");
                }
                Ok((shown, false))
            }
            _ => Err(EACCES),
        }
    }

    /// execveat: execve of a path relative to `dirfd`, or with
    /// AT_EMPTY_PATH of the file `dirfd` is open on (glibc's and musl's
    /// fexecve); AT_SYMLINK_NOFOLLOW refuses a symbolic link (ELOOP).
    pub(super) fn sys_execveat(
        &mut self,
        tid: Tid,
        dirfd: i64,
        path: u64,
        argv: u64,
        envp: u64,
        flags: u64,
    ) -> Ret {
        if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 {
            return err(EINVAL);
        }
        let pid = self.pid_of(tid);
        let strings = self.space_mut(pid).and_then(|s| {
            let p = uaccess::read_cstr(s, path, 4095)?;
            let a = uaccess::read_strings(s, argv, pmon::stack::MAX_ARGS_BYTES)?;
            let e = uaccess::read_strings(s, envp, pmon::stack::MAX_ARGS_BYTES)?;
            Ok((p, a, e))
        });
        let (mut p, mut a, e) = match strings {
            Ok(v) => v,
            Err(e) => return err(e),
        };
        // No arguments at all: the program gets one empty one, as Linux
        // (5.18 on) gives it, so that argv[0] is never NULL.
        if a.is_empty() {
            a.push(Vec::new());
        }
        // The new program's name (comm) is the last part of the name it
        // was run by, as Linux's: "exe" for /proc/self/exe (busybox then
        // names itself for its applet), a link's own name, not its target's.
        let mut comm = pmon::path::last(&p).to_vec();
        // The name it runs by (AT_EXECFN, and the script's name an
        // interpreter is given), as Linux's: as given, or by the
        // descriptor it was found from (/dev/fd/N, /dev/fd/N/NAME).
        let execfn = if p.is_empty() {
            alloc::format!("/dev/fd/{dirfd}").into_bytes()
        } else if dirfd != AT_FDCWD && p.first() != Some(&b'/') {
            [alloc::format!("/dev/fd/{dirfd}/").as_bytes(), &p].concat()
        } else {
            p.clone()
        };
        let mut on_host = false;
        if p.is_empty() {
            if flags & AT_EMPTY_PATH == 0 {
                return err(ENOENT);
            }
            match self.exec_of_fd(pid, dirfd) {
                Ok((file, host)) => (p, on_host) = (file, host),
                Err(e) => return err(e),
            }
            // fexecve: the file's own name (Linux 6.13 on; "N" of
            // /dev/fd/N before).
            comm = pmon::path::last(&p).to_vec();
        } else if dirfd != AT_FDCWD && p.first() != Some(&b'/') {
            match self.resolve(pid, dirfd, &p) {
                Ok(full) => p = full,
                Err(e) => return err(e),
            }
        }
        if flags & AT_SYMLINK_NOFOLLOW != 0 {
            match self.resolve(pid, AT_FDCWD, &p) {
                Ok(full) if self.follow(full.clone()).is_ok_and(|f| f != full) => {
                    return err(ELOOP)
                }
                Ok(_) => {}
                Err(e) => return err(e),
            }
        }
        // The program re-executing itself (busybox runs its applets so),
        // or fexecve's /proc/self/fd/N: the file it names, even where
        // storage has one of the same name since. A symbolic link of the
        // tmpfs to one of them is followed first: the host's /proc must
        // never answer (its /proc/self/exe is lego-vmm).
        let followed = self
            .resolve(pid, AT_FDCWD, &p)
            .and_then(|full| self.follow(full))
            .map(|full| self.task_name(pid, pmon::path::name(&full, pid)));
        match followed {
            Ok(Name::Exe(t)) => match self.link_target(pid, Name::Exe(t)) {
                Ok(exe) => {
                    p = exe;
                    on_host = self.procs.get(&t).is_some_and(|pr| pr.exe_on_host);
                }
                Err(e) => return err(e),
            },
            Ok(Name::Fd(t, n)) if t != pid => match self.reach(pid, t) {
                Ok(()) => match self.exec_of_fd(t, n as i64) {
                    Ok((file, host)) => (p, on_host) = (file, host),
                    Err(e) => return err(e),
                },
                Err(e) => return err(e),
            },
            Ok(Name::Fd(_, n)) => match self.exec_of_fd(pid, n as i64) {
                Ok((file, host)) => (p, on_host) = (file, host),
                Err(e) => return err(e),
            },
            Ok(Name::Hidden | Name::SelfDir) => return err(ENOENT),
            Ok(
                Name::Null
                | Name::Zero
                | Name::Full
                | Name::Urandom
                | Name::Cwd(_)
                | Name::Root(_)
                | Name::FdDir(_)
                | Name::FdInfoDir(_)
                | Name::FdInfo(..)
                | Name::Maps(..)
                | Name::Proc(..)
                | Name::ProcDir(_)
                | Name::TaskDir(_)
                | Name::Task(..)
                | Name::TaskFile(..),
            ) => return err(EACCES),
            _ => {}
        }
        let done = self.execve(tid, (p, execfn), a, e, on_host, &comm);
        // Taken by the load, or left by a failure before it.
        self.exec_inode = None;
        match done {
            Ok(()) => Ret::NoReturn,
            Err(e) => err(e),
        }
    }

    /// A child of `pid` that wait4's `target` matches, and what a wait
    /// with `options` reports of it: its end (WEXITED), its stop
    /// (WUNTRACED, WSTOPPED) or its continuing (WCONTINUED). As Linux's, a
    /// "clone" child (whose exit signal is not SIGCHLD) is waited for only
    /// with __WCLONE, the others only without it, all with __WALL.
    pub(super) fn find_child(
        &self,
        pid: Pid,
        target: i64,
        options: u64,
    ) -> (bool, Option<(Pid, Change)>) {
        const WCLONE: u64 = 0x8000_0000;
        const WALL: u64 = 0x4000_0000;
        let pgid = self.procs.get(&pid).map_or(0, |p| p.pgid);
        let matches = |c: &Process| {
            c.ppid == pid
                && (options & WALL != 0 || (c.exit_signal != SIGCHLD) == (options & WCLONE != 0))
                && match target {
                    t if t > 0 => c.pid == t as Pid,
                    -1 => true,
                    0 => c.pgid == pgid,
                    t => c.pgid == (-t) as Pid,
                }
        };
        let mut any = false;
        for c in self.procs.values().filter(|c| matches(c)) {
            any = true;
            match (c.life, c.job) {
                (Life::Zombie(status), _) if options & WEXITED != 0 => {
                    return (true, Some((c.pid, Change::Ended(status))));
                }
                (
                    Life::Alive,
                    JobState {
                        stop_report: Some(sig),
                        ..
                    },
                ) if options & WUNTRACED != 0 => {
                    return (true, Some((c.pid, Change::Stopped(sig))))
                }
                (
                    Life::Alive,
                    JobState {
                        cont_report: true, ..
                    },
                ) if options & WCONTINUED != 0 => return (true, Some((c.pid, Change::Continued))),
                _ => {}
            }
        }
        (any, None)
    }

    /// A wait took `change` of `child` (not WNOWAIT): an ended child is
    /// reaped, a stop or a continue is reported once.
    pub(super) fn waited(&mut self, parent: Pid, child: Pid, change: Change) {
        match change {
            Change::Ended(_) => self.reap_child(parent, child),
            Change::Stopped(_) => {
                if let Some(c) = self.procs.get_mut(&child) {
                    c.job.stop_report = None;
                }
            }
            Change::Continued => {
                if let Some(c) = self.procs.get_mut(&child) {
                    c.job.cont_report = false;
                }
            }
        }
    }

    pub(super) fn sys_wait4(
        &mut self,
        tid: Tid,
        target: i64,
        status: u64,
        options: u64,
        rusage: u64,
    ) -> Ret {
        let pid = self.pid_of(tid);
        if options & !(WNOHANG | WUNTRACED | WCONTINUED | 0x8000_0000 | 0x4000_0000 | 0x2000_0000)
            != 0
        {
            return err(EINVAL);
        }
        // (-INT_MIN is no process group.)
        if target == i32::MIN as i64 {
            return err(ESRCH);
        }
        match self.find_child(pid, target, options | WEXITED) {
            (false, _) => err(ECHILD),
            (true, Some((child, change))) => {
                let st = match change {
                    Change::Ended(st) => st,
                    Change::Stopped(sig) => ((sig as i32) << 8) | 0x7f,
                    Change::Continued => 0xffff,
                };
                // The child's times, with those of the children it waited
                // for, as Linux's wait4 gives them.
                let [user, sys, child_user, child_sys] = self.times_ns(child);
                let usage = rusage_of(user + child_user, sys + child_sys);
                let r = self.space_mut(pid).and_then(|s| {
                    if status != 0 {
                        uaccess::write_u32(s, status, st as u32)?;
                    }
                    if rusage != 0 {
                        uaccess::write(s, rusage, &usage)?;
                    }
                    Ok(())
                });
                if let Err(e) = r {
                    return err(e);
                }
                self.waited(pid, child, change);
                Ret::Val(child as i64)
            }
            (true, None) if options & WNOHANG != 0 => Ret::Val(0),
            (true, None) => {
                self.block(tid, Wait::Child, None, None, OnWake::Retry);
                Ret::Block
            }
        }
    }

    /// waitid's report of `change` in `child`: its siginfo at `infop`,
    /// then, unless WNOWAIT, the child reaped (an end) or the report used
    /// up (a stop, a continue).
    pub(super) fn waitid_report(
        &mut self,
        pid: Pid,
        infop: u64,
        options: u64,
        child: Pid,
        change: Change,
    ) -> Ret {
        let (code, status) = match change {
            Change::Ended(st) => child_ended(st),
            Change::Stopped(sig) => (CLD_STOPPED, sig as i32),
            Change::Continued => (CLD_CONTINUED, SIGCONT as i32),
        };
        let mut info = SigInfo::user(SIGCHLD, code, child);
        info.status = status;
        if infop != 0 {
            if let Err(e) = self
                .space_mut(pid)
                .and_then(|s| uaccess::write(s, infop, &info.encode()))
            {
                return err(e);
            }
        }
        if options & WNOWAIT == 0 {
            self.waited(pid, child, change);
        }
        Ret::Val(0)
    }

    pub(super) fn sys_waitid(
        &mut self,
        tid: Tid,
        idtype: u64,
        id: i64,
        infop: u64,
        options: u64,
    ) -> Ret {
        let pid = self.pid_of(tid);
        if options & (WEXITED | WUNTRACED | WCONTINUED) == 0 {
            return err(EINVAL);
        }
        // A wait on a non-blocking pidfd that would block is EAGAIN.
        let mut nonblock = false;
        let target = match idtype {
            0 => -1,  // P_ALL
            1 => id,  // P_PID
            2 => -id, // P_PGID
            3 if id < 0 => return err(EINVAL),
            3 => match self.pidfd_wait_target(pid, id) {
                Ok((t, nb)) => {
                    nonblock = nb;
                    t as i64
                }
                Err(e) => return err(e),
            },
            _ => return err(EINVAL),
        };
        match self.find_child(pid, target, options) {
            (false, _) => err(ECHILD),
            (true, Some((child, change))) => self.waitid_report(pid, infop, options, child, change),
            (true, None) if nonblock && options & WNOHANG == 0 => err(EAGAIN),
            (true, None) if options & WNOHANG != 0 => {
                if infop != 0 {
                    if let Err(e) = self
                        .space_mut(pid)
                        .and_then(|s| uaccess::zero(s, infop, 128))
                    {
                        return err(e);
                    }
                }
                Ret::Val(0)
            }
            (true, None) => {
                self.block(tid, Wait::Child, None, None, OnWake::Retry);
                Ret::Block
            }
        }
    }
}
