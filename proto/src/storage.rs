//! The storage monitor's requests and replies, carried as the payload of
//! Data frames to a storage component.
//!
//! A request is a [`StoreRequest`] followed by `path_len` bytes of path,
//! `path2_len` bytes of a second path (rename's target, symlink's target, a hard link's new name)
//! and `data_len` bytes of data (a write). A reply is a [`StoreReply`]
//! followed by `data_len` bytes (a read's bytes, directory entries, a
//! link's target).
//!
//! Requests are stateless, as in LegoOS: the storage component keeps no
//! open files, descriptors or offsets (the processor monitor does). A
//! namespace request carries the full path (absolute and normalized: no
//! `.` or `..`, no `//`); a data request carries the file's inode number,
//! which is stable and never reused, so it follows the file through a
//! rename; and every offset is absolute. A restarted storage component
//! serves the open files of a program that ran before it died.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// [`StoreRequest::magic`]: "LGST" and the protocol's version.
/// Version 2: requests carry the caller's owner and group, stats the
/// file's, and [`OP_CHOWN`].
pub const STORE_MAGIC: u32 = u32::from_le_bytes(*b"LGS2");

/// Metadata of `path` ([`FLAG_FOLLOW`]: through a final symbolic link).
pub const OP_STAT: u32 = 1;
/// Metadata of inode `ino`.
pub const OP_STAT_INO: u32 = 2;
/// open with O_CREAT: a regular file at `path` (permission bits `mode`),
/// or the one there ([`FLAG_EXCL`]: EEXIST; [`FLAG_TRUNC`]: emptied).
/// Without [`FLAG_CREATE`] only the truncation is done (open with O_TRUNC
/// of an existing file).
pub const OP_CREATE: u32 = 3;
pub const OP_MKDIR: u32 = 4;
pub const OP_RMDIR: u32 = 5;
pub const OP_UNLINK: u32 = 6;
/// Rename `path` to `path2` ([`FLAG_NOREPLACE`]: EEXIST if it exists).
pub const OP_RENAME: u32 = 7;
/// A symbolic link at `path` whose target is `path2`.
pub const OP_SYMLINK: u32 = 8;
pub const OP_READLINK: u32 = 9;
/// Permission bits of `path` (or of `ino` when `path_len` is 0) to `mode`.
pub const OP_CHMOD: u32 = 10;
/// Times of `path` (or of `ino` when `path_len` is 0): [`FLAG_ATIME`]
/// sets `atime`, [`FLAG_MTIME`] sets `mtime` (ns since 1970). A path's
/// last symbolic link is followed only with [`FLAG_FOLLOW`]
/// (utimensat's AT_SYMLINK_NOFOLLOW names the link itself).
pub const OP_UTIMES: u32 = 11;
/// The size of `ino` becomes `offset`.
pub const OP_TRUNCATE: u32 = 12;
/// `len` bytes of `ino` from `offset` (fewer at the end of the file).
pub const OP_READ: u32 = 13;
/// The `data_len` bytes that follow, to `ino` at `offset` ([`FLAG_APPEND`]:
/// at its end); the reply's `value` is the offset written at, its `stat`
/// the file after the write.
pub const OP_WRITE: u32 = 14;
/// Entries of directory `ino` after `offset` (a cookie, 0 first), at most
/// `len` bytes of [`DirEntryHead`]s each followed by its name; the reply's
/// `value` is the cookie to go on from (the entries are over when none
/// come).
pub const OP_READDIR: u32 = 15;
/// Everything acknowledged before is on the disk (fsync, fdatasync, sync).
pub const OP_SYNC: u32 = 16;
/// The file system's size; the reply carries a [`StoreStatFs`].
pub const OP_STATFS: u32 = 17;
/// The component's counters; the reply carries a [`StoreStats`].
pub const OP_STATS: u32 = 18;
/// A hard link: a new name `path2` for the file or symbolic link at `path`
/// ([`FLAG_FOLLOW`]: through a final symbolic link); the reply's `stat` is
/// the file's, with its new link count.
pub const OP_LINK: u32 = 19;
/// A named pipe or an AF_UNIX socket's file at `path`: `mode` holds its
/// type (S_IFIFO or S_IFSOCK) and permission bits. Its name and metadata
/// live on storage; its bytes (a pipe) or its socket are the processor's.
pub const OP_MKNOD: u32 = 20;
/// chown: the owner of `path` (or of `ino` when `path_len` is 0) becomes
/// `offset`, its group `len` (u32::MAX: unchanged; [`FLAG_FOLLOW`]:
/// through a final symbolic link). The processor has checked that the
/// caller may.
pub const OP_CHOWN: u32 = 21;
/// Where `path` leads when storage's own symbolic links on it end at a
/// name storage lacks ([`FLAG_FOLLOW`]: its last name's link too): the
/// reply's data is the path reached, the links resolved (a link to the
/// host's `/usr/share/zoneinfo/UTC` or to `/dev/stdout`), which the
/// processor looks up among the files it serves. EINVAL when no link was
/// followed, EEXIST when the path names a file storage has.
pub const OP_LEADS_TO: u32 = 22;
/// [`StoreReply::value`] of an ENOENT reply whose walk followed a
/// symbolic link: the name may lie off storage, where [`OP_LEADS_TO`]
/// says (any other ENOENT's value is 0, and the processor asks nothing).
pub const ENOENT_PAST_LINK: u64 = 1;

