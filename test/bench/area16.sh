# test/bench/area16.sh - area 16 of the benchmarks: catch-up and repair on
# a page store (issue 11).  What followers of a real SQLite database,
# replicated page by page, move to get back to the head: one that starts
# late, one that acked once and returns many rotations later, one whose
# log was collected, one whose replica has a page changed locally (on the
# page store and on a 200 MiB database), and the server memory of one
# catch-up over a large log.
#
# Sourced by run.sh after lib.sh, areas.sh and area15.sh (it uses q,
# record, now_s, time_sql_ms, checkpoint, measure_rss, psql_in_backend,
# build_state, current_log, mib_of, stat_of, zip_build_tools and the
# reference client $FOLLOW from there), with the
# mode's sizes set:
#   CU_COMMITS     commits of the page store (test/bench/pagestore.c)
#   CU_PAGES       pages in use the page store keeps (its database size)
#   CU_ROT         rotations, evenly spread over the commits, each followed
#                  by synclog.gc() with retention 0
#   CU_BIG_PAGES   pages of the SQLite database of the one-page repair on
#                  a big database (0: not measured)
#   CU_BIG_TAIL    commits to it after its rotation, for a second repair
#                  (0: none)
#   CU_MEM_MB      MiB of log the memory measurement catches up over
#                  (0: not measured)
#   CU_MEM_K       keys of 4 KiB that log keeps rewriting

# cu_load FIRST LAST DOC...: append commits FIRST..LAST of public.cu_delta
# to every DOC, one append_delta statement per commit and document,
# committing every 100 commits.
cu_load() {
	local first=$1 last=$2 docs
	shift 2
	docs=$(printf "'%s'," "$@")
	q -c "DO \$\$ DECLARE doc text; BEGIN
	    FOR i IN $first .. $last LOOP
	      FOREACH doc IN ARRAY ARRAY[${docs%,}] LOOP
	        PERFORM synclog.append_delta(doc, (SELECT x.delta FROM public.cu_delta x WHERE x.n = i));
	      END LOOP;
	      IF i % 100 = 0 THEN COMMIT; END IF;
	    END LOOP;
	  END \$\$" >/dev/null
}

# cu_sync NAME DIR DOC [ARGS...]: one synclog-follow --once run into DIR,
# its output in $W/NAME.out; prints "<wall seconds> <stats line>".
cu_sync() {
	local name=$1 dir=$2 doc=$3 t0
	shift 3
	t0=$(now_s)
	"$FOLLOW" --dsn "dbname=$DB" --doc "$doc" --dir "$dir" --once "$@" >"$W/$name.out" 2>&1 ||
		{ tail -20 "$W/$name.out" >&2; bench_die "synclog-follow ($name, --dir $dir) failed"; }
	awk -v a="$t0" -v b="$(now_s)" 'BEGIN { printf "%.3f ", b - a }'
	grep '^stats:' "$W/$name.out" | tail -1
}

# cu_moved STATS-BEFORE STATS-AFTER: the bytes a sync received, from the
# client's counters (kept in its replica, so a copied replica carries
# them): the growth of every counter of bytes of rows received (bytes_*
# and, in clients that choose a path, *_bytes: catch_up_bytes,
# range_repair_bytes, cost_bytes), but bytes_marker (counted in bytes_log
# as well) and bytes_downloaded (key and value bytes of completed
# downloads, counted in bytes_snapshot).  With a third argument "ms": the
# growth of the *_ms counters instead, the milliseconds the client says
# its paths took (replay_ms, catch_up_ms, range_repair_ms, download_ms;
# 0 for a client without them).  A counter that is lower after the sync
# than before was reset by it (the client of issue 11 zeroes replay_ms and
# download_ms when a range repair swaps its state in): its value after
# counts whole.
cu_moved() {
	awk -v a="$1" -v b="$2" -v ms="${3:-}" 'function counted(k) {
			if (ms != "") return k ~ /_ms$/
			return k ~ /^bytes_|_bytes$/ && k != "bytes_marker" && k != "bytes_downloaded"
		}
		function load(s, m,   n, f, i, kv) {
			n = split(s, f, " ")
			for (i = 1; i <= n; i++) { split(f[i], kv, "="); if (counted(kv[1])) m[kv[1]] = kv[2] + 0 }
		}
		BEGIN { load(a, A); load(b, B); t = 0
				# a counter that went down was reset by the sync: all of it is new
				for (k in B) t += (B[k] >= A[k]) ? B[k] - A[k] : B[k]
				printf "%.0f\n", t }'
}

