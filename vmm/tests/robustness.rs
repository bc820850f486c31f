//! A component under attack or abuse, end to end with real components:
//! frames it cannot take, forged and replayed frames, a second process
//! with its id, a stats request while its ExCache is stuck, and idling.
//! Each time the component says why (an error frame, a counter, a
//! sentence) and goes on serving the rack.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;
use lego_proto::frame::{self, ErrorCode, Header, Kind, FLAG_FROM_MEMORY};
use lego_proto::memory::*;
use lego_wire::auth::ROLE_TOOL;
use lego_wire::client::{ClientError, ShmClient, TcpClient};
use zerocopy::{FromBytes, IntoBytes};

const ME: u32 = 100;

fn ping(c: &mut TcpClient, dst: u32, payload: &[u8]) {
    let (h, body) = c.call(dst, Kind::Ping, payload).expect("a reply");
    assert_eq!(h.kind, Kind::Pong, "{:?}", String::from_utf8_lossy(&body));
    assert_eq!(body, payload);
}

/// The code and sentence of an error reply.
fn error_of(reply: (Header, Vec<u8>)) -> (ErrorCode, String) {
    assert_eq!(reply.0.kind, Kind::Error, "{:?}", reply.0);
    let (code, detail) = frame::decode_error(&reply.1).expect("an error payload");
    (code, detail.to_owned())
}

/// The component's fabric counters once `done` holds for them (the
/// connections being counted may still be closing), or after 5 s.
fn stats_when(
    c: &mut TcpClient,
    dst: u32,
    done: impl Fn(&lego_proto::fabric::FabricStats) -> bool,
) -> lego_proto::fabric::FabricStats {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = fabric_stats(c, dst);
        if done(&s) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn frames_too_large_or_misaddressed_are_refused_and_the_next_ones_served_over_tcp() {
    if !kvm_available() {
        return;
    }
    let (m, addr) = memory_component(1, "128M", &[]);
    let mut c = tcp_client(&addr, ME);
    let max = c.peer.max_frame as usize;
    // A memory component takes write-backs of 64 pages.
    assert_eq!(max, lego_proto::hypercall::FABRIC_MEMORY_BUFFER as usize);
    // What the issue found: one well-formed Ping larger than the guest's
    // buffers (9000 bytes then) held the component forever. Now it is
    // refused, with a sentence.
    let (code, detail) = error_of(
        c.call(1, Kind::Ping, &vec![0x42; max + 1000])
            .expect("a reply"),
    );
    assert_eq!(code, ErrorCode::TooLarge);
    assert!(
        detail.contains(&format!("takes frames of at most {max} bytes")),
        "{detail}"
    );
    // The boundary: the largest frame the guest takes goes through, one
    // byte more does not. The guest sends smaller frames than it takes:
    // its Pong that large is an error with a sentence, and the largest
    // Pong it sends comes back whole.
    let at_limit = vec![7u8; max - frame::HEADER_LEN];
    let (code, detail) = error_of(c.call(1, Kind::Ping, &at_limit).expect("a reply"));
    assert_eq!(code, ErrorCode::TooLarge);
    assert!(
        detail.contains("is larger than component 1 sends"),
        "{detail}"
    );
    let largest_sent = lego_proto::hypercall::FABRIC_BUFFER as usize - frame::HEADER_LEN;
    ping(&mut c, 1, &vec![9u8; largest_sent]);
    let over = vec![7u8; max - frame::HEADER_LEN + 1];
    let (code, _) = error_of(c.call(1, Kind::Ping, &over).expect("a reply"));
    assert_eq!(code, ErrorCode::TooLarge);
    // A frame for a component that is not this one is dropped.
    let id = c.next_id();
    c.send(&Header::request(Kind::Ping, id, ME, 9, 4), b"lost")
        .unwrap();
    // Frames behind them are served, on this connection and a new one.
    ping(&mut c, 1, b"after");
    ping(&mut tcp_client(&addr, ME + 1), 1, b"another");
    let stats = fabric_stats(&mut c, 1);
    assert_eq!((stats.too_large, stats.misrouted), (2, 1), "{stats:?}");
    drop(m);
}

#[test]
fn frames_too_large_are_refused_at_the_sender_over_shared_memory() {
    if !kvm_available() {
        return;
    }
    let (m, addr) = memory_component(1, "128M", &[]);
    let dir = m.own_dir.clone().expect("its shm dir");
    let mut c = ShmClient::open(&dir, ME, ROLE_TOOL, &rack_key(), Duration::from_secs(5))
        .expect("a shared-memory client");
    let (h, body) = c.call(1, Kind::Ping, b"first").expect("a pong");
    assert_eq!((h.kind, &body[..]), (Kind::Pong, &b"first"[..]));
    // The ring says how large a frame its reader takes: refused here,
    // before anything is queued.
    let too_large = vec![1; lego_proto::hypercall::FABRIC_MEMORY_BUFFER as usize + 1000];
    let err = c.call(1, Kind::Ping, &too_large).unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Shm(lego_wire::shm::ShmError::TooLarge { .. })
        ),
        "{err}"
    );
    let max = lego_proto::hypercall::FABRIC_MEMORY_BUFFER as usize;
    let sentence = format!(
        "it takes frames of at most {max} bytes, and this one has {}",
        frame::HEADER_LEN + too_large.len()
    );
    assert!(err.to_string().contains(&sentence), "{err}");
    let (h, _) = c.call(1, Kind::Ping, b"second").expect("a pong");
    assert_eq!(h.kind, Kind::Pong);
    let stats = fabric_stats(&mut tcp_client(&addr, ME + 1), 1);
    assert_eq!(
        stats.too_large, 0,
        "nothing too large reached it: {stats:?}"
    );
}

