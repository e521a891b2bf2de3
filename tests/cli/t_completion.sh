# The bash completion script completes command names and param= names.
set -eu
source "$(dirname "$0")/../../crates/xe/completion/xe.bash"
COMP_WORDS=(xe vm-para); COMP_CWORD=1; _xe
printf '%s\n' "${COMPREPLY[@]}" | grep -qx vm-param-set
COMP_WORDS=(xe vm-install new-); COMP_CWORD=2; _xe
printf '%s\n' "${COMPREPLY[@]}" | grep -qx new-name-label=
COMP_WORDS=(xe vm-param-set other); COMP_CWORD=2; _xe
printf '%s\n' "${COMPREPLY[@]}" | grep -qx other-config:
