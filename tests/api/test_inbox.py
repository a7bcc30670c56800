"""The inbox: one long-poll per device (API.md "The inbox").

Parked polls answered by new events, timeouts, the per-user stream seen alike
by every device, exactly-once delivery across kill -9, concurrent senders and
pollers, thread events, cursor errors, and one parked poll per session.

Ephemeral events (presence, typing) may come along in any answer; where a test
is about the stream it looks at message, thread and receipt events only."""
import threading
import time

import requests

from conftest import (DURABLE_TYPES, ParkedPoll, Poller, drain_inbox, inbox, inbox_cursor,
                      problem, stop_pollers)

THREAD_KEYS = {"id", "kind", "title", "member_ids", "created_at", "updated_at", "last_seq",
               "unread_count", "is_muted", "notify", "nickname", "last_message", "oldest_seq",
               "retention_days", "disappearing_s"}


def durable(events):
    return [e for e in events if e["type"] in DURABLE_TYPES]


def messages_of(events, thread_id=None):
    return [e["message"] for e in events
            if e["type"] == "message" and (thread_id is None or e["message"]["thread_id"] == thread_id)]


def is_msg(thread_id, seq=None):
    return lambda e: (e["type"] == "message" and e["message"]["thread_id"] == thread_id
                      and (seq is None or e["message"]["seq"] == seq))


def is_thread(thread_id, pred=lambda t: True):
    return lambda e: e["type"] == "thread" and e["thread"]["id"] == thread_id and pred(e["thread"])


class BackgroundPoll:
    """One GET /v1/inbox in a thread of its own; .r, .started, .answered_at."""

    def __init__(self, user, since, **kw):
        self.r = self.error = self.answered_at = None
        self.started = time.monotonic()

        def run():
            try:
                self.r = inbox(user, since, **kw)
            except requests.RequestException as e:
                self.error = e
            self.answered_at = time.monotonic()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def alive(self):
        return self.thread.is_alive()

    def join(self, timeout=60):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the poll did not end"
        return self.r


# --------------------------------------------------------------------------
# Parking, timeouts, a user's own messages
# --------------------------------------------------------------------------

def test_parked_poll_is_answered_when_another_user_sends(server, new_users):
    a, b = new_users(2)
    t = a.direct(b)["id"]
    c = inbox_cursor(b)
    inbox_cursor_before_send = inbox_cursor(a)
    poll = ParkedPoll(b, c, timeout=30)
    poll.wait_parked(0.5)
    sent_at = time.monotonic()
    m = a.say(t, "wake up")
    r = poll.join(60)
    assert r.status == 200, r
    assert poll.started < sent_at, "the poll that got it was not parked before the send"
    assert poll.answered_at - sent_at < 10, "the parked poll was not woken by the send"
    assert durable(r.body["events"]) == [{"type": "message", "message": m}]
    assert isinstance(r.body["next"], str) and r.body["next"] != c
    # the next poll from there acknowledges it: no message again, and the
    # delivered receipt goes to the sender, not to b's own stream
    r = ParkedPoll(b, r.body["next"], timeout=1, deadline=10).join()
    assert r.status == 200, r
    assert messages_of(r.body["events"]) == []
    assert [e for e in r.body["events"] if e["type"] == "receipt"] == [], r
    events, _ = drain_inbox(a, inbox_cursor_before_send)
    assert {"type": "receipt", "thread_id": t, "user_id": b.id, "delivered_seq": 1,
            "read_seq": 0} in [e for e, _ in events]


def test_timeout_with_nothing_new_answers_empty_with_the_same_cursor(server, new_user):
    u = new_user()  # alone: nobody whose presence or typing could reach it
    c = inbox_cursor(u)
    t0 = time.monotonic()
    r = inbox(u, c, timeout=1)
    took = time.monotonic() - t0
    assert r.status == 200, r
    assert r.body == {"events": [], "next": c}
    assert 0.9 <= took < 10, took
    # timeout=0 answers at once
    t0 = time.monotonic()
    r = inbox(u, c, timeout=0)
    assert r.status == 200 and r.body == {"events": [], "next": c}
    assert time.monotonic() - t0 < 5


