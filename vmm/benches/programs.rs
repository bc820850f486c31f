//! `cargo bench -p lego-vmm --bench programs`: static Linux programs on a
//! processor against the same binary on this host, in the same run.
//!
//! * getpid, clock_gettime (served by the vDSO in user mode), and a 4 KiB
//!   pipe write with its read, per call: Lego's time as
//!   a multiple of the host's, and vCPU exits per call (to lego-vmm, and
//!   all of KVM's), from the difference between a run of N calls and a run
//!   of none.
//! * fork, the child's exit and the parent's waitpid; and the same with
//!   the child executing a trivial program (a shell's way of running a
//!   command), per round, as the calls above.
//! * Start to exit of a trivial static program (`lego-vmm ... -- calls
//!   true`, the memory component already up) against the host's fork+exec
//!   of the same binary.
//! * A CPU-bound pass over 16 MiB with a 64 MiB ExCache (fits), as a
//!   multiple of the host.
//! * The same over 64 MiB with a 16 MiB ExCache (four times the cache),
//!   against the host and against Linux limited to 16 MiB by the cgroup v1
//!   memory controller with swap on zram (set up here when run as root on
//!   a host with the zram module; undone after).
//!
//! Times inside the program (clock_gettime), so boot is not counted except
//! for start-to-exit. Medians of RUNS runs. Build the release images first:
//! `cargo build --release --workspace`.

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::{build_c, component, median, under_zram, VMM};

const RUNS: usize = 5;
const CALLS: &str = "20000";
/// Rounds of fork (and exec) per run.
const FORKS: &str = "300";

/// The `key=value` number in a program's output.
fn field(text: &str, key: &str) -> f64 {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {text:?}"))
}

fn host(prog: &Path, args: &[&str]) -> String {
    let out = Command::new(prog)
        .args(args)
        .output()
        .expect("run on the host");
    assert!(out.status.success(), "{args:?} failed on the host");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the program on Lego: its stdout, and the exit counts from the
/// VMM's report (to lego-vmm, all).
fn lego(peer: &str, vmm: &[&str], prog: &Path, args: &[&str]) -> (String, (f64, f64)) {
    let out = Command::new(VMM)
        .args(["--role", "processor", "--peer", peer, "--log-level", "info"])
        .args(vmm)
        .arg("--")
        .arg(prog)
        .args(args)
        .output()
        .expect("run lego-vmm");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?} failed on Lego:\n{err}");
    let line = err
        .lines()
        .find(|l| l.contains("vCPU exits: "))
        .unwrap_or_else(|| panic!("no exit counts in:\n{err}"));
    let num = |after: &str| -> f64 {
        line.split(after)
            .next()
            .and_then(|s| s.split_whitespace().last())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0)
    };
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        (num(" to lego-vmm"), num(" in all")),
    )
}

/// Per-call figures of `what`, `calls` times: (Lego ns, host ns, exits to
/// lego-vmm, exits in all) per call, medians.
fn per_call(peer: &str, prog: &Path, what: &str, calls: &str) -> (f64, f64, f64, f64) {
    let n: f64 = calls.parse().unwrap_or(1.0);
    let mut l = Vec::new();
    let mut h = Vec::new();
    let mut vmm_exits = Vec::new();
    let mut all_exits = Vec::new();
    for _ in 0..RUNS {
        let (out, (v1, a1)) = lego(peer, &[], prog, &[what, calls]);
        let (_, (v0, a0)) = lego(peer, &[], prog, &[what, "0"]);
        l.push(field(&out, "ns_per_op"));
        vmm_exits.push((v1 - v0) / n);
        all_exits.push((a1 - a0) / n);
        h.push(field(&host(prog, &[what, calls]), "ns_per_op"));
    }
    (median(l), median(h), median(vmm_exits), median(all_exits))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("programs: bench");
        return;
    }
    let prog = build_c("calls");
    let (_memory, addr) = component("memory", 1);
    let peer = format!("1={addr}");

    for what in ["getpid", "clock", "pipe"] {
        let (l, h, v, a) = per_call(&peer, &prog, what, CALLS);
        let name = match what {
            "pipe" => "4 KiB pipe write + read",
            "clock" => "clock_gettime (vDSO)",
            _ => "getpid",
        };
        println!(
            "{name:24} lego {:9.0} ns  host {:7.0} ns  ratio {:7.1}x  exits/call: {v:.2} to lego-vmm, {a:.2} in all",
            l,
            h,
            l / h
        );
    }
    for (what, name) in [
        ("fork", "fork + exit + wait"),
        ("spawn", "fork + exec + exit + wait"),
    ] {
        let (l, h, v, a) = per_call(&peer, &prog, what, FORKS);
        println!(
            "{name:24} lego {:9.0} us  host {:7.0} us  ratio {:7.1}x  exits/round: {v:.1} to lego-vmm, {a:.1} in all",
            l / 1e3,
            h / 1e3,
            l / h
        );
    }

    let mut lego_start = Vec::new();
    let mut host_start = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        lego(&peer, &[], &prog, &["true"]);
        lego_start.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        host(&prog, &["true"]);
        host_start.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (l, h) = (median(lego_start), median(host_start));
    println!(
        "start to exit            lego {l:9.1} ms  host fork+exec {h:.2} ms  ratio {:.0}x",
        l / h
    );

    let cpu = |vmm: &[&str], args: &[&str]| -> (f64, f64) {
        let mut l = Vec::new();
        let mut h = Vec::new();
        for _ in 0..RUNS {
            l.push(field(&lego(&peer, vmm, &prog, args).0, "ms"));
            h.push(field(&host(&prog, args), "ms"));
        }
        (median(l), median(h))
    };
    let (l, h) = cpu(&["--excache", "64M"], &["cpu", "16", "20"]);
    println!(
        "cpu, 16 MiB in 64 MiB    lego {l:9.1} ms  host {h:7.1} ms  ratio {:.3}x",
        l / h
    );
    let args = ["cpu", "64", "3"];
    let (l, h) = cpu(&["--excache", "16M"], &args);
    let zram = (0..RUNS)
        .map(|_| under_zram(&prog, &args, 16 << 20).map(|out| field(&out, "ms")))
        .collect::<Result<Vec<f64>, String>>();
    match zram {
        Ok(z) => {
            let z = median(z);
            println!(
                "cpu, 64 MiB in 16 MiB    lego {l:9.1} ms  host {h:7.1} ms  ratio {:.1}x  linux+zram {z:.1} ms  lego/zram {:.2}x",
                l / h,
                l / z
            );
        }
        Err(why) => println!(
            "cpu, 64 MiB in 16 MiB    lego {l:9.1} ms  host {h:7.1} ms  ratio {:.1}x  (linux+zram not run: {why})",
            l / h
        ),
    }
    let _ = std::fs::remove_file(&prog);
}
