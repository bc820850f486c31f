//! `lego up`: a whole rack on this machine, on loopback, in the background.
//!
//! The global managers start first; then the memory and storage
//! components, and once they are registered the processors (so that a
//! processor's `Registered` reply already lists the memory it will use).
//! Each is a detached process logging to `$LEGO_HOME/rack/logs/`. The
//! command returns when the managers report every component up; if one
//! exits or is not up within `--timeout` (60 s), everything started is stopped and
//! the culprit's log is shown.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use clap::Args;
use lego_control::Role;

use super::size::size_arg;
use super::up_progress::Progress;
use super::{home_rack, ToolError};
use crate::client::Globals;
use crate::rack::{self, Rack};

/// How often the managers are asked while waiting.
const POLL: Duration = Duration::from_millis(25);

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Memory components.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub memory: u32,
    /// Processor components.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub processors: u32,
    /// Storage components.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=8))]
    pub storage: u32,
    /// RAM of each memory component.
    #[arg(long, default_value = "512M", value_parser = size_arg, value_name = "SIZE")]
    pub mem: String,
    /// ExCache of each processor.
    #[arg(long, default_value = "64M", value_parser = size_arg, value_name = "SIZE")]
    pub excache: String,
    /// vCPUs of each processor.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub vcpus: u32,
    /// Size of a new storage disk (an existing one keeps its size).
    #[arg(long, default_value = "1G", value_parser = size_arg, value_name = "SIZE")]
    pub disk_size: String,
    /// Copies of memory: 2 gives each memory component a backup (with two
    /// or more of them), so a run goes on when one dies; vRegions then stay
    /// at their process's home (copies of vRegions handed to other
    /// components are not kept yet).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub copies: u8,
    /// Seconds the whole rack may take to come up.
    #[arg(long, default_value_t = 60, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
}

/// When waiting ends, and its length for the message.
#[derive(Clone, Copy)]
struct Deadline {
    at: Instant,
    secs: u64,
}

/// One process of the rack, planned.
struct Planned {
    name: String,
    /// `None` for the managers.
    role: Option<Role>,
    ports: Vec<u16>,
}

impl Planned {
    fn listen(&self) -> String {
        format!("127.0.0.1:{}", self.ports[0])
    }
}

/// One process of the rack, started.
struct Started {
    plan: Planned,
    child: Child,
    line: usize,
    /// Its component id once the managers report it up.
    up_as: Option<u32>,
}

pub fn up(args: &UpArgs) -> Result<i32, ToolError> {
    let begin = Instant::now();
    let rack = home_rack()?;
    if let Some(addr) = rack.globals_addr() {
        if let Ok((components, _)) = Globals::connect(&addr)
            .map_err(drop)
            .and_then(|mut g| g.status().map_err(drop))
        {
            let up = components.iter().filter(|c| c.up).count();
            println!(
                "a rack is already up: global managers at {addr}, {up} of {} components up \
                 (`lego status` shows it, `lego down` stops it)",
                components.len()
            );
            return Ok(0);
        }
    }
    // Whatever a previous rack left running (a crashed `lego up`, dead
    // managers) goes first: its disks and ports are needed.
    let leftovers: Vec<u32> = rack.pids().into_iter().map(|(p, _)| p).collect();
    rack::stop(&leftovers, Duration::from_secs(5));
    rack.clear();
    rack::prepare(&rack).map_err(ToolError::io(format!("creating {}", rack.dir.display())))?;
    let globals_exe = exe("lego-globals", "LEGO_GLOBALS_BIN")?;
    let vmm_exe = exe("lego-vmm", "LEGO_VMM")?;
    let plans = plan(&rack, args)?;
    let mut progress = Progress::new(&plans.iter().map(|p| p.name.as_str()).collect::<Vec<_>>());
    let mut started: Vec<Started> = Vec::new();
    let result = start_all(
        &rack,
        args,
        plans,
        &globals_exe,
        &vmm_exe,
        &mut progress,
        &mut started,
        begin,
    );
    match result {
        Ok(addr) => {
            progress.finish();
            let count = |role| started.iter().filter(|s| s.plan.role == Some(role)).count();
            println!(
                "rack up in {:.2} s: global managers at {addr}; {} memory, {} storage, {} processor component(s)",
                begin.elapsed().as_secs_f64(),
                count(Role::Memory),
                count(Role::Storage),
                count(Role::Processor),
            );
            println!("try: lego run /path/to/program   (`lego status` shows the rack, `lego down` stops it)");
            Ok(0)
        }
        Err(why) => {
            progress.finish();
            eprintln!("lego up: {why}");
            let mut children: Vec<Child> = started.into_iter().map(|s| s.child).collect();
            rack::stop_children(&mut children, Duration::from_secs(5));
            rack.clear();
            eprintln!(
                "lego up: stopped what had started; logs are in {}",
                rack.dir.join("logs").display()
            );
            Ok(1)
        }
    }
}

