//! `lego down`: stops what `lego up` started on this machine.

use std::time::Duration;

use super::{home_rack, ToolError};
use crate::rack;

/// How long components get to end on SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

pub fn down() -> Result<i32, ToolError> {
    let rack = home_rack()?;
    let pids: Vec<u32> = rack
        .pids()
        .into_iter()
        .map(|(pid, _)| pid)
        .filter(|&pid| rack::is_ours(pid))
        .collect();
    if pids.is_empty() {
        rack.clear();
        println!("no rack is up");
        return Ok(0);
    }
    let stopped = rack::stop(&pids, GRACE);
    rack.clear();
    let mut line = format!(
        "rack down: {} process{} stopped",
        pids.len(),
        if pids.len() == 1 { "" } else { "es" }
    );
    if stopped.killed > 0 {
        line.push_str(&format!(
            " ({} killed after {} s)",
            stopped.killed,
            GRACE.as_secs()
        ));
    }
    println!("{line}");
    Ok(0)
}
