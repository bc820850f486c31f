//! Signals as Linux defines them for x86-64: numbers, sets, actions and
//! their defaults, `siginfo`, and the frame a handler runs on.
//!
//! The frame is Linux's `rt_sigframe`, byte for byte, because programs
//! read it: the handler gets `siginfo_t *` and `ucontext_t *` pointing into
//! it, glibc's and musl's `sa_restorer` calls `rt_sigreturn` with the stack
//! pointer just above its return address, and the `uc_mcontext.fpstate`
//! pointer leads to an XSAVE image whose software bytes carry
//! FP_XSTATE_MAGIC1 and whose end carries FP_XSTATE_MAGIC2. From the top of
//! the stack down: a 128-byte red zone skipped, the XSAVE area (64-byte
//! aligned), then the frame, placed so the handler starts with
//! `rsp % 16 == 8`, as if called.

use alloc::vec::Vec;

pub const SIGHUP: u32 = 1;
pub const SIGINT: u32 = 2;
pub const SIGQUIT: u32 = 3;
pub const SIGILL: u32 = 4;
pub const SIGTRAP: u32 = 5;
pub const SIGABRT: u32 = 6;
pub const SIGBUS: u32 = 7;
pub const SIGFPE: u32 = 8;
pub const SIGKILL: u32 = 9;
pub const SIGUSR1: u32 = 10;
pub const SIGSEGV: u32 = 11;
pub const SIGUSR2: u32 = 12;
pub const SIGPIPE: u32 = 13;
pub const SIGALRM: u32 = 14;
pub const SIGTERM: u32 = 15;
pub const SIGSTKFLT: u32 = 16;
pub const SIGCHLD: u32 = 17;
pub const SIGCONT: u32 = 18;
pub const SIGSTOP: u32 = 19;
pub const SIGTSTP: u32 = 20;
pub const SIGTTIN: u32 = 21;
pub const SIGTTOU: u32 = 22;
pub const SIGURG: u32 = 23;
pub const SIGXCPU: u32 = 24;
pub const SIGXFSZ: u32 = 25;
pub const SIGVTALRM: u32 = 26;
pub const SIGPROF: u32 = 27;
pub const SIGWINCH: u32 = 28;
pub const SIGIO: u32 = 29;
pub const SIGPWR: u32 = 30;
pub const SIGSYS: u32 = 31;
/// Signals are 1..=64.
pub const NSIG: u32 = 64;

pub const SA_SIGINFO: u64 = 0x4;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;
pub const SA_RESTORER: u64 = 0x0400_0000;
pub const SA_NOCLDSTOP: u64 = 1;
pub const SA_NOCLDWAIT: u64 = 2;

/// RFLAGS bits a signal handler starts without (Linux's setup_rt_frame):
/// trap (single-step), direction and resume.
pub const RFLAGS_TF: u64 = 0x100;
pub const RFLAGS_DF: u64 = 0x400;
pub const RFLAGS_RF: u64 = 0x1_0000;

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

/// si_code values.
pub const SI_USER: i32 = 0;
pub const SI_TKILL: i32 = -6;
/// A signal the kernel sends on its own (SIGIO, a terminal's SIGINT).
pub const SI_KERNEL: i32 = 0x80;
pub const SEGV_MAPERR: i32 = 1;
pub const SEGV_ACCERR: i32 = 2;
pub const BUS_ADRERR: i32 = 2;
pub const FPE_INTDIV: i32 = 1;
pub const ILL_ILLOPN: i32 = 2;
pub const TRAP_BRKPT: i32 = 1;
pub const CLD_EXITED: i32 = 1;
pub const CLD_KILLED: i32 = 2;
pub const CLD_DUMPED: i32 = 3;
pub const CLD_STOPPED: i32 = 5;
pub const CLD_CONTINUED: i32 = 6;

/// SIGCHLD's si_code and si_status for a child that ended with wait
/// status `status`: exited (its code), killed or dumped (the signal).
pub fn child_ended(status: i32) -> (i32, i32) {
    if status & 0x7f == 0 {
        (CLD_EXITED, (status >> 8) & 0xff)
    } else if status & 0x80 != 0 {
        (CLD_DUMPED, status & 0x7f)
    } else {
        (CLD_KILLED, status & 0x7f)
    }
}

/// The signals whose default action stops a process.
pub const STOP_SIGNALS: SigSet = bit(SIGSTOP) | bit(SIGTSTP) | bit(SIGTTIN) | bit(SIGTTOU);

/// sigaltstack flags.
pub const SS_ONSTACK: u32 = 1;
pub const SS_DISABLE: u32 = 2;

