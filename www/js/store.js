// store.js — the app's state, how it is loaded over REST, and how inbox
// events change it. Views read `store` and re-render when told; only this
// module and actions.js write to it.
//
// Applying an event twice changes nothing (sequence numbers and read
// positions only move forward, a thread event carries the whole thread as it
// is now, messages are keyed by seq), so a tab that takes over the inbox
// poll, or a REST reload racing the stream, may replay events safely.
//
// Change notification: every write calls changed(key); subscribers get the
// set of keys once per turn of the event loop. Keys: 'threads' (the list),
// `thread:<id>` (one thread's messages, receipts, typing or settings),
// 'contacts', 'presence', 'users', 'conn', 'clock'.

import { api } from './api.js';

export const store = {
  me: null,
  users: new Map(), // id → user
  contacts: new Map(), // user id → {user, nickname, presence}
  presence: new Map(), // user id → {state, last_seen_at}
  threads: new Map(), // id → thread, plus _read: the caller's read position
  threadsNext: null, // cursor of the next page of threads, null when none
  chats: new Map(), // thread id → chat (see chat())
  receipts: new Map(), // thread id → Map(user id → {delivered_seq, read_seq})
  typing: new Map(), // thread id → Map(user id → until ms)
  connection: { status: 'connecting', info: {} },
};

const listeners = new Set();
let pendingKeys = new Set();
let flushQueued = false;
const messageHooks = new Set();

/** fn(keys: Set) after changes; returns an unsubscribe function. */
export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function changed(...keys) {
  for (const k of keys) pendingKeys.add(k);
  if (flushQueued) return;
  flushQueued = true;
  setTimeout(() => {
    flushQueued = false;
    const keys2 = pendingKeys;
    pendingKeys = new Set();
    for (const fn of [...listeners]) {
      try {
        fn(keys2);
      } catch (e) {
        console.error(e);
      }
    }
  }, 0);
}

/** fn(message, thread) for every message from someone else that is new here. */
export function onIncomingMessage(fn) {
  messageHooks.add(fn);
}

/** Empties the state for a new login. */
export function resetStore(me) {
  store.me = me;
  store.users = new Map(me ? [[me.id, me]] : []);
  store.contacts = new Map();
  store.presence = new Map();
  store.threads = new Map();
  store.threadsNext = null;
  store.chats = new Map();
  store.receipts = new Map();
  store.typing = new Map();
  store.connection = { status: 'connecting', info: {} };
  changed('threads', 'contacts', 'presence', 'users', 'conn');
}

// ---- loading over REST ----

/** The first page of threads, the contacts, and presence. */
export async function loadAll() {
  const [th, co] = await Promise.all([
    api('GET', '/threads?limit=50'),
    api('GET', '/contacts'),
  ]);
  const fresh = new Map();
  for (const t of th.threads) fresh.set(t.id, t);
  // Threads not on the first page stay as they were; those gone are dropped.
  for (const [id, old] of store.threads) if (!fresh.has(id) && th.next !== null) fresh.set(id, old);
  store.threads = new Map();
  for (const t of fresh.values()) mergeThread(t);
  store.threadsNext = th.next;
  setContacts(co.contacts);
  const partners = [...store.threads.values()].flatMap((t) => t.member_ids);
  await refreshPresence(partners);
  changed('threads');
}

/** After a lost cursor: everything again; open chats reload their pages. */
export async function reloadAll() {
  for (const c of store.chats.values()) {
    c.loaded = false;
    c.messages = new Map();
    c.minSeq = Infinity;
    c.maxSeq = 0;
    c.hasOlder = false;
  }
  store.receipts = new Map();
  await loadAll();
  for (const id of store.threads.keys()) changed(`thread:${id}`);
}

export async function loadMoreThreads() {
  if (!store.threadsNext || store.loadingThreads) return;
  store.loadingThreads = true;
  try {
    const r = await api('GET', `/threads?limit=50&before=${encodeURIComponent(store.threadsNext)}`);
    for (const t of r.threads) mergeThread(t);
    store.threadsNext = r.next;
    changed('threads');
  } finally {
    store.loadingThreads = false;
  }
}

