#!/usr/bin/env python3
"""cluster.py — the cluster scenarios of `make bench` (bench/run.sh, step `cluster`).

    bench/cluster.py RUN_DIR tiny|short|long

Brings up `scripts/cluster.sh` in a temporary directory through
tests/cluster/cluster.py (Galera g1 g2 g3, Redis, chatd c1 c2 c3 from
CHATD_BIN — default build/chatd, the release build — and nginx, sticky by
token), runs the scenarios below in this order and writes one JSON file per
scenario into RUN_DIR, then stops everything it started (by PID: the Cluster
helper and the chatd processes of the writer experiment, whose PIDs it keeps).

  cluster-setup.json     the set-up: ports, versions, time to come up
  cluster-latency.json   send→deliver, cross-node vs same-node, in alternating
                         rounds of the same run (Python client, below)
  cluster-tp-1.json      closed loop msgs/s, every device and send on c1
  cluster-tp-3.json      the same through c1 c2 c3 (2/3 of the pairs cross-node)
  cluster-writers-single.json / cluster-writers-multi.json
                         the same load on three chatd of our own: all writing
                         through g1 (one host order) vs c1→g1, c2→g2, c3→g3
                         (each its own order), with Galera's certification
                         failures summed over the nodes
  cluster-park-1.json    `build/loadgen park` on c1 (what one node holds)
  cluster-park-3-cN.json the same on c1, c2 and c3 at once (the cluster)
  cluster-failover.json  g1 (the writer) killed with SIGKILL under load: the
                         time to the first successful send after it
  cluster.failed.json / cluster-<name>.failed.json   when something failed

The load generator (build/loadgen) takes one URL, so it cannot put a sender on
one node and its receiver on another; the scenarios that need that (latency,
throughput, writers, failover) use the asyncio HTTP/1.1 client below
(keep-alive connections, one per device and per sender and node). Every
scenario counts, per member device and thread, what the sends stored
(201/200) against what the device received: lost, duplicated, out of order
(and corrupted: a body not derived from its client_msg_id), after each
device has read its stream to the end (timeout=0).

Users are seeded in SQL as bench/db.c does (one user registered over HTTP
gives the Argon2id hash; users, user_streams, user_acks and one session per user whose
token_hash is SHA-256 of a random 43-character token), through g1.

Environment: CHATD_BIN, LOADGEN (default build/loadgen), CLUSTER_BENCH_ONLY
(space-separated scenario names: latency tp writers park failover; for
development), CLUSTER_BENCH_DIR (use the cluster already running in that
CLUSTER_DIR instead of starting one; for development: nothing is killed then).
Python 3 standard library only.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import math
import multiprocessing
import os
import random
import resource
import secrets
import signal
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "cluster"))
from cluster import Cluster, ClusterError  # noqa: E402

FILLER = "a benchmark message of ordinary chat length, checked on delivery"
NODES = ("c1", "c2", "c3")
GALERA = ("g1", "g2", "g3")
WSREP_KEYS = ("wsrep_local_cert_failures", "wsrep_local_bf_aborts", "wsrep_replicated",
              "wsrep_received", "wsrep_last_committed", "wsrep_flow_control_paused_ns",
              "wsrep_flow_control_sent", "Com_commit", "Com_rollback", "Innodb_deadlocks")
HARD = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
if HARD == resource.RLIM_INFINITY:
    HARD = 1048576
HARD = min(HARD, 1048576)

SIZES = {
    # a check of the harness, not a benchmark
    "tiny": dict(lat_pairs=6, lat_s=3, tp_senders=16, tp_s=2, park_n=500, park_idle=1, park_overlap=2,
                 fo_pairs=6, fo_warm=2, fo_after=2, fo_cap=30, drain=5, workers=1),
    "short": dict(lat_pairs=12, lat_s=20, tp_senders=64, tp_s=5, park_n=HARD - 1000, park_idle=2, park_overlap=6,
                  fo_pairs=12, fo_warm=3, fo_after=3, fo_cap=30, drain=5, workers=2),
    "long": dict(lat_pairs=12, lat_s=60, tp_senders=64, tp_s=30, park_n=HARD - 1000, park_idle=10, park_overlap=6,
                 fo_pairs=12, fo_warm=5, fo_after=5, fo_cap=40, drain=15, workers=2),
}
LAT_GAP = (0.02, 0.06)   # s between one pair's messages in the latency scenario
FO_GAP = 0.05            # s between one sender's messages in the failover scenario
TP_WARM = 1.0            # s of warm-up before the throughput window
POLL_TIMEOUT = 25        # s, the app's long-poll timeout


def log(msg):
    print(f"{time.strftime('%H:%M:%S', time.gmtime())} cluster-bench: {msg}", file=sys.stderr, flush=True)


def pct_of(xs, q):
    """q-th percentile (0..100) of a list, nearest rank; None when empty."""
    if not xs:
        return None
    s = sorted(xs)
    k = max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))
    return s[k]


def lat_stats(xs_s):
    """Latencies (seconds) → a dict in µs, like the load generator's."""
    if not xs_s:
        return {"n": 0}
    us = [x * 1e6 for x in xs_s]
    return {"n": len(us), "p50_us": pct_of(us, 50), "p90_us": pct_of(us, 90),
            "p99_us": pct_of(us, 99), "p999_us": pct_of(us, 99.9), "max_us": max(us),
            "mean_us": sum(us) / len(us)}


# ------------------------------------------------------------- processes ---

def proc_ticks(pid):
    """utime + stime (clock ticks) of pid and its direct children (nginx's workers)."""
    total = 0
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(f[11]) + int(f[12])
        for t in Path(f"/proc/{pid}/task").iterdir():
            for c in (t / "children").read_text().split():
                try:
                    g = Path(f"/proc/{c}/stat").read_text().rsplit(")", 1)[1].split()
                    total += int(g[11]) + int(g[12])
                except OSError:
                    pass
    except (OSError, IndexError, ValueError):
        return None
    return total


def rss_kb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


CLK = os.sysconf("SC_CLK_TCK")


class CpuSample:
    """CPU of named processes (and of this process and its finished workers)."""

    def __init__(self, pids):
        self.pids = dict(pids)
        self.t = time.monotonic()
        self.ticks = {n: proc_ticks(p) for n, p in self.pids.items()}
        ru, rc = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        self.self_s = ru.ru_utime + ru.ru_stime + rc.ru_utime + rc.ru_stime

    def pct_since(self, before, extra_self_s=0.0):
        wall = self.t - before.t
        out = {}
        for n in self.pids:
            a, b = before.ticks.get(n), self.ticks.get(n)
            out[n] = None if a is None or b is None or wall <= 0 else (b - a) / CLK / wall * 100
        out["client"] = (self.self_s - before.self_s + extra_self_s) / wall * 100 if wall > 0 else None
        return out


# ------------------------------------------------------------------ HTTP ---

