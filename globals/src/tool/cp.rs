//! `lego cp SRC DST`: a file between this host and a vNode's namespace,
//! through a processor the managers pick (`Locate`). One side is written
//! `lego:/path` (the default vNode) or `lego:VNODE:/path`.

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use clap::Args;
use lego_control::DEFAULT_VNODE;

use super::{base_name, connect, host_target, ToolError};
use crate::client::ClientError;
use crate::processor::Processor;
use crate::state::check_vnode_name;

#[derive(Args, Debug)]
pub struct CpArgs {
    /// A host path, or lego:/path or lego:VNODE:/path.
    pub src: String,
    /// A host path, or lego:/path or lego:VNODE:/path (ending in '/': into
    /// that directory, under the source's name).
    pub dst: String,
}

/// One side of a copy.
#[derive(Debug, PartialEq, Eq)]
pub enum Side {
    Host(PathBuf),
    VNode { vnode: String, path: String },
}

/// Reads `lego:/path`, `lego:VNODE:/path`, or a host path.
pub fn parse_side(text: &str) -> Result<Side, ToolError> {
    let Some(rest) = text.strip_prefix("lego:") else {
        return Ok(Side::Host(PathBuf::from(text)));
    };
    let (vnode, path) = if rest.starts_with('/') {
        (DEFAULT_VNODE, rest)
    } else if let Some((v, p)) = rest.split_once(':') {
        check_vnode_name(v).map_err(ToolError::Usage)?;
        (v, p)
    } else {
        (DEFAULT_VNODE, rest)
    };
    if !path.starts_with('/') {
        return Err(ToolError::Usage(format!(
            "{text:?} names no absolute path in a vNode: write lego:/path or lego:VNODE:/path"
        )));
    }
    Ok(Side::VNode {
        vnode: vnode.to_string(),
        path: path.to_string(),
    })
}

pub fn cp(args: &CpArgs, globals: Option<&str>) -> Result<i32, ToolError> {
    match (parse_side(&args.src)?, parse_side(&args.dst)?) {
        (Side::Host(from), Side::VNode { vnode, path }) => upload(&from, &vnode, &path, globals),
        (Side::VNode { vnode, path }, Side::Host(to)) => download(&vnode, &path, to, globals),
        (Side::Host(_), Side::Host(_)) => Err(ToolError::Usage(
            "one of SRC and DST must be in a vNode, like lego:/data/notes.txt or \
             lego:web:/data/notes.txt (to copy between host files, use cp)"
                .into(),
        )),
        (Side::VNode { .. }, Side::VNode { .. }) => Err(ToolError::Usage(
            "one of SRC and DST must be a host path: copy a vNode's file to this host first".into(),
        )),
    }
}

fn located(
    vnode: &str,
    globals: Option<&str>,
) -> Result<(Processor, lego_control::VNode), ToolError> {
    let mut g = connect(globals)?;
    let placed = g.locate(vnode)?;
    let processor = Processor::of(&placed.processor).ok_or_else(|| {
        ToolError::Failed(format!(
            "processor {} has no control address to reach vNode {vnode}'s files through",
            placed.processor.id
        ))
    })?;
    Ok((processor, placed.vnode))
}

fn upload(from: &Path, vnode: &str, path: &str, globals: Option<&str>) -> Result<i32, ToolError> {
    let shown = from.display();
    let meta = fs::metadata(from).map_err(ToolError::io(format!("{shown}")))?;
    if !meta.is_file() {
        return Err(ToolError::Usage(format!("{shown} is not a file")));
    }
    let mut path = path.to_string();
    if path.ends_with('/') {
        let name = from.file_name().map(|n| n.to_string_lossy().into_owned());
        path.push_str(&name.unwrap_or_default());
    }
    let mut file = File::open(from).map_err(ToolError::io(format!("{shown}")))?;
    let (processor, v) = located(vnode, globals)?;
    let mode = meta.permissions().mode() & 0o7777;
    match processor.put(&v, path.as_bytes(), mode, &mut file) {
        Ok(_) => Ok(0),
        Err(ClientError::Local(e)) => Err(ToolError::Io {
            what: format!("reading {shown}"),
            source: e,
        }),
        Err(ClientError::Refused(why)) => Err(ToolError::Failed(format!(
            "{vnode}:{path} was not written: {why}"
        ))),
        Err(e) => Err(e.into()),
    }
}

fn download(vnode: &str, path: &str, to: PathBuf, globals: Option<&str>) -> Result<i32, ToolError> {
    let name = base_name(path)
        .ok_or_else(|| ToolError::Usage(format!("{vnode}:{path} names a directory, not a file")))?;
    let to = host_target(to, name);
    let (processor, v) = located(vnode, globals)?;
    // Into a file beside the target, renamed at the end: a failed copy
    // leaves no half file where the user expects a whole one.
    let dir = to
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = to
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let part = dir.join(format!(".{file_name}.lego-part"));
    let mut file = File::create(&part).map_err(ToolError::io(format!("{}", part.display())))?;
    let got = processor.get(&v, path.as_bytes(), &mut file);
    let done = got.and_then(|_| file.sync_all().map_err(ClientError::Local));
    drop(file);
    match done {
        Ok(()) => {
            fs::rename(&part, &to).map_err(ToolError::io(format!("{}", to.display())))?;
            Ok(0)
        }
        Err(e) => {
            let _ = fs::remove_file(&part);
            Err(match e {
                ClientError::Local(source) => ToolError::Io {
                    what: format!("writing {}", to.display()),
                    source,
                },
                ClientError::Refused(why) => {
                    ToolError::Failed(format!("{vnode}:{path} was not read: {why}"))
                }
                e => e.into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides() {
        assert_eq!(
            parse_side("lego:/a/b").unwrap(),
            Side::VNode {
                vnode: "default".into(),
                path: "/a/b".into()
            }
        );
        assert_eq!(
            parse_side("lego:web:/x:y").unwrap(),
            Side::VNode {
                vnode: "web".into(),
                path: "/x:y".into()
            }
        );
        assert_eq!(
            parse_side("./lego:x").unwrap(),
            Side::Host("./lego:x".into())
        );
        assert!(parse_side("lego:web").is_err());
        assert!(parse_side("lego:web:rel").is_err());
        assert!(parse_side("lego:b a d:/x").is_err());
    }
}
