#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the store tests: prints its SQLAlchemy URL, then its folder.
# `.ci/postgres.sh stop FOLDER` stops that server and removes the folder.
# Exits non-zero (printing why) when no server binaries exist; the tests then skip and say so.
set -euo pipefail
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$BIN" ]; then echo "no PostgreSQL server binaries under /usr/lib/postgresql" >&2; exit 1; fi
RUN=()
[ "$(id -u)" = 0 ] && RUN=(runuser -u postgres --)
if [ "${1:-}" = stop ]; then
    "${RUN[@]}" "$BIN/pg_ctl" -D "$2/data" -m fast -w stop >/dev/null
    rm -rf "$2"
    exit 0
fi
DIR=$(mktemp -d /tmp/hwnas-pg.XXXXXX)
PORT=${HWNAS_PG_PORT:-$(python3 -c "import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])")}
[ "$(id -u)" = 0 ] && chown postgres "$DIR"
"${RUN[@]}" "$BIN/initdb" -D "$DIR/data" -A trust -U hwnas >/dev/null
"${RUN[@]}" "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w \
    -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1" start >/dev/null
"${RUN[@]}" "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U hwnas hwnas_test
echo "postgresql+psycopg://hwnas@127.0.0.1:$PORT/hwnas_test"
echo "$DIR"
