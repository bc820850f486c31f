//! How the processor monitor runs a user's program: the hypercalls it makes
//! to its VMM for what only the host has (the program's file, lego-vmm's
//! stdin, stdout and stderr, the exit status), and the structs they carry.
//!
//! Each hypercall is one exit (about 27 us here), so they sit where a
//! Linux system call would have to leave the machine anyway: a read of
//! stdin, a write to stdout, a file read during execve. Calls a process
//! makes that the monitor can serve alone (getpid, clock_gettime, pipes,
//! futexes between its threads) never come here.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The address of a [`ProgramArgs`]: copy the program's argv and
/// environment into the guest.
pub const PORT_PROGRAM_ARGS: u16 = 0x610;
/// The address of a [`HostOpen`]: open a host file for reading (execve of
/// a host path).
pub const PORT_HOST_OPEN: u16 = 0x611;
/// The address of a [`HostRead`].
pub const PORT_HOST_READ: u16 = 0x612;
/// EAX = a handle from [`PORT_HOST_OPEN`]: close it.
pub const PORT_HOST_CLOSE: u16 = 0x613;
/// The address of a [`Load`]: copy part of an opened host file into a
/// process's memory at its memory components, page by page.
pub const PORT_LOAD: u16 = 0x614;
/// The address of a [`StdioCall`]: write to lego-vmm's stdout or stderr,
/// read its stdin, or answer an ioctl about one of them.
pub const PORT_STDIO: u16 = 0x615;
/// The address of a [`ProgramExit`]: the program is over.
pub const PORT_PROGRAM_EXIT: u16 = 0x616;
/// The address of an [`Idle`]: this vCPU has nothing to run; return when
/// another vCPU kicks it, stdin becomes readable (if asked), or the time is up.
pub const PORT_IDLE: u16 = 0x617;
/// EAX = a vCPU index: end that vCPU's [`PORT_IDLE`] (it has work now).
pub const PORT_KICK: u16 = 0x618;
/// The address of a [`HostStat`]: stat a host path.
pub const PORT_HOST_STAT: u16 = 0x619;
/// The address of a [`HostReaddir`]: read entries of an opened host directory.
pub const PORT_HOST_READDIR: u16 = 0x61a;
/// The address of a [`HostReadlink`].
pub const PORT_HOST_READLINK: u16 = 0x61b;
/// The address of a [`HostStatfs`]: statfs of a host path.
pub const PORT_HOST_STATFS: u16 = 0x61c;
/// The address of a [`StorageCall`]: a file call to the processor's
/// storage component (`--storage`).
pub const PORT_STORAGE_CALL: u16 = 0x61d;
/// The address of a [`StorageBatch`]: several file calls sent at once
/// (the pieces of one large read or write), answered in one exit.
pub const PORT_STORAGE_BATCH: u16 = 0x61e;
/// The address of a [`ControlNext`]: the next thing `lego run`, `ps` or
/// `kill` asks of a processor that serves runs (`BootInfo::serve_runs`).
pub const PORT_CONTROL_NEXT: u16 = 0x61f;
/// The address of a [`ControlDone`]: the answer to one [`ControlNext`].
pub const PORT_CONTROL_DONE: u16 = 0x620;
/// The address of a [`RunExit`]: a run's first process ended.
pub const PORT_RUN_EXIT: u16 = 0x621;
/// The address of a [`StorageBatch`] of file writes sent without waiting
/// for their answers (write-behind, as a page cache writes back): the
/// exit returns once they are sent. Their replies are kept by the VMM
/// ([`StorageCall::reply`] is not written) and collected with
/// [`PORT_STORAGE_SETTLE`]; at most [`STORAGE_POSTED_MAX`] stay
/// unanswered, so a post may first wait for the oldest.
pub const PORT_STORAGE_POST: u16 = 0x622;
/// The address of a [`StorageSettle`]: waits for posted calls.
pub const PORT_STORAGE_SETTLE: u16 = 0x623;
/// The address of a [`StorageFetch`]: file reads started without waiting
/// (read-ahead behind a program reading a file in order), and earlier ones
/// collected, in one exit.
pub const PORT_STORAGE_FETCH: u16 = 0x624;
/// The guest-physical address of the monitor's lock word: the vCPU waits
/// in the VMM while the word stays [`LOCK_CONTENDED`] (a futex wait; a
/// few milliseconds at most, then it looks again).
pub const PORT_LOCK_WAIT: u16 = 0x625;
/// The monitor's lock was let go with waiters: the VMM wakes them.
pub const PORT_LOCK_WAKE: u16 = 0x626;
/// The monitor's lock word when it is held and some vCPU may wait for it.
pub const LOCK_CONTENDED: u32 = 2;
/// The address of a [`MemFile`]: bytes of guest memory become a read-only
/// host file (a memfd) with a handle, which [`PORT_LOAD`] maps as it maps
/// a program's file. The vDSO's two pages: every process maps them from
/// it, and nothing is copied to the memory components.
pub const PORT_MEM_FILE: u16 = 0x627;
/// The most bytes a [`MemFile`] takes.
pub const MEM_FILE_MAX: u64 = 1 << 16;
/// The last of the program ports.
pub const PORT_PROGRAM_LAST: u16 = PORT_MEM_FILE;

