#!/usr/bin/env bash
# Benchmarks ringkv against a real redis-server with redis-benchmark, on loopback, and prints requests per second
# for both and the ratio ringkv/redis. Runs are interleaved (each test on one server, then at once on the other, the
# order swapped every test) so drifting machine load affects both alike.
#
# Needs redis-server and redis-benchmark (Debian: redis-server, redis-tools).
# Environment (all optional):
#   N_P1=100000 N_P16=200000   requests per run without / with pipelining
#   CLIENTS=50                 parallel connections (-c)
#   KEYSPACE=100000            random key range (-r)
#   TESTS="set get ..."        redis-benchmark test names (-t), one run per test; also "eval" and "evalsha": the script
#                              `return redis.call('SET', KEYS[1], ARGV[1])` with `1 key:__rand_int__ v`
#   DEPTHS="1 16"              pipeline depths (-P)
#   ROUNDS=3                   runs of each test per server, interleaved; the table shows medians and each round's
#                              ratio
#   RINGKV_BIN=path            use this binary instead of building target/release/ringkv
#   RINGKV_ARGS="--threads 2"  extra ringkv arguments
# A test whose run fails on a server (an unimplemented command, a crash) shows 'n/a' for that server.
set -euo pipefail

N_P1=${N_P1:-100000}
N_P16=${N_P16:-200000}
CLIENTS=${CLIENTS:-50}
KEYSPACE=${KEYSPACE:-100000}
TESTS=${TESTS:-"set get incr mset lpush rpush lpop rpop"}
DEPTHS=${DEPTHS:-"1 16"}
ROUNDS=${ROUNDS:-3}

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib-servers.sh
. "$root/scripts/lib-servers.sh"
require_tools redis-benchmark
start_servers

# The scripted tests: what redis-benchmark sends instead of a -t test.
script="return redis.call('SET', KEYS[1], ARGV[1])"
script_sha=$(printf '%s' "$script" | sha1sum | cut -d' ' -f1)
for port in "$redis_port" "$ringkv_port"; do
    redis-cli -p "$port" SCRIPT LOAD "$script" >/dev/null
done

# Runs one redis-benchmark and sets $result to its requests per second, or 'n/a' when the run fails.
run_bench() {
    local port=$1 test=$2 depth=$3 n=$4
    local what=(-t "$test")
    case $test in
    eval) what=(EVAL "$script" 1 'key:__rand_int__' v) ;;
    evalsha) what=(EVALSHA "$script_sha" 1 'key:__rand_int__' v) ;;
    esac
    result=n/a
    if run_bg timeout 600 redis-benchmark -h 127.0.0.1 -p "$port" -n "$n" -c "$CLIENTS" -P "$depth" \
        -r "$KEYSPACE" --csv "${what[@]}" >"$work/out.csv" 2>>"$work/bench.err"; then
        # Last CSV line (LRANGE tests first fill the list with an LPUSH run of their own), second field:
        # "SET","123456.79",...
        result=$(awk -F'"' 'NR > 1 { last = $4 } END { print last }' "$work/out.csv")
        [[ -n $result ]] || result=n/a
    fi
}

echo "redis $(redis-server --version | awk '{print $3}') on :$redis_port, ringkv on :$ringkv_port;" \
    "-c $CLIENTS -r $KEYSPACE, -n $N_P1 (P1) / $N_P16 (P16)"
((ROUNDS > 1)) && echo "medians of $ROUNDS interleaved rounds; per-round ratios on the right"
printf '%-8s %5s %12s %12s %8s  %s\n' test depth redis ringkv ratio rounds
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
swap=0
for depth in $DEPTHS; do
    n=$N_P1
    ((depth > 1)) && n=$N_P16
    for test in $TESTS; do
        redis_all="" ringkv_all="" rounds=""
        for ((round = 0; round < ROUNDS; round++)); do
            if ((swap)); then
                run_bench "$ringkv_port" "$test" "$depth" "$n"
                ringkv=$result
                run_bench "$redis_port" "$test" "$depth" "$n"
                redis=$result
            else
                run_bench "$redis_port" "$test" "$depth" "$n"
                redis=$result
                run_bench "$ringkv_port" "$test" "$depth" "$n"
                ringkv=$result
            fi
            swap=$((1 - swap))
            redis_all+="$redis " ringkv_all+="$ringkv " rounds+="$(ratio "$ringkv" "$redis") "
        done
        redis=$(median "$redis_all" "$ROUNDS")
        ringkv=$(median "$ringkv_all" "$ROUNDS")
        ((ROUNDS > 1)) || rounds=""
        printf '%-8s %5s %12s %12s %8s  %s\n' "$test" "P$depth" "$redis" "$ringkv" "$(ratio "$ringkv" "$redis")" "$rounds"
    done
done

if [[ -s $work/bench.err ]] && grep -q 'Error from server' "$work/bench.err"; then
    echo "server errors seen (one line per kind):" >&2
    grep 'Error from server' "$work/bench.err" | sed 's/, with args beginning with.*//' | sort -u >&2
fi
