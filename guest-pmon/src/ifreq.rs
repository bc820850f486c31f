//! The interface ioctls on a socket (`struct ifreq`, `struct ifconf`), as
//! ifconfig, net-tools, `hostname -i` and older libraries ask Linux about
//! its network interfaces instead of through netlink.
//!
//! The same one interface that `pmon::netlink` reports: `lo`, index 1,
//! 127.0.0.1/8, MTU 65536. Decided: requests that change an interface
//! (SIOCSIF*) are EPERM: no process here administers the network, and the
//! loopback is all of it. A name that is not `lo` is ENODEV, as Linux
//! answers for an interface that does not exist.

use crate::netlink::{LO_FLAGS, LO_INDEX, LO_MTU, LO_NAME, LO_TXQLEN};

/// `sizeof(struct ifreq)` on x86-64: a 16-byte name and a 24-byte union.
pub const IFREQ: usize = 40;
/// `sizeof(struct ifconf)`: the length, padding, the buffer's address.
pub const IFCONF: usize = 16;

pub const SIOCGIFNAME: u64 = 0x8910;
pub const SIOCGIFCONF: u64 = 0x8912;
const SIOCGIFFLAGS: u64 = 0x8913;
const SIOCSIFFLAGS: u64 = 0x8914;
const SIOCGIFADDR: u64 = 0x8915;
const SIOCSIFADDR: u64 = 0x8916;
const SIOCGIFDSTADDR: u64 = 0x8917;
const SIOCSIFDSTADDR: u64 = 0x8918;
const SIOCGIFBRDADDR: u64 = 0x8919;
const SIOCSIFBRDADDR: u64 = 0x891a;
const SIOCGIFNETMASK: u64 = 0x891b;
const SIOCSIFNETMASK: u64 = 0x891c;
const SIOCGIFMETRIC: u64 = 0x891d;
const SIOCSIFMETRIC: u64 = 0x891e;
const SIOCGIFMTU: u64 = 0x8921;
const SIOCSIFMTU: u64 = 0x8922;
const SIOCSIFNAME: u64 = 0x8923;
const SIOCSIFHWADDR: u64 = 0x8924;
const SIOCGIFHWADDR: u64 = 0x8927;
pub const SIOCGIFINDEX: u64 = 0x8933;
const SIOCGIFTXQLEN: u64 = 0x8942;
const SIOCSIFTXQLEN: u64 = 0x8943;
const SIOCGIFMAP: u64 = 0x8970;
const SIOCSIFMAP: u64 = 0x8971;

const EPERM: i32 = 1;
const ENODEV: i32 = 19;
const EADDRNOTAVAIL: i32 = 99;

const AF_INET: u16 = 2;
const ARPHRD_LOOPBACK: u16 = 772;
const LOOPBACK: [u8; 4] = [127, 0, 0, 1];
const NETMASK: [u8; 4] = [255, 0, 0, 0];

/// Whether `req` is one of the interface ioctls this module answers on a
/// socket (SIOCGIFCONF is answered by [`conf`], the rest by [`answer`]).
pub fn is_interface_request(req: u64) -> bool {
    const ALL: [u64; 24] = [
        SIOCGIFNAME,
        SIOCGIFCONF,
        SIOCGIFFLAGS,
        SIOCSIFFLAGS,
        SIOCGIFADDR,
        SIOCSIFADDR,
        SIOCGIFDSTADDR,
        SIOCSIFDSTADDR,
        SIOCGIFBRDADDR,
        SIOCSIFBRDADDR,
        SIOCGIFNETMASK,
        SIOCSIFNETMASK,
        SIOCGIFMETRIC,
        SIOCSIFMETRIC,
        SIOCGIFMTU,
        SIOCSIFMTU,
        SIOCSIFNAME,
        SIOCSIFHWADDR,
        SIOCGIFHWADDR,
        SIOCGIFINDEX,
        SIOCGIFTXQLEN,
        SIOCSIFTXQLEN,
        SIOCGIFMAP,
        SIOCSIFMAP,
    ];
    ALL.contains(&req)
}

