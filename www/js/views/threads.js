// views/threads.js — the thread list in the sidebar: most recent first, with
// the unread badge, the last message and its time, "typing…", a mute mark,
// and the online dot of the other member of a direct thread. More threads
// load when the list is scrolled to its end.

import { attachmentLabel } from '../attachments.js';
import { avatar, h, icon, reconcile, setAttr, setText, updateAvatar } from '../dom.js';
import { directPartner, shortTime, threadTitle, userName } from '../format.js';
import { loadMoreThreads, sortedThreads, store, typingUsers } from '../store.js';

export function createThreadList() {
  const list = h('ul', { class: 'thread-list', 'aria-label': 'Chats' });
  const empty = h('div', { class: 'list-empty', hidden: true },
    h('p', null, 'No chats yet.'),
    h('p', null, h('a', { href: '#/contacts' }, 'Find people'), ' to start one, or ',
      h('a', { href: '#/new-group' }, 'create a group'), '.'));
  const more = h('button', { type: 'button', class: 'link-btn more', hidden: true, onclick: () => loadMoreThreads() },
    'Load more chats');
  const el = h('nav', { class: 'thread-nav', 'aria-label': 'Chats' }, list, empty, more);
  let current = null;

  el.addEventListener('scroll', () => {
    if (el.scrollTop + el.clientHeight > el.scrollHeight - 100) loadMoreThreads().catch(() => {});
  }, { passive: true });

  function render() {
    const threads = sortedThreads();
    empty.hidden = threads.length > 0 || store.connection.status === 'connecting';
    more.hidden = !store.threadsNext;
    reconcile(list, threads, (t) => t.id, create, update);
  }

  function create(t) {
    const name = h('span', { class: 'ti-name' });
    const time = h('time', { class: 'ti-time' });
    const preview = h('span', { class: 'ti-preview' });
    const badge = h('span', { class: 'badge', 'aria-hidden': 'true' });
    const muted = h('span', { class: 'ti-muted' }, icon('mute'));
    const a = h('a', { class: 'thread-item', href: `#/chats/${t.id}` },
      avatar(t.id, ''),
      h('span', { class: 'ti-body' },
        h('span', { class: 'ti-row' }, name, time),
        h('span', { class: 'ti-row' }, preview, muted, badge)));
    return h('li', null, a);
  }

  function update(li, t) {
    const a = li.firstChild;
    const title = threadTitle(t);
    const isGroup = t.kind === 'group';
    const partner = isGroup ? null : directPartner(t);
    const online = partner !== null && partner !== store.me.id &&
      store.presence.get(partner)?.state === 'online';
    updateAvatar(a.querySelector('.avatar'), isGroup ? t.id : partner, title, { online, group: isGroup });
    setText(a.querySelector('.ti-name'), title);

    const m = t.last_message;
    const time = a.querySelector('.ti-time');
    setText(time, m ? shortTime(m.created_at) : '');
    if (m) setAttr(time, 'datetime', new Date(m.created_at).toISOString());

    const typers = typingUsers(t.id);
    let preview;
    if (typers.length) preview = isGroup ? `${userName(typers[0])} is typing…` : 'typing…';
    else if (!m) preview = isGroup ? 'Group created' : 'No messages yet';
    else {
      // A message with attachments says what it holds, as the push does.
      const what = m.attachments?.length
        ? `${attachmentLabel(m.attachments[0])}${m.body ? `: ${m.body}` : ''}` : m.body;
      if (m.sender_id === store.me.id) preview = `You: ${what}`;
      else preview = isGroup ? `${userName(m.sender_id)}: ${what}` : what;
    }
    const pv = a.querySelector('.ti-preview');
    setText(pv, preview.replace(/\s+/g, ' ').slice(0, 200));
    pv.classList.toggle('is-typing', typers.length > 0);

    const badge = a.querySelector('.badge');
    setText(badge, t.unread_count > 99 ? '99+' : String(t.unread_count));
    badge.hidden = t.unread_count === 0;
    badge.classList.toggle('muted', t.is_muted);
    a.querySelector('.ti-muted').hidden = !t.is_muted;
    a.classList.toggle('unread', t.unread_count > 0);
    setAttr(a, 'aria-current', t.id === current ? 'page' : null);

    const parts = [title];
    if (online) parts.push('online');
    if (t.unread_count) parts.push(`${t.unread_count} unread message${t.unread_count === 1 ? '' : 's'}`);
    if (t.is_muted) parts.push('muted');
    parts.push(typers.length ? preview : (m ? `${preview}, ${shortTime(m.created_at)}` : preview));
    setAttr(a, 'aria-label', parts.join(', '));
  }

  return {
    el,
    render,
    /** Marks the open thread (aria-current). */
    setCurrent(id) {
      current = id;
      render();
    },
  };
}
