#!/usr/bin/env bash
# test/bench/run.sh - synclog's benchmarks (`make bench`).
#
#   BENCH_MODE=smoke|quick|full  (default quick)
#   BENCH_OUT=FILE               where the report goes (default: BENCHMARKS.md
#                                at the repository root; in smoke mode a
#                                temporary file, since smoke sizes say nothing)
#   BENCH_KEEP=1                 keep the scratch directory (pgbench logs,
#                                memory samples) and print its path
#   BENCH_ONLY="9 11"            (development) run only these areas (and the
#                                ones they build on); the report has only
#                                their tables
#   BENCH_SET="ST_CYCLES=150"    (development) override a size of the mode
#   BENCH_OLD_FOLLOW=BIN         an older synclog-follow, the baseline of
#                                area 14 (the client as a local store)
#   BENCH_ISOLATE=1              (root, own cluster) copy the server
#                                installation into the scratch directory and
#                                build the committed HEAD into it, so that a
#                                `make install` elsewhere cannot change the
#                                code under the run
#
# Every figure is measured against a baseline in the same run on the same
# server (a plain table doing the same work), repeated (smoke 1, quick 3,
# full 5 runs; the appends of areas 1-3, which vary most, 1, 5 and 7) and
# reported as min/median/max and as a ratio of medians.
#
# The server: if PGHOST is set and a server answers there (as in .ci/run),
# the benchmarks run in a new database of that cluster, dropped at the end.
# Otherwise a throw-away cluster is started with test/lib/cluster.sh
# (shared_buffers = 512MB, max_wal_size = 4GB) and stopped at the end.  The
# extension must already be installed (`make && make install`).
#
# Exits non-zero only when something fails; a missed target is reported, not
# an error.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lib/cluster.sh
. "$ROOT/test/lib/cluster.sh"
# shellcheck source=lib.sh
. "$HERE/lib.sh"
# shellcheck source=areas.sh
. "$HERE/areas.sh"
# shellcheck source=area15.sh
. "$HERE/area15.sh"
# shellcheck source=area16.sh
. "$HERE/area16.sh"
export PATH="$PG_BIN:$PATH"

MODE=${BENCH_MODE:-quick}
case $MODE in
smoke)
	REPS=1
	REPS_APPEND=1		# runs of each append measurement (areas 1-3)
	T_APPEND=2			# seconds per pgbench run
	READ_N=256			# entries of 4 KiB in the log that is read (1 MiB)
	READ_PASSES=1		# reads of the whole log per measurement
	SMALL_K=256			# keys of 4 KiB in the small state (1 MiB)
	BIG_K=1024			# keys of 4 KiB in the big state (4 MiB)
	LOG5_N=100			# entries in the log rotated on each state
	ROT_N=256			# entries of 4 KiB in the log rotated under load
	MEM_N=256			# entries of 4 KiB in the log rotated on the big state
	MX_LOGS="100 300"			# rotation matrix: log sizes (entries of 100 bytes)
	MX_STATES_K="64 256"		# ... and state sizes (keys of 4 KiB)
	GC_STALE_K="500"			# gc without statistics: document sizes (keys)
	SW_STATES_K="64 256"		# switch-over: state sizes (keys of 4 KiB)
	CS_STATES_K="256"			# client store: state sizes (keys of 4 KiB)
	CS_PAGES=256				# ... and pages of the page-file document
	SC_BASE_DOCS=1000			# scale: the small population (baseline)
	SC_DOCS=3000				# ... and the large one
	ST_CYCLES=4					# steady state: rotate-and-collect cycles
	ST_CYCLE_S=1				# ... seconds between cycles
	ST_WARMUP=2					# ... cycles before them, not counted
	ST_DOCS=2 ST_KEYS=200 ST_VSIZE=100 ST_RATE=100	# ... documents, keys, value bytes, appends/s
	ZIP_COMMITS=60 ZIP_JSON=2000	# compression: page-store commits, JSON deltas
	CU_COMMITS=90 CU_PAGES=128 CU_ROT=4	# catch-up: page-store commits, pages in use, rotations
	CU_BIG_PAGES=1024 CU_BIG_TAIL=5	# ... pages of the database of the one-page repair, commits after its rotation
	CU_MEM_MB=8 CU_MEM_K=1024	# ... MiB of log caught up over for the memory, keys it rewrites
	;;
quick)
	REPS=3
	REPS_APPEND=5
	T_APPEND=10
	READ_N=16384		# 64 MiB
	READ_PASSES=5
	SMALL_K=256			# 1 MiB
	BIG_K=65536			# 256 MiB
	LOG5_N=1000
	ROT_N=16384			# 64 MiB
	MEM_N=16384			# 64 MiB
	MX_LOGS="1000 10000"
	MX_STATES_K="256 16384"		# 1 MiB, 64 MiB
	GC_STALE_K="1000 4000"
	SW_STATES_K="256 4096 16384"	# 1, 16, 64 MiB
	CS_STATES_K="51200"			# 200 MiB
	CS_PAGES=16384				# 64 MiB
	SC_BASE_DOCS=1000
	SC_DOCS=100000
	ST_CYCLES=50
	ST_CYCLE_S=3
	ST_WARMUP=2
	ST_DOCS=10 ST_KEYS=2000 ST_VSIZE=1024 ST_RATE=200
	ZIP_COMMITS=1000 ZIP_JSON=20000
	CU_COMMITS=3000 CU_PAGES=1280 CU_ROT=16	# 5 MiB
	CU_BIG_PAGES=51200 CU_BIG_TAIL=100	# 200 MiB
	CU_MEM_MB=1024 CU_MEM_K=16384	# 1 GiB of log over a 64 MiB state
	;;
full)
	REPS=5
	REPS_APPEND=7
	T_APPEND=30
	READ_N=16384
	READ_PASSES=10
	SMALL_K=256
	BIG_K=65536
	LOG5_N=1000
	ROT_N=16384
	MEM_N=16384
	MX_LOGS="1000 10000 100000"
	MX_STATES_K="256 16384 65536"	# 1, 64, 256 MiB
	GC_STALE_K="1000 4000 16000"
	SW_STATES_K="256 4096 16384 65536"	# 1, 16, 64, 256 MiB
	CS_STATES_K="51200 262144"	# 200 MiB, 1 GiB
	CS_PAGES=65536				# 256 MiB
	SC_BASE_DOCS=1000
	SC_DOCS=100000
	ST_CYCLES=50
	ST_CYCLE_S=10
	ST_WARMUP=2
	ST_DOCS=10 ST_KEYS=10000 ST_VSIZE=1024 ST_RATE=200
	ZIP_COMMITS=3000 ZIP_JSON=50000
	CU_COMMITS=3000 CU_PAGES=1280 CU_ROT=16
	CU_BIG_PAGES=51200 CU_BIG_TAIL=100
	CU_MEM_MB=1024 CU_MEM_K=16384
	;;
*)
	bench_die "BENCH_MODE must be smoke, quick or full (not $MODE)"
	;;
esac
# BENCH_SET="ST_CYCLES=150 ST_CYCLE_S=3" (development): override sizes of
# the mode; the report's notes show the values used.
for kv in ${BENCH_SET:-}; do
	[[ $kv =~ ^[A-Z][A-Z0-9_]*=[0-9]+$ ]] || bench_die "BENCH_SET: not NAME=number: $kv"
	declare "$kv"
