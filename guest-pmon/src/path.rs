//! Path names as a process gives them: made absolute against its working
//! directory (or a directory descriptor), with `.` and `..` resolved
//! (`..` above `/` stays at `/`). Without `..` that is lexical and the
//! symbolic links on the way are the file system's to follow; a `..` is
//! taken as Linux takes it, from the directory the path so far reaches
//! after its links ([`walk`]: `/lib/..` is `/usr` where /lib links to
//! usr/lib).

use alloc::vec::Vec;

/// Linux's PATH_MAX, including the terminating NUL.
pub const PATH_MAX: usize = 4096;

/// `path` made absolute against `base` (an absolute directory) and
/// normalized: no empty, `.` or `..` components, no trailing slash except
/// for `/` itself.
pub fn resolve(base: &[u8], path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    let whole = if path.first() == Some(&b'/') {
        path
    } else {
        for p in base.split(|&c| c == b'/') {
            push(&mut parts, p);
        }
        path
    };
    for p in whole.split(|&c| c == b'/') {
        push(&mut parts, p);
    }
    let mut out = Vec::with_capacity(path.len() + base.len() + 1);
    for p in &parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// `path` resolved against `base` (absolute) for a process whose root
/// directory is `root` (chroot): an absolute path and `..` stop at the
/// root, and the result is the whole path from the monitor's root. A
/// base outside the root (a working directory kept across chroot) is
/// taken as the root.
pub fn resolve_in(root: &[u8], base: &[u8], path: &[u8]) -> Vec<u8> {
    if root == b"/" {
        return resolve(base, path);
    }
    let inside = shown_in(root, base);
    let rel = if inside == base && base != root {
        b"/".to_vec()
    } else {
        inside
    };
    let within = resolve(&rel, path);
    if within == b"/" {
        return root.to_vec();
    }
    let mut out = root.to_vec();
    out.extend_from_slice(&within);
    out
}

/// Linux's ELOOP: more than 40 symbolic links on one walk.
pub const ELOOP: i64 = 40;

/// What a walk asks of the file systems for `full` (absolute, with no
/// link before its last name): its target if it is a symbolic link,
/// Ok(None) if not, or the error that ends the walk there (ENOENT,
/// ENOTDIR).
pub type LinkOf<'a> = dyn FnMut(&[u8]) -> Result<Option<Vec<u8>>, i64> + 'a;

/// `path` resolved against `base` (absolute, with no symbolic link on
/// it) for a process whose root directory is `root`, as Linux's path walk
/// names it: before a `..` drops a name, the links on the path so far are
/// followed (`link` says which names are links), so `..` leaves the
/// directory reached, not the name that led there. With `whole`, every
/// link on the way is followed, the last name's too (a working directory
/// as getcwd gives it). A path without `..` is resolved lexically and
/// asks nothing. ELOOP past 40 links.
pub fn walk(
    root: &[u8],
    base: &[u8],
    path: &[u8],
    whole: bool,
    link: &mut LinkOf,
) -> Result<Vec<u8>, i64> {
    let mut budget = 40;
    walk_in(root, base, path, whole, link, &mut budget)
}

fn walk_in(
    root: &[u8],
    base: &[u8],
    path: &[u8],
    whole: bool,
    link: &mut LinkOf,
    budget: &mut u32,
) -> Result<Vec<u8>, i64> {
    if !has_dot_dot(path) && !whole {
        return Ok(resolve_in(root, base, path));
    }
    let split = names;
    let top = split(root).len();
    // As [`resolve_in`]: a base outside the root is taken as the root.
    let outside = root != b"/" && shown_in(root, base) == base && base != root;
    let start = if path.first() == Some(&b'/') || outside {
        root
    } else {
        base
    };
    let mut out = split(start);
    // The names of `out` before `checked` are known not to be links.
    let mut checked = out.len();
    // Follows the links among out[checked..].
    let mut settle = |out: &mut Vec<Vec<u8>>, checked: &mut usize| -> Result<(), i64> {
        while *checked < out.len() {
            let prefix = join(&out[..=*checked]);
            match link(&prefix)? {
                None => *checked += 1,
                Some(target) => {
                    *budget = budget.checked_sub(1).ok_or(ELOOP)?;
                    let dir = join(&out[..*checked]);
                    let rest = out.split_off(*checked + 1);
                    let to = walk_in(root, &dir, &target, false, link, budget)?;
                    *out = split(&to);
                    out.extend(rest);
                    // The target's own names are asked about in turn.
                    *checked = (*checked).min(split(&dir).len()).min(out.len());
                }
            }
        }
        Ok(())
    };
    for part in path.split(|&c| c == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                settle(&mut out, &mut checked)?;
                if out.len() > top {
                    out.pop();
                }
                checked = checked.min(out.len());
            }
            name => out.push(name.to_vec()),
        }
    }
    if whole {
        settle(&mut out, &mut checked)?;
    }
    Ok(join(&out))
}

/// Whether absolute `path` goes on past one of the links Linux's /proc
/// and /dev/fd hold (a process's cwd, root or an open directory:
/// `/proc/self/cwd/x`, `/proc/1/task/1/fd/3/x`, `/dev/fd/3/x`), which the
/// walk must follow; a path without `..` is otherwise taken lexically.
pub fn through_magic_link(path: &[u8]) -> bool {
    // Asked of every path a call resolves: most are told apart here.
    if !path.starts_with(b"/proc/") && !path.starts_with(b"/dev/fd/") {
        return false;
    }
    let c: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|n| !n.is_empty())
        .collect();
    match c.as_slice() {
        [b"dev", b"fd", _, _, ..] => true,
        [b"proc", _, rest @ ..] => {
            let rest = match rest {
                [b"task", _, r @ ..] => r,
                r => r,
            };
            matches!(rest, [b"cwd" | b"root", _, ..] | [b"fd", _, _, ..])
        }
        _ => false,
    }
}

/// Whether `path` is one of `set`'s paths or under one (`/tmp/a/b` is
/// under `/tmp/a`, `/tmp/ab` is not).
pub fn under_any(set: &alloc::collections::BTreeSet<Vec<u8>>, path: &[u8]) -> bool {
    if set.is_empty() {
        return false;
    }
    if set.contains(path) {
        return true;
    }
    path.iter()
        .enumerate()
        .filter(|&(i, &c)| c == b'/' && i > 0)
        .any(|(i, _)| set.contains(&path[..i]))
}

/// Whether `path` has a `..` name (which [`walk`] takes after links).
pub fn has_dot_dot(path: &[u8]) -> bool {
    path.split(|&c| c == b'/').any(|n| n == b"..")
}

