# test/bench/lib.sh - helpers for test/bench/run.sh: running SQL and
# pgbench, timing, sampling a backend's memory, and recording results.
#
# Sourced by run.sh after it has set W (a scratch directory), DB (the
# benchmark database), REPS and the PG* connection variables.

bench_die() {
	echo "bench: ERROR: $*" >&2
	exit 1
}

log() {
	echo "[$(date +%H:%M:%S)] $*" >&2
}

# psql against the benchmark database: quiet, unaligned, stop on error.
q() {
	psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"
}

now_s() {
	date +%s.%N
}

# Server-side duration of one statement in milliseconds (psql \timing:
# parse, execute and commit, without the connection set-up).
time_sql_ms() {
	local out
	out=$(psql -X -At -v ON_ERROR_STOP=1 -d "$DB" -c '\timing on' -c "$1") ||
		bench_die "statement failed: $1"
	echo "$out" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1
}

# pgbench_tps LABEL [pgbench args...]: runs pgbench against $DB and prints
# the tps figure.  Fails (and shows pgbench's output) if pgbench aborted or
# any transaction failed.
pgbench_tps() {
	local label=$1 out w0 n
	shift
	out=$W/pgbench.$label.out
	w0=$(q -c "SELECT pg_current_wal_insert_lsn()")
	if ! pgbench -n -M prepared "$@" "$DB" >"$out" 2>&1; then
		cat "$out" >&2
		bench_die "pgbench $label failed"
	fi
	if grep -q '^number of failed transactions: [1-9]' "$out"; then
		cat "$out" >&2
		bench_die "pgbench $label: failed transactions"
	fi
	# WAL written per transaction during the run (the whole server's WAL:
	# on the benchmark's otherwise idle server, the run's), for wal_per_tx.
	n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out" | head -1)
	q -c "SELECT round(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$w0') / greatest(${n:-0}, 1))" >"$W/wal.$label"
	sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$out" | head -1
}

# wal_per_tx LABEL: bytes of WAL per transaction of pgbench_tps run LABEL.
wal_per_tx() {
	cat "$W/wal.$1"
}

# percentile P FILE: the P-th percentile (nearest rank) of the numbers in FILE.
percentile() {
	sort -n "$2" | awk -v p="$1" '{ v[NR] = $1 }
		END { if (NR == 0) { print "nan"; exit }
			  r = int(p / 100 * NR); if (r < p / 100 * NR) r++; if (r < 1) r = 1
			  print v[r] }'
}

# Memory sampling ------------------------------------------------------------

# rss_anon_kb PID: RssAnon of a process in kB (empty if it is gone).
rss_anon_kb() {
	local k v rest
	{
		while read -r k v rest; do
			if [ "$k" = "RssAnon:" ]; then
				echo "$v"
				break
			fi
		done <"/proc/$1/status"
	} 2>/dev/null
	return 0
}

# rss_sampler PIDFILE STOPFILE OUT: waits for PIDFILE, then writes RssAnon
# (kB) of that backend to OUT every ~20 ms until STOPFILE exists or the
# backend exits.  The first line is the value before the operation (the
# client sleeps after writing its pid).
rss_sampler() {
	local pidfile=$1 stop=$2 out=$3 pid v
	: >"$out"
	while [ ! -s "$pidfile" ]; do
		[ -e "$stop" ] && return 0
		sleep 0.01
	done
	pid=$(head -1 "$pidfile")
	while [ ! -e "$stop" ] && [ -r "/proc/$pid/status" ]; do
		v=$(rss_anon_kb "$pid")
		[ -n "$v" ] && echo "$v" >>"$out"
		sleep 0.02
	done
}

# rss_growth_mib SAMPLES: peak minus first sample, in MiB.
rss_growth_mib() {
	awk 'NR == 1 { b = $1; m = $1 } $1 > m { m = $1 }
		END { if (NR < 2) { print "nan"; exit } printf "%.1f\n", (m - b) / 1024 }' "$1"
}

# measure_rss NAME CMD...: runs CMD (which must write its backend pid to
# $W/NAME.pid, sleep a second, then do the operation) while sampling that
# backend; prints the growth in MiB.  The samples stay in $W/NAME.rss.
measure_rss() {
	local name=$1 spid n
	shift
	rm -f "$W/$name.pid" "$W/$name.stop"
	rss_sampler "$W/$name.pid" "$W/$name.stop" "$W/$name.rss" &
	spid=$!
	if ! "$@" >"$W/$name.out" 2>&1; then
		touch "$W/$name.stop"
		wait "$spid" || true
		cat "$W/$name.out" >&2
		bench_die "$name failed"
	fi
	touch "$W/$name.stop"
	wait "$spid" || true
	n=$(wc -l <"$W/$name.rss")
	[ "$n" -ge 2 ] || bench_die "$name: only $n memory samples (was the backend's /proc entry readable?)"
	rss_growth_mib "$W/$name.rss"
}

# Results ----------------------------------------------------------------------
#
# $W/results.tsv, one line per measured series:
#   area  id  label  unit  role  base_id  target  values...
# role:   base (a baseline), subj (compared with base_id), info (no ratio)
# target: "-" or one of  ratio>=X  ratio<=X  max<=X  (X a number)

record() {
	local area=$1 id=$2 label=$3 unit=$4 role=$5 base=$6 target=$7
	shift 7
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$area" "$id" "$label" "$unit" \
		"$role" "$base" "$target" "$*" >>"$W/results.tsv"
}