/// [`PORT_MEM_FILE`]'s argument.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct MemFile {
    /// Guest-physical address and length of the bytes.
    pub buf: u64,
    pub len: u64,
    /// Written by the VMM: the file's handle (0 when `errno` is not).
    pub handle: u32,
    pub errno: u32,
}

/// [`HostOpen::flags`]: open to execute (a regular file with an execute
/// bit), or to read (any file or directory).
pub const OPEN_EXEC: u32 = 0;
pub const OPEN_READ: u32 = 1;
/// With [`OPEN_READ`]: a path that a symbolic link of the host's leads
/// into /proc, /sys, /dev or /tmp, which a processor serves itself, is not
/// opened but answered [`ELSEWHERE`] (Debian's /etc/mtab is a link to
/// /proc/mounts: the guest follows the links and serves the target).
pub const OPEN_SAY_ELSEWHERE: u32 = 2;
/// [`HostOpen::errno`] for [`OPEN_SAY_ELSEWHERE`]: outside Linux's errnos.
pub const ELSEWHERE: u32 = 0x1_0000;
/// The trees a processor serves itself rather than from the host's files
/// (a host path in one of them is never answered [`ELSEWHERE`]).
pub const SERVED_TREES: [&str; 4] = ["/proc", "/sys", "/dev", "/tmp"];

/// What stat says of a host file, as Linux's struct stat holds it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct FileStat {
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub _pad: u32,
    pub rdev: u64,
    pub size: u64,
    pub blksize: u64,
    pub blocks: u64,
    pub atime: u64,
    pub atime_ns: u64,
    pub mtime: u64,
    pub mtime_ns: u64,
    pub ctime: u64,
    pub ctime_ns: u64,
}

/// PORT_STORAGE_CALL's argument: a request encoded by
/// [`crate::storage::encode_request`] at `request`, and room for the reply
/// at `reply`. The VMM sends the request to the storage component, waits
/// at most the fabric timeout, and writes the reply and its length, or
/// `status` [`STORAGE_UNREACHABLE`] (the component did not answer) or
/// [`STORAGE_NONE`] (this processor has no `--storage`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct StorageCall {
    pub request: u64,
    pub request_len: u32,
    pub reply_room: u32,
    pub reply: u64,
    /// Written by the VMM.
    pub reply_len: u32,
    pub status: u32,
    /// The storage component to ask (0: the processor's own, `--storage`
    /// or the rack's first): a run's vNode may live on another.
    pub node: u32,
    pub _pad: u32,
    /// A posted call's tag (the file), returned with its failure.
    pub tag: u64,
}

