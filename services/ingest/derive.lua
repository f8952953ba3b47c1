-- SPDX-License-Identifier: Apache-2.0
-- The derived-signal operators twin-ingest's apply script evaluates (expressions: twin/derive.h).
--
-- An expression compiles to calls of D: D.add(a, b), D.mean_over(S, slot, x, window_s), ...
-- Every value is a number or nil; nil (a signal the asset has not sent, a division by zero,
-- a log of a negative number) makes the result nil, and a nil result is not stored.
-- Stateful operators keep their state in S[slot] (a table of numbers) and read the update's
-- device time from D.t (seconds). They advance only on an applied update in device-time order:
-- ingest evaluates on updates that move the state on, never on late or duplicate telemetry.
-- An input that is nil leaves the operator's state as it was.

local D = {}
D.t = 0

-- The library functions the operators call, as locals: an upvalue is read without the two
-- table lookups (a global, then its field) each call would otherwise make.
local abs, exp, floor, log = math.abs, math.exp, math.floor, math.log
local max, sqrt = math.max, math.sqrt
local HUGE = math.huge

local function finite(x)
    if x == nil or x ~= x or x == HUGE or x == -HUGE then
        return nil
    end
    return x
end

function D.neg(a) return a and -a end
function D.add(a, b) return a and b and finite(a + b) end
function D.sub(a, b) return a and b and finite(a - b) end
function D.mul(a, b) return a and b and finite(a * b) end
function D.div(a, b)
    if not a or not b or b == 0 then return nil end
    return finite(a / b)
end
function D.pow(a, b) return a and b and finite(a ^ b) end
local function truth(c) if c then return 1 end return 0 end
function D.lt(a, b) return a and b and truth(a < b) end
function D.le(a, b) return a and b and truth(a <= b) end
function D.gt(a, b) return a and b and truth(a > b) end
function D.ge(a, b) return a and b and truth(a >= b) end
function D.eq(a, b) return a and b and truth(a == b) end
function D.ne(a, b) return a and b and truth(a ~= b) end
function D.abs(a) return a and abs(a) end
function D.sqrt(a)
    if not a or a < 0 then return nil end
    return sqrt(a)
end
function D.exp(a) return a and finite(exp(a)) end
function D.log(a)
    if not a or a <= 0 then return nil end
    return log(a)
end
function D.min(...)
    local m
    for i = 1, select('#', ...) do
        local v = select(i, ...)
        if v == nil then return nil end
        if m == nil or v < m then m = v end
    end
    return m
end
function D.max(...)
    local m
    for i = 1, select('#', ...) do
        local v = select(i, ...)
        if v == nil then return nil end
        if m == nil or v > m then m = v end
    end
    return m
end
function D.clamp(x, lo, hi)
    if not x or not lo or not hi or lo > hi then return nil end
    if x < lo then return lo end
    if x > hi then return hi end
    return x
end

-- ---- stateful operators ----------------------------------------------------------------

-- delta: st = {previous value}. A counter that went down was reset (the new value counts
-- from 0) or, with a wrap, wrapped around it.
local function step(st, x, wrap)
    local prev = st[1]
    st[1] = x
    if prev == nil then return nil end
    local d = x - prev
    if d < 0 then
        if wrap and wrap > 0 then d = d + wrap else d = x end
    end
    return d
end

function D.delta(S, k, x, wrap)
    if x == nil then return nil end
    S[k] = S[k] or {}
    return step(S[k], x, wrap)
end

-- rate: st = {previous value, its time}.
function D.rate(S, k, x, wrap)
    if x == nil then return nil end
    local st = S[k] or {}
    S[k] = st
    local t0 = st[2]
    if t0 ~= nil and D.t < t0 then -- the clock went back: this sample says nothing of a rate
        return nil
    end
    if t0 ~= nil and D.t == t0 then -- the same instant again: its value replaces the last one
        st[1] = x
        return nil
    end
    st[2] = D.t
    local d = step(st, x, wrap)
    if d == nil or t0 == nil then return nil end
    return finite(d / (D.t - t0))
end

-- integral: st = {sum, previous value, its time}; trapezoids between updates.
function D.integral(S, k, x)
    if x == nil then return S[k] and S[k][1] end
    local st = S[k]
    if st == nil then
        S[k] = {0, x, D.t}
        return 0
    end
    if D.t > st[3] then -- a clock that went back adds nothing (and is not remembered)
        st[1] = st[1] + (st[2] + x) / 2 * (D.t - st[3])
        st[3] = D.t
    end
    st[2] = x
    return finite(st[1])
end

