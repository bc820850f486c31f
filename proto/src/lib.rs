//! `lego-proto`: the single definition of every message between Lego's parts.
//!
//! The fabric envelope every message between components travels in
//! ([`frame`]), and the interface between a guest image and its `lego-vmm`:
//! where the VMM puts the boot structures ([`boot`]), how the guest calls the
//! VMM ([`hypercall`]), and the self-test workload both sides must agree on
//! ([`selftest`]). Fabric messages between components join here later.
//!
//! Everything is `no_std` so that the guests and the VMM use the same types.
//! The control plane between host processes (the `lego` tool, `lego-globals`
//! and each `lego-vmm`) is serde types in its own crate, `proto/control`
//! (`lego-control`): a guest image must not link std, which serde brings.
#![no_std]

extern crate alloc;

pub mod boot;
pub mod fabric;
pub mod frame;
pub mod hypercall;
pub mod index;
pub mod memory;
pub mod pattern;
pub mod process;
pub mod program;
pub mod selftest;
pub mod storage;
