#!/usr/bin/env bash
# Queue and lock benchmarks (benches/queue_lock.rs) against a real redis-server and ringkv on loopback, printed side
# by side with ratios ringkv/redis. Runs are interleaved (each test on one server, then at once on the other, the
# order swapped every test) so drifting machine load affects both alike.
#
# queue: PRODUCERS clients LPUSH MESSAGES messages, CONSUMERS clients BRPOP them; msgs/s, end-to-end latency p50/p99
#        (µs; for latency a ratio above 1 means ringkv is slower) and the exactly-once check.
# streams: PRODUCERS clients XADD MESSAGES entries to one stream, a group of CONSUMERS clients XREADGROUP BLOCK
#        (COUNT STREAM_BATCH) and XACK each batch; msgs/s, latency p50/p99 and the exactly-once check.
# lock:  CLIENTS clients contend for one SET NX PX lock for LOCK_SECONDS, once per release method in RELEASES;
#        acquisitions/s, mutual-exclusion violations, locks lost (expired while held) and WATCH release retries.
# tx:    TX_CLIENTS clients loop on MULTI + 5 writes (SET, INCR, LPUSH, LTRIM, HSET on random keys) + EXEC sent as one
#        batch, for TX_SECONDS; transactions/s and EXEC replies that were not five results.
# A run that fails on a server (e.g. a release command it lacks) shows 'n/a'; its error is printed below the table.
#
# Needs redis-server and redis-cli (Debian: redis-server, redis-tools).
# Environment (all optional):
#   MESSAGES=100000 PRODUCERS=4 CONSUMERS=4 PIPELINE=1 LISTS=1   queue benchmark
#   QUEUE_RATES="0 20000"   one queue run per total send rate in msgs/s (0: flat out, latency then measures the
#                           backlog the producers build; a rate below capacity measures the server's hand-off)
#   STREAM_BATCH=10                   streams benchmark (uses MESSAGES, PRODUCERS, CONSUMERS too)
#   MODES="queue streams lock tx"     which benchmarks to run
#   CLIENTS=50 LOCK_SECONDS=5 RELEASES="watch eval delifeq getdel-check"   lock benchmark
#   TX_CLIENTS=50 TX_SECONDS=5                                              transaction benchmark
#   QUEUE_RATES="" / RELEASES="" skip the queue / lock benchmarks
#   RINGKV_BIN=path  BENCH_BIN=path   use these binaries instead of building them
#   RINGKV_ARGS="--threads 2"         extra ringkv arguments
#   ROUNDS=3   runs of each test per server, interleaved; the table shows medians (counts of violations, lost locks,
#              retries and errors summed over the rounds; exactly-once OK only if every round was; latency
#              percentiles over every round's messages together, which the median of a few rounds' p99s estimates
#              far less steadily) and, for each ratio, the ratio of every round: one round on a shared machine is
#              noise more often than not
set -euo pipefail

MESSAGES=${MESSAGES:-100000}
PRODUCERS=${PRODUCERS:-4}
CONSUMERS=${CONSUMERS:-4}
PIPELINE=${PIPELINE:-1}
LISTS=${LISTS:-1}
QUEUE_RATES=${QUEUE_RATES-"0 20000"}
CLIENTS=${CLIENTS:-50}
LOCK_SECONDS=${LOCK_SECONDS:-5} # not SECONDS: bash keeps its own
RELEASES=${RELEASES-"watch eval delifeq getdel-check"}
STREAM_BATCH=${STREAM_BATCH:-10}
MODES=${MODES:-"queue streams lock tx"}
TX_CLIENTS=${TX_CLIENTS:-50}
TX_SECONDS=${TX_SECONDS:-5}
ROUNDS=${ROUNDS:-3}

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib-servers.sh
. "$root/scripts/lib-servers.sh"

