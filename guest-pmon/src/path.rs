//! Path names as a process gives them: made absolute against its working
//! directory (or a directory descriptor), with `.` and `..` resolved the
//! way Linux resolves them lexically when no symbolic link is involved
//! (`..` above `/` stays at `/`). Symbolic links are the file system's to
//! follow.

use alloc::vec::Vec;

/// Linux's PATH_MAX, including the terminating NUL.
pub const PATH_MAX: usize = 4096;

/// `path` made absolute against `base` (an absolute directory) and
/// normalized: no empty, `.` or `..` components, no trailing slash except
/// for `/` itself.
pub fn resolve(base: &[u8], path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    let whole = if path.first() == Some(&b'/') {
        path
    } else {
        for p in base.split(|&c| c == b'/') {
            push(&mut parts, p);
        }
        path
    };
    for p in whole.split(|&c| c == b'/') {
        push(&mut parts, p);
    }
    let mut out = Vec::with_capacity(path.len() + base.len() + 1);
    for p in &parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

fn push<'a>(parts: &mut Vec<&'a [u8]>, p: &'a [u8]) {
    match p {
        b"" | b"." => {}
        b".." => {
            parts.pop();
        }
        p => parts.push(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_like_linux() {
        assert_eq!(resolve(b"/", b"etc/passwd"), b"/etc/passwd");
        assert_eq!(resolve(b"/home/u", b"../v/./x/"), b"/home/v/x");
        assert_eq!(resolve(b"/a", b"/b//c/.."), b"/b");
        assert_eq!(resolve(b"/", b"../../.."), b"/");
        assert_eq!(resolve(b"/a/b", b"."), b"/a/b");
        assert_eq!(resolve(b"/a/b", b""), b"/a/b");
    }
}
