-- SPDX-License-Identifier: Apache-2.0
-- twin-ingest's apply: one Telemetry into one asset's state, history and replay window, atomically.
--
-- KEYS[1] twin:{a}:state   hash: signal -> value text, _seq, _ts_ms, _ingest_ms, _changed
-- KEYS[2] twin:{a}:history stream, capped with MAXLEN ~
-- KEYS[3] twin:{a}:replay  string used as a ring bitmap of the last W sequence numbers:
--                          bit (seq mod W) is set when seq was applied (as update or late).
-- KEYS[4] twin:{a}:derived hash: "state" -> every derived signal's operator state by
--                          "<name>#<fingerprint of its expression>" (MessagePack): its one
--                          operator's state, or its operators' by slot; only for an asset
--                          whose kind has derived signals
-- ARGV[1] seq (decimal uint64; "0" = unsequenced)   ARGV[2] ts_ms   ARGV[3] ingest_ms
-- ARGV[4] W (a power of two, at most 2^20)           ARGV[5] history MAXLEN
-- ARGV[6] the asset's kind in the plant model ("" unknown)
-- ARGV[7..] signal, value pairs (values already formatted with %.17g)
--
-- The script is assembled by ingest_script_build: before this text comes kind_code(kind)
-- (nil when no kind has derived signals), which for a kind with derived signals returns a
-- function computing them, compiled to straight-line Lua, and the measured signals they read.
-- Every call runs the whole script, and each function it makes is made anew on every call, so
-- the functions here are few and the derived signals' code is one function made only for an
-- update of such a kind. An update that moves the state on computes them from the merged
-- values (the state's, overridden by this update's) and stores them like measured ones; a
-- late update goes to history as sent and computes nothing (its operators run in the order
-- updates are applied, so an older sample cannot be inserted after).
--
-- Returns {1, <the state's fields and values, as HGETALL gives them>, <previous _ingest_ms>}
-- when the state changed, {2} late (history only), {3} duplicate, {4} stale. Lua numbers are
-- doubles, so a uint64 seq is handled as two 32-bit halves (hi, lo): exact for every uint64,
-- where a plain tonumber() would round sequence numbers above 2^53 together.

local state, history, replay, derived = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local seq_text, ts, ingest_ms = ARGV[1], ARGV[2], ARGV[3]
local window, maxlen = tonumber(ARGV[4]), ARGV[5]
local FIRST = 7 -- the first signal of the pairs
local TWO32 = 4294967296

local function u64(text)
    local hi, lo = 0, 0
    for i = 1, #text do
        lo = lo * 10 + (string.byte(text, i) - 48)
        local carry = math.floor(lo / TWO32)
        lo = lo - carry * TWO32
        hi = hi * 10 + carry
    end
    return hi, lo
end

-- a - b for a >= b; exact while it is below 2^53, and far above any window otherwise.
local function diff(ahi, alo, bhi, blo)
    return (ahi - bhi) * TWO32 + (alo - blo)
end

-- kv[1..n]: the update's signal, value pairs (ARGV from FIRST) and then the derived ones.
local function append_history(kv, n)
    redis.call('XADD', history, 'MAXLEN', '~', maxlen, '*', 'ts_ms', ts, 'seq', seq_text,
               unpack(kv, 1, n))
end

local function sent_pairs()
    local kv = {}
    for i = FIRST, #ARGV do
        kv[i - FIRST + 1] = ARGV[i]
    end
    return kv
end

-- Whether this update carries the signal name (with a number or not).
local function sent(name)
    for i = FIRST, #ARGV, 2 do
        if ARGV[i] == name then
            return true
        end
    end
    return false
end

-- The values a kind's expressions read: this update's, and from the state only the measured
-- signals they read (reads) that the update does not carry. Derived signals are computed
-- before they are read, so their stored values are never needed.
local function derive_inputs(reads)
    local V = {}
    for i = FIRST, #ARGV, 2 do
        V[ARGV[i]] = tonumber(ARGV[i + 1])
    end
    local missing = {}
    for _, name in ipairs(reads) do
        if V[name] == nil and not sent(name) then
            missing[#missing + 1] = name
        end
    end
    if #missing > 0 then
        local stored = redis.call('HMGET', state, unpack(missing))
        for i = 1, #missing do
            if stored[i] then
                V[missing[i]] = tonumber(stored[i])
            end
        end
    end
    return V
end

-- Appends the kind's derived signals that have a value to kv, and stores their state.
local function derive(kv)
    local code, reads
    if kind_code then
        code, reads = kind_code(ARGV[6])
    end
    if code == nil then
        return
    end
    -- Every derived signal's operator state in one field: one read and one write per update,
    -- and the hash exists from the first update on (so that all four keys move together when
    -- a Redis Cluster slot migrates). A state is keyed by its signal's name and expression:
    -- after a model change an operator never meets another operator's state; it starts over,
    -- and the state of signals no longer in the model is dropped. Anything that does not
    -- decode (hand-edited) starts over too.
    local blob, all = redis.call('HGET', derived, 'state'), nil
    if blob and blob ~= '' then
        local ok
        ok, all = pcall(cmsgpack.unpack, blob)
        if not ok then all = nil end
    end
    if type(all) ~= 'table' then
        all = {}
    end
    local kept = {}
    code(kv, derive_inputs(reads), all, kept, tonumber(ts) / 1000)
    redis.call('HSET', derived, 'state', cmsgpack.pack(kept))
end

local function update_state(set_seq)
    -- When the state changed last tells ingest whether another session may be racing it.
    local previous = redis.call('HGET', state, '_ingest_ms') or '0'
    local kv = sent_pairs()
    derive(kv)
    -- The signals this update carried and derived, so the state can be republished exactly
    -- as it was first published (signal names cannot hold a comma).
    local n = #kv
    local changed = {}
    for i = 1, n, 2 do
        changed[(i + 1) / 2] = kv[i]
    end
    -- The meta fields follow the pairs in kv itself: HSET takes them all, XADD the pairs.
    local m = n
    if set_seq then
        kv[m + 1], kv[m + 2] = '_seq', seq_text
        m = m + 2
    end
    kv[m + 1], kv[m + 2] = '_ts_ms', ts
    kv[m + 3], kv[m + 4] = '_ingest_ms', ingest_ms
    kv[m + 5], kv[m + 6] = '_changed', table.concat(changed, ',')
    redis.call('HSET', state, unpack(kv))
    append_history(kv, n)
    -- An update that wrote every field the state has (a device sending all its signals, the
    -- usual case) leaves the state equal to kv: no need to read it back. Telemetry names each
    -- signal once and derived names differ from measured ones, so kv has no field twice.
    if redis.call('HLEN', state) * 2 == #kv then
        return {1, kv, previous}
    end
    return {1, redis.call('HGETALL', state), previous}
end

if seq_text == '0' then
    local stored = redis.call('HGET', state, '_ts_ms')
    if stored and tonumber(ts) < tonumber(stored) then
        local kv = sent_pairs()
        append_history(kv, #kv)
        return {2}
    end
    return update_state(false)
end

local hi, lo = u64(seq_text)
local pos = lo % window
local top_text = redis.call('HGET', state, '_seq') or '0'
local top_hi, top_lo = u64(top_text)

if hi > top_hi or (hi == top_hi and lo > top_lo) then
    local ahead = diff(hi, lo, top_hi, top_lo)
    if ahead >= window then
        redis.call('DEL', replay)
    else
        -- Positions between the old top and the new one now stand for sequence numbers
        -- that have not been seen yet.
        for k = 1, ahead - 1 do
            redis.call('SETBIT', replay, (top_lo + k) % window, 0)
        end
    end
    redis.call('SETBIT', replay, pos, 1)
    return update_state(true)
end

if diff(top_hi, top_lo, hi, lo) >= window then
    return {4}
end
if redis.call('GETBIT', replay, pos) == 1 then
    return {3}
end
redis.call('SETBIT', replay, pos, 1)
local kv = sent_pairs()
append_history(kv, #kv)
return {2}
