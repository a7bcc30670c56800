"""The delivery guarantees under a random mix of everything (docs/delivery.md §4).

One seeded run interleaves sends into direct threads and groups of several
sizes, retried sends (a dropped answer), polls with random limits (some of
whose answers are dropped and asked again), reads, membership changes in one
group, and `kill -9` of chatd in the middle of concurrent sends. Then every
device drains its stream and the test checks, against the database as the
API shows it:

- every device of a user saw the same stream, event for event;
- each user's message events are exactly the messages sent into a thread
  while the user was a member: none missing, none twice, in seq order per
  thread, each equal to the stored message;
- every thread's history is gap-free, and every acknowledged send (201/200)
  is in it once with its body; a retried send answered the same message;
- a poll asked again with the same cursor answered the same events;
- receipts: every receipt event a device saw moves forward only, each
  member's final read position is what it read (or sent), its delivered
  position covers everything its devices acknowledged, and every sender
  heard that each member of a fixed thread got its messages.

CHAT_TEST_SEED=<n> replays a run; the seed is in the failure message.
"""
import os
import random
import subprocess
import threading
import uuid

import requests

import pytest

from conftest import DURABLE_TYPES, env_server, inbox, inbox_cursor, make_user

STEPS = 600
KILLS = 3


class Device:
    def __init__(self, user, cursor):
        self.user = user
        self.cursor = cursor
        self.events = []  # durable events, in stream order

    def poll(self, limit, drop=False):
        r = inbox(self.user, self.cursor, timeout=0, limit=limit)
        assert r.status == 200, r
        got = [e for e in r.body["events"] if e["type"] in DURABLE_TYPES]
        if drop:  # the answer is lost: the device asks again from the same cursor
            r2 = inbox(self.user, self.cursor, timeout=0, limit=limit)
            assert r2.status == 200, r2
            again = [e for e in r2.body["events"] if e["type"] in DURABLE_TYPES]
            assert again[:len(got)] == got, "the same cursor answered other events"
            r, got = r2, again
        self.events.extend(got)
        moved = r.body["next"] != self.cursor
        self.cursor = r.body["next"]
        return bool(got) or moved


class World:
    """What the test did, to know what the server must show."""

    def __init__(self, rnd, users):
        self.rnd = rnd
        self.users = users
        self.devices = {u.id: [] for u in users}
        self.members = {}      # thread id → set of user ids now
        self.fixed = set()     # threads whose members never change
        self.sent = {}         # (thread, seq) → (sender id, cmid, body)
        self.expected = {u.id: set() for u in users}  # user → {(thread, seq)}
        self.read = {}         # (thread, user) → the highest seq read or sent
        self.by_cmid = {}      # (thread, sender, cmid) → message

    def stored(self, tid, sender, cmid, body, msg):
        key = (tid, msg["seq"])
        if key in self.sent:
            assert self.sent[key] == (sender.id, cmid, body), "one seq, two messages"
            return
        self.sent[key] = (sender.id, cmid, body)
        self.by_cmid[(tid, sender.id, cmid)] = msg
        for uid in self.members[tid]:
            self.expected[uid].add(key)
        k = (tid, sender.id)
        self.read[k] = max(self.read.get(k, 0), msg["seq"])


def send(w, user, tid, cmid=None, body=None):
    cmid = cmid or uuid.uuid4().hex
    body = body or f"m {w.rnd.random():.6f} ✓"
    r = user.send(tid, body, cmid)
    assert r.status in (200, 201), r
    w.stored(tid, user, cmid, body, r.body["message"])
    return r


def kill_during_sends(w, server, rnd):
    """Concurrent sends, chatd killed with SIGKILL among them, restarted;
    every send without an answer is retried with its client_msg_id."""
    jobs = []
    for _ in range(12):
        tid = rnd.choice(sorted(w.fixed))
        user = rnd.choice([u for u in w.users if u.id in w.members[tid]])
        jobs.append((user, tid, uuid.uuid4().hex, f"k {rnd.random():.6f}"))
    answers = [None] * len(jobs)

    def work(i):
        user, tid, cmid, body = jobs[i]
        try:
            r = user.send(tid, body, cmid)
            if r.status in (200, 201):
                answers[i] = r.body["message"]
        except requests.RequestException:
            pass

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    threading.Event().wait(rnd.uniform(0.0, 0.05))
    server.restart(kill9=True)
    for t in threads:
        t.join(60)
    for i, (user, tid, cmid, body) in enumerate(jobs):
        r = user.send(tid, body, cmid)  # a retry: stored once whatever happened
        assert r.status in (200, 201), r
        if answers[i] is not None:
            assert r.status == 200 and r.body["message"] == answers[i], \
                "an acknowledged send came back different after kill -9"
        w.stored(tid, user, cmid, body, r.body["message"])


