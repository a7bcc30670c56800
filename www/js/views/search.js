// views/search.js — searching one's messages (GET /v1/search/messages):
// results newest first with the words found highlighted; a result opens
// its chat scrolled to the message. "More results" reads the next page.

import { api, describeError } from '../api.js';
import { h, icon, setText } from '../dom.js';
import { shortTime, threadTitle, userName } from '../format.js';
import { fetchThread, store } from '../store.js';

/** Text nodes and <mark>s: body with every occurrence of terms marked. */
export function highlighted(body, terms) {
  const lowerBody = body.toLowerCase();
  const words = [...terms].filter(Boolean).map((t) => t.toLowerCase()).sort((a, b) => b.length - a.length);
  const out = [];
  let plain = '';
  for (let i = 0; i < body.length;) {
    const w = lowerBody.length === body.length ? words.find((t) => lowerBody.startsWith(t, i)) : null;
    if (w) {
      if (plain) out.push(plain);
      plain = '';
      out.push(h('mark', null, body.slice(i, i + w.length)));
      i += w.length;
    } else {
      plain += body[i];
      i += 1;
    }
  }
  if (plain) out.push(plain);
  return out;
}

export function mountSearch(root, ctx) {
  const input = h('input', {
    id: 'search-input', type: 'search', placeholder: 'Search messages', autocomplete: 'off',
    maxlength: '256', 'aria-describedby': 'search-hint',
  });
  const status = h('p', { class: 'muted search-status', role: 'status' });
  const list = h('ol', { class: 'search-results', 'aria-label': 'Results' });
  const more = h('button', { type: 'button', class: 'link-btn', hidden: true }, 'More results');
  const form = h('form', { class: 'search-form', role: 'search' },
    h('label', { for: 'search-input', class: 'sr-only' }, 'Search messages'), input,
    h('button', { type: 'submit', class: 'btn primary' }, 'Search'));
  const view = h('section', { class: 'page search-page', 'aria-labelledby': 'search-title' },
    h('header', { class: 'page-head' },
      h('a', { href: '#/chats', class: 'icon-btn back', 'aria-label': 'Back to chats' }, icon('back')),
      h('h2', { id: 'search-title', tabindex: '-1' }, 'Search')),
    h('div', { class: 'page-body' }, form,
      h('p', { id: 'search-hint', class: 'hint' },
        'All words must be in the message. End a word with * to match its start; put a phrase in "quotes".'),
      status, list, more));
  root.replaceChildren(view);
  input.focus();

  let run = 0; // the newest search; older answers are dropped
  let next = null;
  let terms = [];

  async function search(q, cursor) {
    const mine = ++run;
    if (!cursor) {
      list.replaceChildren();
      setText(status, 'Searching…');
    }
    more.hidden = true;
    try {
      const params = new URLSearchParams({ q, limit: '20' });
      if (cursor) params.set('before', cursor);
      const r = await api('GET', `/search/messages?${params}`);
      if (mine !== run) return;
      terms = r.terms;
      next = r.next;
      for (const m of r.results) list.append(item(m));
      more.hidden = !next;
      const n = list.children.length;
      setText(status, n ? `${n}${next ? '+' : ''} message${n === 1 ? '' : 's'} found` : 'No message found.');
    } catch (err) {
      if (mine === run) setText(status, `Search failed: ${describeError(err)}`);
    }
  }

  function item(m) {
    let t = store.threads.get(m.thread_id);
    if (!t) fetchThread(m.thread_id);
    t = t || { id: m.thread_id, kind: 'group', title: 'A chat', member_ids: [] };
    return h('li', { class: 'search-result' },
      h('a', { href: `#/chats/${m.thread_id}/m/${m.seq}`, class: 'result-link' },
        h('span', { class: 'result-head' },
          h('span', { class: 'result-thread' }, threadTitle(t)),
          h('time', { class: 'result-time', datetime: new Date(m.created_at).toISOString() }, shortTime(m.created_at))),
        h('span', { class: 'result-sender' }, m.sender_id === store.me.id ? 'You' : userName(m.sender_id)),
        h('span', { class: 'result-body' }, ...highlighted(m.body, terms))));
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = input.value.trim();
    if (q) search(q, null);
  });
  more.addEventListener('click', () => {
    const q = input.value.trim();
    if (q && next) search(q, next);
  });

  return {
    update() {},
    unmount() { run++; },
  };
}
