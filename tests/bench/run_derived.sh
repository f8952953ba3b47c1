#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmarks twin-ingest's cost of derived signals: maximum throughput with a plant model whose
# kind has 10 derived signals against the same model without them (and the broker alone, the raw
# limit), on private loopback mosquitto and redis-server, with each process's CPU time per message
# and Redis's time per EVALSHA; prints a markdown block for tests/bench/RESULTS.md.
#
# Usage: tests/bench/run_derived.sh [--rounds N] [--duration S] [--assets N] [--build DIR] [--keep]
#   --rounds N    alternating rounds of (none, derived) (default 3)
#   --duration S  measured seconds of each phase (default 8)
#   --assets N    assets (default 1000)
#   --build DIR   build tree holding bin/twin-ingest and bin/twin-loadgen (default build/)
#   --wait-idle S wait up to S s (default 60) for the machine to be idle first
#   --keep        keep the temporary directory after the run
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/bench/bench_lib.sh
source "$ROOT/tests/bench/bench_lib.sh"
BUILD=$ROOT/build
ROUNDS=3
DURATION=8
ASSETS=1000
WORKERS=${TWIN_INGEST_WORKERS:-4}
KEEP=0
WAIT_IDLE=60
COMMAND="$0 $*"
PREFIX=dx-

while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --assets) ASSETS=$2; shift 2 ;;
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --wait-idle) WAIT_IDLE=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "run_derived.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

LOADGEN=$BUILD/bin/twin-loadgen
INGEST=$BUILD/bin/twin-ingest
require_programs "$LOADGEN" "$INGEST"

TMP=$(mktemp -d /tmp/twin-bench.XXXXXX)
MOSQ_PID="" REDIS_PID="" INGEST_PID=""

cleanup() {
    stop_pid "$INGEST_PID"
    stop_pid "$MOSQ_PID"
    stop_pid "$REDIS_PID"
    finish_tmp
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The loadgen's kind (its 4 signals) and its assets; with derived=1, 10 derived signals that
# use every kind of operator.
write_model() {
    local file=$1 derived=$2
    python3 - "$file" "$derived" "$ASSETS" "$PREFIX" <<'PY'
import json, sys
path, derived, n, prefix = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), sys.argv[4]
signals = {s: {} for s in ("temperature", "pressure", "vibration", "current")}
if derived:
    signals.update({
        "power": {"expr": "pressure * current / 1000"},
        "energy": {"expr": "integral(power) / 3600"},
        "temp_rate": {"expr": "rate(temperature)"},
        "temp_delta": {"expr": "delta(temperature)"},
        "vib_mean_1h": {"expr": "mean_over(vibration, 1h)"},
        "vib_max_1h": {"expr": "max_over(vibration, 1h)"},
        "vib_std_10m": {"expr": "std_over(vibration, 10m)"},
        "temp_ewma": {"expr": "ewma(temperature, 5m)"},
        "hot_s": {"expr": "time_in(temperature > 60)"},
        "load": {"expr": "clamp(abs(current) / 100, 0, 1) * sqrt(abs(pressure))"},
    })
doc = {"version": 1, "asset_kinds": {"lg": {"signals": signals}},
       "assets": {f"{prefix}{i}": {"kind": "lg"} for i in range(n)}}
json.dump(doc, open(path, "w"))
PY
}

declare -A R

# "mosquitto redis ingest loadgen" ticks, in that order.
all_ticks() {
    echo "$(cpu_ticks "$MOSQ_PID") $(cpu_ticks "$REDIS_PID") $(tree_ticks "$INGEST_PID") $(tree_ticks "$1")"
}

