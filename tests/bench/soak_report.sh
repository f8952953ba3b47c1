#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The soak's analysis and report (sourced by run_soak.sh): slopes and verdicts of the sampled series, the tables, the markdown block.
# shellcheck disable=SC2154  # the globals are run_soak.sh's

# ---- analysis ---------------------------------------------------------------------------------

# Column number of a sample field.
col() { awk -v c="$1" -v cols="$COLUMNS" 'BEGIN { n = split(cols, a, " "); for (i = 1; i <= n; i++) if (a[i] == c) print i }'; }

# Per-window latency of the loadgen's log: "window_end_s n lost p50 p99 max" by due time.
latency_windows() {
    : >"$TMP/latency.windows"
    [ -s "$TMP/latency.log" ] || return 0
    awk -v w=$((INTERVAL * 1000)) '!/^#/ { k = (int($1 / w) + 1) * w / 1000; print k, ($2 < 0 ? -1 : $2) }' \
        "$TMP/latency.log" | LC_ALL=C sort -k1,1n -k2,2n |
        awk 'function flush() { if (n + lost == 0) return
                 printf "%d %d %d %.3f %.3f %.3f\n", k, n, lost, (n ? v[int(0.5 * n + 0.999999)] : 0),
                     (n ? v[int(0.99 * n + 0.999999)] : 0), (n ? v[n] : 0) }
             $1 != k { flush(); k = $1; n = 0; lost = 0 }
             { if ($2 < 0) lost++; else v[++n] = $2 }
             END { flush() }' >"$TMP/latency.windows"
}

# Least-squares fit of series $1 (a sample column, or "lat_p50"/"lat_p99"/"backlog"/"queued"/
# "hist_mean"/"busy"), over the samples with $2 <= t <= $3: "n mean slope_per_s se_slope".
fit() {
    local series=$1 from=$2 to=$3
    series_values "$series" |
        awk -v a="$from" -v b="$to" '$1 >= a && $1 <= b { n++; x[n] = $1; y[n] = $2; sx += $1; sy += $2 }
            END {
                if (n < 3) { print n, 0, 0, 0; exit }
                mx = sx / n; my = sy / n
                for (i = 1; i <= n; i++) { sxx += (x[i] - mx)^2; sxy += (x[i] - mx) * (y[i] - my) }
                s = (sxx > 0 ? sxy / sxx : 0)
                for (i = 1; i <= n; i++) { r = y[i] - my - s * (x[i] - mx); ss += r * r }
                se = (sxx > 0 ? sqrt(ss / (n - 2) / sxx) : 0)
                printf "%d %.6f %.9f %.9f\n", n, my, s, se
            }'
}

# "t value" lines of one series over the numbered samples.
series_values() {
    local c
    case "$1" in
    lat_p50) awk '{ print $1, $4 }' "$TMP/latency.windows" 2>/dev/null ;;
    lat_p99) awk '{ print $1, $5 }' "$TMP/latency.windows" 2>/dev/null ;;
    backlog) awk -v a="$(col ing_states)" -v b="$(col pred_states)" '$1 ~ /^[0-9]+$/ { print $1, $a - $b }' "$TMP/samples" ;;
    queued) awk -v a="$(col mosq_store)" -v b="$(col mosq_retained)" '$1 ~ /^[0-9]+$/ && $a >= 0 && $b >= 0 { print $1, $a - $b }' "$TMP/samples" ;;
    hist_mean) awk -v a="$(col hist_sum)" -v n="$ASSETS" '$1 ~ /^[0-9]+$/ { print $1, $a / n }' "$TMP/samples" ;;
    *) c=$(col "$1"); awk -v c="$c" '$1 ~ /^[0-9]+$/ && $c >= 0 { print $1, $c }' "$TMP/samples" ;;
    esac
}

