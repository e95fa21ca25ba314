#!/usr/bin/env bash
# test/deb/run.sh - CI: build the Debian packages with `make deb`, install
# them with apt-get, and test what they installed:
#   - the package owns the extension's library, control file and every SQL
#     script of the tree (src/synclog--*.sql), unmodified (dpkg --verify);
#   - CREATE EXTENSION gives the tree's default_version;
#   - the regression and isolation suites of the tree pass against the
#     installed extension on a throw-away cluster (test/lib/cluster.sh);
#   - /usr/bin/synclog-follow runs, and follows a document with --verify;
#   - test/deb/client_smoke.c compiles against the installed header and
#     library (-lpq -lxxhash -lsqlite3 -lzstd) and follows a document across a rotation.
# At the end it removes the packages again (SL_DEB_KEEP=1 keeps them).
#
# Must never: run on a machine whose system PostgreSQL others are testing
# against: it replaces whatever synclog is installed there, and removes it.
# Run as root, from CI (.ci/run) or by hand on a machine of your own.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh

PKG_EXT=postgresql-15-synclog
PKG_CLIENT=synclog-client
PG_CONFIG_SYS=/usr/lib/postgresql/15/bin/pg_config

if [ "$(id -u)" != 0 ]; then
	echo "test/deb/run.sh: must run as root (it installs packages)" >&2
	exit 1
fi

# Not the caller's cluster (.ci/run exports its own): this script starts
# and stops one of its own.
unset PGDATA PGHOST PGPORT SL_DIR

WORK=$(mktemp -d /tmp/synclog-deb.XXXXXX)
chmod 755 "$WORK"

