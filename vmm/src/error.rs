//! What can stop `lego-vmm`, as sentences a user can act on, and the exit
//! code each maps to: 2 for a host or configuration problem (nothing ran),
//! 3 for a guest that failed, 1 for a KVM call that failed unexpectedly.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum VmmError {
    #[error("{path} does not exist: this host has no KVM (load the kvm module, or run on a host with hardware virtualization), or pass --kvm-device PATH")]
    NoKvm { path: PathBuf },

    #[error("no permission to open {path}: run as root or add this user to the group that owns it (often 'kvm')")]
    KvmPermission { path: PathBuf },

    #[error("cannot open {path}: {source}")]
    KvmOpen {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("the {role} image {path} does not exist: build it with 'cargo build --workspace', or pass --image PATH")]
    ImageMissing { role: &'static str, path: PathBuf },

    #[error("cannot read the image {path}: {source}")]
    ImageRead {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{path} is not an x86-64 ELF executable: {why}")]
    ImageNotElf { path: PathBuf, why: String },

    #[error("the image {path} does not fit in guest RAM: {why}; give more with --mem")]
    ImageTooBig { path: PathBuf, why: String },

    #[error("invalid {option}: {why}")]
    BadOption { option: &'static str, why: String },

    /// The program after `--` cannot run on Lego.
    #[error("cannot run {path}: {why}")]
    Program { path: String, why: String },

    /// Another live process on this host is this component already.
    #[error("{0}")]
    IdTaken(String),

    #[error("{0}")]
    RackKey(#[from] lego_wire::key::KeyError),

    /// The storage component's `--disk` cannot be used.
    #[error("{0}")]
    Disk(#[from] crate::block::DiskError),

    #[error("KVM refused to {what}: {source}")]
    Kvm {
        what: &'static str,
        source: kvm_ioctls::Error,
    },

    #[error("cannot reserve {mib} MiB of guest RAM on this host ({why}): give less with --mem")]
    GuestRam { mib: u64, why: String },

    #[error("could not set up guest memory: {0}")]
    Memory(String),

    #[error("could not start a thread: {0}")]
    Thread(std::io::Error),

    /// The guest failed; the report has already been printed.
    #[error("{0}")]
    Guest(String),
}

impl VmmError {
    pub fn exit_code(&self) -> i32 {
        match self {
            VmmError::NoKvm { .. }
            | VmmError::KvmPermission { .. }
            | VmmError::KvmOpen { .. }
            | VmmError::ImageMissing { .. }
            | VmmError::ImageRead { .. }
            | VmmError::ImageNotElf { .. }
            | VmmError::ImageTooBig { .. }
            | VmmError::GuestRam { .. }
            | VmmError::BadOption { .. }
            | VmmError::Program { .. }
            | VmmError::IdTaken(_)
            | VmmError::RackKey(_)
            | VmmError::Disk(_) => 2,
            VmmError::Guest(_) => 3,
            VmmError::Kvm { .. } | VmmError::Memory(_) | VmmError::Thread(_) => 1,
        }
    }
}

/// Shorthand for mapping a kvm-ioctls error to [`VmmError::Kvm`].
pub fn kvm(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> VmmError {
    move |source| VmmError::Kvm { what, source }
}

pub type Result<T> = std::result::Result<T, VmmError>;