def test_no_since_answers_at_once_with_the_current_cursor(server, new_users):
    a, b = new_users(2)
    t = a.direct(b)["id"]
    a.say(t, "one")
    t0 = time.monotonic()
    r = inbox(b, timeout=30)
    assert time.monotonic() - t0 < 5
    assert r.status == 200 and r.body["events"] == [] and isinstance(r.body["next"], str)
    c = r.body["next"]
    # the cursor is past the messages that came before: none of them is replayed
    r = inbox(b, c, timeout=0)
    assert r.status == 200 and messages_of(r.body["events"]) == [], r
    m = a.say(t, "two")
    got, _ = drain_inbox(b, c)
    assert messages_of([e for e, _ in got]) == [m]


def test_own_message_reaches_the_other_device(server, new_users):
    a1, b = new_users(2)
    a2 = a1.device("phone")
    t = a1.direct(b)["id"]
    p2, pb = Poller(a2), Poller(b)
    try:
        m = a1.say(t, "from the laptop")
        e, _ = p2.wait_for(is_msg(t, m["seq"]), what="its own message on the other device")
        assert e == {"type": "message", "message": m}
        assert m["sender_id"] == a1.id
        e, _ = pb.wait_for(is_msg(t, m["seq"]))
        assert e["message"] == m
    finally:
        stop_pollers(p2, pb)
    assert not p2.errors and not pb.errors, (p2.errors, pb.errors)
    assert len(messages_of(p2.events(), t)) == 1


def test_limit_pages_the_stream_oldest_first(server, new_users):
    a, b = new_users(2)
    t = a.direct(b)["id"]
    c = inbox_cursor(b)
    sent = [a.say(t, f"m{i}") for i in range(5)]
    got, cursor, cursors = [], c, []
    for _ in range(50):
        r = inbox(b, cursor, timeout=0, limit=2)
        assert r.status == 200, r
        assert len(r.body["events"]) <= 2
        if not r.body["events"]:
            assert r.body["next"] == cursor
            break
        got += durable(r.body["events"])
        cursor = r.body["next"]
        cursors.append(cursor)
    assert messages_of(got, t) == sent
    assert len(set(cursors)) == len(cursors), "a cursor came twice"


# --------------------------------------------------------------------------
# Every device of a user sees one stream
# --------------------------------------------------------------------------

def _identity(e):
    """What an event is about, without the parts rendered for the reader."""
    if e["type"] == "thread":
        return ("thread", e["thread"]["id"])
    return e


def test_two_devices_see_identical_streams(server, new_users):
    alice, bob, carol = new_users(3)
    a1 = alice
    a2 = alice.device("tablet")
    c0 = inbox_cursor(a1)
    assert inbox_cursor(a2) == c0, "two devices of one user at one point: different cursors"
    cc = inbox_cursor(carol)
    # a1 reads live, one event per answer; a2 reads everything afterwards
    p1 = Poller(a1, since=c0, limit=1)
    try:
        g = alice.group(bob, carol, title="before")["id"]
        p1.wait_for(is_thread(g), what="the group's creation")
        sent = [bob.say(g, f"b{i}") for i in range(3)]
        p1.wait_for(is_msg(g, 3))
        st, _ = carol.patch(f"/v1/threads/{g}", {"title": "after"})
        assert st == 200
        p1.wait_for(is_thread(g, lambda t: t["title"] == "after"), what="the rename")
        assert a1.post(f"/v1/threads/{g}/read", {"seq": 3}).status == 204
        p1.wait_for(lambda e: e["type"] == "receipt" and e["user_id"] == alice.id
                    and e["read_seq"] == 3, what="alice's own read receipt")
        sent.append(a2.say(g, "from the tablet"))
        p1.wait_for(is_msg(g, 4))
        # carol's device acknowledges: the sender (alice) hears of the delivery
        drain_inbox(carol, cc)
        p1.wait_for(lambda e: e["type"] == "receipt" and e["user_id"] == carol.id
                    and e["delivered_seq"] == 4, what="carol's delivered receipt")
        time.sleep(0.5)
    finally:
        stop_pollers(p1)
    assert not p1.errors, p1.errors
    live = p1.durable()
    later, _ = drain_inbox(a2, c0, limit=1)
    assert messages_of([e for e, _ in live], g) == sent
    assert len(later) >= len(live), (live, later)
    later = later[:len(live)]
    # the same events, in the same order, at the same cursors (thread events by
    # the thread they are about: their content is the next test's subject)
    assert [(_identity(e), n) for e, n in live] == [(_identity(e), n) for e, n in later]
    assert [e["type"] for e, _ in live].count("thread") == 2
    # another page size gives the same sequence of events
    big, _ = drain_inbox(a2, c0, limit=100)
    assert [_identity(e) for e, _ in big][:len(later)] == [_identity(e) for e, _ in later]


