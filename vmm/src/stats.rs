//! A vCPU's own counters, from KVM's binary statistics (`KVM_GET_STATS_FD`).
//!
//! `insn_emulation` counts instructions KVM emulated instead of running them
//! natively: under PVM without the native MSR it is every instruction, which
//! is what `native=yes|no` checks.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::io::{AsRawFd, FromRawFd};

use kvm_ioctls::VcpuFd;

/// `_IO(KVMIO, 0xce)`; kvm-ioctls has no wrapper for it.
const KVM_GET_STATS_FD: libc::c_ulong = 0xae << 8 | 0xce;
const HEADER_SIZE: usize = 24;
const DESC_FIXED: usize = 16;

/// The counters of one vCPU that we read, by their offsets in the data block.
pub struct VcpuStats {
    file: File,
    insn_emulation: Option<u64>,
    exits: Option<u64>,
    pf_taken: Option<u64>,
    pf_fixed: Option<u64>,
    /// Every counter's name and offset (for the debug log's full list).
    names: Vec<(String, u64)>,
}

impl VcpuStats {
    /// Opens the vCPU's stats; None if this kernel has no binary stats.
    pub fn open(vcpu: &VcpuFd) -> Option<VcpuStats> {
        // SAFETY: KVM_GET_STATS_FD takes no argument and returns a new fd.
        let fd = unsafe { libc::ioctl(vcpu.as_raw_fd(), KVM_GET_STATS_FD as _, 0) };
        if fd < 0 {
            log::warn!(
                "this KVM has no binary statistics ({}); cannot tell whether the guest runs natively",
                std::io::Error::last_os_error()
            );
            return None;
        }
        // SAFETY: fd was just returned to us and is owned by nobody else.
        let file = unsafe { File::from_raw_fd(fd) };
        let mut stats = VcpuStats {
            file,
            insn_emulation: None,
            exits: None,
            pf_taken: None,
            pf_fixed: None,
            names: Vec::new(),
        };
        if let Err(e) = stats.index() {
            log::warn!("cannot parse KVM's vCPU statistics: {e}");
            return None;
        }
        Some(stats)
    }

    fn index(&mut self) -> std::io::Result<()> {
        let mut header = [0u8; HEADER_SIZE];
        self.file.read_exact_at(&mut header, 0)?;
        let field =
            |i: usize| u32::from_le_bytes(header[i * 4..i * 4 + 4].try_into().unwrap_or_default());
        let (name_size, count, desc_offset, data_offset) = (
            field(1) as usize,
            field(2) as usize,
            field(4) as u64,
            field(5) as u64,
        );
        let desc_size = DESC_FIXED + name_size;
        let mut descs = vec![0u8; desc_size * count];
        self.file.read_exact_at(&mut descs, desc_offset)?;
        for desc in descs.chunks_exact(desc_size) {
            let offset = u32::from_le_bytes(desc[8..12].try_into().unwrap_or_default()) as u64;
            let name = &desc[DESC_FIXED..];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            // Only the counters (KVM_STATS_TYPE_CUMULATIVE): instant
            // values, peaks and histograms mean nothing summed.
            let kind = u32::from_le_bytes(desc[0..4].try_into().unwrap_or_default()) & 0xf;
            if kind == 0 {
                self.names.push((
                    String::from_utf8_lossy(name).into_owned(),
                    data_offset + offset,
                ));
            }
            match name {
                b"insn_emulation" => self.insn_emulation = Some(data_offset + offset),
                b"exits" => self.exits = Some(data_offset + offset),
                b"pf_taken" => self.pf_taken = Some(data_offset + offset),
                b"pf_fixed" => self.pf_fixed = Some(data_offset + offset),
                _ => {}
            }
        }
        Ok(())
    }

    fn read(&self, at: Option<u64>) -> Option<u64> {
        let mut value = [0u8; 8];
        self.file.read_exact_at(&mut value, at?).ok()?;
        Some(u64::from_le_bytes(value))
    }

    /// Instructions KVM has emulated on this vCPU so far.
    pub fn insn_emulation(&self) -> Option<u64> {
        self.read(self.insn_emulation)
    }

    /// Exits of this vCPU to KVM (in-kernel and to us).
    pub fn exits(&self) -> Option<u64> {
        self.read(self.exits)
    }

    /// Page faults KVM took for this vCPU (under shadow paging, every
    /// guest access whose shadow entry is missing or too weak).
    pub fn pf_taken(&self) -> Option<u64> {
        self.read(self.pf_taken)
    }

    /// Of those, the ones KVM fixed by installing a shadow entry.
    pub fn pf_fixed(&self) -> Option<u64> {
        self.read(self.pf_fixed)
    }

    /// Every counter KVM keeps for this vCPU, by name (shadow faults,
    /// page-table writes, zaps: where a guest's time outside itself goes).
    pub fn all(&self) -> Vec<(String, u64)> {
        self.names
            .iter()
            .filter_map(|(n, at)| Some((n.clone(), self.read(Some(*at))?)))
            .collect()
    }

    /// A second handle on the same counters (for the main thread's report).
    pub fn try_clone(&self) -> Option<VcpuStats> {
        Some(VcpuStats {
            file: self.file.try_clone().ok()?,
            insn_emulation: self.insn_emulation,
            exits: self.exits,
            pf_taken: self.pf_taken,
            pf_fixed: self.pf_fixed,
            names: self.names.clone(),
        })
    }
}
