//! The rack as a user times it (`cargo bench -p lego-globals --bench rack`):
//! `lego up` to ready, `lego run` of a trivial static program to its exit,
//! and 8 such runs at once, each a median of several rounds and a ratio to
//! a baseline measured in the same run (the host's fork+exec of the same
//! program; one lego-vmm self-test boot). Needs /dev/kvm and busybox, and
//! the release build of the whole workspace beside it (`cargo build
//! --release --workspace` first: a bench builds its own package only).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BUSYBOX: &str = "/bin/busybox";
const ROUNDS: usize = 5;
const RUNS: usize = 15;

fn bin(name: &str) -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_lego"))
        .parent()
        .unwrap()
        .join(name)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn lego(home: &Path, args: &[&str]) {
    let out = Command::new(bin("lego"))
        .args(args)
        .env("LEGO_HOME", home)
        .env_remove("LEGO_GLOBALS")
        .stdin(Stdio::null())
        .output()
        .expect("run lego");
    assert!(
        out.status.success(),
        "lego {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `n` copies of `cmd` started together; the time until all have exited.
fn together(n: usize, cmd: impl Fn() -> Command) -> Duration {
    let t = Instant::now();
    let children: Vec<_> = (0..n)
        .map(|_| {
            cmd()
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for mut c in children {
        assert!(c.wait().expect("wait").success());
    }
    t.elapsed()
}

fn main() {
    if std::fs::metadata("/dev/kvm").is_err() || !Path::new(BUSYBOX).exists() {
        eprintln!("rack bench: needs /dev/kvm and {BUSYBOX}; skipped");
        return;
    }
    let home = std::env::temp_dir().join(format!("lego-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);

    // lego up to ready, against one component's boot and self-test.
    let mut up = Vec::new();
    let mut boot = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let out = Command::new(bin("lego-vmm"))
            .args([
                "--role",
                "memory",
                "--self-test",
                "--self-test-iterations",
                "1",
            ])
            .output()
            .expect("lego-vmm");
        assert!(out.status.success());
        boot.push(t.elapsed());
        let t = Instant::now();
        lego(&home, &["up"]);
        up.push(t.elapsed());
        lego(&home, &["down"]);
    }
    let (up, boot) = (median(up), median(boot));
    println!(
        "lego up to ready: {:.0} ms (median of {ROUNDS}; one lego-vmm boot and self-test {:.0} ms, ratio {:.1}; goal under 1000 ms)",
        ms(up),
        ms(boot),
        ms(up) / ms(boot)
    );

    lego(&home, &["up"]);
    // Once, so that the runs below find busybox uploaded.
    lego(&home, &["run", BUSYBOX, "true"]);
    let lego_run = || {
        let mut c = Command::new(bin("lego"));
        c.args(["run", BUSYBOX, "true"])
            .env("LEGO_HOME", &home)
            .env_remove("LEGO_GLOBALS");
        c
    };
    let host_run = || {
        let mut c = Command::new(BUSYBOX);
        c.arg("true");
        c
    };
    // Interleaved, so that drift on this shared host hits both alike.
    let (mut on_lego, mut on_host) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        on_lego.push(together(1, lego_run));
        on_host.push(together(1, host_run));
    }
    let (one, host_one) = (median(on_lego), median(on_host));
    println!(
        "lego run of busybox true, to its exit: {:.1} ms (median of {RUNS}); the host's fork+exec of it {:.2} ms; ratio {:.0} (goal under 100 ms)",
        ms(one),
        ms(host_one),
        ms(one) / ms(host_one)
    );
    let (mut eight, mut host_eight) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        eight.push(together(8, lego_run));
        host_eight.push(together(8, host_run));
    }
    let (eight, host_eight) = (median(eight), median(host_eight));
    println!(
        "8 lego runs at once, all to their exit: {:.1} ms (median of {ROUNDS}); {:.1}x one run; the host's 8 at once {:.2} ms, ratio {:.0}",
        ms(eight),
        ms(eight) / ms(one),
        ms(host_eight),
        ms(eight) / ms(host_eight)
    );
    lego(&home, &["down"]);
    let _ = std::fs::remove_dir_all(&home);
}
