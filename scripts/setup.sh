#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what Twinloop needs from Debian's apt and builds the programs into build/bin/.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
# shellcheck disable=SC2086
twin_install $TWIN_PACKAGES_RUN
twin_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTWIN_TESTS=OFF
twin_install_npm
"$TWIN_ROOT/services/dashboard/vendor.sh"
twin_log "built: $(ls "$TWIN_ROOT/build/bin" | tr '\n' ' ')"
