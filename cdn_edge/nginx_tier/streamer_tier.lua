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
writes: {"keys": [hex, ...], "cmsd": {...}, "s3": {...} | null}. Workers inherit the values
in memory. Keys rotate: any verifies.
]]

local ffi = require("ffi")
local base64 = require("ngx.base64")
local cjson = require("cjson.safe").new()
local lrucache = require("resty.lrucache")

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
    settings = {
        keys = keys,
        cmsd = doc.cmsd,
        s3 = doc.s3 ~= cjson.null and doc.s3 or nil,
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
        variants = variants,
    }
end

local function remember(token, session, now)
    by_worker:set(token, session, session.exp - now)
    local record = cjson.encode({ session.exp, session.sid, session.trk, session.ver,
        session.tier, session.var })
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
        var = r[6] })
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
    local session = recalled(token)
    if session == nil then
        local refused
        session, refused = verify(token)
        if session == nil then
            return refused
        end
    elseif ngx.time() >= session.exp then
        return refuse("401", "token_expired", "token expired")
    end
    ngx_var.streamer_session_id = session.sid
    ngx_var.streamer_track_id = session.trk
    ngx_var.streamer_version = session.ver
    ngx_var.streamer_tier = session.tier
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

--- Per-worker state (init_worker_by_lua): LRU tables are not shared across a fork.
function M.init_worker()
    by_worker = assert(lrucache.new(WORKER_TOKENS))
    signed = assert(lrucache.new(WORKER_TOKENS))
end

return M
