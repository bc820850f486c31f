//! lego-demo: two small jobs that use real memory and print a result anyone
//! can check, for running on Lego (where the memory is on a memory
//! component and the processor keeps only a bounded cache of it) or on any
//! Linux.
//!
//! * `lego-demo [primes] [--mem SIZE]` (the default) counts the primes with
//!   a sieve of Eratosthenes over SIZE bytes (64 MiB unless told), one byte
//!   per odd number, so 64 MiB finds the primes below 2^27. It prints the
//!   counts below each power of ten (well-known numbers: 168 below 1000,
//!   5761455 below 10^8), the largest prime and the sum of them all, then
//!   reads the whole sieve again and checks it still counts the same.
//! * `lego-demo wordfreq [--top N]` reads text on stdin and prints how many
//!   words it has, how many different ones, the N most frequent and a
//!   checksum of the whole table.
//!
//! Standard output is the same on every run and machine; the time taken goes
//! to standard error as a last line starting with "took". Only std: the
//! system calls are those of Rust's runtime and glibc's start-up, read,
//! write, mmap/munmap (brk for small allocations), clock_gettime and
//! exit_group. No threads, files or network.

mod primes;
mod wordfreq;

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "\
usage: lego-demo [primes] [--mem SIZE]
       lego-demo wordfreq [--top N] < text

  primes    count the primes with a sieve of Eratosthenes that writes and
            then reads back SIZE bytes of memory, one byte per odd number
            (the default; SIZE 64M finds the primes below 134217728)
  wordfreq  count the words of the text on stdin and show the most frequent

  --mem SIZE  memory for the sieve: bytes, or with a K, M, G or T suffix
              (binary units: 256M, 1G); default 64M
  --top N     how many of the most frequent words to show; default 10
  -h, --help  this text

Standard output is the same on every run; the time taken is printed on
standard error, last, as a line starting with \"took\".
";

/// The sieve's memory when no `--mem` is given.
const DEFAULT_MEM: u64 = 64 << 20;
/// The words `wordfreq` shows when no `--top` is given.
const DEFAULT_TOP: usize = 10;

#[derive(Debug, PartialEq, Eq)]
enum Command {
    Primes { mem: u64 },
    WordFreq { top: usize },
    Help,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse_args(&args) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("lego-demo: {message}");
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let start = Instant::now();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = match command {
        Command::Help => out.write_all(USAGE.as_bytes()).map_err(|e| e.to_string()),
        Command::Primes { mem } => primes::run(mem, &mut out),
        Command::WordFreq { top } => wordfreq::run(&mut io::stdin().lock(), top, &mut out),
    };
    let flushed = out.flush().map_err(|e| e.to_string());
    match result.and(flushed) {
        Ok(()) => {
            if command != Command::Help {
                eprintln!("took {:.2} s", start.elapsed().as_secs_f64());
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("lego-demo: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The command line (without the program's name): at most one command and
/// its options, `--opt value` or `--opt=value`.
fn parse_args(args: &[String]) -> Result<Command, String> {
    let mut mode: Option<&str> = None;
    let mut mem: Option<u64> = None;
    let mut top: Option<usize> = None;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value)),
            _ => (arg, None),
        };
        let mut value = || -> Result<&str, String> {
            if let Some(v) = inline {
                return Ok(v);
            }
            i += 1;
            args.get(i)
                .map(String::as_str)
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name {
            "-h" | "--help" => return Ok(Command::Help),
            "--mem" => mem = Some(parse_size(value()?)?),
            "--top" => {
                let v = value()?;
                top = Some(
                    v.parse()
                        .map_err(|_| format!("--top: not a count: {v:?}"))?,
                );
            }
            _ if name.starts_with('-') => return Err(format!("unknown option {arg:?}")),
            "primes" | "wordfreq" if mode.is_none() => mode = Some(name),
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
        i += 1;
    }
    match mode.unwrap_or("primes") {
        "primes" => {
            if top.is_some() {
                return Err("--top is for wordfreq".into());
            }
            let mem = mem.unwrap_or(DEFAULT_MEM);
            if mem < primes::MIN_MEM {
                return Err(format!("--mem: at least {} bytes", primes::MIN_MEM));
            }
            Ok(Command::Primes { mem })
        }
        _ => {
            if mem.is_some() {
                return Err("--mem is for primes (wordfreq uses what the text needs)".into());
            }
            Ok(Command::WordFreq {
                top: top.unwrap_or(DEFAULT_TOP),
            })
        }
    }
}

/// "65536", "64K", "256M", "1G", "2GiB", "512mb": binary units, as
/// lego-vmm reads sizes.
fn parse_size(text: &str) -> Result<u64, String> {
    parse_size::Config::new()
        .with_binary()
        .parse_size(text)
        .map_err(|e| format!("--mem: not a size: {text:?} ({e}; try 64M or 1G)"))
}

/// `bytes` for people: "64 MiB", "1.5 GiB", "4096 bytes".
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut unit = 0;
    let mut scale = 1024u64;
    while unit + 1 < UNITS.len() && bytes >= scale * 1024 {
        unit += 1;
        scale *= 1024;
    }
    if bytes % scale == 0 {
        format!("{} {}", bytes / scale, UNITS[unit])
    } else {
        format!("{:.1} {}", bytes as f64 / scale as f64, UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command, String> {
        let args: Vec<String> = line.split_whitespace().map(String::from).collect();
        parse_args(&args)
    }

    #[test]
    fn commands_and_options() {
        assert_eq!(parse(""), Ok(Command::Primes { mem: 64 << 20 }));
        assert_eq!(
            parse("primes --mem 256M"),
            Ok(Command::Primes { mem: 256 << 20 })
        );
        assert_eq!(
            parse("--mem=1G primes"),
            Ok(Command::Primes { mem: 1 << 30 })
        );
        assert_eq!(parse("wordfreq"), Ok(Command::WordFreq { top: 10 }));
        assert_eq!(parse("wordfreq --top 3"), Ok(Command::WordFreq { top: 3 }));
        assert_eq!(parse("wordfreq --help"), Ok(Command::Help));
        for bad in [
            "--mem",
            "--mem 12Q",
            "--mem 1",
            "--mem 99999999999T",
            "wordfreq --mem 1G",
            "primes --top 3",
            "primes primes",
            "sort",
            "-x",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("512MB"), Ok(512 << 20));
        assert!(parse_size("M").is_err());
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert!(parse_size("lots").is_err());
        assert_eq!(human_size(100), "100 bytes");
        assert_eq!(human_size(64 << 20), "64 MiB");
        assert_eq!(human_size(3 << 29), "1.5 GiB");
        assert_eq!(human_size(4 << 40), "4 TiB");
    }
}
