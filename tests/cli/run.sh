#!/usr/bin/env bash
# Shell-driven xe tests: each t_*.sh runs against a fresh xapid with the xe
# client on PATH (XE is set as the guide's scripts expect).
# Usage: tests/cli/run.sh   (after cargo build -p xapid -p xe)
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${CARGO_TARGET_DIR:-$root/target}/debug
pass=0 fail=0
for t in "$root"/tests/cli/t_*.sh; do
    dir=$(mktemp -d)
    port=$((20000 + RANDOM % 20000))
    "$bin/xapid" --data-dir "$dir/data" --http "127.0.0.1:$port" --unix "$dir/sock" --root-password pw --sr-root "$dir" >"$dir/log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do [ -S "$dir/sock" ] && break; sleep 0.05; done
    if (cd "$dir" && PATH="$bin:$PATH" XE_UNIX_SOCKET="$dir/sock" XE_PORT="$port" HOME="$dir" timeout 120 bash "$t" >"$dir/out" 2>&1); then
        pass=$((pass + 1)); echo "ok   $(basename "$t")"
    else
        fail=$((fail + 1)); echo "FAIL $(basename "$t")"; sed 's/^/    /' "$dir/out"
    fi
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    rm -rf "$dir"
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