# area_note AREA TEXT: a paragraph printed above the area's table.
area_note() {
	printf '%s\n\n' "$2" >>"$W/area.$1.notes"
}

# area_post AREA TEXT: a paragraph (or a markdown table, a plot) printed
# below the area's table.
area_post() {
	printf '%s\n\n' "$2" >>"$W/area.$1.post"
}

area_title() {
	echo "$2" >"$W/area.$1.title"
}

# render: markdown for every area, in the order given, plus a summary.
render_tables() {
	awk -F'\t' -v areas="$*" -v W="$W" '
	function med(a, n,   t, i, j, x) {
		for (i = 1; i <= n; i++) t[i] = a[i]
		for (i = 2; i <= n; i++) { x = t[i]; for (j = i - 1; j >= 1 && t[j] > x; j--) t[j + 1] = t[j]; t[j + 1] = x }
		if (n % 2) return t[(n + 1) / 2]
		return (t[n / 2] + t[n / 2 + 1]) / 2
	}
	function mn(a, n,   i, m) { m = a[1]; for (i = 2; i <= n; i++) if (a[i] < m) m = a[i]; return m }
	function mx(a, n,   i, m) { m = a[1]; for (i = 2; i <= n; i++) if (a[i] > m) m = a[i]; return m }
	function fmt(v) {
		if (v == "nan") return v
		if (v >= 1000) return sprintf("%.0f", v)
		if (v >= 100) return sprintf("%.1f", v)
		if (v >= 10) return sprintf("%.2f", v)
		return sprintf("%.3f", v)
	}
	{
		n = split($8, vals, " ")
		key = $2
		AREA[key] = $1; LABEL[key] = $3; UNIT[key] = $4; ROLE[key] = $5
		BASE[key] = $6; TARGET[key] = $7; N[key] = n
		for (i = 1; i <= n; i++) V[key, i] = (vals[i] == "nan") ? 0 : vals[i] + 0
		ORDER[$1] = ORDER[$1] " " key
	}
	END {
		na = split(areas, A, " ")
		summary = "| Area | Measurement | Result (ratio of medians to baseline) | Target | Met |\n|---|---|---|---|---|\n"
		for (ai = 1; ai <= na; ai++) {
			a = A[ai]
			if (!(a in ORDER)) continue
			tf = W "/area." a ".title"; getline title < tf; close(tf)
			printf "## %s\n\n", title
			nf = W "/area." a ".notes"
			while ((getline line < nf) > 0) print line
			close(nf)
			print "| Measurement | Unit | Runs | Min | Median | Max | Ratio to baseline (of medians) | Per-run ratios | Target | Met |"
			print "|---|---|---|---|---|---|---|---|---|---|"
			nk = split(ORDER[a], K, " ")
			for (ki = 1; ki <= nk; ki++) {
				k = K[ki]; n = N[k]
				delete x; for (i = 1; i <= n; i++) x[i] = V[k, i]
				m = med(x, n)
				ratio = "-"; per = "-"; met = "-"; tgt = "-"
				if (ROLE[k] == "base") ratio = "1 (baseline)"
				r = ""
				if (ROLE[k] == "subj") {
					b = BASE[k]; delete y
					for (i = 1; i <= N[b]; i++) y[i] = V[b, i]
					bm = med(y, N[b])
					r = (bm > 0) ? m / bm : "nan"
					ratio = (r == "nan") ? "n/a (baseline 0)" : sprintf("%.2fx", r)
					per = ""
					for (i = 1; i <= n && i <= N[b]; i++)
						per = per (i > 1 ? " " : "") ((y[i] > 0) ? sprintf("%.2f", x[i] / y[i]) : "nan")
				}
				t = TARGET[k]
				if (t ~ /^ratio>=/) { tv = substr(t, 8) + 0; tgt = ">= " tv "x"; met = (r != "nan" && r >= tv) ? "yes" : "**no**" }
				else if (t ~ /^ratio<=/) { tv = substr(t, 8) + 0; tgt = "<= " tv "x"; met = (r != "nan" && r <= tv) ? "yes" : "**no**" }
				else if (t ~ /^max<=/) { tv = substr(t, 6) + 0; tgt = "<= " tv " " UNIT[k] ((n > 1) ? " (worst)" : ""); met = (mx(x, n) <= tv) ? "yes" : "**no**" }
				printf "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", LABEL[k], UNIT[k], n, fmt(mn(x, n)), fmt(m), fmt(mx(x, n)), ratio, per, tgt, met
				shown = ratio
				if (t ~ /^max<=/) {
					shown = fmt(mx(x, n)) " " UNIT[k]
					if (ROLE[k] == "subj") shown = shown " worst run (" ((r == "nan") ? "baseline grew 0" : ratio " the baseline") ")"
					else if (n > 1) shown = shown " worst of " n
				}
				if (t != "-")
					summary = summary sprintf("| %s | %s | %s | %s | %s |\n", title, LABEL[k], shown, tgt, met)
				else if (ROLE[k] == "subj")
					summary = summary sprintf("| %s | %s | %s | (no target) | - |\n", title, LABEL[k], ratio)
			}
			print ""
			pf = W "/area." a ".post"
			while ((getline line < pf) > 0) print line
			close(pf)
		}
		printf "%s", summary > (W "/summary.md")
	}' "$W/results.tsv"
}