/// Whether relative path `p` leaves its directory before it names
/// anything in it: its first name other than `.` is `..` (`../x`,
/// `./../x`; not `x/../y`, which needs `x`, nor `.`).
pub fn leaves_first(p: &[u8]) -> bool {
    p.split(|&c| c == b'/')
        .find(|n| !n.is_empty() && *n != b".")
        .is_some_and(|n| n == b"..")
}

/// The names of path `p`, empty ones (`//`, a leading `/`) left out.
pub fn names(p: &[u8]) -> Vec<Vec<u8>> {
    p.split(|&c| c == b'/')
        .filter(|c| !c.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// `/`-joined names, `/` for none.
pub fn join(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// Whole path `full` as a process whose root directory is `root` sees
/// it (getcwd): `/` for the root itself, unchanged when outside it.
pub fn shown_in(root: &[u8], full: &[u8]) -> Vec<u8> {
    if root == b"/" {
        return full.to_vec();
    }
    match full.strip_prefix(root) {
        Some(b"") => b"/".to_vec(),
        Some(rest) if rest.starts_with(b"/") => rest.to_vec(),
        _ => full.to_vec(),
    }
}

fn push<'a>(parts: &mut Vec<&'a [u8]>, p: &'a [u8]) {
    match p {
        b"" | b"." => {}
        b".." => {
            parts.pop();
        }
        p => parts.push(p),
    }
}

/// What a resolved path names before the host's files are asked: the
/// monitor's own devices and the parts of /proc and /dev/fd that describe
/// the calling process. The host's /proc must not answer those: it would
/// describe lego-vmm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Name {
    Null,
    Zero,
    /// /dev/full: reads zeros, every write ENOSPC.
    Full,
    Urandom,
    /// /dev/ptmx: a new pseudo-terminal's master ([`crate::pty`]).
    Ptmx,
    /// /dev/pts/N: a pseudo-terminal's slave.
    Pts(u32),
    /// Descriptor N of process PID: /dev/fd/N, /dev/std{in,out,err},
    /// /proc/self/fd/N of the caller, /proc/PID/fd/N of any process
    /// (Linux opens the same file again).
    Fd(u32, i32),
    /// /proc/PID/fd (/proc/self/fd and /dev/fd: the caller's): a directory
    /// listing the process's open descriptors (glibc's closefrom reads
    /// it when close_range is missing; lsof and ps read other processes').
    FdDir(u32),
    /// /proc/PID/fdinfo: a directory with a file per open descriptor
    /// (lsof and runtimes that count their descriptors read it).
    FdInfoDir(u32),
    /// /proc/PID/fdinfo/N: descriptor N's offset, flags, mount and inode.
    FdInfo(u32, i32),
    /// /proc/PID/exe: the program the process runs (ps takes a command's
    /// name from it; a process without one is a kernel thread to it).
    Exe(u32),
    /// /proc/PID/cwd: the process's working directory.
    Cwd(u32),
    /// /proc/PID/root: its root directory, `/` (no process changes it).
    Root(u32),
    /// /proc/self itself (a symbolic link to the pid's directory).
    SelfDir,
    /// /proc/PID/maps, smaps and smaps_rollup: the process's mappings
    /// ([`crate::procfs::maps`], [`crate::procfs::smaps`]).
    Maps(u32, MapsFile),
    /// /sys/devices/system/cpu/{online,possible,present}: the processor's
    /// vCPUs ([`crate::procfs::cpu_list`]).
    CpuList,
    /// /proc/meminfo: the home memory component's memory
    /// ([`crate::procfs::meminfo`]).
    MemInfo,
    /// /proc/uptime: the processor's time since its monitor booted and its
    /// vCPUs' idle time ([`crate::procfs::uptime`]), on the clock
    /// CLOCK_BOOTTIME and /proc/PID/stat's start times go by.
    Uptime,
    /// /proc/loadavg, the processor's load average.
    LoadAvg,
    /// /proc/stat: the processor's vCPUs' times and counts, and its boot
    /// time ([`crate::procfs::stat_file`]), so ps's start times are right.
    Stat,
    /// /proc/cpuinfo: the host's, cut to the vCPUs ([`crate::procfs::cpuinfo`]).
    CpuInfo,
    /// /proc/mounts, /proc/self/mounts: with /tmp's tmpfs
    /// ([`crate::procfs::mounts`]).
    Mounts,
    /// /proc/self/mountinfo: the same mounts in mountinfo's layout
    /// ([`crate::procfs::mountinfo`]).
    MountInfo,
    /// /proc/PID/{stat,status,cmdline,comm} of any process (self too):
    /// made by the kernel from what it keeps ([`crate::procfs::stat`]).
    Proc(u32, ProcFile),
    /// /proc/PID of another process: a directory if that process is one
    /// of this processor's.
    ProcDir(u32),
    /// /proc/PID/task: a directory of the process's threads, by id.
    TaskDir(u32),
    /// /proc/PID/task/TID: that thread's directory, if it is one of the
    /// process's (the kernel checks; then it is /proc/TID, as Linux serves
    /// a thread's files at its id too).
    Task(u32, u32),
    /// /proc/PID/task/TID/FILE: that thread's file.
    TaskFile(u32, u32, ProcFile),
    /// /proc/net/FILE (/proc/PID/net/FILE too) of this processor's own
    /// network ([`crate::procnet`]); its other files are the host's.
    Net(NetFile),
    /// /proc/sysvipc/{msg,sem,shm}: this processor's System V objects
    /// (the host's were shown).
    SysvIpc(IpcFile),
    /// /proc/sys/kernel/hostname (0), domainname (1), ostype (2),
    /// osrelease (3) and version (4): what uname gives (the names are the
    /// run's, not the host's).
    UtsName(usize),
    /// Anything else of a process in /proc: not served (ENOENT).
    Hidden,
    /// The host's file of that name.
    Host,
}

/// Which of a process's mapping lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapsFile {
    Maps,
    Smaps,
    /// smaps_rollup: the sums.
    Rollup,
}

/// A file of /proc/sysvipc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpcFile {
    Msg,
    Sem,
    Shm,
}

/// The files of /proc/net made from this processor's sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetFile {
    Dev,
    Tcp,
    Tcp6,
    Udp,
    Udp6,
    Unix,
    Route,
    IfInet6,
    Arp,
    Sockstat,
    Sockstat6,
}

impl NetFile {
    fn named(name: &[u8]) -> Option<NetFile> {
        Some(match name {
            b"dev" => NetFile::Dev,
            b"tcp" => NetFile::Tcp,
            b"tcp6" => NetFile::Tcp6,
            b"udp" => NetFile::Udp,
            b"udp6" => NetFile::Udp6,
            b"unix" => NetFile::Unix,
            b"route" => NetFile::Route,
            b"if_inet6" => NetFile::IfInet6,
            b"arp" => NetFile::Arp,
            b"sockstat" => NetFile::Sockstat,
            b"sockstat6" => NetFile::Sockstat6,
            _ => return None,
        })
    }
}

