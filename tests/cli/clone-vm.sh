#!/bin/bash
# The SDK guide's §4.2.2 example ("Cloning a VM using the XE CLI"), with the
# guide's typos fixed (it writes `XE` and `{vmuuid}` where it means `${XE}`
# and `${vmuuid}`). Usage: clone-vm.sh <vm-uuid>

# Allow the path to the 'xe' binary to be overridden by the XE environment variable
if [ -z "${XE}" ]; then
    XE=xe
fi

if [ ! -e "${HOME}/.xe" ]; then
    read -p "Server name: " SERVER
    read -p "Username: " USERNAME
    read -p "Password: " PASSWORD
    XE="${XE} -s ${SERVER} -u ${USERNAME} -pw ${PASSWORD}"
fi

# Check if there's a VM by the uuid specified
vmuuid=$1
${XE} vm-list params=uuid | grep -q " ${vmuuid}$"
if [ $? -ne 0 ]; then
    echo "error: no vm uuid \"${vmuuid}\" found"
    exit 2
fi

# Check the power state of the vm
name=$(${XE} vm-list uuid=${vmuuid} params=name-label --minimal)
state=$(${XE} vm-list uuid=${vmuuid} params=power-state --minimal)
wasrunning=0

# If the VM state is running, we shutdown the vm first
if [ "${state}" = "running" ]; then
    ${XE} vm-shutdown uuid=${vmuuid}
    ${XE} event-wait class=vm power-state=halted uuid=${vmuuid}
    wasrunning=1
fi

# Clone the VM
newuuid=$(${XE} vm-clone uuid=${vmuuid} new-name-label=cloned_vm)

# If the VM state was running before cloning, we start it again
# along with the new VM.
if [ "$wasrunning" -eq 1 ]; then
    ${XE} vm-start uuid=${vmuuid}
    ${XE} vm-start uuid=${newuuid}
fi
