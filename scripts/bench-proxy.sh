#!/usr/bin/env bash
# Benchmarks the ringkv proxy against twemproxy (nutcracker) over the same three redis-server backends, and both
# against one redis-server directly, with redis-benchmark on loopback. Prints requests per second and the ratios
# ringkv-proxy/twemproxy and ringkv-proxy/direct. Runs are interleaved per test so drifting load affects all alike.
# It also prints each proxy's own CPU time per request (user + system, from /proc), which other load on the machine
# hardly changes: on shared cores the cpu ratio is the steadier comparison of the two proxies. And the CPU time the
# three backends spent per request behind each proxy: a proxy that sends fewer, larger batches saves them work.
#
# Needs redis-server, redis-benchmark, nutcracker (Debian: redis-server redis-tools nutcracker).
# Environment (all optional):
#   N_P1=50000 N_P16=200000   requests per run without / with pipelining
#   CLIENTS=50 KEYSPACE=100000 TESTS="set get" DEPTHS="1 16"
#   ROUNDS=3                  rounds of each test (direct, twemproxy, ringkv proxy, the order rotating every round);
#                             the table shows medians and every round's ringkv-proxy/twemproxy ratio
#   RINGKV_BIN=path           use this binary instead of building target/release/ringkv
#   PROXY_ARGS="--threads 1"  extra options for ringkv proxy
#   CLIENT_CPU=0              run redis-benchmark on this CPU alone and every server and proxy on the others (taskset),
#                             as a client on another machine would be. Unpinned, the kernel moves the five processes
#                             over two cores, and whether a proxy runs beside the client or beside the backends
#                             decides how many requests share a backend read (1 to 15), so requests/s jump between two
#                             levels for either proxy; pinned, runs repeat. The direct redis then has a core to itself
#                             while a proxy shares one with its three backends, so vs-direct means less.
set -euo pipefail

N_P1=${N_P1:-50000}
N_P16=${N_P16:-200000}
CLIENTS=${CLIENTS:-50}
KEYSPACE=${KEYSPACE:-100000}
TESTS=${TESTS:-"set get"}
DEPTHS=${DEPTHS:-"1 16"}
ROUNDS=${ROUNDS:-3}

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib-servers.sh
source "$root/scripts/lib-servers.sh"
require_tools redis-benchmark nutcracker
start_servers # one redis-server ($redis_port, the direct baseline) and a ringkv we do not use here

backends=()
backend_pids=()
for _ in 1 2 3; do
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no >"$work/$port.log" 2>&1 &
    server_pids+=($!)
    backend_pids+=($!)
    wait_ready "$port"
    backends+=("$port")
done

twem_port=$(free_port)
{
    echo "pool:"
    echo "  listen: 127.0.0.1:$twem_port"
    echo "  hash: fnv1a_64"
    echo "  distribution: ketama"
    echo "  redis: true"
    echo "  preconnect: true"
    echo "  servers:"
    for p in "${backends[@]}"; do echo "   - 127.0.0.1:$p:1"; done
} >"$work/nutcracker.yml"
nutcracker -c "$work/nutcracker.yml" -s "$(free_port)" >"$work/$twem_port.log" 2>&1 &
server_pids+=($!)
twem_pid=$!
wait_ready "$twem_port"

proxy_port=$(free_port)
# shellcheck disable=SC2206 # PROXY_ARGS is a list of arguments.
proxy_args=(proxy --port "$proxy_port" --distribution ketama --hash fnv1a_64 --loglevel warning ${PROXY_ARGS:-})
for p in "${backends[@]}"; do proxy_args+=(--backend "127.0.0.1:$p"); done
"$RINGKV_BIN" "${proxy_args[@]}" >"$work/$proxy_port.log" 2>&1 &
server_pids+=($!)
proxy_pid=$!
wait_ready "$proxy_port"

client_cpu=()
if [[ -n ${CLIENT_CPU:-} ]]; then
    require_tools taskset
    others=$(awk -v c="$CLIENT_CPU" '/^processor/ && $3 != c { printf "%s%s", sep, $3; sep = "," }' /proc/cpuinfo)
    [[ -n $others ]] || { echo "CLIENT_CPU needs a second CPU for the servers" >&2; exit 1; }
    for pid in "${server_pids[@]}"; do
        taskset -a -p -c "$others" "$pid" >/dev/null
    done
    client_cpu=(taskset -c "$CLIENT_CPU")
    echo "redis-benchmark on CPU $CLIENT_CPU, servers and proxies on CPU $others"
