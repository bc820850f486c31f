//! Control messages of sendmsg and recvmsg (runs of `struct cmsghdr` in
//! `msg_control`), with the rules of Linux's `__scm_send` and
//! `scm_detach_fds`: what a sender's control data asks to pass, and what a
//! receiver's buffer gets back for descriptors that came with the bytes.

use alloc::vec::Vec;

const EINVAL: i64 = 22;

pub const SOL_SOCKET: u32 = 1;
/// Descriptors passed (`int`s after the header).
pub const SCM_RIGHTS: u32 = 1;
/// The sender's pid, uid and gid (`struct ucred`).
pub const SCM_CREDENTIALS: u32 = 2;
/// The most descriptors one send may carry (Linux's SCM_MAX_FD).
pub const SCM_MAX_FD: usize = 253;
/// The most control data a send may give (Linux's `optmem_max`; more is
/// ENOBUFS).
pub const MAX_CONTROL: usize = 131_072;

/// `sizeof(struct cmsghdr)` on x86-64: a length (u64), a level and a type.
const HEADER: usize = 16;

fn align(n: usize) -> usize {
    n.saturating_add(7) & !7
}

/// The descriptors a sender's control data passes (SCM_RIGHTS, in order),
/// or EINVAL: a header whose length is short or runs past the buffer, a
/// type of SOL_SOCKET other than SCM_RIGHTS and SCM_CREDENTIALS, a
/// credentials message of the wrong size, or more than [`SCM_MAX_FD`]
/// descriptors. Other levels are skipped, as Linux's AF_UNIX skips them.
pub fn rights(control: &[u8]) -> Result<Vec<i32>, i64> {
    let mut fds = Vec::new();
    let mut at = 0usize;
    while control.len().saturating_sub(at) >= HEADER {
        let word = |i: usize, n: usize| -> u64 {
            let mut b = [0u8; 8];
            b[..n].copy_from_slice(&control[at + i..at + i + n]);
            u64::from_le_bytes(b)
        };
        let len = word(0, 8);
        let (level, ty) = (word(8, 4) as u32, word(12, 4) as u32);
        if len < HEADER as u64 || len > (control.len() - at) as u64 {
            return Err(EINVAL);
        }
        let len = len as usize;
        if level == SOL_SOCKET {
            match ty {
                SCM_RIGHTS => {
                    let n = (len - HEADER) / 4;
                    if fds.len() + n > SCM_MAX_FD {
                        return Err(EINVAL);
                    }
                    let data = &control[at + HEADER..at + HEADER + n * 4];
                    fds.extend(
                        data.chunks_exact(4)
                            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                    );
                }
                // Checked and sent by the kernel ([`credentials`]).
                SCM_CREDENTIALS if len == HEADER + 12 => {}
                _ => return Err(EINVAL),
            }
        }
        at = at.saturating_add(align(len));
    }
    Ok(fds)
}

/// A `struct ucred`: a sender's pid, user and group, as SCM_CREDENTIALS
/// carries them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ucred {
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Ucred {
    /// Linux's for a message whose sender is not known (no pid, the
    /// overflow ids).
    pub const UNKNOWN: Ucred = Ucred {
        pid: 0,
        uid: 65534,
        gid: 65534,
    };

    pub fn bytes(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&self.pid.to_le_bytes());
        b[4..8].copy_from_slice(&self.uid.to_le_bytes());
        b[8..].copy_from_slice(&self.gid.to_le_bytes());
        b
    }
}

/// The credentials a sender's control data claims (its last
/// SCM_CREDENTIALS message), for the kernel to check; malformed control
/// data is [`rights`]'s to refuse.
pub fn credentials(control: &[u8]) -> Option<Ucred> {
    let mut found = None;
    let mut at = 0usize;
    while control.len().saturating_sub(at) >= HEADER {
        let word = |i: usize| {
            control
                .get(at + i..at + i + 4)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u32::from_le_bytes)
        };
        let len = control
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_le_bytes) as usize;
        if len < HEADER || len > control.len() - at {
            break;
        }
        if word(8) == SOL_SOCKET && word(12) == SCM_CREDENTIALS && len == HEADER + 12 {
            found = Some(Ucred {
                pid: word(HEADER),
                uid: word(HEADER + 4),
                gid: word(HEADER + 8),
            });
        }
        at = at.saturating_add(align(len));
    }
    found
}

