# test/bench/area15.sh - area 15 of the benchmarks: compressed deltas and
# snapshot values (issue 16) on a SQLite page store, in two databases of the
# same cluster: one storing as synclog did before (deltas as they come,
# snapshot values with pglz) and one as it does now.
#
# Sourced by run.sh after lib.sh and areas.sh (it uses new_db, qd and
# SL_SIZE_SQL from there), with the mode's sizes set: ZIP_COMMITS commits of
# the page store, ZIP_JSON small JSON deltas for the codec comparison.

# zip_build_tools: the workload generator and the codec comparison, from
# the measured source.
zip_build_tools() {
	gcc -O2 -Wall -I"$SRC_ROOT/src/core" -o "$W/pagestore" "$SRC_ROOT/test/bench/pagestore.c" \
		"$SRC_ROOT/src/core/synclog_core.c" -lsqlite3 -lxxhash -lm ||
		bench_die "building test/bench/pagestore.c failed (libsqlite3-dev?)"
	gcc -O2 -Wall -I"$SRC_ROOT/src/core" -o "$W/codec_speed" "$SRC_ROOT/test/bench/codec_speed.c" \
		"$SRC_ROOT/src/core/synclog_zip.c" "$SRC_ROOT/src/core/synclog_core.c" \
		-llz4 -lzstd -lz -lxxhash ||
		bench_die "building test/bench/codec_speed.c failed (liblz4-dev, libzstd-dev, zlib1g-dev?)"
}

# zip_codec_table FILE TITLE: codec_speed's output as a markdown table.
zip_codec_table() {
	awk -v title="$2" '
		NR == 1 { printf "%s: %s\n\n", title, $0
				  print "| Codec | Stored / raw | Compressed / raw, of the deltas compressed | Compress MiB/s | Decompress MiB/s | Microseconds per delta to compress |"
				  print "|---|---|---|---|---|---|"; next }
		/^dictionary:/ { dict = $0; next }
		{ printf "| %s | %s | %s of %s | %s | %s | %s |\n", $1, $3, $5, $7, $9, $12, $14 }
		END { if (dict != "") printf "\n(zstd-1-dict: %s; not built, see test/bench/notes.md.)\n", dict }' "$1"
}

# zip_load DB: a document "ps" with the page store's commits appended one
# by one (append_delta, committing every 100), timed; prints
# "<ms> <WAL bytes> <growth of synclog's tables in bytes>".
zip_load() {
	local db=$1
	qd "$db" -c "CREATE TABLE public.ps_delta (n serial PRIMARY KEY, d bytea NOT NULL)" \
		-c "\\copy public.ps_delta (d) FROM '$W/ps.hex'" >/dev/null
	qd "$db" -c "SELECT synclog.create_doc('ps')" -c "VACUUM ANALYZE public.ps_delta" >/dev/null
	DB=$db measure_write "$SL_SIZE_SQL" "DO \$\$ BEGIN
	    FOR i IN 1 .. $ZIP_COMMITS LOOP
	      PERFORM synclog.append_delta('ps', (SELECT d FROM public.ps_delta WHERE n = i));
	      IF i % 100 = 0 THEN COMMIT; END IF;
	    END LOOP;
	  END \$\$"
}

# zip_read DB PASSES MODE ARGS...: readlog in database DB, PASSES passes in
# one connection after an untimed one; prints "<bytes of one pass> <rows of
# one pass> <seconds of all passes>".
zip_read() {
	local db=$1 n=$2 out b r p s
	shift 2
	out=$(PGDATABASE=$db "$READLOG" "$@" -n "$n" -w) || bench_die "readlog $* failed"
	read -r b r p s <<<"$out"
	echo "$((b / n)) $((r / n)) $s"
}

