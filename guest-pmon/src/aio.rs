//! Linux's native asynchronous I/O (io_setup, io_submit, io_getevents,
//! io_destroy, io_cancel): the control blocks, the completion ring a
//! context maps into its process, and the ring's arithmetic.
//!
//! Decided: a request is carried out when it is submitted, as Linux
//! carries out buffered (not O_DIRECT) file I/O, and its completion is in
//! the ring when io_submit returns; io_getevents only waits when fewer
//! completions are there than it asks for (another thread may still
//! submit). So io_cancel never finds a request in flight (EINVAL, as
//! Linux answers for one that has completed). IOCB_CMD_POLL is refused
//! (EINVAL): it would need a request that waits.
//!
//! The ring is Linux's `struct aio_ring`, a header and the events, in
//! memory of the process, whose address is the context's id: libaio reads
//! it to see whether io_getevents has anything to return, and a program
//! may take events from it itself, moving `head`, which the kernel reads
//! back.

use crate::PAGE;

pub const IOCB_CMD_PREAD: u16 = 0;
pub const IOCB_CMD_PWRITE: u16 = 1;
pub const IOCB_CMD_FSYNC: u16 = 2;
pub const IOCB_CMD_FDSYNC: u16 = 3;
pub const IOCB_CMD_POLL: u16 = 5;
pub const IOCB_CMD_NOOP: u16 = 6;
pub const IOCB_CMD_PREADV: u16 = 7;
pub const IOCB_CMD_PWRITEV: u16 = 8;

/// `aio_flags`: signal the eventfd `aio_resfd` at completion.
pub const IOCB_FLAG_RESFD: u32 = 1;
/// `aio_flags`: `aio_reqprio` holds an I/O priority.
pub const IOCB_FLAG_IOPRIO: u32 = 2;

/// `struct iocb`.
pub const IOCB_LEN: usize = 64;
/// `struct io_event`.
pub const EVENT_LEN: usize = 32;
/// `struct aio_ring`'s header.
pub const RING_HEADER: usize = 32;
/// `AIO_RING_MAGIC`.
pub const RING_MAGIC: u32 = 0xa10a_10a1;
/// Offsets of `head` and `tail` in the header.
pub const HEAD_AT: u64 = 8;
pub const TAIL_AT: u64 = 12;

/// Linux's `aio-max-nr` default: the most events of all contexts.
pub const MAX_EVENTS: u64 = 65536;

const EINVAL: i64 = 22;

/// What a request asks, from its `struct iocb`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Iocb {
    pub data: u64,
    pub opcode: u16,
    pub fd: u32,
    pub buf: u64,
    pub nbytes: u64,
    pub offset: i64,
    pub flags: u32,
    pub resfd: u32,
    pub rw_flags: u32,
}

impl Iocb {
    /// The control block in `b`, checked as Linux's io_submit checks it
    /// before it looks at the descriptor: reserved fields zero, known
    /// flags, sizes that fit a signed count. EINVAL otherwise.
    pub fn parse(b: &[u8; IOCB_LEN]) -> Result<Iocb, i64> {
        let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]));
        let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap_or([0; 4]));
        let u16_at = |at: usize| u16::from_le_bytes(b[at..at + 2].try_into().unwrap_or([0; 2]));
        let iocb = Iocb {
            data: u64_at(0),
            // aio_key (u32) at 8 is the kernel's to write.
            rw_flags: u32_at(12),
            opcode: u16_at(16),
            // aio_reqprio (i16) at 18.
            fd: u32_at(20),
            buf: u64_at(24),
            nbytes: u64_at(32),
            offset: u64_at(40) as i64,
            // aio_reserved2 (u64) at 48.
            flags: u32_at(56),
            resfd: u32_at(60),
        };
        if u64_at(48) != 0
            || iocb.flags & !(IOCB_FLAG_RESFD | IOCB_FLAG_IOPRIO) != 0
            || (iocb.nbytes as i64) < 0
        {
            return Err(EINVAL);
        }
        match iocb.opcode {
            IOCB_CMD_PREAD | IOCB_CMD_PWRITE | IOCB_CMD_PREADV | IOCB_CMD_PWRITEV => {
                if iocb.offset < 0 {
                    return Err(EINVAL);
                }
            }
            // Linux's aio_prep_fsync: nothing but the descriptor.
            IOCB_CMD_FSYNC | IOCB_CMD_FDSYNC => {
                if iocb.buf != 0 || iocb.offset != 0 || iocb.nbytes != 0 || iocb.rw_flags != 0 {
                    return Err(EINVAL);
                }
            }
            // IOCB_CMD_POLL would wait; NOOP was never carried out.
            _ => return Err(EINVAL),
        }
        Ok(iocb)
    }
}

/// How a context's ring is laid out for `nr_events` requests, as Linux
/// sizes it: two slots more (one stays empty), then as many as the pages
/// hold. Its bytes and its slots.
pub fn ring_size(nr_events: u32) -> (u64, u32) {
    let want = RING_HEADER as u64 + (u64::from(nr_events) + 2) * EVENT_LEN as u64;
    let bytes = want.div_ceil(PAGE) * PAGE;
    let slots = (bytes - RING_HEADER as u64) / EVENT_LEN as u64;
    (bytes, slots as u32)
}

/// The ring's header: context `id`, `slots` events, empty.
pub fn ring_header(id: u32, slots: u32) -> [u8; RING_HEADER] {
    let mut h = [0u8; RING_HEADER];
    h[0..4].copy_from_slice(&id.to_le_bytes());
    h[4..8].copy_from_slice(&slots.to_le_bytes());
    // head, tail: 0.
    h[16..20].copy_from_slice(&RING_MAGIC.to_le_bytes());
    // compat_features: AIO_RING_COMPAT_FEATURES (1); incompat: 0.
    h[20..24].copy_from_slice(&1u32.to_le_bytes());
    h[28..32].copy_from_slice(&(RING_HEADER as u32).to_le_bytes());
    h
}

