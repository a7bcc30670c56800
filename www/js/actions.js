// actions.js — what the user does: each function calls the API and applies
// the answer to the store at once (the inbox brings the same change to the
// other tabs and devices a moment later; applying it twice is harmless).
//
// Sending: the message shows at once as pending; the POST is retried with the
// same client_msg_id after network errors and 5xx answers (exponential
// backoff, at once when the browser comes back online), so the server stores
// it exactly once. Sends of one thread go out in order, one at a time.

import { api, backoffMs, describeError, isTransient, newId, sleep } from './api.js';
import { deviceName, saveSession } from './session.js';
import {
  applyDeleted, applyHidden, applyMessage, applyReaction, changed, chat, knownMessage,
  loadContacts, mergeThread, removeThread, setRead, snippetOf, store, updateMessage,
} from './store.js';

let peers = () => {};

/** fn(msg) tells the other tabs of this browser about a change. */
export function setPeerPost(fn) {
  peers = fn;
}

// ---- accounts and sessions ----

// The device key of each username that logged in from this browser: shown
// at the next login, it lets this browser in at once while strangers' wrong
// passwords delay new devices (docs/API.md, "Login backoff and device keys").
function deviceKeyName(username) {
  return `chatd.device_key.${username.toLowerCase()}`;
}

export async function login(username, password) {
  const body = { username, password, device_name: deviceName() };
  const key = localStorage.getItem(deviceKeyName(username));
  if (key) body.device_key = key;
  const r = await api('POST', '/sessions', body);
  if (r.device_key) localStorage.setItem(deviceKeyName(username), r.device_key);
  saveSession(r);
  return r;
}

export async function register(username, password, displayName) {
  const body = { username, password };
  if (displayName) body.display_name = displayName;
  await api('POST', '/users', body);
  return login(username, password);
}

export async function logout() {
  try {
    await api('DELETE', '/sessions/current', undefined, { timeoutMs: 5000 });
  } catch {
    // Gone already, or unreachable: this browser forgets the token either way.
  }
}

export async function listSessions() {
  return (await api('GET', '/sessions')).sessions;
}

export async function revokeSession(id) {
  await api('DELETE', `/sessions/${id}`);
}

// ---- messages ----

let onlineWaiters = [];
window.addEventListener('online', () => {
  const w = onlineWaiters;
  onlineWaiters = [];
  for (const ctl of w) ctl.abort();
});

function waitRetry(ms) {
  const ctl = new AbortController();
  onlineWaiters.push(ctl);
  return sleep(ms, ctl.signal);
}

const MAX_BODY_BYTES = 65536;

/**
 * Sends body (with the files of uploads, attachments.js Upload objects)
 * into a thread; the message shows at once and goes when every upload is
 * done. Returns its client_msg_id.
 */
export function sendMessage(threadId, body, uploads = [], { replyTo = null } = {}) {
  if (new TextEncoder().encode(body).length > MAX_BODY_BYTES) {
    throw new Error('A message is at most 65,536 bytes.');
  }
  const c = chat(threadId);
  // The others stop showing "typing" when the message arrives; typing anew
  // must tell them again at once.
  typingSent.delete(threadId);
  const p = {
    client_msg_id: newId(), body, created_at: Date.now(), state: 'sending', error: null,
    uploads, attachments: uploads.map((u) => ({ filename: u.name, size: u.size, content_type: u.file.type })),
    reply_to: replyTo ? {
      seq: replyTo.seq, sender_id: replyTo.sender_id, snippet: snippetOf(replyTo.body), deleted: false,
    } : null,
  };
  c.pending.set(p.client_msg_id, p);
  changed(`thread:${threadId}`);
  queueSend(threadId, p);
  return p.client_msg_id;
}

/** Tries a failed message again, with its original client_msg_id. */
export function retrySend(threadId, clientMsgId) {
  const p = chat(threadId).pending.get(clientMsgId);
  if (!p || p.state !== 'failed') return;
  p.state = 'sending';
  p.error = null;
  changed(`thread:${threadId}`);
  queueSend(threadId, p);
}

/** Drops a failed message. */
export function discardSend(threadId, clientMsgId) {
  chat(threadId).pending.delete(clientMsgId);
  changed(`thread:${threadId}`);
}

function queueSend(threadId, p) {
  const c = chat(threadId);
  c.sendChain = c.sendChain.then(() => deliver(threadId, p));
}

