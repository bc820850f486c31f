//! What the benchmarks share: medians, a component started in the
//! background, the host TCP round trip they report against, and Linux with
//! a memory limit and swap on zram, the peer a user on one box would pick.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

pub const VMM: &str = env!("CARGO_BIN_EXE_lego-vmm");

/// `benches/programs/NAME.c` built static with gcc, in a scratch path.
pub fn build_c(name: &str) -> std::path::PathBuf {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/programs")
        .join(format!("{name}.c"));
    let out = std::env::temp_dir().join(format!("lego-bench-{name}-{}", std::process::id()));
    let ok = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "gcc -static could not build {}", src.display());
    out
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// A component serving the fabric, killed when dropped.
pub struct Component(Child);

impl Component {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a `role` component with fabric id `id` on a free TCP port and
/// waits until it serves: the process and its address.
pub fn component(role: &str, id: u32) -> (Component, String) {
    component_with(role, id, &[])
}

/// [`component`] with more options (a `--mem` there replaces 256M).
pub fn component_with(role: &str, id: u32, extra: &[&str]) -> (Component, String) {
    let id = id.to_string();
    let mem: &[&str] = if extra.contains(&"--mem") {
        &[]
    } else {
        &["--mem", "256M"]
    };
    let mut child = Command::new(VMM)
        .args(["--role", role, "--id", &id, "--listen", "127.0.0.1:0"])
        .args(mem)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a component");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut addr = String::new();
    for line in lines.by_ref().map_while(Result::ok) {
        if let Some(a) = line.split("listens on ").nth(1) {
            addr = a.trim().to_owned();
        }
        if line.contains("serving") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (Component(child), addr)
}

/// The p50 of `count` host TCP loopback round trips of `request` bytes out
/// and `reply` bytes back, in microseconds.
pub fn host_tcp_p50(request: usize, reply: usize, count: usize) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_nodelay(true).ok();
        let mut req = vec![0u8; request];
        let answer = vec![1u8; reply];
        while s.read_exact(&mut req).is_ok() && s.write_all(&answer).is_ok() {}
    });
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_nodelay(true).ok();
    let (out, mut buf) = (vec![0u8; request], vec![0u8; reply]);
    let mut lat = Vec::with_capacity(count);
    for _ in 0..count {
        let t = Instant::now();
        c.write_all(&out).expect("write");
        c.read_exact(&mut buf).expect("read");
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    median(lat)
}

/// The rack key of this host, as the components started here use it.
pub fn rack_key() -> lego_wire::key::RackKey {
    let path = lego_wire::key::RackKey::default_path().expect("a default rack key path");
    lego_wire::key::RackKey::load_or_create(&path).expect("the default rack key")
}

/// A fabric client connected to the component at `addr` as tool `id`.
pub fn client(addr: &str, id: u32) -> lego_wire::client::TcpClient {
    lego_wire::client::TcpClient::connect(
        addr,
        id,
        lego_wire::auth::ROLE_TOOL,
        &rack_key(),
        std::time::Duration::from_secs(10),
    )
    .expect("connect to the component")
}

/// Runs `prog args` limited to `limit` bytes of memory with swap on zram,
/// if this host allows; its output, or why not.
pub fn under_zram(prog: &std::path::Path, args: &[&str], limit: u64) -> Result<String, String> {
    let zram = std::path::Path::new("/sys/block/zram0");
    if !zram.exists() {
        let _ = Command::new("modprobe").arg("zram").status();
    }
    if !zram.exists() {
        return Err("needs /sys/block/zram0".into());
    }
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    if swaps.lines().count() > 1 {
        return Err("a swap device is already active; not touching it".into());
    }
    let result = sh("echo 1 > /sys/block/zram0/reset")
        .and_then(|()| {
            sh("echo 1G > /sys/block/zram0/disksize && mkswap /dev/zram0 && swapon /dev/zram0")
        })
        .and_then(|()| under_memory_limit(prog, args, limit));
    let _ = sh("swapoff /dev/zram0; echo 1 > /sys/block/zram0/reset");
    result
}

/// Runs `prog args` in a memory cgroup (v1) of `limit` bytes, which holds
/// its page cache too, if this host allows; its output, or why not.
pub fn under_memory_limit(
    prog: &std::path::Path,
    args: &[&str],
    limit: u64,
) -> Result<String, String> {
    let cg = std::path::Path::new("/sys/fs/cgroup/memory");
    if !cg.join("memory.limit_in_bytes").exists() {
        return Err("needs the cgroup v1 memory controller".into());
    }
    let group = cg.join("lego-bench");
    let setup = || -> Result<(), String> {
        std::fs::create_dir_all(&group).map_err(|e| format!("{e} (root needed)"))?;
        std::fs::write(group.join("memory.limit_in_bytes"), limit.to_string())
            .map_err(|e| e.to_string())?;
        Ok(())
    };
    let result = setup().and_then(|()| {
        let cmd = format!(
            "echo $$ > {}/cgroup.procs && exec {} {}",
            group.display(),
            prog.display(),
            args.join(" ")
        );
        let out = Command::new("sh")
            .args(["-c", &cmd])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    });
    let _ = std::fs::remove_dir(&group);
    result
}

/// Runs a shell command quietly: Ok if it succeeded.
fn sh(cmd: &str) -> Result<(), String> {
    let ok = Command::new("sh")
        .args(["-c", cmd])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err(format!("`{cmd}` failed (root needed)"))
    }
}
