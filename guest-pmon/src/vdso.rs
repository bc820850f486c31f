//! The vDSO: a page of code every process gets (AT_SYSINFO_EHDR) so that
//! clock_gettime, gettimeofday and time run in user mode, with no system
//! call. Under PVM a system call costs four exits to KVM (about 36 us);
//! reading the TSC costs nothing. glibc (static too), musl and Go look
//! the functions up in it by the ELF dynamic symbol table, as on Linux.
//!
//! The object is one page: an ELF shared object's headers, dynamic
//! section, SysV hash table, symbol versions (LINUX_2.6, which Go and
//! musl check) and symbols, with the code at [`CODE_OFFSET`]. The page
//! before it ([`Clock::vvar`]) holds what the code reads: the TSC at boot
//! and at the wall-clock reading, the TSC-to-ns multiplier and the wall
//! clock then. The monitor computes time with the same [`Clock`], so a
//! time read in user mode and one from a system call agree to the ns.

use alloc::vec::Vec;

pub const PAGE: usize = 4096;
/// Where the code starts in the object's page.
pub const CODE_OFFSET: usize = 0x400;

/// Byte offsets in the data page, as the code reads them.
pub const VVAR_BOOT_TSC: usize = 0;
pub const VVAR_REALTIME_TSC: usize = 8;
pub const VVAR_MULT: usize = 16;
pub const VVAR_REALTIME_NS: usize = 24;

/// The clocks, from the TSC: ns = (ticks * mult) >> 32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    pub boot_tsc: u64,
    pub realtime_tsc: u64,
    pub mult: u64,
    /// The wall clock (ns since 1970) when the TSC read `realtime_tsc`.
    pub realtime_ns: u64,
}

impl Clock {
    pub fn new(tsc_khz: u64, boot_tsc: u64, realtime_tsc: u64, realtime_ns: u64) -> Clock {
        Clock {
            boot_tsc,
            realtime_tsc,
            mult: ((1_000_000u128 << 32) / tsc_khz.max(1) as u128) as u64,
            realtime_ns,
        }
    }

    fn ns(&self, ticks: u64) -> u64 {
        ((ticks as u128 * self.mult as u128) >> 32) as u64
    }

    /// ns since boot at TSC `tsc`.
    pub fn monotonic(&self, tsc: u64) -> u64 {
        self.ns(tsc.wrapping_sub(self.boot_tsc))
    }

    /// ns since 1970 at TSC `tsc`.
    pub fn realtime(&self, tsc: u64) -> u64 {
        self.realtime_ns
            .wrapping_add(self.ns(tsc.wrapping_sub(self.realtime_tsc)))
    }

    /// The data page's first bytes.
    pub fn vvar(&self) -> [u8; 32] {
        let mut v = [0u8; 32];
        v[VVAR_BOOT_TSC..][..8].copy_from_slice(&self.boot_tsc.to_le_bytes());
        v[VVAR_REALTIME_TSC..][..8].copy_from_slice(&self.realtime_tsc.to_le_bytes());
        v[VVAR_MULT..][..8].copy_from_slice(&self.mult.to_le_bytes());
        v[VVAR_REALTIME_NS..][..8].copy_from_slice(&self.realtime_ns.to_le_bytes());
        v
    }
}

/// The SysV ELF hash of a name (DT_HASH, and the verdef's vd_hash).
pub fn elf_hash(name: &[u8]) -> u32 {
    let mut h: u32 = 0;
    for &c in name {
        h = (h << 4).wrapping_add(c as u32);
        let g = h & 0xf000_0000;
        if g != 0 {
            h ^= g >> 24;
        }
        h &= !g;
    }
    h
}

const SONAME: &[u8] = b"linux-vdso.so.1";
const VERSION: &[u8] = b"LINUX_2.6";

