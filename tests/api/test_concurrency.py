"""Concurrency: (a) many senders into one group get seq 1..N with no gap and no
twin, (b) both sides opening their direct thread at once get one thread,
(c) concurrent retries of one client_msg_id store one message."""
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import User, make_user, problem, register, unique_name


def at_once(fns):
    """Runs the callables in threads released together by a barrier; returns
    their results in order (re-raising the first exception)."""
    barrier = threading.Barrier(len(fns))

    def run(fn):
        barrier.wait(timeout=30)
        return fn()

    with ThreadPoolExecutor(len(fns)) as ex:
        return [f.result() for f in [ex.submit(run, fn) for fn in fns]]


def fresh_session(u):
    """Another client (own connection pool) on the same session token."""
    return User(u.server, u.user, u.password, u.token, u.session_id)


class Busy:
    pass


@pytest.fixture(scope="module")
def busy(server):
    """8 clients, each its own user and session, send 100 messages each into
    one group at the same time; a 9th member only reads."""
    with ThreadPoolExecutor(4) as ex:
        users = list(ex.map(lambda _: make_user(server), range(9)))
    b = Busy()
    b.senders, b.reader = users[:8], users[8]
    b.per_client = 100
    b.total = b.per_client * len(b.senders)
    b.g = b.senders[0].group(*b.senders[1:], b.reader, title="busy")["id"]
    b.results = {}
    barrier = threading.Barrier(len(b.senders))

    def work(i, u):
        barrier.wait(timeout=30)
        out = []
        for k in range(b.per_client):
            r = u.send(b.g, f"c{i}-{k}", cmid=f"c{i}-{k}")
            out.append((k, r.status, r.body))
        b.results[i] = out

    with ThreadPoolExecutor(len(b.senders)) as ex:
        for f in [ex.submit(work, i, u) for i, u in enumerate(b.senders)]:
            f.result()
    # the stored history, paging back from the newest with limit=100
    b.history, before, b.pages = [], None, 0
    while True:
        params = {"limit": 100} | ({"before": before} if before else {})
        page = b.reader.history(b.g, **params)
        b.pages += 1
        s = [m["seq"] for m in page["messages"]]
        assert s == sorted(s) and len(s) == len(set(s)), s
        b.history = page["messages"] + b.history
        if not page["has_more"]:
            break
        assert len(s) == 100
        before = s[0]
        assert b.pages <= b.total  # never loops forever
    return b


def test_a_8_clients_x_100_concurrent_sends_into_one_group(busy):
    b = busy
    acked = []
    for i, out in sorted(b.results.items()):
        own = []
        for k, status, body in out:
            assert status == 201, (i, k, status, body)
            m = body["message"]
            assert m["sender_id"] == b.senders[i].id and m["body"] == f"c{i}-{k}"
            assert m["client_msg_id"] == f"c{i}-{k}" and m["thread_id"] == b.g
            own.append(m["seq"])
        # one client's sends, made one after another, are stored in that order
        assert own == sorted(own), i
        acked += own
    # every 201's seq is unique, and together they are exactly 1..800
    assert len(acked) == b.total
    assert len(set(acked)) == b.total, [s for s, n in Counter(acked).items() if n > 1][:10]
    assert sorted(acked) == list(range(1, b.total + 1))
    # the history holds seq 1..800 exactly once
    assert b.pages == b.total // 100
    assert [m["seq"] for m in b.history] == list(range(1, b.total + 1))
    # each stored message is the one its sender was told about
    told = {r[2]["message"]["seq"]: r[2]["message"] for out in b.results.values() for r in out}
    assert {m["seq"]: m for m in b.history} == told
    t = b.reader.thread(b.g)
    assert t["last_seq"] == b.total and t["unread_count"] == b.total
    assert t["last_message"] == b.history[-1]


def test_a_history_forwards_matches_backwards(busy):
    forward, after = [], 0
    while True:
        page = busy.reader.history(busy.g, after=after, limit=100)
        forward += page["messages"]
        if not page["has_more"]:
            break
        after = page["messages"][-1]["seq"]
    assert forward == busy.history
    # every member sees one and the same order
    assert busy.senders[3].history(busy.g, after=400, limit=100)["messages"] == \
        busy.history[400:500]


def test_a_created_at_follows_seq_order(busy):
    """A message with a higher seq was not stored earlier: created_at never
    goes backwards along seq, and the thread's updated_at is its newest."""
    h = busy.history
    backwards = [(a["seq"], a["created_at"], b["seq"], b["created_at"])
                 for a, b in zip(h, h[1:]) if b["created_at"] < a["created_at"]]
    assert backwards == [], f"{len(backwards)} times, e.g. (seq, created_at) pairs {backwards[:5]}"
    t = busy.reader.thread(busy.g)
    assert t["updated_at"] >= max(m["created_at"] for m in h)


