//! lego-vmm: one Lego hardware component in a KVM virtual machine.
//!
//! `main` validates the command line, builds the VM ([`vm`]), starts one
//! thread per vCPU ([`vcpu`]) and a signal thread, and then waits for
//! events: the guest booting, finishing its self-test, failing, or a signal.

mod block;
mod boot;
mod cli;
mod debug;
mod error;
mod excache;
mod fabric;
mod fetched;
mod gdb;
mod globals;
mod grants;
mod guest_args;
mod holes;
mod hypervisor;
mod kick;
mod loader;
mod memory;
mod options;
mod paging;
mod ports;
mod posted;
mod preempt;
mod process_owners;
mod program;
mod program_ports;
mod rack;
mod report;
mod runs;
mod selftest;
mod stats;
mod store_files;
mod vcpu;
mod verdict;
mod vm;
mod write_out;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Instant;

use clap::Parser;
use lego_proto::boot::Mode;
use vm_memory::{GuestAddress, GuestMemoryBackend};

use crate::cli::Args;
use crate::error::{Result, VmmError};
use crate::vcpu::{Event, VcpuThread};

/// The ExCache, whose counters are logged when the process ends.
static EXCACHE: std::sync::OnceLock<std::sync::Arc<excache::ExCache>> = std::sync::OnceLock::new();

/// The disk's counters, logged when the process ends.
static DISK_STATS: std::sync::OnceLock<std::sync::Arc<block::Stats>> = std::sync::OnceLock::new();

/// The fabric's counters, logged when the process ends.
static FABRIC_STATS: std::sync::OnceLock<std::sync::Arc<fabric::Stats>> =
    std::sync::OnceLock::new();

fn main() {
    let start = Instant::now();
    let args = Args::parse();
    env_logger::Builder::new()
        .filter_level(args.log_level)
        // gdbstub logs every packet it does not know at info level.
        .filter_module("gdbstub", args.log_level.min(log::LevelFilter::Warn))
        .format_target(false)
        .init();
    let result = run(&args, start);
    if result.is_err() {
        release_processes();
    }
    if let Some(stats) = FABRIC_STATS.get() {
        log::info!("{}", stats.summary());
    }
    if let Some(stats) = DISK_STATS.get() {
        log::info!("{}", stats.summary());
    }
    if let Some(cache) = EXCACHE.get() {
        if args.program.is_empty() {
            eprintln!("lego-vmm: {}", cache.summary());
        } else {
            // A program's stderr is its own: the counters go to the log.
            log::info!("{}", cache.summary());
        }
    }
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lego-vmm: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}

