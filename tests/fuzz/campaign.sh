#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The longer fuzz campaign: runs every libFuzzer target for a fixed time on a copy of its seed corpus and prints a markdown table (executions, coverage, corpus growth, crashes) for tests/fuzz/RESULTS.md.
#
#   tests/fuzz/campaign.sh [--build DIR] [--seconds S] [--jobs N] [--nice] [TARGET...]
#
# DIR is a build tree configured with -DTWIN_FUZZ=ON (clang; default build-fuzz); S seconds
# per target (default 600); N targets at a time (default 1); --nice runs them at nice 19.
# The working corpora, logs and crashing inputs stay in DIR/fuzz-campaign/ (never in the
# repository). Exit status 1 when any target found a crash, a leak or a timeout.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
build="$ROOT/build-fuzz" seconds=600 jobs=1 nice="" targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --nice) nice="nice -n 19"; shift ;;
    -h | --help) sed -n '3,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "campaign.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "campaign.sh: --seconds wants a positive integer" >&2; exit 2; }
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "campaign.sh: --jobs wants a positive integer" >&2; exit 2; }
[ -d "$build/bin" ] || { echo "campaign.sh: $build/bin not found (cmake --preset fuzz, or -DTWIN_FUZZ=ON with clang)" >&2; exit 2; }
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$build"/bin/fuzz_*; do targets+=("$(basename "$f")"); done
fi
out="$build/fuzz-campaign"
mkdir -p "$out"

# One target: corpus copy, run, log. The corpus directory name is the target's without fuzz_.
run_one() {
  local t="$1" c="${1#fuzz_}"
  local work="$out/$t/corpus" log="$out/$t/log" dict=()
  rm -rf "$out/$t" && mkdir -p "$work" "$out/$t/artifacts"
  cp "$ROOT/tests/fuzz/corpus/$c/"* "$work/"
  [ -f "$ROOT/tests/fuzz/$c.dict" ] && dict=(-dict="$ROOT/tests/fuzz/$c.dict")
  local rc=0 t0
  t0=$(date +%s)
  $nice "$build/bin/$t" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$out/$t/artifacts/" "${dict[@]}" "$work" \
    >"$log" 2>&1 || rc=$?
  echo "$rc" >"$out/$t/rc"
  echo $(($(date +%s) - t0)) >"$out/$t/seconds"  # less than asked when it stopped at a finding
}

started=$(date -u +%Y-%m-%dT%H:%MZ)
# The source the run is about: HEAD when it starts (and whether files differ), not at its end.
source_line="git $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- services tests/fuzz || echo ' + local changes'); binaries built $(date -u -r "$build/bin/${targets[0]}" +%Y-%m-%dT%H:%MZ)"
running=0
for t in "${targets[@]}"; do
  [ -x "$build/bin/$t" ] || { echo "campaign.sh: no $build/bin/$t" >&2; exit 2; }
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait

# The table: from libFuzzer's final statistics and its last status line.
failed=0
echo "### Fuzz campaign, $started"
echo
echo "- Command: \`tests/fuzz/campaign.sh --build ${build#"$ROOT"/} --seconds $seconds --jobs $jobs${nice:+ --nice} ${targets[*]}\`"
echo "- Source: $source_line"
echo "- Machine: nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(clang --version | head -1)"
echo
echo "| target | seconds run | executions | exec/s | coverage (cov) | features (ft) | seed inputs | corpus after | crashes / leaks / timeouts |"
echo "|---|---|---|---|---|---|---|---|---|"
for t in "${targets[@]}"; do
  log="$out/$t/log" c="${t#fuzz_}"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  seeds=$(find "$ROOT/tests/fuzz/corpus/$c" -type f | wc -l)
  after=$(find "$out/$t/corpus" -type f | wc -l)
  found=$(find "$out/$t/artifacts" -type f | wc -l)
  if [ "$(cat "$out/$t/rc")" != 0 ] || [ "$found" != 0 ]; then
    failed=1
    found="$found (exit $(cat "$out/$t/rc"); see $out/$t/)"
  fi
  echo "| $t | $(cat "$out/$t/seconds") | ${execs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | $seeds | $after | $found |"
done
exit "$failed"
