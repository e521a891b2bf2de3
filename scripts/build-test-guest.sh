#!/usr/bin/env bash
# Builds the small Linux guest the QEMU backend's tests boot: Debian's kernel
# and an initramfs holding busybox, the kernel modules a QEMU guest needs and
# qemu-guest-agent. The result (vmlinuz, initrd.img) goes to
#   ${XAPI_TEST_GUEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/xapi-rs/guest}
# and is rebuilt only when the Debian packages' versions or this script change.
#
# Nothing is installed into the host's kernel: the kernel, busybox-static and
# qemu-guest-agent packages are downloaded and unpacked in a temporary
# directory. Only cpio and qemu-ga's shared libraries are installed on the
# host when missing (the libraries are copied into the initramfs from there;
# as root, or through sudo).
#
# Boot it with, e.g.:
#   qemu-system-x86_64 -accel tcg -m 256 -nographic -kernel vmlinuz \
#     -initrd initrd.img -append 'console=ttyS0 no_timer_check' \
#     -device virtio-serial -chardev socket,path=qga.sock,server=on,wait=off,id=qga0 \
#     -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0 -device pvpanic
# The serial console prints "xapi-rs test guest up" once init is reached. The
# Debian kernel needs at least 96 MiB of RAM; no_timer_check avoids a rare
# "IO-APIC + timer doesn't work" panic when many TCG guests boot at once.
# Kernel command line extras: xapi.ip=ADDR/PREFIX and xapi.gw=ADDR give eth0
# a static address instead of DHCP.
set -euo pipefail

OUT=${XAPI_TEST_GUEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/xapi-rs/guest}
BANNER="xapi-rs test guest up"
# Modules loaded at boot (their dependencies follow from modules.dep).
MODULES="virtio_pci virtio_blk virtio_net virtio_console virtio_scsi virtio_balloon
virtio-rng ata_piix ahci sd_mod sr_mod isofs pvpanic-mmio pvpanic-pci e1000
button evdev qemu_fw_cfg"
# In the initramfs but not loaded at boot: what tests/python/test_qemu_netlab.py
# loads when it runs xapid itself inside this guest, for a kernel with 802.1Q and
# bonding when the machine's own has neither.
NETLAB_MODULES="8021q bonding bridge veth tun"

log() { printf 'build-test-guest: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

UPDATED=0
apt_update() {
    if [ "$UPDATED" = 0 ]; then
        log "apt-get update"
        as_root apt-get update -qq
        UPDATED=1
    fi
}

# "package version" lines for the candidates of the packages named (one
# apt-cache run: each costs seconds on a busy machine).
candidates() {
    apt-cache policy "$@" 2>/dev/null | awk '
        /^[^ ]/ { pkg = $1; sub(/:$/, "", pkg) }
        /^  Candidate:/ { if ($2 != "(none)") print pkg, $2 }'
}

# The versioned kernel package linux-image-amd64 currently points at.
kernel_package() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}

inputs() {
    local kpkg
    kpkg=$(kernel_package)
    [ -n "$kpkg" ] || return 1
    KPKG=$kpkg
    local c
    c=$(candidates "$KPKG" busybox-static qemu-guest-agent iperf3 libiperf0)
    KVER=$(awk -v p="$KPKG" '$1 == p { print $2 }' <<<"$c")
    BBVER=$(awk '$1 == "busybox-static" { print $2 }' <<<"$c")
    QGAVER=$(awk '$1 == "qemu-guest-agent" { print $2 }' <<<"$c")
    IPVER=$(awk '$1 == "iperf3" { print $2 }' <<<"$c")
    LIPVER=$(awk '$1 == "libiperf0" { print $2 }' <<<"$c")
    [ -n "$KVER" ] && [ -n "$BBVER" ] && [ -n "$QGAVER" ] && [ -n "$IPVER" ] && [ -n "$LIPVER" ] || return 1
    STAMP="$KPKG=$KVER busybox-static=$BBVER qemu-guest-agent=$QGAVER iperf3=$IPVER script=$(sha256sum "$0" | cut -c1-16)"
}

if ! inputs; then
    apt_update
    inputs || die "apt knows no linux-image-amd64, busybox-static, qemu-guest-agent or iperf3"
fi

if [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.img" ] && [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$STAMP" ]; then
    log "up to date in $OUT ($STAMP)"
    exit 0
fi
log "building in $OUT ($STAMP)"
START=$(date +%s)

install_missing() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        apt_update
        log "installing ${missing[*]}"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

install_missing cpio
command -v zstd >/dev/null || command -v gzip >/dev/null || install_missing gzip

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK"

