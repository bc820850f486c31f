//! The log's records: one per metadata change, each framed with a checksum
//! and padded to whole sectors so that appending never rewrites a sector
//! holding an acknowledged record.
//!
//! Frame (little-endian):
//! ```text
//! 0  csum  u64   xxh3(bytes 8..40+len, seed fs_id)
//! 8  magic u32   "LREC"
//! 12 len   u32   payload bytes
//! 16 gen   u64   checkpoint generation the record follows
//! 24 seq   u64   global sequence number, +1 per record
//! 32 prev  u64   csum of the previous record (or of the checkpoint header)
//! 40 payload, then zeros to the sector boundary
//! ```
//! `prev` chains the records: after a crash a torn record is overwritten by
//! a new one with the same sequence number, and a stale later record that
//! happened to survive behind it must never validate as its successor.

use super::codec::{le32, le64, put32, put64, Dec, Enc, Malformed};
use super::Kind;
use crate::block::SECTOR;
use alloc::vec;
use alloc::vec::Vec;
use xxhash_rust::xxh3::xxh3_64_with_seed;

pub const HDR: usize = 40;
const MAGIC: u32 = u32::from_le_bytes(*b"LREC");

/// A data block of a file: where it is and the xxh3 of its 4096 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef {
    pub phys: u64,
    pub hash: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Create {
        parent: u64,
        name: Vec<u8>,
        ino: u64,
        kind: Kind,
        mode: u32,
        /// The owner and group it is made with.
        uid: u32,
        gid: u32,
        time: u64,
        target: Vec<u8>,
    },
    /// Removes a file or symlink.
    Unlink {
        parent: u64,
        name: Vec<u8>,
        time: u64,
    },
    Rmdir {
        parent: u64,
        name: Vec<u8>,
        time: u64,
    },
    /// Replaces the target if present (the operation checked that it may).
    Rename {
        from_parent: u64,
        from_name: Vec<u8>,
        to_parent: u64,
        to_name: Vec<u8>,
        time: u64,
    },
    SetMode {
        ino: u64,
        mode: u32,
        time: u64,
    },
    /// chown: the owner, the group and the permission bits after it (a
    /// chown may clear the set-user-ID and set-group-ID bits).
    SetOwner {
        ino: u64,
        uid: u32,
        gid: u32,
        mode: u32,
        time: u64,
    },
    SetTimes {
        ino: u64,
        atime: Option<u64>,
        mtime: Option<u64>,
        time: u64,
    },
    /// Truncate; `tail` replaces the block holding the new end of file when
    /// its bytes past the end had to be zeroed (one record, so a crash never
    /// shows the zeroing without the new size).
    SetSize {
        ino: u64,
        size: u64,
        time: u64,
        tail: Option<BlockRef>,
    },
    /// A hard link: `parent/name` becomes one more name of file (or
    /// symlink) `ino`.
    Link {
        ino: u64,
        parent: u64,
        name: Vec<u8>,
        time: u64,
    },
    /// File blocks `first..first + refs.len()` now live in `refs`.
    WriteBlocks {
        ino: u64,
        first: u64,
        refs: Vec<BlockRef>,
        size: u64,
        time: u64,
    },
}

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc::default();
        match self {
            Record::Create {
                parent,
                name,
                ino,
                kind,
                mode,
                uid,
                gid,
                time,
                target,
            } => {
                // Type 1 (a disk's records from before owners were kept)
                // for root's; type 10 carries the owner.
                let owned = *uid != 0 || *gid != 0;
                e.u8(if owned { 10 } else { 1 });
                e.u64(*parent);
                e.bytes(name);
                e.u64(*ino);
                e.u8(*kind as u8);
                e.u32(*mode);
                e.u64(*time);
                e.bytes(target);
                if owned {
                    e.u32(*uid);
                    e.u32(*gid);
                }
            }
            Record::Unlink { parent, name, time } | Record::Rmdir { parent, name, time } => {
                e.u8(if matches!(self, Record::Unlink { .. }) {
                    2
                } else {
                    3
                });
                e.u64(*parent);
                e.bytes(name);
                e.u64(*time);
            }
            Record::Rename {
                from_parent,
                from_name,
                to_parent,
                to_name,
                time,
            } => {
                e.u8(4);
                e.u64(*from_parent);
                e.bytes(from_name);
                e.u64(*to_parent);
                e.bytes(to_name);
                e.u64(*time);
            }
            Record::SetMode { ino, mode, time } => {
                e.u8(5);
                e.u64(*ino);
                e.u32(*mode);
                e.u64(*time);
            }
            Record::SetOwner {
                ino,
                uid,
                gid,
                mode,
                time,
            } => {
                e.u8(11);
                e.u64(*ino);
                e.u32(*uid);
                e.u32(*gid);
                e.u32(*mode);
                e.u64(*time);
            }
            Record::SetTimes {
                ino,
                atime,
                mtime,
                time,
            } => {
                e.u8(6);
                e.u64(*ino);
                e.opt_u64(*atime);
                e.opt_u64(*mtime);
                e.u64(*time);
            }
            Record::SetSize {
                ino,
                size,
                time,
                tail,
            } => {
                e.u8(7);
                e.u64(*ino);
                e.u64(*size);
                e.u64(*time);
                match tail {
                    Some(b) => {
                        e.u8(1);
                        e.u64(b.phys);
                        e.u64(b.hash);
                    }
                    None => e.u8(0),
                }
            }
            Record::WriteBlocks {
                ino,
                first,
                refs,
                size,
                time,
            } => {
                e.u8(8);
                e.u64(*ino);
                e.u64(*first);
                e.u64(*size);
                e.u64(*time);
                e.u32(refs.len() as u32);
                for r in refs {
                    e.u64(r.phys);
                    e.u64(r.hash);
                }
            }
            Record::Link {
                ino,
                parent,
                name,
                time,
            } => {
                e.u8(9);
                e.u64(*ino);
                e.u64(*parent);
                e.bytes(name);
                e.u64(*time);
            }
        }
        e.0
    }

    pub fn decode(b: &[u8]) -> Result<Record, Malformed> {
        let mut d = Dec::new(b);
        let r = match d.u8()? {
            t @ (1 | 10) => {
                let (parent, name, ino) = (d.u64()?, d.bytes()?.to_vec(), d.u64()?);
                let kind = Kind::from_u8(d.u8()?).ok_or(Malformed("bad kind"))?;
                let (mode, time, target) = (d.u32()?, d.u64()?, d.bytes()?.to_vec());
                let (uid, gid) = if t == 10 {
                    (d.u32()?, d.u32()?)
                } else {
                    (0, 0)
                };
                Record::Create {
                    parent,
                    name,
                    ino,
                    kind,
                    mode,
                    uid,
                    gid,
                    time,
                    target,
                }
            }
            11 => Record::SetOwner {
                ino: d.u64()?,
                uid: d.u32()?,
                gid: d.u32()?,
                mode: d.u32()?,
                time: d.u64()?,
            },
            t @ (2 | 3) => {
                let (parent, name, time) = (d.u64()?, d.bytes()?.to_vec(), d.u64()?);
                if t == 2 {
                    Record::Unlink { parent, name, time }
                } else {
                    Record::Rmdir { parent, name, time }
                }
            }
            4 => Record::Rename {
                from_parent: d.u64()?,
                from_name: d.bytes()?.to_vec(),
                to_parent: d.u64()?,
                to_name: d.bytes()?.to_vec(),
                time: d.u64()?,
            },
            5 => Record::SetMode {
                ino: d.u64()?,
                mode: d.u32()?,
                time: d.u64()?,
            },
            6 => Record::SetTimes {
                ino: d.u64()?,
                atime: d.opt_u64()?,
                mtime: d.opt_u64()?,
                time: d.u64()?,
            },
            7 => Record::SetSize {
                ino: d.u64()?,
                size: d.u64()?,
                time: d.u64()?,
                tail: match d.u8()? {
                    0 => None,
                    1 => Some(BlockRef {
                        phys: d.u64()?,
                        hash: d.u64()?,
                    }),
                    _ => return Err(Malformed("bad tail tag")),
                },
            },
            8 => {
                let (ino, first, size, time) = (d.u64()?, d.u64()?, d.u64()?, d.u64()?);
                let n = d.u32()? as usize;
                // Bound the allocation by what the bytes can hold.
                if n > b.len() / 16 {
                    return Err(Malformed("block count"));
                }
                let mut refs = Vec::with_capacity(n);
                for _ in 0..n {
                    refs.push(BlockRef {
                        phys: d.u64()?,
                        hash: d.u64()?,
                    });
                }
                Record::WriteBlocks {
                    ino,
                    first,
                    refs,
                    size,
                    time,
                }
            }
            9 => Record::Link {
                ino: d.u64()?,
                parent: d.u64()?,
                name: d.bytes()?.to_vec(),
                time: d.u64()?,
            },
            _ => return Err(Malformed("bad record type")),
        };
        if !d.done() {
            return Err(Malformed("trailing bytes"));
        }
        Ok(r)
    }
}