#[test]
fn a_guest_that_takes_nothing_gets_frames_refused_not_queued_forever() {
    if !kvm_available() {
        return;
    }
    // Under --gdb the guest waits for a debugger before its first
    // instruction: it never takes a frame.
    let dir = own_shm_dir();
    let mut p = Process::start(&[
        "--role",
        "memory",
        "--id",
        "1",
        "--listen",
        "127.0.0.1:0",
        "--gdb",
        "127.0.0.1:0",
        "--fabric-timeout-ms",
        "300",
        "--shm-dir",
        &dir.to_string_lossy(),
    ]);
    p.own_dir = Some(dir);
    let addr = p.listen_address();
    let mut c = tcp_client(&addr, ME);
    for i in 0..3u8 {
        let start = Instant::now();
        let (code, detail) = error_of(c.call(1, Kind::Ping, &[i; 16]).expect("a reply"));
        assert_eq!(code, ErrorCode::NotTaken);
        assert!(
            detail.contains("component 1's guest did not take the frame within 300 ms"),
            "{detail}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
    }
    // The VMM itself still answers.
    let stats = fabric_stats(&mut c, 1);
    assert_eq!(stats.guest_full_drops, 3, "{stats:?}");
}

#[test]
fn forged_and_replayed_frames_over_tcp_are_dropped_and_counted() {
    if !kvm_available() {
        return;
    }
    let (m, addr) = memory_component(1, "128M", &[]);
    let mut real = tcp_client(&addr, ME);
    // The rack before: a process with a page written.
    let page = vec![0x5au8; PAGE];
    let new = MemRequest {
        op: OP_NEW,
        pid: 7,
        addr: 0x40_0000,
        ..Default::default()
    };
    assert_eq!(mem(&mut real, 1, new, None).0.status, OK);
    let map = MemRequest {
        op: OP_MMAP,
        pid: 7,
        addr: 1 << 30,
        len: PAGE as u64,
        prot: 3,
        flags: FLAG_FIXED,
        ..Default::default()
    };
    assert_eq!(mem(&mut real, 1, map, None).0.status, OK);
    let write = MemRequest {
        op: OP_WRITE,
        pid: 7,
        addr: 1 << 30,
        ..Default::default()
    };
    assert_eq!(mem(&mut real, 1, write, Some(&page)).0.status, OK);

    // A greeting under another key: the component will not talk.
    let other = lego_wire::key::RackKey::from_bytes([0x11; 32]);
    let refused = TcpClient::connect(&addr, ME + 1, ROLE_TOOL, &other, Duration::from_secs(5));
    assert!(refused.is_err(), "a client with another key was greeted");

    // A wrong tag: a valid frame with one payload byte changed after sealing.
    let mut c = tcp_client(&addr, ME + 2);
    let id = c.next_id();
    let mut forged = c.seal(
        &Header::request(Kind::Ping, id, ME + 2, 1, 4).encode(),
        b"ping",
    );
    forged[frame::HEADER_LEN] ^= 1;
    c.write_raw(&forged).unwrap();
    expect_closed(c.stream());

    // No tag at all: a bare frame, then the connection closes.
    let mut c = tcp_client(&addr, ME + 3);
    let mut bare = Header::request(Kind::Ping, 1, ME + 3, 1, 4)
        .encode()
        .to_vec();
    bare.extend_from_slice(b"ping");
    c.write_raw(&bare).unwrap();
    drop(c);

    // A replayed frame: the same sealed bytes twice on one connection get
    // one answer; on another connection they are not valid at all.
    let mut c = tcp_client(&addr, ME + 4);
    let id = c.next_id();
    let sealed = c.seal(
        &Header::request(Kind::Ping, id, ME + 4, 1, 5).encode(),
        b"once!",
    );
    c.write_raw(&sealed).unwrap();
    c.write_raw(&sealed).unwrap();
    let (h, body) = c.recv().expect("the first is answered");
    assert_eq!(
        (h.kind, h.request_id, &body[..]),
        (Kind::Pong, id, &b"once!"[..])
    );
    ping(&mut c, 1, b"next");
    let mut elsewhere = tcp_client(&addr, ME + 4);
    elsewhere.write_raw(&sealed).unwrap();
    expect_closed(elsewhere.stream());

    // Another source id than the connection greeted with.
    let id = c.next_id();
    c.send(&Header::request(Kind::Ping, id, 2, 1, 4), b"mine")
        .unwrap();
    ping(&mut c, 1, b"still served");

    // A claim to be the process's home (and a flag only a VMM may set):
    // refused, the page untouched.
    let mut claim = MemRequest {
        op: OP_WRITE,
        pid: 7,
        addr: 1 << 30,
        flags: FLAG_FROM_HOME,
        ..Default::default()
    }
    .as_bytes()
    .to_vec();
    claim.extend_from_slice(&[0u8; PAGE]);
    let mut header = Header::request(Kind::Data, c.next_id(), ME + 4, 1, claim.len() as u32);
    header.flags |= FLAG_FROM_MEMORY;
    c.send(&header, &claim).unwrap();
    let (h, body) = c.recv().expect("an answer");
    let (r, _) = MemReply::read_from_prefix(&body).unwrap();
    assert_eq!((h.request_id, r.status), (header.request_id, NOT_HOME));

    // Each counted; the rack is as it was and serves.
    let stats = stats_when(&mut real, 1, |s| s.unauthenticated >= 4);
    assert_eq!(
        (stats.unauthenticated, stats.replayed, stats.forged_source),
        (4, 1, 1),
        "another key's greeting, a wrong tag, a missing one, a replay on another connection; {stats:?}"
    );
    assert_eq!(memory_stats(&mut real, 1).refused_claims, 1);
    let read = MemRequest {
        op: OP_READ,
        pid: 7,
        addr: 1 << 30,
        ..Default::default()
    };
    let (r, got) = mem(&mut real, 1, read, None);
    assert_eq!(r.status, OK);
    assert_eq!(got, page);
    drop(m);
}

/// Reads until the component closes the connection.
fn expect_closed(mut conn: &std::net::TcpStream) {
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut sink = [0u8; 256];
    loop {
        match conn.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("the component did not close the connection: {e}"),
        }
    }
}