# A row of the trend table. $1 series, $2 label, $3 kind: mem (kB), mem_b (bytes), queue, lat,
# or info (no verdict).
# mem:   flat when the fitted growth over 10 min is < 1 % of the series' mean over the half;
#        otherwise GROWS, qualified "within noise" when the slope is < 2 standard errors, and
#        "in steps" when the run's peak was first reached before the last third of the half
#        (nothing higher since).
# queue: "trends up" when the fitted rise over the half is > 100 and > 3 standard errors.
# lat:   "trends up" when the fitted rise over the half is > 3 standard errors and > 20 % of the mean.
# hist:  history entries per asset: "trends up" when the fitted rise over the half is > 3 standard
#        errors and > 5 % of the mean; and "over the cap" when an asset's stream held more than
#        the cap + 100 (MAXLEN ~ trims whole stream nodes of 100 entries).
trend_row() {
    local series=$1 label=$2 kind=$3 n mean s se peak peak_t
    read -r n mean s se <<<"$(fit "$series" "$HALF" "$DURATION")"
    # The peak over the load (t > 0) and the first t it was reached.
    read -r peak peak_t <<<"$(series_values "$series" |
        awk -v d="$DURATION" '$1 > 0 && $1 <= d && (n++ == 0 || $2 > m) { m = $2; t = $1 } END { print m + 0, t + 0 }')"
    local span=$((DURATION - HALF))
    local cap=$HISTORY_MAXLEN hmax
    [ "$cap" -gt 0 ] || cap=10000
    hmax=$(awk -v c="$(col hist_max)" '$1 ~ /^[0-9]+$/ && $c > m { m = $c } END { print m + 0 }' "$TMP/samples")
    awk -v n="$n" -v mean="$mean" -v s="$s" -v se="$se" -v kind="$kind" -v label="$label" -v span="$span" \
        -v cap="$cap" -v hmax="$hmax" -v peak="$peak" -v peak_t="$peak_t" -v dur="$DURATION" '
        function mem(x) { return (kind == "mem_b" ? x / 1048576 : x / 1024) }
        BEGIN {
            if (n < 3) { printf "| %s | - | - | - | - | - | too few samples |\n", label; exit }
            rise = s * span; rse = se * span
            if (kind == "mem" || kind == "mem_b" || kind == "mem_info") {
                g = (mean > 0 ? 100 * s * 600 / mean : 0)
                v = (kind == "mem_info" ? "- (by design)" : g < 1 ? "flat" : "GROWS")
                if (v == "GROWS" && s < 2 * se) v = v " (within noise: slope < 2 standard errors)"
                else if (v == "GROWS" && peak_t < dur - span / 3) v = v sprintf(" (in steps: no new peak after t = %d s)", peak_t)
                printf "| %s | %.2f MB | %+.4f MB/min (± %.4f) | %+.2f %% | %.2f MB (t = %d s) | %s |\n",
                    label, mem(mean), mem(s * 60), mem(se * 60), g, mem(peak), peak_t, v
            } else {
                g = (mean > 0 ? 100 * s * 600 / mean : 0)
                if (kind == "queue") v = (rise > 100 && rise > 3 * rse ? "TRENDS UP" : "flat")
                else if (kind == "lat") v = (rise > 3 * rse && rise > 0.2 * mean ? "TRENDS UP" : "flat")
                else if (kind == "hist") {
                    v = (rise > 3 * rse && rise > 0.05 * mean ? "TRENDS UP" : "flat")
                    v = v (hmax <= cap + 100 ? sprintf(", bounded (max %d <= cap %d + 100)", hmax, cap) : sprintf(", OVER THE CAP (max %d > cap %d + 100)", hmax, cap))
                }
                else v = "-"
                printf "| %s | %.3g | %+.4g /min (± %.3g); fitted rise over the half %+.4g | %s | %.4g (t = %d s) | %s |\n",
                    label, mean, s * 60, se * 60, rise, (kind == "hist" && mean > 0 ? sprintf("%+.1f %%", g) : "-"), peak, peak_t, v
            }
        }'
}

# Per-window rows: the first sample, every $TABLE_EVERY s, the last numbered one, and "end".
table_rows() {
    local last
    last=$(awk '$1 ~ /^[0-9]+$/ { t = $1 } END { print t }' "$TMP/samples")
    awk -v every="$TABLE_EVERY" -v last="$last" -v first="$INTERVAL" \
        '$1 == 0 || $1 == first || $1 == last || $1 == "end" || ($1 ~ /^[0-9]+$/ && $1 % every == 0) { print NR }' \
        "$TMP/samples"
}

