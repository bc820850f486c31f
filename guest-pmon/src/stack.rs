//! A new program's first stack, laid out as Linux lays it out for x86-64
//! (the System V ABI's process entry): at the stack pointer argc, then the
//! argv pointers and a NULL, the envp pointers and a NULL, the auxiliary
//! vector (type, value pairs ending with AT_NULL); above them the strings
//! and the 16 random bytes they point to. glibc and musl read all of it
//! before `main`: the auxiliary vector gives them the program headers (for
//! thread-local storage), the page size, AT_RANDOM (the stack protector's
//! canary), AT_MINSIGSTKSZ and the hardware capabilities.

use alloc::vec::Vec;

pub const AT_NULL: u64 = 0;
pub const AT_PHDR: u64 = 3;
pub const AT_PHENT: u64 = 4;
pub const AT_PHNUM: u64 = 5;
pub const AT_PAGESZ: u64 = 6;
pub const AT_BASE: u64 = 7;
pub const AT_FLAGS: u64 = 8;
pub const AT_ENTRY: u64 = 9;
pub const AT_UID: u64 = 11;
pub const AT_EUID: u64 = 12;
pub const AT_GID: u64 = 13;
pub const AT_EGID: u64 = 14;
pub const AT_PLATFORM: u64 = 15;
pub const AT_HWCAP: u64 = 16;
pub const AT_CLKTCK: u64 = 17;
pub const AT_SECURE: u64 = 23;
pub const AT_RANDOM: u64 = 25;
pub const AT_HWCAP2: u64 = 26;
pub const AT_EXECFN: u64 = 31;
pub const AT_SYSINFO_EHDR: u64 = 33;
pub const AT_MINSIGSTKSZ: u64 = 51;

/// Linux's MAX_ARG_STRLEN: the longest argument or environment string.
pub const MAX_ARG_STRLEN: usize = 32 * 4096;
/// Linux allows arguments and environment a quarter of the stack limit
/// (8 MiB by default).
pub const MAX_ARGS_BYTES: usize = 2 << 20;

/// What the auxiliary vector says about the program and the machine.
#[derive(Clone, Copy, Debug, Default)]
pub struct Aux {
    pub phdr: u64,
    pub phent: u64,
    pub phnum: u64,
    pub entry: u64,
    /// Where the dynamic loader is (AT_BASE); 0 for a static program.
    pub base: u64,
    /// CPUID.1:EDX, as Linux reports it.
    pub hwcap: u64,
    /// Bit 1: the FSGSBASE instructions are enabled for user space.
    pub hwcap2: u64,
    /// The signal frame's size, so programs size alternate stacks.
    pub minsigstksz: u64,
    /// Where the vDSO's ELF header is (AT_SYSINFO_EHDR); 0: no vDSO.
    pub vdso: u64,
    pub uid: u64,
    pub gid: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackError {
    /// E2BIG: the arguments and environment do not fit.
    TooBig,
}

/// Where a process's argument and environment strings lie: Linux's
/// `arg_start`, `arg_end` (which is `env_start`) and `env_end`, which
/// /proc/PID/cmdline reads (a program may write its own title there).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArgArea {
    pub start: u64,
    pub end: u64,
    pub env_end: u64,
}

/// The stack's bytes and where the stack pointer starts.
pub struct Built {
    /// The bytes of [sp, top).
    pub image: Vec<u8>,
    pub sp: u64,
    /// The auxiliary vector's words, AT_NULL's included, as
    /// /proc/PID/auxv gives them.
    pub auxv: Vec<u8>,
    pub args: ArgArea,
}

