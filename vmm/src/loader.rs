//! Loading a guest image: a static x86-64 ELF executable whose PT_LOAD
//! segments are copied to their physical addresses in guest RAM, as
//! Firecracker boots a kernel ELF directly. No firmware runs first.

use std::path::Path;

use goblin::elf::{header, program_header, sym, Elf};
use lego_proto::boot::{IMAGE_BASE, ISR_TABLE_SYMBOL, UPPER_HALF};
use vm_memory::{Bytes, GuestAddress};

use crate::error::{Result, VmmError};
use crate::memory::GuestRam;

/// The least heap a guest gets; less is reported as "does not fit".
pub const MIN_HEAP: u64 = 1 << 20;

/// A loaded image: where to start it, where it ends, and its symbols.
pub struct Image {
    /// The entry point's virtual address.
    pub entry: u64,
    /// Guest-physical address of the image's table of 32 exception entry points.
    pub isr_table: u64,
    /// Where the guest's #DB/#BP handler runs, if the image says.
    pub debug_handler: Option<DebugHandler>,
    /// First free byte after the image, page aligned.
    pub end: u64,
    pub symbols: Symbols,
}

/// Parses and checks the image; `mem_size` is the guest RAM it must fit in.
/// The guest's debug exception handler, by the labels its assembly exports.
/// A vCPU inside it must not be stopped by the debugger: the trap frame it
/// is saving or restoring lives on the exception stack that a nested #DB
/// would reuse.
#[derive(Clone, Debug)]
pub struct DebugHandler {
    /// The #DB and #BP entry stubs and the handler up to its hypercall.
    pub before_hypercall: Vec<std::ops::Range<u64>>,
    /// From the hypercall's return to after its `iretq`.
    pub after_hypercall: std::ops::Range<u64>,
}

/// Parses and checks the image; `mem_size` is the guest RAM it must fit in.
/// Guest RAM is a fresh anonymous mapping, so `.bss` is already zero.
pub fn load(path: &Path, role: &'static str, ram: &GuestRam, mem_size: u64) -> Result<Image> {
    let bytes = read(path, role)?;
    let plan = plan(path, &bytes, mem_size)?;
    for seg in &plan.segments {
        let data = &bytes[seg.file_range.clone()];
        ram.write_slice(data, GuestAddress(seg.paddr))
            .map_err(|e| VmmError::Memory(format!("copying the image: {e}")))?;
    }
    Ok(Image {
        debug_handler: plan.debug_handler,
        isr_table: plan.isr_table,
        entry: plan.entry,
        end: plan.end,
        symbols: plan.symbols,
    })
}

fn read(path: &Path, role: &'static str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => VmmError::ImageMissing {
            role,
            path: path.to_owned(),
        },
        _ => VmmError::ImageRead {
            path: path.to_owned(),
            source: e,
        },
    })
}

struct Segment {
    paddr: u64,
    file_range: std::ops::Range<usize>,
}

struct Plan {
    entry: u64,
    isr_table: u64,
    debug_handler: Option<DebugHandler>,
    end: u64,
    segments: Vec<Segment>,
    symbols: Symbols,
}

