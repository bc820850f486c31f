//! The real gdb, in batch mode, against a real guest: break on a named
//! function in the memory monitor, read a variable, single-step, read
//! registers, continue, detach; every vCPU a thread; the guest's exit and
//! failure seen by gdb. A small raw remote-protocol client checks Ctrl-C,
//! a second client, and garbage on the port.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn gdb_available() -> bool {
    if Command::new("gdb").arg("--version").output().is_ok() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("gdb is missing on this CI machine; .ci/run installs it");
    }
    eprintln!("skipping: gdb is not installed");
    false
}

/// A lego-vmm under --gdb, and the address its stub listens on.
struct Component {
    proc: Process,
    addr: String,
}

impl Component {
    fn start(args: &[&str]) -> Component {
        let mut all = args.to_vec();
        all.extend([
            "--gdb",
            "127.0.0.1:0",
            "--log-level",
            "info",
            "--gdb-greeting-secs",
            "2",
        ]);
        let mut proc = Process::start(&all);
        let line = proc.wait_for("waits for gdb on ");
        let addr = line
            .split("waits for gdb on ")
            .nth(1)
            .map(|r| r.split(':').take(2).collect::<Vec<_>>().join(":"))
            .expect("address in the waiting line");
        Component { proc, addr }
    }
}

impl std::ops::Deref for Component {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.proc
    }
}

impl std::ops::DerefMut for Component {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.proc
    }
}

/// Runs gdb in batch mode against `addr` with the image's symbols.
fn gdb(image_name: &str, addr: &str, commands: &[&str]) -> String {
    let mut cmd = Command::new("gdb");
    cmd.args(["-nx", "-batch"]).arg(image(image_name));
    cmd.args([
        "-ex",
        "set pagination off",
        "-ex",
        &format!("target remote {addr}"),
    ]);
    for c in commands {
        cmd.args(["-ex", c]);
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gdb");
    let out = wait_with_timeout(child, Duration::from_secs(60), &["gdb"]);
    format!("{}{}", stdout(&out), stderr(&out))
}

fn hex_after(text: &str, prefix: &str) -> u64 {
    let rest = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{text}"));
    let word = rest.split_whitespace().next().expect("a value");
    let digits: String = word
        .trim_start_matches("0x")
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    u64::from_str_radix(&digits, 16).unwrap_or_else(|_| panic!("hex in {word:?}"))
}

/// The function of each frame of the first backtrace in gdb's output
/// (`#N  [ADDR in] FUNCTION (ARGS) ...`).
fn backtrace(text: &str) -> Vec<String> {
    let mut frames = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix('#') else {
            continue;
        };
        let Some((n, rest)) = rest.split_once(' ') else {
            continue;
        };
        let Ok(n) = n.parse::<usize>() else { continue };
        if n != frames.len() {
            break;
        }
        let rest = rest.trim_start();
        let rest = match rest.split_once(" in ") {
            Some((addr, f)) if addr.starts_with("0x") => f,
            _ => rest,
        };
        frames.push(rest.split(" (").next().unwrap_or(rest).trim().to_owned());
    }
    frames
}

