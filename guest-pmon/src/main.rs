//! guest-pmon: the processor monitor. It runs user programs once the
//! ExCache and system-call issues land; today it boots and waits.
#![no_std]
#![no_main]

use lego_image::{cpu, BootInfo, Role};

lego_image::guest!(Role::Processor, main);

fn main(_boot: &'static BootInfo) -> ! {
    lego_image::println!("processor monitor: no processes to run yet; idle until stopped");
    cpu::halt_forever()
}
