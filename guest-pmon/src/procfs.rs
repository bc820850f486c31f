//! The files the monitor makes up for a process, as Linux's procfs and
//! sysfs would show them: /proc/self/maps (glibc's pthread_getattr_np
//! reads it to find the main thread's stack, and Rust's runtime through
//! it to tell a stack overflow from any other SIGSEGV) and the CPU lists
//! in /sys/devices/system/cpu (glibc's sysconf(_SC_NPROCESSORS_ONLN)),
//! which must count the processor's vCPUs, not the host's CPUs.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use lego_proto::memory::VmaEntry;

use crate::elf::Program;

/// Where a program's parts lie, to name its mappings as Linux does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// Each loaded segment's pages and the file offset of the first.
    pub segments: Vec<(u64, u64, u64)>,
    /// Where the program break started.
    pub heap_start: u64,
    /// The main thread's stack mapping.
    pub stack: (u64, u64),
    /// The vDSO's data page (the object is the page after it).
    pub vdso: Option<u64>,
    /// A dynamically linked program's loader: its segments as
    /// `segments`, and its path.
    pub loader: Vec<(u64, u64, u64)>,
    pub loader_name: Vec<u8>,
}

impl Layout {
    pub fn of(program: &Program, stack: (u64, u64)) -> Layout {
        Layout {
            segments: Self::pages_of(program),
            heap_start: program.brk,
            stack,
            vdso: None,
            loader: Vec::new(),
            loader_name: Vec::new(),
        }
    }

    /// Each segment's pages and the file offset of the first.
    pub fn pages_of(program: &Program) -> Vec<(u64, u64, u64)> {
        program
            .segments
            .iter()
            .map(|s| {
                let (start, end) = s.pages();
                (start, end, s.offset & !(crate::PAGE - 1))
            })
            .collect()
    }
}

/// The width Linux pads a maps line to before the name
/// (`25 + sizeof(void *) * 6 - 1`).
const NAME_COLUMN: usize = 72;

/// /proc/self/maps: one line per mapping, named after the program for
/// its segments, `[heap]` for the break's and `[stack]` for the main
/// thread's stack. `brk` is the break in force. Mappings meeting a range
/// of `shared` are shared (`s`, with the range's name if it has one:
/// `/dev/zero (deleted)` for shared anonymous memory, as Linux names its
/// shmem object); the rest is private
/// (device 00:00, inode 0: the program's pages are copies, not the host's
/// file).
pub fn maps(
    vmas: &[VmaEntry],
    layout: &Layout,
    brk: u64,
    exe: &[u8],
    shared: &[(u64, u64, Option<Vec<u8>>)],
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut line = alloc::string::String::new();
    for v in vmas {
        line.clear();
        let name: Option<&[u8]>;
        let mut offset = 0;
        let within = |segs: &[(u64, u64, u64)]| {
            segs.iter()
                .find(|&&(s, e, _)| v.start < e && s < v.end)
                .map(|&(s, _, off)| off + v.start.saturating_sub(s))
        };
        if let Some(off) = within(&layout.segments) {
            name = Some(exe);
            offset = off;
        } else if let Some(off) = within(&layout.loader) {
            name = Some(&layout.loader_name);
            offset = off;
        } else if v.start >= layout.heap_start && v.start < brk.max(layout.heap_start + 1) {
            name = Some(b"[heap]");
        } else if v.start < layout.stack.1 && layout.stack.0 < v.end {
            name = Some(b"[stack]");
        } else if layout.vdso == Some(v.start) {
            name = Some(b"[vvar]");
        } else if layout.vdso.map(|a| a + crate::PAGE) == Some(v.start) {
            name = Some(b"[vdso]");
        } else {
            name = None;
        }
        let hit = shared.iter().find(|(s, e, _)| v.start < *e && *s < v.end);
        let is_shared = hit.is_some();
        let name = match name {
            None => hit.and_then(|h| h.2.as_deref()),
            n => n,
        };
        let bit = |b: u32, c: char| if v.prot & b != 0 { c } else { '-' };
        let _ = write!(
            line,
            "{:08x}-{:08x} {}{}{}{} {:08x} 00:00 0 ",
            v.start,
            v.end,
            bit(1, 'r'),
            bit(2, 'w'),
            bit(4, 'x'),
            if is_shared { 's' } else { 'p' },
            offset
        );
        out.extend_from_slice(line.as_bytes());
        if let Some(name) = name {
            out.resize(out.len() + NAME_COLUMN.saturating_sub(line.len()), b' ');
            // Linux's seq_pad puts one more space after the padding (and
            // there is none left when the line is already wider).
            if line.len() < NAME_COLUMN {
                out.push(b' ');
            }
            out.extend_from_slice(name);
        }
        out.push(b'\n');
    }
    out
}

