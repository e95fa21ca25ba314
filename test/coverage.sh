#!/usr/bin/env bash
# test/coverage.sh - `make coverage`: how much of the extension the suites
# reach.  Builds synclog unoptimized and instrumented for gcov (-O0
# --coverage, test hooks on), installs that build, runs the chosen suites
# against it on a throw-away cluster (test/lib/cluster.sh), and prints the
# line and branch coverage of each file of the extension: src/*.c and the
# shared core src/core/synclog_core.c (also counting what the core unit
# tests of test/core reach, when they are among the suites).  Exits
# non-zero if a suite fails or a total is below its floor.
#
# Branches are counted without those inside ereport() and elog(): each
# error report is one line, and the branch to it is counted where its
# condition is tested.  (The macros' own branches, such as "was this
# message's level enabled", are not the code's.)  For the same reason the
# branches inside PostgreSQL's varlena and index-tuple macros and
# CHECK_FOR_INTERRUPTS are not counted: the instrumented build turns them
# into inline functions of test/coverage_macros.h, outside the report.
#
# Settings, from the environment or as make variables:
#   COVERAGE_SUITES         any of: core regress isolation tap
#                           (default: all four)
#   COVERAGE_TAP            the TAP tests to run (default: all, test/t/*.pl)
#   COVERAGE_MIN_LINES      floor for the total line coverage, in percent
#   COVERAGE_MIN_BRANCHES   floor for the total branch coverage, in percent
#   COVERAGE_OUT            where the lcov files and report.txt go
#                           (default: coverage/ in the tree)
#   PG_CONFIG               the PostgreSQL to build against and install into
#
# Must never: run against a PostgreSQL that others test with: it installs
# the instrumented build into PG_CONFIG's installation.  It runs as root
# (the cluster belongs to the postgres user) or as the owner of the
# installation, like .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
TOP=$(pwd)

PG_CONFIG=${PG_CONFIG:-pg_config}
PG_BIN=$("$PG_CONFIG" --bindir)
export PG_BIN
. test/lib/cluster.sh

SUITES=${COVERAGE_SUITES:-core regress isolation tap}
MIN_LINES=${COVERAGE_MIN_LINES:-0}
MIN_BRANCHES=${COVERAGE_MIN_BRANCHES:-0}
OUT=${COVERAGE_OUT:-$TOP/coverage}
# Branches on these lines are not counted (see above).
EXCL_BR='LCOV_EXCL_BR_LINE|ereport\(|elog\(|errmsg|errdetail|errhint|errcode|errcontext'
LCOV="lcov -q --rc lcov_branch_coverage=1 --rc lcov_excl_br_line=$EXCL_BR"
# lcov 1.16 (Debian 12) warns about its own redefined subroutines: drop
# those lines, keep anything else it says.
lcov_() {
	$LCOV "$@" 2> >(grep -v '^Subroutine .* redefined at ' >&2)
}

