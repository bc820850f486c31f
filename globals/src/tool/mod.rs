//! The `lego` tool: one module per subcommand, and here what they share
//! (the command line, the error type, finding the rack).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::client::{ClientError, Globals};
use crate::conn::ConnError;
use crate::rack::Rack;

pub mod cp;
pub mod down;
pub mod kill;
pub mod ps;
pub mod run;
pub mod size;
pub mod status;
pub mod up;
mod up_progress;

#[derive(Parser, Debug)]
#[command(
    name = "lego",
    version,
    about = "Start a Lego rack, run programs on it, and see what it does.",
    after_help = "Without --globals or LEGO_GLOBALS, commands talk to the rack `lego up` \
                  started on this machine (its files are under $LEGO_HOME/rack)."
)]
pub struct Cli {
    /// The global managers' address (host:port) of the rack to use.
    #[arg(long, env = "LEGO_GLOBALS", global = true, value_name = "ADDR")]
    pub globals: Option<String>,
    /// The tool's own log on stderr (error, warn, info, debug, trace).
    #[arg(long, default_value = "warn", global = true, value_name = "LEVEL")]
    pub log_level: log::LevelFilter,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start a rack on this machine: the global managers, memory, storage
    /// and processor components, on loopback, in the background.
    Up(up::UpArgs),
    /// Stop the rack `lego up` started.
    Down,
    /// Show the components, vNodes and each processor's ExCache.
    Status,
    /// Run a program on the rack, with this terminal's stdin, stdout and
    /// stderr; exits with its status.
    Run(run::RunArgs),
    /// Copy a file between this host and a vNode (one side is
    /// lego:/path or lego:VNODE:/path).
    Cp(cp::CpArgs),
    /// List the processes running on the rack's processors.
    Ps,
    /// Send a signal to a process on the rack.
    Kill(kill::KillArgs),
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Up(_) => "up",
            Command::Down => "down",
            Command::Status => "status",
            Command::Run(_) => "run",
            Command::Cp(_) => "cp",
            Command::Ps => "ps",
            Command::Kill(_) => "kill",
        }
    }
}

/// Why a command failed, as a sentence for the user.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(
        "no rack is up: start one on this machine with `lego up`, \
         or name one with --globals ADDR or LEGO_GLOBALS"
    )]
    NoRack,
    #[error("cannot tell where Lego keeps its files: set LEGO_HOME (or HOME)")]
    NoHome,
    #[error(
        "the rack started here does not answer ({source}); \
         `lego down` then `lego up` starts it again"
    )]
    RackGone { source: ConnError },
    #[error("the global managers at {addr} do not answer: {source}")]
    Unreachable { addr: String, source: ConnError },
    #[error("{0}")]
    Client(#[from] ClientError),
    /// The command line asks for something that cannot be.
    #[error("{0}")]
    Usage(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// Any other sentence.
    #[error("{0}")]
    Failed(String),
}

impl ToolError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ToolError {
        let what = what.into();
        move |source| ToolError::Io { what, source }
    }
}

/// Runs one command; its exit code.
pub fn main(cli: Cli) -> Result<i32, ToolError> {
    let globals = cli.globals.as_deref().filter(|g| !g.is_empty());
    match &cli.command {
        Command::Up(args) => up::up(args),
        Command::Down => down::down(),
        Command::Status => status::status(globals),
        Command::Run(args) => run::run(args, globals),
        Command::Cp(args) => cp::cp(args, globals),
        Command::Ps => ps::ps(globals),
        Command::Kill(args) => kill::kill(args, globals),
    }
}

/// The embedded rack's files.
pub fn home_rack() -> Result<Rack, ToolError> {
    Rack::at_home().ok_or(ToolError::NoHome)
}

/// Connects to the rack: `--globals`/`LEGO_GLOBALS`, else the one `lego
/// up` started here.
pub fn connect(globals: Option<&str>) -> Result<Globals, ToolError> {
    if let Some(addr) = globals {
        return Globals::connect(addr).map_err(|source| ToolError::Unreachable {
            addr: addr.to_string(),
            source,
        });
    }
    let rack = home_rack()?;
    let addr = rack.globals_addr().ok_or(ToolError::NoRack)?;
    Globals::connect(&addr).map_err(|source| ToolError::RackGone { source })
}

/// A path as bytes for the protocol (paths in a vNode are bytes).
pub fn path_bytes(p: &std::ffi::OsStr) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    p.as_bytes().to_vec()
}

/// The file name at the end of a path written with '/'.
pub fn base_name(path: &str) -> Option<&str> {
    path.rsplit('/').next().filter(|n| !n.is_empty())
}

/// `dir/name` if `dst` is a directory on this host, else `dst`.
pub fn host_target(dst: PathBuf, name: &str) -> PathBuf {
    if dst.is_dir() {
        dst.join(name)
    } else {
        dst
    }
}
