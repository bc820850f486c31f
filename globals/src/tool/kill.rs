//! `lego kill [-s SIG | -SIG] PID [--processor ID]`: a signal to a process
//! on the rack. Pids are per processor; without `--processor` each
//! processor that is up is asked in turn (one that does not know the pid
//! answers `Failed`).

use std::ffi::OsString;

use clap::Args;
use lego_control::Role;

use super::{connect, ToolError};
use crate::client::ClientError;
use crate::processor::Processor;

#[derive(Args, Debug)]
pub struct KillArgs {
    /// The signal, by name (TERM, SIGKILL, int) or number; `-9` and `-KILL`
    /// work too.
    #[arg(short = 's', long = "signal", default_value = "TERM", value_parser = parse_signal)]
    pub signal: i32,
    /// The processor the pid is on (`lego ps` shows it).
    #[arg(long, value_name = "ID")]
    pub processor: Option<u32>,
    /// The process id on its processor.
    pub pid: u32,
}

const SIGNALS: [(&str, i32); 14] = [
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("KILL", 9),
    ("USR1", 10),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("WINCH", 28),
];

/// A signal number from a name ("TERM", "sigterm") or a number (1 to 64).
pub fn parse_signal(text: &str) -> Result<i32, String> {
    if let Ok(n) = text.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(format!("{n} is not a signal number (1 to 64)"))
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, n)| n)
        .ok_or_else(|| {
            format!("{text:?} is not a signal: use a number or a name such as TERM, INT, KILL, HUP")
        })
}

/// The signal's name for messages ("SIGTERM", or "signal 40").
pub fn signal_name(n: i32) -> String {
    SIGNALS
        .iter()
        .find(|&&(_, s)| s == n)
        .map(|(name, _)| format!("SIG{name}"))
        .unwrap_or_else(|| format!("signal {n}"))
}

/// Rewrites `lego kill -9 PID` and `lego kill -KILL PID` as `-s 9` and
/// `-s KILL`, which clap can read. Only the words after the `kill`
/// subcommand are touched.
pub fn normalize_args(args: Vec<OsString>) -> Vec<OsString> {
    // Global options that take a value, before the subcommand.
    const VALUED: [&str; 2] = ["--globals", "--log-level"];
    let mut i = 1;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        if VALUED.contains(&a.as_ref()) {
            i += 2;
        } else if a.starts_with('-') {
            i += 1;
        } else {
            break;
        }
    }
    if args.get(i).is_none_or(|a| a != "kill") {
        return args;
    }
    let mut out: Vec<OsString> = args[..=i].to_vec();
    let mut rest = args[i + 1..].iter();
    while let Some(a) = rest.next() {
        let s = a.to_string_lossy();
        let sig = s.strip_prefix('-').filter(|v| {
            let numeric = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
            let named = v.len() > 1
                && v.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            numeric || named
        });
        match sig {
            Some(v) => {
                out.push("-s".into());
                out.push(v.into());
            }
            None if s == "--" => {
                out.push(a.clone());
                out.extend(rest.by_ref().cloned());
            }
            None => out.push(a.clone()),
        }
    }
    out
}

pub fn kill(args: &KillArgs, globals: Option<&str>) -> Result<i32, ToolError> {
    let mut g = connect(globals)?;
    let (components, _) = g.status()?;
    let processors: Vec<Processor> = components
        .iter()
        .filter(|c| c.role == Role::Processor && c.up)
        .filter(|c| args.processor.is_none_or(|id| id == c.id))
        .filter_map(Processor::of)
        .collect();
    if processors.is_empty() {
        return Err(ToolError::Failed(match args.processor {
            Some(id) => format!("processor {id} is not up (`lego status` shows the rack)"),
            None => "no processor is up (`lego status` shows the rack)".into(),
        }));
    }
    let sig = signal_name(args.signal);
    let mut refusals = Vec::new();
    for p in &processors {
        match p.kill(args.pid, args.signal) {
            Ok(()) => {
                println!("sent {sig} to process {} on {}", args.pid, p.name());
                return Ok(0);
            }
            Err(ClientError::Refused(why)) => refusals.push(format!("{}: {why}", p.name())),
            Err(e) => refusals.push(format!("{}: {e}", p.name())),
        }
    }
    Err(ToolError::Failed(format!(
        "no processor took {sig} for process {}: {}",
        args.pid,
        refusals.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<OsString> {
        s.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn dash_signal_becomes_dash_s() {
        assert_eq!(
            normalize_args(words("lego kill -9 42")),
            words("lego kill -s 9 42")
        );
        assert_eq!(
            normalize_args(words("lego --globals g:1 kill -KILL 42 --processor 3")),
            words("lego --globals g:1 kill -s KILL 42 --processor 3")
        );
        // Other subcommands and ordinary flags are left alone.
        assert_eq!(
            normalize_args(words("lego run -9 x")),
            words("lego run -9 x")
        );
        assert_eq!(
            normalize_args(words("lego kill -s 2 7")),
            words("lego kill -s 2 7")
        );
    }

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("9"), Ok(9));
        assert_eq!(parse_signal("sigterm"), Ok(15));
        assert_eq!(parse_signal("INT"), Ok(2));
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("NOPE").is_err());
        assert_eq!(signal_name(9), "SIGKILL");
    }
}
