#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Makes (once) and keeps Twinloop's passwords in DIR, and derives from them the broker's password file, Redis's ACL file and the operator's twin.env.
#
# Usage: make-secrets.sh [--mqtt-url URL] [--redis-url URL] [--device ASSET]... DIR
#
# Idempotent: a password that exists is kept; only missing ones are made (32 random letters
# and digits). The derived files are written again on every run (atomically). Layout of DIR
# (0700; every file 0600):
#   mqtt/<user>.password   MQTT users: the services, operator, dashboard, healthcheck, and one
#                          per device added with --device (the user name is the asset id)
#   redis/<user>.password  Redis users: every user of deploy/users.acl except default
#   mosquitto.passwd       every mqtt/<user>.password, hashed (mosquitto_passwd -U, PBKDF2-SHA512)
#   redis-users.acl        deploy/users.acl without comments, each user with #<SHA-256>
#   twin.env               `. DIR/twin.env`: TWIN_MQTT_URL, TWIN_MQTT_USER=operator,
#                          TWIN_MQTT_PASSWORD, TWIN_REDIS_URL (operator, read-only) for twinctl,
#                          REDISCLI_AUTH (the operator's Redis password, for redis-cli --user)
#   mosquitto-clients/     mosquitto_sub and mosquitto_pub option files with the operator's
#                          user and password: XDG_CONFIG_HOME=DIR/mosquitto-clients mosquitto_sub ...
# --mqtt-url is mqtt://HOST[:PORT] (or mqtts, tcp, ssl), --redis-url redis://HOST[:PORT][/DB]
# or, for a Redis Cluster, redis+cluster://HOST[:PORT],HOST[:PORT]...; HOST is letters, digits
# and . _ - or a bracketed IPv6 address; no user, no other characters.
# A password file may be replaced by hand (letters, digits and . _ ~ -, 12 to 128 of them);
# run the script again and restart the broker and Redis to apply it.
# No password is ever a command-line argument (ps shows those): mosquitto_passwd hashes a
# 0600 plain-text file in DIR in place (-U).
# Exit status: 0 done, 2 bad arguments or a bad password file, 1 anything else.
set -euo pipefail
export LC_ALL=C # byte-wise character classes: [A-Za-z] means ASCII letters only

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TEMPLATE="${TWIN_USERS_ACL_TEMPLATE:-$HERE/users.acl}"
CONF="${TWIN_MOSQUITTO_CONF:-$HERE/mosquitto.conf}"
# MQTT users of deploy/mosquitto.acl that are not devices.
MQTT_USERS="twin-ingest twin-predictor twin-scenario twin-advisor twin-devsim operator dashboard healthcheck"
HOST_RE='([A-Za-z0-9._-]+|\[[0-9A-Fa-f.:]*:[0-9A-Fa-f.:]*\])'
MQTT_URL_RE="^(mqtt|mqtts|tcp|ssl)://$HOST_RE(:([0-9]{1,5}))?/?\$"
REDIS_URL_RE="^(redis)://$HOST_RE(:([0-9]{1,5}))?(/[0-9]{0,9})?\$"
# One node of a redis+cluster:// URL (database 0 only: no /DB).
REDIS_NODE_RE="^(redis)://$HOST_RE(:([0-9]{1,5}))?\$"
ASSET_RE='^[A-Za-z0-9._-]{1,64}$'
PASSWORD_RE='^[A-Za-z0-9._~-]{12,128}$'

die() { echo "make-secrets: $2" >&2; exit "$1"; }
usage() { die 2 "usage: make-secrets.sh [--mqtt-url URL] [--redis-url URL] [--device ASSET]... DIR"; }
# $1 made printable and short enough to quote back in a one-line message.
shown() { local s="${1:0:80}"; printf '%s' "${s//[^[:print:]]/?}"; }

# check_url OPTION VALUE REGEX EXAMPLE: exit 2 unless VALUE is a plain URL with a valid port.
check_url() {
  case "$2" in *@*) die 2 "$1 must not carry a user or password (make-secrets adds them)" ;; esac
  [[ "$2" =~ $3 ]] || die 2 "$1 must be $4, HOST of A-Z a-z 0-9 . _ - or [IPv6], nothing else: '$(shown "$2")'"
  local port="${BASH_REMATCH[4]}"
  [ -z "$port" ] || { [ "$((10#$port))" -ge 1 ] && [ "$((10#$port))" -le 65535 ]; } ||
    die 2 "$1: port $port is not from 1 to 65535"
}

