//! `lego`: start a rack, run programs on it, see what it does. See
//! [`lego_globals::tool`] for the subcommands.

use clap::Parser;
use lego_globals::tool::{self, kill, run, Cli, ToolError};

fn main() {
    let args = kill::normalize_args(std::env::args_os().collect());
    let cli = Cli::parse_from(args);
    env_logger::Builder::new()
        .filter_level(cli.log_level)
        .format_target(false)
        .init();
    let name = cli.command.name();
    let failed = if name == "run" { run::FAILED } else { 1 };
    let code = match tool::main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lego {name}: {e}");
            match e {
                ToolError::Usage(_) => 2,
                _ => failed,
            }
        }
    };
    std::process::exit(code);
}
