//! The guest's disk: the storage component's virtio-blk device, served by
//! the VMM from a host file (`lego-vmm --role storage --disk PATH`).
//!
//! Each request is a chain of three descriptors: a 16-byte header copied
//! into the queue's own buffer, the caller's buffer passed by
//! guest-physical address (no copy: monitor memory is mapped linearly,
//! see [`crate::cpu::virt_to_phys`]), and a status byte. A call puts as
//! many requests on the ring as fit, then exits once (about 50 us under
//! PVM); the VMM serves them all before it returns, so they are on the
//! used ring right after, with no waiting and no interrupt.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use lego_proto::hypercall::{
    BlockRequestHeader, BlockSetup, BLOCK_BAD_QUEUE, BLOCK_ID_BYTES, BLOCK_MAX_REQUEST,
    BLOCK_NO_DISK, BLOCK_OK, BLOCK_QUEUE_SIZE, BLOCK_SECTOR, BLOCK_S_IOERR, BLOCK_S_OK,
    BLOCK_T_FLUSH, BLOCK_T_GET_ID, BLOCK_T_IN, BLOCK_T_OUT, PORT_BLOCK_KICK, PORT_BLOCK_SETUP,
};
use zerocopy::IntoBytes;

use crate::hypercall;
use crate::virtq::{Chain, Part, SplitQueue};

/// Bytes of each descriptor's own buffer: a request header, or a status.
const OWN_BUFFER: u32 = 16;
/// Requests per exit: each takes three descriptors.
const PER_KICK: usize = BLOCK_QUEUE_SIZE as usize / 3;
const _: () = assert!(PER_KICK >= 16, "a batch carries 16 MiB or more");

/// Whether a [`Disk`] exists: a second one would set up a queue in place
/// of the first's, under it.
static OPEN: AtomicBool = AtomicBool::new(false);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockError {
    /// This component was started without `--disk`.
    NoDisk,
    /// The disk is open already (one [`Disk`] at a time).
    Busy,
    /// The VMM refused the queue (its status).
    Refused(u32),
    /// A buffer of this many bytes is not a whole number of sectors.
    Misaligned(usize),
    /// The request reaches past the disk's last sector.
    OutOfRange { sector: u64, sectors: u64 },
    /// The host file could only be opened for reading.
    ReadOnly,
    /// The VMM failed a request: its status byte (IOERR, UNSUPP).
    Device(u8),
    /// A request did not come back; the disk is not used again.
    Lost,
}

/// One request of a call, before it is queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Request {
    kind: u32,
    sector: u64,
    /// Guest-physical address of the data.
    addr: u64,
    len: u32,
}

/// A flush: every write before it is on the host's disk when it is done.
const FLUSH: Request = Request {
    kind: BLOCK_T_FLUSH,
    sector: 0,
    addr: 0,
    len: 0,
};

/// The requests that move `len` bytes at `addr` from `sector` on, each at
/// most `max` bytes (a multiple of the sector size).
fn plan(kind: u32, sector: u64, addr: u64, len: usize, max: u32) -> Vec<Request> {
    let mut out = Vec::new();
    let mut done = 0u64;
    while done < len as u64 {
        let n = (len as u64 - done).min(max as u64);
        out.push(Request {
            kind,
            sector: sector + done / BLOCK_SECTOR,
            addr: addr + done,
            len: n as u32,
        });
        done += n;
    }
    out
}

pub struct Disk {
    queue: SplitQueue,
    sectors: u64,
    read_only: bool,
    fresh: bool,
    /// The most data bytes per request: the VMM's and ours, whole sectors.
    max_request: u32,
    /// A request was lost: its buffer may still be written by the device.
    broken: bool,
}

/// Sets up the disk's queue with the VMM.
pub fn open() -> Result<Disk, BlockError> {
    if OPEN.swap(true, Ordering::AcqRel) {
        return Err(BlockError::Busy);
    }
    let opened = set_up();
    if opened.is_err() {
        OPEN.store(false, Ordering::Release);
    }
    opened
}

