//! A file system in the processor monitor's memory, for /tmp: what a
//! program writes there lives as long as the processor runs, as on a
//! Linux host whose /tmp is a tmpfs. (Durable files are the storage
//! component's; this is scratch space, so that mkstemp, tmpfile, `sort`
//! and `diff` work before and without storage.)
//!
//! Names are paths below the mount point, already normalized
//! ([`crate::path::resolve`]) and without the mount's own prefix: `b""` is
//! the root, `b"a/b"` a file in directory `a`. Files are kept in 4 KiB
//! pages (holes read as zeros); the pages in use are bounded, and a write
//! beyond the bound is ENOSPC. A file unlinked while open lives until its
//! last descriptor closes ([`Tmpfs::hold`], [`Tmpfs::release`]).

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

pub type Ino = u64;
/// The root directory's inode.
pub const ROOT: Ino = 1;

pub const EPERM: i64 = 1;
pub const ENOENT: i64 = 2;
pub const EBUSY: i64 = 16;
pub const EEXIST: i64 = 17;
pub const ENOTDIR: i64 = 20;
pub const EISDIR: i64 = 21;
pub const EINVAL: i64 = 22;
pub const EFBIG: i64 = 27;
pub const ENOSPC: i64 = 28;
pub const ENAMETOOLONG: i64 = 36;
pub const ENOTEMPTY: i64 = 39;

const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFIFO: u32 = 0o010000;
const S_IFSOCK: u32 = 0o140000;
const S_IFLNK: u32 = 0o120000;
const PAGE: u64 = crate::PAGE;
/// The pages a node's extended attributes are charged.
fn xattr_pages(x: &crate::xattr::Xattrs) -> u64 {
    (x.bytes() as u64).div_ceil(PAGE)
}

/// Linux's NAME_MAX.
const NAME_MAX: usize = 255;
/// The largest file: what fits in a signed offset, in whole pages.
const MAX_SIZE: u64 = 1 << 44;

enum Body {
    File {
        size: u64,
        pages: BTreeMap<u64, Box<[u8; PAGE as usize]>>,
    },
    Dir {
        entries: Names,
        parent: Ino,
    },
    /// A named pipe (mkfifo): its data is the kernel's pipe, not here.
    Fifo,
    /// An AF_UNIX socket's name (bind): the socket is the kernel's.
    Socket,
    /// A symbolic link: its target, as given (the kernel follows it).
    Symlink(Vec<u8>),
}

struct Node {
    body: Body,
    /// Permission bits (the type is the body's).
    perm: u32,
    /// Names that lead to it (a directory counts `.` and its children's `..`).
    nlink: u32,
    /// Open files that lead to it.
    opens: u32,
    /// Its owner and group (chown; root's when made: every process here
    /// is root's).
    uid: u32,
    gid: u32,
    atime: u64,
    mtime: u64,
    ctime: u64,
    /// Its extended attributes.
    xattrs: crate::xattr::Xattrs,
}

/// What stat says of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub ino: Ino,
    /// Type and permission bits, as st_mode.
    pub mode: u32,
    pub nlink: u32,
    pub size: u64,
    /// 512-byte blocks held.
    pub blocks: u64,
    pub atime: u64,
    pub mtime: u64,
    pub ctime: u64,
    pub uid: u32,
    pub gid: u32,
}

/// A directory's names, each with the place it was given when it came:
/// a reader's position (getdents64's d_off, telldir) is a place, so names
/// removed or added while it reads do not move the others. `rm -rf`
/// removes names as it reads them; with positions counted in name order
/// it skipped some and then found the directory not empty.
#[derive(Default)]
struct Names {
    by_name: BTreeMap<Vec<u8>, (Ino, u64)>,
    by_place: BTreeMap<u64, Vec<u8>>,
    /// The next name's place: after `.` (0) and `..` (1).
    next_place: u64,
}

impl Names {
    const FIRST_PLACE: u64 = 2;

    fn get(&self, name: &[u8]) -> Option<&Ino> {
        self.by_name.get(name).map(|(ino, _)| ino)
    }

    fn contains_key(&self, name: &[u8]) -> bool {
        self.by_name.contains_key(name)
    }

    fn len(&self) -> usize {
        self.by_name.len()
    }

    fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// `name` leads to `ino`: a new name at a place after all others, a
    /// name there already (renamed over, exchanged) where it was.
    fn insert(&mut self, name: Vec<u8>, ino: Ino) {
        if let Some(entry) = self.by_name.get_mut(&name) {
            entry.0 = ino;
            return;
        }
        let place = self.next_place.max(Self::FIRST_PLACE);
        self.next_place = place + 1;
        self.by_place.insert(place, name.clone());
        self.by_name.insert(name, (ino, place));
    }

    fn remove(&mut self, name: &[u8]) -> Option<Ino> {
        let (ino, place) = self.by_name.remove(name)?;
        self.by_place.remove(&place);
        Some(ino)
    }

    /// The names at `from` and after, in place order: (place, name, inode).
    fn from(&self, from: u64) -> impl Iterator<Item = (u64, &[u8], Ino)> {
        self.by_place.range(from..).filter_map(|(&place, name)| {
            let &(ino, _) = self.by_name.get(name)?;
            Some((place, &name[..], ino))
        })
    }
}

/// One directory entry, as getdents64 reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub ino: Ino,
    pub is_dir: bool,
    pub is_fifo: bool,
    pub is_socket: bool,
    pub is_symlink: bool,
    pub name: Vec<u8>,
    /// Where the next entry is (getdents64's d_off).
    pub next: u64,
}

impl Entry {
    /// An entry of a host's directory read back (`Dirent`: its d_ino and
    /// d_type), listed at `next`.
    pub fn of_host((ino, name, dtype): Dirent, next: u64) -> Entry {
        Entry {
            ino,
            is_dir: dtype == 4,
            is_fifo: dtype == 1,
            is_socket: dtype == 12,
            is_symlink: dtype == 10,
            name,
            next,
        }
    }
}

pub struct Tmpfs {
    nodes: BTreeMap<Ino, Node>,
    next_ino: Ino,
    /// Pages held by files, and the most there may be.
    pages: u64,
    max_pages: u64,
    /// The owner and group of the nodes made from now on
    /// ([`Tmpfs::made_by`]).
    maker: (u32, u32),
}

type Result<T> = core::result::Result<T, i64>;

fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&c| c == b'/').filter(|c| !c.is_empty())
}

