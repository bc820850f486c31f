//! The memory intrinsics the compiler calls. On x86_64-linux-gnu they come
//! from libc, which a freestanding image does not link, so the image brings
//! its own. `rep movsb`/`rep stosb` are fast on every CPU with ERMS and
//! cannot be turned back into calls to themselves by the optimizer.

#[cfg(not(test))]
mod intrinsics {
    #[no_mangle]
    pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        // SAFETY: the caller guarantees both ranges are valid and disjoint.
        unsafe {
            core::arch::asm!("rep movsb", inout("rcx") n => _, inout("rdi") dest => _,
                inout("rsi") src => _, options(nostack, preserves_flags));
        }
        dest
    }

    #[no_mangle]
    pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        if (dest as usize) <= (src as usize) || (dest as usize) >= (src as usize) + n {
            // SAFETY: forward copy is correct when dest does not start inside src.
            return unsafe { memcpy(dest, src, n) };
        }
        // Overlap with dest above src: copy backwards.
        // SAFETY: the caller guarantees both ranges are valid.
        unsafe {
            core::arch::asm!("std", "rep movsb", "cld",
                inout("rcx") n => _, inout("rdi") dest.add(n - 1) => _,
                inout("rsi") src.add(n - 1) => _, options(nostack));
        }
        dest
    }

    #[no_mangle]
    pub unsafe extern "C" fn memset(dest: *mut u8, value: i32, n: usize) -> *mut u8 {
        // SAFETY: the caller guarantees the range is valid.
        unsafe {
            core::arch::asm!("rep stosb", inout("rcx") n => _, inout("rdi") dest => _,
                in("al") value as u8, options(nostack, preserves_flags));
        }
        dest
    }

    #[no_mangle]
    pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        let mut i = 0;
        while i < n {
            // SAFETY: the caller guarantees both ranges are valid for n bytes.
            let (x, y) = unsafe {
                (
                    core::ptr::read_volatile(a.add(i)),
                    core::ptr::read_volatile(b.add(i)),
                )
            };
            if x != y {
                return x as i32 - y as i32;
            }
            i += 1;
        }
        0
    }

    #[no_mangle]
    pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        // SAFETY: same contract as memcmp.
        unsafe { memcmp(a, b, n) }
    }
}
