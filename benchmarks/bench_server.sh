#!/usr/bin/env bash
# Sourced by the run_*.sh benchmarks: a fresh SQLite database with the tenant `bench`
# (Enterprise, $BENCH_SEATS seats) and its SCIM token in $TOKEN, `muster serve` on a free
# loopback port ($PORT, pid $SERVER_PID) answering /healthz, and cleanup on exit.
# Set BENCH_NAME and BENCH_SEATS before sourcing; $N is printed in the header.
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"  # this folder
REPO="$(cd "$HERE/.." && pwd)"
VENV="${MUSTER_VENV:-$REPO/.venv}"
PY="$VENV/bin/python"
MUSTER="$VENV/bin/muster"
for exe in "$PY" "$MUSTER"; do
    [[ -x "$exe" ]] || { echo "missing $exe (set MUSTER_VENV to Muster's virtualenv)" >&2; exit 2; }
done

WORK="$(mktemp -d "/tmp/muster-$BENCH_NAME.XXXXXX")"
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do  # up to 5 s for a graceful stop
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# MUSTER_BENCH_DATABASE_URL: an empty database of your own instead (PostgreSQL: the URL that
# scripts/postgres.sh prints); DB_CPU_MATCH then names it, to find its PostgreSQL backends.
export MUSTER_DATABASE_URL="${MUSTER_BENCH_DATABASE_URL:-sqlite:///$WORK/bench.db}"
DB_CPU_MATCH=""
if [[ "$MUSTER_DATABASE_URL" == postgres* ]]; then
    db_name="${MUSTER_DATABASE_URL##*/}"
    DB_CPU_MATCH=" ${db_name%%\?*} "  # backends are titled "postgres: USER DB HOST(PORT) STATE"
fi
WORKERS="${MUSTER_BENCH_WORKERS:-1}"
export MUSTER_CREATE_DEMO_TENANT=false
# No webhook delivery worker beside the server unless a benchmark asks for one: its idle polls
# would count in the server tree's CPU per request (run_webhook_latency.sh starts its own).
export MUSTER_SERVE_WORKER="${MUSTER_SERVE_WORKER:-false}"
cd "$WORK"  # nothing lands in the caller's directory

PORT="${MUSTER_BENCH_PORT:-$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')}"

if command -v git >/dev/null 2>&1 && git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
    version="$(git -C "$REPO" describe --always --dirty 2>/dev/null)"
    if [[ -n "$(git -C "$REPO" status --porcelain -- src 2>/dev/null)" ]]; then
        # identify the uncommitted state of src/ that was measured
        version+=" (src/ has uncommitted changes: diff $(git -C "$REPO" diff HEAD -- src | sha256sum | cut -c1-12))"
    fi
    echo "muster at $version; N=$N; port $PORT; workers $WORKERS; db $MUSTER_DATABASE_URL"
fi
"$MUSTER" db upgrade
"$MUSTER" tenant create bench --plan enterprise --seats "$BENCH_SEATS"
TOKEN="$("$MUSTER" scim-token bench 2>/dev/null | tail -n 1)"
[[ "$TOKEN" == mst_* ]] || { echo "could not read the SCIM token" >&2; exit 2; }

${MUSTER_BENCH_TASKSET:+taskset -c "$MUSTER_BENCH_TASKSET"} "$MUSTER" serve --host 127.0.0.1 --port "$PORT" --workers "$WORKERS" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

ready=""
for _ in $(seq 1 600); do  # up to 60 s (worker processes start slowly on a busy machine)
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "the server exited during start-up:" >&2
        cat "$WORK/server.log" >&2
        exit 2
    fi
    if "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
        "http://127.0.0.1:$PORT/healthz" 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.1
done
[[ -n "$ready" ]] || { echo "the server did not answer /healthz in 60 s" >&2; cat "$WORK/server.log" >&2; exit 2; }
if (( WORKERS > 1 )); then
    # /healthz answers as soon as one worker is up: wait until the others are up too (the
    # process tree idle for a second; up to 60 s), so that no phase measures start-up.
    "$PY" - "$HERE" "$SERVER_PID" <<'PYEOF'
import sys, time
sys.path.insert(0, sys.argv[1])
from scim_load import TICK_MS, tree_cpu_ticks
pid, deadline = int(sys.argv[2]), time.monotonic() + 60
last = sum(tree_cpu_ticks(pid))
while time.monotonic() < deadline:
    time.sleep(1)
    now = sum(tree_cpu_ticks(pid))
    if (now - last) * TICK_MS < 50:
        break
    last = now
PYEOF
fi


# Anything the server logged beyond its start-up line (warnings, tracebacks) is worth seeing.
bench_server_log() {
    if grep -qv '^SCIM base URL:' "$WORK/server.log"; then
        echo
        echo "== server log (beyond start-up)"
        grep -v '^SCIM base URL:' "$WORK/server.log" | head -n 200
    fi
}