async function deliver(threadId, p) {
  const me = store.me;
  // The typing notice goes out first, so that no one sees "typing" after the
  // message arrives.
  await typingPosts.get(threadId);
  let ids = [];
  if (p.uploads.length) {
    try {
      ids = await Promise.all(p.uploads.map((u) => u.done));
    } catch (e) {
      p.state = 'failed';
      p.error = `a file did not upload (${e.message})`;
      changed(`thread:${threadId}`);
      return;
    }
  }
  for (let attempt = 0; ; attempt++) {
    if (store.me !== me || !chat(threadId).pending.has(p.client_msg_id)) return;
    try {
      const req = { client_msg_id: p.client_msg_id, body: p.body };
      if (ids.length) req.attachments = ids;
      if (p.reply_to) req.reply_to_seq = p.reply_to.seq;
      const r = await api('POST', `/threads/${threadId}/messages`, req, { timeoutMs: 20000 });
      if (store.me === me) applyMessage(r.message);
      return;
    } catch (e) {
      if (store.me !== me) return;
      // 500 means nothing was committed, but a bug would fail for ever.
      if (isTransient(e) && !(e.status === 500 && attempt >= 4)) {
        p.state = 'waiting';
        changed(`thread:${threadId}`);
        await waitRetry(e.retryAfterS ? e.retryAfterS * 1000 : backoffMs(attempt, 1000, 30000));
        p.state = 'sending';
        changed(`thread:${threadId}`);
        continue;
      }
      p.state = 'failed';
      p.error = describeError(e);
      changed(`thread:${threadId}`);
      return;
    }
  }
}

// ---- message actions (API.md "Message actions") ----

/** Replaces the body of the caller's message; resolves to the message. */
export async function editMessage(threadId, seq, body) {
  if (new TextEncoder().encode(body).length > MAX_BODY_BYTES) {
    throw new Error('A message is at most 65,536 bytes.');
  }
  const r = await api('PATCH', `/threads/${threadId}/messages/${seq}`, { body });
  updateMessage(r.message);
  return r.message;
}

/** Deletes a message for everyone. */
export async function deleteMessage(threadId, seq) {
  await api('DELETE', `/threads/${threadId}/messages/${seq}`);
  const m = knownMessage(threadId, seq);
  if (m && !m.deleted_at) applyDeleted(threadId, seq, Date.now(), (m.version || 0) + 1);
}

/** Hides a message on the caller's devices (or shows it again). */
export async function hideMessage(threadId, seq, hidden) {
  await api(hidden ? 'PUT' : 'DELETE', `/threads/${threadId}/messages/${seq}/hidden`);
  await applyHidden(threadId, seq, hidden);
}

/** Adds (on) or takes back the caller's reaction emoji. */
export async function react(threadId, seq, emoji, on) {
  await api(on ? 'PUT' : 'DELETE',
    `/threads/${threadId}/messages/${seq}/reactions/${encodeURIComponent(emoji)}`);
  const m = knownMessage(threadId, seq);
  const mine = m?.reactions.some((r) => r.emoji === emoji && r.user_ids.includes(store.me.id));
  if (m && mine !== on) {
    applyReaction(threadId, seq, store.me.id, emoji, on ? 'add' : 'remove', (m.version || 0) + 1);
  }
}

/** Forwards message (fromThread, seq) into thread toThread. */
export async function forwardMessage(toThread, fromThread, seq) {
  const r = await api('POST', `/threads/${toThread}/messages`, {
    client_msg_id: newId(), forward_of: { thread_id: fromThread, seq },
  });
  applyMessage(r.message);
  return r.message;
}

/** The server's limits (GET /v1/config), fetched once. */
let configLoad = null;
export function serverConfig() {
  if (!configLoad) {
    configLoad = api('GET', '/config').catch((e) => {
      configLoad = null;
      throw e;
    });
  }
  return configLoad;
}

const readPosts = new Map(); // thread id → {seq, busy}

/** Marks a thread read up to seq (the newest message shown). */
export function markRead(threadId, seq) {
  if (!setRead(threadId, seq)) return;
  let r = readPosts.get(threadId);
  if (!r) {
    r = { seq: 0, busy: false };
    readPosts.set(threadId, r);
  }
  r.seq = Math.max(r.seq, seq);
  if (r.busy) return;
  r.busy = true;
  (async () => {
    try {
      let sent = 0;
      while (r.seq > sent) {
        sent = r.seq;
        await api('POST', `/threads/${threadId}/read`, { seq: sent });
      }
    } catch {
      // The next message or the next visit marks it again.
    } finally {
      r.busy = false;
    }
  })();
}

