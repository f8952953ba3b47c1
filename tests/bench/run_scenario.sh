#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmarks the scenario engine: events per second on one core (M/M/1, a small line, the demo
# plant), the same models in SimPy in the same run (the ratio), and the wall time of a
# 1,000-variant sweep of the demo plant; prints a markdown block. Builds nothing.
#
# Usage: tests/bench/run_scenario.sh [--build DIR] [--seconds S] [--simpy-seconds S]
#                                    [--sweep-threads N] [--sweep-replications N]
#                                    [--sweep-horizon D] [--wait-idle S]
#   --build DIR             build tree with bin/scen-bench (default build/; use a Release tree)
#   --seconds S             engine time per model, one thread (default 5)
#   --simpy-seconds S       SimPy time per model, one process (default 20)
#   --sweep-threads N       threads of the sweep (default 2)
#   --sweep-replications N  replications per variant (default 20, the runner's default)
#   --sweep-horizon D       simulated time per replication (default 7d, the runner's default;
#                           1d of it is warm-up)
#   --wait-idle S           wait up to S s (default 60) for the machine to be idle (< 20 % busy)
# The engine and SimPy count events the same way (order arrivals, part completions, failures,
# repairs, deliveries, periodic orders, shift changes, the warm-up); SimPy's own scheduler
# events are reported beside them. SimPy is Debian's python3-simpy3 under /usr/bin/python3.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/bench/bench_lib.sh
source "$ROOT/tests/bench/bench_lib.sh"
BUILD=$ROOT/build
ENGINE_S=5
SIMPY_S=20
SWEEP_THREADS=2
SWEEP_REPS=20
SWEEP_HORIZON=7d
WAIT_IDLE=60
PYTHON=/usr/bin/python3
COMMAND="$0 $*"

while [ $# -gt 0 ]; do
    case "$1" in
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --seconds) ENGINE_S=$2; shift 2 ;;
    --simpy-seconds) SIMPY_S=$2; shift 2 ;;
    --sweep-threads) SWEEP_THREADS=$2; shift 2 ;;
    --sweep-replications) SWEEP_REPS=$2; shift 2 ;;
    --sweep-horizon) SWEEP_HORIZON=$2; shift 2 ;;
    --wait-idle) WAIT_IDLE=$2; shift 2 ;;
    -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "run_scenario.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

SCENBENCH=$BUILD/bin/scen-bench
SIMPY_LINE=$ROOT/tests/bench/simpy_line.py
require_programs "$SCENBENCH"
"$PYTHON" -c 'import simpy' 2>/dev/null ||
    { echo "run_scenario.sh: $PYTHON has no simpy: apt-get install python3-simpy3" >&2; exit 2; }

# name, model file, horizon (s) of one replication.
MODELS=(
    "M/M/1|tests/bench/models/mm1.json|100000"
    "small line (line3)|tests/bench/models/line3.json|30000"
    "demo plant|deploy/plant.json|604800"
)
# The sweep: buffer sizes x press staffing, 10 x 10 x 5 x 2 = 1,000 variants; the cheapest
# (one unit per buffer place, 20 per press operator) that meets the delivery targets.
SWEEP_ARGS=(--param buffer.press_out.capacity=1:10:1 --param buffer.weld_out.capacity=1:10:1
    --param buffer.paint_out.capacity=1:5:1 --param station.press.staff=1:2:1
    --cost buffer.press_out.capacity=1 --cost buffer.weld_out.capacity=1
    --cost buffer.paint_out.capacity=1 --cost station.press.staff=20
    --objective cost --minimize --constraint 'service_level>=0.99' --constraint 'lead_time<=3.6'
    --top 3)

# The word after the label $1 at the start of a line of stdin.
field() { awk -v k="$1" -v n="$(wc -w <<<"$1")" 'index($0, k) == 1 { print $(n + 1); exit }'; }
ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN{if (b > 0) printf "%.0f", a / b; else printf "-"}'; }
sci() { awk -v x="${1:-0}" 'BEGIN{printf "%.3g", x}'; }

