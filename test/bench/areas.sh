# test/bench/areas.sh - areas 8 to 13 of the benchmarks: batched appends,
# the rotation matrix against an SQL rebuild (with plots), switch-over by
# marker against a snapshot download, 100,000 documents, 50
# rotate-and-collect cycles, and the snapshot hash against raw XXH3.
#
# Sourced by run.sh after lib.sh and its own helpers (q, fill, build_state,
# record, ...), with the mode's sizes set.

# Helpers ---------------------------------------------------------------------

# qd DB ARGS...: q against another database.
qd() {
	local d=$1
	shift
	psql -X -q -At -v ON_ERROR_STOP=1 -d "$d" "$@"
}

# new_db NAME: a further database of the benchmark cluster with synclog in
# it (areas whose table sizes must not include the other areas' data);
# dropped by cleanup.
new_db() {
	psql -X -q -d postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$1\"" >/dev/null
	EXTRA_DBS+=("$1")
	qd "$1" -c "CREATE EXTENSION synclog" >/dev/null
}

# median of the arguments
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# state_label K: the size of K keys of 4 KiB, for people.
state_label() {
	if (($1 >= 256)); then echo "$(($1 * 4 / 1024)) MiB"; else echo "$(($1 * 4)) KiB"; fi
}

mib_of() {
	awk -v b="$1" 'BEGIN { printf "%.3f", b / 1048576 }'
}

# synclog's tables and their indexes and TOAST, in bytes.
SL_SIZE_SQL="SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'synclog' AND c.relkind = 'r'"

# measure_write SIZE_SQL SQL: runs SQL in one session and prints
# "<ms> <WAL bytes> <growth of SIZE_SQL in bytes>": psql's \timing of SQL,
# the WAL inserted meanwhile (pg_current_wal_insert_lsn before and after,
# in the same session: on a quiet server, the WAL of SQL), and how much the
# value of SIZE_SQL (a relation size query) grew.
measure_write() {
	local out ms rest
	out=$(psql -X -At -v ON_ERROR_STOP=1 -d "$DB" 2>&1 <<EOF
SELECT pg_current_wal_insert_lsn() AS w0, ($1) AS s0 \gset
\timing on
$2;
\timing off
SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'w0')::bigint || ' ' || (($1) - :s0)::bigint;
EOF
) || { echo "$out" >&2; bench_die "statement failed: $2"; }
	ms=$(echo "$out" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1)
	rest=$(echo "$out" | tail -1)
	echo "$ms $rest"
}

# plot_png OUT TITLE XLABEL YLABEL GNUPLOT-PLOT-COMMAND: a log-log line
# plot, if gnuplot is there.  Returns 1 if it could not be drawn.
plot_png() {
	local out=$1 title=$2 xl=$3 yl=$4 cmd=$5 term
	command -v gnuplot >/dev/null 2>&1 || return 1
	if gnuplot -e 'set terminal' 2>&1 | grep -qw pngcairo; then
		term="pngcairo size 900,560 font 'sans,10'"
	else
		term="png size 900,560"
	fi
	gnuplot >"$W/gnuplot.log" 2>&1 <<EOF || { cat "$W/gnuplot.log" >&2; return 1; }
set terminal $term
set output '$out'
set title "$title"
set xlabel "$xl"
set ylabel "$yl"
set logscale xy
set grid
set key outside right top
$cmd
EOF
	[ -s "$out" ]
}

# 8: batched deltas -----------------------------------------------------------

