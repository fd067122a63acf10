# Sourced by the scripts/bench-*.sh scripts: starts a real redis-server and ringkv side by side on free loopback
# ports and stops them (and a running benchmark) on exit.
#
# The caller sets `root` (the crate directory) and runs `start_servers` after `set -euo pipefail`. Afterwards:
#   $work         a temporary directory, removed on exit (server logs: $work/<port>.log)
#   $redis_port   port of redis-server --save '' --appendonly no
#   $ringkv_port  port of ringkv (RINGKV_BIN, else target/release/ringkv built here; RINGKV_ARGS are passed on)
# `run_bg CMD...` runs a benchmark in the background and waits for it, so that a signal interrupts `wait` at once and
# the EXIT trap stops everything; it returns the command's status.
# shellcheck shell=bash

# Fails unless every named tool is on PATH.
require_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || {
            echo "$tool not found (Debian: apt-get install redis-server redis-tools)" >&2
            exit 1
        }
    done
}

server_pids=()
bg_pid=
work=$(mktemp -d)

stop_all() {
    if [[ -n $bg_pid ]]; then kill "$bg_pid" 2>/dev/null || true; fi
    local pid
    for pid in "${server_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${server_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# A loopback port nobody listens on (a connect to it is refused).
free_port() {
    local port
    while :; do
        # Below Linux's ephemeral range (32768-60999), where the benchmark's own client sockets could hold it.
        port=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
}

# Waits until the server on port $1 answers PING.
wait_ready() {
    local i
    for i in $(seq 100); do
        [[ $(redis-cli -p "$1" ping 2>/dev/null) == PONG ]] && return 0
        sleep 0.1
    done
    echo "server on port $1 did not start; its log:" >&2
    cat "$work/$1.log" >&2
    exit 1
}

run_bg() {
    "$@" &
    bg_pid=$!
    local status=0
    wait "$bg_pid" || status=$?
    bg_pid=
    return "$status"
}

# The median of the numbers in $1 (separated by spaces), or n/a unless there are $2 of them (a run failed).
median() {
    tr ' ' '\n' <<<"$1" | { grep -E '^[0-9.]+$' || true; } | sort -g |
        awk -v want="$2" '{ v[NR] = $1 } END {
            if (NR != want) print "n/a"
            else if (NR % 2) print v[(NR + 1) / 2]
            else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2
        }'
}

start_servers() {
    require_tools redis-server redis-cli
    if [[ -z ${RINGKV_BIN:-} ]]; then
        echo "building ringkv (release)..." >&2
        (cd "$root" && cargo build --release --quiet)
        RINGKV_BIN=${CARGO_TARGET_DIR:-$root/target}/release/ringkv
    fi

    redis_port=$(free_port)
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
        >"$work/$redis_port.log" 2>&1 &
    server_pids+=($!)
    wait_ready "$redis_port"

    ringkv_port=$(free_port)
    # shellcheck disable=SC2086 # RINGKV_ARGS is a list of arguments.
    "$RINGKV_BIN" --port "$ringkv_port" --bind 127.0.0.1 --loglevel warning ${RINGKV_ARGS:-} \
        >"$work/$ringkv_port.log" 2>&1 &
    server_pids+=($!)
    wait_ready "$ringkv_port"
}
