-- SPDX-License-Identifier: Apache-2.0
-- The derived-signal operators twin-ingest's apply script inlines (expressions: twin/derive.h).
--
-- This file is not run as it is: ingest_script_build (script.c) compiles each derived signal
-- into straight-line Lua in which every operator of its expression is one of the bodies below,
-- in a block of its own. Every call of the apply script runs its whole text, and a function
-- made by the script is made anew on every call (a Lua closure: ~0.1 microseconds each), so
-- the operators are not functions: measured apart, an apply with 10 derived signals took
-- 36.5 microseconds with them as functions, 30.5 inlined.
--
-- A body starts at a line "--@ <operator> <parameters...>" and ends before the next such line
-- (or "--@end"). Its block receives:
--   the parameters    the operator's arguments (numbers or nil), in the order written
--   r                 nil; the body sets it to the result (nil: no value)
--   st                stateful operators only: the operator's state, a table of numbers, or
--                     nil before its first update; the body may replace it
--   t                 the update's device time, seconds
--   HUGE abs exp floor log max sqrt   from math
-- A body declares only locals of its own, and none named like the compiled code's (V, kv,
-- nkv, all, kept, v<number>, s<number>). Comment lines are left out of the compiled script.
--
-- Every value is a number or nil; nil (a signal the asset has not sent, a division by zero,
-- a log of a negative number) makes the result nil, and a nil result is not stored.
-- Stateful operators advance only on an applied update in device-time order: ingest
-- evaluates on updates that move the state on, never on late or duplicate telemetry. An input
-- that is nil leaves the operator's state as it was. A non-finite result is nil.

--@ neg a
if a then r = -a end
--@ add a b
if a and b then
    r = a + b
    if r ~= r or r == HUGE or r == -HUGE then r = nil end
end
--@ sub a b
if a and b then
    r = a - b
    if r ~= r or r == HUGE or r == -HUGE then r = nil end
end
--@ mul a b
if a and b then
    r = a * b
    if r ~= r or r == HUGE or r == -HUGE then r = nil end
end
--@ div a b
if a and b and b ~= 0 then
    r = a / b
    if r ~= r or r == HUGE or r == -HUGE then r = nil end
end
--@ pow a b
if a and b then
    r = a ^ b
    if r ~= r or r == HUGE or r == -HUGE then r = nil end
end
--@ lt a b
if a and b then if a < b then r = 1 else r = 0 end end
--@ le a b
if a and b then if a <= b then r = 1 else r = 0 end end
--@ gt a b
if a and b then if a > b then r = 1 else r = 0 end end
--@ ge a b
if a and b then if a >= b then r = 1 else r = 0 end end
--@ eq a b
if a and b then if a == b then r = 1 else r = 0 end end
--@ ne a b
if a and b then if a ~= b then r = 1 else r = 0 end end
--@ abs a
if a then r = abs(a) end
--@ sqrt a
if a and a >= 0 then r = sqrt(a) end
--@ exp a
if a then
    r = exp(a)
    if r == HUGE then r = nil end
end
--@ log a
if a and a > 0 then r = log(a) end
-- min and max of more than two arguments: one block for each argument after the first, with
-- the result so far as a.
--@ min a b
if a and b then if b < a then r = b else r = a end end
--@ max a b
if a and b then if b > a then r = b else r = a end end
--@ clamp x lo hi
if x and lo and hi and lo <= hi then
    if x < lo then r = lo elseif x > hi then r = hi else r = x end
end

-- ---- stateful operators ----------------------------------------------------------------

-- delta: st = {previous value}. A counter that went down was reset (the new value counts
-- from 0) or, with a wrap, wrapped around it.
--@ delta x wrap
if x ~= nil then
    if st == nil then st = {} end
    local prev = st[1]
    st[1] = x
    if prev ~= nil then
        r = x - prev
        if r < 0 then
            if wrap and wrap > 0 then r = r + wrap else r = x end
        end
    end
end
-- rate: st = {previous value, its time}; delta per second.
--@ rate x wrap
if x ~= nil then
    if st == nil then st = {} end
    local t0 = st[2]
    if t0 ~= nil and t < t0 then
        -- the clock went back: this sample says nothing of a rate
    elseif t0 ~= nil and t == t0 then
        st[1] = x -- the same instant again: its value replaces the last one
    else
        st[2] = t
        local prev = st[1]
        st[1] = x
        if prev ~= nil and t0 ~= nil then
            local d = x - prev
            if d < 0 then
                if wrap and wrap > 0 then d = d + wrap else d = x end
            end
            r = d / (t - t0)
            if r ~= r or r == HUGE or r == -HUGE then r = nil end
        end
    end
end
-- integral: st = {sum, previous value, its time}; trapezoids between updates. A clock that
-- went back adds nothing (and is not remembered).
--@ integral x
if x == nil then
    r = st and st[1]
elseif st == nil then
    st = {0, x, t}
    r = 0
else
    if t > st[3] then
        st[1] = st[1] + (st[2] + x) / 2 * (t - st[3])
        st[3] = t
    end
    st[2] = x
    r = st[1]
    if r ~= r or r == HUGE or r == -HUGE then r = nil end
end
-- total: st = {sum}.
--@ total x
if st == nil then st = {0} end
if x ~= nil then st[1] = st[1] + x end
r = st[1]
if r ~= r or r == HUGE or r == -HUGE then r = nil end
-- ewma: st = {mean, its time}; the weight of the past halves every half-life h.
--@ ewma x h
if x == nil then
    r = st and st[1]
