//! `cargo bench -p lego-vmm --bench excache`: the processor's ExCache
//! against a real memory component, over TCP and over shared memory.
//!
//! * Per miss, p50 and p99 as the guest times its first access to a page:
//!   write miss, write miss evicting a dirty page, read miss evicting a
//!   dirty page, read miss evicting a clean page (a 16 MiB working set
//!   through a 4 MiB ExCache, prefetching off).
//! * The floors, measured in the same run: one VM exit (guest-timed no-op
//!   hypercalls) and one round trip with a 4 KiB reply, both the raw host
//!   TCP loopback and guest to guest over each transport. Each miss is
//!   reported as a multiple of (exit + host TCP round trip).
//! * Side by side, the pattern and random workloads over 64 MiB with the
//!   ExCache at 25%, 50% and 100% of it (default settings, over TCP): on
//!   Lego; the same passes natively on this host; and natively under Linux
//!   limited to the cache's size by a memory cgroup with swap on zram (set
//!   up here when run as root; said plainly when it cannot be). Printed:
//!   Lego / native, Lego / zram, the VMM-timed miss p50 and p99 as
//!   multiples of the floor, exits to the VMM and userfaultfd faults per
//!   miss, and where a miss's time goes (fetching, installing pages and
//!   evicting, the rest).
//!
//! Medians of RUNS runs (TABLE_RUNS for the table, each Lego run beside
//! its zram run, the ratio the median of theirs). Build the release images first:
//! `cargo build --release --workspace`.

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::{component, host_tcp_p50, median, under_zram, VMM};

use lego_proto::process::{check_page, random_step, write_page};

const RUNS: usize = 3;
/// Runs of each row of the side-by-side table (its figures drift most).
const TABLE_RUNS: usize = 5;
/// The per-class misses: this working set through a quarter of it.
const WORKING_SET_MIB: u64 = 16;
/// The side-by-side table's working set.
const TABLE_MIB: u64 = 64;

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

/// A built-in workload (`kind:SIZE`) through `cache` of ExCache;
/// `prefetch` None keeps the default.
fn workload(kind: &str, cache: &str, prefetch: Option<&str>, peer: &str) -> (String, String) {
    let mut args = vec!["--role", "processor", "--excache", cache, "--peer", peer];
    if let Some(p) = prefetch {
        args.extend(["--excache-prefetch", p]);
    }
    args.extend(["--run-workload", kind, "--log-level", "info"]);
    run(&args)
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

/// The workload's passes on the host, over fresh (unpopulated) memory,
/// as the guest's workload makes them; ms.
fn host_workload_ms(kind: &str, bytes: u64) -> f64 {
    let mut mem = vec![0u64; (bytes / 8) as usize];
    let pages = bytes / 4096;
    let seed = 7;
    let t = Instant::now();
    for (p, page) in mem.chunks_mut(512).enumerate() {
        write_page(seed, p as u64 * 4096, page);
    }
    let mut wrong = 0;
    if kind == "random" {
        let mut state = seed | 1;
        for _ in 0..pages {
            let (p, write) = random_step(&mut state, pages);
            let page = &mut mem[p as usize * 512..(p as usize + 1) * 512];
            if write {
                write_page(seed, p * 4096, page);
            } else {
                wrong += check_page(seed, p * 4096, page);
            }
        }
    } else {
        for (p, page) in mem.chunks(512).enumerate() {
            wrong += check_page(seed, p as u64 * 4096, page);
        }
    }
    let ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(wrong, 0);
    ms
}

/// The host workload in a process of its own (this benchmark run again
/// with `host-workload KIND BYTES`), so a cgroup can hold it; its ms.
fn host_workload_in_child(kind: &str, bytes: u64, limit: Option<u64>) -> Result<f64, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let size = bytes.to_string();
    let args = ["host-workload", kind, size.as_str()];
    let out = match limit {
        Some(l) => under_zram(&me, &args, l)?,
        None => {
            let o = Command::new(&me)
                .args(args)
                .output()
                .map_err(|e| e.to_string())?;
            String::from_utf8_lossy(&o.stdout).into_owned()
        }
    };
    out.trim()
        .strip_prefix("ms=")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("the host workload printed {out:?}"))
}

