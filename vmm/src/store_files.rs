//! Whole files on a storage component, read and written by a processor's
//! VMM itself for `lego cp` and for `lego run`'s upload of a program
//! (`lego_control::ProcessorRequest::{Put, Get, Exists}`), with the same
//! stateless requests the processor monitor sends (`lego_proto::storage`).

use std::sync::Arc;

use lego_proto::storage::*;

use crate::fabric::Fabric;

/// A storage component reached through this VMM's fabric.
pub struct StoreFiles<'a> {
    pub fabric: &'a Arc<Fabric>,
    pub id: u32,
    /// The vNode whose namespace the paths are in.
    pub vnode: u32,
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The sentence for an errno a storage call returned.
pub fn errno_text(errno: i32) -> String {
    std::io::Error::from_raw_os_error(errno).to_string()
}

impl StoreFiles<'_> {
    /// One request and its reply: (head, data) or a sentence.
    fn call(
        &self,
        head: StoreRequest,
        path: &[u8],
        path2: &[u8],
        data: &[u8],
    ) -> Result<(StoreReply, Vec<u8>), String> {
        let head = StoreRequest {
            now: now_ns(),
            vnode: self.vnode,
            ..head
        };
        let request = encode_request(&head, path, path2, data);
        let reply = self
            .fabric
            .start_patient_call(self.id, &request)
            .and_then(crate::fabric::PendingCall::wait)
            .map_err(|why| format!("storage component {}: {why}", self.id))?;
        let (h, d) = decode_reply(&reply).map_err(|e| {
            format!(
                "storage component {} answered something that is not a reply ({e:?})",
                self.id
            )
        })?;
        Ok((h, d.to_vec()))
    }

    /// A request that names only an operation and paths (sync, rename,
    /// unlink, statfs): its reply's errno checked, its data.
    fn op(&self, op: u32, path: &[u8], path2: &[u8]) -> Result<(i32, Vec<u8>), String> {
        let (h, data) = self.call(
            StoreRequest {
                op,
                ..Default::default()
            },
            path,
            path2,
            &[],
        )?;
        Ok((h.errno, data))
    }

    /// stat of `path`: Ok(None) when it does not exist.
    pub fn stat(&self, path: &[u8]) -> Result<Option<StoreStat>, String> {
        let (h, _) = self.call(
            StoreRequest {
                op: OP_STAT,
                flags: FLAG_FOLLOW,
                ..Default::default()
            },
            path,
            &[],
            &[],
        )?;
        match h.errno {
            OK => Ok(Some(h.stat)),
            ENOENT | ENOTDIR => Ok(None),
            e => Err(errno_text(e)),
        }
    }

    /// (bytes of data blocks, inodes) under the vNode's directory.
    pub fn usage(&self) -> Result<(u64, u64), String> {
        let (errno, data) = self.op(OP_STATFS, &[], &[])?;
        if errno != OK {
            return Err(errno_text(errno));
        }
        let s = <StoreStatFs as zerocopy::FromBytes>::read_from_prefix(&data)
            .map(|(s, _)| s)
            .map_err(|_| format!("storage component {} sent a short statfs", self.id))?;
        Ok((s.ns_blocks.saturating_mul(s.block_size), s.ns_files))
    }

    /// Makes every directory above `path` that is missing (mkdir -p).
    fn make_parents(&self, path: &[u8]) -> Result<(), String> {
        let mut at = 1;
        while let Some(i) = path[at..].iter().position(|&b| b == b'/') {
            let dir = &path[..at + i];
            let (h, _) = self.call(
                StoreRequest {
                    op: OP_MKDIR,
                    mode: 0o755,
                    ..Default::default()
                },
                dir,
                &[],
                &[],
            )?;
            if h.errno != OK && h.errno != EEXIST {
                return Err(format!(
                    "cannot make directory {}: {}",
                    String::from_utf8_lossy(dir),
                    errno_text(h.errno)
                ));
            }
            at += i + 1;
        }
        Ok(())
    }

    /// Writes a whole file: the data goes to a hidden name next to `path`
    /// that is renamed over it once everything is on the disk, so a
    /// reader (a run of the same program) never sees half a file.
    pub fn put(
        &self,
        path: &[u8],
        mode: u32,
        mut next_chunk: impl FnMut() -> Result<Option<Vec<u8>>, String>,
    ) -> Result<u64, String> {
        if path.first() != Some(&b'/') || path.len() >= PATH_MAX {
            return Err("the path must be absolute and shorter than 4096 bytes".into());
        }
        self.make_parents(path)?;
        let mut tmp = path.to_vec();
        tmp.extend_from_slice(format!(".lego-put-{:08x}", fastrand::u32(..)).as_bytes());
        let (h, _) = self.call(
            StoreRequest {
                op: OP_CREATE,
                flags: FLAG_CREATE | FLAG_EXCL,
                mode: mode & 0o7777,
                ..Default::default()
            },
            &tmp,
            &[],
            &[],
        )?;
        if h.errno != OK {
            return Err(format!(
                "cannot create {}: {}",
                String::from_utf8_lossy(path),
                errno_text(h.errno)
            ));
        }
        let ino = h.stat.ino;
        let result = self.fill(ino, &mut next_chunk).and_then(|size| {
            let (errno, _) = self.op(OP_SYNC, &[], &[])?;
            if errno != OK {
                return Err(errno_text(errno));
            }
            let (errno, _) = self.op(OP_RENAME, &tmp, path)?;
            if errno != OK {
                return Err(format!(
                    "cannot put {} in place: {}",
                    String::from_utf8_lossy(path),
                    errno_text(errno)
                ));
            }
            // The rename too is on the disk before the copy is reported done.
            self.op(OP_SYNC, &[], &[])?;
            Ok(size)
        });
        if result.is_err() {
            let _ = self.op(OP_UNLINK, &tmp, &[]);
        }
        result
    }

    fn fill(
        &self,
        ino: u64,
        next_chunk: &mut impl FnMut() -> Result<Option<Vec<u8>>, String>,
    ) -> Result<u64, String> {
        let mut offset = 0u64;
        while let Some(chunk) = next_chunk()? {
            for piece in chunk.chunks(MAX_IO) {
                let (h, _) = self.call(
                    StoreRequest {
                        op: OP_WRITE,
                        ino,
                        offset,
                        ..Default::default()
                    },
                    &[],
                    &[],
                    piece,
                )?;
                if h.errno != OK {
                    return Err(format!("a write failed: {}", errno_text(h.errno)));
                }
                offset += piece.len() as u64;
            }
        }
        Ok(offset)
    }

    /// Reads a whole file, handing it out in pieces of at most 1 MiB.
    pub fn get(
        &self,
        path: &[u8],
        mut out: impl FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<u64, String> {
        let Some(st) = self.stat(path)? else {
            return Err(format!("{}: no such file", String::from_utf8_lossy(path)));
        };
        if st.mode & 0o170000 != 0o100000 {
            return Err(format!(
                "{} is not a regular file",
                String::from_utf8_lossy(path)
            ));
        }
        let mut offset = 0u64;
        let mut piece = Vec::new();
        loop {
            let (h, data) = self.call(
                StoreRequest {
                    op: OP_READ,
                    ino: st.ino,
                    offset,
                    len: MAX_IO as u64,
                    ..Default::default()
                },
                &[],
                &[],
                &[],
            )?;
            if h.errno != OK {
                return Err(format!("a read failed: {}", errno_text(h.errno)));
            }
            if data.is_empty() {
                break;
            }
            offset += data.len() as u64;
            piece.extend_from_slice(&data);
            if piece.len() >= 1 << 20 {
                out(&piece)?;
                piece.clear();
            }
        }
        if !piece.is_empty() {
            out(&piece)?;
        }
        Ok(offset)
    }
}