pub const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
pub const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
const UC_FP_XSTATE: u64 = 1;
const UC_SIGCONTEXT_SS: u64 = 2;
const UC_STRICT_RESTORE_SS: u64 = 4;

/// A set of signals, bit `n - 1` for signal `n` (the kernel's sigset_t).
pub type SigSet = u64;

pub const fn bit(sig: u32) -> SigSet {
    1 << (sig - 1)
}

/// Signals nothing can block, catch or ignore.
pub const UNBLOCKABLE: SigSet = bit(SIGKILL) | bit(SIGSTOP);

/// What a signal does when its action is SIG_DFL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    /// Terminate "with a core dump" (reported as such to wait).
    Core,
    Ignore,
    Stop,
    Continue,
}

pub fn default_action(sig: u32) -> DefaultAction {
    match sig {
        SIGCHLD | SIGURG | SIGWINCH => DefaultAction::Ignore,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => DefaultAction::Stop,
        SIGCONT => DefaultAction::Continue,
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | SIGXCPU | SIGXFSZ
        | SIGSYS => DefaultAction::Core,
        _ => DefaultAction::Terminate,
    }
}

/// `struct sigaction` as rt_sigaction passes it on x86-64.
#[repr(C)]
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::Immutable,
    zerocopy::KnownLayout,
)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: SigSet,
}

/// Handlers back to the default, ignored signals left ignored: what
/// execve does, and clone3's CLONE_CLEAR_SIGHAND for the child.
pub fn reset_handlers(actions: &mut [SigAction]) {
    for a in actions.iter_mut() {
        if a.handler != SIG_IGN {
            *a = SigAction::default();
        }
    }
}

/// `stack_t`.
#[repr(C)]
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::Immutable,
    zerocopy::KnownLayout,
)]
pub struct AltStack {
    pub sp: u64,
    pub flags: u32,
    pub _pad: u32,
    pub size: u64,
}

/// The 128-byte siginfo_t, with the fields Lego fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigInfo {
    pub signo: u32,
    pub code: i32,
    pub errno: i32,
    /// A fault's address (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP).
    pub addr: u64,
    /// The sender (kill, tkill, SIGCHLD).
    pub pid: u32,
    pub uid: u32,
    /// SIGCHLD: the child's exit status or signal.
    pub status: i32,
    /// sigqueue's value (si_value), for the signals a process queues.
    pub value: u64,
}

impl SigInfo {
    /// Whether a siginfo a program made claims the kernel or tkill sent
    /// it (a code of 0 or more, or SI_TKILL): Linux lets a process send
    /// such a one only to itself.
    pub fn claims_kernel(&self) -> bool {
        self.code >= 0 || self.code == SI_TKILL
    }

    pub fn user(signo: u32, code: i32, pid: u32) -> SigInfo {
        SigInfo {
            signo,
            code,
            errno: 0,
            addr: 0,
            pid,
            uid: 0,
            status: 0,
            value: 0,
        }
    }

    /// A signal of the SIGPOLL kind (dnotify, F_SETSIG): `si_band` and
    /// `si_fd` lie where a sender's pid, uid and value do, so they are
    /// carried in those fields.
    pub fn poll(signo: u32, code: i32, band: i64, fd: i32) -> SigInfo {
        SigInfo {
            pid: band as u32,
            uid: (band >> 32) as u32,
            value: fd as u32 as u64,
            ..SigInfo::user(signo, code, 0)
        }
    }

    pub fn fault(signo: u32, code: i32, addr: u64) -> SigInfo {
        SigInfo {
            signo,
            code,
            errno: 0,
            addr,
            pid: 0,
            uid: 0,
            status: 0,
            value: 0,
        }
    }

    fn is_fault(&self) -> bool {
        matches!(self.signo, SIGSEGV | SIGBUS | SIGILL | SIGFPE | SIGTRAP) && self.code > 0
    }

    /// The 128 bytes a handler sees.
    pub fn encode(&self) -> [u8; 128] {
        let mut b = [0u8; 128];
        b[0..4].copy_from_slice(&self.signo.to_le_bytes());
        b[4..8].copy_from_slice(&self.errno.to_le_bytes());
        b[8..12].copy_from_slice(&self.code.to_le_bytes());
        if self.is_fault() {
            b[16..24].copy_from_slice(&self.addr.to_le_bytes());
        } else if self.signo == SIGSYS && self.code == 1 {
            // A seccomp trap (SYS_SECCOMP): the call's address, number
            // and arch (kept in `addr`, `status` and `value`).
            b[16..24].copy_from_slice(&self.addr.to_le_bytes());
            b[24..28].copy_from_slice(&self.status.to_le_bytes());
            b[28..32].copy_from_slice(&(self.value as u32).to_le_bytes());
        } else {
            b[16..20].copy_from_slice(&self.pid.to_le_bytes());
            b[20..24].copy_from_slice(&self.uid.to_le_bytes());
            if self.signo == SIGCHLD {
                b[24..28].copy_from_slice(&self.status.to_le_bytes());
            } else {
                b[24..32].copy_from_slice(&self.value.to_le_bytes());
            }
        }
        b
    }
}

