//! Opening KVM and telling which flavour it is.
//!
//! Under `kvm_pvm` (shadow paging, guest at hardware CPL3; see PVM.md) a
//! guest runs natively only after MSR 0x4b564d10 is set to 1 on each vCPU.
//! On an ordinary KVM that MSR does not exist and the write is refused: that
//! refusal is how we tell the two apart, not an error.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::{FromRawFd, IntoRawFd};
use std::path::Path;

use kvm_bindings::{kvm_msr_entry, Msrs};
use kvm_ioctls::{Kvm, VcpuFd};

use crate::error::{Result, VmmError};

/// The PVM "run natively" MSR.
pub const MSR_PVM_NATIVE: u32 = 0x4b56_4d10;

/// Opens the KVM device, telling "missing" from "not allowed".
pub fn open(path: &Path) -> Result<Kvm> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => VmmError::NoKvm {
                path: path.to_owned(),
            },
            std::io::ErrorKind::PermissionDenied => VmmError::KvmPermission {
                path: path.to_owned(),
            },
            _ => VmmError::KvmOpen {
                path: path.to_owned(),
                source: e,
            },
        })?;
    let fd = file.into_raw_fd();
    // SAFETY: fd is a freshly opened, owned descriptor that Kvm now owns.
    let kvm = unsafe { Kvm::from_raw_fd(fd) };
    let version = kvm.get_api_version();
    if version != 12 {
        return Err(VmmError::KvmOpen {
            path: path.to_owned(),
            source: std::io::Error::other(format!(
                "it is not a KVM device with the stable API (version {version}, expected 12)"
            )),
        });
    }
    Ok(kvm)
}

/// MSRs whose writes decide where the CPU enters the monitor (system-call
/// and exception entry, EFER, the APIC base) or how PVM runs the guest:
/// `(first, count)`. The PVM "native" MSR is the one the monitor writes on
/// every exception entry; it is left out (KVM handles it in the kernel).
const GUARDED_MSRS: [(u32, u32); 5] = [
    (0x1b, 1),           // APIC base
    (0x174, 3),          // SYSENTER CS/ESP/EIP
    (0xc000_0080, 5),    // EFER, STAR, LSTAR, CSTAR, SFMASK
    (0xc000_0102, 1),    // KERNEL_GS_BASE
    (0x4b56_4d00, 0x10), // PVM's own, below the native MSR
];

/// Sends writes of the [`GUARDED_MSRS`] to the VMM (KVM_EXIT_X86_WRMSR),
/// which performs them for the monitor and refuses them to processes
/// (vcpu.rs). Under PVM a process's `wrmsr` otherwise runs as if in the
/// kernel (measured: a program rewrote LSTAR). Returns false where KVM
/// lacks MSR filters (then nothing changes).
pub fn guard_system_msrs(vm: &kvm_ioctls::VmFd, kvm: &Kvm) -> Result<bool> {
    use kvm_ioctls::{Cap, MsrFilterDefaultAction, MsrFilterRange, MsrFilterRangeFlags};
    if !kvm.check_extension(Cap::X86UserSpaceMsr) || !kvm.check_extension(Cap::X86MsrFilter) {
        return Ok(false);
    }
    let cap = kvm_bindings::kvm_enable_cap {
        cap: kvm_bindings::KVM_CAP_X86_USER_SPACE_MSR,
        args: [u64::from(kvm_bindings::KVM_MSR_EXIT_REASON_FILTER), 0, 0, 0],
        ..Default::default()
    };
    vm.enable_cap(&cap).map_err(|e| VmmError::Kvm {
        what: "send filtered MSR writes to the VMM",
        source: e,
    })?;
    // A zero bit denies (here: sends to the VMM); one bitmap of zeros
    // covers every range.
    let deny = [0u8; 2];
    let ranges: Vec<MsrFilterRange<'_>> = GUARDED_MSRS
        .iter()
        .map(|&(base, count)| MsrFilterRange {
            flags: MsrFilterRangeFlags::WRITE,
            base,
            msr_count: count,
            bitmap: &deny,
        })
        .collect();
    vm.set_msr_filter(MsrFilterDefaultAction::ALLOW, &ranges)
        .map_err(|e| VmmError::Kvm {
            what: "set the MSR filter",
            source: e,
        })?;
    Ok(true)
}