# cu_paths NAME STATS-BEFORE STATS-AFTER: which paths the sync of NAME
# took: the client's "path=... reason=..." lines, or for a client that has
# none, what its counters say it did.
cu_paths() {
	local p
	p=$(grep -o 'path=[a-z_]* reason=[^ ]*' "$W/$1.out" | sort | uniq -c | awk '{ printf "%s%s %s (x%d)", (NR > 1 ? "; " : ""), $2, $3, $1 }')
	if [ -z "$p" ]; then
		p=$(awk -v a="$2" -v b="$3" 'function get(s, k,   n, f, i, kv) {
				n = split(s, f, " ")
				for (i = 1; i <= n; i++) { split(f[i], kv, "="); if (kv[1] == k) return kv[2] + 0 }
				return 0
			}
			BEGIN { d = get(b, "downloads") - get(a, "downloads")
					printf "%s: %d download(s), %d marker(s) crossed, %d entries replayed",
						(d > 0 ? "download" : "replay"), d,
						get(b, "switches_marker") - get(a, "switches_marker"),
						get(b, "entries") - get(a, "entries") }')
	fi
	echo "$p"
}

# cu_run KIND FROM DOC: one measured sync of DOC by follower KIND in
# $W/cu_KIND, without acking.  FROM: "empty" (a new directory), "keep"
# (the directory as it is, last synced by the previous cu_run, whose
# counters CU_LAST holds) or a saved replica in $W/FROM to start from a
# copy of (its counters in CU_S0[FROM]).  Appends the wall time to
# CU_T[KIND], the bytes received to CU_B[KIND] and the milliseconds of
# the client's paths to CU_MS[KIND], sets CU_LAST to the
# stats line after the sync and, on KIND's first run, CU_P[KIND] to the
# paths it took.  (The arrays are bench_catchup's.)
cu_run() {
	local kind=$1 from=$2 doc=$3 dir=$W/cu_$1 before n res
	n=$(($(wc -w <<<"${CU_T[$kind]:-}") + 1))
	case $from in
	empty) rm -rf "$dir"; before="" ;;
	keep) before=$CU_LAST ;;
	*) rm -rf "$dir"; cp -a "$W/$from" "$dir"; before=${CU_S0[$from]} ;;
	esac
	res=$(cu_sync "cu_$kind.$n" "$dir" "$doc" --no-ack)
	CU_LAST=${res#* }
	CU_T[$kind]+=" ${res%% *}"
	CU_B[$kind]+=" $(cu_moved "$before" "$CU_LAST")"
	CU_MS[$kind]+=" $(cu_moved "$before" "$CU_LAST" ms)"
	if ((n == 1)); then CU_P[$kind]=$(cu_paths "cu_$kind.1" "$before" "$CU_LAST"); fi
}

# cu_last KIND: "<bytes> B <seconds> s" of KIND's last run.
cu_last() {
	echo "${CU_B[$1]##* } B ${CU_T[$1]##* } s"
}

# cu_changed_bytes AFTER: key and value bytes of the distinct pages that
# commits after AFTER changed (deleted pages count with their key only):
# what a follower at commit AFTER must receive at the least.
cu_changed_bytes() {
	q -c "SELECT coalesce(sum(len), 0)
	        FROM (SELECT DISTINCT ON (c.key) c.key, octet_length(c.key) + coalesce(octet_length(c.value), 0) AS len
	                FROM public.cu_delta x, synclog.decode_delta(x.delta) c
	               WHERE x.n > $1 ORDER BY c.key, x.n DESC) s"
}