# apt-get download names files after the package; fetch each into its own
# directory so the names do not matter. A stale package list gives 404s: update
# once and retry.
fetch() {
    local dir="$WORK/deb/$1"
    mkdir -p "$dir"
    if ! (cd "$dir" && apt-get download -q "$1=$2" >/dev/null 2>&1); then
        apt_update
        (cd "$dir" && apt-get download -q "$1=$2" >/dev/null) || die "cannot download $1=$2"
    fi
    mkdir -p "$WORK/x/$1"
    dpkg-deb -x "$dir"/*.deb "$WORK/x/$1"
}
fetch "$KPKG" "$KVER"
fetch busybox-static "$BBVER"
fetch qemu-guest-agent "$QGAVER"
fetch iperf3 "$IPVER"
fetch libiperf0 "$LIPVER"

KX="$WORK/x/$KPKG"
BB="$WORK/x/busybox-static/bin/busybox"
QGA="$WORK/x/qemu-guest-agent/usr/sbin/qemu-ga"
UNAME=$(ls "$KX/lib/modules")
[ -n "$UNAME" ] && [ -f "$KX/boot/vmlinuz-$UNAME" ] || die "no kernel in $KPKG"
[ -x "$BB" ] || die "no busybox in busybox-static"
[ -x "$QGA" ] || die "no qemu-ga in qemu-guest-agent"
IPERF="$WORK/x/iperf3/usr/bin/iperf3"
LIPDIR=$(dirname "$(find "$WORK/x/libiperf0" -name 'libiperf.so.0*' | head -n1)")
[ -x "$IPERF" ] && [ -d "$LIPDIR" ] || die "no iperf3 in iperf3/libiperf0"

# qemu-ga's libraries come from the host: install its dependencies if any is
# missing (Depends minus version constraints and alternatives).
if ldd "$QGA" | grep -q 'not found'; then
    mapfile -t deps < <(dpkg-deb -f "$WORK"/deb/qemu-guest-agent/*.deb Depends |
        tr ',' '\n' | sed -e 's/|.*//' -e 's/(.*)//' -e 's/[[:space:]]//g' | grep -v '^$')
    install_missing "${deps[@]}"
    ! ldd "$QGA" | grep 'not found' || die "qemu-ga still misses libraries"
fi

R="$WORK/root"
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc/acpi/PWRF,proc,sys,dev,run,tmp,root,var/log,lib/modules}
ln -s ../run "$R/var/run"

# busybox and its applet links.
cp "$BB" "$R/bin/busybox"
"$BB" --list-full | while read -r applet; do
    [ -e "$R/$applet" ] || ln -s /bin/busybox "$R/$applet"
done

# Kernel modules: busybox's depmod writes the modules.dep Debian's package
# leaves to its postinst; then the closure of $MODULES is copied and indexed
# again inside the initramfs.
"$BB" depmod -b "$KX" "$UNAME"
MD="$KX/lib/modules/$UNAME"
declare -A want=()
for m in $MODULES $NETLAB_MODULES; do
    pat=$(printf '%s' "$m" | sed 's/[-_]/[-_]/g')
    line=$(grep -E "/$pat\.ko(\.[a-z]+)?:" "$MD/modules.dep" || true)
    [ -n "$line" ] || die "module $m not in $KPKG"
    for f in ${line/:/ }; do want[$f]=1; done
done
for f in "${!want[@]}"; do
    mkdir -p "$R/lib/modules/$UNAME/$(dirname "$f")"
    cp "$MD/$f" "$R/lib/modules/$UNAME/$f"
done
cp "$MD/modules.builtin" "$MD/modules.order" "$R/lib/modules/$UNAME/"
"$BB" depmod -b "$R" "$UNAME"
echo $MODULES | tr ' ' '\n' >"$R/etc/modules"

# qemu-ga and iperf3 (the network benchmark's), their shared libraries and
# the dynamic loader, at the paths ldd shows; libiperf comes from its package.
if LD_LIBRARY_PATH=$LIPDIR ldd "$IPERF" | grep -q 'not found'; then
    mapfile -t deps < <(dpkg-deb -f "$WORK"/deb/libiperf0/*.deb Depends |
        tr ',' '\n' | sed -e 's/|.*//' -e 's/(.*)//' -e 's/[[:space:]]//g' | grep -v '^$')
    install_missing "${deps[@]}"
    ! LD_LIBRARY_PATH=$LIPDIR ldd "$IPERF" | grep 'not found' || die "iperf3 still misses libraries"
fi
cp "$QGA" "$R/usr/sbin/qemu-ga"
cp "$IPERF" "$R/usr/bin/iperf3"
{ ldd "$QGA"; LD_LIBRARY_PATH=$LIPDIR ldd "$IPERF"; } |
    awk '/=>/ { print $3 } !/=>/ && $1 ~ /^\// { print $1 }' | sort -u | while read -r lib; do
    [ -n "$lib" ] || continue
    case "$lib" in
        "$LIPDIR"/*) dest="/usr/lib/x86_64-linux-gnu/${lib##*/}" ;;
        *) dest=$lib ;;
    esac
    mkdir -p "$R/$(dirname "$dest")"
    cp -L "$lib" "$R/$dest"
done

KRELEASE=${KVER%%-*}
cat >"$R/etc/os-release" <<EOF
NAME="xapi-rs test guest"
ID=xapi-rs-test-guest
ID_LIKE=debian
VERSION_ID="1"
VERSION="1 (busybox ${BBVER#*:}, qemu-ga ${QGAVER#*:})"
PRETTY_NAME="xapi-rs test guest 1 (Linux $KRELEASE)"
EOF
echo "root:x:0:0:root:/root:/bin/sh" >"$R/etc/passwd"
echo "root:x:0:" >"$R/etc/group"
echo "xapi-test-guest" >"$R/etc/hostname"

