// chat.test.mjs — the browser app end to end: headless Chromium (Debian's,
// driven by playwright-core) against nginx in front of chatd, as run.sh sets
// them up (E2E_BASE_URL: https with a self-signed certificate, which the
// browser contexts accept; E2E_HTTP_URL: plain HTTP, redirecting to it). Two browser contexts are two people on two
// computers; a second page in one context is a second tab.
//
// The tests run in order and share the people they create: each builds on
// the state the ones before left. Screenshots of the main screens go to
// E2E_SCREENSHOTS (docs/screenshots/ by default).

import zlib from 'node:zlib';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';

const BASE = process.env.E2E_BASE_URL;
const SHOTS = process.env.E2E_SCREENSHOTS || new URL('../../docs/screenshots/', import.meta.url).pathname;
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const T = { timeout: 60000 };
const WAIT = 10000;

assert.ok(BASE, 'E2E_BASE_URL must name the nginx in front of chatd (run tests/e2e/run.sh)');
mkdirSync(SHOTS, { recursive: true });

let browser;
const people = {};
const errors = [];
let dialogs = 0;

// ---- helpers ----

/** Polls fn until it returns a truthy value; throws the last failure. */
async function eventually(fn, what, timeout = WAIT) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = new Error(`not yet: ${what}`);
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}: ${last.message}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function newContext(opts = {}) {
  const ctx = await browser.newContext({
    viewport: { width: 1200, height: 780 },
    locale: 'en-GB',
    timezoneId: 'Europe/London',
    ignoreHTTPSErrors: true, // run.sh's self-signed certificate
    ...opts,
  });
  return ctx;
}

