//! The memory monitor, served by real memory components: a test client on
//! the fabric (raw frames over TCP) allocates, writes and reads back pages
//! across several vRegions and two memory components, checks the errors
//! the processor will turn into SIGSEGV, frees processes and checks that
//! every frame came back.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use lego_proto::frame::Kind;
use lego_proto::memory::*;
use zerocopy::{FromBytes, IntoBytes};

const ME: u32 = 100;
const RW: u32 = 3;
const GIB: u64 = 1 << 30;

struct Client {
    conn: lego_wire::client::TcpClient,
}

impl Client {
    fn connect(addr: &str) -> Client {
        Client {
            conn: tcp_client(addr, ME),
        }
    }

    /// One request to component `dst`; the reply's payload.
    fn call(&mut self, dst: u32, payload: &[u8]) -> Vec<u8> {
        let (reply, body) = self.conn.call(dst, Kind::Data, payload).expect("a reply");
        assert!(reply.is_reply() && reply.src == dst, "{reply:?}");
        assert_eq!(
            reply.kind,
            Kind::Data,
            "{:?}",
            String::from_utf8_lossy(&body)
        );
        body
    }

    fn mem(&mut self, dst: u32, req: MemRequest, page: Option<&[u8]>) -> (MemReply, Vec<u8>) {
        let mut payload = req.as_bytes().to_vec();
        if let Some(p) = page {
            payload.extend_from_slice(p);
        }
        let body = self.call(dst, &payload);
        let (reply, rest) = MemReply::read_from_prefix(&body).expect("a memory reply");
        (reply, rest.to_vec())
    }

    /// A request without a page; the arguments are MemRequest's fields.
    #[allow(clippy::too_many_arguments)]
    fn op(
        &mut self,
        dst: u32,
        op: u32,
        pid: u32,
        addr: u64,
        len: u64,
        prot: u32,
        flags: u32,
    ) -> MemReply {
        self.mem(
            dst,
            MemRequest {
                op,
                pid,
                addr,
                len,
                arg: 0,
                prot,
                flags,
                ..Default::default()
            },
            None,
        )
        .0
    }

    fn stats(&mut self, dst: u32) -> MemStats {
        let (r, rest) = self.mem(
            dst,
            MemRequest {
                op: OP_STATS,
                ..Default::default()
            },
            None,
        );
        assert_eq!(r.status, OK);
        MemStats::read_from_bytes(&rest).expect("stats")
    }
}

fn page_for(pid: u32, addr: u64) -> Vec<u8> {
    let mut p = vec![0u8; PAGE];
    lego_proto::pattern::fill(addr ^ ((pid as u64) << 48), &mut p);
    p
}

/// A processor's view of the memory components: memory calls go to the
/// process's home, page requests to the owner of the page's vRegion, which
/// the home names when asked for a page it does not own.
struct Rack {
    clients: HashMap<u32, Client>,
    owners: HashMap<(u32, u64), u32>,
    home: u32,
    redirects: u32,
}

impl Rack {
    fn page(
        &mut self,
        op: u32,
        pid: u32,
        addr: u64,
        arg: u64,
        page: Option<&[u8]>,
    ) -> (MemReply, Vec<u8>) {
        let req = MemRequest {
            op,
            pid,
            addr,
            arg,
            ..Default::default()
        };
        let mut dst = *self.owners.get(&(pid, vregion(addr))).unwrap_or(&self.home);
        loop {
            let client = self
                .clients
                .get_mut(&dst)
                .expect("a client for every component");
            let (r, data) = client.mem(dst, req, page);
            if r.status != NOT_OWNER {
                return (r, data);
            }
            self.redirects += 1;
            dst = r.value as u32;
            self.owners.insert((pid, vregion(addr)), dst);
        }
    }

    fn write(&mut self, pid: u32, addr: u64) -> u32 {
        self.page(OP_WRITE, pid, addr, 0, Some(&page_for(pid, addr)))
            .0
            .status
    }

    fn read(&mut self, pid: u32, addr: u64) -> (u32, Vec<u8>) {
        let (r, data) = self.page(OP_READ, pid, addr, 0, None);
        (r.status, data)
    }

