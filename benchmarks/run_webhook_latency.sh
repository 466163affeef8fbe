#!/usr/bin/env bash
# One-command webhook benchmark on a fresh SQLite database (or MUSTER_BENCH_DATABASE_URL).
#
#   benchmarks/run_webhook_latency.sh [N users, default 2000] [extra webhook_latency.py args...]
#
# Starts `muster serve` without its own delivery worker (the benchmark starts one by itself, so
# that it can time a backlog and read that one process's CPU), then runs webhook_latency.py:
# events/s of one worker over N user.created events, and SCIM deactivate -> webhook latency.
set -euo pipefail

N="${1:-2000}"
[[ $# -gt 0 ]] && shift
if ! [[ "$N" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [N users, default 2000] [extra webhook_latency.py args...]" >&2
    exit 2
fi

BENCH_NAME=webhooks
BENCH_SEATS="$((N + 100))"
export MUSTER_SERVE_WORKER=false  # this script starts the one worker it measures
export MUSTER_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true  # its receiver listens on 127.0.0.1
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/bench_server.sh"

status=0
"$PY" "$HERE/webhook_latency.py" drive --base-url "http://127.0.0.1:$PORT/scim/v2" \
    --token "$TOKEN" --muster "$MUSTER" --users "$N" "$@" || status=$?

bench_server_log
exit "$status"
