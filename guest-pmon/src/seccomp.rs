//! seccomp: the filters a thread runs each system call through (classic
//! BPF programs over `struct seccomp_data`), checked and run as Linux's
//! `kernel/seccomp.c` and `net/core/filter.c` do, and the action the most
//! restrictive filter returns.
//!
//! A filter is checked once, when installed: every instruction one the
//! seccomp dialect allows, loads of `seccomp_data` aligned and inside it,
//! scratch memory in range, jumps forward and inside the program, no
//! division by a constant 0, and a return at the end. Running it then
//! needs no check beyond a division by a zero X (which returns 0, as
//! Linux's interpreter does).

use alloc::vec::Vec;

/// `struct sock_filter`: 8 bytes each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl Insn {
    pub fn decode(b: &[u8; 8]) -> Insn {
        Insn {
            code: u16::from_le_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

/// BPF_MAXINSNS: the most instructions one filter may have.
pub const MAX_INSNS: usize = 4096;
/// The most instructions all of a thread's filters may have together
/// (Linux's MAX_INSNS_PER_PATH: 256 KiB of them, counting 4 more each).
pub const MAX_INSNS_PER_PATH: usize = (1 << 18) / 8;
/// `sizeof(struct seccomp_data)`.
pub const DATA_LEN: u32 = 64;
/// AUDIT_ARCH_X86_64.
pub const ARCH_X86_64: u32 = 0xc000_003e;

pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_KILL_THREAD: u32 = 0;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;
pub const RET_ACTION_FULL: u32 = 0xffff_0000;
pub const RET_DATA: u32 = 0x0000_ffff;

const EINVAL: i64 = 22;

// Instruction classes, sizes, modes, operations and sources.
const BPF_LD: u16 = 0x00;
const BPF_LDX: u16 = 0x01;
const BPF_ST: u16 = 0x02;
const BPF_STX: u16 = 0x03;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_MISC: u16 = 0x07;
const BPF_W: u16 = 0x00;
const BPF_IMM: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_MEM: u16 = 0x60;
const BPF_LEN: u16 = 0x80;
const BPF_ADD: u16 = 0x00;
const BPF_SUB: u16 = 0x10;
const BPF_MUL: u16 = 0x20;
const BPF_DIV: u16 = 0x30;
const BPF_OR: u16 = 0x40;
const BPF_AND: u16 = 0x50;
const BPF_LSH: u16 = 0x60;
const BPF_RSH: u16 = 0x70;
const BPF_NEG: u16 = 0x80;
const BPF_XOR: u16 = 0xa0;
const BPF_JA: u16 = 0x00;
const BPF_JEQ: u16 = 0x10;
const BPF_JGT: u16 = 0x20;
const BPF_JGE: u16 = 0x30;
const BPF_JSET: u16 = 0x40;
const BPF_K: u16 = 0x00;
const BPF_X: u16 = 0x08;
const BPF_A: u16 = 0x10;
const BPF_TAX: u16 = 0x00;
const BPF_TXA: u16 = 0x80;
/// BPF_MEMWORDS: scratch words.
const MEMWORDS: u32 = 16;

/// What a filter sees of a system call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Data {
    pub nr: i32,
    pub arch: u32,
    pub ip: u64,
    pub args: [u64; 6],
}

impl Data {
    /// The 32-bit word at byte `off` (aligned, inside: checked at install).
    fn word(&self, off: u32) -> u32 {
        match off {
            0 => self.nr as u32,
            4 => self.arch,
            8 => self.ip as u32,
            12 => (self.ip >> 32) as u32,
            _ => {
                let i = ((off - 16) / 8) as usize;
                let v = self.args.get(i).copied().unwrap_or(0);
                if off % 8 == 0 {
                    v as u32
                } else {
                    (v >> 32) as u32
                }
            }
        }
    }
}

/// A checked filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    insns: Vec<Insn>,
    /// SECCOMP_FILTER_FLAG_LOG: actions other than ALLOW are logged.
    pub log: bool,
}