fn exe(name: &str, env: &str) -> Result<PathBuf, ToolError> {
    rack::find_exe(name, env).ok_or_else(|| {
        ToolError::Failed(format!(
            "cannot find {name} next to this lego or on PATH (build the workspace with \
             `cargo build`, or set {env} to it)"
        ))
    })
}

/// Names and ports: the ports saved by the last `lego up` where still
/// free (so components keep their ids and the vNodes their storage), new
/// ones otherwise.
fn plan(rack: &Rack, args: &UpArgs) -> Result<Vec<Planned>, ToolError> {
    let saved = rack.saved_ports();
    let mut taken: Vec<u16> = Vec::new();
    let mut ports_for = |name: &str, n: usize| -> Result<Vec<u16>, ToolError> {
        let old = saved
            .iter()
            .find(|(s, _)| s == name)
            .map(|(_, p)| p.clone());
        if let Some(old) = old.filter(|p| {
            p.len() == n
                && p.iter()
                    .all(|&x| !taken.contains(&x) && rack::port_is_free(x))
        }) {
            taken.extend(&old);
            return Ok(old);
        }
        let mut fresh = Vec::new();
        while fresh.len() < n {
            let p = rack::free_port().map_err(ToolError::io("finding a free loopback port"))?;
            if !taken.contains(&p) {
                taken.push(p);
                fresh.push(p);
            }
        }
        Ok(fresh)
    };
    let mut plans = vec![Planned {
        name: "globals".into(),
        role: None,
        ports: ports_for("globals", 1)?,
    }];
    let groups = [
        (Role::Memory, args.memory, 1),
        (Role::Storage, args.storage, 1),
        (Role::Processor, args.processors, 2),
    ];
    for (role, count, nports) in groups {
        for i in 1..=count {
            let name = format!("{}-{i}", role.name());
            let ports = ports_for(&name, nports)?;
            plans.push(Planned {
                name,
                role: Some(role),
                ports,
            });
        }
    }
    let list: Vec<(String, Vec<u16>)> = plans
        .iter()
        .map(|p| (p.name.clone(), p.ports.clone()))
        .collect();
    rack.save_ports(&list)
        .map_err(ToolError::io("saving the rack's ports"))?;
    Ok(plans)
}

/// The command line of one component.
fn command_line(rack: &Rack, args: &UpArgs, p: &Planned, globals: &str, n: u32) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    let mut push = |words: &[&str]| v.extend(words.iter().map(|w| w.to_string()));
    // Component ids are a rack's own, but a component's shared-memory
    // doorbell is named by its id: each rack keeps them in a directory of
    // its own, so that two racks on one host do not collide.
    let shm = rack.shm_dir().to_string_lossy().into_owned();
    if p.role.is_some() {
        push(&["--shm-dir", &shm]);
    }
    match p.role {
        None => push(&[
            "--listen",
            &p.listen(),
            "--state",
            &rack.state_dir().to_string_lossy(),
            "--copies",
            &args.copies.to_string(),
        ]),
        Some(Role::Memory) => push(&[
            "--role",
            "memory",
            "--listen",
            &p.listen(),
            "--globals",
            globals,
            "--mem",
            &args.mem,
        ]),
        Some(Role::Storage) => push(&[
            "--role",
            "storage",
            "--listen",
            &p.listen(),
            "--globals",
            globals,
            "--disk",
            &rack.disk(n).to_string_lossy(),
            "--disk-size",
            &args.disk_size,
        ]),
        Some(Role::Processor) => push(&[
            "--role",
            "processor",
            "--listen",
            &p.listen(),
            "--control",
            &format!("127.0.0.1:{}", p.ports[1]),
            "--globals",
            globals,
            "--excache",
            &args.excache,
            "--vcpus",
            &args.vcpus.to_string(),
        ]),
    }
    v
}

#[allow(clippy::too_many_arguments)]
fn start_all(
    rack: &Rack,
    args: &UpArgs,
    plans: Vec<Planned>,
    globals_exe: &Path,
    vmm_exe: &Path,
    progress: &mut Progress,
    started: &mut Vec<Started>,
    begin: Instant,
) -> Result<String, String> {
    let deadline = Deadline {
        at: begin + Duration::from_secs(args.timeout),
        secs: args.timeout,
    };
    let mut plans = plans.into_iter().enumerate();
    let Some((line, globals_plan)) = plans.next() else {
        return Err("nothing to start".into());
    };
    let addr = globals_plan.listen();
    let argv = command_line(rack, args, &globals_plan, &addr, 0);
    spawn(rack, globals_exe, argv, globals_plan, line, started)?;
    progress.starting(line);
    let mut globals = wait_for_globals(rack, &addr, started, progress, deadline)?;
    rack::write_addr(rack, &addr)
        .map_err(|e| format!("writing {}: {e}", rack.addr_file().display()))?;
    let (first, processors): (Vec<_>, Vec<_>) =
        plans.partition(|(_, p)| p.role != Some(Role::Processor));
    for batch in [first, processors] {
        let mut counts = std::collections::HashMap::new();
        for (line, p) in batch {
            let n = counts.entry(p.role.map(Role::name)).or_insert(0u32);
            *n += 1;
            let argv = command_line(rack, args, &p, &addr, *n);
            spawn(rack, vmm_exe, argv, p, line, started)?;
            progress.starting(line);
        }
        wait_for_components(rack, &mut globals, &addr, started, progress, deadline)?;
        if args.copies > 1 && args.memory > 1 {
            // Processes made before their home has a backup would keep
            // one copy: the processors start once every memory component
            // names its backup.
            wait_for_copies(rack, &mut globals, started, deadline)?;
        }
    }
    Ok(addr)
}

