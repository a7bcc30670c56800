"""load.py — a small mixed load for the cluster tests, and its verdict.

Users talk 1:1 and in one group through the cluster while every device polls
its inbox; faults happen meanwhile. Sends are retried with the same
client_msg_id until the server answers 201 or 200 (exactly-once by
idempotency); a poll that fails is retried from the same cursor. At the end
every device reads its stream to the end, and the verdict counts, per
device: messages acknowledged (201/200) but never received (lost), received
twice (duplicated), received out of seq order within a thread (out of
order). Each thread's stored history must be gap-free (seq 1..n).

Only 127.0.0.1; bounded in count and time; the threads it starts stop by
themselves.
"""

import json
import random
import re
import threading
import time
import urllib.error
import urllib.request
import uuid


def call(base, method, path, body=None, token=None, timeout=30):
    """One HTTP request; returns (status, parsed body or None). Network
    errors come back as status 0."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw) if raw else None
        except ValueError:
            return e.code, None
    except (OSError, ValueError):
        return 0, None


def metric(base, name):
    """A counter or gauge of a node's /metrics (None when absent)."""
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    m = re.search(rf"^{name} (\d+)$", text, re.M)
    return int(m.group(1)) if m else None


def until_ok(fn, what, timeout=60):
    """Calls fn() until it returns (2xx status, body); fails after timeout s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if 200 <= last[0] < 300:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what}: no success within {timeout} s, last {last}")


class Device:
    """One session of a user, polling its inbox through `base` in a thread."""

    def __init__(self, user, token, base):
        self.user, self.token, self.base = user, token, base
        self.received = []  # (thread_id, seq) in arrival order
        self.cursor = None
        self.stop = threading.Event()
        self.thread = None
        self.errors = 0

    def start(self):
        st, b = until_ok(lambda: call(self.base, "GET", "/v1/inbox", token=self.token), "inbox head")
        self.cursor = b["next"]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _poll(self, timeout):
        st, b = call(self.base, "GET", f"/v1/inbox?since={self.cursor}&timeout={timeout}",
                     token=self.token, timeout=timeout + 15)
        if st != 200:
            self.errors += 1
            return False
        for ev in b["events"]:
            if ev.get("type") == "message":
                m = ev["message"]
                self.received.append((m["thread_id"], m["seq"]))
        moved = b["next"] != self.cursor
        self.cursor = b["next"]
        return moved

    def _run(self):
        while not self.stop.is_set():
            if not self._poll(5) and self.errors:
                time.sleep(0.2)

    def finish(self, deadline_s=60):
        """Stops polling, then reads the stream to its end."""
        self.stop.set()
        self.thread.join(30)
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if not self._poll(0):
                st, _ = call(self.base, "GET", f"/v1/inbox?since={self.cursor}&timeout=0",
                             token=self.token)
                if st == 200:
                    return
            time.sleep(0.1)
        raise AssertionError(f"device of user {self.user} could not read its stream to the end")


class Load:
    """Users u0..u{n-1} (two devices each, spread over `bases`), direct
    threads between neighbours and one group of all; senders send in turn."""

    def __init__(self, entry, bases, users=4, tag=None):
        self.entry, self.bases = entry, bases
        self.tag = tag or uuid.uuid4().hex[:6]
        self.users, self.devices, self.threads = [], [], []
        self.acked = {}  # thread_id -> set of seq answered 201/200
        self.stop = threading.Event()
        self.senders = []
        self.send_errors = 0
        self.lock = threading.Lock()
        for i in range(users):
            name = f"l{self.tag}{i}"
            until_ok(lambda: self._register(name), "register")
            toks = []
            for d in range(2):
                base = bases[(i * 2 + d) % len(bases)]
                st, b = until_ok(lambda: call(base, "POST", "/v1/sessions",
                                               {"username": name, "password": "password123-long-enough",
                                                "device_name": f"d{d}"}), "login")
                toks.append((b["token"], base))
            st, me = until_ok(lambda: call(entry, "GET", "/v1/me", token=toks[0][0]), "me")
            self.users.append({"id": me["user"]["id"], "name": name, "tokens": toks})
        ids = [u["id"] for u in self.users]
        for i, u in enumerate(self.users):
            other = self.users[(i + 1) % len(self.users)]
            st, b = until_ok(lambda: call(entry, "POST", "/v1/threads", {"member_ids": [other["id"]]},
                                          token=u["tokens"][0][0]), "direct")
            if b["thread"]["id"] not in [t["id"] for t in self.threads]:
                self.threads.append({"id": b["thread"]["id"], "members": [u, other]})
        st, b = until_ok(lambda: call(entry, "POST", "/v1/threads",
                                      {"member_ids": ids[1:], "title": "load " + self.tag},
                                      token=self.users[0]["tokens"][0][0]), "group")
        self.threads.append({"id": b["thread"]["id"], "members": list(self.users)})
        for t in self.threads:
            self.acked[t["id"]] = set()
        for u in self.users:
            for tok, base in u["tokens"]:
                self.devices.append(Device(u["id"], tok, base))

    def _register(self, name):
        st, b = call(self.entry, "POST", "/v1/users", {"username": name, "password": "password123-long-enough"})
        return (201, b) if st in (201, 409) else (st, b)

    def start(self, rate_per_sender=5.0):
        for d in self.devices:
            d.start()
        for u in self.users:
            t = threading.Thread(target=self._send_loop, args=(u, rate_per_sender), daemon=True)
            t.start()
            self.senders.append(t)

    def _send_loop(self, u, rate):
        mine = [t for t in self.threads if u in t["members"]]
        k = 0
        while not self.stop.is_set():
            t = mine[k % len(mine)]
            k += 1
            cmid = f"{u['name']}-{k}"
            tok, base = u["tokens"][k % 2]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                st, b = call(base, "POST", f"/v1/threads/{t['id']}/messages",
                             {"client_msg_id": cmid, "body": f"{cmid} {random.random()}"}, token=tok)
                if st in (200, 201):
                    with self.lock:
                        self.acked[t["id"]].add(b["message"]["seq"])
                    break
                with self.lock:
                    self.send_errors += 1
                time.sleep(0.2)  # the same client_msg_id again: exactly once
            time.sleep(1.0 / rate)

    def finish(self):
        self.stop.set()
        for t in self.senders:
            t.join(90)
        for d in self.devices:
            d.finish()

    def verdict(self):
        """Counts per device; and the threads whose history has a gap."""
        lost = dup = ooo = 0
        members = {t["id"]: {m["id"] for m in t["members"]} for t in self.threads}
        for d in self.devices:
            seen = {}
            for tid, seq in d.received:
                s = seen.setdefault(tid, [])
                if seq in s:
                    dup += 1
                elif s and seq < s[-1]:
                    ooo += 1
                s.append(seq)
            for tid, acked in self.acked.items():
                if d.user in members[tid]:
                    lost += len(acked - set(seen.get(tid, [])))
        gaps = []
        tok = self.users[0]["tokens"][0][0]
        for t in self.threads:
            seqs, before = [], None
            while True:
                q = f"/v1/threads/{t['id']}/messages?limit=100" + (f"&before={before}" if before else "")
                st, b = until_ok(lambda: call(self.entry, "GET", q, token=t["members"][0]["tokens"][0][0]),
                                 "history")
                seqs += [m["seq"] for m in b["messages"]]
                if not b["has_more"] or not b["messages"]:
                    break
                before = min(m["seq"] for m in b["messages"])
            if sorted(seqs) != list(range(1, len(seqs) + 1)):
                gaps.append(t["id"])
        total = sum(len(a) for a in self.acked.values())
        return {"acked": total, "lost": lost, "duplicated": dup, "out_of_order": ooo,
                "gaps": gaps, "send_retries": self.send_errors}