/// /proc/PID/smaps from the lines of its maps (as [`maps`] writes them):
/// each mapping with Linux's fields. `locked(start, end)` gives the bytes
/// of a range that are locked. Decided: as VmRSS, a page counts as
/// resident only when locked (what is not locked lives at the memory
/// component, the ExCache holding a share of it); so Rss is the locked
/// part and Locked never exceeds it, as on Linux. With `rollup`,
/// /proc/PID/smaps_rollup: one `[rollup]` entry with the sums.
pub fn smaps(maps: &[u8], locked: impl Fn(u64, u64) -> u64, rollup: bool) -> Vec<u8> {
    let mut out = alloc::string::String::new();
    let (mut first, mut last, mut total_locked) = (None, 0u64, 0u64);
    for line in maps.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let text = alloc::string::String::from_utf8_lossy(line);
        let mut cols = text.split_whitespace();
        let (Some(range), Some(perms)) = (cols.next(), cols.next()) else {
            continue;
        };
        let Some((s, e)) = range.split_once('-') else {
            continue;
        };
        // Only lines `maps` wrote start so (a name with a newline in it
        // may fake one, so a range that runs backwards is passed over).
        let (Ok(start), Ok(end)) = (u64::from_str_radix(s, 16), u64::from_str_radix(e, 16)) else {
            continue;
        };
        if end <= start {
            continue;
        }
        let held = locked(start, end);
        first.get_or_insert(start);
        last = end;
        total_locked += held;
        if rollup {
            continue;
        }
        let kb = |b: u64| b / 1024;
        let _ = writeln!(out, "{text}");
        let _ = write!(
            out,
            "Size:           {:8} kB\nKernelPageSize:        4 kB\nMMUPageSize:           4 kB\n",
            kb(end - start)
        );
        smaps_fields(&mut out, held);
        let _ = writeln!(out, "THPeligible:    0");
        // VmFlags: rd wr ex sh, may-read/write/exec (as mprotect could
        // give), and the main stack's gd; ac for the accountable ones.
        let p = perms.as_bytes();
        let mut flags = alloc::string::String::new();
        for (i, f) in [(0, "rd"), (1, "wr"), (2, "ex")] {
            if p.get(i).is_some_and(|&c| c != b'-') {
                let _ = write!(flags, "{f} ");
            }
        }
        if p.get(3) == Some(&b's') {
            flags.push_str("sh ");
        }
        flags.push_str("mr mw me ");
        if text.ends_with("[stack]") {
            flags.push_str("gd ");
        }
        if held > 0 {
            flags.push_str("lo ");
        }
        if p.get(3) != Some(&b's') {
            flags.push_str("ac ");
        }
        let _ = writeln!(out, "VmFlags: {flags}");
    }
    if rollup {
        let (start, end) = (first.unwrap_or(0), last);
        let _ = writeln!(
            out,
            "{start:08x}-{end:08x} ---p 00000000 00:00 0                          [rollup]"
        );
        smaps_fields(&mut out, total_locked);
    }
    out.into_bytes()
}

/// The memory fields of an smaps entry with `locked` bytes resident (and
/// locked) and nothing else.
fn smaps_fields(out: &mut alloc::string::String, locked: u64) {
    let kb = locked / 1024;
    for (name, v) in [
        ("Rss", kb),
        ("Pss", kb),
        ("Pss_Dirty", kb),
        ("Shared_Clean", 0),
        ("Shared_Dirty", 0),
        ("Private_Clean", 0),
        ("Private_Dirty", kb),
        ("Referenced", kb),
        ("Anonymous", kb),
        ("KSM", 0),
        ("LazyFree", 0),
        ("AnonHugePages", 0),
        ("ShmemPmdMapped", 0),
        ("FilePmdMapped", 0),
        ("Shared_Hugetlb", 0),
        ("Private_Hugetlb", 0),
        ("Swap", 0),
        ("SwapPss", 0),
        ("Locked", kb),
    ] {
        let _ = writeln!(out, "{:<16}{v:8} kB", alloc::format!("{name}:"));
    }
}

/// /proc/meminfo for a process whose memory is `total` bytes at its home
/// memory component, `free` of them unused: what `free`, `top` and
/// runtimes sizing their heaps read. No swap, no page cache (the ExCache
/// is not the program's memory).
pub fn meminfo(total: u64, free: u64) -> Vec<u8> {
    let kib = |b: u64| b / 1024;
    let mut out = alloc::string::String::new();
    for (name, v) in [
        ("MemTotal", kib(total)),
        ("MemFree", kib(free)),
        ("MemAvailable", kib(free)),
        ("Buffers", 0),
        ("Cached", 0),
        ("SwapCached", 0),
        ("SwapTotal", 0),
        ("SwapFree", 0),
        ("Shmem", 0),
        ("SReclaimable", 0),
    ] {
        let _ = writeln!(out, "{:<16}{:>8} kB", alloc::format!("{name}:"), v);
    }
    out.into_bytes()
}

/// /proc/cpuinfo as the processor's `cpus` vCPUs see it: the host's
/// text, keeping the first `cpus` processor blocks (scripts count the
/// "processor" lines: `make -j$(grep -c ^processor /proc/cpuinfo)`).
pub fn cpuinfo(host: &[u8], cpus: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut kept = 0;
    for block in host
        .split_inclusive(|&c| c == b'\n')
        .collect::<Vec<_>>()
        .split(|l| *l == b"\n")
    {
        if block.is_empty() {
            continue;
        }
        if kept == cpus {
            break;
        }
        for line in block {
            out.extend_from_slice(line);
        }
        out.push(b'\n');
        kept += 1;
    }
    out
}

/// /proc/uptime: seconds since boot and the vCPUs' idle seconds summed,
/// two decimals each, as Linux writes it.
pub fn uptime(up_ns: u64, idle_ns: u64) -> Vec<u8> {
    let cs = |ns: u64| {
        let c = ns / 10_000_000;
        alloc::format!("{}.{:02}", c / 100, c % 100)
    };
    alloc::format!("{} {}\n", cs(up_ns), cs(idle_ns)).into_bytes()
}

/// One vCPU's times for /proc/stat, in ns since boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// Running user code.
    pub user_ns: u64,
    /// Waiting in the VMM for work.
    pub idle_ns: u64,
    /// Since boot: what is neither is the monitor's (system time).
    pub up_ns: u64,
}

/// What /proc/stat says beyond the vCPUs' times.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatCounts {
    /// The boot's wall-clock second, which with a process's start time
    /// (ticks since that boot) gives when it started.
    pub btime: u64,
    /// Context switches since boot.
    pub ctxt: u64,
    /// Processes and threads made since boot (Linux's `processes`).
    pub forks: u64,
    /// Threads runnable or running now.
    pub running: u64,
}

