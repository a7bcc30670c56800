// views/chat.js — one conversation: the history (older pages load when the
// user scrolls up), day separators, ticks on the caller's messages, the
// typing line, and the composer.
//
// Message actions (API.md "Message actions"): each message has a menu
// (the ⋯ button, or the context menu) with Reply, a row of reactions,
// Edit and Delete for everyone (the caller's own, within the server's
// windows), Delete for me, and Forward. A reply shows the quoted start of
// the original (live: an edit or a delete of the original shows); an edited
// message says "edited"; a deleted one "This message was deleted".
//
// Ticks on the caller's messages, from the receipts of the other members:
//   clock          not stored yet (sending, or waiting for the network)
//   ✓              stored by the server
//   ✓✓             delivered to every other member (one of their devices got it)
//   ✓✓ in blue     read by every other member
// In groups "k/n" follows: k of the n other members have read it.
//
// The thread is marked read up to the newest message shown whenever the
// chat is on screen in a visible tab. New messages from others are read out
// through the live region.

import {
  acceptRequest, declineRequest, deleteMessage, discardSend, editMessage, forwardMessage,
  hideMessage, markRead, react, retrySend, sendMessage, sendTyping, serverConfig,
} from '../actions.js';
import {
  attachmentLabel, fileSize, linkFor, Upload,
} from '../attachments.js';
import {
  announce, avatar, confirmDialog, h, icon, reconcile, setAttr, setText, updateAvatar,
} from '../dom.js';
import {
  clock, dayKey, dayLabel, directPartner, fullTime, presenceText, threadTitle, userName,
} from '../format.js';
import {
  chat, fetchThread, loadChat, loadOlder, snippetOf, sortedMessages, sortedThreads, store,
  typingUsers,
} from '../store.js';

const drafts = new Map(); // thread id → unsent text, while the page lives
const QUICK_REACTIONS = ['👍', '❤️', '😂', '😮', '😢', '🙏'];
let windows = { edit: 900, delete: 172800 }; // s, from GET /v1/config
serverConfig().then((c) => {
  windows = { edit: c.limits.message_edit_window_s, delete: c.limits.message_delete_window_s };
}).catch(() => {});

/** Whether a window of s seconds (0 = none) still runs for a message sent at ms. */
function within(s, at) {
  return s === 0 || Date.now() - at < s * 1000;
}