/// `path` split into its directory part and last name.
fn split_last(path: &[u8]) -> Result<(&[u8], &[u8])> {
    let path = path.strip_suffix(b"/").unwrap_or(path);
    let (dir, name) = match path.iter().rposition(|&c| c == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&b""[..], path),
    };
    if name.is_empty() {
        return Err(EBUSY);
    }
    if name.len() > NAME_MAX {
        return Err(ENAMETOOLONG);
    }
    Ok((dir, name))
}

impl Tmpfs {
    /// An empty file system (its root with permissions 1777, as /tmp) that
    /// holds at most `max_bytes` of file data.
    pub fn new(max_bytes: u64, now: u64) -> Tmpfs {
        let mut nodes = BTreeMap::new();
        nodes.insert(
            ROOT,
            Node {
                body: Body::Dir {
                    entries: Names::default(),
                    parent: ROOT,
                },
                perm: 0o1777,
                nlink: 2,
                opens: 0,
                uid: 0,
                gid: 0,
                atime: now,
                mtime: now,
                ctime: now,
                xattrs: Default::default(),
            },
        );
        Tmpfs {
            nodes,
            next_ino: ROOT + 1,
            pages: 0,
            max_pages: max_bytes / PAGE,
            maker: (0, 0),
        }
    }

    /// Nodes made from now on (files, directories, links, pipes,
    /// sockets) belong to user `uid` and group `gid`: the file system ids
    /// of the process that makes them.
    pub fn made_by(&mut self, uid: u32, gid: u32) {
        self.maker = (uid, gid);
    }

    /// Bytes of file data held.
    pub fn used(&self) -> u64 {
        self.pages * PAGE
    }

    /// The most bytes of file data it may hold.
    pub fn capacity(&self) -> u64 {
        self.max_pages * PAGE
    }

    /// Files and directories in it.
    pub fn nodes(&self) -> u64 {
        self.nodes.len() as u64
    }

    fn node(&self, ino: Ino) -> Result<&Node> {
        self.nodes.get(&ino).ok_or(ENOENT)
    }

    fn node_mut(&mut self, ino: Ino) -> Result<&mut Node> {
        self.nodes.get_mut(&ino).ok_or(ENOENT)
    }

    fn entries(&self, dir: Ino) -> Result<&Names> {
        match &self.node(dir)?.body {
            Body::Dir { entries, .. } => Ok(entries),
            Body::File { .. } | Body::Fifo | Body::Socket | Body::Symlink(_) => Err(ENOTDIR),
        }
    }

    fn entries_mut(&mut self, dir: Ino) -> Result<&mut Names> {
        match &mut self.node_mut(dir)?.body {
            Body::Dir { entries, .. } => Ok(entries),
            Body::File { .. } | Body::Fifo | Body::Socket | Body::Symlink(_) => Err(ENOTDIR),
        }
    }

    fn is_dir(&self, ino: Ino) -> bool {
        matches!(
            self.nodes.get(&ino).map(|n| &n.body),
            Some(Body::Dir { .. })
        )
    }

    /// The node `path` names.
    pub fn lookup(&self, path: &[u8]) -> Result<Ino> {
        let mut at = ROOT;
        for c in components(path) {
            if c.len() > NAME_MAX {
                return Err(ENAMETOOLONG);
            }
            at = *self.entries(at)?.get(c).ok_or(ENOENT)?;
        }
        Ok(at)
    }

