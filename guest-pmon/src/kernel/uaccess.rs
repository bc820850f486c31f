//! Reading and writing a process's memory from the monitor. A pointer a
//! process passes may be anything: above its address space (the monitor's
//! own memory lies there in the kernel view), unmapped, or refused by its
//! memory component. Ranges outside the process's half are refused before
//! any access; an access the memory component refuses arrives as a page
//! fault (injected by the VMM) at one of the copy instructions below, and
//! the fault handler resumes at the copy's fixup, which returns EFAULT.

use alloc::vec::Vec;

use super::Errno;
use super::EFAULT;

core::arch::global_asm!(
    ".section .text.lego_uaccess, \"ax\"",
    // fn lego_copy_user(dst, src, n) -> 0 or -EFAULT
    // As the image's memcpy (`lego_image::mem::short_distance`): 256 bytes
    // or more to a destination less than 64 bytes ahead of the source
    // modulo 4 KiB go as quadwords, where `rep movsb` is 14 times slower.
    ".global lego_copy_user, lego_copy_user_insn, lego_copy_user_fixup",
    ".global lego_copy_user_insn_q",
    "lego_copy_user:",
    "mov rcx, rdx",
    "mov rax, rdi",
    "sub rax, rsi",
    "test eax, 0xfc0",
    "jnz 2f",
    "cmp rdx, 256",
    "jb 2f",
    "shr rcx, 3",
    "lego_copy_user_insn_q:",
    "rep movsq",
    "mov rcx, rdx",
    "and rcx, 7",
    "2:",
    "lego_copy_user_insn:",
    "rep movsb",
    "xor eax, eax",
    "lego_copy_user_fixup:",
    "ret",
    // fn lego_zero_user(dst, n) -> 0 or -EFAULT
    ".global lego_zero_user, lego_zero_user_insn, lego_zero_user_fixup",
    "lego_zero_user:",
    "mov rcx, rsi",
    "xor eax, eax",
    "lego_zero_user_insn:",
    "rep stosb",
    "lego_zero_user_fixup:",
    "ret",
    // fn lego_cmpxchg_user(word, old, new, seen) -> 0 or -EFAULT; *seen
    // is what the word held (old when it was swapped)
    ".global lego_cmpxchg_user, lego_cmpxchg_user_insn, lego_cmpxchg_user_fixup",
    "lego_cmpxchg_user:",
    "mov eax, esi",
    "lego_cmpxchg_user_insn:",
    "lock cmpxchg dword ptr [rdi], edx",
    "mov dword ptr [rcx], eax",
    "xor eax, eax",
    "lego_cmpxchg_user_fixup:",
    "ret",
    ".text",
);

extern "C" {
    fn lego_copy_user(dst: *mut u8, src: *const u8, n: usize) -> i64;
    fn lego_zero_user(dst: *mut u8, n: usize) -> i64;
    fn lego_cmpxchg_user(word: *mut u32, old: u32, new: u32, seen: *mut u32) -> i64;
    static lego_copy_user_insn: u8;
    static lego_copy_user_insn_q: u8;
    static lego_copy_user_fixup: u8;
    static lego_zero_user_insn: u8;
    static lego_zero_user_fixup: u8;
    static lego_cmpxchg_user_insn: u8;
    static lego_cmpxchg_user_fixup: u8;
}

/// Where to resume after a fault at `rip` in monitor code, if it is one
/// of the user copies.
pub fn fixup(rip: u64) -> Option<u64> {
    fixups()
        .iter()
        .find(|(at, _)| *at == rip)
        .map(|(_, to)| *to)
}

/// Tells the VMM where the copies make their access, so that it gives
/// monitor code a refused access's page fault there and nowhere else (see
/// `lego_proto::process::UserAccess`).
pub fn publish() {
    let mut arg = lego_proto::process::UserAccess::default();
    for (slot, (at, _)) in arg.rips.iter_mut().zip(fixups()) {
        *slot = at;
        arg.count += 1;
    }
    lego_image::hypercall::out(
        lego_proto::hypercall::PORT_USER_ACCESS,
        lego_image::cpu::phys_of(&arg) as u32,
    );
}