/// How many descriptors fit in a receiver's control buffer of
/// `controllen` bytes (one header, then `int`s).
pub fn room(controllen: usize) -> usize {
    controllen.saturating_sub(HEADER) / 4
}

/// The SCM_RIGHTS message for `fds` (those that fit, see [`room`]) as a
/// receiver's buffer of `controllen` bytes gets it: header, descriptors
/// and padding, cut to the buffer; empty when none fit.
pub fn rights_message(fds: &[i32], controllen: usize) -> Vec<u8> {
    if fds.is_empty() || room(controllen) == 0 {
        return Vec::new();
    }
    let fds = &fds[..fds.len().min(room(controllen))];
    let mut out = Vec::with_capacity(align(HEADER + fds.len() * 4));
    out.extend_from_slice(&((HEADER + fds.len() * 4) as u64).to_le_bytes());
    out.extend_from_slice(&SOL_SOCKET.to_le_bytes());
    out.extend_from_slice(&SCM_RIGHTS.to_le_bytes());
    for fd in fds {
        out.extend_from_slice(&fd.to_le_bytes());
    }
    out.resize(align(out.len()).min(controllen), 0);
    out
}

/// The messages of a sender's control data as (level, type, data), for
/// the levels other than SOL_SOCKET that a socket reads (IP_TTL, IP_TOS,
/// IPV6_HOPLIMIT, IPV6_TCLASS); EINVAL for a header whose length is short
/// or runs past the buffer.
pub fn messages(control: &[u8]) -> Result<Vec<(u32, u32, Vec<u8>)>, i64> {
    let mut out = Vec::new();
    let mut at = 0;
    while control.len().saturating_sub(at) >= HEADER {
        let word = |i: usize| {
            control[i..i + 4]
                .try_into()
                .map(u32::from_le_bytes)
                .unwrap_or(0)
        };
        let len = control[at..at + 8]
            .try_into()
            .map(u64::from_le_bytes)
            .unwrap_or(0) as usize;
        if len < HEADER || len > control.len() - at {
            return Err(EINVAL);
        }
        out.push((
            word(at + 8),
            word(at + 12),
            control[at + HEADER..at + len].to_vec(),
        ));
        at = at.saturating_add(align(len));
    }
    Ok(out)
}

