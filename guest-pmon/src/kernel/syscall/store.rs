//! Files on the storage component (`--storage`): with one, every path a
//! process uses is the storage component's, except /tmp (the monitor's
//! tmpfs), /dev, /proc and /sys (the monitor's own and the host's).
//!
//! The processor keeps what LegoOS's processor keeps: the descriptor
//! table, each open file's offset and flags, and the path it was opened
//! by. Each call becomes one stateless request ([`super::super::store`]):
//! a namespace call carries the full path, a data call the inode number
//! and the absolute offset. So a storage component restarted on the same
//! disk serves the files a program already has open.

use lego_proto::storage::{self as sp, StoreRequest, StoreStat};
use zerocopy::FromBytes;

use super::super::store;
use super::*;

const O_CREAT: u32 = 0o100;
const O_EXCL: u32 = 0o200;
const O_TRUNC: u32 = 0o1000;
const O_DIRECTORY: u32 = 0o200000;
const S_IFMT: u32 = 0o170000;
/// Storage files' device number (0:251), so tools that match files to
/// mounts by device (df, find -xdev) tell storage apart.
const STORE_DEV: u64 = 0xfb;
/// Where files unlinked while open wait for their last close; hidden from
/// listings of `/`.
pub(in crate::kernel) const UNLINKED_DIR: &[u8] = b"/.lego-unlinked";
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFIFO: u32 = 0o010000;
pub(super) const S_IFSOCK: u32 = 0o140000;

/// Whether `full` (absolute, normalized) is under `dir` or is it.
fn within(full: &[u8], dir: &[u8]) -> bool {
    pmon::path::below(full, dir).is_some()
}

/// What the file cache compares at open.
fn version(st: &StoreStat) -> pmon::filecache::Version {
    pmon::filecache::Version {
        size: st.size,
        mtime: st.mtime,
        ctime: st.ctime,
    }
}

/// The `len` bytes from `skip` on of what a read from storage brought
/// (fewer at the file's end): `got` itself when that is all of it.
fn asked(got: Vec<u8>, skip: usize, len: usize) -> Vec<u8> {
    let from = skip.min(got.len());
    let to = (from + len).min(got.len());
    if from == 0 && to == got.len() {
        return got;
    }
    got[from..to].to_vec()
}

/// A random read reads whole blocks of this size (the storage
/// component's), and at most [`PART_MAX`] bytes of them; a larger one
/// reads whole chunks.
const PART_BLOCK: u64 = 4096;
const PART_MAX: u64 = 16 * 1024;

/// The directories above `full` (absolute) that show from the host's
/// installation where storage lacks them, from the top down, each with
/// the host's stat of it (links followed). Asked as the caller goes: a
/// storage stat for each directory of those trees, a host stat for each
/// one yielded, so a caller that makes them on storage as it goes sees
/// the next one as it is then.
fn host_dirs_above(
    full: &[u8],
) -> impl Iterator<Item = (&[u8], Result<lego_proto::program::FileStat, i64>)> {
    full.iter()
        .enumerate()
        .filter(|&(i, &c)| c == b'/' && i > 0)
        .map(move |(i, _)| &full[..i])
        .filter(|dir| pmon::path::shown_from_host(dir) && store::stat(dir, false) == Err(ENOENT))
        .map(|dir| (dir, host::stat_path(dir, true)))
}

/// What storage's ENOENT for `full` is in the overlay: ENOTDIR where a
/// directory on its way is one of the host's files that storage lacks
/// (`mkdir /etc/hostname/x`, an open to write of
/// `/etc/group/no-such-file`: Go's os tests want ENOTDIR, as Linux
/// says), else ENOENT. Asked only after storage said ENOENT; the host
/// is asked once, and storage only if the host says ENOTDIR (the
/// first name on the way that is missing or not a directory decides
/// the host's answer).
fn enoent_where(full: &[u8]) -> Errno {
    if pmon::path::shown_from_host(full) && host::stat_path(full, false).err() == Some(ENOTDIR) {
        host_file_above(full)
    } else {
        ENOENT
    }
}

/// [`enoent_where`] once the host said ENOTDIR for `full`:
/// ENOTDIR if a directory above it is one of the host's files that storage
/// lacks (storage's own directories are storage's to answer for), else
/// ENOENT.
fn host_file_above(full: &[u8]) -> Errno {
    for (_, st) in host_dirs_above(full) {
        match st {
            Ok(st) if st.mode & S_IFMT == S_IFDIR => {}
            Ok(_) => return ENOTDIR,
            Err(_) => break,
        }
    }
    ENOENT
}

/// Why a host's name is copied onto storage ([`Kernel::store_copy_up`]).
#[derive(Clone, Copy)]
pub(super) enum CopyUp {
    /// An open that may write it: O_CREAT|O_EXCL is EEXIST, and a
    /// truncating open copies no bytes.
    Open { exclusive: bool, trunc: bool },
    /// A change of its attributes or names (chmod, chown, utimensat,
    /// truncate, link).
    Attributes,
}

