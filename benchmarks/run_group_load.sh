#!/usr/bin/env bash
# One-command group load benchmark on a fresh SQLite database.
#
#   benchmarks/run_group_load.sh [N] [extra group_load.py args...]
#
# N members in the big group (default 100000). Creates a temporary SQLite file, migrates it,
# creates the tenant `bench` (Enterprise, N+10100 seats: N members, up to 10000 spare users for
# the PATCHes, 100 to spare), issues its SCIM token, starts `muster serve` on a free loopback
# port, waits for /healthz, runs benchmarks/group_load.py against it with the server's pid
# (which builds users and groups through the SCIM API), then stops the server and deletes the
# database. Works from any directory.
#
# Environment: MUSTER_VENV (default: <repo>/.venv), MUSTER_BENCH_PORT (default: a free port).
# Exit status: group_load.py's (0 all targets pass, 1 a target fails, 2 setup error).
set -euo pipefail

N="${1:-100000}"
[[ $# -gt 0 ]] && shift
if ! [[ "$N" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [N members, default 100000] [extra group_load.py args...]" >&2
    exit 2
fi

BENCH_NAME=group-bench
BENCH_SEATS="$((N + 10100))"
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/bench_server.sh"

status=0
"$PY" "$HERE/group_load.py" --base-url "http://127.0.0.1:$PORT/scim/v2" --token "$TOKEN" \
    --users "$N" --server-pid "$SERVER_PID" "$@" || status=$?

bench_server_log
exit "$status"
