// inbox.js — one long-poll per browser, however many tabs are open.
//
// The API allows one parked poll per session (a new poll answers the older
// one at once), and every tab of this browser shares one session
// (session.js). So the tabs elect a leader: the tab holding the Web Lock
// `chatd-inbox-<session_id>` runs the poll loop and publishes every answer on
// the BroadcastChannel `chatd-<session_id>`; the other tabs apply what they
// hear. When the leader tab closes, the browser hands the lock to a waiting
// tab, which resumes from the last cursor it heard: no event is lost, and at
// worst a few are applied twice (the store applies events idempotently).
// Without Web Locks (plain http on a host other than localhost is not a
// secure context) a lease in localStorage does the same job, more slowly.
//
// Life cycle:
//   const inbox = new Inbox(sessionId, { onEvents, onResync, onStatus, onPeer });
//   inbox.open();                  listen to the channel; events are held back
//   await inbox.initialCursor();   before the REST load: GET /v1/inbox, no since
//   …load the threads over REST…
//   inbox.start();                 apply held events; join the election
//   inbox.stop();                  logout: abort the poll, leave the election
//
// The loop: GET /v1/inbox?since=C&timeout=25. Network errors and 5xx back off
// exponentially with jitter (0.5 s … 30 s) and retry at once when the browser
// comes back online. 410 cursor_expired: fetch a fresh cursor, reload over
// REST (onResync), and tell the other tabs to reload too. 401: the session is
// gone, which api.js reports to the app.

import { api, ApiError, backoffMs, sleep } from './api.js';

const POLL_S = 25;
const LEASE_MS = 75000;

export class Inbox {
  /**
   * handlers.onEvents(events)       events from the stream, in order
   * handlers.onResync()             state must be reloaded over REST (async)
   * handlers.onStatus(state, info)  'connecting' | 'live' | 'offline'
   * handlers.onPeer(msg)            an app message another tab posted
   */
  constructor(sessionId, handlers) {
    this.sessionId = sessionId;
    this.h = handlers;
    this.cursor = null;
    this.started = false;
    this.held = [];
    this.leader = false;
    this.stopped = false;
    this.abort = new AbortController();
    this.wake = null;
    this.status = 'connecting';
    this.tab = Math.random().toString(36).slice(2);
    this.onOnline = () => this.wake?.abort();
  }

  open() {
    if ('BroadcastChannel' in window) {
      this.channel = new BroadcastChannel(`chatd-${this.sessionId}`);
      this.channel.onmessage = (e) => this.hear(e.data);
    }
    window.addEventListener('online', this.onOnline);
  }

  /** Takes the stream's current position; call before loading over REST. */
  async initialCursor() {
    const r = await api('GET', '/inbox', undefined, { signal: this.abort.signal, timeoutMs: 15000 });
    this.cursor = r.next;
  }

  start() {
    this.started = true;
    const held = this.held;
    this.held = [];
    for (const evs of held) this.h.onEvents(evs);
    this.elect().catch(() => {});
  }

  stop() {
    this.stopped = true;
    this.abort.abort();
    window.removeEventListener('online', this.onOnline);
    this.channel?.close();
  }

  /** Sends an app message to the other tabs of this session. */
  post(msg) {
    this.send({ k: 'app', msg });
  }

  send(m) {
    if (this.stopped || !this.channel) return;
    try {
      this.channel.postMessage(m);
    } catch {
      // Closed while the page unloads.
    }
  }

  /** True when this tab runs the poll. */
  isLeader() {
    return this.leader;
  }

  hear(m) {
    if (this.stopped || !m) return;
    switch (m.k) {
      case 'events':
        if (m.next) this.cursor = m.next;
        if (m.events.length) this.deliver(m.events);
        break;
      case 'resync':
        if (this.started) this.h.onResync();
        break;
      case 'status':
        this.setStatus(m.status, m.info, false);
        break;
      case 'hello':
        if (this.leader) this.send({ k: 'status', status: this.status, info: {} });
        break;
      case 'app':
        this.h.onPeer?.(m.msg);
        break;
      default:
    }
  }

