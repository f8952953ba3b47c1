#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The container entrypoint of the Twinloop image: passwords from files into TWIN_* variables, then the program; `init` prepares the shared volumes.
#
# For any command: TWIN_MQTT_PASSWORD_FILE sets TWIN_MQTT_PASSWORD from that file;
# TWIN_REDIS_PASSWORD_FILE (with TWIN_REDIS_USER, or the default user when unset) puts
# user:password into TWIN_REDIS_URL (default redis://127.0.0.1:6379). So passwords stay in the
# secrets volume, out of docker-compose.yml and `docker inspect`, and the C programs need no
# *_FILE support. Then the command runs (exec): twin-ingest, twinctl, ...
#
# `init [--device ASSET]...` (the compose one-shot service; files from $TWIN_HOME, default
# /opt/twinloop): deploy/make-secrets.sh (with those --device options) into $TWIN_SECRETS_DIR,
# which only init and the operator mount; each service's own passwords into its own directory
# $TWIN_SERVICE_SECRETS_DIR/<service>/{mqtt,redis}/ (ingest, predictor, scenario, advisor:
# MQTT and Redis; devsim: MQTT only), the broker's password file into $TWIN_BROKER_AUTH_DIR, Redis's ACL
# file into $TWIN_REDIS_AUTH_DIR (each with the healthcheck user's credentials, nothing else),
# and the dashboard with the plant model ($TWIN_MODEL) and its config.json (topic root
# $TWIN_TOPIC_ROOT, default twin/v1, checked as the services check it) into $TWIN_WWW_DIR.
# With $TWIN_REDIS_ADMIN_DIR set (the Redis Cluster of docker-compose.scale.yml): also the
# replication user's password into $TWIN_REDIS_AUTH_DIR (replicas log in to their masters
# with it) and twin-admin's into $TWIN_REDIS_ADMIN_DIR (for the one-shot that creates the
# cluster, which alone mounts it).
# Exit status: 2 for a bad password file or setting, 1 for anything else.
set -euo pipefail

die() { echo "twin-entrypoint: $2" >&2; exit "$1"; }

# Sets SECRET to the first line of the password file $1, checked (it goes into a URL
# unescaped). Called in the main shell, never in $(...), so a bad file exits 2.
read_secret() {
  local LC_ALL=C
  [ -f "$1" ] && [ -r "$1" ] || die 2 "cannot read the password file $1"
  SECRET=""
  IFS= read -r SECRET <"$1" || true
  [[ "$SECRET" =~ ^[A-Za-z0-9._~-]{1,128}$ ]] || die 2 "$1: a password is one line of letters, digits and . _ ~ -"
}

if [ -n "${TWIN_MQTT_PASSWORD_FILE:-}" ]; then
  read_secret "$TWIN_MQTT_PASSWORD_FILE"
  export TWIN_MQTT_PASSWORD="$SECRET"
fi
if [ -n "${TWIN_REDIS_PASSWORD_FILE:-}" ]; then
  read_secret "$TWIN_REDIS_PASSWORD_FILE"
  pw="$SECRET"
  url="${TWIN_REDIS_URL:-redis://127.0.0.1:6379}"
  case "$url" in
    *@*) die 2 "TWIN_REDIS_URL already holds credentials; leave them out with TWIN_REDIS_PASSWORD_FILE" ;;
    redis://* | rediss://* | redis+cluster://*) ;;
    *) die 2 "TWIN_REDIS_URL must start with redis://, rediss:// or redis+cluster://" ;;
  esac
  export TWIN_REDIS_URL="${url%%://*}://${TWIN_REDIS_USER:-}:$pw@${url#*://}"
  unset pw
fi
SECRET=""
unset TWIN_MQTT_PASSWORD_FILE TWIN_REDIS_PASSWORD_FILE TWIN_REDIS_USER

