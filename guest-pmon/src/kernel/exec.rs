//! execve: a static executable from the host becomes a process's image.
//!
//! The memory monitor side of loading (LegoOS gives it to the memory
//! monitor): the segments become VMAs at the home memory component, and
//! their file bytes are written there directly by the VMM (`PORT_LOAD`),
//! pipelined, without passing through the ExCache; pages the program never
//! touches are never fetched. Everything that can fail is done before the
//! old image is given up, so a failed execve returns an error to a process
//! that is still whole.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use lego_proto::memory::{MemRequest, FLAG_FIXED, OP_MMAP, OP_MPROTECT};
use pmon::elf::{self, ElfError, Program, Source};
use pmon::signal::SigAction;
use rand_core::RngCore;

use super::arch::UserContext;
use super::host;
use super::uaccess;
use super::*;

/// The stack a program starts with (RLIMIT_STACK's default).
pub(super) const STACK_SIZE: u64 = 8 << 20;

struct HostFile {
    handle: u32,
    size: u64,
}

impl Source for HostFile {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, at: u64, buf: &mut [u8]) -> Result<(), String> {
        let mut done = 0;
        while done < buf.len() {
            let n = host::read(self.handle, at + done as u64, &mut buf[done..]);
            if n <= 0 {
                return Err(alloc::format!("the host read failed (errno {})", -n));
            }
            done += n as usize;
        }
        Ok(())
    }
}

/// A program file: the host's (the VMM loads its pages straight into the
/// process's memory), or a copy of a file in /tmp's tmpfs.
enum ExecFile {
    Host(HostFile),
    Tmp(Vec<u8>),
}

impl Source for ExecFile {
    fn size(&self) -> u64 {
        match self {
            ExecFile::Host(h) => h.size,
            ExecFile::Tmp(b) => b.len() as u64,
        }
    }

    fn read_at(&mut self, at: u64, buf: &mut [u8]) -> Result<(), String> {
        match self {
            ExecFile::Host(h) => h.read_at(at, buf),
            ExecFile::Tmp(b) => {
                let from = usize::try_from(at).map_err(|_| String::from("past the end"))?;
                let bytes = from
                    .checked_add(buf.len())
                    .and_then(|end| b.get(from..end))
                    .ok_or_else(|| String::from("past the end of the file"))?;
                buf.copy_from_slice(bytes);
                Ok(())
            }
        }
    }
}

impl ExecFile {
    fn close(&self) {
        if let ExecFile::Host(h) = self {
            host::close(h.handle);
        }
    }
}

/// The largest program run from /tmp or storage (it is copied whole to
/// load it).
const MAX_TMP_PROGRAM: u64 = 256 << 20;

/// A loaded image, not yet anyone's.
pub struct Image {
    pub space: u32,
    pub entry: u64,
    pub sp: u64,
    pub bias: u64,
    /// The file that runs: the last interpreter for a script.
    pub exe: Vec<u8>,
    /// It is the host's file, not storage's or the tmpfs's.
    pub exe_on_host: bool,
    /// Its arguments, each ended by a NUL.
    pub cmdline: Vec<u8>,
    /// Its environment, each string ended by a NUL.
    pub environ: Vec<u8>,
    /// Its auxiliary vector's words.
    pub auxv: Vec<u8>,
    /// Where its argument strings lie on its stack.
    pub args: pmon::stack::ArgArea,
}