mqtt_url="mqtt://127.0.0.1:1883"
redis_url="redis://127.0.0.1:6379"
devices=()
dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --mqtt-url) [ $# -ge 2 ] || usage; mqtt_url="$2"; shift 2 ;;
    --redis-url) [ $# -ge 2 ] || usage; redis_url="$2"; shift 2 ;;
    --device) [ $# -ge 2 ] || usage; devices+=("$2"); shift 2 ;;
    -h | --help) sed -n '3,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die 2 "unknown option $(shown "$1")" ;;
    *) [ -z "$dir" ] || usage; dir="$1"; shift ;;
  esac
done
[ -n "$dir" ] || usage
check_url --mqtt-url "$mqtt_url" "$MQTT_URL_RE" "mqtt://HOST[:PORT] (or mqtts://, tcp://, ssl://)"
case "$redis_url" in rediss://*) die 2 "--redis-url: rediss:// (TLS) is not supported by the services; use redis://" ;; esac
case "$redis_url" in
  redis+cluster://*)
    # Each node checked as a redis:// URL of its own; an empty one (",," or a trailing ",")
    # is refused too.
    nodes="${redis_url#redis+cluster://}"
    case ",$nodes," in *,,*) die 2 "--redis-url: an empty node in '$(shown "$redis_url")'" ;; esac
    IFS=, read -ra node_list <<<"$nodes"
    for node in "${node_list[@]}"; do
      check_url --redis-url "redis://$node" "$REDIS_NODE_RE" "redis+cluster://HOST[:PORT],HOST[:PORT]..."
    done ;;
  *) check_url --redis-url "$redis_url" "$REDIS_URL_RE" "redis://HOST[:PORT][/DB]" ;;
esac
# Client ids the broker keeps for the services and tools (the plugin_opt_clientid rules of
# mosquitto.conf, but the devices' "*" rule): a device connects with its asset id as client
# id, so an asset id inside one of them could never connect.
reserved_ids=()
if [ -r "$CONF" ]; then
  while read -r key user rest; do
    [ "$key" = plugin_opt_clientid ] && [ "$user" != '*' ] || continue
    read -ra pats <<<"$rest"
    reserved_ids+=("${pats[@]}")
  done <"$CONF"
fi
# check_device ASSET [WHERE]: ASSET (from --device, or from the password file WHERE) is an asset id.
check_device() {
  local where="${2:---device $(shown "$1")}" u p
  [[ "$1" =~ $ASSET_RE ]] || die 2 "$where: an asset id is 1-64 of A-Z a-z 0-9 . _ -"
  for u in $MQTT_USERS; do [ "$1" != "$u" ] || die 2 "$where: that name is a service's user"; done
  for p in "${reserved_ids[@]}"; do
    case "$p" in
      *'*') [[ "$1" != "${p%'*'}"* ]] || die 2 "$where: client ids $p belong to another user (mosquitto.conf)" ;;
      *) [ "$1" != "$p" ] || die 2 "$where: client id $p belongs to another user (mosquitto.conf)" ;;
    esac
  done
}
for d in "${devices[@]}"; do check_device "$d"; done
for tool in mosquitto_passwd sha256sum base64; do
  command -v "$tool" >/dev/null || die 1 "$tool not found (Debian: apt-get install mosquitto coreutils)"
done
[ -r "$TEMPLATE" ] || die 1 "cannot read the Redis users template $TEMPLATE"

umask 077
mkdir -p "$dir/mqtt" "$dir/redis" || die 1 "cannot create $dir"
chmod 0700 "$dir" "$dir/mqtt" "$dir/redis"
# Plain-text temp files (and mosquitto_passwd's backup of one) never outlive the script.
trap 'rm -f "$dir/mosquitto.passwd.plain" "$dir/mosquitto.passwd.plain.tmp" "$dir/redis-users.acl.tmp" "$dir/twin.env.tmp"' EXIT

