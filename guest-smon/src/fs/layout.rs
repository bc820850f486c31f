//! Where things live on the disk: the superblock, its regions, and the
//! header of a checkpoint slot.
//!
//! ```text
//! sector 0..8     superblock (one 4 KiB block)
//! ckpt A, ckpt B  checkpoint slots, each max(4 MiB, disk/32)
//! log             max(4 MiB, disk/32), 512-byte sectors of records
//! data            the rest, 4 KiB blocks
//! ```
//! All regions start on a 4 KiB boundary.

use super::codec::{le32, le64, put32, put64};
use super::MountError;
use alloc::vec;
use alloc::vec::Vec;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

pub const BLOCK: usize = 4096;
pub const SECTORS_PER_BLOCK: u64 = (BLOCK / crate::block::SECTOR) as u64;
pub const MAGIC: &[u8; 8] = b"LEGOFS01";
/// 2: files keep their owner and group (log record types 10 and 11, and
/// an owners list at the end of a checkpoint). A version-1 disk mounts as
/// it is (its files are root's); a build of version 1 refuses a version-2
/// disk with a sentence rather than misreading its records.
pub const VERSION: u32 = 2;
pub const OLDEST_VERSION: u32 = 1;
pub const MIN_BYTES: u64 = 64 << 20;
const MIN_REGION: u64 = (4 << 20) / crate::block::SECTOR as u64;

/// A run of sectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub len: u64,
}

impl Region {
    fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// Differs between two formats of the same disk, and seeds every
    /// checksum, so that records and checkpoints left by an earlier file
    /// system on the disk never validate in this one.
    pub fs_id: u64,
    pub total: u64,
    pub ckpt: [Region; 2],
    pub log: Region,
    pub data: Region,
}

pub(crate) const SB_CSUM_AT: usize = 96;

impl Superblock {
    pub fn for_device(sectors: u64, fs_id: u64) -> Result<Self, MountError> {
        let total = sectors - sectors % SECTORS_PER_BLOCK;
        if total < MIN_BYTES / crate::block::SECTOR as u64 {
            return Err(MountError::TooSmall);
        }
        let meta = |n: u64| {
            let n = n.max(MIN_REGION);
            n - n % SECTORS_PER_BLOCK
        };
        let slot = meta(total / 32);
        let log = meta(total / 32);
        let a = Region {
            start: SECTORS_PER_BLOCK,
            len: slot,
        };
        let b = Region {
            start: a.end(),
            len: slot,
        };
        let l = Region {
            start: b.end(),
            len: log,
        };
        let data = Region {
            start: l.end(),
            len: total - l.end(),
        };
        Ok(Superblock {
            fs_id,
            total,
            ckpt: [a, b],
            log: l,
            data,
        })
    }

    pub fn data_blocks(&self) -> u64 {
        self.data.len / SECTORS_PER_BLOCK
    }

    /// The first sector of data block `phys`.
    pub fn block_sector(&self, phys: u64) -> u64 {
        self.data.start + phys * SECTORS_PER_BLOCK
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; BLOCK];
        b[..8].copy_from_slice(MAGIC);
        put32(&mut b, 8, VERSION);
        put32(&mut b, 12, BLOCK as u32);
        put64(&mut b, 16, self.fs_id);
        put64(&mut b, 24, self.total);
        for (i, r) in [self.ckpt[0], self.ckpt[1], self.log, self.data]
            .iter()
            .enumerate()
        {
            put64(&mut b, 32 + 16 * i, r.start);
            put64(&mut b, 40 + 16 * i, r.len);
        }
        let c = xxh3_64(&b[..SB_CSUM_AT]);
        put64(&mut b, SB_CSUM_AT, c);
        b
    }

    /// `buf` is the first block of the device.
    pub fn decode(b: &[u8], dev_sectors: u64) -> Result<Self, MountError> {
        if b.len() < BLOCK || &b[..8] != MAGIC {
            return Err(MountError::NotLego);
        }
        // The version comes before the checksum: a later format may checksum
        // differently, and saying "version 2" is more useful than "damaged".
        let version = le32(b, 8);
        if !(OLDEST_VERSION..=VERSION).contains(&version) {
            return Err(MountError::Version(version));
        }
        if xxh3_64(&b[..SB_CSUM_AT]) != le64(b, SB_CSUM_AT) {
            return Err(MountError::Damaged("superblock checksum"));
        }
        if le32(b, 12) != BLOCK as u32 {
            return Err(MountError::Damaged("superblock block size"));
        }
        let r = |i: usize| Region {
            start: le64(b, 32 + 16 * i),
            len: le64(b, 40 + 16 * i),
        };
        let sb = Superblock {
            fs_id: le64(b, 16),
            total: le64(b, 24),
            ckpt: [r(0), r(1)],
            log: r(2),
            data: r(3),
        };
        // A valid checksum over impossible geometry is still no reason to
        // read or write outside the device.
        let regions = [sb.ckpt[0], sb.ckpt[1], sb.log, sb.data];
        let mut at = SECTORS_PER_BLOCK;
        for reg in regions {
            if reg.start != at || reg.len < SECTORS_PER_BLOCK || reg.len % SECTORS_PER_BLOCK != 0 {
                return Err(MountError::Damaged("superblock regions"));
            }
            at = reg.end();
        }
        if at != sb.total || sb.total > dev_sectors {
            return Err(MountError::Damaged("superblock size"));
        }
        Ok(sb)
    }
}