/// Where a record sits in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub gen: u64,
    pub seq: u64,
    pub prev: u64,
}

/// Sectors a record with `payload` bytes occupies.
pub fn sectors_for(payload: usize) -> u64 {
    (HDR + payload).div_ceil(SECTOR) as u64
}

/// The padded frame of a record, and its checksum (the next record's `prev`).
pub fn frame(payload: &[u8], link: Link, fs_id: u64) -> (Vec<u8>, u64) {
    let mut b = vec![0u8; sectors_for(payload.len()) as usize * SECTOR];
    put32(&mut b, 8, MAGIC);
    put32(&mut b, 12, payload.len() as u32);
    put64(&mut b, 16, link.gen);
    put64(&mut b, 24, link.seq);
    put64(&mut b, 32, link.prev);
    b[HDR..HDR + payload.len()].copy_from_slice(payload);
    let c = xxh3_64_with_seed(&b[8..HDR + payload.len()], fs_id);
    put64(&mut b, 0, c);
    (b, c)
}

/// From the first sector of a frame: its payload length, if the header says
/// it is the record expected at `link`.
pub fn expected_len(first: &[u8], link: Link) -> Option<usize> {
    if first.len() < HDR
        || le32(first, 8) != MAGIC
        || le64(first, 16) != link.gen
        || le64(first, 24) != link.seq
        || le64(first, 32) != link.prev
    {
        return None;
    }
    Some(le32(first, 12) as usize)
}

