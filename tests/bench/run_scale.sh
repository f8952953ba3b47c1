#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Scale-out benchmark: twin-ingest throughput with 1, 2 and 4 instances against one Redis and against a 3-master Redis Cluster, beside the broker alone, with each process's CPU per message; prints a markdown block.
#
# Usage: tests/bench/run_scale.sh [--instances "1 2 4"] [--workers N] [--duration S]
#                                 [--assets N] [--build DIR] [--wait-idle S] [--keep]
#                                 [--ingest-cpu CORES]
#   --instances L  the instance counts to run (default "1 2 4"), each against both Redis kinds
#   --workers N    TWIN_INGEST_WORKERS of each instance (default 2)
#   --duration S   measured seconds of each phase (default 10)
#   --assets N     assets (default 1000)
#   --build DIR    build tree with bin/twin-ingest and bin/twin-loadgen (default build/; Release)
#   --wait-idle S  wait up to S s (default 60) for the machine to be idle first
#   --keep         keep the temporary directory (logs, loadgen output)
#   --ingest-cpu C cap each twin-ingest instance (supervisor and workers together) at C cores
#                  (e.g. 0.3) with a cgroup of its own (cpu controller, v1 or v2; needs root),
#                  so that ingest, not the machine, is the limit when instances are added
# Every phase is twin-loadgen at max rate (at most 1,000 Telemetry in flight), QoS 1 both
# ways; (a) measures the broker alone with the same load generator: the raw limit.
# "x of 1 instance" is each phase's msg/s over the 1-instance phase of the same Redis kind.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/bench/bench_lib.sh
source "$ROOT/tests/bench/bench_lib.sh"
BUILD=$ROOT/build
INSTANCES="1 2 4"
WORKERS=2
DURATION=10
ASSETS=1000
WARMUP=2
KEEP=0
WAIT_IDLE=60
INGEST_CPU=""
COMMAND="$0 $*"

while [ $# -gt 0 ]; do
    case "$1" in
    --instances) INSTANCES=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --assets) ASSETS=$2; shift 2 ;;
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --wait-idle) WAIT_IDLE=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --ingest-cpu)
        [ -n "${2:-}" ] || { echo "run_scale.sh: --ingest-cpu needs a number of cores" >&2; exit 2; }
        INGEST_CPU=$2; shift 2 ;;
    -h | --help) sed -n '3,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_scale.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
LOADGEN=$BUILD/bin/twin-loadgen
INGEST=$BUILD/bin/twin-ingest
require_programs "$LOADGEN" "$INGEST"

# --ingest-cpu: one cgroup per instance with a CFS quota of CG_QUOTA µs per CG_PERIOD µs.
CG_PERIOD=100000 CG_QUOTA="" CG_VERSION="" CG_ROOT="" CG_DIR=""
CGROUPS=()
if [ -n "$INGEST_CPU" ]; then
    [[ $INGEST_CPU =~ ^([0-9]+(\.[0-9]*)?|\.[0-9]+)$ ]] ||
        { echo "run_scale.sh: --ingest-cpu $INGEST_CPU: not a number of cores (e.g. 0.3)" >&2; exit 2; }
    CG_QUOTA=$(awk -v c="$INGEST_CPU" -v p="$CG_PERIOD" 'BEGIN{printf "%d", c * p + 0.5}')
    awk -v q="$CG_QUOTA" -v p="$CG_PERIOD" -v n="$(nproc)" 'BEGIN{exit !(q >= 1000 && q <= n * p)}' ||
        { echo "run_scale.sh: --ingest-cpu $INGEST_CPU: must be 0.01 to $(nproc) cores" >&2; exit 2; }
    if [ -e /sys/fs/cgroup/cpu/cpu.cfs_quota_us ] && [ -w /sys/fs/cgroup/cpu/cgroup.procs ]; then
        CG_VERSION=v1 CG_ROOT=/sys/fs/cgroup/cpu
    elif grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null &&
        [ -w /sys/fs/cgroup/cgroup.subtree_control ]; then
        CG_VERSION=v2 CG_ROOT=/sys/fs/cgroup
    else
        echo "run_scale.sh: --ingest-cpu needs a writable cgroup cpu controller, as root: cgroup v1" \
            "/sys/fs/cgroup/cpu (cpu.cfs_quota_us) or cgroup v2 /sys/fs/cgroup with cpu in" \
            "cgroup.controllers; neither is available here" >&2
        exit 2
    fi