function setContacts(list) {
  store.contacts = new Map();
  for (const c of list) {
    store.contacts.set(c.user.id, c);
    store.users.set(c.user.id, c.user);
    if (c.presence) store.presence.set(c.user.id, c.presence);
  }
  changed('contacts', 'presence', 'users');
}

export async function loadContacts() {
  const r = await api('GET', '/contacts');
  setContacts(r.contacts);
}

/** Presence of the given users (those the API lets the caller see). */
async function refreshPresence(ids) {
  const uniq = [...new Set(ids)].filter((id) => id !== store.me.id);
  for (let i = 0; i < uniq.length; i += 200) {
    const r = await api('GET', `/presence?user_ids=${uniq.slice(i, i + 200).join(',')}`);
    for (const [id, p] of Object.entries(r.presence)) store.presence.set(Number(id), p);
  }
  if (uniq.length) changed('presence');
}

let presenceWanted = new Set();
let presenceTimer = null;

/** Presence of these users soon, in one request for all asked meanwhile. */
function presenceLater(ids) {
  for (const id of ids) if (!store.presence.has(id) && id !== store.me.id) presenceWanted.add(id);
  if (!presenceWanted.size || presenceTimer) return;
  presenceTimer = setTimeout(() => {
    const ids2 = [...presenceWanted];
    presenceWanted = new Set();
    presenceTimer = null;
    refreshPresence(ids2).catch(() => {});
  }, 200);
}

const userFetches = new Map();

/** Fetches the users not known yet; the names appear when they arrive. */
function ensureUsers(ids) {
  for (const id of ids) {
    if (store.users.has(id) || userFetches.has(id)) continue;
    const p = api('GET', `/users/${id}`)
      .then((r) => { store.users.set(id, r.user); changed('users'); })
      .catch(() => {})
      .finally(() => userFetches.delete(id));
    userFetches.set(id, p);
  }
}

const threadFetches = new Map();

/** GET one thread (a message arrived for a thread not loaded yet). */
export function fetchThread(id) {
  if (threadFetches.has(id)) return threadFetches.get(id);
  const p = api('GET', `/threads/${id}`)
    .then((r) => mergeThread(r.thread))
    .catch((e) => { if (e.status === 404) removeThread(id); })
    .finally(() => threadFetches.delete(id));
  threadFetches.set(id, p);
  return p;
}

// ---- threads ----

/** Adds or updates a thread from the API; positions only move forward. */
export function mergeThread(t) {
  if (!store.me) return;
  if (!t.member_ids.includes(store.me.id)) {
    removeThread(t.id);
    return;
  }
  const old = store.threads.get(t.id);
  const read = t.last_seq - t.unread_count;
  const merged = { ...t, _read: read };
  if (old) {
    merged.last_seq = Math.max(old.last_seq, t.last_seq);
    merged._read = Math.max(old._read, read);
    if (old.last_message && (!t.last_message || old.last_message.seq > t.last_message.seq)) {
      merged.last_message = old.last_message;
    }
    merged.updated_at = Math.max(old.updated_at, t.updated_at);
  }
  merged.unread_count = Math.max(0, merged.last_seq - merged._read);
  // `request` (a stranger's group add) comes with GET views only, not with
  // thread events: keep what is known, or ask for a thread seen first here.
  if (!('request' in t)) merged.request = old ? old.request : null;
  store.threads.set(t.id, merged);
  if (!old && !('request' in t) && t.kind === 'group') fetchThread(t.id);
  ensureUsers(t.member_ids);
  if (!old) presenceLater(t.member_ids);
  changed('threads', `thread:${t.id}`);
}

export function removeThread(id) {
  if (!store.threads.has(id)) return;
  store.threads.delete(id);
  store.chats.delete(id);
  store.receipts.delete(id);
  changed('threads', `thread:${id}`);
}

/** Threads, most recent activity first. */
export function sortedThreads() {
  const key = (t) => Math.max(t.updated_at, t.last_message ? t.last_message.created_at : 0);
  return [...store.threads.values()].sort((a, b) => key(b) - key(a) || b.id - a.id);
}

// ---- chats (loaded history) ----

/** The chat state of a thread, created on first use. */
export function chat(threadId) {
  let c = store.chats.get(threadId);
  if (!c) {
    c = {
      messages: new Map(), // seq → message
      minSeq: Infinity,
      maxSeq: 0,
      hasOlder: false,
      loaded: false,
      loading: null,
      loadingOlder: false,
      pending: new Map(), // client_msg_id → {client_msg_id, body, created_at, state, error}
      sendChain: Promise.resolve(),
    };
    store.chats.set(threadId, c);
  }
  return c;
}

