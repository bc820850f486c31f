//! `lego status`: what the managers know, drawn by [`crate::render`].

use super::{connect, ToolError};
use crate::render;

pub fn status(globals: Option<&str>) -> Result<i32, ToolError> {
    let mut g = connect(globals)?;
    let (components, vnodes) = g.status()?;
    print!("{}", render::status(g.addr(), &components, &vnodes));
    Ok(0)
}
