//! guest-pmon: the processor monitor. It runs a built-in workload as a
//! process whose memory lives in memory components, reached through the
//! VMM's ExCache (`lego-vmm --role processor --excache SIZE
//! --run-workload ...`); user programs come with the system-call issue.
//! Otherwise it serves the fabric with the echo handler.
#![no_std]
#![no_main]

extern crate alloc;

mod window;
mod workload;

use lego_image::{cpu, fabric, hypercall, BootInfo, Role};
use lego_proto::boot::Mode;
use lego_proto::hypercall::PORT_WORKLOAD_DONE;

lego_image::guest!(Role::Processor, main);

fn main(boot: &'static BootInfo) -> ! {
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
