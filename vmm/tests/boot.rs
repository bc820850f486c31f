//! Each monitor boots natively and runs its self-test; serving monitors stop
//! cleanly on SIGINT/SIGTERM.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::*;

/// Parses `ready role=R native=.. boot_ms=.. compute_ratio=.. exits=..`.
fn parse_ready(line: &str) -> HashMap<String, String> {
    let mut words = line.split_whitespace();
    assert_eq!(words.next(), Some("ready"), "not a ready line: {line}");
    words
        .map(|w| {
            let (k, v) = w
                .split_once('=')
                .unwrap_or_else(|| panic!("bad field {w:?} in {line}"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn self_test(role: &str) {
    if !kvm_available() {
        return;
    }
    let out = run(&["--role", role, "--self-test"]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{text}\nstderr:\n{}",
        stderr(&out)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line on stdout: {text}");
    let ready = parse_ready(lines[0]);
    let keys: Vec<&str> = {
        let mut k: Vec<&str> = ready.keys().map(String::as_str).collect();
        k.sort();
        k
    };
    assert_eq!(
        keys,
        ["boot_ms", "compute_ratio", "exits", "native", "role"]
    );
    assert_eq!(ready["role"], role);
    assert_eq!(
        ready["native"], "yes",
        "the guest must run natively here: {text}"
    );
    let boot_ms: f64 = ready["boot_ms"].parse().expect("boot_ms is a number");
    assert!(boot_ms > 0.0 && boot_ms < 2000.0, "boot_ms {boot_ms}");
    let ratio: f64 = ready["compute_ratio"]
        .parse()
        .expect("compute_ratio is a number");
    // Emulated execution is ~1000x; native is ~1x. Leave room for a noisy,
    // shared 2-core CI machine running other tests at the same time.
    assert!(ratio > 0.2 && ratio < 10.0, "compute_ratio {ratio}");
    let exits: u64 = ready["exits"].parse().expect("exits is a number");
    assert!((4..100).contains(&exits), "exits {exits}");
    // The guest's console line carries the role prefix.
    let err = stderr(&out);
    assert!(
        err.contains(&format!("[{role}] {role} self-test: heap of")),
        "stderr:\n{err}"
    );
}

#[test]
fn processor_self_test_runs_natively() {
    self_test("processor");
}

#[test]
fn memory_self_test_runs_natively() {
    self_test("memory");
}

#[test]
fn storage_self_test_runs_natively() {
    self_test("storage");
}

/// Starts a serving monitor, waits for its "booted" console line, sends `signal`.
fn serve_then_signal(role: &str, vcpus: &str, signal: i32) {
    if !kvm_available() {
        return;
    }
    let mut child = vmm()
        .args(["--role", role, "--vcpus", vcpus, "--log-level", "debug"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lego-vmm");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let want = format!("[{role}] {role} monitor booted: 128 MiB RAM, {vcpus} vCPU(s)");
    let mut seen = Vec::new();
    let mut halted = 0;
    let n: usize = vcpus.parse().unwrap_or(1);
    // Wait for the monitor to boot and every vCPU to come up and halt.
    while !(seen.iter().any(|l: &String| l.contains(&want)) && halted == n) {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                if line.contains("halted") {
                    halted += 1;
                }
                seen.push(line);
            }
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "no '{want}' and {n} halted vCPUs within 30 s; saw:\n{}",
                    seen.join("\n")
                );
            }
        }
    }
    // SAFETY: plain kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    let out = wait_with_timeout(child, Duration::from_secs(10), &["serve", role]);
    assert_eq!(out.status.code(), Some(0), "exit after signal {signal}");
}

#[test]
fn memory_monitor_serves_until_sigterm() {
    serve_then_signal("memory", "1", libc::SIGTERM);
}

#[test]
fn storage_monitor_with_four_vcpus_stops_on_sigint() {
    serve_then_signal("storage", "4", libc::SIGINT);
}

#[test]
fn processor_monitor_with_two_vcpus_stops_on_sigterm() {
    serve_then_signal("processor", "2", libc::SIGTERM);
}

#[test]
fn a_signal_during_the_self_test_is_not_a_pass() {
    if !kvm_available() {
        return;
    }
    // A loop of 10^11 iterations runs for tens of seconds: stop it early.
    let child = vmm()
        .args([
            "--role",
            "memory",
            "--self-test",
            "--self-test-iterations",
            "100000000000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lego-vmm");
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = wait_with_timeout(child, Duration::from_secs(10), &["self-test", "signal"]);
    assert_eq!(out.status.code(), Some(128 + libc::SIGTERM));
    assert!(stdout(&out).is_empty(), "no ready line: {}", stdout(&out));
    assert!(
        stderr(&out).contains("before the self-test finished"),
        "{}",
        stderr(&out)
    );
}