memory_table() {
    local rows
    rows=$(table_rows | tr '\n' ' ')
    awk -v rows="$rows" -v cols="$COLUMNS" -v assets="$ASSETS" '
        BEGIN { n = split(cols, a, " "); for (i = 1; i <= n; i++) c[a[i]] = i
                m = split(rows, r, " "); for (i = 1; i <= m; i++) want[r[i]] = 1 }
        function mb(k) { return sprintf("%.1f", k / 1024) }
        function heap(b) { return (b < 0 ? "-" : sprintf("%.1f", b / 1048576)) }
        want[NR] {
            printf "| %s | %s | %s | %s | %s (%s) | %s | %s | %s | %.1f | %.0f / %d |\n",
                $c["t"], mb($c["rss_mosq"]), mb($c["rss_redis"]), sprintf("%.1f", $c["redis_used"] / 1048576),
                mb($c["rss_ingest"]), mb($c["pss_ingest"]), mb($c["rss_pred"]), mb($c["rss_scen"]),
                heap($c["mosq_heap"]), $c["rss_loadgen"] / 1024, $c["hist_sum"] / assets, $c["hist_max"]
        }' "$TMP/samples"
}

# Rates, queues, latency and CPU per window (from the previous sample to this one).
flow_table() {
    local rows hz
    rows=$(table_rows | tr '\n' ' ')
    hz=$(getconf CLK_TCK)
    awk -v rows="$rows" -v cols="$COLUMNS" -v hz="$hz" -v ncpu="$(nproc)" '
        BEGIN { n = split(cols, a, " "); for (i = 1; i <= n; i++) c[a[i]] = i
                m = split(rows, r, " "); for (i = 1; i <= m; i++) want[r[i]] = 1 }
        FILENAME != ARGV[2] { lat[$1] = sprintf("%.2f / %.2f", $4, $5); next }
        function pc(f) { return 100 * ($c[f] - p[c[f]]) / hz / dt }
        {
            if (FNR > 1 && want[FNR]) {
                dt = $c["epoch"] - p[c["epoch"]]
                ours = pc("cpu_mosq") + pc("cpu_redis") + pc("cpu_ingest") + pc("cpu_pred") + pc("cpu_scen") + pc("cpu_loadgen")
                busy = 100 * ncpu - 100 * ($c["idle"] - p[c["idle"]]) / hz / dt
                q = ($c["mosq_store"] < 0 || $c["mosq_retained"] < 0 ? "-" : $c["mosq_store"] - $c["mosq_retained"])
                printf "| %s | %.0f | %d | %d | %s | %s | %.0f / %.0f / %.0f / %.0f / %.0f / %.0f | %.0f | %.0f |\n",
                    $c["t"], ($c["ing_applied"] - p[c["ing_applied"]]) / dt, $c["pred_queue"],
                    $c["ing_states"] - $c["pred_states"], q,
                    ($1 in lat ? lat[$1] : "-"), pc("cpu_ingest"), pc("cpu_pred"), pc("cpu_mosq"),
                    pc("cpu_redis"), pc("cpu_scen"), pc("cpu_loadgen"), busy - ours, busy
            }
            for (i = 1; i <= NF; i++) p[i] = $i
        }' "${TMP}/latency.windows" "$TMP/samples"
}

# Mean machine busy and "everything else" over the load, % of one core.
busy_summary() {
    local hz
    hz=$(getconf CLK_TCK)
    awk -v cols="$COLUMNS" -v hz="$hz" -v ncpu="$(nproc)" '
        BEGIN { n = split(cols, a, " "); for (i = 1; i <= n; i++) c[a[i]] = i }
        $1 == 0 { for (i = 1; i <= NF; i++) f[i] = $i }
        $1 ~ /^[0-9]+$/ { for (i = 1; i <= NF; i++) l[i] = $i }
        END {
            dt = l[c["epoch"]] - f[c["epoch"]]
            busy = 100 * ncpu - 100 * (l[c["idle"]] - f[c["idle"]]) / hz / dt
            ours = 0
            split("cpu_mosq cpu_redis cpu_ingest cpu_pred cpu_scen cpu_loadgen", k, " ")
            for (j = 1; j <= 6; j++) { v[j] = 100 * (l[c[k[j]]] - f[c[k[j]]]) / hz / dt; ours += v[j] }
            printf "machine busy %.0f %% of one core on average (of %d %%), the pipeline %.0f %% (ingest %.0f, predictor %.0f, mosquitto %.0f, redis %.0f, scenario %.0f, loadgen %.0f), everything else %.0f %%",
                busy, 100 * ncpu, ours, v[3], v[4], v[1], v[2], v[5], v[6], busy - ours
        }' "$TMP/samples"
}

