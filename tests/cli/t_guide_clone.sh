# §4.2.2: clone a running VM with the guide's script; ~/.xe holds the
# server settings so the script does not prompt.
set -eu
here=$(dirname "$0")
printf 'server=127.0.0.1\nusername=root\npassword=pw\n' > "$HOME/.xe"
tpl=$(xe template-list --minimal | cut -d, -f1)
vm=$(xe vm-install template="$tpl" new-name-label=guide-vm)
xe vm-start uuid="$vm"
[ "$(xe vm-list uuid="$vm" params=power-state --minimal)" = running ]
XE=xe bash "$here/clone-vm.sh" "$vm"
clone=$(xe vm-list name-label=cloned_vm --minimal)
[ -n "$clone" ]
[ "$(xe vm-list uuid="$vm" params=power-state --minimal)" = running ]
[ "$(xe vm-list uuid="$clone" params=power-state --minimal)" = running ]
# An unknown uuid takes the script's error path.
set +e
XE=xe bash "$here/clone-vm.sh" 00000000-0000-0000-0000-000000000000
[ $? -eq 2 ]