    fn call(&mut self, op: u32, pid: u32, addr: u64, len: u64, prot: u32, flags: u32) -> MemReply {
        let home = self.home;
        self.clients
            .get_mut(&home)
            .unwrap()
            .op(home, op, pid, addr, len, prot, flags)
    }

    fn stats(&mut self, id: u32) -> MemStats {
        self.clients.get_mut(&id).unwrap().stats(id)
    }
}

#[test]
fn pages_across_vregions_and_two_memory_components() {
    if !kvm_available() {
        return;
    }
    // Component 1 is the home and hands vRegions to component 2.
    let (m2, a2) = memory_component(2, "64M", &[]);
    let peer = format!("2={a2}");
    let (m1, a1) = memory_component(1, "64M", &["--peer", &peer, "--vregion-peers", "2"]);
    let mut rack = Rack {
        clients: HashMap::from([(1, Client::connect(&a1)), (2, Client::connect(&a2))]),
        owners: HashMap::new(),
        home: 1,
        redirects: 0,
    };
    let before = [rack.stats(1), rack.stats(2)];
    let pid = 7;
    assert_eq!(rack.call(OP_NEW, pid, 0x40_0000, 0, 0, 0).status, OK);
    // Eight pages in each of four vRegions (1 GiB apart): the home owns the
    // first, the rest alternate between component 2 and the home.
    let regions = [GIB, 2 * GIB, 5 * GIB, 6 * GIB];
    for base in regions {
        let r = rack.call(OP_MMAP, pid, base, 8 * PAGE as u64, RW, FLAG_FIXED);
        assert_eq!((r.status, r.value), (OK, base));
    }
    for base in regions {
        for i in 0..8 {
            let a = base + i * PAGE as u64;
            assert_eq!(rack.write(pid, a), OK, "write {a:#x}");
        }
    }
    for base in regions {
        for i in 0..8 {
            let a = base + i * PAGE as u64;
            assert_eq!(
                rack.read(pid, a),
                (OK, page_for(pid, a)),
                "page {a:#x} read back"
            );
        }
    }
    let owners: Vec<u32> = regions
        .iter()
        .map(|&b| rack.owners.get(&(pid, vregion(b))).copied().unwrap_or(1))
        .collect();
    assert_eq!(
        owners,
        [1, 2, 1, 2],
        "the home owns the first vRegion and hands out the rest"
    );
    assert_eq!(
        rack.redirects, 2,
        "one redirect per vRegion owned elsewhere"
    );
    assert_eq!(rack.stats(1).vregions_handed_out, 2);
    assert_eq!(rack.stats(2).guests, 1);
    // A mapped page never touched reads as zeros, wherever it lives.
    rack.call(OP_MMAP, pid, 3 * GIB, PAGE as u64, RW, FLAG_FIXED);
    let (s, zero) = rack.read(pid, 3 * GIB);
    assert_eq!(s, OK);
    assert!(zero.iter().all(|&b| b == 0));
    // Read-and-write-back in one request, both pages at one owner.
    let (r, data) = rack.page(
        OP_READ_WRITE,
        pid,
        2 * GIB,
        6 * GIB + PAGE as u64,
        Some(&page_for(pid, 99)),
    );
    assert_eq!((r.status, data), (OK, page_for(pid, 2 * GIB)));
    assert_eq!(
        rack.read(pid, 6 * GIB + PAGE as u64),
        (OK, page_for(pid, 99))
    );
    // The errors the processor turns into SIGSEGV, at the home and at the
    // owner (which knows the VMAs of its vRegions).
    assert_eq!(rack.read(pid, 7 * GIB).0, EFAULT);
    assert_eq!(rack.read(pid, 2 * GIB + 8 * PAGE as u64).0, EFAULT);
    assert_eq!(
        rack.call(OP_MPROTECT, pid, 2 * GIB, PAGE as u64, 1, 0)
            .status,
        OK
    );
    assert_eq!(rack.write(pid, 2 * GIB), EACCES);
    assert_eq!(
        rack.call(OP_MPROTECT, pid, GIB, PAGE as u64, 1, 0).status,
        OK
    );
    assert_eq!(rack.write(pid, GIB), EACCES);
    assert_eq!(
        rack.call(OP_MPROTECT, pid, 9 * GIB, PAGE as u64, 1, 0)
            .status,
        ENOMEM
    );
    assert_eq!(rack.read(pid + 1000, GIB).0, ESRCH);
    // brk grows the heap (the home's first vRegion).
    let r = rack.call(OP_BRK, pid, 0x40_0000 + 3 * PAGE as u64, 0, 0, 0);
    assert_eq!((r.status, r.value), (OK, 0x40_0000 + 3 * PAGE as u64));
    assert_eq!(rack.read(pid, 0x40_0000 + 2 * PAGE as u64).0, OK);
    // munmap of half a vRegion's pages at the home frees them at its owner.
    let used = rack.stats(2).frames_free;
    assert_eq!(
        rack.call(
            OP_MUNMAP,
            pid,
            2 * GIB + 4 * PAGE as u64,
            4 * PAGE as u64,
            0,
            0
        )
        .status,
        OK
    );
    assert_eq!(rack.stats(2).frames_free, used + 4);
    // mremap moves component 2's mapping at 6 GiB (something sits right
    // after it, so it cannot grow in place); its pages come along.
    rack.call(
        OP_MMAP,
        pid,
        6 * GIB + 8 * PAGE as u64,
        PAGE as u64,
        RW,
        FLAG_FIXED,
    );
    let (r, _) = rack.clients.get_mut(&1).unwrap().mem(
        1,
        MemRequest {
            op: OP_MREMAP,
            pid,
            addr: 6 * GIB,
            len: 8 * PAGE as u64,
            arg: 64 * PAGE as u64,
            flags: FLAG_MAYMOVE,
            ..Default::default()
        },
        None,
    );
    assert_eq!(r.status, OK);
    let moved = r.value;
    assert_ne!(moved, 6 * GIB);
    for i in 0..8u64 {
        let want = if i == 1 {
            page_for(pid, 99)
        } else {
            page_for(pid, 6 * GIB + i * PAGE as u64)
        };
        assert_eq!(
            rack.read(pid, moved + i * PAGE as u64),
            (OK, want),
            "moved page {i}"
        );
    }
    assert_eq!(
        rack.read(pid, 6 * GIB).0,
        EFAULT,
        "the old place is unmapped"
    );
    // A second process homed at component 2 at the same time.
    rack.home = 2;
    assert_eq!(rack.call(OP_NEW, 8, 0x40_0000, 0, 0, 0).status, OK);
    rack.call(OP_MMAP, 8, GIB, PAGE as u64, RW, FLAG_FIXED);
    assert_eq!(rack.write(8, GIB), OK);
    assert_eq!(rack.read(8, GIB), (OK, page_for(8, GIB)));
    assert_eq!(rack.call(OP_EXIT, 8, 0, 0, 0, 0).status, OK);
    // Exit at the home gives every frame back, on both components.
    rack.home = 1;
    let r = rack.call(OP_EXIT, pid, 0, 0, 0, 0);
    assert_eq!(r.status, OK);
    for (i, id) in [1u32, 2].into_iter().enumerate() {
        let after = rack.stats(id);
        assert_eq!(
            after.frames_free, before[i].frames_free,
            "every frame came back to component {id}"
        );
        assert_eq!((after.processes, after.guests), (0, 0));
    }
    assert_eq!(m1.stop(), Some(0));
    assert_eq!(m2.stop(), Some(0));
}

