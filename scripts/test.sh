#!/usr/bin/env bash
# Installs dependencies, builds, and runs the test suites, in stages:
#
#   scripts/test.sh [all]    every stage below, in this order (what CI runs: .ci/run)
#   scripts/test.sh unit     the fast inner-loop subset: the normal build's unit tests only
#   scripts/test.sh normal   normal build (build/): unit + contract tests (ctest), every black-box test
#   scripts/test.sh asan     AddressSanitizer + UndefinedBehaviorSanitizer build (build-asan/):
#                            unit + contract tests and the black-box suite against build-asan/registrar
#   scripts/test.sh tsan     ThreadSanitizer build (build-tsan/): the same
#   scripts/test.sh fuzz     fuzz smoke run: every libFuzzer target for 15 s (scripts/fuzz.sh --seconds 15)
#
# Several stages may be named (scripts/test.sh asan tsan). Every named stage runs even when an
# earlier one failed; the run fails if any stage did, and ends with each stage's wall time.
#
# Builds ahead: with several stages, the builds of the second and later stages run in one
# background job, in stage order and at the lowest priority (nice 19), while the earlier stages
# test: tests mostly wait (on servers, timeouts, restarts) and leave much of the machine idle, and
# a fresh clone's builds are most of the run. Each stage waits for its own build, whose output is
# in .test-logs/prebuild-<stage>.log; the stage's own build step then finds it done (a build that
# failed in the background fails again there, in the stage's log). PREBUILD=0 turns it off.
#
# Sanitizer stages: the builds stop at the first report (-fno-sanitize-recover=all), and every
# instrumented process (test executables, and the registrar servers the black-box tests start)
# writes its reports to <build dir>/sanitizer-reports/ (ASAN_OPTIONS/UBSAN_OPTIONS/TSAN_OPTIONS
# log_path): a report there fails the stage, whatever the tests concluded, and is printed. A
# suppression file tests/sanitizers/<tool>.supp is used if it exists (none is needed today; an entry
# would have to say why). Under the sanitizers the black-box suite leaves out SANITIZER_BLACKBOX_SKIP
# (the long fault-injection files; they run in the normal stage), tests that cannot run under a
# sanitizer runtime skip themselves (REGISTRAR_TEST_SANITIZER tells them), and the harness's waits
# get REGISTRAR_TEST_TIMEOUT_SCALE times more time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=$(nproc)

ALL_STAGES=(normal asan tsan fuzz)
# Black-box files that only the normal stage runs: fault-injection runs whose time goes into
# waiting for databases to go down and come back, not into our code, and whose choreography is
# timed against the job's own back-off (create_user_mysql: the queue is paused within the
# retry's 800 ms delay).
# mysql.test.js (the core suite again, on MariaDB: the MySQL store's code runs instrumented in its
# contract tests) and outage_logs.test.js (log lines during outages; the episode logic has unit
# tests) spend their time waiting too.
# idempotency.test.js: its MariaDB part stops, kills and freezes the database under retrying
# clients (the Idempotency-Key use case and both stores run instrumented in their unit and
# contract tests).
SANITIZER_BLACKBOX_SKIP=${SANITIZER_BLACKBOX_SKIP:-"mysql_faults.test.js create_user_mysql.test.js mysql.test.js outage_logs.test.js idempotency.test.js"}


usage() { echo "usage: scripts/test.sh [all | unit | normal | asan | tsan | fuzz ...]" >&2; exit 2; }

stages=()
for arg in "${@:-all}"; do
  case "$arg" in
    all) stages+=("${ALL_STAGES[@]}") ;;
    unit|normal|asan|tsan|fuzz) stages+=("$arg") ;;
    *) usage ;;
  esac
done

