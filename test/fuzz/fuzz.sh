#!/usr/bin/env bash
# Driver for the fuzz targets; called by the Makefile (run it from there).
#
#   fuzz.sh run        fuzz each target for its share of FUZZ_SECONDS on a
#                      temporary copy of corpus/<t>/ + crashes/<t>/; a crash,
#                      leak, timeout or OOM is copied to crashes/<t>/ and
#                      printed as base64 (so CI logs carry it), and fails.
#                      FUZZ_OUT=DIR keeps the grown corpora in DIR/<t>/.
#   fuzz.sh regress    replay every file of corpus/<t>/ and crashes/<t>/.
#   fuzz.sh coverage   line/function coverage of src/core from the
#                      cov_* builds over corpus/, crashes/ and COV_CORPUS/<t>/.
#
# Each mode ends with one line "fuzz <mode>: PASS ..." or "fuzz <mode>: FAIL
# ..." and exits non-zero on failure.
set -u
cd "$(dirname "$0")" || exit 2

TARGETS="delta hash zip"
# Longest input the fuzzer generates, per target.
max_len_of() {
	case "$1" in
		delta) echo 8192 ;;
		zip) echo 16384 ;;
		*) echo 1200 ;;
	esac
}

# Inputs of a target: corpus and committed crashes (README files excluded).
inputs() {
	find "corpus/$1" "crashes/$1" -maxdepth 1 -type f ! -name 'README*' \
		! -name '.*' 2>/dev/null | LC_ALL=C sort
}

mode_regress() {
	local t f n=0 bad=0 failed=""
	for t in $TARGETS; do
		while IFS= read -r f; do
			n=$((n + 1))
			if ! "./fuzz_$t" -timeout=10 -rss_limit_mb=2048 "$f" >"regress.log" 2>&1; then
				bad=$((bad + 1))
				failed="$failed $f"
				echo "regress: $f FAILED:"
				tail -n 40 regress.log
			fi
		done < <(inputs "$t")
	done
	rm -f regress.log
	if [ "$bad" -ne 0 ]; then
		echo "fuzz regress: FAIL, $bad of $n inputs crashed:$failed"
		return 1
	fi
	echo "fuzz regress: PASS, $n inputs replayed (corpus + crashes), no crash"
}

# stat_of LOG NAME: a value from libFuzzer's -print_final_stats output.
stat_of() {
	sed -n "s/^stat::$2: *//p" "$1" | tail -n 1
}

mode_run() {
	local secs=${FUZZ_SECONDS:-60} tmp t s rc status=0 summary="" art
	case "$secs" in '' | *[!0-9]*)
		echo "fuzz run: FAIL, FUZZ_SECONDS must be a whole number"
		return 1 ;;
	esac
	[ "$secs" -ge 2 ] || secs=2
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/synclog-fuzz.XXXXXX") || return 1
	# shellcheck disable=SC2064
	trap "rm -rf '$tmp'" EXIT

	for t in $TARGETS; do
		# the hash target is small: a sixth of the time; a third to the
		# compressed deltas, the rest to delta
		case $t in
			hash) s=$((secs / 6)) ;;
			zip) s=$((secs / 3)) ;;
			*) s=$((secs - secs / 6 - secs / 3)) ;;
		esac
		[ "$s" -ge 1 ] || s=1
		mkdir -p "$tmp/$t" "$tmp/art-$t"
		inputs "$t" | while IFS= read -r f; do
			cp "$f" "$tmp/$t/"
		done
		local dict=()
		[ -f "fuzz_$t.dict" ] && dict=("-dict=fuzz_$t.dict")
		echo "== fuzz_$t for ${s}s (corpus: $(find "$tmp/$t" -type f | wc -l) files)"
		"./fuzz_$t" -max_total_time="$s" -max_len="$(max_len_of "$t")" \
			-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
			-artifact_prefix="$tmp/art-$t/" "${dict[@]}" \
			"$tmp/$t" >"$tmp/$t.log" 2>&1
		rc=$?
		local execs rate cov
		execs=$(stat_of "$tmp/$t.log" number_of_executed_units)
		rate=$(stat_of "$tmp/$t.log" average_exec_per_sec)
		cov=$(grep -E '^#[0-9]+' "$tmp/$t.log" | tail -n 1 |
			sed -n 's/.*\(cov: [0-9]*\) \(ft: [0-9]*\) \(corp: [0-9]*\).*/\1 \2 \3/p')
		echo "   fuzz_$t: exit $rc, ${execs:-?} execs, ${rate:-?} execs/s, ${cov:-no stats}"
		summary="$summary $t: ${execs:-?} execs at ${rate:-?}/s, ${cov:-?};"
		if [ "$rc" -ne 0 ]; then
			status=1
			tail -n 60 "$tmp/$t.log"
			mkdir -p "crashes/$t"
			for art in "$tmp/art-$t"/*; do
				[ -f "$art" ] || continue
				cp "$art" "crashes/$t/"
				echo "   saved crashes/$t/$(basename "$art") ($(wc -c <"$art") bytes); commit it." \
					"base64:"
				base64 -w 0 "$art"
				echo
			done
		fi
		if [ -n "${FUZZ_OUT:-}" ]; then
			mkdir -p "$FUZZ_OUT/$t"
			cp "$tmp/$t"/* "$FUZZ_OUT/$t/" 2>/dev/null
		fi
	done
	if [ "$status" -ne 0 ]; then
		echo "fuzz run: FAIL, a target crashed (inputs saved under test/fuzz/crashes/);$summary"
		return 1
	fi
	echo "fuzz run: PASS, ${secs}s, no crash;$summary"
}

mode_coverage() {
	local t f prof="" status=0
	if ! command -v llvm-profdata >/dev/null || ! command -v llvm-cov >/dev/null; then
		echo "fuzz coverage: FAIL, llvm-profdata/llvm-cov not found"
		return 1
	fi
	rm -f cov-*.profraw
	for t in $TARGETS; do
		{
			inputs "$t"
			[ -n "${COV_CORPUS:-}" ] && [ -d "$COV_CORPUS/$t" ] &&
				find "$COV_CORPUS/$t" -type f
		} | xargs -r env LLVM_PROFILE_FILE="cov-$t-%p.profraw" \
			"./cov_fuzz_$t" -runs=1 >/dev/null 2>&1 || status=1
		llvm-profdata merge -sparse cov-"$t"-*.profraw -o "cov-$t.profdata" || status=1
		prof="$prof cov-$t.profdata"
	done
	# shellcheck disable=SC2086
	llvm-profdata merge -sparse $prof -o cov.profdata || status=1
	llvm-cov report ./cov_fuzz_delta -object ./cov_fuzz_hash -object ./cov_fuzz_zip \
		-instr-profile=cov.profdata -ignore-filename-regex='fuzz_' || status=1
	echo "Lines of synclog_core.c and synclog_zip.c never executed:"
	llvm-cov show ./cov_fuzz_delta -object ./cov_fuzz_hash -object ./cov_fuzz_zip \
		-instr-profile=cov.profdata -ignore-filename-regex='fuzz_' |
		grep -E '^ +[0-9]+\| +0\|' || true
	rm -f cov-*.profraw cov-*.profdata
	if [ "$status" -ne 0 ]; then
		echo "fuzz coverage: FAIL"
		return 1
	fi
	echo "fuzz coverage: done (report above; cov.profdata kept for llvm-cov show)"
}

case "${1:-}" in
	run) mode_run ;;
	regress) mode_regress ;;
	coverage) mode_coverage ;;
	*)
		echo "usage: $0 run|regress|coverage" >&2
		exit 2
		;;
esac
