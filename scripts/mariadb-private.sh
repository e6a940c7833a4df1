#!/usr/bin/env bash
# A private MariaDB server for tests and benchmarks: its own data directory, port and Unix socket,
# nothing shared with a system-wide server. The shell twin of tests/support/mariadb_server.hpp.
#
#   scripts/mariadb-private.sh start DIR [PORT]   install DIR on first use, start the server on
#                                                 127.0.0.1:PORT (default: the port used last time
#                                                 in DIR, else a free one), wait until it accepts
#                                                 connections, print the connection URL:
#                                                 mysql://registrar:PASSWORD@127.0.0.1:PORT/registrar
#   scripts/mariadb-private.sh stop DIR           graceful shutdown (SIGTERM, SIGKILL after 30 s); data kept
#   scripts/mariadb-private.sh kill DIR           crash it (SIGKILL); data kept, `start` recovers it
#   scripts/mariadb-private.sh purge DIR          stop it and delete DIR
#   scripts/mariadb-private.sh url DIR            print the URL again
#
# The database `registrar` and the user `registrar` (all privileges; a random password kept in
# DIR/password) are created on first start. Root has no password and is reachable only through
# DIR/mysqld.sock. Needs the Debian packages mariadb-server and mariadb-client.
set -euo pipefail

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "mariadb-private: $*" >&2; exit 1; }

cmd=${1:-}; dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || usage
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
sock="$dir/mysqld.sock"
pidfile="$dir/mysqld.pid"
(( ${#sock} < 100 )) || die "DIR is too long for a Unix socket path: $sock"

find_bin() {
  local name
  for name in "$@"; do
    command -v "$name" 2>/dev/null && return 0
    for d in /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin; do
      [[ -x "$d/$name" ]] && { echo "$d/$name"; return 0; }
    done
  done
  return 1
}

# Alive and not a zombie (the server outlives this script; whoever adopts it reaps it later).
alive() {
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ -n "$state" && "$state" != Z* ]]
}

server_pid() {
  [[ -s "$pidfile" ]] || return 1
  local pid; pid=$(<"$pidfile")
  alive "$pid" || return 1
  echo "$pid"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A random free port below the kernel's ephemeral range (ip_local_port_range): a port inside it can
# be taken, between our probe and the server's bind, as the local end of any outgoing connection
# (the black-box tests open thousands), and mariadbd then fails with "Address already in use".
pick_port() {
  local p lo=32768
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  ((lo > 12000)) || lo=32768
  for _ in $(seq 1 50); do
    p=$(( 10000 + RANDOM % (lo - 10000) ))
    port_free "$p" && { echo "$p"; return 0; }
  done
  die "no free port found"
}

root_sql() { mariadb --no-defaults --protocol=socket --socket="$sock" -uroot -N -B -e "$1"; }

url() {
  [[ -s "$dir/password" && -s "$dir/port" ]] || die "$dir has never been started"
  echo "mysql://registrar:$(<"$dir/password")@127.0.0.1:$(<"$dir/port")/registrar"
}

# Same sizes as the C++ harness: a small buffer pool and redo log; the server starts in well under
# a second once installed.
common_args() {
  local a=(--datadir="$dir/data" --tmpdir="$dir/tmp" --innodb-buffer-pool-size=32M
           --innodb-log-file-size=16M --innodb-log-buffer-size=4M)
  [[ $(id -u) -eq 0 ]] && a+=(--user=root)
  printf '%s\n' "${a[@]}"
}

stop_server() {
  local signal=$1 grace=$2 pid
  pid=$(server_pid) || return 0
  kill -CONT "$pid" 2>/dev/null || true
  kill "-$signal" "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((grace * 20))); do
    alive "$pid" || { rm -f "$pidfile"; return 0; }
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  while alive "$pid"; do sleep 0.05; done
  rm -f "$pidfile"
}

case "$cmd" in
  start)
    mariadbd=$(find_bin mariadbd mysqld) || die "mariadbd not found (apt-get install mariadb-server)"
    install_db=$(find_bin mariadb-install-db mysql_install_db) || die "mariadb-install-db not found"
    command -v mariadb >/dev/null || die "mariadb client not found (apt-get install mariadb-client)"
    if pid=$(server_pid); then url; exit 0; fi  # already running
    port=${3:-}
    [[ -z "$port" && -s "$dir/port" ]] && port=$(<"$dir/port")
    [[ -z "$port" || "$port" == 0 ]] && port=$(pick_port)
    port_free "$port" || die "port $port is in use"
    mkdir -p "$dir/tmp"
    mapfile -t args < <(common_args)
    if [[ ! -d "$dir/data/mysql" ]]; then
      rm -rf "$dir/data"
      "$install_db" --no-defaults "${args[@]}" --auth-root-authentication-method=normal \
        --skip-test-db --skip-name-resolve >"$dir/install.log" 2>&1 \
        || { cat "$dir/install.log" >&2; die "mariadb-install-db failed"; }
    fi
    rm -f "$sock"
    setsid "$mariadbd" --no-defaults "${args[@]}" --port="$port" --socket="$sock" --pid-file="$pidfile" \
      --log-error="$dir/error.log" --bind-address=127.0.0.1 --skip-networking=0 --skip-log-bin \
      --skip-name-resolve --innodb-flush-log-at-trx-commit=2 --innodb-doublewrite=0 \
      --performance-schema=OFF --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
      --max-connections=500 >>"$dir/mariadbd.out" 2>&1 </dev/null &
    child=$!
    # Ready when a connection succeeds (polled at a short interval, bounded; no fixed delay).
    for i in $(seq 1 1200); do
      if mariadb-admin --no-defaults --protocol=socket --socket="$sock" -uroot ping >/dev/null 2>&1; then break; fi
      alive "$child" || { tail -n 30 "$dir/error.log" >&2; die "mariadbd exited during startup"; }
      (( i == 1200 )) && { stop_server KILL 1; die "mariadbd did not accept connections within 60 s"; }
      sleep 0.05
    done
    echo "$port" >"$dir/port"
    if [[ ! -s "$dir/password" ]]; then
      password=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
      root_sql "CREATE USER IF NOT EXISTS 'registrar'@'%' IDENTIFIED BY '$password';
                GRANT ALL PRIVILEGES ON *.* TO 'registrar'@'%';
                CREATE DATABASE IF NOT EXISTS registrar CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
      (umask 077; echo "$password" >"$dir/password")
    fi
    url
    ;;
  stop) stop_server TERM 30 ;;
  kill) stop_server KILL 1 ;;
  purge) stop_server TERM 30; rm -rf "$dir" ;;
  url) url ;;
  *) usage ;;
esac
