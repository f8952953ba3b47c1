#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the whole Twinloop stack natively in the foreground: mosquitto and redis-server with
# the configs from deploy/ (passwords, ACLs), every service under its own users (twin-ingest,
# twin-predictor, twin-scenario, twin-advisor), the simulated plant and the dashboard. Ctrl-C
# stops everything cleanly. Data and generated passwords live in var/ (override with
# TWIN_DATA_DIR); ports with TWIN_MQTT_PORT, TWIN_WS_PORT, TWIN_REDIS_PORT and
# TWIN_<SERVICE>_METRICS_PORT (ingest 9101, predictor 9102, scenario 9103, devsim 9104,
# advisor 9107).
#
# Usage: scripts/run.sh [--scaled] [--autonomy] [--help]
#
# --autonomy: twin-advisor executes its recommendations itself (sends Commands to the
# machines), inside the plant model's guardrails (actions.autonomy). Without it, advice only
# (an operator's approval still sends a Command). Same as TWIN_ADVISOR_AUTONOMY=true in the
# environment; the default is false.
#
# --scaled: the scaled topology of docker-compose.scale.yml, natively: a Redis Cluster of 3
# masters + 3 replicas on TWIN_REDIS_PORT .. +5 (default 7000-7005; each port + 10000 is its
# cluster bus), data in $TWIN_DATA_DIR/redis-1 .. redis-6, created once with redis-cli as
# twin-admin; two twin-ingest and two twin-predictor (instances $TWIN_INSTANCE and
# ${TWIN_INSTANCE}2, metrics of the second ones on TWIN_INGEST2_METRICS_PORT (9105) and
# TWIN_PREDICTOR2_METRICS_PORT (9106)); every service with a redis+cluster:// URL.
# TWIN_BUILD_DIR: run the programs already built there (bin/, lib/) instead of having
# scripts/setup.sh install packages and build build/.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
SCALED=""
AUTONOMY="${TWIN_ADVISOR_AUTONOMY:-false}"
while [ $# -gt 0 ]; do
  case "$1" in
    --scaled) SCALED=1 ;;
    --autonomy) AUTONOMY=true ;;
    -h | --help) sed -n '3,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) twin_log "usage: scripts/run.sh [--scaled] [--autonomy] [--help]"; exit 2 ;;
  esac
  shift
done
case "${AUTONOMY,,}" in
  true | yes | on | 1) AUTONOMY=true ;;
  false | no | off | 0) AUTONOMY=false ;;
  *) twin_log "TWIN_ADVISOR_AUTONOMY must be true or false (or yes/no, on/off, 1/0)"; exit 2 ;;
esac
if [ -n "${TWIN_BUILD_DIR:-}" ]; then
  BUILD="$(cd "$TWIN_BUILD_DIR" && pwd)"
  [ -x "$BUILD/bin/twin-ingest" ] || { twin_log "no $BUILD/bin/twin-ingest: build TWIN_BUILD_DIR first"; exit 1; }
else
  "$TWIN_ROOT/scripts/setup.sh"
  BUILD="$TWIN_ROOT/build"
fi