/// The files of /proc/PID that any process may read of another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcFile {
    Stat,
    Status,
    Cmdline,
    Comm,
    /// The environment execve gave it (another user's: EACCES).
    Environ,
    /// Its auxiliary vector (another user's: EACCES).
    Auxv,
    Limits,
    Statm,
    /// Its control group: the root of cgroup v2 (the processor has none).
    Cgroup,
    /// Its OOM killer adjustment, kept and read back (and written).
    OomScoreAdj,
}

impl ProcFile {
    /// Whether the file may be opened for writing (comm, oom_score_adj).
    pub fn writable(self) -> bool {
        matches!(self, ProcFile::Comm | ProcFile::OomScoreAdj)
    }
}

/// Classifies `path` (absolute and normalized, as [`resolve`] gives it)
/// for process `pid`.
impl Name {
    /// Whether it is a file the monitor makes up whole when it is opened
    /// (read-only, never executable): maps, the CPU lists, meminfo,
    /// cpuinfo, mounts and mountinfo.
    pub fn is_generated(&self) -> bool {
        matches!(
            self,
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
                | Name::UtsName(_)
        )
    }
}

/// The file of /proc/PID (or of a thread of it) named `name`.
fn proc_file(name: &[u8]) -> Option<ProcFile> {
    Some(match name {
        b"stat" => ProcFile::Stat,
        b"status" => ProcFile::Status,
        b"cmdline" => ProcFile::Cmdline,
        b"comm" => ProcFile::Comm,
        b"environ" => ProcFile::Environ,
        b"auxv" => ProcFile::Auxv,
        b"limits" => ProcFile::Limits,
        b"statm" => ProcFile::Statm,
        b"cgroup" => ProcFile::Cgroup,
        b"oom_score_adj" => ProcFile::OomScoreAdj,
        _ => return None,
    })
}

/// The target of Linux's symbolic links among /dev's names of the
/// descriptors (/dev/stdin, /dev/stdout, /dev/stderr and /dev/fd lead
/// into /proc/self/fd), which readlink and lstat show as links.
pub fn descriptor_link(path: &[u8]) -> Option<&'static [u8]> {
    Some(match path {
        b"/dev/stdin" => b"/proc/self/fd/0",
        b"/dev/stdout" => b"/proc/self/fd/1",
        b"/dev/stderr" => b"/proc/self/fd/2",
        b"/dev/fd" => b"/proc/self/fd",
        _ => return None,
    })
}

pub fn name(path: &[u8], pid: u32) -> Name {
    match path {
        b"/dev/null" => return Name::Null,
        b"/dev/zero" => return Name::Zero,
        b"/dev/full" => return Name::Full,
        b"/dev/urandom" | b"/dev/random" => return Name::Urandom,
        b"/dev/fd" => return Name::FdDir(pid),
        b"/dev/ptmx" | b"/dev/pts/ptmx" => return Name::Ptmx,
        b"/dev/stdin" => return Name::Fd(pid, 0),
        b"/dev/stdout" => return Name::Fd(pid, 1),
        b"/dev/stderr" => return Name::Fd(pid, 2),
        b"/sys/devices/system/cpu/online"
        | b"/sys/devices/system/cpu/possible"
        | b"/sys/devices/system/cpu/present" => return Name::CpuList,
        b"/proc/meminfo" => return Name::MemInfo,
        b"/proc/uptime" => return Name::Uptime,
        b"/proc/loadavg" => return Name::LoadAvg,
        b"/proc/stat" => return Name::Stat,
        b"/proc/cpuinfo" => return Name::CpuInfo,
        b"/proc/mounts" => return Name::Mounts,
        b"/proc/sysvipc/msg" => return Name::SysvIpc(IpcFile::Msg),
        b"/proc/sysvipc/sem" => return Name::SysvIpc(IpcFile::Sem),
        b"/proc/sysvipc/shm" => return Name::SysvIpc(IpcFile::Shm),
        b"/proc/sys/kernel/hostname" => return Name::UtsName(0),
        b"/proc/sys/kernel/domainname" => return Name::UtsName(1),
        b"/proc/sys/kernel/ostype" => return Name::UtsName(2),
        b"/proc/sys/kernel/osrelease" => return Name::UtsName(3),
        b"/proc/sys/kernel/version" => return Name::UtsName(4),
        _ => {}
    }
    if let Some(f) = path.strip_prefix(b"/proc/net/").and_then(NetFile::named) {
        return Name::Net(f);
    }
    if let Some(n) = path.strip_prefix(b"/dev/fd/") {
        return fd_number(n).map_or(Name::Hidden, |n| Name::Fd(pid, n));
    }
    if let Some(n) = path.strip_prefix(b"/dev/pts/") {
        return fd_number(n).map_or(Name::Hidden, |n| Name::Pts(n as u32));
    }
    let Some(rest) = path.strip_prefix(b"/proc/") else {
        return Name::Host;
    };
    let (first, tail) = match rest.iter().position(|&c| c == b'/') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let own = first == b"self" || first == b"thread-self" || fd_number(first) == Some(pid as i32);
    let numeric = !first.is_empty() && first.iter().all(u8::is_ascii_digit);
    let target = if numeric {
        fd_number(first).map(|n| n as u32)
    } else if own {
        Some(pid)
    } else {
        None
    };
    let file = tail.and_then(proc_file);
    if let (Some(t), Some(task)) = (target, tail.and_then(|r| r.strip_prefix(b"task"))) {
        match task {
            b"" => return Name::TaskDir(t),
            [b'/', rest @ ..] => {
                let (id, file) = match rest.iter().position(|&c| c == b'/') {
                    Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                    None => (rest, None),
                };
                let id = fd_number(id).map(|n| n as u32);
                return match (id, file.map(|f| (f, proc_file(f)))) {
                    (Some(id), None) => Name::Task(t, id),
                    (Some(id), Some((_, Some(f)))) => Name::TaskFile(t, id, f),
                    // A thread's other entries (fd, exe, maps, ...) are
                    // its process's.
                    (Some(_), Some((rest, None))) => entry(t, rest),
                    _ => Name::Hidden,
                };
            }
            _ => {}
        }
    }
    match (target, file, tail) {
        (Some(t), Some(f), _) => return Name::Proc(t, f),
        (Some(t), None, None) if numeric => return Name::ProcDir(t),
        (None, _, _) if numeric => return Name::Hidden,
        _ => {}
    }
    match (target, tail) {
        (Some(t), Some(tail)) => entry(t, tail),
        (Some(_), None) if !numeric => Name::SelfDir,
        (Some(_), None) => Name::Hidden,
        // The rest of /proc (cpuinfo, version, ...) is the host's.
        (None, _) => Name::Host,
    }
}

