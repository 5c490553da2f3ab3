/*
 * The gate of the nginx tier (njs 0.7): verify the session token in the path of
 * /v1/s/{token}/{rendition}/{file}, then let nginx serve the object (a segment) or the media
 * playlist from its cache (playlist.m3u8, the same bytes for every session).
 *
 * `authorize` is a js_set handler: nginx calls it once per request (the value is cached) and
 * the location's `if`s turn its answer into a status. It also fills the js_var variables the
 * location serves from and the access log reads. The same decisions, in Python, are in
 * cdn_edge/nginx_tier/segment_access.py; tests/vectors/session_tokens.json checks both.
 *
 * `streamer` is preloaded (js_preload_object) from the 0600 secrets file the Python side
 * writes: {"keys": [hex, ...], "cmsd": {...}, "s3": {...} | null}. Keys rotate: any verifies.
 */
import crypto from 'crypto';

// The raw path (before nginx decodes %XX or merges slashes), so an encoded separator or a
// dot segment never matches. A rendition never starts with '.' (cdn_edge/policy/names.py).
const SEGMENT_PATH = new RegExp(
    '^/v1/s/([A-Za-z0-9_.-]{1,2048})/' +
    '([A-Za-z0-9_][A-Za-z0-9_.]{0,63})/(init\\.mp4|seg_[0-9]{5,}\\.m4s|playlist\\.m3u8)$');
// drm.tokens: base64url payload "." 43-character base64url HMAC-SHA256.
const TOKEN = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{43})$/;
const NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/;  // track ids and versions (names.py)
const ASCII = /^[\x00-\x7f]*$/;
const KIND_SESSION = 'p';
const TIERS = {free: true, premium: true};

function refuse(r, status, code, message) {
    r.variables.streamer_error_body = JSON.stringify({error: code, message: message});
    return String(status);
}

// Equal-length strings compared without an early exit; lengths are public (43 chars).
function sameString(a, b) {
    if (a.length !== b.length) {
        return false;
    }
    let diff = 0;
    for (let i = 0; i < a.length; i++) {
        diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
    }
    return diff === 0;
}

function signatureVerifies(payload, signature) {
    const keys = streamer.keys;
    let ok = false;
    for (let i = 0; i < keys.length; i++) {
        const mac = crypto.createHmac('sha256', Buffer.from(keys[i], 'hex'))
            .update(payload).digest('base64url');
        // No early exit either: every key is tried, so timing does not say which one signed.
        ok = sameString(mac, signature) || ok;
    }
    return ok;
}

function isClaimValue(v) {
    return typeof v === 'string' || Number.isInteger(v);
}

// The claims of an authentic payload, or null when they are not a flat object with an int exp
// (drm.tokens._decode_claims).
function decodeClaims(payload) {
    let claims;
    try {
        const text = Buffer.from(payload, 'base64url').toString();
        if (!ASCII.test(text)) {
            return null;
        }
        claims = JSON.parse(text);
    } catch (e) {
        return null;
    }
    if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
        return null;
    }
    const names = Object.keys(claims);
    for (let i = 0; i < names.length; i++) {
        if (!isClaimValue(claims[names[i]])) {
            return null;
        }
    }
    return Number.isInteger(claims.exp) ? claims : null;
}

function sessionFields(claims) {
    return typeof claims.sid === 'string' && typeof claims.trk === 'string'
        && typeof claims.ver === 'string' && typeof claims.var === 'string'
        && NAME.test(claims.trk) && NAME.test(claims.ver) && TIERS[claims.tier] === true;
}

function cmsdDynamic(r, tier) {
    // CTA-5006 rtt in ms as the kernel sees the connection; omitted when TCP_INFO is not there.
    let dynamic = streamer.cmsd.dynamic[tier];
    const rttUs = Number(r.variables.tcpinfo_rtt);
    if (rttUs > 0) {
        dynamic += ';rtt=' + Math.round(rttUs / 1000);
    }
    return dynamic;
}

/* "ok", or the status to refuse with ("400", "401", "403") and a JSON body in
 * $streamer_error_body. */
