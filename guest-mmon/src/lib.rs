//! The memory monitor's logic, in plain `no_std` modules that also run as
//! host unit tests: a process's virtual address space (VMAs with Linux's
//! brk/mmap/munmap/mprotect/mremap semantics), the page frames of this
//! component, and the page table from (process, virtual page) to frame.
//! The unikernel shell (`main.rs`) connects it to the fabric.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

#[cfg(test)]
mod copies_tests;
pub mod frames;
pub mod index;
pub mod owner;
pub mod service;
pub mod space;
#[cfg(test)]
mod spread_copies_tests;

/// Bytes in a page.
pub const PAGE: u64 = 4096;