export function mountChat(root, threadId, ctx) {
  const me = store.me.id;
  let firstScrollDone = false;
  let lastMinSeq = Infinity;
  let lastMaxSeq = 0;
  let unreadFrom = null; // seq of the first unread message when the chat opened
  let atBottom = true;
  let missed = 0;
  let loadError = null;

  // ---- the elements ----
  const title = h('h2', { id: 'chat-title', class: 'chat-title', tabindex: '-1' });
  const sub = h('p', { class: 'chat-sub', id: 'chat-sub' });
  const head = h('header', { class: 'chat-head' },
    h('a', { href: '#/chats', class: 'icon-btn back', 'aria-label': 'Back to chats' }, icon('back')),
    avatar(threadId, ''),
    h('div', { class: 'chat-head-text' }, title, sub),
    h('span', { class: 'muted-mark', hidden: true, title: 'Muted' }, icon('mute'), h('span', { class: 'sr-only' }, 'Muted')),
    h('a', { href: `#/chats/${threadId}/details`, class: 'icon-btn', 'aria-label': 'Chat details' }, icon('info')));
  const headAvatar = head.querySelector('.avatar');
  const mutedMark = head.querySelector('.muted-mark');

  const olderBtn = h('button', { type: 'button', class: 'link-btn', onclick: () => older() }, 'Load older messages');
  const historyStatus = h('div', { class: 'history-status' });
  const list = h('ol', { class: 'msg-list', 'aria-labelledby': 'chat-title' });
  const scroller = h('div', {
    class: 'messages', tabindex: '0', role: 'region', 'aria-label': 'Messages',
  }, historyStatus, list);
  const jump = h('button', { type: 'button', class: 'jump', hidden: true, onclick: () => toBottom(true) },
    icon('down'), h('span', { class: 'jump-count' }));
  const typingLine = h('p', { class: 'typing', 'aria-live': 'polite' });
  const input = h('textarea', {
    id: 'composer-input', rows: 1, placeholder: 'Message', autocomplete: 'off',
    'aria-describedby': 'composer-hint',
  });
  const composerError = h('p', { class: 'form-error', role: 'alert' });
  const fileInput = h('input', {
    type: 'file', multiple: true, id: 'attach-input', class: 'sr-only', tabindex: '-1',
  });
  const attachBtn = h('button', { type: 'button', class: 'icon-btn attach-btn', 'aria-label': 'Attach files' }, icon('attach'));
  const micBtn = h('button', { type: 'button', class: 'icon-btn mic-btn', 'aria-label': 'Record a voice message' }, icon('mic'));
  const staged = h('ul', { class: 'staged', 'aria-label': 'Files to send' });
  // Replying to a message, or editing one of the caller's.
  const composeText = h('p', { class: 'compose-text' });
  const composeBar = h('div', { class: 'compose-bar', role: 'status', hidden: true },
    icon('reply'), composeText,
    h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Cancel', onclick: () => endCompose() }, icon('close')));
  // @mention suggestions: the members whose username or name starts with
  // what follows an "@" before the caret.
  const suggest = h('ul', { class: 'mention-suggest', role: 'listbox', id: 'mention-list', 'aria-label': 'Mention', hidden: true });
  let suggestions = [];
  let suggestAt = 0;
  function mentionQuery() {
    const before = input.value.slice(0, input.selectionStart);
    const m = /(^|[^A-Za-z0-9_.-])@([A-Za-z0-9_.-]{0,32})$/.exec(before);
    return m ? { q: m[2].toLowerCase(), start: before.length - m[2].length - 1 } : null;
  }
  function updateSuggest() {
    const t = store.threads.get(threadId);
    const mq = t ? mentionQuery() : null;
    suggestions = [];
    if (mq) {
      for (const id of t.member_ids) {
        const u = store.users.get(id);
        if (id === me || !u) continue;
        if (u.username.startsWith(mq.q) || (u.display_name || '').toLowerCase().startsWith(mq.q)) {
          suggestions.push({ name: u.username, label: `${userName(id)} @${u.username}` });
        }
      }
      if (t.kind === 'group' && 'all'.startsWith(mq.q)) suggestions.push({ name: 'all', label: '@all — everyone here' });
      suggestions = suggestions.slice(0, 6);
    }
    suggestAt = 0;
    renderSuggest();
  }
  function renderSuggest() {
    suggest.hidden = suggestions.length === 0;
    setAttr(input, 'aria-expanded', String(!suggest.hidden));
    suggest.replaceChildren(...suggestions.map((sg, i) => h('li', {
      role: 'option', id: `mention-${i}`, class: `mention-option${i === suggestAt ? ' active' : ''}`,
      'aria-selected': String(i === suggestAt),
      onmousedown: (e) => { e.preventDefault(); pickSuggest(i); },
    }, sg.label)));
    if (suggest.hidden) input.removeAttribute('aria-activedescendant');
    else setAttr(input, 'aria-activedescendant', `mention-${suggestAt}`);
  }
  function pickSuggest(i) {
    const mq = mentionQuery();
    if (!mq || !suggestions[i]) return;
    const after = input.value.slice(input.selectionStart);
    const text = `${input.value.slice(0, mq.start)}@${suggestions[i].name} `;
    input.value = text + after;
    input.setSelectionRange(text.length, text.length);
    suggestions = [];
    renderSuggest();
    input.focus();
  }
  let replyTo = null; // the message answered
  let editing = null; // the message being edited
  function startReply(m) {
    editing = null;
    replyTo = m;
    setText(composeText, `Replying to ${m.sender_id === me ? 'yourself' : userName(m.sender_id)}: ${snippetOf(m.body) || attachmentSummary(m)}`);
    composeBar.className = 'compose-bar replying';
    composeBar.hidden = false;
    input.focus();
  }
  function startEdit(m) {
    replyTo = null;
    editing = m;
    setText(composeText, `Editing: ${snippetOf(m.body)}`);
    composeBar.className = 'compose-bar editing';
    composeBar.hidden = false;
    input.value = m.body;
    fitInput();
    input.focus();
  }
  function endCompose() {
    if (editing) input.value = '';
    replyTo = null;
    editing = null;
    composeBar.hidden = true;
    fitInput();
  }
  function attachmentSummary(m) {
    return (m.attachments || []).map((a) => attachmentLabel(a)).join(', ');
  }
  const form = h('form', { class: 'composer', 'aria-label': 'Send a message' },
    h('label', { for: 'composer-input', class: 'sr-only' }, 'Message'),
    h('span', { id: 'composer-hint', class: 'sr-only' }, 'Enter sends, Shift+Enter starts a new line.'),
    fileInput, attachBtn, input, micBtn,
    h('button', { type: 'submit', class: 'send-btn', 'aria-label': 'Send' }, icon('send')));
  const view = h('section', { class: 'chat', 'aria-labelledby': 'chat-title' },
    head, h('div', { class: 'messages-wrap' }, scroller, jump), typingLine, composerError, staged,
    composeBar, suggest, form);
  // A message request: a stranger added the caller to this group.
  const requestText = h('p', { class: 'request-text' });
  const requestBar = h('div', { class: 'request-bar', role: 'region', 'aria-label': 'Message request', hidden: true },
    requestText,
    h('div', { class: 'request-actions' },
      h('button', { type: 'button', class: 'btn primary', onclick: () => answerRequest(() => acceptRequest(threadId)) }, 'Accept'),
      h('button', { type: 'button', class: 'btn', onclick: () => answerRequest(() => declineRequest(threadId, false)) }, 'Decline'),
      h('button', { type: 'button', class: 'btn danger', onclick: () => answerRequest(() => declineRequest(threadId, true)) }, 'Decline and block')));
  view.insertBefore(requestBar, composerError);
  async function answerRequest(fn) {
    try {
      await fn();
      if (!store.threads.has(threadId)) ctx.navigate('#/chats');
    } catch (err) {
      composerError.textContent = err.message;
    }
  }
  const viewer = h('dialog', { class: 'viewer', 'aria-label': 'Photo' },
    h('img', { alt: '' }),
    h('form', { method: 'dialog' }, h('button', { class: 'icon-btn viewer-close', 'aria-label': 'Close' }, icon('close'))));
  view.append(viewer);
  root.replaceChildren(view);
  input.value = drafts.get(threadId) || '';
  fitInput();

  // ---- behaviour ----
  scroller.addEventListener('scroll', () => {
    atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 60;
    if (atBottom) {
      missed = 0;
      jump.hidden = true;
    }
    if (scroller.scrollTop < 150) older();
  }, { passive: true });

  input.addEventListener('keydown', (e) => {
    if (!suggest.hidden) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        suggestAt = (suggestAt + (e.key === 'ArrowDown' ? 1 : suggestions.length - 1)) % suggestions.length;
        renderSuggest();
        return;
      }
      if (e.key === 'Enter' || e.key === 'Tab') {
        e.preventDefault();
        pickSuggest(suggestAt);
        return;
      }
      if (e.key === 'Escape') {
        e.preventDefault();
        suggestions = [];
        renderSuggest();
        return;
      }
    }
    if (e.key === 'Escape' && !composeBar.hidden) {
      e.preventDefault();
      endCompose();
      return;
    }
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  input.addEventListener('input', () => {
    fitInput();
    updateSuggest();
    if (input.value.trim()) sendTyping(threadId);
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const body = input.value.trim();
    composerError.textContent = '';
    if (editing) {
      const m = editing;
      if (!body && !m.attachments.length) return;
      editMessage(threadId, m.seq, body).then(() => endCompose(), (err) => {
        composerError.textContent = `Not edited: ${err.message}`;
      });
      return;
    }
    const files = uploads.filter((u) => u.state !== 'cancelled' && u.state !== 'failed');
    if (!body && !files.length) return;
    try {
      sendMessage(threadId, body, files, { replyTo });
    } catch (err) {
      composerError.textContent = err.message;
      return;
    }
    endCompose();
    uploads = [];
    renderStaged();
    input.value = '';
    fitInput();
    atBottom = true;
    input.focus();
  });

  // ---- attachments: the button, drop, paste, voice notes ----
  let uploads = [];
  function addFiles(files) {
    for (const f of files) {
      const u = new Upload(f);
      u.onChange(() => renderStaged());
      uploads.push(u);
    }
    renderStaged();
  }
  function renderStaged() {
    staged.replaceChildren(...uploads.filter((u) => u.state !== 'cancelled').map((u) => {
      const pct = u.size ? Math.floor((100 * u.sent) / u.size) : 100;
      return h('li', { class: `staged-item ${u.state}` },
        icon('file'),
        h('span', { class: 'staged-name' }, u.name),
        h('span', { class: 'staged-size' }, u.state === 'failed' ? `failed: ${u.error}` : fileSize(u.size)),
        h('progress', { max: '100', value: String(pct), 'aria-label': `${u.name}: ${pct}% uploaded` }),
        h('button', {
          type: 'button', class: 'icon-btn', 'aria-label': `Remove ${u.name}`,
          onclick: () => {
            u.cancel();
            uploads = uploads.filter((x) => x !== u);
            renderStaged();
          },
        }, icon('close')));
    }));
    staged.hidden = uploads.length === 0;
  }
  renderStaged();
  attachBtn.addEventListener('click', () => fileInput.click());
  fileInput.addEventListener('change', () => {
    addFiles([...fileInput.files]);
    fileInput.value = '';
  });
  view.addEventListener('dragover', (e) => {
    if (e.dataTransfer?.types.includes('Files')) e.preventDefault();
  });
  view.addEventListener('drop', (e) => {
    if (!e.dataTransfer?.files.length) return;
    e.preventDefault();
    addFiles([...e.dataTransfer.files]);
  });
  input.addEventListener('paste', (e) => {
    const files = [...(e.clipboardData?.files || [])];
    if (files.length) {
      e.preventDefault();
      addFiles(files);
    }
  });
  let recorder = null;
  micBtn.addEventListener('click', async () => {
    if (recorder) {
      recorder.stop();
      return;
    }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const chunks = [];
      recorder = new MediaRecorder(stream);
      recorder.ondataavailable = (e) => chunks.push(e.data);
      recorder.onstop = () => {
        stream.getTracks().forEach((t) => t.stop());
        const type = recorder.mimeType || 'audio/webm';
        recorder = null;
        micBtn.classList.remove('recording');
        micBtn.replaceChildren(icon('mic'));
        setAttr(micBtn, 'aria-label', 'Record a voice message');
        const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
        addFiles([new File(chunks, `voice-${stamp}.webm`, { type })]);
      };
      recorder.start();
      micBtn.classList.add('recording');
      micBtn.replaceChildren(icon('stop'));
      setAttr(micBtn, 'aria-label', 'Stop recording');
    } catch (err) {
      composerError.textContent = `Cannot record: ${err.message}`;
    }
  });

  function fitInput() {
    const lines = input.value.split('\n').length;
    input.rows = Math.min(6, Math.max(1, lines));
  }

  function toBottom(focusInput) {
    scroller.scrollTop = scroller.scrollHeight;
    atBottom = true;
    missed = 0;
    jump.hidden = true;
    if (focusInput) input.focus();
  }

  async function older() {
    const c = chat(threadId);
    if (!c.loaded || !c.hasOlder || c.loadingOlder) return;
    try {
      await loadOlder(threadId);
    } catch {
      // The button stays; the user may try again.
    }
  }

  const onVisible = () => render();
  document.addEventListener('visibilitychange', onVisible);
  window.addEventListener('focus', onVisible);

  // ---- rendering ----
  function render() {
    const t = store.threads.get(threadId);
    if (!t) return;
    const c = chat(threadId);
    const name = threadTitle(t);
    setText(title, name);
    const isGroup = t.kind === 'group';
    const partner = isGroup ? null : directPartner(t);
    const partnerPresence = partner !== null && partner !== me ? store.presence.get(partner) : null;
    updateAvatar(headAvatar, isGroup ? threadId : partner, name, {
      online: partnerPresence?.state === 'online', group: isGroup,
    });
    mutedMark.hidden = !t.is_muted;
    requestBar.hidden = !t.request;
    if (t.request) {
      setText(requestText, `${userName(t.request.from)} added you to this group, and is not in your `
        + 'contacts. Until you accept (or write here), your online status is not shared with '
        + 'its members and it sends you no notifications.');
    }

    const typers = typingUsers(threadId);
    let subText;
    if (typers.length) subText = isGroup ? typingText(typers) : 'typing…';
    else if (isGroup) subText = `${t.member_ids.length} members: ${memberNames(t)}`;
    else if (partner === me) subText = 'Messages to yourself';
    else subText = presenceText(partnerPresence);
    setText(sub, subText);
    sub.classList.toggle('is-typing', typers.length > 0);
    setText(typingLine, typers.length ? typingText(typers) : '');

    // The line at the top of the history (rebuilt only when it changes, so
    // that the "load older" button keeps the keyboard focus).
    const hs = loadError ? 'error' : !c.loaded ? 'loading' : c.loadingOlder ? 'older'
      : c.hasOlder ? 'more' : 'start';
    if (historyStatus.dataset.state !== hs) {
      historyStatus.dataset.state = hs;
      historyStatus.replaceChildren({
        error: () => h('p', { class: 'form-error' }, loadError),
        loading: () => h('p', { class: 'muted' }, 'Loading messages…'),
        older: () => h('p', { class: 'muted' }, 'Loading older messages…'),
        more: () => olderBtn,
        start: () => h('p', { class: 'muted start' }, 'This is the start of the conversation.'),
      }[hs]());
    }

    if (c.loaded && unreadFrom === null) {
      unreadFrom = t.unread_count > 0 ? t._read + 1 : 0;
    }

    const prevHeight = scroller.scrollHeight;
    const prevTop = scroller.scrollTop;
    const wasAtBottom = atBottom;

    reconcile(list, buildItems(t, c), (it) => it.key, createItem, (el, it) => updateItem(el, it, t));

    const msgs = c.messages;
    let incoming = 0;
    if (c.loaded && firstScrollDone) {
      for (let s = lastMaxSeq + 1; s <= c.maxSeq; s++) {
        const m = msgs.get(s);
        if (m && m.sender_id !== me) {
          incoming++;
          if (document.visibilityState === 'visible') announce(`${userName(m.sender_id)}: ${m.body}`);
        }
      }
    }

    if (c.loaded && !firstScrollDone) {
      firstScrollDone = true;
      const marker = list.querySelector('.unread-sep');
      if (marker && marker.offsetTop > scroller.clientHeight / 2) {
        scroller.scrollTop = marker.offsetTop - 40;
        atBottom = false;
      } else {
        toBottom(false);
      }
    } else if (c.minSeq < lastMinSeq && lastMinSeq !== Infinity && !wasAtBottom) {
      scroller.scrollTop = prevTop + (scroller.scrollHeight - prevHeight);
    } else if (wasAtBottom) {
      toBottom(false);
    } else if (incoming) {
      missed += incoming;
      jump.hidden = false;
      setText(jump.querySelector('.jump-count'), `${missed} new`);
      setAttr(jump, 'aria-label', `${missed} new message${missed === 1 ? '' : 's'}; scroll to the newest`);
    }
    if (c.loaded) {
      lastMinSeq = c.minSeq;
      lastMaxSeq = c.maxSeq;
    }

    // A first page too short to scroll: fetch more so scrolling up works.
    if (c.loaded && c.hasOlder && !c.loadingOlder && scroller.scrollHeight <= scroller.clientHeight) older();

    if (c.loaded && c.maxSeq > t._read && document.visibilityState === 'visible') {
      markRead(threadId, c.maxSeq);
    }
  }

  function buildItems(t, c) {
    const items = [];
    const stored = sortedMessages(threadId);
    const pending = [...c.pending.values()].sort((a, b) => a.created_at - b.created_at)
      .map((p) => ({ ...p, sender_id: me, seq: null, pending: p }));
    let day = null;
    let prev = null;
    for (const m of [...stored, ...pending]) {
      if (m.hidden) {
        items.push({ kind: 'hidden', key: `h:${m.seq}`, m });
        prev = null;
        continue;
      }
      const dk = dayKey(m.created_at);
      if (dk !== day) {
        items.push({ kind: 'day', key: `d:${dk}`, label: dayLabel(m.created_at) });
        day = dk;
        prev = null;
      }
      if (unreadFrom && m.seq === unreadFrom && m.sender_id !== me) {
        items.push({ kind: 'unread', key: 'unread' });
        prev = null;
      }
      const cont = prev && prev.sender_id === m.sender_id && m.created_at - prev.created_at < 300000;
      items.push({ kind: 'msg', key: `m:${m.sender_id}:${m.client_msg_id}`, m, cont, group: t.kind === 'group' });
      prev = m;
    }
    return items;
  }

  function createItem(it) {
    if (it.kind === 'day') {
      return h('li', { class: 'day-sep' }, h('span', null, it.label));
    }
    if (it.kind === 'unread') {
      return h('li', { class: 'unread-sep' }, h('span', null, 'Unread messages'));
    }
    if (it.kind === 'hidden') {
      return h('li', { class: 'msg-hidden' },
        h('span', null, 'You hid a message. '),
        h('button', {
          type: 'button', class: 'link-btn',
          onclick: () => hideMessage(threadId, it.m.seq, false).catch((err) => { composerError.textContent = err.message; }),
        }, 'Show it'));
    }
    const m = it.m;
    const mine = m.sender_id === me;
    const body = h('p', { class: 'msg-body' });
    const time = h('time', { class: 'msg-time' });
    const meta = h('span', { class: 'msg-meta' }, h('span', { class: 'msg-flags' }), time);
    if (mine) meta.append(h('span', { class: 'ticks' }));
    const bubble = h('div', { class: 'bubble' });
    if (!mine && it.group) bubble.append(h('span', { class: 'msg-sender' }));
    else bubble.append(h('span', { class: 'sr-only' }, mine ? 'You: ' : `${userName(m.sender_id)}: `));
    bubble.append(h('span', { class: 'msg-forwarded', hidden: true }, 'Forwarded'),
      h('button', { type: 'button', class: 'reply-quote', hidden: true }), body, meta);
    const more = h('button', {
      type: 'button', class: 'icon-btn msg-more', 'aria-label': 'Message actions', 'aria-haspopup': 'menu',
    }, icon('more'));
    const li = h('li', { class: `msg ${mine ? 'mine' : 'theirs'}` }, h('div', { class: 'msg-row' }, bubble, more),
      h('div', { class: 'reactions', role: 'group', 'aria-label': 'Reactions' }));
    more.addEventListener('click', () => openMenu(li.dataset.key, more));
    bubble.addEventListener('contextmenu', (e) => {
      if (!li.dataset.seq) return;
      e.preventDefault();
      openMenu(li.dataset.key, more);
    });
    return li;
  }

  // ---- the message menu ----
  const menu = h('div', { class: 'msg-menu', role: 'menu', hidden: true });
  view.append(menu);
  let menuFor = null;
  function messageByKey(key) {
    return sortedMessages(threadId).find((m) => !m.hidden && `m:${m.sender_id}:${m.client_msg_id}` === key);
  }
  function closeMenu() {
    if (menu.hidden) return;
    menu.hidden = true;
    menuFor?.focus();
    menuFor = null;
  }
  function act(fn) {
    return () => {
      closeMenu();
      Promise.resolve().then(fn).catch((err) => { composerError.textContent = err.message; });
    };
  }
  function openMenu(key, anchor) {
    const m = messageByKey(key);
    if (!m || m.deleted_at) return;
    const mine = m.sender_id === me;
    const item = (label, fn, cls = '') => h('button', { type: 'button', role: 'menuitem', class: `menu-item ${cls}`, onclick: act(fn) }, label);
    const emojis = h('div', { class: 'menu-reactions', role: 'group', 'aria-label': 'React' },
      ...QUICK_REACTIONS.map((e) => {
        const on = m.reactions.some((r) => r.emoji === e && r.user_ids.includes(me));
        return h('button', {
          type: 'button', role: 'menuitemcheckbox', 'aria-checked': String(on), 'aria-label': `React ${e}`,
          class: `menu-emoji${on ? ' on' : ''}`, onclick: act(() => react(threadId, m.seq, e, !on)),
        }, e);
      }));
    const items = [emojis, item('Reply', () => startReply(m))];
    if (mine && within(windows.edit, m.created_at)) items.push(item('Edit', () => startEdit(m)));
    items.push(item('Forward', () => chooseForward(m)));
    items.push(item('Delete for me', () => hideMessage(threadId, m.seq, true)));
    if (mine && within(windows.delete, m.created_at)) {
      items.push(item('Delete for everyone', async () => {
        if (await confirmDialog({
          title: 'Delete for everyone?', text: 'The message is removed from every member\'s devices.',
          okLabel: 'Delete', danger: true,
        })) await deleteMessage(threadId, m.seq);
      }, 'danger'));
    }
    menu.replaceChildren(...items);
    menu.hidden = false;
    menuFor = anchor;
    const box = anchor.getBoundingClientRect();
    const host = view.getBoundingClientRect();
    menu.style.top = `${Math.max(0, Math.min(box.bottom - host.top, host.height - menu.offsetHeight - 8))}px`;
    menu.style.left = `${Math.max(0, Math.min(box.left - host.left, host.width - menu.offsetWidth - 8))}px`;
    menu.querySelector('button')?.focus();
  }
  menu.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      closeMenu();
    }
  });
  document.addEventListener('pointerdown', (e) => {
    if (!menu.hidden && !menu.contains(e.target) && !e.target.closest?.('.msg-more')) closeMenu();
  });

  // Forward: pick one of the caller's chats.
  async function chooseForward(m) {
    const threads = sortedThreads().filter((t) => !t.request);
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'fwd-title' });
    const list = h('ul', { class: 'people forward-list' }, ...threads.map((t) => h('li', null,
      h('button', {
        type: 'button', class: 'person forward-target',
        onclick: async () => {
          dlg.close();
          dlg.remove();
          try {
            await forwardMessage(t.id, threadId, m.seq);
            ctx.flash?.(`Forwarded to ${threadTitle(t)}`);
          } catch (err) {
            composerError.textContent = `Not forwarded: ${err.message}`;
          }
        },
      }, avatar(t.kind === 'group' ? t.id : directPartner(t), threadTitle(t), { group: t.kind === 'group' }),
      h('span', { class: 'person-name' }, threadTitle(t))))));
    dlg.append(h('form', { method: 'dialog', class: 'dialog-form' },
      h('h2', { class: 'dialog-title', id: 'fwd-title' }, 'Forward to…'), list,
      h('div', { class: 'dialog-actions' }, h('button', { class: 'btn' }, 'Cancel'))));
    dlg.addEventListener('close', () => dlg.remove());
    document.body.append(dlg);
    dlg.showModal();
  }

  // A message's reactions: one chip per emoji with its count; the caller's
  // own are pressed; a click adds or takes back the caller's.
  function renderReactions(box, m) {
    const sig = JSON.stringify(m.reactions || []);
    if (box.dataset.sig === sig) return;
    box.dataset.sig = sig;
    box.replaceChildren(...(m.reactions || []).map((r) => {
      const on = r.user_ids.includes(me);
      const who = r.user_ids.map((id) => (id === me ? 'You' : userName(id))).join(', ');
      return h('button', {
        type: 'button', class: `reaction${on ? ' on' : ''}`, 'aria-pressed': String(on),
        title: who, 'aria-label': `${r.emoji} ${r.count}: ${who}`,
        onclick: () => react(threadId, m.seq, r.emoji, !on).catch((err) => { composerError.textContent = err.message; }),
      }, h('span', { class: 'reaction-emoji' }, r.emoji), h('span', { class: 'reaction-count' }, String(r.count)));
    }));
    box.hidden = !(m.reactions || []).length;
  }

  // A message's attachments: pictures as thumbnails that open full size,
  // voice notes and other sound as players, anything else as a card with
  // its name, size and type. Sources are signed links (attachments.js).
  function attachmentsOf(m) {
    const box = h('div', { class: 'attachments' });
    for (const a of m.attachments) {
      if (!a.id) { // still uploading
        box.append(h('div', { class: 'att-file pending' }, icon('file'),
          h('span', { class: 'att-name' }, a.filename), h('span', { class: 'att-meta' }, fileSize(a.size))));
      } else if (a.thumbnail_url) {
        const img = h('img', { alt: `${attachmentLabel(a)}: ${a.filename}`, width: String(Math.min(a.width || 320, 320)) });
        linkFor(a.id, true).then((u) => { img.src = u; }).catch(() => {});
        box.append(h('button', {
          type: 'button', class: 'att-image', 'aria-label': `Open ${a.filename}`,
          onclick: async () => {
            const full = viewer.querySelector('img');
            full.alt = a.filename;
            full.src = await linkFor(a.id);
            viewer.showModal();
          },
        }, img));
      } else if ((a.content_type || '').startsWith('audio/')) {
        const audio = h('audio', { controls: true, preload: 'none', 'aria-label': `${attachmentLabel(a)}: ${a.filename}` });
        linkFor(a.id).then((u) => { audio.src = u; }).catch(() => {});
        box.append(h('div', { class: 'att-audio' }, audio));
      } else {
        const link = h('a', { class: 'att-file', download: a.filename, rel: 'noopener' },
          icon('file'), h('span', { class: 'att-name' }, a.filename),
          h('span', { class: 'att-meta' }, `${fileSize(a.size)} · ${a.content_type}`));
        linkFor(a.id).then((u) => { link.href = u; }).catch(() => {});
        box.append(link);
      }
    }
    return box;
  }

  function updateItem(el, it, t) {
    if (it.kind !== 'msg') {
      if (it.kind === 'day') setText(el.firstChild, it.label);
      return;
    }
    if (it.kind === 'hidden') return;
    const m = it.m;
    const mine = m.sender_id === me;
    el.dataset.key = it.key;
    const body = el.querySelector('.bubble .msg-body');
    el.classList.toggle('deleted', Boolean(m.deleted_at));
    el.classList.toggle('mentions-me', !mine && Boolean(m.mentions?.all || m.mentions?.user_ids.includes(me)));
    setText(body, m.deleted_at ? 'This message was deleted' : m.body);
    body.hidden = !m.body && !m.deleted_at;
    setText(el.querySelector('.msg-flags'), m.deleted_at ? '' : m.edited_at ? 'edited' : '');
    el.querySelector('.msg-forwarded').hidden = !m.forwarded || Boolean(m.deleted_at);
    el.querySelector('.msg-more').hidden = m.seq === null || Boolean(m.deleted_at);
    const quote = el.querySelector('.reply-quote');
    const rt = m.deleted_at ? null : m.reply_to;
    quote.hidden = !rt;
    if (rt) {
      const who = rt.sender_id === me ? 'You' : rt.sender_id ? userName(rt.sender_id) : 'Someone';
      const text = rt.deleted ? 'This message was deleted' : rt.snippet || 'Attachment';
      if (quote.dataset.text !== `${who}\n${text}`) {
        quote.dataset.text = `${who}\n${text}`;
        quote.replaceChildren(h('span', { class: 'quote-who' }, who), h('span', { class: 'quote-text' }, text));
        setAttr(quote, 'aria-label', `Reply to ${who}: ${text}. Show the original.`);
      }
      quote.onclick = () => {
        const target = list.querySelector(`li[data-seq="${rt.seq}"]`);
        if (target) {
          target.scrollIntoView({ block: 'center' });
          target.classList.add('flash');
          setTimeout(() => target.classList.remove('flash'), 1500);
        }
      };
    }
    renderReactions(el.querySelector('.reactions'), m);
    // Attachments: rebuilt when they change (a pending message's files
    // become the stored message's attachments).
    const sig = (m.attachments || []).map((a) => a.id || 'pending').join(',');
    if ((el.dataset.att || '') !== sig) {
      el.dataset.att = sig;
      el.querySelector('.attachments')?.remove();
      if (sig && !m.deleted_at) el.querySelector('.bubble .msg-body').before(attachmentsOf(m));
    }
    el.classList.toggle('cont', Boolean(it.cont));
    if (m.seq !== null) el.dataset.seq = m.seq;
    else delete el.dataset.seq;
    const sender = el.querySelector('.msg-sender');
    if (sender) {
      setText(sender, userName(m.sender_id));
      sender.hidden = Boolean(it.cont);
      sender.classList.add(`c${(m.sender_id * 7) % 8}`);
    }
    const time = el.querySelector('.msg-time');
    setText(time, clock(m.created_at));
    setAttr(time, 'datetime', new Date(m.created_at).toISOString());
    setAttr(time, 'title', fullTime(m.created_at));
    if (!mine) return;
    const ticks = el.querySelector('.ticks');
    const st = tickState(t, m);
    if (ticks.dataset.state !== st.state || ticks.dataset.text !== st.text) {
      ticks.dataset.state = st.state;
      ticks.dataset.text = st.text;
      ticks.replaceChildren();
      if (st.icon) ticks.append(icon(st.icon, 'tick-icon'));
      else ticks.append(h('span', { class: 'tick-marks', 'aria-hidden': 'true' }, st.marks));
      if (st.count) ticks.append(h('span', { class: 'tick-count', 'aria-hidden': 'true' }, st.count));
      ticks.append(h('span', { class: 'sr-only' }, st.label));
      ticks.className = `ticks ${st.state}`;
      setAttr(ticks, 'title', st.label);
    }
    let fail = el.querySelector('.msg-failed');
    if (m.pending?.state === 'failed') {
      if (!fail) {
        fail = h('div', { class: 'msg-failed' },
          h('span', { class: 'fail-text' }),
          h('button', { type: 'button', class: 'link-btn', onclick: () => retrySend(threadId, m.client_msg_id) }, 'Retry'),
          h('button', { type: 'button', class: 'link-btn', onclick: () => discardSend(threadId, m.client_msg_id) }, 'Delete'));
        el.append(fail);
      }
      setText(fail.querySelector('.fail-text'), `Not sent: ${m.pending.error || 'error'}`);
    } else if (fail) {
      fail.remove();
    }
  }

  function tickState(t, m) {
    if (m.pending) {
      if (m.pending.state === 'failed') return { state: 'failed', icon: 'alert', label: 'Not sent', text: 'f' };
      if (m.pending.state === 'waiting') return { state: 'sending', icon: 'clock', label: 'Waiting for the network', text: 'w' };
      return { state: 'sending', icon: 'clock', label: 'Sending', text: 's' };
    }
    const others = t.member_ids.filter((id) => id !== me);
    if (!others.length) return { state: 'sent', marks: '✓', label: 'Sent', text: '1' };
    const rec = store.receipts.get(threadId) || new Map();
    let delivered = 0;
    let read = 0;
    for (const id of others) {
      const r = rec.get(id);
      if (!r) continue;
      if (r.read_seq >= m.seq) read++;
      if (r.delivered_seq >= m.seq || r.read_seq >= m.seq) delivered++;
    }
    const n = others.length;
    const state = read === n ? 'read' : delivered === n ? 'delivered' : 'sent';
    const marks = state === 'sent' ? '✓' : '✓✓';
    if (t.kind !== 'group') {
      const label = { read: 'Read', delivered: 'Delivered', sent: 'Sent' }[state];
      return { state, marks, label, text: marks };
    }
    return {
      state,
      marks,
      count: `${read}/${n}`,
      label: `Read by ${read} of ${n}, delivered to ${delivered} of ${n}`,
      text: `${marks}${read}/${delivered}/${n}`,
    };
  }

  function typingText(ids) {
    const names = ids.map(userName);
    if (names.length === 1) return `${names[0]} is typing…`;
    if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
    return `${names.length} people are typing…`;
  }

  function memberNames(t) {
    const names = t.member_ids.map((id) => (id === me ? 'You' : userName(id)));
    return names.length > 6 ? `${names.slice(0, 6).join(', ')}…` : names.join(', ');
  }

  // ---- start ----
  async function start() {
    if (!store.threads.has(threadId)) {
      await fetchThread(threadId);
      if (!store.threads.has(threadId)) {
        view.replaceChildren(h('div', { class: 'empty-pane' },
          h('h2', { tabindex: '-1' }, 'Chat not found'),
          h('p', null, 'It does not exist, or you are no longer a member.'),
          h('a', { href: '#/chats', class: 'btn' }, 'Back to chats')));
        return;
      }
    }
    render();
    try {
      await loadChat(threadId);
      loadError = null;
    } catch {
      loadError = 'Could not load the messages. They will load when the connection is back.';
    }
    render();
    if (ctx.jumpTo) await jumpTo(ctx.jumpTo);
  }

  // Opened at one message (a search result): older pages load until it is
  // there, then it is scrolled to and flashes.
  async function jumpTo(seq) {
    const c = chat(threadId);
    for (let i = 0; i < 200 && c.loaded && c.minSeq > seq && c.hasOlder; i++) {
      if (!(await loadOlder(threadId))) break;
    }
    render();
    const target = list.querySelector(`li[data-seq="${seq}"]`);
    if (!target) return;
    atBottom = false;
    target.scrollIntoView({ block: 'center' });
    target.classList.add('flash');
    setTimeout(() => target.classList.remove('flash'), 2000);
  }
  start();
  if (ctx.focus !== false) {
    if (window.matchMedia('(min-width: 720px)').matches) input.focus();
    else title.focus();
  }

  return {
    update(keys) {
      if (!store.threads.has(threadId) && keys.has(`thread:${threadId}`) && firstScrollDone) {
        ctx.flash('You are no longer in that chat.');
        ctx.navigate('#/chats');
        return;
      }
      if (loadError && keys.has('conn') && store.connection.status === 'live') {
        loadError = null;
        loadChat(threadId).catch(() => {}).finally(render);
      }
      const c = store.chats.get(threadId);
      if (c && !c.loaded && !c.loading && keys.has(`thread:${threadId}`)) {
        // Reloaded after a lost cursor.
        firstScrollDone = false;
        lastMinSeq = Infinity;
        lastMaxSeq = 0;
        loadChat(threadId).catch(() => {});
      }
      if (keys.has(`thread:${threadId}`) || keys.has('users') || keys.has('contacts') ||
          keys.has('presence') || keys.has('clock') || keys.has('threads')) render();
    },
    unmount() {
      if (input.value.trim()) drafts.set(threadId, input.value);
      else drafts.delete(threadId);
      document.removeEventListener('visibilitychange', onVisible);
      window.removeEventListener('focus', onVisible);
    },
  };
}
