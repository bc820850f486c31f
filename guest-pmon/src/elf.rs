//! Reading an x86-64 Linux executable: what `execve` needs to map it.
//!
//! `ET_EXEC` loads where it was linked (gcc -static, Debian's
//! busybox-static); `ET_DYN` (a static-pie, a PIE, or a dynamic loader
//! itself) relocates itself and only needs a load address. A dynamically
//! linked program names its loader (`PT_INTERP`, [`Program::interp`]):
//! `execve` maps that loader too and starts there, as Linux does, and the
//! loader maps the shared libraries with the process's own calls. Every
//! field that comes from the file is checked; a malformed file is an error
//! with a sentence, never a panic.

use alloc::string::String;
use alloc::vec::Vec;

use zerocopy::{FromBytes, Immutable, KnownLayout};

use crate::PAGE;

const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const PT_PHDR: u32 = 6;
const PT_TLS: u32 = 7;
const PT_GNU_STACK: u32 = 0x6474_e551;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const EM_X86_64: u16 = 62;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

/// Protection bits, as mmap's PROT_*.
pub const PROT_READ: u32 = 1;
pub const PROT_WRITE: u32 = 2;
pub const PROT_EXEC: u32 = 4;

/// The most program headers read (Linux refuses above 64 KiB of them).
const MAX_PHDRS: usize = 65536 / 56;

#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, Immutable, KnownLayout)]
struct Ehdr {
    ident: [u8; 16],
    e_type: u16,
    machine: u16,
    version: u32,
    entry: u64,
    phoff: u64,
    shoff: u64,
    flags: u32,
    ehsize: u16,
    phentsize: u16,
    phnum: u16,
    shentsize: u16,
    shnum: u16,
    shstrndx: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, Immutable, KnownLayout)]
struct Phdr {
    p_type: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    paddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

/// Where the bytes of an executable come from (a host file today, a file
/// on storage later).
pub trait Source {
    /// The file's size in bytes.
    fn size(&self) -> u64;
    /// Fills `buf` from offset `at`; Err with a sentence if it cannot.
    fn read_at(&mut self, at: u64, buf: &mut [u8]) -> Result<(), String>;
}

impl Source for &[u8] {
    fn size(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at(&mut self, at: u64, buf: &mut [u8]) -> Result<(), String> {
        let start = usize::try_from(at).map_err(|_| String::from("offset too large"))?;
        let end = start
            .checked_add(buf.len())
            .filter(|&e| e <= <[u8]>::len(self))
            .ok_or_else(|| String::from("read past the end"))?;
        buf.copy_from_slice(&self[start..end]);
        Ok(())
    }
}

/// Why a file cannot be run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElfError {
    NotElf,
    /// The file ends before a part its headers name.
    Truncated(&'static str),
    Class32,
    BigEndian,
    Machine(u16),
    /// A dynamic loader that itself names a loader (Linux: ELIBBAD).
    LoaderNotStatic(String),
    /// Not an executable (a relocatable object, a core dump...).
    Type(u16),
    /// A program header that cannot be loaded, and why.
    Segment(&'static str),
    NoSegments,
    /// It needs addresses beyond what this processor gives a process.
    TooHigh(u64),
    /// Reading the file failed.
    Read(String),
}

impl core::fmt::Display for ElfError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ElfError::NotElf => write!(f, "it is not an ELF executable (no ELF magic bytes)"),
            ElfError::Truncated(what) => {
                write!(f, "it is truncated: the file ends inside its {what}")
            }
            ElfError::Class32 => {
                write!(f, "it is a 32-bit program; Lego runs x86-64 programs only")
            }
            ElfError::BigEndian => {
                write!(f, "it is a big-endian ELF; Lego runs x86-64 programs only")
            }
            ElfError::Machine(m) => write!(
                f,
                "it is built for another machine (ELF e_machine {m}), not x86-64"
            ),
            ElfError::LoaderNotStatic(interp) => write!(
                f,
                "it is a dynamic loader that asks for a loader itself ({interp})"
            ),
            ElfError::Type(t) => write!(f, "it is not an executable (ELF type {t})"),
            ElfError::Segment(why) => write!(f, "one of its program headers is invalid: {why}"),
            ElfError::NoSegments => write!(f, "it has nothing to load (no PT_LOAD segment)"),
            ElfError::TooHigh(a) => write!(
                f,
                "it needs address {a:#x}, beyond the address space a process has on this processor"
            ),
            ElfError::Read(why) => write!(f, "it could not be read: {why}"),
        }
    }
}

