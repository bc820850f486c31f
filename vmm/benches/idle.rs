//! `cargo bench -p lego-vmm --bench idle`: what an idle component costs
//! and how fast it answers once it has idled. For a serving memory
//! component (release build): the share of one core it uses over 10 s of
//! nothing to do (the run time of all its threads, /proc/PID/task/*/schedstat,
//! in nanoseconds where /proc/PID/stat counts 10 ms ticks), and the
//! round trip of the first Ping after 2 s of idling, against the p50 of
//! Pings in a busy stream and of Pings after a 10 ms gap (the polling
//! windows closed, threads asleep, but not idle for long), all measured in
//! the same run. Medians of 3 runs.
//! Build the release images first: `cargo build --release --workspace`.

use std::path::Path;
use std::time::{Duration, Instant};

#[path = "common/mod.rs"]
mod common;

use common::{client, component, median, VMM};
use lego_proto::frame::Kind;

const RUNS: usize = 3;
const IDLE: Duration = Duration::from_secs(10);

/// Nanoseconds all threads of process `pid` have run.
fn run_ns(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("its threads");
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn ping_us(c: &mut lego_wire::client::TcpClient) -> f64 {
    let t = Instant::now();
    let (h, _) = c.call(1, Kind::Ping, b"are you there").expect("a pong");
    assert_eq!(h.kind, Kind::Pong);
    t.elapsed().as_secs_f64() * 1e6
}

fn main() {
    if !Path::new(VMM).with_file_name("guest-mmon").exists() {
        eprintln!(
            "the release guest images are missing: run 'cargo build --release --workspace' first"
        );
        std::process::exit(2);
    }
    let (mut idle_cpu, mut warm, mut first) = (Vec::new(), Vec::new(), Vec::new());
    let mut gap = Vec::new();
    for run in 0..RUNS {
        let (m, addr) = component("memory", 1);
        let pid = m.pid();
        let mut c = client(&addr, 100);
        for _ in 0..200 {
            ping_us(&mut c);
        }
        warm.push(median((0..1000).map(|_| ping_us(&mut c)).collect()));
        gap.push(median(
            (0..50)
                .map(|_| {
                    std::thread::sleep(Duration::from_millis(10));
                    ping_us(&mut c)
                })
                .collect(),
        ));
        // Let the polling windows close before counting.
        std::thread::sleep(Duration::from_secs(1));
        let a = run_ns(pid);
        std::thread::sleep(IDLE);
        let b = run_ns(pid);
        idle_cpu.push(100.0 * b.saturating_sub(a) as f64 / 1e9 / IDLE.as_secs_f64());
        first.push(median(
            (0..5)
                .map(|_| {
                    std::thread::sleep(Duration::from_secs(2));
                    ping_us(&mut c)
                })
                .collect(),
        ));
        eprintln!(
            "run {}: idle {:.3}% of a core, Ping p50 busy {:.1} us, after a 10 ms gap {:.1} us, first after 2 s idle {:.1} us",
            run + 1,
            idle_cpu[run],
            warm[run],
            gap[run],
            first[run]
        );
    }
    let (idle_cpu, warm, first) = (median(idle_cpu), median(warm), median(first));
    let gap = median(gap);
    println!(
        "idle memory component: {idle_cpu:.3}% of one core over {} s (its threads' run time)",
        IDLE.as_secs()
    );
    println!("baseline: Ping round trip in a busy stream (TCP, tool to guest): p50 {warm:.1} us");
    println!("baseline: Ping after a 10 ms gap: p50 {gap:.1} us");
    println!(
        "first Ping after 2 s idle: {first:.1} us = {:.2} x the busy p50, {:.2} x after a 10 ms gap",
        first / warm,
        first / gap
    );
}
