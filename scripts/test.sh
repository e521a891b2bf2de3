#!/usr/bin/env bash
# The whole test suite, from a fresh clone: builds the workspace, installs the
# real client packages (PyPI XenAPI in a venv, npm xen-api), and runs the Rust,
# Python, Node and browser tests. Everything it needs is installed here.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export XAPID_BIN="$ROOT/target/debug/xapid"

step() { printf '\n==> %s\n' "$*"; }

# A clean clone under CI builds once: incremental state would only take disk
# (GBs of it; the guests' disk copies need room too). Say how much there is.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi
df -h . /tmp | sed 's/^/disk: /'

step "web UI (npm ci, npm run build: web/dist is embedded by crates/webui)"
(cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build)

step "cargo fmt, clippy"
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings

step "cargo build"
cargo build --workspace --bins

step "QEMU, OVMF, qemu-img, iproute2, nftables, ethtool, ping and the test guest (backend/tests/qemu.rs and net.rs; qcow2 and VHD tests)"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
# backend/tests/net.rs runs as root (through sudo -n when not root), each
# test in a network namespace of its own: ip, nft, ethtool and unshare.
# ovmf: UEFI guests (tests/python/test_qemu_io.py).
if ! command -v qemu-system-x86_64 >/dev/null || ! command -v nft >/dev/null || ! command -v ethtool >/dev/null \
    || ! command -v ip >/dev/null || ! command -v ping >/dev/null || [ ! -f /usr/share/ovmf/OVMF.fd ]; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        qemu-system-x86 iproute2 nftables ethtool iputils-ping ovmf >/dev/null
fi
# bookworm's qemu-system-x86 removes a newer qemu-utils (backports) it conflicts
# with: put qemu-img back (the ext SR's qcow2 support needs it).
if ! command -v qemu-img >/dev/null; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-utils >/dev/null
fi
# The qcow2/VHD tests fail under CI without qemu-img: say why here first.
command -v qemu-img >/dev/null || { echo "need qemu-img (apt-get install qemu-utils)" >&2; exit 1; }
qemu-system-x86_64 --version | sed -n 1p
qemu-img --version | sed -n 1p
nft --version
export XAPI_TEST_GUEST_DIR="${XAPI_TEST_GUEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/xapi-rs/guest}"
scripts/build-test-guest.sh

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

step "Debian package (build, contents, install, systemd-analyze verify)"
scripts/build-deb.sh --check

step "Prometheus (for tests/python/test_prometheus.py)"
if ! command -v prometheus >/dev/null; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
prometheus --version 2>&1 | sed -n 1p

step "rrdtool (for tests/python/test_rrd_sr.py: restoring our RRD dumps)"
if ! command -v rrdtool >/dev/null; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rrdtool >/dev/null
fi
rrdtool 2>&1 | sed -n 1p

step "libnbd's nbdinfo and nbdcopy (for tests/python/test_nbd.py)"
if ! command -v nbdcopy >/dev/null || ! command -v nbdinfo >/dev/null; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libnbd-bin >/dev/null
fi
nbdcopy --version | sed -n 1p

step "OpenLDAP (for tests/python/test_rbac.py: slapd, slapadd, ldapdelete, ldapmodify)"
if ! command -v slapd >/dev/null || ! command -v ldapmodify >/dev/null; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slapd ldap-utils >/dev/null
fi
slapd -VV 2>&1 | sed -n 1p

step "Python clients (PyPI XenAPI, Ansible)"
VENV="$ROOT/.venv-test"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q -r tests/python/requirements.txt
# npm xen-api and XO's libraries, for the Python suites that check what Xen Orchestra sees
# (test_qemu_net.py: guest addresses; test_qemu_io.py: a delta backup of a real guest).
(cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
df -h . /tmp | sed 's/^/disk: /'
"$VENV/bin/python" -m pytest -q -rs --durations=12 -p no:cacheprovider tests/python

step "Node clients (npm xen-api)"
(cd tests/node && node --test --test-concurrency=1)

step "Web UI in a browser (Debian's chromium, playwright-core, axe-core)"
if ! command -v chromium >/dev/null; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
chromium --version 2>&1 | sed -n 1p
# Screenshots of each screen are left in tests/web/artifacts/.
(cd tests/web && npm ci --no-audit --no-fund --loglevel=error && node --test --test-concurrency=1)

step "all tests passed"
