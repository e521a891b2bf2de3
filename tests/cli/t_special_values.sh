# The special values and defaults of the real xe's cli_operations.
set -u
fails() {  # fails "<expected text>" xe args...: the command fails printing the text
    local want=$1; shift
    local out rc
    out=$(xe "$@" 2>&1) && rc=0 || rc=$?
    [ $rc -ne 0 ] && echo "$out" | grep -qF -- "$want" || { echo "expected failure '$want' from xe $*, got ($rc): $out"; exit 1; }
}
check() {  # check <actual> <expected> <what>
    [ "$1" = "$2" ] || { echo "$3: got '$1', want '$2'"; exit 1; }
}
set -e
tpl=$(xe template-list name-label="Debian Bookworm 12" --minimal)
sr=$(xe sr-list type=ext --minimal)

# vm-install: template selection, description, SR checks
fails "Template must be specified by parameter" vm-install new-name-label=x
fails "No templates matched" vm-install template-name-label=no-such new-name-label=x
fails "Cannot find template" vm-install template-uuid=00000000-0000-0000-0000-000000000000 new-name-label=x
fails "No SR with that name-label found" vm-install template="$tpl" new-name-label=x sr-name-label=nope
vm=$(xe vm-install template-name="Debian Bookworm 12" new-name-label=sv-vm)
check "$(xe vm-param-get uuid=$vm param-name=name-description)" "Installed via xe CLI" "vm-install description"
fails "Can only install from templates" vm-install template="$vm" new-name-label=x
check "$(xe vm-list name-label=x --minimal)" "" "no half-made VM"

# sizes with units, as Record_util.bytes_of_string
vdi=$(xe vdi-create sr-uuid=$sr name-label=sv-vdi virtual-size=1GiB)
check "$(xe vdi-param-get uuid=$vdi param-name=virtual-size)" 1073741824 "virtual-size=1GiB"
xe vdi-resize uuid=$vdi disk-size=2gb
check "$(xe vdi-param-get uuid=$vdi param-name=virtual-size)" 2147483648 "disk-size=2gb (xapi's gb is GiB)"
fails "expecting an integer (possibly with suffix KiB, MiB, GiB, TiB), got 'lots'" \
    vdi-create sr-uuid=$sr name-label=bad virtual-size=lots
fails "Unknown vdi type: bogus" vdi-create sr-uuid=$sr name-label=bad virtual-size=4MiB type=bogus
fails "Expected 'true','t','yes','y','1','false','f','no','n','0' got maybe" \
    vdi-create sr-uuid=$sr name-label=bad virtual-size=4MiB sharable=maybe
v2=$(xe vdi-create sr-uuid=$sr name-label=sv-shared virtual-size=4MiB sharable=Y)
check "$(xe vdi-param-get uuid=$v2 param-name=sharable)" true "sharable=Y"
xe vdi-destroy uuid=$v2
xe vm-param-set uuid=$vm memory-static-max=4GiB
check "$(xe vm-param-get uuid=$vm param-name=memory-static-max)" 4294967296 "memory-static-max=4GiB"
xe vm-param-set uuid=$vm memory-static-min=128MiB
check "$(xe vm-param-get uuid=$vm param-name=memory-static-min)" 134217728 "memory-static-min=128MiB"
xe vm-memory-limits-set uuid=$vm static-min=256MiB static-max=3GiB dynamic-min=1gib dynamic-max=2G
check "$(xe vm-param-get uuid=$vm param-name=memory-static-max)" 3221225472 "limits static-max"
check "$(xe vm-param-get uuid=$vm param-name=memory-dynamic-min)" 1073741824 "limits dynamic-min"
xe vm-memory-static-range-set uuid=$vm min=128MiB max=4GiB
check "$(xe vm-param-get uuid=$vm param-name=memory-static-min)" 134217728 "static range min"
xe vm-memory-dynamic-range-set uuid=$vm min=512MiB max=1GiB
check "$(xe vm-param-get uuid=$vm param-name=memory-dynamic-max)" 1073741824 "dynamic range max"
xe vm-memory-target-set uuid=$vm target=768MiB
check "$(xe vm-param-get uuid=$vm param-name=memory-dynamic-min)" 805306368 "target min"
check "$(xe vm-param-get uuid=$vm param-name=memory-dynamic-max)" 805306368 "target max"

