//! The whole-component fuzzer, briefly: a real memory component gets
//! batches of structured, malformed, forged and oversized frames over TCP
//! and shared memory, and a real client checks after each batch that it
//! still serves. CI runs it for longer (`.ci/run`).

mod common;

use common::*;

#[test]
fn a_memory_component_survives_a_few_seconds_of_fuzzing() {
    if !kvm_available() {
        return;
    }
    let fuzz = std::path::Path::new(env!("CARGO_BIN_EXE_lego-fabric-fuzz"));
    let child = std::process::Command::new(fuzz)
        .args(["--seconds", "5", "--vmm", VMM])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start lego-fabric-fuzz");
    let out = wait_with_timeout(child, std::time::Duration::from_secs(120), &["fuzz"]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("the component served every check"), "{text}");
    let batches: u64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("lego-fabric-fuzz: ")?
                .strip_suffix(" batches checked")
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(batches >= 1, "no batch checked in 5 s: {text}");
}
