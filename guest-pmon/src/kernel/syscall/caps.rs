//! capget and capset, and prctl's capability options (the bounding set,
//! the ambient set, keep-caps), with Linux's rules ([`pmon::caps`]).

use pmon::caps::{self, Caps};

use super::*;

/// The header's versions: 1 carries 32 bits of each set, 2 and 3 carry 64.
const VERSION_1: u32 = 0x1998_0330;
const VERSION_2: u32 = 0x2007_1026;
const VERSION_3: u32 = 0x2008_0522;

const PR_GET_KEEPCAPS: u64 = 7;
const PR_SET_KEEPCAPS: u64 = 8;
const PR_CAPBSET_READ: u64 = 23;
const PR_CAPBSET_DROP: u64 = 24;
const PR_GET_SECUREBITS: u64 = 27;
const PR_CAP_AMBIENT: u64 = 47;

impl Kernel {
    /// The header's version: how many 32-bit words of each set the data
    /// holds. An unknown one is answered with the version this kernel
    /// prefers, written into the header, and EINVAL (libcap asks so).
    fn cap_words(&mut self, pid: Pid, header: u64) -> Result<usize, Errno> {
        let space = self.space_mut(pid)?;
        match uaccess::read_u32(space, header)? {
            VERSION_1 => Ok(1),
            VERSION_2 | VERSION_3 => Ok(2),
            _ => {
                uaccess::write_u32(space, header, VERSION_3)?;
                Err(EINVAL)
            }
        }
    }

    /// capget: the sets of thread `header.pid` (0: the caller), as
    /// (effective, permitted, inheritable) triples of 32-bit words.
    pub(super) fn sys_capget(&mut self, tid: Tid, header: u64, data: u64) -> Ret {
        let pid = self.pid_of(tid);
        let words = match self.cap_words(pid, header) {
            Ok(w) => w,
            // Asking for the version alone is not an error.
            Err(EINVAL) if data == 0 => return Ret::Val(0),
            Err(e) => return err(e),
        };
        if data == 0 {
            return Ret::Val(0);
        }
        let target = match self
            .space_mut(pid)
            .and_then(|s| uaccess::read_u32(s, header + 4))
        {
            Ok(t) => t as i32,
            Err(e) => return err(e),
        };
        if target < 0 {
            return err(EINVAL);
        }
        let caps = if target == 0 {
            self.procs.get(&pid).map(|p| p.cred.caps)
        } else if self.is_outside(target as u32) {
            // The parent outside: root's.
            Some(Caps::default())
        } else {
            self.threads
                .get(&(target as Tid))
                .and_then(|t| self.procs.get(&t.pid))
                .map(|p| p.cred.caps)
        };
        let Some(caps) = caps else {
            return err(ESRCH);
        };
        let mut out = Vec::with_capacity(12 * words);
        for word in 0..words {
            for set in [caps.effective, caps.permitted, caps.inheritable] {
                out.extend_from_slice(&((set >> (32 * word)) as u32).to_le_bytes());
            }
        }
        val(self
            .space_mut(pid)
            .and_then(|s| uaccess::write(s, data, &out).map(|_| 0)))
    }

    /// capset: the caller's own sets only (EPERM for another thread's).
    pub(super) fn sys_capset(&mut self, tid: Tid, header: u64, data: u64) -> Ret {
        let pid = self.pid_of(tid);
        let words = match self.cap_words(pid, header) {
            Ok(w) => w,
            Err(e) => return err(e),
        };
        let raw = match self.space_mut(pid).and_then(|s| {
            let target = uaccess::read_u32(s, header + 4)? as i32;
            Ok((target, uaccess::read_vec(s, data, 12 * words)?))
        }) {
            Ok((target, _)) if target != 0 && target as Tid != tid => return err(EPERM),
            Ok((_, raw)) => raw,
            Err(e) => return err(e),
        };
        // Each set: its low word from the first triple, its high word
        // from the second (none in version 1: the high capabilities go).
        let set = |i: usize| {
            (0..words).fold(0u64, |v, word| {
                let at = 12 * word + 4 * i;
                let w = u32::from_le_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]);
                v | (w as u64) << (32 * word)
            })
        };
        let Some(p) = self.procs.get_mut(&pid) else {
            return err(ESRCH);
        };
        val(p.cred.caps.set(set(0), set(1), set(2)).map(|_| 0))
    }

    /// prctl's capability options, or None for another option.
    pub(super) fn prctl_caps(&mut self, pid: Pid, a: [u64; 6]) -> Option<Ret> {
        let (option, arg) = (a[0], a[1]);
        if ![
            PR_GET_KEEPCAPS,
            PR_SET_KEEPCAPS,
            PR_CAPBSET_READ,
            PR_CAPBSET_DROP,
            PR_GET_SECUREBITS,
            PR_CAP_AMBIENT,
        ]
        .contains(&option)
        {
            return None;
        }
        let Some(c) = self.procs.get_mut(&pid).map(|p| &mut p.cred.caps) else {
            return Some(err(ESRCH));
        };
        let r = match option {
            PR_GET_KEEPCAPS => Ok(c.keep as i64),
            PR_SET_KEEPCAPS if arg <= 1 => {
                c.keep = arg == 1;
                Ok(0)
            }
            PR_CAPBSET_READ => c.bound(arg).map(|b| b as i64),
            PR_CAPBSET_DROP => c.drop_bound(arg).map(|_| 0),
            PR_GET_SECUREBITS => Ok(if c.keep {
                caps::SECBIT_KEEP_CAPS as i64
            } else {
                0
            }),
            // The unused arguments must be 0 (Linux: EINVAL).
            PR_CAP_AMBIENT if a[3] == 0 && a[4] == 0 => c.ambient_op(arg, a[2]),
            _ => Err(EINVAL),
        };
        Some(match r {
            Ok(v) => Ret::Val(v),
            Err(e) => err(e),
        })
    }
}