/// PORT_STORAGE_BATCH's argument: `count` (at most
/// [`STORAGE_BATCH_MAX`]) [`StorageCall`]s at `calls`. The VMM sends them
/// all before it waits for any, so the storage component serves them back
/// to back; each gets its own status and reply, as if called alone.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct StorageBatch {
    pub calls: u64,
    pub count: u32,
    /// Written by the VMM after a [`PORT_STORAGE_POST`]: posted calls
    /// that failed and were not reported yet (collect them with
    /// [`PORT_STORAGE_SETTLE`]).
    pub failed: u32,
}

/// The most calls one [`StorageBatch`] carries.
pub const STORAGE_BATCH_MAX: u32 = 32;

/// Posted calls the VMM lets be unanswered at once (4 MiB of 64 KiB writes).
pub const STORAGE_POSTED_MAX: u32 = 64;

/// PORT_STORAGE_FETCH's argument. The VMM first starts the `start_count`
/// [`StorageCall`]s at `start` (read requests; each call's `tag` names it,
/// unique among the calls not collected yet) and keeps their replies; then
/// it takes the `collect_count` calls at `collect`, found by their tags:
/// with `drop` 0 it waits for each (at most the fabric timeout) and writes
/// its reply where the call said when it started, and its `status` and
/// `reply_len` into the call at `collect`, as [`PORT_STORAGE_BATCH`] does;
/// with `drop` 1 it forgets them. At most [`STORAGE_FETCH_MAX`] calls are
/// kept: a tag it does not hold is [`STORAGE_NOT_KEPT`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct StorageFetch {
    pub start: u64,
    pub collect: u64,
    pub start_count: u32,
    pub collect_count: u32,
    pub drop: u32,
    pub _pad: u32,
}

/// Read calls the VMM keeps uncollected at once (8 MiB of 64 KiB reads).
pub const STORAGE_FETCH_MAX: u32 = 128;

/// PORT_STORAGE_SETTLE's argument. The VMM waits until at most `keep`
/// posted calls are unanswered, then reports the oldest failure not yet
/// reported (`failed` 1, its `tag` and `errno`: the storage component's
/// answer, or EIO when it did not answer), or `failed` 0; `pending` is
/// what is still unanswered. Failures are reported once each.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct StorageSettle {
    pub keep: u32,
    /// Written by the VMM.
    pub pending: u32,
    pub failed: u32,
    pub errno: u32,
    pub tag: u64,
}

/// [`StorageCall::status`] values.
pub const STORAGE_OK: u32 = 0;
pub const STORAGE_NONE: u32 = 1;
pub const STORAGE_UNREACHABLE: u32 = 2;
/// The reply did not fit `reply_room`, or the request was malformed.
pub const STORAGE_BAD: u32 = 3;
/// A [`PORT_STORAGE_FETCH`] call collected that the VMM does not hold
/// (it kept [`STORAGE_FETCH_MAX`] already, or the tag was in use).
pub const STORAGE_NOT_KEPT: u32 = 4;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct HostStat {
    pub path: u64,
    pub path_len: u64,
    /// 1: follow a final symbolic link (stat), 0: not (lstat).
    pub follow: u32,
    /// Written by the VMM.
    pub errno: u32,
    pub stat: FileStat,
}

/// Reads directory entries from the `offset`-th on, as linux_dirent64
/// records; `result` is the bytes written (0 at the end) or -errno, and
/// `offset` is advanced past the entries written.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct HostReaddir {
    pub handle: u32,
    pub _pad: u32,
    pub offset: u64,
    pub buf: u64,
    pub len: u64,
    pub result: i64,
}

/// statfs of a host path: `statfs` is Linux's struct statfs (x86-64: 15
/// 64-bit words), written by the VMM with `errno` 0, or `errno`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct HostStatfs {
    pub path: u64,
    pub path_len: u64,
    pub errno: u32,
    pub _pad: u32,
    pub statfs: [u64; 15],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct HostReadlink {
    pub path: u64,
    pub path_len: u64,
    pub buf: u64,
    pub len: u64,
    /// Bytes written, or -errno.
    pub result: i64,
}

