//! The process's view of the system: uname and sethostname, clocks and
//! sleeps, interval timers, sysinfo, times, getrusage, arch_prctl,
//! prlimit, prctl and getcwd.

use super::*;

impl Kernel {
    /// What uname says for `pid`: the host name (`which` 0) or domain name
    /// (1) of its run, the system (2), its release (3) or version (4), as
    /// /proc/sys/kernel names them.
    pub(super) fn uts_name(&self, pid: Pid, which: usize) -> &[u8] {
        let run = self.procs.get(&pid).map_or(0, |p| p.run);
        match (which, self.uts_names.get(&run)) {
            (0 | 1, Some(names)) => &names[which],
            (0, None) => b"lego",
            (1, None) => b"(none)",
            (2, _) => b"Linux",
            (3, _) => b"6.1.0-lego",
            _ => b"#1 SMP Lego splitkernel",
        }
    }

    pub(super) fn sys_uname(&mut self, pid: Pid, buf: u64) -> Ret {
        let mut u = [0u8; 6 * 65];
        let fields: [&[u8]; 6] = [
            self.uts_name(pid, 2),
            self.uts_name(pid, 0),
            self.uts_name(pid, 3),
            self.uts_name(pid, 4),
            b"x86_64",
            self.uts_name(pid, 1),
        ];
        for (i, f) in fields.iter().enumerate() {
            u[i * 65..i * 65 + f.len()].copy_from_slice(f);
        }
        val(self
            .space_mut(pid)
            .and_then(|s| uaccess::write(s, buf, &u).map(|_| 0)))
    }

    /// sethostname (`which` 0) and setdomainname (1): root's (Linux asks
    /// CAP_SYS_ADMIN), up to 64 bytes, taken as they are (no NUL needed).
    pub(super) fn sys_set_uts_name(&mut self, pid: Pid, which: usize, name: u64, len: u64) -> Ret {
        let len = len as i32;
        if !self
            .procs
            .get(&pid)
            .is_some_and(|p| p.cred.capable(pmon::caps::SYS_ADMIN))
        {
            return err(EPERM);
        }
        if !(0..=64).contains(&len) {
            return err(EINVAL);
        }
        match self
            .space_mut(pid)
            .and_then(|s| uaccess::read_vec(s, name, len as usize))
        {
            Ok(bytes) => {
                let run = self.procs.get(&pid).map_or(0, |p| p.run);
                self.uts_names
                    .entry(run)
                    .or_insert_with(|| [b"lego".to_vec(), b"(none)".to_vec()])[which] = bytes;
                Ret::Val(0)
            }
            Err(e) => err(e),
        }
    }

    /// Process `pid`'s CPU clock (Linux's CLOCK_PROCESS_CPUTIME_ID: user
    /// and system time), and that of its waited-for children, in ns.
    pub(in crate::kernel) fn cpu_ns(&self, pid: Pid) -> (u64, u64) {
        let [user, sys, child_user, child_sys] = self.times_ns(pid);
        (user + sys, child_user + child_sys)
    }

    /// Process `pid`'s user and system time, and its waited-for
    /// children's, in ns. User time is the TSC's count in user mode;
    /// system time the monitor's on its calls and faults, the exits to
    /// the VMM they take included (a memory call's round trip keeps the
    /// vCPU busy, as a disk wait would not on Linux).
    pub(in crate::kernel) fn times_ns(&self, pid: Pid) -> [u64; 4] {
        self.procs.get(&pid).map_or([0; 4], |p| {
            [p.cycles, p.sys_cycles, p.child_cycles, p.child_sys_cycles].map(|c| self.cycles_ns(c))
        })
    }

    /// Thread `tid`'s CPU clock (user and system time), in ns.
    pub(in crate::kernel) fn thread_cpu_ns(&self, tid: Tid) -> u64 {
        let (user, sys) = self.thread_times_ns(tid);
        user + sys
    }

    /// Thread `tid`'s user and system time, in ns.
    pub(in crate::kernel) fn thread_times_ns(&self, tid: Tid) -> (u64, u64) {
        self.threads.get(&tid).map_or((0, 0), |t| {
            (self.cycles_ns(t.cycles), self.cycles_ns(t.sys_cycles))
        })
    }