#[test]
fn a_home_claim_from_a_non_home_is_refused_across_components() {
    if !kvm_available() {
        return;
    }
    let (owner, owner_addr) = memory_component(2, "128M", &[]);
    let peer = format!("2={owner_addr}");
    let (home, home_addr) = memory_component(1, "128M", &["--peer", &peer, "--vregion-peers", "2"]);
    let mut c = tcp_client(&home_addr, ME);
    let new = MemRequest {
        op: OP_NEW,
        pid: 7,
        addr: 0x40_0000,
        ..Default::default()
    };
    assert_eq!(mem(&mut c, 1, new, None).0.status, OK);
    // The first vRegion stays at the home; the second, read-only, goes to 2.
    for (i, prot) in [(1u64, 3u32), (2, 1)] {
        let map = MemRequest {
            op: OP_MMAP,
            pid: 7,
            addr: i << 30,
            len: PAGE as u64,
            prot,
            flags: FLAG_FIXED,
            ..Default::default()
        };
        assert_eq!(
            mem(&mut c, 1, map, None).0,
            MemReply {
                status: OK,
                epoch: 0,
                value: i << 30
            }
        );
    }
    let mut o = tcp_client(&owner_addr, ME);
    let read = MemRequest {
        op: OP_READ,
        pid: 7,
        addr: 2 << 30,
        ..Default::default()
    };
    let (r, before) = mem(&mut o, 2, read, None);
    assert_eq!(r.status, OK);
    // The home's syncs reached the owner as from memory component 1; a
    // tool claiming to be the home, to write a read-only page, is not.
    let write = MemRequest {
        op: OP_WRITE,
        pid: 7,
        addr: 2 << 30,
        flags: FLAG_FROM_HOME,
        ..Default::default()
    };
    let (r, _) = mem(&mut o, 2, write, Some(&[9u8; PAGE]));
    assert_eq!(r.status, NOT_HOME);
    let (r, after) = mem(&mut o, 2, read, None);
    assert_eq!((r.status, &after), (OK, &before));
    assert_eq!(memory_stats(&mut o, 2).refused_claims, 1);
    // The home still drives its owner: exit frees the owner's part.
    let exit = MemRequest {
        op: OP_EXIT,
        pid: 7,
        ..Default::default()
    };
    assert_eq!(mem(&mut c, 1, exit, None).0.status, OK);
    assert_eq!(memory_stats(&mut o, 2).guests, 0);
    drop((home, owner));
}