/// Entry `tail` of process `pid`'s /proc/PID (or of one of its threads'):
/// the kernel checks that the caller may see it.
fn entry(pid: u32, tail: &[u8]) -> Name {
    match tail {
        b"exe" => Name::Exe(pid),
        b"cwd" => Name::Cwd(pid),
        b"root" => Name::Root(pid),
        b"maps" => Name::Maps(pid, MapsFile::Maps),
        b"smaps" => Name::Maps(pid, MapsFile::Smaps),
        b"smaps_rollup" => Name::Maps(pid, MapsFile::Rollup),
        b"mounts" => Name::Mounts,
        b"mountinfo" => Name::MountInfo,
        b"fd" => Name::FdDir(pid),
        t if t.starts_with(b"net/") => match NetFile::named(&t[4..]) {
            Some(f) => Name::Net(f),
            // The rest of /proc/net is the host's.
            None => Name::Host,
        },
        b"fdinfo" => Name::FdInfoDir(pid),
        t => match (t.strip_prefix(b"fd/"), t.strip_prefix(b"fdinfo/")) {
            (Some(n), _) => fd_number(n).map_or(Name::Hidden, |n| Name::Fd(pid, n)),
            (_, Some(n)) => fd_number(n).map_or(Name::Hidden, |n| Name::FdInfo(pid, n)),
            _ => Name::Hidden,
        },
    }
}

/// Whether `path` (absolute, normalized) is where a dynamic loader finds
/// shared libraries (glibc's and musl's default directories, and
/// ld.so's cache): with storage, those the storage component lacks are
/// the host's, read-only, as programs are.
pub fn system_library(path: &[u8]) -> bool {
    path == b"/etc/ld.so.cache"
        || [
            &b"/lib"[..],
            b"/lib64",
            b"/usr/lib",
            b"/usr/lib64",
            b"/usr/local/lib",
        ]
        .iter()
        .any(|dir| below(path, dir).is_some_and(|rest| !rest.is_empty()))
}

/// The trees of the host's installation that show through where storage
/// lacks a name: its programs (where a shell's `PATH` search looks), its
/// configuration, and /usr (programs, shared data, headers, helpers; the
/// libraries are [`system_library`] too).
const SHOWN_TREES: [&[u8]; 6] = [b"/bin", b"/sbin", b"/etc", b"/usr", b"/lib", b"/lib64"];

/// Whether `path` (absolute, normalized) is in the host's installation
/// ([`SHOWN_TREES`]: `/usr/bin/ls`, `/etc/hosts`, `/usr/share`, `/usr`
/// itself): with storage, a look at a name there that the storage
/// component lacks (stat, access, readlink, a read-only open, a path walk,
/// a listing) is the host's, and a write copies the host's file onto
/// storage first, as overlayfs treats a lower file. So a shell's `PATH`
/// search finds what execve would run (bash stats each candidate: `bash
/// -c ls` said `ls: command not found`), programs find `/etc/hosts`
/// (`localhost` did not resolve), the time zones, `init.tcl`, git's
/// templates and the headers, and realpath and ld.so's `$ORIGIN/../lib`
/// reach a library (Debian's java found neither `libjli.so` nor its class
/// path).
pub fn shown_from_host(path: &[u8]) -> bool {
    SHOWN_TREES.iter().any(|tree| below(path, tree).is_some())
}

/// Whether the host's entry `name` of `/` is one of [`SHOWN_TREES`], which
/// a listing of storage's `/` shows where storage lacks it.
pub fn shown_at_root(name: &[u8]) -> bool {
    SHOWN_TREES.iter().any(|tree| &tree[1..] == name)
}

/// The part of `path` (absolute, normalized) below the directory
/// `mount`: `b""` for the mount itself, None outside it.
pub fn below<'p>(path: &'p [u8], mount: &[u8]) -> Option<&'p [u8]> {
    match path.strip_prefix(mount) {
        Some(b"") => Some(b""),
        Some(rest) => rest.strip_prefix(b"/"),
        None => None,
    }
}

/// /proc/thread-self is Linux's symbolic link to the calling thread's
/// /proc/PID/task/TID: a resolved path below it becomes that path, so a
/// thread reads its own stat, status and comm there (programs that name
/// or time their threads read /proc/thread-self/comm and stat).
/// /proc/thread-self itself stays, so readlink can answer for it.
pub fn thread_self(full: Vec<u8>, pid: u32, tid: u32) -> Vec<u8> {
    match below(&full, b"/proc/thread-self") {
        Some(rest) if !rest.is_empty() => {
            let mut out = alloc::format!("/proc/{pid}/task/{tid}/").into_bytes();
            out.extend_from_slice(rest);
            out
        }
        _ => full,
    }
}

/// The tmpfs directory that holds /dev/shm's names (hidden from listings
/// of /tmp).
pub const DEV_SHM_DIR: &[u8] = b".lego-dev-shm";

/// /dev/shm (POSIX shared memory and named semaphores: shm_open and
/// sem_open make their files there) is a directory of the processor's
/// tmpfs, as on Linux where it is a tmpfs mount: a resolved path under it
/// becomes that directory's path under /tmp.
pub fn dev_shm_alias(full: Vec<u8>) -> Vec<u8> {
    let Some(rest) = below(&full, b"/dev/shm") else {
        return full;
    };
    let mut out = b"/tmp/".to_vec();
    out.extend_from_slice(DEV_SHM_DIR);
    if !rest.is_empty() {
        out.push(b'/');
        out.extend_from_slice(rest);
    }
    out
}

/// The name a program sees for tmpfs path `full`: its /dev/shm name for
/// the aliased directory (the inverse of [`dev_shm_alias`]), so getcwd,
/// /proc/self/fd and `..` from /dev/shm are Linux's.
pub fn dev_shm_shown(full: Vec<u8>) -> Vec<u8> {
    let Some(rest) = below(&full, b"/tmp").and_then(|r| r.strip_prefix(DEV_SHM_DIR)) else {
        return full;
    };
    if !(rest.is_empty() || rest.starts_with(b"/")) {
        return full;
    }
    let mut out = b"/dev/shm".to_vec();
    out.extend_from_slice(rest);
    out
}

/// Linux's name of a program in /proc/PID/exe: `path` (absolute,
/// normalized) with every symbolic link on the way followed (`readlink`
/// answers for a link, None for anything else), at most 40 as Linux
/// follows. glibc's ld.so takes $ORIGIN from /proc/self/exe: Debian's
/// /usr/bin/java is a link to a link to .../jvm/.../bin/java, whose
/// RUNPATH $ORIGIN/../lib finds libjli.so only from the real directory.
/// Too many links leave `path` as it was.
pub fn canonical(path: &[u8], readlink: impl Fn(&[u8]) -> Option<Vec<u8>>) -> Vec<u8> {
    walk_links(path, readlink, |_| false).unwrap_or_else(|| path.to_vec())
}

