//! `lego-image`: the common body of every Lego guest image.
//!
//! Boot (see `lego_proto::boot`): the VMM starts each vCPU in 64-bit mode at
//! `_start` with RSP at its stack, RDI = the [`BootInfo`] address and RSI =
//! its index, and the IDT already loaded. vCPU 0 sets up the heap and console and runs the self-test, a deliberate test
//! failure, or the monitor's own `main` given to [`guest!`]. The other vCPUs
//! halt until a later issue gives them work.
//!
//! The pieces that only make sense inside a guest (entry code, panic handler,
//! global allocator) are compiled out under `cfg(test)` so that the rest runs
//! as ordinary host unit tests.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod block;
pub mod console;
pub mod cpu;
#[cfg(not(test))]
mod entry;
#[cfg(not(test))]
pub mod exceptions;
pub mod fabric;
#[cfg(not(test))]
mod fabrictest;
pub mod heap;
pub mod hypercall;
pub mod mem;
pub mod panic;
pub mod selftest;
#[cfg(not(test))]
mod testfail;
pub mod virtq;

pub use lego_proto::boot::{BootInfo, Role};

/// Declares a guest image: its role and the function that runs the monitor.
///
/// ```ignore
/// lego_image::guest!(Role::Memory, main);
/// fn main(boot: &'static BootInfo) -> ! { ... }
/// ```
///
/// A third argument runs on every other vCPU once it has booted (it may
/// wait for `main` to have set things up); without it they halt.
#[macro_export]
macro_rules! guest {
    ($role:expr, $main:path) => {
        $crate::guest!($role, $main, $crate::cpu::secondary_halts);
    };
    ($role:expr, $main:path, $secondary:path) => {
        #[no_mangle]
        pub fn lego_guest_role() -> $crate::Role {
            $role
        }

        #[no_mangle]
        pub fn lego_guest_main(boot: &'static $crate::BootInfo) -> ! {
            $main(boot)
        }

        #[no_mangle]
        pub fn lego_guest_secondary(boot: &'static $crate::BootInfo, cpu: u32) -> ! {
            $secondary(boot, cpu)
        }
    };
}