class _Http(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time."""

    def __init__(self):
        self.t = None
        self.buf = bytearray()
        self.fut = None
        self.lost = False

    def connection_made(self, t):
        self.t = t

    def data_received(self, data):
        self.buf += data
        if self.fut is not None:
            self._parse()

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        self.lost = True
        f, self.fut = self.fut, None
        if f is not None and not f.done():
            f.set_exception(ConnectionResetError("connection closed"))

    def _parse(self):
        buf = self.buf
        i = buf.find(b"\r\n\r\n")
        if i < 0:
            return
        head = bytes(buf[:i]).lower()
        try:
            status = int(head[9:12])
        except ValueError:
            status = 0
        j = head.find(b"\r\ncontent-length:")
        cl = 0
        if j >= 0:
            k = head.find(b"\r\n", j + 2)
            cl = int(head[j + 17:k if k > 0 else len(head)])
        end = i + 4 + cl
        if len(buf) < end:
            return
        body = bytes(buf[i + 4:end])
        del buf[:end]
        f, self.fut = self.fut, None
        if f is not None and not f.done():
            f.set_result((status, body, b"\r\nconnection: close" in head))


class Client:
    """A keep-alive connection to one server, reopened after an error."""

    def __init__(self, url):
        hp = url.split("//", 1)[1].rstrip("/")
        self.host, port = hp.rsplit(":", 1)
        self.port = int(port)
        self.p = None

    def close(self):
        if self.p is not None and self.p.t is not None:
            self.p.t.close()
        self.p = None

    async def req(self, method, path, token=None, body=None, timeout=None):
        """(status, parsed JSON or None); status 0 on a connection error or timeout."""
        loop = asyncio.get_running_loop()
        try:
            if self.p is None or self.p.lost:
                _, self.p = await asyncio.wait_for(
                    loop.create_connection(_Http, self.host, self.port), 10)
            data = json.dumps(body).encode() if body is not None else b""
            head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                    + (f"Authorization: Bearer {token}\r\n" if token else "")
                    + (f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                       if body is not None else "") + "\r\n").encode()
            fut = loop.create_future()
            self.p.fut = fut
            self.p.t.write(head + data)
            if timeout:
                status, raw, close = await asyncio.wait_for(fut, timeout)
            else:
                status, raw, close = await fut
        except (OSError, asyncio.TimeoutError, ValueError):
            self.close()
            return 0, None
        if close:
            self.close()
        try:
            return status, (json.loads(raw) if raw else None)
        except ValueError:
            return status, None


# -------------------------------------------------------------- the book ---

class Dev:
    """One user's one session, polling its inbox on one node."""

    def __init__(self, uid, token, node):
        self.uid, self.token, self.node = uid, token, node
        self.cursor = None
        self.seen = {}    # thread id → set of seqs
        self.last = {}    # thread id → highest seq
        self.polls = 0
        self.errors = {}
        self.task = None
        self.conn = None
        self.stopped = False


class Book:
    """What was stored and what every device received."""

    def __init__(self, tag):
        self.tag = tag
        self.acked = {}        # thread id → {seq: cmid}
        self.members = {}      # thread id → [Dev]
        self.t_send = {}       # cmid → monotonic send time
        self.t_deliver = {}    # cmid → first delivery to a member other than the sender
        self.sender_of = {}    # cmid → sender Dev
        self.waiters = {}      # cmid → future (latency scenario)
        self.dup = self.ooo = self.corrupt = self.foreign = self.delivered = 0
        self.delivered_in_win = 0
        self.win = (float("inf"), float("inf"))
        self.events = {}

    def on_answer(self, dev, events, now):
        for ev in events:
            typ = ev.get("type")
            self.events[typ] = self.events.get(typ, 0) + 1
            if typ != "message":
                continue
            m = ev.get("message") or {}
            tid, seq, cmid = m.get("thread_id"), m.get("seq"), m.get("client_msg_id") or ""
            if tid not in self.members or not cmid.startswith(self.tag):
                self.foreign += 1
                continue
            if m.get("body") != f"{cmid} {FILLER}":
                self.corrupt += 1
            s = dev.seen.setdefault(tid, set())
            if seq in s:
                self.dup += 1
                continue
            if seq < dev.last.get(tid, 0):
                self.ooo += 1
            s.add(seq)
            if seq > dev.last.get(tid, 0):
                dev.last[tid] = seq
            self.delivered += 1
            if self.win[0] <= now < self.win[1]:
                self.delivered_in_win += 1
            if self.sender_of.get(cmid) is not dev and cmid not in self.t_deliver:
                self.t_deliver[cmid] = now
                w = self.waiters.pop(cmid, None)
                if w is not None and not w.done():
                    w.set_result(now)

    def expected(self):
        return sum(len(a) * len(self.members[t]) for t, a in self.acked.items())

    def verdict(self):
        lost = 0
        for tid, acked in self.acked.items():
            for d in self.members[tid]:
                lost += len(set(acked) - d.seen.get(tid, set()))
        return {"stored": sum(len(a) for a in self.acked.values()), "expected_deliveries": self.expected(),
                "delivered": self.delivered, "lost": lost, "duplicated": self.dup,
                "out_of_order": self.ooo, "corrupted": self.corrupt, "foreign": self.foreign,
                "events": self.events}


def count_err(d, what):
    d[what] = d.get(what, 0) + 1


async def head(dev, url, book):
    c = Client(url)
    for _ in range(100):
        st, b = await c.req("GET", "/v1/inbox", dev.token, timeout=15)
        if st == 200 and b and "next" in b:
            dev.cursor = b["next"]
            c.close()
            return
        await asyncio.sleep(0.2)
    c.close()
    raise RuntimeError(f"no inbox head for user {dev.uid}: {st}")


# A 410 (cursor_expired) is retried with the same cursor for up to this long
# before the device gives up its cursor: a cursor handed out by one chatd from
# another node's wake-up can be ahead of what this node's Galera node has
# applied yet (three writers), and becomes valid once it has.
CURSOR_RETRY_S = 5.0


async def poll_loop(dev, url, book, stop):
    dev.conn = Client(url)
    expired_since = None
    while not stop["poll"] and not dev.stopped:
        st, b = await dev.conn.req("GET", f"/v1/inbox?since={dev.cursor}&timeout={POLL_TIMEOUT}&limit=500",
                                   dev.token, timeout=POLL_TIMEOUT + 20)
        now = time.monotonic()
        if st == 200 and b is not None and "next" in b:
            dev.polls += 1
            book.on_answer(dev, b.get("events") or [], now)
            dev.cursor = b["next"]
            expired_since = None
            continue
        if dev.stopped:  # its connection was closed under it
            break
        count_err(dev.errors, f"inbox {st}")
        if st == 410:
            expired_since = expired_since or now
            if now - expired_since > CURSOR_RETRY_S:
                count_err(dev.errors, "cursor given up (410 for 5 s): reloaded")
                await head(dev, url, book)
                expired_since = None
            await asyncio.sleep(0.05)
            continue
        await asyncio.sleep(1.0 if st == 503 else 0.1)


async def read_to_end(dev, url, book, limit_s=30.0):
    """The stream to its end (timeout=0) on a fresh connection."""
    c = Client(url)
    end = time.monotonic() + limit_s
    try:
        while time.monotonic() < end:
            st, b = await c.req("GET", f"/v1/inbox?since={dev.cursor}&timeout=0&limit=500", dev.token, timeout=20)
            if st != 200 or b is None:
                count_err(dev.errors, f"final read {st}")
                await asyncio.sleep(0.05 if st == 410 else 0.2)
                continue
            evs = b.get("events") or []
            book.on_answer(dev, evs, time.monotonic())
            dev.cursor = b["next"]
            if not evs:
                return True
    finally:
        c.close()
    return False


async def stop_polls(devs):
    """Ends the devices' poll loops: a flag, a cancel, and their connection closed
    (Python 3.11's wait_for can swallow a cancel that meets an answer)."""
    tasks = []
    for d in devs:
        d.stopped = True
        if d.task is not None:
            d.task.cancel()
            tasks.append(d.task)
        if d.conn is not None:
            d.conn.close()
    if tasks:
        await asyncio.wait(tasks, timeout=10)
    for d in devs:
        if d.task is not None and not d.task.done():
            count_err(d.errors, "poll loop did not stop")
        d.task = None


async def final_reads(devs, urls, book):
    await stop_polls(devs)
    res = await asyncio.gather(*(read_to_end(d, urls[d.node], book) for d in devs))
    return sum(1 for r in res if not r)


async def send(c, pair, book, cmid, timeout=None):
    """One send; (status, seq or None)."""
    st, b = await c.req("POST", f"/v1/threads/{pair['tid']}/messages", pair["a"].token,
                        {"client_msg_id": cmid, "body": f"{cmid} {FILLER}"}, timeout=timeout)
    if st in (200, 201) and b and "message" in b:
        seq = b["message"]["seq"]
        book.acked[pair["tid"]][seq] = cmid
        return st, seq
    return st, None


def merge_errs(*ds):
    out = {}
    for d in ds:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return out


# --------------------------------------------------------------- context ---

class Ctx:
    def __init__(self, cluster, run, mode, own):
        self.c = cluster
        self.run = Path(run)
        self.mode = mode
        self.sz = SIZES[mode]
        self.own = own                  # we started the cluster (else: development)
        self.dir = Path(cluster.dir)
        self.urls = [cluster.chatd_urls[n] for n in NODES]
        self.lg = os.environ.get("LOADGEN") or str(REPO / "build" / "loadgen")
        self.chatd = os.environ.get("CHATD_BIN") or str(REPO / "build" / "chatd")
        self.pwhash = None
        self.src_next = 1
        self.own_procs = []             # chatd we started (writers), by Popen
        self.logdir = self.run / "cluster-logs"
        self.logdir.mkdir(exist_ok=True)

    def pid(self, name):
        """The PID of a part of the cluster (run/NAME.pid, checked against its start time)."""
        try:
            pid, start = (int(x) for x in (self.dir / "run" / f"{name}.pid").read_text().split())
            st = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            if int(st[19]) == start and st[0] not in ("Z", "X"):
                return pid
        except (OSError, ValueError, IndexError):
            pass
        return None

    def part_pids(self):
        return {n: p for n in ("g1", "g2", "g3", "redis", "c1", "c2", "c3", "nginx")
                if (p := self.pid(n))}

    def sql(self, node, query, timeout=60):
        """As root on the node's socket (the chat user has no right to SHOW STATUS of others)."""
        r = subprocess.run(["mariadb", "--no-defaults", "-uroot", f"--socket={self.dir / node / 'mysql.sock'}",
                            "--connect-timeout=5", "-N", "-B", "chat"], input=query,
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"{node}: SQL failed: {r.stderr.strip()[:300]}")
        return [line.split("\t") for line in r.stdout.splitlines()]

    def galera_status(self):
        out = {}
        keys = ",".join(f"'{k}'" for k in WSREP_KEYS)
        for g in GALERA:
            try:
                out[g] = {k: float(v) for k, v in
                          self.sql(g, f"SHOW GLOBAL STATUS WHERE Variable_name IN ({keys})", timeout=10)}
            except (RuntimeError, subprocess.TimeoutExpired, ValueError):
                out[g] = None
        return out

    def src(self, n):
        """n source addresses of our own (127.0.3.x: not run.sh's 127.0.0.x)."""
        out = []
        for _ in range(n):
            out.append(f"127.0.3.{self.src_next}")
            self.src_next += 1
        return out

    def log_offsets(self, files):
        return {str(f): (f.stat().st_size if f.exists() else 0) for f in files}

    def count_log(self, offsets, needle):
        """Lines containing needle written to the files since the offsets."""
        n = 0
        for f, off in offsets.items():
            try:
                with open(f, "rb") as fh:
                    fh.seek(off)
                    n += sum(1 for line in fh if needle in line)
            except OSError:
                pass
        return n

    def write(self, name, obj):
        p = self.run / f"{name}.json"
        p.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")
        log(f"wrote {p.name}")

    # -- users and threads ---------------------------------------------------
    def seed(self, n, prefix):
        """n users with one session each, in SQL through g1 (as bench/db.c); [(id, token)]."""
        names = [f"{prefix}{i}" for i in range(n)]
        toks = [secrets.token_urlsafe(32) for _ in range(n)]
        now = int(time.time() * 1000)
        q = ["START TRANSACTION;",
             "INSERT INTO users (username, display_name, password_hash, created_at) VALUES "
             + ",".join(f"('{u}','Bench {i}','{self.pwhash}',{now})" for i, u in enumerate(names)) + ";",
             f"INSERT INTO user_streams (user_id, last_pos) SELECT id, 0 FROM users WHERE username LIKE '{prefix}%';",
             f"INSERT INTO user_acks (user_id, acked_pos) SELECT id, 0 FROM users WHERE username LIKE '{prefix}%';",
             "COMMIT;",
             f"SELECT id, username FROM users WHERE username LIKE '{prefix}%';"]
        ids = {u: int(i) for i, u in self.sql("g1", "\n".join(q))}
        rows = []
        for u, t in zip(names, toks):
            h = hashlib.sha256(t.encode()).hexdigest()
            rows.append(f"({ids[u]}, X'{h}', 'bench', {now}, {now})")
        self.sql("g1", "INSERT INTO sessions (user_id, token_hash, device_name, created_at, last_seen_at) VALUES "
                 + ",".join(rows) + ";")
        return [(ids[u], t) for u, t in zip(names, toks)]

    async def make_pairs(self, npairs, tag, nodes_of):
        """npairs direct threads between fresh users; nodes_of(i) → (sender node, receiver node)."""
        users = self.seed(2 * npairs, f"cb{tag}_")
        pairs = []
        sem = asyncio.Semaphore(16)

        async def mk(i):
            (ua, ta), (ub, tb) = users[2 * i], users[2 * i + 1]
            na, nb = nodes_of(i)
            async with sem:
                c = Client(self.urls[na])
                for _ in range(50):
                    st, b = await c.req("POST", "/v1/threads", ta, {"member_ids": [ub]}, timeout=30)
                    if st in (200, 201) and b and "thread" in b:
                        break
                    await asyncio.sleep(0.2)
                else:
                    raise RuntimeError(f"creating a thread failed: {st} {b}")
                c.close()
            return {"i": i, "tid": b["thread"]["id"], "a": Dev(ua, ta, na), "b": Dev(ub, tb, nb)}
        pairs = await asyncio.gather(*(mk(i) for i in range(npairs)))
        return pairs


def book_for(tag, pairs):
    book = Book(tag)
    for p in pairs:
        book.acked[p["tid"]] = {}
        book.members[p["tid"]] = [p["a"], p["b"]]
    return book


async def parked_sum(urls):
    """chatd_parked_polls summed over the nodes' /metrics."""
    total = 0
    for u in urls:
        c = Client(u)
        st, _ = 0, None
        try:
            loop = asyncio.get_running_loop()
            _, p = await asyncio.wait_for(loop.create_connection(_Http, c.host, c.port), 5)
            fut = loop.create_future()
            p.fut = fut
            p.t.write(f"GET /metrics HTTP/1.1\r\nHost: {c.host}\r\n\r\n".encode())
            st, raw, _ = await asyncio.wait_for(fut, 5)
            p.t.close()
            for line in raw.decode(errors="replace").splitlines():
                if line.startswith("chatd_parked_polls "):
                    total += int(float(line.split()[1]))
        except (OSError, asyncio.TimeoutError, ValueError):
            pass
    return total


async def wait_parked(urls, want, cap=15.0):
    end = time.monotonic() + cap
    n = 0
    while time.monotonic() < end:
        n = await parked_sum(urls)
        if n >= want:
            return n
        await asyncio.sleep(0.1)
    return n


# ============================================================ scenarios ===

# ---------------------------------------------------- send → deliver -----

async def sc_latency(ctx):
    """Each pair: the receiver polls on node R = i mod 3; the sender sends its
    k-th message through R (same node) or through one of the two others
    (cross), alternating with k, half the pairs starting with each: both kinds
    share the run's load. One message at a time per pair; the next one
    20–60 ms after the last was delivered."""
    sz = ctx.sz
    P, secs = sz["lat_pairs"], sz["lat_s"]
    tag = "L" + secrets.token_hex(3)
    pairs = await ctx.make_pairs(P, tag, lambda i: (i % 3, i % 3))
    book = book_for(tag, pairs)
    recv = [p["b"] for p in pairs]
    await asyncio.gather(*(head(d, ctx.urls[d.node], book) for d in recv))
    stop = {"poll": False, "send": False}
    base = await parked_sum(ctx.urls)
    for d in recv:
        d.task = asyncio.ensure_future(poll_loop(d, ctx.urls[d.node], book, stop))
    parked = await wait_parked(ctx.urls, base + P)
    samples = []   # (kind, from node, to node, send→201 s, send→deliver s or None)
    send_errs = {}
    late = 0
    cpu0 = CpuSample(ctx.part_pids())
    t_end = time.monotonic() + secs

    async def sender(p):
        nonlocal late
        i = p["i"]
        r = p["b"].node
        conns = {n: Client(ctx.urls[n]) for n in range(3)}
        k = 0
        await asyncio.sleep(random.uniform(*LAT_GAP))
        while time.monotonic() < t_end:
            same = (k + i) % 2 == 0
            node = r if same else (r + 1 + (k // 2) % 2) % 3
            cmid = f"{tag}.{i}.{k}"
            k += 1
            fut = asyncio.get_running_loop().create_future()
            book.waiters[cmid] = fut
            book.sender_of[cmid] = p["a"]
            t0 = time.monotonic()
            book.t_send[cmid] = t0
            for _ in range(20):
                st, seq = await send(conns[node], p, book, cmid, timeout=15)
                if seq is not None:
                    break
                count_err(send_errs, f"send {st}")
                await asyncio.sleep(0.1)
            t1 = time.monotonic()
            try:
                td = await asyncio.wait_for(fut, 5)
                samples.append(("same" if same else "cross", node, r, t1 - t0, td - t0))
            except asyncio.TimeoutError:
                late += 1
                book.waiters.pop(cmid, None)
                samples.append(("same" if same else "cross", node, r, t1 - t0, None))
            await asyncio.sleep(random.uniform(*LAT_GAP))
        for c in conns.values():
            c.close()

    await asyncio.gather(*(sender(p) for p in pairs))
    cpu1 = CpuSample(ctx.part_pids())
    unfinished = await final_reads(recv, ctx.urls, book)
    # the senders' own devices do not poll here: only receivers are members to check
    for p in pairs:
        book.members[p["tid"]] = [p["b"]]
    v = book.verdict()
    out = {"scenario": "latency", "pairs": P, "seconds": secs, "gap_s": list(LAT_GAP),
           "parked_reported": parked - base, "late_over_5s": late, "send_errors": send_errs,
           "poll_errors": merge_errs(*(d.errors for d in recv)), "final_reads_unfinished": unfinished,
           "cpu_pct": cpu1.pct_since(cpu0), **v}
    for kind in ("same", "cross"):
        xs = [s for s in samples if s[0] == kind]
        out[kind] = {"sends": len(xs), "send_to_201": lat_stats([s[3] for s in xs]),
                     "send_to_deliver": lat_stats([s[4] for s in xs if s[4] is not None])}
    by_route = {}
    for s in samples:
        if s[4] is not None:
            by_route.setdefault(f"c{s[1] + 1}→c{s[2] + 1}", []).append(s[4])
    out["by_route"] = {k: lat_stats(v) for k, v in sorted(by_route.items())}
    ctx.write("cluster-latency", out)


# ------------------------------------------------------ closed loop -----

def tp_worker(args, pipe):
    """A process of its own: its share of the pairs in a closed loop, then its verdict."""
    try:
        # never outlive the parent (PR_SET_PDEATHSIG), and die of SIGTERM plainly
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
            if os.getppid() == 1:
                os._exit(1)
        except (OSError, AttributeError):
            pass
        # forked from inside the parent's running loop: forget it (Python < 3.12 does not)
        asyncio.events._set_running_loop(None)
        res = asyncio.run(_tp_worker(**args))
    except Exception:
        res = {"error": traceback.format_exc()}
    ru = resource.getrusage(resource.RUSAGE_SELF)
    res["cpu_s"] = ru.ru_utime + ru.ru_stime
    pipe.send(res)
    pipe.close()


async def _watchdog(at, what):
    """Past `at`, says where every task of this process waits (a hang is a bug here)."""
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    log(f"{what} (pid {os.getpid()}) still running: its tasks")
    for t in asyncio.all_tasks():
        t.print_stack(limit=8, file=sys.stderr)
    sys.stderr.flush()


async def _tp_worker(pairs, urls, tag, t_start, win0, win1, drain):
    wd = asyncio.ensure_future(_watchdog(win1 + drain + 90, "a throughput worker"))
    book = book_for(tag, pairs)
    book.win = (win0, win1)
    devs = [p["a"] for p in pairs] + [p["b"] for p in pairs]
    stop = {"poll": False, "send": False}
    for d in devs:
        d.task = asyncio.ensure_future(poll_loop(d, urls[d.node], book, stop))
    send_errs = {}
    lat_send = []
    stored_in_win = [0]
    inflight = [0]

    async def sender(p):
        c = Client(urls[p["a"].node])
        k = 0
        await asyncio.sleep(max(0.0, t_start - time.monotonic()))
        while not stop["send"]:
            cmid = f"{tag}.{p['i']}.{k}"
            k += 1
            book.sender_of[cmid] = p["a"]
            t0 = time.monotonic()
            book.t_send[cmid] = t0
            inflight[0] += 1
            tries = 0
            while True:
                st, seq = await send(c, p, book, cmid, timeout=15)
                if seq is not None or tries >= 20 or time.monotonic() > win1 + 20:
                    break
                tries += 1
                count_err(send_errs, f"send {st}")
                await asyncio.sleep(0.1)
            inflight[0] -= 1
            t1 = time.monotonic()
            if seq is not None and win0 <= t1 < win1:
                stored_in_win[0] += 1
                lat_send.append(t1 - t0)
        c.close()

    tasks = [asyncio.ensure_future(sender(p)) for p in pairs]
    await asyncio.sleep(max(0.0, win1 - time.monotonic()))
    stop["send"] = True
    await asyncio.gather(*tasks)
    t_stop = time.monotonic()
    end = t_stop + drain
    while time.monotonic() < end:
        if book.delivered >= book.expected():
            break
        await asyncio.sleep(0.05)
    drain_s = time.monotonic() - t_stop
    delivered_at_drain = book.delivered
    unfinished = await final_reads(devs, urls, book)
    v = book.verdict()
    lat_deliver = [book.t_deliver[c] - book.t_send[c] for c in book.t_deliver
                   if c in book.t_send and win0 <= book.t_send[c] < win1]
    wd.cancel()
    return {"stored_in_window": stored_in_win[0], "delivered_in_window": book.delivered_in_win,
            "send_lat": lat_send, "deliver_lat": lat_deliver, "send_errors": send_errs,
            "poll_errors": merge_errs(*(d.errors for d in devs)), "drain_s": drain_s,
            "late": v["delivered"] - delivered_at_drain, "final_reads_unfinished": unfinished,
            "polls": sum(d.polls for d in devs), **v}


async def tp_run(ctx, name, urls, placement, label, pids, log_files, extra=None):
    """A closed loop of tp_senders senders, 1:1, both members' devices polling:
    placement "one" puts every device and every send on urls[0]; "three" puts
    pair i's sender on node i mod 3 and its receiver on node (i div 3) mod 3
    (all nine combinations, 2/3 of the pairs across nodes, as sticky hashing
    spreads tokens)."""
    sz = ctx.sz
    S, secs, W = sz["tp_senders"], sz["tp_s"], max(1, sz["workers"])
    tag = "T" + secrets.token_hex(3)
    if placement == "one":
        nodes_of = lambda i: (0, 0)  # noqa: E731
    else:
        nodes_of = lambda i: (i % 3, (i // 3) % 3)  # noqa: E731
    saved = ctx.urls
    ctx.urls = urls
    try:
        pairs = await ctx.make_pairs(S, tag, nodes_of)
    finally:
        ctx.urls = saved
    devs = [p["a"] for p in pairs] + [p["b"] for p in pairs]
    book0 = book_for(tag, pairs)
    await asyncio.gather(*(head(d, urls[d.node], book0) for d in devs))
    base = await parked_sum(urls)
    now = time.monotonic()
    # workers fork now; each parks its devices, then all send from t_start
    t_start = now + 2.5 + 0.002 * len(devs)
    win0, win1 = t_start + TP_WARM, t_start + TP_WARM + secs
    procs, pipes = [], []
    mp = multiprocessing.get_context("fork")
    for w in range(W):
        mine = [p for p in pairs if p["i"] % W == w]
        a, b = mp.Pipe(duplex=False)
        pr = mp.Process(target=tp_worker, args=(dict(pairs=mine, urls=urls, tag=tag, t_start=t_start,
                                                     win0=win0, win1=win1, drain=sz["drain"]), b))
        pr.start()
        b.close()
        procs.append(pr)
        pipes.append(a)
    parked = await wait_parked(urls, base + len(devs), cap=max(1.0, t_start - time.monotonic()))
    offs = ctx.log_offsets(log_files)
    gal0 = ctx.galera_status()
    pids = dict(pids)
    for w, pr in enumerate(procs):
        pids[f"client-w{w + 1}"] = pr.pid
    await asyncio.sleep(max(0.0, win0 - time.monotonic()))
    cpu0 = CpuSample(pids)
    await asyncio.sleep(max(0.0, win1 - time.monotonic()))
    cpu1 = CpuSample(pids)
    loop = asyncio.get_running_loop()
    results = []
    for pr, a in zip(procs, pipes):
        r = await loop.run_in_executor(None, lambda a=a: a.recv() if a.poll(sz["drain"] + 120) else
                                       {"error": "no answer within the drain and 120 s"})
        results.append(r)
        await loop.run_in_executor(None, pr.join, 10)
        if pr.is_alive():  # by its PID: ours, forked above
            pr.kill()
            pr.join(5)
    gal1 = ctx.galera_status()
    errs = [r["error"] for r in results if "error" in r]
    if errs:
        raise RuntimeError("a worker failed:\n" + "\n".join(errs))
    # the workers' CPU inside the window: their share of their total, by time
    worker_cpu_s = sum(r["cpu_s"] for r in results)
    cpu = cpu1.pct_since(cpu0)
    send_lat = [x for r in results for x in r["send_lat"]]
    deliver_lat = [x for r in results for x in r["deliver_lat"]]
    keys = ("stored", "expected_deliveries", "delivered", "lost", "duplicated", "out_of_order",
            "corrupted", "foreign", "late", "final_reads_unfinished", "stored_in_window",
            "delivered_in_window", "polls")
    tot = {k: sum(r[k] for r in results) for k in keys}
    out = {"scenario": name, "label": label, "placement": placement, "urls": urls, "senders": S,
           "devices": len(devs), "workers": W, "window_s": secs, "warm_s": TP_WARM,
           "parked_reported": parked - base,
           "cross_pairs": sum(1 for i in range(S) if nodes_of(i)[0] != nodes_of(i)[1]),
           **tot, "stored_per_s": tot["stored_in_window"] / secs,
           "deliveries_per_s": tot["delivered_in_window"] / secs,
           "send_latency": lat_stats(send_lat), "deliver_latency": lat_stats(deliver_lat),
           "send_errors": merge_errs(*(r["send_errors"] for r in results)),
           "poll_errors": merge_errs(*(r["poll_errors"] for r in results)),
           "drain_s": max(r["drain_s"] for r in results),
           "events": merge_errs(*(r["events"] for r in results)),
           "cpu_pct": cpu, "client_cpu_s_total": worker_cpu_s,
           "galera_before": gal0, "galera_after": gal1,
           "chatd_commit_failed_logged": ctx.count_log(offs, b"commit failed"),
           "chatd_gave_up_logged": ctx.count_log(offs, b"gave up after"), **(extra or {})}
    ctx.write(name, out)
    return out


async def sc_tp(ctx):
    pids = ctx.part_pids()
    logs = [ctx.dir / f"{n}.log" for n in NODES]
    await tp_run(ctx, "cluster-tp-1", ctx.urls[:1], "one", "1 node (c1)", pids, logs)
    await tp_run(ctx, "cluster-tp-3", ctx.urls, "three", "3 nodes (c1 c2 c3)", pids, logs)
    # the same 1-node load from the C load generator (bench/loadgen.c, S3's): what
    # the Python client's own CPU costs the figures above
    ensure_init(ctx)
    name = "cluster-tp-1-loadgen"
    cmd = [ctx.lg, "--url", ctx.urls[0], "--server-pid", str(ctx.pid("c1") or 0),
           "--db-pid", str(ctx.pid("g1") or 0), "--db-socket", str(ctx.dir / "g1" / "mysql.sock"),
           "--db-name", "chat", "--label", name, "--src", ",".join(ctx.src(1)),
           "--drain", str(ctx.sz["drain"]), "--final-drain", str(ctx.sz["drain"]),
           "--group", "1", "--senders", str(ctx.sz["tp_senders"]), "--seconds", str(ctx.sz["tp_s"]),
           "--out", str(ctx.run / f"{name}.json"), "throughput"]
    lg_command(ctx, cmd)
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=open(ctx.run / f"{name}.log", "ab"), timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"loadgen throughput failed ({name}.log)")


# ------------------------------------------------ one writer vs three ----

def start_own_chatd(ctx, name, db_hosts, logf):
    """A chatd of our own on the cluster's Galera nodes and Redis, with the
    environment cluster.sh gives c1..c3 (chatd_env) but its own db_url."""
    v = ctx.c.vars
    url = "mysql://chat:chat@" + ",".join(f"127.0.0.1:{v[g.upper() + '_PORT']}" for g in db_hosts) + "/chat"
    env = dict(os.environ)
    env.pop("CHAT_CONFIG", None)
    env.update(CHAT_LISTEN="127.0.0.1:0", CHAT_NODE_ID=name, CHAT_DB_URL=url,
               CHAT_REDIS_URL=v["CHAT_REDIS_URL"], CHAT_WWW_ROOT=str(REPO / "www"),
               CHAT_SQL_DIR=str(REPO / "sql"), CHAT_THREADS=os.environ.get("CHAT_THREADS", "2"),
               CHAT_SEND_WORKERS=os.environ.get("CHAT_SEND_WORKERS", "1"),
               CHAT_ACK_WORKERS=os.environ.get("CHAT_ACK_WORKERS", "1"),
               # as cluster.sh gives its nodes: the migrations ran when the cluster
               # started (chatd --migrate); three nodes taking the migration lock at
               # once through three Galera nodes could fail on a certification conflict
               CHAT_MIGRATE="check", CHAT_RATE_LIMITS="false")
    fh = open(logf, "ab")
    p = subprocess.Popen([ctx.chatd], cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=fh,
                         stderr=subprocess.STDOUT, start_new_session=True)
    fh.close()
    ctx.own_procs.append(p)
    return p, url


def wait_listening(p, logf, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if p.poll() is not None:
            raise RuntimeError(f"chatd exited ({p.returncode}); see {logf}")
        for line in Path(logf).read_text(errors="replace").splitlines():
            if "listening on http://" in line:
                url = "http://" + line.split("listening on http://", 1)[1].split()[0].rstrip("/")
                r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3",
                                    url + "/readyz"], capture_output=True, text=True)
                if r.stdout == "200":
                    return url
        time.sleep(0.1)
    raise RuntimeError(f"chatd not ready after {timeout} s; see {logf}")


def stop_own(ctx):
    for p in ctx.own_procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in ctx.own_procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
    ctx.own_procs = []


async def sc_writers(ctx):
    """The same closed loop (placement "three") on three chatd of our own:
    'single' gives each the cluster's order g1,g2,g3 (all write through g1,
    as `make cluster` does), 'multi' gives w1 g1,g2,g3, w2 g2,g3,g1 and w3
    g3,g1,g2: each writes through a Galera node of its own."""
    orders = {"single": [GALERA, GALERA, GALERA],
              "multi": [("g1", "g2", "g3"), ("g2", "g3", "g1"), ("g3", "g1", "g2")]}
    for variant in ("single", "multi"):
        procs, logs, dburls = [], [], []
        try:
            for k, hosts in enumerate(orders[variant]):
                logf = ctx.logdir / f"writers-{variant}-w{k + 1}.log"
                logf.write_text("")
                p, u = start_own_chatd(ctx, f"w{k + 1}-{variant}", hosts, logf)
                procs.append(p)
                logs.append(logf)
                dburls.append(u)
            urls = [wait_listening(p, lf) for p, lf in zip(procs, logs)]
            pids = dict(ctx.part_pids())
            for k, p in enumerate(procs):
                pids[f"w{k + 1}"] = p.pid
            for n in NODES:  # the cluster's own chatd sit idle meanwhile
                pids.pop(n, None)
            await tp_run(ctx, f"cluster-writers-{variant}", urls, "three", f"{variant} writer", pids, logs,
                         extra={"db_urls": [u.replace("chat:chat@", "chat:…@") for u in dburls]})
        finally:
            stop_own(ctx)


# ------------------------------------------------------- parked polls ----

def ensure_init(ctx):
    """The user whose password hash the load generator's seeding copies."""
    if getattr(ctx, "lg_init", False):
        return
    r = subprocess.run([ctx.lg, "--url", ctx.urls[0], "init"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"loadgen init failed: {r.stderr}")
    ctx.lg_init = True


def lg_command(ctx, cmd):
    with open(ctx.run / "commands.txt", "a") as f:
        f.write(" ".join(cmd).replace(str(ctx.run), "$RUN").replace(str(REPO) + "/", "")
                .replace(str(ctx.dir), "$CLUSTER_DIR") + "\n")


def scrape_parked(url):
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=2) as r:
            for line in r.read().decode(errors="replace").splitlines():
                if line.startswith("chatd_parked_polls "):
                    return int(float(line.split()[1]))
    except (OSError, ValueError):
        pass
    return None


class ParkedSampler(threading.Thread):
    """chatd_parked_polls of every node every 0.25 s: the most held at once."""

    def __init__(self, urls):
        super().__init__(daemon=True)
        self.urls = urls
        self.stop = threading.Event()
        self.samples = []   # (s since start, [per node])
        self.t0 = time.monotonic()

    def run(self):
        while not self.stop.is_set():
            t = time.monotonic() - self.t0
            self.samples.append((round(t, 2), [scrape_parked(u) for u in self.urls]))
            self.stop.wait(0.25)

    def result(self):
        base = self.samples[0][1] if self.samples else []
        best, at = -1, None
        for t, v in self.samples:
            tot = sum(x or 0 for x in v)
            if tot > best:
                best, at = tot, (t, v)
        return {"baseline": base, "baseline_sum": sum(x or 0 for x in base), "max_sum": best,
                "at_max": {"t_s": at[0], "per_node": at[1]} if at else None,
                "samples": [[t, v] for t, v in self.samples[::4]]}


def lg_park(ctx, name, node, n, idle=None):
    procs = (n + 9999) // 10000
    url = ctx.c.chatd_urls[node]
    cmd = [ctx.lg, "--url", url, "--server-pid", str(ctx.pid(node) or 0), "--db-pid", str(ctx.pid("g1") or 0),
           "--db-socket", str(ctx.dir / "g1" / "mysql.sock"), "--db-name", "chat", "--label", name,
           "--src", ",".join(ctx.src(procs)), "--n", str(n), "--procs", str(procs),
           "--idle", str(idle if idle is not None else ctx.sz["park_idle"]), "--out", str(ctx.run / f"{name}.json"), "park"]
    lg_command(ctx, cmd)
    with open(ctx.run / f"{name}.log", "ab") as err:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    ctx.own_procs.append(p)  # stopped by PID with the rest if the step is cut short
    return p


def sc_park(ctx):
    """build/loadgen park: n polls on c1 alone, then n on each of c1 c2 c3 at
    once. A poll whose client went away stays parked until its timeout, so
    each node is restarted after it held polls (as S1 restarts chatd)."""
    n = ctx.sz["park_n"]
    ensure_init(ctx)
    log(f"park: {n:,} on c1")
    p = lg_park(ctx, "cluster-park-1", "c1", n)
    if p.wait(600) != 0:
        raise RuntimeError("loadgen park on c1 failed (cluster-park-1.log)")
    ctx.c.restart("c1")
    log(f"park: {n:,} on each of c1 c2 c3 at once")
    ps = []
    sampler = ParkedSampler(ctx.urls)
    sampler.start()
    for k, node in enumerate(NODES):
        # one seeding at a time (concurrent ones deadlock on users' MAX(id) FOR
        # UPDATE); the parking itself overlaps, and the earlier generators stay
        # idle longer, so that all the polls are held at once for a while
        ps.append(lg_park(ctx, f"cluster-park-3-{node}", node, n,
                          idle=ctx.sz["park_idle"] + ctx.sz["park_overlap"] * (len(NODES) - 1 - k)))
        end = time.monotonic() + 120
        while ps[-1].poll() is None and time.monotonic() < end and \
                b"seeded" not in (ctx.run / f"cluster-park-3-{node}.log").read_bytes():
            time.sleep(0.05)
    rcs = [p.wait(600) for p in ps]
    sampler.stop.set()
    sampler.join(5)
    ctx.write("cluster-park-3", {"scenario": "park", "asked_per_node": n, "asked": n * len(NODES),
                                 "nodes": list(NODES), **sampler.result()})
    for node in NODES:
        ctx.c.restart(node)
    if any(rcs):
        raise RuntimeError(f"loadgen park failed on {[n for n, rc in zip(NODES, rcs) if rc]}")


# ----------------------------------------------------------- failover ----

def kill_part(ctx, name):
    """SIGKILL a part (its process group, as cluster.sh kill does); the time of the kill."""
    pid = ctx.pid(name)
    if pid is None:
        raise RuntimeError(f"{name} does not run")
    try:
        pgid = os.getpgid(pid)
    except OSError:
        pgid = None
    if pgid == pid:
        os.killpg(pid, signal.SIGKILL)
    else:
        os.kill(pid, signal.SIGKILL)
    t = time.monotonic()
    end = t + 10
    while ctx.pid(name) is not None and time.monotonic() < end:
        time.sleep(0.01)
    return t, pid


async def sc_failover(ctx):
    """Pairs send through nginx (sticky by token, as in production), both
    members' devices poll through it; after fo_warm s (and once every sender
    has had a send answered) g1 — the Galera node
    every chatd writes through — is killed with SIGKILL. A send that fails
    (5xx, cut off, no answer in 20 s) is sent again with its client_msg_id
    after 100 ms. The gap: from the kill to the first 201/200 answering a
    send issued after it."""
    sz = ctx.sz
    P = sz["fo_pairs"]
    tag = "F" + secrets.token_hex(3)
    nginx = ctx.c.nginx_url
    urls3 = ctx.urls
    ctx.urls = [nginx]
    try:
        pairs = await ctx.make_pairs(P, tag, lambda i: (0, 0))
    finally:
        ctx.urls = urls3
    book = book_for(tag, pairs)
    devs = [p["a"] for p in pairs] + [p["b"] for p in pairs]
    urls = [nginx]
    await asyncio.gather(*(head(d, nginx, book) for d in devs))
    stop = {"poll": False, "send": False}
    for d in devs:
        d.task = asyncio.ensure_future(poll_loop(d, nginx, book, stop))
    await asyncio.sleep(1.0)
    offs = ctx.log_offsets([ctx.dir / f"{n}.log" for n in NODES])
    gal0 = ctx.galera_status()
    recs = []   # (sender, t_issue, t_answer, status)
    state = {"t_kill": None}
    send_errs = {}

    async def sender(p):
        c = Client(nginx)
        k = 0
        await asyncio.sleep(random.uniform(0, FO_GAP))
        while not stop["send"]:
            cmid = f"{tag}.{p['i']}.{k}"
            k += 1
            book.sender_of[cmid] = p["a"]
            book.t_send[cmid] = time.monotonic()
            for _ in range(400):
                t0 = time.monotonic()
                st, seq = await send(c, p, book, cmid, timeout=20)
                t1 = time.monotonic()
                recs.append((p["i"], t0, t1, st))
                if seq is not None or stop["send"]:
                    break
                if state["t_kill"] is not None:
                    count_err(send_errs, f"send {st}")
                else:
                    count_err(send_errs, f"send {st} (before the kill)")
                await asyncio.sleep(0.1)
            await asyncio.sleep(FO_GAP)
        c.close()

    tasks = [asyncio.ensure_future(sender(p)) for p in pairs]
    t_warm = time.monotonic()
    await asyncio.sleep(sz["fo_warm"])
    # the kill only once every sender has had a send answered (at most 20 s more)
    while time.monotonic() < t_warm + sz["fo_warm"] + 20 and \
            len({r[0] for r in recs if r[3] in (200, 201)}) < P:
        await asyncio.sleep(0.05)
    warm_s = time.monotonic() - t_warm
    loop = asyncio.get_running_loop()
    t_kill, gpid = await loop.run_in_executor(None, kill_part, ctx, "g1")
    state["t_kill"] = t_kill
    log(f"failover: g1 (pid {gpid}) killed")
    # until every sender has had a success issued after the kill, and then fo_after s more
    end = t_kill + sz["fo_cap"]
    while time.monotonic() < end:
        ok_after = {r[0] for r in recs if r[1] >= t_kill and r[3] in (200, 201)}
        if len(ok_after) == P:
            first = min(r[2] for r in recs if r[1] >= t_kill and r[3] in (200, 201))
            if time.monotonic() - first >= sz["fo_after"]:
                break
        await asyncio.sleep(0.05)
    stop["send"] = True
    await asyncio.gather(*tasks)
    t_stop = time.monotonic()
    while time.monotonic() < t_stop + sz["drain"] and book.delivered < book.expected():
        await asyncio.sleep(0.05)
    unfinished = await final_reads(devs, urls, book)
    gal1 = ctx.galera_status()
    v = book.verdict()
    ok = [r for r in recs if r[3] in (200, 201)]
    after = [r for r in ok if r[1] >= t_kill]
    before = [r for r in ok if r[2] < t_kill]
    gap = (min(r[2] for r in after) - t_kill) if after else None
    # any success answered after the kill (a send in flight at the kill included)
    any_after = [r[2] for r in ok if r[2] >= t_kill]
    per_sender = []
    for i in range(P):
        xs = [r[2] for r in ok if r[0] == i and r[1] >= t_kill]
        if xs:
            per_sender.append(min(xs) - t_kill)
    # the longest stretch without any successful answer (a send in flight at the
    # kill included), from the last one before the kill to the first one answering
    # a send issued after it
    stall = None
    if before and after:
        ts = sorted([max(r[2] for r in before)] + [t for t in any_after if t <= min(r[2] for r in after)])
        stall = max(b - a for a, b in zip(ts, ts[1:])) if len(ts) > 1 else None
    slow = [r[2] - r[1] for r in recs if r[1] >= t_kill - 1]
    pre = [r[2] - r[1] for r in recs if r[2] < t_kill and r[3] in (200, 201)]
    out = {"scenario": "failover", "pairs": P, "killed": "g1", "via": "nginx", "warm_s": warm_s,
           "senders_ok_before": len({r[0] for r in before}), "send_latency_before": lat_stats(pre),
           "gap_s": gap, "first_answer_after_kill_s": (min(any_after) - t_kill) if any_after else None,
           "stall_s": stall, "per_sender_recovery_s": lat_stats(per_sender),
           "slowest_request_s": max(slow) if slow else None,
           "sends_ok_before": len(before), "sends_ok_after": len([r for r in ok if r[2] >= t_kill]),
           "send_attempts": len(recs), "send_errors": send_errs,
           "senders_recovered": len(per_sender),
           "poll_errors": merge_errs(*(d.errors for d in devs)), "final_reads_unfinished": unfinished,
           "observed_s": t_stop - t_kill, "galera_before": gal0, "galera_after": gal1,
           "chatd_log": {k: ctx.count_log(offs, k.encode()) for k in
                         ("db: ", "commit failed", "outcome unknown", "now writing through")},
           **v}
    ctx.write("cluster-failover", out)


# ================================================================= main ===

async def register_seed(url):
    c = Client(url)
    for _ in range(50):
        st, _ = await c.req("POST", "/v1/users", None, {"username": "cbseed", "password": "cbseed-password-1"},
                            timeout=30)
        if st in (201, 409):
            c.close()
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"registering cbseed failed ({st})")


SCENARIOS = ("latency", "tp", "writers", "park", "failover")


def keep_logs(c, run):
    """The cluster's logs into RUN/cluster-logs (the cluster's directory goes away); the
    last MiB of each."""
    d = run / "cluster-logs"
    d.mkdir(exist_ok=True)
    for name in ("cluster", "c1", "c2", "c3", "g1", "g2", "g3", "redis", "nginx"):
        src = c.log_path(name)
        dst = d / (f"{name}.log" if name.startswith("c") else f"{name}.err")
        try:
            with open(src, "rb") as f:
                f.seek(max(0, src.stat().st_size - (1 << 20)))
                dst.write_bytes(f.read())
        except OSError:
            pass


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in SIZES:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        sys.exit(2)
    run, mode = Path(sys.argv[1]).resolve(), sys.argv[2]
    run.mkdir(parents=True, exist_ok=True)
    only = (os.environ.get("CLUSTER_BENCH_ONLY") or "").split() or list(SCENARIOS)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    chatd = os.environ.get("CHATD_BIN") or str(REPO / "build" / "chatd")
    dev_dir = os.environ.get("CLUSTER_BENCH_DIR")
    own = False
    ctx = None
    t0 = time.monotonic()
    setup = {"mode": mode, "sizes": SIZES[mode], "chatd_bin": os.path.relpath(chatd, REPO),
             "nofile_hard": hard, "scenarios": only, "failed": []}
    if dev_dir:
        c = Cluster(chatd_bin=chatd, keep=True)
        os.rmdir(c.dir)  # the helper's own temporary directory: not used
        c.dir = dev_dir
        c._env["CLUSTER_DIR"] = dev_dir
        c.vars = c.env()
        own = False
    else:
        c = Cluster(chatd_bin=chatd, balance="hash")
    try:
        if not dev_dir:
            log(f"starting the cluster in {c.dir}")
            c.up()
            own = True
        setup["up_s"] = round(time.monotonic() - t0, 1)
        ctx = Ctx(c, run, mode, own)
        for k in ("galera-4", "redis-server", "nginx"):
            r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", k], capture_output=True, text=True)
            setup.setdefault("versions", {})[k] = r.stdout.strip() or "?"
        setup["db_url"] = c.db_url.replace("chat:chat@", "chat:…@")
        setup["chatd_env"] = {k: os.environ.get(k, d) for k, d in
                              (("CHAT_THREADS", "2"), ("CHAT_SEND_WORKERS", "1"), ("CHAT_ACK_WORKERS", "1"))}
        # the password hash seeded users copy
        asyncio.run(register_seed(ctx.urls[0]))
        ctx.pwhash = ctx.sql("g1", "SELECT password_hash FROM users WHERE username = 'cbseed'")[0][0]
        for name in SCENARIOS:
            if name not in only:
                continue
            if name == "failover" and not own:
                log("failover: skipped on a cluster we did not start (it kills g1)")
                continue
            log(f"{name}: start")
            ts = time.monotonic()
            try:
                if name == "park":
                    sc_park(ctx)
                else:
                    asyncio.run(globals()[f"sc_{name}"](ctx))
            except Exception as ex:  # one scenario failing does not stop the others
                log(f"{name} FAILED: {ex}")
                traceback.print_exc()
                setup["failed"].append(name)
                (run / f"cluster-{name}.failed.json").write_text(
                    json.dumps({"mode": "failed", "label": f"cluster-{name}", "why": str(ex)[:2000]}) + "\n")
            finally:
                stop_own(ctx)
            setup.setdefault("durations_s", {})[name] = round(time.monotonic() - ts, 1)
            log(f"{name}: {time.monotonic() - ts:.1f} s")
    except (ClusterError, Exception) as ex:
        log(f"FAILED: {ex}")
        traceback.print_exc()
        setup["error"] = str(ex)[:4000]
        (run / "cluster.failed.json").write_text(json.dumps({"mode": "failed", "label": "cluster",
                                                             "why": str(ex)[:2000]}) + "\n")
    finally:
        td = time.monotonic()
        keep_logs(c, run)
        if not dev_dir:
            c.close()
        setup["down_s"] = round(time.monotonic() - td, 1)
        setup["total_s"] = round(time.monotonic() - t0, 1)
        (run / "cluster-setup.json").write_text(json.dumps(setup, indent=1, sort_keys=True) + "\n")
        log(f"done in {setup['total_s']} s")
    sys.exit(1 if setup.get("error") else 0)


if __name__ == "__main__":
    main()
