//! From a path to its file: search permission on the directories on the
//! way, the walk that resolves a path (links, `..`, a descriptor to start
//! from) and the names a path argument may hold.

use super::*;

impl Kernel {
    /// A path argument that must name a directory (chdir, chroot), made
    /// absolute with its links followed: ENOTDIR for anything else.
    /// The directory chdir or chroot names: it must be one (ENOTDIR) the
    /// caller may search (EACCES).
    pub(super) fn directory_arg(&mut self, pid: Pid, ptr: u64) -> Result<Vec<u8>, Errno> {
        let path = self
            .path_arg(pid, AT_FDCWD, ptr)
            .and_then(|p| self.follow(p))?;
        self.directory_at(pid, path)
    }

    /// [`Self::directory_arg`] of `path` (resolved and followed).
    fn directory_at(&mut self, pid: Pid, path: Vec<u8>) -> Result<Vec<u8>, Errno> {
        match self.owned_at(&path) {
            Err(ENOENT) => match self.storage_leads_to(pid, &path, true) {
                Some(to) => self.leaving_storage(&to, |k, to| {
                    let path = k.resolve(pid, AT_FDCWD, to).and_then(|p| k.follow(p))?;
                    k.directory_at(pid, path)
                }),
                None => Err(ENOENT),
            },
            owned => {
                self.may_enter(pid, owned?)?;
                Ok(path)
            }
        }
    }

    /// ENOTDIR unless `f` is a directory's, EACCES unless `pid` may search
    /// it (chdir, fchdir, chroot).
    pub(super) fn may_enter(&self, pid: Pid, f: pmon::cred::Owned) -> Result<(), Errno> {
        if f.mode & 0o170000 != 0o040000 {
            return Err(ENOTDIR);
        }
        self.may(pid, f, pmon::cred::MAY_EXEC)
    }

    /// Which file of the tmpfs or storage `full` names now (its inode,
    /// tagged as the lock table tags them), or None (the host's, or none).
    pub(in crate::kernel) fn file_identity(&self, full: &[u8]) -> Option<u64> {
        match self.tmp_node(full) {
            Some(ino) => Some(lock::tmp_key(ino)),
            None if self.on_storage(full) => crate::kernel::store::stat(full, true)
                .ok()
                .map(|st| lock::store_key(st.ino)),
            None => None,
        }
    }

    /// The owner, group and mode of the file at `full` (absolute,
    /// followed): the tmpfs's, storage's or the host's.
    pub(in crate::kernel) fn owned_at(&self, full: &[u8]) -> Result<pmon::cred::Owned, Errno> {
        match self.tmp_node(full) {
            Some(ino) => self.tmp.stat(ino).map(|st| pmon::cred::Owned::from(&st)),
            None if self.on_storage_to_look(full) => {
                crate::kernel::store::stat(full, true).map(|st| pmon::cred::Owned::from(&st))
            }
            None => host::stat_path(full, true).map(|st| pmon::cred::Owned::from(&st)),
        }
    }

    /// EACCES unless process `pid` may search every directory a walk of
    /// `full` from `from` looks a name up in (`pmon::search`), as Linux's
    /// walk; nothing is asked of a process with CAP_DAC_OVERRIDE or
    /// CAP_DAC_READ_SEARCH. A directory missing, or a file where one
    /// should be, ends the checks: the call says ENOENT or ENOTDIR.
    pub(super) fn may_search(
        &self,
        pid: Pid,
        full: &[u8],
        from: &[u8],
        relative: bool,
    ) -> Result<(), Errno> {
        match self.procs.get(&pid) {
            Some(p) if self.searches(pid) => self.may_search_walk(p, full, from, relative, 0),
            _ => Ok(()),
        }
    }

    /// Whether `pid`'s walks are checked: it has neither CAP_DAC_OVERRIDE
    /// nor CAP_DAC_READ_SEARCH.
    pub(super) fn searches(&self, pid: Pid) -> bool {
        self.procs.get(&pid).is_some_and(|p| {
            !p.cred.capable(pmon::caps::DAC_OVERRIDE)
                && !p.cred.capable(pmon::caps::DAC_READ_SEARCH)
        })
    }