/// A processor that stops on a failure ends its processes at their memory
/// components (`ExCache::release_all`), waiting two seconds at most: a
/// memory component that cannot be reached is not waited for to its
/// fabric timeout once per process.
fn release_processes() {
    let Some(cache) = EXCACHE.get().cloned() else {
        return;
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("release".into())
        .spawn(move || {
            let _ = tx.send(cache.release_all());
        });
    if spawned.is_err() {
        return;
    }
    match rx.recv_timeout(std::time::Duration::from_secs(2)) {
        Ok(n) if n > 0 => log::info!("{n} processes ended at their memory components"),
        Ok(_) => {}
        Err(_) => log::warn!("the processes' memory components did not all answer within 2 s"),
    }
}

/// The image to boot: `--image`, or the role's image next to this executable.
fn image_path(args: &Args) -> PathBuf {
    if let Some(path) = &args.image {
        return path.clone();
    }
    let name = args.role.image_name();
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

fn run(args: &Args, start: Instant) -> Result<i32> {
    let serve_runs = args.control.is_some();
    if serve_runs && args.role.role() != lego_proto::boot::Role::Processor {
        return Err(VmmError::BadOption {
            option: "--control",
            why: "only a processor component serves runs (--role processor)".into(),
        });
    }
    let mode = if !args.program.is_empty() || serve_runs {
        Mode::Program
    } else if args.run_workload.is_some() {
        Mode::Workload
    } else if args.guest_test.is_some() {
        Mode::Test
    } else if args.fabric_test.is_some() {
        Mode::FabricTest
    } else if args.self_test {
        Mode::SelfTest
    } else {
        Mode::Serve
    };
    if args.self_test_iterations == 0 {
        return Err(VmmError::BadOption {
            option: "--self-test-iterations",
            why: "must be at least 1".into(),
        });
    }
    if args.listen.is_some() && args.id.is_none() && args.globals.is_none() {
        return Err(VmmError::BadOption {
            option: "--listen",
            why: "a component that listens needs an id: add --id N, or --globals ADDR to be given one".into(),
        });
    }
    // Serving runs: the control address is bound before registering, so
    // the managers hear the real one (a port 0 becomes a chosen port).
    let serving = match &args.control {
        Some(addr) => {
            let runs = runs::Runs::new(args.id.unwrap_or(0)).map_err(VmmError::Thread)?;
            let bound = runs.listen(addr).map_err(|e| VmmError::BadOption {
                option: "--control",
                why: format!("cannot listen on {addr}: {e}"),
            })?;
            Some((runs, bound.to_string()))
        }
        None => None,
    };
    // A rack member registers its fabric address before the fabric starts:
    // --listen is bound now, so a port 0 is registered as the port the
    // host gave.
    let listener = match (&args.globals, &args.listen) {
        (Some(_), Some(addr)) => {
            Some(
                std::net::TcpListener::bind(addr).map_err(|e| VmmError::BadOption {
                    option: "--listen",
                    why: format!("cannot listen on {addr}: {e}"),
                })?,
            )
        }
        _ => None,
    };
    let bound = listener
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map(|a| a.to_string());
    let membership = rack::join(args, serving.as_ref().map(|r| r.1.clone()), bound)?;
    let peer_texts = match &membership {
        Some(m) => m.peer_texts(&args.peer),
        None => args.peer.clone(),
    };
    // A component that only calls out (a processor running a workload)
    // needs an id of its own; one unlikely to clash with a rack's.
    let id = args.id.or(membership.as_ref().map(|m| m.id)).or_else(|| {
        (!peer_texts.is_empty()).then(|| 0x4000_0000 | (std::process::id() & 0x3fff_ffff))
    });
    let fabric = match id {
        None => None,
        Some(0) => {
            return Err(VmmError::BadOption {
                option: "--id",
                why: "component id 0 is reserved; use 1 or more".into(),
            })
        }
        Some(id) => {
            let mut peers = std::collections::HashMap::new();
            for text in &peer_texts {
                let (peer, addr) = fabric::parse_peer(text).map_err(|why| VmmError::BadOption {
                    option: "--peer",
                    why,
                })?;
                if peer == id {
                    return Err(VmmError::BadOption {
                        option: "--peer",
                        why: format!("'{text}' names this component itself (--id {id})"),
                    });
                }
                if peers.insert(peer, addr).is_some() {
                    return Err(VmmError::BadOption {
                        option: "--peer",
                        why: format!("component {peer} is given twice"),
                    });
                }
            }
            options::check_vregion_peers(args, id, &peers)?;
            options::check_backup(args, id)?;
            let key = match &args.rack_key {
                Some(path) => lego_wire::key::RackKey::load(path)?,
                None => {
                    let path = lego_wire::key::RackKey::default_path()?;
                    let key = lego_wire::key::RackKey::load_or_create(&path)?;
                    log::info!("fabric: the rack key is {}", path.display());
                    key
                }
            };
            Some(fabric::Config {
                id,
                listen: args.listen.clone(),
                listener,
                peers,
                timeout: std::time::Duration::from_millis(args.fabric_timeout_ms.max(1)),
                shm_dir: args.shm_dir.clone(),
                rdma_listen: args.rdma_listen.clone(),
                key,
                role: args.role.role() as u8,
            })
        }
    };
    let fabric_test = args
        .fabric_test
        .as_deref()
        .map(cli::parse_fabric_test)
        .transpose()?;
    let workload = args
        .run_workload
        .as_deref()
        .map(cli::parse_workload)
        .transpose()?;
    if mode == Mode::Program && args.role.role() != lego_proto::boot::Role::Processor {
        return Err(VmmError::BadOption {
            option: "--",
            why: "only a processor component runs programs (--role processor)".into(),
        });
    }
    if mode == Mode::Program && args.run_workload.is_some() {
        return Err(VmmError::BadOption {
            option: "--run-workload",
            why: "a processor runs either a workload or a program, not both".into(),
        });
    }
    // A program's memory is the ExCache: 64 MiB unless told.
    let excache_text = match (&args.excache, mode) {
        (Some(t), _) => Some(t.clone()),
        (None, Mode::Program) => Some("64M".to_owned()),
        (None, _) => None,
    };
    let excache = excache_text
        .as_deref()
        .map(cli::parse_excache)
        .transpose()?;
    let program = if serve_runs {
        Some(program::Spec {
            argv: Vec::new(),
            envp: Vec::new(),
            exe: Vec::new(),
            trace: args.strace,
        })
    } else if mode == Mode::Program {
        use std::os::unix::ffi::OsStrExt;
        let exe = program::prepare(&args.program[0], args.storage)?;
        Some(program::Spec {
            argv: args.program.iter().map(|a| a.as_bytes().to_vec()).collect(),
            envp: program::Spec::environment(&args.env),
            exe: exe.as_os_str().as_bytes().to_vec(),
            trace: args.strace,
        })
    } else {
        if args.strace {
            return Err(VmmError::BadOption {
                option: "--strace",
                why: "it traces a program: give one after --".into(),
            });
        }
        if !args.env.is_empty() {
            return Err(VmmError::BadOption {
                option: "--env",
                why: "it is for a program: give one after --".into(),
            });
        }
        None
    };
    if excache.is_some() && args.role.role() != lego_proto::boot::Role::Processor {
        return Err(VmmError::BadOption {
            option: "--excache",
            why: "only a processor component has an ExCache".into(),
        });
    }
    let runs = workload.is_some() || program.is_some();
    let home = match (runs, &fabric) {
        (false, _) => 0,
        (true, None) => {
            return Err(VmmError::BadOption {
                option: if program.is_some() { "--" } else { "--run-workload" },
                why: "a process's memory lives in a memory component: add --peer ID=ADDR (a memory component's address)".into(),
            })
        }
        (true, Some(f)) => match args.memory {
            Some(m) if f.peers.contains_key(&m) => m,
            Some(m) => {
                return Err(VmmError::BadOption {
                    option: "--memory",
                    why: format!("component {m} has no address; add --peer {m}=ADDR"),
                })
            }
            None => match membership.as_ref().and_then(rack::Membership::home) {
                Some(m) => m,
                None => f
                    .peers
                    .keys()
                    .copied()
                    .filter(|&p| Some(p) != args.storage)
                    .min()
                    .unwrap_or(0),
            },
        },
    };
    let mut storage = options::check_storage(args, &fabric, program.is_some())?;
    // Serving runs in a rack: the managers' storage component serves the
    // runs' files unless --storage names one.
    if let (0, Some(m), true) = (storage, &membership, serve_runs) {
        storage = m.storage().unwrap_or(0);
    }
    let mem = cli::parse_mem(&args.mem)?;
    if fabric.is_some() {
        cli::check_fabric_mem(args.role.role(), &args.mem, mem)?;
    }
    let disk = options::open_disk(args)?;
    // Process ids at the memory components: in a rack, this processor's
    // id and then this run's (process_owners); else this lego-vmm's pid
    // in the high bits. The monitor's own pid (below 1024) is the low ten.
    let pid_base = match (&membership, id) {
        (Some(_), Some(id)) => {
            process_owners::rack_pid_base(id).ok_or_else(|| VmmError::BadOption {
                option: "--globals",
                why: format!(
                    "component id {id} does not fit in a rack's process ids ({} bits): a rack has ids below {}",
                    process_owners::ID_BITS,
                    1u32 << process_owners::ID_BITS
                ),
            })?
        }
        _ => (std::process::id() & 0x3f_ffff) << 10,
    };
    let mut cfg = vm::Config {
        role: args.role.role(),
        image: image_path(args),
        mem,
        vcpus: cli::check_vcpus(args.vcpus)?,
        kvm_device: args.kvm_device.clone(),
        mode,
        test: args.guest_test.map(|t| t.test()),
        selftest_iterations: args.self_test_iterations,
        fabric,
        fabric_test,
        vregion_peers: args.vregion_peers.clone(),
        backup: args.backup.unwrap_or(0),
        excache: excache.map(|pages| (pages, args.excache_policy, args.excache_prefetch.min(512))),
        workload: workload.map(|(kind, bytes)| vm::WorkloadConfig {
            kind,
            bytes,
            home,
            // In a rack the workload's id must name this processor too.
            pid: if membership.is_some() {
                pid_base | 1
            } else {
                std::process::id()
            },
        }),
        program: program.map(|spec| (spec, home)),
        disk,
        storage,
        runs: serving.as_ref().map(|r| r.0.clone()),
        pid_base,
    };
    let vm = vm::build(&mut cfg)?;
    if let Some(b) = &vm.shared.block {
        let _ = DISK_STATS.set(b.stats.clone());
    }
    let heap = vm.heap;
    if let Some(f) = &vm.shared.fabric {
        let _ = FABRIC_STATS.set(f.stats.clone());
    }
    if let Some(c) = &vm.shared.excache {
        let _ = EXCACHE.set(c.clone());
        if let Some(prog) = &vm.shared.program {
            let post = (vm.shared.ram.clone(), prog.clone());
            c.on_out_of_memory(Box::new(move |gpid, pages| {
                program::post_oom_kill(&post.0, &post.1, gpid, pages)
            }));
        }
    }
    let shared = vm.shared.clone();
    if let (Some((r, addr)), Some(prog)) = (&serving, &shared.program) {
        let post = (shared.ram.clone(), prog.clone());
        r.connect(
            Box::new(move || program::post_control(&post.0, &post.1)),
            shared.fabric.clone(),
        );
        if let Some(f) = &shared.fabric {
            r.set_id(f.id);
        }
        // A line a script can wait for, as for the fabric's address.
        eprintln!("lego-vmm: processor serves runs on {addr}");
    }
    if let Some(m) = membership {
        m.keep_alive(
            &shared,
            serving.as_ref().map(|r| r.0.clone()),
            args.disk.clone(),
        )?;
    }

    let (events, inbox) = mpsc::channel();
    // A program gets the signals a terminal or a kill sends lego-vmm
    // (forwarded to its foreground processes); anything else stops.
    let mut caught = vec![libc::SIGINT, libc::SIGTERM];
    if mode == Mode::Program {
        caught.extend([libc::SIGHUP, libc::SIGQUIT]);
    }
    let mut signals = signal_hook::iterator::Signals::new(caught).map_err(VmmError::Thread)?;
    let signal_events = events.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if signal_events.send(Event::Signal(sig)).is_err() {
                    break;
                }
            }
        })
        .map_err(VmmError::Thread)?;
    let mut forwarded = 0;
    let gdb_attached = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    if args.gdb.is_some() || shared.excache.is_some() {
        // The debugger and the ExCache's fault handlers kick vCPU threads
        // out of KVM with this signal.
        debug::install_kick_handler().map_err(VmmError::Thread)?;
    }
    let (mut links, mut handles, stops) = match &args.gdb {
        Some(_) => {
            let (links, handles, stops) = debug::links(cfg.vcpus, &gdb_attached);
            (links.into_iter().map(Some).collect(), handles, Some(stops))
        }
        None => (
            (0..cfg.vcpus).map(|_| None).collect::<Vec<_>>(),
            Vec::new(),
            None,
        ),
    };
    for (cpu, (vcpu, stats)) in vm.vcpus.into_iter().enumerate() {
        let thread = VcpuThread {
            vcpu,
            cpu: cpu as u32,
            shared: shared.clone(),
            events: events.clone(),
            stats,
            debug: links[cpu].take(),
            last_frame: None,
            last_emulation_failure: None,
            kicked: false,
            mailbox: None,
        };
        let handle = std::thread::Builder::new()
            .name(format!("vcpu{cpu}"))
            .spawn(move || thread.run())
            .map_err(VmmError::Thread)?;
        if let Some(h) = handles.get_mut(cpu) {
            h.thread = Some(std::os::unix::thread::JoinHandleExt::as_pthread_t(&handle));
        }
        // Never joined nor detached: its pthread_t stays valid for the
        // debugger's kicks even after the thread ends. Threads end with the process.
        std::mem::forget(handle);
    }
    drop(events);
    let gdb = match (&args.gdb, stops) {
        (Some(addr), Some(stops)) => Some(gdb::GdbServer::start(
            addr,
            std::time::Duration::from_secs(args.gdb_greeting_secs.max(1)),
            gdb_attached,
            handles,
            stops,
            shared.clone(),
        )?),
        _ => None,
    };
    // Lets an attached gdb see the guest end before the process does.
    let gdb_sees_end = || {
        if let Some(g) = &gdb {
            g.wait_end_reported(std::time::Duration::from_secs(2));
        }
    };

    let role = cfg.role.name();
    let mut booted_at = None;
    let mut compute_begin = None;
    let mut selftest = None;
    for event in inbox {
        match event {
            Event::Booted { cpu, at } => {
                log::debug!("vCPU {cpu} booted");
                if cpu == 0 {
                    booted_at = Some(at);
                    log::info!("booted in {:?}", at - start);
                }
            }
            Event::ComputeBegin { at } => compute_begin = Some(at),
            Event::SelfTestDone {
                report,
                at,
                emulated,
                kernel_exits,
            } => {
                let (Some(booted), Some(begin)) = (booted_at, compute_begin) else {
                    return Err(VmmError::Guest(format!(
                        "the {role} component's guest reported a self-test result before booting and starting it"
                    )));
                };
                log::info!("vCPU 0 exits to KVM so far: {kernel_exits:?}");
                selftest = Some(selftest::Outcome {
                    role,
                    iterations: cfg.selftest_iterations,
                    boot: booted - start,
                    guest_compute: at - begin,
                    report,
                    emulated,
                    exits: 0,
                    heap,
                });
            }
            Event::GuestExit { code } => {
                gdb_sees_end();
                if let Some(refused) = block::refused(cfg.role, code) {
                    return Err(refused);
                }
                if code != 0 {
                    return Err(VmmError::Guest(format!(
                        "the {role} component's guest exited with status {code}"
                    )));
                }
                if mode != Mode::SelfTest {
                    return Ok(0);
                }
                let Some(mut outcome) = selftest.take() else {
                    return Err(VmmError::Guest(format!(
                        "the {role} component's guest exited without reporting its self-test"
                    )));
                };
                outcome.exits = shared.exits.load(Ordering::Relaxed);
                let line = outcome.finish()?;
                if let Ok(host) = shared.ram.get_host_address(GuestAddress(0)) {
                    if let Some(kib) = selftest::vmm_rss_kib(host as u64) {
                        log::info!("resident memory beyond guest RAM: {kib} KiB");
                    }
                }
                println!("{line}");
                return Ok(0);
            }
            Event::Halted { cpu } => {
                if cpu == 0 && mode != Mode::Serve {
                    return Err(VmmError::Guest(format!(
                        "the {role} component's guest halted vCPU 0 before finishing"
                    )));
                }
                log::debug!("vCPU {cpu} halted");
            }
            Event::ProgramExit(e, path) => {
                gdb_sees_end();
                let sum = |f: fn(&stats::VcpuStats) -> Option<u64>| {
                    shared.vcpu_stats.iter().filter_map(f).sum::<u64>()
                };
                log::info!(
                    "vCPU exits: {} to lego-vmm, {} in all (KVM's count, with those handled in the kernel); {} instructions emulated",
                    shared.exits.load(std::sync::atomic::Ordering::Relaxed),
                    sum(stats::VcpuStats::exits),
                    sum(stats::VcpuStats::insn_emulation)
                );
                if log::log_enabled!(log::Level::Debug) {
                    let mut all = std::collections::BTreeMap::<String, u64>::new();
                    for (name, v) in shared.vcpu_stats.iter().flat_map(|s| s.all()) {
                        *all.entry(name).or_default() += v;
                    }
                    let shown: Vec<String> = all
                        .iter()
                        .filter(|(_, v)| **v != 0)
                        .map(|(n, v)| format!("{n} {v}"))
                        .collect();
                    log::debug!("KVM's vCPU counters: {}", shown.join(", "));
                }
                return Ok(program_exit(&e, &path));
            }
            Event::WorkloadDone(report) => {
                gdb_sees_end();
                let khz = shared.tsc_khz.max(1) as f64;
                let us = |cycles: u64| cycles as f64 * 1000.0 / khz;
                let stats = shared.excache.as_ref().map(|c| c.headline());
                let (misses, evictions, writebacks, p50) = stats.unwrap_or_default();
                use lego_proto::process::*;
                match report.status {
                    WORKLOAD_OK => {
                        println!(
                            "workload ok bytes={} misses={misses} evictions={evictions} writebacks={writebacks} miss_p50_us={p50:.0}",
                            report.bytes
                        );
                        let names = ["write miss", "write miss + dirty eviction", "read miss + dirty eviction", "read miss + clean eviction", "random access"];
                        for (i, name) in names.iter().enumerate() {
                            if report.samples[i] > 0 {
                                log::info!(
                                    "guest-timed {name}: p50 {:.1} us, p99 {:.1} us, mean {:.1} us ({} pages)",
                                    us(report.p50[i]),
                                    us(report.p99[i]),
                                    us(report.total[i]) / report.samples[i] as f64,
                                    report.samples[i]
                                );
                            }
                        }
                        log::info!("workload ran {:.1} ms in the guest", us(report.cycles) / 1000.0);
                        let sum = |f: fn(&stats::VcpuStats) -> Option<u64>| {
                            shared.vcpu_stats.iter().filter_map(f).sum::<u64>()
                        };
                        log::info!(
                            "KVM's counts: {} exits (with those handled in the kernel), {} page faults taken, {} fixed",
                            sum(stats::VcpuStats::exits),
                            sum(stats::VcpuStats::pf_taken),
                            sum(stats::VcpuStats::pf_fixed)
                        );
                        log::info!(
                            "{} exits to the VMM for {misses} misses",
                            shared.exits.load(Ordering::Relaxed)
                        );
                        return Ok(0);
                    }
                    WORKLOAD_WRONG_DATA => {
                        return Err(VmmError::Guest(format!(
                            "the workload read back wrong data: {} of {} words differ, the first at {:#x}. The ExCache or a memory component lost a write",
                            report.wrong_words,
                            report.bytes / 8,
                            report.first_bad
                        )))
                    }
                    WORKLOAD_MEMORY_CALL => {
                        return Err(VmmError::Guest(format!(
                            "the workload's memory call to component {} failed: {}",
                            shared.workload_home,
                            excache::client::status_text(report.mem_status)
                        )))
                    }
                    _ => {
                        return Err(VmmError::Guest(format!(
                            "the workload could not start (status {}): the processor has no fabric",
                            report.status
                        )))
                    }
                }
            }
            Event::Failed(report) => {
                gdb_sees_end();
                return Err(VmmError::Guest(report));
            }
            Event::Error(e) => return Err(e),
            Event::Signal(sig) => {
                if mode == Mode::SelfTest {
                    // No verdict: a script must not take this host as qualified.
                    eprintln!("lego-vmm: stopped by signal {sig} before the self-test finished");
                    return Ok(128 + sig);
                }
                if let Some(prog) = shared.program.as_ref().filter(|p| p.runs.is_none()) {
                    // The program decides (a handler, or the default
                    // action: its exit status says which). A third signal
                    // means it does not listen: stop it.
                    forwarded += 1;
                    if forwarded < 3 && program::post_signal(&shared.ram, prog, sig) {
                        log::info!("signal {sig}: passed to the program");
                        continue;
                    }
                    eprintln!("lego-vmm: stopped by signal {sig}");
                    return Ok(128 + sig);
                }
                log::info!("signal {sig}: stopping the guest");
                return Ok(0);
            }
        }
    }
    Err(VmmError::Guest(
        "every vCPU thread ended unexpectedly".into(),
    ))
}