DATA="${TWIN_DATA_DIR:-$TWIN_ROOT/var}"
MQTT_PORT="${TWIN_MQTT_PORT:-1883}"
WS_PORT="${TWIN_WS_PORT:-9001}"
if [ -n "$SCALED" ]; then REDIS_PORT="${TWIN_REDIS_PORT:-7000}"; else REDIS_PORT="${TWIN_REDIS_PORT:-6379}"; fi
INGEST_PORT="${TWIN_INGEST_METRICS_PORT:-9101}"
PREDICTOR_PORT="${TWIN_PREDICTOR_METRICS_PORT:-9102}"
SCENARIO_PORT="${TWIN_SCENARIO_METRICS_PORT:-9103}"
DEVSIM_PORT="${TWIN_DEVSIM_METRICS_PORT:-9104}"
ADVISOR_PORT="${TWIN_ADVISOR_METRICS_PORT:-9107}"
BIN="$BUILD/bin"
SECRETS="$DATA/secrets"
PORTS=("$MQTT_PORT" "$WS_PORT" "$REDIS_PORT" "$INGEST_PORT" "$PREDICTOR_PORT" "$SCENARIO_PORT" "$DEVSIM_PORT" "$ADVISOR_PORT")
# What start() puts into each service's TWIN_REDIS_URL (with a user and password), and
# make-secrets into twin.env.
REDIS_SCHEME="redis"
REDIS_NODES="127.0.0.1:$REDIS_PORT"
if [ -n "$SCALED" ]; then
  INGEST2_PORT="${TWIN_INGEST2_METRICS_PORT:-9105}"
  PREDICTOR2_PORT="${TWIN_PREDICTOR2_METRICS_PORT:-9106}"
  if [ "$REDIS_PORT" -lt 1 ] || [ "$((REDIS_PORT + 10005))" -gt 65535 ]; then
    twin_log "TWIN_REDIS_PORT $REDIS_PORT: the 6 nodes use it .. +5, and +10000 each for the cluster bus"; exit 1
  fi
  CLUSTER_ADDRS=()
  for i in 0 1 2 3 4 5; do
    CLUSTER_ADDRS+=("127.0.0.1:$((REDIS_PORT + i))")
    PORTS+=("$((REDIS_PORT + i))" "$((REDIS_PORT + i + 10000))")
    mkdir -p "$DATA/redis-$((i + 1))"
  done
  PORTS+=("$INGEST2_PORT" "$PREDICTOR2_PORT")
  # Three masters to learn the slot map from.
  REDIS_SCHEME="redis+cluster"
  REDIS_NODES="${CLUSTER_ADDRS[0]},${CLUSTER_ADDRS[1]},${CLUSTER_ADDRS[2]}"
  mkdir -p "$DATA/mosquitto" "$DATA/log"
else
  mkdir -p "$DATA/mosquitto" "$DATA/redis" "$DATA/log"
fi

pids=()
cluster_pids=() # --scaled: the Redis Cluster nodes, also in pids
stopping=""
stop_all() {
  trap - INT TERM EXIT
  stopping=1
  twin_log "stopping"
  # Services first (they finish in-flight work), then the broker and Redis.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    case " ${cluster_pids[*]} " in
      *" ${pids[$i]} "*) stop_cluster_node "${pids[$i]}" ;;
      *) kill -TERM "${pids[$i]}" 2>/dev/null || true; wait "${pids[$i]}" 2>/dev/null || true ;;
    esac
  done
  twin_log "stopped"
}
# A cluster node refuses a SIGTERM while it writes its first AOF after a replica's full sync
# ("Writing initial AOF, can't exit.", Redis 7.0) and runs on: it is asked again every second,
# and killed after 30 s.
stop_cluster_node() {
  local _ state
  for _ in $(seq 1 30); do
    kill -TERM "$1" 2>/dev/null || break
    for _ in $(seq 1 10); do
      state="$(ps -o stat= -p "$1" 2>/dev/null)" || break 2 # gone
      [ "${state:0:1}" != Z ] || break 2                       # exited, not yet reaped
      sleep 0.1
    done
  done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
trap stop_all INT TERM EXIT

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 100); do port_busy "$1" && return 0; sleep 0.1; done
  twin_log "nothing listens on port $1 after 10 s; see $DATA/log"; exit 1
}
for p in "${PORTS[@]}"; do
  if port_busy "$p"; then
    twin_log "port $p is already in use (a system mosquitto or redis-server, or another run.sh?); stop it, or set TWIN_MQTT_PORT / TWIN_WS_PORT / TWIN_REDIS_PORT / TWIN_<SERVICE>_METRICS_PORT"
    exit 1
  fi
done

