//! The user's program, as the processor's VMM serves it: its arguments and
//! environment, the host files `execve` reads (the program itself), the
//! stdio it shares with `lego-vmm`, waking idle vCPUs, and loading file
//! pages into a process's memory at its memory components
//! (`lego_proto::program`). The system calls themselves are the guest's.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::sync::Mutex;

use lego_proto::program::*;

/// Finds the program as a shell would: a name with a slash is a path
/// (relative to the working directory); a bare name is looked up in the
/// caller's PATH (the program's own PATH may differ; see `--env`).
pub fn locate(name: &std::ffi::OsStr) -> crate::error::Result<std::path::PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let given = std::path::Path::new(name);
    if name.as_bytes().contains(&b'/') {
        return Ok(given.to_owned());
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(given))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0))
        .ok_or_else(|| crate::error::VmmError::Program {
            path: given.display().to_string(),
            why: "no such program in PATH (give its path, such as ./NAME, to run a file here)"
                .into(),
        })
}

/// Refuses, before anything boots, a program that cannot run: missing,
/// not a regular executable file, not ELF, 32-bit, truncated, or
/// dynamically linked with a loader this host does not have or that
/// cannot run (the sentence names it).
pub fn check(path: &std::ffi::OsStr) -> crate::error::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let shown = path.to_string_lossy().into_owned();
    let fail = |why: String| crate::error::VmmError::Program {
        path: shown.clone(),
        why,
    };
    let bytes = std::fs::read(path).map_err(|e| {
        fail(match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".into(),
            std::io::ErrorKind::PermissionDenied => "permission denied".into(),
            _ => e.to_string(),
        })
    })?;
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    if meta.mode() & 0o111 == 0 {
        return Err(fail("it is not executable (chmod +x it)".into()));
    }
    match pmon::script::parse(&bytes) {
        pmon::script::Head::NotScript => {}
        pmon::script::Head::Bad => {
            return Err(fail(
                "it starts with #! but names no interpreter in its first 256 bytes".into(),
            ))
        }
        // The interpreter is checked as a program itself (a script whose
        // interpreter is a script again is left to the monitor).
        pmon::script::Head::Script { interp, .. } => {
            let interp = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&interp));
            return match pmon::script::parse(&std::fs::read(&interp).unwrap_or_default()) {
                pmon::script::Head::Script { .. } => Ok(()),
                _ => check(interp.as_os_str()).map_err(|e| {
                    fail(format!(
                        "its interpreter {} cannot run: {e}",
                        interp.display()
                    ))
                }),
            };
        }
    }
    // Addresses are checked again in the guest against its window.
    let program = pmon::elf::parse(&mut bytes.as_slice(), lego_proto::process::USER_TOP_MAX)
        .map_err(|e| fail(e.to_string()))?;
    let Some(interp) = program.interp else {
        return Ok(());
    };
    let loader = std::path::Path::new(std::ffi::OsStr::from_bytes(&interp));
    let why = match std::fs::read(loader) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "there is no such file".to_string(),
        Err(e) => e.to_string(),
        Ok(bytes) => {
            match pmon::elf::parse(&mut bytes.as_slice(), lego_proto::process::USER_TOP_MAX) {
                Ok(p) if p.interp.is_none() => return Ok(()),
                Ok(_) => "it asks for a loader itself".to_string(),
                Err(e) => e.to_string(),
            }
        }
    };
    Err(fail(format!(
        "it is dynamically linked and its loader {} cannot run: {why} (install the libraries it was built against, or rebuild it with -static)",
        loader.display()
    )))
}

/// The file to run for `name` (the program after `--`), checked before
/// anything boots: found as a shell finds it. With a storage component (`storage`), an
/// absolute path this host does not have is a program on storage, which
/// the processor reads from there (and refuses there if it cannot run).
pub fn prepare(
    name: &std::ffi::OsStr,
    storage: Option<u32>,
) -> crate::error::Result<std::path::PathBuf> {
    let exe = locate(name)?;
    if let Some(id) = storage.filter(|_| exe.is_absolute() && !exe.exists()) {
        log::info!(
            "{} is not on this host: the processor runs it from storage component {id}",
            exe.display()
        );
        return Ok(exe);
    }
    check(exe.as_os_str())?;
    Ok(exe)
}

