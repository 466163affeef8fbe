#!/usr/bin/env bash
# Serve Muster on an embedded SQLite database (./muster.db unless MUSTER_DATABASE_URL is set).
# Usage: scripts/serve.sh [--host 127.0.0.1] [--port 8000]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
exec muster serve "$@"