# Passwords: made once, kept in $DATA/secrets (0700); twin.env holds the operator's.
"$TWIN_ROOT/deploy/make-secrets.sh" --mqtt-url "mqtt://127.0.0.1:$MQTT_PORT" \
  --redis-url "$REDIS_SCHEME://$REDIS_NODES" "$SECRETS"
ln -sfn secrets/twin.env "$DATA/twin.env"
secret() { head -n 1 "$SECRETS/$1/$2.password"; }

export TWIN_MODEL="${TWIN_MODEL:-$TWIN_ROOT/deploy/plant.json}"  # the demo plant: limits, seasons

# The dashboard: its static files, the plant model (units, limits, stations) and a
# config.json with its broker user (reads, and sends scenario requests).
rm -rf "$DATA/www" && mkdir -p "$DATA/www"
if [ -f "$TWIN_ROOT/services/dashboard/public/index.html" ]; then
  cp -R "$TWIN_ROOT/services/dashboard/public/." "$DATA/www/"
else
  twin_log "services/dashboard/public/ not found: no dashboard (the broker still serves MQTT over WebSockets)"
fi
cp "$TWIN_MODEL" "$DATA/www/plant.json"
printf '{"username":"dashboard","password":"%s","topicRoot":"twin/v1"}\n' "$(secret mqtt dashboard)" >"$DATA/www/config.json"
chmod -R a+rX "$DATA/www"

# redis-cli as twin-admin, its password in REDISCLI_AUTH of a subshell (never an argument).
admin_cli() {
  (
    REDISCLI_AUTH="$(secret redis twin-admin)"
    export REDISCLI_AUTH
    exec redis-cli --no-auth-warning --user twin-admin "$@"
  )
}
cluster_info() { admin_cli -p "$1" CLUSTER INFO 2>/dev/null | tr -d '\r'; }
cluster_ok() {
  local a
  for a in "${CLUSTER_ADDRS[@]}"; do cluster_info "${a##*:}" | grep -qx 'cluster_state:ok' || return 1; done
}
# --scaled: six cluster nodes; the cluster is created on the first start only (nodes.conf in
# each node's dir remembers it, and its ports: delete $DATA/redis-N to use others).
start_cluster() {
  local i a known=""
  # A replica logs in to its master as user `replication`: masteruser/masterauth from an
  # include file (0600), so the password is on no command line.
  (umask 077 && printf 'masteruser replication\nmasterauth %s\n' "$(secret redis replication)" \
    >"$SECRETS/redis-replication.conf")
  for i in 0 1 2 3 4 5; do
    redis-server "$TWIN_ROOT/deploy/redis.conf" --port "$((REDIS_PORT + i))" --bind 127.0.0.1 \
      --dir "$DATA/redis-$((i + 1))" --aclfile "$SECRETS/redis-users.acl" --cluster-enabled yes \
      --cluster-config-file nodes.conf --include "$SECRETS/redis-replication.conf" \
      >>"$DATA/log/redis-$((i + 1)).log" 2>&1 & pids+=($!)
    cluster_pids+=($!)
  done
  for a in "${CLUSTER_ADDRS[@]}"; do wait_port "${a##*:}"; done
  known="$(cluster_info "$REDIS_PORT" | sed -n 's/^cluster_known_nodes://p')" || true
  if [ "$known" = 1 ]; then
    twin_log "creating the Redis Cluster (3 masters, 3 replicas) on ports $REDIS_PORT-$((REDIS_PORT + 5))"
    admin_cli --cluster create "${CLUSTER_ADDRS[@]}" --cluster-replicas 1 --cluster-yes \
      >>"$DATA/log/redis-cluster.log" 2>&1 ||
      { twin_log "redis-cli --cluster create failed; see $DATA/log/redis-cluster.log"; exit 1; }
  fi
  for _ in $(seq 1 300); do cluster_ok && return 0; sleep 0.1; done
  twin_log "the Redis Cluster is not ok after 30 s; see $DATA/log/redis-*.log (other ports than at its creation? delete $DATA/redis-1 .. redis-6)"
  exit 1
}

