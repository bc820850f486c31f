//! `lego status`: what the managers know, drawn by [`crate::render`].

use super::{connect, ToolError};
use crate::render;

pub fn status(globals: Option<&str>) -> Result<i32, ToolError> {
    let mut g = connect(globals)?;
    let (components, vnodes) = g.status()?;
    // Each vNode's share of its storage, asked through a processor the
    // managers place it on (only they may reach its files); unknown when
    // none is up or its storage is down.
    let usage: Vec<Option<(u64, u64)>> = vnodes
        .iter()
        .map(|v| {
            let placed = g.locate(&v.name).ok()?;
            let p = crate::processor::Processor::of(&placed.processor)?;
            p.usage(&placed.vnode).ok()
        })
        .collect();
    print!("{}", render::status(g.addr(), &components, &vnodes, &usage));
    Ok(0)
}
