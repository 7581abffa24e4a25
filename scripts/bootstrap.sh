# Sourced by ./run and ./test: make .venv and install the pinned requirements (and the npm
# packages of the web UI) when they changed.
# Usage: bootstrap_venv requirements.txt|requirements-dev.txt
set -euo pipefail

bootstrap_venv() {
  local req="$1"
  if [ ! -x .venv/bin/python ]; then
    local py="${PYTHON:-}"
    if [ -z "$py" ]; then
      for candidate in python3 python3.11 python3.12 python3.13; do
        if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
          py="$candidate"
          break
        fi
      done
    fi
    if [ -z "$py" ]; then
      echo "Spectator needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)." >&2
      exit 1
    fi
    echo "Creating .venv with $("$py" --version)…"
    "$py" -m venv .venv
  fi
  local stamp=".venv/.installed-$(basename "$req")"
  local want
  want="$( (cat requirements*.txt; cat spectator_client/pyproject.toml 2>/dev/null || true) | sha256sum | cut -c1-64)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "Installing $req into .venv…"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$req"
    echo "$want" > "$stamp"
  fi
}

# Install the browser UI's npm libraries (uPlot) from package-lock.json when it changed.
# Usage: bootstrap_npm
bootstrap_npm() {
  [ -f package-lock.json ] || return 0
  if ! command -v npm >/dev/null 2>&1; then
    echo "Spectator's web UI needs Node.js and npm (for its chart library); install them and run again." >&2
    exit 1
  fi
  local stamp="node_modules/.installed-package-lock"
  local want
  want="$(cat package.json package-lock.json | sha256sum | cut -c1-64)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "Installing the web UI's npm packages (npm ci)…"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$want" > "$stamp"
  fi
}