fn set_up() -> Result<Disk, BlockError> {
    let queue = SplitQueue::new(BLOCK_QUEUE_SIZE, OWN_BUFFER);
    let setup = BlockSetup {
        queue_size: BLOCK_QUEUE_SIZE as u32,
        status: u32::MAX,
        queue: queue.addrs(),
        ..Default::default()
    };
    hypercall::call_with(PORT_BLOCK_SETUP, &setup);
    // SAFETY: the VMM wrote its fields during the hypercall.
    let setup = unsafe { core::ptr::read_volatile(&setup) };
    match setup.status {
        BLOCK_OK => {}
        BLOCK_NO_DISK => return Err(BlockError::NoDisk),
        other => return Err(BlockError::Refused(other)),
    }
    let max = setup.max_request.min(BLOCK_MAX_REQUEST) / BLOCK_SECTOR as u32 * BLOCK_SECTOR as u32;
    if max == 0 {
        return Err(BlockError::Refused(BLOCK_BAD_QUEUE));
    }
    Ok(Disk {
        queue,
        sectors: setup.capacity_sectors,
        read_only: setup.read_only != 0,
        fresh: setup.fresh != 0,
        max_request: max,
        broken: false,
    })
}

impl Drop for Disk {
    fn drop(&mut self) {
        // The queue's memory stays (queues are never freed); the next
        // `open` sets up a new one.
        OPEN.store(false, Ordering::Release);
    }
}

impl Disk {
    /// The disk's size in 512-byte sectors.
    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    /// Whether writes fail (the host file is read-only).
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Whether the VMM made this disk for this run (it is to be formatted).
    pub fn fresh(&self) -> bool {
        self.fresh
    }