/// /proc/stat: the processor's own, one `cpuN` line per vCPU as
/// /proc/cpuinfo and sysconf count them (libuv's `os.cpus()`, psutil and
/// `top` count the lines), in USER_HZ ticks; user time is what its
/// threads ran, idle what its vCPUs waited, the rest system. The monitor
/// keeps no interrupt, soft-interrupt or I/O-wait counts: those are 0.
pub fn stat_file(cpus: &[CpuTimes], c: &StatCounts) -> Vec<u8> {
    let ticks = |ns: u64| ns / 10_000_000;
    let line = |out: &mut String, name: &str, user: u64, idle: u64, up: u64| {
        let system = up.saturating_sub(user).saturating_sub(idle);
        let _ = writeln!(
            out,
            "{name} {} 0 {} {} 0 0 0 0 0 0",
            ticks(user),
            ticks(system),
            ticks(idle)
        );
    };
    let mut out = String::new();
    let sum = |f: fn(&CpuTimes) -> u64| cpus.iter().map(f).sum::<u64>();
    line(
        &mut out,
        "cpu ",
        sum(|t| t.user_ns),
        sum(|t| t.idle_ns),
        sum(|t| t.up_ns),
    );
    for (i, t) in cpus.iter().enumerate() {
        line(
            &mut out,
            &alloc::format!("cpu{i}"),
            t.user_ns,
            t.idle_ns,
            t.up_ns,
        );
    }
    let _ = write!(
        out,
        "intr 0\nctxt {}\nbtime {}\nprocesses {}\nprocs_running {}\nprocs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n",
        c.ctxt, c.btime, c.forks, c.running
    );
    out.into_bytes()
}

/// The load average, as Linux keeps it: every 5 s each of the 1, 5 and
/// 15 minute averages moves toward the number of threads running or
/// runnable, in fixed point with 11 fraction bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadAvg {
    avg: [u64; 3],
    /// When the next sample is due, in ns since boot.
    next_ns: u64,
}

const FSHIFT: u32 = 11;
const FIXED_1: u64 = 1 << FSHIFT;
/// 1/exp(5 s / 1 min), 1/exp(5 s / 5 min), 1/exp(5 s / 15 min), fixed point.
const LOAD_EXP: [u64; 3] = [1884, 2014, 2037];
const LOAD_PERIOD_NS: u64 = 5_000_000_000;

impl LoadAvg {
    /// Whether a sample is due at `now_ns` (the caller then counts the
    /// threads running and calls [`LoadAvg::sample`]).
    pub fn due(&self, now_ns: u64) -> bool {
        now_ns >= self.next_ns
    }

    /// Takes the samples due up to `now_ns`, each seeing `active` threads
    /// (the count since the last one: callers sample at every scheduling
    /// decision, so it held).
    pub fn sample(&mut self, now_ns: u64, active: u64) {
        if self.next_ns == 0 {
            self.next_ns = LOAD_PERIOD_NS;
        }
        let mut due = 0u64;
        while now_ns >= self.next_ns && due < 1000 {
            due += 1;
            self.next_ns += LOAD_PERIOD_NS;
        }
        if now_ns >= self.next_ns {
            // Over an hour and a half without a sample: every average has
            // settled on the count.
            self.next_ns = now_ns - now_ns % LOAD_PERIOD_NS + LOAD_PERIOD_NS;
        }
        let active = active * FIXED_1;
        for _ in 0..due {
            for (avg, exp) in self.avg.iter_mut().zip(LOAD_EXP) {
                let mut new = *avg * exp + active * (FIXED_1 - exp);
                if active >= *avg {
                    new += FIXED_1 - 1;
                }
                *avg = new / FIXED_1;
            }
        }
    }

    /// The three averages as sysinfo's `loads` give them (16 fraction bits).
    pub fn loads(&self) -> [u64; 3] {
        self.avg.map(|a| a << (16 - FSHIFT))
    }

    /// /proc/loadavg: the averages to two decimals, the threads running
    /// now over all threads, and the last id given.
    pub fn text(&self, running: u64, threads: u64, last_id: u32) -> Vec<u8> {
        let mut out = String::new();
        for a in self.avg {
            // Linux rounds to the nearest hundredth.
            let a = a + FIXED_1 / 200;
            let _ = write!(
                out,
                "{}.{:02} ",
                a >> FSHIFT,
                ((a & (FIXED_1 - 1)) * 100) >> FSHIFT
            );
        }
        let _ = writeln!(out, "{running}/{threads} {last_id}");
        out.into_bytes()
    }
}

/// /proc/mounts (and /proc/self/mounts): the host's mount table, with
/// /tmp and /dev/shm the processor's tmpfs in place of whatever the host
/// has there.
/// With a storage component (`storage`), its file system is `/`, and of
/// the host's mounts only those under /dev, /proc and /sys still show
/// (every other path is storage's), so `df` names what a program writes
/// to. The host's mounts say `ro`, as statfs does: Lego serves the host's
/// files read-only (a program looking for a writable tmpfs or disk in the
/// table, as stress-ng does, would otherwise pick one and get EROFS).
pub fn mounts(host: &[u8], storage: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if storage {
        out.extend_from_slice(b"lego-storage / legofs rw,relatime 0 0\n");
    }
    // /dev/shm is a directory of the same tmpfs: `df` finds a path's
    // mount by its device, and the first line of it names /tmp.
    out.extend_from_slice(TMPFS_LINE);
    let within = |at: &[u8], dir: &[u8]| {
        at.strip_prefix(dir)
            .is_some_and(|rest| rest.is_empty() || rest[0] == b'/')
    };
    for line in host.split_inclusive(|&c| c == b'\n') {
        let at = line.split(|&c| c == b' ').nth(1).unwrap_or_default();
        if within(at, b"/tmp") || within(at, b"/dev/shm") {
            continue;
        }
        if storage
            && ![&b"/dev"[..], b"/proc", b"/sys"]
                .iter()
                .any(|d| within(at, d))
        {
            continue;
        }
        out.extend_from_slice(&read_only(line));
        if out.last() != Some(&b'\n') {
            out.push(b'\n');
        }
    }
    out.extend_from_slice(b"tmpfs /dev/shm tmpfs rw,nosuid,nodev,relatime 0 0\n");
    out
}

/// A mount table line with its `rw` option made `ro`.
fn read_only(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    for (i, field) in line.split(|&c| c == b' ').enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        if i != 3 {
            out.extend_from_slice(field);
            continue;
        }
        for (j, opt) in field.split(|&c| c == b',').enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.extend_from_slice(if opt == b"rw" { b"ro" } else { opt });
        }
    }
    out
}