/// A thread's user registers, in the order of Linux's `sigcontext`
/// general registers (which is also `mcontext_t.gregs`'s order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserRegs {
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub rdx: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rsp: u64,
    pub rip: u64,
    pub rflags: u64,
}

impl UserRegs {
    fn to_words(self) -> [u64; 18] {
        [
            self.r8,
            self.r9,
            self.r10,
            self.r11,
            self.r12,
            self.r13,
            self.r14,
            self.r15,
            self.rdi,
            self.rsi,
            self.rbp,
            self.rbx,
            self.rdx,
            self.rax,
            self.rcx,
            self.rsp,
            self.rip,
            self.rflags,
        ]
    }

    fn from_words(w: &[u64; 18]) -> UserRegs {
        UserRegs {
            r8: w[0],
            r9: w[1],
            r10: w[2],
            r11: w[3],
            r12: w[4],
            r13: w[5],
            r14: w[6],
            r15: w[7],
            rdi: w[8],
            rsi: w[9],
            rbp: w[10],
            rbx: w[11],
            rdx: w[12],
            rax: w[13],
            rcx: w[14],
            rsp: w[15],
            rip: w[16],
            rflags: w[17],
        }
    }
}

/// Offsets inside the frame (from its start, where the return address is).
pub const FRAME_SIZE: u64 = 8 + UCONTEXT_SIZE + 128;
const UCONTEXT_SIZE: u64 = 8 + 8 + 24 + 256 + 8;
pub const UC_OFFSET: u64 = 8;
const MCONTEXT_OFFSET: u64 = UC_OFFSET + 40;
const SIGMASK_OFFSET: u64 = MCONTEXT_OFFSET + 256;
pub const INFO_OFFSET: u64 = 8 + UCONTEXT_SIZE;
/// Within the mcontext: after the 18 registers come cs, gs, fs, ss (u16
/// each), err, trapno, oldmask, cr2, the fpstate pointer.
const CSGSFS: u64 = MCONTEXT_OFFSET + 18 * 8;
const ERR: u64 = CSGSFS + 8;
const TRAPNO: u64 = ERR + 8;
const OLDMASK: u64 = TRAPNO + 8;
const CR2: u64 = OLDMASK + 8;
const FPSTATE: u64 = CR2 + 8;
/// Within the XSAVE legacy area: the software bytes Linux reserves.
const SW_BYTES: usize = 464;

/// The sizes signal delivery needs from the CPU: the XSAVE area for the
/// enabled features (CPUID 0xD, EBX) and those features (XCR0).
#[derive(Clone, Copy, Debug)]
pub struct Xstate {
    pub size: u32,
    pub features: u64,
}

impl Xstate {
    /// AT_MINSIGSTKSZ: a frame, its XSAVE area, the alignments and the
    /// 128-byte red zone (Linux computes the same way).
    pub fn min_sigstack(&self) -> u64 {
        FRAME_SIZE + self.size as u64 + 64 + 16 + 128
    }
}

/// A frame ready to be written at `sp` (the handler's stack pointer).
pub struct Frame {
    pub sp: u64,
    pub bytes: Vec<u8>,
    /// Where the XSAVE area starts (the caller XSAVEs into its copy at
    /// `bytes[(fpstate - sp)..]`, or hands this layout the image).
    pub fpstate: u64,
}

/// Everything a frame records.
pub struct Delivery<'a> {
    pub regs: UserRegs,
    pub info: SigInfo,
    /// The mask to restore on return.
    pub mask: SigSet,
    pub altstack: AltStack,
    pub restorer: u64,
    /// The XSAVE image of the thread's extended state (`xstate.size` bytes).
    pub xsave: &'a [u8],
    /// For a fault: error code, vector, CR2.
    pub err: u64,
    pub trapno: u64,
    pub cr2: u64,
}

