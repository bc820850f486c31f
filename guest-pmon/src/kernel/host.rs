//! What only the host has, through the VMM (`lego_proto::program`): the
//! program's arguments, host files for execve, lego-vmm's stdio, waiting
//! for work, and the exit status. Each call is one exit.

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use lego_image::cpu::{phys_of, virt_to_phys};
use lego_image::hypercall;
use lego_proto::program::*;

/// What `lego-vmm -- PROGRAM ARGS` gives the first process.
pub struct FirstProgram {
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    /// lego-vmm's working directory.
    pub cwd: Vec<u8>,
    /// The file to execute (PROGRAM as found in PATH).
    pub exe: Vec<u8>,
}

pub fn program_args() -> FirstProgram {
    let mut a = ProgramArgs::default();
    hypercall::out(PORT_PROGRAM_ARGS, phys_of(&a) as u32);
    // SAFETY: the VMM wrote it during the hypercall.
    let first = unsafe { core::ptr::read_volatile(&a) };
    let mut buf = alloc::vec![0u8; first.needed as usize];
    a.buf = virt_to_phys(buf.as_mut_ptr() as u64);
    a.buf_len = buf.len() as u64;
    hypercall::out(PORT_PROGRAM_ARGS, phys_of(&a) as u32);
    // SAFETY: as above.
    let got = unsafe { core::ptr::read_volatile(&a) };
    let mut strings = buf.split(|&b| b == 0).map(|s| s.to_vec());
    let argv: Vec<Vec<u8>> = strings.by_ref().take(got.argc as usize).collect();
    let envp: Vec<Vec<u8>> = strings.by_ref().take(got.envc as usize).collect();
    let cwd = strings
        .next()
        .filter(|c| c.first() == Some(&b'/'))
        .unwrap_or_else(|| b"/".to_vec());
    let exe = strings.next().unwrap_or_default();
    FirstProgram {
        argv,
        envp,
        cwd,
        exe,
    }
}

/// An opened host file to execute: its handle and size, or an errno.
pub fn open(path: &[u8]) -> Result<(u32, u64), i64> {
    open_as(path, OPEN_EXEC).map(|(h, st)| (h, st.size))
}

/// An opened host file or directory (OPEN_EXEC or OPEN_READ): its handle
/// and what stat says of it, or an errno.
pub fn open_as(path: &[u8], flags: u32) -> Result<(u32, FileStat), i64> {
    check_path(path)?;
    let o = HostOpen {
        path: virt_to_phys(path.as_ptr() as u64),
        path_len: path.len() as u64,
        flags,
        ..Default::default()
    };
    hypercall::out(PORT_HOST_OPEN, phys_of(&o) as u32);
    // SAFETY: the VMM wrote it during the hypercall.
    let o = unsafe { core::ptr::read_volatile(&o) };
    if o.errno != 0 {
        return Err(o.errno as i64);
    }
    Ok((o.handle, o.stat))
}

/// The VMM takes paths of at most PATH_MAX bytes and stops a guest that
/// passes a longer one: a program's long path is ENAMETOOLONG before that.
/// A name of the host's /tmp that a program removed is gone (ENOENT) for
/// every call.
fn check_path(path: &[u8]) -> Result<(), i64> {
    if path.len() >= pmon::path::PATH_MAX {
        return Err(super::ENAMETOOLONG);
    }
    if removed(path) {
        return Err(super::ENOENT);
    }
    Ok(())
}

/// Names of the host's /tmp (showing through under the processor's
/// tmpfs) that programs removed: overlayfs's whiteouts. The host's files
/// are never touched.
static REMOVED: spin::Mutex<BTreeSet<Vec<u8>>> = spin::Mutex::new(BTreeSet::new());

/// Whether a program removed host path `path` (or a directory above it).
pub fn removed(path: &[u8]) -> bool {
    pmon::path::under_any(&REMOVED.lock(), path)
}

/// Hides host path `path` (and what is under it) from now on.
pub fn remove(path: &[u8]) {
    REMOVED.lock().insert(path.to_vec());
}

/// stat (follow) or lstat of a host path.
pub fn stat_path(path: &[u8], follow: bool) -> Result<FileStat, i64> {
    check_path(path)?;
    let st = HostStat {
        path: virt_to_phys(path.as_ptr() as u64),
        path_len: path.len() as u64,
        follow: follow as u32,
        ..Default::default()
    };
    hypercall::out(PORT_HOST_STAT, phys_of(&st) as u32);
    // SAFETY: the VMM wrote it during the hypercall.
    let st = unsafe { core::ptr::read_volatile(&st) };
    if st.errno != 0 {
        return Err(st.errno as i64);
    }
    Ok(st.stat)
}