# Sets PW to the first line of the password file $1, making the file first when it does not
# exist. Runs in the main shell (never inside $(...)), so a bad file exits 2 with its reason.
password() {
  local file="$1" pw=""
  if [ ! -e "$file" ] && [ ! -L "$file" ]; then
    while [ ${#pw} -lt 32 ]; do pw="$pw$(head -c 48 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9')"; done
    printf '%s\n' "${pw:0:32}" >"$file.tmp" && mv "$file.tmp" "$file"
  fi
  [ -f "$file" ] && [ -r "$file" ] || die 2 "$file: not a readable file (delete it to make a new password)"
  chmod 0600 "$file" || die 1 "cannot chmod $file"
  PW=""
  IFS= read -r PW <"$file" || true
  [[ "$PW" =~ $PASSWORD_RE ]] ||
    die 2 "$file: a password is one line of 12-128 letters, digits and . _ ~ - (delete the file to make a new one)"
}

# Redis users of the template, but default (each template line starts with `user NAME`).
template_users() {
  local line word user
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in '' | '#'*) continue ;; esac
    read -r word user _ <<<"$line"
    [ "$word" = user ] || die 1 "$TEMPLATE: a line that is not a comment must start with 'user': $line"
    [ "$user" = default ] || printf '%s\n' "$user"
  done <"$TEMPLATE"
}

# Every password file made when missing and checked before anything is derived from them, so
# a bad one changes nothing. Broker users: fixed ones, devices asked for now, and devices
# added on earlier runs; then the Redis users.
for u in $MQTT_USERS "${devices[@]}"; do password "$dir/mqtt/$u.password"; done
for f in "$dir"/mqtt/*.password; do
  u="$(basename "$f" .password)"
  case " $MQTT_USERS " in *" $u "*) ;; *) check_device "$u" "$f" ;; esac
  password "$f"
done
redis_users="$(template_users)"
for u in $redis_users; do password "$dir/redis/$u.password"; done
plain="$dir/mosquitto.passwd.plain"
: >"$plain"
for f in "$dir"/mqtt/*.password; do
  password "$f"
  printf '%s:%s\n' "$(basename "$f" .password)" "$PW" >>"$plain"
done
mosquitto_passwd -U "$plain" >/dev/null || die 1 "mosquitto_passwd -U failed on $plain"
if grep -qv '^[^:]*:\$7\$' "$plain"; then die 1 "mosquitto_passwd -U left a line unhashed"; fi
mv "$plain" "$dir/mosquitto.passwd"

# Redis users: the template's lines without comments, each user but default with its hash.
tmp="$dir/redis-users.acl.tmp"
: >"$tmp"
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in '' | '#'*) continue ;; esac
  read -r word user _ <<<"$line"
  if [ "$user" = default ]; then
    printf '%s\n' "$line" >>"$tmp"
  else
    password "$dir/redis/$user.password"
    hash="$(printf '%s' "$PW" | sha256sum)"
    printf '%s #%s\n' "$line" "${hash%% *}" >>"$tmp"
  fi
done <"$TEMPLATE"
mv "$tmp" "$dir/redis-users.acl"

# The operator's environment. Every value is single-quoted with any ' escaped; the URLs were
# checked above and the passwords hold no quote either.
sq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
password "$dir/mqtt/operator.password"
op_mqtt="$PW"
password "$dir/redis/operator.password"
op_redis="$PW"
tmp="$dir/twin.env.tmp"
{
  printf '%s\n' "# Twinloop operator credentials, made by deploy/make-secrets.sh. Use: . <this file>" \
    "# then twinctl ..., redis-cli -h HOST -p PORT --user operator ... (REDISCLI_AUTH)."
  printf 'export TWIN_MQTT_URL=%s\n' "$(sq "$mqtt_url")"
  printf 'export TWIN_MQTT_USER=%s\n' "$(sq operator)"
  printf 'export TWIN_MQTT_PASSWORD=%s\n' "$(sq "$op_mqtt")"
  printf 'export TWIN_REDIS_URL=%s\n' "$(sq "${redis_url%%://*}://operator:$op_redis@${redis_url#*://}")"
  printf 'export REDISCLI_AUTH=%s\n' "$(sq "$op_redis")"
} >"$tmp"
mv "$tmp" "$dir/twin.env"
# The operator's mosquitto_sub/mosquitto_pub options (they read $XDG_CONFIG_HOME/<program>).
mkdir -p "$dir/mosquitto-clients" && chmod 0700 "$dir/mosquitto-clients"
for prog in mosquitto_sub mosquitto_pub; do
  # -I: client id operator-<pid>, one of the operator's (plugin_opt_clientid in mosquitto.conf).
  printf -- '-u operator\n-P %s\n-I operator-\n' "$op_mqtt" >"$dir/mosquitto-clients/$prog.tmp"
  mv "$dir/mosquitto-clients/$prog.tmp" "$dir/mosquitto-clients/$prog"
done
