#!/usr/bin/env bash
# Install cargohold into .venv and run it on the embedded default (SQLite + ./cargohold-data).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_venv
if [ "$(id -u)" -eq 0 ]; then
    # Builds run only in the sandbox; without it they wait and the server log says why.
    bash scripts/build-sandbox.sh
fi
# The embedded database migrates itself; a configured DB_URI needs `cargohold migrate` first
# (or `--migrate` here).
exec .venv/bin/cargohold serve "$@"
