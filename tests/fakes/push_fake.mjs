// push_fake.mjs — a local fake of APNs, FCM HTTP v1 and Google's OAuth token
// endpoint, for chatd's push tests. Node >= 18, built-in modules only.
//
//   node push_fake.mjs --cert cert.pem --key key.pem \
//       --apns-pub apns_pub.pem --fcm-pub fcm_pub.pem \
//       --apns-team TEAMID --apns-kid KEYID --apns-topic com.example.chat \
//       --fcm-email sa@proj.iam.gserviceaccount.com --fcm-kid <private_key_id> \
//       --project proj-123
//
// One TLS server (HTTP/2, HTTP/1.1 allowed for the control endpoints) on
// 127.0.0.1, port 0; prints "push_fake: listening on 127.0.0.1:PORT". Every
// request to a provider path is checked against docs/push.md and recorded with
// the problems found; see README.md in this directory.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';

// ---------------------------------------------------------------- arguments

const opt = {};
{
    const argv = process.argv.slice(2);
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (!a.startsWith('--') || i + 1 >= argv.length) {
            console.error(`push_fake: bad argument ${a}`);
            process.exit(2);
        }
        opt[a.slice(2)] = argv[++i];
    }
    for (const k of ['cert', 'key', 'apns-pub', 'fcm-pub', 'apns-team', 'apns-kid', 'apns-topic',
                     'fcm-email', 'fcm-kid', 'project']) {
        if (!opt[k]) {
            console.error(`push_fake: --${k} is required`);
            process.exit(2);
        }
    }
}
const APNS_PUB = crypto.createPublicKey(fs.readFileSync(opt['apns-pub']));
const FCM_PUB = crypto.createPublicKey(fs.readFileSync(opt['fcm-pub']));
const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const APNS_MAX_PAYLOAD = 4096;
const FCM_MAX_PAYLOAD = 4096;
const CLOCK_SKEW_S = 3600;     // iat within +-1 h of now
const DAY_S = 86400;

let port = 0;                  // known once listening
const tokenUrl = () => `https://127.0.0.1:${port}/token`;

// ---------------------------------------------------------------- state

let requests = [];             // every recorded provider request
const scripts = new Map();     // device token (or "oauth") -> [answers]
const expectTopic = new Map(); // device token -> the apns-topic it must carry
const issued = new Map();      // access token -> {issued_ms, expires_in}
let connections = 0;

const nowMs = () => performance.timeOrigin + performance.now();
const nowS = () => Math.floor(Date.now() / 1000);

// ---------------------------------------------------------------- helpers

function b64urlDecode(s) {
    if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s)) return null;
    return Buffer.from(s, 'base64url');
}

function isInt(v) {
    return typeof v === 'number' && Number.isInteger(v);
}

function isDigits(v) {
    return typeof v === 'string' && /^(0|[1-9][0-9]*)$/.test(v);
}

