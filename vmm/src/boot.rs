//! The boot state the VMM gives a guest: identity page tables, GDT, one TSS
//! per vCPU, the [`BootInfo`] page (layout in `lego_proto::boot`), and each
//! vCPU's registers, so that it starts in 64-bit mode at the image's entry.
//!
//! The same setup serves ordinary KVM and PVM. PVM's extra needs (PVM.md):
//! U/S on every page-table entry at every level, and a TSS RSP0 in the upper
//! half. Both are harmless on an ordinary host.

use kvm_bindings::{kvm_msr_entry, kvm_regs, kvm_segment, Msrs};
use kvm_ioctls::VcpuFd;
use lego_proto::boot::*;
use vm_memory::{Bytes, GuestAddress};
use zerocopy::IntoBytes;

use crate::error::{kvm, Result, VmmError};
use crate::memory::GuestRam;

const PTE_PRESENT: u64 = 1;
const PTE_WRITABLE: u64 = 1 << 1;
const PTE_USER: u64 = 1 << 2;
const PTE_LARGE: u64 = 1 << 7;
/// Every level: present, writable, user (PVM runs the guest kernel at CPL3).
const PTE_TABLE: u64 = PTE_PRESENT | PTE_WRITABLE | PTE_USER;

const CR0_PE: u64 = 1;
const CR0_MP: u64 = 1 << 1;
const CR0_ET: u64 = 1 << 4;
const CR0_NE: u64 = 1 << 5;
const CR0_WP: u64 = 1 << 16;
const CR0_AM: u64 = 1 << 18;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXMMEXCPT: u64 = 1 << 10;
const CR4_FSGSBASE: u64 = 1 << 16;
const CR4_OSXSAVE: u64 = 1 << 18;
const EFER_SCE: u64 = 1;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;

/// GDT entries below the TSS descriptors (Linux layout, PVM.md fact 4).
const GDT_ENTRIES: [u64; 8] = [
    0,                     // null
    0x00cf_9b00_0000_ffff, // 0x08 32-bit kernel code
    0x00af_9b00_0000_ffff, // 0x10 64-bit kernel code
    0x00cf_9300_0000_ffff, // 0x18 kernel data
    0x00cf_fb00_0000_ffff, // 0x23 32-bit user code
    0x00cf_f300_0000_ffff, // 0x2b user data
    0x00af_fb00_0000_ffff, // 0x33 64-bit user code
    0,
];

const MSR_STAR: u32 = 0xc000_0081;
/// The 32-bit user code selector (0x20 | RPL 3); SYSRET derives the others from it.
const SEL_USER32_CODE: u16 = 0x23;

const TSS_LIMIT: u32 = 0x67;
const TSS_RSP0: u64 = 4;
const TSS_IST1: u64 = 0x24;
const TSS_IOMAP: u64 = 0x66;

/// Writes the IDT: one 64-bit interrupt gate per exception, pointing at the
/// image's entry points (read from its `lego_isr_table`), all on IST1.
/// #BP is allowed from any privilege level.
pub fn write_idt(ram: &GuestRam, isr_table: u64) -> Result<()> {
    let mut idt = [0u64; 512];
    for vector in 0..32u64 {
        let handler: u64 = ram
            .read_obj(GuestAddress(isr_table + vector * 8))
            .map_err(|e| VmmError::Memory(format!("reading the image's exception table: {e}")))?;
        let dpl: u64 = if vector == 3 { 3 } else { 0 };
        idt[vector as usize * 2] = (handler & 0xffff)
            | (u64::from(SEL_CODE64) << 16)
            | (1 << 32) // IST1
            | ((0x8e | (dpl << 5)) << 40)
            | (((handler >> 16) & 0xffff) << 48);
        idt[vector as usize * 2 + 1] = handler >> 32;
    }
    ram.write_slice(idt.as_bytes(), GuestAddress(IDT))
        .map_err(|e| VmmError::Memory(format!("writing the IDT: {e}")))
}

