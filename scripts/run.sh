#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the whole Twinloop stack natively in the foreground: mosquitto and redis-server with
# the configs from deploy/, then every service that exists. Ctrl-C stops everything cleanly.
# Data lives in var/ (override with TWIN_DATA_DIR); ports with TWIN_MQTT_PORT/TWIN_REDIS_PORT.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
"$TWIN_ROOT/scripts/setup.sh"

DATA="${TWIN_DATA_DIR:-$TWIN_ROOT/var}"
MQTT_PORT="${TWIN_MQTT_PORT:-1883}"
REDIS_PORT="${TWIN_REDIS_PORT:-6379}"
BIN="$TWIN_ROOT/build/bin"
mkdir -p "$DATA/mosquitto" "$DATA/redis" "$DATA/log"

pids=()
stop_all() {
  trap - INT TERM EXIT
  twin_log "stopping"
  # Services first (they finish in-flight work), then the broker and Redis.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; wait "${pids[$i]}" 2>/dev/null || true; done
  twin_log "stopped"
}
trap stop_all INT TERM EXIT

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 100); do port_busy "$1" && return 0; sleep 0.1; done
  twin_log "nothing listens on port $1 after 10 s; see $DATA/log"; exit 1
}
for p in "$MQTT_PORT" "$REDIS_PORT"; do
  if port_busy "$p"; then
    twin_log "port $p is already in use (a system mosquitto or redis-server?); stop it, or set TWIN_MQTT_PORT / TWIN_REDIS_PORT"
    exit 1
  fi
done

{ cat "$TWIN_ROOT/deploy/mosquitto.conf"
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence_location %s/\n' "$MQTT_PORT" "$DATA/mosquitto"
  [ "$(id -u)" -eq 0 ] && printf 'user root\n'
} > "$DATA/mosquitto.conf"
mosquitto -c "$DATA/mosquitto.conf" 2>>"$DATA/log/mosquitto.log" & pids+=($!)
# The scenario runner's Redis user (read twin:*, write twin:scenario:* only) gets a password of
# its own, made once and kept in $DATA; the ACL file Redis loads carries only its SHA-256.
SCEN_PASS_FILE="$DATA/scenario-redis.password"
if [ ! -s "$SCEN_PASS_FILE" ]; then
  (umask 077; head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' > "$SCEN_PASS_FILE")
fi
SCEN_PASS="$(cat "$SCEN_PASS_FILE")"
SCEN_HASH="$(printf '%s' "$SCEN_PASS" | sha256sum | cut -d' ' -f1)"
(umask 077; sed "s/>twin-scenario-dev /#$SCEN_HASH /" "$TWIN_ROOT/deploy/redis-users.acl" > "$DATA/redis-users.acl")
redis-server "$TWIN_ROOT/deploy/redis.conf" --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DATA/redis" \
  --aclfile "$DATA/redis-users.acl" >>"$DATA/log/redis.log" 2>&1 & pids+=($!)
wait_port "$MQTT_PORT"; wait_port "$REDIS_PORT"

export TWIN_MQTT_URL="mqtt://127.0.0.1:$MQTT_PORT" TWIN_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
export TWIN_INSTANCE="${TWIN_INSTANCE:-local}"
export TWIN_MODEL="${TWIN_MODEL:-$TWIN_ROOT/deploy/plant.json}"  # the demo plant: limits, seasons
TWIN_METRICS_PORT="${TWIN_INGEST_METRICS_PORT:-9101}" "$BIN/twin-ingest" & pids+=($!)
TWIN_METRICS_PORT="${TWIN_PREDICTOR_METRICS_PORT:-9102}" "$BIN/twin-predictor" & pids+=($!)
TWIN_METRICS_PORT="${TWIN_SCENARIO_METRICS_PORT:-9103}" \
  TWIN_REDIS_URL="redis://twin-scenario:$SCEN_PASS@127.0.0.1:$REDIS_PORT" "$BIN/twin-scenario" & pids+=($!)

cat >&2 <<EOT

Twinloop is running (Ctrl-C stops it).
  broker     mqtt://127.0.0.1:$MQTT_PORT      logs: $DATA/log/
  redis      redis://127.0.0.1:$REDIS_PORT
  ingest     metrics http://127.0.0.1:${TWIN_INGEST_METRICS_PORT:-9101}/metrics
  predictor  metrics http://127.0.0.1:${TWIN_PREDICTOR_METRICS_PORT:-9102}/metrics
  scenario   metrics http://127.0.0.1:${TWIN_SCENARIO_METRICS_PORT:-9103}/metrics  (Redis user twin-scenario)

Send telemetry for asset press-1:
  echo 'seq: 1 samples {signal: "temp" value: 71.5}' \\
    | protoc --encode=twin.v1.Telemetry -I proto proto/twin/v1/twin.proto \\
    | mosquitto_pub -p $MQTT_PORT -q 1 -t twin/v1/asset/press-1/telemetry -s
Read it back:
  redis-cli -p $REDIS_PORT HGETALL 'twin:{press-1}:state'
  mosquitto_sub -p $MQTT_PORT -C 1 -N -t twin/v1/asset/press-1/state \\
    | protoc --decode=twin.v1.TwinState -I proto proto/twin/v1/twin.proto
Its forecast (once the predictor has seen two samples of a signal) and alerts:
  mosquitto_sub -p $MQTT_PORT -C 1 -N -t twin/v1/asset/press-1/prediction \\
    | protoc --decode=twin.v1.Prediction -I proto proto/twin/v1/twin.proto
  mosquitto_sub -p $MQTT_PORT -t twin/v1/asset/+/alert -F '%t %x'
What-if questions on the demo plant (from the live state; results also in twin:scenario:<id>):
  export TWIN_MQTT_URL=mqtt://127.0.0.1:$MQTT_PORT TWIN_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
  build/bin/twinctl scenario run --down press-1 --at 0 --for 4h
  build/bin/twinctl scenario run --supplier-late steel_mill --by 2d
  build/bin/twinctl scenario run --demand 1.4

EOT
# Any process ending ends the stack: a broken stack should not look alive.
wait -n "${pids[@]}" || true
twin_log "a process exited; see $DATA/log"
