// session.js — the login of this browser: {token, session_id, user} in
// localStorage, shared by every tab of the origin (one browser = one device =
// one API session). A tab learns of a login or logout in another tab through
// the `storage` event and follows it.

const KEY = 'chatd.session';

/** The stored session, or null. */
export function loadSession() {
  try {
    const s = JSON.parse(localStorage.getItem(KEY) || 'null');
    return s && typeof s.token === 'string' && s.user ? s : null;
  } catch {
    return null;
  }
}

/** Stores the answer of POST /v1/sessions. */
export function saveSession(s) {
  localStorage.setItem(KEY, JSON.stringify({ token: s.token, session_id: s.session_id, user: s.user }));
}

export function clearSession() {
  localStorage.removeItem(KEY);
}

/** fn(session|null) runs when another tab logs in or out. */
export function onSessionChange(fn) {
  window.addEventListener('storage', (e) => {
    if (e.key === KEY || e.key === null) fn(loadSession());
  });
}

/** A name for this device in the sessions list, from the user agent. */
export function deviceName() {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? 'Edge'
    : /Firefox\//.test(ua) ? 'Firefox'
    : /Chrom(e|ium)\//.test(ua) ? (/Chromium\//.test(ua) ? 'Chromium' : 'Chrome')
    : /Safari\//.test(ua) ? 'Safari' : 'Browser';
  const os = /Android/.test(ua) ? 'Android'
    : /iPhone|iPad/.test(ua) ? 'iOS'
    : /Windows/.test(ua) ? 'Windows'
    : /Mac OS X/.test(ua) ? 'macOS'
    : /CrOS/.test(ua) ? 'ChromeOS'
    : /Linux/.test(ua) ? 'Linux' : '';
  return os ? `${browser} on ${os}` : browser;
}
