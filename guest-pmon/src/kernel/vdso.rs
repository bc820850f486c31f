//! The vDSO's code ([`pmon::vdso`] builds the object around it). It is
//! copied into every process, so it is position-independent: it finds the
//! data page ([`pmon::vdso::Clock::vvar`]) one page below the object, by
//! RIP-relative addressing. It reads the TSC and computes what the
//! monitor's clock computes; a clock it does not serve is the system call.
//! It lives in .rodata: the monitor never runs it.

use alloc::vec::Vec;

use pmon::vdso::CODE_OFFSET;

// The data page is at (code start - CODE_OFFSET - 4096) = code - 0x1400.
const _: () = assert!(CODE_OFFSET + 4096 == 0x1400);

core::arch::global_asm!(
    r#"
    .section .rodata.lego_vdso, "a"
    .balign 16
    .global lego_vdso_start
lego_vdso_start:
.Lvdso_start:

    // int clock_gettime(clockid_t clock, struct timespec *ts)
    .global lego_vdso_clock_gettime
lego_vdso_clock_gettime:
    cmp edi, 1          // CLOCK_MONOTONIC
    je 2f
    cmp edi, 4          // CLOCK_MONOTONIC_RAW
    je 2f
    cmp edi, 6          // CLOCK_MONOTONIC_COARSE
    je 2f
    cmp edi, 7          // CLOCK_BOOTTIME
    je 2f
    test edi, edi       // CLOCK_REALTIME
    je 3f
    cmp edi, 5          // CLOCK_REALTIME_COARSE
    je 3f
    mov eax, 228        // any other clock: the system call
    syscall
    ret
2:
    call .Lmonotonic_ns
    jmp 4f
3:
    call .Lrealtime_ns
4:
    xor edx, edx
    mov ecx, 1000000000
    div rcx
    mov [rsi], rax
    mov [rsi + 8], rdx
    xor eax, eax
    ret

    // int gettimeofday(struct timeval *tv, struct timezone *tz)
    .global lego_vdso_gettimeofday
lego_vdso_gettimeofday:
    test rsi, rsi
    je 5f
    mov qword ptr [rsi], 0
5:
    test rdi, rdi
    je 6f
    call .Lrealtime_ns
    xor edx, edx
    mov ecx, 1000
    div rcx
    xor edx, edx
    mov ecx, 1000000
    div rcx
    mov [rdi], rax
    mov [rdi + 8], rdx
6:
    xor eax, eax
    ret

    // time_t time(time_t *t)
    .global lego_vdso_time
lego_vdso_time:
    call .Lrealtime_ns
    xor edx, edx
    mov ecx, 1000000000
    div rcx
    test rdi, rdi
    je 7f
    mov [rdi], rax
7:
    ret

    // rax = ns since boot, or (at .Lrealtime_ns) since 1970: the data
    // page's TSC base (r9: its offset) subtracted, times the multiplier,
    // shifted by 32, plus the wall clock's base for real time.
    // Clobbers rdx, r8, r9.
.Lmonotonic_ns:
    xor r9d, r9d
    jmp 8f
.Lrealtime_ns:
    mov r9d, 8
8:
    lea r8, [rip + .Lvdso_start - 0x1400]
    rdtsc
    shl rdx, 32
    or rax, rdx
    sub rax, [r8 + r9]
    mul qword ptr [r8 + 16]
    shrd rax, rdx, 32
    test r9d, r9d
    je 9f
    add rax, [r8 + 24]
9:
    ret

    .global lego_vdso_end
lego_vdso_end:
    .previous
"#
);

extern "C" {
    static lego_vdso_start: u8;
    static lego_vdso_end: u8;
    static lego_vdso_clock_gettime: u8;
    static lego_vdso_gettimeofday: u8;
    static lego_vdso_time: u8;
}

/// The object's page (ELF headers and the code above).
pub fn image() -> Vec<u8> {
    // Only the labels' addresses are taken (addr_of! of an extern static
    // needs no unsafe).
    let (start, end, symbols) = {
        let start = core::ptr::addr_of!(lego_vdso_start) as usize;
        let end = core::ptr::addr_of!(lego_vdso_end) as usize;
        let at = |p: *const u8| p as usize - start;
        let clock = at(core::ptr::addr_of!(lego_vdso_clock_gettime));
        let tod = at(core::ptr::addr_of!(lego_vdso_gettimeofday));
        let time = at(core::ptr::addr_of!(lego_vdso_time));
        (
            start,
            end,
            [
                (&b"__vdso_clock_gettime"[..], clock),
                (&b"clock_gettime"[..], clock),
                (&b"__vdso_gettimeofday"[..], tod),
                (&b"gettimeofday"[..], tod),
                (&b"__vdso_time"[..], time),
                (&b"time"[..], time),
            ],
        )
    };
    // SAFETY: [start, end) is the assembled block, read-only data.
    let code = unsafe { core::slice::from_raw_parts(start as *const u8, end - start) };
    // The code is ours and small: a failure is a build bug, and then
    // processes simply get no vDSO (libcs fall back to system calls).
    pmon::vdso::image(code, &symbols).unwrap_or_default()
}
