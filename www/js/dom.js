// dom.js — how the app builds DOM. Safe by construction: text from users and
// the server only ever becomes a Text node or textContent, never markup —
// there is no innerHTML, insertAdjacentHTML or document.write in the app.
//
//   h('button', { class: 'x', onclick: fn, 'aria-label': 'Send' }, icon('send'))
//   reconcile(list, items, keyOf, create, update)   keyed, in-place list update
//   icon(name)        an inline SVG from the table below (aria-hidden)
//   avatar(id, name)  initials on a colour chosen by id
//   announce(text)    read out by screen readers (the aria-live region)
//   promptDialog / confirmDialog   modal <dialog>s that resolve to the answer

import { colorIndex, initials } from './format.js';

/** An element: props are attributes, `class`, `on<event>` listeners, or
 * properties (value, checked); children are nodes or text. */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) setProps(el, props);
  append(el, children);
  return el;
}

const PROPS = new Set(['value', 'checked', 'disabled', 'selected', 'indeterminate']);

function setProps(el, props) {
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) {
      if (PROPS.has(k)) el[k] = false;
      continue;
    }
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (PROPS.has(k)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Sets textContent only when it differs (keeps the DOM and screen readers calm). */
export function setText(el, text) {
  const s = String(text ?? '');
  if (el.textContent !== s) el.textContent = s;
}

/** Sets or removes an attribute only when it differs. */
export function setAttr(el, name, value) {
  if (value === null || value === undefined || value === false) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else {
    const s = value === true ? '' : String(value);
    if (el.getAttribute(name) !== s) el.setAttribute(name, s);
  }
}

/**
 * Makes parent's children match items, in order: an element per key, created
 * once by create(item), refreshed by update(el, item); others are removed.
 */
export function reconcile(parent, items, keyOf, create, update) {
  const existing = new Map();
  for (const child of parent.children) existing.set(child.dataset.key, child);
  let prev = null;
  for (const item of items) {
    const key = String(keyOf(item));
    let el = existing.get(key);
    if (el) existing.delete(key);
    else {
      el = create(item);
      el.dataset.key = key;
    }
    if (update) update(el, item);
    const want = prev ? prev.nextElementSibling : parent.firstElementChild;
    if (el !== want) parent.insertBefore(el, want);
    prev = el;
  }
  for (const el of existing.values()) el.remove();
}

const PATHS = {
  back: 'M20 11H7.8l5.6-5.6L12 4l-8 8 8 8 1.4-1.4L7.8 13H20z',
  send: 'M2 21l21-9L2 3v7l15 2-15 2z',
  info: 'M11 7h2v2h-2zm0 4h2v6h-2zm1-9a10 10 0 100 20 10 10 0 000-20zm0 18a8 8 0 110-16 8 8 0 010 16z',
  group: 'M16 11a3 3 0 100-6 3 3 0 000 6zm-8 0a3 3 0 100-6 3 3 0 000 6zm0 2c-2.3 0-7 1.2-7 3.5V19h14v-2.5C15 14.2 10.3 13 8 13zm8 0c-.3 0-.6 0-1 .1 1.2.8 2 2 2 3.4V19h6v-2.5c0-2.3-4.7-3.5-7-3.5z',
  contacts: 'M12 12a4 4 0 100-8 4 4 0 000 8zm0 2c-2.7 0-8 1.3-8 4v2h16v-2c0-2.7-5.3-4-8-4z',
  settings: 'M19.4 13a7.5 7.5 0 000-2l2.1-1.6-2-3.5-2.5 1a7.3 7.3 0 00-1.7-1L15 3h-4l-.4 2.7a7.3 7.3 0 00-1.7 1l-2.5-1-2 3.5L6.6 11a7.5 7.5 0 000 2l-2.1 1.6 2 3.5 2.5-1c.5.4 1.1.8 1.7 1L11 21h4l.4-2.7c.6-.3 1.2-.6 1.7-1l2.5 1 2-3.5zM13 15.5a3.5 3.5 0 110-7 3.5 3.5 0 010 7z',
  plus: 'M19 13h-6v6h-2v-6H5v-2h6V5h2v6h6z',
  chat: 'M20 2H4a2 2 0 00-2 2v18l4-4h14a2 2 0 002-2V4a2 2 0 00-2-2z',
  mute: 'M16.5 12A4.5 4.5 0 0014 8v2.2l2.5 2.5V12zM19 12c0 .9-.2 1.8-.5 2.6l1.5 1.5A8.8 8.8 0 0021 12a9 9 0 00-7-8.8v2.1A7 7 0 0119 12zM4.3 3L3 4.3 7.7 9H3v6h4l5 5v-6.7l4.3 4.3c-.7.5-1.4.9-2.3 1.2v2a9 9 0 003.7-1.8l2 2 1.3-1.3-9-9zM12 4L9.9 6.1 12 8.2z',
  down: 'M7.4 8.6L12 13.2l4.6-4.6L18 10l-6 6-6-6z',
  close: 'M19 6.4L17.6 5 12 10.6 6.4 5 5 6.4 10.6 12 5 17.6 6.4 19 12 13.4 17.6 19 19 17.6 13.4 12z',
  logout: 'M10 17l1.4-1.4L8.8 13H20v-2H8.8l2.6-2.6L10 7l-5 5zM4 5h8V3H4a2 2 0 00-2 2v14c0 1.1.9 2 2 2h8v-2H4z',
  clock: 'M12 2a10 10 0 100 20 10 10 0 000-20zm0 18a8 8 0 110-16 8 8 0 010 16zm.5-13H11v6l5.2 3.2.8-1.3-4.5-2.7z',
  device: 'M20 18a2 2 0 002-2V6a2 2 0 00-2-2H4a2 2 0 00-2 2v10a2 2 0 002 2H0v2h24v-2zM4 6h16v10H4z',
  alert: 'M12 2a10 10 0 100 20 10 10 0 000-20zm1 15h-2v-2h2zm0-4h-2V7h2z',
  attach: 'M16.5 6v11.5a4 4 0 01-8 0V5a2.5 2.5 0 015 0v10.5a1 1 0 01-2 0V6H10v9.5a2.5 2.5 0 005 0V5a4 4 0 00-8 0v12.5a5.5 5.5 0 0011 0V6z',
  mic: 'M12 14a3 3 0 003-3V5a3 3 0 00-6 0v6a3 3 0 003 3zm5-3a5 5 0 01-10 0H5a7 7 0 006 6.9V21h2v-3.1A7 7 0 0019 11z',
  stop: 'M6 6h12v12H6z',
  file: 'M14 2H6a2 2 0 00-2 2v16a2 2 0 002 2h12a2 2 0 002-2V8zm4 18H6V4h7v5h5z',
  search: 'M15.5 14h-.79l-.28-.27A6.47 6.47 0 0016 9.5 6.5 6.5 0 109.5 16c1.61 0 3.09-.59 4.23-1.57l.27.28v.79l5 4.99L20.49 19l-4.99-5zm-6 0C7.01 14 5 11.99 5 9.5S7.01 5 9.5 5 14 7.01 14 9.5 11.99 14 9.5 14z',
  more: 'M12 8a2 2 0 100-4 2 2 0 000 4zm0 2a2 2 0 100 4 2 2 0 000-4zm0 6a2 2 0 100 4 2 2 0 000-4z',
  reply: 'M10 9V5l-7 7 7 7v-4.1c5 0 8.5 1.6 11 5.1-1-5-4-10-11-11z',
};

/** An inline SVG icon, hidden from screen readers (label the button instead). */
export function icon(name, cls = 'icon') {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', cls);
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', PATHS[name] || '');
  svg.append(path);
  return svg;
}

/** A round avatar with initials; `online` adds the presence dot. */
export function avatar(id, name, { online = false, group = false, size = '' } = {}) {
  const el = h('span', { class: `avatar c${colorIndex(id)} ${size}`, 'aria-hidden': 'true' });
  updateAvatar(el, id, name, { online, group });
  return el;
}

export function updateAvatar(el, id, name, { online = false, group = false } = {}) {
  const color = `c${colorIndex(id)}`;
  if (!el.classList.contains(color)) {
    for (let i = 0; i < 8; i++) el.classList.remove(`c${i}`);
    el.classList.add(color);
  }
  const label = group && !name ? '' : initials(name);
  let txt = el.querySelector('.initials');
  if (!txt) {
    txt = h('span', { class: 'initials' });
    el.append(txt);
  }
  setText(txt, label);
  el.classList.toggle('group', group);
  let dot = el.querySelector('.dot');
  if (online && !dot) el.append(h('span', { class: 'dot' }));
  if (!online && dot) dot.remove();
}

/** Says text through the polite live region. */
export function announce(text) {
  const region = document.getElementById('announcer');
  if (!region) return;
  region.textContent = '';
  // A fresh text node in a later task is what screen readers notice.
  setTimeout(() => { region.textContent = text; }, 50);
}

function modal(build) {
  return new Promise((resolve) => {
    const back = document.activeElement;
    const dlg = h('dialog', { class: 'dialog' });
    const done = (v) => {
      dlg.close();
      dlg.remove();
      if (back && back.isConnected) back.focus();
      resolve(v);
    };
    dlg.addEventListener('cancel', (e) => { e.preventDefault(); done(null); });
    build(dlg, done);
    document.body.append(dlg);
    dlg.showModal();
  });
}

/** A modal asking for one line of text; resolves to it, or null when cancelled. */
export function promptDialog({ title, label, value = '', okLabel = 'Save', hint = '', maxLength = 200 }) {
  return modal((dlg, done) => {
    const id = `dlg-${Math.random().toString(36).slice(2)}`;
    const input = h('input', { id, type: 'text', value, maxlength: maxLength, autocomplete: 'off' });
    const form = h('form', { method: 'dialog', class: 'dialog-form' },
      h('h2', { class: 'dialog-title', id: `${id}-title` }, title),
      h('label', { for: id }, label),
      input,
      hint ? h('p', { class: 'hint' }, hint) : null,
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', class: 'btn', onclick: () => done(null) }, 'Cancel'),
        h('button', { type: 'submit', class: 'btn primary' }, okLabel)));
    form.addEventListener('submit', (e) => { e.preventDefault(); done(input.value); });
    dlg.setAttribute('aria-labelledby', `${id}-title`);
    dlg.append(form);
    setTimeout(() => { input.focus(); input.select(); }, 0);
  });
}

/** A modal yes/no question; resolves to true or false. */
export function confirmDialog({ title, text, okLabel = 'OK', danger = false }) {
  return modal((dlg, done) => {
    const id = `dlg-${Math.random().toString(36).slice(2)}`;
    const ok = h('button', { type: 'submit', class: `btn ${danger ? 'danger' : 'primary'}` }, okLabel);
    dlg.setAttribute('aria-labelledby', `${id}-title`);
    const form = h('form', { method: 'dialog', class: 'dialog-form' },
      h('h2', { class: 'dialog-title', id: `${id}-title` }, title),
      h('p', null, text),
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', class: 'btn', onclick: () => done(false) }, 'Cancel'),
        ok));
    form.addEventListener('submit', (e) => { e.preventDefault(); done(true); });
    dlg.append(form);
    setTimeout(() => ok.focus(), 0);
  }).then((v) => v === true);
}