def test_random_interleaving_keeps_every_guarantee(server, new_users):
    seeded(server, new_users)


@pytest.fixture
def logs_server(db):
    """A chatd that writes groups of more than three members to their logs
    (CHAT_STREAM_COPY_MAX=3, docs/delivery.md step c): the group of five is
    logged, the group of three copied, and the changing group switches to
    its log once it has four members and a send."""
    with env_server(db, "props-logs-", {"CHAT_STREAM_COPY_MAX": "3"}) as s:
        yield s


def test_random_interleaving_keeps_every_guarantee_with_group_logs(logs_server, db):
    threads, changing = seeded(logs_server, lambda n: [make_user(logs_server) for _ in range(n)])
    five, three = threads[3][0], threads[4][0]
    r = subprocess.run(["mariadb", "-uroot", "-S", db.socket, "-N", "-B", "chat_test", "-e",
                        f"SELECT id, logged FROM threads WHERE id IN ({five}, {three}, {changing})"
                        " ORDER BY id"], capture_output=True, text=True, timeout=60, check=True)
    logged = dict(line.split("\t") for line in r.stdout.splitlines())
    assert logged == {str(five): "1", str(three): "0", str(changing): "1"}, logged


def seeded(server, new_users):
    seed = int(os.environ.get("CHAT_TEST_SEED") or random.SystemRandom().randrange(1 << 30))
    rnd = random.Random(seed)
    try:
        return run(server, new_users, rnd)
    except AssertionError as e:
        raise AssertionError(f"CHAT_TEST_SEED={seed}: {e}") from e


def run(server, new_users, rnd):
    users = new_users(7)
    w = World(rnd, users)
    u = users
    threads = []
    for a, b in ((u[0], u[1]), (u[2], u[3]), (u[4], u[5])):
        threads.append((a.direct(b)["id"], {a.id, b.id}))
    threads.append((u[0].group(u[1], u[2], u[3], u[4], title="five")["id"],
                    {x.id for x in u[:5]}))
    threads.append((u[1].group(u[3], u[5], title="three")["id"], {u[1].id, u[3].id, u[5].id}))
    for tid, mem in threads:
        w.members[tid] = set(mem)
        w.fixed.add(tid)
    changing = u[0].group(u[1], u[6], title="changing")["id"]  # u0 is its admin
    w.members[changing] = {u[0].id, u[1].id, u[6].id}
    for user in users:
        for dev in (user, user.device("second")):
            w.devices[user.id].append(Device(dev, inbox_cursor(dev)))
    all_devices = [d for ds in w.devices.values() for d in ds]
    kills = sorted(rnd.sample(range(20, STEPS - 20), KILLS))

    for step in range(STEPS):
        if kills and step == kills[0]:
            kills.pop(0)
            kill_during_sends(w, server, rnd)
            continue
        x = rnd.random()
        if x < 0.38:  # a send, by a random member from a random device
            tid = rnd.choice(sorted(w.members))
            uid = rnd.choice(sorted(w.members[tid]))
            dev = rnd.choice(w.devices[uid]).user
            send(w, dev, tid)
        elif x < 0.46 and w.by_cmid:  # a send whose answer was lost, sent again
            (tid, sid, cmid), msg = rnd.choice(sorted(w.by_cmid.items(), key=lambda kv: kv[0]))
            if tid in w.fixed:
                dev = rnd.choice(w.devices[sid]).user
                r = dev.send(tid, w.sent[(tid, msg["seq"])][2], cmid)
                assert r.status == 200 and r.body["message"] == msg, (r, msg)
        elif x < 0.80:  # a poll, some answers lost
            d = rnd.choice(all_devices)
            d.poll(rnd.randint(1, 8), drop=rnd.random() < 0.2)
        elif x < 0.92:  # a read up to something the member has
            d = rnd.choice(all_devices)
            mine = [(e["message"]["thread_id"], e["message"]["seq"]) for e in d.events
                    if e["type"] == "message"]
            if mine:
                tid, seq = rnd.choice(mine)
                if d.user.id in w.members[tid]:
                    st, _ = d.user.post(f"/v1/threads/{tid}/read", {"seq": seq})
                    assert st == 204
                    k = (tid, d.user.id)
                    w.read[k] = max(w.read.get(k, 0), seq)
        else:  # the admin adds or removes someone in the changing group
            who = rnd.choice(u[1:])
            if who.id in w.members[changing]:
                st, _ = u[0].delete(f"/v1/threads/{changing}/members/{who.id}")
                assert st == 204
                w.members[changing].discard(who.id)
            else:
                st, b = u[0].post(f"/v1/threads/{changing}/members", {"user_ids": [who.id]})
                assert st == 200, b
                w.members[changing].add(who.id)
                # a newcomer starts with everything before it read
                w.read[(changing, who.id)] = max([q for t, q in w.sent if t == changing] + [0])

    # Every device reads to the end; acknowledgements make receipts, which
    # other devices then read: until a whole round brings nothing new.
    for _ in range(20):
        if not any([d.poll(rnd.randint(1, 50)) for d in all_devices]):
            break
    else:
        raise AssertionError("the streams did not come to rest")
    check(w, users)
    return threads, changing