#[test]
fn forged_and_replayed_frames_in_a_ring_are_dropped_and_counted() {
    if !kvm_available() {
        return;
    }
    use lego_wire::shm::{CAPACITY, DATA_OFFSET, OFF_TAIL};
    use std::os::unix::fs::FileExt;
    let (m, addr) = memory_component(1, "128M", &[]);
    let dir = m.own_dir.clone().expect("its shm dir");
    let mut c = ShmClient::open(&dir, ME, ROLE_TOOL, &rack_key(), Duration::from_secs(5))
        .expect("a shared-memory client");
    let ring = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(c.ring_to(1))
        .ok();
    assert!(ring.is_none(), "no ring before the first frame");
    let (h, _) = c.call(1, Kind::Ping, b"first").expect("a pong");
    assert_eq!(h.kind, Kind::Pong);
    let ring = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(c.ring_to(1))
        .expect("the ring");
    let tail = |ring: &std::fs::File| {
        let mut t = [0u8; 8];
        ring.read_exact_at(&mut t, OFF_TAIL as u64).unwrap();
        u64::from_le_bytes(t)
    };
    let data_at = |pos: u64| DATA_OFFSET + pos % CAPACITY;
    // A replay: the bytes of the last frame, appended again.
    let before = tail(&ring);
    let (h, _) = c.call(1, Kind::Ping, b"again").expect("a pong");
    assert_eq!(h.kind, Kind::Pong);
    let after = tail(&ring);
    let mut copy = vec![0u8; (after - before) as usize];
    ring.read_exact_at(&mut copy, data_at(before)).unwrap();
    ring.write_all_at(&copy, data_at(after)).unwrap();
    ring.write_all_at(&(after + copy.len() as u64).to_le_bytes(), OFF_TAIL as u64)
        .unwrap();
    let (h, body) = c.call(1, Kind::Ping, b"third").expect("a pong");
    assert_eq!((h.kind, &body[..]), (Kind::Pong, &b"third"[..]));
    // Another source than the ring's writer, sealed properly.
    let id = c.next_id();
    c.send(&Header::request(Kind::Ping, id, 2, 1, 4), b"mine")
        .unwrap();
    let (h, body) = c.call(1, Kind::Ping, b"fourth").expect("a pong");
    assert_eq!((h.kind, &body[..]), (Kind::Pong, &b"fourth"[..]));
    // A frame with no valid tag: its header and payload, a zero trailer.
    // Its length cannot be trusted, so the reader skips to the tail; it
    // is given time to (it wakes at least once a second) before the next.
    let at = tail(&ring);
    let mut bogus = Header::request(Kind::Ping, 77, ME, 1, 4).encode().to_vec();
    bogus.extend_from_slice(b"fake");
    bogus.extend_from_slice(&[0u8; lego_wire::auth::TRAILER_LEN]);
    ring.write_all_at(&bogus, data_at(at)).unwrap();
    ring.write_all_at(&(at + bogus.len() as u64).to_le_bytes(), OFF_TAIL as u64)
        .unwrap();
    let mut watcher = tcp_client(&addr, ME + 1);
    let stats = stats_when(&mut watcher, 1, |s| s.unauthenticated >= 1);
    let (h, body) = c.call(1, Kind::Ping, b"fifth").expect("a pong");
    assert_eq!((h.kind, &body[..]), (Kind::Pong, &b"fifth"[..]));
    assert_eq!(
        (stats.replayed, stats.unauthenticated, stats.forged_source),
        (1, 1, 1),
        "{stats:?}"
    );
    // The replayed Ping was not answered twice: every reply had its own id.
    drop(m);
}