    /// `may_search`'s walk. A symbolic link of storage or the host on
    /// the way (which the walk here leaves to them to follow) has its
    /// target's directories checked too, as Linux's walk passes them.
    pub(super) fn may_search_walk(
        &self,
        p: &Process,
        full: &[u8],
        from: &[u8],
        relative: bool,
        links: u32,
    ) -> Result<(), Errno> {
        // Past Linux's 40 links the call's own walk says ELOOP.
        const MAX_LINKS: u32 = 40;
        let now = self.now_ns();
        for dir in pmon::search::walked_dirs(full, from, relative) {
            // /proc, /sys and /dev answer for themselves.
            if [&b"/proc"[..], b"/sys", b"/dev"]
                .iter()
                .any(|top| dir.starts_with(top) && matches!(dir.get(top.len()), None | Some(b'/')))
            {
                continue;
            }
            let kept = self.dir_cache.borrow().get(p.vnode, dir, now);
            let (owned, link) = match kept {
                Some(k) => k,
                None => match self.dir_entry(dir) {
                    Ok(k) => {
                        // (The tmpfs's are the monitor's own: not kept.)
                        if self.tmp_node(dir).is_none() {
                            self.dir_cache
                                .borrow_mut()
                                .put(p.vnode, dir, k.clone(), now);
                        }
                        k
                    }
                    Err(_) => return Ok(()),
                },
            };
            if let Some(target) = link {
                if links >= MAX_LINKS {
                    return Ok(());
                }
                let parent = &dir[..dir.iter().rposition(|&c| c == b'/').unwrap_or(0).max(1)];
                let mut to = pmon::path::resolve(parent, &target);
                to.extend_from_slice(b"/.");
                self.may_search_walk(p, &to, b"/", false, links + 1)?;
                continue;
            }
            if owned.mode & 0o170000 != 0o040000 {
                return Ok(());
            }
            if !p.cred.may_access(&p.groups, owned, pmon::cred::MAY_EXEC) {
                return Err(EACCES);
            }
        }
        Ok(())
    }

    /// The owner, group and mode of the name `full` itself (a link not
    /// followed), and a link's target.
    pub(super) fn dir_entry(&self, full: &[u8]) -> Result<pmon::search::Entry, Errno> {
        const S_IFLNK: u32 = 0o120000;
        let (owned, link) = match self.tmp_node(full) {
            Some(ino) => {
                let st = self.tmp.stat(ino)?;
                let link = self.tmp.readlink(ino).ok().map(<[u8]>::to_vec);
                (pmon::cred::Owned::from(&st), link)
            }
            None if self.on_storage_to_look(full) => {
                let st = crate::kernel::store::stat(full, false)?;
                let link = (st.mode & 0o170000 == S_IFLNK)
                    .then(|| self.store_readlink(full).ok())
                    .flatten();
                (pmon::cred::Owned::from(&st), link)
            }
            None => {
                let st = host::stat_path(full, false)?;
                let link = (st.mode & 0o170000 == S_IFLNK)
                    .then(|| host::readlink(full).ok())
                    .flatten();
                (pmon::cred::Owned::from(&st), link)
            }
        };
        Ok((owned, link))
    }

    /// Whether `p` is a name in `pid`'s working directory that was removed
    /// (`cwd_removed`): it has no names, as Linux's dead directory, so
    /// such a path is ENOENT even where a new directory has its name; a
    /// path that first leaves it by `..` goes on from its parent.
    pub(in crate::kernel) fn in_removed_cwd(&self, pid: Pid, p: &[u8]) -> bool {
        p.first() != Some(&b'/')
            && !pmon::path::leaves_first(p)
            && self.procs.get(&pid).is_some_and(|pr| pr.cwd_gone)
    }

    /// A path argument, made absolute against the working directory or a
    /// directory descriptor.
    pub(super) fn path_arg(&mut self, pid: Pid, dirfd: i64, ptr: u64) -> Result<Vec<u8>, Errno> {
        let p = uaccess::read_cstr(self.space_mut(pid)?, ptr, pmon::path::PATH_MAX - 1)?;
        self.resolve(pid, dirfd, &p)
    }

