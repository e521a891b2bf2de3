# The explicit commands, one pass each, against a fresh server.
set -eux
tpl=$(xe template-list name-label="Debian Bookworm 12" --minimal)
sr=$(xe sr-list type=ext --minimal)
vm=$(xe vm-install template="$tpl" new-name-label=cmd-vm sr-uuid="$sr")
[ "$(xe vm-list uuid=$vm params=is-a-template --minimal)" = false ]
# disks, CDs, VIFs, memory
xe vm-disk-add uuid=$vm disk-size=64MiB device=1
xe vm-disk-list uuid=$vm | grep -q "Disk 0 VBD:"
net=$(xe network-create name-label=cmd-net)
vif=$(xe vif-create vm-uuid=$vm network-uuid=$net device=0)
xe vm-vif-list uuid=$vm --minimal | grep -q "$vif"
xe vm-memory-set uuid=$vm memory=1GiB
[ "$(xe vm-param-get uuid=$vm param-name=memory-static-max)" = 1073741824 ]
# lifecycle
xe vm-start vm=cmd-vm
xe vm-pause uuid=$vm
[ "$(xe vm-param-get uuid=$vm param-name=power-state)" = paused ]
xe vm-unpause uuid=$vm
xe vm-reboot uuid=$vm
xe vm-suspend uuid=$vm
[ "$(xe vm-param-get uuid=$vm param-name=power-state)" = suspended ]
xe vm-resume uuid=$vm
host=$(xe host-list --minimal)
xe vm-migrate uuid=$vm host-uuid=$host live=true
xe vif-unplug uuid=$vif
xe vif-plug uuid=$vif
xe vm-shutdown uuid=$vm --force
# clone, copy, snapshot
snap=$(xe vm-snapshot uuid=$vm new-name-label=cmd-snap)
xe snapshot-list --minimal | grep -q "$snap"
xe snapshot-revert snapshot-uuid=$snap
copy=$(xe vm-copy uuid=$vm new-name-label=cmd-copy sr-uuid=$sr)
clone=$(xe vm-clone uuid=$vm new-name-label=cmd-clone)
xe vm-uninstall uuid=$copy --force | grep -q "All objects destroyed"
xe vm-destroy uuid=$clone
! xe vm-reset-powerstate uuid=$vm 2>/dev/null
xe vm-reset-powerstate uuid=$vm --force
# storage
vdi=$(xe vdi-create sr-uuid=$sr name-label=cmd-vdi virtual-size=8MiB other-config:a=b)
xe vdi-resize uuid=$vdi disk-size=16MiB
[ "$(xe vdi-param-get uuid=$vdi param-name=virtual-size)" = 16777216 ]
vbd=$(xe vbd-create vm-uuid=$vm vdi-uuid=$vdi device=4)
xe vm-start uuid=$vm
# the simulated guest has no PV drivers: hot-unplug is refused, as in xapi
out=$(xe vbd-unplug uuid=$vbd 2>&1) || echo "$out" | grep -q "PV drivers"
xe vm-shutdown uuid=$vm
xe vbd-destroy uuid=$vbd
xe vdi-destroy uuid=$vdi
xe sr-scan uuid=$sr
mkdir -p "$PWD/isos"
sr2=$(xe sr-create name-label=cmd-iso type=iso content-type=iso device-config:location="$PWD/isos")
# CDs from the new ISO library
head -c 4096 /dev/zero > "$PWD/isos/install.iso"
xe sr-scan uuid=$sr2
xe vm-cd-add uuid=$vm cd-name=install.iso device=3
xe vm-cd-eject uuid=$vm
xe vm-cd-insert uuid=$vm cd-name=install.iso
xe vm-cd-eject uuid=$vm
pbd=$(xe pbd-list sr-uuid=$sr2 --minimal)
xe pbd-unplug uuid=$pbd
xe pbd-plug uuid=$pbd
xe pbd-unplug uuid=$pbd
xe sr-forget uuid=$sr2
sr3=$(xe sr-introduce uuid=$sr2 name-label=again type=iso content-type=iso)
pbd=$(xe pbd-create host-uuid=$host sr-uuid=$sr3 device-config:location="$PWD/isos")
xe pbd-plug uuid=$pbd
# network
xe pif-scan host-uuid=$host
pif=$(xe pif-list device=eth1 --minimal)
xe pif-plug uuid=$pif
xe pif-reconfigure-ip uuid=$pif mode=static IP=192.0.2.10 netmask=255.255.255.0
[ "$(xe pif-param-get uuid=$pif param-name=IP)" = 192.0.2.10 ]
mgmt=$(xe pif-list management=true --minimal)
xe host-management-reconfigure pif-uuid=$pif
[ "$(xe pif-param-get uuid=$pif param-name=management)" = true ]
[ "$(xe host-param-get uuid=$host param-name=address)" = 192.0.2.10 ]
xe pool-management-reconfigure network-uuid=$(xe pif-param-get uuid=$mgmt param-name=network-uuid)
[ "$(xe pif-param-get uuid=$mgmt param-name=management)" = true ]
xe pif-reconfigure-ipv6 uuid=$pif mode=static IPv6=fd00::10/64
[ "$(xe pif-param-get uuid=$pif param-name=IPv6)" = fd00::10/64 ]
vnet=$(xe network-create name-label=vlan-net)
xe vlan-create pif-uuid=$pif vlan=42 network-uuid=$vnet
bnet=$(xe network-create name-label=bond-net)
p2=$(xe pif-list device=eth2 --minimal)
p3=$(xe pif-list device=eth3 --minimal)
xe bond-create network-uuid=$bnet pif-uuids=$p2,$p3
xe bond-list --minimal | grep -q .
vif=$(xe vif-list vm-uuid=$vm --minimal)  # revert made new VIFs
xe vif-destroy uuid=$vif
# host, pool, tasks, messages
xe host-disable uuid=$host
[ "$(xe host-param-get uuid=$host param-name=enabled)" = false ]
xe host-enable host=$host
xe host-evacuate uuid=$host
pool=$(xe pool-list --minimal)
xe pool-param-set uuid=$pool name-label=cmd-pool
xe message-create name=CMD body=hello priority=3 vm-uuid=$vm
xe message-list name=CMD params=body --minimal | grep -q hello
xe task-list
xe sm-list params=type --minimal | grep -q ext
xe console-list
# generic param commands
xe vm-param-add uuid=$vm param-name=tags param-key=t1
xe vm-param-remove uuid=$vm param-name=tags param-key=t1
xe vm-param-add uuid=$vm param-name=other-config x=1 y=2
xe vm-param-remove uuid=$vm param-name=other-config param-key=x
[ "$(xe vm-param-get uuid=$vm param-name=other-config param-key=y)" = 2 ]
xe vm-param-clear uuid=$vm param-name=other-config
[ -z "$(xe vm-param-get uuid=$vm param-name=other-config)" ]
xe vm-param-set uuid=$vm name-description="a, b" VCPUs-at-startup=1
[ "$(xe vm-list uuid=$vm params=name-description --minimal)" = 'a\, b' ]
! xe vm-param-set uuid=$vm power-state=running 2>/dev/null
xe vm-uninstall uuid=$vm --force
