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

if [ "$keep" = yes ]; then
	echo
	echo "The cluster is still running.  Connect with:"
	echo "  psql -h $PGHOST -p $PGPORT -U postgres postgres"
	echo "Stop it with:"
	echo "  runuser -u postgres -- $PG_BIN/pg_ctl -D $PGDATA stop"
fi
