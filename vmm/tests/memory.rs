//! The memory monitor, served by real memory components: a test client on
//! the fabric (raw frames over TCP) allocates, writes and reads back pages
//! across several vRegions and two memory components, checks the errors
//! the processor will turn into SIGSEGV, frees processes and checks that
//! every frame came back.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use lego_proto::frame::{Header, Kind, HEADER_LEN};
use lego_proto::memory::*;
use zerocopy::{FromBytes, IntoBytes};

const ME: u32 = 100;
const RW: u32 = 3;
const GIB: u64 = 1 << 30;

struct Client {
    conn: TcpStream,
    next: u64,
}

impl Client {
    fn connect(addr: &str) -> Client {
        let conn = TcpStream::connect(addr).expect("connect to the memory component");
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn.set_nodelay(true).unwrap();
        Client { conn, next: 1 }
    }

    /// One request to component `dst`; the reply's payload.
    fn call(&mut self, dst: u32, payload: &[u8]) -> Vec<u8> {
        let id = self.next;
        self.next += 1;
        let header = Header::request(Kind::Data, id, ME, dst, payload.len() as u32);
        let mut frame = header.encode().to_vec();
        frame.extend_from_slice(payload);
        self.conn.write_all(&frame).expect("send");
        let mut head = [0u8; HEADER_LEN];
        self.conn.read_exact(&mut head).expect("reply header");
        let reply = Header::decode(&head).expect("a valid reply header");
        let mut body = vec![0u8; reply.length as usize];
        self.conn.read_exact(&mut body).expect("reply body");
        assert!(
            reply.is_reply() && reply.request_id == id && reply.src == dst,
            "{reply:?}"
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

fn memory_component(id: u32, mem: &str) -> (Process, String) {
    let id_text = id.to_string();
    let mut p = Process::start(&[
        "--role",
        "memory",
        "--id",
        &id_text,
        "--mem",
        mem,
        "--listen",
        "127.0.0.1:0",
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

#[test]
fn pages_across_vregions_and_two_memory_components() {
    if !kvm_available() {
        return;
    }
    let (m1, a1) = memory_component(1, "64M");
    let (m2, a2) = memory_component(2, "64M");
    for (dst, addr, pid) in [(1u32, &a1, 7u32), (2, &a2, 8)] {
        let mut c = Client::connect(addr);
        let before = c.stats(dst);
        assert_eq!(c.op(dst, OP_NEW, pid, 0x40_0000, 0, 0, 0).status, OK);
        // Eight pages in each of three vRegions (1 GiB apart).
        let regions = [GIB, 2 * GIB, 5 * GIB];
        for base in regions {
            let r = c.op(dst, OP_MMAP, pid, base, 8 * PAGE as u64, RW, FLAG_FIXED);
            assert_eq!((r.status, r.value), (OK, base));
        }
        for base in regions {
            for i in 0..8 {
                let a = base + i * PAGE as u64;
                let (r, _) = c.mem(
                    dst,
                    MemRequest {
                        op: OP_WRITE,
                        pid,
                        addr: a,
                        ..Default::default()
                    },
                    Some(&page_for(pid, a)),
                );
                assert_eq!(r.status, OK, "write {a:#x}");
            }
        }
        for base in regions {
            for i in 0..8 {
                let a = base + i * PAGE as u64;
                let (r, data) = c.mem(
                    dst,
                    MemRequest {
                        op: OP_READ,
                        pid,
                        addr: a,
                        ..Default::default()
                    },
                    None,
                );
                assert_eq!(r.status, OK);
                assert_eq!(data, page_for(pid, a), "page {a:#x} read back");
            }
        }
        // A mapped page never touched reads as zeros.
        c.op(dst, OP_MMAP, pid, 3 * GIB, PAGE as u64, RW, FLAG_FIXED);
        let (r, zero) = c.mem(
            dst,
            MemRequest {
                op: OP_READ,
                pid,
                addr: 3 * GIB,
                ..Default::default()
            },
            None,
        );
        assert_eq!(r.status, OK);
        assert!(zero.iter().all(|&b| b == 0));
        // Read-and-write-back in one request.
        let (r, data) = c.mem(
            dst,
            MemRequest {
                op: OP_READ_WRITE,
                pid,
                addr: GIB,
                arg: 3 * GIB,
                ..Default::default()
            },
            Some(&page_for(pid, 3 * GIB)),
        );
        assert_eq!((r.status, data), (OK, page_for(pid, GIB)));
        let (_, back) = c.mem(
            dst,
            MemRequest {
                op: OP_READ,
                pid,
                addr: 3 * GIB,
                ..Default::default()
            },
            None,
        );
        assert_eq!(back, page_for(pid, 3 * GIB));
        // The errors the processor turns into SIGSEGV, and others.
        assert_eq!(c.op(dst, OP_READ, pid, 7 * GIB, 0, 0, 0).status, EFAULT);
        assert_eq!(
            c.op(dst, OP_MPROTECT, pid, GIB, PAGE as u64, 1, 0).status,
            OK
        );
        let (r, _) = c.mem(
            dst,
            MemRequest {
                op: OP_WRITE,
                pid,
                addr: GIB,
                ..Default::default()
            },
            Some(&[0; PAGE]),
        );
        assert_eq!(r.status, EACCES);
        assert_eq!(
            c.op(dst, OP_MPROTECT, pid, 9 * GIB, PAGE as u64, 1, 0)
                .status,
            ENOMEM
        );
        assert_eq!(c.op(dst, OP_READ, pid + 1000, GIB, 0, 0, 0).status, ESRCH);
        // brk grows the heap.
        let r = c.op(dst, OP_BRK, pid, 0x40_0000 + 3 * PAGE as u64, 0, 0, 0);
        assert_eq!((r.status, r.value), (OK, 0x40_0000 + 3 * PAGE as u64));
        assert_eq!(
            c.op(dst, OP_READ, pid, 0x40_0000 + 2 * PAGE as u64, 0, 0, 0)
                .status,
            OK
        );
        // 8 * 3 + 1 + 1 pages touched; exit gives every frame back.
        let during = c.stats(dst);
        assert_eq!(before.frames_free - during.frames_free, 26);
        let r = c.op(dst, OP_EXIT, pid, 0, 0, 0, 0);
        assert_eq!((r.status, r.value), (OK, 26));
        let after = c.stats(dst);
        assert_eq!(
            after.frames_free, before.frames_free,
            "every frame came back"
        );
        assert_eq!(after.processes, 0);
    }
    assert_eq!(m1.stop(), Some(0));
    assert_eq!(m2.stop(), Some(0));
}

#[test]
fn out_of_frames_is_an_error_and_the_component_stays_healthy() {
    if !kvm_available() {
        return;
    }
    let (m, addr) = memory_component(1, "8M");
    let mut c = Client::connect(&addr);
    let total = c.stats(1).frames_total;
    assert!(total > 16 && total < 8 * 256, "{total} frames");
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
    let (m, addr) = memory_component(1, "32M");
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
    assert_eq!(r.status, ESRCH);
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