/// Appends one control message to `out`, a receiver's buffer of
/// `controllen` bytes, as Linux's `put_cmsg`: cut to the room left (its
/// header's length says what was kept), none at all without room for a
/// header. False when it was cut or left out (the receiver's MSG_CTRUNC).
pub fn put(out: &mut Vec<u8>, controllen: usize, level: u32, ty: u32, data: &[u8]) -> bool {
    let left = controllen.saturating_sub(out.len());
    if left < HEADER {
        return false;
    }
    let start = out.len();
    let whole = HEADER + data.len();
    let kept = whole.min(left);
    out.extend_from_slice(&(kept as u64).to_le_bytes());
    out.extend_from_slice(&level.to_le_bytes());
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&data[..kept - HEADER]);
    // The padding to the next message, as far as the buffer goes.
    out.resize(start + align(whole).min(left), 0);
    kept == whole
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(level: u32, ty: u32, data: &[u8], len: Option<u64>) -> Vec<u8> {
        let mut m = Vec::new();
        let l = len.unwrap_or((HEADER + data.len()) as u64);
        m.extend_from_slice(&l.to_le_bytes());
        m.extend_from_slice(&level.to_le_bytes());
        m.extend_from_slice(&ty.to_le_bytes());
        m.extend_from_slice(data);
        m.resize(align(m.len()), 0);
        m
    }

    fn ints(v: &[i32]) -> Vec<u8> {
        v.iter().flat_map(|i| i.to_le_bytes()).collect()
    }

    #[test]
    fn credentials_are_the_last_ones_given() {
        let ucred = |pid: u32, uid: u32, gid: u32| Ucred { pid, uid, gid }.bytes();
        let mut c = message(SOL_SOCKET, SCM_RIGHTS, &ints(&[3]), None);
        assert_eq!(credentials(&c), None);
        c.extend(message(
            SOL_SOCKET,
            SCM_CREDENTIALS,
            &ucred(7, 1000, 100),
            None,
        ));
        assert_eq!(
            credentials(&c),
            Some(Ucred {
                pid: 7,
                uid: 1000,
                gid: 100
            })
        );
        c.extend(message(SOL_SOCKET, SCM_CREDENTIALS, &ucred(8, 0, 0), None));
        assert_eq!(credentials(&c).map(|u| u.pid), Some(8));
        // Another level's message of the same type is not credentials.
        let other = message(41, SCM_CREDENTIALS, &ucred(9, 0, 0), None);
        assert_eq!(credentials(&other), None);
        // A receiver's buffer gets it as Linux writes it.
        let mut out = Vec::new();
        assert!(put(
            &mut out,
            64,
            SOL_SOCKET,
            SCM_CREDENTIALS,
            &ucred(7, 1000, 100)
        ));
        assert_eq!(
            out,
            message(SOL_SOCKET, SCM_CREDENTIALS, &ucred(7, 1000, 100), None)
        );
    }

    #[test]
    fn rights_are_read_in_order_across_messages() {
        let mut c = message(SOL_SOCKET, SCM_RIGHTS, &ints(&[3, 4, 5]), None);
        c.extend(message(6, 77, b"tcp's", None));
        c.extend(message(SOL_SOCKET, SCM_CREDENTIALS, &[0; 12], None));
        c.extend(message(SOL_SOCKET, SCM_RIGHTS, &ints(&[9]), None));
        assert_eq!(rights(&c), Ok(alloc::vec![3, 4, 5, 9]));
        // Less than a header left over ends the run.
        c.extend([0u8; 8]);
        assert_eq!(rights(&c), Ok(alloc::vec![3, 4, 5, 9]));
        assert_eq!(rights(&[]), Ok(alloc::vec![]));
    }

    #[test]
    fn bad_control_data_is_einval() {
        let fds = ints(&[3]);
        let past = message(SOL_SOCKET, SCM_RIGHTS, &fds, Some(200));
        assert_eq!(rights(&past), Err(EINVAL), "longer than the buffer");
        let short = message(SOL_SOCKET, SCM_RIGHTS, &fds, Some(8));
        assert_eq!(rights(&short), Err(EINVAL), "shorter than a header");
        let unknown = message(SOL_SOCKET, 77, &fds, None);
        assert_eq!(rights(&unknown), Err(EINVAL));
        let creds = message(SOL_SOCKET, SCM_CREDENTIALS, &[0; 8], None);
        assert_eq!(rights(&creds), Err(EINVAL), "credentials are 12 bytes");
        let many: Vec<i32> = (0..254).collect();
        let too_many = message(SOL_SOCKET, SCM_RIGHTS, &ints(&many), None);
        assert_eq!(rights(&too_many), Err(EINVAL));
        let most = message(SOL_SOCKET, SCM_RIGHTS, &ints(&many[..253]), None);
        assert_eq!(rights(&most).map(|v| v.len()), Ok(253));
    }

    #[test]
    fn a_receiver_gets_what_fits() {
        // CMSG_SPACE(4) = 24 bytes hold two descriptors, as on Linux.
        assert_eq!(room(24), 2);
        assert_eq!(room(15), 0);
        let m = rights_message(&[7, 8, 9], 24);
        assert_eq!(m.len(), 24);
        assert_eq!(u64::from_le_bytes(m[..8].try_into().unwrap()), 24);
        assert_eq!(&m[16..], &ints(&[7, 8])[..]);
        // One descriptor: cmsg_len 20, padded to 24.
        let m = rights_message(&[7], 64);
        assert_eq!((m.len(), m[0]), (24, 20));
        assert!(rights_message(&[7], 16).is_empty());
        assert!(rights_message(&[], 64).is_empty());
    }

    #[test]
    fn put_cuts_as_linux_and_messages_reads_back() {
        let mut out = Vec::new();
        assert!(put(&mut out, 64, 41, 52, &64i32.to_le_bytes()));
        assert_eq!(out.len(), 24);
        // Room for a header and 2 of 4 bytes: cut, its length says 18.
        let mut cut = Vec::new();
        assert!(!put(&mut cut, 18, 41, 52, &64i32.to_le_bytes()));
        assert_eq!(cut.len(), 18);
        assert_eq!(u64::from_le_bytes(cut[..8].try_into().unwrap()), 18);
        // No room for a header: nothing.
        let mut none = Vec::new();
        assert!(!put(&mut none, 15, 41, 52, &[1]));
        assert!(none.is_empty());
        assert_eq!(
            messages(&out),
            Ok(alloc::vec![(41, 52, 64i32.to_le_bytes().to_vec())])
        );
        assert_eq!(messages(&out[..19]), Err(EINVAL));
    }
}
