// views/newgroup.js — a new group: a title and members picked from the
// contacts. The caller becomes its admin (POST /v1/threads with a title).

import { describeError } from '../api.js';
import { createGroup } from '../actions.js';
import { h, icon } from '../dom.js';
import { createPicker } from './picker.js';

export function mountNewGroup(root, ctx) {
  const title = h('input', { id: 'group-title', type: 'text', required: true, maxlength: 100, autocomplete: 'off' });
  const picker = createPicker({ id: 'ng', legend: 'Members' });
  const error = h('p', { class: 'form-error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'btn primary' }, 'Create group');
  const form = h('form', { class: 'stack', 'aria-labelledby': 'newgroup-title' },
    error,
    h('div', { class: 'field' }, h('label', { for: 'group-title' }, 'Group name'), title),
    picker.el,
    h('div', { class: 'form-actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    const name = title.value.trim();
    const members = picker.selected();
    if (!name) {
      error.textContent = 'Give the group a name.';
      title.focus();
      return;
    }
    if (!members.length) {
      error.textContent = 'Pick at least one member.';
      return;
    }
    submit.disabled = true;
    try {
      const id = await createGroup(name, members);
      ctx.navigate(`#/chats/${id}`);
    } catch (err) {
      error.textContent = describeError(err);
      submit.disabled = false;
    }
  });
  const view = h('section', { class: 'page', 'aria-labelledby': 'newgroup-title' },
    h('header', { class: 'page-head' },
      h('a', { href: '#/chats', class: 'icon-btn back', 'aria-label': 'Back to chats' }, icon('back')),
      h('h2', { id: 'newgroup-title', tabindex: '-1' }, 'New group')),
    h('div', { class: 'page-body' }, form));
  root.replaceChildren(view);
  if (ctx.focus !== false) title.focus();
  return {
    update(keys) {
      if (keys.has('contacts') || keys.has('presence') || keys.has('users')) picker.render();
    },
    unmount() {},
  };
}
