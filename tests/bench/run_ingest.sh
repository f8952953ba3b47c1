#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmarks twin-ingest against the broker alone on private loopback mosquitto and redis-server
# instances and prints a markdown block for tests/bench/RESULTS.md.
#
# Usage: tests/bench/run_ingest.sh [--workers N] [--duration S] [--assets N] [--build DIR] [--keep]
#   --workers N   TWIN_INGEST_WORKERS for twin-ingest (default 4, or $TWIN_INGEST_WORKERS)
#   --duration S  measured seconds of phases a-d (default 10)
#   --assets N    assets in phases a-d (default 1000)
#   --build DIR   build tree holding bin/twin-ingest and bin/twin-loadgen (default build/)
#   --wait-idle S wait up to S s (default 60) for the machine to be idle (< 20 % busy) first
#   --keep        keep the temporary directory (logs, loadgen output) after the run
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/bench/bench_lib.sh
source "$ROOT/tests/bench/bench_lib.sh"
BUILD=$ROOT/build
WORKERS=${TWIN_INGEST_WORKERS:-4}
DURATION=10
ASSETS=1000
WARMUP=2
LATENCY_RATE=5000
OVERLOAD_S=10
RSS_ASSETS=10000
KEEP=0
WAIT_IDLE=60
COMMAND="$0 $*"

while [ $# -gt 0 ]; do
    case "$1" in
    --workers) WORKERS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --assets) ASSETS=$2; shift 2 ;;
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --wait-idle) WAIT_IDLE=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "run_ingest.sh: unknown argument $1" >&2; exit 2 ;;
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

start_ingest() {
    METRICS_PORT=$(free_port)
    start_twin "$METRICS_PORT" "$INGEST" "$TMP/ingest.log" TWIN_INGEST_WORKERS="$WORKERS"
    INGEST_PID=$TWIN_PID
}

# One line "mosquitto redis ingest loadgen" of cumulative CPU ticks; $1: the loadgen's pid.
cpu_snapshot() {
    echo "$(cpu_ticks "$MOSQ_PID") $(cpu_ticks "$REDIS_PID") $(tree_ticks "$INGEST_PID")" \
        "$(tree_ticks "$1") $(idle_ticks)"
}

# Sum of one twin_ingest_* counter over its label sets.
metric() {
    [ -n "${METRICS_PORT:-}" ] || { echo 0; return; }
    curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null |
        awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%.6f", s }'
}

# Waits (bounded, 120 s) until ingest has taken nothing new for a second.
settle() {
    [ -n "$INGEST_PID" ] || { sleep 1; return; }
    local prev=-1 cur i
    for i in $(seq 1 120); do
        cur=$(metric twin_ingest_received_total)
        [ "$cur" = "$prev" ] && return 0
        prev=$cur
        sleep 1
    done
}

declare -A R     # R[phase.field]: fields of the loadgen's RESULT line, CPU shares, ingest counters
declare -A CMD   # CMD[phase]: the exact loadgen command
COUNTERS="received applied late duplicate stale rejected state_published state_republished state_publish_failed redis_errors worker_restarts"

HISTOGRAMS="apply handle"

counters_snapshot() {
    local c out=""
    for c in $COUNTERS; do out="$out $(metric "twin_ingest_${c}_total")"; done
    for c in $HISTOGRAMS; do
        out="$out $(metric "twin_ingest_${c}_seconds_sum") $(metric "twin_ingest_${c}_seconds_count")"
    done
    echo "$out"
}

# Per-phase differences of the counters, and the mean of each histogram in ms.
record_counters() {
    local phase=$1 c i=0
    local -a a b
    read -r -a a <<<"$2"
    read -r -a b <<<"$3"
    for c in $COUNTERS; do
        R[$phase.ingest_$c]=$(awk -v x="${a[i]:-0}" -v y="${b[i]:-0}" 'BEGIN{printf "%d", y - x}')
        i=$((i + 1))
    done
    for c in $HISTOGRAMS; do
        R[$phase.mean_${c}_ms]=$(awk -v s0="${a[i]:-0}" -v s1="${b[i]:-0}" -v n0="${a[i+1]:-0}" \
            -v n1="${b[i+1]:-0}" 'BEGIN{printf "%.3f", (n1 > n0 ? 1000 * (s1 - s0) / (n1 - n0) : 0)}')
        i=$((i + 2))
    done
}