/// (access instruction, fixup) of each user copy.
fn fixups() -> [(u64, u64); 4] {
    // SAFETY: addresses of linker-provided labels.
    unsafe {
        [
            (
                &lego_copy_user_insn as *const u8 as u64,
                &lego_copy_user_fixup as *const u8 as u64,
            ),
            (
                &lego_copy_user_insn_q as *const u8 as u64,
                &lego_copy_user_fixup as *const u8 as u64,
            ),
            (
                &lego_zero_user_insn as *const u8 as u64,
                &lego_zero_user_fixup as *const u8 as u64,
            ),
            (
                &lego_cmpxchg_user_insn as *const u8 as u64,
                &lego_cmpxchg_user_fixup as *const u8 as u64,
            ),
        ]
    }
}

/// A range of the current process's memory the monitor may touch: inside
/// its half, with its vRegions mapped in its page tables.
pub trait UserSpace {
    /// One past the highest address the process has.
    fn top(&self) -> u64;
    /// Makes sure [addr, addr + len) has page tables (vRegion by vRegion)
    /// that let the monitor read it, or write it if `write`: EFAULT for a
    /// page they refuse. A copy must never fault on the monitor's own page
    /// tables: PVM delivers such a fault in monitor code as if the process
    /// had taken it, through an event entry the monitor never set (measured:
    /// the monitor then runs at RIP 2 and stops). Refusals by a memory
    /// component come from the VMM instead, which injects them properly.
    fn prepare(&mut self, addr: u64, len: u64, write: bool) -> Result<(), Errno>;
}

fn check(space: &mut dyn UserSpace, addr: u64, len: usize, write: bool) -> Result<(), Errno> {
    if len == 0 {
        return Ok(());
    }
    let end = addr.checked_add(len as u64).ok_or(EFAULT)?;
    if addr < 4096 || end > space.top() {
        return Err(EFAULT);
    }
    space.prepare(addr, len as u64, write)
}

/// Copies `out.len()` bytes from the process at `addr`.
pub fn read(space: &mut dyn UserSpace, addr: u64, out: &mut [u8]) -> Result<(), Errno> {
    check(space, addr, out.len(), false)?;
    // SAFETY: the range lies in the process's half, mapped in the kernel
    // view; a refused page faults into the fixup.
    match unsafe { lego_copy_user(out.as_mut_ptr(), addr as *const u8, out.len()) } {
        0 => Ok(()),
        _ => Err(EFAULT),
    }
}

/// Copies `data` to the process at `addr`.
pub fn write(space: &mut dyn UserSpace, addr: u64, data: &[u8]) -> Result<(), Errno> {
    check(space, addr, data.len(), true)?;
    // SAFETY: as in `read`.
    match unsafe { lego_copy_user(addr as *mut u8, data.as_ptr(), data.len()) } {
        0 => Ok(()),
        _ => Err(EFAULT),
    }
}

pub fn zero(space: &mut dyn UserSpace, addr: u64, len: usize) -> Result<(), Errno> {
    check(space, addr, len, true)?;
    // SAFETY: as in `read`.
    match unsafe { lego_zero_user(addr as *mut u8, len) } {
        0 => Ok(()),
        _ => Err(EFAULT),
    }
}

pub fn read_vec(space: &mut dyn UserSpace, addr: u64, len: usize) -> Result<Vec<u8>, Errno> {
    let mut v = alloc::vec![0u8; len];
    read(space, addr, &mut v)?;
    Ok(v)
}

/// `N` consecutive u64s (a timespec pair, an itimerval).
pub fn read_u64s<const N: usize>(space: &mut dyn UserSpace, addr: u64) -> Result<[u64; N], Errno> {
    let mut out = [0u64; N];
    for (i, v) in out.iter_mut().enumerate() {
        *v = read_u64(space, addr.checked_add(8 * i as u64).ok_or(EFAULT)?)?;
    }
    Ok(out)
}

