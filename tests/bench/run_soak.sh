#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Soaks the whole pipeline (mosquitto, redis, twin-ingest, twin-predictor, twin-scenario) under a
# steady twin-loadgen load for a fixed time on private loopback instances, sampling memory,
# queues, CPU and latency every 10 s, and prints a markdown block with the trend of each series.
#
# Usage: tests/bench/run_soak.sh [--duration S] [--rate R] [--assets N] [--workers N]
#                               [--history-maxlen N] [--scenario-every S] [--interval S]
#                               [--table-every S] [--build DIR] [--wait-idle S] [--keep]
#   --duration S        seconds of load (default 600); trends are fitted over the second half
#   --rate R            Telemetry msg/s, paced, QoS 1, 4 signals each (default 2000)
#   --assets N          assets, round robin (default 1000)
#   --workers N         TWIN_INGEST_WORKERS (default 4)
#   --history-maxlen N  TWIN_INGEST_HISTORY_MAXLEN (default 300, so the streams reach their cap
#                       within the first quarter of a 600 s run at 2 msg/s per asset; 0: the
#                       service default, 10000, which the run would not reach)
#   --scenario-every S  one small `twinctl scenario run` every S s (default 60; 0: none)
#   --interval S        sampling period (default 10)
#   --table-every S     rows of the printed sample tables (default 60; first and last always)
#   --build DIR         build tree with bin/twin-ingest, twin-predictor, twin-scenario, twinctl
#                       and twin-loadgen (default build/; use a Release tree)
#   --wait-idle S       wait up to S s (default 60) for the machine to be idle (< 20 % busy)
#   --keep              keep the temporary directory (logs, samples, smaps, latency log)
# Bounded: normally wait-idle + duration + ~30 s; every wait has a limit (loadgen drain 60 s,
# predictor catch-up 60 s, each stop 15 s), so never more than wait-idle + duration + ~6 min.
# Everything it starts is stopped on exit by PID. Not part of the CTest suite.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/bench/bench_lib.sh
source "$ROOT/tests/bench/bench_lib.sh"
BUILD=$ROOT/build
DURATION=600
RATE=2000
ASSETS=1000
WORKERS=4
HISTORY_MAXLEN=300
SCEN_EVERY=60
INTERVAL=10
TABLE_EVERY=60
WAIT_IDLE=60
KEEP=0
DRAIN_S=60       # loadgen --drain-timeout: most seconds to wait for TwinStates after the load
CATCHUP_S=60     # most seconds to wait for the predictor after the loadgen's exit
PREFIX=soak-     # asset ids soak-0 ... soak-<N-1>
COMMAND="$0 $*"

while [ $# -gt 0 ]; do
    case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --assets) ASSETS=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --history-maxlen) HISTORY_MAXLEN=$2; shift 2 ;;
    --scenario-every) SCEN_EVERY=$2; shift 2 ;;
    --interval) INTERVAL=$2; shift 2 ;;
    --table-every) TABLE_EVERY=$2; shift 2 ;;
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --wait-idle) WAIT_IDLE=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "run_soak.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
for v in DURATION RATE ASSETS WORKERS HISTORY_MAXLEN SCEN_EVERY INTERVAL TABLE_EVERY WAIT_IDLE; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "run_soak.sh: ${v,,} must be a whole number" >&2; exit 2; }
done
if [ "$INTERVAL" -lt 2 ] || [ "$DURATION" -lt $((4 * INTERVAL)) ] || [ "$RATE" -eq 0 ]; then
    echo "run_soak.sh: need --interval >= 2, --duration >= 4 intervals, --rate > 0" >&2; exit 2
fi

