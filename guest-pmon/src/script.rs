//! Interpreter scripts (`#!`), as Linux's binfmt_script runs them: the
//! first line names an interpreter and at most one argument (the rest of
//! the line, not split), and the interpreter runs with the script's name
//! in place of argv[0].

use alloc::vec::Vec;

/// How much of a file's start Linux looks at (BINPRM_BUF_SIZE).
pub const HEAD: usize = 256;

/// How many interpreters may stand in front of the executable at the end
/// (Linux gives ELOOP past four).
pub const MAX_DEPTH: usize = 4;

/// What the start of a file says.
#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    /// Not a script: load it as an executable.
    NotScript,
    /// `#!interp [arg]`.
    Script {
        interp: Vec<u8>,
        arg: Option<Vec<u8>>,
    },
    /// Starts with `#!` but names no interpreter, or names one longer than
    /// the first [`HEAD`] bytes hold: ENOEXEC.
    Bad,
}

fn blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Reads the first line of `head` (the file's first bytes, at most
/// [`HEAD`] of them used).
pub fn parse(head: &[u8]) -> Head {
    let head = &head[..head.len().min(HEAD)];
    let Some(rest) = head.strip_prefix(b"#!") else {
        return Head::NotScript;
    };
    let (line, whole) = match rest.iter().position(|&b| b == b'\n') {
        Some(n) => (&rest[..n], true),
        // No newline in the buffer: Linux ends the line at its last byte
        // (it writes the interpreter's NUL there), so 255 bytes count.
        None if head.len() >= HEAD => (&rest[..HEAD - 3], false),
        None => (rest, true),
    };
    // A NUL ends the line too, as in Linux.
    let line = match line.iter().position(|&b| b == 0) {
        Some(n) => &line[..n],
        None => line,
    };
    let start = line.iter().position(|&b| !blank(b)).unwrap_or(line.len());
    let line = &line[start..];
    let name_len = line.iter().position(|&b| blank(b)).unwrap_or(line.len());
    if name_len == 0 {
        return Head::Bad;
    }
    let interp = &line[..name_len];
    let after = &line[name_len..];
    // An interpreter name cut by the end of the buffer is not run (it
    // could name another file); a cut argument is, as in Linux.
    if !whole && after.is_empty() {
        return Head::Bad;
    }
    let arg_start = after.iter().position(|&b| !blank(b)).unwrap_or(after.len());
    let arg = &after[arg_start..];
    let arg_end = arg.iter().rposition(|&b| !blank(b)).map_or(0, |n| n + 1);
    let arg = &arg[..arg_end];
    Head::Script {
        interp: interp.to_vec(),
        arg: (!arg.is_empty()).then(|| arg.to_vec()),
    }
}

/// The interpreter's argv: itself, its argument, the script as it was
/// named, then the script's own arguments (argv[0] is dropped).
pub fn argv(interp: &[u8], arg: Option<&[u8]>, script: &[u8], old: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(old.len() + 2);
    out.push(interp.to_vec());
    if let Some(a) = arg {
        out.push(a.to_vec());
    }
    out.push(script.to_vec());
    out.extend(old.iter().skip(1).cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(interp: &str, arg: Option<&str>) -> Head {
        Head::Script {
            interp: interp.as_bytes().to_vec(),
            arg: arg.map(|a| a.as_bytes().to_vec()),
        }
    }

    #[test]
    fn the_first_line_names_the_interpreter_and_one_argument() {
        assert_eq!(parse(b"#!/bin/sh\necho hi\n"), script("/bin/sh", None));
        assert_eq!(parse(b"#! /bin/sh -e\n"), script("/bin/sh", Some("-e")));
        assert_eq!(
            parse(b"#!/usr/bin/env  python3 -u  \t\nx"),
            script("/usr/bin/env", Some("python3 -u"))
        );
        assert_eq!(parse(b"#!/bin/sh"), script("/bin/sh", None));
        assert_eq!(parse(b"#!/bin/sh\0junk\n"), script("/bin/sh", None));
    }

    #[test]
    fn files_that_are_not_scripts_or_name_nothing() {
        assert_eq!(parse(b"\x7fELF"), Head::NotScript);
        assert_eq!(parse(b""), Head::NotScript);
        assert_eq!(parse(b"#"), Head::NotScript);
        assert_eq!(parse(b"#!\n/bin/sh\n"), Head::Bad);
        assert_eq!(parse(b"#!   \t\n"), Head::Bad);
    }

    #[test]
    fn an_interpreter_cut_by_the_buffer_is_refused_an_argument_is_not() {
        let mut long = b"#!/".to_vec();
        long.resize(HEAD + 10, b'a');
        assert_eq!(parse(&long), Head::Bad);
        let mut arg = b"#!/bin/sh ".to_vec();
        arg.resize(HEAD + 10, b'x');
        match parse(&arg) {
            Head::Script {
                interp,
                arg: Some(a),
            } => {
                assert_eq!(interp, b"/bin/sh");
                // The buffer's last byte is not the argument's.
                assert_eq!(a.len(), HEAD - 11);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_interpreter_gets_the_script_name_in_place_of_argv0() {
        let old = [b"name".to_vec(), b"a".to_vec(), b"b".to_vec()];
        let got = argv(b"/bin/sh", Some(b"-e"), b"./s.sh", &old);
        let want: Vec<Vec<u8>> = ["/bin/sh", "-e", "./s.sh", "a", "b"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        assert_eq!(got, want);
        assert_eq!(argv(b"/bin/sh", None, b"s", &[]).len(), 2);
    }
}
