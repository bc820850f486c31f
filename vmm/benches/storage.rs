//! `cargo bench -p lego-vmm --bench storage`: a program's file I/O on a
//! storage component against the same static program on this host writing
//! a file on the host's disk, runs interleaved in the same process.
//!
//! * a sequential write of 256 MiB in 1 MiB writes with an fsync at the end;
//! * its sequential read back;
//! * 2000 random 4 KiB preads;
//! * the median latency of a 4 KiB pwrite + fdatasync (2000 of them).
//!
//! Each with the processor's monitor at 128 MiB (the default: a file
//! cache of about 30 MiB, smaller than the file) and at 2 GiB (about
//! 500 MiB: the file fits).
//!
//! The host's run has all of this host's page cache, which holds the
//! whole file: its read back is a copy from memory. So the 128 MiB rows
//! also compare with the host's program held to 128 MiB by a memory
//! cgroup (v1; its page cache counts), as a user on a machine of that
//! size would run it: its read back comes from the disk. The benchmark
//! sets the cgroup up itself when run as root, and says why not when it
//! cannot.
//!
//! Times inside the program (clock_gettime): boot is not counted. Each
//! figure is a ratio to the host's run next to it; the table prints the
//! median of RUNS ratios. Build the release images first:
//! `cargo build --release --workspace`.

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;

use common::{build_c, component_with, median, under_memory_limit, VMM};

const RUNS: usize = 5;
const MIB: &str = "256";
const COUNT: &str = "2000";
const FIELDS: [(&str, &str); 4] = [
    ("seq_write_ms", "sequential write 256 MiB + fsync"),
    ("seq_read_ms", "sequential read 256 MiB"),
    ("rand_read_ms", "2000 random 4 KiB reads"),
    ("fsync_us", "4 KiB write + fdatasync (median)"),
];

/// The `key=value` numbers of the program's one line.
fn fields(text: &str) -> Vec<f64> {
    FIELDS
        .iter()
        .map(|(key, _)| {
            text.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {key} in {text:?}"))
        })
        .collect()
}

fn main() {
    if !Path::new("/dev/kvm").exists() {
        eprintln!("no /dev/kvm: nothing to measure");
        return;
    }
    let prog = build_c("fsbench");
    let scratch = std::env::temp_dir().join(format!("lego-bench-storage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).expect("scratch directory");
    let disk = scratch.join("disk.img");
    let host_dir = scratch.join("host");
    std::fs::create_dir_all(&host_dir).expect("host directory");
    let (_memory, maddr) = component_with("memory", 1, &["--mem", "512M"]);
    let disk_text = disk.to_string_lossy().into_owned();
    let (_storage, saddr) = component_with(
        "storage",
        3,
        &["--mem", "512M", "--disk", &disk_text, "--disk-size", "1G"],
    );
    let lego = |dir: &str, mem: &str| -> Vec<f64> {
        let out = Command::new(VMM)
            .args(["--role", "processor", "--storage", "3", "--excache", "64M"])
            .args(["--mem", mem])
            .args([
                "--peer",
                &format!("1={maddr}"),
                "--peer",
                &format!("3={saddr}"),
            ])
            .arg("--")
            .arg(&prog)
            .args([dir, MIB, COUNT])
            .output()
            .expect("run lego-vmm");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        fields(&text)
    };
    let host_dir_text = host_dir.to_string_lossy().into_owned();
    let host_args = [host_dir_text.as_str(), MIB, COUNT];
    let host = || -> Vec<f64> {
        let out = Command::new(&prog)
            .args(host_args)
            .output()
            .expect("run the program on the host");
        assert!(out.status.success());
        fields(&String::from_utf8_lossy(&out.stdout))
    };
    // The host held to 128 MiB, if this host lets the bench do it.
    let limited = |mem: &str| -> Option<Vec<f64>> {
        if mem != "128M" {
            return None;
        }
        match under_memory_limit(&prog, &host_args, 128 << 20) {
            Ok(out) => Some(fields(&out)),
            Err(why) => {
                eprintln!("no host run held to 128 MiB: {why}");
                None
            }
        }
    };
    for mem in ["128M", "2G"] {
        let mut ratios = vec![Vec::new(); FIELDS.len()];
        let mut lego_raw = vec![Vec::new(); FIELDS.len()];
        let mut host_raw = vec![Vec::new(); FIELDS.len()];
        let mut held_ratios = vec![Vec::new(); FIELDS.len()];
        let mut held_raw = vec![Vec::new(); FIELDS.len()];
        for run in 0..RUNS {
            let h = host();
            let l = lego("/", mem);
            let held = limited(mem);
            eprintln!(
                "run {}: host {h:?}, lego {l:?}, host held {held:?}",
                run + 1
            );
            for i in 0..FIELDS.len() {
                ratios[i].push(l[i] / h[i]);
                lego_raw[i].push(l[i]);
                host_raw[i].push(h[i]);
                if let Some(held) = &held {
                    held_ratios[i].push(l[i] / held[i]);
                    held_raw[i].push(held[i]);
                }
            }
        }
        println!("storage: {RUNS} runs each, the same static program on Lego (processor --mem {mem}, storage component on a 1 GiB disk) and on this host");
        let held = !held_raw[0].is_empty();
        let heads = if held {
            format!(" {:>14} {:>16}", "host (128 MiB)", "Lego / host 128")
        } else {
            String::new()
        };
        println!(
            "{:<36} {:>10} {:>10} {:>16}{heads}",
            "", "host", "Lego", "Lego / host"
        );
        for (i, (key, what)) in FIELDS.iter().enumerate() {
            let unit = if key.ends_with("_us") { "us" } else { "ms" };
            let more = if held {
                format!(
                    " {:>12.1}{unit} {:>15.2}x",
                    median(held_raw[i].clone()),
                    median(held_ratios[i].clone())
                )
            } else {
                String::new()
            };
            println!(
                "{:<36} {:>8.1}{unit} {:>8.1}{unit} {:>15.2}x{more}",
                what,
                median(host_raw[i].clone()),
                median(lego_raw[i].clone()),
                median(ratios[i].clone()),
            );
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let _ = std::fs::remove_file(&prog);
}