/// Stops KVM from rewriting a `vmcall` it meets on an AMD CPU (or a
/// `vmmcall` on an Intel one) into the native hypercall instruction: with
/// the quirk on, a process's `vmcall` had KVM's emulator write the patch
/// into the process's read-only code, which the ExCache refuses, and the
/// vCPU stayed in KVM retrying it for good. With it off, KVM injects #UD
/// and the process gets SIGILL, as on Linux. Returns false where KVM does
/// not offer to disable the quirk (then a process's `vmcall` may still
/// wedge its vCPU).
pub fn refuse_foreign_hypercalls(vm: &kvm_ioctls::VmFd) -> Result<bool> {
    let cap = kvm_bindings::KVM_CAP_DISABLE_QUIRKS2;
    let quirk = kvm_bindings::KVM_X86_QUIRK_FIX_HYPERCALL_INSN;
    // KVM_CHECK_EXTENSION of the cap gives the quirks it may disable.
    let quirks = vm.check_extension_raw(cap.into());
    if quirks < 0 || quirks as u32 & quirk == 0 {
        return Ok(false);
    }
    let enable = kvm_bindings::kvm_enable_cap {
        cap,
        args: [u64::from(quirk), 0, 0, 0],
        ..Default::default()
    };
    vm.enable_cap(&enable).map_err(|e| VmmError::Kvm {
        what: "disable KVM's rewriting of hypercall instructions",
        source: e,
    })?;
    Ok(true)
}

/// Asks for native execution under PVM. Returns whether this is PVM.
pub fn enable_pvm_native(vcpu: &VcpuFd) -> Result<bool> {
    let msrs = Msrs::from_entries(&[kvm_msr_entry {
        index: MSR_PVM_NATIVE,
        data: 1,
        ..Default::default()
    }])
    .map_err(|e| VmmError::Memory(format!("MSR list: {e:?}")))?;
    // KVM_SET_MSRS returns how many entries it accepted; 0 means "no such MSR".
    let accepted = match vcpu.set_msrs(&msrs) {
        Ok(n) => n,
        Err(e) => {
            log::debug!("PVM MSR write refused ({e}): not a PVM host");
            0
        }
    };
    if accepted == 1 {
        let mut readback = msrs;
        if vcpu.get_msrs(&mut readback).is_ok() {
            log::debug!("PVM MSR reads back {:#x}", readback.as_slice()[0].data);
        }
    }
    Ok(accepted == 1)
}

/// Whether the host CPU offers FSGSBASE (CPUID.7.0:EBX bit 0) to guests.
pub fn supports_fsgsbase(cpuid: &kvm_bindings::CpuId) -> bool {
    cpuid
        .as_slice()
        .iter()
        .any(|e| e.function == 7 && e.index == 0 && e.ebx & 1 != 0)
}

/// The extended-state features guests get (XCR0), when the CPU has XSAVE:
/// x87, SSE, AVX and AVX-512 (whatever of those it offers). Processes use
/// AVX-512 freely here (glibc's string functions do), so the processor
/// monitor saves and restores them, and lays them out in signal frames.
/// PKRU and AMX are left out: nothing in Lego offers protection keys, and
/// Linux hands out AMX only on request (arch_prctl), which Lego refuses.
pub fn guest_xcr0(cpuid: &kvm_bindings::CpuId) -> Option<u64> {
    let leaf = |f: u32, i: u32| {
        cpuid
            .as_slice()
            .iter()
            .find(|e| e.function == f && e.index == i)
    };
    let xsave = leaf(1, 0).is_some_and(|e| e.ecx & (1 << 26) != 0);
    let offered = leaf(0xd, 0).map(|e| e.eax as u64);
    match offered {
        // PVM's table here leaves XSAVE out of leaf 1 but offers leaf 0xd
        // (XCR0 0xe7), and its guests run on the host's XSAVE: leaf 0xd
        // decides (`offer_xsave` then marks leaf 1).
        Some(o) if xsave || o & 3 == 3 => Some(o & 0xe7 | 3),
        None if xsave => Some(3),
        _ => None,
    }
}

/// Marks XSAVE in leaf 1 of the guest's CPUID table once [`guest_xcr0`]
/// found it (through leaf 0xd on PVM): KVM takes CR4.OSXSAVE only from a
/// guest whose CPUID has XSAVE, and a process's CPUID.1:ECX.OSXSAVE
/// follows that CR4 bit. Without it (measured on PVM), glibc, libgcc,
/// OpenSSL and every program that checks OSXSAVE before using AVX took
/// their SSE paths.
pub fn offer_xsave(cpuid: &mut kvm_bindings::CpuId) {
    for e in cpuid.as_mut_slice() {
        if e.function == 1 && e.index == 0 {
            e.ecx |= 1 << 26;
        }
    }
}
