//! The real `lego-globals`, talked to over TCP as components and the tool
//! talk to it: registration, heartbeats, going down, placement, a restart
//! on the same state, and garbage on the socket.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use lego_control::{encode, GlobalsRequest, Role, DOWN_AFTER_MS};
use lego_globals::client::ClientError;

fn refused(e: ClientError) -> String {
    match e {
        ClientError::Refused(s) => s,
        other => panic!("expected a refusal, got {other}"),
    }
}

#[test]
fn components_register_and_runs_are_placed_by_load_and_free_space() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let mut g = d.client();
    let m1 = register(&mut g, Role::Memory, "127.0.0.1:9001", mem(GIB));
    let m2 = register(&mut g, Role::Memory, "127.0.0.1:9002", mem(2 * GIB));
    let s = register(&mut g, Role::Storage, "127.0.0.1:9003", disk(GIB));
    let p1 = register(&mut g, Role::Processor, "127.0.0.1:9004", mem(GIB));
    let p2 = register(&mut g, Role::Processor, "127.0.0.1:9005", mem(GIB));
    assert_eq!((m1, m2, s, p1, p2), (1, 2, 3, 4, 5));
    // The same address registering again gets its id back.
    assert_eq!(
        register(&mut g, Role::Memory, "127.0.0.1:9002", mem(2 * GIB)),
        2
    );

    g.heartbeat(p1, load(2, 0)).unwrap();
    g.heartbeat(p2, load(0, 0)).unwrap();
    // Memory 2 is bigger but nearly full: memory 1 has more free.
    g.heartbeat(m2, load(0, 2 * GIB - (64 << 20))).unwrap();
    let placed = g.place_run("web").unwrap();
    assert_eq!(placed.processor.id, p2);
    assert_eq!(placed.processor.control.as_deref(), Some("127.0.0.1:90050"));
    assert_eq!(placed.home, m1);
    assert_eq!(
        (
            placed.vnode.name.as_str(),
            placed.vnode.id,
            placed.vnode.storage
        ),
        ("web", 1, s)
    );
    // Locate finds the same vNode.
    assert_eq!(g.locate("web").unwrap().vnode, placed.vnode);

    let (components, vnodes) = g.status().unwrap();
    assert_eq!(components.len(), 5);
    assert!(components.iter().all(|c| c.up));
    assert_eq!(vnodes, vec![placed.vnode]);
}

#[test]
fn a_silent_component_is_down_within_a_second_of_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let mut g = d.client();
    let id = register(&mut g, Role::Memory, "127.0.0.1:9101", mem(GIB));
    g.heartbeat(id, load(0, 5)).unwrap();
    let last = Instant::now();
    assert!(component(&mut g, id).up);
    let limit = Duration::from_millis(DOWN_AFTER_MS + 1000);
    loop {
        let c = component(&mut g, id);
        if !c.up {
            let took = last.elapsed();
            assert!(
                took >= Duration::from_millis(DOWN_AFTER_MS - 100),
                "down too soon: {took:?}"
            );
            assert!(c.silent_ms >= DOWN_AFTER_MS);
            break;
        }
        assert!(
            last.elapsed() < limit,
            "still up after {limit:?} of silence"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A heartbeat brings it back.
    g.heartbeat(id, load(0, 5)).unwrap();
    assert!(component(&mut g, id).up);
}

#[test]
fn a_vnode_whose_storage_is_down_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let mut g = d.client();
    let m = register(&mut g, Role::Memory, "127.0.0.1:9201", mem(GIB));
    let s = register(&mut g, Role::Storage, "127.0.0.1:9202", disk(GIB));
    let p = register(&mut g, Role::Processor, "127.0.0.1:9203", mem(GIB));
    g.place_run("web").unwrap();
    // Memory and processor keep beating; the storage falls silent.
    let _beats = Beater::start(&d.addr, vec![(m, load(0, 0)), (p, load(0, 0))]);
    std::thread::sleep(Duration::from_millis(DOWN_AFTER_MS + 300));
    let e = refused(g.place_run("web").unwrap_err());
    assert_eq!(
        e,
        format!("storage component {s} (127.0.0.1:9202) is down; vNode web's files are there")
    );
    // With no processor up, the sentence says how to start one.
    let d2dir = tempfile::tempdir().unwrap();
    let d2 = Daemon::start(d2dir.path());
    let mut g2 = d2.client();
    register(&mut g2, Role::Storage, "127.0.0.1:9204", disk(GIB));
    let e = refused(g2.place_run("web").unwrap_err());
    assert!(
        e.contains("no processor is up") && e.contains("lego up"),
        "{e}"
    );
}