def test_thread_events_have_the_same_content_on_every_device(server, new_users):
    """A device that reads the stream live and one that catches up later get
    the same thread events: the group as created, then as renamed."""
    alice, bob = new_users(2)
    a2 = alice.device("tablet")
    c0 = inbox_cursor(alice)
    p1 = Poller(alice, since=c0, limit=1)
    try:
        g = alice.group(bob, title="before")["id"]
        p1.wait_for(is_thread(g), what="the group's creation")
        assert bob.patch(f"/v1/threads/{g}", {"title": "after"}).status == 200
        p1.wait_for(is_thread(g, lambda t: t["title"] == "after"), what="the rename")
    finally:
        stop_pollers(p1)
    live = [(e, n) for e, n in p1.durable() if e["type"] == "thread"]
    later = [(e, n) for e, n in drain_inbox(a2, c0, limit=1)[0] if e["type"] == "thread"]
    assert [n for _, n in live] == [n for _, n in later]
    assert [e["thread"]["title"] for e, _ in live] == ["before", "after"]
    for (e1, n), (e2, _) in zip(live, later):
        assert e1 == e2, f"at cursor {n} device 1 got\n  {e1}\nand device 2 got\n  {e2}"


# --------------------------------------------------------------------------
# kill -9 between polls
# --------------------------------------------------------------------------

def test_kill9_between_polls_loses_and_duplicates_nothing(server, new_users):
    a, b = new_users(2)
    g = a.group(b, title="crash")["id"]
    c = inbox_cursor(b)
    sent = [a.say(g, f"m{i}") for i in range(5)]
    r = inbox(b, c, timeout=0, limit=2)
    assert r.status == 200, r
    got, c2 = durable(r.body["events"]), r.body["next"]
    assert messages_of(got) == sent[:2]
    sent += [a.say(g, f"m{i}") for i in range(5, 8)]
    server.restart(kill9=True)
    rest, c3 = drain_inbox(b, c2)
    assert messages_of(got + [e for e, _ in rest], g) == sent, "lost or duplicated across kill -9"
    # the same again from the first cursor
    again, c3b = drain_inbox(b, c)
    assert messages_of([e for e, _ in again], g) == sent
    assert c3b == c3
    # a poll parked when chatd dies fails; from its cursor nothing is lost
    poll = ParkedPoll(b, c3, timeout=30)
    poll.wait_parked(0.5)
    server.restart(kill9=True)
    poll.join(60)
    assert poll.error is not None or messages_of(poll.events()) == [], poll.r
    during = a.say(g, "after the second crash")
    sent.append(during)
    rest, c4 = drain_inbox(b, c3)
    assert messages_of([e for e, _ in rest], g) == [during]
    # a poll parked on the new chatd is woken by a new message
    poll = ParkedPoll(b, c4, timeout=30, until=lambda evs: messages_of(evs))
    poll.wait_parked(0.5)
    sent_at = time.monotonic()
    m = a.say(g, "to the parked poll")
    r = poll.join(60)
    assert r.status == 200, r
    assert poll.answered_at - sent_at < 10
    assert messages_of(poll.events()) == [m]
    # the whole history, once and in order
    whole, _ = drain_inbox(b, c)
    assert messages_of([e for e, _ in whole], g) == sent + [m]


# --------------------------------------------------------------------------
# Concurrent senders, many pollers
# --------------------------------------------------------------------------