/// Until every memory component up names its backup.
fn wait_for_copies(
    rack: &Rack,
    globals: &mut Globals,
    started: &mut [Started],
    deadline: Deadline,
) -> Result<(), String> {
    loop {
        check_alive(rack, started)?;
        let without: Vec<u32> = match globals.status() {
            Ok((components, _)) => components
                .iter()
                .filter(|c| c.role == Role::Memory && c.load.backup == 0)
                .map(|c| c.id)
                .collect(),
            Err(e) => return Err(format!("the global managers did not answer: {e}")),
        };
        if without.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline.at {
            return Err(format!(
                "memory component(s) {without:?} got no backup within {} s",
                deadline.secs
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn spawn(
    rack: &Rack,
    exe: &Path,
    argv: Vec<String>,
    plan: Planned,
    line: usize,
    started: &mut Vec<Started>,
) -> Result<(), String> {
    let log = rack.log_file(&plan.name);
    log::info!("starting {} {}", exe.display(), argv.join(" "));
    let child = rack::spawn_detached(exe, &argv, &log)
        .map_err(|e| format!("cannot start {} ({}): {e}", plan.name, exe.display()))?;
    rack.add_pid(child.id(), &plan.name)
        .map_err(|e| format!("writing {}: {e}", rack.pids_file().display()))?;
    started.push(Started {
        plan,
        child,
        line,
        up_as: None,
    });
    Ok(())
}

/// A sentence for a process that exited, with the end of its log.
fn check_alive(rack: &Rack, started: &mut [Started]) -> Result<(), String> {
    for s in started.iter_mut() {
        if let Ok(Some(status)) = s.child.try_wait() {
            return Err(format!(
                "{} exited ({status}) before it was up; the end of its log ({}):\n{}",
                s.plan.name,
                rack.log_file(&s.plan.name).display(),
                indent(&rack.log_tail(&s.plan.name, 15))
            ));
        }
    }
    Ok(())
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

fn wait_for_globals(
    rack: &Rack,
    addr: &str,
    started: &mut [Started],
    progress: &mut Progress,
    deadline: Deadline,
) -> Result<Globals, String> {
    loop {
        check_alive(rack, started)?;
        if let Ok(mut g) = Globals::connect(addr) {
            if g.status().is_ok() {
                if let Some(s) = started.first() {
                    progress.up(s.line, &format!("up at {addr}"));
                }
                return Ok(g);
            }
        }
        if Instant::now() > deadline.at {
            return Err(not_up(rack, &deadline, started.iter().take(1)));
        }
        progress.tick();
        std::thread::sleep(POLL);
    }
}

/// Waits until the managers report every started component up.
fn wait_for_components(
    rack: &Rack,
    globals: &mut Globals,
    addr: &str,
    started: &mut [Started],
    progress: &mut Progress,
    deadline: Deadline,
) -> Result<(), String> {
    loop {
        check_alive(rack, started)?;
        let status = match globals.status() {
            Ok((components, _)) => components,
            Err(_) => {
                // The managers dropped the connection: reconnect once per
                // poll; their exit shows in `check_alive`.
                if let Ok(g) = Globals::connect(addr) {
                    *globals = g;
                }
                Vec::new()
            }
        };
        for s in started
            .iter_mut()
            .filter(|s| s.plan.role.is_some() && s.up_as.is_none())
        {
            let listen = s.plan.listen();
            let pid = s.child.id();
            if let Some(c) = status
                .iter()
                .find(|c| c.up && (c.fabric == listen || c.host_pid == pid))
            {
                s.up_as = Some(c.id);
                progress.up(s.line, &format!("up as component {} at {listen}", c.id));
            }
        }
        let waiting: Vec<&Started> = started
            .iter()
            .filter(|s| s.plan.role.is_some() && s.up_as.is_none())
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline.at {
            return Err(not_up(rack, &deadline, waiting.into_iter()));
        }
        progress.tick();
        std::thread::sleep(POLL);
    }
}

fn not_up<'a>(
    rack: &Rack,
    deadline: &Deadline,
    waiting: impl Iterator<Item = &'a Started>,
) -> String {
    let mut text = format!("not up after {} s:", deadline.secs);
    for s in waiting {
        text.push_str(&format!(
            "\n  {} ({}); the end of its log:\n{}",
            s.plan.name,
            rack.log_file(&s.plan.name).display(),
            indent(&rack.log_tail(&s.plan.name, 15))
        ));
    }
    text
}
