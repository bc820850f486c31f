//! `cargo bench -p lego-vmm --bench replication`: what a backup costs and
//! how fast a fail-over is, with real components over TCP.
//!
//! * The pattern and random workloads (64 MiB through a 16 MiB ExCache)
//!   homed at a memory component without a backup and at one with a
//!   backup (`--backup`), runs interleaved: run times and their ratio.
//! * The same with the workload's second vRegion handed to another
//!   component (`--vregion-peers`), without copies and with a third
//!   component holding the process whole (`--backup`).
//! * Fail-over: the primary killed (kill -9) and stopped (SIGSTOP, with
//!   `--fabric-timeout-ms 500`) in the middle of the pattern workload: the
//!   time the processor reports from the request that found it gone to
//!   that request's answer from the backup, and the run time against an
//!   undisturbed run.
//!
//! Medians of RUNS runs. Build the release images first:
//! `cargo build --release --workspace`.

#[path = "common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{component_with, median, VMM};

const RUNS: usize = 5;

/// Runs the workload homed at `home`; (ms in the guest, stderr).
fn workload(kind: &str, peers: &[String], home: &str) -> (f64, String) {
    let mut cmd = Command::new(VMM);
    cmd.args(["--role", "processor", "--excache", "16M", "--memory", home]);
    for p in peers {
        cmd.args(["--peer", p]);
    }
    let out = cmd
        .args(["--run-workload", kind, "--log-level", "info"])
        .output()
        .expect("run lego-vmm");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    (ran_ms(&err), err)
}

fn ran_ms(err: &str) -> f64 {
    err.split("workload ran ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no run time in:\n{err}"))
}

/// The fail-over time the processor reports, in ms.
fn failover_ms(err: &str) -> Option<f64> {
    let rest = err.split("copies: 1 fail-overs (").nth(1)?;
    let rest = rest.split(" in ").nth(1)?;
    rest.split(" ms").next()?.trim().parse().ok()
}

/// The pattern and random workloads homed at `a` and at `b`, runs
/// interleaved: medians and the median ratio. Each run's stderr must say
/// `must_say`.
fn side_by_side(peers: &[String], (a, b): (&str, &str), b_is: &str, must_say: &str) {
    for kind in ["pattern:64M", "random:64M"] {
        let (mut one, mut two, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let (x, err) = workload(kind, peers, a);
            assert!(err.contains(must_say), "no {must_say:?} in:\n{err}");
            let (y, err) = workload(kind, peers, b);
            assert!(err.contains(must_say), "no {must_say:?} in:\n{err}");
            ratios.push(y / x);
            one.push(x);
            two.push(y);
        }
        println!(
            "  {kind:12} one copy {:7.1} ms, {b_is} {:7.1} ms: {:.2}x",
            median(one),
            median(two),
            median(ratios)
        );
    }
}

fn main() {
    if !std::path::Path::new("/dev/kvm").exists() {
        eprintln!("no /dev/kvm: nothing to measure");
        return;
    }
    let (_alone, a1) = component_with("memory", 1, &["--mem", "512M"]);
    let (_primary, a3) = component_with("memory", 3, &["--mem", "512M", "--backup", "4"]);
    let (_backup, a4) = component_with("memory", 4, &["--mem", "512M"]);
    let peers = vec![format!("1={a1}"), format!("3={a3}"), format!("4={a4}")];
    println!("64 MiB through a 16 MiB ExCache over TCP, medians of {RUNS} (runs interleaved):");
    side_by_side(&peers, ("1", "3"), "with a backup", "");
    // Spread: the home hands the workload's second vRegion to another
    // component; with copies, a third holds the process whole.
    let (_owner, a10) = component_with("memory", 10, &["--mem", "512M"]);
    let o10 = format!("10={a10}");
    let (_home, a9) = component_with(
        "memory",
        9,
        &["--mem", "512M", "--peer", &o10, "--vregion-peers", "10"],
    );
    let (_owner, a12) = component_with("memory", 12, &["--mem", "512M"]);
    let (_whole, a13) = component_with("memory", 13, &["--mem", "512M"]);
    let (o12, o13) = (format!("12={a12}"), format!("13={a13}"));
    let (_home, a11) = component_with(
        "memory",
        11,
        &[
            "--mem",
            "512M",
            "--peer",
            &o12,
            "--peer",
            &o13,
            "--vregion-peers",
            "12",
            "--backup",
            "13",
        ],
    );
    let spread = vec![format!("9={a9}"), o10, format!("11={a11}"), o12, o13];
    println!("  vRegions over two components, and with a third holding a whole copy:");
    side_by_side(
        &spread,
        ("9", "11"),
        "with a whole copy",
        "1 owner redirects",
    );
    for (how, signal, timeout) in [
        ("kill -9", libc::SIGKILL, None),
        ("SIGSTOP", libc::SIGSTOP, Some("500")),
    ] {
        let (mut took, mut ratio) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let (_p, b1) = component_with("memory", 5, &["--mem", "512M", "--backup", "6"]);
            let (_b, b2) = component_with("memory", 6, &["--mem", "512M"]);
            let peers = vec![format!("5={b1}"), format!("6={b2}")];
            let undisturbed = workload("pattern:256M", &peers, "5").0;
            let (_p, b1) = component_with("memory", 7, &["--mem", "512M", "--backup", "8"]);
            let (_b, b2) = component_with("memory", 8, &["--mem", "512M"]);
            let mut cmd = Command::new(VMM);
            cmd.args(["--role", "processor", "--excache", "16M", "--memory", "7"])
                .args(["--peer", &format!("7={b1}"), "--peer", &format!("8={b2}")])
                .args(["--run-workload", "pattern:256M", "--log-level", "info"]);
            if let Some(t) = timeout {
                cmd.args(["--fabric-timeout-ms", t]);
            }
            let child = cmd
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run lego-vmm");
            std::thread::sleep(Duration::from_millis(600));
            // SAFETY: kill(2) on a process this benchmark started.
            unsafe { libc::kill(_p.pid() as i32, signal) };
            let out = child.wait_with_output().expect("wait");
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(out.status.success(), "{err}");
            if let Some(ms) = failover_ms(&err) {
                took.push(ms);
                ratio.push(ran_ms(&err) / undisturbed);
            }
            // SAFETY: as above (a stopped process is killed on drop).
            unsafe { libc::kill(_p.pid() as i32, libc::SIGCONT) };
        }
        if took.is_empty() {
            println!("  fail-over after {how}: the kill never landed during a run");
            continue;
        }
        println!(
            "  fail-over after {how}: {:.0} ms (median of {}), the 256 MiB run {:.2}x an undisturbed one",
            median(took.clone()),
            took.len(),
            median(ratio)
        );
    }
}
