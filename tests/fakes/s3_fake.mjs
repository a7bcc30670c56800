// s3_fake.mjs — a local stand-in for an S3-compatible object store that
// checks every request as strictly as S3 does (tests/fakes/README.md).
//
//   node tests/fakes/s3_fake.mjs   → prints "s3-fake: listening on http://127.0.0.1:PORT"
//
// One bucket (S3_FAKE_BUCKET, default "chatd") and one key pair
// (S3_FAKE_ACCESS / S3_FAKE_SECRET, region S3_FAKE_REGION). Every request
// must carry AWS Signature Version 4: an Authorization header
// (AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…) that this
// fake recomputes from its own copy of the secret — canonical URI,
// canonical query, the signed headers (host and x-amz-date at least), the
// payload hash in x-amz-content-sha256, which for a PUT must be the SHA-256
// of the body actually received — with x-amz-date within 15 minutes; or
// presigned query parameters (X-Amz-*) not yet expired. Anything else is
// 403 with S3's XML error (SignatureDoesNotMatch, AccessDenied,
// RequestTimeTooSkewed, XAmzContentSHA256Mismatch). PUT, GET (one Range),
// HEAD and DELETE on /BUCKET/KEY; objects live in memory.
// GET /__objects (unsigned, for tests) lists the keys and sizes; GET
// /__log the requests seen, with their verdicts.

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

const BUCKET = process.env.S3_FAKE_BUCKET || 'chatd';
const ACCESS = process.env.S3_FAKE_ACCESS || 'FAKEACCESSKEY';
const SECRET = process.env.S3_FAKE_SECRET || 'fake/secret/key/0123456789';
const REGION = process.env.S3_FAKE_REGION || 'us-east-1';

const objects = new Map(); // key → {body: Buffer, type}
const log = [];

const sha256 = (b) => createHash('sha256').update(b).digest('hex');
const hmac = (k, s) => createHmac('sha256', k).update(s).digest();

// RFC 3986 encoding as SigV4 wants it; '/' kept in paths.
function enc(s, keepSlash) {
  return [...Buffer.from(s, 'utf8')].map((b) => {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-_.~]/.test(c) || (keepSlash && c === '/')) return c;
    return `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }).join('');
}

function xmlError(res, status, code, message) {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  res.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
  return false;
}

function amzTime(s) {
  const m = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/.exec(s || '');
  return m ? Date.UTC(+m[1], m[2] - 1, +m[3], +m[4], +m[5], +m[6]) : NaN;
}

function signature(date8, stringToSign) {
  const k = hmac(hmac(hmac(hmac(`AWS4${SECRET}`, date8), REGION), 's3'), 'aws4_request');
  return hmac(k, stringToSign).toString('hex');
}

function sameHex(a, b) {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

// The request's path as sent (not decoded), and its query pairs decoded.
function parse(req) {
  const [rawPath, rawQuery = ''] = req.url.split('?');
  const query = rawQuery ? rawQuery.split('&').map((kv) => {
    const i = kv.indexOf('=');
    const k = i < 0 ? kv : kv.slice(0, i);
    const v = i < 0 ? '' : kv.slice(i + 1);
    return [decodeURIComponent(k), decodeURIComponent(v.replace(/\+/g, '%20'))];
  }) : [];
  return { rawPath, query };
}

function canonicalQuery(query, skip) {
  return query.filter(([k]) => k !== skip)
    .map(([k, v]) => [enc(k, false), enc(v, false)])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`).join('&');
}

