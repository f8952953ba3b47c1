#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Writes the fuzz seed corpora (corpus/telemetry, corpus/lua_reply, corpus/scenario_request):
# valid inputs and one file per kind of bad input, hand-encoded or encoded from protobuf text
# format with protoc, so that no build is needed. Rerun after editing; the generated files are
# committed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
tel=$here/corpus/telemetry
rep=$here/corpus/lua_reply
mkdir -p "$tel" "$rep"
rm -f "$tel"/* "$rep"/*

# ---- byte helpers: everything is built as a hex string, written with bin ----------------
bin() { printf '%b' "$(printf '%s' "$1" | sed 's/../\\x&/g')"; }
hexs() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
b() { printf '%02x' "$(($1 & 255))"; }
varint() { # non-negative, below 2^63
    local n=$1 out=''
    while ((n >= 128)); do
        out+=$(b $(((n & 127) | 128)))
        n=$((n >> 7))
    done
    printf '%s%s' "$out" "$(b "$n")"
}
lenp() { printf '%s%s' "$(varint $((${#1} / 2)))" "$1"; } # length-prefixed hex

# ---- twin.v1.Telemetry: 0a asset_id, 10 ts_ms, 18 seq, 22 samples {0a signal, 11 value} --
asset() { printf '0a%s' "$(lenp "$(hexs "$1")")"; }
ts() { printf '10%s' "$(varint "$1")"; }
seq() { printf '18%s' "$(varint "$1")"; }
sample_hex() { printf '22%s' "$(lenp "0a$(lenp "$1")11$2")"; } # name as hex, value LE hex
sample() { sample_hex "$(hexs "$1")" "$2"; }

# Little-endian IEEE 754 doubles.
D_21_5=0000000000803540 D_1500=0000000000709740 D_1=000000000000f03f D_NAN=000000000000f87f
D_INF=000000000000f07f D_NEG_ZERO=0000000000000080 D_MIN_SUB=0100000000000000
D_MAX=ffffffffffffef7f D_0_1=9a9999999999b93f
U64_MAX=ffffffffffffffffff01 # varint of 2^64-1, also of int64 -1

NOW=1700000000000 # the fuzz target's clock
PAST=604800000 FUTURE=600000

# A seed: byte 0 = topic length (0: the target's default topic, twin/v1/asset/press-1/
# telemetry), the topic, then the payload.
tseed() {
    local name=$1 topic=$2 payload=$3
    { bin "$(b ${#topic})"; printf '%s' "$topic"; bin "$payload"; } >"$tel/$name"
}

tseed valid_one '' "$(asset press-1)$(ts $NOW)$(seq 1)$(sample temp $D_21_5)"
tseed valid_many '' "$(ts 0)18$U64_MAX$(sample temp $D_21_5)$(sample line:1/rpm $D_1500)$(sample a_b.c-d $D_0_1)"
tseed valid_extreme_values '' "$(asset press-1)$(ts $NOW)$(seq 2)$(sample tiny $D_MIN_SUB)$(sample max $D_MAX)$(sample zero $D_NEG_ZERO)"
tseed valid_other_topic 'twin/v1/asset/m-3/telemetry' "$(asset m-3)$(seq 9)$(sample x $D_1)"
tseed valid_unknown_fields '' "$(sample x $D_1)7d01020304790102030405060708$(ts $NOW)"
tseed ts_future_edge '' "$(ts $((NOW + FUTURE)))$(sample x $D_1)"
tseed ts_future_beyond '' "$(ts $((NOW + FUTURE + 1)))$(sample x $D_1)"
tseed ts_past_edge '' "$(ts $((NOW - PAST)))$(sample x $D_1)"
tseed ts_past_beyond '' "$(ts $((NOW - PAST - 1)))$(sample x $D_1)"
tseed ts_negative '' "10$U64_MAX$(sample x $D_1)"
tseed empty_payload '' ''
tseed undecodable_truncated '' "0a05$(hexs ab)"
tseed undecodable_endless_varint '' 108080
tseed undecodable_group '' 0b0c
tseed undecodable_field_zero '' 0001
tseed undecodable_value_as_varint '' "22050a01$(hexs x)1001"
tseed bad_topic 'twin/v1/asset/press-1/state' "$(sample x $D_1)"
tseed bad_topic_root 'twin/v2/asset/press-1/telemetry' "$(sample x $D_1)"
tseed bad_asset_in_topic 'twin/v1/asset/+/telemetry' "$(sample x $D_1)"
tseed bad_asset_nul '' "0a08$(hexs press-1)00$(sample x $D_1)"
tseed bad_asset_non_ascii '' "0a02c3a9$(sample x $D_1)"
tseed asset_mismatch '' "$(asset press-2)$(sample x $D_1)"
tseed no_samples '' "$(asset press-1)$(ts $NOW)$(seq 3)"
many=''
for ((i = 0; i < 257; i++)); do many+=2200; done
tseed too_many_samples '' "$many"
tseed bad_signal_reserved '' "$(sample _seq $D_1)"
tseed bad_signal_chars '' "$(sample 'a b' $D_1)"
tseed bad_signal_nul '' "$(sample_hex "$(hexs tm)00$(hexs p)" $D_1)"
tseed bad_signal_control '' "$(sample ok $D_1)$(sample_hex "$(hexs x)1b" $D_1)"
tseed duplicate_signal '' "$(sample t $D_1)$(sample p $D_1)$(sample t $D_21_5)"
tseed non_finite_nan '' "$(sample a $D_1)$(sample b $D_NAN)"
tseed non_finite_inf '' "$(sample a $D_INF)"

# ---- reply trees (see fuzz_lua_reply.c): 00 nil, 01 int, 02 string, 03 status, 04 error,
# 05 array ----------------------------------------------------------------------------------
rnil() { printf '00'; }
rint() { # int8 inline; anything else as 0x80 + 8 bytes big-endian
    local v=$1
    if ((v >= -127 && v <= 127)); then
        printf '01%s' "$(b "$v")"
    else
        printf '0180%016x' "$v"
    fi
}
rstr() { local h; h=$(hexs "$1"); printf '02%s%s' "$(b $((${#h} / 2)))" "$h"; }
rstatus() { local h; h=$(hexs "$1"); printf '03%s%s' "$(b $((${#h} / 2)))" "$h"; }
rerr() { local h; h=$(hexs "$1"); printf '04%s%s' "$(b $((${#h} / 2)))" "$h"; }
rarr() { local n=$1; shift; printf '05%s' "$(b "$n")"; printf '%s' "$@"; }
hash() { # name value ... -> array of strings
    local out=''
    for f in "$@"; do out+=$(rstr "$f"); done
    rarr $# "$out"
}
rseed() { bin "$2" >"$rep/$1"; }

rseed applied "$(rarr 3 "$(rint 1)" "$(hash temp 21.5 _seq 18446744073709551615 line:1/rpm -0 \
    _ts_ms 1700000000000 _ingest_ms 1700000000005)" "$(rstr 1700000000000)")"
big=()
for ((i = 0; i < 40; i++)); do big+=("sig$i" "$i.25"); done
rseed applied_grows "$(rarr 3 "$(rint 1)" "$(hash _seq 7 "${big[@]}")" "$(rstr 1700000000000)")"
rseed applied_bad_values "$(rarr 3 "$(rint 1)" "$(hash a inf b nan c abc d 1e999 e '' f 4.9406564584124654e-324)" "$(rstr 1700000000000)")"
rseed applied_future_meta "$(rarr 3 "$(rint 1)" "$(hash _future x _seq 1 t 1)" "$(rstr 1700000000000)")"
rseed applied_empty_hash "$(rarr 3 "$(rint 1)" "$(rarr 0)" "$(rstr 1700000000000)")"
rseed late "$(rarr 1 "$(rint 2)")"
rseed duplicate "$(rarr 1 "$(rint 3)")"
rseed stale "$(rarr 1 "$(rint 4)")"
rseed code_zero "$(rarr 1 "$(rint 0)")"
rseed code_five "$(rarr 1 "$(rint 5)")"
rseed code_huge "$(rarr 1 "$(rint 4294967297)")"
rseed code_as_string "$(rarr 1 "$(rstr 1)")"
rseed error_reply "$(rerr 'NOSCRIPT No matching script')"
rseed status_reply "$(rstatus OK)"
rseed nil_reply "$(rnil)"
rseed empty_array "$(rarr 0)"
rseed nested_error "$(rarr 1 "$(rerr 'ERR user_script:1: boom')")"
rseed applied_without_hash "$(rarr 1 "$(rint 1)")"
rseed applied_extra "$(rarr 4 "$(rint 1)" "$(hash a 1)" "$(rstr 0)" "$(rint 0)")"
rseed applied_previous_not_text "$(rarr 3 "$(rint 1)" "$(hash a 1)" "$(rint 0)")"
rseed late_extra "$(rarr 2 "$(rint 2)" "$(rint 0)")"
rseed odd_hash "$(rarr 3 "$(rint 1)" "$(rarr 3 "$(rstr a)" "$(rstr 1)" "$(rstr b)")" "$(rstr 1700000000000)")"
rseed int_field "$(rarr 3 "$(rint 1)" "$(rarr 2 "$(rstr a)" "$(rint 1)")" "$(rstr 1700000000000)")"
rseed nested_array_field "$(rarr 3 "$(rint 1)" "$(rarr 2 "$(rstr a)" "$(hash b 1)")" "$(rstr 1700000000000)")"
rseed bad_seq_negative "$(rarr 3 "$(rint 1)" "$(hash _seq -1)" "$(rstr 1700000000000)")"
rseed bad_seq_blank_negative "$(rarr 3 "$(rint 1)" "$(hash _seq ' -1')" "$(rstr 1700000000000)")"
rseed bad_seq_overflow "$(rarr 3 "$(rint 1)" "$(hash _seq 18446744073709551616)" "$(rstr 1700000000000)")"
rseed bad_ts "$(rarr 3 "$(rint 1)" "$(hash _ts_ms 9223372036854775808)" "$(rstr 1700000000000)")"

# ---- twin.v1.ScenarioRequest against the demo plant (deploy/plant.json), from text format ----
scn=$here/corpus/scenario_request
proto=$here/../../proto
command -v protoc >/dev/null || { echo "make_corpus.sh: protoc is needed for $scn" >&2; exit 1; }
mkdir -p "$scn"
rm -f "$scn"/*
sseed() { protoc --encode=twin.v1.ScenarioRequest -I "$proto" "$proto/twin/v1/twin.proto" >"$scn/$1"; }
H=3600000 D=86400000

sseed defaults <<<'id: "d"'
sseed down_station <<<"id: \"down-press\" name: \"press down 4 h\" horizon_ms: $D replications: 3 seed: 42 ignore_live: true perturbations { kind: MACHINE_DOWN target: \"press\" start_ms: $((2 * H)) duration_ms: $((4 * H)) }"
sseed down_asset <<<"id: \"down.press-1\" horizon_ms: $((2 * H)) warmup_ms: $((H / 2)) replications: 2 seed: 7 perturbations { kind: MACHINE_DOWN target: \"press-1\" }"
sseed supplier_late <<<"id: \"late_1\" horizon_ms: $((3 * D)) seed: 9 perturbations { kind: SUPPLIER_LATE target: \"steel_mill\" start_ms: $H delay_ms: $D count: 2 }"
sseed demand_factor <<<"id: \"demand\" horizon_ms: $H seed: 3 perturbations { kind: DEMAND_FACTOR target: \"\" start_ms: 600000 duration_ms: 1800000 factor: 1.4 }"
sseed set_parameters <<<"id: \"sets\" horizon_ms: $H replications: 1 seed: 5 perturbations { kind: SET_PARAMETER target: \"station.weld.cycle_time\" value: 70 } perturbations { kind: SET_PARAMETER target: \"buffer.press_out.capacity\" value: 10 } perturbations { kind: SET_PARAMETER target: \"demand.rate\" value: 30 } perturbations { kind: SET_PARAMETER target: \"supplier.paint_supplier.reliability\" value: 0.5 }"
sseed sweep_grid <<<"id: \"grid\" horizon_ms: $H replications: 1 seed: 11 sweep { method: GRID parameters { path: \"station.press.machines\" min: 1 max: 3 step: 1 cost: 1000 } parameters { path: \"buffer.press_out.capacity\" values: 10 values: 40 cost: 5 } objective: \"throughput\" maximize: true constraints { kpi: \"cost\" has_max: true max: 3000 } top: 3 }"
sseed sweep_random <<<"id: \"random\" horizon_ms: $H replications: 1 seed: 12 sweep { method: RANDOM samples: 3 parameters { path: \"demand.rate\" min: 10 max: 30 } objective: \"lead_time\" constraints { kpi: \"station.press.utilisation\" has_min: true min: 0.1 has_max: true max: 0.95 } }"
sseed sweep_lhs <<<"id: \"lhs\" horizon_ms: $H replications: 1 seed: 13 sweep { method: LATIN_HYPERCUBE samples: 4 parameters { path: \"supplier.steel_mill.lot\" min: 1000 max: 3000 cost: 0.5 } parameters { path: \"stock.paint.initial\" min: 0 max: 800 } objective: \"cost\" constraints { kpi: \"stock.steel_blanks.stockout\" has_max: true max: 0.1 } top: 2 }"
sseed everything <<<"id: \"All.of-it_9\" name: \"every field\" horizon_ms: $((2 * H)) warmup_ms: 600000 replications: 2 seed: 18446744073709551615 ignore_live: true perturbations { kind: MACHINE_DOWN target: \"weld-1\" start_ms: 0 duration_ms: $H } perturbations { kind: SUPPLIER_LATE target: \"paint_supplier\" delay_ms: $H } perturbations { kind: DEMAND_FACTOR factor: 0 } perturbations { kind: SET_PARAMETER target: \"station.press.mtbf\" value: 7200 } sweep { parameters { path: \"station.paint.scrap\" values: 0 values: 0.05 } objective: \"buffer.weld_out.level\" } "
# Edge cases found by fuzzing: failures and repairs that take no time (the clock stops), grid
# ranges just short of a whole number of steps (counted differently by request.c), a grid
# step of infinity (min + 0 * inf is NaN), and a sweep variant with fewer machines than a
# MACHINE_DOWN target needs.
sseed zero_failure_times <<<'id: "z" horizon_ms: 86400000 perturbations { kind: SET_PARAMETER target: "station.press.mtbf" } perturbations { kind: SET_PARAMETER target: "station.press.mttr" }'
sseed grid_step_rounding <<<'id: "g" sweep { parameters { path: "station.weld.cycle_time" min: 60 max: 60.9999999995 step: 1 } parameters { path: "station.paint.mttr" min: 60 max: 60.9999999995 step: 1 } objective: "throughput" }'
sseed grid_infinite_step <<<'id: "i" sweep { parameters { path: "station.press.machines" min: 1 max: 3 step: inf } objective: "throughput" }'
sseed sweep_drops_down_machine <<<'id: "m" perturbations { kind: MACHINE_DOWN target: "press-2" } sweep { parameters { path: "station.press.machines" values: 1 values: 2 } objective: "throughput" }'
sseed maintain_asset <<<"id: \"maint\" horizon_ms: $((2 * D)) replications: 2 seed: 21 perturbations { kind: MAINTAIN target: \"press-1\" start_ms: $H duration_ms: $((3 * H)) }"
sseed slow_station <<<"id: \"slow\" horizon_ms: $D seed: 22 perturbations { kind: SLOW target: \"weld\" start_ms: $((2 * H)) factor: 0.5 value: 2 } perturbations { kind: SLOW target: \"weld-1\" duration_ms: $H factor: 0.8 }"
sseed maintain_slow_overlap <<<"id: \"ms\" horizon_ms: $((6 * H)) seed: 23 perturbations { kind: SLOW target: \"press\" factor: 0.7 value: 1 } perturbations { kind: MAINTAIN target: \"press\" start_ms: $H duration_ms: $H } perturbations { kind: MACHINE_DOWN target: \"press-2\" start_ms: $((90 * 60000)) duration_ms: $H }"
sseed sweep_drops_maintained_machine <<<'id: "mm" perturbations { kind: MAINTAIN target: "press-2" duration_ms: 60000 } perturbations { kind: SLOW target: "press-2" factor: 0.9 } sweep { parameters { path: "station.press.machines" values: 1 values: 2 } objective: "throughput" }'
sseed cancel <<<'id: "down-press" cancel: true'
sseed bad_id <<<'id: "a b"'
sseed bad_target <<<'id: "t" perturbations { kind: MACHINE_DOWN target: "lathe-9" }'
sseed bad_negative_start <<<'id: "t" perturbations { kind: MACHINE_DOWN target: "press" start_ms: -1 }'
sseed bad_nan_factor <<<'id: "t" perturbations { kind: DEMAND_FACTOR factor: nan }'
sseed bad_kind <<<'id: "t" perturbations { kind: 9 target: "press" }'
sseed bad_maintain_duration <<<'id: "t" perturbations { kind: MAINTAIN target: "press-1" }'
sseed bad_slow_speed <<<'id: "t" perturbations { kind: SLOW target: "press" factor: 1.5 value: -1 }'
sseed bad_path <<<'id: "t" perturbations { kind: SET_PARAMETER target: "station.press.colour" value: 1 }'
sseed bad_too_large <<<"id: \"t\" replications: 1000 horizon_ms: $((300 * D)) sweep { parameters { path: \"station.press.machines\" values: 1 values: 2 } objective: \"throughput\" }"
sseed bad_replications <<<'id: "t" replications: 5000'
sseed bad_horizon <<<"id: \"t\" horizon_ms: $((400 * D))"
sseed bad_sweep_objective <<<'id: "t" sweep { parameters { path: "station.press.machines" values: 1 values: 2 } objective: "speed" }'
sseed bad_sweep_huge <<<'id: "t" sweep { parameters { path: "demand.rate" min: 1 max: 1000000 step: 0.001 } objective: "throughput" }'

echo "wrote $(ls "$tel" | wc -l) telemetry, $(ls "$rep" | wc -l) lua_reply and" \
    "$(ls "$scn" | wc -l) scenario_request seeds"
