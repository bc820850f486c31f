//! The `lego` tool as a user types it: `up`, `status`, `run`, `cp`, `ps`,
//! `kill` and `down` on a real rack: `lego-globals` and real `lego-vmm`
//! components booting under /dev/kvm (the workspace's build, next to the
//! `lego` binary); and its sentences for bad command lines.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The real lego-vmm and its guest images, where `cargo build --workspace`
/// put them (beside the `lego` binary the test runs).
fn vmm() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_lego"));
    let vmm = bin.parent().unwrap().join("lego-vmm");
    assert!(
        vmm.is_file(),
        "{} is missing: run `cargo build --workspace` first",
        vmm.display()
    );
    vmm
}

/// Whether this host can boot components (and has the static busybox the
/// runs use).
fn can_run() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
        && Path::new(BUSYBOX).is_file()
}

const BUSYBOX: &str = "/bin/busybox";

fn lego_cmd(home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lego"));
    c.args(args)
        .env("LEGO_HOME", home)
        .env("LEGO_VMM", vmm())
        .env("LEGO_GLOBALS_BIN", env!("CARGO_BIN_EXE_lego-globals"))
        .env_remove("LEGO_GLOBALS");
    c
}

fn lego(home: &Path, args: &[&str]) -> Output {
    lego_cmd(home, args).stdin(Stdio::null()).output().unwrap()
}

fn lego_with_stdin(home: &Path, args: &[&str], input: &[u8]) -> Output {
    let mut child = lego_cmd(home, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A client that stopped early closed its stdin: the caller's checks
    // of its status and stderr say why, where a panic here said EPIPE.
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().unwrap()
}

/// Stops the rack when a test ends, even by a failed assertion, so that
/// no component outlives it.
struct Down<'a>(&'a Path);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = lego(self.0, &["down"]);
    }
}

