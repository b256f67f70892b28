#!/usr/bin/env bash
# Set up everything syscalls-async needs on Debian 12, then run one job.
#
#   ./bootstrap.sh demo    set up, build the guest image, run the demo
#   ./bootstrap.sh test    set up, then run the whole test suite (nox -s tests)
#   ./bootstrap.sh         set up only
#
# Idempotent: installs only what is missing.  Needs root (or sudo) the first
# time, for apt-get; the guest kernel is fetched into ~/.cache, never into /boot.
set -euo pipefail
cd "$(dirname "$0")"

packages=(qemu-system-x86 busybox-static gcc make libc6-dev cpio bc python3 python3-venv)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "==> installing Debian packages: ${missing[*]}"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "run as root, or install: ${missing[*]}" >&2; exit 1; }
        sudo=sudo
    fi
    # exit 100 when one index of many could not be fetched: the install decides
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get -q update || echo "==> apt-get update reported errors; installing anyway"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import syscalls_async, nox, pytest' 2>/dev/null \
        || [ pyproject.toml -nt .venv/.installed ]; then
    echo "==> installing syscalls-async and its tools into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[dev]'
    touch .venv/.installed
fi

.venv/bin/syscalls-async setup
# the test suite boots a guest of every architecture (tests/arch): their host
# packages (QEMU, cross compilers) now; their images are built at first boot
.venv/bin/syscalls-async setup --arch all --tools-only

case "${1:-}" in
    "") ;;
    demo) exec .venv/bin/syscalls-async demo ;;
    test) exec .venv/bin/nox -s tests ;;
    *) echo "usage: $0 [demo|test]" >&2; exit 2 ;;
esac
