//! The fabric, end to end: real lego-vmm processes with real guests on
//! loopback, guest to guest over TCP. The client guest runs an exercise
//! (--fabric-test) against a serving monitor, checks every reply itself
//! and reports one line; the tests also attack the listening port.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use lego_proto::frame::{Header, Kind};

/// A serving component with a fabric, and the address it listens on.
fn server(role: &str, id: u32) -> (Process, String) {
    let id_text = id.to_string();
    let mut p = Process::start(&[
        "--role",
        role,
        "--id",
        &id_text,
        "--listen",
        "127.0.0.1:0",
        "--log-level",
        "info",
    ]);
    let line = p.wait_for("listens on ");
    let addr = line
        .split("listens on ")
        .nth(1)
        .expect("address")
        .trim()
        .to_owned();
    p.wait_for("fabric: component");
    (p, addr)
}

/// Runs a client component with an exercise; returns (exit code, stderr).
fn client(id: u32, peer: &str, exercise: &str, extra: &[&str]) -> (Option<i32>, String) {
    let id_text = id.to_string();
    let mut args = vec![
        "--role",
        "processor",
        "--id",
        &id_text,
        "--peer",
        peer,
        "--fabric-test",
        exercise,
        "--log-level",
        "info",
    ];
    args.extend_from_slice(extra);
    let out = run(&args);
    (out.status.code(), stderr(&out))
}

#[test]
fn ping_pong_between_two_components() {
    if !kvm_available() {
        return;
    }
    let (server, addr) = server("memory", 1);
    let (code, err) = client(2, &format!("1={addr}"), "pingpong:1:200", &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("[processor] fabric pingpong ok peer=1 count=200"),
        "{err}"
    );
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn two_clients_share_one_server() {
    if !kvm_available() {
        return;
    }
    let (server, addr) = server("storage", 1);
    let peer = format!("1={addr}");
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| client(2, &peer, "pingpong:1:300", &[]));
        let b = s.spawn(|| client(3, &peer, "stream:1:256K", &[]));
        (a.join().expect("client 2"), b.join().expect("client 3"))
    });
    assert_eq!(a.0, Some(0), "{}", a.1);
    assert_eq!(b.0, Some(0), "{}", b.1);
    assert!(
        b.1.contains("fabric stream ok peer=1 bytes=262144"),
        "{}",
        b.1
    );
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn a_mebibyte_stream_arrives_intact_and_in_order() {
    if !kvm_available() {
        return;
    }
    let (server, addr) = server("memory", 1);
    let (code, err) = client(2, &format!("1={addr}"), "stream:1:1M", &[]);
    assert_eq!(code, Some(0), "{err}");
    // The guest checked every byte and the order of every reply; the
    // checksum it reports must be the one of the stream it was meant to send.
    let want = lego_proto::pattern::stream_checksum(1 << 20, 4096);
    assert!(
        err.contains(&format!(
            "fabric stream ok peer=1 bytes=1048576 checksum={want:#018x}"
        )),
        "{err}"
    );
    assert!(
        err.contains("256 frames from the guest, 256 to it"),
        "counters: {err}"
    );
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn an_unreachable_peer_is_an_error_not_a_hang() {
    if !kvm_available() {
        return;
    }
    // A port nobody listens on.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap().to_string();
    drop(free);
    let start = Instant::now();
    let (code, err) = client(2, &format!("1={addr}"), "pingpong:1:3", &[]);
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("Unreachable: component 1 is unreachable"),
        "{err}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn an_unknown_destination_is_an_error() {
    if !kvm_available() {
        return;
    }
    let (server, addr) = server("memory", 1);
    let (code, err) = client(2, &format!("1={addr}"), "pingpong:9:1", &[]);
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("UnknownDestination: component 9 is not a peer of component 2"),
        "{err}"
    );
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn a_peer_killed_mid_stream_gives_an_error_in_bounded_time() {
    if !kvm_available() {
        return;
    }
    let (mut server, addr) = server("memory", 1);
    let peer = format!("1={addr}");
    let mut c = Process::start(&[
        "--role",
        "processor",
        "--id",
        "2",
        "--peer",
        &peer,
        "--fabric-test",
        "stream:1:4G",
        "--fabric-timeout-ms",
        "1000",
        "--log-level",
        "info",
    ]);
    c.wait_for("fabric: the guest's queues are set up");
    std::thread::sleep(Duration::from_millis(500));
    server.child.kill().expect("kill the server");
    let killed = Instant::now();
    let (code, _) = c.wait(Duration::from_secs(20));
    assert_eq!(code, Some(3), "{}", c.seen.join("\n"));
    let text = c.seen.join("\n");
    assert!(
        text.contains("component 1 is unreachable")
            || text.contains("component 1 did not answer within 1000 ms"),
        "{text}"
    );
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "took {:?}",
        killed.elapsed()
    );
}

