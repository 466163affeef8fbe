#!/usr/bin/env bash
# Run Muster's whole test suite: lint and types, then every test on SQLite and on PostgreSQL.
# Usage: scripts/test.sh [extra pytest args]     (MUSTER_TEST_SKIP_POSTGRES=1 skips the 2nd run)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"

echo "== ruff"; ruff check src tests benchmarks
echo "== mypy --strict src"; mypy

echo "== pytest on SQLite"
python -m pytest -q -p no:cacheprovider "$@"

if [ "${MUSTER_TEST_SKIP_POSTGRES:-}" != "1" ]; then
  PG_URL="$(bash "$ROOT/scripts/postgres.sh")"
  cleanup() { psql "${PG_URL%/*}/postgres" -qAtc "DROP DATABASE IF EXISTS ${PG_URL##*/}" >/dev/null 2>&1 || true; }
  trap cleanup EXIT
  echo "== pytest on PostgreSQL (${PG_URL##*/})"
  MUSTER_TEST_DATABASE_URL="$PG_URL" python -m pytest -q -p no:cacheprovider "$@"
fi
