//! `cargo bench -p lego-vmm --bench boot`: boot-to-ready per role, the
//! compute ratio, exits per boot and the VMM's resident memory beyond guest
//! RAM, as medians of several runs of the real `lego-vmm --self-test`.
//!
//! Baselines measured in the same run, because absolute times drift on
//! shared machines: starting a trivial process (`/bin/true`) and starting
//! lego-vmm without KVM (`--version`). Build the release images first:
//! `cargo build --release --workspace`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const VMM: &str = env!("CARGO_BIN_EXE_lego-vmm");
const RUNS: usize = 7;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn time_command(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let status = cmd.status().expect("run command");
    assert!(status.success(), "{cmd:?} failed");
    start.elapsed()
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

fn main() {
    if !Path::new(VMM).with_file_name("guest-mmon").exists() {
        eprintln!(
            "the release guest images are missing: run 'cargo build --release --workspace' first"
        );
        std::process::exit(2);
    }
    let true_ms = median(
        (0..RUNS)
            .map(|_| time_command(&mut Command::new("/bin/true")).as_secs_f64() * 1e3)
            .collect(),
    );
    let version_ms = median(
        (0..RUNS)
            .map(|_| {
                time_command(
                    Command::new(VMM)
                        .arg("--version")
                        .stdout(std::process::Stdio::null()),
                )
                .as_secs_f64()
                    * 1e3
            })
            .collect(),
    );
    println!("baselines (median of {RUNS}): spawn /bin/true {true_ms:.2} ms, lego-vmm --version {version_ms:.2} ms");
    println!(
        "{:<10} {:>8} {:>10} {:>10} {:>14} {:>6} {:>7} {:>16}",
        "role",
        "boot_ms",
        "x /bin/true",
        "x --version",
        "compute_ratio",
        "exits",
        "native",
        "vmm_rss_kib"
    );
    for role in ["processor", "memory", "storage"] {
        let (mut boot, mut ratio, mut exits, mut rss, mut native) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let out = Command::new(VMM)
                .args(["--role", role, "--self-test", "--log-level", "info"])
                .output()
                .expect("run lego-vmm");
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "lego-vmm failed:\n{stderr}");
            let line = stdout.lines().next().expect("ready line");
            boot.push(field(line, "boot_ms").parse::<f64>().expect("boot_ms"));
            ratio.push(field(line, "compute_ratio").parse::<f64>().expect("ratio"));
            exits.push(field(line, "exits").parse::<f64>().expect("exits"));
            native.push(field(line, "native") == "yes");
            let kib = stderr
                .lines()
                .find_map(|l| l.split("resident memory beyond guest RAM: ").nth(1))
                .and_then(|r| r.trim_end_matches(" KiB").parse::<f64>().ok())
                .expect("resident memory log line");
            rss.push(kib);
        }
        let b = median(boot);
        println!(
            "{:<10} {:>8.2} {:>10.2} {:>10.2} {:>14.3} {:>6} {:>7} {:>16}",
            role,
            b,
            b / true_ms,
            b / version_ms,
            median(ratio),
            median(exits),
            if native.iter().all(|&n| n) {
                "yes"
            } else {
                "NO"
            },
            median(rss)
        );
    }
}
