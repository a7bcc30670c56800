"""Delivered and read receipts as they move live (API.md "Messages and
history" and "The inbox"): a message is delivered to a member once one of the
member's devices acknowledges it through the inbox cursor, read once the
member calls /read; both only move forward; every member hears of it, the
member's own devices included, and unread counts follow."""
import time

from conftest import Poller, inbox, inbox_cursor, stop_pollers


def receipt(thread_id, user_id, delivered, read):
    return {"type": "receipt", "thread_id": thread_id, "user_id": user_id,
            "delivered_seq": delivered, "read_seq": read}


def receipts_of(poller, thread_id, user_id):
    return [e for e in poller.events("receipt")
            if e["thread_id"] == thread_id and e["user_id"] == user_id]


def assert_forward_only(events):
    for a, b in zip(events, events[1:]):
        assert b["delivered_seq"] >= a["delivered_seq"] and b["read_seq"] >= a["read_seq"], \
            f"a receipt moved backwards: {a} then {b}"


def poll_messages(user, since, n, timeout=10):
    """Polls from since until n message events came; returns (messages, next).
    The last poll's since is the cursor just past them: not acknowledged yet."""
    msgs, cursor = [], since
    deadline = time.monotonic() + timeout
    while len(msgs) < n:
        assert time.monotonic() < deadline, f"{user} got {len(msgs)} of {n} messages"
        r = inbox(user, cursor, timeout=2)
        assert r.status == 200, r
        msgs += [e["message"] for e in r.body["events"] if e["type"] == "message"]
        cursor = r.body["next"]
    return msgs, cursor


def test_delivered_read_and_unread_counts(server, new_users):
    alice, bob1 = new_users(2)
    bob2 = bob1.device("phone")
    t = alice.direct(bob1)["id"]
    cb1, cb2 = inbox_cursor(bob1), inbox_cursor(bob2)
    pa = Poller(alice)
    pb2 = None
    try:
        m1, m2 = alice.say(t, "one"), alice.say(t, "two")
        # bob's first device receives them; until it polls past them, nothing is delivered
        got, n1 = poll_messages(bob1, cb1, 2)
        assert got == [m1, m2]
        rc = alice.receipts(t)
        assert rc[bob1.id] == {"user_id": bob1.id, "delivered_seq": 0, "read_seq": 0}
        assert rc[alice.id] == {"user_id": alice.id, "delivered_seq": 2, "read_seq": 2}
        assert receipts_of(pa, t, bob1.id) == []
        for dev in (bob1, bob2):
            assert dev.thread(t)["unread_count"] == 2
        # bob's device polls past them: delivered, and alice hears of it
        r = inbox(bob1, n1, timeout=5)
        assert r.status == 200, r
        e, _ = pa.wait_for(lambda e: e["type"] == "receipt" and e["user_id"] == bob1.id,
                           what="bob's delivered receipt")
        assert e == receipt(t, bob1.id, 2, 0)
        for who in (alice, bob1, bob2):
            assert who.receipts(t)[bob1.id] == {"user_id": bob1.id, "delivered_seq": 2,
                                                "read_seq": 0}
        # bob's other device now polls too: it hears of bob's reads, not of
        # bob's own deliveries (docs/delivery.md)
        pb2 = Poller(bob2, since=cb2)
        # bob reads on the first device: alice and the other device hear of it
        assert bob1.post(f"/v1/threads/{t}/read", {"seq": 1}).status == 204
        pa.wait_for(lambda e: e == receipt(t, bob1.id, 2, 1), what="bob's read of 1")
        pb2.wait_for(lambda e: e == receipt(t, bob1.id, 2, 1), what="its own read of 1")
        assert bob2.thread(t)["unread_count"] == 1
        assert bob1.post(f"/v1/threads/{t}/read", {"seq": 2}).status == 204
        pa.wait_for(lambda e: e == receipt(t, bob1.id, 2, 2), what="bob's read of 2")
        pb2.wait_for(lambda e: e == receipt(t, bob1.id, 2, 2), what="its own read of 2")
        for dev in (bob1, bob2):
            assert dev.thread(t)["unread_count"] == 0
        # never backwards: an older seq is accepted and changes nothing
        for seq in (1, 0):
            assert bob1.post(f"/v1/threads/{t}/read", {"seq": seq}).status == 204
        assert alice.receipts(t)[bob1.id] == {"user_id": bob1.id, "delivered_seq": 2,
                                              "read_seq": 2}
        # polling from an old cursor does not move delivered back either
        assert inbox(bob1, cb1, timeout=0).status == 200
        assert alice.receipts(t)[bob1.id]["delivered_seq"] == 2
        # the next thing alice hears about bob is the delivery of a new message
        m3 = alice.say(t, "three")
        pa.wait_for(lambda e: e == receipt(t, bob1.id, 3, 2), what="bob's delivery of 3")
        assert m3["seq"] == 3
        for dev in (bob1, bob2):
            assert dev.thread(t)["unread_count"] == 1
        time.sleep(0.3)
    finally:
        stop_pollers(*[p for p in (pa, pb2) if p])
    assert not pa.errors and not pb2.errors, (pa.errors, pb2.errors)
    seen_by_alice = receipts_of(pa, t, bob1.id)
    assert seen_by_alice == [receipt(t, bob1.id, 2, 0), receipt(t, bob1.id, 2, 1),
                             receipt(t, bob1.id, 2, 2), receipt(t, bob1.id, 3, 2)]
    seen_by_bob2 = receipts_of(pb2, t, bob1.id)
    assert seen_by_bob2 == [receipt(t, bob1.id, 2, 1), receipt(t, bob1.id, 2, 2)], \
        "bob's other device hears of bob's reads, once each, and of no delivery of his own"
    assert_forward_only(seen_by_alice)