LOADGEN=$BUILD/bin/twin-loadgen
INGEST=$BUILD/bin/twin-ingest
PREDICTOR=$BUILD/bin/twin-predictor
SCENARIO=$BUILD/bin/twin-scenario
TWINCTL=$BUILD/bin/twinctl
require_programs "$LOADGEN" "$INGEST" "$PREDICTOR" "$SCENARIO" "$TWINCTL"
for tool in mosquitto mosquitto_sub redis-server redis-cli curl ss; do
    command -v "$tool" >/dev/null || { echo "run_soak.sh: $tool is not installed" >&2; exit 2; }
done

TMP=$(mktemp -d /tmp/twin-soak.XXXXXX)
MOSQ_PID="" REDIS_PID="" INGEST_PID="" PRED_PID="" SCEN_PID="" LOADGEN_PID="" SCENLOOP_PID=""
INGEST_PORT="" PRED_PORT="" SCEN_PORT=""

cleanup() {
    stop_pid "$SCENLOOP_PID"
    stop_pid "$LOADGEN_PID"
    stop_pid "$SCEN_PID"
    stop_pid "$PRED_PID"
    stop_pid "$INGEST_PID"
    stop_pid "$MOSQ_PID"
    stop_pid "$REDIS_PID"
    finish_tmp
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- probes -----------------------------------------------------------------------------------

# Several metrics from one scrape of the /metrics at port $1, each summed over its label sets:
# one value per name, 0 when the scrape fails.
prom() {
    local port=$1
    shift
    local out=""
    [ -n "$port" ] && out=$(curl -sf --max-time 2 "http://127.0.0.1:$port/metrics" 2>/dev/null || true)
    awk -v names="$*" 'BEGIN { n = split(names, k, " ") }
        { for (i = 1; i <= n; i++) if ($1 == k[i] || index($1, k[i] "{") == 1) s[i] += $2 }
        END { for (i = 1; i <= n; i++) printf "%.0f ", s[i] + 0; print "" }' <<<"$out"
}

# "ok error" requests of twin-scenario (the outcome-labelled counter).
scen_requests() {
    local out=""
    [ -n "$SCEN_PORT" ] && out=$(curl -sf --max-time 2 "http://127.0.0.1:$SCEN_PORT/metrics" 2>/dev/null || true)
    awk '/^twin_scenario_requests_total\{outcome="ok"\}/ { o = $2 }
         /^twin_scenario_requests_total\{outcome="error"\}/ { e = $2 }
         END { printf "%d %d", o, e }' <<<"$out"
}

# VmRSS of one process, kB (0 when it is gone).
rss_kb() {
    local v=0
    [ -n "${1:-}" ] && v=$(awk '/^VmRSS:/ { r = $2 } END { print r + 0 }' "/proc/$1/status" 2>/dev/null) || v=0
    echo "${v:-0}"
}

# "VmRSS-sum PSS-sum processes" of twin-ingest's processes (supervisor and workers), kB.
ingest_mem() {
    local rss=0 pss=0 n=0 p v
    for p in $(ingest_pids); do
        v=$(rss_kb "$p"); rss=$((rss + v))
        v=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
        pss=$((pss + ${v:-0})); n=$((n + 1))
    done
    echo "$rss $pss $n"
}

# The loadgen's processes: the coordinator and its forked publisher and subscriber.
loadgen_pids() {
    [ -n "$LOADGEN_PID" ] || return 0
    echo "$LOADGEN_PID"
    pgrep -P "$LOADGEN_PID" || true
}

sum_over() { local fn=$1 sum=0 p; shift; for p in "$@"; do sum=$((sum + $($fn "$p"))); done; echo "$sum"; }

# Mosquitto's own $SYS figures (published every sys_interval, 10 s; retained, so one
# subscription returns the latest at once): "heap store retained store_bytes dropped clients".
# Only retained copies are read (--retained-only: a live update ends the read) and only the
# first per topic; a topic that did not come is -1 (missing), never 0. Mosquitto 2.0 publishes
# a $SYS value only when it changed, with a 60 s message expiry (sys_tree.c), so a value that
# stayed the same for a minute is missing: sys_values() then keeps the last one seen.
# shellcheck disable=SC2016 # literal $SYS topics
SYS_TOPICS=('$SYS/broker/heap/current' '$SYS/broker/store/messages/count'
    '$SYS/broker/retained messages/count' '$SYS/broker/store/messages/bytes'
    '$SYS/broker/publish/messages/dropped' '$SYS/broker/clients/connected')
mosq_sys() {
    local -a args=()
    local t
    for t in "${SYS_TOPICS[@]}"; do args+=(-t "$t"); done
    { timeout 5 mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -i "soak-sys-$$" -v --retained-only \
        -C "${#SYS_TOPICS[@]}" -W 3 "${args[@]}" 2>/dev/null || true; } |
        awk -v topics="${SYS_TOPICS[*]}" '
            { k = substr($0, 1, length($0) - length($NF) - 1); if (!(k in v)) v[k] = $NF }
            END {
                n = split("heap/current store/messages/count retained@messages/count store/messages/bytes publish/messages/dropped clients/connected", t, " ")
                for (i = 1; i <= n; i++) { k = "$SYS/broker/" t[i]; gsub("@", " ", k)
                    printf "%s%s", (i > 1 ? " " : ""), (k in v && v[k] ~ /^[0-9]+$/ ? v[k] : -1) }
            }'
}

# mosq_sys with each missing value replaced by the last one seen (sampling every < 60 s sees
# every publication). Runs in the calling shell: SYS_LAST keeps the values between samples.
declare -a SYS_LAST=()
sys_values() {
    local -a v
    local i
    read -r -a v <<<"$(mosq_sys)"
    for i in 0 1 2 3 4 5; do
        if [ "${v[i]:--1}" -lt 0 ]; then v[i]=${SYS_LAST[i]:--1}; else SYS_LAST[i]=${v[i]}; fi
    done
    SYS_NOW="${v[*]}"
}

# "used_memory used_memory_rss aof_current_size" of Redis, bytes.
redis_info() {
    redis-cli -p "$REDIS_PORT" INFO 2>/dev/null | tr -d '\r' |
        awk -F: '$1 == "used_memory" { u = $2 } $1 == "used_memory_rss" { r = $2 }
                 $1 == "aof_current_size" { a = $2 } END { printf "%d %d %d", u, r, a }' || true
}

# "sum max" of the history stream lengths of every load asset (XLEN of each, one pipeline).
history_len() {
    redis-cli -p "$REDIS_PORT" <"$TMP/xlen.cmds" 2>/dev/null |
        awk '$1 ~ /^[0-9]+$/ { s += $1; if ($1 > m) m = $1 } END { printf "%d %d", s, m }' || true
}

# A process tree's ticks vanish when it exits: keep the largest value seen per name.
declare -A TICKS_MAX
ticks_kept() {
    local v
    v=$(tree_ticks "$2")
    [ "$v" -gt "${TICKS_MAX[$1]:-0}" ] && TICKS_MAX[$1]=$v
    echo "${TICKS_MAX[$1]:-0}"
}

COLUMNS="t epoch rss_mosq rss_redis rss_ingest pss_ingest procs_ingest rss_pred rss_scen rss_loadgen mosq_heap mosq_store mosq_retained mosq_store_bytes mosq_dropped mosq_clients redis_used redis_rss aof_size hist_sum hist_max pred_queue ing_states pred_states ing_received ing_applied ing_redis_errors scen_ok scen_error cpu_mosq cpu_redis cpu_ingest cpu_pred cpu_scen cpu_loadgen idle"

# One line of $COLUMNS; $1: seconds since the load started (or a label for the last one).
sample() {
    local t=$1 epoch ing pred scen ing_states
    epoch=$(date +%s.%N)
    local -a lpids
    mapfile -t lpids < <(loadgen_pids)
    # The predictor first: ingest's count read after it makes the backlog an upper bound.
    pred=$(prom "$PRED_PORT" twin_predictor_queue_depth twin_predictor_states_total)
    ing=$(prom "$INGEST_PORT" twin_ingest_state_published_total twin_ingest_state_republished_total \
        twin_ingest_received_total twin_ingest_applied_total twin_ingest_redis_errors_total)
    ticks_kept mosq "$MOSQ_PID" >/dev/null; ticks_kept redis "$REDIS_PID" >/dev/null
    ticks_kept ingest "$INGEST_PID" >/dev/null; ticks_kept pred "$PRED_PID" >/dev/null
    ticks_kept scen "$SCEN_PID" >/dev/null; ticks_kept loadgen "$LOADGEN_PID" >/dev/null
    sys_values
    scen=$(scen_requests)
    local -a I P
    read -r -a I <<<"$ing"
    read -r -a P <<<"$pred"
    ing_states=$(( ${I[0]:-0} + ${I[1]:-0} ))
    printf '%s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s\n' \
        "$t" "$epoch" "$(rss_kb "$MOSQ_PID")" "$(rss_kb "$REDIS_PID")" "$(ingest_mem)" \
        "$(rss_kb "$PRED_PID")" "$(rss_kb "$SCEN_PID")" "$(sum_over rss_kb "${lpids[@]}")" \
        "$SYS_NOW" "$(redis_info)" "$(history_len)" "${P[0]:-0}" "$ing_states" "${P[1]:-0}" \
        "${I[2]:-0}" "${I[3]:-0}" "${I[4]:-0}" "$scen" \
        "${TICKS_MAX[mosq]:-0}" "${TICKS_MAX[redis]:-0}" "${TICKS_MAX[ingest]:-0}" \
        "${TICKS_MAX[pred]:-0}" "${TICKS_MAX[scen]:-0}" "${TICKS_MAX[loadgen]:-0}" "$(idle_ticks)"
}

# Full smaps of every service process, for finding a growing mapping: $1 names the moment.
save_smaps() {
    local tag=$1 p name
    mkdir -p "$TMP/smaps"
    for name in mosquitto:$MOSQ_PID redis:$REDIS_PID predictor:$PRED_PID scenario:$SCEN_PID; do
        p=${name#*:}
        if [ -n "$p" ]; then cp "/proc/$p/smaps" "$TMP/smaps/${name%%:*}.$tag" 2>/dev/null || true; fi
    done
    for p in $(ingest_pids); do
        cp "/proc/$p/smaps" "$TMP/smaps/ingest-$(cat "/proc/$p/comm" 2>/dev/null || echo "$p").$tag" \
            2>/dev/null || true
    done
}

# The 3 mappings of smaps files $1 -> $2 whose Rss (or field $3, e.g. Pss) grew most:
# "name +kB" (anonymous ones by start address).
smaps_growth() {
    local field=${3:-Rss}
    if [ ! -f "$1" ] || [ ! -f "$2" ]; then echo "no smaps"; return; fi
    awk -v fld="$field:" 'FNR == 1 { f++ }
         /^[0-9a-f]+-[0-9a-f]+ / { split($1, a, "-"); key = (NF >= 6 ? $6 : "anon@" a[1]) }
         $1 == fld { r[f, key] += $2; keys[key] = 1 }
         END { for (k in keys) if (r[2, k] > r[1, k]) printf "%d %s\n", r[2, k] - r[1, k], k }' "$1" "$2" |
        sort -rn | head -3 | awk '{ printf "%s%s +%d kB", (NR > 1 ? ", " : ""), $2, $1 } END { if (NR == 0) printf "no mapping grew" }'
}

# For each process whose memory series "GROWS": the mappings that grew most in its smaps
# between the start of the second half and the end of the load.
growth_notes() {
    local s v who field seen=" "
    for s in rss_mosq mosq_heap rss_redis redis_used rss_ingest pss_ingest rss_pred rss_scen; do
        v=$(trend_row "$s" x mem | awk -F'|' '{ print $7 }')
        case $v in *GROWS*) ;; *) continue ;; esac
        case $s in
        rss_mosq | mosq_heap) who=mosquitto ;; rss_redis | redis_used) who=redis ;;
        rss_ingest | pss_ingest) who=ingest ;; rss_pred) who=predictor ;; *) who=scenario ;;
        esac
        field=Rss
        [ "$s" = pss_ingest ] && field=Pss
        case $seen in *" $who "*) continue ;; esac
        seen="$seen$who "
        if [ "$who" != ingest ]; then
            echo "- $who: Rss growth by mapping (smaps, t=$HALF s -> $DURATION s): $(smaps_growth "$TMP/smaps/$who.half" "$TMP/smaps/$who.end")"
            continue
        fi
        local h name
        for h in "$TMP"/smaps/ingest-*.half; do
            [ -f "$h" ] || continue
            name=${h##*/ingest-}
            echo "- twin-ingest process ${name%.half}: $field growth by mapping (smaps, t=$HALF s -> $DURATION s): $(smaps_growth "$h" "${h%.half}.end" "$field")"
        done
    done
}

