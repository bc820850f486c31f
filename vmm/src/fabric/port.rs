//! The fabric's hypercalls: PORT_FABRIC_SETUP (the guest's queues),
//! PORT_PAGE_INDEX (a memory monitor's page index, which its VMM serves
//! page reads from), and PORT_FABRIC_KICK / PORT_FABRIC_WAIT. Each status
//! goes back in the argument the guest passed.

use std::time::Duration;

use lego_proto::hypercall::{FabricSetup, FABRIC_BAD_QUEUES, FABRIC_DISABLED, FABRIC_OK};
use lego_proto::index::PageIndexSetup;

use super::Fabric;
use crate::guest_args::GuestArgs;

/// Takes the guest's queues from the [`FabricSetup`] at `at`; without a
/// fabric (no `--id`) the status says so, and queues the fabric refuses
/// are FABRIC_BAD_QUEUES (logged).
pub fn setup(fabric: Option<&Fabric>, args: &GuestArgs<'_>, at: u32) -> Result<(), String> {
    let mut s: FabricSetup = args.read_arg("fabric setup", at)?;
    s.status = match fabric {
        None => FABRIC_DISABLED,
        Some(fabric) => match fabric.setup(&s) {
            Ok(()) => {
                log::info!("fabric: the guest's queues are set up");
                FABRIC_OK
            }
            Err(why) => {
                log::warn!("fabric: refused the guest's queues: {why}");
                FABRIC_BAD_QUEUES
            }
        },
    };
    args.write_arg("fabric setup", at, &s)
}

/// Takes a memory monitor's page index from the [`PageIndexSetup`] at
/// `at`: status 0 when taken, 1 when this is no memory component with a
/// fabric, 2 when the index is refused (logged).
pub fn page_index(
    fabric: Option<&Fabric>,
    memory_role: bool,
    args: &GuestArgs<'_>,
    at: u32,
) -> Result<(), String> {
    let mut s: PageIndexSetup = args.read_arg("page index", at)?;
    s.status = match fabric {
        Some(fabric) if memory_role => match fabric.offer_page_index(&s) {
            Ok(()) => 0,
            Err(why) => {
                log::warn!("fabric: the memory monitor's page index is refused: {why}");
                2
            }
        },
        _ => 1,
    };
    args.write_arg("page index", at, &s)
}

/// PORT_FABRIC_KICK: the guest posted frames.
pub fn kick(fabric: Option<&Fabric>) {
    if let Some(fabric) = fabric {
        fabric.kick();
    }
}

/// PORT_FABRIC_WAIT: the guest has nothing to do until its receive queue
/// moves past index `value & 0xffff`, or `value >> 16` ms pass.
pub fn wait(fabric: Option<&Fabric>, value: u32) {
    if let Some(fabric) = fabric {
        let timeout = Duration::from_millis((value >> 16) as u64);
        fabric.wait(value as u16, timeout);
    }
}