/// One `PT_LOAD`, at its final address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub memsz: u64,
    pub offset: u64,
    pub filesz: u64,
    /// PROT_* bits.
    pub prot: u32,
}

impl Segment {
    /// The pages it covers: [start, end).
    pub fn pages(&self) -> (u64, u64) {
        (
            self.vaddr & !(PAGE - 1),
            (self.vaddr + self.memsz + PAGE - 1) & !(PAGE - 1),
        )
    }
}

/// What `execve` needs to map a program and start it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// Added to every address in the file (0 for ET_EXEC).
    pub bias: u64,
    pub entry: u64,
    /// Where the program headers are in memory (AT_PHDR), their size and
    /// count (AT_PHENT, AT_PHNUM).
    pub phdr: u64,
    pub phent: u64,
    pub phnum: u64,
    pub segments: Vec<Segment>,
    /// The first page above every segment: where the program break starts.
    pub brk: u64,
    /// `PT_GNU_STACK` asks for an executable stack.
    pub exec_stack: bool,
    /// The thread-local storage template's size (PT_TLS), for the record.
    pub tls_size: u64,
    /// `PT_INTERP`: the dynamic loader the program asks for (a path).
    pub interp: Option<Vec<u8>>,
}

fn read<S: Source + ?Sized>(src: &mut S, at: u64, buf: &mut [u8]) -> Result<(), ElfError> {
    let end = at
        .checked_add(buf.len() as u64)
        .ok_or(ElfError::Truncated("headers"))?;
    if end > src.size() {
        return Err(ElfError::Truncated("headers"));
    }
    src.read_at(at, buf).map_err(ElfError::Read)
}

/// Reads and checks the headers. `user_top` bounds the addresses; a
/// static-pie is placed at two thirds of it (as Linux places PIEs at
/// two thirds of its address space).
pub fn parse<S: Source + ?Sized>(src: &mut S, user_top: u64) -> Result<Program, ElfError> {
    parse_at(src, user_top, (user_top / 3 * 2) & !(PAGE - 1))
}

