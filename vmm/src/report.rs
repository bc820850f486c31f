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

/// An exception the guest's handler reported (`cause`: see [`stopped`]).
pub fn exception(who: &Who, f: &FaultReport, symbols: &Symbols, cause: &str) -> String {
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
        let text = exception(&who, &f, &Symbols::default(), "");
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
    }
}