# The shipped broker config with only ports and paths rewritten (see deploy/mosquitto.conf).
{ sed -e "s|^listener 1883\$|listener $MQTT_PORT 127.0.0.1|" \
    -e "s|^listener 9001\$|listener $WS_PORT 127.0.0.1|" \
    -e "s|^password_file .*|password_file $SECRETS/mosquitto.passwd|" \
    -e "s|^acl_file .*|acl_file $TWIN_ROOT/deploy/mosquitto.acl|" \
    -e "s|^http_dir .*|http_dir $DATA/www|" \
    -e "s|^persistence_location .*|persistence_location $DATA/mosquitto/|" \
    -e "s|^plugin .*|plugin $BUILD/lib/twin_clientid.so|" \
    "$TWIN_ROOT/deploy/mosquitto.conf"
  # As root, mosquitto would switch to its own user, which cannot read the password file.
  if [ "$(id -u)" -eq 0 ]; then printf 'user root\n'; fi
} >"$DATA/mosquitto.conf"
for want in "listener $MQTT_PORT " "listener $WS_PORT " "password_file $SECRETS/" "http_dir $DATA/www" \
  "plugin $BUILD/lib/"; do
  grep -q "^$want" "$DATA/mosquitto.conf" || { twin_log "deploy/mosquitto.conf changed shape: no '$want' after rewriting"; exit 1; }
done
mosquitto -c "$DATA/mosquitto.conf" 2>>"$DATA/log/mosquitto.log" & pids+=($!)
if [ -z "$SCALED" ]; then
  redis-server "$TWIN_ROOT/deploy/redis.conf" --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DATA/redis" \
    --aclfile "$SECRETS/redis-users.acl" >>"$DATA/log/redis.log" 2>&1 & pids+=($!)
  wait_port "$MQTT_PORT"; wait_port "$WS_PORT"; wait_port "$REDIS_PORT"
else
  start_cluster
  wait_port "$MQTT_PORT"; wait_port "$WS_PORT"
fi

