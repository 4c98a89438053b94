#!/usr/bin/env bash
# The whole test suite: what the README's test command and CI run.
#
# Checks formatting and lints (clippy with warnings as errors), builds once with optimised
# dependencies (see the workspace profiles), then runs every unit and integration test. Guests of our own are built from tests/guests with the
# host gcc; Debian fixtures (stock kernel, busybox) are fetched into the cache by
# tests/fixtures/fetch-linux.sh when a test needs them. Tests that need what this host
# cannot do (e.g. hardware KVM) print why they skip.
set -euo pipefail
cd "$(dirname "$0")/.."

# A target dir outside the clone survives fresh CI clones on the same machine.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${HOME:-/tmp}/.cache/rx86-target}"
export RX86_CACHE="${RX86_CACHE:-${HOME:-/tmp}/.cache/rx86-fixtures}"
mkdir -p "$CARGO_TARGET_DIR" "$RX86_CACHE"

need() { command -v "$1" >/dev/null 2>&1; }
missing=()
need gcc || missing+=(gcc)
need ld || missing+=(binutils)
need cpio || missing+=(cpio)
need gdb || missing+=(gdb)
# The reference emulator, and the nested KVM host of tests/tests/nested_kvm.rs.
need qemu-system-x86_64 || missing+=(qemu-system-x86)
# qemu-img checks the qcow2 images rx86 writes (tests/tests/qcow2_rw.rs, block::qcow2).
need qemu-img || missing+=(qemu-utils)
# An X server for the window test of tests/tests/display.rs.
need xvfb-run || missing+=(xvfb)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing test prerequisites: ${missing[*]}"
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "cannot install ${missing[*]}: not root" >&2
        exit 1
    fi
fi

# Style and lints first: they fail fast and cost little beside the tests.
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --all-targets --locked
cargo test --workspace --locked -- --nocapture 2>&1 | tee "$CARGO_TARGET_DIR/test-output.txt"
