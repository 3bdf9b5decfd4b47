#!/usr/bin/env bash
# Install everything the tests need and run the whole suite on SQLite and on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

apt_install git skopeo buildah podman busybox-static docker-registry apache2-utils uidmap fuse-overlayfs chromium \
    gcc libc6-dev wget nginx
# npm only where the machine has none: a Node.js from elsewhere brings its own.
command -v npm >/dev/null || apt_install npm
bash scripts/build-sandbox.sh
# axe-core from the npm registry, injected by the browser tests (tests/e2e/conftest.py pins it).
npm install --no-save --no-audit --no-fund --prefix .cache/axe-core axe-core@4.14.1 >/dev/null
ensure_venv "[test]"

source scripts/postgres.sh
ensure_postgres

status=0
echo "== SQLite + local storage"
CARGOHOLD_TEST_DB=sqlite .venv/bin/python -m pytest -p no:cacheprovider "$@" || status=$?
echo "== PostgreSQL + S3 storage (SeaweedFS)"
CARGOHOLD_TEST_DB=postgres CARGOHOLD_TEST_STORAGE=s3 \
    .venv/bin/python -m pytest -p no:cacheprovider "$@" || status=$?
exit $status
