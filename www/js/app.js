// app.js — start-up, the session's life cycle, the layout and the routes.
//
// Routes (the hash, so any static server can serve the app):
//   #/login  #/register           logged out
//   #/chats                       the thread list (and an empty pane beside it)
//   #/chats/<id>                  a conversation
//   #/chats/<id>/m/<seq>          a conversation at one message (search results)
//   #/search                      searching one's messages
//   #/chats/<id>/details          its details
//   #/contacts  #/new-group  #/settings
//
// Start of a session: listen to the other tabs, take the stream's cursor,
// load threads and contacts over REST, then apply what the stream brought
// meanwhile and join the inbox election (inbox.js). The layout is a sidebar
// with the thread list and a main pane; below 720 px only one of them shows
// at a time (data-pane on the layout).

import { backoffMs, onSessionLost, setToken, sleep } from './api.js';
import { contactsChangedElsewhere, logout, setPeerPost } from './actions.js';
import { avatar, h, icon } from './dom.js';
import { threadTitle, userName } from './format.js';
import { Inbox } from './inbox.js';
import { attachmentLabel } from './attachments.js';
import { initNotify, notifyMessage, peerVisibility, permission, requestPermission } from './notify.js';
import { clearSession, loadSession, onSessionChange } from './session.js';
import {
  applyEvents, changed, loadAll, onIncomingMessage, reloadAll, resetStore, setConnection, store, subscribe,
} from './store.js';
import { mountAuth } from './views/auth.js';
import { mountChat } from './views/chat.js';
import { mountContacts } from './views/contacts.js';
import { mountDetails } from './views/details.js';
import { mountNewGroup } from './views/newgroup.js';
import { mountSearch } from './views/search.js';
import { mountSettings } from './views/settings.js';
import { createThreadList } from './views/threads.js';

const root = document.getElementById('app');
let session = null;
let inbox = null;
let shell = null;
let view = null;
let viewKey = '';
let pendingFlash = '';