#[test]
fn break_read_step_registers_continue_detach() {
    if !kvm_available() || !gdb_available() {
        return;
    }
    let mut vm = Component::start(&["--role", "memory"]);
    let out = gdb(
        "guest-mmon",
        &vm.addr,
        &[
            "break guest_mmon::announce",
            "continue",
            "bt",
            "print summary.ram_bytes",
            "stepi",
            "stepi",
            "stepi",
            "info registers rip",
            "info registers rsp rflags",
            "break lego_image::cpu::halt_forever",
            "continue",
            "detach",
        ],
    );
    assert!(out.contains("Breakpoint 1, guest_mmon::announce"), "{out}");
    // The backtrace is exactly the real chain, from the image's entry to
    // the breakpoint: no frame guessed, none missing, nothing after _start.
    assert_eq!(
        backtrace(&out),
        [
            "guest_mmon::announce",
            "guest_mmon::main",
            "guest_mmon::lego_guest_main",
            "lego_image::entry::image_entry",
            "_start",
        ],
        "{out}"
    );
    assert!(!out.contains("Backtrace stopped"), "{out}");
    assert!(out.contains("$1 = 134217728"), "the variable: {out}");
    let bp = hex_after(&out, "Breakpoint 1 at ");
    let rip = hex_after(&out, "rip");
    assert_ne!(rip, bp, "three steps moved RIP: {out}");
    assert!(
        rip > bp && rip < bp + 64,
        "RIP {rip:#x} a few instructions past {bp:#x}: {out}"
    );
    assert!(out.contains("<guest_mmon::announce+"), "{out}");
    assert!(out.contains("rsp "), "{out}");
    assert!(
        out.contains("Breakpoint 2, lego_image::cpu::halt_forever"),
        "{out}"
    );
    assert!(out.contains("[Inferior 1 (process 1) detached]"), "{out}");
    // The component carries on: the monitor ran past the breakpoint and serves.
    vm.wait_for("[memory] memory monitor: 128 MiB of RAM");
    vm.wait_for("gdb detached; the guest runs on");
    std::thread::sleep(Duration::from_millis(300));
    assert!(vm.alive(), "the component still runs after detach");
    assert_eq!(vm.proc.stop(), Some(0));
}

#[test]
fn gdb_writes_memory_and_registers() {
    if !kvm_available() || !gdb_available() {
        return;
    }
    let mut vm = Component::start(&["--role", "memory"]);
    let out = gdb(
        "guest-mmon",
        &vm.addr,
        &[
            "break guest_mmon::announce",
            "continue",
            // 7 MiB instead of 128: the monitor prints what gdb wrote.
            "set var summary.ram_bytes = 7340032",
            "print summary.ram_bytes",
            "set $r11 = 0x1234567",
            "info registers r11",
            "detach",
        ],
    );
    assert!(out.contains("$1 = 7340032"), "{out}");
    assert_eq!(hex_after(&out, "r11"), 0x123_4567, "{out}");
    vm.wait_for("[memory] memory monitor: 7 MiB of RAM");
    assert_eq!(vm.proc.stop(), Some(0));
}

#[test]
fn every_vcpu_is_a_thread() {
    if !kvm_available() || !gdb_available() {
        return;
    }
    let mut vm = Component::start(&["--role", "memory", "--vcpus", "3"]);
    // Stepping one vCPU while the others run (gdb's default) and stopping
    // them all again, over and over.
    let out = gdb(
        "guest-mmon",
        &vm.addr,
        &[
            "info threads",
            "break guest_mmon::announce",
            "continue",
            "stepi",
            "stepi",
            "stepi",
            "stepi",
            "stepi",
            "info threads",
            "break lego_image::cpu::halt_forever",
            "continue",
            "detach",
        ],
    );
    for t in ["Thread 1.1", "Thread 1.2", "Thread 1.3"] {
        assert!(out.contains(t), "{t} in:\n{out}");
    }
    assert!(!out.contains("Thread 1.4"), "{out}");
    assert!(out.contains("Breakpoint 1, guest_mmon::announce"), "{out}");
    assert!(
        out.contains("Breakpoint 2, lego_image::cpu::halt_forever"),
        "{out}"
    );
    assert!(out.contains("[Inferior 1 (process 1) detached]"), "{out}");
    vm.wait_for("[memory] memory monitor: 128 MiB of RAM");
    assert_eq!(vm.proc.stop(), Some(0));
}

#[test]
fn gdb_sees_the_guest_exit() {
    if !kvm_available() || !gdb_available() {
        return;
    }
    let vm = Component::start(&["--role", "processor", "--self-test"]);
    let out = gdb("guest-pmon", &vm.addr, &["continue"]);
    assert!(
        out.contains("[Inferior 1 (process 1) exited normally]"),
        "{out}"
    );
    let (code, stdout) = vm.proc.wait_exit();
    assert_eq!(code, Some(0));
    assert!(
        stdout.starts_with("ready role=processor native="),
        "{stdout}"
    );
}