pub const FLAG_FOLLOW: u32 = 1;
pub const FLAG_CREATE: u32 = 2;
pub const FLAG_EXCL: u32 = 4;
pub const FLAG_TRUNC: u32 = 8;
pub const FLAG_NOREPLACE: u32 = 16;
pub const FLAG_APPEND: u32 = 32;
pub const FLAG_ATIME: u32 = 64;
pub const FLAG_MTIME: u32 = 128;
/// With [`OP_UTIMES`]: the file's ctime stays (an atime moved by a read,
/// which Linux does not count as a change of the inode).
pub const FLAG_KEEP_CTIME: u32 = 256;

/// Most bytes one read or write carries: what fits a guest's fabric
/// buffer with the headers. Larger calls are cut by the processor.
pub const MAX_IO: usize = 64 * 1024;
/// Longest path, as Linux's PATH_MAX (with its NUL).
pub const PATH_MAX: usize = 4096;
/// Longest name of one directory entry.
pub const NAME_MAX: usize = 255;

/// [`StoreReply::errno`]: 0, or the errno Linux gives for the call.
pub const OK: i32 = 0;
pub const EPERM: i32 = 1;
pub const ENOENT: i32 = 2;
pub const EIO: i32 = 5;
pub const EBADF: i32 = 9;
pub const EACCES: i32 = 13;
pub const EEXIST: i32 = 17;
pub const EXDEV: i32 = 18;
pub const ENOTDIR: i32 = 20;
pub const EISDIR: i32 = 21;
pub const EINVAL: i32 = 22;
pub const EFBIG: i32 = 27;
pub const ENOSPC: i32 = 28;
pub const EROFS: i32 = 30;
pub const EMLINK: i32 = 31;
pub const ENAMETOOLONG: i32 = 36;
pub const ENOTEMPTY: i32 = 39;
pub const ELOOP: i32 = 40;
pub const EPROTO: i32 = 71;
pub const ESTALE: i32 = 116;

#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct StoreRequest {
    pub magic: u32,
    pub op: u32,
    pub flags: u32,
    pub mode: u32,
    pub ino: u64,
    pub offset: u64,
    pub len: u64,
    /// The caller's clock (ns since 1970): the storage guest keeps times
    /// with it rather than its own.
    pub now: u64,
    pub atime: u64,
    pub mtime: u64,
    pub path_len: u32,
    pub path2_len: u32,
    pub data_len: u32,
    /// The vNode the request is for: its paths start at the vNode's own
    /// directory and its inodes must lie under it (0: the whole disk, for
    /// racks built by hand without global managers).
    pub vnode: u32,
    /// The caller's file-system user and group ids: the owner and group of
    /// what the request makes.
    pub uid: u32,
    pub gid: u32,
}

/// Where vNode N's namespace lives on a storage component's disk:
/// `/.vnodes/N`, made on its first request.
pub const VNODES_DIR: &[u8] = b"/.vnodes";

/// A file's metadata, as stat reports it.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct StoreStat {
    pub ino: u64,
    /// Linux's st_mode: the type (S_IFREG, S_IFDIR, S_IFLNK) and permission bits.
    pub mode: u32,
    pub nlink: u32,
    pub size: u64,
    /// 512-byte units the file's data takes.
    pub blocks: u64,
    pub atime: u64,
    pub mtime: u64,
    pub ctime: u64,
    pub uid: u32,
    pub gid: u32,
}

#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct StoreReply {
    pub magic: u32,
    pub errno: i32,
    pub value: u64,
    /// The file's metadata after the call, for calls about one file
    /// (stat, create, mkdir, symlink, write, truncate).
    pub stat: StoreStat,
    pub data_len: u32,
    pub _pad: u32,
}

