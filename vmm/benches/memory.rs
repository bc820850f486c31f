//! `cargo bench -p lego-vmm --bench memory`: page reads served by one
//! memory component to one client over TCP, cold (each read zero-fills a
//! new frame) and warm, as reads per second and per-read p50/p99; and the
//! page table's overhead in frames per GiB mapped. Medians of several runs.
//!
//! Baseline in the same run: a host TCP round trip of the same sizes
//! (a 40-byte request, a 4 KiB reply). Build the release images first:
//! `cargo build --release --workspace`.

use std::path::Path;
use std::time::Instant;

#[path = "common/mod.rs"]
mod common;

use common::{component, host_tcp_p50, median, VMM};

use lego_proto::frame::{Kind, HEADER_LEN};
use lego_proto::memory::*;
use zerocopy::{FromBytes, IntoBytes};

const RUNS: usize = 5;
const PAGES: u64 = 8192;
const BASE: u64 = 1 << 30;

fn quantile(sorted: &[f64], q: usize) -> f64 {
    sorted[(sorted.len() * q / 100).min(sorted.len() - 1)]
}

struct Client {
    conn: lego_wire::client::TcpClient,
    reply: Vec<u8>,
}

impl Client {
    fn call(&mut self, req: &MemRequest) -> MemReply {
        (_, self.reply) = self
            .conn
            .call(1, Kind::Data, req.as_bytes())
            .expect("reply");
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

fn main() {
    if !Path::new(VMM).with_file_name("guest-mmon").exists() {
        eprintln!(
            "the release guest images are missing: run 'cargo build --release --workspace' first"
        );
        std::process::exit(2);
    }
    let tcp = median(
        (0..RUNS)
            .map(|_| host_tcp_p50(72, HEADER_LEN + REPLY_LEN + PAGE, PAGES as usize))
            .collect(),
    );
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
        let (_m, addr) = component("memory", 1);
        let mut c = Client {
            conn: common::client(&addr, 100),
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
