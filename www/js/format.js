// format.js — names and times as the UI shows them. Pure functions over the
// store; nothing here touches the DOM.

import { store } from './store.js';

/** What to call a user: the contact nickname, display name, or username. */
export function userName(id) {
  const c = store.contacts.get(id);
  if (c?.nickname) return c.nickname;
  const u = store.users.get(id);
  if (!u) return `User ${id}`;
  return u.display_name || u.username;
}

/** "@alice", or "" while unknown. */
export function userHandle(id) {
  const u = store.users.get(id);
  return u ? `@${u.username}` : '';
}

/** The other member of a direct thread (or the caller, for saved messages). */
export function directPartner(t) {
  return t.member_ids.find((id) => id !== store.me.id) ?? store.me.id;
}

/** The thread's name for the caller. */
export function threadTitle(t) {
  if (t.nickname) return t.nickname;
  if (t.kind === 'group') {
    if (t.title) return t.title;
    const others = t.member_ids.filter((id) => id !== store.me.id).map(userName);
    return others.length ? others.join(', ') : 'Group';
  }
  const other = directPartner(t);
  return other === store.me.id ? 'Saved messages' : userName(other);
}

/** Initials for an avatar. */
export function initials(name) {
  const parts = String(name).trim().split(/\s+/).filter(Boolean);
  const first = [...(parts[0] || '?')][0] || '?';
  const second = parts.length > 1 ? [...parts[parts.length - 1]][0] : '';
  return (first + (second || '')).toUpperCase();
}

/** A stable colour class index 0..7 for an id. */
export function colorIndex(id) {
  return ((Number(id) * 2654435761) >>> 0) % 8;
}

const sameDay = (a, b) => a.getFullYear() === b.getFullYear() &&
  a.getMonth() === b.getMonth() && a.getDate() === b.getDate();

function yesterday(now) {
  const y = new Date(now);
  y.setDate(y.getDate() - 1);
  return y;
}

/** 14:05 */
export function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** For the thread list: 14:05, Yesterday, Mon, 12/03/2026. */
export function shortTime(ms) {
  const d = new Date(ms);
  const now = new Date();
  if (sameDay(d, now)) return clock(ms);
  if (sameDay(d, yesterday(now))) return 'Yesterday';
  if (now - d < 6 * 86400000) return d.toLocaleDateString([], { weekday: 'short' });
  return d.toLocaleDateString([], { day: 'numeric', month: 'short', year: d.getFullYear() === now.getFullYear() ? undefined : 'numeric' });
}

/** For day separators: Today, Yesterday, Monday 12 March. */
export function dayLabel(ms) {
  const d = new Date(ms);
  const now = new Date();
  if (sameDay(d, now)) return 'Today';
  if (sameDay(d, yesterday(now))) return 'Yesterday';
  return d.toLocaleDateString([], {
    weekday: 'long', day: 'numeric', month: 'long',
    year: d.getFullYear() === now.getFullYear() ? undefined : 'numeric',
  });
}

/** A key that is the same for two times on the same local day. */
export function dayKey(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

/** "online", "last seen 5 minutes ago", "last seen yesterday at 14:05". */
export function presenceText(p) {
  if (!p) return '';
  if (p.state === 'online') return 'online';
  if (!p.last_seen_at) return 'offline';
  const ago = Date.now() - p.last_seen_at;
  if (ago < 60000) return 'last seen just now';
  if (ago < 3600000) {
    const m = Math.floor(ago / 60000);
    return `last seen ${m} minute${m === 1 ? '' : 's'} ago`;
  }
  const d = new Date(p.last_seen_at);
  const now = new Date();
  if (sameDay(d, now)) return `last seen today at ${clock(p.last_seen_at)}`;
  if (sameDay(d, yesterday(now))) return `last seen yesterday at ${clock(p.last_seen_at)}`;
  return `last seen ${d.toLocaleDateString([], { day: 'numeric', month: 'short', year: 'numeric' })}`;
}

/** A full date and time, for title attributes. */
export function fullTime(ms) {
  return new Date(ms).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}