# ---- the run ----------------------------------------------------------------------------------

start_services() {
    local -a hist=()
    [ "$HISTORY_MAXLEN" -gt 0 ] && hist=(TWIN_INGEST_HISTORY_MAXLEN="$HISTORY_MAXLEN")
    INGEST_PORT=$(free_port)
    start_twin "$INGEST_PORT" "$INGEST" "$TMP/ingest.log" TWIN_INGEST_WORKERS="$WORKERS" "${hist[@]}"
    INGEST_PID=$TWIN_PID
    PRED_PORT=$(free_port)
    start_twin "$PRED_PORT" "$PREDICTOR" "$TMP/predictor.log"
    PRED_PID=$TWIN_PID
    SCEN_PORT=$(free_port)
    start_twin "$SCEN_PORT" "$SCENARIO" "$TMP/scenario.log" TWIN_MODEL="$ROOT/deploy/plant.json"
    SCEN_PID=$TWIN_PID
}

SCEN_ARGS=(scenario run --demand 1.2 --horizon 1d --replications 5 --id soak-scn --quiet --timeout 50s)

# A background loop: one small what-if request every $SCEN_EVERY s (same id each time, so the
# retained result and the stored key are replaced, not accumulated); "rc seconds" per request.
start_scenario_loop() {
    [ "$SCEN_EVERY" -gt 0 ] || return 0
    (
        child=""
        trap '[ -n "$child" ] && kill "$child" 2>/dev/null; exit 0' TERM
        next=$(date +%s)
        while :; do
            next=$((next + SCEN_EVERY))
            t0=$(date +%s.%N)
            TWIN_MQTT_URL="mqtt://127.0.0.1:$MQTT_PORT" "$TWINCTL" "${SCEN_ARGS[@]}" \
                >>"$TMP/twinctl.out" 2>&1 &
            child=$!
            rc=0; wait "$child" || rc=$?
            child=""
            echo "$rc $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b - a}')" \
                >>"$TMP/twinctl.rc"
            now=$(date +%s)
            [ "$next" -gt "$now" ] && { sleep $((next - now)) & child=$!; wait "$child" || true; child=""; }
        done
    ) &
    SCENLOOP_PID=$!
}