/// The address of slot `i`'s event in the ring at `ring`.
pub fn slot_at(ring: u64, i: u32) -> u64 {
    ring + RING_HEADER as u64 + u64::from(i) * EVENT_LEN as u64
}

/// The completions waiting between `head` and `tail` of a ring of `slots`
/// (a head a program wrote out of range counts as the tail: none).
pub fn waiting(head: u32, tail: u32, slots: u32) -> u32 {
    if slots == 0 || head >= slots || tail >= slots {
        return 0;
    }
    (tail + slots - head) % slots
}

/// Whether one more completion fits (one slot stays empty).
pub fn has_room(head: u32, tail: u32, slots: u32) -> bool {
    head < slots && tail < slots && slots > 1 && waiting(head, tail, slots) < slots - 1
}

/// `struct io_event` of a completion.
pub fn event(data: u64, obj: u64, res: i64) -> [u8; EVENT_LEN] {
    let mut e = [0u8; EVENT_LEN];
    e[0..8].copy_from_slice(&data.to_le_bytes());
    e[8..16].copy_from_slice(&obj.to_le_bytes());
    e[16..24].copy_from_slice(&res.to_le_bytes());
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iocb(opcode: u16, fd: u32, buf: u64, nbytes: u64, offset: i64) -> [u8; IOCB_LEN] {
        let mut b = [0u8; IOCB_LEN];
        b[0..8].copy_from_slice(&0xdead_beef_u64.to_le_bytes());
        b[16..18].copy_from_slice(&opcode.to_le_bytes());
        b[20..24].copy_from_slice(&fd.to_le_bytes());
        b[24..32].copy_from_slice(&buf.to_le_bytes());
        b[32..40].copy_from_slice(&nbytes.to_le_bytes());
        b[40..48].copy_from_slice(&offset.to_le_bytes());
        b
    }

    #[test]
    fn control_blocks_are_read_and_checked_as_linux_checks_them() {
        let r = Iocb::parse(&iocb(IOCB_CMD_PWRITE, 3, 0x1000, 512, 4096)).unwrap();
        assert_eq!(
            (r.data, r.opcode, r.fd, r.buf, r.nbytes, r.offset),
            (0xdead_beef, IOCB_CMD_PWRITE, 3, 0x1000, 512, 4096)
        );
        let mut reserved = iocb(IOCB_CMD_PREAD, 3, 0x1000, 512, 0);
        reserved[48] = 1;
        assert_eq!(Iocb::parse(&reserved), Err(EINVAL));
        let mut flags = iocb(IOCB_CMD_PREAD, 3, 0x1000, 512, 0);
        flags[56] = 4;
        assert_eq!(Iocb::parse(&flags), Err(EINVAL));
        assert_eq!(
            Iocb::parse(&iocb(IOCB_CMD_PREAD, 3, 0, u64::MAX, 0)),
            Err(EINVAL)
        );
        assert_eq!(Iocb::parse(&iocb(IOCB_CMD_PREAD, 3, 0, 1, -1)), Err(EINVAL));
        assert_eq!(Iocb::parse(&iocb(IOCB_CMD_FSYNC, 3, 0, 1, 0)), Err(EINVAL));
        assert!(Iocb::parse(&iocb(IOCB_CMD_FDSYNC, 3, 0, 0, 0)).is_ok());
        for op in [IOCB_CMD_POLL, IOCB_CMD_NOOP, 4, 9, 0xffff] {
            assert_eq!(Iocb::parse(&iocb(op, 3, 0, 0, 0)), Err(EINVAL), "{op}");
        }
        let mut resfd = iocb(IOCB_CMD_PREAD, 3, 0x1000, 8, 0);
        resfd[56] = IOCB_FLAG_RESFD as u8;
        resfd[60] = 7;
        let r = Iocb::parse(&resfd).unwrap();
        assert_eq!((r.flags, r.resfd), (IOCB_FLAG_RESFD, 7));
    }

    #[test]
    fn the_ring_is_sized_and_headed_as_linuxs() {
        // 128 events and 2 more: 4192 bytes, two pages, 255 slots.
        assert_eq!(ring_size(128), (8192, 255));
        assert_eq!(ring_size(1), (4096, 127));
        let h = ring_header(5, 127);
        assert_eq!(u32::from_le_bytes(h[4..8].try_into().unwrap()), 127);
        assert_eq!(
            u32::from_le_bytes(h[16..20].try_into().unwrap()),
            RING_MAGIC
        );
        assert_eq!(u32::from_le_bytes(h[28..32].try_into().unwrap()), 32);
        assert_eq!(slot_at(0x10000, 2), 0x10000 + 32 + 64);
    }

    #[test]
    fn the_ring_keeps_one_slot_empty_and_wraps() {
        assert_eq!(waiting(0, 0, 8), 0);
        assert_eq!(waiting(6, 2, 8), 4);
        assert!(has_room(0, 6, 8));
        assert!(!has_room(0, 7, 8));
        assert!(!has_room(3, 2, 8));
        // A head a program scribbled past the ring: nothing waits, and
        // nothing more fits until it is mended.
        assert_eq!(waiting(9, 2, 8), 0);
        assert!(!has_room(9, 2, 8));
        let e = event(1, 2, -9);
        assert_eq!(i64::from_le_bytes(e[16..24].try_into().unwrap()), -9);
    }
}