/// Lays out the frame below `stack_top` (the thread's stack pointer, or
/// the top of its alternate stack).
pub fn build(stack_top: u64, d: &Delivery<'_>, xstate: Xstate) -> Frame {
    let size = xstate.size as u64;
    let fpstate = (stack_top - 128 - size) & !63;
    let sp = ((fpstate - FRAME_SIZE) & !15) - 8;
    let mut bytes = alloc::vec![0u8; (stack_top - 128 - sp) as usize];
    let put = |b: &mut [u8], at: u64, v: u64| {
        b[at as usize..at as usize + 8].copy_from_slice(&v.to_le_bytes())
    };
    put(&mut bytes, 0, d.restorer);
    put(
        &mut bytes,
        UC_OFFSET,
        UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS,
    );
    // uc_link 0; uc_stack:
    put(&mut bytes, UC_OFFSET + 16, d.altstack.sp);
    bytes[(UC_OFFSET + 24) as usize..(UC_OFFSET + 28) as usize]
        .copy_from_slice(&d.altstack.flags.to_le_bytes());
    put(&mut bytes, UC_OFFSET + 32, d.altstack.size);
    for (i, w) in d.regs.to_words().iter().enumerate() {
        put(&mut bytes, MCONTEXT_OFFSET + 8 * i as u64, *w);
    }
    // cs 0x33, gs 0, fs 0, ss 0x2b.
    put(&mut bytes, CSGSFS, 0x33 | (0x2b << 48));
    put(&mut bytes, ERR, d.err);
    put(&mut bytes, TRAPNO, d.trapno);
    put(&mut bytes, OLDMASK, d.mask);
    put(&mut bytes, CR2, d.cr2);
    put(&mut bytes, FPSTATE, fpstate);
    put(&mut bytes, SIGMASK_OFFSET, d.mask);
    bytes[INFO_OFFSET as usize..INFO_OFFSET as usize + 128].copy_from_slice(&d.info.encode());
    // The XSAVE area, with Linux's software bytes and closing magic.
    let at = (fpstate - sp) as usize;
    let n = d.xsave.len().min(size as usize);
    bytes[at..at + n].copy_from_slice(&d.xsave[..n]);
    let sw = at + SW_BYTES;
    bytes[sw..sw + 4].copy_from_slice(&FP_XSTATE_MAGIC1.to_le_bytes());
    bytes[sw + 4..sw + 8].copy_from_slice(&(xstate.size + 4).to_le_bytes());
    bytes[sw + 8..sw + 16].copy_from_slice(&xstate.features.to_le_bytes());
    bytes[sw + 16..sw + 20].copy_from_slice(&xstate.size.to_le_bytes());
    let end = at + size as usize;
    bytes.resize(bytes.len().max(end + 4), 0);
    bytes[end..end + 4].copy_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());
    Frame { sp, bytes, fpstate }
}

/// What rt_sigreturn restores.
#[derive(Debug, PartialEq, Eq)]
pub struct Restored {
    pub regs: UserRegs,
    pub mask: SigSet,
    pub altstack: AltStack,
    /// Where the XSAVE image is, when the frame says there is a valid one.
    pub fpstate: Option<u64>,
}

/// Reads a frame back; `bytes` start at the frame (rsp - 8 at
/// rt_sigreturn) and hold at least [`FRAME_SIZE`] bytes.
pub fn parse(bytes: &[u8]) -> Option<Restored> {
    if (bytes.len() as u64) < FRAME_SIZE {
        return None;
    }
    let get = |at: u64| {
        let a = at as usize;
        u64::from_le_bytes(bytes[a..a + 8].try_into().unwrap_or([0; 8]))
    };
    let mut words = [0u64; 18];
    for (i, w) in words.iter_mut().enumerate() {
        *w = get(MCONTEXT_OFFSET + 8 * i as u64);
    }
    let altstack = AltStack {
        sp: get(UC_OFFSET + 16),
        flags: get(UC_OFFSET + 24) as u32,
        _pad: 0,
        size: get(UC_OFFSET + 32),
    };
    let fp = get(FPSTATE);
    Some(Restored {
        regs: UserRegs::from_words(&words),
        mask: get(SIGMASK_OFFSET) & !UNBLOCKABLE,
        altstack,
        fpstate: (fp != 0).then_some(fp),
    })
}

