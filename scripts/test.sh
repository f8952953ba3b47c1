#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds Twinloop with ASan+UBSan (clang, with libFuzzer targets) and runs the whole test
# suite: unit, integration and fault tests against real mosquitto and redis-server, and
# bounded fuzz runs. Ends with ctest's summary line. TWIN_TEST_ARGS adds ctest arguments
# (e.g. TWIN_TEST_ARGS="-L unit").
set -euo pipefail
source "$(dirname "$0")/lib.sh"
# shellcheck disable=SC2086
twin_install $TWIN_PACKAGES_RUN $TWIN_PACKAGES_TEST
export CC=clang
twin_install_npm
"$TWIN_ROOT/services/dashboard/vendor.sh"
twin_build build-test -DCMAKE_BUILD_TYPE=Debug -DTWIN_SANITIZE=ON -DTWIN_FUZZ=ON
# Services started by the tests inherit these: every sanitizer finding fails loudly.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
export TWIN_BUILD_DIR="$TWIN_ROOT/build-test"
cd "$TWIN_ROOT/build-test"
# shellcheck disable=SC2086
exec ctest --output-on-failure -j2 ${TWIN_TEST_ARGS:-}
