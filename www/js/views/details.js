// views/details.js — a thread's details. Everyone: the caller's own nickname
// for the thread and mute. Direct threads: the other person, and adding them
// to the contacts. Groups: rename, the members with their presence, add
// members from the contacts, remove one (admins), and leave.

import { describeError } from '../api.js';
import {
  addMembers, putContact, removeMember, renameGroup, setThreadHistory, setThreadSettings,
} from '../actions.js';
import {
  avatar, confirmDialog, h, icon, reconcile, setText, updateAvatar,
} from '../dom.js';
import { directPartner, presenceText, threadTitle, userHandle, userName } from '../format.js';
import { fetchThread, store } from '../store.js';
import { createPicker } from './picker.js';

export function mountDetails(root, threadId, ctx) {
  const me = store.me.id;
  const error = h('p', { class: 'form-error', role: 'alert' });
  const status = h('p', { class: 'form-ok', role: 'status' });
  const title = h('h2', { id: 'details-title', tabindex: '-1' });
  const bigAvatar = avatar(threadId, '', { size: 'large' });
  const name = h('p', { class: 'profile-name' });
  const sub = h('p', { class: 'profile-sub' });

  async function act(fn, ok) {
    error.textContent = '';
    status.textContent = '';
    try {
      await fn();
      if (ok) status.textContent = ok;
      return true;
    } catch (e) {
      error.textContent = describeError(e);
      return false;
    }
  }

  // Group name.
  const titleInput = h('input', { id: 'd-title', type: 'text', maxlength: 100, autocomplete: 'off' });
  const renameForm = h('form', { class: 'inline-form' },
    h('div', { class: 'field grow' }, h('label', { for: 'd-title' }, 'Group name'), titleInput),
    h('button', { type: 'submit', class: 'btn' }, 'Rename'));
  renameForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = titleInput.value.trim();
    if (v) act(() => renameGroup(threadId, v), 'Renamed.');
  });

  // The caller's own settings.
  const nickInput = h('input', { id: 'd-nick', type: 'text', maxlength: 64, autocomplete: 'off', 'aria-describedby': 'd-nick-hint' });
  const nickForm = h('form', { class: 'inline-form' },
    h('div', { class: 'field grow' },
      h('label', { for: 'd-nick' }, 'Nickname for this chat'),
      nickInput,
      h('p', { class: 'hint', id: 'd-nick-hint' }, 'Only you see it. Leave empty for the usual name.')),
    h('button', { type: 'submit', class: 'btn' }, 'Save'));
  nickForm.addEventListener('submit', (e) => {
    e.preventDefault();
    act(() => setThreadSettings(threadId, { nickname: nickInput.value.trim() || null }), 'Nickname saved.');
  });
  const muteBox = h('input', { id: 'd-mute', type: 'checkbox' });
  muteBox.addEventListener('change', () => {
    const want = muteBox.checked;
    act(() => setThreadSettings(threadId, { is_muted: want }), want ? 'Muted.' : 'Unmuted.')
      .then((ok) => { if (!ok) muteBox.checked = !want; });
  });
  // notify "mentions": only messages that mention the caller notify.
  const mentionsBox = h('input', { id: 'd-mentions', type: 'checkbox' });
  mentionsBox.addEventListener('change', () => {
    const want = mentionsBox.checked;
    act(() => setThreadSettings(threadId, { notify: want ? 'mentions' : 'all' }),
      want ? 'Only mentions of you will notify.' : 'Every message will notify.')
      .then((ok) => { if (!ok) mentionsBox.checked = !want; });
  });

  // History: how long the thread keeps it, and disappearing messages
  // (a group's admins decide; the server answers others 403).
  const timerSel = h('select', { id: 'd-timer' },
    h('option', { value: '0' }, 'Off'), h('option', { value: '86400' }, '24 hours'),
    h('option', { value: '604800' }, '7 days'), h('option', { value: '7776000' }, '90 days'));
  timerSel.addEventListener('change', () => {
    const s = Number(timerSel.value);
    act(() => setThreadHistory(threadId, { disappearing_s: s }),
      s ? 'New messages will disappear.' : 'New messages will stay.');
  });
  const keepSel = h('select', { id: 'd-keep' },
    h('option', { value: '' }, 'The server\'s setting'), h('option', { value: '30' }, '30 days'),
    h('option', { value: '365' }, '1 year'));
  keepSel.addEventListener('change', () => {
    const d = keepSel.value ? Number(keepSel.value) : null;
    act(() => setThreadHistory(threadId, { retention_days: d }), 'History setting saved.');
  });
  const historyPart = h('section', { class: 'card', 'aria-labelledby': 'd-history-title' },
    h('h3', { class: 'section-title', id: 'd-history-title' }, 'History'),
    h('div', { class: 'field' }, h('label', { for: 'd-timer' }, 'Disappearing messages'), timerSel),
    h('div', { class: 'field' }, h('label', { for: 'd-keep' }, 'Keep messages for'), keepSel));

  // Direct: add the other person to the contacts.
  const addContactBtn = h('button', { type: 'button', class: 'btn' }, 'Add to contacts');
  addContactBtn.addEventListener('click', () => {
    const t = store.threads.get(threadId);
    if (t) act(() => putContact(directPartner(t)), 'Added to your contacts.');
  });

  // Group: members.
  const members = h('ul', { class: 'people', 'aria-labelledby': 'd-members-title' });
  const membersTitle = h('h3', { class: 'section-title', id: 'd-members-title' });
  let picker = null;
  const pickerSlot = h('div');
  const addBtn = h('button', { type: 'submit', class: 'btn' }, 'Add selected');
  const addForm = h('form', { class: 'stack' }, pickerSlot, h('div', { class: 'form-actions' }, addBtn));
  addForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const ids = picker?.selected() || [];
    if (!ids.length) {
      error.textContent = 'Pick the contacts to add first.';
      return;
    }
    if (await act(() => addMembers(threadId, ids), `Added ${ids.length}.`)) picker = null;
    render();
  });
  const leaveBtn = h('button', { type: 'button', class: 'btn danger' }, 'Leave group');
  leaveBtn.addEventListener('click', async () => {
    const ok = await confirmDialog({
      title: 'Leave this group?',
      text: 'You will no longer see its messages.',
      okLabel: 'Leave',
      danger: true,
    });
    if (ok && await act(() => removeMember(threadId, me))) ctx.navigate('#/chats');
  });

  const groupPart = h('div', { class: 'group-part' },
    h('div', { class: 'card' }, renameForm),
    h('section', { class: 'card', 'aria-labelledby': 'd-members-title' },
      membersTitle, members,
      h('h4', { class: 'sub-title' }, 'Add members'),
      addForm),
    h('div', { class: 'card danger-zone' }, leaveBtn));
  const directPart = h('div', { class: 'direct-part card' }, addContactBtn);

  const view = h('section', { class: 'page', 'aria-labelledby': 'details-title' },
    h('header', { class: 'page-head' },
      h('a', { href: `#/chats/${threadId}`, class: 'icon-btn back always', 'aria-label': 'Back to the chat' }, icon('back')),
      title),
    h('div', { class: 'page-body' },
      h('div', { class: 'profile' }, bigAvatar, h('div', null, name, sub)),
      error, status,
      groupPart, directPart, historyPart,
      h('section', { class: 'card', 'aria-labelledby': 'd-mine-title' },
        h('h3', { class: 'section-title', id: 'd-mine-title' }, 'Your settings'),
        nickForm,
        h('label', { class: 'check', for: 'd-mute' }, muteBox, ' Mute notifications'),
        h('label', { class: 'check', for: 'd-mentions' }, mentionsBox, ' Notify only when I am mentioned'))));
  root.replaceChildren(view);

  let filled = false;
  function render() {
    const t = store.threads.get(threadId);
    if (!t) return;
    const isGroup = t.kind === 'group';
    setText(title, isGroup ? 'Group details' : 'Chat details');
    const partner = isGroup ? null : directPartner(t);
    const p = partner !== null && partner !== me ? store.presence.get(partner) : null;
    updateAvatar(bigAvatar, isGroup ? threadId : partner, threadTitle(t), { online: p?.state === 'online', group: isGroup });
    setText(name, threadTitle(t));
    setText(sub, isGroup ? `Group · ${t.member_ids.length} members`
      : partner === me ? 'Messages to yourself' : `${userHandle(partner)} · ${presenceText(p)}`);
    if (!filled) {
      titleInput.value = t.title || '';
      nickInput.value = t.nickname || '';
      filled = true;
    }
    timerSel.value = String(t.disappearing_s || 0);
    if (![...timerSel.options].some((o) => o.value === timerSel.value)) {
      timerSel.append(h('option', { value: String(t.disappearing_s) }, `${t.disappearing_s} s`));
      timerSel.value = String(t.disappearing_s);
    }
    const keep = t.retention_days === null || t.retention_days === undefined ? '' : String(t.retention_days);
    if (![...keepSel.options].some((o) => o.value === keep)) {
      keepSel.append(h('option', { value: keep }, `${keep} days`));
    }
    keepSel.value = keep;
    muteBox.checked = t.is_muted;
    mentionsBox.checked = t.notify === 'mentions';
    mentionsBox.disabled = t.is_muted;
    groupPart.hidden = !isGroup;
    directPart.hidden = isGroup || partner === me || store.contacts.has(partner);
    if (!isGroup) return;

    setText(membersTitle, `Members (${t.member_ids.length})`);
    const ids = [...t.member_ids].sort((a, b) => (a === me ? -1 : b === me ? 1 : userName(a).localeCompare(userName(b))));
    reconcile(members, ids, (id) => id, (id) => h('li', { class: 'person' },
      avatar(id, ''),
      h('div', { class: 'person-text' }, h('span', { class: 'person-name' }), h('span', { class: 'person-sub' })),
      h('div', { class: 'person-actions' },
        id === me ? null : h('button', {
          type: 'button', class: 'btn small',
          onclick: async () => {
            const ok = await confirmDialog({
              title: 'Remove member?', text: `Remove ${userName(id)} from the group?`, okLabel: 'Remove', danger: true,
            });
            if (ok) act(() => removeMember(threadId, id), `${userName(id)} was removed.`);
          },
        }, 'Remove'))), (li, id) => {
      const pr = store.presence.get(id);
      updateAvatar(li.querySelector('.avatar'), id, userName(id), { online: id !== me && pr?.state === 'online' });
      setText(li.querySelector('.person-name'), id === me ? `${userName(id)} (you)` : userName(id));
      setText(li.querySelector('.person-sub'), id === me ? userHandle(id) : `${userHandle(id)} · ${presenceText(pr)}`);
      const b = li.querySelector('button');
      if (b) b.setAttribute('aria-label', `Remove ${userName(id)}`);
    });

    const exclude = new Set(t.member_ids);
    const key = [...exclude].sort().join(',');
    if (!picker || picker.key !== key) {
      picker = createPicker({ id: 'd-add', legend: 'Contacts not in the group', exclude });
      picker.key = key;
      pickerSlot.replaceChildren(picker.el);
    } else {
      picker.render();
    }
  }

  if (!store.threads.has(threadId)) fetchThread(threadId).then(render);
  render();
  if (ctx.focus !== false) title.focus();

  return {
    update(keys) {
      if (!store.threads.has(threadId) && keys.has(`thread:${threadId}`)) {
        ctx.navigate('#/chats');
        return;
      }
      if (keys.has(`thread:${threadId}`) || keys.has('users') || keys.has('contacts') ||
          keys.has('presence') || keys.has('clock')) render();
    },
    unmount() {},
  };
}
