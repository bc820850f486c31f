//! The memory monitor's service: one request in, one reply out, for any
//! number of processes, over this component's frames. Malformed requests,
//! addresses outside every VMA and accesses against the protection get
//! a precise status, never a crash.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use lego_proto::memory::*;
use zerocopy::{FromBytes, IntoBytes};

use crate::frames::{FrameStore, Frames, OutOfFrames, Pid};
use crate::space::{AddressSpace, MemError};

/// The user part of a process's address space (x86-64, 47 bits).
pub const USER_LOW: u64 = 0x1000;
pub const USER_HIGH: u64 = 0x7fff_ffff_f000;

pub struct Monitor<S: FrameStore> {
    store: S,
    frames: Frames,
    processes: BTreeMap<Pid, AddressSpace>,
    requests: u64,
    errors: u64,
    zero_fills: u64,
}

fn status(e: MemError) -> u32 {
    match e {
        MemError::Invalid => EINVAL,
        MemError::NoMemory => ENOMEM,
        MemError::NotMapped => EFAULT,
        MemError::Permission => EACCES,
    }
}

fn reply(status: u32, value: u64, page: Option<&[u8; PAGE]>) -> Vec<u8> {
    let head = MemReply {
        status,
        _pad: 0,
        value,
    };
    let mut out = Vec::with_capacity(REPLY_LEN + page.map_or(0, |p| p.len()));
    out.extend_from_slice(head.as_bytes());
    if let Some(p) = page {
        out.extend_from_slice(p);
    }
    out
}

impl<S: FrameStore> Monitor<S> {
    pub fn new(store: S, frames: u32) -> Monitor<S> {
        Monitor {
            store,
            frames: Frames::new(frames),
            processes: BTreeMap::new(),
            requests: 0,
            errors: 0,
            zero_fills: 0,
        }
    }

    pub fn frames(&self) -> &Frames {
        &self.frames
    }

    pub fn stats(&self) -> MemStats {
        MemStats {
            frames_total: self.frames.total() as u64,
            frames_free: self.frames.free_frames() as u64,
            processes: self.processes.len() as u64,
            requests: self.requests,
            errors: self.errors,
            zero_fills: self.zero_fills,
            heap_free: self.store.heap_free(),
        }
    }

    /// Serves one request (its bytes as they came off the fabric).
    pub fn handle(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.requests += 1;
        let out = match MemRequest::read_from_prefix(bytes) {
            Ok((req, rest)) => self.serve(&req, rest),
            Err(_) => reply(BAD_REQUEST, 0, None),
        };
        if out
            .first_chunk::<4>()
            .is_some_and(|s| u32::from_le_bytes(*s) != OK)
        {
            self.errors += 1;
        }
        out
    }

    fn page_of(rest: &[u8]) -> Option<&[u8; PAGE]> {
        rest.first_chunk::<PAGE>()
    }

    /// The frame behind (pid, addr) for an access, after the VMA check.
    fn frame_for(&mut self, pid: Pid, addr: u64, write: bool) -> Result<u32, u32> {
        let space = self.processes.get(&pid).ok_or(ESRCH)?;
        space.check(addr, write).map_err(status)?;
        let vpage = addr / crate::PAGE;
        let fresh = self.frames.lookup(pid, vpage).is_none();
        let f = self
            .frames
            .touch(pid, vpage, &mut self.store)
            .map_err(|OutOfFrames| OUT_OF_FRAMES)?;
        if fresh {
            self.zero_fills += 1;
        }
        Ok(f)
    }