# cu_corrupt DIR: change one page of the replica in DIR, as a bad disk or
# a stray write would: the value of the data item in the middle of the
# current state, overwritten with other bytes in the replica's database.
cu_corrupt() {
	[ "$(sqlite3 "$1/replica.db" "UPDATE item SET val = randomblob(length(val))
	    WHERE ns = 1 AND gen = (SELECT gen FROM meta)
	      AND key = (SELECT key FROM item WHERE ns = 1 AND gen = (SELECT gen FROM meta) ORDER BY key
	                  LIMIT 1 OFFSET (SELECT count(*) / 2 FROM item WHERE ns = 1 AND gen = (SELECT gen FROM meta)));
	    SELECT changes();")" = 1 ] || bench_die "could not change a page of $1/replica.db"
}

# cu_big_load DOC PAGES: a real SQLite database of about PAGES pages (a
# table of notes whose bodies, 3,000 characters of hex text that
# compresses about as well as prose, fill a page each, and an index)
# written with the sqlite3 shell, appended to DOC 1024 pages an
# entry (read by the server with pg_read_binary_file) and folded into the
# snapshot of a new log by a rotation.
cu_big_load() {
	local doc=$1 pages=$2 f=$W/cu_big.db i n
	sqlite3 "$f" "PRAGMA page_size = 4096; PRAGMA journal_mode = DELETE;
	    CREATE TABLE note (id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT NULL);
	    WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $((pages - pages / 100)))
	    INSERT INTO note SELECT i, 'note ' || i, hex(randomblob(1500)) FROM s;
	    CREATE INDEX note_title ON note (title);" >/dev/null || bench_die "building $f failed"
	n=$(($(stat -c %s "$f") / 4096))
	chmod 644 "$f"
	q -c "SELECT synclog.create_doc('$doc')" >/dev/null
	for ((i = 1; i <= n; i += 1024)); do
		q -c "SELECT synclog.append('$doc', array_agg(int4send(p) ORDER BY p),
		          array_agg(pg_read_binary_file('$f', (p - 1) * 4096::bigint, 4096) ORDER BY p))
		        FROM generate_series($i, least($i + 1023, $n)) p" >/dev/null
	done
	q -c "SELECT synclog.compact('$doc')" >/dev/null
	echo "$n"
}

# cu_big_edit DOC COMMITS PAGES: COMMITS commits to the big database DOC
# (PAGES pages, its file still in $W/cu_big.db), each rewriting 23 pages
# of its first twenty-fifth (the hot part) as an edit in place would: the
# page as in the file with 16 bytes in the middle changed.
cu_big_edit() {
	local doc=$1 n=$2 hot=$(($3 / 25))
	q -c "DO \$\$ BEGIN
	    FOR c IN 1 .. $n LOOP
	      PERFORM synclog.append('$doc', array_agg(int4send(p) ORDER BY p),
	          array_agg(overlay(pg_read_binary_file('$W/cu_big.db', (p - 1) * 4096::bigint, 4096)
	                            placing decode(md5(c || '.' || p), 'hex') from 2001) ORDER BY p))
	         FROM (SELECT DISTINCT 2 + (c * 7919 + j * 104729) % $hot AS p FROM generate_series(1, 23) j) s;
	    END LOOP;
	  END \$\$" >/dev/null
}

# cu_position DOC: "<log id> <lsn> <chain hex>" of the active log's base.
cu_position() {
	q -F ' ' -c "SELECT log_id, base_lsn, encode(synclog.base_chain('$1', log_id), 'hex')
	               FROM synclog.current_log('$1')"
}

# cu_has_catch_up: whether the server has synclog.catch_up (issue 11).
cu_has_catch_up() {
	[ "$(q -c "SELECT count(*) FROM pg_proc WHERE proname = 'catch_up' AND pronamespace = 'synclog'::regnamespace")" = 1 ]
}

