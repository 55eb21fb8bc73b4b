#!/bin/sh
# Start a local PostgreSQL for hornet's spent-serial store tests and print the DSN.
#
# Debian/Ubuntu, run as root. Installs the distribution's postgresql package if needed,
# starts a cluster listening on the unix socket and loopback only, creates a role and a
# database "hornet", then prints a DSN for HORNET_TEST_POSTGRES_DSN, e.g.:
#   export HORNET_TEST_POSTGRES_DSN="$(scripts/start_postgres.sh)"
set -eu

DB=${HORNET_PG_DB:-hornet}
ROLE=${HORNET_PG_ROLE:-hornet}
PORT=${HORNET_PG_PORT:-5432}

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null 2>&1 || {
        apt-get update -q >/dev/null 2>&1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
    }
fi
VERSION=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$VERSION main$"; then
    pg_createcluster "$VERSION" main --port "$PORT" >/dev/null
fi
pg_ctlcluster "$VERSION" main start -o "-c listen_addresses=127.0.0.1" >/dev/null 2>&1 || true
pg_ctlcluster "$VERSION" main status >/dev/null

su postgres -c "psql -q -p $PORT -tc \"SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'\"" \
    | grep -q 1 || su postgres -c "psql -q -p $PORT -c \"CREATE ROLE $ROLE LOGIN PASSWORD '$ROLE'\""
su postgres -c "psql -q -p $PORT -tc \"SELECT 1 FROM pg_database WHERE datname = '$DB'\"" \
    | grep -q 1 || su postgres -c "createdb -p $PORT -O $ROLE $DB"

echo "postgresql://$ROLE:$ROLE@127.0.0.1:$PORT/$DB"
