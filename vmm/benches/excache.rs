//! `cargo bench -p lego-vmm --bench excache`: the processor's ExCache
//! against a real memory component, over TCP and over shared memory.
//!
//! * Per miss, p50 and p99 as the guest times its first access to a page:
//!   write miss, write miss evicting a dirty page, read miss evicting a
//!   dirty page, read miss evicting a clean page (a 16 MiB working set
//!   through a 4 MiB ExCache).
//! * The floors, measured in the same run: one VM exit (guest-timed no-op
//!   hypercalls) and one round trip with a 4 KiB reply, both the raw host
//!   TCP loopback and guest to guest over each transport. Each miss is
//!   reported as a multiple of (exit + host TCP round trip).
//! * The workload's run time with the ExCache at 25%, 50% and 100% of its
//!   working set, against the same code run on the host.
//!
//! Medians of RUNS runs. Build the release images first:
//! `cargo build --release --workspace`.

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::{component, host_tcp_p50, median, VMM};

use lego_proto::process::{check_page, write_page};

const RUNS: usize = 3;
const WORKING_SET_MIB: u64 = 16;

/// Runs lego-vmm to completion; stdout and stderr.
fn run(args: &[&str]) -> (String, String) {
    let out = Command::new(VMM).args(args).output().expect("run lego-vmm");
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "lego-vmm {args:?} failed:\n{o}\n{e}");
    (o, e)
}

/// The pattern workload over the working set through `cache` of ExCache.
fn workload(cache: &str, prefetch: &str, peer: &str) -> (String, String) {
    let ws = format!("pattern:{WORKING_SET_MIB}M");
    run(&[
        "--role",
        "processor",
        "--excache",
        cache,
        "--excache-prefetch",
        prefetch,
        "--peer",
        peer,
        "--run-workload",
        &ws,
        "--log-level",
        "info",
    ])
}

/// The number after `key` (`key=1.5` or `key 1.5 us`) in `text`.
fn number_after(text: &str, key: &str) -> f64 {
    let rest = text
        .split(key)
        .nth(1)
        .unwrap_or_else(|| panic!("no {key:?} in:\n{text}"));
    rest.trim_start_matches(['=', ' '])
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {key:?} in:\n{text}"))
}

/// The workload's passes on the host, over fresh (unpopulated) memory; ms.
fn host_workload_ms(bytes: u64) -> f64 {
    let mut mem = vec![0u64; (bytes / 8) as usize];
    let seed = 7;
    let t = Instant::now();
    for (p, page) in mem.chunks_mut(512).enumerate() {
        write_page(seed, p as u64 * 4096, page);
    }
    let mut wrong = 0;
    for (p, page) in mem.chunks(512).enumerate() {
        wrong += check_page(seed, p as u64 * 4096, page);
    }
    let ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(wrong, 0);
    ms
}

const CLASSES: [&str; 4] = [
    "write miss:",
    "write miss + dirty eviction:",
    "read miss + dirty eviction:",
    "read miss + clean eviction:",
];

fn main() {
    let images = Path::new(VMM).with_file_name("guest-pmon");
    if !images.exists() || !Path::new(VMM).to_string_lossy().contains("release") {
        eprintln!(
            "the release guest images are missing: run 'cargo build --release --workspace' first"
        );
        std::process::exit(2);
    }
    let (_mem, mem_addr) = component("memory", 1);
    let (_echo, echo_addr) = component("storage", 9);
    let host_tcp = median(
        (0..RUNS)
            .map(|_| host_tcp_p50(72, 32 + 16 + 4096, 4000))
            .collect(),
    );
    println!("floors (medians of {RUNS} runs):");
    println!("  host TCP round trip, 72 B out, 4 KiB back: p50 {host_tcp:.1} us");
    let mut exit_us = Vec::new();
    for (name, peer_mem, peer_echo) in [
        ("tcp", format!("1={mem_addr}"), format!("9={echo_addr}")),
        ("shm", "1=shm".to_owned(), "9=shm".to_owned()),
    ] {
        let mut rtt = Vec::new();
        for _ in 0..RUNS {
            let (_, out) = run(&[
                "--role",
                "processor",
                "--id",
                "8",
                "--peer",
                &peer_echo,
                "--fabric-test",
                "rtt:9:2000",
            ]);
            rtt.push(number_after(&out, "p50_us"));
            exit_us.push(number_after(&out, "exit_us"));
        }
        let exit = median(exit_us.clone());
        let floor = exit + host_tcp;
        println!("  [{name}] one VM exit {exit:.1} us; guest-to-guest round trip (4 KiB reply) p50 {:.1} us; floor exit + host TCP = {floor:.1} us", median(rtt.clone()));
        let mut per_class: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); 4];
        let mut exits_per_miss = Vec::new();
        for _ in 0..RUNS {
            let (_, err) = workload("4M", "0", &peer_mem);
            for (i, class) in CLASSES.iter().enumerate() {
                let line = err
                    .lines()
                    .find(|l| l.contains(class))
                    .expect("a class line");
                per_class[i].0.push(number_after(line, "p50"));
                per_class[i].1.push(number_after(line, "p99"));
            }
            let line = err
                .lines()
                .find(|l| l.contains("exits to the VMM for"))
                .expect("exits line");
            let exits = number_after(line, "INFO ]");
            let misses = number_after(line, "for");
            exits_per_miss.push(exits / misses);
        }
        println!(
            "  [{name}] misses without prefetching (guest-timed, 16 MiB through 4 MiB), exits per miss {:.2}:",
            median(exits_per_miss)
        );
        for (i, class) in CLASSES.iter().enumerate() {
            let (p50, p99) = (
                median(per_class[i].0.clone()),
                median(per_class[i].1.clone()),
            );
            println!(
                "    {class:<30} p50 {p50:6.1} us ({:.2}x floor)  p99 {p99:6.1} us ({:.2}x floor)",
                p50 / floor,
                p99 / floor
            );
        }
    }
    println!("workload run time, {WORKING_SET_MIB} MiB working set, against the host (medians of {RUNS}):");
    let host = median(
        (0..RUNS)
            .map(|_| host_workload_ms(WORKING_SET_MIB << 20))
            .collect(),
    );
    println!("  host: {host:.1} ms");
    for (pct, cache) in [
        (25, WORKING_SET_MIB / 4),
        (50, WORKING_SET_MIB / 2),
        (100, WORKING_SET_MIB),
    ] {
        for (name, peer) in [
            ("tcp", format!("1={mem_addr}")),
            ("shm", "1=shm".to_owned()),
        ] {
            // Prefetch off and on alternate run by run, so drift on this
            // shared host hits both alike.
            let cache = format!("{cache}M");
            let mut miss_p50 = [Vec::new(), Vec::new()];
            let mut times = [Vec::new(), Vec::new()];
            for _ in 0..RUNS {
                for (i, prefetch) in ["0", "4"].into_iter().enumerate() {
                    let (out, err) = workload(&cache, prefetch, &peer);
                    miss_p50[i].push(number_after(&out, "miss_p50_us"));
                    let line = err
                        .lines()
                        .find(|l| l.contains("workload ran"))
                        .expect("run time");
                    times[i].push(number_after(line, "ran"));
                }
            }
            for (i, prefetch) in ["0", "4"].into_iter().enumerate() {
                let ms = median(times[i].clone());
                println!(
                    "  ExCache {pct:3}% ({cache:>3}) over {name}, prefetch {prefetch}: {ms:8.1} ms = {:6.1}x the host; VMM-timed miss p50 {:.0} us",
                    ms / host,
                    median(miss_p50[i].clone())
                );
            }
        }
    }
}
