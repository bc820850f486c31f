//! The storage monitor's logic, in plain `no_std` modules that also run as
//! host unit tests: the block device interface and a durable, crash-consistent
//! file system on top of it. The unikernel shell (`main.rs`) connects it to
//! the fabric and the virtual disk.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod block;
pub mod fs;
pub mod service;