fi

# CPU time (user + system, in clock ticks) processes $@ have used so far.
ticks() { for pid; do cat "/proc/$pid/stat"; done | awk '{ t += $14 + $15 } END { print t }'; }
tick_us=$((1000000 / $(getconf CLK_TCK)))

# Runs one redis-benchmark and prints its requests per second (or n/a); with a pid $5 (a proxy), also that process's
# CPU microseconds per request and the backends'.
rps() {
    local port=$1 test=$2 depth=$3 n=$4 pid=${5:-} before backends_before
    [[ -n $pid ]] && before=$(ticks "$pid") && backends_before=$(ticks "${backend_pids[@]}")
    if run_bg timeout 600 "${client_cpu[@]}" redis-benchmark -h 127.0.0.1 -p "$port" -t "$test" -n "$n" -c "$CLIENTS" -P "$depth" \
        -r "$KEYSPACE" --csv >"$work/out.csv" 2>>"$work/bench.err"; then
        awk -F'"' 'NR == 2 { printf "%s", $4 }' "$work/out.csv"
    else
        printf n/a
    fi
    [[ -n $pid ]] && awk -v t=$(($(ticks "$pid") - before)) -v b=$(($(ticks "${backend_pids[@]}") - backends_before)) \
        -v us="$tick_us" -v n="$n" 'BEGIN { printf " %.2f %.2f", t * us / n, b * us / n }'
    echo
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo "redis-server $(redis-server --version | awk '{print $3}') x3 behind each proxy; -c $CLIENTS -r $KEYSPACE"
echo "requests/s, and each proxy's CPU us/request (cpu-vs-twem < 1: ringkv proxy spends less CPU per request)"
echo "and the three backends' CPU us/request behind it (twem-be, ours-be)"
((ROUNDS > 1)) && echo "medians of $ROUNDS rounds; per-round vs-twem ratios on the right"
printf '%-5s %5s %11s %11s %11s %8s %9s %9s %8s %11s %8s %8s  %s\n' test depth direct twemproxy ringkv-proxy \
    vs-twem vs-direct twem-cpu ours-cpu cpu-vs-twem twem-be ours-be rounds
for depth in $DEPTHS; do
    n=$N_P1
    [[ $depth != 1 ]] && n=$N_P16
    for test in $TESTS; do
        declare -A got=()
        rounds=""
        for ((round = 0; round < ROUNDS; round++)); do
            targets=(direct twem ours)
            for ((i = 0; i < 3; i++)); do
                case ${targets[(round + i) % 3]} in
                direct) got[direct]+="$(rps "$redis_port" "$test" "$depth" "$n") " ;;
                twem)
                    read -r twem twem_cpu twem_be <<<"$(rps "$twem_port" "$test" "$depth" "$n" "$twem_pid")"
                    got[twem]+="$twem "
                    got[twem_cpu]+="$twem_cpu "
                    got[twem_be]+="$twem_be "
                    ;;
                ours)
                    read -r ours ours_cpu ours_be <<<"$(rps "$proxy_port" "$test" "$depth" "$n" "$proxy_pid")"
                    got[ours]+="$ours "
                    got[ours_cpu]+="$ours_cpu "
                    got[ours_be]+="$ours_be "
                    ;;
                esac
            done
            rounds+="$(ratio "$ours" "$twem") "
        done
        direct=$(median "${got[direct]}" "$ROUNDS")
        twem=$(median "${got[twem]}" "$ROUNDS") twem_cpu=$(median "${got[twem_cpu]}" "$ROUNDS")
        ours=$(median "${got[ours]}" "$ROUNDS") ours_cpu=$(median "${got[ours_cpu]}" "$ROUNDS")
        twem_be=$(median "${got[twem_be]}" "$ROUNDS") ours_be=$(median "${got[ours_be]}" "$ROUNDS")
        ((ROUNDS > 1)) || rounds=""
        printf '%-5s %5s %11s %11s %11s %8s %9s %9s %8s %11s %8s %8s  %s\n' "$test" "P$depth" "$direct" "$twem" \
            "$ours" "$(ratio "$ours" "$twem")" "$(ratio "$ours" "$direct")" "$twem_cpu" "$ours_cpu" \
            "$(ratio "$ours_cpu" "$twem_cpu")" "$twem_be" "$ours_be" "$rounds"
    done
done