fi

TMP=$(mktemp -d /tmp/twin-scale.XXXXXX)
MOSQ_PID="" REDIS_PID=""
NODE_PIDS=() NODE_PORTS=() INGEST_PIDS=() INGEST_PORTS=() INGEST_NAMES=()

# Makes cgroup twin-scale-<our pid>-$1 with the quota; sets CG_DIR. v2: enables the cpu
# controller for the root's children first (cgroup.subtree_control), if it is not yet.
cg_make() {
    CG_DIR=$CG_ROOT/twin-scale-$$-$1
    if [ "$CG_VERSION" = v2 ] && ! grep -qw cpu "$CG_ROOT/cgroup.subtree_control"; then
        echo +cpu >"$CG_ROOT/cgroup.subtree_control" ||
            { log "cannot enable the cpu controller in $CG_ROOT/cgroup.subtree_control"; return 1; }
    fi
    mkdir "$CG_DIR" || { log "cannot create cgroup $CG_DIR"; return 1; }
    CGROUPS+=("$CG_DIR")
    if [ "$CG_VERSION" = v1 ]; then
        echo "$CG_PERIOD" >"$CG_DIR/cpu.cfs_period_us" && echo "$CG_QUOTA" >"$CG_DIR/cpu.cfs_quota_us"
    else
        echo "$CG_QUOTA $CG_PERIOD" >"$CG_DIR/cpu.max"
    fi || { log "cannot set the CPU quota of $CG_DIR"; return 1; }
}

# Removes our cgroups once their processes have ended (a worker or the drainer may outlive
# the supervisor briefly); what is still in one after 5 s is ours and is killed by pid.
cg_remove_all() {
    local dir i p
    for dir in "${CGROUPS[@]}"; do
        [ -d "$dir" ] || continue
        for i in $(seq 1 50); do rmdir "$dir" 2>/dev/null && break; sleep 0.1; done
        [ -d "$dir" ] || continue
        while read -r p; do
            log "pid $p still in $dir: killing it"; kill -KILL "$p" 2>/dev/null || true
        done <"$dir/cgroup.procs"
        for i in $(seq 1 50); do rmdir "$dir" 2>/dev/null && break; sleep 0.1; done
        if [ -d "$dir" ]; then log "could not remove cgroup $dir"; fi
    done
    CGROUPS=()
}

# "periods throttled" summed over our cgroups' cpu.stat ("0 0" when uncapped).
cg_throttling() {
    local dir periods=0 throttled=0 k v
    for dir in "${CGROUPS[@]}"; do
        while read -r k v; do
            case "$k" in
            nr_periods) periods=$((periods + v)) ;;
            nr_throttled) throttled=$((throttled + v)) ;;
            esac
        done <"$dir/cpu.stat"
    done
    echo "$periods $throttled"
}