/// Why an object cannot be built.
#[derive(Debug, PartialEq, Eq)]
pub enum VdsoError {
    /// The code does not fit in the page after the headers.
    CodeTooBig(usize),
    /// A symbol's offset is outside the code.
    BadSymbol,
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// The object's page: `code` at [`CODE_OFFSET`], and each symbol (name,
/// offset in `code`) exported as a global function of version LINUX_2.6.
pub fn image(code: &[u8], symbols: &[(&[u8], usize)]) -> Result<Vec<u8>, VdsoError> {
    // Section headers (and their names) end the page, as in Linux's vDSO:
    // dietlibc finds the symbols through them (.dynstr and .dynsym), not
    // through the dynamic section.
    let shoff = PAGE - SECTIONS.len() * 64;
    let shstrtab = shoff - SECTIONS.iter().map(|s| s.0.len() + 1).sum::<usize>() - 1;
    if CODE_OFFSET + code.len() > shstrtab {
        return Err(VdsoError::CodeTooBig(code.len()));
    }
    if symbols.iter().any(|&(_, off)| off >= code.len()) {
        return Err(VdsoError::BadSymbol);
    }
    let mut p = alloc::vec![0u8; PAGE];
    let nsym = symbols.len() + 1;
    // Layout, after the ELF header (64) and two program headers (2 x 56).
    let dynamic = 0xc0;
    let dyn_entries = 10;
    let hash = dynamic + dyn_entries * 16;
    let versym = hash + (3 + nsym) * 4;
    let verdef = (versym + nsym * 2).next_multiple_of(8);
    let symtab = (verdef + 2 * 28).next_multiple_of(8);
    let strtab = symtab + nsym * 24;
    // The string table: NUL, the soname, the version, the names.
    let mut strings = alloc::vec![0u8];
    let mut add = |s: &[u8]| {
        let at = strings.len();
        strings.extend_from_slice(s);
        strings.push(0);
        at as u32
    };
    let soname = add(SONAME);
    let version = add(VERSION);
    let names: Vec<u32> = symbols.iter().map(|(n, _)| add(n)).collect();
    if strtab + strings.len() > CODE_OFFSET {
        return Err(VdsoError::CodeTooBig(code.len()));
    }

    // ELF header.
    p[..4].copy_from_slice(b"\x7fELF");
    p[4] = 2; // 64-bit
    p[5] = 1; // little-endian
    p[6] = 1; // version
    put16(&mut p, 16, 3); // ET_DYN
    put16(&mut p, 18, 62); // x86-64
    put32(&mut p, 20, 1);
    put64(&mut p, 32, 64); // e_phoff
    put16(&mut p, 52, 64); // e_ehsize
    put16(&mut p, 54, 56); // e_phentsize
    put16(&mut p, 56, 2); // e_phnum
    put16(&mut p, 58, 64); // e_shentsize
                           // PT_LOAD: the whole page, read and execute.
    let ph = 64;
    put32(&mut p, ph, 1);
    put32(&mut p, ph + 4, 5);
    put64(&mut p, ph + 32, PAGE as u64);
    put64(&mut p, ph + 40, PAGE as u64);
    put64(&mut p, ph + 48, PAGE as u64);
    // PT_DYNAMIC.
    let ph = 64 + 56;
    put32(&mut p, ph, 2);
    put32(&mut p, ph + 4, 4);
    for at in [ph + 8, ph + 16, ph + 24] {
        put64(&mut p, at, dynamic as u64);
    }
    put64(&mut p, ph + 32, (dyn_entries * 16) as u64);
    put64(&mut p, ph + 40, (dyn_entries * 16) as u64);
    put64(&mut p, ph + 48, 8);
    // The dynamic section.
    let entries: [(u64, u64); 10] = [
        (4, hash as u64),             // DT_HASH
        (5, strtab as u64),           // DT_STRTAB
        (6, symtab as u64),           // DT_SYMTAB
        (10, strings.len() as u64),   // DT_STRSZ
        (11, 24),                     // DT_SYMENT
        (14, soname as u64),          // DT_SONAME
        (0x6fff_fff0, versym as u64), // DT_VERSYM
        (0x6fff_fffc, verdef as u64), // DT_VERDEF
        (0x6fff_fffd, 2),             // DT_VERDEFNUM
        (0, 0),                       // DT_NULL
    ];
    for (i, (tag, v)) in entries.iter().enumerate() {
        put64(&mut p, dynamic + i * 16, *tag);
        put64(&mut p, dynamic + i * 16 + 8, *v);
    }
    // One hash bucket chaining every symbol: lookups walk them all.
    put32(&mut p, hash, 1);
    put32(&mut p, hash + 4, nsym as u32);
    put32(&mut p, hash + 8, if nsym > 1 { 1 } else { 0 });
    for i in 1..nsym {
        let next = if i + 1 < nsym { i + 1 } else { 0 };
        put32(&mut p, hash + 12 + i * 4, next as u32);
    }
    // Versions: the null symbol is local (0), the rest LINUX_2.6 (2).
    for i in 1..nsym {
        put16(&mut p, versym + i * 2, 2);
    }
    // Two version definitions: the base (the soname) and LINUX_2.6.
    for (i, (flags, name, h)) in [
        (1u16, soname, elf_hash(SONAME)),
        (0u16, version, elf_hash(VERSION)),
    ]
    .into_iter()
    .enumerate()
    {
        let d = verdef + i * 28;
        put16(&mut p, d, 1); // vd_version
        put16(&mut p, d + 2, flags);
        put16(&mut p, d + 4, i as u16 + 1); // vd_ndx
        put16(&mut p, d + 6, 1); // vd_cnt
        put32(&mut p, d + 8, h);
        put32(&mut p, d + 12, 20); // vd_aux
        put32(&mut p, d + 16, if i == 0 { 28 } else { 0 }); // vd_next
        put32(&mut p, d + 20, name); // vda_name
    }
    // Symbols: global functions in section 1, .text.
    for (i, (&(_, off), &name)) in symbols.iter().zip(&names).enumerate() {
        let s = symtab + (i + 1) * 24;
        put32(&mut p, s, name);
        p[s + 4] = 0x12; // STB_GLOBAL, STT_FUNC
        put16(&mut p, s + 6, 1);
        put64(&mut p, s + 8, (CODE_OFFSET + off) as u64);
    }
    p[strtab..strtab + strings.len()].copy_from_slice(&strings);
    p[CODE_OFFSET..CODE_OFFSET + code.len()].copy_from_slice(code);

    // Section headers: where each table above is, by kind.
    put64(&mut p, 40, shoff as u64); // e_shoff
    put16(&mut p, 60, SECTIONS.len() as u16); // e_shnum
    put16(&mut p, 62, (SECTIONS.len() - 1) as u16); // e_shstrndx: the last
    let mut name = shstrtab + 1;
    for (i, &(sname, kind)) in SECTIONS.iter().enumerate().skip(1) {
        p[name..name + sname.len()].copy_from_slice(sname);
        // (type, flags, offset = address, size, link, info, entry size)
        let (ty, flags, at, size, link, info, entsize) = match kind {
            Section::Null => continue,
            Section::Text => (1u32, 6u64, CODE_OFFSET, code.len(), 0u32, 0u32, 0u64),
            Section::DynSym => (11, 2, symtab, nsym * 24, 3, 1, 24),
            Section::DynStr => (3, 2, strtab, strings.len(), 0, 0, 0),
            Section::Hash => (5, 2, hash, (3 + nsym) * 4, 2, 0, 4),
            Section::VerSym => (0x6fff_ffff, 2, versym, nsym * 2, 2, 0, 2),
            Section::VerDef => (0x6fff_fffd, 2, verdef, 2 * 28, 3, 2, 0),
            Section::Dynamic => (6, 2, dynamic, dyn_entries * 16, 3, 0, 16),
            Section::ShStrTab => (3, 0, shstrtab, shoff - shstrtab, 0, 0, 0),
        };
        let sh = shoff + i * 64;
        put32(&mut p, sh, (name - shstrtab) as u32);
        put32(&mut p, sh + 4, ty);
        put64(&mut p, sh + 8, flags);
        // Loaded sections sit at their offset (the object is linked at 0).
        put64(&mut p, sh + 16, if flags & 2 != 0 { at as u64 } else { 0 });
        put64(&mut p, sh + 24, at as u64);
        put64(&mut p, sh + 32, size as u64);
        put32(&mut p, sh + 40, link);
        put32(&mut p, sh + 44, info);
        put64(&mut p, sh + 48, if kind == Section::Text { 16 } else { 8 });
        put64(&mut p, sh + 56, entsize);
        name += sname.len() + 1;
    }
    Ok(p)
}

/// The object's sections, in their header order (symbols name `.text` as
/// section 1; `.dynsym` links `.dynstr` as 3, the tables after it
/// `.dynsym` as 2).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Null,
    Text,
    DynSym,
    DynStr,
    Hash,
    VerSym,
    VerDef,
    Dynamic,
    ShStrTab,
}