// A message's copies carry a version (0 when sent, +1 on every edit,
// delete or reaction change): keep the newest. A hidden one ({seq, hidden})
// replaces whatever was there.
function newer(old, m) {
  return !old || m.hidden || old.hidden || (m.version || 0) >= (old.version || 0);
}

function addMessages(threadId, list) {
  const c = chat(threadId);
  for (const m of list) {
    if (newer(c.messages.get(m.seq), m)) c.messages.set(m.seq, m);
    if (m.seq < c.minSeq) c.minSeq = m.seq;
    if (m.seq > c.maxSeq) c.maxSeq = m.seq;
    if (m.sender_id === store.me.id) c.pending.delete(m.client_msg_id);
  }
  ensureUsers(list.filter((m) => !m.hidden).map((m) => m.sender_id));
  changed(`thread:${threadId}`);
}

/** Loads the newest page and the receipts of a thread (once). */
export function loadChat(threadId) {
  const c = chat(threadId);
  if (c.loaded) return Promise.resolve();
  if (c.loading) return c.loading;
  c.loading = (async () => {
    try {
      const [page, rec] = await Promise.all([
        api('GET', `/threads/${threadId}/messages?limit=50`),
        api('GET', `/threads/${threadId}/receipts`),
      ]);
      addMessages(threadId, page.messages);
      c.hasOlder = page.has_more;
      c.loaded = true;
      for (const r of rec.receipts) bumpReceipt(threadId, r.user_id, r.delivered_seq, r.read_seq);
      const t = store.threads.get(threadId);
      if (t && t.last_seq > c.maxSeq) await fillGap(threadId);
    } finally {
      c.loading = null;
      changed(`thread:${threadId}`);
    }
  })();
  return c.loading;
}

/** One page of older messages; resolves to how many arrived. */
export async function loadOlder(threadId) {
  const c = chat(threadId);
  if (!c.loaded || !c.hasOlder || c.loadingOlder) return 0;
  c.loadingOlder = true;
  changed(`thread:${threadId}`);
  try {
    const r = await api('GET', `/threads/${threadId}/messages?limit=50&before=${c.minSeq}`);
    c.hasOlder = r.has_more;
    addMessages(threadId, r.messages);
    return r.messages.length;
  } finally {
    c.loadingOlder = false;
    changed(`thread:${threadId}`);
  }
}

const gapFills = new Map();

/** Fetches every message after the newest one loaded. */
function fillGap(threadId) {
  if (gapFills.has(threadId)) return gapFills.get(threadId);
  const p = (async () => {
    const c = chat(threadId);
    for (let more = true; more && c.loaded;) {
      const r = await api('GET', `/threads/${threadId}/messages?limit=100&after=${c.maxSeq}`);
      addMessages(threadId, r.messages);
      more = r.has_more && r.messages.length > 0;
    }
  })().catch(() => {}).finally(() => gapFills.delete(threadId));
  gapFills.set(threadId, p);
  return p;
}

/** Messages of a loaded chat, ascending by seq. */
export function sortedMessages(threadId) {
  const c = store.chats.get(threadId);
  if (!c) return [];
  return [...c.messages.values()].sort((a, b) => a.seq - b.seq);
}

function bumpReceipt(threadId, userId, delivered, read) {
  let m = store.receipts.get(threadId);
  if (!m) {
    m = new Map();
    store.receipts.set(threadId, m);
  }
  const r = m.get(userId) || { delivered_seq: 0, read_seq: 0 };
  const next = {
    delivered_seq: Math.max(r.delivered_seq, delivered, read),
    read_seq: Math.max(r.read_seq, read),
  };
  if (next.delivered_seq !== r.delivered_seq || next.read_seq !== r.read_seq) {
    m.set(userId, next);
    changed(`thread:${threadId}`);
  }
}

/** Moves the caller's own read position forward (locally). */
export function setRead(threadId, seq) {
  const t = store.threads.get(threadId);
  if (!t || seq <= t._read) return false;
  t._read = seq;
  t.unread_count = Math.max(0, t.last_seq - t._read);
  bumpReceipt(threadId, store.me.id, seq, seq);
  changed('threads', `thread:${threadId}`);
  return true;
}

