//! `lego run [--vnode NAME] [--env K=V]... PROG [ARGS...]`: a program on
//! the rack with this terminal's stdio, exiting with the program's status.
//!
//! A PROG that is a file on this host is uploaded to the vNode under
//! [`PROGRAM_DIR`]/<BLAKE3 of its bytes> unless already there (so a re-run
//! uploads nothing); any other PROG (or `lego:/path`) is a path in the
//! vNode's namespace. The run's connection then carries stdin one way
//! (a thread), stdout, stderr and the exit status the other (this
//! thread), and Ctrl-C as a `Signal` (another thread).
//!
//! Exit codes: the program's; 125 when `lego run` itself fails (as
//! container runners do); 130 on a second Ctrl-C within a second.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use lego_control::{ProcessorEvent, ProcessorRequest, RunStart, VNode, DEFAULT_VNODE, PROGRAM_DIR};

use super::{connect, ToolError};
use crate::client::ClientError;
use crate::conn::{Conn, ConnError};
use crate::processor::Processor;

/// `lego run`'s own failures (not the program's).
pub const FAILED: i32 = 125;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The vNode to run in (made on first use).
    #[arg(long, default_value = DEFAULT_VNODE, value_name = "NAME")]
    pub vnode: String,
    /// An environment variable for the program (repeatable); PATH and HOME
    /// get defaults unless given.
    #[arg(long = "env", short = 'e', value_name = "K=V", value_parser = lego_control::env_assignment)]
    pub env: Vec<String>,
    /// The program (a host file, uploaded; or a path in the vNode, or
    /// lego:/path) and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PROG [ARGS]"
    )]
    pub command: Vec<OsString>,
}

/// The environment: the user's `--env`, then PATH and HOME if not given,
/// and the caller's locale and time zone if not given
/// ([`lego_control::goes_with_program`]).
pub fn environment(given: &[String]) -> Vec<Vec<u8>> {
    let mut env: Vec<Vec<u8>> = given.iter().map(|e| e.as_bytes().to_vec()).collect();
    let defaults =
        [("PATH", "/bin:/usr/bin"), ("HOME", "/")].map(|(k, v)| (k.to_string(), v.to_string()));
    for (key, value) in defaults.into_iter().chain(lego_control::callers_locale()) {
        if !given
            .iter()
            .any(|e| e.split_once('=').is_some_and(|(k, _)| k == key))
        {
            env.push(format!("{key}={value}").into_bytes());
        }
    }
    env
}

/// Where a program file goes in a vNode: named by its contents.
pub fn program_path(file: &Path) -> std::io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(File::open(file)?)?;
    Ok(format!("{PROGRAM_DIR}/{}", hasher.finalize().to_hex()))
}

pub fn run(args: &RunArgs, globals: Option<&str>) -> Result<i32, ToolError> {
    let (prog, rest) = match args.command.split_first() {
        Some(split) => split,
        None => return Err(ToolError::Usage("no program to run".into())),
    };
    let typed = prog.as_bytes();
    let host_file = Path::new(prog);
    // `lego:/path` always means the vNode's file, even if the host has one.
    let in_vnode = typed.strip_prefix(b"lego:").map(<[u8]>::to_vec);
    let local = in_vnode.is_none() && host_file.is_file();
    let exe_in_vnode = in_vnode.clone().unwrap_or_else(|| typed.to_vec());
    if !local && !exe_in_vnode.starts_with(b"/") {
        return Err(ToolError::Usage(format!(
            "{} is neither a file on this host nor an absolute path in vNode {}'s files \
             (such as /bin/busybox)",
            prog.to_string_lossy(),
            args.vnode
        )));
    }
    let mut g = connect(globals)?;
    let placed = g.place_run(&args.vnode)?;
    let processor = Processor::of(&placed.processor).ok_or_else(|| {
        ToolError::Failed(format!(
            "processor {} has no control address to run on",
            placed.processor.id
        ))
    })?;
    let exe = if local {
        upload(&processor, &placed.vnode, host_file)?
    } else {
        exe_in_vnode.clone()
    };
    let mut argv = vec![in_vnode.unwrap_or_else(|| typed.to_vec())];
    argv.extend(rest.iter().map(|a| a.as_bytes().to_vec()));
    let start = RunStart {
        vnode: placed.vnode.clone(),
        home: placed.home,
        exe,
        argv,
        env: environment(&args.env),
        cwd: b"/".to_vec(),
    };
    log::info!(
        "running in vNode {} on {}, home memory component {}",
        placed.vnode.name,
        processor.name(),
        placed.home
    );
    let conn = processor.start_run(start)?;
    stream(conn, &processor)
}

