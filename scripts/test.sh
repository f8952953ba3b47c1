#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds Twinloop with ASan+UBSan (clang, with libFuzzer targets) and runs the whole test
# suite: unit, integration and fault tests against real mosquitto and redis-server, and
# bounded fuzz runs. Ends with ctest's summary line. TWIN_TEST_ARGS adds ctest arguments
# (e.g. TWIN_TEST_ARGS="-L unit"). TWIN_SANITIZER=thread builds with ThreadSanitizer instead
# (CMake preset tsan into build-tsan, no fuzz targets) and runs the unit, integration,
# end-to-end and fault tests one at a time (see run_tsan).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
case "${TWIN_SANITIZER:-address}" in
address | thread) ;;
*)
    echo "scripts/test.sh: TWIN_SANITIZER must be 'address' (the default) or 'thread'," \
        "not '${TWIN_SANITIZER}'" >&2
    exit 2
    ;;
esac

# ThreadSanitizer run. Services started by the tests inherit TSAN_OPTIONS: a race or a lock
# inversion stops the service (halt_on_error) and the harness fails the test on the report;
# die_after_fork=0 because twin-ingest forks its workers (which start Paho's threads) while its
# metrics thread runs, held idle in poll across fork() (services/ingest/main.c fork_quietly);
# tests/tsan.supp names the third-party false positives. TWIN_TEST_SLOW scales the harness's
# time bounds: TSan runs the services 5-15 times slower.
run_tsan() {
    cd "$TWIN_ROOT"
    cmake --preset tsan >/dev/null
    cmake --build --preset tsan -j"$(nproc)" 2>&1 | grep -E 'error|warning|Error' || true
    test "${PIPESTATUS[0]}" -eq 0
    export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 history_size=4 die_after_fork=0 \
suppressions=$TWIN_ROOT/tests/tsan.supp ${TSAN_OPTIONS:-}"
    export TWIN_TEST_SLOW="${TWIN_TEST_SLOW:-5}"
    export TWIN_BUILD_DIR="$TWIN_ROOT/build-tsan"
    cd "$TWIN_ROOT/build-tsan"
    # shellcheck disable=SC2086
    exec ctest --output-on-failure -j1 -L 'unit|integration|e2e|fault' ${TWIN_TEST_ARGS:-}
}
# shellcheck disable=SC2086
twin_install $TWIN_PACKAGES_RUN $TWIN_PACKAGES_TEST
export CC=clang
twin_install_npm
"$TWIN_ROOT/services/dashboard/vendor.sh"
"$TWIN_ROOT/tests/mcp/install.sh"
if [ "${TWIN_SANITIZER:-address}" = thread ]; then run_tsan; fi
twin_build build-test -DCMAKE_BUILD_TYPE=Debug -DTWIN_SANITIZE=ON -DTWIN_FUZZ=ON
# Services started by the tests inherit these: every sanitizer finding fails loudly.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
# Third-party leaks only (OpenSSL per-thread state of Paho threads still exiting): tests/lsan.supp.
export LSAN_OPTIONS="suppressions=$TWIN_ROOT/tests/lsan.supp:${LSAN_OPTIONS:-}"
export TWIN_BUILD_DIR="$TWIN_ROOT/build-test"
cd "$TWIN_ROOT/build-test"
# shellcheck disable=SC2086
exec ctest --output-on-failure -j2 ${TWIN_TEST_ARGS:-}