/** A snippet of a body as a reply shows it (the server's rule: 100 characters). */
export function snippetOf(body) {
  return [...(body || '')].slice(0, 100).join('');
}

/**
 * A newer state of a stored message (an edit, a delete, a reaction): the
 * chat's copy, the thread's last message, and the quotes of replies to it.
 */
export function updateMessage(m) {
  const c = store.chats.get(m.thread_id);
  if (c) {
    const old = c.messages.get(m.seq);
    if (old && !old.hidden && newer(old, m)) c.messages.set(m.seq, m);
    for (const [seq, x] of c.messages) {
      if (x.reply_to?.seq === m.seq) {
        c.messages.set(seq, {
          ...x,
          reply_to: { ...x.reply_to, snippet: m.deleted_at ? '' : snippetOf(m.body), deleted: Boolean(m.deleted_at) },
        });
      }
    }
  }
  const t = store.threads.get(m.thread_id);
  if (t?.last_message?.seq === m.seq && newer(t.last_message, m)) {
    t.last_message = m;
    changed('threads');
  }
  changed(`thread:${m.thread_id}`);
}

/** The stored copy of message (threadId, seq) that this tab knows, or null. */
export function knownMessage(threadId, seq) {
  const m = store.chats.get(threadId)?.messages.get(seq);
  if (m && !m.hidden) return m;
  const t = store.threads.get(threadId);
  return t?.last_message?.seq === seq ? t.last_message : null;
}

/** Message (threadId, seq) deleted for everyone: its tombstone. */
export function applyDeleted(threadId, seq, deletedAt, version) {
  const m = knownMessage(threadId, seq);
  if (!m || (m.version || 0) >= version) return;
  updateMessage({
    ...m, body: '', attachments: [], reactions: [], reply_to: null, forwarded: null,
    deleted_at: deletedAt, version,
  });
}

/** A reaction added or removed (an event or the caller's own change). */
export function applyReaction(threadId, seq, userId, emoji, op, version) {
  const m = knownMessage(threadId, seq);
  if (!m || (m.version || 0) >= version) return;
  const list = m.reactions.map((r) => ({ ...r, user_ids: [...r.user_ids] }));
  let r = list.find((x) => x.emoji === emoji);
  if (op === 'add') {
    if (!r) {
      r = { emoji, count: 0, user_ids: [] };
      list.push(r);
    }
    if (!r.user_ids.includes(userId)) {
      r.user_ids.push(userId);
      r.count++;
    }
  } else if (r && r.user_ids.includes(userId)) {
    r.user_ids = r.user_ids.filter((id) => id !== userId);
    r.count--;
  }
  updateMessage({ ...m, reactions: list.filter((x) => x.count > 0), version });
}

/** Message (threadId, seq) hidden on this user's devices, or shown again. */
export async function applyHidden(threadId, seq, hidden) {
  const c = store.chats.get(threadId);
  if (!c || !c.messages.has(seq)) return;
  if (hidden) {
    c.messages.set(seq, { thread_id: threadId, seq, hidden: true });
    changed(`thread:${threadId}`);
    return;
  }
  const r = await api('GET', `/threads/${threadId}/messages?after=${seq - 1}&limit=1`);
  if (r.messages[0]?.seq === seq) {
    c.messages.set(seq, r.messages[0]);
    changed(`thread:${threadId}`);
  }
}

/** A stored message, from the send answer or the stream. */
export function applyMessage(m, live = false) {
  const t = store.threads.get(m.thread_id);
  const isNew = !t || m.seq > t.last_seq;
  if (t) {
    t.last_seq = Math.max(t.last_seq, m.seq);
    if (!t.last_message || m.seq >= t.last_message.seq) t.last_message = m;
    t.updated_at = Math.max(t.updated_at, m.created_at);
    if (m.sender_id === store.me.id) t._read = Math.max(t._read, m.seq);
    t.unread_count = Math.max(0, t.last_seq - t._read);
    changed('threads');
  } else {
    fetchThread(m.thread_id);
  }
  // A message from X at seq S means X has received and read up to S.
  bumpReceipt(m.thread_id, m.sender_id, m.seq, m.seq);
  const typers = store.typing.get(m.thread_id);
  if (typers?.delete(m.sender_id)) changed(`thread:${m.thread_id}`);

  const c = store.chats.get(m.thread_id);
  if (c) {
    if (m.sender_id === store.me.id) c.pending.delete(m.client_msg_id);
    if (c.loaded) {
      if (m.seq <= c.maxSeq + 1) addMessages(m.thread_id, [m]);
      else fillGap(m.thread_id);
    }
    changed(`thread:${m.thread_id}`);
  }
  if (live && isNew && m.sender_id !== store.me.id) {
    for (const fn of messageHooks) fn(m, store.threads.get(m.thread_id) || null);
  }
}