    /// TSC cycles in ns.
    pub(super) fn cycles_ns(&self, cycles: u64) -> u64 {
        (cycles as u128 * 1_000_000 / self.tsc_khz.max(1) as u128) as u64
    }

    pub(super) fn clock_ns(&self, pid: Pid, clock: u64) -> Result<u64, Errno> {
        let id = clock as i32;
        if id < 0 {
            return self.cpu_clock_ns(pid, id);
        }
        match id {
            0 | 5 | 8 | 11 => Ok(self.realtime_ns()),
            1 | 4 | 6 | 7 | 9 => Ok(self.now_ns()),
            2 => Ok(self.cpu_ns(pid).0),
            3 => Ok(self.thread_cpu_ns(self.caller)),
            _ => Err(EINVAL),
        }
    }

    /// A CPU-time clock of a process or thread by id, as
    /// clock_getcpuclockid and pthread_getcpuclockid make them (`~id << 3`,
    /// bit 2 for a thread, the low bits the kind): the process's or the
    /// thread's time in user mode. EINVAL for no such process, a thread of
    /// another process, or a kind Linux lacks, as Linux answers.
    pub(super) fn cpu_clock_ns(&self, pid: Pid, id: i32) -> Result<u64, Errno> {
        if id & 4 != 0 {
            return self.thread_clock(pid, id).map(|t| self.thread_cpu_ns(t));
        }
        self.process_clock(pid, id).map(|p| self.cpu_ns(p).0)
    }

    /// The thread a thread CPU clock id names (0: the caller), if it is
    /// one of `pid`'s; EINVAL otherwise.
    pub(super) fn thread_clock(&self, pid: Pid, id: i32) -> Result<Tid, Errno> {
        if id & 3 == 3 || id & 4 == 0 {
            return Err(EINVAL);
        }
        match !(id >> 3) as u32 {
            0 => Ok(self.caller),
            t => self
                .threads
                .get(&t)
                .filter(|th| th.pid == pid)
                .map(|_| t)
                .ok_or(EINVAL),
        }
    }

    /// The process a process CPU clock id names (0: the caller's).
    pub(super) fn process_clock(&self, pid: Pid, id: i32) -> Result<Pid, Errno> {
        if id & 3 == 3 || id & 4 != 0 {
            return Err(EINVAL);
        }
        match !(id >> 3) as u32 {
            0 => Ok(pid),
            p if self.procs.contains_key(&p) => Ok(p),
            _ => Err(EINVAL),
        }
    }

    pub(super) fn sys_clock_gettime(&mut self, pid: Pid, clock: u64, tp: u64) -> Ret {
        let ns = match self.clock_ns(pid, clock) {
            Ok(n) => n,
            Err(e) => return err(e),
        };
        val(self
            .space_mut(pid)
            .and_then(|s| uaccess::write(s, tp, &timespec(ns)).map(|_| 0)))
    }

    /// A timeout argument: None for a null pointer (wait for ever).
    pub(super) fn read_timeout(&mut self, pid: Pid, at: u64) -> Result<Option<u64>, Errno> {
        if at == 0 {
            return Ok(None);
        }
        self.read_timespec(pid, at).map(Some)
    }