/// Writes page tables, GDT, TSSs and the boot information into guest RAM.
pub fn write_boot_structures(ram: &GuestRam, info: &BootInfo, vcpus: u32) -> Result<()> {
    let w = |data: &[u8], at: u64| {
        ram.write_slice(data, GuestAddress(at))
            .map_err(|e| VmmError::Memory(format!("writing boot structures at {at:#x}: {e}")))
    };
    let mem = info.mem_size;

    // PML4: slot 0 identity-maps guest RAM, slot 511 aliases it in the upper half.
    let mut pml4 = [0u64; 512];
    pml4[0] = PDPT | PTE_TABLE;
    pml4[511] = PDPT | PTE_TABLE;
    w(pml4.as_bytes(), PML4)?;

    let gibs = mem.div_ceil(1 << 30);
    let mut pdpt = [0u64; 512];
    for (g, entry) in pdpt.iter_mut().enumerate().take(gibs as usize) {
        *entry = (PD + g as u64 * 4096) | PTE_TABLE;
    }
    w(pdpt.as_bytes(), PDPT)?;

    let pages = mem / LARGE_PAGE;
    let mut pd = [0u64; 512];
    for g in 0..gibs {
        for (i, entry) in pd.iter_mut().enumerate() {
            let page = g * 512 + i as u64;
            *entry = if page < pages {
                (page * LARGE_PAGE) | PTE_TABLE | PTE_LARGE
            } else {
                0
            };
        }
        w(pd.as_bytes(), PD + g * 4096)?;
    }

    let mut gdt = GDT_ENTRIES.to_vec();
    for cpu in 0..vcpus {
        let [low, high] = tss_descriptor(upper(tss_base(cpu)));
        gdt.push(low);
        gdt.push(high);
    }
    w(gdt.as_bytes(), GDT)?;

    for cpu in 0..vcpus {
        let mut tss = [0u8; TSS_LIMIT as usize + 1];
        let top = exception_stack_top(cpu);
        tss[TSS_RSP0 as usize..][..8].copy_from_slice(&top.to_le_bytes());
        // IST1 is what an ordinary KVM host uses (the IDT gates ask for it);
        // PVM always switches to RSP0. Same stack either way.
        tss[TSS_IST1 as usize..][..8].copy_from_slice(&top.to_le_bytes());
        // No I/O permission bitmap.
        tss[TSS_IOMAP as usize..][..2].copy_from_slice(&(TSS_LIMIT as u16 + 1).to_le_bytes());
        w(&tss, tss_base(cpu))?;
    }

    w(info.as_bytes(), BOOT_INFO)
}

fn tss_base(cpu: u32) -> u64 {
    TSS + cpu as u64 * TSS_STRIDE
}

fn gdt_limit(vcpus: u32) -> u16 {
    (SEL_TSS as u32 + 16 * vcpus - 1) as u16
}

/// A 16-byte 64-bit TSS descriptor, marked busy as TR will hold it.
fn tss_descriptor(base: u64) -> [u64; 2] {
    let low = (TSS_LIMIT as u64 & 0xffff)
        | ((base & 0xff_ffff) << 16)
        | (0x8b << 40)
        | (((base >> 24) & 0xff) << 56);
    [low, base >> 32]
}

pub(crate) fn segment(selector: u16, code: bool) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_: if code { 0xb } else { 0x3 },
        present: 1,
        dpl: 0,
        db: u8::from(!code),
        s: 1,
        l: u8::from(code),
        g: 1,
        ..Default::default()
    }
}

