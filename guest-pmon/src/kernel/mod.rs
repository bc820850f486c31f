//! The processor monitor's kernel: it runs the user's program (and the
//! processes and threads it makes) at user privilege, with Linux's system
//! calls, on every vCPU (`lego-vmm --role processor ... -- PROG ARGS`).
//!
//! Shape: the logic that can be tested on a host lives in the `pmon`
//! library (ELF loading, the first stack, descriptors, pipes, futexes,
//! signal frames); this module holds the state (processes, threads,
//! address spaces) under one lock, and each vCPU runs [`cpu_loop`]: pick a
//! runnable thread, run it at user privilege until it traps
//! ([`arch::run_user`]), take the lock, handle the trap (a system call, a
//! fault, the timer), repeat. System calls that must wait (a read of an
//! empty pipe, futex, wait4, nanosleep) park the thread with what wakes it
//! and whether the call is made again or returns a value then; a vCPU with
//! nothing to run waits in its VMM until kicked.

pub mod arch;
mod exec;
mod host;
mod lock;
mod mm;
mod runs;
mod signals;
mod store;
mod syscall;
mod uaccess;
mod vdso;

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;

use lego_image::BootInfo;
use lego_proto::hypercall::TrapFrame;
use lego_proto::process::Window;
use pmon::fd::FdTable;
use pmon::futex::Futexes;
use pmon::ids::Cycle;
use pmon::pipe::Pipe;
use pmon::signal::{AltStack, SigAction, SigInfo, SigSet};

use self::arch::{UserContext, Views};

/// Bytes of a storage file kept in flight ahead of a program reading it
/// in order, and asked for at once (see `pmon::readahead`).
const READ_AHEAD_WINDOW: u64 = 8 << 20;
const READ_AHEAD_PIECE: u64 = 1 << 20;
use self::mm::Space;

/// A positive errno value.
pub type Errno = i64;
pub const EPERM: Errno = 1;
pub const ENOENT: Errno = 2;
pub const ESRCH: Errno = 3;
pub const EINTR: Errno = 4;
pub const EIO: Errno = 5;
pub const E2BIG: Errno = 7;
pub const ENOEXEC: Errno = 8;
/// A program's dynamic loader cannot be run.
pub const ELIBBAD: Errno = 80;
pub const EBADF: Errno = 9;
pub const ECHILD: Errno = 10;
pub const EAGAIN: Errno = 11;
pub const ENXIO: Errno = 6;
pub const ENOMEM: Errno = 12;
pub const EACCES: Errno = 13;
pub const EFAULT: Errno = 14;
pub const EEXIST: Errno = 17;
pub const ENODEV: Errno = 19;
pub const ENOTDIR: Errno = 20;
pub const EISDIR: Errno = 21;
pub const EINVAL: Errno = 22;
pub const ENOTTY: Errno = 25;
pub const ESPIPE: Errno = 29;
pub const EPIPE: Errno = 32;
pub const ERANGE: Errno = 34;
pub const ENAMETOOLONG: Errno = 36;
pub const ENOSYS: Errno = 38;
pub const ELOOP: Errno = 40;
pub const ETIMEDOUT: Errno = 110;

/// A thread's timer slack until prctl changes it (Linux's, 50 us).
pub const DEFAULT_TIMER_SLACK: u64 = 50_000;

pub type Pid = u32;
pub type Tid = u32;

/// The lowest and one past the highest process and thread ids (the
/// memory components know spaces by `pid_base | id`, ten bits of id).
const FIRST_ID: u32 = 2;
const ID_LIMIT: u32 = 1024;

/// What a parked thread waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Data, room or an end in a pipe.
    Pipe(usize),
    Stdin,
    Futex,
    /// A PI futex's owner handing it over (FUTEX_LOCK_PI).
    FutexPi,
    /// A child of this process changing state.
    Child,
    /// Only time.
    Sleep,
    /// A vfork child execs or exits.
    Vfork(Pid),
    /// Several things (poll, select, epoll_wait): any pipe or eventfd change.
    Any,
    /// The same, and stdin too.
    AnyStdin,
    /// A signal (pause, sigsuspend).
    Signal,
    /// One of these signals pending (rt_sigtimedwait; others interrupt).
    Signals(u64),
    /// An eventfd's counter changing.
    EventFd(usize),
    /// A file lock given up (F_SETLKW, F_OFD_SETLKW, flock).
    Lock,
    /// A System V semaphore set changing.
    Sem,
    /// A System V message queue changing.
    Msg,
    /// A datagram for this UDP socket.
    Dgram(usize),
    /// Room in this POSIX message queue.
    MQueueSend(usize),
    /// A message in this POSIX message queue.
    MQueueReceive(usize),
}

/// What happens when a parked thread wakes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnWake {
    /// The system call is made again (it checks its condition anew).
    Retry,
    /// The system call returns this.
    Return(i64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Runnable,
    Running(u32),
    Blocked {
        wait: Wait,
        deadline: Option<u64>,
        /// What to return when the deadline passes (None: Retry).
        on_timeout: Option<i64>,
        on_wake: OnWake,
        /// A signal may end the wait (EINTR or a restart).
        interruptible: bool,
    },
    Dead,
}