/// The host address of the boot information's field at `offset` (an
/// `offset_of!` of `BootInfo`), if it is mapped and aligned to `align`:
/// the words the VMM posts to the monitor, which takes them at a tick.
fn boot_field(ram: &crate::memory::GuestRam, offset: usize, align: usize) -> Option<*mut u8> {
    use vm_memory::{GuestAddress, GuestMemoryBackend};
    let at = lego_proto::boot::BOOT_INFO + offset as u64;
    ram.get_host_address(GuestAddress(at))
        .ok()
        .filter(|p| *p as usize % align == 0)
}

/// Passes signal `sig`, which lego-vmm received, to the program: a bit in
/// the boot information the monitor takes at its next tick, and vCPU 0
/// kicked so that tick comes now. False if it cannot be posted.
pub fn post_signal(ram: &crate::memory::GuestRam, prog: &Program, sig: i32) -> bool {
    if !(1..=64).contains(&sig) {
        return false;
    }
    let offset = core::mem::offset_of!(lego_proto::boot::BootInfo, host_signals);
    let Some(ptr) = boot_field(ram, offset, 8) else {
        return false;
    };
    // SAFETY: an aligned u64 of guest RAM, mapped for the VM's life; the
    // guest only swaps it atomically.
    unsafe { std::sync::atomic::AtomicU64::from_ptr(ptr.cast::<u64>()) }
        .fetch_or(1 << (sig - 1), std::sync::atomic::Ordering::AcqRel);
    prog.kick(0);
    true
}

/// Asks the monitor to kill the process its memory components know as
/// `gpid`, whose pages `pages` (`[first, end)`) found no frame at a memory
/// component: an entry of the boot information's `oom_kills` the monitor
/// takes at its next tick, and vCPU 0 kicked so that tick comes now. The
/// entry is claimed, its pages written, then its id stored, so the monitor
/// never reads an entry half made. False if no entry is free.
pub fn post_oom_kill(
    ram: &crate::memory::GuestRam,
    prog: &Program,
    gpid: u32,
    pages: (u64, u64),
) -> bool {
    use lego_proto::boot::{BootInfo, OOM_KILLS, OOM_KILL_CLAIMED};
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
    if gpid == 0 || gpid == OOM_KILL_CLAIMED {
        return false;
    }
    let ids = boot_field(ram, core::mem::offset_of!(BootInfo, oom_kills), 4);
    let ranges = boot_field(ram, core::mem::offset_of!(BootInfo, oom_kill_pages), 8);
    let (Some(ids), Some(ranges)) = (ids, ranges) else {
        return false;
    };
    for i in 0..OOM_KILLS {
        // SAFETY: aligned words of guest RAM inside the boot information,
        // mapped for the VM's life; the guest only reads an entry whose id
        // is set and then frees it.
        let id = unsafe { AtomicU32::from_ptr(ids.cast::<u32>().add(i)) };
        if id
            .compare_exchange(0, OOM_KILL_CLAIMED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            continue;
        }
        // SAFETY: as above; the entry is ours until its id is stored.
        unsafe {
            let range = ranges.cast::<u64>().add(2 * i);
            AtomicU64::from_ptr(range).store(pages.0, Ordering::Relaxed);
            AtomicU64::from_ptr(range.add(1)).store(pages.1, Ordering::Relaxed);
        }
        id.store(gpid, Ordering::Release);
        prog.kick(0);
        return true;
    }
    false
}

/// Tells a monitor serving runs that requests wait (`runs`): a word in
/// the boot information it swaps at its next tick, and vCPU 0 kicked.
pub fn post_control(ram: &crate::memory::GuestRam, prog: &Program) {
    let offset = core::mem::offset_of!(lego_proto::boot::BootInfo, control_pending);
    let Some(ptr) = boot_field(ram, offset, 8) else {
        return;
    };
    // SAFETY: an aligned u64 of guest RAM, mapped for the VM's life; the
    // guest only swaps it atomically.
    unsafe { std::sync::atomic::AtomicU64::from_ptr(ptr.cast::<u64>()) }
        .store(1, std::sync::atomic::Ordering::Release);
    prog.kick(0);
}

/// The program to run: `--` and what follows, and `--env`.
pub struct Spec {
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    /// The file to execute (found by [`locate`]); `argv[0]` stays as given.
    pub exe: Vec<u8>,
    /// `--strace`: the monitor prints every system call.
    pub trace: bool,
}