const ctx = {
  navigate(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
  flash,
  logout: () => endSession(true, 'You are logged out.'),
};

// ---- the session ----

async function startSession(s) {
  session = s;
  setToken(s.token);
  resetStore(s.user);
  const mine = new Inbox(s.session_id, {
    onEvents: applyEvents,
    onResync: () => reloadAll(),
    onStatus: setConnection,
    onPeer(msg) {
      if (msg.type === 'contacts') contactsChangedElsewhere();
      else if (msg.type === 'visibility') peerVisibility(msg);
    },
  });
  inbox = mine;
  mine.open();
  setPeerPost((m) => mine.post(m));
  initNotify({ post: (m) => mine.post(m), isLeader: () => mine.isLeader() });
  shell = null;
  if (!location.hash || location.hash === '#/login' || location.hash === '#/register') {
    history.replaceState(null, '', '#/chats');
  }
  route();
  for (let attempt = 0; ; attempt++) {
    try {
      await mine.initialCursor();
      await loadAll();
      break;
    } catch (e) {
      if (inbox !== mine || e.status === 401) return;
      setConnection('offline', {});
      await sleep(backoffMs(attempt));
      if (inbox !== mine) return;
      setConnection('connecting', {});
    }
  }
  if (inbox !== mine) return;
  mine.start();
}

/** Leaves the session: tells the server (tellServer) and every tab. */
async function endSession(tellServer, message) {
  if (!session) return;
  const dead = inbox;
  session = null;
  inbox = null;
  dead?.stop();
  if (tellServer) await logout();
  setToken(null);
  clearSession();
  resetStore(null);
  shell = null;
  view?.unmount();
  view = null;
  viewKey = '';
  pendingFlash = message || '';
  document.title = 'chat';
  if (location.hash === '#/login') route();
  else location.hash = '#/login';
}

onSessionLost(() => endSession(false, 'Your session has ended. Please log in again.'));

onSessionChange((s) => {
  if (!s) {
    if (session) endSession(false, 'You are logged out.');
  } else if (!session || s.token !== session.token) {
    if (session) {
      inbox?.stop();
      session = null;
    }
    startSession(s);
  }
});

// ---- notifications ----

onIncomingMessage((m, t) => {
  if (!t || t.is_muted) return;
  if (t.notify === 'mentions' && !m.mentions?.all && !m.mentions?.user_ids.includes(store.me.id)) return;
  const sender = userName(m.sender_id);
  notifyMessage({
    title: t.kind === 'group' ? `${sender} in ${threadTitle(t)}` : sender,
    body: m.attachments?.length
      ? `${attachmentLabel(m.attachments[0])}${m.body ? `: ${m.body}` : ''}` : m.body,
    tag: `thread-${t.id}`,
    onOpen: () => ctx.navigate(`#/chats/${t.id}`),
  });
});

// ---- layout ----

function buildShell() {
  const threadList = createThreadList();
  const conn = h('div', { class: 'conn', hidden: true },
    h('span', { class: 'spinner', 'aria-hidden': 'true' }),
    h('span', { class: 'conn-text', role: 'status' }),
    h('button', { type: 'button', class: 'link-btn', onclick: () => inbox?.onOnline() }, 'Retry now'));
  const banner = h('div', { class: 'notify-banner', hidden: true });
  const main = h('main', { id: 'main', class: 'pane', tabindex: '-1' });
  const me = store.me;
  const nav = (href, name, label) => h('a', { href, class: 'icon-btn', 'aria-label': label, title: label }, icon(name));
  const sidebar = h('aside', { class: 'sidebar', 'aria-label': 'Chats and menu' },
    h('header', { class: 'side-head' },
      h('a', { href: '#/settings', class: 'me-link', 'aria-label': `Settings for ${me.username}` },
        avatar(me.id, me.display_name || me.username)),
      h('h1', { class: 'side-title' }, 'Chats'),
      h('nav', { class: 'side-actions', 'aria-label': 'Menu' },
        nav('#/search', 'search', 'Search messages'),
        nav('#/contacts', 'contacts', 'Contacts'),
        nav('#/new-group', 'group', 'New group'),
        nav('#/settings', 'settings', 'Settings'))),
    conn, banner, threadList.el);
  const layout = h('div', { class: 'layout', 'data-pane': 'list' }, sidebar, main);
  const toast = h('div', { class: 'toast', role: 'status', 'aria-live': 'polite' });
  root.replaceChildren(layout, toast);
  shell = { layout, main, conn, banner, threadList, toast };
  renderConn();
  renderBanner();
  threadList.render();
}

function renderConn() {
  const { status } = store.connection;
  const el = shell.conn;
  el.hidden = status === 'live';
  el.className = `conn ${status}`;
  const text = el.querySelector('.conn-text');
  if (status === 'connecting') text.textContent = 'Connecting…';
  else if (status === 'offline') text.textContent = 'Offline. Reconnecting…';
}

function renderBanner() {
  const dismissed = localStorage.getItem('chatd.notify-banner') === 'no';
  const show = permission() === 'default' && !dismissed;
  const el = shell.banner;
  el.hidden = !show;
  if (!show) return;
  el.replaceChildren(
    h('p', null, 'Get notified of new messages?'),
    h('div', { class: 'banner-actions' },
      h('button', {
        type: 'button', class: 'btn small primary',
        onclick: async () => { await requestPermission(); renderBanner(); },
      }, 'Turn on'),
      h('button', {
        type: 'button', class: 'btn small',
        onclick: () => { localStorage.setItem('chatd.notify-banner', 'no'); renderBanner(); },
      }, 'Not now')));
}

function flash(text) {
  if (!shell) {
    pendingFlash = text;
    return;
  }
  const t = shell.toast;
  t.textContent = text;
  t.classList.add('show');
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => t.classList.remove('show'), 4000);
}