def test_b_both_users_open_their_direct_thread_at_once(new_users):
    users = new_users(20)
    for a, b in zip(users[0::2], users[1::2]):
        ra, rb = at_once([lambda: a.post("/v1/threads", {"member_ids": [b.id]}),
                          lambda: b.post("/v1/threads", {"member_ids": [a.id]})])
        assert ra.status in (200, 201), ra
        assert rb.status in (200, 201), rb
        assert sorted([ra.status, rb.status]) == [200, 201], (ra, rb)
        assert ra.body["thread"]["id"] == rb.body["thread"]["id"]
        tid = ra.body["thread"]["id"]
        for u in (a, b):
            threads = u.get("/v1/threads").body["threads"]
            assert [(t["id"], t["kind"]) for t in threads] == [(tid, "direct")]
            assert sorted(threads[0]["member_ids"]) == sorted([a.id, b.id])


def test_b_both_users_send_to_each_other_at_once(new_users):
    """POST /v1/messages creates the direct thread: both first messages land in
    one thread, as seq 1 and 2."""
    users = new_users(12)
    for a, b in zip(users[0::2], users[1::2]):
        ra, rb = at_once([lambda: a.post("/v1/messages", {"to": b.id, "client_msg_id": "hi",
                                                          "body": "hi b"}),
                          lambda: b.post("/v1/messages", {"to": a.id, "client_msg_id": "hi",
                                                          "body": "hi a"})])
        assert ra.status == 201 and rb.status == 201, (ra, rb)
        ma, mb = ra.body["message"], rb.body["message"]
        assert ma["thread_id"] == mb["thread_id"]
        assert sorted([ma["seq"], mb["seq"]]) == [1, 2]
        assert len(a.get("/v1/threads").body["threads"]) == 1
        assert [m["body"] for m in b.history(ma["thread_id"])["messages"]] == \
            [m["body"] for m in sorted([ma, mb], key=lambda m: m["seq"])]


def test_b_many_parallel_opens_of_one_pair(new_users):
    a, b = new_users(2)
    calls = []
    for i in range(8):
        me, other = (a, b) if i % 2 else (b, a)
        s = fresh_session(me)
        calls.append(lambda s=s, other=other: s.post("/v1/threads", {"member_ids": [other.id]}))
    rs = at_once(calls)
    assert sorted(r.status for r in rs) == [200] * 7 + [201], rs
    assert len({r.body["thread"]["id"] for r in rs}) == 1


def test_c_concurrent_duplicates_store_one_message(new_users):
    a, b = new_users(2)
    g = a.group(b, title="dups")["id"]
    a.say(g, "before")
    for round_ in range(3):
        before = a.thread(g)["last_seq"]
        cmid = str(uuid.uuid4())
        sessions = [fresh_session(a) for _ in range(10)]
        rs = at_once([lambda s=s: s.send(g, "once only", cmid=cmid) for s in sessions])
        statuses = Counter(r.status for r in rs)
        assert statuses == Counter({201: 1, 200: 9}), (round_, rs)
        msgs = [r.body["message"] for r in rs]
        assert all(m == msgs[0] for m in msgs), msgs
        assert msgs[0]["seq"] == before + 1
        t = a.thread(g)
        assert t["last_seq"] == before + 1
        stored = [m for m in a.history(g, limit=100)["messages"] if m["client_msg_id"] == cmid]
        assert stored == [msgs[0]]


def test_c_concurrent_duplicates_via_send_to_user(new_users):
    a, b = new_users(2)
    cmid = str(uuid.uuid4())
    sessions = [fresh_session(a) for _ in range(8)]
    rs = at_once([lambda s=s: s.post("/v1/messages", {"to": b.id, "client_msg_id": cmid,
                                                      "body": "dm once"}) for s in sessions])
    assert Counter(r.status for r in rs) == Counter({201: 1, 200: 7}), rs
    assert len({r.body["message"]["seq"] for r in rs}) == 1
    tid = rs[0].body["message"]["thread_id"]
    assert b.thread(tid)["last_seq"] == 1
    assert len(b.get("/v1/threads").body["threads"]) == 1