/// Every readdir cookie a storage component gives is below this; a
/// processor places names of its own after a directory's (the host's
/// names that show through where storage lacks them) at cookies from here.
pub const READDIR_COOKIE_END: u64 = 3 << 61;

/// One directory entry in an [`OP_READDIR`] reply; `name_len` bytes of
/// name follow, then padding to 8 bytes.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct DirEntryHead {
    pub ino: u64,
    /// The cookie of the entry after this one.
    pub next: u64,
    /// Linux's d_type: DT_DIR 4, DT_REG 8, DT_LNK 10.
    pub kind: u8,
    pub _pad: [u8; 5],
    pub name_len: u16,
}

#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct StoreStatFs {
    pub block_size: u64,
    pub blocks: u64,
    pub blocks_free: u64,
    pub files: u64,
    /// Data blocks and inodes under the request's namespace: its vNode's
    /// directory, or the whole disk for vNode 0 (`lego status` shows each
    /// vNode's share).
    pub ns_blocks: u64,
    pub ns_files: u64,
}

#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct StoreStats {
    pub requests: u64,
    /// Requests that could not be parsed (counted and answered EPROTO).
    pub malformed: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub syncs: u64,
    /// Log records replayed when the disk was mounted.
    pub replayed: u64,
}

/// A request's parts, borrowed from the frame it came in.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub head: StoreRequest,
    pub path: &'a [u8],
    pub path2: &'a [u8],
    pub data: &'a [u8],
}

/// Why a request could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than its header, or than the lengths it gives.
    Short,
    /// Longer than the lengths it gives.
    Trailing,
    /// Not [`STORE_MAGIC`]: another protocol or another version.
    Magic,
    /// A path longer than [`PATH_MAX`] or data longer than [`MAX_IO`].
    TooLong,
}

/// The bytes of a request: the head (its lengths are set here), then
/// the paths and the data.
pub fn encode_request(
    head: &StoreRequest,
    path: &[u8],
    path2: &[u8],
    data: &[u8],
) -> alloc::vec::Vec<u8> {
    let mut head = *head;
    head.magic = STORE_MAGIC;
    head.path_len = path.len() as u32;
    head.path2_len = path2.len() as u32;
    head.data_len = data.len() as u32;
    let mut out = alloc::vec::Vec::with_capacity(
        core::mem::size_of::<StoreRequest>() + path.len() + path2.len() + data.len(),
    );
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(path);
    out.extend_from_slice(path2);
    out.extend_from_slice(data);
    out
}

/// Parses a request; never panics on any input.
pub fn decode_request(bytes: &[u8]) -> Result<Request<'_>, DecodeError> {
    let (head, rest) = StoreRequest::read_from_prefix(bytes).map_err(|_| DecodeError::Short)?;
    if head.magic != STORE_MAGIC {
        return Err(DecodeError::Magic);
    }
    let (p, p2, d) = (
        head.path_len as usize,
        head.path2_len as usize,
        head.data_len as usize,
    );
    if p > PATH_MAX || p2 > PATH_MAX || d > MAX_IO {
        return Err(DecodeError::TooLong);
    }
    let want = p + p2 + d;
    if rest.len() < want {
        return Err(DecodeError::Short);
    }
    if rest.len() > want {
        return Err(DecodeError::Trailing);
    }
    Ok(Request {
        head,
        path: &rest[..p],
        path2: &rest[p..p + p2],
        data: &rest[p + p2..],
    })
}