/// The name in a request, up to its NUL (Linux ends it at byte 15 itself).
fn name(ifr: &[u8; IFREQ]) -> &[u8] {
    let n = &ifr[..15];
    let end = n.iter().position(|&c| c == 0).unwrap_or(n.len());
    &n[..end]
}

/// A `struct sockaddr_in` of `addr` at the union, the rest of it zeroed.
fn put_inet(ifr: &mut [u8; IFREQ], addr: [u8; 4]) {
    ifr[16..32].fill(0);
    ifr[16..18].copy_from_slice(&AF_INET.to_le_bytes());
    ifr[20..24].copy_from_slice(&addr);
}

/// Answers interface request `req` (not SIOCGIFCONF) in place in `ifr`,
/// the `struct ifreq` the caller read from the process; the caller writes
/// it back whole on success, as Linux copies the whole structure back.
pub fn answer(req: u64, ifr: &mut [u8; IFREQ]) -> Result<(), i32> {
    if req == SIOCGIFNAME {
        let index = u32::from_le_bytes([ifr[16], ifr[17], ifr[18], ifr[19]]);
        if index != LO_INDEX {
            return Err(ENODEV);
        }
        ifr[..16].fill(0);
        ifr[..LO_NAME.len()].copy_from_slice(LO_NAME);
        return Ok(());
    }
    let asked = name(ifr);
    if asked != LO_NAME {
        // An alias label of lo ("lo:1") names the device but no address.
        let alias = asked.starts_with(b"lo:");
        let address_request = matches!(
            req,
            SIOCGIFADDR | SIOCGIFDSTADDR | SIOCGIFBRDADDR | SIOCGIFNETMASK
        );
        return Err(if alias && address_request {
            EADDRNOTAVAIL
        } else {
            ENODEV
        });
    }
    match req {
        SIOCGIFINDEX => ifr[16..20].copy_from_slice(&LO_INDEX.to_le_bytes()),
        // A short: IFF_LOWER_UP (bit 16) does not fit, as in Linux's answer.
        SIOCGIFFLAGS => {
            ifr[16..18].copy_from_slice(&(LO_FLAGS as u16).to_le_bytes());
        }
        SIOCGIFADDR | SIOCGIFDSTADDR => put_inet(ifr, LOOPBACK),
        // The loopback has no broadcast address: Linux answers 0.0.0.0.
        SIOCGIFBRDADDR => put_inet(ifr, [0; 4]),
        SIOCGIFNETMASK => put_inet(ifr, NETMASK),
        SIOCGIFMETRIC => ifr[16..20].fill(0),
        SIOCGIFMTU => ifr[16..20].copy_from_slice(&LO_MTU.to_le_bytes()),
        SIOCGIFTXQLEN => ifr[16..20].copy_from_slice(&LO_TXQLEN.to_le_bytes()),
        // The family is the hardware type; lo's address is six zeros.
        SIOCGIFHWADDR => {
            ifr[16..32].fill(0);
            ifr[16..18].copy_from_slice(&ARPHRD_LOOPBACK.to_le_bytes());
        }
        // struct ifmap: no memory, I/O base, IRQ, DMA or port for lo.
        SIOCGIFMAP => ifr[16..40].fill(0),
        _ => return Err(EPERM),
    }
    Ok(())
}

