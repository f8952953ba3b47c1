#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Shell functions the benchmark scripts share: logging, stopping processes, free ports, and a
# private mosquitto and redis-server with the deploy/ configs (uses $ROOT and $TMP), Twinloop
# programs against them, CPU time of a process.
# The PIDs and ports it sets are read by the scripts that source it:
# shellcheck disable=SC2034

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Exits 2 unless every program given is there (built).
require_programs() {
    local bin
    for bin in "$@"; do
        [ -x "$bin" ] || { echo "${0##*/}: $bin is missing: build first" >&2; exit 2; }
    done
}

# At exit: the temporary directory is kept with --keep (KEEP=1), removed otherwise.
finish_tmp() {
    if [ "${KEEP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}

# Stops one process we started (TERM, then KILL after a bounded wait).
stop_pid() {
    local pid=$1 i
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# A loopback TCP port no socket uses, below the ephemeral range. Bounded number of tries.
free_port() {
    local i port low
    low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    for i in $(seq 1 100); do
        port=$((10000 + RANDOM % (low - 10000)))
        if ! ss -Htan "sport = :$port" | grep -q .; then echo "$port"; return 0; fi
    done
    echo "${0##*/}: no free port" >&2; return 1
}

# Waits up to $2 tenths of a second for command $1 to succeed.
wait_for() {
    local cmd=$1 tries=$2 _
    for _ in $(seq 1 "$tries"); do
        if eval "$cmd" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "${0##*/}: timed out waiting for: $cmd" >&2; return 1
}

# deploy/mosquitto.conf's common part (above its "==== deployment" marker: the delivery
# settings) plus a private open loopback listener, as the test harness does.
start_mosquitto() {
    MQTT_PORT=$(free_port)
    mkdir -p "$TMP/mosquitto"
    { sed '/^# ==== deployment/,$d' "$ROOT/deploy/mosquitto.conf"
      printf '\nlistener %s 127.0.0.1\nallow_anonymous true\npersistence_location %s/\n' \
          "$MQTT_PORT" "$TMP/mosquitto"
      if [ "$(id -u)" = 0 ]; then printf 'user root\n'; fi
    } >"$TMP/mosquitto.conf"
    mosquitto -c "$TMP/mosquitto.conf" >"$TMP/mosquitto.log" 2>&1 &
    MOSQ_PID=$!
    wait_for "ss -Htln 'sport = :$MQTT_PORT' | grep -q ." 100
}

start_redis() {
    REDIS_PORT=$(free_port)
    mkdir -p "$TMP/redis"
    redis-server "$ROOT/deploy/redis.conf" --port "$REDIS_PORT" --bind 127.0.0.1 \
        --dir "$TMP/redis" --daemonize no >"$TMP/redis.log" 2>&1 &
    REDIS_PID=$!
    wait_for "redis-cli -p $REDIS_PORT ping | grep -q PONG" 100
}

# Starts a Twinloop program ($2) against the private broker and Redis, logging to $3, with its
# metrics on port $1 and any further VAR=value settings; waits for /healthz; sets TWIN_PID.
start_twin() {
    local port=$1 bin=$2 logfile=$3
    shift 3
    env TWIN_MQTT_URL="mqtt://127.0.0.1:$MQTT_PORT" TWIN_REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
        TWIN_INSTANCE=bench TWIN_METRICS_PORT="$port" "$@" "$bin" >>"$logfile" 2>&1 &
    TWIN_PID=$!
    wait_for "curl -sf http://127.0.0.1:$port/healthz" 300
}

# twin-ingest's processes: the supervisor and its workers.
ingest_pids() {
    [ -n "$INGEST_PID" ] || return 0
    echo "$INGEST_PID"
    pgrep -P "$INGEST_PID" || true
}

# utime + stime of a process (all its threads) in clock ticks, fields 14 and 15 of
# /proc/PID/stat counted after the ")" that ends the command name (which may hold spaces).
cpu_ticks() {
    local stat
    local -a f
    [ -n "$1" ] || { echo 0; return; }
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    read -r -a f <<<"${stat##*) }"
    echo $(( ${f[11]:-0} + ${f[12]:-0} ))
}

# utime + stime + cutime + cstime of process $1 (its own CPU and that of its reaped children),
# plus utime + stime of its live children: cumulative CPU of a process tree (twin-ingest and its
# workers, twin-loadgen and its publisher and subscriber), in clock ticks.
tree_ticks() {
    local stat sum p
    local -a fld
    [ -n "${1:-}" ] || { echo 0; return; }
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    read -r -a fld <<<"${stat##*) }"
    sum=$(( ${fld[11]:-0} + ${fld[12]:-0} + ${fld[13]:-0} + ${fld[14]:-0} ))
    for p in $(pgrep -P "$1" || true); do sum=$((sum + $(cpu_ticks "$p"))); done
    echo "$sum"
}

mb() { awk -v k="${1:-0}" 'BEGIN{printf "%.1f", k / 1024}'; }

verdict() { if awk "BEGIN{exit !($1)}"; then echo met; else echo MISSED; fi; }

# Idle + iowait ticks of the whole machine, from /proc/stat. Busy time is derived from idle
# time: with a tickless kernel the idle counters are exact, the busy ones are sampled.
idle_ticks() { awk '$1 == "cpu" { print $5 + $6; exit }' /proc/stat; }

# Share of the machine busy over one second, in % of one core (2 cores: up to 200).
busy_now() {
    local i0 i1
    i0=$(idle_ticks); sleep 1; i1=$(idle_ticks)
    awk -v d=$((i1 - i0)) -v n="$(nproc)" -v hz="$(getconf CLK_TCK)" \
        'BEGIN{printf "%d", 100 * n - 100 * d / hz}'
}

# Other work on the machine skews every figure: wait up to $WAIT_IDLE s until it is quiet
# (< 20 % of one core). Sets BUSY_BEFORE, and BUSY_NOTE when it never got quiet.
wait_idle() {
    local i busy
    BUSY_NOTE=""
    for i in $(seq 1 "$WAIT_IDLE"); do
        busy=$(busy_now)
        [ "$busy" -lt 20 ] && { BUSY_BEFORE=$busy; return 0; }
    done
    BUSY_BEFORE=$(busy_now)
    log "machine still busy ($BUSY_BEFORE % of one core) after ${WAIT_IDLE} s: running anyway"
    BUSY_NOTE=" (still busy after waiting ${WAIT_IDLE} s: figures are skewed)"
}

# "N lines, N warn, N error" of a service log (one line per event: "ts level service ...").
log_summary() {
    local file=$1
    [ -f "$file" ] || { echo "no log"; return; }
    printf '%s lines, %s warn, %s error' "$(grep -c . "$file" || true)" \
        "$(grep -c ' warn ' "$file" || true)" "$(grep -c ' error ' "$file" || true)"
}