/// Puts vCPU `cpu` in 64-bit mode at `entry` with its own stack.
pub fn setup_vcpu(
    vcpu: &VcpuFd,
    cpu: u32,
    vcpus: u32,
    entry: u64,
    fsgsbase: bool,
    xcr0: Option<u64>,
) -> Result<()> {
    set_star(vcpu)?;
    let mut sregs = vcpu
        .get_sregs()
        .map_err(kvm("read vCPU segment registers"))?;
    sregs.cs = segment(SEL_CODE64, true);
    let data = segment(SEL_DATA, false);
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = kvm_segment {
        base: upper(tss_base(cpu)),
        limit: TSS_LIMIT,
        selector: SEL_TSS + 16 * cpu as u16,
        type_: 0xb,
        present: 1,
        ..Default::default()
    };
    // No LDT, as Linux starts a process: a selector that names one (TI
    // set) is #GP. KVM's emulator reads descriptors through the LDTR, and
    // under PVM it emulates a process's far return or segment load, so an
    // LDT at base 0 had it read the process's own page 0 as descriptors
    // (a refused page there, and the emulation never left KVM).
    sregs.ldt = kvm_segment {
        selector: 0,
        type_: 0x2,
        present: 0,
        unusable: 1,
        ..Default::default()
    };
    // Linear addresses in the upper-half alias: a processor's processes
    // have page tables of their own that map only that half of the
    // monitor's (the lower half is theirs).
    sregs.gdt.base = upper(GDT);
    sregs.gdt.limit = gdt_limit(vcpus);
    sregs.idt.base = upper(IDT);
    sregs.idt.limit = 256 * 16 - 1;
    sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;
    sregs.cr3 = PML4;
    sregs.cr4 = CR4_PAE
        | CR4_OSFXSR
        | CR4_OSXMMEXCPT
        | if fsgsbase { CR4_FSGSBASE } else { 0 }
        | if xcr0.is_some() { CR4_OSXSAVE } else { 0 };
    sregs.efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
    vcpu.set_sregs(&sregs)
        .map_err(kvm("set vCPU segment registers"))?;
    if let Some(value) = xcr0 {
        let mut xcrs = vcpu.get_xcrs().map_err(kvm("read the vCPU's XCR0"))?;
        xcrs.nr_xcrs = 1;
        xcrs.xcrs[0].xcr = 0;
        xcrs.xcrs[0].value = value;
        vcpu.set_xcrs(&xcrs).map_err(kvm("set the vCPU's XCR0"))?;
    }

    // Images run in the upper-half alias (images/guest.ld).
    let regs = kvm_regs {
        rip: entry,
        rsp: upper(stack_top(cpu)),
        rdi: upper(BOOT_INFO),
        rsi: cpu as u64,
        rflags: 0x2,
        ..Default::default()
    };
    vcpu.set_regs(&regs).map_err(kvm("set vCPU registers"))
}

/// SYSCALL/SYSRET selectors. PVM also derives the guest kernel's code and
/// stack selectors from STAR.
fn set_star(vcpu: &VcpuFd) -> Result<()> {
    let star = (u64::from(SEL_CODE64) << 32) | (u64::from(SEL_USER32_CODE) << 48);
    let msrs = Msrs::from_entries(&[kvm_msr_entry {
        index: MSR_STAR,
        data: star,
        ..Default::default()
    }])
    .map_err(|e| VmmError::Memory(format!("MSR list: {e:?}")))?;
    match vcpu.set_msrs(&msrs).map_err(kvm("set MSR_STAR"))? {
        1 => Ok(()),
        _ => Err(VmmError::Kvm {
            what: "set MSR_STAR",
            source: kvm_ioctls::Error::new(libc::EINVAL),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tss_descriptor_encodes_base_and_limit() {
        let [low, high] = tss_descriptor(0x1234_5678_9abc_def0);
        assert_eq!(low & 0xffff, 0x67);
        assert_eq!((low >> 16) & 0xff_ffff, 0xbc_def0);
        assert_eq!((low >> 56) & 0xff, 0x9a);
        assert_eq!((low >> 40) & 0xff, 0x8b);
        assert_eq!(high, 0x1234_5678);
    }

    #[test]
    fn page_tables_map_all_ram_with_user_bit() {
        let mem = 3 << 30; // spans three page directories
        let ram = GuestRam::from_ranges(&[(GuestAddress(0), mem as usize)]).unwrap();
        let info = BootInfo {
            mem_size: mem,
            ..Default::default()
        };
        write_boot_structures(&ram, &info, 2).unwrap();
        let read = |at: u64| -> u64 { ram.read_obj(GuestAddress(at)).unwrap() };
        assert_eq!(read(PML4), PDPT | 7);
        assert_eq!(read(PML4 + 511 * 8), PDPT | 7);
        for g in 0..3 {
            assert_eq!(read(PDPT + g * 8), (PD + g * 4096) | 7);
        }
        assert_eq!(read(PDPT + 3 * 8), 0, "no RAM beyond 3 GiB");
        let last = mem / LARGE_PAGE - 1;
        assert_eq!(read(PD + last * 8), (last * LARGE_PAGE) | 0x87);
        // The TSS of vCPU 1 has its upper-half exception stack.
        let rsp0: u64 = read(tss_base(1) + TSS_RSP0);
        assert_eq!(rsp0, exception_stack_top(1));
        assert!(rsp0 >= UPPER_HALF);
    }
}