# CPU share (% of one core) of each server process between two snapshots $2 → $3 over $1 s.
record_cpu() {
    local phase=$1 secs=$2 a b
    read -r -a a <<<"$3"
    read -r -a b <<<"$4"
    R[$phase.cpu_mosquitto]=$(awk -v d=$(( b[0] - a[0] )) -v s="$secs" 'BEGIN{printf "%.0f", d/s}')
    R[$phase.cpu_redis]=$(awk -v d=$(( b[1] - a[1] )) -v s="$secs" 'BEGIN{printf "%.0f", d/s}')
    R[$phase.cpu_ingest]=$(awk -v d=$(( b[2] - a[2] )) -v s="$secs" 'BEGIN{printf "%.0f", d/s}')
    R[$phase.cpu_loadgen]=$(awk -v d=$(( b[3] - a[3] )) -v s="$secs" 'BEGIN{printf "%.0f", d/s}')
    R[$phase.cpu_busy]=$(awk -v d=$(( b[4] - a[4] )) -v s="$secs" -v n="$(nproc)" \
        'BEGIN{printf "%.0f", 100 * n - d / s}')
}

# Runs one loadgen phase; CPU is sampled over its measured interval (after the warmup).
run_phase() {
    local phase=$1 warmup=$2 duration=$3 rc=0 c0 c1 k0 k1 t0 t1 c half
    shift 3
    local -a cmd=("$LOADGEN" --url "mqtt://127.0.0.1:$MQTT_PORT" --warmup "$warmup"
        --duration "$duration" "$@")
    CMD[$phase]="twin-loadgen ${cmd[*]:1}"
    settle
    log "phase $phase: ${CMD[$phase]}"
    k0=$(counters_snapshot)
    "${cmd[@]}" >"$TMP/$phase.out" 2>"$TMP/$phase.err" &
    local lg=$!
    half=$(awk -v d="$duration" 'BEGIN{print (d > 2 ? d / 2 - 0.5 : d / 4)}')
    sleep "$(awk -v w="$warmup" 'BEGIN{print w + 0.3}')"
    c0=$(cpu_snapshot "$lg"); t0=$(date +%s.%N)
    sleep "$half"
    top -b -n2 -d0.5 -w 200 >"$TMP/$phase.top" 2>/dev/null || true
    sleep "$half"
    c1=$(cpu_snapshot "$lg"); t1=$(date +%s.%N)
    wait "$lg" || rc=$?
    k1=$(counters_snapshot)
    record_cpu "$phase" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b - a}')" "$c0" "$c1"
    record_counters "$phase" "$k0" "$k1"
    grep -v '^RESULT' "$TMP/$phase.out" >&2 || true
    [ -s "$TMP/$phase.err" ] && sed 's/^/  loadgen: /' "$TMP/$phase.err" >&2
    local line
    line=$(grep '^RESULT' "$TMP/$phase.out" || true)
    [ -n "$line" ] || { log "phase $phase: loadgen failed (exit $rc)"; R[$phase.failed]=$rc; return 0; }
    for c in ${line#RESULT }; do R[$phase.${c%%=*}]=${c#*=}; done
}

# Sum over twin-ingest's processes of VmRSS and of Pss, in kB.
ingest_memory() {
    local rss=0 pss=0 p v n=0
    for p in $(ingest_pids); do
        v=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        rss=$((rss + ${v:-0}))
        v=$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
        pss=$((pss + ${v:-0}))
        n=$((n + 1))
    done
    echo "$rss $pss $n"
}

# Figures of one phase as a markdown table row.
row() {
    local p=$1 label=$2 note=${3:-}
    if [ -n "${R[$p.failed]:-}" ]; then
        printf '| %s | loadgen failed (exit %s) | | | | | | | | | |\n' "$label" "${R[$p.failed]}"
        return
    fi
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" \
        "${R[$p.pub_rate]}" "${R[$p.throughput]}" "${R[$p.published]}/${R[$p.received]}" \
        "${R[$p.lost]}" "${R[$p.duplicates]}" "${R[$p.p50_ms]}" "${R[$p.p99_ms]}" \
        "${R[$p.p999_ms]}" "${R[$p.max_ms]}" "$note"
}

