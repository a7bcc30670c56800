#!/usr/bin/env python3
"""replay.py — `make demo`: replay real #ubuntu IRC conversations through a
running chatd over HTTP and check that every stored message reached every
device of every member exactly once, in order.

    /usr/bin/python3 tools/demo/replay.py --url http://127.0.0.1:8080 \
        [--speed 0] [--files 20|GLOB] [--data data/ubuntu-irc]
    /usr/bin/python3 tools/demo/replay.py --url ... --check    # /readyz only

Python 3.11 standard library only. See docs/demo.md for what it does and how
to read its report. It talks to nothing but the base URL it is given.

The model (one asyncio loop, one process):
  * every nickname that speaks (case-insensitive, after the renames of each
    file) is one user with one session ("demo" device) and one long-poll
    client on a connection of its own;
  * every file is one group of its speakers; a line "nick: text" (or
    "nick, text") to another speaker of the file goes to the direct thread of
    the two, every other line to the group;
  * "has joined" / "has left" / "has quit" start and stop the user's polling
    (a stopped client closes its connection, like a phone going offline, and
    later resumes from the cursor it had);
  * sends go through a small pool of keep-alive connections, sequentially
    within a file, all files at once;
  * at the end every device drains its inbox (timeout=0), then the report
    compares what was stored (the 201/200 answers) with what was delivered.
"""
from __future__ import annotations

import argparse
import asyncio
import glob
import hashlib
import json
import os
import re
import secrets
import sys
import time
import urllib.parse
from array import array
from collections import Counter, defaultdict
from dataclasses import dataclass, field

# ---------------------------------------------------------------- parsing ---

TIME_RE = re.compile(rb"^\[(\d\d):(\d\d)\]")
MSG_RE = re.compile(rb"^\[\d\d:\d\d\] <\s*([^>\s]+)\s*>(?: (.*))?$", re.S)
ACTION_RE = re.compile(rb"^\[\d\d:\d\d\]\s+\* ")
PRESENCE_RE = re.compile(rb"^=== (\S+) \[[^\]]*\]\s+has (joined|left|quit)\b")
RENAME_RE = re.compile(rb"^=== (\S+) is now known as (\S+)\s*$")
ADDR_RE = re.compile(rb"^([^\s:,]+)[:,]")
CONTROL_RE = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")


def nick_key(raw: bytes) -> str:
    """IRC nicknames are case-insensitive: one key per person."""
    return raw.decode("utf-8", "replace").lower()


@dataclass
class Line:
    kind: str  # "msg" | "join" | "leave"
    lineno: int
    at: float  # seconds of log time since the file's first line
    user: str  # canonical nick key
    text: bytes = b""
    to: str | None = None  # addressed participant (direct thread)


@dataclass
class FilePlan:
    path: str
    stem: str
    lines: list[Line] = field(default_factory=list)
    speakers: dict[str, str] = field(default_factory=dict)  # key -> display
    present_at_start: set[str] = field(default_factory=set)
    counts: Counter = field(default_factory=Counter)
    span_s: float = 0.0
    group_id: int | None = None