export TWIN_MQTT_URL="mqtt://127.0.0.1:$MQTT_PORT"
export TWIN_INSTANCE="${TWIN_INSTANCE:-local}"
# start NAME METRICS_PORT [REDIS_USER [INSTANCE]]: build/bin/twin-NAME as MQTT user twin-NAME
# (INSTANCE: its TWIN_INSTANCE, for a second one). The passwords go into the environment of a
# subshell that then becomes the program (exec): never an argument of any process
# (`env VAR=... prog` would show them in ps while env runs). Without REDIS_SCHEME and
# REDIS_NODES: the one Redis on REDIS_PORT.
start() {
  (
    export TWIN_METRICS_PORT="$2" TWIN_MQTT_USER="twin-$1"
    TWIN_MQTT_PASSWORD="$(secret mqtt "twin-$1")"
    export TWIN_MQTT_PASSWORD
    if [ $# -ge 3 ]; then
      TWIN_REDIS_URL="${REDIS_SCHEME:-redis}://$3:$(secret redis "$3")@${REDIS_NODES:-127.0.0.1:$REDIS_PORT}"
      export TWIN_REDIS_URL
    fi
    # shellcheck disable=SC2030 # this subshell's own instance name, on purpose
    if [ $# -ge 4 ]; then export TWIN_INSTANCE="$4"; fi
    exec "$BIN/twin-$1"
  ) & pids+=($!)
}
start ingest "$INGEST_PORT" twin-ingest
start predictor "$PREDICTOR_PORT" twin-predictor
if [ -n "$SCALED" ]; then
  start ingest "$INGEST2_PORT" twin-ingest "${TWIN_INSTANCE}2"
  start predictor "$PREDICTOR2_PORT" twin-predictor "${TWIN_INSTANCE}2"
fi
start scenario "$SCENARIO_PORT" twin-scenario
# twin-advisor: advice only unless --autonomy or TWIN_ADVISOR_AUTONOMY=true.
export TWIN_ADVISOR_AUTONOMY="$AUTONOMY"
advisor_mode="advice only; --autonomy lets it act"
[ "$AUTONOMY" = false ] || advisor_mode="autonomy on: acts inside the plant model's guardrails"
start advisor "$ADVISOR_PORT" twin-advisor
devsim="not built"
if [ -x "$BIN/twin-devsim" ]; then start devsim "$DEVSIM_PORT"; devsim="metrics http://127.0.0.1:$DEVSIM_PORT/metrics  (the demo plant, live)"; fi

# Paths in the hints, relative to the working directory when inside it.
relative() { case "$1" in "$PWD"/*) printf '%s' "${1#"$PWD"/}" ;; *) printf '%s' "$1" ;; esac; }
env_hint="$(relative "$DATA/twin.env")"
secrets_hint="$(relative "$SECRETS")"
bin_hint="build/bin"
[ -z "${TWIN_BUILD_DIR:-}" ] || bin_hint="$(relative "$BIN")"
redis_hint="redis://127.0.0.1:$REDIS_PORT (users: deploy/users.acl)"
ingest_hint="metrics http://127.0.0.1:$INGEST_PORT/metrics"
predictor_hint="metrics http://127.0.0.1:$PREDICTOR_PORT/metrics"
cli_hint="-p $REDIS_PORT"
if [ -n "$SCALED" ]; then
  redis_hint="cluster 127.0.0.1:$REDIS_PORT-$((REDIS_PORT + 5)), 3 masters + 3 replicas (users: deploy/users.acl)"
  ingest_hint="$ingest_hint, http://127.0.0.1:$INGEST2_PORT/metrics (instances $TWIN_INSTANCE, ${TWIN_INSTANCE}2)"
  predictor_hint="$predictor_hint, http://127.0.0.1:$PREDICTOR2_PORT/metrics (instances $TWIN_INSTANCE, ${TWIN_INSTANCE}2)"
  cli_hint="-c -p $REDIS_PORT"
fi
cat >&2 <<EOT

Twinloop is running (Ctrl-C stops it). Logs of the broker and Redis: $DATA/log/
  dashboard  http://127.0.0.1:$WS_PORT/
  broker     mqtt://127.0.0.1:$MQTT_PORT (users and ACL: deploy/mosquitto.acl)
  redis      $redis_hint
  ingest     $ingest_hint
  predictor  $predictor_hint
  scenario   metrics http://127.0.0.1:$SCENARIO_PORT/metrics
  advisor    metrics http://127.0.0.1:$ADVISOR_PORT/metrics ($advisor_mode)
  devsim     $devsim
Passwords: $SECRETS/ (made once, kept). The operator's, in another shell:
  . $env_hint
  $bin_hint/twinctl assets
  $bin_hint/twinctl state press-1
  $bin_hint/twinctl alerts --follow
  $bin_hint/twinctl scenario run --down press-1 --at shift --for 4h --model deploy/plant.json
  redis-cli $cli_hint --user operator --no-auth-warning HGETALL 'twin:{press-1}:state'
  XDG_CONFIG_HOME=$secrets_hint/mosquitto-clients mosquitto_sub -p $MQTT_PORT -t 'twin/v1/asset/+/alert' -F '%t %x'
(redis-cli takes the password from REDISCLI_AUTH, mosquitto_sub from that options file:
neither is on a command line, where ps shows it.)
An LLM client (MCP) starts: bash -c '. $DATA/twin.env && exec $BIN/twin-mcp'
(README, "Ask the twin").

EOT
# Any process ending ends the stack: a broken stack should not look alive.
wait -n "${pids[@]}" || true
[ -n "$stopping" ] || twin_log "a process exited; see $DATA/log and the lines above"
