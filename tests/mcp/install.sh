#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the MCP test clients' npm packages (npm ci from package-lock.json) once, and again only when the lock file changed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
stamp="$here/node_modules/.twin-package-lock.sha256"
command -v npm >/dev/null || { echo "tests/mcp/install.sh: npm not found (apt-get install nodejs npm)" >&2; exit 1; }
want="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "tests/mcp/install.sh: npm ci in $here" >&2
  # --ignore-scripts: the SDK needs no install script.
  (cd "$here" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  echo "$want" >"$stamp"
fi