def parse_file(path: str) -> FilePlan:
    """Reads one log as bytes. Nick renames are followed with an alias table:
    after "old is now known as new", lines of `new` belong to old's user."""
    stem = os.path.basename(path)
    for ext in (".raw.txt", ".txt"):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
            break
    fp = FilePlan(path=path, stem=stem)
    with open(path, "rb") as f:
        raw_lines = f.read().split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()

    alias: dict[str, str] = {}
    display: dict[str, str] = {}
    first: dict[str, str] = {}  # key -> "join" | "present"
    recs = []  # (lineno, minute, kind, key, text, addressed key)
    minute = None
    offset = 0  # minutes added to undo clock wraps (12 h and 24 h logs)
    untimed = []  # indexes of records before the first timestamp

    def resolve(nick: bytes) -> str:
        k = nick_key(nick)
        display.setdefault(k, nick.decode("utf-8", "replace"))
        return alias.get(k, k)

    for lineno, line in enumerate(raw_lines, 1):
        line = line.rstrip(b"\r")
        fp.counts["lines"] += 1
        tm = TIME_RE.match(line)
        if tm:
            t = int(tm[1]) * 60 + int(tm[2]) + offset
            while minute is not None and t < minute:
                offset += 720
                t += 720
            minute = t
        m = MSG_RE.match(line)
        if m:
            key = resolve(m[1])
            text = m[2] or b""
            am = ADDR_RE.match(text)
            addr = alias.get(nick_key(am[1]), nick_key(am[1])) if am else None
            first.setdefault(key, "present")
            recs.append((lineno, minute, "msg", key, text, addr))
            fp.counts["messages"] += 1
            continue
        m = PRESENCE_RE.match(line)
        if m:
            key = resolve(m[1])
            kind = "join" if m[2] == b"joined" else "leave"
            first.setdefault(key, "join" if kind == "join" else "present")
            recs.append((lineno, minute, kind, key, b"", None))
            fp.counts["joins" if kind == "join" else "leaves"] += 1
            continue
        m = RENAME_RE.match(line)
        if m:
            key = resolve(m[1])
            first.setdefault(key, "present")
            new = nick_key(m[2])
            display.setdefault(new, m[2].decode("utf-8", "replace"))
            alias[new] = key
            fp.counts["renames"] += 1
            continue
        if not line.strip():
            fp.counts["blank"] += 1
        else:
            fp.counts["other"] += 1  # "* nick does x", "=== nick is away", ...
    for r in recs:
        if r[2] == "msg":
            fp.speakers.setdefault(r[3], display.get(r[3], r[3]))
    timed = [r[1] for r in recs if r[1] is not None]
    first_minute = timed[0] if timed else 0
    # Spread the lines of one minute evenly over that minute.
    per_minute = Counter((r[1] if r[1] is not None else first_minute) for r in recs)
    seen = Counter()
    for lineno, mnt, kind, key, text, addr in recs:
        if key not in fp.speakers:
            continue  # people who never speak are not users
        mnt = first_minute if mnt is None else mnt
        k = seen[mnt]
        seen[mnt] += 1
        at = (mnt - first_minute + k / per_minute[mnt]) * 60.0
        to = addr if (kind == "msg" and addr in fp.speakers and addr != key) else None
        fp.lines.append(Line(kind, lineno, at, key, text, to))
    fp.present_at_start = {k for k in fp.speakers if first.get(k) != "join"}
    fp.span_s = fp.lines[-1].at if fp.lines else 0.0
    return fp


def json_string_bytes(raw: bytes) -> bytes:
    """A JSON string holding raw bytes as they are (only ", \\ and control
    characters escaped), so that invalid UTF-8 reaches the server as such."""
    out = bytearray(b'"')
    for b in raw:
        if b == 0x22:
            out += b'\\"'
        elif b == 0x5C:
            out += b"\\\\"
        elif b < 0x20:
            out += b"\\u%04x" % b
        else:
            out.append(b)
    out += b'"'
    return bytes(out)


# ------------------------------------------------------------------- HTTP ---


class NetError(Exception):
    """The connection failed before a whole answer came back."""


class Target:
    def __init__(self, url: str):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "http" or not u.hostname:
            raise SystemExit(f"demo: CHAT_URL must be http://HOST:PORT, not {url!r}")
        self.host = u.hostname
        self.port = u.port or 80
        self.hostport = u.netloc
        self.prefix = u.path.rstrip("/")
        self.url = url


