//! guest-pmon: the processor monitor. It runs user programs once the
//! ExCache and system-call issues land; today it boots and waits.
#![no_std]
#![no_main]

use lego_image::{fabric, BootInfo, Role};

lego_image::guest!(Role::Processor, main);

fn main(boot: &'static BootInfo) -> ! {
    lego_image::println!(
        "processor monitor: no processes to run yet; serving the fabric if it has one"
    );
    fabric::serve_or_idle(boot, fabric::echo)
}