/// `lego up ARGS` in `home`, which must succeed.
fn up(home: &Path, args: &[&str]) {
    let mut argv = vec!["up"];
    argv.extend_from_slice(args);
    let out = lego(home, &argv);
    assert!(
        out.status.success(),
        "lego up failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Starts a run that prints "ready" and then sleeps; returns once it is
/// ready.
fn start_sleeper(home: &Path) -> Child {
    let mut child = lego_cmd(home, &["run", BUSYBOX, "sh", "-c", "echo ready; sleep 30"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    child
}

/// A `lego-vmm` started by a test outside `lego up`, killed when dropped.
struct ByHand(Child);

impl Drop for ByHand {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A memory component started by hand into the rack in `home` (with `id`,
/// or a new one), listening on a port the host picks; its log goes to
/// `home/<log>`.
fn memory_by_hand(home: &Path, id: Option<u32>, log: &str) -> ByHand {
    let addr = std::fs::read_to_string(home.join("rack/globals.addr")).unwrap();
    let mut cmd = Command::new(vmm());
    cmd.args(["--role", "memory", "--listen", "127.0.0.1:0"]);
    if let Some(id) = id {
        cmd.args(["--id", &id.to_string()]);
    }
    let child = cmd
        .args(["--globals", addr.trim(), "--mem", "512M"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(home.join(log)).unwrap())
        .spawn()
        .unwrap();
    ByHand(child)
}

/// Starts `busybox sh -c script` as a run, its output piped.
fn spawn_script(home: &Path, script: &str, stdin: Stdio) -> Child {
    lego_cmd(home, &["run", BUSYBOX, "sh", "-c", script])
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits up to `secs` for `ready`, polling every 100 ms; fails with
/// `what()` if it never is.
fn wait_until(secs: u64, mut ready: impl FnMut() -> bool, what: impl Fn() -> String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !ready() {
        assert!(std::time::Instant::now() < deadline, "{}", what());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The pid of the run whose command line holds `needle`, as `lego ps` shows it.
fn pid_in_ps(home: &Path, needle: &str) -> u32 {
    let ps = lego(home, &["ps"]);
    assert!(ps.status.success(), "{}", text(&ps.stderr));
    let out = text(&ps.stdout);
    let row = out
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("the run is not in ps:\n{out}"));
    row.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_rack_comes_up_runs_copies_lists_kills_and_goes_down() {
    if !can_run() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let _down = Down(h);
    let up = lego(
        h,
        &["up", "--memory", "2", "--processors", "1", "--storage", "1"],
    );
    assert!(
        up.status.success(),
        "{}\n{}",
        text(&up.stdout),
        text(&up.stderr)
    );
    let out = text(&up.stdout);
    assert!(
        out.contains("rack up in") && out.contains("2 memory, 1 storage, 1 processor"),
        "{out}"
    );
    assert!(lego(h, &["up"]).status.success());
    assert!(text(&lego(h, &["up"]).stdout).contains("a rack is already up"));

    let status = lego(h, &["status"]);
    let out = text(&status.stdout);
    assert!(out.contains("4 components, 4 up"), "{out}");

    // A host program is uploaded and run; stdio and the exit status come back.
    let run = lego_with_stdin(
        h,
        &[
            "run",
            "--env",
            "GREETING=hi",
            BUSYBOX,
            "sh",
            "-c",
            "echo \"out $0 $GREETING\"; echo err >&2; cat; exit 3",
            "one",
        ],
        b"from stdin\n",
    );
    assert_eq!(run.status.code(), Some(3), "{}", text(&run.stderr));
    assert_eq!(text(&run.stdout), "out one hi\nfrom stdin\n");
    assert_eq!(text(&run.stderr), "err\n");
    // A re-run uploads nothing.
    let again = lego_with_stdin(h, &["--log-level", "info", "run", BUSYBOX, "true"], b"");
    assert_eq!(again.status.code(), Some(0));
    assert!(
        text(&again.stderr).contains("is already in vNode default"),
        "{}",
        text(&again.stderr)
    );
    // The repository's demo, as the README runs it.
    let demo = Path::new(env!("CARGO_BIN_EXE_lego"))
        .parent()
        .unwrap()
        .join("lego-demo");
    let run = lego(h, &["run", demo.to_str().unwrap(), "--mem", "16M"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert!(
        text(&run.stdout).contains("primes below 33554432:  2063689"),
        "{}",
        text(&run.stdout)
    );

    // Files both ways, in another vNode.
    let notes = h.join("notes.txt");
    std::fs::write(&notes, b"some notes\n").unwrap();
    let cp = lego(h, &["cp", notes.to_str().unwrap(), "lego:web:/data/"]);
    assert!(cp.status.success(), "{}", text(&cp.stderr));
    let back = h.join("back.txt");
    let cp = lego(
        h,
        &["cp", "lego:web:/data/notes.txt", back.to_str().unwrap()],
    );
    assert!(cp.status.success(), "{}", text(&cp.stderr));
    assert_eq!(std::fs::read(&back).unwrap(), b"some notes\n");
    // The default vNode does not have it.
    let missing = h.join("missing.txt");
    let cp = lego(
        h,
        &["cp", "lego:/data/notes.txt", missing.to_str().unwrap()],
    );
    assert_eq!(cp.status.code(), Some(1));
    assert!(
        text(&cp.stderr).starts_with("lego cp: default:/data/notes.txt was not read:"),
        "{}",
        text(&cp.stderr)
    );
    assert!(!missing.exists());
    let status = text(&lego(h, &["status"]).stdout);
    assert!(
        status.contains("web") && status.contains("default"),
        "{status}"
    );
    // web holds its root, /data and the notes: 3 inodes, one 4 KiB block.
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("web ") && l.ends_with("4 KiB in 3 inodes")),
        "{status}"
    );
    forged_frames_reach_no_vnode(h);

    // Several runs at once, each with its own stdio.
    let runs: Vec<(Child, String)> = (0..4)
        .map(|i| {
            let mut c = lego_cmd(h, &["run", BUSYBOX, "tr", "a-z", "A-Z"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let input = format!("run {i} says hello\n").repeat(200 * (i + 1));
            c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
            (c, input.to_uppercase())
        })
        .collect();
    for (c, expect) in runs {
        let out = c.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout) == expect,
            "a concurrent run's output was mixed up"
        );
    }

    // The memory manager homes a run at the memory component with the
    // most free memory: with one run holding pages at one, the next one's
    // pages go to the other.
    let holder = lego_cmd(
        h,
        &[
            "run",
            BUSYBOX,
            "sh",
            "-c",
            "x=$(head -c 12000000 /dev/zero | tr '\\0' a); echo ready; sleep 15; echo ${#x}",
        ],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let used = |h: &Path| -> Vec<u64> {
        let mut m: Vec<(u32, u64)> = components(h)
            .iter()
            .filter(|c| c.role == lego_control::Role::Memory)
            .map(|c| (c.id, c.load.used_bytes))
            .collect();
        m.sort();
        m.into_iter().map(|(_, u)| u).collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let first = loop {
        let u = used(h);
        if let Some(i) = u.iter().position(|&b| b >= 8 << 20) {
            break i;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no memory component reports the run's pages: {u:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    // The managers also place its vRegions by free memory: its home keeps
    // the first (text and data); a later one (its stack, or the 12 MB the
    // shell mapped) goes to the other memory component, which has as much
    // memory free or more (on a tie a vRegion goes to another component).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut m: Vec<(u32, u32, u32)> = components(h)
            .iter()
            .filter(|c| c.role == lego_control::Role::Memory)
            .map(|c| (c.id, c.load.processes, c.load.held))
            .collect();
        m.sort();
        if (0..2).any(|i| m[i].1 >= 1 && m[1 - i].2 >= 1) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run's vRegions are not spread (id, homed, held): {m:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    forged_frames_reach_no_pages(h);
    let second = lego_cmd(
        h,
        &[
            "run",
            BUSYBOX,
            "sh",
            "-c",
            "x=$(head -c 12000000 /dev/zero | tr '\\0' b); sleep 3; echo ${#x}",
        ],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let u = used(h);
        if u.iter()
            .enumerate()
            .any(|(i, &b)| i != first && b >= 8 << 20)
        {
            break;
        }
        if std::time::Instant::now() >= deadline {
            let out = second.wait_with_output().unwrap();
            panic!(
                "the second run was not homed at the other memory component: {u:?}; it said {} / {}",
                text(&out.stdout),
                text(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    for c in [holder, second] {
        let out = c.wait_with_output().unwrap();
        assert!(
            text(&out.stdout).ends_with("12000000\n"),
            "{}",
            text(&out.stdout)
        );
    }
    // The processor's ExCache hit ratio, sampled while they ran, shows in
    // lego status beside its miss histogram.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = text(&lego(h, &["status"]).stdout);
        if status.contains("ExCache: hit ratio ") && status.contains("demand-miss latency") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no hit ratio in the status: {status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }

    // A long run shows in ps and is killed by lego kill.
    let run = start_sleeper(h);
    let pid = pid_in_ps(h, "sleep 30");
    let kill = lego(h, &["kill", &pid.to_string()]);
    assert!(kill.status.success(), "{}", text(&kill.stderr));
    assert!(text(&kill.stdout).contains(&format!("sent SIGTERM to process {pid}")));
    assert_eq!(
        run.wait_with_output().unwrap().status.code(),
        Some(128 + 15)
    );
    let kill = lego(h, &["kill", "-9", &pid.to_string()]);
    assert_eq!(kill.status.code(), Some(1));
    assert!(text(&kill.stderr).contains(&format!("no processor took SIGKILL for process {pid}")));

    // Ctrl-C reaches the program as SIGINT.
    let run = start_sleeper(h);
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(run.id() as i32, libc::SIGINT) };
    assert_eq!(run.wait_with_output().unwrap().status.code(), Some(128 + 2));

    let down = lego(h, &["down"]);
    assert!(down.status.success());
    assert!(
        text(&down.stdout).starts_with("rack down: 5 processes stopped"),
        "{}",
        text(&down.stdout)
    );
    assert_eq!(text(&lego(h, &["down"]).stdout), "no rack is up\n");
    let status = lego(h, &["status"]);
    assert_eq!(status.status.code(), Some(1));
    assert!(text(&status.stderr).starts_with("lego status: no rack is up"));
    let run = lego(h, &["run", "/bin/true"]);
    assert_eq!(run.status.code(), Some(125));
}

#[test]
fn a_component_that_dies_at_start_fails_up_with_its_log() {
    let home = tempfile::tempdir().unwrap();
    // lego-vmm refuses guest RAM that is not a multiple of 2 MiB.
    let up = lego(home.path(), &["up", "--memory", "1", "--mem", "3M"]);
    assert_eq!(up.status.code(), Some(1));
    let err = text(&up.stderr);
    assert!(
        err.contains("memory-1 exited") && err.contains("before it was up"),
        "{err}"
    );
    assert!(
        err.contains("--mem"),
        "the component's own sentence is not shown: {err}"
    );
    // Nothing is left running and no rack is recorded.
    assert_eq!(
        text(&lego(home.path(), &["down"]).stdout),
        "no rack is up\n"
    );
    assert!(!home.path().join("rack/globals.addr").exists());
}

#[test]
fn bad_command_lines_get_a_sentence_and_a_failure() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let cases: [(&[&str], &str); 6] = [
        (
            &["cp", "a", "b"],
            "lego cp: one of SRC and DST must be in a vNode",
        ),
        (
            &["cp", "lego:/a", "lego:/b"],
            "lego cp: one of SRC and DST must be a host path",
        ),
        (
            &["cp", "a", "lego:web"],
            "names no absolute path in a vNode",
        ),
        (
            &["run", "--vnode", "x", "relative/prog"],
            "is neither a file on this host nor an absolute path",
        ),
        (
            &["status"],
            "lego status: no rack is up: start one on this machine with `lego up`",
        ),
        (
            &["status", "--globals", "127.0.0.1:1"],
            "the global managers at 127.0.0.1:1 do not answer",
        ),
    ];
    for (args, sentence) in cases {
        let out = lego(h, args);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            text(&out.stderr).contains(sentence),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // clap's own errors: missing program, bad signal, bad size.
    for args in [
        &["run"][..],
        &["kill", "-s", "NOPE", "3"],
        &["up", "--mem", "lots"],
    ] {
        let out = lego(h, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

/// The rack's components as the managers see them.
fn components(home: &Path) -> Vec<lego_control::Component> {
    let addr = std::fs::read_to_string(home.join("rack/globals.addr")).unwrap();
    let mut g = lego_globals::client::Globals::connect(addr.trim()).unwrap();
    g.status().unwrap().0
}

#[test]
fn a_dead_component_shows_down_and_a_restarted_globals_finds_the_rack_again() {
    if !can_run() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let _down = Down(h);
    let up = lego(h, &["up", "--memory", "1"]);
    assert!(up.status.success(), "{}", text(&up.stderr));
    let run = lego(h, &["run", BUSYBOX, "echo", "before"]);
    assert_eq!(text(&run.stdout), "before\n", "{}", text(&run.stderr));

    // lego-globals killed -9 and started again on its state: the
    // components register again, ids and vNodes are kept, runs go on.
    let addr = std::fs::read_to_string(h.join("rack/globals.addr")).unwrap();
    let addr = addr.trim().to_owned();
    let before = components(h);
    let pids = std::fs::read_to_string(h.join("rack/rack.pids")).unwrap();
    let globals_pid: i32 = pids
        .lines()
        .find(|l| l.contains("globals"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no globals in rack.pids:\n{pids}"));
    // SAFETY: kill(2) on a process this test's rack started.
    unsafe { libc::kill(globals_pid, libc::SIGKILL) };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let state = h.join("rack/globals");
    let mut again = Command::new(env!("CARGO_BIN_EXE_lego-globals"))
        .args(["--listen", &addr, "--state", state.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = std::panic::catch_unwind(|| components(h)).unwrap_or_default();
        if now.len() == before.len() && now.iter().all(|c| c.up) {
            let ids = |v: &[lego_control::Component]| {
                let mut x: Vec<(u32, String)> =
                    v.iter().map(|c| (c.id, c.fabric.clone())).collect();
                x.sort();
                x
            };
            assert_eq!(ids(&now), ids(&before), "ids changed across the restart");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the rack did not come back to the restarted managers: {now:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let run = lego(h, &["run", "--log-level", "info", BUSYBOX, "echo", "after"]);
    assert_eq!(text(&run.stdout), "after\n", "{}", text(&run.stderr));
    assert!(
        text(&run.stderr).contains("is already in vNode default"),
        "the vNode's upload was forgotten: {}",
        text(&run.stderr)
    );

    // The storage component dies: shown down within a few seconds, and a
    // run that needs it fails with a sentence naming it.
    let storage = components(h)
        .into_iter()
        .find(|c| c.role == lego_control::Role::Storage)
        .unwrap();
    // SAFETY: kill(2) on a process this test's rack started.
    unsafe { libc::kill(storage.host_pid as i32, libc::SIGKILL) };
    let start = std::time::Instant::now();
    loop {
        let status = text(&lego(h, &["status"]).stdout);
        if status
            .lines()
            .any(|l| l.starts_with(&format!("{} ", storage.id)) && l.contains("DOWN"))
        {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(8),
            "the dead storage component is not shown down:\n{status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let run = lego(h, &["run", BUSYBOX, "echo", "no"]);
    assert_eq!(run.status.code(), Some(125));
    let err = text(&run.stderr);
    assert!(
        err.contains(&format!("storage component {}", storage.id)) && err.contains("down"),
        "{err}"
    );
    let _ = again.kill();
    let _ = again.wait();
}

/// A hand-made fabric frame for a vNode's file, from a component the
/// managers did not grant the vNode to (a tool holding the rack key), is
/// refused by the storage component's VMM; so is one without a vNode.
fn forged_frames_reach_no_vnode(home: &Path) {
    use lego_proto::storage::*;
    let addr = std::fs::read_to_string(home.join("rack/globals.addr")).unwrap();
    let mut g = lego_globals::client::Globals::connect(addr.trim()).unwrap();
    let (components, vnodes) = g.status().unwrap();
    let storage = components
        .iter()
        .find(|c| c.role == lego_control::Role::Storage)
        .unwrap();
    let web = vnodes.iter().find(|v| v.name == "web").unwrap();
    let key_path = lego_wire::key::RackKey::default_path().unwrap();
    let key = lego_wire::key::RackKey::load_or_create(&key_path).unwrap();
    let mut c = lego_wire::client::TcpClient::connect(
        &storage.fabric,
        90,
        lego_wire::auth::ROLE_TOOL,
        &key,
        std::time::Duration::from_secs(10),
    )
    .unwrap();
    for vnode in [web.id, 0] {
        let head = StoreRequest {
            op: OP_STAT,
            vnode,
            ..Default::default()
        };
        let body = c
            .data(
                storage.id,
                &encode_request(&head, b"/data/notes.txt", &[], &[]),
            )
            .unwrap();
        let (reply, _) = decode_reply(&body).unwrap();
        assert_eq!(
            reply.errno, EACCES,
            "a forged request for vNode {vnode} was served"
        );
    }
}

/// Hand-made fabric frames (a tool holding the rack key) asking the memory
/// components for the mappings of the processor's processes: every space
/// id a run may have had is refused (ESRCH), never served, while a run
/// holds pages there.
fn forged_frames_reach_no_pages(home: &Path) {
    use lego_proto::memory::*;
    let all = components(home);
    let processor = all
        .iter()
        .find(|c| c.role == lego_control::Role::Processor)
        .unwrap();
    // The processor's process ids in a rack: its component id in the top
    // twelve bits, its lego-vmm's pid's low ten bits below them.
    let base = processor.id << 20 | (processor.host_pid & 0x3ff) << 10;
    let key_path = lego_wire::key::RackKey::default_path().unwrap();
    let key = lego_wire::key::RackKey::load_or_create(&key_path).unwrap();
    for m in all.iter().filter(|c| c.role == lego_control::Role::Memory) {
        let mut c = lego_wire::client::TcpClient::connect(
            &m.fabric,
            91,
            lego_wire::auth::ROLE_TOOL,
            &key,
            std::time::Duration::from_secs(10),
        )
        .unwrap();
        for space in 1..40 {
            let req = MemRequest {
                op: OP_MAPS,
                pid: base | space,
                ..Default::default()
            };
            let body = c.data(m.id, zerocopy::IntoBytes::as_bytes(&req)).unwrap();
            let (reply, _) = <MemReply as zerocopy::FromBytes>::read_from_prefix(&body).unwrap();
            assert_ne!(
                reply.status,
                OK,
                "memory component {} gave process {:#x}'s mappings to a forged frame",
                m.id,
                base | space
            );
        }
        // Nor can a forged frame claim a process id the processor has not
        // used yet: its OP_NEW is refused, so the processor's own later
        // OP_NEW for it is not.
        let req = MemRequest {
            op: OP_NEW,
            pid: base | 1000,
            ..Default::default()
        };
        let body = c.data(m.id, zerocopy::IntoBytes::as_bytes(&req)).unwrap();
        let (reply, _) = <MemReply as zerocopy::FromBytes>::read_from_prefix(&body).unwrap();
        assert_eq!(
            reply.status,
            ESRCH,
            "memory component {} let a forged frame make process {:#x}",
            m.id,
            base | 1000
        );
    }
}

/// One processor runs vNodes whose files are on either of two storage
/// components: a run's file calls go to its vNode's component (the other
/// one's inode numbers tagged with its id in the processor), a vNode sees
/// only its own files, and `lego cp` reaches both.
#[test]
fn one_processor_serves_vnodes_on_two_storage_components() {
    if !can_run() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let _down = Down(h);
    up(h, &["--memory", "1", "--storage", "2", "--processors", "1"]);
    let run = lego(
        h,
        &[
            "run",
            "--vnode",
            "apples",
            "--",
            BUSYBOX,
            "sh",
            "-c",
            "echo apple > /f && mkdir -p /d/e && echo pip > /d/e/g && cat /f",
        ],
    );
    assert_eq!(text(&run.stdout), "apple\n", "{}", text(&run.stderr));
    let addr = std::fs::read_to_string(h.join("rack/globals.addr")).unwrap();
    let vnodes = || {
        let mut g = lego_globals::client::Globals::connect(addr.trim()).unwrap();
        g.status().unwrap().1
    };
    let storage_of = |name: &str| {
        vnodes()
            .iter()
            .find(|v| v.name == name)
            .map(|v| v.storage)
            .unwrap()
    };
    let apples = storage_of("apples");
    // Once the managers have heard that apples' component holds more (the
    // program was uploaded there), a new vNode goes to the other.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let used: Vec<(u32, u64)> = components(h)
            .iter()
            .filter(|c| c.role == lego_control::Role::Storage)
            .map(|c| (c.id, c.load.used_bytes))
            .collect();
        let of = |id: u32| used.iter().find(|u| u.0 == id).map_or(0, |u| u.1);
        if used.iter().any(|&(id, b)| id != apples && of(apples) > b) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the storage components' use does not show the upload: {used:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let run = lego(
        h,
        &[
            "run",
            "--vnode",
            "bananas",
            "--",
            BUSYBOX,
            "sh",
            "-c",
            "cat /f 2>/dev/null || echo none; ls /d 2>/dev/null; echo banana > /f; \
             mkdir -p /d/e && echo peel > /d/e/g; find /d -type f; cat /f /d/e/g; \
             [ \"$(stat -c %i /f)\" = \"$(ls -i /f | awk '{print $1}')\" ] && echo same inode",
        ],
    );
    assert_eq!(
        text(&run.stdout),
        "none\n/d/e/g\nbanana\npeel\nsame inode\n",
        "{}",
        text(&run.stderr)
    );
    let bananas = storage_of("bananas");
    assert_ne!(apples, bananas, "both vNodes are on one storage component");
    // apples' files are where they were, untouched by bananas' run.
    let run = lego(
        h,
        &[
            "run", "--vnode", "apples", "--", BUSYBOX, "cat", "/f", "/d/e/g",
        ],
    );
    assert_eq!(text(&run.stdout), "apple\npip\n", "{}", text(&run.stderr));
    for (vnode, want) in [("apples", "apple\n"), ("bananas", "banana\n")] {
        let to = h.join(format!("{vnode}.txt"));
        let cp = lego(
            h,
            &["cp", &format!("lego:{vnode}:/f"), to.to_str().unwrap()],
        );
        assert!(cp.status.success(), "{}", text(&cp.stderr));
        assert_eq!(std::fs::read_to_string(&to).unwrap(), want);
    }
}

/// A memory component started by hand joins a running rack: the processor
/// and the other memory component learn it from the managers (it was not
/// there when they registered), and runs use it, as their home or as the
/// owner of their vRegions.
#[test]
fn a_memory_component_that_joins_later_is_used() {
    if !can_run() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let _down = Down(h);
    up(h, &["--memory", "1"]);
    let late = memory_by_hand(h, None, "late.log");
    // (id, used, homed, held) of a memory component up.
    type Row = (u32, u64, u32, u32);
    let memory = |h: &Path| -> Vec<Row> {
        components(h)
            .iter()
            .filter(|c| c.role == lego_control::Role::Memory && c.up)
            .map(|c| (c.id, c.load.used_bytes, c.load.processes, c.load.held))
            .collect()
    };
    wait_until(
        20,
        || memory(h).len() >= 2,
        || format!("the late memory component did not join: {:?}", memory(h)),
    );
    let newest = memory(h).iter().map(|m| m.0).max().unwrap();
    // A run of 4 MB that must have a vRegion at `newest`, `check` while it
    // runs; it prints the length.
    let run_with_vregion_at = |letter: char, check: &dyn Fn(&[Row]) -> bool| {
        let script =
            format!("x=$(head -c 4000000 /dev/zero | tr '\\0' {letter}); sleep 3; echo ${{#x}}");
        let run = spawn_script(h, &script, Stdio::null());
        wait_until(
            10,
            || check(&memory(h)),
            || {
                format!(
                    "no vRegion at component {newest} (id, used, homed, held): {:?}",
                    memory(h)
                )
            },
        );
        let out = run.wait_with_output().unwrap();
        assert_eq!(text(&out.stdout), "4000000\n", "{}", text(&out.stderr));
        assert_eq!(out.status.code(), Some(0));
    };
    // Both have 512 MiB and hold nothing: the older (the lower id) homes
    // the next run, and its stack's vRegion goes to the newcomer (a tie
    // goes to another component); the processor reads those pages from a
    // component that was not there when it registered.
    run_with_vregion_at('a', &|m| {
        m.iter().any(|x| x.0 != newest && x.2 >= 1) && m.iter().any(|x| x.0 == newest && x.3 >= 1)
    });
    // Started again with its id, at another port: the processor and the
    // home learn its new address from the managers and use it (they
    // used to keep dialling the old one).
    let fabric_of = |h: &Path, id: u32| {
        components(h)
            .into_iter()
            .find(|c| c.id == id && c.up)
            .map(|c| c.fabric)
    };
    let old_addr = fabric_of(h, newest).expect("the late component is up");
    drop(late);
    // Its id is free again once the managers take it for down.
    wait_until(
        20,
        || fabric_of(h, newest).is_none(),
        || "the killed component stays up".into(),
    );
    let _again = memory_by_hand(h, Some(newest), "again.log");
    wait_until(
        20,
        || fabric_of(h, newest).is_some_and(|a| a != old_addr),
        || {
            format!(
                "component {newest} did not come back at a new address (old {old_addr}, now {:?})",
                fabric_of(h, newest)
            )
        },
    );
    // Two heartbeats: every component has heard of the move.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    run_with_vregion_at('b', &|m| m.iter().any(|x| x.0 == newest && x.3 >= 1));
}

/// `lego up --copies 2`: each memory component gets a backup from the
/// managers; a memory component holding a running program's memory (its
/// home, or the copy: both report it, and the lower id is taken) is killed
/// (-9) halfway, and the program finishes with the output it has on the
/// host.
#[test]
fn with_two_copies_a_run_outlives_a_memory_component() {
    if !can_run() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let _down = Down(h);
    up(h, &["--copies", "2"]);
    let memory: Vec<lego_control::Component> = components(h)
        .into_iter()
        .filter(|c| c.role == lego_control::Role::Memory)
        .collect();
    assert_eq!(memory.len(), 2);
    assert_eq!(memory[0].load.backup, memory[1].id, "{memory:?}");
    assert_eq!(memory[1].load.backup, memory[0].id, "{memory:?}");
    let status = text(&lego(h, &["status"]).stdout);
    assert!(
        status.contains(&format!("copy at {}", memory[1].id)),
        "{status}"
    );

    let demo = Path::new(env!("CARGO_BIN_EXE_lego")).with_file_name("lego-demo");
    let demo = demo.to_str().unwrap();
    let host = Command::new(demo).args(["--mem", "160M"]).output().unwrap();
    assert!(host.status.success());
    let run = lego_cmd(h, &["run", demo, "--mem", "160M"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A memory component that reports the process and its pages.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let victim = loop {
        let m: Vec<lego_control::Component> = components(h)
            .into_iter()
            .filter(|c| c.role == lego_control::Role::Memory && c.load.processes >= 1)
            .filter(|c| c.load.used_bytes >= 16 << 20)
            .collect();
        if let Some(c) = m.first() {
            break c.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run's memory does not show"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    // SAFETY: kill(2) on a lego-vmm this test's rack started.
    unsafe { libc::kill(victim.host_pid as i32, libc::SIGKILL) };
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        text(&host.stdout),
        "{}",
        text(&out.stderr)
    );
    // The managers see it down; the processor said it failed over.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while components(h).iter().any(|c| c.id == victim.id && c.up) {
        assert!(std::time::Instant::now() < deadline, "still shown up");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let logs = std::fs::read_dir(h.join("rack/logs")).unwrap();
    let said = logs
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("processor"))
        .any(|e| {
            let log = std::fs::read_to_string(e.path()).unwrap_or_default();
            common::reported_lost_copy(&log, victim.id)
        });
    assert!(said, "the processor did not report the lost copy");
}

/// `lego up --copies 2`, a program holding 10 MB waits on its input; one
/// memory component is killed for good and a new one joins: the managers
/// name the newcomer as the survivor's backup, the processor copies the
/// program's memory there while the program waits, and then the survivor
/// is killed too. The program reads the newcomer's copy and prints what it prints on
/// the host.
#[test]
fn with_two_copies_a_newcomer_replaces_a_dead_backup() {
    if !can_run() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let _down = Down(h);
    // An ExCache smaller than the program: its pages live at the copies.
    up(h, &["--copies", "2", "--excache", "8M"]);
    let script = "x=$(seq 1 1500000); read go; printf '%s' \"$x\" | md5sum";
    let mut host = Command::new(BUSYBOX)
        .args(["sh", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    host.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let host = host.wait_with_output().unwrap();
    assert!(host.status.success());
    let mut run = spawn_script(h, script, Stdio::piped());
    let memory = |h: &Path| -> Vec<lego_control::Component> {
        components(h)
            .into_iter()
            .filter(|c| c.role == lego_control::Role::Memory && c.up)
            .collect()
    };
    // Both copies hold the string (and the shell around it).
    wait_until(
        20,
        || {
            let m = memory(h);
            m.len() == 2 && m.iter().all(|c| c.load.used_bytes >= 8 << 20)
        },
        || {
            format!(
                "the program's memory does not show at both copies: {:?}",
                memory(h)
            )
        },
    );
    let held = memory(h);
    let (first, survivor) = (&held[0], &held[1]);
    // SAFETY: kill(2) on a lego-vmm this test's rack started.
    unsafe { libc::kill(first.host_pid as i32, libc::SIGKILL) };
    let _newcomer = memory_by_hand(h, None, "newcomer.log");
    // The processor says it made the copy at the newcomer.
    let copied = || {
        std::fs::read_dir(h.join("rack/logs"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("processor"))
            .any(|e| {
                let log = std::fs::read_to_string(e.path()).unwrap_or_default();
                log.lines().any(|l| {
                    l.contains(&format!("keeps a copy of what component {}", survivor.id))
                        && !l.contains(&format!("component {} keeps", first.id))
                })
            })
    };
    wait_until(40, copied, || {
        format!(
            "no copy of component {}'s memory at the newcomer; memory components: {:?}; the newcomer's log: {}",
            survivor.id,
            memory(h),
            std::fs::read_to_string(h.join("newcomer.log")).unwrap_or_default()
        )
    });
    let newest = memory(h).iter().map(|c| c.id).max().unwrap();
    assert!(newest != first.id && newest != survivor.id);
    // The survivor reports its new backup with its next heartbeat.
    let backup = || {
        memory(h)
            .iter()
            .find(|c| c.id == survivor.id)
            .map(|c| c.load.backup)
    };
    wait_until(
        5,
        || backup() == Some(newest),
        || {
            format!(
                "component {} reports backup {:?}, not {newest}",
                survivor.id,
                backup()
            )
        },
    );
    // SAFETY: as above.
    unsafe { libc::kill(survivor.host_pid as i32, libc::SIGKILL) };
    run.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), text(&host.stdout));
}