function authorize(r) {
    const raw = r.variables.request_uri;
    const q = raw.indexOf('?');
    const m = SEGMENT_PATH.exec(q < 0 ? raw : raw.substring(0, q));
    if (m === null) {
        return refuse(r, 400, 'malformed_name',
            'expected /v1/s/{token}/{rendition}/{init.mp4, seg_NNNNN.m4s or playlist.m3u8}');
    }
    const rendition = m[2];
    const file = m[3];
    r.variables.streamer_rendition = rendition;
    r.variables.streamer_object = file;
    const token = TOKEN.exec(m[1]);
    if (token === null) {
        return refuse(r, 401, 'token_invalid', 'token is not payload "." signature');
    }
    if (!signatureVerifies(token[1], token[2])) {
        return refuse(r, 401, 'token_invalid', 'token signature does not verify');
    }
    const claims = decodeClaims(token[1]);
    if (claims === null) {
        return refuse(r, 401, 'token_invalid', 'token payload is not a flat JSON object');
    }
    // Expiry before kind, as drm.check_claims does: an expired token of any kind is a 401.
    if (Math.floor(Date.now() / 1000) >= claims.exp) {
        return refuse(r, 401, 'token_expired', 'token expired');
    }
    if (claims.t !== KIND_SESSION) {
        return refuse(r, 403, 'token_mismatch', 'token is not a session token');
    }
    if (!sessionFields(claims)) {
        return refuse(r, 401, 'token_invalid', 'session token claims are malformed');
    }
    r.variables.streamer_session_id = claims.sid;
    r.variables.streamer_track_id = claims.trk;
    r.variables.streamer_version = claims.ver;
    r.variables.streamer_tier = claims.tier;
    // Tier entitlement: a session's "var" lists only the renditions its tier may play.
    if (claims.var.split(',').indexOf(rendition) < 0) {
        return refuse(r, 403, 'not_entitled',
            'rendition ' + rendition + ' is not offered to this session');
    }
    r.variables.streamer_object_path =
        'tracks/' + claims.trk + '/' + claims.ver + '/' + rendition + '/' + file;
    r.variables.streamer_cmsd_static =
        file === 'init.mp4' ? streamer.cmsd.static_init : streamer.cmsd.static_media;
    r.variables.streamer_cmsd_dynamic = cmsdDynamic(r, claims.tier);
    return 'ok';
}

// SigV4 (AWS Signature Version 4) for the S3 origin's GET, as nginx-s3-gateway signs it. The
// path holds only unreserved characters (the gate checked every part), so it needs no encoding.
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const SIGNED_HEADERS = 'host;x-amz-content-sha256;x-amz-date';

// One timestamp per request, whichever of the two S3 variables nginx evaluates first.
function s3Date(r) {
    let stamp = r.variables.streamer_s3_stamp;
    if (!stamp) {
        stamp = new Date().toISOString().replace(/[:-]|\.[0-9]{3}/g, '');  // 20240101T000000Z
        r.variables.streamer_s3_stamp = stamp;
    }
    return stamp;
}

function s3Authorization(r) {
    const s3 = streamer.s3;
    const stamp = s3Date(r);
    const day = stamp.substring(0, 8);
    const scope = day + '/' + s3.region + '/s3/aws4_request';
    const canonical = [
        'GET',
        '/' + s3.bucket + '/' + r.variables.streamer_object_path,
        '',
        'host:' + s3.host,
        'x-amz-content-sha256:' + EMPTY_SHA256,
        'x-amz-date:' + stamp,
        '',
        SIGNED_HEADERS,
        EMPTY_SHA256,
    ].join('\n');
    const toSign = ['AWS4-HMAC-SHA256', stamp, scope,
        crypto.createHash('sha256').update(canonical).digest('hex')].join('\n');
    let key = crypto.createHmac('sha256', 'AWS4' + s3.secret_key).update(day).digest();
    key = crypto.createHmac('sha256', key).update(s3.region).digest();
    key = crypto.createHmac('sha256', key).update('s3').digest();
    key = crypto.createHmac('sha256', key).update('aws4_request').digest();
    const signature = crypto.createHmac('sha256', key).update(toSign).digest('hex');
    return 'AWS4-HMAC-SHA256 Credential=' + s3.access_key + '/' + scope +
        ', SignedHeaders=' + SIGNED_HEADERS + ', Signature=' + signature;
}

export default {authorize, s3Date, s3Authorization};