declare -A R
RAW=""

run_models() {
    local i name file horizon out
    for i in "${!MODELS[@]}"; do
        IFS='|' read -r name file horizon <<<"${MODELS[$i]}"
        log "engine: $name, ${ENGINE_S} s"
        out=$("$SCENBENCH" events "$ROOT/$file" --horizon "$horizon" --seconds "$ENGINE_S")
        RAW+="\$ scen-bench events $file --horizon $horizon --seconds $ENGINE_S"$'\n'"$out"$'\n\n'
        R[$i.engine]=$(field "events/s/core:" <<<"$out")
        R[$i.ns]=$(sed -n 's/^events\/s\/core: [^ ]* (\([0-9.]*\) ns per event)/\1/p' <<<"$out")
        log "SimPy: $name, ${SIMPY_S} s"
        out=$("$PYTHON" "$SIMPY_LINE" "$ROOT/$file" --events --horizon "$horizon" \
            --seconds "$SIMPY_S" --replications 100000)
        RAW+="\$ simpy_line.py $file --events --horizon $horizon --seconds $SIMPY_S"$'\n'"$out"$'\n\n'
        R[$i.simpy]=$(field "model events/s/core:" <<<"$out")
        R[$i.simpy_own]=$(field "simpy events/s/core:" <<<"$out")
        R[$i.ratio]=$(ratio "${R[$i.engine]}" "${R[$i.simpy]}")
    done
    # The least SimPy can do for M/M/1: its textbook queue, without the engine's statistics.
    log "SimPy: M/M/1 as the textbook queue, ${SIMPY_S} s"
    out=$("$PYTHON" "$SIMPY_LINE" "$ROOT/tests/bench/models/mm1.json" --textbook \
        --horizon 100000 --seconds "$SIMPY_S" --replications 100000)
    RAW+="\$ simpy_line.py tests/bench/models/mm1.json --textbook --horizon 100000 --seconds $SIMPY_S"$'\n'"$out"$'\n\n'
    R[tb.simpy]=$(field "model events/s/core:" <<<"$out")
    R[tb.ratio]=$(ratio "${R[0.engine]}" "${R[tb.simpy]}")
}

run_sweep() {
    local out
    log "sweep: 1,000 variants x $SWEEP_REPS replications of $SWEEP_HORIZON on $SWEEP_THREADS threads"
    SWEEP_CMD="scen-bench sweep deploy/plant.json --horizon $SWEEP_HORIZON --warmup 1d --replications $SWEEP_REPS --threads $SWEEP_THREADS ${SWEEP_ARGS[*]}"
    out=$("$SCENBENCH" sweep "$ROOT/deploy/plant.json" --horizon "$SWEEP_HORIZON" --warmup 1d \
        --replications "$SWEEP_REPS" --threads "$SWEEP_THREADS" "${SWEEP_ARGS[@]}")
    SWEEP_OUT=$out
    R[sweep.wall]=$(sed -n 's/^wall time: \([0-9.]*\) s.*/\1/p' <<<"$out")
    R[sweep.variants]=$(sed -n 's/^model .*: \([0-9]*\) variants x.*/\1/p' <<<"$out")
    R[sweep.best]=$(awk '/^  #1 /{sub(/^  #1 /, ""); v = $0; getline; sub(/^ +/, "");
        printf "%s (%s)", v, $0; exit}' <<<"$out")
    [ -n "${R[sweep.best]}" ] || R[sweep.best]="none feasible"
}

