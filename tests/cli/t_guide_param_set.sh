# The `xe … -param-set` lines of guide §6.1.2, §6.3, §6.5 (and §5.2's
# pool-param-set), as written, against a fresh server.
set -eu
tpl=$(xe template-list --minimal | cut -d, -f1)
vm=$(xe vm-install template="$tpl" new-name-label=name)
# §6.1.2
[ "$(xe vm-list params=uuid --minimal name-label=name)" = "$vm" ]
xe vm-param-set uuid=$vm other-config:disable_pv_vnc=1
[ "$(xe vm-param-get uuid=$vm param-name=other-config param-key=disable_pv_vnc)" = 1 ]
xe vm-start uuid=$vm
domid=$(xe vm-list params=dom-id uuid=$vm --minimal)
[ "$domid" -gt 0 ]
xe console-list vm-uuid=$vm
# §6.3
xe vm-param-set uuid=$vm xenstore-data:vm-data/foo=bar
xe vm-param-get uuid=$vm param-name=xenstore-data | grep -q 'vm-data/foo: bar'
# §6.5: a VIF and a PIF
net=$(xe network-list --minimal | cut -d, -f1)
vif=$(xe vif-create vm-uuid=$vm network-uuid=$net device=0)
xe vif-param-set uuid=$vif other-config:ethtool-tx="on"
xe vif-param-set uuid=$vif other-config:ethtool-tx="true"
xe vif-param-set uuid=$vif other-config:ethtool-duplex="half"
xe vif-param-set uuid=$vif other-config:mtu=9000
xe vif-list uuid=$vif other-config:mtu=9000 --minimal | grep -q "$vif"
xe vif-param-get uuid=$vif param-name=other-config | grep -q 'ethtool-tx: true'
pif=$(xe pif-list --minimal | cut -d, -f1)
xe pif-param-set uuid=$pif other-config:promiscuous="on"
xe pif-param-set uuid=$pif other-config:promiscuous="true"
[ "$(xe pif-param-get uuid=$pif param-name=other-config param-key=promiscuous)" = true ]
# §5.2 (a map key without a value)
pool=$(xe pool-list --minimal)
xe pool-param-set uuid=$pool other-config:create_min_max_in_new_VM_RRDs
xe pool-param-get uuid=$pool param-name=other-config | grep -q 'create_min_max_in_new_VM_RRDs: '