elseif st == nil then
    st = {x, t}
    r = x
else
    if t > st[2] then
        local a = 1 - 2 ^ (-(t - st[2]) / h)
        st[1] = st[1] + a * (x - st[1])
        st[2] = t
    end
    r = st[1]
end
-- time_in: st = {seconds, previous condition, its time}; a condition holds until the next
-- update.
--@ time_in c
if st == nil then
    st = {0, c, t}
    r = 0
else
    if t > st[3] then
        if st[2] ~= nil and st[2] ~= 0 then st[1] = st[1] + (t - st[3]) end
        st[3] = t
    end
    st[2] = c
    r = st[1]
end

-- Windows: 16 buckets of w/16 seconds each. The window is the buckets whose index lies in
-- (now's - 16, now's]: it slides a bucket at a time. Each operator keeps per bucket only what
-- it merges, flattened into st (F fields a bucket, the bucket's index first): count {index, n},
-- min and max {index, extreme}, mean {index, n, mean}, std {index, n, mean, m2} (Welford's
-- running mean and squared deviations, merged by Chan et al.). After the buckets, at
-- C = 16 * F, comes the window's aggregate as last merged: st[C + 1] the index of now's
-- bucket then, st[C + 2] on the aggregate (count {n}, extremes {extreme}, mean {n, mean}, std
-- {n, mean, m2}). While now stays in that bucket an update only adds its value to the
-- aggregate (`merged`); when now moves to another bucket (every w/16 seconds, or the clock
-- went back) the buckets are merged again, and those that left the window or lie ahead of
-- the clock are forgotten.
--@ count_over x w
if st == nil then st = {} end
local C, b, merged = 32, floor(t / (w / 16)), false
if x ~= nil then
    local at = (b % 16) * 2
    if st[at + 1] ~= b then
        st[at + 1], st[at + 2] = b, 1
    else
        st[at + 2] = st[at + 2] + 1
    end
    if st[C + 1] == b then
        st[C + 2] = st[C + 2] + 1
        r, merged = st[C + 2], true
    end
elseif st[C + 1] == b then
    r, merged = st[C + 2], true
end
if not merged then
    local n, oldest = 0, b - 16
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
    r = n
end
-- min_over (sign 1) and max_over (sign -1): the extreme is kept as sign * value, a minimum;
-- an empty window's aggregate is nil.
--@ extreme_over x w sign
if st == nil then st = {} end
local C, b, merged = 32, floor(t / (w / 16)), false
if x ~= nil then
    local at, e = (b % 16) * 2, sign * x
    if st[at + 1] ~= b then
        st[at + 1], st[at + 2] = b, e
    elseif e < st[at + 2] then
        st[at + 2] = e
    end
    if st[C + 1] == b then
        local m = st[C + 2]
        if m == nil or e < m then
            st[C + 2] = e
            r = x
        else
            r = sign * m
        end
        merged = true
    end
elseif st[C + 1] == b then
    local m = st[C + 2]
    r, merged = m and sign * m, true
end
if not merged then
    local m, oldest = nil, b - 16
    for at = 0, C - 2, 2 do
        local bi = st[at + 1]
        if bi == nil then -- an empty bucket
        elseif bi > oldest and bi <= b then
            local e = st[at + 2]
            if m == nil or e < m then m = e end
        else
            st[at + 1], st[at + 2] = nil, nil
        end
    end
    st[C + 1], st[C + 2] = b, m
    r = m and sign * m
end
--@ mean_over x w
if st == nil then st = {} end
local C, b, merged = 48, floor(t / (w / 16)), false
if x ~= nil then
    local at = (b % 16) * 3
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
        r, merged = mean, true
    end
elseif st[C + 1] == b then
    if st[C + 2] ~= 0 then r = st[C + 3] end
    merged = true
end
if not merged then
    local n, mean, oldest = 0, 0, b - 16
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
    if n ~= 0 then r = mean end
end
-- Adding x to a running (n, mean, m2): n + 1, mean + d / (n + 1) and m2 + d * (x - that
-- mean), with d = x - mean (Welford); the sample standard deviation needs n >= 2.
--@ std_over x w
if st == nil then st = {} end
local C, b, n, m2 = 64, floor(t / (w / 16)), nil, nil
if x ~= nil then
    local at = (b % 16) * 4
    if st[at + 1] ~= b then
        st[at + 1], st[at + 2], st[at + 3], st[at + 4] = b, 1, x, 0
    else
        local k, mean = st[at + 2] + 1, st[at + 3]
        local d = x - mean
        mean = mean + d / k
        st[at + 2], st[at + 3], st[at + 4] = k, mean, st[at + 4] + d * (x - mean)
    end
    if st[C + 1] == b then
        local mean = st[C + 3]
        local d = x - mean
        n = st[C + 2] + 1
        mean = mean + d / n
        m2 = st[C + 4] + d * (x - mean)
        st[C + 2], st[C + 3], st[C + 4] = n, mean, m2
    end
elseif st[C + 1] == b then
    n, m2 = st[C + 2], st[C + 4]
end
if n == nil then
    local mean, oldest = 0, b - 16
    n, m2 = 0, 0
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
end
if n >= 2 then r = sqrt(max(m2, 0) / (n - 1)) end
--@end
