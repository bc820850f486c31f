//! What a real client checks after each batch: the component still serves
//! it correctly (a Ping comes back, a process can be made, a page written
//! reads back exactly, the process's frames are all given back), on the
//! transport it uses.

use lego_proto::frame::Kind;
use lego_proto::memory::*;
use zerocopy::{FromBytes, IntoBytes};

/// A client that can make requests of the component under test.
pub trait Caller {
    fn call(&mut self, kind: Kind, payload: &[u8]) -> Result<(Kind, Vec<u8>), String>;
}

fn mem(
    c: &mut dyn Caller,
    req: MemRequest,
    page: Option<&[u8]>,
) -> Result<(MemReply, Vec<u8>), String> {
    let mut payload = req.as_bytes().to_vec();
    payload.extend_from_slice(page.unwrap_or_default());
    let (kind, body) = c.call(Kind::Data, &payload)?;
    if kind != Kind::Data {
        return Err(format!("a {kind:?} reply to op {}", req.op));
    }
    let (r, rest) = MemReply::read_from_prefix(&body)
        .map_err(|_| format!("a reply of {} bytes to op {}", body.len(), req.op))?;
    Ok((r, rest.to_vec()))
}

fn expect(what: &str, r: &MemReply, status: u32) -> Result<(), String> {
    if r.status == status {
        Ok(())
    } else {
        Err(format!(
            "{what}: status {} where {status} was due",
            r.status
        ))
    }
}

/// One round of real work as process `pid`; what went wrong, if anything.
pub fn serves(c: &mut dyn Caller, pid: u32, round: u64) -> Result<(), String> {
    let token = round.to_le_bytes();
    let (kind, body) = c.call(Kind::Ping, &token)?;
    if kind != Kind::Pong || body != token {
        return Err(format!("Ping answered with {kind:?} {body:?}"));
    }
    let base = 1u64 << 30;
    let new = MemRequest {
        op: OP_NEW,
        pid,
        addr: 0x40_0000,
        ..Default::default()
    };
    expect("a new process", &mem(c, new, None)?.0, OK)?;
    let map = MemRequest {
        op: OP_MMAP,
        pid,
        addr: base,
        len: 2 * PAGE as u64,
        prot: 3,
        flags: FLAG_FIXED,
        ..Default::default()
    };
    expect("mmap", &mem(c, map, None)?.0, OK)?;
    let mut page = vec![0u8; PAGE];
    lego_proto::pattern::fill(round ^ pid as u64, &mut page);
    let write = MemRequest {
        op: OP_WRITE,
        pid,
        addr: base + PAGE as u64,
        ..Default::default()
    };
    expect("a page write", &mem(c, write, Some(&page))?.0, OK)?;
    let read = MemRequest {
        op: OP_READ,
        pid,
        addr: base + PAGE as u64,
        ..Default::default()
    };
    let (r, got) = mem(c, read, None)?;
    expect("a page read", &r, OK)?;
    if got != page {
        return Err("the page read back is not the page written".into());
    }
    let (r, zeros) = mem(c, MemRequest { addr: base, ..read }, None)?;
    expect("a fresh page", &r, OK)?;
    if zeros.iter().any(|&b| b != 0) {
        return Err("a page never written is not zeros".into());
    }
    let exit = MemRequest {
        op: OP_EXIT,
        pid,
        ..Default::default()
    };
    let (r, _) = mem(c, exit, None)?;
    expect("exit", &r, OK)?;
    if r.value != 2 {
        return Err(format!(
            "exit freed {} frames, not the 2 the process had",
            r.value
        ));
    }
    Ok(())
}