/// /proc/self/mountinfo made from the lines of [`mounts`]: one line per
/// mount, numbered from 20 in order, each the child of the first (the
/// root), with the device number `dev` gives for its mount point (what
/// stat says there, so tools that match a file to its mount by device,
/// df and libmount, find the right line), as libmount and
/// container-aware runtimes read it.
pub fn mountinfo(mounts: &[u8], dev: impl Fn(&[u8]) -> u64) -> Vec<u8> {
    let mut out = String::new();
    let (lines, order) = mount_order(mounts);
    let root = order.first().copied().filter(|&i| lines[i][1] == b"/");
    for (n, &i) in order.iter().enumerate() {
        let f = &lines[i];
        let (source, at, fstype, opts) = (f[0], f[1], f[2], f[3]);
        let id = 20 + n;
        let parent = if Some(i) == root || root.is_none() {
            1
        } else {
            20
        };
        // Per-mount flags first, the file system's own after the dash.
        let mount_opts: Vec<&[u8]> = opts
            .split(|&c| c == b',')
            .filter(|o| {
                [
                    &b"rw"[..],
                    b"ro",
                    b"nosuid",
                    b"nodev",
                    b"noexec",
                    b"relatime",
                    b"noatime",
                ]
                .contains(o)
            })
            .collect();
        // Linux's split of a device number into major and minor.
        let d = dev(at);
        let (major, minor) = (
            ((d >> 8) & 0xfff) | ((d >> 32) & !0xfff),
            (d & 0xff) | ((d >> 12) & !0xff),
        );
        let _ = writeln!(
            out,
            "{id} {parent} {major}:{minor} / {} {} - {} {} {}",
            String::from_utf8_lossy(at),
            String::from_utf8_lossy(&mount_opts.join(&b","[..])),
            String::from_utf8_lossy(fstype),
            String::from_utf8_lossy(source),
            String::from_utf8_lossy(opts),
        );
    }
    out.into_bytes()
}

/// The fields of each line of [`mounts`], and the order mountinfo
/// numbers them in: the root's mount first (its parent is outside); the
/// others are its children.
fn mount_order(mounts: &[u8]) -> (Vec<Vec<&[u8]>>, Vec<usize>) {
    let lines: Vec<Vec<&[u8]>> = mounts
        .split(|&c| c == b'\n')
        .map(|l| l.split(|&c| c == b' ').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    let root = lines.iter().position(|f| f[1] == b"/");
    let order = root
        .into_iter()
        .chain((0..lines.len()).filter(|&i| Some(i) != root))
        .collect();
    (lines, order)
}

/// The mount id [`mountinfo`] gives the mount that holds absolute path
/// `path` (the deepest mount point above it); 0 for none.
pub fn mount_id(mounts: &[u8], path: &[u8]) -> u64 {
    let (lines, order) = mount_order(mounts);
    order
        .iter()
        .enumerate()
        .filter(|&(_, &i)| {
            let at = lines[i][1];
            at == b"/" || crate::path::below(path, at).is_some()
        })
        .max_by_key(|&(_, &i)| lines[i][1].len())
        .map_or(0, |(n, _)| 20 + n as u64)
}

/// /proc/PID/fdinfo/N: where the open file is, its status flags (with
/// O_CLOEXEC for a descriptor closed at exec), its mount and inode, in
/// Linux's layout.
pub fn fdinfo(pos: u64, flags: u32, mnt_id: u64, ino: u64) -> Vec<u8> {
    alloc::format!("pos:\t{pos}\nflags:\t0{flags:o}\nmnt_id:\t{mnt_id}\nino:\t{ino}\n").into_bytes()
}

/// /proc/PID/limits: each resource's soft and hard limit, in Linux's
/// layout (`rlimits` by resource number; u64::MAX is unlimited).
pub fn limits(rlimits: &[(u64, u64); 16]) -> Vec<u8> {
    const ROWS: [(&str, &str); 16] = [
        ("Max cpu time", "seconds"),
        ("Max file size", "bytes"),
        ("Max data size", "bytes"),
        ("Max stack size", "bytes"),
        ("Max core file size", "bytes"),
        ("Max resident set", "bytes"),
        ("Max processes", "processes"),
        ("Max open files", "files"),
        ("Max locked memory", "bytes"),
        ("Max address space", "bytes"),
        ("Max file locks", "locks"),
        ("Max pending signals", "signals"),
        ("Max msgqueue size", "bytes"),
        ("Max nice priority", ""),
        ("Max realtime priority", ""),
        ("Max realtime timeout", "us"),
    ];
    let mut out = alloc::format!(
        "{:<25} {:<20} {:<20} {:<10}\n",
        "Limit",
        "Soft Limit",
        "Hard Limit",
        "Units"
    );
    let shown = |v: u64| {
        if v == u64::MAX {
            String::from("unlimited")
        } else {
            alloc::format!("{v}")
        }
    };
    for ((name, unit), &(soft, hard)) in ROWS.iter().zip(rlimits.iter()) {
        let _ = write!(out, "{:<25} {:<20} {:<20} ", name, shown(soft), shown(hard));
        // A row without units ends there, as Linux's.
        if !unit.is_empty() {
            let _ = write!(out, "{unit:<10}");
        }
        out.push('\n');
    }
    out.into_bytes()
}

/// /proc/PID/statm: sizes in pages (size, resident, shared, text, lib,
/// data, dirty). The monitor keeps only the mapped size, which counts as
/// data; resident is the locked part, as status's VmRSS (the rest lives
/// at the memory component).
pub fn statm(vsize: u64, locked: u64) -> Vec<u8> {
    let pages = vsize / 4096;
    let resident = locked / 4096;
    alloc::format!("{pages} {resident} 0 0 0 {pages} 0\n").into_bytes()
}

const TMPFS_LINE: &[u8] = b"tmpfs /tmp tmpfs rw,nosuid,nodev,relatime 0 0\n";

/// The text of /sys/devices/system/cpu/{online,possible,present} for
/// `n` CPUs: `0` or `0-N`.
pub fn cpu_list(n: u32) -> Vec<u8> {
    if n <= 1 {
        b"0\n".to_vec()
    } else {
        alloc::format!("0-{}\n", n - 1).into_bytes()
    }
}

/// What /proc/PID/stat and /proc/PID/status say of a process (times in
/// clock ticks of 1/100 s, Linux's USER_HZ).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: u32,
    /// The thread it describes: /proc/PID/task/TID's (the process's own
    /// files describe its first thread, whose id is the pid).
    pub tid: u32,
    pub ppid: u32,
    pub pgid: u32,
    pub sid: u32,
    /// 'R' running or runnable, 'S' sleeping, 'Z' a zombie.
    pub state: u8,
    /// Its name (comm: 15 bytes at most).
    pub comm: Vec<u8>,
    pub threads: u32,
    /// User and system time in ticks, its own and its waited-for
    /// children's.
    pub utime: u64,
    pub stime: u64,
    pub cutime: u64,
    pub cstime: u64,
    /// Since boot.
    pub start: u64,
    pub vsize: u64,
    /// Bytes locked (VmLck).
    pub locked: u64,
    /// Its first thread's seccomp mode and number of filters.
    pub seccomp: (u8, usize),
    pub umask: u32,
    pub pending: u64,
    pub shared_pending: u64,
    pub blocked: u64,
    pub ignored: u64,
    pub caught: u64,
    pub fds: u32,
    /// Its supplementary groups.
    pub groups: Vec<u32>,
    /// Its user and group ids.
    pub cred: crate::cred::Cred,
    /// The CPUs its first thread may run on, one bit each.
    pub cpus_allowed: u64,
    /// prctl(PR_SET_NO_NEW_PRIVS) was called.
    pub no_new_privs: bool,
}

