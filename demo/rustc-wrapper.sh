#!/usr/bin/env bash
# Cargo's rustc wrapper for this workspace's members (build.rustc-workspace-
# wrapper in .cargo/config.toml), called as: rustc-wrapper.sh RUSTC ARGS...
#
# bash, not sh: Debian's sh (dash) drops environment variables whose names
# are not shell names, such as CARGO_BIN_EXE_lego-vmm, which the integration
# tests read with env!(); bash passes them on.
#
# It links the lego-demo binary statically: Lego runs only static programs,
# and a plain `cargo build` must make one. Everything else runs unchanged.
# `-C target-feature=+crt-static` cannot simply go in the config's rustflags:
# without --target, cargo passes those to proc-macros and build scripts too,
# and rustc refuses to build a proc-macro (clap's, thiserror's, zerocopy's)
# with crt-static ("cannot produce proc-macro ... as the target
# x86_64-unknown-linux-gnu does not support these crate types").
#
# With crt-static alone rustc makes a static-pie; the static relocation
# model makes it a plain static executable instead, loaded where it was
# linked, as `gcc -static` makes (ldd: "not a dynamic executable").
#
# Cargo sets CARGO_PKG_NAME and CARGO_BIN_NAME for the rustc it runs; the
# flags go only to the binary itself, not to its unit tests (--test).
if [ "$CARGO_PKG_NAME" = lego-demo ] && [ "$CARGO_BIN_NAME" = lego-demo ]; then
    case " $* " in
    *" --crate-type bin "*)
        exec "$@" -C target-feature=+crt-static -C relocation-model=static
        ;;
    esac
fi
exec "$@"
