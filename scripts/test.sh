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

sqlite_suite() {
    CARGOHOLD_TEST_DB=sqlite .venv/bin/python -m pytest -p no:cacheprovider "$@"
}
postgres_suite() {
    CARGOHOLD_TEST_DB=postgres CARGOHOLD_TEST_STORAGE=s3 \
        .venv/bin/python -m pytest -p no:cacheprovider "$@"
}

status=0
if [ $# -gt 0 ]; then
    echo "== SQLite + local storage"
    sqlite_suite "$@" || status=$?
    echo "== PostgreSQL + S3 storage (SeaweedFS)"
    postgres_suite "$@" || status=$?
    exit $status
fi

# The two backends share nothing but the build sandbox's firewall table (one per build user,
# written by whichever server builds), so they run side by side and take turns, through a
# lock, for the build tests: SQLite builds first, PostgreSQL last.
build_lock=$(mktemp)
builds() {
    (flock 9 && "$@" tests/builds) 9>"$build_lock"
}
sqlite_chain() {
    local failed=0
    builds sqlite_suite || failed=1
    sqlite_suite --ignore=tests/builds || failed=1
    return $failed
}
postgres_chain() {
    local failed=0
    postgres_suite --ignore=tests/builds || failed=1
    builds postgres_suite || failed=1
    return $failed
}

echo "== SQLite + local storage and PostgreSQL + S3 storage (SeaweedFS), side by side"
sqlite_chain > >(sed -u 's/^/[sqlite] /') 2>&1 &
sqlite_pid=$!
postgres_chain > >(sed -u 's/^/[postgres] /') 2>&1 &
postgres_pid=$!
wait $sqlite_pid || status=$?
wait $postgres_pid || status=$?
rm -f "$build_lock"
exit $status