function updateTitle() {
  const unread = [...store.threads.values()].reduce((n, t) => n + (t.is_muted ? 0 : t.unread_count), 0);
  const m = /^#\/chats\/(\d+)/.exec(location.hash);
  const t = m && store.threads.get(Number(m[1]));
  const base = t ? `${threadTitle(t)} · chat` : 'chat';
  document.title = unread ? `(${unread}) ${base}` : base;
}

subscribe((keys) => {
  if (!session || !shell) return;
  if (keys.has('conn')) renderConn();
  if (keys.has('threads') || keys.has('users') || keys.has('contacts') || keys.has('presence') ||
      keys.has('clock') || [...keys].some((k) => k.startsWith('thread:'))) {
    shell.threadList.render();
  }
  updateTitle();
  view?.update?.(keys);
});

setInterval(() => changed('clock'), 30000);

// ---- routes ----

function route() {
  const hash = location.hash || '#/';
  if (!session) {
    shell = null;
    view?.unmount();
    viewKey = hash === '#/register' ? 'register' : 'login';
    view = mountAuth(root, viewKey, (s) => startSession(s));
    if (pendingFlash) {
      const note = h('p', { class: 'auth-note', role: 'status' }, pendingFlash);
      root.querySelector('.auth-card')?.prepend(note);
      pendingFlash = '';
    }
    return;
  }
  if (!shell) {
    buildShell();
    viewKey = '';
  }
  let m;
  let key;
  let mount;
  let current = null;
  if ((m = /^#\/chats\/(\d+)\/details$/.exec(hash))) {
    current = Number(m[1]);
    key = `details:${current}`;
    mount = (el) => mountDetails(el, current, ctx);
  } else if ((m = /^#\/chats\/(\d+)(?:\/m\/(\d+))?$/.exec(hash))) {
    current = Number(m[1]);
    const jumpTo = m[2] ? Number(m[2]) : null;
    key = `chat:${current}:${jumpTo}`;
    mount = (el) => mountChat(el, current, { ...ctx, jumpTo });
  } else if (hash === '#/search') {
    key = 'search';
    mount = (el) => mountSearch(el, ctx);
  } else if (hash === '#/contacts') {
    key = 'contacts';
    mount = (el) => mountContacts(el, ctx);
  } else if (hash === '#/new-group') {
    key = 'new-group';
    mount = (el) => mountNewGroup(el, ctx);
  } else if (hash === '#/settings') {
    key = 'settings';
    mount = (el) => mountSettings(el, ctx);
  } else {
    key = 'list';
    mount = mountEmpty;
  }
  shell.threadList.setCurrent(current);
  shell.layout.dataset.pane = key === 'list' ? 'list' : 'main';
  if (key !== viewKey) {
    view?.unmount();
    viewKey = key;
    view = mount(shell.main);
  }
  updateTitle();
  if (pendingFlash) {
    flash(pendingFlash);
    pendingFlash = '';
  }
}

function mountEmpty(el) {
  el.replaceChildren(h('div', { class: 'empty-pane' },
    h('span', { class: 'empty-mark', 'aria-hidden': 'true' }, icon('chat')),
    h('h2', null, 'Pick a chat'),
    h('p', null, 'Choose a conversation on the left, or start a new one.'),
    h('p', { class: 'empty-actions' },
      h('a', { href: '#/contacts', class: 'btn' }, 'Find people'),
      h('a', { href: '#/new-group', class: 'btn' }, 'New group'))));
  return { unmount() {} };
}

window.addEventListener('hashchange', route);

window.addEventListener('keydown', (e) => {
  if (e.key !== 'Escape' || !session || document.querySelector('dialog[open]')) return;
  const m = /^#\/chats\/(\d+)(\/details)?$/.exec(location.hash);
  if (m) ctx.navigate(m[2] ? `#/chats/${m[1]}` : '#/chats');
});

const saved = loadSession();
if (saved) startSession(saved);
else route();