/// [`parse`] with an `ET_DYN` file's lowest page placed at `base` (page
/// aligned): where `execve` puts a program's dynamic loader.
pub fn parse_at<S: Source + ?Sized>(
    src: &mut S,
    user_top: u64,
    base: u64,
) -> Result<Program, ElfError> {
    let mut ident = [0u8; 64];
    if src.size() < 4 {
        return Err(ElfError::NotElf);
    }
    let n = src.size().min(64) as usize;
    read(src, 0, &mut ident[..n])?;
    if &ident[..4] != b"\x7fELF" {
        return Err(ElfError::NotElf);
    }
    if n > 4 && ident[4] == 1 {
        return Err(ElfError::Class32);
    }
    if n < 64 {
        return Err(ElfError::Truncated("ELF header"));
    }
    if ident[4] != 2 {
        return Err(ElfError::NotElf);
    }
    if ident[5] != 1 {
        return Err(ElfError::BigEndian);
    }
    let eh = Ehdr::read_from_bytes(&ident).map_err(|_| ElfError::Truncated("ELF header"))?;
    if eh.machine != EM_X86_64 {
        return Err(ElfError::Machine(eh.machine));
    }
    if eh.e_type != ET_EXEC && eh.e_type != ET_DYN {
        return Err(ElfError::Type(eh.e_type));
    }
    if eh.phentsize as usize != core::mem::size_of::<Phdr>() {
        return Err(ElfError::Segment("program header entries are not 56 bytes"));
    }
    let phnum = eh.phnum as usize;
    if phnum == 0 || phnum > MAX_PHDRS {
        return Err(ElfError::Segment("no program headers, or too many"));
    }
    let mut table = alloc::vec![0u8; phnum * 56];
    read(src, eh.phoff, &mut table).map_err(|e| match e {
        ElfError::Truncated(_) => ElfError::Truncated("program headers"),
        other => other,
    })?;
    let phdrs: Vec<Phdr> = table
        .chunks_exact(56)
        .filter_map(|c| Phdr::read_from_bytes(c).ok())
        .collect();

    // A dynamic program names its loader.
    let interp = match phdrs.iter().find(|p| p.p_type == PT_INTERP) {
        Some(p) => {
            let len = p.filesz.min(256) as usize;
            let mut name = alloc::vec![0u8; len];
            read(src, p.offset, &mut name).map_err(|_| ElfError::Truncated("PT_INTERP"))?;
            let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
            name.truncate(end);
            if name.first() != Some(&b'/') {
                return Err(ElfError::Segment("PT_INTERP names no absolute path"));
            }
            Some(name)
        }
        None => None,
    };

    let loads: Vec<&Phdr> = phdrs
        .iter()
        .filter(|p| p.p_type == PT_LOAD && p.memsz > 0)
        .collect();
    if loads.is_empty() {
        return Err(ElfError::NoSegments);
    }
    let lowest = loads
        .iter()
        .map(|p| p.vaddr & !(PAGE - 1))
        .min()
        .unwrap_or(0);
    let bias = if eh.e_type == ET_DYN {
        // Placed at `base`, minus its own lowest address.
        base.wrapping_sub(lowest)
    } else {
        0
    };
    let mut segments = Vec::with_capacity(loads.len());
    for p in &loads {
        if p.filesz > p.memsz {
            return Err(ElfError::Segment(
                "a segment's file size exceeds its memory size",
            ));
        }
        if p.align > 1 && p.vaddr % PAGE != p.offset % PAGE {
            return Err(ElfError::Segment(
                "a segment's address and file offset disagree modulo the page size",
            ));
        }
        let file_end = p
            .offset
            .checked_add(p.filesz)
            .ok_or(ElfError::Segment("a segment's file range overflows"))?;
        if file_end > src.size() {
            return Err(ElfError::Truncated("segments"));
        }
        let vaddr = p
            .vaddr
            .checked_add(bias)
            .ok_or(ElfError::Segment("a segment's address overflows"))?;
        let end = vaddr
            .checked_add(p.memsz)
            .ok_or(ElfError::Segment("a segment's address range overflows"))?;
        if vaddr < PAGE {
            return Err(ElfError::Segment("a segment lies in page 0"));
        }
        if end > user_top {
            return Err(ElfError::TooHigh(end));
        }
        let prot = (if p.flags & PF_R != 0 { PROT_READ } else { 0 })
            | (if p.flags & PF_W != 0 { PROT_WRITE } else { 0 })
            | (if p.flags & PF_X != 0 { PROT_EXEC } else { 0 });
        segments.push(Segment {
            vaddr,
            memsz: p.memsz,
            offset: p.offset,
            filesz: p.filesz,
            prot,
        });
    }
    segments.sort_by_key(|s| s.vaddr);
    for pair in segments.windows(2) {
        // Segments may share a page (text end, data start), not overlap.
        if pair[0].vaddr + pair[0].memsz > pair[1].vaddr {
            return Err(ElfError::Segment("two segments overlap"));
        }
    }
    let entry = eh
        .entry
        .checked_add(bias)
        .ok_or(ElfError::Segment("the entry point overflows"))?;
    if !segments
        .iter()
        .any(|s| s.prot & PROT_EXEC != 0 && entry >= s.vaddr && entry < s.vaddr + s.memsz)
    {
        return Err(ElfError::Segment(
            "the entry point is not inside an executable segment",
        ));
    }
    let phdr = match phdrs.iter().find(|p| p.p_type == PT_PHDR) {
        Some(p) => p.vaddr.wrapping_add(bias),
        None => loads
            .iter()
            .find(|p| eh.phoff >= p.offset && eh.phoff - p.offset < p.filesz)
            .map(|p| p.vaddr.wrapping_add(bias) + (eh.phoff - p.offset))
            .unwrap_or(0),
    };
    let brk = segments.iter().map(|s| s.pages().1).max().unwrap_or(0);
    let exec_stack = phdrs
        .iter()
        .find(|p| p.p_type == PT_GNU_STACK)
        .is_some_and(|p| p.flags & PF_X != 0);
    let tls_size = phdrs
        .iter()
        .find(|p| p.p_type == PT_TLS)
        .map_or(0, |p| p.memsz);
    Ok(Program {
        bias,
        entry,
        phdr,
        phent: 56,
        phnum: phnum as u64,
        segments,
        brk,
        exec_stack,
        tls_size,
        interp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const TOP: u64 = 2 << 40;

    /// A minimal ELF: header, `phdrs`, and zero bytes up to `len`.
    fn elf(e_type: u16, entry: u64, phdrs: &[[u64; 8]], len: usize) -> Vec<u8> {
        let mut f = vec![0u8; len.max(64 + 56 * phdrs.len())];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[6] = 1;
        f[16..18].copy_from_slice(&e_type.to_le_bytes());
        f[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        f[24..32].copy_from_slice(&entry.to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes());
        f[54..56].copy_from_slice(&56u16.to_le_bytes());
        f[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for (i, p) in phdrs.iter().enumerate() {
            let at = 64 + 56 * i;
            f[at..at + 4].copy_from_slice(&(p[0] as u32).to_le_bytes());
            f[at + 4..at + 8].copy_from_slice(&(p[1] as u32).to_le_bytes());
            for (j, v) in p[2..].iter().enumerate() {
                f[at + 8 + 8 * j..at + 16 + 8 * j].copy_from_slice(&v.to_le_bytes());
            }
        }
        f
    }

    /// [type, flags, offset, vaddr, paddr, filesz, memsz, align]
    fn load(flags: u64, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> [u64; 8] {
        [
            PT_LOAD as u64,
            flags,
            offset,
            vaddr,
            vaddr,
            filesz,
            memsz,
            4096,
        ]
    }

    #[test]
    fn a_static_executable_loads_where_it_was_linked() {
        let f = elf(
            ET_EXEC,
            0x401000,
            &[
                load(5, 0, 0x400000, 0x2000, 0x2000),
                load(6, 0x2000, 0x403000, 0x100, 0x5000),
                [PT_GNU_STACK as u64, 6, 0, 0, 0, 0, 0, 16],
            ],
            0x3000,
        );
        let p = parse(&mut f.as_slice(), TOP).unwrap();
        assert_eq!(p.bias, 0);
        assert_eq!(p.entry, 0x401000);
        assert_eq!(p.phdr, 0x400040, "the headers are in the first segment");
        assert_eq!(p.phnum, 3);
        assert_eq!(p.segments[0].prot, PROT_READ | PROT_EXEC);
        assert_eq!(p.segments[1].prot, PROT_READ | PROT_WRITE);
        assert_eq!(p.brk, 0x408000);
        assert!(!p.exec_stack);
    }

    #[test]
    fn a_static_pie_is_placed_two_thirds_up() {
        let f = elf(ET_DYN, 0x1000, &[load(5, 0, 0, 0x2000, 0x2000)], 0x2000);
        let p = parse(&mut f.as_slice(), TOP).unwrap();
        assert_eq!(p.bias, (TOP / 3 * 2) & !0xfff);
        assert_eq!(p.entry, p.bias + 0x1000);
        assert_eq!(p.segments[0].vaddr, p.bias);
    }

    #[test]
    fn a_dynamic_program_names_its_loader() {
        let mut f = elf(
            ET_DYN,
            0x1000,
            &[
                [PT_INTERP as u64, 4, 0x200, 0, 0, 28, 28, 1],
                load(5, 0, 0, 0x2000, 0x2000),
            ],
            0x2000,
        );
        f[0x200..0x200 + 28].copy_from_slice(b"/lib64/ld-linux-x86-64.so.2\0");
        let p = parse(&mut f.as_slice(), TOP).unwrap();
        assert_eq!(
            p.interp.as_deref(),
            Some(&b"/lib64/ld-linux-x86-64.so.2"[..])
        );
        // A loader is placed where execve asks.
        let p = parse_at(&mut f.as_slice(), TOP, 0x5000_0000).unwrap();
        assert_eq!(p.segments[0].vaddr, 0x5000_0000);
        assert_eq!(p.entry, 0x5000_1000);
        // A relative loader name is refused.
        f[0x200] = b'l';
        assert!(parse(&mut f.as_slice(), TOP).is_err());
    }

    #[test]
    fn bad_files_get_sentences() {
        let good = elf(
            ET_EXEC,
            0x401000,
            &[load(5, 0, 0x400000, 0x2000, 0x2000)],
            0x2000,
        );
        assert_eq!(parse(&mut &b"#!/bin/sh\n"[..], TOP), Err(ElfError::NotElf));
        assert_eq!(
            parse(&mut &good[..40], TOP),
            Err(ElfError::Truncated("ELF header"))
        );
        assert_eq!(
            parse(&mut &good[..100], TOP),
            Err(ElfError::Truncated("program headers"))
        );
        let mut c32 = good.clone();
        c32[4] = 1;
        assert_eq!(parse(&mut c32.as_slice(), TOP), Err(ElfError::Class32));
        let mut arm = good.clone();
        arm[18] = 183;
        assert_eq!(parse(&mut arm.as_slice(), TOP), Err(ElfError::Machine(183)));
        let mut obj = good.clone();
        obj[16] = 1;
        assert_eq!(parse(&mut obj.as_slice(), TOP), Err(ElfError::Type(1)));
        // A segment whose bytes lie past the end of the file.
        let short = elf(
            ET_EXEC,
            0x401000,
            &[load(5, 0, 0x400000, 0x9000, 0x9000)],
            0x2000,
        );
        assert_eq!(
            parse(&mut short.as_slice(), TOP),
            Err(ElfError::Truncated("segments"))
        );
        let high = elf(
            ET_EXEC,
            0x401000,
            &[load(5, 0, TOP - 0x1000, 0x2000, 0x2000)],
            0x2000,
        );
        assert!(matches!(
            parse(&mut high.as_slice(), TOP),
            Err(ElfError::TooHigh(_))
        ));
        let entry_outside = elf(
            ET_EXEC,
            0x900000,
            &[load(5, 0, 0x400000, 0x2000, 0x2000)],
            0x2000,
        );
        assert!(matches!(
            parse(&mut entry_outside.as_slice(), TOP),
            Err(ElfError::Segment(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse(&mut bytes.as_slice(), TOP);
        }

        #[test]
        fn mutated_headers_never_panic(at in 0usize..176, byte in proptest::num::u8::ANY) {
            let mut f = elf(ET_EXEC, 0x401000, &[load(5, 0, 0x400000, 0x2000, 0x2000), load(6, 0x1000, 0x402000, 0x800, 0x3000)], 0x2000);
            f[at] = byte;
            let _ = parse(&mut f.as_slice(), TOP);
        }
    }
}