model_rows() {
    local i name file horizon
    for i in "${!MODELS[@]}"; do
        IFS='|' read -r name file horizon <<<"${MODELS[$i]}"
        printf "| %s (\`%s\`) | %s s | %s | %s | %s | %s | %s x |\n" "$name" "$file" "$horizon" \
            "$(sci "${R[$i.engine]}")" "${R[$i.ns]}" "$(sci "${R[$i.simpy]}")" \
            "$(sci "${R[$i.simpy_own]}")" "${R[$i.ratio]}"
    done
    printf '| M/M/1, SimPy as its textbook queue (Resource, no statistics) | 100000 s | %s | %s | %s | - | %s x |\n' \
        "$(sci "${R[0.engine]}")" "${R[0.ns]}" "$(sci "${R[tb.simpy]}")" "${R[tb.ratio]}"
}

target_rows() {
    local i name file horizon
    for i in "${!MODELS[@]}"; do
        IFS='|' read -r name file horizon <<<"${MODELS[$i]}"
        printf '| >= 10 M events/s/core: %s | %s | %s |\n' "$name" "$(sci "${R[$i.engine]}")" \
            "$(verdict "${R[$i.engine]:-0} >= 10000000")"
    done
    for i in "${!MODELS[@]}"; do
        IFS='|' read -r name file horizon <<<"${MODELS[$i]}"
        printf '| >= 100 x SimPy on the same model: %s | %s x | %s |\n' "$name" "${R[$i.ratio]}" \
            "$(verdict "${R[$i.ratio]/-/0} >= 100")"
    done
    printf '| (stricter reading) >= 100 x the textbook SimPy M/M/1 without statistics | %s x | %s |\n' \
        "${R[tb.ratio]}" "$(verdict "${R[tb.ratio]/-/0} >= 100")"
    printf '| 1,000-variant sweep of the demo plant <= 10 s on %s threads | %s s | %s |\n' \
        "$SWEEP_THREADS" "${R[sweep.wall]:-?}" \
        "$(verdict "${R[sweep.variants]:-0} >= 1000 && ${R[sweep.wall]:-99} <= 10 && $SWEEP_THREADS <= 2")"
}

report() {
    cat <<MD
### twin-scenario engine benchmark, $(date -u +%Y-%m-%dT%H:%MZ)

- Command: \`$COMMAND\` (build: $BUILD, CMAKE_BUILD_TYPE=$BUILD_TYPE; source $SOURCE)
- Machine: nproc $(nproc), CPU "$CPU_MODEL", kernel $(uname -r); $("$PYTHON" -c 'import sys, simpy; print("SimPy", simpy.__version__, "on Python", sys.version.split()[0])')
- Before the run: load average $LOADAVG, machine busy ${BUSY_BEFORE:-?} % of one core over 1 s${BUSY_NOTE:-}
- Engine: \`scen-bench events\`, one thread, replications 0, 1, 2, ... for ${ENGINE_S} s. SimPy: \`simpy_line.py --events\`, one process, for ${SIMPY_S} s. Both count events the same way (arrivals, completions, failures, repairs, deliveries, periodic orders, shift changes, warm-up); "SimPy's own" counts every event SimPy's scheduler processed (several per model event).

| model | horizon | engine events/s/core | ns/event | SimPy model events/s/core | SimPy's own events/s | engine / SimPy |
|---|---|---|---|---|---|---|
$(model_rows)

Sweep (\`$SWEEP_CMD\`): ${R[sweep.variants]:-?} variants in ${R[sweep.wall]:-?} s wall; best: ${R[sweep.best]}.

| target | measured | verdict |
|---|---|---|
$(target_rows)

Output:

\`\`\`
$RAW\$ $SWEEP_CMD
$SWEEP_OUT
\`\`\`
MD
}

main() {
    CPU_MODEL=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
    SOURCE="git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    git -C "$ROOT" diff --quiet HEAD -- services 2>/dev/null &&
        [ -z "$(git -C "$ROOT" ls-files --others --exclude-standard services)" ] ||
        SOURCE="$SOURCE with uncommitted changes under services/"
    BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
    wait_idle
    LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
    run_models
    run_sweep
    report
}

main