// Checks the request's signature; answers the error itself and returns
// false when it does not hold.
function verify(req, res, body) {
  const { rawPath, query } = parse(req);
  const canonicalUri = enc(decodeURIComponent(rawPath), true);
  const q = Object.fromEntries(query);
  if (q['X-Amz-Signature']) {
    // Presigned: query authentication.
    if (q['X-Amz-Algorithm'] !== 'AWS4-HMAC-SHA256') return xmlError(res, 400, 'AuthorizationQueryParametersError', 'algorithm');
    const [access, date8, region, service, term] = (q['X-Amz-Credential'] || '').split('/');
    if (access !== ACCESS) return xmlError(res, 403, 'InvalidAccessKeyId', 'unknown access key');
    if (region !== REGION || service !== 's3' || term !== 'aws4_request') return xmlError(res, 403, 'SignatureDoesNotMatch', 'scope');
    const t = amzTime(q['X-Amz-Date']);
    if (!(t <= Date.now() + 15 * 60000) || Date.now() > t + Number(q['X-Amz-Expires']) * 1000) {
      return xmlError(res, 403, 'AccessDenied', 'Request has expired');
    }
    const signed = (q['X-Amz-SignedHeaders'] || '').split(';');
    const headers = signed.map((h) => `${h}:${String(req.headers[h] ?? '').trim()}\n`).join('');
    const creq = [req.method, canonicalUri, canonicalQuery(query, 'X-Amz-Signature'), headers,
      signed.join(';'), 'UNSIGNED-PAYLOAD'].join('\n');
    const sts = ['AWS4-HMAC-SHA256', q['X-Amz-Date'], `${date8}/${REGION}/s3/aws4_request`, sha256(creq)].join('\n');
    if (!sameHex(signature(date8, sts), q['X-Amz-Signature'])) return xmlError(res, 403, 'SignatureDoesNotMatch', 'presigned');
    return true;
  }
  const auth = req.headers.authorization || '';
  const m = /^AWS4-HMAC-SHA256 Credential=([^,]+),\s*SignedHeaders=([^,]+),\s*Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return xmlError(res, 403, 'AccessDenied', 'no AWS Signature Version 4 authorization');
  const [access, date8, region, service, term] = m[1].split('/');
  if (access !== ACCESS) return xmlError(res, 403, 'InvalidAccessKeyId', 'unknown access key');
  if (region !== REGION || service !== 's3' || term !== 'aws4_request') return xmlError(res, 403, 'SignatureDoesNotMatch', 'scope');
  const amzDate = req.headers['x-amz-date'];
  const t = amzTime(amzDate);
  if (!(Math.abs(Date.now() - t) <= 15 * 60000)) return xmlError(res, 403, 'RequestTimeTooSkewed', 'x-amz-date');
  if (amzDate.slice(0, 8) !== date8) return xmlError(res, 403, 'SignatureDoesNotMatch', 'date');
  const signed = m[2].split(';');
  if (!signed.includes('host') || !signed.includes('x-amz-date') || !signed.includes('x-amz-content-sha256')) {
    return xmlError(res, 403, 'SignatureDoesNotMatch', 'host, x-amz-date and x-amz-content-sha256 must be signed');
  }
  const payload = req.headers['x-amz-content-sha256'];
  if (!payload) return xmlError(res, 400, 'InvalidRequest', 'x-amz-content-sha256 missing');
  if (req.method === 'PUT' && payload !== sha256(body)) {
    return xmlError(res, 400, 'XAmzContentSHA256Mismatch', 'the body is not what x-amz-content-sha256 says');
  }
  if (req.method !== 'PUT' && payload !== sha256(body) && payload !== 'UNSIGNED-PAYLOAD') {
    return xmlError(res, 400, 'XAmzContentSHA256Mismatch', 'payload hash');
  }
  const headers = signed.map((h) => `${h}:${String(req.headers[h] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const creq = [req.method, canonicalUri, canonicalQuery(query), headers, signed.join(';'), payload].join('\n');
  const sts = ['AWS4-HMAC-SHA256', amzDate, `${date8}/${REGION}/s3/aws4_request`, sha256(creq)].join('\n');
  if (!sameHex(signature(date8, sts), m[3])) return xmlError(res, 403, 'SignatureDoesNotMatch', 'header');
  return true;
}

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const path = req.url.split('?')[0];
    if (req.method === 'GET' && path === '/__objects') {
      const list = Object.fromEntries([...objects].map(([k, o]) => [k, o.body.length]));
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(list));
      return;
    }
    if (req.method === 'GET' && path === '/__log') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(log));
      return;
    }
    const entry = { method: req.method, path, ok: false };
    log.push(entry);
    if (log.length > 1000) log.shift();
    if (!verify(req, res, body)) return;
    entry.ok = true;
    const prefix = `/${BUCKET}/`;
    if (!path.startsWith(prefix)) return xmlError(res, 404, 'NoSuchBucket', 'no such bucket');
    const key = decodeURIComponent(path.slice(prefix.length));
    const obj = objects.get(key);
    switch (req.method) {
      case 'PUT':
        objects.set(key, { body, type: req.headers['content-type'] || 'application/octet-stream' });
        res.writeHead(200, { ETag: `"${createHash('md5').update(body).digest('hex')}"`, 'Content-Length': 0 });
        res.end();
        return;
      case 'GET':
      case 'HEAD': {
        if (!obj) return xmlError(res, 404, 'NoSuchKey', 'The specified key does not exist.');
        let data = obj.body;
        let status = 200;
        const headers = { 'Content-Type': obj.type, 'Accept-Ranges': 'bytes' };
        const r = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range || '');
        if (r) {
          const a = Number(r[1]);
          const b = r[2] ? Math.min(Number(r[2]), data.length - 1) : data.length - 1;
          if (a >= data.length) return xmlError(res, 416, 'InvalidRange', 'range');
          headers['Content-Range'] = `bytes ${a}-${b}/${data.length}`;
          data = data.subarray(a, b + 1);
          status = 206;
        }
        headers['Content-Length'] = data.length;
        res.writeHead(status, headers);
        res.end(req.method === 'HEAD' ? undefined : data);
        return;
      }
      case 'DELETE':
        objects.delete(key);
        res.writeHead(204);
        res.end();
        return;
      default:
        xmlError(res, 405, 'MethodNotAllowed', req.method);
    }
  });
});

server.listen(0, '127.0.0.1', () => {
  console.log(`s3-fake: listening on http://127.0.0.1:${server.address().port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
