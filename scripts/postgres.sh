# Use the PostgreSQL at 127.0.0.1:5432 (database test, trust auth) when it answers;
# otherwise start a private instance owned by this checkout.

ensure_postgres() {
    export CARGOHOLD_TEST_PG=${CARGOHOLD_TEST_PG:-postgresql://postgres@127.0.0.1:5432/test}
    if .venv/bin/python - "$CARGOHOLD_TEST_PG" <<'PY' 2>/dev/null; then return 0; fi
import sys, psycopg
psycopg.connect(sys.argv[1], connect_timeout=3).close()
PY
    apt_install postgresql
    local bindir
    bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    local datadir=${TMPDIR:-/tmp}/cargohold-test-pg
    local port=55432
    if ! id postgres >/dev/null 2>&1; then
        useradd --system --home /var/lib/postgresql postgres
    fi
    if [ ! -f "$datadir/PG_VERSION" ]; then
        mkdir -p "$datadir" && chown postgres "$datadir"
        su postgres -c "$bindir/initdb -D $datadir -A trust -U postgres" >/dev/null
    fi
    if ! su postgres -c "$bindir/pg_ctl -D $datadir status" >/dev/null 2>&1; then
        su postgres -c "$bindir/pg_ctl -D $datadir -l $datadir/log -o '-p $port -k /tmp -c listen_addresses=127.0.0.1' -w start" >/dev/null
    fi
    su postgres -c "$bindir/psql -h 127.0.0.1 -p $port -U postgres -tc \"SELECT 1 FROM pg_database WHERE datname='test'\"" | grep -q 1 \
        || su postgres -c "$bindir/createdb -h 127.0.0.1 -p $port -U postgres test"
    export CARGOHOLD_TEST_PG=postgresql://postgres@127.0.0.1:$port/test
}