pub fn read_u64(space: &mut dyn UserSpace, addr: u64) -> Result<u64, Errno> {
    let mut b = [0u8; 8];
    read(space, addr, &mut b)?;
    Ok(u64::from_le_bytes(b))
}

pub fn read_u32(space: &mut dyn UserSpace, addr: u64) -> Result<u32, Errno> {
    let mut b = [0u8; 4];
    read(space, addr, &mut b)?;
    Ok(u32::from_le_bytes(b))
}

/// Changes the aligned word at `addr` from `old` to `new` atomically, as
/// a thread of the process on another vCPU could change it meanwhile
/// (futex words); what it held: `old` when it was changed.
pub fn cmpxchg_u32(space: &mut dyn UserSpace, addr: u64, old: u32, new: u32) -> Result<u32, Errno> {
    if addr % 4 != 0 {
        return Err(EFAULT);
    }
    check(space, addr, 4, true)?;
    let mut seen = 0u32;
    // SAFETY: an aligned word in the process's half; a refused page
    // faults into the fixup.
    match unsafe { lego_cmpxchg_user(addr as *mut u32, old, new, &mut seen) } {
        0 => Ok(seen),
        _ => Err(EFAULT),
    }
}

pub fn write_u64(space: &mut dyn UserSpace, addr: u64, v: u64) -> Result<(), Errno> {
    write(space, addr, &v.to_le_bytes())
}

pub fn write_u32(space: &mut dyn UserSpace, addr: u64, v: u32) -> Result<(), Errno> {
    write(space, addr, &v.to_le_bytes())
}

/// A NUL-terminated string of at most `max` bytes (without the NUL):
/// ENAMETOOLONG-style callers map `None` length overflow themselves.
pub fn read_cstr(space: &mut dyn UserSpace, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
    let mut out = Vec::new();
    let mut at = addr;
    loop {
        // Up to the end of the page, so no byte past the string's page is
        // touched.
        let chunk = (4096 - (at % 4096)) as usize;
        let mut buf = alloc::vec![0u8; chunk];
        read(space, at, &mut buf)?;
        if let Some(end) = buf.iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..end]);
            return if out.len() > max {
                Err(super::ENAMETOOLONG)
            } else {
                Ok(out)
            };
        }
        out.extend_from_slice(&buf);
        if out.len() > max {
            return Err(super::ENAMETOOLONG);
        }
        at += chunk as u64;
    }
}

/// At most `max` bytes of the string at `addr` (the rest cut, as Linux's
/// strncpy_from_user into a fixed buffer: PR_SET_NAME), reading no byte
/// past them.
pub fn read_cstr_cut(space: &mut dyn UserSpace, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < max {
        let chunk = ((4096 - (at % 4096)) as usize).min(max - out.len());
        let mut buf = alloc::vec![0u8; chunk];
        read(space, at, &mut buf)?;
        if let Some(end) = buf.iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..end]);
            return Ok(out);
        }
        out.extend_from_slice(&buf);
        at += chunk as u64;
    }
    Ok(out)
}

/// A NULL-terminated array of string pointers (argv, envp), at most
/// `max_total` bytes of strings.
pub fn read_strings(
    space: &mut dyn UserSpace,
    mut addr: u64,
    max_total: usize,
) -> Result<Vec<Vec<u8>>, Errno> {
    let mut out = Vec::new();
    let mut total = 0usize;
    if addr == 0 {
        return Ok(out);
    }
    loop {
        let p = read_u64(space, addr)?;
        if p == 0 {
            return Ok(out);
        }
        let s = read_cstr(space, p, pmon::stack::MAX_ARG_STRLEN).map_err(|e| {
            if e == super::ENAMETOOLONG {
                super::E2BIG
            } else {
                e
            }
        })?;
        total += s.len() + 1;
        if total > max_total {
            return Err(super::E2BIG);
        }
        out.push(s);
        addr += 8;
    }
}
