//! `lego-wire`: the fabric between Lego components as it is on the wire,
//! shared by `lego-vmm`'s transports and by everything else that speaks to
//! a component (tools, tests, benchmarks, fuzzers).
//!
//! - [`key`]: the rack key and its file;
//! - [`auth`]: the trailer that authenticates every frame (keyed BLAKE3,
//!   a per-channel nonce and a sequence number against replays);
//! - [`hello`]: what both ends of a new connection say first;
//! - [`shm`]: the shared-memory rings and doorbells of one host;
//! - [`client`]: a blocking client over TCP or shared memory.
//!
//! The frame itself (header, kinds, errors) is `lego_proto::frame`, which
//! the guests share.

pub mod auth;
pub mod client;
pub mod hello;
pub mod key;
pub mod shm;