def test_c_concurrent_same_id_from_different_senders_are_different_messages(new_users):
    users = new_users(6)
    g = users[0].group(*users[1:], title="same id")["id"]
    rs = at_once([lambda u=u: u.send(g, f"from {u.id}", cmid="shared-id") for u in users])
    assert all(r.status == 201 for r in rs), rs
    assert sorted(r.body["message"]["seq"] for r in rs) == list(range(1, 7))
    assert users[0].thread(g)["last_seq"] == 6


def test_concurrent_member_adds_and_sends(new_users):
    """Adds racing with sends: every send gets its own seq, every add lands."""
    a, *others = new_users(7)
    g = a.group(title="mixed")["id"]
    calls = [lambda u=u: a.post(f"/v1/threads/{g}/members", {"user_ids": [u.id]})
             for u in others]
    calls += [lambda i=i: fresh_session(a).send(g, f"m{i}") for i in range(6)]
    rs = at_once(calls)
    assert all(r.status == 200 for r in rs[:6]), rs[:6]
    assert all(r.status == 201 for r in rs[6:]), rs[6:]
    assert sorted(r.body["message"]["seq"] for r in rs[6:]) == list(range(1, 7))
    assert sorted(a.thread(g)["member_ids"]) == sorted([a.id] + [u.id for u in others])


def test_concurrent_registrations_of_one_name(server):
    name = unique_name("race")
    variants = [name, name.upper(), name.capitalize(), name, name.swapcase(), name]
    rs = at_once([lambda v=v: register(server, v, "password1-long-enough") for v in variants])
    assert sorted(r.status for r in rs) == [201] + [409] * (len(variants) - 1), rs
    for r in rs:
        if r.status == 409:
            problem(r, 409, "username_taken")


def test_d_mixed_concurrent_sends_each_get_their_own_answer(new_users):
    """Sends made at the same moment are stored together (group commit), yet
    each gets the answer it would get alone: a stranger's send is 404, a send
    across a block 403, a retry of a stored message 200 with that message,
    and the rest 201 with gap-free seqs per thread; the stream of every
    member holds each stored message once, in seq order, and nothing else."""
    from conftest import drain_inbox, inbox_cursor
    a, b, c, d, x = new_users(5)
    g = a.group(b, c, title="mixed batch")["id"]
    ab = a.direct(b)["id"]
    cd = c.direct(d)["id"]
    assert d.put(f"/v1/blocks/{c.id}").status == 204   # c → d is refused now
    old = a.say(g, "stored before", cmid="old")
    cursors = {u.id: inbox_cursor(u) for u in (a, b, c, d)}

    calls, want = [], []
    for i in range(6):
        calls.append(lambda i=i: fresh_session(a).send(g, f"a{i}", cmid=f"a{i}"))
        want.append(("new", g))
        calls.append(lambda i=i: fresh_session(b).send(ab, f"b{i}", cmid=f"b{i}"))
        want.append(("new", ab))
    for i in range(3):
        calls.append(lambda: fresh_session(x).send(g, "stranger"))
        want.append(("404", None))
        calls.append(lambda: fresh_session(c).send(cd, "blocked"))
        want.append(("403", None))
        calls.append(lambda: fresh_session(a).send(g, "retry", cmid="old"))
        want.append(("old", None))
    rs = at_once(calls)

    seqs = {g: [], ab: []}
    for (kind, tid), r in zip(want, rs):
        if kind == "new":
            assert r.status == 201, r
            assert r.body["message"]["thread_id"] == tid
            seqs[tid].append(r.body["message"]["seq"])
        elif kind == "404":
            problem(r, 404, "not_found")
        elif kind == "403":
            problem(r, 403, "blocked")
        else:
            assert r.status == 200 and r.body["message"] == old, r
    assert sorted(seqs[g]) == list(range(2, 8))
    assert sorted(seqs[ab]) == list(range(1, 7))
    assert c.thread(cd)["last_seq"] == 0
    # every member's stream: each new message once, per thread in seq order
    for u, threads in ((a, (g, ab)), (b, (g, ab)), (c, (g,)), (d, ())):
        events, _ = drain_inbox(u, cursors[u.id])
        got = [(e["message"]["thread_id"], e["message"]["seq"])
               for e, _ in events if e["type"] == "message"]
        assert sorted(got) == sorted((t, s) for t in threads for s in seqs[t]), (u, got)
        for t in threads:
            per = [s for tid, s in got if tid == t]
            assert per == sorted(per), (u, t, per)
    # the sender's own position moved with its last message
    assert a.thread(g)["unread_count"] == 0 and b.thread(ab)["unread_count"] == 0
    assert c.thread(g)["unread_count"] == 7