has() { case " $SUITES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

sl_install_deps
command -v lcov >/dev/null || { echo "coverage: lcov is not installed" >&2; exit 1; }

WORK=$(mktemp -d /tmp/synclog-cov.XXXXXX)
chmod 755 "$WORK"
cleanup() {
	sl_stop_cluster
	rm -rf "$WORK"
}
trap cleanup EXIT

echo "== coverage: building the instrumented extension (-O0 --coverage)"
find src -name '*.gcda' -delete
make -s clean >/dev/null
rm -rf "$OUT"
mkdir -p "$OUT"
make -s -j2 PG_CONFIG="$PG_CONFIG" SYNCLOG_TEST_HOOKS=1 SYNCLOG_COVERAGE=1
make -s install PG_CONFIG="$PG_CONFIG" SYNCLOG_TEST_HOOKS=1 SYNCLOG_COVERAGE=1
# Every file counts, also one no test loads.
lcov_ -c -i -d src --no-external -o "$OUT/base.info"

status=0
if has regress || has isolation || has tap; then
	# The servers (this cluster and the TAP tests' own) write their counts
	# under GCOV_PREFIX, a directory the postgres user can write to; they
	# are copied next to the objects afterwards.
	export GCOV_PREFIX=$WORK/gcda GCOV_PREFIX_STRIP=0
	mkdir -p "$GCOV_PREFIX"
	[ "$(id -u)" = 0 ] && chown postgres "$GCOV_PREFIX"
	sl_start_cluster
	cp -a . "$WORK/tree"
	[ "$(id -u)" = 0 ] && chown -R postgres "$WORK/tree"
	sel=()
	has regress || sel+=(REGRESS=)
	has isolation || sel+=(ISOLATION=)
	if has tap; then
		[ -n "${COVERAGE_TAP:-}" ] && sel+=(PROVE_TESTS="$COVERAGE_TAP")
	else
		sel+=(TAP_TESTS= PROVE_TESTS=)
	fi
	echo "== coverage: running the suites ($SUITES${COVERAGE_TAP:+: $COVERAGE_TAP})"
	if ! sl_as_pg make -C "$WORK/tree" -s installcheck PG_CONFIG="$PG_CONFIG" \
		SYNCLOG_TEST_HOOKS=1 "${sel[@]}"; then
		status=1
		for f in "$WORK"/tree/regression.diffs "$WORK"/tree/test/isolation/output_iso/regression.diffs; do
			[ -f "$f" ] && cat "$f"
		done
	fi
	# A fast shutdown: every backend exits normally and writes its counts.
	sl_stop_cluster
	unset GCOV_PREFIX GCOV_PREFIX_STRIP
	if [ -d "$WORK/gcda$TOP/src" ]; then
		cp -r "$WORK/gcda$TOP/src/." src/
	fi
	lcov_ -c -d src --no-external -o "$OUT/suites.info"
	set -- -a "$OUT/base.info" -a "$OUT/suites.info"
else
	set -- -a "$OUT/base.info"
fi

if has core; then
	echo "== coverage: core unit and property tests (test/core)"
	make -s -C test/core coverage
	lcov_ -c -d test/core/cov -b test/core -o "$OUT/core.info"
	set -- "$@" -a "$OUT/core.info"
fi

lcov_ "$@" -o "$OUT/all.info"
lcov_ -e "$OUT/all.info" "$TOP/src/*.c" "$TOP/src/core/*.c" -o "$OUT/synclog.info"

# One row per file and a total: lines hit/found, branches hit/found.
perl -e '
	my ($min_l, $min_b, $top) = @ARGV[1 .. 3];
	open(my $f, "<", $ARGV[0]) or die;
	my (%lf, %lh, %bf, %bh, $sf);
	while (<$f>) {
		chomp;
		if (/^SF:(.*)/) { $sf = $1; $sf =~ s{^\Q$top\E/}{}; }
		elsif (/^LF:(\d+)/) { $lf{$sf} += $1 }
		elsif (/^LH:(\d+)/) { $lh{$sf} += $1 }
		elsif (/^BRF:(\d+)/) { $bf{$sf} += $1 }
		elsif (/^BRH:(\d+)/) { $bh{$sf} += $1 }
	}
	sub pct { my ($h, $n) = @_; return $n ? sprintf("%5.1f%%", 100 * $h / $n) : "    -" }
	printf "%-26s %15s %7s %15s %7s\n", "file", "lines", "", "branches", "";
	my ($tlf, $tlh, $tbf, $tbh) = (0, 0, 0, 0);
	for my $s (sort keys %lf) {
		printf "%-26s %7d/%-7d %7s %7d/%-7d %7s\n", $s, $lh{$s}, $lf{$s},
			pct($lh{$s}, $lf{$s}), $bh{$s} // 0, $bf{$s} // 0, pct($bh{$s} // 0, $bf{$s} // 0);
		$tlf += $lf{$s}; $tlh += $lh{$s}; $tbf += $bf{$s} // 0; $tbh += $bh{$s} // 0;
	}
	printf "%-26s %7d/%-7d %7s %7d/%-7d %7s\n", "total", $tlh, $tlf, pct($tlh, $tlf),
		$tbh, $tbf, pct($tbh, $tbf);
	my $fail = 0;
	if ($tlf && 100 * $tlh / $tlf < $min_l) {
		printf "coverage: lines %.1f%% is below the floor of %s%%\n", 100 * $tlh / $tlf, $min_l;
		$fail = 1;
	}
	if ($tbf && 100 * $tbh / $tbf < $min_b) {
		printf "coverage: branches %.1f%% is below the floor of %s%%\n", 100 * $tbh / $tbf, $min_b;
		$fail = 1;
	}
	printf "coverage: floors: lines %s%%, branches %s%% (outside ereport/elog and the macros of PostgreSQL)\n", $min_l, $min_b;
	exit $fail;
' "$OUT/synclog.info" "$MIN_LINES" "$MIN_BRANCHES" "$TOP" | tee "$OUT/report.txt" ||
	status=1
# The objects are instrumented: the next plain `make` must build them anew.
find src -name '*.o' -delete
rm -f synclog.so
[ "$status" = 0 ] && echo "coverage: passed" || echo "coverage: FAILED"
exit $status
