// views/settings.js — the caller's profile, desktop notifications, the
// devices logged in to the account (GET /v1/sessions) with "log out" for
// each other device, and logging out of this one.

import { describeError } from '../api.js';
import {
  deleteAccount, exportAccount, listSessions, revokeSession,
} from '../actions.js';
import { avatar, confirmDialog, h, icon, reconcile, setText } from '../dom.js';
import { fullTime, presenceText } from '../format.js';
import { permission, requestPermission } from '../notify.js';
import { store } from '../store.js';

export function mountSettings(root, ctx) {
  const me = store.me;
  const error = h('p', { class: 'form-error', role: 'alert' });
  const sessions = h('ul', { class: 'people sessions', 'aria-labelledby': 's-devices-title' });
  const notifyText = h('p', { class: 'muted' });
  const notifyBtn = h('button', { type: 'button', class: 'btn' }, 'Enable desktop notifications');
  notifyBtn.addEventListener('click', async () => {
    await requestPermission();
    renderNotify();
  });
  const logoutBtn = h('button', { type: 'button', class: 'btn danger' }, icon('logout'), ' Log out');
  logoutBtn.addEventListener('click', () => ctx.logout());

  // Your data: a download of everything, and leaving for good.
  const exportBtn = h('button', { type: 'button', class: 'btn' }, 'Download my data');
  exportBtn.addEventListener('click', async () => {
    error.textContent = '';
    exportBtn.disabled = true;
    try {
      await exportAccount();
    } catch (err) {
      error.textContent = `Not downloaded: ${describeError(err)}`;
    } finally {
      exportBtn.disabled = false;
    }
  });
  const deletePw = h('input', { id: 's-delete-pw', type: 'password', autocomplete: 'current-password' });
  const deleteForm = h('form', { class: 'stack' },
    h('div', { class: 'field' }, h('label', { for: 's-delete-pw' }, 'Your password'), deletePw),
    h('button', { type: 'submit', class: 'btn danger' }, 'Delete my account'));
  deleteForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    if (!deletePw.value) {
      error.textContent = 'Type your password to delete your account.';
      return;
    }
    const ok = await confirmDialog({
      title: 'Delete your account?',
      text: 'You leave every chat, your messages are removed for everyone, and your username is freed. This cannot be undone.',
      okLabel: 'Delete for good',
      danger: true,
    });
    if (!ok) return;
    try {
      await deleteAccount(deletePw.value);
      ctx.logout();
    } catch (err) {
      error.textContent = err.status === 403 ? 'That is not your password.' : describeError(err);
    }
  });

  const view = h('section', { class: 'page', 'aria-labelledby': 'settings-title' },
    h('header', { class: 'page-head' },
      h('a', { href: '#/chats', class: 'icon-btn back', 'aria-label': 'Back to chats' }, icon('back')),
      h('h2', { id: 'settings-title', tabindex: '-1' }, 'Settings')),
    h('div', { class: 'page-body' },
      h('div', { class: 'profile' },
        avatar(me.id, me.display_name || me.username, { size: 'large' }),
        h('div', null,
          h('p', { class: 'profile-name' }, me.display_name || me.username),
          h('p', { class: 'profile-sub' }, `@${me.username}`))),
      error,
      h('section', { class: 'card', 'aria-labelledby': 's-notify-title' },
        h('h3', { class: 'section-title', id: 's-notify-title' }, 'Notifications'),
        notifyText, notifyBtn),
      h('section', { class: 'card', 'aria-labelledby': 's-devices-title' },
        h('h3', { class: 'section-title', id: 's-devices-title' }, 'Devices'),
        h('p', { class: 'muted small' }, 'Where your account is logged in. Log out a device you do not recognise.'),
        sessions),
      h('section', { class: 'card', 'aria-labelledby': 's-data-title' },
        h('h3', { class: 'section-title', id: 's-data-title' }, 'Your data'),
        h('p', { class: 'muted small' }, 'Your profile, contacts and chats with their messages, as a JSON file.'),
        exportBtn,
        h('h4', { class: 'sub-title' }, 'Delete your account'),
        deleteForm),
      h('div', { class: 'card' }, logoutBtn)));
  root.replaceChildren(view);

  function renderNotify() {
    const p = permission();
    notifyBtn.hidden = p !== 'default';
    notifyText.textContent = {
      granted: 'Desktop notifications are on: new messages show while this app is in the background. Mute a chat in its details to silence it.',
      denied: 'Desktop notifications are blocked in this browser’s site settings.',
      default: 'Get a desktop notification when a message arrives while this app is in the background.',
      unsupported: 'This browser cannot show desktop notifications here (they need HTTPS).',
    }[p];
  }

  let list = [];
  async function load() {
    try {
      list = await listSessions();
      error.textContent = '';
    } catch (e) {
      error.textContent = describeError(e);
    }
    render();
  }

  function render() {
    const sorted = [...list].sort((a, b) => (b.current - a.current) || b.last_seen_at - a.last_seen_at);
    reconcile(sessions, sorted, (s) => s.id, (s) => {
      const name = s.device_name || 'Unnamed device';
      return h('li', { class: 'person session' },
        h('span', { class: 'device-icon', 'aria-hidden': 'true' }, icon('device')),
        h('div', { class: 'person-text' },
          h('span', { class: 'person-name' }, name, s.current ? h('span', { class: 'tag' }, 'This device') : null),
          h('span', { class: 'person-sub' })),
        h('div', { class: 'person-actions' },
          s.current ? null : h('button', {
            type: 'button', class: 'btn small', 'aria-label': `Log out ${name}`,
            onclick: async () => {
              const ok = await confirmDialog({
                title: 'Log out this device?', text: `${name} will need the password to log in again.`, okLabel: 'Log out', danger: true,
              });
              if (!ok) return;
              try {
                await revokeSession(s.id);
                list = list.filter((x) => x.id !== s.id);
                render();
              } catch (e) {
                error.textContent = describeError(e);
              }
            },
          }, 'Log out')));
    }, (li, s) => {
      const seen = s.current ? 'active now' : presenceText({ state: 'offline', last_seen_at: s.last_seen_at }).replace('last seen', 'last active');
      setText(li.querySelector('.person-sub'), `Logged in ${fullTime(s.created_at)} · ${seen}`);
    });
  }

  renderNotify();
  load();
  if (ctx.focus !== false) view.querySelector('h2').focus();
  return {
    update(keys) {
      if (keys.has('clock')) render();
    },
    unmount() {},
  };
}
