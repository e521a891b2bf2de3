#!/usr/bin/env bash
# Build the Debian package target/debian/xapi-rs_<version>-1_<arch>.deb:
# xapid (/usr/sbin), xe and its bash completion, the xapid systemd unit and
# its settings file /etc/xapi-rs/xapid.conf. Installs cargo-deb when missing.
#
#   scripts/build-deb.sh           release build, then the package
#   scripts/build-deb.sh --check   package the debug binaries already built
#                                  (scripts/test.sh), check the contents,
#                                  install it, verify the unit with
#                                  systemd-analyze, and purge it again
set -euo pipefail
cd "$(dirname "$0")/.."
CHECK=0
[ "${1:-}" = "--check" ] && CHECK=1
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! cargo deb --version >/dev/null 2>&1; then
    cargo install cargo-deb --locked --no-default-features --features gzip
fi
if [ "$CHECK" = 0 ]; then
    cargo build --release -p xapid -p xe
    cargo deb -p xapid --no-build
    ls target/debian/*.deb
    exit 0
fi

# The check packages the debug build the tests use (cargo-deb warns that it
# is meant for release profiles; the contents are the same files).
rm -f target/debian/xapi-rs_*.deb
cargo deb -p xapid --no-build --profile dev --fast 2>&1 | grep -v "dev profile is not supported\|To enable debug symbols" || true
deb=$(ls target/debian/xapi-rs_*.deb)
contents=$(dpkg -c "$deb")
for f in ./usr/sbin/xapid ./usr/bin/xe ./usr/share/bash-completion/completions/xe \
    ./etc/xapi-rs/xapid.conf ./usr/lib/systemd/system/xapid.service; do
    grep -q " $f\$" <<<"$contents" || { echo "package lacks $f" >&2; exit 1; }
done
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/xapi-rs/xapid.conf ||
    { echo "xapid.conf is not a conffile" >&2; exit 1; }
command -v systemd-analyze >/dev/null || { echo "need systemd-analyze (apt-get install systemd)" >&2; exit 1; }
if dpkg -s xapi-rs >/dev/null 2>&1; then
    echo "xapi-rs is installed on this machine: not touching it; skipping the install check" >&2
    exit 1
fi
as_root dpkg -i "$deb" >/dev/null
trap 'as_root dpkg --purge xapi-rs >/dev/null' EXIT
systemd-analyze verify /lib/systemd/system/xapid.service
getent passwd xapi-qemu >/dev/null || { echo "the package made no xapi-qemu user" >&2; exit 1; }
/usr/sbin/xapid --version
echo "package ok: $deb"
