// views/picker.js — a checkbox list of contacts with a filter, to pick the
// members of a new group or the people to add to one.
//
// const p = createPicker({ id, legend, exclude: Set(user ids) });
// p.el (a <fieldset>), p.selected() → [user ids], p.render() after changes.

import { avatar, h, reconcile, setText, updateAvatar } from '../dom.js';
import { presenceText, userName } from '../format.js';
import { store } from '../store.js';

export function createPicker({ id, legend, exclude = new Set() }) {
  const chosen = new Set();
  const filter = h('input', { id: `${id}-filter`, type: 'search', placeholder: 'Filter contacts', autocomplete: 'off' });
  const list = h('ul', { class: 'people pick-list' });
  const status = h('p', { class: 'muted small', role: 'status' });
  const el = h('fieldset', { class: 'picker' },
    h('legend', null, legend),
    h('div', { class: 'field' }, h('label', { for: `${id}-filter`, class: 'sr-only' }, 'Filter contacts'), filter),
    list,
    status);
  filter.addEventListener('input', render);

  function render() {
    const q = filter.value.trim().toLowerCase().replace(/^@/, '');
    const people = [...store.contacts.values()]
      .filter((c) => !exclude.has(c.user.id))
      .filter((c) => !q || [c.user.username, c.user.display_name || '', c.nickname || '']
        .some((s) => s.toLowerCase().includes(q)))
      .sort((a, b) => userName(a.user.id).localeCompare(userName(b.user.id)));
    reconcile(list, people, (c) => c.user.id, (c) => {
      const cid = `${id}-u${c.user.id}`;
      const box = h('input', { type: 'checkbox', id: cid, value: String(c.user.id) });
      box.addEventListener('change', () => {
        if (box.checked) chosen.add(c.user.id);
        else chosen.delete(c.user.id);
        renderStatus();
      });
      return h('li', { class: 'person pick' },
        box,
        h('label', { for: cid, class: 'pick-label' },
          avatar(c.user.id, ''),
          h('span', { class: 'person-text' }, h('span', { class: 'person-name' }), h('span', { class: 'person-sub' }))));
    }, (li, c) => {
      const uid = c.user.id;
      const p = store.presence.get(uid);
      updateAvatar(li.querySelector('.avatar'), uid, userName(uid), { online: p?.state === 'online' });
      setText(li.querySelector('.person-name'), userName(uid));
      setText(li.querySelector('.person-sub'), `@${c.user.username} · ${presenceText(p)}`);
      li.querySelector('input').checked = chosen.has(uid);
    });
    if (!store.contacts.size) status.textContent = 'Add contacts first, in Contacts.';
    else if (!people.length) status.textContent = q ? 'No contact matches.' : 'Everyone is here already.';
    else renderStatus();
  }

  function renderStatus() {
    status.textContent = chosen.size ? `${chosen.size} selected` : '';
  }

  render();
  return {
    el,
    render,
    selected: () => [...chosen],
    clear() {
      chosen.clear();
      render();
    },
  };
}