# Stops the instances and retires their names: Mosquitto keeps handing a shared
# subscription's messages to its offline member sessions, so sessions left behind would take
# a share of the next phase's telemetry (README, "Guarantees").
stop_ingests() {
    local p name
    for p in "${INGEST_PIDS[@]}"; do stop_pid "$p"; done
    for name in "${INGEST_NAMES[@]}"; do
        timeout 120 env TWIN_MQTT_URL="mqtt://127.0.0.1:$MQTT_PORT" TWIN_REDIS_URL="$REDIS_URL" \
            TWIN_INSTANCE="$name" TWIN_INGEST_WORKERS="$WORKERS" "$INGEST" --retire \
            >>"$TMP/retire.log" 2>&1 || log "retiring $name failed (see retire.log)"
    done
    INGEST_PIDS=() INGEST_PORTS=() INGEST_NAMES=()
    cg_remove_all
}
stop_redis_all() {
    local p
    stop_pid "$REDIS_PID"; REDIS_PID=""
    for p in "${NODE_PIDS[@]}"; do stop_pid "$p"; done
    NODE_PIDS=() NODE_PORTS=()
}
cleanup() {
    stop_ingests
    stop_redis_all
    stop_pid "$MOSQ_PID"
    finish_tmp
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Fail now, not after the broker phase, when a capped cgroup cannot be made.
if [ -n "$INGEST_CPU" ]; then
    cg_make probe || { echo "run_scale.sh: --ingest-cpu: cannot make a capped cgroup under $CG_ROOT" >&2; exit 2; }
    cg_remove_all
fi

# A port whose cluster-bus port (+10000) is free too.
cluster_port() {
    local i p
    for i in $(seq 1 100); do
        p=$(free_port)
        [ "$p" -lt 55000 ] || continue
        ss -Htan "sport = :$((p + 10000))" | grep -q . || { echo "$p"; return 0; }
    done
    return 1
}

# Three cluster-enabled redis-server nodes joined by redis-cli --cluster create.
start_cluster() {
    local i port
    for i in 0 1 2; do
        port=$(cluster_port)
        mkdir -p "$TMP/node$i"
        redis-server "$ROOT/deploy/redis.conf" --port "$port" --bind 127.0.0.1 \
            --dir "$TMP/node$i" --daemonize no --cluster-enabled yes \
            --cluster-config-file nodes.conf >"$TMP/node$i.log" 2>&1 &
        NODE_PIDS+=($!) NODE_PORTS+=("$port")
        wait_for "redis-cli -p $port ping | grep -q PONG" 100
    done
    redis-cli --cluster create "127.0.0.1:${NODE_PORTS[0]}" "127.0.0.1:${NODE_PORTS[1]}" \
        "127.0.0.1:${NODE_PORTS[2]}" --cluster-replicas 0 --cluster-yes >"$TMP/create.log" 2>&1
    for port in "${NODE_PORTS[@]}"; do
        wait_for "redis-cli -p $port cluster info | grep -q cluster_state:ok" 300
    done
    REDIS_URL="redis+cluster://127.0.0.1:${NODE_PORTS[0]},127.0.0.1:${NODE_PORTS[1]}"
}

start_single() {
    start_redis
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
}

# With --ingest-cpu, the subshell joins the instance's cgroup before it execs twin-ingest, so
# the supervisor and the workers it forks are all under the one quota.
start_ingests() {
    local n=$1 kind=$2 i port
    for i in $(seq 1 "$n"); do
        port=$(free_port)
        CG_DIR=""
        if [ -n "$INGEST_CPU" ]; then cg_make "$kind$n-$i"; fi
        (
            if [ -n "$CG_DIR" ]; then
                echo "$BASHPID" >"$CG_DIR/cgroup.procs" || { echo "cannot join $CG_DIR" >&2; exit 1; }
            fi
            exec env TWIN_MQTT_URL="mqtt://127.0.0.1:$MQTT_PORT" TWIN_REDIS_URL="$REDIS_URL" \
                TWIN_INSTANCE="$kind$n-$i" TWIN_METRICS_PORT="$port" TWIN_INGEST_WORKERS="$WORKERS" \
                "$INGEST"
        ) >>"$TMP/ingest-$kind$n-$i.log" 2>&1 &
        INGEST_PIDS+=($!) INGEST_PORTS+=("$port") INGEST_NAMES+=("$kind$n-$i")
        wait_for "curl -sf http://127.0.0.1:$port/healthz" 300
    done
}

redis_pids() { if [ -n "$REDIS_PID" ]; then echo "$REDIS_PID"; fi; for p in "${NODE_PIDS[@]}"; do echo "$p"; done; }
ingest_all_pids() { local p; for p in "${INGEST_PIDS[@]}"; do echo "$p"; pgrep -P "$p" || true; done; }
sum_ticks() { local s=0 p; for p in "$@"; do s=$((s + $(cpu_ticks "$p"))); done; echo "$s"; }

# "mosquitto redis ingest loadgen idle" cumulative ticks, then the cgroups' "periods
# throttled"; $1: the loadgen's pid.
snapshot() {
    # shellcheck disable=SC2046
    echo "$(cpu_ticks "$MOSQ_PID") $(sum_ticks $(redis_pids)) $(sum_ticks $(ingest_all_pids))" \
        "$(sum_ticks "$1" $(pgrep -P "$1" || true)) $(idle_ticks) $(cg_throttling)"
}

declare -A R
# Rows are completed at the end, when every phase's msg/s is known: @RATIO@ becomes the
# phase's msg/s over the 1-instance phase of the same kind (ROW_NAMES, ROW_KINDS).
ROWS=() ROW_NAMES=() ROW_KINDS=()

# One max-rate phase: name, loadgen mode, instances (0: broker alone).
phase() {
    local name=$1 mode=$2 n=$3 lg a b secs t0 t1 line c
    local -a cmd=("$LOADGEN" --url "mqtt://127.0.0.1:$MQTT_PORT" --warmup "$WARMUP"
        --duration "$DURATION" --mode "$mode" --rate 0 --assets "$ASSETS")
    log "phase $name: twin-loadgen ${cmd[*]:1}"
    "${cmd[@]}" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    lg=$!
    sleep "$(awk -v w="$WARMUP" 'BEGIN{print w + 0.3}')"
    a=$(snapshot "$lg"); t0=$(date +%s.%N)
    sleep "$(awk -v d="$DURATION" 'BEGIN{print d - 1}')"
    b=$(snapshot "$lg"); t1=$(date +%s.%N)
    wait "$lg" || true
    line=$(grep '^RESULT' "$TMP/$name.out" || true)
    ROW_NAMES+=("$name") ROW_KINDS+=("${name%-*}")
    [ -n "$line" ] || {
        log "phase $name: loadgen failed"
        ROWS+=("| $name | $n | failed | | | | | | | | | |${INGEST_CPU:+ |}"); return 0
    }
    for c in ${line#RESULT }; do R[$name.${c%%=*}]=${c#*=}; done
    secs=$(awk -v x="$t0" -v y="$t1" 'BEGIN{print y - x}')
    read -r -a A <<<"$a"; read -r -a B <<<"$b"
    local tp=${R[$name.throughput]} hz
    hz=$(getconf CLK_TCK)
    # % of one core, and µs of CPU per message, per process kind.
    local cpu=() us=() k
    for k in 0 1 2 3; do
        cpu[k]=$(awk -v d=$((B[k] - A[k])) -v s="$secs" -v hz="$hz" 'BEGIN{printf "%.0f", 100 * d / hz / s}')
        us[k]=$(awk -v d=$((B[k] - A[k])) -v s="$secs" -v hz="$hz" -v t="$tp" \
            'BEGIN{printf "%.1f", (t > 0 ? 1e6 * d / hz / s / t : 0)}')
    done
    local busy per_inst raw
    busy=$(awk -v d=$((B[4] - A[4])) -v s="$secs" -v hz="$hz" -v n="$(nproc)" 'BEGIN{printf "%.0f", 100 * n - 100 * d / hz / s}')
    # Busy time of the machine not spent in the benchmark's processes: other work.
    busy="$busy ($(awk -v b="$busy" -v m="${cpu[0]}" -v r="${cpu[1]}" -v i="${cpu[2]}" -v l="${cpu[3]}" \
        'BEGIN{o = b - m - r - i - l; printf "%.0f", (o > 0 ? o : 0)}') other)"
    per_inst=$(awk -v c="${cpu[2]}" -v n="$n" 'BEGIN{printf "%s", (n > 0 ? sprintf("%.0f", c / n) : "-")}')
    raw=$(awk -v t="$tp" -v r="${R[a.throughput]:-0}" 'BEGIN{printf "%.0f %%", (r > 0 ? 100 * t / r : 0)}')
    # With --ingest-cpu: share of the quota periods in which an instance was throttled.
    local thr=""
    if [ -n "$INGEST_CPU" ]; then
        thr=" $(awk -v p=$((B[5] - A[5])) -v t=$((B[6] - A[6])) \
            'BEGIN{if (p > 0) printf "%.0f %%", 100 * t / p; else printf "-"}') |"
    fi
    ROWS+=("| $name | $n | $tp | $raw | @RATIO@ | ${R[$name.lost]} | ${R[$name.p99_ms]} | ${cpu[0]} (${us[0]}) | ${cpu[1]} (${us[1]}) | ${cpu[2]} (${us[2]}); $per_inst per instance |$thr ${cpu[3]} (${us[3]}) | $busy |")
}

main() {
    local n kind
    wait_idle
    log "temporary directory $TMP"
    start_mosquitto
    phase a broker 0
    for kind in single cluster; do
        if [ "$kind" = single ]; then start_single; else start_cluster; fi
        for n in $INSTANCES; do
            start_ingests "$n" "$kind"
            phase "$kind-$n" ingest "$n"
            stop_ingests
        done
        stop_redis_all
    done
    echo "### Scale-out benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "- Command: \`$COMMAND\` (build: $BUILD, $(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt" 2>/dev/null))"
    echo "- Machine: nproc $(nproc), $(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo), kernel $(uname -r); busy before the run: ${BUSY_BEFORE} % of one core${BUSY_NOTE}"
    echo "- Load: twin-loadgen at max rate (at most 1,000 in flight), $ASSETS assets, 4 samples, QoS 1 both ways; each twin-ingest instance with $WORKERS workers; single = one redis-server (deploy/redis.conf, AOF everysec); cluster = 3 masters, no replicas, same config"
    local thr_head="" thr_rule=""
    if [ -n "$INGEST_CPU" ]; then
        local how="cpu.cfs_quota_us $CG_QUOTA per cpu.cfs_period_us $CG_PERIOD"
        [ "$CG_VERSION" = v2 ] && how="cpu.max \"$CG_QUOTA $CG_PERIOD\""
        echo "- Ingest capped: each twin-ingest instance (supervisor and its $WORKERS workers together) in a cgroup $CG_VERSION of its own with $how, i.e. at most $INGEST_CPU core; mosquitto, Redis and twin-loadgen uncapped. Throttled = share of the quota periods in which an instance used up its quota"
        thr_head=" ingest throttled |" thr_rule="---|"
    fi
    echo
    echo "| phase | ingest instances | msg/s | of broker alone | x of 1 instance | lost | p99 ms | mosquitto % (µs/msg) | redis, all nodes % (µs/msg) | twin-ingest % (µs/msg) |$thr_head twin-loadgen % (µs/msg) | machine busy % (other work) |"
    echo "|---|---|---|---|---|---|---|---|---|---|$thr_rule---|---|"
    local i one ratio
    for i in "${!ROWS[@]}"; do
        one=${R[${ROW_KINDS[i]}-1.throughput]:-0}
        ratio=$(awk -v t="${R[${ROW_NAMES[i]}.throughput]:-0}" -v o="$one" \
            'BEGIN{if (o > 0 && t > 0) printf "%.2f", t / o; else printf "-"}')
        printf '%s\n' "${ROWS[i]/@RATIO@/$ratio}"
    done
}

main