# cu_server_view DOC [LOG LSN]: what the server offers a follower at
# (LOG, LSN), or with no state, whichever path the client takes: prints
# "<key and value bytes synclog.catch_up returns up to the head>
# <sync_cost's replay_bytes (- without a position)> <catch_up_bytes>
# <snapshot_bytes>".
cu_server_view() {
	local doc=$1 pos="NULL, NULL, NULL"
	[ -n "${2:-}" ] && pos="'$2', $3, synclog.chain_at('$doc', '$2', $3)"
	q -F ' ' -c "SELECT (SELECT coalesce(sum(octet_length(c.key) + coalesce(octet_length(c.value), 0)), 0)
	                       FROM synclog.catch_up_target('$doc') t,
	                            synclog.catch_up('$doc', $pos, t.log_id, t.lsn, max_rows => 2147483647) c),
	                    coalesce(s.replay_bytes::text, '-'), s.catch_up_bytes, s.snapshot_bytes
	               FROM synclog.sync_cost('$doc', $pos) s"
}

# cu_cost_line VIEW: a cu_server_view line for people.
cu_cost_line() {
	awk '{ printf "replay %s, catch-up bound %s, snapshot %s; catch_up returns %s", $2, $3, $4, $1 }' <<<"$1"
}

# cu_memory: a document of CU_MEM_K keys of 4 KiB, rotated; then CU_MEM_MB
# MiB of log rewriting those keys, 1024 of them a 4 MiB entry, with a
# rotation half-way (so that the catch-up crosses a sealed log and the
# state versions its rotation wrote).  Measures the backend's memory for
# reading both logs from the first one's base in one statement
# (synclog.read: what replaying them costs the server today) and, when the
# server has it, for one synclog.catch_up call from the same position to
# the head (every page at once: the most one call can hold).  Prints
# "<read MiB> <catch-up MiB or nan> <read s> <catch-up s or nan> <log
# bytes>".
cu_memory() {
	local doc=cu_mem log lsn chain log2 tlog tlsn r n gr gc tr tc bytes reads
	build_state "$doc" "$CU_MEM_K"
	q -c "SELECT synclog.compact('$doc')" >/dev/null
	read -r log lsn chain <<<"$(cu_position "$doc")"
	n=$((CU_MEM_MB / 4))
	for ((r = 0; r < n; r++)); do
		((r == n / 2)) && q -c "SELECT synclog.compact('$doc')" >/dev/null
		q -c "SELECT synclog.append('$doc', array_agg(bench.key(i % $CU_MEM_K) ORDER BY i % $CU_MEM_K),
		          array_agg(bench.val(i + $r) ORDER BY i % $CU_MEM_K))
		        FROM generate_series($((r * 1024)), $((r * 1024 + 1023))) i" >/dev/null
	done
	log2=$(current_log "$doc")
	reads="SELECT delta FROM synclog.read('$doc', '$log', $lsn, 2147483647, 2147483647)
	       UNION ALL SELECT delta FROM synclog.read('$doc', '$log2', (SELECT base_lsn FROM synclog.current_log('$doc')), 2147483647, 2147483647)"
	bytes=$(q -c "SELECT sum(octet_length(delta)) FROM ($reads) s")
	checkpoint
	gr=$(measure_rss cu_mem_read psql_in_backend cu_mem_read \
		"SELECT count(*), sum(octet_length(delta)), sum(get_byte(delta, 0)) FROM ($reads) s;")
	tr=$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' "$W/cu_mem_read.out" | tail -1)
	gc=nan tc=nan
	if cu_has_catch_up; then
		read -r tlog tlsn <<<"$(q -F ' ' -c "SELECT log_id, lsn FROM synclog.catch_up_target('$doc')")"
		gc=$(measure_rss cu_mem_cu psql_in_backend cu_mem_cu \
			"SELECT count(*), sum(octet_length(value)), sum(get_byte(value, 0)) FROM synclog.catch_up('$doc', '$log', $lsn, '\\x$chain', '$tlog', $tlsn, max_rows => 2147483647);")
		tc=$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' "$W/cu_mem_cu.out" | tail -1)
		[ "$(sed -n 's/^\([0-9]*\)|.*/\1/p' "$W/cu_mem_cu.out" | tail -1)" = "$CU_MEM_K" ] ||
			bench_die "catch_up over the memory log did not return $CU_MEM_K items: $(tail -3 "$W/cu_mem_cu.out")"
		tc=$(awk -v m="$tc" 'BEGIN { printf "%.3f", m / 1000 }')
	fi
	tr=$(awk -v m="$tr" 'BEGIN { printf "%.3f", m / 1000 }')
	echo "$gr $gc $tr $tc $bytes"
}

