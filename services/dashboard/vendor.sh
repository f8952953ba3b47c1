#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the dashboard's npm packages (npm ci) and copies their browser builds, licenses and twin.proto into public/vendor/.
#
# Idempotent and quick when nothing changed: `npm ci` runs only when package-lock.json differs
# from the one node_modules was installed from, and files are copied only when they differ.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
vendor="$here/public/vendor"

source "$repo/scripts/lib.sh"
twin_npm_ci "$here"

# copy SRC DEST: copies when DEST is missing or different (keeps mtimes stable otherwise).
copy() {
  if [ ! -f "$1" ]; then
    echo "vendor.sh: $1 is missing: the installed package has another layout" >&2
    exit 1
  fi
  cmp -s "$1" "$2" 2>/dev/null || cp "$1" "$2"
}

mkdir -p "$vendor"
nm="$here/node_modules"
copy "$nm/mqtt/dist/mqtt.min.js" "$vendor/mqtt.min.js"
copy "$nm/mqtt/LICENSE.md" "$vendor/LICENSE.mqtt.md"
copy "$nm/protobufjs/dist/protobuf.min.js" "$vendor/protobuf.min.js"
copy "$nm/protobufjs/LICENSE" "$vendor/LICENSE.protobufjs"
copy "$nm/uplot/dist/uPlot.iife.min.js" "$vendor/uPlot.iife.min.js"
copy "$nm/uplot/dist/uPlot.min.css" "$vendor/uPlot.min.css"
copy "$nm/uplot/LICENSE" "$vendor/LICENSE.uplot"
copy "$repo/proto/twin/v1/twin.proto" "$vendor/twin.proto"
