//! The embedded rack on this machine: where its files are, how its
//! processes are started in the background and how they are stopped.
//!
//! Everything lives under `$LEGO_HOME/rack/`: `globals.addr` (how the
//! tool finds the managers), `rack.pids` (what `lego down` stops),
//! `ports` (each component's ports, reused by the next `lego up` so that a
//! component gets its old id back and the vNodes on a storage component
//! stay reachable), `logs/<name>.log`, the storage disks and the managers'
//! state.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The embedded rack's directory and files.
#[derive(Debug, Clone)]
pub struct Rack {
    pub dir: PathBuf,
}

/// Where Lego keeps its state: `$LEGO_HOME`, else `$XDG_STATE_HOME/lego`,
/// else `~/.local/state/lego`.
pub fn lego_home() -> Option<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("LEGO_HOME")
        .or_else(|| var("XDG_STATE_HOME").map(|d| d.join("lego")))
        .or_else(|| var("HOME").map(|h| h.join(".local/state/lego")))
}

impl Rack {
    pub fn at_home() -> Option<Rack> {
        lego_home().map(|h| Rack {
            dir: h.join("rack"),
        })
    }

    pub fn addr_file(&self) -> PathBuf {
        self.dir.join("globals.addr")
    }

    pub fn pids_file(&self) -> PathBuf {
        self.dir.join("rack.pids")
    }

    pub fn ports_file(&self) -> PathBuf {
        self.dir.join("ports")
    }

    pub fn log_file(&self, name: &str) -> PathBuf {
        self.dir.join("logs").join(format!("{name}.log"))
    }

    /// The components' shared-memory rings and doorbells.
    pub fn shm_dir(&self) -> PathBuf {
        self.dir.join("shm")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("globals")
    }

    pub fn disk(&self, n: u32) -> PathBuf {
        self.dir.join(format!("storage-{n}.img"))
    }

    /// The managers' address as `lego up` wrote it, if a rack was started.
    pub fn globals_addr(&self) -> Option<String> {
        let text = fs::read_to_string(self.addr_file()).ok()?;
        let addr = text.trim();
        (!addr.is_empty()).then(|| addr.to_string())
    }

    /// The processes `lego up` started: (pid, name).
    pub fn pids(&self) -> Vec<(u32, String)> {
        let text = fs::read_to_string(self.pids_file()).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let (pid, name) = line.trim().split_once(' ')?;
                Some((pid.parse().ok()?, name.trim().to_string()))
            })
            .collect()
    }

    /// Appends one started process to `rack.pids` at once, so that a
    /// `lego up` that dies half-way still leaves what `lego down` needs.
    pub fn add_pid(&self, pid: u32, name: &str) -> io::Result<()> {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.pids_file())?;
        writeln!(f, "{pid} {name}")
    }

    /// The ports each component used last time: name → ports.
    pub fn saved_ports(&self) -> Vec<(String, Vec<u16>)> {
        let text = fs::read_to_string(self.ports_file()).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                let name = words.next()?.to_string();
                let ports = words
                    .map(str::parse)
                    .collect::<Result<Vec<u16>, _>>()
                    .ok()?;
                Some((name, ports))
            })
            .collect()
    }

    pub fn save_ports(&self, ports: &[(String, Vec<u16>)]) -> io::Result<()> {
        let mut text = String::new();
        for (name, p) in ports {
            let list: Vec<String> = p.iter().map(u16::to_string).collect();
            text.push_str(&format!("{name} {}\n", list.join(" ")));
        }
        fs::write(self.ports_file(), text)
    }

    /// Forgets the running rack (its processes are gone).
    pub fn clear(&self) {
        let _ = fs::remove_file(self.addr_file());
        let _ = fs::remove_file(self.pids_file());
    }

    /// The last `lines` lines of a component's log.
    pub fn log_tail(&self, name: &str, lines: usize) -> String {
        let text = fs::read_to_string(self.log_file(name)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// A free loopback port: bound, read and released (another process could
/// take it in between; `lego up` then fails with that component's log).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether a loopback port can be bound now.
pub fn port_is_free(port: u16) -> bool {
    port != 0 && TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// The executable `name`: `$env_override` if set, else next to this
/// program (where `cargo build` puts all of Lego's), else on `PATH`.
pub fn find_exe(name: &str, env_override: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env_override).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(name)))
        .filter(|p| p.is_file());
    beside.or_else(|| {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    })
}

/// Starts `exe args` detached from the tool: a session of its own (so the
/// terminal's Ctrl-C and hang-up do not reach it), stdin from /dev/null,
/// stdout and stderr appended to `log`.
pub fn spawn_detached(exe: &Path, args: &[String], log: &Path) -> io::Result<Child> {
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir)?;
    }
    let out = OpenOptions::new().create(true).append(true).open(log)?;
    let err = out.try_clone()?;
    let mut cmd = Command::new(exe);
    cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
    // SAFETY: setsid is async-signal-safe and touches no memory of this
    // process; it is the only thing done between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Whether `pid` is alive and one of Lego's programs (its command's file
/// name starts with `lego`), so that a pid reused by an unrelated process
/// since `lego up` is never signalled.
pub fn is_ours(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    // A zombie has an empty command line: it is gone in every way that
    // matters here.
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let base = argv0.rsplit(|&b| b == b'/').next().unwrap_or_default();
    base.starts_with(b"lego")
}

/// What [`stop`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stopped {
    /// Ended by SIGTERM.
    pub terminated: usize,
    /// Still alive after the grace period: SIGKILLed.
    pub killed: usize,
}

/// Stops the processes: SIGTERM to each, up to `grace` for them to go,
/// then SIGKILL to what is left.
pub fn stop(pids: &[u32], grace: Duration) -> Stopped {
    let live: Vec<u32> = pids.iter().copied().filter(|&p| is_ours(p)).collect();
    for &pid in &live {
        // SAFETY: kill has no memory effects; the pid was checked above.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && live.iter().any(|&p| is_ours(p)) {
        reap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stopped = Stopped::default();
    for &pid in &live {
        if is_ours(pid) {
            // SAFETY: as above.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            stopped.killed += 1;
        } else {
            stopped.terminated += 1;
        }
    }
    reap();
    stopped
}

/// Stops processes this one started and has not waited for (so their
/// pids cannot have been reused, whatever they are): SIGTERM, up to
/// `grace`, then SIGKILL.
pub fn stop_children(children: &mut [Child], grace: Duration) {
    for c in children.iter() {
        // SAFETY: kill has no memory effects; the child is not yet reaped.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
    }
    let deadline = Instant::now() + grace;
    let mut live: Vec<&mut Child> = children.iter_mut().collect();
    loop {
        live.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
        if live.is_empty() || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for c in live {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Collects children of this process that have ended (when `lego up`
/// stops what it started itself, they are its children and would linger
/// as zombies).
fn reap() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only `status`.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
    }
}

/// Creates the rack's directories.
pub fn prepare(rack: &Rack) -> io::Result<()> {
    fs::create_dir_all(rack.dir.join("logs"))?;
    fs::create_dir_all(rack.state_dir())
}

/// Writes `globals.addr` whole (a reader never sees half an address).
pub fn write_addr(rack: &Rack, addr: &str) -> io::Result<()> {
    let tmp = rack.dir.join("globals.addr.tmp");
    let mut f = File::create(&tmp)?;
    writeln!(f, "{addr}")?;
    fs::rename(tmp, rack.addr_file())
}