const CLASSES: [&str; 4] = [
    "write miss:",
    "write miss + dirty eviction:",
    "read miss + dirty eviction:",
    "read miss + clean eviction:",
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("host-workload") {
        let kind = args.get(2).map_or("pattern", String::as_str);
        let bytes = args.get(3).and_then(|b| b.parse().ok()).unwrap_or(64 << 20);
        println!("ms={}", host_workload_ms(kind, bytes));
        return;
    }
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
            let ws = format!("pattern:{WORKING_SET_MIB}M");
            let (_, err) = workload(&ws, "4M", Some("0"), &peer_mem);
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
    table(&format!("1={mem_addr}"), floor_tcp(&exit_us, host_tcp));
}

/// The floor over TCP: a median VM exit plus the host TCP round trip.
fn floor_tcp(exit_us: &[f64], host_tcp: f64) -> f64 {
    median(exit_us.to_vec()) + host_tcp
}

/// The side-by-side table: Lego, native, Linux + zram.
fn table(peer: &str, floor: f64) {
    let bytes = TABLE_MIB << 20;
    println!("side by side, {TABLE_MIB} MiB working set over TCP, default settings (medians of {TABLE_RUNS}, each Lego run next to its zram run); floor {floor:.1} us:");
    for kind in ["pattern", "random"] {
        let native = median(
            (0..RUNS)
                .map(|_| host_workload_in_child(kind, bytes, None).expect("the host workload"))
                .collect(),
        );
        println!("  {kind}: native {native:.1} ms");
        for pct in [25, 50, 100] {
            let cache_mib = TABLE_MIB * pct / 100;
            let cache = format!("{cache_mib}M");
            let spec = format!("{kind}:{TABLE_MIB}M");
            let mut ms = Vec::new();
            let mut p50 = Vec::new();
            let mut p99 = Vec::new();
            let mut exits = Vec::new();
            let mut faults = Vec::new();
            let mut fetch = Vec::new();
            let mut install = Vec::new();
            let mut per_miss = Vec::new();
            // Each Lego run is followed by its zram run, so a drift of
            // this shared host weighs on both; the ratio is the median of
            // the runs' ratios.
            let mut zram: Result<Vec<f64>, String> = Ok(Vec::new());
            let mut ratios = Vec::new();
            for _ in 0..TABLE_RUNS {
                let (_, err) = workload(&spec, &cache, None, peer);
                let ran = err
                    .lines()
                    .find(|l| l.contains("workload ran"))
                    .expect("run time");
                ms.push(number_after(ran, "ran"));
                let sum = err
                    .lines()
                    .find(|l| l.contains("excache: "))
                    .expect("summary");
                let misses = number_after(sum, "excache:").max(1.0);
                let upgrades = sum
                    .split(" first writes after a read")
                    .next()
                    .and_then(|h| h.rsplit(' ').next())
                    .and_then(|n| n.parse::<f64>().ok())
                    .unwrap_or(0.0);
                p50.push(number_after(sum, "miss p50"));
                p99.push(number_after(sum, "p99"));
                per_miss.push(number_after(sum, "per miss in the VMM"));
                fetch.push(number_after(sum, "including"));
                install.push(number_after(sum, "fetching and"));
                faults.push((misses + upgrades) / misses);
                let line = err
                    .lines()
                    .find(|l| l.contains("exits to the VMM for"))
                    .expect("exits line");
                exits.push(number_after(line, "INFO ]") / misses);
                if let Ok(z) = &mut zram {
                    match host_workload_in_child(kind, bytes, Some(cache_mib << 20)) {
                        Ok(t) => {
                            ratios.push(ms[ms.len() - 1] / t);
                            z.push(t);
                        }
                        Err(why) => zram = Err(why),
                    }
                }
            }
            let ms = median(ms);
            let zram_text = match zram {
                Ok(z) => format!(
                    "linux+zram {:7.1} ms, lego/zram {:5.2}x",
                    median(z),
                    median(ratios)
                ),
                Err(why) => format!("linux+zram not run: {why}"),
            };
            let (p50, p99) = (median(p50), median(p99));
            println!(
                "    ExCache {pct:3}% ({cache:>3}): lego {ms:7.1} ms = {:5.1}x native; {zram_text}",
                ms / native
            );
            println!(
                "      miss p50 {p50:.0} us ({:.2}x floor), p99 {p99:.0} us ({:.2}x floor); {:.3} exits and {:.2} faults per miss; per miss {:.1} us: {:.1} fetching, {:.1} installing and evicting",
                p50 / floor,
                p99 / floor,
                median(exits),
                median(faults),
                median(per_miss),
                median(fetch),
                median(install),
            );
        }
    }
}
