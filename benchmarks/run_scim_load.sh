#!/usr/bin/env bash
# One-command SCIM load benchmark on a fresh SQLite database.
#
#   benchmarks/run_scim_load.sh [N] [extra scim_load.py args...]
#
# N users (default 5000). Creates a temporary SQLite file, migrates it, creates the tenant
# `bench` (Enterprise, N+100 seats), issues its SCIM token, starts `muster serve` on a free
# loopback port, waits for /healthz, runs benchmarks/scim_load.py against it with the server's
# pid, then stops the server and deletes the database. Works from any directory.
#
# Environment: MUSTER_VENV (default: <repo>/.venv), MUSTER_BENCH_PORT (default: a free port).
# Exit status: scim_load.py's (0 all targets pass, 1 a target fails, 2 setup error).
set -euo pipefail

N="${1:-5000}"
[[ $# -gt 0 ]] && shift
if ! [[ "$N" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [N users, default 5000] [extra scim_load.py args...]" >&2
    exit 2
fi

BENCH_NAME=bench
BENCH_SEATS="$((N + 100))"
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/bench_server.sh"

status=0
"$PY" "$HERE/scim_load.py" --base-url "http://127.0.0.1:$PORT/scim/v2" --token "$TOKEN" \
    --users "$N" --concurrency 8 --server-pid "$SERVER_PID" \
    ${DB_CPU_MATCH:+--db-cpu-match "$DB_CPU_MATCH"} "$@" || status=$?

bench_server_log
exit "$status"