const typingSent = new Map(); // thread id → when the last notice went out (ms)
const typingPosts = new Map(); // thread id → the notice in flight

/** Tells the other members the caller is typing (at most every 3 s). */
export function sendTyping(threadId) {
  const now = Date.now();
  if (now - (typingSent.get(threadId) || 0) < 3000) return;
  typingSent.set(threadId, now);
  const post = api('POST', `/threads/${threadId}/typing`, undefined, { timeoutMs: 3000 })
    .catch(() => {})
    .finally(() => { if (typingPosts.get(threadId) === post) typingPosts.delete(threadId); });
  typingPosts.set(threadId, post);
}

// ---- threads ----

/** The direct thread with a user, created when missing; resolves to its id. */
export async function openDirect(userId) {
  const r = await api('POST', '/threads', { member_ids: [userId] });
  mergeThread(r.thread);
  return r.thread.id;
}

export async function createGroup(title, memberIds) {
  const r = await api('POST', '/threads', { member_ids: memberIds, title });
  mergeThread(r.thread);
  return r.thread.id;
}

/** A thread's history settings: {retention_days?, disappearing_s?}. */
export async function setThreadHistory(threadId, settings) {
  const r = await api('PATCH', `/threads/${threadId}`, settings);
  mergeThread(r.thread);
  return r.thread;
}

/** The caller's data as a JSON file the browser downloads. */
export async function exportAccount() {
  const data = await api('GET', '/me/export', undefined, { timeoutMs: 120000 });
  const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 1)], { type: 'application/json' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = `chat-export-${new Date().toISOString().slice(0, 10)}.json`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

/** Deletes the caller's account for good (the password again). */
export async function deleteAccount(password) {
  await api('DELETE', '/me', { password });
}

export async function renameGroup(threadId, title) {
  const r = await api('PATCH', `/threads/${threadId}`, { title });
  mergeThread(r.thread);
}

/** The caller's own settings: {is_muted?, notify?, nickname?} (nickname null clears it). */
export async function setThreadSettings(threadId, settings) {
  const r = await api('PATCH', `/threads/${threadId}/settings`, settings);
  mergeThread(r.thread);
}

export async function addMembers(threadId, userIds) {
  const r = await api('POST', `/threads/${threadId}/members`, { user_ids: userIds });
  mergeThread(r.thread);
}

/** Accepts a message request: a plain membership from now on. */
export async function acceptRequest(threadId) {
  const r = await api('POST', `/threads/${threadId}/accept`);
  mergeThread(r.thread);
}

/** Declines a message request: leaves the group, and blocks its adder when block. */
export async function declineRequest(threadId, block) {
  await api('POST', `/threads/${threadId}/decline`, { block });
  removeThread(threadId);
}

/** Removes a member; the caller's own id leaves the group. */
export async function removeMember(threadId, userId) {
  await api('DELETE', `/threads/${threadId}/members/${userId}`);
  if (userId === store.me.id) {
    removeThread(threadId);
  } else {
    const r = await api('GET', `/threads/${threadId}`);
    mergeThread(r.thread);
  }
}

// ---- contacts ----

export async function searchUsers(prefix) {
  const q = encodeURIComponent(prefix);
  return (await api('GET', `/users?q=${q}&limit=20`)).users;
}

/** Adds a contact, or changes its nickname (null clears it). */
export async function putContact(userId, nickname) {
  const body = nickname === undefined ? {} : { nickname };
  const r = await api('PUT', `/contacts/${userId}`, body);
  store.contacts.set(userId, r.contact);
  store.users.set(userId, r.contact.user);
  if (r.contact.presence) store.presence.set(userId, r.contact.presence);
  changed('contacts', 'users', 'presence', 'threads');
  peers({ type: 'contacts' });
}

export async function removeContact(userId) {
  await api('DELETE', `/contacts/${userId}`);
  store.contacts.delete(userId);
  changed('contacts', 'users', 'threads');
  peers({ type: 'contacts' });
}

/** Another tab changed the contacts: load them again. */
export function contactsChangedElsewhere() {
  loadContacts().catch(() => {});
}