def test_any_device_delivers_and_receipts_reach_the_sender(server, new_users):
    alice, bob, carol = new_users(3)
    bob2 = bob.device("phone")
    g = alice.group(bob, carol, title="receipts")["id"]
    cb1, cb2 = inbox_cursor(bob), inbox_cursor(bob2)
    pa, pc = Poller(alice), Poller(carol)
    try:
        m1 = alice.say(g, "one")
        # bob's second device is the one that acknowledges
        got, n = poll_messages(bob2, cb2, 1)
        assert got == [m1]
        assert inbox(bob2, n, timeout=0).status == 200
        want = receipt(g, bob.id, 1, 0)
        pa.wait_for(lambda e: e == want, what="bob's delivery via his second device")
        # carol's poller acknowledges on its own: carol's receipt reaches alice
        pa.wait_for(lambda e: e == receipt(g, carol.id, 1, 0), what="carol's delivery")
        # bob's first device polling past it later delivers nothing new
        got, n = poll_messages(bob, cb1, 1)
        assert inbox(bob, n, timeout=0).status == 200
        assert bob.receipts(g)[bob.id] == {"user_id": bob.id, "delivered_seq": 1, "read_seq": 0}
        # carol reads: the sender and carol's own devices hear of it; bob, who
        # sent nothing, does not (his receipts list still shows it)
        assert carol.post(f"/v1/threads/{g}/read", {"seq": 1}).status == 204
        pa.wait_for(lambda e: e == receipt(g, carol.id, 1, 1), what="carol's read")
        pc.wait_for(lambda e: e == receipt(g, carol.id, 1, 1), what="its own read")
        r = inbox(bob, n, timeout=1)
        assert r.status == 200, r
        assert [e for e in r.body["events"] if e["type"] == "receipt"] == []
        assert bob.receipts(g)[carol.id] == {"user_id": carol.id, "delivered_seq": 1,
                                             "read_seq": 1}
        time.sleep(0.3)
    finally:
        stop_pollers(pa, pc)
    assert not pa.errors and not pc.errors
    bobs = receipts_of(pa, g, bob.id)
    assert bobs == [receipt(g, bob.id, 1, 0)], "one delivery, heard once"
    assert receipts_of(pc, g, bob.id) == [], "a member who sent nothing hears no one's delivery"
    assert receipts_of(pc, g, carol.id) == [receipt(g, carol.id, 1, 1)], "only its own read"
    for uid in (bob.id, carol.id):
        assert_forward_only(receipts_of(pa, g, uid))


