// attachments.js — photos, files and voice notes (docs/attachments.md).
//
// An Upload sends one file: POST /v1/uploads, then its bytes with PUT
// /v1/uploads/{id}/content through XMLHttpRequest (fetch has no upload
// progress). A cut connection is resumed: GET /v1/uploads/{id} says how much
// arrived, and the rest goes with Content-Range. cancel() stops it and
// deletes the upload. `done` resolves to the upload id once the server has
// the whole file (the composer sends the message then).
//
// Downloads and <img>/<audio> sources use signed links (POST
// /v1/attachments/{id}/links), cached until shortly before they expire: an
// element cannot send the bearer token.

import { api, ApiError, getToken } from './api.js';

const RETRIES = 5;

/** Bytes as "1.4 MB" (decimal units, as file managers show them). */
export function fileSize(n) {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB'];
  let v = n;
  let u = -1;
  do {
    v /= 1000;
    u++;
  } while (v >= 1000 && u < units.length - 1);
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

/** What an attachment is, for people: "Photo", "Voice message", "Video" or its name. */
export function attachmentLabel(a) {
  const t = a.content_type || '';
  if (t.startsWith('image/')) return 'Photo';
  if (t.startsWith('audio/')) return 'Voice message';
  if (t.startsWith('video/')) return 'Video';
  return a.filename;
}

export class Upload {
  /** file: a File or Blob with a name. */
  constructor(file) {
    this.file = file;
    this.name = file.name || 'file';
    this.size = file.size;
    this.sent = 0;          // bytes the server has
    this.state = 'uploading'; // uploading | done | failed | cancelled
    this.error = null;
    this.id = null;
    this.xhr = null;
    this.listeners = new Set();
    this.done = this.run();
    this.done.catch(() => {}); // a failure is shown, not thrown at the page
  }

  /** fn(upload) runs on every change of progress or state. */
  onChange(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  changed() {
    for (const fn of this.listeners) fn(this);
  }

  async run() {
    try {
      const r = await api('POST', '/uploads', {
        filename: this.name, size: this.size, content_type: this.file.type.split(';')[0] || null,
      });
      this.id = r.upload.id;
      for (let attempt = 0; ; attempt++) {
        if (this.state === 'cancelled') throw new Error('cancelled');
        try {
          const up = await this.put(this.sent);
          if (up.state === 'complete') {
            this.sent = this.size;
            this.state = 'done';
            this.changed();
            return this.id;
          }
          this.sent = up.received;
        } catch (e) {
          if (this.state === 'cancelled') throw e;
          if (attempt >= RETRIES || (e instanceof ApiError && e.status >= 400 && e.status < 500 && e.status !== 409)) throw e;
          await new Promise((ok) => setTimeout(ok, 500 * 2 ** attempt));
          // Resume from what the server kept.
          const now = await api('GET', `/uploads/${this.id}`);
          this.sent = now.upload.received;
          if (now.upload.state === 'complete') {
            this.state = 'done';
            this.changed();
            return this.id;
          }
        }
      }
    } catch (e) {
      if (this.state !== 'cancelled') {
        this.state = 'failed';
        this.error = e.message || 'upload failed';
        this.changed();
      }
      throw e;
    }
  }

  /** PUTs the bytes from offset on; resolves to the upload view. */
  put(offset) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      this.xhr = xhr;
      xhr.open('PUT', `/v1/uploads/${this.id}/content`);
      xhr.setRequestHeader('Authorization', `Bearer ${getToken()}`);
      xhr.setRequestHeader('Content-Type', 'application/octet-stream');
      if (offset > 0) xhr.setRequestHeader('Content-Range', `bytes ${offset}-${this.size - 1}/${this.size}`);
      xhr.upload.onprogress = (e) => {
        this.sent = offset + e.loaded;
        this.changed();
      };
      xhr.onload = () => {
        let body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
          // not JSON: a proxy's page
        }
        if (xhr.status === 200 && body?.upload) resolve(body.upload);
        else reject(new ApiError(xhr.status, body?.code || `http_${xhr.status}`, body?.detail || 'the upload failed'));
      };
      xhr.onerror = () => reject(new ApiError(0, 'network', 'the connection was cut'));
      xhr.onabort = () => reject(new Error('cancelled'));
      xhr.send(offset > 0 ? this.file.slice(offset) : this.file);
    });
  }

  /** Stops the upload and deletes what the server has of it. */
  cancel() {
    if (this.state === 'done' || this.state === 'cancelled') return;
    this.state = 'cancelled';
    this.xhr?.abort();
    if (this.id) api('DELETE', `/uploads/${this.id}`).catch(() => {});
    this.changed();
  }
}

const links = new Map(); // attachment id → {url, expiresAt}

/** A signed URL of attachment id (its thumbnail when thumbnail), for src and href. */
export async function linkFor(id, thumbnail = false) {
  let l = links.get(id);
  if (!l || l.expiresAt - Date.now() < 60000) {
    const r = await api('POST', `/attachments/${id}/links`);
    l = { url: r.url, expiresAt: r.expires_at };
    links.set(id, l);
  }
  if (!thumbnail) return l.url;
  const [path, query] = l.url.split('?');
  return `${path}/thumbnail?${query}`;
}
