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
#   mosquitto.passwd       every mqtt/<user>.password, hashed (mosquitto_passwd, PBKDF2-SHA512)
#   redis-users.acl        deploy/users.acl without comments, each user with #<SHA-256>
#   twin.env               `. DIR/twin.env`: TWIN_MQTT_URL, TWIN_MQTT_USER=operator,
#                          TWIN_MQTT_PASSWORD, TWIN_REDIS_URL (operator, read-only) for twinctl,
#                          redis-cli -u "$TWIN_REDIS_URL", mosquitto_sub -u/-P
# A password file may be replaced by hand (letters, digits and . _ ~ -, 12 to 128 of them);
# run the script again and restart the broker and Redis to apply it.
# Exit status: 0 done, 2 bad arguments or a bad password file, 1 anything else.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TEMPLATE="${TWIN_USERS_ACL_TEMPLATE:-$HERE/users.acl}"
# MQTT users of deploy/mosquitto.acl that are not devices.
MQTT_USERS="twin-ingest twin-predictor twin-scenario twin-devsim operator dashboard healthcheck"

die() { echo "make-secrets: $2" >&2; exit "$1"; }
usage() { die 2 "usage: make-secrets.sh [--mqtt-url URL] [--redis-url URL] [--device ASSET]... DIR"; }

mqtt_url="mqtt://127.0.0.1:1883"
redis_url="redis://127.0.0.1:6379"
devices=()
dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --mqtt-url) [ $# -ge 2 ] || usage; mqtt_url="$2"; shift 2 ;;
    --redis-url) [ $# -ge 2 ] || usage; redis_url="$2"; shift 2 ;;
    --device) [ $# -ge 2 ] || usage; devices+=("$2"); shift 2 ;;
    -h | --help) sed -n '3,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die 2 "unknown option $1" ;;
    *) [ -z "$dir" ] || usage; dir="$1"; shift ;;
  esac
done
[ -n "$dir" ] || usage
case "$redis_url" in
  redis://*@* | rediss://*@*) die 2 "--redis-url must not carry a user: $redis_url" ;;
  redis://* | rediss://*) ;;
  *) die 2 "--redis-url must start with redis:// or rediss://" ;;
esac
case "$mqtt_url" in *@*) die 2 "--mqtt-url must not carry a user" ;; esac
for d in "${devices[@]}"; do
  [[ "$d" =~ ^[A-Za-z0-9._-]{1,64}$ ]] || die 2 "--device $d: an asset id is 1-64 of A-Z a-z 0-9 . _ -"
  for u in $MQTT_USERS; do [ "$d" != "$u" ] || die 2 "--device $d: that name is a service's user"; done
done
for tool in mosquitto_passwd sha256sum base64; do
  command -v "$tool" >/dev/null || die 1 "$tool not found (Debian: apt-get install mosquitto coreutils)"
done
[ -r "$TEMPLATE" ] || die 1 "cannot read the Redis users template $TEMPLATE"

umask 077
mkdir -p "$dir/mqtt" "$dir/redis" || die 1 "cannot create $dir"
chmod 0700 "$dir" "$dir/mqtt" "$dir/redis"

# Prints the password of $1 (a file), making it first when it does not exist.
password() {
  local file="$1" pw=""
  if [ ! -e "$file" ]; then
    while [ ${#pw} -lt 32 ]; do pw="$pw$(head -c 48 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9')"; done
    printf '%s\n' "${pw:0:32}" >"$file.tmp" && mv "$file.tmp" "$file"
  fi
  chmod 0600 "$file"
  pw="$(head -n 1 "$file")"
  [[ "$pw" =~ ^[A-Za-z0-9._~-]{12,128}$ ]] ||
    die 2 "$file: a password is one line of 12-128 letters, digits and . _ ~ - (delete the file to make a new one)"
  printf '%s' "$pw"
}

# Broker users: fixed ones, devices asked for now, and devices added on earlier runs.
for u in $MQTT_USERS "${devices[@]}"; do password "$dir/mqtt/$u.password" >/dev/null; done
for f in "$dir"/mqtt/*.password; do password "$f" >/dev/null; done  # checks hand-made ones
tmp="$dir/mosquitto.passwd.tmp"
rm -f "$tmp"
for f in "$dir"/mqtt/*.password; do
  u="$(basename "$f" .password)"
  if [ -e "$tmp" ]; then flag=(-b); else flag=(-c -b); fi
  mosquitto_passwd "${flag[@]}" "$tmp" "$u" "$(password "$f")" ||
    die 1 "mosquitto_passwd failed for user $u"
done
chmod 0600 "$tmp" && mv "$tmp" "$dir/mosquitto.passwd"

# Redis users: the template's lines without comments, each user but default with its hash.
tmp="$dir/redis-users.acl.tmp"
: >"$tmp"
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in '' | '#'*) continue ;; esac
  read -r word user _ <<<"$line"
  [ "$word" = user ] || die 1 "$TEMPLATE: a line that is not a comment must start with 'user': $line"
  if [ "$user" = default ]; then
    printf '%s\n' "$line" >>"$tmp"
  else
    hash="$(password "$dir/redis/$user.password" | sha256sum | cut -d' ' -f1)"
    printf '%s #%s\n' "$line" "$hash" >>"$tmp"
  fi
done <"$TEMPLATE"
mv "$tmp" "$dir/redis-users.acl"

# The operator's environment.
op_mqtt="$(password "$dir/mqtt/operator.password")"
op_redis="$(password "$dir/redis/operator.password")"
tmp="$dir/twin.env.tmp"
cat >"$tmp" <<EOT
# Twinloop operator credentials, made by deploy/make-secrets.sh. Use: . $dir/twin.env
# then twinctl ..., redis-cli -u "\$TWIN_REDIS_URL" ...,
# mosquitto_sub -u "\$TWIN_MQTT_USER" -P "\$TWIN_MQTT_PASSWORD" -t 'twin/v1/#' ...
export TWIN_MQTT_URL='$mqtt_url'
export TWIN_MQTT_USER='operator'
export TWIN_MQTT_PASSWORD='$op_mqtt'
export TWIN_REDIS_URL='${redis_url%%://*}://operator:$op_redis@${redis_url#*://}'
EOT
mv "$tmp" "$dir/twin.env"