    /// The directory that would hold `path`'s last name, and the name.
    fn parent<'p>(&self, path: &'p [u8]) -> Result<(Ino, &'p [u8])> {
        let (dir, name) = split_last(path)?;
        let dir = self.lookup(dir)?;
        if !self.is_dir(dir) {
            return Err(ENOTDIR);
        }
        Ok((dir, name))
    }

    /// Whether `path`'s directory exists here (so a new name may be made in it).
    pub fn has_parent(&self, path: &[u8]) -> bool {
        self.parent(path).is_ok()
    }

    fn add(&mut self, dir: Ino, name: &[u8], body: Body, perm: u32, now: u64) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        let is_dir = matches!(body, Body::Dir { .. });
        let nlink = if is_dir { 2 } else { 1 };
        // In a set-group-ID directory, what is made takes its group, and a
        // directory made there is set-group-ID too (Linux's inode_init_owner).
        let (mut gid, mut perm) = (self.maker.1, perm & 0o7777);
        if let Some(d) = self.nodes.get(&dir).filter(|d| d.perm & 0o2000 != 0) {
            gid = d.gid;
            if is_dir {
                perm |= 0o2000;
            }
        }
        self.nodes.insert(
            ino,
            Node {
                body,
                perm,
                nlink,
                opens: 0,
                uid: self.maker.0,
                gid,
                atime: now,
                mtime: now,
                ctime: now,
                xattrs: Default::default(),
            },
        );
        if let Ok(e) = self.entries_mut(dir) {
            e.insert(name.to_vec(), ino);
        }
        self.touch_dir(dir, now);
        ino
    }

    fn touch_dir(&mut self, dir: Ino, now: u64) {
        if let Ok(n) = self.node_mut(dir) {
            n.mtime = now;
            n.ctime = now;
        }
    }

    /// open with O_CREAT: the file `path` (made, empty, with `perm` if it
    /// does not exist; EEXIST if it does and `excl`). Whether it was made.
    pub fn create(&mut self, path: &[u8], perm: u32, excl: bool, now: u64) -> Result<(Ino, bool)> {
        let (dir, name) = self.parent(path)?;
        if let Some(&ino) = self.entries(dir)?.get(name) {
            return if excl { Err(EEXIST) } else { Ok((ino, false)) };
        }
        let body = Body::File {
            size: 0,
            pages: BTreeMap::new(),
        };
        Ok((self.add(dir, name, body, perm, now), true))
    }

    /// mkfifo: a named pipe at `path`.
    pub fn mkfifo(&mut self, path: &[u8], perm: u32, now: u64) -> Result<Ino> {
        self.add_new(path, Body::Fifo, perm, now)
    }

    /// A new node at `path` (EEXIST if the name is taken).
    fn add_new(&mut self, path: &[u8], body: Body, perm: u32, now: u64) -> Result<Ino> {
        let (dir, name) = self.parent(path)?;
        if self.entries(dir)?.contains_key(name) {
            return Err(EEXIST);
        }
        Ok(self.add(dir, name, body, perm, now))
    }

    /// bind of an AF_UNIX socket to `path`: a socket node there (EEXIST
    /// if the name is taken).
    pub fn mksock(&mut self, path: &[u8], perm: u32, now: u64) -> Result<Ino> {
        self.add_new(path, Body::Socket, perm, now)
    }

    /// Whether `ino` is a socket's name.
    pub fn is_socket(&self, ino: Ino) -> bool {
        matches!(self.nodes.get(&ino).map(|n| &n.body), Some(Body::Socket))
    }

    /// Whether `ino` is a named pipe.
    pub fn is_fifo(&self, ino: Ino) -> bool {
        matches!(self.nodes.get(&ino).map(|n| &n.body), Some(Body::Fifo))
    }

    /// symlink(2): `path` names `target` (any bytes; followed by the
    /// kernel, not here).
    pub fn symlink(&mut self, path: &[u8], target: &[u8], now: u64) -> Result<Ino> {
        self.add_new(path, Body::Symlink(target.to_vec()), 0o777, now)
    }

    /// A symbolic link's target (EINVAL for anything else, as readlink).
    pub fn readlink(&self, ino: Ino) -> Result<&[u8]> {
        match &self.node(ino)?.body {
            Body::Symlink(t) => Ok(t),
            _ => Err(EINVAL),
        }
    }

    /// Whether `ino` is a symbolic link.
    pub fn is_symlink(&self, ino: Ino) -> bool {
        matches!(
            self.nodes.get(&ino).map(|n| &n.body),
            Some(Body::Symlink(_))
        )
    }

    pub fn mkdir(&mut self, path: &[u8], perm: u32, now: u64) -> Result<Ino> {
        let (dir, name) = self.parent(path)?;
        if self.entries(dir)?.contains_key(name) {
            return Err(EEXIST);
        }
        let body = Body::Dir {
            entries: Names::default(),
            parent: dir,
        };
        let ino = self.add(dir, name, body, perm, now);
        if let Ok(d) = self.node_mut(dir) {
            d.nlink += 1;
        }
        Ok(ino)
    }

    /// Drops one name of `ino`; the node goes when nothing leads to it.
    fn unlinked(&mut self, ino: Ino, now: u64) {
        let gone = match self.nodes.get_mut(&ino) {
            Some(n) => {
                n.nlink = match n.body {
                    Body::Dir { .. } => 0,
                    Body::File { .. } | Body::Fifo | Body::Socket | Body::Symlink(_) => {
                        n.nlink.saturating_sub(1)
                    }
                };
                n.ctime = now;
                n.nlink == 0 && n.opens == 0
            }
            None => false,
        };
        if gone {
            self.free(ino);
        }
    }

    fn free(&mut self, ino: Ino) {
        let Some(n) = self.nodes.remove(&ino) else {
            return;
        };
        self.pages -= xattr_pages(&n.xattrs);
        if let Body::File { pages, .. } = n.body {
            self.pages -= pages.len() as u64;
        }
    }

    pub fn unlink(&mut self, path: &[u8], now: u64) -> Result<()> {
        let (dir, name) = self.parent(path)?;
        let ino = *self.entries(dir)?.get(name).ok_or(ENOENT)?;
        if self.is_dir(ino) {
            return Err(EISDIR);
        }
        self.entries_mut(dir)?.remove(name);
        self.touch_dir(dir, now);
        self.unlinked(ino, now);
        Ok(())
    }

    pub fn rmdir(&mut self, path: &[u8], now: u64) -> Result<()> {
        let (dir, name) = self.parent(path)?;
        if name == b"." {
            return Err(EINVAL);
        }
        if name == b".." {
            return Err(ENOTEMPTY);
        }
        let ino = *self.entries(dir)?.get(name).ok_or(ENOENT)?;
        if !self.entries(ino)?.is_empty() {
            return Err(ENOTEMPTY);
        }
        self.entries_mut(dir)?.remove(name);
        if let Ok(d) = self.node_mut(dir) {
            d.nlink -= 1;
        }
        self.touch_dir(dir, now);
        self.unlinked(ino, now);
        Ok(())
    }

    /// Whether `ino` is `dir` or below it.
    fn within(&self, mut ino: Ino, dir: Ino) -> bool {
        loop {
            if ino == dir {
                return true;
            }
            match self.nodes.get(&ino).map(|n| &n.body) {
                Some(Body::Dir { parent, .. }) if *parent != ino => ino = *parent,
                _ => return false,
            }
        }
    }

    /// rename(2): `to` is replaced atomically if it exists (a directory
    /// only by an empty directory).
    pub fn rename(&mut self, from: &[u8], to: &[u8], now: u64) -> Result<()> {
        let (fdir, fname) = self.parent(from)?;
        let (tdir, tname) = self.parent(to)?;
        let ino = *self.entries(fdir)?.get(fname).ok_or(ENOENT)?;
        let moving_dir = self.is_dir(ino);
        if moving_dir && self.within(tdir, ino) {
            return Err(EINVAL);
        }
        if let Some(&old) = self.entries(tdir)?.get(tname) {
            if old == ino {
                return Ok(());
            }
            match (moving_dir, self.is_dir(old)) {
                (true, false) => return Err(ENOTDIR),
                (false, true) => return Err(EISDIR),
                (true, true) if !self.entries(old)?.is_empty() => return Err(ENOTEMPTY),
                _ => {}
            }
            if self.is_dir(old) {
                if let Ok(d) = self.node_mut(tdir) {
                    d.nlink -= 1;
                }
            }
            self.unlinked(old, now);
        }
        self.entries_mut(fdir)?.remove(fname);
        self.entries_mut(tdir)?.insert(tname.to_vec(), ino);
        if moving_dir && fdir != tdir {
            if let Ok(Node {
                body: Body::Dir { parent, .. },
                ..
            }) = self.node_mut(ino)
            {
                *parent = tdir;
            }
            if let Ok(d) = self.node_mut(fdir) {
                d.nlink -= 1;
            }
            if let Ok(d) = self.node_mut(tdir) {
                d.nlink += 1;
            }
        }
        if let Ok(n) = self.node_mut(ino) {
            n.ctime = now;
        }
        self.touch_dir(fdir, now);
        self.touch_dir(tdir, now);
        Ok(())
    }

    /// renameat2(RENAME_EXCHANGE): `from` and `to`, both there, trade
    /// places at once. EINVAL if a directory would move into itself.
    pub fn exchange(&mut self, from: &[u8], to: &[u8], now: u64) -> Result<()> {
        let (fdir, fname) = self.parent(from)?;
        let (tdir, tname) = self.parent(to)?;
        let a = *self.entries(fdir)?.get(fname).ok_or(ENOENT)?;
        let b = *self.entries(tdir)?.get(tname).ok_or(ENOENT)?;
        if a == b {
            return Ok(());
        }
        if (self.is_dir(a) && self.within(tdir, a)) || (self.is_dir(b) && self.within(fdir, b)) {
            return Err(EINVAL);
        }
        self.entries_mut(fdir)?.insert(fname.to_vec(), b);
        self.entries_mut(tdir)?.insert(tname.to_vec(), a);
        if fdir != tdir {
            // A directory's `..` follows it, and its old and new parents'
            // link counts with it.
            for (ino, from_dir, to_dir) in [(a, fdir, tdir), (b, tdir, fdir)] {
                if !self.is_dir(ino) {
                    continue;
                }
                if let Ok(Node {
                    body: Body::Dir { parent, .. },
                    ..
                }) = self.node_mut(ino)
                {
                    *parent = to_dir;
                }
                if let Ok(d) = self.node_mut(from_dir) {
                    d.nlink -= 1;
                }
                if let Ok(d) = self.node_mut(to_dir) {
                    d.nlink += 1;
                }
            }
        }
        for ino in [a, b] {
            if let Ok(n) = self.node_mut(ino) {
                n.ctime = now;
            }
        }
        self.touch_dir(fdir, now);
        self.touch_dir(tdir, now);
        Ok(())
    }

    /// link(2): `to` becomes another name of the file `from` names (EPERM
    /// for a directory, as Linux; EEXIST if `to` is taken).
    pub fn link(&mut self, from: &[u8], to: &[u8], now: u64) -> Result<()> {
        let ino = self.lookup(from)?;
        if self.is_dir(ino) {
            return Err(EPERM);
        }
        let (dir, name) = self.parent(to)?;
        if self.entries(dir)?.contains_key(name) {
            return Err(EEXIST);
        }
        self.entries_mut(dir)?.insert(name.to_vec(), ino);
        if let Ok(n) = self.node_mut(ino) {
            n.nlink += 1;
            n.ctime = now;
        }
        self.touch_dir(dir, now);
        Ok(())
    }

    /// An open file leads to `ino`.
    pub fn hold(&mut self, ino: Ino) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.opens += 1;
        }
    }

    /// An open file that led to `ino` is closed.
    pub fn release(&mut self, ino: Ino) {
        let gone = match self.nodes.get_mut(&ino) {
            Some(n) => {
                n.opens = n.opens.saturating_sub(1);
                n.opens == 0 && n.nlink == 0
            }
            None => false,
        };
        if gone {
            self.free(ino);
        }
    }

    pub fn stat(&self, ino: Ino) -> Result<Stat> {
        let n = self.node(ino)?;
        let (kind, size, blocks) = match &n.body {
            Body::File { size, pages } => (S_IFREG, *size, pages.len() as u64 * (PAGE / 512)),
            Body::Dir { entries, .. } => (S_IFDIR, 40 + 20 * entries.len() as u64, 0),
            Body::Fifo => (S_IFIFO, 0, 0),
            Body::Socket => (S_IFSOCK, 0, 0),
            Body::Symlink(t) => (S_IFLNK, t.len() as u64, 0),
        };
        Ok(Stat {
            ino,
            mode: kind | n.perm,
            nlink: n.nlink,
            size,
            blocks,
            atime: n.atime,
            mtime: n.mtime,
            ctime: n.ctime,
            uid: n.uid,
            gid: n.gid,
        })
    }

    pub fn is_directory(&self, ino: Ino) -> bool {
        self.is_dir(ino)
    }

    /// Reads from `offset` into `buf`: the bytes read (0 at the end).
    pub fn read(&mut self, ino: Ino, offset: u64, buf: &mut [u8], now: u64) -> Result<usize> {
        let n = self.node_mut(ino)?;
        // Linux's default rule (relatime): a read moves the atime only
        // when it is not after the last change, or a day old.
        const DAY_NS: u64 = 86_400 * 1_000_000_000;
        if n.atime <= n.mtime || n.atime <= n.ctime || now.saturating_sub(n.atime) >= DAY_NS {
            n.atime = now;
        }
        let Body::File { size, pages } = &n.body else {
            return Err(EISDIR);
        };
        if offset >= *size {
            return Ok(0);
        }
        let len = (buf.len() as u64).min(*size - offset) as usize;
        let mut done = 0;
        while done < len {
            let at = offset + done as u64;
            let (page, within) = (at / PAGE, (at % PAGE) as usize);
            let n = (PAGE as usize - within).min(len - done);
            match pages.get(&page) {
                Some(p) => buf[done..done + n].copy_from_slice(&p[within..within + n]),
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
        Ok(len)
    }

    /// Writes `data` at `offset`: the bytes written (short when the file
    /// system fills; ENOSPC when not one byte fits).
    pub fn write(&mut self, ino: Ino, offset: u64, data: &[u8], now: u64) -> Result<usize> {
        if offset
            .checked_add(data.len() as u64)
            .is_none_or(|e| e > MAX_SIZE)
        {
            return Err(EFBIG);
        }
        let mut free = self.max_pages.saturating_sub(self.pages);
        let n = self.nodes.get_mut(&ino).ok_or(ENOENT)?;
        let Body::File { size, pages } = &mut n.body else {
            return Err(EISDIR);
        };
        let mut done = 0;
        let mut added = 0;
        while done < data.len() {
            let at = offset + done as u64;
            let (page, within) = (at / PAGE, (at % PAGE) as usize);
            let k = (PAGE as usize - within).min(data.len() - done);
            let p = match pages.entry(page) {
                alloc::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                alloc::collections::btree_map::Entry::Vacant(e) => {
                    if free == 0 {
                        break;
                    }
                    free -= 1;
                    added += 1;
                    e.insert(Box::new([0; PAGE as usize]))
                }
            };
            p[within..within + k].copy_from_slice(&data[done..done + k]);
            done += k;
        }
        if done > 0 {
            *size = (*size).max(offset + done as u64);
            n.mtime = now;
            n.ctime = now;
        }
        self.pages += added;
        if done == 0 && !data.is_empty() {
            return Err(ENOSPC);
        }
        Ok(done)
    }

    /// ftruncate: the file is `len` bytes long (pages past it are freed;
    /// growing adds a hole).
    pub fn truncate(&mut self, ino: Ino, len: u64, now: u64) -> Result<()> {
        if len > MAX_SIZE {
            return Err(EFBIG);
        }
        let n = self.nodes.get_mut(&ino).ok_or(ENOENT)?;
        let Body::File { size, pages } = &mut n.body else {
            return Err(EISDIR);
        };
        let keep = len.div_ceil(PAGE);
        let gone = pages.split_off(&keep).len() as u64;
        if len % PAGE != 0 {
            if let Some(p) = pages.get_mut(&(len / PAGE)) {
                p[(len % PAGE) as usize..].fill(0);
            }
        }
        *size = len;
        n.mtime = now;
        n.ctime = now;
        self.pages -= gone;
        Ok(())
    }

    /// Whether node `ino` is a regular file or a directory, as the user
    /// namespace of extended attributes asks.
    pub fn xattr_owner(&self, ino: Ino) -> Result<crate::xattr::Owner> {
        Ok(match self.node(ino)?.body {
            Body::File { .. } | Body::Dir { .. } => crate::xattr::Owner::FileOrDir,
            _ => crate::xattr::Owner::Other,
        })
    }

    pub fn xattrs(&self, ino: Ino) -> Result<&crate::xattr::Xattrs> {
        Ok(&self.node(ino)?.xattrs)
    }

    /// Changes node `ino`'s extended attributes with `change`; its ctime
    /// moves when it succeeds. Their bytes take room as file data does
    /// (whole pages per node): ENOSPC when the file system is full.
    pub fn change_xattrs(
        &mut self,
        ino: Ino,
        now: u64,
        change: impl FnOnce(&mut crate::xattr::Xattrs) -> Result<()>,
    ) -> Result<()> {
        let free = self.max_pages.saturating_sub(self.pages);
        let n = self.node_mut(ino)?;
        let mut new = n.xattrs.clone();
        change(&mut new)?;
        let (before, after) = (xattr_pages(&n.xattrs), xattr_pages(&new));
        if after > before + free {
            return Err(ENOSPC);
        }
        n.xattrs = new;
        n.ctime = now;
        self.pages = self.pages - before + after;
        Ok(())
    }

    pub fn chmod(&mut self, ino: Ino, perm: u32, now: u64) -> Result<()> {
        let n = self.node_mut(ino)?;
        n.perm = perm & 0o7777;
        n.ctime = now;
        Ok(())
    }

    /// chown: None leaves the owner or group as it is. As Linux, a
    /// change clears a regular file's set-user-ID bit, and its set-group-ID
    /// bit when the group may execute it, whoever makes it.
    pub fn chown(&mut self, ino: Ino, uid: Option<u32>, gid: Option<u32>, now: u64) -> Result<()> {
        const S_ISUID: u32 = 0o4000;
        const S_ISGID: u32 = 0o2000;
        const S_IXGRP: u32 = 0o010;
        let n = self.node_mut(ino)?;
        if let Some(u) = uid {
            n.uid = u;
        }
        if let Some(g) = gid {
            n.gid = g;
        }
        // Every chown, even one changing neither (as Linux's chown_common).
        if matches!(n.body, Body::File { .. }) {
            n.perm &= !S_ISUID;
            if n.perm & S_IXGRP != 0 {
                n.perm &= !S_ISGID;
            }
        }
        n.ctime = now;
        Ok(())
    }

    /// utimensat: None leaves a time as it is.
    pub fn set_times(
        &mut self,
        ino: Ino,
        atime: Option<u64>,
        mtime: Option<u64>,
        now: u64,
    ) -> Result<()> {
        let n = self.node_mut(ino)?;
        if let Some(a) = atime {
            n.atime = a;
        }
        if let Some(m) = mtime {
            n.mtime = m;
        }
        n.ctime = now;
        Ok(())
    }

    /// The entries of directory `ino` from position `from` (0: the start):
    /// `.`, `..`, then the names in order.
    pub fn list(&self, ino: Ino, from: u64) -> Result<Vec<Entry>> {
        let n = self.node(ino)?;
        let Body::Dir { entries, parent } = &n.body else {
            return Err(ENOTDIR);
        };
        let mut out = Vec::new();
        let all = [(0, &b"."[..], ino), (1, &b".."[..], *parent)]
            .into_iter()
            .filter(|&(place, ..)| place >= from)
            .chain(entries.from(from));
        for (place, name, child) in all {
            out.push(Entry {
                ino: child,
                is_dir: self.is_dir(child),
                is_fifo: self.is_fifo(child),
                is_socket: self.is_socket(child),
                is_symlink: self.is_symlink(child),
                name: name.to_vec(),
                next: place + 1,
            });
        }
        Ok(out)
    }
}

/// One entry of a getdents64 answer read back: (d_ino, name, d_type).
pub type Dirent = (u64, Vec<u8>, u8);

/// The entries of a getdents64 answer (`struct linux_dirent64`s, as the
/// host's readdir gives them), up to the first malformed one.
pub fn parse_dirents(bytes: &[u8]) -> Vec<Dirent> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 19 <= bytes.len() {
        let reclen = u16::from_le_bytes([bytes[i + 16], bytes[i + 17]]) as usize;
        if reclen < 20 || i + reclen > bytes.len() {
            break;
        }
        let mut ino = [0u8; 8];
        ino.copy_from_slice(&bytes[i..i + 8]);
        let raw = &bytes[i + 19..i + reclen];
        let name = &raw[..raw.iter().position(|&c| c == 0).unwrap_or(raw.len())];
        out.push((u64::from_le_bytes(ino), name.to_vec(), bytes[i + 18]));
        i += reclen;
    }
    out
}

