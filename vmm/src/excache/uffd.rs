//! A userfaultfd: the kernel's way of letting this process serve page
//! faults on memory it registers. The ExCache registers the host memory
//! behind process windows, so a vCPU's first touch of a page that is not
//! cached blocks inside KVM while one of our handler threads fetches the
//! page and installs it (`UFFDIO_COPY`). No instruction is emulated on the
//! way, so any instruction a program uses (AVX-512 included) can miss.
//!
//! Pages are installed write-protected unless the fault was a write; the
//! first write to such a page is a write-protect fault, which is how the
//! ExCache knows a page is dirty (exactly: KVM's dirty log overcounts under
//! PVM's shadow paging, see `mod.rs`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

// From linux/userfaultfd.h.
const UFFD_API: u64 = 0xaa;
const UFFD_FEATURE_PAGEFAULT_FLAG_WP: u64 = 1 << 0;
const UFFD_FEATURE_THREAD_ID: u64 = 1 << 8;
/// UFFDIO_MOVE (Linux 6.8): a page moved between registered ranges.
const UFFD_FEATURE_MOVE: u64 = 1 << 16;
const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;
const UFFDIO_REGISTER_MODE_WP: u64 = 2;
const UFFDIO_COPY_MODE_WP: u64 = 2;
const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1;
const UFFD_EVENT_PAGEFAULT: u8 = 0x12;
const UFFD_PAGEFAULT_FLAG_WRITE: u64 = 1;
const UFFD_PAGEFAULT_FLAG_WP: u64 = 2;
/// `USERFAULTFD_IOC_NEW` on /dev/userfaultfd: `_IO(0xaa, 0)`.
const USERFAULTFD_IOC_NEW: libc::c_ulong = 0xaa00;

/// `_IOWR(0xaa, nr, size)`.
const fn iowr(nr: u64, size: usize) -> libc::c_ulong {
    ((3u64 << 30) | ((size as u64) << 16) | (0xaa << 8) | nr) as libc::c_ulong
}

/// `_IOR(0xaa, nr, size)`.
const fn ior(nr: u64, size: usize) -> libc::c_ulong {
    ((2u64 << 30) | ((size as u64) << 16) | (0xaa << 8) | nr) as libc::c_ulong
}

#[repr(C)]
struct Api {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Range {
    start: u64,
    len: u64,
}

#[repr(C)]
struct Register {
    range: Range,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
struct Copy {
    dst: u64,
    src: u64,
    len: u64,
    mode: u64,
    copy: i64,
}

#[repr(C)]
struct Move {
    dst: u64,
    src: u64,
    len: u64,
    mode: u64,
    moved: i64,
}

#[repr(C)]
struct WriteProtect {
    range: Range,
    mode: u64,
}

/// `struct uffd_msg` as a page-fault event lays it out.
#[repr(C)]
#[derive(Default)]
struct Msg {
    event: u8,
    _reserved: [u8; 7],
    flags: u64,
    address: u64,
    ptid: u32,
    _pad: u32,
}

const UFFDIO_API: libc::c_ulong = iowr(0x3f, std::mem::size_of::<Api>());
const UFFDIO_REGISTER: libc::c_ulong = iowr(0x00, std::mem::size_of::<Register>());
const UFFDIO_WAKE: libc::c_ulong = ior(0x02, std::mem::size_of::<Range>());
const UFFDIO_COPY: libc::c_ulong = iowr(0x03, std::mem::size_of::<Copy>());
const UFFDIO_WRITEPROTECT: libc::c_ulong = iowr(0x06, std::mem::size_of::<WriteProtect>());
const UFFDIO_MOVE: libc::c_ulong = iowr(0x05, std::mem::size_of::<Move>());

/// One fault a vCPU is blocked on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The host address, page-aligned.
    pub addr: u64,
    /// The access was a write.
    pub write: bool,
    /// The page is there but write-protected (else: missing).
    pub protected: bool,
    /// The faulting thread (a vCPU thread).
    pub tid: u32,
}

/// Why the host cannot give the ExCache a userfaultfd.
#[derive(Debug, thiserror::Error)]
pub enum UffdError {
    #[error("the host refused a userfaultfd ({0}); the processor needs one for faults taken inside KVM: run lego-vmm as root, give it CAP_SYS_PTRACE, read-write access to /dev/userfaultfd, or set the sysctl vm.unprivileged_userfaultfd=1")]
    NotAllowed(io::Error),
    #[error(
        "this kernel's userfaultfd lacks {0}, which the ExCache needs (Linux 5.19 or later has it)"
    )]
    Missing(&'static str),
    #[error("userfaultfd {what}: {source}")]
    Call {
        what: &'static str,
        source: io::Error,
    },
}

