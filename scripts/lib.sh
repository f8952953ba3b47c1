# SPDX-License-Identifier: Apache-2.0
# Shared by setup.sh, run.sh, test.sh and the npm installers: installs Twinloop's Debian and npm packages when missing.

TWIN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Build and run dependencies (Debian 12 package names).
TWIN_PACKAGES_RUN="build-essential cmake pkg-config libpaho-mqtt-dev libhiredis-dev
  libprotobuf-c-dev protobuf-c-compiler libcjson-dev libssl-dev mosquitto mosquitto-clients
  mosquitto-dev libmosquitto-dev redis-server redis-tools protobuf-compiler curl procps"
# Test-only dependencies: cmocka, clang for sanitizers and libFuzzer, Python for the harness,
# SimPy for the scenario engine's cross-check (python3-simpy3 is SimPy 3, `import simpy`;
# Debian's python3-simpy is the old SimPy 2 API), Chromium for the dashboard's browser test,
# docker-compose to validate docker-compose.yml (there is no Docker engine in CI), faketime
# for the device clock-skew fault test.
TWIN_PACKAGES_TEST="libcmocka-dev clang libclang-rt-14-dev python3 python3-paho-mqtt
  python3-redis python3-protobuf python3-simpy3 chromium docker-compose faketime"

twin_log() { printf '%s twinloop: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# Installs the named packages that are not installed yet (apt-get update first, as root).
twin_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  twin_log "installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

# Node.js and npm, for the dashboard's vendored libraries: Debian's packages unless a Node.js
# that brings its own npm is installed already (NodeSource's nodejs, which conflicts with
# Debian's npm package).
twin_install_npm() {
  command -v npm >/dev/null && command -v node >/dev/null && return 0
  twin_install nodejs npm
}

# Configures and builds into $1 with the remaining arguments passed to cmake.
# twin_npm_ci DIR: installs DIR's npm packages from its package-lock.json (npm ci), and again
# only when the lock file changed since (a stamp in node_modules). --ignore-scripts: none of
# the packages needs an install script.
twin_npm_ci() {
  local dir="$1" stamp="$1/node_modules/.twin-package-lock.sha256" want
  command -v npm >/dev/null || { twin_log "npm not found (apt-get install nodejs npm)"; return 1; }
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    twin_log "npm ci in $dir"
    (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
    echo "$want" >"$stamp"
  fi
}

twin_build() {
  local dir="$1"; shift
  cmake -S "$TWIN_ROOT" -B "$TWIN_ROOT/$dir" "$@" >/dev/null
  cmake --build "$TWIN_ROOT/$dir" -j"$(nproc)" 2>&1 | grep -E 'error|warning|Error' || true
  test "${PIPESTATUS[0]}" -eq 0
}
