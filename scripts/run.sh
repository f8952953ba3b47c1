#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the whole Twinloop stack natively in the foreground: mosquitto and redis-server with
# the configs from deploy/ (passwords, ACLs), every service under its own users, the simulated
# plant and the dashboard. Ctrl-C stops everything cleanly. Data and generated passwords live
# in var/ (override with TWIN_DATA_DIR); ports with TWIN_MQTT_PORT, TWIN_WS_PORT,
# TWIN_REDIS_PORT and TWIN_<SERVICE>_METRICS_PORT.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
"$TWIN_ROOT/scripts/setup.sh"

DATA="${TWIN_DATA_DIR:-$TWIN_ROOT/var}"
MQTT_PORT="${TWIN_MQTT_PORT:-1883}"
WS_PORT="${TWIN_WS_PORT:-9001}"
REDIS_PORT="${TWIN_REDIS_PORT:-6379}"
INGEST_PORT="${TWIN_INGEST_METRICS_PORT:-9101}"
PREDICTOR_PORT="${TWIN_PREDICTOR_METRICS_PORT:-9102}"
SCENARIO_PORT="${TWIN_SCENARIO_METRICS_PORT:-9103}"
DEVSIM_PORT="${TWIN_DEVSIM_METRICS_PORT:-9104}"
BIN="$TWIN_ROOT/build/bin"
SECRETS="$DATA/secrets"
mkdir -p "$DATA/mosquitto" "$DATA/redis" "$DATA/log"

pids=()
stopping=""
stop_all() {
  trap - INT TERM EXIT
  stopping=1
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
for p in "$MQTT_PORT" "$WS_PORT" "$REDIS_PORT" "$INGEST_PORT" "$PREDICTOR_PORT" "$SCENARIO_PORT" "$DEVSIM_PORT"; do
  if port_busy "$p"; then
    twin_log "port $p is already in use (a system mosquitto or redis-server, or another run.sh?); stop it, or set TWIN_MQTT_PORT / TWIN_WS_PORT / TWIN_REDIS_PORT / TWIN_<SERVICE>_METRICS_PORT"
    exit 1
  fi
done

# Passwords: made once, kept in $DATA/secrets (0700); twin.env holds the operator's.
"$TWIN_ROOT/deploy/make-secrets.sh" --mqtt-url "mqtt://127.0.0.1:$MQTT_PORT" \
  --redis-url "redis://127.0.0.1:$REDIS_PORT" "$SECRETS"
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

# The shipped broker config with only ports and paths rewritten (see deploy/mosquitto.conf).
{ sed -e "s|^listener 1883\$|listener $MQTT_PORT 127.0.0.1|" \
    -e "s|^listener 9001\$|listener $WS_PORT 127.0.0.1|" \
    -e "s|^password_file .*|password_file $SECRETS/mosquitto.passwd|" \
    -e "s|^acl_file .*|acl_file $TWIN_ROOT/deploy/mosquitto.acl|" \
    -e "s|^http_dir .*|http_dir $DATA/www|" \
    -e "s|^persistence_location .*|persistence_location $DATA/mosquitto/|" \
    -e "s|^plugin .*|plugin $TWIN_ROOT/build/lib/twin_clientid.so|" \
    "$TWIN_ROOT/deploy/mosquitto.conf"
  # As root, mosquitto would switch to its own user, which cannot read the password file.
  if [ "$(id -u)" -eq 0 ]; then printf 'user root\n'; fi
} >"$DATA/mosquitto.conf"
for want in "listener $MQTT_PORT " "listener $WS_PORT " "password_file $SECRETS/" "http_dir $DATA/www" \
  "plugin $TWIN_ROOT/build/lib/"; do
  grep -q "^$want" "$DATA/mosquitto.conf" || { twin_log "deploy/mosquitto.conf changed shape: no '$want' after rewriting"; exit 1; }
done
mosquitto -c "$DATA/mosquitto.conf" 2>>"$DATA/log/mosquitto.log" & pids+=($!)
redis-server "$TWIN_ROOT/deploy/redis.conf" --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DATA/redis" \
  --aclfile "$SECRETS/redis-users.acl" >>"$DATA/log/redis.log" 2>&1 & pids+=($!)
wait_port "$MQTT_PORT"; wait_port "$WS_PORT"; wait_port "$REDIS_PORT"

export TWIN_MQTT_URL="mqtt://127.0.0.1:$MQTT_PORT"
export TWIN_INSTANCE="${TWIN_INSTANCE:-local}"
# start NAME METRICS_PORT [REDIS_USER]: build/bin/twin-NAME as MQTT user twin-NAME. The
# passwords go into the environment of a subshell that then becomes the program (exec): never
# an argument of any process (`env VAR=... prog` would show them in ps while env runs).
start() {
  (
    export TWIN_METRICS_PORT="$2" TWIN_MQTT_USER="twin-$1"
    TWIN_MQTT_PASSWORD="$(secret mqtt "twin-$1")"
    export TWIN_MQTT_PASSWORD
    if [ $# -ge 3 ]; then
      TWIN_REDIS_URL="redis://$3:$(secret redis "$3")@127.0.0.1:$REDIS_PORT"
      export TWIN_REDIS_URL
    fi
    exec "$BIN/twin-$1"
  ) & pids+=($!)
}
start ingest "$INGEST_PORT" twin-ingest
start predictor "$PREDICTOR_PORT" twin-predictor
start scenario "$SCENARIO_PORT" twin-scenario
devsim="not built"
if [ -x "$BIN/twin-devsim" ]; then start devsim "$DEVSIM_PORT"; devsim="metrics http://127.0.0.1:$DEVSIM_PORT/metrics  (the demo plant, live)"; fi

# Paths in the hints, relative to the working directory when inside it.
relative() { case "$1" in "$PWD"/*) printf '%s' "${1#"$PWD"/}" ;; *) printf '%s' "$1" ;; esac; }
env_hint="$(relative "$DATA/twin.env")"
secrets_hint="$(relative "$SECRETS")"
cat >&2 <<EOT

Twinloop is running (Ctrl-C stops it). Logs of the broker and Redis: $DATA/log/
  dashboard  http://127.0.0.1:$WS_PORT/
  broker     mqtt://127.0.0.1:$MQTT_PORT (users and ACL: deploy/mosquitto.acl)
  redis      redis://127.0.0.1:$REDIS_PORT (users: deploy/users.acl)
  ingest     metrics http://127.0.0.1:$INGEST_PORT/metrics
  predictor  metrics http://127.0.0.1:$PREDICTOR_PORT/metrics
  scenario   metrics http://127.0.0.1:$SCENARIO_PORT/metrics
  devsim     $devsim
Passwords: $SECRETS/ (made once, kept). The operator's, in another shell:
  . $env_hint
  build/bin/twinctl assets
  build/bin/twinctl state press-1
  build/bin/twinctl alerts --follow
  build/bin/twinctl scenario run --down press-1 --at shift --for 4h --model deploy/plant.json
  redis-cli -p $REDIS_PORT --user operator --no-auth-warning HGETALL 'twin:{press-1}:state'
  XDG_CONFIG_HOME=$secrets_hint/mosquitto-clients mosquitto_sub -p $MQTT_PORT -t 'twin/v1/asset/+/alert' -F '%t %x'
(redis-cli takes the password from REDISCLI_AUTH, mosquitto_sub from that options file:
neither is on a command line, where ps shows it.)

EOT
# Any process ending ends the stack: a broken stack should not look alive.
wait -n "${pids[@]}" || true
[ -n "$stopping" ] || twin_log "a process exited; see $DATA/log and the lines above"
