#!/usr/bin/env bash
# Create .venv with Python 3.11+ and install Muster and its test tools, installing Debian
# packages only when something is missing. Sourced by scripts/serve.sh and scripts/test.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  echo "bootstrap: installing Debian packages: $*" >&2
  as_root apt-get update -qq >/dev/null || true
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

find_python() {
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  return 1
}

PYTHON="$(find_python || true)"
if [ -z "$PYTHON" ]; then
  apt_install python3 python3-venv
  PYTHON="$(find_python)"
fi

if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    # Debian splits venv/ensurepip into its own package.
    apt_install "python3-venv" || apt_install "python$("$PYTHON" -c 'import sys;print(f"{sys.version_info[0]}.{sys.version_info[1]}")')-venv"
    "$PYTHON" -m venv "$VENV"
  fi
fi

# SAML sign-in verifies signatures with Debian's xmlsec1 binary (pysaml2 runs it).
if ! command -v xmlsec1 >/dev/null 2>&1; then
  apt_install xmlsec1
fi

# Reinstall only when the dependency list changed since the last install.
STAMP="$VENV/.install-stamp"
WANT="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "bootstrap: installing Muster into $VENV" >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q -e "$ROOT[test]"
  echo "$WANT" > "$STAMP"
fi

# The browser tests (tests/browser) drive Debian's chromium through Playwright, which cannot
# download a browser of its own here. Installed when this script runs by itself or for the test
# suite (scripts/test.sh sources it), not for scripts/serve.sh.
case "$(basename "$0")" in
  bootstrap.sh|test.sh)
    if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
      apt_install chromium
    fi
    ;;
esac

export PATH="$VENV/bin:$PATH"