fn state_name(state: u8) -> &'static str {
    match state {
        b'R' => "R (running)",
        b'Z' => "Z (zombie)",
        b'T' => "T (stopped)",
        _ => "S (sleeping)",
    }
}

/// /proc/PID/stat: Linux's 52 fields (`fs/proc/array.c`); what the
/// processor does not keep (faults, addresses, kernel stack) is 0, as
/// Linux shows it to another user.
pub fn stat(p: &ProcInfo) -> Vec<u8> {
    let mut out = alloc::string::String::new();
    let comm = alloc::string::String::from_utf8_lossy(&p.comm);
    let _ = write!(
        out,
        "{} ({}) {} {} {} {} 0 -1 4194560 0 0 0 0 {} {} {} {} 20 0 {} 0 {} {} 0 18446744073709551615",
        p.tid,
        comm,
        p.state as char,
        p.ppid,
        p.pgid,
        p.sid,
        p.utime,
        p.stime,
        p.cutime,
        p.cstime,
        p.threads,
        p.start,
        p.vsize,
    );
    // startcode, endcode, startstack, kstkesp, kstkeip.
    out.push_str(" 0 0 0 0 0");
    let _ = write!(
        out,
        " {} {} {} {}",
        (p.pending | p.shared_pending) as u32,
        p.blocked as u32,
        p.ignored as u32,
        p.caught as u32
    );
    // wchan, nswap, cnswap, exit_signal, processor, rt_priority, policy,
    // blkio ticks, guest times, data, brk, args, env, exit code.
    out.push_str(" 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n");
    out.into_bytes()
}

/// /proc/PID/status: every line Linux 6.x gives, in its order. One
/// namespace of each kind (the NS ids are the ids); memory the processor
/// does not hold apart (data, stack and the like) is 0 kB; resident
/// (VmRSS, VmHWM, RssAnon) is what is locked (see [`smaps`]); no
/// speculation control.
pub fn status(p: &ProcInfo) -> Vec<u8> {
    let mut out = alloc::string::String::new();
    let groups: Vec<alloc::string::String> =
        p.groups.iter().map(|g| alloc::format!("{g} ")).collect();
    let groups = groups.concat();
    let comm = alloc::string::String::from_utf8_lossy(&p.comm);
    let (u, g) = (p.cred.uid, p.cred.gid);
    let caps = p.cred.caps;
    let _ = write!(
        out,
        "Name:\t{comm}\nUmask:\t{:04o}\nState:\t{}\nTgid:\t{}\nNgid:\t0\nPid:\t{}\nPPid:\t{}\n\
         TracerPid:\t0\nUid:\t{}\t{}\t{}\t{}\nGid:\t{}\t{}\t{}\t{}\nFDSize:\t{}\nGroups:\t{}\n\
         NStgid:\t{}\nNSpid:\t{}\nNSpgid:\t{}\nNSsid:\t{}\nKthread:\t0\n\
         VmPeak:\t{:8} kB\nVmSize:\t{:8} kB\nVmLck:\t{:8} kB\nVmPin:\t       0 kB\n\
         VmHWM:\t{:8} kB\nVmRSS:\t{:8} kB\nRssAnon:\t{:8} kB\nRssFile:\t       0 kB\n\
         RssShmem:\t       0 kB\nVmData:\t       0 kB\nVmStk:\t       0 kB\nVmExe:\t       0 kB\n\
         VmLib:\t       0 kB\nVmPTE:\t       0 kB\nVmSwap:\t       0 kB\nHugetlbPages:\t       0 kB\n\
         CoreDumping:\t0\nTHP_enabled:\t1\nuntag_mask:\t0xffffffffffffffff\nThreads:\t{}\n\
         SigQ:\t0/{}\nSigPnd:\t{:016x}\nShdPnd:\t{:016x}\nSigBlk:\t{:016x}\nSigIgn:\t{:016x}\n\
         SigCgt:\t{:016x}\nCapInh:\t{:016x}\nCapPrm:\t{:016x}\n\
         CapEff:\t{:016x}\nCapBnd:\t{:016x}\nCapAmb:\t{:016x}\nNoNewPrivs:\t{}\n\
         Seccomp:\t{}\nSeccomp_filters:\t{}\nSpeculation_Store_Bypass:\tunknown\n\
         SpeculationIndirectBranch:\tunsupported\nCpus_allowed:\t{:x}\nCpus_allowed_list:\t{}\n\
         Mems_allowed:\t1\nMems_allowed_list:\t0\n\
         voluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n",
        p.umask,
        state_name(p.state),
        p.pid,
        p.tid,
        p.ppid,
        u.real,
        u.effective,
        u.saved,
        u.fs,
        g.real,
        g.effective,
        g.saved,
        g.fs,
        p.fds.next_multiple_of(64).max(64),
        groups,
        p.pid,
        p.tid,
        p.pgid,
        p.sid,
        p.vsize / 1024,
        p.vsize / 1024,
        p.locked / 1024,
        p.locked / 1024,
        p.locked / 1024,
        p.locked / 1024,
        p.threads,
        u16::MAX,
        p.pending,
        p.shared_pending,
        p.blocked,
        p.ignored,
        p.caught,
        caps.inheritable,
        caps.permitted,
        caps.effective,
        caps.bounding,
        caps.ambient,
        p.no_new_privs as u8,
        p.seccomp.0,
        p.seccomp.1,
        p.cpus_allowed,
        cpu_list_of(p.cpus_allowed),
    );
    out.into_bytes()
}

