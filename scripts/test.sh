#!/usr/bin/env bash
# The whole test suite, from a fresh clone: builds the workspace, installs the
# real client packages (PyPI XenAPI in a venv, npm xen-api), and runs the Rust,
# Python and Node tests. Everything it needs is installed here.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export XAPID_BIN="$ROOT/target/debug/xapid"

step() { printf '\n==> %s\n' "$*"; }

step "cargo build"
cargo build --workspace --bins

step "cargo test"
cargo test --workspace

step "Python clients (PyPI XenAPI)"
VENV="$ROOT/.venv-test"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q -r tests/python/requirements.txt
"$VENV/bin/python" -m pytest -q tests/python

step "Node clients (npm xen-api)"
(cd tests/node && npm ci --no-audit --no-fund --loglevel=error && node --test --test-concurrency=1)

step "all tests passed"