    pub(super) fn read_timespec(&mut self, pid: Pid, at: u64) -> Result<u64, Errno> {
        let b = uaccess::read_vec(self.space_mut(pid)?, at, 16)?;
        let s = i64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
        let ns = i64::from_le_bytes(b[8..].try_into().unwrap_or([0; 8]));
        if s < 0 || !(0..1_000_000_000).contains(&ns) {
            return Err(EINVAL);
        }
        Ok((s as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(ns as u64))
    }

    /// A `struct itimerspec` at `at`: (period, value) in ns.
    pub(super) fn read_itimerspec(&mut self, pid: Pid, at: u64) -> Result<(u64, u64), Errno> {
        let period = self.read_timespec(pid, at)?;
        Ok((period, self.read_timespec(pid, at.wrapping_add(16))?))
    }

    /// nanosleep and clock_nanosleep. A sleep a handled signal ends writes
    /// what was left of it to `rem` (relative sleeps only): see
    /// `write_sleep_left`, at the interruption.
    pub(super) fn sys_nanosleep(
        &mut self,
        tid: Tid,
        clock: u64,
        flags: u64,
        req: u64,
        _rem: u64,
    ) -> Ret {
        const EOPNOTSUPP: Errno = 95;
        let pid = self.pid_of(tid);
        // Linux's clocks without a sleep: the thread CPU clocks, the raw
        // and the coarse ones; unknown ones EINVAL.
        match clock as i32 {
            3..=6 => return err(EOPNOTSUPP),
            id if id < 0 && id & 4 != 0 => return err(EOPNOTSUPP),
            id if id < 0 => {
                if let Err(e) = self.cpu_clock_ns(pid, id) {
                    return err(e);
                }
            }
            0..=11 if clock != 10 => {}
            _ => return err(EINVAL),
        }
        let ns = match self.read_timespec(pid, req) {
            Ok(n) => n,
            Err(e) => return err(e),
        };
        let deadline = if flags & 1 != 0 {
            // TIMER_ABSTIME against the clock asked for.
            let now_clock = match self.clock_ns(pid, clock) {
                Ok(n) => n,
                Err(e) => return err(e),
            };
            self.now_ns() + ns.saturating_sub(now_clock)
        } else {
            self.now_ns().saturating_add(ns)
        };
        self.block(
            tid,
            Wait::Sleep,
            Some(deadline),
            Some(0),
            OnWake::Return(-EINTR),
        );
        Ret::Block
    }

    /// alarm: the seconds left of the previous alarm (rounded as Linux
    /// does: to nearest, at least 1 while one is set).
    pub(super) fn sys_alarm(&mut self, pid: Pid, secs: u64) -> Ret {
        let now = self.now_ns();
        let Some(p) = self.procs.get_mut(&pid) else {
            return err(ESRCH);
        };
        let left = p.alarm.map_or(0, |(at, _)| {
            let ns = at.saturating_sub(now);
            ((ns + 500_000_000) / 1_000_000_000).max(1)
        });
        let secs = secs & 0xffff_ffff;
        p.alarm = (secs > 0).then(|| (now + secs * 1_000_000_000, 0));
        Ret::Val(left as i64)
    }

    /// setitimer (with `new` 0: getitimer): ITIMER_REAL on the clock,
    /// ITIMER_VIRTUAL on the process's user time, ITIMER_PROF on its user
    /// and system time.
    pub(super) fn sys_setitimer(&mut self, pid: Pid, which: u64, new: u64, old: u64) -> Ret {
        if which > 2 {
            return err(EINVAL);
        }
        let now = match which {
            0 => self.now_ns(),
            1 => self.times_ns(pid)[0],
            _ => self.cpu_ns(pid).0,
        };
        let to_tv = |ns: u64| [ns / 1_000_000_000, (ns % 1_000_000_000) / 1000];
        let current = self.procs.get(&pid).and_then(|p| match which {
            0 => p.alarm,
            w => p.cpu_timers[w as usize - 1],
        });
        let mut desc = [0u64; 4];
        if let Some((at, period)) = current {
            let [a, b] = to_tv(period);
            let [c, d] = to_tv(at.saturating_sub(now).max(1000));
            desc = [a, b, c, d];
        }
        let wanted = if new != 0 {
            let f = match self
                .space_mut(pid)
                .and_then(|s| uaccess::read_u64s::<4>(s, new))
            {
                Ok(f) => f,
                Err(e) => return err(e),
            };
            let ns = |sec: u64, usec: u64| -> Result<u64, Errno> {
                if sec > i64::MAX as u64 || usec >= 1_000_000 {
                    return Err(EINVAL);
                }
                Ok(sec
                    .saturating_mul(1_000_000_000)
                    .saturating_add(usec * 1000))
            };
            match (ns(f[0], f[1]), ns(f[2], f[3])) {
                (Ok(period), Ok(value)) => Some((value, period)),
                _ => return err(EINVAL),
            }
        } else {
            None
        };
        if old != 0 {
            let bytes: Vec<u8> = desc.iter().flat_map(|v| v.to_le_bytes()).collect();
            if let Err(e) = self
                .space_mut(pid)
                .and_then(|s| uaccess::write(s, old, &bytes))
            {
                return err(e);
            }
        }
        if let Some((value, period)) = wanted {
            if let Some(p) = self.procs.get_mut(&pid) {
                let timer = (value > 0).then(|| (now.saturating_add(value), period));
                match which {
                    0 => p.alarm = timer,
                    w => p.cpu_timers[w as usize - 1] = timer,
                }
            }
        }
        Ret::Val(0)
    }

    pub(super) fn sys_sysinfo(&mut self, pid: Pid, buf: u64) -> Ret {
        let mut s = [0u8; 112];
        let up = self.now_ns() / 1_000_000_000;
        s[0..8].copy_from_slice(&up.to_le_bytes());
        // A process's memory is its home memory component's.
        let (total, free) = match self.memory_of(pid) {
            Ok(m) => m,
            Err(e) => return err(e),
        };
        s[32..40].copy_from_slice(&total.to_le_bytes());
        s[40..48].copy_from_slice(&free.to_le_bytes());
        self.sample_load(true);
        for (i, l) in self.load.loads().into_iter().enumerate() {
            s[8 + 8 * i..16 + 8 * i].copy_from_slice(&l.to_le_bytes());
        }
        s[80..82].copy_from_slice(&(self.procs.len() as u16).to_le_bytes());
        s[104..108].copy_from_slice(&1u32.to_le_bytes());
        val(self
            .space_mut(pid)
            .and_then(|sp| uaccess::write(sp, buf, &s).map(|_| 0)))
    }

    pub(super) fn sys_times(&mut self, pid: Pid, buf: u64) -> Ret {
        let ticks = |ns: u64| ns / 10_000_000;
        if buf != 0 {
            // tms_utime, tms_stime, tms_cutime, tms_cstime.
            let mut t = [0u8; 32];
            for (i, ns) in self.times_ns(pid).into_iter().enumerate() {
                t[i * 8..i * 8 + 8].copy_from_slice(&ticks(ns).to_le_bytes());
            }
            if let Err(e) = self.space_mut(pid).and_then(|s| uaccess::write(s, buf, &t)) {
                return err(e);
            }
        }
        Ret::Val(ticks(self.now_ns()) as i64 + 1)
    }

    pub(super) fn sys_getrusage(&mut self, pid: Pid, who: i64, buf: u64) -> Ret {
        if !(-1..=1).contains(&who) {
            return err(EINVAL);
        }
        // RUSAGE_SELF, RUSAGE_CHILDREN, RUSAGE_THREAD (the caller's).
        let [user, sys, child_user, child_sys] = self.times_ns(pid);
        let (user, sys) = match who {
            -1 => (child_user, child_sys),
            1 => self.thread_times_ns(self.caller),
            _ => (user, sys),
        };
        let r = rusage_of(user, sys);
        val(self
            .space_mut(pid)
            .and_then(|s| uaccess::write(s, buf, &r).map(|_| 0)))
    }

    pub(super) fn sys_arch_prctl(&mut self, tid: Tid, code: u64, addr: u64) -> Ret {
        const ARCH_SET_FS: u64 = 0x1002;
        const ARCH_GET_FS: u64 = 0x1003;
        let pid = self.pid_of(tid);
        match code {
            ARCH_SET_FS => {
                if addr >= self.window.user_top() {
                    return err(EPERM);
                }
                if let Some(ctx) = self.threads.get_mut(&tid).and_then(|t| t.ctx.as_mut()) {
                    ctx.fs_base = addr;
                }
                Ret::Val(0)
            }
            ARCH_GET_FS => {
                let fs = self
                    .threads
                    .get(&tid)
                    .and_then(|t| t.ctx.as_ref())
                    .map_or(0, |c| c.fs_base);
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write_u64(s, addr, fs).map(|_| 0)))
            }
            // GS, CET, AMX permissions: not offered.
            _ => err(EINVAL),
        }
    }

    /// prlimit64 (and getrlimit, setrlimit on the caller): a new limit is
    /// read and checked before the old one is written back, as Linux does.
    /// `target` may name a thread (its process's limits) or the parent
    /// outside the processor, whose limits are a first process's and read
    /// only to root (decided: it may not be changed, EPERM).
    pub(super) fn sys_prlimit(
        &mut self,
        pid: Pid,
        target: Pid,
        res: u64,
        new: u64,
        old: u64,
    ) -> Ret {
        use pmon::rlimit;
        let new = if new == 0 {
            None
        } else {
            match self
                .space_mut(pid)
                .and_then(|s| uaccess::read_vec(s, new, 16))
            {
                Ok(b) => {
                    let word =
                        |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
                    Some((word(0), word(8)))
                }
                Err(e) => return err(e),
            }
        };
        let Some(me) = self.procs.get(&pid).map(|p| p.cred) else {
            return err(ESRCH);
        };
        let target = match target {
            0 => pid,
            t if self.procs.contains_key(&t) => t,
            t => match self.threads.contains_key(&t) {
                true => self.pid_of(t),
                false if self.is_outside(t) => {
                    if new.is_some() || !me.capable(pmon::caps::SYS_RESOURCE) {
                        return err(EPERM);
                    }
                    return match rlimit::initial(crate::kernel::exec::STACK_SIZE).get(res as usize)
                    {
                        Some(&limit) => self.write_rlimit(pid, old, limit),
                        None => err(EINVAL),
                    };
                }
                false => return err(ESRCH),
            },
        };
        let Some(p) = self.procs.get(&target) else {
            return err(ESRCH);
        };
        if target != pid && !me.may_prlimit(&p.cred) {
            return err(EPERM);
        }
        let Some(&current) = p.rlimits.get(res as usize) else {
            return err(EINVAL);
        };
        if let Some(limit) = new {
            let may_raise = me.capable(pmon::caps::SYS_RESOURCE);
            if let Err(e) = rlimit::check(res as usize, current, limit, may_raise) {
                return err(e);
            }
            if let Some(p) = self.procs.get_mut(&target) {
                p.rlimits[res as usize] = limit;
                if res as usize == rlimit::RLIMIT_NOFILE {
                    p.fds.limit = (limit.0 as usize).min(pmon::fd::MAX_LIMIT);
                }
            }
        }
        self.write_rlimit(pid, old, current)
    }

    /// Writes `limit` as a struct rlimit64 at `addr` of `pid`, unless 0.
    pub(super) fn write_rlimit(&mut self, pid: Pid, addr: u64, limit: (u64, u64)) -> Ret {
        if addr == 0 {
            return Ret::Val(0);
        }
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&limit.0.to_le_bytes());
        b[8..].copy_from_slice(&limit.1.to_le_bytes());
        val(self
            .space_mut(pid)
            .and_then(|s| uaccess::write(s, addr, &b))
            .map(|_| 0))
    }

    /// prctl: the options programs use on their own process and thread.
    pub(super) fn sys_prctl(&mut self, tid: Tid, a: [u64; 6]) -> Ret {
        const PR_SET_PDEATHSIG: u64 = 1;
        const PR_GET_PDEATHSIG: u64 = 2;
        const PR_GET_DUMPABLE: u64 = 3;
        const PR_SET_DUMPABLE: u64 = 4;
        const PR_SET_NAME: u64 = 15;
        const PR_GET_NAME: u64 = 16;
        const PR_SET_CHILD_SUBREAPER: u64 = 36;
        const PR_GET_CHILD_SUBREAPER: u64 = 37;
        const PR_SET_NO_NEW_PRIVS: u64 = 38;
        const PR_SET_TIMERSLACK: u64 = 29;
        const PR_GET_TIMERSLACK: u64 = 30;
        const PR_GET_NO_NEW_PRIVS: u64 = 39;
        let pid = self.pid_of(tid);
        if let Some(r) = self.prctl_caps(pid, a) {
            return r;
        }
        let (option, arg) = (a[0], a[1]);
        match option {
            PR_SET_PDEATHSIG if arg <= 64 => val(self
                .proc_mut(pid)
                .map(|p| p.pdeath_signal = arg as u32)
                .map(|_| 0)),
            PR_SET_CHILD_SUBREAPER => val(self
                .proc_mut(pid)
                .map(|p| p.subreaper = arg != 0)
                .map(|_| 0)),
            PR_GET_CHILD_SUBREAPER => {
                let v = self.procs.get(&pid).is_some_and(|p| p.subreaper) as u32;
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write_u32(s, arg, v).map(|_| 0)))
            }
            PR_GET_PDEATHSIG => {
                let sig = self.procs.get(&pid).map_or(0, |p| p.pdeath_signal);
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write_u32(s, arg, sig).map(|_| 0)))
            }
            PR_GET_DUMPABLE => Ret::Val(self.procs.get(&pid).is_some_and(|p| p.dumpable) as i64),
            PR_SET_DUMPABLE if arg <= 1 => {
                val(self.proc_mut(pid).map(|p| p.dumpable = arg == 1).map(|_| 0))
            }
            PR_SET_NO_NEW_PRIVS if arg == 1 && a[2..5] == [0, 0, 0] => {
                val(self.proc_mut(pid).map(|p| p.no_new_privs = true).map(|_| 0))
            }
            // 0 gives back the default, as Linux (an unsigned long).
            PR_SET_TIMERSLACK => {
                if let Some(t) = self.threads.get_mut(&tid) {
                    t.timer_slack.0 = if arg == 0 { t.timer_slack.1 } else { arg };
                }
                Ret::Val(0)
            }
            PR_GET_TIMERSLACK => Ret::Val(
                self.threads
                    .get(&tid)
                    .map_or(DEFAULT_TIMER_SLACK, |t| t.timer_slack.0) as i64,
            ),
            PR_GET_NO_NEW_PRIVS => {
                Ret::Val(self.procs.get(&pid).is_some_and(|p| p.no_new_privs) as i64)
            }
            PR_SET_NAME => {
                // A longer name is cut to 15 bytes, as Linux.
                let name = match self
                    .space_mut(pid)
                    .and_then(|s| uaccess::read_cstr_cut(s, arg, 15))
                {
                    Ok(n) => n,
                    Err(e) => return err(e),
                };
                if let Some(t) = self.threads.get_mut(&tid) {
                    t.name = [0; 16];
                    t.name[..name.len()].copy_from_slice(&name);
                }
                Ret::Val(0)
            }
            PR_GET_NAME => {
                let mut name = [0u8; 16];
                let comm = self.comm_of(tid);
                name[..comm.len()].copy_from_slice(&comm);
                val(self
                    .space_mut(pid)
                    .and_then(|s| uaccess::write(s, arg, &name).map(|_| 0)))
            }
            _ => err(EINVAL),
        }
    }

    /// getcwd: the working directory as the process's root shows it; one
    /// outside that root (a chroot that did not chdir) is
    /// "(unreachable)" and its whole name, as Linux's, which glibc's
    /// getcwd and realpath turn into ENOENT (CVE-2018-1000001). A removed
    /// one is ENOENT, as Linux's getcwd(2) documents.
    pub(super) fn sys_getcwd(&mut self, pid: Pid, buf: u64, size: usize) -> Ret {
        if self.procs.get(&pid).is_some_and(|p| p.cwd_gone) {
            return err(ENOENT);
        }
        let mut cwd = self
            .procs
            .get(&pid)
            .map(|p| {
                let inside = p.root == b"/"
                    || p.cwd == p.root
                    || p.cwd
                        .strip_prefix(&p.root[..])
                        .is_some_and(|r| r.starts_with(b"/"));
                if inside {
                    pmon::path::shown_in(&p.root, &p.cwd)
                } else {
                    [&b"(unreachable)"[..], &p.cwd].concat()
                }
            })
            .unwrap_or_default();
        cwd.push(0);
        if size < cwd.len() {
            return err(ERANGE);
        }
        val(self
            .space_mut(pid)
            .and_then(|s| uaccess::write(s, buf, &cwd).map(|_| cwd.len() as i64)))
    }
}