#[test]
fn gdb_sees_a_guest_failure() {
    if !kvm_available() || !gdb_available() {
        return;
    }
    let vm = Component::start(&["--role", "memory", "--guest-test", "page-fault"]);
    let out = gdb("guest-mmon", &vm.addr, &["continue"]);
    assert!(
        out.contains("Program terminated with signal SIGSEGV"),
        "{out}"
    );
    let (code, _) = vm.proc.wait_exit();
    assert_eq!(code, Some(3));
}

/// A minimal remote-serial-protocol client (acknowledged mode).
struct Rsp {
    conn: TcpStream,
}

impl Rsp {
    fn connect(addr: &str) -> Rsp {
        let conn = TcpStream::connect(addr).expect("connect to the gdb port");
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Rsp { conn }
    }

    fn send(&mut self, body: &str) {
        let sum = body.bytes().fold(0u8, |a, b| a.wrapping_add(b));
        write!(self.conn, "${body}#{sum:02x}").unwrap();
    }

    /// The next packet's body (acks skipped), acknowledged.
    fn recv(&mut self) -> String {
        let mut byte = [0u8];
        loop {
            self.conn.read_exact(&mut byte).expect("read from the stub");
            if byte[0] == b'$' {
                break;
            }
        }
        let mut body = Vec::new();
        loop {
            self.conn.read_exact(&mut byte).expect("read from the stub");
            if byte[0] == b'#' {
                break;
            }
            body.push(byte[0]);
        }
        let mut sum = [0u8; 2];
        self.conn.read_exact(&mut sum).expect("checksum");
        self.conn.write_all(b"+").unwrap();
        String::from_utf8_lossy(&run_length_decode(&body)).into_owned()
    }

    fn ask(&mut self, body: &str) -> String {
        self.send(body);
        self.recv()
    }
}

/// Undoes the protocol's run-length encoding: `X*n` is X and then
/// `n - 29` more copies of it.
fn run_length_decode(body: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'*' && i + 1 < body.len() {
            let last = *out.last().expect("a run follows a character");
            out.extend(std::iter::repeat_n(last, body[i + 1] as usize - 29));
            i += 2;
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn ctrl_c_stops_a_running_guest() {
    if !kvm_available() {
        return;
    }
    let mut vm = Component::start(&["--role", "memory", "--vcpus", "2"]);
    let mut rsp = Rsp::connect(&vm.addr);
    let stop = rsp.ask("?");
    assert!(
        stop.starts_with('T') || stop.starts_with('S'),
        "initial stop: {stop}"
    );
    rsp.send("c");
    vm.wait_for("[memory] memory monitor: 128 MiB of RAM");
    std::thread::sleep(Duration::from_millis(200));
    rsp.conn.write_all(&[0x03]).unwrap(); // Ctrl-C
    let stop = rsp.recv();
    assert!(stop.starts_with("T02"), "SIGINT stop: {stop}");
    // Registers of both vCPUs are readable while stopped.
    for thread in ["p1.1", "p1.2"] {
        assert_eq!(rsp.ask(&format!("Hg{thread}")), "OK");
        let regs = rsp.ask("g");
        assert!(
            regs.len() > 16 * 16 && regs.bytes().all(|b| b.is_ascii_hexdigit()),
            "{regs}"
        );
    }
    assert_eq!(rsp.ask("D"), "OK");
    std::thread::sleep(Duration::from_millis(200));
    assert!(vm.alive());
    assert_eq!(vm.proc.stop(), Some(0));
}

#[test]
fn a_second_client_is_refused_and_the_first_goes_on() {
    if !kvm_available() {
        return;
    }
    let mut vm = Component::start(&["--role", "memory"]);
    let mut first = Rsp::connect(&vm.addr);
    let stop = first.ask("?");
    assert!(stop.starts_with('T') || stop.starts_with('S'), "{stop}");
    let mut second = TcpStream::connect(&vm.addr).expect("connect");
    second
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reply = String::new();
    let _ = second.read_to_string(&mut reply);
    assert_eq!(
        reply, "$E01#a6",
        "the second client gets an error and is closed"
    );
    vm.wait_for("refused a second gdb client");
    // The first session is unaffected.
    let regs = first.ask("g");
    assert!(
        regs.bytes().all(|b| b.is_ascii_hexdigit()) && !regs.is_empty(),
        "{regs}"
    );
    assert_eq!(first.ask("D"), "OK");
    vm.wait_for("[memory] memory monitor: 128 MiB of RAM");
    assert_eq!(vm.proc.stop(), Some(0));
}

#[test]
fn garbage_on_the_gdb_port_leaves_the_guest_waiting_for_gdb() {
    if !kvm_available() || !gdb_available() {
        return;
    }
    let mut vm = Component::start(&["--role", "memory"]);
    for seed in 1..4u32 {
        let mut conn = TcpStream::connect(&vm.addr).expect("connect");
        // Bytes that cannot form a valid packet or a Ctrl-C (no '$', '#' or
        // 0x03; a well-formed "continue" would not be garbage), then packets
        // with broken checksums.
        let garbage: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed * 97) >> 11) as u8)
            .filter(|b| !matches!(b, b'$' | b'#' | 0x03))
            .collect();
        let _ = conn.write_all(&garbage);
        let _ = conn.write_all(b"$qSupported#zz$vCont;c#00$c#00");
        drop(conn);
        vm.wait_for("gdb client dropped");
        vm.seen.retain(|l| !l.contains("gdb client dropped"));
    }
    vm.drain();
    assert!(
        !vm.seen.iter().any(|l| l.contains("monitor booted")),
        "the guest must still wait for gdb: {:?}",
        vm.seen
    );
    let out = gdb(
        "guest-mmon",
        &vm.addr,
        &[
            "break guest_mmon::announce",
            "continue",
            "print summary.ram_bytes",
            "detach",
        ],
    );
    assert!(out.contains("$1 = 134217728"), "{out}");
    vm.wait_for("[memory] memory monitor: 128 MiB of RAM");
    assert_eq!(vm.proc.stop(), Some(0));
}