/// SIOCGIFCONF: the interfaces with an IPv4 address, one `struct ifreq`
/// each (the name and a `sockaddr_in` of the address), into a buffer of
/// `len` bytes. Returns the records to write and the length to report:
/// with no buffer (`has_buf` false) only the length all records need;
/// otherwise as many whole records as fit, as Linux's `inet_gifconf`.
pub fn conf(has_buf: bool, len: i32) -> (alloc::vec::Vec<u8>, i32) {
    let mut lo = [0u8; IFREQ];
    lo[..LO_NAME.len()].copy_from_slice(LO_NAME);
    put_inet(&mut lo, LOOPBACK);
    if !has_buf {
        return (alloc::vec::Vec::new(), IFREQ as i32);
    }
    if len < IFREQ as i32 {
        return (alloc::vec::Vec::new(), 0);
    }
    (lo.to_vec(), IFREQ as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &[u8]) -> [u8; IFREQ] {
        let mut r = [0xaau8; IFREQ];
        r[..16].fill(0);
        r[..name.len()].copy_from_slice(name);
        r
    }

    #[test]
    fn lo_answers_as_linux() {
        let mut r = request(b"lo");
        answer(SIOCGIFFLAGS, &mut r).unwrap();
        assert_eq!(u16::from_le_bytes([r[16], r[17]]), 0x49);
        answer(SIOCGIFADDR, &mut r).unwrap();
        assert_eq!(&r[16..24], &[2, 0, 0, 0, 127, 0, 0, 1]);
        assert_eq!(&r[24..32], &[0; 8]);
        answer(SIOCGIFNETMASK, &mut r).unwrap();
        assert_eq!(&r[20..24], &[255, 0, 0, 0]);
        answer(SIOCGIFBRDADDR, &mut r).unwrap();
        assert_eq!(&r[20..24], &[0; 4]);
        answer(SIOCGIFMTU, &mut r).unwrap();
        assert_eq!(i32::from_le_bytes([r[16], r[17], r[18], r[19]]), 65536);
        answer(SIOCGIFHWADDR, &mut r).unwrap();
        assert_eq!(u16::from_le_bytes([r[16], r[17]]), 772);
        assert_eq!(&r[18..24], &[0; 6]);
        answer(SIOCGIFINDEX, &mut r).unwrap();
        assert_eq!(r[16], 1);
        assert_eq!(&r[..3], b"lo\0");
    }

    #[test]
    fn index_to_name() {
        let mut r = [0xffu8; IFREQ];
        r[16..20].copy_from_slice(&1u32.to_le_bytes());
        answer(SIOCGIFNAME, &mut r).unwrap();
        assert_eq!(&r[..16], b"lo\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
        r[16..20].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(answer(SIOCGIFNAME, &mut r), Err(ENODEV));
    }

    #[test]
    fn other_names_and_changes_are_refused() {
        let mut r = request(b"eth0");
        assert_eq!(answer(SIOCGIFFLAGS, &mut r), Err(ENODEV));
        let mut r = request(b"lo:1");
        assert_eq!(answer(SIOCGIFADDR, &mut r), Err(EADDRNOTAVAIL));
        assert_eq!(answer(SIOCGIFMTU, &mut r), Err(ENODEV));
        // A name of 16 bytes without a NUL is read up to its 15th, as Linux.
        let mut r = [b'l'; IFREQ];
        assert_eq!(answer(SIOCGIFFLAGS, &mut r), Err(ENODEV));
        for req in [
            SIOCSIFFLAGS,
            SIOCSIFADDR,
            SIOCSIFMTU,
            SIOCSIFNAME,
            SIOCSIFMAP,
        ] {
            let mut r = request(b"lo");
            assert!(is_interface_request(req));
            assert_eq!(answer(req, &mut r), Err(EPERM));
        }
        assert!(!is_interface_request(0x5401));
        assert!(!is_interface_request(0x8905));
    }

    #[test]
    fn conf_lists_lo_when_it_fits() {
        assert_eq!(conf(false, 0), (alloc::vec::Vec::new(), 40));
        assert_eq!(conf(true, 39).1, 0);
        let (recs, len) = conf(true, 400);
        assert_eq!(len, 40);
        assert_eq!(&recs[..3], b"lo\0");
        assert_eq!(&recs[16..24], &[2, 0, 0, 0, 127, 0, 0, 1]);
    }
}
