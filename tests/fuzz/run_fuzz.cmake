# SPDX-License-Identifier: Apache-2.0
# Runs one libFuzzer target for a bounded time on a build-tree copy of its seed corpus, so new
# inputs never land in the repository; a crashing input is kept under ARTIFACTS.
foreach(var FUZZER SEEDS WORK ARTIFACTS SECONDS)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "run_fuzz.cmake: -D${var}=... is required")
    endif()
endforeach()

file(MAKE_DIRECTORY ${WORK} ${ARTIFACTS})
file(GLOB seeds ${SEEDS}/*)
file(COPY ${seeds} DESTINATION ${WORK})

get_filename_component(name ${FUZZER} NAME)
set(args -max_total_time=${SECONDS} -timeout=5 -rss_limit_mb=2048 -print_final_stats=1
         -artifact_prefix=${ARTIFACTS}/${name}-)
if(DICT)
    list(APPEND args -dict=${DICT})
endif()
execute_process(COMMAND ${FUZZER} ${args} ${WORK} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${name} failed (${rc}); the input that broke it is in ${ARTIFACTS}")
endif()