cat >"$R/init" <<EOF
#!/bin/sh
# PID 1 until it hands over to busybox init: mounts, modules, network.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /dev/virtio-ports
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
hostname -F /etc/hostname
for m in \$(cat /etc/modules); do
    modprobe "\$m" || echo "xapi-rs: module \$m not loaded" >/dev/console
done
ip link set lo up
ADDR=; GW=
for arg in \$(cat /proc/cmdline); do
    case "\$arg" in
        xapi.ip=*) ADDR=\${arg#xapi.ip=} ;;
        xapi.gw=*) GW=\${arg#xapi.gw=} ;;
    esac
done
for dev in /sys/class/net/*; do
    i=\${dev##*/}
    [ "\$i" = lo ] && continue
    ip link set "\$i" up
    if [ -n "\$ADDR" ] && [ "\$i" = eth0 ]; then
        ip addr add "\$ADDR" dev eth0
        [ -n "\$GW" ] && ip route add default via "\$GW"
    else
        # A lease usually comes at once from QEMU's user network; without one
        # udhcpc goes on trying in the background.
        udhcpc -i "\$i" -s /etc/udhcpc.script -t 3 -T 1 -b -S >/dev/null 2>&1
    fi
done
echo "$BANNER (\$(uname -r))" >/dev/console
# A hook for an initramfs appended to this one (test_qemu_netlab.py's).
[ -x /etc/rc.local ] && /etc/rc.local >/dev/console 2>&1
exec /sbin/init
EOF

cat >"$R/etc/udhcpc.script" <<'EOF'
#!/bin/sh
# udhcpc's hook: apply the lease to the interface.
case "$1" in
    deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
    bound|renew)
        ip addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
        : >/etc/resolv.conf
        for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done ;;
esac
exit 0
EOF

cat >"$R/etc/inittab" <<'EOF'
::respawn:/usr/sbin/qga-run
::respawn:/sbin/acpid -f -c /etc/acpi -l /dev/null
ttyS0::respawn:/sbin/console-shell
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/sh -c 'echo "xapi-rs test guest going down" >/dev/console'
EOF

# The agent's port may appear a moment after virtio_console loads (the host
# announces it): wait for it, give it its udev-style name, then run the agent.
cat >"$R/usr/sbin/qga-run" <<'EOF'
#!/bin/sh
PORT=/dev/virtio-ports/org.qemu.guest_agent.0
while :; do
    for n in /sys/class/virtio-ports/*/name; do
        [ -r "$n" ] || continue
        name=$(cat "$n")
        d=${n%/name}
        [ -n "$name" ] && ln -sf "/dev/${d##*/}" "/dev/virtio-ports/$name"
    done
    [ -e "$PORT" ] && exec /usr/sbin/qemu-ga -m virtio-serial -p "$PORT" -t /run
    sleep 1
done
EOF

# qemu-ga runs /sbin/shutdown -h -P|-H|-r +0 "message"; busybox has no
# shutdown applet, so map the flags onto poweroff, halt and reboot.
cat >"$R/sbin/shutdown" <<'EOF'
#!/bin/sh
action=poweroff
for a in "$@"; do
    case "$a" in
        -r) action=reboot ;;
        -H) action=halt ;;
    esac
done
exec "/sbin/$action"
EOF

# ACPI power button (busybox acpid's default table maps it to PWRF/00000080).
cat >"$R/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
exec /sbin/poweroff
EOF

cat >"$R/sbin/console-shell" <<'EOF'
#!/bin/sh
echo
echo "xapi-test-guest login: root (automatic, no password) on $(tty)"
cd /root
exec /bin/sh -l
EOF

chmod 755 "$R/init" "$R/etc/udhcpc.script" "$R/usr/sbin/qga-run" "$R/sbin/shutdown" \
    "$R/etc/acpi/PWRF/00000080" "$R/sbin/console-shell"

mkdir -p "$OUT"
NEW="$OUT/.new"
rm -rf "$NEW"
mkdir -p "$NEW"
if command -v zstd >/dev/null; then
    COMPRESS=(zstd -q -10 -T0)
else
    COMPRESS=(gzip -9)
fi
(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | "${COMPRESS[@]}" >"$NEW/initrd.img"
cp "$KX/boot/vmlinuz-$UNAME" "$NEW/vmlinuz"
# Replace the files the tests read only once both are complete; the stamp last.
rm -f "$OUT/stamp"
mv "$NEW/vmlinuz" "$OUT/vmlinuz"
mv "$NEW/initrd.img" "$OUT/initrd.img"
rmdir "$NEW"
echo "$STAMP" >"$OUT/stamp"
log "done in $(($(date +%s) - START)) s: $OUT/vmlinuz $(du -h "$OUT/vmlinuz" | cut -f1), initrd.img $(du -h "$OUT/initrd.img" | cut -f1)"