# Exits 2 unless $1 is a topic root the services accept (tw_check_topic_root in
# services/common/src/config.c) and valid UTF-8.
check_topic_root() {
  local LC_ALL=C root="$1"
  local why=""
  if [ -z "$root" ]; then why="is empty"
  elif [ "${#root}" -gt 128 ]; then why="is longer than 128 characters"
  elif [[ "$root" == *[+#]* ]]; then why="must not contain the wildcards + or #"
  elif [[ "$root" == /* || "$root" == */ ]]; then why="must not start or end with /"
  elif [[ "$root" == '$'* ]]; then why="must not start with \$"
  elif [[ "$root" =~ [[:cntrl:]] ]]; then why="must not contain control characters"
  elif ! printf '%s' "$root" | iconv -f UTF-8 -t UTF-8 >/dev/null 2>&1; then why="is not UTF-8"
  fi
  [ -z "$why" ] || die 2 "TWIN_TOPIC_ROOT $why"
}

# $1 as a JSON string: quotes and backslashes escaped (control characters were refused).
json_str() { local s="${1//\\/\\\\}"; printf '"%s"' "${s//\"/\\\"}"; }

# Copies $2 (a file of the secrets dir) to $1 (0600, through a temp file and rename).
put() { cp "$2" "$1.tmp" && chmod 0600 "$1.tmp" && mv "$1.tmp" "$1"; }

# Each service's directory gets its own MQTT password and, if it uses Redis, its Redis one.
init_service_secrets() {
  local secrets="$1" base="$2" svc d
  for svc in ingest predictor scenario advisor devsim; do
    d="$base/$svc"
    mkdir -p "$d" && chmod 0700 "$d"
    rm -rf "${d:?}/mqtt" "${d:?}/redis"
    mkdir "$d/mqtt"
    put "$d/mqtt/twin-$svc.password" "$secrets/mqtt/twin-$svc.password"
    [ "$svc" != devsim ] || continue
    mkdir "$d/redis"
    put "$d/redis/twin-$svc.password" "$secrets/redis/twin-$svc.password"
  done
}

init_volumes() {
  local home="${TWIN_HOME:-/opt/twinloop}" secrets="${TWIN_SECRETS_DIR:-/var/lib/twinloop/secrets}"
  local broker="${TWIN_BROKER_AUTH_DIR:-/var/lib/twinloop/broker}"
  local redis="${TWIN_REDIS_AUTH_DIR:-/var/lib/twinloop/redis}" www="${TWIN_WWW_DIR:-/var/lib/twinloop/www}"
  local services="${TWIN_SERVICE_SECRETS_DIR:-/var/lib/twinloop/service-secrets}"
  local root="${TWIN_TOPIC_ROOT:-twin/v1}" devices=()
  while [ $# -gt 0 ]; do
    [ "$1" = --device ] && [ $# -ge 2 ] || die 2 "usage: init [--device ASSET]..."
    devices+=(--device "$2")
    shift 2
  done
  check_topic_root "$root"
  "$home/deploy/make-secrets.sh" --mqtt-url "${TWIN_INIT_MQTT_URL:-mqtt://broker:1883}" \
    --redis-url "${TWIN_INIT_REDIS_URL:-redis://redis:6379}" "${devices[@]}" "$secrets"
  umask 077
  init_service_secrets "$secrets" "$services"
  put "$broker/mosquitto.passwd" "$secrets/mosquitto.passwd"
  # The healthcheck's mosquitto_sub reads its user and password from this file
  # (XDG_CONFIG_HOME=<dir>), not from its command line; -I gives it a client id of its own.
  read_secret "$secrets/mqtt/healthcheck.password"
  printf -- '-u healthcheck\n-P %s\n-I healthcheck-\n' "$SECRET" >"$broker/mosquitto_sub.tmp"
  mv "$broker/mosquitto_sub.tmp" "$broker/mosquitto_sub"
  rm -f "$broker/healthcheck.password"  # an older init's
  put "$redis/users.acl" "$secrets/redis-users.acl"
  put "$redis/healthcheck.password" "$secrets/redis/healthcheck.password"
  if [ -n "${TWIN_REDIS_ADMIN_DIR:-}" ]; then
    put "$redis/replication.password" "$secrets/redis/replication.password"
    put "$TWIN_REDIS_ADMIN_DIR/twin-admin.password" "$secrets/redis/twin-admin.password"
  else
    rm -f "$redis/replication.password" # a scaled topology's, not needed by one Redis
  fi
  # The dashboard is public to whoever reaches the broker's port 9001, and so is its
  # config.json: the dashboard user reads and sends scenario requests, nothing else.
  umask 022
  find "$www" -mindepth 1 -delete
  cp -R "$home/dashboard/." "$www/"
  cp "${TWIN_MODEL:-$home/deploy/plant.json}" "$www/plant.json"  # units, limits, stations
  read_secret "$secrets/mqtt/dashboard.password"
  printf '{"username":"dashboard","password":%s,"topicRoot":%s}\n' \
    "$(json_str "$SECRET")" "$(json_str "$root")" >"$www/config.json"
  SECRET=""
  chmod -R a+rX "$www"
  echo "twin-entrypoint: secrets in $secrets, each service's own in $services, broker and Redis users, dashboard in $www" >&2
}

if [ "${1:-}" = init ]; then
  shift
  init_volumes "$@"
  exit 0
fi
[ $# -gt 0 ] || die 2 "no command (twin-ingest, twin-predictor, twin-scenario, twin-advisor, twin-devsim, twinctl or init)"
exec "$@"