# ---- stage bookkeeping: wall time and outcome of each, printed at the end whatever happens ----
summary=()
failed=0
digests=()
# What failed in each failed stage: the lines of its log that name a failure (ctest's list, the
# node test runner's "not ok" lines and their error, sanitizer summaries, compiler errors).
print_digests() {
  local i
  for ((i = 0; i < ${#digests[@]}; i += 2)); do
    echo
    echo "==== what failed in stage ${digests[i]} (full log: ${digests[i + 1]}) ===="
    grep -E -A3 '^[[:space:]]*not ok |FAILED|\*\*\*Failed|[0-9]+ - .*\((Failed|Timeout|SEGFAULT|Subprocess aborted)\)|^SUMMARY: |ERROR: (Address|Leak|Thread)Sanitizer|runtime error:|error: |sanitizer report' \
      "${digests[i + 1]}" | head -n 120 || true
  done
}
print_summary() {
  ((${#summary[@]})) || return 0
  print_digests
  echo
  echo "==== test stages (wall time) ===="
  printf '%s\n' "${summary[@]}"
}

run_stage() {
  local name=$1
  shift
  echo
  echo "==== stage $name ===="
  local start=$SECONDS status log=$ROOT/.test-logs/$name.log
  mkdir -p "$ROOT/.test-logs"
  # A subshell with errexit of its own (not under `||`, which would switch errexit off inside):
  # a failing command ends the stage there, and the next stage still runs. Its output is also kept
  # in .test-logs/<stage>.log, from which a failed stage's digest is printed at the very end (CI
  # shows the tail of the output, where a failure in an early stage would otherwise be lost).
  set +e
  ( set -e; wait_prebuild "$name"; "$@" ) 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  set -e
  local took=$((SECONDS - start)) outcome=ok
  if ((status != 0)); then
    outcome="FAILED (exit $status)"
    failed=1
    digests+=("$name" "$log")
  fi
  summary+=("$(printf '  %-7s %3dm%02ds  %s' "$name" $((took / 60)) $((took % 60)) "$outcome")")
  echo "==== stage $name: $outcome in ${took}s ===="
}

# ---- stages ----
stage_unit() {
  build_for unit
  ctest --test-dir build --output-on-failure -j"$JOBS" -L unit
}

# The black-box suite (node's test runner, one file at a time), bounded by BLACKBOX_TIMEOUT (40m):
# a test file whose process does not exit (a server a failed test left open) would otherwise hold
# the run until CI's own limit, and no stage after it would run.
blackbox() {
  timeout --kill-after=30 "${BLACKBOX_TIMEOUT:-40m}" node --test --test-concurrency=1 "$@"
}

stage_normal() {
  build_for normal
  ctest --test-dir build --output-on-failure -j"$JOBS"
  REGISTRAR_BIN="$ROOT/build/registrar" blackbox tests/blackbox/
}

# Sets the sanitizer runtime options for every process started from here on: reports go to
# files under $1 (one per process: <tool>.<pid>), the first report ends the process, and the
# suppression files of tests/sanitizers/ apply where they exist.
sanitizer_env() {
  local reports=$1 supp=$ROOT/tests/sanitizers
  local asan="log_path=$reports/asan:halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1"
  asan+=":check_initialization_order=1:strict_init_order=1:print_summary=1"
  local ubsan="log_path=$reports/ubsan:halt_on_error=1:print_stacktrace=1"
  local lsan="print_suppressions=0"
  local tsan="log_path=$reports/tsan:halt_on_error=1:second_deadlock_stack=1:history_size=4"
  [[ -f $supp/asan.supp ]] && asan+=":suppressions=$supp/asan.supp"
  [[ -f $supp/ubsan.supp ]] && ubsan+=":suppressions=$supp/ubsan.supp"
  [[ -f $supp/lsan.supp ]] && lsan+=":suppressions=$supp/lsan.supp"
  [[ -f $supp/tsan.supp ]] && tsan+=":suppressions=$supp/tsan.supp"
  export ASAN_OPTIONS=$asan UBSAN_OPTIONS=$ubsan LSAN_OPTIONS=$lsan TSAN_OPTIONS=$tsan
  export REGISTRAR_TEST_TIMEOUT_SCALE=${REGISTRAR_TEST_TIMEOUT_SCALE:-3}
}

# Fails (printing them) if any sanitizer report was written under $1.
check_reports() {
  local reports=$1 files=()
  shopt -s nullglob
  files=("$reports"/*)
  shopt -u nullglob
  ((${#files[@]} == 0)) && { echo "no sanitizer reports"; return 0; }
  local f
  for f in "${files[@]}"; do
    echo "---- sanitizer report $f ----"
    cat "$f"
  done
  echo "${#files[@]} sanitizer report(s) in $reports" >&2
  return 1
}

# A report the runtime writes anywhere but where check_reports looks would go unseen, and the stage
# would pass whatever happened. So each stage first proves the plumbing: small programs with a known
# bug, built with the stage's flags and run with its options (reports to a directory of their own),
# must each leave a report and fail. One exception, found by these canaries: GCC's UBSan linked
# beside ASan ignores log_path and prints to stderr; there the canary must fail with the report on
# stderr (a test executable that aborts fails its ctest case; the black-box harness copies such
# lines from a server's stderr into the reports directory). $1: asan or tsan.
check_canaries() {
  local name=$1 dir=$ROOT/build-$1/sanitizer-canary
  rm -rf "$dir"
  mkdir -p "$dir"
  local -A programs=()
  if [[ $name == asan ]]; then
    programs[heap-overflow]='int main(int argc, char**) { int* p = new int[argc]; int v = p[argc]; delete[] p; return v; }'
    programs[signed-overflow]='#include <climits>
int main(int argc, char**) { int x = INT_MAX; x += argc; return x == 0; }'
  else
    programs[data-race]='#include <thread>
int counter = 0;
int main() { auto bump = [] { for (int i = 0; i < 100000; ++i) ++counter; };
  std::thread a(bump), b(bump); a.join(); b.join(); return counter == 0; }'
  fi
  local sanitize=address,undefined
  [[ $name == tsan ]] && sanitize=thread
  local bug
  for bug in "${!programs[@]}"; do
    mkdir -p "$dir/$bug"
    c++ -std=c++20 -O1 -g -pthread -fsanitize=$sanitize -fno-sanitize-recover=all -x c++ - -o "$dir/$bug/canary" \
      <<<"${programs[$bug]}"
    local rc=0
    ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$dir/$bug/report" UBSAN_OPTIONS="$UBSAN_OPTIONS:log_path=$dir/$bug/report" \
      TSAN_OPTIONS="$TSAN_OPTIONS:log_path=$dir/$bug/report" "$dir/$bug/canary" 2>"$dir/$bug/stderr" || rc=$?
    if ((rc == 0)); then
      echo "the $name canary ($bug) exited 0: sanitizer reports do not stop the process" >&2
      return 1
    fi
    if compgen -G "$dir/$bug/report*" >/dev/null; then
      echo "$name canary ($bug): failed with a report in its log_path, as it must"
    elif [[ $bug == signed-overflow ]] && grep -q "runtime error:" "$dir/$bug/stderr"; then
      echo "$name canary ($bug): failed with the report on stderr (GCC's UBSan beside ASan)"
    else
      echo "the $name canary ($bug) left no report where it is checked" >&2
      cat "$dir/$bug/stderr" >&2
      return 1
    fi
  done
}

# The sanitizers of each sanitizer stage.
declare -A SANITIZE=([asan]=address,undefined [tsan]=thread)

# build_for STAGE: the build that STAGE tests (also what the background job builds ahead).
# Sanitizer stages: build-STAGE with -fsanitize=..., its runtime options exported before the build
# (test discovery runs the instrumented test executables), reports to build-STAGE/sanitizer-reports.
build_for() {
  case "$1" in
    unit|normal) scripts/build.sh RelWithDebInfo build ;;
    asan|tsan)
      sanitizer_env "$ROOT/build-$1/sanitizer-reports"
      CMAKE_ARGS="${CMAKE_ARGS:-} -DREGISTRAR_SANITIZE=${SANITIZE[$1]} -DREGISTRAR_BUILD_BENCH=OFF" \
        scripts/build.sh RelWithDebInfo "build-$1" ;;
    fuzz) bash scripts/fuzz.sh --build-only ;;
  esac
}

# A sanitizer stage's reports directory, emptied by whoever builds for the stage first (its
# background build, or the stage itself).
fresh_reports() {
  rm -rf "$ROOT/build-$1/sanitizer-reports"
  mkdir -p "$ROOT/build-$1/sanitizer-reports"
}

# ---- builds ahead (see the top of this file) ----
PREBUILD=${PREBUILD:-1}
PREBUILT=" "        # the stages the background job builds for
PREBUILD_PID=
PREBUILD_DIR=$ROOT/.test-logs/prebuild
start_prebuild() {
  ((PREBUILD)) || return 0
  # The sanitizer and fuzz stages after the first (each has a build directory of its own; unit
  # and normal share build/, which the foreground builds).
  local later=() s
  for s in "${stages[@]:1}"; do
    case "$s" in asan|tsan|fuzz) [[ " ${later[*]} " == *" $s "* || $s == "${stages[0]}" ]] || later+=("$s") ;; esac
  done
  ((${#later[@]})) || return 0
  PREBUILT=" ${later[*]} "
  rm -rf "$PREBUILD_DIR"
  mkdir -p "$PREBUILD_DIR"
  for s in "${later[@]}"; do
    case "$s" in asan|tsan) fresh_reports "$s" ;; esac
  done
  # A process group of its own (set -m), so that the exit trap stops every compiler it started.
  set -m
  (
    renice -n 19 "$BASHPID" >/dev/null
    for s in "${later[@]}"; do
      start=$SECONDS
      ( build_for "$s" ) >"$ROOT/.test-logs/prebuild-$s.log" 2>&1 && rc=0 || rc=$?
      echo "$rc $((SECONDS - start))" >"$PREBUILD_DIR/$s"
    done
  ) &
  PREBUILD_PID=$!
  set +m
}
# Stops the background builds (at exit). The job has mostly ended by then: kill may fail, which
# must not end the exit trap (set -e) before the summary.
stop_prebuild() {
  if [[ -n $PREBUILD_PID ]]; then kill -- "-$PREBUILD_PID" 2>/dev/null || true; fi
}
# Waits until the background job has built for stage $1 (if it builds for it).
wait_prebuild() {
  [[ $PREBUILT == *" $1 "* ]] || return 0
  local waited=$SECONDS
  echo "waiting for the background build of stage $1 (.test-logs/prebuild-$1.log)"
  while [[ ! -f $PREBUILD_DIR/$1 ]] && kill -0 "$PREBUILD_PID" 2>/dev/null; do sleep 2; done
  local rc=gone took=?
  [[ -f $PREBUILD_DIR/$1 ]] && read -r rc took <"$PREBUILD_DIR/$1"
  echo "background build of stage $1: exit $rc after ${took}s; waited $((SECONDS - waited))s for it"
}

# stage_sanitized NAME: build into build-NAME with the sanitizers of NAME, then run ctest (unit +
# contract) and the black-box suite against that binary; a sanitizer report fails it.
stage_sanitized() {
  local name=$1 dir=build-$1
  local reports=$ROOT/$dir/sanitizer-reports
  [[ $PREBUILT == *" $name "* ]] || fresh_reports "$name"
  sanitizer_env "$reports"
  check_canaries "$name"
  local status=0
  build_for "$name" || status=$?
  if ((status == 0)); then
    ctest --test-dir "$dir" --output-on-failure -j"$JOBS" || status=$?
    local files=() f
    for f in tests/blackbox/*.test.js; do
      [[ " $SANITIZER_BLACKBOX_SKIP " == *" $(basename "$f") "* ]] && { echo "black-box: $f runs in the normal stage only"; continue; }
      files+=("$f")
    done
    REGISTRAR_TEST_SANITIZER=$name REGISTRAR_TEST_SANITIZER_REPORTS=$reports REGISTRAR_BIN="$ROOT/$dir/registrar" blackbox "${files[@]}" || status=$?
  fi
  check_reports "$reports" || status=1
  return "$status"
}

stage_fuzz() {
  bash scripts/fuzz.sh --seconds 15
}

scripts/install-deps.sh
trap 'stop_prebuild; print_summary' EXIT
start_prebuild
for stage in "${stages[@]}"; do
  case "$stage" in
    unit) run_stage unit stage_unit ;;
    normal) run_stage normal stage_normal ;;
    asan|tsan) run_stage "$stage" stage_sanitized "$stage" ;;
    fuzz) run_stage fuzz stage_fuzz ;;
  esac
done
exit "$failed"