// Parses and verifies a compact JWS. alg: 'ES256' | 'RS256'. Returns
// {raw, header, claims, signature_ok} and pushes what is wrong onto problems.
function checkJwt(raw, alg, pub, problems, what) {
    const out = {raw, header: null, claims: null, signature_ok: false};
    const parts = typeof raw === 'string' ? raw.split('.') : [];
    if (parts.length !== 3) {
        problems.push(`${what}: not a compact JWS (three dot-separated parts)`);
        return out;
    }
    const [h, c, s] = parts;
    for (const [name, part] of [['header', h], ['claims', c]]) {
        const bytes = b64urlDecode(part);
        if (bytes === null || part.includes('=')) {
            problems.push(`${what}: ${name} is not unpadded base64url`);
            continue;
        }
        try {
            const v = JSON.parse(bytes.toString('utf8'));
            if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
            out[name] = v;
        } catch (e) {
            problems.push(`${what}: ${name} is not a JSON object (${e.message})`);
        }
    }
    const sig = b64urlDecode(s);
    if (sig === null || s.includes('=')) {
        problems.push(`${what}: signature is not unpadded base64url`);
        return out;
    }
    const input = Buffer.from(`${h}.${c}`, 'ascii');
    try {
        if (alg === 'ES256') {
            if (sig.length !== 64) {
                problems.push(`${what}: ES256 signature is ${sig.length} bytes, not 64 (raw r||s)`);
            } else {
                out.signature_ok = crypto.verify('sha256', input,
                                                 {key: pub, dsaEncoding: 'ieee-p1363'}, sig);
            }
        } else {
            out.signature_ok = crypto.verify('sha256', input,
                                             {key: pub, padding: crypto.constants.RSA_PKCS1_PADDING},
                                             sig);
        }
    } catch (e) {
        problems.push(`${what}: signature check threw: ${e.message}`);
    }
    if (!out.signature_ok) problems.push(`${what}: signature does not verify with the public key`);
    if (out.header) {
        if (out.header.alg !== alg) problems.push(`${what}: header alg ${JSON.stringify(out.header.alg)}, want ${alg}`);
    }
    return out;
}

function checkIat(claims, problems, what) {
    if (!isInt(claims.iat)) {
        problems.push(`${what}: iat ${JSON.stringify(claims.iat)} is not an integer`);
        return;
    }
    const d = claims.iat - nowS();
    if (Math.abs(d) > CLOCK_SKEW_S) problems.push(`${what}: iat is ${d} s from now (more than 1 h)`);
}

function exactKeys(obj, keys, problems, what) {
    const have = Object.keys(obj).sort();
    const want = [...keys].sort();
    if (JSON.stringify(have) !== JSON.stringify(want))
        problems.push(`${what}: keys ${JSON.stringify(have)}, want ${JSON.stringify(want)}`);
}