cleanup() {
	sl_stop_cluster
	if [ "${SL_DEB_KEEP:-}" != 1 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "$PKG_EXT" "$PKG_CLIENT" \
			>/dev/null 2>&1 || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
	echo "deb: FAILED: $*" >&2
	exit 1
}

echo "== building the packages (make deb)"
make -s deb DEB_OUT="$WORK/debs"
ext_deb=$(ls "$WORK"/debs/${PKG_EXT}_*.deb)
client_deb=$(ls "$WORK"/debs/${PKG_CLIENT}_*.deb)

echo "== installing them (apt-get install)"
# --reinstall: a package of the same version may be installed already, with
# its files overwritten since by a `make install` of the tree.
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall \
	"$ext_deb" "$client_deb"

echo "== files of the installed packages"
changed=$(dpkg --verify "$PKG_EXT" "$PKG_CLIENT" 2>&1) || changed="${changed:-dpkg --verify failed}"
[ -z "$changed" ] || fail "installed files differ from the packages: $changed"
pkglibdir=$($PG_CONFIG_SYS --pkglibdir)
extdir=$($PG_CONFIG_SYS --sharedir)/extension
owned() {
	dpkg -S "$1" 2>/dev/null | grep -q "^$2: " || fail "$1 is not installed by $2"
}
owned "$pkglibdir/synclog.so" "$PKG_EXT"
owned "$extdir/synclog.control" "$PKG_EXT"
for f in src/synclog--*.sql; do
	owned "$extdir/$(basename "$f")" "$PKG_EXT"
	cmp -s "$f" "$extdir/$(basename "$f")" || fail "$extdir/$(basename "$f") differs from $f"
done
owned /usr/bin/synclog-follow "$PKG_CLIENT"
owned /usr/include/synclog/synclog_client.h "$PKG_CLIENT"
owned /usr/include/synclog/synclog_core.h "$PKG_CLIENT"
owned "/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/libsynclog_client.a" "$PKG_CLIENT"

sl_start_cluster
cp -a . "$SL_DIR/tree"
chown -R postgres:postgres "$SL_DIR/tree"

echo "== CREATE EXTENSION gives the tree's default_version"
want=$(sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" synclog.control)
sl_as_pg psql -X -q -v ON_ERROR_STOP=1 -d postgres -c 'CREATE DATABASE deb_smoke'
got=$(sl_as_pg psql -X -qAt -v ON_ERROR_STOP=1 -d deb_smoke \
	-c 'CREATE EXTENSION synclog' \
	-c "SELECT extversion FROM pg_extension WHERE extname = 'synclog'")
if [ -z "$want" ] || [ "$got" != "$want" ]; then
	fail "CREATE EXTENSION installed version '$got', synclog.control says '$want'"
fi
echo "synclog $got"

echo "== regression and isolation suites against the installed extension"
if ! sl_as_pg make -C "$SL_DIR/tree" -s installcheck PG_CONFIG=$PG_CONFIG_SYS \
	PROVE_TESTS= TAP_TESTS=; then
	for f in "$SL_DIR"/tree/regression.diffs "$SL_DIR"/tree/test/isolation/regression.diffs; do
		[ -f "$f" ] && cat "$f"
	done
	fail "suites against the installed extension"
fi

# A document with three entries, two of them from one client (watermarks).
sl_as_pg psql -X -q -v ON_ERROR_STOP=1 -d deb_smoke <<'SQL' >/dev/null
SELECT synclog.create_doc('deb');
SELECT synclog.append('deb', ARRAY['\x01', '\x02']::bytea[], ARRAY['one', 'two']::bytea[]);
SELECT synclog.append('deb', ARRAY['\x02']::bytea[], ARRAY[NULL]::bytea[], 'deb-client', 1);
SELECT synclog.append('deb', ARRAY['\x03']::bytea[], ARRAY['three']::bytea[], 'deb-client', 2);
SQL
dsn="host=$PGHOST port=$PGPORT user=postgres dbname=deb_smoke"
# log=L lsn=N hash=H of the document's current log at its head.
server_pos() {
	sl_as_pg psql -X -qAt -v ON_ERROR_STOP=1 -d deb_smoke -c \
		"SELECT 'log=' || log_id || ' lsn=' || head_lsn || ' hash=' || encode(snapshot_hash, 'hex')
		   FROM synclog.current_log('deb')"
}

echo "== /usr/bin/synclog-follow"
[ "$(command -v synclog-follow)" = /usr/bin/synclog-follow ] ||
	fail "synclog-follow on the PATH is '$(command -v synclog-follow)'"
help=$(synclog-follow --help) || fail "synclog-follow --help exited with $?"
grep -q '^usage: synclog-follow' <<<"$help" || fail "synclog-follow --help: $help"
out=$(synclog-follow --dsn "$dsn" --doc deb --dir "$WORK/follow" --once --verify --quiet --no-ack) ||
	fail "synclog-follow --once --verify exited with $?: $out"
echo "$out"
grep -q '^verify: ok$' <<<"$out" || fail "synclog-follow did not verify"
grep -q ' lsn=3 ' <<<"$out" || fail "synclog-follow did not reach lsn 3"

echo "== a program built against the installed client library"
# -I for libpq-fe.h alone: client_smoke calls libpq itself.
cc -std=gnu99 -Wall -Wextra -Werror -I"$($PG_CONFIG_SYS --includedir)" \
	-o "$WORK/client_smoke" test/deb/client_smoke.c -lsynclog_client -lpq -lxxhash -lsqlite3 -lzstd || fail "client_smoke does not build against the package"
# client_smoke rotates 'deb' (synclog.compact), so the current log's head is
# its base and the snapshot hash is the hash at the head.
out=$("$WORK/client_smoke" "$dsn" deb "$WORK/smoke") || fail "client_smoke exited with $?"
echo "$out"
# The first sync downloads the snapshot or catches up from the empty state
# (whichever synclog.sync_cost says is smaller); the second switches by
# the marker and downloads nothing.
want="$(server_pos) switches=1 downloads=[01]"
[[ "$out" =~ ^$want$ ]] || fail "client_smoke: expected '$want'"

echo "deb: packages built, installed and tested"