bench_compression() {
	local gen pages_per ps_bytes raw on r log_raw log_on b rr s rot_raw rot_on gc_raw gc_on
	local disk_raw disk_on entry_raw entry_on kv_raw kv_on
	local t_raw=() t_v1=() t_v2=() f_raw f_v1 f_v2 s_snap=() s_plain=() kb
	log "area 15: compressed deltas on a page store ($ZIP_COMMITS commits)"
	zip_build_tools
	# ZIP_COMMITS for the log that is measured, 50 more for a second log
	# (so that the first can be collected)
	gen=$("$W/pagestore" -c $((ZIP_COMMITS + 50)) -s 1 "$W/ps.bin" "$W/ps.hex") ||
		bench_die "pagestore failed"
	pages_per=$(awk '{ printf "%.1f", $4 / $2 }' <<<"$gen")
	ps_bytes=$(awk '{ print $6 }' <<<"$gen")
	"$W/codec_speed" pages "$W/ps.bin" >"$W/codec_pages.txt" || bench_die "codec_speed pages failed"
	"$W/codec_speed" json "$ZIP_JSON" 1 >"$W/codec_json.txt" || bench_die "codec_speed json failed"

	area_title 15 "15. Compression: a SQLite page store, stored and served"
	area_note 15 "Workload (test/bench/pagestore.c): a notes application on a real SQLite database (libsqlite3, 4 KiB pages, rollback journal), $ZIP_COMMITS commits of a few inserted notes (pseudo-English text), edits of others, a burst of small JSON events and the deletion of old notes while more than 5 MiB of the file is in use; after each commit the pages that changed are one delta (key: page number, 4 bytes big-endian; value: the 4096-byte page): $pages_per pages per commit on average ($((ZIP_COMMITS + 50)) commits generated, $(mib_of "$ps_bytes") MiB of deltas), a $(awk '{ printf "%.1f", $8 * 4 / 1024 }' <<<"$gen") MiB database at the end. Two databases of this cluster get the same deltas through synclog.append_delta, one per statement, committing every 100, then one rotation (synclog.compact, timed), then 50 more commits, a second rotation and the collection of the first log (synclog.gc with retention 0, timed): *before* stores as synclog did before issue 16 (\`synclog.compression = off\`, synclog.kv.value with pglz), *now* as it does now (deltas compressed with Zstandard when it pays, synclog.kv.value with lz4).
- On disk: synclog's tables with their indexes and TOAST (the retention keeps the sealed log: a late follower may still read it).
- A late follower reads the whole log from LSN 0 (test/bench/readlog.c, every byte of every column received): with synclog.read, as every version 1 client does, from *before* and from *now*; and the stored deltas as they are, what synclog.read2 serves a client whose accept lists zstd (measured as a paged \`SELECT lsn, delta\` of the entries, pages of 1000, since read2 is not in this build). Times are of $READ_PASSES passes in a row in one connection, after one untimed pass.
- Snapshot download of the state after the rotation ($SNAP_PAGE rows a page, 10 passes per run in one connection after an untimed one) against a paged plain SELECT of the same keys and values from an ordinary table (primary key on key, default compression)."
	for db in zip_before zip_now; do new_db "$db"; done
	qd zip_before -c "ALTER TABLE synclog.kv ALTER COLUMN value SET COMPRESSION pglz" \
		-c "ALTER DATABASE zip_before SET synclog.compression = off" >/dev/null
	raw=$(zip_load zip_before)
	on=$(zip_load zip_now)
	log "  appends: before $raw, now $on (ms, WAL bytes, growth)"
	rot_raw=$(DB=zip_before time_sql_ms "SELECT synclog.compact('ps')")
	rot_on=$(DB=zip_now time_sql_ms "SELECT synclog.compact('ps')")
	log_raw=$(qd zip_before -c "SELECT log_id FROM synclog.log l JOIN synclog.doc d USING (doc_id) WHERE d.name = 'ps' AND l.generation = 1")
	log_on=$(qd zip_now -c "SELECT log_id FROM synclog.log l JOIN synclog.doc d USING (doc_id) WHERE d.name = 'ps' AND l.generation = 1")
	disk_raw=$(qd zip_before -c "$SL_SIZE_SQL")
	disk_on=$(qd zip_now -c "$SL_SIZE_SQL")
	entry_raw=$(qd zip_before -c "SELECT pg_total_relation_size('synclog.entry')")
	entry_on=$(qd zip_now -c "SELECT pg_total_relation_size('synclog.entry')")
	kv_raw=$(qd zip_before -c "SELECT pg_total_relation_size('synclog.kv')")
	kv_on=$(qd zip_now -c "SELECT pg_total_relation_size('synclog.kv')")
	# Compression never made a delta bigger: every stored delta is at most
	# its version 1 size (log_bytes' difference), and none under 256 bytes
	# is compressed.
	b=$(qd zip_now -c "SELECT count(*) FILTER (WHERE octet_length(delta) > v1) || ' ' ||
	                          count(*) FILTER (WHERE v1 < 256 AND get_byte(delta, 0) = 2) || ' ' ||
	                          count(*) FILTER (WHERE get_byte(delta, 0) = 2) || ' ' || count(*)
	                     FROM (SELECT delta, log_bytes - coalesce(lag(log_bytes) OVER (ORDER BY lsn), 0) AS v1
	                             FROM synclog.entry e JOIN synclog.doc d USING (doc_id)
	                            WHERE d.name = 'ps' AND lsn <= $ZIP_COMMITS) x")
	read -r bigger small_zip zipped total <<<"$b"
	[ "$bigger" = 0 ] && [ "$small_zip" = 0 ] || bench_die "a stored delta is bigger than its version 1 form ($b)"
	qd zip_now -c "CREATE VIEW public.stored AS SELECT e.lsn, e.delta FROM synclog.entry e JOIN synclog.doc d USING (doc_id) WHERE d.name = 'ps'" >/dev/null

	for ((r = 1; r <= REPS; r++)); do
		read -r f_raw rr s <<<"$(zip_read zip_before "$READ_PASSES" read -d ps -l "$log_raw")"
		t_raw+=("$s")
		read -r f_v1 rr s <<<"$(zip_read zip_now "$READ_PASSES" read -d ps -l "$log_on")"
		t_v1+=("$s")
		read -r f_v2 rr s <<<"$(zip_read zip_now "$READ_PASSES" plain-paged -t public.stored -p 1000)"
		t_v2+=("$s")
		log "  run $r: a late follower moves $f_raw bytes (before), $f_v1 (now, version 1), $f_v2 (now, stored); $READ_PASSES passes: ${t_raw[-1]} s, ${t_v1[-1]} s, ${t_v2[-1]} s"
	done

	# The state: snapshot pages against the same rows in a plain table.
	qd zip_now -c "CREATE TABLE public.ps_state (key bytea PRIMARY KEY, value bytea NOT NULL)" \
		-c "INSERT INTO public.ps_state SELECT key, value || '\\x'::bytea FROM synclog.snapshot('ps', (SELECT log_id FROM synclog.current_log('ps')), NULL, 2147483647)" \
		-c "VACUUM ANALYZE public.ps_state" -c "VACUUM ANALYZE synclog.kv" >/dev/null
	log_on=$(qd zip_now -c "SELECT log_id FROM synclog.current_log('ps')")
	kb=$(qd zip_now -c "SELECT sum(octet_length(key) + octet_length(value)) FROM public.ps_state")
	for ((r = 1; r <= REPS; r++)); do
		read -r b rr s <<<"$(zip_read zip_now 10 plain-kv -t public.ps_state -p "$SNAP_PAGE")"
		s_plain+=("$(awk -v b="$b" -v s="$s" 'BEGIN { printf "%.1f", b * 10 / 1048576 / s }')")
		read -r b rr s <<<"$(zip_read zip_now 10 snapshot -d ps -l "$log_on" -p "$SNAP_PAGE")"
		s_snap+=("$(awk -v b="$b" -v s="$s" 'BEGIN { printf "%.1f", b * 10 / 1048576 / s }')")
		log "  run $r: snapshot ${s_snap[-1]} MiB/s, plain paged ${s_plain[-1]} MiB/s"
	done

	# A second log, and collecting the first (gc reads its deltas).
	for db in zip_before zip_now; do
		qd "$db" -c "DO \$\$ BEGIN
		    FOR i IN $((ZIP_COMMITS + 1)) .. $((ZIP_COMMITS + 50)) LOOP
		      PERFORM synclog.append_delta('ps', (SELECT d FROM public.ps_delta WHERE n = i));
		    END LOOP;
		  END \$\$" -c "SELECT synclog.compact('ps')" >/dev/null
	done
	gc_raw=$(DB=zip_before time_sql_ms "SET synclog.retention = 0; SELECT synclog.gc()")
	gc_on=$(DB=zip_now time_sql_ms "SET synclog.retention = 0; SELECT synclog.gc()")
	[ "$(qd zip_now -c "SELECT count(*) FROM synclog.log WHERE state = 'collected'")" = 1 ] ||
		bench_die "gc did not collect the first log"

	record 15 z_disk_raw "on disk after the appends and a rotation, before (baseline)" bytes base - - "$disk_raw"
	record 15 z_disk "on disk after the appends and a rotation, now" bytes subj z_disk_raw "ratio<=0.5" "$disk_on"
	record 15 z_entry_raw "of which synclog.entry, before (baseline)" bytes base - - "$entry_raw"
	record 15 z_entry "of which synclog.entry, now" bytes subj z_entry_raw - "$entry_on"
	record 15 z_kv_raw "of which synclog.kv (pglz), before (baseline)" bytes base - - "$kv_raw"
	record 15 z_kv "of which synclog.kv (lz4), now" bytes subj z_kv_raw - "$kv_on"
	record 15 z_app_raw "appending the $ZIP_COMMITS commits, before (baseline)" ms base - - "$(cut -d' ' -f1 <<<"$raw")"
	record 15 z_app "appending the $ZIP_COMMITS commits, now ($zipped of $total deltas compressed)" ms subj z_app_raw - "$(cut -d' ' -f1 <<<"$on")"
	record 15 z_rot_raw "rotating that log (synclog.compact), before (baseline)" ms base - - "$rot_raw"
	record 15 z_rot "rotating that log, now (reading compressed deltas)" ms subj z_rot_raw - "$rot_on"
	record 15 z_gc_raw "collecting that log (synclog.gc), before (baseline)" ms base - - "$gc_raw"
	record 15 z_gc "collecting that log, now" ms subj z_gc_raw - "$gc_on"
	record 15 z_wal_raw "WAL of those appends, before (baseline)" bytes base - - "$(cut -d' ' -f2 <<<"$raw")"
	record 15 z_wal "WAL of those appends, now" bytes subj z_wal_raw - "$(cut -d' ' -f2 <<<"$on")"
	record 15 z_f_raw "bytes a late follower moves, synclog.read, before (baseline)" bytes base - - "$f_raw"
	record 15 z_f_v1 "bytes a late follower moves, synclog.read (a version 1 client), now" bytes subj z_f_raw - "$f_v1"
	record 15 z_f_v2 "bytes a late follower moves, stored deltas (read2 with accept zstd), now" bytes subj z_f_raw "ratio<=0.5" "$f_v2"
	record 15 z_t_raw "time of $READ_PASSES reads of the log, synclog.read, before (baseline)" s base - - "${t_raw[*]}"
	record 15 z_t_v1 "time of $READ_PASSES reads of the log, synclog.read (decompressing), now" s subj z_t_raw - "${t_v1[*]}"
	record 15 z_t_v2 "time of $READ_PASSES reads of the log, stored deltas, now" s subj z_t_raw - "${t_v2[*]}"
	record 15 z_s_plain "snapshot download of the page store's state ($(mib_of "$kb") MiB), paged plain SELECT (baseline)" "MiB/s" base - - "${s_plain[*]}"
	record 15 z_s_snap "snapshot download of the same state, synclog.snapshot" "MiB/s" subj z_s_plain "ratio>=1" "${s_snap[*]}"
	area_post 15 "$(zip_codec_table "$W/codec_pages.txt" "Codecs on the same page-store deltas, each delta compressed on its own (test/bench/codec_speed.c; one core; best of 3 passes)")"
	area_post 15 "$(zip_codec_table "$W/codec_json.txt" "Codecs on small JSON-like deltas (a to-do application's records, 1 to 4 per delta)")"
}
