--[[
Key budgets in the gate: a token bucket per session and per listener, as
cdn_edge/policy/rate_limit.py's TokenBuckets takes from them, in the same arithmetic (doubles,
the same operations in the same order), so both answer every step of
tests/vectors/key_budgets.json alike.

`take` is pure: a bucket is (tokens, updated) or nil for one never seen (or forgotten: a
forgotten bucket is a full one, which is why an entry may expire once it would be full again).
`take_shared` keeps buckets in a lua_shared_dict that every worker of nginx shares.
]]

local ceil, max, min = math.ceil, math.max, math.min
local format = string.format
local tonumber = tonumber

local M = {}

-- One worker holds a bucket's lock for a get and a set, microseconds; a lock left by a worker
-- that died is gone after LOCK_TTL_S.
local LOCK_TTL_S = 0.01
local LOCK_TRIES = 20
local LOCK_WAIT_S = 0.001

--- Take `count` tokens from a bucket of `capacity` refilled at `rate` a second, at `now`.
--- Returns the bucket's tokens and time after, and 0 if granted, else the seconds until the
--- tokens will be there (TokenBuckets.take).
function M.take(tokens, updated, capacity, rate, count, now)
    if tokens == nil then
        tokens, updated = capacity, now
    else
        local elapsed = max(0.0, now - updated)
        tokens = min(capacity, tokens + elapsed * rate)
        updated = now
    end
    if tokens >= count then
        return tokens - count, updated, 0
    end
    return tokens, updated, (count - tokens) / rate
end

--- Retry-After in whole seconds, rounded up, at least 1 (rate_limit.retry_after_header).
function M.retry_after(wait_s)
    return max(1, ceil(wait_s))
end

local function decode(record)
    if record == nil then
        return nil, nil
    end
    local space = record:find(" ", 1, true)
    return tonumber(record:sub(1, space - 1)), tonumber(record:sub(space + 1))
end

--- One key from the session's budget, then from the listener's (key_service.spend_key):
--- 0 when granted, else the seconds to wait and which budget refused ("session", "listener");
--- nil when `take` could not (a busy lock). `take(name, capacity, rate, now)` is take_shared
--- bound to the dict, or a table's in the vectors' check.
function M.spend(take, session_id, user_id, session_budget, listener_budget, now)
    local wait = take("s:" .. session_id, session_budget.capacity, session_budget.rate, now)
    if wait == nil or wait > 0 then
        return wait, "session"
    end
    wait = take("l:" .. user_id, listener_budget.capacity, listener_budget.rate, now)
    if wait == nil or wait > 0 then
        return wait, "listener"
    end
    return 0
end

--- `take` of one token on the bucket `name` in `dict`; nil when its lock stayed busy.
function M.take_shared(dict, name, capacity, rate, now)
    local lock = "lock:" .. name
    for _ = 1, LOCK_TRIES do
        if dict:add(lock, true, LOCK_TTL_S) then
            local tokens, updated = decode(dict:get(name))
            local wait
            tokens, updated, wait = M.take(tokens, updated, capacity, rate, 1, now)
            -- Kept until it would be full again; after that, no entry means a full bucket.
            local ttl = max(0.001, (capacity - tokens) / rate + 1)
            dict:set(name, format("%.17g %.17g", tokens, updated), ttl)
            dict:delete(lock)
            return wait
        end
        ngx.sleep(LOCK_WAIT_S)
    end
    return nil
end

return M