    /// Reads `buf.len()` bytes (a multiple of 512) from `sector` on.
    pub fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.check(sector, buf.len())?;
        let addr = crate::cpu::virt_to_phys(buf.as_mut_ptr() as u64);
        let requests = plan(BLOCK_T_IN, sector, addr, buf.len(), self.max_request);
        self.run(&requests)
    }

    /// Reads each `(sector, buf)` with as few exits as fit (one for up to
    /// a batch of requests): a storage monitor reading the blocks of the
    /// requests that arrived together pays one exit, not one each.
    pub fn read_many(&mut self, reads: &mut [(u64, &mut [u8])]) -> Result<(), BlockError> {
        let mut requests = Vec::new();
        for (sector, buf) in reads.iter_mut() {
            self.check(*sector, buf.len())?;
            let addr = crate::cpu::virt_to_phys(buf.as_mut_ptr() as u64);
            requests.extend(plan(BLOCK_T_IN, *sector, addr, buf.len(), self.max_request));
        }
        self.run(&requests)
    }

    /// Writes `buf` (a multiple of 512 bytes) from `sector` on. It is on
    /// the host's disk once [`flush`](Disk::flush) returns.
    pub fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), BlockError> {
        self.write_many(&[(sector, buf)])
    }

    /// Makes the writes `(sector, bytes)` in order with as few exits as fit
    /// (one for up to a batch of requests): a file block and the log record
    /// that names it cost one exit, not two. None after a failed one is
    /// made (the VMM fails the rest of a batch after a failure).
    pub fn write_many(&mut self, writes: &[(u64, &[u8])]) -> Result<(), BlockError> {
        let requests = self.plan_writes(writes)?;
        self.run(&requests)
    }

    /// [`Disk::write_many`] and [`Disk::flush`] in one exit (for up to a
    /// batch of requests): the flush is made after the writes, and not at
    /// all if one of them failed.
    pub fn write_many_and_flush(&mut self, writes: &[(u64, &[u8])]) -> Result<(), BlockError> {
        let mut requests = self.plan_writes(writes)?;
        requests.push(FLUSH);
        self.run(&requests)
    }

    /// The requests that make `writes`, in order.
    fn plan_writes(&self, writes: &[(u64, &[u8])]) -> Result<Vec<Request>, BlockError> {
        if self.read_only {
            return Err(BlockError::ReadOnly);
        }
        let mut requests = Vec::new();
        for (sector, buf) in writes {
            self.check(*sector, buf.len())?;
            let addr = crate::cpu::virt_to_phys(buf.as_ptr() as u64);
            requests.extend(plan(
                BLOCK_T_OUT,
                *sector,
                addr,
                buf.len(),
                self.max_request,
            ));
        }
        Ok(requests)
    }

    /// Returns once everything written before is on the host's disk.
    pub fn flush(&mut self) -> Result<(), BlockError> {
        self.run(&[FLUSH])
    }

    /// The disk's identifier (NUL-padded): stable for one host file.
    pub fn id(&mut self) -> Result<[u8; BLOCK_ID_BYTES], BlockError> {
        let mut id = [0u8; BLOCK_ID_BYTES];
        self.run(&[Request {
            kind: BLOCK_T_GET_ID,
            sector: 0,
            addr: crate::cpu::virt_to_phys(id.as_mut_ptr() as u64),
            len: BLOCK_ID_BYTES as u32,
        }])?;
        Ok(id)
    }

    fn check(&self, sector: u64, len: usize) -> Result<(), BlockError> {
        if len as u64 % BLOCK_SECTOR != 0 {
            return Err(BlockError::Misaligned(len));
        }
        match sector.checked_add(len as u64 / BLOCK_SECTOR) {
            Some(end) if end <= self.sectors => Ok(()),
            _ => Err(BlockError::OutOfRange {
                sector,
                sectors: self.sectors,
            }),
        }
    }

    /// Queues the requests, as many per exit as fit, and collects their
    /// statuses; the first failure is the result, and no batch after the
    /// one that failed is sent (the VMM already fails the rest of that
    /// batch unmade), so a write after a failed one never lands.
    fn run(&mut self, requests: &[Request]) -> Result<(), BlockError> {
        if self.broken {
            return Err(BlockError::Lost);
        }
        let mut failure = None;
        let mut pending: Vec<Chain> = Vec::with_capacity(PER_KICK);
        for batch in requests.chunks(PER_KICK) {
            for r in batch {
                let header = BlockRequestHeader {
                    kind: r.kind,
                    reserved: 0,
                    sector: r.sector,
                };
                let data = Part::Memory {
                    addr: r.addr,
                    len: r.len,
                    device_writes: r.kind != BLOCK_T_OUT,
                };
                let head = Part::Copy(header.as_bytes());
                let chain = if r.len == 0 {
                    self.queue.push_chain(&[head, Part::Reply(1)])
                } else {
                    self.queue.push_chain(&[head, data, Part::Reply(1)])
                };
                // Every chain of the last batch came back, so the queue
                // has room for a whole batch.
                let Some(chain) = chain else {
                    self.broken = true;
                    return Err(BlockError::Lost);
                };
                pending.push(chain);
            }
            hypercall::out(PORT_BLOCK_KICK, 0);
            while let Some((head, used)) = self.queue.pop_used() {
                let Some(at) = pending.iter().position(|c| c.head == head) else {
                    continue;
                };
                let chain = pending.swap_remove(at);
                // A used length of 0: the VMM could not even write a status.
                let status = if used == 0 {
                    BLOCK_S_IOERR
                } else {
                    self.queue.received(chain.last, 1)[0]
                };
                self.queue.release_chain(chain.head);
                if status != BLOCK_S_OK && failure.is_none() {
                    failure = Some(BlockError::Device(status));
                }
            }
            if !pending.is_empty() {
                // The device may still write those buffers: stop here.
                self.broken = true;
                return Err(BlockError::Lost);
            }
            if let Some(e) = failure {
                return Err(e);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_transfers_are_split_into_whole_requests() {
        let mib = 1 << 20;
        assert_eq!(plan(BLOCK_T_IN, 7, 0x1000, 0, mib), []);
        let p = plan(BLOCK_T_OUT, 7, 0x10_0000, 2 * mib as usize + 1024, mib);
        assert_eq!(p.len(), 3);
        assert_eq!((p[0].sector, p[0].addr, p[0].len), (7, 0x10_0000, mib));
        assert_eq!(
            (p[1].sector, p[1].addr, p[1].len),
            (7 + 2048, 0x20_0000, mib)
        );
        assert_eq!(
            (p[2].sector, p[2].addr, p[2].len),
            (7 + 4096, 0x30_0000, 1024)
        );
        assert!(p.iter().all(|r| r.kind == BLOCK_T_OUT));
    }
}