# Samples every $INTERVAL s while the loadgen runs (bounded: it is stopped at duration + drain
# + 30 s), then waits (bounded) for the predictor to receive every TwinState ingest published.
run_load() {
    local k=0 t_start next now rc=0
    LG_CMD=("$LOADGEN" --url "mqtt://127.0.0.1:$MQTT_PORT" --mode ingest --rate "$RATE"
        --assets "$ASSETS" --warmup 0 --duration "$DURATION" --drain-timeout "$DRAIN_S"
        --idle-timeout 10 --prefix "$PREFIX" --latency-log "$TMP/latency.log")
    sample 0 >>"$TMP/samples"
    log "load: twin-loadgen ${LG_CMD[*]:1}"
    "${LG_CMD[@]}" >"$TMP/loadgen.out" 2>"$TMP/loadgen.err" &
    LOADGEN_PID=$!
    t_start=$(date +%s.%N)
    start_scenario_loop
    while :; do
        k=$((k + 1))
        next=$(awk -v a="$t_start" -v k="$k" -v i="$INTERVAL" 'BEGIN{printf "%.3f", a + k * i}')
        now=$(date +%s.%N)
        sleep "$(awk -v n="$next" -v c="$now" 'BEGIN{d = n - c; printf "%.3f", (d > 0 ? d : 0)}')"
        kill -0 "$LOADGEN_PID" 2>/dev/null || break
        if [ $((k * INTERVAL)) -gt $((DURATION + DRAIN_S + 30)) ]; then
            log "loadgen still running $((k * INTERVAL)) s after the start: stopping it"
            stop_pid "$LOADGEN_PID"
            break
        fi
        [ $((k * INTERVAL)) -le "$DURATION" ] || continue
        sample $((k * INTERVAL)) >>"$TMP/samples"
        [ $((k * INTERVAL)) -eq "$HALF" ] && save_smaps half
        [ $((k * INTERVAL)) -eq "$DURATION" ] && save_smaps end
        [ $((k * INTERVAL % 60)) -eq 0 ] && log "t=$((k * INTERVAL)) s: $(tail -1 "$TMP/samples" | cut -d' ' -f3-10)"
    done
    wait "$LOADGEN_PID" || rc=$?
    LOADGEN_RC=$rc
    LOADGEN_PID=""
    T_LOAD_END=$(date +%s.%N)
    stop_pid "$SCENLOOP_PID"; SCENLOOP_PID=""
    catch_up
    sample end >>"$TMP/samples"
}