/// The owner of a process's vRegions dies: the home says which component
/// did not answer, within the fabric timeout, and keeps serving.
#[test]
fn a_dead_vregion_peer_is_named_and_the_home_keeps_serving() {
    if !kvm_available() {
        return;
    }
    let (m2, a2) = memory_component(2, "64M", &[]);
    let peer = format!("2={a2}");
    let (m1, a1) = memory_component(
        1,
        "64M",
        &[
            "--peer",
            &peer,
            "--vregion-peers",
            "2",
            "--fabric-timeout-ms",
            "500",
        ],
    );
    let mut c = Client::connect(&a1);
    assert_eq!(c.op(1, OP_NEW, 5, 0x40_0000, 0, 0, 0).status, OK);
    assert_eq!(
        c.op(1, OP_MMAP, 5, GIB, PAGE as u64, RW, FLAG_FIXED).status,
        OK
    );
    drop(m2);
    let started = std::time::Instant::now();
    let r = c.op(1, OP_MMAP, 5, 2 * GIB, PAGE as u64, RW, FLAG_FIXED);
    assert_eq!((r.status, r.value), (PEER_FAILED, 2));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The home's own vRegion still works.
    let (r, _) = c.mem(
        1,
        MemRequest {
            op: OP_WRITE,
            pid: 5,
            addr: GIB,
            ..Default::default()
        },
        Some(&[7; PAGE]),
    );
    assert_eq!(r.status, OK);
    assert_eq!(c.stats(1).peer_failures, 1);
    assert_eq!(m1.stop(), Some(0));
}