/// Lays out the stack whose highest byte is just below `top`.
pub fn build(
    top: u64,
    argv: &[&[u8]],
    envp: &[&[u8]],
    execfn: &[u8],
    random: [u8; 16],
    aux: &Aux,
) -> Result<Built, StackError> {
    let strings: usize = argv.iter().chain(envp).map(|s| s.len() + 1).sum::<usize>();
    if strings > MAX_ARGS_BYTES || argv.iter().chain(envp).any(|s| s.len() >= MAX_ARG_STRLEN) {
        return Err(StackError::TooBig);
    }
    // The strings area, built upward in `blob` and placed below `top - 8`
    // (Linux leaves the top word zero).
    let mut blob: Vec<u8> = Vec::new();
    let mut put = |bytes: &[u8]| -> usize {
        let at = blob.len();
        blob.extend_from_slice(bytes);
        blob.push(0);
        at
    };
    let arg_at: Vec<usize> = argv.iter().map(|s| put(s)).collect();
    let env_at: Vec<usize> = envp.iter().map(|s| put(s)).collect();
    let execfn_at = put(execfn);
    let platform_at = put(b"x86_64");
    let random_at = blob.len();
    blob.extend_from_slice(&random);
    let strings_base = (top - 8 - blob.len() as u64) & !15;
    let addr = |off: usize| strings_base + off as u64;

    let mut auxv: Vec<(u64, u64)> = alloc::vec![
        (AT_HWCAP, aux.hwcap),
        (AT_PAGESZ, 4096),
        (AT_CLKTCK, 100),
        (AT_PHDR, aux.phdr),
        (AT_PHENT, aux.phent),
        (AT_PHNUM, aux.phnum),
        (AT_BASE, aux.base),
        (AT_FLAGS, 0),
        (AT_ENTRY, aux.entry),
        (AT_UID, aux.uid),
        (AT_EUID, aux.uid),
        (AT_GID, aux.gid),
        (AT_EGID, aux.gid),
        (AT_SECURE, 0),
        (AT_RANDOM, addr(random_at)),
        (AT_HWCAP2, aux.hwcap2),
        (AT_EXECFN, addr(execfn_at)),
        (AT_PLATFORM, addr(platform_at)),
        (AT_MINSIGSTKSZ, aux.minsigstksz),
    ];
    if aux.vdso != 0 {
        auxv.push((AT_SYSINFO_EHDR, aux.vdso));
    }
    let auxv_bytes: Vec<u8> = auxv
        .iter()
        .flat_map(|&(k, v)| [k, v])
        .chain([AT_NULL, 0])
        .flat_map(u64::to_le_bytes)
        .collect();
    let mut words: Vec<u64> = Vec::new();
    words.push(argv.len() as u64);
    words.extend(arg_at.iter().map(|&o| addr(o)));
    words.push(0);
    words.extend(env_at.iter().map(|&o| addr(o)));
    words.push(0);
    for (k, v) in auxv {
        words.push(k);
        words.push(v);
    }
    words.push(AT_NULL);
    words.push(0);
    // The ABI wants rsp 16-byte aligned at entry, with argc at [rsp].
    let sp = (strings_base - 8 * words.len() as u64) & !15;
    let mut image = alloc::vec![0u8; (top - sp) as usize];
    for (i, w) in words.iter().enumerate() {
        image[8 * i..8 * i + 8].copy_from_slice(&w.to_le_bytes());
    }
    let at = (strings_base - sp) as usize;
    image[at..at + blob.len()].copy_from_slice(&blob);
    Ok(Built {
        image,
        sp,
        auxv: auxv_bytes,
        args: ArgArea {
            start: addr(0),
            end: addr(env_at.first().copied().unwrap_or(execfn_at)),
            env_end: addr(execfn_at),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(b: &Built, addr: u64) -> u64 {
        let o = (addr - b.sp) as usize;
        u64::from_le_bytes(b.image[o..o + 8].try_into().unwrap())
    }

    fn cstr(b: &Built, addr: u64) -> Vec<u8> {
        let o = (addr - b.sp) as usize;
        let end = b.image[o..].iter().position(|&c| c == 0).unwrap();
        b.image[o..o + end].to_vec()
    }

    #[test]
    fn the_layout_is_what_libc_reads() {
        let top = 0x7fff_0000_0000;
        let aux = Aux {
            phdr: 0x400040,
            phent: 56,
            phnum: 9,
            entry: 0x401000,
            base: 0,
            hwcap: 0x178bfbff,
            minsigstksz: 3456,
            vdso: 0x7ffe_0000_1000,
            ..Default::default()
        };
        let b = build(
            top,
            &[b"./prog", b"arg 2"],
            &[b"PATH=/bin", b"HOME=/"],
            b"./prog",
            [7; 16],
            &aux,
        )
        .unwrap();
        assert_eq!(b.sp % 16, 0);
        assert_eq!(b.sp + b.image.len() as u64, top);
        assert_eq!(word(&b, b.sp), 2);
        assert_eq!(cstr(&b, word(&b, b.sp + 8)), b"./prog");
        assert_eq!(cstr(&b, word(&b, b.sp + 16)), b"arg 2");
        assert_eq!(word(&b, b.sp + 24), 0);
        assert_eq!(cstr(&b, word(&b, b.sp + 32)), b"PATH=/bin");
        assert_eq!(cstr(&b, word(&b, b.sp + 40)), b"HOME=/");
        // /proc/PID/cmdline's area: the argument strings, then the
        // environment's up to the end of the last.
        assert_eq!(b.args.start, word(&b, b.sp + 8));
        assert_eq!(b.args.end, word(&b, b.sp + 32));
        assert_eq!(b.args.env_end, word(&b, b.sp + 40) + 7);
        assert_eq!(word(&b, b.sp + 48), 0);
        // The auxiliary vector: find entries by type.
        let mut at = b.sp + 56;
        let mut seen = std::collections::HashMap::new();
        loop {
            let (k, v) = (word(&b, at), word(&b, at + 8));
            if k == AT_NULL {
                break;
            }
            seen.insert(k, v);
            at += 16;
        }
        assert_eq!(seen[&AT_PHDR], 0x400040);
        assert_eq!(seen[&AT_PAGESZ], 4096);
        assert_eq!(seen[&AT_ENTRY], 0x401000);
        assert_eq!(seen[&AT_MINSIGSTKSZ], 3456);
        assert_eq!(seen[&AT_SYSINFO_EHDR], 0x7ffe_0000_1000);
        let random = seen[&AT_RANDOM];
        let o = (random - b.sp) as usize;
        assert_eq!(&b.image[o..o + 16], &[7; 16]);
        assert_eq!(cstr(&b, seen[&AT_EXECFN]), b"./prog");
        assert_eq!(cstr(&b, seen[&AT_PLATFORM]), b"x86_64");
    }

    #[test]
    fn too_much_is_e2big() {
        let big = alloc::vec![b'x'; MAX_ARG_STRLEN];
        assert!(matches!(
            build(1 << 40, &[&big], &[], b"p", [0; 16], &Aux::default()),
            Err(StackError::TooBig)
        ));
    }
}