bench_append_batched() {
	local r i keys vals delta tp tq tl ta tz plain=() pgq=() pl=() app=() zoff=() bytes
	log "area 8: batched appends, 100 changes per entry, ${T_APPEND}s per run"
	# 100 distinct random 100-byte values (within one delta nothing repeats,
	# so TOAST compression cannot shrink it), keys :k .. :k + 99.
	keys="ARRAY[int4send(:k)"
	for ((i = 1; i < 100; i++)); do keys="$keys, int4send(:k + $i)"; done
	keys="$keys]"
	vals=$(head -c 10000 /dev/urandom | od -An -v -tx1 | tr -d ' \n' |
		awk -v q="'" '{ s = "ARRAY["; for (i = 0; i < 100; i++) s = s (i ? ", " : "") q "\\x" substr($0, i * 200 + 1, 200) q "::bytea"; print s "]" }')
	# The same bytes as one value: the encoded delta of keys 0..99.
	delta=$(q -c "SELECT encode(synclog.encode_delta(${keys//:k/0}, $vals), 'hex')")
	bytes=$(( ${#delta} / 2 ))
	local Q="'"
	printf '\\set k random(1, 1000000)\nSELECT synclog.append(%sbenchb%s, %s, %s);\n' "$Q" "$Q" "$keys" "$vals" >"$W/appendb.sql"
	printf '\\set k random(1, 1000000)\nSELECT bench.pl_append(%sbenchb%s, %s, %s);\n' "$Q" "$Q" "$keys" "$vals" >"$W/plb.sql"
	printf '\\set k random(1, 1000000)\nINSERT INTO bench.plainb (doc, payload) VALUES (%sbenchb%s, int4send(:k) || %s\\x%s%s::bytea);\n' "$Q" "$Q" "$Q" "$delta" "$Q" >"$W/plainb.sql"
	printf '\\set k random(1, 1000000)\nSELECT pgq.insert_event(%sbench_q%s, %sbenchb%s, encode(int4send(:k) || %s\\x%s%s::bytea, %shex%s));\n' "$Q" "$Q" "$Q" "$Q" "$Q" "$delta" "$Q" "$Q" "$Q" >"$W/pgqb.sql"
	q -c "SELECT synclog.create_doc('benchb')" -c "INSERT INTO bench.pl_doc (name) VALUES ('benchb')" >/dev/null
	area_title 8 "8. Append, batched deltas (100 changes per entry), one connection"
	area_note 8 "pgbench -n -M prepared -c1 -T $T_APPEND; each transaction writes one entry of 100 changes: keys :k .. :k+99 (:k random), 100 distinct random values of 100 bytes ($bytes bytes encoded). synclog: \`synclog.append('benchb', <100 keys>, <100 values>)\`; plain INSERT: one row whose payload is the encoded delta ($bytes bytes + 4); PgQ: one event carrying the same bytes hex-encoded; PL/pgSQL: \`bench.pl_append('benchb', <100 keys>, <100 values>)\` (arrays stored as they come). Runs alternate plain / PgQ / PL/pgSQL / synclog / synclog with \`synclog.compression = off\` (PGOPTIONS; the values are random, so the append's compression check finds nothing worth compressing, and this row shows what the check costs). One transaction moves about $((bytes / 1024)) KiB, so 1000 tx/s is about $((bytes * 1000 / 1048576)) MiB/s of changes."
	for ((r = 1; r <= REPS; r++)); do
		tp=$(pgbench_tps plainb.$r -c1 -T "$T_APPEND" -f "$W/plainb.sql")
		tq=$(pgbench_tps pgqb.$r -c1 -T "$T_APPEND" -f "$W/pgqb.sql")
		tl=$(pgbench_tps plb.$r -c1 -T "$T_APPEND" -f "$W/plb.sql")
		ta=$(pgbench_tps appendb.$r -c1 -T "$T_APPEND" -f "$W/appendb.sql")
		tz=$(PGOPTIONS='-c synclog.compression=off' pgbench_tps appendz.$r -c1 -T "$T_APPEND" -f "$W/appendb.sql")
		plain+=("$tp"); pgq+=("$tq"); pl+=("$tl"); app+=("$ta"); zoff+=("$tz")
		log "  run $r: plain $tp, PgQ $tq, PL/pgSQL $tl, append $ta, append with compression off $tz tps"
	done
	record 8 b_plain "plain INSERT of the encoded delta (baseline)" "tx/s" base - - "${plain[*]}"
	record 8 b_pgq "PgQ insert_event, hex (baseline)" "tx/s" base - - "${pgq[*]}"
	record 8 b_pl "PL/pgSQL with key and value arrays (baseline)" "tx/s" base - - "${pl[*]}"
	record 8 b_append "synclog.append of 100 changes vs plain INSERT" "tx/s" subj b_plain - "${app[*]}"
	record 8 b_append_q "synclog.append of 100 changes vs PgQ" "tx/s" subj b_pgq - "${app[*]}"
	record 8 b_append_l "synclog.append of 100 changes vs PL/pgSQL" "tx/s" subj b_pl - "${app[*]}"
	record 8 b_zoff "synclog.append of 100 changes, synclog.compression = off (baseline)" "tx/s" base - - "${zoff[*]}"
	record 8 b_zon "synclog.append of 100 changes, compression on vs off" "tx/s" subj b_zoff - "${app[*]}"
	wal_rows 8 b b "$REPS"
}

# 9: rotation matrix ------------------------------------------------------------

# mx_log DOC N REP: append N entries of one 100-byte value each to DOC, at
# keys 2^30 + 0 .. 2^30 + N - 1 (distinct; a warm-up log wrote them all
# before, so every measured log updates N existing keys, whatever the
# state), committing every 1000 appends.  The same entries, decoded, go
# into bench.changes for the SQL rebuild.
mx_log() {
	local doc=$1 n=$2 rep=$3
	q -c "DO \$\$ BEGIN
	        FOR b IN 0 .. ($n - 1) / 1000 LOOP
	          PERFORM synclog.append('$doc', ARRAY[bench.key(1073741824 + i)], ARRAY[bench.small(i + $rep)])
	             FROM generate_series(b * 1000, least(b * 1000 + 999, $n - 1)) i;
	          COMMIT;
	        END LOOP;
	      END \$\$" >/dev/null
	q -c "INSERT INTO bench.changes (doc, lsn, key, value)
	      SELECT '$doc', r.lsn, d.key, d.value
	        FROM synclog.current_log('$doc') c,
	             synclog.read('$doc', c.log_id, c.base_lsn, 2147483647, 2147483647) r,
	             synclog.decode_delta(r.delta) d
	       WHERE r.kind = 'delta'" >/dev/null
}

# The SQL rebuild's new table; its size is what the rebuild wrote.
RB_SIZE_SQL="SELECT coalesce(pg_total_relation_size(to_regclass('bench.rebuilt')), 0)::bigint"

bench_rotation_matrix() {
	local k n r doc nmax sm res ms wal grow keys rb_keys mk s0 cell id label plotdir
	local -A T_SL T_RB W_SL W_RB G_SL G_RB T_GC
	local prevn
	log "area 9: rotation matrix, logs of ${MX_LOGS// /, } entries on states of ${MX_STATES_K// /, } keys of 4 KiB"
	area_title 9 "9. Rotation cost by log size and state size, against an SQL rebuild"
	nmax=0
	for n in $MX_LOGS; do if ((n > nmax)); then nmax=$n; fi; done
	for k in $MX_STATES_K; do
		doc=mx_$k
		log "  state of $k keys ($(state_label "$k")): building"
		build_state "$doc" "$k"
		q -c "SELECT synclog.compact('$doc')" >/dev/null
		# Warm-up: the largest log once, so that the measured logs update
		# keys that exist (the same work on every state).
		mx_log "$doc" "$nmax" 0
		q -c "SELECT synclog.compact('$doc')" >/dev/null
		# ANALYZE first: see gc_stale_stats for what gc does without it.
		q -c "ANALYZE synclog.kv" -c "ANALYZE synclog.entry" -c "SET synclog.retention = 0" -c "SELECT synclog.gc()" >/dev/null
		# The baseline starts from the same state, one change row per key.
		q -c "TRUNCATE bench.changes" \
			-c "INSERT INTO bench.changes (doc, lsn, key, value) SELECT '$doc', 0, s.key, s.value FROM synclog.current_log('$doc') c, synclog.snapshot('$doc', c.log_id, NULL, 2147483647) s" \
			-c "VACUUM ANALYZE bench.changes" -c "VACUUM ANALYZE synclog.kv" -c "VACUUM ANALYZE synclog.entry" >/dev/null
		for ((r = 1; r <= REPS; r++)); do
			for n in $MX_LOGS; do
				mx_log "$doc" "$n" "$r"
				q -c "VACUUM ANALYZE bench.changes" >/dev/null
				checkpoint
				res=$(measure_write "$SL_SIZE_SQL" "SELECT synclog.compact('$doc')")
				read -r ms wal grow <<<"$res"
				T_SL[$k,$n]+=" $ms"; W_SL[$k,$n]+=" $(mib_of "$wal")"; G_SL[$k,$n]+=" $(mib_of "$grow")"
				checkpoint
				res=$(measure_write "$RB_SIZE_SQL" "CREATE TABLE bench.rebuilt AS SELECT DISTINCT ON (key) key, value FROM bench.changes WHERE doc = '$doc' ORDER BY key, lsn DESC")
				read -r ms wal grow <<<"$res"
				T_RB[$k,$n]+=" $ms"; W_RB[$k,$n]+=" $(mib_of "$wal")"; G_RB[$k,$n]+=" $(mib_of "$grow")"
				# Both must have made the same state.
				keys=$(q -c "SELECT (synclog.hash_info(snapshot_hash)).item_count FROM synclog.current_log('$doc')")
				rb_keys=$(q -c "SELECT count(*) FROM bench.rebuilt")
				[ "$keys" = "$rb_keys" ] || bench_die "rotation matrix: synclog's state has $keys keys, the SQL rebuild's $rb_keys"
				# The baseline's own rotation: its state becomes the rebuilt table.
				q -c "TRUNCATE bench.changes" \
					-c "INSERT INTO bench.changes (doc, lsn, key, value) SELECT '$doc', 0, key, value FROM bench.rebuilt" \
					-c "DROP TABLE bench.rebuilt" >/dev/null
				# Collect the log sealed two rotations ago (an entry of
				# MX_LOGS before this one, cyclically; the warm-up log
				# counts as the largest).
				ms=$(psql -X -At -v ON_ERROR_STOP=1 -d "$DB" -c "SET synclog.retention = 0" -c '\timing on' -c "SELECT synclog.gc()" |
					sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1)
				T_GC[$k,$n]+=" $ms"
				log "  run $r, $k keys, $n entries: synclog $(echo "${T_SL[$k,$n]}" | awk '{ print $NF }') ms, rebuild $(echo "${T_RB[$k,$n]}" | awk '{ print $NF }') ms, gc $ms ms"
			done
		done
		q -c "TRUNCATE bench.changes" >/dev/null
	done

	s0=${MX_STATES_K%% *}
	area_note 9 "For each state (keys of 4 KiB: $(for k in $MX_STATES_K; do printf '%s keys = %s; ' "$k" "$(state_label "$k")"; done)built with appends of 1024 keys and one rotation), a warm-up log writes keys 2^30 .. 2^30 + $nmax - 1 (one 100-byte value per entry) and is rotated; then each run appends a log of N entries updating keys 2^30 .. 2^30 + N - 1 (N distinct existing keys, the same log on every state), checkpoints, and rotates it with synclog.compact; checkpoints again and runs the obvious SQL rebuild of the same document: \`CREATE TABLE bench.rebuilt AS SELECT DISTINCT ON (key) key, value FROM bench.changes WHERE doc = ... ORDER BY key, lsn DESC\` over every change of the document, decoded (the state as one row per key plus the log's entries through synclog.decode_delta; after each rebuild the baseline's change table is replaced by the rebuilt state, which is the baseline's rotation). Both end with the same number of keys (checked). Time: psql \\timing; WAL: pg_current_wal_insert_lsn() before and after, in the same session (includes full-page images after the checkpoint); growth: synclog's tables with indexes and TOAST (pg_total_relation_size) after minus before, and the size of the new table for the rebuild. synclog.retention = 0 and synclog.gc() after each run (untimed) collect old logs. work_mem is the default, so the rebuild's sort spills to disk.
- *synclog, S state vs the smallest state* rows: the same log rotated on a larger state, against the smallest state ($(state_label "$s0")): the target (<= 2x) is that the cost follows the log, not the state.
- *synclog vs SQL rebuild* rows: below 1x means synclog is faster / writes less.
- *synclog.gc()* rows: the collection after each rotation (untimed above), which removes the log sealed two rotations earlier (an N-entry log of the previous size in the sequence), with synclog.retention = 0, against the same on the smallest state. synclog.kv and synclog.entry were ANALYZEd after the warm-up; see the last rows for gc on tables without statistics."

	for k in $MX_STATES_K; do
		for n in $MX_LOGS; do
			cell="$n entries on $(state_label "$k")"
			if [ "$k" = "$s0" ]; then
				record 9 "mx_t_${k}_$n" "synclog: rotate $cell (baseline for larger states)" ms base - - "${T_SL[$k,$n]# }"
			else
				record 9 "mx_t_${k}_$n" "synclog: rotate $cell, vs the same log on $(state_label "$s0")" ms subj "mx_t_${s0}_$n" "ratio<=2" "${T_SL[$k,$n]# }"
			fi
			record 9 "mx_rt_${k}_$n" "SQL rebuild: $cell (baseline)" ms base - - "${T_RB[$k,$n]# }"
			record 9 "mx_tv_${k}_$n" "synclog vs SQL rebuild: time, $cell" ms subj "mx_rt_${k}_$n" - "${T_SL[$k,$n]# }"
			record 9 "mx_rw_${k}_$n" "SQL rebuild: WAL, $cell (baseline)" MiB base - - "${W_RB[$k,$n]# }"
			record 9 "mx_w_${k}_$n" "synclog vs SQL rebuild: WAL, $cell" MiB subj "mx_rw_${k}_$n" - "${W_SL[$k,$n]# }"
			record 9 "mx_rg_${k}_$n" "SQL rebuild: new table, $cell (baseline)" MiB base - - "${G_RB[$k,$n]# }"
			record 9 "mx_g_${k}_$n" "synclog vs SQL rebuild: table growth, $cell" MiB subj "mx_rg_${k}_$n" - "${G_SL[$k,$n]# }"
		done
	done
	# gc, by the size of the log it collected.
	prevn=${MX_LOGS##* }
	for n in $MX_LOGS; do
		for k in $MX_STATES_K; do
			if [ "$k" = "$s0" ]; then
				record 9 "mx_gc_${k}_$n" "synclog.gc() collecting a $prevn-entry log, $(state_label "$k") state (baseline)" ms base - - "${T_GC[$k,$n]# }"
			else
				record 9 "mx_gc_${k}_$n" "synclog.gc() collecting a $prevn-entry log, $(state_label "$k") state" ms subj "mx_gc_${s0}_$n" - "${T_GC[$k,$n]# }"
			fi
		done
		prevn=$n
	done
	gc_stale_stats

	# The matrix at a glance (medians), and the plots.
	{
		printf '| Log (entries) | State | synclog ms | rebuild ms | synclog WAL MiB | rebuild WAL MiB | synclog growth MiB | rebuild table MiB |\n'
		printf '|---|---|---|---|---|---|---|---|\n'
		for n in $MX_LOGS; do
			for k in $MX_STATES_K; do
				# shellcheck disable=SC2086
				printf '| %s | %s | %.1f | %.1f | %.2f | %.2f | %.2f | %.2f |\n' "$n" "$(state_label "$k")" \
					"$(median ${T_SL[$k,$n]})" "$(median ${T_RB[$k,$n]})" \
					"$(median ${W_SL[$k,$n]})" "$(median ${W_RB[$k,$n]})" \
					"$(median ${G_SL[$k,$n]})" "$(median ${G_RB[$k,$n]})"
			done
		done
	} >"$W/mx.md"
	area_post 9 "Medians at a glance (synclog's growth can be 0 when the rotation fits in pages that gc freed and VACUUM made reusable):

$(cat "$W/mx.md")"

	# One data file per line of each plot: "x median-synclog median-rebuild".
	for k in $MX_STATES_K; do
		for n in $MX_LOGS; do
			# shellcheck disable=SC2086
			echo "$n $(median ${T_SL[$k,$n]}) $(median ${T_RB[$k,$n]})"
		done >"$W/mx_state_$k.dat"
	done
	for n in $MX_LOGS; do
		for k in $MX_STATES_K; do
			# shellcheck disable=SC2086
			echo "$(awk -v k="$k" 'BEGIN { print k * 4 / 1024 }') $(median ${T_SL[$k,$n]}) $(median ${T_RB[$k,$n]})"
		done >"$W/mx_log_$n.dat"
	done
	if [ "$MODE" = smoke ]; then plotdir=$W/plots; else plotdir=$(dirname "$OUT_FILE")/bench; fi
	mkdir -p "$plotdir"
	local cmd_log="plot" cmd_state="plot" i=1 sep=""
	for k in $MX_STATES_K; do
		cmd_log="$cmd_log$sep '$W/mx_state_$k.dat' using 1:2 with linespoints lw 2 pt 7 lc $i title 'synclog, $(state_label "$k") state', '' using 1:3 with linespoints lw 1 dt 2 pt 6 lc $i title 'SQL rebuild, $(state_label "$k") state'"
		sep=","
		i=$((i + 1))
	done
	i=1; sep=""
	for n in $MX_LOGS; do
		cmd_state="$cmd_state$sep '$W/mx_log_$n.dat' using 1:2 with linespoints lw 2 pt 7 lc $i title 'synclog, $n-entry log', '' using 1:3 with linespoints lw 1 dt 2 pt 6 lc $i title 'SQL rebuild, $n-entry log'"
		sep=","
		i=$((i + 1))
	done
	if plot_png "$plotdir/rotation_vs_log.png" "Rotation time against log size (medians; solid: synclog.compact, dashed: SQL rebuild)" "log size (entries)" "time (ms)" "$cmd_log" &&
		plot_png "$plotdir/rotation_vs_state.png" "Rotation time against state size (medians; solid: synclog.compact, dashed: SQL rebuild)" "state size (MiB)" "time (ms)" "$cmd_state"; then
		if [ "$MODE" != smoke ]; then
			area_post 9 "![Rotation time against log size](bench/rotation_vs_log.png)

![Rotation time against state size](bench/rotation_vs_state.png)"
		fi
		log "  plots written to $plotdir"
	else
		area_post 9 "(No plots: gnuplot is not installed or failed.)"
	fi
}

# gc_stale_stats: synclog.gc() right after a document was loaded and rotated
# twice, before anything ANALYZEd synclog.kv (autovacuum had no time to),
# against the same on a twin document after ANALYZE.  Documents of K keys
# of 100 bytes written as one entry, then a 1000-entry log.
gc_stale_stats() {
	local k d ms r
	local -A G
	for k in $GC_STALE_K; do
		for r in stale analyzed; do
			d=gcs_${r}_$k
			q -c "SELECT synclog.create_doc('$d')" \
				-c "SELECT synclog.append('$d', array_agg(bench.key(i) ORDER BY i), array_agg(bench.small(i) ORDER BY i)) FROM generate_series(0, $k - 1) i" \
				-c "SELECT synclog.compact('$d')" \
				-c "SELECT count(synclog.append('$d', ARRAY[bench.key(i)], ARRAY[bench.small(i + 1)])) FROM generate_series(0, 999) i" \
				-c "SELECT synclog.compact('$d')" >/dev/null
			if [ "$r" = analyzed ]; then q -c "ANALYZE synclog.kv" -c "ANALYZE synclog.entry" >/dev/null; fi
			ms=$(psql -X -At -v ON_ERROR_STOP=1 -d "$DB" -c "SET synclog.retention = 0" -c '\timing on' -c "SELECT synclog.gc()" |
				sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1)
			G[$r,$k]=$ms
			# Statistics as at the start of the next pair.
			q -c "ANALYZE synclog.kv" >/dev/null
		done
		log "  gc after a load of $k keys: $ms ms with statistics, ${G[stale,$k]} ms without"
		record 9 "gcs_a_$k" "synclog.gc() after loading $k keys, synclog.kv analyzed (baseline)" ms base - - "${G[analyzed,$k]}"
		record 9 "gcs_s_$k" "synclog.gc() after loading $k keys, no statistics for the new rows yet" ms subj "gcs_a_$k" - "${G[stale,$k]}"
	done
}

# 10: switch-over -----------------------------------------------------------------

# follow DIR DOC: one synclog-follow --once run; prints "<seconds> <stats line>".
follow() {
	local t0 t1 out
	t0=$(now_s)
	out=$("$FOLLOW" --dsn "dbname=$DB" --doc "$2" --dir "$1" --once --quiet 2>&1) ||
		{ echo "$out" >&2; bench_die "synclog-follow --once --dir $1 failed"; }
	t1=$(now_s)
	echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }') $(echo "$out" | grep '^stats:' | tail -1)"
}

# stat_of NAME STATS-LINE: the value of NAME=... in a stats line.
stat_of() {
	echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

bench_switchover() {
	local k r doc a b res secs stats mb db sm i
	local -A M_T M_B D_T D_B I_T
	log "area 10: switch-over by marker vs snapshot download, states of ${SW_STATES_K// /, } keys of 4 KiB"
	area_title 10 "10. Crossing a rotation: by the marker or by downloading the snapshot"
	for k in $SW_STATES_K; do
		doc=sw_$k
		sm=$(state_label "$k")
		build_state "$doc" "$k"
		q -c "SELECT synclog.compact('$doc')" >/dev/null
		a=$W/sw_$k.a
		rm -rf "$a"
		follow "$a" "$doc" >/dev/null		# the replica's first download
		for ((r = 1; r <= REPS; r++)); do
			# 100 small updates, which the replica reads; then the rotation.
			q -c "SELECT count(synclog.append('$doc', ARRAY[bench.key(i * $((k / 100 > 0 ? k / 100 : 1)))], ARRAY[bench.small(i + $r)])) FROM generate_series(0, 99) i" >/dev/null
			follow "$a" "$doc" >/dev/null
			q -c "SELECT synclog.compact('$doc')" >/dev/null
			res=$(follow "$a" "$doc")
			secs=${res%% *}; stats=${res#* }
			[ "$(stat_of switches_marker "$stats")" = 1 ] || bench_die "switch-over: the replica did not cross by the marker: $stats"
			M_T[$k]+=" $(awk -v s="$secs" 'BEGIN { printf "%.1f", s * 1000 }')"
			M_B[$k]+=" $(( $(stat_of bytes_log "$stats") + $(stat_of bytes_snapshot "$stats") ))"
			# The same replica once more, with nothing new: what --once
			# costs before any byte of the document moves (start, connect,
			# open and check the replica).
			res=$(follow "$a" "$doc")
			secs=${res%% *}
			I_T[$k]+=" $(awk -v s="$secs" 'BEGIN { printf "%.1f", s * 1000 }')"
			b=$W/sw_$k.b.$r
			rm -rf "$b"
			res=$(follow "$b" "$doc")
			secs=${res%% *}; stats=${res#* }
			[ "$(stat_of downloads "$stats")" = 1 ] || bench_die "switch-over: the fresh replica did not download: $stats"
			D_T[$k]+=" $(awk -v s="$secs" 'BEGIN { printf "%.1f", s * 1000 }')"
			D_B[$k]+=" $(( $(stat_of bytes_log "$stats") + $(stat_of bytes_snapshot "$stats") ))"
			rm -rf "$b"
			log "  run $r, $sm: marker $(echo "${M_T[$k]}" | awk '{ print $NF }') ms / $(echo "${M_B[$k]}" | awk '{ print $NF }') B, idle sync ${I_T[$k]##* } ms, download ${D_T[$k]##* } ms / ${D_B[$k]##* } B"
		done
		rm -rf "$a"
	done
	area_note 10 "The reference client src/client/synclog-follow (built from the measured source) with --once --quiet, wall time of the whole process (connecting included). For each state (keys of 4 KiB, built with appends of 1024 keys and one rotation), a replica is downloaded once; then each run appends 100 small updates, lets the replica sync them, rotates, and times (a) the replica's next sync, which reads the end marker of its log, checks the hash and continues in the new log, and (b) a sync into a fresh directory, which downloads the new log's snapshot (what a client does whose log was collected or that fell behind). Bytes: the stats line's bytes_log + bytes_snapshot (every column of every row received). Both paths end in the same state (the client checks the snapshot hash either way). For information, a third sync of the same replica with nothing new: a --once process opens its replica and checks every item of it (open_check) before it asks the server anything, so that much of the marker path's time grows with the state although no byte of it moves (a long-running follower checks it once)."
	for k in $SW_STATES_K; do
		sm=$(state_label "$k")
		record 10 "sw_dt_$k" "download the snapshot, $sm state: time (baseline)" ms base - - "${D_T[$k]# }"
		record 10 "sw_mt_$k" "cross by the marker, $sm state: time" ms subj "sw_dt_$k" - "${M_T[$k]# }"
		record 10 "sw_it_$k" "information: a sync with nothing new, same replica ($sm state)" ms info - - "${I_T[$k]# }"
		record 10 "sw_db_$k" "download the snapshot, $sm state: bytes (baseline)" bytes base - - "${D_B[$k]# }"
		record 10 "sw_mb_$k" "cross by the marker, $sm state: bytes" bytes subj "sw_db_$k" - "${M_B[$k]# }"
	done
}

# 11: 100,000 documents -------------------------------------------------------------

# sc_populate DB LO HI: documents sc_LO .. sc_HI, 99% of them idle with 1 to
# 5 entries, every hundredth one hot with 100 to 400 (all below the
# rotate_entries = 500 the area sets, so none is due yet); 100-byte values.
sc_populate() {
	local db=$1 lo=$2 hi=$3
	qd "$db" -c "SELECT count(synclog.create_doc('sc_' || i)) FROM generate_series($lo, $hi) i" >/dev/null
	qd "$db" -c "SELECT count(synclog.append('sc_' || i, ARRAY[int4send(j)], ARRAY['\\x$HEX100'::bytea]))
	               FROM generate_series($lo, $hi) i, generate_series(1, 1 + i % 5) j WHERE i % 100 <> 0" >/dev/null
	# Hot documents: one append each per round, a commit per round.
	qd "$db" -c "DO \$\$ BEGIN
	               FOR j IN 1 .. 400 LOOP
	                 PERFORM synclog.append('sc_' || i, ARRAY[int4send(j)], ARRAY['\\x$HEX100'::bytea])
	                    FROM generate_series((($lo + 99) / 100) * 100, $hi, 100) i
	                   WHERE j <= 100 * (1 + (i / 100) % 4);
	                 COMMIT;
	               END LOOP;
	             END \$\$" >/dev/null
	qd "$db" -c "VACUUM ANALYZE synclog.doc" -c "VACUUM ANALYZE synclog.entry" -c "VACUUM ANALYZE synclog.log" >/dev/null
}

# sc_make_due DB LO: the 10 hot documents sc_LO+100, sc_LO+200, ... get 501
# more entries each, so that each crosses rotate_entries = 500 (the append
# that crosses sets the due flag).
sc_make_due() {
	qd "$1" -c "DO \$\$ BEGIN
	              FOR j IN 1 .. 501 LOOP
	                PERFORM synclog.append('sc_' || ($2 + 100 * i), ARRAY[int4send(j)], ARRAY['\\x$HEX100'::bytea])
	                   FROM generate_series(1, 10) i;
	                COMMIT;
	              END LOOP;
	            END \$\$" >/dev/null
}

# sc_explain DB SQL: runs SQL with auto_explain on for nested statements
# and prints "<ms> <shared buffers hit+read>" of the due-selection query
# of src/policy.c (the statement starting "WITH c AS"); the whole plan goes
# to $W/sc_plan.txt.
sc_explain() {
	local out
	out=$(qd "$1" -c "LOAD 'auto_explain'" -c "SET auto_explain.log_min_duration = 0" \
		-c "SET auto_explain.log_analyze = on" -c "SET auto_explain.log_buffers = on" \
		-c "SET auto_explain.log_nested_statements = on" -c "SET auto_explain.log_level = notice" \
		-c "$2" 2>&1) || { echo "$out" >&2; bench_die "auto_explain of $2 failed"; }
	echo "$out" | awk '
		/^NOTICE:  duration:/ { if (want) { printf "%s", cur; found = 1; exit } cur = $0 "\n"; next }
		{ cur = cur $0 "\n" }
		/^Query Text: WITH c AS/ { want = 1 }
		END { if (want && !found) printf "%s", cur }' >"$W/sc_plan.txt"
	[ -s "$W/sc_plan.txt" ] || { echo "$out" | head -50 >&2; bench_die "no plan of the due selection in auto_explain's output"; }
	awk 'NR == 1 { ms = $3 } /Buffers:/ && !b { for (i = 1; i <= NF; i++) { if ($i ~ /^hit=/) { sub("hit=", "", $i); h = $i } if ($i ~ /^read=/) { sub("read=", "", $i); r = $i } } b = 1 }
		END { printf "%s %d\n", ms, h + r }' "$W/sc_plan.txt"
}

# sc_measure DB LO TAG: REPS rounds of measurements at the current
# population; the 10 due documents are the hot ones from sc_LO.
sc_measure() {
	local db=$1 lo=$2 tag=$3 r ms buf n
	for ((r = 1; r <= REPS; r++)); do
		# A round with nothing due: the cost of choosing alone.
		ms=$(DB=$db time_sql_ms "SELECT synclog.compact_due(10)")
		SC[${tag}_empty]+=" $ms"
		sc_make_due "$db" "$lo"
		n=$(qd "$db" -c "SELECT count(*) FROM synclog.doc WHERE due")
		[ "$n" = 10 ] || bench_die "scale: $n documents are due, expected 10"
		# The selection query's plan and buffers, at the same state
		# (auto_explain around a compact_due that rotates the 10)...
		read -r ms buf <<<"$(sc_explain "$db" "SELECT synclog.compact_due(10)")"
		SC[${tag}_sel]+=" $ms"; SC[${tag}_buf]+=" $buf"
		cp "$W/sc_plan.txt" "$W/sc_plan.$tag.txt"
		# ... and a timed round without auto_explain.
		sc_make_due "$db" "$lo"
		qd "$db" -c "CHECKPOINT" >/dev/null
		ms=$(DB=$db time_sql_ms "SELECT synclog.compact_due(10)")
		SC[${tag}_round]+=" $ms"
		n=$(qd "$db" -c "SELECT count(*) FROM synclog.doc WHERE due")
		[ "$n" = 0 ] || bench_die "scale: $n documents still due after a round of 10"
		ms=$(DB=$db time_sql_ms "SELECT count(*) FROM synclog.status")
		SC[${tag}_count]+=" $ms"
		ms=$(DB=$db time_sql_ms "SELECT sum(length(doc) + active_entries + coalesce(retired_logs, 0)) FROM synclog.status")
		SC[${tag}_scan]+=" $ms"
		log "  $tag run $r: empty round ${SC[${tag}_empty]##* } ms, selection ${SC[${tag}_sel]##* } ms ($buf buffers), round of 10 ${SC[${tag}_round]##* } ms, status count ${SC[${tag}_count]##* } ms, status scan ${SC[${tag}_scan]##* } ms"
	done
}

bench_scale() {
	local db=${DB}_scale t0 t1 tag ms buf r sizes n_small n_big
	local -A SC
	n_small=$SC_BASE_DOCS
	n_big=$SC_DOCS
	log "area 11: scale, $n_small then $n_big documents"
	area_title 11 "11. Scale: $n_big documents, 10 of them due"
	new_db "$db"
	# Every session of the area: a document is due at 500 entries, and the
	# minimum interval between rotations is off so that rounds can follow
	# each other.
	local old_opts=${PGOPTIONS-}
	export PGOPTIONS="${PGOPTIONS-} -c synclog.rotate_entries=500 -c synclog.rotate_min_interval=0"
	t0=$(now_s)
	sc_populate "$db" 1 "$n_small"
	t1=$(now_s)
	log "  $n_small documents in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
	qd "$db" -c "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'synclog' AND c.relkind = 'r' ORDER BY 1" >"$W/sc_size.small"
	sc_measure "$db" 0 small
	t0=$(now_s)
	sc_populate "$db" $((n_small + 1)) "$n_big"
	t1=$(now_s)
	SC_POP_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	log "  $((n_big - n_small)) more documents in $SC_POP_S s"
	qd "$db" -c "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'synclog' AND c.relkind = 'r' ORDER BY 1" >"$W/sc_size.big"
	# The due documents of the big population are at its far end.
	sc_measure "$db" $((n_big - 1000)) big
	# Worst case for choosing: every document due at once (rotate_age = 1 s,
	# after their first entries are older than that).
	sleep 1.1
	for ((r = 1; r <= REPS; r++)); do
		read -r ms buf <<<"$(PGOPTIONS="$PGOPTIONS -c synclog.rotate_age=1" sc_explain "$db" "SELECT synclog.compact_due(10)")"
		SC[all_sel]+=" $ms"; SC[all_buf]+=" $buf"
		cp "$W/sc_plan.txt" "$W/sc_plan.all.txt"
		ms=$(PGOPTIONS="$PGOPTIONS -c synclog.rotate_age=1" DB=$db time_sql_ms "SELECT synclog.compact_due(10)")
		SC[all_round]+=" $ms"
	done
	PGOPTIONS=$old_opts
	sizes=$(join -t'|' "$W/sc_size.small" "$W/sc_size.big" |
		awk -F'|' -v ns="$n_small" -v nb="$n_big" '{ printf "| synclog.%s | %.2f | %.2f | %.0f |\n", $1, $2 / 1048576, $3 / 1048576, $3 / nb; s += $2; b += $3 }
			END { printf "| **total** | **%.2f** | **%.2f** | **%.0f** |\n", s / 1048576, b / 1048576, b / nb }')
	area_note 11 "A database of its own (so that its table sizes are its own). $n_big documents created with one statement calling synclog.create_doc over generate_series, then appended to (100-byte values): 99% idle with 1 to 5 entries, every hundredth one hot with 100 to 400 entries (the $((n_big - n_small)) documents after the first $n_small took $SC_POP_S s to create and fill). Settings of every session: synclog.rotate_entries = 500, synclog.rotate_min_interval = 0; other thresholds at their defaults (64 MB, 1 h). Each run makes 10 hot documents due by giving them 501 more entries each (the append that crosses 500 sets the due flag) and measures:
- *empty round*: synclog.compact_due(10) with nothing due, i.e. choosing alone (the clear-flags UPDATE and the selection query of src/policy.c, which the background worker runs too);
- *selection*: that selection query inside a round with 10 due, as auto_explain (log_analyze, log_buffers, nested statements) reports it: its execution time and the shared buffers it touched;
- *round*: synclog.compact_due(10) rotating the 10 due documents (about 500 entries each), each in its own subtransaction as the worker does;
- *status*: \`SELECT count(*) FROM synclog.status\`, and a query reading columns of every row of synclog.status (the view's per-document subquery included).

The same measurements on the first $n_small documents alone are the baseline: the target is that choosing does not grow with the number of documents (ratio <= 2 for a 100x larger population), while the status view, which reads every document by design, grows with it."
	record 11 sc_e_s "empty round, $n_small documents (baseline)" ms base - - "${SC[small_empty]# }"
	record 11 sc_e_b "empty round, $n_big documents" ms subj sc_e_s "ratio<=2" "${SC[big_empty]# }"
	record 11 sc_s_s "due selection (auto_explain), $n_small documents, 10 due (baseline)" ms base - - "${SC[small_sel]# }"
	record 11 sc_s_b "due selection (auto_explain), $n_big documents, 10 due" ms subj sc_s_s "ratio<=2" "${SC[big_sel]# }"
	record 11 sc_b_s "due selection: shared buffers, $n_small documents (baseline)" buffers base - - "${SC[small_buf]# }"
	record 11 sc_b_b "due selection: shared buffers, $n_big documents" buffers subj sc_b_s "ratio<=2" "${SC[big_buf]# }"
	record 11 sc_r_s "round rotating 10 due documents, $n_small documents (baseline)" ms base - - "${SC[small_round]# }"
	record 11 sc_r_b "round rotating 10 due documents, $n_big documents" ms subj sc_r_s "ratio<=2" "${SC[big_round]# }"
	record 11 sc_c_s "SELECT count(*) FROM synclog.status, $n_small documents (baseline)" ms base - - "${SC[small_count]# }"
	record 11 sc_c_b "SELECT count(*) FROM synclog.status, $n_big documents" ms subj sc_c_s - "${SC[big_count]# }"
	record 11 sc_f_s "full scan of synclog.status, $n_small documents (baseline)" ms base - - "${SC[small_scan]# }"
	record 11 sc_f_b "full scan of synclog.status, $n_big documents" ms subj sc_f_s - "${SC[big_scan]# }"
	record 11 sc_a_sel "information: due selection with all $n_big documents due (rotate_age = 1 s)" ms info - - "${SC[all_sel]# }"
	record 11 sc_a_buf "information: its shared buffers" buffers info - - "${SC[all_buf]# }"
	record 11 sc_a_round "information: a round of 10 with all $n_big documents due" ms info - - "${SC[all_round]# }"
	area_post 11 "On-disk size of synclog's tables (pg_total_relation_size: heap, indexes, TOAST), after populating (before the measured rounds):

| Table | $n_small documents (MiB) | $n_big documents (MiB) | bytes per document at $n_big |
|---|---|---|---|
$sizes

The selection query's plan at $n_big documents with 10 due (auto_explain, last run):

\`\`\`
$(cat "$W/sc_plan.big.txt")
\`\`\`

The same with every document due (rotate_age = 1 s): choosing 10 reads every due document, since the oldest active logs go first (ORDER BY active_since over the candidates); it costs in proportion to the documents that are due, as it should, not to all documents:

\`\`\`
$(cat "$W/sc_plan.all.txt")
\`\`\`"
}

# 12: steady state ------------------------------------------------------------------

bench_steady() {
	local db=${DB}_steady c pid hexv t_start sizes live prev disk ratio line
	local ratios=() disks=() lives=() plotdir
	log "area 12: steady state, $ST_CYCLES rotate-and-collect cycles under appends ($ST_DOCS documents x $ST_KEYS keys x $ST_VSIZE bytes, $ST_RATE appends/s)"
	area_title 12 "12. Steady state: $ST_CYCLES rotate-and-collect cycles under continuous appends"
	new_db "$db"
	hexv=$(head -c "$ST_VSIZE" /dev/urandom | od -An -v -tx1 | tr -d ' \n')
	# Every key written once, one key per entry, and rotated: the state is
	# complete before the first cycle.
	qd "$db" -c "SELECT count(synclog.create_doc('st_' || i)) FROM generate_series(1, $ST_DOCS) i" >/dev/null
	qd "$db" -c "DO \$\$ BEGIN
	               FOR j IN 0 .. $ST_KEYS - 1 LOOP
	                 PERFORM synclog.append('st_' || i, ARRAY[int4send(j)], ARRAY[int4send(j) || '\\x$hexv'::bytea])
	                    FROM generate_series(1, $ST_DOCS) i;
	                 COMMIT;
	               END LOOP;
	             END \$\$" >/dev/null
	for ((c = 1; c <= ST_DOCS; c++)); do qd "$db" -c "SELECT synclog.compact('st_$c')" >/dev/null; done
	cat >"$W/steady.sql" <<EOF
\set d random(1, $ST_DOCS)
\set k random(0, $((ST_KEYS - 1)))
SELECT synclog.append('st_' || :d, ARRAY[int4send(:k)], ARRAY[int4send(:k) || '\\x$hexv'::bytea]);
EOF
	# The cycle's statements: each rotation and the collection in its own
	# transaction, then a VACUUM of the two tables collection deletes from
	# (a statement of its own, outside any transaction block), as the
	# worker does after a round that collected (synclog.vacuum_after_gc).
	{
		echo "SET synclog.retention = 0;"
		for ((c = 1; c <= ST_DOCS; c++)); do echo "SELECT synclog.compact('st_$c');"; done
		echo "SELECT synclog.gc();"
		echo "VACUUM synclog.entry, synclog.kv;"
	} >"$W/steady_cycle.sql"
	# Sizes: each table (with indexes and TOAST); live data = the current
	# snapshots' key + value bytes + the active logs' delta bytes; and,
	# for information, the previous logs' delta bytes (kept by design).
	cat >"$W/steady_size.sql" <<'EOF'
SELECT string_agg(name || '=' || size, ' ' ORDER BY name) FROM (
	SELECT c.relname || ':heap' AS name, pg_table_size(c.oid) AS size
	  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	 WHERE n.nspname = 'synclog' AND c.relkind = 'r'
	UNION ALL
	SELECT c.relname || ':' || i.relname, pg_relation_size(i.oid)
	  FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
	  JOIN pg_namespace n ON n.oid = c.relnamespace
	 WHERE n.nspname = 'synclog') s;
SELECT sum((synclog.hash_info(l.snapshot_hash)).item_bytes)::bigint + sum(d.active_bytes)::bigint
  FROM synclog.doc_head d JOIN synclog.log l ON l.log_id = d.active_log;
SELECT coalesce(sum(octet_length(e.delta)), 0)::bigint
  FROM synclog.log p JOIN synclog.entry e ON e.doc_id = p.doc_id AND e.lsn > p.base_lsn AND e.lsn <= p.end_lsn
 WHERE p.state = 'previous';
EOF
	pgbench -n -M prepared -c2 -j2 -R "$ST_RATE" -T 100000 -f "$W/steady.sql" "$db" >"$W/pgbench.steady.out" 2>&1 &
	pid=$!
	# Warm-up, not counted: the first cycles collect the initial load's log
	# (the whole state, one entry per key), which stays as the previous log
	# for a cycle and on disk until VACUUM can truncate the table's tail.
	local warm=()
	for ((c = 1; c <= ST_WARMUP; c++)); do
		sleep "$ST_CYCLE_S"
		qd "$db" -f "$W/steady_cycle.sql" >/dev/null
		mapfile -t line < <(qd "$db" -f "$W/steady_size.sql")
		disk=$(echo "${line[0]}" | tr ' ' '\n' | awk -F= '{ s += $2 } END { print s }')
		warm+=("$(awk -v d="$disk" -v l="${line[1]}" 'BEGIN { printf "%.2f", d / l }')x")
	done
	log "  warm-up cycles: on disk / live ${warm[*]}"
	t_start=$(now_s)
	: >"$W/steady.tsv"
	for ((c = 1; c <= ST_CYCLES; c++)); do
		sleep "$ST_CYCLE_S"
		kill -0 "$pid" 2>/dev/null || { cat "$W/pgbench.steady.out" >&2; bench_die "the appending pgbench stopped"; }
		qd "$db" -f "$W/steady_cycle.sql" >/dev/null
		mapfile -t line < <(qd "$db" -f "$W/steady_size.sql")
		sizes=${line[0]}; live=${line[1]}; prev=${line[2]}
		disk=$(echo "$sizes" | tr ' ' '\n' | awk -F= '{ s += $2 } END { print s }')
		ratio=$(awk -v d="$disk" -v l="$live" 'BEGIN { printf "%.3f", d / l }')
		echo "$c $(awk -v a="$t_start" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }') $disk $live $prev $sizes" >>"$W/steady.tsv"
		ratios+=("$ratio"); disks+=("$(mib_of "$disk")"); lives+=("$(mib_of "$live")")
		if ((c % 10 == 0 || c == 1)); then log "  cycle $c: on disk $(mib_of "$disk") MiB, live $(mib_of "$live") MiB (ratio $ratio), previous logs $(mib_of "$prev") MiB"; fi
	done
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
	ST_APPENDS=$(qd "$db" -c "SELECT sum(head_lsn) FROM synclog.doc_head")
	# The floor of any one-row-per-key storage: a plain table (doc, key)
	# primary key holding the same final state.
	qd "$db" -c "CREATE TABLE st_plain AS SELECT d.name AS doc, s.key, s.value FROM synclog.doc d, synclog.snapshot(d.name, d.active_log, NULL, 2147483647) s" \
		-c "ALTER TABLE st_plain ADD PRIMARY KEY (doc, key)" >/dev/null
	ST_FLOOR=$(qd "$db" -c "SELECT pg_total_relation_size('st_plain')")
	ST_FLOOR_LIVE=$(qd "$db" -c "SELECT sum(length(key) + length(value)) FROM st_plain")
	ST_AV=$(qd "$db" -c "SELECT string_agg(relname || ' ' || autovacuum_count || ' autovacuum(s), ' || n_dead_tup || ' dead rows now', '; ' ORDER BY relname) FROM pg_stat_user_tables WHERE schemaname = 'synclog' AND relname IN ('entry', 'kv', 'log', 'doc')")

	# Trend: least-squares slope of each table's size over the last half
	# of the cycles, as a share of the total size per 25 cycles.
	local half=$((ST_CYCLES / 2)) trend tables_md worst_tab
	trend=$(awk -v from=$((ST_CYCLES - half + 1)) '$1 >= from { n++; x = $1; y = $3; sx += x; sy += y; sxx += x * x; sxy += x * y }
		END { b = (n * sxy - sx * sy) / (n * sxx - sx * sx); printf "%.3f\n", b * 25 / (sy / n) * 100 }' "$W/steady.tsv")
	tables_md=$(awk -v from=$((ST_CYCLES - half + 1)) '
		{ for (i = 6; i <= NF; i++) { split($i, kv, "="); t = kv[1]; names[t] = 1; if ($1 == 1) first[t] = kv[2]; last[t] = kv[2]; if (kv[2] > mx[t]) mx[t] = kv[2]
			if ($1 >= from) { n[t]++; sx[t] += $1; sy[t] += kv[2]; sxx[t] += $1 * $1; sxy[t] += $1 * kv[2] } } }
		END { for (t in names) { b = (n[t] * sxy[t] - sx[t] * sy[t]) / (n[t] * sxx[t] - sx[t] * sx[t])
			split(t, p, ":"); what = (p[2] == "heap") ? "synclog." p[1] " (heap, TOAST)" : "index " p[2] " on synclog." p[1]
			printf "| %s | %.3f | %.3f | %.3f | %+.1f |\n", what, first[t] / 1048576, mx[t] / 1048576, last[t] / 1048576, b * 25 / 1024 } }' "$W/steady.tsv" | sort)
	area_note 12 "A database of its own. $ST_DOCS documents of $ST_KEYS keys each, every value $ST_VSIZE + 4 bytes (key 4 bytes), written one key per entry and rotated before the first cycle. Then pgbench appends continuously in the background (-c2 -R $ST_RATE: $ST_RATE appends/s in all, each one key at random with a new value), while every $ST_CYCLE_S s a cycle rotates every document (synclog.compact, one transaction each) and collects with synclog.retention = 0 (synclog.gc()), then runs VACUUM synclog.entry, synclog.kv as a separate statement (what the background worker does after a round that collected, synclog.vacuum_after_gc), then measures. Autovacuum at its defaults (naptime 1 min, scale factor 0.2). $ST_WARMUP warm-up cycles first, not counted (they collect the initial load's log, the whole state as $((ST_DOCS * ST_KEYS)) entries, kept one cycle as the previous log and on disk until VACUUM can truncate the table; on disk / live data after each: ${warm[*]}), then $ST_CYCLES measured cycles; $ST_APPENDS appends in all.
- *on disk*: synclog's tables with their indexes and TOAST (pg_total_relation_size), after each cycle;
- *live data*: the current snapshots' key + value bytes (synclog.hash_info of each active log's snapshot hash) plus the active logs' delta bytes. Not counted as live, though kept by design: the previous log of each document (never collected: clients that just reached its marker switch over by reading it), $(mib_of "$prev") MiB at the last cycle;
- *floor*: the same final state in a plain table (doc, key primary key, value): $(mib_of "$ST_FLOOR") MiB for $(mib_of "$ST_FLOOR_LIVE") MiB of keys and values, i.e. $(awk -v a="$ST_FLOOR" -v b="$ST_FLOOR_LIVE" 'BEGIN { printf "%.2f", a / b }')x: what one row per key costs in PostgreSQL before any log or history.
- Autovacuum during the area: $ST_AV."
	record 12 st_live "live data, per cycle (baseline)" MiB base - - "${lives[*]}"
	record 12 st_disk "on-disk size of synclog's tables and indexes, per cycle" MiB subj st_live - "${disks[*]}"
	record 12 st_ratio "on disk / live data, per cycle" x info - "max<=2" "${ratios[*]}"
	record 12 st_trend "growth trend: slope of the on-disk size over the last $half cycles, % of the mean size per 25 cycles" "%" info - "max<=1" "$trend"
	area_post 12 "Per relation (MiB; slope: least squares over the last $half cycles, in KiB per 25 cycles):

| Relation | after cycle 1 | max | after cycle $ST_CYCLES | slope (KiB / 25 cycles) |
|---|---|---|---|---|
$tables_md"
	if [ "$MODE" = smoke ]; then plotdir=$W/plots; else plotdir=$(dirname "$OUT_FILE")/bench; fi
	mkdir -p "$plotdir"
	if plot_png "$plotdir/steady_state.png" "Steady state: on-disk size and live data per cycle" "cycle" "MiB" \
		"unset logscale; set yrange [0:*]; plot '$W/steady.tsv' using 1:(\$3 / 1048576) with linespoints lw 2 pt 7 title 'on disk (synclog tables + indexes)', '' using 1:(\$4 / 1048576) with linespoints lw 2 pt 6 title 'live data (snapshots + active logs)', '' using 1:((\$4 + \$5) / 1048576) with lines dt 2 title 'live + previous logs', '' using 1:(2 * \$4 / 1048576) with lines dt 3 lc rgb 'red' title '2x live (target)'"; then
		if [ "$MODE" != smoke ]; then area_post 12 "![Steady state](bench/steady_state.png)"; fi
	fi
}

# 13: snapshot hash -------------------------------------------------------------------

bench_hash() {
	local r log_id bytes items stored rh ph t_re t_agg out raw core re=() agg=() raws=() cores=() f
	log "area 13: snapshot hash over the $READ_N-key state"
	q -c "SELECT synclog.compact('read')" >/dev/null
	log_id=$(current_log read)
	items=$(q -c "SELECT (synclog.hash_info(snapshot_hash)).item_count FROM synclog.current_log('read')")
	bytes=$(q -c "SELECT (synclog.hash_info(snapshot_hash)).item_bytes FROM synclog.current_log('read')")
	stored=$(q -c "SELECT snapshot_hash FROM synclog.current_log('read')")
	q -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS bench.hash_plain" \
		-c "CREATE TABLE bench.hash_plain (key bytea PRIMARY KEY, value bytea NOT NULL)" \
		-c "INSERT INTO bench.hash_plain SELECT key, value FROM synclog.snapshot('read', '$log_id', NULL, 2147483647)" \
		-c "VACUUM ANALYZE bench.hash_plain" >/dev/null
	gcc -O2 -Wall -I"$SRC_ROOT/src/core" -o "$W/xxh3_speed" "$HERE/xxh3_speed.c" "$SRC_ROOT/src/core/synclog_core.c" -lxxhash ||
		bench_die "building test/bench/xxh3_speed.c failed"
	# Warm-up, and the check that all three agree.
	rh=$(q -c "SELECT synclog.recompute_hash('read', '$log_id')")
	ph=$(q -c "SELECT synclog.state_hash(key, value) FROM bench.hash_plain")
	[ "$rh" = "$stored" ] && [ "$ph" = "$stored" ] || bench_die "hash: stored $stored, recomputed $rh, aggregate over the plain table $ph"
	for ((r = 1; r <= REPS; r++)); do
		t_re=$(time_sql_ms "SELECT synclog.recompute_hash('read', '$log_id')")
		t_agg=$(time_sql_ms "SELECT synclog.state_hash(key, value) FROM bench.hash_plain")
		out=$("$W/xxh3_speed" "$items" 4 $(( bytes / items - 4 )) 5)
		raw=$(echo "$out" | awk '$1 == "raw" { print $3 }')
		core=$(echo "$out" | awk '$1 == "core" { print $3 }')
		re+=("$(awk -v b="$bytes" -v ms="$t_re" 'BEGIN { printf "%.1f", b / 1048576 / (ms / 1000) }')")
		agg+=("$(awk -v b="$bytes" -v ms="$t_agg" 'BEGIN { printf "%.1f", b / 1048576 / (ms / 1000) }')")
		raws+=("$raw"); cores+=("$core")
		log "  run $r: raw XXH3 $raw MiB/s, slc_hash_add $core MiB/s, state_hash over a table ${agg[-1]} MiB/s, recompute_hash ${re[-1]} MiB/s"
	done
	area_title 13 "13. Snapshot hash throughput"
	area_note 13 "The state of document \`read\` after rotating area 4's log: $items keys of 4 bytes with values of $(( bytes / items - 4 )) bytes, $(mib_of "$bytes") MiB of keys and values. MiB/s of keys + values:
- raw XXH3: test/bench/xxh3_speed.c, XXH3_128bits over each item's key || value in memory (the same item count and sizes, random bytes in one buffer, median of 5 passes per run), libxxhash as the extension links it: the physical limit;
- slc_hash_add: the same program through src/core/synclog_core.c's slc_hash_add (item hash over ns || u32le(klen) || key || value, summed), which the extension and the client use;
- state_hash aggregate: \`SELECT synclog.state_hash(key, value) FROM bench.hash_plain\`, a plain table holding the same rows (values TOASTed, shared buffers warm);
- recompute_hash: \`synclog.recompute_hash('read', log)\`, the DBA's check, which reads the snapshot through synclog.snapshot (values fetched out of the log entries that hold them) into the aggregate.
All three SQL results equal the stored snapshot hash (checked). psql \\timing for the SQL figures."
	record 13 h_raw "raw XXH3_128bits in memory (baseline)" "MiB/s" base - - "${raws[*]}"
	record 13 h_core "slc_hash_add in memory" "MiB/s" subj h_raw - "${cores[*]}"
	record 13 h_agg "synclog.state_hash aggregate over a plain table" "MiB/s" subj h_raw - "${agg[*]}"
	record 13 h_re "synclog.recompute_hash" "MiB/s" subj h_raw - "${re[*]}"
	record 13 h_agg2 "state_hash over a plain table (second baseline)" "MiB/s" base - - "${agg[*]}"
	record 13 h_re2 "recompute_hash vs state_hash over a plain table" "MiB/s" subj h_agg2 - "${re[*]}"
}

# 14: the reference client as a local store -------------------------------------------

# follow_timed BIN DIR DOC [ARGS...]: one BIN --once run under /usr/bin/time;
# prints "<seconds> <max RSS in KiB> <CPU seconds> <user seconds>" (wall
# time, the process's peak resident memory, its user + system time, its
# user time).
follow_timed() {
	local bin=$1 dir=$2 doc=$3 tf out t0 t1
	shift 3
	tf=$(mktemp "$W/time.XXXXXX")
	t0=$(now_s)
	out=$(/usr/bin/time -f '%M %U %S' -o "$tf" "$bin" --dsn "dbname=$DB" --doc "$doc" --dir "$dir" \
		--once --quiet --no-ack "$@" 2>&1 >/dev/null) ||
		{ echo "$out" >&2; bench_die "$bin --once --dir $dir failed"; }
	t1=$(now_s)
	tail -1 "$tf" | awk -v a="$t0" -v b="$t1" '{ printf "%.3f %s %.2f %.2f\n", b - a, $1, $2 + $3, $2 }'
	rm -f "$tf"
}

# The page file's lag: a page-store document of $CS_PAGES pages (page 1 an
# SQLite header, 4 KiB pages), followed with --page-file; then updates of
# 1 and 64 pages, timed from the writer's commit to the page file's
# position file naming their LSN.  Prints "<ms for 1 page> <ms for 64>"
# per sample, one line each.
page_file_lag() {
	local doc=cs_pages d=$W/cs_pages f=$W/cs_pages.db fpid lsn t0 t1 n i seen
	q -c "SELECT synclog.create_doc('$doc')" >/dev/null
	q -c "SELECT synclog.append('$doc', ARRAY[int4send(1)], ARRAY[overlay(bench.val(0) placing
	        decode('53514c69746520666f726d6174203300100001010040202000000001', 'hex') from 1)])" >/dev/null
	for ((i = 2; i <= CS_PAGES; i += 1024)); do
		q -c "SELECT synclog.append('$doc', array_agg(int4send(p) ORDER BY p), array_agg(bench.val(p) ORDER BY p))
		        FROM generate_series($i, least($i + 1023, $CS_PAGES)) p" >/dev/null
	done
	rm -rf "$d" "$f"*
	"$FOLLOW" --dsn "dbname=$DB" --doc "$doc" --dir "$d" --page-file "$f" --no-ack --quiet \
		--poll 5000 >"$W/cs_pages.out" 2>&1 &
	fpid=$!
	lsn=$(q -c "SELECT head_lsn FROM synclog.current_log('$doc')")
	for ((i = 0; i < 600; i++)); do
		[ -f "$f.synclog-pos" ] && [ "$(cut -d' ' -f2 "$f.synclog-pos")" = "$lsn" ] && break
		sleep 0.1
	done
	[ "$i" -lt 600 ] || { kill "$fpid"; bench_die "the page file did not catch up: $(cat "$W/cs_pages.out")"; }
	for ((i = 1; i <= 2 * REPS + 1; i++)); do
		for n in 1 64; do
			lsn=$(PGOPTIONS="${PGOPTIONS:-} -c synclog.notify_append=on" q -c "SELECT synclog.append('$doc',
			        array_agg(int4send(2 + (p * 37 + $i) % ($CS_PAGES - 1))), array_agg(bench.val(p + $i * 1000)))
			        FROM generate_series(1, $n) p")
			t0=$(now_s)
			while :; do
				seen=$(cut -d' ' -f2 "$f.synclog-pos" 2>/dev/null || echo 0)
				[ "${seen:-0}" -ge "$lsn" ] && break
				sleep 0.001
			done
			t1=$(now_s)
			printf '%s ' "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')"
		done
		echo
	done
	kill "$fpid"
	wait "$fpid" 2>/dev/null || true
	rm -rf "$d" "$f"*
}

kib_to_mib() {
	awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'
}

# BENCH_OLD_FOLLOW=/path/to/synclog-follow: an older build of the client
# (for instance the last one with the in-memory replica) measured as the
# baseline of this area, in the same run.
bench_client_store() {
	local k r doc sm u a a2 a3 o t m cpu cpu2 t2 sz osz l1 l64 u1 u2 i
	local -A DT DM OT OM CT CM PT PM FT FC XT SZ OSZ
	local L1="" L64=""
	local old=${BENCH_OLD_FOLLOW:-}
	log "area 14: the client as a local store, states of ${CS_STATES_K// /, } keys of 4 KiB${old:+ (baseline: $old)}"
	area_title 14 "14. The reference client as a local store: memory, download, catch-up, change feed"
	for k in $CS_STATES_K; do
		doc=cs_$k
		sm=$(state_label "$k")
		u=$((k / 4))
		build_state "$doc" "$k"
		q -c "SELECT synclog.compact('$doc')" >/dev/null
		for ((r = 1; r <= REPS; r++)); do
			a=$W/cs_$k.a
			a2=$W/cs_$k.a2
			a3=$W/cs_$k.a3
			o=$W/cs_$k.o
			rm -rf "$a" "$a2" "$a3" "$o"
			checkpoint
			read -r t m cpu <<<"$(follow_timed "$FOLLOW" "$a" "$doc")"
			DT[$k]+=" $t"; DM[$k]+=" $(kib_to_mib "$m")"
			if [ -n "$old" ]; then
				read -r t m cpu <<<"$(follow_timed "$old" "$o" "$doc")"
				OT[$k]+=" $t"; OM[$k]+=" $(kib_to_mib "$m")"
			fi
			# a quarter of the keys rewritten, an entry of 4 KiB each
			q -c "SELECT count(synclog.append('$doc', ARRAY[bench.key(i * 4)], ARRAY[bench.val(i + $r * $k)]))
			        FROM generate_series(0, $u - 1) i" >/dev/null
			cp -a "$a" "$a2"
			cp -a "$a" "$a3"
			read -r t m cpu <<<"$(follow_timed "$FOLLOW" "$a" "$doc")"
			CT[$k]+=" $t"; CM[$k]+=" $(kib_to_mib "$m")"
			# the feed costs CPU (keys collected, events, lines printed):
			# compared in user time, without the open check (which reads
			# the whole state, and whose cost the page cache decides),
			# with and without --changes in both orders
			read -r t2 m cpu2 u1 <<<"$(follow_timed "$FOLLOW" "$a2" "$doc" --no-open-check --changes)"
			FT[$k]+=" $t2"
			read -r t2 m cpu2 u2 <<<"$(follow_timed "$FOLLOW" "$a3" "$doc" --no-open-check)"
			FC[$k]+=" $(awk -v a="$u2" -v b="$u1" -v n="$u" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')"
			if [ -n "$old" ]; then
				read -r t m cpu <<<"$(follow_timed "$old" "$o" "$doc")"
				PT[$k]+=" $t"; PM[$k]+=" $(kib_to_mib "$m")"
				osz=$(du -sk "$o" | cut -f1)
				OSZ[$k]+=" $(kib_to_mib "$osz")"
			fi
			t=$(now_s)
			"$FOLLOW" --doc "$doc" --dir "$a" --export "$W/cs_export" ||
				bench_die "export of $a failed"
			XT[$k]+=" $(awk -v a="$t" -v b="$(now_s)" 'BEGIN { printf "%.3f", b - a }')"
			sz=$(du -sk "$a" | cut -f1)
			SZ[$k]+=" $(kib_to_mib "$sz")"
			log "  run $r, $sm: download ${DT[$k]##* } s / ${DM[$k]##* } MiB, catch-up of $u entries ${CT[$k]##* } s / ${CM[$k]##* } MiB, with --changes ${FT[$k]##* } s${old:+; old client: download ${OT[$k]##* } s / ${OM[$k]##* } MiB, catch-up ${PT[$k]##* } s / ${PM[$k]##* } MiB}"
			rm -rf "$a" "$a2" "$a3" "$o" "$W/cs_export"
		done
	done
	while read -r l1 l64; do
		L1+=" $l1"; L64+=" $l64"
	done <<<"$(page_file_lag)"
	log "  page file lag: 1 page:$L1 ms; 64 pages:$L64 ms"
	area_note 14 "The reference client src/client/synclog-follow built from the measured source (its replica in an SQLite database on disk) with --once --quiet --no-ack, wall time and peak resident memory (/usr/bin/time %M) of the whole process. For each state (keys of 4 KiB, built with appends of 1024 keys and one rotation): a download into a fresh directory, then a quarter of the keys rewritten (one 4 KiB entry each) and the replica's catch-up over them, which also opens and checks the replica (every item read once); the same catch-up on two copies of the replica without the open check, one with --changes (every changed key printed, to /dev/null), one without: the difference of their user CPU time per entry is the change feed's cost (wall time differences drown in the disk's noise); an export of the whole state (--export); the replica's size on disk. ${old:+The baseline is $old (an older build of the client, run on the same states in the same runs: the last one kept the whole state in memory and its replica in framed files).} The page file: a page-store document of $CS_PAGES pages of 4 KiB (page 1 an SQLite header) followed by one long-running synclog-follow --page-file (LISTENing; the writer appends with synclog.notify_append on); its lag is the time from the writer's append returning to the page file's position file naming the appended LSN (the page file then holds it), for updates of 1 and of 64 pages. Target: at most 64 MiB of client memory whatever the state's size."
	for k in $CS_STATES_K; do
		sm=$(state_label "$k")
		u=$((k / 4))
		if [ -n "$old" ]; then
			record 14 "cs_odt_$k" "old client: download, $sm state: time (baseline)" s base - - "${OT[$k]# }"
			record 14 "cs_dt_$k" "download, $sm state: time" s subj "cs_odt_$k" - "${DT[$k]# }"
			record 14 "cs_odm_$k" "old client: download, $sm state: peak memory (baseline)" MiB base - - "${OM[$k]# }"
			record 14 "cs_dm_$k" "download, $sm state: peak memory" MiB subj "cs_odm_$k" max\<=64 "${DM[$k]# }"
			record 14 "cs_opt_$k" "old client: catch-up of $u entries on $sm: time (baseline)" s base - - "${PT[$k]# }"
			record 14 "cs_ct_$k" "catch-up of $u entries on $sm: time" s subj "cs_opt_$k" - "${CT[$k]# }"
			record 14 "cs_opm_$k" "old client: catch-up on $sm: peak memory (baseline)" MiB base - - "${PM[$k]# }"
			record 14 "cs_cm_$k" "catch-up on $sm: peak memory" MiB subj "cs_opm_$k" max\<=64 "${CM[$k]# }"
			record 14 "cs_osz_$k" "old client: replica on disk, $sm state (information)" MiB info - - "${OSZ[$k]# }"
		else
			record 14 "cs_dt_$k" "download, $sm state: time" s info - - "${DT[$k]# }"
			record 14 "cs_dm_$k" "download, $sm state: peak memory" MiB info - max\<=64 "${DM[$k]# }"
			record 14 "cs_ct_$k" "catch-up of $u entries on $sm: time" s info - - "${CT[$k]# }"
			record 14 "cs_cm_$k" "catch-up on $sm: peak memory" MiB info - max\<=64 "${CM[$k]# }"
		fi
		record 14 "cs_ft_$k" "catch-up with --changes, no open check, on $sm: time (information)" s info - - "${FT[$k]# }"
		record 14 "cs_fc_$k" "change feed: cost per entry on $sm (information)" us info - - "${FC[$k]# }"
		record 14 "cs_xt_$k" "export of the $sm state (information)" s info - - "${XT[$k]# }"
		record 14 "cs_sz_$k" "replica on disk, $sm state (information)" MiB info - - "${SZ[$k]# }"
	done
	record 14 cs_lag1 "page file lag behind the log, 1-page update (information)" ms info - - "${L1# }"
	record 14 cs_lag64 "page file lag behind the log, 64-page update (information)" ms info - - "${L64# }"
}
