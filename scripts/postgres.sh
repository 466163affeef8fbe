#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on 127.0.0.1:5432 and print a URL for a new, empty
# throwaway database on it. Starts the local cluster, or installs Debian's postgresql, if needed.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

listening() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }

start_cluster() {
  local version
  version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)"
  [ -n "$version" ] || return 1
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
}

if ! listening; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    echo "postgres: installing Debian's postgresql" >&2
    as_root apt-get update -qq >/dev/null || true
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >/dev/null
  fi
  start_cluster
  for _ in $(seq 1 30); do listening && break; sleep 1; done
  listening || { echo "postgres: could not start PostgreSQL on 127.0.0.1:5432" >&2; exit 1; }
fi

# Prefer trust auth as user postgres (this machine); otherwise create a password role as the
# postgres OS user, which works on a stock Debian install (peer auth on the socket).
USER_URL="postgresql://postgres@127.0.0.1:5432"
if ! psql "$USER_URL/postgres" -qAtc 'select 1' >/dev/null 2>&1; then
  as_root runuser -u postgres -- psql -qAtc \
    "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='muster_test') THEN
       CREATE ROLE muster_test LOGIN CREATEDB PASSWORD 'muster_test'; END IF; END\$\$;" >&2
  USER_URL="postgresql://muster_test:muster_test@127.0.0.1:5432"
fi
DB="muster_test_$(date +%s)_$$"
psql "$USER_URL/postgres" -qAtc "CREATE DATABASE $DB" >&2
echo "$USER_URL/$DB"