pub struct Thread {
    pub tid: Tid,
    pub pid: Pid,
    /// None while the thread runs on a vCPU (the vCPU holds it).
    pub ctx: Option<Box<UserContext>>,
    pub state: State,
    pub sigmask: SigSet,
    pub pending: VecDeque<SigInfo>,
    pub altstack: AltStack,
    pub clear_child_tid: u64,
    /// set_robust_list's head: the robust locks it holds, marked when it
    /// ends.
    pub robust_list: u64,
    /// The system call to make again when it next runs (Retry).
    pub restart: bool,
    /// The mask to restore after a sigsuspend-style wait ends.
    pub saved_mask: Option<SigSet>,
    /// It called sched_yield: it goes behind the others.
    pub yielded: bool,
    /// Its system call is being made again after a wake (Retry).
    pub retrying: bool,
    /// Bytes a blocking write to a pipe or stream socket wrote before it
    /// waited for room: the call goes on from there when made again, and
    /// returns them if a signal or its timeout ends the wait (Linux's
    /// pipe_write and stream sends write everything unless interrupted).
    pub written: usize,
    /// The deadline of the poll-like call it waits in, as first computed.
    pub wait_deadline: Option<Option<u64>>,
    /// Its name (prctl PR_SET_NAME), NUL-padded; empty: the program's.
    pub name: [u8; 16],
    /// prctl PR_SET_TIMERSLACK's value in ns and the one 0 gives back
    /// (kept and read back: the monitor's timers do not gather wake-ups);
    /// a fork's or a thread's both are its maker's value, as Linux's.
    pub timer_slack: (u64, u64),
    /// Its policy, priority, nice value and CPUs (kept and reported; see
    /// [`pmon::sched`]).
    pub sched: pmon::sched::Sched,
    /// TSC cycles it ran in user mode (its CPU clock; its process's is
    /// the sum, `Process::cycles`).
    pub cycles: u64,
    /// TSC cycles the monitor spent on its system calls and faults (its
    /// system time), the VMM's part of them included.
    pub sys_cycles: u64,
    /// seccomp: 0, strict (1) or filters (2), and its filters, oldest
    /// first (`syscall/seccomp.rs`). Kept by clone, fork and execve.
    pub seccomp_mode: u8,
    pub seccomp: Vec<alloc::sync::Arc<pmon::seccomp::Filter>>,
    /// The page of its last fault that its page tables allowed, and how
    /// many times it faulted there since its last system call (see
    /// `Kernel::retry_fault`).
    pub fault_retries: (u64, u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Life {
    Alive,
    /// Exited; the wait status its parent will see.
    Zombie(i32),
}

pub struct Process {
    pub pid: Pid,
    pub ppid: Pid,
    pub pgid: Pid,
    pub sid: Pid,
    pub space: u32,
    pub fds: FdTable,
    pub actions: [SigAction; 64],
    pub pending: VecDeque<SigInfo>,
    pub threads: Vec<Tid>,
    pub life: Life,
    pub cwd: Vec<u8>,
    /// Its working directory was removed while it was there (rmdir, or a
    /// rename over it; `cwd_removed`): until it changes directory, getcwd
    /// is ENOENT and names relative to it are not found.
    pub cwd_gone: bool,
    /// Its root directory (chroot), a whole path; `/` unless changed.
    pub root: Vec<u8>,
    pub umask: u32,
    /// personality(2)'s value: kept and given back (and inherited), as
    /// Linux keeps it; none of its flags changes anything here.
    pub personality: u32,
    /// The host path of the program it runs (for /proc/self/exe and the
    /// VMM's report of a fatal signal) and its load bias.
    pub exe: Vec<u8>,
    /// Its program was the host's file at `exe` (not storage's): its
    /// execve of /proc/self/exe runs that file again even if storage has
    /// one of the same name by then, as Linux runs the same inode.
    pub exe_on_host: bool,
    pub bias: u64,
    /// The signal its parent gets when it ends (SIGCHLD normally).
    pub exit_signal: u32,
    /// A vfork parent waits for this process's exec or exit.
    pub vfork_parent: Option<Tid>,
    pub rlimits: [(u64, u64); 16],
    /// Its supplementary groups (setgroups).
    pub groups: Vec<u32>,
    /// Its user and group ids ([`pmon::cred`]).
    pub cred: pmon::cred::Cred,
    /// CPU time its threads spent in user mode, in TSC cycles.
    pub cycles: u64,
    /// The same of its children that it waited for.
    pub child_cycles: u64,
    /// System time (see `Thread::sys_cycles`) of its threads, and of the
    /// children it waited for.
    pub sys_cycles: u64,
    pub child_sys_cycles: u64,
    /// ITIMER_REAL (alarm, setitimer): next expiry and period, in ns since
    /// boot. Kept across execve, not given to a fork child (as in Linux).
    pub alarm: Option<(u64, u64)>,
    /// ITIMER_VIRTUAL and ITIMER_PROF: (expiry, period) in ns of the
    /// process's CPU time.
    pub cpu_timers: [Option<(u64, u64)>; 2],
    /// Its POSIX timers (timer_create; gone at execve, not given to a
    /// fork child).
    pub timers: pmon::ptimer::Timers,
    /// Its arguments, each ended by a NUL (/proc/PID/cmdline), and when
    /// it started (ns since boot; /proc/PID/stat).
    pub cmdline: Vec<u8>,
    /// Its environment and auxiliary vector as execve gave them
    /// (/proc/PID/environ, /proc/PID/auxv).
    pub environ: Vec<u8>,
    pub auxv: Vec<u8>,
    /// Where its argument strings lie (/proc/PID/cmdline reads them).
    pub args: pmon::stack::ArgArea,
    pub started: u64,
    /// prctl: the signal it gets when its parent ends (0: none; not
    /// given to a fork child), whether it is dumpable, and no_new_privs
    /// (inherited, never unset).
    pub pdeath_signal: u32,
    /// prctl PR_SET_CHILD_SUBREAPER: orphans below it come to it, not to
    /// the first process (kept across execve, not given to a fork child).
    pub subreaper: bool,
    /// It has run execve since it was made (its parent's setpgid of it
    /// is EACCES from then on, as Linux's).
    pub execed: bool,
    /// The running program's file (the tmpfs's or storage's inode, tagged
    /// as the lock table tags them; None for the host's, which no Lego
    /// process may write): a write open of that same file is ETXTBSY.
    pub exe_ino: Option<u64>,
    pub dumpable: bool,
    pub no_new_privs: bool,
    /// /proc/PID/oom_score_adj, kept (there is no OOM killer here) and
    /// inherited as Linux's.
    pub oom_score_adj: i16,
    /// Job control: stopped or not, and what its parent's wait is yet to
    /// be told.
    pub job: JobState,
    /// The run it belongs to (0: the program after `--`), whose stdio its
    /// first three descriptors are; a fork child stays in its parent's.
    pub run: u32,
    /// The vNode whose files it sees on storage (0: the whole disk, for a
    /// program after `--`); a fork child's is its parent's.
    pub vnode: u32,
    /// The memory component its address spaces are homed at (0: the
    /// processor's default); a fork child's is its parent's.
    pub home: u32,
}

/// Which run a first process starts (0: the program after `--`) and the
/// vNode whose files it sees (0: the whole disk).
#[derive(Clone, Copy, Debug, Default)]
pub struct Origin {
    pub run: u32,
    pub vnode: u32,
    /// Its home memory component (0: the processor's own default).
    pub home: u32,
}

/// An address space and how many processes share it (vfork).
pub struct SpaceEntry {
    pub space: Space,
    pub users: u32,
}

/// The most of one trap's round trip that is taken for PVM's switches to
/// user mode and back rather than for the process's own work (see
/// `Kernel::trap`): on the first traps, before a short one has shown the
/// switches' cost, a long stretch of user work is not all system time.
const SWITCH_CAP_US: u64 = 150;

struct Cpu {
    views: Option<Views>,
    /// The space whose user half the views hold.
    loaded: Option<u32>,
    /// Its page tables changed since (shared memory): reload before the
    /// next run, which also flushes this vCPU's TLB.
    stale: bool,
    current: Option<Tid>,
    idle: bool,
    /// Time spent idle (waiting in the VMM for work), for /proc/uptime.
    idle_ns: u64,
    /// TSC cycles its threads ran in user mode, for /proc/stat.
    user_cycles: u64,
    /// The fewest TSC cycles a system call's or fault's trap has taken on
    /// this vCPU from `run_user` to the monitor's return (see
    /// `Kernel::trap`), at most [`SWITCH_CAP_US`].
    switch_floor: u64,
    /// The thread it ran last (None: it idled since), and how many times
    /// it went to another or to idle: /proc/stat's `ctxt`.
    last: Option<Tid>,
    switches: u64,
}

impl Cpu {
    /// No user half in this vCPU's views (they held an ended space's).
    fn unload_user_half(&self) {
        if let Some(views) = self.views.as_ref() {
            arch::switch_user_half(views, &[0; 256]);
        }
    }
}

/// A process's job-control state (`kernel::signals::stop_process`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobState {
    /// Stopped by a stop signal: none of its threads runs until SIGCONT.
    pub stopped: bool,
    /// The signal that stopped it, until a wait with WUNTRACED (WSTOPPED)
    /// reports it.
    pub stop_report: Option<u32>,
    /// Continued since it stopped, until a wait with WCONTINUED reports it.
    pub cont_report: bool,
}

/// The first process's parent: whoever ran lego-vmm, outside the
/// processor, seen as process 1 (init's place, as a container's programs
/// see a parent outside their namespace). It exists for the calls that
/// ask after a parent, kill(ppid, 0), getsid, getpgid and sched_get*,
/// with a root's defaults, and may not be signalled or changed (EPERM),
/// unless a process here has id 1.
pub const OUTSIDE: Pid = 1;

/// A named pipe's or a socket file's node: the tmpfs's inode, or
/// storage's (whose numbers are storage's own, so the two never meet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SpecialNode {
    Tmp(u64),
    Store(u64),
}

