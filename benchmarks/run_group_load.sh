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

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
VENV="${MUSTER_VENV:-$REPO/.venv}"
PY="$VENV/bin/python"
MUSTER="$VENV/bin/muster"
for exe in "$PY" "$MUSTER"; do
    [[ -x "$exe" ]] || { echo "missing $exe (set MUSTER_VENV to Muster's virtualenv)" >&2; exit 2; }
done

WORK="$(mktemp -d /tmp/muster-group-bench.XXXXXX)"
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

export MUSTER_DATABASE_URL="sqlite:///$WORK/bench.db"  # /tmp/muster-group-bench.X/bench.db
export MUSTER_CREATE_DEMO_TENANT=false
cd "$WORK"  # nothing lands in the caller's directory

PORT="${MUSTER_BENCH_PORT:-$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')}"

if command -v git >/dev/null 2>&1 && git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
    version="$(git -C "$REPO" describe --always --dirty 2>/dev/null)"
    if [[ -n "$(git -C "$REPO" status --porcelain -- src 2>/dev/null)" ]]; then
        # identify the uncommitted state of src/ that was measured
        version+=" (src/ has uncommitted changes: diff $(git -C "$REPO" diff HEAD -- src | sha256sum | cut -c1-12))"
    fi
    echo "muster at $version; N=$N; port $PORT; db $MUSTER_DATABASE_URL"
fi
"$MUSTER" db upgrade
"$MUSTER" tenant create bench --plan enterprise --seats "$((N + 10100))"
TOKEN="$("$MUSTER" scim-token bench 2>/dev/null | tail -n 1)"
[[ "$TOKEN" == mst_* ]] || { echo "could not read the SCIM token" >&2; exit 2; }

"$MUSTER" serve --host 127.0.0.1 --port "$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

ready=""
for _ in $(seq 1 150); do  # up to 15 s
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
[[ -n "$ready" ]] || { echo "the server did not answer /healthz in 15 s" >&2; cat "$WORK/server.log" >&2; exit 2; }

status=0
"$PY" "$HERE/group_load.py" --base-url "http://127.0.0.1:$PORT/scim/v2" --token "$TOKEN" \
    --users "$N" --server-pid "$SERVER_PID" "$@" || status=$?

# Anything the server logged beyond its start-up line (warnings, tracebacks) is worth seeing.
if grep -qv '^SCIM base URL:' "$WORK/server.log"; then
    echo
    echo "== server log (beyond start-up)"
    grep -v '^SCIM base URL:' "$WORK/server.log" | head -n 200
fi
exit "$status"
