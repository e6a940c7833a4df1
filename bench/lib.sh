# Shared helpers of the benchmark scripts (sourced; set BENCH_NAME first for messages).

log() { printf '\n== %s\n' "$*" >&2; }
die() { printf '%s: %s\n' "${BENCH_NAME:-bench}" "$*" >&2; exit 1; }

stop_pid() { # pid: SIGTERM, up to 15 s, then SIGKILL
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

free_port() { # a free loopback port below 45536 (a private broker uses PORT+20000 for distribution)
  local p
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    p=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
    ((p < 45536)) && { echo "$p"; return; }
  done
  die "no free port below 45536"
}

wait_until() { # seconds description command...: polls the command every 0.1 s
  local secs=$1 what=$2 i; shift 2
  for ((i = 0; i < secs * 10; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "timed out after ${secs}s waiting for $what"
}

# Share of the machine's CPU time (all cores) in use over one second, in percent.
cpu_busy_pct() {
  local u n s i w q sq st t1 i1
  read -r _ u n s i w q sq st _ </proc/stat
  t1=$((u + n + s + i + w + q + sq + st)) i1=$((i + w))
  sleep 1
  read -r _ u n s i w q sq st _ </proc/stat
  echo $((100 * ((u + n + s + i + w + q + sq + st - t1) - (i + w - i1)) / (u + n + s + i + w + q + sq + st - t1)))
}

# Waits (up to QUIET_TIMEOUT seconds) until at most QUIET_MAX_BUSY % of the CPU is in use: other
# builds or tests running next to a benchmark skew every figure. Leaves the last reading in
# QUIET_BUSY for the report.
QUIET_BUSY=0
wait_quiet() { # phase name
  local end=$((SECONDS + QUIET_TIMEOUT))
  QUIET_BUSY=$(cpu_busy_pct)
  while ((QUIET_BUSY > QUIET_MAX_BUSY && SECONDS < end)); do
    echo "${BENCH_NAME:-bench}: $1: the machine is busy (${QUIET_BUSY}% CPU in use); waiting for it to settle" >&2
    sleep 4
    QUIET_BUSY=$(cpu_busy_pct)
  done
  ((QUIET_BUSY > QUIET_MAX_BUSY)) && echo "${BENCH_NAME:-bench}: warning: measuring $1 on a busy machine (${QUIET_BUSY}% CPU in use)" >&2
  return 0
}

pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.0f %%", 100 * a / b }'; }
mark() { awk -v ok="$1" 'BEGIN { print (ok ? "✅" : "❌") }'; }