#[test]
fn a_second_process_with_a_live_id_refuses_to_start_and_two_answering_are_reported() {
    if !kvm_available() {
        return;
    }
    let (first, _) = memory_component(5, "128M", &[]);
    let dir = first.own_dir.clone().expect("its shm dir");
    let out = run(&[
        "--role",
        "memory",
        "--id",
        "5",
        "--listen",
        "127.0.0.1:0",
        "--shm-dir",
        &dir.to_string_lossy(),
    ]);
    expect_failure(
        &out,
        2,
        &[&format!(
            "component 5 is already running on this host as process {}",
            first.child.id()
        )],
    );

    // Two processes speaking as component 9 to component 1 (on two hosts,
    // or two shared-memory directories): component 1 says so.
    let (mut one, addr) = memory_component(1, "128M", &[]);
    let peer = format!("1={addr}");
    let other_dir = own_shm_dir();
    let mut nine = Process::start(&[
        "--role",
        "processor",
        "--id",
        "9",
        "--peer",
        &peer,
        "--shm-dir",
        &other_dir.to_string_lossy(),
        "--fabric-test",
        "pingpong:1:1000000",
        "--log-level",
        "info",
    ]);
    nine.own_dir = Some(other_dir);
    nine.wait_for("fabric: the guest's queues are set up");
    std::thread::sleep(Duration::from_millis(300));
    let mut impostor = tcp_client(&addr, 9);
    let line = one.wait_for("component 9 is answered by two processes");
    assert!(
        line.contains(&nine.child.id().to_string())
            && line.contains(&std::process::id().to_string()),
        "{line}"
    );
    let stats = fabric_stats(&mut impostor, 1);
    assert!(stats.duplicate_ids >= 1, "{stats:?}");
}

