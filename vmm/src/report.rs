//! Failure reports: what the guest did, where, and its registers, as text
//! a user can read without a debugger.

use std::fmt::Write;

use lego_proto::hypercall::{exception_name, FaultReport, GPR_NAMES};

use crate::loader::Symbols;

/// Who failed, for the first line of every report.
pub struct Who<'a> {
    pub role: &'a str,
    pub image: &'a str,
    pub cpu: u64,
}

impl std::fmt::Display for Who<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "the {} component's guest ({}) on vCPU {}",
            self.role, self.image, self.cpu
        )
    }
}

/// Registers to show: the named general-purpose ones plus the special ones.
pub struct Registers<'a> {
    pub rip: u64,
    pub rsp: u64,
    pub rflags: u64,
    pub cr2: u64,
    pub cs: u64,
    pub ss: u64,
    pub gprs: &'a [(&'static str, u64)],
}

fn write_registers(out: &mut String, regs: &Registers, symbols: &Symbols) {
    let place = symbols
        .describe(regs.rip)
        .map(|s| format!(" in {s}"))
        .unwrap_or_default();
    let _ = writeln!(out, "  rip    {:#018x}{place}", regs.rip);
    let _ = writeln!(out, "  cr2    {:#018x}", regs.cr2);
    let _ = writeln!(
        out,
        "  rsp    {:#018x}  rflags {:#010x}  cs {:#06x}  ss {:#06x}",
        regs.rsp, regs.rflags, regs.cs, regs.ss
    );
    for row in regs.gprs.chunks(4) {
        let line: Vec<String> = row
            .iter()
            .map(|(n, v)| format!("{n:<3} {v:#018x}"))
            .collect();
        let _ = writeln!(out, "  {}", line.join("  "));
    }
}

/// The last line of a report; `cause`, if not empty, a sentence on what
/// else may have done it.
fn stopped(out: &mut String, cause: &str) {
    out.push_str("The component has stopped. This is a bug in the guest image.");
    if !cause.is_empty() {
        out.push('\n');
        out.push_str(cause);
    }
}

/// The words of the faulting stack that are addresses inside the image's
/// functions: most are return addresses, so they read as the calls that
/// led to the fault (a jump to a null function pointer leaves only these).
fn write_stack_trail(out: &mut String, stack: &[u64], symbols: &Symbols) {
    let calls: Vec<String> = stack
        .iter()
        .enumerate()
        .filter_map(|(i, &word)| {
            symbols
                .describe(word)
                .map(|s| format!("    [rsp+{:#x}] {word:#x} {s}", i * 8))
        })
        .take(STACK_TRAIL_MAX)
        .collect();
    if !calls.is_empty() {
        let _ = writeln!(out, "  on the stack (return addresses, newest first):");
        for line in calls {
            let _ = writeln!(out, "{line}");
        }
    }
}

/// How many code addresses of the stack a report shows.
const STACK_TRAIL_MAX: usize = 16;

/// An exception the guest's handler reported (`cause`: see [`stopped`]);
/// `stack`: the words from the faulting RSP up, as many as could be read.
pub fn exception(
    who: &Who,
    f: &FaultReport,
    stack: &[u64],
    symbols: &Symbols,
    cause: &str,
) -> String {
    let mut out = format!(
        "{who} stopped on an exception it does not handle: {}, vector {}, error code {:#x}\n",
        exception_name(f.vector),
        f.vector,
        f.error_code
    );
    let gprs: Vec<(&'static str, u64)> = GPR_NAMES.iter().copied().zip(f.gprs).collect();
    write_registers(
        &mut out,
        &Registers {
            rip: f.rip,
            rsp: f.rsp,
            rflags: f.rflags,
            cr2: f.cr2,
            cs: f.cs,
            ss: f.ss,
            gprs: &gprs,
        },
        symbols,
    );
    write_stack_trail(&mut out, stack, symbols);
    stopped(&mut out, cause);
    out
}

/// A state the VMM read itself (triple fault, internal error, stray access).
pub fn vcpu_state(headline: &str, regs: &Registers, symbols: &Symbols, cause: &str) -> String {
    let mut out = format!("{headline}\n");
    write_registers(&mut out, regs, symbols);
    stopped(&mut out, cause);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exception_report_names_everything() {
        let f = FaultReport {
            vector: 14,
            error_code: 2,
            rip: 0x40_1000,
            cr2: 0x40_0000_0000,
            gprs: [7; 15],
            ..Default::default()
        };
        let who = Who {
            role: "memory",
            image: "guest-mmon",
            cpu: 0,
        };
        let text = exception(&who, &f, &[], &Symbols::default(), "");
        for needle in [
            "memory component",
            "guest-mmon",
            "page fault (#PF)",
            "vector 14",
            "error code 0x2",
            "rip    0x0000000000401000",
            "cr2    0x0000004000000000",
            "r15 0x0000000000000007",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        assert!(!text.contains("on the stack"), "{text}");
    }

    #[test]
    fn exception_report_shows_code_addresses_on_the_stack() {
        let symbols = Symbols::of(&[(0x40_1000, 0x100, "pmon::a"), (0x40_2000, 0x40, "pmon::b")]);
        let f = FaultReport {
            vector: 14,
            ..Default::default()
        };
        let who = Who {
            role: "processor",
            image: "guest-pmon",
            cpu: 0,
        };
        let stack = [0, 0x40_1010, 7, 0x40_2050, 0x40_2008];
        let text = exception(&who, &f, &stack, &symbols, "");
        assert!(text.contains("[rsp+0x8] 0x401010 pmon::a+0x10"), "{text}");
        assert!(text.contains("[rsp+0x20] 0x402008 pmon::b+0x8"), "{text}");
        // Past the end of b: not code.
        assert!(!text.contains("0x402050"), "{text}");
    }
}