pub struct Uffd {
    fd: OwnedFd,
    /// The kernel moves pages (UFFDIO_MOVE).
    moves: bool,
}

fn check(r: libc::c_int, what: &'static str) -> Result<(), UffdError> {
    if r < 0 {
        Err(UffdError::Call {
            what,
            source: io::Error::last_os_error(),
        })
    } else {
        Ok(())
    }
}

impl Uffd {
    /// A non-blocking userfaultfd with write-protect faults and thread
    /// ids, and page moves where the kernel has them.
    pub fn new() -> Result<Uffd, UffdError> {
        let flags = libc::O_CLOEXEC | libc::O_NONBLOCK;
        let fd = Self::open(flags)?;
        let mut api = Api {
            api: UFFD_API,
            features: 0,
            ioctls: 0,
        };
        // The features this kernel has (UFFDIO_API with none asks).
        // SAFETY: UFFDIO_API reads and writes the struct we pass.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_API, &mut api) };
        let has = if r < 0 { 0 } else { api.features };
        let needed = UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_THREAD_ID;
        if has & needed != needed {
            return Err(UffdError::Missing("write-protect faults or thread ids"));
        }
        // The handshake is once per descriptor: a new one with the
        // features wanted.
        drop(fd);
        let fd = Self::open(flags)?;
        let mut api = Api {
            api: UFFD_API,
            features: needed | (has & UFFD_FEATURE_MOVE),
            ioctls: 0,
        };
        // SAFETY: as above.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_API, &mut api) };
        if r < 0 {
            return Err(UffdError::Missing("write-protect faults or thread ids"));
        }
        Ok(Uffd {
            fd,
            moves: has & UFFD_FEATURE_MOVE != 0,
        })
    }

    /// A new descriptor, not yet through the UFFDIO_API handshake.
    fn open(flags: libc::c_int) -> Result<OwnedFd, UffdError> {
        // SAFETY: the syscall takes flags and returns a new descriptor or -1.
        let mut raw = unsafe { libc::syscall(libc::SYS_userfaultfd, flags) } as libc::c_int;
        if raw < 0 {
            let first = io::Error::last_os_error();
            // Without the capability, /dev/userfaultfd (Linux 6.1) may
            // still hand out one that serves faults from the kernel.
            raw = match std::fs::File::open("/dev/userfaultfd") {
                // SAFETY: USERFAULTFD_IOC_NEW takes the flags and returns a new descriptor.
                Ok(dev) => unsafe { libc::ioctl(dev.as_raw_fd(), USERFAULTFD_IOC_NEW, flags) },
                Err(_) => -1,
            };
            if raw < 0 {
                return Err(UffdError::NotAllowed(first));
            }
        }
        // SAFETY: raw is a descriptor we just got and own.
        Ok(unsafe { OwnedFd::from_raw_fd(raw) })
    }

    /// Whether pages can be moved ([`Uffd::move_page`]).
    pub fn moves(&self) -> bool {
        self.moves
    }