/// Puts the host file in the vNode unless its contents are there already;
/// its path in the vNode.
fn upload(processor: &Processor, vnode: &VNode, file: &Path) -> Result<Vec<u8>, ToolError> {
    let shown = file.display().to_string();
    let path = program_path(file).map_err(ToolError::io(format!("reading {shown}")))?;
    if processor.exists(vnode, path.as_bytes())? {
        log::info!("{shown} is already in vNode {} as {path}", vnode.name);
        return Ok(path.into_bytes());
    }
    let mut f = File::open(file).map_err(ToolError::io(format!("reading {shown}")))?;
    let started = Instant::now();
    match processor.put(vnode, path.as_bytes(), 0o755, &mut f) {
        Ok(n) => {
            log::info!(
                "uploaded {shown} ({n} bytes) to vNode {} as {path} in {:.0?}",
                vnode.name,
                started.elapsed()
            );
            Ok(path.into_bytes())
        }
        Err(ClientError::Local(e)) => Err(ToolError::Io {
            what: format!("reading {shown}"),
            source: e,
        }),
        Err(ClientError::Refused(why)) => Err(ToolError::Failed(format!(
            "{shown} could not be put in vNode {}: {why}",
            vnode.name
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Carries the run: stdin and signals out, output and the status in.
fn stream(mut events: Conn, processor: &Processor) -> Result<i32, ToolError> {
    let lost = |e: ConnError| {
        ToolError::Failed(format!(
            "lost the connection to {} ({e}); the program's fate is unknown \
             (`lego ps` shows whether it still runs)",
            processor.name()
        ))
    };
    let sender = Arc::new(Mutex::new(events.try_clone().map_err(lost)?));
    forward_stdin(Arc::clone(&sender));
    forward_signals(Arc::clone(&sender))?;
    let mut stdout_open = true;
    loop {
        match events.recv::<ProcessorEvent>() {
            Ok(ProcessorEvent::Started { pid }) => {
                log::info!("the program is process {pid} on {}", processor.name())
            }
            Ok(ProcessorEvent::Stdout(bytes)) if stdout_open => {
                let mut out = std::io::stdout().lock();
                if out.write_all(&bytes).and_then(|()| out.flush()).is_err() {
                    // Nobody reads our output any more (`lego run x | head`):
                    // the program learns it as it would on a host.
                    stdout_open = false;
                    send(&sender, &ProcessorRequest::Signal(libc::SIGPIPE));
                }
            }
            Ok(ProcessorEvent::Stdout(_)) => {}
            Ok(ProcessorEvent::Stderr(bytes)) => {
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(&bytes).and_then(|()| err.flush());
            }
            Ok(ProcessorEvent::Exited { code, signal }) => {
                if signal != 0 {
                    log::info!("the program was killed by signal {signal}");
                }
                return Ok(code);
            }
            Ok(ProcessorEvent::Failed(why)) => return Err(ToolError::Failed(why)),
            Ok(_) => {
                return Err(ToolError::Failed(format!(
                    "{} sent something that is not part of a run",
                    processor.name()
                )))
            }
            Err(e) => return Err(lost(e)),
        }
    }
}

fn send(sender: &Mutex<Conn>, msg: &ProcessorRequest) -> bool {
    let mut conn = sender.lock().unwrap_or_else(|e| e.into_inner());
    conn.send(msg).is_ok()
}

/// Copies stdin to the run in 64 KiB messages, then `StdinEnd`.
fn forward_stdin(sender: Arc<Mutex<Conn>>) {
    let fallback = Arc::clone(&sender);
    let spawned = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut buf = vec![0u8; 64 << 10];
            let mut stdin = std::io::stdin().lock();
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if !send(&sender, &ProcessorRequest::Stdin(buf[..n].to_vec())) {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        log::warn!("reading stdin: {e}; the program sees its end");
                        break;
                    }
                }
            }
            send(&sender, &ProcessorRequest::StdinEnd);
        });
    if let Err(e) = spawned {
        log::warn!("cannot start the thread that forwards stdin ({e}); the program sees no input");
        send(&fallback, &ProcessorRequest::StdinEnd);
    }
}

/// Ctrl-C (and SIGTERM, SIGHUP) become a `Signal` to the run instead of
/// ending the tool; a second Ctrl-C within a second ends the tool (130),
/// leaving the program to the processor.
fn forward_signals(sender: Arc<Mutex<Conn>>) -> Result<(), ToolError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(ToolError::io("catching Ctrl-C"))?;
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut last_int: Option<Instant> = None;
            for sig in signals.forever() {
                if sig == SIGINT {
                    if last_int.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
                        eprintln!(
                            "\nlego run: interrupted twice; leaving the program to its processor"
                        );
                        sender.lock().unwrap_or_else(|e| e.into_inner()).shutdown();
                        std::process::exit(130);
                    }
                    last_int = Some(Instant::now());
                }
                if !send(&sender, &ProcessorRequest::Signal(sig)) {
                    return;
                }
            }
        });
    spawned
        .map(|_| ())
        .map_err(ToolError::io("starting the thread that forwards Ctrl-C"))
}