cpu_row() {
    local p=$1 sum
    sum=$(( ${R[$p.cpu_mosquitto]:-0} + ${R[$p.cpu_ingest]:-0} + ${R[$p.cpu_redis]:-0} +
        ${R[$p.cpu_loadgen]:-0} ))
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$2" "${R[$p.cpu_mosquitto]:-}" \
        "${R[$p.cpu_ingest]:-}" "${R[$p.cpu_redis]:-}" "${R[$p.cpu_loadgen]:-}" "$sum" \
        "$(( ${R[$p.cpu_busy]:-0} - sum ))" "${R[$p.cpu_busy]:-}"
}

ingest_row() {
    local p=$1 c out="| $2 |"
    for c in $COUNTERS; do out="$out ${R[$p.ingest_$c]:-} |"; done
    echo "$out ${R[$p.mean_apply_ms]:-} | ${R[$p.mean_handle_ms]:-} |"
}

# The header and the 8 busiest processes of the second sample top took during a phase.
top_lines() {
    awk '/^top - /{n++} n == 2 && /PID USER/{p=1; print; next} n == 2 && p && c < 8 {print; c++}' \
        "$TMP/$1.top" 2>/dev/null || true
}

report() {
    local pct t_b t_c t_d t_e rss_mb pss_mb
    pct=$(awk -v b="${R[b.throughput]:-0}" -v a="${R[a.throughput]:-0}" \
        'BEGIN{printf "%.0f", (a > 0 ? 100 * b / a : 0)}')
    rss_mb=$(mb "$MEM_RSS")
    pss_mb=$(mb "$MEM_PSS")
    t_b=$(verdict "$pct >= 60 && ${R[b.lost]:-1} == 0")
    t_c=$(verdict "${R[c.p99_ms]:-99} <= 2 && ${R[c.lost]:-1} == 0")
    t_d=$(verdict "${R[d.lost]:-1} == 0 && ${R[d.received]:-0} == ${R[d.published]:--1}")
    t_e=$(verdict "$rss_mb <= 20")
    cat <<MD
### twin-ingest benchmark, $(date -u +%Y-%m-%dT%H:%MZ)

- Command: \`$COMMAND\` (build: $BUILD, CMAKE_BUILD_TYPE=$BUILD_TYPE)
- Machine: nproc $(nproc), CPU "$CPU_MODEL", kernel $(uname -r); mosquitto $MOSQ_VERSION, redis $REDIS_VERSION, Paho C $PAHO_VERSION
- Setup: everything on 127.0.0.1; mosquitto = deploy/mosquitto.conf + private listener; redis = deploy/redis.conf (AOF everysec); twin-ingest with TWIN_INGEST_WORKERS=$WORKERS; QoS 1 both ways; Telemetry with 4 samples; twin-loadgen publisher and subscriber in separate processes.

| phase | published msg/s | received msg/s | published/received | lost | dup | p50 ms | p99 ms | p99.9 ms | max ms | note |
|---|---|---|---|---|---|---|---|---|---|---|
$(row a "(a) broker only, max rate")
$(row a5 "(a) broker only, $LATENCY_RATE msg/s" "raw latency at (c)'s rate")
$(row b "(b) ingest, max rate" "$pct % of (a)")
$(row c "(c) ingest, $LATENCY_RATE msg/s" "")
$(row d "(d) ingest, ${R[d.rate]:-?} msg/s (2x b) for ${OVERLOAD_S} s" "drained ${R[d.drain_ms]:-?} ms after last publish; backlog peak ${R[d.backlog_peak]:-?}")
$(row e "(e) ingest, $RSS_ASSETS assets" "")

twin-ingest memory (sum over its $MEM_PROCS processes; VmRSS counts pages shared by the forked workers once per process, PSS splits them): after (e), a fresh instance that took $RSS_ASSETS assets x 3 Telemetry: RSS $rss_mb MB, PSS $pss_mb MB; the same instance 1 s after start, idle: RSS $(mb "$MEM0_RSS") MB, PSS $(mb "$MEM0_PSS") MB ($MEM0_PROCS processes); the first instance after (a)-(d), idle for 3 s: RSS $(mb "$MEMD_RSS") MB, PSS $(mb "$MEMD_PSS") MB ($MEMD_PROCS processes).

Before the run: load average $LOADAVG, machine busy ${BUSY_BEFORE:-?} % of one core over 1 s (other work shares the 2 cores; see "everything else" below).

CPU during the measured interval (from /proc/PID/stat), % of one core; the machine has 200 %:

| phase | mosquitto | twin-ingest (all processes) | redis | twin-loadgen (both) | sum of these | everything else (other processes, unattributed kernel time) | machine busy |
|---|---|---|---|---|---|---|---|
$(cpu_row a "(a) broker only")
$(cpu_row a5 "(a) broker only $LATENCY_RATE/s")
$(cpu_row b "(b) ingest max")
$(cpu_row c "(c) ingest $LATENCY_RATE/s")
$(cpu_row d "(d) ingest 2x")

twin-ingest counters per phase (from /metrics):

| phase | ${COUNTERS// / | } | mean apply ms | mean handle ms |
|$(for _ in $COUNTERS; do printf -- '---|'; done)---|---|---|
$(ingest_row b "(b)")
$(ingest_row c "(c)")
$(ingest_row d "(d)")
$(ingest_row e "(e)")

| target | measured | verdict |
|---|---|---|
| ingest max throughput >= 60 % (aim 70 %) of broker-only, nothing lost | $pct %, lost ${R[b.lost]:-?} | $t_b |
| p99 publish -> TwinState <= 2 ms at $LATENCY_RATE msg/s | ${R[c.p99_ms]:-?} ms, lost ${R[c.lost]:-?} | $t_c |
| 2x sustainable for ${OVERLOAD_S} s: nothing lost, backlog drains | lost ${R[d.lost]:-?}, drained in ${R[d.drain_ms]:-?} ms | $t_d |
| ingest RSS <= 20 MB with $RSS_ASSETS assets | $rss_mb MB (PSS $pss_mb MB) | $t_e |

Busiest processes during (b), from \`top -b -n2 -d0.5\` (second sample):

\`\`\`
$(top_lines b)
\`\`\`

Loadgen commands, in order:
$(for p in a a5 b c d e; do printf '    %s: %s\n' "$p" "${CMD[$p]:-not run}"; done)
MD
}

main() {
    CPU_MODEL=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
    MOSQ_VERSION=$(mosquitto -h 2>/dev/null | awk '/version/{print $3; exit}' || true)
    REDIS_VERSION=$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')
    PAHO_VERSION=$(dpkg-query -W -f='${Version}' libpaho-mqtt1.3 2>/dev/null || echo unknown)
    BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
    wait_idle
    LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
    log "temporary directory $TMP"
    start_redis
    start_mosquitto
    log "mosquitto :$MQTT_PORT, redis :$REDIS_PORT"
    run_phase a "$WARMUP" "$DURATION" --mode broker --rate 0 --assets "$ASSETS"
    run_phase a5 "$WARMUP" "$DURATION" --mode broker --rate "$LATENCY_RATE" --assets "$ASSETS"
    start_ingest
    run_phase b "$WARMUP" "$DURATION" --mode ingest --rate 0 --assets "$ASSETS"
    run_phase c "$WARMUP" "$DURATION" --mode ingest --rate "$LATENCY_RATE" --assets "$ASSETS"
    local over
    over=$(awk -v t="${R[b.throughput]:-0}" 'BEGIN{printf "%d", 2 * t}')
    [ "$over" -gt 0 ] || over=$((2 * LATENCY_RATE))
    run_phase d 0 "$OVERLOAD_S" --mode ingest --rate "$over" --assets "$ASSETS" \
        --drain-timeout 300 --idle-timeout 20
    settle
    # An idle worker gives a burst's memory back a second after its last message (worker.c);
    # settle returns about then, so wait past it.
    sleep 2
    read -r MEMD_RSS MEMD_PSS MEMD_PROCS <<<"$(ingest_memory)"
    kill -0 "$INGEST_PID" 2>/dev/null || log "twin-ingest is no longer running after (d)"
    # A fresh twin-ingest for (e), so its memory reflects 10,000 assets, not (d)'s overload.
    stop_pid "$INGEST_PID"
    start_ingest
    sleep 1
    read -r MEM0_RSS MEM0_PSS MEM0_PROCS <<<"$(ingest_memory)"
    # 6 s at 5,000 msg/s over 10,000 assets: every asset sends 3 Telemetry.
    run_phase e 0 6 --mode ingest --rate 5000 --assets "$RSS_ASSETS" --drain-timeout 120
    settle
    read -r MEM_RSS MEM_PSS MEM_PROCS <<<"$(ingest_memory)"
    kill -0 "$INGEST_PID" 2>/dev/null || log "twin-ingest is no longer running after (e)"
    log "ingest log: $(grep -c . "$TMP/ingest.log") lines, $(grep -c ' error ' "$TMP/ingest.log" || true) errors"
    report
}

main
