//! The hypercalls of a processor running a user's program
//! (`lego_proto::program`): its arguments and environment, the host files
//! execve and open read, stdio, statfs, idling and kicks, loading file
//! pages into a process's memory, and the program's end. A vCPU routes
//! these ports here; nothing here touches vCPU state.

use crate::guest_args::GuestArgs;
use crate::program::Program;

/// What a program hypercall asks of the vCPU after it is served.
pub enum Served {
    Continue,
    /// The program is over: its exit and the path of what it ran.
    Exit(lego_proto::program::ProgramExit, Vec<u8>),
}

pub struct ProgramPorts<'a> {
    pub args: GuestArgs<'a>,
    pub program: &'a Program,
    pub excache: Option<&'a crate::excache::ExCache>,
    /// The calling vCPU.
    pub cpu: u32,
    /// The fabric and the storage component serving the program's files.
    pub storage: Option<(&'a std::sync::Arc<crate::fabric::Fabric>, u32)>,
}

impl ProgramPorts<'_> {
    /// Sends file calls to the storage component, all before waiting for
    /// any, and copies each reply into the guest: (status, reply length)
    /// for each. A component that does not answer within the fabric
    /// timeout, and whose VMM does not say it is at work (a slow disk:
    /// `fabric::busy`), is STORAGE_UNREACHABLE, which the program sees as
    /// EIO: file calls never hang on a dead storage component.
    fn storage_calls(
        &self,
        calls: &[lego_proto::program::StorageCall],
    ) -> Result<Vec<(u32, u32)>, String> {
        use lego_proto::program::STORAGE_NONE;
        if self.storage.is_none() {
            return Ok(vec![(STORAGE_NONE, 0); calls.len()]);
        }
        let pending = calls
            .iter()
            .map(|c| self.start_call(c))
            .collect::<Result<Vec<_>, String>>()?;
        // Once one call found the component silent, the rest of the batch
        // does not wait a fabric timeout each.
        let mut silent = false;
        calls
            .iter()
            .zip(pending)
            .map(|(c, (id, p))| self.finish_call(id, p, c.reply, c.reply_room, &mut silent))
            .collect()
    }

    /// Sends one call's request to its storage component: the component
    /// and the call (or why it was not sent: no storage component, or it
    /// is unknown).
    fn start_call(
        &self,
        c: &lego_proto::program::StorageCall,
    ) -> Result<(u32, Result<crate::fabric::PendingCall, String>), String> {
        let (id, request) = self.request_of(c)?;
        let Some((fabric, _)) = self.storage else {
            return Ok((0, Err("this processor has no storage component".into())));
        };
        // Posted writes whose component restarted go again first.
        self.program.posted.resend_failed(fabric);
        Ok((id, fabric.start_patient_call(id, &request)))
    }

    /// A call's request, read from the guest, and the storage component it
    /// goes to (0 without one).
    fn request_of(&self, c: &lego_proto::program::StorageCall) -> Result<(u32, Vec<u8>), String> {
        use lego_proto::storage::{MAX_IO, PATH_MAX};
        let most = (size_of::<lego_proto::storage::StoreRequest>() + 2 * PATH_MAX + MAX_IO) as u64;
        let request =
            self.args
                .read_bytes("storage request", c.request, c.request_len as u64, most)?;
        // A run's vNode may be on another storage component than the
        // processor's own; the storage component checks the grant.
        let id = match self.storage {
            Some((_, own)) if c.node == 0 => own,
            Some(_) => c.node,
            None => 0,
        };
        Ok((id, request))
    }

    /// Waits for a started call (not at all once `silent`) and copies its
    /// reply into the guest at `reply` (`room` bytes): its status and
    /// reply length. A component that does not answer (within the fabric
    /// timeout, or longer while it is at work) makes `silent` true.
    fn finish_call(
        &self,
        id: u32,
        call: Result<crate::fabric::PendingCall, String>,
        reply: u64,
        room: u32,
        silent: &mut bool,
    ) -> Result<(u32, u32), String> {
        use lego_proto::program::{STORAGE_BAD, STORAGE_OK, STORAGE_UNREACHABLE};
        if *silent {
            return Ok((STORAGE_UNREACHABLE, 0));
        }
        let bytes = match call.and_then(|p| p.wait()) {
            Ok(r) => r,
            Err(why) => {
                log::warn!("storage component {id} did not answer a file call: {why}");
                *silent = true;
                return Ok((STORAGE_UNREACHABLE, 0));
            }
        };
        if bytes.len() > room as usize {
            log::warn!(
                "storage component {id} answered {} bytes where {room} were expected",
                bytes.len()
            );
            return Ok((STORAGE_BAD, 0));
        }
        self.args.write_bytes("storage reply", reply, &bytes)?;
        Ok((STORAGE_OK, bytes.len() as u32))
    }

    /// Starts reads to keep and collects (or drops) earlier ones
    /// (PORT_STORAGE_FETCH).
    fn fetch(&self, f: &lego_proto::program::StorageFetch) -> Result<(), String> {
        use lego_proto::program::{STORAGE_FETCH_MAX, STORAGE_NOT_KEPT};
        let fetched = &self.program.fetched;
        for c in self.call_array("storage fetch", f.start, f.start_count)? {
            let (node, call) = self.start_call(&c)?;
            let kept = crate::fetched::Kept {
                reply: c.reply,
                room: c.reply_room,
                node,
                call,
            };
            // One not kept is found missing when collected.
            fetched.keep(c.tag, kept, STORAGE_FETCH_MAX as usize);
        }
        let mut collect = self.call_array("storage fetch", f.collect, f.collect_count)?;
        if f.drop != 0 {
            for c in &collect {
                fetched.take(c.tag);
            }
            return Ok(());
        }
        let mut silent = false;
        for c in collect.iter_mut() {
            (c.status, c.reply_len) = match fetched.take(c.tag) {
                Some(k) => self.finish_call(k.node, k.call, k.reply, k.room, &mut silent)?,
                None => (STORAGE_NOT_KEPT, 0),
            };
        }
        let out: Vec<u8> = collect
            .iter()
            .flat_map(|c| zerocopy::IntoBytes::as_bytes(c).to_vec())
            .collect();
        if !out.is_empty() {
            self.args.write_bytes("storage fetch", f.collect, &out)?;
        }
        Ok(())
    }

    /// `count` (at most STORAGE_BATCH_MAX) calls at `at` in guest memory.
    fn call_array(
        &self,
        what: &str,
        at: u64,
        count: u32,
    ) -> Result<Vec<lego_proto::program::StorageCall>, String> {
        use lego_proto::program::{StorageCall, STORAGE_BATCH_MAX};
        if count > STORAGE_BATCH_MAX {
            return Err(format!(
                "passed a {what} of {count} calls (at most {STORAGE_BATCH_MAX})"
            ));
        }
        if count == 0 {
            return Ok(Vec::new());
        }
        let size = size_of::<StorageCall>() as u64;
        let bytes = self.args.read_bytes(
            what,
            at,
            count as u64 * size,
            STORAGE_BATCH_MAX as u64 * size,
        )?;
        Ok(bytes
            .chunks_exact(size as usize)
            .filter_map(|c| zerocopy::FromBytes::read_from_bytes(c).ok())
            .collect())
    }

    /// The calls of a batch or post (1 to STORAGE_BATCH_MAX).
    fn read_calls(
        &self,
        what: &str,
        b: &lego_proto::program::StorageBatch,
    ) -> Result<Vec<lego_proto::program::StorageCall>, String> {
        if b.count == 0 {
            return Err(format!("passed a {what} of no calls"));
        }
        self.call_array(what, b.calls, b.count)
    }

    /// Sends file writes without waiting for them (PORT_STORAGE_POST),
    /// after waiting for the oldest posted ones if too many are
    /// unanswered. Without a storage component they fail (EIO) at once.
    fn post(&self, calls: &[lego_proto::program::StorageCall]) -> Result<(), String> {
        use lego_proto::program::STORAGE_POSTED_MAX;
        let posted = &self.program.posted;
        let Some((fabric, _)) = self.storage else {
            for c in calls {
                posted.fail(c.tag);
            }
            return Ok(());
        };
        let keep = (STORAGE_POSTED_MAX as usize).saturating_sub(calls.len());
        posted.settle(fabric, keep);
        posted.resend_failed(fabric);
        for c in calls {
            let (id, request) = self.request_of(c)?;
            let call = fabric.start_patient_call(id, &request);
            posted.add(fabric, c.tag, id, request, call);
        }
        Ok(())
    }

    /// Serves one of the program hypercalls.
    pub fn serve(&self, port: u16, value: u32) -> Result<Served, String> {
        use lego_proto::program::*;
        let (prog, g) = (self.program, &self.args);
        const MAX_IO: u64 = 1 << 20;
        match port {
            PORT_PROGRAM_ARGS => {
                let a: ProgramArgs = g.read_arg("program arguments", value)?;
                let a = prog.args(a, |gpa, bytes| g.write_bytes("argument buffer", gpa, bytes))?;
                g.write_arg("program arguments", value, &a)?;
            }
            PORT_HOST_OPEN => {
                let mut o: HostOpen = g.read_arg("host open", value)?;
                let path = g.read_bytes("path", o.path, o.path_len, 4096)?;
                (o.handle, o.errno, o.stat) = prog.open(&path, o.flags);
                o.size = o.stat.size;
                g.write_arg("host open", value, &o)?;
            }
            PORT_HOST_STAT => {
                let mut st: HostStat = g.read_arg("host stat", value)?;
                let path = g.read_bytes("path", st.path, st.path_len, 4096)?;
                match prog.stat(&path, st.follow != 0) {
                    Ok(s) => {
                        st.stat = s;
                        st.errno = 0;
                    }
                    Err(e) => st.errno = e,
                }
                g.write_arg("host stat", value, &st)?;
            }
            PORT_HOST_READDIR => {
                let mut r: HostReaddir = g.read_arg("host readdir", value)?;
                r.result = match prog.readdir(r.handle, r.offset, r.len.min(MAX_IO) as usize) {
                    Ok((bytes, next)) => {
                        g.write_bytes("directory buffer", r.buf, &bytes)?;
                        r.offset = next;
                        bytes.len() as i64
                    }
                    Err(e) => e,
                };
                g.write_arg("host readdir", value, &r)?;
            }
            PORT_HOST_STATFS => {
                let mut st: HostStatfs = g.read_arg("host statfs", value)?;
                let path = g.read_bytes("path", st.path, st.path_len, 4096)?;
                match prog.statfs(&path) {
                    Ok(words) => {
                        st.statfs = words;
                        st.errno = 0;
                    }
                    Err(e) => st.errno = e,
                }
                g.write_arg("host statfs", value, &st)?;
            }
            PORT_HOST_READLINK => {
                let mut r: HostReadlink = g.read_arg("host readlink", value)?;
                let path = g.read_bytes("path", r.path, r.path_len, 4096)?;
                r.result = match prog.readlink(&path) {
                    Ok(target) => {
                        let n = target.len().min(r.len as usize);
                        g.write_bytes("link buffer", r.buf, &target[..n])?;
                        n as i64
                    }
                    Err(e) => e,
                };
                g.write_arg("host readlink", value, &r)?;
            }
            PORT_HOST_READ => {
                let mut r: HostRead = g.read_arg("host read", value)?;
                let len = r.len.min(MAX_IO) as usize;
                r.result = match prog.read(r.handle, r.offset, len) {
                    Ok(bytes) => {
                        g.write_bytes("read buffer", r.buf, &bytes)?;
                        bytes.len() as i64
                    }
                    Err(e) => e,
                };
                g.write_arg("host read", value, &r)?;
            }
            PORT_HOST_CLOSE => prog.close(value),
            PORT_STORAGE_CALL => {
                let mut c: StorageCall = g.read_arg("storage call", value)?;
                (c.status, c.reply_len) = self.storage_calls(&[c])?[0];
                g.write_arg("storage call", value, &c)?;
            }
            PORT_STORAGE_POST => {
                let mut b: StorageBatch = g.read_arg("storage post", value)?;
                let calls = self.read_calls("storage post", &b)?;
                self.post(&calls)?;
                b.failed = prog.posted.failures();
                g.write_arg("storage post", value, &b)?;
            }
            PORT_STORAGE_SETTLE => {
                let mut s: StorageSettle = g.read_arg("storage settle", value)?;
                if let Some((fabric, _)) = self.storage {
                    prog.posted.settle(fabric, s.keep as usize);
                }
                s.pending = prog.posted.pending();
                (s.failed, s.errno, s.tag) = match prog.posted.take_failure() {
                    Some((tag, errno)) => (1, errno, tag),
                    None => (0, 0, 0),
                };
                g.write_arg("storage settle", value, &s)?;
            }
            PORT_STORAGE_FETCH => {
                let f: StorageFetch = g.read_arg("storage fetch", value)?;
                self.fetch(&f)?;
            }
            PORT_STORAGE_BATCH => {
                let b: StorageBatch = g.read_arg("storage batch", value)?;
                let mut calls = self.read_calls("storage batch", &b)?;
                let done = self.storage_calls(&calls)?;
                for (c, (status, len)) in calls.iter_mut().zip(done) {
                    (c.status, c.reply_len) = (status, len);
                }
                let out: Vec<u8> = calls
                    .iter()
                    .flat_map(|c| zerocopy::IntoBytes::as_bytes(c).to_vec())
                    .collect();
                g.write_bytes("storage batch", b.calls, &out)?;
            }
            PORT_LOAD => {
                let mut l: Load = g.read_arg("load", value)?;
                l.result = self.load(&l);
                g.write_arg("load", value, &l)?;
            }
            PORT_STDIO => {
                let mut c: StdioCall = g.read_arg("stdio call", value)?;
                let len = c.len.min(MAX_IO);
                c.result = match c.op {
                    STDIO_WRITE => {
                        let bytes = g.read_bytes("output", c.buf, len, MAX_IO)?;
                        prog.write(c.run, c.fd, &bytes)
                    }
                    STDIO_READ if c.fd == 0 => match prog.read_stdin(c.run, len as usize) {
                        Ok(bytes) => {
                            g.write_bytes("input buffer", c.buf, &bytes)?;
                            bytes.len() as i64
                        }
                        Err(e) => e,
                    },
                    STDIO_READ => -EBADF,
                    STDIO_IOCTL => match prog.ioctl(c.run, c.fd, c.arg, len as usize) {
                        Ok(bytes) => {
                            g.write_bytes("ioctl buffer", c.buf, &bytes)?;
                            0
                        }
                        Err(e) => e,
                    },
                    STDIO_STAT => match prog.stat_stdio(c.run, c.fd) {
                        Ok(st) => {
                            g.write_bytes(
                                "stat buffer",
                                c.buf,
                                zerocopy::IntoBytes::as_bytes(&st),
                            )?;
                            0
                        }
                        Err(e) => e,
                    },
                    STDIO_SEEK => prog.seek_stdio(c.run, c.fd, c.arg as i64, c.len),
                    STDIO_PREAD => match prog.pread_stdio(c.run, c.fd, len as usize, c.arg) {
                        Ok(bytes) => {
                            g.write_bytes("input buffer", c.buf, &bytes)?;
                            bytes.len() as i64
                        }
                        Err(e) => e,
                    },
                    STDIO_PWRITE => {
                        let bytes = g.read_bytes("output", c.buf, len, MAX_IO)?;
                        prog.pwrite_stdio(c.run, c.fd, &bytes, c.arg)
                    }
                    _ => -EINVAL,
                };
                g.write_arg("stdio call", value, &c)?;
            }
            PORT_PROGRAM_EXIT => {
                let e: ProgramExit = g.read_arg("program exit", value)?;
                let path = g.read_bytes("program path", e.path, e.path_len, 4096)?;
                let missing =
                    g.read_text("missing-call list", e.missing, e.missing_len, 1 << 16)?;
                if !missing.is_empty() {
                    log::info!("system calls the program made that Lego does not implement:");
                    for line in missing.lines() {
                        log::info!("  {line}");
                    }
                }
                return Ok(Served::Exit(e, path));
            }
            PORT_IDLE => {
                let mut i: Idle = g.read_arg("idle", value)?;
                i.woke = prog.idle(self.cpu, i);
                g.write_arg("idle", value, &i)?;
            }
            PORT_KICK => prog.kick(value),
            PORT_LOCK_WAIT => {
                // A word the guest cannot name is an error, as for any
                // argument outside its RAM.
                g.read_arg::<u32>("lock word", value)?;
                prog.lock_wait(|| {
                    g.read_arg::<u32>("lock word", value)
                        .is_ok_and(|w| w == LOCK_CONTENDED)
                });
            }
            PORT_LOCK_WAKE => prog.lock_wake(),
            PORT_MEM_FILE => {
                let mut m: MemFile = g.read_arg("memory file", value)?;
                let bytes = g.read_bytes("memory file's bytes", m.buf, m.len, MEM_FILE_MAX)?;
                (m.handle, m.errno) = match prog.mem_file(&bytes) {
                    Ok(h) => (h, 0),
                    Err(e) => (0, e),
                };
                g.write_arg("memory file", value, &m)?;
            }
            PORT_CONTROL_NEXT | PORT_CONTROL_DONE | PORT_RUN_EXIT => {
                let Some(runs) = &prog.runs else {
                    return Err(format!(
                        "the guest used run port {port:#x}, but this processor serves no runs"
                    ));
                };
                self.serve_runs(runs, port, value)?;
            }
            _ => {
                return Err(format!(
                    "used port {port:#x}, which no program hypercall has"
                ))
            }
        }
        Ok(Served::Continue)
    }

    /// The ports of a processor serving runs (`runs`).
    fn serve_runs(&self, runs: &crate::runs::Runs, port: u16, value: u32) -> Result<(), String> {
        use lego_proto::program::*;
        let g = &self.args;
        match port {
            PORT_CONTROL_NEXT => {
                let n: ControlNext = g.read_arg("control request", value)?;
                let (mut head, blob) = runs.next(n.buf_len);
                head.buf = n.buf;
                head.buf_len = n.buf_len;
                if !blob.is_empty() {
                    g.write_bytes("control request strings", n.buf, &blob)?;
                }
                g.write_arg("control request", value, &head)?;
            }
            PORT_CONTROL_DONE => {
                let d: ControlDone = g.read_arg("control answer", value)?;
                let data = g.read_bytes("control answer data", d.buf, d.len, 1 << 20)?;
                runs.done(d.id, d.result, data);
            }
            _ => {
                let e: RunExit = g.read_arg("run exit", value)?;
                runs.exited(e.run, e.status);
            }
        }
        Ok(())
    }

    /// PORT_LOAD: the file's pages, written to the process's memory
    /// components. 0 or -errno.
    fn load(&self, l: &lego_proto::program::Load) -> i64 {
        use lego_proto::program::{EFAULT, EINVAL, EIO};
        let prog = self.program;
        let Some(cache) = self.excache else {
            return -EINVAL;
        };
        // A range whose end does not fit is garbage: the file ranges add
        // page offsets to both.
        let fits = |base: u64| base.checked_add(l.filesz + 4096).is_some();
        if l.va % 4096 != 0 || l.filesz > 1 << 32 || !fits(l.va) || !fits(l.offset) {
            return -EINVAL;
        }
        // Pages no one can write are read from the file at their first
        // access (the ExCache's file-backed pages): nothing is copied.
        if l.prot & libc::PROT_WRITE as u32 == 0 {
            let file = match prog.mapped_file(l.handle) {
                Ok(f) => f,
                Err(e) => return e,
            };
            return match cache.map_file(l.slot, l.va, file, l.offset, l.filesz, l.prot) {
                Ok(()) => 0,
                Err(e) => {
                    log::warn!("mapping a file: {e}");
                    -EFAULT
                }
            };
        }
        // Read a MiB at a time (one pread, not one per page).
        let mut pages = Vec::new();
        let mut done = 0u64;
        while done < l.filesz {
            let n = (l.filesz - done).min(1 << 20);
            let chunk = match prog.read(l.handle, l.offset + done, n as usize) {
                Ok(b) if b.len() as u64 == n => b,
                Ok(_) => return -EIO,
                Err(e) => return e,
            };
            for (i, bytes) in chunk.chunks(4096).enumerate() {
                let mut page = bytes.to_vec();
                page.resize(4096, 0);
                pages.push((l.va + done + i as u64 * 4096, page));
            }
            done += n;
        }
        match cache.load(l.slot, &pages, l.prot) {
            Ok(()) => 0,
            Err(e) => {
                log::warn!("loading a program: {e}");
                -EFAULT
            }
        }
    }
}