/// Everything that can be wrong with an image is found here, before guest
/// RAM is touched.
fn plan(path: &Path, bytes: &[u8], mem_size: u64) -> Result<Plan> {
    let not_elf = |why: String| VmmError::ImageNotElf {
        path: path.to_owned(),
        why,
    };
    let too_big = |why: String| VmmError::ImageTooBig {
        path: path.to_owned(),
        why,
    };
    if bytes.len() < 4 || &bytes[..4] != b"\x7fELF" {
        return Err(not_elf("it does not start with the ELF magic bytes".into()));
    }
    let elf = Elf::parse(bytes).map_err(|e| not_elf(format!("its headers are corrupt ({e})")))?;
    if !elf.is_64 || !elf.little_endian {
        return Err(not_elf("it is not a 64-bit little-endian ELF".into()));
    }
    if elf.header.e_machine != header::EM_X86_64 {
        return Err(not_elf(format!(
            "it is built for {}, not x86-64",
            header::machine_to_str(elf.header.e_machine)
        )));
    }
    if elf.header.e_type != header::ET_EXEC {
        return Err(not_elf(format!(
            "it is a {} file, not a static executable",
            header::et_to_str(elf.header.e_type)
        )));
    }

    let mut segments = Vec::new();
    let mut end = 0u64;
    let mut entry_ok = false;
    for ph in elf.program_headers.iter() {
        if ph.p_type != program_header::PT_LOAD || ph.p_memsz == 0 {
            continue;
        }
        let file_end = ph.p_offset.checked_add(ph.p_filesz);
        let file_range = match file_end {
            Some(fe) if fe <= bytes.len() as u64 && ph.p_filesz <= ph.p_memsz => {
                ph.p_offset as usize..fe as usize
            }
            _ => {
                return Err(not_elf(format!(
                    "a segment claims bytes {:#x}+{:#x} of a {}-byte file",
                    ph.p_offset,
                    ph.p_filesz,
                    bytes.len()
                )))
            }
        };
        if ph.p_paddr < IMAGE_BASE {
            return Err(not_elf(format!(
                "a segment starts at {:#x}, inside the VMM's boot area below {IMAGE_BASE:#x} (link guests with images/guest.ld)",
                ph.p_paddr
            )));
        }
        let seg_end = ph
            .p_paddr
            .checked_add(ph.p_memsz)
            .ok_or_else(|| not_elf("a segment wraps around the address space".into()))?;
        if seg_end > mem_size {
            return Err(too_big(format!(
                "a segment ends at {} but --mem gives {}",
                mib(seg_end),
                mib(mem_size)
            )));
        }
        if ph.p_vaddr != UPPER_HALF.wrapping_add(ph.p_paddr) {
            return Err(not_elf(format!(
                "a segment is linked at {:#x} but loaded at {:#x}; guest images run in the upper-half alias of their load address (link them with images/guest.ld)",
                ph.p_vaddr, ph.p_paddr
            )));
        }
        if ph.is_executable() && (ph.p_vaddr..ph.p_vaddr + ph.p_memsz).contains(&elf.entry) {
            entry_ok = true;
        }
        end = end.max(seg_end);
        segments.push(Segment {
            paddr: ph.p_paddr,
            file_range,
        });
    }
    if segments.is_empty() {
        return Err(not_elf(
            "it has nothing to load (no PT_LOAD segments)".into(),
        ));
    }
    if !entry_ok {
        return Err(not_elf(format!(
            "its entry point {:#x} is not in an executable segment",
            elf.entry
        )));
    }
    let end = end.next_multiple_of(4096);
    if end + MIN_HEAP > mem_size {
        return Err(too_big(format!(
            "it ends at {} and needs at least {} of heap above it, but --mem gives {}",
            mib(end),
            mib(MIN_HEAP),
            mib(mem_size)
        )));
    }
    let symbol = |name: &str| {
        elf.syms
            .iter()
            .find(|s| elf.strtab.get_at(s.st_name) == Some(name))
            .map(|s| s.st_value)
    };
    // The table must be loaded from the file: the VMM reads it to build the
    // IDT. Symbols are virtual; segments are placed by physical address.
    let in_file = |vaddr: u64, len: u64| {
        let addr = vaddr.wrapping_sub(UPPER_HALF);
        segments.iter().any(|seg| {
            let file_len = (seg.file_range.end - seg.file_range.start) as u64;
            addr >= seg.paddr
                && addr
                    .checked_add(len)
                    .is_some_and(|e| e <= seg.paddr + file_len)
        })
    };
    let isr_table = symbol(ISR_TABLE_SYMBOL)
        .filter(|&a| in_file(a, 32 * 8))
        .map(|a| a - UPPER_HALF)
        .ok_or_else(|| {
            not_elf(format!(
                "it has no {ISR_TABLE_SYMBOL} symbol inside its image, so it is not a Lego guest image (or it was stripped)"
            ))
        })?;
    let debug_handler = match (
        symbol("lego_isr_1"),
        symbol("lego_isr_3"),
        symbol("lego_isr_debug"),
        symbol("lego_isr_debug_resume"),
        symbol("lego_isr_debug_end"),
    ) {
        (Some(db), Some(bp), Some(start), Some(resume), Some(end_))
            if start <= resume && resume <= end_ =>
        {
            Some(DebugHandler {
                // Each entry stub is one 16-byte aligned slot.
                before_hypercall: vec![db..db + 16, bp..bp + 16, start..resume],
                after_hypercall: resume..end_,
            })
        }
        _ => None,
    };
    Ok(Plan {
        debug_handler,
        isr_table,
        entry: elf.entry,
        end,
        segments,
        symbols: Symbols::from_elf(&elf),
    })
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// Function symbols of the image, to name addresses in fault reports.
/// "function+0xoffset" for `addr` in the ELF file at `path`, if it has
/// symbols (a user's program, for the line that reports its death).
pub fn symbolize_file(path: &Path, addr: u64) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    let elf = Elf::parse(&bytes).ok()?;
    Symbols::from_elf(&elf).describe(addr)
}

