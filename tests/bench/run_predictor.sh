#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmarks twin-predictor end to end (behind twin-ingest) and in isolation against the broker
# alone on private loopback mosquitto and redis-server instances; prints a markdown block.
#
# Usage: tests/bench/run_predictor.sh [--duration S] [--assets N] [--rss-assets N] [--low-pct P]
#                                    [--build DIR] [--wait-idle S] [--keep]
#   --duration S   measured seconds of each paced phase (b<P>, c<P>, c) (default 20)
#   --assets N     assets in phases a-c, 4 signals each (default 1000)
#   --rss-assets N assets seen by a fresh predictor in phase (d) (default 10000)
#   --low-pct P    also run ingest alone and ingest + predictor paced at P % of (b) (default 60)
#   --build DIR    build tree holding bin/twin-ingest, bin/twin-predictor, bin/twin-loadgen and
#                  bin/pred-bench (default build/; use a Release tree)
#   --wait-idle S  wait up to S s (default 60) for the machine to be idle (< 20 % busy) first
#   --keep         keep the temporary directory (logs, loadgen output, samples) after the run
# Phases: (a) broker alone, max rate; (b) twin-ingest alone, max rate, and (b<P>) paced at P % of
# it; (c<P>) and (c) twin-ingest + twin-predictor paced at P % and 90 % of (b), each followed by
# the predictor's catch-up; (d) a fresh predictor's RSS per (asset, signal) after N assets; then
# pred-bench (the engine on one core, against its own raw loop limit) with the services stopped.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/bench/bench_lib.sh
source "$ROOT/tests/bench/bench_lib.sh"
BUILD=$ROOT/build
DURATION=20
LOW_PCT=60         # the second ingest + predictor phase, % of (b)
ASSETS=1000
RSS_ASSETS=10000
MAX_S=10           # measured seconds of (a) and (b)
WARMUP=2
SAMPLE_S=0.5       # counter sampling period during a phase
CATCHUP_LIMIT=120  # most seconds to wait for the predictor after a phase
BENCH_SIGNALS=10000
BENCH_STEPS=500
KEEP=0
WAIT_IDLE=60
COMMAND="$0 $*"

while [ $# -gt 0 ]; do
    case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --assets) ASSETS=$2; shift 2 ;;
    --rss-assets) RSS_ASSETS=$2; shift 2 ;;
    --low-pct) LOW_PCT=$2; shift 2 ;;
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --wait-idle) WAIT_IDLE=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "run_predictor.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

LOADGEN=$BUILD/bin/twin-loadgen
INGEST=$BUILD/bin/twin-ingest
PREDICTOR=$BUILD/bin/twin-predictor
PREDBENCH=$BUILD/bin/pred-bench
require_programs "$LOADGEN" "$INGEST" "$PREDICTOR" "$PREDBENCH"

TMP=$(mktemp -d /tmp/twin-predbench.XXXXXX)
MOSQ_PID="" REDIS_PID="" INGEST_PID="" PRED_PID="" SAMPLER_PID="" LOADGEN_PID=""
INGEST_PORT="" PRED_PORT=""