async function newPage(ctx, who) {
  const page = await ctx.newPage();
  page.on('pageerror', (e) => errors.push(`${who}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource|net::ERR_FAILED/.test(m.text())) {
      errors.push(`${who} console: ${m.text()}`);
    }
  });
  page.on('dialog', async (d) => {
    dialogs++;
    await d.dismiss();
  });
  return page;
}

async function shot(page, name) {
  await page.evaluate(() => document.activeElement?.blur?.());
  await page.screenshot({ path: `${SHOTS}/${name}.png` });
}

/** The API through nginx, as a person's session (for setting up data);
 * base: chatd itself (E2E_CHATD_URL) for bulk set-up that would pass nginx's
 * limits per address, which every browser of the tests shares. */
async function apiCall(token, method, path, body, base = BASE) {
  const res = await fetch(`${base}/v1${path}`, {
    method,
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function tokenOf(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem('chatd.session')).token);
}

const threadItem = (page, name) => page.locator('.thread-item', { has: page.locator('.ti-name', { hasText: name }) });
const messages = (page) => page.locator('.msg-list .msg');
const lastMine = (page) => page.locator('.msg.mine').last();

async function openThread(page, name) {
  await threadItem(page, name).click();
  await page.locator('#chat-title', { hasText: name }).waitFor({ timeout: WAIT });
}

async function send(page, text) {
  const box = page.locator('#composer-input');
  await box.fill(text);
  await box.press('Enter');
}

async function waitMessage(page, text) {
  await page.locator('.msg-body', { hasText: text }).first().waitFor({ timeout: WAIT });
}

// ---- set-up ----

before(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-default-apps', '--disable-extensions', '--mute-audio',
      // A fake microphone that needs no permission prompt, for voice notes.
      '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    ],
  });
});

after(async () => {
  await browser?.close();
});

// ---- the tests ----

test('register two people in two browsers; login screen', T, async () => {
  for (const [key, name, display] of [['alice', 'alice', 'Alice Liddell'], ['bob', 'bob', 'Bob Builder']]) {
    const ctx = await newContext();
    const page = await newPage(ctx, key);
    await page.goto(`${BASE}/`);
    await page.getByRole('heading', { name: 'Log in' }).waitFor();
    if (key === 'alice') await shot(page, 'login');
    await page.getByRole('link', { name: 'Create an account' }).click();
    await page.getByLabel('Username').fill(name);
    await page.getByLabel('Display name').fill(display);
    await page.getByLabel('Password').fill('correct horse battery');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('heading', { name: 'Chats' }).waitFor({ timeout: WAIT });
    people[key] = { ctx, page, display };
  }
  // A third person, through the API only, for a group of three.
  await apiCall(null, 'POST', '/users', { username: 'carol', password: 'correct horse battery', display_name: 'Carol Danvers' });
  const s = await apiCall(null, 'POST', '/sessions', { username: 'carol', password: 'correct horse battery', device_name: 'script' });
  assert.equal(s.status, 201);
  people.carol = { token: s.body.token, id: s.body.user.id };
});

test('served by nginx with security headers and the 1 MiB limit, and by chatd itself', T, async () => {
  const r = await fetch(`${BASE}/some/client/route`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/html/);
  assert.match(r.headers.get('content-security-policy'), /frame-ancestors 'none'/);
  assert.match(r.headers.get('content-security-policy'), /script-src 'self'/);
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(r.headers.get('x-frame-options'), 'DENY');
  assert.equal(r.headers.get('referrer-policy'), 'no-referrer');
  assert.match(r.headers.get('strict-transport-security'), /^max-age=\d+$/);
  const js = await fetch(`${BASE}/js/app.js`);
  assert.match(js.headers.get('content-type'), /^text\/javascript/);
  const big = await fetch(`${BASE}/v1/users`, { method: 'POST', body: 'x'.repeat(1024 * 1024 + 1) });
  assert.equal(big.status, 413);
  assert.equal((await big.json()).code, 'payload_too_large');
  assert.equal(big.headers.get('x-content-type-options'), 'nosniff'); // on errors too
  assert.match(big.headers.get('strict-transport-security'), /^max-age=/);
  // Plain HTTP only redirects to HTTPS; a browser that follows lands on the app.
  const plain = await fetch(`${process.env.E2E_HTTP_URL}/js/app.js?v=1`, { redirect: 'manual' });
  assert.equal(plain.status, 301);
  assert.equal(plain.headers.get('location'), `${BASE}/js/app.js?v=1`);
  assert.equal((await fetch(`${BASE}/readyz`)).status, 200);

  // chatd at / without nginx: the same app (its CSP comes from the meta tag).
  const ctx = await newContext();
  const page = await newPage(ctx, 'direct');
  await page.goto(`${process.env.E2E_CHATD_URL}/`);
  await page.getByRole('heading', { name: 'Log in' }).waitFor();
  // A browser sent to plain HTTP lands on the app over HTTPS, a secure
  // context (Web Locks, notifications).
  await page.goto(`${process.env.E2E_HTTP_URL}/`);
  await page.getByRole('heading', { name: 'Log in' }).waitFor();
  assert.equal(new URL(page.url()).origin, BASE);
  assert.equal(await page.evaluate(() => window.isSecureContext), true);
  await ctx.close();
});

test('they find each other by username and add each other as contacts', T, async () => {
  const addContact = async (page, username, display) => {
    await page.getByRole('link', { name: 'Contacts' }).click();
    await page.getByLabel('Find people by username').fill(username); // strangers are found by the exact username
    await page.getByRole('button', { name: `Add ${display} to contacts` }).click();
    await page.locator('.people[aria-label="Your contacts"] .person-name', { hasText: display }).waitFor({ timeout: WAIT });
  };
  await addContact(people.alice.page, 'bob', 'Bob Builder');
  await addContact(people.alice.page, 'carol', 'Carol Danvers');
  await addContact(people.bob.page, 'alice', 'Alice Liddell');

  const a = people.alice.page;
  // Bob is online (his tab polls), Carol has been seen only through the API.
  await eventually(async () => (await a.locator('.person', { hasText: 'Bob Builder' }).locator('.person-sub').textContent()).includes('online'), 'Bob online');
  // Search the contacts by nickname-free name and by @username.
  await a.getByRole('searchbox', { name: 'Search contacts' }).fill('@car');
  await eventually(async () => (await a.locator('.people[aria-label="Your contacts"] .person').count()) === 1, 'one match');
  await a.getByRole('searchbox', { name: 'Search contacts' }).fill('');
  await a.getByLabel('Find people by username').fill('');
  // Alice declines the notifications banner; it stays away after a reload.
  await a.getByRole('button', { name: 'Not now' }).click();
  await shot(a, 'contacts');
});

test('a direct chat: the message shows at once and arrives live in the other window', T, async () => {
  const a = people.alice.page;
  const b = people.bob.page;
  await a.getByRole('button', { name: 'Message Bob Builder' }).click();
  await a.locator('#chat-title', { hasText: 'Bob Builder' }).waitFor({ timeout: WAIT });
  await send(a, 'Hi Bob! Lunch today? Crème brûlée on me');
  await waitMessage(a, 'Hi Bob! Lunch today?');

  // Bob is on his thread list: the thread appears with an unread badge,
  // the preview, and Alice's online dot.
  const item = threadItem(b, 'Alice Liddell');
  await item.waitFor({ timeout: WAIT });
  await eventually(async () => (await item.locator('.badge').textContent()) === '1', 'badge 1');
  assert.match(await item.locator('.ti-preview').textContent(), /Lunch today/);
  await eventually(async () => (await item.locator('.avatar .dot').count()) === 1, 'online dot');
  assert.equal(await a.locator('.thread-item.unread').count(), 0);
});

test('ticks: ✓ stored, ✓✓ delivered, blue when the other opens the chat', T, async () => {
  const a = people.alice.page;
  const b = people.bob.page;
  // Bob's browser has acknowledged the message through its poll.
  await eventually(async () => (await lastMine(a).locator('.ticks').getAttribute('data-state')) === 'delivered', 'delivered');
  await shot(b, 'threads');
  await openThread(b, 'Alice Liddell');
  await waitMessage(b, 'Hi Bob! Lunch today?');
  await eventually(async () => (await lastMine(a).locator('.ticks').getAttribute('data-state')) === 'read', 'read');
  assert.equal(await lastMine(a).locator('.ticks.read').count(), 1);
  await eventually(async () => (await threadItem(b, 'Alice Liddell').locator('.badge').isHidden()), 'badge cleared');

  await send(b, 'Sure, 12:30 at the noodle place?');
  await waitMessage(a, 'Sure, 12:30 at the noodle place?');
  await send(a, 'Perfect, see you there');
  await eventually(async () => (await lastMine(a).locator('.ticks').getAttribute('data-state')) === 'read', 'read again');
  await shot(a, 'chat');
});

test('typing shows in the other window', T, async () => {
  const a = people.alice.page;
  const b = people.bob.page;
  await b.locator('#composer-input').pressSequentially('I am typ', { delay: 30 });
  await eventually(async () => (await a.locator('#chat-sub').textContent()) === 'typing…', 'typing in header');
  assert.match(await threadItem(a, 'Bob Builder').locator('.ti-preview').textContent(), /typing/);
  await b.locator('#composer-input').fill('');
});

test('the inbox backs off while the network is down, then resumes', T, async () => {
  const a = people.alice.page;
  const b = people.bob.page;
  let refused = 0;
  await a.route('**/v1/inbox?*', (route) => {
    refused++;
    return route.abort('internetdisconnected');
  });
  // The poll parked now still answers; the ones after it fail.
  await send(b, 'Before the outage');
  await waitMessage(a, 'Before the outage');
  await a.locator('.conn.offline').waitFor({ timeout: WAIT });
  const n0 = refused;
  await a.waitForTimeout(2500);
  assert.ok(refused - n0 <= 4, `backed off: ${refused - n0} tries in 2.5 s`);
  await send(b, 'During the outage');
  // "Retry now" tries at once (and fails again, still cut off).
  const n1 = refused;
  await a.getByRole('button', { name: 'Retry now' }).click();
  await eventually(async () => refused > n1, 'a try at once', 1000);
  // The network comes back: the browser's online event resumes the poll
  // without waiting out the backoff.
  await a.unroute('**/v1/inbox?*');
  await a.evaluate(() => window.dispatchEvent(new Event('online')));
  await waitMessage(a, 'During the outage');
  await a.locator('.conn').waitFor({ state: 'hidden', timeout: WAIT });
});

test('message text is text: markup shows literally and runs nothing', T, async () => {
  const a = people.alice.page;
  const b = people.bob.page;
  const evil = '<img src=x onerror=alert(1)> <b>bold?</b>';
  await send(a, evil);
  await waitMessage(b, '<img src=x onerror=alert(1)>');
  const body = b.locator('.msg-body', { hasText: 'onerror' }).last();
  assert.equal(await body.textContent(), evil);
  assert.equal(await b.locator('.msg-list img, .msg-list b').count(), 0);
  await eventually(async () => (await threadItem(b, 'Alice Liddell').locator('.ti-preview').textContent()).includes('<img src=x'), 'preview as text');
  await b.waitForTimeout(300);
  assert.equal(dialogs, 0, 'no alert() ran');
});

test('message actions: reply, react, edit, delete for everyone, forward, delete for me', T, async () => {
  const a = people.alice.page;
  const b = people.bob.page;
  const msg = (page, text) => page.locator('.msg', { has: page.locator('.msg-body', { hasText: text }) }).last();
  async function menu(page, text) {
    const li = msg(page, text);
    await li.hover();
    await li.getByRole('button', { name: 'Message actions' }).click();
    await page.getByRole('menu').waitFor({ timeout: WAIT });
  }
  await send(a, 'Shall we book the table?');
  await waitMessage(b, 'Shall we book the table?');

  // Bob replies from the message's menu: the quote shows on both sides.
  await menu(b, 'Shall we book the table?');
  await b.getByRole('menuitem', { name: 'Reply' }).click();
  await eventually(async () => (await b.locator('.compose-bar').textContent()).includes('Replying to Alice Liddell'), 'reply bar');
  await send(b, 'Yes, for four');
  await waitMessage(a, 'Yes, for four');
  const quoteA = msg(a, 'Yes, for four').locator('.reply-quote');
  await eventually(async () => (await quoteA.textContent()).includes('Shall we book the table?'), 'quote at Alice');
  assert.ok(await b.locator('.compose-bar').isHidden());

  // Bob reacts; Alice sees the chip, with who reacted.
  await menu(b, 'Shall we book the table?');
  await b.getByRole('menuitemcheckbox', { name: 'React 👍' }).click();
  const chip = msg(a, 'Shall we book the table?').locator('.reaction');
  await eventually(async () => (await chip.count()) === 1 && (await chip.textContent()) === '👍1', 'reaction at Alice');
  assert.equal(await chip.getAttribute('title'), 'Bob Builder');
  // Alice adds hers by clicking the chip.
  await chip.click();
  await eventually(async () => (await msg(b, 'Shall we book the table?').locator('.reaction').textContent()) === '👍2', 'two at Bob');

  // Alice edits her message: Bob sees the new text, "edited", and his
  // reply's quote follows.
  await menu(a, 'Shall we book the table?');
  await a.getByRole('menuitem', { name: 'Edit' }).click();
  const box = a.locator('#composer-input');
  assert.equal(await box.inputValue(), 'Shall we book the table?');
  await box.fill('Shall we book the table for 8pm?');
  await box.press('Enter');
  await waitMessage(b, 'Shall we book the table for 8pm?');
  await eventually(async () => (await msg(b, 'for 8pm').locator('.msg-flags').textContent()) === 'edited', 'edited');
  await eventually(async () => (await msg(b, 'Yes, for four').locator('.reply-quote').textContent()).includes('for 8pm'), 'live quote');
  await shot(b, 'message-actions');

  // Bob forwards his reply into the same chat: "Forwarded", no author.
  await menu(b, 'Yes, for four');
  await b.getByRole('menuitem', { name: 'Forward' }).click();
  await b.getByRole('dialog').getByRole('button', { name: /Alice Liddell/ }).click();
  const fwd = a.locator('.msg', { has: a.locator('.msg-forwarded:visible') }).last();
  await eventually(async () => (await fwd.count()) === 1 && (await fwd.locator('.msg-body').textContent()) === 'Yes, for four', 'forwarded copy');

  // Alice deletes her message for everyone: a tombstone on both sides,
  // and the quote of it says so.
  await menu(a, 'for 8pm');
  await a.getByRole('menuitem', { name: 'Delete for everyone' }).click();
  await a.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  for (const page of [a, b]) {
    await page.locator('.msg.deleted .msg-body', { hasText: 'This message was deleted' }).first().waitFor({ timeout: WAIT });
    await eventually(async () => (await page.locator('.msg-list').textContent()).includes('for 8pm') === false, 'no old text');
  }
  const reply = b.locator('.msg', { has: b.locator('.reply-quote:not([hidden])') }).last();
  await eventually(async () => (await reply.locator('.reply-quote').textContent()).includes('This message was deleted'), 'quote of a deleted message');

  // Alice hides the forwarded copy on her devices only.
  const copies = await a.locator('.msg-body', { hasText: 'Yes, for four' }).count();
  await menu(a, 'Yes, for four');
  await a.getByRole('menuitem', { name: 'Delete for me' }).click();
  await a.locator('.msg-hidden').first().waitFor({ timeout: WAIT });
  assert.equal(await a.locator('.msg-body', { hasText: 'Yes, for four' }).count(), copies - 1);
  assert.equal(await b.locator('.msg-body', { hasText: 'Yes, for four' }).count(), copies);
});

// A PNG of w x h pixels (a gradient), made here with zlib.
function makePng(w, h) {
  const crcTable = [...Array(256)].map((_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const rows = Buffer.alloc(h * (1 + 3 * w));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = y * (1 + 3 * w) + 1 + 3 * x;
      rows[o] = (x * 255) / w;
      rows[o + 1] = (y * 255) / h;
      rows[o + 2] = 128;
    }
  }
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}

test('attachments: a photo with a caption, a file and a voice message', T, async () => {
  const a = people.alice.page;
  const b = people.bob.page;
  await openThread(b, 'Alice Liddell');
  // A photo with a caption: one message.
  await a.locator('#attach-input').setInputFiles({ name: 'sunset.png', mimeType: 'image/png', buffer: makePng(640, 360) });
  await a.locator('.staged-item.done').waitFor({ timeout: WAIT });
  await send(a, 'the view from here');
  const photo = b.locator('.msg.theirs .att-image img').last();
  await photo.waitFor({ timeout: WAIT });
  await eventually(async () => (await photo.evaluate((img) => img.complete && img.naturalWidth)) === 320, 'thumbnail loaded');
  await waitMessage(b, 'the view from here');
  await b.locator('.msg.theirs .att-image').last().click();
  await eventually(async () => (await b.locator('.viewer img').evaluate((img) => img.complete && img.naturalWidth)) === 640, 'full size');
  await shot(b, 'attachment-viewer');
  await b.keyboard.press('Escape');
  // A file: a card with its name, size and type, downloadable.
  await a.locator('#attach-input').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('remember the milk\n') });
  await a.locator('.staged-item.done').waitFor({ timeout: WAIT });
  await a.locator('#composer-input').press('Enter');
  const card = b.locator('.msg.theirs .att-file').last();
  await card.waitFor({ timeout: WAIT });
  assert.match(await card.textContent(), /notes\.txt.*18 B.*text\/plain/);
  await eventually(async () => /sig=/.test(await card.getAttribute('href') || ''), 'signed link');
  const [download] = await Promise.all([b.waitForEvent('download'), card.click()]);
  assert.equal(download.suggestedFilename(), 'notes.txt');
  // chatd checked the link and handed the file to nginx (X-Accel-Redirect):
  // nginx sends it, with ranges and a CSP under which nothing runs.
  const href = await card.getAttribute('href');
  const whole = await fetch(BASE + href);
  assert.equal(whole.status, 200);
  assert.equal(await whole.text(), 'remember the milk\n');
  assert.match(whole.headers.get('content-disposition'), /^attachment; filename="notes.txt"/);
  assert.match(whole.headers.get('content-security-policy'), /sandbox/);
  assert.equal(whole.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(whole.headers.get('x-accel-redirect'), null);
  const part = await fetch(BASE + href, { headers: { Range: 'bytes=9-12' } });
  assert.equal(part.status, 206);
  assert.equal(await part.text(), 'the ');
  const forged = await fetch(BASE + href.replace(/sig=[^&]+/, 'sig=AAAA'));
  assert.equal(forged.status, 401);
  assert.equal((await fetch(`${BASE}/_media/blobs/`)).status, 404); // internal only
  // A voice message, recorded with the (fake) microphone, played on the other side.
  await a.getByRole('button', { name: 'Record a voice message' }).click();
  await a.waitForTimeout(1500);
  await a.getByRole('button', { name: 'Stop recording' }).click();
  await a.locator('.staged-item.done').waitFor({ timeout: WAIT });
  await a.locator('#composer-input').press('Enter');
  const audio = b.locator('.msg.theirs .att-audio audio').last();
  await audio.waitFor({ timeout: WAIT });
  await eventually(async () => Boolean(await audio.getAttribute('src')), 'audio source');
  await audio.evaluate((el) => el.play());
  await eventually(async () => (await audio.evaluate((el) => el.currentTime)) > 0, 'voice note plays');
  await shot(b, 'attachments');
  // The thread list says what arrived.
  await eventually(async () => (await threadItem(a, 'Bob Builder').locator('.ti-preview').textContent()).startsWith('You: Voice message'), 'preview');
});

test('a group: created from contacts, messages live, k/n ticks, details', T, async () => {
  const a = people.alice.page;
  const b = people.bob.page;
  await a.getByRole('link', { name: 'New group' }).click();
  await a.getByLabel('Group name').fill('Weekend trip');
  await a.getByRole('checkbox', { name: /Bob Builder/ }).check();
  await a.getByRole('checkbox', { name: /Carol Danvers/ }).check();
  await a.getByRole('button', { name: 'Create group' }).click();
  await a.locator('#chat-title', { hasText: 'Weekend trip' }).waitFor({ timeout: WAIT });
  await send(a, 'Who is in for Saturday?');
  await waitMessage(a, 'Who is in for Saturday?');

  await threadItem(b, 'Weekend trip').waitFor({ timeout: WAIT });
  await openThread(b, 'Weekend trip');
  await waitMessage(b, 'Who is in for Saturday?');
  await eventually(async () => (await lastMine(a).locator('.tick-count').textContent()) === '1/2', 'read by 1 of 2');
  await send(b, 'Me! Count me in');
  await waitMessage(a, 'Me!');
  assert.equal(await a.locator('.msg.theirs .msg-sender').last().textContent(), 'Bob Builder');

  // Carol reads through the API: everyone has read Alice's message now.
  const th = await apiCall(people.carol.token, 'GET', '/threads');
  const group = th.body.threads.find((t) => t.title === 'Weekend trip');
  people.groupId = group.id;
  await apiCall(people.carol.token, 'POST', `/threads/${group.id}/read`, { seq: group.last_seq });
  await eventually(async () => (await a.locator('.msg.mine').last().locator('.ticks').getAttribute('data-state')) === 'read', 'read by all');
  assert.equal(await lastMine(a).locator('.tick-count').textContent(), '2/2');
  await shot(a, 'group-chat');

  // Details: rename, members, remove and add back, nickname, mute.
  await a.getByRole('link', { name: 'Chat details' }).click();
  await a.getByRole('heading', { name: 'Group details' }).waitFor();
  await a.getByLabel('Group name').fill('Weekend in Lisbon');
  await a.getByRole('button', { name: 'Rename' }).click();
  await threadItem(b, 'Weekend in Lisbon').waitFor({ timeout: WAIT });
  await a.getByRole('button', { name: 'Remove Carol Danvers' }).click();
  await a.getByRole('dialog').getByRole('button', { name: 'Remove' }).click();
  await eventually(async () => (await a.locator('#d-members-title').textContent()) === 'Members (2)', 'two members');
  await a.getByRole('checkbox', { name: /Carol Danvers/ }).check();
  await a.getByRole('button', { name: 'Add selected' }).click();
  await eventually(async () => (await a.locator('#d-members-title').textContent()) === 'Members (3)', 'three members');
  await eventually(async () => (await b.locator('#chat-sub').textContent()).startsWith('3 members'), 'Bob sees 3 members');
  await shot(a, 'group-details');

  // Bob's own settings: a nickname and mute, seen in his list only.
  await b.getByRole('link', { name: 'Chat details' }).click();
  await b.getByLabel('Nickname for this chat').fill('Trip');
  await b.getByRole('button', { name: 'Save' }).click();
  await b.getByLabel('Mute notifications').check();
  await eventually(async () => (await threadItem(b, 'Trip').locator('.ti-muted').isVisible()), 'muted mark');
  assert.equal(await threadItem(a, 'Weekend in Lisbon').count(), 1);
  await b.getByRole('link', { name: 'Back to the chat' }).click();
});

test('mentions: @ suggests the members; the one mentioned sees it marked', T, async () => {
  const a = people.alice.page;
  const b = people.bob.page;
  await openThread(a, 'Weekend in Lisbon');
  const box = a.locator('#composer-input');
  await box.fill('');
  await box.pressSequentially('Ask @bo');
  await a.getByRole('option', { name: /Bob Builder @bob/ }).waitFor({ timeout: WAIT });
  await box.press('Enter'); // picks the suggestion, does not send
  assert.equal(await box.inputValue(), 'Ask @bob ');
  await box.pressSequentially('about the hotel');
  await box.press('Enter');
  await waitMessage(b, 'Ask @bob about the hotel');
  await eventually(async () => (await b.locator('.msg.mentions-me', { hasText: 'Ask @bob about the hotel' }).count()) === 1, 'marked for Bob');
  assert.equal(await a.locator('.msg.mentions-me').count(), 0);
});

test('search: words found are highlighted; a result opens the chat at the message', T, async () => {
  const b = people.bob.page;
  await b.getByRole('link', { name: 'Search messages' }).click();
  await b.getByRole('heading', { name: 'Search' }).waitFor({ timeout: WAIT });
  await b.locator('#search-input').fill('HOTEL ask');
  const result = b.locator('.search-result', { hasText: 'about the hotel' });
  await eventually(async () => {
    await b.getByRole('button', { name: 'Search', exact: true }).click();
    await b.waitForTimeout(200);
    return (await result.count()) === 1;
  }, 'the result');
  assert.deepEqual(await result.locator('mark').allTextContents(), ['Ask', 'hotel']);
  assert.equal(await result.locator('.result-thread').textContent(), 'Trip');
  await shot(b, 'search');
  await result.locator('a').click();
  await b.locator('#chat-title', { hasText: 'Trip' }).waitFor({ timeout: WAIT });
  await b.locator('.msg.flash', { hasText: 'Ask @bob about the hotel' }).waitFor({ timeout: WAIT });
});

test('a message request: a stranger\'s group shows Accept and Decline', T, async () => {
  const b = people.bob.page;
  // Carol (not in Bob's contacts) puts Bob in a group.
  const r = await apiCall(people.carol.token, 'POST', '/threads', { member_ids: [await b.evaluate(() => JSON.parse(localStorage.getItem('chatd.session')).user.id)], title: 'Deals of the day' });
  assert.equal(r.status, 201);
  await apiCall(people.carol.token, 'POST', `/threads/${r.body.thread.id}/messages`, { client_msg_id: 'req-1', body: 'Amazing offer inside' });
  await threadItem(b, 'Deals of the day').waitFor({ timeout: WAIT });
  await openThread(b, 'Deals of the day');
  const bar = b.getByRole('region', { name: 'Message request' });
  await bar.waitFor({ timeout: WAIT });
  assert.match(await bar.textContent(), /Carol Danvers added you to this group/);
  await shot(b, 'message-request');
  await bar.getByRole('button', { name: 'Decline and block' }).click();
  await eventually(async () => (await threadItem(b, 'Deals of the day').count()) === 0, 'the group is gone');
  const again = await apiCall(people.carol.token, 'POST', '/threads', { member_ids: [r.body.thread.member_ids.find((id) => id !== people.carol.id)], title: 'Again' });
  assert.equal(again.status, 403);
  // Unblock, so that the later tests' group with Carol works as before.
  const bobToken = await tokenOf(b);
  assert.equal((await apiCall(bobToken, 'DELETE', `/blocks/${people.carol.id}`)).status, 204);
});

test('history: older pages load when scrolling up', T, async () => {
  const a = people.alice.page;
  const { token } = people.carol;
  const d = await apiCall(token, 'POST', '/threads', { member_ids: [await a.evaluate(() => JSON.parse(localStorage.getItem('chatd.session')).user.id)] });
  const id = d.body.thread.id;
  for (let i = 1; i <= 130; i++) {
    // 130 sends at once: past nginx's 100-request burst from one address.
    const r = await apiCall(token, 'POST', `/threads/${id}/messages`, { client_msg_id: `hist-${i}`, body: `History message ${i}` },
      process.env.E2E_CHATD_URL);
    assert.ok(r.status === 201 || r.status === 200);
  }
  await openThread(a, 'Carol Danvers');
  await waitMessage(a, 'History message 130');
  const count0 = await messages(a).count();
  assert.ok(count0 >= 50 && count0 < 130, `first page ${count0}`);
  for (let i = 0; i < 10 && !(await a.locator('.history-status .start').count()); i++) {
    await a.locator('.messages').evaluate((el) => { el.scrollTop = 0; });
    await a.waitForTimeout(300);
  }
  await a.locator('.msg-body', { hasText: /^History message 1$/ }).waitFor({ timeout: WAIT });
  assert.equal(await messages(a).count(), 130);
  const seqs = await a.locator('.msg').evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
  assert.deepEqual(seqs, Array.from({ length: 130 }, (_, i) => i + 1));

  // Carol has no device polling the inbox: Alice's answer is stored (✓) but
  // not delivered.
  await send(a, 'Thanks Carol, got them all');
  await eventually(async () => (await lastMine(a).locator('.ticks').getAttribute('data-state')) === 'sent', 'stored');
  assert.equal(await lastMine(a).locator('.tick-marks').textContent(), '✓');
});

test('a send that hits a network error is retried with the same client_msg_id', T, async () => {
  const a = people.alice.page;
  const b = people.bob.page;
  await openThread(a, 'Bob Builder');
  await openThread(b, 'Alice Liddell');
  const ids = [];
  let failed = false;
  await a.route('**/v1/threads/*/messages', async (route) => {
    const req = route.request();
    if (req.method() !== 'POST') return route.continue();
    ids.push(JSON.parse(req.postData()).client_msg_id);
    if (!failed) {
      failed = true;
      return route.abort('internetdisconnected');
    }
    return route.continue();
  });
  await send(a, 'This one survives a network hiccup');
  await waitMessage(b, 'This one survives a network hiccup');
  await a.unroute('**/v1/threads/*/messages');
  assert.ok(ids.length >= 2, `tried ${ids.length} times`);
  assert.equal(new Set(ids).size, 1, 'one client_msg_id for every try');
  await eventually(async () => (await lastMine(a).locator('.ticks').getAttribute('data-state')) === 'read', 'stored and read');
  assert.equal(await a.locator('.msg-body', { hasText: 'survives a network hiccup' }).count(), 1);
  assert.equal(await b.locator('.msg-body', { hasText: 'survives a network hiccup' }).count(), 1);
});

test('a reload keeps the history', T, async () => {
  const a = people.alice.page;
  await a.reload();
  await a.locator('#chat-title', { hasText: 'Bob Builder' }).waitFor({ timeout: WAIT });
  await waitMessage(a, 'Hi Bob! Lunch today?');
  await waitMessage(a, 'This one survives a network hiccup');
  assert.equal(await a.locator('.msg.mine').last().locator('.ticks').getAttribute('data-state'), 'read');
  assert.equal(await a.locator('.day-sep').count(), 1);
});

test('a second tab of the same person stays in step, and takes over the poll', T, async () => {
  const a1 = people.alice.page;
  const b = people.bob.page;
  const a2 = await newPage(people.alice.ctx, 'alice tab 2');
  await a2.goto(`${BASE}/#/chats`);
  await threadItem(a2, 'Bob Builder').waitFor({ timeout: WAIT });

  // Bob writes: both of Alice's tabs see it.
  await send(b, 'Ping from Bob');
  await waitMessage(a1, 'Ping from Bob');
  await eventually(async () => (await threadItem(a2, 'Bob Builder').locator('.ti-preview').textContent()) === 'Ping from Bob', 'preview in tab 2');

  // Tab 2 writes: tab 1 and Bob see it.
  await openThread(a2, 'Bob Builder');
  await send(a2, 'Answer from tab 2');
  await waitMessage(a1, 'Answer from tab 2');
  await waitMessage(b, 'Answer from tab 2');

  // Unread in a thread neither tab shows; reading in tab 2 clears tab 1.
  await apiCall(people.carol.token, 'POST', `/threads/${people.groupId}/messages`, { client_msg_id: 'tabs-1', body: 'Carol says hi to the group' });
  for (const p of [a1, a2]) {
    await eventually(async () => (await threadItem(p, 'Weekend in Lisbon').locator('.badge').textContent()) === '1', 'badge in both tabs');
  }
  await openThread(a2, 'Weekend in Lisbon');
  await eventually(async () => threadItem(a1, 'Weekend in Lisbon').locator('.badge').isHidden(), 'badge cleared in tab 1');

  // The first tab (the poll's leader) closes; the second goes on alone.
  await a1.close();
  people.alice.page = a2;
  await send(b, 'Still there after the tab closed?');
  await eventually(async () => (await threadItem(a2, 'Bob Builder').locator('.ti-preview').textContent()) === 'Still there after the tab closed?', 'takeover');
});

test('a desktop notification when the tab is hidden', T, async () => {
  const a = people.alice.page;
  const b = people.bob.page;
  // Bob's only tab goes to the background; Notification is a spy that reports granted.
  await b.evaluate(() => {
    window.notes = [];
    window.Notification = class {
      static permission = 'granted';
      static requestPermission() { return Promise.resolve('granted'); }
      constructor(title, opts) { window.notes.push({ title, body: opts.body }); }
      close() {}
    };
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await openThread(a, 'Bob Builder');
  await send(a, 'Are you still there?');
  const notes = await eventually(async () => {
    const n = await b.evaluate(() => window.notes);
    return n.length ? n : null;
  }, 'a notification');
  assert.deepEqual(notes, [{ title: 'Alice Liddell', body: 'Are you still there?' }]);
  // Hidden: delivered, not read.
  await eventually(async () => (await lastMine(a).locator('.ticks').getAttribute('data-state')) === 'delivered', 'delivered');
  await a.waitForTimeout(700);
  assert.equal(await lastMine(a).locator('.ticks').getAttribute('data-state'), 'delivered');
  await b.evaluate(() => {
    delete document.hidden;
    delete document.visibilityState;
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await eventually(async () => (await lastMine(a).locator('.ticks').getAttribute('data-state')) === 'read', 'read when visible');
});

test('leaving a group', T, async () => {
  const a = people.alice.page;
  const b = people.bob.page;
  await openThread(b, 'Trip');
  await b.getByRole('link', { name: 'Chat details' }).click();
  await b.getByRole('button', { name: 'Leave group' }).click();
  await b.getByRole('dialog').getByRole('button', { name: 'Leave' }).click();
  await eventually(async () => (await threadItem(b, 'Trip').count()) === 0, 'gone from Bob\'s list');
  await openThread(a, 'Weekend in Lisbon');
  await eventually(async () => (await a.locator('#chat-sub').textContent()).startsWith('2 members'), 'Alice sees 2 members');
  await openThread(b, 'Alice Liddell');
});

test('devices: log out another device from the sessions list', T, async () => {
  const a = people.alice.page;
  const other = await newContext();
  const o = await newPage(other, 'alice laptop 2');
  await o.goto(`${BASE}/#/login`);
  await o.getByLabel('Username').fill('alice');
  await o.getByLabel('Password').fill('correct horse battery');
  await o.getByRole('button', { name: 'Log in' }).click();
  await threadItem(o, 'Bob Builder').waitFor({ timeout: WAIT });

  await a.getByRole('link', { name: 'Settings', exact: true }).click();
  await a.getByRole('heading', { name: 'Devices' }).waitFor();
  await eventually(async () => (await a.locator('.session').count()) === 2, 'two devices');
  await shot(a, 'sessions');
  await a.locator('.session', { hasNotText: 'This device' }).getByRole('button', { name: /^Log out/ }).click();
  await a.getByRole('dialog').getByRole('button', { name: 'Log out' }).click();
  await eventually(async () => (await a.locator('.session').count()) === 1, 'one device');
  // The other device's next request (its parked poll, at the latest) is refused.
  await o.getByRole('heading', { name: 'Log in' }).waitFor({ timeout: 40000 });
  await other.close();
});

test('phone width: one pane at a time, nothing wider than the screen', T, async () => {
  const ctx = await newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  const p = await newPage(ctx, 'bob phone');
  await p.goto(`${BASE}/#/login`);
  await p.getByLabel('Username').fill('bob');
  await p.getByLabel('Password').fill('correct horse battery');
  await p.getByRole('button', { name: 'Log in' }).click();
  await threadItem(p, 'Alice Liddell').waitFor({ timeout: WAIT });
  assert.equal(await p.locator('main#main').isVisible(), false);
  const wide = () => p.evaluate(() => {
    const out = [document.documentElement.scrollWidth];
    for (const el of document.querySelectorAll('body *')) {
      const r = el.getBoundingClientRect();
      if (r.right > 376) out.push(`${el.tagName}.${el.className} ${Math.round(r.right)}`);
    }
    return out;
  });
  const fits = async (what) => {
    const w = await wide();
    assert.ok(w[0] <= 375, `${what} is ${w.join(', ')}`);
  };
  await fits('the list');
  // The server replays typing events of the last 5 s to a new device, even
  // when a message followed: let any such "typing…" run out first.
  await p.waitForTimeout(1500);
  await eventually(async () => !(await threadItem(p, 'Alice Liddell').locator('.ti-preview').textContent()).includes('typing'), 'preview');
  await shot(p, 'phone-threads');
  await openThread(p, 'Alice Liddell');
  assert.equal(await p.locator('.sidebar').isVisible(), false);
  await waitMessage(p, 'Are you still there?');
  await fits('the chat');
  await shot(p, 'phone-chat');
  await p.getByRole('link', { name: 'Back to chats' }).click();
  await threadItem(p, 'Alice Liddell').waitFor();
  await ctx.close();
});

test('keyboard: log in, open a chat and send without a mouse', T, async () => {
  const ctx = await newContext();
  const p = await newPage(ctx, 'bob keyboard');
  await p.goto(`${BASE}/#/login`);
  await p.keyboard.type('bob');
  await p.keyboard.press('Tab');
  await p.keyboard.type('correct horse battery');
  await p.keyboard.press('Enter');
  await threadItem(p, 'Alice Liddell').waitFor({ timeout: WAIT });
  await threadItem(p, 'Alice Liddell').focus();
  await p.keyboard.press('Enter');
  await p.locator('#chat-title', { hasText: 'Alice Liddell' }).waitFor();
  assert.equal(await p.evaluate(() => document.activeElement.id), 'composer-input');
  await p.keyboard.type('Typed with the keyboard only');
  await p.keyboard.press('Enter');
  const a = people.alice.page;
  await eventually(async () => (await threadItem(a, 'Bob Builder').locator('.ti-preview').textContent()) === 'Typed with the keyboard only', 'Alice has it');
  await ctx.close();
});

test('a contact nickname shows everywhere and can be searched', T, async () => {
  const b = people.bob.page;
  await b.getByRole('link', { name: 'Contacts' }).click();
  await b.getByRole('button', { name: 'Nickname Alice Liddell' }).click();
  await b.getByRole('dialog').getByLabel('Nickname').fill('Ally');
  await b.getByRole('dialog').getByRole('button', { name: 'Save' }).click();
  await threadItem(b, 'Ally').waitFor({ timeout: WAIT });
  await b.getByRole('searchbox', { name: 'Search contacts' }).fill('ally');
  await eventually(async () => (await b.locator('.people[aria-label="Your contacts"] .person').count()) === 1, 'found by nickname');
  assert.match(await b.locator('.people[aria-label="Your contacts"] .person-sub').textContent(), /@alice \(Alice Liddell\)/);
  await b.getByRole('searchbox', { name: 'Search contacts' }).fill('nobody-like-this');
  await eventually(async () => (await b.locator('.people[aria-label="Your contacts"] .person').count()) === 0, 'no match');
});

test('logout ends the session', T, async () => {
  const a = people.alice.page;
  const token = await tokenOf(a);
  await a.getByRole('button', { name: 'Log out', exact: true }).click();
  await a.getByRole('heading', { name: 'Log in' }).waitFor({ timeout: WAIT });
  assert.equal(await a.evaluate(() => localStorage.getItem('chatd.session')), null);
  assert.equal((await apiCall(token, 'GET', '/me')).status, 401);
});

test('no script errors in any page', () => {
  assert.deepEqual(errors, []);
});