#[test]
fn vregion_peers_must_be_known_memory_components() {
    for (args, needle) in [
        (
            &["--role", "memory", "--id", "1", "--vregion-peers", "2"][..],
            "add --peer 2=ADDR",
        ),
        (
            &["--role", "memory", "--id", "1", "--vregion-peers", "1"][..],
            "this component itself",
        ),
        (
            &[
                "--role",
                "processor",
                "--id",
                "1",
                "--peer",
                "2=127.0.0.1:9",
                "--vregion-peers",
                "2",
            ][..],
            "only a memory component",
        ),
        (
            &[
                "--role",
                "memory",
                "--id",
                "1",
                "--peer",
                "2=127.0.0.1:9",
                "--vregion-peers",
                "2,2",
            ][..],
            "given twice",
        ),
    ] {
        expect_failure(&run(args), 2, &["--vregion-peers", needle]);
    }
}

#[test]
fn out_of_frames_is_an_error_and_the_component_stays_healthy() {
    if !kvm_available() {
        return;
    }
    // The least a memory component may have (its queues take 20.5 MiB).
    let (m, addr) = memory_component(1, "40M", &[]);
    let mut c = Client::connect(&addr);
    let total = c.stats(1).frames_total;
    assert!(total > 16 && total < 40 * 256, "{total} frames");
    c.op(1, OP_NEW, 1, 0x40_0000, 0, 0, 0);
    c.op(
        1,
        OP_MMAP,
        1,
        GIB,
        (total + 8) * PAGE as u64,
        RW,
        FLAG_FIXED,
    );
    let mut touched = 0;
    let status = loop {
        let r = c.op(1, OP_READ, 1, GIB + touched * PAGE as u64, 0, 0, 0);
        if r.status != OK {
            break r.status;
        }
        touched += 1;
    };
    assert_eq!((status, touched), (OUT_OF_FRAMES, total));
    // Healthy: stats, another process, and freeing all work.
    assert_eq!(c.stats(1).frames_free, 0);
    assert_eq!(c.op(1, OP_NEW, 2, 0x40_0000, 0, 0, 0).status, OK);
    assert_eq!(c.op(1, OP_EXIT, 1, 0, 0, 0, 0).value, total);
    assert_eq!(c.stats(1).frames_free, total);
    assert_eq!(m.stop(), Some(0));
}

#[test]
fn malformed_memory_requests_get_an_error_reply() {
    if !kvm_available() {
        return;
    }
    let (m, addr) = memory_component(1, "64M", &[]);
    let mut c = Client::connect(&addr);
    let body = c.call(1, b"hello");
    assert_eq!(
        MemReply::read_from_prefix(&body).unwrap().0.status,
        BAD_REQUEST
    );
    let (r, _) = c.mem(
        1,
        MemRequest {
            op: 999,
            pid: 1,
            ..Default::default()
        },
        None,
    );
    assert_eq!(
        r.status, BAD_REQUEST,
        "an unknown operation, whatever the process"
    );
    c.op(1, OP_NEW, 1, 0x40_0000, 0, 0, 0);
    let (r, _) = c.mem(
        1,
        MemRequest {
            op: 999,
            pid: 1,
            ..Default::default()
        },
        None,
    );
    assert_eq!(r.status, BAD_REQUEST);
    // A write without its page.
    let (r, _) = c.mem(
        1,
        MemRequest {
            op: OP_WRITE,
            pid: 1,
            addr: GIB,
            ..Default::default()
        },
        None,
    );
    assert_eq!(r.status, BAD_REQUEST);
    assert_eq!(
        c.op(1, OP_MMAP, 1, 1, PAGE as u64, RW, FLAG_FIXED).status,
        EINVAL
    );
    assert!(c.stats(1).errors >= 4);
    assert_eq!(m.stop(), Some(0));
}
