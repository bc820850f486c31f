//! What the tests share: a real `lego-globals` on a free loopback port,
//! and components made of the library's client, as a `lego-vmm` would be.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lego_control::{Component, Load, Resources, Role, HEARTBEAT_MS};
use lego_globals::client::Globals;

pub const GIB: u64 = 1 << 30;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A running `lego-globals`, killed when dropped.
pub struct Daemon {
    pub addr: String,
    pub state: PathBuf,
    child: Child,
}

impl Daemon {
    pub fn start(state: &Path) -> Daemon {
        // A free port can be taken by another test between our look and
        // the daemon's bind; a daemon that could not bind exits at once,
        // and a connection made meanwhile may have reached the other
        // test's daemon: so its own must still run once connected.
        for _ in 0..5 {
            let addr = format!("127.0.0.1:{}", free_port());
            let child = Command::new(env!("CARGO_BIN_EXE_lego-globals"))
                .args(["--log-level", "warn", "--listen", &addr, "--state"])
                .arg(state)
                .stdin(Stdio::null())
                .spawn()
                .expect("lego-globals starts");
            let mut d = Daemon {
                addr,
                state: state.to_path_buf(),
                child,
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Globals::connect(&d.addr).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "lego-globals did not listen on {}",
                    d.addr
                );
                if d.child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            std::thread::sleep(Duration::from_millis(100));
            if d.child.try_wait().ok().flatten().is_none() {
                return d;
            }
        }
        panic!("lego-globals did not start on any of 5 free ports");
    }

    pub fn client(&self) -> Globals {
        Globals::connect(&self.addr).expect("connect to lego-globals")
    }

    /// `kill -9`: nothing gets to run on the way out.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn mem(bytes: u64) -> Resources {
    Resources {
        mem_bytes: bytes,
        vcpus: 1,
        ..Resources::default()
    }
}

pub fn disk(bytes: u64) -> Resources {
    Resources {
        disk_bytes: bytes,
        ..Resources::default()
    }
}

/// Registers a component as `lego-vmm` would (asking for an id).
pub fn register(g: &mut Globals, role: Role, fabric: &str, r: Resources) -> u32 {
    let control = (role == Role::Processor).then(|| format!("{fabric}0"));
    g.register(0, role, fabric, control.as_deref(), r, std::process::id())
        .expect("registered")
        .0
}

pub fn load(processes: u32, used_bytes: u64) -> Load {
    Load {
        processes,
        used_bytes,
        ..Load::default()
    }
}

pub fn component(g: &mut Globals, id: u32) -> Component {
    let (components, _) = g.status().expect("status");
    components
        .into_iter()
        .find(|c| c.id == id)
        .expect("the component is known")
}

/// Components that keep sending heartbeats, each on its own connection,
/// until dropped.
pub struct Beater {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Beater {
    pub fn start(addr: &str, beats: Vec<(u32, Load)>) -> Beater {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = beats
            .into_iter()
            .map(|(id, l)| {
                let stop = Arc::clone(&stop);
                let mut g = Globals::connect(addr).expect("connect");
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        g.heartbeat(id, l.clone()).expect("heartbeat accepted");
                        std::thread::sleep(Duration::from_millis(HEARTBEAT_MS));
                    }
                })
            })
            .collect();
        Beater { stop, threads }
    }
}

impl Drop for Beater {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Whether a processor's log says it lost memory component `id`'s copy:
/// the component it served from (its backup took over), or a backup.
pub fn reported_lost_copy(log: &str, id: u32) -> bool {
    log.contains(&format!("memory component {id} stopped answering"))
        || log.contains(&format!("backup {id} of memory component"))
}