def check(w, users):
    # One history per thread: gap-free, every acknowledged send in it once.
    history = {}
    for tid, mem in w.members.items():
        reader = next(x for x in users if x.id in mem)
        msgs, after = [], 0
        while True:
            b = reader.history(tid, after=after, limit=100)
            msgs += b["messages"]
            if not b["has_more"]:
                break
            after = msgs[-1]["seq"]
        assert [m["seq"] for m in msgs] == list(range(1, len(msgs) + 1)), f"seq gap in {tid}"
        for m in msgs:
            history[(tid, m["seq"])] = m
    for key, (sender, cmid, body) in w.sent.items():
        m = history.get(key)
        assert m and (m["sender_id"], m["client_msg_id"], m["body"]) == (sender, cmid, body), \
            f"acknowledged message {key} is not what was stored: {m}"

    for user in users:
        d1, d2 = w.devices[user.id]
        assert d1.events == d2.events, f"the two devices of {user} saw different streams"
        msgs = [e["message"] for e in d1.events if e["type"] == "message"]
        keys = [(m["thread_id"], m["seq"]) for m in msgs]
        assert len(keys) == len(set(keys)), f"{user} got a message twice"
        for m in msgs:
            assert history.get((m["thread_id"], m["seq"])) == m, f"{user}: {m} differs"
        per_thread = {}
        for t, s in keys:
            per_thread.setdefault(t, []).append(s)
        for t, seqs in per_thread.items():
            assert seqs == sorted(seqs), f"{user}: thread {t} out of order"
        missing = w.expected[user.id] - set(keys)
        extra = set(keys) - w.expected[user.id]
        assert not missing, f"{user} never got {sorted(missing)[:5]}"
        assert not extra, f"{user} got messages of threads it was not in: {sorted(extra)[:5]}"
        # Receipts seen move forward only.
        last = {}
        for e in d1.events:
            if e["type"] == "receipt":
                k = (e["thread_id"], e["user_id"])
                prev = last.get(k, (0, 0))
                assert e["delivered_seq"] >= prev[0] and e["read_seq"] >= prev[1], \
                    f"{user}: receipt {k} moved back: {prev} then {e}"
                last[k] = (e["delivered_seq"], e["read_seq"])
        # A member's own message at seq S also tells that it has read (and
        # got) the thread up to S (docs/api-notes.md): no receipt event.
        for m in msgs:
            k = (m["thread_id"], m["sender_id"])
            d, r = last.get(k, (0, 0))
            last[k] = (max(d, m["seq"]), max(r, m["seq"]))
        user.last_receipts = last

    for tid, mem in w.members.items():
        member = next(x for x in users if x.id in mem)
        state = member.receipts(tid)
        for uid in mem:
            got = state[uid]
            delivered = max([s for t, s in w.expected[uid] if t == tid] + [0])
            assert got["read_seq"] == w.read.get((tid, uid), 0), (tid, uid, got)
            assert got["delivered_seq"] == max(delivered, got["read_seq"]), (tid, uid, got)
        if tid not in w.fixed:
            continue
        # Each sender heard of each other member's delivery of its messages.
        for (t, seq), (sender, _, _) in w.sent.items():
            if t != tid:
                continue
            heard = next(x for x in users if x.id == sender).last_receipts
            for uid in mem - {sender}:
                assert heard.get((tid, uid), (0, 0))[0] >= seq, \
                    f"sender {sender} never heard that {uid} got {tid}/{seq}"