/// The whole frame's checksum if it verifies.
pub fn verify(frame: &[u8], len: usize, fs_id: u64) -> Option<u64> {
    let c = xxh3_64_with_seed(frame.get(8..HDR + len)?, fs_id);
    (c == le64(frame, 0)).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_frames_verify() {
        let recs = [
            Record::Create {
                parent: 1,
                name: b"a".to_vec(),
                ino: 2,
                kind: Kind::Symlink,
                mode: 0o777,
                uid: 0,
                gid: 0,
                time: 5,
                target: b"/x/y".to_vec(),
            },
            Record::Create {
                parent: 1,
                name: b"f".to_vec(),
                ino: 3,
                kind: Kind::File,
                mode: 0o2640,
                uid: 1000,
                gid: 100,
                time: 5,
                target: Vec::new(),
            },
            Record::SetOwner {
                ino: 3,
                uid: 7,
                gid: 8,
                mode: 0o640,
                time: 6,
            },
            Record::Unlink {
                parent: 1,
                name: b"a".to_vec(),
                time: 6,
            },
            Record::Rmdir {
                parent: 1,
                name: b"d".to_vec(),
                time: 6,
            },
            Record::Rename {
                from_parent: 1,
                from_name: b"a".to_vec(),
                to_parent: 3,
                to_name: b"b".to_vec(),
                time: 7,
            },
            Record::SetMode {
                ino: 2,
                mode: 0o600,
                time: 8,
            },
            Record::SetTimes {
                ino: 2,
                atime: None,
                mtime: Some(3),
                time: 9,
            },
            Record::SetSize {
                ino: 2,
                size: 10,
                time: 1,
                tail: Some(BlockRef { phys: 4, hash: 5 }),
            },
            Record::WriteBlocks {
                ino: 2,
                first: 1,
                refs: vec![BlockRef { phys: 9, hash: 1 }; 300],
                size: 5000,
                time: 2,
            },
            Record::Link {
                ino: 5,
                parent: 1,
                name: b"hard".to_vec(),
                time: 3,
            },
        ];
        for r in recs {
            let p = r.encode();
            assert_eq!(Record::decode(&p), Ok(r));
            assert!(Record::decode(&p[..p.len() - 1]).is_err());
            let link = Link {
                gen: 1,
                seq: 2,
                prev: 3,
            };
            let (f, c) = frame(&p, link, 42);
            assert_eq!(f.len() % SECTOR, 0);
            let len = expected_len(&f, link).unwrap();
            assert_eq!(verify(&f, len, 42), Some(c));
            assert_eq!(verify(&f, len, 43), None);
            assert_eq!(expected_len(&f, Link { seq: 3, ..link }), None);
        }
        assert!(Record::decode(&[]).is_err());
        assert!(Record::decode(&[99]).is_err());
    }
}
