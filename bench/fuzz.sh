#!/bin/sh
# fuzz.sh [SECONDS] [TARGET...] — run the libFuzzer targets of tests/fuzz/.
#
# Each target (default: all) runs for SECONDS (default 60) under nice, one
# after the other, starting from its checked-in seeds (tests/fuzz/corpus/T)
# and crash inputs (tests/fuzz/regress/T).  New corpus entries go to
# $FUZZ_WORK/corpus/T (default build-fuzz/fuzz-work), never into the tree;
# findings (crash-*, leak-*, timeout-*, oom-*) go to $FUZZ_WORK/artifacts/T/
# and logs to $FUZZ_WORK/logs/T.log.  Prints one line per target:
# executions, executions per second, coverage, corpus size, findings.
# Exit status 1 when any target found something.
#
# Builds $FUZZ_BUILD (default build-fuzz) with clang first if needed:
#   CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false -Dbench=false \
#       -Db_sanitize=address,undefined -Db_lundef=false --buildtype=debugoptimized
# Needs clang and its libFuzzer runtime (deploy/packages-fuzz.txt).
#
# Reproduce a finding:  build-fuzz/tests/fuzz/fuzz_T ARTIFACT
# Then fix the product, copy ARTIFACT to tests/fuzz/regress/T/<short name>
# (the normal test suite replays it from then on).
set -eu
cd "$(dirname "$0")/.."
secs=${1:-60}
[ $# -gt 0 ] && shift
build=${FUZZ_BUILD:-build-fuzz}
work=${FUZZ_WORK:-$build/fuzz-work}
all="api model_esm model_w2v model_text model_ftbin hnsw wal snapshot repl_bundle repl_wal lexical lexicon filter pindex follower_http"
targets=${*:-$all}

case $secs in
	''|*[!0-9]*) echo "fuzz.sh: SECONDS must be a number, not '$secs'" >&2; exit 2 ;;
esac

if [ ! -f "$build/build.ninja" ]; then
	CC=${FUZZ_CC:-clang} meson setup "$build" -Dfuzz=true -Dtests=false -Dbench=false \
		-Db_sanitize=address,undefined -Db_lundef=false --buildtype=debugoptimized
fi
nice -n 10 ninja -C "$build" $(for t in $targets; do printf 'tests/fuzz/fuzz_%s ' "$t"; done)

# inputs bigger than the seeds need are rarely useful and slow every run
max_len() {
	case $1 in
		api) echo 4096 ;;
		model_*) echo 32768 ;;
		*) echo 16384 ;;
	esac
}

export ES_SOURCE_ROOT="$PWD"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

found=0
printf '%-12s %6s %12s %8s %7s %7s %s\n' target seconds executions exec/s cov corpus findings
for t in $targets; do
	bin="$build/tests/fuzz/fuzz_$t"
	[ -x "$bin" ] || { echo "fuzz.sh: no target $t ($bin)" >&2; exit 2; }
	mkdir -p "$work/corpus/$t" "$work/artifacts/$t" "$work/logs"
	seeds=""
	for d in tests/fuzz/corpus/$t tests/fuzz/regress/$t; do
		[ -d "$d" ] && seeds="$seeds $d"
	done
	dict=""
	[ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
	before=$(ls "$work/artifacts/$t" | wc -l)
	log="$work/logs/$t.log"
	start=$(date +%s)
	# shellcheck disable=SC2086
	nice -n 10 "$bin" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 \
		-max_len="$(max_len "$t")" -print_final_stats=1 \
		-artifact_prefix="$work/artifacts/$t/" $dict \
		"$work/corpus/$t" $seeds > "$log" 2>&1 || true
	took=$(( $(date +%s) - start ))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
	corp=$(ls "$work/corpus/$t" | wc -l)
	new=$(( $(ls "$work/artifacts/$t" | wc -l) - before ))
	if [ "$new" -gt 0 ] || grep -q 'ERROR: \(AddressSanitizer\|LeakSanitizer\|libFuzzer\)\|runtime error:\|fuzz invariant broken' "$log"; then
		found=1
		[ "$new" -gt 0 ] || new="see log"
		findings="$new ($work/artifacts/$t/, $log)"
	else
		findings=0
	fi
	printf '%-12s %6s %12s %8s %7s %7s %s\n' "$t" "$took" "${execs:-?}" "${rate:-?}" \
		"${cov:-?}" "$corp" "$findings"
done
exit $found
