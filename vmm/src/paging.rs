//! Reading the guest's page tables, so a debugger can use guest-virtual
//! addresses. x86-64 4-level paging with 1 GiB, 2 MiB and 4 KiB pages.

use vm_memory::{Bytes, GuestAddress};

use crate::memory::GuestRam;

const PRESENT: u64 = 1;
const LARGE: u64 = 1 << 7;
const ADDRESS: u64 = 0x000f_ffff_ffff_f000;

/// The guest-physical address `vaddr` maps to under `cr3`, and how many
/// bytes from there stay on the same page; None if it is not mapped.
pub fn translate(ram: &GuestRam, cr3: u64, vaddr: u64) -> Option<(u64, u64)> {
    // Non-canonical addresses fault.
    let sign = (vaddr as i64) >> 47;
    if sign != 0 && sign != -1 {
        return None;
    }
    let mut table = cr3 & ADDRESS;
    for level in 0..4u32 {
        let shift = 39 - 9 * level;
        let index = (vaddr >> shift) & 0x1ff;
        let entry: u64 = ram.read_obj(GuestAddress(table + index * 8)).ok()?;
        if entry & PRESENT == 0 {
            return None;
        }
        // PDPT (level 1) and PD (level 2) entries may map 1 GiB / 2 MiB pages.
        if level == 3 || (entry & LARGE != 0 && (level == 1 || level == 2)) {
            let size = 1u64 << shift;
            let base = entry & ADDRESS & !(size - 1);
            let offset = vaddr & (size - 1);
            return Some((base + offset, size - offset));
        }
        table = entry & ADDRESS;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use lego_proto::boot::{BootInfo, PML4, UPPER_HALF};

    fn ram_with_boot_tables() -> GuestRam {
        let mem = 64 << 20;
        let ram = GuestRam::from_ranges(&[(GuestAddress(0), mem as usize)]).unwrap();
        let info = BootInfo {
            mem_size: mem,
            ..Default::default()
        };
        crate::boot::write_boot_structures(&ram, &info, 1).unwrap();
        ram
    }

    #[test]
    fn identity_and_upper_half() {
        let ram = ram_with_boot_tables();
        assert_eq!(
            translate(&ram, PML4, 0x40_1234),
            Some((0x40_1234, 0x20_0000 - 0x1234))
        );
        assert_eq!(
            translate(&ram, PML4, UPPER_HALF + 0x5008).map(|t| t.0),
            Some(0x5008)
        );
        assert_eq!(translate(&ram, PML4, (64 << 20) - 1).map(|t| t.1), Some(1));
    }

    #[test]
    fn unmapped_and_non_canonical() {
        let ram = ram_with_boot_tables();
        assert_eq!(translate(&ram, PML4, 64 << 20), None, "beyond RAM");
        assert_eq!(translate(&ram, PML4, 0x40_0000_0000), None, "no PDPT entry");
        assert_eq!(
            translate(&ram, PML4, 0x0000_8000_0000_0000),
            None,
            "non-canonical"
        );
        assert_eq!(
            translate(&ram, 0x7fff_f000_0000, 0x1000),
            None,
            "CR3 outside RAM"
        );
    }

    #[test]
    fn four_kib_pages() {
        let ram = ram_with_boot_tables();
        // Build a private 4 KiB mapping: PML4 at 0x10_0000 (an odd frame is
        // not needed here) mapping 0x7000_0000_1000 -> 0x30_0000.
        let (pml4, pdpt, pd, pt) = (0x80_0000u64, 0x80_1000u64, 0x80_2000u64, 0x80_3000u64);
        let v: u64 = 0x7000_0000_1000;
        let w = |at: u64, val: u64| ram.write_obj(val, GuestAddress(at)).unwrap();
        w(pml4 + ((v >> 39) & 0x1ff) * 8, pdpt | 7);
        w(pdpt + ((v >> 30) & 0x1ff) * 8, pd | 7);
        w(pd + ((v >> 21) & 0x1ff) * 8, pt | 7);
        w(pt + ((v >> 12) & 0x1ff) * 8, 0x30_0000 | 7);
        assert_eq!(
            translate(&ram, pml4, v + 0x10),
            Some((0x30_0010, 0x1000 - 0x10))
        );
        assert_eq!(translate(&ram, pml4, v + 0x1000), None);
    }
}