#[derive(Default)]
pub struct Symbols {
    /// (start, size, demangled name), sorted by start.
    funcs: Vec<(u64, u64, String)>,
}

impl Symbols {
    fn from_elf(elf: &Elf) -> Symbols {
        let mut funcs: Vec<(u64, u64, String)> = elf
            .syms
            .iter()
            .filter(|s| s.st_type() == sym::STT_FUNC && s.st_value != 0)
            .filter_map(|s| {
                let name = elf.strtab.get_at(s.st_name)?;
                Some((
                    s.st_value,
                    s.st_size,
                    format!("{:#}", rustc_demangle::demangle(name)),
                ))
            })
            .collect();
        funcs.sort_by_key(|f| f.0);
        Symbols { funcs }
    }

    /// Symbols of the given functions (start, size, name), for tests.
    #[cfg(test)]
    pub fn of(funcs: &[(u64, u64, &str)]) -> Symbols {
        let mut funcs: Vec<(u64, u64, String)> = funcs
            .iter()
            .map(|&(a, n, s)| (a, n, s.to_owned()))
            .collect();
        funcs.sort_by_key(|f| f.0);
        Symbols { funcs }
    }

    /// "function+0xoffset" for an address inside a known function.
    pub fn describe(&self, addr: u64) -> Option<String> {
        let i = self.funcs.partition_point(|f| f.0 <= addr).checked_sub(1)?;
        let (start, size, name) = &self.funcs[i];
        (addr < start + (*size).max(1)).then(|| format!("{name}+{:#x}", addr - start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(bytes: &[u8], mem: u64) -> Result<Plan> {
        plan(Path::new("test.elf"), bytes, mem)
    }

    #[test]
    fn garbage_is_not_elf() {
        for bytes in [
            &b""[..],
            b"\x7fEL",
            b"hello world, not an ELF",
            b"\x7fELF\x02\x01\x01",
        ] {
            let err = plan_of(bytes, 128 << 20).err().expect("must fail");
            assert!(matches!(err, VmmError::ImageNotElf { .. }), "{err}");
            assert_eq!(err.exit_code(), 2);
        }
    }

    #[test]
    fn host_binary_is_not_a_static_executable() {
        // The test binary itself is an x86-64 ELF, but a PIE (ET_DYN).
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let err = plan_of(&exe, 128 << 20).err().expect("must fail");
        assert!(err.to_string().contains("not a static executable"), "{err}");
    }

    #[test]
    fn symbols_describe_addresses() {
        let s = Symbols {
            funcs: vec![(0x1000, 0x10, "a".into()), (0x2000, 0x20, "b".into())],
        };
        assert_eq!(s.describe(0x1004).as_deref(), Some("a+0x4"));
        assert_eq!(s.describe(0x2000).as_deref(), Some("b+0x0"));
        assert_eq!(s.describe(0x1010), None);
        assert_eq!(s.describe(0x10), None);
    }
}