/// A CPU set as Linux lists it: ranges, "0-1,3".
fn cpu_list_of(mask: u64) -> alloc::string::String {
    let mut out = alloc::string::String::new();
    let mut cpu = 0;
    while cpu < 64 {
        if mask & (1 << cpu) == 0 {
            cpu += 1;
            continue;
        }
        let first = cpu;
        while cpu < 64 && mask & (1 << cpu) != 0 {
            cpu += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        let _ = match cpu - 1 - first {
            0 => write!(out, "{first}"),
            _ => write!(out, "{first}-{}", cpu - 1),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vma(start: u64, end: u64, prot: u32) -> VmaEntry {
        VmaEntry {
            start,
            end,
            prot,
            _pad: 0,
        }
    }

    #[test]
    fn smaps_gives_each_mapping_linuxs_fields_and_the_rollup_sums() {
        let maps = b"00400000-00402000 r-xp 00000000 00:00 0                          /bin/x\n\
7ffff000-80001000 rw-p 00000000 00:00 0                          [stack]\n";
        let locked = |s: u64, e: u64| if s == 0x7fff_f000 { (e - s) / 2 } else { 0 };
        let text = alloc::string::String::from_utf8(smaps(maps, locked, false)).unwrap();
        let entries: Vec<&str> = text.split("VmFlags").collect();
        assert_eq!(entries.len(), 3, "{text}");
        assert!(text.starts_with("00400000-00402000 r-xp 00000000 00:00 0"));
        assert!(entries[0].contains("\nSize:                  8 kB\nKernelPageSize:        4 kB\n"));
        assert!(entries[0].contains("\nRss:                   0 kB\n"));
        assert!(
            entries[1].contains(": rd ex mr mw me ac \n7ffff000-80001000"),
            "{text}"
        );
        assert!(
            entries[1].contains("\nRss:                   4 kB\n"),
            "{text}"
        );
        assert!(entries[1].contains("\nLocked:                4 kB\nTHPeligible:    0\n"));
        assert!(
            entries[2].starts_with(": rd wr mr mw me gd lo ac \n"),
            "{text}"
        );
        let rollup = alloc::string::String::from_utf8(smaps(maps, locked, true)).unwrap();
        assert!(
            rollup.starts_with("00400000-80001000 ---p 00000000 00:00 0 "),
            "{rollup}"
        );
        assert!(
            rollup.contains("[rollup]\nRss:                   4 kB\n")
                && rollup.contains("\nLocked:                4 kB\n")
        );
        assert!(!rollup.contains("VmFlags") && !rollup.contains("Size:"));
    }

    #[test]
    fn maps_lines_read_as_linux_writes_them() {
        let layout = Layout {
            segments: vec![
                (0x400000, 0x401000, 0),
                (0x401000, 0x498000, 0x1000),
                (0x4c5000, 0x4cc000, 0xc4000),
            ],
            heap_start: 0x4cc000,
            stack: (0x3ff_ff7f_f000, 0x3ff_ffff_f000),
            vdso: Some(0x3ff_f00f_e000),
            loader: vec![(0x2_0000_0000, 0x2_0000_2000, 0x1000)],
            loader_name: b"/lib64/ld.so".to_vec(),
        };
        let vmas = [
            vma(0x400000, 0x401000, 1),
            vma(0x401000, 0x498000, 5),
            vma(0x4c5000, 0x4cc000, 3),
            vma(0x4cc000, 0x4ef000, 3),
            vma(0x1_0000_0000, 0x1_0002_1000, 3),
            vma(0x3ff_ff7f_f000, 0x3ff_ffff_f000, 3),
            vma(0x3ff_f00f_e000, 0x3ff_f00f_f000, 1),
            vma(0x3ff_f00f_f000, 0x3ff_f010_0000, 5),
            vma(0x2_0000_1000, 0x2_0000_2000, 5),
        ];
        let text = maps(&vmas, &layout, 0x4ef000, b"/usr/bin/prog", &[]);
        let text = core::str::from_utf8(&text).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 9);
        // The loader's second page: its name, and its offset in the file.
        assert!(lines[8].starts_with("200001000-200002000 r-xp 00002000 "));
        assert!(lines[8].ends_with(" /lib64/ld.so"));
        assert!(lines[6].ends_with(" [vvar]") && lines[7].ends_with(" [vdso]"));
        assert_eq!(
            lines[0],
            "00400000-00401000 r--p 00000000 00:00 0                                  /usr/bin/prog"
        );
        assert_eq!(lines[0].find('/'), Some(NAME_COLUMN + 1));
        assert!(lines[1].starts_with("00401000-00498000 r-xp 00001000 00:00 0 "));
        assert!(lines[2].starts_with("004c5000-004cc000 rw-p 000c4000 "));
        assert!(lines[3].ends_with(" [heap]"));
        // An anonymous mapping has no name, and a space before the newline.
        assert_eq!(lines[4], "100000000-100021000 rw-p 00000000 00:00 0 ");
        assert!(lines[5].starts_with("3ffff7ff000-3fffffff000 rw-p"));
        assert!(lines[5].ends_with(" [stack]"));
        // glibc's pthread_getattr_np parses each line with "%lx-%lx".
        for l in &lines {
            let (a, rest) = l.split_once('-').unwrap();
            let b = rest.split(' ').next().unwrap();
            assert!(u64::from_str_radix(a, 16).unwrap() < u64::from_str_radix(b, 16).unwrap());
        }
    }

    #[test]
    fn shared_anonymous_memory_reads_as_linux_names_it() {
        let text = maps(
            &[vma(0x600000, 0x602000, 3), vma(0x700000, 0x701000, 3)],
            &Layout::default(),
            0,
            b"/p",
            &[
                (0x601000, 0x602000, Some(b"/dev/zero (deleted)".to_vec())),
                (0x700000, 0x701000, None),
            ],
        );
        let text = core::str::from_utf8(&text).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("00600000-00602000 rw-s 00000000 00:00 0 "));
        assert!(lines[0].ends_with(" /dev/zero (deleted)"));
        assert_eq!(lines[1], "00700000-00701000 rw-s 00000000 00:00 0 ");
    }

    #[test]
    fn a_heap_not_grown_yet_is_not_named() {
        let layout = Layout {
            heap_start: 0x500000,
            ..Default::default()
        };
        let text = maps(&[vma(0x600000, 0x601000, 0)], &layout, 0x500000, b"/p", &[]);
        assert_eq!(text, b"00600000-00601000 ---p 00000000 00:00 0 \n");
    }

    #[test]
    fn meminfo_reads_as_linux_writes_it() {
        let text = meminfo(1 << 30, 256 << 20);
        let text = core::str::from_utf8(&text).unwrap();
        let first = text.lines().next().unwrap();
        assert_eq!(first, "MemTotal:        1048576 kB");
        assert!(text.contains("\nMemAvailable:     262144 kB\n"));
        assert!(text.contains("\nSwapTotal:             0 kB\n"));
    }

    #[test]
    fn uptime_and_boot_time_are_the_processors() {
        assert_eq!(uptime(3_456_789_000, 120_000_000), b"3.45 0.12\n");
        assert_eq!(uptime(0, 0), b"0.00 0.00\n");
        // Two vCPUs, one busy a second of its 4 (half of it user), one
        // idle all along but 10 ms.
        let cpus = [
            CpuTimes {
                user_ns: 500_000_000,
                idle_ns: 3_000_000_000,
                up_ns: 4_000_000_000,
            },
            CpuTimes {
                user_ns: 0,
                idle_ns: 3_990_000_000,
                up_ns: 4_000_000_000,
            },
        ];
        let counts = StatCounts {
            btime: 1800000123,
            ctxt: 77,
            forks: 9,
            running: 1,
        };
        let got = String::from_utf8(stat_file(&cpus, &counts)).unwrap();
        assert_eq!(
            got,
            "cpu  50 0 51 699 0 0 0 0 0 0\n\
             cpu0 50 0 50 300 0 0 0 0 0 0\n\
             cpu1 0 0 1 399 0 0 0 0 0 0\n\
             intr 0\nctxt 77\nbtime 1800000123\nprocesses 9\nprocs_running 1\n\
             procs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n"
        );
        // A clock read before the idle time was added never underflows.
        let odd = [CpuTimes {
            user_ns: 5,
            idle_ns: 9,
            up_ns: 3,
        }];
        assert!(String::from_utf8(stat_file(&odd, &counts))
            .unwrap()
            .starts_with("cpu  0 0 0 0 "));
    }

    #[test]
    fn load_average_moves_as_linuxs() {
        let mut l = LoadAvg::default();
        assert_eq!(l.text(1, 3, 42), b"0.00 0.00 0.00 1/3 42\n");
        assert!(l.due(0));
        l.sample(4_999_999_999, 1);
        assert_eq!(l.text(1, 3, 42), b"0.00 0.00 0.00 1/3 42\n");
        assert!(!l.due(4_999_999_999));
        // One busy thread for a minute: the 1-minute average reaches
        // 1 - 1/e, the others less.
        l.sample(60_000_000_000, 1);
        let t = String::from_utf8(l.text(1, 3, 42)).unwrap();
        assert!(t.starts_with("0.63 0.18 0.06 "), "{t}");
        // Idle for long: they fall back to zero, without a sample per period.
        l.sample(100_000_000_000_000, 0);
        assert_eq!(l.text(0, 1, 9), b"0.00 0.00 0.00 0/1 9\n");
        assert!(!l.due(100_000_000_000_000));
        // Two threads for hours: 2.00 each, and sysinfo's scale.
        l.sample(200_000_000_000_000, 2);
        assert_eq!(l.text(2, 2, 9), b"2.00 2.00 2.00 2/2 9\n");
        assert_eq!(l.loads(), [2 << 16; 3]);
    }

    #[test]
    fn cpuinfo_keeps_one_block_per_vcpu() {
        let host = b"processor\t: 0\nmodel\t: x\n\nprocessor\t: 1\nmodel\t: x\n\nprocessor\t: 2\nmodel\t: x\n\n";
        let two = cpuinfo(host, 2);
        let text = core::str::from_utf8(&two).unwrap();
        assert_eq!(text.matches("processor").count(), 2);
        assert!(text.starts_with("processor\t: 0\nmodel\t: x\n\nprocessor\t: 1\n"));
        assert!(text.ends_with("model\t: x\n\n"));
        assert_eq!(cpuinfo(host, 9).len(), host.len());
    }

    #[test]
    fn mountinfo_puts_the_root_first_and_the_rest_below_it() {
        let m = b"tmpfs /tmp tmpfs rw,nosuid 0 0\n/dev/vda / ext4 rw,relatime,errors=remount-ro 0 0\nproc /proc proc rw 0 0\n";
        let dev = |at: &[u8]| if at == b"/tmp" { 0xfa } else { (8 << 8) | 1 };
        let text = alloc::string::String::from_utf8(mountinfo(m, dev)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "20 1 8:1 / / rw,relatime - ext4 /dev/vda rw,relatime,errors=remount-ro",
                "21 20 0:250 / /tmp rw,nosuid - tmpfs tmpfs rw,nosuid",
                "22 20 8:1 / /proc rw - proc proc rw",
            ]
        );
    }

    #[test]
    fn limits_read_as_linuxs() {
        let mut r = [(u64::MAX, u64::MAX); 16];
        r[7] = (1024, 65536);
        let text = alloc::string::String::from_utf8(limits(&r)).unwrap();
        assert!(text.starts_with(
            "Limit                     Soft Limit           Hard Limit           Units     \n"
        ));
        assert!(text.contains(
            "\nMax open files            1024                 65536                files     \n"
        ));
        assert_eq!(text.lines().count(), 17);
    }

    #[test]
    fn mounts_show_the_tmpfs_at_tmp() {
        let host =
            b"/dev/vda / ext4 rw,relatime,errors=remount-ro 0 0\n/dev/vdb /tmp ext4 rw 0 0\n\
            proc /proc proc rw 0 0\ntmpfs /dev/shm tmpfs rw 0 0";
        let text = mounts(host, false);
        let text = core::str::from_utf8(&text).unwrap();
        assert_eq!(
            text,
            "tmpfs /tmp tmpfs rw,nosuid,nodev,relatime 0 0\n\
             /dev/vda / ext4 ro,relatime,errors=remount-ro 0 0\n\
             proc /proc proc ro 0 0\ntmpfs /dev/shm tmpfs rw,nosuid,nodev,relatime 0 0\n"
        );
    }

    #[test]
    fn with_storage_the_root_is_storage_and_the_hosts_other_mounts_go() {
        let host = b"/dev/vda / ext4 rw 0 0\n/dev/vdb /home ext4 rw 0 0\n\
            devpts /dev/pts devpts rw 0 0\nproc /proc proc rw 0 0\n/dev/vdc /tmpx ext4 rw 0 0\n\
            sysfs /sys sysfs rw 0 0";
        let text = mounts(host, true);
        let text = core::str::from_utf8(&text).unwrap();
        assert_eq!(
            text,
            "lego-storage / legofs rw,relatime 0 0\n\
             tmpfs /tmp tmpfs rw,nosuid,nodev,relatime 0 0\ndevpts /dev/pts devpts ro 0 0\n\
             proc /proc proc ro 0 0\nsysfs /sys sysfs ro 0 0\n\
             tmpfs /dev/shm tmpfs rw,nosuid,nodev,relatime 0 0\n"
        );
    }

    #[test]
    fn cpu_lists_count_the_vcpus() {
        assert_eq!(cpu_list(1), b"0\n");
        assert_eq!(cpu_list(4), b"0-3\n");
    }

    #[test]
    fn stat_and_status_read_as_linuxs() {
        let p = ProcInfo {
            pid: 7,
            tid: 7,
            ppid: 2,
            pgid: 7,
            sid: 2,
            state: b'S',
            comm: b"sleep".to_vec(),
            threads: 1,
            utime: 3,
            stime: 4,
            cutime: 5,
            cstime: 6,
            start: 120,
            vsize: 4 << 20,
            locked: 8192,
            umask: 0o22,
            blocked: 1 << 9,
            groups: alloc::vec![4, 27],
            cpus_allowed: 0b1011,
            ..Default::default()
        };
        let st = alloc::string::String::from_utf8(stat(&p)).unwrap();
        let fields: Vec<&str> = st.trim_end().split(' ').collect();
        assert_eq!(fields.len(), 52, "{st}");
        assert_eq!(&fields[..5], &["7", "(sleep)", "S", "2", "7"]);
        // utime, stime, cutime, cstime, num_threads, starttime, vsize,
        // blocked.
        assert_eq!(&fields[13..17], &["3", "4", "5", "6"]);
        assert_eq!(
            (fields[19], fields[21], fields[22], fields[31]),
            ("1", "120", "4194304", "512")
        );
        let status = alloc::string::String::from_utf8(status(&p)).unwrap();
        assert!(status.starts_with("Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\n"));
        assert!(status.contains("\nPPid:\t2\n"));
        assert!(status.contains("\nVmSize:\t    4096 kB\nVmLck:\t       8 kB\n"));
        assert!(status.contains("\nSigBlk:\t0000000000000200\n"));
        assert!(status.contains("\nUid:\t0\t0\t0\t0\n"));
        assert!(status.contains("\nCapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\n"));
        let mut nobody = p.clone();
        nobody.cred.change_uid(|u, p| u.set(65534, p)).unwrap();
        nobody.cred.gid.set_res(1, 2, 3, true).unwrap();
        let status = alloc::string::String::from_utf8(super::status(&nobody)).unwrap();
        assert!(status.contains("\nUid:\t65534\t65534\t65534\t65534\n"));
        assert!(status.contains("\nGid:\t1\t2\t3\t2\n"));
        assert!(status.contains("\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n"));
        assert!(status.contains("\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\n"));
        assert!(status.contains("\nGroups:\t4 27 \n"), "{status}");
        // A thread's: its own id first in stat, Pid in status, the
        // process's as Tgid.
        let thread = ProcInfo {
            tid: 9,
            ..p.clone()
        };
        let st = alloc::string::String::from_utf8(stat(&thread)).unwrap();
        assert!(st.starts_with("9 (sleep) S 2 7 "), "{st}");
        let status = alloc::string::String::from_utf8(super::status(&thread)).unwrap();
        assert!(
            status.contains("\nTgid:\t7\nNgid:\t0\nPid:\t9\n"),
            "{status}"
        );
        assert!(status.contains("\nCpus_allowed_list:\t0-1,3\n"), "{status}");
        assert!(status.contains("\nCpus_allowed:\tb\n"), "{status}");
        assert!(status.contains("\nNStgid:\t7\nNSpid:\t9\n"), "{status}");
        // Linux's fields, in its order.
        let keys: Vec<&str> = status.lines().filter_map(|l| l.split(':').next()).collect();
        let want = "Name Umask State Tgid Ngid Pid PPid TracerPid Uid Gid FDSize Groups NStgid \
            NSpid NSpgid NSsid Kthread VmPeak VmSize VmLck VmPin VmHWM VmRSS RssAnon RssFile \
            RssShmem VmData VmStk VmExe VmLib VmPTE VmSwap HugetlbPages CoreDumping THP_enabled \
            untag_mask Threads SigQ SigPnd ShdPnd SigBlk SigIgn SigCgt CapInh CapPrm CapEff \
            CapBnd CapAmb NoNewPrivs Seccomp Seccomp_filters Speculation_Store_Bypass \
            SpeculationIndirectBranch Cpus_allowed Cpus_allowed_list Mems_allowed \
            Mems_allowed_list voluntary_ctxt_switches nonvoluntary_ctxt_switches";
        assert_eq!(keys.join(" "), want);
    }
}
