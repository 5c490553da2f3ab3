--[[
The gate of the nginx tier (ngx_lua 0.10, LuaJIT): verify the session token in the path of
/v1/s/{token}/{rendition}/{file}, then let nginx serve the object (a segment) or the media
playlist from its cache (playlist.m3u8, the same bytes for every session).

`authorize` runs from `set_by_lua_block $streamer_auth` in the segment and playlist locations;
the location's `if`s turn its answer into a status. It also fills the variables the location
serves from and the access log reads. The same decisions, in Python, are in
cdn_edge/nginx_tier/segment_access.py; tests/vectors/session_tokens.json checks both.

A verified token is remembered until its expiry: per worker (a Lua table, LRU) and across
workers (the `streamer_tokens` lua_shared_dict), so a session's token costs one HMAC in
nginx, not one per request. Only authentic session tokens are remembered, so a forged token
never takes a slot; a full dict drops its least recently used tokens, which then verify
again.

`init` runs in the master (init_by_lua) and reads the 0600 settings file the Python side
writes: {"keys": [hex, ...], "gate_credential": hex, "cmsd": {...}, "s3": {...} | null,
"zones": {dict: bytes}, "pretouch": bool, "status_every_s": s | null}. Workers inherit the
values in memory. Keys rotate: any verifies. `init_worker` makes the zones resident before the
worker serves (streamer_zones.lua) and, with a status listener, publishes the worker's Lua heap
every `status_every_s` for `status` to report.

`serve_key` (content_by_lua, /v1/s/{token}/keys/{key id}) hands out content keys, as the
Python edge's KeyService does (docs/decisions/0010-keys-in-the-gate.md): the token as above;
the key's tier against the session's (403 above it); the session's and the listener's key
budgets (429, cdn_edge/policy/key_budget.py, in the `streamer_budgets` dict shared by the
workers, arithmetic in streamer_budget.lua); then the 16 bytes from the `streamer_keys` dict.
A key the dict lacks is asked of the edge once, by an internal subrequest that the edge answers
only with the gate's credential: it unwraps the key and says its tier and the session's
budget. Clear keys stay in the dict for KEY_TTL_S at most, as in the edge's own cache.
]]

local ffi = require("ffi")
local base64 = require("ngx.base64")
local cjson = require("cjson.safe").new()
local lrucache = require("resty.lrucache")
local budget = require("streamer_budget")
local zones = require("streamer_zones")

local byte = string.byte
local find = string.find
local sub = string.sub
local ngx_var = ngx.var
local re_match = ngx.re.match
local bit_bor, bit_bxor = bit.bor, bit.bxor

ffi.cdef([[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                    const unsigned char *d, size_t n, unsigned char *md,
                    unsigned int *md_len);
unsigned char *SHA256(const unsigned char *d, size_t n, unsigned char *md);
]])

-- nginx links libcrypto for TLS, so its symbols are already in the process.
local crypto = ffi.C
if not pcall(function() return crypto.HMAC end) then
    crypto = ffi.load("libcrypto.so.3")
end

local SHA256_BYTES = 32
local digest = ffi.new("unsigned char[?]", SHA256_BYTES)
local digest_len = ffi.new("unsigned int[1]")