/// A whole host file read (a /proc file: its size says 0), at most `max`
/// bytes.
pub fn slurp(path: &[u8], max: usize) -> Result<Vec<u8>, i64> {
    let (handle, _) = open_as(path, OPEN_READ)?;
    let mut out = Vec::new();
    let mut chunk = alloc::vec![0u8; 64 << 10];
    while out.len() < max {
        let n = read(handle, out.len() as u64, &mut chunk);
        if n < 0 {
            close(handle);
            return Err(-n);
        }
        if n == 0 {
            break;
        }
        out.extend_from_slice(&chunk[..n as usize]);
    }
    close(handle);
    out.truncate(max);
    Ok(out)
}

/// statfs of a host path: Linux's struct statfs, as 15 words.
pub fn statfs(path: &[u8]) -> Result<[u64; 15], i64> {
    check_path(path)?;
    let st = HostStatfs {
        path: virt_to_phys(path.as_ptr() as u64),
        path_len: path.len() as u64,
        ..Default::default()
    };
    hypercall::out(PORT_HOST_STATFS, phys_of(&st) as u32);
    // SAFETY: the VMM wrote it during the hypercall.
    let st = unsafe { core::ptr::read_volatile(&st) };
    if st.errno != 0 {
        return Err(st.errno as i64);
    }
    Ok(st.statfs)
}

/// Directory entries from entry `offset` on: (bytes, next offset).
pub fn readdir(handle: u32, offset: u64, len: usize) -> Result<(Vec<u8>, u64), i64> {
    let mut buf = alloc::vec![0u8; len.min(1 << 16)];
    let r = HostReaddir {
        handle,
        _pad: 0,
        offset,
        buf: virt_to_phys(buf.as_mut_ptr() as u64),
        len: buf.len() as u64,
        result: 0,
    };
    hypercall::out(PORT_HOST_READDIR, phys_of(&r) as u32);
    // SAFETY: the VMM wrote it during the hypercall.
    let r = unsafe { core::ptr::read_volatile(&r) };
    if r.result < 0 {
        return Err(-r.result);
    }
    buf.truncate(r.result as usize);
    Ok((buf, r.offset))
}