if [[ -z ${BENCH_BIN:-} ]]; then
    echo "building benches/queue_lock.rs (release)..." >&2
    BENCH_BIN=$(cd "$root" && cargo bench --bench queue_lock --no-run --quiet --message-format=json |
        grep -o '"executable":"[^"]*/queue_lock-[^"]*"' | cut -d'"' -f4 | tail -n1)
    [[ -x $BENCH_BIN ]] || {
        echo "could not find the queue_lock benchmark executable" >&2
        exit 1
    }
fi
start_servers
export RUST_BACKTRACE=0 # errors are one line each, without backtraces

# Runs the benchmark (`queue ...` or `lock ...`) against port $1 and sets the associative array `r` to the fields of
# its RESULT line; on failure `r` is empty and the error goes to $work/errors.
declare -A r
run_one() {
    local port=$1 name=$2
    shift 2
    r=()
    if run_bg timeout 600 "$BENCH_BIN" "$@" --addr "127.0.0.1:$port" >"$work/out" 2>"$work/err"; then
        local field
        for field in $(grep '^RESULT ' "$work/out" | cut -d' ' -f3-); do
            r[${field%%=*}]=${field#*=}
        done
    else
        echo "$name on :$port: $(tr -s ' \n' ' ' <"$work/err")" >>"$work/errors"
    fi
}

# Runs one test ROUNDS times on both servers (order alternating) and keeps each field's values, one per round
# ("n/a" for a failed run), in `redis_r` / `ringkv_r`. A queue or streams test also keeps every message's latency:
# `pooled_p50_us` / `pooled_p99_us` are the percentiles of all the rounds' messages together.
declare -A redis_r ringkv_r
swap=0
run_pair() {
    local name=$1 mode=$2 side k round keep=()
    shift
    redis_r=()
    ringkv_r=()
    rm -f "$work"/latencies.*
    for ((round = 0; round < ROUNDS; round++)); do
        local order=(redis ringkv)
        ((swap)) && order=(ringkv redis)
        swap=$((1 - swap))
        for side in "${order[@]}"; do
            [[ $mode == queue || $mode == streams ]] && keep=(--latencies "$work/latencies.$side.$round")
            if [[ $side == redis ]]; then
                run_one "$redis_port" "$name (redis)" "$@" "${keep[@]}"
                for k in "${!r[@]}"; do redis_r[$k]+="${r[$k]} "; done
            else
                run_one "$ringkv_port" "$name (ringkv)" "$@" "${keep[@]}"
                for k in "${!r[@]}"; do ringkv_r[$k]+="${r[$k]} "; done
            fi
        done
    done
    ((${#keep[@]})) || return 0
    for side in redis ringkv; do
        # n/a unless every round's latencies are there.
        local pooled=("n/a" "n/a")
        if (($(find "$work" -name "latencies.$side.*" | wc -l) == ROUNDS)); then
            read -ra pooled < <(sort -n -m "$work"/latencies."$side".* |
                awk 'function at(q, r) { r = int(q * NR); if (r < q * NR) r++; return v[r < 1 ? 1 : r] }
                     { v[NR] = $1 } END { print at(0.5), at(0.99) }')
        fi
        local -n into=${side}_r
        into[pooled_p50_us]=${pooled[0]}
        into[pooled_p99_us]=${pooled[1]}
    done
}

# Sums, OK-or-first-failure or median of a field's per-round values ($1 how, $2 values; n/a when a run failed).
combine() {
    local how=$1 values=$2
    local n
    n=$(wc -w <<<"$values")
    ((n == ROUNDS)) || { echo n/a; return; }
    case $how in
    sum) awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; print s }' <<<"$values" ;;
    all-ok) awk '{ v = "OK"; for (i = 1; i <= NF; i++) if ($i != "OK") { v = $i; break }; print v }' <<<"$values" ;;
    *) median "$values" "$ROUNDS" ;;
    esac
}

# Each round's ringkv/redis ratio of field $1.
round_ratios() {
    paste -d' ' <(tr ' ' '\n' <<<"${redis_r[$1]:-}" | grep .) <(tr ' ' '\n' <<<"${ringkv_r[$1]:-}" | grep .) |
        awk '{ printf "%s%.2f", (NR > 1 ? " " : ""), ($1 > 0 ? $2 / $1 : 0) }'
}

# Prints one table row for field $3 of the last pair: the medians, or with $4 = sum / all-ok the total over the rounds
# / OK when every round was. $4 = ratio adds ringkv/redis of the medians and, with several rounds, each round's ratio;
# $4 = pooled shows field $3 (one value, pooled over the rounds) with its ratio, and each round's ratio of field $5.
row() {
    local test=$1 label=$2 field=$3 how=${4:-median} per_round=${5:-$3}
    local a b ratio= rounds=
    if [[ $how == pooled ]]; then
        a=${redis_r[$field]:-n/a} b=${ringkv_r[$field]:-n/a}
    else
        a=$(combine "$how" "${redis_r[$field]:-}")
        b=$(combine "$how" "${ringkv_r[$field]:-}")
    fi
    if [[ $how == ratio || $how == pooled ]]; then
        ratio=n/a
        if [[ $a != n/a && $b != n/a ]] && awk -v a="$a" 'BEGIN { exit !(a > 0) }'; then
            ratio=$(awk -v a="$b" -v b="$a" 'BEGIN { printf "%.2f", a / b }')
            ((ROUNDS > 1)) && rounds=$(round_ratios "$per_round")
        fi
    fi
    printf '%-32s %-16s %14s %14s %7s  %s\n' "$test" "$label" "$a" "$b" "$ratio" "$rounds"
}

echo "redis $(redis-server --version | awk '{print $3}') on :$redis_port, ringkv on :$ringkv_port"
((ROUNDS > 1)) && echo "each figure is the median of $ROUNDS interleaved rounds (latencies: percentiles of every" \
    "round's messages together); per-round ratios on the right"
printf '%-32s %-16s %14s %14s %7s  %s\n' test metric redis ringkv ratio rounds

wants() { [[ " $MODES " == *" $1 "* ]]; }

wants queue && for rate in $QUEUE_RATES; do
    name="queue ${PRODUCERS}p/${CONSUMERS}c x$MESSAGES"
    ((PIPELINE > 1)) && name+=" P$PIPELINE"
    [[ $rate != 0 ]] && name+=" @$rate/s"
    run_pair "$name" queue --producers "$PRODUCERS" --consumers "$CONSUMERS" --messages "$MESSAGES" \
        --pipeline "$PIPELINE" --lists "$LISTS" --rate "$rate"
    row "$name" msgs/s msgs_per_s ratio
    row "" "p50 µs" pooled_p50_us pooled p50_us
    row "" "p99 µs" pooled_p99_us pooled p99_us
    row "" exactly-once exactly_once all-ok
done

if wants streams; then
    name="streams ${PRODUCERS}p/${CONSUMERS}c x$MESSAGES B$STREAM_BATCH"
    run_pair "$name" streams --producers "$PRODUCERS" --consumers "$CONSUMERS" --messages "$MESSAGES" \
        --batch "$STREAM_BATCH"
    row "$name" msgs/s msgs_per_s ratio
    row "" "p50 µs" pooled_p50_us pooled p50_us
    row "" "p99 µs" pooled_p99_us pooled p99_us
    row "" exactly-once exactly_once all-ok
    row "" "pending after" pending sum
fi

wants lock && for release in $RELEASES; do
    name="lock $release ${CLIENTS}c"
    run_pair "$name" lock --clients "$CLIENTS" --seconds "$LOCK_SECONDS" --release "$release"
    row "$name" acquisitions/s acq_per_s ratio
    row "" violations violations sum
    row "" "lost locks" lost sum
    row "" "release retries" release_retries sum
done

if wants tx; then
    name="tx multi+5+exec ${TX_CLIENTS}c"
    run_pair "$name" tx --clients "$TX_CLIENTS" --seconds "$TX_SECONDS"
    row "$name" tx/s tx_per_s ratio
    row "" errors errors sum
fi

if [[ -s $work/errors ]]; then
    echo "failed runs:" >&2
    cat "$work/errors" >&2
fi