    pub(super) fn resolve(&self, pid: Pid, dirfd: i64, p: &[u8]) -> Result<Vec<u8>, Errno> {
        if p.is_empty() {
            return Err(ENOENT);
        }
        if dirfd == AT_FDCWD && self.in_removed_cwd(pid, p) {
            return Err(ENOENT);
        }
        let root = self.root_of(pid);
        let base = if p.first() == Some(&b'/') || dirfd == AT_FDCWD {
            self.procs
                .get(&pid)
                .map(|pr| pr.cwd.clone())
                .unwrap_or_else(|| b"/".to_vec())
        } else {
            let f = self.file(pid, dirfd)?;
            if !self.is_directory_file(&f) {
                return Err(ENOTDIR);
            }
            pmon::path::dev_shm_shown(f.path.clone())
        };
        // A `..` is taken after the links before it (a directory
        // descriptor's path may hold some; a working directory does not).
        let mut link = |prefix: &[u8]| self.link_of(pid, prefix);
        let base = if dirfd != AT_FDCWD && p.first() != Some(&b'/') && pmon::path::has_dot_dot(p) {
            pmon::path::walk(b"/", b"/", &base, true, &mut link)?
        } else {
            base
        };
        let mut walked = pmon::path::walk(&root, &base, p, false, &mut link)?;
        // Past a link of /proc or /dev/fd (/proc/self/cwd/x, /dev/fd/3/x):
        // the links before the last name are followed, as Linux's walk.
        if pmon::path::through_magic_link(&walked) {
            let last = pmon::path::split_last(&walked);
            let mut dir = pmon::path::walk(&root, b"/", last.dir, true, &mut link)?;
            if dir.last() != Some(&b'/') {
                dir.push(b'/');
            }
            dir.extend_from_slice(last.name);
            walked = dir;
        }
        // The tmpfs's symbolic links on the way are followed here; the
        // last name is the caller's to follow (`follow`).
        let relative = p.first() != Some(&b'/');
        let walked = pmon::path::dev_shm_alias(pmon::path::thread_self(walked, pid, self.caller));
        // (Kept only for a caller whose search is checked: root's paths
        // are not copied.)
        let kept = self.searches(pid).then(|| walked.clone());
        let full = match self.tmp_links(walked, false) {
            Ok(full) => full,
            // A file or a long name on the way in the tmpfs: a directory
            // before it the caller may not search says EACCES first, as
            // Linux's walk asks may_lookup before each lookup.
            Err(e) => {
                if let Some(walked) = kept {
                    self.may_search(pid, &walked, if relative { &base } else { &root }, relative)?;
                }
                return Err(e);
            }
        };
        // Decided: requests to storage and to the host's files carry the
        // whole path, which Linux bounds by PATH_MAX, so a path whose
        // absolute form is longer is ENAMETOOLONG there, even where Linux
        // would reach it relative to a deep working directory. The tmpfs
        // (/tmp, /dev/shm) is the monitor's own and takes any depth.
        if full.len() >= pmon::path::PATH_MAX && tmp::below_tmp(&full).is_none() {
            return Err(ENAMETOOLONG);
        }
        self.may_search(pid, &full, if relative { &base } else { &root }, relative)?;
        Ok(full)
    }

    /// What a path walk asks of `full` (absolute, no link before its
    /// last name) before a `..` leaves it ([`pmon::path::walk`]): the
    /// target if it is a symbolic link of the tmpfs, storage or the host,
    /// or /proc's self, thread-self and a process's cwd and root; a
    /// missing name (ENOENT) or one under a file (ENOTDIR) ends the walk
    /// there, as on Linux.
    pub(super) fn link_of(&self, pid: Pid, full: &[u8]) -> Result<Option<Vec<u8>>, Errno> {
        let full = pmon::path::dev_shm_alias(full.to_vec());
        let ends = |e: Errno| match e {
            ENOENT | ENOTDIR => Err(e),
            _ => Ok(None),
        };
        match self.task_name(pid, pmon::path::name(&full, pid)) {
            Name::SelfDir if full == b"/proc/thread-self" => Ok(Some(
                alloc::format!("{pid}/task/{}", self.caller).into_bytes(),
            )),
            Name::SelfDir => Ok(Some(alloc::format!("{pid}").into_bytes())),
            name @ (Name::Cwd(_) | Name::Root(_)) => Ok(self.link_target(pid, name).ok()),
            // An open directory's name; names cannot go on past a file.
            Name::Fd(t, n) => match self.fd_file(pid, t, n) {
                Ok(f) if self.is_directory_file(&f) && f.path.first() == Some(&b'/') => {
                    Ok(Some(pmon::path::dev_shm_shown(f.path.clone())))
                }
                Ok(_) => Err(ENOTDIR),
                Err(e) => Err(e),
            },
            Name::Host => match self.tmp_node(&full) {
                Some(ino) if self.tmp.is_symlink(ino) => {
                    Ok(self.tmp.readlink(ino).ok().map(<[u8]>::to_vec))
                }
                Some(_) => Ok(None),
                None if self.on_storage_to_look(&full) => {
                    self.store_readlink(&full).map(Some).or_else(ends)
                }
                None => host::readlink(&full).map(Some).or_else(ends),
            },
            _ => Ok(None),
        }
    }

    /// Whether open file `f` is a directory (one a path may start from).
    pub(super) fn is_directory_file(&self, f: &OpenFile) -> bool {
        match f.kind {
            Kind::HostDir(_) | Kind::ProcDir(..) | Kind::StoreDir(_) => true,
            Kind::Tmp(ino) => self.tmp.is_directory(ino),
            _ => false,
        }
    }