/// Writes `bytes` to a fresh connection and waits until the server closes it.
fn send_and_expect_close(addr: &str, bytes: &[u8]) {
    let mut conn = TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let _ = conn.write_all(bytes);
    let mut sink = [0u8; 64];
    match conn.read(&mut sink) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the server did not close a bad connection: {other:?}"),
    }
}

#[test]
fn garbage_on_the_fabric_port_is_dropped_and_counted() {
    if !kvm_available() {
        return;
    }
    let (mut server, addr) = server("memory", 1);
    let good = Header::request(Kind::Ping, 1, 5, 1, 0).encode();
    // Not a frame at all.
    send_and_expect_close(
        &addr,
        b"GET / HTTP/1.0\r\n\r\nthis is not the Lego fabric protocol",
    );
    // A wrong version, an unknown kind, a length over the limit.
    let mut v = good;
    v[2] = 99;
    send_and_expect_close(&addr, &v);
    let mut k = good;
    k[3] = 200;
    send_and_expect_close(&addr, &k);
    let mut big = good;
    big[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    send_and_expect_close(&addr, &big);
    // A frame cut short, then the connection closed.
    {
        let mut conn = TcpStream::connect(&addr).expect("connect");
        let mut cut = Header::request(Kind::Data, 2, 5, 1, 100).encode().to_vec();
        cut.extend_from_slice(&[1; 10]);
        let _ = conn.write_all(&cut);
    }
    // A flood of connections that open and close.
    for _ in 0..200 {
        let _ = TcpStream::connect(&addr);
    }
    // Other peers are unaffected: a real client still gets its answers.
    let (code, err) = client(2, &format!("1={addr}"), "pingpong:1:50", &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(server.alive(), "the server is still up");
    server.wait_for("closed the connection from");
    let summary = {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
        let (code, _) = server.wait(Duration::from_secs(10));
        assert_eq!(code, Some(0));
        server
            .seen
            .iter()
            .find(|l| l.contains("fabric: ") && l.contains("bad from peers"))
            .cloned()
            .unwrap_or_default()
    };
    // Four bad headers closed four connections; the frame cut short is a
    // fifth bad frame (its connection had already ended).
    assert!(
        summary.contains("5 bad from peers (4 connections closed)"),
        "{summary}"
    );
}

#[test]
fn bad_fabric_options_get_a_sentence() {
    let cases: [(&[&str], &str); 5] = [
        (&["--id", "0"], "--id: component id 0 is reserved"),
        (&["--id", "1", "--peer", "nonsense"], "is not ID=ADDR"),
        (
            &["--id", "1", "--peer", "1=127.0.0.1:1"],
            "names this component itself",
        ),
        (
            &["--id", "1", "--peer", "2=a:1", "--peer", "2=b:1"],
            "component 2 is given twice",
        ),
        (
            &["--id", "1", "--fabric-test", "dance:2:1"],
            "unknown exercise 'dance'",
        ),
    ];
    for (args, needle) in cases {
        let mut all = vec!["--role", "memory"];
        all.extend_from_slice(args);
        let out = run(&all);
        expect_failure(&out, 2, &[needle]);
    }
    if !kvm_available() {
        return;
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(&["--role", "memory", "--id", "1", "--listen", &addr]);
    expect_failure(&out, 2, &["invalid --listen: cannot listen on", &addr]);
}