#[test]
fn a_stats_request_is_answered_at_once_while_a_miss_is_stuck() {
    if !kvm_available() {
        return;
    }
    use lego_proto::process::{ExCacheStats, EXCACHE_STATS_REQUEST};
    // Long enough a run to be caught in the middle (0.4 s for 64 MiB).
    let (m, addr) = memory_component(1, "512M", &[]);
    let peer = format!("1={addr}");
    let dir = own_shm_dir();
    let mut p = Process::start(&[
        "--role",
        "processor",
        "--id",
        "50",
        "--listen",
        "127.0.0.1:0",
        "--excache",
        "1M",
        "--peer",
        &peer,
        "--fabric-timeout-ms",
        "5000",
        "--shm-dir",
        &dir.to_string_lossy(),
        "--run-workload",
        "pattern:256M",
    ]);
    p.own_dir = Some(dir);
    let me = p.listen_address();
    p.wait_for("workload: process");
    // Asked until a snapshot taken while it runs comes (a loaded host may
    // take longer than the snapshot's period to make the first).
    let mut c = tcp_client(&me, ME);
    let running = excache_stats(&mut c, 50);
    assert!(running.misses > 0, "{running:?}");
    // The memory component stops answering: the vCPU's miss now waits for
    // the whole fabric timeout.
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(m.child.id() as i32, libc::SIGSTOP) };
    std::thread::sleep(Duration::from_millis(200));
    let mut took = Vec::new();
    let mut last = ExCacheStats::default();
    for _ in 0..15 {
        let t = Instant::now();
        let body = c.data(50, &EXCACHE_STATS_REQUEST).expect("the stats");
        took.push(t.elapsed());
        last = ExCacheStats::read_from_bytes(&body).expect("ExCacheStats");
    }
    // SAFETY: as above.
    unsafe { libc::kill(m.child.id() as i32, libc::SIGCONT) };
    took.sort();
    let median = took[took.len() / 2];
    assert!(
        median < Duration::from_millis(5),
        "a stats request waited for the stuck miss: median {median:?} of {took:?}"
    );
    // What the snapshot held: the counters as they were, not zeros.
    assert!(last.misses >= running.misses, "{last:?}");
}

/// Percent of one core the process used over `window`.
fn cpu_percent(pid: u32, window: Duration) -> f64 {
    let ticks = || -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("its stat");
        // The fields after the command name (which may hold spaces).
        let rest = &stat[stat.rfind(')').expect("a stat line") + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let a = ticks();
    std::thread::sleep(window);
    let b = ticks();
    100.0 * (b - a) as f64 / hz / window.as_secs_f64()
}

#[test]
fn an_idle_component_is_idle_and_answers_at_once() {
    if !kvm_available() {
        return;
    }
    let (m, addr) = memory_component(1, "128M", &[]);
    let mut c = tcp_client(&addr, ME);
    ping(&mut c, 1, b"warm up");
    let mut warm: Vec<Duration> = (0..50)
        .map(|_| {
            let t = Instant::now();
            ping(&mut c, 1, b"warm");
            t.elapsed()
        })
        .collect();
    warm.sort();
    let warm = warm[warm.len() / 2];
    let idle = cpu_percent(m.child.id(), Duration::from_secs(10));
    assert!(idle < 0.5, "an idle component used {idle:.2}% of a core");
    // The first request after a while idle is not slower than the others
    // (nothing waits for a timer to notice it).
    let mut first: Vec<Duration> = (0..5)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(1500));
            let t = Instant::now();
            ping(&mut c, 1, b"after idling");
            t.elapsed()
        })
        .collect();
    first.sort();
    let first = first[first.len() / 2];
    assert!(
        first < warm * 3 + Duration::from_millis(1),
        "first request after idling {first:?}, warm {warm:?}"
    );
    let mut w = c.stream();
    let _ = w.flush();
}