/// Where host path `path` (absolute, normalized) leads when a symbolic
/// link of the host's on the way (`readlink` answers for a link) points
/// into a tree Lego serves itself (/proc, /sys, /dev, /tmp): the path
/// from there on, to be looked up in Lego's view (Debian's /etc/mtab is a
/// link to /proc/mounts, whose host file lists the host's mounts). None
/// when the links keep to the host's files, or loop.
pub fn leaves_host(path: &[u8], readlink: impl Fn(&[u8]) -> Option<Vec<u8>>) -> Option<Vec<u8>> {
    walk_links(path, readlink, served_here).filter(|p| served_here(p))
}

/// Whether absolute `path` is in a tree Lego serves itself.
fn served_here(path: &[u8]) -> bool {
    lego_proto::program::SERVED_TREES.iter().any(|t| {
        path.strip_prefix(t.as_bytes())
            .is_some_and(|rest| rest.is_empty() || rest[0] == b'/')
    })
}

/// `path` with the symbolic links on the way followed until none is left
/// or `stop` holds for the path so far; None after 40 links.
fn walk_links(
    path: &[u8],
    readlink: impl Fn(&[u8]) -> Option<Vec<u8>>,
    stop: impl Fn(&[u8]) -> bool,
) -> Option<Vec<u8>> {
    let mut now = path.to_vec();
    for _ in 0..40 {
        let parts: Vec<&[u8]> = now
            .split(|&c| c == b'/')
            .filter(|p| !p.is_empty())
            .collect();
        let mut prefix = Vec::with_capacity(now.len());
        let mut next = None;
        for (i, part) in parts.iter().enumerate() {
            let dir_len = prefix.len();
            prefix.push(b'/');
            prefix.extend_from_slice(part);
            if let Some(target) = readlink(&prefix) {
                let dir = if dir_len == 0 {
                    &b"/"[..]
                } else {
                    &prefix[..dir_len]
                };
                let mut joined = target;
                for rest in &parts[i + 1..] {
                    joined.push(b'/');
                    joined.extend_from_slice(rest);
                }
                next = Some(resolve(dir, &joined));
                break;
            }
        }
        match next {
            Some(n) if stop(&n) => return Some(n),
            Some(n) => now = n,
            None => return Some(now),
        }
    }
    None
}

/// The last name of `path` (all of it when it has no `/`).
pub fn last(path: &[u8]) -> &[u8] {
    path.rsplit(|&c| c == b'/').next().unwrap_or(path)
}

/// A path as a program gave it, seen from its last name: what Linux
/// checks before it looks the name up (`.`, `..`, a trailing slash), and
/// which the absolute path no longer shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastName<'a> {
    /// What comes before the last name, with its slash (`a/` of `a/b/`).
    pub dir: &'a [u8],
    /// The last name (`b` of `a/b/`); empty for `/`.
    pub name: &'a [u8],
    /// The path without its trailing slashes (`a/b` of `a/b//`).
    pub bare: &'a [u8],
    /// Whether one or more slashes follow the last name.
    pub slash: bool,
}

impl LastName<'_> {
    /// Whether the last name is `.` or `..`.
    pub fn dotted(&self) -> bool {
        self.name == b"." || self.name == b".."
    }
}

/// `path` split at its last name.
pub fn split_last(path: &[u8]) -> LastName<'_> {
    let end = path.iter().rposition(|&c| c != b'/').map_or(0, |i| i + 1);
    let bare = &path[..end];
    let start = bare.iter().rposition(|&c| c == b'/').map_or(0, |i| i + 1);
    LastName {
        dir: &bare[..start],
        name: &bare[start..],
        bare,
        slash: end > 0 && end < path.len(),
    }
}

/// The directory of absolute `path`: `/` for a name in the root, None
/// for the root itself or a path with no `/`.
pub fn parent(path: &[u8]) -> Option<&[u8]> {
    match path.iter().rposition(|&c| c == b'/') {
        Some(0) if path.len() > 1 => Some(b"/"),
        Some(0) | None => None,
        Some(i) => Some(&path[..i]),
    }
}

/// The path an open /proc/PID/fd directory keeps (its listing and the
/// *at calls from it go by it).
pub fn fd_dir(pid: u32) -> Vec<u8> {
    alloc::format!("/proc/{pid}/fd").into_bytes()
}

/// The process whose descriptors the open directory at `path` lists, if
/// it is one [`fd_dir`] named.
pub fn fd_dir_of(path: &[u8]) -> Option<u32> {
    let n = path.strip_prefix(b"/proc/")?.strip_suffix(b"/fd")?;
    fd_number(n).map(|n| n as u32)
}

/// /proc/PID/fdinfo for process `pid`.
pub fn fdinfo_dir(pid: u32) -> Vec<u8> {
    alloc::format!("/proc/{pid}/fdinfo").into_bytes()
}

/// The process whose descriptors' information the open directory at
/// `path` lists, if it is one [`fdinfo_dir`] named.
pub fn fdinfo_dir_of(path: &[u8]) -> Option<u32> {
    let n = path.strip_prefix(b"/proc/")?.strip_suffix(b"/fdinfo")?;
    fd_number(n).map(|n| n as u32)
}