pub const CKPT_MAGIC: &[u8; 8] = b"LEGOCKPT";
const CKPT_CSUM_AT: usize = 48;

/// The first sector of a checkpoint slot; the payload follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CkptHeader {
    pub gen: u64,
    pub next_seq: u64,
    pub len: u64,
    pub payload_csum: u64,
}

impl CkptHeader {
    pub fn encode(&self, fs_id: u64, out: &mut [u8]) {
        out[..8].copy_from_slice(CKPT_MAGIC);
        put64(out, 8, fs_id);
        put64(out, 16, self.gen);
        put64(out, 24, self.next_seq);
        put64(out, 32, self.len);
        put64(out, 40, self.payload_csum);
        let c = xxh3_64_with_seed(&out[..CKPT_CSUM_AT], fs_id);
        put64(out, CKPT_CSUM_AT, c);
    }

    /// The header's own checksum: the first log record after this checkpoint
    /// chains to it.
    pub fn csum(&self, fs_id: u64) -> u64 {
        let mut b = [0u8; 64];
        self.encode(fs_id, &mut b);
        le64(&b, CKPT_CSUM_AT)
    }

    /// None when the sector holds no checkpoint of this file system.
    pub fn decode(b: &[u8], fs_id: u64) -> Option<Self> {
        if b.len() < 64 || &b[..8] != CKPT_MAGIC || le64(b, 8) != fs_id {
            return None;
        }
        if xxh3_64_with_seed(&b[..CKPT_CSUM_AT], fs_id) != le64(b, CKPT_CSUM_AT) {
            return None;
        }
        Some(CkptHeader {
            gen: le64(b, 16),
            next_seq: le64(b, 24),
            len: le64(b, 32),
            payload_csum: le64(b, 40),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superblock_round_trips_and_sizes_regions() {
        let sb = Superblock::for_device(1 << 18, 7).unwrap(); // 128 MiB
        assert_eq!(sb.ckpt[0].len, 8192);
        assert_eq!(sb.data.start + sb.data.len, 1 << 18);
        let big = Superblock::for_device(1 << 24, 7).unwrap(); // 8 GiB
        assert_eq!(big.log.len, (1 << 24) / 32);
        let enc = sb.encode();
        assert_eq!(Superblock::decode(&enc, 1 << 18).unwrap(), sb);
        assert_eq!(
            Superblock::decode(&enc, 1 << 17),
            Err(MountError::Damaged("superblock size"))
        );
        assert_eq!(
            Superblock::for_device((64 << 20) / 512 - 1, 0),
            Err(MountError::TooSmall)
        );
    }

    #[test]
    fn checkpoint_header_rejects_other_file_systems() {
        let h = CkptHeader {
            gen: 3,
            next_seq: 9,
            len: 100,
            payload_csum: 5,
        };
        let mut b = [0u8; 512];
        h.encode(1, &mut b);
        assert_eq!(CkptHeader::decode(&b, 1), Some(h));
        assert_eq!(CkptHeader::decode(&b, 2), None);
        b[20] ^= 1;
        assert_eq!(CkptHeader::decode(&b, 1), None);
    }
}
