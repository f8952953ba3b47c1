#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmarks twin-devsim's load mode against a private loopback mosquitto: achieved publish
# rate, PUBACKs and receipts by a plain subscriber, beside the broker's raw limit measured in
# the same run with twin-loadgen; prints a markdown block for tests/bench/RESULTS.md.
#
# Usage: tests/bench/run_devsim.sh [--rate R] [--duration S] [--assets N] [--build DIR] [--keep]
#   --rate R      devsim --rate (default 20000)
#   --duration S  devsim --duration (default 20)
#   --assets N    devsim --assets (default 1000)
#   --build DIR   build tree holding bin/twin-devsim and bin/twin-loadgen (default build/)
#   --wait-idle S wait up to S s (default 60) for the machine to be idle (< 20 % busy) first
#   --keep        keep the temporary directory (logs) after the run
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/bench/bench_lib.sh
source "$ROOT/tests/bench/bench_lib.sh"
BUILD=$ROOT/build
RATE=20000
DURATION=20
ASSETS=1000
RAW_S=10
KEEP=0
WAIT_IDLE=60
COMMAND="$0 $*"

while [ $# -gt 0 ]; do
    case "$1" in
    --rate) RATE=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --assets) ASSETS=$2; shift 2 ;;
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --wait-idle) WAIT_IDLE=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "run_devsim.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

# The CPU shares are sampled between 2 s in and 2 s before the end.
[[ "$DURATION" =~ ^[0-9]+$ && "$DURATION" -ge 6 ]] ||
    { echo "run_devsim.sh: --duration must be a whole number of seconds, at least 6" >&2; exit 2; }
DEVSIM=$BUILD/bin/twin-devsim
LOADGEN=$BUILD/bin/twin-loadgen
require_programs "$DEVSIM" "$LOADGEN"
command -v mosquitto_sub >/dev/null || { echo "run_devsim.sh: mosquitto_sub is missing" >&2; exit 2; }

TMP=$(mktemp -d /tmp/twin-bench-devsim.XXXXXX)
MOSQ_PID="" SUB_PID="" DEVSIM_PID=""

cleanup() {
    stop_pid "$DEVSIM_PID"
    stop_pid "$SUB_PID"
    stop_pid "$MOSQ_PID"
    finish_tmp
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_mosquitto
URL="mqtt://127.0.0.1:$MQTT_PORT"

# (1) The broker's raw limit on this machine now: twin-loadgen, publisher and subscriber in
# two processes, as fast as its window allows.
log "raw limit: twin-loadgen --mode broker --rate 0 --duration $RAW_S"
"$LOADGEN" --mode broker --url "$URL" --rate 0 --duration "$RAW_S" --warmup 2 \
    >"$TMP/raw.out" 2>"$TMP/raw.err" || true
declare -A RAW
line=$(grep '^RESULT' "$TMP/raw.out" || true)
for c in ${line#RESULT }; do RAW[${c%%=*}]=${c#*=}; done

# (2) twin-devsim --mode load with a plain QoS 1 subscriber counting receipts (one line per
# message: its topic).
EXPECTED=$((RATE * DURATION))
mosquitto_sub -p "$MQTT_PORT" -q 1 -t 'twin/v1/asset/+/telemetry' -F '%t' -C "$EXPECTED" \
    -W $((DURATION + 120)) -i "bench-devsim-sub-$$" >"$TMP/sub.out" 2>"$TMP/sub.err" &
SUB_PID=$!
sleep 1
log "twin-devsim --mode load --rate $RATE --duration $DURATION --assets $ASSETS"
t0=$(date +%s.%N)
env TWIN_MQTT_URL="$URL" TWIN_INSTANCE=bench "$DEVSIM" --mode load --rate "$RATE" \
    --duration "$DURATION" --assets "$ASSETS" --json >"$TMP/devsim.json" 2>"$TMP/devsim.err" &
DEVSIM_PID=$!
sleep 2
c0d=$(cpu_ticks "$DEVSIM_PID"); c0m=$(cpu_ticks "$MOSQ_PID"); c0s=$(cpu_ticks "$SUB_PID")
i0=$(idle_ticks); s0=$(date +%s.%N)
sleep $((DURATION - 4))
c1d=$(cpu_ticks "$DEVSIM_PID"); c1m=$(cpu_ticks "$MOSQ_PID"); c1s=$(cpu_ticks "$SUB_PID")
i1=$(idle_ticks); s1=$(date +%s.%N)
rc=0
wait "$DEVSIM_PID" || rc=$?
DEVSIM_PID=""
t1=$(date +%s.%N)
# Receipts: wait (bounded) until the subscriber has them all or stops growing.
prev=-1
for _ in $(seq 1 120); do
    got=$(wc -l <"$TMP/sub.out")
    [ "$got" -ge "$EXPECTED" ] || [ "$got" = "$prev" ] && break
    prev=$got
    sleep 1
done
got=$(wc -l <"$TMP/sub.out")
stop_pid "$SUB_PID"; SUB_PID=""
grep -v 'event=config' "$TMP/devsim.err" | sed 's/^/  devsim: /' >&2 || true

json() { sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" "$TMP/devsim.json"; }
pct() { awk -v a="$1" -v b="$2" -v s="$3" 'BEGIN{printf "%.0f", (b - a) / s}'; }
secs=$(awk -v a="$s0" -v b="$s1" 'BEGIN{print b - a}')
busy=$(awk -v d=$((i1 - i0)) -v s="$secs" -v n="$(nproc)" -v hz="$(getconf CLK_TCK)" \
    'BEGIN{printf "%.0f", 100 * n - 100 * d / hz / s}')

cat <<EOF

### twin-devsim load benchmark, $(date -u +%Y-%m-%dT%H:%MZ)

- Command: \`$COMMAND\` (build: $BUILD, $(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt" 2>/dev/null))
- Machine: nproc $(nproc), kernel $(uname -r); $(mosquitto -h 2>/dev/null | head -1 | sed 's/ is an MQTT.*//'); machine busy before: ${BUSY_BEFORE:-?} % of one core${BUSY_NOTE:-}
- Setup: private mosquitto (deploy/mosquitto.conf's common part + loopback listener); twin-devsim \`--mode load --rate $RATE --duration $DURATION --assets $ASSETS\` (QoS 1, one MQTT connection, 4 samples per Telemetry); \`mosquitto_sub -q 1\` counting receipts.

| what | figure |
|---|---|
| raw broker limit (twin-loadgen broker mode, max rate, 2 processes) | published ${RAW[pub_rate]:-?} msg/s, received ${RAW[throughput]:-?} msg/s, lost ${RAW[lost]:-?} |
| twin-devsim asked | $RATE msg/s for $DURATION s = $EXPECTED messages |
| twin-devsim sent (handed to the client) | $(json sent) |
| achieved publish rate (sent / time from first due to last hand-over) | $(json rate) msg/s |
| PUBACKed | $(json acked) |
| failed / retries (client full) / throttled (window full) | $(json failed) / $(json retries) / $(json throttled) |
| largest lag behind the schedule | $(json max_lag_ms) ms |
| received by mosquitto_sub | $got |
| wall time of the devsim process | $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b - a}') s (exit $rc) |
| CPU over the steady ${secs%.*} s, % of one core | devsim $(pct "$c0d" "$c1d" "$secs"), mosquitto $(pct "$c0m" "$c1m" "$secs"), mosquitto_sub $(pct "$c0s" "$c1s" "$secs"); machine busy $busy |
EOF