-- total: st = {sum}.
function D.total(S, k, x)
    local st = S[k] or {0}
    S[k] = st
    if x ~= nil then st[1] = st[1] + x end
    return finite(st[1])
end

-- ewma: st = {mean, its time}; the weight of the past halves every half-life h.
function D.ewma(S, k, x, h)
    local st = S[k]
    if x == nil then return st and st[1] end
    if st == nil then
        S[k] = {x, D.t}
        return x
    end
    if D.t > st[2] then
        local a = 1 - 2 ^ (-(D.t - st[2]) / h)
        st[1] = st[1] + a * (x - st[1])
        st[2] = D.t
    end
    return st[1]
end

-- time_in: st = {seconds, previous condition, its time}; a condition holds until the next
-- update.
function D.time_in(S, k, c)
    local st = S[k]
    if st == nil then
        st = {0, c, D.t}
        S[k] = st
        return 0
    end
    if D.t > st[3] then
        if st[2] ~= nil and st[2] ~= 0 then st[1] = st[1] + (D.t - st[3]) end
        st[3] = D.t
    end
    st[2] = c
    return st[1]
end

-- Windows: BUCKETS buckets of window/BUCKETS seconds each, every bucket {index, n, mean, m2,
-- min, max} (Welford's running mean and squared deviations), flattened into st. The window
-- is the buckets whose index lies in (now's - BUCKETS, now's]: it slides a bucket at a time.
local BUCKETS = 16
local FIELDS = 6

-- Adds x (unless nil) to its bucket, forgets the buckets that left the window, and returns the
-- window's count, mean, m2, min and max. A bucket's fields are read into locals once.
local function window_add(S, k, x, w)
    local st = S[k] or {}
    S[k] = st
    local b = floor(D.t / (w / BUCKETS))
    if x ~= nil then
        local at = (b % BUCKETS) * FIELDS
        local n, mean, m2, lo, hi
        if st[at + 1] ~= b then
            st[at + 1] = b
            n, mean, m2, lo, hi = 0, 0, 0, x, x
        else
            n, mean, m2, lo, hi = st[at + 2], st[at + 3], st[at + 4], st[at + 5], st[at + 6]
        end
        n = n + 1
        local d = x - mean
        mean = mean + d / n
        m2 = m2 + d * (x - mean)
        if x < lo then lo = x end
        if x > hi then hi = x end
        st[at + 2], st[at + 3], st[at + 4], st[at + 5], st[at + 6] = n, mean, m2, lo, hi
    end
    -- The buckets of the window, merged (Chan et al.) in bucket order.
    local n, mean, m2, lo, hi = 0, 0, 0, nil, nil
    local oldest = b - BUCKETS
    for i = 0, BUCKETS - 1 do
        local at = i * FIELDS
        local bi = st[at + 1]
        if bi == nil then -- an empty bucket: nothing to merge or forget
        elseif bi > oldest and bi <= b then
            local nb = st[at + 2]
            if nb > 0 then
                local d = st[at + 3] - mean
                local total = n + nb
                mean = mean + d * nb / total
                m2 = m2 + st[at + 4] + d * d * n * nb / total
                n = total
                local blo, bhi = st[at + 5], st[at + 6]
                if lo == nil or blo < lo then lo = blo end
                if hi == nil or bhi > hi then hi = bhi end
            end
        elseif bi <= oldest or bi > b then
            for f = 1, FIELDS do st[at + f] = nil end -- out of the window (or a clock far ahead)
        end
    end
    return n, mean, m2, lo, hi
end

function D.mean_over(S, k, x, w)
    local n, mean = window_add(S, k, x, w)
    if n == 0 then return nil end
    return mean
end
function D.count_over(S, k, x, w)
    return (window_add(S, k, x, w))
end
function D.min_over(S, k, x, w)
    local _, _, _, lo = window_add(S, k, x, w)
    return lo
end
function D.max_over(S, k, x, w)
    local _, _, _, _, hi = window_add(S, k, x, w)
    return hi
end
function D.std_over(S, k, x, w)
    local n, _, m2 = window_add(S, k, x, w)
    if n < 2 then return nil end
    return sqrt(max(m2, 0) / (n - 1))
end

-- ---- state on the wire ------------------------------------------------------------------

-- A derived signal's state: its slots as MessagePack (Redis's cmsgpack: doubles exact, holes
-- kept, and far cheaper than text). Anything else (hand-edited, an older layout) starts over.
function D.decode(blob)
    if not blob or blob == '' then return {} end
    local ok, S = pcall(cmsgpack.unpack, blob)
    if not ok or type(S) ~= 'table' then return {} end
    return S
end

function D.encode(S)
    return cmsgpack.pack(S)
end