pub fn readlink(path: &[u8]) -> Result<Vec<u8>, i64> {
    check_path(path)?;
    let mut buf = alloc::vec![0u8; 4096];
    let r = HostReadlink {
        path: virt_to_phys(path.as_ptr() as u64),
        path_len: path.len() as u64,
        buf: virt_to_phys(buf.as_mut_ptr() as u64),
        len: buf.len() as u64,
        result: 0,
    };
    hypercall::out(PORT_HOST_READLINK, phys_of(&r) as u32);
    // SAFETY: the VMM wrote it during the hypercall.
    let n = unsafe { core::ptr::read_volatile(&r.result) };
    if n < 0 {
        return Err(-n);
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// Reads at most `buf.len()` bytes at `offset`: bytes read, or -errno.
pub fn read(handle: u32, offset: u64, buf: &mut [u8]) -> i64 {
    let r = HostRead {
        handle,
        _pad: 0,
        offset,
        buf: virt_to_phys(buf.as_mut_ptr() as u64),
        len: buf.len() as u64,
        result: 0,
    };
    hypercall::out(PORT_HOST_READ, phys_of(&r) as u32);
    // SAFETY: the VMM wrote it during the hypercall.
    unsafe { core::ptr::read_volatile(&r.result) }
}

pub fn close(handle: u32) {
    hypercall::out(PORT_HOST_CLOSE, handle);
}

/// Copies `filesz` bytes of the file at `offset` into the process in
/// `slot` at `va`, at its memory components, for a segment of protection
/// `prot`. 0 or -errno.
pub fn load(handle: u32, slot: u32, offset: u64, filesz: u64, va: u64, prot: u32) -> i64 {
    let l = Load {
        handle,
        slot,
        offset,
        filesz,
        va,
        result: 0,
        prot,
        _reserved: 0,
    };
    hypercall::out(PORT_LOAD, phys_of(&l) as u32);
    // SAFETY: the VMM wrote it during the hypercall.
    unsafe { core::ptr::read_volatile(&l.result) }
}

/// `bytes` as a read-only file of the VMM's, which [`load`] maps as a
/// program's file: its handle, or None if the VMM made none.
pub fn mem_file(bytes: &[u8]) -> Option<u32> {
    let m = MemFile {
        buf: virt_to_phys(bytes.as_ptr() as u64),
        len: bytes.len() as u64,
        handle: 0,
        errno: u32::MAX,
    };
    hypercall::out(PORT_MEM_FILE, phys_of(&m) as u32);
    // SAFETY: the VMM wrote them during the hypercall.
    let (handle, errno) = unsafe {
        (
            core::ptr::read_volatile(&m.handle),
            core::ptr::read_volatile(&m.errno),
        )
    };
    (errno == 0 && handle != 0).then_some(handle)
}

fn stdio(run: u32, op: u32, fd: u32, buf: u64, len: u64, arg: u64) -> i64 {
    let c = StdioCall {
        op,
        fd,
        buf,
        len,
        arg,
        result: 0,
        run,
        _pad: 0,
    };
    hypercall::out(PORT_STDIO, phys_of(&c) as u32);
    // SAFETY: the VMM wrote it during the hypercall.
    unsafe { core::ptr::read_volatile(&c.result) }
}

/// Writes to a run's stdout (1) or stderr (2) (run 0: lego-vmm's).
pub fn write(run: u32, fd: u32, data: &[u8]) -> i64 {
    stdio(
        run,
        STDIO_WRITE,
        fd,
        virt_to_phys(data.as_ptr() as u64),
        data.len() as u64,
        0,
    )
}

/// Reads a run's stdin without waiting (-EAGAIN when nothing is there).
pub fn read_stdin(run: u32, buf: &mut [u8]) -> i64 {
    stdio(
        run,
        STDIO_READ,
        0,
        virt_to_phys(buf.as_mut_ptr() as u64),
        buf.len() as u64,
        0,
    )
}

/// lseek on a run's stdio (run 0: lego-vmm's own fd): the new offset or
/// -errno (-ESPIPE where it is a pipe, a terminal or a connection).
pub fn seek_stdio(run: u32, fd: u32, offset: i64, whence: u64) -> i64 {
    stdio(run, STDIO_SEEK, fd, 0, whence, offset as u64)
}

/// pread on a run's stdio (run 0: lego-vmm's own fd): bytes read or
/// -errno (-ESPIPE where it is a pipe, a terminal or a connection).
pub fn pread_stdio(run: u32, fd: u32, buf: &mut [u8], offset: u64) -> i64 {
    let (at, len) = (virt_to_phys(buf.as_mut_ptr() as u64), buf.len() as u64);
    stdio(run, STDIO_PREAD, fd, at, len, offset)
}

/// pwrite on a run's stdio, as [`pread_stdio`]: bytes written or -errno.
pub fn pwrite_stdio(run: u32, fd: u32, data: &[u8], offset: u64) -> i64 {
    let (at, len) = (virt_to_phys(data.as_ptr() as u64), data.len() as u64);
    stdio(run, STDIO_PWRITE, fd, at, len, offset)
}

pub fn ioctl(run: u32, fd: u32, request: u64, buf: &mut [u8]) -> i64 {
    stdio(
        run,
        STDIO_IOCTL,
        fd,
        virt_to_phys(buf.as_mut_ptr() as u64),
        buf.len() as u64,
        request,
    )
}

pub fn stat(run: u32, fd: u32) -> Result<StdioStat, i64> {
    let mut st = StdioStat::default();
    let r = stdio(
        run,
        STDIO_STAT,
        fd,
        virt_to_phys(&mut st as *mut StdioStat as u64),
        core::mem::size_of::<StdioStat>() as u64,
        0,
    );
    if r < 0 {
        return Err(r);
    }
    // SAFETY: the VMM wrote it during the hypercall.
    Ok(unsafe { core::ptr::read_volatile(&st) })
}

/// Waits for a kick, stdin (if asked) or the timeout (0: none).
pub fn idle(timeout_ns: u64, stdin: bool) -> u32 {
    let i = Idle {
        timeout_ns,
        stdin: stdin as u32,
        woke: 0,
    };
    hypercall::out(PORT_IDLE, phys_of(&i) as u32);
    // SAFETY: the VMM wrote it during the hypercall.
    unsafe { core::ptr::read_volatile(&i.woke) }
}

pub fn kick(cpu: u32) {
    hypercall::out(PORT_KICK, cpu);
}

/// The program is over; lego-vmm exits. `path` names the program whose
/// function the VMM reports for a fault.
pub fn exit(e: ProgramExit, path: &[u8], missing: &[u8]) -> ! {
    let e = ProgramExit {
        path: virt_to_phys(path.as_ptr() as u64),
        path_len: path.len() as u64,
        missing: virt_to_phys(missing.as_ptr() as u64),
        missing_len: missing.len() as u64,
        ..e
    };
    hypercall::out(PORT_PROGRAM_EXIT, phys_of(&e) as u32);
    lego_image::cpu::halt_forever()
}