/// Checks a program as Linux's `bpf_check_classic` and
/// `seccomp_check_filter` do: EINVAL for anything they refuse.
pub fn check(insns: Vec<Insn>) -> Result<Filter, i64> {
    if insns.is_empty() || insns.len() > MAX_INSNS {
        return Err(EINVAL);
    }
    let n = insns.len();
    for (pc, i) in insns.iter().enumerate() {
        let class = i.code & 0x07;
        let ok = match class {
            BPF_LD => match i.code {
                c if c == BPF_LD | BPF_W | BPF_ABS => i.k < DATA_LEN && i.k % 4 == 0,
                c if c == BPF_LD | BPF_W | BPF_LEN => true,
                c if c == BPF_LD | BPF_IMM => true,
                c if c == BPF_LD | BPF_MEM => i.k < MEMWORDS,
                _ => false,
            },
            BPF_LDX => match i.code {
                c if c == BPF_LDX | BPF_W | BPF_LEN => true,
                c if c == BPF_LDX | BPF_IMM => true,
                c if c == BPF_LDX | BPF_MEM => i.k < MEMWORDS,
                _ => false,
            },
            BPF_ST | BPF_STX => i.code == class && i.k < MEMWORDS,
            BPF_ALU => {
                let op = i.code & 0xf0;
                let src = i.code & 0x08;
                // Linux's seccomp_check_filter list: no BPF_MOD, and
                // BPF_NEG without a source.
                let known = matches!(
                    op,
                    BPF_ADD
                        | BPF_SUB
                        | BPF_MUL
                        | BPF_DIV
                        | BPF_OR
                        | BPF_AND
                        | BPF_LSH
                        | BPF_RSH
                        | BPF_XOR
                ) || (op == BPF_NEG && src == BPF_K);
                let no_stray = i.code & !0xf8 == BPF_ALU;
                known
                    && no_stray
                    && !(src == BPF_K && op == BPF_DIV && i.k == 0)
                    && !(src == BPF_K && matches!(op, BPF_LSH | BPF_RSH) && i.k >= 32)
            }
            BPF_JMP => {
                let op = i.code & 0xf0;
                let src = i.code & 0x08;
                if i.code & !0xf8 != BPF_JMP {
                    false
                } else if op == BPF_JA {
                    src == BPF_K && (pc + 1).checked_add(i.k as usize).is_some_and(|t| t < n)
                } else {
                    matches!(op, BPF_JEQ | BPF_JGT | BPF_JGE | BPF_JSET)
                        && pc + 1 + (i.jt as usize) < n
                        && pc + 1 + (i.jf as usize) < n
                }
            }
            BPF_RET => matches!(i.code, c if c == BPF_RET | BPF_K || c == BPF_RET | BPF_A),
            BPF_MISC => matches!(i.code, c if c == BPF_MISC | BPF_TAX || c == BPF_MISC | BPF_TXA),
            _ => false,
        };
        if !ok {
            return Err(EINVAL);
        }
    }
    // The last instruction returns (no path runs off the end).
    if insns.last().is_none_or(|i| i.code & 0x07 != BPF_RET) {
        return Err(EINVAL);
    }
    Ok(Filter { insns, log: false })
}

impl Filter {
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// Runs the filter over `d`: its return value.
    pub fn run(&self, d: &Data) -> u32 {
        let (mut a, mut x) = (0u32, 0u32);
        let mut mem = [0u32; MEMWORDS as usize];
        let mut pc = 0usize;
        while let Some(i) = self.insns.get(pc) {
            pc += 1;
            let class = i.code & 0x07;
            match class {
                BPF_LD => {
                    a = match i.code & 0xe0 {
                        BPF_ABS => d.word(i.k),
                        BPF_LEN => DATA_LEN,
                        BPF_MEM => mem[(i.k % MEMWORDS) as usize],
                        _ => i.k,
                    }
                }
                BPF_LDX => {
                    x = match i.code & 0xe0 {
                        BPF_LEN => DATA_LEN,
                        BPF_MEM => mem[(i.k % MEMWORDS) as usize],
                        _ => i.k,
                    }
                }
                BPF_ST => mem[(i.k % MEMWORDS) as usize] = a,
                BPF_STX => mem[(i.k % MEMWORDS) as usize] = x,
                BPF_ALU => {
                    let v = if i.code & BPF_X != 0 { x } else { i.k };
                    a = match i.code & 0xf0 {
                        BPF_ADD => a.wrapping_add(v),
                        BPF_SUB => a.wrapping_sub(v),
                        BPF_MUL => a.wrapping_mul(v),
                        BPF_DIV if v == 0 => return 0,
                        BPF_DIV => a / v,
                        BPF_OR => a | v,
                        BPF_AND => a & v,
                        // As Linux's interpreter: the count taken mod 32.
                        BPF_LSH => a << (v & 31),
                        BPF_RSH => a >> (v & 31),
                        BPF_NEG => a.wrapping_neg(),
                        _ => a ^ v,
                    }
                }
                BPF_JMP => {
                    let v = if i.code & BPF_X != 0 { x } else { i.k };
                    let taken = match i.code & 0xf0 {
                        BPF_JA => {
                            pc += i.k as usize;
                            continue;
                        }
                        BPF_JEQ => a == v,
                        BPF_JGT => a > v,
                        BPF_JGE => a >= v,
                        _ => a & v != 0,
                    };
                    pc += if taken { i.jt } else { i.jf } as usize;
                }
                BPF_RET => return if i.code & BPF_A != 0 { a } else { i.k },
                _ => {
                    if i.code & BPF_TXA != 0 {
                        a = x;
                    } else {
                        x = a;
                    }
                }
            }
        }
        // Not reached for a checked filter (its last instruction returns).
        RET_KILL_THREAD
    }
}