last_value() { awk -v c="$(col "$1")" '$1 == "end" { print $c }' "$TMP/samples"; }

report() {
    local -A L
    local line c
    line=$(grep '^RESULT' "$TMP/loadgen.out" 2>/dev/null || true)
    for c in ${line#RESULT }; do L[${c%%=*}]=${c#*=}; done
    local ING PRED SCEN
    read -r -a ING <<<"$FINAL_ING"
    read -r -a PRED <<<"$FINAL_PRED"
    read -r -a SCEN <<<"$FINAL_SCEN"
    local scen_runs scen_fail scen_slow
    scen_runs=$(grep -c . "$TMP/twinctl.rc" 2>/dev/null || true)
    scen_fail=$(awk '$1 != 0' "$TMP/twinctl.rc" 2>/dev/null | grep -c . || true)
    scen_slow=$(awk '{ if ($2 > m) m = $2 } END { printf "%.1f", m }' "$TMP/twinctl.rc" 2>/dev/null || echo -)
    local hist_cap="${HISTORY_MAXLEN} (MAXLEN ~)"
    [ "$HISTORY_MAXLEN" -gt 0 ] || hist_cap="10000 (service default, MAXLEN ~)"
    cat <<MD
### Twinloop soak, $(date -u +%Y-%m-%dT%H:%MZ)

- Command: \`$COMMAND\` (build: $BUILD, CMAKE_BUILD_TYPE=$BUILD_TYPE; source $SOURCE)
- Machine: nproc $(nproc), CPU "$CPU_MODEL", kernel $(uname -r); mosquitto $MOSQ_VERSION, redis $REDIS_VERSION, Paho C $PAHO_VERSION
- Before the run: load average $LOADAVG, machine busy ${BUSY_BEFORE:-?} % of one core over 1 s${BUSY_NOTE:-}
- During the load: $(busy_summary)
- Load: \`twin-loadgen ${LG_CMD[*]:1}\` ($RATE Telemetry/s, QoS 1, 4 signals each, $ASSETS assets: $(awk -v r="$RATE" -v a="$ASSETS" 'BEGIN{printf "%.3g", r / a}') msg/s per asset) for $DURATION s; twin-scenario: $( [ "$SCEN_EVERY" -gt 0 ] && echo "\`twinctl ${SCEN_ARGS[*]}\` every $SCEN_EVERY s ($scen_runs runs, $scen_fail not OK, slowest $scen_slow s)" || echo "idle")
- Setup: everything on 127.0.0.1; mosquitto = deploy/mosquitto.conf's common part + private listener; redis = deploy/redis.conf (AOF everysec); twin-ingest TWIN_INGEST_WORKERS=$WORKERS, history cap $hist_cap; twin-predictor defaults; twin-scenario with deploy/plant.json. Sampled every $INTERVAL s; trends fitted over the second half, t = $HALF-$DURATION s.

Memory (MB; RSS = VmRSS; twin-ingest: sum over its $(last_value procs_ingest) processes, PSS in brackets; mosquitto heap from \$SYS/broker/heap/current; history = entries per asset stream, mean / max):

| t s | mosquitto RSS | redis RSS | redis used_memory | twin-ingest RSS (PSS) | twin-predictor RSS | twin-scenario RSS | mosquitto heap | twin-loadgen RSS | history mean / max |
|---|---|---|---|---|---|---|---|---|---|
$(memory_table)

Flow per window (the $INTERVAL s before t; "end" = after the drain and the predictor's catch-up): ingest applies per second; predictor queue depth (gauge); predictor backlog = TwinStates ingest published (first + republished) minus TwinStates the predictor received; mosquitto messages stored and not retained (\$SYS store count - retained count: queued or in flight to a client; \$SYS is refreshed every 10 s); loadgen publish-due -> TwinState latency p50 / p99 of the messages due in the window; CPU % of one core; "else" = everything else on the machine (the other sessions' work), "busy" = the whole machine:

| t s | applied /s | pred queue | pred backlog | mosq queued | e2e p50 / p99 ms | CPU ingest / pred / mosq / redis / scen / loadgen | else | busy |
|---|---|---|---|---|---|---|---|---|
$(flow_table)

Trends over the second half (least-squares slope per minute ± its standard error). Criteria: memory is **flat** when the fitted growth over 10 minutes is < 1 % of the series' mean over the half, else **GROWS** (qualified "within noise" when the slope is < 2 standard errors, "in steps" when the peak of the load was reached before the last third of the half and never exceeded since); a queue **trends up** when its fitted rise over the half is > 100 messages and > 3 standard errors; latency **trends up** when its fitted rise is > 3 standard errors and > 20 % of its mean; history is **bounded** when no stream held more than the cap + 100 (MAXLEN ~ trims whole stream nodes):

| series | mean over the half | slope | growth per 10 min | peak over the load (first reached) | verdict |
|---|---|---|---|---|---|
$(trend_row rss_mosq "mosquitto RSS" mem)
$(trend_row mosq_heap "mosquitto heap (\$SYS)" mem_b)
$(trend_row rss_redis "redis RSS" mem)
$(trend_row redis_used "redis used_memory" mem_b)
$(trend_row rss_ingest "twin-ingest RSS (sum)" mem)
$(trend_row pss_ingest "twin-ingest PSS (sum)" mem)
$(trend_row rss_pred "twin-predictor RSS" mem)
$(trend_row rss_scen "twin-scenario RSS" mem)
$(trend_row hist_mean "history entries per asset (mean)" hist)
$(trend_row pred_queue "predictor queue depth" queue)
$(trend_row backlog "predictor backlog" queue)
$(trend_row queued "mosquitto stored, not retained" queue)
$(trend_row lat_p50 "e2e latency p50 (ms)" lat)
$(trend_row lat_p99 "e2e latency p99 (ms)" lat)
$(trend_row rss_loadgen "twin-loadgen RSS (keeps 17 B per message sent, in each of its processes)" mem_info)
$(growth_notes)

Totals:

- twin-loadgen: published ${L[published]:-?}, PUBACKed ${L[acked]:-?}, TwinStates received ${L[received]:-?}, lost ${L[lost]:-?}, duplicates ${L[duplicates]:-?}, unsent ${L[unsent]:-?}, connection lost ${L[conn_lost]:-?} (exit $LOADGEN_RC); latency over the whole run p50 ${L[p50_ms]:-?} ms, p99 ${L[p99_ms]:-?} ms, p99.9 ${L[p999_ms]:-?} ms, max ${L[max_ms]:-?} ms; drain after the last publish ${L[drain_ms]:-?} ms.
- twin-ingest: received ${ING[0]:-?}, applied ${ING[1]:-?}, duplicate ${ING[2]:-?}, rejected ${ING[3]:-?}, TwinStates published ${ING[4]:-?} + republished ${ING[5]:-?}, publish failed ${ING[6]:-?}, redis errors ${ING[7]:-?}, worker restarts ${ING[8]:-?}.
- twin-predictor: TwinStates received ${PRED[0]:-?} (ingest published $(( ${ING[4]:-0} + ${ING[5]:-0} )); caught up ${CATCHUP} after the loadgen's exit), rejected ${PRED[1]:-?}, refused ${PRED[2]:-?}, Predictions published ${PRED[3]:-?}, publish failed ${PRED[4]:-?}, persisted ${PRED[5]:-?}, persist errors (Redis) ${PRED[6]:-?}, full-queue waits ${PRED[7]:-?}.
- twin-scenario: requests ok ${SCEN[0]:-?}, error ${SCEN[1]:-?}, rejected ${SCEN[2]:-?}, store errors (Redis) ${SCEN[3]:-?}, publish failed ${SCEN[4]:-?}.
- mosquitto: publishes dropped $(last_value mosq_dropped) (\$SYS/broker/publish/messages/dropped), clients connected at the end $(last_value mosq_clients); redis: AOF $(awk -v b="$(last_value aof_size)" 'BEGIN{printf "%.1f", b / 1048576}') MB at the end, $FINAL_REDIS.
- Processes alive at the end of the load: $ALIVE.
- Logs: ingest $(log_summary "$TMP/ingest.log"); predictor $(log_summary "$TMP/predictor.log"); scenario $(log_summary "$TMP/scenario.log"); mosquitto $(log_summary "$TMP/mosquitto.log").
MD
}