bench_catchup() {
	local gen db_bytes pages_per vac seg r i s n res t tc b st tl n_b p_a p_b p_d big_bytes mem_r mem_c n_big="" mem=""
	local dbv=() ca=() cb=() cg=() big_kb=() CU_LAST="" rot_ms="" sv_a="" sv_b="" sv_t=""
	local -A CU_T CU_B CU_MS CU_P CU_S0
	log "area 16: catch-up and repair on a page store ($CU_COMMITS commits, $CU_ROT rotations)"
	zip_build_tools
	area_title 16 "16. Catch-up and repair on a page store"
	vac=$((CU_COMMITS * 2 / 3))
	gen=$("$W/pagestore" -c "$CU_COMMITS" -s 3 -t "$CU_PAGES" -V "$vac" "$W/cu.bin" "$W/cu.hex") ||
		bench_die "pagestore failed"
	rm -f "$W/cu.bin"
	pages_per=$(awk '{ printf "%.1f", $4 / $2 }' <<<"$gen")
	db_bytes=$(awk '{ print $8 * 4096 }' <<<"$gen")
	q -c "CREATE TABLE public.cu_delta (n serial PRIMARY KEY, delta bytea NOT NULL)" \
		-c "\\copy public.cu_delta (delta) FROM '$W/cu.hex'" -c "VACUUM ANALYZE public.cu_delta" \
		-c "SELECT synclog.create_doc('cu')" -c "SELECT synclog.create_doc('cu_b')" >/dev/null
	rm -f "$W/cu.hex"
	# Segments of the commits between rotations; followers (b) and (c) sync
	# once at the end of the second segment (in the log after the first
	# rotation), so CU_ROT - 1 rotations happen while they are away.
	seg=$(((CU_COMMITS + CU_ROT) / (CU_ROT + 1)))
	for ((s = 0; s <= CU_ROT; s++)); do
		i=$((s * seg + 1))
		n=$(((s + 1) * seg))
		((s == CU_ROT || n > CU_COMMITS)) && n=$CU_COMMITS
		((i <= n)) && cu_load "$i" "$n" cu cu_b
		if ((s == 1)); then
			n_b=$n
			rm -rf "$W/cu_b0" "$W/cu_c0"
			res=$(cu_sync cu_b0 "$W/cu_b0" cu_b --client-id returning)
			CU_S0[cu_b0]=${res#* }
			res=$(cu_sync cu_c0 "$W/cu_c0" cu --no-ack)
			CU_S0[cu_c0]=${res#* }
		fi
		if ((s < CU_ROT)); then
			rot_ms+=" $(time_sql_ms "SELECT synclog.compact('cu')")"
			q -c "SELECT synclog.compact('cu_b')" -c "SET synclog.retention = 0" -c "SELECT synclog.gc()" >/dev/null
		fi
		log "  commits up to $n loaded${n_b:+, (b) and (c) synced at commit $n_b}"
	done
	[ "$(q -c "SELECT count(*) FROM synclog.log l JOIN synclog.doc d USING (doc_id) WHERE d.name = 'cu' AND l.state = 'collected'")" -ge 1 ] ||
		bench_die "gc collected no log of the page store"
	[ "$(q -c "SELECT count(*) FROM synclog.log l JOIN synclog.doc d USING (doc_id) WHERE d.name = 'cu_b' AND l.state = 'collected'")" -le 1 ] ||
		bench_die "gc collected the logs the acked follower (b) sits in"
	# what each follower must receive at the least
	p_a=$(cu_changed_bytes 0)
	p_b=$(cu_changed_bytes "$n_b")
	p_d=4100
	# what the server offers (a), (b), and a follower at the active log's
	# base (where a range repair continues from)
	if cu_has_catch_up; then
		sv_a=$(cu_server_view cu)
		sv_b=$(cu_server_view cu_b "$(stat_of log "${CU_S0[cu_b0]}")" "$(stat_of lsn "${CU_S0[cu_b0]}")")
		read -r t b <<<"$(q -F ' ' -c "SELECT log_id, base_lsn FROM synclog.current_log('cu')")"
		sv_t=$(cu_server_view cu "$t" "$b")
	fi
	for ((r = 1; r <= REPS; r++)); do
		dbv+=("$db_bytes"); ca+=("$p_a"); cb+=("$p_b"); cg+=("$p_d")
		cu_run a empty cu
		st=$(stat_of hash "$CU_LAST")
		rm -rf "$W/cu_d"
		cp -a "$W/cu_a" "$W/cu_d"
		cu_corrupt "$W/cu_d"
		cu_run d keep cu
		[ "$(stat_of hash "$CU_LAST")" = "$st" ] || bench_die "(d) did not end at the head's hash"
		cu_run b cu_b0 cu_b
		cu_run c cu_c0 cu
		log "  run $r: (a) $(cu_last a), (b) $(cu_last b), (c) $(cu_last c), (d) $(cu_last d); database $db_bytes B"
	done
	rm -rf "$W/cu_a" "$W/cu_b" "$W/cu_c" "$W/cu_d" "$W/cu_b0" "$W/cu_c0"

	if ((CU_BIG_PAGES > 0)); then
		n_big=$(cu_big_load cu_big "$CU_BIG_PAGES")
		big_bytes=$((n_big * 4096))
		for tl in 0 ${CU_BIG_TAIL/#0/}; do
			((tl > 0)) && cu_big_edit cu_big "$tl" "$n_big"
			for ((r = 1; r <= REPS; r++)); do
				((tl > 0)) || big_kb+=("$big_bytes")
				checkpoint
				cu_run "big$tl" empty cu_big
				rm -rf "$W/cu_rep$tl"
				cp -a "$W/cu_big$tl" "$W/cu_rep$tl"
				cu_corrupt "$W/cu_rep$tl"
				cu_run "rep$tl" keep cu_big
				log "  run $r: $(mib_of "$big_bytes") MiB database, log of $tl commits: download $(cu_last "big$tl"), one-page repair $(cu_last "rep$tl")"
			done
			rm -rf "$W/cu_big$tl" "$W/cu_rep$tl"
		done
		rm -f "$W/cu_big.db"
		q -c "SELECT synclog.drop_doc('cu_big')" >/dev/null
	fi

	if ((CU_MEM_MB > 0)); then
		mem=$(cu_memory)
		log "  memory over a $CU_MEM_MB MiB log: $mem (read MiB, catch_up MiB, read s, catch_up s, log bytes)"
		q -c "SELECT synclog.drop_doc('cu_mem')" >/dev/null
	fi

	area_note 16 "Workload (test/bench/pagestore.c, the generator of area 15): a notes application on a real SQLite database (libsqlite3, 4 KiB pages), $CU_COMMITS commits, $pages_per changed pages per commit on average, commit $vac deletes the older half of the notes and events and runs VACUUM, which shrinks the file; a $(mib_of "$db_bytes") MiB database at the end. Each commit's changed pages are one delta (key: page number, 4 bytes big-endian; value: the 4096-byte page; a page past the end is deleted) appended with synclog.append_delta to two documents, \`cu\` and \`cu_b\`; after every $seg commits both rotate (synclog.compact) and synclog.gc() runs with synclog.retention = 0, $CU_ROT rotations in all. Followers: the reference client src/client/synclog-follow built from the measured source, --once, wall time of the process (connecting and the replica's open check included):
- (a) starts late, at the end, with an empty directory (\`cu\`);
- (b) synced and acked once at commit $n_b (in the log after the first rotation; its ack keeps its logs: \`cu_b\`), comes back at the end, $((CU_ROT - 1)) rotations later;
- (c) synced once at commit $n_b without acking (\`cu\`): its log was collected; comes back at the end;
- (d) (a)'s replica, up to date, with the value of one page overwritten in its replica.db (sqlite3), syncs again.
(b) and (c) come back from copies of their replicas, so every run starts from the same place. Times are of the whole process; for the big database, where the client has them, the time its paths took by its own counters (replay_ms, catch_up_ms, range_repair_ms, download_ms) is shown as well: the difference is starting, connecting, and the open check, which reads every item of the replica before anything else. Bytes moved: what the client's own counters say it received (every column of every row: the growth of the stats line's bytes_* and *_bytes counters but bytes_marker, which bytes_log includes, and bytes_downloaded, the key and value bytes of completed downloads). Database size: the SQLite file at the end. Changed since the position: key and value bytes of the distinct pages changed after the follower's commit (decoded from the deltas), the least a follower could receive.${n_big:+
- One-page repair on a big database: a $(mib_of "$big_bytes") MiB SQLite file (a table of notes with hex text bodies and an index, written by the sqlite3 shell) appended to a document 1024 pages an entry and rotated; each run downloads it into an empty directory (the baseline: a full download), changes one page of that replica as in (d) and syncs again. Then $CU_BIG_TAIL commits of 23 pages each (edits in place of the first twenty-fifth of the file: the page with 16 bytes changed) and the same again: the repair then has a log after the rotation to deal with.}${mem:+
- Server memory: a document of $CU_MEM_K keys of 4 KiB, rotated, then $CU_MEM_MB MiB of log rewriting those keys (1024 a 4 MiB entry) with a rotation half-way; RssAnon growth (as in area 7) of the backend that reads both logs from the base of the first in one statement: two \`synclog.read\` calls (the replay a returning client makes today, all at once) and \`synclog.catch_up\` from the same position to catch_up_target with max_rows => 2147483647 (every page at once: the most one call can hold).}"
	area_post 16 "Paths the client took (run 1):
- (a): ${CU_P[a]}
- (b): ${CU_P[b]}
- (c): ${CU_P[c]}
- (d): ${CU_P[d]}"
	record 16 cu_db "database size (baseline)" bytes base - - "${dbv[*]}"
	record 16 cu_a "(a) starts late: bytes moved" bytes subj cu_db "ratio<=1.25" "${CU_B[a]# }"
	record 16 cu_b "(b) acked, back after $((CU_ROT - 1)) rotations: bytes moved" bytes subj cu_db "ratio<=1.25" "${CU_B[b]# }"
	record 16 cu_c "(c) its log collected: bytes moved" bytes subj cu_db "ratio<=1.25" "${CU_B[c]# }"
	record 16 cu_d "(d) one page changed locally: bytes moved" bytes subj cu_db - "${CU_B[d]# }"
	record 16 cu_ca "(a) changed since its position: all pages (baseline)" bytes base - - "${ca[*]}"
	record 16 cu_a2 "(a) bytes moved vs changed since its position" bytes subj cu_ca - "${CU_B[a]# }"
	record 16 cu_cb "(b), (c) changed since commit $n_b (baseline)" bytes base - - "${cb[*]}"
	record 16 cu_b2 "(b) bytes moved vs changed since its position" bytes subj cu_cb - "${CU_B[b]# }"
	record 16 cu_c2 "(c) bytes moved vs changed since its position" bytes subj cu_cb - "${CU_B[c]# }"
	record 16 cu_cd "(d) changed: one page (baseline)" bytes base - - "${cg[*]}"
	record 16 cu_d2 "(d) bytes moved vs the page changed" bytes subj cu_cd - "${CU_B[d]# }"
	if [ -n "$sv_a" ]; then
		record 16 cu_sva "server: synclog.catch_up from the empty state, key and value bytes (what (a) could move)" bytes subj cu_db - "${sv_a%% *}"
		record 16 cu_svb "server: synclog.catch_up from (b)'s position (what (b) could move)" bytes subj cu_db - "${sv_b%% *}"
		record 16 cu_svt "server: synclog.catch_up from the active log's base (what a repair at the base would move after its buckets; one at the head moves none)" bytes subj cu_db - "${sv_t%% *}"
		area_post 16 "What synclog.sync_cost told the client (replay_bytes, catch_up_bytes, snapshot_bytes), against what synclog.catch_up returns (key and value bytes) from the same position: (a) no state: $(cu_cost_line "$sv_a"); (b) its position: $(cu_cost_line "$sv_b"); the active log's base: $(cu_cost_line "$sv_t"). The client replays when replay_bytes <= catch_up_bytes or replay_bytes <= 256 KiB and, without a state, downloads on a tie."
	fi
	record 16 cu_rot "information: the $CU_ROT rotations of \`cu\` (synclog.compact, psql \\timing), each" ms info - - "${rot_ms# }"
	record 16 cu_ta "(a) starts late: time (baseline)" s base - - "${CU_T[a]# }"
	record 16 cu_tb "(b) returns: time vs (a)" s subj cu_ta - "${CU_T[b]# }"
	record 16 cu_tc "(c) log collected: time vs (a)" s subj cu_ta - "${CU_T[c]# }"
	record 16 cu_td "(d) one page changed: time vs (a)" s subj cu_ta - "${CU_T[d]# }"
	if ((CU_BIG_PAGES > 0)); then
		record 16 cu_bigdb "big database: size (baseline)" bytes base - - "${big_kb[*]}"
		for tl in 0 ${CU_BIG_TAIL/#0/}; do
			if ((tl == 0)); then t="big database, just rotated"; else t="big database, $tl commits since the rotation"; fi
			record 16 "cu_repb$tl" "$t: one-page repair, bytes moved vs its size" bytes subj cu_bigdb "ratio<=0.01" "${CU_B[rep$tl]# }"
			record 16 "cu_bigb$tl" "$t: full download, bytes moved vs its size" bytes subj cu_bigdb - "${CU_B[big$tl]# }"
			record 16 "cu_bigt$tl" "$t: full download, time (baseline)" s base - - "${CU_T[big$tl]# }"
			record 16 "cu_rept$tl" "$t: one-page repair, time" s subj "cu_bigt$tl" "ratio<=0.1" "${CU_T[rep$tl]# }"
			if [ "$(tr -d ' 0' <<<"${CU_MS[big$tl]}")" != "" ]; then
				record 16 "cu_bigm$tl" "$t: full download, time in the path (the client's *_ms counters; baseline)" ms base - - "${CU_MS[big$tl]# }"
				record 16 "cu_repm$tl" "$t: one-page repair, time in the paths (the client's *_ms counters)" ms subj "cu_bigm$tl" - "${CU_MS[rep$tl]# }"
			fi
		done
		area_post 16 "Path of the one-page repair on the big database (run 1): just rotated: ${CU_P[rep0]}; $CU_BIG_TAIL commits later: ${CU_P[rep$CU_BIG_TAIL]}"
	fi
	if [ -n "$mem" ]; then
		read -r mem_r mem_c t tc b <<<"$mem"
		record 16 cu_mr "server memory, synclog.read of the $(mib_of "$b") MiB of log in one statement (baseline)" MiB base - - "$mem_r"
		if [ "$mem_c" != nan ]; then
			record 16 cu_mc "server memory, synclog.catch_up over the same log in one call" MiB subj cu_mr "max<=64" "$mem_c"
			record 16 cu_mct "time of that catch_up call (information)" s info - - "$tc"
		else
			area_post 16 "This build has no synclog.catch_up: server memory of a catch-up not measured."
		fi
		record 16 cu_mrt "time of that synclog.read call (information)" s info - - "$t"
	fi
}