impl Spec {
    /// The environment a program gets: PATH, HOME and TERM from the caller
    /// (with defaults), the caller's locale and time zone
    /// ([`lego_control::goes_with_program`]), then each `--env K=V` (a later
    /// one replaces).
    pub fn environment(extra: &[String]) -> Vec<Vec<u8>> {
        let mut env: Vec<(String, String)> = Vec::new();
        let mut set = |k: &str, v: String| {
            env.retain(|(key, _)| key != k);
            env.push((k.to_owned(), v));
        };
        set(
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        );
        set("HOME", std::env::var("HOME").unwrap_or_else(|_| "/".into()));
        set(
            "TERM",
            std::env::var("TERM").unwrap_or_else(|_| "dumb".into()),
        );
        for (key, value) in lego_control::callers_locale() {
            set(&key, value);
        }
        for kv in extra {
            if let Some((k, v)) = kv.split_once('=') {
                set(k, v.to_owned());
            }
        }
        env.into_iter()
            .map(|(k, v)| format!("{k}={v}").into_bytes())
            .collect()
    }

    /// argv, envp, lego-vmm's working directory (the program's first
    /// one), then the file to execute, each string NUL-terminated.
    fn blob(&self) -> Vec<u8> {
        use std::os::unix::ffi::OsStrExt;
        let mut out = Vec::new();
        for s in self.argv.iter().chain(&self.envp) {
            out.extend_from_slice(s);
            out.push(0);
        }
        let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
        out.extend_from_slice(cwd.as_os_str().as_bytes());
        out.push(0);
        out.extend_from_slice(&self.exe);
        out.push(0);
        out
    }
}

/// An eventfd a vCPU's idle wait listens on.
struct Kick(OwnedFd);