#[test]
fn a_used_gdb_address_is_a_clear_error() {
    if !kvm_available() {
        return;
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(&["--role", "memory", "--gdb", &addr]);
    expect_failure(&out, 2, &["invalid --gdb: cannot listen on", &addr]);
}

#[test]
fn a_silent_client_loses_the_gdb_slot() {
    if !kvm_available() || !gdb_available() {
        return;
    }
    let mut vm = Component::start(&["--role", "memory"]);
    // Connects and says nothing: after the greeting time (2 s here) it is
    // dropped, and gdb can attach.
    let silent = TcpStream::connect(&vm.addr).expect("connect");
    vm.wait_for("gdb client connected");
    vm.wait_for("gdb client dropped");
    let out = gdb(
        "guest-mmon",
        &vm.addr,
        &[
            "break guest_mmon::announce",
            "continue",
            "print summary.ram_bytes",
            "detach",
        ],
    );
    assert!(out.contains("$1 = 134217728"), "{out}");
    drop(silent);
    assert_eq!(vm.proc.stop(), Some(0));
}

#[test]
fn a_breakpoint_with_gdb_detached_waits_for_gdb() {
    if !kvm_available() || !gdb_available() {
        return;
    }
    let mut vm = Component::start(&["--role", "memory", "--guest-test", "breakpoint"]);
    // Attach and let it run at once: the guest then hits its own int3.
    let out = gdb("guest-mmon", &vm.addr, &["detach"]);
    assert!(out.contains("detached"), "{out}");
    vm.wait_for("stopped on breakpoint (#BP)");
    vm.wait_for("it waits for gdb to attach");
    // A second gdb finds it stopped right after the int3, in the test code.
    let out = gdb("guest-mmon", &vm.addr, &["info registers rip", "detach"]);
    assert!(out.contains("<lego_image::testfail::run+"), "{out}");
    // Let go, the guest reports that it went on past its breakpoint.
    let (code, _) = vm.proc.wait_exit();
    assert_eq!(code, Some(3));
}