    fn serve(&mut self, r: &MemRequest, rest: &[u8]) -> Vec<u8> {
        let pid = r.pid;
        match r.op {
            OP_READ => match self.frame_for(pid, r.addr, false) {
                Ok(f) => {
                    let mut page = [0u8; PAGE];
                    self.store.read(f, &mut page);
                    reply(OK, 0, Some(&page))
                }
                Err(s) => reply(s, 0, None),
            },
            OP_WRITE => {
                let Some(page) = Self::page_of(rest) else {
                    return reply(BAD_REQUEST, 0, None);
                };
                match self.frame_for(pid, r.addr, true) {
                    Ok(f) => {
                        self.store.write(f, page);
                        reply(OK, 0, None)
                    }
                    Err(s) => reply(s, 0, None),
                }
            }
            OP_READ_WRITE => {
                let Some(page) = Self::page_of(rest) else {
                    return reply(BAD_REQUEST, 0, None);
                };
                // The write-back first: the read may be of the same page.
                if let Err(s) = self
                    .frame_for(pid, r.arg, true)
                    .map(|f| self.store.write(f, page))
                {
                    return reply(s, 0, None);
                }
                match self.frame_for(pid, r.addr, false) {
                    Ok(f) => {
                        let mut out = [0u8; PAGE];
                        self.store.read(f, &mut out);
                        reply(OK, 0, Some(&out))
                    }
                    Err(s) => reply(s, 0, None),
                }
            }
            OP_NEW => {
                if self.processes.contains_key(&pid) {
                    return reply(EEXIST, 0, None);
                }
                let brk = r.addr.clamp(USER_LOW, USER_HIGH);
                self.processes
                    .insert(pid, AddressSpace::new(USER_LOW, USER_HIGH, brk));
                reply(OK, brk, None)
            }
            OP_EXIT => {
                if self.processes.remove(&pid).is_none() {
                    return reply(ESRCH, 0, None);
                }
                let freed = self.frames.release_process(pid);
                reply(OK, freed, None)
            }
            OP_STATS => {
                let s = self.stats();
                let mut out = reply(OK, 0, None);
                out.extend_from_slice(s.as_bytes());
                out
            }
            _ => self.memory_call(r),
        }
    }