pub struct Kernel {
    pub window: Window,
    pub home: u32,
    /// The home of the process whose call is being served (0: `home`):
    /// where a space made now (exec, fork, a run's start) is homed.
    pub home_now: u32,
    pub pid_base: u32,
    pub tsc_khz: u64,
    pub xsave_size: usize,
    pub xstate: pmon::signal::Xstate,
    pub hwcap: u64,
    pub procs: BTreeMap<Pid, Process>,
    pub threads: BTreeMap<Tid, Thread>,
    pub spaces: BTreeMap<u32, SpaceEntry>,
    /// Spaces ended while other vCPUs still had their page tables loaded
    /// (a thread of the process in user mode there until its kick lands,
    /// or an idle vCPU that ran it last), with those vCPUs: the page-table
    /// pages and the window slot are freed once each has come back to the
    /// kernel and let go of them ([`Kernel::quiesce`]). Freed at once, the
    /// pages went back to the heap while a CPU could still walk them.
    retired: Vec<(Space, Vec<u32>)>,
    free_slots: Vec<u32>,
    /// Process and thread ids.
    ids: Cycle,
    /// Processes and threads made since boot (/proc/stat's `processes`).
    forks: u64,
    /// /proc/loadavg and sysinfo's loads, sampled as the vCPUs schedule.
    load: pmon::procfs::LoadAvg,
    /// Address-space ids (`pid_base | id` at the memory components).
    space_ids: Cycle,
    /// The node and domain names uname gives (sethostname,
    /// setdomainname) by run: each run is a UTS namespace of its own, as a
    /// container is, whose processes share them; none set: `lego` and
    /// `(none)`. They go with the run.
    pub uts_names: BTreeMap<u32, [Vec<u8>; 2]>,
    pub pipes: BTreeMap<usize, Pipe>,
    /// The named pipes that are open (the tmpfs's and storage's): node →
    /// its pipe.
    pub fifos: BTreeMap<SpecialNode, usize>,
    /// AF_UNIX sockets not connected yet, and their names.
    pub unix: pmon::unixsock::UnixSockets,
    /// Pseudo-terminals by id (a number from the pipes' ids, which
    /// their waiters wait on): the /dev/pts number and the terminal.
    pub ptys: BTreeMap<usize, (u32, pmon::pty::Pty)>,
    /// The names of a connected AF_UNIX end, by the pipe it receives
    /// from: its own and its peer's (None: unnamed).
    pub unix_names: BTreeMap<usize, (Option<pmon::unixsock::Name>, Option<pmon::unixsock::Name>)>,
    /// The options set on AF_UNIX, TCP and seqpacket sockets (level and
    /// name to value; SO_RCVTIMEO and SO_SNDTIMEO in ns), by the socket's
    /// id (a connected end's: the pipe it receives from).
    pub sock_options: BTreeMap<usize, BTreeMap<(u64, u64), u64>>,
    next_pipe: usize,
    pub futexes: Futexes,
    runq: VecDeque<Tid>,
    cpus: Vec<Cpu>,
    pub rng: rand_chacha::ChaCha20Rng,
    /// System calls made that Lego does not implement, by number.
    pub missing: BTreeMap<u64, u64>,
    /// The first process: when it ends, the program is over.
    pub init: Pid,
    /// Threads waiting on stdin (an idle vCPU also waits for it).
    pub stdin_waiters: u32,
    /// Bytes read from a run's stdin that a process could not take (a
    /// bad buffer): the next read of that stdin gets them first.
    pub stdin_back: BTreeMap<u32, Vec<u8>>,
    /// Serving runs (`lego run`): each run's first process, see `runs`.
    pub runs: BTreeMap<u32, Pid>,
    pub serve_runs: bool,
    /// The address of [`BootInfo::control_pending`].
    control_pending: usize,
    /// `--strace`: print every system call.
    pub trace: bool,
    /// /tmp: files the processes write there, in the monitor's memory.
    pub tmp: pmon::tmpfs::Tmpfs,
    /// Files are the storage component's (`--storage`), see `syscall::store`.
    pub storage: bool,
    /// Calls done again on the path a link of storage leads to, one inside
    /// another (`syscall::lookup`'s `leaving_storage`): bounds a loop of
    /// links through /tmp or /proc back onto storage.
    pub storage_exits: u8,
    /// Advisory locks on files (fcntl, flock), see `syscall::lock`.
    pub locks: pmon::locks::Locks,
    /// Threads waiting for a record lock: their process and the process
    /// holding the lock (F_SETLKW's deadlock check; only entries of
    /// threads still waiting on `Wait::Lock` count).
    pub lock_waits: BTreeMap<Tid, (Pid, Pid)>,
    /// Directories' owners and modes for the search checks of processes
    /// without CAP_DAC_OVERRIDE (`pmon::search`); path walks take `&self`.
    pub dir_cache: core::cell::RefCell<pmon::search::DirCache>,
    /// Storage files unlinked while open here: moved aside (inode ->
    /// hidden path) and removed when the last open file goes.
    pub unlinked: BTreeMap<u64, Vec<u8>>,
    /// Storage file data cached here, see `pmon::filecache`.
    pub fcache: pmon::filecache::FileCache,
    /// Where the last read of each storage file ended (read-ahead).
    pub read_ends: BTreeMap<u64, u64>,
    /// Pieces of storage files read ahead of a scan, see
    /// `pmon::readahead`, and their buffers (by flight id).
    pub ahead: pmon::readahead::ReadAhead,
    pub fetches: BTreeMap<u64, store::Fetch>,
    /// A posted write to the file failed: the errno its next write, fsync
    /// or close returns (once), as Linux reports a write-back error.
    pub write_errors: BTreeMap<u64, Errno>,
    /// Storage files opened here whose next read moves their atime
    /// (relatime's rule, decided at open).
    pub atime_due: BTreeSet<u64>,
    /// Shared writable mappings of storage files, see `syscall::shared`.
    pub shared_maps: Vec<syscall::SharedMap>,
    /// Private mappings of tmpfs and storage files, for truncation
    /// (`pmon::private_maps`).
    pub private_maps: pmon::private_maps::PrivateMaps<syscall::FileRef>,
    /// The holder of shared anonymous memory, while there is any.
    pub anon: Option<syscall::AnonHolder>,
    /// System V shared memory segments, and their attaches (space,
    /// address, segment id).
    pub sysv: pmon::sysv::Segments,
    pub sysv_attaches: Vec<syscall::Attach>,
    /// System V semaphore sets, and who waits on which (set, semaphore,
    /// for zero) for GETNCNT and GETZCNT.
    pub sems: pmon::sysv_sem::Semaphores,
    pub sem_waiters: BTreeMap<Tid, (i32, u16, bool)>,
    /// System V message queues.
    pub msgs: pmon::sysv_msg::Queues,
    /// POSIX message queues.
    pub mqueues: pmon::mqueue::MQueues,
    /// A tmpfs file with no name that an execveat runs (fexecve of a
    /// memfd or of a deleted file): the next load reads it by inode, once.
    pub exec_inode: Option<u64>,
    /// The set each signalfd reads, by id.
    pub signalfds: BTreeMap<usize, u64>,
    /// Asynchronous I/O contexts by (space, ring address), and the last
    /// ring id given (`pmon::aio`).
    pub aio: BTreeMap<(u32, u64), syscall::AioContext>,
    pub aio_ids: u32,
    /// inotify instances, by the id their descriptors carry (from the
    /// eventfds' ids; their waiters wait as an eventfd's do).
    pub inotifies: BTreeMap<usize, pmon::inotify::Instance>,
    /// The last cookie that paired an IN_MOVED_FROM with its IN_MOVED_TO.
    pub next_cookie: u32,
    /// Files whose last name went while they were open: their watches
    /// hear IN_DELETE_SELF when the last descriptor closes, as Linux's.
    pub doomed: Vec<pmon::inotify::Key>,
    /// UDP sockets on the loopback, and their SO_RCVTIMEO (ns).
    pub dgrams: pmon::dgram::Datagrams,
    pub udp_timeouts: BTreeMap<usize, u64>,
    /// NETLINK_ROUTE sockets and their types (SOCK_RAW or SOCK_DGRAM).
    pub netlinks: BTreeMap<usize, (pmon::netlink::Socket, u64)>,
    /// The thread whose system call is being made (or was last; 0 before
    /// the first): whose signals a signalfd read or poll sees.
    pub caller: Tid,
    /// Seals of tmpfs files that take them (memfds made with
    /// MFD_ALLOW_SEALING).
    pub seals: BTreeMap<pmon::tmpfs::Ino, u32>,
    /// The tmpfs nodes copied up over a name of the host's /tmp:
    /// directories, whose listings show the host's names too, and files.
    /// Only their removal asks the host whether to hide its name, so an
    /// unlink in /tmp costs no exit (tmpfs inode numbers are never
    /// reused).
    pub tmp_over_host: BTreeSet<pmon::tmpfs::Ino>,
    pub epolls: BTreeMap<usize, pmon::events::Epoll>,
    pub eventfds: BTreeMap<usize, pmon::events::EventFd>,
    /// The timers of the eventfds that are timerfds.
    pub timerfds: BTreeMap<usize, pmon::events::TimerFd>,
    next_event_id: usize,
    /// The inotify instances that carry a directory's dnotify (F_NOTIFY)
    /// registration, by instance id.
    pub dnotifies: BTreeMap<usize, syscall::Dnotify>,
    /// The files with O_ASYNC whose owners hear of them by signal.
    pub asyncs: Vec<syscall::AsyncFile>,
    /// Bumped whenever a pipe changes (edge-triggered epoll).
    pub pipe_generation: BTreeMap<usize, u64>,
    /// The clocks, as the vDSO computes them too.
    pub clock: pmon::vdso::Clock,
    /// The vDSO's page, mapped into every process (empty: none).
    pub vdso: Vec<u8>,
    /// The VMM's read-only file of the vDSO's data page and object page,
    /// which execve maps into every process (None: processes get no vDSO,
    /// and their libc makes system calls instead).
    pub vdso_file: Option<u32>,
    /// The address of [`BootInfo::host_signals`].
    host_signals: usize,
    /// The address of [`BootInfo::oom_kills`].
    oom_kills: usize,
    /// The address of [`BootInfo::oom_kill_pages`].
    oom_kill_pages: usize,
}

pub static KERNEL: lock::KernelLock<Option<Kernel>> = lock::KernelLock::new(None);
/// Secondary vCPUs wait for vCPU 0 to have set the kernel up.
static READY: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
/// The IDT every vCPU loads.
static IDT: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

fn cpuid(leaf: u32, sub: u32) -> (u32, u32, u32, u32) {
    // A trapped instruction: boot only.
    let r = core::arch::x86_64::__cpuid_count(leaf, sub);
    (r.eax, r.ebx, r.ecx, r.edx)
}

/// vCPU 0: set up, start the program, run.
pub fn start(boot: &'static BootInfo) -> ! {
    let Some(window) = Window::for_phys_bits(boot.phys_bits) else {
        panic!(
            "the VMM gave {}-bit guest-physical addresses, too few for processes",
            boot.phys_bits
        )
    };
    let idt = arch::build_idt();
    IDT.store(idt as u64, core::sync::atomic::Ordering::Release);
    lock::set_tsc_khz(boot.tsc_khz as u64);
    let views = arch::init_cpu(0, idt, boot.pvm != 0);
    uaccess::publish();
    // The extended state saved for processes: XCR0 0xe7's standard size.
    let (_, xsize, _, _) = cpuid(0xd, 0);
    let xsave_size = (xsize as usize).clamp(576, arch::XSAVE_MAX);
    let (_, _, _, edx1) = cpuid(1, 0);
    let mut seed = [0u8; 32];
    for (i, w) in boot.seed.iter().enumerate() {
        seed[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    // Mix in the CPU's own entropy, where it has some.
    let mut r: u64 = 0;
    // SAFETY: rdrand is unprivileged; a failed draw leaves r as it was.
    if unsafe { core::arch::x86_64::_rdrand64_step(&mut r) } == 1 {
        for (i, b) in r.to_le_bytes().iter().enumerate() {
            seed[i] ^= b;
        }
    }
    let boot_tsc = lego_image::cpu::rdtsc();
    store::set_own_storage(boot.storage);
    let mut k = Kernel {
        window,
        home: boot.workload_home,
        home_now: 0,
        pid_base: boot.pid_base,
        tsc_khz: (boot.tsc_khz as u64).max(1),
        xsave_size,
        xstate: pmon::signal::Xstate {
            size: xsave_size as u32,
            features: 0xe7,
        },
        hwcap: edx1 as u64,
        procs: BTreeMap::new(),
        threads: BTreeMap::new(),
        spaces: BTreeMap::new(),
        retired: Vec::new(),
        free_slots: (0..window.slots() as u32).rev().collect(),
        ids: Cycle::new(FIRST_ID, ID_LIMIT),
        forks: 0,
        load: pmon::procfs::LoadAvg::default(),
        space_ids: Cycle::new(1, ID_LIMIT),
        uts_names: BTreeMap::new(),
        pipes: BTreeMap::new(),
        fifos: BTreeMap::new(),
        unix: Default::default(),
        ptys: BTreeMap::new(),
        unix_names: BTreeMap::new(),
        sock_options: BTreeMap::new(),
        next_pipe: 1,
        futexes: Futexes::new(),
        runq: VecDeque::new(),
        cpus: (0..boot.vcpus)
            .map(|_| Cpu {
                views: None,
                loaded: None,
                stale: false,
                current: None,
                idle: false,
                idle_ns: 0,
                user_cycles: 0,
                switch_floor: (boot.tsc_khz as u64).max(1) * SWITCH_CAP_US / 1000,
                last: None,
                switches: 0,
            })
            .collect(),
        rng: <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed(seed),
        missing: BTreeMap::new(),
        init: 0,
        stdin_waiters: 0,
        stdin_back: BTreeMap::new(),
        runs: BTreeMap::new(),
        serve_runs: boot.serve_runs != 0,
        control_pending: core::ptr::addr_of!(boot.control_pending) as usize,
        trace: boot.trace_syscalls != 0,
        storage: boot.storage != 0,
        storage_exits: 0,
        locks: pmon::locks::Locks::new(),
        lock_waits: BTreeMap::new(),
        dir_cache: core::cell::RefCell::new(pmon::search::DirCache::new()),
        unlinked: BTreeMap::new(),
        shared_maps: Vec::new(),
        private_maps: Default::default(),
        anon: None,
        sysv: Default::default(),
        sysv_attaches: Vec::new(),
        sems: Default::default(),
        sem_waiters: BTreeMap::new(),
        msgs: Default::default(),
        mqueues: Default::default(),
        exec_inode: None,
        signalfds: BTreeMap::new(),
        aio: BTreeMap::new(),
        aio_ids: 0,
        inotifies: BTreeMap::new(),
        dnotifies: BTreeMap::new(),
        asyncs: Vec::new(),
        next_cookie: 0,
        doomed: Vec::new(),
        dgrams: Default::default(),
        udp_timeouts: BTreeMap::new(),
        netlinks: BTreeMap::new(),
        caller: 0,
        seals: BTreeMap::new(),
        tmp_over_host: BTreeSet::new(),
        // A quarter of the monitor's free memory (the tmpfs may take half).
        fcache: pmon::filecache::FileCache::new(lego_image::heap::free() as u64 / 4),
        read_ends: BTreeMap::new(),
        // At most an eighth of the file cache in flight, so what comes
        // is not evicted before it is read.
        ahead: pmon::readahead::ReadAhead::new(
            (lego_image::heap::free() as u64 / 32).min(READ_AHEAD_WINDOW),
            READ_AHEAD_PIECE,
        ),
        fetches: BTreeMap::new(),
        write_errors: BTreeMap::new(),
        atime_due: BTreeSet::new(),
        tmp: {
            let mut t =
                pmon::tmpfs::Tmpfs::new(lego_image::heap::free() as u64 / 2, boot.realtime_ns);
            // /dev/shm's names (`pmon::path::dev_shm_alias`).
            let _ = t.mkdir(pmon::path::DEV_SHM_DIR, 0o1777, boot.realtime_ns);
            t
        },
        epolls: BTreeMap::new(),
        eventfds: BTreeMap::new(),
        timerfds: BTreeMap::new(),
        next_event_id: 1,
        pipe_generation: BTreeMap::new(),
        clock: pmon::vdso::Clock::new(
            (boot.tsc_khz as u64).max(1),
            boot_tsc,
            boot.realtime_tsc,
            boot.realtime_ns,
        ),
        vdso: vdso::image(),
        vdso_file: None,
        host_signals: core::ptr::addr_of!(boot.host_signals) as usize,
        oom_kills: core::ptr::addr_of!(boot.oom_kills) as usize,
        oom_kill_pages: core::ptr::addr_of!(boot.oom_kill_pages) as usize,
    };
    // The data page never changes (no process may set the clock), so one
    // file holds both pages for every process.
    if !k.vdso.is_empty() {
        let mut pages = alloc::vec![0u8; 4096];
        pages[..32].copy_from_slice(&k.clock.vvar());
        pages.extend_from_slice(&k.vdso);
        k.vdso_file = host::mem_file(&pages);
        if k.vdso_file.is_none() {
            lego_image::println!(
                "processor monitor: the VMM kept no vDSO file; processes get none"
            );
        }
    }
    k.cpus[0].views = Some(views);
    if k.serve_runs {
        lego_image::println!("processor monitor: serving runs");
        *KERNEL.lock() = Some(k);
        READY.store(true, core::sync::atomic::Ordering::Release);
        cpu_loop(0)
    }
    let host::FirstProgram {
        argv,
        envp,
        cwd,
        exe,
    } = host::program_args();
    let given = argv.first().cloned().unwrap_or_default();
    let path = pmon::path::resolve(&cwd, if exe.is_empty() { &given } else { &exe });
    // With storage, the working directory is lego-vmm's if storage has
    // that directory too, else the root: a process's cwd always exists.
    let cwd = if k.storage && !k.is_storage_dir(&cwd) {
        b"/".to_vec()
    } else {
        cwd
    };
    match k.spawn_init(&path, &given, argv, envp, cwd, Origin::default()) {
        Ok(pid) => k.init = pid,
        Err(e) => k.fail_to_start(&path, e),
    }
    *KERNEL.lock() = Some(k);
    READY.store(true, core::sync::atomic::Ordering::Release);
    cpu_loop(0)
}

/// Every other vCPU: wait for vCPU 0, then run threads too.
pub fn secondary(boot: &'static BootInfo, cpu: u32) -> ! {
    while !READY.load(core::sync::atomic::Ordering::Acquire) {
        core::hint::spin_loop();
    }
    let idt = IDT.load(core::sync::atomic::Ordering::Acquire) as *mut u64;
    let views = arch::init_cpu(cpu, idt, boot.pvm != 0);
    if let Some(k) = KERNEL.lock().as_mut() {
        k.cpus[cpu as usize].views = Some(views);
    }
    cpu_loop(cpu)
}

/// Runs `f` on the kernel under its lock.
fn with<R>(f: impl FnOnce(&mut Kernel) -> R) -> R {
    let mut guard = KERNEL.lock();
    match guard.as_mut() {
        Some(k) => f(k),
        None => unreachable!("the kernel is set up before any vCPU loops"),
    }
}

const DEBUG: bool = false;

fn cpu_loop(cpu: u32) -> ! {
    loop {
        let picked = with(|k| k.pick(cpu));
        match picked {
            Some((tid, mut ctx)) => {
                if DEBUG {
                    lego_image::println!(
                        "cpu {cpu}: run {tid} at {:#x} rsp {:#x}",
                        ctx.frame.rip,
                        ctx.frame.rsp
                    );
                }
                let start = lego_image::cpu::rdtsc();
                arch::run_user(&mut ctx);
                let ran = lego_image::cpu::rdtsc().wrapping_sub(start);
                if DEBUG {
                    lego_image::println!(
                        "cpu {cpu}: trap {} from {tid} at {:#x} rax {:#x}",
                        ctx.frame.vector,
                        ctx.frame.rip,
                        ctx.frame.gprs[0]
                    );
                }
                with(|k| k.trap(cpu, tid, ctx, ran));
            }
            None => {
                let (timeout, stdin, since) = with(|k| {
                    let (timeout, stdin) = k.idle_plan(cpu);
                    (timeout, stdin, k.now_ns())
                });
                host::idle(timeout, stdin);
                with(|k| {
                    let waited = k.now_ns().saturating_sub(since);
                    let c = &mut k.cpus[cpu as usize];
                    c.idle = false;
                    c.idle_ns += waited;
                    if c.last.take().is_some() {
                        c.switches += 1;
                    }
                });
            }
        }
    }
}

impl Kernel {
    /// Nanoseconds since boot.
    pub fn now_ns(&self) -> u64 {
        self.clock.monotonic(lego_image::cpu::rdtsc())
    }

    /// The wall clock, in ns since 1970.
    pub fn realtime_ns(&self) -> u64 {
        self.clock.realtime(lego_image::cpu::rdtsc())
    }

    fn alloc_id(&mut self) -> Option<u32> {
        let (procs, threads) = (&self.procs, &self.threads);
        self.ids
            .take(|id| procs.contains_key(&id) || threads.contains_key(&id))
    }

    /// A new address space (EAGAIN when all window slots are taken).
    pub fn new_space(&mut self, brk: u64) -> Result<u32, Errno> {
        self.make_space(brk, false)
    }

    /// [`Kernel::new_space`], or (`holder`) the space that holds shared
    /// memory, which is no process's.
    pub fn make_space(&mut self, brk: u64, holder: bool) -> Result<u32, Errno> {
        let slot = self.free_slots.pop().ok_or(EAGAIN)?;
        let home = if self.home_now != 0 {
            self.home_now
        } else {
            self.home
        };
        // A home that still knows an id (its exit was lost with a
        // component that did not answer) refuses it: the next one is tried.
        let mut result = Err(EAGAIN);
        for _ in 0..4 {
            let spaces = &self.spaces;
            let Some(id) = self.space_ids.take(|id| spaces.contains_key(&id)) else {
                break;
            };
            result = Space::new(slot, self.pid_base | id, home, self.window, brk, holder)
                .map(|s| (id, s));
            if result.as_ref().err() != Some(&EEXIST) {
                break;
            }
        }
        match result {
            Ok((id, space)) => {
                self.spaces.insert(id, SpaceEntry { space, users: 1 });
                Ok(id)
            }
            Err(e) => {
                self.free_slots.push(slot);
                Err(e)
            }
        }
    }

    /// One user of a space lets go; the last destroys it.
    pub fn drop_space(&mut self, id: u32) {
        let last = match self.spaces.get_mut(&id) {
            Some(e) => {
                e.users -= 1;
                e.users == 0
            }
            None => false,
        };
        if !last {
            return;
        }
        // Its shared file mappings reach their files before it goes; a
        // storage component that does not answer loses them (as a disk
        // error loses dirty pages on Linux).
        let _ = self.flush_shared(id, 0, u64::MAX, true);
        self.drop_aio(id);
        if let Some(e) = self.spaces.remove(&id) {
            let showed_shared = !e.space.redirects.is_empty();
            let mut space = e.space;
            space.end();
            let here = lego_image::cpu::current_cpu();
            let mut holders = Vec::new();
            for (i, c) in self.cpus.iter_mut().enumerate() {
                if c.loaded != Some(id) {
                    continue;
                }
                c.loaded = None;
                if i as u32 == here {
                    c.unload_user_half();
                } else {
                    holders.push(i as u32);
                }
            }
            if holders.is_empty() {
                self.release_space(space);
            } else {
                for &cpu in &holders {
                    host::kick(cpu);
                }
                self.retired.push((space, holders));
            }
            let gone = self.futexes.drop_space(id);
            for t in gone {
                self.wake(t, OnWake::Return(0));
            }
            if showed_shared {
                self.gc_shared_anon();
            }
        }
    }

    pub fn space_of(&mut self, pid: Pid) -> Option<&mut Space> {
        let id = self.procs.get(&pid)?.space;
        self.spaces.get_mut(&id).map(|e| &mut e.space)
    }

    fn fail_to_start(&self, path: &[u8], e: Errno) -> ! {
        let what = match e {
            ENOENT => "it does not exist",
            EACCES => "it is not executable (or not readable)",
            ENOEXEC => "it is not a static x86-64 executable Lego can run",
            EISDIR => "it is a directory",
            E2BIG => "its arguments and environment are too large",
            EAGAIN => "no window slot was free for it",
            ENOMEM => "its memory component is out of memory",
            _ => "loading it failed",
        };
        lego_image::println!(
            "cannot run {}: {what} (errno {e})",
            core::str::from_utf8(path).unwrap_or("the program")
        );
        host::exit(
            lego_proto::program::ProgramExit {
                how: lego_proto::program::EXIT_STATUS,
                code: if e == ENOENT { 127 } else { 126 },
                ..Default::default()
            },
            path,
            &[],
        )
    }

    /// The next thread this vCPU runs, with its context taken out, and its
    /// address space loaded.
    fn pick(&mut self, cpu: u32) -> Option<(Tid, Box<UserContext>)> {
        self.quiesce(cpu);
        self.expire_timers();
        self.sample_load(false);
        while let Some(tid) = self.runq.pop_front() {
            let Some(t) = self.threads.get(&tid) else {
                continue;
            };
            if t.state != State::Runnable {
                continue;
            }
            let pid = t.pid;
            // A stopped process's threads wait, runnable, for SIGCONT
            // (`continue_process` puts them back in the queue).
            if self.procs.get(&pid).is_some_and(|p| p.job.stopped) {
                continue;
            }
            if self.threads.get(&tid).is_some_and(|t| t.restart) {
                // A parked system call made again.
                if let Some(t) = self.threads.get_mut(&tid) {
                    t.restart = false;
                    t.retrying = true;
                }
                self.load_space(cpu, pid);
                self.cpus[cpu as usize].current = Some(tid);
                self.syscall(tid);
                if let Some(t) = self.threads.get_mut(&tid) {
                    t.retrying = false;
                }
                if self
                    .threads
                    .get(&tid)
                    .is_none_or(|t| t.state != State::Runnable)
                {
                    self.cpus[cpu as usize].current = None;
                    continue;
                }
            }
            self.load_space(cpu, pid);
            self.deliver_signals(tid);
            // (A signal taken now may have stopped it.)
            if self.procs.get(&pid).is_some_and(|p| p.job.stopped) {
                self.cpus[cpu as usize].current = None;
                continue;
            }
            let Some(t) = self.threads.get_mut(&tid) else {
                continue;
            };
            if t.state != State::Runnable {
                continue;
            }
            let ctx = t.ctx.take()?;
            t.state = State::Running(cpu);
            self.cpus[cpu as usize].current = Some(tid);
            return Some((tid, ctx));
        }
        None
    }

    /// Makes this vCPU's user half `pid`'s space.
    fn load_space(&mut self, cpu: u32, pid: Pid) {
        let Some(space_id) = self.procs.get(&pid).map(|p| p.space) else {
            return;
        };
        self.load_space_id(cpu, space_id);
    }

    /// Runs `f` with space `space`'s user half loaded on this vCPU (to
    /// reach another process's mapping from a system call), then loads
    /// back the one before: user addresses always mean the loaded space.
    pub(in crate::kernel) fn in_space<T>(
        &mut self,
        space: u32,
        f: impl FnOnce(&mut Kernel) -> T,
    ) -> T {
        let cpu = lego_image::cpu::current_cpu();
        let Some(before) = self.cpus.get(cpu as usize).map(|c| c.loaded) else {
            return f(self);
        };
        if before == Some(space) {
            // Reloaded if its page tables changed.
            self.load_space_id(cpu, space);
            return f(self);
        }
        self.load_space_id(cpu, space);
        let out = f(self);
        if let Some(b) = before {
            self.load_space_id(cpu, b);
        }
        out
    }

    fn load_space_id(&mut self, cpu: u32, space_id: u32) {
        let c = &mut self.cpus[cpu as usize];
        if c.loaded == Some(space_id) && !c.stale {
            return;
        }
        let (Some(entry), Some(views)) = (self.spaces.get(&space_id), c.views.as_ref()) else {
            return;
        };
        arch::switch_user_half(views, &entry.space.pml4_entries());
        c.loaded = Some(space_id);
        c.stale = false;
    }

    /// This vCPU is in the kernel (back from user mode, or about to pick
    /// a thread): page tables of retired spaces it still held are let go,
    /// and a retired space no vCPU holds any more is freed.
    fn quiesce(&mut self, cpu: u32) {
        if !self.retired.iter().any(|(_, h)| h.contains(&cpu)) {
            return;
        }
        let c = &mut self.cpus[cpu as usize];
        if c.loaded.is_none() {
            c.unload_user_half();
        }
        let mut i = 0;
        while i < self.retired.len() {
            self.retired[i].1.retain(|&h| h != cpu);
            if self.retired[i].1.is_empty() {
                let (space, _) = self.retired.swap_remove(i);
                self.release_space(space);
            } else {
                i += 1;
            }
        }
    }

    /// Frees an ended space's page tables and gives back its slot.
    fn release_space(&mut self, mut space: Space) {
        self.free_slots.push(space.slot);
        space.release();
    }

    /// Threads running or runnable: those in user mode on a vCPU, those
    /// queued (the queue may hold threads that since slept), and the
    /// thread whose system call asks (`caller`), which is neither.
    fn running_threads(&self, caller: bool) -> u64 {
        let queued = self.runq.iter().filter(|t| {
            self.threads
                .get(t)
                .is_some_and(|t| t.state == State::Runnable)
        });
        let on_cpu = self.cpus.iter().filter(|c| c.current.is_some()).count();
        (on_cpu + queued.count()) as u64 + u64::from(caller)
    }

    /// Takes the load average's samples due by now (`caller`: asked by a
    /// thread's system call, which counts as running).
    fn sample_load(&mut self, caller: bool) {
        let now = self.now_ns();
        if self.load.due(now) {
            let running = self.running_threads(caller);
            self.load.sample(now, running);
        }
    }

    /// How long an idle vCPU may sleep, and whether stdin wakes it.
    fn idle_plan(&mut self, cpu: u32) -> (u64, bool) {
        // Nothing to run: the gathered writes go now.
        store::flush();
        self.cpus[cpu as usize].idle = true;
        let now = self.now_ns();
        let next = self
            .threads
            .values()
            .filter_map(|t| match t.state {
                State::Blocked {
                    deadline: Some(d), ..
                } => Some(d),
                _ => None,
            })
            .chain(self.procs.values().filter_map(|p| p.alarm.map(|a| a.0)))
            .chain(
                self.procs
                    .values()
                    .filter_map(|p| p.timers.next(pmon::ptimer::Base::Monotonic)),
            )
            .chain(self.timerfds.values().filter_map(|t| t.next))
            .min();
        let timeout = next.map_or(0, |d| d.saturating_sub(now).max(1));
        // Only one vCPU waits on stdin; the others wait for a kick.
        let stdin = self.stdin_waiters > 0 && cpu == 0;
        (timeout, stdin)
    }

    /// Wakes threads whose deadline passed; SIGALRM for expired alarms.
    fn expire_timers(&mut self) {
        store::flush_if_stale(self.now_ns());
        self.take_host_signals();
        self.take_oom_kills();
        if self.serve_runs {
            self.take_control();
        }
        let now = self.now_ns();
        let rung: Vec<Pid> = self
            .procs
            .values_mut()
            .filter_map(|p| match p.alarm {
                Some((at, period)) if at <= now => {
                    p.alarm = (period > 0).then(|| {
                        // Missed periods are not made up (one signal).
                        let behind = (now - at) / period + 1;
                        (at + behind * period, period)
                    });
                    Some(p.pid)
                }
                _ => None,
            })
            .collect();
        let fired: Vec<(usize, u64)> = self
            .timerfds
            .iter_mut()
            .filter_map(|(&id, t)| Some((id, t.expire(now))).filter(|&(_, n)| n > 0))
            .collect();
        for (id, n) in fired {
            if let Some(e) = self.eventfds.get_mut(&id) {
                e.add(n);
            }
            self.wake_all(Wait::EventFd(id));
        }
        let timers: Vec<(Pid, Vec<(i32, u64)>)> = self
            .procs
            .values_mut()
            .filter(|p| !p.timers.is_empty())
            .map(|p| (p.pid, p.timers.expire(pmon::ptimer::Base::Monotonic, now)))
            .collect();
        for (pid, due) in timers {
            for (id, n) in due {
                self.timer_expired(pid, id, n);
            }
        }
        for pid in rung {
            let info = pmon::signal::SigInfo {
                code: 0x80, // SI_KERNEL, as Linux sends SIGALRM
                ..pmon::signal::SigInfo::user(pmon::signal::SIGALRM, 0x80, 0)
            };
            self.signal_process(pid, info);
        }
        let due: Vec<(Tid, Option<i64>)> = self
            .threads
            .values()
            .filter_map(|t| match t.state {
                State::Blocked {
                    deadline: Some(d),
                    on_timeout,
                    ..
                } if d <= now => Some((t.tid, on_timeout)),
                _ => None,
            })
            .collect();
        for (tid, on_timeout) in due {
            self.futexes.cancel(tid);
            let w = match on_timeout {
                Some(v) => OnWake::Return(v),
                None => OnWake::Retry,
            };
            self.wake(tid, w);
        }
        // Stdin: whoever waits retries (a vCPU woke for it, or time passed).
        if self.stdin_waiters > 0 {
            let waiting: Vec<Tid> = self
                .threads
                .values()
                .filter(|t| {
                    matches!(
                        t.state,
                        State::Blocked {
                            wait: Wait::Stdin | Wait::AnyStdin,
                            ..
                        }
                    )
                })
                .map(|t| t.tid)
                .collect();
            for t in waiting {
                self.wake(t, OnWake::Retry);
            }
        }
    }

    /// Parks the current thread.
    pub fn block(
        &mut self,
        tid: Tid,
        wait: Wait,
        deadline: Option<u64>,
        on_timeout: Option<i64>,
        on_wake: OnWake,
    ) {
        if let Some(t) = self.threads.get_mut(&tid) {
            t.state = State::Blocked {
                wait,
                deadline,
                on_timeout,
                on_wake,
                interruptible: true,
            };
            if matches!(wait, Wait::Stdin | Wait::AnyStdin) {
                self.stdin_waiters += 1;
            }
        }
    }

    /// Makes a parked thread runnable again; `how` says what its system
    /// call does then.
    pub fn wake(&mut self, tid: Tid, how: OnWake) {
        let Some(t) = self.threads.get_mut(&tid) else {
            return;
        };
        let State::Blocked { wait, .. } = t.state else {
            return;
        };
        if matches!(wait, Wait::Stdin | Wait::AnyStdin) {
            self.stdin_waiters = self.stdin_waiters.saturating_sub(1);
        }
        if let Some(ctx) = t.ctx.as_mut() {
            match how {
                OnWake::Retry => t.restart = true,
                OnWake::Return(v) => {
                    ctx.frame.gprs[0] = v as u64;
                    t.written = 0;
                }
            }
        }
        t.state = State::Runnable;
        self.runq.push_back(tid);
        self.kick_idle();
    }

    /// Wakes every thread parked on `wait`, to make its call again.
    pub fn wake_all(&mut self, wait: Wait) {
        let who: Vec<Tid> = self
            .threads
            .values()
            .filter(|t| matches!(t.state, State::Blocked { wait: w, .. } if w == wait || w == Wait::Any || w == Wait::AnyStdin))
            .map(|t| t.tid)
            .collect();
        for t in who {
            self.wake(t, OnWake::Retry);
        }
    }

    /// Asks an idle vCPU to come and run what is queued.
    fn kick_idle(&mut self) {
        if let Some(i) = self.cpus.iter().position(|c| c.idle) {
            self.cpus[i].idle = false;
            host::kick(i as u32);
        }
    }

    /// A thread came back from user mode.
    /// `ran`: TSC cycles from `run_user` to its return here.
    ///
    /// Those cycles hold PVM's switch into user mode and the switch back
    /// on the trap, which the host makes and the monitor cannot time
    /// apart from the process's own work. A system call costs Linux's
    /// process its entry and exit as system time; here they are most of
    /// a short call (getppid took 57 us on an AMD EPYC host, 0.2 us of
    /// it in the monitor), and a program making system calls read as
    /// busy in user mode. So a system call's or fault's trap counts the
    /// fewest cycles such a trap has taken on this vCPU (the switches,
    /// and the least user work there is) as system time; a tick's, which
    /// interrupted user work, counts as user time whole.
    fn trap(&mut self, cpu: u32, tid: Tid, ctx: Box<UserContext>, ran: u64) {
        let vector = ctx.frame.vector;
        let c = &mut self.cpus[cpu as usize];
        c.current = None;
        let switches = if vector == arch::VECTOR_TIMER {
            0
        } else {
            c.switch_floor = c.switch_floor.min(ran);
            c.switch_floor
        };
        let ran = ran - switches;
        c.user_cycles += ran;
        if c.last.replace(tid) != Some(tid) {
            c.switches += 1;
        }
        self.quiesce(cpu);
        // Page tables of the loaded space changed while this vCPU ran or
        // waited for the lock (shared memory): reload them before the
        // monitor touches user memory through them.
        if let Some(space) = self.cpus[cpu as usize]
            .loaded
            .filter(|_| self.cpus[cpu as usize].stale)
        {
            self.load_space_id(cpu, space);
        }
        let Some(t) = self.threads.get_mut(&tid) else {
            return;
        };
        let pid = t.pid;
        t.ctx = Some(ctx);
        t.cycles += ran;
        if let Some(p) = self.procs.get_mut(&pid) {
            p.cycles += ran;
            let process = p.cpu_timers.iter().any(Option::is_some)
                || p.rlimits[pmon::rlimit::RLIMIT_CPU].0 != pmon::rlimit::INFINITY
                || p.timers.next(pmon::ptimer::Base::CpuTime).is_some();
            let thread = p.timers.next(pmon::ptimer::Base::ThreadCpu(tid)).is_some();
            if process {
                self.expire_cpu_timers(pid);
            }
            if thread {
                self.expire_thread_cpu_timers(pid, tid);
            }
        }
        let Some(t) = self.threads.get_mut(&tid) else {
            return;
        };
        if t.state == State::Dead {
            self.reap_thread(tid);
            return;
        }
        t.state = State::Runnable;
        let began = lego_image::cpu::rdtsc().saturating_sub(switches);
        match vector {
            arch::VECTOR_SYSCALL => {
                t.fault_retries = (0, 0);
                self.syscall(tid);
                self.charge_system(tid, pid, began);
            }
            // The VMM's tick (or a kick): timers, then the others queued
            // here get their turn.
            arch::VECTOR_TIMER => {
                self.expire_timers();
                if !self.runq.is_empty() {
                    if let Some(t) = self.threads.get_mut(&tid) {
                        t.yielded = true;
                    }
                }
            }
            v => {
                self.exception(tid, v);
                self.charge_system(tid, pid, began);
            }
        }
        if let Some(t) = self.threads.get_mut(&tid) {
            if t.state == State::Runnable {
                if core::mem::take(&mut t.yielded) {
                    self.runq.push_back(tid);
                } else {
                    // Run it next on this vCPU, ahead of others: no switch.
                    self.runq.push_front(tid);
                }
            }
        }
    }

    /// The monitor's time since `began` (TSC) on thread `tid` of `pid`:
    /// system time of both, whichever still lives.
    fn charge_system(&mut self, tid: Tid, pid: Pid, began: u64) {
        let spent = lego_image::cpu::rdtsc().saturating_sub(began);
        if let Some(t) = self.threads.get_mut(&tid) {
            t.sys_cycles += spent;
        }
        if let Some(p) = self.procs.get_mut(&pid) {
            p.sys_cycles += spent;
        }
    }

    /// Whether thread `tid`'s fault at `addr`, which its page tables allow,
    /// is made again: yes, unless it faulted there three times since its
    /// last system call (a fault that a reload does not cure is real).
    fn retry_fault(&mut self, tid: Tid, addr: u64) -> bool {
        let Some(t) = self.threads.get_mut(&tid) else {
            return false;
        };
        let page = addr & !0xfff;
        t.fault_retries = match t.fault_retries {
            (p, n) if p == page => (p, n.saturating_add(1)),
            _ => (page, 1),
        };
        t.fault_retries.1 <= 3
    }

    /// An exception a process took: a vRegion to map, or a signal.
    fn exception(&mut self, tid: Tid, vector: u64) {
        use pmon::signal::*;
        let Some(t) = self.threads.get(&tid) else {
            return;
        };
        let Some(ctx) = t.ctx.as_ref() else { return };
        let (rip, err) = (ctx.frame.rip, ctx.frame.error_code);
        let pid = t.pid;
        let info = match vector {
            14 => {
                let cr2 = lego_image::cpu::read_cr2();
                if err & lego_proto::process::PF_REFUSED as u64 != 0 {
                    // The memory component refused the access: mark the page
                    // and let the CPU fault on it, with the exact address.
                    let protection = err & 1 != 0;
                    let write = err & 2 != 0 && protection;
                    let refused = self.space_of(pid).map(|s| s.refuse(cr2, write, protection));
                    // Unless the access has completed already (see
                    // PF_COMPLETED): then the fault below is its SIGSEGV.
                    if refused == Some(Ok(()))
                        && err & lego_proto::process::PF_COMPLETED as u64 == 0
                    {
                        return;
                    }
                }
                if let Some(Ok(true)) = self.space_of(pid).map(|s| s.fault_in(cr2)) {
                    return;
                }
                // The page tables allow the access: this vCPU faulted on a
                // translation another vCPU changed meanwhile (it is kicked
                // to reload, and the access came first). The access is made
                // again after a reload, a few times at most.
                let write = err & 2 != 0;
                if self.space_of(pid).is_some_and(|s| s.allows(cr2, write))
                    && self.retry_fault(tid, cr2)
                {
                    let cpu = lego_image::cpu::current_cpu();
                    if let (Some(c), Some(space)) = (
                        self.cpus.get_mut(cpu as usize),
                        self.procs.get(&pid).map(|p| p.space),
                    ) {
                        c.stale = true;
                        self.load_space_id(cpu, space);
                    }
                    return;
                }
                let accerr = err & 1 != 0
                    || self
                        .space_of(pid)
                        .is_some_and(|s| s.refused_for_protection(cr2));
                let code = if accerr { SEGV_ACCERR } else { SEGV_MAPERR };
                SigInfo::fault(SIGSEGV, code, cr2)
            }
            0 => SigInfo::fault(SIGFPE, FPE_INTDIV, rip),
            1 => SigInfo::fault(SIGTRAP, TRAP_BRKPT, rip),
            // int3: as Linux's do_int3_user, a kernel-sent SIGTRAP
            // (SI_KERNEL, no address).
            3 => SigInfo::fault(SIGTRAP, 0x80, 0),
            6 => SigInfo::fault(SIGILL, ILL_ILLOPN, rip),
            16 | 19 => SigInfo::fault(SIGFPE, 0, rip),
            17 => SigInfo::fault(SIGBUS, BUS_ADRERR, 0),
            // #GP and anything else: SIGSEGV with no address (SI_KERNEL).
            _ => SigInfo {
                code: 0x80,
                ..SigInfo::fault(SIGSEGV, 0x80, 0)
            },
        };
        if self.trace {
            // As strace shows a fault: the signal, its code and address,
            // and where the process was.
            lego_image::println!(
                "[{pid} {tid}] --- signal {} (code {:#x}, address {:#x}) from exception {vector} at {rip:#x}, error {err:#x} ---",
                info.signo,
                info.code,
                info.addr
            );
        }
        self.force_signal(tid, info, err, vector);
    }

    /// Ends a thread for good once no vCPU holds it.
    fn reap_thread(&mut self, tid: Tid) {
        if let Some(t) = self.threads.get(&tid) {
            if matches!(t.state, State::Running(_)) {
                return;
            }
        }
        self.threads.remove(&tid);
        self.lock_waits.remove(&tid);
    }
}

/// The name of a system call for the log of missing ones.
pub fn syscall_name(nr: u64) -> &'static str {
    pmon::sysno::name(nr).unwrap_or("(unknown)")
}

/// The frame's system-call arguments.
pub fn args(f: &TrapFrame) -> [u64; 6] {
    // rdi, rsi, rdx, r10, r8, r9 in GPR_NAMES order: 5, 4, 3, 9, 7, 8.
    [
        f.gprs[5], f.gprs[4], f.gprs[3], f.gprs[9], f.gprs[7], f.gprs[8],
    ]
}