impl Kernel {
    /// The first process: `lego-vmm -- PATH ARGS` (run 0), or a run's.
    /// `path` is absolute; `given` is the name as the user gave it (what
    /// AT_EXECFN holds).
    pub fn spawn_init(
        &mut self,
        path: &[u8],
        given: &[u8],
        argv: Vec<Vec<u8>>,
        envp: Vec<Vec<u8>>,
        cwd: Vec<u8>,
        origin: super::Origin,
    ) -> Result<Pid, Errno> {
        let super::Origin { run, vnode, home } = origin;
        self.home_now = home;
        // A run may follow a `lego cp` into the host's trees: what storage
        // lacked is asked again.
        super::store::forget_absences();
        let pid = self.alloc_id().ok_or(EAGAIN)?;
        let image = self.load_image(path, given, argv, &envp, &cwd, false)?;
        let mut ctx = UserContext::new(self.xsave_size);
        ctx.frame.rip = image.entry;
        ctx.frame.rsp = image.sp;
        let rlimits = pmon::rlimit::initial(STACK_SIZE);
        self.procs.insert(
            pid,
            Process {
                pid,
                // As a shell starts a program: the leader of a group of
                // its own, in the session of whoever ran lego-vmm (outside
                // the processor, as its parent is), so that setpgid(0, 0)
                // works and setsid() is EPERM, as on the host.
                ppid: 1,
                pgid: pid,
                sid: 1,
                space: image.space,
                fds: pmon::fd::FdTable::with_stdio(run),
                actions: [SigAction::default(); 64],
                pending: VecDeque::new(),
                threads: alloc::vec![pid],
                life: Life::Alive,
                cwd,
                cwd_gone: false,
                root: b"/".to_vec(),
                umask: 0o022,
                personality: 0,
                exe: image.exe.clone(),
                exe_on_host: image.exe_on_host,
                bias: image.bias,
                exit_signal: pmon::signal::SIGCHLD,
                vfork_parent: None,
                rlimits,
                groups: Vec::new(),
                cred: pmon::cred::Cred::default(),
                cycles: 0,
                child_cycles: 0,
                sys_cycles: 0,
                child_sys_cycles: 0,
                alarm: None,
                cpu_timers: [None; 2],
                timers: Default::default(),
                cmdline: image.cmdline.clone(),
                environ: image.environ.clone(),
                auxv: image.auxv.clone(),
                args: image.args,
                started: self.now_ns(),
                pdeath_signal: 0,
                subreaper: false,
                execed: false,
                exe_ino: None,
                dumpable: true,
                no_new_privs: false,
                oom_score_adj: 0,
                job: JobState::default(),
                run,
                vnode,
                home,
            },
        );
        self.forks += 1;
        self.threads.insert(
            pid,
            Thread {
                tid: pid,
                pid,
                ctx: Some(Box::new(ctx)),
                state: State::Runnable,
                sigmask: 0,
                pending: VecDeque::new(),
                altstack: pmon::signal::AltStack {
                    flags: pmon::signal::SS_DISABLE,
                    ..Default::default()
                },
                clear_child_tid: 0,
                robust_list: 0,
                restart: false,
                saved_mask: None,
                yielded: false,
                retrying: false,
                written: 0,
                name: [0; 16],
                timer_slack: (DEFAULT_TIMER_SLACK, DEFAULT_TIMER_SLACK),
                wait_deadline: None,
                sched: pmon::sched::Sched::new(self.cpus.len()),
                cycles: 0,
                sys_cycles: 0,
                seccomp_mode: 0,
                seccomp: Vec::new(),
                fault_retries: (0, 0),
            },
        );
        self.runq.push_back(pid);
        Ok(pid)
    }

    /// Reads, maps and loads the program at `path` into a new space with
    /// its first stack; nothing of the caller changes. `on_host`: `path`
    /// is the host's file even where storage has one of that name (a
    /// process running its own program again, as Linux runs its inode).
    pub fn load_image(
        &mut self,
        path: &[u8],
        execfn: &[u8],
        argv: Vec<Vec<u8>>,
        envp: &[Vec<u8>],
        cwd: &[u8],
        on_host: bool,
    ) -> Result<Image, Errno> {
        let mut path = path.to_vec();
        let mut argv = argv;
        // The name the next interpreter is given for the file it runs.
        let mut named = execfn.to_vec();
        for depth in 0..=pmon::script::MAX_DEPTH {
            // A file with no name (fexecve of a memfd) is read by its inode.
            let unnamed = if depth == 0 {
                self.exec_inode.take()
            } else {
                None
            };
            let mut file = match unnamed {
                Some(ino) => self.tmp_program(ino)?,
                None => self.open_exec(&path, on_host && depth == 0)?,
            };
            let mut head = [0u8; pmon::script::HEAD];
            let n = (file.size() as usize).min(head.len());
            if file.read_at(0, &mut head[..n]).is_err() {
                file.close();
                return Err(EIO);
            }
            match pmon::script::parse(&head[..n]) {
                pmon::script::Head::NotScript => {
                    let image = self.load_elf(&mut file, execfn, &argv, envp, path);
                    file.close();
                    return image;
                }
                pmon::script::Head::Bad => {
                    file.close();
                    return Err(ENOEXEC);
                }
                pmon::script::Head::Script { interp, arg } => {
                    file.close();
                    if depth == pmon::script::MAX_DEPTH {
                        break;
                    }
                    argv = pmon::script::argv(&interp, arg.as_deref(), &named, &argv);
                    path = self.tmp_links(
                        pmon::path::dev_shm_alias(pmon::path::resolve(cwd, &interp)),
                        true,
                    )?;
                    named = interp;
                }
            }
        }
        Err(ELOOP)
    }