    /// mmap, munmap, mprotect, brk and mremap.
    fn memory_call(&mut self, r: &MemRequest) -> Vec<u8> {
        let pid = r.pid;
        let Some(space) = self.processes.get_mut(&pid) else {
            return reply(ESRCH, 0, None);
        };
        let result: Result<(u64, Vec<(u64, u64)>), MemError> = match r.op {
            OP_MMAP => space
                .mmap(r.addr, r.len, r.prot, r.flags & FLAG_FIXED != 0)
                .map(|a| (a, Vec::new())),
            OP_MUNMAP => space.munmap(r.addr, r.len).map(|freed| (0, freed)),
            OP_MPROTECT => space
                .mprotect(r.addr, r.len, r.prot)
                .map(|_| (0, Vec::new())),
            OP_BRK => Ok(space.brk(r.addr)),
            OP_MREMAP => match space.mremap(r.addr, r.len, r.arg, r.flags & FLAG_MAYMOVE != 0) {
                Ok(m) => {
                    if let Some((from, to, len)) = m.moved {
                        self.frames.relocate(pid, from, to, len);
                    }
                    Ok((m.addr, m.freed))
                }
                Err(e) => Err(e),
            },
            _ => return reply(BAD_REQUEST, 0, None),
        };
        match result {
            Ok((value, freed)) => {
                for (a, b) in freed {
                    self.frames.release(pid, a, b);
                }
                reply(OK, value, None)
            }
            Err(e) => reply(status(e), 0, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{PROT_READ, PROT_WRITE};

    struct Mem(Vec<[u8; PAGE]>);

    impl FrameStore for Mem {
        fn read(&self, f: u32, out: &mut [u8; PAGE]) {
            *out = self.0[f as usize];
        }
        fn write(&mut self, f: u32, d: &[u8; PAGE]) {
            self.0[f as usize] = *d;
        }
        fn zero(&mut self, f: u32) {
            self.0[f as usize] = [0; PAGE];
        }
    }

    fn req(op: u32, pid: u32, addr: u64, len: u64, prot: u32, flags: u32) -> Vec<u8> {
        MemRequest {
            op,
            pid,
            addr,
            len,
            arg: 0,
            prot,
            flags,
        }
        .as_bytes()
        .to_vec()
    }

    fn status_value(out: &[u8]) -> (u32, u64) {
        let (r, _) = MemReply::read_from_prefix(out).unwrap();
        (r.status, r.value)
    }

    #[test]
    fn a_process_lives_and_dies() {
        let mut m = Monitor::new(Mem(vec![[0x55; PAGE]; 8]), 8);
        assert_eq!(
            status_value(&m.handle(&req(OP_NEW, 7, 0x40_0000, 0, 0, 0))),
            (OK, 0x40_0000)
        );
        let (s, a) = status_value(&m.handle(&req(
            OP_MMAP,
            7,
            0x4000_0000,
            3 * 4096,
            PROT_READ | PROT_WRITE,
            FLAG_FIXED,
        )));
        assert_eq!((s, a), (OK, 0x4000_0000));
        // First touch reads zeros.
        let out = m.handle(&req(OP_READ, 7, a + 4096, 0, 0, 0));
        assert_eq!(status_value(&out).0, OK);
        assert!(out[REPLY_LEN..].iter().all(|&b| b == 0));
        // Write, read back.
        let mut w = req(OP_WRITE, 7, a, 0, 0, 0);
        w.extend_from_slice(&[9u8; PAGE]);
        assert_eq!(status_value(&m.handle(&w)).0, OK);
        let out = m.handle(&req(OP_READ, 7, a, 0, 0, 0));
        assert!(out[REPLY_LEN..].iter().all(|&b| b == 9));
        // Precise errors.
        assert_eq!(
            status_value(&m.handle(&req(OP_READ, 7, 0x9000_0000, 0, 0, 0))).0,
            EFAULT
        );
        assert_eq!(
            status_value(&m.handle(&req(OP_MPROTECT, 7, a, 4096, PROT_READ, 0))).0,
            OK
        );
        assert_eq!(status_value(&m.handle(&w)).0, EACCES);
        assert_eq!(
            status_value(&m.handle(&req(OP_READ, 8, a, 0, 0, 0))).0,
            ESRCH
        );
        assert_eq!(status_value(&m.handle(&[1, 2, 3])).0, BAD_REQUEST);
        assert_eq!(
            status_value(&m.handle(&req(77, 7, 0, 0, 0, 0))).0,
            BAD_REQUEST
        );
        assert_eq!(m.frames().used_by(7), 2);
        // Exit frees every frame.
        assert_eq!(
            status_value(&m.handle(&req(OP_EXIT, 7, 0, 0, 0, 0))),
            (OK, 2)
        );
        assert_eq!(m.stats().frames_free, 8);
    }

    #[test]
    fn running_out_of_frames_is_an_error_not_a_crash() {
        let mut m = Monitor::new(Mem(vec![[0; PAGE]; 2]), 2);
        m.handle(&req(OP_NEW, 1, 0x40_0000, 0, 0, 0));
        m.handle(&req(
            OP_MMAP,
            1,
            0x1000_0000,
            8 * 4096,
            PROT_READ,
            FLAG_FIXED,
        ));
        for i in 0..2 {
            assert_eq!(
                status_value(&m.handle(&req(OP_READ, 1, 0x1000_0000 + i * 4096, 0, 0, 0))).0,
                OK
            );
        }
        assert_eq!(
            status_value(&m.handle(&req(OP_READ, 1, 0x1000_2000, 0, 0, 0))).0,
            OUT_OF_FRAMES
        );
        // Still serving: pages it has are readable.
        assert_eq!(
            status_value(&m.handle(&req(OP_READ, 1, 0x1000_0000, 0, 0, 0))).0,
            OK
        );
        // munmap gives frames back.
        assert_eq!(
            status_value(&m.handle(&req(OP_MUNMAP, 1, 0x1000_0000, 4096, 0, 0))).0,
            OK
        );
        assert_eq!(m.stats().frames_free, 1);
    }
}
