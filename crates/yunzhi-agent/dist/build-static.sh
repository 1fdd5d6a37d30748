#!/usr/bin/env bash
# Static (musl) release builds of the agent for x86_64 and aarch64 hosts.
# Needs Debian's musl-tools (C compiler for ring on x86_64) and
# gcc-aarch64-linux-gnu (C compiler for ring on aarch64); the aarch64 binary
# is linked with rust-lld, which ships with the Rust toolchain, against the
# musl C runtime that ships with the rust-std of the target.
# Binaries land in ${CARGO_TARGET_DIR:-target}/<triple>/release/yunzhi-agent.
# Safe to run again: an up-to-date build costs a second. Prints each binary's
# size and `file` output, and fails if one is not a static binary for its
# architecture. `scripts/services` installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/../../.."

missing=()
command -v musl-gcc >/dev/null 2>&1 || missing+=("musl-gcc (apt-get install musl-tools)")
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 ||
    missing+=("aarch64-linux-gnu-gcc (apt-get install gcc-aarch64-linux-gnu)")
command -v file >/dev/null 2>&1 || missing+=("file (apt-get install file)")
installed_targets="$(rustup target list --installed)"
for triple in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
    grep -qx "$triple" <<<"$installed_targets" || missing+=("the Rust target $triple (rustup target add $triple)")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "build-static.sh: missing:" >&2
    printf '  %s\n' "${missing[@]}" >&2
    echo "scripts/services installs all of them when run as root." >&2
    exit 1
fi

cargo build -q --locked -p yunzhi-agent --release --target x86_64-unknown-linux-musl

CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc \
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld \
    cargo build -q --locked -p yunzhi-agent --release --target aarch64-unknown-linux-musl

target_dir="${CARGO_TARGET_DIR:-target}"
for pair in x86_64-unknown-linux-musl:x86-64 aarch64-unknown-linux-musl:aarch64; do
    triple="${pair%%:*}"
    arch="${pair#*:}"
    bin="$target_dir/$triple/release/yunzhi-agent"
    description="$(file -b "$bin")"
    printf '%s: %s bytes; %s\n' "$bin" "$(stat -c %s "$bin")" "$description"
    case "$description" in
        *"$arch"*static*linked*) ;;
        *)
            echo "build-static.sh: $bin is not a static $arch binary" >&2
            exit 1
            ;;
    esac
done