fn fd_number(text: &[u8]) -> Option<i32> {
    if text.is_empty() || text.len() > 9 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    core::str::from_utf8(text).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn leaves_first_is_a_first_dot_dot() {
        use super::leaves_first;
        for p in [&b"../x"[..], b"..", b"./../x", b".//..", b"../.."] {
            assert!(leaves_first(p), "{p:?}");
        }
        for p in [&b"x/../y"[..], b".", b"./", b"x", b"", b"..x", b"./x/.."] {
            assert!(!leaves_first(p), "{p:?}");
        }
    }

    #[test]
    fn under_any_names_the_paths_and_what_is_below() {
        let set: alloc::collections::BTreeSet<Vec<u8>> =
            [b"/tmp/a".to_vec(), b"/tmp/s.sock".to_vec()]
                .into_iter()
                .collect();
        assert!(super::under_any(&set, b"/tmp/a"));
        assert!(super::under_any(&set, b"/tmp/a/b/c"));
        assert!(super::under_any(&set, b"/tmp/s.sock"));
        assert!(!super::under_any(&set, b"/tmp/ab"));
        assert!(!super::under_any(&set, b"/tmp"));
        assert!(!super::under_any(&Default::default(), b"/tmp/a"));
    }

    use super::*;

    #[test]
    fn names_past_a_magic_link_are_seen() {
        for p in [
            &b"/proc/self/cwd/x"[..],
            b"/proc/12/root/tmp",
            b"/proc/thread-self/fd/3/a/b",
            b"/proc/self/task/7/cwd/x",
            b"/dev/fd/4/x",
        ] {
            assert!(through_magic_link(p), "{}", String::from_utf8_lossy(p));
        }
        for p in [
            &b"/proc/self/cwd"[..],
            b"/proc/self/fd/3",
            b"/proc/self/maps",
            b"/dev/fd/4",
            b"/tmp/proc/self/cwd/x",
            b"/proc/self/fdinfo/3/x",
        ] {
            assert!(!through_magic_link(p), "{}", String::from_utf8_lossy(p));
        }
    }

    #[test]
    fn a_last_name_is_split_from_its_directory_and_slashes() {
        let l = split_last(b"a/b//");
        assert_eq!(
            (l.dir, l.name, l.bare, l.slash),
            (&b"a/"[..], &b"b"[..], &b"a/b"[..], true)
        );
        let l = split_last(b"d/.");
        assert_eq!(
            (l.dir, l.name, l.slash, l.dotted()),
            (&b"d/"[..], &b"."[..], false, true)
        );
        let l = split_last(b"..");
        assert_eq!((l.dir, l.name, l.dotted()), (&b""[..], &b".."[..], true));
        let l = split_last(b"/");
        assert_eq!((l.name, l.bare, l.slash), (&b""[..], &b""[..], false));
        let l = split_last(b"/x");
        assert_eq!((l.dir, l.name, l.slash), (&b"/"[..], &b"x"[..], false));
        assert!(!split_last(b"a.").dotted());
    }

    #[test]
    fn the_process_own_names_are_not_the_hosts() {
        assert_eq!(name(b"/dev/null", 5), Name::Null);
        assert_eq!(name(b"/dev/random", 5), Name::Urandom);
        assert_eq!(name(b"/dev/stdout", 5), Name::Fd(5, 1));
        assert_eq!(name(b"/dev/fd/63", 5), Name::Fd(5, 63));
        assert_eq!(name(b"/dev/fd/x", 5), Name::Hidden);
        assert_eq!(name(b"/proc/self/fd/3", 5), Name::Fd(5, 3));
        assert_eq!(name(b"/proc/5/fd/3", 5), Name::Fd(5, 3));
        assert_eq!(name(b"/proc/thread-self/fd/0", 5), Name::Fd(5, 0));
        assert_eq!(name(b"/proc/self/fd", 5), Name::FdDir(5));
        assert!(system_library(b"/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(system_library(b"/etc/ld.so.cache"));
        assert!(!system_library(b"/lib"));
        assert!(!system_library(b"/library/x"));
        assert!(!system_library(b"/etc/passwd"));
        assert!(
            shown_from_host(b"/usr") && shown_from_host(b"/usr/lib") && shown_from_host(b"/bin")
        );
        assert!(shown_from_host(b"/usr/bin/ls") && shown_from_host(b"/sbin/x/y"));
        assert!(shown_from_host(b"/etc/hosts") && shown_from_host(b"/usr/share/zoneinfo/UTC"));
        assert!(!shown_from_host(b"/") && !shown_from_host(b"/binary/x"));
        assert!(!shown_from_host(b"/home/x") && !shown_from_host(b"/etcetera/x"));
        assert!(shown_at_root(b"usr") && shown_at_root(b"etc") && !shown_at_root(b"home"));
        assert_eq!(name(b"/proc/5/fd", 5), Name::FdDir(5));
        assert_eq!(name(b"/dev/fd", 5), Name::FdDir(5));
        assert_eq!(name(b"/proc/6/fd", 5), Name::FdDir(6));
        assert_eq!(name(b"/proc/self/fdinfo", 5), Name::FdInfoDir(5));
        assert_eq!(name(b"/proc/6/fdinfo/3", 5), Name::FdInfo(6, 3));
        assert_eq!(name(b"/proc/6/fdinfo/x", 5), Name::Hidden);
        assert_eq!(fdinfo_dir_of(&fdinfo_dir(7)), Some(7));
        assert_eq!(fd_dir_of(&fdinfo_dir(7)), None);
        assert_eq!(name(b"/proc/self/exe", 5), Name::Exe(5));
        assert_eq!(name(b"/proc/5/exe", 5), Name::Exe(5));
        assert_eq!(name(b"/proc/self", 5), Name::SelfDir);
        assert_eq!(name(b"/proc/self/maps", 5), Name::Maps(5, MapsFile::Maps));
        assert_eq!(name(b"/proc/5/maps", 5), Name::Maps(5, MapsFile::Maps));
        assert_eq!(name(b"/proc/6/maps", 5), Name::Maps(6, MapsFile::Maps));
        assert_eq!(
            name(b"/proc/6/smaps_rollup", 5),
            Name::Maps(6, MapsFile::Rollup)
        );
        assert_eq!(name(b"/proc/self/smaps", 5), Name::Maps(5, MapsFile::Smaps));
        assert_eq!(name(b"/proc/self/numa_maps", 5), Name::Hidden);
        assert_eq!(name(b"/sys/devices/system/cpu/online", 5), Name::CpuList);
        assert_eq!(name(b"/proc/meminfo", 5), Name::MemInfo);
        assert_eq!(name(b"/proc/uptime", 5), Name::Uptime);
        assert_eq!(name(b"/proc/loadavg", 5), Name::LoadAvg);
        assert_eq!(name(b"/proc/sysvipc/shm", 5), Name::SysvIpc(IpcFile::Shm));
        assert_eq!(name(b"/proc/sysvipc/x", 5), Name::Host);
        assert_eq!(name(b"/proc/sys/kernel/hostname", 5), Name::UtsName(0));
        assert_eq!(name(b"/proc/stat", 5), Name::Stat);
        assert_eq!(name(b"/proc/5/stat", 5), Name::Proc(5, ProcFile::Stat));
        assert_eq!(name(b"/proc/cpuinfo", 5), Name::CpuInfo);
        assert_eq!(name(b"/proc/self/mounts", 5), Name::Mounts);
        assert_eq!(name(b"/proc/mounts", 5), Name::Mounts);
        assert_eq!(name(b"/sys/devices/system/cpu/cpu0", 5), Name::Host);
        assert_eq!(name(b"/proc/6/exe", 5), Name::Exe(6));
        assert_eq!(name(b"/proc/6/fd/2", 5), Name::Fd(6, 2));
        assert_eq!(name(b"/proc/6/cwd", 5), Name::Cwd(6));
        assert_eq!(name(b"/proc/self/root", 5), Name::Root(5));
        assert_eq!(name(b"/proc/6/environx", 5), Name::Hidden);
        assert_eq!(name(b"/proc/5", 5), Name::ProcDir(5));
        assert_eq!(name(b"/proc/6", 5), Name::ProcDir(6));
        assert_eq!(name(b"/proc/6/stat", 5), Name::Proc(6, ProcFile::Stat));
        assert_eq!(
            name(b"/proc/self/status", 5),
            Name::Proc(5, ProcFile::Status)
        );
        assert_eq!(
            name(b"/proc/self/cmdline", 5),
            Name::Proc(5, ProcFile::Cmdline)
        );
        assert_eq!(name(b"/proc/7/comm", 5), Name::Proc(7, ProcFile::Comm));
        assert_eq!(name(b"/proc/99999999999/stat", 5), Name::Hidden);
        assert_eq!(name(b"/proc/self/task", 5), Name::TaskDir(5));
        assert_eq!(name(b"/proc/6/task", 5), Name::TaskDir(6));
        assert_eq!(name(b"/proc/self/task/8", 5), Name::Task(5, 8));
        assert_eq!(
            name(b"/proc/6/task/9/status", 5),
            Name::TaskFile(6, 9, ProcFile::Status)
        );
        assert_eq!(
            name(b"/proc/self/task/5/comm", 5),
            Name::TaskFile(5, 5, ProcFile::Comm)
        );
        // Linux has a thread's maps, fd and exe too: its process's.
        assert_eq!(
            name(b"/proc/self/task/5/maps", 5),
            Name::Maps(5, MapsFile::Maps)
        );
        assert_eq!(name(b"/proc/6/task/7/exe", 5), Name::Exe(6));
        assert_eq!(name(b"/proc/self/task/5/nonsense", 5), Name::Hidden);
        assert_eq!(name(b"/proc/self/task/x", 5), Name::Hidden);
        assert_eq!(name(b"/proc/self/tasks", 5), Name::Hidden);
        assert_eq!(name(b"/proc/version", 5), Name::Host);
        assert_eq!(name(b"/proc", 5), Name::Host);
        assert_eq!(name(b"/etc/passwd", 5), Name::Host);
        assert_eq!(name(b"/dev/fd/99999999999", 5), Name::Hidden);
    }

    #[test]
    fn a_host_link_into_a_tree_lego_serves_leads_there() {
        let links = |p: &[u8]| -> Option<Vec<u8>> {
            match p {
                b"/etc/mtab" => Some(b"../proc/self/mounts".to_vec()),
                b"/etc/abs" => Some(b"/proc/mounts".to_vec()),
                b"/var/shm" => Some(b"/etc/shm".to_vec()),
                b"/etc/shm" => Some(b"/dev/shm".to_vec()),
                b"/etc/resolv.conf" => Some(b"../run/resolv.conf".to_vec()),
                b"/etc/procfoo" => Some(b"/procfoo".to_vec()),
                b"/loop" => Some(b"/loop".to_vec()),
                _ => None,
            }
        };
        assert_eq!(
            leaves_host(b"/etc/mtab", links).as_deref(),
            Some(&b"/proc/self/mounts"[..])
        );
        assert_eq!(
            leaves_host(b"/etc/abs", links).as_deref(),
            Some(&b"/proc/mounts"[..])
        );
        // Through a directory link, two links deep.
        assert_eq!(
            leaves_host(b"/var/shm/x", links).as_deref(),
            Some(&b"/dev/shm/x"[..])
        );
        assert_eq!(leaves_host(b"/etc/resolv.conf", links), None);
        assert_eq!(leaves_host(b"/etc/procfoo", links), None);
        assert_eq!(leaves_host(b"/etc/passwd", links), None);
        assert_eq!(leaves_host(b"/loop/x", links), None);
        assert!(served_here(b"/tmp") && served_here(b"/sys/x") && !served_here(b"/tmpx"));
    }

    #[test]
    fn a_program_is_named_by_its_real_path() {
        let links = |p: &[u8]| -> Option<Vec<u8>> {
            match p {
                b"/bin" => Some(b"usr/bin".to_vec()),
                b"/usr/bin/java" => Some(b"/etc/alternatives/java".to_vec()),
                b"/etc/alternatives/java" => Some(b"/usr/lib/jvm/j17/bin/java".to_vec()),
                b"/usr/lib/jvm/j17" => Some(b"../jvm-real/j17".to_vec()),
                b"/loop" => Some(b"/loop".to_vec()),
                _ => None,
            }
        };
        assert_eq!(canonical(b"/bin/busybox", links), b"/usr/bin/busybox");
        assert_eq!(
            canonical(b"/bin/java", links),
            b"/usr/lib/jvm-real/j17/bin/java"
        );
        assert_eq!(canonical(b"/usr/local/x", links), b"/usr/local/x");
        assert_eq!(canonical(b"/loop/x", links), b"/loop/x");
        assert_eq!(canonical(b"/", links), b"/");
        assert_eq!(last(b"/proc/self/exe"), b"exe");
        assert_eq!(last(b"sleep"), b"sleep");
        assert_eq!(last(b""), b"");
        assert_eq!(parent(b"/tmp/a/b"), Some(&b"/tmp/a"[..]));
        assert_eq!(parent(b"/tmp"), Some(&b"/"[..]));
        assert_eq!(parent(b"/"), None);
        assert_eq!(parent(b"tmp"), None);
    }

    #[test]
    fn a_changed_root_bounds_paths() {
        let r = &b"/srv/jail"[..];
        assert_eq!(resolve_in(b"/", b"/a", b"b"), b"/a/b");
        assert_eq!(resolve_in(r, b"/srv/jail", b"/etc/x"), b"/srv/jail/etc/x");
        assert_eq!(resolve_in(r, b"/srv/jail/d", b"../../../.."), b"/srv/jail");
        assert_eq!(resolve_in(r, b"/srv/jail/d", b"e"), b"/srv/jail/d/e");
        assert_eq!(resolve_in(r, b"/srv/jail", b"/../etc"), b"/srv/jail/etc");
        // A working directory outside the root counts as the root.
        assert_eq!(resolve_in(r, b"/home", b"x"), b"/srv/jail/x");
        // A sibling whose name starts the same is outside.
        assert_eq!(resolve_in(r, b"/srv/jailbreak", b"x"), b"/srv/jail/x");
        assert_eq!(shown_in(r, b"/srv/jail"), b"/");
        assert_eq!(shown_in(r, b"/srv/jail/d"), b"/d");
        assert_eq!(shown_in(r, b"/srv/jailbreak"), b"/srv/jailbreak");
        assert_eq!(shown_in(b"/", b"/x"), b"/x");
    }

    #[test]
    fn an_open_fd_directory_names_its_process() {
        assert_eq!(fd_dir_of(&fd_dir(42)), Some(42));
        assert_eq!(fd_dir_of(b"/proc/self/fd"), None);
        assert_eq!(fd_dir_of(b"/proc/42/fdx"), None);
        assert_eq!(fd_dir_of(b"/proc/42/fd/3"), None);
        assert_eq!(fd_dir_of(b"/tmp/42/fd"), None);
    }

    #[test]
    fn below_a_mount_point() {
        assert_eq!(below(b"/tmp", b"/tmp"), Some(&b""[..]));
        assert_eq!(below(b"/tmp/a/b", b"/tmp"), Some(&b"a/b"[..]));
        assert_eq!(below(b"/tmpfoo", b"/tmp"), None);
        assert_eq!(below(b"/var/tmp", b"/tmp"), None);
        assert_eq!(dev_shm_alias(b"/dev/shm".to_vec()), b"/tmp/.lego-dev-shm");
        assert_eq!(
            dev_shm_alias(b"/dev/shm/sem.x".to_vec()),
            b"/tmp/.lego-dev-shm/sem.x"
        );
        assert_eq!(dev_shm_alias(b"/dev/shmem".to_vec()), b"/dev/shmem");
        assert_eq!(dev_shm_alias(b"/dev/null".to_vec()), b"/dev/null");
        assert_eq!(dev_shm_shown(b"/tmp/.lego-dev-shm".to_vec()), b"/dev/shm");
        assert_eq!(
            dev_shm_shown(b"/tmp/.lego-dev-shm/a/b".to_vec()),
            b"/dev/shm/a/b"
        );
        assert_eq!(
            dev_shm_shown(b"/tmp/.lego-dev-shmx".to_vec()),
            b"/tmp/.lego-dev-shmx"
        );
        assert_eq!(dev_shm_shown(b"/tmp/x".to_vec()), b"/tmp/x");
        assert_eq!(
            resolve(&dev_shm_shown(b"/tmp/.lego-dev-shm".to_vec()), b"../null"),
            b"/dev/null"
        );
    }

    #[test]
    fn paths_resolve_like_linux() {
        assert_eq!(resolve(b"/", b"etc/passwd"), b"/etc/passwd");
        assert_eq!(resolve(b"/home/u", b"../v/./x/"), b"/home/v/x");
        assert_eq!(resolve(b"/a", b"/b//c/.."), b"/b");
        assert_eq!(resolve(b"/", b"../../.."), b"/");
        assert_eq!(resolve(b"/a/b", b"."), b"/a/b");
        assert_eq!(resolve(b"/a/b", b""), b"/a/b");
    }

    #[test]
    fn thread_self_is_the_calling_threads_task_directory() {
        let t = |p: &[u8]| thread_self(p.to_vec(), 5, 7);
        assert_eq!(t(b"/proc/thread-self/comm"), b"/proc/5/task/7/comm");
        assert_eq!(t(b"/proc/thread-self/fd/3"), b"/proc/5/task/7/fd/3");
        // The link itself stays (readlink answers for it), and so do
        // names that only start alike.
        assert_eq!(t(b"/proc/thread-self"), b"/proc/thread-self");
        assert_eq!(t(b"/proc/thread-selfie/x"), b"/proc/thread-selfie/x");
        assert_eq!(
            name(&t(b"/proc/thread-self/comm"), 5),
            Name::TaskFile(5, 7, ProcFile::Comm)
        );
        // A thread's other entries are its process's.
        assert_eq!(name(&t(b"/proc/thread-self/fd/0"), 5), Name::Fd(5, 0));
        assert_eq!(name(&t(b"/proc/thread-self/exe"), 5), Name::Exe(5));
        assert_eq!(name(&t(b"/proc/thread-self/fd"), 5), Name::FdDir(5));
        // Another process's thread's: that process's.
        assert_eq!(name(b"/proc/6/task/7/fd/0", 5), Name::Fd(6, 0));
    }

    /// A file system of links for the walk's tests: Debian's merged /usr,
    /// /proc/self, a loop, a relative link with `..` in it.
    fn links(p: &[u8]) -> Result<Option<Vec<u8>>, i64> {
        Ok(match p {
            b"/lib" => Some(b"usr/lib".to_vec()),
            b"/bin" => Some(b"/usr/bin".to_vec()),
            b"/proc/self" => Some(b"7".to_vec()),
            b"/loop" => Some(b"/loop/x".to_vec()),
            b"/usr/lib/jvm" => Some(b"../share/jvm".to_vec()),
            b"/missing" => return Err(2),
            _ => None,
        })
    }

    #[test]
    fn dot_dot_leaves_the_directory_a_link_reached() {
        type Case = (
            &'static [u8],
            &'static [u8],
            &'static [u8],
            bool,
            Result<&'static [u8], i64>,
        );
        let cases: [Case; 13] = [
            (b"/", b"/", b"/lib/../etc", false, Ok(b"/usr/etc")),
            (b"/", b"/", b"/bin/..", false, Ok(b"/usr")),
            (b"/", b"/", b"/proc/self/fd/..", false, Ok(b"/proc/7")),
            (b"/", b"/", b"/lib/jvm/..", false, Ok(b"/usr/share")),
            (b"/", b"/work", b"../lib/../x", false, Ok(b"/usr/x")),
            // A missing name before `..` ends the walk; so does a loop.
            (b"/", b"/", b"/missing/../etc", false, Err(2)),
            (b"/", b"/", b"/loop/..", false, Err(ELOOP)),
            // `..` stops at the root, also a chroot's.
            (b"/", b"/", b"/../..", false, Ok(b"/")),
            (b"/jail", b"/jail", b"/../..", false, Ok(b"/jail")),
            // A whole walk follows every link: a working directory.
            (b"/", b"/", b"/lib", true, Ok(b"/usr/lib")),
            (b"/", b"/", b"/proc/self", true, Ok(b"/proc/7")),
            (b"/", b"/", b"/usr/lib/jvm/x", true, Ok(b"/usr/share/jvm/x")),
            (b"/", b"/", b"/lib/x86_64", false, Ok(b"/lib/x86_64")),
        ];
        for (root, base, path, whole, want) in cases {
            let got = walk(root, base, path, whole, &mut links);
            assert_eq!(
                got,
                want.map(<[u8]>::to_vec),
                "{:?}",
                core::str::from_utf8(path)
            );
        }
        // Without `..`, nothing is asked: the file system follows links.
        let mut asked = 0;
        let mut count = |_: &[u8]| -> Result<Option<Vec<u8>>, i64> {
            asked += 1;
            Ok(None)
        };
        assert_eq!(
            walk_fn(b"/lib/x86_64", &mut count),
            Ok(b"/lib/x86_64".to_vec())
        );
        assert_eq!(asked, 0);
    }

    fn walk_fn(p: &[u8], link: &mut LinkOf) -> Result<Vec<u8>, i64> {
        walk(b"/", b"/", p, false, link)
    }
}