    /// Moves the page at `src` to `dst` (both registered here): `src` is
    /// left empty, and an access there faults. Without waking `dst`.
    pub fn move_page(&self, dst: u64, src: u64) -> Result<(), UffdError> {
        const DONTWAKE: u64 = 1;
        let mut m = Move {
            dst,
            src,
            len: 4096,
            mode: DONTWAKE,
            moved: 0,
        };
        // SAFETY: UFFDIO_MOVE reads and writes the struct we pass; both
        // addresses are in ranges registered with this descriptor.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), UFFDIO_MOVE, &mut m) };
        if r < 0 {
            return Err(UffdError::Call {
                what: "move a page",
                source: io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    /// Serves missing and write-protect faults on [start, start + len).
    pub fn register(&self, start: u64, len: u64) -> Result<(), UffdError> {
        let mut reg = Register {
            range: Range { start, len },
            mode: UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
            ioctls: 0,
        };
        // SAFETY: UFFDIO_REGISTER reads and writes the struct we pass.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), UFFDIO_REGISTER, &mut reg) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINVAL) {
                return Err(UffdError::Missing("write-protect mode on anonymous memory"));
            }
            return Err(UffdError::Call {
                what: "register",
                source: e,
            });
        }
        Ok(())
    }

    /// Installs whole pages at `dst` from `src`, write-protected or not,
    /// and wakes whoever waits on them. Returns the bytes installed: fewer
    /// than `src` when a page was there already (another fault installed
    /// it), where the copy stopped.
    pub fn copy(&self, dst: u64, src: &[u8], protect: bool) -> Result<u64, UffdError> {
        assert!(
            !src.is_empty() && src.len() % 4096 == 0,
            "the ExCache installs whole pages"
        );
        let mut c = Copy {
            dst,
            src: src.as_ptr() as u64,
            len: src.len() as u64,
            mode: if protect { UFFDIO_COPY_MODE_WP } else { 0 },
            copy: 0,
        };
        // SAFETY: UFFDIO_COPY reads src.len() bytes at src (a live slice)
        // and writes the struct; dst is inside a registered range.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), UFFDIO_COPY, &mut c) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EEXIST) {
                let done = c.copy.max(0) as u64;
                self.wake(dst + done, 4096)?;
                return Ok(done);
            }
            return Err(UffdError::Call {
                what: "copy a page in",
                source: e,
            });
        }
        Ok(src.len() as u64)
    }

    /// Write-protects [start, start + len), or lifts the protection (which
    /// wakes the faults waiting on it).
    pub fn protect(&self, start: u64, len: u64, on: bool) -> Result<(), UffdError> {
        let mut wp = WriteProtect {
            range: Range { start, len },
            mode: if on { UFFDIO_WRITEPROTECT_MODE_WP } else { 0 },
        };
        // SAFETY: UFFDIO_WRITEPROTECT reads the struct we pass.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), UFFDIO_WRITEPROTECT, &mut wp) };
        check(r, "write-protect")
    }

    /// Wakes the faults waiting on [start, start + len): they retry.
    pub fn wake(&self, start: u64, len: u64) -> Result<(), UffdError> {
        let mut range = Range { start, len };
        // SAFETY: UFFDIO_WAKE reads the range we pass.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), UFFDIO_WAKE, &mut range) };
        check(r, "wake")
    }

    /// Waits up to `timeout_ms` for a fault; None on timeout.
    pub fn next(&self, timeout_ms: i32) -> Result<Option<Fault>, UffdError> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd, owned here.
        let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if r <= 0 {
            return Ok(None);
        }
        let mut msg = Msg::default();
        let size = std::mem::size_of::<Msg>();
        // SAFETY: reads at most one message into our buffer.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), (&mut msg as *mut Msg).cast(), size) };
        if n != size as isize {
            // Another handler thread took it (EAGAIN), or nothing came.
            return Ok(None);
        }
        if msg.event != UFFD_EVENT_PAGEFAULT {
            return Ok(None);
        }
        Ok(Some(Fault {
            addr: msg.address & !0xfff,
            write: msg.flags & UFFD_PAGEFAULT_FLAG_WRITE != 0,
            protected: msg.flags & UFFD_PAGEFAULT_FLAG_WP != 0,
            tid: msg.ptid,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_kernel_headers() {
        assert_eq!(UFFDIO_API, 0xc018_aa3f);
        assert_eq!(UFFDIO_REGISTER, 0xc020_aa00);
        assert_eq!(UFFDIO_WAKE, 0x8010_aa02);
        assert_eq!(UFFDIO_COPY, 0xc028_aa03);
        assert_eq!(UFFDIO_WRITEPROTECT, 0xc018_aa06);
        assert_eq!(UFFDIO_MOVE, 0xc028_aa05);
        assert_eq!(std::mem::size_of::<Msg>(), 32);
    }
}