local function hmac_sha256(key, data)
    crypto.HMAC(crypto.EVP_sha256(), key, #key, data, #data, digest, digest_len)
    return ffi.string(digest, SHA256_BYTES)
end

local function sha256(data)
    crypto.SHA256(data, #data, digest)
    return ffi.string(digest, SHA256_BYTES)
end

local function hex(bytes)
    return (bytes:gsub(".", function(c) return string.format("%02x", byte(c)) end))
end

local function unhex(text)
    return (text:gsub("..", function(pair) return string.char(tonumber(pair, 16)) end))
end

-- The raw path (before nginx decodes %XX or merges slashes), so an encoded separator or a
-- dot segment never matches. A rendition never starts with '.' (cdn_edge/policy/names.py).
-- \z, not $: PCRE's $ also matches before a final newline.
local SEGMENT_PATH = "^/v1/s/([A-Za-z0-9_.-]{1,2048})/"
    .. "([A-Za-z0-9_][A-Za-z0-9_.]{0,63})/(init\\.mp4|seg_[0-9]{5,}\\.m4s|playlist\\.m3u8)\\z"
-- drm.tokens: base64url payload "." 43-character base64url HMAC-SHA256.
local TOKEN = "^([A-Za-z0-9_-]+)\\.([A-Za-z0-9_-]{43})\\z"
local NAME = "^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}\\z" -- track ids and versions (names.py)
local KIND_SESSION = "p"
-- /v1/s/{token}/keys/{key id}, the raw path as above; the key id is then checked as a NAME.
local KEY_PATH = "^/v1/s/([A-Za-z0-9_.-]{1,2048})/keys/([^/]{1,256})\\z"
local TIER_RANK = { free = 0, premium = 1 } -- cdn_edge.policy.negotiation.TIER_RANK
local KEY_BYTES = 16
-- As the edge's KEY_CACHE_TTL_S: a clear key stays in memory for a minute at most. A session's
-- budget (a pure function of the track version and its variants) is kept as long.
local KEY_TTL_S = 60
local GATE_FETCH = "/_streamer/gate_key" -- the internal location proxying to the edge
local TIERS = { free = true, premium = true }
local WORKER_TOKENS = 20000 -- per worker; the shared dict holds the rest
local SIGNATURE_REUSE_S = 60 -- an S3 signature is good for 15 minutes of clock skew

-- JSON as Python's json reads it: no hex numbers (0x1F), no NaN or Infinity.
cjson.decode_invalid_numbers(false)

local M = {}
local settings -- set by init, in the master
local by_worker -- token -> session, this worker's own
local signed -- S3 object path -> {stamp, authorization}, this worker's own

--- Reads the settings file (in the master, at config load).
function M.init(path)
    local file = assert(io.open(path, "rb"))
    local doc = assert(cjson.decode(file:read("*a")))
    file:close()
    local keys = {}
    for i, key in ipairs(doc.keys) do
        keys[i] = unhex(key)
    end
    assert(#keys > 0, "no playback key in " .. path)
    assert(type(doc.gate_credential) == "string" and #doc.gate_credential == 64,
        "no gate credential in " .. path)
    settings = {
        keys = keys,
        gate_credential = doc.gate_credential,
        cmsd = doc.cmsd,
        s3 = doc.s3 ~= cjson.null and doc.s3 or nil,
        zones = doc.zones,
        pretouch = doc.pretouch == true,
        status_every_s = doc.status_every_s ~= cjson.null and doc.status_every_s or nil,
        -- The dict outlives a reload (SIGHUP), whose keys may differ, and the old workers
        -- still write to it while they finish: entries are named after the keys that
        -- verified them. The old ones are dropped, or age out if an old worker adds more.
        generation = sub(hex(sha256(table.concat(keys, "\0"))), 1, 16) .. ":",
    }
    ngx.shared.streamer_tokens:flush_all()
end

local function refuse(status, code, message)
    -- Codes and messages are ours; a rendition in one holds only [A-Za-z0-9_.].
    ngx_var.streamer_error_body = '{"error":"' .. code .. '","message":"' .. message .. '"}'
    return status
end

-- Equal-length strings compared without an early exit; lengths are public (43 chars).
local function same_string(a, b)
    if #a ~= #b then
        return false
    end
    local diff = 0
    for i = 1, #a do
        diff = bit_bor(diff, bit_bxor(byte(a, i), byte(b, i)))
    end
    return diff == 0
end

local function signature_verifies(payload, signature)
    local ok = false
    for _, key in ipairs(settings.keys) do
        local mac = base64.encode_base64url(hmac_sha256(key, payload))
        -- No early exit either: every key is tried, so timing does not say which one signed.
        ok = same_string(mac, signature) or ok
    end
    return ok
end

local function is_integer(v)
    -- JSON numbers are doubles here; our signer writes ints only, never 1.0 or 1e3.
    return type(v) == "number" and v == math.floor(v) and v > -2 ^ 53 and v < 2 ^ 53
end

-- The claims of an authentic payload, or nil when they are not a flat object of str and int
-- claims with an int exp (drm.tokens._decode_claims).
local function decode_claims(payload)
    local text = base64.decode_base64url(payload)
    if text == nil or find(text, "[\128-\255]") then
        return nil
    end
    local claims = cjson.decode(text)
    if type(claims) ~= "table" then
        return nil
    end
    for name, value in pairs(claims) do
        if type(name) ~= "string" or (type(value) ~= "string" and not is_integer(value)) then
            return nil -- an array, a nested object, a bool, null or a float
        end
    end
    return is_integer(claims.exp) and claims or nil
end

local function session_fields(claims)
    return type(claims.sid) == "string" and type(claims.trk) == "string"
        and type(claims.ver) == "string" and type(claims.var) == "string"
        and re_match(claims.trk, NAME, "jo") ~= nil and re_match(claims.ver, NAME, "jo") ~= nil
        and TIERS[claims.tier] == true
end

-- What the gate needs of an authentic session token; `variants` as a set.
local function session_of(claims)
    local variants = {}
    for name in claims.var:gmatch("[^,]+") do
        variants[name] = true
    end
    return {
        exp = claims.exp,
        sid = claims.sid,
        trk = claims.trk,
        ver = claims.ver,
        tier = claims.tier,
        var = claims.var,
        -- The listener, for its key budget; nil in a token without one (keys then refuse).
        sub = type(claims.sub) == "string" and claims.sub or nil,
        variants = variants,
    }
end

local function remember(token, session, now)
    by_worker:set(token, session, session.exp - now)
    local record = cjson.encode({ session.exp, session.sid, session.trk, session.ver,
        session.tier, session.var, session.sub })
    -- set, not add: a full dict drops its least recently used tokens.
    ngx.shared.streamer_tokens:set(settings.generation .. token, record, session.exp - now)
end

local function recalled(token)
    local session = by_worker:get(token)
    if session ~= nil then
        return session
    end
    local record = ngx.shared.streamer_tokens:get(settings.generation .. token)
    if record == nil then
        return nil
    end
    local r = cjson.decode(record)
    session = session_of({ exp = r[1], sid = r[2], trk = r[3], ver = r[4], tier = r[5],
        var = r[6], sub = r[7] })
    by_worker:set(token, session, session.exp - ngx.time())
    return session
end

-- The session of a token seen for the first time, or the status and refusal.
local function verify(token)
    local parts = re_match(token, TOKEN, "jo")
    if parts == nil then
        return nil, refuse("401", "token_invalid", 'token is not payload \\".\\" signature')
    end
    if not signature_verifies(parts[1], parts[2]) then
        return nil, refuse("401", "token_invalid", "token signature does not verify")
    end
    local claims = decode_claims(parts[1])
    if claims == nil then
        return nil, refuse("401", "token_invalid", "token payload is not a flat JSON object")
    end
    -- Expiry before kind, as drm.check_claims does: an expired token of any kind is a 401.
    if ngx.time() >= claims.exp then
        return nil, refuse("401", "token_expired", "token expired")
    end
    if claims.t ~= KIND_SESSION then
        return nil, refuse("403", "token_mismatch", "token is not a session token")
    end
    if not session_fields(claims) then
        return nil, refuse("401", "token_invalid", "session token claims are malformed")
    end
    local session = session_of(claims)
    remember(token, session, ngx.time())
    return session
end

local function cmsd_dynamic(tier)
    -- CTA-5006 rtt in ms as the kernel sees the connection; omitted when TCP_INFO is not there.
    local dynamic = settings.cmsd.dynamic[tier]
    local rtt_us = tonumber(ngx_var.tcpinfo_rtt)
    if rtt_us ~= nil and rtt_us > 0 then
        dynamic = dynamic .. ";rtt=" .. math.floor(rtt_us / 1000 + 0.5)
    end
    return dynamic
end

-- The session of a token, remembered or verified now, and logged; or nil and the status.
local function session_for(token)
    local session = recalled(token)
    if session == nil then
        local refused
        session, refused = verify(token)
        if session == nil then
            return nil, refused
        end
    elseif ngx.time() >= session.exp then
        return nil, refuse("401", "token_expired", "token expired")
    end
    ngx_var.streamer_session_id = session.sid
    ngx_var.streamer_track_id = session.trk
    ngx_var.streamer_version = session.ver
    ngx_var.streamer_tier = session.tier
    return session
end

--- "ok", or the status to refuse with ("400", "401", "403") and a JSON body in
--- $streamer_error_body.
function M.authorize()
    local raw = ngx_var.request_uri
    local q = find(raw, "?", 1, true)
    local m = re_match(q and sub(raw, 1, q - 1) or raw, SEGMENT_PATH, "jo")
    if m == nil then
        return refuse("400", "malformed_name",
            "expected /v1/s/{token}/{rendition}/{init.mp4, seg_NNNNN.m4s or playlist.m3u8}")
    end
    local token, rendition, file = m[1], m[2], m[3]
    ngx_var.streamer_rendition = rendition
    ngx_var.streamer_object = file
    local session, refused = session_for(token)
    if session == nil then
        return refused
    end
    -- Tier entitlement: a session's "var" lists only the renditions its tier may play.
    if not session.variants[rendition] then
        return refuse("403", "not_entitled",
            "rendition " .. rendition .. " is not offered to this session")
    end
    ngx_var.streamer_object_path =
        "tracks/" .. session.trk .. "/" .. session.ver .. "/" .. rendition .. "/" .. file
    ngx_var.streamer_cmsd_static =
        file == "init.mp4" and settings.cmsd.static_init or settings.cmsd.static_media
    ngx_var.streamer_cmsd_dynamic = cmsd_dynamic(session.tier)
    return "ok"
end

-- Content keys (serve_key). Every answer is written here, in the edge's JSON error shape; the
-- location adds CORS, X-Request-Id and Cache-Control: no-store to each.

local function reply(status, body, content_type, headers)
    ngx.status = status
    ngx.header["Content-Type"] = content_type
    ngx.header["Content-Length"] = #body
    for name, value in pairs(headers or {}) do
        ngx.header[name] = value
    end
    ngx.print(body)
    return ngx.exit(ngx.HTTP_OK)
end

local AUTH_HEADERS = { ["WWW-Authenticate"] = 'Bearer realm="streamer-edge"' }

local function reply_error(status, code, message, headers)
    return reply(status, cjson.encode({ error = code, message = message }), "application/json",
        headers)
end

-- A refusal that refuse() put in $streamer_error_body.
local function reply_refused(status)
    return reply(tonumber(status), ngx_var.streamer_error_body, "application/json",
        status == "401" and AUTH_HEADERS or nil)
end

local function parse_pair(text)
    -- "capacity refill_per_s", as the edge writes a budget.
    if type(text) ~= "string" then
        return nil
    end
    local capacity, rate = text:match("^([0-9]+) ([0-9.eE+-]+)$")
    capacity, rate = tonumber(capacity), tonumber(rate)
    if capacity == nil or rate == nil or capacity < 1 or not (rate > 0) then
        return nil
    end
    return { capacity = capacity, rate = rate }
end

-- What the gate keeps per key (tier, and the bytes when some session was entitled to them)
-- and per (version, variants) (the session's and the listener's budget).
local function key_entry_name(session, key_id)
    return session.trk .. "/" .. session.ver .. "/" .. key_id
end

local function budget_entry_name(session)
    return session.trk .. "/" .. session.ver .. "|" .. session.var
end

local function decode_budgets(record)
    if record == nil then
        return nil
    end
    local s_cap, s_rate, l_cap, l_rate = record:match("^(%S+) (%S+) (%S+) (%S+)$")
    return {
        session = { capacity = tonumber(s_cap), rate = tonumber(s_rate) },
        listener = { capacity = tonumber(l_cap), rate = tonumber(l_rate) },
    }
end

-- Asks the edge for the key (one subrequest); fills the dicts. Returns the key's tier and
-- bytes (nil when the session may not have them) and the budgets, or replies itself.
local function fetch(session, token, key_id)
    local res = ngx.location.capture(GATE_FETCH, {
        method = ngx.HTTP_GET, -- a HEAD from the client still needs the bytes for the dict
        args = { t = token, k = key_id, c = settings.gate_credential },
    })
    local tier = res.header["Streamer-Key-Tier"]
    if res.status == 200 or res.status == 403 then
        if TIER_RANK[tier] == nil then
            ngx.log(ngx.ERR, "the edge's key answer has no key tier; status ", res.status)
            return reply_error(500, "internal_error", "unexpected error; see the server log")
        end
    end
    local keys = ngx.shared.streamer_keys
    if res.status == 403 and res.header["Streamer-Key-Tier"] then
        -- Above the session's tier: remember the tier alone, to refuse the next without asking.
        keys:set(key_entry_name(session, key_id), tier, KEY_TTL_S)
        return tier, nil, nil
    end
    if res.status ~= 200 then
        if res.status >= 500 or res.status == 0 then
            return reply_error(503, "unavailable", "the edge could not serve this; retry shortly",
                { ["Retry-After"] = "2" })
        end
        -- 401, 404 (no such key in the track version) ...: the edge's own answer.
        return reply(res.status, res.body, "application/json",
            res.status == 401 and AUTH_HEADERS or nil)
    end
    local session_budget = parse_pair(res.header["Streamer-Key-Budget"])
    local listener_budget = parse_pair(res.header["Streamer-Listener-Budget"])
    if #res.body ~= KEY_BYTES or session_budget == nil or listener_budget == nil then
        ngx.log(ngx.ERR, "the edge's key answer is malformed")
        return reply_error(500, "internal_error", "unexpected error; see the server log")
    end
    keys:set(key_entry_name(session, key_id), tier .. res.body, KEY_TTL_S)
    local budgets = string.format("%d %.17g %d %.17g", session_budget.capacity,
        session_budget.rate, listener_budget.capacity, listener_budget.rate)
    keys:set(budget_entry_name(session), budgets, KEY_TTL_S)
    return tier, res.body, decode_budgets(budgets)
end

local function split_entry(entry)
    -- "free" or "premium", then the 16 bytes when they were fetched for an entitled session.
    local tier = sub(entry, 1, 1) == "f" and "free" or "premium"
    local bytes = sub(entry, #tier + 1)
    return tier, #bytes == KEY_BYTES and bytes or nil
end

local function take_budget(name, capacity, rate, now)
    return budget.take_shared(ngx.shared.streamer_budgets, name, capacity, rate, now)
end

local function spend(session, budgets)
    local wait, refused_by = budget.spend(take_budget, session.sid, session.sub,
        budgets.session, budgets.listener, ngx.now())
    if wait == nil then
        return reply_error(503, "unavailable", "the key budget is busy; retry shortly",
            { ["Retry-After"] = "1" })
    end
    if wait == 0 then
        return
    end
    local retry = { ["Retry-After"] = tostring(budget.retry_after(wait)) }
    if refused_by == "session" then
        return reply_error(429, "rate_limited", "session " .. session.sid .. " has fetched its "
            .. budgets.session.capacity .. " keys (every key of every rendition it was offered, "
            .. "with a margin); open a new session to play the track again", retry)
    end
    local l = budgets.listener
    return reply_error(429, "rate_limited", "listener " .. session.sub .. " fetched more than "
        .. l.capacity .. " keys across sessions, more than playback needs; the budget "
        .. "refills at " .. string.format("%.0f", l.rate * 3600) .. " keys an hour", retry)
end

--- GET or HEAD /v1/s/{token}/keys/{key id}: the 16 bytes, or the edge's refusal.
function M.serve_key()
    local raw = ngx_var.request_uri
    local q = find(raw, "?", 1, true)
    local m = re_match(q and sub(raw, 1, q - 1) or raw, KEY_PATH, "jo")
    if m == nil or re_match(m[2], NAME, "jo") == nil then
        return reply_error(400, "malformed_name", "expected /v1/s/{token}/keys/{key id}, the key "
            .. "id 1 to 128 of letters, digits, '_', '-', '.' not starting with '.'")
    end
    local token, key_id = m[1], m[2]
    ngx_var.streamer_object = key_id
    local session, refused = session_for(token)
    if session == nil then
        return reply_refused(refused)
    end
    if session.sub == nil then
        return reply_error(401, "token_invalid", "session token claims are malformed", AUTH_HEADERS)
    end
    local keys = ngx.shared.streamer_keys
    local entry = keys:get(key_entry_name(session, key_id))
    local budgets = decode_budgets(keys:get(budget_entry_name(session)))
    local tier, bytes
    if entry ~= nil then
        tier, bytes = split_entry(entry)
    end
    local entitled = tier ~= nil and TIER_RANK[tier] <= TIER_RANK[session.tier]
    if tier == nil or (entitled and (bytes == nil or budgets == nil)) then
        tier, bytes, budgets = fetch(session, token, key_id)
        entitled = TIER_RANK[tier] <= TIER_RANK[session.tier]
    end
    ngx_var.streamer_key_tier = tier
    if not entitled then
        return reply_error(403, "not_entitled", "key " .. key_id .. " opens " .. tier
            .. " renditions; the session is " .. session.tier)
    end
    spend(session, budgets)
    return reply(200, bytes, "application/octet-stream", { Pragma = "no-cache" })
end

-- SigV4 (AWS Signature Version 4) for the S3 origin's GET, as nginx-s3-gateway signs it. The
-- path holds only unreserved characters (the gate checked every part), so it needs no
-- encoding. Range is not signed, so one signature serves every slice of an object; it is
-- reused for SIGNATURE_REUSE_S (S3 accepts 15 minutes of skew) because nginx evaluates
-- proxy_set_header values on cache hits too.
local EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
local SIGNED_HEADERS = "host;x-amz-content-sha256;x-amz-date"

local function s3_sign(object_path, stamp)
    local s3 = settings.s3
    local day = sub(stamp, 1, 8)
    local scope = day .. "/" .. s3.region .. "/s3/aws4_request"
    local canonical = table.concat({
        "GET",
        "/" .. s3.bucket .. "/" .. object_path,
        "",
        "host:" .. s3.host,
        "x-amz-content-sha256:" .. EMPTY_SHA256,
        "x-amz-date:" .. stamp,
        "",
        SIGNED_HEADERS,
        EMPTY_SHA256,
    }, "\n")
    local to_sign = table.concat({ "AWS4-HMAC-SHA256", stamp, scope, hex(sha256(canonical)) },
        "\n")
    local key = hmac_sha256("AWS4" .. s3.secret_key, day)
    key = hmac_sha256(key, s3.region)
    key = hmac_sha256(key, "s3")
    key = hmac_sha256(key, "aws4_request")
    return "AWS4-HMAC-SHA256 Credential=" .. s3.access_key .. "/" .. scope
        .. ", SignedHeaders=" .. SIGNED_HEADERS .. ", Signature=" .. hex(hmac_sha256(key, to_sign))
end

--- The Authorization header for the S3 GET of $streamer_object_path; sets $streamer_s3_date.
function M.s3_authorization()
    local object_path = ngx_var.streamer_object_path
    local now = ngx.time()
    local memo = signed:get(object_path)
    if memo == nil or now - memo.at >= SIGNATURE_REUSE_S then
        local stamp = ngx.utctime():gsub("[-:]", ""):gsub(" ", "T") .. "Z" -- 20240101T000000Z
        memo = { at = now, stamp = stamp, authorization = s3_sign(object_path, stamp) }
        signed:set(object_path, memo)
    end
    ngx_var.streamer_s3_date = memo.stamp
    return memo.authorization
end

-- This worker's memory, for the status location: its Lua heap and its own token cache.
local function publish(premature)
    if premature then
        return
    end
    local pid = ngx.worker.pid()
    local record = cjson.encode({ pid = pid, at = ngx.now(), lua_kib = collectgarbage("count"),
        worker_tokens = by_worker:count() })
    ngx.shared.streamer_status:set(tostring(pid), record, 3 * settings.status_every_s)
end

--- Per-worker state (init_worker_by_lua): LRU tables are not shared across a fork.
function M.init_worker()
    by_worker = assert(lrucache.new(WORKER_TOKENS))
    signed = assert(lrucache.new(WORKER_TOKENS))
    if settings.pretouch then
        for name, size in pairs(settings.zones) do
            local touched, how = zones.pretouch(ngx.shared[name], size)
            if touched == nil then
                ngx.log(ngx.WARN, "lua_shared_dict ", name, " not made resident: ", how)
            end
        end
    end
    if settings.status_every_s ~= nil then
        assert(ngx.timer.at(0, publish))
        assert(ngx.timer.every(settings.status_every_s, publish))
    end
end

--- GET /_streamer/status on the status listener (127.0.0.1 only, off unless configured): each
--- live worker's Lua heap as it last published it, and each zone's capacity and free bytes.
function M.status()
    local workers = {}
    local status = ngx.shared.streamer_status
    for _, pid in ipairs(status:get_keys(0)) do
        workers[pid] = cjson.decode(status:get(pid) or "null")
    end
    local body = cjson.encode({ workers = workers, zones = zones.zone_stats(settings.zones) })
    ngx.header["Content-Type"] = "application/json"
    ngx.header["Cache-Control"] = "no-store"
    ngx.print(body)
end

return M