impl Kick {
    fn new() -> std::io::Result<Kick> {
        // SAFETY: eventfd returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a descriptor we own.
        Ok(Kick(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn ring(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a local to our eventfd.
        unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a local from our eventfd (non-blocking).
        unsafe { libc::read(self.0.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }
}

/// An opened host file: a file to read, or a directory's entries (read
/// once at open: (inode, type, name)).
enum Opened {
    File(File),
    Dir(Vec<(u64, u8, Vec<u8>)>),
}

/// Keeps `opened` under the next handle not in use (handles wrap; one
/// that lives on, the vDSO's file, is never given out twice).
fn keep_opened(files: &mut (u32, HashMap<u32, Opened>), opened: Opened) -> u32 {
    while files.1.contains_key(&files.0) {
        files.0 = files.0.wrapping_add(1).max(1);
    }
    let handle = files.0;
    files.0 = files.0.wrapping_add(1).max(1);
    files.1.insert(handle, opened);
    handle
}

/// struct stat, from the host's metadata.
fn file_stat(m: &std::fs::Metadata) -> FileStat {
    FileStat {
        dev: m.dev(),
        ino: m.ino(),
        nlink: m.nlink(),
        mode: m.mode(),
        uid: m.uid(),
        gid: m.gid(),
        _pad: 0,
        rdev: m.rdev(),
        size: m.size(),
        blksize: m.blksize(),
        blocks: m.blocks(),
        atime: m.atime() as u64,
        atime_ns: m.atime_nsec() as u64,
        mtime: m.mtime() as u64,
        mtime_ns: m.mtime_nsec() as u64,
        ctime: m.ctime() as u64,
        ctime_ns: m.ctime_nsec() as u64,
    }
}

fn errno_of(e: &std::io::Error) -> u32 {
    e.raw_os_error().unwrap_or(libc::EIO) as u32
}

/// Whether `path`, not itself in a served tree, reaches one through a
/// symbolic link of the host's. Only a file on the file system of one of
/// those trees (`meta`, with links followed) is looked at closely, so a
/// host file elsewhere costs no more than it did; a /tmp on the root's
/// file system is not told apart from the rest of it.
fn leads_elsewhere(path: &std::path::Path, meta: &std::fs::Metadata) -> bool {
    static DEVICES: std::sync::OnceLock<Vec<u64>> = std::sync::OnceLock::new();
    let served = |p: &std::path::Path| SERVED_TREES.iter().any(|s| p.starts_with(s));
    if served(path) {
        return false;
    }
    let devices = DEVICES.get_or_init(|| {
        let root = std::fs::metadata("/").map(|m| m.dev()).ok();
        ["/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/tmp"]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok().map(|m| m.dev()))
            .filter(|&d| Some(d) != root)
            .collect()
    });
    devices.contains(&meta.dev()) && std::fs::canonicalize(path).is_ok_and(|c| served(&c))
}

fn os_path(path: &[u8]) -> &std::path::Path {
    use std::os::unix::ffi::OsStrExt;
    std::path::Path::new(std::ffi::OsStr::from_bytes(path))
}

pub struct Program {
    spec: Spec,
    files: Mutex<(u32, HashMap<u32, Opened>)>,
    /// Host files that processes' read-only mappings read their pages
    /// from, one descriptor per file however many map it (a compiler
    /// driver running its compiler a thousand times), by device and
    /// inode.
    mapped: Mutex<HashMap<(u64, u64), std::sync::Weak<File>>>,
    kicks: Vec<Kick>,
    /// Interrupts running processes: ticks, and kicks from the monitor.
    pub preempt: std::sync::Arc<crate::preempt::Preempt>,
    /// Serializes stdin reads between vCPUs.
    stdin: Mutex<()>,
    /// Serving runs (`--control`): their stdio and requests.
    pub runs: Option<std::sync::Arc<crate::runs::Runs>>,
    /// File writes sent and not answered yet (write-behind).
    pub posted: crate::posted::Posted,
    /// File reads started ahead of the program, not collected yet.
    pub fetched: crate::fetched::Fetched,
    /// Where vCPUs wait for the monitor's lock (PORT_LOCK_WAIT).
    monitor_lock: (Mutex<()>, std::sync::Condvar),
}

/// A hypercall's answer for the guest, or why the call was malformed.
pub type Answer<T> = Result<T, String>;

impl Program {
    pub fn new(
        spec: Spec,
        vcpus: u32,
        runs: Option<std::sync::Arc<crate::runs::Runs>>,
    ) -> std::io::Result<Program> {
        let kicks = (0..vcpus).map(|_| Kick::new()).collect::<Result<_, _>>()?;
        let preempt = crate::preempt::Preempt::new(vcpus);
        // Runs for the life of the VMM process.
        preempt.start_ticker()?;
        Ok(Program {
            spec,
            files: Mutex::new((1, HashMap::new())),
            mapped: Mutex::new(HashMap::new()),
            kicks,
            preempt,
            stdin: Mutex::new(()),
            runs,
            posted: crate::posted::Posted::default(),
            fetched: crate::fetched::Fetched::default(),
            monitor_lock: (Mutex::new(()), std::sync::Condvar::new()),
        })
    }

    /// PORT_LOCK_WAIT: waits while `contended` (the guest's lock word,
    /// read under our mutex, so a wake after the guest let go is never
    /// missed) says the monitor's lock is held with waiters, for 5 ms at
    /// most (then the guest looks again).
    pub fn lock_wait(&self, contended: impl Fn() -> bool) {
        let (lock, cvar) = &self.monitor_lock;
        let Ok(guard) = lock.lock() else {
            return;
        };
        if contended() {
            let _ = cvar.wait_timeout(guard, std::time::Duration::from_millis(5));
        }
    }

    /// PORT_LOCK_WAKE: the monitor's lock was let go; its waiters try again.
    pub fn lock_wake(&self) {
        let (lock, cvar) = &self.monitor_lock;
        let _guard = lock.lock();
        cvar.notify_all();
    }

    pub fn args(
        &self,
        mut a: ProgramArgs,
        write: impl Fn(u64, &[u8]) -> Answer<()>,
    ) -> Answer<ProgramArgs> {
        let blob = self.spec.blob();
        a.needed = blob.len() as u64;
        a.argc = self.spec.argv.len() as u32;
        a.envc = self.spec.envp.len() as u32;
        if blob.len() as u64 <= a.buf_len {
            write(a.buf, &blob)?;
        }
        Ok(a)
    }

    /// Opens a host file to execute or to read (a directory too): (handle,
    /// errno, stat). Until the storage component serves files, programs see
    /// the host's files read-only through this.
    pub fn open(&self, path: &[u8], flags: u32) -> (u32, u32, FileStat) {
        let path = os_path(path);
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => return (0, errno_of(&e), FileStat::default()),
        };
        let stat = file_stat(&meta);
        if flags & OPEN_SAY_ELSEWHERE != 0 && leads_elsewhere(path, &meta) {
            return (0, ELSEWHERE, stat);
        }
        let exec = flags & OPEN_READ == 0;
        let opened = if meta.is_dir() {
            if exec {
                return (0, libc::EACCES as u32, stat);
            }
            let entries = match std::fs::read_dir(path) {
                Ok(d) => d,
                Err(e) => return (0, errno_of(&e), stat),
            };
            use std::os::unix::ffi::OsStrExt;
            use std::os::unix::fs::DirEntryExt;
            let mut list = vec![
                (meta.ino(), libc::DT_DIR, b".".to_vec()),
                (meta.ino(), libc::DT_DIR, b"..".to_vec()),
            ];
            for e in entries.flatten() {
                let kind = match e.file_type() {
                    Ok(t) if t.is_dir() => libc::DT_DIR,
                    Ok(t) if t.is_symlink() => libc::DT_LNK,
                    Ok(t) if t.is_file() => libc::DT_REG,
                    _ => libc::DT_UNKNOWN,
                };
                list.push((e.ino(), kind, e.file_name().as_bytes().to_vec()));
            }
            Opened::Dir(list)
        } else {
            if exec && (!meta.is_file() || meta.mode() & 0o111 == 0) {
                return (0, libc::EACCES as u32, stat);
            }
            // The host's devices and sockets are not this machine's
            // hardware: a program here would read the host's kernel log
            // (/dev/kmsg) or disks. ENXIO, as Linux answers for a device
            // node without a driver; Lego's own devices (/dev/null,
            // /dev/urandom, ptys) are the monitor's.
            let kind = meta.file_type();
            if kind.is_char_device() || kind.is_block_device() || kind.is_socket() {
                return (0, libc::ENXIO as u32, stat);
            }
            // Never blocking: the vCPU that asked waits in this call, so a
            // host FIFO's open (which waits for a writer) or a tracing
            // pipe's read (which waits for an event) would hold it, and
            // its process's signals, for good. A read that would wait is
            // EAGAIN instead; O_NONBLOCK changes nothing for a regular
            // file.
            let open = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
                .open(path);
            match open {
                Ok(f) => Opened::File(f),
                Err(e) => return (0, errno_of(&e), stat),
            }
        };
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        if files.1.len() >= 4096 {
            return (0, libc::EMFILE as u32, stat);
        }
        (keep_opened(&mut files, opened), 0, stat)
    }

    /// stat or lstat of a host path.
    pub fn stat(&self, path: &[u8], follow: bool) -> Result<FileStat, u32> {
        let path = os_path(path);
        let meta = if follow {
            std::fs::metadata(path)
        } else {
            std::fs::symlink_metadata(path)
        };
        meta.map(|m| file_stat(&m)).map_err(|e| errno_of(&e))
    }

    /// statfs(2) of a host path, as Linux's struct statfs words.
    pub fn statfs(&self, path: &[u8]) -> Result<[u64; 15], u32> {
        let c = std::ffi::CString::new(path).map_err(|_| libc::EINVAL as u32)?;
        // SAFETY: all-zero bytes are a valid struct statfs.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: a NUL-terminated path and a struct statfs to fill.
        if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
            return Err(errno_of(&std::io::Error::last_os_error()));
        }
        let fsid: [i32; 2] = {
            // SAFETY: fsid_t is two ints.
            unsafe { std::mem::transmute::<libc::fsid_t, [i32; 2]>(st.f_fsid) }
        };
        Ok([
            st.f_type as u64,
            st.f_bsize as u64,
            st.f_blocks,
            st.f_bfree,
            st.f_bavail,
            st.f_files,
            st.f_ffree,
            (fsid[0] as u32 as u64) | ((fsid[1] as u32 as u64) << 32),
            st.f_namelen as u64,
            st.f_frsize as u64,
            // Mount flags: the libc crate's struct lacks them; the monitor
            // marks host file systems read-only.
            0,
            0,
            0,
            0,
            0,
        ])
    }

    pub fn readlink(&self, path: &[u8]) -> Result<Vec<u8>, i64> {
        use std::os::unix::ffi::OsStrExt;
        std::fs::read_link(os_path(path))
            .map(|t| t.as_os_str().as_bytes().to_vec())
            .map_err(|e| -(errno_of(&e) as i64))
    }

    /// linux_dirent64 records of a directory handle from entry `offset`
    /// on, at most `len` bytes; the bytes and the next offset.
    pub fn readdir(&self, handle: u32, offset: u64, len: usize) -> Result<(Vec<u8>, u64), i64> {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let Some(Opened::Dir(list)) = files.1.get(&handle) else {
            return Err(-(libc::ENOTDIR as i64));
        };
        let mut out = Vec::new();
        let mut at = offset as usize;
        while let Some((ino, kind, name)) = list.get(at) {
            let reclen = (19 + name.len() + 1).next_multiple_of(8);
            if out.len() + reclen > len {
                if out.is_empty() {
                    return Err(-EINVAL);
                }
                break;
            }
            out.extend_from_slice(&ino.to_le_bytes());
            out.extend_from_slice(&((at + 1) as u64).to_le_bytes());
            out.extend_from_slice(&(reclen as u16).to_le_bytes());
            out.push(*kind);
            out.extend_from_slice(name);
            out.resize(out.len() + reclen - 19 - name.len(), 0);
            at += 1;
        }
        Ok((out, at as u64))
    }

    /// Reads from an opened file; bytes read or -errno.
    pub fn read(&self, handle: u32, offset: u64, len: usize) -> Result<Vec<u8>, i64> {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let file = match files.1.get(&handle) {
            Some(Opened::File(f)) => f,
            Some(Opened::Dir(_)) => return Err(-(libc::EISDIR as i64)),
            None => return Err(-EBADF),
        };
        let mut buf = vec![0u8; len.min(1 << 20)];
        let n = file
            .read_at(&mut buf, offset)
            .map_err(|e| -(e.raw_os_error().unwrap_or(libc::EIO) as i64))?;
        buf.truncate(n);
        Ok(buf)
    }

    /// The file an opened handle reads, for a mapping that goes on
    /// reading it after the handle is closed: its own descriptor, shared
    /// with every other mapping of the same file.
    pub fn mapped_file(&self, handle: u32) -> Result<std::sync::Arc<File>, i64> {
        use std::os::unix::fs::MetadataExt;
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let file = match files.1.get(&handle) {
            Some(Opened::File(f)) => f,
            Some(Opened::Dir(_)) => return Err(-(libc::EISDIR as i64)),
            None => return Err(-EBADF),
        };
        let errno = |e: std::io::Error| -(e.raw_os_error().unwrap_or(libc::EIO) as i64);
        let meta = file.metadata().map_err(errno)?;
        let key = (meta.dev(), meta.ino());
        let mut mapped = self.mapped.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = mapped.get(&key).and_then(|w| w.upgrade()) {
            return Ok(f);
        }
        let f = std::sync::Arc::new(file.try_clone().map_err(errno)?);
        // Files no mapping reads any more are forgotten as others come.
        mapped.retain(|_, w| w.strong_count() > 0);
        mapped.insert(key, std::sync::Arc::downgrade(&f));
        Ok(f)
    }

    /// PORT_MEM_FILE: `bytes` as a read-only file of its own (a memfd),
    /// and its handle; or the errno.
    pub fn mem_file(&self, bytes: &[u8]) -> Result<u32, u32> {
        let errno = |e: std::io::Error| e.raw_os_error().unwrap_or(libc::EIO) as u32;
        let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
        // SAFETY: a NUL-terminated name; the flags are memfd_create's.
        let fd = unsafe { libc::memfd_create(c"lego-mem-file".as_ptr(), flags) };
        if fd < 0 {
            return Err(errno(std::io::Error::last_os_error()));
        }
        // SAFETY: a descriptor just made, owned by nothing else.
        let mut file = unsafe { <File as std::os::unix::io::FromRawFd>::from_raw_fd(fd) };
        std::io::Write::write_all(&mut file, bytes).map_err(errno)?;
        // Read-only for good: no later write or resize reaches what the
        // processes map.
        let seals =
            libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
        // SAFETY: fcntl on our descriptor with an int argument.
        if unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, seals) } < 0 {
            return Err(errno(std::io::Error::last_os_error()));
        }
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        Ok(keep_opened(&mut files, Opened::File(file)))
    }

