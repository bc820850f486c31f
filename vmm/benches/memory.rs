//! `cargo bench -p lego-vmm --bench memory`: page reads served by one
//! memory component to one client over TCP, cold (each read zero-fills a
//! new frame) and warm, as reads per second and per-read p50/p99; and the
//! page table's overhead in frames per GiB mapped. Medians of several runs.
//!
//! Baseline in the same run: a host TCP round trip of the same sizes
//! (a 40-byte request, a 4 KiB reply). Build the release images first:
//! `cargo build --release --workspace`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use lego_proto::frame::{Header, Kind, HEADER_LEN};
use lego_proto::memory::*;
use zerocopy::{FromBytes, IntoBytes};

const VMM: &str = env!("CARGO_BIN_EXE_lego-vmm");
const RUNS: usize = 5;
const PAGES: u64 = 8192;
const BASE: u64 = 1 << 30;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn quantile(sorted: &[f64], q: usize) -> f64 {
    sorted[(sorted.len() * q / 100).min(sorted.len() - 1)]
}

struct Component(Child);

impl Drop for Component {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn component() -> (Component, String) {
    let mut child = Command::new(VMM)
        .args([
            "--role",
            "memory",
            "--id",
            "1",
            "--mem",
            "256M",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the memory component");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut addr = String::new();
    for line in lines.by_ref().map_while(Result::ok) {
        if let Some(a) = line.split("listens on ").nth(1) {
            addr = a.trim().to_owned();
        }
        if line.contains("fabric: component 1 serving") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (Component(child), addr)
}

struct Client {
    conn: TcpStream,
    next: u64,
    reply: Vec<u8>,
}

impl Client {
    fn call(&mut self, req: &MemRequest) -> MemReply {
        self.next += 1;
        let body = req.as_bytes();
        let mut frame = Header::request(Kind::Data, self.next, 100, 1, body.len() as u32)
            .encode()
            .to_vec();
        frame.extend_from_slice(body);
        self.conn.write_all(&frame).expect("send");
        let mut head = [0u8; HEADER_LEN];
        self.conn.read_exact(&mut head).expect("reply");
        let h = Header::decode(&head).expect("reply header");
        self.reply.resize(h.length as usize, 0);
        self.conn.read_exact(&mut self.reply).expect("reply body");
        MemReply::read_from_prefix(&self.reply)
            .expect("memory reply")
            .0
    }
}

/// Reads every page once; per-read latencies in microseconds.
fn read_all(c: &mut Client) -> Vec<f64> {
    let mut lat = Vec::with_capacity(PAGES as usize);
    for i in 0..PAGES {
        let t = Instant::now();
        let r = c.call(&MemRequest {
            op: OP_READ,
            pid: 1,
            addr: BASE + i * PAGE as u64,
            ..Default::default()
        });
        lat.push(t.elapsed().as_secs_f64() * 1e6);
        assert_eq!(r.status, OK);
    }
    lat
}

fn host_tcp_p50() -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_nodelay(true).ok();
        let mut req = [0u8; 72];
        let reply = vec![1u8; HEADER_LEN + REPLY_LEN + PAGE];
        while s.read_exact(&mut req).is_ok() && s.write_all(&reply).is_ok() {}
    });
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_nodelay(true).ok();
    let mut buf = vec![0u8; HEADER_LEN + REPLY_LEN + PAGE];
    let mut lat = Vec::new();
    for _ in 0..PAGES {
        let t = Instant::now();
        c.write_all(&[0u8; 72]).expect("write");
        c.read_exact(&mut buf).expect("read");
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    quantile(&lat, 50)
}

fn main() {
    if !Path::new(VMM).with_file_name("guest-mmon").exists() {
        eprintln!(
            "the release guest images are missing: run 'cargo build --release --workspace' first"
        );
        std::process::exit(2);
    }
    let tcp = median((0..RUNS).map(|_| host_tcp_p50()).collect());
    let (
        mut cold_rate,
        mut warm_rate,
        mut cold50,
        mut cold99,
        mut warm50,
        mut warm99,
        mut overhead,
    ) = (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..RUNS {
        let (_m, addr) = component();
        let conn = TcpStream::connect(&addr).expect("connect");
        conn.set_nodelay(true).ok();
        let mut c = Client {
            conn,
            next: 0,
            reply: Vec::new(),
        };
        c.call(&MemRequest {
            op: OP_NEW,
            pid: 1,
            addr: 0x40_0000,
            ..Default::default()
        });
        c.call(&MemRequest {
            op: OP_MMAP,
            pid: 1,
            addr: BASE,
            len: PAGES * PAGE as u64,
            prot: 3,
            flags: FLAG_FIXED,
            ..Default::default()
        });
        let stats = |c: &mut Client| {
            c.call(&MemRequest {
                op: OP_STATS,
                ..Default::default()
            });
            MemStats::read_from_bytes(&c.reply[REPLY_LEN..]).expect("stats")
        };
        let before = stats(&mut c);
        for (lat, rate, p50, p99) in [
            (read_all(&mut c), &mut cold_rate, &mut cold50, &mut cold99),
            (read_all(&mut c), &mut warm_rate, &mut warm50, &mut warm99),
        ] {
            let total: f64 = lat.iter().sum();
            rate.push(PAGES as f64 / (total / 1e6));
            let mut sorted = lat;
            sorted.sort_by(|a, b| a.total_cmp(b));
            p50.push(quantile(&sorted, 50));
            p99.push(quantile(&sorted, 99));
        }
        let after = stats(&mut c);
        // Heap bytes the page table took per mapped page, as frames per GiB.
        let per_page = (before.heap_free - after.heap_free) as f64 / PAGES as f64;
        overhead.push(per_page * ((1u64 << 30) / PAGE as u64) as f64 / PAGE as f64);
    }
    println!(
        "baseline: host TCP round trip (72 B out, {} B back): p50 {tcp:.1} us",
        HEADER_LEN + REPLY_LEN + PAGE
    );
    println!(
        "{:<6} {:>12} {:>9} {:>9} {:>10}",
        "reads", "per_second", "p50_us", "p99_us", "p50/tcp"
    );
    for (name, rate, p50, p99) in [
        ("cold", cold_rate, cold50, cold99),
        ("warm", warm_rate, warm50, warm99),
    ] {
        let p50 = median(p50);
        println!(
            "{:<6} {:>12.0} {:>9.1} {:>9.1} {:>10.2}",
            name,
            median(rate),
            p50,
            median(p99),
            p50 / tcp
        );
    }
    println!(
        "page table: {:.1} frames of overhead per GiB mapped (after {PAGES} pages)",
        median(overhead)
    );
}