def test_concurrent_senders_every_device_gets_every_message_once_in_order(server, new_users):
    users = new_users(4)
    g = users[0].group(*users[1:], title="busy")["id"]
    devices = {u.id: [u, u.device("second")] for u in users}
    pollers = {u.id: [Poller(d, timeout=5) for d in devices[u.id]] for u in users}
    every = [p for ps in pollers.values() for p in ps]
    per_sender = 50
    sent, errors, lock = {}, [], threading.Lock()

    def send(u):
        for k in range(per_sender):
            r = u.send(g, f"{u.id}:{k}", cmid=f"{u.id}-{k}")
            with lock:
                if r.status == 201:
                    sent[r.body["message"]["seq"]] = r.body["message"]
                else:
                    errors.append(r)

    try:
        senders = [threading.Thread(target=send, args=(u,)) for u in users]
        for t in senders:
            t.start()
        for t in senders:
            t.join(120)
        assert not errors, errors[:3]
        total = 4 * per_sender
        assert sorted(sent) == list(range(1, total + 1))
        for p in every:
            p.wait_count(is_msg(g), total, timeout=60, what="messages")
    finally:
        stop_pollers(*every)
    for p in every:
        assert not p.errors, p.errors[:3]
        msgs = messages_of(p.events(), g)
        assert [m["seq"] for m in msgs] == list(range(1, total + 1)), \
            f"{p.user}: not every message exactly once in seq order"
        assert msgs == [sent[s] for s in range(1, total + 1)]
    for uid, (p1, p2) in pollers.items():
        e1, e2 = [e for e, _ in p1.durable()], [e for e, _ in p2.durable()]
        n = min(len(e1), len(e2))
        assert e1[:n] == e2[:n], f"the two devices of user {uid} saw different streams"


# --------------------------------------------------------------------------
# What a user does not see
# --------------------------------------------------------------------------

def test_no_events_from_threads_the_user_is_not_in(server, new_users):
    a, b, c = new_users(3)
    pc = Poller(c)
    try:
        d = a.direct(b)["id"]
        g = a.group(b, title="without c")["id"]
        a.say(d, "private")
        b.say(g, "also private")
        assert b.patch(f"/v1/threads/{g}", {"title": "still without c"}).status == 200
        assert b.post(f"/v1/threads/{g}/read", {"seq": 1}).status == 204
        assert a.post(f"/v1/threads/{d}/typing").status == 204
        # then something c is in: everything before it has reached c by now
        mine = a.group(c, title="with c")["id"]
        m = a.say(mine, "for c")
        pc.wait_for(is_msg(mine, m["seq"]), what="the message of its own thread")
        time.sleep(0.3)
    finally:
        stop_pollers(pc)
    assert not pc.errors, pc.errors
    for e in pc.events():
        if e["type"] == "message":
            assert e["message"]["thread_id"] == mine, e
        elif e["type"] == "thread":
            assert e["thread"]["id"] == mine, e
        elif e["type"] in ("receipt", "typing"):
            assert e["thread_id"] == mine, e
        elif e["type"] == "presence":
            assert e["user_id"] == a.id, e  # a co-member now; b never is
    assert messages_of(pc.events()) == [m]


# --------------------------------------------------------------------------
# Thread events
# --------------------------------------------------------------------------