#[test]
fn an_id_held_by_a_live_component_elsewhere_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let mut g = d.client();
    let id = register(&mut g, Role::Memory, "127.0.0.1:9301", mem(GIB));
    let e = g
        .register(id, Role::Memory, "127.0.0.1:9302", None, mem(GIB), 1)
        .unwrap_err();
    assert!(refused(e).contains(&format!(
        "id {id} belongs to the memory component at 127.0.0.1:9301"
    )));
    // A free id asked for is given.
    let (got, peers) = g
        .register(7, Role::Storage, "127.0.0.1:9303", None, disk(GIB), 1)
        .unwrap();
    assert_eq!(got, 7);
    assert_eq!(peers.len(), 2);
}

#[test]
fn a_restart_keeps_ids_and_vnodes_and_components_register_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let mut g = d.client();
    let m = register(&mut g, Role::Memory, "127.0.0.1:9401", mem(GIB));
    let s = register(&mut g, Role::Storage, "127.0.0.1:9402", disk(GIB));
    let p = register(&mut g, Role::Processor, "127.0.0.1:9403", mem(GIB));
    let web = g.place_run("web").unwrap().vnode;
    let db = g.place_run("db").unwrap().vnode;
    drop(g);
    d.kill9();

    let d = Daemon::start(dir.path());
    let mut g = d.client();
    let (components, vnodes) = g.status().unwrap();
    let known: Vec<(u32, &str, bool)> = components
        .iter()
        .map(|c| (c.id, c.fabric.as_str(), c.up))
        .collect();
    assert_eq!(
        known,
        vec![
            (m, "127.0.0.1:9401", false),
            (s, "127.0.0.1:9402", false),
            (p, "127.0.0.1:9403", false)
        ]
    );
    assert_eq!(vnodes, vec![web.clone(), db]);
    // A component's heartbeat is refused until it registers again ...
    let e = refused(g.heartbeat(s, load(0, 0)).unwrap_err());
    assert!(e.contains("register first"), "{e}");
    // ... and registering gives it its old id.
    assert_eq!(
        register(&mut g, Role::Storage, "127.0.0.1:9402", disk(GIB)),
        s
    );
    g.heartbeat(s, load(0, 0)).unwrap();
    assert_eq!(
        register(&mut g, Role::Memory, "127.0.0.1:9401", mem(GIB)),
        m
    );
    assert_eq!(
        register(&mut g, Role::Processor, "127.0.0.1:9403", mem(GIB)),
        p
    );
    // A new address gets a new id, after the restored ones.
    assert_eq!(
        register(&mut g, Role::Memory, "127.0.0.1:9404", mem(GIB)),
        4
    );
    let placed = g.place_run("web").unwrap();
    assert_eq!(placed.vnode, web);
    assert_eq!(g.place_run("new").unwrap().vnode.id, 3);
}

#[test]
fn garbage_closes_its_connection_and_the_others_carry_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let mut g = d.client();
    let id = register(&mut g, Role::Memory, "127.0.0.1:9501", mem(GIB));

    // A connection that stalls half-way through a message holds no one up.
    let mut stalled = TcpStream::connect(&d.addr).unwrap();
    stalled.write_all(&[10, 0]).unwrap();

    let closed = |bytes: &[u8]| {
        let mut s = TcpStream::connect(&d.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // The daemon may close before everything is written.
        let _ = s.write_all(bytes);
        let mut rest = Vec::new();
        // Whatever the daemon says, it then closes (EOF or reset, not a
        // timeout).
        match s.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(e) => assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "not closed"),
        }
    };
    // A length far over the limit.
    closed(&[0xff, 0xff, 0xff, 0x7f, 1, 2, 3]);
    // A zero length.
    closed(&[0, 0, 0, 0]);
    // A fine length with random bytes.
    let mut junk = vec![200, 0, 0, 0];
    let mut x: u32 = 0x1234_5678;
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        junk.push(x as u8);
    }
    closed(&junk);
    // A good request followed by garbage: the first is answered.
    let mut s = TcpStream::connect(&d.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut bytes = encode(&GlobalsRequest::Status);
    bytes.extend_from_slice(&[3, 0, 0, 0, 0xff, 0xff, 0xff]);
    s.write_all(&bytes).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    assert!(u32::from_le_bytes(len) > 0);

    // The established connection and new ones are still served.
    g.heartbeat(id, load(0, 0)).unwrap();
    assert!(d.client().status().unwrap().0[0].up);
    drop(stalled);
}
