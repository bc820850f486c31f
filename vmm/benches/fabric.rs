//! `cargo bench -p lego-vmm --bench fabric`: guest-to-guest round trips
//! (a 64-byte-class request, a 4 KiB reply) over TCP and over shared
//! memory, p50 and p99, and one-way 4 KiB messages per second with exits
//! per message, as medians of several runs of real components.
//!
//! Baselines measured in the same run: a plain host TCP round trip on
//! loopback with the same sizes, and one VM exit (timed by the guest). Each
//! figure is also given as a ratio to them. Build the release images first:
//! `cargo build --release --workspace`.
//!
//! Also the cost of authenticating a 4 KiB frame (sealing it at the sender
//! and opening it at the receiver, the work every frame between VMMs now
//! carries), as a share of the guest-to-guest round trips of the same run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const VMM: &str = env!("CARGO_BIN_EXE_lego-vmm");
const RUNS: usize = 5;
const RTTS: u64 = 2000;
const FLOOD: u64 = 4000;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn quantile(sorted: &[f64], q: usize) -> f64 {
    sorted[(sorted.len() * q / 100).min(sorted.len() - 1)]
}

/// A host TCP round trip with the fabric's sizes: 40 bytes out, 4128 back.
fn host_tcp_rtt() -> (f64, f64) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_nodelay(true).ok();
        let mut req = [0u8; 40];
        let reply = vec![7u8; 4128];
        while s.read_exact(&mut req).is_ok() {
            if s.write_all(&reply).is_err() {
                break;
            }
        }
    });
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_nodelay(true).ok();
    let mut reply = vec![0u8; 4128];
    let mut samples = Vec::new();
    for i in 0..RTTS + 100 {
        let t = Instant::now();
        c.write_all(&[1u8; 40]).expect("write");
        c.read_exact(&mut reply).expect("read");
        if i >= 100 {
            samples.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    (quantile(&samples, 50), quantile(&samples, 99))
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a serving memory component; returns it and the peer argument.
fn server(tcp: bool, dir: &str) -> (Server, String) {
    let mut cmd = Command::new(VMM);
    cmd.args(["--role", "storage", "--id", "1", "--shm-dir", dir]);
    if tcp {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start server");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut peer = "1=shm".to_owned();
    for line in lines.by_ref().map_while(Result::ok) {
        if let Some(addr) = line.split("listens on ").nth(1) {
            peer = format!("1={}", addr.trim());
        }
        if line.contains("fabric: component 1 serving") {
            break;
        }
    }
    // Keep draining its stderr so it never blocks.
    std::thread::spawn(move || for _ in lines {});
    (Server(child), peer)
}

fn field(line: &str, key: &str) -> f64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

fn exercise(peer: &str, dir: &str, what: &str) -> String {
    let out = Command::new(VMM)
        .args([
            "--role",
            "processor",
            "--id",
            "2",
            "--peer",
            peer,
            "--shm-dir",
            dir,
            "--fabric-test",
            what,
        ])
        .output()
        .expect("run client");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what} failed:\n{err}");
    err.lines()
        .find(|l| l.contains(" ok "))
        .expect("an ok line")
        .to_owned()
}

/// Microseconds to seal and open one frame with a 4 KiB payload (the
/// reply of a round trip), as the transports do, averaged over a batch.
fn mac_cost_us() -> f64 {
    use lego_proto::frame::{Header, Kind};
    use lego_wire::auth::{Opener, Sealer};
    const BATCH: u32 = 20_000;
    let key = lego_wire::key::RackKey::from_bytes([0x5a; 32]);
    let payload = vec![7u8; 4096];
    let header = Header::request(Kind::Data, 1, 1, 2, payload.len() as u32).encode();
    let mut rx = Opener::new();
    let mut tx = Sealer::new(rx.nonce);
    let mut frame = Vec::with_capacity(header.len() + payload.len() + 64);
    let t = Instant::now();
    for _ in 0..BATCH {
        let trailer = tx.seal(&key, 2, &header, &payload);
        frame.clear();
        frame.extend_from_slice(&header);
        frame.extend_from_slice(&payload);
        frame.extend_from_slice(&trailer);
        rx.open(&key, &frame).expect("a frame just sealed opens");
    }
    t.elapsed().as_secs_f64() * 1e6 / BATCH as f64
}

fn main() {
    if !Path::new(VMM).with_file_name("guest-mmon").exists() {
        eprintln!(
            "the release guest images are missing: run 'cargo build --release --workspace' first"
        );
        std::process::exit(2);
    }
    let (mut tcp50, mut tcp99) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let (p50, p99) = host_tcp_rtt();
        tcp50.push(p50);
        tcp99.push(p99);
    }
    let (host50, host99) = (median(tcp50), median(tcp99));
    let mac = median((0..RUNS).map(|_| mac_cost_us()).collect());
    println!("baseline: host TCP loopback round trip (40 B out, 4128 B back): p50 {host50:.1} us, p99 {host99:.1} us");
    let dir = format!("/dev/shm/lego-bench-{}", std::process::id());
    let mut exit_all = Vec::new();
    let mut rows = Vec::new();
    for (name, tcp) in [("tcp", true), ("shm", false)] {
        let (mut p50, mut p99, mut exit, mut epr, mut rate, mut epm) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for _ in 0..RUNS {
            let (_server, peer) = server(tcp, &dir);
            let rtt = exercise(&peer, &dir, &format!("rtt:1:{RTTS}"));
            p50.push(field(&rtt, "p50_us"));
            p99.push(field(&rtt, "p99_us"));
            exit.push(field(&rtt, "exit_us"));
            epr.push(field(&rtt, "exits_per_rtt"));
            let flood = exercise(&peer, &dir, &format!("flood:1:{FLOOD}"));
            rate.push(field(&flood, "msgs_per_s"));
            epm.push(field(&flood, "exits_per_msg"));
            std::thread::sleep(Duration::from_millis(100));
        }
        exit_all.extend(exit.iter().copied());
        rows.push((
            name,
            median(p50),
            median(p99),
            median(exit),
            median(epr),
            median(rate),
            median(epm),
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    let exit_us = median(exit_all);
    println!("baseline: one VM exit (guest-timed, 200 no-op hypercalls): {exit_us:.1} us");
    println!(
        "{:<5} {:>8} {:>8} {:>10} {:>10} {:>12} {:>10} {:>12} {:>10}",
        "via",
        "p50_us",
        "p99_us",
        "p50/tcp",
        "p50/exit",
        "p50/(e+tcp)",
        "exits/rtt",
        "msgs_per_s",
        "exits/msg"
    );
    let mac_rows: Vec<(&str, f64)> = rows.iter().map(|r| (r.0, r.1)).collect();
    for (name, p50, p99, _exit, epr, rate, epm) in rows {
        println!(
            "{:<5} {:>8.1} {:>8.1} {:>10.2} {:>10.2} {:>12.2} {:>10.2} {:>12.0} {:>10.3}",
            name,
            p50,
            p99,
            p50 / host50,
            p50 / exit_us,
            p50 / (exit_us + host50),
            epr,
            rate,
            epm
        );
    }
    println!(
        "authentication: sealing and opening one 4 KiB frame (keyed BLAKE3, this host) takes {mac:.2} us"
    );
    for (name, p50) in mac_rows {
        println!(
            "authentication per 4 KiB frame / {name} round trip: {:.4} ({:.2} % of p50 {p50:.1} us)",
            mac / p50,
            100.0 * mac / p50
        );
    }
}