def test_thread_events_create_rename_add_remove_and_settings(server, new_users):
    alice, bob, carol, dave = new_users(4)
    alice2 = alice.device("second")
    cd = inbox_cursor(dave)
    pa, pa2, pb, pc = Poller(alice), Poller(alice2), Poller(bob), Poller(carol)
    every = (pa, pa2, pb, pc)
    try:
        # creation: every member gets the thread
        g = alice.group(bob, carol, title="plans")["id"]
        for p in every:
            e, _ = p.wait_for(is_thread(g), what="the new group")
            t = e["thread"]
            assert set(e) == {"type", "thread"} and set(t) == THREAD_KEYS, e
            assert t["kind"] == "group" and t["title"] == "plans"
            assert sorted(t["member_ids"]) == sorted([alice.id, bob.id, carol.id])
        # rename
        assert bob.patch(f"/v1/threads/{g}", {"title": "new plans"}).status == 200
        for p in every:
            p.wait_for(is_thread(g, lambda t: t["title"] == "new plans"), what="the rename")
        # a direct thread: both of its members hear of it
        d = carol.direct(dave)["id"]
        e, _ = pc.wait_for(is_thread(d), what="the new direct thread")
        assert e["thread"]["kind"] == "direct" and e["thread"]["title"] is None
        assert sorted(e["thread"]["member_ids"]) == sorted([carol.id, dave.id])
        r = inbox(dave, cd, timeout=10)
        assert r.status == 200, r
        assert [x["thread"] for x in r.body["events"] if x["type"] == "thread"] == [e["thread"]]
        cd = r.body["next"]
        # a member added: the newcomer and the others hear of it
        st, body = carol.post(f"/v1/threads/{g}/members", {"user_ids": [dave.id]})
        assert st == 200, body
        members4 = sorted([alice.id, bob.id, carol.id, dave.id])
        for p in every:
            p.wait_for(is_thread(g, lambda t: sorted(t["member_ids"]) == members4),
                       what="the added member")
        r = inbox(dave, cd, timeout=10)
        assert r.status == 200, r
        got = [e for e in r.body["events"] if e["type"] == "thread"]
        assert got and got[0]["thread"]["id"] == g, r.body
        assert sorted(got[0]["thread"]["member_ids"]) == members4
        cd = r.body["next"]
        # a member removed: they get a thread event without themselves
        assert alice.delete(f"/v1/threads/{g}/members/{carol.id}").status == 204
        members3 = sorted([alice.id, bob.id, dave.id])
        e, _ = pc.wait_for(is_thread(g, lambda t: carol.id not in t["member_ids"]),
                           what="its own removal")
        assert sorted(e["thread"]["member_ids"]) == members3
        for p in (pa, pa2, pb):
            p.wait_for(is_thread(g, lambda t: sorted(t["member_ids"]) == members3),
                       what="the removal")
        assert carol.get(f"/v1/threads/{g}").status == 404
        # the thread's later messages do not reach the removed member
        after = bob.say(g, "carol is gone")
        pa.wait_for(is_msg(g, after["seq"]))
        other = alice.group(carol, title="control")["id"]
        ctl = alice.say(other, "control")
        pc.wait_for(is_msg(other, ctl["seq"]), what="the control message")
        # one's own settings reach one's other device, and nobody else
        st, body = alice.patch(f"/v1/threads/{g}/settings", {"is_muted": True, "nickname": "P"})
        assert st == 200, body
        e, _ = pa2.wait_for(is_thread(g, lambda t: t["is_muted"] is True), what="the settings")
        assert e["thread"]["nickname"] == "P"
        # bob's stream: the next thing after the message is the control message below
        ctl2 = alice.say(g, "after the settings")
        pb.wait_for(is_msg(g, ctl2["seq"]))
        time.sleep(0.3)
    finally:
        stop_pollers(*every)
    for p in every:
        assert not p.errors, p.errors
    assert not messages_of(pc.events(), g), "a removed member still gets the thread's messages"
    bob_threads = [e["thread"] for e in pb.events("thread")]
    assert not any(t["is_muted"] or t["nickname"] for t in bob_threads), bob_threads
    n_before = len([e for e in pb.events("thread") if e["thread"]["id"] == g])
    assert n_before == 4, "bob: create, rename, add, remove, and nothing for alice's settings"
    r = inbox(dave, cd, timeout=0)
    dave_threads = [e["thread"] for e in r.body["events"] if e["type"] == "thread"]
    assert not any(t["is_muted"] or t["nickname"] for t in dave_threads), dave_threads


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

def test_cursor_errors(server, new_users, anon):
    a, b = new_users(2)
    t = a.direct(b)["id"]
    for i in range(5):
        a.say(t, f"m{i}")
    ahead = inbox_cursor(a)  # a's stream is longer than that of a fresh user
    fresh = new_users(1)[0]
    for garbage in ("abc", "1.5", "x" * 100, "99999999999999999999999", "-5", "1e3", " "):
        problem(inbox(fresh, garbage, timeout=0), 410, "cursor_expired")
    problem(inbox(fresh, ahead, timeout=0), 410, "cursor_expired")
    problem(inbox(fresh, ahead, timeout=5), 410, "cursor_expired")
    # the cursor is fine for its own user
    assert inbox(a, ahead, timeout=0).status == 200