# Until the predictor has received as many TwinStates as ingest published and neither moved
# for 2 s; at most $CATCHUP_S s.
catch_up() {
    local i prev="" cur
    CATCHUP=">$CATCHUP_S s"
    for i in $(seq 1 $((CATCHUP_S * 2))); do
        cur=$(echo "$(prom "$INGEST_PORT" twin_ingest_state_published_total twin_ingest_state_republished_total) $(prom "$PRED_PORT" twin_predictor_states_total)" |
            awk '{ printf "%d %d", $1 + $2, $3 }')
        if [ "${cur#* }" -ge "${cur% *}" ] && [ "$cur" = "$prev" ]; then
            CATCHUP=$(awk -v a="$T_LOAD_END" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f s", b - a}')
            return 0
        fi
        prev=$cur
        sleep 1
    done
    log "predictor still behind ingest after ${CATCHUP_S} s: $cur"
}

# The analysis and the report: tests/bench/soak_report.sh.
# shellcheck source=tests/bench/soak_report.sh
source "$ROOT/tests/bench/soak_report.sh"

main() {
    CPU_MODEL=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
    MOSQ_VERSION=$(mosquitto -h 2>/dev/null | awk '/version/{print $3; exit}' || true)
    REDIS_VERSION=$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')
    PAHO_VERSION=$(dpkg-query -W -f='${Version}' libpaho-mqtt1.3 2>/dev/null || echo unknown)
    # What the binaries were built from: the last commit before they were linked, and whether
    # sources changed after it (HEAD may have moved on since the build).
    local bin_time newer
    bin_time=$(stat -c %Y "$INGEST")
    SOURCE="binaries built $(date -u -d "@$bin_time" +%Y-%m-%dT%H:%MZ), last commit before: $(git -C "$ROOT" log -1 --before="@$bin_time" --format=%h 2>/dev/null || echo unknown); HEAD now $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    newer=$(cd "$ROOT" && find services proto cmake CMakeLists.txt -type f -newer "$INGEST" 2>/dev/null | wc -l)
    [ "$newer" -eq 0 ] || SOURCE="$SOURCE; $newer files under services/ proto/ cmake/ are newer than the binaries"
    git -C "$ROOT" diff --quiet HEAD -- services proto cmake CMakeLists.txt 2>/dev/null ||
        SOURCE="$SOURCE; uncommitted changes under services/ proto/ cmake/"
    BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
    HALF=$(( (DURATION / 2 + INTERVAL - 1) / INTERVAL * INTERVAL ))
    local i
    for i in $(seq 0 $((ASSETS - 1))); do echo "XLEN twin:{$PREFIX$i}:history"; done >"$TMP/xlen.cmds"
    echo "$COLUMNS" >"$TMP/samples.columns"
    wait_idle
    LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
    log "temporary directory $TMP"
    start_redis
    start_mosquitto
    log "mosquitto :$MQTT_PORT, redis :$REDIS_PORT"
    start_services
    log "ingest :$INGEST_PORT (pid $INGEST_PID), predictor :$PRED_PORT (pid $PRED_PID), scenario :$SCEN_PORT (pid $SCEN_PID)"
    sleep 2
    run_load
    ALIVE=""
    local n
    for n in mosquitto:$MOSQ_PID redis:$REDIS_PID twin-ingest:$INGEST_PID twin-predictor:$PRED_PID twin-scenario:$SCEN_PID; do
        if kill -0 "${n#*:}" 2>/dev/null; then ALIVE="$ALIVE ${n%%:*}"; else ALIVE="$ALIVE ${n%%:*}(GONE)"; fi
    done
    ALIVE=${ALIVE# }
    FINAL_ING=$(prom "$INGEST_PORT" twin_ingest_received_total twin_ingest_applied_total \
        twin_ingest_duplicate_total twin_ingest_rejected_total twin_ingest_state_published_total \
        twin_ingest_state_republished_total twin_ingest_state_publish_failed_total \
        twin_ingest_redis_errors_total twin_ingest_worker_restarts_total)
    FINAL_PRED=$(prom "$PRED_PORT" twin_predictor_states_total twin_predictor_rejected_total \
        twin_predictor_refused_total twin_predictor_predictions_published_total \
        twin_predictor_publish_failed_total twin_predictor_persist_total \
        twin_predictor_persist_errors_total twin_predictor_backpressure_waits_total)
    FINAL_SCEN="$(scen_requests) $(prom "$SCEN_PORT" twin_scenario_rejected_total \
        twin_scenario_store_errors_total twin_scenario_publish_failed_total)"
    FINAL_REDIS=$(redis-cli -p "$REDIS_PORT" INFO 2>/dev/null | tr -d '\r' |
        awk -F: '$1 == "used_memory_peak" { p = $2 } $1 == "total_forks" { f = $2 }
                 $1 == "aof_rewrites" { r = $2 } $1 == "mem_fragmentation_ratio" { m = $2 }
                 END { printf "peak used_memory %.1f MB, fragmentation ratio %s, %d forks (%s AOF rewrites)", p / 1048576, m, f, (r == "" ? "?" : r) }' || true)
    # Stop the services before the analysis (sorting the latency log takes a core for a while).
    stop_pid "$SCEN_PID"; SCEN_PID=""
    stop_pid "$PRED_PID"; PRED_PID=""
    stop_pid "$INGEST_PID"; INGEST_PID=""
    stop_pid "$MOSQ_PID"; MOSQ_PID=""
    stop_pid "$REDIS_PID"; REDIS_PID=""
    grep -v '^RESULT' "$TMP/loadgen.out" >&2 || true
    [ -s "$TMP/loadgen.err" ] && sed 's/^/  loadgen: /' "$TMP/loadgen.err" >&2
    latency_windows
    report
}

main
