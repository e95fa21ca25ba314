#!/usr/bin/env bash
# The README's first command: install what is needed, build and install
# synclog, start a throw-away cluster and walk through append, rotation,
# the end-log marker and a client's switch-over.  Pass --keep to leave the
# cluster running afterwards and print how to connect to it.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib/cluster.sh

keep=no
[ "${1:-}" = "--keep" ] && keep=yes

sl_install_deps >/dev/null
sl_build_install
sl_start_cluster
if [ "$keep" = no ]; then
	trap 'sl_stop_cluster' EXIT
fi
sl_as_pg psql -X -q -d postgres -f test/walkthrough.sql

# The same from the reference client (src/client): a first sync downloads
# the document, then a rotation happens and the next sync crosses its
# marker, checks the hash and switches without downloading anything.
echo
echo "== 9. The reference client, synclog-follow, keeps a local replica in a directory:"
follow() {
	sl_as_pg src/client/synclog-follow --dsn "host=$PGHOST port=$PGPORT dbname=postgres user=postgres" \
		--doc walkthrough-client --dir "$SL_DIR/replica" --once --no-progress "$@" |
		grep -E '^(download-done|marker|switch|verify|stats):' | sed 's/^/   /'
}
sl_as_pg psql -X -q -d postgres -o /dev/null <<'SQL'
SELECT synclog.create_doc('walkthrough-client');
SELECT synclog.append('walkthrough-client', ARRAY['page-1', 'page-2']::bytea[], ARRAY['hello', 'world']::bytea[]);
SQL
echo "-- first sync: nothing local yet, so it downloads the snapshot and reads the log"
follow
sl_as_pg psql -X -q -d postgres -o /dev/null <<'SQL'
SELECT synclog.append('walkthrough-client', ARRAY['page-2']::bytea[], ARRAY['there']::bytea[]);
SELECT synclog.compact('walkthrough-client');
SELECT synclog.append('walkthrough-client', ARRAY['page-3']::bytea[], ARRAY['!']::bytea[]);
SQL
echo "-- the coordinator rotated; the next sync reaches the marker, its own hash matches, it switches:"
follow --verify

if [ "$keep" = yes ]; then
	echo
	echo "The cluster is still running.  Connect with:"
	echo "  psql -h $PGHOST -p $PGPORT -U postgres postgres"
	echo "Stop it with:"
	echo "  runuser -u postgres -- $PG_BIN/pg_ctl -D $PGDATA stop"
fi
