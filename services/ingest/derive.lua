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

-- Windows: BUCKETS buckets of window/BUCKETS seconds each. The window is the buckets whose
-- index lies in (now's - BUCKETS, now's]: it slides a bucket at a time. Each operator keeps per
-- bucket only what it merges, flattened into st (F fields a bucket, the bucket's index first):
-- count {index, n}, min and max {index, extreme}, mean {index, n, mean}, std {index, n, mean,
-- m2} (Welford's running mean and squared deviations, merged by Chan et al.). After the
-- buckets, at C = BUCKETS * F, comes the window's aggregate as last merged: st[C + 1] the
-- index of now's bucket then, st[C + 2] on the aggregate (count {n}, extremes {extreme},
-- mean {n, mean}, std {n, mean, m2}). While now stays in that bucket an update only adds its
-- value to the aggregate; when now moves to another bucket (every window/BUCKETS seconds, or
-- the clock went back) the buckets are merged again, and those that left the window or lie
-- ahead of the clock are forgotten.
local BUCKETS = 16

-- The window's state and the index of now's bucket.
local function window(S, k, w)
    local st = S[k]
    if st == nil then
        st = {}
        S[k] = st
    end
    return st, floor(D.t / (w / BUCKETS))
end

function D.count_over(S, k, x, w)
    local st, b = window(S, k, w)
    local C = BUCKETS * 2
    if x ~= nil then
        local at = (b % BUCKETS) * 2
        if st[at + 1] ~= b then
            st[at + 1], st[at + 2] = b, 1
        else
            st[at + 2] = st[at + 2] + 1
        end
        if st[C + 1] == b then
            st[C + 2] = st[C + 2] + 1
            return st[C + 2]
        end
    elseif st[C + 1] == b then
        return st[C + 2]
    end
    local n, oldest = 0, b - BUCKETS
    for at = 0, C - 2, 2 do
        local bi = st[at + 1]
        if bi == nil then -- an empty bucket
        elseif bi > oldest and bi <= b then
            n = n + st[at + 2]
        else
            st[at + 1], st[at + 2] = nil, nil
        end
    end
    st[C + 1], st[C + 2] = b, n
    return n
end

-- min_over (sign 1) and max_over (sign -1): the extreme is kept as sign * value, a minimum;
-- an empty window's aggregate is nil.
local function extreme_over(S, k, x, w, sign)
    local st, b = window(S, k, w)
    local C = BUCKETS * 2
    if x ~= nil then
        local at, v = (b % BUCKETS) * 2, sign * x
        if st[at + 1] ~= b then
            st[at + 1], st[at + 2] = b, v
        elseif v < st[at + 2] then
            st[at + 2] = v
        end
        if st[C + 1] == b then
            local m = st[C + 2]
            if m == nil or v < m then
                st[C + 2] = v
                return x
            end
            return sign * m
        end
    elseif st[C + 1] == b then
        local m = st[C + 2]
        return m and sign * m
    end
    local m, oldest = nil, b - BUCKETS
    for at = 0, C - 2, 2 do
        local bi = st[at + 1]
        if bi == nil then -- an empty bucket
        elseif bi > oldest and bi <= b then
            local v = st[at + 2]
            if m == nil or v < m then m = v end
        else
            st[at + 1], st[at + 2] = nil, nil
        end
    end
    st[C + 1], st[C + 2] = b, m
    return m and sign * m
end

function D.min_over(S, k, x, w) return extreme_over(S, k, x, w, 1) end
function D.max_over(S, k, x, w) return extreme_over(S, k, x, w, -1) end

function D.mean_over(S, k, x, w)
    local st, b = window(S, k, w)
    local C = BUCKETS * 3
    if x ~= nil then
        local at = (b % BUCKETS) * 3
        if st[at + 1] ~= b then
            st[at + 1], st[at + 2], st[at + 3] = b, 1, x
        else
            local n, mean = st[at + 2] + 1, st[at + 3]
            st[at + 2], st[at + 3] = n, mean + (x - mean) / n
        end
        if st[C + 1] == b then
            local n, mean = st[C + 2] + 1, st[C + 3]
            mean = mean + (x - mean) / n
            st[C + 2], st[C + 3] = n, mean
            return mean
        end
    elseif st[C + 1] == b then
        if st[C + 2] == 0 then return nil end
        return st[C + 3]
    end
    local n, mean, oldest = 0, 0, b - BUCKETS
    for at = 0, C - 3, 3 do
        local bi = st[at + 1]
        if bi == nil then -- an empty bucket
        elseif bi > oldest and bi <= b then
            local nb = st[at + 2]
            n = n + nb
            mean = mean + (st[at + 3] - mean) * nb / n
        else
            st[at + 1], st[at + 2], st[at + 3] = nil, nil, nil
        end
    end
    st[C + 1], st[C + 2], st[C + 3] = b, n, mean
    if n == 0 then return nil end
    return mean
end

local function sample_std(n, m2)
    if n < 2 then return nil end
    return sqrt(max(m2, 0) / (n - 1))
end

-- Adds x to a running (n, mean, m2) and returns the new one.
local function welford(n, mean, m2, x)
    n = n + 1
    local d = x - mean
    mean = mean + d / n
    return n, mean, m2 + d * (x - mean)
end

function D.std_over(S, k, x, w)
    local st, b = window(S, k, w)
    local C = BUCKETS * 4
    if x ~= nil then
        local at = (b % BUCKETS) * 4
        if st[at + 1] ~= b then
            st[at + 1], st[at + 2], st[at + 3], st[at + 4] = b, welford(0, 0, 0, x)
        else
            st[at + 2], st[at + 3], st[at + 4] = welford(st[at + 2], st[at + 3], st[at + 4], x)
        end
        if st[C + 1] == b then
            local n, mean, m2 = welford(st[C + 2], st[C + 3], st[C + 4], x)
            st[C + 2], st[C + 3], st[C + 4] = n, mean, m2
            return sample_std(n, m2)
        end
    elseif st[C + 1] == b then
        return sample_std(st[C + 2], st[C + 4])
    end
    local n, mean, m2, oldest = 0, 0, 0, b - BUCKETS
    for at = 0, C - 4, 4 do
        local bi = st[at + 1]
        if bi == nil then -- an empty bucket
        elseif bi > oldest and bi <= b then
            local nb = st[at + 2]
            local d = st[at + 3] - mean
            local total = n + nb
            mean = mean + d * nb / total
            m2 = m2 + st[at + 4] + d * d * n * nb / total
            n = total
        else
            st[at + 1], st[at + 2], st[at + 3], st[at + 4] = nil, nil, nil, nil
        end
    end
    st[C + 1], st[C + 2], st[C + 3], st[C + 4] = b, n, mean, m2
    return sample_std(n, m2)
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
