//! Hypercall arguments in guest RAM: structs and byte ranges a guest
//! passes by guest-physical address, bounds-checked, with a sentence for
//! what was wrong.

use vm_memory::{Bytes, GuestAddress};
use zerocopy::{FromBytes, IntoBytes};

use crate::memory::GuestRam;

pub struct GuestArgs<'a>(pub &'a GuestRam);

impl GuestArgs<'_> {
    /// Reads a hypercall argument struct from guest RAM, bounds-checked.
    pub fn read_arg<T: FromBytes>(&self, what: &str, addr: u32) -> Result<T, String> {
        let mut buf = vec![0u8; std::mem::size_of::<T>()];
        self.0
            .read_slice(&mut buf, GuestAddress(addr as u64))
            .map_err(|_| format!("passed a {what} argument at {addr:#x}, outside guest RAM"))?;
        T::read_from_bytes(&buf).map_err(|_| format!("passed a malformed {what} argument"))
    }

    /// Reads `len` bytes of guest memory, at most `max`.
    pub fn read_bytes(&self, what: &str, addr: u64, len: u64, max: u64) -> Result<Vec<u8>, String> {
        if len > max {
            return Err(format!(
                "passed a {what} of {len} bytes; the limit is {max}"
            ));
        }
        let mut buf = vec![0u8; len as usize];
        self.0
            .read_slice(&mut buf, GuestAddress(addr))
            .map_err(|_| format!("passed a {what} at {addr:#x}+{len}, outside guest RAM"))?;
        Ok(buf)
    }

    pub fn write_bytes(&self, what: &str, addr: u64, bytes: &[u8]) -> Result<(), String> {
        self.0.write_slice(bytes, GuestAddress(addr)).map_err(|_| {
            format!(
                "passed a {what} at {addr:#x}+{}, outside guest RAM",
                bytes.len()
            )
        })
    }

    pub fn write_arg<T: IntoBytes + zerocopy::Immutable>(
        &self,
        what: &str,
        addr: u32,
        value: &T,
    ) -> Result<(), String> {
        self.write_bytes(what, addr as u64, value.as_bytes())
    }

    /// Reads `len` bytes of guest text (console line, panic message).
    pub fn read_text(&self, what: &str, addr: u64, len: u64, max: u64) -> Result<String, String> {
        if len > max {
            return Err(format!("sent a {what} of {len} bytes; the limit is {max}"));
        }
        let mut buf = vec![0u8; len as usize];
        self.0
            .read_slice(&mut buf, GuestAddress(addr))
            .map_err(|_| format!("sent a {what} at {addr:#x}+{len}, outside guest RAM"))?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ram() -> GuestRam {
        GuestRam::from_ranges(&[(GuestAddress(0), 0x4000)]).expect("guest RAM")
    }

    #[test]
    fn arguments_are_bounds_checked_with_a_sentence() {
        let ram = ram();
        let args = GuestArgs(&ram);
        args.write_arg("test", 0x100, &0x1122_3344u32)
            .expect("in RAM");
        assert_eq!(args.read_arg::<u32>("test", 0x100), Ok(0x1122_3344));
        let e = args
            .read_arg::<u64>("probe", 0x3ffc)
            .expect_err("crosses the end");
        assert!(
            e.contains("probe argument at 0x3ffc, outside guest RAM"),
            "{e}"
        );
        let e = args
            .read_bytes("path", 0, 5000, 4096)
            .expect_err("too long");
        assert!(e.contains("limit is 4096"), "{e}");
        assert!(args.write_bytes("buffer", 0x5000, b"x").is_err());
        args.write_bytes("text", 0x200, b"hello").expect("in RAM");
        assert_eq!(args.read_text("line", 0x200, 5, 16).as_deref(), Ok("hello"));
    }
}
