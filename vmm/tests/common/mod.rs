//! Shared by the integration tests: run the real `lego-vmm` binary, which
//! boots real guest images under /dev/kvm.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const VMM: &str = env!("CARGO_BIN_EXE_lego-vmm");

/// Whether KVM tests can run. In CI a missing /dev/kvm fails the test;
/// elsewhere the test is skipped with a note.
pub fn kvm_available() -> bool {
    if Path::new("/dev/kvm").exists() {
        assert!(
            image("guest-mmon").exists(),
            "the guest images are missing next to {VMM}: run 'cargo build --workspace' before 'cargo test' (the README's test command does)"
        );
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("/dev/kvm is missing on this CI machine: these tests boot real guests and cannot run without KVM");
    }
    eprintln!("skipping: /dev/kvm is missing (outside CI, KVM tests skip)");
    false
}

/// A guest image built by the workspace, next to lego-vmm.
pub fn image(name: &str) -> PathBuf {
    Path::new(VMM).with_file_name(name)
}

pub fn vmm() -> Command {
    let mut cmd = Command::new(VMM);
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs lego-vmm to completion with a time limit, so a hang fails the test.
pub fn run(args: &[&str]) -> Output {
    let child = vmm()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lego-vmm");
    wait_with_timeout(child, Duration::from_secs(60), args)
}

pub fn wait_with_timeout(mut child: Child, limit: Duration, what: &[&str]) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait for lego-vmm").is_some() {
            return child.wait_with_output().expect("collect output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect output");
            panic!(
                "lego-vmm {what:?} did not finish in {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts the exit code and that stderr contains every needle.
pub fn expect_failure(out: &Output, code: i32, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr:\n{err}");
    for needle in needles {
        assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
    }
    assert!(
        !err.contains("RUST_BACKTRACE") && !err.contains("panicked at vmm/"),
        "the VMM itself crashed:\n{err}"
    );
}

/// A scratch directory unique to one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lego-vmm-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}