def test_bad_timeout_and_limit(server, new_user):
    u = new_user()
    c = inbox_cursor(u)
    for since in (None, c):
        for timeout in ("-1", "61", "abc", "1.5", "", "100000000000000000000"):
            problem(inbox(u, since, timeout=timeout), 400, "invalid_request")
        for limit in ("0", "501", "-1", "x", "2.0", ""):
            problem(inbox(u, since, timeout=0, limit=limit), 400, "invalid_request")
    # the bounds themselves are fine
    r = inbox(u, None, timeout=60, limit=500)
    assert r.status == 200 and r.body["events"] == []
    r = inbox(u, c, timeout=0, limit=1)
    assert r.status == 200 and r.body == {"events": [], "next": c}


def test_inbox_needs_a_token(server, anon, new_user):
    u = new_user()
    c = inbox_cursor(u)
    problem(anon.get("/v1/inbox"), 401, "unauthorized")
    problem(anon.get("/v1/inbox", params={"since": c, "timeout": 1}), 401, "unauthorized")
    problem(anon.get("/v1/inbox", headers={"Authorization": "Bearer nope"}), 401, "unauthorized")
    assert u.delete("/v1/sessions/current").status == 204
    problem(inbox(u, c, timeout=1), 401, "unauthorized")


# --------------------------------------------------------------------------
# One parked poll per session
# --------------------------------------------------------------------------

def test_a_second_poll_of_the_session_answers_the_first(server, new_user):
    u = new_user()  # alone: nothing else can answer its polls
    other = u.device("other")
    c = inbox_cursor(u)
    first = BackgroundPoll(u, c, timeout=30)
    elsewhere = BackgroundPoll(other, c, timeout=3)
    time.sleep(0.5)
    assert first.alive() and elsewhere.alive()
    second_at = time.monotonic()
    second = BackgroundPoll(u, c, timeout=2)
    r = first.join(40)
    assert r.status == 200 and r.body == {"events": [], "next": c}, r
    assert first.answered_at - second_at < 5, "the older poll was not answered at once"
    assert elsewhere.alive(), "a poll of another session was answered too"
    r = second.join(40)
    assert r.status == 200 and r.body == {"events": [], "next": c}, r
    assert second.answered_at - second_at >= 1.5, "the newer poll did not wait its timeout"
    r = elsewhere.join(40)
    assert r.status == 200 and r.body == {"events": [], "next": c}, r


def test_logging_a_device_out_ends_what_its_parked_poll_receives(server, new_users):
    """DELETE /v1/sessions/{id} logs that device out: its token is dead from
    then on, so a poll it had parked gets nothing sent after the logout."""
    alice, bob = new_users(2)
    bob2 = bob.device("stolen phone")
    t = alice.direct(bob)["id"]
    c = inbox_cursor(bob2)
    poll = ParkedPoll(bob2, c, timeout=5, deadline=5, until=lambda evs: messages_of(evs))
    poll.wait_parked(0.5)
    assert bob.delete(f"/v1/sessions/{bob2.session_id}").status == 204
    secret = alice.say(t, "after the logout")
    r = poll.join(30)
    assert poll.error is None, poll.error
    assert secret not in messages_of(poll.events()), \
        "a logged-out device's parked poll received a message sent after the logout"
    assert r.status in (200, 401), r
    problem(inbox(bob2, c, timeout=0), 401, "unauthorized")


# -- the in-memory tail (src/tail.c) -----------------------------------------

import pytest  # noqa: E402

from conftest import User, env_server, metric  # noqa: E402


@pytest.fixture(scope="module")
def no_tail_server(db):
    """A second chatd on the same database with the in-memory tail off: every
    read it answers comes from the database."""
    with env_server(db, "notail", {"CHAT_TAIL_USERS": "0"}) as s:
        yield s


