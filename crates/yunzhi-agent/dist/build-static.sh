#!/usr/bin/env bash
# Static (musl) release builds of the agent for x86_64 and aarch64 hosts.
# Needs Debian's musl-tools (C compiler for ring on x86_64) and
# gcc-aarch64-linux-gnu (C compiler for ring on aarch64); the aarch64 binary
# is linked with rust-lld, which ships with the Rust toolchain, against the
# musl C runtime that ships with the rust-std of the target.
# Run from the workspace root; binaries land in target/<triple>/release/.
set -euo pipefail

rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl

cargo build -p yunzhi-agent --release --target x86_64-unknown-linux-musl

CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc \
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld \
    cargo build -p yunzhi-agent --release --target aarch64-unknown-linux-musl

target_dir="${CARGO_TARGET_DIR:-target}"
for triple in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
    file "$target_dir/$triple/release/yunzhi-agent" 2>/dev/null || ls -l "$target_dir/$triple/release/yunzhi-agent"
done