impl Kernel {
    /// Reads file `ino` through the processor's file cache: a miss reads
    /// whole chunks from storage (and, when reads follow each other, up
    /// to 1 MiB ahead) and keeps them; a read that continues a scan keeps
    /// the next pieces of the file in flight (`pmon::readahead`).
    pub(in crate::kernel) fn file_read(
        &mut self,
        ino: u64,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, Errno> {
        use pmon::filecache::CHUNK;
        let scan = self.read_ends.get(&ino) == Some(&offset);
        let (b, missed) = match self.fcache.read(ino, offset, len) {
            Some(b) => (b, false),
            None => (self.file_read_miss(ino, offset, len, scan)?, true),
        };
        let end = offset + b.len() as u64;
        self.read_ends.insert(ino, end);
        // Small reads look again only as they enter a new chunk.
        if scan && (missed || end / CHUNK != offset / CHUNK) {
            self.read_ahead(ino, end);
        }
        Ok(b)
    }

    /// A read the file cache does not hold: from a piece read ahead if
    /// one holds it, else from storage now.
    fn file_read_miss(
        &mut self,
        ino: u64,
        offset: u64,
        len: usize,
        scan: bool,
    ) -> Result<Vec<u8>, Errno> {
        use pmon::filecache::CHUNK;
        if let Some(f) = self.ahead.covering(ino, offset) {
            let scan_end = scan.then_some(offset.saturating_add(len as u64));
            let silent = self.collect_ahead(f, scan_end);
            if let Some(b) = self.fcache.read(ino, offset, len) {
                return Ok(b);
            }
            // Asking again would wait as long again.
            if silent {
                return Err(EIO);
            }
        }
        // A small read that continues nothing (a random one) reads just its
        // blocks, kept as a part of their chunk, as Linux reads only what a
        // random read asks for: a whole chunk costs it about 1.5x (64 KiB
        // sealed, checked and copied at each step; 2000 random 4 KiB reads
        // of a 256 MiB file took 405-513 ms that way and 265-398 ms this
        // way, measured side by side).
        let (b0, b1) = (
            offset / PART_BLOCK * PART_BLOCK,
            offset
                .saturating_add(len as u64)
                .next_multiple_of(PART_BLOCK),
        );
        if !scan && b0 < b1 && b1 - b0 <= PART_MAX && b0 / CHUNK == (b1 - 1) / CHUNK {
            let got = store::read(ino, b0, (b1 - b0) as usize)?;
            self.fcache.fill_part(ino, b0, &got);
            return Ok(asked(got, (offset - b0) as usize, len));
        }
        let start = offset / CHUNK * CHUNK;
        let mut end = offset.saturating_add(len as u64).next_multiple_of(CHUNK);
        // A read where the last one ended: a scan, read ahead.
        if scan {
            end = end.max(start + (1 << 20));
        }
        let got = store::read(ino, start, (end - start) as usize)?;
        self.fcache.fill(ino, start, &got);
        Ok(asked(got, (offset - start) as usize, len))
    }

    /// A scan of `ino` reached `end`: asks for the pieces of the window
    /// ahead of it that are neither cached nor in flight (an exit each).
    fn read_ahead(&mut self, ino: u64, end: u64) {
        while let Some((at, len, mut fetch)) = self.next_ahead(ino, end, false) {
            store::fetch_exit(Some(&mut fetch), None, false);
            self.ahead_started(ino, at, len, fetch);
        }
    }

    /// The next piece of the scan of `ino` to ask for, made but not sent:
    /// its offset, length and reads. Room is made by dropping another
    /// file's oldest piece; with `leaving`, one piece in flight is about
    /// to be collected and does not count.
    fn next_ahead(
        &mut self,
        ino: u64,
        end: u64,
        leaving: bool,
    ) -> Option<(u64, u64, store::Fetch)> {
        let size = self.fcache.size(ino)?;
        let cache = &self.fcache;
        let file = (ino, cache.generation(ino));
        let (at, len) = self.ahead.next(file, end, size, |c| cache.holds(ino, c))?;
        if self.ahead.full(leaving as usize) {
            match self.ahead.oldest() {
                Some(old) if old.ino != ino => self.drop_ahead(old),
                // This scan's own pieces: read them first.
                _ => return None,
            }
        }
        let cache = &mut self.fcache;
        let fetch = store::Fetch::new(ino, at, len as usize, |n| cache.room(n));
        Some((at, len, fetch))
    }

    /// A piece was asked for: it is in flight.
    fn ahead_started(&mut self, ino: u64, at: u64, len: u64, fetch: store::Fetch) {
        let flight = self
            .ahead
            .started(ino, at, len, self.fcache.generation(ino));
        self.fetches.insert(flight.id, fetch);
    }

    /// Takes a piece read ahead into the file cache, what came of it,
    /// unless the file changed since it was asked for; in the same exit, a
    /// scan that reaches `scan_end` asks for its next piece. True if the
    /// storage component left some of it unanswered within the fabric
    /// timeout; another failure is left to the read, which then goes to
    /// storage itself and meets it.
    fn collect_ahead(&mut self, f: pmon::readahead::Flight, scan_end: Option<u64>) -> bool {
        let Some(mut fetch) = self.fetches.remove(&f.id) else {
            self.ahead.ended(f.id);
            return false;
        };
        let mut next = scan_end.and_then(|end| self.next_ahead(f.ino, end, true));
        self.ahead.ended(f.id);
        store::fetch_exit(next.as_mut().map(|n| &mut n.2), Some(&mut fetch), false);
        if let Some((at, len, n)) = next {
            self.ahead_started(f.ino, at, len, n);
        }
        let unanswered = fetch.unanswered();
        let fresh = self.fcache.generation(f.ino) == f.generation;
        for (at, room, data) in fetch.into_pieces() {
            match data {
                Some(data) if fresh => self.fcache.adopt(f.ino, at, room, data),
                _ => self.fcache.give_back(room),
            }
        }
        unanswered
    }

    /// Forgets the pieces read ahead of `ino` (an exit each).
    pub(in crate::kernel) fn drop_ahead_of(&mut self, ino: u64) {
        let flights: Vec<_> = self.ahead.of_file(ino).collect();
        for f in flights {
            self.drop_ahead(f);
        }
    }

    /// Forgets a piece read ahead (the VMM drops its replies).
    fn drop_ahead(&mut self, f: pmon::readahead::Flight) {
        self.ahead.ended(f.id);
        if let Some(mut fetch) = self.fetches.remove(&f.id) {
            store::fetch_exit(None, Some(&mut fetch), true);
            for (_, room, _) in fetch.into_pieces() {
                self.fcache.give_back(room);
            }
        }
    }

    /// Writes file `ino` through to storage (a large write is posted
    /// behind the program, see `write_through`), then into the file cache
    /// and its shared mappings: the offset written at and the bytes written.
    pub(in crate::kernel) fn file_write(
        &mut self,
        ino: u64,
        offset: u64,
        data: &[u8],
        append: bool,
    ) -> Result<(u64, usize), Errno> {
        let (at, n) = self.write_through(ino, offset, data, append, true)?;
        if self.has_shared(FileRef::Store(ino)) {
            self.patch_shared(FileRef::Store(ino), at, &data[..n]);
        }
        Ok((at, n))
    }

    /// Writes `data` at `offset` of file `ino` and into the file cache,
    /// not into its shared mappings (a write-back patches those itself).
    pub(in crate::kernel) fn file_write_only(
        &mut self,
        ino: u64,
        offset: u64,
        data: &[u8],
    ) -> Result<(), Errno> {
        self.write_through(ino, offset, data, false, false)
            .map(drop)
    }

    /// A write not appending goes `behind` when allowed: a large one (a
    /// program streaming a file) is sent and the call returns without
    /// waiting for the storage component, which serves the pieces in
    /// order before anything asked after them, as Linux returns once a
    /// write is in the page cache; a small one is gathered with others
    /// (`pmon::gather`) and sent, posted too, with the next call to storage.
    /// What they did is collected later (`settle_posted`); an error is the
    /// file's next write's, fsync's or close's. Measured: a 256 MiB
    /// sequential write in 1 MiB calls, and 4 KiB writes with fdatasync
    /// (README, "Buffering").
    fn write_through(
        &mut self,
        ino: u64,
        offset: u64,
        data: &[u8],
        append: bool,
        behind: bool,
    ) -> Result<(u64, usize), Errno> {
        if let Some(e) = self.write_errors.remove(&ino) {
            return Err(e);
        }
        let now = self.realtime_ns();
        if behind && !append {
            let failed = if data.len() <= sp::MAX_IO {
                store::gather(ino, offset, data, now, self.now_ns())
            } else {
                store::post(ino, offset, data, now)
            };
            if failed > 0 {
                self.settle_posted(u32::MAX);
            }
            self.fcache.wrote(ino, offset, data);
            self.fcache.grew(ino, offset + data.len() as u64, now);
            return Ok((offset, data.len()));
        }
        let (at, n, after) = store::write(ino, offset, data, append, now)?;
        self.fcache.wrote(ino, at, &data[..n]);
        if let Some(st) = after {
            self.fcache.changed(ino, version(&st));
        }
        Ok((at, n))
    }

    /// Whether `full` is served by the storage component.
    pub(in crate::kernel) fn on_storage(&self, full: &[u8]) -> bool {
        self.storage
            && !within(full, b"/tmp")
            && !within(full, b"/dev")
            && !within(full, b"/proc")
            && !within(full, b"/sys")
            // The shared libraries (and what lives beside them, such as
            // python3's standard library) of the host's dynamically
            // linked programs: storage's where it has the name, else the
            // host's, read-only, as the host's programs are.
            && (!pmon::path::system_library(full) || !store::lacks(full, self.now_ns()))
    }

    /// [`Self::on_storage`] for a look that changes nothing (stat, readlink,
    /// access, a read-only open, a path walk): a name of the host's
    /// installation (`/usr`, `/usr/bin/ls`, `/etc/hosts`: `pmon::path::
    /// shown_from_host`) is the host's where storage lacks it. A change
    /// there (mkdir /usr, a program written to /usr/local/bin) is
    /// storage's (`store_make`, `store_copy_up`).
    pub(in crate::kernel) fn on_storage_to_look(&self, full: &[u8]) -> bool {
        // (A library's name storage has was asked about by on_storage.)
        self.on_storage(full)
            && !(pmon::path::shown_from_host(full)
                && !pmon::path::system_library(full)
                && store::lacks(full, self.now_ns()))
    }

    /// Before an open that may write `full` (or a change of its
    /// attributes, `up`): a file of the host's programs, configuration or
    /// data that shows where storage lacks it
    /// (`pmon::path::shown_from_host`) is copied onto storage (its
    /// directories made as the host has them; its owner, group and mode
    /// the host's; its bytes unless the open truncates), as overlayfs
    /// copies a lower file up, so `>> /etc/hosts` appends to the host's
    /// lines rather than to an empty file, and an O_RDWR open finds the
    /// file its stat showed. For an open, EEXIST with O_CREAT|O_EXCL and
    /// EISDIR for a directory; a directory whose attributes change is made
    /// on storage, and a link opened is made there with the host's target.
    /// Nothing is done where storage has the name or the host has no
    /// regular file, directory or link there; a copy that fails is removed,
    /// and the error is the call's.
    pub(super) fn store_copy_up(&mut self, full: &[u8], up: CopyUp) -> Result<(), Errno> {
        if !pmon::path::shown_from_host(full) || store::stat(full, false) != Err(ENOENT) {
            return Ok(());
        }
        let Ok(st) = host::stat_path(full, false) else {
            return Ok(());
        };
        let now = self.realtime_ns();
        match (st.mode & S_IFMT, up) {
            (
                _,
                CopyUp::Open {
                    exclusive: true, ..
                },
            ) => return Err(EEXIST),
            // As Linux's open: a directory opened to write, or with
            // O_CREAT, is EISDIR (a file made on storage would hide it).
            (S_IFDIR, CopyUp::Open { .. }) => return Err(EISDIR),
            // Its attributes change: it goes on storage as the host has it.
            (S_IFDIR, CopyUp::Attributes) => {
                let mut within = full.to_vec();
                within.push(b'/');
                self.make_system_parents(&within, now);
                return Ok(());
            }
            // A link of the host's (Debian's /etc/localtime and
            // /etc/os-release are): the link goes onto storage as the host
            // has it, as overlayfs copies a link up, and the open (or the
            // chmod, truncate or utimensat that follows links) follows it
            // there, or off storage to where it leads, where the file it
            // reaches is copied up in turn. (Only an open did: chmod and
            // truncate through /etc/os-release were ENOENT.) The link
            // stays on storage even if the call then fails there: it is
            // the host's link as it was, and leads where the host's does.
            (S_IFLNK, _) => {
                let target = host::readlink(full)?;
                let head = StoreRequest {
                    op: sp::OP_SYMLINK,
                    now,
                    ..Default::default()
                };
                let made = || self.store_make(head, full, &target, full).map(|_| ());
                return store::as_owner(st.uid, st.gid, made);
            }
            (S_IFREG, _) => {}
            _ => return Ok(()),
        }
        let trunc = matches!(up, CopyUp::Open { trunc: true, .. });
        // The copy is the host owner's, as the host's file is: whoever
        // caused it meets the same permissions on storage (a user's write
        // to /etc/hostname is EACCES there, as on the host).
        store::as_owner(st.uid, st.gid, || self.copy_up_file(full, &st, trunc, now))
    }

    /// Makes on storage the regular file `full` with the host's mode (`st`)
    /// and, unless `trunc`, its bytes.
    fn copy_up_file(
        &mut self,
        full: &[u8],
        st: &lego_proto::program::FileStat,
        trunc: bool,
        now: u64,
    ) -> Result<(), Errno> {
        let head = StoreRequest {
            op: sp::OP_CREATE,
            flags: sp::FLAG_CREATE | sp::FLAG_EXCL,
            mode: st.mode & 0o7777,
            now,
            ..Default::default()
        };
        let ino = self.store_make(head, full, &[], full)?.stat.ino;
        if trunc || st.size == 0 {
            return Ok(());
        }
        let copied = host::open_as(full, lego_proto::program::OPEN_READ).and_then(|(h, _)| {
            let mut buf = alloc::vec![0u8; sp::MAX_IO];
            let mut at = 0u64;
            let result = loop {
                let n = host::read(h, at, &mut buf);
                if n <= 0 {
                    break if n == 0 { Ok(()) } else { Err(-n) };
                }
                if let Err(e) = self.write_through(ino, at, &buf[..n as usize], false, false) {
                    break Err(e);
                }
                at += n as u64;
            };
            host::close(h);
            result
        });
        if copied.is_err() {
            // Nothing half-copied stays: the host's file shows again.
            let _ = store::on_path(sp::OP_UNLINK, full, 0, now);
        }
        copied
    }

    /// A request that makes the name `made` on storage: where storage
    /// lacks a directory on the way that [`Self::on_storage_to_look`]
    /// shows as the host's (`/usr` on a fresh disk: `os.makedirs`
    /// stats it, finds it, and goes on to make `/usr/share`), those
    /// directories are made on storage, as the host has them, and the
    /// request goes again. Nothing more is asked when the first answer is
    /// not ENOENT, or is one past a symbolic link (the directories missing
    /// are where it led, which the caller follows: `storage_leads_to`).
    pub(super) fn store_make(
        &self,
        head: StoreRequest,
        path: &[u8],
        path2: &[u8],
        made: &[u8],
    ) -> Result<store::Answer, Errno> {
        let r = match store::call(head, path, path2, &[]) {
            Err(ENOENT)
                if !store::enoent_past_link() && self.make_system_parents(made, head.now) =>
            {
                store::call(head, path, path2, &[])
            }
            r => r,
        };
        match r {
            Err(ENOENT) if !store::enoent_past_link() => Err(enoent_where(made)),
            r => r,
        }
    }

    /// [`Self::store_make`] for a call that makes a new name `made` (mkdir,
    /// mknod, symlink, a hard link): EEXIST first where the host's
    /// installation has it ([`Self::host_name_free`]).
    pub(super) fn store_make_new(
        &self,
        head: StoreRequest,
        path: &[u8],
        path2: &[u8],
        made: &[u8],
    ) -> Result<store::Answer, Errno> {
        self.host_name_free(made)?;
        self.store_make(head, path, path2, made)
    }

    /// Makes on storage the directories of the host's installation above
    /// `full` that storage lacks and the host has; whether it made one.
    fn make_system_parents(&self, full: &[u8], now: u64) -> bool {
        let mut made = false;
        for (dir, st) in host_dirs_above(full) {
            let Ok(st) = st else {
                break;
            };
            if st.mode & S_IFMT != S_IFDIR {
                break;
            }
            let head = StoreRequest {
                op: sp::OP_MKDIR,
                mode: st.mode & 0o7777,
                now,
                ..Default::default()
            };
            // The host's owner's, as in a copy-up.
            match store::as_owner(st.uid, st.gid, || store::call(head, dir, &[], &[])) {
                Ok(_) | Err(EEXIST) => made = true,
                Err(_) => break,
            }
        }
        made
    }

    /// Whether `full` is a directory on storage.
    pub(in crate::kernel) fn is_storage_dir(&self, full: &[u8]) -> bool {
        self.on_storage(full) && store::stat(full, true).is_ok_and(|st| st.mode & S_IFMT == S_IFDIR)
    }

    /// openat of a storage path.
    pub(super) fn store_open(
        &mut self,
        pid: Pid,
        full: Vec<u8>,
        flags: u32,
        mode: u32,
        cloexec: bool,
    ) -> Ret {
        const O_NOFOLLOW: u32 = 0o400000;
        let access = flags & O_ACCMODE;
        let now = self.realtime_ns();
        let no_follow = flags & O_NOFOLLOW != 0;
        // O_CREAT|O_NOFOLLOW without O_EXCL on a link: ELOOP (with
        // O_EXCL storage's create says EEXIST for any name there).
        if no_follow
            && flags & (O_CREAT | O_EXCL) == O_CREAT
            && store::stat(&full, false).is_ok_and(|st| st.mode & S_IFMT == S_IFLNK)
        {
            return err(ELOOP);
        }
        // An existing file opens only as its owner, group and mode let the
        // caller, never asked of root; with O_CREAT, open_path asked
        // before the create (which may truncate), and a file it makes is
        // not checked, as on Linux.
        let checks = flags & O_PATH == 0 && !self.overrides(pid);
        let st = if flags & O_CREAT != 0 {
            let perm = mode & 0o7777 & !self.procs.get(&pid).map_or(0o022, |p| p.umask);
            let mut f = sp::FLAG_CREATE;
            if flags & O_EXCL != 0 {
                f |= sp::FLAG_EXCL;
            }
            if flags & O_TRUNC != 0 {
                f |= sp::FLAG_TRUNC;
            }
            let head = StoreRequest {
                op: sp::OP_CREATE,
                flags: f,
                mode: perm,
                now,
                ..Default::default()
            };
            match self.store_make(head, &full, &[], &full) {
                Ok(a) => a.stat,
                Err(e) => return err(e),
            }
        } else {
            let st = match store::stat(&full, !no_follow) {
                Ok(st) => st,
                Err(ENOENT) if !store::enoent_past_link() => return err(enoent_where(&full)),
                Err(e) => return err(e),
            };
            // A link itself (O_NOFOLLOW): an O_PATH descriptor names it
            // (fstat shows a link; glibc's fchmodat with
            // AT_SYMLINK_NOFOLLOW looks so); any other open is ELOOP.
            if st.mode & S_IFMT == S_IFLNK {
                if flags & O_PATH == 0 {
                    return err(ELOOP);
                }
                if flags & O_DIRECTORY != 0 {
                    return err(ENOTDIR);
                }
                let file = OpenFile::with_path(Kind::Store(st.ino), O_PATH, full);
                return val(self
                    .proc_mut(pid)
                    .and_then(|pr| pr.fds.install(file, cloexec, 0)));
            }
            if checks {
                let f = pmon::cred::Owned::from(&st);
                if let Err(e) = self.may(pid, f, super::open_wants(flags)) {
                    return err(e);
                }
            }
            let is_dir = st.mode & S_IFMT == S_IFDIR;
            if !is_dir && flags & O_TRUNC != 0 && st.size != 0 {
                match store::simple(sp::OP_TRUNCATE, st.ino, 0, now) {
                    Ok(a) => {
                        self.fcache.truncated(st.ino, 0);
                        // Its shared mappings are zeroed below.
                        self.truncated_private(FileRef::Store(st.ino), 0);
                        a.stat
                    }
                    Err(e) => return err(e),
                }
            } else {
                st
            }
        };
        let is_dir = st.mode & S_IFMT == S_IFDIR;
        // A socket's file does not open (ENXIO, as Linux's); an O_PATH
        // descriptor names it.
        if st.mode & S_IFMT == S_IFSOCK && flags & O_PATH == 0 {
            return err(ENXIO);
        }
        // A named pipe: an end of this processor's pipe for it (an O_PATH
        // descriptor only names it, as any other).
        if st.mode & S_IFMT == S_IFIFO && flags & O_PATH == 0 {
            if flags & O_DIRECTORY != 0 {
                return err(ENOTDIR);
            }
            return self.fifo_open(pid, SpecialNode::Store(st.ino), &full, flags, cloexec);
        }
        // O_TRUNC asks to write, as Linux takes it (and it truncates a
        // file opened read-only).
        if is_dir && (access != O_RDONLY || flags & O_TRUNC != 0) {
            return err(EISDIR);
        }
        // Emptied by O_TRUNC: its shared mappings show zeros.
        if !is_dir && flags & O_TRUNC != 0 && self.has_shared(FileRef::Store(st.ino)) {
            self.zero_shared(FileRef::Store(st.ino), 0, u64::MAX);
        }
        // Close-to-open: what this processor cached of the file holds
        // only if nobody changed it since.
        if !is_dir {
            self.fcache.check(st.ino, version(&st));
            self.note_atime(&st);
        }
        if !is_dir && flags & O_DIRECTORY != 0 {
            return err(ENOTDIR);
        }
        let kind = if is_dir {
            Kind::StoreDir(st.ino)
        } else {
            Kind::Store(st.ino)
        };
        let kept = O_ACCMODE | O_NONBLOCK | O_APPEND | O_DSYNC | O_SYNC_ONLY;
        let file = OpenFile::with_path(kind, flags & kept, full);
        val(self
            .proc_mut(pid)
            .and_then(|pr| pr.fds.install(file, cloexec, 0)))
    }

    /// struct stat of a storage path.
    pub(super) fn store_stat_path(&self, full: &[u8], follow: bool) -> Result<[u8; 144], Errno> {
        store::stat(full, follow).map(|st| stat_bytes_ns(STORE_DEV, &st))
    }

    /// struct stat of an open storage file.
    pub(super) fn store_stat_ino(&self, ino: u64) -> Result<[u8; 144], Errno> {
        store::stat_ino(ino).map(|st| stat_bytes_ns(STORE_DEV, &st))
    }

    /// One read of an open storage file at its offset.
    pub(super) fn store_read(
        &mut self,
        f: &OpenFile,
        ino: u64,
        len: usize,
    ) -> Result<Vec<u8>, Errno> {
        let b = self.file_bytes(FileRef::Store(ino), f.offset.get(), len.min(1 << 20))?;
        f.offset.set(f.offset.get() + b.len() as u64);
        self.accessed(ino);
        Ok(b)
    }

    /// Opened with metadata `st`: whether its next read moves its atime,
    /// by Linux's default rule (relatime): when the atime is not after the
    /// mtime or ctime, or a day old. Decided once per open, not again after
    /// this processor's own writes: each move is a request and a log record
    /// at the storage component, which a program alternating writes and
    /// reads (SQLite) would pay on every read; the next open catches up.
    fn note_atime(&mut self, st: &StoreStat) {
        const DAY_NS: u64 = 24 * 3600 * 1_000_000_000;
        let due = st.atime <= st.mtime
            || st.atime <= st.ctime
            || self.realtime_ns().saturating_sub(st.atime) >= DAY_NS;
        if !due {
            self.atime_due.remove(&st.ino);
            return;
        }
        // Bounded: forgetting only skips an atime update.
        if self.atime_due.len() >= 4096 {
            self.atime_due.clear();
        }
        self.atime_due.insert(st.ino);
    }

    /// File `ino` was read (or mapped): its atime moves if due, without
    /// changing its ctime. A failure here is not the read's.
    pub(super) fn accessed(&mut self, ino: u64) {
        if !self.atime_due.remove(&ino) {
            return;
        }
        let now = self.realtime_ns();
        let head = StoreRequest {
            op: sp::OP_UTIMES,
            flags: sp::FLAG_ATIME | sp::FLAG_KEEP_CTIME,
            ino,
            atime: now,
            now,
            ..Default::default()
        };
        let _ = store::call(head, &[], &[], &[]);
    }

    /// One write to an open storage file, at its offset or its end
    /// (O_APPEND: the storage component places it, so appends from
    /// several processes do not overwrite each other).
    pub(super) fn store_write(
        &mut self,
        f: &OpenFile,
        ino: u64,
        data: &[u8],
    ) -> Result<usize, Errno> {
        let append = f.flags.get() & O_APPEND != 0;
        let (at, n) = self.file_write(ino, f.offset.get(), data, append)?;
        f.offset.set(at + n as u64);
        self.sync_if_asked(f, ino)?;
        Ok(n)
    }

    /// A file opened O_DSYNC or O_SYNC: the write just made is on the
    /// storage component's disk before the call returns.
    pub(super) fn sync_if_asked(&mut self, f: &OpenFile, ino: u64) -> Result<(), Errno> {
        if f.flags.get() & O_DSYNC != 0 {
            self.store_sync(Some(ino))?;
        }
        Ok(())
    }

    /// The size of an open storage file (lseek SEEK_END).
    pub(super) fn store_size(&self, ino: u64) -> Result<u64, Errno> {
        store::stat_ino(ino).map(|st| st.size)
    }

    /// getdents64 of a storage directory: its entries as linux_dirent64
    /// records, the open file's offset being the storage's cookie.
    pub(super) fn store_getdents(
        &mut self,
        pid: Pid,
        f: &OpenFile,
        ino: u64,
        buf: u64,
        len: usize,
    ) -> Ret {
        let over_host = f.path == b"/" || pmon::path::shown_from_host(&f.path);
        if over_host && f.offset.get() >= sp::READDIR_COOKIE_END {
            return self.store_host_dirents(pid, f, ino, buf, len);
        }
        let a = match store::call(
            StoreRequest {
                op: sp::OP_READDIR,
                ino,
                offset: f.offset.get(),
                // Room for one name at least, so that a buffer too small
                // for the next entry is EINVAL, not the end.
                len: len.clamp(1024, sp::MAX_IO) as u64,
                ..Default::default()
            },
            &[],
            &[],
            &[],
        ) {
            Ok(a) => a,
            Err(e) => return err(e),
        };
        let mut out = Vec::new();
        let mut next = f.offset.get();
        let mut any = false;
        let root = f.path == b"/";
        for (head, name) in sp::dir_entries(&a.data) {
            any = true;
            if root && name == &UNLINKED_DIR[1..] {
                next = head.next;
                continue;
            }
            // ino, off, reclen, type, the name and its NUL, 8-aligned.
            let rec = (19 + name.len() + 1).next_multiple_of(8);
            if out.len() + rec > len {
                break;
            }
            let start = out.len();
            out.extend_from_slice(&head.ino.to_le_bytes());
            out.extend_from_slice(&head.next.to_le_bytes());
            out.extend_from_slice(&(rec as u16).to_le_bytes());
            out.push(head.kind);
            out.extend_from_slice(name);
            out.resize(start + rec, 0);
            next = head.next;
        }
        if out.is_empty() && any {
            return err(EINVAL);
        }
        if out.is_empty() && over_host {
            f.offset.set(sp::READDIR_COOKIE_END);
            return self.store_host_dirents(pid, f, ino, buf, len);
        }
        if let Err(e) = self
            .space_mut(pid)
            .and_then(|s| uaccess::write(s, buf, &out))
        {
            return err(e);
        }
        f.offset.set(next);
        Ret::Val(out.len() as i64)
    }

    /// The rest of a listing of storage directory `ino` that lies over the
    /// host's (`/etc` once a file was written there: `pmon::path::
    /// shown_from_host`; `/`, whose host's entries show only for those
    /// trees): the host's names storage lacks, which show through to a
    /// look, follow storage's own, each at a cookie from
    /// `READDIR_COOKIE_END` on, as overlayfs merges a directory.
    fn store_host_dirents(
        &mut self,
        pid: Pid,
        f: &OpenFile,
        ino: u64,
        buf: u64,
        len: usize,
    ) -> Ret {
        let Some(lower) = tmp::host_listing(&f.path) else {
            return Ret::Val(0);
        };
        let mut own = Vec::new();
        let mut cookie = 0;
        loop {
            let head = StoreRequest {
                op: sp::OP_READDIR,
                ino,
                offset: cookie,
                len: sp::MAX_IO as u64,
                ..Default::default()
            };
            let a = match store::call(head, &[], &[], &[]) {
                Ok(a) => a,
                Err(e) => return err(e),
            };
            let (before, from) = (own.len(), cookie);
            for (head, name) in sp::dir_entries(&a.data) {
                own.push(name.to_vec());
                cookie = head.next;
            }
            // The end, or a reply whose cookies do not move on (never
            // asked again for the same page).
            if own.len() == before || cookie <= from {
                break;
            }
        }
        let from = (f.offset.get() - sp::READDIR_COOKIE_END) as usize;
        let root = f.path == b"/";
        let entries: Vec<pmon::tmpfs::Entry> = lower
            .into_iter()
            .filter(|(_, name, _)| !own.contains(name))
            // Of the host's `/`, only its installation shows.
            .filter(|(_, name, _)| !root || pmon::path::shown_at_root(name))
            .enumerate()
            .skip(from)
            .map(|(j, d)| pmon::tmpfs::Entry::of_host(d, sp::READDIR_COOKIE_END + j as u64 + 1))
            .collect();
        self.put_dirents(pid, f, &entries, buf, len)
    }

    pub(super) fn store_mkdir(&mut self, pid: Pid, full: &[u8], mode: u32) -> Ret {
        let perm = mode & 0o7777 & !self.procs.get(&pid).map_or(0o022, |p| p.umask);
        let head = StoreRequest {
            op: sp::OP_MKDIR,
            mode: perm,
            now: self.realtime_ns(),
            ..Default::default()
        };
        val(self.store_make_new(head, full, &[], full).map(|_| 0))
    }

    pub(super) fn store_unlink(&mut self, full: &[u8], rmdir: bool) -> Ret {
        let now = self.realtime_ns();
        // Asked only while some storage file is open here: otherwise an
        // unlink is one request, not two.
        if !rmdir && self.store_open_here(None) {
            // A file open here keeps its data until its last close, as on
            // Linux: it moves aside instead (NFS's "silly rename"), since
            // the storage component keeps no open files.
            // A file with other names keeps its data through them.
            if let Ok(st) = store::stat(full, false) {
                if st.mode & S_IFMT == 0o100000
                    && st.nlink == 1
                    && self.store_open_here(Some(st.ino))
                {
                    return val(self.move_aside(full, st.ino, now).map(|_| 0));
                }
            }
        }
        let op = if rmdir { sp::OP_RMDIR } else { sp::OP_UNLINK };
        val(store::on_path(op, full, 0, now)
            .map(|_| 0)
            .map_err(|e| self.host_only_is_read_only(full, e)))
    }

    /// EROFS for ENOENT at a name of the host's installation that storage
    /// lacks and the host has (`pmon::path::shown_from_host`): it shows,
    /// but the host's files are read-only and storage keeps no whiteouts,
    /// so it cannot be removed or renamed away; `e` otherwise
    /// ([`enoent_where`] for a name below one of the host's files).
    fn host_only_is_read_only(&self, full: &[u8], e: Errno) -> Errno {
        if e != ENOENT || !pmon::path::shown_from_host(full) {
            return e;
        }
        match host::stat_path(full, false) {
            Ok(_) => EROFS,
            // (An ENOENT past storage's link is the caller's to follow.)
            Err(ENOTDIR) if !store::enoent_past_link() => host_file_above(full),
            Err(_) => e,
        }
    }

    /// Storage's stat of `full` (links followed) for a change by name that
    /// the caller must be let write (truncate): a host's file that shows
    /// there is asked as the host has it (EISDIR, then EACCES), then
    /// copied up, as chmod's is; storage's own is the caller's to check.
    pub(super) fn store_stat_to_write(
        &mut self,
        pid: Pid,
        full: &[u8],
    ) -> Result<StoreStat, Errno> {
        match store::stat(full, true) {
            Err(ENOENT) if !store::enoent_past_link() && pmon::path::shown_from_host(full) => {}
            r => return r,
        }
        let st = match host::stat_path(full, true) {
            Ok(st) => st,
            Err(ENOTDIR) => return Err(host_file_above(full)),
            Err(_) => return Err(ENOENT),
        };
        if st.mode & S_IFMT == S_IFDIR {
            return Err(EISDIR);
        }
        if !self.overrides(pid) {
            self.may(pid, pmon::cred::Owned::from(&st), pmon::cred::MAY_WRITE)?;
        }
        self.store_copy_up(full, CopyUp::Attributes)?;
        store::stat(full, true)
    }

    /// Before a call that makes the name `full` (mkdir, mknod, symlink, a
    /// hard link): EEXIST where it is a name of the host's installation
    /// that storage lacks, since it shows there. Storage, which lacks it,
    /// would make its own and hide the host's file (`mkdir /etc/hostname`
    /// made a directory; `ln -s x /usr/bin/python3` replaced python3).
    /// Where storage has the name, or something else is wrong on the way,
    /// the call itself answers. Costs a host stat per name made in those
    /// trees.
    fn host_name_free(&self, full: &[u8]) -> Result<(), Errno> {
        if !pmon::path::shown_from_host(full) || host::stat_path(full, false).is_err() {
            return Ok(());
        }
        if store::missing(full, false) {
            return Err(EEXIST);
        }
        Ok(())
    }

    /// Before a rename onto `to`, a name of the host's installation that
    /// storage lacks: it shows, so Linux's rules for a target apply
    /// (EEXIST for RENAME_NOREPLACE, EISDIR for a non-directory onto a
    /// directory, ENOTDIR for a directory onto a non-directory, ENOTEMPTY
    /// for a directory onto one with names in it); otherwise storage's
    /// name replaces it, hiding the host's file as a replaced file is
    /// gone. `from` that storage lacks is the call's to answer.
    fn host_target_replaceable(
        &self,
        from: &[u8],
        to: &[u8],
        noreplace: bool,
    ) -> Result<(), Errno> {
        if !pmon::path::shown_from_host(to) {
            return Ok(());
        }
        let Ok(target) = host::stat_path(to, false) else {
            return Ok(());
        };
        if !store::missing(to, false) {
            return Ok(());
        }
        let Ok(source) = store::stat(from, false) else {
            return Ok(());
        };
        if noreplace {
            return Err(EEXIST);
        }
        let dir = |mode: u32| mode & S_IFMT == S_IFDIR;
        match (dir(source.mode), dir(target.mode)) {
            (false, true) => Err(EISDIR),
            (true, false) => Err(ENOTDIR),
            (true, true)
                if tmp::host_listing(to).is_some_and(|l| {
                    l.iter().any(|(_, name, _)| name != b"." && name != b"..")
                }) =>
            {
                Err(pmon::tmpfs::ENOTEMPTY)
            }
            _ => Ok(()),
        }
    }

    /// Calls `call` again after `store_copy_up` of `path` when it found no
    /// such name on storage and the host's installation has it (chmod,
    /// utimensat, truncate or a hard link of `/etc/hosts`), as overlayfs
    /// copies a lower file up to change it.
    fn copying_up<T>(
        &mut self,
        path: &[u8],
        mut call: impl FnMut(&mut Self) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        match call(self) {
            Err(ENOENT) if !path.is_empty() && pmon::path::shown_from_host(path) => {
                self.store_copy_up(path, CopyUp::Attributes)?;
                match call(self) {
                    Err(ENOENT) if !store::enoent_past_link() => Err(enoent_where(path)),
                    r => r,
                }
            }
            r => r,
        }
    }

    /// Whether a process here has storage file `ino` open (any storage
    /// file, for None).
    fn store_open_here(&self, ino: Option<u64>) -> bool {
        self.procs.values().any(|p| {
            p.fds
                .iter()
                .any(|(_, f)| matches!(f.kind, Kind::Store(i) if ino.is_none_or(|n| n == i)))
        })
    }

    /// Moves `full` (file `ino`, open here) to [`UNLINKED_DIR`].
    fn move_aside(&mut self, full: &[u8], ino: u64, now: u64) -> Result<(), Errno> {
        let made = StoreRequest {
            op: sp::OP_MKDIR,
            mode: 0o700,
            now,
            ..Default::default()
        };
        match store::call(made, UNLINKED_DIR, &[], &[]) {
            Ok(_) | Err(EEXIST) => {}
            Err(e) => return Err(e),
        }
        let mut aside = UNLINKED_DIR.to_vec();
        aside.extend_from_slice(alloc::format!("/{ino}").as_bytes());
        let rename = StoreRequest {
            op: sp::OP_RENAME,
            now,
            ..Default::default()
        };
        store::call(rename, full, &aside, &[])?;
        self.unlinked.insert(ino, aside);
        Ok(())
    }

    /// The last open file of storage file `ino` here went: a file moved
    /// aside by unlink goes for good.
    pub(in crate::kernel) fn store_closed(&mut self, ino: u64) {
        if self.store_open_here(Some(ino)) {
            return;
        }
        if let Some(aside) = self.unlinked.remove(&ino) {
            let _ = store::on_path(sp::OP_UNLINK, &aside, 0, self.realtime_ns());
        }
    }

    /// rename within storage. The open files renamed keep working: they
    /// are reached by inode; their remembered path follows for *at calls.
    pub(super) fn store_rename(&mut self, from: &[u8], to: &[u8], noreplace: bool) -> Ret {
        let head = StoreRequest {
            op: sp::OP_RENAME,
            flags: if noreplace { sp::FLAG_NOREPLACE } else { 0 },
            now: self.realtime_ns(),
            ..Default::default()
        };
        if let Err(e) = self.host_target_replaceable(from, to, noreplace) {
            return err(e);
        }
        val(self
            .store_make(head, from, to, to)
            .map(|_| 0)
            .map_err(|e| self.host_only_is_read_only(from, e)))
    }

    /// A hard link within storage: `to` becomes another name of `from`.
    pub(super) fn store_link(&mut self, from: &[u8], to: &[u8], follow: bool) -> Ret {
        let head = StoreRequest {
            op: sp::OP_LINK,
            flags: if follow { sp::FLAG_FOLLOW } else { 0 },
            now: self.realtime_ns(),
            ..Default::default()
        };
        let make = |k: &mut Self| match k.store_make_new(head, from, to, to) {
            // Linux's linkat looks the old name up first: one that is
            // nowhere is ENOENT, not the new name's EEXIST or ENOTDIR.
            Err(e) if e != ENOENT && k.nowhere(from, follow) => Err(ENOENT),
            r => r,
        };
        let st = match self.copying_up(from, make) {
            Ok(a) => a.stat,
            Err(e) => return err(e),
        };
        // Only the file's ctime moved: what the cache holds of it is current.
        self.fcache.changed(st.ino, version(&st));
        Ret::Val(0)
    }

    /// Whether neither storage nor the host's installation has `full`
    /// (its last link followed if `follow`). A walk through storage's
    /// link that leads off it is not nowhere: the caller follows it.
    fn nowhere(&self, full: &[u8], follow: bool) -> bool {
        store::missing(full, follow)
            && !(pmon::path::shown_from_host(full) && host::stat_path(full, follow).is_ok())
    }

    pub(super) fn store_symlink(&mut self, target: &[u8], full: &[u8]) -> Ret {
        let head = StoreRequest {
            op: sp::OP_SYMLINK,
            now: self.realtime_ns(),
            ..Default::default()
        };
        val(self.store_make_new(head, full, target, full).map(|_| 0))
    }

    pub(in crate::kernel) fn store_readlink(&self, full: &[u8]) -> Result<Vec<u8>, Errno> {
        store::on_path(sp::OP_READLINK, full, 0, 0).map(|a| a.data)
    }

    /// chmod, utimensat or truncate of a storage file, named by path (or
    /// by inode when `path` is empty).
    pub(super) fn store_change(&mut self, mut head: StoreRequest, path: &[u8]) -> Ret {
        head.now = self.realtime_ns();
        // A shrink shows in the shared mappings as zeros where the bytes
        // went.
        let before = if head.op == sp::OP_TRUNCATE && self.has_shared(FileRef::Store(head.ino)) {
            store::stat_ino(head.ino).ok().map(|st| st.size)
        } else {
            None
        };
        match self.copying_up(path, |_| store::call(head, path, &[], &[])) {
            Ok(a) => {
                if head.op == sp::OP_TRUNCATE {
                    self.fcache.truncated(head.ino, head.offset);
                    self.fcache.changed(head.ino, version(&a.stat));
                    if let Some(old) = before.filter(|&old| old > head.offset) {
                        self.zero_shared(FileRef::Store(head.ino), head.offset, old);
                    }
                    self.truncated_private(FileRef::Store(head.ino), head.offset);
                }
                Ret::Val(0)
            }
            Err(e) => err(e),
        }
    }

    /// statfs of the storage component's file system (struct statfs).
    pub(super) fn store_statfs(&self) -> Result<[u64; 15], Errno> {
        const LEGO_STORE_MAGIC: u64 = 0x4c47_5346; // "LGSF"
        let a = store::simple(sp::OP_STATFS, 0, 0, 0)?;
        let s = sp::StoreStatFs::read_from_prefix(&a.data)
            .map(|(s, _)| s)
            .map_err(|_| EIO)?;
        let mut w = [0u64; 15];
        w[0] = LEGO_STORE_MAGIC;
        w[1] = s.block_size;
        w[2] = s.blocks;
        w[3] = s.blocks_free;
        w[4] = s.blocks_free;
        w[5] = s.files + s.blocks_free;
        w[6] = s.blocks_free;
        w[8] = 255;
        w[9] = s.block_size;
        Ok(w)
    }

    /// fsync, fdatasync, syncfs and sync: everything acknowledged before is
    /// on the storage component's disk when this returns (writes posted
    /// behind are served first); for a file's fsync, a write of it that
    /// failed behind the program is the error.
    pub(super) fn store_sync(&mut self, file: Option<u64>) -> Result<i64, Errno> {
        // The gathered writes go with the sync; the writes posted before
        // were served before it, so collecting them does not wait.
        let (failures, synced) = store::sync(file.unwrap_or(0));
        self.failed_writes(failures);
        self.settle_posted(0);
        match file.and_then(|ino| self.write_errors.remove(&ino)) {
            Some(e) => Err(e),
            None => synced.map(|()| 0),
        }
    }

    /// Collects what posted writes did, waiting until at most `keep` are
    /// unanswered (the gathered ones are posted first unless `keep` is
    /// u32::MAX).
    pub(in crate::kernel) fn settle_posted(&mut self, keep: u32) {
        if !store::unsettled() {
            return;
        }
        let (failures, _) = store::settle(keep);
        self.failed_writes(failures);
    }

    /// Writes that failed behind the program: each is its file's error,
    /// told once at its next write, fsync or close, and the file's cached
    /// data is forgotten (the storage component has what it has).
    fn failed_writes(&mut self, failures: Vec<(u64, Errno)>) {
        for (ino, e) in failures {
            self.write_errors.entry(ino).or_insert(e);
            self.fcache.forget(ino);
        }
    }

    /// A program on storage, read whole to load it (a regular file with an
    /// execute bit, as Linux asks).
    pub(in crate::kernel) fn store_program(
        &mut self,
        path: &[u8],
        most: u64,
    ) -> Result<Vec<u8>, Errno> {
        let st = store::stat(path, true)?;
        if st.mode & S_IFMT != 0o100000 || st.mode & 0o111 == 0 {
            return Err(EACCES);
        }
        self.may_run(pmon::cred::Owned::from(&st))?;
        // Read whole, and a part kept in the file cache: a program the
        // monitor's memory cannot hold twice is ENOMEM, not a crash.
        if st.size > most || st.size > lego_image::heap::free() as u64 / 3 {
            return Err(ENOMEM);
        }
        self.fcache.check(st.ino, version(&st));
        self.file_read(st.ino, 0, st.size as usize)
    }
}
