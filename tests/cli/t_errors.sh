# Exit codes and error texts as xe prints them.
set -u
out=$(xe no-such-command 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "^Unknown command: no-such-command" || exit 1
out=$(xe vm-param-list 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "^Required parameter not found: uuid" || exit 1
out=$(xe vm-param-list uuid=nope 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "uuid: nope" || exit 1
out=$(xe -s 127.0.0.1 --nossl -p "$XE_PORT" -pw wrong vm-list 2>&1 </dev/null)
# the Unix socket is trusted; force TCP by hiding it
out=$(XE_UNIX_SOCKET=/nonexistent xe -p "$XE_PORT" -pw wrong vm-list 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "^Authentication failed" || { echo "$out"; exit 1; }
out=$(XE_UNIX_SOCKET=/nonexistent xe -p "$XE_PORT" -pw pw vm-list --minimal 2>&1); rc=$?
[ $rc -eq 0 ] || { echo "$out"; exit 1; }
out=$(xe vm-start vm=no-such-vm 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "No matching VMs found" || exit 1
xe help | grep -q "Common command list" || exit 1
xe help vm-start | grep -q "reqd params" || exit 1
xe help --all --minimal | tr , '\n' | grep -qx vm-param-set || exit 1
# xe console needs a vt100 console: a simulated guest has only its rfb one.
vm=$(xe vm-install template="Debian Etch 4.0" new-name-label=console-less) || exit 1
xe vm-start uuid="$vm" || exit 1
out=$(xe console uuid="$vm" 2>&1 </dev/null); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "No text console available" || { echo "$out"; exit 1; }
xe vm-shutdown --force uuid="$vm" || exit 1
xe vm-uninstall --force uuid="$vm" >/dev/null || exit 1