    /// Where `full` leads, when storage said ENOENT for it, past storage's
    /// own symbolic links to a name storage lacks (`follow`: the last
    /// name's link too): `/etc/localtime` to the host's
    /// `/usr/share/zoneinfo/...`, a link to `/dev/stdout` or into /tmp, or
    /// `/d/share/doc` through a link to the host's `/usr/share`. Storage
    /// follows its own links and knows nothing of the files the processor
    /// serves, so the caller does its call again on the path returned (as
    /// process `pid` names it), through [`Self::leaving_storage`]. None when
    /// the ENOENT stands. Asked only after an ENOENT whose walk followed a
    /// link (`store::enoent_past_link`): a file found, or a name missing
    /// with no link on the way, costs nothing more.
    pub(super) fn storage_leads_to(&self, pid: Pid, full: &[u8], follow: bool) -> Option<Vec<u8>> {
        // (Asked first: the look at `full` below may ask storage too.)
        if !crate::kernel::store::enoent_past_link() || !self.on_storage(full) {
            return None;
        }
        self.storage_leads_off(pid, full, follow)
    }

    /// [`Self::storage_leads_to`] without looking at the last reply: for
    /// a call with two paths (rename), whose first question is a reply too.
    pub(super) fn storage_leads_off(&self, pid: Pid, full: &[u8], follow: bool) -> Option<Vec<u8>> {
        let reached = self.storage_reached(full, follow)?;
        // Where storage has the say, its ENOENT is the answer.
        if self.on_storage_to_look(&reached) {
            return None;
        }
        Some(self.shown(pid, &reached))
    }

    /// The path storage's links on `full` lead to, where storage lacks a
    /// name (`lego_proto::storage::OP_LEADS_TO`); None when no link was
    /// followed or the file is there.
    pub(in crate::kernel) fn storage_reached(&self, full: &[u8], follow: bool) -> Option<Vec<u8>> {
        use lego_proto::storage::{FLAG_FOLLOW, OP_LEADS_TO};
        let flags = if follow { FLAG_FOLLOW } else { 0 };
        let reached = crate::kernel::store::on_path(OP_LEADS_TO, full, flags, 0).ok()?;
        Some(reached.data)
    }

    /// `r`, storage's answer to a call that makes or removes the name
    /// `full`; where it is ENOENT because storage's links on the way lead
    /// off it ([`Self::storage_leads_to`]: a directory's link into /tmp or
    /// the host's trees), `again` done on the path they lead to, its last
    /// name not followed, as Linux's walk crosses file systems.
    pub(super) fn or_off_storage(
        &mut self,
        pid: Pid,
        full: &[u8],
        r: Ret,
        again: impl FnOnce(&mut Self, Vec<u8>) -> Ret,
    ) -> Ret {
        self.or_led_off(pid, full, false, r, again)
    }

    /// [`Self::or_off_storage`] for a call that changes the file `full`
    /// names (chmod, chown, utimensat, truncate), its last name's link
    /// followed too if `follow`.
    pub(super) fn or_led_off(
        &mut self,
        pid: Pid,
        full: &[u8],
        follow: bool,
        r: Ret,
        again: impl FnOnce(&mut Self, Vec<u8>) -> Ret,
    ) -> Ret {
        // (A call by descriptor names no path: nothing led anywhere.)
        if full.is_empty() || !matches!(r, Ret::Val(v) if v == -ENOENT) {
            return r;
        }
        let Some(to) = self.storage_leads_to(pid, full, follow) else {
            return r;
        };
        let again = |k: &mut Self, to: &[u8]| Ok(again(k, k.resolve(pid, AT_FDCWD, to)?));
        self.leaving_storage(&to, again).unwrap_or_else(err)
    }

    /// `again` done on `to` (a path [`Self::storage_leads_to`] gave), or
    /// ELOOP when links lead off storage and back more than 8 times
    /// within one call (a link into /tmp whose target is the link again:
    /// each pass would otherwise call the next, without end).
    pub(super) fn leaving_storage<T>(
        &mut self,
        to: &[u8],
        again: impl FnOnce(&mut Self, &[u8]) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        if self.storage_exits >= 8 {
            return Err(ELOOP);
        }
        self.storage_exits += 1;
        let r = again(self, to);
        self.storage_exits -= 1;
        r
    }

    /// A resolved path with its last name followed too, if it is a
    /// symbolic link of the tmpfs (storage follows its own).
    pub(super) fn follow(&self, full: Vec<u8>) -> Result<Vec<u8>, Errno> {
        self.tmp_links(full, true)
    }
}
