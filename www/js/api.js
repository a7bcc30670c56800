// api.js — the one place that talks HTTP to chatd (docs/API.md, /v1).
//
// api(method, path, body?, options?) sends JSON with the bearer token and
// resolves to the parsed answer (null for 204). Every failure rejects with an
// ApiError: `status` is the HTTP status, or 0 when the request never got an
// answer (network down, server gone, timeout); `code` is the problem+json
// code the API documents (`unauthorized`, `cursor_expired`, …) or
// `network` / `http_<status>` when the answer carried none (a proxy's page).
//
// A 401 `unauthorized` on an authenticated call means the session is dead
// (logged out elsewhere, expired): the handler set with onSessionLost runs
// once, so the app can return to the login screen.

const BASE = '/v1';

export class ApiError extends Error {
  constructor(status, code, detail, retryAfterS = null) {
    super(detail || code);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfterS = retryAfterS;
  }
}

let token = null;
let sessionLost = () => {};

/** Sets (or clears, with null) the bearer token used by every call. */
export function setToken(t) {
  token = t;
}

/** The bearer token in use, or null (for the upload requests of attachments.js). */
export function getToken() {
  return token;
}

/** fn() runs when an authenticated call answers 401 unauthorized. */
export function onSessionLost(fn) {
  sessionLost = fn;
}

/**
 * One API call. options.signal aborts it (rejects with an AbortError, not an
 * ApiError); options.timeoutMs (default 30 s) gives up after that long
 * (ApiError status 0).
 */
export async function api(method, path, body, options = {}) {
  const headers = { Accept: 'application/json' };
  const sentToken = token;
  if (sentToken) headers.Authorization = `Bearer ${sentToken}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';

  const ctl = new AbortController();
  const outer = options.signal;
  const onAbort = () => ctl.abort(outer.reason);
  if (outer) {
    if (outer.aborted) ctl.abort(outer.reason);
    else outer.addEventListener('abort', onAbort, { once: true });
  }
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; ctl.abort(); }, options.timeoutMs || 30000);

  let res;
  let text;
  try {
    res = await fetch(BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: ctl.signal,
      cache: 'no-store',
      credentials: 'omit',
      referrerPolicy: 'no-referrer',
    });
    text = await res.text();
  } catch (e) {
    if (outer?.aborted && !timedOut) throw e;
    throw new ApiError(0, 'network', timedOut ? 'the server did not answer in time' : 'cannot reach the server');
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', onAbort);
  }

  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const retry = Number.parseInt(res.headers.get('Retry-After') || '', 10);
    const err = new ApiError(
      res.status,
      (data && typeof data.code === 'string') ? data.code : `http_${res.status}`,
      (data && (data.detail || data.title)) || res.statusText || `HTTP ${res.status}`,
      Number.isFinite(retry) ? retry : null,
    );
    if (res.status === 401 && err.code === 'unauthorized' && sentToken && sentToken === token) {
      sessionLost();
    }
    throw err;
  }
  if (res.status !== 204 && data === null) {
    throw new ApiError(0, 'network', 'the server sent an unreadable answer');
  }
  return data;
}

/**
 * True when trying the same request again later may succeed: no answer at
 * all, the server or a proxy in trouble, or a rate limit.
 */
export function isTransient(err) {
  return err instanceof ApiError &&
    (err.status === 0 || err.status === 429 || err.status === 500 ||
     err.status === 502 || err.status === 503 || err.status === 504);
}

/** A readable sentence for an error, for the UI. */
export function describeError(err) {
  if (!(err instanceof ApiError)) return 'Something went wrong.';
  const known = {
    network: 'Cannot reach the server. Check your connection.',
    invalid_credentials: 'Wrong username or password.',
    username_taken: 'That username is taken.',
    invalid_username: 'A username is 3 to 32 letters, digits, “_”, “.” or “-”.',
    invalid_password: 'A password is 8 to 256 characters.',
    rate_limited: 'Too many attempts. Try again later.',
    not_admin: 'Only group admins can remove other members.',
    blocked: 'You cannot message this person.',
    too_many_members: 'A group has at most 1,024 members.',
    message_too_large: 'That message is too long.',
    not_found: 'Not found.',
    unavailable: 'The server is busy. Try again in a moment.',
  };
  return known[err.code] || err.message || 'Something went wrong.';
}

/** Waits ms milliseconds; resolves early when signal aborts. */
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Exponential backoff with full jitter: attempt 0, 1, 2 … → ms. */
export function backoffMs(attempt, baseMs = 500, maxMs = 30000) {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 16));
  return Math.round(cap / 2 + Math.random() * cap / 2);
}

/** A fresh client_msg_id (a UUID; crypto.randomUUID needs a secure context). */
export function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
