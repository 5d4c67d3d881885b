#!/bin/sh
# Make sure a PostgreSQL server for the test suite answers and print its URL.
#
# 1. STATEMACHINE_TEST_PG, if set, is used as is (it must answer).
# 2. Otherwise a server on 127.0.0.1:5432; if none answers, the local Debian cluster is
#    started (pg_ctlcluster), and if PostgreSQL is not installed it is installed with apt-get.
#    The `test` database is created if missing; loopback connections of `postgres` must be
#    trusted, which is configured on a cluster this script had to start or install.
# Never exits 0 without a reachable server: the suite must not skip PostgreSQL silently.
set -eu

DEFAULT_URL="postgresql://postgres@127.0.0.1:5432/test"

say() { echo "pg_test_server: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

answers() { pg_isready -q -h 127.0.0.1 -p 5432 -t 2 2>/dev/null; }

if [ -n "${STATEMACHINE_TEST_PG:-}" ]; then
    if command -v psql >/dev/null 2>&1 && ! psql "$STATEMACHINE_TEST_PG" -Atqc 'SELECT 1' >/dev/null; then
        say "STATEMACHINE_TEST_PG does not answer"
        exit 1
    fi
    echo "$STATEMACHINE_TEST_PG"
    exit 0
fi

started=no
if ! command -v pg_isready >/dev/null 2>&1; then
    say "PostgreSQL is not installed; installing it with apt-get"
    as_root apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q postgresql >&2
fi
if ! answers; then
    for version in $(ls /etc/postgresql 2>/dev/null | sort -rn); do
        for cluster in $(ls "/etc/postgresql/$version"); do
            say "starting cluster $version/$cluster"
            as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start >&2 || true
            started=yes
        done
    done
    if [ "$started" = no ] && command -v pg_createcluster >/dev/null 2>&1; then
        version=$(ls /usr/lib/postgresql | sort -rn | head -n1)
        say "creating cluster $version/main"
        as_root pg_createcluster "$version" main --start >&2
        started=yes
    fi
    tries=0
    until answers; do
        tries=$((tries + 1))
        if [ "$tries" -gt 30 ]; then
            say "no PostgreSQL server answers on 127.0.0.1:5432"
            exit 1
        fi
        sleep 0.5
    done
fi

if ! psql "postgresql://postgres@127.0.0.1:5432/postgres" -Atqc 'SELECT 1' >/dev/null 2>&1; then
    # A fresh Debian cluster asks loopback clients for a password; trust them for the tests.
    hba=$(as_root runuser -u postgres -- psql -Atqc 'SHOW hba_file')
    say "trusting loopback connections in $hba"
    as_root sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
    as_root runuser -u postgres -- psql -Atqc 'SELECT pg_reload_conf()' >/dev/null
    sleep 0.2
fi
if [ "$(psql "postgresql://postgres@127.0.0.1:5432/postgres" -Atqc \
        "SELECT count(*) FROM pg_database WHERE datname = 'test'")" = 0 ]; then
    psql "postgresql://postgres@127.0.0.1:5432/postgres" -qc 'CREATE DATABASE test' >&2
fi
echo "$DEFAULT_URL"
