// views/contacts.js — the contacts: search them by name, nickname or
// username, show only those online, sort by name or by last seen; message,
// rename (nickname) or remove each one; and find new people by username
// (GET /v1/users?q=) to add them.

import { describeError } from '../api.js';
import { openDirect, putContact, removeContact, searchUsers } from '../actions.js';
import {
  avatar, confirmDialog, h, icon, promptDialog, reconcile, setText, updateAvatar,
} from '../dom.js';
import { presenceText, userName } from '../format.js';
import { loadContacts, store } from '../store.js';

export function mountContacts(root, ctx) {
  const filter = h('input', {
    id: 'contact-filter', type: 'search', placeholder: 'Name, nickname or @username', autocomplete: 'off',
  });
  const onlineOnly = h('input', { id: 'contact-online', type: 'checkbox' });
  const sortBy = h('select', { id: 'contact-sort' },
    h('option', { value: 'name' }, 'Name'),
    h('option', { value: 'seen' }, 'Last seen'));
  const list = h('ul', { class: 'people', 'aria-label': 'Your contacts' });
  const count = h('p', { class: 'muted small', role: 'status' });
  const error = h('p', { class: 'form-error', role: 'alert' });

  const search = h('input', {
    id: 'user-search', type: 'search', placeholder: 'Username', autocomplete: 'off',
    autocapitalize: 'none', spellcheck: 'false',
  });
  const results = h('ul', { class: 'people', 'aria-label': 'People found' });
  const resultStatus = h('p', { class: 'muted small', role: 'status' });

  const view = h('section', { class: 'page', 'aria-labelledby': 'contacts-title' },
    h('header', { class: 'page-head' },
      h('a', { href: '#/chats', class: 'icon-btn back', 'aria-label': 'Back to chats' }, icon('back')),
      h('h2', { id: 'contacts-title', tabindex: '-1' }, 'Contacts')),
    h('div', { class: 'page-body' },
      error,
      h('form', { class: 'filters', role: 'search', 'aria-label': 'Search contacts', onsubmit: (e) => e.preventDefault() },
        h('div', { class: 'field grow' }, h('label', { for: 'contact-filter' }, 'Search contacts'), filter),
        h('div', { class: 'field' }, h('label', { for: 'contact-sort' }, 'Sort by'), sortBy),
        h('label', { class: 'check', for: 'contact-online' }, onlineOnly, ' Online only')),
      count,
      list,
      h('h3', { class: 'section-title' }, 'Add people'),
      h('form', { class: 'filters', role: 'search', 'aria-label': 'Find people', onsubmit: (e) => { e.preventDefault(); runSearch(); } },
        h('div', { class: 'field grow' }, h('label', { for: 'user-search' }, 'Find people by username'), search),
        h('button', { type: 'submit', class: 'btn' }, 'Search')),
      resultStatus,
      results));
  root.replaceChildren(view);

  filter.addEventListener('input', render);
  onlineOnly.addEventListener('change', render);
  sortBy.addEventListener('change', render);
  let searchTimer = null;
  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, 250);
  });

  let found = [];
  let searchSeq = 0;
  async function runSearch() {
    const q = search.value.trim().replace(/^@/, '');
    const mine = ++searchSeq;
    if (!q) {
      found = [];
      resultStatus.textContent = '';
      renderResults();
      return;
    }
    try {
      const users = await searchUsers(q);
      if (mine !== searchSeq) return;
      found = users.filter((u) => u.id !== store.me.id);
      resultStatus.textContent = found.length ? `${found.length} found` : `Nobody with a username starting “${q}”.`;
    } catch (e) {
      if (mine !== searchSeq) return;
      found = [];
      resultStatus.textContent = describeError(e);
    }
    renderResults();
  }

  async function act(fn) {
    error.textContent = '';
    try {
      await fn();
    } catch (e) {
      error.textContent = describeError(e);
    }
  }

  const message = (uid) => act(async () => ctx.navigate(`#/chats/${await openDirect(uid)}`));

  function matches(c, q) {
    if (!q) return true;
    const hay = [c.user.username, `@${c.user.username}`, c.user.display_name || '', c.nickname || '']
      .map((s) => s.toLowerCase());
    return hay.some((s) => s.includes(q));
  }

  function render() {
    const q = filter.value.trim().toLowerCase();
    let contacts = [...store.contacts.values()].filter((c) => matches(c, q));
    if (onlineOnly.checked) contacts = contacts.filter((c) => store.presence.get(c.user.id)?.state === 'online');
    const byName = (a, b) => userName(a.user.id).localeCompare(userName(b.user.id));
    if (sortBy.value === 'seen') {
      const seen = (c) => {
        const p = store.presence.get(c.user.id);
        return p?.state === 'online' ? Infinity : (p?.last_seen_at || 0);
      };
      contacts.sort((a, b) => seen(b) - seen(a) || byName(a, b));
    } else {
      contacts.sort(byName);
    }
    const total = store.contacts.size;
    count.textContent = total === 0 ? 'No contacts yet. Find people below.'
      : contacts.length === total ? `${total} contact${total === 1 ? '' : 's'}`
        : `${contacts.length} of ${total} contacts`;
    reconcile(list, contacts, (c) => c.user.id, createContact, updateContact);
    renderResults();
  }

  function createContact(c) {
    const uid = c.user.id;
    return h('li', { class: 'person' },
      avatar(uid, ''),
      h('div', { class: 'person-text' },
        h('span', { class: 'person-name' }),
        h('span', { class: 'person-sub' })),
      h('div', { class: 'person-actions' },
        h('button', { type: 'button', class: 'btn small primary', onclick: () => message(uid) }, 'Message'),
        h('button', { type: 'button', class: 'btn small', onclick: () => rename(uid) }, 'Nickname'),
        h('button', { type: 'button', class: 'btn small', onclick: () => remove(uid) }, 'Remove')));
  }

  function updateContact(li, c) {
    const uid = c.user.id;
    const p = store.presence.get(uid) || c.presence;
    const name = userName(uid);
    updateAvatar(li.querySelector('.avatar'), uid, name, { online: p?.state === 'online' });
    setText(li.querySelector('.person-name'), name);
    const real = c.nickname ? ` (${c.user.display_name || c.user.username})` : '';
    setText(li.querySelector('.person-sub'), `@${c.user.username}${real} · ${presenceText(p)}`);
    for (const b of li.querySelectorAll('.person-actions button')) {
      b.setAttribute('aria-label', `${b.textContent.trim()} ${name}`);
    }
  }

  async function rename(uid) {
    const c = store.contacts.get(uid);
    const v = await promptDialog({
      title: `Nickname for @${c.user.username}`,
      label: 'Nickname',
      value: c.nickname || '',
      hint: 'Only you see it. Leave empty to use their own name.',
      maxLength: 64,
    });
    if (v === null) return;
    await act(() => putContact(uid, v.trim() || null));
  }

  async function remove(uid) {
    const ok = await confirmDialog({
      title: 'Remove contact?',
      text: `${userName(uid)} will no longer be in your contacts. Your chats stay.`,
      okLabel: 'Remove',
      danger: true,
    });
    if (ok) await act(() => removeContact(uid));
  }

  function renderResults() {
    reconcile(results, found, (u) => u.id, (u) => h('li', { class: 'person' },
      avatar(u.id, u.display_name || u.username),
      h('div', { class: 'person-text' },
        h('span', { class: 'person-name' }, u.display_name || u.username),
        h('span', { class: 'person-sub' }, `@${u.username}`)),
      h('div', { class: 'person-actions' })), (li, u) => {
      const actions = li.querySelector('.person-actions');
      const isContact = store.contacts.has(u.id);
      if (actions.dataset.contact === String(isContact)) return;
      actions.dataset.contact = String(isContact);
      const label = u.display_name || u.username;
      actions.replaceChildren(
        isContact
          ? h('span', { class: 'muted small' }, 'In contacts')
          : h('button', {
            type: 'button', class: 'btn small primary', 'aria-label': `Add ${label} to contacts`,
            onclick: () => act(() => putContact(u.id)),
          }, 'Add'),
        h('button', { type: 'button', class: 'btn small', 'aria-label': `Message ${label}`, onclick: () => message(u.id) }, 'Message'));
    });
  }

  render();
  loadContacts().catch(() => {});
  if (ctx.focus !== false) view.querySelector('h2').focus();

  return {
    update(keys) {
      if (keys.has('contacts') || keys.has('presence') || keys.has('users') || keys.has('clock')) render();
    },
    unmount() {
      clearTimeout(searchTimer);
    },
  };
}
