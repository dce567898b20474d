#!/usr/bin/env bash
# Installs what Vestibule needs on Debian (12) with rustup — only what is
# missing, so running it again costs a second.
#
#   examples/setup.sh           the Rust toolchain of rust-toolchain.toml with
#                               its wasm32-wasip2 target, and a C compiler
#                               (ring and the bundled SQLite compile C; cc links):
#                               enough to build and run the host
#   examples/setup.sh --tests   also what the test suite starts for real:
#                               mosquitto (the MQTT broker), procps (kill)
#
# Debian packages are installed with apt-get as root, or with sudo when it
# needs no password. What cannot be installed is named, one line each, and
# the script exits 1.
set -uo pipefail
cd "$(dirname "$0")/.."

tests=false
case "${1:-}" in
    --tests) tests=true ;;
    "") ;;
    *) echo "usage: examples/setup.sh [--tests]" >&2; exit 2 ;;
esac

missing=()

# Rust: the toolchain rust-toolchain.toml names, with the wasm32-wasip2 target
# (rustup does not add a target to a toolchain that is already installed).
if command -v rustup >/dev/null 2>&1; then
    rustup toolchain install --no-self-update >/dev/null 2>&1 \
        || missing+=("the Rust toolchain of rust-toolchain.toml: rustup toolchain install failed")
    rustup target add wasm32-wasip2 >/dev/null 2>&1 \
        || missing+=("the wasm32-wasip2 target: rustup target add wasm32-wasip2 failed")
else
    missing+=("rustup: install it from https://rustup.rs")
fi

# Debian packages, by what shows they are there.
packages=()
command -v cc >/dev/null 2>&1 || packages+=(gcc libc6-dev)
if $tests; then
    [ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null 2>&1 || packages+=(mosquitto)
    [ -x /bin/kill ] || [ -x /usr/bin/kill ] || packages+=(procps)
fi

if ((${#packages[@]})); then
    if [ "$(id -u)" -eq 0 ]; then
        apt=(apt-get)
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        apt=(sudo apt-get)
    else
        apt=()
    fi
    if ((${#apt[@]})); then
        echo "Installing ${packages[*]}…" >&2
        export DEBIAN_FRONTEND=noninteractive
        "${apt[@]}" update -qq >/dev/null 2>&1
        "${apt[@]}" install -y -qq --no-install-recommends "${packages[@]}" >/dev/null 2>&1 \
            || missing+=("Debian packages ${packages[*]}: apt-get install failed")
    else
        for package in "${packages[@]}"; do
            missing+=("$package: not installed, and this is not root (run: sudo apt-get install $package)")
        done
    fi
fi

if ((${#missing[@]})); then
    for line in "${missing[@]}"; do
        echo "missing: $line" >&2
    done
    exit 1
fi