    /// The process whose thread makes the current call (an execve's).
    fn caller_pid(&self) -> Option<Pid> {
        self.threads.get(&self.caller).map(|t| t.pid)
    }

    /// EACCES unless the execve's caller may execute a file owned as `f`:
    /// its owner's, group's or others' execute bit as its ids say (root:
    /// any execute bit).
    pub(in crate::kernel) fn may_run(&self, f: pmon::cred::Owned) -> Result<(), Errno> {
        match self.caller_pid() {
            Some(pid) => self.may(pid, f, pmon::cred::MAY_EXEC),
            None => Ok(()),
        }
    }

    /// Opens a program to run: a tmpfs file (a regular file with an
    /// execute bit, as Linux asks) is copied; the host's is opened.
    fn open_exec(&mut self, path: &[u8], on_host: bool) -> Result<ExecFile, Errno> {
        // On storage, a program is read whole. A name storage does not
        // have is looked for on the host (read-only, as without storage),
        // so the host's programs (busybox, the system shell) still run
        // until programs are copied onto storage.
        if self.on_storage(path) && !on_host {
            match self.store_program(path, MAX_TMP_PROGRAM) {
                Ok(bytes) => return Ok(ExecFile::Tmp(bytes)),
                Err(ENOENT) => {
                    // Symbolic links on storage may lead to a program
                    // storage lacks (a venv's bin/python3 is a link to
                    // /usr/bin/python3; /d/bin a link to /usr/bin): the
                    // name they lead to is looked for in turn (that name
                    // has no links left on storage, so this goes one
                    // level deep).
                    let past_link = super::store::enoent_past_link();
                    if let Some(led) = past_link
                        .then(|| self.storage_reached(path, true))
                        .flatten()
                    {
                        if led != path {
                            return self.open_exec(&led, on_host);
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let Some(ino) = self.tmp_node(path) else {
            // A name under a tmpfs file, or too long: the tmpfs's to refuse.
            if let Some(Err(e @ (pmon::tmpfs::ENOTDIR | pmon::tmpfs::ENAMETOOLONG))) =
                pmon::path::below(path, b"/tmp").map(|rel| self.tmp.lookup(rel))
            {
                return Err(e);
            }
            // The host's program: its bits asked only of a caller that is
            // not root (one more look at the host).
            if self.caller_pid().is_some_and(|pid| !self.overrides(pid)) {
                let st = host::stat_path(path, true)?;
                self.may_run(pmon::cred::Owned::from(&st))?;
            }
            let (handle, size) = host::open(path)?;
            return Ok(ExecFile::Host(HostFile { handle, size }));
        };
        self.tmp_program(ino)
    }

    /// The program in tmpfs file `ino`, read whole: EACCES unless it is a
    /// regular file someone may execute.
    fn tmp_program(&mut self, ino: u64) -> Result<ExecFile, Errno> {
        let st = self.tmp.stat(ino)?;
        if st.mode & 0o170000 != 0o100000 || st.mode & 0o111 == 0 {
            return Err(EACCES);
        }
        self.may_run(pmon::cred::Owned::from(&st))?;
        if st.size > MAX_TMP_PROGRAM {
            return Err(ENOMEM);
        }
        let mut bytes = alloc::vec![0u8; st.size as usize];
        let now = self.realtime_ns();
        let n = self.tmp.read(ino, 0, &mut bytes, now)?;
        bytes.truncate(n);
        Ok(ExecFile::Tmp(bytes))
    }

    /// Loads an ELF executable (the file is the caller's to close).
    fn load_elf(
        &mut self,
        file: &mut ExecFile,
        execfn: &[u8],
        argv: &[Vec<u8>],
        envp: &[Vec<u8>],
        exe: Vec<u8>,
    ) -> Result<Image, Errno> {
        let top = self.window.user_top();
        let program = match elf::parse(file, top) {
            Ok(p) => p,
            // A program's execve failing is the program's business (a
            // shell says "cannot execute"); the VMM checked the first
            // program before booting.
            Err(ElfError::Read(_)) => return Err(EIO),
            Err(_) => return Err(ENOEXEC),
        };
        // A dynamically linked program: its loader is mapped too, a third
        // of the way up (below a PIE's two thirds, far above a fixed
        // program's break), and the process starts there.
        let loader = match &program.interp {
            Some(path) => {
                let mut lf = self.open_exec(path, false)?;
                match elf::parse_at(&mut lf, top, (top / 3) & !0xfff) {
                    Ok(p) if p.interp.is_none() => Some((lf, p)),
                    Ok(_) | Err(_) => {
                        lf.close();
                        return Err(ELIBBAD);
                    }
                }
            }
            None => None,
        };
        // The host's programs are named by their real path, as Linux's
        // /proc/PID/exe (tmpfs links were followed by the caller).
        let exe = if matches!(file, ExecFile::Host(_)) {
            pmon::path::canonical(&exe, |p| host::readlink(p).ok())
        } else {
            exe
        };
        let mut parts: Vec<(&ExecFile, &Program)> = alloc::vec![(&*file, &program)];
        if let Some((lf, lp)) = &loader {
            parts.push((lf, lp));
        }
        let entry = parts.last().map_or(program.entry, |(_, p)| p.entry);
        let image = self.new_space(program.brk).and_then(|space| {
            match self.fill(space, &parts, execfn, argv, envp) {
                Ok((sp, auxv, args)) => Ok(Image {
                    space,
                    entry,
                    sp,
                    bias: program.bias,
                    exe,
                    exe_on_host: matches!(file, ExecFile::Host(_)),
                    cmdline: argv
                        .iter()
                        .flat_map(|a| a.iter().copied().chain([0]))
                        .collect(),
                    environ: envp
                        .iter()
                        .flat_map(|a| a.iter().copied().chain([0]))
                        .collect(),
                    auxv,
                    args,
                }),
                Err(e) => {
                    self.drop_space(space);
                    Err(e)
                }
            }
        });
        if let Some((lf, _)) = loader {
            lf.close();
        }
        image
    }

    /// Maps the segments and the stack, loads the file bytes, writes the
    /// first stack. The stack pointer. `parts`: the program, then its
    /// dynamic loader if it has one.
    fn fill(
        &mut self,
        space_id: u32,
        parts: &[(&ExecFile, &Program)],
        path: &[u8],
        argv: &[Vec<u8>],
        envp: &[Vec<u8>],
    ) -> Result<(u64, Vec<u8>, pmon::stack::ArgArea), Errno> {
        let top = self.window.user_top();
        let Some(entry) = self.spaces.get_mut(&space_id) else {
            return Err(EINVAL);
        };
        let space = &mut entry.space;
        let Some(&(_, program)) = parts.first() else {
            return Err(EINVAL);
        };
        // The segments, the stack and the vDSO's pages mapped at the home
        // together (one round trip), then the files' bytes loaded.
        let mut maps = Vec::new();
        let fixed = |addr: u64, len: u64, prot: u32| MemRequest {
            op: OP_MMAP,
            addr,
            len,
            prot,
            flags: FLAG_FIXED,
            ..Default::default()
        };
        for &(file, part) in parts {
            // A tmpfs file's bytes are written through the mapping below:
            // writable until then.
            let copied = matches!(file, ExecFile::Tmp(_));
            for seg in &part.segments {
                let (start, end) = seg.pages();
                let prot = if copied { seg.prot | 2 } else { seg.prot };
                maps.push(fixed(start, end - start, prot));
            }
        }
        // The stack: 8 MiB just under the top, a page of gap above.
        let stack_top = top - 4096;
        maps.push(fixed(stack_top - STACK_SIZE, STACK_SIZE, 3));
        // The vDSO's data and object pages, a MiB below the stack's limit
        // (inside the room mmap leaves the stack), mapped from the VMM's
        // file as a program's read-only segments are: nothing to write or
        // copy (written into each process, with two mprotects and
        // write-backs, they were 0.9 ms of every execve).
        let vdso = self
            .vdso_file
            .map(|handle| (handle, stack_top - STACK_SIZE - (1 << 20) - 2 * 4096));
        const VDSO_PAGES: [(u64, u32); 2] = [(0, 1), (1, 5)];
        if let Some((_, at)) = vdso {
            for (i, prot) in VDSO_PAGES {
                maps.push(fixed(at + i * 4096, 4096, prot));
            }
        }
        space.map_fixed(&maps)?;
        for &(file, part) in parts {
            for seg in &part.segments {
                let ExecFile::Host(HostFile { handle, .. }) = *file else {
                    break;
                };
                if seg.filesz == 0 {
                    continue;
                }
                let lead = seg.vaddr & 0xfff;
                let r = host::load(
                    handle,
                    space.slot,
                    seg.offset - lead,
                    seg.filesz + lead,
                    seg.vaddr - lead,
                    seg.prot,
                );
                if r < 0 {
                    return Err(-r);
                }
            }
        }
        if let Some((handle, at)) = vdso {
            for (i, prot) in VDSO_PAGES {
                let len = if i == 0 { 4096 } else { self.vdso.len() as u64 };
                let r = host::load(handle, space.slot, i * 4096, len, at + i * 4096, prot);
                if r < 0 {
                    return Err(-r);
                }
            }
        }
        let vdso = vdso.map(|(_, at)| at);
        space.layout = pmon::procfs::Layout::of(program, (stack_top - STACK_SIZE, stack_top));
        if let (Some(&(_, loader)), Some(name)) = (parts.get(1), program.interp.as_ref()) {
            space.layout.loader = pmon::procfs::Layout::pages_of(loader);
            space.layout.loader_name = name.clone();
        }
        space.layout.vdso = vdso;
        let mut random = [0u8; 16];
        self.rng.fill_bytes(&mut random);
        let aux = pmon::stack::Aux {
            phdr: program.phdr,
            phent: program.phent,
            phnum: program.phnum,
            entry: program.entry,
            base: parts.get(1).map_or(0, |(_, loader)| loader.bias),
            hwcap: self.hwcap,
            hwcap2: 0,
            minsigstksz: self.xstate.min_sigstack(),
            vdso: vdso.map_or(0, |at| at + 4096),
            uid: 0,
            gid: 0,
        };
        let a: Vec<&[u8]> = argv.iter().map(|s| s.as_slice()).collect();
        let e: Vec<&[u8]> = envp.iter().map(|s| s.as_slice()).collect();
        let built = pmon::stack::build(stack_top, &a, &e, path, random, &aux).map_err(|_| E2BIG)?;
        // The stack is written through the process's own mapping: load the
        // space on this vCPU first.
        let cpu = lego_image::cpu::current_cpu();
        if let Some(c) = self.cpus.get_mut(cpu as usize) {
            if let (Some(views), Some(entry)) = (c.views.as_ref(), self.spaces.get(&space_id)) {
                arch::switch_user_half(views, &entry.space.pml4_entries());
                c.loaded = Some(space_id);
            }
        }
        let Some(entry) = self.spaces.get_mut(&space_id) else {
            return Err(EINVAL);
        };
        uaccess::write(&mut entry.space, built.sp, &built.image)?;
        for &(file, part) in parts {
            let ExecFile::Tmp(bytes) = file else {
                continue;
            };
            let space = &mut entry.space;
            for seg in &part.segments {
                let from = seg.offset as usize;
                let data = from
                    .checked_add(seg.filesz as usize)
                    .and_then(|end| bytes.get(from..end))
                    .ok_or(ENOEXEC)?;
                uaccess::write(space, seg.vaddr, data)?;
            }
            for seg in part.segments.iter().filter(|s| s.prot & 2 == 0) {
                let (start, end) = seg.pages();
                space.call(MemRequest {
                    op: OP_MPROTECT,
                    addr: start,
                    len: end - start,
                    prot: seg.prot,
                    ..Default::default()
                })?;
            }
        }
        Ok((built.sp, built.auxv, built.args))
    }

    /// execve for thread `tid` of the program at `path`, run by the name
    /// `execfn`: on success its process runs the new image (the system
    /// call does not return); on failure the errno. `on_host` as
    /// [`Self::load_image`]'s; `comm` the name it takes.
    pub fn execve(
        &mut self,
        tid: Tid,
        (path, execfn): (Vec<u8>, Vec<u8>),
        argv: Vec<Vec<u8>>,
        envp: Vec<Vec<u8>>,
        on_host: bool,
        comm: &[u8],
    ) -> Result<(), Errno> {
        let Some(pid) = self.threads.get(&tid).map(|t| t.pid) else {
            return Err(ESRCH);
        };
        if self.in_removed_cwd(pid, &path) {
            return Err(ENOENT);
        }
        // Relative to the working directory (the host's files, for now).
        let cwd = self
            .procs
            .get(&pid)
            .map(|p| p.cwd.clone())
            .unwrap_or_default();
        let path = self.tmp_links(
            pmon::path::dev_shm_alias(pmon::path::resolve(&cwd, &path)),
            true,
        )?;
        // A file open for writing is not run (ETXTBSY), as Linux's
        // deny_write_access: its bytes may be changing.
        const ETXTBSY: Errno = 26;
        if self
            .file_identity(&path)
            .is_some_and(|key| self.open_for_writing(key))
        {
            return Err(ETXTBSY);
        }
        let image = self.load_image(&path, &execfn, argv, &envp, &cwd, on_host)?;
        // The point of no return: other threads go, the old space goes;
        // every thread's robust locks are released first, as Linux's exec
        // does (the new program registers its own list).
        let all: Vec<Tid> = self
            .procs
            .get(&pid)
            .map(|p| p.threads.clone())
            .unwrap_or_default();
        for &t in &all {
            self.release_robust_list(t);
        }
        for t in all.into_iter().filter(|&t| t != tid) {
            self.end_thread(t);
        }
        let xsave = self.xsave_size;
        let closed;
        let exe_ino = if image.exe_on_host {
            None
        } else {
            self.file_identity(&image.exe)
        };
        let (old_space, vfork_parent) = match self.procs.get_mut(&pid) {
            Some(p) => {
                let old = p.space;
                p.space = image.space;
                p.exe = image.exe.clone();
                p.exe_ino = exe_ino;
                p.execed = true;
                p.exe_on_host = image.exe_on_host;
                p.cmdline = image.cmdline.clone();
                p.environ = image.environ.clone();
                p.auxv = image.auxv.clone();
                p.args = image.args;
                p.cred.exec();
                p.bias = image.bias;
                p.threads = alloc::vec![tid];
                closed = p.fds.exec();
                p.timers = Default::default();
                pmon::signal::reset_handlers(&mut p.actions);
                (old, p.vfork_parent.take())
            }
            None => return Err(ESRCH),
        };
        // Its name is the new program's, as Linux's comm: the name it was
        // run by (15 bytes at most).
        if let Some(t) = self.threads.get_mut(&tid) {
            t.name = [0; 16];
            let n = comm.len().min(15);
            t.name[..n].copy_from_slice(&comm[..n]);
        }
        // Closed as close(2) closes them: the process's record locks on
        // those files and its message queue notifications go too.
        for f in closed {
            self.descriptor_closed(pid, &f);
            self.release_file(f);
        }
        self.drop_space(old_space);
        for c in self.cpus.iter_mut() {
            if c.loaded == Some(old_space) {
                c.loaded = None;
            }
        }
        if let Some(t) = self.threads.get_mut(&tid) {
            let mut ctx = UserContext::new(xsave);
            ctx.frame.rip = image.entry;
            ctx.frame.rsp = image.sp;
            t.ctx = Some(Box::new(ctx));
            t.altstack = pmon::signal::AltStack {
                flags: pmon::signal::SS_DISABLE,
                ..Default::default()
            };
            t.clear_child_tid = 0;
        }
        if let Some(parent) = vfork_parent {
            self.wake(parent, OnWake::Return(pid as i64));
        }
        Ok(())
    }
}