/// Whether an XSAVE image a program hands back (at rt_sigreturn) carries
/// the markers a frame was built with; `img` holds `size + 4` bytes.
pub fn xsave_valid(img: &[u8], xstate: Xstate) -> bool {
    let size = xstate.size as usize;
    if img.len() < size + 4 {
        return false;
    }
    let word = |at: usize| u32::from_le_bytes(img[at..at + 4].try_into().unwrap_or([0; 4]));
    word(SW_BYTES) == FP_XSTATE_MAGIC1 && word(size) == FP_XSTATE_MAGIC2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_childs_end_as_sigchld_says_it() {
        assert_eq!(child_ended(3 << 8), (CLD_EXITED, 3));
        assert_eq!(child_ended(SIGTERM as i32), (CLD_KILLED, SIGTERM as i32));
        assert_eq!(
            child_ended(SIGSEGV as i32 | 0x80),
            (CLD_DUMPED, SIGSEGV as i32)
        );
    }

    const X: Xstate = Xstate {
        size: 2696,
        features: 0x2e7,
    };

    fn delivery(xsave: &[u8]) -> Delivery<'_> {
        Delivery {
            regs: UserRegs {
                rax: 1,
                rbx: 2,
                rip: 0x401234,
                rsp: 0x7fff_f000,
                rflags: 0x246,
                r15: 15,
                ..Default::default()
            },
            info: SigInfo::fault(SIGSEGV, SEGV_MAPERR, 0xdead_0000),
            mask: bit(SIGUSR1),
            altstack: AltStack {
                flags: SS_DISABLE,
                ..Default::default()
            },
            restorer: 0x40_1000,
            xsave,
            err: 6,
            trapno: 14,
            cr2: 0xdead_0000,
        }
    }

    #[test]
    fn the_frame_matches_glibcs_ucontext() {
        // glibc's ucontext_t (libc crate) and the kernel's agree on the
        // prefix a handler reads; check our offsets against it.
        assert_eq!(core::mem::offset_of!(libc::ucontext_t, uc_mcontext), 40);
        assert_eq!(MCONTEXT_OFFSET - UC_OFFSET, 40);
        assert_eq!(
            core::mem::offset_of!(libc::ucontext_t, uc_sigmask),
            (SIGMASK_OFFSET - UC_OFFSET) as usize
        );
        // gregs order: REG_RIP is 16, REG_RSP 15, REG_CR2 22.
        assert_eq!(libc::REG_RIP, 16);
        assert_eq!(libc::REG_RSP, 15);
        assert_eq!((CR2 - MCONTEXT_OFFSET) / 8, libc::REG_CR2 as u64);
        assert_eq!(
            (FPSTATE - MCONTEXT_OFFSET) / 8,
            23,
            "fpregs follows gregs[23]"
        );
    }

    #[test]
    fn a_frame_round_trips_and_is_aligned() {
        let img = alloc::vec![0x5a; X.size as usize];
        let top = 0x7fff_f000;
        let f = build(top, &delivery(&img), X);
        assert_eq!((f.sp + 8) % 16, 0, "the handler starts as if called");
        assert_eq!(f.fpstate % 64, 0);
        assert!(f.sp + f.bytes.len() as u64 <= top - 128 + 4 + 64);
        let r = parse(&f.bytes).unwrap();
        assert_eq!(r.regs, delivery(&img).regs);
        assert_eq!(r.mask, bit(SIGUSR1));
        assert_eq!(r.fpstate, Some(f.fpstate));
        let at = (f.fpstate - f.sp) as usize;
        assert!(xsave_valid(&f.bytes[at..], X));
        // siginfo: signo 11, code 1, si_addr at 16.
        let info = &f.bytes[INFO_OFFSET as usize..];
        assert_eq!(u32::from_le_bytes(info[0..4].try_into().unwrap()), 11);
        assert_eq!(i32::from_le_bytes(info[8..12].try_into().unwrap()), 1);
        assert_eq!(
            u64::from_le_bytes(info[16..24].try_into().unwrap()),
            0xdead_0000
        );
        // The return address is the restorer.
        assert_eq!(
            u64::from_le_bytes(f.bytes[0..8].try_into().unwrap()),
            0x40_1000
        );
    }

    #[test]
    fn a_damaged_xsave_image_is_refused() {
        let img = alloc::vec![0; X.size as usize];
        let f = build(0x10_0000, &delivery(&img), X);
        let at = (f.fpstate - f.sp) as usize;
        let mut bad = f.bytes[at..].to_vec();
        bad[SW_BYTES] ^= 1;
        assert!(!xsave_valid(&bad, X));
        assert!(parse(&f.bytes[..100]).is_none());
    }

    #[test]
    fn defaults_follow_linux() {
        assert_eq!(default_action(SIGCHLD), DefaultAction::Ignore);
        assert_eq!(default_action(SIGSEGV), DefaultAction::Core);
        assert_eq!(default_action(SIGTERM), DefaultAction::Terminate);
        assert_eq!(default_action(SIGPIPE), DefaultAction::Terminate);
        assert_eq!(default_action(SIGTSTP), DefaultAction::Stop);
        assert_eq!(default_action(40), DefaultAction::Terminate);
    }
}