done
SNAP_PAGE=1000		# rows per snapshot page: 1000 x 4 KiB = 4 MiB

W=$(mktemp -d /tmp/synclog-bench.XXXXXX)
chmod 755 "$W"
OWN_CLUSTER=0
DB=
EXTRA_DBS=()
START_DATE=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
ISOLATED=
isolate_install() {
	local bindir d
	# A private copy of the server installation (Debian layout: everything
	# under /usr, found again relative to the binaries), with the extension
	# built from the committed HEAD: what is measured cannot change under
	# the run when someone runs `make install`, and is exactly one commit.
	[ "$(id -u)" = 0 ] || bench_die "BENCH_ISOLATE=1 needs root (it installs into a private copy)"
	log "isolating: copying the server installation and building HEAD into it"
	bindir=$(pg_config --bindir)
	for d in "$(dirname "$bindir")" "$(pg_config --sharedir)" "$(pg_config --includedir)"; do
		case $d in /usr/*) ;; *) bench_die "BENCH_ISOLATE=1 expects the Debian layout under /usr ($d)" ;; esac
		mkdir -p "$W/pg/$(dirname "${d#/usr/}")"
		cp -a "$d" "$W/pg/${d#/usr/}"
	done
	PG_BIN=$W/pg/${bindir#/usr/}
	export PATH="$PG_BIN:$PATH"
	mkdir -p "$W/src"
	ISOLATED_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
	git -C "$ROOT" archive "$ISOLATED_COMMIT" | tar -x -C "$W/src"
	make -C "$W/src" -s -j2 PG_CONFIG="$PG_BIN/pg_config" >"$W/build.log" 2>&1 &&
		make -C "$W/src" -s install PG_CONFIG="$PG_BIN/pg_config" >>"$W/build.log" 2>&1 ||
		{ cat "$W/build.log" >&2; bench_die "building HEAD failed"; }
	chmod -R a+rX "$W/pg"
	ISOLATED="built from \`git archive HEAD\` into a private copy of the server installation (BENCH_ISOLATE=1)"
}

START_S=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

cleanup() {
	local rc=$?
	set +e
	# Background jobs this script started (samplers, pgbench), by pid.
	for j in $(jobs -p); do kill "$j" 2>/dev/null; done
	wait 2>/dev/null
	if [ "$rc" != 0 ] && [ "$OWN_CLUSTER" = 1 ] && [ -f "${SL_DIR:-}/server.log" ]; then
		echo "bench: last lines of the server log:" >&2
		tail -40 "$SL_DIR/server.log" >&2
	fi
	if [ "$OWN_CLUSTER" = 1 ]; then
		sl_stop_cluster
		[ -n "${SL_DIR:-}" ] && rm -rf "$SL_DIR"
	elif [ -n "$DB" ]; then
		for d in "$DB" "${EXTRA_DBS[@]}"; do
			psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$d\"" >/dev/null 2>&1
		done
	fi
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "bench: scratch files kept in $W" >&2
	else
		rm -rf "$W"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "${BENCH_ISOLATE:-0}" = 1 ] && isolate_install
# The installed library: if it changes under a run (a `make install`
# elsewhere), new connections load code that does not match the schema the
# run created, and the figures mean nothing.
SO=$(pg_config --pkglibdir)/synclog.so
so_stamp() {
	stat -c '%Y %s' "$SO" 2>/dev/null || echo missing
}
SO_STAMP=$(so_stamp)

# The server ------------------------------------------------------------------

if [ -z "$ISOLATED" ] && [ -n "${PGHOST:-}" ] && psql -X -q -d postgres -c 'SELECT 1' >/dev/null 2>&1; then
	log "using the running server at $PGHOST (port ${PGPORT:-default})"
	DB=synclog_bench_$$
else
	OWN_CLUSTER=1
	sl_start_cluster "shared_buffers = 512MB" "max_wal_size = 4GB" >&2
	# Client tools run as whoever runs this script; server files are the
	# postgres user's.
	export PGUSER=postgres
	DB=synclog_bench
fi
# The scratch directory must be writable by the clients and readable by
# nobody else's business; pgbench writes its logs there.
psql -X -q -d postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$DB\"" >/dev/null
export PGDATABASE=$DB
q -f "$HERE/setup.sql" >/dev/null

log "compiling the libpq client"
gcc -O2 -Wall -I"$(pg_config --includedir)" -o "$W/readlog" "$HERE/readlog.c" \
	-L"$(pg_config --libdir)" -lpq
READLOG=$W/readlog

# The sources of the code under test (the private build's, when isolated):
# the reference client and the core come from there.
if [ -n "$ISOLATED" ]; then SRC_ROOT=$W/src; else SRC_ROOT=$ROOT; fi
log "compiling the reference client (synclog-follow)"
gcc -O2 -Wall -I"$SRC_ROOT/src/client" -I"$SRC_ROOT/src/core" -I"$(pg_config --includedir)" \
	-o "$W/synclog-follow" "$SRC_ROOT/src/client/synclog-follow.c" "$SRC_ROOT"/src/client/client_*.c \
	"$SRC_ROOT"/src/core/synclog_*.c -L"$(pg_config --libdir)" -lpq -lxxhash -lsqlite3 -lzstd ||
	bench_die "building the reference client failed"
FOLLOW=$W/synclog-follow

# Where the report goes (the plots go next to it, under bench/).
if [ -n "${BENCH_OUT:-}" ]; then
	OUT_FILE=$BENCH_OUT
elif [ "$MODE" = smoke ]; then
	OUT_FILE=$(mktemp /tmp/synclog-bench-smoke.XXXXXX.md)
else
	OUT_FILE=$ROOT/BENCHMARKS.md
fi

# 100 random bytes: the value of every small append.
HEX100=$(head -c 100 /dev/urandom | od -An -tx1 | tr -d ' \n')

# pgbench scripts: an append of one 100-byte value at a random key, and
# the same bytes as one INSERT into an indexed table.
cat >"$W/append1.sql" <<EOF
\set k random(1, 1000000)
SELECT synclog.append('bench1', ARRAY[int4send(:k)], ARRAY['\\x$HEX100'::bytea]);
EOF
cat >"$W/plain1.sql" <<EOF
\set k random(1, 1000000)
INSERT INTO bench.plain1 (doc, payload) VALUES ('bench1', int4send(:k) || '\\x$HEX100'::bytea);
EOF
cat >"$W/append2.sql" <<EOF
\set k random(1, 1000000)
\set d random(1, 100)
SELECT synclog.append('bench2_' || :d, ARRAY[int4send(:k)], ARRAY['\\x$HEX100'::bytea]);
EOF
cat >"$W/plain2.sql" <<EOF
\set k random(1, 1000000)
\set d random(1, 100)
INSERT INTO bench.plain2 (doc, payload) VALUES ('bench2_' || :d, int4send(:k) || '\\x$HEX100'::bytea);
EOF
cat >"$W/append6.sql" <<EOF
\set k random(1, 1000000)
SELECT synclog.append('rot', ARRAY[int4send(:k)], ARRAY['\\x$HEX100'::bytea]);
EOF
# The same appends through the other two baselines a user would pick: one
# PgQ event carrying the same bytes hex-encoded (ev_data is text; the
# document is the event type), and the PL/pgSQL implementation in setup.sql.
cat >"$W/pgq1.sql" <<EOF
\set k random(1, 1000000)
SELECT pgq.insert_event('bench_q', 'bench1', encode(int4send(:k) || '\\x$HEX100'::bytea, 'hex'));
EOF
cat >"$W/pl1.sql" <<EOF
\set k random(1, 1000000)
SELECT bench.pl_append('bench1', ARRAY[int4send(:k)], ARRAY['\\x$HEX100'::bytea]);
EOF
cat >"$W/pgq2.sql" <<EOF
\set k random(1, 1000000)
\set d random(1, 100)
SELECT pgq.insert_event('bench_q', 'bench2_' || :d, encode(int4send(:k) || '\\x$HEX100'::bytea, 'hex'));
EOF
cat >"$W/pl2.sql" <<EOF
\set k random(1, 1000000)
\set d random(1, 100)
SELECT bench.pl_append('bench2_' || :d, ARRAY[int4send(:k)], ARRAY['\\x$HEX100'::bytea]);
EOF

# fill DOC N KEYSTEP KEYBASE: append N entries, one 4 KiB value each, at keys
# KEYBASE + i * KEYSTEP (i = 0..N-1), one append per entry, committing every
# 1000 appends: thousands of appends to one document in one transaction get
# slower with every append (each one updates the document row again, and
# finding the row walks all the versions the transaction left behind).
fill() {
	q -c "DO \$\$ BEGIN
	        FOR b IN 0 .. ($2 - 1) / 1000 LOOP
	          PERFORM synclog.append('$1', ARRAY[bench.key(k)], ARRAY[bench.val(k)])
	             FROM (SELECT $4 + i * $3 AS k
	                     FROM generate_series(b * 1000, least(b * 1000 + 999, $2 - 1)) i) s;
	          COMMIT;
	        END LOOP;
	      END \$\$" >/dev/null
}

# build_state DOC K: a document whose state is K keys of 4 KiB, written with
# appends of 1024 keys each and folded by one rotation.
build_state() {
	local doc=$1 k=$2 b
	q -c "SELECT synclog.create_doc('$doc')" >/dev/null
	for ((b = 0; b < k; b += 1024)); do
		q -c "SELECT synclog.append('$doc', array_agg(bench.key(i) ORDER BY i), array_agg(bench.val(i) ORDER BY i))
		        FROM generate_series($b, least($b + 1024, $k) - 1) i" >/dev/null
	done
}

current_log() {
	q -c "SELECT log_id FROM synclog.current_log('$1')"
}

checkpoint() {
	q -c "CHECKPOINT"
}

# append_run LABEL PGBENCH-ARGS...: pgbench_tps, right after a checkpoint.
# Every run of areas 1 and 2 starts in the same state (no checkpoint due,
# none triggered by an earlier run's WAL half-way through this one), and
# pays the full-page images of the pages it touches itself.  The appends
# differ from run to run by up to a tenth on this kind of machine, so these
# areas take REPS_APPEND runs, more than the others.
append_run() {
	checkpoint
	pgbench_tps "$@"
}

# 1 and 3: one connection ---------------------------------------------------

bench_append_one() {
	local r tp tq tl ta tn plain=() pgq=() pl=() app=() notif=()
	log "area 1/3: appends from one connection, ${T_APPEND}s per run"
	area_title 1 "1. Append, one document, one connection"
	area_note 1 "pgbench -n -M prepared -c1 -T $T_APPEND, each statement its own transaction, synchronous_commit = on, fsync = on; :k random:
- synclog: \`synclog.append('bench1', ARRAY[int4send(:k)], ARRAY[<100 bytes>])\`
- plain INSERT: \`INSERT INTO bench.plain1 (doc, payload) VALUES ('bench1', int4send(:k) || <the same 100 bytes>)\` (bigserial primary key)
- PgQ: \`pgq.insert_event('bench_q', 'bench1', encode(int4send(:k) || <the same 100 bytes>, 'hex'))\` (PgQ 3.5 from Debian; ev_data is text, so the bytes travel hex-encoded; no consumer, no ticker)
- PL/pgSQL: \`bench.pl_append('bench1', ARRAY[int4send(:k)], ARRAY[<the same 100 bytes>])\`: a function that bumps the document's counter row (UPDATE ... RETURNING) and inserts the entry into a table keyed by (document, LSN) (test/bench/setup.sql); it does less than synclog.append (no delta encoding or validation, no byte accounting, no rotation policy, no idempotent retry).

Runs alternate plain / PgQ / PL/pgSQL / synclog / synclog with NOTIFY, $REPS_APPEND of each, every one right after a CHECKPOINT."
	area_title 3 "3. Cost of synclog.notify_append"
	area_note 3 "Area 1's appends again, with PGOPTIONS='-c synclog.notify_append=on' (nobody listening), against the same appends with it off (area 1's runs, interleaved)."
	q -c "SELECT synclog.create_doc('bench1')" -c "INSERT INTO bench.pl_doc (name) VALUES ('bench1')" >/dev/null
	for ((r = 1; r <= REPS_APPEND; r++)); do
		tp=$(append_run plain1.$r -c1 -T "$T_APPEND" -f "$W/plain1.sql")
		tq=$(append_run pgq1.$r -c1 -T "$T_APPEND" -f "$W/pgq1.sql")
		tl=$(append_run pl1.$r -c1 -T "$T_APPEND" -f "$W/pl1.sql")
		ta=$(append_run append1.$r -c1 -T "$T_APPEND" -f "$W/append1.sql")
		tn=$(PGOPTIONS='-c synclog.notify_append=on' append_run notify1.$r -c1 -T "$T_APPEND" -f "$W/append1.sql")
		plain+=("$tp"); pgq+=("$tq"); pl+=("$tl"); app+=("$ta"); notif+=("$tn")
		log "  run $r: plain $tp, PgQ $tq, PL/pgSQL $tl, append $ta, append+notify $tn tps"
	done
	record 1 a1_plain "plain INSERT (baseline)" "tx/s" base - - "${plain[*]}"
	record 1 a1_pgq "PgQ insert_event (baseline)" "tx/s" base - - "${pgq[*]}"
	record 1 a1_pl "PL/pgSQL counter row + entries table (baseline)" "tx/s" base - - "${pl[*]}"
	record 1 a1_append "synclog.append vs plain INSERT" "tx/s" subj a1_plain "ratio>=0.9" "${app[*]}"
	record 1 a1_append_q "synclog.append vs PgQ" "tx/s" subj a1_pgq - "${app[*]}"
	record 1 a1_append_l "synclog.append vs PL/pgSQL" "tx/s" subj a1_pl - "${app[*]}"
	wal_rows 1 a1 1 "$REPS_APPEND"
	record 3 a3_off "synclog.append, notify_append off (baseline)" "tx/s" base - - "${app[*]}"
	record 3 a3_on "synclog.append, notify_append on" "tx/s" subj a3_off - "${notif[*]}"
}

# wal_rows AREA ID SUFFIX RUNS: rows for the WAL per transaction of the
# runs plainSUFFIX.r, pgqSUFFIX.r, plSUFFIX.r and appendSUFFIX.r, r = 1..RUNS.
wal_rows() {
	local a=$1 id=$2 sx=$3 n=$4 r v p=() g=() l=() s=()
	for ((r = 1; r <= n; r++)); do
		p+=("$(wal_per_tx "plain$sx.$r")"); g+=("$(wal_per_tx "pgq$sx.$r")")
		l+=("$(wal_per_tx "pl$sx.$r")"); s+=("$(wal_per_tx "append$sx.$r")")
	done
	record "$a" "${id}_wp" "WAL per transaction: plain INSERT (baseline)" bytes base - - "${p[*]}"
	record "$a" "${id}_ws" "WAL per transaction: synclog.append vs plain INSERT" bytes subj "${id}_wp" - "${s[*]}"
	record "$a" "${id}_wq" "WAL per transaction: PgQ vs plain INSERT" bytes subj "${id}_wp" - "${g[*]}"
	record "$a" "${id}_wl" "WAL per transaction: PL/pgSQL vs plain INSERT" bytes subj "${id}_wp" - "${l[*]}"
}

# 2: 100 documents, 8 connections ----------------------------------------------

bench_append_many() {
	local r tp tq tl ta plain=() pgq=() pl=() app=()
	log "area 2: appends to 100 documents from 8 connections, ${T_APPEND}s per run"
	area_title 2 "2. Append, 100 documents, 8 connections"
	area_note 2 "pgbench -n -M prepared -c8 -j2 -T $T_APPEND: each transaction appends one 100-byte value to a document chosen at random from 100 (\`bench2_1\` ... \`bench2_100\`), vs the same bytes INSERTed into one indexed table (doc column chosen the same way), as one PgQ event in one queue (the document as the event type) and through the PL/pgSQL function (100 counter rows). Runs alternate plain / PgQ / PL/pgSQL / synclog, $REPS_APPEND of each, every one right after a CHECKPOINT."
	q -c "SELECT count(synclog.create_doc('bench2_' || i)) FROM generate_series(1, 100) i" \
		-c "INSERT INTO bench.pl_doc (name) SELECT 'bench2_' || i FROM generate_series(1, 100) i" >/dev/null
	for ((r = 1; r <= REPS_APPEND; r++)); do
		tp=$(append_run plain2.$r -c8 -j2 -T "$T_APPEND" -f "$W/plain2.sql")
		tq=$(append_run pgq2.$r -c8 -j2 -T "$T_APPEND" -f "$W/pgq2.sql")
		tl=$(append_run pl2.$r -c8 -j2 -T "$T_APPEND" -f "$W/pl2.sql")
		ta=$(append_run append2.$r -c8 -j2 -T "$T_APPEND" -f "$W/append2.sql")
		plain+=("$tp"); pgq+=("$tq"); pl+=("$tl"); app+=("$ta")
		log "  run $r: plain $tp, PgQ $tq, PL/pgSQL $tl, append $ta tps"
	done
	record 2 a2_plain "plain INSERT, 8 connections (baseline)" "tx/s" base - - "${plain[*]}"
	record 2 a2_pgq "PgQ insert_event, 8 connections (baseline)" "tx/s" base - - "${pgq[*]}"
	record 2 a2_pl "PL/pgSQL, 8 connections (baseline)" "tx/s" base - - "${pl[*]}"
	record 2 a2_append "synclog.append vs plain INSERT, 8 connections" "tx/s" subj a2_plain "ratio>=0.85" "${app[*]}"
	record 2 a2_append_q "synclog.append vs PgQ, 8 connections" "tx/s" subj a2_pgq - "${app[*]}"
	record 2 a2_append_l "synclog.append vs PL/pgSQL, 8 connections" "tx/s" subj a2_pl - "${app[*]}"
	wal_rows 2 a2 2 "$REPS_APPEND"
}

# 4: reading a log ------------------------------------------------------------------

# read_once MODE ARGS...: runs the client, checks the row count, prints MiB/s
# of log payload.
# READ_PASSES passes in a row, so that one measurement lasts long enough.
read_once() {
	local out bytes rows pages secs total=0 p
	for ((p = 1; p <= READ_PASSES; p++)); do
		out=$("$READLOG" "$@") || bench_die "readlog $* failed"
		read -r bytes rows pages secs <<<"$out"
		[ "$rows" -eq "$READ_N" ] || bench_die "readlog $1 returned $rows rows, expected $READ_N"
		total=$(awk -v t="$total" -v s="$secs" 'BEGIN { print t + s }')
	done
	awk -v b="$LOG_BYTES" -v n="$READ_PASSES" -v s="$total" 'BEGIN { printf "%.1f\n", b * n / 1048576 / s }'
}

# pgq_fill QUEUE: the rows of bench.read_plain as PgQ events of QUEUE
# (hex-encoded deltas, in LSN order), with a tick after every 1000 events
# so that a consumer reads them in batches of 1000, like synclog.read's
# pages.  Prints the tick a consumer starts from.
pgq_fill() {
	local t0
	t0=$(q -c "SELECT pgq.force_tick('$1')" -c "SELECT pgq.ticker('$1')" | tail -1)
	[ -n "$t0" ] || t0=$(q -c "SELECT max(tick_id) FROM pgq.tick t JOIN pgq.queue q ON q.queue_id = t.tick_queue WHERE q.queue_name = '$1'")
	q -c "DO \$\$ DECLARE lo bigint; BEGIN
	        FOR lo IN SELECT generate_series(0, max(lsn), 1000) FROM bench.read_plain LOOP
	          PERFORM pgq.insert_event('$1', 'delta', encode(delta, 'hex'))
	             FROM bench.read_plain WHERE lsn > lo AND lsn <= lo + 1000 ORDER BY lsn;
	          COMMIT;
	          PERFORM pgq.force_tick('$1');
	          PERFORM pgq.ticker('$1');
	          COMMIT;
	        END LOOP;
	      END \$\$" >/dev/null
	echo "$t0"
}

bench_read() {
	local r log_id pp rd pa pq tick0 paged=() readv=() all=() pgqv=() mib
	log "area 4: reading a log of $READ_N x 4 KiB entries"
	q -c "SELECT synclog.create_doc('read')" >/dev/null
	fill read "$READ_N" 1 0
	log_id=$(current_log read)
	# The baseline table holds exactly the rows synclog.read returns.
	q -c "INSERT INTO bench.read_plain SELECT lsn, delta FROM synclog.read('read', '$log_id', 0, 2147483647, 2147483647)" >/dev/null
	tick0=$(pgq_fill read_q)
	q -c "SELECT pgq.register_consumer_at('read_q', 'bench', $tick0)" >/dev/null
	q -c "VACUUM ANALYZE bench.read_plain" -c "VACUUM ANALYZE synclog.entry" \
		-c "VACUUM ANALYZE $(q -c "SELECT pgq.current_event_table('read_q')")"
	LOG_BYTES=$(q -c "SELECT sum(length(delta)) FROM bench.read_plain")
	mib=$(awk -v b="$LOG_BYTES" 'BEGIN { printf "%.1f", b / 1048576 }')
	area_title 4 "4. Reading a log"
	area_note 4 "A log of $READ_N entries of one 4 KiB value each ($mib MiB of deltas), read by a libpq client (test/bench/readlog.c, binary results, every byte received and discarded). synclog.read pages with its defaults (1000 entries / 8 MiB) from the log's base until a page comes back empty; the baseline pages through \`SELECT lsn, delta FROM bench.read_plain WHERE lsn > \$1 ORDER BY lsn LIMIT 1000\` (bigint primary key, the same rows); the second baseline is one unpaged \`SELECT lsn, delta FROM bench.read_plain ORDER BY lsn\`. The third is a PgQ consumer: the same deltas were inserted as PgQ events (hex text, so twice the bytes on the wire and on disk) with a tick after every 1000 events; the consumer, repositioned at the first tick before each read (pgq.register_consumer_at, outside the clock), loops pgq.next_batch / \`SELECT ev_id, ev_data FROM pgq.get_batch_events(batch)\` / pgq.finish_batch until next_batch returns NULL. Throughput is MiB of deltas (not of hex) per second over $READ_PASSES consecutive reads of the whole log per run, after one warm-up read of each."
	"$READLOG" plain-paged -t bench.read_plain -p 1000 >/dev/null
	"$READLOG" read -d read -l "$log_id" >/dev/null
	"$READLOG" plain-all -t bench.read_plain >/dev/null
	"$READLOG" pgq -t read_q -c bench -a "$tick0" >/dev/null
	for ((r = 1; r <= REPS; r++)); do
		pp=$(read_once plain-paged -t bench.read_plain -p 1000)
		rd=$(read_once read -d read -l "$log_id")
		pa=$(read_once plain-all -t bench.read_plain)
		pq=$(read_once pgq -t read_q -c bench -a "$tick0")
		paged+=("$pp"); readv+=("$rd"); all+=("$pa"); pgqv+=("$pq")
		log "  run $r: plain paged $pp MiB/s, synclog.read $rd MiB/s, plain unpaged $pa MiB/s, PgQ consumer $pq MiB/s"
	done
	record 4 r_paged "plain SELECT, pages of 1000 (baseline)" "MiB/s" base - - "${paged[*]}"
	record 4 r_read "synclog.read, default pages" "MiB/s" subj r_paged "ratio>=0.8" "${readv[*]}"
	record 4 r_all "plain SELECT, unpaged (second baseline)" "MiB/s" base - - "${all[*]}"
	record 4 r_read2 "synclog.read vs the unpaged SELECT" "MiB/s" subj r_all - "${readv[*]}"
	record 4 r_pgq "PgQ consumer, batches of 1000 events (third baseline)" "MiB/s" base - - "${pgqv[*]}"
	record 4 r_read3 "synclog.read vs the PgQ consumer" "MiB/s" subj r_pgq - "${readv[*]}"
}

# 5: rotation cost follows the log --------------------------------------------------

# log5 DOC K SPREAD SEED: append LOG5_N entries of 4 KiB to DOC, each at a key
# drawn with setseed(SEED); SPREAD=same: one of 256 keys spread evenly over
# the doc's K keys (the same log shape for any K); SPREAD=all: any of the K
# keys.  Prints the number of distinct keys written.
log5() {
	local pick
	if [ "$3" = same ]; then
		pick="(floor(random() * 256))::int * ($2 / 256)"
	else
		pick="(floor(random() * $2))::int"
	fi
	q -c "SELECT setseed($4)" -c "SELECT count(DISTINCT k) FROM (SELECT k, synclog.append('$1', ARRAY[bench.key(k)], ARRAY[bench.val(k)])
	        FROM (SELECT $pick AS k FROM generate_series(1, $LOG5_N)) s) t" | tail -1
}

bench_rotation_cost() {
	local r spread seed ts tb ks kb first
	local s_same=() b_same=() s_all=() b_all=() ks_all=() kb_all=() sk_all=() bk_all=()
	log "area 5: building a state of $SMALL_K and one of $BIG_K keys of 4 KiB"
	build_state small "$SMALL_K"
	q -c "SELECT synclog.compact('small')" >/dev/null
	build_state big "$BIG_K"
	checkpoint
	first=$(time_sql_ms "SELECT synclog.compact('big')")
	area_title 5 "5. Rotation cost follows the log, not the document"
	area_note 5 "Two documents, one with a state of $SMALL_K keys x 4 KiB ($((SMALL_K * 4 / 1024)) MiB), one of $BIG_K keys x 4 KiB ($((BIG_K * 4 / 1024)) MiB; built with appends of 1024 keys and one rotation, which took $(awk -v m="$first" 'BEGIN { printf "%.1f", m / 1000 }') s for the whole state). Each run appends a $LOG5_N-entry log (one 4 KiB value per entry) to each document, checkpoints, then times synclog.compact on each (psql \\timing: execution and commit).
- *same log*: both logs are drawn with the same seed from 256 keys spread evenly over each document's key space, so the two logs have the same length, the same number of distinct keys and the same shape; only the state differs. This is the figure the target applies to.
- *random key*: each entry's key is random over the document's own key space (the issue's wording). The big document's log then touches about 4 times as many distinct keys as the small one's (the small state only has 256), and a rotation writes one state version per distinct key, so this ratio measures the logs' difference as much as the states'. The per-key rows divide each time by the distinct keys of its log."
	for ((r = 1; r <= REPS; r++)); do
		for spread in same all; do
			seed=0.$((r * 10 + ${#spread}))
			ks=$(log5 small "$SMALL_K" "$spread" "$seed")
			kb=$(log5 big "$BIG_K" "$spread" "$seed")
			checkpoint
			if ((r % 2)); then
				ts=$(time_sql_ms "SELECT synclog.compact('small')")
				tb=$(time_sql_ms "SELECT synclog.compact('big')")
			else
				tb=$(time_sql_ms "SELECT synclog.compact('big')")
				ts=$(time_sql_ms "SELECT synclog.compact('small')")
			fi
			log "  run $r ($spread): small $ts ms ($ks keys), big $tb ms ($kb keys)"
			if [ "$spread" = same ]; then
				s_same+=("$ts"); b_same+=("$tb")
			else
				s_all+=("$ts"); b_all+=("$tb"); ks_all+=("$ks"); kb_all+=("$kb")
				sk_all+=("$(awk -v t="$ts" -v k="$ks" 'BEGIN { printf "%.4f", t / k }')")
				bk_all+=("$(awk -v t="$tb" -v k="$kb" 'BEGIN { printf "%.4f", t / k }')")
			fi
		done
	done
	record 5 c_small "same log: rotate $LOG5_N entries on the $((SMALL_K * 4 / 1024)) MiB state (baseline)" ms base - - "${s_same[*]}"
	record 5 c_big "same log: rotate $LOG5_N entries on the $((BIG_K * 4 / 1024)) MiB state" ms subj c_small "ratio<=2" "${b_same[*]}"
	record 5 c_small_r "random key: rotate $LOG5_N entries on the $((SMALL_K * 4 / 1024)) MiB state (baseline)" ms base - - "${s_all[*]}"
	record 5 c_big_r "random key: rotate $LOG5_N entries on the $((BIG_K * 4 / 1024)) MiB state" ms subj c_small_r "ratio<=2" "${b_all[*]}"
	record 5 c_ks "random key: distinct keys in the small doc's log" keys base - - "${ks_all[*]}"
	record 5 c_kb "random key: distinct keys in the big doc's log" keys subj c_ks - "${kb_all[*]}"
	record 5 c_sk "random key: small doc, time per distinct key (baseline)" "ms/key" base - - "${sk_all[*]}"
	record 5 c_bk "random key: big doc, time per distinct key" "ms/key" subj c_sk - "${bk_all[*]}"
}

# 7: memory ------------------------------------------------------------------------

# psql_in_backend NAME SQL: a psql session that writes its backend pid to
# $W/NAME.pid, loads synclog, sleeps a second (the sampler's "before"
# value), then runs SQL with \timing.
psql_in_backend() {
	cat >"$W/$1.sql" <<EOF
\\o $W/$1.pid
SELECT pg_backend_pid();
\\o
SELECT synclog.channel('x') IS NOT NULL AS loaded;
SELECT pg_sleep(1);
\\timing on
$2
EOF
	psql -X -At -v ON_ERROR_STOP=1 -d "$DB" -f "$W/$1.sql"
}

bench_memory() {
	local r gb gr rs log_id out bytes rows pages secs gs gp
	local copy_g=() rot_g=() rot_t=() snap_g=() kv_g=() snap_t=() kv_t=()
	local snap_c=() kv_c=() snap_cc=() kv_cc=() scpu ccpu gm mat_t=() mat_c=() mat_g=() kv2_t=() kv2_c=()
	log "area 7: backend memory while rotating a $MEM_N-entry log on the $BIG_K-key state, and serving its snapshot"
	area_title 7 "7. Backend memory"
	area_note 7 "RssAnon (private anonymous memory; shared buffers are RssShmem and do not count) of the backend doing the work, read from /proc/<pid>/status every ~20 ms; the figure is the peak minus the value sampled while the session slept just before the operation (after synclog was loaded).
- (a) rotating a log of $MEM_N entries x 4 KiB ($((MEM_N * 4 / 1024)) MiB, keys spread over the state) on the $((BIG_K * 4 / 1024)) MiB state; baseline: one \`INSERT INTO bench.copy_plain SELECT lsn, delta FROM bench.read_plain\` moving area 4's $((READ_N * 4 / 1024)) MiB log in one statement.
- (b) downloading the whole $((BIG_K * 4 / 1024)) MiB snapshot page by page with synclog.snapshot(doc, log, after_key, max_rows => $SNAP_PAGE) through the libpq client: pages of $SNAP_PAGE rows = 4 MiB, not the default 10000 rows (40 MiB per page, more than the memory target itself); baseline: the same client paging \`SELECT key, value FROM bench.state_plain WHERE key > \$1 ORDER BY key LIMIT $SNAP_PAGE\` over a plain copy of the same state.
- (b) also, for information, the same download through bench.snapshot_materialized, version 0.1's C body of synclog.snapshot (the whole page put into the function's tuplestore, values as TOAST pointers, before the first row is sent), run after a second plain download in each run, so that each snapshot download follows a plain one; since 0.2 synclog.snapshot streams its page (a SQL function PostgreSQL inlines, over the row-per-call synclog.snapshot_rows).
- The rotation and download times of the same runs are reported for information, and for (b) the CPU time of the server backend (from /proc/<pid>/stat, clock ticks of 10 ms) and of the client (getrusage), which depend less than wall time on what else the machine runs. Both downloads start with the state's pages mostly out of shared_buffers: the plain copy and synclog.kv do not fit in it together, and the plain and materialized downloads evict the other's pages (the streamed download reads the TOAST pages of a snapshot this large through a ring of buffers, as a large sequential scan does, and evicts few: so the second plain download of a run finds more of its pages, and the first, after the materialized one, few)."
	for ((r = 1; r <= REPS; r++)); do
		fill big "$MEM_N" $((BIG_K / MEM_N)) $((r % (BIG_K / MEM_N > 1 ? BIG_K / MEM_N : 1)))
		checkpoint
		q -c "TRUNCATE bench.copy_plain"
		gb=$(measure_rss mem_copy.$r psql_in_backend mem_copy.$r "INSERT INTO bench.copy_plain SELECT lsn, delta FROM bench.read_plain;")
		gr=$(measure_rss mem_rot.$r psql_in_backend mem_rot.$r "SELECT synclog.compact('big');")
		rs=$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' "$W/mem_rot.$r.out" | tail -1)
		rs=$(awk -v m="$rs" 'BEGIN { printf "%.2f", m / 1000 }')
		copy_g+=("$gb"); rot_g+=("$gr"); rot_t+=("$rs")
		log "  run $r: copy +$gb MiB, rotation +$gr MiB ($rs s)"
	done
	log_id=$(current_log big)
	q -c "TRUNCATE bench.state_plain" \
		-c "INSERT INTO bench.state_plain SELECT key, value FROM synclog.snapshot('big', '$log_id', NULL, 2147483647)" \
		-c "VACUUM ANALYZE bench.state_plain" -c "VACUUM ANALYZE synclog.kv"
	for ((r = 1; r <= REPS; r++)); do
		gp=$(measure_rss mem_kv.$r "$READLOG" plain-kv -t bench.state_plain -p "$SNAP_PAGE" -P "$W/mem_kv.$r.pid" -s 1000 -C)
		read -r bytes rows pages secs scpu ccpu <"$W/mem_kv.$r.out"
		[ "$rows" -eq "$BIG_K" ] || bench_die "plain-kv returned $rows rows, expected $BIG_K"
		kv_t+=("$(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%.1f", b / 1048576 / s }')")
		kv_c+=("$scpu"); kv_cc+=("$ccpu")
		gs=$(measure_rss mem_snap.$r "$READLOG" snapshot -d big -l "$log_id" -p "$SNAP_PAGE" -P "$W/mem_snap.$r.pid" -s 1000 -C)
		read -r bytes rows pages secs scpu ccpu <"$W/mem_snap.$r.out"
		[ "$rows" -eq "$BIG_K" ] || bench_die "snapshot returned $rows rows, expected $BIG_K"
		snap_t+=("$(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%.1f", b / 1048576 / s }')")
		snap_c+=("$scpu"); snap_cc+=("$ccpu")
		snap_g+=("$gs"); kv_g+=("$gp")
		# again after a plain download, which leaves the same pages in
		# shared_buffers as before the streamed one
		"$READLOG" plain-kv -t bench.state_plain -p "$SNAP_PAGE" -C >"$W/mem_kv2.$r.out"
		read -r bytes rows pages secs scpu ccpu <"$W/mem_kv2.$r.out"
		kv2_t+=("$(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%.1f", b / 1048576 / s }')")
		kv2_c+=("$scpu")
		gm=$(measure_rss mem_mat.$r "$READLOG" snapshot -f bench.snapshot_materialized -d big -l "$log_id" -p "$SNAP_PAGE" -P "$W/mem_mat.$r.pid" -s 1000 -C)
		read -r bytes rows pages secs scpu ccpu <"$W/mem_mat.$r.out"
		[ "$rows" -eq "$BIG_K" ] || bench_die "materialized snapshot returned $rows rows, expected $BIG_K"
		mat_t+=("$(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%.1f", b / 1048576 / s }')")
		mat_c+=("$scpu"); mat_g+=("$gm")
		log "  run $r: snapshot download +$gs MiB (${snap_t[-1]} MiB/s, server CPU ${snap_c[-1]} s), plain paged +$gp MiB (${kv_t[-1]} MiB/s, server CPU ${kv_c[-1]} s), materialized page +$gm MiB (${mat_t[-1]} MiB/s, server CPU ${mat_c[-1]} s)"
	done
	record 7 m_copy "(a) baseline: INSERT ... SELECT of a $((READ_N * 4 / 1024)) MiB log" MiB base - - "${copy_g[*]}"
	record 7 m_rot "(a) rotating a $((MEM_N * 4 / 1024)) MiB log on a $((BIG_K * 4 / 1024)) MiB state" MiB subj m_copy "max<=128" "${rot_g[*]}"
	record 7 m_rot_t "(a) time of that rotation (information)" s info - - "${rot_t[*]}"
	record 7 m_kv "(b) baseline: paged plain SELECT of the $((BIG_K * 4 / 1024)) MiB state, $SNAP_PAGE rows a page" MiB base - - "${kv_g[*]}"
	record 7 m_snap "(b) synclog.snapshot download of the $((BIG_K * 4 / 1024)) MiB state, $SNAP_PAGE rows a page" MiB subj m_kv "max<=32" "${snap_g[*]}"
	record 7 m_kv_t "(b) baseline download speed (information)" "MiB/s" base - - "${kv_t[*]}"
	record 7 m_snap_t "(b) snapshot download speed" "MiB/s" subj m_kv_t "ratio>=1" "${snap_t[*]}"
	record 7 m_kv_c "(b) baseline: CPU time of the server backend for the paged plain SELECT (information)" s base - - "${kv_c[*]}"
	record 7 m_snap_c "(b) CPU time of the server backend for the snapshot download (information)" s subj m_kv_c - "${snap_c[*]}"
	record 7 m_kv2_t "(b) baseline again, before the materialized pages (information)" "MiB/s" base - - "${kv2_t[*]}"
	record 7 m_mat_t "(b) the same download with pages materialized before they are sent, as in version 0.1 (information)" "MiB/s" subj m_kv2_t - "${mat_t[*]}"
	record 7 m_kv2_c "(b) baseline again: CPU time of the server backend (information)" s base - - "${kv2_c[*]}"
	record 7 m_mat_c "(b) CPU time of the server backend for the materialized pages (information)" s subj m_kv2_c - "${mat_c[*]}"
	record 7 m_mat "(b) backend memory of the materialized pages (information)" MiB subj m_kv - "${mat_g[*]}"
	record 7 m_kv_cc "(b) baseline: CPU time of the client for the paged plain SELECT (information)" s base - - "${kv_cc[*]}"
	record 7 m_snap_cc "(b) CPU time of the client for the snapshot download (information)" s subj m_kv_cc - "${snap_cc[*]}"
}

# 6: append latency during a rotation ------------------------------------------------

# latencies FILE FROM TO: per-transaction latencies (ms) of the pgbench log
# FILE whose transactions completed between FROM and TO (epoch seconds).
latencies() {
	awk -v a="$2" -v b="$3" '{ t = $5 + $6 / 1e6; if (t >= a && t <= b) printf "%.3f\n", $3 / 1000 }' "$1"
}

# during TAG SECONDS SQL: pgbench appends for SECONDS with a per-transaction
# log while, after 1 s, SQL runs in another session; writes the latencies
# (ms) of the appends that completed while SQL ran to $W/TAG.ms and sets
# WIN_SECS to SQL's duration.  Returns 1 if pgbench did not cover SQL.
during() {
	local tag=$1 secs=$2 sql=$3 pid out t0 t1 lf first last
	rm -f "$W/$tag".*
	pgbench_tps "$tag" -c1 -T "$secs" -l --log-prefix="$W/$tag" -f "$W/append6.sql" >"$W/$tag.tps" &
	pid=$!
	sleep 1
	out=$(q -c "SELECT extract(epoch FROM clock_timestamp())" -c "$sql" \
		-c "SELECT extract(epoch FROM clock_timestamp())")
	wait "$pid" || bench_die "pgbench during \"$sql\" failed"
	t0=$(echo "$out" | sed -n 1p)
	t1=$(echo "$out" | tail -1)
	lf=$(ls "$W/$tag".*[0-9])
	first=$(awk 'NR == 1 { printf "%.6f\n", $5 + $6 / 1e6 }' "$lf")
	last=$(awk 'END { printf "%.6f\n", $5 + $6 / 1e6 }' "$lf")
	awk -v f="$first" -v l="$last" -v a="$t0" -v b="$t1" 'BEGIN { exit !(f <= a && l >= b) }' || return 1
	latencies "$lf" "$t0" "$t1" >"$W/$tag.ms"
	[ -s "$W/$tag.ms" ] || bench_die "no append completed during \"$sql\""
	WIN_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	return 0
}

bench_rotation_latency() {
	local r d dbase est lf n p_base p_rot p_copy attempt
	local base99=() rot99=() copy99=() rot_s=() rot_n=() rot_max=()
	log "area 6: append latency while a $ROT_N-entry log rotates"
	q -c "SELECT synclog.create_doc('rot')" >/dev/null
	fill rot "$ROT_N" 1 1
	checkpoint
	est=$(time_sql_ms "SELECT synclog.compact('rot')")
	# pgbench must outlast the rotation, which is slower under load.
	d=$(awk -v m="$est" 'BEGIN { d = int(m / 1000 * 4) + 4; print (d < 6 ? 6 : d) }')
	dbase=$(awk -v m="$est" 'BEGIN { d = int(m / 1000 * 2) + 2; print (d < 5 ? 5 : d) }')
	area_title 6 "6. Appends keep flowing during a rotation"
	area_note 6 "Document \`rot\`: each run appends a log of $ROT_N entries x 4 KiB ($((ROT_N * 4 / 1024)) MiB) and checkpoints. Baseline: pgbench -c1 -T $dbase appends (one 100-byte value, random key) to the same document with no rotation going on. Then the same pgbench for ${d}s while, after 1 s, synclog.compact('rot') runs in another session; only the transactions that completed between the start and the end of the rotation count. p99 of pgbench's per-transaction latencies (-l), nearest rank. An unloaded rotation of that log took $(awk -v m="$est" 'BEGIN { printf "%.2f", m / 1000 }') s.
- Reference (no target): the same appends while one plain \`INSERT INTO bench.copy_plain SELECT lsn, delta FROM bench.read_plain\` writes a $((READ_N * 4 / 1024)) MiB log's worth of the same kind of bytes, i.e. what any transaction writing that much WAL does to the latency of committing appends (fsync = on: every commit also waits for the other transaction's WAL to reach disk)."
	for ((r = 1; r <= REPS; r++)); do
		fill rot "$ROT_N" 1 1
		checkpoint
		rm -f "$W"/lat_base.$r.*
		pgbench_tps lat_base.$r -c1 -T "$dbase" -l --log-prefix="$W/lat_base.$r" -f "$W/append6.sql" >/dev/null
		lf=$(ls "$W"/lat_base.$r.*)
		awk '{ printf "%.3f\n", $3 / 1000 }' "$lf" >"$W/lat_base.$r.ms"
		p_base=$(percentile 99 "$W/lat_base.$r.ms")
		for attempt in 1 2; do
			if during lat_rot.$r "$d" "SELECT synclog.compact('rot') IS NOT NULL"; then
				break
			fi
			[ "$attempt" = 2 ] && bench_die "pgbench (${d}s) did not overlap the rotation"
			log "  pgbench did not outlast the rotation; again with twice the time"
			d=$((d * 2))
			fill rot "$ROT_N" 1 1
			checkpoint
		done
		n=$(wc -l <"$W/lat_rot.$r.ms")
		p_rot=$(percentile 99 "$W/lat_rot.$r.ms")
		rot_s+=("$WIN_SECS")
		rot_max+=("$(sort -n "$W/lat_rot.$r.ms" | tail -1)")
		q -c "TRUNCATE bench.copy_plain"
		checkpoint
		during lat_copy.$r "$dbase" "INSERT INTO bench.copy_plain SELECT lsn, delta FROM bench.read_plain" ||
			bench_die "pgbench ($dbase s) did not overlap the plain copy"
		p_copy=$(percentile 99 "$W/lat_copy.$r.ms")
		base99+=("$p_base"); rot99+=("$p_rot"); copy99+=("$p_copy"); rot_n+=("$n")
		log "  run $r: p99 without rotation $p_base ms, during rotation $p_rot ms ($n appends in ${rot_s[-1]} s), during a plain copy $p_copy ms"
	done
	record 6 l_base "p99 append latency, no rotation (baseline)" ms base - - "${base99[*]}"
	record 6 l_rot "p99 append latency during the rotation" ms subj l_base "ratio<=3" "${rot99[*]}"
	record 6 l_copy "reference: p99 append latency during a plain INSERT ... SELECT of the same volume" ms subj l_base - "${copy99[*]}"
	record 6 l_copyb "reference, as a baseline for the next row: p99 during the plain INSERT ... SELECT" ms base - - "${copy99[*]}"
	record 6 l_rot2 "p99 during the rotation vs during the plain INSERT ... SELECT" ms subj l_copyb - "${rot99[*]}"
	record 6 l_max "max append latency during the rotation (information)" ms info - - "${rot_max[*]}"
	record 6 l_n "appends completed during the rotation (information)" count info - - "${rot_n[*]}"
	record 6 l_s "rotation time under load (information)" s info - - "${rot_s[*]}"
}

# Report ------------------------------------------------------------------------------

write_report() {
	local out=$1 pgver settings commit dirty cmd mem cpu
	pgver=$(q -c "SELECT version()")
	settings=$(q -F ' | ' -c "SELECT '| ' || name, current_setting(name), source || ' |'
		FROM pg_settings
		WHERE source NOT IN ('default', 'override', 'client', 'session')
		   OR name IN ('fsync', 'synchronous_commit', 'wal_level', 'full_page_writes', 'work_mem', 'shared_preload_libraries',
		               'autovacuum', 'autovacuum_naptime', 'autovacuum_vacuum_scale_factor', 'autovacuum_vacuum_insert_scale_factor')
		ORDER BY name")
	commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
	dirty=$(git -C "$ROOT" status --porcelain -- src 2>/dev/null | head -1 || true)
	[ -n "$dirty" ] && commit="$commit (with uncommitted changes under src/)"
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
	mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
	cmd="BENCH_MODE=$MODE${BENCH_ONLY:+ BENCH_ONLY=\"$BENCH_ONLY\"}${BENCH_SET:+ BENCH_SET=\"$BENCH_SET\"} bash test/bench/run.sh"
	if [ -n "$ISOLATED" ]; then
		cmd="BENCH_ISOLATE=1 $cmd   # as root, from the repository root"
	elif [ "$OWN_CLUSTER" = 1 ]; then
		cmd="$cmd   # or: make bench (quick); run from the repository root, as root or postgres"
	else
		cmd="$cmd   # against the running server at PGHOST"
	fi
	{
		echo "# synclog benchmarks"
		echo
		echo "Generated by \`test/bench/run.sh\` (mode **$MODE**); do not edit by hand. Every figure is compared with a baseline measured in the same run on the same server; each measurement is repeated $REPS time(s) ($REPS_APPEND for the appends of areas 1-3) and shown as min / median / max; the ratio is median over baseline median (per-run ratios pair run i with baseline run i). Targets on ratios use the ratio of medians; memory targets use the worst run."
		echo
		echo "- Date: $START_DATE ($(( $(date +%s) - START_S )) s)"
		echo "- Command: \`$cmd\`"
		if [ -n "$ISOLATED" ]; then
			echo "- Source: commit $ISOLATED_COMMIT, $ISOLATED"
		else
			echo "- Source: commit $commit; the installed synclog.so is from $(date -u -r "$SO" '+%Y-%m-%d %H:%M UTC' 2>/dev/null || echo '?')"
		fi
		echo "- Machine: $(nproc) CPUs, $cpu, $mem RAM, $(uname -sr)"
		echo "- Load average (1/5/15 min) at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine shows here)"
		echo "- Server: $pgver"
		echo "- Cluster: $([ "$OWN_CLUSTER" = 1 ] && echo "throw-away, started by test/lib/cluster.sh (initdb defaults, data in /tmp)" || echo "an existing server (PGHOST), benchmark database created and dropped")"
		echo
		echo "Server settings that differ from the built-in defaults (plus the durability ones):"
		echo
		echo "| Setting | Value | Source |"
		echo "|---|---|---|"
		echo "$settings"
		echo
		echo "## Summary"
		echo
		cat "$W/summary.md"
		echo
		if [ -f "$HERE/notes.md" ] && [ "$MODE" != smoke ]; then
			cat "$HERE/notes.md"
			echo
		fi
		cat "$W/tables.md"
	} >"$out"
}

# Run ---------------------------------------------------------------------------------

log "mode $MODE, $REPS run(s) per measurement ($REPS_APPEND for the appends of areas 1-3), scratch $W"
# BENCH_ONLY="9 11" (development): only these areas, plus the ones they
# build on (4 for 6, 7 and 13; 5 for 7).
ONLY=" ${BENCH_ONLY:-1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16} "
case $ONLY in *" 6 "* | *" 7 "* | *" 13 "*) ONLY="$ONLY 4 " ;; esac
case $ONLY in *" 7 "*) ONLY="$ONLY 5 " ;; esac
area_on() {
	local a
	for a in "$@"; do
		case $ONLY in *" $a "*) return 0 ;; esac
	done
	return 1
}
if area_on 1 3; then bench_append_one; fi
if area_on 2; then bench_append_many; fi
if area_on 8; then bench_append_batched; fi
if area_on 4; then bench_read; fi
if area_on 13; then bench_hash; fi
if area_on 5; then bench_rotation_cost; fi
if area_on 7; then bench_memory; fi
if area_on 6; then bench_rotation_latency; fi
if area_on 9; then bench_rotation_matrix; fi
if area_on 10; then bench_switchover; fi
if area_on 11; then bench_scale; fi
if area_on 12; then bench_steady; fi
if area_on 14; then bench_client_store; fi
if area_on 15; then bench_compression; fi
if area_on 16; then bench_catchup; fi

[ "$(so_stamp)" = "$SO_STAMP" ] ||
	bench_die "$SO was reinstalled during the run; the results are not valid, run again"

render_tables 1 2 3 8 4 13 5 9 6 7 10 14 15 16 11 12 >"$W/tables.md"
OUT=$OUT_FILE
write_report "$OUT"
log "report written to $OUT"
cat "$W/summary.md" >&2
