// notify.js — desktop notifications (the Notification API) for messages that
// arrive while no tab of the app is in view.
//
// Only the tab that runs the inbox poll shows them, so a message makes one
// notification however many tabs are open, and only when every tab is
// hidden: a visible tab says so to the others (through the inbox's
// BroadcastChannel) when it becomes visible and every 10 s while it stays so.
// Permission is asked from a button (browsers want a user gesture).

const tabs = new Map(); // tab id → ms when last heard visible
let post = () => {};
let leader = () => true;
let timer = null;
const tabId = Math.random().toString(36).slice(2);

/** Wires the module to the inbox: post(msg) to other tabs, leader() → bool. */
export function initNotify(opts) {
  post = opts.post;
  leader = opts.isLeader;
  const say = () => post({ type: 'visibility', tab: tabId, visible: !document.hidden });
  document.addEventListener('visibilitychange', say);
  clearInterval(timer);
  timer = setInterval(() => { if (!document.hidden) say(); }, 10000);
  say();
}

/** A visibility message from another tab. */
export function peerVisibility(msg) {
  if (msg.visible) tabs.set(msg.tab, Date.now());
  else tabs.delete(msg.tab);
}

function anyTabVisible() {
  if (!document.hidden) return true;
  const now = Date.now();
  for (const [id, at] of tabs) {
    if (now - at < 25000) return true;
    tabs.delete(id);
  }
  return false;
}

/** 'granted', 'denied', 'default' or 'unsupported'. */
export function permission() {
  return 'Notification' in window ? Notification.permission : 'unsupported';
}

/** Asks for permission; call from a click handler. */
export async function requestPermission() {
  if (!('Notification' in window)) return 'unsupported';
  return Notification.requestPermission();
}

/** Shows a notification when it should; onOpen runs when it is clicked. */
export function notifyMessage({ title, body, tag, onOpen }) {
  if (permission() !== 'granted' || !leader() || anyTabVisible()) return false;
  try {
    const n = new Notification(title, { body: body.slice(0, 200), tag, renotify: true });
    n.onclick = () => {
      window.focus();
      onOpen?.();
      n.close();
    };
    return true;
  } catch {
    return false; // some platforms only allow notifications from a service worker
  }
}
