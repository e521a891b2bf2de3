#!/usr/bin/env bash
# The whole test suite, from a fresh clone: builds the workspace, installs the
# real client packages (PyPI XenAPI in a venv, npm xen-api), and runs the Rust,
# Python and Node tests. Everything it needs is installed here.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export XAPID_BIN="$ROOT/target/debug/xapid"

step() { printf '\n==> %s\n' "$*"; }

step "tools the tests need (qemu-img for qcow2 and VHD)"
# The qcow2/VHD tests skip without qemu-img on a developer's machine but
# fail under CI; install it here so a fresh machine runs them.
if ! command -v qemu-img >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    if command -v apt-get >/dev/null 2>&1 && { [ -z "$SUDO" ] || command -v sudo >/dev/null 2>&1; }; then
        $SUDO apt-get update -qq &&
            $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-utils >/dev/null ||
            echo "installing qemu-utils failed" >&2
    fi
    if ! command -v qemu-img >/dev/null 2>&1; then
        echo "need qemu-img (Debian/Ubuntu: apt-get install qemu-utils)" >&2; exit 1
    fi
fi

step "cargo build"
cargo build --workspace --bins

step "cargo test"
cargo test --workspace

step "SDK blocking facade"
cargo test -p xenapi --features blocking --test blocking
cargo build -p xenapi --features blocking --examples

step "xe CLI (shell)"
tests/cli/run.sh

step "Ansible (Python >= 3.12 venv)"
PY312=""
for p in python3.13 python3.12 "$HOME"/.pyenv/versions/3.13*/bin/python3 "$HOME"/.pyenv/versions/3.12*/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
        PY312=$(command -v "$p"); break
    fi
done
if [ -z "$PY312" ]; then
    echo "need Python >= 3.12 for Ansible (not found)" >&2; exit 1
fi
AVENV="$ROOT/.venv-ansible"
if [ ! -x "$AVENV/bin/ansible-playbook" ]; then
    "$PY312" -m venv "$AVENV"
fi
"$AVENV/bin/pip" install -q -r tests/ansible/requirements.txt
export ANSIBLE_PLAYBOOK="$AVENV/bin/ansible-playbook" ANSIBLE_REQUIRED=1

step "Python clients (PyPI XenAPI, Ansible)"
VENV="$ROOT/.venv-test"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q -r tests/python/requirements.txt
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/python

step "Node clients (npm xen-api)"
(cd tests/node && npm ci --no-audit --no-fund --loglevel=error && node --test --test-concurrency=1)

step "all tests passed"
