#!/usr/bin/env bash
# Install cargohold into .venv and run it on the embedded default (SQLite + ./cargohold-data).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_venv
exec .venv/bin/cargohold serve "$@"