/// Entries encoded as getdents64's `struct linux_dirent64`s, as many as
/// fit in `room` bytes.
pub fn dirents(entries: &[Entry], room: usize) -> Vec<u8> {
    const DT_FIFO: u8 = 1;
    const DT_DIR: u8 = 4;
    const DT_REG: u8 = 8;
    const DT_LNK: u8 = 10;
    const DT_SOCK: u8 = 12;
    let mut out = Vec::new();
    for e in entries {
        // ino, off, reclen, type, the name and its NUL, 8-aligned.
        let len = (19 + e.name.len() + 1).next_multiple_of(8);
        if out.len() + len > room {
            break;
        }
        let start = out.len();
        out.extend_from_slice(&e.ino.to_le_bytes());
        out.extend_from_slice(&e.next.to_le_bytes());
        out.extend_from_slice(&(len as u16).to_le_bytes());
        out.push(if e.is_dir {
            DT_DIR
        } else if e.is_fifo {
            DT_FIFO
        } else if e.is_socket {
            DT_SOCK
        } else if e.is_symlink {
            DT_LNK
        } else {
            DT_REG
        });
        out.extend_from_slice(&e.name);
        out.resize(start + len, 0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exchange_swaps_names_and_moves_directories_parents() {
        let mut t = Tmpfs::new(1 << 20, 0);
        t.mkdir(b"d", 0o755, 0).unwrap();
        t.mkdir(b"d/sub", 0o755, 0).unwrap();
        let (f, _) = t.create(b"f", 0o600, true, 0).unwrap();
        let sub = t.lookup(b"d/sub").unwrap();
        let d = t.lookup(b"d").unwrap();
        let root_links = t.stat(ROOT).unwrap().nlink;
        t.exchange(b"f", b"d/sub", 1).unwrap();
        assert_eq!(t.lookup(b"f"), Ok(sub));
        assert_eq!(t.lookup(b"d/sub"), Ok(f));
        assert_eq!(
            t.stat(ROOT).unwrap().nlink,
            root_links + 1,
            "a directory came in"
        );
        assert_eq!(t.stat(d).unwrap().nlink, 2, "its directory went");
        assert_eq!(t.exchange(b"f", b"nope", 2), Err(ENOENT));
        // A directory cannot trade places with something inside it.
        t.mkdir(b"f/in", 0o755, 3).unwrap();
        assert_eq!(t.exchange(b"f", b"f/in", 3), Err(EINVAL));
    }

    #[test]
    fn extended_attributes_take_room_and_give_it_back() {
        // Four pages in all.
        let mut t = Tmpfs::new(4 * PAGE, 0);
        let (f, _) = t.create(b"f", 0o600, true, 0).unwrap();
        let (g, _) = t.create(b"g", 0o600, true, 0).unwrap();
        let value = alloc::vec![7u8; 3 * PAGE as usize];
        t.change_xattrs(f, 1, |x| x.set(b"user.a", &value, 0))
            .unwrap();
        assert_eq!(t.used(), 4 * PAGE, "3 pages and a few bytes: 4");
        assert_eq!(
            t.change_xattrs(g, 1, |x| x.set(b"user.b", b"1", 0)),
            Err(ENOSPC)
        );
        assert_eq!(t.write(g, 0, b"x", 1), Err(ENOSPC));
        t.unlink(b"f", 2).unwrap();
        assert_eq!(t.used(), 0);
        t.change_xattrs(g, 3, |x| x.set(b"user.b", b"1", 0))
            .unwrap();
        assert_eq!(t.used(), PAGE);
        t.change_xattrs(g, 4, |x| x.remove(b"user.b")).unwrap();
        assert_eq!(t.used(), 0);
    }

    #[test]
    fn a_symbolic_link_holds_its_target_and_goes_with_unlink() {
        let mut t = Tmpfs::new(1 << 20, 0);
        let ino = t.symlink(b"l", b"../f5.txt", 1).unwrap();
        assert!(t.is_symlink(ino));
        assert_eq!(t.readlink(ino), Ok(&b"../f5.txt"[..]));
        let st = t.stat(ino).unwrap();
        assert_eq!((st.mode, st.size), (0o120777, 9));
        assert_eq!(t.symlink(b"l", b"x", 2), Err(EEXIST));
        let (f, _) = t.create(b"f", 0o600, true, 2).unwrap();
        assert_eq!(t.readlink(f), Err(EINVAL));
        // Names below a symbolic link are the kernel's to follow.
        assert_eq!(t.lookup(b"l/x"), Err(ENOTDIR));
        let listed = t.list(ROOT, 2).unwrap();
        assert!(listed.iter().any(|e| e.name == b"l" && e.is_symlink));
        t.unlink(b"l", 3).unwrap();
        assert!(t.stat(ino).is_err());
    }

    #[test]
    fn a_hard_link_keeps_the_data_until_its_last_name_goes() {
        let mut t = Tmpfs::new(1 << 20, 0);
        let (ino, _) = t.create(b"tmp.1", 0o600, true, 0).unwrap();
        t.write(ino, 0, b"semaphore", 1).unwrap();
        t.link(b"tmp.1", b"sem.x", 2).unwrap();
        assert_eq!(t.lookup(b"sem.x"), Ok(ino));
        assert_eq!(t.stat(ino).unwrap().nlink, 2);
        assert_eq!(t.link(b"tmp.1", b"sem.x", 3), Err(EEXIST));
        t.mkdir(b"d", 0o700, 3).unwrap();
        assert_eq!(t.link(b"d", b"d2", 3), Err(EPERM));
        assert_eq!(t.link(b"nothing", b"n2", 3), Err(ENOENT));
        t.unlink(b"tmp.1", 4).unwrap();
        let mut b = [0u8; 9];
        assert_eq!(t.read(ino, 0, &mut b, 5), Ok(9));
        assert_eq!(&b, b"semaphore");
        assert_eq!(t.stat(ino).unwrap().nlink, 1);
        t.unlink(b"sem.x", 6).unwrap();
        assert!(t.stat(ino).is_err());
        assert_eq!(t.used(), 0);
    }

    #[test]
    fn a_read_moves_the_atime_once_after_a_change_or_after_a_day() {
        const DAY: u64 = 86_400 * 1_000_000_000;
        let mut t = Tmpfs::new(1 << 20, 0);
        let (ino, _) = t.create(b"f", 0o600, true, 10).unwrap();
        t.write(ino, 0, b"x", 20).unwrap();
        let mut b = [0u8; 1];
        t.read(ino, 0, &mut b, 30).unwrap();
        assert_eq!(t.stat(ino).unwrap().atime, 30);
        t.read(ino, 0, &mut b, 40).unwrap();
        assert_eq!(t.stat(ino).unwrap().atime, 30, "a second read leaves it");
        t.write(ino, 0, b"y", 50).unwrap();
        t.read(ino, 0, &mut b, 60).unwrap();
        assert_eq!(
            t.stat(ino).unwrap().atime,
            60,
            "the first read after a write"
        );
        t.read(ino, 0, &mut b, 60 + DAY).unwrap();
        assert_eq!(t.stat(ino).unwrap().atime, 60 + DAY, "a day later");
    }

    fn fs() -> Tmpfs {
        Tmpfs::new(64 * PAGE, 1)
    }

    fn read_all(t: &mut Tmpfs, ino: Ino) -> Vec<u8> {
        let mut buf = vec![0u8; t.stat(ino).unwrap().size as usize];
        let n = t.read(ino, 0, &mut buf, 2).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn files_are_made_written_read_and_truncated() {
        let mut t = fs();
        let (f, made) = t.create(b"a.txt", 0o600, true, 5).unwrap();
        assert!(made);
        assert_eq!(t.create(b"a.txt", 0o600, true, 5), Err(EEXIST));
        assert_eq!(t.create(b"a.txt", 0o600, false, 5), Ok((f, false)));
        assert_eq!(t.write(f, 0, b"hello", 6), Ok(5));
        // A hole reads as zeros.
        assert_eq!(t.write(f, 10000, b"end", 7), Ok(3));
        let st = t.stat(f).unwrap();
        assert_eq!(
            (st.size, st.mode, st.nlink, st.mtime),
            (10003, S_IFREG | 0o600, 1, 7)
        );
        assert_eq!(st.blocks, 2 * 8, "the hole's page is not held");
        let all = read_all(&mut t, f);
        assert_eq!(&all[..5], b"hello");
        assert!(all[5..10000].iter().all(|&b| b == 0));
        assert_eq!(&all[10000..], b"end");
        let mut buf = [0u8; 8];
        assert_eq!(t.read(f, 3, &mut buf, 8), Ok(8));
        assert_eq!(&buf, b"lo\0\0\0\0\0\0");
        assert_eq!(t.read(f, 20000, &mut buf, 8), Ok(0));
        t.truncate(f, 3, 9).unwrap();
        assert_eq!(read_all(&mut t, f), b"hel");
        assert_eq!(t.used(), PAGE);
        // Growing again shows zeros, not the old bytes.
        t.truncate(f, 6, 9).unwrap();
        assert_eq!(read_all(&mut t, f), b"hel\0\0\0");
    }

    #[test]
    fn names_removed_or_added_while_listing_do_not_move_the_others() {
        let mut t = fs();
        let d = t.mkdir(b"d", 0o755, 1).unwrap();
        for i in 0..100 {
            t.create(format!("d/f{i:03}").as_bytes(), 0o644, true, 1)
                .unwrap();
        }
        // As rm -rf: read some, remove what was read, read on.
        let mut at = 0;
        let mut seen = Vec::new();
        loop {
            let batch: Vec<Entry> = t.list(d, at).unwrap().into_iter().take(7).collect();
            let Some(last) = batch.last() else { break };
            at = last.next;
            for e in batch.into_iter().filter(|e| e.name[0] == b'f') {
                t.unlink(&[&b"d/"[..], &e.name].concat(), 2).unwrap();
                seen.push(e.name);
            }
            // A name made meanwhile comes after the others.
            if seen.len() >= 50 && t.lookup(b"d/late").is_err() {
                t.create(b"d/late", 0o644, true, 2).unwrap();
            }
        }
        assert_eq!(seen.len(), 100);
        let names: Vec<Vec<u8>> = t.list(d, 0).unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, [&b"."[..], b"..", b"late"]);
        // A name renamed over keeps its place; a renamed one takes a new.
        t.create(b"d/x", 0o644, true, 3).unwrap();
        t.create(b"d/y", 0o644, true, 3).unwrap();
        t.rename(b"d/y", b"d/late", 3).unwrap();
        t.rename(b"d/x", b"d/z", 3).unwrap();
        let names: Vec<Vec<u8>> = t.list(d, 2).unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, [&b"late"[..], b"z"]);
    }

    #[test]
    fn directories_nest_and_list_in_the_order_made() {
        let mut t = fs();
        let d = t.mkdir(b"d", 0o755, 2).unwrap();
        assert_eq!(t.mkdir(b"d", 0o755, 2), Err(EEXIST));
        assert_eq!(t.mkdir(b"x/y", 0o755, 2), Err(ENOENT));
        t.create(b"d/b", 0o644, true, 3).unwrap();
        t.create(b"d/a", 0o644, true, 3).unwrap();
        t.mkdir(b"d/sub", 0o755, 3).unwrap();
        assert_eq!(t.create(b"d/a/z", 0o644, true, 3), Err(ENOTDIR));
        let names: Vec<Vec<u8>> = t.list(d, 0).unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, [&b"."[..], b"..", b"b", b"a", b"sub"]);
        let rest = t.list(d, 3).unwrap();
        assert_eq!(rest[0].name, b"a");
        assert_eq!(rest[0].next, 4);
        assert_eq!(t.stat(d).unwrap().nlink, 3);
        assert_eq!(t.stat(ROOT).unwrap().nlink, 3);
        assert_eq!(t.rmdir(b"d", 4), Err(ENOTEMPTY));
        assert_eq!(t.unlink(b"d/sub", 4), Err(EISDIR));
        assert_eq!(t.rmdir(b"d/a", 4), Err(ENOTDIR));
        t.rmdir(b"d/sub", 4).unwrap();
        t.unlink(b"d/a", 4).unwrap();
        t.unlink(b"d/b", 4).unwrap();
        t.rmdir(b"d", 4).unwrap();
        assert_eq!(t.lookup(b"d"), Err(ENOENT));
        assert_eq!(t.stat(ROOT).unwrap().nlink, 2);
        assert_eq!(t.rmdir(b"", 4), Err(EBUSY));
        assert_eq!(t.lookup(&[b'n'; 256]), Err(ENAMETOOLONG));
    }

    #[test]
    fn rename_replaces_atomically_as_linux_does() {
        let mut t = fs();
        let (a, _) = t.create(b"a", 0o644, true, 1).unwrap();
        let (b, _) = t.create(b"b", 0o644, true, 1).unwrap();
        t.write(a, 0, b"new", 2).unwrap();
        t.write(b, 0, b"old", 2).unwrap();
        t.rename(b"a", b"b", 3).unwrap();
        assert_eq!(t.lookup(b"a"), Err(ENOENT));
        assert_eq!(t.lookup(b"b"), Ok(a));
        assert_eq!(t.used(), PAGE, "the replaced file's page is freed");
        t.mkdir(b"d", 0o755, 4).unwrap();
        t.mkdir(b"e", 0o755, 4).unwrap();
        t.create(b"e/f", 0o644, true, 4).unwrap();
        assert_eq!(t.rename(b"d", b"e", 5), Err(ENOTEMPTY));
        assert_eq!(t.rename(b"d", b"b", 5), Err(ENOTDIR));
        assert_eq!(t.rename(b"b", b"d", 5), Err(EISDIR));
        assert_eq!(t.rename(b"d", b"d/inside", 5), Err(EINVAL));
        assert_eq!(t.rename(b"missing", b"x", 5), Err(ENOENT));
        t.rename(b"d", b"e/d", 5).unwrap();
        assert_eq!(t.stat(ROOT).unwrap().nlink, 3);
        let e = t.lookup(b"e").unwrap();
        assert_eq!(t.stat(e).unwrap().nlink, 3);
        let d = t.lookup(b"e/d").unwrap();
        assert_eq!(t.list(d, 1).unwrap()[0].ino, e, "its .. is its new parent");
        t.rename(b"b", b"b", 6).unwrap();
        assert_eq!(t.lookup(b"b"), Ok(a));
    }

    #[test]
    fn an_unlinked_open_file_lives_until_closed() {
        let mut t = fs();
        let (f, _) = t.create(b"f", 0o600, true, 1).unwrap();
        t.hold(f);
        t.write(f, 0, &[7; 5000], 2).unwrap();
        t.unlink(b"f", 3).unwrap();
        assert_eq!(t.lookup(b"f"), Err(ENOENT));
        assert_eq!(t.stat(f).unwrap().nlink, 0);
        assert_eq!(read_all(&mut t, f).len(), 5000);
        t.release(f);
        assert_eq!(t.stat(f), Err(ENOENT));
        assert_eq!(t.used(), 0);
    }

    #[test]
    fn chown_keeps_owners_and_clears_set_id_bits() {
        let mut t = Tmpfs::new(1 << 20, 0);
        let (f, _) = t.create(b"f", 0o6755, true, 0).unwrap();
        t.chown(f, Some(1000), None, 5).unwrap();
        let st = t.stat(f).unwrap();
        assert_eq!(
            (st.uid, st.gid, st.mode & 0o7777, st.ctime),
            (1000, 0, 0o755, 5)
        );
        // Set-group-ID without group execute (mandatory locking) stays.
        let (g, _) = t.create(b"g", 0o2644, true, 0).unwrap();
        t.chown(g, None, Some(50), 6).unwrap();
        let st = t.stat(g).unwrap();
        assert_eq!((st.uid, st.gid, st.mode & 0o7777), (0, 50, 0o2644));
        // A directory keeps its bits.
        t.mkdir(b"d", 0o2775, 0).unwrap();
        let d = t.lookup(b"d").unwrap();
        t.chown(d, Some(1), Some(1), 7).unwrap();
        assert_eq!(t.stat(d).unwrap().mode & 0o7777, 0o2775);
        assert_eq!(t.chown(999, Some(1), None, 0), Err(ENOENT));
        // chown(-1, -1) clears set-user-ID too.
        t.chmod(f, 0o4755, 8).unwrap();
        t.chown(f, None, None, 8).unwrap();
        assert_eq!(t.stat(f).unwrap().mode & 0o7777, 0o755);
        // In the set-group-ID directory d (group 1), what user 1000 of
        // group 100 makes takes group 1, and a directory is set-group-ID.
        t.made_by(1000, 100);
        let (g, _) = t.create(b"d/g", 0o644, true, 9).unwrap();
        t.mkdir(b"d/s", 0o755, 9).unwrap();
        let s = t.lookup(b"d/s").unwrap();
        let (gs, ss) = (t.stat(g).unwrap(), t.stat(s).unwrap());
        assert_eq!((gs.uid, gs.gid, gs.mode & 0o7777), (1000, 1, 0o644));
        assert_eq!((ss.uid, ss.gid, ss.mode & 0o7777), (1000, 1, 0o2755));
        let (h, _) = t.create(b"h", 0o644, true, 9).unwrap();
        assert_eq!(t.stat(h).unwrap().gid, 100);
    }

    #[test]
    fn dirents_are_linux_dirent64s_that_fit() {
        let e = |name: &[u8], next| Entry {
            ino: 9,
            is_dir: false,
            is_fifo: false,
            is_socket: false,
            is_symlink: false,
            name: name.to_vec(),
            next,
        };
        let list = [e(b"abcde", 1), e(b"a-longer-name", 2)];
        let all = dirents(&list, 4096);
        assert_eq!(all.len(), 32 + 40);
        assert_eq!(u64::from_le_bytes(all[0..8].try_into().unwrap()), 9);
        assert_eq!(u64::from_le_bytes(all[8..16].try_into().unwrap()), 1);
        assert_eq!(u16::from_le_bytes(all[16..18].try_into().unwrap()), 32);
        assert_eq!(all[18], 8);
        assert_eq!(&all[19..25], b"abcde\0");
        assert_eq!(dirents(&list, 40).len(), 32, "only what fits");
        assert!(dirents(&list, 31).is_empty());
        assert_eq!(
            parse_dirents(&all),
            [(9, b"abcde".to_vec(), 8), (9, b"a-longer-name".to_vec(), 8)]
        );
        // A record whose length runs past the end, or is too short, ends it.
        assert_eq!(parse_dirents(&all[..60]).len(), 1);
        let mut bad = all.clone();
        bad[16] = 4;
        assert!(parse_dirents(&bad).is_empty());
        assert!(parse_dirents(&[0; 10]).is_empty());
    }

    #[test]
    fn a_full_file_system_says_enospc() {
        let mut t = Tmpfs::new(2 * PAGE, 1);
        let (f, _) = t.create(b"f", 0o600, true, 1).unwrap();
        assert_eq!(
            t.write(f, 0, &[1; 3 * PAGE as usize], 2),
            Ok(2 * PAGE as usize)
        );
        assert_eq!(t.write(f, 2 * PAGE, &[1; 10], 2), Err(ENOSPC));
        // Rewriting what is held needs no room.
        assert_eq!(t.write(f, 0, &[2; 10], 2), Ok(10));
        assert_eq!(t.write(f, u64::MAX - 2, &[1; 10], 2), Err(EFBIG));
        t.truncate(f, 0, 3).unwrap();
        assert_eq!(t.write(f, 0, &[1; 10], 2), Ok(10));
    }
}