# vbd-create: autodetect, xe's own spellings and checks
fails "Empty VBDs can only be made for type=CD" vbd-create vm-uuid=$vm device=autodetect
fails "Unknown mode: rx" vbd-create vm-uuid=$vm vdi-uuid=$vdi device=autodetect mode=rx
fails "Unknown type: tape" vbd-create vm-uuid=$vm vdi-uuid=$vdi device=autodetect type=tape
vbd=$(xe vbd-create vm-uuid=$vm vdi-uuid=$vdi device=autodetect mode=rw type=disk)
case "$(xe vbd-param-get uuid=$vbd param-name=userdevice)" in [0-9]*) ;; *) echo "autodetect gave no slot"; exit 1;; esac
check "$(xe vbd-param-get uuid=$vbd param-name=mode)" RW "mode=rw"

# vm-cd-insert / vm-cd-eject
mkdir -p "$PWD/isos"
head -c 4096 /dev/zero > "$PWD/isos/sv.iso"
isr=$(xe sr-create name-label=sv-iso type=iso content-type=iso device-config:location="$PWD/isos")
fails "Every CD drive on the VM is occupied, or it has none." vm-cd-insert uuid=$vm cd-name=sv.iso
fails "No CDs found" vm-cd-eject uuid=$vm
cd1=$(xe vbd-create vm-uuid=$vm device=autodetect type=CD mode=RO)
check "$(xe vbd-param-get uuid=$cd1 param-name=empty)" true "empty CD"
xe vbd-create vm-uuid=$vm device=autodetect type=CD mode=RO >/dev/null
fails "Two or more empty CD devices found. Please use vbd-insert" vm-cd-insert uuid=$vm cd-name=sv.iso
fails "Two or more CDs found. Please use vbd-eject" vm-cd-eject uuid=$vm

# vm-disk-add: the real xe's VDI and VBD
xe vm-disk-add uuid=$vm disk-size=8MiB device=autodetect
added=$(xe vdi-list name-label="Created by xe" --minimal)
check "$(xe vdi-param-get uuid=$added param-name=name-description)" "Created by xe" "disk-add description"
check "$(xe vdi-param-get uuid=$added param-name=sm-config param-key=vmhint)" "$vm" "disk-add vmhint"

# networks and VIFs
net=$(xe network-create name-label=sv-net)
check "$(xe network-param-get uuid=$net param-name=MTU)" 1500 "network-create MTU"
check "$(xe network-param-get uuid=$net param-name=managed)" true "network-create managed"
n2=$(xe network-create name-label=sv-net2 MTU=9000 managed=no)
check "$(xe network-param-get uuid=$n2 param-name=managed)" false "managed=no"
vif=$(xe vif-create vm-uuid=$vm network-uuid=$n2 device=0 mac=random)
mac=$(xe vif-param-get uuid=$vif param-name=MAC)
echo "$mac" | grep -Eq '^[0-9a-f][26ae](:[0-9a-f]{2}){5}$' || { echo "mac=random gave '$mac'"; exit 1; }
check "$(xe vif-param-get uuid=$vif param-name=MTU)" 9000 "VIF takes its network's MTU"
vif2=$(xe vif-create vm-uuid=$vm network-uuid=$net device=1 mac=random)
[ "$(xe vif-param-get uuid=$vif2 param-name=MAC)" != "$mac" ] || { echo "two random MACs are equal"; exit 1; }
fails "malformed" vif-create vm-uuid=$vm network-uuid=$net device=2 mac=nonsense
pif=$(xe pif-list --minimal | cut -d, -f1)
fails "Failed to parse parameter 'vlan': expecting an integer" vlan-create pif-uuid=$pif vlan=x network-uuid=$net
echo ok