/// lego-vmm's exit status for the program's end, as a shell reports it;
/// a death by signal also gets one line on stderr, but for SIGPIPE and
/// SIGINT, which bash does not report either (`lego-vmm -- yes | head`
/// printed it every time; Ctrl-C is the user's own).
fn program_exit(e: &lego_proto::program::ProgramExit, path: &[u8]) -> i32 {
    use lego_proto::program::EXIT_SIGNAL;
    if e.how != EXIT_SIGNAL {
        return (e.code & 0xff) as i32;
    }
    if e.code == libc::SIGPIPE as u32 || e.code == libc::SIGINT as u32 {
        return 128 + e.code as i32;
    }
    let name = signal_name(e.code);
    let mut line = format!(
        "lego-vmm: the program was killed by {name} (signal {})",
        e.code
    );
    if e.fault != 0 {
        line.push_str(&format!(" at address {:#x}, rip {:#x}", e.addr, e.rip));
        use std::os::unix::ffi::OsStrExt;
        let file = std::path::Path::new(std::ffi::OsStr::from_bytes(path));
        if let Some(f) = loader::symbolize_file(file, e.rip.wrapping_sub(e.bias)) {
            line.push_str(&format!(" in {f}"));
        }
    }
    eprintln!("{line}");
    128 + (e.code & 0x7f) as i32
}

fn signal_name(sig: u32) -> String {
    const NAMES: [&str; 32] = [
        "signal 0",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    NAMES.get(sig as usize).map_or_else(
        || format!("SIGRT{}", sig.saturating_sub(32)),
        |n| (*n).to_owned(),
    )
}
