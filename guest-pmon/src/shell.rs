//! The shell that `system()`, `popen()` and `sh -c` users run: /bin/sh.
//! On Debian it is dash, dynamically linked, which Lego cannot run; a
//! process that runs /bin/sh (or /usr/bin/sh) when it is dynamic gets the
//! first static shell found on the host instead: busybox-static's or
//! bash-static. argv[0] stays as given ("sh"), so busybox acts as its sh
//! and bash as a POSIX shell.

/// The names programs run the system shell by.
pub const SYSTEM_SHELLS: [&[u8]; 2] = [b"/bin/sh", b"/usr/bin/sh"];

/// Static shells that stand in for a dynamic /bin/sh, in order.
pub const STAND_INS: [&[u8]; 3] = [b"/bin/busybox", b"/usr/bin/busybox", b"/bin/bash-static"];

/// Whether `path` (absolute, normalized) is the system shell's name.
pub fn is_system_shell(path: &[u8]) -> bool {
    SYSTEM_SHELLS.contains(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_system_shell_has_a_stand_in() {
        assert!(is_system_shell(b"/bin/sh"));
        assert!(is_system_shell(b"/usr/bin/sh"));
        assert!(!is_system_shell(b"/bin/bash"));
        assert!(!is_system_shell(b"/tmp/bin/sh"));
    }
}