def test_messages_that_came_while_away_are_delivered_once_a_device_polls_past_them(
        server, new_users):
    """The documented start of a client (API.md "The inbox"): no since, load
    over REST, then poll from the `next` it was given. Polling with since=X
    acknowledges everything up to X, so the messages that came while every
    device of the member was away count as delivered then."""
    alice, bob = new_users(2)
    t = alice.direct(bob)["id"]
    m1, m2 = alice.say(t, "while you were away"), alice.say(t, "still away")
    # bob's app starts: the cursor, the REST load, then the poll loop from there
    c = inbox_cursor(bob)
    assert bob.history(t)["messages"] == [m1, m2]
    r = inbox(bob, c, timeout=1)
    assert r.status == 200, r
    r = inbox(bob, r.body["next"], timeout=0)
    assert r.status == 200, r
    deadline = time.monotonic() + 3
    while alice.receipts(t)[bob.id]["delivered_seq"] < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alice.receipts(t)[bob.id] == {"user_id": bob.id, "delivered_seq": 2, "read_seq": 0}, \
        "bob's device polled with a cursor past both messages, yet they are not delivered"


# --------------------------------------------------------------------------
# Big groups: receipts go to the member and the senders they concern
# --------------------------------------------------------------------------

import pytest  # noqa: E402

from conftest import drain_inbox, env_server, make_user  # noqa: E402


@pytest.fixture(scope="module")
def small_fanout_server(db):
    """A chatd on which groups of more than 3 members count as big."""
    with env_server(db, "fanout-", {"CHAT_RECEIPT_FANOUT_MAX": "3"}) as s:
        yield s


def receipts_in(user, since, thread_id):
    events, _ = drain_inbox(user, since)
    return [e for e, _ in events if e["type"] == "receipt" and e["thread_id"] == thread_id]


def group_with_one_message(members, title):
    """A group made by members[0], who then sends one message (seq 1)."""
    creator = members[0]
    st, body = creator.post("/v1/threads", {"member_ids": [m.id for m in members[1:]],
                                            "title": title})
    assert st == 201, body
    tid = body["thread"]["id"]
    st, m = creator.post(f"/v1/threads/{tid}/messages", {"client_msg_id": "m1", "body": "hi all"})
    assert st == 201, m
    return tid


def test_in_a_big_group_a_read_reaches_the_sender_and_the_reader_only(small_fanout_server):
    s = small_fanout_server
    alice, bob, carol, dave = (make_user(s) for _ in range(4))
    carol2 = carol.device("carol's phone")
    tid = group_with_one_message([alice, bob, carol, dave], "big")
    cursors = {u: inbox_cursor(u) for u in (alice, bob, carol2)}

    st, _ = carol.post(f"/v1/threads/{tid}/read", {"seq": 1})
    assert st == 204

    mine = receipt(tid, carol.id, 1, 1)
    assert mine in receipts_in(alice, cursors[alice], tid), "the sender must see the read"
    assert mine in receipts_in(carol2, cursors[carol2], tid), "the reader's other device must"
    assert [e for e in receipts_in(bob, cursors[bob], tid) if e["user_id"] == carol.id] == [], \
        "in a big group a member who sent nothing gets no one else's receipts"
    # The receipts list stays complete for everyone.
    st, body = bob.get(f"/v1/threads/{tid}/receipts")
    assert st == 200
    assert {"user_id": carol.id, "delivered_seq": 1, "read_seq": 1} in body["receipts"]


def test_in_a_small_group_every_member_hears_every_receipt(small_fanout_server):
    s = small_fanout_server
    alice, bob, carol = (make_user(s) for _ in range(3))
    tid = group_with_one_message([alice, bob, carol], "small")
    since = inbox_cursor(bob)
    st, _ = carol.post(f"/v1/threads/{tid}/read", {"seq": 1})
    assert st == 204
    # bob sent nothing, yet within the fan-out limit he hears of carol's read.
    assert receipt(tid, carol.id, 1, 1) in receipts_in(bob, since, tid)