  deliver(events) {
    if (this.started) this.h.onEvents(events);
    else this.held.push(events);
  }

  setStatus(status, info = {}, tell = true) {
    this.status = status;
    this.h.onStatus?.(status, info);
    if (tell && this.leader) this.send({ k: 'status', status, info });
  }

  async elect() {
    this.send({ k: 'hello' });
    const name = `chatd-inbox-${this.sessionId}`;
    const run = async () => {
      if (this.stopped) return;
      this.leader = true;
      try {
        await this.loop();
      } finally {
        this.leader = false;
      }
    };
    if (navigator.locks?.request) {
      await navigator.locks.request(name, { signal: this.abort.signal }, run);
    } else {
      await this.leaseElect(name, run);
    }
  }

  /** The fallback election: a lease in localStorage, renewed while leading. */
  async leaseElect(name, run) {
    const key = `chatd.lease.${name}`;
    const read = () => {
      try { return JSON.parse(localStorage.getItem(key) || 'null'); } catch { return null; }
    };
    const write = () => localStorage.setItem(key, JSON.stringify({ tab: this.tab, until: Date.now() + LEASE_MS }));
    while (!this.stopped) {
      const cur = read();
      if (!cur || cur.until < Date.now() || cur.tab === this.tab) {
        write();
        await sleep(150);
        if (read()?.tab === this.tab) {
          const renew = setInterval(write, 3000);
          const release = () => { if (read()?.tab === this.tab) localStorage.removeItem(key); };
          window.addEventListener('pagehide', release);
          this.stillLeader = () => read()?.tab === this.tab;
          try {
            await run();
          } finally {
            clearInterval(renew);
            window.removeEventListener('pagehide', release);
            release();
          }
          return;
        }
      }
      await sleep(1500 + Math.random() * 1500, this.abort.signal);
    }
  }

  async loop() {
    const signal = this.abort.signal;
    let failures = 0;
    let resync = false;
    while (!this.stopped) {
      if (this.stillLeader && !this.stillLeader()) return;
      try {
        if (this.cursor === null) {
          await this.initialCursor();
          resync = true;
        }
        if (resync) {
          this.send({ k: 'resync' });
          await this.h.onResync();
          resync = false;
        }
        const since = this.cursor;
        const t0 = Date.now();
        // Until the server has answered once, poll without waiting, so the
        // status turns 'live' as soon as it is reachable again.
        const wait = this.status === 'live' ? POLL_S : 0;
        const r = await api('GET', `/inbox?since=${encodeURIComponent(since)}&timeout=${wait}`,
          undefined, { signal, timeoutMs: (wait + 20) * 1000 });
        if (this.stopped) return;
        failures = 0;
        if (this.status !== 'live') this.setStatus('live');
        if (r.events.length || r.next !== since) {
          this.cursor = r.next;
          this.send({ k: 'events', events: r.events, next: r.next });
          if (r.events.length) this.deliver(r.events);
        }
        // An empty answer long before the timeout: another poll of this
        // session took over (a browser without a shared election). Do not spin.
        if (wait && !r.events.length && Date.now() - t0 < 1000) await sleep(1000, signal);
      } catch (e) {
        if (this.stopped) return;
        if (!(e instanceof ApiError)) console.error('inbox', e); // a bug: keep polling anyway
        if (e.code === 'cursor_expired') {
          this.cursor = null;
          continue;
        }
        if (e.status === 401) return;
        const wait = e.retryAfterS ? e.retryAfterS * 1000 : backoffMs(failures++);
        this.setStatus('offline', { retryAt: Date.now() + wait });
        this.wake = new AbortController();
        signal.addEventListener('abort', () => this.wake?.abort(), { once: true });
        await sleep(wait, this.wake.signal);
        this.wake = null;
        if (!this.stopped) this.setStatus('connecting');
      }
    }
  }
}