cleanup() {
    stop_pid "$SAMPLER_PID"
    stop_pid "$LOADGEN_PID"
    stop_pid "$PRED_PID"
    stop_pid "$INGEST_PID"
    stop_pid "$MOSQ_PID"
    stop_pid "$REDIS_PID"
    finish_tmp
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_ingest() {
    INGEST_PORT=$(free_port)
    start_twin "$INGEST_PORT" "$INGEST" "$TMP/ingest.log"
    INGEST_PID=$TWIN_PID
}

# The predictor with its shipped defaults (publish 1 s, persist 10 s, horizon 24 steps, queue
# 1024); the same instance name each time, so a restart resumes the same broker session.
start_predictor() {
    PRED_PORT=$(free_port)
    start_twin "$PRED_PORT" "$PREDICTOR" "$TMP/predictor.log"
    PRED_PID=$TWIN_PID
}

# "mosquitto redis ingest predictor loadgen idle" cumulative ticks; $1: the loadgen's pid
# (its publisher and subscriber are forked children; one that has exited counts in its parent).
cpu_snapshot() {
    echo "$(cpu_ticks "$MOSQ_PID") $(cpu_ticks "$REDIS_PID") $(tree_ticks "$INGEST_PID")" \
        "$(cpu_ticks "$PRED_PID") $(tree_ticks "$1") $(idle_ticks)"
}

# Sum of a counter or gauge over its label sets from the /metrics at port $1.
metric() {
    [ -n "${1:-}" ] || { echo 0; return; }
    curl -sf --max-time 2 "http://127.0.0.1:$1/metrics" 2>/dev/null |
        awk -v m="$2" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%.6f", s }'
}

# Several metrics from one scrape: metrics PORT NAME... prints one value per name.
metrics() {
    local port=$1
    shift
    if [ -z "$port" ]; then local _; for _ in "$@"; do printf '0 '; done; echo; return; fi
    curl -sf --max-time 2 "http://127.0.0.1:$port/metrics" 2>/dev/null |
        awk -v names="$*" 'BEGIN { n = split(names, k, " ") }
            { for (i = 1; i <= n; i++) if ($1 == k[i] || index($1, k[i] "{") == 1) s[i] += $2 }
            END { for (i = 1; i <= n; i++) printf "%.6f ", s[i] + 0; print "" }'
}

# TwinStates ingest has handed to the broker (first publications and settle republications):
# what a subscriber that keeps up receives. The predictor's twin_predictor_states_total is the
# matching count on its side.
ingest_states() {
    metrics "$INGEST_PORT" twin_ingest_state_published_total twin_ingest_state_republished_total |
        awk '{ printf "%d", $1 + $2 }'
}
pred_states() { metrics "$PRED_PORT" twin_predictor_states_total | awk '{ printf "%d", $1 }'; }

# Waits (bounded) until ingest and the predictor have taken nothing new for a second.
settle() {
    local prev="" cur i
    for i in $(seq 1 120); do
        cur="$(metric "$INGEST_PORT" twin_ingest_received_total) $(pred_states)"
        [ "$cur" = "$prev" ] && return 0
        prev=$cur
        sleep 1
    done
    log "settle: still moving after 120 s"
}

# Background sampler: "epoch ingest_states pred_states queue_depth" every $SAMPLE_S s.
start_sampler() {
    local out=$1
    (
        trap 'exit 0' TERM
        while :; do
            printf '%s %s %s %s\n' "$(date +%s.%N)" "$(ingest_states)" "$(pred_states)" \
                "$(metric "$PRED_PORT" twin_predictor_queue_depth | cut -d. -f1)"
            sleep "$SAMPLE_S"
        done
    ) >"$out" 2>/dev/null &
    SAMPLER_PID=$!
}

declare -A R   # R[phase.field]
declare -A CMD # CMD[phase]: the exact loadgen command
PRED_COUNTERS="twin_predictor_states_total twin_predictor_updates_total twin_predictor_predictions_published_total twin_predictor_publish_failed_total twin_predictor_rejected_total twin_predictor_backpressure_waits_total twin_predictor_refused_total twin_predictor_persist_total twin_predictor_persist_errors_total twin_predictor_observe_seconds_sum twin_predictor_observe_seconds_count"
ING_COUNTERS="twin_ingest_received_total twin_ingest_applied_total twin_ingest_state_published_total twin_ingest_state_republished_total twin_ingest_state_publish_failed_total twin_ingest_rejected_total twin_ingest_redis_errors_total"

counters_snapshot() {
    echo "$(metrics "$INGEST_PORT" $ING_COUNTERS) $(metrics "$PRED_PORT" $PRED_COUNTERS)"
}

# R[phase.<short name>] = difference of each counter between two snapshots.
record_counters() {
    local phase=$1 c i=0 short
    local -a a b
    read -r -a a <<<"$2"
    read -r -a b <<<"$3"
    for c in $ING_COUNTERS $PRED_COUNTERS; do
        short=${c#twin_}
        short=${short%_total}
        R[$phase.$short]=$(awk -v x="${a[i]:-0}" -v y="${b[i]:-0}" 'BEGIN{printf "%.6f", y - x}')
        i=$((i + 1))
    done
}

# CPU % of one core of each process between two snapshots $3 -> $4 over $2 s.
record_cpu() {
    local phase=$1 secs=$2 i name
    local -a a b names=(mosquitto redis ingest predictor loadgen)
    read -r -a a <<<"$3"
    read -r -a b <<<"$4"
    for i in 0 1 2 3 4; do
        name=${names[i]}
        R[$phase.cpu_$name]=$(awk -v d=$(( b[i] - a[i] )) -v s="$secs" -v hz="$CLK_TCK" \
            'BEGIN{printf "%.0f", 100 * d / hz / s}')
    done
    R[$phase.cpu_busy]=$(awk -v d=$(( b[5] - a[5] )) -v s="$secs" -v n="$(nproc)" -v hz="$CLK_TCK" \
        'BEGIN{printf "%.0f", 100 * n - 100 * d / hz / s}')
}

# Runs one loadgen phase. CPU and counters are taken over the loadgen's measured interval
# (after its warmup); the sampler runs over the whole phase; afterwards the predictor's
# catch-up is timed (when it runs): from the loadgen's exit (all TwinStates received by the
# loadgen) until the predictor has received as many TwinStates as ingest published since the
# phase began.
run_phase() {
    local phase=$1 warmup=$2 duration=$3 rc=0 c0 c1 k0 k1 t0 t1 c line
    shift 3
    local -a cmd=("$LOADGEN" --url "mqtt://127.0.0.1:$MQTT_PORT" --warmup "$warmup"
        --duration "$duration" "$@")
    CMD[$phase]="twin-loadgen ${cmd[*]:1}"
    settle
    log "phase $phase: ${CMD[$phase]}"
    local is0 ps0
    is0=$(ingest_states); ps0=$(pred_states)
    start_sampler "$TMP/$phase.samples"
    "${cmd[@]}" >"$TMP/$phase.out" 2>"$TMP/$phase.err" &
    LOADGEN_PID=$!
    sleep "$(awk -v w="$warmup" 'BEGIN{print w + 0.3}')"
    c0=$(cpu_snapshot "$LOADGEN_PID"); k0=$(counters_snapshot); t0=$(date +%s.%N)
    sleep "$(awk -v d="$duration" 'BEGIN{print (d > 2 ? d - 1 : d / 2)}')"
    c1=$(cpu_snapshot "$LOADGEN_PID"); k1=$(counters_snapshot); t1=$(date +%s.%N)
    wait "$LOADGEN_PID" || rc=$?
    LOADGEN_PID=""
    local t_exit
    t_exit=$(date +%s.%N)
    local secs
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b - a}')
    R[$phase.secs]=$secs
    record_cpu "$phase" "$secs" "$c0" "$c1"
    record_counters "$phase" "$k0" "$k1"
    [ -n "$PRED_PID" ] && catch_up "$phase" "$is0" "$ps0" "$t_exit"
    stop_pid "$SAMPLER_PID"; SAMPLER_PID=""
    [ -n "$PRED_PID" ] && backlog_stats "$phase" "$is0" "$ps0" "$t0" "$t1"
    grep -v '^RESULT' "$TMP/$phase.out" >&2 || true
    [ -s "$TMP/$phase.err" ] && sed 's/^/  loadgen: /' "$TMP/$phase.err" >&2
    line=$(grep '^RESULT' "$TMP/$phase.out" || true)
    [ -n "$line" ] || { log "phase $phase: loadgen failed (exit $rc)"; R[$phase.failed]=$rc; return 0; }
    for c in ${line#RESULT }; do R[$phase.${c%%=*}]=${c#*=}; done
}

# Polls every 0.1 s (bounded) until the predictor has received every TwinState ingest
# published since the phase began ($2, $3: both counters then) and ingest has published nothing
# new for a second. R[phase.catchup_s]: seconds from the loadgen's exit ($4) to the first poll
# at which the predictor had them all after ingest's last publication; backlog_exit: how many
# it still lacked at the loadgen's exit.
catch_up() {
    local phase=$1 is0=$2 ps0=$3 t_exit=$4 is ps now t_ing t_caught="" prev_is="" start
    start=$(date +%s)
    t_ing=$t_exit
    while :; do
        is=$(ingest_states); ps=$(pred_states); now=$(date +%s.%N)
        [ -n "${R[$phase.backlog_exit]:-}" ] || R[$phase.backlog_exit]=$(( (is - is0) - (ps - ps0) ))
        if [ "$is" != "$prev_is" ]; then
            [ -n "$prev_is" ] && { t_ing=$now; t_caught=""; }
            prev_is=$is
        fi
        if [ $(( ps - ps0 )) -ge $(( is - is0 )) ]; then
            [ -n "$t_caught" ] || t_caught=$now
            awk -v a="$t_ing" -v b="$now" 'BEGIN{exit !(b - a >= 1)}' && break
        else
            t_caught=""
        fi
        if [ $(( $(date +%s) - start )) -gt "$CATCHUP_LIMIT" ]; then
            log "phase $phase: predictor still $(( (is - is0) - (ps - ps0) )) TwinStates behind after ${CATCHUP_LIMIT} s"
            R[$phase.catchup_s]=">$CATCHUP_LIMIT"
            R[$phase.extra]=$(( (ps - ps0) - (is - is0) ))
            return 0
        fi
        sleep 0.1
    done
    R[$phase.catchup_s]=$(awk -v a="$t_exit" -v b="$t_caught" 'BEGIN{d = b - a; printf "%.1f", (d > 0 ? d : 0)}')
    R[$phase.ingest_after_exit]=$(awk -v a="$t_exit" -v b="$t_ing" 'BEGIN{printf "%.1f", b - a}')
    # More received than published: redeliveries (QoS 1 duplicates) or retained copies.
    R[$phase.extra]=$(( (ps - ps0) - (is - is0) ))
}

# From the samples: peak backlog (TwinStates published by ingest and not yet received by the
# predictor) and peak queue depth over the whole phase; over the measured interval [$4, $5]
# the least-squares slope of the backlog (TwinStates/s; ~0 when the predictor keeps up) and
# the backlog's mean in its first and last quarter.
backlog_stats() {
    local phase=$1 is0=$2 ps0=$3 t0=$4 t1=$5 out
    out=$(awk -v is0="$is0" -v ps0="$ps0" -v t0="$t0" -v t1="$t1" '
        NF == 4 && $2 > 0 {
            b = ($2 - is0) - ($3 - ps0)
            if (b > bmax) bmax = b
            if ($4 > qmax) qmax = $4
            if ($1 >= t0 && $1 <= t1) {
                n++; sx += $1 - t0; sy += b; sxx += ($1 - t0)^2; sxy += ($1 - t0) * b
                q = ($1 - t0) / (t1 - t0)
                if (q < 0.25) { f += b; fn++ }
                if (q >= 0.75) { l += b; ln++ }
            }
        }
        END {
            slope = (n > 1 && n * sxx - sx * sx > 0) ? (n * sxy - sx * sy) / (n * sxx - sx * sx) : 0
            printf "%d %d %.0f %.0f %.0f %d", bmax, qmax, slope, fn ? f / fn : 0, ln ? l / ln : 0, n
        }' "$TMP/$phase.samples")
    read -r R[$phase.backlog_peak_pred] R[$phase.queue_peak] R[$phase.backlog_slope] \
        R[$phase.backlog_first] R[$phase.backlog_last] R[$phase.samples] <<<"$out"
}

# VmRSS and RssAnon of the predictor, in kB.
pred_memory() {
    awk '/^VmRSS:/{r=$2} /^RssAnon:/{a=$2} END{print r + 0, a + 0}' "/proc/$PRED_PID/status" 2>/dev/null ||
        echo "0 0"
}

# Rss of the predictor's [heap] and of its other anonymous mappings, in kB.
pred_heap() {
    awk '/^[0-9a-f]+-[0-9a-f]+ / { name = $6; anon = (NF == 5 || $6 == "[heap]") }
         /^Rss:/ { if (name == "[heap]") h += $2; else if (anon) m += $2 }
         END { print h + 0, m + 0 }' "/proc/$PRED_PID/smaps" 2>/dev/null || echo "0 0"
}

rate() { awk -v n="${1:-0}" -v s="${2:-1}" 'BEGIN{printf "%.0f", (s > 0 ? n / s : 0)}'; }
pct() { awk -v x="${1:-0}" -v y="${2:-0}" 'BEGIN{if (y <= 0) printf "-"; else if (100 * x / y < 10) printf "%.1f %%", 100 * x / y; else printf "%.0f %%", 100 * x / y}'; }
fmt() { awk -v x="${1:-0}" 'BEGIN{printf "%.0f", x}'; }

cpu_row() {
    local p=$1 sum
    sum=$(( ${R[$p.cpu_mosquitto]:-0} + ${R[$p.cpu_redis]:-0} + ${R[$p.cpu_ingest]:-0} +
        ${R[$p.cpu_predictor]:-0} + ${R[$p.cpu_loadgen]:-0} ))
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$2" "${R[$p.cpu_mosquitto]:-}" \
        "${R[$p.cpu_redis]:-}" "${R[$p.cpu_ingest]:-}" "${R[$p.cpu_predictor]:-}" \
        "${R[$p.cpu_loadgen]:-}" "$(( ${R[$p.cpu_busy]:-0} - sum ))" "${R[$p.cpu_busy]:-}"
}

loadgen_row() {
    local p=$1
    if [ -n "${R[$p.failed]:-}" ]; then
        printf '| %s | loadgen failed (exit %s) | | | | | |\n' "$2" "${R[$p.failed]}"; return
    fi
    printf '| %s | %s | %s | %s/%s | %s | %s | %s |\n' "$2" "${R[$p.pub_rate]:-}" \
        "${R[$p.throughput]:-}" "${R[$p.published]:-}" "${R[$p.received]:-}" "${R[$p.lost]:-}" \
        "${R[$p.duplicates]:-}" "${R[$p.p99_ms]:-}"
}

# Per-second figures of an ingest + predictor phase into E[field] (the measured interval).
declare -A E
e2e_figures() {
    local p=$1 s=${R[$1.secs]:-1}
    E[applied]=$(rate "${R[$p.ingest_applied]:-0}" "$s")
    E[in]=$(rate "$(awk -v a="${R[$p.ingest_state_published]:-0}" -v b="${R[$p.ingest_state_republished]:-0}" 'BEGIN{print a + b}')" "$s")
    E[states]=$(rate "${R[$p.predictor_states]:-0}" "$s")
    E[updates]=$(rate "${R[$p.predictor_updates]:-0}" "$s")
    E[pred]=$(rate "${R[$p.predictor_predictions_published]:-0}" "$s")
    E[obs_ns]=$(awk -v a="${R[$p.predictor_observe_seconds_sum]:-0}" -v n="${R[$p.predictor_observe_seconds_count]:-0}" \
        'BEGIN{printf "%.0f", (n > 0 ? 1e9 * a / n : 0)}')
    E[cpu_us]=$(awk -v c="${R[$p.cpu_predictor]:-0}" -v r="${E[states]}" 'BEGIN{printf "%.0f", (r > 0 ? 1e4 * c / r : 0)}')
    local cu=${R[$p.catchup_s]:-999}
    cu=${cu#>}
    # The predictor keeps up with what ingest publishes: its backlog does not grow over the
    # measured interval, drains within 5 s, and nothing ingest published is missing.
    E[keeps]=$(verdict "${R[$p.backlog_slope]:-999} < 0.01 * ${E[in]} + 10 && ${R[$p.backlog_last]:-999} <= ${R[$p.backlog_first]:-0} + 0.05 * ${E[in]} + 50 && $cu <= 5 && ${R[$p.extra]:--1} >= 0")
    # The pipeline sustains the offered rate: ingest applies it, nothing lost, the loadgen's
    # TwinStates drain within 5 s of its last publish.
    E[sustains]=$(verdict "${E[applied]} >= 0.98 * ${R[$p.rate]:-0} && ${R[$p.lost]:-1} == 0 && ${R[$p.drain_ms]:-99999} <= 5000")
}

# The row of a paced ingest-alone phase.
paced_row() {
    local p=$1 applied
    applied=$(rate "${R[$p.ingest_applied]:-0}" "${R[$p.secs]:-1}")
    printf '| %s | ingest applied msg/s (offered %s); lost; ingest drain after the last publish; p99 | %s; %s; %s ms; %s ms | (a) %s | %s |\n' \
        "$2" "${R[$p.rate]:-?}" "$applied" "${R[$p.lost]:-?}" "${R[$p.drain_ms]:-?}" "${R[$p.p99_ms]:-?}" "$3" "$(pct "$applied" "$3")"
}

# Rows of the main table for one ingest + predictor phase.
e2e_rows() {
    local p=$1 label=$2 raw=$3
    e2e_figures "$p"
    cat <<ROWS
| $label | ingest applied msg/s (offered ${R[$p.rate]:-?}) | ${E[applied]} | (a) $raw | $(pct "${E[applied]}" "$raw") |
| | TwinStates ingest published /s (first + settle republished) | ${E[in]} | (a) $raw | $(pct "${E[in]}" "$raw") |
| | predictor TwinStates received /s | ${E[states]} | ingest's ${E[in]} /s | $(pct "${E[states]}" "${E[in]}") |
| | predictor signal updates /s (model observations) | ${E[updates]} | 4 x states = $((4 * ${E[states]})) | $(pct "${E[updates]}" "$((4 * ${E[states]}))") |
| | predictor Predictions published /s | ${E[pred]} | $ASSETS assets / 1 s publish period | $(pct "${E[pred]}" "$ASSETS") |
| | predictor CPU, % of one core (µs per TwinState) | ${R[$p.cpu_predictor]:-?} % (${E[cpu_us]} µs) | mosquitto ${R[$p.cpu_mosquitto]:-?} %, ingest ${R[$p.cpu_ingest]:-?} % | - |
| | engine time per observation in the service (observe histogram mean) | ${E[obs_ns]} ns | pred-bench ${PB_NS:-?} ns | - |
| | peak queue depth (sampled every ${SAMPLE_S} s + scrape time) / full-queue waits | ${R[$p.queue_peak]:-?} of 1024 / $(fmt "${R[$p.predictor_backpressure_waits]:-0}") | - | - |
| | predictor backlog (ingest TwinStates not yet received): peak; mean first / last quarter; slope | ${R[$p.backlog_peak_pred]:-?}; ${R[$p.backlog_first]:-?} / ${R[$p.backlog_last]:-?}; ${R[$p.backlog_slope]:-?} /s | - | - |
| | predictor catch-up after the loadgen's exit = after ingest's last TwinState (its backlog then) | ${R[$p.catchup_s]:-?} s (${R[$p.backlog_exit]:-?}) | - | - |
| | loadgen end to end: published/received, lost; ingest's drain after the last publish; p99 | ${R[$p.published]:-?}/${R[$p.received]:-?}, ${R[$p.lost]:-?}; ${R[$p.drain_ms]:-?} ms; ${R[$p.p99_ms]:-?} ms | (a) p99 ${R[a.p99_ms]:-?} ms | - |
ROWS
}

counters_line() {
    local p=$1
    printf '(%s), %.1f s: ingest applied %s, state published %s, republished %s, publish failed %s; predictor states %s, updates %s, rejected %s, refused %s, predictions %s, publish failed %s, persisted %s, persist errors %s; over the whole phase the predictor received %s TwinStates more than ingest published (negative: missing).\n' \
        "${2:-$p}" "${R[$p.secs]:-0}" "$(fmt "${R[$p.ingest_applied]:-0}")" "$(fmt "${R[$p.ingest_state_published]:-0}")" \
        "$(fmt "${R[$p.ingest_state_republished]:-0}")" "$(fmt "${R[$p.ingest_state_publish_failed]:-0}")" \
        "$(fmt "${R[$p.predictor_states]:-0}")" "$(fmt "${R[$p.predictor_updates]:-0}")" \
        "$(fmt "${R[$p.predictor_rejected]:-0}")" "$(fmt "${R[$p.predictor_refused]:-0}")" \
        "$(fmt "${R[$p.predictor_predictions_published]:-0}")" "$(fmt "${R[$p.predictor_publish_failed]:-0}")" \
        "$(fmt "${R[$p.predictor_persist]:-0}")" "$(fmt "${R[$p.predictor_persist_errors]:-0}")" "${R[$p.extra]:-?}"
}

report() {
    local raw=${R[a.throughput]:-0} b_rate=${R[b.throughput]:-0} d_rss_b d_anon_b
    d_rss_b=$(awk -v a="$MEM0_RSS" -v b="$MEM1_RSS" -v n="$D_SIGNALS" 'BEGIN{printf "%.0f", (n > 0 ? 1024 * (b - a) / n : 0)}')
    d_anon_b=$(awk -v a="$MEM0_ANON" -v b="$MEM1_ANON" -v n="$D_SIGNALS" 'BEGIN{printf "%.0f", (n > 0 ? 1024 * (b - a) / n : 0)}')
    local t_iso t_mem keeps_lo keeps_hi sus_lo sus_hi
    t_iso=$(verdict "${PB_UPDATES:-0} >= 1000000")
    t_mem=$(verdict "$d_rss_b <= 2048 && ${PB_BYTES:-99999} <= 2048")
    e2e_figures cl; keeps_lo=${E[keeps]}; sus_lo=${E[sustains]}
    e2e_figures c; keeps_hi=${E[keeps]}; sus_hi=${E[sustains]}
    cat <<MD
### twin-predictor benchmark, $(date -u +%Y-%m-%dT%H:%MZ)

- Command: \`$COMMAND\` (build: $BUILD, CMAKE_BUILD_TYPE=$BUILD_TYPE; source $SOURCE)
- Machine: nproc $(nproc), CPU "$CPU_MODEL", kernel $(uname -r); mosquitto $MOSQ_VERSION, redis $REDIS_VERSION, Paho C $PAHO_VERSION
- Before the run: load average $LOADAVG, machine busy ${BUSY_BEFORE:-?} % of one core over 1 s${BUSY_NOTE:-}
- Setup: everything on 127.0.0.1; mosquitto = deploy/mosquitto.conf + private listener; redis = deploy/redis.conf; twin-ingest and twin-predictor with their defaults (predictor: publish 1000 ms, persist 10000 ms, horizon 24 steps, queue 1024, no plant model, so seasons are detected); QoS 1; Telemetry with 4 signals; $ASSETS assets in (a)-(c), fresh asset ids in every phase.

| phase | figure | measured | raw limit in this run | share of raw |
|---|---|---|---|---|
| (a) broker alone, max rate | msg/s through the broker (publisher -> subscriber) | $raw | - | 100 % |
| (b) twin-ingest alone, max rate | Telemetry -> TwinState msg/s | $b_rate | (a) $raw | $(pct "$b_rate" "$raw") |
$(paced_row bl "(b$LOW_PCT) twin-ingest alone, paced at $LOW_PCT % of (b), ${DURATION} s" "$raw")
$(paced_row bh "(b90) twin-ingest alone, paced at 90 % of (b), ${DURATION} s" "$raw")
$(e2e_rows cl "(c$LOW_PCT) ingest + predictor, $LOW_PCT % of (b), ${DURATION} s" "$raw")
$(e2e_rows c "(c) ingest + predictor, 90 % of (b), ${DURATION} s" "$raw")
| (d) fresh predictor, $RSS_ASSETS assets x 4 signals at 5000 msg/s | RSS growth per (asset, signal) (RssAnon; main heap only) | $d_rss_b B ($d_anon_b B; $(awk -v a="$MEM0_HEAP" -v b="$MEM1_HEAP" -v n="$D_SIGNALS" 'BEGIN{printf "%.0f", (n > 0 ? 1024 * (b - a) / n : 0)}') B) | pred-bench ${PB_BYTES:-?} B | - |
| (d) | RSS at start -> after ($D_ASSETS assets, $D_SIGNALS signals); of it after: main heap / other anonymous mappings (thread arenas, large blocks) | $(awk -v a="$MEM0_RSS" -v b="$MEM1_RSS" 'BEGIN{printf "%.1f -> %.1f MB", a / 1024, b / 1024}'); $(mb "$MEM1_HEAP") / $(mb "$MEM1_MMAP") MB | - | - |
| (d) | predictor catch-up after the loadgen's exit (backlog then); peak backlog; ingest's drain | ${R[d.catchup_s]:-?} s (${R[d.backlog_exit]:-?}); ${R[d.backlog_peak_pred]:-?}; ${R[d.drain_ms]:-?} ms | - | - |
| pred-bench, one core | observations/s | ${PB_OBS:-?} | raw loop (one EW mean per observation) ${PB_RAW:-?} | $(pct "${PB_OBS:-0}" "${PB_RAW:-0}") |
| pred-bench, one core | model updates/s | ${PB_UPDATES:-?} | - | - |

CPU over each measured interval (from /proc/PID/stat), % of one core; the machine has $((100 * $(nproc))) %:

| phase | mosquitto | redis | twin-ingest (all processes) | twin-predictor | twin-loadgen | everything else | machine busy |
|---|---|---|---|---|---|---|---|
$(cpu_row a "(a) broker alone")
$(cpu_row b "(b) ingest alone")
$(cpu_row bl "(b$LOW_PCT) ingest alone, paced")
$(cpu_row bh "(b90) ingest alone, paced")
$(cpu_row cl "(c$LOW_PCT) ingest + predictor")
$(cpu_row c "(c) ingest + predictor")
$(cpu_row d "(d) $RSS_ASSETS new assets")

Loadgen view (publish -> TwinState or broker echo):

| phase | published msg/s | received msg/s | published/received | lost | dup | p99 ms |
|---|---|---|---|---|---|---|
$(loadgen_row a "(a)")
$(loadgen_row b "(b)")
$(loadgen_row bl "(b$LOW_PCT)")
$(loadgen_row bh "(b90)")
$(loadgen_row cl "(c$LOW_PCT)")
$(loadgen_row c "(c)")
$(loadgen_row d "(d)")

Counters over the measured intervals:

- $(counters_line cl "c$LOW_PCT")
- $(counters_line c)

pred-bench (\`$PB_CMD\`):

\`\`\`
$PB_OUT
\`\`\`

Logs: predictor $PRED_LOG_SUMMARY; ingest $ING_LOG_SUMMARY.

| target | measured | verdict |
|---|---|---|
| >= 1,000,000 model updates/s per core in isolation | ${PB_UPDATES:-?} model updates/s (${PB_OBS:-?} observations/s) | $t_iso |
| <= 2 KB (2048 B) per (asset, signal) incl. seasonal state | service $d_rss_b B RSS (anon $d_anon_b B); engine struct ${PB_STRUCT:-?} B, ${PB_BYTES:-?} B incl. malloc | $t_mem |
| predictor keeps up with ingest's output (its backlog does not grow, drains within 5 s, nothing missing) | (c$LOW_PCT): slope ${R[cl.backlog_slope]:-?} /s, caught up ${R[cl.catchup_s]:-?} s, extra ${R[cl.extra]:-?}; (c): slope ${R[c.backlog_slope]:-?} /s, caught up ${R[c.catchup_s]:-?} s, extra ${R[c.extra]:-?} | (c$LOW_PCT) $keeps_lo; (c) $keeps_hi |
| ingest + predictor sustain the offered rate (ingest applies >= 98 % of it, nothing lost, drained within 5 s of the last publish) | (c$LOW_PCT) ${R[cl.rate]:-?} msg/s offered: applied $(e2e_figures cl; echo "${E[applied]}")/s, drain ${R[cl.drain_ms]:-?} ms; (c) ${R[c.rate]:-?} offered: applied $(e2e_figures c; echo "${E[applied]}")/s, drain ${R[c.drain_ms]:-?} ms | (c$LOW_PCT) $sus_lo; (c) $sus_hi (ingest alone at the same rates: (b$LOW_PCT) $(e2e_figures bl; echo "${E[sustains]}"), (b90) $(e2e_figures bh; echo "${E[sustains]}")) |

Loadgen commands, in order:
$(for p in a b bl bh cl c d; do printf '    %s: %s\n' "$p" "${CMD[$p]:-not run}"; done)
MD
}

main() {
    CLK_TCK=$(getconf CLK_TCK)
    CPU_MODEL=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
    MOSQ_VERSION=$(mosquitto -h 2>/dev/null | awk '/version/{print $3; exit}' || true)
    REDIS_VERSION=$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')
    PAHO_VERSION=$(dpkg-query -W -f='${Version}' libpaho-mqtt1.3 2>/dev/null || echo unknown)
    SOURCE="git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    git -C "$ROOT" diff --quiet HEAD -- services proto cmake CMakeLists.txt 2>/dev/null ||
        SOURCE="$SOURCE with uncommitted changes under services/ proto/ cmake/"
    BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
    wait_idle
    LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
    log "temporary directory $TMP"
    start_redis
    start_mosquitto
    log "mosquitto :$MQTT_PORT, redis :$REDIS_PORT"

    run_phase a "$WARMUP" "$MAX_S" --mode broker --rate 0 --assets "$ASSETS"
    start_ingest
    run_phase b "$WARMUP" "$MAX_S" --mode ingest --rate 0 --assets "$ASSETS"

    local r90 rlow
    r90=$(awk -v t="${R[b.throughput]:-0}" 'BEGIN{printf "%d", 0.9 * t}')
    [ "$r90" -gt 0 ] || r90=5000
    rlow=$(awk -v t="${R[b.throughput]:-0}" -v p="$LOW_PCT" 'BEGIN{printf "%d", p / 100 * t}')
    [ "$rlow" -gt 0 ] || rlow=3000
    # Ingest alone, paced at the lower rate: whether ingest itself sustains a paced load.
    run_phase bl "$WARMUP" "$DURATION" --mode ingest --rate "$rlow" --assets "$ASSETS" \
        --drain-timeout 120
    run_phase bh "$WARMUP" "$DURATION" --mode ingest --rate "$r90" --assets "$ASSETS" \
        --drain-timeout 120
    start_predictor
    settle
    run_phase cl "$WARMUP" "$DURATION" --mode ingest --rate "$rlow" --assets "$ASSETS" \
        --drain-timeout 120
    run_phase c "$WARMUP" "$DURATION" --mode ingest --rate "$r90" --assets "$ASSETS" \
        --drain-timeout 120
    kill -0 "$PRED_PID" 2>/dev/null || log "twin-predictor is no longer running after (c)"

    # (d): a fresh predictor (same broker session), RSS before and after RSS_ASSETS new assets
    # (6 s at 5,000 msg/s over them: each asset sends its 4 signals about 3 times).
    stop_pid "$PRED_PID"; PRED_PID=""
    start_predictor
    sleep 1
    read -r MEM0_RSS MEM0_ANON <<<"$(pred_memory)"
    read -r MEM0_HEAP _ <<<"$(pred_heap)"
    run_phase d 0 6 --mode ingest --rate 5000 --assets "$RSS_ASSETS" --drain-timeout 120
    settle
    sleep 1.5 # the assets and signals gauges are refreshed by the loop's timers
    read -r MEM1_RSS MEM1_ANON <<<"$(pred_memory)"
    read -r MEM1_HEAP MEM1_MMAP <<<"$(pred_heap)"
    cp "/proc/$PRED_PID/smaps_rollup" "$TMP/predictor.smaps_rollup" 2>/dev/null || true
    read -r D_ASSETS D_SIGNALS <<<"$(metrics "$PRED_PORT" twin_predictor_assets twin_predictor_signals |
        awk '{printf "%d %d", $1, $2}')"
    kill -0 "$PRED_PID" 2>/dev/null || log "twin-predictor is no longer running after (d)"

    # Stop the services first: pred-bench measures one core of an otherwise quiet machine.
    stop_pid "$PRED_PID"; PRED_PID=""
    stop_pid "$INGEST_PID"; INGEST_PID=""
    stop_pid "$MOSQ_PID"; MOSQ_PID=""
    stop_pid "$REDIS_PID"; REDIS_PID=""
    PRED_LOG_SUMMARY=$(log_summary "$TMP/predictor.log")
    ING_LOG_SUMMARY=$(log_summary "$TMP/ingest.log")
    PB_CMD="pred-bench $BENCH_SIGNALS $BENCH_STEPS"
    log "pred-bench: $PB_CMD"
    PB_OUT=$("$PREDBENCH" "$BENCH_SIGNALS" "$BENCH_STEPS" 2>&1) || log "pred-bench failed"
    PB_OBS=$(sed -n 's/^observations: \([0-9.e+]*\) per s.*/\1/p' <<<"$PB_OUT" | awk '{printf "%.0f", $1}')
    PB_NS=$(sed -n 's/^observations: .*(\([0-9]*\) ns each).*/\1/p' <<<"$PB_OUT")
    PB_UPDATES=$(sed -n 's/.*models: \([0-9.e+]*\) model updates per s.*/\1/p' <<<"$PB_OUT" | awk '{printf "%.0f", $1}')
    PB_RAW=$(sed -n 's/^raw loop limit.*: \([0-9.e+]*\) per s.*/\1/p' <<<"$PB_OUT" | awk '{printf "%.0f", $1}')
    PB_STRUCT=$(sed -n 's/^state per signal: \([0-9]*\) bytes.*/\1/p' <<<"$PB_OUT")
    PB_BYTES=$(sed -n 's/.*RSS \([0-9]*\) bytes per signal.*/\1/p' <<<"$PB_OUT")
    report
}

main
