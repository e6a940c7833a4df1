#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/fuzz_<name>.cpp) with clang into build-fuzz/ and runs each for a
# set time, on a copy of its seed corpus (fuzz/corpus/<name>/; the repository is never written to).
#
#   scripts/fuzz.sh [--seconds N] [--jobs J] [--build-only] [target...]
#
#   --seconds N   run time per target (default 600); CI's smoke stage uses 15
#   --jobs J      targets run at once (default 1); each one uses one core
#   --build-only  build the targets and stop (scripts/test.sh builds ahead of its fuzz stage)
#   target...     names as in fuzz_<name>.cpp (default: all of them)
#
# Prints one summary line per target (executions, exec/s, final cov and ft, corpus size) and writes
# them to fuzz/results/latest.md (gitignored). Exits non-zero if any target found a crash, leak,
# timeout, out-of-memory or sanitizer report, naming the input that triggers it (under
# build-fuzz/fuzz-run/artifacts/<name>/; rerun it with build-fuzz/fuzz/fuzz_<name> <file>).
# Environment: FUZZ_BUILD_DIR (build-fuzz), FUZZ_TIMEOUT (seconds one input may take, 10),
# FUZZ_RSS_LIMIT_MB (2048), FUZZ_ARGS (more libFuzzer flags).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "fuzz.sh: $*" >&2; exit 2; }

seconds=600
jobs=1
build_only=0
targets=()
while (($#)); do
  case "$1" in
    --seconds) [[ $# -ge 2 ]] || die "--seconds needs a value"; seconds=$2; shift 2 ;;
    --seconds=*) seconds=${1#*=}; shift ;;
    --jobs | -j) [[ $# -ge 2 ]] || die "--jobs needs a value"; jobs=$2; shift 2 ;;
    --jobs=*) jobs=${1#*=}; shift ;;
    --build-only) build_only=1; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ $seconds =~ ^[1-9][0-9]*$ ]] || die "--seconds must be a positive whole number"
[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "--jobs must be a positive whole number"

# The targets are the files: adding fuzz/fuzz_<name>.cpp (and its registrar_add_fuzzer line) is enough.
all=()
for f in fuzz/fuzz_*.cpp; do
  n=${f#fuzz/fuzz_}
  all+=("${n%.cpp}")
done
if ((${#targets[@]} == 0)); then
  targets=("${all[@]}")
fi
for t in "${targets[@]}"; do
  [[ " ${all[*]} " == *" $t "* ]] || die "no target '$t' (have: ${all[*]})"
done

command -v clang++ >/dev/null || die "clang++ not found: run scripts/install-deps.sh"
build_dir=${FUZZ_BUILD_DIR:-build-fuzz}
timeout_s=${FUZZ_TIMEOUT:-10}
rss_mb=${FUZZ_RSS_LIMIT_MB:-2048}

# One configure + one build for every target asked for, then the runs.
echo "fuzz.sh: building ${targets[*]} in $build_dir" >&2
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DREGISTRAR_FUZZ=ON -DREGISTRAR_BUILD_TESTS=OFF -DREGISTRAR_BUILD_BENCH=OFF >/dev/null
cmake --build "$build_dir" --parallel "$(nproc)" --target "${targets[@]/#/fuzz_}"
((build_only)) && exit 0

run_dir=$build_dir/fuzz-run
rm -rf "$run_dir"
mkdir -p "$run_dir"/{corpus,artifacts,logs}

# Every report is fatal and symbolized; leaks are checked (libFuzzer does so after each input that
# allocated more than it freed).
symbolizer=$(command -v llvm-symbolizer || command -v /usr/lib/llvm-14/bin/llvm-symbolizer || true)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:abort_on_error=0${symbolizer:+:external_symbolizer_path=$symbolizer}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:halt_on_error=1"

run_one() {
  local t=$1
  local corpus=$run_dir/corpus/$t artifacts=$run_dir/artifacts/$t/ log=$run_dir/logs/$t.log
  mkdir -p "$corpus" "$artifacts"
  if [[ -d fuzz/corpus/$t ]]; then cp -R "fuzz/corpus/$t/." "$corpus/"; fi
  local args=(-max_total_time="$seconds" -timeout="$timeout_s" -rss_limit_mb="$rss_mb"
              -print_final_stats=1 -artifact_prefix="$artifacts")
  if [[ -f fuzz/$t.dict ]]; then args+=(-dict="fuzz/$t.dict"); fi
  # shellcheck disable=SC2206
  args+=(${FUZZ_ARGS:-})
  local rc=0
  # The outer timeout only guards against a hang libFuzzer itself cannot end.
  timeout --kill-after=30 $((seconds + 300)) "$build_dir/fuzz/fuzz_$t" "${args[@]}" "$corpus" >"$log" 2>&1 || rc=$?
  echo "$rc" >"$run_dir/logs/$t.rc"
}

echo "fuzz.sh: running ${targets[*]} for ${seconds}s each, $jobs at a time (logs: $run_dir/logs/)" >&2
running=0
for t in "${targets[@]}"; do
  if ((running >= jobs)); then
    wait -n || true
    running=$((running - 1))
  fi
  run_one "$t" &
  running=$((running + 1))
done
wait || true

# One line per target, from libFuzzer's final stats and its last status line.
results_dir=fuzz/results
mkdir -p "$results_dir"
report=$results_dir/latest.md
{
  echo "# Fuzzing results"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores," \
    "$(clang++ --version | head -1)"
  echo
  echo "Command: \`scripts/fuzz.sh --seconds $seconds --jobs $jobs ${targets[*]}\`" \
    "(-timeout=$timeout_s -rss_limit_mb=$rss_mb${FUZZ_ARGS:+ $FUZZ_ARGS})"
  echo
  echo "| target | result | seconds | executions | exec/s | cov | ft | corpus (files) | peak RSS MB |"
  echo "|---|---|---|---|---|---|---|---|---|"
} >"$report"

failed=0
for t in "${targets[@]}"; do
  log=$run_dir/logs/$t.log
  rc=$(cat "$run_dir/logs/$t.rc" 2>/dev/null || echo 1)
  final_stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
  execs=$(final_stat number_of_executed_units)
  per_s=$(final_stat average_exec_per_sec)
  rss=$(final_stat peak_rss_mb)
  last=$(grep -E '^#[0-9]+.*cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corpus_files=$(find "$run_dir/corpus/$t" -type f | wc -l)
  artifact=$(find "$run_dir/artifacts/$t" -type f 2>/dev/null | head -1)
  if [[ $rc == 0 && -z $artifact ]]; then
    result=ok
  else
    failed=1
    reason=$(grep -m1 -E 'FUZZ_CHECK failed|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|SUMMARY:' "$log" || true)
    result="FAILED (exit $rc): ${reason:-see $log}${artifact:+; input: $artifact}"
  fi
  line="$t: $result; ${execs:-?} executions, ${per_s:-?} exec/s, cov ${cov:-?}, ft ${ft:-?}, corpus ${corpus_files} files, peak RSS ${rss:-?} MB"
  echo "$line"
  echo "| $t | ${result//|//} | $seconds | ${execs:-?} | ${per_s:-?} | ${cov:-?} | ${ft:-?} | $corpus_files | ${rss:-?} |" >>"$report"
done
echo "fuzz.sh: summary in $report" >&2
if ((failed)); then
  echo "fuzz.sh: FAILED: see the lines above; logs in $run_dir/logs/" >&2
  exit 1
fi