function isObj(v) {
    return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function header(req, name) {
    const v = req.headers[name];
    return Array.isArray(v) ? v.join(',') : v;
}

// ---------------------------------------------------------------- APNs

function checkApns(req, rec, token, raw) {
    const p = rec.problems;
    if (req.method !== 'POST') p.push(`APNs: method ${req.method}, want POST`);
    if (req.httpVersionMajor !== 2) p.push(`APNs: HTTP/${req.httpVersion}, APNs speaks HTTP/2 only`);
    if (!token || !/^[A-Za-z0-9]+$/.test(token)) p.push(`APNs: bad device token in path ${JSON.stringify(token)}`);

    // authorization: bearer <ES256 JWT>
    const auth = header(req, 'authorization');
    const m = typeof auth === 'string' ? /^bearer (\S+)$/i.exec(auth) : null;
    if (!m) {
        p.push(`APNs: authorization ${JSON.stringify(auth)}, want "bearer <JWT>"`);
    } else {
        const j = checkJwt(m[1], 'ES256', APNS_PUB, p, 'APNs JWT');
        rec.jwt = j;
        if (j.header) {
            if (j.header.kid !== opt['apns-kid']) p.push(`APNs JWT: kid ${JSON.stringify(j.header.kid)}, want ${opt['apns-kid']}`);
        }
        if (j.claims) {
            if (j.claims.iss !== opt['apns-team']) p.push(`APNs JWT: iss ${JSON.stringify(j.claims.iss)}, want ${opt['apns-team']}`);
            checkIat(j.claims, p, 'APNs JWT');
        }
    }

    const topic = header(req, 'apns-topic');
    const wantTopic = expectTopic.get(token) ?? opt['apns-topic'];
    if (topic !== wantTopic) p.push(`APNs: apns-topic ${JSON.stringify(topic)}, want ${JSON.stringify(wantTopic)}`);

    const type = header(req, 'apns-push-type');
    if (type !== 'alert' && type !== 'background') p.push(`APNs: apns-push-type ${JSON.stringify(type)}, want alert or background`);
    const prio = header(req, 'apns-priority');
    const wantPrio = type === 'background' ? '5' : '10';
    if (prio !== wantPrio) p.push(`APNs: apns-priority ${JSON.stringify(prio)} for push type ${type}, want ${wantPrio}`);

    const exp = header(req, 'apns-expiration');
    if (!isDigits(exp)) {
        p.push(`APNs: apns-expiration ${JSON.stringify(exp)} is not unix seconds`);
    } else {
        const d = Number(exp) - nowS();
        if (d <= 0) p.push(`APNs: apns-expiration is ${-d} s in the past`);
        else if (d > DAY_S + 60) p.push(`APNs: apns-expiration is ${d} s ahead, more than 1 day`);
        else if (d < DAY_S - 600) p.push(`APNs: apns-expiration is ${d} s ahead, want now + 1 day`);
    }

    const collapse = header(req, 'apns-collapse-id');
    if (typeof collapse !== 'string') p.push('APNs: no apns-collapse-id');
    else {
        if (Buffer.byteLength(collapse) > 64) p.push(`APNs: apns-collapse-id longer than 64 bytes`);
        if (!/^thread-[1-9][0-9]*$/.test(collapse)) p.push(`APNs: apns-collapse-id ${JSON.stringify(collapse)}, want thread-<id>`);
    }

    // body
    if (raw.length === 0) return; // "not JSON" already said
    if (raw.length > APNS_MAX_PAYLOAD) p.push(`APNs: payload ${raw.length} bytes, more than ${APNS_MAX_PAYLOAD}`);
    const body = rec.body;
    if (!isObj(body)) { p.push('APNs: body is not a JSON object'); return; }
    if (!isObj(body.aps)) { p.push('APNs: body.aps is not an object'); return; }
    if (!isInt(body.thread_id) || body.thread_id < 1) p.push(`APNs: thread_id ${JSON.stringify(body.thread_id)} is not a positive integer`);
    if (!isInt(body.seq) || body.seq < 0) p.push(`APNs: seq ${JSON.stringify(body.seq)} is not an integer >= 0`);
    if (typeof collapse === 'string' && isInt(body.thread_id) && collapse !== `thread-${body.thread_id}`)
        p.push(`APNs: apns-collapse-id ${collapse} does not name thread_id ${body.thread_id}`);
    const aps = body.aps;
    if (type === 'background' || body.type === 'clear') {
        exactKeys(body, ['aps', 'type', 'thread_id', 'seq'], p, 'APNs clear body');
        if (body.type !== 'clear') p.push(`APNs: background push with type ${JSON.stringify(body.type)}, want "clear"`);
        if (type !== 'background') p.push(`APNs: clear payload with apns-push-type ${type}, want background`);
        exactKeys(aps, ['content-available'], p, 'APNs clear aps');
        if (aps['content-available'] !== 1) p.push('APNs: clear aps.content-available is not 1');
    } else {
        exactKeys(body, ['aps', 'thread_id', 'seq'], p, 'APNs message body');
        exactKeys(aps, ['alert', 'badge', 'sound', 'thread-id'], p, 'APNs message aps');
        if (!isObj(aps.alert)) p.push('APNs: aps.alert is not an object');
        else {
            exactKeys(aps.alert, ['title', 'body'], p, 'APNs aps.alert');
            if (typeof aps.alert.title !== 'string' || aps.alert.title === '') p.push('APNs: aps.alert.title is not a non-empty string');
            if (typeof aps.alert.body !== 'string') p.push('APNs: aps.alert.body is not a string');
        }
        if (!isInt(aps.badge) || aps.badge < 0) p.push(`APNs: aps.badge ${JSON.stringify(aps.badge)} is not an integer >= 0`);
        if (aps.sound !== 'default') p.push(`APNs: aps.sound ${JSON.stringify(aps.sound)}, want "default"`);
        if (aps['thread-id'] !== String(body.thread_id)) p.push(`APNs: aps.thread-id ${JSON.stringify(aps['thread-id'])}, want "${body.thread_id}"`);
        if (body.seq < 1) p.push('APNs: message seq < 1');
    }
}

function apnsReason(problems) {
    const s = problems.join(' ');
    if (/JWT|authorization/.test(s)) return 'InvalidProviderToken';
    if (/apns-topic/.test(s)) return 'BadTopic';
    if (/apns-priority/.test(s)) return 'BadPriority';
    if (/apns-push-type/.test(s)) return 'InvalidPushType';
    if (/apns-expiration/.test(s)) return 'BadExpirationDate';
    if (/apns-collapse-id/.test(s)) return 'BadCollapseId';
    if (/payload \d+ bytes/.test(s)) return 'PayloadTooLarge';
    if (/method/.test(s)) return 'BadMethod';
    if (/HTTP\//.test(s)) return 'BadPath';
    return 'BadPayload'; // not an Apple reason: never one that would drop the token
}

// ---------------------------------------------------------------- OAuth

function checkOAuth(req, rec, raw) {
    const p = rec.problems;
    if (req.method !== 'POST') p.push(`OAuth: method ${req.method}, want POST`);
    const ctype = header(req, 'content-type') || '';
    if (!/^application\/x-www-form-urlencoded\b/i.test(ctype)) p.push(`OAuth: content-type ${JSON.stringify(ctype)}, want application/x-www-form-urlencoded`);
    const form = new URLSearchParams(raw.toString('utf8'));
    rec.body = Object.fromEntries(form);
    const keys = [...form.keys()].sort();
    if (JSON.stringify(keys) !== JSON.stringify(['assertion', 'grant_type']))
        p.push(`OAuth: form fields ${JSON.stringify(keys)}, want assertion and grant_type once each`);
    if (form.get('grant_type') !== JWT_BEARER) p.push(`OAuth: grant_type ${JSON.stringify(form.get('grant_type'))}, want ${JWT_BEARER}`);
    const j = checkJwt(form.get('assertion'), 'RS256', FCM_PUB, p, 'OAuth JWT');
    rec.jwt = j;
    if (j.header) {
        if (j.header.typ !== 'JWT') p.push(`OAuth JWT: typ ${JSON.stringify(j.header.typ)}, want JWT`);
        if (j.header.kid !== opt['fcm-kid']) p.push(`OAuth JWT: kid ${JSON.stringify(j.header.kid)}, want ${opt['fcm-kid']}`);
    }
    if (j.claims) {
        const c = j.claims;
        if (c.iss !== opt['fcm-email']) p.push(`OAuth JWT: iss ${JSON.stringify(c.iss)}, want ${opt['fcm-email']}`);
        if (c.scope !== FCM_SCOPE) p.push(`OAuth JWT: scope ${JSON.stringify(c.scope)}, want ${FCM_SCOPE}`);
        if (c.aud !== tokenUrl()) p.push(`OAuth JWT: aud ${JSON.stringify(c.aud)}, want ${tokenUrl()}`);
        checkIat(c, p, 'OAuth JWT');
        if (!isInt(c.exp) || !isInt(c.iat) || c.exp - c.iat !== 3600) p.push(`OAuth JWT: exp - iat is ${c.exp - c.iat}, want 3600`);
    }
}

function issueToken(extra) {
    const body = {access_token: 'ya29.fake-' + crypto.randomBytes(24).toString('base64url'),
                  expires_in: 3600, token_type: 'Bearer', ...(extra || {})};
    issued.set(body.access_token, {issued_ms: Date.now(), expires_in: body.expires_in});
    return body;
}

// ---------------------------------------------------------------- FCM

function googleError(code, status, message, errorCode) {
    const e = {error: {code, message, status}};
    if (errorCode) e.error.details = [{'@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode}];
    return e;
}

function checkFcm(req, rec, project, raw) {
    const p = rec.problems;
    if (req.method !== 'POST') p.push(`FCM: method ${req.method}, want POST`);
    if (project !== opt.project) p.push(`FCM: project ${JSON.stringify(project)}, want ${opt.project}`);
    const ctype = header(req, 'content-type') || '';
    if (!/^application\/json\b/i.test(ctype)) p.push(`FCM: content-type ${JSON.stringify(ctype)}, want application/json`);
    const auth = header(req, 'authorization');
    const m = typeof auth === 'string' ? /^Bearer (\S+)$/.exec(auth) : null;
    rec.access_token = m ? m[1] : null;
    rec.auth_ok = !!(m && issued.has(m[1]));
    if (!m) p.push(`FCM: authorization ${JSON.stringify(auth)}, want "Bearer <access token>"`);
    else if (!issued.has(m[1])) p.push('FCM: bearer is not an access token the OAuth endpoint issued');
    else {
        const t = issued.get(m[1]);
        if (Date.now() > t.issued_ms + t.expires_in * 1000) p.push('FCM: access token used after it expired');
    }

    if (raw.length > FCM_MAX_PAYLOAD) p.push(`FCM: body ${raw.length} bytes, more than ${FCM_MAX_PAYLOAD}`);
    const body = rec.body;
    if (!isObj(body) || !isObj(body.message)) { p.push('FCM: body is not {"message": {...}}'); return null; }
    exactKeys(body, ['message'], p, 'FCM body');
    const msg = body.message;
    if (typeof msg.token !== 'string' || msg.token === '') p.push('FCM: message.token is not a non-empty string');
    if (!isObj(msg.data)) { p.push('FCM: message.data is not an object'); return msg.token; }
    for (const [k, v] of Object.entries(msg.data))
        if (typeof v !== 'string') p.push(`FCM: data.${k} is ${JSON.stringify(v)}, data values must be strings`);
    if (!isObj(msg.android)) { p.push('FCM: message.android is not an object'); return msg.token; }
    const d = msg.data;
    if (!isDigits(d.thread_id) || d.thread_id === '0') p.push(`FCM: data.thread_id ${JSON.stringify(d.thread_id)} is not a positive integer string`);
    if (!isDigits(d.seq)) p.push(`FCM: data.seq ${JSON.stringify(d.seq)} is not an integer string`);
    if (d.type === 'clear') {
        exactKeys(msg, ['token', 'data', 'android'], p, 'FCM clear message');
        exactKeys(d, ['type', 'thread_id', 'seq'], p, 'FCM clear data');
        exactKeys(msg.android, ['priority'], p, 'FCM clear android');
        if (msg.android.priority !== 'normal') p.push(`FCM: clear android.priority ${JSON.stringify(msg.android.priority)}, want normal`);
    } else {
        exactKeys(msg, ['token', 'notification', 'data', 'android'], p, 'FCM message');
        exactKeys(d, ['thread_id', 'seq', 'badge'], p, 'FCM message data');
        if (!isDigits(d.badge)) p.push(`FCM: data.badge ${JSON.stringify(d.badge)} is not an integer string`);
        if (d.seq === '0') p.push('FCM: message data.seq is 0');
        if (!isObj(msg.notification)) p.push('FCM: message.notification is not an object');
        else {
            exactKeys(msg.notification, ['title', 'body'], p, 'FCM notification');
            if (typeof msg.notification.title !== 'string' || msg.notification.title === '') p.push('FCM: notification.title is not a non-empty string');
            if (typeof msg.notification.body !== 'string') p.push('FCM: notification.body is not a string');
        }
        exactKeys(msg.android, ['collapse_key', 'priority'], p, 'FCM android');
        if (msg.android.collapse_key !== `thread-${d.thread_id}`) p.push(`FCM: android.collapse_key ${JSON.stringify(msg.android.collapse_key)}, want thread-${d.thread_id}`);
        if (msg.android.priority !== 'high') p.push(`FCM: android.priority ${JSON.stringify(msg.android.priority)}, want high`);
    }
    return msg.token;
}

// ---------------------------------------------------------------- dispatch

function send(res, rec, status, headers, body) {
    const h = {...(headers || {})};
    let payload = '';
    if (body !== undefined && body !== null) {
        payload = typeof body === 'string' ? body : JSON.stringify(body);
        if (!Object.keys(h).some(k => k.toLowerCase() === 'content-type'))
            h['content-type'] = typeof body === 'string' ? 'text/plain' : 'application/json';
    }
    if (rec) {
        rec.status_sent = status;
        rec.answered_ms = nowMs();
        rec.answer = {status, headers: h, body: body ?? null};
    }
    try {
        res.writeHead(status, h);
        res.end(payload);
    } catch (e) {
        // the client went away (a delayed answer to a killed chatd, say)
        if (rec) rec.answer_error = String(e.message || e);
    }
}

function takeScript(key) {
    const list = scripts.get(key);
    if (!list || list.length === 0) return null;
    const a = list.shift();
    if (list.length === 0) scripts.delete(key);
    return a;
}

function answerScripted(res, rec, a, fill) {
    const go = () => {
        let body = a.body;
        if (fill) body = fill(a);
        send(res, rec, a.status ?? 200, a.headers, body);
    };
    if (a.delay_ms) setTimeout(go, a.delay_ms); else go();
}

function handleControl(req, res, url, raw) {
    const json = () => {
        try { return raw.length ? JSON.parse(raw.toString('utf8')) : {}; }
        catch { return undefined; }
    };
    if (url.pathname === '/_control/requests' && req.method === 'GET') {
        const tok = url.searchParams.get('token');
        return send(res, null, 200, {}, tok === null ? requests : requests.filter(r => r.token === tok));
    }
    if (url.pathname === '/_control/reset' && req.method === 'POST') {
        requests = [];
        scripts.clear();
        expectTopic.clear();
        return send(res, null, 200, {}, {ok: true});
    }
    if (url.pathname === '/_control/script' && req.method === 'POST') {
        const b = json();
        if (!isObj(b) || typeof b.token !== 'string' || !Array.isArray(b.responses))
            return send(res, null, 400, {}, {error: 'want {token, responses: [...]}'});
        for (const a of b.responses)
            if (!isObj(a) || (a.status !== undefined && !isInt(a.status)))
                return send(res, null, 400, {}, {error: 'each response is {status, headers?, body?, delay_ms?}'});
        scripts.set(b.token, [...(scripts.get(b.token) || []), ...b.responses]);
        return send(res, null, 200, {}, {ok: true, queued: scripts.get(b.token).length});
    }
    if (url.pathname === '/_control/expect' && req.method === 'POST') {
        const b = json();
        if (!isObj(b) || typeof b.token !== 'string' || typeof b.apns_topic !== 'string')
            return send(res, null, 400, {}, {error: 'want {token, apns_topic}'});
        expectTopic.set(b.token, b.apns_topic);
        return send(res, null, 200, {}, {ok: true});
    }
    if (url.pathname === '/_control/state' && req.method === 'GET') {
        return send(res, null, 200, {}, {port, connections, issued_tokens: issued.size,
                                         scripts: Object.fromEntries(scripts)});
    }
    return send(res, null, 404, {}, {error: 'no such control endpoint'});
}

function handle(req, res, raw) {
    const at = nowMs();
    const url = new URL(req.url, 'https://127.0.0.1');
    if (url.pathname.startsWith('/_control/')) return handleControl(req, res, url, raw);

    const rec = {
        at_ms: at, kind: 'unknown', method: req.method, path: req.url, http_version: req.httpVersion,
        conn: req.socket?.pushFakeConn ?? req.stream?.session?.socket?.pushFakeConn ?? null,
        token: null, headers: {...req.headers}, body: null, body_bytes: raw.length, jwt: null,
        problems: [], status_sent: null, answered_ms: null,
    };
    requests.push(rec);

    // a body that is JSON gets parsed (the checks say when it must be)
    const utf8 = (() => {
        try { return new TextDecoder('utf-8', {fatal: true}).decode(raw); }
        catch { rec.problems.push('body is not valid UTF-8'); return raw.toString('utf8'); }
    })();

    let m;
    if ((m = /^\/3\/device\/([^/]*)$/.exec(url.pathname))) {
        rec.kind = 'apns';
        rec.token = decodeURIComponent(m[1]);
        try { rec.body = JSON.parse(utf8); } catch { rec.body = utf8; rec.problems.push('APNs: body is not JSON'); }
        if (url.search) rec.problems.push(`APNs: unexpected query ${url.search}`);
        checkApns(req, rec, rec.token, raw);
        const a = takeScript(rec.token);
        if (a) return answerScripted(res, rec, a);
        if (rec.problems.length)
            return send(res, rec, 400, {'apns-id': crypto.randomUUID()},
                        {reason: apnsReason(rec.problems), fake_problems: rec.problems});
        return send(res, rec, 200, {'apns-id': crypto.randomUUID()});
    }
    if (url.pathname === '/token') {
        rec.kind = 'oauth';
        rec.token = 'oauth';
        checkOAuth(req, rec, raw);
        const a = takeScript('oauth');
        if (a) {
            // a scripted 200 still issues a real token (its body may set expires_in)
            return answerScripted(res, rec, a, s =>
                (s.status ?? 200) === 200 ? issueToken(s.body) : s.body);
        }
        if (rec.problems.length)
            return send(res, rec, 400, {}, {error: 'invalid_grant', error_description: rec.problems.join('; ')});
        return send(res, rec, 200, {'cache-control': 'no-store'}, issueToken());
    }
    if ((m = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(url.pathname))) {
        rec.kind = 'fcm';
        try { rec.body = JSON.parse(utf8); } catch { rec.body = utf8; rec.problems.push('FCM: body is not JSON'); }
        rec.token = checkFcm(req, rec, decodeURIComponent(m[1]), raw) ?? null;
        const a = rec.token !== null ? takeScript(rec.token) : null;
        if (a) return answerScripted(res, rec, a);
        if (!rec.auth_ok)
            return send(res, rec, 401, {'www-authenticate': 'Bearer realm="https://accounts.google.com/"'},
                        googleError(401, 'UNAUTHENTICATED',
                                    'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.'));
        if (rec.problems.length)
            return send(res, rec, 400, {}, {...googleError(400, 'INVALID_ARGUMENT', rec.problems.join('; ')),
                                           fake_problems: rec.problems});
        return send(res, rec, 200, {}, {name: `projects/${opt.project}/messages/0:${Date.now()}%${crypto.randomBytes(8).toString('hex')}`});
    }
    rec.problems.push(`unknown path ${req.method} ${req.url}`);
    return send(res, rec, 404, {}, {reason: 'BadPath'});
}

// ---------------------------------------------------------------- server

const server = http2.createSecureServer({
    cert: fs.readFileSync(opt.cert),
    key: fs.readFileSync(opt.key),
    allowHTTP1: true,
});
server.on('secureConnection', sock => { sock.pushFakeConn = ++connections; });
server.on('request', (req, res) => {
    const chunks = [];
    req.on('data', c => chunks.push(c));
    req.on('end', () => {
        try {
            handle(req, res, Buffer.concat(chunks));
        } catch (e) {
            console.error('push_fake: handler error', e);
            try { send(res, null, 500, {}, {error: String(e)}); } catch { /* gone */ }
        }
    });
    req.on('error', () => {});
});
server.on('sessionError', () => {});
server.on('tlsClientError', () => {});

const sessions = new Set();
server.on('session', s => { sessions.add(s); s.on('close', () => sessions.delete(s)); });

function stop() {
    server.close();
    for (const s of sessions) s.destroy();
    process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

server.listen(0, '127.0.0.1', () => {
    port = server.address().port;
    process.stdout.write(`push_fake: listening on 127.0.0.1:${port}\n`);
});
