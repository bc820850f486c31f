//! guest-pmon: the processor monitor. It runs the user's static Linux
//! program (`lego-vmm --role processor ... -- PROG ARGS`, see `kernel`),
//! or a built-in workload as a process (`--run-workload`); in both, all
//! process memory lives in memory components, reached through the VMM's
//! ExCache. Otherwise it serves the fabric with the echo handler.
#![no_std]
#![no_main]

extern crate alloc;

mod kernel;
mod window;
mod workload;

use lego_image::{cpu, fabric, hypercall, BootInfo, Role};
use lego_proto::boot::Mode;
use lego_proto::hypercall::PORT_WORKLOAD_DONE;

lego_image::guest!(Role::Processor, main, secondary);

fn secondary(boot: &'static BootInfo, cpu: u32) -> ! {
    if boot.mode == Mode::Program as u32 {
        kernel::secondary(boot, cpu)
    }
    cpu::halt_forever()
}

fn main(boot: &'static BootInfo) -> ! {
    if boot.mode == Mode::Program as u32 {
        kernel::start(boot)
    }
    if boot.mode == Mode::Workload as u32 {
        let report = workload::run(boot);
        hypercall::out(PORT_WORKLOAD_DONE, cpu::phys_of(&report) as u32);
        cpu::halt_forever();
    }
    lego_image::println!(
        "processor monitor: no processes to run yet; serving the fabric if it has one"
    );
    fabric::serve_or_idle(boot, fabric::echo)
}
