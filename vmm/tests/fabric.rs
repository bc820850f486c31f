//! The fabric, end to end: real lego-vmm processes with real guests,
//! guest to guest over TCP on loopback and over shared memory. The client
//! guest runs an exercise (--fabric-test) against a serving monitor, checks
//! every reply itself and reports one line; the tests also attack the
//! listening port and a ring.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use lego_proto::frame::{Header, Kind};

/// How the components of a test reach each other.
#[derive(Clone, Copy, Debug)]
enum Via {
    Tcp,
    Shm,
}

/// The shared-memory directory of one test: its own, so tests do not meet.
fn shm_dir(test: &str) -> String {
    let dir = format!("/dev/shm/lego-test-{}-{test}", std::process::id());
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A serving component; returns it and how a client names it (`1=ADDR`).
fn server(role: &str, id: u32, via: Via, dir: &str) -> (Process, String) {
    let id_text = id.to_string();
    let mut args = vec![
        "--role",
        role,
        "--id",
        &id_text,
        "--shm-dir",
        dir,
        "--log-level",
        "info",
    ];
    if let Via::Tcp = via {
        args.extend(["--listen", "127.0.0.1:0"]);
    }
    let mut p = Process::start(&args);
    let peer = match via {
        Via::Tcp => format!("{id}={}", p.listen_address()),
        Via::Shm => format!("{id}=shm"),
    };
    p.wait_for("fabric: component");
    (p, peer)
}

/// Runs a client component with an exercise; returns (exit code, stderr).
fn client(id: u32, peer: &str, dir: &str, exercise: &str) -> (Option<i32>, String) {
    let id_text = id.to_string();
    let out = run(&[
        "--role",
        "processor",
        "--id",
        &id_text,
        "--peer",
        peer,
        "--shm-dir",
        dir,
        "--fabric-test",
        exercise,
        "--log-level",
        "info",
    ]);
    (out.status.code(), stderr(&out))
}

fn ping_pong(via: Via, name: &str) {
    if !kvm_available() {
        return;
    }
    let dir = shm_dir(name);
    let (server, peer) = server("storage", 1, via, &dir);
    let (code, err) = client(2, &peer, &dir, "pingpong:1:200");
    assert_eq!(code, Some(0), "{via:?}: {err}");
    assert!(
        err.contains("[processor] fabric pingpong ok peer=1 count=200"),
        "{err}"
    );
    assert_eq!(server.stop(), Some(0));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn ping_pong_over_tcp() {
    ping_pong(Via::Tcp, "pp-tcp");
}

#[test]
fn ping_pong_over_shared_memory() {
    ping_pong(Via::Shm, "pp-shm");
}

fn three_components(via: Via, name: &str) {
    if !kvm_available() {
        return;
    }
    let dir = shm_dir(name);
    let (server, peer) = server("storage", 1, via, &dir);
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| client(2, &peer, &dir, "pingpong:1:300"));
        let b = s.spawn(|| client(3, &peer, &dir, "stream:1:256K"));
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
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn three_components_over_tcp() {
    three_components(Via::Tcp, "three-tcp");
}

#[test]
fn three_components_over_shared_memory() {
    three_components(Via::Shm, "three-shm");
}

fn mebibyte_stream(via: Via, name: &str) {
    if !kvm_available() {
        return;
    }
    let dir = shm_dir(name);
    let (server, peer) = server("storage", 1, via, &dir);
    let (code, err) = client(2, &peer, &dir, "stream:1:1M");
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
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_mebibyte_stream_over_tcp_arrives_intact_and_in_order() {
    mebibyte_stream(Via::Tcp, "stream-tcp");
}

#[test]
fn a_mebibyte_stream_over_shared_memory_arrives_intact_and_in_order() {
    mebibyte_stream(Via::Shm, "stream-shm");
}

#[test]
fn an_8_mib_stream_wraps_the_shared_memory_ring_intact() {
    if !kvm_available() {
        return;
    }
    // Twice the ring's 4 MiB: frames are cut across its end and back.
    let dir = shm_dir("stream-wrap");
    let (server, peer) = server("storage", 1, Via::Shm, &dir);
    let (code, err) = client(2, &peer, &dir, "stream:1:8M");
    assert_eq!(code, Some(0), "{err}");
    let want = lego_proto::pattern::stream_checksum(8 << 20, 4096);
    assert!(
        err.contains(&format!("bytes=8388608 checksum={want:#018x}")),
        "{err}"
    );
    assert_eq!(server.stop(), Some(0));
    let _ = std::fs::remove_dir_all(dir);
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
    let dir = shm_dir("unreachable");
    let start = Instant::now();
    let (code, err) = client(2, &format!("1={addr}"), &dir, "pingpong:1:3");
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
    // The same over shared memory: nobody runs as component 1 on this host.
    let (code, err) = client(2, "1=shm", &dir, "pingpong:1:3");
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("component 1 is unreachable: it is not running on this host"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_unknown_destination_is_an_error() {
    if !kvm_available() {
        return;
    }
    let dir = shm_dir("unknown");
    let (server, peer) = server("storage", 1, Via::Tcp, &dir);
    let (code, err) = client(2, &peer, &dir, "pingpong:9:1");
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("UnknownDestination: component 9 is not a peer of component 2"),
        "{err}"
    );
    assert_eq!(server.stop(), Some(0));
    let _ = std::fs::remove_dir_all(dir);
}

fn peer_killed_mid_stream(via: Via, name: &str) {
    if !kvm_available() {
        return;
    }
    let dir = shm_dir(name);
    let (mut server, peer) = server("storage", 1, via, &dir);
    let mut c = Process::start(&[
        "--role",
        "processor",
        "--id",
        "2",
        "--peer",
        &peer,
        "--shm-dir",
        &dir,
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
    let text = c.seen.join("\n");
    let took = killed.elapsed();
    assert_eq!(code, Some(3), "{text}");
    // The README promises "unreachable" at once, not after the 1000 ms
    // timeout: the peer's death is seen (its pid over shared memory, its
    // connection closing over TCP) and the requests in flight fail then.
    assert!(
        text.contains("component 1 is unreachable") && !text.contains("did not answer"),
        "{text}"
    );
    assert!(took < Duration::from_millis(1000), "took {took:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_peer_killed_mid_stream_over_tcp() {
    peer_killed_mid_stream(Via::Tcp, "killed-tcp");
}

#[test]
fn a_peer_killed_mid_stream_over_shared_memory() {
    peer_killed_mid_stream(Via::Shm, "killed-shm");
}

/// Writes `bytes` to a fresh connection and waits until the server closes it.
fn send_and_expect_close(addr: &str, bytes: &[u8]) {
    let mut conn = TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let _ = conn.write_all(bytes);
    expect_closed(&conn);
}

/// Reads until the server closes the connection (it greets first).
fn expect_closed(mut conn: &TcpStream) {
    let mut sink = [0u8; 256];
    let mut got = 0;
    loop {
        match conn.read(&mut sink) {
            Ok(0) => return,
            Ok(n) if got + n <= lego_wire::hello::HELLO_LEN => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            other => panic!("the server did not close a bad connection: {other:?}"),
        }
    }
}

#[test]
fn garbage_on_the_fabric_port_is_dropped_and_counted() {
    if !kvm_available() {
        return;
    }
    let dir = shm_dir("garbage");
    let (mut server, peer) = server("storage", 1, Via::Tcp, &dir);
    let addr = peer.trim_start_matches("1=").to_owned();
    // Not a greeting at all.
    send_and_expect_close(
        &addr,
        b"GET / HTTP/1.0\r\nUser-Agent: curl\r\n\r\nthis is not the Lego fabric protocol, and it is longer than a greeting",
    );
    // Greeted with the rack key, then a wrong version, an unknown kind, a
    // length over the limit: each connection is closed.
    let good = Header::request(Kind::Ping, 1, 5, 1, 0).encode();
    let mut v = good;
    v[2] = 99;
    let mut k = good;
    k[3] = 200;
    let mut big = good;
    big[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    for bad in [v, k, big] {
        let mut c = tcp_client(&addr, 5);
        c.write_raw(&bad).unwrap();
        expect_closed(c.stream());
    }
    // A frame cut short, then the connection closed.
    {
        let mut c = tcp_client(&addr, 5);
        let mut cut = Header::request(Kind::Data, 2, 5, 1, 100).encode().to_vec();
        cut.extend_from_slice(&[1; 10]);
        c.write_raw(&cut).unwrap();
    }
    // A flood of connections that open and close.
    for _ in 0..200 {
        let _ = TcpStream::connect(&addr);
    }
    // Other peers are unaffected: a real client still gets its answers.
    let (code, err) = client(2, &peer, &dir, "pingpong:1:50");
    assert_eq!(code, Some(0), "{err}");
    assert!(server.alive(), "the server is still up");
    server.wait_for("closed the connection from");
    let stats = fabric_stats(&mut tcp_client(&addr, 6), 1);
    // The greeting that was not one and three bad headers: four bad
    // frames, four connections closed; the frame cut short had no trailer.
    assert_eq!(
        (
            stats.bad_frames,
            stats.bad_connections,
            stats.unauthenticated
        ),
        (4, 4, 1),
        "{stats:?}"
    );
    assert_eq!(server.stop(), Some(0));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn garbage_in_a_shared_memory_ring_is_skipped_and_counted() {
    if !kvm_available() {
        return;
    }
    use std::os::unix::fs::FileExt;
    let dir = shm_dir("ring-garbage");
    let (mut server, peer) = server("storage", 1, Via::Shm, &dir);
    // A client talks to the server, so the server reads the ring 2-to-1.
    let (code, err) = client(2, &peer, &dir, "pingpong:1:5");
    assert_eq!(code, Some(0), "{err}");
    // Another process scribbles over that ring: junk published as frames.
    let ring = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("{dir}/2-to-1.ring"))
        .unwrap();
    let mut tail = [0u8; 8];
    ring.read_exact_at(&mut tail, 64).unwrap();
    let tail = u64::from_le_bytes(tail);
    ring.write_all_at(&[0x5a; 100], 4096 + (tail % (4 << 20)))
        .unwrap();
    ring.write_all_at(&(tail + 100).to_le_bytes(), 64).unwrap();
    server.wait_for("skipped in the ring from component 2");
    // The server goes on serving the same client.
    let (code, err) = client(2, &peer, &dir, "pingpong:1:5");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(server.stop(), Some(0));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn idle_connections_held_open_do_not_lock_peers_out() {
    if !kvm_available() {
        return;
    }
    let dir = shm_dir("held");
    let (mut server, peer) = server("storage", 1, Via::Tcp, &dir);
    let addr = peer.trim_start_matches("1=").to_owned();
    // More idle connections than the server serves at once, all kept open.
    let held: Vec<TcpStream> = (0..100)
        .filter_map(|_| TcpStream::connect(&addr).ok())
        .collect();
    assert!(held.len() >= 90, "only {} connections", held.len());
    let start = Instant::now();
    let (code, err) = client(2, &peer, &dir, "pingpong:1:20");
    assert_eq!(code, Some(0), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    server.wait_for("closed the oldest that sent no greeting");
    drop(held);
    assert_eq!(server.stop(), Some(0));
    let _ = std::fs::remove_dir_all(dir);
}

/// A client pings through its server's restart and reconnects by itself.
fn reconnects(via: Via, name: &str) {
    if !kvm_available() {
        return;
    }
    let dir = shm_dir(name);
    // A fixed port, so the restarted server is where the client looks.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    let start_server = || {
        let mut args = vec![
            "--role",
            "storage",
            "--id",
            "1",
            "--shm-dir",
            &dir,
            "--log-level",
            "info",
        ];
        if let Via::Tcp = via {
            args.extend(["--listen", &listen]);
        }
        let mut p = Process::start(&args);
        p.wait_for("fabric: component 1 serving");
        p
    };
    let peer = match via {
        Via::Tcp => format!("1={listen}"),
        Via::Shm => "1=shm".to_owned(),
    };
    let mut first = start_server();
    let mut c = Process::start(&[
        "--role",
        "processor",
        "--id",
        "2",
        "--peer",
        &peer,
        "--shm-dir",
        &dir,
        "--fabric-test",
        "survive:1:3000",
        "--fabric-timeout-ms",
        "500",
        "--log-level",
        "info",
    ]);
    c.wait_for("fabric: the guest's queues are set up");
    std::thread::sleep(Duration::from_millis(300));
    first.child.kill().expect("kill");
    let _ = first.child.wait();
    c.wait_for("fabric survive: ping");
    std::thread::sleep(Duration::from_millis(300));
    let second = start_server();
    let (code, _) = c.wait(Duration::from_secs(60));
    let text = c.seen.join("\n");
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("fabric survive ok peer=1 count=3000 failures="),
        "{text}"
    );
    assert!(
        !text.contains("failures=0"),
        "the restart was noticed: {text}"
    );
    assert_eq!(second.stop(), Some(0));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_restarted_peer_is_reached_again_over_tcp() {
    reconnects(Via::Tcp, "reconnect-tcp");
}

#[test]
fn a_restarted_peer_is_reached_again_over_shared_memory() {
    reconnects(Via::Shm, "reconnect-shm");
}

#[test]
fn rdma_without_a_device_is_refused_with_a_sentence() {
    if !kvm_available() {
        return;
    }
    let has_device =
        std::fs::read_dir("/sys/class/infiniband").is_ok_and(|mut d| d.next().is_some());
    if has_device {
        eprintln!("skipping: this host has an RDMA device");
        return;
    }
    for args in [
        &["--rdma-listen", "127.0.0.1:0"][..],
        &["--peer", "2=rdma:127.0.0.1:9"][..],
    ] {
        let own = own_shm_dir();
        let dir = own.to_string_lossy();
        let mut all = vec!["--role", "memory", "--id", "1", "--shm-dir", &dir];
        all.extend_from_slice(args);
        let out = run(&all);
        let _ = std::fs::remove_dir_all(&own);
        if cfg!(feature = "rdma") {
            expect_failure(
                &out,
                2,
                &["RDMA was asked for, but this host has no RDMA device"],
            );
        } else {
            expect_failure(
                &out,
                2,
                &["RDMA was asked for, but this lego-vmm was built without it"],
            );
        }
    }
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
    let dir = own_shm_dir();
    let out = run(&[
        "--role",
        "memory",
        "--id",
        "1",
        "--listen",
        &addr,
        "--shm-dir",
        &dir.to_string_lossy(),
    ]);
    let _ = std::fs::remove_dir_all(dir);
    expect_failure(&out, 2, &["invalid --listen: cannot listen on", &addr]);
}

/// Rings and doorbells of components that are gone are swept: processors
/// that ran and ended (each with a new id, as without `--id`), and a
/// doorbell nobody owns, leave only the live component's doorbell.
#[test]
fn files_of_components_that_are_gone_are_swept() {
    if !kvm_available() {
        return;
    }
    let (memory, _) = memory_component(1, "64M", &[]);
    let dir = memory.own_dir.clone().expect("its own directory");
    let dir_text = dir.to_string_lossy().into_owned();
    std::fs::write(dir.join("77.bell"), vec![0u8; 4096]).expect("a stray doorbell");
    for _ in 0..2 {
        let out = run(&[
            "--role",
            "processor",
            "--peer",
            "1=shm",
            "--shm-dir",
            &dir_text,
            "--excache",
            "16M",
            "--run-workload",
            "pattern:4M",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let files = || {
        let mut v: Vec<String> = std::fs::read_dir(&dir)
            .expect("list")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert!(files().len() > 1, "the runs used rings: {:?}", files());
    // The memory component sweeps every 10 s.
    let deadline = Instant::now() + Duration::from_secs(25);
    while files() != ["1.bell"] && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(files(), ["1.bell"]);
}