// ---- the event stream ----

/** Applies a batch of inbox events, oldest first. */
export function applyEvents(events) {
  // A poll answer lists stored events first and ephemeral ones after them, so
  // a typing notice after a message of the same sender in the same answer
  // was sent before that message: it is over.
  const spoke = new Set();
  for (const ev of events) {
    try {
      if (ev.type === 'message') spoke.add(`${ev.message.thread_id}:${ev.message.sender_id}`);
      if (ev.type === 'typing' && spoke.has(`${ev.thread_id}:${ev.user_id}`)) continue;
      applyEvent(ev);
    } catch (e) {
      console.error('event', ev, e);
    }
  }
}

function applyEvent(ev) {
  switch (ev.type) {
    case 'message':
      applyMessage(ev.message, true);
      break;
    case 'thread':
      mergeThread(ev.thread);
      break;
    case 'message_edited':
      updateMessage(ev.message);
      break;
    case 'message_deleted':
      applyDeleted(ev.thread_id, ev.seq, ev.deleted_at, ev.version);
      break;
    case 'message_hidden':
    case 'message_unhidden':
      applyHidden(ev.thread_id, ev.seq, ev.type === 'message_hidden').catch(() => {});
      break;
    case 'reaction':
      applyReaction(ev.thread_id, ev.seq, ev.user_id, ev.emoji, ev.op, ev.version);
      break;
    case 'history_purged': {
      // Retention removed the thread's oldest messages.
      const c = store.chats.get(ev.thread_id);
      if (c) {
        for (const seq of [...c.messages.keys()]) if (seq <= ev.up_to_seq) c.messages.delete(seq);
        c.minSeq = c.messages.size ? Math.min(...c.messages.keys()) : c.maxSeq + 1;
        if (c.minSeq > ev.up_to_seq) c.hasOlder = false;
      }
      const t = store.threads.get(ev.thread_id);
      if (t) t.oldest_seq = Math.max(t.oldest_seq || 1, ev.up_to_seq + 1);
      changed('threads', `thread:${ev.thread_id}`);
      break;
    }
    case 'receipt':
      bumpReceipt(ev.thread_id, ev.user_id, ev.delivered_seq, ev.read_seq);
      if (ev.user_id === store.me.id) setRead(ev.thread_id, ev.read_seq);
      break;
    case 'presence': {
      const p = { state: ev.state, last_seen_at: ev.last_seen_at };
      store.presence.set(ev.user_id, p);
      const c = store.contacts.get(ev.user_id);
      if (c) c.presence = p;
      changed('presence', 'contacts');
      break;
    }
    case 'typing': {
      if (ev.user_id === store.me.id) break;
      let m = store.typing.get(ev.thread_id);
      if (!m) {
        m = new Map();
        store.typing.set(ev.thread_id, m);
      }
      const until = Date.now() + 6000;
      m.set(ev.user_id, until);
      changed(`thread:${ev.thread_id}`);
      setTimeout(() => {
        if (m.get(ev.user_id) === until) {
          m.delete(ev.user_id);
          changed(`thread:${ev.thread_id}`);
        }
      }, 6100);
      break;
    }
    default:
      // Unknown event types are for newer clients.
  }
}

/** Users typing in a thread now, other than the caller. */
export function typingUsers(threadId) {
  const m = store.typing.get(threadId);
  if (!m) return [];
  const now = Date.now();
  return [...m.entries()].filter(([, until]) => until > now).map(([id]) => id);
}

export function setConnection(status, info) {
  store.connection = { status, info };
  changed('conn');
}
