#!/usr/bin/env bash
# A private RabbitMQ node for tests and benchmarks, fully contained in one directory:
#
#   scripts/rabbitmq-private.sh start DIR PORT   # starts it, returns once AMQP answers on 127.0.0.1:PORT
#   scripts/rabbitmq-private.sh stop  DIR [PORT] # graceful stop (SIGTERM), SIGKILL after 30 s
#   scripts/rabbitmq-private.sh kill  DIR [PORT] # SIGKILL (a crash)
#
# It uses Debian's rabbitmq-server package but none of the system node's state: its own node name
# (registrar-PORT@localhost), AMQP port, distribution port (PORT+20000 or PORT-20000; override with
# RABBITMQ_DIST_PORT), Mnesia/log/config/plugins paths and HOME (so its own Erlang cookie), all
# under DIR. `start` on a DIR that was stopped restarts the same node with its durable queues and
# persistent messages (outage tests). The AMQP listener binds 127.0.0.1 only; guest/guest may log
# in over it (loopback_users = none). epmd is the machine's shared one (started on demand by Erlang,
# bound to 127.0.0.1 when this starts it); node names are unique per port, so nodes do not clash.
# As root the node runs as the `rabbitmq` user (DIR is chowned to it), as RabbitMQ expects.
# The C++ twin of this script is tests/support/rabbitmq_server.hpp.
set -euo pipefail

usage() { echo "usage: $0 start|stop|kill DIR [PORT]" >&2; exit 2; }
[[ $# -ge 2 ]] || usage
cmd=$1
dir=$2
port=${3:-}
RMQ_BIN=${RABBITMQ_SERVER_BIN:-/usr/lib/rabbitmq/bin/rabbitmq-server}
START_TIMEOUT=${RABBITMQ_START_TIMEOUT:-60}

# True once the broker answers the AMQP 0-9-1 protocol header with a frame (Connection.Start
# begins with frame type 1): the listener is up, which RabbitMQ opens last in its boot.
amqp_answers() {
  local p=$1 byte=
  { exec 3<>"/dev/tcp/127.0.0.1/$p"; } 2>/dev/null || return 1
  printf 'AMQP\x00\x00\x09\x01' >&3 || { exec 3<&- 3>&-; return 1; }
  IFS= read -r -t 2 -N 1 byte <&3 2>/dev/null || true
  exec 3<&- 3>&-
  [[ $byte == $'\x01' ]]
}

server_pid() { [[ -f "$dir/server.pid" ]] && cat "$dir/server.pid"; }
# True while a process of the node's process group (the wrapper's pid) is alive; zombies do not
# count (the VM is reparented when the wrapper dies first, and not every init reaps promptly).
group_alive() { ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^[ZX]/ { found = 1 } END { exit !found }'; }
alive() { local pid; pid=$(server_pid) && [[ -n $pid ]] && group_alive "$pid"; }

start() {
  [[ -n $port ]] || usage
  if alive; then echo "rabbitmq-private: already running in $dir" >&2; exit 1; fi
  mkdir -p "$dir"/{mnesia,log,home}
  dir=$(cd "$dir" && pwd)
  local dist=${RABBITMQ_DIST_PORT:-$((port < 45536 ? port + 20000 : port - 20000))}
  cat >"$dir/rabbitmq.conf" <<EOF
loopback_users = none
listeners.tcp.default = 127.0.0.1:$port
log.console = false
log.file.level = info
disk_free_limit.absolute = 10MB
EOF
  : >"$dir/enabled_plugins"
  echo "$port" >"$dir/port"
  local run_as=()
  if [[ $(id -u) -eq 0 ]]; then
    chown -R rabbitmq:rabbitmq "$dir"
    run_as=(setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups)
  fi
  local t0=$SECONDS
  # setsid: its own process group, so `kill` can reach the Erlang VM behind the wrapper script.
  (
    cd "$dir"
    exec setsid "${run_as[@]}" env -i \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      HOME="$dir/home" LANG=C.UTF-8 \
      RABBITMQ_NODENAME="registrar-$port@localhost" \
      RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$port" RABBITMQ_DIST_PORT="$dist" \
      RABBITMQ_MNESIA_BASE="$dir/mnesia" RABBITMQ_LOG_BASE="$dir/log" \
      RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config" \
      RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
      RABBITMQ_PID_FILE="$dir/beam.pid" ERL_EPMD_ADDRESS=127.0.0.1 \
      "$RMQ_BIN" >>"$dir/log/console.log" 2>&1 </dev/null
  ) &
  echo $! >"$dir/server.pid"
  while ! amqp_answers "$port"; do
    if ! alive; then
      echo "rabbitmq-private: the node exited during start; see $dir/log" >&2
      tail -n 20 "$dir/log/console.log" >&2 || true
      exit 1
    fi
    if ((SECONDS - t0 > START_TIMEOUT)); then
      echo "rabbitmq-private: no AMQP answer on 127.0.0.1:$port after ${START_TIMEOUT}s; see $dir/log" >&2
      stop_node TERM
      exit 1
    fi
    sleep 0.1
  done
  echo "rabbitmq-private: node registrar-$port@localhost up on 127.0.0.1:$port in $((SECONDS - t0))s (dir $dir)"
}

# Sends $1 to the node (TERM: the wrapper stops the VM cleanly; KILL: the whole process group)
# and waits until it is gone.
stop_node() {
  local sig=$1 pid
  pid=$(server_pid) || return 0
  [[ -n $pid ]] || return 0
  if [[ $sig == KILL ]]; then
    kill -KILL -- "-$pid" 2>/dev/null || true
  else
    kill -TERM "$pid" 2>/dev/null || true
  fi
  local t0=$SECONDS
  while group_alive "$pid"; do
    if ((SECONDS - t0 > 30)); then kill -KILL -- "-$pid" 2>/dev/null || true; fi
    sleep 0.1
  done
  rm -f "$dir/server.pid"
}

case $cmd in
  start) start ;;
  stop) stop_node TERM ;;
  kill) stop_node KILL ;;
  *) usage ;;
esac