def test_live_answers_from_the_tail_equal_the_database(new_users, no_tail_server):
    """Woken polls are answered from the in-memory tail; the same range read
    from the database (a chatd without the tail) is event for event the same,
    bodies with escapes, emoji and control characters included, and so are the
    receipts the batches published."""
    a, b, c = new_users(3)
    g = a.group(b, c, title="tail")["id"]
    d = a.direct(b)["id"]
    start = inbox_cursor(b)
    pb = Poller(b, since=start, timeout=5)
    pa = Poller(a, timeout=5)  # a's acknowledgements of b's messages make receipts for b
    sent = [b.say(g, "from b"), b.say(d, "from b")]
    bodies = ['plain', 'quote " backslash \\ slash /', 'emoji 😀 ünïcödé ✓', 'tab\tnl\ncr\r',
              '\u0001\u001f control', 'x' * 3000]
    for i, body in enumerate(bodies):
        sent.append(a.say(g if i % 2 else d, body))
        sent.append(c.say(g, f"c{i} {body}"))
    want = {(m["thread_id"], m["seq"]) for m in sent}

    def got_all():
        return want <= {(e["message"]["thread_id"], e["message"]["seq"])
                        for _, e, _ in pb.items if e["type"] == "message"}
    deadline = time.monotonic() + 20
    while not got_all() and time.monotonic() < deadline:
        time.sleep(0.05)
    stop_pollers(pb, pa)
    assert got_all(), pb.items
    live = durable([e for _, e, _ in pb.items])
    end = pb.cursor
    # the same range from the database, in pages, through the other chatd
    b2 = User(no_tail_server, b.user, b.password, b.token, b.session_id)
    stored, cursor = [], start
    while int(cursor) < int(end):
        # never past `end`: the stream may have grown since the poller stopped
        # (each durable event takes one position)
        r = inbox(b2, cursor, timeout=0, limit=min(7, int(end) - int(cursor)))
        assert r.status == 200, r
        assert int(r.body["next"]) > int(cursor), (cursor, end)
        stored += durable(r.body["events"])
        cursor = r.body["next"]
    assert cursor == end
    assert live == stored
    for t in (g, d):  # per thread in seq order, each once
        seqs = [m["seq"] for m in messages_of(live, t)]
        assert seqs == sorted(set(seqs)), (t, seqs)
    assert {m["body"] for m in messages_of(live)} >= set(bodies)
    assert any(e["type"] == "receipt" for e in live)


def test_a_poll_woken_by_typing_reads_no_stream(new_users, no_tail_server):
    """A parked poll woken by an ephemeral event answers with it without
    reading the stream again: it found the end when it parked, and nothing
    was appended since (the stream's version did not move). On the chatd
    without a tail every read of a stream is one of the database, counted
    in chatd_tail_misses_total; a message after that is read as usual."""
    a, b = new_users(2)
    d = a.direct(b)["id"]
    a2 = User(no_tail_server, a.user, a.password, a.token, a.session_id)
    b2 = User(no_tail_server, b.user, b.password, b.token, b.session_id)
    cursor = inbox_cursor(b2)
    parked = metric(no_tail_server, "chatd_parked_polls")
    reads = metric(no_tail_server, "chatd_tail_misses_total")
    got = {}
    t = threading.Thread(target=lambda: got.update(r=inbox(b2, cursor, timeout=20)))
    t.start()
    deadline = time.monotonic() + 10
    while metric(no_tail_server, "chatd_parked_polls") <= parked:
        assert time.monotonic() < deadline, "the poll did not park"
        time.sleep(0.02)
    assert a2.post(f"/v1/threads/{d}/typing").status == 204
    t.join(25)
    r = got["r"]
    for _ in range(3):  # a presence event may wake it first: poll on
        assert r.status == 200, r
        assert {e["type"] for e in r.body["events"]} <= {"typing", "presence"}, r.body
        assert r.body["next"] == cursor
        if any(e["type"] == "typing" for e in r.body["events"]):
            break
        r = inbox(b2, cursor, timeout=10)
    assert any(e["type"] == "typing" for e in r.body["events"]), r.body
    assert metric(no_tail_server, "chatd_tail_misses_total") == reads
    # the next append is read (from the database: this chatd keeps no tail)
    sent = a2.say(d, "after typing")
    r = inbox(b2, cursor, timeout=10)
    assert r.status == 200, r
    assert [e["message"]["seq"] for e in r.body["events"] if e["type"] == "message"] == [sent["seq"]]
    assert metric(no_tail_server, "chatd_tail_misses_total") == reads + 1