    pub fn close(&self, handle: u32) {
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        files.1.remove(&handle);
    }

    /// A write to a run's stdout (1) or stderr (2) (run 0: lego-vmm's):
    /// bytes written or -errno.
    pub fn write(&self, run: u32, fd: u32, bytes: &[u8]) -> i64 {
        if run != 0 {
            return match &self.runs {
                Some(r) if fd == 1 || fd == 2 => r.write(run, fd, bytes),
                _ => -EBADF,
            };
        }
        let r = match fd {
            1 => write_through(&mut std::io::stdout().lock(), bytes),
            2 => write_through(&mut std::io::stderr().lock(), bytes),
            _ => return -EBADF,
        };
        match r {
            Ok(n) => n as i64,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => -EPIPE,
            Err(e) => -(e.raw_os_error().unwrap_or(libc::EIO) as i64),
        }
    }

    /// A read of a run's stdin (run 0: lego-vmm's) that never blocks:
    /// bytes, 0 at the end of input, or -EAGAIN when nothing is there yet.
    pub fn read_stdin(&self, run: u32, len: usize) -> Result<Vec<u8>, i64> {
        if run != 0 {
            return match &self.runs {
                Some(r) => r.read_stdin(run, len),
                None => Err(-EBADF),
            };
        }
        let _one = self.stdin.lock().unwrap_or_else(|p| p.into_inner());
        if !readable(0, 0) {
            return Err(-EAGAIN);
        }
        let mut buf = vec![0u8; len.min(1 << 20)];
        // Stdin is readable: one read returns what is there without waiting.
        // Read from the fd itself, not through std's buffer: a program's
        // lseek moves the fd's offset (`seek_stdio`), and nothing read
        // ahead may stand between them.
        // SAFETY: reads into the buffer we own, at most its length.
        let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(last_errno());
        }
        buf.truncate(n as usize);
        Ok(buf)
    }

    /// lseek on a run's stdio (run 0: lego-vmm's own fd, so a program
    /// given a file as stdin seeks in it as on Linux: GNU wc -c and head
    /// do, and Python's stat of /dev/stdin took it for a file). A run's
    /// stdio is a connection: ESPIPE.
    pub fn seek_stdio(&self, run: u32, fd: u32, offset: i64, whence: u64) -> i64 {
        if fd > 2 {
            return -EBADF;
        }
        if run != 0 {
            return -ESPIPE;
        }
        let Ok(whence) = i32::try_from(whence) else {
            return -EINVAL;
        };
        let _one = (fd == 0).then(|| self.stdin.lock().unwrap_or_else(|p| p.into_inner()));
        // SAFETY: lseek of fd 0, 1 or 2 touches no memory.
        let r = unsafe { libc::lseek(fd as i32, offset, whence) };
        if r < 0 {
            return last_errno();
        }
        r
    }

    /// pread on a run's stdio (run 0: lego-vmm's own fd, which a file
    /// given as stdin is; the host says ESPIPE for a pipe or terminal):
    /// bytes, or -errno. A run's stdio is a connection: ESPIPE.
    pub fn pread_stdio(&self, run: u32, fd: u32, len: usize, offset: u64) -> Result<Vec<u8>, i64> {
        let offset = self.stdio_at(run, fd, offset)?;
        let mut buf = vec![0u8; len.min(1 << 20)];
        // SAFETY: reads into the buffer we own, at most its length.
        let n = unsafe { libc::pread(fd as i32, buf.as_mut_ptr().cast(), buf.len(), offset) };
        if n < 0 {
            return Err(last_errno());
        }
        buf.truncate(n as usize);
        Ok(buf)
    }

    /// pwrite on a run's stdio, as [`Self::pread_stdio`]: bytes written or
    /// -errno (an fd opened O_APPEND appends, as Linux's pwrite does).
    pub fn pwrite_stdio(&self, run: u32, fd: u32, bytes: &[u8], offset: u64) -> i64 {
        let offset = match self.stdio_at(run, fd, offset) {
            Ok(o) => o,
            Err(e) => return e,
        };
        // SAFETY: writes from the slice we were given, at most its length.
        let n = unsafe { libc::pwrite(fd as i32, bytes.as_ptr().cast(), bytes.len(), offset) };
        if n < 0 {
            return last_errno();
        }
        n as i64
    }

    /// The host offset of a positional call on stdio `fd` of `run`, or why
    /// there is none.
    fn stdio_at(&self, run: u32, fd: u32, offset: u64) -> Result<libc::off_t, i64> {
        if fd > 2 {
            return Err(-EBADF);
        }
        if run != 0 {
            return Err(-ESPIPE);
        }
        libc::off_t::try_from(offset).map_err(|_| -EINVAL)
    }

    /// An ioctl a program makes on stdio: TCGETS, TIOCGWINSZ (answered by
    /// the host's terminal, or ENOTTY as Linux answers for a pipe or file).
    /// A run's stdio is a connection, never a terminal: ENOTTY.
    pub fn ioctl(&self, run: u32, fd: u32, request: u64, len: usize) -> Result<Vec<u8>, i64> {
        if fd > 2 {
            return Err(-EBADF);
        }
        if run != 0 {
            return Err(-(libc::ENOTTY as i64));
        }
        let mut buf = vec![0u8; len.min(4096)];
        // SAFETY: only the two read-only requests below are passed, each
        // with a buffer at least as large as its struct (checked by size).
        let r = match request {
            0x5401 if len >= std::mem::size_of::<libc::termios>() => unsafe {
                libc::ioctl(fd as i32, libc::TCGETS, buf.as_mut_ptr())
            },
            0x5413 if len >= std::mem::size_of::<libc::winsize>() => unsafe {
                libc::ioctl(fd as i32, libc::TIOCGWINSZ, buf.as_mut_ptr())
            },
            _ => return Err(-EINVAL),
        };
        if r < 0 {
            return Err(last_errno());
        }
        Ok(buf)
    }

    /// fstat of one of lego-vmm's stdio files.
    /// A run's stdio is a pipe to its client, as a program sees it.
    pub fn stat_stdio(&self, run: u32, fd: u32) -> Result<StdioStat, i64> {
        if fd > 2 {
            return Err(-EBADF);
        }
        if run != 0 {
            return Ok(StdioStat {
                mode: libc::S_IFIFO | 0o600,
                blksize: 4096,
                ..Default::default()
            });
        }
        // SAFETY: fstat fills the struct we own.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above; fd is 0, 1 or 2.
        if unsafe { libc::fstat(fd as i32, &mut st) } < 0 {
            return Err(-EBADF);
        }
        Ok(StdioStat {
            mode: st.st_mode,
            _pad: 0,
            size: st.st_size as u64,
            rdev: st.st_rdev,
            ino: st.st_ino,
            dev: st.st_dev,
            blksize: st.st_blksize as u64,
        })
    }

    /// Waits for a kick, stdin or the timeout.
    pub fn idle(&self, cpu: u32, idle: Idle) -> u32 {
        let Some(kick) = self.kicks.get(cpu as usize) else {
            return WOKE_TIMEOUT;
        };
        let mut fds = [
            libc::pollfd {
                fd: kick.0.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                // Runs' stdin replaces lego-vmm's own, which no run reads.
                fd: self.runs.as_ref().map_or(0, |r| r.stdin_fd()),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let n = if idle.stdin != 0 { 2 } else { 1 };
        let timeout = if idle.timeout_ns == 0 {
            -1
        } else {
            idle.timeout_ns.div_ceil(1_000_000).min(i32::MAX as u64) as i32
        };
        self.preempt.pause_clock(cpu);
        // SAFETY: n pollfds of a local array.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), n, timeout) };
        self.preempt.restart_clock(cpu);
        if r <= 0 {
            return WOKE_TIMEOUT;
        }
        if fds[0].revents != 0 {
            kick.drain();
            return WOKE_KICK;
        }
        if let Some(r) = &self.runs {
            r.drain_stdin_ready();
        }
        WOKE_STDIN
    }

    /// The monitor wants vCPU `cpu` back: woken if idle, interrupted if
    /// it runs a process.
    pub fn kick(&self, cpu: u32) {
        if let Some(k) = self.kicks.get(cpu as usize) {
            k.ring();
        }
        self.preempt.request(cpu);
    }
}

/// The last failed libc call's errno, negated, as the guest's results carry it.
fn last_errno() -> i64 {
    -i64::from(errno_of(&std::io::Error::last_os_error()))
}

/// All of `bytes` to the program's stdout or stderr, as Linux's write to
/// a blocking file or pipe takes everything unless it fails. (std's stdout
/// is line-buffered: its `write` returns at the last newline when the rest
/// is longer than its buffer, and a program that does not loop on short
/// writes would lose the rest.) A failure after some bytes returns those.
fn write_through(out: &mut impl std::io::Write, bytes: &[u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < bytes.len() {
        match out.write(&bytes[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        }
    }
    match out.flush() {
        Err(e) if done == 0 => Err(e),
        _ => Ok(done),
    }
}

/// Whether `fd` has input (or is at its end) within `ms` milliseconds.
fn readable(fd: i32, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd, owned here.
    unsafe { libc::poll(&mut p, 1, ms) > 0 }
}
