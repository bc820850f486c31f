//! The processor monitor's logic, in plain `no_std` modules that also run
//! as host unit tests: loading a static Linux executable and building its
//! first stack. The unikernel shell (`main.rs`) runs processes with it.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod absent;
pub mod aio;
pub mod anon;
pub mod caps;
pub mod cmsg;
pub mod cred;
pub mod dgram;
pub mod elf;
pub mod events;
pub mod fd;
pub mod filecache;
pub mod futex;
pub mod gather;
pub mod icmp;
pub mod ids;
pub mod ifreq;
pub mod inet;
pub mod inotify;
pub mod locks;
pub mod mlock;
pub mod mqueue;
pub mod netlink;
pub mod path;
pub mod pipe;
pub mod private_maps;
pub mod procfs;
pub mod procnet;
pub mod ptimer;
pub mod pty;
pub mod readahead;
pub mod rlimit;
pub mod sched;
pub mod scoped;
pub mod script;
pub mod search;
pub mod seccomp;
pub mod signal;
pub mod sockbuf;
pub mod sockopt;
pub mod stack;
pub mod sysno;
pub mod sysv;
pub mod sysv_msg;
pub mod sysv_sem;
pub mod tmpfs;
pub mod unixsock;
pub mod vdso;
pub mod writeback;
pub mod xattr;

/// Bytes in a page.
pub const PAGE: u64 = 4096;
