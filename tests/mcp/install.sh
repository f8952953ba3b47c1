#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the MCP test clients' npm packages (npm ci from package-lock.json) once, and again only when the lock file changed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
twin_npm_ci "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