/// Linux's order of actions: the lowest (as a signed number) wins.
fn rank(ret: u32) -> i32 {
    (ret & RET_ACTION_FULL) as i32
}

/// The value the filters return for `d`: the most restrictive action
/// (with its data) of all of them, newest first as Linux runs them.
pub fn evaluate(filters: &[alloc::sync::Arc<Filter>], d: &Data) -> u32 {
    let mut ret = RET_ALLOW;
    for f in filters.iter().rev() {
        let r = f.run(d);
        if rank(r) < rank(ret) {
            ret = r;
        }
    }
    ret
}

/// Whether seccomp's GET_ACTION_AVAIL knows `action`.
pub fn action_known(action: u32) -> bool {
    matches!(
        action,
        RET_KILL_PROCESS
            | RET_KILL_THREAD
            | RET_TRAP
            | RET_ERRNO
            | RET_USER_NOTIF
            | RET_TRACE
            | RET_LOG
            | RET_ALLOW
    )
}

/// The system calls SECCOMP_MODE_STRICT allows: read, write, exit and
/// rt_sigreturn.
pub fn strict_allows(nr: u64) -> bool {
    matches!(nr, 0 | 1 | 60 | 15)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::sync::Arc;

    fn stmt(code: u16, k: u32) -> Insn {
        Insn {
            code,
            jt: 0,
            jf: 0,
            k,
        }
    }

    fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
        Insn { code, jt, jf, k }
    }

    /// The usual filter: check the arch, then refuse getpid with EPERM
    /// and kill on uname, allow the rest.
    fn usual() -> Vec<Insn> {
        alloc::vec![
            stmt(BPF_LD | BPF_W | BPF_ABS, 4),
            jump(BPF_JMP | BPF_JEQ | BPF_K, ARCH_X86_64, 1, 0),
            stmt(BPF_RET | BPF_K, RET_KILL_PROCESS),
            stmt(BPF_LD | BPF_W | BPF_ABS, 0),
            jump(BPF_JMP | BPF_JEQ | BPF_K, 39, 0, 1),
            stmt(BPF_RET | BPF_K, RET_ERRNO | 1),
            jump(BPF_JMP | BPF_JEQ | BPF_K, 63, 0, 1),
            stmt(BPF_RET | BPF_K, RET_KILL_THREAD),
            stmt(BPF_RET | BPF_K, RET_ALLOW),
        ]
    }

    fn call(nr: i32) -> Data {
        Data {
            nr,
            arch: ARCH_X86_64,
            ..Default::default()
        }
    }

    #[test]
    fn the_usual_filter_runs() {
        let f = check(usual()).unwrap();
        assert_eq!(f.run(&call(39)), RET_ERRNO | 1);
        assert_eq!(f.run(&call(63)), RET_KILL_THREAD);
        assert_eq!(f.run(&call(0)), RET_ALLOW);
        let other_arch = Data {
            arch: 0x4000_0003,
            ..call(0)
        };
        assert_eq!(f.run(&other_arch), RET_KILL_PROCESS);
    }

    #[test]
    fn arguments_scratch_and_arithmetic() {
        // Allow write only to fd 1 (args[0] low word at 16), via the
        // scratch memory and X.
        let f = check(alloc::vec![
            stmt(BPF_LD | BPF_W | BPF_ABS, 16),
            stmt(BPF_ST, 3),
            stmt(BPF_LDX | BPF_MEM, 3),
            stmt(BPF_MISC | BPF_TXA, 0),
            stmt(BPF_ALU | BPF_ADD | BPF_K, 1),
            jump(BPF_JMP | BPF_JEQ | BPF_K, 2, 0, 1),
            stmt(BPF_RET | BPF_K, RET_ALLOW),
            stmt(BPF_LD | BPF_W | BPF_ABS, 20),
            stmt(BPF_RET | BPF_A, 0),
        ])
        .unwrap();
        let mut d = call(1);
        d.args[0] = 1;
        assert_eq!(f.run(&d), RET_ALLOW);
        d.args[0] = 0x1234_5678_0000_0002;
        assert_eq!(f.run(&d), 0x1234_5678, "the high word of args[0]");
        // A division by a zero X ends the filter with 0 (KILL_THREAD).
        let div = check(alloc::vec![
            stmt(BPF_LDX | BPF_IMM, 0),
            stmt(BPF_ALU | BPF_DIV | BPF_X, 0),
            stmt(BPF_RET | BPF_K, RET_ALLOW),
        ])
        .unwrap();
        assert_eq!(div.run(&d), RET_KILL_THREAD);
    }

    #[test]
    fn what_linux_refuses_is_refused() {
        let bad = |p: Vec<Insn>| check(p).err();
        // One instruction, then a return: refused for that instruction.
        let refused = |i: Insn| check(alloc::vec![i, stmt(BPF_RET | BPF_A, 0)]) == Err(EINVAL);
        assert_eq!(bad(Vec::new()), Some(EINVAL));
        assert_eq!(
            bad(alloc::vec![stmt(BPF_RET | BPF_K, 0); MAX_INSNS + 1]),
            Some(EINVAL)
        );
        // Loads outside seccomp_data or unaligned; byte and half-word
        // loads; packet-relative loads.
        assert!(refused(stmt(BPF_LD | BPF_W | BPF_ABS, 64)));
        assert!(refused(stmt(BPF_LD | BPF_W | BPF_ABS, 2)));
        assert!(refused(stmt(BPF_LD | 0x10 | BPF_ABS, 0)));
        assert!(refused(stmt(BPF_LD | BPF_W | 0x40, 0)));
        // Jumps out of the program; no return at the end.
        assert!(refused(jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 5, 0)));
        assert!(refused(stmt(BPF_JMP | BPF_JA, 1)));
        assert_eq!(bad(alloc::vec![stmt(BPF_LD | BPF_IMM, 0)]), Some(EINVAL));
        // Division by a constant 0; scratch out of range; BPF_MOD and a
        // BPF_NEG with X, which are not in seccomp's list.
        assert!(refused(stmt(BPF_ALU | BPF_DIV | BPF_K, 0)));
        assert!(refused(stmt(BPF_ST, 16)));
        assert!(refused(stmt(BPF_ALU | 0x90 | BPF_K, 3)));
        assert!(refused(stmt(BPF_ALU | BPF_NEG | BPF_X, 0)));
        assert!(!refused(stmt(BPF_ALU | BPF_NEG, 0)));
        assert!(check(alloc::vec![stmt(BPF_RET | BPF_K, RET_ALLOW)]).is_ok());
    }

    #[test]
    fn the_most_restrictive_action_wins() {
        let ret = |v| Arc::new(check(alloc::vec![stmt(BPF_RET | BPF_K, v)]).unwrap());
        let d = call(0);
        assert_eq!(evaluate(&[], &d), RET_ALLOW);
        assert_eq!(
            evaluate(&[ret(RET_ALLOW), ret(RET_ERRNO | 5)], &d),
            RET_ERRNO | 5
        );
        assert_eq!(
            evaluate(&[ret(RET_TRAP | 1), ret(RET_ERRNO | 5)], &d),
            RET_TRAP | 1
        );
        assert_eq!(
            evaluate(&[ret(RET_LOG), ret(RET_KILL_PROCESS)], &d),
            RET_KILL_PROCESS
        );
        assert_eq!(
            evaluate(&[ret(RET_KILL_THREAD), ret(RET_TRACE)], &d),
            RET_KILL_THREAD
        );
        // Of two ERRNOs, the lower data wins (as Linux compares the whole
        // value's action part only, the first one seen, newest first).
        assert_eq!(
            evaluate(&[ret(RET_ERRNO | 1), ret(RET_ERRNO | 2)], &d),
            RET_ERRNO | 2
        );
        assert!(action_known(RET_LOG) && !action_known(0x1234_0000));
        assert!(strict_allows(0) && strict_allows(15) && !strict_allows(39));
    }
}
