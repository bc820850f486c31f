//! `lego ps`: every process on every processor that is up.

use lego_control::Role;

use super::{connect, ToolError};
use crate::processor::Processor;
use crate::render;

pub fn ps(globals: Option<&str>) -> Result<i32, ToolError> {
    let mut g = connect(globals)?;
    let (components, _) = g.status()?;
    let processors: Vec<Processor> = components
        .iter()
        .filter(|c| c.role == Role::Processor && c.up)
        .filter_map(Processor::of)
        .collect();
    if processors.is_empty() {
        return Err(ToolError::Failed(
            "no processor is up (`lego status` shows the rack)".into(),
        ));
    }
    let mut rows = Vec::new();
    let mut code = 0;
    for p in &processors {
        match p.ps() {
            Ok(list) => rows.extend(list.into_iter().map(|info| (p.id, info))),
            Err(e) => {
                // One processor not answering does not hide the others.
                eprintln!("lego ps: {}: {e}", p.name());
                code = 1;
            }
        }
    }
    print!("{}", render::ps(&rows));
    Ok(code)
}
