# Bash completion for xe: command names and each command's param= names,
# asked from the server (`xe help --all --minimal`, `xe help <command>`)
# and cached for the shell session.
# Install: source this file, or copy it to /etc/bash_completion.d/xe.

_xe_commands=""
declare -A _xe_params

_xe_params_of() {
    local cmd=$1
    if [ -z "${_xe_params[$cmd]+x}" ]; then
        local reqd optn
        reqd=$(xe help "$cmd" 2>/dev/null | sed -n 's/^ *reqd params *: //p')
        optn=$(xe help "$cmd" 2>/dev/null | sed -n 's/^ *optional params *: //p')
        _xe_params[$cmd]=$(printf '%s, %s' "$reqd" "$optn" | tr ',' '\n' | sed 's/^ *//; /^$/d; /^</d' |
            sed '/:$/!s/$/=/' | tr '\n' ' ')
    fi
    printf '%s' "${_xe_params[$cmd]}"
}

_xe() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    if [ "$COMP_CWORD" -eq 1 ]; then
        [ -z "$_xe_commands" ] && _xe_commands=$(xe help --all --minimal 2>/dev/null | tr ',' ' ')
        COMPREPLY=($(compgen -W "$_xe_commands help" -- "$cur"))
        return
    fi
    local cmd=${COMP_WORDS[1]}
    if [ "$cmd" = help ]; then
        [ -z "$_xe_commands" ] && _xe_commands=$(xe help --all --minimal 2>/dev/null | tr ',' ' ')
        COMPREPLY=($(compgen -W "$_xe_commands" -- "$cur"))
        return
    fi
    case $cur in
        *=*) COMPREPLY=(); return ;;
    esac
    COMPREPLY=($(compgen -W "$(_xe_params_of "$cmd") --minimal --force --multiple" -- "$cur"))
    compopt -o nospace 2>/dev/null || true
}

complete -F _xe xe