/// [`StdioCall::op`] values.
pub const STDIO_WRITE: u32 = 1;
pub const STDIO_READ: u32 = 2;
/// An ioctl on the fd; `arg` is the request, the buffer receives the
/// answer (struct termios or struct winsize); result 0 or -errno.
pub const STDIO_IOCTL: u32 = 3;
/// fstat: the buffer receives a [`StdioStat`].
pub const STDIO_STAT: u32 = 4;
/// lseek on the fd: `arg` is the offset (an i64), `len` the whence;
/// result the new offset or -errno (-ESPIPE for a pipe, a terminal or a
/// run's connection).
pub const STDIO_SEEK: u32 = 5;
/// pread on the fd: `arg` is the offset, the buffer receives up to `len`
/// bytes; result the count or -errno (-ESPIPE as for [`STDIO_SEEK`]).
pub const STDIO_PREAD: u32 = 6;
/// pwrite on the fd: `len` bytes of the buffer at offset `arg`.
pub const STDIO_PWRITE: u32 = 7;

/// Linux's errno values the VMM answers with (negated in results).
pub const EAGAIN: i64 = 11;
pub const EBADF: i64 = 9;
pub const EFAULT: i64 = 14;
pub const EINVAL: i64 = 22;
pub const ENOTTY: i64 = 25;
pub const EPIPE: i64 = 32;
pub const ENOENT: i64 = 2;
pub const EIO: i64 = 5;
pub const ESPIPE: i64 = 29;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ProgramArgs {
    /// Guest-physical buffer: the argv strings, then the environment
    /// strings, then lego-vmm's working directory, each ending with NUL.
    pub buf: u64,
    pub buf_len: u64,
    /// Written by the VMM: the bytes the blob needs (nothing is copied
    /// when it exceeds `buf_len`), and the counts.
    pub needed: u64,
    pub argc: u32,
    pub envc: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct HostOpen {
    /// Guest-physical address and length of the path.
    pub path: u64,
    pub path_len: u64,
    /// Written by the VMM: the handle, the file's size, and 0 or an errno.
    pub handle: u32,
    pub errno: u32,
    pub size: u64,
    /// [`OPEN_EXEC`] or [`OPEN_READ`].
    pub flags: u32,
    pub _pad: u32,
    /// Written by the VMM: what stat says of it.
    pub stat: FileStat,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct HostRead {
    pub handle: u32,
    pub _pad: u32,
    pub offset: u64,
    /// Guest-physical destination.
    pub buf: u64,
    pub len: u64,
    /// Written by the VMM: bytes read, or -errno.
    pub result: i64,
}

/// Copies `filesz` bytes at `offset` of an opened host file to the
/// process in `slot` at `va` (page-aligned, as segments load), zero-filling
/// the rest of the last page. A mapping that allows writes is written to
/// the memory components directly; one that does not (a program's text
/// and constants, a read-only mmap) is not copied at all: the processor's
/// ExCache reads each page from the file at its first access, and copies
/// them to the memory components only if a later mprotect or mremap needs
/// it (`vmm/src/excache/filed.rs`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Load {
    pub handle: u32,
    pub slot: u32,
    pub offset: u64,
    pub filesz: u64,
    pub va: u64,
    /// Written by the VMM: 0, or an errno (EFAULT when a page was refused).
    pub result: i64,
    /// The segment's protection (PROT_*): without PROT_WRITE, the pages
    /// are read from the file as they are touched.
    pub prot: u32,
    pub _reserved: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct StdioCall {
    /// `STDIO_*`.
    pub op: u32,
    /// 0, 1 or 2: lego-vmm's own stdin, stdout, stderr.
    pub fd: u32,
    /// Guest-physical buffer.
    pub buf: u64,
    pub len: u64,
    pub arg: u64,
    /// Written by the VMM: bytes moved, 0 at end of input, or -errno
    /// (-EAGAIN: no input yet; -EPIPE: nobody reads the output).
    pub result: i64,
    /// The run whose stdio this is (0: lego-vmm's own, for the program
    /// after `--`; otherwise a `lego run`'s, see [`ControlNext`]).
    pub run: u32,
    pub _pad: u32,
}

/// What fstat needs about one of lego-vmm's stdio files.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct StdioStat {
    pub mode: u32,
    pub _pad: u32,
    pub size: u64,
    pub rdev: u64,
    pub ino: u64,
    pub dev: u64,
    pub blksize: u64,
}

/// [`ProgramExit::how`] values.
pub const EXIT_STATUS: u32 = 0;
pub const EXIT_SIGNAL: u32 = 1;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ProgramExit {
    /// `EXIT_*`.
    pub how: u32,
    /// The exit status (0-255), or the signal number.
    pub code: u32,
    /// For a signal from a fault: the faulting address and where.
    pub addr: u64,
    pub rip: u64,
    /// 1 when `addr`/`rip` are meaningful.
    pub fault: u32,
    pub _pad: u32,
    /// The host path of the program that was running (guest-physical,
    /// length), and its load bias, so the VMM can name the function at `rip`.
    pub path: u64,
    pub path_len: u64,
    pub bias: u64,
    /// Text: the system calls the program made that Lego does not
    /// implement, one "name (number): count" per line (logged at info).
    pub missing: u64,
    pub missing_len: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Idle {
    /// Return after this many nanoseconds (0: no limit).
    pub timeout_ns: u64,
    /// 1: also return when stdin is readable.
    pub stdin: u32,
    /// Written by the VMM: 1 kicked, 2 stdin readable, 3 timed out.
    pub woke: u32,
}

pub const WOKE_KICK: u32 = 1;
pub const WOKE_STDIN: u32 = 2;
pub const WOKE_TIMEOUT: u32 = 3;

/// [`ControlNext::kind`]: nothing is waiting.
pub const CONTROL_NONE: u32 = 0;
/// Start a run: `buf` holds argv, envp, the working directory and the
/// file to execute, NUL-terminated (as [`PORT_PROGRAM_ARGS`] gives them).
pub const CONTROL_START: u32 = 1;
/// Send `signal` to the run's foreground process group (Ctrl-C at `lego run`).
pub const CONTROL_SIGNAL: u32 = 2;
/// Send `signal` to process `pid` (`lego kill`); answered 0 or -ESRCH.
pub const CONTROL_KILL: u32 = 3;
/// List the processes (`lego ps`): answered with one line per process,
/// "pid run command".
pub const CONTROL_PS: u32 = 4;

/// PORT_CONTROL_NEXT's argument. The guest gives a buffer; the VMM writes
/// the next request. When its strings do not fit, the VMM sets `needed`
/// and keeps the request for the next call with a larger buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ControlNext {
    pub buf: u64,
    pub buf_len: u64,
    /// Written by the VMM from here on.
    pub needed: u64,
    pub kind: u32,
    /// The request's id, given back in [`ControlDone::id`].
    pub id: u32,
    pub run: u32,
    pub pid: u32,
    pub signal: u32,
    /// The run's vNode (its processes' files live in its namespace).
    pub vnode: u32,
    pub argc: u32,
    pub envc: u32,
    /// START: the memory component to home the run's processes at (the
    /// managers' choice; 0: the processor's default).
    pub home: u32,
    /// START: the storage component that holds the run's vNode (0: the
    /// processor's own).
    pub storage: u32,
}

/// PORT_CONTROL_DONE's argument.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ControlDone {
    pub id: u32,
    pub kind: u32,
    /// START: the first process's pid or -errno; KILL: 0 or -errno.
    pub result: i64,
    /// PS: the text (guest-physical, length).
    pub buf: u64,
    pub len: u64,
}

/// PORT_RUN_EXIT's argument: the wait status (as wait4 gives it) of the
/// run's first process.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct RunExit {
    pub run: u32,
    pub status: u32,
}