class Conn:
    """One HTTP/1.1 keep-alive connection; requests on it are sequential."""

    IDLE_MAX_S = 50.0  # the server closes idle connections after 75 s

    def __init__(self, target: Target):
        self.t = target
        self.r: asyncio.StreamReader | None = None
        self.w: asyncio.StreamWriter | None = None
        self.used_at = 0.0

    def close(self) -> None:
        if self.w is not None:
            try:
                self.w.close()
            except Exception:
                pass
        self.r = self.w = None

    async def request(self, method, path, body=None, token=None, timeout=30.0, on_write=None):
        """Returns (status, headers, body bytes); raises NetError."""
        if self.w is not None and (
            self.r.at_eof() or time.monotonic() - self.used_at > self.IDLE_MAX_S
        ):
            self.close()
        head = [f"{method} {self.t.prefix}{path} HTTP/1.1", f"Host: {self.t.hostport}"]
        if token:
            head.append(f"Authorization: Bearer {token}")
        if body is not None:
            head.append("Content-Type: application/json")
            head.append(f"Content-Length: {len(body)}")
        msg = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (body or b"")
        try:
            if self.w is None:
                self.r, self.w = await asyncio.wait_for(
                    asyncio.open_connection(self.t.host, self.t.port), 10.0
                )
            if on_write is not None:
                on_write()
            self.w.write(msg)
            status, hdrs, data = await asyncio.wait_for(self._read(), timeout)
        except asyncio.CancelledError:
            self.close()
            raise
        except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                asyncio.TimeoutError, ValueError, IndexError) as e:
            self.close()
            raise NetError(type(e).__name__) from None
        self.used_at = time.monotonic()
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return status, hdrs, data

    async def _read(self):
        raw = await self.r.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        hdrs = {}
        for h in lines[1:]:
            if ":" in h:
                k, v = h.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        if "chunked" in hdrs.get("transfer-encoding", "").lower():
            data = bytearray()
            while True:
                size = int((await self.r.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    while (await self.r.readuntil(b"\r\n")) != b"\r\n":
                        pass
                    break
                data += await self.r.readexactly(size + 2)
                del data[-2:]
            return status, hdrs, bytes(data)
        n = int(hdrs.get("content-length", "0"))
        data = await self.r.readexactly(n) if n else b""
        return status, hdrs, data


class Pool:
    """A bounded set of keep-alive connections shared by all short requests."""

    def __init__(self, target: Target, size: int):
        self.q: asyncio.Queue[Conn] = asyncio.Queue()
        for _ in range(size):
            self.q.put_nowait(Conn(target))

    async def request(self, *a, **kw):
        c = await self.q.get()
        try:
            return await c.request(*a, **kw)
        finally:
            self.q.put_nowait(c)


def decode_json(data: bytes):
    try:
        return json.loads(data) if data else None
    except ValueError:
        return None


def problem(js, status) -> tuple[int, str, str]:
    if isinstance(js, dict):
        return status, str(js.get("code", "?")), str(js.get("detail", js.get("title", "")))
    return status, "?", ""


# ------------------------------------------------------------------ state ---


@dataclass
class User:
    key: str
    display: str
    username: str = ""
    id: int = 0
    token: str = ""
    cursor: str | None = None
    files: set = field(default_factory=set)  # files the user is present in now
    poller: asyncio.Task | None = None
    poll_written: float | None = None  # monotonic time the parked poll went out
    threads: dict = field(default_factory=dict)  # thread_id -> [bitmap, last seq]
    received: int = 0
    received_live: int = 0
    dup: int = 0
    ooo: int = 0
    polls: int = 0
    starts: int = 0


@dataclass
class Sent:
    sender_id: int
    body: str | None  # None when the line is not valid UTF-8
    t0: float = 0.0


class Demo:
    def __init__(self, args, files: list[FilePlan]):
        self.a = args
        self.t = Target(args.url)
        self.pool = Pool(self.t, args.pool)
        self.files = files
        self.run_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(4))
        self.password = f"demo-{self.run_id}-password"
        self.users: dict[str, User] = {}
        for fp in files:
            for k, d in fp.speakers.items():
                if k not in self.users:
                    self.users[k] = User(k, d)
        self.by_id: dict[int, User] = {}
        self.inbox = True
        self.inbox_why = ""
        # sending
        self.sent: dict[str, Sent] = {}  # client_msg_id -> Sent
        self.stored: dict[int, set] = defaultdict(set)  # thread_id -> seqs
        self.members: dict[int, set] = {}  # thread_id -> user ids
        self.direct: set[int] = set()
        self.n_sent = self.n_201 = self.n_200 = self.n_retried = 0
        self.rejected: dict[tuple, list] = defaultdict(list)  # reason -> [file stems]
        self.lines_done = 0
        self.send_started = self.send_ended = 0.0
        # delivery
        self.lat = array("d")
        self.send_lat = array("d")  # request written -> 201/200 answer
        self.events = Counter()
        self.unexpected = 0
        self.corrupted = 0
        self.poll_errors = Counter()
        self.net_errors = Counter()
        self.server_errors = Counter()  # 5xx answers that were retried
        self.cursor_resets = 0

    # -- small helpers --

    def log(self, msg: str) -> None:
        print(f"demo: {msg}", file=sys.stderr, flush=True)

    async def call(self, method, path, obj=None, raw=None, token=None, retries=6,
                   timeout=30.0, on_write=None):
        """One request over the pool; retries connection errors and 5xx.
        Returns (status, json, headers, retried)."""
        body = raw if raw is not None else (json.dumps(obj).encode() if obj is not None else None)
        retried = 0
        busy = 0
        while True:
            try:
                status, hdrs, data = await self.pool.request(
                    method, path, body=body, token=token, timeout=timeout, on_write=on_write)
            except NetError as e:
                self.net_errors[f"{method} {_route(path)}: {e}"] += 1
                retried += 1
                if retried > retries:
                    raise
                await asyncio.sleep(min(2.0, 0.05 * 2 ** retried))
                continue
            if status >= 500 and status != 503 and retried < retries:
                # "500 internal: nothing was committed": a client retries.
                self.server_errors[f"{method} {_route(path)}: {status} "
                                   f"{problem(decode_json(data), status)[1]}"] += 1
                retried += 1
                await asyncio.sleep(min(2.0, 0.05 * 2 ** retried))
                continue
            if status == 503 and busy < 200:
                busy += 1
                try:
                    wait = float(hdrs.get("retry-after", "0.2"))
                except ValueError:
                    wait = 0.2
                await asyncio.sleep(min(max(wait, 0.05), 5.0))
                continue
            return status, decode_json(data), hdrs, retried

    # -- users --

    def usernames(self) -> None:
        used = set()
        for u in self.users.values():
            clean = re.sub(r"[^a-z0-9_.-]", "_", u.key)
            core = clean[:18]
            n = 5
            while True:
                if clean != u.key or len(clean) > 18 or core in used:
                    h = hashlib.sha1(u.key.encode()).hexdigest()[:n]
                    core = f"{clean[:12]}-{h}"
                if core not in used:
                    break
                n += 1
            used.add(core)
            u.username = f"irc_{core}_{self.run_id}"

    async def setup_user(self, u: User) -> None:
        st, js, _, retried = await self.call(
            "POST", "/v1/users",
            {"username": u.username, "password": self.password, "display_name": u.display[:64]})
        if st == 409 and retried:
            pass  # our own first attempt got through
        elif st != 201:
            raise SystemExit(f"demo: registering {u.username} failed: {problem(js, st)}")
        st, js, _, _ = await self.call(
            "POST", "/v1/sessions",
            {"username": u.username, "password": self.password, "device_name": "demo"})
        if st != 201:
            raise SystemExit(f"demo: logging in {u.username} failed: {problem(js, st)}")
        u.token = js["token"]
        u.id = int(js["user"]["id"])
        self.by_id[u.id] = u
        if self.inbox:
            # The device's first poll, before anything is sent: from this
            # cursor on, it must see every message of its threads.
            st, js, _, _ = await self.call("GET", "/v1/inbox", token=u.token)
            if st == 200 and isinstance(js, dict) and "next" in js:
                u.cursor = js["next"]
            elif self.inbox:
                self.inbox = False
                self.inbox_why = f"GET /v1/inbox answered {st} {problem(js, st)[1]}"
                self.log(f"{self.inbox_why}: deliveries cannot be checked, sending only")

    async def setup_users(self) -> None:
        self.usernames()
        todo = list(self.users.values())
        done = 0
        t0 = time.monotonic()
        last = t0
        sem = asyncio.Semaphore(self.a.register_concurrency)

        async def one(u):
            nonlocal done, last
            async with sem:
                await self.setup_user(u)
            done += 1
            now = time.monotonic()
            if now - last >= 5 or done == len(todo):
                last = now
                self.log(f"users: {done:,}/{len(todo):,} registered and logged in "
                         f"({now - t0:.0f} s; Argon2id makes this the slow part)")

        self.log(f"registering {len(todo):,} users as irc_*_{self.run_id} "
                 f"({self.a.register_concurrency} at a time)")
        await asyncio.gather(*(one(u) for u in todo))

    async def create_groups(self) -> None:
        async def one(fp: FilePlan):
            creator = self.users[next(l.user for l in fp.lines if l.kind == "msg")]
            ids = sorted({self.users[k].id for k in fp.speakers})
            if len(ids) > 1024:
                self.log(f"{fp.stem}: {len(ids)} speakers, over the 1,024-member limit")
            st, js, _, _ = await self.call(
                "POST", "/v1/threads", {"member_ids": ids, "title": fp.stem}, token=creator.token)
            if st not in (200, 201):
                raise SystemExit(f"demo: creating the group {fp.stem} failed: {problem(js, st)}")
            th = js["thread"]
            fp.group_id = int(th["id"])
            self.members[fp.group_id] = set(int(i) for i in th.get("member_ids", ids))
            if self.members[fp.group_id] != set(ids):
                self.log(f"{fp.stem}: the group's member_ids differ from the ones asked for")

        await asyncio.gather(*(one(fp) for fp in self.files if fp.lines))

    # -- presence and polling --

    def enter(self, u: User, fp: FilePlan) -> None:
        u.files.add(fp.stem)
        if self.inbox and u.poller is None:
            u.starts += 1
            u.poller = asyncio.create_task(self.poll_loop(u))

    def leave(self, u: User, fp: FilePlan) -> None:
        u.files.discard(fp.stem)
        if not u.files:
            self.stop_polling(u)

    def stop_polling(self, u: User) -> None:
        if u.poller is not None:
            u.poller.cancel()
            u.poller = None
            u.poll_written = None

    async def poll_loop(self, u: User) -> None:
        conn = Conn(self.t)
        errors = 0
        try:
            while True:
                if u.cursor is None:
                    path = "/v1/inbox"
                else:
                    path = (f"/v1/inbox?since={urllib.parse.quote(u.cursor, safe='')}"
                            f"&timeout={self.a.poll_timeout}&limit=500")

                def written():
                    u.poll_written = time.monotonic()

                try:
                    st, _, data = await conn.request(
                        "GET", path, token=u.token, timeout=self.a.poll_timeout + 15.0,
                        on_write=written)
                except NetError as e:
                    u.poll_written = None
                    self.poll_errors[f"connection: {e}"] += 1
                    errors += 1
                    await asyncio.sleep(min(5.0, 0.1 * errors))
                    continue
                if u.poller is not asyncio.current_task():
                    # Stopped meanwhile: Python 3.11's wait_for() can return
                    # a result that arrived together with the cancellation
                    # (fixed in 3.12); a poller that was replaced must not
                    # take an answer, or two pollers of one device would.
                    return
                t_recv = time.monotonic()
                parked_at = u.poll_written
                u.poll_written = None
                u.polls += 1
                js = decode_json(data)
                if st == 200 and isinstance(js, dict):
                    errors = 0
                    self.take(u, js, live=True, t_recv=t_recv, parked_at=parked_at)
                    continue
                errors += 1
                code = problem(js, st)
                self.poll_errors[f"{code[0]} {code[1]}"] += 1
                if st == 410:
                    self.cursor_resets += 1
                    u.cursor = None  # reload: poll without since
                await asyncio.sleep(min(5.0, 0.1 * errors))
        finally:
            conn.close()

    def take(self, u: User, js: dict, live: bool, t_recv: float = 0.0, parked_at=None) -> int:
        """Accounts one inbox answer. No await in here: a cancelled poll never
        leaves an answer half counted. Returns the number of events."""
        evs = js.get("events") or []
        for ev in evs:
            typ = ev.get("type", "?")
            self.events[typ] += 1
            if typ != "message":
                continue
            m = ev.get("message") or {}
            try:
                tid, seq = int(m["thread_id"]), int(m["seq"])
            except (KeyError, TypeError, ValueError):
                self.events["message without thread_id/seq"] += 1
                continue
            st = u.threads.get(tid)
            if st is None:
                st = u.threads[tid] = [bytearray(), 0]
            bm = st[0]
            byte, bit = seq >> 3, 1 << (seq & 7)
            if byte >= len(bm):
                bm.extend(bytes(byte + 64 - len(bm)))
            if bm[byte] & bit:
                u.dup += 1
                continue
            bm[byte] |= bit
            u.received += 1
            if live:
                u.received_live += 1
            if seq < st[1]:
                u.ooo += 1
            else:
                st[1] = seq
            s = self.sent.get(m.get("client_msg_id"))
            if s is None or s.sender_id != m.get("sender_id"):
                self.unexpected += 1
                continue
            if s.body is not None and m.get("body") != s.body:
                self.corrupted += 1
            if live and parked_at is not None and parked_at <= s.t0:
                self.lat.append((t_recv - s.t0) * 1000.0)
        if "next" in js:
            u.cursor = js["next"]
        return len(evs)

    # -- replay --

    async def send(self, fp: FilePlan, ln: Line) -> None:
        u = self.users[ln.user]
        cmid = f"{fp.stem}:{ln.lineno}"
        if not ln.text.strip():
            self.rejected[("not sent", "empty", "empty after trimming")].append(fp.stem)
            return
        try:
            text = ln.text.decode("utf-8")
            body_json = json.dumps(text, ensure_ascii=False).encode("utf-8")
        except UnicodeDecodeError:
            text = None
            body_json = json_string_bytes(ln.text)  # the server must refuse it
        head = {"client_msg_id": cmid}
        if ln.to is not None:
            path = "/v1/messages"
            head["to"] = self.users[ln.to].id
        else:
            path = f"/v1/threads/{fp.group_id}/messages"
        raw = json.dumps(head)[:-1].encode() + b', "body": ' + body_json + b"}"
        s = self.sent[cmid] = Sent(u.id, text)

        def written():
            if not s.t0:
                s.t0 = time.monotonic()

        self.n_sent += 1
        try:
            st, js, _, retried = await self.call("POST", path, raw=raw, token=u.token,
                                                 on_write=written)
        except NetError as e:
            self.rejected[("failed", "connection", str(e))].append(fp.stem)
            return
        if retried:
            self.n_retried += 1
        self.send_lat.append((time.monotonic() - s.t0) * 1000.0)
        if st in (200, 201) and isinstance(js, dict) and "message" in js:
            m = js["message"]
            tid, seq = int(m["thread_id"]), int(m["seq"])
            if st == 201:
                self.n_201 += 1
            else:
                self.n_200 += 1
            self.stored[tid].add(seq)
            if tid not in self.members:
                self.members[tid] = {u.id, self.users[ln.to].id} if ln.to else set()
                self.direct.add(tid)
        else:
            self.rejected[problem(js, st)].append(fp.stem)

    async def run_file(self, fp: FilePlan, start: float) -> None:
        for k in sorted(fp.present_at_start):
            self.enter(self.users[k], fp)
        for ln in fp.lines:
            if self.a.speed > 0:
                delay = start + ln.at / self.a.speed - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            u = self.users[ln.user]
            if ln.kind == "join":
                self.enter(u, fp)
            elif ln.kind == "leave":
                self.leave(u, fp)
            else:
                if fp.stem not in u.files:
                    self.enter(u, fp)  # speaking means being there
                await self.send(fp, ln)
            self.lines_done += 1

    def delivered_total(self) -> int:
        return sum(u.received for u in self.users.values())

    async def progress(self, total_lines: int) -> None:
        while True:
            await asyncio.sleep(5)
            el = time.monotonic() - self.send_started
            polling = sum(1 for u in self.users.values() if u.poller is not None)
            self.log(f"replay: {self.lines_done:,}/{total_lines:,} lines, "
                     f"stored {self.n_201 + self.n_200:,} ({(self.n_201 + self.n_200) / el:.0f} msg/s), "
                     f"polling {polling:,} users, deliveries {self.delivered_total():,}, {el:.0f} s")

    async def replay(self) -> None:
        total = sum(len(fp.lines) for fp in self.files)
        if self.a.speed > 0:
            longest = max((fp.span_s for fp in self.files), default=0) / self.a.speed
            self.log(f"replaying {total:,} lines at {self.a.speed:g}x log time "
                     f"(longest file: {longest / 60:.1f} min)")
        else:
            self.log(f"replaying {total:,} lines as fast as possible (in order within each file)")
        self.send_started = time.monotonic()
        prog = asyncio.create_task(self.progress(total))
        try:
            await asyncio.gather(*(self.run_file(fp, self.send_started) for fp in self.files))
        finally:
            prog.cancel()
        self.send_ended = time.monotonic()

    async def settle_and_drain(self) -> None:
        if not self.inbox:
            return
        # Let the parked polls catch up: wait until deliveries stop growing.
        last, still, t0 = -1, 0.0, time.monotonic()
        while time.monotonic() - t0 < self.a.settle_max:
            n = self.delivered_total()
            if n == last:
                still += 0.5
                if still >= 2.0:
                    break
            else:
                still = 0.0
                last = n
            await asyncio.sleep(0.5)
        for u in self.users.values():
            self.stop_polling(u)
        await asyncio.sleep(0)
        self.log(f"draining {len(self.users):,} inboxes (timeout=0)")
        sem = asyncio.Semaphore(self.a.pool)

        async def drain(u: User):
            async with sem:
                failures = 0
                for _ in range(100000):
                    if u.cursor is None:
                        st, js, _, _ = await self.call("GET", "/v1/inbox", token=u.token)
                    else:
                        since = urllib.parse.quote(u.cursor, safe="")
                        st, js, _, _ = await self.call(
                            "GET", f"/v1/inbox?since={since}&timeout=0&limit=500", token=u.token)
                    if st != 200 or not isinstance(js, dict):
                        code = problem(js, st)
                        self.poll_errors[f"drain {code[0]} {code[1]}"] += 1
                        if st == 410:
                            self.cursor_resets += 1
                            u.cursor = None
                            continue
                        failures += 1
                        if failures > 30:
                            return  # what is left shows up as lost
                        await asyncio.sleep(1.0)
                        continue
                    before = u.cursor
                    n = self.take(u, js, live=False)
                    if n == 0 or u.cursor == before:
                        return

        await asyncio.gather(*(drain(u) for u in self.users.values()))

    # -- report --

    def report(self, t_setup: float) -> int:
        out = []
        p = out.append
        nfiles = len(self.files)
        lines = sum(fp.counts["messages"] for fp in self.files)
        c = Counter()
        for fp in self.files:
            c.update(fp.counts)
        bad_utf8 = [fp.stem for fp in self.files for ln in fp.lines
                    if ln.kind == "msg" and not _valid_utf8(ln.text)]
        ctrl = [fp.stem for fp in self.files for ln in fp.lines
                if ln.kind == "msg" and CONTROL_RE.search(ln.text)]
        p(f"files {nfiles}, users {len(self.users):,}, groups "
          f"{sum(1 for fp in self.files if fp.group_id)}, direct threads {len(self.direct):,}")
        p(f"input: {c['lines']:,} lines: {c['messages']:,} messages, {c['joins']:,} joins, "
          f"{c['leaves']:,} leaves/quits, {c['renames']:,} renames, "
          f"{c['other'] + c['blank']:,} other (actions, away notes: not sent)")
        p(f"input: {len(bad_utf8)} lines not valid UTF-8{_files(bad_utf8)}; "
          f"{len(ctrl)} lines with control characters{_files(ctrl)} (sent JSON-escaped)")
        nrej = sum(len(v) for v in self.rejected.values())
        p(f"messages: lines {lines:,}, sent {self.n_sent:,}, stored {self.n_201:,} (201) + "
          f"{self.n_200:,} retries (200), rejected {nrej:,}"
          + (f"; {self.n_retried:,} sends retried (connection error or 5xx)" if self.n_retried else ""))
        if not self.rejected:
            p("rejected: none")
        for (st, code, detail), stems in sorted(self.rejected.items(), key=lambda kv: -len(kv[1])):
            if st == "not sent":
                p(f"rejected: not sent, {detail} × {len(stems)}{_files(stems)}")
            elif st == "failed":
                p(f"rejected: FAILED, no answer after retries ({detail}) × {len(stems)}{_files(stems)}")
            else:
                p(f"rejected: {st} {code} \"{detail}\" × {len(stems)}{_files(stems)}")
        ok = True
        if not self.inbox:
            p(f"deliveries: NOT CHECKED — {self.inbox_why}")
            ok = False
        else:
            exp_tot = rec_tot = lost_tot = dup_tot = ooo_tot = extra = live_tot = 0
            per = []
            bad = []
            mine = defaultdict(list)  # user id -> thread ids
            for tid, mem in self.members.items():
                for uid in mem:
                    mine[uid].append(tid)
            for u in self.users.values():
                exp = lost = 0
                for tid in mine.get(u.id, ()):
                    seqs = self.stored.get(tid, ())
                    exp += len(seqs)
                    st = u.threads.get(tid)
                    bm = st[0] if st else b""
                    for s in seqs:
                        if (s >> 3) >= len(bm) or not bm[s >> 3] & (1 << (s & 7)):
                            lost += 1
                # delivered but never stored (or not in one of the user's threads)
                got = 0
                for tid, (bm, _) in u.threads.items():
                    seqs = self.stored.get(tid, set()) if u.id in self.members.get(tid, ()) else set()
                    n = sum(bin(b).count("1") for b in bm)
                    inside = sum(1 for s in seqs if (s >> 3) < len(bm) and bm[s >> 3] & (1 << (s & 7)))
                    extra += n - inside
                    got += inside
                exp_tot += exp
                rec_tot += got
                live_tot += u.received_live
                lost_tot += lost
                dup_tot += u.dup
                ooo_tot += u.ooo
                per.append(exp)
                if lost or u.dup or u.ooo:
                    bad.append((u, exp, got, lost))
            per.sort()
            p(f"deliveries: expected {exp_tot:,}, received {rec_tot:,} "
              f"({live_tot:,} live, {rec_tot - live_tot:,} at the final drain), "
              f"lost {lost_tot:,}, duplicated {dup_tot:,}, out of order {ooo_tot:,}")
            if per:
                p(f"deliveries: {len(per):,} devices, one per user; expected per device "
                  f"min {per[0]:,}, median {per[len(per) // 2]:,}, max {per[-1]:,}")
            if extra or self.unexpected or self.corrupted:
                p(f"deliveries: WRONG: {extra:,} not stored or outside the user's threads, "
                  f"{self.unexpected:,} with an unknown client_msg_id/sender, "
                  f"{self.corrupted:,} with a body other than the one sent")
            for u, exp, got, lost in bad[:10]:
                p(f"  device of {u.display} ({u.username}, id {u.id}): expected {exp:,}, "
                  f"received {got:,}, lost {lost:,}, duplicated {u.dup:,}, out of order {u.ooo:,}")
            if len(bad) > 10:
                p(f"  … and {len(bad) - 10:,} more devices with faults")
            ok = not (lost_tot or dup_tot or ooo_tot or extra or self.unexpected or self.corrupted)
            if self.lat:
                p(f"latency send→deliver: {_pct(self.lat)} ({len(self.lat):,} deliveries to parked polls)")
            else:
                p("latency send→deliver: no delivery reached a parked poll")
            ev = ", ".join(f"{k} {v:,}" for k, v in sorted(self.events.items()))
            p(f"inbox: {sum(u.polls for u in self.users.values()):,} long polls, "
              f"{sum(u.starts for u in self.users.values()):,} starts of polling; events: {ev or 'none'}")
            if self.poll_errors or self.cursor_resets:
                errs = ", ".join(f"{k} × {v}" for k, v in self.poll_errors.most_common())
                p(f"inbox errors: {errs}" + (f"; cursor reloads {self.cursor_resets}" if self.cursor_resets else ""))
        if self.net_errors:
            p("connection errors (retried): " +
              ", ".join(f"{k} × {v}" for k, v in self.net_errors.most_common(5)))
        if self.server_errors:
            p("server errors (retried): " +
              ", ".join(f"{k} × {v}" for k, v in self.server_errors.most_common(5)))
        if self.send_lat:
            p(f"latency send→answer (201/200): {_pct(self.send_lat)}")
        dur = max(self.send_ended - self.send_started, 1e-9)
        stored = self.n_201 + self.n_200
        p(f"throughput: {stored / dur:,.0f} msg/s over {dur:.1f} s"
          + (f" (SPEED={self.a.speed:g}: paced by the log)" if self.a.speed > 0 else "")
          + f"; setup (registration, logins, groups) {t_setup:.1f} s")
        if any(k[0] == "failed" for k in self.rejected):
            ok = False
        p("result: " + ("PASS — every stored message reached every member's device once, in order"
                        if ok else "FAIL"))
        print("\n".join(out), flush=True)
        return 0 if ok else 1


def _valid_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _route(path: str) -> str:
    return re.sub(r"/\d+", "/{id}", path.split("?")[0])


def _pct(xs) -> str:
    v = sorted(xs)
    q = lambda f: v[min(len(v) - 1, int(f * len(v)))]
    return f"p50 {q(0.50):.1f} ms, p99 {q(0.99):.1f} ms, max {v[-1]:.1f} ms"


def _files(stems) -> str:
    if not stems:
        return ""
    u = sorted(set(stems))
    return " (file" + ("s " if len(u) > 1 else " ") + ", ".join(u[:6]) + (", …" if len(u) > 6 else "") + ")"


# ------------------------------------------------------------------- main ---


def pick_files(data: str, spec: str | None) -> list[str]:
    allf = sorted(glob.glob(os.path.join(data, "*.txt")))
    if not spec:
        return allf
    if spec.isdigit():
        return allf[: int(spec)]
    pat = spec if os.path.isabs(spec) or spec.startswith(".") else os.path.join(data, spec)
    got = sorted(glob.glob(pat))
    if not got:
        got = sorted(glob.glob(os.path.join(data, f"*{spec}*")))
    return got


async def check_ready(url: str) -> int:
    t = Target(url)
    c = Conn(t)
    try:
        st, _, data = await c.request("GET", "/readyz", timeout=5.0)
    except NetError as e:
        print(f"demo: nothing answers at {url} ({e}): start the server with `make run` first "
              f"(in another terminal), or point CHAT_URL at it", file=sys.stderr)
        return 2
    finally:
        c.close()
    if st != 200:
        print(f"demo: {url}/readyz answers {st} {data[:200].decode('utf-8', 'replace')}: the "
              f"server is up but not ready (is its database running?); "
              f"start the server with `make run` first", file=sys.stderr)
        return 2
    return 0


async def amain(args) -> int:
    if args.check:
        return await check_ready(args.url)
    paths = pick_files(args.data, args.files)
    if not paths:
        print(f"demo: no log files in {args.data} match {args.files!r}", file=sys.stderr)
        return 2
    files = [parse_file(p) for p in paths]
    demo = Demo(args, files)
    rc = await check_ready(args.url)
    if rc:
        return rc
    demo.log(f"{len(files)} files, {sum(fp.counts['messages'] for fp in files):,} message lines, "
             f"{len(demo.users):,} nicknames; run id {demo.run_id}; server {args.url}")
    t0 = time.monotonic()
    await demo.setup_users()
    await demo.create_groups()
    t_setup = time.monotonic() - t0
    await demo.replay()
    await demo.settle_and_drain()
    return demo.report(t_setup)


def main() -> int:
    ap = argparse.ArgumentParser(description="Replay #ubuntu IRC logs through chatd and check delivery.")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--url", default=os.environ.get("CHAT_URL", "http://127.0.0.1:8080"))
    ap.add_argument("--speed", type=float, default=float(os.environ.get("SPEED", "0") or 0),
                    help="0 = as fast as possible; N = log time / N")
    ap.add_argument("--files", default=os.environ.get("DEMO_FILES") or None,
                    help="a count (first N files) or a glob")
    ap.add_argument("--data", default=os.path.normpath(os.path.join(here, "../../data/ubuntu-irc")))
    ap.add_argument("--pool", type=int, default=32, help="connections for sends and other short requests")
    ap.add_argument("--register-concurrency", type=int, default=8)
    ap.add_argument("--poll-timeout", type=int, default=30)
    ap.add_argument("--settle-max", type=float, default=30.0,
                    help="seconds to wait for parked polls to catch up before the final drain")
    ap.add_argument("--check", action="store_true", help="only check GET /readyz")
    args = ap.parse_args()
    if args.speed < 0:
        ap.error("SPEED must be 0 (as fast as possible) or a positive factor")
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, ValueError, OSError):
        pass
    try:
        return asyncio.run(amain(args))
    except KeyboardInterrupt:
        print("demo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
