//! Serving runs (`lego run`): a processor started without a program
//! takes requests from its VMM (`lego_proto::program::PORT_CONTROL_NEXT`):
//! start a run's first process, signal a run, kill a process, list them.
//! A run is like a container's life: its stdio is the `lego run` client's,
//! it ends when its first process ends (the exit status goes back to the
//! client), and whatever of it is still alive then is killed.

use alloc::vec::Vec;

use lego_image::cpu::{phys_of, virt_to_phys};
use lego_image::hypercall;
use lego_proto::program::*;
use pmon::signal::{SigInfo, SIGKILL, SI_USER};

use super::{Kernel, Life, Pid, E2BIG};

/// The most a start request's strings may take (argv, envp, cwd, exe).
const MAX_START: u64 = 1 << 20;

impl Kernel {
    /// Takes every request the VMM has queued (it set `control_pending`
    /// and kicked vCPU 0).
    pub fn take_control(&mut self) {
        let word = self.control_pending as *mut u64;
        // SAFETY: the word is in the boot information, mapped for the
        // guest's life; the VMM only sets it atomically.
        let pending = unsafe { core::sync::atomic::AtomicU64::from_ptr(word) }
            .swap(0, core::sync::atomic::Ordering::AcqRel);
        if pending == 0 {
            return;
        }
        let mut buf: Vec<u8> = alloc::vec![0u8; 4096];
        loop {
            let n = ControlNext {
                buf: virt_to_phys(buf.as_mut_ptr() as u64),
                buf_len: buf.len() as u64,
                ..Default::default()
            };
            hypercall::out(PORT_CONTROL_NEXT, phys_of(&n) as u32);
            // SAFETY: the VMM wrote it during the hypercall.
            let n = unsafe { core::ptr::read_volatile(&n) };
            if n.kind == CONTROL_NONE {
                return;
            }
            if n.needed > buf.len() as u64 {
                if n.needed > MAX_START {
                    self.answer(&n, -E2BIG, &[]);
                    continue;
                }
                buf.resize(n.needed as usize, 0);
                continue;
            }
            match n.kind {
                CONTROL_START => {
                    let r = self.start_run(&n, &buf[..n.needed as usize]);
                    self.answer(&n, r, &[]);
                }
                CONTROL_SIGNAL => {
                    self.signal_run(n.run, n.signal);
                    self.answer(&n, 0, &[]);
                }
                CONTROL_KILL => {
                    let alive = self
                        .procs
                        .get(&n.pid)
                        .is_some_and(|p| p.life == Life::Alive);
                    let r = if !alive {
                        -super::ESRCH
                    } else if !(1..=64).contains(&n.signal) {
                        -super::EINVAL
                    } else {
                        self.signal_process(n.pid, SigInfo::user(n.signal, SI_USER, 0));
                        0
                    };
                    self.answer(&n, r, &[]);
                }
                CONTROL_PS => {
                    let text = self.process_list();
                    self.answer(&n, 0, &text);
                }
                _ => self.answer(&n, -super::EINVAL, &[]),
            }
        }
    }

    fn answer(&self, n: &ControlNext, result: i64, data: &[u8]) {
        let d = ControlDone {
            id: n.id,
            kind: n.kind,
            result,
            buf: virt_to_phys(data.as_ptr() as u64),
            len: data.len() as u64,
        };
        hypercall::out(PORT_CONTROL_DONE, phys_of(&d) as u32);
    }

    /// A run's first process: its pid, or -errno.
    fn start_run(&mut self, n: &ControlNext, blob: &[u8]) -> i64 {
        let mut strings = blob.split(|&b| b == 0).map(|s| s.to_vec());
        let argv: Vec<Vec<u8>> = strings.by_ref().take(n.argc as usize).collect();
        let envp: Vec<Vec<u8>> = strings.by_ref().take(n.envc as usize).collect();
        let cwd = strings
            .next()
            .filter(|c| c.first() == Some(&b'/'))
            .unwrap_or_else(|| b"/".to_vec());
        let exe = strings.next().unwrap_or_default();
        if n.run == 0 || self.runs.contains_key(&n.run) {
            return -super::EINVAL;
        }
        let given = argv.first().cloned().unwrap_or_else(|| exe.clone());
        let path = pmon::path::resolve(&cwd, if exe.is_empty() { &given } else { &exe });
        // A processor without a storage component of its own (none was up
        // when it joined) serves no files: a vNode's run would see the
        // host's files and a tmpfs instead of its own.
        if n.vnode != 0 && !self.storage {
            return -super::ENXIO;
        }
        if let Err(e) = super::store::place_vnode(n.vnode, n.storage) {
            return -e;
        }
        super::store::set_vnode(n.vnode);
        let cwd = if self.storage && !self.is_storage_dir(&cwd) {
            b"/".to_vec()
        } else {
            cwd
        };
        super::store::set_vnode(n.vnode);
        let origin = super::Origin {
            run: n.run,
            vnode: n.vnode,
            home: n.home,
        };
        match self.spawn_init(&path, &given, argv, envp, cwd, origin) {
            Ok(pid) => {
                self.runs.insert(n.run, pid);
                pid as i64
            }
            Err(e) => -e,
        }
    }

    /// A signal for the run's foreground process group: its first
    /// process's group, as a terminal sends Ctrl-C to its foreground job.
    fn signal_run(&mut self, run: u32, sig: u32) {
        let Some(&leader) = self.runs.get(&run) else {
            return;
        };
        if !(1..=64).contains(&sig) {
            return;
        }
        let group = self.procs.get(&leader).map_or(leader, |p| p.pgid);
        let members: Vec<Pid> = self
            .procs
            .values()
            .filter(|p| p.run == run && p.pgid == group && p.life == Life::Alive)
            .map(|p| p.pid)
            .collect();
        for pid in members {
            self.signal_process(pid, SigInfo::user(sig, SI_USER, 0));
        }
    }

    /// "pid run command" per live process, one per line.
    fn process_list(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for p in self.procs.values().filter(|p| p.life == Life::Alive) {
            out.extend_from_slice(alloc::format!("{} {} ", p.pid, p.run).as_bytes());
            out.extend(p.exe.iter().map(|&b| if b == b'\n' { b'?' } else { b }));
            out.push(b'\n');
        }
        out
    }

    /// Process `pid` ended with wait status `status`. When it was a run's
    /// first process, the run is over: the VMM tells the client, and the
    /// rest of the run is killed (its zombies left for nobody go too).
    pub fn run_member_ended(&mut self, pid: Pid, status: i32) {
        let Some(run) = self
            .runs
            .iter()
            .find(|&(_, &leader)| leader == pid)
            .map(|(&run, _)| run)
        else {
            return;
        };
        self.runs.remove(&run);
        self.stdin_back.remove(&run);
        self.uts_names.remove(&run);
        let e = RunExit {
            run,
            status: status as u32,
        };
        hypercall::out(PORT_RUN_EXIT, phys_of(&e) as u32);
        let rest: Vec<(Pid, bool)> = self
            .procs
            .values()
            .filter(|p| p.run == run && p.pid != pid)
            .map(|p| (p.pid, p.life == Life::Alive))
            .collect();
        for (member, alive) in rest {
            if alive {
                self.signal_process(member, SigInfo::user(SIGKILL, SI_USER, 0));
            } else if self.procs.get(&member).is_some_and(|p| p.ppid == pid) {
                // A zombie whose parent is this leader: nobody waits now.
                self.procs.remove(&member);
            }
        }
    }
}