const SECTIONS: [(&[u8], Section); 9] = [
    (b"", Section::Null),
    (b".text", Section::Text),
    (b".dynsym", Section::DynSym),
    (b".dynstr", Section::DynStr),
    (b".hash", Section::Hash),
    (b".gnu.version", Section::VerSym),
    (b".gnu.version_d", Section::VerDef),
    (b".dynamic", Section::Dynamic),
    (b".shstrtab", Section::ShStrTab),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
    }
    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }
    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }
    fn cstr(b: &[u8], at: usize) -> &[u8] {
        let end = b[at..].iter().position(|&c| c == 0).unwrap();
        &b[at..at + end]
    }

    /// Looks a symbol up the way musl's __vdsosym and Go's runtime do:
    /// program headers, the dynamic section, DT_HASH, then the version.
    fn lookup(image: &[u8], name: &[u8], version: &[u8]) -> Option<u64> {
        let phoff = u64_at(image, 32) as usize;
        let mut dynamic = None;
        for i in 0..u16_at(image, 56) as usize {
            let ph = phoff + i * 56;
            if u32_at(image, ph) == 2 {
                dynamic = Some(u64_at(image, ph + 8) as usize);
            }
        }
        let mut at = dynamic?;
        let (mut strtab, mut symtab, mut hash, mut versym, mut verdef) = (0, 0, 0, 0, 0);
        loop {
            let (tag, v) = (u64_at(image, at), u64_at(image, at + 8) as usize);
            match tag {
                0 => break,
                4 => hash = v,
                5 => strtab = v,
                6 => symtab = v,
                0x6fff_fff0 => versym = v,
                0x6fff_fffc => verdef = v,
                _ => {}
            }
            at += 16;
        }
        // The version's index, as Go's vdsoFindVersion finds it.
        let mut def = verdef;
        let index = loop {
            let aux = def + u32_at(image, def + 12) as usize;
            if u16_at(image, def + 2) & 1 == 0
                && u32_at(image, def + 8) == elf_hash(version)
                && cstr(image, strtab + u32_at(image, aux) as usize) == version
            {
                break u16_at(image, def + 4);
            }
            let next = u32_at(image, def + 16) as usize;
            if next == 0 {
                return None;
            }
            def += next;
        };
        let nbucket = u32_at(image, hash) as usize;
        let mut i = u32_at(image, hash + 8 + (elf_hash(name) as usize % nbucket) * 4) as usize;
        let chain = hash + 8 + nbucket * 4;
        while i != 0 {
            let s = symtab + i * 24;
            if cstr(image, strtab + u32_at(image, s) as usize) == name
                && image[s + 4] == 0x12
                && u16_at(image, s + 6) != 0
                && u16_at(image, versym + i * 2) & 0x7fff == index
            {
                return Some(u64_at(image, s + 8));
            }
            i = u32_at(image, chain + i * 4) as usize;
        }
        None
    }

    #[test]
    fn symbols_are_found_as_libcs_and_go_find_them() {
        let code = [0xc3u8; 64];
        let image = image(
            &code,
            &[
                (b"__vdso_clock_gettime", 0),
                (b"__vdso_gettimeofday", 16),
                (b"__vdso_time", 32),
            ],
        )
        .unwrap();
        assert_eq!(image.len(), PAGE);
        assert_eq!(&image[..4], b"\x7fELF");
        assert_eq!(u16_at(&image, 16), 3, "a shared object");
        assert_eq!(lookup(&image, b"__vdso_time", b"LINUX_2.6"), Some(0x420));
        assert_eq!(
            lookup(&image, b"__vdso_clock_gettime", b"LINUX_2.6"),
            Some(0x400)
        );
        assert_eq!(lookup(&image, b"__vdso_getcpu", b"LINUX_2.6"), None);
        assert_eq!(lookup(&image, b"__vdso_time", b"LINUX_2.5"), None);
        assert_eq!(&image[CODE_OFFSET..CODE_OFFSET + 64], &code);
    }

    /// Looks a symbol up the way dietlibc does: the first loaded string
    /// table and every .dynsym found by the section headers, the address
    /// from the symbol's section.
    fn lookup_by_sections(image: &[u8], name: &[u8]) -> Option<u64> {
        let shoff = u64_at(image, 40) as usize;
        let shent = u16_at(image, 58) as usize;
        let sh = |i: usize| shoff + i * shent;
        let count = u16_at(image, 60) as usize;
        let strtab = (0..count)
            .map(sh)
            .find(|&h| u32_at(image, h + 4) == 3 && u64_at(image, h + 8) & 2 != 0)?;
        let strtab = u64_at(image, strtab + 24) as usize;
        for h in (0..count).map(sh).filter(|&h| u32_at(image, h + 4) == 11) {
            let (at, size, ent) = (
                u64_at(image, h + 24) as usize,
                u64_at(image, h + 32) as usize,
                u64_at(image, h + 56) as usize,
            );
            for s in (at..at + size).step_by(ent) {
                if cstr(image, strtab + u32_at(image, s) as usize) == name {
                    let sec = sh(u16_at(image, s + 6) as usize);
                    return Some(
                        u64_at(image, sec + 24) + u64_at(image, s + 8) - u64_at(image, sec + 16),
                    );
                }
            }
        }
        None
    }

    #[test]
    fn symbols_are_found_through_the_section_headers_as_dietlibc_finds_them() {
        let code = [0xc3u8; 64];
        let image = image(&code, &[(b"__vdso_gettimeofday", 16), (b"time", 32)]).unwrap();
        assert_eq!(
            lookup_by_sections(&image, b"__vdso_gettimeofday"),
            Some(0x410)
        );
        assert_eq!(lookup_by_sections(&image, b"time"), Some(0x420));
        assert_eq!(lookup_by_sections(&image, b"getcpu"), None);
        // The section names are where e_shstrndx says.
        let shoff = u64_at(&image, 40) as usize;
        let names = shoff + u16_at(&image, 62) as usize * 64;
        let names = u64_at(&image, names + 24) as usize;
        let text = u32_at(&image, shoff + 64) as usize;
        assert_eq!(cstr(&image, names + text), b".text");
    }

    #[test]
    fn bad_code_is_refused() {
        assert_eq!(image(&[0; 4000], &[]), Err(VdsoError::CodeTooBig(4000)));
        assert_eq!(image(&[0; 8], &[(b"f", 8)]), Err(VdsoError::BadSymbol));
    }

    #[test]
    fn the_version_hash_is_the_one_go_expects() {
        assert_eq!(elf_hash(b"LINUX_2.6"), 0x3ae75f6);
    }

    #[test]
    fn clocks_follow_the_tsc() {
        // 2.1 GHz: 2100 ticks a microsecond.
        let c = Clock::new(2_100_000, 1000, 500, 1_700_000_000_000_000_000);
        assert_eq!(c.monotonic(1000), 0);
        let second = c.monotonic(1000 + 2_100_000_000);
        assert!((999_999_990..=1_000_000_000).contains(&second), "{second}");
        assert_eq!(c.realtime(500), 1_700_000_000_000_000_000);
        let v = c.vvar();
        assert_eq!(u64_at(&v, VVAR_MULT), c.mult);
        assert_eq!(u64_at(&v, VVAR_REALTIME_NS), c.realtime_ns);
    }
}