# One loadgen phase at the maximum rate; R[name] = its received msg/s; R[name.cpu] = CPU µs per
# message of mosquitto, redis-server, twin-ingest, twin-loadgen and their sum over the measured
# seconds; R[name.eval] = Redis's µs per EVALSHA call (INFO commandstats, same interval).
phase() {
    local name=$1 mode=$2 out lg t0 t1 hz span
    hz=$(getconf CLK_TCK)
    span=$((DURATION > 2 ? DURATION - 1 : 1))
    "$LOADGEN" --url "mqtt://127.0.0.1:$MQTT_PORT" --warmup 2 --duration "$DURATION" \
        --mode "$mode" --rate 0 --assets "$ASSETS" --prefix "$PREFIX" >"$TMP/$name.out" \
        2>"$TMP/$name.err" &
    lg=$!
    # Sampled inside the measured interval (after connect and warm-up, before the loadgen's
    # roles exit): a role that has exited takes its CPU time with it.
    sleep 2.5
    redis-cli -p "$REDIS_PORT" config resetstat >/dev/null
    t0=$(all_ticks "$lg")
    sleep "$span"
    t1=$(all_ticks "$lg")
    R[$name.eval]=$(redis-cli -p "$REDIS_PORT" info commandstats |
        sed -n 's/^cmdstat_evalsha:.*usec_per_call=\([0-9.]*\).*/\1/p')
    wait "$lg" || true
    out=$(grep '^RESULT' "$TMP/$name.out" || true)
    R[$name]=$(sed -n 's/.* throughput=\([0-9.]*\).*/\1/p' <<<"$out")
    R[$name.lost]=$(sed -n 's/.* lost=\([0-9]*\).*/\1/p' <<<"$out")
    R[$name.cpu]=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="$span" -v r="${R[$name]:-0}" \
        'BEGIN{split(a, x, " "); split(b, y, " "); t = 0
               for (i = 1; i <= 4; i++) { u = r > 0 ? 1e6 * (y[i] - x[i]) / hz / s / r : 0
                                          t += u; printf "%.0f | ", u }
               printf "%.0f", t}')
    log "phase $name: ${R[$name]:-failed} msg/s, lost ${R[$name.lost]:-?}, CPU us/msg (mosquitto | redis | ingest | loadgen | sum) ${R[$name.cpu]}, evalsha ${R[$name.eval]:-?} us"
}

ingest_with() {
    local model=$1
    stop_pid "$INGEST_PID"
    redis-cli -p "$REDIS_PORT" flushall >/dev/null
    local port
    port=$(free_port)
    start_twin "$port" "$INGEST" "$TMP/ingest.log" TWIN_INGEST_WORKERS="$WORKERS" TWIN_MODEL="$model"
    INGEST_PID=$TWIN_PID
}

main() {
    CPU_MODEL=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
    BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
    wait_idle
    write_model "$TMP/plain.json" 0
    write_model "$TMP/derived.json" 1
    start_redis
    start_mosquitto
    phase broker broker
    local r sum0=0 sum1=0 rows="" cpurows=""
    for r in $(seq 1 "$ROUNDS"); do
        ingest_with "$TMP/plain.json"
        phase "plain$r" ingest
        ingest_with "$TMP/derived.json"
        phase "derived$r" ingest
        sum0=$(awk -v a="$sum0" -v b="${R[plain$r]:-0}" 'BEGIN{print a + b}')
        sum1=$(awk -v a="$sum1" -v b="${R[derived$r]:-0}" 'BEGIN{print a + b}')
        cpurows="$cpurows| plain $r | ${R[plain$r.cpu]} | ${R[plain$r.eval]:-?} |
| derived $r | ${R[derived$r.cpu]} | ${R[derived$r.eval]:-?} |
"
        rows="$rows| $r | ${R[plain$r]:-failed} (lost ${R[plain$r.lost]:-?}) | ${R[derived$r]:-failed} (lost ${R[derived$r.lost]:-?}) | $(awk -v a="${R[plain$r]:-0}" -v b="${R[derived$r]:-0}" 'BEGIN{printf "%.0f %%", (a > 0 ? 100 * b / a : 0)}') |
"
    done
    local pct
    pct=$(awk -v a="$sum0" -v b="$sum1" 'BEGIN{printf "%.0f", (a > 0 ? 100 * b / a : 0)}')
    cat <<MD
### twin-ingest with derived signals, $(date -u +%Y-%m-%dT%H:%MZ)

- Command: \`$COMMAND\` (build: $BUILD, CMAKE_BUILD_TYPE=$BUILD_TYPE)
- Machine: nproc $(nproc), CPU "$CPU_MODEL", kernel $(uname -r)
- Setup: loopback mosquitto and redis-server as in run_ingest.sh; twin-ingest with TWIN_INGEST_WORKERS=$WORKERS; $ASSETS assets, Telemetry of 4 samples at the maximum rate (twin-loadgen --rate 0), $DURATION s measured per phase; Redis flushed before each phase. "derived": the kind also has 10 derived signals (integral, rate, delta, mean/max/std over windows, ewma, time_in, arithmetic).
- Raw limit (broker alone, same run): ${R[broker]:-failed} msg/s.

| round | no derived signals, msg/s | 10 derived signals, msg/s | derived / none |
|---|---|---|---|
${rows}
CPU per message over the measured seconds (utime + stime from /proc, µs; Redis's µs per EVALSHA from INFO commandstats):

| phase | mosquitto | redis-server | twin-ingest | twin-loadgen | sum | EVALSHA µs/call |
|---|---|---|---|---|---|---|
${cpurows}
| target | measured | verdict |
|---|---|---|
| throughput with 10 derived signals >= 80 % of without | $pct % (sum over $ROUNDS rounds) | $(verdict "$pct >= 80") |
MD
}

main
