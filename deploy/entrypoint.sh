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
# `init` (the compose one-shot service; files from $TWIN_HOME, default /opt/twinloop):
# deploy/make-secrets.sh into $TWIN_SECRETS_DIR, the broker's password file into
# $TWIN_BROKER_AUTH_DIR, Redis's ACL file into $TWIN_REDIS_AUTH_DIR (each with the healthcheck
# user's password, nothing else), and the dashboard with the plant model ($TWIN_MODEL) and its
# config.json into $TWIN_WWW_DIR.
# Exit status: 2 for a bad password file or setting, 1 for anything else.
set -euo pipefail

die() { echo "twin-entrypoint: $2" >&2; exit "$1"; }

# First line of a password file, checked: it goes into a URL unescaped.
read_secret() {
  [ -r "$1" ] || die 2 "cannot read the password file $1"
  local pw
  pw="$(head -n 1 "$1")"
  [[ "$pw" =~ ^[A-Za-z0-9._~-]{1,128}$ ]] || die 2 "$1: a password is one line of letters, digits and . _ ~ -"
  printf '%s' "$pw"
}

if [ -n "${TWIN_MQTT_PASSWORD_FILE:-}" ]; then
  TWIN_MQTT_PASSWORD="$(read_secret "$TWIN_MQTT_PASSWORD_FILE")"
  export TWIN_MQTT_PASSWORD
fi
if [ -n "${TWIN_REDIS_PASSWORD_FILE:-}" ]; then
  pw="$(read_secret "$TWIN_REDIS_PASSWORD_FILE")"
  url="${TWIN_REDIS_URL:-redis://127.0.0.1:6379}"
  case "$url" in
    *@*) die 2 "TWIN_REDIS_URL already holds credentials; leave them out with TWIN_REDIS_PASSWORD_FILE" ;;
    redis://* | rediss://*) ;;
    *) die 2 "TWIN_REDIS_URL must start with redis:// or rediss://" ;;
  esac
  export TWIN_REDIS_URL="${url%%://*}://${TWIN_REDIS_USER:-}:$pw@${url#*://}"
  unset pw
fi
unset TWIN_MQTT_PASSWORD_FILE TWIN_REDIS_PASSWORD_FILE TWIN_REDIS_USER

init_volumes() {
  local home="${TWIN_HOME:-/opt/twinloop}" secrets="${TWIN_SECRETS_DIR:-/var/lib/twinloop/secrets}"
  local broker="${TWIN_BROKER_AUTH_DIR:-/var/lib/twinloop/broker}"
  local redis="${TWIN_REDIS_AUTH_DIR:-/var/lib/twinloop/redis}" www="${TWIN_WWW_DIR:-/var/lib/twinloop/www}"
  "$home/deploy/make-secrets.sh" --mqtt-url "${TWIN_INIT_MQTT_URL:-mqtt://broker:1883}" \
    --redis-url "${TWIN_INIT_REDIS_URL:-redis://redis:6379}" "$secrets"
  umask 077
  cp "$secrets/mosquitto.passwd" "$broker/mosquitto.passwd"
  cp "$secrets/mqtt/healthcheck.password" "$broker/healthcheck.password"
  cp "$secrets/redis-users.acl" "$redis/users.acl"
  cp "$secrets/redis/healthcheck.password" "$redis/healthcheck.password"
  # The dashboard is public to whoever reaches the broker's port 9001, and so is its
  # config.json: the dashboard user reads and sends scenario requests, nothing else.
  umask 022
  find "$www" -mindepth 1 -delete
  cp -R "$home/dashboard/." "$www/"
  cp "${TWIN_MODEL:-$home/deploy/plant.json}" "$www/plant.json"  # units, limits, stations
  printf '{"username":"dashboard","password":"%s","topicRoot":"%s"}\n' \
    "$(read_secret "$secrets/mqtt/dashboard.password")" "${TWIN_TOPIC_ROOT:-twin/v1}" >"$www/config.json"
  chmod -R a+rX "$www"
  echo "twin-entrypoint: secrets in $secrets, broker and Redis users, dashboard in $www" >&2
}

if [ "${1:-}" = init ]; then
  init_volumes
  exit 0
fi
[ $# -gt 0 ] || die 2 "no command (twin-ingest, twin-predictor, twin-scenario, twin-devsim, twinctl or init)"
exec "$@"
