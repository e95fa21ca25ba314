# test/lib/cluster.sh - sourced by .ci/run, test/walkthrough.sh and the
# benchmarks: install what synclog needs from Debian, build and install the
# extension, and run a throw-away PostgreSQL cluster owned by the postgres
# user in a temporary directory (unix socket there, a free port).
#
# Must never: touch a cluster it did not create, or listen on anything but
# a unix socket in its own directory.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

# Debian packages the build, the tests, the coverage report (lcov) and the
# benchmarks need (libzstd-dev, liblz4-dev, zlib1g-dev: compression and
# the codecs its benchmark compares; the last line: building the Debian packages,
# test/deb/run.sh).
SYNCLOG_PACKAGES="build-essential postgresql-15 postgresql-server-dev-15
	postgresql-client-15 libxxhash-dev libzstd-dev libpq-dev libsqlite3-dev sqlite3 time libipc-run-perl valgrind
	postgresql-15-pgq3 postgresql-15-cron gnuplot-nox clang libclang-rt-14-dev lcov
	liblz4-dev zlib1g-dev
	dpkg-dev debhelper postgresql-server-dev-all"

sl_install_deps() {
	if [ "$(id -u)" != 0 ]; then
		echo "not root: assuming the packages are installed" >&2
		return 0
	fi
	# shellcheck disable=SC2086
	if ! dpkg -s $SYNCLOG_PACKAGES >/dev/null 2>&1; then
		apt-get update -q
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			$SYNCLOG_PACKAGES
	fi
}

# A test build (test hooks on); the Debian packages are built without them.
sl_build_install() {
	make -s clean >/dev/null
	make -s -j2 SYNCLOG_TEST_HOOKS=1
	make -s install SYNCLOG_TEST_HOOKS=1
}

sl_free_port() {
	local p
	for p in $(seq 54320 54420); do
		if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null &&
			[ ! -e "/tmp/.s.PGSQL.$p" ]; then
			echo "$p"
			return 0
		fi
	done
	echo "no free port" >&2
	return 1
}

# Run a command as the postgres user (initdb refuses root), keeping PG*
# variables.
sl_as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- env PATH="$PG_BIN:$PATH" PGHOST="${PGHOST:-}" \
			PGPORT="${PGPORT:-}" PGDATABASE="${PGDATABASE:-}" "$@"
	else
		env PATH="$PG_BIN:$PATH" "$@"
	fi
}

# sl_start_cluster [extra postgresql.conf lines...]
# Sets SL_DIR, PGHOST, PGPORT, PGDATA and exports them.
sl_start_cluster() {
	SL_DIR=$(mktemp -d /tmp/synclog.XXXXXX)
	chmod 755 "$SL_DIR"
	[ "$(id -u)" = 0 ] && chown postgres:postgres "$SL_DIR"
	PGDATA=$SL_DIR/data
	PGHOST=$SL_DIR
	PGPORT=$(sl_free_port)
	export SL_DIR PGDATA PGHOST PGPORT
	sl_as_pg initdb -A trust -U postgres -D "$PGDATA" >"$SL_DIR/initdb.log" 2>&1 ||
		{ cat "$SL_DIR/initdb.log"; return 1; }
	{
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$SL_DIR'"
		echo "port = $PGPORT"
		echo "fsync = on"
		for line in "$@"; do echo "$line"; done
	} >>"$PGDATA/postgresql.conf"
	sl_as_pg pg_ctl -D "$PGDATA" -l "$SL_DIR/server.log" -w start >/dev/null
	export PGUSER=postgres
	echo "cluster: $PGDATA (socket $PGHOST, port $PGPORT)"
}

sl_stop_cluster() {
	if [ -n "${PGDATA:-}" ] && [ -f "$PGDATA/postmaster.pid" ]; then
		sl_as_pg pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null || true
	fi
}