/// The bytes of a reply: `head` (its magic and data length set here) and
/// what follows it.
pub fn encode_reply(head: &StoreReply, data: &[u8]) -> alloc::vec::Vec<u8> {
    let mut head = *head;
    head.magic = STORE_MAGIC;
    head.data_len = data.len() as u32;
    let mut out = alloc::vec::Vec::with_capacity(core::mem::size_of::<StoreReply>() + data.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(data);
    out
}

/// Bytes of a reply's head: [`encode_reply_in`]'s buffer keeps them free
/// at its start.
pub const REPLY_HEAD: usize = core::mem::size_of::<StoreReply>();

/// [`encode_reply`] in place: `buf` is the data after [`REPLY_HEAD`]
/// bytes left for the head, which is written there (a read's 64 KiB is
/// not copied again).
pub fn encode_reply_in(head: &StoreReply, mut buf: alloc::vec::Vec<u8>) -> alloc::vec::Vec<u8> {
    if buf.len() < REPLY_HEAD {
        buf.resize(REPLY_HEAD, 0);
    }
    let mut head = *head;
    head.magic = STORE_MAGIC;
    head.data_len = (buf.len() - REPLY_HEAD) as u32;
    buf[..REPLY_HEAD].copy_from_slice(head.as_bytes());
    buf
}

/// Parses a reply; never panics on any input.
pub fn decode_reply(bytes: &[u8]) -> Result<(StoreReply, &[u8]), DecodeError> {
    let (head, rest) = StoreReply::read_from_prefix(bytes).map_err(|_| DecodeError::Short)?;
    if head.magic != STORE_MAGIC {
        return Err(DecodeError::Magic);
    }
    let d = head.data_len as usize;
    if rest.len() < d {
        return Err(DecodeError::Short);
    }
    if rest.len() > d {
        return Err(DecodeError::Trailing);
    }
    Ok((head, rest))
}

/// Appends one directory entry to an OP_READDIR reply.
pub fn push_dir_entry(out: &mut alloc::vec::Vec<u8>, ino: u64, next: u64, kind: u8, name: &[u8]) {
    let head = DirEntryHead {
        ino,
        next,
        kind,
        _pad: [0; 5],
        name_len: name.len() as u16,
    };
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(name);
    while out.len() % 8 != 0 {
        out.push(0);
    }
}

/// Bytes one entry with a name of `name_len` bytes takes in a reply.
pub fn dir_entry_len(name_len: usize) -> usize {
    (core::mem::size_of::<DirEntryHead>() + name_len).next_multiple_of(8)
}

/// Iterates the entries of an OP_READDIR reply; stops at the first that
/// does not fit (a malformed reply ends early, never panics).
pub fn dir_entries(mut bytes: &[u8]) -> impl Iterator<Item = (DirEntryHead, &[u8])> {
    core::iter::from_fn(move || {
        let (head, rest) = DirEntryHead::read_from_prefix(bytes).ok()?;
        let n = head.name_len as usize;
        let name = rest.get(..n)?;
        let used = dir_entry_len(n);
        bytes = bytes.get(used..).unwrap_or(&[]);
        Some((head, name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_comes_back_as_it_went() {
        let head = StoreRequest {
            op: OP_WRITE,
            ino: 7,
            offset: 4096,
            ..Default::default()
        };
        let bytes = encode_request(&head, b"/a/b", b"", b"hello");
        let r = decode_request(&bytes).expect("decodes");
        assert_eq!(r.head.op, OP_WRITE);
        assert_eq!(
            (r.path, r.path2, r.data),
            (&b"/a/b"[..], &b""[..], &b"hello"[..])
        );
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        let head = StoreRequest::default();
        let good = encode_request(&head, b"/x", b"/y", b"z");
        for cut in 0..good.len() {
            assert!(decode_request(&good[..cut]).is_err());
        }
        let mut long = good.clone();
        long.push(0);
        assert_eq!(decode_request(&long), Err(DecodeError::Trailing));
        let mut bad = good.clone();
        bad[0] ^= 1;
        assert_eq!(decode_request(&bad), Err(DecodeError::Magic));
        let mut huge = good;
        huge[core::mem::offset_of!(StoreRequest, path_len)..][..4]
            .copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_request(&huge), Err(DecodeError::TooLong));
    }

    #[test]
    fn a_reply_made_in_place_is_the_reply_made_by_copy() {
        let head = StoreReply {
            value: 5,
            errno: 0,
            ..Default::default()
        };
        let mut buf = alloc::vec![0u8; REPLY_HEAD];
        buf.extend_from_slice(b"data");
        assert_eq!(encode_reply_in(&head, buf), encode_reply(&head, b"data"));
        // A buffer too short for the head is a reply with no data.
        assert_eq!(
            encode_reply_in(&head, alloc::vec![1, 2]),
            encode_reply(&head, b"")
        );
    }

    #[test]
    fn directory_entries_round_trip_and_stop_at_damage() {
        let mut out = alloc::vec::Vec::new();
        push_dir_entry(&mut out, 1, 1, 4, b".");
        push_dir_entry(&mut out, 9, 2, 8, b"file.txt");
        let got: alloc::vec::Vec<_> = dir_entries(&out)
            .map(|(h, n)| (h.ino, n.to_vec()))
            .collect();
        assert_eq!(got, [(1, b".".to_vec()), (9, b"file.txt".to_vec())]);
        assert_eq!(dir_entries(&out[..out.len() - 9]).count(), 1);
    }
}
