//! Shared by the integration tests: run the real `lego-vmm` binary, which
//! boots real guest images under /dev/kvm.

#![allow(dead_code)]

pub mod programs;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

pub const VMM: &str = env!("CARGO_BIN_EXE_lego-vmm");

/// Whether KVM tests can run. In CI a missing /dev/kvm fails the test;
/// elsewhere the test is skipped with a note.
pub fn kvm_available() -> bool {
    if Path::new("/dev/kvm").exists() {
        assert!(
            image("guest-mmon").exists(),
            "the guest images are missing next to {VMM}: run 'cargo build --workspace' before 'cargo test' (the README's test command does)"
        );
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("/dev/kvm is missing on this CI machine: these tests boot real guests and cannot run without KVM");
    }
    eprintln!("skipping: /dev/kvm is missing (outside CI, KVM tests skip)");
    false
}

/// A guest image built by the workspace, next to lego-vmm.
pub fn image(name: &str) -> PathBuf {
    Path::new(VMM).with_file_name(name)
}

pub fn vmm() -> Command {
    let mut cmd = Command::new(VMM);
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs lego-vmm to completion with a time limit, so a hang fails the test.
pub fn run(args: &[&str]) -> Output {
    let child = vmm()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lego-vmm");
    wait_with_timeout(child, Duration::from_secs(60), args)
}

pub fn wait_with_timeout(mut child: Child, limit: Duration, what: &[&str]) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait for lego-vmm").is_some() {
            return child.wait_with_output().expect("collect output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect output");
            panic!(
                "lego-vmm {what:?} did not finish in {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts the exit code and that stderr contains every needle.
pub fn expect_failure(out: &Output, code: i32, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr:\n{err}");
    for needle in needles {
        assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
    }
    assert!(
        !err.contains("RUST_BACKTRACE") && !err.contains("panicked at vmm/"),
        "the VMM itself crashed:\n{err}"
    );
}

/// A scratch directory unique to one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lego-vmm-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// A running lego-vmm whose stderr is collected line by line, so a test can
/// wait for what it prints. Killed when dropped, so a failed test leaves
/// nothing running.
pub struct Process {
    pub child: Child,
    lines: Receiver<String>,
    pub seen: Vec<String>,
    /// A directory of its own (its shared-memory rings), removed with it.
    pub own_dir: Option<PathBuf>,
}

impl Process {
    pub fn start(args: &[&str]) -> Process {
        let mut child = vmm()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start lego-vmm");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Process {
            child,
            lines,
            seen: Vec::new(),
            own_dir: None,
        }
    }

    /// Waits (30 s at most) for a stderr line containing `needle`.
    pub fn wait_for(&mut self, needle: &str) -> String {
        self.wait_for_within(needle, Duration::from_secs(30))
    }

    /// Waits (`limit` at most) for a stderr line containing `needle`.
    pub fn wait_for_within(&mut self, needle: &str, limit: Duration) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                self.seen.push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
        }
        let _ = self.child.kill();
        panic!(
            "no stderr line with {needle:?}; saw:\n{}",
            self.seen.join("\n")
        );
    }

    /// The TCP address it says it listens on (waiting for the line).
    pub fn listen_address(&mut self) -> String {
        let line = self.wait_for("listens on ");
        line.split("listens on ")
            .nth(1)
            .expect("an address after 'listens on'")
            .trim()
            .to_owned()
    }

    /// Collects what is printed for a moment.
    pub fn drain(&mut self) {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
            self.seen.push(line);
        }
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// SIGTERM, then the exit code.
    pub fn stop(mut self) -> Option<i32> {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.wait(Duration::from_secs(10)).0
    }

    /// Waits (30 s at most) for the exit; returns the code and stdout.
    pub fn wait_exit(mut self) -> (Option<i32>, String) {
        self.wait(Duration::from_secs(30))
    }

    pub fn wait(&mut self, limit: Duration) -> (Option<i32>, String) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let mut out = String::new();
                if let Some(mut s) = self.child.stdout.take() {
                    let _ = s.read_to_string(&mut out);
                }
                // What it printed last.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(50)) {
                    self.seen.push(line);
                }
                return (status.code(), out);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "lego-vmm did not exit within {limit:?}; stderr:\n{}",
            self.seen.join("\n")
        );
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.own_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A shared-memory directory no other component of the tests uses: one
/// id is one component per directory, and the tests run at once.
pub fn own_shm_dir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = PathBuf::from(format!("/dev/shm/lego-test-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A component of `role` listening on a free port with a shared-memory
/// directory of its own: the process and its address, once it serves.
pub fn serving_component(role: &str, id: u32, extra: &[&str]) -> (Process, String) {
    serving_component_at(role, id, "127.0.0.1:0", extra)
}

/// A component of `role` listening on `listen` (a fixed address, for one
/// started again where its peers look): the process and its address.
pub fn serving_component_at(
    role: &str,
    id: u32,
    listen: &str,
    extra: &[&str],
) -> (Process, String) {
    let id_text = id.to_string();
    let dir = own_shm_dir();
    let dir_text = dir.to_string_lossy().into_owned();
    let mut args = vec![
        "--role",
        role,
        "--id",
        &id_text,
        "--listen",
        listen,
        "--shm-dir",
        &dir_text,
    ];
    args.extend_from_slice(extra);
    let mut p = Process::start(&args);
    p.own_dir = Some(dir);
    let addr = p.listen_address();
    p.wait_for("fabric: component");
    (p, addr)
}

/// A memory component listening on a free port: the process and its address.
pub fn memory_component(id: u32, mem: &str, extra: &[&str]) -> (Process, String) {
    let mut args = vec!["--mem", mem];
    args.extend_from_slice(extra);
    serving_component("memory", id, &args)
}

/// A free TCP address on this host, to start a component at again.
pub fn free_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("its address").to_string()
}

/// A storage component on `disk` listening on a free port: the process
/// and its address, once its file system is mounted and it serves.
pub fn storage_component(id: u32, disk: &Path, extra: &[&str]) -> (Process, String) {
    let disk_text = disk.to_string_lossy().into_owned();
    let mut args = vec!["--disk", disk_text.as_str()];
    args.extend_from_slice(extra);
    serving_component("storage", id, &args)
}

/// The rack key the components started here use: this host's default one,
/// as for components started by hand (created on first use).
pub fn rack_key() -> lego_wire::key::RackKey {
    let path = lego_wire::key::RackKey::default_path().expect("a default rack key path");
    lego_wire::key::RackKey::load_or_create(&path).expect("the default rack key")
}

/// A fabric client on TCP speaking as component `id` (a tool, not a component).
pub fn tcp_client(addr: &str, id: u32) -> lego_wire::client::TcpClient {
    lego_wire::client::TcpClient::connect(
        addr,
        id,
        lego_wire::auth::ROLE_TOOL,
        &rack_key(),
        Duration::from_secs(10),
    )
    .expect("connect and greet the component")
}

/// A memory component's counters (OP_STATS).
pub fn memory_stats(
    c: &mut lego_wire::client::TcpClient,
    dst: u32,
) -> lego_proto::memory::MemStats {
    use lego_proto::memory::*;
    use zerocopy::{FromBytes, IntoBytes};
    let req = MemRequest {
        op: OP_STATS,
        ..Default::default()
    };
    let body = c.data(dst, req.as_bytes()).expect("memory stats");
    MemStats::read_from_bytes(&body[REPLY_LEN..]).expect("MemStats")
}

/// One memory request (a page after it, if any) and its reply.
pub fn mem(
    c: &mut lego_wire::client::TcpClient,
    dst: u32,
    req: lego_proto::memory::MemRequest,
    page: Option<&[u8]>,
) -> (lego_proto::memory::MemReply, Vec<u8>) {
    use lego_proto::memory::*;
    use zerocopy::{FromBytes, IntoBytes};
    let mut payload = req.as_bytes().to_vec();
    payload.extend_from_slice(page.unwrap_or_default());
    let body = c.data(dst, &payload).expect("a memory reply");
    let (r, rest) = MemReply::read_from_prefix(&body).expect("MemReply");
    (r, rest.to_vec())
}

/// A component's fabric counters, as its VMM answers them.
pub fn fabric_stats(
    client: &mut lego_wire::client::TcpClient,
    dst: u32,
) -> lego_proto::fabric::FabricStats {
    let body = client
        .data(dst, &lego_proto::fabric::FABRIC_STATS_REQUEST)
        .expect("the fabric stats");
    <lego_proto::fabric::FabricStats as zerocopy::FromBytes>::read_from_bytes(&body)
        .expect("a FabricStats")
}

/// The ExCache counters of processor `id`, over `conn`, asked until one
/// taken while it runs comes: a cache busy at that instant answers its last
/// snapshot again (all zeros before the first), as a user watching the
/// counters would see.
pub fn excache_stats(
    conn: &mut lego_wire::client::TcpClient,
    id: u32,
) -> lego_proto::process::ExCacheStats {
    use lego_proto::process::{ExCacheStats, EXCACHE_STATS_REQUEST};
    use zerocopy::FromBytes;
    let mut stats = ExCacheStats::default();
    for _ in 0..100 {
        let body = conn.data(id, &EXCACHE_STATS_REQUEST).expect("the stats");
        stats = ExCacheStats::read_from_bytes(&body).expect("ExCache stats");
        if stats.pages != 0 && stats.misses > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    stats
}
